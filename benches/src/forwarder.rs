//! The bare forwarder: every request is sent as is to one upstream through a pooled client and the answer
//! streamed back. No parsing, no policy: the floor any gateway on this machine can reach.
//!
//! Held (`--hold-to-first-token`): an event-stream answer's head waits until its first content token has come,
//! and goes out with the chunks before it, as a gateway's must when it can still fall back to another
//! provider until then. Beside the bare forwarder, it tells how much of a gateway's time to first token is
//! that hold alone (the client then reads the head in the first token's time, not before it).

use axum::body::Body;
use axum::extract::{Request, State};
use axum::http::StatusCode;
use axum::response::Response;
use futures::StreamExt;
use std::sync::Arc;

struct Upstream {
    client: reqwest::Client,
    base: String,
    hold: bool,
}

/// The most of a stream held back for its first token; past it the answer goes out as it is.
const MAX_HELD: usize = 64 * 1024;

/// The forwarder's router: everything goes to `upstream` (e.g. `http://127.0.0.1:18081`); with `hold`, an
/// event stream's head waits for its first content token (see the module's doc).
pub fn app(upstream: &str, hold: bool) -> Result<axum::Router, reqwest::Error> {
    let client = reqwest::Client::builder().pool_max_idle_per_host(256).build()?;
    let state = Arc::new(Upstream {
        client,
        base: upstream.trim_end_matches('/').to_string(),
        hold,
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
            let is_stream = r
                .headers()
                .get("content-type")
                .is_some_and(|v| v.as_bytes().starts_with(b"text/event-stream"));
            let mut body = r.bytes_stream().boxed();
            let mut held = Vec::new();
            if up.hold && is_stream {
                let mut seen = Vec::new();
                while !has_content_token(&seen) && seen.len() < MAX_HELD {
                    let Some(frame) = body.next().await else { break };
                    if let Ok(b) = &frame {
                        seen.extend_from_slice(b);
                    }
                    held.push(frame);
                }
            }
            resp.body(Body::from_stream(futures::stream::iter(held).chain(body)))
                .unwrap_or_else(|_| status(StatusCode::BAD_GATEWAY))
        }
        Err(_) => status(StatusCode::BAD_GATEWAY),
    }
}

/// Whether OpenAI stream bytes hold a chunk with text: `"content":"` followed by anything but the closing quote.
fn has_content_token(bytes: &[u8]) -> bool {
    const KEY: &[u8] = b"\"content\":\"";
    bytes
        .windows(KEY.len() + 1)
        .any(|w| w.starts_with(KEY) && w[KEY.len()] != b'"')
}

fn status(code: StatusCode) -> Response {
    let mut r = Response::new(Body::empty());
    *r.status_mut() = code;
    r
}

#[cfg(test)]
mod tests {
    use super::has_content_token;

    #[test]
    fn a_content_token_is_a_non_empty_content_string() {
        assert!(!has_content_token(b""));
        assert!(!has_content_token(
            br#"data: {"choices":[{"delta":{"role":"assistant","content":""}}]}"#
        ));
        assert!(has_content_token(
            br#"data: {"choices":[{"delta":{"content":"t=1"}}]}"#
        ));
        // Split across frames: the bytes seen so far are searched whole.
        let (a, b) = (
            br#"data: {"delta":{"content":"#.as_slice(),
            br#""x"}}"#.as_slice(),
        );
        assert!(!has_content_token(a));
        assert!(has_content_token(&[a, b].concat()));
    }
}
