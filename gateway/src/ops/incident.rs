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

use std::collections::{BTreeMap, BTreeSet};
use std::fmt::Write as _;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use serde::Serialize;

/// The report template; the `{{...}}` markers are filled by [`render`].
pub const TEMPLATE: &str = include_str!("../../../docs/templates/offline_incident_report.md");

/// The routes whose requests are counted as traffic (not `/v1/models`, not admin).
const INFERENCE_ROUTES: [&str; 3] = ["chat_completions", "embeddings", "assistants_generate"];

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

fn label<'a>(s: &'a Series, name: &str) -> &'a str {
    s.labels.get(name).map(String::as_str).unwrap_or("")
}

/// The increase of a counter series over the window, and the times it grew: (time, amount).
fn increases(s: &Series, window_start: f64) -> (f64, Vec<(f64, f64)>) {
    let mut steps = Vec::new();
    let Some(&(t0, v0)) = s.points.first() else {
        return (0.0, steps);
    };
    // A series born after the first scrape started from zero inside the window.
    if t0 > window_start + 1e-6 && v0 > 0.0 {
        steps.push((t0, v0));
    }
    for w in s.points.windows(2) {
        let d = w[1].1 - w[0].1;
        let grew = if d >= 0.0 { d } else { w[1].1 };
        if grew > 0.0 {
            steps.push((w[1].0, grew));
        }
    }
    (steps.iter().map(|s| s.1).fold(0.0, |a, b| a + b), steps)
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

fn sum_by(m: &Measurements, name: &str, keys: &[&str], keep: impl Fn(&Series) -> bool) -> Vec<Count> {
    let start = m.first_time().unwrap_or(m.from);
    let mut out: BTreeMap<Vec<String>, f64> = BTreeMap::new();
    for s in m.of(name).filter(|s| keep(s)) {
        let (n, _) = increases(s, start);
        let key = keys.iter().map(|k| label(s, k).to_string()).collect();
        *out.entry(key).or_default() += n;
    }
    out.into_iter()
        .filter(|(_, c)| *c > 0.0)
        .map(|(key, count)| Count { key, count })
        .collect()
}

fn inference(s: &Series) -> bool {
    INFERENCE_ROUTES.contains(&label(s, "route"))
}

/// Quantile `q` of the increase of a histogram's buckets (linear inside a bucket, like `histogram_quantile`).
fn quantile(buckets: &BTreeMap<u64, (f64, f64)>, q: f64) -> Option<f64> {
    // Keyed by the bound's bits for order; value (bound, cumulative count).
    let mut list: Vec<(f64, f64)> = buckets.values().copied().collect();
    list.sort_by(|a, b| a.0.total_cmp(&b.0));
    let total = list.last()?.1;
    if total <= 0.0 {
        return None;
    }
    let rank = q * total;
    let (mut prev_bound, mut prev_count) = (0.0, 0.0);
    for (bound, count) in list {
        if count >= rank {
            if bound.is_infinite() {
                return Some(prev_bound);
            }
            let inside = count - prev_count;
            let frac = if inside > 0.0 {
                (rank - prev_count) / inside
            } else {
                1.0
            };
            return Some(prev_bound + (bound - prev_bound) * frac);
        }
        (prev_bound, prev_count) = (bound, count);
    }
    None
}

fn parse_le(v: &str) -> Option<f64> {
    match v {
        "+Inf" | "Inf" | "inf" => Some(f64::INFINITY),
        other => other.parse().ok(),
    }
}

/// The value of a gauge series at each of its points, as transitions: (time, from, to).
fn transitions(s: &Series) -> Vec<(f64, f64, f64)> {
    s.points
        .windows(2)
        .filter(|w| w[0].1 != w[1].1)
        .map(|w| (w[1].0, w[0].1, w[1].1))
        .collect()
}

/// Groups growth steps into bursts (a pause longer than `gap` ends one): (start, end, total).
fn bursts(steps: &[(f64, f64)], gap: f64) -> Vec<(f64, f64, f64)> {
    let mut out: Vec<(f64, f64, f64)> = Vec::new();
    for &(t, n) in steps {
        match out.last_mut() {
            Some(b) if t - b.1 <= gap => {
                b.1 = t;
                b.2 += n;
            }
            _ => out.push((t, t, n)),
        }
    }
    out
}

fn breaker_name(v: f64) -> &'static str {
    match v as i64 {
        0 => "closed",
        1 => "open",
        2 => "half-open",
        _ => "unknown",
    }
}

fn impact<'a>(map: &'a mut BTreeMap<String, ProviderImpact>, name: &str) -> &'a mut ProviderImpact {
    map.entry(name.to_string()).or_insert_with(|| ProviderImpact {
        provider: name.to_string(),
        ..ProviderImpact::default()
    })
}

fn times(k: f64) -> String {
    if k == 1.0 {
        "once".into()
    } else {
        format!("{} times", num(k))
    }
}

/// Computes the report from the measurements.
pub fn analyse(m: &Measurements) -> IncidentReport {
    let start = m.first_time().unwrap_or(m.from);
    let gap = (m.resolution * 5.0).max(30.0);
    let mut timeline: Vec<Event> = m
        .marks
        .iter()
        .map(|k| Event {
            at: k.at,
            what: k.text.clone(),
        })
        .collect();

    // Mode: the label whose gauge reads 1, at each time.
    let mut mode_at: BTreeMap<u64, (f64, String)> = BTreeMap::new();
    for s in m.of("llm_gateway_mode") {
        for &(t, v) in &s.points {
            if v >= 1.0 {
                mode_at.insert(t.to_bits(), (t, label(s, "mode").to_string()));
            }
        }
    }
    let mut modes: Vec<(f64, String)> = mode_at.into_values().collect();
    modes.sort_by(|a, b| a.0.total_cmp(&b.0));
    for w in modes.windows(2) {
        if w[0].1 != w[1].1 {
            timeline.push(Event {
                at: w[1].0,
                what: format!("mode changed: {} -> {}", w[0].1, w[1].1),
            });
        }
    }

    let mut providers: BTreeMap<String, ProviderImpact> = BTreeMap::new();
    for s in m.of("llm_gateway_breaker_state") {
        let p = label(s, "provider").to_string();
        for (t, from, to) in transitions(s) {
            let what = match (from as i64, to as i64) {
                (_, 1) => {
                    impact(&mut providers, &p).breaker_openings += 1;
                    format!("breaker of {p} opened")
                }
                (_, 2) => format!("breaker of {p} half-open (one probe request)"),
                (_, 0) => format!("breaker of {p} closed"),
                _ => format!("breaker of {p}: {} -> {}", breaker_name(from), breaker_name(to)),
            };
            timeline.push(Event { at: t, what });
        }
        let end = s.points.last().map(|p| p.1);
        impact(&mut providers, &p).breaker_at_end = end;
    }
    for s in m.of("llm_gateway_cooldowns_total") {
        let (p, reason) = (label(s, "provider"), label(s, "reason"));
        let (n, steps) = increases(s, start);
        if n > 0.0 {
            *impact(&mut providers, p)
                .cooldowns
                .entry(reason.to_string())
                .or_default() += n;
        }
        for (t, _, k) in bursts(&steps, gap) {
            timeline.push(Event {
                at: t,
                what: format!("{p} cooled down for {reason} ({})", times(k)),
            });
        }
    }
    for s in m.of("llm_gateway_provider_requests_total") {
        let (p, outcome) = (label(s, "provider"), label(s, "outcome"));
        let (n, steps) = increases(s, start);
        if n <= 0.0 {
            continue;
        }
        let entry = impact(&mut providers, p);
        if outcome == "success" {
            entry.success += n;
            continue;
        }
        if outcome.starts_with("skipped_") {
            *entry.skipped.entry(outcome.to_string()).or_default() += n;
            continue;
        }
        *entry.errors.entry(outcome.to_string()).or_default() += n;
        for (t, end, k) in bursts(&steps, gap) {
            let until = if end > t {
                format!(", until {}", clock(end))
            } else {
                String::new()
            };
            timeline.push(Event {
                at: t,
                what: format!(
                    "{p} failed with {outcome} ({} attempt{}{until})",
                    num(k),
                    if k == 1.0 { "" } else { "s" }
                ),
            });
        }
    }
    let series_bursts = |name: &str, keep: &dyn Fn(&Series) -> bool, what: &dyn Fn(f64) -> String| {
        let mut steps: Vec<(f64, f64)> = m
            .of(name)
            .filter(|s| keep(s))
            .flat_map(|s| increases(s, start).1)
            .collect();
        steps.sort_by(|a, b| a.0.total_cmp(&b.0));
        bursts(&steps, gap)
            .into_iter()
            .map(|(t, _, k)| Event { at: t, what: what(k) })
            .collect::<Vec<_>>()
    };
    timeline.extend(series_bursts(
        "llm_gateway_requests_total",
        &|s| inference(s) && label(s, "status").starts_with('5'),
        &|k| format!("{} answers were 5xx", num(k)),
    ));
    timeline.extend(series_bursts(
        "llm_gateway_offline_misses_total",
        &|_| true,
        &|k| format!("{} offline misses", num(k)),
    ));
    timeline.extend(series_bursts(
        "llm_gateway_offline_hits_total",
        &|s| label(s, "source") == "package",
        &|k| format!("{} answers from offline packages", num(k)),
    ));
    timeline.sort_by(|a, b| a.at.total_cmp(&b.at));

    // Latency from the histogram's bucket increases (inference routes).
    let mut buckets: BTreeMap<u64, (f64, f64)> = BTreeMap::new();
    for s in m
        .of("llm_gateway_request_duration_seconds_bucket")
        .filter(|s| inference(s))
    {
        if let Some(le) = parse_le(label(s, "le")) {
            let (n, _) = increases(s, start);
            buckets.entry(le.to_bits()).or_insert((le, 0.0)).1 += n;
        }
    }

    let by_tier = sum_by(m, "llm_gateway_requests_total", &["source"], inference);
    let requests: f64 = by_tier.iter().map(|c| c.count).fold(0.0, |a, b| a + b);
    let by_status = sum_by(m, "llm_gateway_requests_total", &["status"], inference);
    let server_errors = by_status
        .iter()
        .filter(|c| c.key[0].starts_with('5'))
        .map(|c| c.count)
        .fold(0.0, |a, b| a + b);
    let fallbacks_by = sum_by(
        m,
        "llm_gateway_fallbacks_total",
        &["from", "to", "reason"],
        |_| true,
    );
    let fallbacks: f64 = fallbacks_by.iter().map(|c| c.count).fold(0.0, |a, b| a + b);
    let missing = NEEDED
        .iter()
        .filter(|(n, _)| m.of(n).next().is_none())
        .map(|(n, always)| {
            if *always {
                format!(
                    "`{n}`: absent. The gateway exposes it from its start, so there is no data of the gateway in this \
                     window: check the scrape target (`up{{job=\"llm-gateway\"}}`), the window and the selector"
                )
            } else {
                format!(
                    "`{n}`: no series in the window. The gateway creates it at its first event, so none was counted \
                     (or the gateway was not scraped, or predates this metric); the numbers that need it read 0"
                )
            }
        })
        .collect();
    IncidentReport {
        from: m.from,
        to: m.to,
        source: m.source.clone(),
        resolution: m.resolution,
        requests,
        by_tier,
        by_status,
        server_errors,
        fallbacks,
        fallback_rate: (requests > 0.0).then(|| fallbacks / requests),
        fallbacks_by,
        offline_hits: sum_by(m, "llm_gateway_offline_hits_total", &["source"], |_| true),
        offline_misses: sum_by(m, "llm_gateway_offline_misses_total", &[], |_| true)
            .iter()
            .map(|c| c.count)
            .fold(0.0, |a, b| a + b),
        cooldowns: sum_by(m, "llm_gateway_cooldowns_total", &["provider", "reason"], |_| {
            true
        }),
        latency_p50: quantile(&buckets, 0.5),
        latency_p99: quantile(&buckets, 0.99),
        providers: providers.into_values().collect(),
        mode_at_start: modes.first().map(|m| m.1.clone()),
        mode_at_end: modes.last().map(|m| m.1.clone()),
        timeline,
        missing,
        problems: m.problems.clone(),
    }
}

/// `2026-12-03T08:15:02Z`.
pub fn clock(unix: f64) -> String {
    if !unix.is_finite() || unix < 0.0 {
        return "?".into();
    }
    let t = UNIX_EPOCH + Duration::from_secs_f64(unix);
    humantime::format_rfc3339_seconds(t).to_string()
}

/// `08:27:02.613` precision for the timeline.
fn clock_ms(unix: f64) -> String {
    if !unix.is_finite() || unix < 0.0 {
        return "?".into();
    }
    let t = UNIX_EPOCH + Duration::from_secs_f64(unix);
    humantime::format_rfc3339_millis(t).to_string()
}

fn num(x: f64) -> String {
    let x = x + 0.0;
    if (x - x.round()).abs() < 1e-9 {
        format!("{}", x.round() as i64)
    } else {
        format!("{x:.2}")
    }
}

fn pct(part: f64, whole: f64) -> String {
    if whole > 0.0 {
        format!("{:.1}%", 100.0 * part / whole + 0.0)
    } else {
        "-".into()
    }
}

fn seconds(x: Option<f64>) -> String {
    match x {
        Some(s) if s < 1.0 => format!("{:.1} ms", s * 1000.0),
        Some(s) => format!("{s:.2} s"),
        None => "no requests".into(),
    }
}

fn table(head: &[&str], rows: impl IntoIterator<Item = Vec<String>>) -> String {
    let mut out = format!("| {} |\n|{}\n", head.join(" | "), "---|".repeat(head.len()));
    let mut any = false;
    for r in rows {
        any = true;
        let _ = writeln!(out, "| {} |", r.join(" | "));
    }
    if !any {
        let _ = writeln!(out, "| {} |", vec!["-"; head.len()].join(" | "));
    }
    out.trim_end().to_string()
}

/// The report as Markdown: the template with every marker filled.
pub fn render(r: &IncidentReport) -> String {
    let minutes = (r.to - r.from) / 60.0;
    let window = format!("{} to {} ({minutes:.1} min)", clock(r.from), clock(r.to));
    let source = format!("{} (one point every {} s)", r.source, num(r.resolution.max(0.0)));
    let mut summary = format!(
        "- {} requests on the inference routes; {} answered 5xx ({}).\n",
        num(r.requests),
        num(r.server_errors),
        pct(r.server_errors, r.requests)
    );
    let _ = writeln!(
        summary,
        "- fallbacks: {} ({} of requests); offline: {} hits, {} misses.",
        num(r.fallbacks),
        r.fallback_rate
            .map(|f| format!("{:.1}%", f * 100.0))
            .unwrap_or_else(|| "-".into()),
        num(r.offline_hits.iter().map(|c| c.count).fold(0.0, |a, b| a + b)),
        num(r.offline_misses)
    );
    let affected: Vec<String> = r
        .providers
        .iter()
        .filter(|p| p.affected())
        .map(|p| {
            let classes: Vec<&str> = p.errors.keys().map(String::as_str).collect();
            if classes.is_empty() {
                p.provider.clone()
            } else {
                format!("{} ({})", p.provider, classes.join(", "))
            }
        })
        .collect();
    let _ = writeln!(
        summary,
        "- providers affected: {}.",
        if affected.is_empty() {
            "none".to_string()
        } else {
            affected.join(", ")
        }
    );
    let _ = writeln!(
        summary,
        "- mode: {} at the start, {} at the end; latency p50 {}, p99 {}.",
        r.mode_at_start.as_deref().unwrap_or("unknown"),
        r.mode_at_end.as_deref().unwrap_or("unknown"),
        seconds(r.latency_p50),
        seconds(r.latency_p99)
    );
    if !r.missing.is_empty() || !r.problems.is_empty() {
        summary.push_str("- some data is missing: see \"Data the report lacks\".\n");
    }
    let timeline = table(
        &["time (UTC)", "+min", "event"],
        r.timeline.iter().map(|e| {
            vec![
                clock_ms(e.at),
                format!("{:.1}", (e.at - r.from) / 60.0),
                e.what.clone(),
            ]
        }),
    );
    let tiers = table(
        &["tier (source)", "requests", "share"],
        r.by_tier
            .iter()
            .map(|c| vec![format!("`{}`", c.key[0]), num(c.count), pct(c.count, r.requests)]),
    ) + "\n\n"
        + &table(
            &["status", "requests", "share"],
            r.by_status
                .iter()
                .map(|c| vec![c.key[0].clone(), num(c.count), pct(c.count, r.requests)]),
        );
    let latency = format!(
        "End-to-end latency (inference routes, estimated from the histogram buckets): p50 {}, p99 {}.",
        seconds(r.latency_p50),
        seconds(r.latency_p99)
    );
    let join = |m: &BTreeMap<String, f64>| {
        if m.is_empty() {
            "-".to_string()
        } else {
            m.iter()
                .map(|(k, v)| format!("{k} {}", num(*v)))
                .collect::<Vec<_>>()
                .join(", ")
        }
    };
    let providers = table(
        &[
            "provider",
            "ok",
            "errors by class",
            "skipped",
            "cooldowns by reason",
            "breaker openings",
            "breaker at end",
        ],
        r.providers
            .iter()
            .filter(|p| p.success > 0.0 || p.affected())
            .map(|p| {
                vec![
                    p.provider.clone(),
                    num(p.success),
                    join(&p.errors),
                    join(&p.skipped),
                    join(&p.cooldowns),
                    p.breaker_openings.to_string(),
                    p.breaker_at_end.map(breaker_name).unwrap_or("?").to_string(),
                ]
            }),
    );
    let fallbacks = format!(
        "{} fallbacks, {} of requests.\n\n",
        num(r.fallbacks),
        r.fallback_rate
            .map(|f| format!("{:.1}%", f * 100.0))
            .unwrap_or_else(|| "-".into())
    ) + &table(
        &["from", "to", "reason", "count"],
        r.fallbacks_by.iter().map(|c| {
            let mut v = c.key.clone();
            v.push(num(c.count));
            v
        }),
    );
    let hits = |src: &str| {
        r.offline_hits
            .iter()
            .filter(|c| c.key[0] == src)
            .map(|c| c.count)
            .fold(0.0, |a, b| a + b)
    };
    let (local, package) = (hits("local"), hits("package"));
    let offline = format!(
        "| | count |\n|---|---|\n| answered by the local model | {} |\n| answered from offline packages | {} |\n\
         | missed (no offline answer) | {} |\n| offline hit rate | {} |",
        num(local),
        num(package),
        num(r.offline_misses),
        pct(local + package, local + package + r.offline_misses)
    );
    let mut missing = String::new();
    for p in &r.problems {
        let _ = writeln!(missing, "- collection problem: {p}");
    }
    for m in &r.missing {
        let _ = writeln!(missing, "- {m}");
    }
    if missing.is_empty() {
        missing = "Every series the report needs was present.".into();
    }
    let title = format!(
        "{} ({})",
        clock(r.from).get(..10).unwrap_or("?"),
        r.source.split_whitespace().next().unwrap_or("metrics")
    );
    let mut out = TEMPLATE.to_string();
    for (k, v) in [
        ("title", title),
        ("window", window),
        ("source", source),
        ("summary", summary.trim_end().to_string()),
        ("timeline", timeline),
        ("tiers", tiers),
        ("latency", latency),
        ("providers", providers),
        ("fallbacks", fallbacks),
        ("offline", offline),
        ("missing", missing.trim_end().to_string()),
    ] {
        out = out.replace(&format!("{{{{{k}}}}}"), &v);
    }
    out
}

/// Parses a time: RFC 3339 (`2026-12-03T08:00:00Z`), unix seconds, `now`, or `now-30m` (any humantime
/// duration).
pub fn parse_time(text: &str, now: SystemTime) -> Result<f64, String> {
    let t = text.trim();
    let unix = |s: SystemTime| {
        s.duration_since(UNIX_EPOCH)
            .map(|d| d.as_secs_f64())
            .map_err(|_| format!("{t:?} is before 1970"))
    };
    if t == "now" {
        return unix(now);
    }
    if let Some(ago) = t.strip_prefix("now-") {
        let d = humantime::parse_duration(ago).map_err(|e| format!("{t:?}: {e}"))?;
        return unix(
            now.checked_sub(d)
                .ok_or_else(|| format!("{t:?} is too far back"))?,
        );
    }
    if let Ok(secs) = t.parse::<f64>() {
        if secs.is_finite() && secs >= 0.0 {
            return Ok(secs);
        }
    }
    humantime::parse_rfc3339_weak(t)
        .map_err(|e| {
            format!("{t:?} is not a time ({e}); use RFC 3339 (2026-12-03T08:00:00Z), unix seconds or now-1h")
        })
        .and_then(unix)
}

/// Where and how to ask Prometheus.
#[derive(Debug, Clone)]
pub struct PromQuery {
    /// Base URL, e.g. `http://127.0.0.1:9090`.
    pub url: String,
    /// Window start, unix seconds.
    pub from: f64,
    /// Window end.
    pub to: f64,
    /// Seconds between points (`None`: one point per second, or fewer for long windows: at most 10,000).
    pub step: Option<f64>,
    /// Label matchers added to every query, e.g. `job="llm-gateway",instance="10.0.0.5:6001"`.
    pub selector: Option<String>,
}

/// The step used for a window: the given one, or 1 s, raised so a series has at most 10,000 points.
pub fn step_for(q: &PromQuery) -> f64 {
    let span = (q.to - q.from).max(1.0);
    q.step.unwrap_or(1.0).max(span / 10_000.0).max(0.001)
}

/// Collects every needed family over the window from Prometheus's HTTP API (`/api/v1/query_range`).
pub async fn from_prometheus(client: &reqwest::Client, q: &PromQuery) -> Result<Measurements, String> {
    if q.to <= q.from {
        return Err(format!(
            "--to ({}) must be after --from ({})",
            clock(q.to),
            clock(q.from)
        ));
    }
    let step = step_for(q);
    let base = q.url.trim_end_matches('/');
    let mut m = Measurements {
        from: q.from,
        to: q.to,
        source: format!("Prometheus {base}"),
        resolution: step,
        ..Measurements::default()
    };
    let extra = q
        .selector
        .as_deref()
        .map(|s| s.trim().trim_start_matches('{').trim_end_matches('}').trim())
        .filter(|s| !s.is_empty());
    for (name, _) in NEEDED {
        let query = match extra {
            Some(sel) => format!("{name}{{{sel}}}"),
            None => name.to_string(),
        };
        let url = reqwest::Url::parse_with_params(
            &format!("{base}/api/v1/query_range"),
            &[
                ("query", query.as_str()),
                ("start", &format!("{:.3}", q.from)),
                ("end", &format!("{:.3}", q.to)),
                ("step", &format!("{step}")),
            ],
        )
        .map_err(|e| format!("--prometheus {base:?} is not a URL: {e}"))?;
        let resp = client
            .get(url)
            .send()
            .await
            .map_err(|e| format!("cannot reach Prometheus at {base}: {e}"))?;
        let status = resp.status();
        let body: serde_json::Value = resp.json().await.map_err(|e| {
            format!("Prometheus at {base} answered {status} with a body that is not JSON: {e}")
        })?;
        if body["status"] != "success" {
            let err = body["error"].as_str().unwrap_or("no error text");
            // A bad selector fails every query the same way: stop at the first.
            if status.is_client_error() {
                return Err(format!("Prometheus refused the query {query:?}: {err}"));
            }
            m.problems.push(format!("query {query:?} failed: {err}"));
            continue;
        }
        for r in body["data"]["result"].as_array().into_iter().flatten() {
            let mut labels: BTreeMap<String, String> = r["metric"]
                .as_object()
                .into_iter()
                .flatten()
                .filter_map(|(k, v)| Some((k.clone(), v.as_str()?.to_string())))
                .collect();
            labels.remove("__name__");
            let points = r["values"]
                .as_array()
                .into_iter()
                .flatten()
                .filter_map(|p| {
                    let t = p.get(0)?.as_f64()?;
                    let v = parse_le(p.get(1)?.as_str()?)?;
                    v.is_finite().then_some((t, v))
                })
                .collect();
            m.series.push(Series {
                name: name.to_string(),
                labels,
                points,
            });
        }
    }
    merge_instances(&mut m);
    Ok(m)
}

/// Several gateway instances (or a job relabelled): counters are summed per label set without `instance` and
/// `job` for the counts; gauges keep their instance so a transition of one is not hidden by another.
fn merge_instances(m: &mut Measurements) {
    let instances: BTreeSet<&str> = m
        .series
        .iter()
        .filter_map(|s| s.labels.get("instance").map(String::as_str))
        .collect();
    let several = instances.len() > 1;
    for s in &mut m.series {
        let instance = s.labels.remove("instance");
        s.labels.remove("job");
        if several && s.name == "llm_gateway_breaker_state" {
            if let (Some(i), Some(p)) = (instance, s.labels.get_mut("provider")) {
                *p = format!("{p}@{i}");
            }
        }
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]
mod tests {
    use super::*;

    fn series(name: &str, labels: &[(&str, &str)], points: &[(f64, f64)]) -> Series {
        Series {
            name: name.into(),
            labels: labels
                .iter()
                .map(|(k, v)| (k.to_string(), v.to_string()))
                .collect(),
            points: points.to_vec(),
        }
    }

    fn sample() -> Measurements {
        let req = |source: &str, status: &str, pts: &[(f64, f64)]| {
            series(
                "llm_gateway_requests_total",
                &[
                    ("route", "chat_completions"),
                    ("source", source),
                    ("status", status),
                ],
                pts,
            )
        };
        Measurements {
            from: 1000.0,
            to: 1010.0,
            source: "test".into(),
            resolution: 1.0,
            series: vec![
                series(
                    "llm_gateway_mode",
                    &[("mode", "auto")],
                    &[(1000.0, 1.0), (1004.0, 1.0), (1005.0, 0.0), (1010.0, 1.0)],
                ),
                series(
                    "llm_gateway_mode",
                    &[("mode", "offline")],
                    &[(1000.0, 0.0), (1004.0, 0.0), (1005.0, 1.0), (1010.0, 0.0)],
                ),
                series(
                    "llm_gateway_breaker_state",
                    &[("provider", "kimi")],
                    &[(1000.0, 0.0), (1003.0, 1.0), (1008.0, 2.0), (1009.0, 0.0)],
                ),
                req("provider", "200", &[(1000.0, 5.0), (1002.0, 7.0), (1010.0, 9.0)]),
                // Born inside the window: counted from zero.
                req("none", "503", &[(1006.0, 2.0), (1007.0, 3.0)]),
                // A restart: 4 -> 1 counts the 1.
                req(
                    "offline-package",
                    "200",
                    &[(1000.0, 3.0), (1005.0, 4.0), (1006.0, 1.0)],
                ),
                series(
                    "llm_gateway_offline_misses_total",
                    &[],
                    &[(1000.0, 0.0), (1007.0, 3.0)],
                ),
                series(
                    "llm_gateway_offline_hits_total",
                    &[("source", "package")],
                    &[(1000.0, 0.0), (1006.0, 2.0)],
                ),
            ],
            marks: Vec::new(),
            problems: Vec::new(),
        }
    }

    #[test]
    fn counts_are_increases_with_new_series_and_resets() {
        let r = analyse(&sample());
        let tier = |s: &str| r.by_tier.iter().find(|c| c.key[0] == s).map(|c| c.count);
        assert_eq!(tier("provider"), Some(4.0));
        assert_eq!(tier("none"), Some(3.0));
        assert_eq!(tier("offline-package"), Some(2.0));
        assert_eq!((r.requests, r.server_errors, r.offline_misses), (9.0, 3.0, 3.0));
        assert_eq!(r.mode_at_start.as_deref(), Some("auto"));
    }

    #[test]
    fn timeline_has_breaker_and_mode_changes_in_order() {
        let r = analyse(&sample());
        let what: Vec<&str> = r.timeline.iter().map(|e| e.what.as_str()).collect();
        let pos = |s: &str| {
            what.iter()
                .position(|w| w.contains(s))
                .unwrap_or_else(|| panic!("{s} in {what:?}"))
        };
        assert!(pos("breaker of kimi opened") < pos("mode changed: auto -> offline"));
        assert!(pos("mode changed: auto -> offline") < pos("breaker of kimi half-open"));
        assert!(pos("breaker of kimi closed") < pos("mode changed: offline -> auto"));
        assert_eq!(r.providers[0].breaker_openings, 1);
    }

    #[test]
    fn absent_families_are_named_and_the_template_is_filled() {
        let r = analyse(&sample());
        assert!(r
            .missing
            .iter()
            .any(|m| m.contains("llm_gateway_cooldowns_total")));
        assert!(!r.missing.iter().any(|m| m.contains("`llm_gateway_mode`")));
        let md = render(&r);
        assert!(!md.contains("{{"), "unfilled marker in\n{md}");
        assert!(md.contains("breaker of kimi opened"));
        let empty = analyse(&Measurements {
            from: 0.0,
            to: 60.0,
            ..Measurements::default()
        });
        assert!(empty.missing[0].contains("absent"));
        assert!(render(&empty).contains("no data of the gateway"));
    }

    #[test]
    fn quantiles_follow_histogram_quantile() {
        let mut b = BTreeMap::new();
        for (le, c) in [(0.1, 50.0), (0.5, 90.0), (1.0, 100.0), (f64::INFINITY, 100.0)] {
            b.insert(f64::to_bits(le), (le, c));
        }
        assert!((quantile(&b, 0.5).unwrap() - 0.1).abs() < 1e-9);
        assert!((quantile(&b, 0.99).unwrap() - 0.95).abs() < 1e-9);
        assert_eq!(quantile(&BTreeMap::new(), 0.5), None);
    }

    #[test]
    fn times_parse() {
        let now = UNIX_EPOCH + Duration::from_secs(10_000);
        assert_eq!(parse_time("now", now).unwrap(), 10_000.0);
        assert_eq!(parse_time("now-1h", now).unwrap(), 6_400.0);
        assert_eq!(parse_time("1700000000", now).unwrap(), 1.7e9);
        assert_eq!(parse_time("1970-01-01T00:01:00Z", now).unwrap(), 60.0);
        assert!(parse_time("yesterday", now).unwrap_err().contains("RFC 3339"));
        assert!(parse_time("now-forever", now).is_err());
        assert!(parse_time("-5", now).is_err());
    }
}
