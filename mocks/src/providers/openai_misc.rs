//! The rest of the OpenAI-shaped surface: request reading, response headers, embeddings, model
//! lists, and Moonshot's balance.

use super::openai_errors::{render, Dialect, Problem};
use super::shared::{embedding_dims, embedding_inputs, fault_delay};
use super::PathMatch;
use crate::chat::Invalid;
use crate::content::{count_tokens, embedding, embedding_base64, hex_id, uuid_like};
use crate::fault::FaultKind;
use crate::http::{bearer, body_object, delayed, json, BodyError};
use crate::provider::Provider;
use crate::server::Faults;
use crate::state::State;
use crate::wire::{Request, ResponseTemplate};
use serde_json::{json, Map, Value};

/// Checks credentials and parses the JSON body, or says what is wrong in `d`'s terms.
pub(crate) fn request_or_problem(d: Dialect, req: &Request) -> Result<Map<String, Value>, Problem> {
    if d != Dialect::OllamaV1 && bearer(req).is_none() {
        return Err(Problem::NoKey);
    }
    body_object(req).map_err(|e| match e {
        BodyError::Syntax(m) => Problem::BadJson(m),
        BodyError::NotObject => {
            Problem::Invalid(Invalid::new(None, "The request body must be a JSON object."))
        }
    })
}

/// Headers every answer of the dialect carries (OpenAI's request id and rate-limit headers).
pub(crate) fn common_headers(state: &State, d: Dialect, t: ResponseTemplate) -> ResponseTemplate {
    match d {
        Dialect::OpenAi => {
            let used = state.request_count().min(9_999);
            t.insert_header(
                "x-request-id",
                format!("req_{}", hex_id(&[&state.request_seed(b"rid").to_le_bytes()], 32)),
            )
            .insert_header("openai-version", "2020-10-01")
            .insert_header("openai-organization", "org-fake")
            .insert_header("openai-processing-ms", "12")
            .insert_header("x-ratelimit-limit-requests", "10000")
            .insert_header("x-ratelimit-remaining-requests", (10_000 - used).to_string())
            .insert_header("x-ratelimit-reset-requests", "6ms")
            .insert_header("x-ratelimit-limit-tokens", "2000000")
            .insert_header(
                "x-ratelimit-remaining-tokens",
                (2_000_000 - used * 50).to_string(),
            )
            .insert_header("x-ratelimit-reset-tokens", "1ms")
        }
        Dialect::QwenCompat => t.insert_header(
            "x-request-id",
            uuid_like(&[&state.request_seed(b"rid").to_le_bytes()]),
        ),
        _ => t,
    }
}

/// `POST .../embeddings`.
pub(crate) fn embeddings(state: &State, d: Dialect, req: &Request, faults: &Faults<'_>) -> ResponseTemplate {
    let latency = state.settings().latency_ms;
    let parsed = request_or_problem(d, req).and_then(|body| {
        let model = body
            .get("model")
            .and_then(Value::as_str)
            .unwrap_or("")
            .to_string();
        if model.is_empty() {
            return Err(Problem::Invalid(Invalid::new(
                Some("model"),
                "you must provide a model parameter",
            )));
        }
        let inputs = embedding_inputs(body.get("input")).map_err(Problem::Invalid)?;
        let info = d
            .provider()
            .find_model(&model)
            .ok_or_else(|| Problem::ModelNotFound(model.clone()))?;
        let format = match body.get("encoding_format").and_then(Value::as_str) {
            None | Some("float") => false,
            Some("base64") => true,
            Some(other) => {
                return Err(Problem::Invalid(Invalid::new(
                    Some("encoding_format"),
                    format!("Invalid value for 'encoding_format': '{other}'. Expected 'float' or 'base64'."),
                )))
            }
        };
        let dims = body.get("dimensions").and_then(Value::as_u64).map(|n| n as usize);
        Ok((info.id, inputs, format, dims))
    });
    let (model, inputs, base64, dims) = match parsed {
        Ok(p) => p,
        Err(p) => return delayed(render(state, d, &p), latency),
    };
    let fault = faults.decide();
    let delay = latency + fault_delay(fault.as_ref());
    if let Some(f) = fault.filter(|f| !matches!(f.fault, FaultKind::Slow | FaultKind::ContentFilter)) {
        return delayed(render(state, d, &Problem::Fault(f)), delay);
    }
    let dims = dims.unwrap_or_else(|| embedding_dims(model)).clamp(1, 8192);
    let data: Vec<Value> = inputs
        .iter()
        .enumerate()
        .map(|(i, text)| {
            let v = embedding(d.provider(), text, dims);
            let e = if base64 {
                json!(embedding_base64(&v))
            } else {
                json!(v)
            };
            json!({"object": "embedding", "index": i, "embedding": e})
        })
        .collect();
    let tokens: u32 = inputs.iter().map(|t| count_tokens(t)).sum();
    let body = json!({"object": "list", "data": data, "model": model,
        "usage": {"prompt_tokens": tokens, "total_tokens": tokens}});
    delayed(common_headers(state, d, json(200, &body)), delay)
}

fn owner(p: Provider) -> &'static str {
    match p {
        Provider::OpenAi => "system",
        Provider::Kimi => "moonshot",
        Provider::Qwen => "system",
        Provider::GigaChat => "salutedevices",
        Provider::Ollama => "library",
    }
}

fn model_object(d: Dialect, id: &str) -> Value {
    let mut m =
        json!({"id": id, "object": "model", "created": 1_715_367_049u64, "owned_by": owner(d.provider())});
    if d == Dialect::Kimi {
        m["root"] = json!(id);
        m["parent"] = Value::Null;
        m["permission"] = json!([{"created": 0, "id": "", "object": "", "allow_create_engine": false,
            "allow_sampling": true, "allow_logprobs": true, "allow_search_indices": false, "allow_view": true,
            "allow_fine_tuning": false, "organization": "public", "group": "public", "is_blocking": false}]);
    }
    m
}

/// `GET .../models`.
pub(crate) fn models(state: &State, d: Dialect, req: &Request) -> ResponseTemplate {
    let latency = state.settings().latency_ms;
    if d != Dialect::OllamaV1 && bearer(req).is_none() {
        return delayed(render(state, d, &Problem::NoKey), latency);
    }
    let data: Vec<Value> = d
        .provider()
        .models()
        .iter()
        .map(|m| model_object(d, m.id))
        .collect();
    delayed(
        common_headers(state, d, json(200, &json!({"object": "list", "data": data}))),
        latency,
    )
}

/// `GET .../models/{id}`.
pub(crate) fn model(state: &State, d: Dialect, req: &Request) -> ResponseTemplate {
    let latency = state.settings().latency_ms;
    if d != Dialect::OllamaV1 && bearer(req).is_none() {
        return delayed(render(state, d, &Problem::NoKey), latency);
    }
    let id = PathMatch::param(req.url.path());
    let t = match d.provider().find_model(&id) {
        Some(m) => common_headers(state, d, json(200, &model_object(d, m.id))),
        None => render(state, d, &Problem::ModelNotFound(id)),
    };
    delayed(t, latency)
}

/// Moonshot's `GET /v1/users/me/balance` (not OpenAI-shaped).
pub(crate) fn kimi_balance(state: &State, req: &Request) -> ResponseTemplate {
    let latency = state.settings().latency_ms;
    if bearer(req).is_none() {
        return delayed(render(state, Dialect::Kimi, &Problem::NoKey), latency);
    }
    let body = json!({"code": 0, "scode": "0x0", "status": true,
        "data": {"available_balance": 49.58894, "voucher_balance": 46.58893, "cash_balance": 3.00001}});
    delayed(json(200, &body), latency)
}
