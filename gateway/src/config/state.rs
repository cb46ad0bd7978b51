//! `state:`: where shared state (client limits, provider budgets, cooldowns, the mode) lives: this process's
//! memory (the default) or a Redis server shared by every replica.

use std::time::Duration;

use serde::Serialize;

use super::raw::RawState;
use super::validate::Problems;
use super::Secret;

/// `state.backend`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum StateBackendKind {
    /// Per-process state, as a single gateway keeps it.
    Memory,
    /// Shared state on Redis.
    Redis,
}

/// `state.redis.on_error`: what a replica does while Redis is unreachable or slow.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum OnError {
    /// Use this replica's own state until Redis answers again (limits then hold per replica).
    Local,
    /// Client and provider limits refuse (429 / skip) while Redis is unreachable; other state falls back to local.
    FailClosed,
}

/// `state.redis:` after validation.
#[derive(Debug, Clone)]
pub struct RedisStateConfig {
    /// `redis://[user:password@]host:port[/db]`; may hold a password, so it is a [`Secret`] (never logged).
    pub url: Secret,
    /// Prefix of every key the gateway writes (several gateways may share one Redis).
    pub key_prefix: String,
    /// Bound on every Redis call (connect included).
    pub timeout: Duration,
    /// Behaviour while Redis fails.
    pub on_error: OnError,
}

impl RedisStateConfig {
    /// The URL with any password replaced by `***`, safe for logs and `check-config`.
    pub fn display_url(&self) -> String {
        redact_url(self.url.expose())
    }
}

/// `state:` after validation.
#[derive(Debug, Clone)]
pub struct StateConfig {
    /// Memory or Redis.
    pub backend: StateBackendKind,
    /// Set when `backend` is `redis`.
    pub redis: Option<RedisStateConfig>,
}

impl Default for StateConfig {
    fn default() -> StateConfig {
        StateConfig {
            backend: StateBackendKind::Memory,
            redis: None,
        }
    }
}

/// `scheme://user:pass@host` -> `scheme://user:***@host`; `scheme://pass@host` -> `scheme://***@host`.
pub fn redact_url(url: &str) -> String {
    let Some((scheme, rest)) = url.split_once("://") else {
        return url.to_string();
    };
    let authority_end = rest.find('/').unwrap_or(rest.len());
    let (authority, path) = rest.split_at(authority_end);
    let Some((userinfo, host)) = authority.rsplit_once('@') else {
        return url.to_string();
    };
    let user = match userinfo.split_once(':') {
        Some((user, _)) => format!("{user}:***"),
        None => "***".to_string(),
    };
    format!("{scheme}://{user}@{host}{path}")
}

pub(super) fn state(p: &mut Problems, raw: &RawState) -> StateConfig {
    let backend = match raw.backend.as_deref().map(str::trim) {
        None | Some("memory") => StateBackendKind::Memory,
        Some("redis") => StateBackendKind::Redis,
        Some(other) => {
            p.push(
                "state.backend",
                format!("unknown backend {other:?}; expected memory or redis"),
            );
            StateBackendKind::Memory
        }
    };
    let Some(r) = raw.redis.as_ref() else {
        if backend == StateBackendKind::Redis {
            p.push(
                "state.redis",
                "required when state.backend is redis (at least `url`)",
            );
        }
        return StateConfig { backend, redis: None };
    };
    let url = match r.url.as_deref().map(str::trim) {
        None | Some("") => {
            p.push("state.redis.url", "required (e.g. redis://127.0.0.1:6379)");
            String::new()
        }
        Some(u) if !(u.starts_with("redis://") || u.starts_with("rediss://")) => {
            p.push(
                "state.redis.url",
                format!("{:?} is not a redis:// or rediss:// URL", redact_url(u)),
            );
            String::new()
        }
        Some(u) => u.to_string(),
    };
    let key_prefix = r.key_prefix.clone().unwrap_or_else(|| "llm-gateway:".to_string());
    if key_prefix.is_empty()
        || key_prefix.len() > 64
        || key_prefix.chars().any(|c| c.is_whitespace() || c.is_control())
    {
        p.push(
            "state.redis.key_prefix",
            "must be 1 to 64 characters without spaces or control characters",
        );
    }
    let timeout = p.duration(
        "state.redis.timeout",
        r.timeout.as_ref(),
        Duration::from_millis(100),
    );
    if timeout > Duration::from_secs(5) {
        p.push(
            "state.redis.timeout",
            format!("{timeout:?} is above 5s: every request waits up to this on a stalled Redis"),
        );
    }
    let on_error = match r.on_error.as_deref().map(str::trim) {
        None | Some("local") => OnError::Local,
        Some("fail_closed") => OnError::FailClosed,
        Some(other) => {
            p.push(
                "state.redis.on_error",
                format!("unknown value {other:?}; expected local or fail_closed"),
            );
            OnError::Local
        }
    };
    if backend == StateBackendKind::Memory {
        p.push(
            "state.redis",
            "set, but state.backend is not redis (set backend: redis or remove it)",
        );
    }
    StateConfig {
        backend,
        redis: Some(RedisStateConfig {
            url: Secret::new(url),
            key_prefix,
            timeout,
            on_error,
        }),
    }
}
