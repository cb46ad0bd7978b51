//! Network-level faults from tiny TCP servers (what the chaos proxy does): a black hole is a timeout, a reset or a
//! closed connection is a connect failure, a stream that stalls after its first token ends with an error event.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod common;

use common::*;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpListener;

/// Accepts connections and hands each to `serve`.
async fn tcp(serve: fn(tokio::net::TcpStream) -> tokio::task::JoinHandle<()>) -> String {
    let l = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = l.local_addr().unwrap();
    tokio::spawn(async move {
        while let Ok((s, _)) = l.accept().await {
            serve(s);
        }
    });
    format!("http://{addr}/v1")
}

fn config(broken: &str, kimi: &str) -> String {
    format!(
        r#"
models: {{ default: {{ broken: gpt-4o-mini, kimi: moonshot-v1-8k }} }}
providers:
  broken: {{ kind: openai, base_url: "{broken}", secret: {{ value: k }} }}
  kimi: {{ kind: kimi, base_url: "{kimi}", secret: {{ value: k }} }}
fallback_policy:
  order: [broken, kimi]
  deadline: 5s
  attempt_timeout: 400ms
  first_token_timeout: 400ms
  stall_timeout: 300ms
"#
    )
}

async fn first_attempt(broken: String, stream: bool) -> (Reply, String) {
    let fakes = fakes().await;
    let (_, app) = gateway(&config(&broken, &fakes["kimi"].base_url()));
    let r = call(&app, "POST", "/v1/chat/completions", Some(chat(stream)), &[]).await;
    let admin = call(&app, "GET", "/admin/providers", None, &[]).await.json();
    let class = admin["providers"]
        .as_array()
        .unwrap()
        .iter()
        .find(|p| p["name"] == "broken")
        .map(|p| p["last_error"]["error"].as_str().unwrap_or("none").to_string())
        .unwrap();
    (r, class)
}

#[tokio::test]
async fn black_hole_is_a_timeout_then_fallback() {
    let url = tcp(|mut s| {
        tokio::spawn(async move {
            let mut buf = [0u8; 4096];
            while s.read(&mut buf).await.unwrap_or(0) > 0 {}
        })
    })
    .await;
    for stream in [false, true] {
        let (r, class) = first_attempt(url.clone(), stream).await;
        assert_eq!(r.status, 200, "{}", r.body);
        assert_eq!(r.header("x-llm-actual-provider"), "kimi");
        assert_eq!(class, "timeout");
    }
}

#[tokio::test]
async fn reset_and_close_are_connect_failures_then_fallback() {
    let reset = tcp(|s| {
        tokio::spawn(async move {
            let _ = s.set_zero_linger();
            drop(s);
        })
    })
    .await;
    let close_after_read = tcp(|mut s| {
        tokio::spawn(async move {
            let mut buf = [0u8; 4096];
            let _ = s.read(&mut buf).await;
            let _ = s.shutdown().await;
        })
    })
    .await;
    for url in [reset, close_after_read] {
        let (r, class) = first_attempt(url, false).await;
        assert_eq!(r.status, 200, "{}", r.body);
        assert_eq!(r.header("x-llm-actual-provider"), "kimi");
        assert_eq!(class, "connect");
    }
}

#[tokio::test]
async fn garbage_http_is_a_fallback_not_a_crash() {
    let url = tcp(|mut s| {
        tokio::spawn(async move {
            let mut buf = [0u8; 4096];
            let _ = s.read(&mut buf).await;
            let _ = s
                .write_all(b"HTTP/1.1 200 OK\r\ncontent-length: 9\r\n\r\n{\"choi\xff\xfe")
                .await;
        })
    })
    .await;
    let (r, class) = first_attempt(url, false).await;
    assert_eq!(r.status, 200, "{}", r.body);
    assert_eq!(class, "malformed");
}

#[tokio::test]
async fn a_stream_that_stalls_after_its_first_token_ends_with_an_error_event() {
    let url = tcp(|mut s| {
        tokio::spawn(async move {
            let mut buf = [0u8; 8192];
            let _ = s.read(&mut buf).await;
            let chunk = r#"{"id":"c","object":"chat.completion.chunk","created":1,"model":"m","choices":[{"index":0,"delta":{"role":"assistant","content":"Hel"},"finish_reason":null}]}"#;
            let body = format!("data: {chunk}\n\n");
            let head = "HTTP/1.1 200 OK\r\ncontent-type: text/event-stream\r\ntransfer-encoding: chunked\r\n\r\n";
            let _ = s.write_all(format!("{head}{:x}\r\n{body}\r\n", body.len()).as_bytes()).await;
            // ...and then nothing: the connection stays open and silent.
            let _ = s.read(&mut buf).await;
        })
    })
    .await;
    let (r, class) = first_attempt(url, true).await;
    assert_eq!(r.status, 200);
    assert_eq!(
        r.header("x-llm-actual-provider"),
        "broken",
        "the first token had reached the client"
    );
    assert!(
        r.body.contains("Hel") && r.body.contains("event: error") && r.body.contains("stalled"),
        "{}",
        r.body
    );
    assert!(!r.body.contains("[DONE]"));
    assert_eq!(class, "timeout");
}

#[tokio::test]
async fn a_redirect_is_an_answer_to_classify_not_a_hop_with_the_credentials() {
    let fakes = fakes().await;
    let kimi = fakes["kimi"].base_url();
    // The "broken" provider redirects to a working endpoint: following it would send the request (and its key)
    // to wherever the Location says and report the answer as the broken provider's.
    let l = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let broken = format!("http://{}/v1", l.local_addr().unwrap());
    let location = format!("{kimi}/chat/completions");
    tokio::spawn(async move {
        while let Ok((mut s, _)) = l.accept().await {
            let location = location.clone();
            tokio::spawn(async move {
                let mut buf = [0u8; 8192];
                let _ = s.read(&mut buf).await;
                let head = format!(
                    "HTTP/1.1 307 Temporary Redirect\r\nlocation: {location}\r\ncontent-length: 0\r\nconnection: close\r\n\r\n"
                );
                let _ = s.write_all(head.as_bytes()).await;
            });
        }
    });
    let (_, app) = gateway(&config(&broken, &kimi));
    let r = call(&app, "POST", "/v1/chat/completions", Some(chat(false)), &[]).await;
    assert_eq!(r.status, 200, "{}", r.body);
    assert_eq!(r.header("x-llm-actual-provider"), "kimi");
    assert_eq!(
        r.header("x-llm-fallbacks"),
        "1",
        "the redirect counted as the primary's failure"
    );
    assert_eq!(
        fakes["kimi"].request_count(),
        1,
        "only the fallback reached kimi, not a followed redirect: {:?}",
        fakes["kimi"].journal()
    );
}
