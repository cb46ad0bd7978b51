//! Latency samples and their percentiles.

use serde::Serialize;
use std::collections::BTreeMap;
use std::time::Duration;

/// Latencies of one run, in microseconds, plus counts.
#[derive(Debug, Default, Clone)]
pub struct Samples {
    micros: Vec<u64>,
    /// Requests that failed (transport error or non-2xx).
    pub errors: u64,
    /// Why they failed (`HTTP 503 overloaded`, `connect`, ...), counted.
    pub reasons: BTreeMap<String, u64>,
}

impl Samples {
    /// Records one successful request.
    pub fn record(&mut self, d: Duration) {
        self.micros.push(d.as_micros() as u64);
    }

    /// Records one failed request and why.
    pub fn fail(&mut self, reason: String) {
        self.fail_n(reason, 1);
    }

    /// Records `n` requests that failed for the same reason.
    pub fn fail_n(&mut self, reason: String, n: u64) {
        self.errors += n;
        *self.reasons.entry(reason).or_default() += n;
    }

    /// Adds another run's samples.
    pub fn merge(&mut self, other: Samples) {
        self.micros.extend(other.micros);
        self.errors += other.errors;
        for (r, n) in other.reasons {
            *self.reasons.entry(r).or_default() += n;
        }
    }

    /// How many successful requests.
    pub fn len(&self) -> usize {
        self.micros.len()
    }

    /// Whether no request succeeded.
    pub fn is_empty(&self) -> bool {
        self.micros.is_empty()
    }

    /// The summary of these samples.
    pub fn summary(&self) -> Summary {
        let mut v = self.micros.clone();
        v.sort_unstable();
        let pct = |p: f64| -> f64 {
            if v.is_empty() {
                return f64::NAN;
            }
            let idx = ((p / 100.0) * (v.len() as f64 - 1.0)).round() as usize;
            v[idx.min(v.len() - 1)] as f64 / 1000.0
        };
        Summary {
            count: v.len() as u64,
            errors: self.errors,
            p50_ms: pct(50.0),
            p90_ms: pct(90.0),
            p99_ms: pct(99.0),
            p999_ms: pct(99.9),
            max_ms: v.last().map(|m| *m as f64 / 1000.0).unwrap_or(f64::NAN),
        }
    }
}

/// Percentiles in milliseconds.
#[derive(Debug, Clone, Copy, Serialize)]
pub struct Summary {
    /// Successful requests.
    pub count: u64,
    /// Failed requests.
    pub errors: u64,
    /// Median.
    pub p50_ms: f64,
    /// 90th percentile.
    pub p90_ms: f64,
    /// 99th percentile.
    pub p99_ms: f64,
    /// 99.9th percentile.
    pub p999_ms: f64,
    /// Slowest.
    pub max_ms: f64,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn percentiles() {
        let mut s = Samples::default();
        for i in 1..=1000 {
            s.record(Duration::from_micros(i * 1000));
        }
        let m = s.summary();
        assert_eq!(m.count, 1000);
        assert!((m.p50_ms - 500.0).abs() <= 1.0, "{}", m.p50_ms);
        assert!((m.p99_ms - 990.0).abs() <= 1.0);
        assert_eq!(m.max_ms, 1000.0);
        assert!(Samples::default().summary().p50_ms.is_nan());
    }
}
