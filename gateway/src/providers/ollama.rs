//! Local Ollama: native `/api/chat` (JSON or NDJSON stream, `done:true` last) and `/api/embed`; the local tier.

use reqwest::header::HeaderMap;
use serde_json::{json, Map, Value};

use super::error::{class_from_status, ErrorClass, ProviderError};
use super::http;
use super::openai::normalize_response;
use super::stream::{self, ChunkStream, Event, Framing, Step, Translator};
use crate::canonical::{
    new_id, unix_now, ChatChunk, ChatRequest, ChatResponse, Choice, Delta, EmbeddingsRequest,
    EmbeddingsResponse, EmbeddingsUsage, Message, Role, ToolCall, ToolCallDelta, ToolFunction, Usage,
};

/// Ollama client (`base_url` like `http://127.0.0.1:11434`).
#[derive(Debug, Clone)]
pub struct Ollama {
    base: http::Base,
    client: reqwest::Client,
}

impl Ollama {
    /// A client.
    pub fn new(base_url: &str, client: reqwest::Client) -> Ollama {
        Ollama {
            base: http::Base::new(base_url, &["api/chat", "api/embed"]),
            client,
        }
    }

    fn post(&self, path: &str, body: &Value) -> reqwest::RequestBuilder {
        self.base.post(&self.client, path).json(body)
    }

    /// Non-stream chat.
    pub async fn chat(&self, req: &ChatRequest, model: &str) -> Result<ChatResponse, ProviderError> {
        let resp = http::send(self.post("api/chat", &request(req, model, false)), classify, None).await?;
        parse_chat(&http::read_body(resp).await?)
    }

    /// NDJSON stream.
    pub async fn chat_stream(&self, req: &ChatRequest, model: &str) -> Result<ChunkStream, ProviderError> {
        let resp = http::send(self.post("api/chat", &request(req, model, true)), classify, None).await?;
        let t = OllamaStream {
            id: new_id("chatcmpl"),
            created: unix_now(),
            first: true,
        };
        Ok(stream::drive(resp.bytes_stream(), Framing::Ndjson, t))
    }

    /// `/api/embed`.
    pub async fn embed(
        &self,
        req: &EmbeddingsRequest,
        model: &str,
    ) -> Result<EmbeddingsResponse, ProviderError> {
        let texts = super::embedding_texts(req, "Ollama")?;
        let mut body = json!({"model": model, "input": texts});
        if let Some(d) = req.dimensions {
            body["dimensions"] = json!(d);
        }
        let resp = http::send(self.post("api/embed", &body), classify, None).await?;
        let v: Value = http::read_json(resp).await?;
        let vectors: Vec<Vec<f32>> =
            serde_json::from_value(v.get("embeddings").cloned().unwrap_or(Value::Null)).map_err(|e| {
                ProviderError::new(ErrorClass::Malformed, format!("bad Ollama embeddings: {e}"))
            })?;
        let tokens = v.get("prompt_eval_count").and_then(Value::as_u64).unwrap_or(0);
        Ok(EmbeddingsResponse::from_vectors(
            model,
            vectors,
            EmbeddingsUsage {
                prompt_tokens: tokens,
                total_tokens: tokens,
            },
        ))
    }
}

/// A non-stream `/api/chat` answer's bytes to canonical.
pub(crate) fn parse_chat(body: &[u8]) -> Result<ChatResponse, ProviderError> {
    let v: Value = http::parse_json(body)?;
    let mut out = response(&v)?;
    normalize_response(&mut out);
    Ok(out)
}

/// Canonical request to the `/api/chat` body.
pub(crate) fn request(req: &ChatRequest, model: &str, stream: bool) -> Value {
    let messages: Vec<Value> = req
        .messages
        .iter()
        .map(|m| {
            let role = match m.role {
                Role::System | Role::Developer => "system",
                Role::User => "user",
                Role::Assistant => "assistant",
                Role::Tool | Role::Function => "tool",
            };
            let mut out = json!({"role": role, "content": m.text()});
            let images = inline_images(m);
            if !images.is_empty() {
                out["images"] = Value::Array(images);
            }
            if let Some(calls) = &m.tool_calls {
                let calls: Vec<Value> = calls
                    .iter()
                    .map(|c| {
                        let args: Value =
                            serde_json::from_str(&c.function.arguments).unwrap_or_else(|_| json!({}));
                        json!({"function": {"name": c.function.name, "arguments": args}})
                    })
                    .collect();
                out["tool_calls"] = Value::Array(calls);
            }
            if let Some(name) = &m.name {
                out["tool_name"] = json!(name);
            }
            out
        })
        .collect();
    let mut options = Map::new();
    let mut put = |k: &str, v: Option<Value>| {
        if let Some(v) = v {
            options.insert(k.into(), v);
        }
    };
    put("temperature", req.temperature.map(|t| json!(t)));
    put("top_p", req.top_p.map(|t| json!(t)));
    put("num_predict", req.max_tokens().map(|t| json!(t)));
    put("seed", req.seed.map(|t| json!(t)));
    put(
        "stop",
        req.stop
            .clone()
            .map(|s| if s.is_string() { json!([s]) } else { s }),
    );
    let mut body = json!({"model": model, "messages": messages, "stream": stream});
    if !options.is_empty() {
        body["options"] = Value::Object(options);
    }
    if let Some(tools) = &req.tools {
        body["tools"] = Value::Array(tools.clone());
    }
    // Structured output: Ollama's `format` takes a JSON schema, or "json".
    if let Some(rf) = req.extra.get("response_format") {
        match rf.get("type").and_then(Value::as_str) {
            Some("json_schema") => {
                if let Some(schema) = rf.pointer("/json_schema/schema") {
                    body["format"] = schema.clone();
                }
            }
            Some("json_object") => body["format"] = json!("json"),
            _ => {}
        }
    }
    body
}

/// The base64 payloads of a message's inline (`data:`) image parts: Ollama takes images as base64 only (the
/// router never sends it a remote image URL: its models are `vision: data_urls`).
fn inline_images(m: &Message) -> Vec<Value> {
    let Some(Value::Array(parts)) = &m.content else {
        return Vec::new();
    };
    parts
        .iter()
        .filter(|p| p.get("type").and_then(Value::as_str) == Some("image_url"))
        .filter_map(|p| {
            let url = p
                .get("image_url")
                .and_then(|u| u.get("url").or(Some(u)))?
                .as_str()?;
            let (_, data) = url.trim_start().strip_prefix("data:")?.split_once(";base64,")?;
            Some(json!(data))
        })
        .collect()
}

fn usage(v: &Value) -> Usage {
    let n = |k: &str| v.get(k).and_then(Value::as_u64).unwrap_or(0);
    Usage::new(n("prompt_eval_count"), n("eval_count"))
}

fn tool_calls(m: &Value) -> Option<Vec<ToolCall>> {
    let calls = m.get("tool_calls")?.as_array()?;
    Some(
        calls
            .iter()
            .map(|c| ToolCall {
                id: new_id("call"),
                kind: "function".into(),
                function: ToolFunction {
                    name: c
                        .pointer("/function/name")
                        .and_then(Value::as_str)
                        .unwrap_or_default()
                        .to_string(),
                    arguments: c
                        .pointer("/function/arguments")
                        .map(Value::to_string)
                        .unwrap_or_else(|| "{}".into()),
                },
            })
            .collect(),
    )
}

/// Non-stream `/api/chat` answer to canonical.
pub(crate) fn response(v: &Value) -> Result<ChatResponse, ProviderError> {
    let m = v
        .get("message")
        .ok_or_else(|| ProviderError::new(ErrorClass::Malformed, "Ollama body has no message"))?;
    let calls = tool_calls(m);
    let text = m
        .get("content")
        .and_then(Value::as_str)
        .unwrap_or_default()
        .to_string();
    let finish = if calls.is_some() {
        "tool_calls".to_string()
    } else {
        v.get("done_reason")
            .and_then(Value::as_str)
            .unwrap_or("stop")
            .to_string()
    };
    let message = Message {
        role: Role::Assistant,
        content: if calls.is_some() && text.is_empty() {
            None
        } else {
            Some(Value::String(text))
        },
        name: None,
        tool_calls: calls,
        tool_call_id: None,
        extra: Map::new(),
    };
    Ok(ChatResponse {
        id: String::new(),
        object: "chat.completion".into(),
        created: unix_now(),
        model: v
            .get("model")
            .and_then(Value::as_str)
            .unwrap_or_default()
            .to_string(),
        choices: vec![Choice {
            index: 0,
            message,
            finish_reason: Some(finish),
        }],
        usage: Some(usage(v)),
        raw: None,
    })
}

/// Ollama errors `{"error":"..."}`: by status; a missing model means this provider cannot serve.
pub fn classify(status: u16, _headers: &HeaderMap, body: &str) -> ProviderError {
    let message = serde_json::from_str::<Value>(body)
        .ok()
        .and_then(|v| v.get("error").and_then(Value::as_str).map(str::to_string))
        .unwrap_or_else(|| http::opaque_body_message(body));
    let lower = message.to_ascii_lowercase();
    let class = match status {
        404 => ErrorClass::NotFound,
        400 if lower.contains("context") => ErrorClass::ContextLength,
        429 if lower.contains("usage limit") || lower.contains("quota") || lower.contains("upgrade") => {
            ErrorClass::QuotaExhausted
        }
        _ => class_from_status(status),
    };
    ProviderError::new(class, message)
}

struct OllamaStream {
    id: String,
    created: u64,
    first: bool,
}

impl Translator for OllamaStream {
    fn on_event(&mut self, event: Event) -> Result<Step, ProviderError> {
        let v: Value = http::parse_json(event.data.as_bytes())?;
        if let Some(e) = v.get("error") {
            let msg = e.as_str().map(str::to_string).unwrap_or_else(|| e.to_string());
            return Err(ProviderError::new(ErrorClass::Overloaded, msg));
        }
        let model = v.get("model").and_then(Value::as_str).unwrap_or_default();
        let m = v.get("message").cloned().unwrap_or(Value::Null);
        let calls = tool_calls(&m).map(|calls| {
            calls
                .into_iter()
                .enumerate()
                .map(|(i, c)| ToolCallDelta {
                    index: i as u32,
                    id: Some(c.id),
                    kind: Some("function".into()),
                    function: Some(json!({"name": c.function.name, "arguments": c.function.arguments})),
                })
                .collect::<Vec<_>>()
        });
        let done = v.get("done").and_then(Value::as_bool).unwrap_or(false);
        let content = m.get("content").and_then(Value::as_str).map(str::to_string);
        let finish = done.then(|| {
            v.get("done_reason")
                .and_then(Value::as_str)
                .unwrap_or("stop")
                .to_string()
        });
        let delta = Delta {
            role: self.first.then_some(Role::Assistant),
            content,
            tool_calls: calls,
        };
        self.first = false;
        let mut chunk = ChatChunk::with_delta(&self.id, self.created, model, delta, finish);
        if done {
            chunk.usage = Some(usage(&v));
        }
        Ok(Step {
            chunks: vec![chunk],
            done,
        })
    }
}

#[cfg(test)]
#[path = "ollama_tests.rs"]
mod tests;
