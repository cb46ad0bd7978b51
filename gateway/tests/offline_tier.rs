//! The offline tier end to end against the fakes: packages in offline mode (zero remote requests), packages after
//! every provider failed, stale-on-error, client keys and limits, provider budgets, connectivity probes.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]
mod common;

use std::time::Duration;

use common::*;
use llm_mocks::{FaultKind, FaultSpec};
use serde_json::json;

const REMOTE: [&str; 4] = ["openai", "kimi", "qwen", "gigachat"];

fn packages() -> String {
    format!(
        "offline: {{ packages: [\"{}/../config/offline\"] }}\n",
        env!("CARGO_MANIFEST_DIR")
    )
}

fn ask(text: &str, stream: bool) -> serde_json::Value {
    json!({"model": "default", "stream": stream, "messages": [{"role": "user", "content": text}]})
}

async fn offline_mode(app: &axum::Router) {
    let r = call(app, "POST", "/admin/mode", Some(json!({"mode": "offline"})), &[]).await;
    assert_eq!(r.status, 200, "{}", r.body);
}

#[tokio::test]
async fn offline_mode_answers_from_packages_with_zero_remote_requests() {
    let s = stand_with("openai, kimi, qwen, gigachat, ollama", &packages(), "compatible").await;
    s.fakes["ollama"]
        .add_fault(FaultSpec::new(FaultKind::DropConnection))
        .unwrap();
    offline_mode(&s.app).await;
    let r = call(
        &s.app,
        "POST",
        "/v1/chat/completions",
        Some(ask("Сделай SQL-фильтр по продажам", false)),
        &[],
    )
    .await;
    assert_eq!(r.status, 200, "{}", r.body);
    assert_eq!(r.header("x-llm-source"), "offline-package");
    assert_eq!(r.header("x-llm-offline-entry"), "sql-filter-sales");
    assert_eq!(r.header("x-llm-offline-package"), "analytics-assistant@1.0.0");
    let v = r.json();
    assert_eq!(v["object"], "chat.completion");
    assert_eq!(v["model"], "offline/analytics-assistant");
    assert!(v["choices"][0]["message"]["content"]
        .as_str()
        .unwrap()
        .contains("SELECT"));
    assert!(v["usage"]["total_tokens"].as_u64().unwrap() > 0);

    let r = call(
        &s.app,
        "POST",
        "/v1/chat/completions",
        Some(ask("сделайте sql фильтры по продажам", true)),
        &[],
    )
    .await;
    assert_eq!(r.status, 200, "{}", r.body);
    assert_eq!(r.header("content-type"), "text/event-stream");
    assert!(r.sse_text().contains("SELECT"), "{}", r.body);
    assert!(r.body.trim_end().ends_with("data: [DONE]"));

    let r = call(
        &s.app,
        "POST",
        "/api/assistants/generate",
        Some(json!({"prompt": "Make an SQL filter for sales"})),
        &[],
    )
    .await;
    assert_eq!(r.status, 200, "{}", r.body);
    assert_eq!(r.json()["source"], "offline-package");

    let r = call(
        &s.app,
        "POST",
        "/v1/embeddings",
        Some(
            json!({"model": "embeddings-local", "input": ["Сделай SQL-фильтр по продажам"], "dimensions": 8}),
        ),
        &[],
    )
    .await;
    assert_eq!(r.status, 200, "{}", r.body);
    assert_eq!(r.header("x-llm-source"), "offline-package");
    assert_eq!(r.json()["data"][0]["embedding"].as_array().unwrap().len(), 8);
    // Vectors of another size (the local model's own 384) are never served in their place.
    let r = call(
        &s.app,
        "POST",
        "/v1/embeddings",
        Some(json!({"model": "embeddings-local", "input": ["Сделай SQL-фильтр по продажам"]})),
        &[],
    )
    .await;
    assert_eq!(r.status, 503, "{}", r.body);
    assert_eq!(r.json()["error"]["code"], "offline_miss");

    let r = call(
        &s.app,
        "POST",
        "/v1/chat/completions",
        Some(ask("Write a haiku about a network outage", false)),
        &[],
    )
    .await;
    assert_eq!(r.status, 503);
    assert_eq!(r.json()["error"]["code"], "offline_miss");

    let m = metrics(&s.app).await;
    assert_eq!(
        sample(&m, "llm_gateway_offline_hits_total", &[("source", "package")]),
        4.0
    );
    assert_eq!(sample(&m, "llm_gateway_offline_misses_total", &[]), 2.0);
    assert_eq!(
        sample(&m, "llm_gateway_requests_total", &[("source", "offline-package")]),
        4.0
    );
    for remote in REMOTE {
        assert_eq!(
            s.fakes[remote].request_count(),
            0,
            "{remote} was called in offline mode"
        );
    }
    let st = call(&s.app, "GET", "/admin/offline", None, &[]).await.json();
    assert_eq!(st["packages"][0]["checksum_ok"], true);
    assert_eq!(st["issues"].as_array().unwrap().len(), 0);
    assert_eq!(
        call(&s.app, "GET", "/readyz", None, &[]).await.status,
        200,
        "packages keep it ready"
    );
}

#[tokio::test]
async fn auto_mode_falls_back_to_packages_only_after_every_provider_failed() {
    let s = stand_with("openai, ollama", &packages(), "compatible").await;
    let r = call(
        &s.app,
        "POST",
        "/v1/chat/completions",
        Some(ask("Сделай SQL-фильтр по продажам", false)),
        &[],
    )
    .await;
    assert_eq!(
        r.header("x-llm-source"),
        "provider",
        "healthy providers answer first"
    );
    for name in ["openai", "ollama"] {
        s.fakes[name]
            .add_fault(FaultSpec::new(FaultKind::DropConnection))
            .unwrap();
    }
    let r = call(
        &s.app,
        "POST",
        "/v1/chat/completions",
        Some(ask("Сделай SQL-фильтр по продажам", false)),
        &[],
    )
    .await;
    assert_eq!(r.status, 200, "{}", r.body);
    assert_eq!(r.header("x-llm-source"), "offline-package");
    let r = call(&s.app, "POST", "/v1/chat/completions", Some(chat(false)), &[]).await;
    assert_eq!(r.status, 503);
    assert_eq!(
        r.json()["error"]["code"],
        "all_providers_failed",
        "auto mode keeps its own error"
    );
}

#[tokio::test]
async fn cache_hits_bypass_and_stale_on_error() {
    let extra = "cache: { ttl: 60s, serve_stale_on_error: true, stale_for: 1h }\n";
    let s = stand_with("openai", extra, "compatible").await;
    let mut body = chat(false);
    body["temperature"] = json!(0);
    let r = call(&s.app, "POST", "/v1/chat/completions", Some(body.clone()), &[]).await;
    assert_eq!(r.header("x-llm-source"), "provider");
    let first = r.json()["choices"][0]["message"]["content"].clone();
    let r = call(&s.app, "POST", "/v1/chat/completions", Some(body.clone()), &[]).await;
    assert_eq!(r.header("x-llm-source"), "cache");
    assert_eq!(r.header("x-llm-cache"), "hit");
    assert_eq!(r.json()["choices"][0]["message"]["content"], first);
    assert_eq!(s.fakes["openai"].request_count(), 1);
    let r = call(
        &s.app,
        "POST",
        "/v1/chat/completions",
        Some(body.clone()),
        &[("cache-control", "no-cache")],
    )
    .await;
    assert_eq!(r.header("x-llm-source"), "provider");
    assert_eq!(s.fakes["openai"].request_count(), 2);
    let mut warm = body.clone();
    warm["temperature"] = json!(0.7);
    call(&s.app, "POST", "/v1/chat/completions", Some(warm.clone()), &[]).await;
    let r = call(&s.app, "POST", "/v1/chat/completions", Some(warm), &[]).await;
    assert_eq!(
        r.header("x-llm-source"),
        "provider",
        "non-deterministic requests are not cached"
    );

    // The answer expires; then every provider fails: the expired answer still answers, marked stale.
    tokio::time::pause();
    tokio::time::advance(Duration::from_secs(61)).await;
    tokio::time::resume();
    s.fakes["openai"]
        .add_fault(FaultSpec::new(FaultKind::DropConnection))
        .unwrap();
    let r = call(&s.app, "POST", "/v1/chat/completions", Some(body.clone()), &[]).await;
    assert_eq!(r.status, 200, "{}", r.body);
    assert_eq!(r.header("x-llm-source"), "cache");
    assert_eq!(r.header("x-llm-cache"), "stale");
    assert_eq!(r.json()["choices"][0]["message"]["content"], first);
    let m = metrics(&s.app).await;
    for (result, n) in [("hit", 1.0), ("stale", 1.0), ("bypass", 1.0)] {
        assert_eq!(
            sample(&m, "llm_gateway_cache_requests_total", &[("result", result)]),
            n,
            "{result}\n{m}"
        );
    }
}

#[tokio::test]
async fn client_keys_and_per_key_limits() {
    let extra = r#"limits:
  clients:
    - { name: team-a, key: { value: key-team-a-123 }, requests_per_minute: 2 }
    - { name: team-b, key: { value: key-team-b-456 }, tokens_per_minute: 5 }
"#;
    let s = stand_with("openai", extra, "compatible").await;
    let r = call(&s.app, "POST", "/v1/chat/completions", Some(chat(false)), &[]).await;
    assert_eq!(r.status, 401);
    assert_eq!(r.json()["error"]["code"], "invalid_api_key");
    let bad = call(
        &s.app,
        "GET",
        "/v1/models",
        None,
        &[("authorization", "Bearer key-team-a-12X")],
    )
    .await;
    assert_eq!(bad.status, 401);
    assert_eq!(
        call(&s.app, "GET", "/healthz", None, &[]).await.status,
        200,
        "health needs no key"
    );
    let a = [("authorization", "Bearer key-team-a-123")];
    // The scheme is case-insensitive (RFC 9110).
    for h in ["Bearer key-team-a-123", "bearer key-team-a-123"] {
        assert_eq!(
            call(
                &s.app,
                "POST",
                "/v1/chat/completions",
                Some(chat(false)),
                &[("authorization", h)]
            )
            .await
            .status,
            200,
            "{h}"
        );
    }
    let r = call(&s.app, "POST", "/v1/chat/completions", Some(chat(false)), &a).await;
    assert_eq!(r.status, 429, "{}", r.body);
    assert_eq!(r.json()["error"]["code"], "rate_limit_exceeded");
    assert_eq!(r.json()["error"]["type"], "requests");
    assert_eq!(r.header("retry-after"), "30");
    assert!(!r.body.contains("key-team-a-123"));
    let b = [("x-api-key", "key-team-b-456")];
    assert_eq!(
        call(&s.app, "POST", "/v1/chat/completions", Some(chat(false)), &b)
            .await
            .status,
        200
    );
    let r = call(&s.app, "POST", "/v1/chat/completions", Some(chat(false)), &b).await;
    assert_eq!(r.status, 429, "team-b's answer used more than 5 tokens");
    assert!(r.body.contains("tokens_per_minute"), "{}", r.body);
    let m = metrics(&s.app).await;
    assert_eq!(
        sample(&m, "llm_gateway_rate_limited_total", &[("scope", "client")]),
        2.0
    );
    assert!(!m.contains("key-team"));
    assert_eq!(
        s.fakes["openai"].request_count(),
        3,
        "limited requests never reach a provider"
    );
}

#[tokio::test]
async fn provider_budget_routes_to_the_next_provider() {
    let s = fakes().await;
    let text = yaml(&s, "openai, kimi", "", "compatible").replace(
        "secret: { value: sk-test-openai-secret } }",
        "secret: { value: sk-test-openai-secret }, limits: { requests_per_minute: 1 } }",
    );
    let (_state, app) = gateway(&text);
    assert_eq!(
        call(&app, "POST", "/v1/chat/completions", Some(chat(false)), &[])
            .await
            .header("x-llm-actual-provider"),
        "openai"
    );
    let r = call(&app, "POST", "/v1/chat/completions", Some(chat(false)), &[]).await;
    assert_eq!(r.header("x-llm-actual-provider"), "kimi");
    assert_eq!(
        s["openai"].request_count(),
        1,
        "skipped before its own quota bites"
    );
    let admin = call(&app, "GET", "/admin/providers", None, &[]).await.json();
    let openai = admin["providers"]
        .as_array()
        .unwrap()
        .iter()
        .find(|p| p["name"] == "openai")
        .unwrap()
        .clone();
    assert_eq!(
        openai["budgets"][0],
        json!({"budget": "requests_minute", "used": 1, "limit": 1, "resets_in_ms": openai["budgets"][0]["resets_in_ms"]})
    );
    let m = metrics(&app).await;
    assert_eq!(
        sample(
            &m,
            "llm_gateway_provider_budget_used",
            &[("provider", "openai"), ("budget", "requests_minute")]
        ),
        1.0
    );
    assert_eq!(
        sample(
            &m,
            "llm_gateway_provider_requests_total",
            &[("provider", "openai"), ("outcome", "skipped_budget")]
        ),
        1.0
    );
}

#[tokio::test]
async fn connectivity_probe_marks_an_unreachable_provider_and_requests_skip_it() {
    let s = fakes().await;
    // A port nobody listens on: bound, then closed.
    let dead = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap();
    let text = yaml(
        &s,
        "openai, kimi, ollama",
        "connectivity: { probe_interval: 1h, probe_timeout: 2s }\n",
        "compatible",
    )
    .replace(&s["openai"].base_url(), &format!("http://{dead}/v1"));
    let (state, app) = gateway(&text);
    let mut rounds = state.router.connectivity().rounds();
    llm_gateway::server::start_probes(&state);
    rounds.changed().await.unwrap();
    let r = call(&app, "POST", "/v1/chat/completions", Some(chat(false)), &[]).await;
    assert_eq!(r.status, 200, "{}", r.body);
    assert_eq!(r.header("x-llm-actual-provider"), "kimi");
    let m = metrics(&app).await;
    assert_eq!(
        sample(&m, "llm_gateway_provider_reachable", &[("provider", "openai")]),
        0.0
    );
    assert_eq!(
        sample(&m, "llm_gateway_provider_reachable", &[("provider", "kimi")]),
        1.0
    );
    assert_eq!(
        sample(
            &m,
            "llm_gateway_provider_requests_total",
            &[("provider", "openai"), ("outcome", "skipped_unreachable")]
        ),
        1.0
    );
    let kimi_chats = s["kimi"]
        .journal()
        .iter()
        .filter(|e| e.path.contains("chat"))
        .count();
    assert_eq!(kimi_chats, 1, "the probe is not a completion");
}
