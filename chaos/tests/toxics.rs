//! Socket-level behaviour of every toxic through a real proxy in front of an echo server.
#![allow(clippy::unwrap_used, clippy::panic)] // Tests: helpers fail loudly, like the tests themselves.

mod common;

use std::time::Duration;

use common::{connect, echo_server, proxy_to, read_to_end, round_trip, start};
use llm_chaos::toxics::{Bandwidth, LimitData, ResetPeer, Slicer, SlowClose, Timeout};
use llm_chaos::{toxics::Latency, NewToxic, Stream, ToxicKind, ToxicUpdate};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::time::Instant;

fn ms(d: Duration) -> u128 {
    d.as_millis()
}

#[tokio::test]
async fn latency_adds_what_it_says_and_pipelines() {
    let s = start().await;
    let c = s.client().unwrap();
    let listen = proxy_to(&c, "p", echo_server().await).await;
    let mut sock = connect(listen).await;
    round_trip(&mut sock, b"warm").await;
    c.add_toxic(
        "p",
        &NewToxic::new(ToxicKind::Latency(Latency {
            latency: 200,
            jitter: 0,
        })),
    )
    .await
    .unwrap();
    let t = Instant::now();
    round_trip(&mut sock, b"ping").await;
    let took = ms(t.elapsed());
    assert!(
        (200..450).contains(&took),
        "one round trip through downstream latency 200 took {took} ms"
    );

    // Upstream too, with jitter: both directions add up.
    let up = NewToxic::new(ToxicKind::Latency(Latency {
        latency: 100,
        jitter: 20,
    }))
    .stream(Stream::Upstream);
    c.add_toxic("p", &up).await.unwrap();
    let t = Instant::now();
    round_trip(&mut sock, b"pong").await;
    let took = ms(t.elapsed());
    assert!((280..550).contains(&took), "300 ± 20 ms expected, took {took} ms");
    c.remove_toxic("p", "latency_upstream").await.unwrap();

    // Pipelining: three writes 50 ms apart all come back about 200 ms after they were sent, not 600 ms.
    let t = Instant::now();
    for _ in 0..3 {
        sock.write_all(b"x").await.unwrap();
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    let mut buf = [0u8; 3];
    sock.read_exact(&mut buf).await.unwrap();
    let took = ms(t.elapsed());
    assert!((300..500).contains(&took), "pipelined chunks took {took} ms");

    // Removing the toxic on a live connection takes effect at once.
    c.remove_toxic("p", "latency_downstream").await.unwrap();
    let t = Instant::now();
    round_trip(&mut sock, b"fast").await;
    assert!(ms(t.elapsed()) < 100);
}

#[tokio::test]
async fn latency_update_applies_to_live_connections_and_releases_held_data() {
    let s = start().await;
    let c = s.client().unwrap();
    let listen = proxy_to(&c, "p", echo_server().await).await;
    let mut sock = connect(listen).await;
    c.add_toxic(
        "p",
        &NewToxic::new(ToxicKind::Latency(Latency {
            latency: 10_000,
            jitter: 0,
        })),
    )
    .await
    .unwrap();
    sock.write_all(b"held").await.unwrap();
    let t = Instant::now();
    let update = ToxicUpdate::attributes_of(&ToxicKind::Latency(Latency {
        latency: 50,
        jitter: 0,
    }));
    // The chunk is being held for 10 s; the update interrupts the wait.
    let reader = tokio::spawn(async move {
        let mut buf = [0u8; 4];
        sock.read_exact(&mut buf).await.unwrap();
        (buf, sock)
    });
    c.update_toxic("p", "latency_downstream", &update).await.unwrap();
    let (buf, mut sock) = reader.await.unwrap();
    assert_eq!(&buf, b"held");
    assert!(ms(t.elapsed()) < 2000, "update released held data");
    let t = Instant::now();
    round_trip(&mut sock, b"next").await;
    let took = ms(t.elapsed());
    assert!((50..300).contains(&took), "updated latency 50 ms, took {took} ms");
}

#[tokio::test]
async fn bandwidth_holds_the_rate_within_ten_percent() {
    let s = start().await;
    let c = s.client().unwrap();
    let listen = proxy_to(&c, "p", echo_server().await).await;
    c.add_toxic("p", &NewToxic::new(ToxicKind::Bandwidth(Bandwidth { rate: 200 })))
        .await
        .unwrap();
    let mut sock = connect(listen).await;
    let data = vec![7u8; 200_000];
    let t = Instant::now();
    let (mut r, mut w) = sock.split();
    let (_, got) = tokio::join!(w.write_all(&data), async {
        let mut buf = vec![0u8; data.len()];
        r.read_exact(&mut buf).await.unwrap();
        buf
    });
    let took = ms(t.elapsed());
    assert_eq!(got, data);
    // 200 000 bytes at 200 KB/s = 1 s: the rate holds within 10% (it can only be late, never early).
    assert!(
        (900..=1100).contains(&took),
        "expected 1000 ms ± 10%, took {took} ms"
    );
}

#[tokio::test]
async fn timeout_zero_black_holes_and_removal_closes() {
    let s = start().await;
    let c = s.client().unwrap();
    let listen = proxy_to(&c, "p", echo_server().await).await;
    let mut sock = connect(listen).await;
    c.add_toxic("p", &NewToxic::new(ToxicKind::Timeout(Timeout { timeout: 0 })))
        .await
        .unwrap();
    sock.write_all(b"lost").await.unwrap();
    let mut buf = [0u8; 4];
    let waited = tokio::time::timeout(Duration::from_millis(300), sock.read(&mut buf)).await;
    assert!(
        waited.is_err(),
        "nothing comes back and the connection stays open: {waited:?}"
    );
    c.remove_toxic("p", "timeout_downstream").await.unwrap();
    let (rest, _) = read_to_end(&mut sock).await;
    assert!(rest.is_empty(), "removing a timeout toxic closes the link");
}

#[tokio::test]
async fn timeout_closes_after_the_delay() {
    let s = start().await;
    let c = s.client().unwrap();
    let listen = proxy_to(&c, "p", echo_server().await).await;
    let up = NewToxic::new(ToxicKind::Timeout(Timeout { timeout: 200 })).stream(Stream::Upstream);
    c.add_toxic("p", &up).await.unwrap();
    let mut sock = connect(listen).await;
    let t = Instant::now();
    sock.write_all(b"dropped").await.unwrap();
    let (rest, _) = read_to_end(&mut sock).await;
    let took = ms(t.elapsed());
    assert!(rest.is_empty());
    assert!((190..600).contains(&took), "closed after {took} ms");
}

#[tokio::test]
async fn reset_peer_gives_econnreset_both_ways() {
    let s = start().await;
    let c = s.client().unwrap();
    let listen = proxy_to(&c, "p", echo_server().await).await;
    for stream in [Stream::Downstream, Stream::Upstream] {
        let toxic = NewToxic::new(ToxicKind::ResetPeer(ResetPeer { timeout: 100 })).stream(stream);
        let added = c.add_toxic("p", &toxic).await.unwrap();
        let mut sock = connect(listen).await;
        let t = Instant::now();
        sock.write_all(b"hello").await.unwrap();
        let (got, error) = read_to_end(&mut sock).await;
        assert!(got.is_empty(), "{stream:?}: {got:?}");
        assert_eq!(error, Some(std::io::ErrorKind::ConnectionReset), "{stream:?}");
        assert!(ms(t.elapsed()) >= 100, "{stream:?}: reset after the timeout");
        c.remove_toxic("p", &added.name).await.unwrap();
    }
}

#[tokio::test]
async fn limit_data_cuts_at_exactly_n_bytes() {
    let s = start().await;
    let c = s.client().unwrap();
    let listen = proxy_to(&c, "p", echo_server().await).await;
    c.add_toxic(
        "p",
        &NewToxic::new(ToxicKind::LimitData(LimitData { bytes: 1000 })),
    )
    .await
    .unwrap();
    let mut sock = connect(listen).await;
    let data: Vec<u8> = (0..5000u32).map(|i| i as u8).collect();
    sock.write_all(&data).await.unwrap();
    let (got, _) = read_to_end(&mut sock).await;
    assert_eq!(got.len(), 1000);
    assert_eq!(got, data[..1000]);
}

#[tokio::test]
async fn slicer_splits_and_delays() {
    let s = start().await;
    let c = s.client().unwrap();
    let listen = proxy_to(&c, "p", echo_server().await).await;
    let slicer = Slicer {
        average_size: 10,
        size_variation: 0,
        delay: 10_000,
    };
    c.add_toxic("p", &NewToxic::new(ToxicKind::Slicer(slicer)))
        .await
        .unwrap();
    let mut sock = connect(listen).await;
    let data = vec![1u8; 100];
    let t = Instant::now();
    sock.write_all(&data).await.unwrap();
    let mut got = 0;
    let mut reads = 0;
    let mut buf = [0u8; 100];
    while got < data.len() {
        got += sock.read(&mut buf).await.unwrap();
        reads += 1;
    }
    let took = ms(t.elapsed());
    assert!(
        reads >= 5,
        "100 bytes in slices of ~10 arrive in several reads, got {reads}"
    );
    assert!(took >= 50, "slices are 10 ms apart, took {took} ms");
}

#[tokio::test]
async fn slow_close_delays_the_close() {
    let s = start().await;
    let c = s.client().unwrap();
    let listen = proxy_to(&c, "p", echo_server().await).await;
    c.add_toxic(
        "p",
        &NewToxic::new(ToxicKind::SlowClose(SlowClose { delay: 300 })),
    )
    .await
    .unwrap();
    let mut sock = connect(listen).await;
    round_trip(&mut sock, b"bye").await;
    let t = Instant::now();
    sock.shutdown().await.unwrap();
    let (rest, _) = read_to_end(&mut sock).await;
    let took = ms(t.elapsed());
    assert!(rest.is_empty());
    assert!(
        (300..800).contains(&took),
        "close held back 300 ms, took {took} ms"
    );
}

#[tokio::test]
async fn toxicity_zero_leaves_links_untouched() {
    let s = start().await;
    let c = s.client().unwrap();
    let listen = proxy_to(&c, "p", echo_server().await).await;
    let never = |kind| NewToxic::new(kind).toxicity(0.0);
    c.add_toxic(
        "p",
        &never(ToxicKind::Latency(Latency {
            latency: 5000,
            jitter: 0,
        })),
    )
    .await
    .unwrap();
    c.add_toxic(
        "p",
        &never(ToxicKind::Timeout(Timeout { timeout: 0 })).stream(Stream::Upstream),
    )
    .await
    .unwrap();
    c.add_toxic("p", &never(ToxicKind::LimitData(LimitData { bytes: 1 })))
        .await
        .unwrap();
    // noop (a registered, undocumented type) does nothing at any toxicity.
    c.add_toxic(
        "p",
        &NewToxic::new(ToxicKind::Noop(llm_chaos::toxics::Noop {})).stream(Stream::Upstream),
    )
    .await
    .unwrap();
    let mut sock = connect(listen).await;
    let t = Instant::now();
    assert_eq!(round_trip(&mut sock, b"untouched").await, b"untouched");
    assert!(ms(t.elapsed()) < 200);
}

#[tokio::test]
async fn toxicity_is_rolled_per_connection() {
    let s = start().await;
    let c = s.client().unwrap();
    let listen = proxy_to(&c, "p", echo_server().await).await;
    let half = NewToxic::new(ToxicKind::Timeout(Timeout { timeout: 0 })).toxicity(0.5);
    c.add_toxic("p", &half).await.unwrap();
    let mut probes = tokio::task::JoinSet::new();
    for _ in 0..40 {
        let mut sock = connect(listen).await;
        probes.spawn(async move {
            sock.write_all(b"?").await.unwrap();
            let mut buf = [0u8; 1];
            tokio::time::timeout(Duration::from_millis(300), sock.read_exact(&mut buf))
                .await
                .is_ok()
        });
    }
    let passed = probes.join_all().await.into_iter().filter(|ok| *ok).count();
    assert!(
        (8..=32).contains(&passed),
        "about half of 40 connections pass, got {passed}"
    );
}

#[tokio::test]
async fn disabled_proxy_refuses_and_drops_connections() {
    let s = start().await;
    let c = s.client().unwrap();
    let listen = proxy_to(&c, "p", echo_server().await).await;
    let mut sock = connect(listen).await;
    round_trip(&mut sock, b"a").await;
    c.disable("p").await.unwrap();
    let (rest, _) = read_to_end(&mut sock).await;
    assert!(rest.is_empty());
    let refused = tokio::net::TcpStream::connect(listen).await.unwrap_err();
    assert_eq!(refused.kind(), std::io::ErrorKind::ConnectionRefused);
    c.enable("p").await.unwrap();
    let mut again = connect(listen).await;
    assert_eq!(round_trip(&mut again, b"b").await, b"b");
}

#[tokio::test]
async fn failed_upstream_dial_closes_the_client() {
    let s = start().await;
    let c = s.client().unwrap();
    let dead = tokio::net::TcpListener::bind("127.0.0.1:0")
        .await
        .unwrap()
        .local_addr()
        .unwrap();
    let listen = proxy_to(&c, "p", dead).await;
    let mut sock = connect(listen).await;
    let (rest, _) = read_to_end(&mut sock).await;
    assert!(rest.is_empty());
}

#[tokio::test]
async fn reset_peer_at_toxicity_zero_still_turns_closes_into_resets() {
    // Toxiproxy issue #603: SO_LINGER 0 is set whenever the chain holds reset_peer, whatever the roll.
    let s = start().await;
    let c = s.client().unwrap();
    let listen = proxy_to(&c, "p", echo_server().await).await;
    let toxic = NewToxic::new(ToxicKind::ResetPeer(ResetPeer { timeout: 0 })).toxicity(0.0);
    c.add_toxic("p", &toxic).await.unwrap();
    let mut sock = connect(listen).await;
    assert_eq!(round_trip(&mut sock, b"passes").await, b"passes");
    sock.shutdown().await.unwrap();
    let (rest, error) = read_to_end(&mut sock).await;
    assert!(rest.is_empty());
    assert_eq!(
        error,
        Some(std::io::ErrorKind::ConnectionReset),
        "the close arrives as an RST"
    );
}
