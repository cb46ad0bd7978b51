//! GigaChat wire <-> canonical: roles, `functions`, object arguments, `blacklist`.

use std::collections::HashMap;

use serde_json::{json, Map, Value};

use crate::canonical::{
    new_id, unix_now, ChatChunk, ChatRequest, ChatResponse, Choice, ChunkChoice, Delta, Message, Role,
    ToolCall, ToolCallDelta, ToolFunction, Usage,
};
use crate::providers::error::{ErrorClass, ProviderError};

/// Request extras GigaChat understands and OpenAI clients may pass through.
const PASS_THROUGH: [&str; 4] = ["repetition_penalty", "update_interval", "profanity_check", "n"];

/// Canonical request to the GigaChat v1 body.
pub(crate) fn request(req: &ChatRequest, model: &str, stream: bool) -> Value {
    let mut names: HashMap<String, String> = HashMap::new();
    let mut messages = Vec::with_capacity(req.messages.len());
    // GigaChat takes at most one system message, and only first (else 422): merge them all into one.
    let system: Vec<String> = req
        .messages
        .iter()
        .filter(|m| matches!(m.role, Role::System | Role::Developer))
        .map(|m| m.text())
        .collect();
    if !system.is_empty() {
        messages.push(json!({"role": "system", "content": system.join("\n\n")}));
    }
    for m in req
        .messages
        .iter()
        .filter(|m| !matches!(m.role, Role::System | Role::Developer))
    {
        let mut out = Map::new();
        let role = match m.role {
            Role::System | Role::Developer => "system",
            Role::User => "user",
            Role::Assistant => "assistant",
            Role::Tool | Role::Function => "function",
        };
        out.insert("role".into(), json!(role));
        let text = m.text();
        match m.role {
            Role::Tool | Role::Function => {
                // GigaChat wants a JSON object serialized as a string, plus the function name.
                let content = match serde_json::from_str::<Value>(&text) {
                    Ok(Value::Object(_)) => text,
                    _ => json!({ "result": text }).to_string(),
                };
                out.insert("content".into(), json!(content));
                let name = m
                    .name
                    .clone()
                    .or_else(|| m.tool_call_id.as_ref().and_then(|id| names.get(id).cloned()));
                if let Some(name) = name {
                    out.insert("name".into(), json!(name));
                }
            }
            _ => {
                out.insert("content".into(), json!(text));
            }
        }
        if let Some(call) = m.tool_calls.as_ref().and_then(|c| c.first()) {
            for c in m.tool_calls.iter().flatten() {
                names.insert(c.id.clone(), c.function.name.clone());
            }
            let args: Value = serde_json::from_str(&call.function.arguments).unwrap_or_else(|_| json!({}));
            out.insert(
                "function_call".into(),
                json!({"name": call.function.name, "arguments": args}),
            );
        }
        if let Some(id) = m.extra.get("functions_state_id") {
            out.insert("functions_state_id".into(), id.clone());
        }
        messages.push(Value::Object(out));
    }
    let mut body = Map::new();
    body.insert("model".into(), json!(model));
    body.insert("messages".into(), Value::Array(messages));
    body.insert("stream".into(), json!(stream));
    if let Some(t) = req.temperature {
        body.insert("temperature".into(), json!(t));
    }
    if let Some(t) = req.top_p {
        body.insert("top_p".into(), json!(t));
    }
    if let Some(t) = req.max_tokens() {
        body.insert("max_tokens".into(), json!(t));
    }
    if let Some(tools) = &req.tools {
        let functions: Vec<Value> = tools.iter().filter_map(|t| t.get("function").cloned()).collect();
        if !functions.is_empty() {
            body.insert("functions".into(), Value::Array(functions));
        }
    }
    if let Some(choice) = &req.tool_choice {
        let fc = match choice {
            Value::String(s) if s == "none" => Some(json!("none")),
            Value::String(_) => Some(json!("auto")),
            Value::Object(_) => choice.pointer("/function/name").map(|n| json!({ "name": n })),
            _ => None,
        };
        if let Some(fc) = fc {
            body.insert("function_call".into(), fc);
        }
    }
    for key in PASS_THROUGH {
        if let Some(v) = req.extra.get(key) {
            body.insert(key.into(), v.clone());
        }
    }
    Value::Object(body)
}

fn blacklisted() -> ProviderError {
    ProviderError::new(
        ErrorClass::ContentFilter,
        "GigaChat refused the topic (finish_reason blacklist)",
    )
    .with_code(Some("blacklist".into()))
}

fn finish_reason(v: Option<&Value>) -> Result<Option<String>, ProviderError> {
    match v.and_then(Value::as_str) {
        Some("blacklist") => Err(blacklisted()),
        Some("function_call") => Ok(Some("tool_calls".into())),
        Some(other) => Ok(Some(other.to_string())),
        None => Ok(None),
    }
}

fn arguments_string(args: Option<&Value>) -> String {
    match args {
        Some(Value::String(s)) => s.clone(),
        Some(v) => v.to_string(),
        None => "{}".to_string(),
    }
}

/// GigaChat response to canonical.
pub(crate) fn response(v: Value) -> Result<ChatResponse, ProviderError> {
    let choices = v
        .get("choices")
        .and_then(Value::as_array)
        .ok_or_else(|| ProviderError::new(ErrorClass::Malformed, "GigaChat body has no choices"))?;
    let mut out = Vec::with_capacity(choices.len());
    for (i, c) in choices.iter().enumerate() {
        let m = c.get("message").cloned().unwrap_or_else(|| json!({}));
        let fc = m.get("function_call");
        let tool_calls = fc.map(|fc| {
            vec![ToolCall {
                id: new_id("call"),
                kind: "function".into(),
                function: ToolFunction {
                    name: fc
                        .get("name")
                        .and_then(Value::as_str)
                        .unwrap_or_default()
                        .to_string(),
                    arguments: arguments_string(fc.get("arguments")),
                },
            }]
        });
        let text = m
            .get("content")
            .and_then(Value::as_str)
            .unwrap_or_default()
            .to_string();
        let mut extra = Map::new();
        if let Some(id) = m.get("functions_state_id") {
            extra.insert("functions_state_id".into(), id.clone());
        }
        let content = if tool_calls.is_some() && text.is_empty() {
            None
        } else {
            Some(Value::String(text))
        };
        let message = Message {
            role: Role::Assistant,
            content,
            name: None,
            tool_calls,
            tool_call_id: None,
            extra,
        };
        let index = c.get("index").and_then(Value::as_u64).unwrap_or(i as u64) as u32;
        out.push(Choice {
            index,
            message,
            finish_reason: finish_reason(c.get("finish_reason"))?,
        });
    }
    let usage: Option<Usage> = v
        .get("usage")
        .and_then(|u| serde_json::from_value(u.clone()).ok());
    Ok(ChatResponse {
        id: String::new(),
        object: "chat.completion".into(),
        created: v.get("created").and_then(Value::as_u64).unwrap_or_else(unix_now),
        model: v
            .get("model")
            .and_then(Value::as_str)
            .unwrap_or_default()
            .to_string(),
        choices: out,
        usage,
        raw: None,
    })
}

/// One GigaChat stream event to a canonical chunk.
pub(crate) fn chunk(v: Value, id: &str) -> Result<ChatChunk, ProviderError> {
    let created = v.get("created").and_then(Value::as_u64).unwrap_or_else(unix_now);
    let model = v
        .get("model")
        .and_then(Value::as_str)
        .unwrap_or_default()
        .to_string();
    let mut choices = Vec::new();
    for (i, c) in v
        .get("choices")
        .and_then(Value::as_array)
        .into_iter()
        .flatten()
        .enumerate()
    {
        let d = c.get("delta").cloned().unwrap_or_else(|| json!({}));
        let role = match d.get("role").and_then(Value::as_str) {
            Some("assistant") => Some(Role::Assistant),
            _ => None,
        };
        let tool_calls = d.get("function_call").map(|fc| {
            vec![ToolCallDelta {
                index: 0,
                id: Some(new_id("call")),
                kind: Some("function".into()),
                function: Some(json!({
                    "name": fc.get("name").and_then(Value::as_str).unwrap_or_default(),
                    "arguments": arguments_string(fc.get("arguments")),
                })),
            }]
        });
        let content = d.get("content").and_then(Value::as_str).map(str::to_string);
        let delta = Delta {
            role,
            content,
            tool_calls,
        };
        let index = c.get("index").and_then(Value::as_u64).unwrap_or(i as u64) as u32;
        // In a stream the refusal text has reached the client already: `blacklist` is OpenAI's terminal
        // `content_filter` (a refusal before any text fails over in the pipeline, as the non-stream error does).
        let finish = match c.get("finish_reason").and_then(Value::as_str) {
            Some("blacklist") => Some("content_filter".to_string()),
            _ => finish_reason(c.get("finish_reason"))?,
        };
        choices.push(ChunkChoice {
            index,
            delta,
            finish_reason: finish,
        });
    }
    let usage: Option<Usage> = v
        .get("usage")
        .and_then(|u| serde_json::from_value(u.clone()).ok());
    Ok(ChatChunk {
        id: id.to_string(),
        object: "chat.completion.chunk".into(),
        created,
        model,
        choices,
        usage,
        raw: None,
    })
}
