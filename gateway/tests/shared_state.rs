//! `state.backend: redis`: several gateways (each an `AppState` with its own listener on port 0, in this process)
//! share one real `redis-server` started by the test (a free port, no persistence). Limits hold across all of
//! them: the admitted count stays within the configured limit, not N times it.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod common;

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use llm_gateway::AppState;
use llm_mocks::testing::RedisServer;
use llm_mocks::{FakeServer, FaultKind, FaultSpec, Provider};
use serde_json::Value;
use tokio::time::Instant;

const KEY: &str = "team-key-123456";

/// A real redis-server, or `None` (skip, with a note) where it is missing outside CI.
async fn redis() -> Option<RedisServer> {
    RedisServer::start().await.unwrap_or_else(|e| panic!("{e}"))
}

/// One gateway serving on its own listener.
struct Gw {
    addr: SocketAddr,
    state: Arc<AppState>,
    stop: Option<tokio::sync::oneshot::Sender<()>>,
    task: Option<tokio::task::JoinHandle<std::io::Result<()>>>,
}

impl Gw {
    async fn start(yaml: &str) -> Gw {
        let (state, _) = common::gateway(yaml);
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        let (tx, rx) = tokio::sync::oneshot::channel::<()>();
        let task = tokio::spawn(llm_gateway::server::run(
            listener,
            None,
            state.clone(),
            async move {
                let _ = rx.await;
            },
        ));
        Gw {
            addr,
            state,
            stop: Some(tx),
            task: Some(task),
        }
    }

    fn url(&self, path: &str) -> String {
        format!("http://{}{path}", self.addr)
    }

    async fn stop(mut self) {
        if let Some(tx) = self.stop.take() {
            let _ = tx.send(());
        }
        if let Some(t) = self.task.take() {
            let _ = t.await;
        }
    }
}

async fn gateways(n: usize, yaml: &str) -> Vec<Gw> {
    let mut out = Vec::new();
    for _ in 0..n {
        out.push(Gw::start(yaml).await);
    }
    out
}

async fn stop_all(gws: Vec<Gw>) {
    for g in gws {
        g.stop().await;
    }
}

/// openai then kimi, both fakes; `openai_limits` is the `limits:` of openai (`{}` for none); `clients` the
/// `limits.clients` entries; the state backend on `redis` under `prefix`.
fn config(
    openai: &FakeServer,
    kimi: &FakeServer,
    openai_limits: &str,
    clients: &str,
    redis: &str,
    prefix: &str,
) -> String {
    config_with(
        common::POLICY,
        openai,
        kimi,
        openai_limits,
        clients,
        redis,
        prefix,
    )
}

/// [`config`] under the fallback policy `policy` (`fallback_policy:`'s body).
fn config_with(
    policy: &str,
    openai: &FakeServer,
    kimi: &FakeServer,
    openai_limits: &str,
    clients: &str,
    redis: &str,
    prefix: &str,
) -> String {
    format!(
        r#"
server: {{ listen: 127.0.0.1:0 }}
models: {{ default: {{ openai: gpt-4o-mini, kimi: moonshot-v1-8k }} }}
providers:
  openai: {{ kind: openai, base_url: "{}", secret: {{ value: sk-test-openai-secret }}, limits: {openai_limits} }}
  kimi: {{ kind: kimi, base_url: "{}", secret: {{ value: sk-test-kimi-secret }} }}
fallback_policy:
  order: [openai, kimi]
{}
state:
  backend: redis
  redis: {{ url: "{redis}", key_prefix: "{prefix}", timeout: 500ms }}
{clients}
"#,
        openai.base_url(),
        kimi.base_url(),
        policy
    )
}

fn client_key(limits: &str) -> String {
    format!("limits:\n  clients:\n    - {{ name: team, key: {{ value: {KEY} }}{limits} }}\n")
}

struct Answer {
    status: u16,
    provider: String,
    body: Value,
}

async fn chat(http: &reqwest::Client, gw: &Gw) -> Answer {
    let r = http
        .post(gw.url("/v1/chat/completions"))
        .bearer_auth(KEY)
        .json(&common::chat(false))
        .send()
        .await
        .unwrap();
    let status = r.status().as_u16();
    let provider = r
        .headers()
        .get("x-llm-actual-provider")
        .and_then(|v| v.to_str().ok())
        .unwrap_or("")
        .to_string();
    let body = r.json().await.unwrap_or(Value::Null);
    Answer {
        status,
        provider,
        body,
    }
}

/// `count` requests at once, spread round-robin over `gws`.
async fn burst(gws: &[Gw], count: usize) -> Vec<Answer> {
    let http = reqwest::Client::new();
    let calls = (0..count).map(|i| {
        let http = http.clone();
        let gw = &gws[i % gws.len()];
        async move { chat(&http, gw).await }
    });
    futures::future::join_all(calls).await
}

async fn admin_providers(gw: &Gw) -> Value {
    reqwest::get(gw.url("/admin/providers"))
        .await
        .unwrap()
        .json()
        .await
        .unwrap()
}

/// `used` of one budget of openai, as `gw` reads it (from Redis).
async fn budget_used(gw: &Gw, budget: &str) -> u64 {
    let v = admin_providers(gw).await;
    v["providers"]
        .as_array()
        .unwrap()
        .iter()
        .find(|p| p["name"] == "openai")
        .and_then(|p| p["budgets"].as_array())
        .and_then(|b| b.iter().find(|b| b["budget"] == budget))
        .and_then(|b| b["used"].as_u64())
        .unwrap_or(0)
}

/// Waits (bounded) until `gw` reads `want` tokens used: provider tokens are counted in a task of their own.
async fn until_budget_used(gw: &Gw, budget: &str, want: u64) {
    let deadline = Instant::now() + Duration::from_secs(5);
    loop {
        let used = budget_used(gw, budget).await;
        if used >= want {
            return;
        }
        assert!(Instant::now() < deadline, "{budget} used {used}, never {want}");
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
}

async fn fakes() -> (FakeServer, FakeServer) {
    (
        FakeServer::start(Provider::OpenAi).await.unwrap(),
        FakeServer::start(Provider::Kimi).await.unwrap(),
    )
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_client_key_requests_per_minute_hold_across_2_and_3_gateways() {
    let Some(redis) = redis().await else { return };
    let (openai, kimi) = fakes().await;
    for n in [2usize, 3] {
        let yaml = config(
            &openai,
            &kimi,
            "{}",
            &client_key(", requests_per_minute: 10"),
            &redis.url(),
            &format!("rpm{n}:"),
        );
        let gws = gateways(n, &yaml).await;
        let start = Instant::now();
        let answers = burst(&gws, 60).await;
        // GCRA: a burst of 10, then one more every 6 s.
        let allowed = 10 + (start.elapsed().as_secs() / 6) as usize;
        let ok = answers.iter().filter(|a| a.status == 200).count();
        let limited = answers.iter().filter(|a| a.status == 429).count();
        assert!(
            (10..=allowed).contains(&ok),
            "{n} gateways admitted {ok} of 60 (limit 10/min)"
        );
        assert_eq!(ok + limited, 60, "every other request is a 429");
        let limited_body = &answers.iter().find(|a| a.status == 429).unwrap().body;
        assert_eq!(
            limited_body["error"]["code"], "rate_limit_exceeded",
            "{limited_body}"
        );
        stop_all(gws).await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_client_key_tokens_per_minute_hold_across_3_gateways() {
    let Some(redis) = redis().await else { return };
    let (openai, kimi) = fakes().await;
    // One answer's tokens, from a gateway without limits.
    let probe = gateways(
        1,
        &config(&openai, &kimi, "{}", &client_key(""), &redis.url(), "probe:"),
    )
    .await;
    let first = chat(&reqwest::Client::new(), &probe[0]).await;
    let t = first.body["usage"]["total_tokens"].as_u64().unwrap();
    stop_all(probe).await;
    // Room for exactly three answers: the third fills the window, the fourth finds it used up.
    let limits = format!(", tokens_per_minute: {}", 3 * t - 1);
    let gws = gateways(
        3,
        &config(&openai, &kimi, "{}", &client_key(&limits), &redis.url(), "tpm:"),
    )
    .await;
    let http = reqwest::Client::new();
    let mut statuses = Vec::new();
    for i in 0..9 {
        statuses.push(chat(&http, &gws[i % 3]).await.status);
    }
    assert_eq!(
        statuses,
        [200, 200, 200, 429, 429, 429, 429, 429, 429],
        "{t} tokens per answer"
    );
    stop_all(gws).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_provider_requests_per_minute_budget_holds_across_2_and_3_gateways() {
    let Some(redis) = redis().await else { return };
    let (openai, kimi) = fakes().await;
    for n in [2usize, 3] {
        let before = openai.request_count();
        let yaml = config(
            &openai,
            &kimi,
            "{ requests_per_minute: 5 }",
            "",
            &redis.url(),
            &format!("budget{n}:"),
        );
        let gws = gateways(n, &yaml).await;
        let answers = burst(&gws, 40).await;
        assert!(
            answers.iter().all(|a| a.status == 200),
            "kimi serves past the budget"
        );
        let by_openai = answers.iter().filter(|a| a.provider == "openai").count();
        assert_eq!(
            by_openai, 5,
            "{n} gateways: openai served {by_openai} (budget 5/min)"
        );
        assert_eq!(
            openai.request_count() - before,
            5,
            "openai was called 5 times, not {n} x 5"
        );
        assert_eq!(budget_used(&gws[n - 1], "requests_minute").await, 5);
        stop_all(gws).await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn provider_token_budgets_per_minute_and_per_day_hold_across_3_gateways() {
    let Some(redis) = redis().await else { return };
    let (openai, kimi) = fakes().await;
    let probe = gateways(1, &config(&openai, &kimi, "{}", "", &redis.url(), "probe:")).await;
    let t = chat(&reqwest::Client::new(), &probe[0]).await.body["usage"]["total_tokens"]
        .as_u64()
        .unwrap();
    stop_all(probe).await;
    for (budget, field) in [
        ("tokens_minute", "tokens_per_minute"),
        ("tokens_day", "tokens_per_day"),
    ] {
        // Room for two answers: the second fills the budget, every later request falls back to kimi.
        let limits = format!("{{ {field}: {} }}", 2 * t - 1);
        let gws = gateways(
            3,
            &config(&openai, &kimi, &limits, "", &redis.url(), &format!("{budget}:")),
        )
        .await;
        let http = reqwest::Client::new();
        let mut served = Vec::new();
        let mut used = 0;
        for i in 0..6 {
            let a = chat(&http, &gws[i % 3]).await;
            assert_eq!(a.status, 200);
            if a.provider == "openai" {
                used += t;
                // The next request may go to another gateway: let this one's count land first.
                until_budget_used(&gws[(i + 1) % 3], budget, used).await;
            }
            served.push(a.provider);
        }
        assert_eq!(
            served,
            ["openai", "openai", "kimi", "kimi", "kimi", "kimi"],
            "{budget}"
        );
        stop_all(gws).await;
    }
}

/// openai's entry of `/admin/providers` on `gw`.
async fn openai_status(gw: &Gw) -> Value {
    let v = admin_providers(gw).await;
    v["providers"]
        .as_array()
        .unwrap()
        .iter()
        .find(|p| p["name"] == "openai")
        .cloned()
        .unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_cooldown_found_by_one_gateway_makes_every_other_skip_that_provider_with_its_reason() {
    let Some(redis) = redis().await else { return };
    let (openai, kimi) = fakes().await;
    let cases = [
        (FaultKind::QuotaExhausted, None, "quota_exhausted", 600_000),
        (FaultKind::RateLimited, Some(30), "rate_limited", 30_000),
        (FaultKind::Auth, None, "auth", 60_000),
    ];
    let http = reqwest::Client::new();
    for (fault, retry_after, reason, cooldown_ms) in cases {
        openai.clear_faults();
        let mut spec = FaultSpec::new(fault);
        spec.retry_after_s = retry_after;
        openai.add_fault(spec).unwrap();
        let yaml = config(&openai, &kimi, "{}", "", &redis.url(), &format!("{reason}:"));
        let gws = gateways(3, &yaml).await;
        let before = openai.request_count();
        let first = chat(&http, &gws[0]).await;
        assert_eq!((first.status, first.provider.as_str()), (200, "kimi"), "{reason}");
        assert_eq!(
            openai.request_count() - before,
            1,
            "{reason}: gateway A called openai once"
        );
        for gw in &gws[1..] {
            let a = chat(&http, gw).await;
            assert_eq!((a.status, a.provider.as_str()), (200, "kimi"), "{reason}");
            let st = openai_status(gw).await;
            assert_eq!(st["cooldown_reason"], reason, "{st}");
            let left = st["cooldown_remaining_ms"].as_u64().unwrap();
            assert!(
                left > cooldown_ms - 10_000 && left <= cooldown_ms,
                "{reason}: {left} ms left"
            );
        }
        assert_eq!(
            openai.request_count() - before,
            1,
            "{reason}: gateways B and C skipped openai"
        );
        stop_all(gws).await;
    }
}

/// Opens after 3 calls of which half failed; half-open after 700 ms.
const BREAKER_POLICY: &str = r#"
  deadline: 6s
  connect_timeout: 1s
  first_token_timeout: 2s
  stall_timeout: 1s
  attempt_timeout: 2s
  retries: { max_retries: 0 }
  breaker: { window: 30s, min_requests: 3, failure_ratio: 0.5, open_for: 700ms }
"#;

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn the_breaker_opens_for_every_gateway_and_lets_one_half_open_probe_through_across_them() {
    let Some(redis) = redis().await else { return };
    let (openai, kimi) = fakes().await;
    let yaml = config_with(BREAKER_POLICY, &openai, &kimi, "{}", "", &redis.url(), "breaker:");
    let gws = gateways(3, &yaml).await;
    let http = reqwest::Client::new();
    openai
        .add_fault(FaultSpec::new(FaultKind::DropConnection))
        .unwrap();
    // One failure on each gateway: three in the shared window open the breaker.
    for gw in &gws {
        let a = chat(&http, gw).await;
        assert_eq!((a.status, a.provider.as_str()), (200, "kimi"));
    }
    assert_eq!(openai.request_count(), 3);
    for gw in &gws {
        assert_eq!(openai_status(gw).await["breaker"], "open");
        assert_eq!(chat(&http, gw).await.provider, "kimi");
    }
    assert_eq!(
        openai.request_count(),
        3,
        "open on every gateway: openai is not called"
    );
    // After open_for, a slow healthy openai: of many concurrent requests on all gateways one is the probe.
    openai.clear_faults();
    let mut slow = FaultSpec::new(FaultKind::Slow);
    slow.delay_ms = Some(400);
    openai.add_fault(slow).unwrap();
    // open_for runs on the Redis server's clock: wait it out.
    tokio::time::sleep(Duration::from_millis(800)).await;
    let answers = burst(&gws, 12).await;
    assert!(answers.iter().all(|a| a.status == 200));
    let probes = answers.iter().filter(|a| a.provider == "openai").count();
    assert_eq!(probes, 1, "one half-open probe across 3 gateways");
    assert_eq!(openai.request_count(), 4);
    // The probe succeeded: closed everywhere.
    openai.clear_faults();
    for gw in &gws {
        assert_eq!(openai_status(gw).await["breaker"], "closed");
        assert_eq!(chat(&http, gw).await.provider, "openai");
    }
    stop_all(gws).await;
}

/// The non-zero `state_backend_*` samples of `gw` (for failure messages).
fn backend_errors(gw: &Gw) -> String {
    let m = gw.state.metrics.encode();
    let lines: Vec<&str> = m
        .lines()
        .filter(|l| l.starts_with("llm_gateway_state_backend") && !l.ends_with(" 0"))
        .collect();
    lines.join("; ")
}

async fn mode_of(gw: &Gw) -> String {
    let v: Value = reqwest::get(gw.url("/admin/mode"))
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    v["mode"].as_str().unwrap().to_string()
}

async fn set_mode(gw: &Gw, mode: &str) -> Value {
    reqwest::Client::new()
        .post(gw.url("/admin/mode"))
        .json(&serde_json::json!({"mode": mode}))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap()
}

/// Waits until every gateway of `gws` runs in `mode`; how long that took.
async fn until_mode(gws: &[&Gw], mode: &str) -> Duration {
    let start = Instant::now();
    loop {
        let mut all = true;
        for gw in gws {
            all &= mode_of(gw).await == mode;
        }
        if all {
            return start.elapsed();
        }
        assert!(
            start.elapsed() < Duration::from_secs(3),
            "not every gateway in {mode}"
        );
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_mode_switch_on_one_gateway_reaches_all_within_a_second_and_a_later_one_reads_it() {
    let Some(redis) = redis().await else { return };
    let (openai, kimi) = fakes().await;
    let yaml = config(&openai, &kimi, "{}", "", &redis.url(), "mode:");
    let gws = gateways(3, &yaml).await;
    let all: Vec<&Gw> = gws.iter().collect();
    until_mode(&all, "auto").await;
    let r = set_mode(&gws[0], "offline").await;
    assert_eq!(
        r,
        serde_json::json!({"mode": "offline", "previous": "auto", "shared": true})
    );
    let took = until_mode(&all, "offline").await;
    let errors: Vec<String> = all.iter().map(|g| backend_errors(g)).collect();
    assert!(
        took < Duration::from_secs(1),
        "the switch took {took:?}; backend errors: {errors:?}"
    );
    // Offline on B: no remote provider is called (no package, no local tier: 503).
    let before = openai.request_count() + kimi.request_count();
    let a = chat(&reqwest::Client::new(), &gws[1]).await;
    assert_ne!(a.status, 200, "{}", a.body);
    assert_eq!(openai.request_count() + kimi.request_count(), before);
    // A replica started now runs in the mode the others run in, whatever its config says.
    let late = Gw::start(&yaml).await;
    assert_eq!(late.state.config.mode.as_str(), "auto");
    let took = until_mode(&[&late], "offline").await;
    assert!(took < Duration::from_secs(1), "the late replica took {took:?}");
    // And a switch back from any replica reaches all, the late one included.
    let r = set_mode(&gws[2], "auto").await;
    let mut every: Vec<&Gw> = gws.iter().collect();
    every.push(&late);
    let took = until_mode(&every, "auto").await;
    let errors: Vec<String> = every.iter().map(|g| backend_errors(g)).collect();
    assert!(
        took < Duration::from_secs(1),
        "{r} took {took:?}; backend errors: {errors:?}"
    );
    late.stop().await;
    stop_all(gws).await;
}

/// A poll of the shared mode that read the old mode before a switch here wrote the new one must not set the old
/// one back here. Polls run back to back beside 200 switches; a watcher reads the mode between switches (a
/// sequence number odd while a switch runs, like a seqlock) and counts every time it is not the one switched to.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_switch_here_is_never_undone_by_a_poll_that_read_the_old_mode() {
    use llm_gateway::config::Mode;
    use std::sync::atomic::{AtomicBool, AtomicU64, Ordering::SeqCst};
    use std::sync::Arc;
    let Some(redis) = redis().await else { return };
    let (openai, kimi) = fakes().await;
    let yaml = config(&openai, &kimi, "{}", "", &redis.url(), "mode:");
    let gw = Gw::start(&yaml).await;
    let state = gw.state.clone();
    let (stop, polls, seq) = (
        Arc::new(AtomicBool::new(false)),
        Arc::new(AtomicU64::new(0)),
        Arc::new(AtomicU64::new(0)),
    );
    let poller = {
        let (state, stop, polls) = (state.clone(), stop.clone(), polls.clone());
        tokio::spawn(async move {
            while !stop.load(SeqCst) {
                llm_gateway::state::poll_mode(&state).await;
                polls.fetch_add(1, SeqCst);
            }
        })
    };
    // Mode switched to by switch k (seq 2k+2 once it returned): offline for even k.
    let want = |s: u64| {
        if (s / 2 - 1) % 2 == 0 {
            Mode::Offline
        } else {
            Mode::Auto
        }
    };
    let watcher = {
        let (state, stop, seq) = (state.clone(), stop.clone(), seq.clone());
        tokio::task::spawn_blocking(move || {
            let (mut undone, mut looks) = (0u64, 0u64);
            while !stop.load(SeqCst) {
                let s1 = seq.load(SeqCst);
                let mode = state.router.mode();
                if s1 >= 2 && s1 % 2 == 0 && seq.load(SeqCst) == s1 {
                    looks += 1;
                    undone += u64::from(mode != want(s1));
                }
            }
            (undone, looks)
        })
    };
    for i in 0..200u64 {
        let mode = if i % 2 == 0 { Mode::Offline } else { Mode::Auto };
        seq.fetch_add(1, SeqCst);
        assert_eq!(state.router.switch_mode(mode).await, Some(true));
        seq.fetch_add(1, SeqCst);
        // Two polls after it: one that was under way at the switch has ended and set what it read.
        let p = polls.load(SeqCst);
        while polls.load(SeqCst) < p + 2 {
            tokio::task::yield_now().await;
        }
    }
    stop.store(true, SeqCst);
    poller.await.unwrap();
    let (undone, looks) = watcher.await.unwrap();
    assert!(looks > 200, "the watcher looked between the switches: {looks}");
    assert_eq!(
        undone, 0,
        "a poll set the old mode back after a switch ({undone} of {looks} looks)"
    );
    gw.stop().await;
}

async fn readyz(gw: &Gw) -> (u16, Value) {
    let r = reqwest::get(gw.url("/readyz")).await.unwrap();
    (r.status().as_u16(), r.json().await.unwrap())
}

/// Waits (bounded) until `gw` says its backend is degraded (`true`) or healthy again (`false`).
async fn until_degraded(gw: &Gw, degraded: bool) {
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        let (_, v) = readyz(gw).await;
        if v["state_backend"]["degraded"] == degraded {
            return;
        }
        assert!(Instant::now() < deadline, "degraded never became {degraded}: {v}");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

fn errors_total(gw: &Gw) -> f64 {
    common::sample(
        &gw.state.metrics.encode(),
        "llm_gateway_state_backend_errors_total",
        &[],
    )
}

/// `count` requests over `gws`, one after another: every one answered 200 by openai, none slower than `bound`.
async fn all_served(gws: &[Gw], count: usize, bound: Duration) {
    let http = reqwest::Client::new();
    for i in 0..count {
        let start = Instant::now();
        let a = chat(&http, &gws[i % gws.len()]).await;
        let took = start.elapsed();
        assert_eq!((a.status, a.provider.as_str()), (200, "openai"), "{}", a.body);
        assert!(took < bound, "request {i} took {took:?}");
    }
}

/// The outage checks every degraded-path test makes: requests served, backend said degraded (ready still),
/// errors counted.
async fn served_while_degraded(gws: &[Gw]) {
    all_served(gws, 8, Duration::from_secs(1)).await;
    for gw in gws {
        until_degraded(gw, true).await;
        let (status, v) = readyz(gw).await;
        assert_eq!(status, 200, "still ready: it serves on local state {v}");
        assert_eq!(v["state_backend"]["backend"], "redis");
        let p = admin_providers(gw).await;
        assert_eq!(p["state_backend"]["degraded"], true, "{p}");
        assert!(errors_total(gw) > 0.0, "{}", backend_errors(gw));
    }
}

/// After recovery: state is shared again (requests on gateway A show in gateway B's budget).
async fn shared_again(gws: &[Gw]) {
    for gw in gws {
        until_degraded(gw, false).await;
    }
    let before = budget_used(&gws[1], "requests_minute").await;
    let http = reqwest::Client::new();
    for _ in 0..3 {
        assert_eq!(chat(&http, &gws[0]).await.status, 200);
    }
    assert_eq!(budget_used(&gws[1], "requests_minute").await, before + 3);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn with_redis_killed_every_request_is_served_on_local_state_and_shared_state_returns_with_redis() {
    let Some(mut redis) = redis().await else { return };
    let (openai, kimi) = fakes().await;
    let yaml = config(
        &openai,
        &kimi,
        "{ requests_per_minute: 1000 }",
        &client_key(", requests_per_minute: 1000"),
        &redis.url(),
        "killed:",
    )
    .replace("timeout: 500ms", "timeout: 200ms");
    let gws = gateways(2, &yaml).await;
    all_served(&gws, 2, Duration::from_secs(1)).await;
    assert_eq!(readyz(&gws[0]).await.1["state_backend"]["degraded"], false);
    redis.kill();
    served_while_degraded(&gws).await;
    redis.restart().await.unwrap();
    shared_again(&gws).await;
    stop_all(gws).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn with_redis_black_holed_behind_the_chaos_proxy_every_request_is_served_within_its_deadline() {
    use llm_chaos::toxics::Timeout;
    use llm_chaos::{NewProxy, NewToxic, Server, ServerConfig, Stream, ToxicKind};
    let Some(redis) = redis().await else { return };
    let (openai, kimi) = fakes().await;
    let api = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let chaos = Server::start(api, ServerConfig::default()).unwrap();
    let client = chaos.client().unwrap();
    let proxy = client
        .create_proxy(&NewProxy::new("redis", "127.0.0.1:0", redis.addr()))
        .await
        .unwrap();
    let yaml = config(
        &openai,
        &kimi,
        "{ requests_per_minute: 1000 }",
        &client_key(", requests_per_minute: 1000"),
        &format!("redis://{}", proxy.listen),
        "stalled:",
    )
    .replace("timeout: 500ms", "timeout: 100ms");
    let gws = gateways(2, &yaml).await;
    all_served(&gws, 2, Duration::from_secs(1)).await;
    assert_eq!(readyz(&gws[0]).await.1["state_backend"]["degraded"], false);
    // Redis's answers vanish, then the commands too: every call waits until state.redis.timeout.
    let hole = |name: &str, stream| {
        NewToxic::new(ToxicKind::Timeout(Timeout { timeout: 0 }))
            .named(name)
            .stream(stream)
    };
    client
        .add_toxic("redis", &hole("down", Stream::Downstream))
        .await
        .unwrap();
    served_while_degraded(&gws).await;
    client
        .add_toxic("redis", &hole("up", Stream::Upstream))
        .await
        .unwrap();
    all_served(&gws, 4, Duration::from_secs(1)).await;
    client.remove_toxic("redis", "down").await.unwrap();
    client.remove_toxic("redis", "up").await.unwrap();
    shared_again(&gws).await;
    stop_all(gws).await;
    chaos.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn under_fail_closed_a_failing_redis_refuses_limited_keys_and_skips_budgeted_providers() {
    let Some(mut redis) = redis().await else { return };
    let (openai, kimi) = fakes().await;
    let clients = format!(
        "limits:\n  clients:\n    - {{ name: team, key: {{ value: {KEY} }}, requests_per_minute: 1000 }}\n    - {{ name: free, key: {{ value: free-key-123456 }} }}\n"
    );
    let yaml = config(
        &openai,
        &kimi,
        "{ requests_per_minute: 1000 }",
        &clients,
        &redis.url(),
        "closed:",
    )
    .replace("timeout: 500ms }", "timeout: 200ms, on_error: fail_closed }");
    let gws = gateways(2, &yaml).await;
    let http = reqwest::Client::new();
    assert_eq!(chat(&http, &gws[0]).await.provider, "openai");
    redis.kill();
    let limited = chat(&http, &gws[1]).await;
    assert_eq!(limited.status, 429, "{}", limited.body);
    let free = http
        .post(gws[1].url("/v1/chat/completions"))
        .bearer_auth("free-key-123456")
        .json(&common::chat(false))
        .send()
        .await
        .unwrap();
    assert_eq!(free.status(), 200);
    assert_eq!(
        free.headers()["x-llm-actual-provider"],
        "kimi",
        "openai's budget cannot be checked"
    );
    assert_eq!(
        readyz(&gws[1]).await.1["state_backend"]["on_error"],
        "fail_closed"
    );
    stop_all(gws).await;
}

// ---- The shared cache tier (`cache.backend: redis`) ----

/// What every shared-cache test starts with: a Redis server and the two fakes.
struct CacheRig {
    redis: RedisServer,
    openai: FakeServer,
    kimi: FakeServer,
}

impl CacheRig {
    async fn start() -> Option<CacheRig> {
        let redis = redis().await?;
        let (openai, kimi) = fakes().await;
        Some(CacheRig { redis, openai, kimi })
    }

    /// [`config`] without limits, keys under `prefix`, the cache on the shared tier (`cache` is the rest of the
    /// `cache:` map).
    fn yaml(&self, prefix: &str, cache: &str) -> String {
        format!(
            "{}cache: {{ backend: redis, scope: all{cache} }}\n",
            config(&self.openai, &self.kimi, "{}", "", &self.redis.url(), prefix)
        )
    }

    async fn conn(&self) -> redis::aio::MultiplexedConnection {
        redis::Client::open(self.redis.url())
            .unwrap()
            .get_multiplexed_async_connection()
            .await
            .unwrap()
    }
}

/// A chat request for `text`, with its `X-LLM-Cache` header (empty when not from the cache).
async fn ask(http: &reqwest::Client, gw: &Gw, text: &str) -> (Answer, String) {
    let r = http
        .post(gw.url("/v1/chat/completions"))
        .json(&serde_json::json!({"model": "default", "messages": [{"role": "user", "content": text}]}))
        .send()
        .await
        .unwrap();
    let header = |name: &str| {
        r.headers()
            .get(name)
            .and_then(|v| v.to_str().ok())
            .unwrap_or("")
            .to_string()
    };
    let (provider, cache) = (header("x-llm-actual-provider"), header("x-llm-cache"));
    let status = r.status().as_u16();
    let body = r.json().await.unwrap_or(Value::Null);
    (
        Answer {
            status,
            provider,
            body,
        },
        cache,
    )
}

fn shared_hits(gw: &Gw) -> f64 {
    common::sample(
        &gw.state.metrics.encode(),
        "llm_gateway_cache_shared_hits_total",
        &[],
    )
}

/// One Redis command, straight to the server.
async fn query<T: redis::FromRedisValue>(
    conn: &mut redis::aio::MultiplexedConnection,
    name: &str,
    args: &[&str],
) -> T {
    let mut cmd = redis::cmd(name);
    for a in args {
        cmd.arg(*a);
    }
    cmd.query_async(conn).await.unwrap()
}

/// The shared tier's entry keys under `prefix`.
async fn entry_keys(conn: &mut redis::aio::MultiplexedConnection, prefix: &str) -> Vec<String> {
    query(conn, "KEYS", &[&format!("{prefix}cache:v1:e:*")]).await
}

/// Ages a stored answer on the server: 2 minutes old of the 61 minutes it is kept for (a 60 s TTL and an hour
/// of `stale_for`), so past its TTL.
async fn age_past_ttl(conn: &mut redis::aio::MultiplexedConnection, key: &str) {
    let () = query(conn, "PEXPIRE", &[key, &(59 * 60_000).to_string()]).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn an_answer_stored_by_one_gateway_answers_on_every_other_from_the_shared_tier() {
    let Some(rig) = CacheRig::start().await else {
        return;
    };
    let openai = &rig.openai;
    let gws = gateways(3, &rig.yaml("shared-cache:", "")).await;
    let http = reqwest::Client::new();
    let before = openai.request_count();
    let (first, cache) = ask(&http, &gws[0], "What is the capital of France?").await;
    assert_eq!(
        (first.status, first.provider.as_str(), cache.as_str()),
        (200, "openai", "")
    );
    gws[0].state.cache.flushed().await;
    for gw in &gws[1..] {
        let (a, cache) = ask(&http, gw, "What is the capital of France?").await;
        assert_eq!(
            (a.status, a.provider.as_str(), cache.as_str()),
            (200, "cache", "hit"),
            "{}",
            a.body
        );
        assert_eq!(
            a.body, first.body,
            "the same answer, the upstream's own fields included"
        );
        assert_eq!(shared_hits(gw), 1.0);
        // Now in that gateway's own cache: the next hit does not ask Redis.
        let (again, _) = ask(&http, gw, "What is the capital of France?").await;
        assert_eq!(again.provider, "cache");
        assert_eq!(shared_hits(gw), 1.0);
    }
    assert_eq!(
        openai.request_count() - before,
        1,
        "one provider call for 3 gateways"
    );
    // Another question is not answered from the tier.
    let (other, cache) = ask(&http, &gws[2], "And of Spain?").await;
    assert_eq!((other.provider.as_str(), cache.as_str()), ("openai", ""));
    let p = admin_providers(&gws[1]).await;
    assert_eq!(p["cache_backend"], "redis", "{p}");
    stop_all(gws).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn the_shared_tier_holds_max_bytes_and_max_entries_over_every_gateways_stores() {
    let Some(rig) = CacheRig::start().await else {
        return;
    };
    let mut conn = rig.conn().await;
    for (prefix, bound, entries) in [
        ("bytes:", ", max_bytes: 6000", 1000),
        ("entries:", ", max_entries: 4", 4),
    ] {
        let gws = gateways(3, &rig.yaml(prefix, bound)).await;
        let http = reqwest::Client::new();
        let asks = (0..30).map(|i| {
            let http = http.clone();
            let gw = &gws[i % 3];
            async move { ask(&http, gw, &format!("question number {i}")).await }
        });
        for (a, _) in futures::future::join_all(asks).await {
            assert_eq!(a.status, 200);
        }
        for gw in &gws {
            gw.state.cache.flushed().await;
        }
        let keys = entry_keys(&mut conn, prefix).await;
        let mut total = 0u64;
        for k in &keys {
            total += query::<u64>(&mut conn, "STRLEN", &[k]).await;
        }
        let counted: u64 = query(&mut conn, "GET", &[&format!("{prefix}cache:v1:bytes")]).await;
        assert_eq!(counted, total, "{prefix} the byte total is what the entries hold");
        assert!(
            !keys.is_empty() && keys.len() < 30,
            "{prefix} {} entries kept",
            keys.len()
        );
        assert!(keys.len() <= entries, "{prefix} {} entries", keys.len());
        if prefix == "bytes:" {
            assert!(total <= 6000, "{total} bytes over max_bytes");
        }
        let index: Vec<String> = query(
            &mut conn,
            "ZRANGE",
            &[&format!("{prefix}cache:v1:index"), "0", "-1"],
        )
        .await;
        assert_eq!(index.len(), keys.len(), "{prefix} index and entries agree");
        stop_all(gws).await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn an_expired_shared_answer_serves_stale_on_another_gateway_when_every_provider_fails() {
    let Some(rig) = CacheRig::start().await else {
        return;
    };
    let prefix = "stale:";
    let yaml = rig.yaml(prefix, ", ttl: 60s, serve_stale_on_error: true, stale_for: 1h");
    let gws = gateways(2, &yaml).await;
    let http = reqwest::Client::new();
    let (first, _) = ask(&http, &gws[0], "Is it stale yet?").await;
    assert_eq!(first.provider, "openai");
    gws[0].state.cache.flushed().await;
    let mut conn = rig.conn().await;
    let keys = entry_keys(&mut conn, prefix).await;
    assert_eq!(keys.len(), 1);
    age_past_ttl(&mut conn, &keys[0]).await;
    // Providers up: a stale shared answer is not served, the provider answers.
    let (fresh, cache) = ask(&http, &gws[1], "Is it stale yet?").await;
    assert_eq!((fresh.provider.as_str(), cache.as_str()), ("openai", ""));
    gws[1].state.cache.flushed().await;
    age_past_ttl(&mut conn, &keys[0]).await;
    // Every provider down, on a third gateway that never saw the question: the stale answer serves.
    for f in [&rig.openai, &rig.kimi] {
        f.add_fault(FaultSpec::new(FaultKind::ServerError)).unwrap();
    }
    let third = Gw::start(&yaml).await;
    let (stale, cache) = ask(&http, &third, "Is it stale yet?").await;
    assert_eq!(
        (stale.status, stale.provider.as_str(), cache.as_str()),
        (200, "cache", "stale"),
        "{}",
        stale.body
    );
    assert_eq!(shared_hits(&third), 1.0);
    third.stop().await;
    stop_all(gws).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_shared_tier_that_fails_or_holds_garbage_is_a_miss_never_an_error() {
    let Some(mut rig) = CacheRig::start().await else {
        return;
    };
    let prefix = "garbage:";
    let yaml = rig.yaml(prefix, "").replace("timeout: 500ms", "timeout: 200ms");
    let gws = gateways(2, &yaml).await;
    let http = reqwest::Client::new();
    let (first, _) = ask(&http, &gws[0], "garbage in").await;
    assert_eq!(first.provider, "openai");
    gws[0].state.cache.flushed().await;
    let mut conn = rig.conn().await;
    let keys = entry_keys(&mut conn, prefix).await;
    for bad in ["not json", "{\"id\": 5}", ""] {
        let () = query(&mut conn, "SET", &[&keys[0], bad, "PX", "60000"]).await;
        // A gateway without the answer in its own cache reads the garbage: a miss, the provider answers.
        let reader = Gw::start(&yaml).await;
        let (a, cache) = ask(&http, &reader, "garbage in").await;
        assert_eq!(
            (a.status, a.provider.as_str(), cache.as_str()),
            (200, "openai", ""),
            "{bad:?}: {}",
            a.body
        );
        assert_eq!(shared_hits(&reader), 0.0);
        // Its store replaced the garbage: the next gateway gets the answer from the tier.
        reader.state.cache.flushed().await;
        let v: String = query(&mut conn, "GET", &[&keys[0]]).await;
        assert!(v.contains("chat.completion"), "{v}");
        let next = Gw::start(&yaml).await;
        let (shared, cache) = ask(&http, &next, "garbage in").await;
        assert_eq!((shared.provider.as_str(), cache.as_str()), ("cache", "hit"));
        next.stop().await;
        reader.stop().await;
    }
    // Redis killed: lookups and stores fail inside their timeout, every request is served by the provider.
    rig.redis.kill();
    let other = Gw::start(&yaml).await;
    for i in 0..4 {
        let start = Instant::now();
        let (a, _) = ask(&http, &other, &format!("while redis is down {i}")).await;
        assert_eq!((a.status, a.provider.as_str()), (200, "openai"), "{}", a.body);
        assert!(start.elapsed() < Duration::from_secs(1), "{:?}", start.elapsed());
    }
    other.state.cache.flushed().await;
    assert!(
        common::sample(
            &other.state.metrics.encode(),
            "llm_gateway_state_backend_errors_total",
            &[("op", "cache")]
        ) >= 1.0,
        "{}",
        backend_errors(&other)
    );
    // And the local cache still answers.
    let (local, _) = ask(&http, &other, "while redis is down 0").await;
    assert_eq!(local.provider, "cache");
    other.stop().await;
    stop_all(gws).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn an_answer_over_the_shared_entry_bound_stays_local_and_leaves_the_shared_limits_alone() {
    use llm_gateway::cache::{key, SHARED_ENTRY_MAX_BYTES};
    let Some(rig) = CacheRig::start().await else {
        return;
    };
    let prefix = "huge:";
    let gw = Gw::start(&rig.yaml(prefix, "")).await;
    let answer = |text: &str| -> llm_gateway::canonical::ChatResponse {
        serde_json::from_value(serde_json::json!({
            "id": "x", "object": "chat.completion", "created": 1, "model": "m",
            "choices": [{"index": 0, "message": {"role": "assistant", "content": text}, "finish_reason": "stop"}]
        }))
        .unwrap()
    };
    let request = |q: &str| -> llm_gateway::canonical::ChatRequest {
        serde_json::from_value(
            serde_json::json!({"model": "default", "messages": [{"role": "user", "content": q}]}),
        )
        .unwrap()
    };
    let (small, huge) = (request("small"), request("huge"));
    gw.state.cache.put(key(&small), &answer("a short answer"));
    gw.state
        .cache
        .put(key(&huge), &answer(&"x".repeat(SHARED_ENTRY_MAX_BYTES)));
    gw.state.cache.flushed().await;
    let mut conn = rig.conn().await;
    assert_eq!(
        entry_keys(&mut conn, prefix).await.len(),
        1,
        "only the small one is shared"
    );
    assert!(matches!(
        gw.state.cache.get(&key(&huge)).await,
        llm_gateway::cache::Lookup::Fresh(_)
    ));
    assert_eq!(readyz(&gw).await.1["state_backend"]["degraded"], false);
    assert_eq!(errors_total(&gw), 0.0, "{}", backend_errors(&gw));
    gw.stop().await;
}
