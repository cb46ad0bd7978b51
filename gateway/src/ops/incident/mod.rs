//! `llm-gateway incident-report`: the offline-incident report (`docs/templates/offline_incident_report.md`)
//! filled in from the gateway's own metrics over a time window.
//!
//! One renderer, two sources. [`Measurements`] is a set of metric series, each a list of (unix time, value)
//! points: [`from_prometheus`] fills it from a real Prometheus (HTTP API `query_range` over the window), and
//! `llm-scenarios run --incident-report` from the `/metrics` scrapes of a rehearsal. [`analyse`] turns it into
//! an [`IncidentReport`] (timeline of mode changes, breaker openings and closings, cooldowns, errors and misses;
//! requests per tier; latency p50/p99; providers and their error classes) and [`render`] fills the template.
//!
//! Counts are counter increases over the window: from a series' first point in the window, or from zero for a
//! series that appears after the window's first scrape (the gateway creates most series at their first event);
//! a drop is a counter reset (a restart). Gauge changes shorter than the scrape interval are not seen.

mod analyse;
mod prometheus;
mod render;
#[cfg(test)]
mod tests;

use std::collections::BTreeMap;

use serde::Serialize;

pub use analyse::analyse;
pub use prometheus::{from_prometheus, parse_time, step_for, PromQuery};
pub use render::{clock, render};

/// The report template; the `{{...}}` markers are filled by [`render`].
pub const TEMPLATE: &str = include_str!("../../../../docs/templates/offline_incident_report.md");

/// The routes whose requests are counted as traffic (not `/v1/models`, not admin).
const INFERENCE_ROUTES: [&str; 4] = [
    "chat_completions",
    "responses",
    "embeddings",
    "assistants_generate",
];

/// The metric families the report reads, and whether the gateway exposes them from its start (absent then
/// means no data at all) or only after their first event.
pub const NEEDED: [(&str, bool); 9] = [
    ("llm_gateway_mode", true),
    ("llm_gateway_breaker_state", true),
    ("llm_gateway_requests_total", false),
    ("llm_gateway_request_duration_seconds_bucket", false),
    ("llm_gateway_provider_requests_total", false),
    ("llm_gateway_fallbacks_total", false),
    ("llm_gateway_cooldowns_total", false),
    ("llm_gateway_offline_hits_total", true),
    ("llm_gateway_offline_misses_total", true),
];

/// A series' name and labels.
type SeriesKey = (String, BTreeMap<String, String>);

/// One series over the window.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Series {
    /// Sample name, e.g. `llm_gateway_requests_total`.
    pub name: String,
    /// Labels (without `__name__`).
    pub labels: BTreeMap<String, String>,
    /// (unix seconds, value), in time order.
    pub points: Vec<(f64, f64)>,
}

/// A note on the timeline from the source itself (a rehearsal's phases).
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Mark {
    /// Unix seconds.
    pub at: f64,
    /// What happened.
    pub text: String,
}

/// Everything the report is computed from.
#[derive(Debug, Clone, Default, Serialize)]
pub struct Measurements {
    /// Window start, unix seconds.
    pub from: f64,
    /// Window end, unix seconds.
    pub to: f64,
    /// Where the data comes from (shown in the report).
    pub source: String,
    /// Seconds between points (the step or the scrape interval).
    pub resolution: f64,
    /// Every series.
    pub series: Vec<Series>,
    /// Source notes for the timeline.
    pub marks: Vec<Mark>,
    /// Problems met while collecting (failed queries, failed scrapes).
    pub problems: Vec<String>,
}

impl Measurements {
    /// Builds the series from snapshots of whole scrapes: (unix seconds, [(name, labels, value)]).
    pub fn from_snapshots<I, S>(from: f64, to: f64, source: String, snapshots: I) -> Measurements
    where
        I: IntoIterator<Item = (f64, S)>,
        S: IntoIterator<Item = (String, BTreeMap<String, String>, f64)>,
    {
        let mut by_key: BTreeMap<SeriesKey, Vec<(f64, f64)>> = BTreeMap::new();
        let mut times = Vec::new();
        for (t, samples) in snapshots {
            times.push(t);
            for (name, labels, value) in samples {
                if NEEDED.iter().any(|(n, _)| *n == name) {
                    by_key.entry((name, labels)).or_default().push((t, value));
                }
            }
        }
        let resolution = times.windows(2).map(|w| w[1] - w[0]).fold(0.0_f64, f64::max);
        Measurements {
            from,
            to,
            source,
            resolution,
            series: by_key
                .into_iter()
                .map(|((name, labels), mut points)| {
                    points.sort_by(|a, b| a.0.total_cmp(&b.0));
                    Series { name, labels, points }
                })
                .collect(),
            marks: Vec::new(),
            problems: Vec::new(),
        }
    }

    fn of<'a>(&'a self, name: &'a str) -> impl Iterator<Item = &'a Series> + 'a {
        self.series.iter().filter(move |s| s.name == name)
    }

    fn first_time(&self) -> Option<f64> {
        self.series
            .iter()
            .filter_map(|s| s.points.first().map(|p| p.0))
            .min_by(f64::total_cmp)
    }
}
/// A count with the labels it was grouped by.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Count {
    /// Label values, in the order the table names them.
    pub key: Vec<String>,
    /// The increase over the window.
    pub count: f64,
}

/// One timeline line.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Event {
    /// Unix seconds (the first point that showed it).
    pub at: f64,
    /// What happened.
    pub what: String,
}

/// One provider's part.
#[derive(Debug, Clone, Default, PartialEq, Serialize)]
pub struct ProviderImpact {
    /// Provider name.
    pub provider: String,
    /// Successful attempts.
    pub success: f64,
    /// Failed attempts by error class.
    pub errors: BTreeMap<String, f64>,
    /// Skips without a call (`skipped_*`).
    pub skipped: BTreeMap<String, f64>,
    /// Cooldowns started, by reason.
    pub cooldowns: BTreeMap<String, f64>,
    /// Breaker openings seen.
    pub breaker_openings: usize,
    /// Breaker state at the end of the window (0 closed, 1 open, 2 half-open), when known.
    pub breaker_at_end: Option<f64>,
}

impl ProviderImpact {
    /// Anything but success.
    pub fn affected(&self) -> bool {
        !self.errors.is_empty()
            || !self.cooldowns.is_empty()
            || self.breaker_openings > 0
            || !self.skipped.is_empty()
    }
}

/// The computed report.
#[derive(Debug, Clone, Default, Serialize)]
pub struct IncidentReport {
    /// Window start, unix seconds.
    pub from: f64,
    /// Window end.
    pub to: f64,
    /// Where the data came from.
    pub source: String,
    /// Seconds between points.
    pub resolution: f64,
    /// Requests on the inference routes.
    pub requests: f64,
    /// Of them, by `source` label.
    pub by_tier: Vec<Count>,
    /// Of them, by status.
    pub by_status: Vec<Count>,
    /// Of them, 5xx.
    pub server_errors: f64,
    /// Fallbacks.
    pub fallbacks: f64,
    /// Fallbacks per request.
    pub fallback_rate: Option<f64>,
    /// By from, to, reason.
    pub fallbacks_by: Vec<Count>,
    /// Offline hits by source (`local`, `package`).
    pub offline_hits: Vec<Count>,
    /// Offline misses.
    pub offline_misses: f64,
    /// Cooldowns by provider and reason.
    pub cooldowns: Vec<Count>,
    /// End-to-end latency p50 / p99 (seconds, histogram estimate), when there were requests.
    pub latency_p50: Option<f64>,
    /// p99.
    pub latency_p99: Option<f64>,
    /// Per provider.
    pub providers: Vec<ProviderImpact>,
    /// Mode at the start and at the end of the window.
    pub mode_at_start: Option<String>,
    /// At the end.
    pub mode_at_end: Option<String>,
    /// In time order.
    pub timeline: Vec<Event>,
    /// Families with no series in the window, with what that means.
    pub missing: Vec<String>,
    /// Collection problems.
    pub problems: Vec<String>,
}
