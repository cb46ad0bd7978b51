//! Streamed answers as a stream of [`Event`]s that every surface renders in its own grammar.
//!
//! Until a candidate produced its first token the stream is not open: failover is free (chunks before it, like
//! the role, are held back). After it, the stall timeout and `max_stream_duration` bound the stream; a broken
//! upstream ends it with [`Event::Failed`] (never [`Event::Done`]) and counts as one failure of that attempt for
//! the breaker; only a clean end counts as its success. With `stream_failure: continue` the answer is continued
//! on the next candidates instead.

use std::collections::VecDeque;
use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;

use futures::{Stream, StreamExt};
use tokio::time::Instant;

use super::{Answer, Meta};
use crate::api::AppState;
use crate::canonical::{ChatChunk, ChatRequest, ChatResponse, Delta, Message, Role, ToolCallDelta};
use crate::config::StreamFailurePolicy;
use crate::metrics::Source;
use crate::metrics::{FallbackLabels, Outcome, ProviderLabels};
use crate::providers::capabilities::Needs;
use crate::providers::{ChunkStream, ErrorClass, ProviderError};
use crate::router::{Candidate, RouteError, Served, Settle};
use crate::server::Phase;
use crate::telemetry::RequestSpan;
use opentelemetry::context::FutureExt as _;

/// One step of a streamed answer.
#[derive(Debug, Clone)]
pub enum Event {
    /// A chunk (usage included; a surface hides what its client did not ask for).
    Chunk(ChatChunk),
    /// The answer broke on `from` and continues on `to` (`stream_failure: continue`).
    Continued {
        /// The provider that broke.
        from: String,
        /// The provider that continues.
        to: String,
        /// How it broke.
        after: ErrorClass,
    },
    /// The upstream broke after the first token: the surface ends the stream with an explicit error.
    Failed {
        /// The provider whose stream broke.
        provider: String,
        /// How.
        error: ProviderError,
    },
    /// The server's `shutdown_grace` ended with the stream still open: the surface ends it with an explicit
    /// error (retry elsewhere), never a clean end. Says nothing of the provider.
    ShuttingDown,
    /// A clean end.
    Done,
}

/// The events of a streamed answer.
pub type EventStream = Pin<Box<dyn Stream<Item = Event> + Send>>;

/// A streamed answer: who answers, and the events.
pub struct Streamed {
    /// Who answered (the provider that produced the first token).
    pub meta: Meta,
    /// The events, ending with `Done` or `Failed`.
    pub events: EventStream,
}

impl std::fmt::Debug for Streamed {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Streamed")
            .field("meta", &self.meta)
            .finish_non_exhaustive()
    }
}

/// A provider's stream that produced its first token: the chunks held until then, and the rest.
pub(crate) type Opened = Served<(Vec<ChatChunk>, ChunkStream)>;

/// Whether a chunk carries content, a tool call, a finish reason or usage.
pub(crate) fn has_token(c: &ChatChunk) -> bool {
    c.usage.is_some()
        || c.choices.iter().any(|ch| {
            ch.finish_reason.is_some()
                || ch.delta.content.as_deref().is_some_and(|t| !t.is_empty())
                || ch.delta.tool_calls.as_ref().is_some_and(|t| !t.is_empty())
        })
}

/// A refusal before any content (`finish_reason: content_filter` first): the content-filter class, so the
/// router handles it by policy exactly as the non-stream answer.
fn refused_at_start(c: &ChatChunk, held: &[ChatChunk]) -> bool {
    let no_content_before = held.iter().all(|h| {
        h.choices
            .iter()
            .all(|ch| ch.delta.content.as_deref().unwrap_or("").is_empty() && ch.delta.tool_calls.is_none())
    });
    no_content_before
        && c.choices.iter().any(|ch| {
            ch.finish_reason.as_deref() == Some("content_filter")
                && ch.delta.content.as_deref().unwrap_or("").is_empty()
        })
}

/// Routes a streamed chat until a candidate produced its first token, under its first-token timeout. The
/// success is settled by the stream's end ([`live`]).
pub(crate) async fn open(
    state: &Arc<AppState>,
    req: &ChatRequest,
    candidates: &[Candidate],
    needs: &Needs,
) -> Result<Opened, RouteError> {
    state
        .router
        .execute(candidates, needs, Settle::Deferred, |cand, budget| {
            let provider = state.provider(&cand.provider).cloned();
            let model = cand.model.clone();
            let name = cand.provider.clone();
            let metrics = state.metrics.clone();
            let first_token = cand.timeouts.first_token;
            let req = super::fit(req, &cand.caps, needs.prompt_tokens);
            async move {
                let t0 = Instant::now();
                let p = provider.ok_or_else(|| super::no_adapter(&name))?;
                // The first-token clock starts with the request: an upstream that holds back its response
                // headers is as late as one that holds back its first chunk.
                let wait = first_token.min(budget);
                let first = tokio::time::timeout(wait, async {
                    let mut stream = p.adapter.chat_stream(&req, &model).await?;
                    let mut held = Vec::new();
                    loop {
                        match stream.next().await {
                            None => {
                                return Err(ProviderError::new(
                                    ErrorClass::Malformed,
                                    "upstream stream ended before any token",
                                ))
                            }
                            Some(Err(e)) => return Err(e),
                            Some(Ok(chunk)) => {
                                if refused_at_start(&chunk, &held) {
                                    return Err(ProviderError::new(
                                        ErrorClass::ContentFilter,
                                        "answer withheld (finish_reason content_filter)",
                                    )
                                    .with_code(Some("content_filter".into())));
                                }
                                let token = has_token(&chunk);
                                held.push(chunk);
                                if token {
                                    return Ok((held, stream));
                                }
                            }
                        }
                    }
                })
                .await
                .map_err(|_| {
                    ProviderError::new(
                        ErrorClass::Timeout,
                        format!("no first token within {} ms", wait.as_millis()),
                    )
                })??;
                metrics
                    .ttft
                    .get_or_create(&ProviderLabels { provider: name })
                    .observe(t0.elapsed().as_secs_f64());
                Ok(first)
            }
        })
        .await
}

/// What `stream_failure: continue` needs: the request, the candidates after the current one, the text so far.
struct Continuation {
    req: ChatRequest,
    needs: Needs,
    remaining: Vec<Candidate>,
    text: String,
}

struct Body {
    state: Arc<AppState>,
    provider: String,
    candidate: Candidate,
    held: VecDeque<ChatChunk>,
    rest: ChunkStream,
    /// End of `max_stream_duration`, counted from the first token.
    deadline: Instant,
    finished: bool,
    /// id, created, model of the first chunk: continuation chunks carry them too.
    ident: Option<(String, u64, String)>,
    /// Whether any chunk carried a tool call (the finish reason must then say `tool_calls`).
    tool_calls: bool,
    continuation: Option<Continuation>,
    /// The current provider's outcome was recorded (a clean end or a failure).
    settled: bool,
    /// Ready once the server's phase is `Closing` (end of `shutdown_grace`): the stream ends with
    /// `ShuttingDown`. One future for the stream's life, not a new wait per chunk.
    closing: Pin<Box<dyn Future<Output = ()> + Send>>,
    /// The stall and `max_stream_duration` clock: it fires at the earliest the stream could have stalled (the
    /// start of the current wait for a chunk + stall) or its deadline, and is moved on only when it fires early,
    /// so a chunk costs a clock read, not a timer of its own.
    timer: Pin<Box<tokio::time::Sleep>>,
}

impl Body {
    /// Accounts one chunk and makes it consistent with the chunks before it.
    fn chunk(&mut self, mut chunk: ChatChunk) -> ChatChunk {
        if let Some(u) = &chunk.usage {
            super::count_tokens(&self.state, &self.provider, u);
        }
        // A chunk whose fields change here no longer goes out as the upstream's bytes.
        let mut changed = false;
        match &self.ident {
            None => self.ident = Some((chunk.id.clone(), chunk.created, chunk.model.clone())),
            Some((id, created, model)) => {
                if chunk.id != *id || chunk.created != *created || chunk.model != *model {
                    chunk.id.clone_from(id);
                    chunk.created = *created;
                    chunk.model.clone_from(model);
                    changed = true;
                }
            }
        }
        for ch in &mut chunk.choices {
            self.tool_calls |= ch.delta.tool_calls.as_ref().is_some_and(|t| !t.is_empty());
            // Every provider's tool-call answer ends with `tool_calls` (agent loops test for it).
            if self.tool_calls && matches!(ch.finish_reason.as_deref(), Some("stop" | "function_call")) {
                ch.finish_reason = Some("tool_calls".into());
                changed = true;
            }
        }
        if changed {
            chunk.raw = None;
        }
        if let Some(c) = self.continuation.as_mut() {
            if let Some(t) = chunk.choices.first().and_then(|ch| ch.delta.content.as_deref()) {
                c.text.push_str(t);
            }
        }
        chunk
    }

    /// Tries to continue a broken answer on the next candidates; on success swaps the stream.
    async fn resume(&mut self, err: &ProviderError) -> Option<Event> {
        let c = self.continuation.as_mut()?;
        if c.remaining.is_empty() {
            return None;
        }
        let mut req = c.req.clone();
        req.messages.push(Message::plain(Role::Assistant, c.text.clone()));
        req.messages.push(Message::plain(
            Role::User,
            "Continue your previous answer exactly where it stopped, without repeating any of it.".into(),
        ));
        let served = open(&self.state, &req, &c.remaining, &c.needs).await.ok()?;
        let pos = c
            .remaining
            .iter()
            .position(|x| x.provider == served.candidate.provider)
            .unwrap_or(0);
        c.remaining.drain(..=pos);
        let from = std::mem::replace(&mut self.provider, served.candidate.provider.clone());
        let labels = FallbackLabels {
            from: from.clone(),
            to: self.provider.clone(),
            reason: Outcome::from(err.class),
        };
        self.state.metrics.fallbacks.get_or_create(&labels).inc();
        tracing::warn!(
            from,
            to = self.provider,
            class = err.class.as_str(),
            "stream continued on the next provider"
        );
        let (held, rest) = served.value;
        // The client already has the role; the continuation adds content only.
        self.held = held
            .into_iter()
            .map(|mut ch| {
                for choice in &mut ch.choices {
                    if choice.delta.role.take().is_some() {
                        ch.raw = None;
                    }
                }
                ch
            })
            .filter(has_token)
            .collect();
        self.rest = rest;
        self.candidate = served.candidate;
        self.settled = false;
        Some(Event::Continued {
            from,
            to: self.provider.clone(),
            after: err.class,
        })
    }

    async fn next(&mut self) -> Option<Event> {
        if self.finished {
            return None;
        }
        if let Some(chunk) = self.held.pop_front() {
            return Some(Event::Chunk(self.chunk(chunk)));
        }
        let waiting_since = Instant::now();
        let left = self.deadline.saturating_duration_since(waiting_since);
        let stall = self.candidate.timeouts.stall;
        let wait = stall.min(left);
        let next = loop {
            tokio::select! {
                n = self.rest.next() => break Ok(n),
                () = self.timer.as_mut() => {
                    let due = waiting_since + wait;
                    if Instant::now() >= due {
                        break Err(());
                    }
                    self.timer.as_mut().reset(due);
                }
                () = self.closing.as_mut() => {
                    // Not settled: Drop releases a probe this stream held, and records nothing of the provider.
                    self.finished = true;
                    return Some(Event::ShuttingDown);
                }
            }
        };
        let end = match next {
            Ok(Some(Ok(chunk))) => return Some(Event::Chunk(self.chunk(chunk))),
            Ok(None) => None,
            Ok(Some(Err(e))) => Some(e),
            Err(_) if wait < stall => Some(ProviderError::new(
                ErrorClass::Timeout,
                "max_stream_duration reached mid-stream",
            )),
            Err(_) => Some(ProviderError::new(
                ErrorClass::Timeout,
                format!("stream stalled for {} ms", stall.as_millis()),
            )),
        };
        // Once per stream, and boxed: the future of `next` is moved for every chunk, so it holds only what a chunk
        // needs (the end's Redis calls and a continuation's whole routing would make it kilobytes).
        Box::pin(self.end(end, left > wait)).await
    }

    /// The end of the current provider's stream: a clean one (`None`), or a break, which a continuation may
    /// carry on when `time_left`.
    async fn end(&mut self, err: Option<ProviderError>, time_left: bool) -> Option<Event> {
        self.settled = true;
        let Some(err) = err else {
            self.finished = true;
            self.state.router.record_success(&self.provider).await;
            return Some(Event::Done);
        };
        self.state.router.record_failure(&self.provider, &err).await;
        if time_left {
            if let Some(ev) = self.resume(&err).await {
                return Some(ev);
            }
        }
        self.finished = true;
        Some(Event::Failed {
            provider: self.provider.clone(),
            error: err,
        })
    }
}

impl Drop for Body {
    fn drop(&mut self) {
        // The client left mid-stream: that says nothing of the provider. Let the next call be the probe if this
        // one was (nothing else is recorded).
        if !self.settled {
            self.state.router.release(&self.provider);
        }
    }
}

/// The events of a provider's stream from its first token on.
pub(crate) fn live(
    state: Arc<AppState>,
    req: ChatRequest,
    needs: Needs,
    candidates: &[Candidate],
    served: Opened,
    meta: Meta,
) -> Streamed {
    // Boxed: the state is moved into and out of each event's future.
    let body = Box::new(body(state, req, needs, candidates, served));
    Streamed {
        meta,
        events: Box::pin(futures::stream::unfold(body, step)),
    }
}

/// One event and the state after it. This future is built and moved for every chunk, so it must stay small.
async fn step(mut b: Box<Body>) -> Option<(Event, Box<Body>)> {
    b.next().await.map(|e| (e, b))
}

/// The state of a stream that produced its first token.
fn body(
    state: Arc<AppState>,
    req: ChatRequest,
    needs: Needs,
    candidates: &[Candidate],
    served: Opened,
) -> Body {
    let policy = state.router.policy();
    let continuation = (policy.stream_failure == StreamFailurePolicy::Continue).then(|| {
        let pos = candidates
            .iter()
            .position(|c| c.provider == served.candidate.provider)
            .unwrap_or(0);
        Continuation {
            req,
            needs,
            remaining: candidates[pos + 1..].to_vec(),
            text: String::new(),
        }
    });
    let (held, rest) = served.value;
    let mut phase = state.lifecycle.subscribe();
    let now = Instant::now();
    let deadline = now + served.candidate.timeouts.max_stream;
    Body {
        closing: Box::pin(async move {
            // A closed channel (the server gone) ends the stream too.
            let _ = phase
                .wait_for(|p| matches!(p, Phase::Closing | Phase::Closed))
                .await;
        }),
        timer: Box::pin(tokio::time::sleep_until(
            deadline.min(now + served.candidate.timeouts.stall),
        )),
        provider: served.candidate.provider.clone(),
        deadline,
        candidate: served.candidate,
        state,
        held: held.into(),
        rest,
        finished: false,
        ident: None,
        tool_calls: false,
        continuation,
        settled: false,
    }
}

/// What a traced stream learns on its way, for its request span, which it ends when the stream is dropped.
struct StreamSpan {
    span: Option<RequestSpan>,
    meta: Meta,
    model: Option<String>,
    error: Option<&'static str>,
}

impl StreamSpan {
    fn observe(&mut self, ev: &Event) {
        match ev {
            Event::Chunk(c) => {
                if self.model.is_none() && !c.model.is_empty() {
                    self.model = Some(c.model.clone());
                }
                if c.usage.is_some() {
                    self.meta.usage = c.usage;
                }
            }
            Event::Continued { to, .. } => {
                self.meta.provider = to.clone();
                self.meta.fallbacks += 1;
                self.model = None;
            }
            Event::Failed { error, .. } => self.error = Some(error.class.as_str()),
            Event::ShuttingDown => self.error = Some("shutting_down"),
            Event::Done => {}
        }
    }
}

impl Drop for StreamSpan {
    fn drop(&mut self) {
        if let Some(span) = self.span.take() {
            let outcome = crate::telemetry::Outcome {
                tier: Some(self.meta.source.as_str()),
                provider: matches!(self.meta.source, Source::Provider | Source::Local)
                    .then_some(self.meta.provider.as_str()),
                response_model: self.model.as_deref(),
                usage: self.meta.usage,
                fallbacks: self.meta.fallbacks,
                error: self.error,
            };
            span.end(outcome);
        }
    }
}

/// The events polled in the request span's context (a continuation's attempts are its children too), the span
/// ended with the stream: a clean end, a break, or a client that went away.
pub(crate) fn traced(events: EventStream, span: RequestSpan, meta: Meta) -> EventStream {
    let cx = span.context();
    let mut state = StreamSpan {
        span: Some(span),
        meta,
        model: None,
        error: None,
    };
    Box::pin(
        events
            .map(move |ev| {
                state.observe(&ev);
                ev
            })
            .with_context(cx),
    )
}

/// The chunks of a complete answer: role, content, tool calls, finish and usage.
pub(crate) fn chunks_of(resp: &ChatResponse) -> Vec<ChatChunk> {
    let (id, created, model) = (resp.id.as_str(), resp.created, resp.model.as_str());
    let role = Delta {
        role: Some(Role::Assistant),
        ..Delta::default()
    };
    let mut chunks = vec![ChatChunk::with_delta(id, created, model, role, None)];
    let message = resp.choices.first().map(|c| &c.message);
    let text = resp.text();
    if !text.is_empty() {
        let content = Delta {
            content: Some(text),
            ..Delta::default()
        };
        chunks.push(ChatChunk::with_delta(id, created, model, content, None));
    }
    if let Some(calls) = message.and_then(|m| m.tool_calls.as_ref()) {
        let tool_calls = calls
            .iter()
            .enumerate()
            .map(|(i, c)| ToolCallDelta {
                index: i as u32,
                id: Some(c.id.clone()),
                kind: Some("function".into()),
                function: Some(
                    serde_json::json!({"name": c.function.name, "arguments": c.function.arguments}),
                ),
            })
            .collect();
        let delta = Delta {
            tool_calls: Some(tool_calls),
            ..Delta::default()
        };
        chunks.push(ChatChunk::with_delta(id, created, model, delta, None));
    }
    let finish = resp
        .choices
        .first()
        .and_then(|c| c.finish_reason.clone())
        .or_else(|| Some("stop".into()));
    chunks.push(ChatChunk::with_delta(
        id,
        created,
        model,
        Delta::default(),
        finish,
    ));
    if let Some(u) = resp.usage {
        let mut c = ChatChunk::with_delta(id, created, model, Delta::default(), None);
        c.choices.clear();
        c.usage = Some(u);
        chunks.push(c);
    }
    chunks
}

/// A complete answer (cache, package) as a stream: its chunks, then `Done`.
pub(crate) fn whole(answer: &Answer) -> Streamed {
    let events: Vec<Event> = chunks_of(answer.response())
        .into_iter()
        .map(Event::Chunk)
        .chain(std::iter::once(Event::Done))
        .collect();
    Streamed {
        meta: answer.meta(),
        events: Box::pin(futures::stream::iter(events)),
    }
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use super::*;
    use crate::config::{Config, Mode};
    use crate::router::BreakerState;

    fn state(policy: &str) -> Arc<AppState> {
        let text = format!(
            r#"
models: {{ default: {{ a: m, b: m }} }}
providers:
  a: {{ kind: openai, base_url: "http://127.0.0.1:9/v1" }}
  b: {{ kind: openai, base_url: "http://127.0.0.1:9/v1" }}
fallback_policy: {{ order: [a, b], deadline: 30s, stall_timeout: 2s, max_stream_duration: 3500ms {policy} }}
"#
        );
        AppState::new(Config::from_yaml(&text, &|_| None).unwrap()).unwrap()
    }

    fn chunk(text: &str) -> ChatChunk {
        let delta = Delta {
            content: Some(text.into()),
            ..Delta::default()
        };
        ChatChunk::with_delta("id", 1, "m", delta, None)
    }

    /// Opens a stream on the first candidate through the router (settled later, as the pipeline does): its
    /// first chunk is "Hel", the rest comes from `rest`.
    async fn opened(state: &Arc<AppState>, rest: ChunkStream) -> (crate::router::Plan, Opened) {
        let cands = state.router.plan("default", Mode::Auto, None).unwrap();
        let mut rest = Some(rest);
        let served = state
            .router
            .execute(&cands[..1], &Needs::default(), Settle::Deferred, |_, _| {
                let r = rest.take();
                async move { Ok((vec![chunk("Hel")], r.unwrap())) }
            })
            .await
            .unwrap();
        (cands, served)
    }

    fn request() -> ChatRequest {
        serde_json::from_value(
            serde_json::json!({"model": "default", "messages": [{"role": "user", "content": "x"}]}),
        )
        .unwrap()
    }

    /// The events of a stream [`opened`] with `rest`.
    async fn events(state: &Arc<AppState>, rest: ChunkStream) -> Vec<Event> {
        let (cands, served) = opened(state, rest).await;
        let meta = Meta::of(&served, None);
        live(state.clone(), request(), Needs::default(), &cands, served, meta)
            .events
            .collect()
            .await
    }

    /// [`events`], and how long they took (on the paused clock of the tests that time streams).
    async fn timed(state: &Arc<AppState>, rest: ChunkStream) -> (Duration, Vec<Event>) {
        let start = Instant::now();
        let evs = events(state, rest).await;
        (start.elapsed(), evs)
    }

    #[tokio::test]
    async fn the_future_of_each_event_stays_small() {
        // Built and moved for every chunk: the stream's end (breaker records, a continuation's routing) belongs in
        // a boxed future of its own, or every chunk copies kilobytes (3,872 bytes in a release build, 3,328 in a
        // debug one).
        let state = state(", stream_failure: continue");
        let (cands, served) = opened(&state, Box::pin(futures::stream::empty())).await;
        let b = Box::new(body(state.clone(), request(), Needs::default(), &cands, served));
        let size = std::mem::size_of_val(&step(b));
        assert!(size <= 512, "each event's future is {size} bytes");
    }

    fn text(evs: &[Event]) -> String {
        evs.iter()
            .filter_map(|e| match e {
                Event::Chunk(c) => c.choices.first().and_then(|ch| ch.delta.content.clone()),
                _ => None,
            })
            .collect()
    }

    #[tokio::test(start_paused = true)]
    async fn a_stalled_upstream_ends_failed_never_done() {
        let s = state("");
        let rest: ChunkStream =
            Box::pin(futures::stream::iter(vec![Ok(chunk("lo"))]).chain(futures::stream::pending()));
        let (took, evs) = timed(&s, rest).await;
        assert_eq!(took, Duration::from_secs(2));
        assert_eq!(text(&evs), "Hello");
        match evs.last() {
            Some(Event::Failed { provider, error }) => {
                assert_eq!(provider, "a");
                assert!(error.message.contains("stalled"), "{error}");
            }
            other => panic!("{other:?}"),
        }
        assert!(!evs.iter().any(|e| matches!(e, Event::Done)));
        let m = s.metrics.encode();
        assert!(
            m.contains("llm_gateway_provider_requests_total{provider=\"a\",outcome=\"timeout\"} 1"),
            "{m}"
        );
        assert!(
            m.contains("llm_gateway_provider_requests_total{provider=\"a\",outcome=\"success\"} 0"),
            "a broken stream is one failure, not a success and a failure: {m}"
        );
    }

    /// The stall clock restarts with each wait for a chunk: gaps under the stall timeout never end a stream,
    /// however long it runs in all, and a stall is timed from the chunk before it.
    #[tokio::test(start_paused = true)]
    async fn the_stall_clock_counts_from_the_last_chunk_not_the_first() {
        // Stall 2 s, max_stream_duration 3.5 s.
        let s = state("");
        let gaps = futures::stream::unfold(0u32, |i| async move {
            (i < 2).then_some(())?;
            tokio::time::sleep(Duration::from_millis(1500)).await;
            Some((Ok(chunk("x")), i + 1))
        });
        let (took, evs) = timed(&s, Box::pin(gaps)).await;
        assert_eq!(
            took,
            Duration::from_secs(3),
            "2 gaps of 1.5 s, each under the 2 s stall"
        );
        assert!(matches!(evs.last(), Some(Event::Done)), "{evs:?}");
        assert_eq!(text(&evs), "Helxx");

        let then_stall = futures::stream::unfold(0u32, |i| async move {
            tokio::time::sleep(Duration::from_secs(1)).await;
            if i < 1 {
                Some((Ok(chunk("y")), i + 1))
            } else {
                futures::future::pending().await
            }
        });
        let (took, evs) = timed(&s, Box::pin(then_stall)).await;
        assert_eq!(
            took,
            Duration::from_secs(3),
            "the last chunk at 1 s, then the 2 s stall"
        );
        assert!(
            matches!(evs.last(), Some(Event::Failed { error, .. }) if error.message.contains("stalled")),
            "{evs:?}"
        );
    }

    #[tokio::test(start_paused = true)]
    async fn max_stream_duration_bounds_a_stream_that_keeps_going() {
        let slow = futures::stream::unfold((), |()| async {
            tokio::time::sleep(Duration::from_secs(1)).await;
            Some((Ok(chunk("x")), ()))
        });
        let (took, evs) = timed(&state(""), Box::pin(slow)).await;
        assert_eq!(took, Duration::from_millis(3500));
        assert!(
            matches!(evs.last(), Some(Event::Failed { error, .. }) if error.message.contains("max_stream_duration"))
        );
    }

    #[tokio::test]
    async fn a_clean_end_is_done_and_one_success() {
        let s = state("");
        let rest: ChunkStream = Box::pin(futures::stream::iter(vec![Ok(chunk("lo"))]));
        let evs = events(&s, rest).await;
        assert!(matches!(evs.last(), Some(Event::Done)));
        assert!(s
            .metrics
            .encode()
            .contains("llm_gateway_provider_requests_total{provider=\"a\",outcome=\"success\"} 1"));
    }

    /// The chunk that ends an answer with `stop`.
    fn stop() -> ChatChunk {
        ChatChunk::with_delta("id", 1, "m", Delta::default(), Some("stop".into()))
    }

    /// A delta that starts a tool call.
    fn tool_call() -> Delta {
        Delta {
            tool_calls: Some(vec![ToolCallDelta {
                index: 0,
                id: Some("call_1".into()),
                kind: Some("function".into()),
                function: Some(serde_json::json!({"name": "f", "arguments": "{}"})),
            }]),
            ..Delta::default()
        }
    }

    #[tokio::test]
    async fn a_tool_call_stream_ends_with_tool_calls_whatever_the_upstream_said() {
        let call = tool_call();
        let rest: ChunkStream = Box::pin(futures::stream::iter(vec![
            Ok(ChatChunk::with_delta("id", 1, "m", call, None)),
            Ok(stop()),
        ]));
        let evs = events(&state(""), rest).await;
        let finish: Vec<_> = evs
            .iter()
            .filter_map(|e| match e {
                Event::Chunk(c) => c.choices.first().and_then(|ch| ch.finish_reason.clone()),
                _ => None,
            })
            .collect();
        assert_eq!(finish, ["tool_calls"]);
    }

    /// A chunk as an OpenAI upstream's translator gives it: its bytes kept.
    fn as_is(mut c: ChatChunk) -> ChatChunk {
        c.raw = Some(crate::canonical::RawChunk {
            bytes: serde_json::to_vec(&c).unwrap().into(),
            usage_key: false,
        });
        c
    }

    #[tokio::test]
    async fn a_chunk_changed_on_its_way_loses_its_bytes_and_an_unchanged_one_keeps_them() {
        let call = tool_call();
        let rest: ChunkStream = Box::pin(futures::stream::iter(vec![
            Ok(as_is(chunk("lo"))),
            // Another id, creation time or model than the first chunk's: rewritten to the first's.
            Ok(as_is(ChatChunk::with_delta(
                "other",
                1,
                "m",
                Delta::default(),
                None,
            ))),
            Ok(as_is(ChatChunk::with_delta("id", 2, "m", Delta::default(), None))),
            Ok(as_is(ChatChunk::with_delta(
                "id",
                1,
                "m2",
                Delta::default(),
                None,
            ))),
            Ok(as_is(ChatChunk::with_delta("id", 1, "m", call, None))),
            // `stop` after a tool call: rewritten to `tool_calls`.
            Ok(as_is(stop())),
        ]));
        let evs = events(&state(""), rest).await;
        let kept: Vec<bool> = evs
            .iter()
            .filter_map(|e| match e {
                Event::Chunk(c) => {
                    assert_eq!((c.id.as_str(), c.created, c.model.as_str()), ("id", 1, "m"));
                    Some(c.raw.is_some())
                }
                _ => None,
            })
            .collect();
        // The first ("Hel", held at the first token) was made without bytes.
        assert_eq!(kept, [false, true, false, false, false, true, false]);
    }

    #[tokio::test(start_paused = true)]
    async fn every_stream_cut_after_its_first_token_opens_the_breaker_after_min_requests() {
        // Counted as a success at the first token and a failure at the cut, the ratio could never pass 0.5.
        let s = state(", breaker: { window: 60s, min_requests: 4, failure_ratio: 0.6, open_for: 30s }");
        for i in 0..4 {
            assert_eq!(
                s.router.snapshot().await[0].breaker,
                BreakerState::Closed,
                "still closed before stream {i}"
            );
            let cut: ChunkStream = Box::pin(futures::stream::iter(vec![
                Ok(chunk("lo")),
                Err(ProviderError::new(ErrorClass::Malformed, "cut")),
            ]));
            let evs = events(&s, cut).await;
            assert!(matches!(evs.last(), Some(Event::Failed { .. })));
        }
        assert_eq!(s.router.snapshot().await[0].breaker, BreakerState::Open);
        let cands = s.router.plan("default", Mode::Auto, None).unwrap();
        let served = s
            .router
            .execute(&cands, &Needs::default(), Settle::OnAnswer, |c, _| {
                let name = c.provider.clone();
                async move { Ok::<_, ProviderError>(name) }
            })
            .await
            .unwrap();
        assert_eq!(served.value, "b", "the open breaker is skipped");
    }
}
