//! `POST /v1/responses` (OpenAI Responses, plain and SSE): parse, translate to the canonical chat request
//! ([`crate::canonical::responses`]), call the answer pipeline, render the Responses object or event grammar.
//! Fallback, cache, limits, breakers and the offline tier are the pipeline's, exactly as on the chat route.

use std::sync::Arc;

use axum::body::Body;
use axum::extract::{Request, State};
use axum::http::{header, HeaderValue};
use axum::response::{IntoResponse, Response};
use axum::Json;
use serde_json::Value;

use super::sse::{grammar_response, Grammar};
use super::{parse_body, split, ApiError, AppState};
use crate::canonical::responses::{self, Frame, Rejected, StreamWriter};
use crate::config::HostedTools;
use crate::metrics::{DroppedToolLabels, HostedTool, Route};
use crate::pipeline::{self, headers, Event, Opts};
use crate::providers::ErrorClass;

/// Response header: the hosted tools (`web_search`, ...) left out of the upstream call, comma-separated.
pub(crate) const DROPPED_TOOLS: &str = "x-llm-dropped-tools";

impl From<Rejected> for ApiError {
    fn from(r: Rejected) -> ApiError {
        if r.code == "invalid_request" {
            ApiError::InvalidRequest {
                message: r.message,
                param: Some(r.param),
            }
        } else {
            ApiError::Unsupported {
                code: r.code,
                message: r.message,
                param: r.param,
            }
        }
    }
}

/// `POST /v1/responses`.
pub(crate) async fn responses(
    State(state): State<Arc<AppState>>,
    req: Request,
) -> Result<Response, ApiError> {
    let (headers, body) = split(req).await;
    let body: Value = parse_body(
        body,
        state.config.server.body_limit_bytes,
        |_| Ok(()),
        Value::is_object,
    )?;
    let reject = state.config.responses.hosted_tools == HostedTools::Reject;
    let t = responses::translate(&body, reject)?;
    for kind in &t.dropped_tools {
        if let Some(tool) = HostedTool::of(kind) {
            let labels = DroppedToolLabels {
                route: Route::Responses,
                tool,
            };
            state.metrics.dropped_tools.get_or_create(&labels).inc();
        }
    }
    let opts = Opts::from_headers(&headers);
    let frame = Frame::new(t.echo);
    let served = if t.chat.stream {
        pipeline::chat_stream(&state, t.chat, &opts)
            .await
            .map(|streamed| {
                let mut resp = grammar_response(streamed.events, StreamWriter::new(frame));
                headers::apply(&state, &mut resp, &streamed.meta);
                resp
            })
    } else {
        pipeline::chat(&state, &t.chat, &opts).await.map(|answer| {
            let object = responses::response_object(&frame, answer.response());
            let mut resp = Json(object).into_response();
            headers::apply(&state, &mut resp, &answer.meta());
            resp
        })
    };
    let mut resp = match served {
        Ok(resp) => resp,
        Err(e) => with_gateway_attempts(e.map_param(responses_param).into_response()).await,
    };
    if !t.dropped_tools.is_empty() {
        if let Ok(v) = HeaderValue::from_str(&t.dropped_tools.join(", ")) {
            resp.headers_mut().insert(DROPPED_TOOLS, v);
        }
    }
    Ok(resp)
}

/// The chat field a pipeline error names, as the Responses field the client sent (`messages[2].content` ->
/// `input`, `max_tokens` -> `max_output_tokens`, `response_format` -> `text.format`).
fn responses_param(param: &str) -> String {
    let head = param.split(['.', '[']).next().unwrap_or(param);
    match head {
        "messages" => "input".into(),
        "max_tokens" | "max_completion_tokens" => "max_output_tokens".into(),
        "response_format" => format!("text.format{}", &param[head.len()..]),
        _ => param.to_string(),
    }
}

/// An error answer of the pipeline with its attempt list also as the top-level `gateway_attempts` (the agent
/// surfaces' field; the SDKs build error models leniently and ignore it).
async fn with_gateway_attempts(resp: Response) -> Response {
    let (mut parts, body) = resp.into_parts();
    let Ok(bytes) = axum::body::to_bytes(body, 1024 * 1024).await else {
        return Response::from_parts(parts, Body::empty());
    };
    let Ok(mut v) = serde_json::from_slice::<Value>(&bytes) else {
        return Response::from_parts(parts, Body::from(bytes));
    };
    let attempts = v.pointer("/error/attempts").cloned();
    match (attempts, v.as_object_mut()) {
        (Some(a), Some(obj)) => {
            obj.insert("gateway_attempts".into(), a);
        }
        _ => return Response::from_parts(parts, Body::from(bytes)),
    }
    parts.headers.remove(header::CONTENT_LENGTH);
    Response::from_parts(parts, Body::from(v.to_string()))
}

/// The `response.failed` error code (the Responses enum) of a provider's failure.
fn failed_code(class: ErrorClass) -> &'static str {
    match class {
        ErrorClass::RateLimited | ErrorClass::QuotaExhausted => "rate_limit_exceeded",
        _ => "server_error",
    }
}

impl Grammar for StreamWriter {
    fn render(&mut self, ev: Event) -> (String, bool) {
        match ev {
            Event::Chunk(c) => (self.chunk(&c), false),
            Event::Continued { to, after, .. } => {
                (format!(": continued on {to} after {}\n\n", after.as_str()), false)
            }
            Event::Failed { provider, error } => {
                let message = format!("upstream stream from {provider} broke: {}", error.message);
                let code = failed_code(error.class);
                (self.fail("upstream_stream_broken", &message, code), true)
            }
            Event::ShuttingDown => {
                let message = "the gateway is shutting down; retry the request";
                (self.fail("shutting_down", message, "server_error"), true)
            }
            Event::Done => (self.complete(), true),
        }
    }

    fn unterminated(&mut self) -> String {
        let message = "the answer ended without a final event";
        self.fail("upstream_stream_broken", message, "server_error")
    }
}

#[cfg(test)]
mod param_tests {
    use super::responses_param;

    #[test]
    fn chat_fields_are_named_as_the_responses_client_sent_them() {
        assert_eq!(responses_param("messages"), "input");
        assert_eq!(responses_param("messages[1].content[0]"), "input");
        assert_eq!(responses_param("max_tokens"), "max_output_tokens");
        assert_eq!(
            responses_param("response_format.json_schema.schema"),
            "text.format.json_schema.schema"
        );
        assert_eq!(responses_param("temperature"), "temperature");
    }
}
