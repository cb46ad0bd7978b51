//! Shared helpers for the integration tests: an embedded server on port 0, raw HTTP calls, small TCP servers.
#![allow(
    dead_code,
    unreachable_pub,
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic
)]

use std::net::SocketAddr;
use std::time::Duration;

use llm_chaos::{Client, NewProxy, Server, ServerConfig, ServerHandle};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};

/// Starts a server on an ephemeral port with a fixed seed and proxy metrics on.
pub async fn start() -> ServerHandle {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let config = ServerConfig {
        seed: Some(42),
        proxy_metrics: true,
        runtime_metrics: false,
    };
    Server::start(listener, config).unwrap()
}

/// A raw answer: status, content type, request id header and body.
#[derive(Debug)]
pub struct Raw {
    pub status: u16,
    pub content_type: String,
    pub headers: reqwest::header::HeaderMap,
    pub body: String,
}

/// Sends `method path` with an optional raw body, returning everything needed for exact comparisons.
pub async fn raw(server: &ServerHandle, method: &str, path: &str, body: Option<&str>) -> Raw {
    let http = reqwest::Client::new();
    let method = reqwest::Method::from_bytes(method.as_bytes()).unwrap();
    let mut req = http.request(method, format!("{}{}", server.url(), path));
    if let Some(body) = body {
        req = req.body(body.to_owned());
    }
    let resp = req.send().await.unwrap();
    let status = resp.status().as_u16();
    let headers = resp.headers().clone();
    let content_type = headers
        .get("content-type")
        .map(|v| v.to_str().unwrap().to_owned())
        .unwrap_or_default();
    let body = resp.text().await.unwrap();
    Raw {
        status,
        content_type,
        headers,
        body,
    }
}

/// Parses a body as JSON.
pub fn json(raw: &Raw) -> serde_json::Value {
    serde_json::from_str(&raw.body).unwrap_or_else(|e| panic!("not JSON ({e}): {}", raw.body))
}

/// An echo server: writes back what it reads; on EOF it closes.
pub async fn echo_server() -> SocketAddr {
    counted_echo_server().await.0
}

/// An echo server that also reports how many of its connections are still open (to check fd counts).
pub async fn counted_echo_server() -> (SocketAddr, tokio::sync::watch::Receiver<usize>) {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let (live_tx, live_rx) = tokio::sync::watch::channel(0usize);
    let live = std::sync::Arc::new(live_tx);
    tokio::spawn(async move {
        while let Ok((mut sock, _)) = listener.accept().await {
            live.send_modify(|n| *n += 1);
            let live = live.clone();
            tokio::spawn(async move {
                let (mut r, mut w) = sock.split();
                let _ = tokio::io::copy(&mut r, &mut w).await;
                drop(sock);
                live.send_modify(|n| *n -= 1);
            });
        }
    });
    (addr, live_rx)
}

/// Waits until a counted echo server has no open connection.
pub async fn echo_idle(live: &mut tokio::sync::watch::Receiver<usize>) {
    tokio::time::timeout(Duration::from_secs(10), live.wait_for(|n| *n == 0))
        .await
        .unwrap()
        .unwrap();
}

/// Creates a proxy on an ephemeral port in front of `upstream`; returns its real listen address.
pub async fn proxy_to(client: &Client, name: &str, upstream: SocketAddr) -> SocketAddr {
    let p = client
        .create_proxy(&NewProxy::new(name, "127.0.0.1:0", upstream.to_string()))
        .await
        .unwrap();
    p.listen.parse().unwrap()
}

/// Connects with `TCP_NODELAY`.
pub async fn connect(addr: SocketAddr) -> TcpStream {
    let sock = TcpStream::connect(addr).await.unwrap();
    sock.set_nodelay(true).unwrap();
    sock
}

/// Writes `msg` and reads exactly as many bytes back.
pub async fn round_trip(sock: &mut TcpStream, msg: &[u8]) -> Vec<u8> {
    sock.write_all(msg).await.unwrap();
    let mut buf = vec![0u8; msg.len()];
    tokio::time::timeout(Duration::from_secs(10), sock.read_exact(&mut buf))
        .await
        .unwrap()
        .unwrap();
    buf
}

/// Reads until EOF or error; returns the bytes and the error kind, if any.
pub async fn read_to_end(sock: &mut TcpStream) -> (Vec<u8>, Option<std::io::ErrorKind>) {
    let mut out = Vec::new();
    let mut buf = [0u8; 8192];
    loop {
        match tokio::time::timeout(Duration::from_secs(10), sock.read(&mut buf))
            .await
            .unwrap()
        {
            Ok(0) => return (out, None),
            Ok(n) => out.extend_from_slice(&buf[..n]),
            Err(e) => return (out, Some(e.kind())),
        }
    }
}

/// Open file descriptors of this process.
pub fn open_fds() -> usize {
    std::fs::read_dir("/proc/self/fd").unwrap().count()
}

/// Whether a tool-dependent test must fail (CI) or may skip (local) when the tool is missing.
pub fn require_tool(what: &str) -> bool {
    if std::env::var("CI").as_deref() == Ok("true") {
        panic!("{what} is required when CI=true");
    }
    eprintln!("note: skipping, {what} is not available (set CI=true to make this a failure)");
    false
}

/// The crate directory.
pub fn crate_dir() -> std::path::PathBuf {
    std::path::PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}

/// Asserts a Toxiproxy error answer: status, plain-text content type, nosniff, exact JSON body plus newline.
pub fn assert_error(r: &Raw, status: u16, message: &str) {
    assert_eq!(r.status, status, "{r:?}");
    assert_eq!(r.content_type, "text/plain; charset=utf-8");
    assert_eq!(r.headers.get("x-content-type-options").unwrap(), "nosniff");
    assert_eq!(
        r.body,
        format!(
            "{{\"error\":{},\"status\":{status}}}\n",
            serde_json::to_string(message).unwrap()
        )
    );
}
