//! The zero-copy path of links without toxics: bulk data byte-exact with exact counters, half-close both ways,
//! toxics added to (and removed from) live spliced links, and teardown during a transfer without leaks.
//!
//! Each test drives both ends itself: the client through the proxy and the upstream socket it accepts. On Linux
//! the tests also count the pipes the links hold (two per connection while it is open, none after).
#![allow(clippy::unwrap_used, clippy::panic)] // Tests: helpers fail loudly, like the tests themselves.

mod common;

use std::net::SocketAddr;
use std::time::Duration;

use common::{connect, start};
use llm_chaos::toxics::{Latency, LimitData};
use llm_chaos::{Client, NewProxy, NewToxic, ServerHandle, ToxicKind};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};
use tokio::time::Instant;

const MIB: usize = 1024 * 1024;

/// Byte `i` of stream `seed`: not periodic, so a lost, repeated or shifted block shows.
fn byte_at(seed: u64, i: usize) -> u8 {
    ((i as u64 ^ seed).wrapping_mul(0x9E37_79B9_7F4A_7C15) >> 56) as u8
}

fn pattern(seed: u64, from: usize, len: usize) -> Vec<u8> {
    (from..from + len).map(|i| byte_at(seed, i)).collect()
}

/// A proxy in front of a listener of the test's own; returns the listener and the proxy's address.
async fn proxy(c: &Client, name: &str) -> (TcpListener, SocketAddr) {
    let upstream = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let p = c
        .create_proxy(&NewProxy::new(
            name,
            "127.0.0.1:0",
            upstream.local_addr().unwrap().to_string(),
        ))
        .await
        .unwrap();
    (upstream, p.listen.parse().unwrap())
}

/// A client connected through the proxy and the upstream end of that connection.
async fn connection(upstream: &TcpListener, listen: SocketAddr) -> (TcpStream, TcpStream) {
    let client = connect(listen).await;
    let (server, _) = tokio::time::timeout(Duration::from_secs(10), upstream.accept())
        .await
        .unwrap()
        .unwrap();
    server.set_nodelay(true).unwrap();
    (client, server)
}

/// Writes `len` bytes of stream `seed` starting at offset `from`, in 256 KiB writes.
async fn send(sock: &mut (impl AsyncWriteExt + Unpin), seed: u64, from: usize, len: usize) {
    let mut at = from;
    while at < from + len {
        let n = (256 * 1024).min(from + len - at);
        sock.write_all(&pattern(seed, at, n)).await.unwrap();
        at += n;
    }
}

/// Reads exactly `len` bytes and checks they are stream `seed` from offset `from`.
async fn expect(sock: &mut (impl AsyncReadExt + Unpin), seed: u64, from: usize, len: usize) {
    let mut buf = vec![0u8; len];
    tokio::time::timeout(Duration::from_secs(30), sock.read_exact(&mut buf))
        .await
        .unwrap()
        .unwrap();
    if let Some(i) = (0..len).find(|&i| buf[i] != byte_at(seed, from + i)) {
        panic!("byte {} differs", from + i);
    }
}

/// Reads until EOF; returns how many bytes came, checking they are stream `seed` from offset `from`.
async fn expect_until_eof(sock: &mut (impl AsyncReadExt + Unpin), seed: u64, from: usize) -> usize {
    let mut buf = vec![0u8; 256 * 1024];
    let mut got = 0;
    loop {
        let n = tokio::time::timeout(Duration::from_secs(30), sock.read(&mut buf))
            .await
            .unwrap()
            .unwrap();
        if n == 0 {
            return got;
        }
        if let Some(i) = (0..n).find(|&i| buf[i] != byte_at(seed, from + got + i)) {
            panic!("byte {} differs", from + got + i);
        }
        got += n;
    }
}

/// Sends `len` bytes of stream `seed` from `from` on one socket while reading and checking them on another.
async fn transfer(
    from_sock: &mut (impl AsyncWriteExt + Unpin),
    to_sock: &mut (impl AsyncReadExt + Unpin),
    seed: u64,
    from: usize,
    len: usize,
) {
    tokio::join!(send(from_sock, seed, from, len), expect(to_sock, seed, from, len));
}

/// A proxy byte counter from `/metrics` (0 when absent).
async fn counter(c: &Client, what: &str, direction: &str, proxy: &str) -> u64 {
    let text = c.metrics().await.unwrap();
    let prefix = format!("toxiproxy_proxy_{what}_bytes_total{{direction=\"{direction}\",");
    text.lines()
        .filter(|l| l.starts_with(&prefix) && l.contains(&format!("proxy=\"{proxy}\"")))
        .map(|l| l.rsplit(' ').next().unwrap().parse::<u64>().unwrap())
        .sum()
}

async fn assert_counters(c: &Client, proxy: &str, upstream: u64, downstream: u64) {
    for (direction, bytes) in [("upstream", upstream), ("downstream", downstream)] {
        for what in ["received", "sent"] {
            assert_eq!(
                counter(c, what, direction, proxy).await,
                bytes,
                "{what} {direction}"
            );
        }
    }
}

/// Pipes open in this process (the zero-copy path holds one per link).
fn pipes() -> usize {
    std::fs::read_dir("/proc/self/fd")
        .unwrap()
        .filter_map(|e| std::fs::read_link(e.ok()?.path()).ok())
        .filter(|target| target.to_string_lossy().starts_with("pipe:"))
        .count()
}

/// The (local, remote) ports of the TCP sockets this process holds open, from `/proc/self/net/tcp`.
fn held_tcp_ports() -> Vec<(u16, u16)> {
    let inodes: Vec<String> = std::fs::read_dir("/proc/self/fd")
        .unwrap()
        .filter_map(|e| std::fs::read_link(e.ok()?.path()).ok())
        .filter_map(|t| {
            let t = t.to_string_lossy().into_owned();
            Some(t.strip_prefix("socket:[")?.strip_suffix(']')?.to_owned())
        })
        .collect();
    let port = |addr: &str| u16::from_str_radix(addr.rsplit(':').next().unwrap(), 16).unwrap();
    let mut held = Vec::new();
    for table in ["/proc/self/net/tcp", "/proc/self/net/tcp6"] {
        let Ok(text) = std::fs::read_to_string(table) else {
            continue;
        };
        for line in text.lines().skip(1) {
            let f: Vec<&str> = line.split_whitespace().collect();
            if f.len() > 9 && inodes.iter().any(|i| i == f[9]) {
                held.push((port(f[1]), port(f[2])));
            }
        }
    }
    held
}

/// On Linux, each open connection holds two pipes (four fds); elsewhere none.
fn pipes_per_connection() -> usize {
    if cfg!(target_os = "linux") {
        4
    } else {
        0
    }
}

/// One byte each way: both links are running (and, on Linux, splicing).
async fn ping(client: &mut TcpStream, server: &mut TcpStream) {
    client.write_all(b"u").await.unwrap();
    let mut b = [0u8; 1];
    server.read_exact(&mut b).await.unwrap();
    assert_eq!(&b, b"u");
    server.write_all(b"d").await.unwrap();
    client.read_exact(&mut b).await.unwrap();
    assert_eq!(&b, b"d");
}

async fn done(s: &ServerHandle) {
    tokio::time::timeout(Duration::from_secs(10), s.link_tasks_idle())
        .await
        .unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn bulk_both_ways_arrives_byte_exact_with_exact_counters() {
    let s = start().await;
    let c = s.client().unwrap();
    let (upstream, listen) = proxy(&c, "bulk").await;
    let baseline = pipes();
    let (mut client, mut server) = connection(&upstream, listen).await;
    ping(&mut client, &mut server).await;
    assert_eq!(pipes(), baseline + pipes_per_connection());

    // 32 MiB each way at once, each side ending with a half-close.
    const LEN: usize = 32 * MIB;
    let (mut cr, mut cw) = client.into_split();
    let (mut sr, mut sw) = server.into_split();
    tokio::join!(
        async {
            send(&mut cw, 1, 0, LEN).await;
            cw.shutdown().await.unwrap();
        },
        async { assert_eq!(expect_until_eof(&mut sr, 1, 0).await, LEN) },
        async {
            send(&mut sw, 2, 0, LEN).await;
            sw.shutdown().await.unwrap();
        },
        async { assert_eq!(expect_until_eof(&mut cr, 2, 0).await, LEN) },
    );
    drop((cr, cw, sr, sw));
    done(&s).await;
    assert_eq!(pipes(), baseline, "the links' pipes are closed");
    let both = LEN as u64 + 1;
    assert_counters(&c, "bulk", both, both).await;
}

/// Writes pattern `seed` from offset `from` in `step`-byte pieces until the link is cut (a write fails; that is the
/// point) or 64 MiB have gone; gives the socket back.
fn write_until_cut(
    mut sock: TcpStream,
    seed: u64,
    from: usize,
    step: usize,
) -> tokio::task::JoinHandle<TcpStream> {
    tokio::spawn(async move {
        let mut at = from;
        while sock.write_all(&pattern(seed, at, step)).await.is_ok() && at < 64 * MIB {
            at += step;
        }
        sock
    })
}

/// `first` sends 4 MiB (pattern `seed`) and its FIN: all of it arrives, then the FIN; the answer (`seed + 1`, 2 MiB)
/// still flows the other way, then that side's FIN.
async fn first_finishes_then_the_other(first: &mut TcpStream, other: &mut TcpStream, seed: u64) {
    let ((), got) = tokio::join!(
        async {
            send(first, seed, 0, 4 * MIB).await;
            first.shutdown().await.unwrap();
        },
        expect_until_eof(other, seed, 0),
    );
    assert_eq!(got, 4 * MIB);
    transfer(other, first, seed + 1, 0, 2 * MIB).await;
    other.shutdown().await.unwrap();
    assert_eq!(expect_until_eof(first, seed + 1, 2 * MIB).await, 0);
}

#[tokio::test]
async fn half_close_works_both_ways_and_flushes_what_the_pipe_holds() {
    let s = start().await;
    let c = s.client().unwrap();
    let (upstream, listen) = proxy(&c, "half").await;

    // The client finishes first: 4 MiB it wrote before its FIN all arrive, then the FIN; the answer still flows.
    let (mut client, mut server) = connection(&upstream, listen).await;
    ping(&mut client, &mut server).await;
    first_finishes_then_the_other(&mut client, &mut server, 3).await;
    drop((client, server));
    done(&s).await;
    assert_counters(&c, "half", 4 * MIB as u64 + 1, 2 * MIB as u64 + 1).await;

    // The upstream finishes first.
    let (mut client, mut server) = connection(&upstream, listen).await;
    ping(&mut client, &mut server).await;
    first_finishes_then_the_other(&mut server, &mut client, 5).await;
    drop((client, server));
    done(&s).await;
    assert_counters(&c, "half", 6 * MIB as u64 + 2, 6 * MIB as u64 + 2).await;
}

#[tokio::test]
async fn limit_data_added_to_a_spliced_link_counts_from_when_it_is_added() {
    // As in Toxiproxy, a toxic added to a live link starts there with fresh state (TOXIPROXY.md §1.5: it "starts
    // on" the link at add time), so limit_data lets N more bytes through from then on.
    let s = start().await;
    let c = s.client().unwrap();
    let (upstream, listen) = proxy(&c, "limit").await;
    let (mut client, mut server) = connection(&upstream, listen).await;
    const BEFORE: usize = 3 * MIB + 17;
    const LIMIT: usize = MIB + 5;
    transfer(&mut server, &mut client, 7, 0, BEFORE).await;
    c.add_toxic(
        "limit",
        &NewToxic::new(ToxicKind::LimitData(LimitData { bytes: LIMIT as i64 })),
    )
    .await
    .unwrap();
    let writer = write_until_cut(server, 7, BEFORE, 256 * 1024);
    assert_eq!(expect_until_eof(&mut client, 7, BEFORE).await, LIMIT);
    drop(client);
    drop(writer.await.unwrap());
    done(&s).await;
    assert_eq!(
        counter(&c, "sent", "downstream", "limit").await,
        (BEFORE + LIMIT) as u64
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn toxic_added_while_the_pipe_holds_data_takes_effect_and_counters_stay_exact() {
    let s = start().await;
    let c = s.client().unwrap();
    let (upstream, listen) = proxy(&c, "inflight").await;
    let (mut client, mut server) = connection(&upstream, listen).await;
    ping(&mut client, &mut server).await;
    // The upstream pushes until it is blocked: the client reads nothing, so the data stands in the client's
    // buffers, the pipe and the proxy's receive buffer. (The assertions below hold whatever the pipe holds when
    // the toxic arrives; the wait only makes it very likely that it is full.)
    let mut pushed = 0;
    loop {
        match server.try_write(&pattern(8, pushed, 64 * 1024)) {
            Ok(n) => pushed += n,
            Err(e) if e.kind() == std::io::ErrorKind::WouldBlock => {
                let blocked = tokio::time::timeout(Duration::from_millis(500), server.writable()).await;
                if blocked.is_err() {
                    break;
                }
            }
            Err(e) => panic!("{e}"),
        }
    }
    const LIMIT: usize = 512 * 1024;
    c.add_toxic(
        "inflight",
        &NewToxic::new(ToxicKind::LimitData(LimitData { bytes: LIMIT as i64 })),
    )
    .await
    .unwrap();
    // What was already written out arrives, then at most LIMIT more of what was held or comes next, then EOF.
    let writer = write_until_cut(server, 8, pushed, 64 * 1024);
    let got = expect_until_eof(&mut client, 8, 0).await;
    assert!(
        got >= LIMIT && got <= pushed + LIMIT,
        "{got} bytes for {pushed} pushed before a limit of {LIMIT}"
    );
    drop(client);
    drop(writer.await.unwrap());
    done(&s).await;
    assert_eq!(
        counter(&c, "sent", "downstream", "inflight").await,
        got as u64 + 1,
        "sent counts exactly what the client got"
    );
    assert!(counter(&c, "received", "downstream", "inflight").await > got as u64);
}

#[tokio::test]
async fn latency_added_to_a_spliced_link_delays_and_removing_it_splices_again() {
    let s = start().await;
    let c = s.client().unwrap();
    let (upstream, listen) = proxy(&c, "lat").await;
    let baseline = pipes();
    let (mut client, mut server) = connection(&upstream, listen).await;
    transfer(&mut server, &mut client, 9, 0, 8 * MIB).await;
    assert_eq!(pipes(), baseline + pipes_per_connection());

    c.add_toxic(
        "lat",
        &NewToxic::new(ToxicKind::Latency(Latency {
            latency: 300,
            jitter: 0,
        })),
    )
    .await
    .unwrap();
    let t = Instant::now();
    send(&mut server, 9, 8 * MIB, 4).await;
    expect(&mut client, 9, 8 * MIB, 4).await;
    let took = t.elapsed();
    assert!(
        took >= Duration::from_millis(300),
        "latency applies to the live link, took {took:?}"
    );

    // Removed again: the link goes back to the pipe it has (no new one) and bulk data still arrives exactly.
    c.remove_toxic("lat", "latency_downstream").await.unwrap();
    let (mut cr, mut cw) = client.into_split();
    let (mut sr, mut sw) = server.into_split();
    tokio::join!(
        send(&mut sw, 9, 8 * MIB + 4, 8 * MIB),
        expect(&mut cr, 9, 8 * MIB + 4, 8 * MIB),
        send(&mut cw, 10, 0, 8 * MIB),
        expect(&mut sr, 10, 0, 8 * MIB),
    );
    assert_eq!(pipes(), baseline + pipes_per_connection());
    let t = Instant::now();
    sw.write_all(b"fast").await.unwrap();
    let mut b = [0u8; 4];
    cr.read_exact(&mut b).await.unwrap();
    assert!(t.elapsed() < Duration::from_millis(300));
    drop((cr, cw, sr, sw));
    done(&s).await;
    assert_eq!(pipes(), baseline);
    assert_counters(&c, "lat", 8 * MIB as u64, 16 * MIB as u64 + 8).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn deleting_the_proxy_during_a_spliced_transfer_closes_both_sockets_and_leaks_nothing() {
    let s = start().await;
    let c = s.client().unwrap();
    let pipes_before = pipes();
    let (upstream, listen) = proxy(&c, "gone").await;
    let upstream_port = upstream.local_addr().unwrap().port();
    let (mut client, server) = connection(&upstream, listen).await;
    let (mut sr, mut sw) = server.into_split();
    // The upstream streams without end; the client keeps streaming too.
    let upstream_writer = tokio::spawn(async move {
        let mut at = 0;
        while sw.write_all(&pattern(11, at, 64 * 1024)).await.is_ok() {
            at += 64 * 1024;
        }
        sw
    });
    let upstream_reader = tokio::spawn(async move {
        let mut buf = vec![0u8; 64 * 1024];
        while let Ok(n) = sr.read(&mut buf).await {
            if n == 0 {
                break;
            }
        }
        sr
    });
    expect(&mut client, 11, 0, 4 * MIB).await;
    let (mut cr, mut cw) = client.into_split();
    let client_writer = tokio::spawn(async move {
        let mut at = 0;
        while cw.write_all(&pattern(12, at, 64 * 1024)).await.is_ok() {
            at += 64 * 1024;
        }
        cw
    });
    c.delete_proxy("gone").await.unwrap();
    // Delete returns once the listener and every link are gone.
    assert_eq!(s.live_link_tasks(), 0);
    let mut buf = vec![0u8; 64 * 1024];
    loop {
        match tokio::time::timeout(Duration::from_secs(10), cr.read(&mut buf))
            .await
            .unwrap()
        {
            Ok(0) | Err(_) => break,
            Ok(_) => {}
        }
    }
    // Every end sees the close: the writers fail and the upstream reader ends.
    let ends = tokio::time::timeout(Duration::from_secs(10), async {
        (
            upstream_writer.await.unwrap(),
            upstream_reader.await.unwrap(),
            client_writer.await.unwrap(),
        )
    })
    .await
    .unwrap();
    drop((ends, cr, upstream));
    // Nothing of the proxy is left: no pipe, and no socket on its listen port or to the upstream. (Counting all
    // fds would also count the API client's keep-alive connections, which come and go.)
    assert_eq!(pipes(), pipes_before, "the links' pipes are closed");
    if cfg!(target_os = "linux") {
        let left: Vec<_> = held_tcp_ports()
            .into_iter()
            .filter(|(local, remote)| {
                [listen.port(), upstream_port]
                    .iter()
                    .any(|p| p == local || p == remote)
            })
            .collect();
        assert!(left.is_empty(), "sockets still open: {left:?}");
    }
}
