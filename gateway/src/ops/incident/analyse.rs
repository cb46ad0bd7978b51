//! The analysis: counter increases, gauge transitions and bursts over the window, into an [`IncidentReport`].

use std::collections::BTreeMap;

use super::render::{clock, num};
use super::{Count, Event, IncidentReport, Measurements, ProviderImpact, Series, INFERENCE_ROUTES, NEEDED};

pub(super) fn label<'a>(s: &'a Series, name: &str) -> &'a str {
    s.labels.get(name).map(String::as_str).unwrap_or("")
}

/// The increase of a counter series over the window, and the times it grew: (time, amount).
pub(super) fn increases(s: &Series, window_start: f64) -> (f64, Vec<(f64, f64)>) {
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
pub(super) fn quantile(buckets: &BTreeMap<u64, (f64, f64)>, q: f64) -> Option<f64> {
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

pub(super) fn parse_le(v: &str) -> Option<f64> {
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
pub(super) fn bursts(steps: &[(f64, f64)], gap: f64) -> Vec<(f64, f64, f64)> {
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

pub(super) fn breaker_name(v: f64) -> &'static str {
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
