//! The fallback router: ordered candidates under one deadline, per-attempt timeouts, classified retries inside a
//! budget, cooldowns and breakers that skip a provider at zero cost.
//!
//! The router never touches HTTP: `execute` takes the attempt as a closure, so the real adapters, the streaming path
//! and the property tests all drive the same policy code.

pub mod budget;
pub mod connectivity;
#[cfg(test)]
mod degrade_tests;
mod execute;
pub mod health;
pub mod plan;
#[cfg(test)]
mod proptests;
mod shared;
#[cfg(test)]
mod tests;

use std::collections::BTreeMap;
use std::sync::atomic::{AtomicU8, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::Duration;

use serde::Serialize;
use tokio::time::Instant;

use crate::config::{Config, Mode, Policy};
use crate::limits::{BudgetStatus, ProviderBudgets};
use crate::metrics::{self, Metrics, Outcome, Scope, ScopeLabels};
pub use crate::providers::capabilities::Need;
use crate::providers::{ErrorClass, ProviderError};
use crate::state::StateBackend;
pub use budget::RetryBudget;
pub use connectivity::Connectivity;
pub use health::{Admission, BreakerState, Health};
pub use plan::{Candidate, Plan, PlanError, Planner, Timeouts};

/// One entry of the ordered failure list returned to clients.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct AttemptRecord {
    /// Provider name.
    pub provider: String,
    /// What happened: an error class or a `skipped_*` outcome (the metric label).
    #[serde(rename = "error")]
    pub outcome: Outcome,
    /// Why a cooling provider cools down (`skipped_cooldown` only).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub reason: Option<ErrorClass>,
    /// Upstream status.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub status: Option<u16>,
    /// Provider code.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub code: Option<String>,
    /// Detail (secrets redacted).
    pub message: String,
}

impl AttemptRecord {
    fn failed(provider: &str, e: &ProviderError) -> AttemptRecord {
        AttemptRecord {
            provider: provider.to_string(),
            outcome: e.class.into(),
            reason: None,
            status: e.status,
            code: e.code.clone(),
            message: e.message.clone(),
        }
    }

    fn skipped(provider: &str, skip: Skip) -> AttemptRecord {
        AttemptRecord {
            provider: provider.to_string(),
            outcome: skip.outcome,
            reason: skip.reason,
            status: None,
            code: None,
            message: skip.message,
        }
    }

    /// A failure that says the provider is busy or out of money: the client may retry later.
    pub fn is_throttle(&self) -> bool {
        matches!(
            self.outcome,
            Outcome::RateLimited | Outcome::QuotaExhausted | Outcome::SkippedBudget
        ) || (self.outcome == Outcome::SkippedCooldown && self.reason != Some(ErrorClass::Auth))
    }

    /// A failure of the gateway's credentials at the provider (now, or the cooldown one started).
    pub fn is_auth(&self) -> bool {
        self.outcome == Outcome::Auth
            || (self.outcome == Outcome::SkippedCooldown && self.reason == Some(ErrorClass::Auth))
    }

    /// A skip (no call was made).
    pub fn is_skip(&self) -> bool {
        self.outcome.as_str().starts_with("skipped")
    }
}

/// Why a candidate is passed over without a call.
#[derive(Debug, Clone, PartialEq)]
pub struct Skip {
    /// The `skipped_*` outcome.
    pub outcome: Outcome,
    /// For cooldowns: the class that started it.
    pub reason: Option<ErrorClass>,
    /// Detail for `error.attempts`.
    pub message: String,
}

impl Skip {
    fn new(outcome: Outcome, message: String) -> Skip {
        Skip {
            outcome,
            reason: None,
            message,
        }
    }
}

/// When the router counts a success toward the provider's health.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Settle {
    /// When the attempt returns its answer (non-stream).
    OnAnswer,
    /// Later: the caller reports the end (a stream is a success only once it ended cleanly, so a stream cut
    /// after its first token is one failure, not a success and a failure).
    Deferred,
}

/// A successful routing.
#[derive(Debug)]
pub struct Served<T> {
    /// The answer.
    pub value: T,
    /// The candidate that answered.
    pub candidate: Candidate,
    /// Candidates passed over (failed or skipped) before it.
    pub fallbacks: u32,
    /// Time spent in upstream attempts and backoff.
    pub upstream_wait: Duration,
}

/// A routing failure.
#[derive(Debug)]
pub enum RouteError {
    /// No candidate of the plan can serve the request faithfully (no call was made): the client's 4xx.
    Unservable {
        /// Why the first candidate refused (e.g. `model takes no images (messages[0].content[1])`).
        reason: String,
        /// What the request needs that no candidate has.
        need: Need,
        /// Every candidate, skipped.
        attempts: Vec<AttemptRecord>,
    },
    /// An error the client must see as-is (bad request, content filter under `return`): no fallback.
    Rejected {
        /// Provider that refused.
        provider: String,
        /// Its error.
        error: ProviderError,
        /// Everything tried.
        attempts: Vec<AttemptRecord>,
    },
    /// Every candidate failed or was skipped.
    AllFailed {
        /// In order.
        attempts: Vec<AttemptRecord>,
        /// The deadline ran out.
        deadline: bool,
        /// Soonest end of a cooldown, when every candidate is rate-limited or out of quota.
        retry_after: Option<Duration>,
    },
}

impl RouteError {
    /// The attempts, whatever the failure.
    pub fn attempts(&self) -> &[AttemptRecord] {
        match self {
            RouteError::Unservable { attempts, .. }
            | RouteError::Rejected { attempts, .. }
            | RouteError::AllFailed { attempts, .. } => attempts,
        }
    }
}

/// The class every real attempt of `attempts` (skips aside) failed with, if they all failed the same way.
pub fn uniform_class(attempts: &[AttemptRecord]) -> Option<Outcome> {
    let mut real = attempts.iter().filter(|a| !a.is_skip());
    let first = real.next()?.outcome;
    real.all(|a| a.outcome == first).then_some(first)
}

/// Router state shared by all requests.
#[derive(Debug)]
pub struct Router {
    policy: Policy,
    planner: Planner,
    health: BTreeMap<String, Mutex<Health>>,
    budget: RetryBudget,
    metrics: Arc<Metrics>,
    mode: AtomicU8,
    budgets: ProviderBudgets,
    connectivity: Arc<Connectivity>,
    backend: StateBackend,
}

fn lock(m: &Mutex<Health>) -> MutexGuard<'_, Health> {
    match m.lock() {
        Ok(g) => g,
        Err(poisoned) => poisoned.into_inner(),
    }
}

fn mode_from(v: u8) -> Mode {
    match v {
        1 => Mode::Remote,
        2 => Mode::Offline,
        _ => Mode::Auto,
    }
}

fn mode_to(m: Mode) -> u8 {
    match m {
        Mode::Auto => 0,
        Mode::Remote => 1,
        Mode::Offline => 2,
    }
}

/// Admin view of one provider (no secrets).
#[derive(Debug, Clone, Serialize)]
pub struct ProviderStatus {
    /// Name.
    pub name: String,
    /// Breaker state.
    pub breaker: BreakerState,
    /// Remaining cooldown in milliseconds.
    pub cooldown_remaining_ms: Option<u64>,
    /// Why it cools down.
    pub cooldown_reason: Option<ErrorClass>,
    /// Last error.
    pub last_error: Option<AttemptRecord>,
    /// Budgets of `providers.<name>.limits`, used and limit per window.
    pub budgets: Vec<BudgetStatus>,
    /// Last connectivity probe (always true for providers not probed).
    pub reachable: bool,
}

impl Router {
    /// A router for the config.
    pub fn new(cfg: &Config, metrics: Arc<Metrics>) -> Router {
        let backend = StateBackend::from_config(&cfg.state, metrics.clone());
        Router {
            policy: cfg.policy.clone(),
            planner: Planner::new(cfg),
            health: cfg
                .providers
                .keys()
                .map(|n| (n.clone(), Mutex::new(Health::new())))
                .collect(),
            budget: RetryBudget::new(&cfg.policy.retries),
            budgets: ProviderBudgets::with_backend(cfg, &metrics, backend.clone()),
            backend,
            connectivity: Arc::new(Connectivity::new(
                cfg.providers
                    .values()
                    .filter(|p| !p.kind.is_local() && cfg.policy.order.contains(&p.name))
                    .map(|p| p.name.clone()),
                metrics.clone(),
            )),
            metrics,
            mode: AtomicU8::new(mode_to(cfg.mode)),
        }
    }

    /// Replaces the retry budget (tests).
    #[cfg(test)]
    pub(crate) fn with_budget_for_tests(mut self, ratio: f64, floor: u32) -> Router {
        let mut p = self.policy.retries.clone();
        p.budget_ratio = ratio;
        p.budget_min_per_second = floor;
        self.budget = RetryBudget::new(&p);
        self
    }

    /// Replaces one provider's budgets (tests).
    #[cfg(test)]
    #[allow(clippy::panic)]
    pub(crate) fn with_limits_for_tests(mut self, provider: &str, limits_yaml: &str) -> Router {
        let mut cfg = tests::config("");
        let text = format!(
            "models: {{ default: {{ {provider}: m }} }}\nproviders: {{ {provider}: {{ kind: openai, base_url: \"http://127.0.0.1:9/v1\", limits: {limits_yaml} }} }}\nfallback_policy: {{ order: [{provider}] }}\n"
        );
        let one = Config::from_yaml(&text, &|_| None).unwrap_or_else(|e| panic!("{e}"));
        cfg.providers
            .insert(provider.to_string(), one.providers[provider].clone());
        self.budgets = ProviderBudgets::new(&cfg, &self.metrics);
        self
    }

    /// Current mode.
    pub fn mode(&self) -> Mode {
        mode_from(self.mode.load(Ordering::Relaxed))
    }

    /// Switches mode at run time, in this process only.
    pub fn set_mode(&self, mode: Mode) {
        self.mode.store(mode_to(mode), Ordering::Relaxed);
        self.metrics.set_mode(mode);
    }

    /// Switches mode at run time for every replica: here at once, and on Redis when shared (the other replicas
    /// follow within [`crate::state::MODE_POLL`]). `Some(true)` when Redis took it, `Some(false)` when it failed
    /// (the switch is kept here and written once Redis answers), `None` with the memory backend.
    pub async fn switch_mode(&self, mode: Mode) -> Option<bool> {
        let Some(r) = self.backend.redis() else {
            self.set_mode(mode);
            return None;
        };
        // No poll of the shared mode runs between the switch here and its write (it would set the old one back).
        let _switching = r.lock_mode().await;
        self.set_mode(mode);
        let shared = r.write_mode(mode).await.is_ok();
        if !shared {
            r.keep_pending_mode(mode);
        }
        Some(shared)
    }

    /// The policy.
    pub fn policy(&self) -> &Policy {
        &self.policy
    }

    /// Connectivity state (probes write it).
    pub fn connectivity(&self) -> &Arc<Connectivity> {
        &self.connectivity
    }

    /// The state backend (memory or Redis) of limits, budgets, cooldowns, breakers and the mode.
    pub fn state_backend(&self) -> &StateBackend {
        &self.backend
    }

    /// Counts tokens of an answer against the provider's budgets.
    pub async fn record_tokens(&self, provider: &str, tokens: u64) {
        self.budgets.record_tokens(provider, tokens, &self.metrics).await;
    }

    /// The planner.
    pub fn planner(&self) -> &Planner {
        &self.planner
    }

    /// Ordered candidates for a model in `mode` (read once per request by the caller).
    pub fn plan(&self, model: &str, mode: Mode, preferred: Option<&str>) -> Result<Plan, PlanError> {
        self.planner.plan(model, mode, preferred)
    }

    /// Breaker, cooldown, last error and budgets per provider, as this process sees them (shared state, when
    /// the backend is Redis and answers).
    pub async fn snapshot(&self) -> Vec<ProviderStatus> {
        let now = Instant::now();
        let mut out = Vec::with_capacity(self.health.len());
        for (name, h) in &self.health {
            let (mut breaker, mut cd, last_error) = {
                let h = lock(h);
                let cd = h.cooldown(now);
                (
                    h.state(),
                    cd,
                    h.last_error().map(|e| AttemptRecord::failed(name, e)),
                )
            };
            if let Some(sh) = self.shared_health(name, true).await {
                breaker = sh.state;
                cd = sh.cooldown;
            }
            out.push(ProviderStatus {
                name: name.clone(),
                breaker,
                cooldown_remaining_ms: cd.map(|(d, _)| d.as_millis() as u64),
                cooldown_reason: cd.and_then(|(_, r)| r),
                last_error,
                budgets: self.budgets.status(name).await,
                reachable: self.connectivity.is_reachable(name),
            });
        }
        out
    }

    fn set_breaker_metric(&self, provider: &str, state: BreakerState) {
        let v = match state {
            BreakerState::Closed => metrics::BREAKER_CLOSED,
            BreakerState::Open => metrics::BREAKER_OPEN,
            BreakerState::HalfOpen => metrics::BREAKER_HALF_OPEN,
        };
        self.metrics.set_breaker(provider, v);
    }

    /// Whether `provider` may be called now, and the reason of its cooldown if it cools down: the shared
    /// breaker and cooldown when Redis answers (the half-open probe is then one across all replicas), else this
    /// replica's own.
    async fn admit(&self, provider: &str, now: Instant) -> (Admission, Option<ErrorClass>) {
        let Some(h) = self.health.get(provider) else {
            return (Admission::SkipOpen, None);
        };
        if let Some(sh) = self.shared_health(provider, false).await {
            self.set_breaker_metric(provider, sh.state);
            return (sh.admission, sh.cooldown.and_then(|(_, r)| r));
        }
        let mut h = lock(h);
        let a = h.admit(now, &self.policy);
        let state = h.state();
        let reason = h.cooldown(now).and_then(|(_, r)| r);
        drop(h);
        self.set_breaker_metric(provider, state);
        (a, reason)
    }

    /// What [`Router::admit`] would answer, without its transitions.
    async fn peek(&self, provider: &str, now: Instant) -> (Admission, Option<ErrorClass>) {
        let Some(h) = self.health.get(provider) else {
            return (Admission::SkipOpen, None);
        };
        if let Some(sh) = self.shared_health(provider, true).await {
            return (sh.admission, sh.cooldown.and_then(|(_, r)| r));
        }
        let h = lock(h);
        (h.peek(now, &self.policy), h.cooldown(now).and_then(|(_, r)| r))
    }

    /// The active cooldown of `provider` (shared when Redis answers).
    async fn cooldown_of(&self, provider: &str, now: Instant) -> Option<Duration> {
        if let Some(sh) = self.shared_health(provider, true).await {
            return sh.cooldown.map(|(d, _)| d);
        }
        self.health
            .get(provider)
            .and_then(|h| lock(h).cooldown(now))
            .map(|(d, _)| d)
    }

    /// Lets the next call to `provider` be the half-open probe (a stream the client left: nothing is recorded).
    /// Callable where nothing may wait (a `Drop`): the shared release goes out in a task of its own.
    pub fn release(&self, provider: &str) {
        if let Some(h) = self.health.get(provider) {
            lock(h).release_probe();
        }
        if self.backend.redis().is_some() {
            if let Ok(rt) = tokio::runtime::Handle::try_current() {
                let (backend, policy, provider) =
                    (self.backend.clone(), self.policy.clone(), provider.to_string());
                rt.spawn(async move {
                    shared::record(&backend, &policy, &provider, shared::Record::Release).await
                });
            }
        }
    }

    /// Records a success for `provider` (here, and on Redis when shared).
    pub async fn record_success(&self, provider: &str) {
        if let Some(h) = self.health.get(provider) {
            let mut state = {
                let mut h = lock(h);
                h.record_success(Instant::now(), &self.policy);
                h.state()
            };
            let rec = shared::Record::Success;
            if let Some((s, _)) = shared::record(&self.backend, &self.policy, provider, rec).await {
                state = s;
            }
            self.set_breaker_metric(provider, state);
        }
        self.metrics.provider_outcome(provider, Outcome::Success);
    }

    /// Records a classified failure for `provider` (also used when a stream breaks after its first byte). An
    /// answer about the request (invalid, unknown model, too long, refused content) is counted as an outcome and
    /// nothing else: no breaker count, no cooldown, no last error, no credentials alert.
    pub async fn record_failure(&self, provider: &str, err: &ProviderError) {
        if err.class.is_about_request() {
            if let Some(h) = self.health.get(provider) {
                lock(h).release_probe();
                shared::record(&self.backend, &self.policy, provider, shared::Record::Release).await;
            }
            self.metrics.provider_outcome(provider, err.class.into());
            tracing::info!(
                provider,
                class = err.class.as_str(),
                status = err.status,
                "provider refused the request (the client's error; provider health unchanged)"
            );
            return;
        }
        if let Some(h) = self.health.get(provider) {
            let (mut cooling, mut state) = {
                let mut h = lock(h);
                let cooling = h.record_failure(Instant::now(), err, &self.policy);
                (cooling, h.state())
            };
            let rec = shared::Record::Failure {
                class: err.class,
                breaker: err.class.counts_for_breaker(),
                cooldown: health::cooldown_for(err, &self.policy),
            };
            if let Some(shared) = shared::record(&self.backend, &self.policy, provider, rec).await {
                (state, cooling) = shared;
            }
            self.set_breaker_metric(provider, state);
            if cooling {
                self.metrics.cooldown(provider, err.class.into());
            }
        }
        self.metrics.provider_outcome(provider, err.class.into());
        if err.class == ErrorClass::RateLimited {
            self.metrics
                .rate_limited
                .get_or_create(&ScopeLabels {
                    scope: Scope::Provider,
                })
                .inc();
        }
        if err.class == ErrorClass::Auth {
            // Credentials need a human: log at error level so it alerts.
            tracing::error!(
                provider,
                status = err.status,
                "provider rejected the gateway's credentials"
            );
        } else {
            tracing::warn!(
                provider,
                class = err.class.as_str(),
                status = err.status,
                "provider attempt failed"
            );
        }
    }
}
