//! The answer pipeline: the one place that turns a canonical request into an answer. Every surface (chat
//! completions, the assistants route, and the agent surfaces to come) parses its wire format into the canonical
//! types, calls one entry here and renders what comes back; none of them repeats the chain.
//!
//! The chain, for every kind of answer: cache (fresh hit) -> plan (candidates in order, in the mode read once
//! here) -> the router's walk (skip checks, attempts under their timeouts, one deadline) -> the local tier (last
//! in the plan in `auto` mode) -> stale cache -> offline packages -> the error with every attempt in order.
//!
//! Entries: [`chat`] (non-stream), [`chat_stream`] (a stream of [`Event`]s, also for answers that need no
//! provider), [`embeddings`]. Metric accounting of answers (offline hits and misses, overhead, tokens) happens
//! in [`Run::finish`] and [`tiers`]; the `X-LLM-*` headers in [`headers`].

pub mod headers;
mod needs;
mod stream;
mod tiers;

use std::borrow::Cow;
use std::sync::Arc;

use axum::http::HeaderMap;
use tokio::time::Instant;

use crate::api::{ApiError, AppState};
use crate::cache;
use crate::canonical::{validate, ChatRequest, ChatResponse, EmbeddingsRequest, EmbeddingsResponse, Usage};
use crate::config::Mode;
use crate::metrics::{OfflineSource, Source};
use crate::providers::capabilities::{Caps, Needs};
use crate::providers::{ErrorClass, ProviderError, Read};
use crate::router::{PlanError, RouteError, Served, Settle};
use crate::telemetry::{self, Operation, RequestSpan};
pub use stream::{Event, EventStream, Streamed};
pub use tiers::CacheControl;

/// What a surface passes beside the canonical request.
#[derive(Debug, Clone, Default)]
pub struct Opts {
    /// `X-LLM-Provider`: this provider first.
    pub preferred: Option<String>,
    /// `Cache-Control` directives.
    pub cache: CacheControl,
    /// The client's W3C trace context (`traceparent`): the request's span becomes its child.
    pub trace_parent: Option<opentelemetry::trace::SpanContext>,
    /// How much of a provider's non-stream answer the surface needs read: [`Read::PassThrough`] only where the
    /// client takes OpenAI's own bytes as they are (`/v1/chat/completions`).
    pub read: Read,
}

impl Opts {
    /// From HTTP request headers (`X-LLM-Provider`, `Cache-Control`).
    pub fn from_headers(h: &HeaderMap) -> Opts {
        Opts {
            preferred: h
                .get(headers::PROVIDER)
                .and_then(|v| v.to_str().ok())
                .map(|s| s.trim().to_ascii_lowercase())
                .filter(|s| !s.is_empty()),
            cache: CacheControl::from_headers(h),
            trace_parent: telemetry::client_parent(h),
            read: Read::Full,
        }
    }
}

/// Who answered a chat request.
#[derive(Debug)]
pub enum Answer {
    /// A provider (remote or local).
    Provider(Served<ChatResponse>),
    /// The cache; `stale` when it was past its TTL and served because every provider failed.
    Cache {
        /// The cached answer.
        resp: ChatResponse,
        /// Served past its TTL.
        stale: bool,
    },
    /// An offline package entry.
    Package {
        /// The answer.
        resp: ChatResponse,
        /// Which entry.
        entry: PackageRef,
    },
}

/// The offline package entry that answered.
#[derive(Debug, Clone)]
pub struct PackageRef {
    /// `name@version`.
    pub package: String,
    /// Entry id.
    pub entry: String,
    /// Similarity (1.0 exact).
    pub score: f32,
}

/// Who answered and how, for headers, metrics and the surfaces' own fields.
#[derive(Debug, Clone)]
pub struct Meta {
    /// `provider`, `local`, `cache` or `offline-package`.
    pub source: Source,
    /// The provider's name, or `cache` / `offline-package`.
    pub provider: String,
    /// Candidates passed over before the one that answered.
    pub fallbacks: u32,
    /// `hit` or `stale` for cache answers.
    pub cache: Option<&'static str>,
    /// The package entry for package answers.
    pub package: Option<PackageRef>,
    /// The provider's usage (for the client-limits layer).
    pub usage: Option<Usage>,
}

impl Meta {
    fn of<T>(served: &Served<T>, usage: Option<Usage>) -> Meta {
        Meta {
            source: if served.candidate.local {
                Source::Local
            } else {
                Source::Provider
            },
            provider: served.candidate.provider.clone(),
            fallbacks: served.fallbacks,
            cache: None,
            package: None,
            usage,
        }
    }

    fn package(entry: PackageRef) -> Meta {
        Meta {
            source: Source::OfflinePackage,
            provider: "offline-package".into(),
            fallbacks: 0,
            cache: None,
            package: Some(entry),
            usage: None,
        }
    }
}

impl Answer {
    /// The answer.
    pub fn response(&self) -> &ChatResponse {
        match self {
            Answer::Provider(s) => &s.value,
            Answer::Cache { resp, .. } | Answer::Package { resp, .. } => resp,
        }
    }

    /// Who answered.
    pub fn meta(&self) -> Meta {
        match self {
            Answer::Provider(s) => Meta::of(s, s.value.usage),
            Answer::Cache { stale, .. } => Meta {
                source: Source::Cache,
                provider: "cache".into(),
                fallbacks: 0,
                cache: Some(if *stale { "stale" } else { "hit" }),
                package: None,
                usage: None,
            },
            Answer::Package { entry, .. } => Meta::package(entry.clone()),
        }
    }
}

/// An embeddings answer and who gave it.
#[derive(Debug)]
pub struct Embedded {
    /// The vectors.
    pub response: EmbeddingsResponse,
    /// Who answered.
    pub meta: Meta,
}

/// Why the providers gave no answer: planning or routing failed.
#[derive(Debug)]
pub(crate) enum Failure {
    /// No plan (unknown model or provider, nothing in this mode).
    Plan(PlanError),
    /// The walk over the candidates failed.
    Route(RouteError),
}

/// One request's run through the pipeline: the mode (read once) and the clock of the overhead metric.
pub(crate) struct Run<'a> {
    pub(crate) state: &'a Arc<AppState>,
    pub(crate) mode: Mode,
    start: Instant,
}

impl<'a> Run<'a> {
    fn new(state: &'a Arc<AppState>) -> Run<'a> {
        Run {
            state,
            mode: state.router.mode(),
            start: Instant::now(),
        }
    }

    /// Accounts an answer once: offline hits, a provider's tokens, and for a provider's answer the gateway's own
    /// overhead (the time not spent waiting on upstream).
    fn finish(&self, meta: &Meta, upstream_wait: Option<std::time::Duration>) {
        let m = &self.state.metrics;
        match meta.source {
            Source::Local => m.offline_hit(OfflineSource::Local),
            Source::OfflinePackage => m.offline_hit(OfflineSource::Package),
            _ => {}
        }
        if let Some(u) = &meta.usage {
            count_tokens(self.state, &meta.provider, u);
        }
        if let Some(wait) = upstream_wait {
            let overhead = self.start.elapsed().saturating_sub(wait);
            m.overhead.observe(overhead.as_secs_f64());
        }
    }
}

impl Run<'_> {
    /// A routing error as a failure of the pipeline. A request that no candidate of this mode can serve, but
    /// the `auto` plan could, is a mode's limit (the offline tier may still answer), not the client's error.
    fn failure(&self, e: RouteError, model: &str, opts: &Opts, needs: &Needs) -> Failure {
        if let RouteError::Unservable { .. } = &e {
            if self.mode != Mode::Auto {
                let servable = self
                    .state
                    .router
                    .plan(model, Mode::Auto, opts.preferred.as_deref())
                    .is_ok_and(|all| all.iter().any(|c| c.caps.refuses(needs).is_none()));
                if servable {
                    return Failure::Route(RouteError::AllFailed {
                        attempts: e.attempts().to_vec(),
                        deadline: false,
                        retry_after: None,
                    });
                }
            }
        }
        Failure::Route(e)
    }
}

/// Counts tokens by provider and kind, and against the provider's budgets: at once in memory; on a shared
/// backend in a task of its own, so an answer (or a stream's chunk) never waits on Redis for its accounting.
pub(crate) fn count_tokens(state: &Arc<AppState>, provider: &str, usage: &Usage) {
    state.metrics.count_tokens(provider, usage);
    let total = usage
        .total_tokens
        .max(usage.prompt_tokens + usage.completion_tokens);
    if state.router.state_backend().redis().is_some() {
        let (state, provider) = (state.clone(), provider.to_string());
        tokio::spawn(async move { state.router.record_tokens(&provider, total).await });
    } else {
        // Memory: nothing in it awaits.
        let _ = futures::FutureExt::now_or_never(state.router.record_tokens(provider, total));
    }
}

fn no_adapter(name: &str) -> ProviderError {
    ProviderError::new(ErrorClass::Connect, format!("provider {name} has no adapter"))
}

/// Every provider's tool-call answer ends with `finish_reason: "tool_calls"` (agent loops test for it), whatever
/// the upstream said (`stop`, GigaChat's `function_call`); the stream's chunks get the same in [`stream`].
fn tool_calls_finish(mut resp: ChatResponse) -> ChatResponse {
    for c in &mut resp.choices {
        let calls = c.message.tool_calls.as_ref().is_some_and(|t| !t.is_empty());
        if calls
            && c.finish_reason.as_deref() != Some("tool_calls")
            && c.finish_reason.as_deref() != Some("length")
        {
            c.finish_reason = Some("tool_calls".into());
            // The upstream's own bytes no longer say what the answer says.
            resp.raw = None;
        }
    }
    resp
}

/// What an offline miss of `req` records: the text the packages are matched on.
fn missed(req: &ChatRequest) -> Option<Vec<String>> {
    tiers::last_user_text(req).map(|t| vec![t])
}

/// The request as `caps`' model can take it: a `max_tokens` (or `max_completion_tokens`) above the model's
/// output limit, or above what its context window leaves after the prompt, is lowered to it, so an agent's
/// 64,000 does not make a provider refuse the request (`../shared/AGENT_APIS.md` §4). `prompt_tokens` is the
/// request's estimate (a quarter token per character, low for most scripts): twice it is kept for the prompt.
/// Borrowed when nothing changes.
fn fit<'a>(req: &'a ChatRequest, caps: &Caps, prompt_tokens: u32) -> Cow<'a, ChatRequest> {
    /// The least a lowered `max_tokens` leaves for an answer.
    const FLOOR: u32 = 256;
    let room = caps
        .context_window
        .map(|w| w.saturating_sub(prompt_tokens.saturating_mul(2)).max(FLOOR));
    let limit = match (caps.max_output_tokens, room) {
        (Some(a), Some(b)) => a.min(b),
        (Some(a), None) | (None, Some(a)) => a,
        (None, None) => return Cow::Borrowed(req),
    };
    let over = |v: Option<u32>| v.is_some_and(|n| n > limit);
    if !over(req.max_tokens) && !over(req.max_completion_tokens) {
        return Cow::Borrowed(req);
    }
    let mut r = req.clone();
    for v in [&mut r.max_tokens, &mut r.max_completion_tokens] {
        if over(*v) {
            *v = Some(limit);
        }
    }
    Cow::Owned(r)
}

/// An estimate of the input tokens of `req` (its messages, and its tool definitions as the model sees them),
/// for `count_tokens`: the prompt estimate of the capability check plus the tools' JSON, a quarter token per
/// character, and a few tokens of framing per message.
pub fn estimate_input_tokens(req: &ChatRequest) -> u64 {
    let prompt = u64::from(needs::chat(req).prompt_tokens);
    let tools: usize = req.tools.iter().flatten().map(|t| t.to_string().len()).sum();
    prompt + (tools / 4) as u64 + 3 * req.messages.len() as u64
}

fn check(req: &ChatRequest) -> Result<(), ApiError> {
    validate::chat(req).map_err(ApiError::from)
}

/// The request's span, when traces are on.
fn request_span(state: &AppState, op: Operation, model: &str, opts: &Opts) -> Option<RequestSpan> {
    let t = state.telemetry.as_ref()?;
    Some(t.request(op, model, opts.trace_parent.as_ref()))
}

/// Ends the request's span with who answered.
fn end_span(span: Option<RequestSpan>, meta: Result<(&Meta, Option<&str>), &ApiError>) {
    let Some(span) = span else { return };
    let outcome = match meta {
        Ok((m, response_model)) => telemetry::Outcome {
            tier: Some(m.source.as_str()),
            provider: matches!(m.source, Source::Provider | Source::Local).then_some(m.provider.as_str()),
            response_model,
            usage: m.usage,
            fallbacks: m.fallbacks,
            error: None,
        },
        Err(e) => telemetry::Outcome {
            error: Some(error_type(e)),
            ..Default::default()
        },
    };
    span.end(outcome);
}

/// `error.type` of a failed request: low-cardinality names of what the client was told.
fn error_type(e: &ApiError) -> &'static str {
    match e {
        ApiError::InvalidJson(_) | ApiError::InvalidRequest { .. } | ApiError::MissingMessages => {
            "invalid_request"
        }
        ApiError::Unsupported { .. } => "unsupported",
        ApiError::Plan(PlanError::UnknownModel(_)) => "model_not_found",
        ApiError::Plan(PlanError::UnknownProvider(_)) => "provider_not_found",
        ApiError::Plan(PlanError::NoCandidates { .. }) => "no_provider_in_mode",
        ApiError::Route(RouteError::Rejected { error, .. }) => error.class.as_str(),
        ApiError::Route(RouteError::Unservable { .. }) => "unservable",
        ApiError::Route(RouteError::AllFailed { deadline: true, .. }) => "deadline_exceeded",
        ApiError::Route(RouteError::AllFailed { .. }) | ApiError::OfflineMiss(_) => "all_providers_failed",
        _ => "_OTHER",
    }
}

/// A non-stream chat answer: a fresh cache hit, else the providers (the answer is stored), else a stale cache
/// answer or an offline package. Traced as one span when traces are on.
pub async fn chat(state: &Arc<AppState>, req: &ChatRequest, opts: &Opts) -> Result<Answer, ApiError> {
    let span = request_span(state, Operation::Chat, &req.model, opts);
    let r = telemetry::within(span.as_ref(), chat_untraced(state, req, opts)).await;
    if span.is_some() {
        let meta = r.as_ref().map(|a| (a.meta(), a.response().model.as_str()));
        end_span(
            span,
            meta.as_ref().map(|(m, model)| (m, Some(*model))).map_err(|e| *e),
        );
    }
    r
}

async fn chat_untraced(state: &Arc<AppState>, req: &ChatRequest, opts: &Opts) -> Result<Answer, ApiError> {
    check(req)?;
    let run = Run::new(state);
    let key = state.cache.eligible(req).then(|| cache::key(req));
    if let Some(a) = tiers::cache_lookup(state, key.as_ref(), opts.cache).await {
        run.finish(&a.meta(), None);
        return Ok(a);
    }
    let needs = needs::chat(req);
    let routed = match state.router.plan(&req.model, run.mode, opts.preferred.as_deref()) {
        Ok(candidates) => state
            .router
            .execute(&candidates, &needs, Settle::OnAnswer, |cand, _budget| {
                let provider = state.provider(&cand.provider).cloned();
                let model = cand.model.clone();
                let name = cand.provider.clone();
                let req = fit(req, &cand.caps, needs.prompt_tokens);
                let read = opts.read;
                async move {
                    let p = provider.ok_or_else(|| no_adapter(&name))?;
                    let r = p.adapter.chat(&req, &model, read).await.map(tool_calls_finish);
                    if let Ok(resp) = &r {
                        telemetry::record_answer(Some(&resp.model), resp.usage.as_ref(), Operation::Chat);
                        telemetry::record_finish_reasons(
                            resp.choices.iter().filter_map(|c| c.finish_reason.as_deref()),
                        );
                    }
                    r
                }
            })
            .await
            .map_err(|e| run.failure(e, &req.model, opts, &needs)),
        Err(e) => Err(Failure::Plan(e)),
    };
    match routed {
        Ok(served) => {
            if let (Some(k), false) = (key, opts.cache.no_store) {
                state.cache.put(k, &served.value);
            }
            let wait = served.upstream_wait;
            let answer = Answer::Provider(served);
            run.finish(&answer.meta(), Some(wait));
            Ok(answer)
        }
        Err(f) => {
            let a = tiers::after_failure(&run, f, key.as_ref(), missed(req), |s| {
                tiers::package_answer(s, req, &needs)
            })
            .await?;
            run.finish(&a.meta(), None);
            Ok(a)
        }
    }
}

/// A streamed chat answer: a provider's stream once it produced its first token (failover is free until then),
/// or a whole answer (cache, package) as a stream of the same events. Traced as one span when traces are on,
/// from the request to the stream's end (its usage, a break, a continuation on another provider).
pub async fn chat_stream(state: &Arc<AppState>, req: ChatRequest, opts: &Opts) -> Result<Streamed, ApiError> {
    let Some(span) = request_span(state, Operation::Chat, &req.model, opts) else {
        return chat_stream_untraced(state, req, opts).await;
    };
    match span.within(chat_stream_untraced(state, req, opts)).await {
        Ok(mut s) => {
            s.events = stream::traced(s.events, span, s.meta.clone());
            Ok(s)
        }
        Err(e) => {
            end_span(Some(span), Err(&e));
            Err(e)
        }
    }
}

async fn chat_stream_untraced(
    state: &Arc<AppState>,
    req: ChatRequest,
    opts: &Opts,
) -> Result<Streamed, ApiError> {
    check(&req)?;
    let run = Run::new(state);
    let key = state.cache.eligible(&req).then(|| cache::key(&req));
    if let Some(a) = tiers::cache_lookup(state, key.as_ref(), opts.cache).await {
        run.finish(&a.meta(), None);
        return Ok(stream::whole(&a));
    }
    let needs = needs::chat(&req);
    let opened = match state.router.plan(&req.model, run.mode, opts.preferred.as_deref()) {
        Ok(candidates) => stream::open(state, &req, &candidates, &needs)
            .await
            .map(|s| (s, candidates))
            .map_err(|e| run.failure(e, &req.model, opts, &needs)),
        Err(e) => Err(Failure::Plan(e)),
    };
    match opened {
        Ok((served, candidates)) => {
            let meta = Meta::of(&served, None);
            run.finish(&meta, Some(served.upstream_wait));
            Ok(stream::live(state.clone(), req, needs, &candidates, served, meta))
        }
        Err(f) => {
            let a = tiers::after_failure(&run, f, key.as_ref(), missed(&req), |s| {
                tiers::package_answer(s, &req, &needs)
            })
            .await?;
            run.finish(&a.meta(), None);
            Ok(stream::whole(&a))
        }
    }
}

/// An embeddings answer, only ever from the request's own vector space: the providers of that space, then an
/// offline package's stored vectors of the same size (not in `remote` mode). Traced as one span when traces
/// are on.
pub async fn embeddings(
    state: &Arc<AppState>,
    req: &EmbeddingsRequest,
    opts: &Opts,
) -> Result<Embedded, ApiError> {
    let span = request_span(state, Operation::Embeddings, &req.model, opts);
    let r = telemetry::within(span.as_ref(), embeddings_untraced(state, req, opts)).await;
    end_span(
        span,
        r.as_ref().map(|e| (&e.meta, Some(e.response.model.as_str()))),
    );
    r
}

async fn embeddings_untraced(
    state: &Arc<AppState>,
    req: &EmbeddingsRequest,
    opts: &Opts,
) -> Result<Embedded, ApiError> {
    let run = Run::new(state);
    let needs = needs::embeddings(state, req, opts.preferred.as_deref());
    let routed = match state.router.plan(&req.model, run.mode, opts.preferred.as_deref()) {
        Ok(candidates) => state
            .router
            .execute(&candidates, &needs, Settle::OnAnswer, |cand, _| {
                let provider = state.provider(&cand.provider).cloned();
                let model = cand.model.clone();
                let name = cand.provider.clone();
                async move {
                    let p = provider.ok_or_else(|| no_adapter(&name))?;
                    let r = p.adapter.embed(req, &model).await;
                    if let Ok(resp) = &r {
                        let usage = Usage::new(resp.usage.prompt_tokens, 0);
                        telemetry::record_answer(Some(&resp.model), Some(&usage), Operation::Embeddings);
                    }
                    r
                }
            })
            .await
            .map_err(|e| run.failure(e, &req.model, opts, &needs)),
        Err(e) => Err(Failure::Plan(e)),
    };
    match routed {
        Ok(served) => {
            let u = served.value.usage;
            let meta = Meta::of(&served, Some(Usage::new(u.prompt_tokens, 0)));
            run.finish(&meta, Some(served.upstream_wait));
            Ok(Embedded {
                response: served.value,
                meta,
            })
        }
        Err(f) => {
            let e = tiers::after_failure(&run, f, None, req.input.texts(), |s| {
                tiers::package_vectors(s, req, &needs)
            })
            .await?;
            run.finish(&e.meta, None);
            Ok(e)
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::{ProviderKind, QwenApi};
    use crate::providers::capabilities::defaults;

    fn asking(n: u32) -> ChatRequest {
        serde_json::from_value(serde_json::json!({"model": "m", "max_tokens": n,
            "messages": [{"role": "user", "content": "hi"}]}))
        .unwrap()
    }

    #[test]
    fn max_tokens_is_lowered_to_what_the_model_can_give() {
        let gpt = defaults(ProviderKind::OpenAi, QwenApi::Compatible, "gpt-4o-mini");
        assert_eq!(fit(&asking(64_000), &gpt, 10).max_tokens, Some(16_384));
        assert!(matches!(fit(&asking(1_000), &gpt, 10), Cow::Borrowed(_)));
        // An 8k window: the prompt's share (twice its estimate) is kept free.
        let kimi = defaults(ProviderKind::Kimi, QwenApi::Compatible, "moonshot-v1-8k");
        assert_eq!(fit(&asking(32_000), &kimi, 1_000).max_tokens, Some(6_192));
        assert_eq!(
            fit(&asking(32_000), &kimi, 9_000).max_tokens,
            Some(256),
            "a floor, never zero"
        );
        // Nothing known: unchanged.
        let ollama = defaults(ProviderKind::Ollama, QwenApi::Compatible, "some-model");
        assert_eq!(fit(&asking(64_000), &ollama, 10).max_tokens, Some(64_000));
        let mut both = asking(64_000);
        both.max_completion_tokens = Some(50_000);
        let f = fit(&both, &gpt, 10);
        assert_eq!(
            (f.max_tokens, f.max_completion_tokens),
            (Some(16_384), Some(16_384))
        );
    }
}
