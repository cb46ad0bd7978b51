//! Starting fakes: one HTTP/1.1 server per provider (hyper), the route table of its provider, the admin
//! API, the journal, and faults decided per request once the request is known to be valid.
//!
//! Why not wiremock (which DESIGN.md names): wiremock keeps a copy of every request each mock matched for
//! the life of the server (its `MountedMock::matched_requests`, even with request recording disabled), so a
//! fake under benchmark load grows by megabytes a second; it handles requests one at a time under one
//! lock; and its fixed bodies cannot pace a stream or cut a connection in the middle of one. The fakes keep
//! wiremock's model (a route table of matchers and responders, `/__mock` admin paths, a journal) on a
//! server of their own.

use crate::admin::{self, ADMIN_PREFIX};
use crate::fault::{FaultError, FaultKind, FaultSpec, InstalledFault};
use crate::journal::{entry_from, Entry};
use crate::provider::Provider;
use crate::providers::{self, Route};
use crate::state::{Settings, SettingsPatch, State};
use crate::wire::{Cut, Request, ResponseTemplate, Url};
use bytes::Bytes;
use http_body_util::{combinators::BoxBody, BodyExt, Full, Limited, StreamBody};
use hyper::body::Frame;
use std::cell::Cell;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;
use tokio::sync::watch;

/// Bodies above this get a 413 (the real APIs refuse large bodies too).
pub const MAX_BODY_BYTES: usize = 32 * 1024 * 1024;

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

/// The connection is closed without a response (an injected fault).
#[derive(Debug, thiserror::Error)]
#[error("connection dropped by an injected drop_connection fault")]
struct Dropped;

/// Decides the fault of one request when its handler has validated it, so invalid requests never use
/// up a fault; `drop_connection` and a mid-stream `slow` are applied by the server, not the handler.
pub(crate) struct Faults<'a> {
    state: &'a State,
    entry: u64,
    eligible: bool,
    decided: Cell<Option<FaultSpec>>,
}

impl Faults<'_> {
    /// The fault for this request, if one fires (at most once per request).
    pub(crate) fn decide(&self) -> Option<FaultSpec> {
        if !self.eligible {
            return None;
        }
        let f = self.state.next_fault()?;
        self.state.mark_fault(self.entry, f.fault.name());
        self.decided.set(Some(f.clone()));
        match f.fault {
            // The handler answers normally; the server cuts or stalls the answer.
            FaultKind::DropConnection => None,
            FaultKind::Slow if f.after_chunks.is_some() => None,
            _ => Some(f),
        }
    }
}

type Body = BoxBody<Bytes, std::io::Error>;

fn full(bytes: Vec<u8>) -> Body {
    Full::new(Bytes::from(bytes))
        .map_err(|never| match never {})
        .boxed()
}

/// How a stream body is sent.
struct Pace {
    event_delay: Option<Duration>,
    stall: Option<(usize, Duration)>,
    cut_after: Option<usize>,
}

fn stream_body(events: Vec<Bytes>, pace: Pace) -> Body {
    let n = events.len();
    let state = (events.into_iter(), 0usize, false, pace);
    let s = futures::stream::unfold(state, move |(mut it, i, done, pace)| async move {
        if done || i >= n {
            return None;
        }
        if pace.cut_after == Some(i) {
            // Let hyper flush what went before (it flushes when the body is pending), then cut.
            tokio::time::sleep(Duration::from_millis(5)).await;
            let err = std::io::Error::new(std::io::ErrorKind::ConnectionAborted, "stream cut by a fault");
            return Some((Err(err), (it, i, true, pace)));
        }
        if i > 0 {
            if let Some(d) = pace.event_delay {
                tokio::time::sleep(d).await;
            }
            if let Some((_, d)) = pace.stall.filter(|(at, _)| *at == i) {
                tokio::time::sleep(d).await;
            }
        }
        let ev = it.next()?;
        Some((Ok(Frame::data(ev)), (it, i + 1, false, pace)))
    });
    BodyExt::boxed(StreamBody::new(s))
}

/// Turns a reply into a hyper response, or an error that closes the connection without one.
async fn send(
    t: ResponseTemplate,
    stall: Option<(usize, Duration)>,
) -> Result<hyper::Response<Body>, Dropped> {
    if let Some(d) = t.delay {
        tokio::time::sleep(d).await;
    }
    if t.cut == Cut::BeforeResponse {
        return Err(Dropped);
    }
    let cut_after = match t.cut {
        Cut::AfterEvents(n) => Some(n),
        _ => None,
    };
    let body = if t.is_stream() {
        stream_body(
            t.events(),
            Pace {
                event_delay: t.event_delay,
                stall,
                cut_after,
            },
        )
    } else if cut_after.is_some() {
        // A plain body cut: the head goes out, then the connection closes.
        stream_body(
            vec![Bytes::from(t.body)],
            Pace {
                event_delay: None,
                stall: None,
                cut_after: Some(0),
            },
        )
    } else {
        full(t.body)
    };
    let mut resp = hyper::Response::new(body);
    *resp.status_mut() =
        http::StatusCode::from_u16(t.status).unwrap_or(http::StatusCode::INTERNAL_SERVER_ERROR);
    *resp.headers_mut() = t.headers;
    Ok(resp)
}

/// Everything one fake needs to answer a request.
struct Shared {
    state: Arc<State>,
    routes: Vec<Route>,
}

async fn handle(
    shared: Arc<Shared>,
    req: hyper::Request<hyper::body::Incoming>,
) -> Result<hyper::Response<Body>, Dropped> {
    let (parts, body) = req.into_parts();
    let state = &shared.state;
    let bytes = match Limited::new(body, MAX_BODY_BYTES).collect().await {
        Ok(c) => c.to_bytes().to_vec(),
        Err(e) if e.downcast_ref::<http_body_util::LengthLimitError>().is_some() => {
            return send(providers::too_large(state), None).await;
        }
        // The client went away in the middle of its body: nothing to answer.
        Err(_) => return Err(Dropped),
    };
    let req = Request {
        method: parts.method,
        url: Url::new(&parts.uri),
        headers: parts.headers,
        body: bytes,
    };
    if req.url.path().starts_with(ADMIN_PREFIX) {
        return send(admin::respond(state, &req), None).await;
    }
    let entry = state.record(entry_from(&req));
    let Some(route) = providers::find(&shared.routes, req.method.as_str(), req.url.path()) else {
        let latency = state.settings().latency_ms;
        return send(
            crate::http::delayed(providers::not_found(state, &req), latency),
            None,
        )
        .await;
    };
    let faults = Faults {
        state,
        entry,
        eligible: route.endpoint.is_inference() && providers::has_credentials(state, &req),
        decided: Cell::new(None),
    };
    let mut reply = providers::handle(state, route.endpoint, &req, &faults);
    let stream_delay = state.settings().stream_delay_ms;
    if stream_delay > 0 {
        reply.event_delay = Some(Duration::from_millis(stream_delay));
    }
    let mut stall = None;
    match faults.decided.take() {
        Some(f) if f.fault == FaultKind::DropConnection => {
            reply = reply.set_delay(Duration::from_millis(f.delay_ms.unwrap_or(0)));
            reply.cut = match f.after_chunks {
                Some(n) => Cut::AfterEvents(n as usize),
                None => Cut::BeforeResponse,
            };
        }
        Some(f) if f.fault == FaultKind::Slow => {
            if let Some(n) = f.after_chunks {
                let d = f.delay_ms.unwrap_or(providers::DEFAULT_SLOW_MS);
                stall = Some((n as usize, Duration::from_millis(d)));
            }
        }
        _ => {}
    }
    send(reply, stall).await
}

async fn accept_loop(
    listener: tokio::net::TcpListener,
    shared: Arc<Shared>,
    mut stop: watch::Receiver<bool>,
) {
    let mut conns = tokio::task::JoinSet::new();
    loop {
        tokio::select! {
            _ = stop.changed() => break,
            Some(_) = conns.join_next(), if !conns.is_empty() => {}
            accepted = listener.accept() => match accepted {
                Ok((stream, _)) => {
                    let _ = stream.set_nodelay(true);
                    let shared = shared.clone();
                    conns.spawn(async move {
                        let service = hyper::service::service_fn(move |req| handle(shared.clone(), req));
                        let _ = hyper::server::conn::http1::Builder::new()
                            .keep_alive(true)
                            .serve_connection(hyper_util::rt::TokioIo::new(stream), service)
                            .await;
                    });
                }
                Err(e) => {
                    // Out of file descriptors or similar: back off a little instead of spinning.
                    tracing::warn!(error = %e, "accept failed");
                    tokio::time::sleep(Duration::from_millis(20)).await;
                }
            },
        }
    }
    // Dropping the set aborts every connection task.
    conns.abort_all();
}

/// One running fake provider; stops (listener and connections) when dropped.
pub struct FakeServer {
    provider: Provider,
    addr: SocketAddr,
    state: Arc<State>,
    stop: watch::Sender<bool>,
}

impl std::fmt::Debug for FakeServer {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("FakeServer")
            .field("provider", &self.provider)
            .field("addr", &self.addr)
            .finish()
    }
}

impl Drop for FakeServer {
    fn drop(&mut self) {
        let _ = self.stop.send(true);
    }
}

impl FakeServer {
    /// Starts `provider`'s fake on 127.0.0.1 and an ephemeral port.
    pub async fn start(provider: Provider) -> Result<FakeServer, StartError> {
        Self::bind(provider, "127.0.0.1:0").await
    }

    /// Starts `provider`'s fake on `addr` (e.g. `127.0.0.1:18081`).
    pub async fn bind(provider: Provider, addr: &str) -> Result<FakeServer, StartError> {
        let err = |source| StartError::Bind {
            provider,
            addr: addr.to_string(),
            source,
        };
        let listener = tokio::net::TcpListener::bind(addr).await.map_err(err)?;
        Self::start_on(provider, listener).map_err(err)
    }

    /// Starts `provider`'s fake on a listener the caller bound (inside a tokio runtime).
    pub fn start_on(provider: Provider, listener: tokio::net::TcpListener) -> std::io::Result<FakeServer> {
        let addr = listener.local_addr()?;
        let seed = 0x5eed_0000 + u64::from(provider.default_port());
        let state = Arc::new(State::new(provider, seed));
        let shared = Arc::new(Shared {
            state: state.clone(),
            routes: providers::routes(provider),
        });
        let (stop, rx) = watch::channel(false);
        tokio::spawn(accept_loop(listener, shared, rx));
        Ok(FakeServer {
            provider,
            addr,
            state,
            stop,
        })
    }

    /// Which provider this fakes.
    pub fn provider(&self) -> Provider {
        self.provider
    }

    /// The bound address.
    pub fn addr(&self) -> SocketAddr {
        self.addr
    }

    /// `http://127.0.0.1:PORT`.
    pub fn uri(&self) -> String {
        format!("http://{}", self.addr)
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
