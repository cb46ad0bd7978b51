//! Starting fakes: one wiremock server per provider, its routes mounted as mocks, a gate that
//! journals every request and decides its fault, and the admin API.

use crate::admin::{Admin, ADMIN_PREFIX};
use crate::fault::{FaultError, FaultKind, FaultSpec, InstalledFault};
use crate::journal::{entry_from, Entry};
use crate::provider::Provider;
use crate::providers::{self, Endpoint, Route};
use crate::state::{Decision, Settings, SettingsPatch, State};
use std::net::{SocketAddr, TcpListener};
use std::sync::Arc;
use wiremock::matchers::{any, method};
use wiremock::{Match, Mock, MockServer, Request, Respond, ResponseTemplate};

/// Why a fake could not start.
#[derive(Debug, thiserror::Error)]
pub enum StartError {
    /// The port could not be bound.
    #[error("cannot listen on {addr} for the {provider} fake: {source}")]
    Bind {
        /// Which fake.
        provider: Provider,
        /// Where.
        addr: String,
        /// Why.
        source: std::io::Error,
    },
}

/// The connection-drop error handed to wiremock (it closes the connection without a response).
#[derive(Debug, thiserror::Error)]
#[error("connection dropped by an injected drop_connection fault")]
struct Dropped;

/// Runs first for every non-admin request: journals it and decides its fault.
struct Gate {
    state: Arc<State>,
    routes: Vec<Route>,
}

impl Match for Gate {
    fn matches(&self, req: &Request) -> bool {
        self.state.record(entry_from(req));
        let route = providers::find(&self.routes, req.method.as_str(), req.url.path());
        let fault = match route {
            Some(r) if r.endpoint.is_inference() && providers::has_credentials(&self.state, req) => {
                self.state.next_fault()
            }
            _ => None,
        };
        if let Some(f) = &fault {
            self.state.mark_fault(f.fault.name());
            if f.fault == FaultKind::DropConnection {
                return true;
            }
        }
        self.state.set_pending(Decision { fault });
        false
    }
}

struct PathIs(providers::PathMatch);

impl Match for PathIs {
    fn matches(&self, req: &Request) -> bool {
        self.0.matches(req.url.path())
    }
}

struct AdminPath;

impl Match for AdminPath {
    fn matches(&self, req: &Request) -> bool {
        req.url.path().starts_with(ADMIN_PREFIX)
    }
}

struct RouteResponder {
    state: Arc<State>,
    endpoint: Endpoint,
}

impl Respond for RouteResponder {
    fn respond(&self, req: &Request) -> ResponseTemplate {
        let fault = self.state.take_pending().and_then(|d| d.fault);
        providers::handle(&self.state, self.endpoint, req, fault)
    }
}

struct NotFound {
    state: Arc<State>,
}

impl Respond for NotFound {
    fn respond(&self, req: &Request) -> ResponseTemplate {
        self.state.take_pending();
        let latency = self.state.settings().latency_ms;
        crate::http::delayed(providers::not_found(&self.state, req), latency)
    }
}

/// One running fake provider.
pub struct FakeServer {
    provider: Provider,
    server: MockServer,
    state: Arc<State>,
}

impl std::fmt::Debug for FakeServer {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("FakeServer")
            .field("provider", &self.provider)
            .field("addr", self.server.address())
            .finish()
    }
}

impl FakeServer {
    /// Starts `provider`'s fake on 127.0.0.1 and an ephemeral port.
    pub async fn start(provider: Provider) -> Result<FakeServer, StartError> {
        Self::bind(provider, "127.0.0.1:0").await
    }

    /// Starts `provider`'s fake on `addr` (e.g. `127.0.0.1:18081`).
    pub async fn bind(provider: Provider, addr: &str) -> Result<FakeServer, StartError> {
        let listener = TcpListener::bind(addr).map_err(|source| StartError::Bind {
            provider,
            addr: addr.to_string(),
            source,
        })?;
        Ok(Self::start_on(provider, listener).await)
    }

    /// Starts `provider`'s fake on a listener the caller bound.
    pub async fn start_on(provider: Provider, listener: TcpListener) -> FakeServer {
        let seed = 0x5eed_0000 + provider.default_port() as u64;
        let state = Arc::new(State::new(provider, seed));
        let server = MockServer::builder()
            .listener(listener)
            .disable_request_recording()
            .start()
            .await;
        let routes = providers::routes(provider);
        server
            .register(
                Mock::given(AdminPath)
                    .respond_with(Admin { state: state.clone() })
                    .with_priority(1),
            )
            .await;
        server
            .register(
                Mock::given(Gate {
                    state: state.clone(),
                    routes: routes.clone(),
                })
                .respond_with_err(|_: &Request| Dropped)
                .with_priority(2),
            )
            .await;
        for r in &routes {
            server
                .register(
                    Mock::given(method(r.method))
                        .and(PathIs(r.path))
                        .respond_with(RouteResponder {
                            state: state.clone(),
                            endpoint: r.endpoint,
                        })
                        .with_priority(5),
                )
                .await;
        }
        server
            .register(
                Mock::given(any())
                    .respond_with(NotFound { state: state.clone() })
                    .with_priority(10),
            )
            .await;
        FakeServer {
            provider,
            server,
            state,
        }
    }

    /// Which provider this fakes.
    pub fn provider(&self) -> Provider {
        self.provider
    }

    /// The bound address.
    pub fn addr(&self) -> SocketAddr {
        *self.server.address()
    }

    /// `http://127.0.0.1:PORT`.
    pub fn uri(&self) -> String {
        self.server.uri()
    }

    /// The base URL a client SDK is given: `/v1` for OpenAI and Kimi, `/compatible-mode/v1` for Qwen,
    /// `/api/v1` for GigaChat, the root for Ollama.
    pub fn base_url(&self) -> String {
        match self.provider {
            Provider::Ollama => self.uri(),
            p => format!("{}{}", self.uri(), p.openai_prefix()),
        }
    }

    /// Extra base URLs: Qwen's native API and GigaChat's OAuth endpoint (name, URL).
    pub fn extra_urls(&self) -> Vec<(&'static str, String)> {
        match self.provider {
            Provider::Qwen => vec![("native", format!("{}/api/v1", self.uri()))],
            Provider::GigaChat => vec![("oauth", format!("{}/api/v2/oauth", self.uri()))],
            Provider::Ollama => vec![("openai", format!("{}/v1", self.uri()))],
            _ => vec![],
        }
    }

    /// Installs a fault (the same as `POST /__mock/faults`).
    pub fn add_fault(&self, spec: FaultSpec) -> Result<InstalledFault, FaultError> {
        self.state.add_fault(spec)
    }

    /// Removes every fault.
    pub fn clear_faults(&self) {
        self.state.clear_faults()
    }

    /// Changes settings (the same as `POST /__mock/settings`).
    pub fn update_settings(&self, patch: SettingsPatch) -> Settings {
        self.state.update_settings(patch)
    }

    /// Back to the start state (the same as `POST /__mock/reset`).
    pub fn reset(&self) {
        self.state.reset()
    }

    /// The journal, oldest first (admin calls are not in it).
    pub fn journal(&self) -> Vec<Entry> {
        self.state.journal()
    }

    /// Requests received since the last reset.
    pub fn request_count(&self) -> u64 {
        self.state.request_count()
    }

    /// The shared state, for tests that want more.
    pub fn state(&self) -> &Arc<State> {
        &self.state
    }
}

/// A set of running fakes (what `llm-mocks serve` starts).
#[derive(Debug)]
pub struct Fakes {
    servers: Vec<FakeServer>,
}

impl Fakes {
    /// Starts each `(provider, address)`; fails on the first address that cannot be bound.
    pub async fn start(spec: &[(Provider, String)]) -> Result<Fakes, StartError> {
        let mut servers = Vec::with_capacity(spec.len());
        for (p, addr) in spec {
            servers.push(FakeServer::bind(*p, addr).await?);
        }
        Ok(Fakes { servers })
    }

    /// Starts all five on ephemeral ports.
    pub async fn start_all_ephemeral() -> Result<Fakes, StartError> {
        let spec: Vec<_> = Provider::ALL
            .iter()
            .map(|p| (*p, "127.0.0.1:0".to_string()))
            .collect();
        Self::start(&spec).await
    }

    /// The running fakes.
    pub fn servers(&self) -> &[FakeServer] {
        &self.servers
    }

    /// The fake of `provider`, if started.
    pub fn get(&self, provider: Provider) -> Option<&FakeServer> {
        self.servers.iter().find(|s| s.provider == provider)
    }
}
