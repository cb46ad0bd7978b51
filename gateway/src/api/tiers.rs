//! The answers that need no provider: cache hits (fresh, or stale when every provider failed) and offline
//! package matches, as plain JSON or as a synthetic SSE stream, with their `X-LLM-*` headers.

use std::sync::Arc;

use axum::body::Body;
use axum::http::{header, HeaderMap, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::Json;
use serde_json::Value;

use super::{decorate, route_error, ApiError, AppState};
use crate::cache::{Key, Lookup};
use crate::canonical::{ChatChunk, ChatRequest, ChatResponse, Delta, Role};
use crate::config::Mode;
use crate::metrics::{CacheResult, OfflineSource, Source};
use crate::router::{PlanError, RouteError, Served};

/// Who answered a chat request.
#[derive(Debug)]
pub(crate) enum Answer {
    /// A provider (remote or local).
    Provider(Served<ChatResponse>),
    /// The cache; `stale` when it was past its TTL and served because every provider failed.
    Cache {
        /// The cached answer.
        resp: ChatResponse,
        /// Served past its TTL.
        stale: bool,
    },
    /// An offline package entry.
    Package {
        /// The answer.
        resp: ChatResponse,
        /// `name@version`.
        package: String,
        /// Entry id.
        entry: String,
        /// Similarity.
        score: f32,
    },
}

impl Answer {
    pub(crate) fn response(&self) -> &ChatResponse {
        match self {
            Answer::Provider(s) => &s.value,
            Answer::Cache { resp, .. } | Answer::Package { resp, .. } => resp,
        }
    }

    /// `provider`, `local`, `cache` or `offline-package` (the assistants route's `source`).
    pub(crate) fn source(&self) -> Source {
        match self {
            Answer::Provider(s) if s.candidate.local => Source::Local,
            Answer::Provider(_) => Source::Provider,
            Answer::Cache { .. } => Source::Cache,
            Answer::Package { .. } => Source::OfflinePackage,
        }
    }
}

/// The cache-related request headers: `no-cache` skips the lookup, `no-store` skips storing.
#[derive(Debug, Clone, Copy, Default)]
pub(crate) struct CacheControl {
    pub(crate) no_cache: bool,
    pub(crate) no_store: bool,
}

impl CacheControl {
    pub(crate) fn from_headers(h: &HeaderMap) -> CacheControl {
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
pub(crate) fn cache_lookup(state: &AppState, key: Option<&Key>, cc: CacheControl) -> Option<Answer> {
    let key = key?;
    if cc.no_cache {
        state.metrics.cache(CacheResult::Bypass);
        return None;
    }
    match state.cache.get(key) {
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

/// An offline package answer for the request, counting the hit.
pub(crate) fn package_answer(state: &AppState, req: &ChatRequest) -> Option<Answer> {
    let text = last_user_text(req)?;
    let hit = state.offline.lookup(&text)?;
    state.metrics.offline_hit(OfflineSource::Package);
    tracing::info!(
        package = %hit.package.name,
        entry = %hit.entry.id,
        score = f64::from(hit.score),
        "answered from an offline package"
    );
    Some(Answer::Package {
        resp: hit.chat_response(&text),
        package: format!("{}@{}", hit.package.name, hit.package.version),
        entry: hit.entry.id.clone(),
        score: hit.score,
    })
}

/// When routing failed: a stale cache answer (if allowed), then an offline package (not in `remote` mode), else
/// the routing error (`offline_miss` in offline mode).
pub(crate) fn after_failure(
    state: &AppState,
    req: &ChatRequest,
    key: Option<&Key>,
    err: Result<RouteError, PlanError>,
) -> Result<Answer, ApiError> {
    let recoverable = matches!(
        err,
        Ok(RouteError::AllFailed { .. }) | Err(PlanError::NoCandidates { .. })
    );
    if !recoverable {
        return Err(match err {
            Ok(e) => ApiError::Route(e),
            Err(e) => ApiError::Plan(e),
        });
    }
    if let (true, Some(k)) = (state.cache.serves_stale(), key) {
        if let Lookup::Stale(resp) = state.cache.get(k) {
            state.metrics.cache(CacheResult::Stale);
            tracing::warn!("every provider failed, serving a stale cached answer");
            return Ok(Answer::Cache { resp, stale: true });
        }
    }
    let mode = state.router.mode();
    if mode != Mode::Remote {
        if let Some(a) = package_answer(state, req) {
            return Ok(a);
        }
        if mode == Mode::Auto && !state.offline.is_empty() {
            state.metrics.offline_misses.inc();
            state.offline.record_miss(last_user_text(req).as_deref());
        }
    }
    Err(match err {
        Ok(e) => route_error(state, e, last_user_text(req).map(|t| vec![t]).as_deref()),
        Err(PlanError::NoCandidates { .. }) if mode == Mode::Offline => {
            state.metrics.offline_misses.inc();
            state.offline.record_miss(last_user_text(req).as_deref());
            ApiError::OfflineMiss(Vec::new())
        }
        Err(e) => ApiError::Plan(e),
    })
}

/// The HTTP response for an answer: JSON, or SSE when `stream` (provider streams do not come through here).
pub(crate) fn respond(state: &Arc<AppState>, answer: &Answer, stream: bool, include_usage: bool) -> Response {
    let resp = answer.response();
    let mut out = if stream {
        synthetic_sse(resp, include_usage)
    } else if let Some(raw) = &resp.raw {
        ([(header::CONTENT_TYPE, "application/json")], raw.clone()).into_response()
    } else {
        Json(resp).into_response()
    };
    decorate_answer(state, &mut out, answer);
    out
}

/// The `X-LLM-*` headers for any answer; a provider's usage, for the client-limits layer (tokens/min) when client
/// limits are on.
pub(crate) fn decorate_answer(state: &AppState, out: &mut Response, answer: &Answer) {
    if let Answer::Provider(s) = answer {
        decorate(state, out, &s.candidate, s.fallbacks);
        if let (Some(u), true) = (s.value.usage, state.clients.enabled()) {
            out.extensions_mut().insert(u);
        }
        return;
    }
    let source = answer.source();
    let h = out.headers_mut();
    h.insert("x-llm-source", HeaderValue::from_static(source.as_str()));
    h.insert("x-llm-fallbacks", HeaderValue::from(0u32));
    match answer {
        Answer::Cache { stale, .. } => {
            let v = if *stale { "stale" } else { "hit" };
            h.insert("x-llm-cache", HeaderValue::from_static(v));
            h.insert("x-llm-actual-provider", HeaderValue::from_static("cache"));
        }
        Answer::Package {
            package,
            entry,
            score,
            ..
        } => {
            h.insert(
                "x-llm-actual-provider",
                HeaderValue::from_static("offline-package"),
            );
            for (name, v) in [
                ("x-llm-offline-package", package.clone()),
                ("x-llm-offline-entry", entry.clone()),
                ("x-llm-offline-score", format!("{score:.3}")),
            ] {
                if let Ok(v) = HeaderValue::from_str(&v) {
                    h.insert(name, v);
                }
            }
        }
        Answer::Provider(_) => {}
    }
}

/// A complete answer as an SSE stream: role, content, finish (and usage when asked), then `[DONE]`.
pub(crate) fn synthetic_sse(resp: &ChatResponse, include_usage: bool) -> Response {
    let (id, created, model) = (resp.id.as_str(), resp.created, resp.model.as_str());
    let role = Delta {
        role: Some(Role::Assistant),
        ..Delta::default()
    };
    let content = Delta {
        content: Some(resp.text()),
        ..Delta::default()
    };
    let finish = resp
        .choices
        .first()
        .and_then(|c| c.finish_reason.clone())
        .or_else(|| Some("stop".into()));
    let mut chunks = vec![
        ChatChunk::with_delta(id, created, model, role, None),
        ChatChunk::with_delta(id, created, model, content, None),
        ChatChunk::with_delta(id, created, model, Delta::default(), finish),
    ];
    if let (true, Some(u)) = (include_usage, resp.usage) {
        let mut c = ChatChunk::with_delta(id, created, model, Delta::default(), None);
        c.choices.clear();
        c.usage = Some(u);
        chunks.push(c);
    }
    let mut body = String::new();
    for c in &chunks {
        let v: Value = serde_json::to_value(c).unwrap_or(Value::Null);
        body.push_str(&format!("data: {v}\n\n"));
    }
    body.push_str("data: [DONE]\n\n");
    let mut out = (StatusCode::OK, Body::from(body)).into_response();
    out.headers_mut().insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("text/event-stream"),
    );
    out.headers_mut()
        .insert(header::CACHE_CONTROL, HeaderValue::from_static("no-cache"));
    out
}
