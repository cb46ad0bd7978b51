//! Qwen's native DashScope API: text generation (`result_format` text or message, SSE switched on by
//! `X-DashScope-SSE: enable`, both `incremental_output` settings) and text embeddings
//! (PROVIDERS.md §3.2–3.5).

use super::shared::embedding_dims;
use super::shared::{after_chunks, fault_delay, first_half};
use crate::chat::{content_text, parse_messages, Answer, ChatRequest, Finish, Message, ToolChoice};
use crate::content::{count_tokens, embedding, hex_id, uuid_like};
use crate::fault::{FaultKind, FaultSpec};
use crate::http::{bearer, body_object, delayed, header, json, raw};
use crate::provider::Provider;
use crate::server::Faults;
use crate::state::State;
use crate::wire::{Request, ResponseTemplate};
use serde_json::{json, Map, Value};

fn request_id(state: &State, req: &Request) -> String {
    uuid_like(&[&state.request_seed(&req.body).to_le_bytes(), b"dashscope"])
}

/// A native error: `{code, message, request_id}`.
fn error(state: &State, req: &Request, status: u16, code: &str, message: &str) -> ResponseTemplate {
    let rid = request_id(state, req);
    json(
        status,
        &json!({"code": code, "message": message, "request_id": rid}),
    )
    .insert_header("x-request-id", rid)
}

fn fault_error(state: &State, req: &Request, f: &FaultSpec) -> ResponseTemplate {
    let (status, code, message) = match f.fault {
        FaultKind::RateLimited => (
            429,
            "Throttling.RateQuota",
            "Requests rate limit exceeded, please try again later.",
        ),
        FaultKind::QuotaExhausted => (
            400,
            "Arrearage",
            "Access denied, please make sure your account is in good standing.",
        ),
        FaultKind::Overloaded => (
            503,
            "ServiceUnavailable",
            "Service temporarily unavailable, please try again later.",
        ),
        FaultKind::Auth => (401, "InvalidApiKey", "Invalid API-key provided."),
        FaultKind::BadRequest => (
            400,
            "InvalidParameter",
            "Required parameter(s) missing or invalid, please check the request parameters.",
        ),
        FaultKind::ContextLength => (
            400,
            "InvalidParameter",
            "Range of input length should be [1, 30720]",
        ),
        FaultKind::ContentFilter => (
            400,
            "DataInspectionFailed",
            "Input or output data may contain inappropriate content.",
        ),
        _ => (
            500,
            "InternalError",
            "An internal error has occured, please try again later or contact service support.",
        ),
    };
    let mut t = error(state, req, status, code, message);
    if let (Some(s), FaultKind::RateLimited | FaultKind::Overloaded) = (f.retry_after_s, f.fault) {
        t = t.insert_header("retry-after", s.to_string());
    }
    t
}

/// Reads credentials and the JSON body, or answers the native error.
fn read(state: &State, req: &Request) -> Result<Map<String, Value>, ResponseTemplate> {
    if bearer(req).is_none() {
        return Err(error(state, req, 401, "InvalidApiKey", "No API-key provided."));
    }
    let body = body_object(req).map_err(|_| {
        error(
            state,
            req,
            400,
            "InvalidParameter",
            "Required body invalid, please check the request body format.",
        )
    })?;
    match body.get("model").and_then(Value::as_str) {
        None | Some("") => Err(error(
            state,
            req,
            400,
            "BadRequest.EmptyModel",
            "Required parameter \"model\" missing from request.",
        )),
        Some(m) if Provider::Qwen.find_model(m).is_none() => {
            Err(error(state, req, 400, "InvalidParameter", "Model not exist."))
        }
        Some(_) => Ok(body),
    }
}

/// Builds the neutral chat request from `input` (`messages`, or `prompt` + `history`) and `parameters`.
fn chat_request(body: &Map<String, Value>) -> Result<(ChatRequest, bool, bool), &'static str> {
    let input = body.get("input").and_then(Value::as_object);
    let params = body
        .get("parameters")
        .and_then(Value::as_object)
        .cloned()
        .unwrap_or_default();
    let messages = match (
        input.and_then(|i| i.get("messages")),
        input.and_then(|i| i.get("prompt")),
    ) {
        (Some(m), _) => parse_messages(Some(m))
            .map_err(|_| "Either \"prompt\" or \"messages\" must exist and cannot both be none")?,
        (None, Some(p)) => vec![Message {
            role: "user".into(),
            text: content_text(Some(p)),
        }],
        (None, None) => return Err("Either \"prompt\" or \"messages\" must exist and cannot both be none"),
    };
    let mut chat = ChatRequest {
        model: body.get("model").and_then(Value::as_str).unwrap_or("").into(),
        messages,
        stream: false,
        include_usage: false,
        max_tokens: params.get("max_tokens").and_then(Value::as_u64),
        tools: Vec::new(),
        tool_choice: ToolChoice::Auto,
        temperature: params.get("temperature").and_then(Value::as_f64),
        format: crate::structured::response_format(params.get("response_format"))
            .map_err(|_| "Invalid parameter: response_format must be {\"type\": \"text\" | \"json_object\" | \"json_schema\", ...}")?,
    };
    if let Some(tools) = params.get("tools") {
        let mut m = Map::new();
        m.insert("model".into(), json!(chat.model));
        m.insert("messages".into(), json!([{"role": "user", "content": "x"}]));
        m.insert("tools".into(), tools.clone());
        if let Some(tc) = params.get("tool_choice") {
            m.insert("tool_choice".into(), tc.clone());
        }
        if let Ok(parsed) = ChatRequest::parse(&m, false) {
            chat.tools = parsed.tools;
            chat.tool_choice = parsed.tool_choice;
        }
    }
    let message_format =
        params.get("result_format").and_then(Value::as_str) == Some("message") || !chat.tools.is_empty();
    let incremental = params
        .get("incremental_output")
        .and_then(Value::as_bool)
        .unwrap_or(false);
    Ok((chat, message_format, incremental))
}

fn usage(a: &Answer, output_tokens: u32) -> Value {
    json!({"input_tokens": a.prompt_tokens, "output_tokens": output_tokens, "total_tokens": a.prompt_tokens + output_tokens})
}

fn output(a: &Answer, message_format: bool, text: &str, finish: &str, with_tool: bool) -> Value {
    if !message_format {
        return json!({"text": text, "finish_reason": finish});
    }
    let mut message = json!({"role": "assistant", "content": text});
    if let (true, Some((name, args))) = (with_tool, &a.tool_call) {
        message["tool_calls"] = json!([{"index": 0, "id": format!("call_{}", hex_id(&[name.as_bytes()], 24)),
            "type": "function", "function": {"name": name, "arguments": args.to_string()}}]);
    }
    json!({"choices": [{"finish_reason": finish, "message": message}]})
}

fn finish_name(a: &Answer) -> &'static str {
    match a.finish {
        Finish::Stop => "stop",
        Finish::Length => "length",
        Finish::ToolCalls => "tool_calls",
    }
}

fn event(out: &mut String, id: usize, kind: &str, status: u16, data: &Value) {
    out.push_str(&format!(
        "id:{id}\nevent:{kind}\n:HTTP_STATUS/{status}\ndata:{data}\n\n"
    ));
}

/// `POST /api/v1/services/aigc/text-generation/generation`.
pub(crate) fn generation(state: &State, req: &Request, faults: &Faults<'_>) -> ResponseTemplate {
    let latency = state.settings().latency_ms;
    let body = match read(state, req) {
        Ok(b) => b,
        Err(t) => return delayed(t, latency),
    };
    let (chat, message_format, incremental) = match chat_request(&body) {
        Ok(c) => c,
        Err(m) => return delayed(error(state, req, 400, "InvalidParameter", m), latency),
    };
    let limit = Provider::Qwen
        .find_model(&chat.model)
        .map(|m| m.context)
        .unwrap_or(u32::MAX);
    if chat.prompt_tokens() > limit {
        let msg = format!("Range of input length should be [1, {limit}]");
        return delayed(error(state, req, 400, "InvalidParameter", &msg), latency);
    }
    let fault = faults.decide();
    let delay = latency + fault_delay(fault.as_ref());
    let streaming = header(req, "x-dashscope-sse").is_some_and(|v| v.eq_ignore_ascii_case("enable"))
        || header(req, "accept").is_some_and(|v| v.contains("text/event-stream"));
    let rid = request_id(state, req);
    let a = chat.answer(Provider::Qwen);
    let kind = fault.as_ref().map(|f| f.fault);
    let after = after_chunks(fault.as_ref());
    let complete = || {
        json!({"output": output(&a, message_format, &a.text, finish_name(&a), true),
        "usage": usage(&a, a.completion_tokens), "request_id": rid})
    };
    let t = match kind {
        None | Some(FaultKind::Slow) if streaming => {
            sse(stream(&a, message_format, incremental, &rid, None, usize::MAX))
        }
        None | Some(FaultKind::Slow) => json(200, &complete()),
        Some(k @ (FaultKind::TruncatedStream | FaultKind::StreamError | FaultKind::Malformed))
            if streaming =>
        {
            sse(stream(&a, message_format, incremental, &rid, Some(k), after))
        }
        Some(FaultKind::Malformed | FaultKind::TruncatedStream) => {
            raw(200, first_half(&complete().to_string()), "application/json")
        }
        Some(_) => fault_error(
            state,
            req,
            fault.as_ref().unwrap_or(&FaultSpec::new(FaultKind::ServerError)),
        ),
    };
    delayed(t.insert_header("x-request-id", rid.as_str()), delay)
}

fn sse(body: String) -> ResponseTemplate {
    raw(200, body, "text/event-stream;charset=UTF-8").insert_header("cache-control", "no-cache")
}

fn stream(
    a: &Answer,
    message_format: bool,
    incremental: bool,
    rid: &str,
    fault: Option<FaultKind>,
    limit: usize,
) -> String {
    let mut out = String::new();
    let pieces = if a.tool_call.is_some() {
        Vec::new()
    } else {
        a.pieces()
    };
    let mut so_far = String::new();
    let mut n = 0;
    for (i, p) in pieces.iter().enumerate() {
        if fault.is_some() && i >= limit {
            break;
        }
        so_far.push_str(p);
        n = i + 1;
        let text = if incremental { p.as_str() } else { so_far.as_str() };
        let data = json!({"output": output(a, message_format, text, "null", false),
            "usage": usage(a, count_tokens(&so_far)), "request_id": rid});
        event(&mut out, n, "result", 200, &data);
    }
    match fault {
        Some(FaultKind::TruncatedStream) => return out,
        Some(FaultKind::Malformed) => {
            out.push_str(&format!(
                "id:{}\nevent:result\n:HTTP_STATUS/200\ndata:{{\"output\":{{\"choices\":[{{\"mess\n\n",
                n + 1
            ));
            return out;
        }
        Some(_) => {
            let data = json!({"code": "InternalError", "message": "An internal error has occured, please try again later or contact service support.", "request_id": rid});
            event(&mut out, n + 1, "error", 500, &data);
            return out;
        }
        None => {}
    }
    let text = if incremental || a.tool_call.is_some() {
        ""
    } else {
        a.text.as_str()
    };
    let data = json!({"output": output(a, message_format, text, finish_name(a), true),
        "usage": usage(a, a.completion_tokens), "request_id": rid});
    event(&mut out, n + 1, "result", 200, &data);
    out
}

/// `POST /api/v1/services/embeddings/text-embedding/text-embedding`.
pub(crate) fn embedding_route(state: &State, req: &Request, faults: &Faults<'_>) -> ResponseTemplate {
    let latency = state.settings().latency_ms;
    let body = match read(state, req) {
        Ok(b) => b,
        Err(t) => return delayed(t, latency),
    };
    let texts: Vec<String> = match body.get("input").and_then(|i| i.get("texts")) {
        Some(Value::Array(a)) if !a.is_empty() && a.iter().all(Value::is_string) => {
            a.iter().filter_map(Value::as_str).map(str::to_string).collect()
        }
        Some(Value::String(s)) => vec![s.clone()],
        _ => {
            return delayed(
                error(
                    state,
                    req,
                    400,
                    "InvalidParameter",
                    "Input should be a non-empty list of strings in input.texts.",
                ),
                latency,
            )
        }
    };
    let fault = faults.decide();
    let delay = latency + fault_delay(fault.as_ref());
    if let Some(f) = fault.filter(|f| f.fault != FaultKind::Slow) {
        return delayed(fault_error(state, req, &f), delay);
    }
    let model = body.get("model").and_then(Value::as_str).unwrap_or("");
    let dims = body
        .get("parameters")
        .and_then(|p| p.get("dimension"))
        .and_then(Value::as_u64)
        .map(|d| d as usize)
        .unwrap_or_else(|| embedding_dims(model))
        .clamp(1, 8192);
    let items: Vec<Value> = texts
        .iter()
        .enumerate()
        .map(|(i, t)| json!({"text_index": i, "embedding": embedding(Provider::Qwen, t, dims)}))
        .collect();
    let tokens: u32 = texts.iter().map(|t| count_tokens(t)).sum();
    let rid = request_id(state, req);
    let out = json!({"output": {"embeddings": items}, "usage": {"total_tokens": tokens}, "request_id": rid});
    delayed(json(200, &out).insert_header("x-request-id", rid.as_str()), delay)
}

/// A native path that does not exist.
pub(crate) fn not_found(state: &State, req: &Request) -> ResponseTemplate {
    error(
        state,
        req,
        404,
        "InvalidURL",
        "Invalid URL provided in your request.",
    )
}
