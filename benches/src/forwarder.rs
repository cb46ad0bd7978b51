//! The bare forwarder: every request is sent as is to one upstream through a pooled client and the answer
//! streamed back. No parsing, no policy: the floor any gateway on this machine can reach.

use axum::body::Body;
use axum::extract::{Request, State};
use axum::http::StatusCode;
use axum::response::Response;
use std::sync::Arc;

struct Upstream {
    client: reqwest::Client,
    base: String,
}

/// The forwarder's router: everything goes to `upstream` (e.g. `http://127.0.0.1:18081`).
pub fn app(upstream: &str) -> Result<axum::Router, reqwest::Error> {
    let client = reqwest::Client::builder().pool_max_idle_per_host(256).build()?;
    let state = Arc::new(Upstream {
        client,
        base: upstream.trim_end_matches('/').to_string(),
    });
    Ok(axum::Router::new().fallback(forward).with_state(state))
}

async fn forward(State(up): State<Arc<Upstream>>, req: Request) -> Response {
    let (parts, body) = req.into_parts();
    let path = parts.uri.path_and_query().map(|p| p.as_str()).unwrap_or("/");
    let Ok(bytes) = axum::body::to_bytes(body, 16 * 1024 * 1024).await else {
        return status(StatusCode::PAYLOAD_TOO_LARGE);
    };
    let mut out = up
        .client
        .request(parts.method, format!("{}{path}", up.base))
        .body(bytes);
    for (k, v) in &parts.headers {
        if k != "host" && k != "content-length" {
            out = out.header(k, v);
        }
    }
    match out.send().await {
        Ok(r) => {
            let mut resp = Response::builder().status(r.status().as_u16());
            for (k, v) in r.headers() {
                if k != "content-length" && k != "transfer-encoding" {
                    resp = resp.header(k, v);
                }
            }
            resp.body(Body::from_stream(r.bytes_stream()))
                .unwrap_or_else(|_| status(StatusCode::BAD_GATEWAY))
        }
        Err(_) => status(StatusCode::BAD_GATEWAY),
    }
}

fn status(code: StatusCode) -> Response {
    let mut r = Response::new(Body::empty());
    *r.status_mut() = code;
    r
}
