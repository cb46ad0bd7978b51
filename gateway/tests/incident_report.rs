//! `llm-gateway incident-report` against a real Prometheus that scraped a gateway through an outage: quota on
//! the primary, then no internet (the backup's connections dropped until its breaker opens, then the operator's
//! switch to offline mode), then recovery. The report's counts match what the test sent and its timeline has
//! the quota error, the breaker opening, the mode changes and the breaker closing in order.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic, missing_docs)]

mod common;

use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use llm_mocks::{FaultKind, FaultSpec};
use serde_json::{json, Value};

/// Kills Prometheus when dropped, so a failing test leaves none behind.
struct Reaper(Child, PathBuf);

impl Drop for Reaper {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
        let _ = std::fs::remove_dir_all(&self.1);
    }
}

fn unix_now() -> f64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap()
        .as_secs_f64()
}

async fn until<F, Fut>(what: &str, mut f: F)
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = bool>,
{
    let polled = async {
        while !f().await {
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    };
    tokio::time::timeout(Duration::from_secs(30), polled)
        .await
        .unwrap_or_else(|_| panic!("timed out waiting for {what}"));
}

/// The value of an instant query (summed), or `None` when it has no series.
async fn prom_value(client: &reqwest::Client, base: &str, query: &str) -> Option<f64> {
    let url = reqwest::Url::parse_with_params(&format!("{base}/api/v1/query"), &[("query", query)]).unwrap();
    let v: Value = client.get(url).send().await.ok()?.json().await.ok()?;
    let list = v["data"]["result"].as_array()?;
    if list.is_empty() {
        return None;
    }
    Some(
        list.iter()
            .filter_map(|r| r["value"][1].as_str()?.parse::<f64>().ok())
            .sum(),
    )
}

/// What the test sent, by how it was answered. Every error answer here is an offline miss too (the package
/// is asked after the providers and in offline mode).
#[derive(Default)]
struct Sent {
    provider: u32,
    package: u32,
    none: u32,
    server_errors: u32,
}

fn tally(sent: &mut Sent, (status, source): (u16, String)) {
    match (status, source.as_str()) {
        (200, "provider") => sent.provider += 1,
        (200, "offline-package") => sent.package += 1,
        // 503 when a provider failed; 429 when every one was cooling down or skipped after a quota error.
        (503 | 429, "none") => {
            sent.none += 1;
            sent.server_errors += u32::from(status == 503);
        }
        other => panic!("unexpected answer {other:?}"),
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn incident_report_from_real_prometheus_matches_what_was_sent() {
    let Some(prometheus) = llm_mocks::testing::on_path(
        "prometheus",
        "scripts/test.sh installs the Debian package `prometheus`",
    )
    .unwrap() else {
        return;
    };
    let fakes = common::fakes().await;
    let dir = std::env::temp_dir().join(format!("llm-incident-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    let pkg = dir.join("package");
    std::fs::create_dir_all(&pkg).unwrap();
    std::fs::write(
        pkg.join("manifest.yaml"),
        "name: kb\nversion: \"1\"\ncreated: 2026-12-01\n",
    )
    .unwrap();
    std::fs::write(
        pkg.join("entries.jsonl"),
        "{\"id\": \"a\", \"prompts\": [\"How do I export the sales report?\"], \"answer\": \"Use Export.\"}\n\
         {\"id\": \"b\", \"prompts\": [\"What does churn mean?\"], \"answer\": \"Customers lost.\"}\n",
    )
    .unwrap();
    // OpenAI first, Kimi second, a package last; the breaker opens after 3 failures and may close after 1 s.
    let yaml = format!(
        "{}\noffline: {{ packages: [\"{}\"] }}\n",
        common::yaml(&fakes, "openai, kimi", "", "compatible").replace("open_for: 30s", "open_for: 1s"),
        pkg.display()
    );
    let (state, _) = common::gateway(&yaml);
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let gw = listener.local_addr().unwrap();
    let (stop_tx, stop_rx) = tokio::sync::oneshot::channel::<()>();
    let server = tokio::spawn(llm_gateway::server::run(listener, None, state, async move {
        let _ = stop_rx.await;
    }));

    std::fs::write(
        dir.join("prometheus.yml"),
        format!(
            "global: {{ scrape_interval: 1s, evaluation_interval: 1s }}\n\
             scrape_configs:\n  - job_name: llm-gateway\n    static_configs:\n      - targets: ['{gw}']\n"
        ),
    )
    .unwrap();
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let from = unix_now();
    let child = Command::new(prometheus)
        .arg(format!("--config.file={}", dir.join("prometheus.yml").display()))
        .arg(format!("--storage.tsdb.path={}", dir.join("data").display()))
        .arg(format!("--web.listen-address=127.0.0.1:{port}"))
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let _reaper = Reaper(child, dir.clone());
    let base = format!("http://127.0.0.1:{port}");
    let client = reqwest::Client::new();
    until("Prometheus to scrape the gateway", || {
        prom_value(&client, &base, "llm_gateway_mode{mode=\"auto\"}").then_is(1.0)
    })
    .await;

    let mut sent = Sent::default();
    let chat = |q: &str| {
        let c = client.clone();
        let body = json!({"model": "default", "messages": [{"role": "user", "content": q}]});
        async move {
            let r = c
                .post(format!("http://{gw}/v1/chat/completions"))
                .json(&body)
                .send()
                .await
                .unwrap();
            let source = r
                .headers()
                .get("x-llm-source")
                .and_then(|v| v.to_str().ok())
                .unwrap_or("none")
                .to_string();
            (r.status().as_u16(), source)
        }
    };

    // Steady state, then the primary's quota runs out: one quota error, a cooldown, Kimi serves.
    for _ in 0..3 {
        tally(&mut sent, chat("Say hello to the gateway").await);
    }
    fakes["openai"]
        .add_fault(FaultSpec::new(FaultKind::QuotaExhausted))
        .unwrap();
    for _ in 0..3 {
        tally(&mut sent, chat("Say hello to the gateway").await);
    }
    assert_eq!(sent.provider, 6);
    until("the cooldown in Prometheus", || {
        prom_value(&client, &base, "sum(llm_gateway_cooldowns_total)").then_is(1.0)
    })
    .await;

    // No internet: Kimi's connections drop. The package answers what it knows, the rest is a 503.
    fakes["kimi"]
        .add_fault(FaultSpec::new(FaultKind::DropConnection))
        .unwrap();
    for q in [
        "How do I export the sales report?",
        "Which region grew fastest?",
        "What does churn mean?",
        "Which region grew fastest?",
    ] {
        tally(&mut sent, chat(q).await);
    }
    assert_eq!((sent.package, sent.none), (2, 2));
    until("the open breaker in Prometheus", || {
        prom_value(&client, &base, "llm_gateway_breaker_state{provider=\"kimi\"}").then_is(1.0)
    })
    .await;

    // The operator switches to offline mode.
    let r = client
        .post(format!("http://{gw}/admin/mode"))
        .json(&json!({"mode": "offline"}))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
    until("offline mode in Prometheus", || {
        prom_value(&client, &base, "llm_gateway_mode{mode=\"offline\"}").then_is(1.0)
    })
    .await;
    tally(&mut sent, chat("What does churn mean?").await);
    tally(&mut sent, chat("Forecast next quarter").await);
    assert_eq!((sent.package, sent.none), (3, 3));

    // Recovery: faults gone, back to auto; Kimi's half-open probe succeeds and its breaker closes.
    fakes["kimi"].clear_faults();
    fakes["openai"].clear_faults();
    let r = client
        .post(format!("http://{gw}/admin/mode"))
        .json(&json!({"mode": "auto"}))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
    let mut recovered = false;
    for _ in 0..100 {
        let a = chat("Say hello to the gateway").await;
        let by_provider = a == (200, "provider".to_string());
        tally(&mut sent, a);
        if by_provider {
            recovered = true;
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    assert!(recovered, "Kimi answered again after its breaker's open_for");
    let total = sent.provider + sent.package + sent.none;
    until("every request and the closed breaker in Prometheus", || {
        let (c, b) = (client.clone(), base.clone());
        async move {
            prom_value(
                &c,
                &b,
                "sum(llm_gateway_requests_total{route=\"chat_completions\"})",
            )
            .await
                == Some(f64::from(total))
                && prom_value(&c, &b, "llm_gateway_breaker_state{provider=\"kimi\"}").await == Some(0.0)
                && prom_value(&c, &b, "llm_gateway_mode{mode=\"auto\"}").await == Some(1.0)
        }
    })
    .await;
    let to = unix_now() + 1.0;

    let out = dir.join("report.md");
    let jpath = dir.join("report.json");
    let o = Command::new(env!("CARGO_BIN_EXE_llm-gateway"))
        .args([
            "incident-report",
            "--prometheus",
            &base,
            "--from",
            &format!("{from:.3}"),
            "--to",
            &format!("{to:.3}"),
            "--step",
            "0.5",
            "--out",
            out.to_str().unwrap(),
            "--json",
            jpath.to_str().unwrap(),
        ])
        .env("RUST_LOG", "warn")
        .output()
        .unwrap();
    let md = std::fs::read_to_string(&out).unwrap_or_default();
    assert!(
        o.status.success(),
        "{}{}",
        String::from_utf8_lossy(&o.stdout),
        String::from_utf8_lossy(&o.stderr)
    );
    let r: Value = serde_json::from_str(&std::fs::read_to_string(&jpath).unwrap()).unwrap();
    let tier = |s: &str| {
        r["by_tier"]
            .as_array()
            .unwrap()
            .iter()
            .find(|c| c["key"][0] == s)
            .map_or(0.0, |c| c["count"].as_f64().unwrap())
    };
    assert_eq!(r["requests"].as_f64(), Some(f64::from(total)), "{r}");
    assert_eq!(tier("provider"), f64::from(sent.provider), "{r}");
    assert_eq!(tier("offline-package"), f64::from(sent.package), "{r}");
    assert_eq!(tier("none"), f64::from(sent.none), "{r}");
    assert_eq!(
        r["server_errors"].as_f64(),
        Some(f64::from(sent.server_errors)),
        "{r}"
    );
    assert_eq!(r["offline_misses"].as_f64(), Some(f64::from(sent.none)), "{r}");
    assert_eq!(
        r["offline_hits"][0]["count"].as_f64().unwrap_or(0.0)
            + r["offline_hits"]
                .get(1)
                .map_or(0.0, |h| h["count"].as_f64().unwrap()),
        f64::from(sent.package),
        "{r}"
    );
    let provider = |name: &str| {
        r["providers"]
            .as_array()
            .unwrap()
            .iter()
            .find(|p| p["provider"] == name)
            .cloned()
            .unwrap_or_else(|| panic!("{name} in {r}"))
    };
    assert_eq!(provider("openai")["errors"]["quota_exhausted"], 1.0, "{r}");
    assert_eq!(provider("openai")["cooldowns"]["quota_exhausted"], 1.0, "{r}");
    assert_eq!(provider("kimi")["breaker_openings"], 1, "{r}");
    assert!(r["latency_p99"].as_f64().unwrap() > 0.0);
    assert!(r["missing"].as_array().unwrap().is_empty(), "{r}");

    let events: Vec<String> = r["timeline"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| e["what"].as_str().unwrap().to_string())
        .collect();
    let pos = |s: &str| {
        events
            .iter()
            .position(|e| e.contains(s))
            .unwrap_or_else(|| panic!("{s:?} not in the timeline {events:#?}"))
    };
    let quota = pos("openai failed with quota_exhausted");
    let opened = pos("breaker of kimi opened");
    let offline = pos("mode changed: auto -> offline");
    let back = pos("mode changed: offline -> auto");
    let closed = pos("breaker of kimi closed");
    assert!(
        quota < opened && opened < offline && offline < back && back <= closed + 1,
        "{events:#?}"
    );
    assert!(opened < closed, "{events:#?}");
    // The Markdown is the filled template.
    assert!(!md.contains("{{"), "{md}");
    for s in [
        "breaker of kimi opened",
        "mode changed: auto -> offline",
        "| `offline-package` | 3 |",
    ] {
        assert!(md.contains(s), "{s:?} not in\n{md}");
    }

    // A window with no gateway data says so plainly.
    let o = Command::new(env!("CARGO_BIN_EXE_llm-gateway"))
        .args([
            "incident-report",
            "--prometheus",
            &base,
            "--from",
            "1000",
            "--to",
            "1060",
        ])
        .output()
        .unwrap();
    assert!(o.status.success());
    assert!(String::from_utf8_lossy(&o.stdout).contains("no data of the gateway in this"));
    let _ = stop_tx.send(());
    let _ = tokio::time::timeout(Duration::from_secs(10), server).await;
}

/// `async { value == Some(x) }` for the polling helper.
trait ThenIs {
    fn then_is(self, x: f64) -> impl std::future::Future<Output = bool>;
}

impl<F: std::future::Future<Output = Option<f64>>> ThenIs for F {
    async fn then_is(self, x: f64) -> bool {
        self.await == Some(x)
    }
}
