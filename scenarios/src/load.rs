//! The load generator: a phase's requests against the gateway (closed model with N workers, or an open model at a
//! fixed rate), each recorded as a [`Sample`] with what the client saw.

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;

use serde::Serialize;
use serde_json::{json, Value};
use tokio::sync::Semaphore;
use tokio::time::Instant;

use crate::format::{Load, Pacing, Route, Stop, StreamEnd};
use crate::progress::Progress;

/// One request as the client saw it.
#[derive(Debug, Clone, Serialize)]
pub struct Sample {
    /// Name of the stage (phase or steady-state check) that sent it.
    #[serde(serialize_with = "shared_str")]
    pub stage: std::sync::Arc<str>,
    /// Start, in seconds since the scenario started.
    pub start: f64,
    /// Total time until the body was read to the end, in seconds.
    pub latency: f64,
    /// HTTP status; 0 when no response arrived.
    pub status: u16,
    /// `X-LLM-Actual-Provider`.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub provider: Option<String>,
    /// `X-LLM-Source`.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub source: Option<String>,
    /// `X-LLM-Fallbacks`.
    pub fallbacks: u32,
    /// For streams: how the stream ended.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub stream: Option<StreamEnd>,
    /// `error.code` of an error body (or of a stream's error event).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub error_code: Option<String>,
    /// `finish_reason` of the answer (the last one of a stream).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub finish_reason: Option<String>,
    /// `error.attempts[].provider` of an error body, in order.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub attempts: Vec<String>,
    /// A transport or body problem seen by the client.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub error: Option<String>,
    /// 2xx, a well-formed body and, for streams, a completed stream.
    pub ok: bool,
}

/// Where the load goes and how it is tagged.
#[derive(Debug, Clone)]
pub struct Target {
    /// HTTP client.
    pub http: reqwest::Client,
    /// Gateway API base URLs: request `i` goes to `gateway_urls[i % len]` (several replicas share the load).
    pub gateway_urls: Arc<[String]>,
    /// Scenario seed.
    pub seed: u64,
    /// Stage name stored in each sample.
    pub stage: std::sync::Arc<str>,
    /// Scenario start.
    pub t0: Instant,
}

/// Runs `load` to completion and returns its samples in completion order.
pub async fn run(target: &Target, load: &Load, progress: &Progress) -> Vec<Sample> {
    let issued = Arc::new(AtomicU64::new(0));
    let started = Instant::now();
    let more = {
        let issued = issued.clone();
        let stop = load.stop;
        move || -> Option<u64> {
            match stop {
                Stop::Count(n) => {
                    let i = issued.fetch_add(1, Ordering::Relaxed);
                    (i < n).then_some(i)
                }
                Stop::Duration(d) => (started.elapsed() < d).then(|| issued.fetch_add(1, Ordering::Relaxed)),
            }
        }
    };
    let (tx, mut rx) = tokio::sync::mpsc::unbounded_channel::<Sample>();
    match load.pacing {
        Pacing::Concurrency(n) => {
            for _ in 0..n {
                let (t, l, tx, more, p) = (
                    target.clone(),
                    load.clone(),
                    tx.clone(),
                    more.clone(),
                    progress.clone(),
                );
                tokio::spawn(async move {
                    while let Some(i) = more() {
                        let s = one(&t, &l, i).await;
                        p.tick(s.ok);
                        if tx.send(s).is_err() {
                            break;
                        }
                    }
                });
            }
        }
        Pacing::Rate {
            per_second,
            max_in_flight,
        } => {
            let permits = Arc::new(Semaphore::new(max_in_flight as usize));
            let mut tick = tokio::time::interval(std::time::Duration::from_secs_f64(1.0 / per_second));
            tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
            loop {
                tick.tick().await;
                let Some(i) = more() else { break };
                let Ok(permit) = permits.clone().acquire_owned().await else {
                    break;
                };
                let (t, l, tx, p) = (target.clone(), load.clone(), tx.clone(), progress.clone());
                tokio::spawn(async move {
                    let s = one(&t, &l, i).await;
                    p.tick(s.ok);
                    let _ = tx.send(s);
                    drop(permit);
                });
            }
        }
    }
    drop(tx);
    let mut out = Vec::new();
    while let Some(s) = rx.recv().await {
        out.push(s);
    }
    out
}

fn shared_str<S: serde::Serializer>(v: &std::sync::Arc<str>, s: S) -> Result<S::Ok, S::Error> {
    s.serialize_str(v)
}

fn header(resp: &reqwest::Response, name: &str) -> Option<String> {
    resp.headers()
        .get(name)
        .and_then(|v| v.to_str().ok())
        .map(str::to_string)
}

fn body_of(load: &Load, prompt: &str) -> Value {
    let mut b = match load.route {
        Route::Chat => {
            json!({"model": load.model, "stream": load.stream, "messages": [{"role": "user", "content": prompt}]})
        }
        Route::Responses => json!({"model": load.model, "stream": load.stream, "input": prompt}),
        Route::Messages => json!({
            "model": load.model, "stream": load.stream, "max_tokens": load.max_tokens.unwrap_or(256),
            "messages": [{"role": "user", "content": prompt}],
        }),
        Route::Assistants => json!({"prompt": prompt, "model": load.model}),
        Route::Embeddings => json!({"model": load.model, "input": prompt}),
        Route::Mcp => return mcp_body(load, prompt),
    };
    match (load.max_tokens, load.route) {
        (_, Route::Embeddings) | (None, _) => {}
        (Some(m), Route::Responses) => b["max_output_tokens"] = json!(m),
        (Some(m), _) => b["max_tokens"] = json!(m),
    }
    for (k, v) in &load.body {
        b[k] = v.clone();
    }
    b
}

/// Protocol metadata of a stateless (2026-07-28) MCP request.
const MCP_VERSION: &str = "2026-07-28";

/// A `tools/call` of `llm_generate`: the prompt, the load's model and `max_tokens`, its `X-LLM-Provider` header as
/// `provider`, and its `body` fields merged into the arguments.
fn mcp_body(load: &Load, prompt: &str) -> Value {
    let mut args = json!({"prompt": prompt, "model": load.model});
    if let Some(m) = load.max_tokens {
        args["max_tokens"] = json!(m);
    }
    if let Some((_, p)) = load
        .headers
        .iter()
        .find(|(k, _)| k.eq_ignore_ascii_case("x-llm-provider"))
    {
        args["provider"] = json!(p);
    }
    for (k, v) in &load.body {
        args[k] = v.clone();
    }
    json!({"jsonrpc": "2.0", "id": 1, "method": "tools/call", "params": {
        "name": "llm_generate",
        "arguments": args,
        "_meta": {
            "io.modelcontextprotocol/protocolVersion": MCP_VERSION,
            "io.modelcontextprotocol/clientCapabilities": {},
            "io.modelcontextprotocol/clientInfo": {"name": "llm-scenarios", "version": env!("CARGO_PKG_VERSION")},
        },
    }})
}

/// The JSON-RPC answer in an MCP response body: the body itself, or the first SSE `data:` event that is one.
fn mcp_message(text: &str) -> Option<Value> {
    if let Ok(v) = serde_json::from_str::<Value>(text) {
        return Some(v);
    }
    text.lines()
        .filter_map(|l| l.trim_end().strip_prefix("data:"))
        .filter_map(|d| serde_json::from_str::<Value>(d.trim()).ok())
        .find(|v| v.get("result").is_some() || v.get("error").is_some())
}

/// Fills `s` from an MCP answer: who answered from `structuredContent`; a tool error's gateway code (`code X` in
/// its message, else `tool_error`); a JSON-RPC error as `jsonrpc_<code>`.
fn record_mcp(s: &mut Sample, text: &str) {
    let Some(msg) = mcp_message(text) else {
        s.error = Some("2xx body is not an MCP answer".into());
        return;
    };
    if let Some(e) = msg.get("error") {
        let code = e.get("code").and_then(Value::as_i64).unwrap_or(0);
        s.error_code = Some(format!("jsonrpc_{code}"));
        return;
    }
    let r = &msg["result"];
    if r["isError"].as_bool() == Some(true) {
        let text = r.pointer("/content/0/text").and_then(Value::as_str).unwrap_or("");
        let code = text
            .split_once("code ")
            .map(|(_, rest)| {
                rest.chars()
                    .take_while(|c| c.is_ascii_alphanumeric() || *c == '_')
                    .collect::<String>()
            })
            .filter(|c| !c.is_empty());
        s.error_code = Some(code.unwrap_or_else(|| "tool_error".into()));
        return;
    }
    let out = &r["structuredContent"];
    s.provider = out["provider"].as_str().map(str::to_string);
    s.source = out["source"].as_str().map(str::to_string);
    s.fallbacks = out["fallbacks"]
        .as_u64()
        .and_then(|f| u32::try_from(f).ok())
        .unwrap_or(0);
    s.ok = out.is_object() && s.error.is_none();
}

/// The replica request `i` goes to (round robin).
fn gateway_of(t: &Target, i: u64) -> &str {
    let n = t.gateway_urls.len().max(1) as u64;
    t.gateway_urls
        .get(usize::try_from(i % n).unwrap_or(0))
        .map_or("", String::as_str)
}

/// Sends request number `i` and records it.
async fn one(t: &Target, load: &Load, i: u64) -> Sample {
    let mut rng = fastrand::Rng::with_seed(t.seed.wrapping_mul(0x9e37_79b9_7f4a_7c15).wrapping_add(i));
    let prompt = load
        .prompts
        .get(rng.usize(..load.prompts.len().max(1)))
        .map(String::as_str)
        .unwrap_or("hello");
    let path = match load.route {
        Route::Chat => "/v1/chat/completions",
        Route::Responses => "/v1/responses",
        Route::Messages => "/v1/messages",
        Route::Assistants => "/api/assistants/generate",
        Route::Embeddings => "/v1/embeddings",
        Route::Mcp => "/mcp",
    };
    let mut req = t
        .http
        .post(format!("{}{path}", gateway_of(t, i)))
        .timeout(load.timeout)
        .json(&body_of(load, prompt));
    if load.route == Route::Mcp {
        req = req
            .header("accept", "application/json, text/event-stream")
            .header("mcp-protocol-version", MCP_VERSION)
            .header("mcp-method", "tools/call")
            .header("mcp-name", "llm_generate");
    }
    for (k, v) in &load.headers {
        req = req.header(k, v);
    }
    let begin = Instant::now();
    let mut s = Sample {
        stage: t.stage.clone(),
        start: begin.duration_since(t.t0).as_secs_f64(),
        latency: 0.0,
        status: 0,
        provider: None,
        source: None,
        fallbacks: 0,
        stream: None,
        error_code: None,
        finish_reason: None,
        attempts: Vec::new(),
        error: None,
        ok: false,
    };
    match req.send().await {
        Err(e) => s.error = Some(short_error(&e)),
        Ok(mut resp) => {
            s.status = resp.status().as_u16();
            s.provider = header(&resp, "x-llm-actual-provider");
            s.source = header(&resp, "x-llm-source");
            s.fallbacks = header(&resp, "x-llm-fallbacks")
                .and_then(|v| v.parse().ok())
                .unwrap_or(0);
            let streamed = load.stream && resp.status().is_success();
            let mut body = Vec::new();
            loop {
                match resp.chunk().await {
                    Ok(Some(c)) => body.extend_from_slice(&c),
                    Ok(None) => break,
                    Err(e) => {
                        s.error = Some(short_error(&e));
                        break;
                    }
                }
            }
            let text = String::from_utf8_lossy(&body);
            if load.route == Route::Mcp && resp_ok(s.status) {
                record_mcp(&mut s, &text);
            } else if streamed {
                let (end, code) = classify_stream(load.route, &text);
                s.stream = Some(end);
                s.error_code = code;
                s.finish_reason = last_finish_reason(load.route, &text);
                s.ok = end == StreamEnd::Completed && s.error.is_none();
            } else {
                if load.stream {
                    s.stream = Some(StreamEnd::NotStreamed);
                }
                let v: Option<Value> = serde_json::from_str(&text).ok();
                if resp_ok(s.status) {
                    let well_formed = v.as_ref().is_some_and(|v| match load.route {
                        Route::Embeddings => v.get("data").is_some_and(Value::is_array),
                        _ => v.is_object(),
                    });
                    s.finish_reason = v.as_ref().and_then(|v| finish_of(load.route, v));
                    if !well_formed && s.error.is_none() {
                        s.error = Some("2xx body is not JSON".into());
                    }
                    s.ok = well_formed && s.error.is_none();
                } else if let Some(v) = v {
                    s.error_code = error_code_of(load.route, &v);
                    let attempts = v.pointer("/error/attempts").or_else(|| v.get("gateway_attempts"));
                    if let Some(list) = attempts.and_then(Value::as_array) {
                        s.attempts = list
                            .iter()
                            .filter_map(|a| a.get("provider").and_then(Value::as_str).map(str::to_string))
                            .collect();
                    }
                }
            }
        }
    }
    s.latency = begin.elapsed().as_secs_f64();
    s
}

fn resp_ok(status: u16) -> bool {
    (200..300).contains(&status)
}

fn short_error(e: &reqwest::Error) -> String {
    if e.is_timeout() {
        "client timeout".into()
    } else if e.is_connect() {
        "cannot connect to the gateway".into()
    } else if e.is_body() || e.is_decode() {
        "response body broke off".into()
    } else {
        "request failed".into()
    }
}

/// The `event:` name (empty when absent) and JSON `data:` of each event of an SSE body.
fn sse_events(text: &str) -> Vec<(&str, Option<Value>, bool)> {
    let mut out = Vec::new();
    let mut event = "";
    for line in text.lines() {
        let line = line.trim_end();
        if let Some(e) = line.strip_prefix("event:") {
            event = e.trim();
        } else if let Some(d) = line.strip_prefix("data:") {
            let d = d.trim();
            out.push((event, serde_json::from_str::<Value>(d).ok(), d == "[DONE]"));
        } else if line.is_empty() {
            event = "";
        }
    }
    out
}

/// The gateway's error code in an error body or error event: `error.code` (chat, Responses; also flat `code`),
/// Anthropic's `error.type` on Messages.
fn error_code_of(route: Route, v: &Value) -> Option<String> {
    let code = match route {
        Route::Messages => v.pointer("/error/type"),
        _ => v.pointer("/error/code").or_else(|| v.get("code")),
    };
    code.and_then(Value::as_str).map(str::to_string)
}

/// The answer's finish reason in chat terms (`stop`, `length`, `tool_calls`, `content_filter`), from a chat
/// completion or chunk, a Responses response object, or a Messages message (or its `message_delta`).
fn finish_of(route: Route, v: &Value) -> Option<String> {
    let reason = match route {
        Route::Responses => {
            let r = v.get("response").unwrap_or(v);
            match r.get("status").and_then(Value::as_str)? {
                "incomplete" => match r.pointer("/incomplete_details/reason").and_then(Value::as_str) {
                    Some("content_filter") => "content_filter",
                    _ => "length",
                },
                "completed" => {
                    let calls = r
                        .get("output")
                        .and_then(Value::as_array)
                        .is_some_and(|o| o.iter().any(|i| i["type"] == "function_call"));
                    if calls {
                        "tool_calls"
                    } else {
                        "stop"
                    }
                }
                _ => return None,
            }
        }
        Route::Messages => {
            let stop = v
                .get("stop_reason")
                .or_else(|| v.pointer("/delta/stop_reason"))
                .and_then(Value::as_str)?;
            match stop {
                "max_tokens" => "length",
                "tool_use" => "tool_calls",
                "refusal" => "content_filter",
                _ => "stop",
            }
        }
        _ => v.pointer("/choices/0/finish_reason").and_then(Value::as_str)?,
    };
    Some(reason.to_string())
}

/// The last finish reason of an SSE body's events.
fn last_finish_reason(route: Route, text: &str) -> Option<String> {
    sse_events(text)
        .iter()
        .rev()
        .filter_map(|(_, v, _)| v.as_ref())
        .find_map(|v| finish_of(route, v))
}

/// How an SSE body of `route` ended, and the first error event's code. Complete: chat's `data: [DONE]`,
/// Responses' `response.completed` (or `response.incomplete`), Messages' `message_stop`. An error: an `event:
/// error`, a data object with a top-level `error` (chat), `response.failed` (Responses) or `type: error`.
pub fn classify_stream(route: Route, text: &str) -> (StreamEnd, Option<String>) {
    let mut done = false;
    let mut error = false;
    let mut code = None;
    for (event, data, is_done) in sse_events(text) {
        let ty = data.as_ref().and_then(|v| v.get("type")).and_then(Value::as_str);
        let is_error = event == "error"
            || matches!(ty, Some("error" | "response.failed"))
            || data
                .as_ref()
                .is_some_and(|v| route == Route::Chat && v.get("error").is_some());
        if is_error {
            error = true;
            if code.is_none() {
                code = data.as_ref().and_then(|v| error_code_of(route, v));
            }
            continue;
        }
        done |= match route {
            Route::Responses => matches!(ty, Some("response.completed" | "response.incomplete")),
            Route::Messages => ty == Some("message_stop"),
            _ => is_done,
        };
    }
    let end = match (done, error) {
        (true, false) => StreamEnd::Completed,
        (false, true) => StreamEnd::ErrorEvent,
        (true, true) => StreamEnd::ErrorThenDone,
        (false, false) => StreamEnd::Cut,
    };
    (end, code)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn stream_endings() {
        let ok = "data: {\"choices\":[]}\n\ndata: [DONE]\n\n";
        assert_eq!(classify_stream(Route::Chat, ok).0, StreamEnd::Completed);
        let err =
            "data: {\"choices\":[]}\n\nevent: error\ndata: {\"error\":{\"code\":\"stream_interrupted\"}}\n\n";
        assert_eq!(
            classify_stream(Route::Chat, err),
            (StreamEnd::ErrorEvent, Some("stream_interrupted".into()))
        );
        assert_eq!(
            classify_stream(Route::Chat, "data: {\"choices\":[]}\n\n").0,
            StreamEnd::Cut
        );
        assert_eq!(
            classify_stream(Route::Chat, &format!("{err}data: [DONE]\n\n")).0,
            StreamEnd::ErrorThenDone
        );
    }

    #[test]
    fn responses_and_messages_stream_endings() {
        let created =
            "event: response.created\ndata: {\"type\":\"response.created\",\"sequence_number\":0}\n\n";
        let completed = "event: response.completed\ndata: {\"type\":\"response.completed\",\"response\":{\"status\":\"completed\",\"output\":[{\"type\":\"function_call\"}]}}\n\ndata: [DONE]\n\n";
        let ok = format!("{created}{completed}");
        assert_eq!(classify_stream(Route::Responses, &ok).0, StreamEnd::Completed);
        assert_eq!(
            last_finish_reason(Route::Responses, &ok).as_deref(),
            Some("tool_calls")
        );
        // [DONE] alone does not complete a Responses stream.
        assert_eq!(
            classify_stream(Route::Responses, &format!("{created}data: [DONE]\n\n")).0,
            StreamEnd::Cut
        );
        let failed = format!(
            "{created}event: error\ndata: {{\"type\":\"error\",\"code\":\"upstream_stream_broken\"}}\n\n\
             event: response.failed\ndata: {{\"type\":\"response.failed\"}}\n\n"
        );
        assert_eq!(
            classify_stream(Route::Responses, &failed),
            (StreamEnd::ErrorEvent, Some("upstream_stream_broken".into()))
        );

        let start = "event: message_start\ndata: {\"type\":\"message_start\"}\n\n";
        let delta = "event: message_delta\ndata: {\"type\":\"message_delta\",\"delta\":{\"stop_reason\":\"max_tokens\"}}\n\n";
        let stop = "event: message_stop\ndata: {\"type\":\"message_stop\"}\n\n";
        let ok = format!("{start}{delta}{stop}");
        assert_eq!(classify_stream(Route::Messages, &ok).0, StreamEnd::Completed);
        assert_eq!(
            last_finish_reason(Route::Messages, &ok).as_deref(),
            Some("length")
        );
        let err = format!(
            "{start}event: error\ndata: {{\"type\":\"error\",\"error\":{{\"type\":\"overloaded_error\"}}}}\n\n"
        );
        assert_eq!(
            classify_stream(Route::Messages, &err),
            (StreamEnd::ErrorEvent, Some("overloaded_error".into()))
        );
        assert_eq!(classify_stream(Route::Messages, start).0, StreamEnd::Cut);
    }

    #[test]
    fn finish_and_error_codes_per_route() {
        let incomplete =
            json!({"status": "incomplete", "incomplete_details": {"reason": "max_output_tokens"}});
        assert_eq!(
            finish_of(Route::Responses, &incomplete).as_deref(),
            Some("length")
        );
        let msg = json!({"type": "message", "stop_reason": "tool_use"});
        assert_eq!(finish_of(Route::Messages, &msg).as_deref(), Some("tool_calls"));
        let anthropic = json!({"type": "error", "error": {"type": "overloaded_error", "message": "x"}});
        assert_eq!(
            error_code_of(Route::Messages, &anthropic).as_deref(),
            Some("overloaded_error")
        );
        let openai = json!({"error": {"code": "all_providers_failed"}});
        assert_eq!(
            error_code_of(Route::Responses, &openai).as_deref(),
            Some("all_providers_failed")
        );
    }
}
