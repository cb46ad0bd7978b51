//! Small helpers to read requests and build responses in the formats the providers use.

use crate::wire::{Request, ResponseTemplate};
use serde_json::Value;
use std::time::Duration;

/// A JSON response with the given status.
pub(crate) fn json(status: u16, body: &Value) -> ResponseTemplate {
    ResponseTemplate::new(status).set_body_raw(body.to_string().into_bytes(), "application/json")
}

/// A raw body with a content type.
pub(crate) fn raw(status: u16, body: impl Into<Vec<u8>>, mime: &str) -> ResponseTemplate {
    ResponseTemplate::new(status).set_body_raw(body.into(), mime)
}

/// A server-sent-events response.
pub(crate) fn sse(body: String) -> ResponseTemplate {
    raw(200, body, "text/event-stream")
        .insert_header("cache-control", "no-cache")
        .insert_header("x-accel-buffering", "no")
}

/// One SSE `data:` event with a space after the colon, as OpenAI writes them.
pub(crate) fn sse_data(out: &mut String, data: &str) {
    out.push_str("data: ");
    out.push_str(data);
    out.push_str("\n\n");
}

/// The bearer token of a request, if it has a non-empty one.
pub(crate) fn bearer(req: &Request) -> Option<String> {
    let v = req.headers.get("authorization")?.to_str().ok()?.trim();
    let (scheme, token) = v.split_once(' ')?;
    let token = token.trim();
    (scheme.eq_ignore_ascii_case("bearer") && !token.is_empty()).then(|| token.to_string())
}

/// A header value as text.
pub(crate) fn header<'a>(req: &'a Request, name: &str) -> Option<&'a str> {
    req.headers.get(name).and_then(|v| v.to_str().ok())
}

/// Why a request body could not be used.
#[derive(Debug)]
pub(crate) enum BodyError {
    /// Not JSON at all (the parser's message).
    Syntax(String),
    /// JSON, but not an object.
    NotObject,
}

/// The request body as a JSON object.
pub(crate) fn body_object(req: &Request) -> Result<serde_json::Map<String, Value>, BodyError> {
    match serde_json::from_slice::<Value>(&req.body) {
        Ok(Value::Object(m)) => Ok(m),
        Ok(_) => Err(BodyError::NotObject),
        Err(e) => Err(BodyError::Syntax(e.to_string())),
    }
}

/// Adds a delay in ms to a response (0 leaves it alone).
pub(crate) fn delayed(t: ResponseTemplate, ms: u64) -> ResponseTemplate {
    if ms == 0 {
        t
    } else {
        t.set_delay(Duration::from_millis(ms))
    }
}
