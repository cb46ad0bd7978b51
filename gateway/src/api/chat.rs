//! `POST /v1/chat/completions` (plain and SSE) and `POST /api/assistants/generate`: parse, call the answer
//! pipeline, render.

use std::sync::Arc;

use axum::extract::{Request, State};
use axum::http::header;
use axum::response::{IntoResponse, Response};
use axum::Json;
use serde::Deserialize;
use serde_json::{json, Value};

use super::{parse_body, split, sse, ApiError, AppState};
use crate::canonical::{ChatRequest, Message, Role};
use crate::pipeline::{self, headers, Answer, Opts};
use crate::providers::Read;

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
    let opts = Opts::from_headers(&headers);
    if req.stream {
        let include_usage = req.include_usage();
        let streamed = pipeline::chat_stream(&state, req, &opts).await?;
        let mut resp = sse::response(streamed.events, include_usage);
        headers::apply(&state, &mut resp, &streamed.meta);
        return Ok(resp);
    }
    // The answer goes out as the upstream's bytes when they are OpenAI's shape as is: only their head is read.
    let opts = Opts {
        read: Read::PassThrough,
        ..opts
    };
    let answer = pipeline::chat(&state, &req, &opts).await?;
    Ok(render(&state, &answer))
}

/// A non-stream answer as the chat completion JSON (the upstream's own bytes when it sent OpenAI's shape).
fn render(state: &AppState, answer: &Answer) -> Response {
    let resp = answer.response();
    let mut out = match &resp.raw {
        Some(raw) => ([(header::CONTENT_TYPE, "application/json")], raw.bytes.clone()).into_response(),
        None => Json(resp).into_response(),
    };
    headers::apply(state, &mut out, &answer.meta());
    out
}

/// `{"prompt": "..."}` for the assistants route.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct GenerateRequest {
    pub(crate) prompt: String,
    #[serde(default)]
    pub(crate) model: Option<String>,
    #[serde(default)]
    pub(crate) system: Option<String>,
    #[serde(default)]
    pub(crate) max_tokens: Option<u32>,
    #[serde(default)]
    pub(crate) temperature: Option<f64>,
}

impl GenerateRequest {
    /// The canonical chat request.
    pub(crate) fn into_chat(self) -> ChatRequest {
        let mut messages = Vec::new();
        if let Some(s) = self.system {
            messages.push(Message::plain(Role::System, s));
        }
        messages.push(Message::plain(Role::User, self.prompt));
        ChatRequest {
            model: self.model.unwrap_or_else(|| "default".into()),
            messages,
            stream: false,
            temperature: self.temperature,
            top_p: None,
            max_tokens: self.max_tokens,
            max_completion_tokens: None,
            stop: None,
            seed: None,
            tools: None,
            tool_choice: None,
            extra: Default::default(),
        }
    }
}

/// The assistants route's answer: the text and who answered.
pub(crate) fn generate_result(answer: &Answer) -> Value {
    let meta = answer.meta();
    let value = answer.response();
    json!({
        "text": value.text(),
        "provider": meta.provider,
        "model": value.model,
        "source": meta.source.as_str(),
        "fallbacks": meta.fallbacks,
        "usage": value.usage,
    })
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
    let opts = Opts::from_headers(&headers);
    let answer = generate(&state, g, &opts).await?;
    let mut resp = Json(generate_result(&answer)).into_response();
    headers::apply(&state, &mut resp, &answer.meta());
    Ok(resp)
}

/// The assistants route's answer through the whole pipeline (also the MCP tool `llm_generate`).
pub(crate) async fn generate(
    state: &Arc<AppState>,
    g: GenerateRequest,
    opts: &Opts,
) -> Result<Answer, ApiError> {
    pipeline::chat(state, &g.into_chat(), opts).await
}
