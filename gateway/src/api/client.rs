//! The client-key layer: with `limits.clients` configured, `/v1/*` and `/api/*` need a known key
//! (`Authorization: Bearer <key>` or `x-api-key`), and each key's requests/min and tokens/min hold.

use std::sync::Arc;

use axum::extract::{Request, State};
use axum::http::header;
use axum::middleware::Next;
use axum::response::Response;

use super::{ApiError, AppState};
use crate::canonical::Usage;
use crate::limits::Denied;
use crate::metrics::{Scope, ScopeLabels};

/// Checks the key and the key's limits; after the answer, counts its tokens against the key. Layered only when
/// keys are configured.
pub(crate) async fn require_client_key(
    State(state): State<Arc<AppState>>,
    req: Request,
    next: Next,
) -> Result<Response, ApiError> {
    debug_assert!(
        state.clients.enabled(),
        "the client-key layer is only added when keys are configured"
    );
    let h = req.headers();
    let given = h
        .get(header::AUTHORIZATION)
        .and_then(|v| super::admin::bearer(v.as_bytes()))
        .and_then(|v| std::str::from_utf8(v).ok())
        .or_else(|| h.get("x-api-key").and_then(|v| v.to_str().ok()))
        .map(str::trim);
    let id = match state.clients.admit(given).await {
        Ok(id) => id,
        Err(Denied::Unauthorized) => return Err(ApiError::ClientUnauthorized),
        Err(Denied::RateLimited {
            client,
            limit,
            retry_after,
        }) => {
            state
                .metrics
                .rate_limited
                .get_or_create(&ScopeLabels { scope: Scope::Client })
                .inc();
            tracing::info!(
                client,
                limit,
                retry_after_ms = retry_after.as_millis() as u64,
                "client rate-limited"
            );
            return Err(ApiError::ClientRateLimited { limit, retry_after });
        }
    };
    // Who the request is, for handlers that count tokens themselves (the MCP tool `llm_generate`).
    let mut req = req;
    req.extensions_mut().insert(id);
    let resp = next.run(req).await;
    if let Some(u) = resp.extensions().get::<Usage>() {
        let total = u.total_tokens.max(u.prompt_tokens + u.completion_tokens);
        state.clients.record_tokens(id, total).await;
    }
    Ok(resp)
}
