//! OpenTelemetry traces against a real OTLP/HTTP receiver (`otlp/receiver.py`, decoding the protobuf with the
//! official `opentelemetry-proto` definitions from PyPI, run with the project's venv): a fallback request's
//! spans, their parent links and attributes, the W3C `traceparent` from the client and on to the providers, and
//! a request answered normally while the collector is down. Without the venv: a note and a skip (CI=true: a
//! failure), as in `sdk.rs`.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod common;

use std::io::{BufRead, BufReader};
use std::process::{Child, Command, Stdio};
use std::sync::mpsc::{Receiver, RecvTimeoutError};
use std::time::Duration;

use tokio::time::Instant;

use common::*;
use llm_mocks::{FaultKind, FaultSpec};
use serde_json::{json, Value};

const CLIENT_TRACE: &str = "0af7651916cd43dd8448eb211c80319c";
const CLIENT_SPAN: &str = "b7ad6b7169203331";
const PROMPT: &str = "Tell me about zebra 9431 stripes";

/// The receiver process and the spans it prints.
struct Receiver_ {
    child: Child,
    port: u16,
    lines: Receiver<String>,
}

impl Drop for Receiver_ {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn receiver() -> Option<Receiver_> {
    let py = llm_mocks::testing::venv_python().unwrap()?;
    let script = llm_mocks::testing::workspace_root().join("gateway/tests/otlp/receiver.py");
    let mut child = Command::new(py)
        .arg(script)
        .stdout(Stdio::piped())
        .stderr(Stdio::inherit())
        .spawn()
        .expect("the receiver starts");
    let out = child.stdout.take().unwrap();
    let (tx, lines) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        for line in BufReader::new(out).lines().map_while(Result::ok) {
            if tx.send(line).is_err() {
                break;
            }
        }
    });
    // Readiness: the receiver prints its port once it listens.
    let first = lines
        .recv_timeout(Duration::from_secs(30))
        .expect("the receiver prints its port");
    let port = first.strip_prefix("PORT ").expect("PORT line").parse().unwrap();
    Some(Receiver_ { child, port, lines })
}

impl Receiver_ {
    /// Spans received until `done` says there are enough (30 s at most: a bound, never a wait on success).
    fn spans_until(&self, done: impl Fn(&[Value]) -> bool) -> Vec<Value> {
        let mut spans = Vec::new();
        let end = Instant::now() + Duration::from_secs(30);
        while !done(&spans) {
            match self
                .lines
                .recv_timeout(end.saturating_duration_since(Instant::now()))
            {
                Ok(l) => {
                    if let Some(j) = l.strip_prefix("SPAN ") {
                        spans.push(serde_json::from_str(j).unwrap());
                    }
                }
                Err(RecvTimeoutError::Timeout | RecvTimeoutError::Disconnected) => {
                    panic!("not all spans arrived: {spans:#?}")
                }
            }
        }
        spans
    }
}

fn attr<'a>(span: &'a Value, key: &str) -> &'a Value {
    &span["attributes"][key]
}

async fn flush(state: &std::sync::Arc<llm_gateway::AppState>) {
    let t = state.telemetry.clone().expect("traces are on");
    tokio::task::spawn_blocking(move || t.flush())
        .await
        .unwrap()
        .unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_fallback_request_is_one_span_with_an_attempt_span_per_provider_and_the_trace_reaches_them() {
    let Some(rx) = receiver() else { return };
    let fakes = fakes().await;
    let mut text = yaml(&fakes, "openai, kimi, qwen", "", "compatible");
    text.push_str(&format!(
        "telemetry:\n  otlp:\n    endpoint: \"http://127.0.0.1:{}\"\n    headers: {{ api-key: collector-key-1 }}\n    \
         export_interval: 20ms\n",
        rx.port
    ));
    let (state, app) = gateway(&text);
    fakes["openai"]
        .add_fault(FaultSpec::new(FaultKind::Auth))
        .unwrap();

    let traceparent = format!("00-{CLIENT_TRACE}-{CLIENT_SPAN}-01");
    let body = json!({"model": "default", "messages": [{"role": "user", "content": PROMPT}]});
    let r = call(
        &app,
        "POST",
        "/v1/chat/completions",
        Some(body.clone()),
        &[("traceparent", &traceparent)],
    )
    .await;
    assert_eq!(r.status, 200, "{}", r.body);
    assert_eq!(
        r.header("x-llm-actual-provider"),
        "kimi",
        "openai refused (auth), kimi answered"
    );
    flush(&state).await;
    let spans = rx.spans_until(|s| s.len() >= 3);
    assert_eq!(
        spans.len(),
        3,
        "one request span and two attempt spans: {spans:#?}"
    );
    let all = serde_json::to_string(&spans).unwrap();
    let recorded: Vec<Value> = spans
        .iter()
        .map(|s| json!([s["name"], s["attributes"], s["events"], s["resource"]]))
        .collect();
    let recorded = serde_json::to_string(&recorded).unwrap();
    for secret in [
        PROMPT,
        "zebra",
        "sk-test-openai-secret",
        "sk-test-kimi-secret",
        "collector-key-1",
    ] {
        assert!(!recorded.contains(secret), "{secret:?} is on a span: {all}");
    }
    assert!(
        spans.iter().all(|s| s["header_api_key"] == "collector-key-1"),
        "the configured headers go with every export"
    );
    assert!(
        spans.iter().all(|s| s["trace_id"] == CLIENT_TRACE),
        "one trace, the client's: {all}"
    );
    assert!(
        spans
            .iter()
            .all(|s| s["resource"]["service.name"] == "llm-gateway"),
        "{all}"
    );

    let req = spans
        .iter()
        .find(|s| s["kind"] == "SPAN_KIND_SERVER")
        .expect("the request span");
    assert_eq!(
        req["parent_span_id"], CLIENT_SPAN,
        "the client's traceparent is its parent"
    );
    assert_eq!(req["name"], "chat default");
    assert_eq!(attr(req, "gen_ai.operation.name"), "chat");
    assert_eq!(attr(req, "gen_ai.request.model"), "default");
    assert_eq!(attr(req, "gen_ai.provider.name"), "moonshot");
    assert_eq!(attr(req, "llm_gateway.provider"), "kimi");
    assert_eq!(attr(req, "llm_gateway.tier"), "provider");
    assert_eq!(attr(req, "llm_gateway.fallbacks"), 1);
    assert_eq!(attr(req, "llm_gateway.fallback.reason"), "auth");
    let answer = r.json();
    assert_eq!(attr(req, "gen_ai.response.model"), &answer["model"]);
    assert_eq!(
        attr(req, "gen_ai.usage.input_tokens"),
        &answer["usage"]["prompt_tokens"]
    );
    assert_eq!(
        attr(req, "gen_ai.usage.output_tokens"),
        &answer["usage"]["completion_tokens"]
    );
    assert_eq!(req["status"], "STATUS_CODE_UNSET");

    let attempt = |p: &str| {
        spans
            .iter()
            .find(|s| s["kind"] == "SPAN_KIND_CLIENT" && attr(s, "llm_gateway.provider") == p)
            .unwrap_or_else(|| panic!("no attempt span for {p}: {all}"))
    };
    let (openai, kimi) = (attempt("openai"), attempt("kimi"));
    for (s, name, model) in [
        (openai, "openai", "gpt-4o-mini"),
        (kimi, "moonshot", "moonshot-v1-8k"),
    ] {
        assert_eq!(
            s["parent_span_id"], req["span_id"],
            "a child of the request span: {s}"
        );
        assert_eq!(attr(s, "gen_ai.provider.name"), name, "{s}");
        assert_eq!(attr(s, "gen_ai.request.model"), model, "{s}");
    }
    assert_eq!(attr(openai, "error.type"), "auth");
    assert_eq!(openai["status"], "STATUS_CODE_ERROR");
    assert!(attr(openai, "llm_gateway.fallback.reason").is_null());
    assert_eq!(attr(kimi, "llm_gateway.fallback.from"), "openai");
    assert_eq!(attr(kimi, "llm_gateway.fallback.reason"), "auth");
    assert!(attr(kimi, "error.type").is_null());
    assert_eq!(attr(kimi, "gen_ai.response.model"), &answer["model"]);
    assert_eq!(
        attr(kimi, "gen_ai.response.finish_reasons"),
        &json!({"values": [{"stringValue": "stop"}]})
    );
    assert_eq!(attr(kimi, "server.address"), "127.0.0.1");
    assert_eq!(attr(kimi, "server.port"), fakes["kimi"].addr().port());
    assert!(attr(kimi, "gen_ai.usage.input_tokens").as_i64().unwrap() > 0);

    // Each provider got its own attempt's traceparent, in the client's trace.
    for (p, s) in [("openai", openai), ("kimi", kimi)] {
        let tp: Vec<String> = fakes[p]
            .journal()
            .iter()
            .filter_map(|e| e.header("traceparent").map(str::to_string))
            .collect();
        let want = format!("00-{CLIENT_TRACE}-{}-01", s["span_id"].as_str().unwrap());
        assert_eq!(tp, [want], "{p}");
    }

    // openai now cools down (auth): the next request passes it over, an event of its span, not an attempt.
    let r = call(&app, "POST", "/v1/chat/completions", Some(body), &[]).await;
    assert_eq!(r.status, 200, "{}", r.body);
    flush(&state).await;
    let spans = rx.spans_until(|s| s.len() >= 2);
    assert_eq!(spans.len(), 2, "the request span and kimi's attempt: {spans:#?}");
    let req = spans.iter().find(|s| s["kind"] == "SPAN_KIND_SERVER").unwrap();
    assert_eq!(
        req["parent_span_id"], "",
        "no traceparent from the client: a root span"
    );
    assert_ne!(req["trace_id"], CLIENT_TRACE);
    let skip = &req["events"][0];
    assert_eq!(skip["name"], "llm_gateway.provider.skipped", "{req}");
    assert_eq!(skip["attributes"]["llm_gateway.provider"], "openai");
    assert_eq!(skip["attributes"]["llm_gateway.skip.reason"], "skipped_cooldown");
    let kimi = spans.iter().find(|s| s["kind"] == "SPAN_KIND_CLIENT").unwrap();
    assert_eq!(kimi["parent_span_id"], req["span_id"]);
    assert_eq!(attr(kimi, "llm_gateway.fallback.from"), "openai");
    assert_eq!(attr(kimi, "llm_gateway.fallback.reason"), "skipped_cooldown");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn with_the_collector_down_requests_are_answered_and_the_lost_spans_counted() {
    // A port nothing listens on: every export is refused.
    let closed = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let port = closed.local_addr().unwrap().port();
    drop(closed);
    let fakes = fakes().await;
    let mut text = yaml(&fakes, "openai, kimi", "", "compatible");
    text.push_str(&format!(
        "telemetry: {{ otlp: {{ endpoint: \"http://127.0.0.1:{port}\", timeout: 500ms, export_interval: 20ms }} }}\n"
    ));
    let (state, app) = gateway(&text);
    for stream in [false, true] {
        let r = call(&app, "POST", "/v1/chat/completions", Some(chat(stream)), &[]).await;
        assert_eq!(r.status, 200, "{}", r.body);
        assert_eq!(r.header("x-llm-actual-provider"), "openai");
    }
    let emb = json!({"model": "embeddings", "input": "hello"});
    assert_eq!(
        call(&app, "POST", "/v1/embeddings", Some(emb), &[]).await.status,
        200
    );
    flush(&state).await;
    // Three requests, one attempt each: six spans, every one refused by the collector.
    assert_eq!(state.metrics.spans_dropped.get(), 6);
    let metrics = call(&app, "GET", "/metrics", None, &[]).await.body;
    assert!(
        metrics.contains("llm_gateway_trace_spans_dropped_total 6"),
        "{metrics}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_streamed_request_span_lasts_to_the_streams_end_with_its_usage() {
    let Some(rx) = receiver() else { return };
    let fakes = fakes().await;
    let mut text = yaml(&fakes, "openai, kimi", "", "compatible");
    text.push_str(&format!(
        "telemetry: {{ otlp: {{ endpoint: \"http://127.0.0.1:{}\", export_interval: 20ms }} }}\n",
        rx.port
    ));
    let (state, app) = gateway(&text);
    fakes["openai"]
        .add_fault(FaultSpec::new(FaultKind::Auth))
        .unwrap();
    let body = json!({"model": "default", "stream": true, "stream_options": {"include_usage": true},
                      "messages": [{"role": "user", "content": PROMPT}]});
    let r = call(&app, "POST", "/v1/chat/completions", Some(body), &[]).await;
    assert_eq!(r.status, 200, "{}", r.body);
    assert!(!r.sse_text().is_empty(), "{}", r.body);
    flush(&state).await;
    let spans = rx.spans_until(|s| s.len() >= 3);
    let all = serde_json::to_string(&spans).unwrap();
    assert!(!all.contains("zebra"), "{all}");
    let req = spans.iter().find(|s| s["kind"] == "SPAN_KIND_SERVER").unwrap();
    assert_eq!(attr(req, "llm_gateway.provider"), "kimi", "{all}");
    assert_eq!(attr(req, "llm_gateway.fallbacks"), 1, "{all}");
    assert_eq!(attr(req, "gen_ai.response.model"), "moonshot-v1-8k", "{all}");
    assert!(
        attr(req, "gen_ai.usage.output_tokens").as_i64().unwrap_or(0) > 0,
        "the stream's usage chunk: {all}"
    );
    let attempts = spans
        .iter()
        .filter(|s| s["kind"] == "SPAN_KIND_CLIENT" && s["parent_span_id"] == req["span_id"])
        .count();
    assert_eq!(attempts, 2, "{all}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_collector_that_never_answers_holds_no_request() {
    // Accepts export connections and never answers: each export waits for its timeout (30 s, longer than this
    // test may take), so only a queue that never waits lets the requests through.
    let hole = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let port = hole.local_addr().unwrap().port();
    let held = tokio::spawn(async move {
        let mut conns = Vec::new();
        while let Ok((c, _)) = hole.accept().await {
            conns.push(c);
        }
    });
    let fakes = fakes().await;
    let mut text = yaml(&fakes, "openai, kimi", "", "compatible");
    text.push_str(&format!(
        "telemetry: {{ otlp: {{ endpoint: \"http://127.0.0.1:{port}\", timeout: 30s, queue_size: 4, batch_size: 2, \
         export_interval: 10ms }} }}\n"
    ));
    let (state, app) = gateway(&text);
    for _ in 0..20 {
        let r = call(&app, "POST", "/v1/chat/completions", Some(chat(false)), &[]).await;
        assert_eq!(r.status, 200, "{}", r.body);
    }
    // 40 spans, at most one batch in the stuck export and a full queue: the rest were dropped, not waited for.
    assert!(
        state.metrics.spans_dropped.get() >= 40 - 2 - 5,
        "{}",
        state.metrics.spans_dropped.get()
    );
    held.abort();
}
