//! Test stand: the five fakes from `llm-mocks` on port 0 and a gateway app wired to them, called with `oneshot`.
#![allow(
    dead_code,
    unreachable_pub,
    missing_docs,
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic
)]

use std::collections::HashMap;
use std::sync::Arc;

use axum::body::Body;
use axum::http::{HeaderMap, Request, StatusCode};
use llm_gateway::config::Config;
use llm_gateway::{app, AppState};
use llm_mocks::{FakeServer, Provider};
use serde_json::Value;
use tower::ServiceExt;

pub const PROVIDERS: [(&str, Provider); 5] = [
    ("openai", Provider::OpenAi),
    ("kimi", Provider::Kimi),
    ("qwen", Provider::Qwen),
    ("gigachat", Provider::GigaChat),
    ("ollama", Provider::Ollama),
];

pub struct Stand {
    pub fakes: HashMap<&'static str, FakeServer>,
    pub state: Arc<AppState>,
    pub app: axum::Router,
}

pub struct Reply {
    pub status: StatusCode,
    pub headers: HeaderMap,
    pub body: String,
}

impl Reply {
    pub fn json(&self) -> Value {
        serde_json::from_str(&self.body).unwrap_or_else(|e| panic!("not JSON ({e}): {}", self.body))
    }
    pub fn header(&self, name: &str) -> &str {
        self.headers.get(name).and_then(|v| v.to_str().ok()).unwrap_or("")
    }
    /// Concatenated `delta.content` of an SSE body.
    pub fn sse_text(&self) -> String {
        self.body
            .lines()
            .filter_map(|l| l.strip_prefix("data: "))
            .filter(|d| !d.starts_with("[DONE]"))
            .filter_map(|d| serde_json::from_str::<Value>(d).ok())
            .filter_map(|v| {
                v.pointer("/choices/0/delta/content")
                    .and_then(Value::as_str)
                    .map(str::to_string)
            })
            .collect()
    }
}

/// Default test policy: short timeouts, one retry, breaker after 3 failures.
pub const POLICY: &str = r#"
  deadline: 6s
  connect_timeout: 1s
  first_token_timeout: 2s
  stall_timeout: 1s
  attempt_timeout: 2s
  retries: { max_retries: 1, backoff_base: 10ms, backoff_max: 50ms, budget_ratio: 1.0, budget_min_per_second: 10 }
  breaker: { window: 30s, min_requests: 3, failure_ratio: 0.5, open_for: 30s }
  cooldowns: { rate_limited: 5s, rate_limited_max: 60s, quota_exhausted: 10m, auth: 60s }
"#;

pub fn yaml(
    fakes: &HashMap<&'static str, FakeServer>,
    order: &str,
    extra_policy: &str,
    qwen_api: &str,
) -> String {
    let url = |n: &str| fakes[n].base_url();
    let qwen_url = if qwen_api == "native" {
        format!("{}/api/v1", fakes["qwen"].uri())
    } else {
        url("qwen")
    };
    format!(
        r#"
server: {{ listen: 127.0.0.1:0, body_limit_bytes: 65536 }}
mode: auto
models:
  default: {{ openai: gpt-4o-mini, kimi: moonshot-v1-8k, qwen: qwen-plus, gigachat: GigaChat, ollama: llama3.2 }}
  embeddings: {{ openai: text-embedding-3-small, qwen: text-embedding-v3, gigachat: Embeddings, ollama: all-minilm }}
  embeddings-local: {{ ollama: all-minilm }}
aliases: {{ claude-sonnet-4-5: default, "claude-*": default }}
providers:
  openai: {{ kind: openai, base_url: "{}", secret: {{ value: sk-test-openai-secret }} }}
  kimi: {{ kind: kimi, base_url: "{}", secret: {{ value: sk-test-kimi-secret }} }}
  qwen: {{ kind: qwen, api: {qwen_api}, base_url: "{qwen_url}", secret: {{ value: sk-test-qwen-secret }} }}
  gigachat:
    kind: gigachat
    base_url: "{}"
    auth: {{ url: "{}/api/v2/oauth", scope: GIGACHAT_API_PERS }}
    secret: {{ value: Y2xpZW50OnNlY3JldA== }}
  ollama: {{ kind: ollama, base_url: "{}" }}
fallback_policy:
  order: [{order}]
{POLICY}{extra_policy}
"#,
        url("openai"),
        url("kimi"),
        url("gigachat"),
        fakes["gigachat"].uri(),
        url("ollama"),
    )
}

pub async fn fakes() -> HashMap<&'static str, FakeServer> {
    let mut out = HashMap::new();
    for (name, p) in PROVIDERS {
        out.insert(name, FakeServer::start(p).await.expect("fake starts"));
    }
    out
}

pub fn gateway(text: &str) -> (Arc<AppState>, axum::Router) {
    let cfg = Config::from_yaml(text, &|_| None).unwrap_or_else(|e| panic!("config: {e}\n{text}"));
    let state = AppState::new(cfg).expect("state");
    let router = app(state.clone());
    (state, router)
}

pub async fn stand_with(order: &str, extra_policy: &str, qwen_api: &str) -> Stand {
    let fakes = fakes().await;
    let (state, app) = gateway(&yaml(&fakes, order, extra_policy, qwen_api));
    Stand { fakes, state, app }
}

pub async fn stand() -> Stand {
    stand_with("openai, kimi, qwen, gigachat, ollama", "", "compatible").await
}

pub async fn call(
    app: &axum::Router,
    method: &str,
    path: &str,
    body: Option<Value>,
    headers: &[(&str, &str)],
) -> Reply {
    let mut b = Request::builder()
        .method(method)
        .uri(path)
        .header("content-type", "application/json");
    for (k, v) in headers {
        b = b.header(*k, *v);
    }
    let body = body
        .map(|v| Body::from(v.to_string()))
        .unwrap_or_else(Body::empty);
    let resp = app.clone().oneshot(b.body(body).unwrap()).await.unwrap();
    let status = resp.status();
    let headers = resp.headers().clone();
    let bytes = axum::body::to_bytes(resp.into_body(), 16 * 1024 * 1024)
        .await
        .unwrap();
    Reply {
        status,
        headers,
        body: String::from_utf8_lossy(&bytes).into_owned(),
    }
}

pub fn chat(stream: bool) -> Value {
    serde_json::json!({"model": "default", "stream": stream, "messages": [{"role": "user", "content": "Say hello to the gateway"}]})
}

pub async fn metrics(app: &axum::Router) -> String {
    call(app, "GET", "/metrics", None, &[]).await.body
}

/// Value of one sample line, e.g. `llm_gateway_fallbacks_total{from="openai",reason="rate_limited",to="kimi"}`.
pub fn sample(metrics: &str, name: &str, labels: &[(&str, &str)]) -> f64 {
    metrics
        .lines()
        .filter(|l| l.starts_with(name) && l[name.len()..].starts_with(['{', ' ']))
        .filter(|l| labels.iter().all(|(k, v)| l.contains(&format!("{k}=\"{v}\""))))
        .filter_map(|l| l.rsplit(' ').next().and_then(|v| v.parse::<f64>().ok()))
        .sum()
}
