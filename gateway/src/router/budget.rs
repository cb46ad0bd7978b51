//! Retry budget (retries allowed as a share of recent requests, plus a floor per second) and full-jitter backoff.

use std::sync::Mutex;
use std::time::Duration;

use tokio::time::Instant;

use crate::config::RetryPolicy;

const WINDOW_SECS: u64 = 10;

#[derive(Debug)]
struct Inner {
    /// (second since start, deposits, withdrawals) per bucket.
    buckets: [(u64, u64, u64); WINDOW_SECS as usize],
}

/// A sliding ten-second retry budget shared by all requests.
#[derive(Debug)]
pub struct RetryBudget {
    start: Instant,
    ratio: f64,
    floor_per_sec: u32,
    inner: Mutex<Inner>,
}

impl RetryBudget {
    /// A budget from policy.
    pub fn new(policy: &RetryPolicy) -> RetryBudget {
        RetryBudget {
            start: Instant::now(),
            ratio: policy.budget_ratio,
            floor_per_sec: policy.budget_min_per_second,
            inner: Mutex::new(Inner {
                buckets: [(u64::MAX, 0, 0); WINDOW_SECS as usize],
            }),
        }
    }

    fn with_bucket<R>(&self, f: impl FnOnce(&mut Inner, usize) -> R) -> R {
        let sec = Instant::now().duration_since(self.start).as_secs();
        let idx = (sec % WINDOW_SECS) as usize;
        let mut inner = match self.inner.lock() {
            Ok(g) => g,
            Err(poisoned) => poisoned.into_inner(),
        };
        if inner.buckets[idx].0 != sec {
            inner.buckets[idx] = (sec, 0, 0);
        }
        // Forget buckets that fell out of the window.
        for b in inner.buckets.iter_mut() {
            if b.0 != u64::MAX && sec.saturating_sub(b.0) >= WINDOW_SECS {
                *b = (u64::MAX, 0, 0);
            }
        }
        f(&mut inner, idx)
    }

    /// Counts a first attempt.
    pub fn deposit(&self) {
        self.with_bucket(|inner, idx| inner.buckets[idx].1 += 1);
    }

    /// Takes one retry if the budget allows it.
    pub fn try_withdraw(&self) -> bool {
        let (ratio, floor) = (self.ratio, f64::from(self.floor_per_sec) * WINDOW_SECS as f64);
        self.with_bucket(|inner, idx| {
            let deposits: u64 = inner.buckets.iter().map(|b| b.1).sum();
            let withdrawals: u64 = inner.buckets.iter().map(|b| b.2).sum();
            let allowed = floor + ratio * deposits as f64;
            if (withdrawals as f64) < allowed {
                inner.buckets[idx].2 += 1;
                true
            } else {
                false
            }
        })
    }
}

/// Full-jitter backoff for retry number `attempt` (0-based): uniform in [0, min(max, base * 2^attempt)].
pub fn backoff(policy: &RetryPolicy, attempt: u32) -> Duration {
    let cap = policy
        .backoff_base
        .saturating_mul(1u32 << attempt.min(16))
        .min(policy.backoff_max);
    cap.mul_f64(fastrand::f64())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn policy(ratio: f64, floor: u32) -> RetryPolicy {
        RetryPolicy {
            max_retries: 1,
            backoff_base: Duration::from_millis(100),
            backoff_max: Duration::from_secs(1),
            budget_ratio: ratio,
            budget_min_per_second: floor,
        }
    }

    #[tokio::test(start_paused = true)]
    async fn budget_limits_retries_to_ratio_plus_floor() {
        let b = RetryBudget::new(&policy(0.5, 0));
        for _ in 0..4 {
            b.deposit();
        }
        assert!(b.try_withdraw());
        assert!(b.try_withdraw());
        assert!(!b.try_withdraw());
        tokio::time::advance(Duration::from_secs(11)).await;
        assert!(!b.try_withdraw(), "old deposits expired");
        b.deposit();
        b.deposit();
        assert!(b.try_withdraw());
    }

    #[test]
    fn backoff_is_capped() {
        let p = policy(0.2, 1);
        for attempt in 0..40 {
            assert!(backoff(&p, attempt) <= Duration::from_secs(1));
        }
        assert!(backoff(&p, 0) <= Duration::from_millis(100));
    }
}
