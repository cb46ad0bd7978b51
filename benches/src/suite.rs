//! The load benchmark's measurements: (a) overhead of the gateway against the fake directly and a bare
//! forwarder, with throughput ceilings and the gateway's peak memory; (b) fallback latency for each way the
//! primary can fail, against the backup's own latency; (c) offline-answer latency; (d) streams: time to first
//! token, time between chunks and memory per open stream. Peer gateways (`--peer`) get the same load in (a), (b)
//! and (d).

use crate::cpus::{self, CpuMode, Layout};
use crate::load::{self, Target};
use crate::peers::{self, Peer, PeerKind};
use crate::procs::{self, ProcError, Server};
use crate::stats::{Samples, Summary};
use crate::streams;
use llm_chaos::toxics::{ResetPeer, Timeout};
use llm_chaos::{NewProxy, NewToxic, ServerConfig, Stream, ToxicKind};
use serde::Serialize;
use std::time::Duration;

/// What to measure and for how long.
#[derive(Debug, Clone)]
pub struct Options {
    /// Arrival rates of the overhead runs, requests per second.
    pub rates: Vec<u32>,
    /// Length of each open-loop run.
    pub duration: Duration,
    /// The overhead runs are cut into slices this long, taken round-robin across the targets, so that the
    /// machine's drift (other processes, CPU frequency) falls alike on every target.
    pub slice: Duration,
    /// Which parts to run.
    pub parts: Vec<Part>,
    /// Length of each throughput-ceiling run.
    pub ceiling_duration: Duration,
    /// Requests in flight for the ceilings.
    pub concurrency: usize,
    /// Another OpenAI-compatible gateway to measure on the same fake (already pointed at it).
    pub peer_url: Option<String>,
    /// The model name to send to the peer.
    pub peer_model: String,
    /// The peer's process, pinned with the forwarder and the gateway when isolated.
    pub peer_pid: Option<u32>,
    /// The OpenAI fake's port in the overhead part (0: a free one), so a peer can be pointed at it beforehand.
    pub fake_port: u16,
    /// Arrival rate of the fallback runs.
    pub fallback_rate: u32,
    /// Length of each fallback run.
    pub fallback_duration: Duration,
    /// Whether the load and the server under test run on disjoint CPUs.
    pub cpus: CpuMode,
    /// Peer gateways to install, start and measure beside the gateway.
    pub peers: Vec<PeerKind>,
    /// Where the peers are installed.
    pub peers_dir: std::path::PathBuf,
    /// Numbers of concurrent streams of the stream part.
    pub stream_levels: Vec<usize>,
    /// How long each target is measured at each number of streams.
    pub stream_duration: Duration,
    /// At least this many streams per target at each number of streams (rounds are added to reach it).
    pub stream_min_streams: usize,
    /// The pause between the chunks of a stream (and before the first).
    pub stream_delay: Duration,
    /// Content chunks per stream.
    pub stream_chunks: usize,
    /// Print progress to stderr.
    pub progress: bool,
}

/// A part of the benchmark.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum Part {
    /// (a): added latency, throughput ceilings, memory.
    Overhead,
    /// (b): fallback latency per failure of the primary.
    Fallback,
    /// (c): offline-package answers.
    Offline,
    /// (d): streams: time to first token, between chunks, memory per open stream.
    Streams,
    /// (e): the same limits in memory and on Redis, beside (a)'s targets at (a)'s rates (runs (a) too). Left out,
    /// (a) measures direct, forwarder and gateway alone: a Redis gateway queueing above its ceiling would hold
    /// the CPUs the others' slices need.
    State,
}

/// Errors of a benchmark run.
#[derive(Debug, thiserror::Error)]
pub enum BenchError {
    /// A server could not be started.
    #[error(transparent)]
    Proc(#[from] ProcError),
    /// The HTTP client could not be built or a control call failed.
    #[error("http: {0}")]
    Http(#[from] reqwest::Error),
    /// The chaos proxy failed.
    #[error("chaos proxy: {0}")]
    Chaos(String),
}

/// One target at one rate.
#[derive(Debug, Clone, Serialize)]
pub struct RateRow {
    /// `direct`, `forwarder`, `gateway` or `peer`.
    pub target: String,
    /// Requests per second offered.
    pub rate: u32,
    /// Latencies.
    pub latency: Summary,
    /// Latencies of each round (slice) alone, in run order: a round's targets ran one after another within
    /// seconds, so the report can pair them (see `report::paired`).
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub rounds: Vec<Summary>,
    /// Why requests failed, counted (empty: none did).
    #[serde(skip_serializing_if = "std::collections::BTreeMap::is_empty")]
    pub error_reasons: std::collections::BTreeMap<String, u64>,
}

/// Everything measured.
#[derive(Debug, Clone, Serialize)]
pub struct Results {
    /// When the run started (RFC 3339).
    pub started: String,
    /// What machine it ran on.
    pub machine: String,
    /// Where the processes ran (`--cpus`).
    pub cpus: String,
    /// The machine's load averages (1, 5, 15 min, `/proc/loadavg`) at the start and at the end: other work on a
    /// shared machine shows here.
    pub load_average: Vec<String>,
    /// Open-loop latencies per target and rate.
    pub overhead: Vec<RateRow>,
    /// Closed-loop throughput ceilings, requests per second, per target.
    pub ceilings: Vec<(String, f64)>,
    /// The state-backend runs (`gateway-limits` on memory, `gateway-limits-redis` on Redis): where Redis ran,
    /// or why they were not measured.
    pub state_backend: Option<String>,
    /// The gateway's peak resident memory in bytes, after all overhead runs.
    pub gateway_peak_rss_bytes: Option<u64>,
    /// p50 of `llm_gateway_overhead_seconds` as the gateway reports it (upper bound of the bucket).
    pub gateway_overhead_metric_p50_s: Option<f64>,
    /// Fallback cases.
    pub fallback: Vec<FallbackRow>,
    /// An offline-package answer end to end (gateway in offline mode, the sample package).
    pub offline: Option<Summary>,
    /// The peers asked for, and whether each was measured.
    pub peers: Vec<PeerRow>,
    /// Each peer's fallback: its backup alone, and a refusing primary then the backup.
    pub peer_fallback: Vec<PeerFallbackRow>,
    /// The stream part's settings.
    pub stream_setup: Option<StreamSetup>,
    /// Streams per target and number of concurrent streams.
    pub streams: Vec<StreamRow>,
    /// Memory with streams open, per server and number of streams.
    pub stream_memory: Vec<MemoryRow>,
}

/// A peer and what became of it.
#[derive(Debug, Clone, Serialize)]
pub struct PeerRow {
    /// `tensorzero`, `portkey`, `litellm`.
    pub name: String,
    /// Registry and pinned version.
    pub package: String,
    /// The version installed, when it was.
    pub version: Option<String>,
    /// Why it was not measured (`None`: measured).
    pub failure: Option<String>,
}

/// One fallback case of a peer.
#[derive(Debug, Clone, Serialize)]
pub struct PeerFallbackRow {
    /// Which peer.
    pub peer: String,
    /// `backup alone` or `primary refuses connections`.
    pub case: String,
    /// Latencies.
    pub latency: Summary,
}

/// How the streams were made.
#[derive(Debug, Clone, Serialize)]
pub struct StreamSetup {
    /// The upstream's pause between chunks.
    pub delay_ms: u64,
    /// Content chunks per stream.
    pub chunks: usize,
}

/// One target at one number of concurrent streams.
#[derive(Debug, Clone, Serialize)]
pub struct StreamRow {
    /// `direct`, `forwarder`, `gateway` or a peer.
    pub target: String,
    /// Streams open at once.
    pub concurrency: usize,
    /// Time to first token, one sample per stream (errors: failed streams).
    pub ttft: Summary,
    /// Time between chunks.
    pub gap: Summary,
    /// Each chunk's latency after the first, from the upstream sending it to the client reading it.
    pub chunk_latency: Summary,
}

/// A server's memory with streams open.
#[derive(Debug, Clone, Serialize)]
pub struct MemoryRow {
    /// `gateway` or `forwarder`.
    pub target: String,
    /// The measurement.
    pub open: streams::OpenStreams,
    /// (VmRSS open − before) / streams open, bytes.
    pub per_stream_bytes: Option<f64>,
}

impl Results {
    /// Nothing measured yet.
    pub fn new(started: String, machine: String, cpus: String) -> Results {
        Results {
            started,
            machine,
            cpus,
            load_average: Vec::new(),
            overhead: Vec::new(),
            ceilings: Vec::new(),
            state_backend: None,
            gateway_peak_rss_bytes: None,
            gateway_overhead_metric_p50_s: None,
            fallback: Vec::new(),
            offline: None,
            peers: Vec::new(),
            peer_fallback: Vec::new(),
            stream_setup: None,
            streams: Vec::new(),
            stream_memory: Vec::new(),
        }
    }
}

/// One fallback case.
#[derive(Debug, Clone, Serialize)]
pub struct FallbackRow {
    /// What the primary does.
    pub case: String,
    /// Latencies through the gateway.
    pub latency: Summary,
}

fn say(o: &Options, msg: &str) {
    if o.progress {
        eprintln!("[llm-benches] {msg}");
    }
}

/// The gateway config: one or two providers, `{PORT}` for the listen port.
fn gateway_config(openai_base: &str, kimi_base: Option<&str>, attempt_timeout: &str) -> String {
    let kimi = kimi_base
        .map(|k| {
            format!("  kimi: {{ kind: kimi, base_url: \"{k}/v1\", secret: {{ value: sk-bench-kimi }} }}\n")
        })
        .unwrap_or_default();
    let order = if kimi_base.is_some() {
        "[openai, kimi]"
    } else {
        "[openai]"
    };
    let models = if kimi_base.is_some() {
        "{ openai: gpt-4o-mini, kimi: moonshot-v1-8k }"
    } else {
        "{ openai: gpt-4o-mini }"
    };
    format!(
        "server: {{ listen: \"127.0.0.1:{{PORT}}\", body_limit_bytes: 1048576, shutdown_grace: 1s }}\n\
         mode: remote\n\
         models:\n  default: {models}\n\
         providers:\n  openai: {{ kind: openai, base_url: \"{openai_base}/v1\", secret: {{ value: sk-bench-openai }} }}\n{kimi}\
         fallback_policy:\n  order: {order}\n  deadline: 30s\n  connect_timeout: 500ms\n  first_token_timeout: {attempt_timeout}\n\
         \x20 stall_timeout: {attempt_timeout}\n  attempt_timeout: {attempt_timeout}\n\
         \x20 retries: {{ max_retries: 1, backoff_base: 1ms, backoff_max: 5ms, budget_ratio: 0.2, budget_min_per_second: 2 }}\n\
         \x20 breaker: {{ window: 30s, min_requests: 5, failure_ratio: 0.5, open_for: 60s }}\n\
         \x20 cooldowns: {{ rate_limited: 5s, rate_limited_max: 60s, quota_exhausted: 10m, auth: 60s }}\n"
    )
}

/// The client key the state-backend runs send.
const BENCH_CLIENT_KEY: &str = "sk-bench-client-key";

/// [`gateway_config`] with a client key and an openai budget (limits far above any rate here, so every request
/// is counted and none refused), on `redis` when given, else in memory.
fn limited_config(openai_base: &str, redis: Option<&str>) -> String {
    let huge = "requests_per_minute: 100000000, tokens_per_minute: 1000000000000";
    let base = gateway_config(openai_base, None, "5s").replace(
        "secret: { value: sk-bench-openai } }",
        &format!(
            "secret: {{ value: sk-bench-openai }}, limits: {{ {huge}, tokens_per_day: 1000000000000 }} }}"
        ),
    );
    let state = redis
        .map(|url| format!("state:\n  backend: redis\n  redis: {{ url: \"{url}\", key_prefix: \"bench:\", timeout: 100ms }}\n"))
        .unwrap_or_default();
    format!("{base}limits:\n  clients:\n    - {{ name: bench, key: {{ value: {BENCH_CLIENT_KEY} }}, {huge} }}\n{state}")
}

/// p50 of a Prometheus histogram in a /metrics text: the upper bound of the bucket holding the median.
pub fn histogram_p50(metrics: &str, name: &str) -> Option<f64> {
    let mut buckets: Vec<(f64, f64)> = metrics
        .lines()
        .filter(|l| l.starts_with(&format!("{name}_bucket{{")))
        .filter_map(|l| {
            let le = l.split("le=\"").nth(1)?.split('"').next()?;
            let le = if le == "+Inf" {
                f64::INFINITY
            } else {
                le.parse().ok()?
            };
            let v: f64 = l.rsplit(' ').next()?.parse().ok()?;
            Some((le, v))
        })
        .collect();
    buckets.sort_by(|a, b| a.0.total_cmp(&b.0));
    let total = buckets.last()?.1;
    if total <= 0.0 {
        return None;
    }
    buckets.iter().find(|(_, c)| *c >= total / 2.0).map(|(le, _)| *le)
}

/// A target for a peer's route.
fn peer_target(p: &Peer, route: &peers::Route, prompt: &str, stream: bool) -> Target {
    let mut t = Target::chat_with(&p.routes.base, &route.model, prompt, stream);
    for (k, v) in &route.headers {
        t = t.with_header(k, v);
    }
    t
}

/// (a): direct, forwarder, gateway (and peers) at each rate, all on the OpenAI fake at `fake`; ceilings;
/// gateway memory and overhead metric.
async fn overhead(
    o: &Options,
    place: &Placement,
    fake: &str,
    running: &[Peer],
    r: &mut Results,
) -> Result<(), BenchError> {
    let fake = fake.to_string();
    let fwd = place.forwarder(&fake).await?;
    let gw = place.gateway(&gateway_config(&fake, None, "5s")).await?;
    let client = load::client()?;
    let prompt = "Сделай SQL-фильтр по продажам";
    let mut targets = vec![
        ("direct", Target::chat(&fake, "gpt-4o-mini", prompt)),
        ("forwarder", Target::chat(fwd.url(), "gpt-4o-mini", prompt)),
        ("gateway", Target::chat(gw.url(), "default", prompt)),
    ];
    // The same limits kept in memory and on Redis: what sharing them across replicas adds.
    let (state_gws, redis) = if o.parts.contains(&Part::State) {
        state_backends(o, place, &fake, r).await?
    } else {
        (Vec::new(), None)
    };
    for (name, g) in &state_gws {
        let bearer = format!("Bearer {BENCH_CLIENT_KEY}");
        targets.push((
            name,
            Target::chat(g.url(), "default", prompt).with_header("authorization", &bearer),
        ));
    }
    if let Some(peer) = &o.peer_url {
        if let Some(pid) = o.peer_pid {
            place.pin(pid, "the peer")?;
        }
        targets.push(("peer", Target::chat(peer, &o.peer_model, prompt)));
    }
    for p in running {
        targets.push((p.kind.name(), peer_target(p, &p.routes.main, prompt, false)));
    }
    for (name, t) in &targets {
        say(o, &format!("warming up {name}"));
        load::open_loop(&client, t, 500, Duration::from_secs(1)).await;
    }
    let slice = o.slice.clamp(
        Duration::from_millis(100),
        o.duration.max(Duration::from_millis(100)),
    );
    let rounds = (o.duration.as_secs_f64() / slice.as_secs_f64()).round().max(1.0) as u32;
    for &rate in &o.rates {
        let names: Vec<&str> = targets.iter().map(|(n, _)| *n).collect();
        say(
            o,
            &format!(
                "{rate} requests/s for {:?} each to {}, in {rounds} rounds of {slice:?}",
                o.duration,
                names.join(", ")
            ),
        );
        let mut merged = vec![Samples::default(); targets.len()];
        let mut by_round = vec![Vec::new(); targets.len()];
        for _ in 0..rounds {
            for ((_, t), (m, each)) in targets.iter().zip(merged.iter_mut().zip(&mut by_round)) {
                let one = load::open_loop(&client, t, rate, slice).await;
                each.push(one.summary());
                m.merge(one);
            }
        }
        for (((name, _), m), rounds) in targets.iter().zip(merged).zip(by_round) {
            r.overhead.push(RateRow {
                target: name.to_string(),
                rate,
                latency: m.summary(),
                rounds,
                error_reasons: m.reasons,
            });
        }
    }
    r.gateway_peak_rss_bytes = gw.peak_rss_bytes();
    let metrics = client
        .get(format!("{}/metrics", gw.url()))
        .send()
        .await?
        .text()
        .await?;
    r.gateway_overhead_metric_p50_s = histogram_p50(&metrics, "llm_gateway_overhead_seconds");
    for (name, t) in &targets {
        say(
            o,
            &format!("{name}: throughput ceiling with {} in flight", o.concurrency),
        );
        let c = load::ceiling(&client, t, o.concurrency, o.ceiling_duration).await;
        r.ceilings.push((name.to_string(), c));
    }
    drop((gw, fwd, state_gws, redis));
    Ok(())
}

/// The gateways of the state-backend runs: limits in memory, and the same on a redis-server started here (on
/// the load's CPUs, as a server of its own, without persistence). Without redis-server only the first, and
/// `r.state_backend` says why.
async fn state_backends(
    o: &Options,
    place: &Placement,
    fake: &str,
    r: &mut Results,
) -> Result<
    (
        Vec<(&'static str, Server)>,
        Option<llm_mocks::testing::RedisServer>,
    ),
    BenchError,
> {
    let mut gws = vec![(
        "gateway-limits",
        place.gateway(&limited_config(fake, None)).await?,
    )];
    let redis = match llm_mocks::testing::RedisServer::start().await {
        Ok(Some(redis)) => redis,
        Ok(None) => {
            r.state_backend = Some("Redis not measured: redis-server is not on PATH".into());
            return Ok((gws, None));
        }
        Err(e) => {
            r.state_backend = Some(format!("Redis not measured: {e}"));
            return Ok((gws, None));
        }
    };
    say(o, &format!("redis-server answers at {}", redis.url()));
    let g = place.gateway(&limited_config(fake, Some(&redis.url()))).await?;
    gws.push(("gateway-limits-redis", g));
    r.state_backend = Some(format!(
        "redis-server at {} on the load's CPUs, no persistence; both gateways hold a client key and an openai \
         budget far above these rates (every request is counted: GCRA + tokens window + budget + breaker)",
        redis.addr()
    ));
    Ok((gws, Some(redis)))
}

/// How the primary fails in a fallback case.
#[derive(Debug, Clone, Copy)]
enum Failure {
    None,
    Refused,
    Reset,
    BlackHoleCold,
    BlackHoleOpen,
    Quota,
    ServerError,
}

impl Failure {
    fn name(self) -> &'static str {
        match self {
            Failure::None => "backup alone (primary skipped by X-LLM-Provider)",
            Failure::Refused => "primary refuses connections",
            Failure::Reset => "primary resets connections",
            Failure::BlackHoleCold => "primary black-holed, breaker cold (first 6 requests)",
            Failure::BlackHoleOpen => "primary black-holed, breaker open",
            Failure::Quota => "primary quota exhausted (429)",
            Failure::ServerError => "primary 5xx",
        }
    }
}

/// (b): each failure of the primary on a fresh gateway, against the backup's own latency; then each peer's
/// backup alone and refusing primary.
async fn fallback(
    o: &Options,
    place: &Placement,
    running: &[Peer],
    r: &mut Results,
) -> Result<(), BenchError> {
    let fakes = procs::fakes(&[("openai", 0), ("kimi", 0)]).await?;
    let openai = fakes.url_of("openai").unwrap_or_default().to_string();
    let kimi = fakes.url_of("kimi").unwrap_or_default().to_string();
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
        .await
        .map_err(|e| BenchError::Chaos(e.to_string()))?;
    let chaos = llm_chaos::Server::start(listener, ServerConfig::default())
        .map_err(|e| BenchError::Chaos(e.to_string()))?;
    let cc = chaos.client().map_err(|e| BenchError::Chaos(e.to_string()))?;
    let upstream = openai.trim_start_matches("http://").to_string();
    let proxy = cc
        .create_proxy(&NewProxy::new("openai", "127.0.0.1:0", upstream))
        .await
        .map_err(|e| BenchError::Chaos(e.to_string()))?;
    let proxied = format!("http://{}", proxy.listen);
    let http = load::client()?;
    let cases = [
        Failure::None,
        Failure::Refused,
        Failure::Reset,
        Failure::BlackHoleCold,
        Failure::BlackHoleOpen,
        Failure::Quota,
        Failure::ServerError,
    ];
    for case in cases {
        say(o, &format!("fallback: {}", case.name()));
        cc.reset().await.map_err(|e| BenchError::Chaos(e.to_string()))?;
        for root in [&openai, &kimi] {
            http.post(format!("{root}/__mock/reset")).send().await?;
        }
        let gw: Server = place
            .gateway(&gateway_config(&proxied, Some(&kimi), "1s"))
            .await?;
        let mut t = Target::chat(gw.url(), "default", "fallback latency");
        let chaos_err = |e: llm_chaos::ClientError| BenchError::Chaos(e.to_string());
        match case {
            Failure::None => t = t.with_header("x-llm-provider", "kimi"),
            Failure::Refused => {
                cc.disable("openai").await.map_err(chaos_err)?;
            }
            Failure::Reset => {
                let mut tox = NewToxic::new(ToxicKind::ResetPeer(ResetPeer { timeout: 0 }));
                tox.stream = Some(Stream::Upstream);
                cc.add_toxic("openai", &tox).await.map_err(chaos_err)?;
            }
            Failure::BlackHoleCold | Failure::BlackHoleOpen => {
                let mut tox = NewToxic::new(ToxicKind::Timeout(Timeout { timeout: 0 }));
                tox.stream = Some(Stream::Upstream);
                cc.add_toxic("openai", &tox).await.map_err(chaos_err)?;
            }
            Failure::Quota | Failure::ServerError => {
                let fault = if matches!(case, Failure::Quota) {
                    "quota_exhausted"
                } else {
                    "server_error"
                };
                http.post(format!("{openai}/__mock/faults"))
                    .json(&serde_json::json!({"fault": fault}))
                    .send()
                    .await?;
            }
        }
        let summary = match case {
            Failure::BlackHoleCold => {
                let mut s = crate::stats::Samples::default();
                for d in load::sequential(&http, &t, 6, Duration::ZERO).await {
                    match d {
                        Some(d) => s.record(d),
                        None => s.errors += 1,
                    }
                }
                s.summary()
            }
            Failure::BlackHoleOpen => {
                // Open the breaker first (min_requests failures), then measure.
                load::sequential(&http, &t, 6, Duration::ZERO).await;
                load::open_loop(&http, &t, o.fallback_rate, o.fallback_duration)
                    .await
                    .summary()
            }
            _ => load::open_loop(&http, &t, o.fallback_rate, o.fallback_duration)
                .await
                .summary(),
        };
        r.fallback.push(FallbackRow {
            case: case.name().to_string(),
            latency: summary,
        });
        drop(gw);
    }
    chaos.shutdown().await;
    for p in running.iter().filter(|p| p.kind.has_fallback()) {
        for (case, route) in [
            ("backup alone", &p.routes.backup_alone),
            ("primary refuses connections", &p.routes.fallback),
        ] {
            say(o, &format!("fallback: {}, {case}", p.kind.name()));
            let t = peer_target(p, route, "fallback latency", false);
            let latency = load::open_loop(&http, &t, o.fallback_rate, o.fallback_duration)
                .await
                .summary();
            r.peer_fallback.push(PeerFallbackRow {
                peer: p.kind.name().to_string(),
                case: case.to_string(),
                latency,
            });
        }
    }
    Ok(())
}

/// (c): a prompt of the sample offline package answered by a gateway in offline mode.
async fn offline(o: &Options, place: &Placement, r: &mut Results) -> Result<(), BenchError> {
    // The sample package: under the working directory (the repository root), else in the source tree this
    // binary was built from.
    let candidates = [
        std::env::current_dir().unwrap_or_default().join("config/offline"),
        std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../config/offline"),
    ];
    let Some(packages) = candidates.iter().find(|p| p.is_dir()) else {
        return Err(BenchError::Proc(ProcError::NotReady(format!(
            "the sample offline package is not at {} nor at {}: run llm-benches from the repository root",
            candidates[0].display(),
            candidates[1].display()
        ))));
    };
    let fakes = procs::fakes(&[("openai", 0)]).await?;
    let fake = fakes.url_of("openai").unwrap_or_default().to_string();
    let config = gateway_config(&fake, None, "5s").replace("mode: remote", "mode: offline")
        + &format!("offline:\n  packages: [\"{}\"]\n", packages.display());
    let gw = place.gateway(&config).await?;
    let http = load::client()?;
    let t = Target::chat(gw.url(), "default", "Сделай SQL-фильтр по продажам");
    say(o, "offline-package answers");
    load::open_loop(&http, &t, 200, Duration::from_secs(1)).await;
    let s = load::open_loop(&http, &t, o.fallback_rate.max(500), o.fallback_duration)
        .await
        .summary();
    r.offline = Some(s);
    Ok(())
}

/// The stream part's forwarder that holds a stream's head until its first token (`--hold-to-first-token`).
pub const HELD_FORWARDER: &str = "forwarder-held";

/// The pause between chunks while the memory of open streams is read: long enough that every stream is still
/// open when the last one has started.
const MEMORY_STREAM_DELAY: Duration = Duration::from_secs(1);

/// (d): streams from the stamping upstream ([`streams::upstream`]) through each target at each number of
/// concurrent streams, round-robin as in (a); then the gateway's (and the forwarder's) memory per open stream,
/// each number of streams on a fresh server.
async fn streams_part(
    o: &Options,
    place: &Placement,
    up: &streams::Upstream,
    running: &[Peer],
    r: &mut Results,
) -> Result<(), BenchError> {
    let src = up.url.as_str();
    up.set_delay(o.stream_delay);
    let config = gateway_config(src, None, "20s");
    let fwd = place.forwarder(src).await?;
    let held = place.forwarder_with(src, true).await?;
    let gw = place.gateway(&config).await?;
    let prompt = "Сделай SQL-фильтр по продажам и объясни каждый шаг";
    let mut targets = vec![
        (
            "direct".to_string(),
            Target::chat_with(src, "gpt-4o-mini", prompt, true),
        ),
        (
            "forwarder".to_string(),
            Target::chat_with(fwd.url(), "gpt-4o-mini", prompt, true),
        ),
        (
            HELD_FORWARDER.to_string(),
            Target::chat_with(held.url(), "gpt-4o-mini", prompt, true),
        ),
        (
            "gateway".to_string(),
            Target::chat_with(gw.url(), "default", prompt, true),
        ),
    ];
    for p in running {
        targets.push((
            p.kind.name().to_string(),
            peer_target(p, &p.routes.stream, prompt, true),
        ));
    }
    let limit = Duration::from_secs(30);
    let chunks = o.stream_chunks.max(1);
    let length = o.stream_delay * chunks as u32;
    r.stream_setup = Some(StreamSetup {
        delay_ms: o.stream_delay.as_millis() as u64,
        chunks,
    });
    // Slices of at least two stream lengths, so each worker finishes a stream or more in each.
    let slice = o.slice.max(length * 2);
    let by_duration = (o.stream_duration.as_secs_f64() / slice.as_secs_f64())
        .round()
        .max(1.0) as u32;
    for &level in &o.stream_levels {
        let rounds = by_duration.max(rounds_for(o.stream_min_streams, level, slice, length));
        let client = load::client()?;
        for (name, t) in &targets {
            say(o, &format!("streams: warming up {name} with {level} streams"));
            streams::concurrent(&client, t, level, length, length, limit).await;
        }
        say(
            o,
            &format!(
                "streams: {level} at once, {chunks} chunks {:?} apart, {rounds} rounds of {slice:?} per target",
                o.stream_delay
            ),
        );
        let mut merged = vec![streams::StreamSamples::default(); targets.len()];
        for _ in 0..rounds {
            for ((_, t), m) in targets.iter().zip(&mut merged) {
                m.merge(streams::concurrent(&client, t, level, slice, length, limit).await);
            }
        }
        for ((name, _), m) in targets.iter().zip(merged) {
            r.streams.push(StreamRow {
                target: name.clone(),
                concurrency: level,
                ttft: m.ttft.summary(),
                gap: m.gaps.summary(),
                chunk_latency: m.latency.summary(),
            });
        }
    }
    drop((gw, fwd, held));
    // Memory: slow streams, so that all are open at once.
    up.set_delay(MEMORY_STREAM_DELAY);
    for &level in &o.stream_levels {
        for name in ["forwarder", "gateway"] {
            say(o, &format!("streams: {name} memory with {level} open"));
            let server = if name == "gateway" {
                place.gateway(&config).await?
            } else {
                place.forwarder(src).await?
            };
            let model = if name == "gateway" {
                "default"
            } else {
                "gpt-4o-mini"
            };
            let client = load::client()?;
            // Warm: the first requests set up what every request then shares.
            load::sequential(
                &client,
                &Target::chat(server.url(), model, prompt),
                3,
                Duration::ZERO,
            )
            .await;
            let t = Target::chat_with(server.url(), model, prompt, true);
            if let Some(m) = streams::memory(&client, &t, level, server.pid(), Duration::from_secs(30)).await
            {
                r.stream_memory.push(MemoryRow {
                    target: name.to_string(),
                    per_stream_bytes: m.per_stream_bytes(),
                    open: m,
                });
            }
        }
    }
    up.set_delay(o.stream_delay);
    Ok(())
}

/// Rounds of `slice` that give at least `streams` streams of `length` with `level` open at once (each worker
/// ends as many whole streams as fit in a slice, at least one).
fn rounds_for(streams: usize, level: usize, slice: Duration, length: Duration) -> u32 {
    let per_worker = (slice.as_secs_f64() / length.as_secs_f64().max(1e-9))
        .floor()
        .max(1.0);
    let per_round = per_worker * level.max(1) as f64;
    (streams as f64 / per_round).ceil().max(1.0) as u32
}

/// Installs and starts the peers against `u`, pinned with the servers under test; one that fails is reported
/// in `r.peers` with the reason, and the others go on.
async fn start_peers(o: &Options, place: &Placement, u: &peers::Upstreams, r: &mut Results) -> Vec<Peer> {
    let mut kinds = o.peers.clone();
    kinds.sort_unstable();
    kinds.dedup();
    let mut running = Vec::new();
    let http = load::client().ok();
    for kind in kinds {
        say(
            o,
            &format!(
                "peer {}: installing {} under {} (once) and starting it",
                kind.name(),
                kind.package(),
                o.peers_dir.display()
            ),
        );
        let mut row = PeerRow {
            name: kind.name().to_string(),
            package: kind.package(),
            version: None,
            failure: None,
        };
        let started = match peers::install(kind, &o.peers_dir).await {
            Ok(v) => {
                row.version = Some(v.clone());
                peers::start(kind, &o.peers_dir, v, u).await
            }
            Err(e) => Err(e),
        };
        match started {
            Ok(p) => {
                let pinned = p
                    .pids()
                    .into_iter()
                    .try_for_each(|pid| place.pin(pid, &format!("the peer {}", kind.name())));
                let answered = match &http {
                    Some(h) => check(h, &peer_target(&p, &p.routes.main, "hi", false)).await,
                    None => Err("no HTTP client".into()),
                };
                match (pinned, answered) {
                    (Err(e), _) => row.failure = Some(e.to_string()),
                    (_, Err(e)) => row.failure = Some(format!("{e}; log: {}", p.log_tail())),
                    (Ok(()), Ok(())) => running.push(p),
                }
            }
            Err(e) => row.failure = Some(e.to_string()),
        }
        if let Some(f) = &row.failure {
            say(o, &format!("peer {}: not measured: {f}", kind.name()));
        }
        r.peers.push(row);
    }
    running
}

/// One request that must succeed before a peer is measured.
async fn check(http: &reqwest::Client, t: &Target) -> Result<(), String> {
    let mut rb = http
        .post(&t.url)
        .header("content-type", "application/json")
        .body(t.body.clone());
    for (k, v) in &t.headers {
        rb = rb.header(k, v);
    }
    let resp = rb
        .send()
        .await
        .map_err(|e| format!("first request failed: {e}"))?;
    let status = resp.status();
    let body = resp.text().await.unwrap_or_default();
    if !status.is_success() {
        let head: String = body.chars().take(300).collect();
        return Err(format!("first request answered {status}: {head}"));
    }
    Ok(())
}

/// Runs every measurement.
pub async fn run(o: &Options) -> Result<Results, BenchError> {
    // The machine before pinning: afterwards this process sees only the load's CPUs.
    let machine = machine();
    let place = Placement::new(o.cpus);
    say(o, &place.describe);
    let mut r = Results::new(
        humantime::format_rfc3339_seconds(std::time::SystemTime::now()).to_string(),
        machine,
        place.describe.clone(),
    );
    r.load_average.extend(load_average());
    let has = |p: Part| o.parts.contains(&p);
    let with_peers =
        !o.peers.is_empty() && (has(Part::Overhead) || has(Part::Fallback) || has(Part::Streams));
    // The OpenAI fake of (a), which the peers are pointed at too.
    let main_fake = if has(Part::Overhead) || has(Part::State) || with_peers {
        let f = procs::fakes(&[("openai", o.fake_port)]).await?;
        say(o, &format!("the OpenAI fake answers at {}/v1", f.url()));
        Some(f)
    } else {
        None
    };
    let fake = main_fake
        .as_ref()
        .map(|f| f.url().to_string())
        .unwrap_or_default();
    let mut running = Vec::new();
    let mut backup = None;
    // The stream part's upstream, in this process (on the load's CPUs).
    let stream_up = if has(Part::Streams) {
        let up = streams::upstream(o.stream_chunks, o.stream_delay)
            .await
            .map_err(|source| ProcError::Io {
                what: "starting the stream upstream".into(),
                source,
            })?;
        Some(up)
    } else {
        None
    };
    if with_peers {
        let b = procs::fakes(&[("openai", 0)]).await?;
        let u = peers::Upstreams {
            primary: fake.clone(),
            refused: format!("http://127.0.0.1:{}", procs::free_port()?),
            backup: b.url().to_string(),
            streams: stream_up
                .as_ref()
                .map(|u| u.url.clone())
                .unwrap_or_else(|| fake.clone()),
        };
        backup = Some(b);
        running = start_peers(o, &place, &u, &mut r).await;
    }
    if has(Part::Overhead) || has(Part::State) {
        overhead(o, &place, &fake, &running, &mut r).await?;
    }
    if has(Part::Fallback) {
        fallback(o, &place, &running, &mut r).await?;
    }
    if has(Part::Offline) {
        offline(o, &place, &mut r).await?;
    }
    if let Some(up) = &stream_up {
        streams_part(o, &place, up, &running, &mut r).await?;
    }
    for p in running {
        say(o, &format!("stopping {}", p.kind.name()));
        drop(p);
    }
    drop((backup, main_fake));
    r.load_average.extend(load_average());
    Ok(r)
}

/// Where the servers under test go (`--cpus`).
struct Placement {
    /// The target's CPUs when isolated.
    target: Option<Vec<usize>>,
    /// For the report.
    describe: String,
}

impl Placement {
    /// Isolated: pins this process (the generator, the chaos proxy, and the fakes it will start) to the load
    /// CPUs. With fewer than 2 CPUs, off Linux, or where pinning this process is refused, it runs shared and
    /// says why.
    fn new(mode: CpuMode) -> Placement {
        let shared = |why: &str| Placement {
            target: None,
            describe: format!("shared: every process on every CPU{why}"),
        };
        if mode == CpuMode::Shared {
            return shared("");
        }
        let available = match cpus::available() {
            Ok(a) => a,
            Err(e) => return shared(&format!(" (cannot read this process's CPUs: {e})")),
        };
        let Some((layout, note)) = Layout::choose(&available, &cpus::cores(&available)) else {
            return shared(&format!(
                " (isolation needs 2 CPUs, {} available)",
                available.len()
            ));
        };
        if let Err(e) = cpus::pin(std::process::id(), &layout.load) {
            // A container may forbid it: measure anyway (threads pinned before the refusal are let go again),
            // and say so in the report.
            let _ = cpus::pin(std::process::id(), &available);
            return shared(&format!(" (pinning refused: {e})"));
        }
        Placement {
            describe: format!("isolated: {}{note}", layout.describe()),
            target: Some(layout.target),
        }
    }

    /// Runtime threads for a server under test: one per target CPU (it starts on the load's CPUs and is moved).
    fn workers(&self) -> Option<usize> {
        self.target.as_ref().map(Vec::len)
    }

    /// Starts a gateway (`procs::gateway`) on the target's CPUs.
    async fn gateway(&self, config: &str) -> Result<Server, BenchError> {
        let server = procs::gateway(config, self.workers()).await?;
        self.pin(server.pid(), &format!("the gateway at {}", server.url()))?;
        Ok(server)
    }

    /// Starts the bare forwarder in front of `upstream` on the target's CPUs.
    async fn forwarder(&self, upstream: &str) -> Result<Server, BenchError> {
        self.forwarder_with(upstream, false).await
    }

    /// The same, holding a stream's head until its first token when `hold` (`--hold-to-first-token`).
    async fn forwarder_with(&self, upstream: &str, hold: bool) -> Result<Server, BenchError> {
        let server = procs::forwarder(upstream, self.workers(), hold).await?;
        self.pin(server.pid(), &format!("the forwarder at {}", server.url()))?;
        Ok(server)
    }

    /// Moves process `pid` (`what`, for the error) to the target's CPUs when isolated.
    fn pin(&self, pid: u32, what: &str) -> Result<(), BenchError> {
        if let Some(cpus) = &self.target {
            cpus::pin(pid, cpus).map_err(|source| ProcError::Io {
                what: format!("pinning {what} (pid {pid}) to CPU {cpus:?}"),
                source,
            })?;
        }
        Ok(())
    }
}

/// `/proc/loadavg`'s three load averages.
fn load_average() -> Option<String> {
    let text = std::fs::read_to_string("/proc/loadavg").ok()?;
    Some(text.split_whitespace().take(3).collect::<Vec<_>>().join(" "))
}

fn machine() -> String {
    let cpus = std::thread::available_parallelism().map(|n| n.get()).unwrap_or(0);
    let model = std::fs::read_to_string("/proc/cpuinfo")
        .ok()
        .and_then(|c| {
            c.lines()
                .find(|l| l.starts_with("model name"))
                .and_then(|l| l.split(':').nth(1))
                .map(|s| s.trim().to_string())
        })
        .unwrap_or_else(|| "unknown CPU".into());
    let mem = std::fs::read_to_string("/proc/meminfo")
        .ok()
        .and_then(|m| {
            m.lines()
                .next()
                .and_then(|l| l.split_whitespace().nth(1))
                .and_then(|k| k.parse::<u64>().ok())
        })
        .map(|kb| format!("{:.0} GiB", kb as f64 / 1024.0 / 1024.0))
        .unwrap_or_default();
    format!("{cpus} cores ({model}), {mem}")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn stream_rounds_reach_the_minimum_number_of_streams() {
        let (slice, length) = (Duration::from_millis(3200), Duration::from_millis(1600));
        // 10 workers ending 2 streams each per round: 200 streams take 10 rounds; 100 or 1,000 workers one.
        assert_eq!(rounds_for(200, 10, slice, length), 10);
        assert_eq!(rounds_for(200, 100, slice, length), 1);
        assert_eq!(rounds_for(200, 1000, slice, length), 1);
        assert_eq!(rounds_for(201, 10, slice, length), 11);
        // No minimum, or a stream longer than the slice: one round at least, one stream per worker.
        assert_eq!(rounds_for(0, 10, slice, length), 1);
        assert_eq!(rounds_for(30, 10, length, slice), 3);
    }

    #[test]
    fn histogram_p50_picks_the_median_bucket() {
        let m = "x_bucket{le=\"0.001\"} 2\nx_bucket{le=\"0.01\"} 8\nx_bucket{le=\"+Inf\"} 10\nx_sum 1\nx_count 10\n";
        assert_eq!(histogram_p50(m, "x"), Some(0.01));
        assert_eq!(histogram_p50("", "x"), None);
    }

    #[test]
    #[allow(clippy::unwrap_used)]
    fn the_state_backend_configs_are_the_same_limits_on_memory_and_redis() {
        let env = |_: &str| None;
        let parse = |redis: Option<&str>| {
            let yaml = limited_config("http://127.0.0.1:9", redis).replace("{PORT}", "0");
            llm_gateway::config::Config::from_yaml(&yaml, &env).unwrap()
        };
        let (mem, shared) = (parse(None), parse(Some("redis://127.0.0.1:6390")));
        for c in [&mem, &shared] {
            assert_eq!(c.clients.len(), 1);
            assert_eq!(c.clients[0].requests_per_minute, Some(100_000_000));
            assert_eq!(
                c.providers["openai"].limits.requests_per_minute,
                Some(100_000_000)
            );
        }
        assert_eq!(mem.state.backend, llm_gateway::config::StateBackendKind::Memory);
        assert_eq!(shared.state.backend, llm_gateway::config::StateBackendKind::Redis);
    }
}
