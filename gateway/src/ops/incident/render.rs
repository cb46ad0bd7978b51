//! The report as Markdown: [`super::TEMPLATE`] with every marker filled.

use std::collections::BTreeMap;
use std::fmt::Write as _;
use std::time::{Duration, UNIX_EPOCH};

use super::analyse::breaker_name;
use super::{IncidentReport, TEMPLATE};

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

pub(super) fn num(x: f64) -> String {
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
