//! One handler per route; each maps a collection call to Toxiproxy's status codes and content types.

use std::sync::Arc;

use axum::body::Bytes;
use axum::extract::{Path, State};
use axum::http::{header, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};

use super::{Shared, VERSION};
use crate::error::ApiError;

type S = State<Arc<Shared>>;

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

pub(super) async fn show(State(s): S, Path(proxy): Path<String>) -> Response {
    ok(s.collection.get(&proxy).await)
}

pub(super) async fn update(State(s): S, Path(proxy): Path<String>, body: Bytes) -> Response {
    ok(s.collection.update(&proxy, &body).await)
}

pub(super) async fn delete(State(s): S, Path(proxy): Path<String>) -> Response {
    no_content(s.collection.delete(&proxy).await)
}

pub(super) async fn toxics(State(s): S, Path(proxy): Path<String>) -> Response {
    ok(s.collection.toxics(&proxy).await)
}

pub(super) async fn add_toxic(State(s): S, Path(proxy): Path<String>, body: Bytes) -> Response {
    ok(s.collection.add_toxic(&proxy, &body).await)
}

pub(super) async fn toxic(State(s): S, Path((proxy, toxic)): Path<(String, String)>) -> Response {
    ok(s.collection.toxic(&proxy, &toxic).await)
}

pub(super) async fn update_toxic(
    State(s): S,
    Path((proxy, toxic)): Path<(String, String)>,
    body: Bytes,
) -> Response {
    ok(s.collection.update_toxic(&proxy, &toxic, &body).await)
}

pub(super) async fn remove_toxic(State(s): S, Path((proxy, toxic)): Path<(String, String)>) -> Response {
    no_content(s.collection.remove_toxic(&proxy, &toxic).await)
}

pub(super) async fn metrics(State(s): S) -> Response {
    let mut response = (StatusCode::OK, s.metrics.render(s.link_tasks.live())).into_response();
    response.headers_mut().insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("text/plain; version=0.0.4; charset=utf-8"),
    );
    response
}
