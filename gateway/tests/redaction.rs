//! An upstream that echoes the gateway's key back, at every position of its error text (around the 300-byte cut
//! too), in plain, `Bearer` and base64 form, in its message and its code, before the first byte and inside a
//! stream: the key reaches neither the client, nor `/admin/providers`, nor a log line.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod common;

use std::io::Write;
use std::sync::{Arc, Mutex, OnceLock};

use base64::Engine;
use common::{call, chat};
use wiremock::matchers::{method, path};
use wiremock::{Mock, MockServer, ResponseTemplate};

const KEY: &str = "sk-proj-AbCdEf0123456789XyZqW";

#[derive(Clone, Default)]
struct Logs(Arc<Mutex<Vec<u8>>>);

impl Write for Logs {
    fn write(&mut self, b: &[u8]) -> std::io::Result<usize> {
        self.0.lock().unwrap().extend_from_slice(b);
        Ok(b.len())
    }
    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

fn logs() -> &'static Logs {
    static LOGS: OnceLock<Logs> = OnceLock::new();
    LOGS.get_or_init(|| {
        let logs = Logs::default();
        let writer = logs.clone();
        tracing_subscriber::fmt()
            .with_env_filter("llm_gateway=debug")
            .with_ansi(false)
            .with_writer(move || writer.clone())
            .init();
        logs
    })
}

/// Any 8 consecutive characters of the key (or of the inner part of an encoded form) give it away.
fn leaks(text: &str, form: &str) -> Option<String> {
    let inner = if form.len() > 16 {
        &form[4..form.len() - 4]
    } else {
        form
    };
    (0..=inner.len().saturating_sub(8))
        .map(|i| &inner[i..i + 8])
        .find(|w| text.contains(w))
        .map(str::to_string)
}

#[tokio::test]
async fn an_echoed_key_never_leaves_the_gateway_by_any_path() {
    let logs = logs();
    let upstream = MockServer::start().await;
    let text = format!(
        r#"
models:
  default: {{ openai: gpt-4o-mini }}
providers:
  openai: {{ kind: openai, base_url: "{}/v1", secret: {{ value: {KEY} }} }}
fallback_policy:
  order: [openai]
  deadline: 5s
  breaker: {{ window: 30s, min_requests: 1000, failure_ratio: 1.0, open_for: 1s }}
"#,
        upstream.uri()
    );
    let (_state, app) = common::gateway(&text);
    let b64 = base64::engine::general_purpose::STANDARD.encode(format!("user:{KEY}"));
    let forms = [
        ("plain", KEY.to_string(), KEY.to_string()),
        ("bearer", format!("Authorization: bearer {KEY}"), KEY.to_string()),
        ("base64", format!("Basic{b64}"), b64[8..].to_string()),
    ];
    let mut cases = 0;
    // Every position where the 300-byte cut can fall inside the echoed form, and a spread elsewhere.
    let positions: Vec<usize> = [0usize, 1, 7, 50, 150, 250]
        .into_iter()
        .chain(255..=300)
        .chain([301, 310, 1000, 5000])
        .collect();
    for &at in &positions {
        for (name, echoed, secret_form) in &forms {
            let message = format!("{}{echoed} is not valid{}", "m".repeat(at), "z".repeat(40));
            let body = serde_json::json!({"error": {"message": message, "type": "invalid_request_error", "code": echoed}});
            // 400: the upstream's message goes to the client as a rejection; 503: it is an attempt record.
            for status in [400u16, 503] {
                upstream.reset().await;
                Mock::given(method("POST"))
                    .and(path("/v1/chat/completions"))
                    .respond_with(ResponseTemplate::new(status).set_body_json(&body))
                    .mount(&upstream)
                    .await;
                let r = call(&app, "POST", "/v1/chat/completions", Some(chat(false)), &[]).await;
                assert_eq!(
                    r.status.as_u16() / 100,
                    if status == 400 { 4 } else { 5 },
                    "{}",
                    r.body
                );
                assert!(r.body.contains("[redacted]"), "{name} at {at}: {}", r.body);
                if let Some(w) = leaks(&r.body, secret_form) {
                    panic!(
                        "{name} at {at}, HTTP {status}: {w:?} in the error body {}",
                        r.body
                    );
                }
            }
            // Inside a stream, after the first token.
            upstream.reset().await;
            let sse = format!(
                "data: {}\n\ndata: {}\n\n",
                serde_json::json!({"id":"c","object":"chat.completion.chunk","created":1,"model":"m",
                    "choices":[{"index":0,"delta":{"role":"assistant","content":"Hel"},"finish_reason":null}]}),
                body
            );
            Mock::given(method("POST"))
                .and(path("/v1/chat/completions"))
                .respond_with(
                    ResponseTemplate::new(200)
                        .insert_header("content-type", "text/event-stream")
                        .set_body_string(sse),
                )
                .up_to_n_times(1)
                .mount(&upstream)
                .await;
            let r = call(&app, "POST", "/v1/chat/completions", Some(chat(true)), &[]).await;
            assert!(r.body.contains("event: error"), "{name} at {at}: {}", r.body);
            if at < 250 {
                assert!(
                    r.body.contains("[redacted]"),
                    "the echo reached the event, redacted: {}",
                    r.body
                );
            }
            if let Some(w) = leaks(&r.body, secret_form) {
                panic!("{name} at {at}: {w:?} in the stream's error event {}", r.body);
            }
            let admin = call(&app, "GET", "/admin/providers", None, &[]).await;
            assert!(admin.body.contains("last_error"), "{}", admin.body);
            if let Some(w) = leaks(&admin.body, secret_form) {
                panic!("{name} at {at}: {w:?} in /admin/providers {}", admin.body);
            }
            cases += 1;
        }
    }
    let logged = String::from_utf8_lossy(&logs.0.lock().unwrap()).into_owned();
    assert!(logged.contains("openai"), "the attempts were logged: {logged}");
    for (name, _, secret_form) in &forms {
        if let Some(w) = leaks(&logged, secret_form) {
            let line = logged.lines().find(|l| l.contains(&w)).unwrap_or_default();
            panic!("{name}: {w:?} in a log line: {line}");
        }
    }
    assert_eq!(cases, positions.len() * 3);
}

/// GigaChat's OAuth endpoint echoing the authorization key (plain and inside `Basic ...`), through the router and
/// through `llm-gateway smoke`'s report.
#[tokio::test]
async fn an_oauth_error_echoing_the_authorization_key_is_redacted_for_clients_and_the_smoke_report() {
    let upstream = MockServer::start().await;
    let key = base64::engine::general_purpose::STANDARD.encode("client-id-123:client-secret-456789");
    for (i, echoed) in [
        key.clone(),
        format!("Basic {key}"),
        format!("{}{key}", "o".repeat(290)),
    ]
    .iter()
    .enumerate()
    {
        upstream.reset().await;
        Mock::given(method("POST"))
            .and(path("/api/v2/oauth"))
            .respond_with(
                ResponseTemplate::new(401)
                    .set_body_json(serde_json::json!({"code": 6, "message": format!("bad key {echoed}")})),
            )
            .mount(&upstream)
            .await;
        let text = format!(
            r#"
models:
  default: {{ gigachat: GigaChat }}
providers:
  gigachat:
    kind: gigachat
    base_url: "{uri}/api/v1"
    auth: {{ url: "{uri}/api/v2/oauth", scope: GIGACHAT_API_PERS }}
    secret: {{ value: "{key}" }}
fallback_policy:
  order: [gigachat]
  deadline: 5s
"#,
            uri = upstream.uri()
        );
        let (_state, app) = common::gateway(&text);
        let r = call(&app, "POST", "/v1/chat/completions", Some(chat(false)), &[]).await;
        assert_eq!(r.json()["error"]["attempts"][0]["error"], "auth", "{}", r.body);
        if let Some(w) = leaks(&r.body, &key) {
            panic!("case {i}: {w:?} in {}", r.body);
        }
        let cfg = llm_gateway::config::Config::from_yaml(&text, &|_| None).unwrap();
        let report = llm_gateway::ops::smoke::run(&cfg, None, false).await.unwrap();
        let json = serde_json::to_string(&report).unwrap();
        assert!(json.contains("OAuth"), "{json}");
        if let Some(w) = leaks(&json, &key) {
            panic!("case {i}: {w:?} in the smoke report {json}");
        }
    }
}
