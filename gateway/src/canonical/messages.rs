//! Anthropic Messages (`POST /v1/messages`, `/v1/messages/count_tokens`) to and from the canonical chat types
//! (`../shared/AGENT_APIS.md` §2): [`translate`] turns a Messages request into a [`ChatRequest`],
//! [`message_object`] a [`ChatResponse`] into the Messages object, [`StreamWriter`] the chunks of a streamed
//! answer into the Messages event grammar (`message_start` ... `message_stop`).

use serde_json::{json, Map, Value};

use super::fields::{bad, opt_bool, opt_number, present, str_field, type_name, unsupported, Rejected};
use super::{new_id, ChatChunk, ChatRequest, ChatResponse, Message, Role, ToolCall, ToolFunction, Usage};

/// What the request is for: an answer needs `max_tokens` (Anthropic requires it); a token count does not.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Purpose {
    /// `POST /v1/messages`.
    Answer,
    /// `POST /v1/messages/count_tokens`.
    Count,
}

/// A Messages request in canonical form.
#[derive(Debug, Clone)]
pub struct Translated {
    /// The chat request for the pipeline.
    pub chat: ChatRequest,
    /// The model id as the client sent it (the answer echoes it, as Anthropic does).
    pub model: String,
}

/// Prefix of a `tool_result` with `is_error: true`: chat's tool message has no error flag.
pub const TOOL_ERROR_PREFIX: &str = "[tool error] ";

/// Typed tools Anthropic runs on its side; no provider behind the gateway can.
fn is_server_tool(kind: &str) -> bool {
    [
        "web_search",
        "web_fetch",
        "code_execution",
        "bash",
        "text_editor",
        "computer",
        "tool_search",
        "memory",
        "mcp",
    ]
    .iter()
    .any(|p| kind.starts_with(p))
}

/// Translates a Messages request body to the canonical chat request.
pub fn translate(body: &Value, purpose: Purpose) -> Result<Translated, Rejected> {
    let Some(body) = body.as_object() else {
        return Err(bad("", "request body must be a JSON object"));
    };
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
    let max_tokens = match (present(body, "max_tokens"), purpose) {
        (_, Purpose::Count) => None,
        (None, Purpose::Answer) => {
            return Err(bad("max_tokens", "'max_tokens' is required"));
        }
        (Some(v), Purpose::Answer) => match v.as_u64() {
            Some(n) if n >= 1 => Some(u32::try_from(n).unwrap_or(u32::MAX)),
            _ => {
                return Err(bad(
                    "max_tokens",
                    format!("'max_tokens' must be a positive integer, not {v}"),
                ))
            }
        },
    };
    if let Some(servers) = present(body, "mcp_servers") {
        if servers.as_array().is_none_or(|a| !a.is_empty()) {
            return Err(unsupported(
                "unsupported_parameter",
                "mcp_servers",
                "'mcp_servers' (the MCP connector run on Anthropic's side) is not supported: the providers behind \
                 the gateway cannot call MCP servers; declare the tools in 'tools'",
            ));
        }
    }
    let stream = purpose == Purpose::Answer && opt_bool(body, "stream")?.unwrap_or(false);
    let mut messages = Vec::new();
    if let Some(text) = system(body)? {
        messages.push(Message::plain(Role::System, text));
    }
    match body.get("messages") {
        Some(Value::Array(list)) if !list.is_empty() => {
            for (i, m) in list.iter().enumerate() {
                turn(m, &format!("messages[{i}]"), &mut messages)?;
            }
        }
        Some(Value::Array(_)) => return Err(bad("messages", "'messages' must not be empty")),
        None | Some(Value::Null) => return Err(bad("messages", "'messages' is required")),
        Some(v) => {
            return Err(bad(
                "messages",
                format!("'messages' must be an array, not {}", type_name(v)),
            ))
        }
    }
    if messages.iter().all(|m| m.role == Role::System) {
        return Err(bad(
            "messages",
            "'messages' has no user or assistant content: the prompt is empty",
        ));
    }
    let temperature = unit_interval(body, "temperature")?;
    let top_p = unit_interval(body, "top_p")?;
    if let Some(v) = present(body, "top_k") {
        if v.as_u64().is_none() {
            return Err(bad(
                "top_k",
                format!("'top_k' must be a non-negative integer, not {v}"),
            ));
        }
    }
    let stop = stop_sequences(body)?;
    let tools = tools(body)?;
    let (tool_choice, parallel) = tool_choice(body, tools.as_deref())?;
    let mut extra = Map::new();
    if stream {
        extra.insert("stream_options".into(), json!({"include_usage": true}));
    }
    if let Some(f) = output_format(body)? {
        extra.insert("response_format".into(), f);
    }
    if let (Some(p), Some(_)) = (parallel, &tools) {
        extra.insert("parallel_tool_calls".into(), Value::Bool(p));
    }
    let chat = ChatRequest {
        model: model.clone(),
        messages,
        stream,
        temperature,
        top_p,
        max_tokens,
        max_completion_tokens: None,
        stop,
        seed: None,
        tool_choice: if tools.is_some() { tool_choice } else { None },
        tools,
        extra,
    };
    Ok(Translated { chat, model })
}

/// `temperature` and `top_p`: Anthropic takes 0 to 1.
fn unit_interval(body: &Map<String, Value>, key: &str) -> Result<Option<f64>, Rejected> {
    let v = opt_number(body, key)?;
    if v.is_some_and(|x| !(0.0..=1.0).contains(&x)) {
        return Err(bad(key, format!("'{key}' must be between 0 and 1")));
    }
    Ok(v)
}

/// `system`: a string or text blocks, as one system message (blocks joined by a blank line).
fn system(body: &Map<String, Value>) -> Result<Option<String>, Rejected> {
    let text = match present(body, "system") {
        None => return Ok(None),
        Some(Value::String(s)) => s.clone(),
        Some(Value::Array(blocks)) => {
            let mut texts = Vec::with_capacity(blocks.len());
            for (i, b) in blocks.iter().enumerate() {
                texts.push(text_block(b, &format!("system[{i}]"))?);
            }
            texts.join("\n\n")
        }
        Some(v) => {
            return Err(bad(
                "system",
                format!(
                    "'system' must be a string or an array of text blocks, not {}",
                    type_name(v)
                ),
            ))
        }
    };
    Ok((!text.trim().is_empty()).then_some(text))
}

/// A block that must be `{type: "text", text}`; its text.
fn text_block(b: &Value, at: &str) -> Result<String, Rejected> {
    let Some(obj) = b.as_object() else {
        return Err(bad(at, format!("'{at}' must be an object, not {}", type_name(b))));
    };
    match str_field(obj, "type", at)? {
        "text" => Ok(str_field(obj, "text", at)?.to_string()),
        other => Err(unsupported(
            "unsupported_content",
            format!("{at}.type"),
            format!("'{at}': only text blocks are allowed here, not '{other}'"),
        )),
    }
}

/// One entry of `messages`, appended to `out` as chat messages.
fn turn(m: &Value, at: &str, out: &mut Vec<Message>) -> Result<(), Rejected> {
    let Some(obj) = m.as_object() else {
        return Err(bad(at, format!("'{at}' must be an object, not {}", type_name(m))));
    };
    let role = str_field(obj, "role", at)?;
    let blocks: Vec<Value> = match obj.get("content") {
        Some(Value::String(s)) => vec![json!({"type": "text", "text": s})],
        Some(Value::Array(b)) => b.clone(),
        None | Some(Value::Null) => {
            return Err(bad(
                format!("{at}.content"),
                format!("'{at}.content' is required"),
            ));
        }
        Some(v) => {
            return Err(bad(
                format!("{at}.content"),
                format!(
                    "'{at}.content' must be a string or an array of blocks, not {}",
                    type_name(v)
                ),
            ))
        }
    };
    match role {
        "user" => user_turn(&blocks, at, out),
        "assistant" => assistant_turn(&blocks, at, out),
        // The 2026 SDK types mid-conversation system entries; Claude Code sends one.
        "system" => {
            let mut texts = Vec::new();
            for (j, b) in blocks.iter().enumerate() {
                texts.push(text_block(b, &format!("{at}.content[{j}]"))?);
            }
            let text = texts.join("\n\n");
            if !text.trim().is_empty() {
                out.push(Message::plain(Role::System, text));
            }
            Ok(())
        }
        other => Err(bad(
            format!("{at}.role"),
            format!("'{at}.role' must be user or assistant, not '{other}'"),
        )),
    }
}

fn block_kind<'a>(b: &'a Value, at: &str) -> Result<(&'a Map<String, Value>, &'a str), Rejected> {
    let Some(obj) = b.as_object() else {
        return Err(bad(at, format!("'{at}' must be an object, not {}", type_name(b))));
    };
    Ok((obj, str_field(obj, "type", at)?))
}

/// Content blocks nobody behind the gateway can take: a 400 naming the block.
fn unsupported_block(kind: &str, at: &str) -> Rejected {
    unsupported(
        "unsupported_content",
        format!("{at}.type"),
        format!("'{at}': content blocks of type '{kind}' are not supported by the gateway's providers"),
    )
}

/// A user turn: its `tool_result` blocks become tool messages first (chat wants them right after the
/// assistant's calls), then the rest (and images out of tool results) one user message.
fn user_turn(blocks: &[Value], at: &str, out: &mut Vec<Message>) -> Result<(), Rejected> {
    let mut parts = Vec::new();
    let mut tool_images = Vec::new();
    for (j, b) in blocks.iter().enumerate() {
        let at = format!("{at}.content[{j}]");
        let (obj, kind) = block_kind(b, &at)?;
        match kind {
            "tool_result" => {
                let id = str_field(obj, "tool_use_id", &at)?;
                let mut texts = Vec::new();
                match obj.get("content") {
                    None | Some(Value::Null) => {}
                    Some(Value::String(s)) => texts.push(s.clone()),
                    Some(Value::Array(inner)) => {
                        for (k, ib) in inner.iter().enumerate() {
                            let iat = format!("{at}.content[{k}]");
                            let part = content_block(ib, &iat)?;
                            match part {
                                Some(p) if p["type"] == "text" => {
                                    texts.push(p["text"].as_str().unwrap_or_default().to_string())
                                }
                                Some(p) => tool_images.push(p),
                                None => {}
                            }
                        }
                    }
                    Some(v) => {
                        return Err(bad(
                            format!("{at}.content"),
                            format!(
                                "'{at}.content' must be a string or an array of blocks, not {}",
                                type_name(v)
                            ),
                        ))
                    }
                }
                let is_error = match obj.get("is_error") {
                    None | Some(Value::Null) => false,
                    Some(Value::Bool(e)) => *e,
                    Some(v) => {
                        return Err(bad(
                            format!("{at}.is_error"),
                            format!("'{at}.is_error' must be a boolean, not {}", type_name(v)),
                        ))
                    }
                };
                let mut text = texts.join("\n");
                if is_error {
                    text.insert_str(0, TOOL_ERROR_PREFIX);
                }
                out.push(Message {
                    role: Role::Tool,
                    content: Some(Value::String(text)),
                    name: None,
                    tool_calls: None,
                    tool_call_id: Some(id.to_string()),
                    extra: Map::new(),
                });
            }
            "tool_use" => {
                return Err(bad(
                    format!("{at}.type"),
                    format!("'{at}': tool_use blocks belong in assistant turns"),
                ))
            }
            _ => {
                if let Some(p) = content_block(b, &at)? {
                    parts.push(p);
                }
            }
        }
    }
    tool_images.extend(parts);
    let parts = tool_images;
    if parts.is_empty() {
        return Ok(());
    }
    let content = if parts.iter().all(|p| p["type"] == "text") {
        // Text only: one string, which every provider takes.
        let texts: Vec<&str> = parts.iter().filter_map(|p| p["text"].as_str()).collect();
        Value::String(texts.join("\n\n"))
    } else {
        Value::Array(parts)
    };
    out.push(Message {
        role: Role::User,
        content: Some(content),
        name: None,
        tool_calls: None,
        tool_call_id: None,
        extra: Map::new(),
    });
    Ok(())
}

/// A text, image or document block as a chat content part; `None` for what is dropped when translating
/// (thinking blocks of earlier turns).
fn content_block(b: &Value, at: &str) -> Result<Option<Value>, Rejected> {
    let (obj, kind) = block_kind(b, at)?;
    match kind {
        "text" => Ok(Some(json!({"type": "text", "text": str_field(obj, "text", at)?}))),
        "image" => {
            let src_at = format!("{at}.source");
            let Some(Value::Object(src)) = obj.get("source") else {
                return Err(bad(&src_at, format!("'{src_at}' must be an object")));
            };
            let url = match str_field(src, "type", &src_at)? {
                "base64" => {
                    let media = str_field(src, "media_type", &src_at)?;
                    let data = str_field(src, "data", &src_at)?;
                    format!("data:{media};base64,{data}")
                }
                "url" => str_field(src, "url", &src_at)?.to_string(),
                other => {
                    return Err(unsupported(
                        "unsupported_content",
                        format!("{src_at}.type"),
                        format!(
                        "'{src_at}': image sources of type '{other}' are not supported (send base64 or url)"
                    ),
                    ))
                }
            };
            Ok(Some(json!({"type": "image_url", "image_url": {"url": url}})))
        }
        "document" => {
            let src = obj.get("source").and_then(Value::as_object);
            match src.map(|s| (s.get("type").and_then(Value::as_str), s.get("data"))) {
                Some((Some("text"), Some(Value::String(text)))) => {
                    Ok(Some(json!({"type": "text", "text": text})))
                }
                _ => Err(unsupported(
                    "unsupported_content",
                    format!("{at}.source"),
                    format!("'{at}': only plain-text documents (source.type text) are supported"),
                )),
            }
        }
        "thinking" | "redacted_thinking" => Ok(None),
        other => Err(unsupported_block(other, at)),
    }
}

/// An assistant turn: its text as content, its `tool_use` blocks as tool calls.
fn assistant_turn(blocks: &[Value], at: &str, out: &mut Vec<Message>) -> Result<(), Rejected> {
    let mut texts = Vec::new();
    let mut calls = Vec::new();
    for (j, b) in blocks.iter().enumerate() {
        let at = format!("{at}.content[{j}]");
        let (obj, kind) = block_kind(b, &at)?;
        match kind {
            "text" => texts.push(str_field(obj, "text", &at)?.to_string()),
            "tool_use" => {
                let id = str_field(obj, "id", &at)?;
                let name = str_field(obj, "name", &at)?;
                let arguments = match obj.get("input") {
                    None | Some(Value::Null) => "{}".to_string(),
                    Some(v @ Value::Object(_)) => v.to_string(),
                    Some(v) => {
                        return Err(bad(
                            format!("{at}.input"),
                            format!("'{at}.input' must be an object, not {}", type_name(v)),
                        ))
                    }
                };
                calls.push(ToolCall {
                    id: id.to_string(),
                    kind: "function".into(),
                    function: ToolFunction {
                        name: name.to_string(),
                        arguments,
                    },
                });
            }
            "thinking" | "redacted_thinking" => {}
            "tool_result" => {
                return Err(bad(
                    format!("{at}.type"),
                    format!("'{at}': tool_result blocks belong in user turns"),
                ))
            }
            other => return Err(unsupported_block(other, &at)),
        }
    }
    if texts.is_empty() && calls.is_empty() {
        return Ok(());
    }
    let text = texts.join("\n\n");
    out.push(Message {
        role: Role::Assistant,
        content: (!text.is_empty() || calls.is_empty()).then_some(Value::String(text)),
        name: None,
        tool_calls: (!calls.is_empty()).then_some(calls),
        tool_call_id: None,
        extra: Map::new(),
    });
    Ok(())
}

/// `stop_sequences` as chat's `stop`.
fn stop_sequences(body: &Map<String, Value>) -> Result<Option<Value>, Rejected> {
    match present(body, "stop_sequences") {
        None => Ok(None),
        Some(Value::Array(list)) => {
            if let Some(i) = list.iter().position(|s| !s.is_string()) {
                return Err(bad(
                    format!("stop_sequences[{i}]"),
                    format!("'stop_sequences[{i}]' must be a string"),
                ));
            }
            Ok((!list.is_empty()).then(|| Value::Array(list.clone())))
        }
        Some(v) => Err(bad(
            "stop_sequences",
            format!(
                "'stop_sequences' must be an array of strings, not {}",
                type_name(v)
            ),
        )),
    }
}

/// Client tools as chat function tools; Anthropic's own typed tools are a 400.
fn tools(body: &Map<String, Value>) -> Result<Option<Vec<Value>>, Rejected> {
    let list = match present(body, "tools") {
        None => return Ok(None),
        Some(Value::Array(a)) => a,
        Some(v) => {
            return Err(bad(
                "tools",
                format!("'tools' must be an array, not {}", type_name(v)),
            ))
        }
    };
    let mut chat = Vec::with_capacity(list.len());
    for (i, t) in list.iter().enumerate() {
        let at = format!("tools[{i}]");
        let Some(obj) = t.as_object() else {
            return Err(bad(
                &at,
                format!("'{at}' must be an object, not {}", type_name(t)),
            ));
        };
        match obj.get("type") {
            None | Some(Value::Null) => {}
            Some(Value::String(k)) if k == "custom" => {}
            Some(Value::String(k)) => {
                let why = if is_server_tool(k) {
                    "a tool Anthropic runs on its side, which the providers behind the gateway cannot run"
                } else {
                    "not a tool type the gateway knows"
                };
                return Err(unsupported(
                    "unsupported_tool",
                    format!("{at}.type"),
                    format!("'{at}': tools of type '{k}' are not supported: {why}; declare it as a client tool with input_schema"),
                ));
            }
            Some(v) => {
                return Err(bad(
                    format!("{at}.type"),
                    format!("'{at}.type' must be a string, not {}", type_name(v)),
                ))
            }
        }
        let name = str_field(obj, "name", &at)?;
        let mut function = json!({"name": name});
        match obj.get("description") {
            None | Some(Value::Null) => {}
            Some(d @ Value::String(_)) => function["description"] = d.clone(),
            Some(v) => {
                return Err(bad(
                    format!("{at}.description"),
                    format!("'{at}.description' must be a string, not {}", type_name(v)),
                ))
            }
        }
        match obj.get("input_schema") {
            Some(s @ Value::Object(_)) => function["parameters"] = s.clone(),
            None | Some(Value::Null) => {
                return Err(bad(
                    format!("{at}.input_schema"),
                    format!("'{at}.input_schema' is required"),
                ))
            }
            Some(v) => {
                return Err(bad(
                    format!("{at}.input_schema"),
                    format!(
                        "'{at}.input_schema' must be a JSON schema object, not {}",
                        type_name(v)
                    ),
                ))
            }
        }
        if let Some(Value::Bool(s)) = obj.get("strict") {
            function["strict"] = Value::Bool(*s);
        }
        chat.push(json!({"type": "function", "function": function}));
    }
    Ok((!chat.is_empty()).then_some(chat))
}

/// `tool_choice` in chat's form, and `parallel_tool_calls` from `disable_parallel_tool_use`.
fn tool_choice(
    body: &Map<String, Value>,
    tools: Option<&[Value]>,
) -> Result<(Option<Value>, Option<bool>), Rejected> {
    let Some(choice) = present(body, "tool_choice") else {
        return Ok((None, None));
    };
    let Some(obj) = choice.as_object() else {
        return Err(bad(
            "tool_choice",
            format!(
                "'tool_choice' must be an object such as {{\"type\": \"auto\"}}, not {}",
                type_name(choice)
            ),
        ));
    };
    let parallel = match obj.get("disable_parallel_tool_use") {
        None | Some(Value::Null) => None,
        Some(Value::Bool(d)) => Some(!d),
        Some(v) => {
            return Err(bad(
                "tool_choice.disable_parallel_tool_use",
                format!(
                    "'tool_choice.disable_parallel_tool_use' must be a boolean, not {}",
                    type_name(v)
                ),
            ))
        }
    };
    let chat = match str_field(obj, "type", "tool_choice")? {
        "auto" => json!("auto"),
        "any" => json!("required"),
        "none" => json!("none"),
        "tool" => {
            let name = str_field(obj, "name", "tool_choice")?;
            let known = tools
                .into_iter()
                .flatten()
                .any(|t| t.pointer("/function/name").and_then(Value::as_str) == Some(name));
            if !known {
                return Err(bad(
                    "tool_choice.name",
                    format!("'tool_choice.name' names '{name}', which is not a tool in 'tools'"),
                ));
            }
            json!({"type": "function", "function": {"name": name}})
        }
        other => {
            return Err(bad(
                "tool_choice.type",
                format!("'tool_choice.type' must be auto, any, tool or none, not '{other}'"),
            ))
        }
    };
    Ok((Some(chat), parallel))
}

/// `output_config.format` (json_schema) as chat's `response_format`; `effort` is not translated.
fn output_format(body: &Map<String, Value>) -> Result<Option<Value>, Rejected> {
    let Some(cfg) = present(body, "output_config") else {
        return Ok(None);
    };
    let Some(cfg) = cfg.as_object() else {
        return Err(bad(
            "output_config",
            format!("'output_config' must be an object, not {}", type_name(cfg)),
        ));
    };
    let Some(format) = present(cfg, "format") else {
        return Ok(None);
    };
    let Some(format) = format.as_object() else {
        return Err(bad(
            "output_config.format",
            "'output_config.format' must be an object",
        ));
    };
    match str_field(format, "type", "output_config.format")? {
        "json_schema" => match format.get("schema") {
            Some(schema @ Value::Object(_)) => Ok(Some(json!({"type": "json_schema",
                "json_schema": {"name": "output", "schema": schema, "strict": true}}))),
            _ => Err(bad(
                "output_config.format.schema",
                "'output_config.format.schema' must be a JSON schema object",
            )),
        },
        other => Err(bad(
            "output_config.format.type",
            format!("'output_config.format.type' must be json_schema, not '{other}'"),
        )),
    }
}

/// A Messages id: `prefix_` and 24 hex digits.
pub fn new_msg_id(prefix: &str) -> String {
    new_id(prefix).replacen('-', "_", 1)
}

/// `stop_reason` for a chat `finish_reason`.
pub fn stop_reason(finish: Option<&str>) -> &'static str {
    match finish {
        Some("length") => "max_tokens",
        Some("tool_calls" | "function_call") => "tool_use",
        Some("content_filter" | "blacklist") => "refusal",
        _ => "end_turn",
    }
}

/// Chat usage as Messages usage.
pub fn usage_of(u: Option<&Usage>) -> Value {
    let (input, output) = u.map_or((0, 0), |u| (u.prompt_tokens, u.completion_tokens));
    json!({"input_tokens": input, "output_tokens": output,
           "cache_read_input_tokens": 0, "cache_creation_input_tokens": 0})
}

/// A tool call's arguments as the `input` object; arguments that are not a JSON object are kept as a string
/// under `_raw_arguments`, so nothing of the answer is lost.
fn tool_input(arguments: &str) -> Value {
    if arguments.trim().is_empty() {
        return json!({});
    }
    match serde_json::from_str::<Value>(arguments) {
        Ok(v @ Value::Object(_)) => v,
        _ => {
            tracing::debug!("tool call arguments are not a JSON object; kept as _raw_arguments");
            json!({"_raw_arguments": arguments})
        }
    }
}

fn tool_use_id(id: &str) -> String {
    if id.is_empty() {
        new_msg_id("toolu")
    } else {
        id.to_string()
    }
}

/// A non-stream chat answer as the Messages object; `model` is the id the client asked for.
pub fn message_object(model: &str, resp: &ChatResponse) -> Value {
    let choice = resp.choices.first();
    let mut content = Vec::new();
    if let Some(c) = choice {
        let text = c.message.text();
        if !text.is_empty() {
            content.push(json!({"type": "text", "text": text}));
        }
        for call in c.message.tool_calls.iter().flatten() {
            content.push(json!({"type": "tool_use", "id": tool_use_id(&call.id),
                "name": call.function.name, "input": tool_input(&call.function.arguments)}));
        }
    }
    json!({
        "id": new_msg_id("msg"),
        "type": "message",
        "role": "assistant",
        "model": model,
        "content": content,
        "stop_reason": stop_reason(choice.and_then(|c| c.finish_reason.as_deref())),
        "stop_sequence": null,
        "usage": usage_of(resp.usage.as_ref()),
    })
}

/// The block open in a stream.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Open {
    Text,
    /// A `tool_use` block fed by the chat tool call of this index.
    Tool(u32),
}

/// The Messages event grammar of a streamed answer, written event by event: feed it the chunks, then end it
/// with [`StreamWriter::complete`] or [`StreamWriter::fail`]. Each method returns the SSE bytes to send.
#[derive(Debug)]
pub struct StreamWriter {
    id: String,
    model: String,
    started: bool,
    open: Option<Open>,
    /// Index of the open block, or of the next one when none is open.
    index: u32,
    finish: Option<String>,
    usage: Option<Usage>,
}

fn event(out: &mut String, name: &str, data: &Value) {
    out.push_str("event: ");
    out.push_str(name);
    out.push_str("\ndata: ");
    out.push_str(&data.to_string());
    out.push_str("\n\n");
}

/// A keepalive (`ping`), valid between any two events.
pub const PING: &str = "event: ping\ndata: {\"type\":\"ping\"}\n\n";

impl StreamWriter {
    /// A writer for one answer; `model` is the id the client asked for.
    pub fn new(model: String) -> StreamWriter {
        StreamWriter {
            id: new_msg_id("msg"),
            model,
            started: false,
            open: None,
            index: 0,
            finish: None,
            usage: None,
        }
    }

    fn start(&mut self, out: &mut String) {
        if self.started {
            return;
        }
        self.started = true;
        let usage = json!({"input_tokens": self.usage.map_or(0, |u| u.prompt_tokens), "output_tokens": 0});
        let message = json!({"id": self.id, "type": "message", "role": "assistant", "model": self.model,
            "content": [], "stop_reason": null, "stop_sequence": null, "usage": usage});
        event(
            out,
            "message_start",
            &json!({"type": "message_start", "message": message}),
        );
        out.push_str(PING);
    }

    fn close(&mut self, out: &mut String) {
        if self.open.take().is_some() {
            event(
                out,
                "content_block_stop",
                &json!({"type": "content_block_stop", "index": self.index}),
            );
            self.index += 1;
        }
    }

    fn open_block(&mut self, out: &mut String, kind: Open, block: Value) {
        self.close(out);
        self.open = Some(kind);
        event(
            out,
            "content_block_start",
            &json!({"type": "content_block_start", "index": self.index, "content_block": block}),
        );
    }

    fn delta(&self, out: &mut String, delta: Value) {
        event(
            out,
            "content_block_delta",
            &json!({"type": "content_block_delta", "index": self.index, "delta": delta}),
        );
    }

    /// The events of one chunk (the first one also opens the message).
    pub fn chunk(&mut self, chunk: &ChatChunk) -> String {
        let mut out = String::new();
        if let Some(u) = chunk.usage {
            self.usage = Some(u);
        }
        self.start(&mut out);
        let Some(choice) = chunk.choices.iter().find(|c| c.index == 0) else {
            return out;
        };
        if let Some(text) = choice.delta.content.as_deref().filter(|t| !t.is_empty()) {
            if self.open != Some(Open::Text) {
                self.open_block(&mut out, Open::Text, json!({"type": "text", "text": ""}));
            }
            self.delta(&mut out, json!({"type": "text_delta", "text": text}));
        }
        for tc in choice.delta.tool_calls.iter().flatten() {
            let f = tc.function.as_ref();
            let field = |k: &str| f.and_then(|f| f.get(k)).and_then(Value::as_str);
            if self.open != Some(Open::Tool(tc.index)) {
                let id = tool_use_id(tc.id.as_deref().unwrap_or(""));
                let name = field("name").unwrap_or_default();
                self.open_block(
                    &mut out,
                    Open::Tool(tc.index),
                    json!({"type": "tool_use", "id": id, "name": name, "input": {}}),
                );
            }
            if let Some(args) = field("arguments").filter(|a| !a.is_empty()) {
                self.delta(
                    &mut out,
                    json!({"type": "input_json_delta", "partial_json": args}),
                );
            }
        }
        if let Some(f) = &choice.finish_reason {
            self.finish = Some(f.clone());
        }
        out
    }

    /// The clean end: the open block closed, `message_delta` with the stop reason and usage, `message_stop`.
    pub fn complete(&mut self) -> String {
        let mut out = String::new();
        self.start(&mut out);
        self.close(&mut out);
        let usage = self.usage.map_or(
            json!({"output_tokens": 0}),
            |u| json!({"input_tokens": u.prompt_tokens, "output_tokens": u.completion_tokens}),
        );
        event(
            &mut out,
            "message_delta",
            &json!({"type": "message_delta",
                "delta": {"stop_reason": stop_reason(self.finish.as_deref()), "stop_sequence": null},
                "usage": usage}),
        );
        event(&mut out, "message_stop", &json!({"type": "message_stop"}));
        out
    }

    /// The end of a broken stream: `event: error` with an Anthropic error type (`overloaded_error`, which
    /// clients retry, or `api_error`); never `message_delta` or `message_stop`.
    pub fn fail(&mut self, kind: &str, message: &str) -> String {
        let mut out = String::new();
        event(
            &mut out,
            "error",
            &json!({"type": "error", "error": {"type": kind, "message": message}}),
        );
        out
    }
}

#[cfg(test)]
mod tests;
