//! Moonshot Kimi: the OpenAI-compatible client plus Moonshot's request limits and error types.

use reqwest::header::HeaderMap;
use serde_json::Value;

use super::error::{class_from_status, retry_after_header, retry_after_in_text, ErrorClass, ProviderError};
use super::http;
use super::openai::error_fields;
use crate::canonical::ChatRequest;

/// Moonshot accepts temperature in [0, 1] and no `tool_choice: "required"`.
pub(crate) fn adjust(req: &mut ChatRequest) {
    if let Some(t) = req.temperature.as_mut() {
        *t = t.clamp(0.0, 1.0);
    }
    if req.tool_choice.as_ref().and_then(Value::as_str) == Some("required") {
        req.tool_choice = Some(Value::String("auto".to_string()));
    }
}

/// Moonshot: `{error:{type,message}}`; classify by `type` (a 429 may be overload or billing), then status.
pub fn classify(status: u16, headers: &HeaderMap, body: &str) -> ProviderError {
    let Some((message, kind, _)) = error_fields(body) else {
        return ProviderError::new(class_from_status(status), http::opaque_body_message(body))
            .with_retry_after(retry_after_header(headers));
    };
    let lower = message.to_ascii_lowercase();
    let class = match kind.as_deref() {
        Some("content_filter") => ErrorClass::ContentFilter,
        Some("invalid_request_error")
            if lower.contains("token length too long") || lower.contains("exceeded model token limit") =>
        {
            ErrorClass::ContextLength
        }
        Some("invalid_request_error") => ErrorClass::BadRequest,
        Some("invalid_authentication_error" | "incorrect_api_key_error" | "permission_denied_error") => {
            ErrorClass::Auth
        }
        Some("resource_not_found_error") => ErrorClass::NotFound,
        Some("exceeded_current_quota_error") => ErrorClass::QuotaExhausted,
        Some("engine_overloaded_error" | "server_error" | "unexpected_output" | "server_unavailable") => {
            ErrorClass::Overloaded
        }
        Some("rate_limit_reached_error") => ErrorClass::RateLimited,
        _ => class_from_status(status),
    };
    let retry = retry_after_header(headers).or_else(|| retry_after_in_text(&message));
    ProviderError::new(class, message)
        .with_code(kind)
        .with_retry_after(retry)
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Duration;

    fn c(status: u16, body: &str) -> ProviderError {
        classify(status, &HeaderMap::new(), body)
    }

    #[test]
    fn a_429_is_overload_quota_or_rate_limit_by_type() {
        let over = c(
            429,
            r#"{"error":{"type":"engine_overloaded_error","message":"The engine is currently overloaded, please try again later"}}"#,
        );
        assert_eq!(over.class, ErrorClass::Overloaded);
        let quota = c(
            429,
            r#"{"error":{"type":"exceeded_current_quota_error","message":"You exceeded your current token quota: 0, please check your account balance"}}"#,
        );
        assert_eq!(quota.class, ErrorClass::QuotaExhausted);
        let rl = c(
            429,
            r#"{"error":{"type":"rate_limit_reached_error","message":"Your account x<ak> request reached max concurrency: 1, please try again after 2 seconds"}}"#,
        );
        assert_eq!(rl.class, ErrorClass::RateLimited);
        assert_eq!(rl.retry_after, Some(Duration::from_secs(2)));
        assert_eq!(rl.code.as_deref(), Some("rate_limit_reached_error"));
    }

    #[test]
    fn other_types() {
        let cases = [
            (
                400,
                "content_filter",
                "The request was rejected because it was considered high risk",
                ErrorClass::ContentFilter,
            ),
            (
                400,
                "invalid_request_error",
                "Input token length too long",
                ErrorClass::ContextLength,
            ),
            (
                400,
                "invalid_request_error",
                "Invalid request: bad",
                ErrorClass::BadRequest,
            ),
            (
                401,
                "invalid_authentication_error",
                "Invalid Authentication",
                ErrorClass::Auth,
            ),
            (
                403,
                "exceeded_current_quota_error",
                "Your account is not active",
                ErrorClass::QuotaExhausted,
            ),
            (
                500,
                "server_error",
                "invalid state transition",
                ErrorClass::Overloaded,
            ),
        ];
        for (status, kind, msg, want) in cases {
            let body = format!(r#"{{"error":{{"type":"{kind}","message":"{msg}"}}}}"#);
            assert_eq!(c(status, &body).class, want, "{kind}");
        }
        assert_eq!(
            c(
                404,
                r#"{"code":5,"error":"url.not_found","message":"x","status":false}"#
            )
            .class,
            ErrorClass::NotFound
        );
    }

    #[test]
    fn adjust_clamps_temperature_and_tool_choice() {
        let mut req: ChatRequest = serde_json::from_str(
            r#"{"model":"m","messages":[{"role":"user","content":"hi"}],"temperature":1.7,"tool_choice":"required"}"#,
        )
        .unwrap();
        adjust(&mut req);
        assert_eq!(req.temperature, Some(1.0));
        assert_eq!(req.tool_choice, Some(Value::String("auto".into())));
    }
}
