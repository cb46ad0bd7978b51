//! `Router::execute`: the attempt loop. Candidates in order, one deadline; for each, the skip check (capability,
//! context window, reachability, budget, breaker, cooldown: no call, zero cost) and then the attempt (its timeout,
//! classified retries inside the budget); every outcome kept in order, typed.

use std::future::Future;
use std::time::Duration;

use tokio::time::Instant;

use super::{budget, Admission, AttemptRecord, Candidate, RouteError, Router, Served, Settle, Skip};
use crate::config::ContentFilterPolicy;
use crate::metrics::{FallbackLabels, Outcome};
use crate::providers::capabilities::Needs;
use crate::providers::{ErrorClass, ProviderError};
use crate::telemetry::{self, AttemptSpan, Fallback};

/// The state of one request's walk down its candidates.
struct Walk {
    deadline: Instant,
    attempts: Vec<AttemptRecord>,
    upstream_wait: Duration,
    passed_over: u32,
    /// The last candidate passed over and why: the `from` and `reason` of the next fallback.
    last_failure: Option<(String, Outcome)>,
    /// Largest context window that already said "too long": candidates not larger are skipped.
    too_long_at: Option<u32>,
}

/// What to do after a failed attempt.
enum Next {
    /// Try the same candidate again.
    Retry,
    /// Go on to the next candidate.
    Candidate,
    /// Stop: the client must see this error.
    Reject(ProviderError),
}

impl Router {
    /// Counts a fallback from the last candidate passed over to `to`.
    fn count_fallback(&self, walk: &mut Walk, to: &str) {
        if let Some((from, reason)) = walk.last_failure.take() {
            self.metrics
                .fallbacks
                .get_or_create(&FallbackLabels {
                    from,
                    to: to.to_string(),
                    reason,
                })
                .inc();
        }
    }

    /// Passes over a candidate: the traffic it would have taken falls back too, so a fallback from the previous
    /// failure (if any) to it is counted, and it becomes the `from` of the next one.
    fn pass_over(&self, walk: &mut Walk, cand: &Candidate, skip: Skip) {
        self.metrics.provider_outcome(&cand.provider, skip.outcome);
        telemetry::skipped(&cand.provider, skip.outcome.as_str(), &skip.message);
        let outcome = skip.outcome;
        walk.attempts.push(AttemptRecord::skipped(&cand.provider, skip));
        walk.passed_over += 1;
        self.count_fallback(walk, &cand.provider);
        walk.last_failure = Some((cand.provider.clone(), outcome));
    }

    /// Why `cand` must be passed over now without a call, if it must. Capability and context first (they depend
    /// on the request only), then reachability, budget and breaker/cooldown (the breaker check is last: admitting
    /// may make this call the half-open probe).
    /// The budget is taken here (one atomic check and count, shared across replicas on Redis) and given back
    /// when the breaker or a cooldown then skips the candidate.
    async fn skip_check(&self, cand: &Candidate, needs: &Needs, walk: &Walk, now: Instant) -> Option<Skip> {
        if let Some(skip) = self.static_skip(cand, needs, walk.too_long_at) {
            return Some(skip);
        }
        if let Some(wait) = self.budgets.acquire(&cand.provider, now, &self.metrics).await {
            return Some(budget_skip(wait));
        }
        let (a, reason) = self.admit(&cand.provider, now).await;
        let skip = admission_skip(a, reason, now);
        if skip.is_some() {
            self.budgets.refund(&cand.provider, &self.metrics).await;
        }
        skip
    }

    /// [`Router::skip_check`] without its side effects (no half-open transition, no probe, no metric): why `cand`
    /// would be passed over if a request with `needs` came now. For explaining a route without calling anyone.
    pub async fn would_skip(&self, cand: &Candidate, needs: &Needs, now: Instant) -> Option<Skip> {
        if let Some(skip) = self.static_skip(cand, needs, None) {
            return Some(skip);
        }
        if let Some(wait) = self.budgets.blocked_for(&cand.provider, now).await {
            return Some(budget_skip(wait));
        }
        let (a, reason) = self.peek(&cand.provider, now).await;
        admission_skip(a, reason, now)
    }

    /// The checks before the budget and the breaker: capability, context window (`too_long_at`: the largest
    /// window that already said "too long"), reachability. None of them changes any state.
    fn static_skip(&self, cand: &Candidate, needs: &Needs, too_long_at: Option<u32>) -> Option<Skip> {
        if let Some(r) = cand.caps.refuses(needs) {
            return Some(Skip::new(Outcome::SkippedCapability, r.message));
        }
        if let (Some(floor), Some(w)) = (too_long_at, cand.caps.context_window) {
            if w <= floor {
                let msg = format!("context window {w} is not larger than {floor}, which was too small");
                return Some(Skip::new(Outcome::SkippedContextWindow, msg));
            }
        }
        if !cand.local && !self.connectivity.is_reachable(&cand.provider) {
            let msg = "last connectivity probe failed".to_string();
            return Some(Skip::new(Outcome::SkippedUnreachable, msg));
        }
        None
    }

    /// One call of `call` on `cand` under its attempt timeout (bounded by the deadline), inside the attempt's
    /// span when the request is traced; the time it took counts as upstream wait.
    async fn attempt<T, F, Fut>(
        &self,
        cand: &Candidate,
        walk: &mut Walk,
        call: &mut F,
        span: Option<&AttemptSpan>,
    ) -> Result<T, ProviderError>
    where
        F: FnMut(&Candidate, Duration) -> Fut,
        Fut: Future<Output = Result<T, ProviderError>>,
    {
        let now = Instant::now();
        let budget = cand.timeouts.attempt.min(walk.deadline - now);
        let result =
            match tokio::time::timeout(budget, telemetry::within_attempt(span, call(cand, budget))).await {
                Ok(r) => r,
                Err(_) => Err(ProviderError::new(
                    ErrorClass::Timeout,
                    format!("attempt timed out after {} ms", budget.as_millis()),
                )),
            };
        let took = now.elapsed();
        walk.upstream_wait += took;
        self.metrics.provider_duration(&cand.provider, took.as_secs_f64());
        result
    }

    /// Records a failed attempt and decides what comes next.
    async fn after_failure(
        &self,
        cand: &Candidate,
        walk: &mut Walk,
        err: ProviderError,
        retries: &mut u32,
    ) -> Next {
        self.record_failure(&cand.provider, &err).await;
        walk.attempts.push(AttemptRecord::failed(&cand.provider, &err));
        let reject = err.class == ErrorClass::BadRequest
            // A model the client named itself does not exist: its 404. A logical model's mapping that a provider
            // does not know is the config's problem: the next candidate serves.
            || (err.class == ErrorClass::NotFound && cand.named_by_client)
            || (err.class == ErrorClass::ContentFilter && self.policy.content_filter == ContentFilterPolicy::Return);
        if reject {
            return Next::Reject(err);
        }
        if err.class == ErrorClass::ContextLength {
            if let Some(w) = cand.caps.context_window {
                walk.too_long_at = Some(walk.too_long_at.map_or(w, |f| f.max(w)));
            }
        }
        if err.class.is_retryable() && *retries < self.policy.retries.max_retries {
            let wait = budget::backoff(&self.policy.retries, *retries);
            if Instant::now() + wait < walk.deadline && self.budget.try_withdraw() {
                *retries += 1;
                tokio::time::sleep(wait).await;
                walk.upstream_wait += wait;
                return Next::Retry;
            }
        }
        walk.last_failure = Some((cand.provider.clone(), err.class.into()));
        walk.passed_over += 1;
        Next::Candidate
    }

    /// Runs `call` on candidates in order until one succeeds, within the deadline (from now). Candidates that
    /// cannot serve `needs` are skipped; when none of them can, nothing is called and the request is
    /// `Unservable`. With [`Settle::Deferred`] the caller reports the success (or failure) once it knows.
    pub async fn execute<T, F, Fut>(
        &self,
        candidates: &[Candidate],
        needs: &Needs,
        settle: Settle,
        mut call: F,
    ) -> Result<Served<T>, RouteError>
    where
        F: FnMut(&Candidate, Duration) -> Fut,
        Fut: Future<Output = Result<T, ProviderError>>,
    {
        if let Some(e) = unservable(candidates, needs) {
            for a in e.attempts() {
                self.metrics.provider_outcome(&a.provider, a.outcome);
            }
            return Err(e);
        }
        let start = Instant::now();
        self.budget.deposit();
        let mut walk = Walk {
            deadline: start + self.policy.deadline,
            attempts: Vec::new(),
            upstream_wait: Duration::ZERO,
            passed_over: 0,
            last_failure: None,
            too_long_at: None,
        };
        let mut deadline_hit = false;
        'candidates: for cand in candidates {
            let mut retries = 0u32;
            loop {
                let now = Instant::now();
                if now >= walk.deadline {
                    deadline_hit = true;
                    break 'candidates;
                }
                if let Some(skip) = self.skip_check(cand, needs, &walk, now).await {
                    self.pass_over(&mut walk, cand, skip);
                    continue 'candidates;
                }
                let fallback = walk.last_failure.as_ref().map(|(from, reason)| Fallback {
                    from,
                    reason: reason.as_str(),
                });
                let span = telemetry::attempt(&cand.provider, &cand.model, retries, fallback);
                self.count_fallback(&mut walk, &cand.provider);
                let result = self.attempt(cand, &mut walk, &mut call, span.as_ref()).await;
                if let Some(s) = span {
                    s.end(result.as_ref().err().map(|e| e.class.as_str()));
                }
                let err = match result {
                    Ok(value) => {
                        if settle == Settle::OnAnswer {
                            self.record_success(&cand.provider).await;
                        }
                        return Ok(Served {
                            value,
                            candidate: cand.clone(),
                            fallbacks: walk.passed_over,
                            upstream_wait: walk.upstream_wait,
                        });
                    }
                    Err(e) => e,
                };
                match self.after_failure(cand, &mut walk, err, &mut retries).await {
                    Next::Retry => continue,
                    Next::Candidate => continue 'candidates,
                    Next::Reject(error) => {
                        return Err(RouteError::Rejected {
                            provider: cand.provider.clone(),
                            error,
                            attempts: walk.attempts,
                        })
                    }
                }
            }
        }
        if let Some((from, reason)) = walk.last_failure.take() {
            self.metrics
                .fallbacks
                .get_or_create(&FallbackLabels {
                    from,
                    to: "none".into(),
                    reason,
                })
                .inc();
        }
        let attempts = walk.attempts;
        let retry_after = if !attempts.is_empty() && attempts.iter().all(AttemptRecord::is_throttle) {
            let now = Instant::now();
            let mut soonest: Option<Duration> = None;
            for c in candidates {
                let cooldown = self.cooldown_of(&c.provider, now).await;
                if let Some(w) = cooldown.max(self.budgets.blocked_for(&c.provider, now).await) {
                    soonest = Some(soonest.map_or(w, |s| s.min(w)));
                }
            }
            soonest
        } else {
            None
        };
        Err(RouteError::AllFailed {
            attempts,
            deadline: deadline_hit,
            retry_after,
        })
    }
}

/// The skip a breaker/cooldown admission means (`reason`: why it cools down).
fn admission_skip(a: Admission, reason: Option<ErrorClass>, now: Instant) -> Option<Skip> {
    match a {
        Admission::Allowed { .. } => None,
        Admission::SkipOpen => Some(Skip::new(Outcome::SkippedBreakerOpen, "breaker open".into())),
        Admission::SkipCooldown(until) => {
            let why = reason.map_or("", ErrorClass::as_str);
            Some(Skip {
                outcome: Outcome::SkippedCooldown,
                reason,
                message: format!(
                    "cooling down for {} ms after {why}",
                    until.saturating_duration_since(now).as_millis()
                ),
            })
        }
    }
}

fn budget_skip(wait: Duration) -> Skip {
    let msg = format!("budget used up for {} ms", wait.as_millis());
    Skip::new(Outcome::SkippedBudget, msg)
}

/// The request as no candidate can serve it, if so: every candidate refuses what it needs.
fn unservable(candidates: &[Candidate], needs: &Needs) -> Option<RouteError> {
    let refusals: Vec<_> = candidates
        .iter()
        .map(|c| c.caps.refuses(needs))
        .collect::<Option<Vec<_>>>()?;
    let first = refusals.first()?.clone();
    let attempts = candidates
        .iter()
        .zip(refusals)
        .map(|(c, r)| AttemptRecord::skipped(&c.provider, Skip::new(Outcome::SkippedCapability, r.message)))
        .collect();
    Some(RouteError::Unservable {
        reason: first.message,
        need: first.need,
        attempts,
    })
}
