//! Qwen via DashScope: compatible mode reuses the OpenAI client; native mode speaks `input`/`parameters`/`output`
//! and its SSE without `[DONE]`. Both classify by DashScope codes (`Arrearage` is a 400 that means billing).

use reqwest::header::HeaderMap;
use serde_json::{json, Map, Value};

use super::error::{class_from_status, retry_after_header, retry_after_in_text, ErrorClass, ProviderError};
use super::http;
use super::openai::normalize_response;
use super::stream::{self, ChunkStream, Event, Framing, Step, Translator};
use crate::canonical::{
    new_id, unix_now, ChatChunk, ChatRequest, ChatResponse, Choice, Delta, EmbeddingsRequest,
    EmbeddingsResponse, EmbeddingsUsage, Message, Role, ToolCallDelta, Usage,
};
use crate::config::Secret;

/// DashScope codes (native `code`, compatible `error.code`/`error.type`) to classes.
pub fn classify(status: u16, headers: &HeaderMap, body: &str) -> ProviderError {
    let v: Option<Value> = serde_json::from_str(body).ok();
    let field = |k: &str| {
        let v = v.as_ref()?;
        v.get("error")
            .and_then(|e| e.get(k))
            .or_else(|| v.get(k))
            .and_then(Value::as_str)
            .map(str::to_string)
    };
    let (Some(message), code) = (field("message"), field("code").or_else(|| field("type"))) else {
        return ProviderError::new(class_from_status(status), http::opaque_body_message(body))
            .with_retry_after(retry_after_header(headers));
    };
    let lower = message.to_ascii_lowercase();
    let class = match code.as_deref().unwrap_or("") {
        "Arrearage" | "AllocationQuota.FreeTierOnly" | "Throttling.AllocationQuota" => {
            ErrorClass::QuotaExhausted
        }
        "InvalidApiKey" | "invalid_api_key" => ErrorClass::Auth,
        "model_not_found" | "ModelNotFound" => ErrorClass::NotFound,
        c if c.starts_with("AccessDenied") => ErrorClass::Auth,
        c if c.starts_with("Throttling") || c == "limit_requests" => ErrorClass::RateLimited,
        "DataInspectionFailed" | "data_inspection_failed" => ErrorClass::ContentFilter,
        c if c.starts_with("InternalError") => ErrorClass::Overloaded,
        "RequestTimeOut" => ErrorClass::Timeout,
        "context_length_exceeded" | "BadRequest.TooLarge" => ErrorClass::ContextLength,
        _ if lower.contains("input length")
            || lower.contains("context length")
            || lower.contains("too long") =>
        {
            ErrorClass::ContextLength
        }
        "InvalidParameter" | "invalid_request_error" | "InvalidURL" => ErrorClass::BadRequest,
        c if c.starts_with("BadRequest") => ErrorClass::BadRequest,
        _ => class_from_status(status),
    };
    let retry = retry_after_header(headers).or_else(|| retry_after_in_text(&message));
    ProviderError::new(class, message)
        .with_code(code)
        .with_retry_after(retry)
}

/// A native non-stream answer's bytes to canonical.
pub(crate) fn parse_native(body: &[u8], model: &str) -> Result<ChatResponse, ProviderError> {
    let v: Value = http::parse_json(body)?;
    let mut out = native_response(&v, model)?;
    normalize_response(&mut out);
    Ok(out)
}

/// DashScope native API client (`base_url` ends in `/api/v1`).
#[derive(Debug, Clone)]
pub struct QwenNative {
    base: http::Base,
    secret: Option<Secret>,
    client: reqwest::Client,
}

impl QwenNative {
    /// A native client.
    pub fn new(base_url: &str, secret: Option<Secret>, client: reqwest::Client) -> QwenNative {
        QwenNative {
            base: http::Base::new(base_url, &[GENERATION, EMBEDDING]),
            secret,
            client,
        }
    }

    fn post(&self, path: &str, body: &Value) -> reqwest::RequestBuilder {
        let mut rb = self.base.post(&self.client, path).json(body);
        if let Some(s) = &self.secret {
            rb = rb.bearer_auth(s.expose());
        }
        rb
    }

    fn secret(&self) -> Option<&str> {
        self.secret.as_ref().map(Secret::expose)
    }

    /// Non-stream chat.
    pub async fn chat(&self, req: &ChatRequest, model: &str) -> Result<ChatResponse, ProviderError> {
        let body = native_body(req, model, false);
        let resp = http::send(self.post(GENERATION, &body), classify, self.secret()).await?;
        parse_native(&http::read_body(resp).await?, model)
    }

    /// Streamed chat (`X-DashScope-SSE: enable`, incremental output).
    pub async fn chat_stream(&self, req: &ChatRequest, model: &str) -> Result<ChunkStream, ProviderError> {
        let body = native_body(req, model, true);
        let rb = self
            .post(GENERATION, &body)
            .header("X-DashScope-SSE", "enable")
            .header("accept", "text/event-stream");
        let resp = http::send(rb, classify, self.secret()).await?;
        let t = NativeStream {
            id: new_id("chatcmpl"),
            created: unix_now(),
            model: model.to_string(),
            first: true,
        };
        Ok(stream::drive(resp.bytes_stream(), Framing::Sse, t))
    }

    /// Native embeddings.
    pub async fn embed(
        &self,
        req: &EmbeddingsRequest,
        model: &str,
    ) -> Result<EmbeddingsResponse, ProviderError> {
        let texts = super::embedding_texts(req, "DashScope")?;
        let mut parameters = Map::new();
        if let Some(d) = req.dimensions {
            parameters.insert("dimension".into(), json!(d));
        }
        let body = json!({"model": model, "input": {"texts": texts}, "parameters": parameters});
        let resp = http::send(self.post(EMBEDDING, &body), classify, self.secret()).await?;
        let v: Value = http::read_json(resp).await?;
        native_embeddings(&v, model)
    }
}

const GENERATION: &str = "services/aigc/text-generation/generation";
const EMBEDDING: &str = "services/embeddings/text-embedding/text-embedding";

/// The native request body.
pub(crate) fn native_body(req: &ChatRequest, model: &str, stream: bool) -> Value {
    let mut p = Map::new();
    p.insert("result_format".into(), json!("message"));
    if stream {
        p.insert("incremental_output".into(), json!(true));
    }
    let mut put = |k: &str, v: Option<Value>| {
        if let Some(v) = v {
            p.insert(k.into(), v);
        }
    };
    put("temperature", req.temperature.map(|t| json!(t)));
    put("top_p", req.top_p.map(|t| json!(t)));
    put("max_tokens", req.max_tokens().map(|t| json!(t)));
    put("seed", req.seed.map(|t| json!(t)));
    put("stop", req.stop.clone());
    put("tools", req.tools.clone().map(Value::Array));
    put("tool_choice", req.tool_choice.clone());
    json!({"model": model, "input": {"messages": req.messages}, "parameters": p})
}

fn native_usage(v: &Value) -> Option<Usage> {
    let u = v.get("usage")?;
    let n = |k: &str| u.get(k).and_then(Value::as_u64).unwrap_or(0);
    Some(Usage::new(n("input_tokens"), n("output_tokens")))
}

fn finish(v: Option<&Value>) -> Option<String> {
    v.and_then(Value::as_str)
        .filter(|s| *s != "null")
        .map(str::to_string)
}

/// Reads `output.choices[0]` (message format) or `output.text` (text format).
fn native_output(v: &Value) -> Result<(Message, Option<String>), ProviderError> {
    let output = v
        .get("output")
        .ok_or_else(|| ProviderError::new(ErrorClass::Malformed, "DashScope body has no output"))?;
    if let Some(choice) = output.get("choices").and_then(|c| c.get(0)) {
        let message: Message = choice
            .get("message")
            .cloned()
            .map(serde_json::from_value)
            .transpose()
            .map_err(|e| ProviderError::new(ErrorClass::Malformed, format!("bad DashScope message: {e}")))?
            .unwrap_or_else(|| Message::plain(Role::Assistant, String::new()));
        return Ok((message, finish(choice.get("finish_reason"))));
    }
    if let Some(text) = output.get("text").and_then(Value::as_str) {
        return Ok((
            Message::plain(Role::Assistant, text.to_string()),
            finish(output.get("finish_reason")),
        ));
    }
    Err(ProviderError::new(
        ErrorClass::Malformed,
        "DashScope output has neither choices nor text",
    ))
}

/// Native response to canonical.
pub(crate) fn native_response(v: &Value, model: &str) -> Result<ChatResponse, ProviderError> {
    let (message, finish_reason) = native_output(v)?;
    let id = v
        .get("request_id")
        .and_then(Value::as_str)
        .map(|r| format!("chatcmpl-{r}"))
        .unwrap_or_default();
    Ok(ChatResponse {
        id,
        object: "chat.completion".into(),
        created: unix_now(),
        model: model.to_string(),
        choices: vec![Choice {
            index: 0,
            message,
            finish_reason: finish_reason.or(Some("stop".into())),
        }],
        usage: native_usage(v),
        raw: None,
    })
}

/// Native embeddings to canonical, ordered by `text_index`.
pub(crate) fn native_embeddings(v: &Value, model: &str) -> Result<EmbeddingsResponse, ProviderError> {
    let items = v
        .pointer("/output/embeddings")
        .and_then(Value::as_array)
        .ok_or_else(|| {
            ProviderError::new(ErrorClass::Malformed, "DashScope body has no output.embeddings")
        })?;
    let mut pairs = Vec::with_capacity(items.len());
    for item in items {
        let idx = item
            .get("text_index")
            .and_then(Value::as_u64)
            .unwrap_or(pairs.len() as u64);
        let vec: Vec<f32> = serde_json::from_value(item.get("embedding").cloned().unwrap_or(Value::Null))
            .map_err(|e| ProviderError::new(ErrorClass::Malformed, format!("bad embedding: {e}")))?;
        pairs.push((idx, vec));
    }
    pairs.sort_by_key(|(i, _)| *i);
    let total = v
        .pointer("/usage/total_tokens")
        .and_then(Value::as_u64)
        .unwrap_or(0);
    let usage = EmbeddingsUsage {
        prompt_tokens: total,
        total_tokens: total,
    };
    Ok(EmbeddingsResponse::from_vectors(
        model,
        pairs.into_iter().map(|(_, v)| v).collect(),
        usage,
    ))
}

/// Native SSE: `event:result`/`event:error`, incremental deltas, done when `finish_reason` is not `"null"`.
struct NativeStream {
    id: String,
    created: u64,
    model: String,
    first: bool,
}

impl Translator for NativeStream {
    fn on_event(&mut self, event: Event) -> Result<Step, ProviderError> {
        let v: Value = http::parse_json(event.data.as_bytes())?;
        if event.name.as_deref() == Some("error") || (v.get("code").is_some() && v.get("output").is_none()) {
            let mut e = classify(400, &HeaderMap::new(), &event.data);
            if e.class == ErrorClass::BadRequest {
                e.class = ErrorClass::Overloaded;
            }
            return Err(e);
        }
        let (message, finish_reason) = native_output(&v)?;
        let tool_calls = message.tool_calls.as_ref().map(|calls| {
            calls
                .iter()
                .enumerate()
                .map(|(i, c)| ToolCallDelta {
                    index: i as u32,
                    id: (!c.id.is_empty()).then(|| c.id.clone()),
                    kind: Some("function".into()),
                    function: Some(json!({"name": c.function.name, "arguments": c.function.arguments})),
                })
                .collect()
        });
        let delta = Delta {
            role: self.first.then_some(Role::Assistant),
            content: Some(message.text()),
            tool_calls,
        };
        self.first = false;
        let done = finish_reason.is_some();
        let mut chunk = ChatChunk::with_delta(&self.id, self.created, &self.model, delta, finish_reason);
        if done {
            chunk.usage = native_usage(&v);
        }
        Ok(Step {
            chunks: vec![chunk],
            done,
        })
    }
}

#[cfg(test)]
#[path = "qwen_tests.rs"]
mod tests;
