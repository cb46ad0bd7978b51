//! The API error with Toxiproxy's status codes, fixed messages and body shape (one mapping for the whole API).

use axum::http::{header, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use serde::Serialize;

/// An error answered by the REST API: `{"error":"<msg>","status":<code>}` plus a newline, as Go's `http.Error`.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{message}")]
pub(crate) struct ApiError {
    pub(crate) status: StatusCode,
    pub(crate) message: String,
}

#[derive(Serialize)]
pub(crate) struct ErrorBody<'a> {
    pub(crate) error: &'a str,
    pub(crate) status: u16,
}

impl ApiError {
    fn new(status: StatusCode, message: impl Into<String>) -> Self {
        Self {
            status,
            message: message.into(),
        }
    }

    /// 400 `bad request body: <detail>`.
    pub(crate) fn bad_body(detail: impl std::fmt::Display) -> Self {
        Self::new(StatusCode::BAD_REQUEST, format!("bad request body: {detail}"))
    }

    /// 400 `missing required field: <what>`.
    pub(crate) fn missing_field(what: impl std::fmt::Display) -> Self {
        Self::new(StatusCode::BAD_REQUEST, format!("missing required field: {what}"))
    }

    /// 400 for a stream that is neither upstream nor downstream.
    pub(crate) fn invalid_stream() -> Self {
        Self::new(
            StatusCode::BAD_REQUEST,
            "stream was invalid, can be either upstream or downstream",
        )
    }

    /// 400 for an unknown toxic type.
    pub(crate) fn invalid_toxic_type() -> Self {
        Self::new(StatusCode::BAD_REQUEST, "invalid toxic type")
    }

    /// 404 `proxy not found`.
    pub(crate) fn proxy_not_found() -> Self {
        Self::new(StatusCode::NOT_FOUND, "proxy not found")
    }

    /// 404 `toxic not found`.
    pub(crate) fn toxic_not_found() -> Self {
        Self::new(StatusCode::NOT_FOUND, "toxic not found")
    }

    /// 409 `proxy already exists`.
    pub(crate) fn proxy_exists() -> Self {
        Self::new(StatusCode::CONFLICT, "proxy already exists")
    }

    /// 409 `toxic already exists`.
    pub(crate) fn toxic_exists() -> Self {
        Self::new(StatusCode::CONFLICT, "toxic already exists")
    }

    /// 500 for errors without a status of their own (bind failures, unresolvable addresses).
    pub(crate) fn internal(message: impl Into<String>) -> Self {
        Self::new(StatusCode::INTERNAL_SERVER_ERROR, message)
    }

    /// The JSON object without the trailing newline.
    pub(crate) fn json(&self) -> String {
        let body = ErrorBody {
            error: &self.message,
            status: self.status.as_u16(),
        };
        serde_json::to_string(&body).unwrap_or_default()
    }
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        plain_error(self.status, &self.json())
    }
}

/// Go's `http.Error`: plain text, `nosniff`, the message and a newline.
pub(crate) fn plain_error(status: StatusCode, message: &str) -> Response {
    let mut response = (status, format!("{message}\n")).into_response();
    let headers = response.headers_mut();
    headers.insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("text/plain; charset=utf-8"),
    );
    headers.insert(
        header::X_CONTENT_TYPE_OPTIONS,
        HeaderValue::from_static("nosniff"),
    );
    response
}
