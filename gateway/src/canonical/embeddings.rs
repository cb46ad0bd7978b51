//! Embeddings request and response (OpenAI shapes).

use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};

/// `input`: one string, many strings, or token arrays (passed through where supported).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(untagged)]
pub enum EmbeddingInput {
    /// One text.
    One(String),
    /// Many texts.
    Many(Vec<String>),
    /// Token ids (OpenAI only).
    Tokens(Value),
}

impl EmbeddingInput {
    /// The texts, or `None` for token input.
    pub fn texts(&self) -> Option<Vec<String>> {
        match self {
            EmbeddingInput::One(s) => Some(vec![s.clone()]),
            EmbeddingInput::Many(v) => Some(v.clone()),
            EmbeddingInput::Tokens(_) => None,
        }
    }
}

/// `POST /v1/embeddings` body.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct EmbeddingsRequest {
    /// Logical or concrete model.
    pub model: String,
    /// What to embed.
    pub input: EmbeddingInput,
    /// `float` (default) or `base64`: applied by the gateway, upstreams are always asked for floats.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub encoding_format: Option<String>,
    /// Output dimensions.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub dimensions: Option<u32>,
    /// Other fields (`user`...).
    #[serde(flatten)]
    pub extra: Map<String, Value>,
}

/// One vector.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Embedding {
    /// `embedding`.
    #[serde(default)]
    pub object: String,
    /// Input index.
    #[serde(default)]
    pub index: u32,
    /// The vector.
    pub embedding: Vec<f32>,
}

/// Embeddings usage.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct EmbeddingsUsage {
    /// Prompt tokens.
    #[serde(default)]
    pub prompt_tokens: u64,
    /// Total tokens.
    #[serde(default)]
    pub total_tokens: u64,
}

/// Embeddings response.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct EmbeddingsResponse {
    /// `list`.
    #[serde(default)]
    pub object: String,
    /// Vectors.
    pub data: Vec<Embedding>,
    /// Model.
    #[serde(default)]
    pub model: String,
    /// Usage.
    #[serde(default)]
    pub usage: EmbeddingsUsage,
}

impl EmbeddingsResponse {
    /// Builds a response from vectors in input order.
    pub fn from_vectors(model: &str, vectors: Vec<Vec<f32>>, usage: EmbeddingsUsage) -> EmbeddingsResponse {
        let data = vectors
            .into_iter()
            .enumerate()
            .map(|(i, embedding)| Embedding {
                object: "embedding".to_string(),
                index: i as u32,
                embedding,
            })
            .collect();
        EmbeddingsResponse {
            object: "list".to_string(),
            data,
            model: model.to_string(),
            usage,
        }
    }
}
