//! OpenTelemetry traces: one span per request (opened at the pipeline's entries) and one child span per provider
//! attempt (in the router's attempt loop; skips are events of the request span), with the GenAI semantic
//! conventions' attributes, exported as OTLP over HTTP/protobuf. Off unless configured ([`OtlpConfig`]).
//!
//! The request's span travels in the OpenTelemetry [`Context`] of the futures that serve it (`with_context`), so
//! the router and the adapters find it without new parameters; [`inject`] puts the attempt's W3C `traceparent`
//! on the provider request. No prompt, answer, header value or secret is ever put on a span: only model names,
//! provider names, token counts, error classes and the gateway's own decisions.

mod export;

use std::collections::BTreeMap;
use std::future::Future;
use std::sync::Arc;

use futures::future::Either;
use opentelemetry::context::FutureExt as _;
use opentelemetry::propagation::{Extractor, TextMapPropagator};
use opentelemetry::trace::{
    SpanContext, SpanKind, Status, TraceContextExt, Tracer as _, TracerProvider as _,
};
use opentelemetry::{Context, KeyValue};
use opentelemetry_otlp::{Protocol, WithExportConfig, WithHttpConfig};
use opentelemetry_sdk::propagation::TraceContextPropagator;
use opentelemetry_sdk::trace::{SdkTracer, SdkTracerProvider, SpanExporter as _};
use opentelemetry_sdk::Resource;
use prometheus_client::metrics::counter::Counter;

use crate::canonical::Usage;
use crate::config::{Config, OtlpConfig, ProviderKind};

/// The `gen_ai.operation.name` of a pipeline entry.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Operation {
    /// Chat completions (streamed or not).
    Chat,
    /// Embeddings.
    Embeddings,
}

impl Operation {
    fn as_str(self) -> &'static str {
        match self {
            Operation::Chat => "chat",
            Operation::Embeddings => "embeddings",
        }
    }
}

/// `gen_ai.provider.name`: the semantic conventions' well-known value where there is one (`openai`), else a
/// custom one in the same style (the conventions allow them).
pub fn provider_name(kind: ProviderKind) -> &'static str {
    match kind {
        ProviderKind::OpenAi => "openai",
        ProviderKind::Kimi => "moonshot",
        ProviderKind::Qwen => "dashscope",
        ProviderKind::GigaChat => "gigachat",
        ProviderKind::Ollama => "ollama",
    }
}

/// The exporter and the tracer, when traces are on.
#[derive(Debug, Clone)]
pub struct Telemetry {
    provider: SdkTracerProvider,
    tracing: Tracing,
}

/// What a request's context carries for the router and the adapters.
#[derive(Debug, Clone)]
struct Tracing {
    tracer: SdkTracer,
    /// Config provider name -> what its spans say of it.
    kinds: Arc<BTreeMap<String, ProviderInfo>>,
}

/// A provider as its spans name it.
#[derive(Debug, Clone)]
struct ProviderInfo {
    /// `gen_ai.provider.name`.
    name: &'static str,
    /// `server.address` and `server.port` of its base URL.
    server: Option<(String, i64)>,
}

impl ProviderInfo {
    fn of(p: &crate::config::ProviderConfig) -> ProviderInfo {
        let server = p.base_url.parse::<axum::http::Uri>().ok().and_then(|u| {
            let port = u.port_u16().or(match u.scheme_str() {
                Some("https") => Some(443),
                Some("http") => Some(80),
                _ => None,
            })?;
            Some((u.host()?.to_string(), i64::from(port)))
        });
        ProviderInfo {
            name: provider_name(p.kind),
            server,
        }
    }
}

impl Telemetry {
    /// Starts the export (its own thread), or explains why it cannot.
    pub fn start(cfg: &Config, dropped: Counter) -> Result<Telemetry, String> {
        let Some(o) = &cfg.telemetry else {
            return Err("telemetry is off".into());
        };
        Telemetry::start_otlp(o, cfg, dropped)
    }

    fn start_otlp(o: &OtlpConfig, cfg: &Config, dropped: Counter) -> Result<Telemetry, String> {
        let headers = o
            .headers
            .iter()
            .map(|(k, v)| (k.clone(), v.expose().to_string()))
            .collect();
        let mut exporter = opentelemetry_otlp::SpanExporter::builder()
            .with_http()
            .with_protocol(Protocol::HttpBinary)
            .with_endpoint(o.endpoint.clone())
            .with_timeout(o.timeout)
            .with_headers(headers)
            .build()
            .map_err(|e| format!("OTLP exporter: {e}"))?;
        let resource = Resource::builder()
            .with_service_name(o.service_name.clone())
            .with_attribute(KeyValue::new("service.version", env!("CARGO_PKG_VERSION")))
            .build();
        exporter.set_resource(&resource);
        let batching = export::Batching {
            queue_size: o.queue_size,
            batch_size: o.batch_size,
            interval: o.export_interval,
        };
        let processor = export::QueueProcessor::start(exporter, batching, dropped)
            .map_err(|e| format!("OTLP export thread: {e}"))?;
        let provider = SdkTracerProvider::builder()
            .with_span_processor(processor)
            .with_resource(resource)
            .build();
        let kinds = cfg
            .providers
            .values()
            .map(|p| (p.name.clone(), ProviderInfo::of(p)))
            .collect();
        Ok(Telemetry {
            tracing: Tracing {
                tracer: provider.tracer("llm-gateway"),
                kinds: Arc::new(kinds),
            },
            provider,
        })
    }

    /// Exports what is queued now and waits for it (blocking: call it off the runtime, e.g. `spawn_blocking`).
    pub fn flush(&self) -> Result<(), String> {
        self.provider.force_flush().map_err(|e| e.to_string())
    }

    /// Exports what is queued and stops (at shutdown), waiting `timeout` at most.
    pub fn shutdown(&self, timeout: std::time::Duration) {
        if let Err(e) = self.provider.shutdown_with_timeout(timeout) {
            tracing::warn!(error = %e, "OTLP export did not finish at shutdown");
        }
    }

    /// Opens the span of one request (`parent`: the client's `traceparent`, if it sent one).
    pub fn request(&self, op: Operation, model: &str, parent: Option<&SpanContext>) -> RequestSpan {
        let parent_cx = match parent {
            Some(sc) => Context::new().with_remote_span_context(sc.clone()),
            None => Context::new(),
        };
        let span = self
            .tracing
            .tracer
            .span_builder(format!("{} {model}", op.as_str()))
            .with_kind(SpanKind::Server)
            .with_attributes([
                KeyValue::new("gen_ai.operation.name", op.as_str()),
                KeyValue::new("gen_ai.request.model", model.to_string()),
            ])
            .start_with_context(&self.tracing.tracer, &parent_cx);
        let cx = parent_cx.with_span(span).with_value(self.tracing.clone());
        RequestSpan { cx, op }
    }
}

/// A request's span, ended by [`RequestSpan::end`] (or when dropped).
#[derive(Debug, Clone)]
pub struct RequestSpan {
    cx: Context,
    op: Operation,
}

/// How a request was answered, for its span.
#[derive(Debug, Default)]
pub struct Outcome<'a> {
    /// `provider`, `local`, `cache` or `offline-package`.
    pub tier: Option<&'a str>,
    /// The config name of the provider that answered.
    pub provider: Option<&'a str>,
    /// `gen_ai.response.model`.
    pub response_model: Option<&'a str>,
    /// Token counts.
    pub usage: Option<Usage>,
    /// Candidates passed over.
    pub fallbacks: u32,
    /// `error.type` when the request failed.
    pub error: Option<&'a str>,
}

impl RequestSpan {
    /// Runs `f` inside this span's context (the router's attempts become its children).
    pub fn within<F: Future>(&self, f: F) -> impl Future<Output = F::Output> {
        f.with_context(self.cx.clone())
    }

    /// Its context, for futures and streams that run in it.
    pub fn context(&self) -> Context {
        self.cx.clone()
    }

    /// Records how it was answered and ends the span.
    pub fn end(self, o: Outcome<'_>) {
        let span = self.cx.span();
        if let Some(t) = o.tier {
            span.set_attribute(KeyValue::new("llm_gateway.tier", t.to_string()));
        }
        if let Some(p) = o.provider {
            span.set_attribute(KeyValue::new("llm_gateway.provider", p.to_string()));
            if let Some(info) = self.cx.get::<Tracing>().and_then(|t| t.kinds.get(p)) {
                span.set_attribute(KeyValue::new("gen_ai.provider.name", info.name));
            }
        }
        if let Some(m) = o.response_model {
            span.set_attribute(KeyValue::new("gen_ai.response.model", m.to_string()));
        }
        if let Some(u) = o.usage {
            usage_attributes(&span, &u, self.op);
        }
        span.set_attribute(KeyValue::new("llm_gateway.fallbacks", i64::from(o.fallbacks)));
        if let Some(e) = o.error {
            span.set_attribute(KeyValue::new("error.type", e.to_string()));
            span.set_status(Status::error(e.to_string()));
        }
        span.end();
    }
}

fn usage_attributes(span: &opentelemetry::trace::SpanRef<'_>, u: &Usage, op: Operation) {
    span.set_attribute(KeyValue::new(
        "gen_ai.usage.input_tokens",
        u.prompt_tokens.min(i64::MAX as u64) as i64,
    ));
    if op == Operation::Chat {
        span.set_attribute(KeyValue::new(
            "gen_ai.usage.output_tokens",
            u.completion_tokens.min(i64::MAX as u64) as i64,
        ));
    }
}

/// Runs `f` in `span`'s context when there is a span.
pub fn within<F: Future>(span: Option<&RequestSpan>, f: F) -> impl Future<Output = F::Output> {
    match span {
        Some(s) => Either::Left(s.within(f)),
        None => Either::Right(f),
    }
}

/// One provider attempt's span (a child of the request's), while it runs.
#[derive(Debug)]
pub(crate) struct AttemptSpan {
    cx: Context,
}

/// Why the previous candidate was passed over, for the next attempt's span.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Fallback<'a> {
    pub(crate) from: &'a str,
    pub(crate) reason: &'static str,
}

/// Opens an attempt span under the current request span, if the request is traced.
pub(crate) fn attempt(
    provider: &str,
    model: &str,
    retry: u32,
    fallback: Option<Fallback<'_>>,
) -> Option<AttemptSpan> {
    Context::map_current(|cx| {
        let t = cx.get::<Tracing>()?;
        if !cx.span().span_context().is_valid() {
            return None;
        }
        let mut attrs = vec![
            KeyValue::new("gen_ai.request.model", model.to_string()),
            KeyValue::new("llm_gateway.provider", provider.to_string()),
        ];
        if let Some(info) = t.kinds.get(provider) {
            attrs.push(KeyValue::new("gen_ai.provider.name", info.name));
            if let Some((host, port)) = &info.server {
                attrs.push(KeyValue::new("server.address", host.clone()));
                attrs.push(KeyValue::new("server.port", *port));
            }
        }
        if retry > 0 {
            attrs.push(KeyValue::new("llm_gateway.retry", i64::from(retry)));
        }
        if let Some(f) = fallback {
            attrs.push(KeyValue::new("llm_gateway.fallback.from", f.from.to_string()));
            attrs.push(KeyValue::new("llm_gateway.fallback.reason", f.reason));
            cx.span()
                .set_attribute(KeyValue::new("llm_gateway.fallback.reason", f.reason));
        }
        let span = t
            .tracer
            .span_builder(format!("attempt {provider} {model}"))
            .with_kind(SpanKind::Client)
            .with_attributes(attrs)
            .start_with_context(&t.tracer, cx);
        Some(AttemptSpan {
            cx: cx.with_span(span),
        })
    })
}

impl AttemptSpan {
    /// Runs the attempt's call in this span's context (so [`inject`] and [`record_answer`] find it).
    pub(crate) fn within<F: Future>(&self, f: F) -> impl Future<Output = F::Output> {
        f.with_context(self.cx.clone())
    }

    /// Ends it, with the error class if the attempt failed.
    pub(crate) fn end(self, error: Option<&'static str>) {
        let span = self.cx.span();
        if let Some(e) = error {
            span.set_attribute(KeyValue::new("error.type", e));
            span.set_status(Status::error(e));
        }
        span.end();
    }
}

/// Runs `f` in the attempt's span, if there is one.
pub(crate) fn within_attempt<F: Future>(span: Option<&AttemptSpan>, f: F) -> impl Future<Output = F::Output> {
    match span {
        Some(s) => Either::Left(s.within(f)),
        None => Either::Right(f),
    }
}

/// A candidate passed over without a call: an event of the request span.
pub(crate) fn skipped(provider: &str, outcome: &'static str, message: &str) {
    Context::map_current(|cx| {
        if cx.get::<Tracing>().is_none() {
            return;
        }
        cx.span().add_event(
            "llm_gateway.provider.skipped",
            vec![
                KeyValue::new("llm_gateway.provider", provider.to_string()),
                KeyValue::new("llm_gateway.skip.reason", outcome),
                KeyValue::new("llm_gateway.skip.message", message.to_string()),
            ],
        );
    });
}

/// Records `gen_ai.response.finish_reasons` on the current attempt span (read only when traced).
pub fn record_finish_reasons<'a>(reasons: impl Iterator<Item = &'a str>) {
    Context::map_current(|cx| {
        if cx.get::<Tracing>().is_none() {
            return;
        }
        let reasons: Vec<opentelemetry::StringValue> = reasons.map(|r| r.to_string().into()).collect();
        if reasons.is_empty() {
            return;
        }
        let value = opentelemetry::Value::Array(opentelemetry::Array::String(reasons));
        cx.span()
            .set_attribute(KeyValue::new("gen_ai.response.finish_reasons", value));
    });
}

/// Records the provider's answer (model, usage) on the current attempt span.
pub fn record_answer(response_model: Option<&str>, usage: Option<&Usage>, op: Operation) {
    Context::map_current(|cx| {
        if cx.get::<Tracing>().is_none() {
            return;
        }
        let span = cx.span();
        if let Some(m) = response_model {
            span.set_attribute(KeyValue::new("gen_ai.response.model", m.to_string()));
        }
        if let Some(u) = usage {
            usage_attributes(&span, u, op);
        }
    });
}

/// The current span's W3C `traceparent` (and `tracestate`) for a provider request, when the request is traced.
pub(crate) fn inject(rb: reqwest::RequestBuilder) -> reqwest::RequestBuilder {
    let mut fields: std::collections::HashMap<String, String> = std::collections::HashMap::new();
    Context::map_current(|cx| {
        if cx.get::<Tracing>().is_some() && cx.span().span_context().is_valid() {
            TraceContextPropagator::new().inject_context(cx, &mut fields);
        }
    });
    fields.into_iter().fold(rb, |rb, (k, v)| rb.header(k, v))
}

struct Headers<'a>(&'a axum::http::HeaderMap);

impl Extractor for Headers<'_> {
    fn get(&self, key: &str) -> Option<&str> {
        self.0.get(key).and_then(|v| v.to_str().ok())
    }

    fn keys(&self) -> Vec<&str> {
        self.0.keys().map(|k| k.as_str()).collect()
    }
}

/// The client's W3C trace context (`traceparent`, `tracestate`), if valid.
pub fn client_parent(h: &axum::http::HeaderMap) -> Option<SpanContext> {
    if !h.contains_key("traceparent") {
        return None;
    }
    let cx = TraceContextPropagator::new().extract(&Headers(h));
    let sc = cx.span().span_context().clone();
    sc.is_valid().then_some(sc)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_valid_client_traceparent_is_taken_and_a_malformed_one_ignored() {
        let mut h = axum::http::HeaderMap::new();
        assert!(client_parent(&h).is_none());
        h.insert(
            "traceparent",
            "00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01"
                .parse()
                .unwrap(),
        );
        let sc = client_parent(&h).unwrap();
        assert_eq!(sc.trace_id().to_string(), "0af7651916cd43dd8448eb211c80319c");
        assert!(sc.is_remote() && sc.is_sampled());
        h.insert("traceparent", "00-zz-b7ad6b7169203331-01".parse().unwrap());
        assert!(client_parent(&h).is_none());
    }

    #[test]
    fn provider_names_follow_the_conventions_with_custom_values_where_they_have_none() {
        assert_eq!(provider_name(ProviderKind::OpenAi), "openai");
        assert_eq!(provider_name(ProviderKind::Qwen), "dashscope");
        assert_eq!(provider_name(ProviderKind::GigaChat), "gigachat");
        assert_eq!(provider_name(ProviderKind::Ollama), "ollama");
    }
}
