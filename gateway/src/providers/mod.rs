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
pub mod redact;
pub mod stream;

use std::collections::HashMap;
use std::sync::Arc;

use crate::canonical::{ChatRequest, ChatResponse, EmbeddingsRequest, EmbeddingsResponse};
use crate::config::{Config, ProviderConfig, ProviderKind, QwenApi};
pub use error::{ErrorClass, ProviderError};
pub use http::ClientBuildError;
pub use redact::Redactor;
pub use stream::ChunkStream;

/// How much of a non-stream answer is read.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Read {
    /// All of it, into the canonical answer.
    #[default]
    Full,
    /// For a client that takes OpenAI's own bytes as they are (`/v1/chat/completions`, not streamed): an OpenAI
    /// answer that goes out as it came is read by its head only (id, model, usage, finish reasons); its messages
    /// are read when someone needs them ([`ChatResponse::complete`]). Any other answer is read in full.
    PassThrough,
}

/// One upstream API client. Every error it returns (before the first byte or inside a stream) has been through
/// the config's [`Redactor`]: nothing an upstream wrote reaches a caller unredacted.
#[derive(Debug)]
pub struct Adapter {
    wire: Wire,
    redactor: Arc<Redactor>,
}

/// The wire format of one upstream.
#[derive(Debug)]
enum Wire {
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
    /// Builds the adapter for one provider; `redactor` holds every secret of the config.
    pub fn build(pc: &ProviderConfig, redactor: Arc<Redactor>) -> Result<Adapter, ClientBuildError> {
        Adapter::with_client(pc, http::build_client(pc)?, redactor)
    }

    /// Builds the adapter for one provider on a given (pooled) client.
    pub fn with_client(
        pc: &ProviderConfig,
        client: reqwest::Client,
        redactor: Arc<Redactor>,
    ) -> Result<Adapter, ClientBuildError> {
        Ok(Adapter {
            wire: Wire::build(pc, client)?,
            redactor,
        })
    }

    /// Non-stream chat with the provider's model name, its answer read as `read` says.
    pub async fn chat(
        &self,
        req: &ChatRequest,
        model: &str,
        read: Read,
    ) -> Result<ChatResponse, ProviderError> {
        self.wire
            .chat(req, model, read)
            .await
            .map_err(|e| self.redactor.error(e))
    }

    /// Streamed chat: resolves when the upstream accepted the request (status 2xx). Errors inside the stream are
    /// redacted too.
    pub async fn chat_stream(&self, req: &ChatRequest, model: &str) -> Result<ChunkStream, ProviderError> {
        use futures::StreamExt;
        let stream = self
            .wire
            .chat_stream(req, model)
            .await
            .map_err(|e| self.redactor.error(e))?;
        let redactor = self.redactor.clone();
        Ok(Box::pin(
            stream.map(move |item| item.map_err(|e| redactor.error(e))),
        ))
    }

    /// The bytes of the request body a chat request is sent upstream as (what [`Adapter::chat`] sends).
    pub fn wire_body(&self, req: &ChatRequest, model: &str, stream: bool) -> Vec<u8> {
        self.wire.wire_body(req, model, stream)
    }

    /// A non-stream answer's bytes to canonical (what [`Adapter::chat`] does with the upstream's answer).
    pub fn parse_chat(&self, body: Vec<u8>, model: &str, read: Read) -> Result<ChatResponse, ProviderError> {
        self.wire.parse_chat(body, model, read)
    }

    /// Embeddings.
    pub async fn embed(
        &self,
        req: &EmbeddingsRequest,
        model: &str,
    ) -> Result<EmbeddingsResponse, ProviderError> {
        self.wire
            .embed(req, model)
            .await
            .map_err(|e| self.redactor.error(e))
    }
}

impl Wire {
    fn build(pc: &ProviderConfig, client: reqwest::Client) -> Result<Wire, ClientBuildError> {
        let secret = pc.secret.clone();
        let compat = |flavor| {
            Wire::OpenAiCompat(openai::OpenAiCompat::new(
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
                Wire::QwenNative(qwen::QwenNative::new(&pc.base_url, secret, client))
            }
            ProviderKind::Qwen => compat(openai::Flavor::Qwen),
            ProviderKind::GigaChat => match &pc.gigachat_auth {
                Some(auth) => Wire::GigaChat(gigachat::GigaChat::new(
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
            ProviderKind::Ollama => Wire::Ollama(ollama::Ollama::new(&pc.base_url, client)),
        })
    }

    async fn chat(&self, req: &ChatRequest, model: &str, read: Read) -> Result<ChatResponse, ProviderError> {
        match self {
            Wire::OpenAiCompat(a) => a.chat(req, model, read).await,
            Wire::QwenNative(a) => a.chat(req, model).await,
            Wire::GigaChat(a) => a.chat(req, model).await,
            Wire::Ollama(a) => a.chat(req, model).await,
        }
    }

    /// The bytes of the request body a chat request is sent upstream as (what [`Wire::chat`] sends).
    fn wire_body(&self, req: &ChatRequest, model: &str, stream: bool) -> Vec<u8> {
        let body = match self {
            Wire::OpenAiCompat(a) => serde_json::to_vec(&a.chat_body(req, model, stream)),
            Wire::QwenNative(_) => serde_json::to_vec(&qwen::native_body(req, model, stream)),
            Wire::GigaChat(_) => serde_json::to_vec(&gigachat::translate_request(req, model, stream)),
            Wire::Ollama(_) => serde_json::to_vec(&ollama::request(req, model, stream)),
        };
        body.unwrap_or_default()
    }

    /// A non-stream answer's bytes to canonical (what [`Wire::chat`] does with the upstream's answer).
    fn parse_chat(&self, body: Vec<u8>, model: &str, read: Read) -> Result<ChatResponse, ProviderError> {
        match self {
            Wire::OpenAiCompat(a) => a.parse_chat(body, read),
            Wire::QwenNative(_) => qwen::parse_native(&body, model),
            Wire::GigaChat(_) => gigachat::parse_chat(&body),
            Wire::Ollama(_) => ollama::parse_chat(&body),
        }
    }

    async fn chat_stream(&self, req: &ChatRequest, model: &str) -> Result<ChunkStream, ProviderError> {
        match self {
            Wire::OpenAiCompat(a) => a.chat_stream(req, model).await,
            Wire::QwenNative(a) => a.chat_stream(req, model).await,
            Wire::GigaChat(a) => a.chat_stream(req, model).await,
            Wire::Ollama(a) => a.chat_stream(req, model).await,
        }
    }

    async fn embed(&self, req: &EmbeddingsRequest, model: &str) -> Result<EmbeddingsResponse, ProviderError> {
        match self {
            Wire::OpenAiCompat(a) => a.embed(req, model).await,
            Wire::QwenNative(a) => a.embed(req, model).await,
            Wire::GigaChat(a) => a.embed(req, model).await,
            Wire::Ollama(a) => a.embed(req, model).await,
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
    let redactor = Arc::new(Redactor::from_config(cfg));
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
            adapter: Adapter::with_client(pc, client, redactor.clone())?,
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
