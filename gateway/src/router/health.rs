//! Per-provider health: breaker (closed -> open -> half-open -> closed), cooldowns per error class, last error.

use std::collections::VecDeque;
use std::time::Duration;

use serde::Serialize;
use tokio::time::Instant;

use crate::config::Policy;
use crate::providers::{ErrorClass, ProviderError};

/// Breaker state.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum BreakerState {
    /// Calls flow.
    Closed,
    /// Calls are skipped at zero cost.
    Open,
    /// One probe is allowed through.
    HalfOpen,
}

/// Whether a provider may be called now.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Admission {
    /// Call it (as the half-open probe if `probe`).
    Allowed {
        /// This call is the half-open probe.
        probe: bool,
    },
    /// Breaker open.
    SkipOpen,
    /// Cooling down (rate limit, quota, auth) until the instant.
    SkipCooldown(Instant),
}

/// Health of one provider.
#[derive(Debug)]
pub struct Health {
    outcomes: VecDeque<(Instant, bool)>,
    state: BreakerState,
    opened_at: Instant,
    probe_started: Option<Instant>,
    cooldown_until: Option<Instant>,
    cooldown_reason: Option<ErrorClass>,
    last_error: Option<ProviderError>,
}

impl Default for Health {
    fn default() -> Health {
        Health::new()
    }
}

impl Health {
    /// A healthy provider.
    pub fn new() -> Health {
        Health {
            outcomes: VecDeque::new(),
            state: BreakerState::Closed,
            opened_at: Instant::now(),
            probe_started: None,
            cooldown_until: None,
            cooldown_reason: None,
            last_error: None,
        }
    }

    /// Breaker state as last updated.
    pub fn state(&self) -> BreakerState {
        self.state
    }

    /// Active cooldown, if any, and its reason.
    pub fn cooldown(&self, now: Instant) -> Option<(Duration, Option<ErrorClass>)> {
        self.cooldown_until
            .filter(|u| *u > now)
            .map(|u| (u - now, self.cooldown_reason))
    }

    /// The last classified error.
    pub fn last_error(&self) -> Option<&ProviderError> {
        self.last_error.as_ref()
    }

    /// What [`Health::admit`] would answer at `now`, without any of its transitions (an expired cooldown is not
    /// cleared, open does not move to half-open, no probe starts): for explaining a route without routing.
    pub fn peek(&self, now: Instant, policy: &Policy) -> Admission {
        if let Some(until) = self.cooldown_until.filter(|u| *u > now) {
            return Admission::SkipCooldown(until);
        }
        match self.state {
            BreakerState::Closed => Admission::Allowed { probe: false },
            BreakerState::Open if now >= self.opened_at + policy.breaker.open_for => {
                Admission::Allowed { probe: true }
            }
            BreakerState::Open => Admission::SkipOpen,
            BreakerState::HalfOpen => match self.probe_started {
                // A probe abandoned (client gone) must not wedge the breaker half-open forever.
                Some(t) if now < t + policy.breaker.open_for => Admission::SkipOpen,
                _ => Admission::Allowed { probe: true },
            },
        }
    }

    /// Decides whether a call may go out now ([`Health::peek`]), then makes it so: an expired cooldown is
    /// cleared, and an allowed probe moves the breaker to half-open and starts the probe.
    pub fn admit(&mut self, now: Instant, policy: &Policy) -> Admission {
        let a = self.peek(now, policy);
        if self.cooldown_until.is_some_and(|u| u <= now) {
            self.cooldown_until = None;
            self.cooldown_reason = None;
        }
        if a == (Admission::Allowed { probe: true }) {
            self.state = BreakerState::HalfOpen;
            self.probe_started = Some(now);
        }
        a
    }

    /// Lets the next call be the half-open probe (the probe's answer said nothing about the provider's health).
    pub fn release_probe(&mut self) {
        self.probe_started = None;
    }

    fn prune(&mut self, now: Instant, window: Duration) {
        while let Some((t, _)) = self.outcomes.front() {
            if now.duration_since(*t) > window {
                self.outcomes.pop_front();
            } else {
                break;
            }
        }
    }

    /// Records a success: a half-open probe closes the breaker.
    pub fn record_success(&mut self, now: Instant, policy: &Policy) {
        if self.state != BreakerState::Closed {
            self.state = BreakerState::Closed;
            self.outcomes.clear();
        }
        self.probe_started = None;
        self.outcomes.push_back((now, false));
        self.prune(now, policy.breaker.window);
    }

    /// Records a failure: sets cooldowns by class and may open the breaker. True when it started (or extended) a
    /// cooldown.
    pub fn record_failure(&mut self, now: Instant, err: &ProviderError, policy: &Policy) -> bool {
        if err.class.is_about_request() {
            // The client's error: the provider answered, its health is what it was.
            self.release_probe();
            return false;
        }
        self.last_error = Some(err.clone());
        let mut cooling = false;
        if let Some(d) = cooldown_for(err, policy) {
            let until = now + d;
            if self.cooldown_until.is_none_or(|u| u < until) {
                self.cooldown_until = Some(until);
                self.cooldown_reason = Some(err.class);
                cooling = true;
            }
        }
        let failed = err.class.counts_for_breaker();
        self.probe_started = None;
        match self.state {
            BreakerState::HalfOpen if failed => self.open(now),
            BreakerState::HalfOpen => {
                // The upstream answered: it is alive even if it refused this request.
                self.state = BreakerState::Closed;
                self.outcomes.clear();
            }
            BreakerState::Open => {}
            BreakerState::Closed => {
                self.outcomes.push_back((now, failed));
                self.prune(now, policy.breaker.window);
                let total = self.outcomes.len() as u32;
                let failures = self.outcomes.iter().filter(|(_, f)| *f).count() as f64;
                if failed
                    && total >= policy.breaker.min_requests
                    && failures / f64::from(total) >= policy.breaker.failure_ratio
                {
                    self.open(now);
                }
            }
        }
        cooling
    }

    fn open(&mut self, now: Instant) {
        self.state = BreakerState::Open;
        self.opened_at = now;
        self.outcomes.clear();
    }
}

/// The cooldown a failure starts, by class (`None`: none, or zero).
pub fn cooldown_for(err: &ProviderError, policy: &Policy) -> Option<Duration> {
    let c = &policy.cooldowns;
    let d = match err.class {
        ErrorClass::RateLimited => err.retry_after.unwrap_or(c.rate_limited).min(c.rate_limited_max),
        ErrorClass::QuotaExhausted => c.quota_exhausted,
        ErrorClass::Auth => c.auth,
        _ => return None,
    };
    (!d.is_zero()).then_some(d)
}
