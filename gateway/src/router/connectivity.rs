//! Connectivity probes: each round asks every remote provider something cheap (no paid completion); a provider
//! whose probe fails is skipped at zero cost until a later probe succeeds, so with the internet gone requests go
//! straight to the local tier and packages without waiting on timeouts.

use std::collections::BTreeMap;
use std::future::Future;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Weak};
use std::time::Duration;

use tokio::sync::watch;

use crate::metrics::{Metrics, ProviderLabels};

/// Reachability of the remote providers, as last probed (all reachable until a probe says otherwise).
#[derive(Debug)]
pub struct Connectivity {
    reachable: BTreeMap<String, AtomicBool>,
    metrics: Arc<Metrics>,
    rounds: watch::Sender<u64>,
}

impl Connectivity {
    /// For the remote providers named.
    pub fn new(remote: impl IntoIterator<Item = String>, metrics: Arc<Metrics>) -> Connectivity {
        Connectivity {
            reachable: remote.into_iter().map(|n| (n, AtomicBool::new(true))).collect(),
            metrics,
            rounds: watch::channel(0).0,
        }
    }

    /// Whether `provider` may be called (providers not probed always may).
    pub fn is_reachable(&self, provider: &str) -> bool {
        self.reachable
            .get(provider)
            .is_none_or(|r| r.load(Ordering::Relaxed))
    }

    /// True when every remote provider's last probe failed: the gateway is degraded to the local tier.
    pub fn degraded(&self) -> bool {
        !self.reachable.is_empty() && self.reachable.values().all(|r| !r.load(Ordering::Relaxed))
    }

    /// Records a probe result; logs transitions.
    pub fn set(&self, provider: &str, ok: bool) {
        let Some(r) = self.reachable.get(provider) else {
            return;
        };
        let was = r.swap(ok, Ordering::Relaxed);
        self.metrics
            .reachable
            .get_or_create(&ProviderLabels {
                provider: provider.to_string(),
            })
            .set(i64::from(ok));
        if was != ok {
            if ok {
                tracing::info!(provider, "connectivity probe succeeded, remote traffic resumes");
            } else {
                tracing::warn!(
                    provider,
                    "connectivity probe failed, provider skipped until it recovers"
                );
            }
        }
    }

    /// Completed probe rounds (tests wait on it instead of sleeping).
    pub fn rounds(&self) -> watch::Receiver<u64> {
        self.rounds.subscribe()
    }

    /// Remote provider names.
    pub fn providers(&self) -> impl Iterator<Item = &String> {
        self.reachable.keys()
    }
}

/// Probes every `interval` until `conn` is dropped. `probe(provider)` answers `Some(reachable)`, or `None` to
/// skip the round for it (offline mode: not one remote request); it is cut off at `timeout` (= unreachable).
pub async fn probe_loop<P, Fut>(conn: Weak<Connectivity>, interval: Duration, timeout: Duration, probe: P)
where
    P: Fn(String) -> Fut,
    Fut: Future<Output = Option<bool>>,
{
    let mut tick = tokio::time::interval(interval);
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        tick.tick().await;
        let Some(c) = conn.upgrade() else { return };
        let names: Vec<String> = c.providers().cloned().collect();
        drop(c);
        let results = futures::future::join_all(names.into_iter().map(|n| {
            let fut = probe(n.clone());
            async move {
                let r = tokio::time::timeout(timeout, fut).await.unwrap_or(Some(false));
                (n, r)
            }
        }))
        .await;
        let Some(c) = conn.upgrade() else { return };
        for (n, r) in results {
            if let Some(ok) = r {
                c.set(&n, ok);
            }
        }
        c.rounds.send_modify(|n| *n += 1);
    }
}
