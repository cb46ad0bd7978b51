//! Entry points for the criterion benchmarks in `benches/` (not a stable API): each adapter's pure
//! translation step and the stream decoders, without HTTP.

use serde_json::Value;

use crate::canonical::{ChatRequest, ChatResponse};
use crate::providers::stream::{Decoder, Framing};
use crate::providers::{gigachat, ollama, openai, qwen, ProviderError};

/// A wire format the gateway translates to and from.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Wire {
    /// OpenAI.
    OpenAi,
    /// Moonshot Kimi.
    Kimi,
    /// DashScope native.
    QwenNative,
    /// GigaChat.
    GigaChat,
    /// Ollama native.
    Ollama,
}

impl Wire {
    /// Every wire format.
    pub const ALL: [Wire; 5] = [
        Wire::OpenAi,
        Wire::Kimi,
        Wire::QwenNative,
        Wire::GigaChat,
        Wire::Ollama,
    ];

    /// A short name.
    pub fn name(self) -> &'static str {
        match self {
            Wire::OpenAi => "openai",
            Wire::Kimi => "kimi",
            Wire::QwenNative => "qwen_native",
            Wire::GigaChat => "gigachat",
            Wire::Ollama => "ollama",
        }
    }
}

/// Canonical request -> the provider's JSON body.
pub fn request_body(wire: Wire, req: &ChatRequest, model: &str, stream: bool) -> Value {
    let compat = |flavor| {
        openai::OpenAiCompat::new("http://127.0.0.1:1/v1", None, reqwest::Client::new(), flavor)
            .chat_body(req, model, stream)
    };
    match wire {
        Wire::OpenAi => compat(openai::Flavor::OpenAi),
        Wire::Kimi => compat(openai::Flavor::Kimi),
        Wire::QwenNative => qwen::native_body(req, model, stream),
        Wire::GigaChat => gigachat::translate_request(req, model, stream),
        Wire::Ollama => ollama::request(req, model, stream),
    }
}

/// The provider's JSON answer -> canonical response.
pub fn parse_response(wire: Wire, body: &[u8], model: &str) -> Result<ChatResponse, ProviderError> {
    let v: Value = crate::providers::http::parse_json(body)?;
    match wire {
        Wire::OpenAi | Wire::Kimi => {
            let mut out: ChatResponse = serde_json::from_value(v).map_err(|e| {
                ProviderError::new(
                    crate::providers::ErrorClass::Malformed,
                    format!("bad response: {e}"),
                )
            })?;
            openai::normalize_response(&mut out);
            Ok(out)
        }
        Wire::QwenNative => qwen::native_response(&v, model),
        Wire::GigaChat => gigachat::translate_response(v),
        Wire::Ollama => ollama::response(&v),
    }
}

/// Decodes a whole SSE (`ndjson: false`) or NDJSON body fed in `piece`-byte pieces; returns the number of
/// events.
pub fn decode(body: &[u8], ndjson: bool, piece: usize) -> Result<usize, ProviderError> {
    let mut d = Decoder::new(if ndjson { Framing::Ndjson } else { Framing::Sse });
    let mut n = 0;
    for part in body.chunks(piece.max(1)) {
        n += d.push(part)?.len();
    }
    Ok(n + d.finish()?.len())
}
