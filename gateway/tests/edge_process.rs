//! The real binary under a hostile load, in a child process (its own open-file limit, its own RSS): hundreds of
//! slow connections at `ulimit -n 512` while normal requests keep answering, and the memory that 1,000 connections
//! with large unfinished heads can take. Loopback only; each test is bounded in time.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::io::{BufRead, BufReader};
use std::net::SocketAddr;
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::time::Duration;

use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;
use tokio::time::Instant;

const CONFIG: &str = r#"
server: { listen: "127.0.0.1:0", header_read_timeout: 60s }
models:
  default: { local: all-minilm }
providers:
  local: { kind: ollama, base_url: "http://127.0.0.1:9" }
fallback_policy: { order: [local] }
"#;

struct Gateway {
    child: Child,
    addr: SocketAddr,
    dir: PathBuf,
}

impl Drop for Gateway {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

/// Starts `llm-gateway serve` with the open-file limit `nofile` (via `sh -c ulimit`), waits for its bound address.
fn spawn(name: &str, nofile: Option<u32>) -> Gateway {
    let dir = std::env::temp_dir().join(format!("llm-gw-edge-{name}-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let cfg = dir.join("gw.yaml");
    std::fs::write(&cfg, CONFIG).unwrap();
    let limit = nofile.map(|n| format!("ulimit -n {n} && ")).unwrap_or_default();
    let mut child = Command::new("sh")
        .arg("-c")
        .arg(format!("{limit}exec \"$0\" serve --config \"$1\""))
        .arg(env!("CARGO_BIN_EXE_llm-gateway"))
        .arg(&cfg)
        .env("NO_COLOR", "1")
        .env("RUST_LOG", "info")
        .env_remove("LLM_GATEWAY_MODE")
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let stderr = child.stderr.take().unwrap();
    let mut lines = BufReader::new(stderr).lines();
    let mut seen = String::new();
    let addr = loop {
        let line = lines
            .next()
            .unwrap_or_else(|| panic!("gateway exited: {seen}"))
            .unwrap();
        seen.push_str(&line);
        seen.push('\n');
        if line.contains("llm-gateway listening") {
            let at = line.find("addr=").unwrap() + 5;
            let addr: String = line[at..].chars().take_while(|c| !c.is_whitespace()).collect();
            break addr.parse().unwrap_or_else(|e| panic!("{e}: {line}"));
        }
    };
    // Keep draining stderr so the child never blocks on a full pipe.
    std::thread::spawn(move || for _ in lines {});
    Gateway { child, addr, dir }
}

async fn request(addr: SocketAddr, path: &str) -> (u16, String) {
    let mut s = TcpStream::connect(addr).await.unwrap();
    s.write_all(format!("GET {path} HTTP/1.1\r\nhost: x\r\nconnection: close\r\n\r\n").as_bytes())
        .await
        .unwrap();
    let mut out = Vec::new();
    let _ = tokio::time::timeout(Duration::from_secs(10), s.read_to_end(&mut out))
        .await
        .expect("answered and closed");
    let text = String::from_utf8_lossy(&out).into_owned();
    let status = text.split(' ').nth(1).and_then(|s| s.parse().ok()).unwrap_or(0);
    (status, text)
}

/// Opens `n` connections that each send the start of a head and then nothing.
async fn slow_heads(addr: SocketAddr, n: usize, pad: usize) -> Vec<TcpStream> {
    let head = format!("GET /v1/models HTTP/1.1\r\nhost: x\r\nx-pad: {}", "a".repeat(pad));
    let mut out = Vec::with_capacity(n);
    for _ in 0..n {
        let mut s = TcpStream::connect(addr).await.unwrap();
        s.write_all(head.as_bytes()).await.unwrap();
        out.push(s);
    }
    out
}

fn rss_kib(pid: u32) -> u64 {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).unwrap();
    status
        .lines()
        .find(|l| l.starts_with("VmRSS:"))
        .and_then(|l| l.split_whitespace().nth(1))
        .and_then(|v| v.parse().ok())
        .unwrap()
}

/// RSS once it has stopped moving (two equal samples 100 ms apart), at most 5 s.
async fn settled_rss(pid: u32) -> u64 {
    let start = Instant::now();
    let mut last = rss_kib(pid);
    loop {
        tokio::time::sleep(Duration::from_millis(100)).await;
        let now = rss_kib(pid);
        if now == last || start.elapsed() > Duration::from_secs(5) {
            return now;
        }
        last = now;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn hundreds_of_slow_connections_at_a_low_fd_limit_leave_normal_requests_answered() {
    let gw = spawn("fd", Some(512));
    let a = gw.addr;
    // 512 descriptors: the cap is fitted to 512 - 64 headroom - 16 reserve = 432.
    let held = slow_heads(a, 300, 100).await;
    // Readiness: a request behind them is answered, so all 300 were accepted and are held open.
    assert_eq!(request(a, "/healthz").await.0, 200);
    let mut worst = Duration::ZERO;
    for _ in 0..50 {
        let t = Instant::now();
        let (status, body) = request(a, "/v1/models").await;
        assert_eq!(status, 200, "{body}");
        worst = worst.max(t.elapsed());
    }
    // The bug this guards against made /healthz hang for 8 s; a latency budget of 1 s is far from both.
    assert!(worst < Duration::from_secs(1), "{worst:?}");
    // Up to the cap: probes are still answered (on the reserve), API requests are refused fast.
    let more = slow_heads(a, 132, 100).await;
    let (status, body) = request(a, "/healthz").await;
    assert_eq!(status, 200, "{body}");
    let (status, body) = request(a, "/v1/models").await;
    assert_eq!(status, 503, "{body}");
    assert!(body.contains("server_busy"), "{body}");
    // Past cap and reserve: shed at once, and the process keeps its descriptors (no EMFILE spin).
    let reserve = slow_heads(a, llm_gateway::server::HEALTH_RESERVE, 10).await;
    let t = Instant::now();
    let mut extra = TcpStream::connect(a).await.unwrap();
    let _ = extra.write_all(b"GET /healthz HTTP/1.1\r\nhost: x\r\n\r\n").await;
    let mut buf = Vec::new();
    let _ = tokio::time::timeout(Duration::from_secs(5), extra.read_to_end(&mut buf))
        .await
        .unwrap();
    assert!(buf.is_empty(), "{}", String::from_utf8_lossy(&buf));
    let shed_after = t.elapsed();
    eprintln!(
        "fd limit 512: {} slow connections held, worst /v1/models {worst:?} with 300 held, extra connection shed in {shed_after:?}",
        held.len() + more.len() + reserve.len()
    );
    drop((held, more, reserve));
    let back = async {
        loop {
            if request(a, "/v1/models").await.0 == 200 {
                return;
            }
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    };
    tokio::time::timeout(Duration::from_secs(5), back).await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_thousand_unfinished_large_heads_take_bounded_memory_that_comes_back() {
    let gw = spawn("rss", None);
    let a = gw.addr;
    let pid = gw.child.id();
    for _ in 0..20 {
        assert_eq!(request(a, "/v1/models").await.0, 200);
    }
    let base = settled_rss(pid).await;
    // 15 KiB of head each: just under server.max_header_bytes (16 KiB), the most a head may hold.
    let held = slow_heads(a, 1000, 15 * 1024).await;
    assert_eq!(request(a, "/healthz").await.0, 200);
    let peak = settled_rss(pid).await;
    drop(held);
    // Readiness: the server has seen the closes once it serves again.
    assert_eq!(request(a, "/healthz").await.0, 200);
    let added = peak.saturating_sub(base);
    // The closes are handled asynchronously, and mimalloc hands a page freed on another thread back when its
    // owner allocates again: with a little ordinary traffic, wait (at most 10 s) for the memory to come back.
    // Measured: 5 to 20 MB of the 36 MB stay (allocator pages still holding a live object); before, 525 of 542 MB did.
    let bound = base + added / 2 + 8 * 1024;
    let t = Instant::now();
    let mut after = rss_kib(pid);
    while after >= bound && t.elapsed() < Duration::from_secs(10) {
        let traffic: Vec<_> = (0..8).map(|_| tokio::spawn(request(a, "/v1/models"))).collect();
        for r in traffic {
            assert_eq!(r.await.unwrap().0, 200);
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
        after = rss_kib(pid);
    }
    eprintln!(
        "RSS: {base} KiB at rest, {peak} KiB with 1000 unfinished 15 KiB heads (+{added} KiB, {} KiB per connection), \
         {after} KiB after they closed",
        added / 1000
    );
    // Bound: hyper's buffer (16 + 8 KiB) plus connection state, well under 48 KiB per connection (was 540 KiB).
    assert!(added < 48 * 1000, "+{added} KiB");
    assert!(after < bound, "memory stays: {after} KiB vs {base} KiB at rest");
    // The probe of the issue: 1,000 connections sending 390 KB of unfinished head each. Each is refused with 431
    // at 16 KiB and closed, so nothing is held.
    let base = settled_rss(pid).await;
    let head = format!(
        "GET /healthz HTTP/1.1\r\nhost: x\r\nx-pad: {}",
        "a".repeat(390 * 1024)
    );
    let mut tasks = Vec::new();
    for _ in 0..1000 {
        let head = head.clone();
        tasks.push(tokio::spawn(async move {
            let mut s = TcpStream::connect(a).await.unwrap();
            let _ = s.write_all(head.as_bytes()).await;
            let mut out = Vec::new();
            let _ = tokio::time::timeout(Duration::from_secs(10), s.read_to_end(&mut out))
                .await
                .unwrap();
            String::from_utf8_lossy(&out).starts_with("HTTP/1.1 431")
        }));
    }
    let mut refused = 0;
    for t in tasks {
        refused += usize::from(t.await.unwrap());
    }
    let after_big = settled_rss(pid).await;
    eprintln!(
        "1000 x 390 KB heads: {refused} refused with 431; RSS {base} KiB before, {after_big} KiB after"
    );
    assert_eq!(refused, 1000);
    assert!(after_big < base + 16 * 1024, "{after_big} KiB vs {base} KiB");
}
