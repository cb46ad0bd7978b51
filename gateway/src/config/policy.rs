//! Validation of `fallback_policy:`: timeouts against the deadline, retries, breaker, cooldowns, policies.

use std::time::Duration;

use super::raw::RawPolicy;
use super::validate::Problems;
use super::{BreakerPolicy, ContentFilterPolicy, Cooldowns, Policy, RetryPolicy, StreamFailurePolicy};

pub(super) fn policy(p: &mut Problems, raw: &RawPolicy) -> Policy {
    let fp = "fallback_policy";
    let deadline = p.duration(
        &format!("{fp}.deadline"),
        raw.deadline.as_ref(),
        Duration::from_secs(60),
    );
    let attempt = p.duration(
        &format!("{fp}.attempt_timeout"),
        raw.attempt_timeout.as_ref(),
        deadline,
    );
    let connect = p.duration(
        &format!("{fp}.connect_timeout"),
        raw.connect_timeout.as_ref(),
        Duration::from_secs(3),
    );
    let first_token = p.duration(
        &format!("{fp}.first_token_timeout"),
        raw.first_token_timeout.as_ref(),
        attempt,
    );
    let stall = p.duration(
        &format!("{fp}.stall_timeout"),
        raw.stall_timeout.as_ref(),
        attempt,
    );
    for (key, value) in [
        ("attempt_timeout", attempt),
        ("connect_timeout", connect),
        ("first_token_timeout", first_token),
    ] {
        if value > deadline {
            p.push(
                format!("{fp}.{key}"),
                format!("{value:?} is above the deadline {deadline:?}"),
            );
        }
    }
    if stall > deadline {
        p.push(
            format!("{fp}.stall_timeout"),
            format!("{stall:?} is above the deadline {deadline:?}"),
        );
    }

    let r = &raw.retries;
    let rp = format!("{fp}.retries");
    let backoff_base = p.duration(
        &format!("{rp}.backoff_base"),
        r.backoff_base.as_ref(),
        Duration::from_millis(100),
    );
    let backoff_max = p.duration(
        &format!("{rp}.backoff_max"),
        r.backoff_max.as_ref(),
        Duration::from_secs(2),
    );
    if backoff_base > backoff_max {
        p.push(format!("{rp}.backoff_base"), "must not exceed backoff_max");
    }
    let budget_ratio = r.budget_ratio.unwrap_or(0.2);
    if !(0.0..=10.0).contains(&budget_ratio) {
        p.push(format!("{rp}.budget_ratio"), "must be between 0 and 10");
    }
    let retries = RetryPolicy {
        max_retries: r.max_retries.unwrap_or(1),
        backoff_base,
        backoff_max,
        budget_ratio,
        budget_min_per_second: r.budget_min_per_second.unwrap_or(2),
    };

    let b = &raw.breaker;
    let bp = format!("{fp}.breaker");
    let failure_ratio = b.failure_ratio.unwrap_or(0.5);
    if !(failure_ratio > 0.0 && failure_ratio <= 1.0) {
        p.push(format!("{bp}.failure_ratio"), "must be in (0, 1]");
    }
    let min_requests = b.min_requests.unwrap_or(5);
    if min_requests == 0 {
        p.push(format!("{bp}.min_requests"), "must be at least 1");
    }
    let breaker = BreakerPolicy {
        window: p.duration(
            &format!("{bp}.window"),
            b.window.as_ref(),
            Duration::from_secs(30),
        ),
        min_requests,
        failure_ratio,
        open_for: p.duration(
            &format!("{bp}.open_for"),
            b.open_for.as_ref(),
            Duration::from_secs(30),
        ),
    };

    let c = &raw.cooldowns;
    let cp = format!("{fp}.cooldowns");
    let cooldowns = Cooldowns {
        rate_limited: p.duration(
            &format!("{cp}.rate_limited"),
            c.rate_limited.as_ref(),
            Duration::from_secs(5),
        ),
        rate_limited_max: p.duration(
            &format!("{cp}.rate_limited_max"),
            c.rate_limited_max.as_ref(),
            Duration::from_secs(60),
        ),
        quota_exhausted: p.duration(
            &format!("{cp}.quota_exhausted"),
            c.quota_exhausted.as_ref(),
            Duration::from_secs(600),
        ),
        auth: p.duration(&format!("{cp}.auth"), c.auth.as_ref(), Duration::from_secs(60)),
    };

    let content_filter = match raw.content_filter.as_deref() {
        None | Some("fallback") => ContentFilterPolicy::Fallback,
        Some("return") => ContentFilterPolicy::Return,
        Some(v) => {
            p.push(
                format!("{fp}.content_filter"),
                format!("unknown policy {v:?}; expected fallback or return"),
            );
            ContentFilterPolicy::Fallback
        }
    };
    let stream_failure = match raw.stream_failure.as_deref() {
        None | Some("error_event") => StreamFailurePolicy::ErrorEvent,
        Some("continue") => StreamFailurePolicy::Continue,
        Some(v) => {
            p.push(
                format!("{fp}.stream_failure"),
                format!("unknown policy {v:?}; expected error_event or continue"),
            );
            StreamFailurePolicy::ErrorEvent
        }
    };

    Policy {
        order: raw.order.clone(),
        deadline,
        connect_timeout: connect,
        first_token_timeout: first_token,
        stall_timeout: stall,
        max_stream_duration: p.duration(
            &format!("{fp}.max_stream_duration"),
            raw.max_stream_duration.as_ref(),
            Duration::from_secs(600),
        ),
        attempt_timeout: attempt,
        retries,
        breaker,
        cooldowns,
        content_filter,
        stream_failure,
    }
}
