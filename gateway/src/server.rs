//! Running the service: the accept loops of the API listener and the optional metrics listener, the protection of
//! every connection (open-connection cap, header/idle/body timeouts, header size cap, bounded buffers) and the
//! drain on shutdown.
//!
//! Per connection: from its open, or from the first byte of a new request after an answer, the request head must
//! be complete within `server.header_read_timeout`; between requests a keep-alive connection may stay silent for
//! `server.idle_timeout`; the body must be in within `server.body_read_timeout` of the head (408 `body_timeout`).
//! Past either timeout the connection is closed. A head over `server.max_header_bytes` gets 431
//! `headers_too_large` and the connection is closed; hyper buffers at most `server.max_header_bytes + 8 KiB`, so
//! what a connection holds before its request is complete is bounded. A declared `content-length` over
//! `server.body_limit_bytes` gets 413 before any of the body is read. hyper's own answers to requests it cannot
//! parse (400, 414, 431 with empty bodies) are rewritten on the way out into the same OpenAI-shaped JSON errors.
//!
//! Past `server.max_connections` open connections a listener keeps [`HEALTH_RESERVE`] more for probes: on those only
//! `/healthz`, `/readyz` and `/metrics` are served (anything else gets 503 `server_busy`), one request each. Past
//! that, a new connection is closed as soon as it is accepted: nothing queues.
//!
//! Drain: on shutdown `/readyz` answers 503 at once, idle connections and connections still sending a head are
//! closed at once, requests in flight get `server.shutdown_grace` to finish; streams still open then end with
//! `event: error` (code `shutting_down`, no `[DONE]`), and whatever is left is closed a moment later.

use std::convert::Infallible;
use std::future::Future;
use std::net::SocketAddr;
use std::pin::Pin;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::task::{Context, Poll};
use std::time::Duration;

use axum::body::Body;
use axum::extract::ConnectInfo;
use axum::http::{Request, Response};
use axum::response::IntoResponse;
use hyper::body::Incoming;
use hyper_util::rt::TokioIo;
use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::{watch, Notify, Semaphore};
use tokio::time::{Instant, Sleep};

use crate::api::{app, metrics_app, ApiError, AppState};
use crate::config::{Mode, ServerConfig};
use crate::router::connectivity::probe_loop;

/// Connections a listener keeps beyond `server.max_connections` for `/healthz`, `/readyz` and `/metrics`.
pub const HEALTH_RESERVE: usize = 16;

/// The head timeout of a connection accepted while draining: it may ask `/readyz` (and learn 503), not hold the
/// drain open.
const DRAIN_HEAD_TIMEOUT: Duration = Duration::from_secs(1);

/// After `shutdown_grace`, how long ending streams get to write their last event before everything is closed.
const FINAL_FLUSH: Duration = Duration::from_millis(500);

/// File descriptors kept free for upstream connections, files and the reserve when the cap is fitted to the limit.
const FD_HEADROOM: usize = 64;

/// Where the service is in its life.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Phase {
    /// Normal service.
    Serving,
    /// Shutdown asked: `/readyz` is 503, idle connections close, requests in flight finish.
    Draining,
    /// `shutdown_grace` is over: open streams end with `event: error` `shutting_down`.
    Closing,
    /// Every connection is being closed.
    Closed,
}

/// The service's phase, shared by the server, `/readyz` and the streams.
#[derive(Debug)]
pub struct Lifecycle {
    tx: watch::Sender<Phase>,
}

impl Default for Lifecycle {
    fn default() -> Lifecycle {
        Lifecycle {
            tx: watch::Sender::new(Phase::Serving),
        }
    }
}

impl Lifecycle {
    /// The current phase.
    pub fn phase(&self) -> Phase {
        *self.tx.borrow()
    }

    /// Follows the phase.
    pub fn subscribe(&self) -> watch::Receiver<Phase> {
        self.tx.subscribe()
    }

    /// Moves to a later phase (never back).
    pub fn advance(&self, to: Phase) {
        self.tx.send_if_modified(|p| {
            let later = rank(to) > rank(*p);
            if later {
                *p = to;
            }
            later
        });
    }
}

fn rank(p: Phase) -> u8 {
    match p {
        Phase::Serving => 0,
        Phase::Draining => 1,
        Phase::Closing => 2,
        Phase::Closed => 3,
    }
}

/// The connection settings of `server:`, with the cap fitted to the open-file limit.
#[derive(Debug, Clone, Copy)]
pub struct ConnLimits {
    /// `server.header_read_timeout`.
    pub header_read_timeout: Duration,
    /// `server.idle_timeout`.
    pub idle_timeout: Duration,
    /// `server.body_read_timeout`.
    pub body_read_timeout: Duration,
    /// Open connections per listener (after fitting to the fd limit).
    pub max_connections: usize,
    /// `server.max_header_bytes`.
    pub max_header_bytes: usize,
    /// `server.body_limit_bytes`: a declared `content-length` above it is refused before any of the body is read
    /// (and before `100 Continue`).
    pub body_limit_bytes: usize,
}

impl ConnLimits {
    /// From config; `fd_limit` is the soft open-file limit when known. Both listeners together (each with its
    /// reserve) must fit under it with [`FD_HEADROOM`] to spare.
    pub fn new(s: &ServerConfig, fd_limit: Option<usize>) -> ConnLimits {
        let listeners = if s.metrics_listen.is_some() { 2 } else { 1 };
        let mut max_connections = s.max_connections;
        if let Some(fds) = fd_limit {
            let fit = (fds.saturating_sub(FD_HEADROOM) / listeners).saturating_sub(HEALTH_RESERVE);
            if fit < max_connections {
                max_connections = fit.max(1);
                tracing::warn!(
                    configured = s.max_connections,
                    used = max_connections,
                    open_file_limit = fds,
                    "server.max_connections lowered to fit the open-file limit (raise it with `ulimit -n`)"
                );
            }
        }
        ConnLimits {
            header_read_timeout: s.header_read_timeout,
            idle_timeout: s.idle_timeout,
            body_read_timeout: s.body_read_timeout,
            max_connections,
            max_header_bytes: s.max_header_bytes,
            body_limit_bytes: s.body_limit_bytes,
        }
    }

    /// hyper's read buffer bound: a head, plus the start of its body in the same read. A longer head on a
    /// keep-alive connection is refused by hyper itself (431, empty body).
    fn buffer(&self) -> usize {
        (self.max_header_bytes + 8192).max(8192)
    }
}

/// The soft `RLIMIT_NOFILE` of this process, from `/proc/self/limits` (Linux); `None` elsewhere or unlimited.
pub fn open_file_limit() -> Option<usize> {
    let text = std::fs::read_to_string("/proc/self/limits").ok()?;
    let line = text.lines().find(|l| l.starts_with("Max open files"))?;
    line.split_whitespace().nth(3)?.parse().ok()
}

/// Says where shared state lives (the Redis URL without its password).
fn log_state_backend(state: &AppState) {
    if let (Some(r), Some(_)) = (&state.config.state.redis, state.router.state_backend().redis()) {
        tracing::info!(
            redis = %r.display_url(),
            key_prefix = %r.key_prefix,
            cache = state.cache.backend(),
            "shared state on Redis: client limits and provider budgets hold across replicas"
        );
    }
}

/// Serves until `shutdown` resolves, then drains (see the module docs).
pub async fn run(
    listener: TcpListener,
    metrics_listener: Option<TcpListener>,
    state: Arc<AppState>,
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> std::io::Result<()> {
    let grace = state.config.server.shutdown_grace;
    let limits = ConnLimits::new(&state.config.server, open_file_limit());
    warn_if_admin_open(listener.local_addr()?, &state);
    log_state_backend(&state);
    start_probes(&state);
    let open = Arc::new(Open::default());
    let mut loops = Vec::new();
    if let Some(ml) = metrics_listener {
        loops.push(tokio::spawn(accept_loop(
            ml,
            metrics_app(state.clone()),
            limits,
            state.clone(),
            open.clone(),
        )));
    }
    loops.push(tokio::spawn(accept_loop(
        listener,
        app(state.clone()),
        limits,
        state.clone(),
        open.clone(),
    )));
    shutdown.await;
    let started = Instant::now();
    tracing::info!(
        grace_ms = grace.as_millis() as u64,
        open_connections = open.count(),
        "shutting down, draining in-flight requests"
    );
    state.lifecycle.advance(Phase::Draining);
    if tokio::time::timeout(grace, open.all_closed()).await.is_err() {
        tracing::warn!(
            open_connections = open.count(),
            "drain period over, ending open streams with `shutting_down`"
        );
        state.lifecycle.advance(Phase::Closing);
        let _ = tokio::time::timeout(FINAL_FLUSH, open.all_closed()).await;
    }
    state.lifecycle.advance(Phase::Closed);
    for l in loops {
        let _ = l.await;
    }
    tracing::info!(took_ms = started.elapsed().as_millis() as u64, "shut down");
    Ok(())
}

fn warn_if_admin_open(addr: SocketAddr, state: &AppState) {
    if admin_open_beyond_loopback(addr, state.config.server.admin_token.is_some()) {
        tracing::warn!(
            %addr,
            "listening beyond loopback without server.admin_token: /admin/* answers loopback clients only \
             (403 admin_token_required for others); set server.admin_token to manage the gateway remotely"
        );
    }
}

/// Whether `serve` must warn: no admin token while the API listens on more than loopback.
fn admin_open_beyond_loopback(addr: SocketAddr, has_token: bool) -> bool {
    !has_token && !crate::api::is_loopback(addr.ip())
}

/// Open connections of both listeners.
#[derive(Debug, Default)]
struct Open {
    count: AtomicUsize,
    zero: Notify,
}

impl Open {
    fn count(&self) -> usize {
        self.count.load(Ordering::Acquire)
    }

    fn enter(self: &Arc<Self>) -> OpenGuard {
        self.count.fetch_add(1, Ordering::AcqRel);
        OpenGuard(self.clone())
    }

    async fn all_closed(&self) {
        loop {
            let notified = self.zero.notified();
            if self.count() == 0 {
                return;
            }
            notified.await;
        }
    }
}

struct OpenGuard(Arc<Open>);

impl Drop for OpenGuard {
    fn drop(&mut self) {
        if self.0.count.fetch_sub(1, Ordering::AcqRel) == 1 {
            self.0.zero.notify_waiters();
        }
    }
}

async fn accept_loop(
    listener: TcpListener,
    app: axum::Router,
    limits: ConnLimits,
    state: Arc<AppState>,
    open: Arc<Open>,
) {
    let main = Arc::new(Semaphore::new(limits.max_connections));
    let reserve = Arc::new(Semaphore::new(HEALTH_RESERVE));
    let mut phase = state.lifecycle.subscribe();
    let local = listener.local_addr().ok();
    loop {
        let accepted = tokio::select! {
            r = listener.accept() => r,
            _ = phase.wait_for(|p| rank(*p) >= rank(Phase::Closing)) => break,
        };
        let (stream, peer) = match accepted {
            Ok(a) => a,
            Err(e) => {
                // Out of file descriptors (or a connection reset before accept): back off briefly rather than
                // spin, and never for long, so probes keep being answered once descriptors free up.
                tracing::warn!(error = %e, "accept failed");
                tokio::time::sleep(Duration::from_millis(10)).await;
                continue;
            }
        };
        let (permit, restricted) = match main.clone().try_acquire_owned() {
            Ok(p) => (p, false),
            Err(_) => match reserve.clone().try_acquire_owned() {
                Ok(p) => (p, true),
                Err(_) => {
                    // Shed: closed at once, never queued.
                    state.metrics.connections_shed.inc();
                    drop(stream);
                    continue;
                }
            },
        };
        let _ = stream.set_nodelay(true);
        let guard = open.enter();
        let app = app.clone();
        let state = state.clone();
        tokio::spawn(async move {
            serve_conn(stream, peer, app, limits, restricted, state).await;
            drop(permit);
            drop(guard);
        });
    }
    tracing::debug!(?local, "listener closed");
}

/// What a connection is waiting for, and since when.
#[derive(Debug, Clone, Copy)]
enum Wait {
    /// The (rest of the) request head.
    Head(Instant),
    /// Nothing: keep-alive between requests.
    Idle(Instant),
    /// Its own answer: `in_flight` requests.
    Busy(usize),
}

/// Shared between a connection's IO, its service and its task. A change is not signalled to the task: it
/// wakes by its own clock (see [`Track::next_check`]), so a request costs the connection no extra wake-ups.
#[derive(Debug)]
struct Track {
    wait: Mutex<Wait>,
}

impl Track {
    fn new() -> Track {
        Track {
            // A fresh connection owes its first head.
            wait: Mutex::new(Wait::Head(Instant::now())),
        }
    }

    fn update(&self, f: impl FnOnce(Wait) -> Wait) {
        let Ok(mut w) = self.wait.lock() else { return };
        *w = f(*w);
    }

    fn get(&self) -> Wait {
        self.wait.lock().map(|w| *w).unwrap_or(Wait::Busy(1))
    }

    fn deadline(&self, l: &ConnLimits) -> Option<Instant> {
        match self.get() {
            Wait::Head(t) => Some(t + l.header_read_timeout),
            Wait::Idle(t) => Some(t + l.idle_timeout),
            Wait::Busy(_) => None,
        }
    }

    /// When the connection's task looks at its deadline next: the deadline, or sooner. A change can only bring
    /// the deadline nearer when it happens (bytes after keep-alive idle: `Head(now)`; an answer sent:
    /// `Idle(now)`), and then to no sooner than `min(header, idle)` from that moment; so the task that looks
    /// again at least that often sees every deadline on time without being told of each change. (It was
    /// told: three wakes of the connection's task per request, each handing it to the other worker thread.)
    fn next_check(&self, l: &ConnLimits, now: Instant) -> Instant {
        let soonest = now + l.header_read_timeout.min(l.idle_timeout);
        self.deadline(l).map_or(soonest, |d| d.min(soonest))
    }

    fn bytes_arrived(&self) {
        if matches!(self.get(), Wait::Idle(_)) {
            self.update(|w| match w {
                Wait::Idle(_) => Wait::Head(Instant::now()),
                other => other,
            });
        }
    }

    fn request_started(&self) {
        self.update(|w| match w {
            Wait::Busy(n) => Wait::Busy(n + 1),
            _ => Wait::Busy(1),
        });
    }

    fn request_done(&self) {
        self.update(|w| match w {
            Wait::Busy(n) if n > 1 => Wait::Busy(n - 1),
            _ => Wait::Idle(Instant::now()),
        });
    }
}

async fn serve_conn(
    stream: TcpStream,
    peer: SocketAddr,
    app: axum::Router,
    mut limits: ConnLimits,
    restricted: bool,
    state: Arc<AppState>,
) {
    if state.lifecycle.phase() != Phase::Serving {
        limits.header_read_timeout = limits.header_read_timeout.min(DRAIN_HEAD_TIMEOUT);
    }
    let track = Arc::new(Track::new());
    let io = TokioIo::new(Tracked {
        inner: stream,
        track: track.clone(),
        head: HeadScan::new(limits.max_header_bytes),
        rewrite: None,
    });
    let svc = {
        let track = track.clone();
        hyper::service::service_fn(move |req: Request<Incoming>| {
            let app = app.clone();
            let track = track.clone();
            async move { Ok::<_, Infallible>(handle(req, peer, app, limits, restricted, track).await) }
        })
    };
    let mut phase = state.lifecycle.subscribe();
    let mut b = hyper::server::conn::http1::Builder::new();
    b.max_buf_size(limits.buffer())
        .max_header_size(limits.buffer())
        // The timeouts are this task's (header and idle are told apart; hyper's one timer covers both).
        .header_read_timeout(None)
        .keep_alive(!restricted && state.lifecycle.phase() == Phase::Serving);
    let conn = b.serve_connection(io, svc);
    tokio::pin!(conn);
    // Accepted while draining: one request, no keep-alive (so `/readyz` still answers 503).
    let mut shutting = false;
    loop {
        let check = track.next_check(&limits, Instant::now());
        tokio::select! {
            r = conn.as_mut() => {
                if let Err(e) = r {
                    tracing::debug!(%peer, error = %e, "connection ended with an error");
                }
                return;
            }
            () = tokio::time::sleep_until(check) => {
                if track.deadline(&limits).is_some_and(|d| d <= Instant::now()) {
                    tracing::debug!(%peer, wait = ?track.get(), "connection timed out");
                    return;
                }
            }
            r = phase.changed() => {
                let p = if r.is_ok() { *phase.borrow_and_update() } else { Phase::Closed };
                match p {
                    Phase::Serving => {}
                    // hyper closes an idle connection at once, and one in flight after its answer; a head not
                    // yet complete (which hyper would wait for) is dropped here.
                    Phase::Draining | Phase::Closing if !shutting => {
                        conn.as_mut().graceful_shutdown();
                        shutting = true;
                        if matches!(track.get(), Wait::Head(_)) {
                            tracing::debug!(%peer, "closing a connection with an unfinished head for shutdown");
                            return;
                        }
                    }
                    Phase::Draining | Phase::Closing => {}
                    Phase::Closed => return,
                }
            }
        }
    }
}

async fn handle(
    mut req: Request<Incoming>,
    peer: SocketAddr,
    app: axum::Router,
    limits: ConnLimits,
    restricted: bool,
    track: Arc<Track>,
) -> Response<Body> {
    track.request_started();
    let done = Done(track);
    let head = head_bytes(&req);
    let resp = if head > limits.max_header_bytes {
        ApiError::HeadersTooLarge(limits.max_header_bytes).into_response()
    } else if restricted && !matches!(req.uri().path(), "/healthz" | "/readyz" | "/metrics") {
        ApiError::ServerBusy.into_response()
    } else if declared_length(&req).is_some_and(|n| n > limits.body_limit_bytes as u64) {
        // Refused on the declaration: no `100 Continue`, no wait for a body we would not take.
        let mut r = ApiError::BodyTooLarge(limits.body_limit_bytes).into_response();
        r.headers_mut().insert(
            axum::http::header::CONNECTION,
            axum::http::HeaderValue::from_static("close"),
        );
        r
    } else {
        req.extensions_mut().insert(ConnectInfo(peer));
        let deadline = Box::pin(tokio::time::sleep(limits.body_read_timeout));
        let req = req.map(|body| {
            Body::new(TimedBody {
                inner: body,
                deadline,
                limit: limits.body_read_timeout,
            })
        });
        let mut app = app;
        match tower::Service::call(&mut app, req).await {
            Ok(r) => r,
            Err(never) => match never {},
        }
    };
    resp.map(|body| {
        Body::new(DoneBody {
            inner: body,
            _done: done,
        })
    })
}

fn declared_length<B>(req: &Request<B>) -> Option<u64> {
    req.headers()
        .get(axum::http::header::CONTENT_LENGTH)?
        .to_str()
        .ok()?
        .trim()
        .parse()
        .ok()
}

/// Request line and headers as they came on the wire (give or take the separators).
fn head_bytes<B>(req: &Request<B>) -> usize {
    let target = req.uri().path_and_query().map_or(1, |p| p.as_str().len())
        + req.uri().authority().map_or(0, |a| a.as_str().len());
    let line = req.method().as_str().len() + target + 12;
    req.headers()
        .iter()
        .map(|(n, v)| n.as_str().len() + v.len() + 4)
        .sum::<usize>()
        + line
}

/// Marks the connection's request finished when the answer's body is dropped (written out or abandoned).
struct Done(Arc<Track>);

impl Drop for Done {
    fn drop(&mut self) {
        self.0.request_done();
    }
}

struct DoneBody {
    inner: Body,
    _done: Done,
}

impl http_body::Body for DoneBody {
    type Data = bytes::Bytes;
    type Error = axum::Error;

    fn poll_frame(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<http_body::Frame<Self::Data>, Self::Error>>> {
        Pin::new(&mut self.inner).poll_frame(cx)
    }

    fn is_end_stream(&self) -> bool {
        self.inner.is_end_stream()
    }

    fn size_hint(&self) -> http_body::SizeHint {
        self.inner.size_hint()
    }
}

/// The request body past `server.body_read_timeout` is an error the handlers turn into 408 `body_timeout`.
#[derive(Debug, thiserror::Error)]
#[error("request body not received within {} ms", .0.as_millis())]
pub struct BodyTimeout(pub Duration);

struct TimedBody {
    inner: Incoming,
    deadline: Pin<Box<Sleep>>,
    limit: Duration,
}

impl http_body::Body for TimedBody {
    type Data = bytes::Bytes;
    type Error = Box<dyn std::error::Error + Send + Sync>;

    fn poll_frame(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<http_body::Frame<Self::Data>, Self::Error>>> {
        if let Poll::Ready(frame) = Pin::new(&mut self.inner).poll_frame(cx) {
            return Poll::Ready(frame.map(|r| r.map_err(Into::into)));
        }
        match self.deadline.as_mut().poll(cx) {
            Poll::Ready(()) => Poll::Ready(Some(Err(Box::new(BodyTimeout(self.limit))))),
            Poll::Pending => Poll::Pending,
        }
    }

    fn is_end_stream(&self) -> bool {
        self.inner.is_end_stream()
    }

    fn size_hint(&self) -> http_body::SizeHint {
        self.inner.size_hint()
    }
}

/// The socket, telling the connection's [`Track`] when bytes of a new request arrive, and holding the first head
/// of the connection to `server.max_header_bytes`: past it the client gets the JSON 431 from here and the
/// connection ends, before hyper buffers more. (Later heads on a keep-alive connection are checked by `handle`,
/// and hyper's buffer bounds them; bytes read after an answer may still be a body hyper drains, so they are not
/// counted here.)
struct Tracked {
    inner: TcpStream,
    track: Arc<Track>,
    head: HeadScan,
    /// hyper's empty-bodied answer to an unparseable request, being replaced by a JSON one.
    rewrite: Option<Rewrite>,
}

/// Counting the bytes of the connection's first head.
struct HeadScan {
    /// Still in the first head.
    active: bool,
    limit: usize,
    seen: usize,
    /// Line feeds in a row (a `\r` between them does not count): two end the head.
    newlines: u8,
    /// The 431 being written, and how much of it is out.
    reply: Option<(Vec<u8>, usize)>,
    /// Our side is shut after the 431.
    write_closed: bool,
}

impl HeadScan {
    fn new(limit: usize) -> HeadScan {
        HeadScan {
            active: true,
            limit,
            seen: 0,
            newlines: 0,
            reply: None,
            write_closed: false,
        }
    }

    /// Scans newly read bytes; true when the head went over the limit before it ended.
    fn over(&mut self, bytes: &[u8]) -> bool {
        if !self.active {
            return false;
        }
        for &b in bytes {
            self.seen += 1;
            match b {
                b'\n' => {
                    self.newlines += 1;
                    if self.newlines == 2 {
                        self.active = false;
                        return false;
                    }
                }
                b'\r' => {}
                _ => self.newlines = 0,
            }
            if self.seen > self.limit {
                self.active = false;
                return true;
            }
        }
        false
    }
}

/// The whole HTTP answer for a head over the limit: the same JSON error `handle` gives.
fn canned_431(limit: usize) -> Vec<u8> {
    canned(
        431,
        "headers_too_large",
        &ApiError::HeadersTooLarge(limit).to_string(),
    )
}

/// A complete `connection: close` answer with an OpenAI-shaped JSON error body.
fn canned(status: u16, code: &str, message: &str) -> Vec<u8> {
    let v = serde_json::json!({"error": {
        "message": message,
        "type": "invalid_request_error",
        "param": null,
        "code": code,
    }});
    let body = v.to_string();
    let reason = axum::http::StatusCode::from_u16(status)
        .ok()
        .and_then(|s| s.canonical_reason())
        .unwrap_or("Error");
    format!(
        "HTTP/1.1 {status} {reason}\r\ncontent-type: application/json\r\n\
         content-length: {}\r\nconnection: close\r\n\r\n{body}",
        body.len()
    )
    .into_bytes()
}

/// The status of an answer hyper wrote itself for a request it could not parse (400 bad syntax or framing, 414,
/// 431 too many headers): a status line, `content-length: 0`, no body. Our own error answers always have a body.
fn automatic_answer(data: &[u8]) -> Option<u16> {
    if data.len() > 512 || !data.ends_with(b"\r\n\r\n") {
        return None;
    }
    let text = std::str::from_utf8(data).ok()?;
    let status: u16 = text.strip_prefix("HTTP/1.1 ")?.get(..3)?.parse().ok()?;
    let empty = text.to_ascii_lowercase().contains("\r\ncontent-length: 0\r\n");
    ((400..600).contains(&status) && empty).then_some(status)
}

/// hyper's automatic answer with a JSON body instead.
fn json_answer_for(status: u16, max_header_bytes: usize) -> Vec<u8> {
    match status {
        431 => canned(
            431,
            "headers_too_large",
            &format!("too many request headers, or headers over {max_header_bytes} bytes (server.max_header_bytes)"),
        ),
        414 => canned(414, "uri_too_long", "the request URI is too long"),
        400 => canned(
            400,
            "invalid_http",
            "malformed HTTP request: bad request line, header syntax or message framing",
        ),
        other => canned(other, "invalid_http", "the HTTP request could not be processed"),
    }
}

/// An answer being written in place of hyper's: the bytes, how many are out, how many of hyper's to report.
struct Rewrite {
    bytes: Vec<u8>,
    sent: usize,
    consumed: usize,
}

impl Tracked {
    fn write_rewritten(&mut self, cx: &mut Context<'_>, buf: &[u8]) -> Option<Poll<std::io::Result<usize>>> {
        if self.rewrite.is_none() && !matches!(self.track.get(), Wait::Busy(_)) {
            if let Some(status) = automatic_answer(buf) {
                self.rewrite = Some(Rewrite {
                    bytes: json_answer_for(status, self.head.limit),
                    sent: 0,
                    consumed: buf.len(),
                });
            }
        }
        let rw = self.rewrite.as_mut()?;
        while rw.sent < rw.bytes.len() {
            match Pin::new(&mut self.inner).poll_write(cx, &rw.bytes[rw.sent..]) {
                Poll::Ready(Ok(0)) => return Some(Poll::Ready(Ok(0))),
                Poll::Ready(Ok(n)) => rw.sent += n,
                Poll::Ready(Err(e)) => return Some(Poll::Ready(Err(e))),
                Poll::Pending => return Some(Poll::Pending),
            }
        }
        let n = rw.consumed.min(buf.len());
        self.rewrite = None;
        Some(Poll::Ready(Ok(n)))
    }
}

impl AsyncRead for Tracked {
    fn poll_read(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<std::io::Result<()>> {
        let me = &mut *self;
        if let Some((reply, sent)) = &mut me.head.reply {
            // Write the 431, close our side, then discard what the client still sends until it closes (or the
            // header timeout drops the connection): closing with unread input would reset the connection and
            // could destroy the 431 before the client read it. hyper then sees an unfinished head and ends
            // without an answer of its own.
            while *sent < reply.len() {
                match Pin::new(&mut me.inner).poll_write(cx, &reply[*sent..]) {
                    Poll::Ready(Ok(0)) => return Poll::Ready(Ok(())),
                    Poll::Ready(Ok(n)) => {
                        *sent += n;
                    }
                    Poll::Ready(Err(e)) => return Poll::Ready(Err(e)),
                    Poll::Pending => return Poll::Pending,
                }
            }
            if !me.head.write_closed {
                match Pin::new(&mut me.inner).poll_shutdown(cx) {
                    Poll::Ready(_) => me.head.write_closed = true,
                    Poll::Pending => return Poll::Pending,
                }
            }
            let mut scratch = [0u8; 4096];
            loop {
                let mut rb = ReadBuf::new(&mut scratch);
                match Pin::new(&mut me.inner).poll_read(cx, &mut rb) {
                    Poll::Ready(Ok(())) if !rb.filled().is_empty() => continue,
                    Poll::Ready(_) => return Poll::Ready(Ok(())),
                    Poll::Pending => return Poll::Pending,
                }
            }
        }
        let before = buf.filled().len();
        let r = Pin::new(&mut me.inner).poll_read(cx, buf);
        if matches!(r, Poll::Ready(Ok(()))) && buf.filled().len() > before {
            me.track.bytes_arrived();
            if me.head.over(&buf.filled()[before..]) {
                tracing::debug!(limit = me.head.limit, "request head over server.max_header_bytes");
                // hyper never sees these bytes.
                buf.set_filled(before);
                me.head.reply = Some((canned_431(me.head.limit), 0));
                cx.waker().wake_by_ref();
                return Poll::Pending;
            }
        }
        r
    }
}

impl AsyncWrite for Tracked {
    fn poll_write(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<std::io::Result<usize>> {
        if let Some(p) = self.write_rewritten(cx, buf) {
            return p;
        }
        Pin::new(&mut self.inner).poll_write(cx, buf)
    }

    fn poll_write_vectored(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        bufs: &[std::io::IoSlice<'_>],
    ) -> Poll<std::io::Result<usize>> {
        // hyper's automatic answers are a few hundred bytes; look at small writes only.
        let total: usize = bufs.iter().map(|b| b.len()).sum();
        if total <= 512 && (self.rewrite.is_some() || !matches!(self.track.get(), Wait::Busy(_))) {
            let joined: Vec<u8> = bufs.iter().flat_map(|b| b.iter().copied()).collect();
            if let Some(p) = self.write_rewritten(cx, &joined) {
                return p;
            }
        }
        Pin::new(&mut self.inner).poll_write_vectored(cx, bufs)
    }

    fn is_write_vectored(&self) -> bool {
        self.inner.is_write_vectored()
    }

    fn poll_flush(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<std::io::Result<()>> {
        Pin::new(&mut self.inner).poll_flush(cx)
    }

    fn poll_shutdown(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<std::io::Result<()>> {
        Pin::new(&mut self.inner).poll_shutdown(cx)
    }
}

/// Starts the connectivity probes when `connectivity:` is configured (the task ends with the state). A probe is
/// `GET <base_url>/models` without credentials: any HTTP answer (401 included) proves the provider reachable, and
/// nothing is billed. No probe goes out in offline mode.
pub fn start_probes(state: &Arc<AppState>) {
    let Some(cc) = state.config.connectivity else {
        return;
    };
    let mut clients = std::collections::BTreeMap::new();
    for name in state.router.connectivity().providers() {
        let Some(pc) = state.config.providers.get(name) else {
            continue;
        };
        match crate::providers::http::build_client(pc) {
            Ok(c) => {
                clients.insert(name.clone(), (c, format!("{}/models", pc.base_url)));
            }
            Err(e) => tracing::warn!(provider = %name, error = %e, "no connectivity probe for this provider"),
        }
    }
    let clients = Arc::new(clients);
    let weak = Arc::downgrade(state);
    let conn = Arc::downgrade(state.router.connectivity());
    tokio::spawn(probe_loop(
        conn,
        cc.probe_interval,
        cc.probe_timeout,
        move |name: String| {
            let clients = clients.clone();
            let weak = weak.clone();
            async move {
                let offline = weak.upgrade().is_none_or(|s| s.router.mode() == Mode::Offline);
                if offline {
                    return None;
                }
                let (client, url) = clients.get(&name)?;
                Some(client.get(url).send().await.is_ok())
            }
        },
    ));
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_cap_fits_the_open_file_limit() {
        let cfg = crate::config::Config::from_yaml(
            "models: { default: { a: m } }\nproviders: { a: { kind: ollama, base_url: \"http://127.0.0.1:9\" } }\n\
             fallback_policy: { order: [a] }\n",
            &|_| None,
        )
        .unwrap();
        let l = ConnLimits::new(&cfg.server, Some(256));
        assert_eq!(l.max_connections, 256 - FD_HEADROOM - HEALTH_RESERVE);
        assert_eq!(ConnLimits::new(&cfg.server, Some(1 << 20)).max_connections, 1024);
        assert_eq!(ConnLimits::new(&cfg.server, None).max_connections, 1024);
        assert_eq!(ConnLimits::new(&cfg.server, Some(10)).max_connections, 1);
        assert!(open_file_limit().is_some_and(|n| n > 0));
    }

    #[test]
    fn the_head_scan_stops_at_the_end_of_the_first_head_and_counts_only_it() {
        let mut h = HeadScan::new(40);
        assert!(!h.over(b"GET / HTTP/1.1\r\nhost: x\r"));
        assert!(!h.over(b"\n\r\n"), "the end may come split across reads");
        assert!(!h.active);
        assert!(!h.over(&[b'x'; 1000]), "a body after the head is not counted");
        let mut lf = HeadScan::new(40);
        assert!(
            !lf.over(b"GET / HTTP/1.1\nhost: x\n\n"),
            "bare line feeds end a head too"
        );
        assert!(!lf.active);
        let mut big = HeadScan::new(40);
        assert!(!big.over(b"GET / HTTP/1.1\r\n"));
        assert!(big.over(&[b'a'; 30]), "41 bytes and no end");
        assert!(!big.over(b"\r\n\r\n"), "reported once");
        assert!(String::from_utf8(canned_431(40))
            .unwrap()
            .contains("\"code\":\"headers_too_large\""));
    }

    #[test]
    fn only_hyper_s_empty_error_answers_are_rewritten() {
        let auto = b"HTTP/1.1 400 Bad Request\r\nconnection: close\r\ncontent-length: 0\r\ndate: x\r\n\r\n";
        assert_eq!(automatic_answer(auto), Some(400));
        for own in [
            &b"HTTP/1.1 404 Not Found\r\ncontent-type: application/json\r\ncontent-length: 105\r\n\r\n"[..],
            b"HTTP/1.1 200 OK\r\ncontent-length: 0\r\n\r\n",
            b"HTTP/1.1 400 Bad Request\r\ncontent-length: 0\r\n\r\n{",
            b"{\"error\":{}}",
        ] {
            assert_eq!(automatic_answer(own), None, "{}", String::from_utf8_lossy(own));
        }
        let json = String::from_utf8(json_answer_for(431, 16384)).unwrap();
        assert!(
            json.starts_with("HTTP/1.1 431 Request Header Fields Too Large\r\n"),
            "{json}"
        );
        let (head, body) = json.split_once("\r\n\r\n").unwrap();
        assert!(
            head.contains(&format!("content-length: {}", body.len())),
            "{json}"
        );
    }

    #[test]
    fn serve_warns_when_admin_is_reachable_beyond_loopback_without_a_token() {
        let warn = |a: &str, token| admin_open_beyond_loopback(a.parse().unwrap(), token);
        assert!(warn("0.0.0.0:6001", false));
        assert!(warn("[::]:6001", false));
        assert!(warn("10.0.0.5:6001", false));
        assert!(!warn("0.0.0.0:6001", true));
        assert!(!warn("127.0.0.1:6001", false));
        assert!(!warn("[::1]:6001", false));
    }

    #[test]
    fn phases_only_move_forward() {
        let l = Lifecycle::default();
        l.advance(Phase::Closing);
        l.advance(Phase::Draining);
        assert_eq!(l.phase(), Phase::Closing);
    }
}
