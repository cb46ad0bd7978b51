//! Every provider answers plain chat, streamed chat and embeddings through the gateway (against llm-mocks).

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]
mod common;

use common::*;
use serde_json::json;

#[tokio::test]
async fn every_provider_answers_plain_and_streamed_chat() {
    let s = stand().await;
    for (name, _) in PROVIDERS {
        let r = call(
            &s.app,
            "POST",
            "/v1/chat/completions",
            Some(chat(false)),
            &[("x-llm-provider", name)],
        )
        .await;
        assert_eq!(r.status, 200, "{name}: {}", r.body);
        assert_eq!(r.header("x-llm-actual-provider"), name);
        assert_eq!(r.header("x-llm-fallbacks"), "0");
        assert!(r.header("x-request-id").starts_with("req-"));
        let expected_source = if name == "ollama" { "local" } else { "provider" };
        assert_eq!(r.header("x-llm-source"), expected_source);
        let v = r.json();
        let text = v["choices"][0]["message"]["content"].as_str().unwrap();
        assert!(text.starts_with(&format!("[{name}]")), "{name}: {text}");
        assert_eq!(v["object"], "chat.completion");
        assert!(v["usage"]["total_tokens"].as_u64().unwrap() > 0, "{name}: {v}");
        if name == "openai" {
            // An OpenAI answer already in shape goes to the client as the upstream sent it, fields the canonical
            // type does not model included.
            assert_eq!(v["system_fingerprint"], "fp_fake0001", "{v}");
            assert_eq!(r.header("content-type"), "application/json");
        }

        let r = call(
            &s.app,
            "POST",
            "/v1/chat/completions",
            Some(chat(true)),
            &[("x-llm-provider", name)],
        )
        .await;
        assert_eq!(r.status, 200, "{name}: {}", r.body);
        assert_eq!(r.header("content-type"), "text/event-stream");
        assert!(r.body.trim_end().ends_with("data: [DONE]"), "{name}: {}", r.body);
        assert!(!r.body.contains("event: error"), "{name}: {}", r.body);
        assert!(
            r.sse_text().starts_with(&format!("[{name}]")),
            "{name}: {}",
            r.body
        );
        if name == "openai" {
            streamed_as_it_came(&r.body, false);
            let mut with_usage = chat(true);
            with_usage["stream_options"] = json!({"include_usage": true});
            let r = call(
                &s.app,
                "POST",
                "/v1/chat/completions",
                Some(with_usage),
                &[("x-llm-provider", name)],
            )
            .await;
            assert_eq!(r.status, 200, "{}", r.body);
            streamed_as_it_came(&r.body, true);
        }
    }
    let m = metrics(&s.app).await;
    for (name, _) in PROVIDERS {
        assert!(
            sample(
                &m,
                "llm_gateway_tokens_total",
                &[("provider", name), ("kind", "completion")]
            ) > 0.0,
            "{name}\n{m}"
        );
        assert!(
            sample(
                &m,
                "llm_gateway_time_to_first_token_seconds_count",
                &[("provider", name)]
            ) >= 1.0
        );
    }
    assert_eq!(
        sample(&m, "llm_gateway_offline_hits_total", &[("source", "local")]),
        2.0
    );
}

#[tokio::test]
async fn stream_usage_only_when_asked() {
    let s = stand().await;
    let mut body = chat(true);
    body["stream_options"] = json!({"include_usage": true});
    let r = call(&s.app, "POST", "/v1/chat/completions", Some(body), &[]).await;
    assert!(r.body.contains("\"usage\":{"), "{}", r.body);
    let r = call(&s.app, "POST", "/v1/chat/completions", Some(chat(true)), &[]).await;
    assert!(!r.body.contains("\"usage\""), "{}", r.body);
}

#[tokio::test]
async fn qwen_native_mode_chat_stream_and_embeddings() {
    let s = stand_with("qwen", "", "native").await;
    let r = call(&s.app, "POST", "/v1/chat/completions", Some(chat(false)), &[]).await;
    assert_eq!(r.status, 200, "{}", r.body);
    assert!(r.json()["choices"][0]["message"]["content"]
        .as_str()
        .unwrap()
        .starts_with("[qwen]"));
    let r = call(&s.app, "POST", "/v1/chat/completions", Some(chat(true)), &[]).await;
    assert_eq!(r.status, 200, "{}", r.body);
    assert!(r.sse_text().starts_with("[qwen]"), "{}", r.body);
    assert!(r.body.trim_end().ends_with("data: [DONE]"));
    let journal = s.fakes["qwen"].journal();
    assert!(
        journal.iter().all(|e| e.path.contains("/api/v1/services/")),
        "native paths only"
    );
    let r = call(
        &s.app,
        "POST",
        "/v1/embeddings",
        Some(json!({"model": "embeddings", "input": ["a", "b"]})),
        &[],
    )
    .await;
    assert_eq!(r.status, 200, "{}", r.body);
    assert_eq!(r.json()["data"].as_array().unwrap().len(), 2);
}

#[tokio::test]
async fn embeddings_from_each_provider_float_and_base64() {
    let s = stand().await;
    for name in ["openai", "qwen", "gigachat", "ollama"] {
        let body = json!({"model": "embeddings", "input": ["hello", "world"]});
        let r = call(
            &s.app,
            "POST",
            "/v1/embeddings",
            Some(body),
            &[("x-llm-provider", name)],
        )
        .await;
        assert_eq!(r.status, 200, "{name}: {}", r.body);
        assert_eq!(r.header("x-llm-actual-provider"), name);
        let v = r.json();
        assert_eq!(v["data"].as_array().unwrap().len(), 2, "{name}");
        assert!(v["data"][0]["embedding"].as_array().unwrap().len() > 10, "{name}");
        let body = json!({"model": "embeddings", "input": "hello", "encoding_format": "base64"});
        let r = call(
            &s.app,
            "POST",
            "/v1/embeddings",
            Some(body),
            &[("x-llm-provider", name)],
        )
        .await;
        assert!(r.json()["data"][0]["embedding"].is_string(), "{name}");
    }
}

#[tokio::test]
async fn gigachat_gets_one_token_and_rquid() {
    let s = stand_with("gigachat", "", "compatible").await;
    for _ in 0..3 {
        let r = call(&s.app, "POST", "/v1/chat/completions", Some(chat(false)), &[]).await;
        assert_eq!(r.status, 200, "{}", r.body);
    }
    let j = s.fakes["gigachat"].journal();
    let oauth: Vec<_> = j.iter().filter(|e| e.path.ends_with("/oauth")).collect();
    assert_eq!(oauth.len(), 1, "token is cached");
    assert!(oauth[0].header("rquid").is_some_and(|v| v.len() == 36));
}

#[tokio::test]
async fn models_assistants_health_and_admin() {
    let s = stand().await;
    let r = call(&s.app, "GET", "/v1/models", None, &[]).await;
    let ids: Vec<String> = r.json()["data"]
        .as_array()
        .unwrap()
        .iter()
        .map(|m| m["id"].as_str().unwrap().to_string())
        .collect();
    assert!(
        ids.contains(&"default".to_string()) && ids.contains(&"gpt-4o-mini".to_string()),
        "{ids:?}"
    );

    let r = call(&s.app, "GET", "/v1/models/gpt-4o-mini", None, &[]).await;
    assert_eq!(r.json()["owned_by"], "openai");
    let r = call(&s.app, "GET", "/v1/models/qwen2.5:7b", None, &[]).await;
    assert_eq!(r.status, 404);
    assert_eq!(r.json()["error"]["code"], "model_not_found");
    let mut body = chat(false);
    body["model"] = serde_json::json!("kimi/kimi-latest");
    let r = call(&s.app, "POST", "/v1/chat/completions", Some(body), &[]).await;
    assert_eq!(r.status, 200, "{}", r.body);
    assert_eq!(r.header("x-llm-actual-provider"), "kimi");
    assert!(r.json()["model"].as_str().unwrap().starts_with("kimi-latest"));

    let r = call(
        &s.app,
        "POST",
        "/api/assistants/generate",
        Some(json!({"prompt": "What is 2+2?"})),
        &[],
    )
    .await;
    assert_eq!(r.status, 200, "{}", r.body);
    let v = r.json();
    assert_eq!(v["provider"], "openai");
    assert!(v["text"].as_str().unwrap().starts_with("[openai]"));

    assert_eq!(call(&s.app, "GET", "/healthz", None, &[]).await.status, 200);
    assert_eq!(call(&s.app, "GET", "/readyz", None, &[]).await.status, 200);
    let admin = call(&s.app, "GET", "/admin/providers", None, &[]).await;
    assert_eq!(admin.status, 200);
    for secret in [
        "sk-test-openai-secret",
        "sk-test-kimi-secret",
        "Y2xpZW50OnNlY3JldA==",
    ] {
        assert!(!admin.body.contains(secret), "admin leaks a secret");
        assert!(!metrics(&s.app).await.contains(secret));
    }
    let r = call(
        &s.app,
        "POST",
        "/admin/mode",
        Some(json!({"mode": "offline"})),
        &[],
    )
    .await;
    assert_eq!(r.status, 200, "{}", r.body);
    let r = call(&s.app, "POST", "/v1/chat/completions", Some(chat(false)), &[]).await;
    assert_eq!(r.header("x-llm-actual-provider"), "ollama");
    assert_eq!(r.header("x-llm-source"), "local");
    for remote in ["openai", "kimi", "qwen", "gigachat"] {
        let chats = s.fakes[remote]
            .journal()
            .iter()
            .filter(|e| e.path.contains("chat"))
            .count();
        let before = usize::from(remote == "openai" || remote == "kimi");
        assert_eq!(chats, before, "{remote}: only the call made before offline mode");
    }
    let m = metrics(&s.app).await;
    assert_eq!(sample(&m, "llm_gateway_mode", &[("mode", "offline")]), 1.0);
    let r = call(
        &s.app,
        "POST",
        "/admin/mode",
        Some(json!({"mode": "sideways"})),
        &[],
    )
    .await;
    assert_eq!(r.status, 400);
}

/// An OpenAI stream goes to the client as the upstream's chunks: fields the canonical chunk does not model
/// (`system_fingerprint`, `logprobs`) on every chunk; `"usage":null` on each only when the client asked for usage
/// (the gateway always asks the upstream), and the usage chunk then last.
fn streamed_as_it_came(body: &str, include_usage: bool) {
    let chunks: Vec<serde_json::Value> = body
        .lines()
        .filter_map(|l| l.strip_prefix("data: "))
        .filter(|d| !d.starts_with("[DONE]"))
        .map(|d| serde_json::from_str(d).unwrap())
        .collect();
    assert!(chunks.len() > 3, "{body}");
    let (last, content) = chunks.split_last().unwrap();
    for c in if include_usage { content } else { &chunks[..] } {
        assert_eq!(c["system_fingerprint"], "fp_fake0001", "{c}");
        assert!(c["choices"][0].get("logprobs").is_some(), "{c}");
        assert_eq!(c.get("usage").is_some(), include_usage, "{c}");
        assert!(c["usage"].is_null(), "{c}");
    }
    if include_usage {
        assert_eq!(last["choices"], json!([]), "{last}");
        assert!(last["usage"]["total_tokens"].as_u64().unwrap() > 0, "{last}");
    } else {
        assert!(last["choices"][0]["finish_reason"].is_string(), "{last}");
    }
}
