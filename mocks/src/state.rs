//! The shared state of one fake: faults, settings, journal, issued OAuth tokens.

use crate::content::{fnv1a, hex_id, unix_now_ms};
use crate::fault::{FaultBook, FaultError, FaultSpec, InstalledFault};
use crate::journal::{Entry, Journal, JournalView, DEFAULT_CAPACITY};
use crate::provider::Provider;
use serde::{Deserialize, Serialize};
use std::collections::HashMap;
use std::sync::{Mutex, MutexGuard};

/// Default GigaChat token lifetime: 30 minutes, as the real service.
pub const DEFAULT_TOKEN_TTL_MS: u64 = 30 * 60 * 1000;

/// Run-time knobs of a fake.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
pub struct Settings {
    /// Added before every API answer (not admin calls), in ms.
    pub latency_ms: u64,
    /// Lifetime of GigaChat OAuth tokens issued from now on, in ms.
    pub token_ttl_ms: u64,
    /// Pause between the events of every stream, in ms (0: events go out as fast as they can).
    pub stream_delay_ms: u64,
}

impl Default for Settings {
    fn default() -> Self {
        Settings {
            latency_ms: 0,
            token_ttl_ms: DEFAULT_TOKEN_TTL_MS,
            stream_delay_ms: 0,
        }
    }
}

/// The largest delay any setting or fault accepts: one hour.
pub const MAX_DELAY_MS: u64 = 3_600_000;
/// The longest token lifetime accepted: one year.
pub const MAX_TOKEN_TTL_MS: u64 = 365 * 24 * 3_600_000;

/// A partial settings update, as `POST /__mock/settings` takes it.
#[derive(Debug, Clone, Copy, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SettingsPatch {
    /// New `latency_ms`.
    pub latency_ms: Option<u64>,
    /// New `token_ttl_ms`.
    pub token_ttl_ms: Option<u64>,
    /// New `stream_delay_ms`.
    pub stream_delay_ms: Option<u64>,
}

impl SettingsPatch {
    /// Checks the ranges.
    pub fn validate(&self) -> Result<(), String> {
        for (name, v, max) in [
            ("latency_ms", self.latency_ms, MAX_DELAY_MS),
            ("stream_delay_ms", self.stream_delay_ms, MAX_DELAY_MS),
            ("token_ttl_ms", self.token_ttl_ms, MAX_TOKEN_TTL_MS),
        ] {
            if let Some(v) = v.filter(|v| *v > max) {
                return Err(format!("field `{name}`: must be at most {max}, got {v}"));
            }
        }
        Ok(())
    }
}

#[derive(Debug)]
struct Inner {
    faults: FaultBook,
    settings: Settings,
    journal: Journal,
    /// Issued GigaChat tokens and their expiry (epoch ms).
    tokens: HashMap<String, u64>,
    issued: u64,
}

/// State shared by every route of one fake.
#[derive(Debug)]
pub struct State {
    provider: Provider,
    seed: u64,
    inner: Mutex<Inner>,
}

impl State {
    /// Fresh state for `provider`; `seed` drives fault probabilities.
    pub fn new(provider: Provider, seed: u64) -> Self {
        State {
            provider,
            seed,
            inner: Mutex::new(Self::fresh(seed)),
        }
    }

    fn fresh(seed: u64) -> Inner {
        Inner {
            faults: FaultBook::new(seed),
            settings: Settings::default(),
            journal: Journal::new(DEFAULT_CAPACITY),
            tokens: HashMap::new(),
            issued: 0,
        }
    }

    fn lock(&self) -> MutexGuard<'_, Inner> {
        // A poisoned lock only means a panic elsewhere; the data is still consistent enough to serve.
        self.inner.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// The provider this state belongs to.
    pub fn provider(&self) -> Provider {
        self.provider
    }

    /// Installs a fault.
    pub fn add_fault(&self, spec: FaultSpec) -> Result<InstalledFault, FaultError> {
        self.lock().faults.add(spec)
    }

    /// Removes all faults.
    pub fn clear_faults(&self) {
        self.lock().faults.clear();
    }

    /// The installed faults.
    pub fn faults(&self) -> Vec<InstalledFault> {
        self.lock().faults.list().to_vec()
    }

    /// Current settings.
    pub fn settings(&self) -> Settings {
        self.lock().settings
    }

    /// Applies a partial settings update and returns the result (values are capped at their maxima).
    pub fn update_settings(&self, patch: SettingsPatch) -> Settings {
        let mut g = self.lock();
        if let Some(v) = patch.stream_delay_ms {
            g.settings.stream_delay_ms = v.min(MAX_DELAY_MS);
        }
        if let Some(v) = patch.latency_ms {
            g.settings.latency_ms = v.min(MAX_DELAY_MS);
        }
        if let Some(v) = patch.token_ttl_ms {
            g.settings.token_ttl_ms = v.min(MAX_TOKEN_TTL_MS);
        }
        g.settings
    }

    /// Back to the start state: no faults, default settings, empty journal, no tokens.
    pub fn reset(&self) {
        *self.lock() = Self::fresh(self.seed);
    }

    /// Records a request in the journal; returns its id.
    pub(crate) fn record(&self, entry: Entry) -> u64 {
        self.lock().journal.record(entry)
    }

    /// Notes on journal entry `id` which fault hit it.
    pub(crate) fn mark_fault(&self, id: u64, name: &'static str) {
        self.lock().journal.mark(id, name);
    }

    /// The kept journal entries, oldest first.
    pub fn journal(&self) -> Vec<Entry> {
        self.lock().journal.entries()
    }

    /// How many requests arrived since the last reset.
    pub fn request_count(&self) -> u64 {
        self.lock().journal.total()
    }

    /// The journal as served by the admin API.
    pub fn journal_view(&self) -> JournalView {
        self.lock().journal.view()
    }

    /// Forgets the journal only.
    pub fn clear_journal(&self) {
        self.lock().journal.clear();
    }

    /// Decides the fault for an eligible request.
    pub(crate) fn next_fault(&self) -> Option<FaultSpec> {
        self.lock().faults.decide()
    }

    /// Issues a GigaChat OAuth token; returns it with its expiry in epoch ms.
    pub(crate) fn issue_token(&self, scope: &str) -> (String, u64) {
        let mut g = self.lock();
        g.issued += 1;
        let now = unix_now_ms();
        let token = format!(
            "fake-gigachat.{}.{}",
            g.issued,
            hex_id(
                &[
                    &self.seed.to_le_bytes(),
                    &g.issued.to_le_bytes(),
                    scope.as_bytes(),
                    &now.to_le_bytes()
                ],
                40
            )
        );
        let expires = now.saturating_add(g.settings.token_ttl_ms);
        // Forget expired tokens so the map stays small under long runs.
        g.tokens.retain(|_, exp| *exp > now);
        g.tokens.insert(token.clone(), expires);
        (token, expires)
    }

    /// Whether `token` was issued by this fake and has not expired.
    pub(crate) fn token_valid(&self, token: &str) -> bool {
        let now = unix_now_ms();
        self.lock().tokens.get(token).is_some_and(|exp| *exp > now)
    }

    /// A per-request id source: stable for equal inputs within a run.
    pub(crate) fn request_seed(&self, body: &[u8]) -> u64 {
        let n = self.lock().journal.total();
        fnv1a(&[&self.seed.to_le_bytes(), &n.to_le_bytes(), body])
    }
}
