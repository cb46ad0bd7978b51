//! HTTP API: OpenAI-compatible routes, the assistants route, health, metrics and admin. Handlers parse, call the
//! answer pipeline ([`crate::pipeline`]) and render.
//!
//! Inbound layer order, outermost first (the first to see a request):
//! 1. request id and metrics (`record_request`): every answer below gets `X-Request-Id` and is counted;
//! 2. client key and per-key limits (`/v1/*`, `/api/*`: 401, 429) or admin token (`/admin/*`: 401, routes only),
//!    before a byte of the body is read, so an unauthenticated client cannot make the gateway read its body;
//! 3. body limit (413 `body_too_large`), applied as the handler reads the body;
//! 4. the handler.
//!
//! So an oversized body without a valid key gets 401, and with one 413 (`tests/api_input.rs` pins it).
//! Outside the router, `server.rs` checks the head size (431) and the health reserve (503) per connection, records
//! the peer address (`ConnectInfo`) and times the request body. Unknown paths (404) and methods (405, with `Allow`)
//! are answered by the router's fallbacks, as OpenAI-shaped errors like every other rejection.
//!
//! `/mcp` (with `mcp.enabled`) has its own stack under layer 1: `Host` and `Origin` validation (403), then the
//! client key as on `/v1/*`, then rmcp's Streamable HTTP service (its own body limit, the same size).

mod admin;
mod chat;
mod client;
mod embeddings;
pub mod error;
mod messages;
mod responses;
mod sse;

use std::collections::BTreeMap;
use std::sync::Arc;

use axum::extract::{DefaultBodyLimit, FromRequest, MatchedPath, Request, State};
use axum::http::{HeaderMap, HeaderValue};
use axum::middleware::{self, Next};
use axum::response::Response;
use axum::routing::{get, post};
use bytes::Bytes;
use serde::de::DeserializeOwned;
use tokio::time::Instant;

use crate::cache::ResponseCache;
use crate::config::Config;
use crate::limits::ClientLimits;
use crate::metrics::{Metrics, RequestLabels, Route, RouteLabels, Source};
use crate::offline::OfflineStore;
use crate::pipeline::headers;
use crate::providers::{self, ClientBuildError, Provider};
use crate::router::Router;
pub(crate) use admin::{admin_allowed, is_loopback, parse_mode, providers_json};
pub(crate) use chat::{generate, generate_result, GenerateRequest};
pub use error::ApiError;

/// Everything handlers share.
#[derive(Debug)]
pub struct AppState {
    /// Validated config.
    pub config: Config,
    /// Fallback policy and provider health.
    pub router: Router,
    /// Adapters by provider name.
    pub providers: BTreeMap<String, Arc<Provider>>,
    /// Instruments.
    pub metrics: Arc<Metrics>,
    /// Offline packages.
    pub offline: OfflineStore,
    /// Response cache.
    pub cache: ResponseCache,
    /// Client keys and their limits.
    pub clients: ClientLimits,
    /// Serving, draining, closing: `/readyz` and the streams follow it.
    pub lifecycle: crate::server::Lifecycle,
    /// OpenTelemetry trace export (`None`: off).
    pub telemetry: Option<crate::telemetry::Telemetry>,
}

impl AppState {
    /// Builds adapters, metrics and the router from config.
    pub fn new(config: Config) -> Result<Arc<AppState>, ClientBuildError> {
        let metrics = Arc::new(Metrics::new(
            config.providers.keys().map(String::as_str),
            config.mode,
        ));
        let router = Router::new(&config, metrics.clone());
        for (path, message) in router.planner().warnings() {
            tracing::warn!(path, "{message}");
        }
        let needs_secret = |p: &&crate::config::ProviderConfig| p.kind.default_secret_env().is_some();
        for p in config.providers.values().filter(needs_secret) {
            if config.policy.order.contains(&p.name) {
                metrics.secret_present(&p.name, p.secret.is_some());
            }
        }
        let providers = providers::build_all(&config)?
            .into_iter()
            .map(|p| (p.name.clone(), p))
            .collect();
        let mut offline = OfflineStore::load(&config.offline);
        offline.set_miss_secrets(config.secret_values());
        let cache = ResponseCache::with_backend(&config.cache, router.state_backend(), metrics.clone());
        let clients = ClientLimits::with_backend(&config.clients, router.state_backend().clone());
        // Export problems never stop the gateway: it serves without traces and says why.
        let telemetry = config.telemetry.as_ref().and_then(|o| {
            match crate::telemetry::Telemetry::start(&config, metrics.spans_dropped.clone()) {
                Ok(t) => {
                    tracing::info!(endpoint = %o.endpoint, "OpenTelemetry traces exported over OTLP/HTTP");
                    Some(t)
                }
                Err(e) => {
                    tracing::error!(error = %e, "OpenTelemetry traces are off");
                    None
                }
            }
        });
        let state = Arc::new(AppState {
            config,
            router,
            providers,
            metrics,
            offline,
            cache,
            clients,
            lifecycle: crate::server::Lifecycle::default(),
            telemetry,
        });
        crate::state::follow_mode(&state);
        Ok(state)
    }

    pub(crate) fn provider(&self, name: &str) -> Option<&Arc<Provider>> {
        self.providers.get(name)
    }
}

/// The API router (testable with `oneshot`).
pub fn app(state: Arc<AppState>) -> axum::Router {
    let limit = state.config.server.body_limit_bytes;
    // Client routes: the client-key layer (401, 429 per key) sees the request before the handler. Without
    // `limits.clients` there is no layer at all (the set of keys is fixed for the process's life).
    let keyed = |routes: axum::Router<Arc<AppState>>| {
        if state.clients.enabled() {
            routes.layer(middleware::from_fn_with_state(
                state.clone(),
                client::require_client_key,
            ))
        } else {
            routes
        }
    };
    let openai_routes = axum::Router::new()
        .route("/v1/chat/completions", post(chat::chat_completions))
        .route("/v1/responses", post(responses::responses))
        .route("/v1/embeddings", post(embeddings::embeddings))
        .route("/api/assistants/generate", post(chat::assistants_generate));
    // Anthropic-shaped routes answer errors in Anthropic's shape, the client key's 401 and 429 included (the
    // models routes when the client sent `anthropic-version`). Only these routes have the layer: the others
    // never take Anthropic's shape, and a layer is a boxed future and a service clone per request.
    let anthropic_routes = axum::Router::new()
        .route("/v1/messages", post(messages::messages))
        .route("/v1/messages/count_tokens", post(messages::count_tokens))
        .route("/v1/models", get(admin::models))
        .route("/v1/models/{*id}", get(admin::model));
    let client_routes = keyed(openai_routes)
        .merge(keyed(anthropic_routes).layer(middleware::from_fn(messages::anthropic_errors)));
    let mut router = axum::Router::new().merge(client_routes);
    if state.config.mcp.enabled {
        // `/mcp`: Host and Origin first (DNS rebinding, browsers), then the client key as on `/v1/*`; the admin
        // token of admin tools is checked per tool call.
        let mut mcp = crate::mcp::http::routes(&state);
        if state.clients.enabled() {
            mcp = mcp.layer(middleware::from_fn_with_state(
                state.clone(),
                client::require_client_key,
            ));
        }
        router = router.merge(mcp.layer(middleware::from_fn_with_state(
            state.clone(),
            crate::mcp::http::guard,
        )));
    }
    router
        .route("/", get(admin::root))
        .route("/healthz", get(admin::healthz))
        .route("/readyz", get(admin::readyz))
        .route("/metrics", get(admin::metrics))
        .merge(
            axum::Router::new()
                .route("/admin/providers", get(admin::providers))
                .route("/admin/mode", post(admin::set_mode).get(admin::get_mode))
                .route("/admin/offline", get(admin::offline))
                .route(
                    "/admin/offline/misses",
                    get(admin::offline_misses).delete(admin::clear_offline_misses),
                )
                // `route_layer`: the token guards these routes only, so an unknown path is a 404 either way.
                .route_layer(middleware::from_fn_with_state(
                    state.clone(),
                    admin::require_token,
                )),
        )
        .fallback(not_found)
        .method_not_allowed_fallback(method_not_allowed)
        .layer(DefaultBodyLimit::max(limit))
        .layer(middleware::from_fn_with_state(state.clone(), record_request))
        .with_state(state)
}

/// Only `/metrics`, for `server.metrics_listen`.
pub fn metrics_app(state: Arc<AppState>) -> axum::Router {
    axum::Router::new()
        .route("/metrics", get(admin::metrics))
        .fallback(not_found)
        .method_not_allowed_fallback(method_not_allowed)
        .with_state(state)
}

/// 404 `not_found` for every path without a route.
async fn not_found(uri: axum::http::Uri) -> ApiError {
    ApiError::NotFound(uri.path().chars().take(200).collect())
}

/// 405 `method_not_allowed`; the router adds `Allow`.
async fn method_not_allowed(method: axum::http::Method, uri: axum::http::Uri) -> ApiError {
    ApiError::MethodNotAllowed {
        method: method.to_string(),
        path: uri.path().chars().take(200).collect(),
    }
}

fn route_of(path: Option<&MatchedPath>) -> Route {
    match path.map(MatchedPath::as_str) {
        Some("/v1/chat/completions") => Route::ChatCompletions,
        Some("/v1/responses") => Route::Responses,
        Some("/v1/messages") => Route::Messages,
        Some("/v1/messages/count_tokens") => Route::CountTokens,
        Some("/v1/embeddings") => Route::Embeddings,
        Some("/v1/models" | "/v1/models/{*id}") => Route::Models,
        Some("/api/assistants/generate") => Route::AssistantsGenerate,
        Some(p) if p.starts_with("/admin") => Route::Admin,
        _ => Route::Other,
    }
}

async fn record_request(State(state): State<Arc<AppState>>, req: Request, next: Next) -> Response {
    let start = Instant::now();
    let route = route_of(req.extensions().get::<MatchedPath>());
    // Keep a sane client request id (for correlation), else make one; handlers see it in the request's
    // headers (the Anthropic error body carries it).
    let sane = req
        .headers()
        .get(headers::REQUEST_ID)
        .filter(|v| !v.is_empty() && v.len() <= 128 && v.as_bytes().iter().all(u8::is_ascii_graphic))
        .cloned();
    let mut req = req;
    let request_id = match sane {
        Some(v) => Some(v),
        None => HeaderValue::from_str(&crate::canonical::new_id("req")).ok(),
    };
    if let Some(v) = &request_id {
        req.headers_mut().insert(headers::REQUEST_ID, v.clone());
    }
    let method = req.method().clone();
    let mut resp = next.run(req).await;
    let request_id = request_id.map(|v| {
        let id = v.to_str().unwrap_or_default().to_string();
        resp.headers_mut().insert(headers::REQUEST_ID, v);
        id
    });
    let status = resp.status().as_u16();
    if !matches!(route, Route::Other | Route::Admin) || resp.status().is_client_error() {
        // The `X-LLM-Source` header says who answered (an extension would cost a map allocation per request).
        let source = resp
            .headers()
            .get(headers::SOURCE)
            .and_then(|v| Source::from_label(v.as_bytes()))
            .unwrap_or(Source::None);
        state
            .metrics
            .requests
            .get_or_create(&RequestLabels {
                route,
                status,
                source,
            })
            .inc();
        let took = start.elapsed();
        state
            .metrics
            .request_duration
            .get_or_create(&RouteLabels { route })
            .observe(took.as_secs_f64());
        let header = |n: axum::http::HeaderName| {
            resp.headers()
                .get(n)
                .and_then(|v| v.to_str().ok())
                .unwrap_or("-")
                .to_string()
        };
        tracing::info!(
            request_id = request_id.as_deref().unwrap_or("-"),
            %method,
            route = route.as_str(),
            status,
            provider = header(headers::ACTUAL_PROVIDER),
            fallbacks = header(headers::FALLBACKS),
            elapsed_ms = took.as_millis() as u64,
            "request"
        );
    }
    resp
}

/// A request's headers and body, without copying the headers (axum's `HeaderMap` extractor clones the map).
pub(crate) async fn split(
    mut req: Request,
) -> (HeaderMap, Result<Bytes, axum::extract::rejection::BytesRejection>) {
    let headers = std::mem::take(req.headers_mut());
    (headers, Bytes::from_request(req, &()).await)
}

/// Parses a JSON body. The hot path deserializes straight into `T` and keeps it when `accept` agrees; anything
/// else is parsed again in two steps (a JSON object? `check` on the value? then `T`, with the path of a bad
/// field), so each failure gets its own clear error. `accept` must pass only what `check` passes.
pub(crate) fn parse_body<T: DeserializeOwned>(
    body: Result<Bytes, axum::extract::rejection::BytesRejection>,
    limit: usize,
    check: impl FnOnce(&serde_json::Value) -> Result<(), ApiError>,
    accept: impl FnOnce(&T) -> bool,
) -> Result<T, ApiError> {
    let bytes = body.map_err(|r| {
        if r.status() == axum::http::StatusCode::PAYLOAD_TOO_LARGE {
            ApiError::BodyTooLarge(limit)
        } else if let Some(t) = body_timeout(&r) {
            ApiError::BodyTimeout(t.0)
        } else {
            ApiError::InvalidJson(r.body_text())
        }
    })?;
    // Only an object may take the hot path: derived structs would also accept a JSON array.
    if bytes.trim_ascii_start().first() == Some(&b'{') {
        if let Ok(parsed) = serde_json::from_slice::<T>(&bytes) {
            if accept(&parsed) {
                return Ok(parsed);
            }
        }
    }
    let value: serde_json::Value =
        serde_json::from_slice(&bytes).map_err(|e| ApiError::InvalidJson(e.to_string()))?;
    if !value.is_object() {
        return Err(ApiError::InvalidRequest {
            message: "request body must be a JSON object".into(),
            param: None,
        });
    }
    check(&value)?;
    serde_path_to_error::deserialize(value).map_err(|e| {
        let path = e.path().to_string();
        ApiError::InvalidRequest {
            message: format!("invalid value at {path}: {}", e.inner()),
            param: Some(path),
        }
    })
}

/// The server's body timeout, if that is why the body could not be read.
fn body_timeout(r: &axum::extract::rejection::BytesRejection) -> Option<&crate::server::BodyTimeout> {
    let mut cur: Option<&(dyn std::error::Error + 'static)> = Some(r);
    while let Some(e) = cur {
        if let Some(t) = e.downcast_ref::<crate::server::BodyTimeout>() {
            return Some(t);
        }
        cur = e.source();
    }
    None
}
