//! The REST API: Toxiproxy v2.12's routes, headers and error shapes over axum.
//!
//! Every response carries `X-Toxiproxy-Request-Id`; browsers (`User-Agent: Mozilla/...`) get 403, unknown paths
//! Go's `404 page not found`, known paths with a wrong method 405, and a handler running over 25 s a 503.

mod handlers;

use std::sync::Arc;
use std::time::Duration;

use axum::extract::Request;
use axum::http::{header, HeaderValue, StatusCode};
use axum::middleware::{self, Next};
use axum::response::{IntoResponse, Response};
use axum::routing::{any, get, post};
use axum::Router;

use crate::collection::Collection;
use crate::error::plain_error;
use crate::metrics::Metrics;
use crate::rng::SeedSource;
use crate::tasks::TaskCounter;

/// Toxiproxy's `http.TimeoutHandler` limit per request.
const HANDLER_TIMEOUT: Duration = Duration::from_secs(25);

/// The version this server is compatible with, reported by `/version`.
pub const VERSION: &str = "2.12.0";

/// State shared by the handlers.
#[derive(Debug)]
pub(crate) struct Shared {
    pub(crate) collection: Collection,
    pub(crate) metrics: Arc<Metrics>,
    pub(crate) link_tasks: Arc<TaskCounter>,
    pub(crate) request_ids: SeedSource,
}

/// The router for the whole API.
pub(crate) fn router(shared: Arc<Shared>) -> Router {
    use handlers::*;
    let mut router = Router::new()
        .route("/reset", post(reset))
        .route("/version", get(version))
        .route("/populate", post(populate))
        .route("/proxies", get(list).post(create))
        .route(
            "/proxies/{proxy}",
            get(show).post(update).patch(update).delete(delete),
        )
        .route("/proxies/{proxy}/toxics", get(toxics).post(add_toxic))
        .route(
            "/proxies/{proxy}/toxics/{toxic}",
            get(toxic)
                .post(update_toxic)
                .patch(update_toxic)
                .delete(remove_toxic),
        );
    if shared.metrics.enabled() {
        // Toxiproxy registers /metrics for every method.
        router = router.route("/metrics", any(metrics));
    }
    router
        .fallback(|| async { plain_error(StatusCode::NOT_FOUND, "404 page not found") })
        .layer(middleware::from_fn_with_state(shared.clone(), guard))
        .with_state(shared)
}

/// Request id, browser block and handler timeout, around every route.
async fn guard(
    axum::extract::State(shared): axum::extract::State<Arc<Shared>>,
    request: Request,
    next: Next,
) -> Response {
    let id = request_id(&shared.request_ids);
    let browser = request
        .headers()
        .get(header::USER_AGENT)
        .and_then(|ua| ua.to_str().ok())
        .is_some_and(|ua| ua.starts_with("Mozilla/"));
    let mut response = if browser {
        plain_error(StatusCode::FORBIDDEN, "User agent not allowed")
    } else {
        match tokio::time::timeout(HANDLER_TIMEOUT, next.run(request)).await {
            Ok(response) => response,
            Err(_) => timeout_page(),
        }
    };
    if let Ok(value) = HeaderValue::from_str(&id) {
        response.headers_mut().insert("x-toxiproxy-request-id", value);
    }
    response
}

/// Go's `http.TimeoutHandler` default body.
fn timeout_page() -> Response {
    let body = "<html><head><title>Timeout</title></head><body><h1>Timeout</h1></body></html>";
    let mut response = (StatusCode::SERVICE_UNAVAILABLE, body).into_response();
    response.headers_mut().insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("text/html; charset=utf-8"),
    );
    response
}

/// A 20-character id in the style of Toxiproxy's `xid` ids.
fn request_id(source: &SeedSource) -> String {
    const ALPHABET: &[u8; 32] = b"0123456789abcdefghijklmnopqrstuv";
    let mut rng = source.next_rng();
    let (a, b) = (rng.next_u64(), rng.next_u64());
    (0..20)
        .map(|i| {
            let bits = if i < 12 { a >> (i * 5) } else { b >> ((i - 12) * 5) };
            char::from(ALPHABET[(bits & 31) as usize])
        })
        .collect()
}
