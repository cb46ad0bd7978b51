//! `POST /v1/embeddings`: routed like chat; floats from upstream, base64 for clients that ask (the openai SDK does).

use std::sync::Arc;

use axum::extract::{Request, State};
use axum::http::HeaderValue;
use axum::response::{IntoResponse, Response};
use axum::Json;
use base64::Engine;
use serde_json::{json, Value};
use tokio::time::Instant;

use super::{decorate, parse_body, preferred_provider, route_error, split, ApiError, AppState};
use crate::canonical::{EmbeddingInput, EmbeddingsRequest, Usage};
use crate::config::Mode;
use crate::metrics::{OfflineSource, Source};
use crate::providers::{ErrorClass, ProviderError};
use crate::router::{PlanError, RouteError};

fn check(v: &Value) -> Result<(), ApiError> {
    match v.get("input") {
        Some(Value::String(_)) => Ok(()),
        Some(Value::Array(a)) if !a.is_empty() => Ok(()),
        _ => Err(ApiError::InvalidRequest {
            message: "'input' is required: a string or a non-empty array".into(),
            param: Some("input".into()),
        }),
    }
}

/// [`check`] on the typed request, for the hot path of [`parse_body`].
fn accept(r: &EmbeddingsRequest) -> bool {
    match &r.input {
        EmbeddingInput::One(_) => true,
        EmbeddingInput::Many(texts) => !texts.is_empty(),
        EmbeddingInput::Tokens(Value::Array(a)) => !a.is_empty(),
        EmbeddingInput::Tokens(_) => false,
    }
}

/// `POST /v1/embeddings`.
pub(crate) async fn embeddings(
    State(state): State<Arc<AppState>>,
    req: Request,
) -> Result<Response, ApiError> {
    let (headers, body) = split(req).await;
    let start = Instant::now();
    let req: EmbeddingsRequest = parse_body(body, state.config.server.body_limit_bytes, check, accept)?;
    let base64 = match req.encoding_format.as_deref() {
        None | Some("float") => false,
        Some("base64") => true,
        Some(other) => {
            return Err(ApiError::InvalidRequest {
                message: format!("encoding_format must be float or base64, not {other:?}"),
                param: Some("encoding_format".into()),
            })
        }
    };
    let preferred = preferred_provider(&headers);
    let candidates = match state.router.plan(&req.model, preferred.as_deref()) {
        Ok(c) => c,
        Err(e @ PlanError::NoCandidates { .. }) => {
            return offline_vectors(&state, &req, base64).ok_or_else(|| match state.router.mode() {
                Mode::Offline => {
                    state.metrics.offline_misses.inc();
                    state.offline.record_misses(req.input.texts().as_deref());
                    ApiError::OfflineMiss(Vec::new())
                }
                _ => ApiError::Plan(e),
            })
        }
        Err(e) => return Err(e.into()),
    };
    let routed = state
        .router
        .execute(&candidates, |cand, _| {
            let provider = state.provider(&cand.provider).cloned();
            let model = cand.model.clone();
            let req = &req;
            async move {
                let p = provider.ok_or_else(|| ProviderError::new(ErrorClass::Connect, "no adapter"))?;
                p.adapter.embed(req, &model).await
            }
        })
        .await;
    let served = match routed {
        Ok(s) => s,
        Err(e @ RouteError::AllFailed { .. }) => {
            return offline_vectors(&state, &req, base64)
                .ok_or_else(|| route_error(&state, e, req.input.texts().as_deref()))
        }
        Err(e) => return Err(route_error(&state, e, req.input.texts().as_deref())),
    };
    let u = served.value.usage;
    super::chat::count_tokens(
        &state,
        &served.candidate.provider,
        &Usage::new(u.prompt_tokens, 0),
    );
    state
        .metrics
        .overhead
        .observe(start.elapsed().saturating_sub(served.upstream_wait).as_secs_f64());
    let out = &served.value;
    let data: Vec<Value> = out
        .data
        .iter()
        .map(|e| item(e.index, &e.embedding, base64))
        .collect();
    let body = json!({"object": "list", "data": data, "model": out.model, "usage": out.usage});
    let mut resp = Json(body).into_response();
    decorate(&state, &mut resp, &served.candidate, served.fallbacks);
    Ok(resp)
}

fn item(index: u32, v: &[f32], base64: bool) -> Value {
    let embedding = if base64 {
        let bytes: Vec<u8> = v.iter().flat_map(|f| f.to_le_bytes()).collect();
        json!(base64::engine::general_purpose::STANDARD.encode(bytes))
    } else {
        json!(v)
    };
    json!({"object": "embedding", "index": index, "embedding": embedding})
}

/// Offline tier for embeddings (not in remote mode): every input must match a package entry that stores a
/// vector, else `None`.
fn offline_vectors(state: &AppState, req: &EmbeddingsRequest, base64: bool) -> Option<Response> {
    if state.router.mode() == Mode::Remote || !state.config.offline.embeddings {
        return None;
    }
    let texts = req.input.texts()?;
    let vectors: Option<Vec<&[f32]>> = texts.iter().map(|t| state.offline.embedding(t)).collect();
    let Some(vectors) = vectors else {
        if !state.offline.is_empty() && state.router.mode() == Mode::Auto {
            state.metrics.offline_misses.inc();
            state.offline.record_misses(Some(&texts));
        }
        return None;
    };
    state.metrics.offline_hit(OfflineSource::Package);
    let data: Vec<Value> = vectors
        .iter()
        .enumerate()
        .map(|(i, v)| item(i as u32, v, base64))
        .collect();
    let body = json!({"object": "list", "data": data, "model": "offline/package",
        "usage": {"prompt_tokens": 0, "total_tokens": 0}});
    let mut resp = Json(body).into_response();
    let h = resp.headers_mut();
    h.insert(
        "x-llm-source",
        HeaderValue::from_static(Source::OfflinePackage.as_str()),
    );
    h.insert(
        "x-llm-actual-provider",
        HeaderValue::from_static("offline-package"),
    );
    h.insert("x-llm-fallbacks", HeaderValue::from(0u32));
    Some(resp)
}
