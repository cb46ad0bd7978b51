//! Chat completion request, response and stream chunk (OpenAI shapes); unknown request fields are kept.

use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};

/// Message author.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Role {
    /// System prompt.
    System,
    /// Newer name for system.
    Developer,
    /// The user.
    User,
    /// The model.
    Assistant,
    /// A tool result.
    Tool,
    /// Legacy function result.
    Function,
}

/// A tool call made by the assistant.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ToolCall {
    /// Call id, echoed by the tool message.
    #[serde(default)]
    pub id: String,
    /// Always `function`.
    #[serde(rename = "type", default = "function_type")]
    pub kind: String,
    /// Name and JSON-string arguments.
    pub function: ToolFunction,
}

fn function_type() -> String {
    "function".to_string()
}

/// Function name and arguments (a JSON string, as OpenAI sends it).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ToolFunction {
    /// Function name.
    #[serde(default)]
    pub name: String,
    /// Arguments as a JSON string.
    #[serde(default)]
    pub arguments: String,
}

/// One chat message.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Message {
    /// Author.
    pub role: Role,
    /// String or content-parts array; null for assistant tool calls.
    #[serde(default)]
    pub content: Option<Value>,
    /// Optional author name / function name.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub name: Option<String>,
    /// Assistant tool calls.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub tool_calls: Option<Vec<ToolCall>>,
    /// Tool result: the call it answers.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub tool_call_id: Option<String>,
    /// Provider extras (`refusal`, `reasoning_content`, `partial`...), passed through.
    #[serde(flatten)]
    pub extra: Map<String, Value>,
}

impl Message {
    /// A message whose content is plain text.
    pub fn plain(role: Role, text: String) -> Message {
        Message {
            role,
            content: Some(Value::String(text)),
            name: None,
            tool_calls: None,
            tool_call_id: None,
            extra: Map::new(),
        }
    }

    /// Text of the content: the string, or the text parts joined.
    pub fn text(&self) -> String {
        match &self.content {
            Some(Value::String(s)) => s.clone(),
            Some(Value::Array(parts)) => parts
                .iter()
                .filter_map(|p| p.get("text").and_then(Value::as_str))
                .collect::<Vec<_>>()
                .join(""),
            _ => String::new(),
        }
    }
}

/// `POST /v1/chat/completions` body. Known fields are typed; the rest is kept for OpenAI-compatible upstreams.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ChatRequest {
    /// Logical or concrete model name.
    pub model: String,
    /// The conversation.
    pub messages: Vec<Message>,
    /// Stream as SSE.
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub stream: bool,
    /// Sampling temperature.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub temperature: Option<f64>,
    /// Nucleus sampling.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub top_p: Option<f64>,
    /// Legacy max tokens.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub max_tokens: Option<u32>,
    /// Newer max tokens.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub max_completion_tokens: Option<u32>,
    /// Stop sequences (string or array).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub stop: Option<Value>,
    /// Seed.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub seed: Option<i64>,
    /// Tool definitions.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub tools: Option<Vec<Value>>,
    /// Tool choice.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub tool_choice: Option<Value>,
    /// Everything else (`stream_options`, `response_format`, `user`, vendor extras...).
    #[serde(flatten)]
    pub extra: Map<String, Value>,
}

impl ChatRequest {
    /// The effective max tokens.
    pub fn max_tokens(&self) -> Option<u32> {
        self.max_completion_tokens.or(self.max_tokens)
    }

    /// Whether the client asked for a usage chunk at the end of a stream.
    pub fn include_usage(&self) -> bool {
        self.extra
            .get("stream_options")
            .and_then(|o| o.get("include_usage"))
            .and_then(Value::as_bool)
            .unwrap_or(false)
    }
}

/// Token usage.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Usage {
    /// Prompt tokens.
    #[serde(default)]
    pub prompt_tokens: u64,
    /// Completion tokens.
    #[serde(default)]
    pub completion_tokens: u64,
    /// Sum.
    #[serde(default)]
    pub total_tokens: u64,
}

impl Usage {
    /// Builds a usage with a computed total.
    pub fn new(prompt: u64, completion: u64) -> Usage {
        Usage {
            prompt_tokens: prompt,
            completion_tokens: completion,
            total_tokens: prompt + completion,
        }
    }
}

/// A non-stream choice.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Choice {
    /// Index.
    #[serde(default)]
    pub index: u32,
    /// The answer.
    pub message: Message,
    /// stop, length, tool_calls, content_filter, function_call.
    #[serde(default)]
    pub finish_reason: Option<String>,
}

/// A non-stream chat completion.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ChatResponse {
    /// Completion id.
    #[serde(default)]
    pub id: String,
    /// `chat.completion`.
    #[serde(default)]
    pub object: String,
    /// Unix seconds.
    #[serde(default)]
    pub created: u64,
    /// The provider's model name.
    #[serde(default)]
    pub model: String,
    /// Choices.
    pub choices: Vec<Choice>,
    /// Usage.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub usage: Option<Usage>,
    /// The upstream's own bytes, when they are this answer in OpenAI's shape as is: sent to the client unchanged
    /// (fields the canonical type does not model, like `system_fingerprint`, included) instead of written again.
    #[serde(skip)]
    pub raw: Option<Raw>,
}

/// An upstream's own bytes of an answer in OpenAI's shape as is (see [`ChatResponse::raw`]).
#[derive(Debug, Clone, PartialEq)]
pub struct Raw {
    /// The body as the upstream sent it.
    pub bytes: bytes::Bytes,
    /// Only the head was read (id, model, usage, each choice's role and finish reason), for a client that takes
    /// these bytes as they are: the choices' messages hold no content until [`ChatResponse::complete`].
    pub head_only: bool,
}

impl Raw {
    /// Bytes the answer was read from in full.
    pub fn full(bytes: bytes::Bytes) -> Raw {
        Raw {
            bytes,
            head_only: false,
        }
    }
}

impl ChatResponse {
    /// The answer with its messages: read again from the upstream's bytes when only their head was read (see
    /// [`Raw::head_only`]), else as it is.
    pub fn complete(self) -> ChatResponse {
        let Some(raw) = self.raw.as_ref().filter(|r| r.head_only) else {
            return self;
        };
        match serde_json::from_slice::<ChatResponse>(&raw.bytes) {
            Ok(mut full) => {
                full.raw = Some(Raw::full(raw.bytes.clone()));
                full
            }
            Err(e) => {
                // The head read accepts nothing the full read refuses, so this does not happen; if it did, the
                // bytes still go out as they are, only the messages stay empty.
                tracing::warn!(error = %e, "an answer read by its head does not read in full");
                self
            }
        }
    }

    /// Text of the first choice.
    pub fn text(&self) -> String {
        self.choices.first().map(|c| c.message.text()).unwrap_or_default()
    }
}

/// Streamed tool-call fragment.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ToolCallDelta {
    /// Which call this fragment belongs to.
    #[serde(default)]
    pub index: u32,
    /// Call id (first fragment only).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub id: Option<String>,
    /// `function` (first fragment only).
    #[serde(rename = "type", default, skip_serializing_if = "Option::is_none")]
    pub kind: Option<String>,
    /// Name (first fragment) and argument fragment.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub function: Option<Value>,
}

/// A stream delta.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct Delta {
    /// Role (first chunk).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub role: Option<Role>,
    /// Text fragment.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub content: Option<String>,
    /// Tool-call fragments.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub tool_calls: Option<Vec<ToolCallDelta>>,
}

/// A stream choice.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ChunkChoice {
    /// Index.
    #[serde(default)]
    pub index: u32,
    /// The fragment.
    #[serde(default)]
    pub delta: Delta,
    /// Set on the last chunk of a choice.
    #[serde(default)]
    pub finish_reason: Option<String>,
}

/// One `chat.completion.chunk`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ChatChunk {
    /// Same id on every chunk.
    #[serde(default)]
    pub id: String,
    /// `chat.completion.chunk`.
    #[serde(default)]
    pub object: String,
    /// Unix seconds.
    #[serde(default)]
    pub created: u64,
    /// Model.
    #[serde(default)]
    pub model: String,
    /// Choices (empty on the usage chunk).
    #[serde(default)]
    pub choices: Vec<ChunkChoice>,
    /// Usage (final chunk).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub usage: Option<Usage>,
    /// The upstream's own bytes, when they are this chunk in OpenAI's shape as is: sent to the client unchanged
    /// instead of written again. Whoever changes a chunk's fields clears it.
    #[serde(skip)]
    pub raw: Option<RawChunk>,
}

/// An upstream's own bytes of a stream chunk in OpenAI's shape as is (see [`ChatChunk::raw`]).
#[derive(Debug, Clone, PartialEq)]
pub struct RawChunk {
    /// The event's data: one JSON object, as the upstream sent it.
    pub bytes: bytes::Bytes,
    /// It has a top-level `usage` key (OpenAI writes `"usage":null` on every chunk once usage is asked for).
    pub usage_key: bool,
}

impl ChatChunk {
    /// A chunk with one choice.
    pub fn with_delta(
        id: &str,
        created: u64,
        model: &str,
        delta: Delta,
        finish: Option<String>,
    ) -> ChatChunk {
        ChatChunk {
            id: id.to_string(),
            object: "chat.completion.chunk".to_string(),
            created,
            model: model.to_string(),
            choices: vec![ChunkChoice {
                index: 0,
                delta,
                finish_reason: finish,
            }],
            usage: None,
            raw: None,
        }
    }
}
