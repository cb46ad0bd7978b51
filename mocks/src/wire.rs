//! The request and response types every fake route works with, and how a response goes on the wire:
//! plain bodies in one piece, streams (SSE, NDJSON) event by event with chunked encoding, optional pacing
//! between events, and connections cut before or in the middle of a response.

use bytes::Bytes;
use http::{HeaderMap, HeaderName, HeaderValue, Method};
use std::time::Duration;

/// The path and query of a request.
#[derive(Debug, Clone)]
pub struct Url {
    path: String,
    query: Option<String>,
}

impl Url {
    /// From a request URI.
    pub fn new(uri: &http::Uri) -> Url {
        Url {
            path: uri.path().to_string(),
            query: uri.query().map(str::to_string),
        }
    }

    /// The path, e.g. `/v1/chat/completions`.
    pub fn path(&self) -> &str {
        &self.path
    }

    /// The query string, if any.
    pub fn query(&self) -> Option<&str> {
        self.query.as_deref()
    }
}

/// A request as the fakes see it: the whole body read.
#[derive(Debug, Clone)]
pub struct Request {
    /// HTTP method.
    pub method: Method,
    /// Path and query.
    pub url: Url,
    /// Headers.
    pub headers: HeaderMap,
    /// The body.
    pub body: Vec<u8>,
}

/// How the connection ends.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Cut {
    /// Normally.
    None,
    /// Closed before any response byte.
    BeforeResponse,
    /// Closed after this many stream events (or, for a plain body, after the head).
    AfterEvents(usize),
}

/// A response to send: status, headers, body, and how it is paced and ended.
#[derive(Debug, Clone)]
pub struct ResponseTemplate {
    pub(crate) status: u16,
    pub(crate) headers: HeaderMap,
    pub(crate) body: Vec<u8>,
    pub(crate) delay: Option<Duration>,
    pub(crate) event_delay: Option<Duration>,
    pub(crate) cut: Cut,
}

impl ResponseTemplate {
    /// An empty response with this status.
    pub fn new(status: u16) -> ResponseTemplate {
        ResponseTemplate {
            status,
            headers: HeaderMap::new(),
            body: Vec::new(),
            delay: None,
            event_delay: None,
            cut: Cut::None,
        }
    }

    /// Sets the body and its content type.
    pub fn set_body_raw(mut self, body: impl Into<Vec<u8>>, mime: &str) -> ResponseTemplate {
        self.body = body.into();
        if let Ok(v) = HeaderValue::from_str(mime) {
            self.headers.insert(http::header::CONTENT_TYPE, v);
        }
        self
    }

    /// Sets a header (values that are not valid header text are skipped).
    pub fn insert_header(mut self, name: &str, value: impl AsRef<str>) -> ResponseTemplate {
        if let (Ok(k), Ok(v)) = (
            HeaderName::from_bytes(name.as_bytes()),
            HeaderValue::from_str(value.as_ref()),
        ) {
            self.headers.insert(k, v);
        }
        self
    }

    /// Waits this long before sending anything.
    pub fn set_delay(mut self, d: Duration) -> ResponseTemplate {
        self.delay = Some(self.delay.unwrap_or_default() + d);
        self
    }

    /// The status code.
    pub fn status(&self) -> u16 {
        self.status
    }

    /// Whether the body is a stream of events (SSE or NDJSON).
    pub(crate) fn is_stream(&self) -> bool {
        self.headers
            .get(http::header::CONTENT_TYPE)
            .and_then(|v| v.to_str().ok())
            .is_some_and(|m| m.starts_with("text/event-stream") || m.starts_with("application/x-ndjson"))
    }

    /// The body split into events, each with its terminator (SSE: blank line; NDJSON: newline).
    pub(crate) fn events(&self) -> Vec<Bytes> {
        let sse = self
            .headers
            .get(http::header::CONTENT_TYPE)
            .and_then(|v| v.to_str().ok())
            .is_some_and(|m| m.starts_with("text/event-stream"));
        let sep: &[u8] = if sse { b"\n\n" } else { b"\n" };
        let mut out = Vec::new();
        let mut start = 0;
        let b = &self.body;
        let mut i = 0;
        while i + sep.len() <= b.len() {
            if &b[i..i + sep.len()] == sep {
                out.push(Bytes::copy_from_slice(&b[start..i + sep.len()]));
                i += sep.len();
                start = i;
            } else {
                i += 1;
            }
        }
        if start < b.len() {
            out.push(Bytes::copy_from_slice(&b[start..]));
        }
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sse_and_ndjson_split_into_events() {
        let t = ResponseTemplate::new(200)
            .set_body_raw("data: a\n\ndata: b\n\ndata: [DONE]\n\n", "text/event-stream");
        assert!(t.is_stream());
        assert_eq!(t.events(), vec!["data: a\n\n", "data: b\n\n", "data: [DONE]\n\n"]);
        let t =
            ResponseTemplate::new(200).set_body_raw("{\"a\":1}\n{\"b\":2}\n{\"c\"", "application/x-ndjson");
        assert_eq!(t.events(), vec!["{\"a\":1}\n", "{\"b\":2}\n", "{\"c\""]);
        let t = ResponseTemplate::new(200).set_body_raw("{}", "application/json");
        assert!(!t.is_stream());
    }

    #[test]
    fn bad_header_values_are_skipped() {
        let t = ResponseTemplate::new(200)
            .insert_header("x-ok", "1")
            .insert_header("x-bad", "a\nb");
        assert_eq!(t.headers.len(), 1);
    }
}
