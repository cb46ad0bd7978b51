//! The OpenAI-shaped surface: OpenAI, Kimi, Qwen compatible mode and Ollama's `/v1`.

use crate::common::*;
use base64::Engine as _;
use llm_mocks::Provider;
use serde_json::{json, Value};

const FAMILY: [(Provider, &str, &str); 4] = [
    (Provider::OpenAi, "/v1", "gpt-4o-mini"),
    (Provider::Kimi, "/v1", "moonshot-v1-8k"),
    (Provider::Qwen, "/compatible-mode/v1", "qwen-plus"),
    (Provider::Ollama, "/v1", "llama3.2"),
];

#[tokio::test]
async fn chat_plain_has_every_required_field_and_tells_the_provider() {
    for (p, prefix, model) in FAMILY {
        let f = start(p).await;
        let r = post(
            &f,
            &format!("{prefix}/chat/completions"),
            Some("sk-test"),
            chat_body(model, "Hello", false),
        )
        .await;
        assert_eq!(r.status, 200, "{p}: {}", r.text);
        assert!(r.header("content-type").unwrap().starts_with("application/json"));
        let b = r.json();
        assert_eq!(b["object"], "chat.completion", "{p}");
        assert!(b["id"].as_str().unwrap().starts_with("chatcmpl-"), "{p}");
        assert!(b["created"].as_u64().unwrap() > 1_700_000_000);
        assert_eq!(b["model"], model);
        let content = b["choices"][0]["message"]["content"].as_str().unwrap();
        assert!(content.starts_with(&format!("[{}] ", p.name())), "{content}");
        assert_eq!(b["choices"][0]["message"]["role"], "assistant");
        assert_eq!(b["choices"][0]["finish_reason"], "stop");
        let u = &b["usage"];
        assert_eq!(
            u["total_tokens"].as_u64().unwrap(),
            u["prompt_tokens"].as_u64().unwrap() + u["completion_tokens"].as_u64().unwrap()
        );
        // Deterministic: the same prompt gets the same words.
        let again = post(
            &f,
            &format!("{prefix}/chat/completions"),
            Some("k"),
            chat_body(model, "Hello", false),
        )
        .await;
        assert_eq!(again.json()["choices"][0]["message"]["content"], content);
    }
}

#[tokio::test]
async fn openai_headers_carry_request_id_and_rate_limits() {
    let f = start(Provider::OpenAi).await;
    let r = post(
        &f,
        "/v1/chat/completions",
        Some("sk-test"),
        chat_body("gpt-4o", "x", false),
    )
    .await;
    assert!(r.header("x-request-id").unwrap().starts_with("req_"));
    for h in [
        "x-ratelimit-limit-requests",
        "x-ratelimit-remaining-requests",
        "x-ratelimit-limit-tokens",
        "x-ratelimit-remaining-tokens",
    ] {
        r.header(h).unwrap().parse::<u64>().unwrap();
    }
    assert!(r.header("x-ratelimit-reset-requests").unwrap().ends_with("ms"));
    assert_eq!(r.header("openai-version"), Some("2020-10-01"));
}

fn stream_chunks(r: &Reply) -> (Vec<Value>, Option<&'static str>) {
    let data = r.sse_data();
    let done = (data.last().map(String::as_str) == Some("[DONE]")).then_some("[DONE]");
    let chunks = data
        .iter()
        .filter(|d| *d != "[DONE]")
        .map(|d| serde_json::from_str(d).unwrap())
        .collect();
    (chunks, done)
}

#[tokio::test]
async fn streams_rebuild_the_plain_answer_and_end_with_done() {
    for (p, prefix, model) in FAMILY {
        let f = start(p).await;
        let path = format!("{prefix}/chat/completions");
        let plain = post(&f, &path, Some("k"), chat_body(model, "Stream me", false))
            .await
            .json();
        let mut body = chat_body(model, "Stream me", true);
        body["stream_options"] = json!({"include_usage": true});
        let r = post(&f, &path, Some("k"), body).await;
        assert_eq!(r.status, 200);
        assert!(r.header("content-type").unwrap().starts_with("text/event-stream"));
        let (chunks, done) = stream_chunks(&r);
        assert_eq!(done, Some("[DONE]"), "{p}");
        assert!(chunks.len() > 4);
        assert_eq!(chunks[0]["choices"][0]["delta"]["role"], "assistant");
        let ids: std::collections::HashSet<_> = chunks.iter().map(|c| c["id"].as_str().unwrap()).collect();
        assert_eq!(ids.len(), 1, "same id on every chunk");
        let text: String = chunks
            .iter()
            .filter_map(|c| c["choices"].get(0).and_then(|ch| ch["delta"]["content"].as_str()))
            .collect();
        assert_eq!(
            text,
            plain["choices"][0]["message"]["content"].as_str().unwrap(),
            "{p}"
        );
        if p == Provider::Kimi {
            // Moonshot: usage inside choices[0] of the last chunk, none at the top level.
            let last = chunks.last().unwrap();
            assert_eq!(last["choices"][0]["finish_reason"], "stop");
            assert!(last["choices"][0]["usage"]["total_tokens"].as_u64().unwrap() > 0);
            assert!(chunks.iter().all(|c| c.get("usage").is_none()));
        } else {
            let last = chunks.last().unwrap();
            assert_eq!(last["choices"], json!([]), "{p}: usage chunk has no choices");
            assert_eq!(last["usage"], plain["usage"], "{p}");
            assert!(chunks[..chunks.len() - 1].iter().all(|c| c["usage"].is_null()));
            assert_eq!(chunks[chunks.len() - 2]["choices"][0]["finish_reason"], "stop");
        }
    }
}

#[tokio::test]
async fn without_include_usage_a_stream_has_no_usage() {
    let f = start(Provider::OpenAi).await;
    let r = post(
        &f,
        "/v1/chat/completions",
        Some("k"),
        chat_body("gpt-4o-mini", "x", true),
    )
    .await;
    let (chunks, done) = stream_chunks(&r);
    assert!(done.is_some());
    assert!(chunks.iter().all(|c| c.get("usage").is_none()));
}

#[tokio::test]
async fn tool_calls_plain_and_streamed() {
    let f = start(Provider::OpenAi).await;
    let tools = json!([{"type": "function", "function": {"name": "get_weather", "parameters": {"type": "object",
        "properties": {"city": {"type": "string"}, "unit": {"type": "string", "enum": ["c", "f"]}}, "required": ["city", "unit"]}}}]);
    let mut body = chat_body("gpt-4o-mini", "Weather in Oslo?", false);
    body["tools"] = tools.clone();
    let b = post(&f, "/v1/chat/completions", Some("k"), body.clone())
        .await
        .json();
    let choice = &b["choices"][0];
    assert_eq!(choice["finish_reason"], "tool_calls");
    assert!(choice["message"]["content"].is_null());
    let call = &choice["message"]["tool_calls"][0];
    assert!(call["id"].as_str().unwrap().starts_with("call_"));
    assert_eq!(call["function"]["name"], "get_weather");
    let args: Value = serde_json::from_str(call["function"]["arguments"].as_str().unwrap()).unwrap();
    assert_eq!(args["unit"], "c");
    body["stream"] = json!(true);
    let r = post(&f, "/v1/chat/completions", Some("k"), body).await;
    let (chunks, _) = stream_chunks(&r);
    let mut streamed = String::new();
    for c in &chunks {
        if let Some(tc) = c["choices"][0]["delta"]["tool_calls"].get(0) {
            streamed.push_str(tc["function"]["arguments"].as_str().unwrap_or(""));
        }
    }
    assert_eq!(serde_json::from_str::<Value>(&streamed).unwrap(), args);
    assert_eq!(
        chunks.last().unwrap()["choices"][0]["finish_reason"],
        "tool_calls"
    );
}

#[tokio::test]
async fn max_tokens_ends_with_length() {
    let f = start(Provider::OpenAi).await;
    let mut body = chat_body("gpt-4o-mini", "x", false);
    body["max_tokens"] = json!(4);
    let b = post(&f, "/v1/chat/completions", Some("k"), body).await.json();
    assert_eq!(b["choices"][0]["finish_reason"], "length");
    assert!(b["usage"]["completion_tokens"].as_u64().unwrap() <= 4);
}

#[tokio::test]
async fn embeddings_float_and_base64_agree() {
    for (p, prefix, model) in [
        (Provider::OpenAi, "/v1", "text-embedding-3-small"),
        (Provider::Qwen, "/compatible-mode/v1", "text-embedding-v3"),
        (Provider::Ollama, "/v1", "all-minilm"),
    ] {
        let f = start(p).await;
        let path = format!("{prefix}/embeddings");
        let fl = post(
            &f,
            &path,
            Some("k"),
            json!({"model": model, "input": ["a", "b"], "encoding_format": "float"}),
        )
        .await
        .json();
        assert_eq!(fl["object"], "list");
        assert_eq!(fl["data"].as_array().unwrap().len(), 2);
        assert_eq!(fl["data"][1]["index"], 1);
        let v: Vec<f32> = fl["data"][0]["embedding"]
            .as_array()
            .unwrap()
            .iter()
            .map(|x| x.as_f64().unwrap() as f32)
            .collect();
        let b64 = post(
            &f,
            &path,
            Some("k"),
            json!({"model": model, "input": "a", "encoding_format": "base64"}),
        )
        .await
        .json();
        let raw = base64::engine::general_purpose::STANDARD
            .decode(b64["data"][0]["embedding"].as_str().unwrap())
            .unwrap();
        let decoded: Vec<f32> = raw
            .chunks(4)
            .map(|c| f32::from_le_bytes([c[0], c[1], c[2], c[3]]))
            .collect();
        assert_eq!(decoded.len(), v.len(), "{p}");
        for (a, b) in decoded.iter().zip(&v) {
            assert!((a - b).abs() < 1e-6);
        }
        assert!(fl["usage"]["prompt_tokens"].as_u64().unwrap() > 0);
    }
    let f = start(Provider::OpenAi).await;
    let d = post(
        &f,
        "/v1/embeddings",
        Some("k"),
        json!({"model": "text-embedding-3-large", "input": "x", "dimensions": 256}),
    )
    .await
    .json();
    assert_eq!(d["data"][0]["embedding"].as_array().unwrap().len(), 256);
}

#[tokio::test]
async fn models_list_and_get() {
    for (p, prefix, model) in FAMILY {
        let f = start(p).await;
        let l = get(&f, &format!("{prefix}/models"), Some("k")).await.json();
        assert_eq!(l["object"], "list");
        assert!(l["data"]
            .as_array()
            .unwrap()
            .iter()
            .all(|m| m["object"] == "model" && m["owned_by"].is_string()));
        let one = get(
            &f,
            &format!("{prefix}/models/{}", l["data"][0]["id"].as_str().unwrap()),
            Some("k"),
        )
        .await;
        assert_eq!(one.status, 200, "{p}");
        let missing = get(&f, &format!("{prefix}/models/no-such-model"), Some("k")).await;
        assert_eq!(missing.status, 404, "{p}");
        let unknown = post(
            &f,
            &format!("{prefix}/chat/completions"),
            Some("k"),
            chat_body("no-such-model", "x", false),
        )
        .await;
        assert_eq!(unknown.status, 404, "{p}: {}", unknown.text);
        let _ = model;
    }
    let k = start(Provider::Kimi).await;
    let l = get(&k, "/v1/models", Some("k")).await.json();
    assert!(l["data"][0]["permission"].is_array());
}

#[tokio::test]
async fn missing_credentials_get_each_providers_401() {
    let cases = [
        (
            Provider::OpenAi,
            "/v1",
            "gpt-4o-mini",
            "/error/type",
            "invalid_request_error",
        ),
        (
            Provider::Kimi,
            "/v1",
            "moonshot-v1-8k",
            "/error/type",
            "invalid_authentication_error",
        ),
        (
            Provider::Qwen,
            "/compatible-mode/v1",
            "qwen-plus",
            "/error/code",
            "invalid_api_key",
        ),
    ];
    for (p, prefix, model, ptr, want) in cases {
        let f = start(p).await;
        let r = post(
            &f,
            &format!("{prefix}/chat/completions"),
            None,
            chat_body(model, "x", false),
        )
        .await;
        assert_eq!(r.status, 401, "{p}");
        assert_eq!(r.json().pointer(ptr).unwrap(), want, "{p}");
        let m = get(&f, &format!("{prefix}/models"), None).await;
        assert_eq!(m.status, 401, "{p}");
    }
    // Ollama's /v1 ignores keys, as the real one does.
    let o = start(Provider::Ollama).await;
    assert_eq!(
        post(
            &o,
            "/v1/chat/completions",
            None,
            chat_body("llama3.2", "x", false)
        )
        .await
        .status,
        200
    );
}

#[tokio::test]
async fn bad_input_gets_clear_400s() {
    let f = start(Provider::OpenAi).await;
    let r = post_raw(&f, "/v1/chat/completions", Some("k"), "{not json".into()).await;
    assert_eq!(r.status, 400);
    assert_eq!(r.json()["error"]["type"], "invalid_request_error");
    let r = post(&f, "/v1/chat/completions", Some("k"), json!({"model": "gpt-4o"})).await;
    assert_eq!(r.status, 400);
    assert_eq!(r.json()["error"]["param"], "messages");
    let mut body = chat_body("gpt-4o", "x", false);
    body["temperature"] = json!(2.5);
    assert_eq!(
        post(&f, "/v1/chat/completions", Some("k"), body).await.status,
        400
    );
    // Kimi's temperature range is [0, 1].
    let k = start(Provider::Kimi).await;
    let mut body = chat_body("moonshot-v1-8k", "x", false);
    body["temperature"] = json!(1.5);
    let r = post(&k, "/v1/chat/completions", Some("k"), body).await;
    assert_eq!(r.status, 400);
    assert_eq!(r.json()["error"]["type"], "invalid_request_error");
    assert!(
        r.json()["error"].get("code").is_none(),
        "Moonshot errors have no code"
    );
    // A prompt longer than the model's window.
    let long = "word ".repeat(40_000);
    let r = post(
        &k,
        "/v1/chat/completions",
        Some("k"),
        chat_body("moonshot-v1-8k", &long, false),
    )
    .await;
    assert_eq!(r.status, 400);
    assert!(r.json()["error"]["message"]
        .as_str()
        .unwrap()
        .contains("token limit"));
}

#[tokio::test]
async fn kimi_balance_and_edge_404() {
    let k = start(Provider::Kimi).await;
    let b = get(&k, "/v1/users/me/balance", Some("k")).await.json();
    assert_eq!(b["status"], true);
    assert!(b["data"]["available_balance"].as_f64().unwrap() > 0.0);
    let r = get(&k, "/v1/unknown", Some("k")).await;
    assert_eq!(r.status, 404);
    assert_eq!(r.json()["error"], "url.not_found");
}

#[tokio::test]
async fn qwen_compat_errors_carry_request_id() {
    let q = start(Provider::Qwen).await;
    let r = post(
        &q,
        "/compatible-mode/v1/chat/completions",
        None,
        chat_body("qwen-plus", "x", false),
    )
    .await;
    assert!(r.json()["request_id"].as_str().unwrap().len() >= 32);
}
