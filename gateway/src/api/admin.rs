//! `GET /v1/models`, health and readiness, `/metrics`, and the admin routes (no secrets, ever).

use std::sync::Arc;

use axum::extract::rejection::BytesRejection;
use axum::extract::State;
use axum::http::{header, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::Json;
use bytes::Bytes;
use serde::Deserialize;
use serde_json::{json, Value};

use super::{parse_body, ApiError, AppState};
use crate::config::Mode;
use crate::router::BreakerState;

/// `GET /v1/models`: logical models, then concrete provider models.
pub(crate) async fn models(
    State(state): State<Arc<AppState>>,
    headers: axum::http::HeaderMap,
    uri: axum::http::Uri,
) -> Json<Value> {
    if headers.contains_key(super::messages::ANTHROPIC_VERSION) {
        return Json(super::messages::model_list(&state, uri.query()));
    }
    Json(openai_models(&state))
}

/// The OpenAI model list: logical models, then every concrete model.
fn openai_models(state: &AppState) -> Value {
    let created = 1_700_000_000u64;
    let mut data: Vec<Value> = state
        .router
        .planner()
        .logical_models()
        .map(|m| json!({"id": m, "object": "model", "created": created, "owned_by": "llm-gateway"}))
        .collect();
    for (provider, model) in state.router.planner().concrete_models() {
        data.push(json!({"id": model, "object": "model", "created": created, "owned_by": provider}));
    }
    json!({"object": "list", "data": data})
}

/// `GET /v1/models/{id}`: one entry of the list, or 404 `model_not_found`.
pub(crate) async fn model(
    State(state): State<Arc<AppState>>,
    headers: axum::http::HeaderMap,
    axum::extract::Path(id): axum::extract::Path<String>,
) -> Result<Json<Value>, ApiError> {
    if headers.contains_key(super::messages::ANTHROPIC_VERSION) {
        let logical = state.router.planner().logical_models().any(|m| *m == id);
        return match state.config.aliases.resolve(&id) {
            Some(l) => Ok(Json(super::messages::model_info(
                &id,
                &format!("{id} (gateway model {l})"),
            ))),
            None if logical => Ok(Json(super::messages::model_info(&id, &format!("Gateway {id}")))),
            None => Err(ApiError::Plan(crate::router::PlanError::UnknownModel(id))),
        };
    }
    let list = openai_models(&state);
    list["data"]
        .as_array()
        .and_then(|d| d.iter().find(|m| m["id"] == id.as_str()).cloned())
        .map(Json)
        .ok_or(ApiError::Plan(crate::router::PlanError::UnknownModel(id)))
}

/// `GET /` (and `HEAD /`, which Claude Code sends first): what answers here.
pub(crate) async fn root() -> Json<Value> {
    Json(json!({"service": "llm-gateway", "status": "ok"}))
}

/// Liveness.
pub(crate) async fn healthz() -> Json<Value> {
    Json(json!({"status": "ok"}))
}

/// Readiness: some provider in the order can be called now (breaker not open, not cooling down), and the gateway
/// is not shutting down.
pub(crate) async fn readyz(State(state): State<Arc<AppState>>) -> Response {
    let draining = state.lifecycle.phase() != crate::server::Phase::Serving;
    let mode = state.router.mode();
    let usable: Vec<String> = state
        .router
        .snapshot()
        .await
        .into_iter()
        .filter(|s| state.config.policy.order.contains(&s.name))
        .filter(|s| {
            let local = state
                .config
                .providers
                .get(&s.name)
                .is_some_and(|p| p.kind.is_local());
            mode != Mode::Offline || local
        })
        .filter(|s| s.breaker != BreakerState::Open && s.cooldown_remaining_ms.is_none() && s.reachable)
        .map(|s| s.name)
        .collect();
    // Offline packages answer too (not in remote mode).
    let packages = mode != Mode::Remote && !state.offline.is_empty();
    let ready = (!usable.is_empty() || packages) && !draining;
    let status = if ready {
        StatusCode::OK
    } else {
        StatusCode::SERVICE_UNAVAILABLE
    };
    let body = json!({
        "ready": ready,
        "mode": mode.as_str(),
        "usable_providers": usable,
        "offline_packages": packages,
        "degraded": state.router.connectivity().degraded(),
        "draining": draining,
        "state_backend": state.router.state_backend().status(),
    });
    (status, Json(body)).into_response()
}

/// Prometheus text exposition.
pub(crate) async fn metrics(State(state): State<Arc<AppState>>) -> Response {
    let ct = "application/openmetrics-text; version=1.0.0; charset=utf-8";
    ([(header::CONTENT_TYPE, ct)], state.metrics.encode()).into_response()
}

/// `GET /admin/providers`: breaker, cooldown, last error per provider. Secrets appear only as present/absent.
pub(crate) async fn providers(State(state): State<Arc<AppState>>) -> Json<Value> {
    Json(providers_json(&state).await)
}

/// The body of `GET /admin/providers` (also the MCP tool `llm_providers`).
pub(crate) async fn providers_json(state: &AppState) -> Value {
    let list: Vec<Value> = state
        .router
        .snapshot()
        .await
        .into_iter()
        .map(|s| {
            let pc = state.config.providers.get(&s.name);
            json!({
                "name": s.name,
                "kind": pc.map(|p| p.kind),
                "base_url": pc.map(|p| safe_url(&p.base_url)),
                "secret_present": pc.is_some_and(|p| p.secret.is_some()),
                "secret_source": pc.map(|p| p.secret_source.found_in),
                "in_order": state.config.policy.order.contains(&s.name),
                "breaker": s.breaker,
                "cooldown_remaining_ms": s.cooldown_remaining_ms,
                "cooldown_reason": s.cooldown_reason,
                "last_error": s.last_error,
                "reachable": s.reachable,
                "budgets": s.budgets,
            })
        })
        .collect();
    json!({
        "mode": state.router.mode().as_str(),
        "degraded": state.router.connectivity().degraded(),
        "state_backend": state.router.state_backend().status(),
        "cache_entries": state.cache.entry_count(),
        "cache_backend": state.cache.backend(),
        "providers": list,
    })
}

/// A URL without user info or query (both could carry credentials).
fn safe_url(raw: &str) -> String {
    match reqwest::Url::parse(raw) {
        Ok(mut u) => {
            let _ = u.set_username("");
            let _ = u.set_password(None);
            u.set_query(None);
            u.to_string()
        }
        Err(_) => "<invalid>".into(),
    }
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct ModeBody {
    mode: String,
}

/// `POST /admin/mode` `{"mode": "auto"|"remote"|"offline"}`.
pub(crate) async fn set_mode(
    State(state): State<Arc<AppState>>,
    body: Result<Bytes, BytesRejection>,
) -> Result<Json<Value>, ApiError> {
    let b: ModeBody = parse_body(
        body,
        state.config.server.body_limit_bytes,
        |_| Ok(()),
        |_: &ModeBody| true,
    )?;
    let mode = parse_mode(&b.mode)?;
    let previous = state.router.mode();
    let shared = state.router.switch_mode(mode).await;
    tracing::info!(
        from = previous.as_str(),
        to = mode.as_str(),
        ?shared,
        "mode switched"
    );
    let mut body = json!({"mode": mode.as_str(), "previous": previous.as_str()});
    if let Some(shared) = shared {
        // Redis: whether the other replicas follow now, or once Redis answers again.
        body["shared"] = json!(shared);
    }
    Ok(Json(body))
}

/// A mode name as `POST /admin/mode` (and the MCP tool `llm_set_mode`) accepts it.
pub(crate) fn parse_mode(name: &str) -> Result<Mode, ApiError> {
    Mode::parse(name).ok_or_else(|| {
        ApiError::BadAdminInput(format!("unknown mode {name:?}; expected auto, remote or offline"))
    })
}

/// `GET /admin/mode`.
pub(crate) async fn get_mode(State(state): State<Arc<AppState>>) -> Json<Value> {
    Json(json!({"mode": state.router.mode().as_str()}))
}

/// With `server.admin_token` set, admin routes need `Authorization: Bearer <token>` (scheme in any case, token
/// compared in constant time). Without one they answer loopback peers only (403 `admin_token_required` for others).
/// A request with no peer address (`oneshot` in process, as `offline-dry-run` does) has no remote peer and counts
/// as local; the server always records the peer.
pub(crate) async fn require_token(
    State(state): State<Arc<AppState>>,
    req: axum::extract::Request,
    next: axum::middleware::Next,
) -> Result<Response, ApiError> {
    match &state.config.server.admin_token {
        Some(token) => {
            let given = req
                .headers()
                .get(header::AUTHORIZATION)
                .and_then(|v| bearer(v.as_bytes()))
                .unwrap_or(b"");
            if !crate::limits::constant_time_eq(given, token.expose().as_bytes()) {
                return Err(ApiError::AdminUnauthorized);
            }
        }
        None => {
            let peer = req
                .extensions()
                .get::<axum::extract::ConnectInfo<std::net::SocketAddr>>()
                .map(|c| c.0.ip());
            if peer.is_some_and(|ip| !is_loopback(ip)) {
                return Err(ApiError::AdminTokenRequired);
            }
        }
    }
    Ok(next.run(req).await)
}

/// The credential of `Bearer <credential>`, the scheme matched in any case (RFC 9110 §11.1).
pub(crate) fn bearer(value: &[u8]) -> Option<&[u8]> {
    let (scheme, rest) = value.split_at_checked(6)?;
    if !scheme.eq_ignore_ascii_case(b"bearer") {
        return None;
    }
    let cred = rest.trim_ascii_start();
    (cred.len() < rest.len()).then_some(cred.trim_ascii_end())
}

/// Loopback, IPv4-mapped IPv6 loopback included.
pub(crate) fn is_loopback(ip: std::net::IpAddr) -> bool {
    match ip {
        std::net::IpAddr::V4(v4) => v4.is_loopback(),
        std::net::IpAddr::V6(v6) => {
            v6.is_loopback() || v6.to_ipv4_mapped().is_some_and(|v4| v4.is_loopback())
        }
    }
}

/// Whether `given` opens the admin surface: always when no `server.admin_token` is configured, else only the
/// token itself (compared in constant time).
pub(crate) fn admin_allowed(state: &AppState, given: Option<&str>) -> bool {
    match &state.config.server.admin_token {
        None => true,
        Some(token) => {
            crate::limits::constant_time_eq(given.unwrap_or("").as_bytes(), token.expose().as_bytes())
        }
    }
}

/// `GET /admin/offline`: loaded packages (manifest, checksum check), entry counts, every load problem.
pub(crate) async fn offline(State(state): State<Arc<AppState>>) -> Json<Value> {
    Json(json!(state.offline.status()))
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct MissesQuery {
    limit: Option<usize>,
}

/// `GET /admin/offline/misses[?limit=N]`: the most frequent recent offline misses (redacted, normalised; hashes
/// only with `offline.misses.record: hashed`), with first and last seen.
pub(crate) async fn offline_misses(
    State(state): State<Arc<AppState>>,
    query: Result<axum::extract::Query<MissesQuery>, axum::extract::rejection::QueryRejection>,
) -> Result<Json<Value>, ApiError> {
    let q = query.map_err(|e| ApiError::BadAdminInput(format!("bad query: {}", e.body_text())))?;
    let limit = q.limit.unwrap_or(usize::MAX);
    Ok(Json(json!(state.offline.misses().view(limit))))
}

/// `DELETE /admin/offline/misses`: forgets the record (after its prompts went into a package).
pub(crate) async fn clear_offline_misses(State(state): State<Arc<AppState>>) -> Json<Value> {
    let cleared = state.offline.misses().len();
    state.offline.misses().clear();
    Json(json!({"cleared": cleared}))
}
