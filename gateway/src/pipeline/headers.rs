//! The `X-LLM-*` headers: their names (as `HeaderName`s, so that setting or reading one does not parse its name
//! again), and the one function that writes them for any answer.

use axum::http::{HeaderName, HeaderValue};
use axum::response::Response;

use super::Meta;
use crate::api::AppState;

/// Request: this provider first.
pub const PROVIDER: HeaderName = HeaderName::from_static("x-llm-provider");
/// Response: the provider that answered, or `cache` / `offline-package`.
pub const ACTUAL_PROVIDER: HeaderName = HeaderName::from_static("x-llm-actual-provider");
/// Response: candidates passed over before the one that answered.
pub const FALLBACKS: HeaderName = HeaderName::from_static("x-llm-fallbacks");
/// Response: `provider`, `local`, `cache` or `offline-package`.
pub const SOURCE: HeaderName = HeaderName::from_static("x-llm-source");
/// Response: `hit` or `stale` (cache answers).
pub const CACHE: HeaderName = HeaderName::from_static("x-llm-cache");
/// Response: `name@version` of the offline package that answered.
pub const OFFLINE_PACKAGE: HeaderName = HeaderName::from_static("x-llm-offline-package");
/// Response: the package entry.
pub const OFFLINE_ENTRY: HeaderName = HeaderName::from_static("x-llm-offline-entry");
/// Response: the match score.
pub const OFFLINE_SCORE: HeaderName = HeaderName::from_static("x-llm-offline-score");
/// Both ways: the request id.
pub const REQUEST_ID: HeaderName = HeaderName::from_static("x-request-id");

/// Writes the `X-LLM-*` headers of `meta`; and a provider's usage as an extension for the client-limits layer
/// (tokens/min) when client limits are on.
pub fn apply(state: &AppState, resp: &mut Response, meta: &Meta) {
    if let (Some(u), true) = (meta.usage, state.clients.enabled()) {
        resp.extensions_mut().insert(u);
    }
    let h = resp.headers_mut();
    if let Ok(v) = HeaderValue::from_str(&meta.provider) {
        h.insert(ACTUAL_PROVIDER, v);
    }
    h.insert(FALLBACKS, HeaderValue::from(meta.fallbacks));
    h.insert(SOURCE, HeaderValue::from_static(meta.source.as_str()));
    if let Some(c) = meta.cache {
        h.insert(CACHE, HeaderValue::from_static(c));
    }
    if let Some(p) = &meta.package {
        for (name, v) in [
            (OFFLINE_PACKAGE, p.package.clone()),
            (OFFLINE_ENTRY, p.entry.clone()),
            (OFFLINE_SCORE, format!("{:.3}", p.score)),
        ] {
            if let Ok(v) = HeaderValue::from_str(&v) {
                h.insert(name, v);
            }
        }
    }
}
