//! The API error type and its one mapping to HTTP: OpenAI-shaped bodies with stable `code`s.

use std::time::Duration;

use axum::http::{HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::Json;
use serde_json::json;

use crate::providers::{ErrorClass, ProviderError};
use crate::router::{AttemptRecord, PlanError, RouteError};

/// Everything a handler can fail with.
#[derive(Debug, thiserror::Error)]
pub enum ApiError {
    /// Body is not JSON.
    #[error("request body is not valid JSON: {0}")]
    InvalidJson(String),
    /// JSON with a wrong type or missing field.
    #[error("{message}")]
    InvalidRequest {
        /// What is wrong.
        message: String,
        /// JSON path of the field.
        param: Option<String>,
    },
    /// Chat without messages.
    #[error("'messages' is required and must be a non-empty array")]
    MissingMessages,
    /// Body over `server.body_limit_bytes`.
    #[error("request body exceeds the limit of {0} bytes (server.body_limit_bytes)")]
    BodyTooLarge(usize),
    /// Request line and headers over `server.max_header_bytes`.
    #[error("request headers exceed the limit of {0} bytes (server.max_header_bytes)")]
    HeadersTooLarge(usize),
    /// The body did not arrive within `server.body_read_timeout`.
    #[error("request body not received within {} s (server.body_read_timeout)", .0.as_secs_f64())]
    BodyTimeout(Duration),
    /// A connection of the health reserve (the listener is at `server.max_connections`) asked for an API route.
    #[error("the server is at its connection limit (server.max_connections); retry shortly")]
    ServerBusy,
    /// No route for the path.
    #[error("no route for {0}")]
    NotFound(String),
    /// The path exists, the method does not.
    #[error("method {method} is not allowed for {path}")]
    MethodNotAllowed {
        /// The method used.
        method: String,
        /// The path.
        path: String,
    },
    /// Model, provider or mode problem.
    #[error(transparent)]
    Plan(#[from] PlanError),
    /// Routing failed.
    #[error("routing failed")]
    Route(RouteError),
    /// Offline mode and the local tier could not answer.
    #[error("offline: no local answer")]
    OfflineMiss(Vec<AttemptRecord>),
    /// `/admin/*` without the configured token.
    #[error("admin routes need a valid 'Authorization: Bearer' token")]
    AdminUnauthorized,
    /// `/admin/*` from a non-loopback peer while no `server.admin_token` is configured.
    #[error("admin routes answer loopback clients only unless server.admin_token is configured")]
    AdminTokenRequired,
    /// Bad admin input.
    #[error("{0}")]
    BadAdminInput(String),
    /// `limits.clients` is configured and the request has no known key.
    #[error("missing or invalid API key: send 'Authorization: Bearer <key>'")]
    ClientUnauthorized,
    /// The client's key is over one of its limits.
    #[error("rate limit reached for this API key ({limit}); retry after {} s", retry_secs(*.retry_after))]
    ClientRateLimited {
        /// `requests_per_minute` or `tokens_per_minute`.
        limit: &'static str,
        /// When to retry.
        retry_after: Duration,
    },
}

/// Whole seconds for `Retry-After`, rounded up, at least 1.
fn retry_secs(d: Duration) -> u64 {
    (d.as_secs() + u64::from(d.subsec_nanos() > 0)).max(1)
}

fn body(status: StatusCode, kind: &str, code: &str, message: String, param: Option<String>) -> Response {
    let v = json!({"error": {"message": message, "type": kind, "param": param, "code": code}});
    (status, Json(v)).into_response()
}

fn rejected(provider: &str, e: &ProviderError, attempts: &[AttemptRecord]) -> Response {
    let (code, kind) = match e.class {
        ErrorClass::ContentFilter => ("content_filter", "invalid_request_error"),
        ErrorClass::ContextLength => ("context_length_exceeded", "invalid_request_error"),
        _ => ("provider_bad_request", "invalid_request_error"),
    };
    let v = json!({"error": {
        "message": format!("{provider} rejected the request: {}", e.message),
        "type": kind, "param": null, "code": code, "provider": provider, "attempts": attempts,
    }});
    (StatusCode::BAD_REQUEST, Json(v)).into_response()
}

fn all_failed(
    status: StatusCode,
    code: &str,
    message: &str,
    attempts: &[AttemptRecord],
    retry_after: Option<Duration>,
) -> Response {
    let v = json!({"error": {"message": message, "type": "upstream_error", "param": null, "code": code, "attempts": attempts}});
    let mut resp = (status, Json(v)).into_response();
    if let Some(d) = retry_after {
        if let Ok(h) = HeaderValue::from_str(&retry_secs(d).to_string()) {
            resp.headers_mut().insert("retry-after", h);
        }
    }
    resp
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        use StatusCode as S;
        let msg = self.to_string();
        match self {
            ApiError::InvalidJson(_) => {
                body(S::BAD_REQUEST, "invalid_request_error", "invalid_json", msg, None)
            }
            ApiError::InvalidRequest { param, .. } => body(
                S::BAD_REQUEST,
                "invalid_request_error",
                "invalid_request",
                msg,
                param,
            ),
            ApiError::MissingMessages => body(
                S::BAD_REQUEST,
                "invalid_request_error",
                "missing_messages",
                msg,
                Some("messages".into()),
            ),
            ApiError::BodyTooLarge(_) => body(
                S::PAYLOAD_TOO_LARGE,
                "invalid_request_error",
                "body_too_large",
                msg,
                None,
            ),
            ApiError::HeadersTooLarge(_) => body(
                S::REQUEST_HEADER_FIELDS_TOO_LARGE,
                "invalid_request_error",
                "headers_too_large",
                msg,
                None,
            ),
            ApiError::BodyTimeout(_) => {
                let mut r = body(
                    S::REQUEST_TIMEOUT,
                    "invalid_request_error",
                    "body_timeout",
                    msg,
                    None,
                );
                r.headers_mut()
                    .insert(axum::http::header::CONNECTION, HeaderValue::from_static("close"));
                r
            }
            ApiError::ServerBusy => {
                let mut r = body(S::SERVICE_UNAVAILABLE, "server_error", "server_busy", msg, None);
                r.headers_mut()
                    .insert("retry-after", HeaderValue::from_static("1"));
                r
            }
            ApiError::NotFound(_) => body(S::NOT_FOUND, "invalid_request_error", "not_found", msg, None),
            ApiError::MethodNotAllowed { .. } => body(
                S::METHOD_NOT_ALLOWED,
                "invalid_request_error",
                "method_not_allowed",
                msg,
                None,
            ),
            ApiError::Plan(PlanError::UnknownModel(_)) => body(
                S::NOT_FOUND,
                "invalid_request_error",
                "model_not_found",
                msg,
                Some("model".into()),
            ),
            ApiError::Plan(PlanError::UnknownProvider(_)) => body(
                S::BAD_REQUEST,
                "invalid_request_error",
                "unknown_provider",
                msg,
                None,
            ),
            ApiError::Plan(PlanError::NoCandidates { .. }) => body(
                S::SERVICE_UNAVAILABLE,
                "upstream_error",
                "no_provider_available",
                msg,
                None,
            ),
            ApiError::AdminUnauthorized => body(
                S::UNAUTHORIZED,
                "invalid_request_error",
                "admin_unauthorized",
                msg,
                None,
            ),
            ApiError::AdminTokenRequired => body(
                S::FORBIDDEN,
                "invalid_request_error",
                "admin_token_required",
                msg,
                None,
            ),
            ApiError::ClientUnauthorized => body(
                S::UNAUTHORIZED,
                "invalid_request_error",
                "invalid_api_key",
                msg,
                None,
            ),
            ApiError::ClientRateLimited { retry_after, .. } => {
                let mut r = body(S::TOO_MANY_REQUESTS, "requests", "rate_limit_exceeded", msg, None);
                if let Ok(h) = HeaderValue::from_str(&retry_secs(retry_after).to_string()) {
                    r.headers_mut().insert("retry-after", h);
                }
                r
            }
            ApiError::BadAdminInput(_) => body(
                S::BAD_REQUEST,
                "invalid_request_error",
                "invalid_request",
                msg,
                None,
            ),
            ApiError::OfflineMiss(attempts) => all_failed(
                S::SERVICE_UNAVAILABLE,
                "offline_miss",
                "offline mode: the local tier could not answer and no offline package matched",
                &attempts,
                None,
            ),
            ApiError::Route(RouteError::Rejected {
                provider,
                error,
                attempts,
            }) => rejected(&provider, &error, &attempts),
            ApiError::Route(RouteError::AllFailed {
                attempts,
                deadline,
                retry_after,
                all_context_length,
            }) => {
                if all_context_length {
                    all_failed(
                        S::BAD_REQUEST,
                        "context_length_exceeded",
                        "every provider said the context is too long",
                        &attempts,
                        None,
                    )
                } else if deadline {
                    all_failed(
                        S::GATEWAY_TIMEOUT,
                        "deadline_exceeded",
                        "the request deadline ran out before any provider answered",
                        &attempts,
                        None,
                    )
                } else if retry_after.is_some() {
                    all_failed(
                        S::TOO_MANY_REQUESTS,
                        "all_providers_rate_limited",
                        "every provider is rate-limited or out of quota",
                        &attempts,
                        retry_after,
                    )
                } else {
                    all_failed(
                        S::SERVICE_UNAVAILABLE,
                        "all_providers_failed",
                        "every provider failed; see attempts",
                        &attempts,
                        None,
                    )
                }
            }
        }
    }
}
