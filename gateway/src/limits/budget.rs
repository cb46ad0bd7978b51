//! Per-provider budgets (`providers.<name>.limits`): requests/min, tokens/min, tokens/day, kept below the
//! provider's own quota so the router moves on before the provider answers 429.

use std::collections::BTreeMap;
use std::sync::{Mutex, MutexGuard};
use std::time::Duration;

use serde::Serialize;
use tokio::time::Instant;

use super::window::Window;
use crate::config::{Config, ProviderLimits};
use crate::metrics::{BudgetKind, Metrics, StateOp};
use crate::state::{self, scripts, RedisState, StateBackend};

const MINUTE: Duration = Duration::from_secs(60);
const DAY: Duration = Duration::from_secs(24 * 3600);

#[derive(Debug)]
struct Budgets {
    requests_minute: Option<Window>,
    tokens_minute: Option<Window>,
    tokens_day: Option<Window>,
}

impl Budgets {
    fn new(l: &ProviderLimits) -> Budgets {
        Budgets {
            requests_minute: l.requests_per_minute.map(|n| Window::new(u64::from(n), MINUTE)),
            tokens_minute: l.tokens_per_minute.map(|n| Window::new(n, MINUTE)),
            tokens_day: l.tokens_per_day.map(|n| Window::new(n, DAY)),
        }
    }

    fn windows(&mut self) -> [(BudgetKind, Option<&mut Window>); 3] {
        [
            (BudgetKind::RequestsMinute, self.requests_minute.as_mut()),
            (BudgetKind::TokensMinute, self.tokens_minute.as_mut()),
            (BudgetKind::TokensDay, self.tokens_day.as_mut()),
        ]
    }
}

/// One budget in `/admin/providers`.
#[derive(Debug, Clone, Serialize)]
pub struct BudgetStatus {
    /// `requests_minute`, `tokens_minute` or `tokens_day`.
    pub budget: &'static str,
    /// Used in the current window.
    pub used: u64,
    /// The limit.
    pub limit: u64,
    /// Milliseconds until the window resets.
    pub resets_in_ms: Option<u64>,
}

/// The limits of one provider, as the Redis scripts take them (0: none).
#[derive(Debug, Clone, Copy)]
struct Limits {
    rpm: i64,
    tpm: i64,
    tpd: i64,
}

impl Limits {
    fn new(l: &ProviderLimits) -> Limits {
        let n = |v: Option<u64>| v.map_or(0, |v| i64::try_from(v).unwrap_or(i64::MAX));
        Limits {
            rpm: n(l.requests_per_minute.map(u64::from)),
            tpm: n(l.tokens_per_minute),
            tpd: n(l.tokens_per_day),
        }
    }

    fn of(&self, kind: BudgetKind) -> i64 {
        match kind {
            BudgetKind::RequestsMinute => self.rpm,
            BudgetKind::TokensMinute => self.tpm,
            BudgetKind::TokensDay => self.tpd,
        }
    }
}

fn period(kind: BudgetKind) -> Duration {
    match kind {
        BudgetKind::RequestsMinute | BudgetKind::TokensMinute => MINUTE,
        BudgetKind::TokensDay => DAY,
    }
}

const KINDS: [BudgetKind; 3] = [
    BudgetKind::RequestsMinute,
    BudgetKind::TokensMinute,
    BudgetKind::TokensDay,
];

fn keys(r: &RedisState, provider: &str) -> [String; 3] {
    KINDS.map(|k| r.key(&format!("budget:{provider}:{}", k.as_str())))
}

/// Budgets of every provider that has any: in this process, or on Redis (this process's windows then serve
/// while Redis fails).
#[derive(Debug, Default)]
pub struct ProviderBudgets {
    by_provider: BTreeMap<String, (Limits, Mutex<Budgets>)>,
    backend: StateBackend,
}

fn lock(m: &Mutex<Budgets>) -> MutexGuard<'_, Budgets> {
    match m.lock() {
        Ok(g) => g,
        Err(poisoned) => poisoned.into_inner(),
    }
}

impl ProviderBudgets {
    /// From config, in this process; providers without limits are not tracked.
    pub fn new(cfg: &Config, metrics: &Metrics) -> ProviderBudgets {
        ProviderBudgets::with_backend(cfg, metrics, StateBackend::memory())
    }

    /// From config, on `backend`.
    pub fn with_backend(cfg: &Config, metrics: &Metrics, backend: StateBackend) -> ProviderBudgets {
        let mut by_provider = BTreeMap::new();
        for p in cfg.providers.values().filter(|p| !p.limits.is_empty()) {
            let mut b = Budgets::new(&p.limits);
            for (kind, w) in b.windows() {
                if let Some(w) = w {
                    metrics.budget_limit(&p.name, kind, w.limit());
                    metrics.budget_used(&p.name, kind, 0);
                }
            }
            by_provider.insert(p.name.clone(), (Limits::new(&p.limits), Mutex::new(b)));
        }
        ProviderBudgets { by_provider, backend }
    }

    /// The shared check (and, with `take`, the count of one request): `Ok(None)` room, `Ok(Some(wait))` used up,
    /// `Err` when Redis failed (the caller decides per `on_error`).
    async fn shared_acquire(
        &self,
        r: &RedisState,
        provider: &str,
        limits: Limits,
        take: bool,
        metrics: Option<&Metrics>,
    ) -> Result<Option<Duration>, state::Unavailable> {
        let args = [
            limits.rpm,
            limits.tpm,
            limits.tpd,
            i64::from(take),
            state::ms(MINUTE),
        ];
        let (blocked, v): (i64, i64) = r
            .eval(
                StateOp::ProviderBudget,
                &scripts::BUDGET_ACQUIRE,
                &keys(r, provider),
                &args,
            )
            .await?;
        if blocked != 0 {
            return Ok(Some(state::from_ms(v)));
        }
        if let Some(metrics) = metrics.filter(|_| take && limits.rpm > 0) {
            metrics.budget_used(
                provider,
                BudgetKind::RequestsMinute,
                u64::try_from(v).unwrap_or(0),
            );
        }
        Ok(None)
    }

    /// Takes one request of `provider`'s budgets when none is used up (call right before the attempt): `None`
    /// when taken (or the provider has no budgets), `Some(wait)` when a budget is used up (the router skips it;
    /// nothing is counted). On Redis the check and the count are one atomic step, so concurrent requests on any
    /// number of replicas never take more than the limit. Under `on_error: fail_closed` a failing Redis blocks
    /// providers that have budgets.
    pub async fn acquire(&self, provider: &str, now: Instant, metrics: &Metrics) -> Option<Duration> {
        let (limits, b) = self.by_provider.get(provider)?;
        if let Some(r) = self.backend.redis() {
            match self
                .shared_acquire(r, provider, *limits, true, Some(metrics))
                .await
            {
                Ok(v) => return v,
                Err(_) if r.fail_closed() => return Some(state::RETRY_AFTER),
                Err(_) => {}
            }
        }
        let mut b = lock(b);
        let blocked = b
            .windows()
            .into_iter()
            .filter_map(|(_, w)| w.and_then(|w| w.blocked(now)))
            .max();
        if blocked.is_some() {
            return blocked;
        }
        if let Some(w) = b.requests_minute.as_mut() {
            w.add(now, 1);
            metrics.budget_used(provider, BudgetKind::RequestsMinute, w.used(now));
        }
        None
    }

    /// Gives back the request [`ProviderBudgets::acquire`] took when no call followed (breaker open, cooling).
    pub async fn refund(&self, provider: &str, metrics: &Metrics) {
        let Some((limits, b)) = self.by_provider.get(provider) else {
            return;
        };
        if limits.rpm == 0 {
            return;
        }
        if let Some(r) = self.backend.redis() {
            let key = [r.key(&format!(
                "budget:{provider}:{}",
                BudgetKind::RequestsMinute.as_str()
            ))];
            let shared: Result<i64, _> = r
                .eval(StateOp::ProviderBudget, &scripts::BUDGET_REFUND, &key, &[])
                .await;
            if let Ok(used) = shared {
                metrics.budget_used(
                    provider,
                    BudgetKind::RequestsMinute,
                    u64::try_from(used).unwrap_or(0),
                );
                return;
            }
        }
        let mut b = lock(b);
        if let Some(w) = b.requests_minute.as_mut() {
            let now = Instant::now();
            w.sub(now, 1);
            metrics.budget_used(provider, BudgetKind::RequestsMinute, w.used(now));
        }
    }

    /// Counts tokens an answer of `provider` used.
    pub async fn record_tokens(&self, provider: &str, tokens: u64, metrics: &Metrics) {
        let Some((limits, b)) = self.by_provider.get(provider) else {
            return;
        };
        if let Some(r) = self.backend.redis() {
            let all = keys(r, provider);
            let mut ks = Vec::new();
            let mut args = vec![i64::try_from(tokens).unwrap_or(i64::MAX)];
            let mut kinds = Vec::new();
            for (i, kind) in KINDS.into_iter().enumerate().skip(1) {
                if limits.of(kind) > 0 {
                    ks.push(all[i].clone());
                    args.push(state::ms(period(kind)));
                    kinds.push(kind);
                }
            }
            if ks.is_empty() {
                return;
            }
            let shared: Result<Vec<i64>, _> = r
                .eval(StateOp::ProviderBudget, &scripts::WINDOWS_ADD, &ks, &args)
                .await;
            if let Ok(used) = shared {
                for (kind, u) in kinds.into_iter().zip(used) {
                    metrics.budget_used(provider, kind, u64::try_from(u).unwrap_or(0));
                }
                return;
            }
        }
        let now = Instant::now();
        let mut b = lock(b);
        for (kind, w) in b.windows().into_iter().skip(1) {
            if let Some(w) = w {
                w.add(now, tokens);
                metrics.budget_used(provider, kind, w.used(now));
            }
        }
    }

    /// `Some(wait)` when a budget of `provider` is used up (the router skips it): time until it resets. Only
    /// looks; nothing is counted.
    pub async fn blocked_for(&self, provider: &str, now: Instant) -> Option<Duration> {
        let (limits, b) = self.by_provider.get(provider)?;
        if let Some(r) = self.backend.redis() {
            match self.shared_acquire(r, provider, *limits, false, None).await {
                Ok(v) => return v,
                Err(_) if r.fail_closed() => return Some(state::RETRY_AFTER),
                Err(_) => {}
            }
        }
        let mut b = lock(b);
        b.windows()
            .into_iter()
            .filter_map(|(_, w)| w.and_then(|w| w.blocked(now)))
            .max()
    }

    /// Budgets of `provider` for `/admin/providers` (shared ones when Redis answers).
    pub async fn status(&self, provider: &str) -> Vec<BudgetStatus> {
        let Some((limits, b)) = self.by_provider.get(provider) else {
            return Vec::new();
        };
        if let Some(r) = self.backend.redis() {
            let shared: Result<Vec<i64>, _> = r
                .eval(
                    StateOp::ProviderBudget,
                    &scripts::WINDOWS_STATUS,
                    &keys(r, provider),
                    &[],
                )
                .await;
            if let Ok(v) = shared {
                return KINDS
                    .into_iter()
                    .enumerate()
                    .filter(|(_, k)| limits.of(*k) > 0)
                    .map(|(i, k)| {
                        let used = v.get(2 * i).copied().unwrap_or(0);
                        let ttl = v.get(2 * i + 1).copied().unwrap_or(-1);
                        BudgetStatus {
                            budget: k.as_str(),
                            used: u64::try_from(used).unwrap_or(0),
                            limit: u64::try_from(limits.of(k)).unwrap_or(0),
                            resets_in_ms: u64::try_from(ttl).ok(),
                        }
                    })
                    .collect();
            }
        }
        let now = Instant::now();
        let mut b = lock(b);
        b.windows()
            .into_iter()
            .filter_map(|(kind, w)| {
                w.map(|w| BudgetStatus {
                    budget: kind.as_str(),
                    used: w.used(now),
                    limit: w.limit(),
                    resets_in_ms: w.resets_in(now).map(|d| d.as_millis() as u64),
                })
            })
            .collect()
    }
}
