//! The state backend (`state.backend`): where client limits, provider budgets, cooldowns, breakers and the mode
//! live. `memory` (the default) is this process, as a single gateway keeps it; `redis` is one Redis shared by every
//! replica, so a limit holds across all of them.
//!
//! Every stateful part keeps its local state and asks [`StateBackend::redis`] first: with Redis configured and
//! answering, the shared answer is the one used; when Redis fails (error, timeout, not reachable) the caller falls
//! back to its local state (or, for limits under `on_error: fail_closed`, refuses). Redis trouble never fails a
//! request: each call is bounded by `state.redis.timeout`, and after a failure calls go local at once for
//! [`RETRY_AFTER`] before Redis is tried again, so a black-holed Redis costs one timeout per second, not one per
//! request.
//!
//! Counters change only inside Lua scripts on the server ([`scripts`]), on the server's clock (`TIME`, key
//! expiry), so the limits hold for concurrent requests on any number of replicas.

pub mod scripts;

use std::future::Future;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use redis::aio::{ConnectionManager, ConnectionManagerConfig};
use serde::Serialize;
use tokio::time::Instant;

use crate::api::AppState;
use crate::config::{Mode, OnError, RedisStateConfig, StateConfig};
use crate::metrics::{Metrics, StateOp};

/// After a failed Redis call, how long calls go straight to local state before Redis is tried again.
pub const RETRY_AFTER: Duration = Duration::from_secs(1);

/// How often a replica reads the shared mode (a switch on one replica reaches all within this, plus a call).
pub const MODE_POLL: Duration = Duration::from_millis(200);

/// Redis could not answer (error, timeout, or still backing off after one): use local state.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Unavailable;

/// The state backend of one gateway: memory, or Redis with local state behind it.
#[derive(Debug, Clone, Default)]
pub struct StateBackend {
    redis: Option<Arc<RedisState>>,
}

/// What `/readyz` and `/admin/providers` say about the backend.
#[derive(Debug, Clone, Serialize)]
pub struct BackendStatus {
    /// `memory` or `redis`.
    pub backend: &'static str,
    /// Redis failed on its last call (state is local until it answers again).
    pub degraded: bool,
    /// `local` or `fail_closed` (Redis only).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub on_error: Option<OnError>,
}

impl StateBackend {
    /// Per-process state.
    pub fn memory() -> StateBackend {
        StateBackend { redis: None }
    }

    /// The backend `state:` asks for. A Redis URL the client library refuses leaves the gateway on memory (said
    /// at error level, without the URL's password).
    pub fn from_config(cfg: &StateConfig, metrics: Arc<Metrics>) -> StateBackend {
        let Some(r) = cfg.redis.as_ref() else {
            return StateBackend::memory();
        };
        match RedisState::new(r, metrics) {
            Some(s) => StateBackend {
                redis: Some(Arc::new(s)),
            },
            None => StateBackend::memory(),
        }
    }

    /// Redis, when configured.
    pub fn redis(&self) -> Option<&RedisState> {
        self.redis.as_deref()
    }

    /// Backend and whether it is degraded.
    pub fn status(&self) -> BackendStatus {
        match self.redis() {
            None => BackendStatus {
                backend: "memory",
                degraded: false,
                on_error: None,
            },
            Some(r) => BackendStatus {
                backend: "redis",
                degraded: r.degraded(),
                on_error: Some(r.on_error()),
            },
        }
    }
}

/// Redis as the state backend: one [`ConnectionManager`] (multiplexed, reconnects by itself), made on first use.
pub struct RedisState {
    client: redis::Client,
    key_prefix: String,
    timeout: Duration,
    on_error: OnError,
    /// The password of the URL, if any: scrubbed from every error text logged.
    password: Option<String>,
    /// Made on first use, and dropped after a failure: a call that timed out may leave the multiplexed connection
    /// waiting for answers that never come (a black hole swallows the commands or their replies, and replies are
    /// matched in order), so the next call after [`RETRY_AFTER`] opens a fresh one.
    conn: Mutex<Option<ConnectionManager>>,
    /// A mode switched here while Redis failed: written when it answers again.
    pending_mode: Mutex<Option<Mode>>,
    /// Held by a switch here (set, then write) and by a poll (read, then set): a poll whose read went out before
    /// the switch's write would otherwise set the old mode back here after the switch.
    mode_lock: tokio::sync::Mutex<()>,
    /// After a failure: local state until then.
    retry_at: Mutex<Option<Instant>>,
    degraded: AtomicBool,
    metrics: Arc<Metrics>,
}

impl std::fmt::Debug for RedisState {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("RedisState")
            .field("key_prefix", &self.key_prefix)
            .field("timeout", &self.timeout)
            .field("degraded", &self.degraded())
            .finish_non_exhaustive()
    }
}

impl RedisState {
    fn new(cfg: &RedisStateConfig, metrics: Arc<Metrics>) -> Option<RedisState> {
        let client = match redis::Client::open(cfg.url.expose()) {
            Ok(c) => c,
            Err(_) => {
                // The library's message may quote the URL: say only which one, redacted.
                tracing::error!(
                    redis = %cfg.display_url(),
                    "state.redis.url is not usable by the Redis client; state stays in this process"
                );
                return None;
            }
        };
        let password = client
            .get_connection_info()
            .redis_settings()
            .password()
            .map(str::to_string);
        metrics.state_degraded.set(0);
        Some(RedisState {
            client,
            key_prefix: cfg.key_prefix.clone(),
            timeout: cfg.timeout,
            on_error: cfg.on_error,
            password,
            conn: Mutex::new(None),
            pending_mode: Mutex::new(None),
            mode_lock: tokio::sync::Mutex::new(()),
            retry_at: Mutex::new(None),
            degraded: AtomicBool::new(false),
            metrics,
        })
    }

    /// `state.redis.on_error`.
    pub fn on_error(&self) -> OnError {
        self.on_error
    }

    /// Limits refuse while Redis fails (`on_error: fail_closed`).
    pub fn fail_closed(&self) -> bool {
        self.on_error == OnError::FailClosed
    }

    /// The last call failed (or none succeeded yet after one did).
    pub fn degraded(&self) -> bool {
        self.degraded.load(Ordering::Relaxed)
    }

    /// `key_prefix` + `rest`.
    pub fn key(&self, rest: &str) -> String {
        format!("{}{rest}", self.key_prefix)
    }

    fn connection(&self) -> redis::RedisResult<ConnectionManager> {
        let mut g = lock(&self.conn);
        if let Some(c) = g.as_ref() {
            return Ok(c.clone());
        }
        let cfg = ConnectionManagerConfig::new()
            .set_connection_timeout(Some(self.timeout))
            .set_response_timeout(Some(self.timeout))
            .set_number_of_retries(1)
            .set_min_delay(Duration::from_millis(10))
            .set_max_delay(Duration::from_millis(200));
        let c = ConnectionManager::new_lazy_with_config(self.client.clone(), cfg)?;
        *g = Some(c.clone());
        Ok(c)
    }

    fn backing_off(&self) -> bool {
        lock(&self.retry_at).is_some_and(|t| Instant::now() < t)
    }

    fn failed(&self, op: StateOp, why: &str) {
        self.metrics.state_error(op);
        *lock(&self.retry_at) = Some(Instant::now() + RETRY_AFTER);
        // A fresh connection next time (see `conn`).
        lock(&self.conn).take();
        let why = match &self.password {
            Some(p) if !p.is_empty() => why.replace(p.as_str(), "***"),
            _ => why.to_string(),
        };
        if !self.degraded.swap(true, Ordering::Relaxed) {
            self.metrics.state_degraded.set(1);
            tracing::warn!(
                op = op.as_str(),
                error = %why,
                "Redis state backend degraded: using this replica's local state until it answers"
            );
        } else {
            tracing::debug!(op = op.as_str(), error = %why, "Redis state call failed");
        }
    }

    fn succeeded(&self) {
        if self.degraded.swap(false, Ordering::Relaxed) {
            self.metrics.state_degraded.set(0);
            tracing::info!("Redis state backend answers again: shared state is used");
        }
    }

    /// Runs `f` on a connection, bounded by `state.redis.timeout`; a failure is counted under `op`, marks the
    /// backend degraded and sends calls local for [`RETRY_AFTER`].
    pub async fn call<T, F, Fut>(&self, op: StateOp, f: F) -> Result<T, Unavailable>
    where
        F: FnOnce(ConnectionManager) -> Fut,
        Fut: Future<Output = redis::RedisResult<T>>,
    {
        if self.backing_off() {
            return Err(Unavailable);
        }
        let run = async {
            let conn = self.connection()?;
            f(conn).await
        };
        match tokio::time::timeout(self.timeout, run).await {
            Ok(Ok(v)) => {
                self.succeeded();
                Ok(v)
            }
            Ok(Err(e)) => {
                self.failed(op, &e.to_string());
                Err(Unavailable)
            }
            Err(_) => {
                self.failed(op, &format!("no answer within {} ms", self.timeout.as_millis()));
                Err(Unavailable)
            }
        }
    }

    /// Runs one of [`scripts`] with `keys` and `args`.
    pub async fn eval<T: redis::FromRedisValue>(
        &self,
        op: StateOp,
        script: &redis::Script,
        keys: &[String],
        args: &[i64],
    ) -> Result<T, Unavailable> {
        self.call(op, |mut conn| async move {
            let mut inv = script.prepare_invoke();
            for k in keys {
                inv.key(k);
            }
            for a in args {
                inv.arg(*a);
            }
            inv.invoke_async(&mut conn).await
        })
        .await
    }
}

impl RedisState {
    fn mode_key(&self) -> String {
        self.key("mode")
    }

    /// Writes the shared mode.
    pub async fn write_mode(&self, mode: Mode) -> Result<(), Unavailable> {
        let key = self.mode_key();
        self.call(StateOp::Mode, |mut conn| async move {
            redis::cmd("SET")
                .arg(&key)
                .arg(mode.as_str())
                .query_async::<()>(&mut conn)
                .await
        })
        .await
    }

    /// Reads the shared mode (`None`: never set, or a value no mode has).
    pub async fn read_mode(&self) -> Result<Option<Mode>, Unavailable> {
        let key = self.mode_key();
        let v: Option<String> = self
            .call(StateOp::Mode, |mut conn| async move {
                redis::cmd("GET").arg(&key).query_async(&mut conn).await
            })
            .await?;
        Ok(v.as_deref().and_then(Mode::parse))
    }

    /// Serialises a mode switch made here with the polls of the shared mode (see `mode_lock`).
    pub async fn lock_mode(&self) -> tokio::sync::MutexGuard<'_, ()> {
        self.mode_lock.lock().await
    }

    /// Remembers a switch Redis did not take.
    pub fn keep_pending_mode(&self, mode: Mode) {
        *lock(&self.pending_mode) = Some(mode);
    }

    fn take_pending_mode(&self) -> Option<Mode> {
        lock(&self.pending_mode).take()
    }
}

fn lock<T>(m: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    match m.lock() {
        Ok(g) => g,
        Err(p) => p.into_inner(),
    }
}

/// With Redis, follows the shared mode: reads it at once (a replica started later takes the mode the others
/// run in) and every [`MODE_POLL`] after; a switch made here while Redis failed is written first once Redis
/// answers. The task ends with the state; without a tokio runtime (or without Redis) nothing runs.
pub fn follow_mode(state: &Arc<AppState>) {
    if state.router.state_backend().redis().is_none() {
        return;
    }
    let Ok(rt) = tokio::runtime::Handle::try_current() else {
        return;
    };
    let weak = Arc::downgrade(state);
    rt.spawn(async move {
        loop {
            let Some(state) = weak.upgrade() else {
                return;
            };
            poll_mode(&state).await;
            drop(state);
            tokio::time::sleep(MODE_POLL).await;
        }
    });
}

/// One poll of the shared mode, as [`follow_mode`] runs it every [`MODE_POLL`] (nothing without Redis).
pub async fn poll_mode(state: &AppState) {
    if let Some(r) = state.router.state_backend().redis() {
        sync_mode(state, r).await;
    }
}

async fn sync_mode(state: &AppState, r: &RedisState) {
    let _switching = r.lock_mode().await;
    if let Some(pending) = r.take_pending_mode() {
        if r.write_mode(pending).await.is_err() {
            r.keep_pending_mode(pending);
            return;
        }
        tracing::info!(
            mode = pending.as_str(),
            "mode switched while Redis failed is now shared"
        );
    }
    if let Ok(Some(m)) = r.read_mode().await {
        let current = state.router.mode();
        if m != current {
            state.router.set_mode(m);
            tracing::info!(
                from = current.as_str(),
                to = m.as_str(),
                "mode switched by another replica"
            );
        }
    }
}

/// Milliseconds as Redis scripts take them.
pub(crate) fn ms(d: Duration) -> i64 {
    i64::try_from(d.as_millis()).unwrap_or(i64::MAX)
}

/// A wait in milliseconds a script returned.
pub(crate) fn from_ms(v: i64) -> Duration {
    Duration::from_millis(u64::try_from(v).unwrap_or(0))
}
