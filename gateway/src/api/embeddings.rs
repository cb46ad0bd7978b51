//! `POST /v1/embeddings`: parse, call the answer pipeline, render floats or base64 (the openai SDK asks for
//! base64; upstreams are always asked for floats).

use std::sync::Arc;

use axum::extract::{Request, State};
use axum::response::{IntoResponse, Response};
use axum::Json;
use base64::Engine;
use serde_json::{json, Value};

use super::{parse_body, split, ApiError, AppState};
use crate::canonical::{EmbeddingInput, EmbeddingsRequest};
use crate::pipeline::{self, headers, Opts};

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

/// The path of the first input text that is empty (or white space only), as OpenAI refuses it.
fn empty_text(input: &EmbeddingInput) -> Option<String> {
    match input {
        EmbeddingInput::One(t) if t.trim().is_empty() => Some("input".into()),
        EmbeddingInput::Many(texts) => texts
            .iter()
            .position(|t| t.trim().is_empty())
            .map(|i| format!("input[{i}]")),
        _ => None,
    }
}

/// `POST /v1/embeddings`.
pub(crate) async fn embeddings(
    State(state): State<Arc<AppState>>,
    req: Request,
) -> Result<Response, ApiError> {
    let (headers, body) = split(req).await;
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
    if req.dimensions == Some(0) {
        return Err(ApiError::InvalidRequest {
            message: "dimensions must be at least 1".into(),
            param: Some("dimensions".into()),
        });
    }
    if let Some(param) = empty_text(&req.input) {
        return Err(ApiError::InvalidRequest {
            message: format!("{param} is an empty string: there is nothing to embed"),
            param: Some(param),
        });
    }
    let e = pipeline::embeddings(&state, &req, &Opts::from_headers(&headers)).await?;
    let out = &e.response;
    let data: Vec<Value> = out
        .data
        .iter()
        .map(|v| item(v.index, &v.embedding, base64))
        .collect();
    let body = json!({"object": "list", "data": data, "model": out.model, "usage": out.usage});
    let mut resp = Json(body).into_response();
    headers::apply(&state, &mut resp, &e.meta);
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
