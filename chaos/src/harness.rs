//! Choosing the fault proxy for a harness run: an external Toxiproxy named by `TOXIPROXY_URL`, or an embedded
//! server on an ephemeral port. Either way the caller gets a [`Client`] and talks only the Toxiproxy API.

use std::net::{Ipv4Addr, SocketAddrV4};

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

/// A loopback listen address (`127.0.0.1:PORT`) for a proxy that will be disabled and enabled again: a port
/// free now and outside the kernel's ephemeral range (`/proc/sys/net/ipv4/ip_local_port_range`, 32768-60999
/// when unreadable). A disabled proxy closes its listener; with a port from that range (what `:0` gives), any
/// socket on the machine may be handed that port meanwhile (an outgoing connection's local port, another
/// `:0` bind), and the enable then fails with `address already in use`. A port below the range is only ever
/// taken by an explicit bind. `None` when no port outside the range is free (then use `:0`).
pub fn stable_loopback_listen() -> Option<String> {
    let (low, high) = ephemeral_range();
    // Below the range when it leaves room there, else above it; from a point that differs per process and
    // call, so parallel stands rarely try the same ports.
    let span: Vec<(u16, u16)> = [
        (10_000u16, low.saturating_sub(1)),
        (high.saturating_add(1), u16::MAX),
    ]
    .into_iter()
    .filter(|(a, b)| a < b && b - a > 1000)
    .collect();
    let (a, b) = *span.first()?;
    let width = u32::from(b - a) + 1;
    let seed = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.subsec_nanos())
        ^ std::process::id().wrapping_mul(2_654_435_761);
    (0..200u32).find_map(|i| {
        let port = a + (seed.wrapping_add(i.wrapping_mul(7919)) % width) as u16;
        let addr = SocketAddrV4::new(Ipv4Addr::LOCALHOST, port);
        // Free now: the proxy binds it in a moment (only another explicit bind of this port could come between).
        std::net::TcpListener::bind(addr).ok().map(|_| addr.to_string())
    })
}

/// The kernel's ephemeral port range (`/proc/sys/net/ipv4/ip_local_port_range`), 32768-60999 when unreadable.
fn ephemeral_range() -> (u16, u16) {
    std::fs::read_to_string("/proc/sys/net/ipv4/ip_local_port_range")
        .ok()
        .and_then(|s| {
            let mut it = s.split_whitespace().map(str::parse::<u16>);
            Some((it.next()?.ok()?, it.next()?.ok()?))
        })
        .unwrap_or((32768, 60999))
}

#[cfg(test)]
mod tests {
    use super::{ephemeral_range, stable_loopback_listen};

    #[test]
    #[allow(clippy::unwrap_used)]
    fn a_stable_port_is_free_and_outside_the_ephemeral_range() {
        let (low, high) = ephemeral_range();
        for _ in 0..20 {
            let addr = stable_loopback_listen().unwrap();
            let port: u16 = addr.rsplit(':').next().unwrap().parse().unwrap();
            assert!(!(low..=high).contains(&port), "{addr} is in {low}-{high}");
            assert!(addr.starts_with("127.0.0.1:"), "{addr}");
            std::net::TcpListener::bind(&addr).unwrap();
        }
    }
}
