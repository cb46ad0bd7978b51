//! OpenAI Responses (`POST /v1/responses`) to and from the canonical chat types (`../shared/AGENT_APIS.md` §1):
//! [`translate`] turns a Responses request into a [`ChatRequest`] (and what the answer echoes back),
//! [`response_object`] a [`ChatResponse`] into the Responses object, [`StreamWriter`] the chunks of a streamed
//! answer into the Responses event grammar.

use serde_json::{json, Map, Value};

use super::{
    new_id, unix_now, ChatChunk, ChatRequest, ChatResponse, Message, Role, ToolCall, ToolFunction, Usage,
};

/// Why a Responses request cannot be served: a 400 naming the field.
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

fn bad(param: impl Into<String>, message: impl Into<String>) -> Rejected {
    Rejected {
        code: "invalid_request",
        message: message.into(),
        param: param.into(),
    }
}

fn unsupported(code: &'static str, param: impl Into<String>, message: impl Into<String>) -> Rejected {
    Rejected {
        code,
        message: message.into(),
        param: param.into(),
    }
}

/// What the response object echoes of the request.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Echo {
    /// `instructions`.
    pub instructions: Value,
    /// `tools` as the client sent them (function tools only: dropped hosted tools are not served).
    pub tools: Vec<Value>,
    /// `tool_choice` as sent, else `"auto"`.
    pub tool_choice: Value,
    /// `parallel_tool_calls`, default true.
    pub parallel_tool_calls: bool,
    /// `temperature`.
    pub temperature: Value,
    /// `top_p`.
    pub top_p: Value,
    /// `max_output_tokens`.
    pub max_output_tokens: Value,
    /// `metadata`, default `{}`.
    pub metadata: Value,
    /// `store`, default false (nothing is stored).
    pub store: bool,
    /// `text`, default `{"format":{"type":"text"}}`.
    pub text: Value,
}

/// A Responses request in canonical form.
#[derive(Debug, Clone)]
pub struct Translated {
    /// The chat request for the pipeline.
    pub chat: ChatRequest,
    /// The `type`s of hosted tools left out of the upstream call (for `X-LLM-Dropped-Tools`), in request order.
    pub dropped_tools: Vec<String>,
    /// What the answer echoes.
    pub echo: Echo,
}

/// Whether a tool type is a hosted tool the providers cannot run (left out of the upstream call or refused).
fn is_hosted(kind: &str) -> bool {
    crate::metrics::HostedTool::of(kind).is_some()
}

fn type_name(v: &Value) -> &'static str {
    match v {
        Value::Null => "null",
        Value::Bool(_) => "a boolean",
        Value::Number(_) => "a number",
        Value::String(_) => "a string",
        Value::Array(_) => "an array",
        Value::Object(_) => "an object",
    }
}

fn present<'a>(body: &'a Map<String, Value>, key: &str) -> Option<&'a Value> {
    body.get(key).filter(|v| !v.is_null())
}

fn opt_string(body: &Map<String, Value>, key: &str) -> Result<Option<String>, Rejected> {
    match present(body, key) {
        None => Ok(None),
        Some(Value::String(s)) => Ok(Some(s.clone())),
        Some(v) => Err(bad(
            key,
            format!("'{key}' must be a string, not {}", type_name(v)),
        )),
    }
}

fn opt_bool(body: &Map<String, Value>, key: &str) -> Result<Option<bool>, Rejected> {
    match present(body, key) {
        None => Ok(None),
        Some(Value::Bool(b)) => Ok(Some(*b)),
        Some(v) => Err(bad(
            key,
            format!("'{key}' must be a boolean, not {}", type_name(v)),
        )),
    }
}

fn opt_number(body: &Map<String, Value>, key: &str) -> Result<Option<f64>, Rejected> {
    match present(body, key) {
        None => Ok(None),
        Some(Value::Number(n)) => Ok(n.as_f64()),
        Some(v) => Err(bad(
            key,
            format!("'{key}' must be a number, not {}", type_name(v)),
        )),
    }
}

fn str_field<'a>(obj: &'a Map<String, Value>, key: &str, at: &str) -> Result<&'a str, Rejected> {
    match obj.get(key) {
        Some(Value::String(s)) => Ok(s),
        None | Some(Value::Null) => Err(bad(format!("{at}.{key}"), format!("'{at}.{key}' is required"))),
        Some(v) => Err(bad(
            format!("{at}.{key}"),
            format!("'{at}.{key}' must be a string, not {}", type_name(v)),
        )),
    }
}

/// Translates a Responses request body (a JSON object) to the canonical chat request. Hosted tools are left
/// out (and listed), or with `reject_hosted` a 400 `unsupported_tool` naming the first one.
pub fn translate(body: &Value, reject_hosted: bool) -> Result<Translated, Rejected> {
    let Some(body) = body.as_object() else {
        return Err(bad("", "request body must be a JSON object"));
    };
    // What needs server state or features the adapters lack: dropping it would change the answer.
    for key in ["previous_response_id", "conversation"] {
        if present(body, key).is_some() {
            return Err(unsupported(
                "previous_response_not_found",
                key,
                format!(
                    "'{key}' is not supported: the gateway stores no responses; send the whole conversation in 'input' (store: false)"
                ),
            ));
        }
    }
    if opt_bool(body, "background")? == Some(true) {
        return Err(unsupported(
            "unsupported_parameter",
            "background",
            "'background: true' is not supported: the gateway answers in the request (stream it for long answers)",
        ));
    }
    if present(body, "prompt").is_some() {
        return Err(unsupported(
            "unsupported_parameter",
            "prompt",
            "'prompt' (stored prompt templates) is not supported: send 'instructions' and 'input'",
        ));
    }
    let model = match body.get("model") {
        Some(Value::String(s)) if !s.trim().is_empty() => s.clone(),
        None | Some(Value::Null) => return Err(bad("model", "'model' is required")),
        Some(Value::String(_)) => return Err(bad("model", "'model' must not be empty")),
        Some(v) => {
            return Err(bad(
                "model",
                format!("'model' must be a string, not {}", type_name(v)),
            ))
        }
    };
    let stream = opt_bool(body, "stream")?.unwrap_or(false);
    let instructions = opt_string(body, "instructions")?;
    let mut messages = Vec::new();
    if let Some(text) = &instructions {
        messages.push(Message::plain(Role::System, text.clone()));
    }
    match body.get("input") {
        Some(Value::String(s)) => messages.push(Message::plain(Role::User, s.clone())),
        Some(Value::Array(items)) => {
            for (i, item) in items.iter().enumerate() {
                input_item(item, &format!("input[{i}]"), &mut messages)?;
            }
        }
        None | Some(Value::Null) => return Err(bad("input", "'input' is required")),
        Some(v) => {
            return Err(bad(
                "input",
                format!(
                    "'input' must be a string or an array of items, not {}",
                    type_name(v)
                ),
            ))
        }
    }
    if messages.iter().all(|m| m.role == Role::System) {
        return Err(bad("input", "'input' has no message: the prompt is empty"));
    }
    let (tools, echo_tools, dropped_tools) = tools(body, reject_hosted)?;
    let (tool_choice, tools) = tool_choice(body, tools)?;
    let parallel = opt_bool(body, "parallel_tool_calls")?;
    let temperature = opt_number(body, "temperature")?;
    let top_p = opt_number(body, "top_p")?;
    let max_output_tokens = match present(body, "max_output_tokens") {
        None => None,
        Some(v) => match v.as_u64() {
            Some(n) if n >= 1 => Some(u32::try_from(n).unwrap_or(u32::MAX)),
            _ => {
                return Err(bad(
                    "max_output_tokens",
                    "'max_output_tokens' must be a positive integer",
                ))
            }
        },
    };
    let metadata = match present(body, "metadata") {
        None => json!({}),
        Some(Value::Object(m)) => {
            if let Some((k, v)) = m.iter().find(|(_, v)| !v.is_string()) {
                return Err(bad(
                    format!("metadata.{k}"),
                    format!("'metadata.{k}' must be a string, not {}", type_name(v)),
                ));
            }
            Value::Object(m.clone())
        }
        Some(v) => {
            return Err(bad(
                "metadata",
                format!("'metadata' must be an object, not {}", type_name(v)),
            ))
        }
    };
    let store = opt_bool(body, "store")?.unwrap_or(false);
    let (response_format, text) = text_format(body)?;

    let mut extra = Map::new();
    if stream {
        extra.insert("stream_options".into(), json!({"include_usage": true}));
    }
    if let Some(f) = response_format {
        extra.insert("response_format".into(), f);
    }
    if let (Some(p), Some(_)) = (parallel, &tools) {
        extra.insert("parallel_tool_calls".into(), Value::Bool(p));
    }
    let echo = Echo {
        instructions: instructions.map(Value::String).unwrap_or(Value::Null),
        tools: echo_tools,
        tool_choice: present(body, "tool_choice")
            .cloned()
            .unwrap_or_else(|| json!("auto")),
        parallel_tool_calls: parallel.unwrap_or(true),
        temperature: temperature.map(Value::from).unwrap_or(Value::Null),
        top_p: top_p.map(Value::from).unwrap_or(Value::Null),
        max_output_tokens: max_output_tokens.map(Value::from).unwrap_or(Value::Null),
        metadata,
        store,
        text,
    };
    let chat = ChatRequest {
        model,
        messages,
        stream,
        temperature,
        top_p,
        max_tokens: max_output_tokens,
        max_completion_tokens: None,
        stop: None,
        seed: None,
        tool_choice: if tools.is_some() { tool_choice } else { None },
        tools,
        extra,
    };
    Ok(Translated {
        chat,
        dropped_tools,
        echo,
    })
}

/// One input item, appended to `out` as chat messages.
fn input_item(item: &Value, at: &str, out: &mut Vec<Message>) -> Result<(), Rejected> {
    let Some(obj) = item.as_object() else {
        return Err(bad(
            at,
            format!("'{at}' must be an object, not {}", type_name(item)),
        ));
    };
    let kind = match obj.get("type") {
        None | Some(Value::Null) => "message",
        Some(Value::String(s)) => s.as_str(),
        Some(v) => {
            return Err(bad(
                format!("{at}.type"),
                format!("'{at}.type' must be a string, not {}", type_name(v)),
            ))
        }
    };
    match kind {
        "message" => message_item(obj, at, out),
        "function_call" => {
            let call_id = str_field(obj, "call_id", at)?.to_string();
            let name = str_field(obj, "name", at)?.to_string();
            let arguments = match obj.get("arguments") {
                Some(Value::String(s)) => s.clone(),
                None | Some(Value::Null) => "{}".to_string(),
                Some(v @ Value::Object(_)) => v.to_string(),
                Some(v) => {
                    return Err(bad(
                        format!("{at}.arguments"),
                        format!("'{at}.arguments' must be a JSON string, not {}", type_name(v)),
                    ))
                }
            };
            let call = ToolCall {
                id: call_id,
                kind: "function".into(),
                function: ToolFunction { name, arguments },
            };
            // Consecutive calls (and a call right after the assistant's text) share one assistant message.
            match out.last_mut() {
                Some(m) if m.role == Role::Assistant => m.tool_calls.get_or_insert_with(Vec::new).push(call),
                _ => out.push(Message {
                    role: Role::Assistant,
                    content: None,
                    name: None,
                    tool_calls: Some(vec![call]),
                    tool_call_id: None,
                    extra: Map::new(),
                }),
            }
            Ok(())
        }
        "function_call_output" => {
            let call_id = str_field(obj, "call_id", at)?.to_string();
            let content = match obj.get("output") {
                Some(Value::String(s)) => s.clone(),
                Some(Value::Array(parts)) => {
                    let mut text = String::new();
                    for (j, p) in parts.iter().enumerate() {
                        match p.get("text") {
                            Some(Value::String(s)) => text.push_str(s),
                            _ => {
                                return Err(unsupported(
                                    "unsupported_content",
                                    format!("{at}.output[{j}]"),
                                    format!("'{at}.output[{j}]': only text parts are supported in a function_call_output"),
                                ))
                            }
                        }
                    }
                    text
                }
                None | Some(Value::Null) => {
                    return Err(bad(format!("{at}.output"), format!("'{at}.output' is required")))
                }
                Some(v) => {
                    return Err(bad(
                        format!("{at}.output"),
                        format!(
                            "'{at}.output' must be a string or an array of parts, not {}",
                            type_name(v)
                        ),
                    ))
                }
            };
            let mut m = Message::plain(Role::Tool, content);
            m.tool_call_id = Some(call_id);
            out.push(m);
            Ok(())
        }
        // Earlier reasoning replayed by the client: no provider takes it back.
        "reasoning" => Ok(()),
        "item_reference" => Err(unsupported(
            "unsupported_input_item",
            format!("{at}.type"),
            format!("'{at}': item_reference needs stored responses, which the gateway does not keep"),
        )),
        other => Err(unsupported(
            "unsupported_input_item",
            format!("{at}.type"),
            format!("'{at}': input items of type '{other}' are not supported"),
        )),
    }
}

fn message_item(obj: &Map<String, Value>, at: &str, out: &mut Vec<Message>) -> Result<(), Rejected> {
    let role = match str_field(obj, "role", at)? {
        "user" => Role::User,
        "assistant" => Role::Assistant,
        // Every provider takes `system`; not every one takes `developer`.
        "system" | "developer" => Role::System,
        other => {
            return Err(bad(
                format!("{at}.role"),
                format!("'{at}.role' must be user, assistant, system or developer, not '{other}'"),
            ))
        }
    };
    let content = match obj.get("content") {
        Some(Value::String(s)) => Value::String(s.clone()),
        Some(Value::Array(parts)) => {
            let mut chat_parts = Vec::with_capacity(parts.len());
            for (j, p) in parts.iter().enumerate() {
                chat_parts.push(content_part(p, &format!("{at}.content[{j}]"), role)?);
            }
            if role == Role::User && chat_parts.iter().any(|p| p["type"] != "text") {
                Value::Array(chat_parts)
            } else {
                // Text only: one string, which every provider takes (images only in user messages).
                let text: String = chat_parts
                    .iter()
                    .filter_map(|p| p.get("text").and_then(Value::as_str))
                    .collect();
                Value::String(text)
            }
        }
        None | Some(Value::Null) => {
            return Err(bad(
                format!("{at}.content"),
                format!("'{at}.content' is required"),
            ))
        }
        Some(v) => {
            return Err(bad(
                format!("{at}.content"),
                format!(
                    "'{at}.content' must be a string or an array of parts, not {}",
                    type_name(v)
                ),
            ))
        }
    };
    out.push(Message {
        role,
        content: Some(content),
        name: None,
        tool_calls: None,
        tool_call_id: None,
        extra: Map::new(),
    });
    Ok(())
}

/// One content part as a chat content part.
fn content_part(p: &Value, at: &str, role: Role) -> Result<Value, Rejected> {
    let Some(obj) = p.as_object() else {
        return Err(bad(at, format!("'{at}' must be an object, not {}", type_name(p))));
    };
    let kind = str_field(obj, "type", at)?;
    match kind {
        "input_text" | "output_text" | "text" => Ok(json!({"type": "text", "text": str_field(obj, "text", at)?})),
        "refusal" => Ok(json!({"type": "text", "text": str_field(obj, "refusal", at)?})),
        "input_image" if role == Role::User => match obj.get("image_url") {
            Some(Value::String(url)) => {
                let mut image = json!({"url": url});
                if let Some(Value::String(d)) = obj.get("detail") {
                    image["detail"] = json!(d);
                }
                Ok(json!({"type": "image_url", "image_url": image}))
            }
            Some(v) if !v.is_null() => Err(bad(
                format!("{at}.image_url"),
                format!("'{at}.image_url' must be a string (a URL or a data: URL), not {}", type_name(v)),
            )),
            _ => Err(unsupported(
                "unsupported_content",
                at,
                format!("'{at}': images by file_id need the Files API, which the gateway does not serve; send image_url"),
            )),
        },
        "input_image" => Err(unsupported(
            "unsupported_content",
            at,
            format!("'{at}': images are supported in user messages only"),
        )),
        other => Err(unsupported(
            "unsupported_content",
            format!("{at}.type"),
            format!("'{at}': content parts of type '{other}' are not supported"),
        )),
    }
}

type ToolsOut = (Option<Vec<Value>>, Vec<Value>, Vec<String>);

/// Function tools as chat tools; the echo of the served tools; the hosted tools left out.
fn tools(body: &Map<String, Value>, reject_hosted: bool) -> Result<ToolsOut, Rejected> {
    let list = match present(body, "tools") {
        None => return Ok((None, Vec::new(), Vec::new())),
        Some(Value::Array(a)) => a,
        Some(v) => {
            return Err(bad(
                "tools",
                format!("'tools' must be an array, not {}", type_name(v)),
            ))
        }
    };
    let mut chat = Vec::new();
    let mut echo = Vec::new();
    let mut dropped = Vec::new();
    for (i, t) in list.iter().enumerate() {
        let at = format!("tools[{i}]");
        let Some(obj) = t.as_object() else {
            return Err(bad(
                &at,
                format!("'{at}' must be an object, not {}", type_name(t)),
            ));
        };
        let kind = str_field(obj, "type", &at)?;
        if kind != "function" {
            if is_hosted(kind) && !reject_hosted {
                if !dropped.iter().any(|d| d == kind) {
                    dropped.push(kind.to_string());
                }
                continue;
            }
            let why = if is_hosted(kind) {
                "a hosted tool the providers cannot run (responses.hosted_tools: reject)"
            } else {
                "not a tool type the gateway knows"
            };
            return Err(unsupported(
                "unsupported_tool",
                format!("{at}.type"),
                format!("'{at}': tools of type '{kind}' are not supported: {why}"),
            ));
        }
        let name = str_field(obj, "name", &at)?;
        let mut function = json!({"name": name});
        if let Some(d) = obj.get("description").filter(|v| !v.is_null()) {
            if !d.is_string() {
                return Err(bad(
                    format!("{at}.description"),
                    format!("'{at}.description' must be a string"),
                ));
            }
            function["description"] = d.clone();
        }
        match obj.get("parameters") {
            None | Some(Value::Null) => {}
            Some(p @ Value::Object(_)) => function["parameters"] = p.clone(),
            Some(v) => {
                return Err(bad(
                    format!("{at}.parameters"),
                    format!(
                        "'{at}.parameters' must be a JSON schema object, not {}",
                        type_name(v)
                    ),
                ))
            }
        }
        if let Some(Value::Bool(s)) = obj.get("strict") {
            function["strict"] = Value::Bool(*s);
        }
        chat.push(json!({"type": "function", "function": function}));
        echo.push(t.clone());
    }
    Ok(((!chat.is_empty()).then_some(chat), echo, dropped))
}

fn tool_name(t: &Value) -> Option<&str> {
    t.pointer("/function/name").and_then(Value::as_str)
}

/// `tool_choice` in chat's form; `allowed_tools` narrows the tools.
fn tool_choice(
    body: &Map<String, Value>,
    tools: Option<Vec<Value>>,
) -> Result<(Option<Value>, Option<Vec<Value>>), Rejected> {
    let Some(choice) = present(body, "tool_choice") else {
        return Ok((None, tools));
    };
    match choice {
        Value::String(s) if matches!(s.as_str(), "auto" | "none" | "required") => {
            Ok((Some(choice.clone()), tools))
        }
        Value::String(s) => Err(bad(
            "tool_choice",
            format!("'tool_choice' must be auto, none, required or an object, not '{s}'"),
        )),
        Value::Object(obj) => match str_field(obj, "type", "tool_choice")? {
            "function" => {
                let name = str_field(obj, "name", "tool_choice")?;
                if !tools.iter().flatten().any(|t| tool_name(t) == Some(name)) {
                    return Err(bad(
                        "tool_choice.name",
                        format!("'tool_choice.name' names '{name}', which is not a function in 'tools'"),
                    ));
                }
                Ok((
                    Some(json!({"type": "function", "function": {"name": name}})),
                    tools,
                ))
            }
            "allowed_tools" => {
                let mode = match obj.get("mode") {
                    None | Some(Value::Null) => "auto",
                    Some(Value::String(m)) if m == "auto" || m == "required" => m.as_str(),
                    Some(_) => {
                        return Err(bad(
                            "tool_choice.mode",
                            "'tool_choice.mode' must be auto or required",
                        ))
                    }
                };
                let Some(Value::Array(allowed)) = obj.get("tools") else {
                    return Err(bad("tool_choice.tools", "'tool_choice.tools' must be an array"));
                };
                let names: Vec<&str> = allowed
                    .iter()
                    .filter_map(|t| t.get("name").and_then(Value::as_str))
                    .collect();
                let narrowed: Vec<Value> = tools
                    .into_iter()
                    .flatten()
                    .filter(|t| tool_name(t).is_some_and(|n| names.contains(&n)))
                    .collect();
                Ok((Some(json!(mode)), (!narrowed.is_empty()).then_some(narrowed)))
            }
            other => Err(unsupported(
                "unsupported_tool",
                "tool_choice.type",
                format!("'tool_choice' of type '{other}' names a tool the providers cannot run"),
            )),
        },
        v => Err(bad(
            "tool_choice",
            format!(
                "'tool_choice' must be a string or an object, not {}",
                type_name(v)
            ),
        )),
    }
}

/// `text.format` as chat's `response_format`, and the `text` echo.
fn text_format(body: &Map<String, Value>) -> Result<(Option<Value>, Value), Rejected> {
    let default = json!({"format": {"type": "text"}});
    let text = match present(body, "text") {
        None => return Ok((None, default)),
        Some(Value::Object(t)) => t,
        Some(v) => {
            return Err(bad(
                "text",
                format!("'text' must be an object, not {}", type_name(v)),
            ))
        }
    };
    let format = match text.get("format") {
        None | Some(Value::Null) => return Ok((None, default)),
        Some(Value::Object(f)) => f,
        Some(v) => {
            return Err(bad(
                "text.format",
                format!("'text.format' must be an object, not {}", type_name(v)),
            ))
        }
    };
    let echo = json!({"format": Value::Object(format.clone())});
    match str_field(format, "type", "text.format")? {
        "text" => Ok((None, echo)),
        "json_object" => Ok((Some(json!({"type": "json_object"})), echo)),
        "json_schema" => {
            let name = str_field(format, "name", "text.format")?;
            let Some(schema @ Value::Object(_)) = format.get("schema") else {
                return Err(bad(
                    "text.format.schema",
                    "'text.format.schema' must be a JSON schema object",
                ));
            };
            let mut js = json!({"name": name, "schema": schema});
            for key in ["strict", "description"] {
                if let Some(v) = format.get(key).filter(|v| !v.is_null()) {
                    js[key] = v.clone();
                }
            }
            Ok((Some(json!({"type": "json_schema", "json_schema": js})), echo))
        }
        other => Err(bad(
            "text.format.type",
            format!("'text.format.type' must be text, json_object or json_schema, not '{other}'"),
        )),
    }
}

/// A Responses id: `prefix_` and 24 hex digits.
pub fn new_resp_id(prefix: &str) -> String {
    new_id(prefix).replacen('-', "_", 1)
}

/// `status` and `incomplete_details` for a chat `finish_reason`.
pub fn status_of(finish: Option<&str>) -> (&'static str, Value) {
    match finish {
        Some("length") => ("incomplete", json!({"reason": "max_output_tokens"})),
        Some("content_filter" | "blacklist") => ("incomplete", json!({"reason": "content_filter"})),
        _ => ("completed", Value::Null),
    }
}

/// Chat usage as Responses usage.
pub fn usage_of(u: &Usage) -> Value {
    let total = u.total_tokens.max(u.prompt_tokens + u.completion_tokens);
    json!({
        "input_tokens": u.prompt_tokens,
        "input_tokens_details": {"cached_tokens": 0, "cache_write_tokens": 0},
        "output_tokens": u.completion_tokens,
        "output_tokens_details": {"reasoning_tokens": 0},
        "total_tokens": total,
    })
}

/// The parts of a response object that do not depend on the answer.
#[derive(Debug, Clone)]
pub struct Frame {
    /// `resp_…`.
    pub id: String,
    /// Unix seconds.
    pub created_at: u64,
    /// What the object echoes.
    pub echo: Echo,
}

impl Frame {
    /// A fresh id and the time now.
    pub fn new(echo: Echo) -> Frame {
        Frame {
            id: new_resp_id("resp"),
            created_at: unix_now(),
            echo,
        }
    }

    /// The whole response object (every field the SDK and Open Responses require).
    pub fn object(
        &self,
        status: &str,
        model: &str,
        output: Vec<Value>,
        usage: Value,
        details: Value,
        error: Value,
    ) -> Value {
        let e = &self.echo;
        let completed_at = if status == "completed" {
            json!(unix_now())
        } else {
            Value::Null
        };
        json!({
            "id": self.id,
            "object": "response",
            "created_at": self.created_at,
            "completed_at": completed_at,
            "status": status,
            "model": model,
            "output": output,
            "usage": usage,
            "error": error,
            "incomplete_details": details,
            "instructions": e.instructions,
            "previous_response_id": null,
            "tools": e.tools,
            "tool_choice": e.tool_choice,
            "parallel_tool_calls": e.parallel_tool_calls,
            "temperature": e.temperature,
            "top_p": e.top_p,
            "presence_penalty": 0,
            "frequency_penalty": 0,
            "top_logprobs": 0,
            "max_output_tokens": e.max_output_tokens,
            "max_tool_calls": null,
            "store": e.store,
            "text": e.text,
            "reasoning": null,
            "truncation": "disabled",
            "background": false,
            "service_tier": "default",
            "metadata": e.metadata,
            "user": null,
            "safety_identifier": null,
            "prompt_cache_key": null,
        })
    }
}

fn message_output(id: &str, text: &str, status: &str) -> Value {
    json!({"type": "message", "id": id, "role": "assistant", "status": status,
           "content": [text_part(text)]})
}

fn text_part(text: &str) -> Value {
    json!({"type": "output_text", "text": text, "annotations": [], "logprobs": []})
}

fn call_output(id: &str, call_id: &str, name: &str, arguments: &str, status: &str) -> Value {
    json!({"type": "function_call", "id": id, "call_id": call_id, "name": name, "arguments": arguments, "status": status})
}

/// A non-stream chat answer as the Responses object.
pub fn response_object(frame: &Frame, resp: &ChatResponse) -> Value {
    let choice = resp.choices.first();
    let mut output = Vec::new();
    if let Some(c) = choice {
        let text = c.message.text();
        if let Some(r) = c
            .message
            .extra
            .get("refusal")
            .and_then(Value::as_str)
            .filter(|r| !r.is_empty())
        {
            output.push(json!({"type": "message", "id": new_resp_id("msg"), "role": "assistant", "status": "completed",
                "content": [{"type": "refusal", "refusal": r}]}));
        } else if !text.is_empty() {
            output.push(message_output(&new_resp_id("msg"), &text, "completed"));
        }
        for call in c.message.tool_calls.iter().flatten() {
            let call_id = if call.id.is_empty() {
                new_resp_id("call")
            } else {
                call.id.clone()
            };
            output.push(call_output(
                &new_resp_id("fc"),
                &call_id,
                &call.function.name,
                &call.function.arguments,
                "completed",
            ));
        }
    }
    let (status, details) = status_of(choice.and_then(|c| c.finish_reason.as_deref()));
    let usage = resp.usage.as_ref().map(usage_of).unwrap_or(Value::Null);
    frame.object(status, &resp.model, output, usage, details, Value::Null)
}

/// One open or finished output item of a stream.
#[derive(Debug, Clone)]
enum Item {
    Text {
        id: String,
        text: String,
        open: bool,
    },
    Call {
        id: String,
        call_id: String,
        name: String,
        arguments: String,
        open: bool,
        index: u32,
    },
}

/// The Responses event grammar of a streamed answer, written event by event: feed it the chunks, then end it
/// with [`StreamWriter::complete`] or [`StreamWriter::fail`]. Each method returns the SSE bytes to send.
#[derive(Debug)]
pub struct StreamWriter {
    frame: Frame,
    seq: u64,
    model: String,
    started: bool,
    items: Vec<Item>,
    finish: Option<String>,
    usage: Option<Usage>,
}

impl StreamWriter {
    /// A writer for one response.
    pub fn new(frame: Frame) -> StreamWriter {
        StreamWriter {
            frame,
            seq: 0,
            model: String::new(),
            started: false,
            items: Vec::new(),
            finish: None,
            usage: None,
        }
    }

    /// The response id.
    pub fn id(&self) -> &str {
        &self.frame.id
    }

    fn emit(&mut self, out: &mut String, kind: &str, mut data: Value) {
        data["type"] = json!(kind);
        data["sequence_number"] = json!(self.seq);
        self.seq += 1;
        out.push_str("event: ");
        out.push_str(kind);
        out.push_str("\ndata: ");
        out.push_str(&data.to_string());
        out.push_str("\n\n");
    }

    fn start(&mut self, out: &mut String) {
        if self.started {
            return;
        }
        self.started = true;
        let r = self.snapshot("in_progress", Value::Null, Value::Null);
        self.emit(out, "response.created", json!({"response": r}));
        let r = self.snapshot("in_progress", Value::Null, Value::Null);
        self.emit(out, "response.in_progress", json!({"response": r}));
    }

    fn snapshot(&self, status: &str, details: Value, error: Value) -> Value {
        let finished = status != "in_progress";
        let output = if finished {
            self.output(status != "failed")
        } else {
            Vec::new()
        };
        let usage = match (&self.usage, finished) {
            (Some(u), true) => usage_of(u),
            _ => Value::Null,
        };
        self.frame
            .object(status, &self.model, output, usage, details, error)
    }

    fn output(&self, complete: bool) -> Vec<Value> {
        let status = if complete { "completed" } else { "incomplete" };
        self.items
            .iter()
            .map(|i| match i {
                Item::Text { id, text, .. } => message_output(id, text, status),
                Item::Call {
                    id,
                    call_id,
                    name,
                    arguments,
                    ..
                } => call_output(id, call_id, name, arguments, status),
            })
            .collect()
    }

    /// Closes the open text item, if any.
    fn close_text(&mut self, out: &mut String) {
        let Some((idx, id, text)) = self.items.iter_mut().enumerate().find_map(|(n, i)| match i {
            Item::Text {
                id,
                text,
                open: open @ true,
            } => {
                *open = false;
                Some((n, id.clone(), text.clone()))
            }
            _ => None,
        }) else {
            return;
        };
        self.emit(
            out,
            "response.output_text.done",
            json!({"item_id": id, "output_index": idx, "content_index": 0, "text": text, "logprobs": []}),
        );
        self.emit(
            out,
            "response.content_part.done",
            json!({"item_id": id, "output_index": idx, "content_index": 0, "part": text_part(&text)}),
        );
        self.emit(
            out,
            "response.output_item.done",
            json!({"output_index": idx, "item": message_output(&id, &text, "completed")}),
        );
    }

    fn close_calls(&mut self, out: &mut String) {
        let mut closing = Vec::new();
        for (n, i) in self.items.iter_mut().enumerate() {
            if let Item::Call {
                id,
                call_id,
                name,
                arguments,
                open: open @ true,
                ..
            } = i
            {
                *open = false;
                closing.push((n, id.clone(), call_id.clone(), name.clone(), arguments.clone()));
            }
        }
        for (idx, id, call_id, name, arguments) in closing {
            self.emit(
                out,
                "response.function_call_arguments.done",
                json!({"item_id": id, "output_index": idx, "name": name, "arguments": arguments}),
            );
            self.emit(out, "response.output_item.done", json!({"output_index": idx, "item": call_output(&id, &call_id, &name, &arguments, "completed")}));
        }
    }

    /// The events of one chunk (the first one also opens the response).
    pub fn chunk(&mut self, chunk: &ChatChunk) -> String {
        let mut out = String::new();
        if self.model.is_empty() {
            self.model = chunk.model.clone();
        }
        self.start(&mut out);
        if let Some(u) = chunk.usage {
            self.usage = Some(u);
        }
        let Some(choice) = chunk.choices.iter().find(|c| c.index == 0) else {
            return out;
        };
        if let Some(text) = choice.delta.content.as_deref().filter(|t| !t.is_empty()) {
            let open = self
                .items
                .iter()
                .position(|i| matches!(i, Item::Text { open: true, .. }));
            let idx = match open {
                Some(idx) => idx,
                None => {
                    let id = new_resp_id("msg");
                    let idx = self.items.len();
                    self.emit(&mut out, "response.output_item.added", json!({"output_index": idx,
                        "item": {"type": "message", "id": id, "role": "assistant", "status": "in_progress", "content": []}}));
                    self.emit(
                        &mut out,
                        "response.content_part.added",
                        json!({"item_id": id, "output_index": idx,
                        "content_index": 0, "part": {"type": "output_text", "text": "", "annotations": []}}),
                    );
                    self.items.push(Item::Text {
                        id,
                        text: String::new(),
                        open: true,
                    });
                    idx
                }
            };
            let mut item_id = String::new();
            if let Some(Item::Text { id, text: buf, .. }) = self.items.get_mut(idx) {
                buf.push_str(text);
                item_id = id.clone();
            }
            self.emit(
                &mut out,
                "response.output_text.delta",
                json!({"item_id": item_id, "output_index": idx,
                "content_index": 0, "delta": text, "logprobs": []}),
            );
        }
        for tc in choice.delta.tool_calls.iter().flatten() {
            let known = self
                .items
                .iter()
                .position(|i| matches!(i, Item::Call { index, .. } if *index == tc.index));
            let name = tc
                .function
                .as_ref()
                .and_then(|f| f.get("name"))
                .and_then(Value::as_str);
            let args = tc
                .function
                .as_ref()
                .and_then(|f| f.get("arguments"))
                .and_then(Value::as_str)
                .unwrap_or("");
            let idx = match known {
                Some(idx) => idx,
                None => {
                    self.close_text(&mut out);
                    let id = new_resp_id("fc");
                    let call_id = tc
                        .id
                        .clone()
                        .filter(|s| !s.is_empty())
                        .unwrap_or_else(|| new_resp_id("call"));
                    let name = name.unwrap_or_default().to_string();
                    let idx = self.items.len();
                    self.emit(
                        &mut out,
                        "response.output_item.added",
                        json!({"output_index": idx,
                        "item": call_output(&id, &call_id, &name, "", "in_progress")}),
                    );
                    self.items.push(Item::Call {
                        id,
                        call_id,
                        name,
                        arguments: String::new(),
                        open: true,
                        index: tc.index,
                    });
                    idx
                }
            };
            if args.is_empty() {
                continue;
            }
            let mut item_id = String::new();
            if let Some(Item::Call { id, arguments, .. }) = self.items.get_mut(idx) {
                arguments.push_str(args);
                item_id = id.clone();
            }
            self.emit(
                &mut out,
                "response.function_call_arguments.delta",
                json!({"item_id": item_id, "output_index": idx, "delta": args}),
            );
        }
        if let Some(f) = &choice.finish_reason {
            self.finish = Some(f.clone());
        }
        out
    }

    /// The clean end: open items closed, `response.completed` (or `response.incomplete`), `[DONE]`.
    pub fn complete(&mut self) -> String {
        let mut out = String::new();
        self.start(&mut out);
        self.close_text(&mut out);
        self.close_calls(&mut out);
        let (status, details) = status_of(self.finish.as_deref());
        let r = self.snapshot(status, details, Value::Null);
        let kind = if status == "completed" {
            "response.completed"
        } else {
            "response.incomplete"
        };
        self.emit(&mut out, kind, json!({"response": r}));
        out.push_str("data: [DONE]\n\n");
        out
    }

    /// The end of a broken stream: an `error` event with the gateway's `code` (flat and nested shapes), then
    /// `response.failed` with the items so far and `error.code` from the Responses enum (`server_error`,
    /// `rate_limit_exceeded`); never `response.completed`, no `[DONE]`.
    pub fn fail(&mut self, code: &str, message: &str, response_code: &str) -> String {
        let mut out = String::new();
        self.start(&mut out);
        self.emit(
            &mut out,
            "error",
            json!({"code": code, "message": message, "param": null,
            "error": {"type": "server_error", "code": code, "message": message, "param": null}}),
        );
        let r = self.snapshot(
            "failed",
            Value::Null,
            json!({"code": response_code, "message": message}),
        );
        self.emit(&mut out, "response.failed", json!({"response": r}));
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::canonical::{Choice, ChunkChoice, Delta, ToolCallDelta};

    fn ok(body: Value) -> Translated {
        translate(&body, false).unwrap_or_else(|e| panic!("{e:?}: {body}"))
    }

    fn rejected(body: Value) -> Rejected {
        match translate(&body, false) {
            Ok(t) => panic!("accepted: {:?}", t.chat),
            Err(e) => e,
        }
    }

    #[test]
    fn a_string_input_and_instructions_are_system_then_user() {
        let t = ok(
            json!({"model": "default", "input": "hi", "instructions": "Be brief.", "store": false,
            "max_output_tokens": 50, "temperature": 0.2, "top_p": 0.9, "unknown": [1]}),
        );
        let m = &t.chat.messages;
        assert_eq!(m.len(), 2);
        assert_eq!((m[0].role, m[0].text()), (Role::System, "Be brief.".to_string()));
        assert_eq!((m[1].role, m[1].text()), (Role::User, "hi".to_string()));
        assert_eq!(t.chat.max_tokens, Some(50));
        assert_eq!(t.chat.temperature, Some(0.2));
        assert_eq!(t.chat.top_p, Some(0.9));
        assert!(!t.chat.stream);
        assert!(
            t.chat.extra.is_empty(),
            "unknown fields never go upstream: {:?}",
            t.chat.extra
        );
        assert_eq!(t.echo.instructions, json!("Be brief."));
        assert_eq!(t.echo.max_output_tokens, json!(50));
    }

    #[test]
    fn a_stream_asks_for_usage() {
        let t = ok(json!({"model": "m", "input": "hi", "stream": true}));
        assert!(t.chat.stream && t.chat.include_usage());
    }

    #[test]
    fn items_become_messages_tool_calls_and_tool_results() {
        let t = ok(json!({"model": "m", "input": [
            {"role": "developer", "content": "sys"},
            {"type": "message", "role": "user", "content": [
                {"type": "input_text", "text": "look"},
                {"type": "input_image", "image_url": "data:image/png;base64,AAAA", "detail": "low"}]},
            {"type": "reasoning", "id": "rs_1", "summary": []},
            {"role": "assistant", "id": "msg_1", "status": "completed",
             "content": [{"type": "output_text", "text": "Checking.", "annotations": []}]},
            {"type": "function_call", "id": "fc_1", "call_id": "call_a", "name": "f", "arguments": "{\"x\":1}"},
            {"type": "function_call", "call_id": "call_b", "name": "g", "arguments": "{}"},
            {"type": "function_call_output", "call_id": "call_a", "output": "one"},
            {"type": "function_call_output", "call_id": "call_b", "output": [{"type": "input_text", "text": "two"}]}
        ]}));
        let m = &t.chat.messages;
        assert_eq!(m.len(), 5, "{m:?}");
        assert_eq!(m[0].role, Role::System);
        assert_eq!(
            m[1].content,
            Some(json!([{"type": "text", "text": "look"},
                {"type": "image_url", "image_url": {"url": "data:image/png;base64,AAAA", "detail": "low"}}]))
        );
        assert_eq!(m[2].role, Role::Assistant);
        let t2 = ok(json!({"model": "m", "input": [{"role": "user", "content": [
            {"type": "input_text", "text": "a"}, {"type": "input_text", "text": "b"}]}]}));
        assert_eq!(
            t2.chat.messages[0].content,
            Some(json!("ab")),
            "text-only parts become one string"
        );
        assert_eq!(m[2].text(), "Checking.");
        let calls = m[2].tool_calls.as_ref().unwrap();
        assert_eq!(calls.len(), 2, "consecutive calls share the assistant message");
        assert_eq!(
            (calls[0].id.as_str(), calls[0].function.name.as_str()),
            ("call_a", "f")
        );
        assert_eq!(calls[0].function.arguments, "{\"x\":1}");
        assert_eq!(calls[1].id, "call_b");
        assert_eq!(
            (m[3].role, m[3].tool_call_id.as_deref(), m[3].text()),
            (Role::Tool, Some("call_a"), "one".into())
        );
        assert_eq!(
            (m[4].tool_call_id.as_deref(), m[4].text()),
            (Some("call_b"), "two".into())
        );
    }

    #[test]
    fn function_tools_are_nested_and_hosted_tools_dropped() {
        let t = ok(
            json!({"model": "m", "input": "hi", "parallel_tool_calls": false, "tool_choice": "required",
            "tools": [{"type": "web_search"}, {"type": "web_search"},
                {"type": "function", "name": "f", "description": "d", "parameters": {"type": "object"}, "strict": true},
                {"type": "file_search", "vector_store_ids": []}]}),
        );
        assert_eq!(
            t.chat.tools,
            Some(vec![
                json!({"type": "function", "function": {"name": "f", "description": "d",
                "parameters": {"type": "object"}, "strict": true}})
            ])
        );
        assert_eq!(t.dropped_tools, ["web_search", "file_search"]);
        assert_eq!(t.chat.tool_choice, Some(json!("required")));
        assert_eq!(t.chat.extra["parallel_tool_calls"], json!(false));
        assert_eq!(t.echo.tools.len(), 1);
        // Only hosted tools: no tools and no tool_choice upstream.
        let t = ok(
            json!({"model": "m", "input": "hi", "tools": [{"type": "web_search"}], "tool_choice": "auto"}),
        );
        assert_eq!((t.chat.tools, t.chat.tool_choice), (None, None));
        assert_eq!(t.dropped_tools, ["web_search"]);
    }

    #[test]
    fn hosted_tools_are_refused_when_configured() {
        let body = json!({"model": "m", "input": "hi",
            "tools": [{"type": "function", "name": "f"}, {"type": "web_search_preview"}]});
        let e = translate(&body, true).unwrap_err();
        assert_eq!((e.code, e.param.as_str()), ("unsupported_tool", "tools[1].type"));
        assert!(e.message.contains("hosted"), "{}", e.message);
        assert_eq!(ok(body).dropped_tools, ["web_search_preview"]);
    }

    #[test]
    fn tool_choice_forms() {
        let tools = json!([{"type": "function", "name": "f"}, {"type": "function", "name": "g"}]);
        let t = ok(
            json!({"model": "m", "input": "hi", "tools": tools, "tool_choice": {"type": "function", "name": "g"}}),
        );
        assert_eq!(
            t.chat.tool_choice,
            Some(json!({"type": "function", "function": {"name": "g"}}))
        );
        let t = ok(json!({"model": "m", "input": "hi", "tools": tools,
            "tool_choice": {"type": "allowed_tools", "mode": "required", "tools": [{"type": "function", "name": "f"}]}}));
        assert_eq!(t.chat.tool_choice, Some(json!("required")));
        assert_eq!(t.chat.tools.unwrap().len(), 1);
        let e = rejected(
            json!({"model": "m", "input": "hi", "tools": tools, "tool_choice": {"type": "web_search"}}),
        );
        assert_eq!(
            (e.code, e.param.as_str()),
            ("unsupported_tool", "tool_choice.type")
        );
        let e = rejected(
            json!({"model": "m", "input": "hi", "tools": tools, "tool_choice": {"type": "function", "name": "h"}}),
        );
        assert_eq!(e.param, "tool_choice.name");
    }

    #[test]
    fn text_format_becomes_response_format() {
        let schema = json!({"type": "object", "properties": {"a": {"type": "string"}}});
        let t = ok(json!({"model": "m", "input": "hi",
            "text": {"format": {"type": "json_schema", "name": "s", "schema": schema, "strict": true}, "verbosity": "low"}}));
        assert_eq!(
            t.chat.extra["response_format"],
            json!({"type": "json_schema", "json_schema": {"name": "s", "schema": schema, "strict": true}})
        );
        assert_eq!(t.echo.text["format"]["name"], "s");
        let t = ok(json!({"model": "m", "input": "hi", "text": {"format": {"type": "json_object"}}}));
        assert_eq!(t.chat.extra["response_format"], json!({"type": "json_object"}));
        let t = ok(json!({"model": "m", "input": "hi", "text": {"format": {"type": "text"}}}));
        assert!(!t.chat.extra.contains_key("response_format"));
    }

    #[test]
    fn rejections_name_the_field() {
        for (body, code, param) in [
            (
                json!({"model": "m", "input": "hi", "previous_response_id": "resp_1"}),
                "previous_response_not_found",
                "previous_response_id",
            ),
            (
                json!({"model": "m", "input": "hi", "conversation": {"id": "c"}}),
                "previous_response_not_found",
                "conversation",
            ),
            (
                json!({"model": "m", "input": "hi", "background": true}),
                "unsupported_parameter",
                "background",
            ),
            (
                json!({"model": "m", "input": "hi", "background": "yes"}),
                "invalid_request",
                "background",
            ),
            (json!({"model": 3, "input": "hi"}), "invalid_request", "model"),
            (
                json!({"model": "m", "input": {"role": "user"}}),
                "invalid_request",
                "input",
            ),
            (
                json!({"model": "m", "input": ["hi"]}),
                "invalid_request",
                "input[0]",
            ),
            (
                json!({"model": "m", "input": [{"role": "robot", "content": "x"}]}),
                "invalid_request",
                "input[0].role",
            ),
            (
                json!({"model": "m", "input": [{"role": "user", "content": 5}]}),
                "invalid_request",
                "input[0].content",
            ),
            (
                json!({"model": "m", "input": [{"role": "user", "content": [{"type": "input_audio"}]}]}),
                "unsupported_content",
                "input[0].content[0].type",
            ),
            (
                json!({"model": "m", "input": [{"role": "user", "content": [{"type": "input_image", "file_id": "f"}]}]}),
                "unsupported_content",
                "input[0].content[0]",
            ),
            (
                json!({"model": "m", "input": [{"type": "function_call", "name": "f"}]}),
                "invalid_request",
                "input[0].call_id",
            ),
            (
                json!({"model": "m", "input": [{"type": "web_search_call", "id": "w"}]}),
                "unsupported_input_item",
                "input[0].type",
            ),
            (
                json!({"model": "m", "input": "hi", "tools": {"type": "function"}}),
                "invalid_request",
                "tools",
            ),
            (
                json!({"model": "m", "input": "hi", "tools": [{"type": "rocket"}]}),
                "unsupported_tool",
                "tools[0].type",
            ),
            (
                json!({"model": "m", "input": "hi", "tools": [{"type": "function", "name": "f", "parameters": "x"}]}),
                "invalid_request",
                "tools[0].parameters",
            ),
            (
                json!({"model": "m", "input": "hi", "max_output_tokens": 0}),
                "invalid_request",
                "max_output_tokens",
            ),
            (
                json!({"model": "m", "input": "hi", "top_p": "x"}),
                "invalid_request",
                "top_p",
            ),
            (
                json!({"model": "m", "input": "hi", "metadata": {"a": 1}}),
                "invalid_request",
                "metadata.a",
            ),
            (
                json!({"model": "m", "input": "hi", "text": {"format": {"type": "xml"}}}),
                "invalid_request",
                "text.format.type",
            ),
            (
                json!({"model": "m", "input": [{"type": "reasoning"}]}),
                "invalid_request",
                "input",
            ),
        ] {
            let e = rejected(body.clone());
            assert_eq!((e.code, e.param.as_str()), (code, param), "{body}: {}", e.message);
        }
    }

    fn answer(message: Message, finish: &str) -> ChatResponse {
        ChatResponse {
            id: "chatcmpl-1".into(),
            object: "chat.completion".into(),
            created: 1,
            model: "gpt-4o-mini".into(),
            choices: vec![Choice {
                index: 0,
                message,
                finish_reason: Some(finish.into()),
            }],
            usage: Some(Usage::new(10, 5)),
            raw: None,
        }
    }

    fn frame() -> Frame {
        Frame::new(Echo {
            tool_choice: json!("auto"),
            parallel_tool_calls: true,
            metadata: json!({}),
            text: json!({"format": {"type": "text"}}),
            ..Echo::default()
        })
    }

    #[test]
    fn a_text_answer_is_a_completed_message_with_usage() {
        let f = frame();
        let v = response_object(
            &f,
            &answer(Message::plain(Role::Assistant, "Hello".into()), "stop"),
        );
        assert_eq!(v["id"], f.id.as_str());
        assert!(f.id.starts_with("resp_"));
        assert_eq!(
            (v["object"].as_str(), v["status"].as_str()),
            (Some("response"), Some("completed"))
        );
        assert_eq!(v["model"], "gpt-4o-mini");
        assert_eq!(
            v["output"][0]["content"][0],
            json!({"type": "output_text", "text": "Hello", "annotations": [], "logprobs": []})
        );
        assert_eq!(v["usage"]["input_tokens"], 10);
        assert_eq!(v["usage"]["output_tokens"], 5);
        assert_eq!(v["usage"]["total_tokens"], 15);
        assert_eq!(v["usage"]["input_tokens_details"]["cache_write_tokens"], 0);
        assert!(v["incomplete_details"].is_null() && v["error"].is_null());
    }

    #[test]
    fn tool_calls_are_function_call_items_and_finish_reasons_map_to_status() {
        let mut m = Message::plain(Role::Assistant, String::new());
        m.content = None;
        m.tool_calls = Some(vec![
            ToolCall {
                id: "call_1".into(),
                kind: "function".into(),
                function: ToolFunction {
                    name: "f".into(),
                    arguments: "{\"a\":1}".into(),
                },
            },
            ToolCall {
                id: String::new(),
                kind: "function".into(),
                function: ToolFunction {
                    name: "g".into(),
                    arguments: "{}".into(),
                },
            },
        ]);
        let v = response_object(&frame(), &answer(m, "tool_calls"));
        let out = v["output"].as_array().unwrap();
        assert_eq!(out.len(), 2, "no message item for empty text: {v}");
        assert_eq!(
            (out[0]["type"].as_str(), out[0]["call_id"].as_str()),
            (Some("function_call"), Some("call_1"))
        );
        assert_eq!(out[0]["arguments"], "{\"a\":1}");
        assert!(out[0]["id"].as_str().unwrap().starts_with("fc_"));
        assert!(
            out[1]["call_id"].as_str().unwrap().starts_with("call_"),
            "a call without id gets one"
        );
        assert_eq!(v["status"], "completed");
        for (finish, status, reason) in [
            ("stop", "completed", Value::Null),
            ("tool_calls", "completed", Value::Null),
            ("function_call", "completed", Value::Null),
            ("length", "incomplete", json!({"reason": "max_output_tokens"})),
            (
                "content_filter",
                "incomplete",
                json!({"reason": "content_filter"}),
            ),
        ] {
            assert_eq!(status_of(Some(finish)), (status, reason), "{finish}");
        }
    }

    fn sse_types(s: &str) -> Vec<Value> {
        s.lines()
            .filter_map(|l| l.strip_prefix("data: "))
            .filter_map(|d| serde_json::from_str::<Value>(d).ok())
            .collect()
    }

    fn text_chunk(t: &str) -> ChatChunk {
        ChatChunk::with_delta(
            "c",
            1,
            "m",
            Delta {
                content: Some(t.into()),
                ..Delta::default()
            },
            None,
        )
    }

    fn call_chunk(index: u32, id: Option<&str>, name: Option<&str>, args: &str) -> ChatChunk {
        let mut f = json!({"arguments": args});
        if let Some(n) = name {
            f["name"] = json!(n);
        }
        let delta = Delta {
            tool_calls: Some(vec![ToolCallDelta {
                index,
                id: id.map(str::to_string),
                kind: None,
                function: Some(f),
            }]),
            ..Delta::default()
        };
        ChatChunk::with_delta("c", 1, "m", delta, None)
    }

    #[test]
    fn a_stream_of_text_then_calls_is_the_event_grammar() {
        let mut w = StreamWriter::new(frame());
        let mut out = String::new();
        out += &w.chunk(&text_chunk("Check"));
        out += &w.chunk(&text_chunk("ing."));
        out += &w.chunk(&call_chunk(0, Some("call_1"), Some("f"), "{\"a\""));
        out += &w.chunk(&call_chunk(1, Some("call_2"), Some("g"), "{}"));
        out += &w.chunk(&call_chunk(0, None, None, ":1}"));
        let mut last = ChatChunk::with_delta("c", 1, "m", Delta::default(), Some("tool_calls".into()));
        last.usage = Some(Usage::new(7, 3));
        out += &w.chunk(&last);
        out += &w.complete();
        assert!(out.ends_with("data: [DONE]\n\n"));
        let evs = sse_types(&out);
        let types: Vec<&str> = evs.iter().map(|v| v["type"].as_str().unwrap()).collect();
        assert_eq!(
            types,
            [
                "response.created",
                "response.in_progress",
                "response.output_item.added",
                "response.content_part.added",
                "response.output_text.delta",
                "response.output_text.delta",
                "response.output_text.done",
                "response.content_part.done",
                "response.output_item.done",
                "response.output_item.added",
                "response.function_call_arguments.delta",
                "response.output_item.added",
                "response.function_call_arguments.delta",
                "response.function_call_arguments.delta",
                "response.function_call_arguments.done",
                "response.output_item.done",
                "response.function_call_arguments.done",
                "response.output_item.done",
                "response.completed",
            ]
        );
        for (i, v) in evs.iter().enumerate() {
            assert_eq!(v["sequence_number"], i, "{v}");
        }
        let done = &evs.last().unwrap()["response"];
        assert_eq!(done["status"], "completed");
        assert_eq!(done["output"][0]["content"][0]["text"], "Checking.");
        assert_eq!(done["output"][1]["arguments"], "{\"a\":1}");
        assert_eq!(done["output"][1]["call_id"], "call_1");
        assert_eq!(done["output"][2]["name"], "g");
        assert_eq!(done["usage"]["total_tokens"], 10);
        // Interleaved argument deltas name their own items.
        assert_eq!(evs[13]["output_index"], 1);
        assert_eq!(evs[13]["item_id"], done["output"][1]["id"]);
    }

    #[test]
    fn a_stream_cut_at_length_is_incomplete_and_a_broken_one_failed() {
        let mut w = StreamWriter::new(frame());
        let mut out = w.chunk(&text_chunk("Hel"));
        out += &w.chunk(&ChatChunk::with_delta(
            "c",
            1,
            "m",
            Delta::default(),
            Some("length".into()),
        ));
        out += &w.complete();
        let evs = sse_types(&out);
        let end = &evs.last().unwrap();
        assert_eq!(end["type"], "response.incomplete");
        assert_eq!(
            end["response"]["incomplete_details"]["reason"],
            "max_output_tokens"
        );

        let mut w = StreamWriter::new(frame());
        let mut out = w.chunk(&text_chunk("Hel"));
        out += &w.fail("upstream_stream_broken", "kimi stopped", "server_error");
        assert!(!out.contains("[DONE]") && !out.contains("response.completed"));
        let evs = sse_types(&out);
        let n = evs.len();
        assert_eq!(evs[n - 2]["type"], "error");
        assert_eq!(evs[n - 2]["error"]["code"], "upstream_stream_broken");
        assert_eq!(evs[n - 1]["type"], "response.failed");
        assert_eq!(evs[n - 1]["response"]["error"]["code"], "server_error");
        assert_eq!(evs[n - 1]["response"]["output"][0]["status"], "incomplete");
        assert_eq!(evs[n - 1]["response"]["output"][0]["content"][0]["text"], "Hel");
    }

    #[test]
    fn chunks_of_other_choices_and_empty_deltas_open_nothing() {
        let mut w = StreamWriter::new(frame());
        let mut c = text_chunk("x");
        if let Some(ChunkChoice { index, .. }) = c.choices.first_mut() {
            *index = 1;
        }
        let out = w.chunk(&c) + &w.chunk(&text_chunk(""));
        let types: Vec<Value> = sse_types(&out).into_iter().map(|v| v["type"].clone()).collect();
        assert_eq!(types, [json!("response.created"), json!("response.in_progress")]);
    }
}
