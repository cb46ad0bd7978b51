//! `/mcp` at the HTTP level (the app called with `oneshot`): Host and Origin validation, client keys as on
//! `/v1/*`, the admin token of admin tools, body limit; and hostile tool arguments against the server itself.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod common;

use std::collections::HashMap;
use std::sync::Arc;

use axum::body::Body;
use axum::http::{Request, StatusCode};
use futures::StreamExt;
use llm_gateway::mcp::{Backend, LlmProviderTool};
use llm_mocks::FakeServer;
use serde_json::{json, Value};
use tower::ServiceExt;

const ACCEPT: &str = "application/json, text/event-stream";

fn init_body() -> Value {
    json!({"jsonrpc": "2.0", "id": 1, "method": "initialize", "params": {
        "protocolVersion": "2025-11-25", "capabilities": {}, "clientInfo": {"name": "test", "version": "0"}}})
}

struct Reply {
    status: StatusCode,
    session: Option<String>,
    /// The JSON-RPC message of the answer (the first SSE `data:` event, or the JSON body).
    json: Value,
}

/// One POST to `/mcp`; an SSE answer is read up to its first complete `data:` event.
async fn post(app: &axum::Router, body: Value, headers: &[(&str, &str)]) -> Reply {
    let mut b = Request::builder()
        .method("POST")
        .uri("/mcp")
        .header("content-type", "application/json")
        .header("accept", ACCEPT);
    let has_host = headers.iter().any(|(k, _)| k.eq_ignore_ascii_case("host"));
    if !has_host {
        b = b.header("host", "127.0.0.1:6001");
    }
    for (k, v) in headers {
        b = b.header(*k, *v);
    }
    let resp = app
        .clone()
        .oneshot(b.body(Body::from(body.to_string())).unwrap())
        .await
        .unwrap();
    let status = resp.status();
    let session = resp
        .headers()
        .get("mcp-session-id")
        .and_then(|v| v.to_str().ok())
        .map(str::to_string);
    let sse = resp
        .headers()
        .get("content-type")
        .and_then(|v| v.to_str().ok())
        .is_some_and(|c| c.starts_with("text/event-stream"));
    let mut stream = resp.into_body().into_data_stream();
    let mut buf = String::new();
    let json = loop {
        if sse {
            let event = buf
                .split("\n\n")
                .filter(|_| buf.contains("\n\n"))
                .flat_map(|e| e.lines())
                .filter_map(|l| l.strip_prefix("data:"))
                .map(str::trim)
                .find(|d| d.starts_with('{'));
            if let Some(d) = event {
                if let Ok(v) = serde_json::from_str::<Value>(d) {
                    break v;
                }
            }
        }
        match stream.next().await {
            Some(chunk) => buf.push_str(&String::from_utf8_lossy(&chunk.unwrap())),
            None => break serde_json::from_str(&buf).unwrap_or(Value::Null),
        }
    };
    Reply {
        status,
        session,
        json,
    }
}

/// Config with `/mcp` on, plus `extra` (top-level sections) and `server` additions.
fn app_with(fakes: &HashMap<&'static str, FakeServer>, server_extra: &str, extra: &str) -> axum::Router {
    let base = common::yaml(fakes, "openai, kimi, ollama", "", "compatible").replace(
        "body_limit_bytes: 65536 }",
        &format!("body_limit_bytes: 65536{server_extra} }}"),
    );
    let (_, app) = common::gateway(&format!("{base}\n{extra}\n"));
    app
}

/// An initialised session: its id.
async fn session(app: &axum::Router, headers: &[(&str, &str)]) -> String {
    let r = post(app, init_body(), headers).await;
    assert_eq!(r.status, 200, "{}", r.json);
    assert_eq!(r.json["result"]["serverInfo"]["name"], "LLMProviderTool");
    let id = r.session.expect("a session id on initialize");
    let mut h: Vec<(&str, &str)> = headers.to_vec();
    h.push(("mcp-session-id", &id));
    h.push(("mcp-protocol-version", "2025-11-25"));
    let r = post(
        app,
        json!({"jsonrpc": "2.0", "method": "notifications/initialized"}),
        &h,
    )
    .await;
    assert_eq!(r.status, 202);
    id
}

async fn call_tool(
    app: &axum::Router,
    session: &str,
    headers: &[(&str, &str)],
    name: &str,
    args: Value,
) -> Value {
    let mut h: Vec<(&str, &str)> = headers.to_vec();
    h.push(("mcp-session-id", session));
    h.push(("mcp-protocol-version", "2025-11-25"));
    let r = post(
        app,
        json!({"jsonrpc": "2.0", "id": 7, "method": "tools/call", "params": {"name": name, "arguments": args}}),
        &h,
    )
    .await;
    assert_eq!(r.status, 200, "{}", r.json);
    r.json
}

#[tokio::test]
async fn mcp_is_off_unless_enabled() {
    let fakes = common::fakes().await;
    let base = common::yaml(&fakes, "openai, kimi, ollama", "", "compatible");
    let (_, app) = common::gateway(&base);
    let r = post(&app, init_body(), &[]).await;
    assert_eq!(r.status, 404);
}

#[tokio::test]
async fn host_is_validated_loopback_by_default() {
    let fakes = common::fakes().await;
    let app = app_with(&fakes, "", "mcp: { enabled: true }");
    for host in ["127.0.0.1:6001", "localhost", "localhost:80", "[::1]:6001"] {
        let r = post(&app, init_body(), &[("host", host)]).await;
        assert_eq!(r.status, 200, "{host}: {}", r.json);
    }
    for host in [
        "evil.example",
        "evil.example:6001",
        "127.0.0.1.nip.io:6001",
        "10.0.0.5:6001",
    ] {
        let r = post(&app, init_body(), &[("host", host)]).await;
        assert_eq!(r.status, 403, "{host}");
        assert_eq!(r.json["error"]["code"], -32600, "{host}");
        assert!(r.json["error"]["message"]
            .as_str()
            .unwrap()
            .contains("mcp.allowed_hosts"));
    }
    // Configured hosts replace the loopback names.
    let app = app_with(
        &fakes,
        "",
        "mcp: { enabled: true, allowed_hosts: [\"gw.internal\", \"api.example:8443\"] }",
    );
    for (host, status) in [
        ("gw.internal", 200),
        ("gw.internal:6001", 200),
        ("api.example:8443", 200),
        ("api.example:443", 403),
        ("localhost:6001", 403),
    ] {
        let r = post(&app, init_body(), &[("host", host)]).await;
        assert_eq!(r.status, status, "{host}");
    }
}

#[tokio::test]
async fn origin_is_validated_when_present() {
    let fakes = common::fakes().await;
    let app = app_with(&fakes, "", "mcp: { enabled: true }");
    for origin in ["http://localhost:3000", "http://127.0.0.1:6001", "https://[::1]"] {
        let r = post(&app, init_body(), &[("origin", origin)]).await;
        assert_eq!(r.status, 200, "{origin}");
    }
    for origin in [
        "https://evil.example",
        "null",
        "http://localhost.evil.example",
        "chrome-extension://x",
    ] {
        let r = post(&app, init_body(), &[("origin", origin)]).await;
        assert_eq!(r.status, 403, "{origin}");
        assert!(r.json["error"]["message"]
            .as_str()
            .unwrap()
            .contains("mcp.allowed_origins"));
    }
    let app = app_with(
        &fakes,
        "",
        "mcp: { enabled: true, allowed_origins: [\"https://console.example\"] }",
    );
    for (origin, status) in [
        ("https://console.example", 200),
        ("https://console.example:443", 200),
        ("http://console.example", 403),
        ("http://localhost:3000", 403),
    ] {
        let r = post(&app, init_body(), &[("origin", origin)]).await;
        assert_eq!(r.status, status, "{origin}");
    }
}

#[tokio::test]
async fn client_keys_apply_as_on_v1() {
    let fakes = common::fakes().await;
    let app = app_with(
        &fakes,
        "",
        "limits:\n  clients:\n    - { name: agent, key: { value: agent-key-123456 } }\nmcp: { enabled: true }",
    );
    let r = post(&app, init_body(), &[]).await;
    assert_eq!(r.status, 401);
    let r = post(&app, init_body(), &[("authorization", "Bearer wrong-key-000000")]).await;
    assert_eq!(r.status, 401);
    // The Host check comes first: a bad Host is 403 even without a key.
    let r = post(&app, init_body(), &[("host", "evil.example")]).await;
    assert_eq!(r.status, 403);
    let key = [("authorization", "Bearer agent-key-123456")];
    let s = session(&app, &key).await;
    let out = call_tool(&app, &s, &key, "llm_generate", json!({"prompt": "hi"})).await;
    assert_eq!(out["result"]["isError"], false, "{out}");
    assert_eq!(out["result"]["structuredContent"]["provider"], "openai");
    // x-api-key works too, as on /v1/*.
    let r = post(&app, init_body(), &[("x-api-key", "agent-key-123456")]).await;
    assert_eq!(r.status, 200);
}

#[tokio::test]
async fn admin_tools_need_the_admin_token() {
    let fakes = common::fakes().await;
    let admin = ", admin_token: { value: s3cret-admin-http }";
    // Without client keys the admin token may come as Bearer or as X-LLM-Admin-Token.
    let app = app_with(&fakes, admin, "mcp: { enabled: true }");
    let s = session(&app, &[]).await;
    for (name, args) in [
        ("llm_set_mode", json!({"mode": "offline"})),
        ("llm_mode", json!({})),
        ("llm_providers", json!({})),
        ("llm_smoke", json!({})),
    ] {
        for headers in [vec![], vec![("x-llm-admin-token", "s3cret-admin-httpX")]] {
            let out = call_tool(&app, &s, &headers, name, args.clone()).await;
            assert_eq!(out["result"]["isError"], true, "{name}: {out}");
            let text = out["result"]["content"][0]["text"].as_str().unwrap();
            assert!(text.contains("admin token"), "{text}");
            assert!(!text.contains("s3cret"), "{text}");
        }
    }
    // Client tools need no admin token.
    let out = call_tool(&app, &s, &[], "llm_explain_route", json!({})).await;
    assert_eq!(out["result"]["isError"], false, "{out}");
    let h = [("x-llm-admin-token", "s3cret-admin-http")];
    let out = call_tool(&app, &s, &h, "llm_set_mode", json!({"mode": "remote"})).await;
    assert_eq!(
        out["result"]["structuredContent"],
        json!({"mode": "remote", "previous": "auto"})
    );
    let h = [("authorization", "Bearer s3cret-admin-http")];
    let out = call_tool(&app, &s, &h, "llm_mode", json!({})).await;
    assert_eq!(out["result"]["structuredContent"], json!({"mode": "remote"}));

    // With client keys, Bearer is the client key and the admin token goes in X-LLM-Admin-Token.
    let app = app_with(
        &fakes,
        admin,
        "limits:\n  clients:\n    - { name: agent, key: { value: agent-key-123456 } }\nmcp: { enabled: true }",
    );
    let key = ("authorization", "Bearer agent-key-123456");
    let s = session(&app, &[key]).await;
    let out = call_tool(&app, &s, &[key], "llm_mode", json!({})).await;
    assert_eq!(out["result"]["isError"], true, "{out}");
    let both = [key, ("x-llm-admin-token", "s3cret-admin-http")];
    let out = call_tool(&app, &s, &both, "llm_mode", json!({})).await;
    assert_eq!(out["result"]["structuredContent"], json!({"mode": "auto"}));
}

#[tokio::test]
async fn protocol_misuse_is_a_json_rpc_error() {
    let fakes = common::fakes().await;
    let app = app_with(&fakes, "", "mcp: { enabled: true }");
    let s = session(&app, &[]).await;
    let out = call_tool(&app, &s, &[], "llm_nope", json!({})).await;
    assert_eq!(out["error"]["code"], -32602, "{out}");
    let h = [
        ("mcp-session-id", s.as_str()),
        ("mcp-protocol-version", "2025-11-25"),
    ];
    let r = post(
        &app,
        json!({"jsonrpc": "2.0", "id": 3, "method": "no/such/method"}),
        &h,
    )
    .await;
    assert_eq!(r.json["error"]["code"], -32601, "{}", r.json);
    // A body over server.body_limit_bytes is refused before parsing.
    let big = "x".repeat(70_000);
    let r = post(
        &app,
        json!({"jsonrpc": "2.0", "id": 4, "method": "tools/call", "params": {"name": "llm_generate", "arguments": {"prompt": big}}}),
        &h,
    )
    .await;
    assert_eq!(r.status, 413);
}

/// Every argument of every tool given every wrong JSON type: an `isError` result naming the argument, never a
/// panic, never a protocol error.
#[tokio::test]
async fn hostile_arguments_are_tool_errors_naming_the_field() {
    let fakes = common::fakes().await;
    let text = common::yaml(&fakes, "openai, kimi, ollama", "", "compatible");
    let (state, _) = common::gateway(&text);
    let server = LlmProviderTool::new(Arc::new(Backend::Local(state)), None);
    let values = [
        json!(null),
        json!(true),
        json!(-7),
        json!(1.5e300),
        json!("text"),
        json!([1, 2]),
        json!({"a": 1}),
    ];
    let type_of = |v: &Value| match v {
        Value::Null => "null",
        Value::Bool(_) => "boolean",
        Value::Number(n) if n.is_i64() || n.is_u64() => "integer",
        Value::Number(_) => "number",
        Value::String(_) => "string",
        Value::Array(_) => "array",
        Value::Object(_) => "object",
    };
    let mut checked = 0;
    for tool in server.tools() {
        let schema = Value::Object((*tool.input_schema).clone());
        let props = schema["properties"].as_object().cloned().unwrap_or_default();
        let required: Vec<Value> = schema["required"].as_array().cloned().unwrap_or_default();
        for (field, spec) in props {
            let optional = !required.contains(&json!(field));
            let allowed: Vec<String> = match &spec["type"] {
                Value::String(s) => vec![s.clone()],
                Value::Array(a) => a.iter().filter_map(|t| t.as_str().map(String::from)).collect(),
                _ => panic!("{}.{field}: no type in {spec}", tool.name),
            };
            for v in &values {
                let t = type_of(v);
                // `null` stands for an absent optional argument.
                let fits = allowed
                    .iter()
                    .any(|a| a == t || (a == "number" && t == "integer"))
                    || (optional && t == "null");
                if fits {
                    continue;
                }
                let mut args = serde_json::Map::new();
                if tool.name == "llm_generate" || tool.name == "llm_offline_lookup" {
                    args.insert("prompt".into(), json!("hello"));
                }
                if tool.name == "llm_set_mode" {
                    args.insert("mode".into(), json!("auto"));
                }
                args.insert(field.clone(), v.clone());
                let r = server.run(&tool.name, Some(args), None).await.unwrap();
                assert_eq!(r.is_error, Some(true), "{}.{field} = {v}", tool.name);
                let msg = serde_json::to_string(&r.content).unwrap();
                assert!(msg.contains(&field), "{}.{field} = {v}: {msg}", tool.name);
                checked += 1;
            }
        }
        // An unknown argument is named too.
        let mut args = serde_json::Map::new();
        args.insert("surprise".into(), json!(1));
        let r = server.run(&tool.name, Some(args), None).await.unwrap();
        assert_eq!(r.is_error, Some(true), "{}", tool.name);
        assert!(serde_json::to_string(&r.content).unwrap().contains("surprise"));
    }
    assert!(checked > 40, "only {checked} cases");
    assert!(server.run("llm_nope", None, None).await.is_none());
}

#[tokio::test]
async fn a_huge_prompt_is_an_actionable_tool_error_without_an_upstream_call() {
    let stand = common::stand_with("openai, kimi, ollama", "", "compatible").await;
    let server = LlmProviderTool::new(Arc::new(Backend::Local(stand.state.clone())), None);
    let mut args = serde_json::Map::new();
    args.insert("prompt".into(), json!("word ".repeat(1_000_000)));
    let r = server.run("llm_generate", Some(args), None).await.unwrap();
    assert_eq!(r.is_error, Some(true));
    let msg = serde_json::to_string(&r.content).unwrap();
    assert!(msg.len() < 4_000, "the message stays short: {} bytes", msg.len());
    assert!(msg.contains("context"), "{msg}");
    for name in ["openai", "kimi", "ollama"] {
        assert_eq!(stand.fakes[name].request_count(), 0, "{name} was called");
    }
}

/// `llm-gateway mcp --gateway-url`: the same tools over a running gateway's REST API.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn remote_backend_talks_to_a_running_gateway() {
    let fakes = common::fakes().await;
    let text = common::yaml(&fakes, "openai, kimi, ollama", "", "compatible").replace(
        "body_limit_bytes: 65536 }",
        "body_limit_bytes: 65536, admin_token: { value: s3cret-admin-remote } }",
    );
    let cfg = llm_gateway::config::Config::from_yaml(&text, &|_| None).unwrap();
    let state = llm_gateway::AppState::new(cfg.clone()).unwrap();
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let (stop_tx, stop_rx) = tokio::sync::oneshot::channel::<()>();
    let server = tokio::spawn(llm_gateway::server::run(listener, None, state, async move {
        let _ = stop_rx.await;
    }));
    let url = format!("http://{addr}");
    let remote = |token: Option<&str>| {
        let r = llm_gateway::mcp::Remote::new(&url, cfg.clone(), None, token.map(String::from)).unwrap();
        LlmProviderTool::new(Arc::new(Backend::Remote(Box::new(r))), None)
    };
    let args = |v: Value| v.as_object().cloned();
    let with = remote(Some("s3cret-admin-remote"));
    let r = with
        .run(
            "llm_generate",
            args(json!({"prompt": "hi", "provider": "kimi"})),
            None,
        )
        .await
        .unwrap();
    assert_eq!(r.is_error, Some(false), "{r:?}");
    let out = r.structured_content.unwrap();
    assert_eq!(out["provider"], "kimi");
    assert_eq!(out["fallbacks"], 0);
    let r = with
        .run("llm_set_mode", args(json!({"mode": "remote"})), None)
        .await
        .unwrap();
    assert_eq!(
        r.structured_content,
        Some(json!({"mode": "remote", "previous": "auto"}))
    );
    let r = with
        .run("llm_set_mode", args(json!({"mode": "turbo"})), None)
        .await
        .unwrap();
    assert_eq!(r.is_error, Some(true));
    let r = with.run("llm_providers", args(json!({})), None).await.unwrap();
    assert_eq!(r.structured_content.unwrap()["mode"], "remote");
    let without = remote(None);
    let r = without.run("llm_mode", args(json!({})), None).await.unwrap();
    assert_eq!(r.is_error, Some(true));
    let msg = serde_json::to_string(&r.content).unwrap();
    assert!(msg.contains("LLM_MCP_ADMIN_TOKEN"), "{msg}");
    let r = without
        .run(
            "llm_generate",
            args(json!({"prompt": "hi", "model": "nope"})),
            None,
        )
        .await
        .unwrap();
    assert_eq!(r.is_error, Some(true));
    assert!(serde_json::to_string(&r.content).unwrap().contains("nope"));
    // The route explanation needs the gateway's own /mcp, off on this one: the error says how to switch it on.
    let r = with
        .run("llm_explain_route", args(json!({})), None)
        .await
        .unwrap();
    assert_eq!(r.is_error, Some(true));
    let msg = serde_json::to_string(&r.content).unwrap();
    assert!(msg.contains("mcp.enabled: true"), "{msg}");
    // A gateway that is not there is an actionable tool error too.
    let _ = stop_tx.send(());
    let _ = server.await;
    let r = with.run("llm_mode", args(json!({})), None).await.unwrap();
    assert_eq!(r.is_error, Some(true));
    assert!(serde_json::to_string(&r.content)
        .unwrap()
        .contains("cannot reach the gateway"));
}

/// The stateless 2026-07-28 revision: no handshake, no session; each request carries its protocol metadata.
#[tokio::test]
async fn stateless_2026_requests_need_no_session() {
    let fakes = common::fakes().await;
    let app = app_with(&fakes, "", "mcp: { enabled: true }");
    let meta = json!({
        "io.modelcontextprotocol/protocolVersion": "2026-07-28",
        "io.modelcontextprotocol/clientCapabilities": {},
        "io.modelcontextprotocol/clientInfo": {"name": "test", "version": "0"}
    });
    let r = post(
        &app,
        json!({"jsonrpc": "2.0", "id": 1, "method": "server/discover", "params": {"_meta": meta}}),
        &[
            ("mcp-protocol-version", "2026-07-28"),
            ("mcp-method", "server/discover"),
        ],
    )
    .await;
    assert_eq!(r.status, 200, "{}", r.json);
    assert!(r.session.is_none());
    let versions = r.json["result"]["supportedVersions"].to_string();
    assert!(
        versions.contains("2026-07-28") && versions.contains("2025-11-25"),
        "{}",
        r.json
    );
    let r = post(
        &app,
        json!({"jsonrpc": "2.0", "id": 2, "method": "tools/call",
               "params": {"name": "llm_explain_route", "arguments": {}, "_meta": meta}}),
        &[
            ("mcp-protocol-version", "2026-07-28"),
            ("mcp-method", "tools/call"),
            ("mcp-name", "llm_explain_route"),
        ],
    )
    .await;
    assert_eq!(r.status, 200, "{}", r.json);
    assert_eq!(
        r.json["result"]["structuredContent"]["would_serve"], "openai",
        "{}",
        r.json
    );
}

/// Every provider down: an `isError` result a model can act on (each provider's failure, what to do), no secret.
#[tokio::test]
async fn every_provider_down_is_an_actionable_tool_error() {
    use llm_mocks::{FaultKind, FaultSpec};
    let stand = common::stand_with("openai, kimi", "", "compatible").await;
    for name in ["openai", "kimi"] {
        stand.fakes[name]
            .add_fault(FaultSpec::new(FaultKind::ServerError))
            .unwrap();
    }
    let server = LlmProviderTool::new(Arc::new(Backend::Local(stand.state.clone())), None);
    let mut args = serde_json::Map::new();
    args.insert("prompt".into(), json!("Is anyone there?"));
    let r = server.run("llm_generate", Some(args), None).await.unwrap();
    assert_eq!(r.is_error, Some(true));
    let msg = r.content[0].as_text().map(|t| t.text.clone()).unwrap_or_default();
    assert!(msg.contains("openai: overloaded"), "{msg}");
    assert!(msg.contains("kimi: overloaded"), "{msg}");
    assert!(msg.contains("llm_providers"), "{msg}");
    assert!(!msg.contains("sk-test"), "{msg}");
    let m = stand.state.metrics.encode();
    let failed = common::sample(
        &m,
        "llm_gateway_mcp_tool_calls_total",
        &[("tool", "llm_generate"), ("outcome", "failed")],
    );
    assert_eq!(failed, 1.0, "{m}");
    let route = common::sample(&m, "llm_gateway_requests_total", &[("route", "mcp")]);
    assert_eq!(route, 1.0, "{m}");
}

/// A client key's tokens/min counts the answers of `llm_generate` on `/mcp` as it counts `/v1/*` answers.
#[tokio::test]
async fn mcp_answers_count_against_the_client_keys_tokens() {
    let fakes = common::fakes().await;
    let app = app_with(
        &fakes,
        "",
        "limits:\n  clients:\n    - { name: agent, key: { value: agent-key-123456 }, tokens_per_minute: 5 }\n\
         mcp: { enabled: true }",
    );
    let key = [("authorization", "Bearer agent-key-123456")];
    let s = session(&app, &key).await;
    let out = call_tool(&app, &s, &key, "llm_generate", json!({"prompt": "hello there"})).await;
    assert_eq!(out["result"]["isError"], false, "{out}");
    assert!(
        out["result"]["structuredContent"]["usage"]["total_tokens"]
            .as_u64()
            .unwrap()
            > 5
    );
    let r = post(&app, init_body(), &key).await;
    assert_eq!(r.status, 429, "{}", r.json);
}

/// Offline mode promises not one remote call: `llm_smoke` then checks only a local provider.
#[tokio::test]
async fn smoke_in_offline_mode_calls_no_remote_provider() {
    let stand = common::stand_with("openai, kimi, ollama", "", "compatible").await;
    stand.state.router.set_mode(llm_gateway::config::Mode::Offline);
    let server = LlmProviderTool::new(Arc::new(Backend::Local(stand.state.clone())), None);
    let args = |v: Value| v.as_object().cloned();
    for a in [json!({}), json!({"provider": "openai"})] {
        let r = server.run("llm_smoke", args(a), None).await.unwrap();
        assert_eq!(r.is_error, Some(true));
        let msg = serde_json::to_string(&r.content).unwrap();
        assert!(msg.contains("offline mode") && msg.contains("ollama"), "{msg}");
    }
    let r = server
        .run("llm_smoke", args(json!({"provider": "ollama"})), None)
        .await
        .unwrap();
    assert_eq!(r.is_error, Some(false), "{r:?}");
    for name in ["openai", "kimi"] {
        assert_eq!(stand.fakes[name].request_count(), 0, "{name} was called");
    }
}

#[tokio::test]
async fn without_an_admin_token_admin_tools_answer_loopback_peers_only() {
    let fakes = common::fakes().await;
    let text = common::yaml(&fakes, "openai, kimi, ollama", "", "compatible");
    let (state, _) = common::gateway(&text);
    let server = LlmProviderTool::new(Arc::new(Backend::Local(state.clone())), None);
    let args = json!({"mode": "offline"}).as_object().cloned();
    // A remote peer (allowed by mcp.allowed_hosts) cannot switch the mode when no admin token is configured.
    let r = server
        .run_for("llm_set_mode", args.clone(), None, true)
        .await
        .unwrap();
    assert_eq!(r.is_error, Some(true), "{r:?}");
    let msg = serde_json::to_string(&r.content).unwrap();
    assert!(msg.contains("loopback peers only"), "{msg}");
    assert_eq!(state.router.mode(), llm_gateway::config::Mode::Auto);
    // Client tools still answer it; a loopback peer may switch.
    let r = server
        .run_for("llm_explain_route", json!({}).as_object().cloned(), None, true)
        .await
        .unwrap();
    assert_eq!(r.is_error, Some(false), "{r:?}");
    let r = server.run_for("llm_set_mode", args, None, false).await.unwrap();
    assert_eq!(r.is_error, Some(false), "{r:?}");
    assert_eq!(state.router.mode(), llm_gateway::config::Mode::Offline);
}
