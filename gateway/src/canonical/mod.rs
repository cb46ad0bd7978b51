//! Canonical types: OpenAI chat completions and embeddings are the lingua franca every adapter translates to.

mod chat;
mod embeddings;

pub use chat::{
    ChatChunk, ChatRequest, ChatResponse, Choice, ChunkChoice, Delta, Message, Role, ToolCall, ToolCallDelta,
    ToolFunction, Usage,
};
pub use embeddings::{Embedding, EmbeddingInput, EmbeddingsRequest, EmbeddingsResponse, EmbeddingsUsage};

/// Unix time in seconds (wall clock, for `created`).
pub fn unix_now() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_secs())
        .unwrap_or(0)
}

/// A fresh random hex id with a prefix, e.g. `chatcmpl-1a2b...`.
pub fn new_id(prefix: &str) -> String {
    format!("{prefix}-{:016x}{:08x}", fastrand::u64(..), fastrand::u32(..))
}
