//! The answers that need no provider: cache hits (fresh, or stale when every provider failed) and offline
//! package matches (prepared answers, stored vectors); and the one decision of what follows a failed routing.

use axum::http::{header, HeaderMap};

use super::{Answer, Embedded, Failure, Meta, PackageRef, Run};
use crate::api::{ApiError, AppState};
use crate::cache::{Key, Lookup};
use crate::canonical::{
    ChatRequest, ChatResponse, EmbeddingsRequest, EmbeddingsResponse, EmbeddingsUsage, Role,
};
use crate::config::Mode;
use crate::metrics::CacheResult;
use crate::providers::capabilities::{Needs, Structured};
use crate::router::{PlanError, RouteError};

/// The cache-related request headers: `no-cache` skips the lookup, `no-store` skips storing.
#[derive(Debug, Clone, Copy, Default)]
pub struct CacheControl {
    /// Skip the lookup.
    pub no_cache: bool,
    /// Skip storing.
    pub no_store: bool,
}

impl CacheControl {
    /// From `Cache-Control` headers.
    pub fn from_headers(h: &HeaderMap) -> CacheControl {
        let v = h
            .get_all(header::CACHE_CONTROL)
            .iter()
            .filter_map(|v| v.to_str().ok())
            .collect::<Vec<_>>()
            .join(",")
            .to_ascii_lowercase();
        let has = |d: &str| v.split(',').any(|x| x.trim() == d);
        CacheControl {
            no_cache: has("no-cache"),
            no_store: has("no-store"),
        }
    }
}

/// The text a package is matched on: the last user message.
pub(crate) fn last_user_text(req: &ChatRequest) -> Option<String> {
    req.messages
        .iter()
        .rev()
        .find(|m| m.role == Role::User)
        .map(|m| m.text())
        .filter(|t| !t.trim().is_empty())
}

/// A fresh cache hit, counting hit/miss/bypass.
pub(crate) async fn cache_lookup(state: &AppState, key: Option<&Key>, cc: CacheControl) -> Option<Answer> {
    let key = key?;
    if cc.no_cache {
        state.metrics.cache(CacheResult::Bypass);
        return None;
    }
    match state.cache.get(key).await {
        Lookup::Fresh(resp) => {
            state.metrics.cache(CacheResult::Hit);
            Some(Answer::Cache { resp, stale: false })
        }
        Lookup::Stale(_) | Lookup::Miss => {
            state.metrics.cache(CacheResult::Miss);
            None
        }
    }
}

/// An offline package answer for a chat request. A package holds prose answered from text: it never answers a
/// request with images or one that asks for JSON (the answer would ignore what the client sent or asked for).
pub(crate) fn package_answer(state: &AppState, req: &ChatRequest, needs: &Needs) -> Option<Answer> {
    if needs.images.is_some() || needs.structured != Structured::None {
        return None;
    }
    let text = last_user_text(req)?;
    let hit = state.offline.lookup(&text)?;
    tracing::info!(
        package = %hit.package.name,
        entry = %hit.entry.id,
        score = f64::from(hit.score),
        "answered from an offline package"
    );
    Some(Answer::Package {
        resp: hit.chat_response(&text),
        entry: PackageRef {
            package: format!("{}@{}", hit.package.name, hit.package.version),
            entry: hit.entry.id.clone(),
            score: hit.score,
        },
    })
}

/// Stored vectors for every input of an embeddings request, only when they come from the request's space: each
/// vector must have the size the request's space has (or its `dimensions`), else `None`.
pub(crate) fn package_vectors(state: &AppState, req: &EmbeddingsRequest, needs: &Needs) -> Option<Embedded> {
    if !state.config.offline.embeddings {
        return None;
    }
    let size = req
        .dimensions
        .or_else(|| needs.space.as_ref().and_then(|s| s.dimensions))?;
    let texts = req.input.texts()?;
    let mut vectors = Vec::with_capacity(texts.len());
    let mut first = None;
    for t in &texts {
        let hit = state.offline.lookup(t)?;
        let v = hit.entry.embedding.as_deref()?;
        if v.len() != size as usize {
            tracing::debug!(
                entry = %hit.entry.id,
                have = v.len(),
                want = size,
                "offline vector of another size: not served"
            );
            return None;
        }
        first.get_or_insert_with(|| PackageRef {
            package: format!("{}@{}", hit.package.name, hit.package.version),
            entry: hit.entry.id.clone(),
            score: hit.score,
        });
        vectors.push(v.to_vec());
    }
    let response = EmbeddingsResponse::from_vectors("offline/package", vectors, EmbeddingsUsage::default());
    Some(Embedded {
        response,
        meta: Meta::package(first?),
    })
}

/// Answers that can stand in for a stale cache entry.
pub(crate) trait Tier: Sized {
    /// The stale cache answer as this kind of answer, if it can be one.
    fn stale(resp: ChatResponse) -> Option<Self>;
}

impl Tier for Answer {
    fn stale(resp: ChatResponse) -> Option<Answer> {
        Some(Answer::Cache { resp, stale: true })
    }
}

impl Tier for Embedded {
    fn stale(_: ChatResponse) -> Option<Embedded> {
        None
    }
}

/// After a failed routing: a stale cache answer (if allowed), then an offline package (not in `remote` mode),
/// else the error (`offline_miss` in offline mode). Failures that are the client's (a rejected or unservable
/// request, an unknown model) go straight back. The one place offline misses are counted and recorded (`missed`:
/// the texts the packages were matched on, for `/admin/offline/misses`).
pub(crate) async fn after_failure<T: Tier>(
    run: &Run<'_>,
    failure: Failure,
    key: Option<&Key>,
    missed: Option<Vec<String>>,
    package: impl FnOnce(&AppState) -> Option<T>,
) -> Result<T, ApiError> {
    let state = run.state;
    let recoverable = matches!(
        failure,
        Failure::Route(RouteError::AllFailed { .. }) | Failure::Plan(PlanError::NoCandidates { .. })
    );
    if !recoverable {
        return Err(match failure {
            Failure::Route(e) => ApiError::Route(e),
            Failure::Plan(e) => ApiError::Plan(e),
        });
    }
    if let (true, Some(k)) = (state.cache.serves_stale(), key) {
        if let Lookup::Stale(resp) = state.cache.get_on_error(k).await {
            if let Some(a) = T::stale(resp) {
                state.metrics.cache(CacheResult::Stale);
                tracing::warn!("every provider failed, serving a stale cached answer");
                return Ok(a);
            }
        }
    }
    if run.mode != Mode::Remote {
        if let Some(a) = package(state) {
            return Ok(a);
        }
        if run.mode == Mode::Offline || !state.offline.is_empty() {
            state.metrics.offline_misses.inc();
            state.offline.record_misses(missed.as_deref());
        }
    }
    Err(match (failure, run.mode) {
        (Failure::Route(RouteError::AllFailed { attempts, .. }), Mode::Offline) => {
            ApiError::OfflineMiss(attempts)
        }
        (Failure::Plan(PlanError::NoCandidates { .. }), Mode::Offline) => ApiError::OfflineMiss(Vec::new()),
        (Failure::Route(e), _) => ApiError::Route(e),
        (Failure::Plan(e), _) => ApiError::Plan(e),
    })
}
