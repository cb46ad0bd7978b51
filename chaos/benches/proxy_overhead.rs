//! Overhead of the chaos proxy without toxics: HTTP request latency and bulk throughput, proxied vs direct.
//!
//! Run: `cargo bench -p llm-chaos --bench proxy_overhead -- --warm-up-time 1 --measurement-time 3`.
//! Besides criterion's figures it prints the p50/p99 of single requests, which is what the target
//! ("a proxied request adds at most 100 µs at p50") is about.
#![allow(clippy::unwrap_used, clippy::panic)] // A benchmark harness: failing loudly is the point.

use std::net::SocketAddr;
use std::time::Duration;

use criterion::{criterion_group, criterion_main, Criterion, Throughput};
use llm_chaos::{NewProxy, Server, ServerConfig, ServerHandle};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};
use tokio::runtime::Runtime;

const REQUEST: &[u8] = b"GET /v1/models HTTP/1.1\r\nHost: bench\r\n\r\n";
const RESPONSE: &[u8] =
    b"HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nContent-Length: 15\r\n\r\n{\"data\":[1,2,3]}";
const BULK: usize = 16 * 1024 * 1024;

/// A keep-alive HTTP/1.1 server answering every request head with a fixed response.
async fn http_server() -> SocketAddr {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(async move {
        while let Ok((mut sock, _)) = listener.accept().await {
            sock.set_nodelay(true).unwrap();
            tokio::spawn(async move {
                let mut buf = vec![0u8; 4096];
                let mut pending = Vec::new();
                loop {
                    let n = match sock.read(&mut buf).await {
                        Ok(0) | Err(_) => return,
                        Ok(n) => n,
                    };
                    pending.extend_from_slice(&buf[..n]);
                    while let Some(end) = pending.windows(4).position(|w| w == b"\r\n\r\n") {
                        pending.drain(..end + 4);
                        if sock.write_all(RESPONSE).await.is_err() {
                            return;
                        }
                    }
                }
            });
        }
    });
    addr
}

/// A sink that reads `BULK` bytes per round and answers one byte.
async fn sink_server() -> SocketAddr {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(async move {
        while let Ok((mut sock, _)) = listener.accept().await {
            tokio::spawn(async move {
                let mut buf = vec![0u8; 64 * 1024];
                let mut got = 0usize;
                loop {
                    match sock.read(&mut buf).await {
                        Ok(0) | Err(_) => return,
                        Ok(n) => got += n,
                    }
                    while got >= BULK {
                        got -= BULK;
                        if sock.write_all(b"k").await.is_err() {
                            return;
                        }
                    }
                }
            });
        }
    });
    addr
}

async fn request(sock: &mut TcpStream, buf: &mut [u8]) {
    sock.write_all(REQUEST).await.unwrap();
    let mut got = 0;
    while got < RESPONSE.len() {
        let n = sock.read(&mut buf[got..]).await.unwrap();
        assert!(n > 0, "connection closed");
        got += n;
    }
}

async fn bulk(sock: &mut TcpStream, data: &[u8]) {
    sock.write_all(data).await.unwrap();
    let mut ack = [0u8; 1];
    sock.read_exact(&mut ack).await.unwrap();
}

async fn connect(addr: SocketAddr) -> TcpStream {
    let sock = TcpStream::connect(addr).await.unwrap();
    sock.set_nodelay(true).unwrap();
    sock
}

async fn proxy(server: &ServerHandle, name: &str, upstream: SocketAddr) -> SocketAddr {
    let p = server.client().unwrap();
    let created = p
        .create_proxy(&NewProxy::new(name, "127.0.0.1:0", upstream.to_string()))
        .await
        .unwrap();
    created.listen.parse().unwrap()
}

fn percentiles(rt: &Runtime, addr: SocketAddr) -> (Duration, Duration) {
    rt.block_on(async {
        let mut sock = connect(addr).await;
        let mut buf = vec![0u8; RESPONSE.len()];
        for _ in 0..500 {
            request(&mut sock, &mut buf).await;
        }
        let mut times = Vec::with_capacity(5000);
        for _ in 0..5000 {
            let t = tokio::time::Instant::now();
            request(&mut sock, &mut buf).await;
            times.push(t.elapsed());
        }
        times.sort();
        (times[times.len() / 2], times[times.len() * 99 / 100])
    })
}

fn benches(c: &mut Criterion) {
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .unwrap();
    let (server, http, sink) = rt.block_on(async {
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let server = Server::start(listener, ServerConfig::default()).unwrap();
        (server, http_server().await, sink_server().await)
    });
    let http_proxy = rt.block_on(proxy(&server, "http", http));
    let sink_proxy = rt.block_on(proxy(&server, "sink", sink));

    let (direct_p50, direct_p99) = percentiles(&rt, http);
    let (proxied_p50, proxied_p99) = percentiles(&rt, http_proxy);
    eprintln!(
        "single request: direct p50 {direct_p50:?} p99 {direct_p99:?}; proxied p50 {proxied_p50:?} p99 {proxied_p99:?}; \
         added at p50 {:?}",
        proxied_p50.saturating_sub(direct_p50)
    );

    let mut group = c.benchmark_group("http_request");
    for (label, addr) in [("direct", http), ("proxied", http_proxy)] {
        let mut sock = rt.block_on(connect(addr));
        let mut buf = vec![0u8; RESPONSE.len()];
        // One block_on per sample, not per request: the figure is the request, not waking the bench thread.
        group.bench_function(label, |b| {
            b.iter_custom(|iters| {
                rt.block_on(async {
                    let start = tokio::time::Instant::now();
                    for _ in 0..iters {
                        request(&mut sock, &mut buf).await;
                    }
                    start.elapsed()
                })
            })
        });
    }
    group.finish();

    let data = vec![0x5au8; BULK];
    let mut group = c.benchmark_group("bulk_16MiB");
    group.throughput(Throughput::Bytes(BULK as u64));
    group.sample_size(10);
    for (label, addr) in [("direct", sink), ("proxied", sink_proxy)] {
        let mut sock = rt.block_on(connect(addr));
        group.bench_function(label, |b| {
            b.iter_custom(|iters| {
                rt.block_on(async {
                    let start = tokio::time::Instant::now();
                    for _ in 0..iters {
                        bulk(&mut sock, &data).await;
                    }
                    start.elapsed()
                })
            })
        });
    }
    group.finish();
    rt.block_on(server.shutdown());
}

criterion_group!(proxy_overhead, benches);
criterion_main!(proxy_overhead);
