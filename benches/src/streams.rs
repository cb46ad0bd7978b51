//! Streams: time to first token and the time between chunks through a target, with a number of streams open
//! at once, and the memory an open stream holds in a server.
//!
//! A chunk is an SSE event carrying content (`choices[].delta.content` or `tool_calls`), timed when the read
//! holding its end returns; several events in one read are one chunk time and gaps of 0 between them (what a
//! client sees). The time to first token runs from sending the request to the first chunk.
//!
//! The streams come from [`upstream`], an OpenAI-shaped stream server in this process that writes into each
//! chunk's content the time it sent it (`t=MICROS `, on this process's monotonic clock): the client then knows
//! each chunk's own latency, send to receipt, through whatever is in between. What a server adds between
//! chunks is its chunk latency minus the upstream's direct one; the gaps between chunks, by contrast, also
//! carry the pacing timer's jitter (1 ms ticks), the same for every target.

use crate::stats::Samples;
use serde::Deserialize;
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, OnceLock};
use std::time::Duration;
use tokio::time::Instant;

/// Microseconds on this process's monotonic clock (from its first use).
pub fn micros_now() -> u64 {
    static BASE: OnceLock<Instant> = OnceLock::new();
    BASE.get_or_init(Instant::now).elapsed().as_micros() as u64
}

/// The send time written into a chunk's content by [`upstream`]: `t=MICROS ` at its start.
pub fn parse_stamp(content: &str) -> Option<u64> {
    let digits = content.strip_prefix("t=")?;
    let end = digits.find(|c: char| !c.is_ascii_digit()).unwrap_or(digits.len());
    digits[..end].parse().ok()
}

/// What one read of a stream held.
#[derive(Debug, Default, Clone, PartialEq, Eq)]
pub struct Events {
    /// Events carrying content.
    pub chunks: usize,
    /// The send times of those that carried one ([`parse_stamp`]), in order.
    pub stamps: Vec<u64>,
    /// `data: [DONE]` was seen.
    pub done: bool,
    /// An event carried an `error` object.
    pub error: bool,
}

/// Splits an SSE body into events across reads.
#[derive(Debug, Default)]
pub struct SseParser {
    buf: Vec<u8>,
}

#[derive(Deserialize)]
struct Chunk {
    #[serde(default)]
    choices: Vec<Choice>,
    #[serde(default)]
    error: Option<serde::de::IgnoredAny>,
}

#[derive(Deserialize)]
struct Choice {
    #[serde(default)]
    delta: Option<Delta>,
}

#[derive(Deserialize)]
struct Delta {
    #[serde(default)]
    content: Option<String>,
    #[serde(default)]
    tool_calls: Option<serde::de::IgnoredAny>,
}

/// The longest event kept while waiting for its end: a peer that never ends an event cannot grow the buffer.
const MAX_EVENT_BYTES: usize = 1 << 20;

impl SseParser {
    /// Adds the bytes of one read; returns what the events it completed held.
    pub fn feed(&mut self, bytes: &[u8]) -> Events {
        // CRLF (and lone CR) line ends become LF.
        self.buf.extend(bytes.iter().copied().filter(|&b| b != b'\r'));
        let mut ev = Events::default();
        while let Some(end) = self.buf.windows(2).position(|w| w == b"\n\n") {
            let event: Vec<u8> = self.buf.drain(..end + 2).collect();
            classify(&event, &mut ev);
        }
        if self.buf.len() > MAX_EVENT_BYTES {
            self.buf.clear();
            ev.error = true;
        }
        ev
    }
}

fn classify(event: &[u8], ev: &mut Events) {
    let text = String::from_utf8_lossy(event);
    let data: Vec<&str> = text
        .lines()
        .filter_map(|l| l.strip_prefix("data:"))
        .map(|d| d.strip_prefix(' ').unwrap_or(d))
        .collect();
    if data.is_empty() {
        return;
    }
    let data = data.join("\n");
    if data.trim() == "[DONE]" {
        ev.done = true;
        return;
    }
    match serde_json::from_str::<Chunk>(&data) {
        Ok(c) if c.error.is_some() => ev.error = true,
        Ok(c) => {
            let content = c.choices.iter().any(|ch| {
                ch.delta.as_ref().is_some_and(|d| {
                    d.content.as_deref().is_some_and(|s| !s.is_empty()) || d.tool_calls.is_some()
                })
            });
            ev.chunks += usize::from(content);
            if let Some(stamp) = c
                .choices
                .iter()
                .find_map(|ch| ch.delta.as_ref()?.content.as_deref().and_then(parse_stamp))
            {
                ev.stamps.push(stamp);
            }
        }
        Err(_) => ev.error = true,
    }
}

/// The timing of one stream.
#[derive(Debug, Clone, Default)]
pub struct Timing {
    /// From sending the request to the first chunk.
    pub ttft: Duration,
    /// Between consecutive chunks.
    pub gaps: Vec<Duration>,
    /// Send (by [`upstream`]) to receipt of each chunk after the first.
    pub latency: Vec<Duration>,
}

/// Sends one streamed request and times its chunks. `None` when it fails: transport error, non-2xx, an error
/// event, no chunk, or longer than `limit`.
pub async fn one(client: &reqwest::Client, t: &crate::load::Target, limit: Duration) -> Option<Timing> {
    tokio::time::timeout(limit, one_inner(client, t, None))
        .await
        .ok()?
}

async fn one_inner(
    client: &reqwest::Client,
    t: &crate::load::Target,
    opened: Option<&AtomicUsize>,
) -> Option<Timing> {
    use futures::StreamExt;
    let start = Instant::now();
    let mut rb = client
        .post(&t.url)
        .header("content-type", "application/json")
        .header("accept", "text/event-stream")
        .body(t.body.clone());
    for (k, v) in &t.headers {
        rb = rb.header(k, v);
    }
    let resp = rb.send().await.ok()?;
    if !resp.status().is_success() {
        return None;
    }
    let mut body = resp.bytes_stream();
    let mut parser = SseParser::default();
    let mut timing = Timing::default();
    let mut last: Option<Instant> = None;
    let mut first_stamp = true;
    while let Some(read) = body.next().await {
        let bytes = read.ok()?;
        let now = Instant::now();
        let micros = micros_now();
        let ev = parser.feed(&bytes);
        if ev.error {
            return None;
        }
        for stamp in &ev.stamps {
            if !std::mem::take(&mut first_stamp) {
                timing
                    .latency
                    .push(Duration::from_micros(micros.saturating_sub(*stamp)));
            }
        }
        for i in 0..ev.chunks {
            match last {
                None => {
                    timing.ttft = now - start;
                    if let Some(o) = opened {
                        o.fetch_add(1, Ordering::SeqCst);
                    }
                }
                Some(prev) => timing.gaps.push(if i == 0 { now - prev } else { Duration::ZERO }),
            }
            last = Some(now);
        }
        if ev.done {
            break;
        }
    }
    last.map(|_| timing)
}

/// Time to first token and between chunks of many streams.
#[derive(Debug, Default, Clone)]
pub struct StreamSamples {
    /// One per successful stream.
    pub ttft: Samples,
    /// Every gap between chunks of the successful streams.
    pub gaps: Samples,
    /// Every chunk's latency after the first.
    pub latency: Samples,
}

impl StreamSamples {
    /// Adds another run's samples.
    pub fn merge(&mut self, o: StreamSamples) {
        self.ttft.merge(o.ttft);
        self.gaps.merge(o.gaps);
        self.latency.merge(o.latency);
    }
}

/// Keeps `streams` streams open for `duration` (each worker starts a new one when its last ends), the workers'
/// first starts spread over `spread` so the streams do not tick in step. Streams still open at the end are
/// awaited. Each stream is given at most `limit`.
pub async fn concurrent(
    client: &reqwest::Client,
    t: &crate::load::Target,
    streams: usize,
    duration: Duration,
    spread: Duration,
    limit: Duration,
) -> StreamSamples {
    let start = Instant::now();
    let end = start + duration;
    let mut tasks = tokio::task::JoinSet::new();
    for i in 0..streams {
        let (client, t) = (client.clone(), t.clone());
        let offset = spread.mul_f64(i as f64 / streams.max(1) as f64);
        tasks.spawn(async move {
            let mut s = StreamSamples::default();
            tokio::time::sleep_until(start + offset).await;
            while Instant::now() < end {
                match one(&client, &t, limit).await {
                    Some(tm) => {
                        s.ttft.record(tm.ttft);
                        for g in tm.gaps {
                            s.gaps.record(g);
                        }
                        for l in tm.latency {
                            s.latency.record(l);
                        }
                    }
                    None => s.ttft.errors += 1,
                }
            }
            s
        });
    }
    let mut all = StreamSamples::default();
    while let Some(done) = tasks.join_next().await {
        if let Ok(s) = done {
            all.merge(s);
        }
    }
    all
}

/// The resident memory (VmRSS) of a process, in bytes.
pub fn rss_bytes(pid: u32) -> Option<u64> {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).ok()?;
    let line = status.lines().find(|l| l.starts_with("VmRSS:"))?;
    let kb: u64 = line.split_whitespace().nth(1)?.parse().ok()?;
    Some(kb * 1024)
}

/// A server's memory with streams open.
#[derive(Debug, Clone, Copy, serde::Serialize)]
pub struct OpenStreams {
    /// Streams asked for.
    pub streams: usize,
    /// Streams that had their first chunk when the memory was read.
    pub open: usize,
    /// Streams that had failed by then (error answer, broken stream).
    pub failed: usize,
    /// VmRSS before the streams.
    pub before_bytes: u64,
    /// VmRSS with them open.
    pub open_bytes: u64,
}

impl OpenStreams {
    /// (open − before) / open, in bytes.
    pub fn per_stream_bytes(&self) -> Option<f64> {
        (self.open > 0).then(|| (self.open_bytes as f64 - self.before_bytes as f64) / self.open as f64)
    }
}

/// Opens `streams` streams to `t` (served by process `pid`) at once; when every one has had its first chunk or
/// failed (or after `within`), reads the process's VmRSS, then drops them. The upstream must keep them open meanwhile
/// (a slow `stream_delay_ms`).
pub async fn memory(
    client: &reqwest::Client,
    t: &crate::load::Target,
    streams: usize,
    pid: u32,
    within: Duration,
) -> Option<OpenStreams> {
    let before = rss_bytes(pid)?;
    let opened = Arc::new(AtomicUsize::new(0));
    let failed = Arc::new(AtomicUsize::new(0));
    let mut tasks = tokio::task::JoinSet::new();
    for _ in 0..streams {
        let (client, t) = (client.clone(), t.clone());
        let (opened, failed) = (opened.clone(), failed.clone());
        tasks.spawn(async move {
            if one_inner(&client, &t, Some(&opened)).await.is_none() {
                failed.fetch_add(1, Ordering::SeqCst);
            }
        });
    }
    let deadline = Instant::now() + within;
    let settled = || opened.load(Ordering::SeqCst) + failed.load(Ordering::SeqCst);
    while settled() < streams && Instant::now() < deadline {
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    // Let what the first chunks started (buffers, timers) settle.
    tokio::time::sleep(Duration::from_millis(100)).await;
    let open = opened.load(Ordering::SeqCst);
    let failed = failed.load(Ordering::SeqCst);
    let open_bytes = rss_bytes(pid)?;
    tasks.abort_all();
    while tasks.join_next().await.is_some() {}
    Some(OpenStreams {
        streams,
        open,
        failed,
        before_bytes: before,
        open_bytes,
    })
}

/// The stream server of the stream part: `POST` with `"stream": true` answers an OpenAI chat completion stream
/// (a role event, then `chunks` content chunks `delay` apart, each `t=MICROS ` with its send time
/// ([`micros_now`]), a finish event, usage when `stream_options.include_usage` asks, `[DONE]`); without, a plain
/// completion; `GET` answers a model list. Stopped when dropped.
#[derive(Debug)]
pub struct Upstream {
    /// `http://127.0.0.1:PORT`.
    pub url: String,
    delay_us: Arc<AtomicU64>,
    task: tokio::task::JoinHandle<()>,
}

impl Upstream {
    /// Changes the pause between chunks of the streams that start from now on.
    pub fn set_delay(&self, d: Duration) {
        self.delay_us.store(d.as_micros() as u64, Ordering::SeqCst);
    }
}

impl Drop for Upstream {
    fn drop(&mut self) {
        self.task.abort();
    }
}

struct UpstreamState {
    chunks: usize,
    delay_us: Arc<AtomicU64>,
}

/// Starts [`Upstream`] on a free port of 127.0.0.1.
pub async fn upstream(chunks: usize, delay: Duration) -> std::io::Result<Upstream> {
    let delay_us = Arc::new(AtomicU64::new(delay.as_micros() as u64));
    let state = Arc::new(UpstreamState {
        chunks: chunks.max(1),
        delay_us: delay_us.clone(),
    });
    let app = axum::Router::new().fallback(serve_upstream).with_state(state);
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await?;
    let url = format!("http://{}", listener.local_addr()?);
    // Each chunk goes out when written, not after the client's delayed ACK.
    let listener = axum::serve::ListenerExt::tap_io(listener, |tcp| {
        let _ = tcp.set_nodelay(true);
    });
    let task = tokio::spawn(async move {
        let _ = axum::serve(listener, app).await;
    });
    Ok(Upstream { url, delay_us, task })
}

async fn serve_upstream(
    axum::extract::State(st): axum::extract::State<Arc<UpstreamState>>,
    method: axum::http::Method,
    body: bytes::Bytes,
) -> axum::response::Response {
    use axum::response::IntoResponse;
    if method != axum::http::Method::POST {
        return axum::Json(serde_json::json!({"object": "list",
            "data": [{"id": "gpt-4o-mini", "object": "model", "owned_by": "llm-benches"}]}))
        .into_response();
    }
    let req: serde_json::Value = serde_json::from_slice(&body).unwrap_or_default();
    let model = req["model"].as_str().unwrap_or("gpt-4o-mini").to_string();
    let usage = serde_json::json!({"prompt_tokens": 12, "completion_tokens": st.chunks, "total_tokens": 12 + st.chunks});
    if req["stream"].as_bool() != Some(true) {
        return axum::Json(
            serde_json::json!({"id": "chatcmpl-bench", "object": "chat.completion",
            "created": 1_796_000_000u64, "model": model,
            "choices": [{"index": 0, "message": {"role": "assistant", "content": "bench answer"},
                "logprobs": null, "finish_reason": "stop"}],
            "usage": usage}),
        )
        .into_response();
    }
    let with_usage = req["stream_options"]["include_usage"].as_bool() == Some(true);
    let (n, delay) = (
        st.chunks,
        Duration::from_micros(st.delay_us.load(Ordering::SeqCst)),
    );
    let start = Instant::now();
    let model_json = serde_json::Value::String(model.clone()).to_string();
    let content: Arc<(String, String)> = Arc::new((
        format!(
            "data: {{\"id\":\"chatcmpl-bench\",\"object\":\"chat.completion.chunk\",\"created\":1796000000,\
             \"model\":{model_json},\"choices\":[{{\"index\":0,\"delta\":{{\"content\":\"t="
        ),
        "\"},\"logprobs\":null,\"finish_reason\":null}]}\n\n".to_string(),
    ));
    let chunk = move |delta: serde_json::Value, finish: serde_json::Value| {
        let c = serde_json::json!({"id": "chatcmpl-bench", "object": "chat.completion.chunk",
            "created": 1_796_000_000u64, "model": model,
            "choices": [{"index": 0, "delta": delta, "logprobs": null, "finish_reason": finish}]});
        format!("data: {c}\n\n")
    };
    // Events: 0 role, 1..=n content (chunk i at start + i × delay), n + 1 finish, n + 2 usage, then [DONE].
    let events = futures::stream::unfold(0usize, move |i| {
        let (chunk, usage, content) = (chunk.clone(), usage.clone(), content.clone());
        async move {
            let text = match i {
                0 => chunk(
                    serde_json::json!({"role": "assistant", "content": ""}),
                    serde_json::Value::Null,
                ),
                i if i <= n => {
                    tokio::time::sleep_until(start + delay * i as u32).await;
                    // Rendered around the stamp, not through serde: at 1,000 streams this server runs beside
                    // the client on the load's CPUs, and should cost them little.
                    format!("{}{} {}", content.0, micros_now(), content.1)
                }
                i if i == n + 1 => chunk(serde_json::json!({}), serde_json::json!("stop")),
                i if i == n + 2 && with_usage => format!(
                    "data: {}\n\n",
                    serde_json::json!({"id": "chatcmpl-bench", "object": "chat.completion.chunk",
                        "created": 1_796_000_000u64, "model": "gpt-4o-mini", "choices": [], "usage": usage})
                ),
                i if i <= n + 3 => "data: [DONE]\n\n".to_string(),
                _ => return None,
            };
            Some((Ok::<_, std::convert::Infallible>(bytes::Bytes::from(text)), i + 1))
        }
    });
    // Without usage the usage slot (n + 2) says [DONE] and n + 3 would say it again: stop after the first.
    let events = futures::StreamExt::scan(events, false, |done, ev| {
        let out = if *done {
            None
        } else {
            if let Ok(b) = &ev {
                *done = b.starts_with(b"data: [DONE]");
            }
            Some(ev)
        };
        futures::future::ready(out)
    });
    axum::response::Response::builder()
        .header("content-type", "text/event-stream")
        .header("cache-control", "no-cache")
        .body(axum::body::Body::from_stream(events))
        .unwrap_or_else(|_| axum::http::StatusCode::INTERNAL_SERVER_ERROR.into_response())
}

#[cfg(test)]
mod tests {
    use super::*;

    const ROLE: &str =
        "data: {\"choices\":[{\"index\":0,\"delta\":{\"role\":\"assistant\",\"content\":\"\"}}]}\n\n";
    const HELLO: &str = "data: {\"choices\":[{\"index\":0,\"delta\":{\"content\":\"Hello \"}}]}\n\n";

    #[test]
    fn events_split_across_reads_count_once_when_they_end() {
        let mut p = SseParser::default();
        assert_eq!(
            p.feed(ROLE.as_bytes()),
            Events::default(),
            "a role-only event carries no content"
        );
        let (a, b) = HELLO.split_at(20);
        assert_eq!(p.feed(a.as_bytes()).chunks, 0);
        assert_eq!(p.feed(b.as_bytes()).chunks, 1);
        let two = format!("{HELLO}{HELLO}data: [DONE]\n\n");
        assert_eq!(
            p.feed(two.as_bytes()),
            Events {
                chunks: 2,
                done: true,
                error: false,
                stamps: vec![],
            }
        );
    }

    #[test]
    fn crlf_no_space_after_colon_and_comments_are_read() {
        let mut p = SseParser::default();
        let body = ": keep-alive\r\n\r\ndata:{\"choices\":[{\"delta\":{\"content\":\"x\"}}]}\r\n\r\ndata:[DONE]\r\n\r\n";
        assert_eq!(
            p.feed(body.as_bytes()),
            Events {
                chunks: 1,
                done: true,
                error: false,
                stamps: vec![],
            }
        );
        let tool = "data: {\"choices\":[{\"delta\":{\"tool_calls\":[{\"index\":0}]}}]}\n\n";
        assert_eq!(
            p.feed(tool.as_bytes()).chunks,
            1,
            "a tool-call fragment is a chunk too"
        );
    }

    #[test]
    fn error_events_garbage_and_endless_events_fail_the_stream() {
        let mut p = SseParser::default();
        assert!(
            p.feed(b"data: {\"error\":{\"message\":\"upstream died\"}}\n\n")
                .error
        );
        assert!(
            SseParser::default()
                .feed(b"data: {\"choices\":[{\"delta\":{\"content\":\"tru\n\n")
                .error
        );
        let mut p = SseParser::default();
        let big = vec![b'a'; MAX_EVENT_BYTES + 1];
        assert!(p.feed(&big).error);
        assert!(p.buf.is_empty(), "the buffer is let go");
    }

    #[test]
    fn stamps_are_read_from_the_start_of_the_content() {
        assert_eq!(parse_stamp("t=123456 "), Some(123456));
        assert_eq!(parse_stamp("t=42"), Some(42));
        assert_eq!(parse_stamp("t= 1"), None);
        assert_eq!(parse_stamp("hello t=1"), None);
        assert_eq!(
            parse_stamp("t=99999999999999999999999 "),
            None,
            "overflow is no stamp"
        );
        let mut p = SseParser::default();
        let ev = p.feed(b"data: {\"choices\":[{\"delta\":{\"content\":\"t=7 \"}}]}\n\ndata: {\"choices\":[{\"delta\":{\"content\":\"t=9 \"}}]}\n\n");
        assert_eq!((ev.chunks, ev.stamps), (2, vec![7, 9]));
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn the_upstream_streams_stamped_chunks_on_schedule_and_usage_when_asked() {
        let up = upstream(5, Duration::from_millis(2)).await.unwrap();
        let client = crate::load::client().unwrap();
        let t = crate::load::Target::chat_with(&up.url, "m", "hi", true);
        let tm = one(&client, &t, Duration::from_secs(10)).await.unwrap();
        assert_eq!((tm.gaps.len(), tm.latency.len()), (4, 4), "{tm:?}");
        assert!(
            tm.ttft >= Duration::from_millis(2),
            "the first chunk comes one delay in: {tm:?}"
        );
        assert!(tm.latency.iter().all(|l| *l < Duration::from_secs(1)), "{tm:?}");
        let body = |usage: bool| {
            let mut b = serde_json::json!({"model": "m", "stream": true, "messages": []});
            if usage {
                b["stream_options"] = serde_json::json!({"include_usage": true});
            }
            b
        };
        for usage in [false, true] {
            let text = client
                .post(format!("{}/v1/chat/completions", up.url))
                .json(&body(usage))
                .send()
                .await
                .unwrap()
                .text()
                .await
                .unwrap();
            let events: Vec<&str> = text.split("\n\n").filter(|e| !e.is_empty()).collect();
            assert_eq!(events.len(), 1 + 5 + 1 + usize::from(usage) + 1, "{text}");
            assert_eq!(*events.last().unwrap(), "data: [DONE]");
            assert_eq!(text.contains("\"usage\""), usage, "{text}");
            assert!(
                events[events.len() - 2 - usize::from(usage)].contains("\"finish_reason\":\"stop\""),
                "{text}"
            );
        }
        let plain: serde_json::Value = client
            .post(format!("{}/v1/chat/completions", up.url))
            .json(&serde_json::json!({"model": "m", "messages": []}))
            .send()
            .await
            .unwrap()
            .json()
            .await
            .unwrap();
        assert_eq!(plain["choices"][0]["message"]["content"], "bench answer");
        up.set_delay(Duration::from_millis(30));
        let tm = one(&client, &t, Duration::from_secs(10)).await.unwrap();
        assert!(tm.ttft >= Duration::from_millis(30), "{tm:?}");
    }

    /// An SSE server: `chunks` content events `gap` apart, then [DONE].
    async fn sse_server(chunks: usize, gap: Duration) -> String {
        use axum::response::sse::{Event, Sse};
        let app = axum::Router::new().fallback(move || async move {
            let s = futures::stream::unfold(0usize, move |i| async move {
                if i > chunks {
                    return None;
                }
                if i > 0 {
                    tokio::time::sleep(gap).await;
                }
                let data = if i == chunks {
                    "[DONE]".to_string()
                } else {
                    format!("{{\"choices\":[{{\"delta\":{{\"content\":\"w{i} \"}}}}]}}")
                };
                Some((
                    Ok::<_, std::convert::Infallible>(Event::default().data(data)),
                    i + 1,
                ))
            });
            Sse::new(s)
        });
        let l = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let url = format!("http://{}", l.local_addr().unwrap());
        tokio::spawn(async move { axum::serve(l, app).await });
        url
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn concurrent_streams_time_every_chunk_of_every_stream() {
        let url = sse_server(5, Duration::from_millis(2)).await;
        let client = crate::load::client().unwrap();
        let t = crate::load::Target::chat_with(&url, "m", "hi", true);
        let tm = one(&client, &t, Duration::from_secs(10)).await.unwrap();
        assert_eq!(tm.gaps.len(), 4, "5 chunks, 4 gaps: {tm:?}");
        let s = concurrent(
            &client,
            &t,
            4,
            Duration::from_millis(50),
            Duration::ZERO,
            Duration::from_secs(10),
        )
        .await;
        assert_eq!(s.ttft.errors, 0);
        assert!(
            s.ttft.len() >= 4,
            "each of the 4 workers ran a stream at least: {}",
            s.ttft.len()
        );
        assert_eq!(s.gaps.len(), s.ttft.len() * 4);
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn a_failing_target_counts_errors_and_memory_of_this_process_is_read() {
        let l = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        let url = format!("http://{}", l.local_addr().unwrap());
        drop(l);
        let client = crate::load::client().unwrap();
        let t = crate::load::Target::chat_with(&url, "m", "hi", true);
        let s = concurrent(
            &client,
            &t,
            2,
            Duration::from_millis(20),
            Duration::ZERO,
            Duration::from_secs(5),
        )
        .await;
        assert!(s.ttft.errors >= 2 && s.ttft.is_empty());
        // Streams that stay open (one chunk a second) hold the count while the memory is read.
        let url = sse_server(3, Duration::from_secs(1)).await;
        let t = crate::load::Target::chat_with(&url, "m", "hi", true);
        let m = memory(&client, &t, 3, std::process::id(), Duration::from_secs(5))
            .await
            .unwrap();
        assert_eq!((m.streams, m.open), (3, 3));
        assert!(m.before_bytes > 0 && m.open_bytes > 0);
        assert!(m.per_stream_bytes().is_some());
    }
}
