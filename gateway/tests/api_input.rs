//! Bad client input gets a clear 4xx with a stable code; nothing panics. Graceful shutdown drains in-flight work.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod common;

use std::time::Duration;

use common::*;

const CFG: &str = r#"
server: { listen: 127.0.0.1:0, body_limit_bytes: 2048, shutdown_grace: 5s }
models:
  default: { openai: gpt-4o-mini }
providers:
  openai: { kind: openai, base_url: "http://127.0.0.1:9/v1", secret: { value: sk-nothing } }
fallback_policy:
  order: [openai]
  deadline: 2s
  connect_timeout: 200ms
"#;

async fn raw(app: &axum::Router, path: &str, body: &str) -> Reply {
    use tower::ServiceExt;
    let req = axum::http::Request::post(path)
        .header("content-type", "application/json")
        .body(axum::body::Body::from(body.to_string()))
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
async fn bad_input_gets_clear_4xx() {
    let (_, app) = gateway(CFG);
    let cases: Vec<(&str, String, u16, &str)> = vec![
        ("/v1/chat/completions", "{not json".into(), 400, "invalid_json"),
        ("/v1/chat/completions", "[1,2]".into(), 400, "invalid_request"),
        (
            "/v1/chat/completions",
            r#"{"model":"default"}"#.into(),
            400,
            "missing_messages",
        ),
        (
            "/v1/chat/completions",
            r#"{"model":"default","messages":[]}"#.into(),
            400,
            "missing_messages",
        ),
        (
            "/v1/chat/completions",
            r#"{"model":"default","messages":"hi"}"#.into(),
            400,
            "invalid_request",
        ),
        (
            "/v1/chat/completions",
            r#"{"model":"default","messages":[{"role":"wizard","content":"x"}]}"#.into(),
            400,
            "invalid_request",
        ),
        (
            "/v1/chat/completions",
            r#"{"model":7,"messages":[{"role":"user","content":"x"}]}"#.into(),
            400,
            "invalid_request",
        ),
        (
            "/v1/chat/completions",
            r#"{"model":"nope","messages":[{"role":"user","content":"x"}]}"#.into(),
            404,
            "model_not_found",
        ),
        (
            "/v1/chat/completions",
            format!(
                r#"{{"model":"default","messages":[{{"role":"user","content":"{}"}}]}}"#,
                "x".repeat(4096)
            ),
            413,
            "body_too_large",
        ),
        (
            "/v1/embeddings",
            r#"{"model":"default"}"#.into(),
            400,
            "invalid_request",
        ),
        (
            "/v1/embeddings",
            r#"{"model":"default","input":"x","encoding_format":"hex"}"#.into(),
            400,
            "invalid_request",
        ),
        (
            "/api/assistants/generate",
            r#"{"prompt":""}"#.into(),
            400,
            "invalid_request",
        ),
        (
            "/api/assistants/generate",
            r#"{"prompt":"hi","colour":"red"}"#.into(),
            400,
            "invalid_request",
        ),
        // A JSON array would fit a derived struct as a sequence: the hot path must not take it.
        (
            "/api/assistants/generate",
            r#"["hi", null, null, null, null]"#.into(),
            400,
            "invalid_request",
        ),
        (
            "/v1/embeddings",
            r#"{"model":"default","input":[]}"#.into(),
            400,
            "invalid_request",
        ),
        (
            "/v1/embeddings",
            r#"{"model":"default","input":5}"#.into(),
            400,
            "invalid_request",
        ),
        // Nothing to embed: OpenAI refuses an empty string, and so does every fallback.
        (
            "/v1/embeddings",
            r#"{"model":"default","input":"  "}"#.into(),
            400,
            "invalid_request",
        ),
        (
            "/v1/embeddings",
            r#"{"model":"default","input":["a",""]}"#.into(),
            400,
            "invalid_request",
        ),
        (
            "/v1/chat/completions",
            r#"{"model":"default","messages":[{"role":"user","content":" \n "}]}"#.into(),
            400,
            "invalid_request",
        ),
        (
            "/admin/mode",
            r#"{"mode":"sideways"}"#.into(),
            400,
            "invalid_request",
        ),
    ];
    for (path, body, status, code) in cases {
        let r = raw(&app, path, &body).await;
        assert_eq!(r.status.as_u16(), status, "{path} {body:.80}: {}", r.body);
        let v = r.json();
        assert_eq!(v["error"]["code"], code, "{path} {body:.80}: {}", r.body);
        assert!(v["error"]["message"].as_str().is_some_and(|m| !m.is_empty()));
        assert!(v["error"]["type"].is_string());
    }
    let r = raw(
        &app,
        "/v1/chat/completions",
        r#"{"model":"default","messages":[{"role":"wizard","content":"x"}]}"#,
    )
    .await;
    assert_eq!(r.json()["error"]["param"], "messages[0].role", "{}", r.body);
    let r = call(&app, "GET", "/v1/models", None, &[("x-request-id", "trace-42")]).await;
    assert_eq!(
        r.header("x-request-id"),
        "trace-42",
        "a client request id is echoed"
    );
    let r = call(
        &app,
        "POST",
        "/v1/chat/completions",
        Some(chat(false)),
        &[("x-llm-provider", "nobody")],
    )
    .await;
    assert_eq!(r.status, 400);
    assert_eq!(r.json()["error"]["code"], "unknown_provider");
    let m = metrics(&app).await;
    assert!(
        sample(
            &m,
            "llm_gateway_requests_total",
            &[("route", "chat_completions"), ("status", "413")]
        ) >= 1.0,
        "{m}"
    );
}

#[tokio::test]
async fn unreachable_provider_is_a_clean_503_with_connect_error() {
    let (_, app) = gateway(CFG);
    let r = call(&app, "POST", "/v1/chat/completions", Some(chat(false)), &[]).await;
    assert_eq!(r.status, 503, "{}", r.body);
    assert_eq!(r.json()["error"]["attempts"][0]["error"], "connect");
    let r = call(&app, "POST", "/v1/chat/completions", Some(chat(true)), &[]).await;
    assert_eq!(
        r.status, 503,
        "streams fail over (and fail) before the first byte: {}",
        r.body
    );
}

#[tokio::test]
async fn graceful_shutdown_drains_in_flight_requests() {
    let fakes = fakes().await;
    fakes["openai"]
        .add_fault(llm_mocks::FaultSpec::new(llm_mocks::FaultKind::Slow).delay_ms(400))
        .unwrap();
    let text = yaml(&fakes, "openai", "", "compatible");
    let cfg = llm_gateway::config::Config::from_yaml(&text, &|_| None).unwrap();
    let state = llm_gateway::AppState::new(cfg).unwrap();
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let (stop_tx, stop_rx) = tokio::sync::oneshot::channel::<()>();
    let server = tokio::spawn(llm_gateway::server::run(listener, None, state, async move {
        let _ = stop_rx.await;
    }));
    let client = reqwest::Client::new();
    let inflight = tokio::spawn({
        let client = client.clone();
        async move {
            client
                .post(format!("http://{addr}/v1/chat/completions"))
                .json(&chat(false))
                .send()
                .await
        }
    });
    // Readiness: wait until the fake has the request in hand, then ask the gateway to stop.
    while fakes["openai"].request_count() == 0 {
        tokio::task::yield_now().await;
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
    stop_tx.send(()).unwrap();
    let resp = inflight.await.unwrap().unwrap();
    assert_eq!(resp.status(), 200, "in-flight request finished during drain");
    tokio::time::timeout(Duration::from_secs(5), server)
        .await
        .unwrap()
        .unwrap()
        .unwrap();
    assert!(
        client.get(format!("http://{addr}/healthz")).send().await.is_err(),
        "listener closed"
    );
}

#[tokio::test]
async fn admin_token_guards_admin_routes_only() {
    let cfg = CFG.replace(
        "shutdown_grace: 5s }",
        "shutdown_grace: 5s, admin_token: { value: s3cret-admin-0123456789 } }",
    );
    let (_, app) = gateway(&cfg);
    for (method, path) in [("GET", "/admin/providers"), ("GET", "/admin/mode")] {
        let r = call(&app, method, path, None, &[]).await;
        assert_eq!(r.status, 401, "{path}");
        assert_eq!(r.json()["error"]["code"], "admin_unauthorized");
        let r = call(
            &app,
            method,
            path,
            None,
            &[("authorization", "Bearer s3cret-admin-0123456789-not")],
        )
        .await;
        assert_eq!(r.status, 401, "{path}");
        let r = call(
            &app,
            method,
            path,
            None,
            &[("authorization", "Bearer s3cret-admin-0123456789")],
        )
        .await;
        assert_eq!(r.status, 200, "{path}");
        assert!(!r.body.contains("s3cret-admin"));
        for scheme in ["bearer", "BEARER", "Bearer  "] {
            let h = format!("{scheme} s3cret-admin-0123456789");
            let r = call(&app, method, path, None, &[("authorization", h.as_str())]).await;
            assert_eq!(r.status, 200, "{h}: the scheme is case-insensitive");
        }
    }
    let body = serde_json::json!({"mode": "offline"});
    let r = call(&app, "POST", "/admin/mode", Some(body.clone()), &[]).await;
    assert_eq!(r.status, 401);
    let r = call(
        &app,
        "POST",
        "/admin/mode",
        Some(body),
        &[("authorization", "Bearer s3cret-admin-0123456789")],
    )
    .await;
    assert_eq!(r.status, 200);
    assert_eq!(
        call(&app, "GET", "/v1/models", None, &[]).await.status,
        200,
        "API routes need no admin token"
    );
    assert_eq!(call(&app, "GET", "/metrics", None, &[]).await.status, 200);
    // An unknown path is a 404 with or without a token, never a 401.
    for auth in [
        &[][..],
        &[("authorization", "Bearer s3cret-admin-0123456789")][..],
    ] {
        for path in ["/admin/nope", "/admin", "/v1/no-such-route", "/nope"] {
            let r = call(&app, "GET", path, None, auth).await;
            assert_eq!(r.status, 404, "{path}: {}", r.body);
            assert_eq!(r.json()["error"]["code"], "not_found");
        }
    }
    for (short, why) in [
        ("short-token", "16 characters"),
        ("has a space in it 0123", "spaces"),
    ] {
        let cfg = CFG.replace(
            "shutdown_grace: 5s }",
            &format!("shutdown_grace: 5s, admin_token: {{ value: \"{short}\" }} }}"),
        );
        match llm_gateway::config::Config::from_yaml(&cfg, &|_| None) {
            Err(llm_gateway::config::ConfigError::Invalid(p)) => {
                assert_eq!(p[0].path, "server.admin_token");
                assert!(p[0].message.contains(why), "{}", p[0].message);
            }
            other => panic!("{other:?}"),
        }
    }

    let missing = CFG.replace(
        "shutdown_grace: 5s }",
        "shutdown_grace: 5s, admin_token: { env: NO_SUCH_ADMIN_TOKEN_VAR } }",
    );
    match llm_gateway::config::Config::from_yaml(&missing, &|_| None) {
        Err(llm_gateway::config::ConfigError::Invalid(p)) => assert_eq!(p[0].path, "server.admin_token"),
        other => panic!("{other:?}"),
    }
}

/// The inbound layer order of `api/mod.rs`: request id and metrics, then the client key (before any body byte
/// is read), then the body limit, then the handler.
#[tokio::test]
async fn layer_order_an_oversized_body_without_a_key_is_401_and_with_one_413() {
    let text =
        format!("{CFG}limits:\n  clients:\n    - {{ name: team, key: {{ value: team-key-123456 }} }}\n");
    let (_, app) = gateway(&text);
    let big =
        serde_json::json!({"model": "default", "messages": [{"role": "user", "content": "x".repeat(4096)}]});
    let without = call(&app, "POST", "/v1/chat/completions", Some(big.clone()), &[]).await;
    assert_eq!(without.status, 401, "{}", without.body);
    assert_eq!(without.json()["error"]["code"], "invalid_api_key");
    assert!(
        !without.header("x-request-id").is_empty(),
        "the outermost layer saw it"
    );
    let with = call(
        &app,
        "POST",
        "/v1/chat/completions",
        Some(big),
        &[("authorization", "Bearer team-key-123456")],
    )
    .await;
    assert_eq!(with.status, 413, "{}", with.body);
    assert_eq!(with.json()["error"]["code"], "body_too_large");
    assert!(!with.header("x-request-id").is_empty());
    let m = metrics(&app).await;
    assert_eq!(
        sample(
            &m,
            "llm_gateway_requests_total",
            &[("route", "chat_completions"), ("status", "401")]
        ),
        1.0
    );
    assert_eq!(
        sample(
            &m,
            "llm_gateway_requests_total",
            &[("route", "chat_completions"), ("status", "413")]
        ),
        1.0
    );
}
