//! `/mcp`: the Streamable HTTP transport on the API listener (`mcp.enabled`).
//!
//! rmcp's [`StreamableHttpService`] speaks the protocol (sessions for 2025-era clients that `initialize`, the
//! stateless 2026-07-28 revision for clients that send per-request metadata). In front of it, [`guard`] checks
//! `Host` (DNS-rebinding guard: `mcp.allowed_hosts`, loopback names by default) and `Origin` (browsers:
//! `mcp.allowed_origins`, loopback origins on any port by default) and answers 403 with a JSON-RPC error; then
//! the client-key layer of `/v1/*` applies (see [`crate::api`]). rmcp's own Host/Origin checks are switched off
//! so that the config has one meaning, tested here.

use std::net::IpAddr;
use std::sync::Arc;

use axum::extract::{Request, State};
use axum::http::{header, StatusCode};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use rmcp::transport::streamable_http_server::session::local::LocalSessionManager;
use rmcp::transport::{StreamableHttpServerConfig, StreamableHttpService};
use serde_json::json;

use super::{Backend, LlmProviderTool};
use crate::api::AppState;
use crate::config::McpConfig;

/// The path of the endpoint.
pub const PATH: &str = "/mcp";

/// The `/mcp` route over the gateway in this process (layers are added by [`crate::api::app`]).
pub fn routes(state: &Arc<AppState>) -> axum::Router<Arc<AppState>> {
    let server = LlmProviderTool::new(Arc::new(Backend::Local(state.clone())), None);
    let config = StreamableHttpServerConfig::default()
        .disable_allowed_hosts()
        .disable_allowed_origins()
        .with_max_request_body_bytes(state.config.server.body_limit_bytes);
    let service = StreamableHttpService::new(
        move || Ok(server.clone()),
        Arc::new(LocalSessionManager::default()),
        config,
    );
    axum::Router::new().route_service(PATH, service)
}

/// Host and Origin validation for `/mcp`: 403 with a JSON-RPC error when either is not allowed.
pub(crate) async fn guard(State(state): State<Arc<AppState>>, req: Request, next: Next) -> Response {
    let cfg = &state.config.mcp;
    let host = req
        .headers()
        .get(header::HOST)
        .and_then(|v| v.to_str().ok())
        .map(str::to_string)
        .or_else(|| req.uri().authority().map(|a| a.as_str().to_string()));
    if !host_allowed(host.as_deref(), &cfg.allowed_hosts) {
        tracing::warn!(host = host.as_deref().unwrap_or("-"), "mcp: Host not allowed");
        return forbidden(
            "Host header not allowed on /mcp; add the host the client uses to mcp.allowed_hosts",
        );
    }
    let origin = req
        .headers()
        .get(header::ORIGIN)
        .map(|v| v.to_str().unwrap_or("<invalid>"));
    if let Some(o) = origin {
        if !origin_allowed(o, cfg) {
            tracing::warn!(origin = o, "mcp: Origin not allowed");
            return forbidden("Origin not allowed on /mcp; add it to mcp.allowed_origins");
        }
    }
    next.run(req).await
}

fn forbidden(message: &str) -> Response {
    let body = json!({"jsonrpc": "2.0", "id": null, "error": {"code": -32600, "message": message}});
    (StatusCode::FORBIDDEN, axum::Json(body)).into_response()
}

/// `host[:port]` split; IPv6 literals in brackets (`[::1]:6001`) or bare (`::1`, config entries only).
fn split_authority(s: &str) -> Option<(String, Option<u16>)> {
    let s = s.trim();
    if s.is_empty() {
        return None;
    }
    if let Some(rest) = s.strip_prefix('[') {
        let (h, after) = rest.split_once(']')?;
        let port = match after {
            "" => None,
            p => Some(p.strip_prefix(':')?.parse().ok()?),
        };
        return Some((h.to_ascii_lowercase(), port));
    }
    if s.parse::<std::net::Ipv6Addr>().is_ok() {
        return Some((s.to_ascii_lowercase(), None));
    }
    match s.rsplit_once(':') {
        Some((h, p)) => Some((h.to_ascii_lowercase(), Some(p.parse().ok()?))),
        None => Some((s.to_ascii_lowercase(), None)),
    }
}

/// Whether a `Host` value matches an entry of `allowed` (`host`: any port; `host:port`: that port only).
pub(crate) fn host_allowed(host: Option<&str>, allowed: &[String]) -> bool {
    let Some((h, port)) = host.and_then(split_authority) else {
        return false;
    };
    allowed
        .iter()
        .filter_map(|a| split_authority(a))
        .any(|(ah, ap)| ah == h && (ap.is_none() || ap == port))
}

fn is_loopback(host: &str) -> bool {
    let bare = host.trim_start_matches('[').trim_end_matches(']');
    bare.eq_ignore_ascii_case("localhost") || bare.parse::<IpAddr>().is_ok_and(|ip| ip.is_loopback())
}

/// Whether an `Origin` value is allowed: by default any loopback origin (http or https, any port); with
/// `mcp.allowed_origins` exactly those (scheme, host and port; a missing port is the scheme's default).
pub(crate) fn origin_allowed(origin: &str, cfg: &McpConfig) -> bool {
    let Ok(o) = reqwest::Url::parse(origin) else {
        return false;
    };
    if !matches!(o.scheme(), "http" | "https") {
        return false;
    }
    let Some(host) = o.host_str() else {
        return false;
    };
    match &cfg.allowed_origins {
        None => is_loopback(host),
        Some(list) => list.iter().filter_map(|a| reqwest::Url::parse(a).ok()).any(|a| {
            a.scheme() == o.scheme()
                && a.host_str().is_some_and(|ah| ah.eq_ignore_ascii_case(host))
                && a.port_or_known_default() == o.port_or_known_default()
        }),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn loopback() -> Vec<String> {
        McpConfig::default().allowed_hosts
    }

    #[test]
    fn hosts() {
        let l = loopback();
        for ok in [
            "localhost",
            "localhost:6001",
            "127.0.0.1:1",
            "[::1]:6001",
            "[::1]",
            "LOCALHOST:80",
        ] {
            assert!(host_allowed(Some(ok), &l), "{ok}");
        }
        for bad in [
            "evil.example",
            "evil.example:6001",
            "127.0.0.2",
            "localhost.evil",
            "",
            "[::1",
            "localhost:x",
        ] {
            assert!(!host_allowed(Some(bad), &l), "{bad}");
        }
        assert!(!host_allowed(None, &l));
        let custom = vec!["gw.internal:8443".to_string(), "api.example".to_string()];
        assert!(host_allowed(Some("gw.internal:8443"), &custom));
        assert!(!host_allowed(Some("gw.internal:8080"), &custom));
        assert!(!host_allowed(Some("gw.internal"), &custom));
        assert!(host_allowed(Some("api.example:1234"), &custom));
        assert!(!host_allowed(Some("localhost"), &custom));
    }

    #[test]
    fn origins() {
        let d = McpConfig::default();
        for ok in [
            "http://localhost:3000",
            "https://127.0.0.1",
            "http://[::1]:5173",
            "http://127.8.0.1",
        ] {
            assert!(origin_allowed(ok, &d), "{ok}");
        }
        for bad in [
            "null",
            "https://evil.example",
            "file://localhost",
            "http://localhost.evil:80",
            "x",
        ] {
            assert!(!origin_allowed(bad, &d), "{bad}");
        }
        let c = McpConfig {
            allowed_origins: Some(vec!["https://app.example".into(), "http://localhost:3000".into()]),
            ..McpConfig::default()
        };
        assert!(origin_allowed("https://app.example", &c));
        assert!(origin_allowed("https://app.example:443", &c));
        assert!(!origin_allowed("http://app.example", &c));
        assert!(!origin_allowed("https://app.example:8443", &c));
        assert!(origin_allowed("http://localhost:3000", &c));
        assert!(!origin_allowed("http://localhost:3001", &c));
    }
}
