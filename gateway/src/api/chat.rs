//! `POST /v1/chat/completions` (plain and SSE) and `POST /api/assistants/generate`.

use std::sync::Arc;
use std::time::Duration;

use axum::extract::{Request, State};

use axum::response::{IntoResponse, Response};
use axum::Json;
use futures::StreamExt;
use serde::Deserialize;
use serde_json::{json, Value};
use tokio::time::Instant;

use super::tiers::{after_failure, cache_lookup, decorate_answer, respond, Answer, CacheControl};
use super::{decorate, parse_body, preferred_provider, split, sse, ApiError, AppState};
use crate::cache;
use crate::canonical::{ChatChunk, ChatRequest, Message, Role, Usage};
use crate::config::StreamFailurePolicy;
use crate::metrics::{ProviderLabels, TokenKind, TokenLabels};
use crate::providers::ChunkStream;
use crate::providers::{ErrorClass, ProviderError};
use crate::router::{Candidate, RouteError, Served};

fn check_chat(v: &Value) -> Result<(), ApiError> {
    match v.get("messages") {
        Some(Value::Array(a)) if !a.is_empty() => Ok(()),
        Some(Value::Array(_)) | None | Some(Value::Null) => Err(ApiError::MissingMessages),
        Some(_) => Err(ApiError::InvalidRequest {
            message: "'messages' must be an array of message objects".into(),
            param: Some("messages".into()),
        }),
    }
}

/// Counts tokens by provider and kind, and against the provider's budgets.
pub(crate) fn count_tokens(state: &AppState, provider: &str, usage: &Usage) {
    for (kind, n) in [
        (TokenKind::Prompt, usage.prompt_tokens),
        (TokenKind::Completion, usage.completion_tokens),
    ] {
        if n > 0 {
            state
                .metrics
                .tokens
                .get_or_create(&TokenLabels {
                    provider: provider.to_string(),
                    kind,
                })
                .inc_by(n);
        }
    }
    let total = usage
        .total_tokens
        .max(usage.prompt_tokens + usage.completion_tokens);
    state.router.record_tokens(provider, total);
}

fn unknown_provider(name: &str) -> ProviderError {
    ProviderError::new(ErrorClass::Connect, format!("provider {name} has no adapter"))
}

/// Routes a non-stream chat: fresh cache hit, else the providers (answer stored), else stale cache or an offline
/// package.
pub(crate) async fn route_chat(
    state: &Arc<AppState>,
    req: &ChatRequest,
    preferred: Option<&str>,
    cc: CacheControl,
) -> Result<Answer, ApiError> {
    let key = state.cache.eligible(req).then(|| cache::key(req));
    if let Some(a) = cache_lookup(state, key.as_ref(), cc) {
        return Ok(a);
    }
    let start = Instant::now();
    let candidates = match state.router.plan(&req.model, preferred) {
        Ok(c) => c,
        Err(e) => return after_failure(state, req, key.as_ref(), Err(e)),
    };
    let routed = state
        .router
        .execute(&candidates, |cand, _budget| {
            let provider = state.provider(&cand.provider).cloned();
            let model = cand.model.clone();
            let name = cand.provider.clone();
            async move {
                let p = provider.ok_or_else(|| unknown_provider(&name))?;
                p.adapter.chat(req, &model).await
            }
        })
        .await;
    let served = match routed {
        Ok(s) => s,
        Err(e) => return after_failure(state, req, key.as_ref(), Ok(e)),
    };
    if let Some(u) = &served.value.usage {
        count_tokens(state, &served.candidate.provider, u);
    }
    if let (Some(k), false) = (key, cc.no_store) {
        state.cache.put(k, &served.value);
    }
    let overhead = start.elapsed().saturating_sub(served.upstream_wait);
    state.metrics.overhead.observe(overhead.as_secs_f64());
    Ok(Answer::Provider(served))
}

/// `POST /v1/chat/completions`.
pub(crate) async fn chat_completions(
    State(state): State<Arc<AppState>>,
    req: Request,
) -> Result<Response, ApiError> {
    let (headers, body) = split(req).await;
    let req: ChatRequest = parse_body(
        body,
        state.config.server.body_limit_bytes,
        check_chat,
        |r: &ChatRequest| !r.messages.is_empty(),
    )?;
    let preferred = preferred_provider(&headers);
    let cc = CacheControl::from_headers(&headers);
    if req.stream {
        return stream_chat(state, req, preferred, cc).await;
    }
    let answer = route_chat(&state, &req, preferred.as_deref(), cc).await?;
    Ok(respond(&state, &answer, false, false))
}

async fn stream_chat(
    state: Arc<AppState>,
    req: ChatRequest,
    preferred: Option<String>,
    cc: CacheControl,
) -> Result<Response, ApiError> {
    let include_usage = req.include_usage();
    let key = state.cache.eligible(&req).then(|| cache::key(&req));
    if let Some(a) = cache_lookup(&state, key.as_ref(), cc) {
        return Ok(respond(&state, &a, true, include_usage));
    }
    let start = Instant::now();
    let candidates = match state.router.plan(&req.model, preferred.as_deref()) {
        Ok(c) => c,
        Err(e) => {
            let a = after_failure(&state, &req, key.as_ref(), Err(e))?;
            return Ok(respond(&state, &a, true, include_usage));
        }
    };
    let served = match open_stream(&state, &req, &candidates).await {
        Ok(s) => s,
        Err(e) => {
            let a = after_failure(&state, &req, key.as_ref(), Ok(e))?;
            return Ok(respond(&state, &a, true, include_usage));
        }
    };
    let overhead = start.elapsed().saturating_sub(served.upstream_wait);
    state.metrics.overhead.observe(overhead.as_secs_f64());
    let (first, rest) = served.value;
    let policy = state.router.policy();
    let continuation = (policy.stream_failure == StreamFailurePolicy::Continue).then(|| {
        let pos = candidates
            .iter()
            .position(|c| c.provider == served.candidate.provider)
            .unwrap_or(0);
        sse::Continuation {
            req: req.clone(),
            remaining: candidates[pos + 1..].to_vec(),
            text: String::new(),
        }
    });
    let ctx = sse::StreamCtx {
        state: state.clone(),
        provider: served.candidate.provider.clone(),
        include_usage,
        // From the first byte on, the stall timeout and this cap bound the stream, not the routing deadline.
        deadline: Instant::now() + policy.max_stream_duration,
        stall: policy.stall_timeout,
        continuation,
    };
    let mut resp = sse::response(ctx, first, rest);
    decorate(&state, &mut resp, &served.candidate, served.fallbacks);
    Ok(resp)
}

/// Routes a streamed chat until a candidate produced its first token: the chunks held until then, and the rest.
pub(crate) async fn open_stream(
    state: &Arc<AppState>,
    req: &ChatRequest,
    candidates: &[Candidate],
) -> Result<Served<(Vec<ChatChunk>, ChunkStream)>, RouteError> {
    let first_token_timeout = state.router.policy().first_token_timeout;
    state
        .router
        .execute(candidates, |cand, budget| {
            let provider = state.provider(&cand.provider).cloned();
            let model = cand.model.clone();
            let name = cand.provider.clone();
            let metrics = state.metrics.clone();
            async move {
                let t0 = Instant::now();
                let p = provider.ok_or_else(|| unknown_provider(&name))?;
                // The first-token clock starts with the request: an upstream that holds back its response
                // headers is as late as one that holds back its first chunk.
                let wait = first_token_timeout.min(budget);
                // Hold chunks back until the first one that carries something (role-only chunks do not), so a
                // stream that breaks before its first token still fails over invisibly.
                let first = tokio::time::timeout(wait, async {
                    let mut stream = p.adapter.chat_stream(req, &model).await?;
                    let mut held = Vec::new();
                    loop {
                        match stream.next().await {
                            None => {
                                return Err(ProviderError::new(
                                    ErrorClass::Malformed,
                                    "upstream stream ended before any token",
                                ))
                            }
                            Some(Err(e)) => return Err(e),
                            Some(Ok(chunk)) => {
                                let token = has_token(&chunk);
                                held.push(chunk);
                                if token {
                                    return Ok((held, stream));
                                }
                            }
                        }
                    }
                })
                .await
                .map_err(|_| {
                    ProviderError::new(
                        ErrorClass::Timeout,
                        format!("no first token within {} ms", wait.as_millis()),
                    )
                })??;
                metrics
                    .ttft
                    .get_or_create(&ProviderLabels { provider: name })
                    .observe(t0.elapsed().as_secs_f64());
                let (first, stream) = first;
                Ok((first, stream))
            }
        })
        .await
}

/// Whether a chunk carries content, a tool call, a finish reason or usage.
pub(crate) fn has_token(c: &ChatChunk) -> bool {
    c.usage.is_some()
        || c.choices.iter().any(|ch| {
            ch.finish_reason.is_some()
                || ch.delta.content.as_deref().is_some_and(|t| !t.is_empty())
                || ch.delta.tool_calls.as_ref().is_some_and(|t| !t.is_empty())
        })
}

/// `{"prompt": "..."}` for the assistants route.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct GenerateRequest {
    prompt: String,
    #[serde(default)]
    model: Option<String>,
    #[serde(default)]
    system: Option<String>,
    #[serde(default)]
    max_tokens: Option<u32>,
    #[serde(default)]
    temperature: Option<f64>,
}

/// `POST /api/assistants/generate`: the text and who answered.
pub(crate) async fn assistants_generate(
    State(state): State<Arc<AppState>>,
    req: Request,
) -> Result<Response, ApiError> {
    let (headers, body) = split(req).await;
    let g: GenerateRequest = parse_body(
        body,
        state.config.server.body_limit_bytes,
        |v| match v.get("prompt") {
            Some(Value::String(s)) if !s.trim().is_empty() => Ok(()),
            _ => Err(ApiError::InvalidRequest {
                message: "'prompt' is required and must be a non-empty string".into(),
                param: Some("prompt".into()),
            }),
        },
        |g: &GenerateRequest| !g.prompt.trim().is_empty(),
    )?;
    let mut messages = Vec::new();
    if let Some(s) = g.system {
        messages.push(Message::plain(Role::System, s));
    }
    messages.push(Message::plain(Role::User, g.prompt));
    let req = ChatRequest {
        model: g.model.unwrap_or_else(|| "default".into()),
        messages,
        stream: false,
        temperature: g.temperature,
        top_p: None,
        max_tokens: g.max_tokens,
        max_completion_tokens: None,
        stop: None,
        seed: None,
        tools: None,
        tool_choice: None,
        extra: Default::default(),
    };
    let preferred = preferred_provider(&headers);
    let cc = CacheControl::from_headers(&headers);
    let answer = route_chat(&state, &req, preferred.as_deref(), cc).await?;
    let (provider, fallbacks) = match &answer {
        Answer::Provider(s) => (s.candidate.provider.clone(), s.fallbacks),
        Answer::Cache { .. } => ("cache".to_string(), 0),
        Answer::Package { .. } => ("offline-package".to_string(), 0),
    };
    let value = answer.response();
    let out = json!({
        "text": value.text(),
        "provider": provider,
        "model": value.model,
        "source": answer.source().as_str(),
        "fallbacks": fallbacks,
        "usage": value.usage,
    });
    let mut resp = Json(out).into_response();
    decorate_answer(&state, &mut resp, &answer);
    Ok(resp)
}

/// How long a stream may still run.
pub(crate) fn remaining(deadline: Instant) -> Duration {
    deadline.saturating_duration_since(Instant::now())
}
