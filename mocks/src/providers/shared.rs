//! Pieces every provider module uses: how faults shape a reply (delays, cut points, broken bodies) and how
//! embedding inputs are read.

use crate::chat::Invalid;
use crate::fault::{FaultKind, FaultSpec};
use serde_json::Value;

/// Default number of content pieces sent before a stream fault breaks the stream.
pub(crate) const DEFAULT_AFTER_CHUNKS: u64 = 2;

/// Default delay of the `slow` fault.
pub(crate) const DEFAULT_SLOW_MS: u64 = 5000;

/// The delay a fault adds (on top of the configured latency).
pub(crate) fn fault_delay(fault: Option<&FaultSpec>) -> u64 {
    match fault {
        // With `after_chunks`, `slow` stalls a stream in the middle instead (the server does it).
        Some(f) if f.fault == FaultKind::Slow && f.after_chunks.is_some() => 0,
        Some(f) if f.fault == FaultKind::Slow => f.delay_ms.unwrap_or(DEFAULT_SLOW_MS),
        Some(f) => f.delay_ms.unwrap_or(0),
        None => 0,
    }
}

/// How many stream pieces go out before a stream fault breaks the stream.
pub(crate) fn after_chunks(fault: Option<&FaultSpec>) -> usize {
    fault.and_then(|f| f.after_chunks).unwrap_or(DEFAULT_AFTER_CHUNKS) as usize
}

/// The first half of a text (on a character boundary): a body cut short.
pub(crate) fn first_half(s: &str) -> String {
    let mut i = s.len() / 2;
    while !s.is_char_boundary(i) {
        i -= 1;
    }
    s[..i].to_string()
}

/// The embedding width of a model (or `dimensions` when the client asked for one).
pub(crate) fn embedding_dims(model: &str) -> usize {
    match model {
        "text-embedding-3-large" => 3072,
        "text-embedding-3-small" | "text-embedding-ada-002" | "text-embedding-v1" | "text-embedding-v2" => {
            1536
        }
        "text-embedding-v3" | "text-embedding-v4" | "Embeddings" => 1024,
        "EmbeddingsGigaR" => 2560,
        "nomic-embed-text:latest" | "nomic-embed-text" => 768,
        _ => 384,
    }
}

/// The texts of an embeddings `input`: a string, strings, or token arrays (rendered as text).
pub(crate) fn embedding_inputs(v: Option<&Value>) -> Result<Vec<String>, Invalid> {
    let bad = || {
        Invalid::new(
            Some("input"),
            "'input' must be a string, an array of strings, or an array of token arrays.",
        )
    };
    match v {
        Some(Value::String(s)) => Ok(vec![s.clone()]),
        Some(Value::Array(items)) if !items.is_empty() => {
            if items.iter().all(Value::is_number) {
                return Ok(vec![Value::Array(items.clone()).to_string()]);
            }
            items
                .iter()
                .map(|i| match i {
                    Value::String(s) => Ok(s.clone()),
                    Value::Array(_) => Ok(i.to_string()),
                    _ => Err(bad()),
                })
                .collect()
        }
        None => Err(Invalid::new(
            Some("input"),
            "Missing required parameter: 'input'.",
        )),
        _ => Err(bad()),
    }
}
