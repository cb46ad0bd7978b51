//! Validation of `expect:`: every key turned into a [`Check`] with its YAML path, label and bound.

use super::super::bound::{parse_metric_check, Bound, Unit};
use super::super::raw::RawExpect;
use super::super::{Check, JournalWhat, Measure, Op, Stat, StreamEnd};
use super::Ctx;

const SOURCES: [&str; 5] = ["provider", "cache", "local", "offline-package", "none"];

#[derive(Clone, Copy, PartialEq)]
enum Kind {
    /// A fraction: plain 0..=1 or a percentage.
    Rate,
    /// A count, or a share of the requests with `%`.
    Count,
    /// A plain number only.
    Plain,
    /// A duration.
    Time,
}

fn check(
    c: &mut Ctx,
    out: &mut Vec<Check>,
    path: String,
    key: &str,
    text: &str,
    kind: Kind,
    measure: Measure,
) {
    let bound = match Bound::parse(text) {
        Ok(b) => b,
        Err(e) => return c.push(path, e),
    };
    let ok = match (kind, bound.unit) {
        (Kind::Rate, Unit::Plain) if !(0.0..=1.0).contains(&bound.value) => {
            return c.push(
                path,
                format!("{text:?}: a rate is a fraction from 0 to 1 or a percentage such as 99%"),
            );
        }
        (Kind::Rate, Unit::Plain | Unit::Percent) | (Kind::Count, Unit::Plain | Unit::Percent) => true,
        (Kind::Plain, Unit::Plain) | (Kind::Time, Unit::Seconds) => true,
        _ => false,
    };
    if !ok {
        let expected = match kind {
            Kind::Rate => "a fraction or a percentage, e.g. \">= 99%\"",
            Kind::Count => "a count or a share, e.g. \"== 0\" or \"<= 1%\"",
            Kind::Plain => "a plain count, e.g. \">= 100\"",
            Kind::Time => "a duration, e.g. \"< 500ms\"",
        };
        return c.push(path, format!("{text:?}: expected {expected}"));
    }
    out.push(Check {
        path,
        label: format!("{key} {}", text.trim()),
        measure,
        bound,
    });
}

fn stat(key: &str) -> Option<Stat> {
    match key {
        "mean" => Some(Stat::Mean),
        "max" => Some(Stat::Max),
        "min" => Some(Stat::Min),
        _ => key
            .strip_prefix('p')
            .and_then(|n| n.parse::<f64>().ok())
            .filter(|p| *p > 0.0 && *p <= 100.0)
            .map(Stat::P),
    }
}

pub(super) fn expect(c: &mut Ctx, at: &str, e: &RawExpect) -> Vec<Check> {
    let mut out = Vec::new();
    let o = &mut out;
    if let Some(t) = &e.requests {
        check(
            c,
            o,
            format!("{at}.requests"),
            "requests",
            t,
            Kind::Plain,
            Measure::Requests,
        );
    }
    if let Some(t) = &e.success_rate {
        check(
            c,
            o,
            format!("{at}.success_rate"),
            "success_rate",
            t,
            Kind::Rate,
            Measure::SuccessRate,
        );
    }
    if let Some(t) = &e.status_5xx {
        check(
            c,
            o,
            format!("{at}.status_5xx"),
            "status_5xx",
            t,
            Kind::Count,
            Measure::Status5xx,
        );
    }
    if let Some(t) = &e.fell_back {
        check(
            c,
            o,
            format!("{at}.fell_back"),
            "fell_back",
            t,
            Kind::Count,
            Measure::FellBack,
        );
    }
    for (code, t) in &e.status {
        let path = format!("{at}.status.{code}");
        if !(100..=599).contains(code) {
            c.push(
                path.clone(),
                format!("{code} is not an HTTP status; expected 100 to 599"),
            );
        }
        check(
            c,
            o,
            path,
            &format!("status.{code}"),
            t,
            Kind::Count,
            Measure::Status(*code),
        );
    }
    for (p, t) in &e.served_by {
        let path = format!("{at}.served_by.{p}");
        c.target(&path, p, "provider", false);
        check(
            c,
            o,
            path,
            &format!("served_by.{p}"),
            t,
            Kind::Rate,
            Measure::ServedBy(p.clone()),
        );
    }
    for (s, t) in &e.source {
        let path = format!("{at}.source.{s}");
        if !SOURCES.contains(&s.as_str()) {
            c.push(
                path.clone(),
                format!("unknown source {s:?}; expected one of {}", SOURCES.join(", ")),
            );
        }
        check(
            c,
            o,
            path,
            &format!("source.{s}"),
            t,
            Kind::Rate,
            Measure::Source(s.clone()),
        );
    }
    for (group, map, fallback) in [
        ("latency", &e.latency, false),
        ("fallback_latency", &e.fallback_latency, true),
    ] {
        for (k, t) in map {
            let path = format!("{at}.{group}.{k}");
            let Some(s) = stat(k) else {
                c.push(
                    path,
                    format!(
                        "unknown statistic {k:?}; expected p50, p90, p95, p99 (any pN), mean, min or max"
                    ),
                );
                continue;
            };
            let m = if fallback {
                Measure::FallbackLatency(s)
            } else {
                Measure::Latency(s)
            };
            check(c, o, path, &format!("{group}.{k}"), t, Kind::Time, m);
        }
    }
    for (i, t) in e.metrics.iter().enumerate() {
        let path = format!("{at}.metrics[{i}]");
        match parse_metric_check(t) {
            Ok((func, selector, bound)) => o.push(Check {
                path,
                label: t.trim().to_string(),
                measure: Measure::Metric { func, selector },
                bound,
            }),
            Err(msg) => c.push(path, msg),
        }
    }
    for (k, t) in &e.journal {
        let path = format!("{at}.journal.{k}");
        let (name, what) = match k.split_once('.') {
            None => (k.as_str(), JournalWhat::Inference),
            Some((n, "oauth")) => (n, JournalWhat::Oauth),
            Some((n, "all")) => (n, JournalWhat::All),
            Some((_, w)) => {
                c.push(
                    path,
                    format!(
                        "unknown journal selector {w:?}; expected PROVIDER, PROVIDER.oauth or PROVIDER.all"
                    ),
                );
                continue;
            }
        };
        c.target(&path, name, "fake", false);
        let m = Measure::Journal {
            fake: name.to_string(),
            what,
        };
        check(c, o, path, &format!("journal.{k}"), t, Kind::Plain, m);
    }
    let ends = [
        StreamEnd::Completed,
        StreamEnd::ErrorEvent,
        StreamEnd::Cut,
        StreamEnd::ErrorThenDone,
        StreamEnd::NotStreamed,
    ];
    for (k, t) in &e.streams {
        let path = format!("{at}.streams.{k}");
        let Some(end) = ends.iter().find(|s| s.as_str() == k) else {
            let all: Vec<&str> = ends.iter().map(|s| s.as_str()).collect();
            c.push(
                path,
                format!("unknown stream outcome {k:?}; expected one of {}", all.join(", ")),
            );
            continue;
        };
        check(
            c,
            o,
            path,
            &format!("streams.{k}"),
            t,
            Kind::Count,
            Measure::Stream(*end),
        );
    }
    for (code, t) in &e.error_code {
        let m = Measure::ErrorCode(code.clone());
        check(
            c,
            o,
            format!("{at}.error_code.{code}"),
            &format!("error_code.{code}"),
            t,
            Kind::Count,
            m,
        );
    }
    for (reason, t) in &e.finish_reason {
        check(
            c,
            o,
            format!("{at}.finish_reason.{reason}"),
            &format!("finish_reason.{reason}"),
            t,
            Kind::Rate,
            Measure::FinishReason(reason.clone()),
        );
    }
    if let Some(list) = &e.error_lists {
        let path = format!("{at}.error_lists");
        if list.is_empty() {
            c.push(
                path.clone(),
                "empty list; expected the providers every error must list, in order",
            );
        }
        for (i, p) in list.iter().enumerate() {
            c.target(&format!("{path}[{i}]"), p, "provider", false);
        }
        let bound = Bound {
            op: Op::Ge,
            value: 1.0,
            unit: Unit::Percent,
        };
        let label = format!("error_lists [{}] (every error response)", list.join(", "));
        o.push(Check {
            path,
            label,
            measure: Measure::ErrorLists(list.clone()),
            bound,
        });
    }
    out
}
