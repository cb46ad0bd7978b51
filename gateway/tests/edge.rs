//! The edge as a hostile or careless client meets it, over real loopback sockets: rejections are OpenAI-shaped
//! errors, slow and silent connections are closed, the connection cap sheds and keeps probes answered, admin is
//! loopback-only without a token, and the drain closes idle connections at once and ends open streams cleanly.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod common;

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use llm_gateway::AppState;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;
use tokio::task::JoinHandle;

const BASE: &str = r#"
models:
  default: { openai: gpt-4o-mini }
providers:
  openai: { kind: openai, base_url: "http://127.0.0.1:9/v1", secret: { value: sk-nothing-here } }
fallback_policy:
  order: [openai]
  deadline: 2s
  connect_timeout: 200ms
"#;

struct Running {
    addr: SocketAddr,
    metrics: Option<SocketAddr>,
    state: Arc<AppState>,
    stop: Option<tokio::sync::oneshot::Sender<()>>,
    server: JoinHandle<std::io::Result<()>>,
}

async fn start(text: &str, with_metrics: bool) -> Running {
    let cfg = llm_gateway::config::Config::from_yaml(text, &|_| None).unwrap_or_else(|e| panic!("{e}"));
    let state = AppState::new(cfg).unwrap();
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let ml = if with_metrics {
        Some(tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap())
    } else {
        None
    };
    let metrics = ml.as_ref().map(|l| l.local_addr().unwrap());
    let (tx, rx) = tokio::sync::oneshot::channel::<()>();
    let server = tokio::spawn(llm_gateway::server::run(
        listener,
        ml,
        state.clone(),
        async move {
            let _ = rx.await;
        },
    ));
    Running {
        addr,
        metrics,
        state,
        stop: Some(tx),
        server,
    }
}

/// Writes `req` on a new connection and reads until the server closes it (bounded).
async fn exchange(addr: SocketAddr, req: &[u8]) -> String {
    let mut s = TcpStream::connect(addr).await.unwrap();
    s.write_all(req).await.unwrap();
    read_to_close(&mut s).await
}

async fn read_to_close(s: &mut TcpStream) -> String {
    let mut out = Vec::new();
    let _ = tokio::time::timeout(Duration::from_secs(10), s.read_to_end(&mut out))
        .await
        .expect("the server closed the connection");
    String::from_utf8_lossy(&out).into_owned()
}

/// A connection kept alive after one answer (`/healthz`, whose status line is read; the rest of the answer is
/// left for the caller's reads).
async fn kept_alive(addr: SocketAddr) -> TcpStream {
    let mut s = TcpStream::connect(addr).await.unwrap();
    s.write_all(b"GET /healthz HTTP/1.1\r\nhost: x\r\n\r\n")
        .await
        .unwrap();
    let mut first = [0u8; 12];
    s.read_exact(&mut first).await.unwrap();
    assert_eq!(&first, b"HTTP/1.1 200");
    s
}

fn get(path: &str) -> Vec<u8> {
    format!("GET {path} HTTP/1.1\r\nhost: x\r\nconnection: close\r\n\r\n").into_bytes()
}

fn status(resp: &str) -> u16 {
    resp.split(' ').nth(1).and_then(|s| s.parse().ok()).unwrap_or(0)
}

fn error_code(resp: &str) -> String {
    let body = resp.split("\r\n\r\n").nth(1).unwrap_or("");
    let v: serde_json::Value = serde_json::from_str(body).unwrap_or_else(|e| panic!("{e}: {resp}"));
    let e = &v["error"];
    for k in ["message", "type", "param", "code"] {
        assert!(e.get(k).is_some(), "OpenAI shape needs error.{k}: {resp}");
    }
    e["code"].as_str().unwrap().to_string()
}

#[tokio::test]
async fn rejections_made_outside_the_handlers_are_openai_errors() {
    let text = format!(
        "server: {{ body_limit_bytes: 2048, max_header_bytes: 4096, body_read_timeout: 300ms }}\n{BASE}"
    );
    let gw = start(&text, false).await;
    let a = gw.addr;
    let r = exchange(a, &get("/v1/no-such-route")).await;
    assert_eq!((status(&r), error_code(&r).as_str()), (404, "not_found"), "{r}");
    let r = exchange(a, &get("/v1/completions")).await;
    assert_eq!(status(&r), 404, "{r}");
    let r = exchange(a, &get("/v1/chat/completions")).await;
    assert_eq!(
        (status(&r), error_code(&r).as_str()),
        (405, "method_not_allowed"),
        "{r}"
    );
    assert!(r.to_ascii_lowercase().contains("\r\nallow: post"), "{r}");
    let r = exchange(
        a,
        b"DELETE /admin/mode HTTP/1.1\r\nhost: x\r\nconnection: close\r\n\r\n",
    )
    .await;
    assert_eq!(status(&r), 405, "{r}");
    assert!(
        r.to_ascii_lowercase().contains("allow: get,head,post") || r.contains("POST"),
        "{r}"
    );

    let body = "x".repeat(3000);
    let req = format!(
        "POST /v1/chat/completions HTTP/1.1\r\nhost: x\r\ncontent-type: application/json\r\n\
         content-length: {}\r\nconnection: close\r\n\r\n{body}",
        body.len()
    );
    let r = exchange(a, req.as_bytes()).await;
    assert_eq!(
        (status(&r), error_code(&r).as_str()),
        (413, "body_too_large"),
        "{r}"
    );
    assert!(r.contains("2048") && r.contains("server.body_limit_bytes"), "{r}");

    // A head over max_header_bytes (but under hyper's buffer of twice that): 431 with a JSON body.
    let big = format!(
        "GET /healthz HTTP/1.1\r\nhost: x\r\nx-pad: {}\r\nconnection: close\r\n\r\n",
        "p".repeat(5000)
    );
    let r = exchange(a, big.as_bytes()).await;
    assert_eq!(
        (status(&r), error_code(&r).as_str()),
        (431, "headers_too_large"),
        "{r}"
    );
    assert!(r.contains("server.max_header_bytes"), "{r}");

    // A body that stops coming: 408 after body_read_timeout, and the connection is closed.
    let mut s = TcpStream::connect(a).await.unwrap();
    s.write_all(
        b"POST /v1/chat/completions HTTP/1.1\r\nhost: x\r\ncontent-type: application/json\r\ncontent-length: 100\r\n\r\n{\"mo",
    )
    .await
    .unwrap();
    let r = read_to_close(&mut s).await;
    assert_eq!(
        (status(&r), error_code(&r).as_str()),
        (408, "body_timeout"),
        "{r}"
    );
    assert!(r.contains("server.body_read_timeout"), "{r}");

    // What hyper refuses itself (bad syntax, ambiguous framing, too many headers, a long pipelined head) carries
    // a JSON body too.
    let many: String = (0..200).map(|i| format!("a{i}: b\r\n")).collect();
    let pipelined = format!(
        "GET /healthz HTTP/1.1\r\nhost: x\r\n\r\nGET /healthz HTTP/1.1\r\nx: {}\r\n\r\n",
        "a".repeat(20_000)
    );
    for (req, want, code) in [
        ("G@T /healthz HTTP/1.1\r\nhost: x\r\n\r\n".to_string(), 400, "invalid_http"),
        ("GET /healthz HTTP/1.1\r\nho st: x\r\n\r\n".to_string(), 400, "invalid_http"),
        (
            "POST /v1/chat/completions HTTP/1.1\r\nhost: x\r\ncontent-length: 5\r\ncontent-length: 6\r\n\r\nhello".to_string(),
            400,
            "invalid_http",
        ),
        (format!("GET /healthz HTTP/1.1\r\nhost: x\r\n{many}\r\n"), 431, "headers_too_large"),
    ] {
        let r = exchange(a, req.as_bytes()).await;
        assert_eq!((status(&r), error_code(&r).as_str()), (want, code), "{req:.60}: {r}");
    }
    let r = exchange(a, pipelined.as_bytes()).await;
    let second = &r[r.find("{\"status\":\"ok\"}").unwrap() + 15..];
    assert_eq!(
        (status(second), error_code(second).as_str()),
        (431, "headers_too_large"),
        "{r}"
    );
    // A declared body over the limit is refused at once: no `100 Continue`, no wait for the body.
    let r = exchange(
        a,
        b"POST /v1/chat/completions HTTP/1.1\r\nhost: x\r\ncontent-length: 999999999\r\nexpect: 100-continue\r\n\r\n",
    )
    .await;
    assert_eq!(
        (status(&r), error_code(&r).as_str()),
        (413, "body_too_large"),
        "{r}"
    );
    assert!(!r.contains("100 Continue"), "{r}");

    // Wrong types and broken JSON stay 400s with their codes over the socket too.
    for (body, code) in [
        ("{not json", "invalid_json"),
        (
            "{\"model\":7,\"messages\":[{\"role\":\"user\",\"content\":\"x\"}]}",
            "invalid_request",
        ),
    ] {
        let req = format!(
            "POST /v1/chat/completions HTTP/1.1\r\nhost: x\r\ncontent-type: application/json\r\n\
             content-length: {}\r\nconnection: close\r\n\r\n{body}",
            body.len()
        );
        let r = exchange(a, req.as_bytes()).await;
        assert_eq!((status(&r), error_code(&r).as_str()), (400, code), "{r}");
    }
}

#[tokio::test]
async fn silent_slow_and_idle_connections_are_closed() {
    let text = format!("server: {{ header_read_timeout: 300ms, idle_timeout: 400ms }}\n{BASE}");
    let gw = start(&text, false).await;
    let a = gw.addr;
    let started = tokio::time::Instant::now();
    // Silent: connects, sends nothing.
    let mut silent = TcpStream::connect(a).await.unwrap();
    // Slow head: part of a request line, then nothing.
    let mut partial = TcpStream::connect(a).await.unwrap();
    partial.write_all(b"GET /healthz HTTP/1.1\r\nhost").await.unwrap();
    // Dripping head: a byte every 100 ms does not reset the head timer.
    let mut drip = TcpStream::connect(a).await.unwrap();
    let dripper = tokio::spawn(async move {
        for b in
            b"GET /healthz HTTP/1.1\r\nx-slow: aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa"
        {
            if drip.write_all(&[*b]).await.is_err() {
                break;
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
        read_to_close(&mut drip).await
    });
    // Idle keep-alive after one answer.
    let mut idle = kept_alive(a).await;
    for (name, s) in [
        ("silent", &mut silent),
        ("partial", &mut partial),
        ("idle", &mut idle),
    ] {
        let rest = read_to_close(s).await;
        assert!(!rest.contains("HTTP/1.1 4") || name == "idle", "{name}: {rest}");
    }
    let drip_out = dripper.await.unwrap();
    assert!(
        drip_out.is_empty(),
        "no answer to a head that never completed: {drip_out}"
    );
    // Each closed after its timeout, not before; all well before 60 bytes of dripping (6 s) were sent.
    let took = started.elapsed();
    assert!(took >= Duration::from_millis(300), "{took:?}");
    assert!(took < Duration::from_secs(5), "{took:?}");
    // And the server still answers.
    assert_eq!(status(&exchange(a, &get("/healthz")).await), 200);
}

/// A head begun on a kept-alive connection gets the header timeout from its first byte, even when the idle
/// timeout it was waiting under would have ended much later (the connection's task is not told of the change).
#[tokio::test]
async fn a_head_begun_after_keep_alive_is_cut_at_the_header_timeout_not_the_idle_one() {
    let text = format!("server: {{ header_read_timeout: 300ms, idle_timeout: 30s }}\n{BASE}");
    let gw = start(&text, false).await;
    let mut s = kept_alive(gw.addr).await;
    // Kept alive past the first head's timeout (the scenario's own idle time, not a wait for readiness): the
    // connection now waits under its idle timeout alone.
    tokio::time::sleep(Duration::from_millis(600)).await;
    let started = tokio::time::Instant::now();
    s.write_all(b"GET /healthz HTTP/1.1\r\nhost").await.unwrap();
    let rest = read_to_close(&mut s).await;
    let took = started.elapsed();
    assert!(
        !rest.contains("HTTP/1.1 "),
        "no answer to the unfinished head: {rest}"
    );
    assert!(
        took >= Duration::from_millis(300),
        "cut before its header timeout: {took:?}"
    );
    assert!(
        took < Duration::from_secs(10),
        "cut by the idle timeout, not the header one: {took:?}"
    );
}

#[tokio::test]
async fn past_the_connection_cap_new_connections_are_shed_and_probes_still_answer() {
    let text = format!("server: {{ max_connections: 8, header_read_timeout: 30s }}\n{BASE}");
    let gw = start(&text, true).await;
    let a = gw.addr;
    // Fill the cap with silent connections (accepted in order: the backlog is FIFO).
    let mut held = Vec::new();
    for _ in 0..8 {
        held.push(TcpStream::connect(a).await.unwrap());
    }
    // The reserve serves probes only, one request per connection.
    let r = exchange(a, &get("/healthz")).await;
    assert_eq!(status(&r), 200, "{r}");
    let r = exchange(a, &get("/readyz")).await;
    assert!(matches!(status(&r), 200 | 503), "{r}");
    assert!(r.contains("\"ready\""), "{r}");
    let r = exchange(a, &get("/v1/models")).await;
    assert_eq!((status(&r), error_code(&r).as_str()), (503, "server_busy"), "{r}");
    // Fill the reserve too: the next connection is closed at once, unanswered.
    let mut reserve = Vec::new();
    for _ in 0..llm_gateway::server::HEALTH_RESERVE {
        reserve.push(TcpStream::connect(a).await.unwrap());
    }
    let shed_before = gw.state.metrics.connections_shed.get();
    let mut extra = TcpStream::connect(a).await.unwrap();
    let _ = extra.write_all(&get("/healthz")).await;
    let r = read_to_close(&mut extra).await;
    assert!(r.is_empty(), "shed, not served: {r}");
    assert!(gw.state.metrics.connections_shed.get() > shed_before);
    // The metrics listener has its own cap and answers.
    let r = exchange(gw.metrics.unwrap(), &get("/metrics")).await;
    assert_eq!(status(&r), 200);
    assert!(r.contains("llm_gateway_connections_shed_total"), "{r}");
    // Freed slots are used again.
    drop(reserve);
    drop(held);
    let back = async {
        loop {
            if status(&exchange(a, &get("/v1/models")).await) == 200 {
                return;
            }
            tokio::task::yield_now().await;
        }
    };
    tokio::time::timeout(Duration::from_secs(5), back).await.unwrap();
}

#[tokio::test]
async fn admin_without_a_token_answers_loopback_peers_only() {
    use tower::ServiceExt;
    let gw = start(BASE, false).await;
    let r = exchange(gw.addr, &get("/admin/providers")).await;
    assert_eq!(status(&r), 200, "loopback peer, no token configured: {r}");
    let app = llm_gateway::app(gw.state.clone());
    for (peer, want) in [
        ("10.1.2.3:5000", 403),
        ("[2001:db8::1]:5000", 403),
        ("[::ffff:127.0.0.1]:5000", 200),
    ] {
        for (method, path, body) in [
            ("GET", "/admin/providers", ""),
            ("POST", "/admin/mode", "{\"mode\":\"offline\"}"),
        ] {
            let mut req = axum::http::Request::builder()
                .method(method)
                .uri(path)
                .header("content-type", "application/json")
                .body(axum::body::Body::from(body))
                .unwrap();
            let peer: SocketAddr = peer.parse().unwrap();
            req.extensions_mut().insert(axum::extract::ConnectInfo(peer));
            let resp = app.clone().oneshot(req).await.unwrap();
            assert_eq!(resp.status().as_u16(), want, "{peer} {method} {path}");
            if want == 403 {
                let b = axum::body::to_bytes(resp.into_body(), 1 << 16).await.unwrap();
                let v: serde_json::Value = serde_json::from_slice(&b).unwrap();
                assert_eq!(v["error"]["code"], "admin_token_required");
            }
        }
    }
    assert_eq!(
        gw.state.router.mode().as_str(),
        "offline",
        "only the loopback peer switched the mode"
    );
}

#[tokio::test]
async fn drain_closes_idle_connections_at_once_and_ends_open_streams_with_shutting_down() {
    let fakes = common::fakes().await;
    // An event every 500 ms: the stream is still open when the grace of 1 s ends.
    fakes["openai"].update_settings(llm_mocks::SettingsPatch {
        stream_delay_ms: Some(500),
        ..llm_mocks::SettingsPatch::default()
    });
    let text = common::yaml(&fakes, "openai", "", "compatible").replace(
        "body_limit_bytes: 65536 }",
        "body_limit_bytes: 65536, shutdown_grace: 1s, header_read_timeout: 30s, idle_timeout: 30s }",
    );
    let mut gw = start(&text, false).await;
    let a = gw.addr;
    let mut idle = kept_alive(a).await;
    let mut partial = TcpStream::connect(a).await.unwrap();
    partial.write_all(b"GET /healthz HTTP/1.1\r\nhos").await.unwrap();
    let body = serde_json::to_vec(&common::chat(true)).unwrap();
    let mut stream = TcpStream::connect(a).await.unwrap();
    stream
        .write_all(
            format!(
                "POST /v1/chat/completions HTTP/1.1\r\nhost: x\r\ncontent-type: application/json\r\n\
                 content-length: {}\r\nconnection: close\r\n\r\n",
                body.len()
            )
            .as_bytes(),
        )
        .await
        .unwrap();
    stream.write_all(&body).await.unwrap();
    // Readiness: the first event reached us.
    let mut got = Vec::new();
    while !String::from_utf8_lossy(&got).contains("data: {") {
        let mut buf = [0u8; 4096];
        let n = stream.read(&mut buf).await.unwrap();
        assert!(n > 0, "{}", String::from_utf8_lossy(&got));
        got.extend_from_slice(&buf[..n]);
    }
    let stop_at = tokio::time::Instant::now();
    gw.stop.take().unwrap().send(()).unwrap();
    // Idle and half-sent connections close at once; `/readyz` says 503 meanwhile.
    for s in [&mut idle, &mut partial] {
        let rest = read_to_close(s).await;
        assert!(!rest.contains("HTTP/1.1"), "closed, no further answer: {rest}");
    }
    let closed_idle = stop_at.elapsed();
    let mut r = exchange(a, &get("/readyz")).await;
    // The phase flips right after the signal is seen; give it that moment.
    while status(&r) == 200 {
        tokio::task::yield_now().await;
        r = exchange(a, &get("/readyz")).await;
    }
    assert_eq!(status(&r), 503, "{r}");
    assert!(r.contains("\"draining\":true"), "{r}");
    let rest = read_to_close(&mut stream).await;
    got.extend_from_slice(rest.as_bytes());
    let all = String::from_utf8_lossy(&got).into_owned();
    assert!(
        all.contains("event: error") && all.contains("shutting_down"),
        "{all}"
    );
    assert!(!all.contains("[DONE]"), "{all}");
    tokio::time::timeout(Duration::from_secs(5), &mut gw.server)
        .await
        .unwrap()
        .unwrap()
        .unwrap();
    let total = stop_at.elapsed();
    eprintln!("drain: idle and half-sent connections closed after {closed_idle:?}, exit after {total:?} (grace 1 s)");
    assert!(
        closed_idle < Duration::from_secs(1),
        "before the grace ended: {closed_idle:?}"
    );
    assert!(TcpStream::connect(a).await.is_err(), "listener closed");
}

#[tokio::test]
async fn a_drain_with_only_idle_and_slow_connections_ends_at_once() {
    let text = format!("server: {{ shutdown_grace: 10s, header_read_timeout: 30s }}\n{BASE}");
    let mut gw = start(&text, false).await;
    let mut slow = Vec::new();
    for _ in 0..20 {
        let mut s = TcpStream::connect(gw.addr).await.unwrap();
        s.write_all(b"GET /healthz HTTP/1.1\r\nx-a: ").await.unwrap();
        slow.push(s);
    }
    // Readiness: a full request after them was served, so all of them were accepted.
    assert_eq!(status(&exchange(gw.addr, &get("/healthz")).await), 200);
    let at = tokio::time::Instant::now();
    gw.stop.take().unwrap().send(()).unwrap();
    tokio::time::timeout(Duration::from_secs(5), &mut gw.server)
        .await
        .expect("no slow head holds the drain for its 10 s grace")
        .unwrap()
        .unwrap();
    eprintln!("drain with 20 slow heads: {:?}", at.elapsed());
}

#[tokio::test]
async fn a_slow_head_opened_during_the_drain_does_not_hold_it() {
    let fakes = common::fakes().await;
    fakes["openai"]
        .add_fault(llm_mocks::FaultSpec::new(llm_mocks::FaultKind::Slow).delay_ms(1500))
        .unwrap();
    let text = common::yaml(&fakes, "openai", "", "compatible").replace(
        "body_limit_bytes: 65536 }",
        "body_limit_bytes: 65536, shutdown_grace: 10s, header_read_timeout: 30s }",
    );
    let mut gw = start(&text, false).await;
    let a = gw.addr;
    let inflight = tokio::spawn(async move {
        reqwest::Client::new()
            .post(format!("http://{a}/v1/chat/completions"))
            .json(&common::chat(false))
            .send()
            .await
            .map(|r| r.status().as_u16())
    });
    while fakes["openai"].request_count() == 0 {
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
    let at = tokio::time::Instant::now();
    gw.stop.take().unwrap().send(()).unwrap();
    // Readiness: draining (a new connection learns 503 from /readyz).
    while status(&exchange(a, &get("/readyz")).await) != 503 {
        tokio::task::yield_now().await;
    }
    let mut late = TcpStream::connect(a).await.unwrap();
    late.write_all(b"GET /healthz HTTP/1.1\r\nx-a: ").await.unwrap();
    assert_eq!(
        inflight.await.unwrap().unwrap(),
        200,
        "the request in flight finished"
    );
    tokio::time::timeout(Duration::from_secs(5), &mut gw.server)
        .await
        .expect("the late slow head is dropped after 1 s, not held for the 10 s grace")
        .unwrap()
        .unwrap();
    assert!(read_to_close(&mut late).await.is_empty());
    eprintln!(
        "drain with one request in flight (1.5 s) and a slow head opened meanwhile: {:?}",
        at.elapsed()
    );
}
