//! What a run produced: the report types (also the JSON journal) and the writers: [`console`], [`junit`], [`html`].

pub mod console;
pub mod html;
pub mod junit;
pub mod svg;

use std::collections::BTreeMap;
use std::path::Path;

use serde::Serialize;

use crate::evaluate::{percentile, CheckResult, JournalCounts};
use crate::faults::RollbackResult;
use crate::load::Sample;

/// The whole run (the JSON journal).
#[derive(Debug, Clone, Serialize)]
pub struct RunReport {
    /// Unix time of the start, in seconds.
    pub started_unix: u64,
    /// Wall time of the run.
    pub wall_seconds: f64,
    /// Requests sent, all scenarios together.
    pub total_requests: u64,
    /// Every scenario passed.
    pub passed: bool,
    /// Per scenario.
    pub scenarios: Vec<ScenarioReport>,
}

/// One scenario.
#[derive(Debug, Clone, Serialize)]
pub struct ScenarioReport {
    /// Name.
    pub name: String,
    /// File.
    pub file: String,
    /// Description.
    pub description: String,
    /// Tags.
    pub tags: Vec<String>,
    /// Seed.
    pub seed: u64,
    /// Every stage ran, every check held, the rollback succeeded.
    pub passed: bool,
    /// A failure outside the checks (stand did not start, a fault could not be applied...).
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub errors: Vec<String>,
    /// Wall time.
    pub wall_seconds: f64,
    /// Requests sent.
    pub requests: u64,
    /// Steady state before, phases, steady state after.
    pub stages: Vec<StageReport>,
    /// The rollback actions and their outcome.
    pub rollback: Vec<RollbackResult>,
    /// Every request (for the timeline).
    pub samples: Vec<Sample>,
    /// The offline-incident report written for this run (`--incident-report`).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub incident_report: Option<String>,
}

/// Where a stage sits in the scenario.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum StageKind {
    /// Steady state, before the phases.
    SteadyBefore,
    /// A phase.
    Phase,
    /// Steady state, after the rollback.
    SteadyAfter,
}

/// One stage (a phase or a steady-state check).
#[derive(Debug, Clone, Serialize)]
pub struct StageReport {
    /// Name.
    pub name: String,
    /// Kind.
    pub kind: StageKind,
    /// Start, seconds since the scenario started.
    pub start: f64,
    /// End.
    pub end: f64,
    /// The faults active during the stage.
    pub faults: Vec<String>,
    /// Did not run (the steady state before failed).
    pub skipped: bool,
    /// Problems outside the checks.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub errors: Vec<String>,
    /// Request summary.
    pub summary: Summary,
    /// Journal counts by fake.
    pub journal: BTreeMap<String, JournalCounts>,
    /// Checks.
    pub checks: Vec<CheckResult>,
}

impl StageReport {
    /// No errors and every check held.
    pub fn passed(&self) -> bool {
        !self.skipped && self.errors.is_empty() && self.checks.iter().all(|c| c.passed)
    }
}

/// Request figures of one stage.
#[derive(Debug, Clone, Default, Serialize)]
pub struct Summary {
    /// Requests.
    pub requests: u64,
    /// Successful (2xx, well-formed, completed streams).
    pub ok: u64,
    /// Latency percentiles in seconds.
    pub p50: f64,
    /// p95.
    pub p95: f64,
    /// p99.
    pub p99: f64,
    /// max.
    pub max: f64,
    /// Requests per serving provider (`-` when none).
    pub served_by: BTreeMap<String, u64>,
    /// Requests per `X-LLM-Source`.
    pub sources: BTreeMap<String, u64>,
    /// Requests per status (0 = no response).
    pub status: BTreeMap<u16, u64>,
    /// Requests that fell back.
    pub fell_back: u64,
}

impl Summary {
    /// Summarises samples.
    pub fn of(samples: &[Sample]) -> Summary {
        let mut lat: Vec<f64> = samples.iter().map(|s| s.latency).collect();
        lat.sort_by(f64::total_cmp);
        let mut out = Summary {
            requests: samples.len() as u64,
            ok: samples.iter().filter(|s| s.ok).count() as u64,
            p50: percentile(&lat, 50.0).unwrap_or(0.0),
            p95: percentile(&lat, 95.0).unwrap_or(0.0),
            p99: percentile(&lat, 99.0).unwrap_or(0.0),
            max: lat.last().copied().unwrap_or(0.0),
            fell_back: samples.iter().filter(|s| s.fallbacks > 0).count() as u64,
            ..Summary::default()
        };
        for s in samples {
            *out.served_by
                .entry(s.provider.clone().unwrap_or_else(|| "-".into()))
                .or_default() += 1;
            *out.sources
                .entry(s.source.clone().unwrap_or_else(|| "none".into()))
                .or_default() += 1;
            *out.status.entry(s.status).or_default() += 1;
        }
        out
    }
}

/// Writes the JSON journal.
pub fn write_json(report: &RunReport, path: &Path) -> std::io::Result<()> {
    create_parent(path)?;
    let text = serde_json::to_string_pretty(report).map_err(std::io::Error::other)?;
    std::fs::write(path, text)
}

/// Creates the parent directory of `path`.
pub(crate) fn create_parent(path: &Path) -> std::io::Result<()> {
    match path.parent() {
        Some(p) if !p.as_os_str().is_empty() => std::fs::create_dir_all(p),
        _ => Ok(()),
    }
}

/// Escapes text for XML and HTML.
pub(crate) fn escape(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    for c in text.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&#39;"),
            c if (c as u32) < 0x20 && c != '\n' && c != '\t' => {}
            c => out.push(c),
        }
    }
    out
}
