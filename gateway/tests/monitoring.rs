//! The observability pack against the real tools: promtool checks and unit-tests every alert rule, every
//! metric the dashboard and the rules name exists on the gateway's /metrics, and a real Prometheus
//! scrapes a gateway through a short outage and fires the fallback alert.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic, missing_docs)]

mod common;

use std::collections::BTreeSet;
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::time::Duration;

fn workspace() -> PathBuf {
    llm_mocks::testing::workspace_root()
}

fn monitoring() -> PathBuf {
    workspace().join("config/monitoring")
}

/// A tool from the `prometheus` Debian package, or `None` when missing outside CI (an error under CI=true).
fn tool(name: &str) -> Option<PathBuf> {
    llm_mocks::testing::on_path(name, "scripts/test.sh installs the Debian package `prometheus`").unwrap()
}

fn run_ok(cmd: &mut Command) -> String {
    let out = cmd.output().unwrap();
    let text = format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(out.status.success(), "{cmd:?} failed:\n{text}");
    text
}

fn alert_names(rules: &str) -> Vec<String> {
    rules
        .lines()
        .filter_map(|l| l.trim().strip_prefix("- alert: "))
        .map(|s| s.trim().to_string())
        .collect()
}

#[test]
fn promtool_checks_and_unit_tests_every_rule() {
    let Some(promtool) = tool("promtool") else { return };
    let dir = monitoring().join("prometheus");
    let out = run_ok(
        Command::new(&promtool)
            .args(["check", "rules", "alerts/ai_alerts.yml"])
            .current_dir(&dir),
    );
    assert!(out.contains("SUCCESS"), "{out}");
    run_ok(
        Command::new(&promtool)
            .args(["check", "config", "prometheus.yml"])
            .current_dir(&dir),
    );
    let out = run_ok(
        Command::new(&promtool)
            .args(["test", "rules", "alerts/ai_alerts_test.yml"])
            .current_dir(&dir),
    );
    assert!(out.contains("SUCCESS"), "{out}");
    // Every rule has a test that expects it to fire, and a runbook section that exists in the README.
    let rules = std::fs::read_to_string(dir.join("alerts/ai_alerts.yml")).unwrap();
    let tests = std::fs::read_to_string(dir.join("alerts/ai_alerts_test.yml")).unwrap();
    // GitHub's anchors: lowercase heading text, punctuation dropped, spaces as hyphens.
    let readme = std::fs::read_to_string(workspace().join("README.md")).unwrap();
    let anchors: Vec<String> = readme
        .lines()
        .filter_map(|l| l.strip_prefix("### "))
        .map(|h| {
            h.to_lowercase()
                .chars()
                .filter(|c| c.is_alphanumeric() || *c == ' ' || *c == '-')
                .map(|c| if c == ' ' { '-' } else { c })
                .collect()
        })
        .collect();
    let names = alert_names(&rules);
    assert!(names.len() >= 8, "{names:?}");
    for name in &names {
        assert!(
            tests.contains(&format!(
                "alertname: {name}\n        exp_alerts:\n          - exp_labels"
            )),
            "no firing test for {name}"
        );
    }
    for anchor in rules
        .lines()
        .filter_map(|l| l.trim().strip_prefix("runbook_url: \"README.md#"))
    {
        let anchor = anchor.trim_end_matches('"');
        assert!(
            anchors.iter().any(|a| a == anchor),
            "README has no section for #{anchor}"
        );
    }
}

/// Every `llm_gateway_*` name used in an expression of the dashboard or the rules.
fn metric_names_used() -> BTreeSet<String> {
    let dash = std::fs::read_to_string(monitoring().join("grafana/ai_services.json")).unwrap();
    let dash: serde_json::Value = serde_json::from_str(&dash).unwrap();
    let mut exprs: Vec<String> = dash["panels"]
        .as_array()
        .unwrap()
        .iter()
        .flat_map(|p| {
            p["targets"]
                .as_array()
                .unwrap()
                .iter()
                .map(|t| t["expr"].as_str().unwrap().to_string())
        })
        .collect();
    exprs.push(std::fs::read_to_string(monitoring().join("prometheus/alerts/ai_alerts.yml")).unwrap());
    let mut names = BTreeSet::new();
    for e in exprs {
        let mut rest = e.as_str();
        while let Some(i) = rest.find("llm_gateway_") {
            let tail = &rest[i..];
            let end = tail
                .find(|c: char| !(c.is_ascii_alphanumeric() || c == '_'))
                .unwrap_or(tail.len());
            names.insert(tail[..end].to_string());
            rest = &tail[end..];
        }
    }
    names
}

#[tokio::test]
async fn every_metric_of_the_dashboard_and_rules_exists_on_the_gateway() {
    let stand = common::stand().await;
    // One fallback (OpenAI fails, retried once, then Kimi answers) and one stream, so every family has a series.
    stand.fakes["openai"]
        .add_fault(llm_mocks::FaultSpec::new(llm_mocks::FaultKind::ServerError).times(2))
        .unwrap();
    common::call(
        &stand.app,
        "POST",
        "/v1/chat/completions",
        Some(common::chat(false)),
        &[],
    )
    .await;
    common::call(
        &stand.app,
        "POST",
        "/v1/chat/completions",
        Some(common::chat(true)),
        &[],
    )
    .await;
    let text = common::metrics(&stand.app).await;
    let families: BTreeSet<&str> = text
        .lines()
        .filter_map(|l| l.strip_prefix("# TYPE "))
        .filter_map(|l| l.split_whitespace().next())
        .collect();
    let used = metric_names_used();
    assert!(used.len() >= 12, "{used:?}");
    for name in &used {
        let family = ["_total", "_bucket", "_sum", "_count"]
            .iter()
            .find_map(|s| name.strip_suffix(s).filter(|f| families.contains(f)))
            .unwrap_or(name.as_str());
        assert!(
            families.contains(family),
            "{name} is used by the dashboard or the rules but not on /metrics"
        );
    }
}

/// Kills the child process when dropped, so a failing test leaves no Prometheus behind.
struct Reaper(Child, PathBuf);

impl Drop for Reaper {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
        let _ = std::fs::remove_dir_all(&self.1);
    }
}

async fn prom_query(client: &reqwest::Client, base: &str, path: &str) -> serde_json::Value {
    match client.get(format!("{base}{path}")).send().await {
        Ok(r) => r.json().await.unwrap_or_default(),
        Err(_) => serde_json::Value::Null,
    }
}

/// Prometheus with the shipped rules (`for:` shortened so a short outage is enough), scraping `gw` every second.
async fn start_prometheus(
    prometheus: &std::path::Path,
    gw: std::net::SocketAddr,
) -> Option<(Reaper, String)> {
    // Prometheus with the shipped rules, `for:` shortened so a short outage is enough, scraping every second.
    let dir = std::env::temp_dir().join(format!("llm-prom-{}-{}", std::process::id(), gw.port()));
    std::fs::create_dir_all(&dir).unwrap();
    let rules = std::fs::read_to_string(monitoring().join("prometheus/alerts/ai_alerts.yml")).unwrap();
    let rules: String = rules
        .lines()
        .map(|l| {
            if l.trim_start().starts_with("for: ") {
                "        for: 0s"
            } else {
                l
            }
        })
        .collect::<Vec<_>>()
        .join("\n");
    std::fs::write(dir.join("rules.yml"), rules).unwrap();
    std::fs::write(
        dir.join("prometheus.yml"),
        format!(
            "global: {{ scrape_interval: 1s, evaluation_interval: 1s }}\nrule_files: [rules.yml]\n\
             scrape_configs:\n  - job_name: llm-gateway\n    static_configs:\n      - targets: ['{gw}']\n"
        ),
    )
    .unwrap();
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let child = Command::new(prometheus)
        .arg(format!("--config.file={}", dir.join("prometheus.yml").display()))
        .arg(format!("--storage.tsdb.path={}", dir.join("data").display()))
        .arg(format!("--web.listen-address=127.0.0.1:{port}"))
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let reaper = Reaper(child, dir.clone());
    let base = format!("http://127.0.0.1:{port}");
    let client = reqwest::Client::new();
    let ready = async {
        loop {
            if let Ok(r) = client.get(format!("{base}/-/ready")).send().await {
                if r.status().is_success() {
                    break;
                }
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    };
    tokio::time::timeout(Duration::from_secs(30), ready)
        .await
        .expect("prometheus became ready");

    Some((reaper, base))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn real_prometheus_sees_fallbacks_and_fires_the_alert_during_an_outage() {
    let Some(prometheus) = tool("prometheus") else {
        return;
    };
    // The gateway, over TCP, in front of the fakes: OpenAI first, then Kimi.
    let fakes = common::fakes().await;
    let (state, _) = common::gateway(&common::yaml(&fakes, "openai, kimi", "", "compatible"));
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let gw = listener.local_addr().unwrap();
    let (stop_tx, stop_rx) = tokio::sync::oneshot::channel::<()>();
    let server = tokio::spawn(llm_gateway::server::run(listener, None, state, async move {
        let _ = stop_rx.await;
    }));

    let Some((_reaper, base)) = start_prometheus(&prometheus, gw).await else {
        return;
    };
    let client = reqwest::Client::new();

    // Traffic through the outage: OpenAI answers 500 to everything, Kimi serves.
    fakes["openai"]
        .add_fault(llm_mocks::FaultSpec::new(llm_mocks::FaultKind::ServerError))
        .unwrap();
    let traffic = {
        let client = client.clone();
        tokio::spawn(async move {
            loop {
                let r = client
                    .post(format!("http://{gw}/v1/chat/completions"))
                    .json(&common::chat(false))
                    .send()
                    .await
                    .unwrap();
                assert_eq!(r.status(), 200);
                tokio::time::sleep(Duration::from_millis(50)).await;
            }
        })
    };
    let fallbacks_seen = async {
        loop {
            let v = prom_query(
                &client,
                &base,
                "/api/v1/query?query=sum(llm_gateway_fallbacks_total)",
            )
            .await;
            let n: f64 = v["data"]["result"][0]["value"][1]
                .as_str()
                .and_then(|s| s.parse().ok())
                .unwrap_or(0.0);
            if n > 0.0 {
                return n;
            }
            tokio::time::sleep(Duration::from_millis(250)).await;
        }
    };
    let n = tokio::time::timeout(Duration::from_secs(30), fallbacks_seen)
        .await
        .expect("Prometheus saw fallbacks");
    assert!(n > 0.0);
    let fired = async {
        loop {
            let v = prom_query(&client, &base, "/api/v1/alerts").await;
            let firing = v["data"]["alerts"]
                .as_array()
                .into_iter()
                .flatten()
                .any(|a| a["labels"]["alertname"] == "LLMHighFallbackRate" && a["state"] == "firing");
            if firing {
                return;
            }
            tokio::time::sleep(Duration::from_millis(250)).await;
        }
    };
    tokio::time::timeout(Duration::from_secs(30), fired)
        .await
        .expect("LLMHighFallbackRate fired");
    traffic.abort();
    let _ = stop_tx.send(());
    let _ = tokio::time::timeout(Duration::from_secs(10), server).await;
}

/// The value of the first series of an instant query, or `None` while the result is empty.
async fn first_value(client: &reqwest::Client, base: &str, query: &str) -> Option<f64> {
    let url = format!("/api/v1/query?query={}", urlencode(query));
    let v = prom_query(client, base, &url).await;
    v["data"]["result"][0]["value"][1]
        .as_str()
        .and_then(|s| s.parse().ok())
}

fn urlencode(s: &str) -> String {
    s.bytes()
        .map(|b| match b {
            b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'_' | b'.' | b'~' => (b as char).to_string(),
            _ => format!("%{b:02X}"),
        })
        .collect()
}

/// The alert expression of `name` in the shipped rules.
fn alert_expr(name: &str) -> String {
    let rules: serde_norway::Value = serde_norway::from_str(
        &std::fs::read_to_string(monitoring().join("prometheus/alerts/ai_alerts.yml")).unwrap(),
    )
    .unwrap();
    rules["groups"][0]["rules"]
        .as_sequence()
        .unwrap()
        .iter()
        .find(|r| r["alert"].as_str() == Some(name))
        .and_then(|r| r["expr"].as_str())
        .unwrap_or_else(|| panic!("no alert {name}"))
        .to_string()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_first_quota_and_auth_errors_turn_their_alert_expressions_positive() {
    let Some(prometheus) = tool("prometheus") else {
        return;
    };
    let fakes = common::fakes().await;
    let (state, _) = common::gateway(&common::yaml(&fakes, "openai, kimi", "", "compatible"));
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let gw = listener.local_addr().unwrap();
    let (stop_tx, stop_rx) = tokio::sync::oneshot::channel::<()>();
    let server = tokio::spawn(llm_gateway::server::run(listener, None, state, async move {
        let _ = stop_rx.await;
    }));
    let Some((_reaper, base)) = start_prometheus(&prometheus, gw).await else {
        return;
    };
    let client = reqwest::Client::new();
    let quota = alert_expr("LLMProviderQuotaExhausted");
    let auth = alert_expr("LLMProviderAuthFailing");
    // Readiness: Prometheus has scraped the series at 0 (before any error happened) at least twice.
    let zero_seen = async {
        loop {
            let q = "count_over_time(llm_gateway_provider_requests_total{provider=\"openai\",outcome=\"quota_exhausted\"}[1m])";
            let a = "count_over_time(llm_gateway_provider_requests_total{provider=\"kimi\",outcome=\"auth\"}[1m])";
            if first_value(&client, &base, q).await >= Some(2.0)
                && first_value(&client, &base, a).await >= Some(2.0)
            {
                return;
            }
            tokio::time::sleep(Duration::from_millis(200)).await;
        }
    };
    tokio::time::timeout(Duration::from_secs(30), zero_seen)
        .await
        .expect("the outcome series are exported at 0 before the first error");
    assert_eq!(
        first_value(&client, &base, &quota).await,
        None,
        "quiet before the error"
    );
    assert_eq!(
        first_value(&client, &base, &auth).await,
        None,
        "quiet before the error"
    );

    // One quota error at OpenAI (then a long cooldown), one auth error at Kimi: one event each, ever.
    fakes["openai"]
        .add_fault(llm_mocks::FaultSpec::new(llm_mocks::FaultKind::QuotaExhausted).times(1))
        .unwrap();
    fakes["kimi"]
        .add_fault(llm_mocks::FaultSpec::new(llm_mocks::FaultKind::Auth).times(1))
        .unwrap();
    let _ = client
        .post(format!("http://{gw}/v1/chat/completions"))
        .json(&common::chat(false))
        .send()
        .await
        .unwrap();
    let m = client
        .get(format!("http://{gw}/metrics"))
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    for series in [
        "llm_gateway_provider_requests_total{provider=\"openai\",outcome=\"quota_exhausted\"} 1",
        "llm_gateway_provider_requests_total{provider=\"kimi\",outcome=\"auth\"} 1",
    ] {
        assert!(m.contains(series), "{series}\n{m}");
    }
    let positive = async {
        loop {
            let q = first_value(&client, &base, &quota).await;
            let a = first_value(&client, &base, &auth).await;
            if let (Some(q), Some(a)) = (q, a) {
                return (q, a);
            }
            tokio::time::sleep(Duration::from_millis(200)).await;
        }
    };
    let (q, a) = tokio::time::timeout(Duration::from_secs(30), positive)
        .await
        .expect("both alert expressions turned positive on the first event");
    assert!(q > 0.0 && a > 0.0, "{q} {a}");
    let _ = stop_tx.send(());
    let _ = tokio::time::timeout(Duration::from_secs(10), server).await;
}
