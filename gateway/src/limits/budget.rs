//! Per-provider budgets (`providers.<name>.limits`): requests/min, tokens/min, tokens/day, kept below the
//! provider's own quota so the router moves on before the provider answers 429.

use std::collections::BTreeMap;
use std::sync::{Mutex, MutexGuard};
use std::time::Duration;

use serde::Serialize;
use tokio::time::Instant;

use super::window::Window;
use crate::config::{Config, ProviderLimits};
use crate::metrics::{BudgetKind, Metrics};

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

/// Budgets of every provider that has any.
#[derive(Debug, Default)]
pub struct ProviderBudgets {
    by_provider: BTreeMap<String, Mutex<Budgets>>,
}

fn lock(m: &Mutex<Budgets>) -> MutexGuard<'_, Budgets> {
    match m.lock() {
        Ok(g) => g,
        Err(poisoned) => poisoned.into_inner(),
    }
}

impl ProviderBudgets {
    /// From config; providers without limits are not tracked.
    pub fn new(cfg: &Config, metrics: &Metrics) -> ProviderBudgets {
        let mut by_provider = BTreeMap::new();
        for p in cfg.providers.values().filter(|p| !p.limits.is_empty()) {
            let mut b = Budgets::new(&p.limits);
            for (kind, w) in b.windows() {
                if let Some(w) = w {
                    metrics.budget_limit(&p.name, kind, w.limit());
                    metrics.budget_used(&p.name, kind, 0);
                }
            }
            by_provider.insert(p.name.clone(), Mutex::new(b));
        }
        ProviderBudgets { by_provider }
    }

    /// Counts one request to `provider` (call right before the attempt).
    pub fn count_request(&self, provider: &str, now: Instant, metrics: &Metrics) {
        let Some(b) = self.by_provider.get(provider) else {
            return;
        };
        let mut b = lock(b);
        if let Some(w) = b.requests_minute.as_mut() {
            w.add(now, 1);
            metrics.budget_used(provider, BudgetKind::RequestsMinute, w.used(now));
        }
    }

    /// Counts tokens an answer of `provider` used.
    pub fn record_tokens(&self, provider: &str, tokens: u64, metrics: &Metrics) {
        let Some(b) = self.by_provider.get(provider) else {
            return;
        };
        let now = Instant::now();
        let mut b = lock(b);
        for (kind, w) in b.windows().into_iter().skip(1) {
            if let Some(w) = w {
                w.add(now, tokens);
                metrics.budget_used(provider, kind, w.used(now));
            }
        }
    }

    /// `Some(wait)` when a budget of `provider` is used up (the router skips it): time until it resets.
    pub fn blocked_for(&self, provider: &str, now: Instant) -> Option<Duration> {
        let mut b = lock(self.by_provider.get(provider)?);
        b.windows()
            .into_iter()
            .filter_map(|(_, w)| w.and_then(|w| w.blocked(now)))
            .max()
    }

    /// Budgets of `provider` for `/admin/providers`.
    pub fn status(&self, provider: &str) -> Vec<BudgetStatus> {
        let Some(b) = self.by_provider.get(provider) else {
            return Vec::new();
        };
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
