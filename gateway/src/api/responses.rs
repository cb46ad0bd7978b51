//! `POST /v1/responses` (OpenAI Responses, plain and SSE): parse, translate to the canonical chat request
//! ([`crate::canonical::responses`]), call the answer pipeline, render the Responses object or event grammar.
//! Fallback, cache, limits, breakers and the offline tier are the pipeline's, exactly as on the chat route.

use std::convert::Infallible;
use std::sync::Arc;

use axum::body::Body;
use axum::extract::{Request, State};
use axum::http::{header, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::Json;
use bytes::Bytes;
use futures::StreamExt;
use serde_json::Value;

use super::{parse_body, split, ApiError, AppState};
use crate::canonical::responses::{self, Frame, Rejected, StreamWriter};
use crate::config::HostedTools;
use crate::metrics::{DroppedToolLabels, HostedTool, Route};
use crate::pipeline::{self, headers, Event, EventStream, Opts};

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
    let mut resp = if t.chat.stream {
        let streamed = pipeline::chat_stream(&state, t.chat, &opts).await?;
        let mut resp = sse(streamed.events, StreamWriter::new(frame));
        headers::apply(&state, &mut resp, &streamed.meta);
        resp
    } else {
        let answer = pipeline::chat(&state, &t.chat, &opts).await?;
        let mut resp = Json(responses::response_object(&frame, answer.response())).into_response();
        headers::apply(&state, &mut resp, &answer.meta());
        resp
    };
    if !t.dropped_tools.is_empty() {
        if let Ok(v) = HeaderValue::from_str(&t.dropped_tools.join(", ")) {
            resp.headers_mut().insert(DROPPED_TOOLS, v);
        }
    }
    Ok(resp)
}

/// The bytes of one pipeline event in the Responses grammar; `true` once the stream has its terminal event.
fn render(w: &mut StreamWriter, ev: Event) -> (String, bool) {
    match ev {
        Event::Chunk(c) => (w.chunk(&c), false),
        Event::Continued { to, after, .. } => {
            (format!(": continued on {to} after {}\n\n", after.as_str()), false)
        }
        Event::Failed { provider, error } => {
            let message = format!("upstream stream from {provider} broke: {}", error.message);
            (w.fail("upstream_stream_broken", &message), true)
        }
        Event::ShuttingDown => (
            w.fail("shutting_down", "the gateway is shutting down; retry the request"),
            true,
        ),
        Event::Done => (w.complete(), true),
    }
}

/// The streaming response: every event rendered; a stream that ends without a terminal event ends with
/// `response.failed`, so a client never takes a cut answer for a whole one.
fn sse(events: EventStream, writer: StreamWriter) -> Response {
    let body = futures::stream::unfold(Some((events, writer)), |st| async move {
        let (mut events, mut w) = st?;
        let (out, ended) = match events.next().await {
            Some(ev) => render(&mut w, ev),
            None => (
                w.fail("upstream_stream_broken", "the answer ended without a final event"),
                true,
            ),
        };
        let next = (!ended).then_some((events, w));
        Some((Ok::<Bytes, Infallible>(Bytes::from(out)), next))
    });
    let mut resp = Response::new(Body::from_stream(body));
    *resp.status_mut() = StatusCode::OK;
    let h = resp.headers_mut();
    h.insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("text/event-stream"),
    );
    h.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-cache"));
    h.insert("x-accel-buffering", HeaderValue::from_static("no"));
    resp
}
