//! Exact-match response cache (moka) on the canonical request: TTL and size bounds, deterministic requests only
//! unless `cache.scope: all`; expired answers kept for `stale_for` so `serve_stale_on_error` can still answer.
//!
//! Freshness is judged on tokio time (paused-time tests move it); moka's own TTL only bounds memory.

use std::sync::Arc;
use std::time::Duration;

use sha2::{Digest, Sha256};
use tokio::time::Instant;

use crate::canonical::{ChatRequest, ChatResponse};
use crate::config::{CacheConfig, CacheScope};

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
}

impl std::fmt::Debug for ResponseCache {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ResponseCache")
            .field("enabled", &self.inner.is_some())
            .finish_non_exhaustive()
    }
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

/// What an answer costs the cache in bytes: its JSON, the upstream's own bytes it may carry, and some overhead.
fn weight(resp: &ChatResponse) -> usize {
    serde_json::to_vec(resp).map_or(0, |b| b.len()) + resp.raw.as_ref().map_or(0, |r| r.len()) + 64
}

impl ResponseCache {
    /// From config.
    pub fn new(cfg: &CacheConfig) -> ResponseCache {
        let inner = cfg.enabled.then(|| {
            let keep = if cfg.serve_stale_on_error {
                cfg.ttl + cfg.stale_for
            } else {
                cfg.ttl
            };
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
        }
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

    /// Looks `key` up.
    pub fn get(&self, key: &Key) -> Lookup {
        let Some(c) = self.inner.as_ref().and_then(|c| c.get(key)) else {
            return Lookup::Miss;
        };
        let age = c.stored.elapsed();
        if age < self.cfg.ttl {
            Lookup::Fresh(c.resp.clone())
        } else if self.cfg.serve_stale_on_error && age < self.cfg.ttl + self.cfg.stale_for {
            Lookup::Stale(c.resp.clone())
        } else {
            Lookup::Miss
        }
    }

    /// Stores an answer.
    pub fn put(&self, key: Key, resp: &ChatResponse) {
        if let Some(c) = &self.inner {
            c.insert(
                key,
                Arc::new(Cached {
                    resp: resp.clone(),
                    stored: Instant::now(),
                }),
            );
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
        r.raw = Some(bytes::Bytes::from(vec![b' '; 1000]));
        assert_eq!(weight(&r), bare + 1000);
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
        assert_eq!(c.get(&k), Lookup::Miss);
        c.put(k, &resp("a"));
        assert_eq!(c.get(&k), Lookup::Fresh(resp("a")));
        tokio::time::advance(Duration::from_secs(61)).await;
        assert_eq!(c.get(&k), Lookup::Stale(resp("a")));
        tokio::time::advance(Duration::from_secs(600)).await;
        assert_eq!(c.get(&k), Lookup::Miss);
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
