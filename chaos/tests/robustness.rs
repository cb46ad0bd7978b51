//! Robustness: many connections at once, teardown on delete, disable and reset, and no task or fd leak.
#![allow(clippy::unwrap_used, clippy::panic)] // Tests: helpers fail loudly, like the tests themselves.

mod common;

use std::time::Duration;

use common::{
    connect, counted_echo_server, echo_idle, echo_server, open_fds, proxy_to, read_to_end, round_trip, start,
};
use llm_chaos::toxics::Timeout;
use llm_chaos::{NewToxic, ToxicKind};
use tokio::io::{AsyncReadExt, AsyncWriteExt};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_thousand_concurrent_connections_through_one_proxy() {
    let s = start().await;
    let c = s.client().unwrap();
    let (echo, mut echo_live) = counted_echo_server().await;
    let listen = proxy_to(&c, "p", echo).await;
    c.proxies().await.unwrap();
    let baseline = open_fds();
    let mut socks = Vec::with_capacity(1000);
    for _ in 0..1000 {
        socks.push(connect(listen).await);
    }
    let mut tasks = tokio::task::JoinSet::new();
    for (i, mut sock) in socks.into_iter().enumerate() {
        tasks.spawn(async move {
            let msg = format!("connection {i:04}");
            sock.write_all(msg.as_bytes()).await.unwrap();
            let mut buf = vec![0u8; msg.len()];
            tokio::time::timeout(Duration::from_secs(20), sock.read_exact(&mut buf))
                .await
                .unwrap()
                .unwrap();
            assert_eq!(buf, msg.as_bytes());
            sock
        });
    }
    let socks = tasks.join_all().await;
    assert_eq!(socks.len(), 1000);
    assert!(
        s.live_link_tasks() >= 2000,
        "two link tasks per connection, {}",
        s.live_link_tasks()
    );
    drop(socks);
    s.link_tasks_idle().await;
    echo_idle(&mut echo_live).await;
    assert_eq!(s.live_link_tasks(), 0);
    c.proxies().await.unwrap();
    assert_eq!(open_fds(), baseline, "every socket of every connection is closed");
}

#[tokio::test]
async fn delete_closes_connections_and_leaks_nothing() {
    let s = start().await;
    let c = s.client().unwrap();
    let (echo, mut echo_live) = counted_echo_server().await;
    c.proxies().await.unwrap();
    let baseline = open_fds();
    let listen = proxy_to(&c, "p", echo).await;
    let mut socks = Vec::new();
    for _ in 0..20 {
        let mut sock = connect(listen).await;
        round_trip(&mut sock, b"up").await;
        socks.push(sock);
    }
    assert_eq!(s.live_link_tasks(), 40);
    c.delete_proxy("p").await.unwrap();
    // Delete returns once the listener and every link are gone.
    assert_eq!(s.live_link_tasks(), 0);
    for sock in &mut socks {
        let (rest, _) = read_to_end(sock).await;
        assert!(rest.is_empty());
    }
    assert!(tokio::net::TcpStream::connect(listen).await.is_err());
    drop(socks);
    echo_idle(&mut echo_live).await;
    c.proxies().await.unwrap();
    assert_eq!(open_fds(), baseline, "listener and sockets closed");
}

#[tokio::test]
async fn disable_then_reset_and_black_hole_reset_close_connections() {
    let s = start().await;
    let c = s.client().unwrap();
    let (echo, mut echo_live) = counted_echo_server().await;
    let listen = proxy_to(&c, "p", echo).await;
    c.proxies().await.unwrap();
    let baseline = open_fds();

    // Disable drops connections; reset brings the proxy back on the same address.
    let mut sock = connect(listen).await;
    round_trip(&mut sock, b"1").await;
    c.disable("p").await.unwrap();
    assert_eq!(s.live_link_tasks(), 0);
    assert!(read_to_end(&mut sock).await.0.is_empty());
    drop(sock);
    c.reset().await.unwrap();
    let mut sock = connect(listen).await;
    round_trip(&mut sock, b"2").await;

    // A black-holed connection is closed by reset (removing the timeout toxic closes its links).
    c.add_toxic("p", &NewToxic::new(ToxicKind::Timeout(Timeout { timeout: 0 })))
        .await
        .unwrap();
    sock.write_all(b"lost").await.unwrap();
    c.reset().await.unwrap();
    assert!(read_to_end(&mut sock).await.0.is_empty());
    drop(sock);
    s.link_tasks_idle().await;
    echo_idle(&mut echo_live).await;
    c.proxies().await.unwrap();
    assert_eq!(open_fds(), baseline);
}

#[tokio::test]
async fn shutdown_stops_listeners_and_connections() {
    let s = start().await;
    let c = s.client().unwrap();
    let listen = proxy_to(&c, "p", echo_server().await).await;
    let mut sock = connect(listen).await;
    round_trip(&mut sock, b"x").await;
    s.shutdown().await;
    assert!(read_to_end(&mut sock).await.0.is_empty());
    assert!(tokio::net::TcpStream::connect(listen).await.is_err());
}

#[tokio::test]
async fn garbage_api_input_never_breaks_the_server() {
    let s = start().await;
    let bodies = [
        "",
        "null",
        "[]",
        "{}",
        "1",
        "\"x\"",
        "{\"name\":null}",
        "[{\"name\":1}]",
        "{\"type\":[]}",
        "{\"attributes\":{\"latency\":1e400}}",
        "{\"toxicity\":1e39}",
        "{\"listen\":5}",
        "\u{0}\u{1}",
        "{\"name\":\"a\",\"upstream\":\"b:1\",\"listen\":\"[::1\"}",
        "{\"stream\":{}}",
    ];
    let paths = [
        "/proxies",
        "/populate",
        "/proxies/p",
        "/proxies/p/toxics",
        "/proxies/p/toxics/t",
        "/reset",
    ];
    common::raw(
        &s,
        "POST",
        "/proxies",
        Some(r#"{"name":"p","listen":"127.0.0.1:0","upstream":"x:1"}"#),
    )
    .await;
    common::raw(
        &s,
        "POST",
        "/proxies/p/toxics",
        Some(r#"{"name":"t","type":"latency"}"#),
    )
    .await;
    for path in paths {
        for body in bodies {
            for method in ["POST", "PATCH"] {
                let r = common::raw(&s, method, path, Some(body)).await;
                assert!(
                    r.status < 500 || path == "/proxies/p" || path == "/proxies",
                    "{method} {path} {body:?}: {r:?}"
                );
                if r.status >= 400 && r.status != 405 {
                    let v: serde_json::Value = serde_json::from_str(&r.body).unwrap();
                    assert_eq!(
                        v["status"],
                        serde_json::json!(r.status),
                        "{method} {path} {body:?}"
                    );
                }
            }
        }
    }
    assert_eq!(common::raw(&s, "GET", "/version", None).await.status, 200);
}
