//! Canonical types: OpenAI chat completions and embeddings are the lingua franca every adapter translates to.

mod chat;
mod embeddings;
mod fields;
pub mod messages;
pub mod responses;
pub mod validate;

pub use chat::{
    ChatChunk, ChatRequest, ChatResponse, Choice, ChunkChoice, Delta, Message, Raw, RawChunk, Role, ToolCall,
    ToolCallDelta, ToolFunction, Usage,
};
pub use embeddings::{Embedding, EmbeddingInput, EmbeddingsRequest, EmbeddingsResponse, EmbeddingsUsage};

/// Unix time in seconds (wall clock, for `created`).
pub fn unix_now() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_secs())
        .unwrap_or(0)
}

/// A fresh random hex id with a prefix, e.g. `chatcmpl-1a2b...`: 24 hex digits (96 random bits). Made on every
/// request (the request id), so written digit by digit rather than through `format!`.
pub fn new_id(prefix: &str) -> String {
    const HEX: &[u8; 16] = b"0123456789abcdef";
    let mut id = String::with_capacity(prefix.len() + 25);
    id.push_str(prefix);
    id.push('-');
    let bits = (u128::from(fastrand::u64(..)) << 32) | u128::from(fastrand::u32(..));
    for shift in (0..24).rev() {
        id.push(char::from(HEX[((bits >> (shift * 4)) & 0xf) as usize]));
    }
    id
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ids_are_the_prefix_and_24_lowercase_hex_digits_and_differ() {
        let a = new_id("req");
        let b = new_id("req");
        assert_ne!(a, b);
        let hex = a.strip_prefix("req-").unwrap();
        assert_eq!(hex.len(), 24, "{a}");
        assert!(
            hex.bytes()
                .all(|c| c.is_ascii_digit() || (b'a'..=b'f').contains(&c)),
            "{a}"
        );
    }
}
