//! The client-facing SSE stream: chunks passed through one by one; a clean upstream end becomes `data: [DONE]`, a
//! broken one (error, stall, `max_stream_duration`) an explicit `event: error` and close, never `[DONE]`. With the
//! opt-in policy `stream_failure: continue`, the answer is continued on the next candidate instead.

use std::collections::VecDeque;
use std::convert::Infallible;
use std::sync::Arc;
use std::time::Duration;

use axum::body::Body;
use axum::http::{header, HeaderValue, StatusCode};
use axum::response::Response;
use bytes::Bytes;
use futures::StreamExt;
use serde_json::json;
use tokio::time::Instant;

use super::chat::{count_tokens, has_token, open_stream, remaining};
use super::AppState;
use crate::canonical::{ChatChunk, ChatRequest, Message, Role};
use crate::metrics::{FallbackLabels, Outcome};
use crate::providers::{ChunkStream, ErrorClass, ProviderError};
use crate::router::Candidate;
use crate::server::Phase;

/// What `stream_failure: continue` needs: the request, the candidates after the current one, the text so far.
pub(crate) struct Continuation {
    pub(crate) req: ChatRequest,
    pub(crate) remaining: Vec<Candidate>,
    pub(crate) text: String,
}

/// What the stream body needs to know.
pub(crate) struct StreamCtx {
    pub(crate) state: Arc<AppState>,
    pub(crate) provider: String,
    pub(crate) include_usage: bool,
    /// End of `max_stream_duration`, counted from the first byte.
    pub(crate) deadline: Instant,
    pub(crate) stall: Duration,
    /// Present under `stream_failure: continue`.
    pub(crate) continuation: Option<Continuation>,
}

struct BodyState {
    ctx: StreamCtx,
    held: VecDeque<ChatChunk>,
    rest: ChunkStream,
    finished: bool,
    /// id, created, model of the first chunk: continuation chunks carry them too.
    ident: Option<(String, u64, String)>,
    /// The server's phase: at `Closing` (end of `shutdown_grace`) the stream ends with `shutting_down`.
    phase: tokio::sync::watch::Receiver<Phase>,
}

/// Frames one chunk; `None` when it carries nothing the client asked for.
fn frame(st: &mut BodyState, mut chunk: ChatChunk) -> Option<Bytes> {
    if let Some(u) = &chunk.usage {
        count_tokens(&st.ctx.state, &st.ctx.provider, u);
    }
    match &st.ident {
        None => st.ident = Some((chunk.id.clone(), chunk.created, chunk.model.clone())),
        Some((id, created, model)) => {
            chunk.id.clone_from(id);
            chunk.created = *created;
            chunk.model.clone_from(model);
        }
    }
    if let Some(c) = st.ctx.continuation.as_mut() {
        if let Some(t) = chunk.choices.first().and_then(|ch| ch.delta.content.as_deref()) {
            c.text.push_str(t);
        }
    }
    if !st.ctx.include_usage {
        if chunk.choices.is_empty() {
            return None;
        }
        chunk.usage = None;
    }
    let json = serde_json::to_string(&chunk).ok()?;
    Some(Bytes::from(format!("data: {json}\n\n")))
}

/// The explicit error event that ends a broken stream.
pub(crate) fn error_event(provider: &str, e: &ProviderError) -> Bytes {
    let v = json!({"error": {
        "message": format!("upstream stream from {provider} broke: {}", e.message),
        "type": "upstream_error",
        "param": null,
        "code": "stream_interrupted",
        "provider": provider,
        "class": e.class.as_str(),
    }});
    Bytes::from(format!("event: error\ndata: {v}\n\n"))
}

/// The event that ends a stream still open when the server's `shutdown_grace` is over.
pub(crate) fn shutting_down_event() -> Bytes {
    let v = json!({"error": {
        "message": "the gateway is shutting down; retry the request",
        "type": "server_error",
        "param": null,
        "code": "shutting_down",
    }});
    Bytes::from(format!("event: error\ndata: {v}\n\n"))
}

/// Tries to continue a broken answer on the next candidates; on success swaps the stream and returns a comment
/// line naming the new provider.
async fn resume(st: &mut BodyState, err: &ProviderError) -> Option<Bytes> {
    let c = st.ctx.continuation.as_mut()?;
    if c.remaining.is_empty() {
        return None;
    }
    let mut req = c.req.clone();
    req.messages.push(Message::plain(Role::Assistant, c.text.clone()));
    req.messages.push(Message::plain(
        Role::User,
        "Continue your previous answer exactly where it stopped, without repeating any of it.".into(),
    ));
    let served = open_stream(&st.ctx.state, &req, &c.remaining).await.ok()?;
    let pos = c
        .remaining
        .iter()
        .position(|x| x.provider == served.candidate.provider)
        .unwrap_or(0);
    c.remaining.drain(..=pos);
    let to = served.candidate.provider.clone();
    let labels = FallbackLabels {
        from: st.ctx.provider.clone(),
        to: to.clone(),
        reason: Outcome::from(err.class),
    };
    st.ctx.state.metrics.fallbacks.get_or_create(&labels).inc();
    tracing::warn!(
        from = st.ctx.provider,
        to,
        class = err.class.as_str(),
        "stream continued on the next provider"
    );
    let (held, rest) = served.value;
    // The client already has the role; the continuation adds content only.
    st.held = held
        .into_iter()
        .map(|mut ch| {
            for choice in &mut ch.choices {
                choice.delta.role = None;
            }
            ch
        })
        .filter(has_token)
        .collect();
    st.rest = rest;
    st.ctx.provider = to.clone();
    Some(Bytes::from(format!(
        ": continued on {to} after {}\n\n",
        err.class.as_str()
    )))
}

/// Builds the streaming response from the chunks held until the first token and the rest of the upstream stream.
pub(crate) fn response(ctx: StreamCtx, held: Vec<ChatChunk>, rest: ChunkStream) -> Response {
    let phase = ctx.state.lifecycle.subscribe();
    let st = BodyState {
        phase,
        ctx,
        held: held.into(),
        rest,
        finished: false,
        ident: None,
    };
    let body = futures::stream::unfold(st, |mut st| async move {
        loop {
            if st.finished {
                return None;
            }
            if let Some(chunk) = st.held.pop_front() {
                if let Some(b) = frame(&mut st, chunk) {
                    return Some((Ok::<Bytes, Infallible>(b), st));
                }
                continue;
            }
            let left = remaining(st.ctx.deadline);
            let wait = st.ctx.stall.min(left);
            let next = tokio::select! {
                n = tokio::time::timeout(wait, st.rest.next()) => Some(n),
                _ = st.phase.wait_for(|p| matches!(p, Phase::Closing | Phase::Closed)) => None,
            };
            let Some(next) = next else {
                st.finished = true;
                return Some((Ok(shutting_down_event()), st));
            };
            let err = match next {
                Ok(Some(Ok(chunk))) => match frame(&mut st, chunk) {
                    Some(b) => return Some((Ok(b), st)),
                    None => continue,
                },
                Ok(None) => {
                    st.finished = true;
                    return Some((Ok(Bytes::from_static(b"data: [DONE]\n\n")), st));
                }
                Ok(Some(Err(e))) => e,
                Err(_) if wait < st.ctx.stall => {
                    ProviderError::new(ErrorClass::Timeout, "max_stream_duration reached mid-stream")
                }
                Err(_) => ProviderError::new(
                    ErrorClass::Timeout,
                    format!("stream stalled for {} ms", st.ctx.stall.as_millis()),
                ),
            };
            st.ctx.state.router.record_failure(&st.ctx.provider, &err);
            if left > wait {
                if let Some(note) = resume(&mut st, &err).await {
                    return Some((Ok(note), st));
                }
            }
            st.finished = true;
            return Some((Ok(error_event(&st.ctx.provider, &err)), st));
        }
    });
    let mut resp = Response::new(Body::from_stream(body));
    *resp.status_mut() = StatusCode::OK;
    let h = resp.headers_mut();
    h.insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("text/event-stream"),
    );
    h.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-cache"));
    h.insert("x-accel-buffering", HeaderValue::from_static("no"));
    resp
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::canonical::Delta;
    use crate::config::Config;

    fn state() -> Arc<AppState> {
        let text = r#"
models: { default: { a: m } }
providers: { a: { kind: openai, base_url: "http://127.0.0.1:9/v1" } }
fallback_policy: { order: [a], deadline: 30s, stall_timeout: 2s }
"#;
        AppState::new(Config::from_yaml(text, &|_| None).unwrap()).unwrap()
    }

    fn chunk(text: &str) -> ChatChunk {
        let delta = Delta {
            role: None,
            content: Some(text.into()),
            tool_calls: None,
        };
        ChatChunk::with_delta("id", 1, "m", delta, None)
    }

    async fn body(state: Arc<AppState>, rest: ChunkStream, deadline: Duration) -> String {
        let ctx = StreamCtx {
            state: state.clone(),
            provider: "a".into(),
            include_usage: false,
            deadline: Instant::now() + deadline,
            stall: Duration::from_secs(2),
            continuation: None,
        };
        let resp = response(ctx, vec![chunk("Hel")], rest);
        let bytes = axum::body::to_bytes(resp.into_body(), 1 << 20).await.unwrap();
        String::from_utf8(bytes.to_vec()).unwrap()
    }

    #[tokio::test(start_paused = true)]
    async fn a_stalled_upstream_ends_with_an_error_event() {
        let s = state();
        let rest: ChunkStream =
            Box::pin(futures::stream::iter(vec![Ok(chunk("lo"))]).chain(futures::stream::pending()));
        let start = Instant::now();
        let out = body(s.clone(), rest, Duration::from_secs(30)).await;
        assert_eq!(start.elapsed(), Duration::from_secs(2));
        assert!(
            out.contains("\"content\":\"Hel\"") && out.contains("\"content\":\"lo\""),
            "{out}"
        );
        assert!(out.contains("event: error") && out.contains("stalled"), "{out}");
        assert!(!out.contains("[DONE]"));
        let m = s.metrics.encode();
        assert!(
            m.contains("llm_gateway_provider_requests_total{provider=\"a\",outcome=\"timeout\"} 1"),
            "{m}"
        );
    }

    #[tokio::test(start_paused = true)]
    async fn max_stream_duration_bounds_a_stream_that_keeps_going() {
        let slow = futures::stream::unfold((), |()| async {
            tokio::time::sleep(Duration::from_secs(1)).await;
            Some((Ok(chunk("x")), ()))
        });
        let start = Instant::now();
        let out = body(state(), Box::pin(slow), Duration::from_millis(3500)).await;
        assert_eq!(start.elapsed(), Duration::from_millis(3500));
        assert!(out.contains("max_stream_duration"), "{out}");
        assert!(!out.contains("[DONE]"));
    }

    #[tokio::test]
    async fn a_clean_end_is_done() {
        let rest: ChunkStream = Box::pin(futures::stream::iter(vec![Ok(chunk("lo"))]));
        let out = body(state(), rest, Duration::from_secs(30)).await;
        assert!(out.ends_with("data: [DONE]\n\n"), "{out}");
        assert!(!out.contains("event: error"));
    }
}
