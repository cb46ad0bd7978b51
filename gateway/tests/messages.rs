//! `POST /v1/messages` and `/v1/messages/count_tokens` (Anthropic Messages) against the fakes: the same
//! pipeline as the chat route (fallback before the first delta, an explicit `event: error` after it), the
//! Messages object and event grammar, Anthropic's error shapes, aliases and the Anthropic model list.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod common;

use common::*;
use llm_mocks::{FaultKind, FaultSpec};
use serde_json::{json, Value};

const V: (&str, &str) = ("anthropic-version", "2023-06-01");

fn plain(content: Value) -> Value {
    json!({"model": "claude-sonnet-4-5", "max_tokens": 256, "messages": [{"role": "user", "content": content}]})
}

fn streamed(content: Value) -> Value {
    let mut b = plain(content);
    b["stream"] = json!(true);
    b
}

/// The events of a Messages SSE body: (`event:` line, data JSON).
fn events(body: &str) -> Vec<(String, Value)> {
    let mut out = Vec::new();
    let mut name = String::new();
    for line in body.lines() {
        if let Some(n) = line.strip_prefix("event: ") {
            name = n.to_string();
        } else if let Some(d) = line.strip_prefix("data: ") {
            let v: Value = serde_json::from_str(d).unwrap_or_else(|e| panic!("{e}: {d}"));
            out.push((std::mem::take(&mut name), v));
        }
    }
    out
}

fn names(evs: &[(String, Value)]) -> Vec<&str> {
    evs.iter()
        .map(|(n, _)| n.as_str())
        .filter(|n| *n != "ping")
        .collect()
}

fn text_of(evs: &[(String, Value)]) -> String {
    evs.iter()
        .filter(|(_, v)| v["delta"]["type"] == "text_delta")
        .filter_map(|(_, v)| v["delta"]["text"].as_str())
        .collect()
}

/// Every event's `event:` name is its data's `type`; `message_start` comes first; every delta names a block
/// that was started and not yet stopped.
fn assert_grammar(evs: &[(String, Value)]) {
    assert_eq!(evs[0].0, "message_start", "{evs:?}");
    let mut open: Option<u64> = None;
    for (name, v) in evs {
        assert_eq!(name, v["type"].as_str().unwrap(), "{v}");
        match name.as_str() {
            "content_block_start" => {
                assert!(open.is_none(), "a block starts while another is open: {v}");
                open = v["index"].as_u64();
            }
            "content_block_delta" => assert_eq!(open, v["index"].as_u64(), "{v}"),
            "content_block_stop" => {
                assert_eq!(open, v["index"].as_u64(), "{v}");
                open = None;
            }
            _ => {}
        }
    }
}

#[tokio::test]
async fn a_plain_message_is_the_messages_object_through_an_alias() {
    let s = stand().await;
    let body = json!({"model": "claude-sonnet-4-5", "max_tokens": 64000,
        "system": [{"type": "text", "text": "You are brief.", "cache_control": {"type": "ephemeral"}},
                   {"type": "text", "text": "Answer in English."}],
        "messages": [{"role": "user", "content": [{"type": "text", "text": "Say hello to the gateway"}]},
                     {"role": "system", "content": "Mid-conversation rule."},
                     {"role": "assistant", "content": [{"type": "thinking", "thinking": "hm", "signature": "x"},
                                                        {"type": "text", "text": "Hello."}]},
                     {"role": "user", "content": "Again"}],
        "thinking": {"type": "adaptive"}, "context_management": {"edits": []},
        "output_config": {"effort": "high"}, "metadata": {"user_id": "u1"}, "some_future_field": 1});
    let r = call(
        &s.app,
        "POST",
        "/v1/messages?beta=true",
        Some(body),
        &[
            ("x-api-key", "anything"),
            V,
            ("anthropic-beta", "claude-code-20250219,unknown-beta"),
        ],
    )
    .await;
    assert_eq!(r.status, 200, "{}", r.body);
    assert_eq!(r.header("x-llm-actual-provider"), "openai");
    assert_eq!(r.header("x-llm-source"), "provider");
    let v = r.json();
    assert!(v["id"].as_str().unwrap().starts_with("msg_"), "{v}");
    assert_eq!(v["type"], "message");
    assert_eq!(v["role"], "assistant");
    assert_eq!(v["model"], "claude-sonnet-4-5", "the requested id is echoed");
    assert_eq!(v["content"][0]["type"], "text");
    assert!(
        v["content"][0]["text"].as_str().unwrap().starts_with("[openai]"),
        "{v}"
    );
    assert_eq!(v["stop_reason"], "end_turn");
    assert!(v["stop_sequence"].is_null());
    assert!(v["usage"]["input_tokens"].as_u64().unwrap() > 0, "{v}");
    assert!(v["usage"]["output_tokens"].as_u64().unwrap() > 0, "{v}");

    let sent = s.fakes["openai"].journal().last().unwrap().body_json().unwrap();
    assert_eq!(
        sent["model"], "gpt-4o-mini",
        "the alias reached the logical model: {sent}"
    );
    assert_eq!(
        sent["max_tokens"], 16384,
        "64,000 is lowered to gpt-4o-mini's output limit: {sent}"
    );
    let msgs = sent["messages"].as_array().unwrap();
    assert_eq!(msgs[0]["role"], "system");
    assert_eq!(msgs[0]["content"], "You are brief.\n\nAnswer in English.");
    assert_eq!(msgs[1]["content"], "Say hello to the gateway");
    assert_eq!(msgs[2]["role"], "system");
    assert_eq!(msgs[3]["role"], "assistant");
    assert_eq!(
        msgs[3]["content"], "Hello.",
        "thinking blocks are dropped: {sent}"
    );
    assert_eq!(msgs[4]["content"], "Again");
    for key in [
        "thinking",
        "context_management",
        "output_config",
        "metadata",
        "some_future_field",
        "system",
    ] {
        assert!(sent.get(key).is_none(), "{key} is not sent upstream: {sent}");
    }
}

#[tokio::test]
async fn a_streamed_message_follows_the_event_grammar_and_ends_with_message_stop() {
    let s = stand().await;
    let r = call(
        &s.app,
        "POST",
        "/v1/messages",
        Some(streamed(json!("Say hello"))),
        &[V],
    )
    .await;
    assert_eq!(r.status, 200, "{}", r.body);
    assert_eq!(r.header("content-type"), "text/event-stream");
    assert_eq!(r.header("x-llm-actual-provider"), "openai");
    let evs = events(&r.body);
    assert_grammar(&evs);
    let n = names(&evs);
    assert_eq!(n[..2], ["message_start", "content_block_start"], "{n:?}");
    assert_eq!(
        n[n.len() - 3..],
        ["content_block_stop", "message_delta", "message_stop"],
        "{n:?}"
    );
    assert!(
        evs.iter().any(|(n, _)| n == "ping"),
        "a ping keeps the stream alive"
    );
    assert!(text_of(&evs).starts_with("[openai]"), "{}", r.body);
    let start = &evs[0].1["message"];
    assert_eq!(start["model"], "claude-sonnet-4-5");
    assert_eq!(start["content"], json!([]));
    let delta = &evs.iter().find(|(n, _)| n == "message_delta").unwrap().1;
    assert_eq!(delta["delta"]["stop_reason"], "end_turn");
    assert!(delta["usage"]["output_tokens"].as_u64().unwrap() > 0, "{delta}");
    assert!(delta["usage"]["input_tokens"].as_u64().unwrap() > 0, "{delta}");
}

#[tokio::test]
async fn a_primary_fault_falls_back_plain_and_before_the_first_delta() {
    let s = stand().await;
    s.fakes["openai"]
        .add_fault(FaultSpec::new(FaultKind::ServerError).times(2))
        .unwrap();
    let r = call(&s.app, "POST", "/v1/messages", Some(plain(json!("hello"))), &[V]).await;
    assert_eq!(r.status, 200, "{}", r.body);
    assert_eq!(r.header("x-llm-actual-provider"), "kimi");
    assert_eq!(r.header("x-llm-fallbacks"), "1");
    assert!(r.json()["content"][0]["text"]
        .as_str()
        .unwrap()
        .starts_with("[kimi]"));

    s.fakes["openai"].clear_faults();
    s.fakes["openai"]
        .add_fault(
            FaultSpec::new(FaultKind::TruncatedStream)
                .times(1)
                .after_chunks(0),
        )
        .unwrap();
    let r = call(
        &s.app,
        "POST",
        "/v1/messages",
        Some(streamed(json!("hello"))),
        &[V],
    )
    .await;
    assert_eq!(r.status, 200, "{}", r.body);
    assert_eq!(r.header("x-llm-actual-provider"), "kimi", "{}", r.body);
    let evs = events(&r.body);
    assert_grammar(&evs);
    assert!(text_of(&evs).starts_with("[kimi]"), "{}", r.body);
    assert_eq!(names(&evs).last(), Some(&"message_stop"));
}

#[tokio::test]
async fn a_stream_broken_after_the_first_delta_ends_with_an_error_event_never_message_stop() {
    let s = stand().await;
    for kind in [FaultKind::TruncatedStream, FaultKind::StreamError] {
        s.fakes["openai"]
            .add_fault(FaultSpec::new(kind).times(1).after_chunks(2))
            .unwrap();
        let r = call(
            &s.app,
            "POST",
            "/v1/messages",
            Some(streamed(json!("hello"))),
            &[V],
        )
        .await;
        let label = format!("{kind:?}");
        assert_eq!(r.status, 200, "{label}");
        let evs = events(&r.body);
        assert_grammar(&evs);
        assert!(
            !text_of(&evs).is_empty(),
            "{label}: the first delta reached the client"
        );
        let n = names(&evs);
        assert!(
            !n.contains(&"message_stop") && !n.contains(&"message_delta"),
            "{label}: {n:?}"
        );
        let (last, err) = evs.last().unwrap();
        assert_eq!(last, "error", "{label}: {n:?}");
        assert_eq!(err["error"]["type"], "overloaded_error", "{err}");
        assert!(
            err["error"]["message"].as_str().unwrap().contains("openai"),
            "{err}"
        );
    }
}

fn weather_tools() -> Value {
    json!([{"name": "get_weather", "description": "Weather of a city", "cache_control": {"type": "ephemeral"},
            "input_schema": {"type": "object", "properties": {"city": {"type": "string"}}, "required": ["city"]}}])
}

#[tokio::test]
async fn a_tool_use_round_trip_plain_and_streamed() {
    let s = stand().await;
    let body = json!({"model": "default", "max_tokens": 512, "tools": weather_tools(),
        "tool_choice": {"type": "any", "disable_parallel_tool_use": true},
        "messages": [{"role": "user", "content": "Weather in Oslo?"}]});
    let r = call(&s.app, "POST", "/v1/messages", Some(body), &[V]).await;
    assert_eq!(r.status, 200, "{}", r.body);
    let v = r.json();
    assert_eq!(v["stop_reason"], "tool_use", "{v}");
    let call_block = v["content"]
        .as_array()
        .unwrap()
        .iter()
        .find(|b| b["type"] == "tool_use")
        .unwrap()
        .clone();
    assert_eq!(call_block["name"], "get_weather");
    assert!(call_block["input"].is_object(), "{call_block}");
    let id = call_block["id"].as_str().unwrap().to_string();
    let sent = s.fakes["openai"].journal().last().unwrap().body_json().unwrap();
    assert_eq!(sent["tools"][0]["type"], "function", "{sent}");
    assert_eq!(sent["tools"][0]["function"]["parameters"]["required"][0], "city");
    assert_eq!(sent["tool_choice"], "required");
    assert_eq!(sent["parallel_tool_calls"], false);

    let body = json!({"model": "default", "max_tokens": 512, "tools": weather_tools(), "messages": [
        {"role": "user", "content": "Weather in Oslo?"},
        {"role": "assistant", "content": [{"type": "text", "text": "Checking."}, call_block]},
        {"role": "user", "content": [
            {"type": "tool_result", "tool_use_id": id, "content": [{"type": "text", "text": "{\"temp\": 3}"}]},
            {"type": "text", "text": "And tomorrow?"}]}]});
    let r = call(&s.app, "POST", "/v1/messages", Some(body), &[V]).await;
    assert_eq!(r.status, 200, "{}", r.body);
    let sent = s.fakes["openai"].journal().last().unwrap().body_json().unwrap();
    let msgs = sent["messages"].as_array().unwrap();
    assert_eq!(msgs[1]["role"], "assistant", "{sent}");
    assert_eq!(msgs[1]["content"], "Checking.");
    assert_eq!(msgs[1]["tool_calls"][0]["id"], id.as_str());
    assert_eq!(msgs[1]["tool_calls"][0]["function"]["name"], "get_weather");
    assert_eq!(msgs[2]["role"], "tool");
    assert_eq!(msgs[2]["tool_call_id"], id.as_str());
    assert_eq!(msgs[2]["content"], "{\"temp\": 3}");
    assert_eq!(msgs[3]["role"], "user");
    assert_eq!(msgs[3]["content"], "And tomorrow?");

    // Streamed: the call is a tool_use block fed by input_json_delta; the fragments parse to the input.
    let body = json!({"model": "default", "max_tokens": 512, "stream": true, "tools": weather_tools(),
        "tool_choice": {"type": "tool", "name": "get_weather"},
        "messages": [{"role": "user", "content": "Weather in Oslo?"}]});
    let r = call(&s.app, "POST", "/v1/messages", Some(body), &[V]).await;
    assert_eq!(r.status, 200, "{}", r.body);
    let evs = events(&r.body);
    assert_grammar(&evs);
    let start = evs
        .iter()
        .find(|(_, v)| v["content_block"]["type"] == "tool_use")
        .unwrap();
    assert_eq!(start.1["content_block"]["name"], "get_weather");
    assert_eq!(start.1["content_block"]["input"], json!({}));
    let json_text: String = evs
        .iter()
        .filter(|(_, v)| v["delta"]["type"] == "input_json_delta")
        .filter_map(|(_, v)| v["delta"]["partial_json"].as_str())
        .collect();
    let input: Value = serde_json::from_str(&json_text).unwrap_or_else(|e| panic!("{e}: {json_text}"));
    assert!(input.is_object(), "{input}");
    let delta = &evs.iter().find(|(n, _)| n == "message_delta").unwrap().1;
    assert_eq!(delta["delta"]["stop_reason"], "tool_use", "{delta}");
}

#[tokio::test]
async fn a_tool_error_result_is_marked_and_images_move_to_a_user_message() {
    let s = stand().await;
    let png = "iVBORw0KGgo=";
    let body = json!({"model": "default", "max_tokens": 64, "tools": weather_tools(), "messages": [
        {"role": "user", "content": "Weather in Oslo?"},
        {"role": "assistant", "content": [{"type": "tool_use", "id": "toolu_1", "name": "get_weather", "input": {"city": "Oslo"}}]},
        {"role": "user", "content": [{"type": "tool_result", "tool_use_id": "toolu_1", "is_error": true, "content": [
            {"type": "text", "text": "station offline"},
            {"type": "image", "source": {"type": "base64", "media_type": "image/png", "data": png}}]}]}]});
    let r = call(&s.app, "POST", "/v1/messages", Some(body), &[V]).await;
    assert_eq!(r.status, 200, "{}", r.body);
    let sent = s.fakes["openai"].journal().last().unwrap().body_json().unwrap();
    let msgs = sent["messages"].as_array().unwrap();
    assert_eq!(
        msgs[1]["tool_calls"][0]["function"]["arguments"],
        "{\"city\":\"Oslo\"}"
    );
    assert_eq!(msgs[2]["role"], "tool");
    assert_eq!(msgs[2]["content"], "[tool error] station offline");
    assert_eq!(msgs[3]["role"], "user");
    assert_eq!(msgs[3]["content"][0]["type"], "image_url", "{sent}");
    assert_eq!(
        msgs[3]["content"][0]["image_url"]["url"],
        format!("data:image/png;base64,{png}")
    );
}

#[tokio::test]
async fn everything_failing_is_a_529_overloaded_error_with_the_attempts() {
    let s = stand().await;
    for (p, _) in PROVIDERS {
        s.fakes[p]
            .add_fault(FaultSpec::new(FaultKind::ServerError).times(100))
            .unwrap();
    }
    let r = call(&s.app, "POST", "/v1/messages", Some(plain(json!("hello"))), &[V]).await;
    assert_eq!(r.status, 529, "{}", r.body);
    let v = r.json();
    assert_eq!(v["type"], "error", "{v}");
    assert_eq!(v["error"]["type"], "overloaded_error", "{v}");
    assert!(v["request_id"].as_str().unwrap().len() > 4, "{v}");
    assert_eq!(r.header("request-id"), v["request_id"].as_str().unwrap());
    assert_eq!(r.header("x-request-id"), v["request_id"].as_str().unwrap());
    let tried: Vec<&str> = v["gateway_attempts"]
        .as_array()
        .unwrap()
        .iter()
        .filter_map(|a| a["provider"].as_str())
        .collect();
    for (p, _) in PROVIDERS {
        assert!(tried.contains(&p), "{p} in {v}");
    }
    assert!(
        r.headers.get("x-should-retry").is_none(),
        "server errors may pass: retry"
    );
}

#[tokio::test]
async fn quota_everywhere_is_overloaded_and_says_do_not_retry() {
    let s = stand().await;
    for (p, _) in PROVIDERS {
        s.fakes[p]
            .add_fault(FaultSpec::new(FaultKind::QuotaExhausted).times(100))
            .unwrap();
    }
    let r = call(&s.app, "POST", "/v1/messages", Some(plain(json!("hello"))), &[V]).await;
    assert_eq!(r.status, 529, "{}", r.body);
    assert_eq!(r.json()["error"]["type"], "overloaded_error");
    assert_eq!(r.header("x-should-retry"), "false", "{}", r.body);
}

#[tokio::test]
async fn bad_requests_are_anthropic_errors_naming_the_field_and_call_nobody() {
    let s = stand().await;
    let cases = [
        (
            json!({"model": "default", "messages": [{"role": "user", "content": "hi"}]}),
            "max_tokens",
        ),
        (
            json!({"model": "default", "max_tokens": 0, "messages": [{"role": "user", "content": "hi"}]}),
            "max_tokens",
        ),
        (
            json!({"model": "default", "max_tokens": "ten", "messages": [{"role": "user", "content": "hi"}]}),
            "max_tokens",
        ),
        (
            json!({"max_tokens": 10, "messages": [{"role": "user", "content": "hi"}]}),
            "model",
        ),
        (json!({"model": 5, "max_tokens": 10, "messages": []}), "model"),
        (
            json!({"model": "default", "max_tokens": 10, "messages": []}),
            "messages",
        ),
        (
            json!({"model": "default", "max_tokens": 10, "messages": "hi"}),
            "messages",
        ),
        (
            json!({"model": "default", "max_tokens": 10, "messages": [{"role": "tool", "content": "x"}]}),
            "messages[0].role",
        ),
        (
            json!({"model": "default", "max_tokens": 10, "messages": [{"role": "user", "content": 7}]}),
            "messages[0].content",
        ),
        (
            json!({"model": "default", "max_tokens": 10, "messages": [{"role": "user", "content": [{"type": "text"}]}]}),
            "messages[0].content[0].text",
        ),
        (
            json!({"model": "default", "max_tokens": 10, "messages": [{"role": "user", "content": [{"type": "search_result"}]}]}),
            "messages[0].content[0].type",
        ),
        (
            json!({"model": "default", "max_tokens": 10, "messages": [{"role": "user", "content": "   "}]}),
            "messages",
        ),
        (
            json!({"model": "default", "max_tokens": 10, "temperature": 1.5, "messages": [{"role": "user", "content": "hi"}]}),
            "temperature",
        ),
        (
            json!({"model": "default", "max_tokens": 10, "stop_sequences": "END", "messages": [{"role": "user", "content": "hi"}]}),
            "stop_sequences",
        ),
        (
            json!({"model": "default", "max_tokens": 10, "tools": [{"name": "x"}], "messages": [{"role": "user", "content": "hi"}]}),
            "tools[0].input_schema",
        ),
        (
            json!({"model": "default", "max_tokens": 10, "tools": [{"type": "web_search_20250305", "name": "web_search"}], "messages": [{"role": "user", "content": "hi"}]}),
            "tools[0].type",
        ),
        (
            json!({"model": "default", "max_tokens": 10, "tool_choice": "auto", "messages": [{"role": "user", "content": "hi"}]}),
            "tool_choice",
        ),
        (
            json!({"model": "default", "max_tokens": 10, "mcp_servers": [{"url": "https://x"}], "messages": [{"role": "user", "content": "hi"}]}),
            "mcp_servers",
        ),
        (
            json!({"model": "default", "max_tokens": 10, "system": 3, "messages": [{"role": "user", "content": "hi"}]}),
            "system",
        ),
    ];
    for (body, field) in cases {
        let r = call(&s.app, "POST", "/v1/messages", Some(body.clone()), &[V]).await;
        assert_eq!(r.status, 400, "{body}: {}", r.body);
        let v = r.json();
        assert_eq!(v["type"], "error", "{v}");
        assert_eq!(v["error"]["type"], "invalid_request_error", "{body}: {v}");
        let msg = v["error"]["message"].as_str().unwrap();
        assert!(msg.contains(field), "{body}: {field} not in {msg}");
    }
    for body in ["{not json", "[1,2]", ""] {
        let r = call_raw(&s.app, "/v1/messages", body).await;
        assert_eq!(r.status, 400, "{body}: {}", r.body);
        assert_eq!(r.json()["error"]["type"], "invalid_request_error", "{}", r.body);
    }
    let upstream: usize = PROVIDERS.iter().map(|(p, _)| s.fakes[p].journal().len()).sum();
    assert_eq!(upstream, 0, "no bad request reached a provider");
    let r = call(
        &s.app,
        "POST",
        "/v1/messages",
        Some(json!({"model": "gpt-9", "max_tokens": 5,
        "messages": [{"role": "user", "content": "hi"}]})),
        &[V],
    )
    .await;
    assert_eq!(r.status, 404, "{}", r.body);
    assert_eq!(r.json()["error"]["type"], "not_found_error");
}

async fn call_raw(app: &axum::Router, path: &str, body: &'static str) -> Reply {
    use tower::ServiceExt;
    let req = axum::http::Request::builder()
        .method("POST")
        .uri(path)
        .header("content-type", "application/json")
        .body(axum::body::Body::from(body))
        .unwrap();
    let resp = app.clone().oneshot(req).await.unwrap();
    let status = resp.status();
    let headers = resp.headers().clone();
    let bytes = axum::body::to_bytes(resp.into_body(), 1 << 20).await.unwrap();
    Reply {
        status,
        headers,
        body: String::from_utf8_lossy(&bytes).into_owned(),
    }
}

#[tokio::test]
async fn client_keys_work_as_x_api_key_or_bearer_and_errors_are_anthropic_shaped() {
    let fakes = fakes().await;
    let text = yaml(&fakes, "openai, kimi", "", "compatible")
        + "limits:\n  clients:\n    - { name: team, key: { value: sk-team-key }, requests_per_minute: 2 }\n";
    let (_, app) = gateway(&text);
    let r = call(&app, "POST", "/v1/messages", Some(plain(json!("hi"))), &[V]).await;
    assert_eq!(r.status, 401, "{}", r.body);
    assert_eq!(r.json()["error"]["type"], "authentication_error", "{}", r.body);
    let r = call(
        &app,
        "POST",
        "/v1/messages",
        Some(plain(json!("hi"))),
        &[V, ("x-api-key", "sk-team-key")],
    )
    .await;
    assert_eq!(r.status, 200, "{}", r.body);
    let r = call(
        &app,
        "POST",
        "/v1/messages",
        Some(plain(json!("hi"))),
        &[V, ("authorization", "Bearer sk-team-key")],
    )
    .await;
    assert_eq!(r.status, 200, "{}", r.body);
    let r = call(
        &app,
        "POST",
        "/v1/messages",
        Some(plain(json!("hi"))),
        &[V, ("x-api-key", "sk-team-key")],
    )
    .await;
    assert_eq!(r.status, 429, "{}", r.body);
    assert_eq!(r.json()["error"]["type"], "rate_limit_error", "{}", r.body);
    assert!(!r.header("retry-after").is_empty());
    assert!(!r.body.contains("sk-team-key"), "{}", r.body);
}

#[tokio::test]
async fn an_oversized_body_is_request_too_large() {
    let s = stand().await;
    let big = "x".repeat(70_000);
    let r = call(&s.app, "POST", "/v1/messages", Some(plain(json!(big))), &[V]).await;
    assert_eq!(r.status, 413, "{}", r.body.chars().take(300).collect::<String>());
    assert_eq!(r.json()["error"]["type"], "request_too_large");
}

#[tokio::test]
async fn count_tokens_estimates_without_calling_a_provider() {
    let s = stand().await;
    let small = json!({"model": "claude-sonnet-4-5", "messages": [{"role": "user", "content": "hi"}]});
    let r = call(&s.app, "POST", "/v1/messages/count_tokens", Some(small), &[V]).await;
    assert_eq!(r.status, 200, "{}", r.body);
    let a = r.json()["input_tokens"].as_u64().unwrap();
    assert!(a > 0);
    let big = json!({"model": "claude-sonnet-4-5", "system": "You are a careful agent. ".repeat(40),
        "tools": weather_tools(), "messages": [{"role": "user", "content": "hi ".repeat(400)}]});
    let r = call(&s.app, "POST", "/v1/messages/count_tokens", Some(big), &[V]).await;
    let b = r.json()["input_tokens"].as_u64().unwrap();
    assert!(b > a + 400, "{a} vs {b}");
    let upstream: usize = PROVIDERS.iter().map(|(p, _)| s.fakes[p].journal().len()).sum();
    assert_eq!(upstream, 0);
    let r = call(
        &s.app,
        "POST",
        "/v1/messages/count_tokens",
        Some(json!({"model": "nosuch", "messages": [{"role": "user", "content": "hi"}]})),
        &[V],
    )
    .await;
    assert_eq!(r.status, 404, "{}", r.body);
    assert_eq!(r.json()["error"]["type"], "not_found_error");
    let m = metrics(&s.app).await;
    assert!(
        sample(&m, "llm_gateway_requests_total", &[("route", "count_tokens")]) >= 3.0,
        "{m}"
    );
}

#[tokio::test]
async fn the_model_list_takes_the_anthropic_shape_for_anthropic_clients() {
    let s = stand().await;
    let r = call(&s.app, "GET", "/v1/models", None, &[V]).await;
    assert_eq!(r.status, 200);
    let v = r.json();
    let data = v["data"].as_array().unwrap();
    assert_eq!(data[0]["id"], "claude-sonnet-4-5", "{v}");
    for m in data {
        assert_eq!(m["type"], "model");
        assert!(m["display_name"].is_string() && m["created_at"].as_str().unwrap().ends_with('Z'));
    }
    assert_eq!(v["first_id"], "claude-sonnet-4-5");
    assert_eq!(v["has_more"], false);
    let r = call(&s.app, "GET", "/v1/models?limit=1", None, &[V]).await;
    let v = r.json();
    assert_eq!(v["data"].as_array().unwrap().len(), 1);
    assert_eq!(v["has_more"], true);
    let r = call(
        &s.app,
        "GET",
        "/v1/models?limit=1&after_id=claude-sonnet-4-5",
        None,
        &[V],
    )
    .await;
    assert_eq!(r.json()["data"][0]["id"], "default");
    let r = call(&s.app, "GET", "/v1/models/claude-sonnet-4-5", None, &[V]).await;
    assert_eq!(r.status, 200);
    assert_eq!(r.json()["type"], "model");
    let r = call(&s.app, "GET", "/v1/models/nosuch", None, &[V]).await;
    assert_eq!(r.status, 404);
    assert_eq!(r.json()["error"]["type"], "not_found_error", "{}", r.body);
    // Without anthropic-version: the OpenAI list, as before.
    let r = call(&s.app, "GET", "/v1/models", None, &[]).await;
    assert_eq!(r.json()["object"], "list");
    let r = call(&s.app, "HEAD", "/", None, &[]).await;
    assert_eq!(r.status, 200, "Claude Code's first request");
}

#[tokio::test]
async fn the_messages_route_is_counted_in_metrics() {
    let s = stand().await;
    let r = call(&s.app, "POST", "/v1/messages", Some(plain(json!("hello"))), &[V]).await;
    assert_eq!(r.status, 200);
    let m = metrics(&s.app).await;
    assert_eq!(
        sample(
            &m,
            "llm_gateway_requests_total",
            &[("route", "messages"), ("status", "200")]
        ),
        1.0,
        "{m}"
    );
}

/// `stream_failure: continue` on the Messages grammar: a stream cut after its first delta is finished by the next
/// provider and ends with `message_delta` and `message_stop`, never an error event.
#[tokio::test]
async fn stream_failure_continue_finishes_a_cut_stream_on_the_next_provider() {
    let s = stand_with("openai, kimi", "  stream_failure: continue\n", "compatible").await;
    s.fakes["openai"]
        .add_fault(
            FaultSpec::new(FaultKind::TruncatedStream)
                .times(1)
                .after_chunks(2),
        )
        .unwrap();
    let r = call(
        &s.app,
        "POST",
        "/v1/messages",
        Some(streamed(json!("hello"))),
        &[V],
    )
    .await;
    assert_eq!(r.status, 200, "{}", r.body);
    let evs = events(&r.body);
    assert_grammar(&evs);
    let n = names(&evs);
    assert!(!n.contains(&"error"), "{n:?}");
    assert_eq!(n.last(), Some(&"message_stop"), "{n:?}");
    let text = text_of(&evs);
    assert!(text.starts_with("[openai]") && text.contains("[kimi]"), "{text}");
}
