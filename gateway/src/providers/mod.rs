//! Provider adapters: one file per upstream API, each translating canonical (OpenAI) types to its wire format and
//! classifying every failure by the provider's own codes.
//!
//! `Adapter` is a closed enum rather than a trait object: five known providers, static dispatch, no boxing.

pub mod capabilities;
pub mod error;
pub mod gigachat;
pub mod http;
pub mod kimi;
pub mod ollama;
pub mod openai;
pub mod qwen;
pub mod stream;

use std::collections::HashMap;
use std::sync::Arc;

use crate::canonical::{ChatRequest, ChatResponse, EmbeddingsRequest, EmbeddingsResponse};
use crate::config::{Config, ProviderConfig, ProviderKind, QwenApi};
pub use error::{ErrorClass, ProviderError};
pub use http::ClientBuildError;
pub use stream::ChunkStream;

/// One upstream API client.
#[derive(Debug)]
pub enum Adapter {
    /// OpenAI, Kimi, or Qwen compatible mode.
    OpenAiCompat(openai::OpenAiCompat),
    /// Qwen native DashScope API.
    QwenNative(qwen::QwenNative),
    /// GigaChat with OAuth.
    GigaChat(gigachat::GigaChat),
    /// Local Ollama.
    Ollama(ollama::Ollama),
}

impl Adapter {
    /// Builds the adapter for one provider.
    pub fn build(pc: &ProviderConfig) -> Result<Adapter, ClientBuildError> {
        Adapter::with_client(pc, http::build_client(pc)?)
    }

    /// Builds the adapter for one provider on a given (pooled) client.
    pub fn with_client(pc: &ProviderConfig, client: reqwest::Client) -> Result<Adapter, ClientBuildError> {
        let secret = pc.secret.clone();
        let compat = |flavor| {
            Adapter::OpenAiCompat(openai::OpenAiCompat::new(
                &pc.base_url,
                secret.clone(),
                client.clone(),
                flavor,
            ))
        };
        Ok(match pc.kind {
            ProviderKind::OpenAi => compat(openai::Flavor::OpenAi),
            ProviderKind::Kimi => compat(openai::Flavor::Kimi),
            ProviderKind::Qwen if pc.qwen_api == QwenApi::Native => {
                Adapter::QwenNative(qwen::QwenNative::new(&pc.base_url, secret, client))
            }
            ProviderKind::Qwen => compat(openai::Flavor::Qwen),
            ProviderKind::GigaChat => match &pc.gigachat_auth {
                Some(auth) => Adapter::GigaChat(gigachat::GigaChat::new(
                    &pc.base_url,
                    auth.clone(),
                    secret,
                    client,
                )),
                None => {
                    return Err(ClientBuildError::Client {
                        provider: pc.name.clone(),
                        message: "gigachat needs auth settings".into(),
                    })
                }
            },
            ProviderKind::Ollama => Adapter::Ollama(ollama::Ollama::new(&pc.base_url, client)),
        })
    }

    /// Non-stream chat with the provider's model name.
    pub async fn chat(&self, req: &ChatRequest, model: &str) -> Result<ChatResponse, ProviderError> {
        match self {
            Adapter::OpenAiCompat(a) => a.chat(req, model).await,
            Adapter::QwenNative(a) => a.chat(req, model).await,
            Adapter::GigaChat(a) => a.chat(req, model).await,
            Adapter::Ollama(a) => a.chat(req, model).await,
        }
    }

    /// The bytes of the request body a chat request is sent upstream as (what [`Adapter::chat`] sends).
    pub fn wire_body(&self, req: &ChatRequest, model: &str, stream: bool) -> Vec<u8> {
        let body = match self {
            Adapter::OpenAiCompat(a) => serde_json::to_vec(&a.chat_body(req, model, stream)),
            Adapter::QwenNative(_) => serde_json::to_vec(&qwen::native_body(req, model, stream)),
            Adapter::GigaChat(_) => serde_json::to_vec(&gigachat::translate_request(req, model, stream)),
            Adapter::Ollama(_) => serde_json::to_vec(&ollama::request(req, model, stream)),
        };
        body.unwrap_or_default()
    }

    /// A non-stream answer's bytes to canonical (what [`Adapter::chat`] does with the upstream's answer).
    pub fn parse_chat(&self, body: Vec<u8>, model: &str) -> Result<ChatResponse, ProviderError> {
        match self {
            Adapter::OpenAiCompat(a) => a.parse_chat(body),
            Adapter::QwenNative(_) => qwen::parse_native(&body, model),
            Adapter::GigaChat(_) => gigachat::parse_chat(&body),
            Adapter::Ollama(_) => ollama::parse_chat(&body),
        }
    }

    /// Streamed chat: resolves when the upstream accepted the request (status 2xx).
    pub async fn chat_stream(&self, req: &ChatRequest, model: &str) -> Result<ChunkStream, ProviderError> {
        match self {
            Adapter::OpenAiCompat(a) => a.chat_stream(req, model).await,
            Adapter::QwenNative(a) => a.chat_stream(req, model).await,
            Adapter::GigaChat(a) => a.chat_stream(req, model).await,
            Adapter::Ollama(a) => a.chat_stream(req, model).await,
        }
    }

    /// Embeddings.
    pub async fn embed(
        &self,
        req: &EmbeddingsRequest,
        model: &str,
    ) -> Result<EmbeddingsResponse, ProviderError> {
        match self {
            Adapter::OpenAiCompat(a) => a.embed(req, model).await,
            Adapter::QwenNative(a) => a.embed(req, model).await,
            Adapter::GigaChat(a) => a.embed(req, model).await,
            Adapter::Ollama(a) => a.embed(req, model).await,
        }
    }
}

/// A named provider: its config and its adapter.
#[derive(Debug)]
pub struct Provider {
    /// Config name.
    pub name: String,
    /// API kind.
    pub kind: ProviderKind,
    /// The client.
    pub adapter: Adapter,
}

/// Builds every provider in config, keyed by name.
pub fn build_all(cfg: &Config) -> Result<Vec<Arc<Provider>>, ClientBuildError> {
    // Providers with the same connect timeout and CA bundle share one client (one pool, keyed by host inside):
    // building a TLS client loads the trust store, which is the slow part of start-up.
    let mut clients: HashMap<(std::time::Duration, Option<std::path::PathBuf>), reqwest::Client> =
        HashMap::new();
    let mut out = Vec::with_capacity(cfg.providers.len());
    for pc in cfg.providers.values() {
        let key = (pc.connect_timeout, pc.ca_bundle.clone());
        let client = match clients.get(&key) {
            Some(c) => c.clone(),
            None => {
                let c = http::build_client(pc)?;
                clients.insert(key, c.clone());
                c
            }
        };
        out.push(Arc::new(Provider {
            name: pc.name.clone(),
            kind: pc.kind,
            adapter: Adapter::with_client(pc, client)?,
        }));
    }
    Ok(out)
}

/// The texts of an embeddings request for a provider that embeds text only (token-id input is a 400).
pub(crate) fn embedding_texts(req: &EmbeddingsRequest, provider: &str) -> Result<Vec<String>, ProviderError> {
    req.input.texts().ok_or_else(|| {
        ProviderError::new(
            ErrorClass::BadRequest,
            format!("{provider} embeddings take text input, not token ids"),
        )
    })
}
