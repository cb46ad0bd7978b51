//! Field readers shared by the agent surfaces' translations (Responses, Messages): each failure is a
//! [`Rejected`] naming the JSON path of the field.

use serde_json::{Map, Value};

/// Why an agent-surface request (Responses, Messages) cannot be served: a 400 naming the field.
#[derive(Debug, Clone, PartialEq)]
pub struct Rejected {
    /// `invalid_request` (a malformed field) or a stable code for what the gateway cannot honour
    /// (`previous_response_not_found`, `unsupported_parameter`, `unsupported_input_item`, `unsupported_content`,
    /// `unsupported_tool`).
    pub code: &'static str,
    /// What is wrong.
    pub message: String,
    /// JSON path of the field, e.g. `input[2].content[0].type`.
    pub param: String,
}

pub(crate) fn bad(param: impl Into<String>, message: impl Into<String>) -> Rejected {
    Rejected {
        code: "invalid_request",
        message: message.into(),
        param: param.into(),
    }
}

pub(crate) fn unsupported(
    code: &'static str,
    param: impl Into<String>,
    message: impl Into<String>,
) -> Rejected {
    Rejected {
        code,
        message: message.into(),
        param: param.into(),
    }
}

pub(crate) fn type_name(v: &Value) -> &'static str {
    match v {
        Value::Null => "null",
        Value::Bool(_) => "a boolean",
        Value::Number(_) => "a number",
        Value::String(_) => "a string",
        Value::Array(_) => "an array",
        Value::Object(_) => "an object",
    }
}

pub(crate) fn present<'a>(body: &'a Map<String, Value>, key: &str) -> Option<&'a Value> {
    body.get(key).filter(|v| !v.is_null())
}

pub(crate) fn opt_string(body: &Map<String, Value>, key: &str) -> Result<Option<String>, Rejected> {
    match present(body, key) {
        None => Ok(None),
        Some(Value::String(s)) => Ok(Some(s.clone())),
        Some(v) => Err(bad(
            key,
            format!("'{key}' must be a string, not {}", type_name(v)),
        )),
    }
}

pub(crate) fn opt_bool(body: &Map<String, Value>, key: &str) -> Result<Option<bool>, Rejected> {
    match present(body, key) {
        None => Ok(None),
        Some(Value::Bool(b)) => Ok(Some(*b)),
        Some(v) => Err(bad(
            key,
            format!("'{key}' must be a boolean, not {}", type_name(v)),
        )),
    }
}

pub(crate) fn opt_number(body: &Map<String, Value>, key: &str) -> Result<Option<f64>, Rejected> {
    match present(body, key) {
        None => Ok(None),
        Some(Value::Number(n)) => Ok(n.as_f64()),
        Some(v) => Err(bad(
            key,
            format!("'{key}' must be a number, not {}", type_name(v)),
        )),
    }
}

pub(crate) fn str_field<'a>(obj: &'a Map<String, Value>, key: &str, at: &str) -> Result<&'a str, Rejected> {
    match obj.get(key) {
        Some(Value::String(s)) => Ok(s),
        None | Some(Value::Null) => Err(bad(format!("{at}.{key}"), format!("'{at}.{key}' is required"))),
        Some(v) => Err(bad(
            format!("{at}.{key}"),
            format!("'{at}.{key}' must be a string, not {}", type_name(v)),
        )),
    }
}
