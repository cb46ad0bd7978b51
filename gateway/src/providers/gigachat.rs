//! Sber GigaChat: OAuth token cached and refreshed before expiry and once on 401, `RqUID` per token request,
//! `functions`/`function_call` with object arguments translated to OpenAI tool calls, `blacklist` as a content refusal.

use reqwest::header::HeaderMap;
use serde_json::{json, Value};
use tokio::sync::Mutex;

use super::error::{class_from_status, retry_after_header, ErrorClass, ProviderError};
use super::http;
use super::openai::normalize_response;
use super::stream::{self, ChunkStream, Event, Framing, Step, Translator};
use crate::canonical::{
    ChatChunk, ChatRequest, ChatResponse, EmbeddingsRequest, EmbeddingsResponse, EmbeddingsUsage,
};
use crate::config::{GigaChatAuth, Secret};

mod translate;

pub(crate) use translate::request as translate_request;

/// A non-stream answer's bytes to canonical.
pub(crate) fn parse_chat(body: &[u8]) -> Result<ChatResponse, ProviderError> {
    let v: Value = http::parse_json(body)?;
    let mut out = translate::response(v)?;
    normalize_response(&mut out);
    Ok(out)
}

/// A cached access token.
#[derive(Debug, Clone)]
struct Token {
    value: Secret,
    /// Epoch milliseconds; 0 means no expiry was given.
    expires_at_ms: u64,
}

/// GigaChat client with its token cache.
#[derive(Debug)]
pub struct GigaChat {
    base: http::Base,
    auth: GigaChatAuth,
    key: Option<Secret>,
    client: reqwest::Client,
    /// Single-flight: concurrent requests wait for one token fetch.
    token: Mutex<Option<Token>>,
}

fn now_ms() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_millis() as u64)
        .unwrap_or(0)
}

/// A random UUID v4 string for `RqUID`.
pub fn rq_uid() -> String {
    let a = fastrand::u128(..);
    let a = (a & !(0xf << 76)) | (0x4 << 76); // version 4
    let a = (a & !(0x3 << 62)) | (0x2 << 62); // variant 10
    let h = format!("{a:032x}");
    format!(
        "{}-{}-{}-{}-{}",
        &h[0..8],
        &h[8..12],
        &h[12..16],
        &h[16..20],
        &h[20..32]
    )
}

impl GigaChat {
    /// A client; `key` is the authorization key (base64 of `client_id:client_secret`).
    pub fn new(base_url: &str, auth: GigaChatAuth, key: Option<Secret>, client: reqwest::Client) -> GigaChat {
        GigaChat {
            base: http::Base::new(base_url, &["chat/completions", "embeddings"]),
            auth,
            key,
            client,
            token: Mutex::new(None),
        }
    }

    /// Returns a valid token, fetching one if none is cached, it expires within `refresh_before`, or `force`.
    async fn token(&self, force: bool) -> Result<Secret, ProviderError> {
        let mut slot = self.token.lock().await;
        if let Some(t) = slot.as_ref() {
            let margin = self.auth.refresh_before.as_millis() as u64;
            if !force && (t.expires_at_ms == 0 || t.expires_at_ms > now_ms() + margin) {
                return Ok(t.value.clone());
            }
        }
        *slot = None;
        let fresh = self.fetch_token().await?;
        let value = fresh.value.clone();
        *slot = Some(fresh);
        Ok(value)
    }

    async fn fetch_token(&self) -> Result<Token, ProviderError> {
        let key = self.key.as_ref().ok_or_else(|| {
            ProviderError::new(ErrorClass::Auth, "no GigaChat authorization key configured")
        })?;
        let rb = self
            .client
            .post(&self.auth.url)
            .header("Authorization", format!("Basic {}", key.expose()))
            .header("RqUID", rq_uid())
            .header("Accept", "application/json")
            .header("Content-Type", "application/x-www-form-urlencoded")
            .body(format!("scope={}", self.auth.scope));
        let resp = http::send(rb, classify_oauth, Some(key.expose())).await?;
        let v: Value = http::read_json(resp).await?;
        parse_token(&v)
    }

    async fn send_authed(
        &self,
        path: &str,
        body: &Value,
        sse: bool,
    ) -> Result<reqwest::Response, ProviderError> {
        let mut force = false;
        loop {
            let token = self.token(force).await?;
            let mut rb = self
                .base
                .post(&self.client, path)
                .bearer_auth(token.expose())
                .json(body);
            if sse {
                rb = rb
                    .header("accept", "text/event-stream")
                    .header("cache-control", "no-store");
            }
            match http::send(rb, classify, Some(token.expose())).await {
                Err(e) if e.status == Some(401) && !force => force = true,
                other => return other,
            }
        }
    }

    /// Non-stream chat.
    pub async fn chat(&self, req: &ChatRequest, model: &str) -> Result<ChatResponse, ProviderError> {
        let body = translate::request(req, model, false);
        let resp = self.send_authed("chat/completions", &body, false).await?;
        parse_chat(&http::read_body(resp).await?)
    }

    /// Streamed chat.
    pub async fn chat_stream(&self, req: &ChatRequest, model: &str) -> Result<ChunkStream, ProviderError> {
        let body = translate::request(req, model, true);
        let resp = self.send_authed("chat/completions", &body, true).await?;
        let t = GigaStream {
            id: crate::canonical::new_id("chatcmpl"),
        };
        Ok(stream::drive(resp.bytes_stream(), Framing::Sse, t))
    }

    /// Embeddings (usage per item, summed).
    pub async fn embed(
        &self,
        req: &EmbeddingsRequest,
        model: &str,
    ) -> Result<EmbeddingsResponse, ProviderError> {
        let texts = super::embedding_texts(req, "GigaChat")?;
        let body = json!({"model": model, "input": texts});
        let resp = self.send_authed("embeddings", &body, false).await?;
        let v: Value = http::read_json(resp).await?;
        embeddings(&v, model)
    }
}

fn parse_token(v: &Value) -> Result<Token, ProviderError> {
    let value = v
        .get("access_token")
        .or_else(|| v.get("tok"))
        .and_then(Value::as_str)
        .filter(|s| !s.is_empty())
        .ok_or_else(|| ProviderError::new(ErrorClass::Auth, "OAuth answer has no access_token"))?;
    let mut expires_at_ms = v
        .get("expires_at")
        .or_else(|| v.get("exp"))
        .and_then(Value::as_u64)
        .unwrap_or(0);
    if expires_at_ms != 0 && expires_at_ms < 100_000_000_000 {
        expires_at_ms *= 1000; // seconds, not milliseconds
    }
    Ok(Token {
        value: Secret::new(value),
        expires_at_ms,
    })
}

fn embeddings(v: &Value, model: &str) -> Result<EmbeddingsResponse, ProviderError> {
    let data = v
        .get("data")
        .and_then(Value::as_array)
        .ok_or_else(|| ProviderError::new(ErrorClass::Malformed, "GigaChat embeddings body has no data"))?;
    let mut vectors = Vec::with_capacity(data.len());
    let mut tokens = 0;
    for item in data {
        tokens += item
            .pointer("/usage/prompt_tokens")
            .and_then(Value::as_u64)
            .unwrap_or(0);
        let vec: Vec<f32> = serde_json::from_value(item.get("embedding").cloned().unwrap_or(Value::Null))
            .map_err(|e| ProviderError::new(ErrorClass::Malformed, format!("bad embedding: {e}")))?;
        vectors.push(vec);
    }
    Ok(EmbeddingsResponse::from_vectors(
        model,
        vectors,
        EmbeddingsUsage {
            prompt_tokens: tokens,
            total_tokens: tokens,
        },
    ))
}

/// OAuth errors `{code,message}`: 4xx are auth failures, 429 rate limit, 5xx overload.
fn classify_oauth(status: u16, headers: &HeaderMap, body: &str) -> ProviderError {
    let class = match status {
        429 => ErrorClass::RateLimited,
        400..=499 => ErrorClass::Auth,
        _ => ErrorClass::Overloaded,
    };
    let v: Option<Value> = serde_json::from_str(body).ok();
    let message = v
        .as_ref()
        .and_then(|v| v.get("message"))
        .and_then(Value::as_str)
        .map(|m| format!("OAuth: {m}"))
        .unwrap_or_else(|| format!("OAuth: {}", http::opaque_body_message(body)));
    let code = v.as_ref().and_then(|v| v.get("code")).map(|c| c.to_string());
    ProviderError::new(class, message)
        .with_code(code)
        .with_retry_after(retry_after_header(headers))
}

/// API errors `{status,message}`: classified by status, with 422 context overflow and 404 unknown model.
pub fn classify(status: u16, headers: &HeaderMap, body: &str) -> ProviderError {
    let v: Option<Value> = serde_json::from_str(body).ok();
    let message = v
        .as_ref()
        .and_then(|v| v.get("message"))
        .and_then(Value::as_str)
        .map(str::to_string)
        .unwrap_or_else(|| http::opaque_body_message(body));
    let lower = message.to_ascii_lowercase();
    let class = match status {
        404 => ErrorClass::NotFound,
        413 => ErrorClass::ContextLength,
        422 if lower.contains("context") || lower.contains("too long") || lower.contains("tokens limit") => {
            ErrorClass::ContextLength
        }
        422 => ErrorClass::BadRequest,
        _ => class_from_status(status),
    };
    ProviderError::new(class, message).with_retry_after(retry_after_header(headers))
}

/// SSE chunks shaped like the response, `function_call` deltas, `blacklist` refusals, `[DONE]`.
struct GigaStream {
    id: String,
}

impl Translator for GigaStream {
    fn on_event(&mut self, event: Event) -> Result<Step, ProviderError> {
        if event.data.trim().starts_with("[DONE]") {
            return Ok(Step {
                chunks: vec![],
                done: true,
            });
        }
        let v: Value = http::parse_json(event.data.as_bytes())?;
        if v.get("choices").is_none() && v.get("message").is_some() {
            return Err(classify(
                v.get("status").and_then(Value::as_u64).unwrap_or(500) as u16,
                &HeaderMap::new(),
                &event.data,
            ));
        }
        let chunk: ChatChunk = translate::chunk(v, &self.id)?;
        Ok(Step {
            chunks: vec![chunk],
            done: false,
        })
    }
}

#[cfg(test)]
#[path = "gigachat_tests.rs"]
mod tests;
