//! `llm-gateway offline-dry-run`: the gateway in process (no socket, so it runs beside a live gateway) in offline
//! mode over a prompt set; hit rate by source and latency percentiles; passes only with offline hits and no 5xx.

use std::collections::BTreeMap;
use std::path::Path;

use axum::body::Body;
use axum::http::Request;
use serde::Serialize;
use serde_json::json;
use tokio::time::Instant;
use tower::ServiceExt;

use super::percentile;
use crate::config::{Config, Mode};
use crate::{app, AppState};

/// One prompt's outcome.
#[derive(Debug, Clone, Serialize)]
pub struct PromptResult {
    /// The prompt.
    pub prompt: String,
    /// HTTP status.
    pub status: u16,
    /// `X-LLM-Source` (`local`, `offline-package`, ...), or `none`.
    pub source: String,
    /// Offline package entry, when one answered.
    pub entry: Option<String>,
    /// Milliseconds.
    pub ms: f64,
}

/// The whole run.
#[derive(Debug, Clone, Serialize)]
pub struct DryRunReport {
    /// Prompts sent.
    pub prompts: usize,
    /// Answered (2xx).
    pub answered: usize,
    /// Share answered.
    pub hit_rate: f64,
    /// Answers by source.
    pub by_source: BTreeMap<String, usize>,
    /// 5xx answers.
    pub server_errors: usize,
    /// `llm_gateway_offline_hits_total` after the run (all sources).
    pub offline_hits_total: f64,
    /// Latency percentiles in milliseconds.
    pub latency_ms: BTreeMap<&'static str, f64>,
    /// Offline hits > 0 and no 5xx.
    pub passed: bool,
    /// Package load problems.
    pub package_issues: Vec<String>,
    /// Per prompt.
    pub results: Vec<PromptResult>,
}

/// Reads a prompt file: one prompt a line, blank lines and `#` comments ignored.
pub fn read_prompts(path: &Path) -> Result<Vec<String>, String> {
    let text = std::fs::read_to_string(path).map_err(|e| format!("cannot read {}: {e}", path.display()))?;
    Ok(text
        .lines()
        .map(str::trim)
        .filter(|l| !l.is_empty() && !l.starts_with('#'))
        .map(str::to_string)
        .collect())
}

fn offline_hits(metrics: &str) -> f64 {
    metrics
        .lines()
        .filter(|l| l.starts_with("llm_gateway_offline_hits_total{"))
        .filter_map(|l| l.rsplit(' ').next().and_then(|v| v.parse::<f64>().ok()))
        .sum()
}

/// Runs `prompts` (default: every prompt of the loaded packages) through the gateway in offline mode.
pub async fn run(mut cfg: Config, prompts: Option<Vec<String>>) -> Result<DryRunReport, String> {
    cfg.mode = Mode::Offline;
    cfg.connectivity = None;
    cfg.clients.clear();
    let state = AppState::new(cfg).map_err(|e| e.to_string())?;
    let prompts = match prompts {
        Some(p) => p,
        None => state.offline.prompts().map(str::to_string).collect(),
    };
    if prompts.is_empty() {
        return Err("no prompts: pass --prompts FILE or configure offline.packages".into());
    }
    let router = app(state.clone());
    let mut results = Vec::with_capacity(prompts.len());
    for prompt in prompts {
        let body = json!({"model": "default", "messages": [{"role": "user", "content": prompt}]});
        let req = Request::post("/v1/chat/completions")
            .header("content-type", "application/json")
            .body(Body::from(body.to_string()))
            .map_err(|e| e.to_string())?;
        let t0 = Instant::now();
        let resp = router.clone().oneshot(req).await.map_err(|e| e.to_string())?;
        let h = |n: &str| {
            resp.headers()
                .get(n)
                .and_then(|v| v.to_str().ok())
                .map(str::to_string)
        };
        let (source, entry) = (h("x-llm-source"), h("x-llm-offline-entry"));
        let status = resp.status().as_u16();
        let _ = axum::body::to_bytes(resp.into_body(), 16 * 1024 * 1024).await;
        results.push(PromptResult {
            prompt,
            status,
            source: source.unwrap_or_else(|| "none".into()),
            entry,
            ms: t0.elapsed().as_secs_f64() * 1000.0,
        });
    }
    let mut by_source = BTreeMap::new();
    for r in results.iter().filter(|r| r.status < 300) {
        *by_source.entry(r.source.clone()).or_insert(0) += 1;
    }
    let answered = results.iter().filter(|r| r.status < 300).count();
    let server_errors = results.iter().filter(|r| r.status >= 500).count();
    let mut lat: Vec<f64> = results.iter().map(|r| r.ms).collect();
    lat.sort_by(f64::total_cmp);
    let latency_ms = [("p50", 50.0), ("p90", 90.0), ("p99", 99.0), ("max", 100.0)]
        .into_iter()
        .map(|(k, p)| (k, (percentile(&lat, p) * 1000.0).round() / 1000.0))
        .collect();
    let hits = offline_hits(&state.metrics.encode());
    Ok(DryRunReport {
        prompts: results.len(),
        answered,
        hit_rate: answered as f64 / results.len() as f64,
        by_source,
        server_errors,
        offline_hits_total: hits,
        latency_ms,
        passed: hits > 0.0 && server_errors == 0,
        package_issues: state.offline.issues().iter().map(ToString::to_string).collect(),
        results,
    })
}

/// The console summary.
pub fn summary(r: &DryRunReport) -> String {
    let mut out = String::new();
    for p in r.results.iter().filter(|p| p.status >= 300) {
        out.push_str(&format!("  {} {:?}\n", p.status, p.prompt));
    }
    out.push_str(&format!(
        "offline dry run: {} prompts, {} answered (hit rate {:.1}%), by source {:?}, {} 5xx\n",
        r.prompts,
        r.answered,
        r.hit_rate * 100.0,
        r.by_source,
        r.server_errors
    ));
    out.push_str(&format!(
        "latency ms: p50 {} p90 {} p99 {} max {}\n",
        r.latency_ms["p50"], r.latency_ms["p90"], r.latency_ms["p99"], r.latency_ms["max"]
    ));
    out.push_str(&format!(
        "llm_gateway_offline_hits_total = {}; {}\n",
        r.offline_hits_total,
        if r.passed {
            "PASS"
        } else {
            "FAIL (needs offline hits > 0 and no 5xx)"
        }
    ));
    for i in &r.package_issues {
        out.push_str(&format!("package problem: {i}\n"));
    }
    out
}
