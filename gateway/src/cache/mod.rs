//! Exact-match response cache (moka) on the canonical request: TTL and size bounds, deterministic requests only
//! unless `cache.scope: all`; expired answers kept for `stale_for` so `serve_stale_on_error` can still answer.
//!
//! Freshness is judged on tokio time (paused-time tests move it); moka's own TTL only bounds memory.
//!
//! With `cache.backend: redis` a shared tier on the `state.redis` server stands behind this process's cache:
//! a lookup the local cache cannot answer fresh asks Redis (bounded by `state.redis.timeout`, like every state
//! call), and an answer found there fills the local cache with the age it has. Stores go to both; the Redis write
//! runs beside the response, never before it. In Redis an answer is one key expiring when it may no longer answer
//! (the server's clock), with an expiry index, sizes and a byte total kept by one script ([`scripts::CACHE_PUT`])
//! so `max_bytes` and `max_entries` hold over every replica's stores. Redis trouble is a miss, never an error.

use std::sync::Arc;
use std::time::Duration;

use sha2::{Digest, Sha256};
use tokio::time::Instant;

use crate::canonical::{ChatRequest, ChatResponse, Raw};
use crate::config::{CacheBackend, CacheConfig, CacheScope};
use crate::metrics::{Metrics, StateOp};
use crate::state::{ms, scripts, RedisState, StateBackend};

/// A cache key: SHA-256 of the canonical request.
pub type Key = [u8; 32];

#[derive(Debug)]
struct Cached {
    resp: ChatResponse,
    stored: Instant,
}

/// What a lookup found.
#[derive(Debug, Clone, PartialEq)]
pub enum Lookup {
    /// A fresh answer.
    Fresh(ChatResponse),
    /// Only an expired answer (still within `stale_for`).
    Stale(ChatResponse),
    /// Nothing.
    Miss,
}

/// The response cache.
pub struct ResponseCache {
    cfg: CacheConfig,
    inner: Option<moka::sync::Cache<Key, Arc<Cached>>>,
    /// The shared tier (`cache.backend: redis` with a usable `state.redis`).
    shared: Option<Shared>,
}

/// The Redis tier: the state backend's connection, its key names, and the shared writes still running.
struct Shared {
    backend: StateBackend,
    names: Arc<Names>,
    metrics: Arc<Metrics>,
    /// How many shared writes are in flight (see [`ResponseCache::flushed`]).
    writes: Arc<tokio::sync::watch::Sender<usize>>,
}

/// Redis key names of the shared tier, under `state.redis.key_prefix` (`v1` is the stored format); made once.
struct Names {
    /// An entry's key is this and its member (the cache key in hex).
    entry_prefix: String,
    index: String,
    sizes: String,
    bytes: String,
}

impl Names {
    fn new(r: &RedisState) -> Names {
        Names {
            entry_prefix: r.key("cache:v1:e:"),
            index: r.key("cache:v1:index"),
            sizes: r.key("cache:v1:sizes"),
            bytes: r.key("cache:v1:bytes"),
        }
    }
}

impl std::fmt::Debug for ResponseCache {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ResponseCache")
            .field("enabled", &self.inner.is_some())
            .field("shared", &self.shared.is_some())
            .finish_non_exhaustive()
    }
}

/// The largest answer the shared tier takes (larger ones stay in this process's cache): writing a huge value can
/// outlast `state.redis.timeout`, and a timed-out call sends every shared state local for a second, so a client
/// asking for huge answers could otherwise switch the shared limits off.
pub const SHARED_ENTRY_MAX_BYTES: usize = 1 << 20;

/// Lowercase hex of some bytes.
pub(crate) fn hex(bytes: &[u8]) -> String {
    use std::fmt::Write;
    bytes
        .iter()
        .fold(String::with_capacity(bytes.len() * 2), |mut s, b| {
            let _ = write!(s, "{b:02x}");
            s
        })
}

/// The canonical request text the key hashes: the body without `stream`, `stream_options` and `user`
/// (they do not change the answer).
pub fn canonical(req: &ChatRequest) -> String {
    let mut r = req.clone();
    r.stream = false;
    r.extra.remove("stream_options");
    r.extra.remove("user");
    serde_json::to_string(&r).unwrap_or_default()
}

/// The key of a request.
pub fn key(req: &ChatRequest) -> Key {
    Sha256::digest(canonical(req).as_bytes()).into()
}

/// An answer as the shared tier stores it: `r` and the upstream's own bytes when the answer carries them (so
/// every replica sends the same bytes), else `c` and the canonical JSON.
fn encode(resp: &ChatResponse) -> Option<Vec<u8>> {
    match &resp.raw {
        Some(raw) => Some([b"r".as_slice(), &raw.bytes].concat()),
        None => {
            let mut v = b"c".to_vec();
            serde_json::to_writer(&mut v, resp).ok()?;
            Some(v)
        }
    }
}

/// What [`encode`] stored, as an answer.
fn decode(value: Vec<u8>) -> Result<ChatResponse, String> {
    let (tag, body) = value.split_first().ok_or("empty")?;
    let mut resp: ChatResponse = serde_json::from_slice(body).map_err(|e| e.to_string())?;
    match tag {
        b'c' => Ok(resp),
        b'r' => {
            resp.raw = Some(Raw::full(bytes::Bytes::from(value).slice(1..)));
            Ok(resp)
        }
        _ => Err("unknown format".into()),
    }
}

/// How long an answer is kept: its TTL, and `stale_for` after it when stale answers may serve.
fn keep(cfg: &CacheConfig) -> Duration {
    if cfg.serve_stale_on_error {
        cfg.ttl + cfg.stale_for
    } else {
        cfg.ttl
    }
}

/// What an answer costs the cache in bytes: its JSON, the upstream's own bytes it may carry, and some overhead.
fn weight(resp: &ChatResponse) -> usize {
    serde_json::to_vec(resp).map_or(0, |b| b.len()) + resp.raw.as_ref().map_or(0, |r| r.bytes.len()) + 64
}

impl ResponseCache {
    /// From config, in this process only.
    pub fn new(cfg: &CacheConfig) -> ResponseCache {
        let inner = cfg.enabled.then(|| {
            let keep = keep(cfg);
            // Each entry weighs at least max_bytes / max_entries, so the weight bound also bounds the count.
            let floor = (cfg.max_bytes / cfg.max_entries).clamp(1, u64::from(u32::MAX)) as u32;
            moka::sync::Cache::builder()
                .max_capacity(cfg.max_bytes)
                .weigher(move |_k: &Key, v: &Arc<Cached>| {
                    (weight(&v.resp).min(u32::MAX as usize) as u32).max(floor)
                })
                .time_to_live(keep.max(Duration::from_millis(1)))
                .build()
        });
        ResponseCache {
            cfg: cfg.clone(),
            inner,
            shared: None,
        }
    }

    /// From config, with the shared tier on `backend`'s Redis when `cache.backend` is `redis` (without a usable
    /// Redis the cache stays local).
    pub fn with_backend(cfg: &CacheConfig, backend: &StateBackend, metrics: Arc<Metrics>) -> ResponseCache {
        let mut c = ResponseCache::new(cfg);
        if let (true, Some(r)) = (cfg.enabled && cfg.backend == CacheBackend::Redis, backend.redis()) {
            c.shared = Some(Shared {
                backend: backend.clone(),
                names: Arc::new(Names::new(r)),
                metrics,
                writes: Arc::new(tokio::sync::watch::channel(0).0),
            });
        }
        c
    }

    /// Whether this request may be cached at all.
    pub fn eligible(&self, req: &ChatRequest) -> bool {
        self.inner.is_some()
            && match self.cfg.scope {
                CacheScope::All => true,
                CacheScope::Deterministic => req.temperature == Some(0.0),
            }
    }

    /// Whether expired answers may answer when every provider failed.
    pub fn serves_stale(&self) -> bool {
        self.cfg.serve_stale_on_error
    }

    /// Looks `key` up: this process's cache, then (when it has no fresh answer) the shared tier. An answer the
    /// tier has and this process lacks (or has only stale) is put in this process's cache with the age it has.
    pub async fn get(&self, key: &Key) -> Lookup {
        let local = self.local(key);
        if matches!(local, Lookup::Fresh(_)) {
            return local;
        }
        let Some((found, age)) = self.shared_get(key).await else {
            return local;
        };
        let better = matches!(
            (&found, &local),
            (Lookup::Fresh(_), _) | (Lookup::Stale(_), Lookup::Miss)
        );
        if !better {
            return local;
        }
        if let Some(s) = &self.shared {
            s.metrics.cache_shared_hits.inc();
        }
        if let (Lookup::Fresh(resp) | Lookup::Stale(resp), Some(c), Some(stored)) =
            (&found, &self.inner, Instant::now().checked_sub(age))
        {
            c.insert(
                *key,
                Arc::new(Cached {
                    resp: resp.clone(),
                    stored,
                }),
            );
        }
        found
    }

    /// What may answer when every provider failed: an answer this process holds (the lookup before the providers
    /// put there what the shared tier had), else what [`ResponseCache::get`] finds. Spares the failure path a
    /// second Redis round trip.
    pub async fn get_on_error(&self, key: &Key) -> Lookup {
        match self.local(key) {
            Lookup::Miss => self.get(key).await,
            held => held,
        }
    }

    fn local(&self, key: &Key) -> Lookup {
        let Some(c) = self.inner.as_ref().and_then(|c| c.get(key)) else {
            return Lookup::Miss;
        };
        self.judge(c.stored.elapsed(), &c.resp)
    }

    /// Fresh, stale or gone at `age`; an answer stored by its head is read in full here (any surface may take
    /// it, not only the one that stored it).
    fn judge(&self, age: Duration, resp: &ChatResponse) -> Lookup {
        if age < self.cfg.ttl {
            Lookup::Fresh(resp.clone().complete())
        } else if self.cfg.serve_stale_on_error && age < self.cfg.ttl + self.cfg.stale_for {
            Lookup::Stale(resp.clone().complete())
        } else {
            Lookup::Miss
        }
    }

    /// The shared tier's answer and its age (read from the key's remaining life). `None` without the tier, when
    /// Redis fails, or when what is stored is not an answer.
    async fn shared_get(&self, key: &Key) -> Option<(Lookup, Duration)> {
        let shared = self.shared.as_ref()?;
        let r = shared.backend.redis()?;
        let k = format!("{}{}", shared.names.entry_prefix, hex(key));
        let (value, pttl): (Option<Vec<u8>>, i64) = r
            .call(StateOp::Cache, |mut conn| async move {
                redis::pipe()
                    .cmd("GET")
                    .arg(&k)
                    .cmd("PTTL")
                    .arg(&k)
                    .query_async(&mut conn)
                    .await
            })
            .await
            .ok()?;
        let (value, left) = (value?, u64::try_from(pttl).ok()?);
        let resp = match decode(value) {
            Ok(r) => r,
            Err(e) => {
                tracing::debug!(error = %e, "shared cache entry is not an answer: ignored");
                return None;
            }
        };
        let age = keep(&self.cfg).saturating_sub(Duration::from_millis(left));
        Some((self.judge(age, &resp), age))
    }

    /// Stores an answer here, and in the shared tier beside the response (a task bounded by
    /// `state.redis.timeout`; without a tokio runtime only here).
    pub fn put(&self, key: Key, resp: &ChatResponse) {
        let Some(c) = &self.inner else {
            return;
        };
        c.insert(
            key,
            Arc::new(Cached {
                resp: resp.clone(),
                stored: Instant::now(),
            }),
        );
        let (Some(shared), Ok(rt)) = (&self.shared, tokio::runtime::Handle::try_current()) else {
            return;
        };
        let Some(value) = encode(resp).filter(|v| v.len() <= SHARED_ENTRY_MAX_BYTES) else {
            return;
        };
        let (backend, names, writes) = (
            shared.backend.clone(),
            shared.names.clone(),
            shared.writes.clone(),
        );
        let args = [
            ms(keep(&self.cfg)).max(1),
            i64::try_from(self.cfg.max_bytes).unwrap_or(i64::MAX),
            i64::try_from(self.cfg.max_entries).unwrap_or(i64::MAX),
        ];
        writes.send_modify(|n| *n += 1);
        rt.spawn(async move {
            if let Some(r) = backend.redis() {
                let member = hex(&key);
                let entry = format!("{}{member}", names.entry_prefix);
                let _ = r
                    .call(StateOp::Cache, |mut conn| async move {
                        let mut inv = scripts::CACHE_PUT.prepare_invoke();
                        inv.key(&entry)
                            .key(&names.index)
                            .key(&names.sizes)
                            .key(&names.bytes);
                        inv.arg(&member).arg(value);
                        for a in args {
                            inv.arg(a);
                        }
                        inv.arg(&names.entry_prefix).invoke_async::<i64>(&mut conn).await
                    })
                    .await;
            }
            writes.send_modify(|n| *n = n.saturating_sub(1));
        });
    }

    /// Resolves once no shared write is in flight (at once without the shared tier): a store made before this
    /// call is then in Redis, or failed.
    pub async fn flushed(&self) {
        if let Some(s) = &self.shared {
            let _ = s.writes.subscribe().wait_for(|n| *n == 0).await;
        }
    }

    /// `memory`, or `redis` when the shared tier is on.
    pub fn backend(&self) -> &'static str {
        if self.shared.is_some() {
            "redis"
        } else {
            "memory"
        }
    }

    /// Approximate number of entries (for `/admin`).
    pub fn entry_count(&self) -> u64 {
        self.inner.as_ref().map_or(0, |c| {
            c.run_pending_tasks();
            c.entry_count()
        })
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    fn req(text: &str, temperature: Option<f64>) -> ChatRequest {
        serde_json::from_value(serde_json::json!({
            "model": "default", "temperature": temperature,
            "messages": [{"role": "user", "content": text}]
        }))
        .unwrap()
    }

    fn resp(text: &str) -> ChatResponse {
        serde_json::from_value(serde_json::json!({
            "id": "x", "object": "chat.completion", "created": 1, "model": "m",
            "choices": [{"index": 0, "message": {"role": "assistant", "content": text}, "finish_reason": "stop"}]
        }))
        .unwrap()
    }

    #[test]
    fn an_answer_weighs_its_json_and_the_upstream_bytes_it_keeps() {
        let mut r = resp("hello");
        let bare = weight(&r);
        assert!(bare > 64);
        r.raw = Some(Raw::full(bytes::Bytes::from(vec![b' '; 1000])));
        assert_eq!(weight(&r), bare + 1000);
    }

    #[test]
    fn the_shared_form_keeps_the_upstream_bytes_and_refuses_what_it_did_not_write() {
        let plain = resp("hello");
        let back = decode(encode(&plain).unwrap()).unwrap();
        assert_eq!(back, plain);
        assert!(back.raw.is_none());
        let raw = br#"{"id":"x","object":"chat.completion","created":1,"model":"m","system_fingerprint":"fp","choices":[{"index":0,"message":{"role":"assistant","content":"hi"},"finish_reason":"stop"}]}"#;
        let mut upstream: ChatResponse = serde_json::from_slice(raw).unwrap();
        upstream.raw = Some(Raw::full(bytes::Bytes::from_static(raw)));
        let back = decode(encode(&upstream).unwrap()).unwrap();
        assert_eq!(
            back.raw.as_ref().map(|r| &r.bytes[..]),
            Some(raw.as_slice()),
            "sent on as the upstream wrote it"
        );
        assert_eq!(back.choices, upstream.choices);
        // An answer read by its head only is stored by its bytes and read back in full.
        let head = crate::providers::openai::head(raw.to_vec()).unwrap();
        assert_eq!(head.choices[0].message.content, None);
        let back = decode(encode(&head).unwrap()).unwrap();
        assert_eq!(
            (back.choices, back.raw.map(|r| r.head_only)),
            (upstream.choices, Some(false))
        );
        for bad in [
            &b""[..],
            b"c",
            b"cnot json",
            b"x{}",
            b"r{\"id\": 5}",
            &[0xff, 0xfe],
        ] {
            assert!(decode(bad.to_vec()).is_err(), "{bad:?}");
        }
    }

    #[test]
    fn key_ignores_stream_flags_but_not_content() {
        let a = req("hi", Some(0.0));
        let mut b = a.clone();
        b.stream = true;
        b.extra.insert(
            "stream_options".into(),
            serde_json::json!({"include_usage": true}),
        );
        assert_eq!(key(&a), key(&b));
        assert_ne!(key(&a), key(&req("hi!", Some(0.0))));
        assert_ne!(key(&a), key(&req("hi", Some(0.5))));
    }

    #[tokio::test(start_paused = true)]
    async fn fresh_then_stale_then_gone() {
        let cfg = CacheConfig {
            ttl: Duration::from_secs(60),
            stale_for: Duration::from_secs(600),
            serve_stale_on_error: true,
            ..CacheConfig::default()
        };
        let c = ResponseCache::new(&cfg);
        let r = req("q", Some(0.0));
        assert!(c.eligible(&r));
        assert!(!c.eligible(&req("q", None)));
        let k = key(&r);
        assert_eq!(c.get(&k).await, Lookup::Miss);
        c.put(k, &resp("a"));
        assert_eq!(c.get(&k).await, Lookup::Fresh(resp("a")));
        tokio::time::advance(Duration::from_secs(61)).await;
        assert_eq!(c.get(&k).await, Lookup::Stale(resp("a")));
        tokio::time::advance(Duration::from_secs(600)).await;
        assert_eq!(c.get(&k).await, Lookup::Miss);
    }

    #[tokio::test]
    async fn an_answer_stored_by_its_head_comes_out_in_full() {
        let c = ResponseCache::new(&CacheConfig {
            scope: CacheScope::All,
            ..CacheConfig::default()
        });
        let raw = br#"{"id":"x","object":"chat.completion","created":1,"model":"m","choices":[{"index":0,"message":{"role":"assistant","content":"hi \u00e9"},"finish_reason":"stop"}],"usage":{"prompt_tokens":3,"completion_tokens":2,"total_tokens":5}}"#;
        let head = crate::providers::openai::head(raw.to_vec()).unwrap();
        let k = key(&req("q", None));
        c.put(k, &head);
        let Lookup::Fresh(got) = c.get(&k).await else {
            panic!("a miss")
        };
        assert_eq!(
            got.text(),
            "hi é",
            "every surface may take a cached answer: its message is read"
        );
        assert_eq!(
            got.raw.as_ref().map(|r| (&r.bytes[..], r.head_only)),
            Some((&raw[..], false))
        );
        assert_eq!(got.usage, head.usage);
    }

    #[test]
    fn entry_bound_holds() {
        let cfg = CacheConfig {
            max_entries: 10,
            scope: CacheScope::All,
            ..CacheConfig::default()
        };
        let c = ResponseCache::new(&cfg);
        for i in 0..100 {
            c.put(key(&req(&format!("q{i}"), None)), &resp("a"));
        }
        assert!(c.entry_count() <= 10, "{}", c.entry_count());
    }
}
