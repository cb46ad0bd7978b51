//! The offline tier, cache, client limits, provider budgets and connectivity probes: runtime types and their
//! validation.

use std::collections::BTreeSet;
use std::path::PathBuf;
use std::time::Duration;

use super::raw::{RawCache, RawConnectivity, RawLimits, RawOffline, RawProviderLimits};
use super::validate::Problems;
use serde::Serialize;

use super::{secrets, EnvLookup, Secret};
use crate::offline::misses::MAX_ENTRIES_LIMIT;
use crate::offline::{MissRecording, MissesConfig, OfflineConfig};

/// `providers.<name>.limits`: when one is used up, the router skips the provider (`skipped_budget`).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct ProviderLimits {
    /// Requests per minute.
    pub requests_per_minute: Option<u32>,
    /// Tokens (prompt + completion) per minute.
    pub tokens_per_minute: Option<u64>,
    /// Tokens per day.
    pub tokens_per_day: Option<u64>,
}

impl ProviderLimits {
    /// True when no budget is set.
    pub fn is_empty(&self) -> bool {
        *self == ProviderLimits::default()
    }
}

/// Which requests the cache may answer.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum CacheScope {
    /// Only requests with `temperature: 0` (the same question gets the same answer).
    Deterministic,
    /// Every non-stream chat request.
    All,
}

/// `cache.backend`: where answers are kept.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum CacheBackend {
    /// This process only.
    Memory,
    /// A tier on the `state.redis` server shared by every replica, with this process's cache in front of it.
    Redis,
}

/// `cache:` after validation.
#[derive(Debug, Clone)]
pub struct CacheConfig {
    /// Off: no lookups, no stores.
    pub enabled: bool,
    /// How long an answer is fresh.
    pub ttl: Duration,
    /// Entry bound.
    pub max_entries: u64,
    /// Size bound over the stored answers.
    pub max_bytes: u64,
    /// Deterministic requests only, or all.
    pub scope: CacheScope,
    /// When every provider fails, an expired answer (within `stale_for` after expiry) may answer, marked stale.
    pub serve_stale_on_error: bool,
    /// How long after expiry an answer is kept for `serve_stale_on_error`.
    pub stale_for: Duration,
    /// Memory, or a shared Redis tier behind it.
    pub backend: CacheBackend,
}

impl Default for CacheConfig {
    fn default() -> CacheConfig {
        CacheConfig {
            enabled: true,
            ttl: Duration::from_secs(300),
            max_entries: 10_000,
            max_bytes: 64 * 1024 * 1024,
            scope: CacheScope::Deterministic,
            serve_stale_on_error: false,
            stale_for: Duration::from_secs(24 * 3600),
            backend: CacheBackend::Memory,
        }
    }
}

/// One client API key of `limits.clients`.
#[derive(Debug, Clone)]
pub struct ClientKey {
    /// Name used in logs and `/admin` (never the key).
    pub name: String,
    /// The key clients send as `Authorization: Bearer`.
    pub key: Secret,
    /// Requests per minute.
    pub requests_per_minute: Option<u32>,
    /// Tokens per minute (counted after each answer).
    pub tokens_per_minute: Option<u64>,
}

/// `connectivity:`: cheap probes of the remote providers; a provider whose probe fails is skipped at zero cost.
#[derive(Debug, Clone, Copy)]
pub struct ConnectivityConfig {
    /// Time between probe rounds.
    pub probe_interval: Duration,
    /// Per-probe timeout.
    pub probe_timeout: Duration,
}

pub(super) fn offline(p: &mut Problems, raw: &RawOffline) -> OfflineConfig {
    let d = OfflineConfig::default();
    let threshold = raw.match_threshold.unwrap_or(f64::from(d.match_threshold));
    if !(threshold > 0.0 && threshold <= 1.0) {
        p.push("offline.match_threshold", format!("{threshold} is not in (0, 1]"));
    }
    for (i, path) in raw.packages.iter().enumerate() {
        if path.trim().is_empty() {
            p.push(format!("offline.packages[{i}]"), "empty path");
        }
    }
    let record = match raw.misses.record.as_deref() {
        None => d.misses.record,
        Some(v) => MissRecording::parse(v).unwrap_or_else(|| {
            p.push(
                "offline.misses.record",
                format!("unknown value {v:?}; expected text, hashed or off"),
            );
            d.misses.record
        }),
    };
    let max_entries = match raw.misses.max_entries {
        None => d.misses.max_entries,
        Some(n) if (1..=MAX_ENTRIES_LIMIT as u64).contains(&n) => n as usize,
        Some(n) => {
            p.push(
                "offline.misses.max_entries",
                format!("{n} is not in 1..={MAX_ENTRIES_LIMIT}"),
            );
            d.misses.max_entries
        }
    };
    OfflineConfig {
        packages: raw.packages.iter().map(PathBuf::from).collect(),
        match_threshold: threshold as f32,
        embeddings: raw.embeddings.unwrap_or(d.embeddings),
        misses: MissesConfig { record, max_entries },
    }
}

pub(super) fn cache(p: &mut Problems, raw: &RawCache) -> CacheConfig {
    let d = CacheConfig::default();
    let ttl = p.duration("cache.ttl", raw.ttl.as_ref(), d.ttl);
    let stale_for = p.duration("cache.stale_for", raw.stale_for.as_ref(), d.stale_for);
    let scope = match raw.scope.as_deref() {
        None | Some("deterministic") => CacheScope::Deterministic,
        Some("all") => CacheScope::All,
        Some(v) => {
            p.push(
                "cache.scope",
                format!("unknown scope {v:?}; expected deterministic or all"),
            );
            CacheScope::Deterministic
        }
    };
    let backend = match raw.backend.as_deref() {
        None | Some("memory") => CacheBackend::Memory,
        Some("redis") => CacheBackend::Redis,
        Some(v) => {
            p.push(
                "cache.backend",
                format!("unknown backend {v:?}; expected memory or redis"),
            );
            CacheBackend::Memory
        }
    };
    for (key, v) in [("max_entries", raw.max_entries), ("max_bytes", raw.max_bytes)] {
        if v == Some(0) {
            p.push(format!("cache.{key}"), "must be greater than zero");
        }
    }
    CacheConfig {
        enabled: raw.enabled.unwrap_or(d.enabled),
        ttl,
        max_entries: raw.max_entries.unwrap_or(d.max_entries).max(1),
        max_bytes: raw.max_bytes.unwrap_or(d.max_bytes).max(1),
        scope,
        serve_stale_on_error: raw.serve_stale_on_error.unwrap_or(d.serve_stale_on_error),
        stale_for,
        backend,
    }
}

pub(super) fn clients(p: &mut Problems, raw: &RawLimits, env: EnvLookup<'_>) -> Vec<ClientKey> {
    let mut out = Vec::new();
    let mut names = BTreeSet::new();
    for (i, c) in raw.clients.iter().enumerate() {
        let path = format!("limits.clients[{i}]");
        if c.name.trim().is_empty() || c.name.len() > 64 {
            p.push(format!("{path}.name"), "must be 1 to 64 characters");
        }
        if !names.insert(c.name.clone()) {
            p.push(
                format!("{path}.name"),
                format!("client {:?} is listed twice", c.name),
            );
        }
        if c.requests_per_minute == Some(0) {
            p.push(
                format!("{path}.requests_per_minute"),
                "must be greater than zero (omit for no limit)",
            );
        }
        if c.tokens_per_minute == Some(0) {
            p.push(
                format!("{path}.tokens_per_minute"),
                "must be greater than zero (omit for no limit)",
            );
        }
        let file = c.key.file.as_ref().map(PathBuf::from);
        let (_, value, problem) = secrets::resolve(c.key.env.clone(), file, c.key.value.clone(), env);
        if let Some(msg) = problem {
            p.push(format!("{path}.key"), msg);
            continue;
        }
        let Some(key) = value else {
            // Fail closed: a configured client without a key would lock that client out silently.
            p.push(
                format!("{path}.key"),
                "configured but no value found (set its env var, file or value)",
            );
            continue;
        };
        if key.expose().len() < 8 {
            p.push(format!("{path}.key"), "too short: use at least 8 characters");
            continue;
        }
        out.push(ClientKey {
            name: c.name.clone(),
            key,
            requests_per_minute: c.requests_per_minute.filter(|n| *n > 0),
            tokens_per_minute: c.tokens_per_minute.filter(|n| *n > 0),
        });
    }
    out
}

pub(super) fn provider_limits(
    p: &mut Problems,
    path: &str,
    raw: Option<&RawProviderLimits>,
) -> ProviderLimits {
    let Some(raw) = raw else {
        return ProviderLimits::default();
    };
    if raw.requests_per_minute == Some(0) {
        p.push(
            format!("{path}.limits.requests_per_minute"),
            "must be greater than zero (omit for no limit)",
        );
    }
    for (key, v) in [
        ("tokens_per_minute", raw.tokens_per_minute),
        ("tokens_per_day", raw.tokens_per_day),
    ] {
        if v == Some(0) {
            p.push(
                format!("{path}.limits.{key}"),
                "must be greater than zero (omit for no limit)",
            );
        }
    }
    ProviderLimits {
        requests_per_minute: raw.requests_per_minute.filter(|n| *n > 0),
        tokens_per_minute: raw.tokens_per_minute.filter(|n| *n > 0),
        tokens_per_day: raw.tokens_per_day.filter(|n| *n > 0),
    }
}

pub(super) fn connectivity(p: &mut Problems, raw: Option<&RawConnectivity>) -> Option<ConnectivityConfig> {
    let raw = raw?;
    let probe_interval = p.duration(
        "connectivity.probe_interval",
        raw.probe_interval.as_ref(),
        Duration::from_secs(15),
    );
    let probe_timeout = p.duration(
        "connectivity.probe_timeout",
        raw.probe_timeout.as_ref(),
        Duration::from_secs(2),
    );
    if probe_timeout > probe_interval {
        p.push(
            "connectivity.probe_timeout",
            format!("{probe_timeout:?} is above probe_interval {probe_interval:?}"),
        );
    }
    Some(ConnectivityConfig {
        probe_interval,
        probe_timeout,
    })
}
