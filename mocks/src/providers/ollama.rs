//! Ollama's native API: `/api/chat` and `/api/generate` (NDJSON streams, on by default), `/api/embed`,
//! `/api/embeddings`, `/api/tags`, `/api/version`, `/api/ps`, `/api/show` (PROVIDERS.md §5).

use super::shared::{after_chunks, fault_delay, first_half};
use super::shared::{embedding_dims, embedding_inputs};
use super::{PathMatch, Route as RouteDef};
use crate::chat::{Answer, ChatRequest, Finish};
use crate::content::{count_tokens, embedding, fnv1a, hex_id, rfc3339_nanos};
use crate::fault::{FaultKind, FaultSpec};
use crate::http::{body_object, delayed, json, raw, BodyError};
use crate::provider::Provider;
use crate::server::Faults;
use crate::state::State;
use crate::structured::OutputFormat;
use crate::wire::{Request, ResponseTemplate};
use serde_json::{json, Map, Value};
use std::time::SystemTime;

/// The answer Ollama's fake gives under a `content_filter` fault (local models refuse in text).
pub(crate) const REFUSAL: &str = "I'm sorry, but I can't help with that.";

/// The native routes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Route {
    Root,
    Chat,
    Generate,
    Embed,
    Embeddings,
    Tags,
    Version,
    Ps,
    Show,
}

impl Route {
    pub(crate) fn is_inference(self) -> bool {
        matches!(
            self,
            Route::Chat | Route::Generate | Route::Embed | Route::Embeddings
        )
    }
}

pub(crate) fn routes() -> Vec<RouteDef> {
    use super::Endpoint::Ollama as O;
    use PathMatch::Exact;
    let r = |method, path, route| RouteDef {
        method,
        path: Exact(path),
        endpoint: O(route),
    };
    vec![
        r("GET", "/", Route::Root),
        r("HEAD", "/", Route::Root),
        r("POST", "/api/chat", Route::Chat),
        r("POST", "/api/generate", Route::Generate),
        r("POST", "/api/embed", Route::Embed),
        r("POST", "/api/embeddings", Route::Embeddings),
        r("GET", "/api/tags", Route::Tags),
        r("GET", "/api/version", Route::Version),
        r("GET", "/api/ps", Route::Ps),
        r("POST", "/api/show", Route::Show),
    ]
}

fn error(status: u16, message: &str) -> ResponseTemplate {
    json(status, &json!({"error": message}))
}

fn fault_error(f: &FaultSpec) -> ResponseTemplate {
    let t = match f.fault {
        FaultKind::RateLimited => error(429, "too many requests"),
        FaultKind::QuotaExhausted => error(
            429,
            "you have reached your usage limit, please upgrade or wait for the limit to reset",
        ),
        FaultKind::Overloaded => error(
            503,
            "server busy, please try again.  maximum pending requests exceeded",
        ),
        FaultKind::Auth => error(401, "unauthorized"),
        FaultKind::BadRequest => error(400, "invalid options"),
        FaultKind::ContextLength => error(400, "the input length exceeds the context length"),
        _ => error(500, "llama runner process has terminated: exit status 2"),
    };
    match (f.retry_after_s, f.fault) {
        (Some(s), FaultKind::RateLimited | FaultKind::Overloaded) => {
            t.insert_header("retry-after", s.to_string())
        }
        _ => t,
    }
}

/// Reads the body and checks the model, or answers Ollama's error.
fn read(req: &Request) -> Result<(Map<String, Value>, String), ResponseTemplate> {
    let body = body_object(req).map_err(|e| match e {
        BodyError::Syntax(m) => error(400, &m),
        BodyError::NotObject => error(400, "json: cannot unmarshal into Go value of type api.Request"),
    })?;
    let model = match body
        .get("model")
        .or_else(|| body.get("name"))
        .and_then(Value::as_str)
    {
        None | Some("") => return Err(error(400, "model is required")),
        Some(m) => m.to_string(),
    };
    if Provider::Ollama.find_model(&model).is_none() {
        return Err(error(
            404,
            &format!("model \"{model}\" not found, try pulling it first"),
        ));
    }
    Ok((body, model))
}

/// Answers a native route.
pub(crate) fn handle(state: &State, route: Route, req: &Request, faults: &Faults<'_>) -> ResponseTemplate {
    let latency = state.settings().latency_ms;
    let t = match route {
        Route::Root => raw(200, "Ollama is running", "text/plain; charset=utf-8"),
        Route::Version => json(200, &json!({"version": "0.12.6"})),
        Route::Tags => json(200, &json!({"models": tags()})),
        Route::Ps => json(200, &json!({"models": []})),
        Route::Show => match read(req) {
            Ok((_, model)) => json(200, &show(&model)),
            Err(t) => t,
        },
        Route::Chat | Route::Generate | Route::Embed | Route::Embeddings => {
            return match read(req) {
                Ok((body, model)) => {
                    let fault = faults.decide();
                    let delay = latency + fault_delay(fault.as_ref());
                    delayed(inference(route, &body, &model, fault), delay)
                }
                Err(t) => delayed(t, latency),
            };
        }
    };
    delayed(t, latency)
}

fn digest(name: &str) -> String {
    hex_id(&[name.as_bytes(), b"digest"], 64)
}

fn details(name: &str) -> Value {
    let family = name
        .split([':', '.'])
        .next()
        .unwrap_or(name)
        .trim_end_matches(char::is_numeric)
        .to_string();
    json!({"parent_model": "", "format": "gguf", "family": family, "families": [family],
        "parameter_size": if name.starts_with("qwen2.5") { "7.6B" } else { "3.2B" }, "quantization_level": "Q4_K_M"})
}

fn tags() -> Vec<Value> {
    Provider::Ollama
        .models()
        .iter()
        .map(|m| {
            json!({"name": m.id, "model": m.id, "modified_at": "2025-01-15T10:00:00.000000000Z",
                "size": 2_019_393_189u64 - (fnv1a(&[m.id.as_bytes()]) % 1_000_000_000), "digest": digest(m.id),
                "details": details(m.id)})
        })
        .collect()
}

fn show(model: &str) -> Value {
    json!({"license": "fake license", "modelfile": format!("FROM {model}\n"), "parameters": "stop \"<|eot_id|>\"",
        "template": "{{ .Prompt }}", "details": details(model), "model_info": {"general.architecture": "llama"},
        "capabilities": ["completion", "tools"], "modified_at": "2025-01-15T10:00:00.000000000Z"})
}

fn now() -> String {
    rfc3339_nanos(SystemTime::now())
}

fn stats(a: &Answer) -> Map<String, Value> {
    let mut m = Map::new();
    let eval = u64::from(a.completion_tokens);
    m.insert(
        "total_duration".into(),
        json!(5_043_500_667u64 / 10 + eval * 20_000_000),
    );
    m.insert("load_duration".into(), json!(5_025_959u64));
    m.insert("prompt_eval_count".into(), json!(a.prompt_tokens));
    m.insert("prompt_eval_duration".into(), json!(325_953_000u64));
    m.insert("eval_count".into(), json!(a.completion_tokens));
    m.insert("eval_duration".into(), json!(eval * 20_000_000));
    m
}

fn done_reason(a: &Answer) -> &'static str {
    if a.finish == Finish::Length {
        "length"
    } else {
        "stop"
    }
}

fn inference(
    route: Route,
    body: &Map<String, Value>,
    model: &str,
    fault: Option<FaultSpec>,
) -> ResponseTemplate {
    let kind = fault.as_ref().map(|f| f.fault);
    if let Some(f) = fault.as_ref().filter(|f| {
        !matches!(
            f.fault,
            FaultKind::Slow
                | FaultKind::ContentFilter
                | FaultKind::Malformed
                | FaultKind::TruncatedStream
                | FaultKind::StreamError
        ) || matches!(route, Route::Embed | Route::Embeddings) && f.fault != FaultKind::Slow
    }) {
        return fault_error(f);
    }
    match route {
        Route::Embed => return embed(body, model),
        Route::Embeddings => {
            let prompt = body.get("prompt").and_then(Value::as_str).unwrap_or("");
            return json(
                200,
                &json!({"embedding": embedding(Provider::Ollama, prompt, embedding_dims(model))}),
            );
        }
        _ => {}
    }
    let chat = match chat_request(route, body) {
        Ok(c) => c,
        Err(m) => return error(400, &m),
    };
    let mut a = chat.answer(Provider::Ollama);
    if kind == Some(FaultKind::ContentFilter) {
        a.tool_call = None;
        a.text = REFUSAL.into();
        a.completion_tokens = count_tokens(REFUSAL);
        a.finish = Finish::Stop;
    }
    if route == Route::Generate && chat.prompt().is_empty() {
        return json(
            200,
            &json!({"model": model, "created_at": now(), "response": "", "done": true, "done_reason": "load"}),
        );
    }
    let line = |content: &str, tool: bool, done: bool| -> Value {
        let mut l = json!({"model": model, "created_at": now()});
        if route == Route::Chat {
            let mut msg = json!({"role": "assistant", "content": content});
            if let (true, Some((name, args))) = (tool, &a.tool_call) {
                msg["tool_calls"] = json!([{"function": {"name": name, "arguments": args}}]);
            }
            l["message"] = msg;
        } else {
            l["response"] = json!(content);
        }
        l["done"] = json!(done);
        if done {
            l["done_reason"] = json!(done_reason(&a));
            for (k, v) in stats(&a) {
                l[k] = v;
            }
            if route == Route::Generate {
                l["context"] = json!([128_006, 882, 128_007, 271]);
            }
        }
        l
    };
    if !chat.stream {
        let full = line(&a.text, true, true);
        return match kind {
            Some(FaultKind::Malformed | FaultKind::TruncatedStream) => raw(
                200,
                first_half(&full.to_string()),
                "application/json; charset=utf-8",
            ),
            Some(FaultKind::StreamError) => error(500, "llama runner process has terminated: exit status 2"),
            _ => json(200, &full),
        };
    }
    let after = after_chunks(fault.as_ref());
    let mut out = String::new();
    let mut push = |v: Value| {
        out.push_str(&v.to_string());
        out.push('\n');
    };
    let pieces = if a.tool_call.is_some() {
        vec![String::new()]
    } else {
        a.pieces()
    };
    let broken = matches!(
        kind,
        Some(FaultKind::Malformed | FaultKind::TruncatedStream | FaultKind::StreamError)
    );
    for (i, p) in pieces.iter().enumerate() {
        if broken && i >= after {
            break;
        }
        push(line(p, true, false));
    }
    match kind {
        Some(FaultKind::TruncatedStream) => {}
        Some(FaultKind::StreamError) => {
            push(json!({"error": "an error was encountered while running the model: unexpected EOF"}))
        }
        Some(FaultKind::Malformed) => out.push_str("{\"model\":\"broken\",\"message\":{\"content\":\"tru\n"),
        _ => push(line("", false, true)),
    }
    raw(200, out, "application/x-ndjson")
}

fn chat_request(route: Route, body: &Map<String, Value>) -> Result<ChatRequest, String> {
    let mut m = body.clone();
    if route == Route::Generate {
        let prompt = body.get("prompt").and_then(Value::as_str).unwrap_or("");
        let mut messages = Vec::new();
        if let Some(system) = body.get("system").and_then(Value::as_str) {
            messages.push(json!({"role": "system", "content": system}));
        }
        messages.push(json!({"role": "user", "content": prompt}));
        m.insert("messages".into(), Value::Array(messages));
    }
    if m.get("messages")
        .is_some_and(|v| v.as_array().is_some_and(Vec::is_empty))
    {
        // An empty chat loads the model, as with Ollama.
        m.insert("messages".into(), json!([{"role": "user", "content": ""}]));
    }
    // Ollama's structured output is `format`: "json" or a JSON schema object (`response_format` is /v1 only).
    m.remove("response_format");
    let format = match body.get("format") {
        None | Some(Value::Null) => OutputFormat::Text,
        Some(Value::String(s)) if s.is_empty() => OutputFormat::Text,
        Some(Value::String(s)) if s == "json" => OutputFormat::JsonObject,
        Some(schema @ Value::Object(_)) => OutputFormat::JsonSchema {
            name: "format".into(),
            schema: schema.clone(),
        },
        Some(Value::String(s)) => {
            return Err(format!(
                "invalid format: {s:?}: expected \"json\" or a JSON schema"
            ))
        }
        Some(_) => return Err("invalid JSON schema in format".into()),
    };
    let mut chat = ChatRequest::parse(&m, true).map_err(|i| i.message)?;
    chat.format = format;
    Ok(chat)
}

fn embed(body: &Map<String, Value>, model: &str) -> ResponseTemplate {
    let inputs = match embedding_inputs(body.get("input")) {
        Ok(i) => i,
        Err(i) => return error(400, &i.message),
    };
    let dims = body
        .get("dimensions")
        .and_then(Value::as_u64)
        .map(|d| d as usize)
        .unwrap_or_else(|| embedding_dims(model));
    let vectors: Vec<Vec<f32>> = inputs
        .iter()
        .map(|t| embedding(Provider::Ollama, t, dims.clamp(1, 8192)))
        .collect();
    let tokens: u32 = inputs.iter().map(|t| count_tokens(t)).sum();
    json(
        200,
        &json!({"model": model, "embeddings": vectors, "total_duration": 14_143_917u64,
        "load_duration": 1_019_500u64, "prompt_eval_count": tokens}),
    )
}
