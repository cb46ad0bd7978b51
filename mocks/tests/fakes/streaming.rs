//! Stream pacing and connection cuts, body limits, and faults that only valid requests use up.

use crate::common::*;
use futures::StreamExt;
use llm_mocks::Provider;
use serde_json::json;
use std::time::Duration;
use tokio::time::Instant;

/// The pieces of a streamed answer as read, each with the time since just before the request was sent.
async fn stream_events(f: &llm_mocks::FakeServer) -> (Vec<(Duration, String)>, Option<String>) {
    let t0 = Instant::now();
    let r = reqwest::Client::new()
        .post(format!("{}/v1/chat/completions", f.uri()))
        .bearer_auth("k")
        .json(&chat_body("gpt-4o-mini", "pace me", true))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
    assert!(r.headers().get("content-length").is_none(), "streams are chunked");
    let mut out = Vec::new();
    let mut body = r.bytes_stream();
    while let Some(piece) = body.next().await {
        match piece {
            Ok(b) => out.push((t0.elapsed(), String::from_utf8_lossy(&b).into_owned())),
            Err(e) => return (out, Some(e.to_string())),
        }
    }
    (out, None)
}

#[tokio::test]
async fn stream_delay_paces_every_event() {
    let f = start(Provider::OpenAi).await;
    post(&f, "/__mock/settings", None, json!({"stream_delay_ms": 40})).await;
    let (pieces, err) = stream_events(&f).await;
    assert!(err.is_none());
    let text: String = pieces.iter().map(|p| p.1.as_str()).collect();
    let events = text.matches("data: ").count();
    assert!(events > 5);
    assert!(pieces.len() > 3, "events arrive separately: {}", pieces.len());
    let last = pieces.last().unwrap().0;
    assert!(
        last >= Duration::from_millis(40 * (events as u64 - 2)),
        "{last:?} for {events} events"
    );
}

#[tokio::test]
async fn slow_with_after_chunks_stalls_a_stream_in_the_middle() {
    let f = start(Provider::OpenAi).await;
    fault(
        &f,
        json!({"fault": "slow", "after_chunks": 2, "delay_ms": 300, "times": 1}),
    )
    .await;
    let (pieces, err) = stream_events(&f).await;
    assert!(err.is_none());
    let text: String = pieces.iter().map(|p| p.1.as_str()).collect();
    assert!(
        text.ends_with("data: [DONE]\n\n"),
        "the stream finishes after the stall"
    );
    // The first events come at once; the rest only after the 300 ms stall, which began after they were sent
    // and so after the request was. (The gap between two reads is no bound: a read of the events
    // before the stall may itself come late, which once made the largest gap 299.8 ms.)
    assert!(pieces[0].0 < Duration::from_millis(250), "{:?}", pieces[0].0);
    let last = pieces.last().unwrap().0;
    assert!(last >= Duration::from_millis(300), "{last:?}");
}

#[tokio::test]
async fn drop_connection_with_after_chunks_cuts_the_stream() {
    let f = start(Provider::OpenAi).await;
    fault(
        &f,
        json!({"fault": "drop_connection", "after_chunks": 3, "times": 1}),
    )
    .await;
    let (pieces, err) = stream_events(&f).await;
    let text: String = pieces.iter().map(|p| p.1.as_str()).collect();
    assert_eq!(text.matches("data: ").count(), 3, "{text}");
    assert!(err.is_some(), "the client sees a broken body, not a clean end");
    assert!(!text.contains("[DONE]"));
}

#[tokio::test]
async fn drop_connection_honours_delay_ms() {
    let f = start(Provider::Kimi).await;
    fault(
        &f,
        json!({"fault": "drop_connection", "delay_ms": 300, "times": 1}),
    )
    .await;
    let t0 = Instant::now();
    let r = reqwest::Client::new()
        .post(format!("{}/v1/chat/completions", f.uri()))
        .bearer_auth("k")
        .json(&chat_body("moonshot-v1-8k", "x", false))
        .send()
        .await;
    assert!(r.is_err());
    assert!(t0.elapsed() >= Duration::from_millis(300));
}

#[tokio::test]
async fn bodies_over_the_limit_get_413_and_the_fake_keeps_serving() {
    let f = start(Provider::OpenAi).await;
    let big = "x".repeat(llm_mocks::MAX_BODY_BYTES + 1);
    let r = post_raw(&f, "/v1/chat/completions", Some("k"), big).await;
    assert_eq!(r.status, 413);
    assert_eq!(r.json()["error"]["type"], "invalid_request_error");
    let g = start(Provider::GigaChat).await;
    let r = post_raw(
        &g,
        "/api/v1/chat/completions",
        Some("k"),
        "y".repeat(llm_mocks::MAX_BODY_BYTES + 10),
    )
    .await;
    assert_eq!(r.json(), json!({"status": 413, "message": "Payload too large"}));
    assert_eq!(
        post(
            &f,
            "/v1/chat/completions",
            Some("k"),
            chat_body("gpt-4o", "x", false)
        )
        .await
        .status,
        200
    );
}

#[tokio::test]
async fn invalid_requests_do_not_use_up_faults() {
    let f = start(Provider::OpenAi).await;
    fault(&f, json!({"fault": "rate_limited", "times": 1})).await;
    let r = post(
        &f,
        "/v1/chat/completions",
        Some("k"),
        chat_body("gpt-nope", "x", false),
    )
    .await;
    assert_eq!(r.status, 404);
    assert_eq!(
        post(
            &f,
            "/v1/chat/completions",
            Some("k"),
            chat_body("gpt-4o", "x", false)
        )
        .await
        .status,
        429
    );
    let j = f.journal();
    assert_eq!(j[0].fault, None);
    assert_eq!(j[1].fault, Some("rate_limited"));
}

#[tokio::test]
async fn openai_errors_carry_the_request_id() {
    let f = start(Provider::OpenAi).await;
    let r = post(&f, "/v1/chat/completions", None, chat_body("gpt-4o", "x", false)).await;
    assert_eq!(r.status, 401);
    assert!(r.header("x-request-id").unwrap().starts_with("req_"));
}

#[tokio::test]
async fn settings_out_of_range_are_refused() {
    let f = start(Provider::GigaChat).await;
    let r = post(&f, "/__mock/settings", None, json!({"token_ttl_ms": u64::MAX})).await;
    assert_eq!(r.status, 400);
    assert!(r.json()["error"].as_str().unwrap().contains("token_ttl_ms"));
    let r = post(&f, "/__mock/settings", None, json!({"latency_ms": u64::MAX})).await;
    assert_eq!(r.status, 400);
    assert!(!giga_token(&f).await.is_empty(), "the fake still issues tokens");
}

#[tokio::test]
async fn provider_specific_tool_options() {
    let k = start(Provider::Kimi).await;
    let mut body = chat_body("moonshot-v1-8k", "x", false);
    body["functions"] = json!([{"name": "f", "parameters": {"type": "object"}}]);
    let r = post(&k, "/v1/chat/completions", Some("k"), body).await;
    assert_eq!(r.status, 400);
    let msg = r.json()["error"]["message"].as_str().unwrap().to_string();
    assert!(
        msg.contains("functions") && !msg.contains("Invalid request: Invalid request"),
        "{msg}"
    );
    // GigaChat ignores OpenAI-style tools: only `functions` trigger a function call.
    let g = start(Provider::GigaChat).await;
    let t = giga_token(&g).await;
    let mut body = chat_body("GigaChat", "x", false);
    body["tools"] =
        json!([{"type": "function", "function": {"name": "f", "parameters": {"type": "object"}}}]);
    let b = post(&g, "/api/v1/chat/completions", Some(&t), body).await.json();
    assert_eq!(b["choices"][0]["finish_reason"], "stop");
}

#[tokio::test]
async fn qwen_native_long_prompts_get_the_context_error() {
    let f = start(Provider::Qwen).await;
    let body = json!({"model": "qwen-max", "input": {"prompt": "word ".repeat(200_000)}});
    let r = post(
        &f,
        "/api/v1/services/aigc/text-generation/generation",
        Some("k"),
        body,
    )
    .await;
    assert_eq!(r.status, 400);
    assert!(r.json()["message"]
        .as_str()
        .unwrap()
        .starts_with("Range of input length"));
}

#[tokio::test]
async fn memory_does_not_grow_with_requests() {
    // The journal keeps the last 10,000 requests and nothing else keeps any.
    let f = start(Provider::Ollama).await;
    let client = reqwest::Client::new();
    let url = format!("{}/api/tags", f.uri());
    for _ in 0..12_000 / 50 {
        let batch = (0..50).map(|_| client.get(&url).send());
        for r in futures::future::join_all(batch).await {
            assert_eq!(r.unwrap().status(), 200);
        }
    }
    assert_eq!(f.request_count(), 12_000);
    assert_eq!(f.journal().len(), 10_000);
}
