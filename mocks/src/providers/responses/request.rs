//! Reading a `POST /v1/responses` body into the neutral [`ChatRequest`] the chat routes answer, and the fields the
//! Response object echoes. Every field of the wrong type is OpenAI's 400 naming it (AGENT_APIS.md 1.1, 1.2).

use super::options::{text_format, tool_choice, tools};
use crate::chat::{content_text, ChatRequest, Invalid, Message};
use crate::providers::openai_errors::{Dialect, Problem};
use crate::structured::type_name;
use serde_json::{json, Map, Value};

/// A parsed Responses request.
pub(crate) struct Parsed {
    pub(crate) chat: ChatRequest,
    /// Request fields the Response object carries back (`instructions`, `tools`, `text`, ...).
    pub(crate) echo: Map<String, Value>,
}

pub(super) fn bad(param: &'static str, msg: impl Into<String>) -> Problem {
    Problem::Invalid(Invalid::new(Some(param), msg))
}

pub(super) fn wrong(param: &'static str, at: &str, expected: &str, got: &Value) -> Problem {
    bad(
        param,
        format!(
            "Invalid type for '{at}': expected {expected}, but got {} instead.",
            type_name(got)
        ),
    )
}

pub(super) fn present<'a>(body: &'a Map<String, Value>, k: &str) -> Option<&'a Value> {
    body.get(k).filter(|v| !v.is_null())
}

fn opt_bool(body: &Map<String, Value>, k: &'static str) -> Result<Option<bool>, Problem> {
    match present(body, k) {
        None => Ok(None),
        Some(Value::Bool(b)) => Ok(Some(*b)),
        Some(v) => Err(wrong(k, k, "a boolean", v)),
    }
}

fn opt_num(body: &Map<String, Value>, k: &'static str, max: f64) -> Result<Option<f64>, Problem> {
    match present(body, k) {
        None => Ok(None),
        Some(Value::Number(n)) => {
            let f = n.as_f64().unwrap_or(0.0);
            if !(0.0..=max).contains(&f) {
                return Err(bad(
                    k,
                    format!("Invalid '{k}': expected a value between 0 and {max}, but got {f} instead."),
                ));
            }
            Ok(Some(f))
        }
        Some(v) => Err(wrong(k, k, "a decimal", v)),
    }
}

fn str_of<'a>(o: &'a Map<String, Value>, k: &str, at: &str) -> Result<&'a str, Problem> {
    match o.get(k) {
        Some(Value::String(s)) => Ok(s),
        None | Some(Value::Null) => Err(bad("input", format!("Missing required parameter: '{at}.{k}'."))),
        Some(v) => Err(wrong("input", &format!("{at}.{k}"), "a string", v)),
    }
}

/// Reads the body; `d` is OpenAI or Ollama's `/v1`.
pub(crate) fn parse(d: Dialect, body: &Map<String, Value>) -> Result<Parsed, Problem> {
    let model = match body.get("model") {
        Some(Value::String(s)) if !s.is_empty() => s.clone(),
        None | Some(Value::Null) | Some(Value::String(_)) => {
            return Err(bad("model", "Missing required parameter: 'model'."))
        }
        Some(v) => return Err(wrong("model", "model", "a string", v)),
    };
    if let Some(v) = present(body, "previous_response_id") {
        return Err(match v {
            Value::String(id) => Problem::Invalid(Invalid::new(
                Some("previous_response_id"),
                format!("Previous response with id '{id}' not found."),
            )),
            v => wrong("previous_response_id", "previous_response_id", "a string", v),
        });
    }
    let mut messages = Vec::new();
    let instructions = match present(body, "instructions") {
        None => Value::Null,
        Some(Value::String(s)) => {
            messages.push(Message {
                role: "system".into(),
                text: s.clone(),
            });
            json!(s)
        }
        Some(v) => return Err(wrong("instructions", "instructions", "a string", v)),
    };
    match present(body, "input") {
        None => return Err(bad("input", "Missing required parameter: 'input'.")),
        Some(Value::String(s)) => messages.push(Message {
            role: "user".into(),
            text: s.clone(),
        }),
        Some(Value::Array(items)) => {
            for (i, item) in items.iter().enumerate() {
                input_item(i, item, &mut messages)?;
            }
        }
        Some(v) => return Err(wrong("input", "input", "a string or an array of input items", v)),
    }
    if messages.is_empty() {
        messages.push(Message {
            role: "user".into(),
            text: String::new(),
        });
    }
    let tools = tools(body)?;
    let tool_choice = tool_choice(body, &tools)?;
    let (format, text) = text_format(body)?;
    let max_tokens = match present(body, "max_output_tokens") {
        None => None,
        Some(Value::Number(n)) if n.as_u64().is_some() => {
            let n = n.as_u64().unwrap_or(0);
            let min = if d == Dialect::OpenAi { 16 } else { 1 };
            if n < min {
                return Err(bad("max_output_tokens", format!(
                    "Invalid 'max_output_tokens': integer below minimum value. Expected a value >= {min}, but got {n} instead."
                )));
            }
            Some(n)
        }
        Some(v) => return Err(wrong("max_output_tokens", "max_output_tokens", "an integer", v)),
    };
    let stream = opt_bool(body, "stream")?.unwrap_or(false);
    let temperature = opt_num(body, "temperature", 2.0)?;
    let top_p = opt_num(body, "top_p", 1.0)?;
    let parallel = opt_bool(body, "parallel_tool_calls")?.unwrap_or(true);
    let store = opt_bool(body, "store")?.unwrap_or(d == Dialect::OpenAi);
    let metadata = match present(body, "metadata") {
        None => json!({}),
        Some(m @ Value::Object(o)) if o.values().all(Value::is_string) => m.clone(),
        Some(v @ Value::Object(_)) => {
            return Err(wrong("metadata", "metadata", "an object with string values", v))
        }
        Some(v) => return Err(wrong("metadata", "metadata", "an object", v)),
    };
    for (k, expected) in [
        ("user", "a string"),
        ("include", "an array"),
        ("reasoning", "an object"),
    ] {
        let fits = |v: &Value| match k {
            "user" => v.is_string(),
            "include" => v.is_array(),
            _ => v.is_object(),
        };
        if let Some(v) = present(body, k).filter(|v| !fits(v)) {
            let param = match k {
                "user" => "user",
                "include" => "include",
                _ => "reasoning",
            };
            return Err(wrong(param, k, expected, v));
        }
    }
    let mut echo = Map::new();
    echo.insert("instructions".into(), instructions);
    echo.insert(
        "tools".into(),
        present(body, "tools").cloned().unwrap_or(json!([])),
    );
    echo.insert(
        "tool_choice".into(),
        present(body, "tool_choice").cloned().unwrap_or(json!("auto")),
    );
    echo.insert("parallel_tool_calls".into(), json!(parallel));
    echo.insert("temperature".into(), json!(temperature.unwrap_or(1.0)));
    echo.insert("top_p".into(), json!(top_p.unwrap_or(1.0)));
    echo.insert("max_output_tokens".into(), json!(max_tokens));
    echo.insert("store".into(), json!(store));
    echo.insert("text".into(), text);
    echo.insert("metadata".into(), metadata);
    echo.insert(
        "user".into(),
        present(body, "user").cloned().unwrap_or(Value::Null),
    );
    echo.insert(
        "reasoning".into(),
        present(body, "reasoning")
            .cloned()
            .unwrap_or(json!({"effort": null, "summary": null})),
    );
    let chat = ChatRequest {
        model,
        messages,
        stream,
        include_usage: false,
        max_tokens,
        tools,
        tool_choice,
        temperature,
        format,
    };
    Ok(Parsed { chat, echo })
}

fn input_item(i: usize, item: &Value, out: &mut Vec<Message>) -> Result<(), Problem> {
    let at = format!("input[{i}]");
    let Value::Object(o) = item else {
        return Err(wrong("input", &at, "an object", item));
    };
    let kind = match o.get("type") {
        None | Some(Value::Null) => "message",
        Some(Value::String(t)) => t.as_str(),
        Some(v) => return Err(wrong("input", &format!("{at}.type"), "a string", v)),
    };
    match kind {
        "message" => {
            let role = str_of(o, "role", &at)?;
            let role = match role {
                "user" | "assistant" | "system" => role,
                "developer" => "system",
                other => {
                    return Err(bad("input", format!(
                        "Invalid value: '{other}'. Supported values are: 'user', 'assistant', 'system', and 'developer'. ({at}.role)"
                    )))
                }
            };
            let text = match o.get("content") {
                Some(Value::String(s)) => s.clone(),
                Some(Value::Array(parts)) => {
                    for (j, p) in parts.iter().enumerate() {
                        content_part(&format!("{at}.content[{j}]"), p)?;
                    }
                    content_text(o.get("content"))
                }
                None | Some(Value::Null) => {
                    return Err(bad("input", format!("Missing required parameter: '{at}.content'.")))
                }
                Some(v) => return Err(wrong("input", &format!("{at}.content"), "a string or an array of content parts", v)),
            };
            out.push(Message {
                role: role.to_string(),
                text,
            });
        }
        "function_call" => {
            str_of(o, "call_id", &at)?;
            str_of(o, "name", &at)?;
            let args = str_of(o, "arguments", &at)?;
            out.push(Message {
                role: "assistant".into(),
                text: args.to_string(),
            });
        }
        "function_call_output" => {
            str_of(o, "call_id", &at)?;
            let text = match o.get("output") {
                Some(Value::String(s)) => s.clone(),
                Some(v @ Value::Array(_)) => content_text(Some(v)),
                None | Some(Value::Null) => {
                    return Err(bad("input", format!("Missing required parameter: '{at}.output'.")))
                }
                Some(v) => return Err(wrong("input", &format!("{at}.output"), "a string or an array", v)),
            };
            out.push(Message {
                role: "tool".into(),
                text,
            });
        }
        // Replayed reasoning carries nothing the fake answers to.
        "reasoning" => {}
        "item_reference" => {
            let id = o.get("id").and_then(Value::as_str).unwrap_or("");
            return Err(bad("input", format!("Item with id '{id}' not found.")));
        }
        other => {
            return Err(bad("input", format!(
                "Invalid value: '{other}'. Supported values are: 'message', 'function_call', 'function_call_output', 'reasoning', and 'item_reference'. ({at}.type)"
            )))
        }
    }
    Ok(())
}

fn content_part(at: &str, p: &Value) -> Result<(), Problem> {
    let Value::Object(o) = p else {
        return Err(wrong("input", at, "an object", p));
    };
    match o.get("type").and_then(Value::as_str) {
        Some("input_text" | "output_text" | "text") => str_of(o, "text", at).map(|_| ()),
        Some("refusal") => str_of(o, "refusal", at).map(|_| ()),
        Some("input_image" | "input_file" | "input_audio") => Ok(()),
        Some(t) => Err(bad("input", format!(
            "Invalid value: '{t}'. Supported values are: 'input_text', 'input_image', 'input_file', 'output_text', and 'refusal'. ({at}.type)"
        ))),
        None => Err(bad("input", format!("Missing required parameter: '{at}.type'."))),
    }
}
