//! The tool and output options of a Responses request: `tools` (flat function tools; hosted types accepted, never
//! called), `tool_choice` and `text.format`, each checked field by field.

use super::request::{bad, present, wrong};
use crate::chat::{ToolChoice, ToolDef};
use crate::providers::openai_errors::Problem;
use crate::structured::{schema_format, OutputFormat};
use serde_json::{json, Map, Value};

/// Tool types OpenAI hosts; the fake accepts them and never calls them.
const HOSTED: &[&str] = &[
    "web_search",
    "web_search_preview",
    "file_search",
    "code_interpreter",
    "computer_use_preview",
    "computer",
    "mcp",
    "image_generation",
    "local_shell",
    "shell",
    "custom",
    "apply_patch",
    "tool_search",
];

pub(super) fn tools(body: &Map<String, Value>) -> Result<Vec<ToolDef>, Problem> {
    let items = match present(body, "tools") {
        None => return Ok(Vec::new()),
        Some(Value::Array(items)) => items,
        Some(v) => return Err(wrong("tools", "tools", "an array", v)),
    };
    let mut out = Vec::new();
    for (i, t) in items.iter().enumerate() {
        let at = format!("tools[{i}]");
        let Value::Object(o) = t else {
            return Err(wrong("tools", &at, "an object", t));
        };
        match o.get("type") {
            Some(Value::String(k)) if k == "function" => {
                let name = match o.get("name") {
                    Some(Value::String(n)) if !n.is_empty() => n.clone(),
                    None | Some(Value::Null) => {
                        return Err(bad("tools", format!("Missing required parameter: '{at}.name'.")))
                    }
                    Some(v) => return Err(wrong("tools", &format!("{at}.name"), "a string", v)),
                };
                let parameters = match o.get("parameters") {
                    None | Some(Value::Null) => Value::Null,
                    Some(p @ Value::Object(_)) => p.clone(),
                    Some(v) => return Err(wrong("tools", &format!("{at}.parameters"), "an object", v)),
                };
                if let Some(v) = o.get("strict").filter(|v| !v.is_null() && !v.is_boolean()) {
                    return Err(wrong("tools", &format!("{at}.strict"), "a boolean", v));
                }
                out.push(ToolDef { name, parameters });
            }
            Some(Value::String(k)) if HOSTED.contains(&k.as_str()) => {}
            Some(Value::String(k)) => {
                return Err(bad(
                    "tools",
                    format!(
                        "Invalid value: '{k}'. Supported values are: 'function', {}. ({at}.type)",
                        HOSTED
                            .iter()
                            .map(|h| format!("'{h}'"))
                            .collect::<Vec<_>>()
                            .join(", ")
                    ),
                ))
            }
            None | Some(Value::Null) => {
                return Err(bad("tools", format!("Missing required parameter: '{at}.type'.")))
            }
            Some(v) => return Err(wrong("tools", &format!("{at}.type"), "a string", v)),
        }
    }
    Ok(out)
}

pub(super) fn tool_choice(body: &Map<String, Value>, tools: &[ToolDef]) -> Result<ToolChoice, Problem> {
    let p = "tool_choice";
    match present(body, p) {
        None => Ok(ToolChoice::Auto),
        Some(Value::String(s)) => match s.as_str() {
            "auto" => Ok(ToolChoice::Auto),
            "none" => Ok(ToolChoice::None),
            "required" => Ok(ToolChoice::Required),
            other => Err(bad(p, format!(
                "Invalid value: '{other}'. Supported values are: 'none', 'auto', and 'required'."
            ))),
        },
        Some(Value::Object(o)) => match o.get("type").and_then(Value::as_str) {
            Some("function") => {
                let name = match o.get("name") {
                    Some(Value::String(n)) => n,
                    None | Some(Value::Null) => {
                        return Err(bad(p, "Missing required parameter: 'tool_choice.name'."))
                    }
                    Some(v) => return Err(wrong(p, "tool_choice.name", "a string", v)),
                };
                if !tools.iter().any(|t| &t.name == name) {
                    return Err(bad(p, format!(
                        "Tool choice 'function' with name '{name}' not found in 'tools' parameter."
                    )));
                }
                Ok(ToolChoice::Named(name.clone()))
            }
            Some("allowed_tools") => match o.get("mode").and_then(Value::as_str) {
                Some("required") => Ok(ToolChoice::Required),
                Some("auto") => Ok(ToolChoice::Auto),
                _ => Err(bad(p, "Invalid value for 'tool_choice.mode': expected 'auto' or 'required'.")),
            },
            Some(k) if HOSTED.contains(&k) || k.ends_with("_preview") => Ok(ToolChoice::Auto),
            Some(k) => Err(bad(p, format!("Invalid value: '{k}'. Supported values are: 'function', 'allowed_tools' and hosted tool types. (tool_choice.type)"))),
            None => Err(bad(p, "Missing required parameter: 'tool_choice.type'.")),
        },
        Some(v) => Err(wrong(p, p, "a string or an object", v)),
    }
}

/// `text.format` as an output format, and the `text` the Response object echoes.
pub(super) fn text_format(body: &Map<String, Value>) -> Result<(OutputFormat, Value), Problem> {
    let p = "text";
    let t = match present(body, p) {
        None => {
            return Ok((
                OutputFormat::Text,
                json!({"format": {"type": "text"}, "verbosity": "medium"}),
            ))
        }
        Some(Value::Object(t)) => t,
        Some(v) => return Err(wrong(p, p, "an object", v)),
    };
    let mut echo = t.clone();
    echo.entry("verbosity").or_insert(json!("medium"));
    if let Some(v) = t.get("verbosity").filter(|v| !v.is_null() && !v.is_string()) {
        return Err(wrong(p, "text.verbosity", "a string", v));
    }
    let f = match t.get("format") {
        None | Some(Value::Null) => {
            echo.insert("format".into(), json!({"type": "text"}));
            return Ok((OutputFormat::Text, Value::Object(echo)));
        }
        Some(Value::Object(f)) => f,
        Some(v) => return Err(wrong(p, "text.format", "an object", v)),
    };
    let format = match f.get("type") {
        Some(Value::String(k)) => match k.as_str() {
            "text" => OutputFormat::Text,
            "json_object" => OutputFormat::JsonObject,
            "json_schema" => {
                if matches!(f.get("name"), None | Some(Value::Null)) {
                    return Err(bad(p, "Missing required parameter: 'text.format.name'."));
                }
                if matches!(f.get("schema"), None | Some(Value::Null)) {
                    return Err(bad(p, "Missing required parameter: 'text.format.schema'."));
                }
                schema_format(f, "text.format").map_err(|m| bad(p, m))?
            }
            other => {
                return Err(bad(p, format!(
                    "Invalid value: '{other}'. Supported values are: 'text', 'json_object', and 'json_schema'. (text.format.type)"
                )))
            }
        },
        None | Some(Value::Null) => return Err(bad(p, "Missing required parameter: 'text.format.type'.")),
        Some(v) => return Err(wrong(p, "text.format.type", "a string", v)),
    };
    Ok((format, Value::Object(echo)))
}
