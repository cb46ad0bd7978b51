//! The output formats a request can ask for and how each provider spells them: OpenAI's nested
//! `response_format`, GigaChat's flat one, and the words of OpenAI's "Invalid type" messages.

use crate::chat::Invalid;
use serde_json::{json, Map, Value};

/// What a request asks the assistant's text to be.
#[derive(Debug, Clone, PartialEq)]
pub(crate) enum OutputFormat {
    /// Prose (the default).
    Text,
    /// Any JSON object (`json_object`, Ollama `format: "json"`).
    JsonObject,
    /// An instance of this schema.
    JsonSchema { name: String, schema: Value },
}

/// Reads an OpenAI-shaped `response_format`: nested `{type:"json_schema", json_schema:{name, schema, strict}}`,
/// GigaChat's flat `{type:"json_schema", schema, strict}`, `{type:"json_object"}`, `{type:"text"}`.
pub(crate) fn response_format(v: Option<&Value>) -> Result<OutputFormat, Invalid> {
    let p = Some("response_format");
    let o = match v {
        None | Some(Value::Null) => return Ok(OutputFormat::Text),
        Some(Value::Object(o)) => o,
        Some(other) => {
            return Err(Invalid::new(
                p,
                format!(
                    "Invalid type for 'response_format': expected an object, but got {} instead.",
                    type_name(other)
                ),
            ))
        }
    };
    match o.get("type").and_then(Value::as_str) {
        Some("text") => Ok(OutputFormat::Text),
        Some("json_object") => Ok(OutputFormat::JsonObject),
        Some("json_schema") => {
            let (holder, at) = match o.get("json_schema") {
                Some(Value::Object(js)) => (js, "response_format.json_schema"),
                Some(_) => {
                    return Err(Invalid::new(
                        p,
                        "Invalid type for 'response_format.json_schema': expected an object.",
                    ))
                }
                None if o.contains_key("schema") => (o, "response_format"),
                None => {
                    return Err(Invalid::new(
                        p,
                        "Missing required parameter: 'response_format.json_schema'.",
                    ))
                }
            };
            schema_format(holder, at).map_err(|m| Invalid::new(p, m))
        }
        Some(t) => Err(Invalid::new(
            p,
            format!("Invalid value: '{t}'. Supported values are: 'text', 'json_object', and 'json_schema'."),
        )),
        None => Err(Invalid::new(
            p,
            "Missing required parameter: 'response_format.type'.",
        )),
    }
}

/// `name` and `schema` of a json_schema format object (`at` names it in messages).
pub(crate) fn schema_format(o: &Map<String, Value>, at: &str) -> Result<OutputFormat, String> {
    let name = match o.get("name") {
        None | Some(Value::Null) => "response".to_string(),
        Some(Value::String(n)) => n.clone(),
        Some(v) => {
            return Err(format!(
                "Invalid type for '{at}.name': expected a string, but got {} instead.",
                type_name(v)
            ))
        }
    };
    let schema = match o.get("schema") {
        Some(s @ (Value::Object(_) | Value::Bool(true))) => s.clone(),
        None | Some(Value::Null) => json!({}),
        Some(v) => {
            return Err(format!(
                "Invalid type for '{at}.schema': expected an object, but got {} instead.",
                type_name(v)
            ))
        }
    };
    if let Some(v) = o.get("strict").filter(|v| !v.is_null() && !v.is_boolean()) {
        return Err(format!(
            "Invalid type for '{at}.strict': expected a boolean, but got {} instead.",
            type_name(v)
        ));
    }
    Ok(OutputFormat::JsonSchema { name, schema })
}

/// OpenAI's words for a JSON value's type in "Invalid type" messages.
pub(crate) fn type_name(v: &Value) -> &'static str {
    match v {
        Value::Null => "null",
        Value::Bool(_) => "a boolean",
        Value::Number(n) if n.is_i64() || n.is_u64() => "an integer",
        Value::Number(_) => "a decimal",
        Value::String(_) => "a string",
        Value::Array(_) => "an array",
        Value::Object(_) => "an object",
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn response_formats_parse_and_reject_bad_types() {
        let nested = json!({"type": "json_schema", "json_schema": {"name": "X", "schema": {"type": "object"}, "strict": true}});
        assert!(matches!(
            response_format(Some(&nested)),
            Ok(OutputFormat::JsonSchema { .. })
        ));
        let flat = json!({"type": "json_schema", "schema": {"type": "object"}});
        assert!(matches!(
            response_format(Some(&flat)),
            Ok(OutputFormat::JsonSchema { .. })
        ));
        assert_eq!(
            response_format(Some(&json!({"type": "json_object"}))).unwrap(),
            OutputFormat::JsonObject
        );
        assert_eq!(response_format(None).unwrap(), OutputFormat::Text);
        for bad in [
            json!(5),
            json!("json"),
            json!({"type": 1}),
            json!({"type": "yaml"}),
            json!({"type": "json_schema"}),
            json!({"type": "json_schema", "json_schema": {"name": 3, "schema": {}}}),
            json!({"type": "json_schema", "json_schema": {"name": "x", "schema": []}}),
            json!({"type": "json_schema", "json_schema": {"name": "x", "strict": "yes"}}),
            json!({"type": "json_schema", "json_schema": "x"}),
        ] {
            assert_eq!(
                response_format(Some(&bad)).unwrap_err().param,
                Some("response_format"),
                "{bad}"
            );
        }
    }
}
