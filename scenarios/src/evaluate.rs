//! Turning a stage's samples, metric scrapes and fake journals into measured values, and checking them.

use std::collections::BTreeMap;

use serde::Serialize;

use crate::format::bound::show_value;
use crate::format::{Check, JournalWhat, Measure, MetricFunc, Stat, Unit};
use crate::load::Sample;
use crate::metrics::Scrape;

/// Journal counts of one fake over a stage.
#[derive(Debug, Clone, Copy, Default, Serialize)]
pub struct JournalCounts {
    /// Inference calls.
    pub inference: u64,
    /// OAuth token calls.
    pub oauth: u64,
    /// Everything.
    pub all: u64,
}

/// Everything measured over one stage.
#[derive(Debug)]
pub struct Window<'a> {
    /// The requests of the stage.
    pub samples: &'a [Sample],
    /// Metrics at the start (None when the scrape failed).
    pub before: Option<&'a Scrape>,
    /// Metrics at the end.
    pub after: Option<&'a Scrape>,
    /// Journal counts by fake.
    pub journal: &'a BTreeMap<String, JournalCounts>,
}

/// A checked expectation.
#[derive(Debug, Clone, Serialize)]
pub struct CheckResult {
    /// YAML path.
    pub path: String,
    /// As written.
    pub label: String,
    /// Whether it held.
    pub passed: bool,
    /// The measured value in the bound's unit, or why nothing could be measured.
    pub measured: String,
    /// The bound, e.g. `>= 99.00%`.
    pub bound: String,
}

/// Nearest-rank percentile of sorted values.
pub fn percentile(sorted: &[f64], p: f64) -> Option<f64> {
    if sorted.is_empty() {
        return None;
    }
    let rank = ((p / 100.0) * sorted.len() as f64).ceil() as usize;
    sorted.get(rank.clamp(1, sorted.len()) - 1).copied()
}

fn stat(values: &mut [f64], s: Stat) -> Option<f64> {
    values.sort_by(f64::total_cmp);
    match s {
        Stat::P(p) => percentile(values, p),
        Stat::Max => values.last().copied(),
        Stat::Min => values.first().copied(),
        Stat::Mean if values.is_empty() => None,
        Stat::Mean => Some(values.iter().sum::<f64>() / values.len() as f64),
    }
}

fn contains_in_order(haystack: &[String], needles: &[String]) -> bool {
    let mut it = haystack.iter();
    needles.iter().all(|n| it.any(|h| h == n))
}

/// A value and how to show it.
enum Value {
    /// A count out of `n` requests.
    Count(u64, usize),
    /// A fraction.
    Rate(f64),
    /// Seconds.
    Time(f64),
    /// A plain number.
    Plain(f64),
}

fn measure(check: &Check, w: &Window<'_>) -> Result<Value, String> {
    let s = w.samples;
    let n = s.len();
    let count = |f: &dyn Fn(&Sample) -> bool| Value::Count(s.iter().filter(|x| f(x)).count() as u64, n);
    let rate = |f: &dyn Fn(&Sample) -> bool| {
        if n == 0 {
            Err("no requests".to_string())
        } else {
            Ok(Value::Rate(s.iter().filter(|x| f(x)).count() as f64 / n as f64))
        }
    };
    Ok(match &check.measure {
        Measure::Requests => Value::Plain(n as f64),
        Measure::SuccessRate => rate(&|x| x.ok)?,
        Measure::Status5xx => count(&|x| x.status >= 500),
        Measure::Status(code) => count(&|x| x.status == *code),
        Measure::ServedBy(p) => rate(&|x| x.provider.as_deref() == Some(p.as_str()))?,
        Measure::Source(src) if src == "none" => rate(&|x| x.source.as_deref().is_none_or(|v| v == "none"))?,
        Measure::Source(src) => rate(&|x| x.source.as_deref() == Some(src.as_str()))?,
        Measure::FellBack => count(&|x| x.fallbacks > 0),
        Measure::Latency(st) => {
            let mut v: Vec<f64> = s.iter().map(|x| x.latency).collect();
            Value::Time(stat(&mut v, *st).ok_or("no requests")?)
        }
        Measure::FallbackLatency(st) => {
            let mut v: Vec<f64> = s
                .iter()
                .filter(|x| x.fallbacks > 0 && x.ok)
                .map(|x| x.latency)
                .collect();
            Value::Time(stat(&mut v, *st).ok_or("no request fell back")?)
        }
        Measure::Metric { func, selector } => {
            let after = w.after.ok_or("the metrics scrape failed")?;
            // A series that does not exist yet reads 0 (counters are created on first use).
            let (end, _) = after.sum(selector);
            match func {
                MetricFunc::Value => Value::Plain(end),
                MetricFunc::Increase => {
                    let start = w.before.map(|b| b.sum(selector).0).unwrap_or(0.0);
                    Value::Plain(end - start)
                }
            }
        }
        Measure::Journal { fake, what } => {
            let c = w.journal.get(fake).copied().unwrap_or_default();
            Value::Plain(match what {
                JournalWhat::Inference => c.inference,
                JournalWhat::Oauth => c.oauth,
                JournalWhat::All => c.all,
            } as f64)
        }
        Measure::Stream(end) => count(&|x| x.stream == Some(*end)),
        Measure::ErrorCode(code) => count(&|x| x.error_code.as_deref() == Some(code.as_str())),
        Measure::FinishReason(r) => rate(&|x| x.finish_reason.as_deref() == Some(r.as_str()))?,
        Measure::ErrorLists(list) => {
            let errors: Vec<&Sample> = s.iter().filter(|x| x.status >= 400).collect();
            if errors.is_empty() {
                return Err("no error responses".into());
            }
            let good = errors
                .iter()
                .filter(|x| contains_in_order(&x.attempts, list))
                .count();
            Value::Rate(good as f64 / errors.len() as f64)
        }
    })
}

/// Checks one expectation over a window.
pub fn evaluate(check: &Check, w: &Window<'_>) -> CheckResult {
    let b = &check.bound;
    let (passed, measured) = match measure(check, w) {
        Err(why) => (false, format!("n/a ({why})")),
        Ok(v) => {
            let (x, text) = match v {
                Value::Count(c, n) if b.unit == Unit::Percent => {
                    let share = if n == 0 { 0.0 } else { c as f64 / n as f64 };
                    (share, format!("{} ({c}/{n})", show_value(share, Unit::Percent)))
                }
                Value::Count(c, _) => (c as f64, c.to_string()),
                Value::Rate(r) => (
                    r,
                    show_value(
                        r,
                        if b.unit == Unit::Percent {
                            Unit::Percent
                        } else {
                            Unit::Plain
                        },
                    ),
                ),
                Value::Time(t) => (t, show_value(t, Unit::Seconds)),
                Value::Plain(p) => (p, show_value(p, Unit::Plain)),
            };
            (b.op.holds(x, b.value), text)
        }
    };
    CheckResult {
        path: check.path.clone(),
        label: check.label.clone(),
        passed,
        measured,
        bound: b.to_string(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn percentiles() {
        let v: Vec<f64> = (1..=100).map(f64::from).collect();
        assert_eq!(percentile(&v, 50.0), Some(50.0));
        assert_eq!(percentile(&v, 95.0), Some(95.0));
        assert_eq!(percentile(&v, 100.0), Some(100.0));
        assert_eq!(percentile(&[], 50.0), None);
        assert!(contains_in_order(
            &["a".into(), "b".into(), "c".into()],
            &["a".into(), "c".into()]
        ));
        assert!(!contains_in_order(
            &["c".into(), "a".into()],
            &["a".into(), "c".into()]
        ));
    }
}
