//! Load generation. Open loop: requests are sent on a fixed schedule whatever the server does, and each
//! latency is measured from the request's intended send time, so a stalled server cannot hide its queue
//! (no coordinated omission). Closed loop: a fixed number of requests in flight, for throughput ceilings.

use crate::stats::Samples;
use futures::stream::{FuturesUnordered, StreamExt};
use std::time::Duration;
use tokio::time::Instant;

/// One kind of request to send.
#[derive(Debug, Clone)]
pub struct Target {
    /// Full URL of the endpoint.
    pub url: String,
    /// JSON body (shared, not copied, by every request).
    pub body: bytes::Bytes,
    /// Extra headers.
    pub headers: Vec<(String, String)>,
}

impl Target {
    /// A chat completion to `base` (a server root) for `model`.
    pub fn chat(base: &str, model: &str, prompt: &str) -> Target {
        Target::chat_with(base, model, prompt, false)
    }

    /// A chat completion, streamed (`"stream": true`) or not.
    pub fn chat_with(base: &str, model: &str, prompt: &str, stream: bool) -> Target {
        let body = serde_json::json!({"model": model, "stream": stream,
            "messages": [{"role": "user", "content": prompt}]});
        Target {
            url: format!("{}/v1/chat/completions", base.trim_end_matches('/')),
            body: bytes::Bytes::from(body.to_string()),
            headers: vec![("authorization".into(), "Bearer sk-bench-0000".into())],
        }
    }

    /// Sets a header (replacing one of the same name, such as the default `authorization`).
    pub fn with_header(mut self, k: &str, v: &str) -> Target {
        self.headers.retain(|(name, _)| !name.eq_ignore_ascii_case(k));
        self.headers.push((k.to_string(), v.to_string()));
        self
    }
}

/// A client with a connection pool big enough for the loads here.
pub fn client() -> Result<reqwest::Client, reqwest::Error> {
    reqwest::Client::builder()
        .pool_max_idle_per_host(1024)
        .timeout(Duration::from_secs(60))
        .build()
}

/// Why a request failed, short: `HTTP 503 overloaded` (the status and the JSON error's `type` or `code` when the
/// body has one), `connect`, `timeout`, `body` or `transport`.
fn http_reason(status: reqwest::StatusCode, body: &[u8]) -> String {
    let kind = serde_json::from_slice::<serde_json::Value>(body)
        .ok()
        .and_then(|v| {
            let e = v.get("error")?;
            e.get("type")
                .or_else(|| e.get("code"))
                .and_then(|x| x.as_str())
                .map(|x| x.chars().take(40).collect::<String>())
        });
    match kind {
        Some(k) => format!("HTTP {} {k}", status.as_u16()),
        None => format!("HTTP {}", status.as_u16()),
    }
}

fn transport_reason(e: &reqwest::Error) -> String {
    if e.is_connect() {
        "connect".into()
    } else if e.is_timeout() {
        "timeout".into()
    } else if e.is_body() || e.is_decode() {
        "body".into()
    } else {
        "transport".into()
    }
}

async fn send(client: &reqwest::Client, t: &Target) -> bool {
    send_why(client, t).await.is_ok()
}

/// One request: `Err(why)` when it failed.
async fn send_why(client: &reqwest::Client, t: &Target) -> Result<(), String> {
    let mut rb = client
        .post(&t.url)
        .header("content-type", "application/json")
        .body(t.body.clone());
    for (k, v) in &t.headers {
        rb = rb.header(k, v);
    }
    let r = rb.send().await.map_err(|e| transport_reason(&e))?;
    let status = r.status();
    let body = r.bytes().await.map_err(|e| transport_reason(&e))?;
    if status.is_success() {
        Ok(())
    } else {
        Err(http_reason(status, &body))
    }
}

/// Sends `rate` requests per second for `duration`, on schedule; latencies from the intended send time.
///
/// The schedule is kept by a dedicated OS thread sleeping with `nanosleep` (tens of microseconds late at
/// most), not by tokio's timer wheel, whose 1 ms ticks would add up to a millisecond to every latency. Each
/// request is handed to the runtime at its send time and measured from that intended time.
pub async fn open_loop(client: &reqwest::Client, t: &Target, rate: u32, duration: Duration) -> Samples {
    let n = (f64::from(rate) * duration.as_secs_f64()).round() as u64;
    let interval = Duration::from_secs_f64(1.0 / f64::from(rate.max(1)));
    let (tx, mut rx) = tokio::sync::mpsc::unbounded_channel::<Result<Duration, String>>();
    let handle = tokio::runtime::Handle::current();
    let (client, target) = (client.clone(), t.clone());
    let pacer = std::thread::Builder::new()
        .name("open-loop-pacer".into())
        .spawn(move || pace(&handle, &client, &target, n, interval, &tx));
    let mut samples = Samples::default();
    if pacer.is_err() {
        samples.fail_n("the pacer thread did not start".into(), n);
        return samples;
    }
    for _ in 0..n {
        match rx.recv().await {
            Some(Ok(d)) => samples.record(d),
            Some(Err(why)) => samples.fail(why),
            None => break,
        }
    }
    samples
}

/// The pacing loop of [`open_loop`]: sleeps to each send time, then spawns the request on the runtime.
#[allow(clippy::disallowed_types)] // Wall-clock pacing on a plain thread; no paused tokio clock exists here.
fn pace(
    handle: &tokio::runtime::Handle,
    client: &reqwest::Client,
    t: &Target,
    n: u64,
    interval: Duration,
    tx: &tokio::sync::mpsc::UnboundedSender<Result<Duration, String>>,
) {
    let start = std::time::Instant::now() + Duration::from_millis(20);
    for i in 0..n {
        let at = start + interval.mul_f64(i as f64);
        let now = std::time::Instant::now();
        if at > now {
            std::thread::sleep(at - now);
        }
        let (client, t, tx) = (client.clone(), t.clone(), tx.clone());
        handle.spawn(async move {
            let r = send_why(&client, &t).await;
            let _ = tx.send(r.map(|()| at.elapsed()));
        });
    }
}

/// Keeps `concurrency` requests in flight for `duration`; returns completed requests per second.
pub async fn ceiling(client: &reqwest::Client, t: &Target, concurrency: usize, duration: Duration) -> f64 {
    let start = Instant::now();
    let end = start + duration;
    let mut inflight = FuturesUnordered::new();
    let mut done = 0u64;
    for _ in 0..concurrency {
        inflight.push(send(client, t));
    }
    while let Some(ok) = inflight.next().await {
        done += u64::from(ok);
        if Instant::now() < end {
            inflight.push(send(client, t));
        }
    }
    done as f64 / start.elapsed().as_secs_f64()
}

/// Sends `n` requests one after another (for fallback cases where order matters); latency per request.
pub async fn sequential(
    client: &reqwest::Client,
    t: &Target,
    n: usize,
    pause: Duration,
) -> Vec<Option<Duration>> {
    let mut out = Vec::with_capacity(n);
    for _ in 0..n {
        let t0 = Instant::now();
        let ok = send(client, t).await;
        out.push(ok.then(|| t0.elapsed()));
        if !pause.is_zero() {
            tokio::time::sleep(pause).await;
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A server that counts the requests it answers.
    async fn counting_server() -> (String, std::sync::Arc<std::sync::atomic::AtomicU64>) {
        use std::sync::atomic::{AtomicU64, Ordering};
        let hits = std::sync::Arc::new(AtomicU64::new(0));
        let h = hits.clone();
        let app = axum::Router::new().fallback(move || {
            let h = h.clone();
            async move {
                h.fetch_add(1, Ordering::SeqCst);
                "{}"
            }
        });
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let url = format!("http://{}", listener.local_addr().unwrap());
        tokio::spawn(async move { axum::serve(listener, app).await });
        (url, hits)
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn open_loop_sends_rate_times_duration_requests_and_measures_each() {
        let (url, hits) = counting_server().await;
        let client = client().unwrap();
        let t = Target::chat(&url, "m", "hi");
        let s = open_loop(&client, &t, 200, Duration::from_millis(250)).await;
        assert_eq!(s.len(), 50, "errors: {}", s.errors);
        assert_eq!(s.errors, 0);
        assert_eq!(hits.load(std::sync::atomic::Ordering::SeqCst), 50);
    }

    #[test]
    fn a_failure_says_its_status_and_the_error_type_of_its_body() {
        let s = reqwest::StatusCode::SERVICE_UNAVAILABLE;
        assert_eq!(
            http_reason(s, br#"{"error":{"type":"overloaded","message":"x"}}"#),
            "HTTP 503 overloaded"
        );
        assert_eq!(
            http_reason(s, br#"{"error":{"code":"rate_limited"}}"#),
            "HTTP 503 rate_limited"
        );
        assert_eq!(http_reason(s, b"<html>"), "HTTP 503");
        assert_eq!(http_reason(s, br#"{"error":"flat"}"#), "HTTP 503");
    }

    #[test]
    fn a_header_set_again_replaces_the_first_whatever_its_case() {
        let t = Target::chat("http://h", "m", "p").with_header("Authorization", "Bearer client-key");
        assert_eq!(
            t.headers,
            vec![("Authorization".to_string(), "Bearer client-key".to_string())]
        );
        let t = t.with_header("x-other", "1");
        assert_eq!(t.headers.len(), 2);
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn a_refused_target_counts_errors_not_samples() {
        let l = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        let url = format!("http://{}", l.local_addr().unwrap());
        drop(l);
        let client = client().unwrap();
        let s = open_loop(
            &client,
            &Target::chat(&url, "m", "hi"),
            100,
            Duration::from_millis(100),
        )
        .await;
        assert_eq!((s.len(), s.errors), (0, 10));
        assert_eq!(s.reasons.get("connect"), Some(&10), "{:?}", s.reasons);
    }
}
