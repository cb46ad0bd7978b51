//! Errors of the OpenAI-shaped APIs, each in its provider's own status, type, code and text
//! (PROVIDERS.md §1.5, §2, §3.1, §5).

use crate::chat::Invalid;
use crate::fault::{FaultKind, FaultSpec};
use crate::http::json;
use crate::provider::Provider;
use crate::state::State;
use crate::wire::ResponseTemplate;
use serde_json::{json, Value};

/// Which provider's flavour of the OpenAI API a route speaks.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Dialect {
    /// OpenAI itself.
    OpenAi,
    /// Moonshot: `{error:{type,message}}`, usage inside `choices[0]` when streaming, temperature in [0, 1].
    Kimi,
    /// DashScope compatible mode: OpenAI shape plus a top-level `request_id`.
    QwenCompat,
    /// Ollama's `/v1`: types `invalid_request_error`, `not_found_error`, `api_error`; no auth.
    OllamaV1,
}

impl Dialect {
    pub(crate) fn provider(self) -> Provider {
        match self {
            Dialect::OpenAi => Provider::OpenAi,
            Dialect::Kimi => Provider::Kimi,
            Dialect::QwenCompat => Provider::Qwen,
            Dialect::OllamaV1 => Provider::Ollama,
        }
    }
}

/// Something the client did wrong, or a fault the fake was told to inject.
#[derive(Debug, Clone)]
pub(crate) enum Problem {
    /// No credentials at all.
    NoKey,
    /// The body is not JSON (the parser's message).
    BadJson(String),
    /// A parameter is missing or invalid.
    Invalid(Invalid),
    /// The model is not in the catalogue.
    ModelNotFound(String),
    /// The prompt does not fit the model.
    ContextLength { limit: u32, got: u32 },
    /// No route for this method and path.
    UnknownUrl(String, String),
    /// An injected fault that answers with an error.
    Fault(FaultSpec),
}

/// The parts of an error before a dialect shapes the body.
struct Parts {
    status: u16,
    kind: &'static str,
    code: Option<&'static str>,
    param: Option<&'static str>,
    message: String,
}

fn parts(d: Dialect, p: &Problem) -> Parts {
    let e = |status, kind, code, message: String| Parts {
        status,
        kind,
        code,
        param: None,
        message,
    };
    match (d, p) {
        (Dialect::Kimi, Problem::NoKey) => e(401, "invalid_authentication_error", None, "Invalid Authentication".into()),
        (_, Problem::NoKey) => e(
            401,
            "invalid_request_error",
            if d == Dialect::QwenCompat { Some("invalid_api_key") } else { None },
            "You didn't provide an API key. You need to provide your API key in an Authorization header using Bearer auth (i.e. Authorization: Bearer YOUR_KEY).".into(),
        ),
        (Dialect::Kimi, Problem::BadJson(m)) => e(400, "invalid_request_error", None, format!("Invalid request: {m}")),
        (Dialect::QwenCompat, Problem::BadJson(m)) => e(400, "invalid_request_error", Some("invalid_parameter_error"), format!("Invalid JSON body: {m}")),
        (Dialect::OllamaV1, Problem::BadJson(m)) => e(400, "invalid_request_error", None, m.clone()),
        (_, Problem::BadJson(_)) => e(400, "invalid_request_error", None,
            "We could not parse the JSON body of your request. (HINT: This likely means you aren't using your HTTP library correctly. The OpenAI API expects a JSON payload, but what was sent was not valid JSON.)".into()),
        (_, Problem::Invalid(i)) => Parts {
            status: 400,
            kind: "invalid_request_error",
            code: if d == Dialect::QwenCompat { Some("invalid_parameter_error") } else { None },
            param: if d == Dialect::Kimi { None } else { i.param },
            message: if d == Dialect::Kimi && !i.message.starts_with("Invalid request") {
                format!("Invalid request: {}", i.message)
            } else {
                i.message.clone()
            },
        },
        (Dialect::Kimi, Problem::ModelNotFound(m)) => e(404, "resource_not_found_error", None, format!("Not found the model {m} or Permission denied")),
        (Dialect::QwenCompat, Problem::ModelNotFound(_)) => e(404, "invalid_request_error", Some("model_not_found"), "Model not exist.".into()),
        (Dialect::OllamaV1, Problem::ModelNotFound(m)) => e(404, "not_found_error", None, format!("model \"{m}\" not found, try pulling it first")),
        (_, Problem::ModelNotFound(m)) => e(404, "invalid_request_error", Some("model_not_found"),
            format!("The model `{m}` does not exist or you do not have access to it.")),
        (Dialect::Kimi, Problem::ContextLength { limit, .. }) => e(400, "invalid_request_error", None,
            format!("Invalid request: Your request exceeded model token limit: {limit}")),
        (Dialect::QwenCompat, Problem::ContextLength { limit, .. }) => e(400, "invalid_request_error", Some("invalid_parameter_error"),
            format!("Range of input length should be [1, {limit}]")),
        (Dialect::OllamaV1, Problem::ContextLength { .. }) => e(400, "invalid_request_error", None, "the input length exceeds the context length".into()),
        (_, Problem::ContextLength { limit, got }) => Parts {
            status: 400,
            kind: "invalid_request_error",
            code: Some("context_length_exceeded"),
            param: Some("messages"),
            message: format!("This model's maximum context length is {limit} tokens. However, your messages resulted in {got} tokens. Please reduce the length of the messages."),
        },
        (Dialect::Kimi, Problem::UnknownUrl(..)) => e(404, "resource_not_found_error", None, "Not found".into()),
        (_, Problem::UnknownUrl(m, p)) => e(404, "invalid_request_error", None, format!("Invalid URL ({m} {p})")),
        (_, Problem::Fault(f)) => fault_parts(d, f),
    }
}

fn fault_parts(d: Dialect, f: &FaultSpec) -> Parts {
    use Dialect::*;
    use FaultKind::*;
    let e = |status, kind, code, message: &str| Parts {
        status,
        kind,
        code,
        param: None,
        message: message.into(),
    };
    let wait = f.retry_after_s.unwrap_or(1);
    match (d, f.fault) {
        (OpenAi, RateLimited) => Parts { status: 429, kind: "requests", code: Some("rate_limit_exceeded"), param: None,
            message: format!("Rate limit reached for gpt-4o-mini in organization org-fake on requests per min (RPM): Limit 500, Used 500, Requested 1. Please try again in {wait}s. Visit https://platform.openai.com/account/rate-limits to learn more.") },
        (OpenAi, QuotaExhausted) => e(429, "insufficient_quota", Some("insufficient_quota"),
            "You exceeded your current quota, please check your plan and billing details. For more information on this error, read the docs: https://platform.openai.com/docs/guides/error-codes/api-errors."),
        (OpenAi, Overloaded) => e(503, "service_unavailable_error", Some("server_is_overloaded"),
            "That model is currently overloaded with other requests. You can retry your request, or contact us through our help center at help.openai.com if the error persists."),
        (OpenAi, Auth) => e(401, "invalid_request_error", Some("invalid_api_key"),
            "Incorrect API key provided: sk-***. You can find your API key at https://platform.openai.com/account/api-keys."),
        (Kimi, RateLimited) => Parts { status: 429, kind: "rate_limit_reached_error", code: None, param: None,
            message: format!("Your account org-fake<ak-fake> request reached max request: 3, please try again after {wait} seconds") },
        (Kimi, QuotaExhausted) => e(429, "exceeded_current_quota_error", None,
            "Your account is suspended due to insufficient balance, please recharge your account or check your plan and billing details"),
        (Kimi, Overloaded) => e(429, "engine_overloaded_error", None, "The engine is currently overloaded, please try again later"),
        (Kimi, ServerError) => e(500, "server_error", None, "Internal server error: invalid state transition"),
        (Kimi, Auth) => e(401, "invalid_authentication_error", None, "Invalid Authentication"),
        (Kimi, ContentFilter) => e(400, "content_filter", None, "The request was rejected because it was considered high risk"),
        (QwenCompat, RateLimited) => e(429, "limit_requests", Some("limit_requests"),
            "You have exceeded your current request limit. For details, see: https://help.aliyun.com/zh/model-studio/error-code#rate-limit"),
        (QwenCompat, QuotaExhausted) => e(400, "Arrearage", Some("Arrearage"),
            "Access denied, please make sure your account is in good standing. For details, see: https://help.aliyun.com/zh/model-studio/error-code#overdue-payment"),
        (QwenCompat, Overloaded) => e(503, "service_unavailable_error", Some("ServiceUnavailable"),
            "The service is temporarily overloaded, please try again later."),
        (QwenCompat, ServerError) => e(500, "internal_error", Some("internal_error"),
            "An internal error has occured, please try again later or contact service support."),
        (QwenCompat, Auth) => e(401, "invalid_request_error", Some("invalid_api_key"),
            "Incorrect API key provided. For details, see: https://help.aliyun.com/zh/model-studio/error-code#apikey-error"),
        (QwenCompat, ContentFilter) => e(400, "data_inspection_failed", Some("data_inspection_failed"),
            "Input data may contain inappropriate content. For details, see: https://help.aliyun.com/zh/model-studio/error-code#inappropriate-content"),
        (OllamaV1, RateLimited) => e(429, "api_error", None, "too many requests"),
        (OllamaV1, QuotaExhausted) => e(429, "api_error", None, "you have reached your usage limit, please upgrade or wait for the limit to reset"),
        (OllamaV1, Overloaded) => e(503, "api_error", None, "server busy, please try again.  maximum pending requests exceeded"),
        (OllamaV1, ServerError | StreamError) => e(500, "api_error", None, "llama runner process has terminated: exit status 2"),
        (OllamaV1, Auth) => e(401, "api_error", None, "unauthorized"),
        (_, ContextLength) => parts(d, &Problem::ContextLength { limit: 8192, got: 9216 }),
        (_, BadRequest) => {
            parts(d, &Problem::Invalid(Invalid::new(None, "Invalid request: the request could not be processed as sent.")))
        }
        // Whatever is left is a server error in that dialect (stream faults on plain requests too).
        (_, _) => e(500, "server_error", None, "The server had an error while processing your request. Sorry about that!"),
    }
}

/// Renders a problem as `d`'s HTTP error.
pub(crate) fn render(state: &State, d: Dialect, p: &Problem) -> ResponseTemplate {
    let parts = parts(d, p);
    let body = error_body(state, d, &parts);
    let mut t = super::openai_misc::common_headers(state, d, json(parts.status, &body));
    if let Problem::Fault(f) = p {
        if let (Some(s), RateLimited | Overloaded) = (f.retry_after_s, f.fault) {
            t = t.insert_header("retry-after", s.to_string());
            if d == Dialect::OpenAi {
                t = t.insert_header("retry-after-ms", (s * 1000).to_string());
            }
        }
    }
    t
}

use FaultKind::{Overloaded, RateLimited};

fn error_body(state: &State, d: Dialect, p: &Parts) -> Value {
    match d {
        Dialect::Kimi => json!({"error": {"type": p.kind, "message": p.message}}),
        Dialect::QwenCompat => json!({
            "error": {"message": p.message, "type": p.kind, "param": p.param, "code": p.code},
            "request_id": crate::content::uuid_like(&[&state.request_seed(p.message.as_bytes()).to_le_bytes()]),
        }),
        _ => json!({"error": {"message": p.message, "type": p.kind, "param": p.param, "code": p.code}}),
    }
}

/// The body of a mid-stream error event in `d` (the OpenAI SDK raises `APIError` on it).
pub(crate) fn stream_error_event(d: Dialect) -> Value {
    match d {
        Dialect::Kimi => {
            json!({"error": {"type": "server_error", "message": "stream interrupted: engine error"}})
        }
        _ => {
            json!({"error": {"message": "The server had an error while processing your request. Sorry about that!",
            "type": "server_error", "param": null, "code": null}})
        }
    }
}
