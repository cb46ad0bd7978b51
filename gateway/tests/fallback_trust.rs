//! A fallback must never change what the client asked for, and no client may turn the resilience against the
//! gateway: client errors leave provider health alone, and candidates that cannot serve a request faithfully
//! (images, token ids, another vector space, a context too small, JSON schema) are skipped without a call.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod common;

use common::*;
use llm_mocks::{FakeServer, FaultKind, FaultSpec, Provider};
use serde_json::{json, Value};

fn attempts(r: &Reply) -> Vec<(String, String)> {
    r.json()["error"]["attempts"]
        .as_array()
        .unwrap()
        .iter()
        .map(|a| {
            (
                a["provider"].as_str().unwrap().to_string(),
                a["error"].as_str().unwrap().to_string(),
            )
        })
        .collect()
}

fn chat_calls(s: &Stand, p: &str) -> usize {
    s.fakes[p]
        .journal()
        .iter()
        .filter(|e| e.path.contains("chat") || e.path.contains("generation"))
        .count()
}

#[tokio::test]
async fn unknown_models_are_the_clients_404_and_never_cool_a_provider() {
    let s = stand().await;
    for p in ["openai", "kimi", "qwen", "gigachat", "ollama"] {
        let body = json!({"model": format!("{p}/nosuch"), "messages": [{"role": "user", "content": "hi"}]});
        let r = call(&s.app, "POST", "/v1/chat/completions", Some(body), &[]).await;
        assert_eq!(r.status, 404, "{p}: {}", r.body);
        let v = r.json();
        assert_eq!(v["error"]["code"], "model_not_found", "{p}: {v}");
        assert_eq!(v["error"]["param"], "model");
        assert_eq!(v["error"]["attempts"][0]["error"], "not_found", "{p}: {v}");
        assert!(
            v["error"]["message"].as_str().unwrap().starts_with(p),
            "the provider's own message: {v}"
        );
    }
    assert_eq!(call(&s.app, "GET", "/readyz", None, &[]).await.status, 200);
    let admin = call(&s.app, "GET", "/admin/providers", None, &[]).await.json();
    for p in admin["providers"].as_array().unwrap() {
        assert_eq!(p["breaker"], "closed", "{p}");
        assert!(p["cooldown_remaining_ms"].is_null(), "{p}");
        assert!(p["cooldown_reason"].is_null(), "{p}");
        assert!(
            p["last_error"].is_null(),
            "a client's 404 is not the provider's error: {p}"
        );
    }
    let r = call(&s.app, "POST", "/v1/chat/completions", Some(chat(false)), &[]).await;
    assert_eq!(r.status, 200);
    assert_eq!(
        r.header("x-llm-actual-provider"),
        "openai",
        "the first provider serves"
    );
    let m = metrics(&s.app).await;
    for outcome in ["skipped_cooldown", "auth"] {
        assert_eq!(
            sample(&m, "llm_gateway_provider_requests_total", &[("outcome", outcome)]),
            0.0,
            "{outcome}\n{m}"
        );
    }
    assert_eq!(
        sample(
            &m,
            "llm_gateway_provider_requests_total",
            &[("outcome", "not_found")]
        ),
        5.0
    );
    assert_eq!(sample(&m, "llm_gateway_fallbacks_total", &[]), 0.0);
}

#[tokio::test]
async fn a_logical_models_mapping_a_provider_does_not_know_falls_back_without_touching_health() {
    let fakes = fakes().await;
    let text = yaml(&fakes, "openai, kimi", "", "compatible").replace(
        "default: { openai: gpt-4o-mini,",
        "default: { openai: gpt-9-retired,",
    );
    let (_, app) = gateway(&text);
    let r = call(&app, "POST", "/v1/chat/completions", Some(chat(false)), &[]).await;
    assert_eq!(r.status, 200, "{}", r.body);
    assert_eq!(r.header("x-llm-actual-provider"), "kimi");
    let admin = call(&app, "GET", "/admin/providers", None, &[]).await.json();
    let openai = &admin["providers"].as_array().unwrap()[3];
    assert_eq!(openai["name"], "openai");
    assert!(
        openai["last_error"].is_null() && openai["cooldown_reason"].is_null(),
        "{openai}"
    );
}

#[tokio::test]
async fn bad_requests_never_count_toward_the_breaker_however_many() {
    let s = stand_with("openai, kimi", "", "compatible").await;
    for _ in 0..20 {
        s.fakes["openai"]
            .add_fault(FaultSpec::new(FaultKind::BadRequest).times(1))
            .unwrap();
        let r = call(&s.app, "POST", "/v1/chat/completions", Some(chat(false)), &[]).await;
        assert_eq!(r.status, 400, "{}", r.body);
    }
    let admin = call(&s.app, "GET", "/admin/providers", None, &[]).await.json();
    let openai = admin["providers"]
        .as_array()
        .unwrap()
        .iter()
        .find(|p| p["name"] == "openai")
        .unwrap()
        .clone();
    assert_eq!(openai["breaker"], "closed");
    assert!(openai["last_error"].is_null(), "{openai}");
    // And they do not dilute real failures either: three refused connections still open the breaker.
    for _ in 0..3 {
        s.fakes["openai"]
            .add_fault(FaultSpec::new(FaultKind::DropConnection).times(1))
            .unwrap();
        let r = call(&s.app, "POST", "/v1/chat/completions", Some(chat(false)), &[]).await;
        assert_eq!(r.header("x-llm-actual-provider"), "kimi", "{}", r.body);
    }
    let admin = call(&s.app, "GET", "/admin/providers", None, &[]).await.json();
    let openai = admin["providers"]
        .as_array()
        .unwrap()
        .iter()
        .find(|p| p["name"] == "openai")
        .unwrap()
        .clone();
    assert_eq!(openai["breaker"], "open", "{openai}");
}

#[tokio::test]
async fn auth_cooldowns_are_reported_as_such_not_as_rate_limits() {
    let s = stand_with("openai, kimi", "", "compatible").await;
    for p in ["openai", "kimi"] {
        s.fakes[p].add_fault(FaultSpec::new(FaultKind::Auth)).unwrap();
    }
    for round in ["the 401s", "the cooldowns they started"] {
        let r = call(&s.app, "POST", "/v1/chat/completions", Some(chat(false)), &[]).await;
        assert_eq!(r.status, 503, "{round}: {}", r.body);
        let v = r.json();
        assert_eq!(v["error"]["code"], "all_providers_unauthorized", "{round}: {v}");
        assert!(r.headers.get("retry-after").is_none(), "{round}");
        assert_eq!(
            v["error"]["attempts"].as_array().unwrap().len(),
            2,
            "{round}: {v}"
        );
    }
    let r = call(&s.app, "POST", "/v1/chat/completions", Some(chat(false)), &[]).await;
    assert_eq!(
        attempts(&r),
        [
            ("openai".to_string(), "skipped_cooldown".to_string()),
            ("kimi".to_string(), "skipped_cooldown".to_string())
        ]
    );
    assert_eq!(r.json()["error"]["attempts"][0]["reason"], "auth");
}

#[tokio::test]
async fn embeddings_fail_over_only_inside_one_vector_space() {
    let s = stand().await;
    // The primary's space (openai text-embedding-3-small) is down: no other space stands in.
    s.fakes["openai"]
        .add_fault(FaultSpec::new(FaultKind::DropConnection))
        .unwrap();
    let body = json!({"model": "embeddings", "input": ["alpha", "beta"]});
    let r = call(&s.app, "POST", "/v1/embeddings", Some(body.clone()), &[]).await;
    assert_eq!(r.status, 503, "{}", r.body);
    assert_eq!(r.json()["error"]["code"], "all_providers_failed");
    assert_eq!(
        attempts(&r),
        [
            ("openai".to_string(), "connect".to_string()),
            ("qwen".to_string(), "skipped_capability".to_string()),
            ("gigachat".to_string(), "skipped_capability".to_string()),
            ("ollama".to_string(), "skipped_capability".to_string()),
        ]
    );
    for p in ["qwen", "gigachat", "ollama"] {
        assert_eq!(
            s.fakes[p].request_count(),
            0,
            "{p} was asked for vectors of another space"
        );
    }
    // A client that names another provider's space gets that space.
    let r = call(
        &s.app,
        "POST",
        "/v1/embeddings",
        Some(body),
        &[("x-llm-provider", "qwen")],
    )
    .await;
    assert_eq!(r.status, 200, "{}", r.body);
    assert_eq!(r.json()["data"][0]["embedding"].as_array().unwrap().len(), 1024);
}

#[tokio::test]
async fn embeddings_fail_over_to_the_same_model_elsewhere() {
    let fakes = fakes().await;
    let backup = FakeServer::start(Provider::OpenAi).await.unwrap();
    let text = yaml(&fakes, "openai, qwen, backup", "", "compatible")
        .replace(
            "  embeddings: {",
            "  embeddings: { backup: { model: text-embedding-3-small, dimensions: 1536 }, ",
        )
        .replace(
            "providers:\n",
            &format!(
                "providers:\n  backup: {{ kind: openai, base_url: \"{}\", secret: {{ value: sk-test-backup }} }}\n",
                backup.base_url()
            ),
        );
    let (_, app) = gateway(&text);
    fakes["openai"]
        .add_fault(FaultSpec::new(FaultKind::Overloaded))
        .unwrap();
    let r = call(
        &app,
        "POST",
        "/v1/embeddings",
        Some(json!({"model": "embeddings", "input": "alpha", "dimensions": 256})),
        &[],
    )
    .await;
    assert_eq!(r.status, 200, "{}", r.body);
    assert_eq!(r.header("x-llm-actual-provider"), "backup");
    assert_eq!(r.header("x-llm-fallbacks"), "2", "openai failed, qwen skipped");
    assert_eq!(r.json()["data"][0]["embedding"].as_array().unwrap().len(), 256);
    assert_eq!(fakes["qwen"].request_count(), 0);
}

#[tokio::test]
async fn token_id_input_skips_candidates_that_take_only_text() {
    let s = stand().await;
    let tokens = json!({"model": "embeddings", "input": [[1212, 318, 257], [40, 1101]]});
    let r = call(&s.app, "POST", "/v1/embeddings", Some(tokens.clone()), &[]).await;
    assert_eq!(r.status, 200, "{}", r.body);
    assert_eq!(r.header("x-llm-actual-provider"), "openai");
    // Only text-input models in the plan: the client's 400, no call.
    let r = call(
        &s.app,
        "POST",
        "/v1/embeddings",
        Some(tokens),
        &[("x-llm-provider", "qwen")],
    )
    .await;
    assert_eq!(r.status, 400, "{}", r.body);
    let v = r.json();
    assert_eq!(v["error"]["code"], "unsupported_content", "{v}");
    assert!(v["error"]["attempts"]
        .as_array()
        .unwrap()
        .iter()
        .all(|a| a["error"] == "skipped_capability"));
    for p in ["qwen", "gigachat", "ollama"] {
        assert_eq!(s.fakes[p].request_count(), 0, "{p}");
    }
}

fn image_request(url: &str) -> Value {
    json!({"model": "default", "messages": [{"role": "user", "content": [
        {"type": "text", "text": "What is on this picture?"},
        {"type": "image_url", "image_url": {"url": url}}]}]})
}

#[tokio::test]
async fn images_go_only_to_vision_models_and_are_never_dropped() {
    let s = stand().await;
    let r = call(
        &s.app,
        "POST",
        "/v1/chat/completions",
        Some(image_request("https://example.test/a.png")),
        &[],
    )
    .await;
    assert_eq!(r.status, 200, "{}", r.body);
    assert_eq!(r.header("x-llm-actual-provider"), "openai");
    s.fakes["openai"]
        .add_fault(FaultSpec::new(FaultKind::DropConnection))
        .unwrap();
    let r = call(
        &s.app,
        "POST",
        "/v1/chat/completions",
        Some(image_request("https://example.test/a.png")),
        &[],
    )
    .await;
    assert_eq!(r.status, 503, "{}", r.body);
    let tried = attempts(&r);
    assert_eq!(tried[0], ("openai".to_string(), "connect".to_string()));
    assert!(
        tried[1..].iter().all(|(_, o)| o == "skipped_capability"),
        "{tried:?}"
    );
    for p in ["kimi", "qwen", "gigachat", "ollama"] {
        assert_eq!(chat_calls(&s, p), 0, "{p} got an image it cannot see");
    }
    // No vision model at all in the plan: the client's 400, naming the part.
    let mut only_text = image_request("data:image/png;base64,iVBORw0KGgo=");
    only_text["model"] = json!("gigachat/GigaChat");
    let r = call(&s.app, "POST", "/v1/chat/completions", Some(only_text), &[]).await;
    assert_eq!(r.status, 400, "{}", r.body);
    let v = r.json();
    assert_eq!(v["error"]["code"], "unsupported_content");
    assert_eq!(v["error"]["param"], "messages[0].content[1]");
    // And an offline package never answers for an image it did not see.
    assert_eq!(chat_calls(&s, "gigachat"), 0);
}

#[tokio::test]
async fn structured_output_skips_models_that_cannot_honour_a_schema() {
    let s = stand().await;
    s.fakes["openai"]
        .add_fault(FaultSpec::new(FaultKind::DropConnection))
        .unwrap();
    let body = json!({"model": "default", "messages": [{"role": "user", "content": "A city and its country"}],
        "response_format": {"type": "json_schema", "json_schema": {"name": "place", "schema": {
            "type": "object", "properties": {"city": {"type": "string"}}, "required": ["city"]}}}});
    let r = call(&s.app, "POST", "/v1/chat/completions", Some(body), &[]).await;
    assert_eq!(r.status, 200, "{}", r.body);
    assert_eq!(
        r.header("x-llm-actual-provider"),
        "ollama",
        "kimi, qwen, gigachat take no JSON schema"
    );
    assert_eq!(r.header("x-llm-fallbacks"), "4");
    let sent = s.fakes["ollama"].journal().last().unwrap().body_json().unwrap();
    assert_eq!(
        sent["format"]["required"],
        json!(["city"]),
        "the schema reached Ollama as format"
    );
    for p in ["kimi", "qwen", "gigachat"] {
        assert_eq!(chat_calls(&s, p), 0, "{p}");
    }
}

#[tokio::test]
async fn an_oversized_prompt_costs_no_upstream_call() {
    let fakes = fakes().await;
    let text = yaml(&fakes, "openai, kimi, qwen, gigachat, ollama", "", "compatible")
        .replace("body_limit_bytes: 65536", "body_limit_bytes: 4194304");
    let (_, app) = gateway(&text);
    let prompt = "word ".repeat(180_000);
    let body = json!({"model": "default", "messages": [{"role": "user", "content": prompt}]});
    let r = call(&app, "POST", "/v1/chat/completions", Some(body), &[]).await;
    assert_eq!(r.status, 400, "{}", &r.body[..r.body.len().min(600)]);
    assert_eq!(r.json()["error"]["code"], "context_length_exceeded");
    for (p, f) in &fakes {
        assert_eq!(
            f.request_count(),
            0,
            "{p} was sent a prompt larger than its window"
        );
    }
}

#[tokio::test]
async fn invalid_content_and_parameters_are_the_clients_400_and_nothing_goes_upstream() {
    let s = stand().await;
    let cases = [
        (
            json!([{"role": "user", "content": 42}]),
            None,
            "invalid_request",
            "messages[0].content",
        ),
        (
            json!([{"role": "user", "content": true}]),
            None,
            "invalid_request",
            "messages[0].content",
        ),
        (
            json!([{"role": "user", "content": {"x": 1}}]),
            None,
            "invalid_request",
            "messages[0].content",
        ),
        (
            json!([{"role": "user", "content": null}]),
            None,
            "invalid_request",
            "messages[0].content",
        ),
        (
            json!([{"role": "user", "content": ""}]),
            None,
            "invalid_request",
            "messages",
        ),
        (
            json!([{"role": "user", "content": "hi"}]),
            Some(("n", json!(1000))),
            "unsupported_parameter",
            "n",
        ),
        (
            json!([{"role": "user", "content": "hi"}]),
            Some(("max_tokens", json!(0))),
            "invalid_request",
            "max_tokens",
        ),
        (
            json!([{"role": "user", "content": "hi"}]),
            Some(("max_completion_tokens", json!(0))),
            "invalid_request",
            "max_completion_tokens",
        ),
    ];
    for (messages, extra, code, param) in cases {
        for stream in [false, true] {
            let mut body = json!({"model": "default", "stream": stream, "messages": messages});
            if let Some((k, v)) = &extra {
                body[*k] = v.clone();
            }
            let r = call(&s.app, "POST", "/v1/chat/completions", Some(body.clone()), &[]).await;
            assert_eq!(r.status, 400, "{body}: {}", r.body);
            let v = r.json();
            assert_eq!(v["error"]["code"], code, "{body}: {v}");
            assert_eq!(v["error"]["param"], param, "{body}: {v}");
        }
    }
    for (p, f) in &s.fakes {
        let calls = f.journal().iter().filter(|e| !e.path.contains("oauth")).count();
        assert_eq!(calls, 0, "{p} was called for an invalid request");
    }
}
