//! `POST /v1/embeddings`: routed like chat; floats from upstream, base64 for clients that ask (the openai SDK does).

use std::sync::Arc;

use axum::extract::rejection::BytesRejection;
use axum::extract::State;
use axum::http::HeaderMap;
use axum::response::{IntoResponse, Response};
use axum::Json;
use base64::Engine;
use bytes::Bytes;
use serde_json::{json, Value};
use tokio::time::Instant;

use super::{decorate, parse_body, preferred_provider, route_error, ApiError, AppState};
use crate::canonical::{EmbeddingsRequest, Usage};
use crate::providers::{ErrorClass, ProviderError};

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

/// `POST /v1/embeddings`.
pub(crate) async fn embeddings(
    State(state): State<Arc<AppState>>,
    headers: HeaderMap,
    body: Result<Bytes, BytesRejection>,
) -> Result<Response, ApiError> {
    let start = Instant::now();
    let req: EmbeddingsRequest = parse_body(body, state.config.server.body_limit_bytes, check)?;
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
    let candidates = state.router.plan(&req.model, preferred.as_deref())?;
    let served = state
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
        .await
        .map_err(|e| route_error(&state, e))?;
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
        .map(|e| {
            let embedding = if base64 {
                let bytes: Vec<u8> = e.embedding.iter().flat_map(|f| f.to_le_bytes()).collect();
                json!(base64::engine::general_purpose::STANDARD.encode(bytes))
            } else {
                json!(e.embedding)
            };
            json!({"object": "embedding", "index": e.index, "embedding": embedding})
        })
        .collect();
    let body = json!({"object": "list", "data": data, "model": out.model, "usage": out.usage});
    let mut resp = Json(body).into_response();
    decorate(&state, &mut resp, &served.candidate, served.fallbacks);
    Ok(resp)
}
