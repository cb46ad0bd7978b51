//! Choosing the fault proxy for a harness run: an external Toxiproxy named by `TOXIPROXY_URL`, or an embedded
//! server on an ephemeral port. Either way the caller gets a [`Client`] and talks only the Toxiproxy API.

use tokio::net::TcpListener;

use crate::client::{Client, ClientError};
use crate::server::{Server, ServerConfig, ServerHandle};

/// Why no fault proxy could be had.
#[derive(Debug, thiserror::Error)]
pub enum BackendError {
    /// `TOXIPROXY_URL` names a server that does not answer `/version`.
    #[error("TOXIPROXY_URL={url} does not answer: {source}")]
    Unreachable {
        /// The URL from the environment.
        url: String,
        /// The cause.
        source: ClientError,
    },
    /// The embedded server could not start.
    #[error("cannot start the embedded chaos server: {0}")]
    Embedded(#[source] std::io::Error),
    /// The client could not be built.
    #[error(transparent)]
    Client(#[from] ClientError),
}

/// The fault proxy in use.
#[derive(Debug)]
pub enum Backend {
    /// A server someone else runs (a real Toxiproxy, or `llm-chaos serve`).
    External {
        /// Its client.
        client: Client,
        /// What it reported from `/version`.
        version: String,
    },
    /// A server in this process, stopped by [`Backend::shutdown`] (or when dropped).
    Embedded {
        /// Its client.
        client: Client,
        /// The server.
        server: ServerHandle,
    },
}

impl Backend {
    /// Uses `TOXIPROXY_URL` when it is set and not empty, otherwise starts an embedded server with `config`.
    pub async fn from_env_or_embedded(config: ServerConfig) -> Result<Self, BackendError> {
        Self::from_url_or_embedded(std::env::var("TOXIPROXY_URL").ok(), config).await
    }

    /// Uses `url` when given and not blank (checking that it answers), otherwise starts an embedded server.
    pub async fn from_url_or_embedded(
        url: Option<String>,
        config: ServerConfig,
    ) -> Result<Self, BackendError> {
        match url.filter(|u| !u.trim().is_empty()) {
            Some(url) => {
                let client = Client::new(url.trim())?;
                match client.version().await {
                    Ok(version) => Ok(Self::External { client, version }),
                    Err(source) => Err(BackendError::Unreachable { url, source }),
                }
            }
            None => {
                let listener = TcpListener::bind("127.0.0.1:0")
                    .await
                    .map_err(BackendError::Embedded)?;
                let server = Server::start(listener, config).map_err(BackendError::Embedded)?;
                Ok(Self::Embedded {
                    client: server.client()?,
                    server,
                })
            }
        }
    }

    /// The client for whichever server is in use.
    pub fn client(&self) -> &Client {
        match self {
            Self::External { client, .. } | Self::Embedded { client, .. } => client,
        }
    }

    /// Whether an external server is in use.
    pub fn is_external(&self) -> bool {
        matches!(self, Self::External { .. })
    }

    /// Stops the embedded server; for an external one, resets it (every proxy enabled, every toxic removed).
    pub async fn shutdown(self) -> Result<(), ClientError> {
        match self {
            Self::External { client, .. } => client.reset().await,
            Self::Embedded { server, .. } => {
                server.shutdown().await;
                Ok(())
            }
        }
    }
}
