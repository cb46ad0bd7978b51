//! The API error type and its one mapping to HTTP: OpenAI-shaped bodies with stable `code`s.

use std::time::Duration;

use axum::http::{HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::Json;
use serde_json::json;

use crate::canonical::validate::{Invalid, InvalidKind};
use crate::metrics::Outcome;
use crate::providers::{ErrorClass, ProviderError};
use crate::router::{uniform_class, AttemptRecord, Need, PlanError, RouteError};

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
    /// A parameter or content part the gateway cannot honour (`unsupported_parameter`, `unsupported_content`).
    #[error("{message}")]
    Unsupported {
        /// `unsupported_parameter` or `unsupported_content`.
        code: &'static str,
        /// What is wrong.
        message: String,
        /// JSON path of the field.
        param: String,
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

impl ApiError {
    /// The same error with the field it names (`param`) renamed by `f`: a surface that translated the request
    /// names the field as its client sent it, not the chat field it became.
    pub(crate) fn map_param(self, f: impl Fn(&str) -> String) -> ApiError {
        match self {
            ApiError::InvalidRequest {
                message,
                param: Some(p),
            } => ApiError::InvalidRequest {
                message,
                param: Some(f(&p)),
            },
            ApiError::Unsupported { code, message, param } => ApiError::Unsupported {
                code,
                message,
                param: f(&param),
            },
            other => other,
        }
    }
}

impl From<Invalid> for ApiError {
    fn from(e: Invalid) -> ApiError {
        match e.kind {
            InvalidKind::Request => ApiError::InvalidRequest {
                message: e.message,
                param: Some(e.param),
            },
            InvalidKind::Parameter => ApiError::Unsupported {
                code: "unsupported_parameter",
                message: e.message,
                param: e.param,
            },
            InvalidKind::Content => ApiError::Unsupported {
                code: "unsupported_content",
                message: e.message,
                param: e.param,
            },
        }
    }
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
    let (status, code, param, message) = match e.class {
        ErrorClass::ContentFilter => (
            StatusCode::BAD_REQUEST,
            "content_filter",
            None,
            "refused the content",
        ),
        ErrorClass::ContextLength => (
            StatusCode::BAD_REQUEST,
            "context_length_exceeded",
            None,
            "said the context is too long",
        ),
        ErrorClass::NotFound => (
            StatusCode::NOT_FOUND,
            "model_not_found",
            Some("model"),
            "has no such model",
        ),
        _ => (
            StatusCode::BAD_REQUEST,
            "provider_bad_request",
            None,
            "rejected the request",
        ),
    };
    let v = json!({"error": {
        "message": format!("{provider} {message}: {}", e.message),
        "type": "invalid_request_error", "param": param, "code": code, "provider": provider, "attempts": attempts,
    }});
    (status, Json(v)).into_response()
}

/// No candidate can serve the request faithfully: the client's 400, with the reason and every candidate.
fn unservable(reason: &str, need: Need, attempts: &[AttemptRecord]) -> Response {
    let (code, param, what) = match need {
        Need::Images => ("unsupported_content", reason_path(reason), "images"),
        Need::Tools => (
            "unsupported_parameter",
            Some("tools".to_string()),
            "function tools",
        ),
        Need::Structured => (
            "unsupported_parameter",
            Some("response_format".to_string()),
            "this response_format",
        ),
        Need::Context => (
            "context_length_exceeded",
            Some("messages".to_string()),
            "a prompt this long",
        ),
        Need::Input => ("unsupported_content", Some("input".to_string()), "this input"),
        Need::Space => (
            "unsupported_content",
            Some("model".to_string()),
            "this vector space",
        ),
    };
    let message = format!("no provider model for this request takes {what}: {reason}");
    let v = json!({"error": {"message": message, "type": "invalid_request_error", "param": param, "code": code,
        "attempts": attempts}});
    (StatusCode::BAD_REQUEST, Json(v)).into_response()
}

/// The JSON path in a refusal such as `model takes no images (messages[1].content[0])`.
fn reason_path(reason: &str) -> Option<String> {
    let start = reason.rfind('(')?;
    reason[start + 1..].strip_suffix(')').map(str::to_string)
}

fn all_failed(
    status: StatusCode,
    code: &str,
    message: &str,
    attempts: &serde_json::Value,
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

/// The attempts as the error body lists them; when the deadline ran out, an entry saying so closes the list.
fn attempts_json(attempts: &[AttemptRecord], deadline: bool) -> serde_json::Value {
    let mut list: Vec<serde_json::Value> = attempts
        .iter()
        .filter_map(|a| serde_json::to_value(a).ok())
        .collect();
    if deadline {
        list.push(
            json!({"provider": "", "error": "deadline", "message": "the request deadline was reached"}),
        );
    }
    serde_json::Value::Array(list)
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
            ApiError::Unsupported { code, param, .. } => {
                body(S::BAD_REQUEST, "invalid_request_error", code, msg, Some(param))
            }
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
                &attempts_json(&attempts, false),
                None,
            ),
            ApiError::Route(RouteError::Rejected {
                provider,
                error,
                attempts,
            }) => rejected(&provider, &error, &attempts),
            ApiError::Route(RouteError::Unservable {
                reason,
                need,
                attempts,
            }) => unservable(&reason, need, &attempts),
            ApiError::Route(RouteError::AllFailed {
                attempts: tried,
                deadline,
                retry_after,
            }) => {
                let uniform = uniform_class(&tried);
                let all_auth = !tried.is_empty() && tried.iter().all(AttemptRecord::is_auth);
                let attempts = attempts_json(&tried, deadline);
                if uniform == Some(Outcome::ContextLength) {
                    all_failed(
                        S::BAD_REQUEST,
                        "context_length_exceeded",
                        "every provider said the context is too long",
                        &attempts,
                        None,
                    )
                } else if uniform == Some(Outcome::NotFound) {
                    all_failed(
                        S::NOT_FOUND,
                        "model_not_found",
                        "no provider knows this model",
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
                } else if all_auth {
                    all_failed(
                        S::SERVICE_UNAVAILABLE,
                        "all_providers_unauthorized",
                        "every provider rejected the gateway's credentials (or cools down after doing so): \
                         check the providers' secrets",
                        &attempts,
                        None,
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
