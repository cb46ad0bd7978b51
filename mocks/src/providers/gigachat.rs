//! Sber GigaChat: OAuth at `/api/v2/oauth` (Basic key, `RqUID`, scope, `expires_at` in epoch ms) and the
//! v1 API (`functions` with object arguments, `blacklist` refusals, SSE) (PROVIDERS.md §4).

use super::shared::{after_chunks, fault_delay, first_half};
use super::shared::{embedding_dims, embedding_inputs};
use super::{PathMatch, Route as RouteDef};
use crate::chat::{Answer, ChatRequest, Finish};
use crate::content::{count_tokens, embedding, unix_now, uuid_like};
use crate::fault::{FaultKind, FaultSpec};
use crate::http::{bearer, body_object, delayed, header, json, raw, sse, sse_data};
use crate::provider::Provider;
use crate::server::Faults;
use crate::state::State;
use crate::wire::{Request, ResponseTemplate};
use base64::Engine as _;
use serde_json::{json, Value};

/// GigaChat's canned refusal for restricted topics (`finish_reason: "blacklist"`).
pub(crate) const REFUSAL: &str =
    "Не люблю менять тему разговора, но вот сейчас тот самый случай. Давайте поговорим о чём-нибудь другом.";

/// The `/api/v1` routes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Route {
    Chat,
    Models,
    Model,
    Embeddings,
    TokensCount,
    Balance,
}

impl Route {
    pub(crate) fn is_inference(self) -> bool {
        matches!(self, Route::Chat | Route::Embeddings)
    }
}

pub(crate) fn routes() -> Vec<RouteDef> {
    use super::Endpoint::{Giga, GigaOAuth};
    use PathMatch::*;
    vec![
        RouteDef {
            method: "POST",
            path: Exact("/api/v2/oauth"),
            endpoint: GigaOAuth,
        },
        RouteDef {
            method: "POST",
            path: Exact("/api/v1/chat/completions"),
            endpoint: Giga(Route::Chat),
        },
        RouteDef {
            method: "GET",
            path: Exact("/api/v1/models"),
            endpoint: Giga(Route::Models),
        },
        RouteDef {
            method: "GET",
            path: Param("/api/v1/models/"),
            endpoint: Giga(Route::Model),
        },
        RouteDef {
            method: "POST",
            path: Exact("/api/v1/embeddings"),
            endpoint: Giga(Route::Embeddings),
        },
        RouteDef {
            method: "POST",
            path: Exact("/api/v1/tokens/count"),
            endpoint: Giga(Route::TokensCount),
        },
        RouteDef {
            method: "GET",
            path: Exact("/api/v1/balance"),
            endpoint: Giga(Route::Balance),
        },
    ]
}

fn oauth_error(status: u16, code: u32, message: &str) -> ResponseTemplate {
    json(status, &json!({"code": code, "message": message}))
}

fn is_uuid(s: &str) -> bool {
    let parts: Vec<&str> = s.split('-').collect();
    parts.iter().map(|p| p.len()).eq([8, 4, 4, 4, 12])
        && parts.iter().all(|p| p.chars().all(|c| c.is_ascii_hexdigit()))
}

/// `POST /api/v2/oauth`: issues a token that this fake will accept until it expires.
pub(crate) fn oauth(state: &State, req: &Request) -> ResponseTemplate {
    let latency = state.settings().latency_ms;
    let t = oauth_inner(state, req);
    delayed(t, latency)
}

fn oauth_inner(state: &State, req: &Request) -> ResponseTemplate {
    let Some(rquid) = header(req, "rquid") else {
        return oauth_error(400, 2, "RqUID header is required");
    };
    if !is_uuid(rquid.trim()) {
        return oauth_error(400, 2, "RqUID header is invalid: expected a UUID");
    }
    let auth = header(req, "authorization").unwrap_or("");
    let key = match auth.split_once(' ') {
        Some((scheme, key)) if scheme.eq_ignore_ascii_case("basic") => key.trim(),
        _ => return oauth_error(401, 4, "Can't decode 'Authorization' header"),
    };
    let decoded = base64::engine::general_purpose::STANDARD
        .decode(key)
        .ok()
        .and_then(|b| String::from_utf8(b).ok());
    match decoded {
        Some(d)
            if d.split_once(':')
                .is_some_and(|(id, secret)| !id.is_empty() && !secret.is_empty()) => {}
        Some(_) => return oauth_error(401, 6, "credentials doesn't match db data"),
        None => return oauth_error(401, 4, "Can't decode 'Authorization' header"),
    }
    let form = String::from_utf8_lossy(&req.body).into_owned();
    let scope = form
        .split('&')
        .filter_map(|kv| kv.split_once('='))
        .find(|(k, _)| *k == "scope")
        .map(|(_, v)| v.trim().to_string())
        .unwrap_or_default();
    match scope.as_str() {
        "" => return oauth_error(400, 5, "scope is empty"),
        "GIGACHAT_API_PERS" | "GIGACHAT_API_B2B" | "GIGACHAT_API_CORP" => {}
        _ => return oauth_error(400, 1, "scope data format invalid"),
    }
    let (token, expires_at) = state.issue_token(&scope);
    json(200, &json!({"access_token": token, "expires_at": expires_at}))
}

fn api_error(status: u16, message: &str) -> ResponseTemplate {
    json(status, &json!({"status": status, "message": message}))
}

fn fault_error(f: &FaultSpec) -> ResponseTemplate {
    let t = match f.fault {
        FaultKind::RateLimited => api_error(429, "Too many requests"),
        FaultKind::QuotaExhausted => api_error(402, "Payment Required"),
        FaultKind::Overloaded => api_error(503, "Service Unavailable"),
        FaultKind::Auth => api_error(401, "Unauthorized"),
        FaultKind::BadRequest => api_error(400, "bad request format"),
        FaultKind::ContextLength => api_error(
            422,
            "Invalid params: total tokens limit exceeded, maximum context length is 32768 tokens",
        ),
        _ => api_error(500, "Internal Server Error"),
    };
    match (f.retry_after_s, f.fault) {
        (Some(s), FaultKind::RateLimited | FaultKind::Overloaded) => {
            t.insert_header("retry-after", s.to_string())
        }
        _ => t,
    }
}

/// Echoes the correlation headers the SDK reads back into `.x_headers`.
fn echo(req: &Request, mut t: ResponseTemplate) -> ResponseTemplate {
    for h in ["x-request-id", "x-session-id", "x-client-id"] {
        if let Some(v) = header(req, h) {
            t = t.insert_header(h, v);
        }
    }
    t
}

/// Answers an `/api/v1` route; only tokens this fake issued and that have not expired pass.
pub(crate) fn handle(state: &State, route: Route, req: &Request, faults: &Faults<'_>) -> ResponseTemplate {
    let latency = state.settings().latency_ms;
    let authorized = bearer(req).is_some_and(|t| state.token_valid(&t));
    let t = if !authorized {
        api_error(401, "Unauthorized")
    } else {
        match route {
            Route::Chat => return echo(req, chat(state, req, faults, latency)),
            Route::Embeddings => return echo(req, embeddings(req, faults, latency)),
            Route::Models => json(200, &json!({"object": "list", "data": models()})),
            Route::Model => {
                let id = PathMatch::param(req.url.path());
                match Provider::GigaChat.find_model(&id) {
                    Some(m) => json(200, &model_object(m.id, m.embedding)),
                    None => api_error(404, "No such model"),
                }
            }
            Route::TokensCount => tokens_count(req),
            Route::Balance => json(
                200,
                &json!({"balance": [{"usage": "GigaChat", "value": 991_490},
                {"usage": "GigaChat-Pro", "value": 500_000}, {"usage": "embeddings", "value": 4_990_000}]}),
            ),
        }
    };
    delayed(echo(req, t), latency)
}

fn model_object(id: &str, embedder: bool) -> Value {
    json!({"id": id, "object": "model", "owned_by": "salutedevices", "type": if embedder { "embedder" } else { "chat" }})
}

fn models() -> Vec<Value> {
    Provider::GigaChat
        .models()
        .iter()
        .map(|m| model_object(m.id, m.embedding))
        .collect()
}

fn tokens_count(req: &Request) -> ResponseTemplate {
    let Ok(body) = body_object(req) else {
        return api_error(400, "bad request format");
    };
    match embedding_inputs(body.get("input")) {
        Ok(inputs) => json(
            200,
            &Value::Array(
                inputs
                    .iter()
                    .map(|t| {
                        json!({"object": "tokens",
            "tokens": count_tokens(t), "characters": t.chars().count()})
                    })
                    .collect(),
            ),
        ),
        Err(i) => api_error(422, &format!("Invalid params: {}", i.message)),
    }
}

fn finish(a: &Answer) -> &'static str {
    match a.finish {
        Finish::Stop => "stop",
        Finish::Length => "length",
        Finish::ToolCalls => "function_call",
    }
}

fn versioned(model: &str) -> String {
    format!("{model}:2.0.28.2")
}

fn message(a: &Answer, functions_state: &str) -> Value {
    match &a.tool_call {
        Some((name, args)) => json!({"role": "assistant", "content": "",
            "function_call": {"name": name, "arguments": args}, "functions_state_id": functions_state}),
        None => json!({"role": "assistant", "content": a.text}),
    }
}

fn chat(state: &State, req: &Request, faults: &Faults<'_>, latency: u64) -> ResponseTemplate {
    let body = match body_object(req) {
        Ok(b) => b,
        Err(_) => return delayed(api_error(400, "bad request format"), latency),
    };
    // GigaChat reads `functions`/`function_call` only; OpenAI's `tools` are ignored, as by the real API.
    let mut body = body;
    body.remove("tools");
    body.remove("tool_choice");
    let chat = match ChatRequest::parse(&body, false) {
        Ok(c) => c,
        Err(i) => return delayed(api_error(422, &format!("Invalid params: {}", i.message)), latency),
    };
    if let Some(pos) = chat.messages.iter().position(|m| m.role == "system") {
        if pos != 0 || chat.messages.iter().filter(|m| m.role == "system").count() > 1 {
            return delayed(
                api_error(422, "Invalid params: system message must be the first message"),
                latency,
            );
        }
    }
    let Some(model) = Provider::GigaChat.find_model(&chat.model) else {
        return delayed(api_error(404, "No such model"), latency);
    };
    if chat.prompt_tokens() > model.context {
        return delayed(
            api_error(422, "Invalid params: total tokens limit exceeded"),
            latency,
        );
    }
    let fault = faults.decide();
    let delay = latency + fault_delay(fault.as_ref());
    let mut a = chat.answer(Provider::GigaChat);
    let kind = fault.as_ref().map(|f| f.fault);
    let after = after_chunks(fault.as_ref());
    let mut finish_reason = finish(&a);
    if kind == Some(FaultKind::ContentFilter) {
        a.tool_call = None;
        a.text = REFUSAL.into();
        a.completion_tokens = count_tokens(REFUSAL);
        finish_reason = "blacklist";
    }
    let fstate = uuid_like(&[&state.request_seed(&req.body).to_le_bytes(), b"functions"]);
    let created = unix_now();
    let usage = json!({"prompt_tokens": a.prompt_tokens, "completion_tokens": a.completion_tokens,
        "total_tokens": a.total_tokens(), "precached_prompt_tokens": 0});
    let complete = json!({"choices": [{"message": message(&a, &fstate), "index": 0, "finish_reason": finish_reason}],
        "created": created, "model": versioned(&chat.model), "object": "chat.completion", "usage": usage});
    let t = match kind {
        None | Some(FaultKind::Slow | FaultKind::ContentFilter) if !chat.stream => json(200, &complete),
        None | Some(FaultKind::Slow | FaultKind::ContentFilter) => sse(stream(
            &a,
            &chat.model,
            created,
            &fstate,
            finish_reason,
            &usage,
            None,
            usize::MAX,
        )),
        Some(k @ (FaultKind::TruncatedStream | FaultKind::StreamError | FaultKind::Malformed))
            if chat.stream =>
        {
            sse(stream(
                &a,
                &chat.model,
                created,
                &fstate,
                finish_reason,
                &usage,
                Some(k),
                after,
            ))
        }
        Some(FaultKind::Malformed | FaultKind::TruncatedStream) => {
            raw(200, first_half(&complete.to_string()), "application/json")
        }
        Some(_) => fault_error(fault.as_ref().unwrap_or(&FaultSpec::new(FaultKind::ServerError))),
    };
    delayed(t, delay)
}

#[allow(clippy::too_many_arguments)]
fn stream(
    a: &Answer,
    model: &str,
    created: u64,
    fstate: &str,
    finish_reason: &str,
    usage: &Value,
    fault: Option<FaultKind>,
    limit: usize,
) -> String {
    let mut out = String::new();
    let chunk = |delta: Value, extra: Option<(&str, &Value)>| {
        let mut choice = json!({"delta": delta, "index": 0});
        let mut c = json!({"created": created, "model": versioned(model), "object": "chat.completion"});
        if let Some((fr, u)) = extra {
            choice["finish_reason"] = json!(fr);
            c["usage"] = u.clone();
        }
        c["choices"] = json!([choice]);
        c.to_string()
    };
    let mut pieces: Vec<Value> = a
        .pieces()
        .into_iter()
        .map(|p| json!({"content": p, "role": "assistant"}))
        .collect();
    if a.tool_call.is_some() {
        pieces = vec![message(a, fstate)];
    }
    for (i, delta) in pieces.into_iter().enumerate() {
        if fault.is_some() && i >= limit {
            break;
        }
        sse_data(&mut out, &chunk(delta, None));
    }
    match fault {
        Some(FaultKind::TruncatedStream) => return out,
        Some(FaultKind::Malformed) => {
            sse_data(&mut out, "{\"choices\":[{\"delta\":{\"content\":\"обрыв");
            sse_data(&mut out, "[DONE]");
            return out;
        }
        Some(_) => {
            sse_data(
                &mut out,
                &json!({"status": 500, "message": "Internal Server Error"}).to_string(),
            );
            return out;
        }
        None => {}
    }
    sse_data(
        &mut out,
        &chunk(json!({"content": ""}), Some((finish_reason, usage))),
    );
    sse_data(&mut out, "[DONE]");
    out
}

fn embeddings(req: &Request, faults: &Faults<'_>, latency: u64) -> ResponseTemplate {
    let Ok(body) = body_object(req) else {
        return delayed(api_error(400, "bad request format"), latency);
    };
    let model = body
        .get("model")
        .and_then(Value::as_str)
        .unwrap_or("Embeddings")
        .to_string();
    if Provider::GigaChat.find_model(&model).is_none() {
        return delayed(api_error(404, "No such model"), latency);
    }
    let inputs = match embedding_inputs(body.get("input")) {
        Ok(i) => i,
        Err(i) => return delayed(api_error(422, &format!("Invalid params: {}", i.message)), latency),
    };
    let fault = faults.decide();
    let delay = latency + fault_delay(fault.as_ref());
    if let Some(f) = fault.filter(|f| !matches!(f.fault, FaultKind::Slow | FaultKind::ContentFilter)) {
        return delayed(fault_error(&f), delay);
    }
    let dims = embedding_dims(&model);
    let data: Vec<Value> = inputs
        .iter()
        .enumerate()
        .map(|(i, t)| {
            json!({"object": "embedding", "index": i, "embedding": embedding(Provider::GigaChat, t, dims),
            "usage": {"prompt_tokens": count_tokens(t)}})
        })
        .collect();
    delayed(
        json(200, &json!({"object": "list", "model": model, "data": data})),
        delay,
    )
}

/// A path the API does not have.
pub(crate) fn not_found() -> ResponseTemplate {
    api_error(404, "Not Found")
}
