//! Breakers and cooldowns on the shared state backend: the same state machine as [`super::Health`], run by the
//! scripts of [`crate::state::scripts`] on Redis, so a cooldown one replica starts (Retry-After, quota, auth)
//! makes every replica skip the provider, and an open breaker lets exactly one half-open probe through across
//! all of them. Each replica's own [`super::Health`] keeps recording too: it decides while Redis fails.

use std::time::Duration;

use tokio::time::Instant;

use super::{Admission, BreakerState, Router};
use crate::config::Policy;
use crate::metrics::StateOp;
use crate::providers::ErrorClass;
use crate::state::{self, scripts, RedisState, StateBackend};

/// A provider's health as Redis holds it.
#[derive(Debug, Clone, Copy)]
pub(super) struct SharedHealth {
    pub(super) admission: Admission,
    pub(super) state: BreakerState,
    pub(super) cooldown: Option<(Duration, Option<ErrorClass>)>,
}

fn breaker(v: i64) -> BreakerState {
    match v {
        1 => BreakerState::Open,
        2 => BreakerState::HalfOpen,
        _ => BreakerState::Closed,
    }
}

fn class(name: &str) -> Option<ErrorClass> {
    ErrorClass::ALL.into_iter().find(|c| c.as_str() == name)
}

fn keys(r: &RedisState, provider: &str) -> [String; 3] {
    let h = r.key(&format!("health:{provider}"));
    [h.clone(), format!("{h}:all"), format!("{h}:failed")]
}

/// An outcome to record on Redis.
#[derive(Debug, Clone, Copy)]
pub(super) enum Record {
    /// A success.
    Success,
    /// A failure of `class`; `breaker`: it counts for the breaker; `cooldown`: the one it starts.
    Failure {
        class: ErrorClass,
        breaker: bool,
        cooldown: Option<Duration>,
    },
    /// The probe said nothing: let the next call be the probe.
    Release,
}

/// Records `rec` for `provider`: `Some((breaker state after, whether a cooldown started))`, `None` without Redis
/// or when it failed.
pub(super) async fn record(
    backend: &StateBackend,
    policy: &Policy,
    provider: &str,
    rec: Record,
) -> Option<(BreakerState, bool)> {
    let r = backend.redis()?;
    let (kind, failed, cooldown, reason) = match rec {
        Record::Success => ("success", false, None, ""),
        Record::Release => ("release", false, None, ""),
        Record::Failure {
            class,
            breaker,
            cooldown,
        } => ("failure", breaker, cooldown, class.as_str()),
    };
    let b = &policy.breaker;
    let ratio = (b.failure_ratio * 1000.0).round().to_string();
    let out: Result<(i64, i64), _> = r
        .call(StateOp::Breaker, |mut conn| {
            let mut inv = scripts::HEALTH_RECORD.prepare_invoke();
            for k in keys(r, provider) {
                inv.key(k);
            }
            inv.arg(kind)
                .arg(if failed { "1" } else { "0" })
                .arg(cooldown.map_or(0, state::ms))
                .arg(reason)
                .arg(state::ms(b.window))
                .arg(b.min_requests)
                .arg(ratio);
            async move { inv.invoke_async(&mut conn).await }
        })
        .await;
    out.ok().map(|(s, cooling)| (breaker(s), cooling == 1))
}

impl Router {
    /// The provider's shared health (`peek`: only look), `None` without Redis or when it failed.
    pub(super) async fn shared_health(&self, provider: &str, peek: bool) -> Option<SharedHealth> {
        let r = self.backend.redis()?;
        let op = StateOp::Breaker;
        let args = [state::ms(self.policy.breaker.open_for), i64::from(peek)];
        let out: Result<(i64, i64, String, i64), _> = r
            .eval(op, &scripts::HEALTH_ADMIT, &keys(r, provider)[..1], &args)
            .await;
        let (decision, left_ms, reason, st) = out.ok()?;
        let left = state::from_ms(left_ms);
        let admission = match decision {
            0 => Admission::Allowed { probe: false },
            1 => Admission::Allowed { probe: true },
            3 => Admission::SkipCooldown(Instant::now() + left),
            _ => Admission::SkipOpen,
        };
        Some(SharedHealth {
            admission,
            state: breaker(st),
            cooldown: (decision == 3).then(|| (left, class(&reason))),
        })
    }
}
