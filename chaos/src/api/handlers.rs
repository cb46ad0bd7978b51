//! One handler per route; each maps a collection call to Toxiproxy's status codes and content types.

use std::sync::Arc;

use axum::body::Bytes;
use axum::extract::{FromRequestParts, State};
use axum::http::request::Parts;
use axum::http::{header, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};

use super::{Shared, VERSION};
use crate::error::ApiError;

type S = State<Arc<Shared>>;

/// The proxy and toxic names of the path, percent-decoded leniently (invalid UTF-8 becomes U+FFFD), so an odd
/// name is simply not found, as in Toxiproxy, instead of a router error.
pub(super) struct Names {
    proxy: String,
    toxic: String,
}

impl<St: Send + Sync> FromRequestParts<St> for Names {
    type Rejection = std::convert::Infallible;

    async fn from_request_parts(parts: &mut Parts, _state: &St) -> Result<Self, Self::Rejection> {
        // Routes are /proxies/{proxy}[/toxics[/{toxic}]].
        let mut segments = parts.uri.path().split('/').skip(2).step_by(2).map(decode);
        let proxy = segments.next().unwrap_or_default();
        let toxic = segments.next().unwrap_or_default();
        Ok(Self { proxy, toxic })
    }
}

fn decode(segment: &str) -> String {
    let bytes = segment.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        let hex = |b: u8| char::from(b).to_digit(16);
        match (
            bytes[i],
            bytes.get(i + 1).and_then(|b| hex(*b)),
            bytes.get(i + 2).and_then(|b| hex(*b)),
        ) {
            (b'%', Some(hi), Some(lo)) => {
                out.push((hi * 16 + lo) as u8);
                i += 3;
            }
            (b, _, _) => {
                out.push(b);
                i += 1;
            }
        }
    }
    String::from_utf8_lossy(&out).into_owned()
}

/// A JSON success body with `Content-Type: application/json`.
fn json(status: StatusCode, body: String) -> Response {
    let mut response = (status, body).into_response();
    response
        .headers_mut()
        .insert(header::CONTENT_TYPE, HeaderValue::from_static("application/json"));
    response
}

fn ok(result: Result<String, ApiError>) -> Response {
    match result {
        Ok(body) => json(StatusCode::OK, body),
        Err(e) => e.into_response(),
    }
}

fn no_content(result: Result<(), ApiError>) -> Response {
    match result {
        Ok(()) => StatusCode::NO_CONTENT.into_response(),
        Err(e) => e.into_response(),
    }
}

pub(super) async fn reset(State(s): S) -> Response {
    no_content(s.collection.reset().await)
}

pub(super) async fn version() -> Response {
    let mut response = (StatusCode::OK, format!("{{\"version\": \"{VERSION}\"}}\n")).into_response();
    response.headers_mut().insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("application/json;charset=utf-8"),
    );
    response
}

pub(super) async fn populate(State(s): S, body: Bytes) -> Response {
    let (status, body) = s.collection.populate(&body).await;
    json(status, body)
}

pub(super) async fn list(State(s): S) -> Response {
    ok(s.collection.list().await)
}

pub(super) async fn create(State(s): S, body: Bytes) -> Response {
    match s.collection.create(&body).await {
        Ok(body) => json(StatusCode::CREATED, body),
        Err(e) => e.into_response(),
    }
}

pub(super) async fn show(State(s): S, n: Names) -> Response {
    ok(s.collection.get(&n.proxy).await)
}

pub(super) async fn update(State(s): S, n: Names, body: Bytes) -> Response {
    ok(s.collection.update(&n.proxy, &body).await)
}

pub(super) async fn delete(State(s): S, n: Names) -> Response {
    no_content(s.collection.delete(&n.proxy).await)
}

pub(super) async fn toxics(State(s): S, n: Names) -> Response {
    ok(s.collection.toxics(&n.proxy).await)
}

pub(super) async fn add_toxic(State(s): S, n: Names, body: Bytes) -> Response {
    ok(s.collection.add_toxic(&n.proxy, &body).await)
}

pub(super) async fn toxic(State(s): S, n: Names) -> Response {
    ok(s.collection.toxic(&n.proxy, &n.toxic).await)
}

pub(super) async fn update_toxic(State(s): S, n: Names, body: Bytes) -> Response {
    ok(s.collection.update_toxic(&n.proxy, &n.toxic, &body).await)
}

pub(super) async fn remove_toxic(State(s): S, n: Names) -> Response {
    no_content(s.collection.remove_toxic(&n.proxy, &n.toxic).await)
}

pub(super) async fn metrics(State(s): S) -> Response {
    let mut response = (StatusCode::OK, s.metrics.render(s.link_tasks.live())).into_response();
    response.headers_mut().insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("text/plain; version=0.0.4; charset=utf-8"),
    );
    response
}
