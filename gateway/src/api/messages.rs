//! `POST /v1/messages` (Anthropic Messages, plain and SSE) and `POST /v1/messages/count_tokens`: parse,
//! translate to the canonical chat request ([`crate::canonical::messages`]), call the answer pipeline, render
//! the Messages object or event grammar. Fallback, cache, limits, breakers and the offline tier are the
//! pipeline's, exactly as on the chat route. Every error answer of these routes (and of `/v1/models` asked by
//! an Anthropic client) is in Anthropic's shape: [`anthropic_errors`].

use std::sync::Arc;

use axum::body::Body;
use axum::extract::{Request, State};
use axum::http::{header, HeaderMap, HeaderValue, StatusCode};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use axum::Json;
use serde_json::{json, Value};

use super::sse::{grammar_response, Grammar};
use super::{parse_body, split, ApiError, AppState};
use crate::canonical::messages::{self, Purpose, StreamWriter};
use crate::pipeline::{self, headers, Event, Opts};

/// `anthropic-version`: the Anthropic SDKs send it on every request.
pub(crate) const ANTHROPIC_VERSION: &str = "anthropic-version";

/// `POST /v1/messages`.
pub(crate) async fn messages(State(state): State<Arc<AppState>>, req: Request) -> Result<Response, ApiError> {
    let (headers, body) = split(req).await;
    let body: Value = parse_body(
        body,
        state.config.server.body_limit_bytes,
        |_| Ok(()),
        Value::is_object,
    )?;
    let t = messages::translate(&body, Purpose::Answer)?;
    let opts = Opts::from_headers(&headers);
    let model = t.model;
    let served = if t.chat.stream {
        pipeline::chat_stream(&state, t.chat, &opts)
            .await
            .map(|streamed| {
                let mut resp = grammar_response(streamed.events, StreamWriter::new(model));
                headers::apply(&state, &mut resp, &streamed.meta);
                resp
            })
    } else {
        pipeline::chat(&state, &t.chat, &opts).await.map(|answer| {
            let object = messages::message_object(&model, answer.response());
            let mut resp = Json(object).into_response();
            headers::apply(&state, &mut resp, &answer.meta());
            resp
        })
    };
    served.map_err(|e| e.map_param(messages_param))
}

/// `POST /v1/messages/count_tokens`: `{"input_tokens": N}`, the gateway's own estimate of the prompt as the
/// model would see it (system, messages and tool definitions). Approximate by contract
/// (`../shared/AGENT_APIS.md` §2.6); the model must exist (404 otherwise), no provider is called.
pub(crate) async fn count_tokens(
    State(state): State<Arc<AppState>>,
    req: Request,
) -> Result<Response, ApiError> {
    let (_, body) = split(req).await;
    let body: Value = parse_body(
        body,
        state.config.server.body_limit_bytes,
        |_| Ok(()),
        Value::is_object,
    )?;
    let t = messages::translate(&body, Purpose::Count)?;
    state
        .router
        .planner()
        .plan(&t.chat.model, crate::config::Mode::Auto, None)?;
    let tokens = pipeline::estimate_input_tokens(&t.chat);
    Ok(Json(json!({"input_tokens": tokens})).into_response())
}

/// The chat field a pipeline error names, as the Messages field the client sent.
fn messages_param(param: &str) -> String {
    let head = param.split(['.', '[']).next().unwrap_or(param);
    match head {
        // Indices differ: system and tool results move between chat messages.
        "messages" => "messages".into(),
        "stop" => "stop_sequences".into(),
        "max_completion_tokens" => "max_tokens".into(),
        "response_format" => "output_config.format".into(),
        _ => param.to_string(),
    }
}

impl Grammar for StreamWriter {
    fn render(&mut self, ev: Event) -> (String, bool) {
        match ev {
            Event::Chunk(c) => (self.chunk(&c), false),
            Event::Continued { to, after, .. } => {
                (format!(": continued on {to} after {}\n\n", after.as_str()), false)
            }
            // `overloaded_error`: what Anthropic itself sends when an answer breaks off; clients retry it.
            Event::Failed { provider, error } => {
                let message = format!(
                    "upstream stream from {provider} broke ({}): {}",
                    error.class.as_str(),
                    error.message
                );
                (self.fail("overloaded_error", &message), true)
            }
            Event::ShuttingDown => {
                let message = "the gateway is shutting down; retry the request";
                (self.fail("overloaded_error", message), true)
            }
            Event::Done => (self.complete(), true),
        }
    }

    fn unterminated(&mut self) -> String {
        self.fail("api_error", "the answer ended without a final event")
    }
}

/// Whether a request is answered in Anthropic's shapes: the Messages routes, and the model list asked with
/// `anthropic-version`.
pub(crate) fn is_anthropic(path: &str, headers: &HeaderMap) -> bool {
    path.starts_with("/v1/messages")
        || (path.starts_with("/v1/models") && headers.contains_key(ANTHROPIC_VERSION))
}

/// The Anthropic error type and HTTP status of a gateway error answer (`../shared/AGENT_APIS.md` §2.4).
fn anthropic_type(status: StatusCode, code: &str) -> (StatusCode, &'static str) {
    match (status.as_u16(), code) {
        // Every candidate failed (overloaded, out of quota, unreachable, unauthorized) or none is usable:
        // 529, which Claude Code and the SDKs retry.
        (
            _,
            "all_providers_failed"
            | "all_providers_rate_limited"
            | "all_providers_unauthorized"
            | "no_provider_available"
            | "server_busy",
        ) => (StatusCode::from_u16(529).unwrap_or(status), "overloaded_error"),
        (504, _) => (status, "timeout_error"),
        (400 | 405 | 408 | 422 | 431, _) => (status, "invalid_request_error"),
        (401, _) => (status, "authentication_error"),
        (403, _) => (status, "permission_error"),
        (404, _) => (status, "not_found_error"),
        (413, _) => (status, "request_too_large"),
        (429, _) => (status, "rate_limit_error"),
        _ => (status, "api_error"),
    }
}

/// Whether every attempt failed on quota: retrying will not help, so `x-should-retry: false`.
fn only_quota_left(attempts: Option<&Value>) -> bool {
    let Some(list) = attempts.and_then(Value::as_array) else {
        return false;
    };
    !list.is_empty()
        && list.iter().all(|a| {
            let is = |k: &str| a.get(k).and_then(Value::as_str) == Some("quota_exhausted");
            is("error") || is("reason")
        })
}

/// Middleware: an error answer of an Anthropic-shaped route in Anthropic's error shape,
/// `{"type":"error","error":{"type","message"},"request_id"}`, with the attempt list as `gateway_attempts`;
/// headers (`retry-after`, `X-LLM-*`) are kept.
pub(crate) async fn anthropic_errors(req: Request, next: Next) -> Response {
    if !is_anthropic(req.uri().path(), req.headers()) {
        return next.run(req).await;
    }
    let request_id = req.headers().get(headers::REQUEST_ID).cloned();
    let resp = next.run(req).await;
    if resp.status().is_success() {
        return resp;
    }
    let (mut parts, body) = resp.into_parts();
    let bytes = axum::body::to_bytes(body, 1024 * 1024).await.unwrap_or_default();
    let v: Value = serde_json::from_slice(&bytes).unwrap_or(Value::Null);
    let err = v.get("error");
    let code = err
        .and_then(|e| e.get("code"))
        .and_then(Value::as_str)
        .unwrap_or("");
    let mut message = err
        .and_then(|e| e.get("message"))
        .and_then(Value::as_str)
        .unwrap_or_else(|| parts.status.canonical_reason().unwrap_or("error"))
        .to_string();
    if let Some(p) = err.and_then(|e| e.get("param")).and_then(Value::as_str) {
        if !p.is_empty() && !message.contains(p) {
            message = format!("{p}: {message}");
        }
    }
    if code == "offline_miss" {
        message = format!("offline_miss: {message}");
    }
    let (status, kind) = anthropic_type(parts.status, code);
    let attempts = err.and_then(|e| e.get("attempts"));
    if kind == "overloaded_error" && only_quota_left(attempts) {
        parts
            .headers
            .insert("x-should-retry", HeaderValue::from_static("false"));
    }
    let id = request_id
        .as_ref()
        .and_then(|h| h.to_str().ok())
        .unwrap_or_default()
        .to_string();
    let mut out = json!({"type": "error", "error": {"type": kind, "message": message}, "request_id": id});
    if let Some(a) = attempts {
        out["gateway_attempts"] = a.clone();
    }
    if let Some(h) = request_id {
        parts.headers.insert("request-id", h);
    }
    parts.status = status;
    parts.headers.remove(header::CONTENT_LENGTH);
    parts
        .headers
        .insert(header::CONTENT_TYPE, HeaderValue::from_static("application/json"));
    Response::from_parts(parts, Body::from(out.to_string()))
}

/// `GET /v1/models` for an Anthropic client: `claude-*` aliases first (Claude Code keeps only ids starting
/// with `claude`), then the logical models; paged by `limit`, `after_id`, `before_id`.
pub(crate) fn model_list(state: &AppState, query: Option<&str>) -> Value {
    let planner = state.router.planner();
    let mut ids: Vec<(String, String)> = state
        .config
        .aliases
        .exact()
        .map(|(a, l)| (a.to_string(), format!("{a} (gateway model {l})")))
        .collect();
    ids.extend(
        planner
            .logical_models()
            .map(|m| (m.clone(), format!("Gateway {m}"))),
    );
    let param = |name: &str| {
        query?.split('&').find_map(|kv| {
            let (k, v) = kv.split_once('=')?;
            (k == name).then(|| v.to_string())
        })
    };
    let limit = param("limit")
        .and_then(|l| l.parse::<usize>().ok())
        .unwrap_or(20)
        .clamp(1, 1000);
    let mut start = 0;
    let mut end = ids.len();
    if let Some(after) = param("after_id") {
        start = ids
            .iter()
            .position(|(id, _)| *id == after)
            .map_or(ids.len(), |i| i + 1);
    }
    if let Some(before) = param("before_id") {
        end = ids.iter().position(|(id, _)| *id == before).unwrap_or(end);
    }
    let page: Vec<&(String, String)> = ids
        .get(start..end.max(start))
        .unwrap_or_default()
        .iter()
        .take(limit)
        .collect();
    let has_more = start + page.len() < end;
    let data: Vec<Value> = page.iter().map(|(id, name)| model_info(id, name)).collect();
    json!({
        "data": data,
        "has_more": has_more,
        "first_id": page.first().map(|(id, _)| id.as_str()),
        "last_id": page.last().map(|(id, _)| id.as_str()),
    })
}

/// One Anthropic `ModelInfo`.
pub(crate) fn model_info(id: &str, display_name: &str) -> Value {
    json!({"type": "model", "id": id, "display_name": display_name, "created_at": "2026-01-01T00:00:00Z"})
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_gateway_failure_of_all_candidates_is_overloaded_529() {
        for code in [
            "all_providers_failed",
            "all_providers_rate_limited",
            "no_provider_available",
        ] {
            let (s, k) = anthropic_type(StatusCode::SERVICE_UNAVAILABLE, code);
            assert_eq!((s.as_u16(), k), (529, "overloaded_error"), "{code}");
        }
        assert_eq!(
            anthropic_type(StatusCode::SERVICE_UNAVAILABLE, "offline_miss"),
            (StatusCode::SERVICE_UNAVAILABLE, "api_error")
        );
        assert_eq!(
            anthropic_type(StatusCode::GATEWAY_TIMEOUT, "deadline_exceeded").1,
            "timeout_error"
        );
        assert_eq!(
            anthropic_type(StatusCode::NOT_FOUND, "model_not_found").1,
            "not_found_error"
        );
        assert_eq!(
            anthropic_type(StatusCode::PAYLOAD_TOO_LARGE, "body_too_large").1,
            "request_too_large"
        );
        assert_eq!(
            anthropic_type(StatusCode::TOO_MANY_REQUESTS, "rate_limit_exceeded").1,
            "rate_limit_error"
        );
        assert_eq!(
            anthropic_type(StatusCode::UNAUTHORIZED, "invalid_api_key").1,
            "authentication_error"
        );
        assert_eq!(
            anthropic_type(StatusCode::BAD_REQUEST, "invalid_request").1,
            "invalid_request_error"
        );
    }

    #[test]
    fn quota_everywhere_says_do_not_retry() {
        let q = json!([{"provider": "a", "error": "quota_exhausted"}, {"provider": "b", "error": "quota_exhausted"}]);
        assert!(only_quota_left(Some(&q)));
        let cooling = json!([{"provider": "a", "error": "skipped_cooldown", "reason": "quota_exhausted"}]);
        assert!(only_quota_left(Some(&cooling)));
        let mixed =
            json!([{"provider": "a", "error": "quota_exhausted"}, {"provider": "b", "error": "connect"}]);
        assert!(!only_quota_left(Some(&mixed)));
        assert!(!only_quota_left(Some(&json!([]))));
        assert!(!only_quota_left(None));
    }

    #[test]
    fn chat_fields_are_named_as_the_messages_client_sent_them() {
        assert_eq!(messages_param("stop"), "stop_sequences");
        assert_eq!(messages_param("messages[3].content"), "messages");
        assert_eq!(
            messages_param("response_format.json_schema"),
            "output_config.format"
        );
        assert_eq!(messages_param("temperature"), "temperature");
    }
}
