//! OpenAI adapter, and the OpenAI-compatible client that Kimi and Qwen (compatible mode) reuse with their quirks.

use reqwest::header::HeaderMap;
use serde_json::{json, Value};

use super::error::{class_from_status, retry_after_header, retry_after_in_text, ErrorClass, ProviderError};
use super::http::{self, Classify};
use super::stream::{self, ChunkStream, Event, Framing, Step, Translator};
use super::Read;
use crate::canonical::{
    new_id, unix_now, ChatChunk, ChatRequest, ChatResponse, Choice, ChunkChoice, EmbeddingsRequest,
    EmbeddingsResponse, Message, Raw, RawChunk, Role, Usage,
};
use crate::config::Secret;

/// Which vendor's quirks an OpenAI-compatible client applies.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Flavor {
    /// OpenAI itself.
    OpenAi,
    /// Moonshot: temperature in [0,1], no `tool_choice: required`, usage inside `choices[0]` when streaming.
    Kimi,
    /// DashScope compatible mode.
    Qwen,
}

/// A client for an OpenAI-shaped API.
#[derive(Debug, Clone)]
pub struct OpenAiCompat {
    base: http::Base,
    secret: Option<Secret>,
    client: reqwest::Client,
    flavor: Flavor,
}

impl OpenAiCompat {
    /// A client for `base_url` (ending in `/v1` or `/compatible-mode/v1`).
    pub fn new(
        base_url: &str,
        secret: Option<Secret>,
        client: reqwest::Client,
        flavor: Flavor,
    ) -> OpenAiCompat {
        OpenAiCompat {
            base: http::Base::new(base_url, &["chat/completions", "embeddings"]),
            secret,
            client,
            flavor,
        }
    }

    fn classify(&self) -> Classify {
        match self.flavor {
            Flavor::OpenAi => classify,
            Flavor::Kimi => super::kimi::classify,
            Flavor::Qwen => super::qwen::classify,
        }
    }

    fn post(&self, path: &str, body: &impl serde::Serialize) -> reqwest::RequestBuilder {
        let mut rb = self.base.post(&self.client, path).json(body);
        if let Some(s) = &self.secret {
            rb = rb.bearer_auth(s.expose());
        }
        rb
    }

    /// The wire body for a chat request (serialized once, straight to bytes, by [`Self::post`]): the client's
    /// request with the provider's model name. Borrowed when nothing else changes (a non-stream request to OpenAI
    /// or DashScope), so the conversation is not copied; a copy for a stream (usage asked for) and for Kimi's
    /// quirks.
    pub fn chat_body<'a>(&self, req: &'a ChatRequest, model: &'a str, stream: bool) -> ChatBody<'a> {
        if !stream && self.flavor != Flavor::Kimi {
            return ChatBody::AsSent(AsSent::new(req, model));
        }
        let mut req = req.clone();
        req.model = model.to_string();
        req.stream = stream;
        if self.flavor == Flavor::Kimi {
            super::kimi::adjust(&mut req);
        }
        if stream {
            // Always ask for usage so tokens can be counted; the API layer hides it if the client did not ask.
            req.extra
                .insert("stream_options".into(), json!({"include_usage": true}));
        }
        ChatBody::Changed(req)
    }

    /// Non-stream chat, its answer read as `read` says.
    pub async fn chat(
        &self,
        req: &ChatRequest,
        model: &str,
        read: Read,
    ) -> Result<ChatResponse, ProviderError> {
        let body = self.chat_body(req, model, false);
        let secret = self.secret.as_ref().map(Secret::expose);
        let resp = http::send(self.post("chat/completions", &body), self.classify(), secret).await?;
        self.parse_chat(http::read_body(resp).await?, read)
    }

    /// A non-stream answer's bytes to canonical (OpenAI's own bytes are kept to be sent on unchanged). With
    /// [`Read::PassThrough`], an OpenAI answer that goes out as it came is read by its head only (see [`head`]).
    pub fn parse_chat(&self, body: Vec<u8>, read: Read) -> Result<ChatResponse, ProviderError> {
        let body = match (read, self.flavor) {
            (Read::PassThrough, Flavor::OpenAi) => match head(body) {
                Ok(out) => return Ok(out),
                Err(body) => body,
            },
            _ => body,
        };
        let mut out: ChatResponse = http::parse_json(&body)?;
        let as_is = normalize_response(&mut out);
        if as_is && self.flavor == Flavor::OpenAi && is_object(&body) {
            out.raw = Some(Raw::full(bytes::Bytes::from(body)));
        }
        if out.choices.first().and_then(|c| c.finish_reason.as_deref()) == Some("content_filter") {
            // A 200 whose answer was withheld: a refusal the router may route around (per policy).
            return Err(ProviderError::new(
                ErrorClass::ContentFilter,
                "answer withheld (finish_reason content_filter)",
            )
            .with_code(Some("content_filter".into())));
        }
        Ok(out)
    }

    /// Streamed chat: resolves once the upstream answered 200.
    pub async fn chat_stream(&self, req: &ChatRequest, model: &str) -> Result<ChunkStream, ProviderError> {
        let body = self.chat_body(req, model, true);
        let secret = self.secret.as_ref().map(Secret::expose);
        let rb = self
            .post("chat/completions", &body)
            .header("accept", "text/event-stream");
        let resp = http::send(rb, self.classify(), secret).await?;
        let translator = OpenAiStream {
            classify: self.classify(),
            flavor: self.flavor,
            done: false,
        };
        Ok(stream::drive(resp.bytes_stream(), Framing::Sse, translator))
    }

    /// Embeddings (floats from upstream; the API layer encodes base64 if asked).
    pub async fn embed(
        &self,
        req: &EmbeddingsRequest,
        model: &str,
    ) -> Result<EmbeddingsResponse, ProviderError> {
        let mut req = req.clone();
        req.model = model.to_string();
        req.encoding_format = None;
        let secret = self.secret.as_ref().map(Secret::expose);
        let resp = http::send(self.post("embeddings", &req), self.classify(), secret).await?;
        http::read_json(resp).await
    }
}

/// A chat request's wire body: the client's own fields borrowed, or a changed copy.
#[derive(serde::Serialize)]
#[serde(untagged)]
pub enum ChatBody<'a> {
    /// The client's request with another model name and `stream: false`, serialized from borrows.
    AsSent(AsSent<'a>),
    /// A changed copy.
    Changed(ChatRequest),
}

/// A [`ChatRequest`] serialized from borrows, field for field as its own `Serialize` writes it, with `model`
/// replaced and `stream` left out (false).
#[derive(serde::Serialize)]
pub struct AsSent<'a> {
    model: &'a str,
    messages: &'a [Message],
    #[serde(skip_serializing_if = "Option::is_none")]
    temperature: Option<f64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    top_p: Option<f64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    max_tokens: Option<u32>,
    #[serde(skip_serializing_if = "Option::is_none")]
    max_completion_tokens: Option<u32>,
    #[serde(skip_serializing_if = "Option::is_none")]
    stop: Option<&'a Value>,
    #[serde(skip_serializing_if = "Option::is_none")]
    seed: Option<i64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    tools: Option<&'a Vec<Value>>,
    #[serde(skip_serializing_if = "Option::is_none")]
    tool_choice: Option<&'a Value>,
    #[serde(flatten)]
    extra: &'a serde_json::Map<String, Value>,
}

impl<'a> AsSent<'a> {
    fn new(req: &'a ChatRequest, model: &'a str) -> AsSent<'a> {
        // Every field named: a field added to `ChatRequest` does not compile here until it is sent.
        let ChatRequest {
            model: _,
            messages,
            stream: _,
            temperature,
            top_p,
            max_tokens,
            max_completion_tokens,
            stop,
            seed,
            tools,
            tool_choice,
            extra,
        } = req;
        AsSent {
            model,
            messages,
            temperature: *temperature,
            top_p: *top_p,
            max_tokens: *max_tokens,
            max_completion_tokens: *max_completion_tokens,
            stop: stop.as_ref(),
            seed: *seed,
            tools: tools.as_ref(),
            tool_choice: tool_choice.as_ref(),
            extra,
        }
    }
}

/// What [`head`] reads of an answer: everything the pipeline looks at, nothing of the messages' content.
#[derive(serde::Deserialize)]
struct Head {
    #[serde(default)]
    id: String,
    #[serde(default)]
    object: String,
    #[serde(default)]
    created: u64,
    #[serde(default)]
    model: String,
    choices: Vec<HeadChoice>,
    #[serde(default)]
    usage: Option<Usage>,
}

#[derive(serde::Deserialize)]
struct HeadChoice {
    #[serde(default)]
    index: u32,
    message: HeadMessage,
    #[serde(default)]
    finish_reason: Option<String>,
}

/// The typed fields of a message (what the full read could refuse), content and extras skipped unread.
#[derive(serde::Deserialize)]
struct HeadMessage {
    role: Role,
    #[serde(default)]
    #[allow(dead_code)] // Read for its type only: the full read refuses a name that is not a string.
    name: Option<String>,
    #[serde(default)]
    #[allow(dead_code)] // As `name`.
    tool_call_id: Option<String>,
    #[serde(default)]
    tool_calls: Option<Vec<serde::de::IgnoredAny>>,
}

/// An answer for a client that takes OpenAI's bytes as they are (the chat route, not streamed), read by its head:
/// id, model, usage and each choice's role and finish reason, the messages' content skipped. `None` (read it in
/// full) unless the bytes go out as they came: an id, a creation time and `object: chat.completion` present, no
/// tool calls (their finish reason may be rewritten), no `content_filter` (a refusal the router routes around).
/// The head read refuses nothing the full read takes, and what it refuses the full read refuses with its error.
/// `Err` gives the body back for the full read.
pub(crate) fn head(body: Vec<u8>) -> Result<ChatResponse, Vec<u8>> {
    let Ok(h) = serde_json::from_slice::<Head>(&body) else {
        return Err(body);
    };
    let as_is = !h.id.is_empty() && h.created != 0 && h.object == "chat.completion" && is_object(&body);
    let plain = h.choices.iter().all(|c| {
        c.message.tool_calls.as_ref().is_none_or(Vec::is_empty)
            && c.finish_reason.as_deref() != Some("content_filter")
    });
    if !as_is || !plain {
        return Err(body);
    }
    let choices = h
        .choices
        .into_iter()
        .map(|c| Choice {
            index: c.index,
            message: Message {
                content: None,
                ..Message::plain(c.message.role, String::new())
            },
            finish_reason: c.finish_reason,
        })
        .collect();
    Ok(ChatResponse {
        id: h.id,
        object: h.object,
        created: h.created,
        model: h.model,
        choices,
        usage: h.usage,
        raw: Some(Raw {
            bytes: bytes::Bytes::from(body),
            head_only: true,
        }),
    })
}

/// Whether bytes that read as an answer or a chunk are a JSON object: serde also reads a struct from an array
/// of its fields in order, and bytes sent on as they came must be the object clients expect.
fn is_object(bytes: &[u8]) -> bool {
    bytes.trim_ascii_start().first() == Some(&b'{')
}

/// Fills fields strict clients require; returns whether the answer already had them all.
pub(crate) fn normalize_response(out: &mut ChatResponse) -> bool {
    let as_is = !out.id.is_empty() && out.created != 0 && out.object == "chat.completion";
    if out.id.is_empty() {
        out.id = new_id("chatcmpl");
    }
    if out.created == 0 {
        out.created = unix_now();
    }
    out.object = "chat.completion".to_string();
    as_is
}

/// SSE `data: {chunk}` ... `data: [DONE]`, with mid-stream `data: {"error":...}` and Moonshot's usage-in-choice.
struct OpenAiStream {
    classify: Classify,
    flavor: Flavor,
    done: bool,
}

/// The stream chunk as OpenAI-shaped upstreams send it, its types named as the canonical ones (a refused chunk's
/// error names them, as the JSON tree read into the canonical types did).
mod wire {
    /// A stream chunk as an OpenAI-shaped upstream sends it, read in one typed pass: the canonical chunk's fields,
    /// whether `usage` is there at all, Moonshot's usage inside the first choice, an in-stream error.
    #[derive(serde::Deserialize)]
    pub(super) struct ChatChunk {
        #[serde(default)]
        pub(super) id: String,
        #[serde(default)]
        pub(super) object: String,
        #[serde(default)]
        pub(super) created: u64,
        #[serde(default)]
        pub(super) model: String,
        #[serde(default)]
        pub(super) choices: Vec<ChunkChoice>,
        /// `Some(None)`: the key is there, `null`.
        #[serde(default, deserialize_with = "super::present")]
        pub(super) usage: Option<Option<crate::canonical::Usage>>,
        #[serde(default)]
        pub(super) error: Option<serde_json::Value>,
    }

    #[derive(serde::Deserialize)]
    pub(super) struct ChunkChoice {
        #[serde(default)]
        pub(super) index: u32,
        #[serde(default)]
        pub(super) delta: crate::canonical::Delta,
        #[serde(default)]
        pub(super) finish_reason: Option<String>,
        /// Moonshot's; read leniently (a usage that does not read is left out, not a broken chunk).
        #[serde(default)]
        pub(super) usage: Option<serde_json::Value>,
    }
}

/// A field that is there (`Some`), whatever its value, `null` included.
fn present<'de, D, T>(d: D) -> Result<Option<Option<T>>, D::Error>
where
    D: serde::Deserializer<'de>,
    T: serde::Deserialize<'de>,
{
    serde::Deserialize::deserialize(d).map(Some)
}

/// Whether an in-stream `error` key says the stream failed (truthy, as the OpenAI SDK reads it).
fn is_error(e: &Value) -> bool {
    !e.is_null() && e != &Value::Bool(false)
}

impl OpenAiStream {
    /// An in-stream error event as the provider's error (a 200 stream's "bad request" is the upstream's fault).
    fn error(&self, data: &str) -> ProviderError {
        let mut e = (self.classify)(200, &HeaderMap::new(), data);
        if e.class == ErrorClass::BadRequest {
            e.class = ErrorClass::Overloaded;
        }
        e
    }

    /// One chunk, and whether its bytes go out as they came (`Some(has a usage key)`). Read in one typed pass; a
    /// chunk that pass refuses is read again through a JSON tree, for the error it must give (invalid JSON, an
    /// error event with odd fields beside it, a field of the wrong type) or the chunk it still is (a repeated key,
    /// which a tree takes, last one winning); its bytes then never go out as they came.
    fn chunk(&self, data: &str) -> Result<(ChatChunk, Option<bool>), ProviderError> {
        let (w, typed) = match serde_json::from_str::<wire::ChatChunk>(data) {
            Ok(w) => (w, true),
            Err(_) => {
                let v: Value = http::parse_json(data.as_bytes())?;
                if v.get("error").is_some_and(is_error) {
                    return Err(self.error(data));
                }
                let w: wire::ChatChunk = serde_json::from_value(v).map_err(|e| {
                    ProviderError::new(ErrorClass::Malformed, format!("bad stream chunk: {e}"))
                })?;
                (w, false)
            }
        };
        if w.error.as_ref().is_some_and(is_error) {
            return Err(self.error(data));
        }
        let usage_key = w.usage.is_some();
        let mut usage = w.usage.flatten();
        let mut usage_moved = false;
        let mut choices = Vec::with_capacity(w.choices.len());
        for (i, c) in w.choices.into_iter().enumerate() {
            if i == 0 && usage.is_none() {
                if let Some(u) = c.usage.and_then(|u| serde_json::from_value(u).ok()) {
                    usage = Some(u);
                    usage_moved = true;
                }
            }
            choices.push(ChunkChoice {
                index: c.index,
                delta: c.delta,
                finish_reason: c.finish_reason,
            });
        }
        // A data field written on several lines is one JSON text with line breaks in it: sent on as it came, they
        // would end the client's `data:` line (SSE breaks lines at CR as well as LF) in the middle of the object.
        let as_is = typed
            && self.flavor == Flavor::OpenAi
            && is_object(data.as_bytes())
            && memchr::memchr2(b'\n', b'\r', data.as_bytes()).is_none()
            && !usage_moved
            && !w.id.is_empty()
            && w.created != 0
            && w.object == "chat.completion.chunk";
        let chunk = ChatChunk {
            id: w.id,
            object: "chat.completion.chunk".to_string(),
            created: w.created,
            model: w.model,
            choices,
            usage,
            raw: None,
        };
        Ok((chunk, as_is.then_some(usage_key)))
    }
}

impl Translator for OpenAiStream {
    fn on_event(&mut self, event: Event) -> Result<Step, ProviderError> {
        let data = event.data.trim();
        if data.starts_with("[DONE]") {
            self.done = true;
            return Ok(Step {
                chunks: vec![],
                done: true,
            });
        }
        let start = data.as_ptr() as usize - event.data.as_ptr() as usize;
        let range = start..start + data.len();
        let (mut chunk, as_is) = self.chunk(data)?;
        if let Some(usage_key) = as_is {
            // The event's own string, moved (not copied) into the bytes that go out.
            chunk.raw = Some(RawChunk {
                bytes: bytes::Bytes::from(event.data).slice(range),
                usage_key,
            });
        }
        Ok(Step {
            chunks: vec![chunk],
            done: false,
        })
    }
}

/// Pulls `{error:{message,type,code}}` out of an OpenAI-shaped body.
pub(crate) fn error_fields(body: &str) -> Option<(String, Option<String>, Option<String>)> {
    let v: Value = serde_json::from_str(body).ok()?;
    let e = v.get("error")?;
    let s = |k: &str| e.get(k).and_then(Value::as_str).map(str::to_string);
    let message = s("message").unwrap_or_default();
    Some((message, s("type"), s("code")))
}

/// OpenAI: classify by `code`, then `type`, then status.
pub fn classify(status: u16, headers: &HeaderMap, body: &str) -> ProviderError {
    let Some((message, kind, code)) = error_fields(body) else {
        return ProviderError::new(class_from_status(status), http::opaque_body_message(body))
            .with_retry_after(retry_after_header(headers));
    };
    let by_code = code.as_deref().and_then(|c| match c {
        "insufficient_quota"
        | "credit_balance_exhausted"
        | "organization_spend_limit_exceeded"
        | "project_spend_limit_exceeded"
        | "organization_usage_limit_exceeded"
        | "billing_hard_limit_reached" => Some(ErrorClass::QuotaExhausted),
        "rate_limit_exceeded" | "slow_down" => Some(ErrorClass::RateLimited),
        "context_length_exceeded" | "string_above_max_length" => Some(ErrorClass::ContextLength),
        "invalid_api_key" | "unsupported_country_region_territory" => Some(ErrorClass::Auth),
        "model_not_found" | "not_found" => Some(ErrorClass::NotFound),
        "server_is_overloaded" => Some(ErrorClass::Overloaded),
        "content_filter" | "content_policy_violation" => Some(ErrorClass::ContentFilter),
        _ => None,
    });
    let by_type = kind.as_deref().and_then(|t| match t {
        "insufficient_quota" => Some(ErrorClass::QuotaExhausted),
        "tokens" | "requests" | "rate_limit_error" => Some(ErrorClass::RateLimited),
        "server_error" | "service_unavailable_error" => Some(ErrorClass::Overloaded),
        "authentication_error" | "permission_error" => Some(ErrorClass::Auth),
        _ => None,
    });
    let class = by_code.or(by_type).unwrap_or_else(|| class_from_status(status));
    let retry = retry_after_header(headers).or_else(|| retry_after_in_text(&message));
    ProviderError::new(class, message)
        .with_code(code.or(kind))
        .with_retry_after(retry)
}

#[cfg(test)]
#[path = "openai_tests.rs"]
pub(crate) mod tests;
