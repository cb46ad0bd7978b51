//! The chat completions SSE grammar of a streamed answer: each chunk as `data: {json}`; a clean end as
//! `data: [DONE]`; a broken upstream as an explicit `event: error` and close, never `[DONE]`; a continuation on
//! another provider (`stream_failure: continue`) as an SSE comment; a stream still open at the end of the
//! server's `shutdown_grace` as `event: error` with code `shutting_down`.

use std::convert::Infallible;

use axum::body::Body;
use axum::http::{header, HeaderValue, StatusCode};
use axum::response::Response;
use bytes::Bytes;
use futures::StreamExt;
use serde_json::json;

use crate::canonical::ChatChunk;
use crate::pipeline::{Event, EventStream};
use crate::providers::ProviderError;

/// Frames one chunk; `None` when it carries nothing the client asked for (the usage chunk without
/// `stream_options.include_usage`).
fn frame(mut chunk: ChatChunk, include_usage: bool) -> Option<Bytes> {
    if !include_usage {
        if chunk.choices.is_empty() {
            return None;
        }
        chunk.usage = None;
    }
    let json = serde_json::to_string(&chunk).ok()?;
    Some(Bytes::from(format!("data: {json}\n\n")))
}

/// The explicit error event that ends a broken stream.
pub(crate) fn error_event(provider: &str, e: &ProviderError) -> Bytes {
    let v = json!({"error": {
        "message": format!("upstream stream from {provider} broke: {}", e.message),
        "type": "upstream_error",
        "param": null,
        "code": "stream_interrupted",
        "provider": provider,
        "class": e.class.as_str(),
    }});
    Bytes::from(format!("event: error\ndata: {v}\n\n"))
}

/// Renders one event; `None` for what this client does not see.
fn render(ev: Event, include_usage: bool) -> Option<Bytes> {
    match ev {
        Event::Chunk(c) => frame(c, include_usage),
        Event::Continued { to, after, .. } => Some(Bytes::from(format!(
            ": continued on {to} after {}\n\n",
            after.as_str()
        ))),
        Event::Failed { provider, error } => Some(error_event(&provider, &error)),
        Event::ShuttingDown => Some(shutting_down_event()),
        Event::Done => Some(Bytes::from_static(b"data: [DONE]\n\n")),
    }
}

/// The event that ends a stream still open when the server's `shutdown_grace` is over.
pub(crate) fn shutting_down_event() -> Bytes {
    let v = json!({"error": {
        "message": "the gateway is shutting down; retry the request",
        "type": "server_error",
        "param": null,
        "code": "shutting_down",
    }});
    Bytes::from(format!("event: error\ndata: {v}\n\n"))
}

/// The streaming response for the events of an answer.
pub(crate) fn response(events: EventStream, include_usage: bool) -> Response {
    let body =
        events.filter_map(move |ev| async move { render(ev, include_usage).map(Ok::<Bytes, Infallible>) });
    event_stream(Body::from_stream(body))
}

/// An agent surface's event grammar (Responses, Messages): the bytes of each pipeline event.
pub(crate) trait Grammar: Send + 'static {
    /// The bytes of one event; `true` once the stream has its terminal event.
    fn render(&mut self, ev: Event) -> (String, bool);
    /// The terminal failure of a stream that ended without a terminal event, so a client never takes a cut
    /// answer for a whole one.
    fn unterminated(&mut self) -> String;
}

/// The streaming response of an agent surface: every event rendered by `grammar`, up to its terminal one.
pub(crate) fn grammar_response<G: Grammar>(events: EventStream, grammar: G) -> Response {
    let body = futures::stream::unfold(Some((events, grammar)), |st| async move {
        let (mut events, mut g) = st?;
        let (out, ended) = match events.next().await {
            Some(ev) => g.render(ev),
            None => (g.unterminated(), true),
        };
        let next = (!ended).then_some((events, g));
        Some((Ok::<Bytes, Infallible>(Bytes::from(out)), next))
    });
    event_stream(Body::from_stream(body))
}

/// A 200 `text/event-stream` response, unbuffered by proxies.
fn event_stream(body: Body) -> Response {
    let mut resp = Response::new(body);
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
