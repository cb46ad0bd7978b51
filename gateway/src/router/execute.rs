//! `Router::execute`: the attempt loop. Candidates in order, one deadline, per-attempt timeout, classified retries
//! inside the budget, skips at zero cost for open breakers and cooldowns, every failure kept in order.

use std::future::Future;
use std::time::Duration;

use tokio::time::Instant;

use super::{budget, lock, Admission, AttemptRecord, Candidate, RouteError, Router, Served};
use crate::config::ContentFilterPolicy;
use crate::metrics::{FallbackLabels, Outcome, ProviderLabels};
use crate::providers::{ErrorClass, ProviderError};

impl Router {
    /// Passes over a skipped provider: the traffic it would have taken falls back too, so a fallback from
    /// the previous failure (if any) to it is counted, and it becomes the `from` of the next one.
    fn hop(&self, last_failure: &mut Option<(String, Outcome)>, skipped: &str, reason: Outcome) {
        if let Some((from, why)) = last_failure.take() {
            self.metrics
                .fallbacks
                .get_or_create(&FallbackLabels {
                    from,
                    to: skipped.to_string(),
                    reason: why,
                })
                .inc();
        }
        *last_failure = Some((skipped.to_string(), reason));
    }

    /// Runs `call` on candidates in order until one succeeds, within `deadline` (from now).
    pub async fn execute<T, F, Fut>(
        &self,
        candidates: &[Candidate],
        mut call: F,
    ) -> Result<Served<T>, RouteError>
    where
        F: FnMut(&Candidate, Duration) -> Fut,
        Fut: Future<Output = Result<T, ProviderError>>,
    {
        let start = Instant::now();
        let deadline = start + self.policy.deadline;
        self.budget.deposit();
        let mut attempts = Vec::new();
        let mut upstream_wait = Duration::ZERO;
        let mut passed_over = 0u32;
        let mut last_failure: Option<(String, Outcome)> = None;
        let mut deadline_hit = false;
        // Largest context window that already said "too long": candidates not larger are skipped.
        let mut too_long_at: Option<u32> = None;

        'candidates: for cand in candidates {
            let mut retries = 0u32;
            if let (Some(floor), Some(w)) = (too_long_at, cand.context_window) {
                if w <= floor {
                    self.metrics
                        .provider_outcome(&cand.provider, Outcome::SkippedContextWindow);
                    let msg = format!("context window {w} is not larger than {floor}, which was too small");
                    attempts.push(AttemptRecord::skipped(
                        &cand.provider,
                        "skipped_context_window",
                        msg,
                    ));
                    passed_over += 1;
                    self.hop(&mut last_failure, &cand.provider, Outcome::SkippedContextWindow);
                    continue 'candidates;
                }
            }
            loop {
                let now = Instant::now();
                if now >= deadline {
                    deadline_hit = true;
                    break 'candidates;
                }
                if !cand.local && !self.connectivity.is_reachable(&cand.provider) {
                    self.metrics
                        .provider_outcome(&cand.provider, Outcome::SkippedUnreachable);
                    let msg = "last connectivity probe failed".to_string();
                    attempts.push(AttemptRecord::skipped(&cand.provider, "skipped_unreachable", msg));
                    passed_over += 1;
                    self.hop(&mut last_failure, &cand.provider, Outcome::SkippedUnreachable);
                    continue 'candidates;
                }
                if let Some(wait) = self.budgets.blocked_for(&cand.provider, now) {
                    self.metrics
                        .provider_outcome(&cand.provider, Outcome::SkippedBudget);
                    let msg = format!("budget used up for {} ms", wait.as_millis());
                    attempts.push(AttemptRecord::skipped(&cand.provider, "skipped_budget", msg));
                    passed_over += 1;
                    self.hop(&mut last_failure, &cand.provider, Outcome::SkippedBudget);
                    continue 'candidates;
                }
                match self.admit(&cand.provider, now) {
                    Admission::Allowed { .. } => {}
                    Admission::SkipOpen => {
                        self.metrics
                            .provider_outcome(&cand.provider, Outcome::SkippedBreakerOpen);
                        attempts.push(AttemptRecord::skipped(
                            &cand.provider,
                            "skipped_breaker_open",
                            "breaker open".into(),
                        ));
                        passed_over += 1;
                        self.hop(&mut last_failure, &cand.provider, Outcome::SkippedBreakerOpen);
                        continue 'candidates;
                    }
                    Admission::SkipCooldown(until) => {
                        self.metrics
                            .provider_outcome(&cand.provider, Outcome::SkippedCooldown);
                        let msg = format!("cooling down for {} ms", (until - now).as_millis());
                        attempts.push(AttemptRecord::skipped(&cand.provider, "skipped_cooldown", msg));
                        passed_over += 1;
                        self.hop(&mut last_failure, &cand.provider, Outcome::SkippedCooldown);
                        continue 'candidates;
                    }
                }
                if let Some((from, reason)) = last_failure.take() {
                    let labels = FallbackLabels {
                        from,
                        to: cand.provider.clone(),
                        reason,
                    };
                    self.metrics.fallbacks.get_or_create(&labels).inc();
                }
                self.budgets.count_request(&cand.provider, now, &self.metrics);
                let budget = cand.attempt_timeout.min(deadline - now);
                let t0 = Instant::now();
                let result = match tokio::time::timeout(budget, call(cand, budget)).await {
                    Ok(r) => r,
                    Err(_) => Err(ProviderError::new(
                        ErrorClass::Timeout,
                        format!("attempt timed out after {} ms", budget.as_millis()),
                    )),
                };
                let took = t0.elapsed();
                upstream_wait += took;
                let labels = ProviderLabels {
                    provider: cand.provider.clone(),
                };
                self.metrics
                    .provider_duration
                    .get_or_create(&labels)
                    .observe(took.as_secs_f64());
                let err = match result {
                    Ok(value) => {
                        self.record_success(&cand.provider);
                        return Ok(Served {
                            value,
                            candidate: cand.clone(),
                            fallbacks: passed_over,
                            upstream_wait,
                        });
                    }
                    Err(e) => e,
                };
                self.record_failure(&cand.provider, &err);
                attempts.push(AttemptRecord::failed(&cand.provider, &err));
                let reject = err.class == ErrorClass::BadRequest
                    || (err.class == ErrorClass::ContentFilter
                        && self.policy.content_filter == ContentFilterPolicy::Return);
                if reject {
                    return Err(RouteError::Rejected {
                        provider: cand.provider.clone(),
                        error: err,
                        attempts,
                    });
                }
                if err.class == ErrorClass::ContextLength {
                    if let Some(w) = cand.context_window {
                        too_long_at = Some(too_long_at.map_or(w, |f| f.max(w)));
                    }
                }
                if err.class.is_retryable() && retries < self.policy.retries.max_retries {
                    let wait = budget::backoff(&self.policy.retries, retries);
                    if Instant::now() + wait < deadline && self.budget.try_withdraw() {
                        retries += 1;
                        tokio::time::sleep(wait).await;
                        upstream_wait += wait;
                        continue;
                    }
                }
                last_failure = Some((cand.provider.clone(), err.class.into()));
                passed_over += 1;
                continue 'candidates;
            }
        }
        if let Some((from, reason)) = last_failure {
            self.metrics
                .fallbacks
                .get_or_create(&FallbackLabels {
                    from,
                    to: "none".into(),
                    reason,
                })
                .inc();
        }
        if deadline_hit {
            attempts.push(AttemptRecord::skipped(
                "",
                "deadline",
                format!("deadline of {:?} reached", self.policy.deadline),
            ));
        }
        let real: Vec<&AttemptRecord> = attempts
            .iter()
            .filter(|a| !a.error.starts_with("skipped") && a.error != "deadline")
            .collect();
        let all_context_length = !real.is_empty() && real.iter().all(|a| a.error == "context_length");
        let throttled = |a: &AttemptRecord| {
            matches!(
                a.error.as_str(),
                "rate_limited" | "quota_exhausted" | "skipped_cooldown" | "skipped_budget"
            )
        };
        let retry_after = if !attempts.is_empty() && attempts.iter().all(throttled) {
            let now = Instant::now();
            candidates
                .iter()
                .filter_map(|c| {
                    let cooldown = self
                        .health
                        .get(&c.provider)
                        .and_then(|h| lock(h).cooldown(now))
                        .map(|(d, _)| d);
                    cooldown.max(self.budgets.blocked_for(&c.provider, now))
                })
                .min()
        } else {
            None
        };
        Err(RouteError::AllFailed {
            attempts,
            deadline: deadline_hit,
            retry_after,
            all_context_length,
        })
    }
}
