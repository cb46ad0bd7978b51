//! The five upstream providers the fakes imitate: names, default ports and model catalogues.

use std::fmt;
use std::str::FromStr;

/// One upstream API that `llm-mocks` can fake.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Provider {
    /// OpenAI (`/v1/...`).
    OpenAi,
    /// Moonshot Kimi (`/v1/...`, OpenAI-compatible with Moonshot's differences).
    Kimi,
    /// Alibaba Qwen through DashScope: compatible mode and the native API.
    Qwen,
    /// Sber GigaChat: OAuth at `/api/v2/oauth`, API at `/api/v1`.
    GigaChat,
    /// A local Ollama (`/api/...` and the OpenAI-compatible `/v1`).
    Ollama,
}

/// A model the fake lists and accepts.
#[derive(Debug, Clone, Copy)]
pub struct ModelInfo {
    /// The name clients send.
    pub id: &'static str,
    /// Whether it is an embedding model (otherwise a chat model).
    pub embedding: bool,
    /// Context window in tokens (requests above it get `context_length` errors).
    pub context: u32,
}

const fn chat(id: &'static str, context: u32) -> ModelInfo {
    ModelInfo {
        id,
        embedding: false,
        context,
    }
}
const fn embed(id: &'static str) -> ModelInfo {
    ModelInfo {
        id,
        embedding: true,
        context: 8192,
    }
}

const OPENAI_MODELS: &[ModelInfo] = &[
    chat("gpt-4o-mini", 128_000),
    chat("gpt-4o", 128_000),
    chat("gpt-4.1", 1_047_576),
    chat("gpt-4.1-mini", 1_047_576),
    chat("gpt-4.1-nano", 1_047_576),
    chat("gpt-3.5-turbo", 16_385),
    chat("o4-mini", 200_000),
    embed("text-embedding-3-small"),
    embed("text-embedding-3-large"),
    embed("text-embedding-ada-002"),
];
const KIMI_MODELS: &[ModelInfo] = &[
    chat("moonshot-v1-8k", 8_192),
    chat("moonshot-v1-32k", 32_768),
    chat("moonshot-v1-128k", 131_072),
    chat("moonshot-v1-auto", 131_072),
    chat("kimi-latest", 131_072),
    chat("kimi-k2-0905-preview", 262_144),
    chat("kimi-k2-turbo-preview", 262_144),
    chat("kimi-k2-thinking", 262_144),
];
const QWEN_MODELS: &[ModelInfo] = &[
    chat("qwen-plus", 131_072),
    chat("qwen-turbo", 1_000_000),
    chat("qwen-max", 32_768),
    chat("qwen-long", 10_000_000),
    chat("qwen3-max", 262_144),
    embed("text-embedding-v1"),
    embed("text-embedding-v2"),
    embed("text-embedding-v3"),
    embed("text-embedding-v4"),
];
const GIGACHAT_MODELS: &[ModelInfo] = &[
    chat("GigaChat", 32_768),
    chat("GigaChat-Pro", 32_768),
    chat("GigaChat-Max", 32_768),
    chat("GigaChat-2", 131_072),
    chat("GigaChat-2-Pro", 131_072),
    chat("GigaChat-2-Max", 131_072),
    embed("Embeddings"),
    embed("EmbeddingsGigaR"),
];
const OLLAMA_MODELS: &[ModelInfo] = &[
    chat("llama3.2:latest", 131_072),
    chat("qwen2.5:7b", 32_768),
    chat("mistral:latest", 32_768),
    embed("all-minilm:latest"),
    embed("nomic-embed-text:latest"),
];

impl Provider {
    /// Every provider, in the order of the default ports.
    pub const ALL: [Provider; 5] = [
        Provider::OpenAi,
        Provider::Kimi,
        Provider::Qwen,
        Provider::GigaChat,
        Provider::Ollama,
    ];

    /// The lowercase name used on the command line, in logs and in answers.
    pub fn name(self) -> &'static str {
        match self {
            Provider::OpenAi => "openai",
            Provider::Kimi => "kimi",
            Provider::Qwen => "qwen",
            Provider::GigaChat => "gigachat",
            Provider::Ollama => "ollama",
        }
    }

    /// The default port of `llm-mocks serve` (DESIGN.md).
    pub fn default_port(self) -> u16 {
        match self {
            Provider::OpenAi => 18081,
            Provider::Kimi => 18082,
            Provider::Qwen => 18083,
            Provider::GigaChat => 18084,
            Provider::Ollama => 18085,
        }
    }

    /// The models this fake lists and accepts.
    pub fn models(self) -> &'static [ModelInfo] {
        match self {
            Provider::OpenAi => OPENAI_MODELS,
            Provider::Kimi => KIMI_MODELS,
            Provider::Qwen => QWEN_MODELS,
            Provider::GigaChat => GIGACHAT_MODELS,
            Provider::Ollama => OLLAMA_MODELS,
        }
    }

    /// Looks a model up by the name a client sent. Ollama names default to the `latest` tag.
    pub fn find_model(self, name: &str) -> Option<&'static ModelInfo> {
        let models = self.models();
        models.iter().find(|m| m.id == name).or_else(|| {
            (self == Provider::Ollama && !name.contains(':'))
                .then(|| models.iter().find(|m| m.id.strip_suffix(":latest") == Some(name)))
                .flatten()
        })
    }

    /// The path prefix of the OpenAI-shaped API, relative to the server root.
    pub fn openai_prefix(self) -> &'static str {
        match self {
            Provider::Qwen => "/compatible-mode/v1",
            Provider::GigaChat => "/api/v1",
            _ => "/v1",
        }
    }
}

impl fmt::Display for Provider {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

/// The error of parsing a provider name.
#[derive(Debug, thiserror::Error)]
#[error("unknown provider `{0}`: expected one of openai, kimi, qwen, gigachat, ollama")]
pub struct UnknownProvider(pub String);

impl FromStr for Provider {
    type Err = UnknownProvider;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Provider::ALL
            .into_iter()
            .find(|p| p.name().eq_ignore_ascii_case(s.trim()))
            .ok_or_else(|| UnknownProvider(s.to_string()))
    }
}
