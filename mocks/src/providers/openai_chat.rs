//! `POST .../chat/completions` of the OpenAI-shaped APIs: plain JSON and SSE streams, tool calls,
//! usage (top level, or inside `choices[0]` for Moonshot), and the stream faults.

use super::openai_errors::{render, stream_error_event, Dialect, Problem};
use super::openai_misc::{common_headers, request_or_problem};
use super::shared::{after_chunks, fault_delay, first_half};
use crate::chat::{Answer, ChatRequest, Invalid};
use crate::content::{hex_id, unix_now, uuid_like};
use crate::fault::{FaultKind, FaultSpec};
use crate::http::{delayed, json, raw, sse, sse_data};
use crate::server::Faults;
use crate::state::State;
use crate::wire::{Request, ResponseTemplate};
use serde_json::{json, Value};

/// Ids and stamps shared by every chunk of one answer.
struct Frame {
    d: Dialect,
    id: String,
    created: u64,
    model: String,
}

impl Frame {
    fn new(state: &State, d: Dialect, req: &Request, model: &str) -> Frame {
        let seed = state.request_seed(&req.body).to_le_bytes();
        let id = match d {
            Dialect::QwenCompat => format!("chatcmpl-{}", uuid_like(&[&seed])),
            Dialect::OllamaV1 => format!("chatcmpl-{}", state.request_seed(&req.body) % 1000),
            _ => format!("chatcmpl-{}", hex_id(&[&seed], 29)),
        };
        Frame {
            d,
            id,
            created: unix_now(),
            model: model.to_string(),
        }
    }

    fn base(&self, object: &str) -> serde_json::Map<String, Value> {
        let mut m = serde_json::Map::new();
        m.insert("id".into(), json!(self.id));
        m.insert("object".into(), json!(object));
        m.insert("created".into(), json!(self.created));
        m.insert("model".into(), json!(self.model));
        if self.d == Dialect::OpenAi {
            m.insert("system_fingerprint".into(), json!("fp_fake0001"));
        }
        m
    }
}

fn usage(a: &Answer) -> Value {
    json!({
        "prompt_tokens": a.prompt_tokens,
        "completion_tokens": a.completion_tokens,
        "total_tokens": a.total_tokens(),
        "prompt_tokens_details": {"cached_tokens": 0},
        "completion_tokens_details": {"reasoning_tokens": 0},
    })
}

fn tool_call_id(f: &Frame) -> String {
    format!("call_{}", hex_id(&[f.id.as_bytes(), b"tool"], 24))
}

/// Handles a chat completion.
pub(crate) fn chat(state: &State, d: Dialect, req: &Request, faults: &Faults<'_>) -> ResponseTemplate {
    let latency = state.settings().latency_ms;
    let chat = match request_or_problem(d, req).and_then(|body| {
        unsupported(d, &body)?;
        ChatRequest::parse(&body, false)
            .map_err(Problem::Invalid)
            .and_then(|c| validate(d, c))
    }) {
        Ok(c) => c,
        Err(p) => return delayed(render(state, d, &p), latency),
    };
    let fault = faults.decide();
    let delay = latency + fault_delay(fault.as_ref());
    let frame = Frame::new(state, d, req, &chat.model);
    let mut answer = chat.answer(d.provider());
    let kind = fault.as_ref().map(|f| f.fault);
    let after = after_chunks(fault.as_ref());
    let filtered = kind == Some(FaultKind::ContentFilter);
    if filtered {
        if matches!(d, Dialect::Kimi | Dialect::QwenCompat) {
            return delayed(
                render(
                    state,
                    d,
                    &Problem::Fault(fault.unwrap_or(FaultSpec::new(FaultKind::ContentFilter))),
                ),
                delay,
            );
        }
        answer.tool_call = None;
        answer.text = if d == Dialect::OllamaV1 {
            "I'm sorry, but I can't help with that.".into()
        } else {
            String::new()
        };
        answer.completion_tokens = crate::content::count_tokens(&answer.text);
    }
    let t = match kind {
        None | Some(FaultKind::Slow) | Some(FaultKind::ContentFilter) if chat.stream => sse(stream(
            &frame,
            &answer,
            &chat,
            filtered,
            StreamEnd::Done,
            usize::MAX,
        )),
        None | Some(FaultKind::Slow) | Some(FaultKind::ContentFilter) => {
            json(200, &complete(&frame, &answer, filtered))
        }
        Some(FaultKind::Malformed) if chat.stream => {
            sse(stream(&frame, &answer, &chat, false, StreamEnd::Garbage, after))
        }
        Some(FaultKind::TruncatedStream) if chat.stream => {
            sse(stream(&frame, &answer, &chat, false, StreamEnd::Cut, after))
        }
        Some(FaultKind::Malformed | FaultKind::TruncatedStream) => raw(
            200,
            first_half(&complete(&frame, &answer, false).to_string()),
            "application/json",
        ),
        Some(FaultKind::StreamError) if chat.stream => {
            sse(stream(&frame, &answer, &chat, false, StreamEnd::Error, after))
        }
        Some(_) => render(
            state,
            d,
            &Problem::Fault(fault.unwrap_or(FaultSpec::new(FaultKind::ServerError))),
        ),
    };
    delayed(common_headers(state, d, t), delay)
}

/// Options a provider rejects although OpenAI accepts them (PROVIDERS.md §2, §5).
fn unsupported(d: Dialect, body: &serde_json::Map<String, Value>) -> Result<(), Problem> {
    let bad = |param, msg: &str| Err(Problem::Invalid(Invalid::new(Some(param), msg)));
    match d {
        Dialect::Kimi if body.contains_key("functions") => bad(
            "functions",
            "Invalid request: functions is not supported, please use tools instead",
        ),
        Dialect::Kimi if body.get("tool_choice").and_then(Value::as_str) == Some("required") => bad(
            "tool_choice",
            "Invalid request: tool_choice 'required' is not supported",
        ),
        Dialect::Kimi if body.get("n").and_then(Value::as_u64).is_some_and(|n| n > 5) => {
            bad("n", "Invalid request: n must be between 1 and 5")
        }
        _ => Ok(()),
    }
}

/// Checks the model, the temperature range and the context window (chat and Responses).
pub(crate) fn validate(d: Dialect, chat: ChatRequest) -> Result<ChatRequest, Problem> {
    let Some(model) = d.provider().find_model(&chat.model) else {
        return Err(Problem::ModelNotFound(chat.model));
    };
    let max_t = match d {
        Dialect::Kimi => Some(1.0),
        Dialect::OllamaV1 => None,
        _ => Some(2.0),
    };
    if let (Some(t), Some(max)) = (chat.temperature, max_t) {
        if !(0.0..=max).contains(&t) {
            let msg = match d {
                Dialect::Kimi => format!("invalid temperature: {t}, only accepts values in [0, 1]"),
                _ => format!("Invalid 'temperature': decimal above maximum value. Expected a value <= {max}, but got {t} instead."),
            };
            return Err(Problem::Invalid(Invalid::new(Some("temperature"), msg)));
        }
    }
    let got = chat.prompt_tokens();
    if got > model.context {
        return Err(Problem::ContextLength {
            limit: model.context,
            got,
        });
    }
    Ok(chat)
}

fn message(f: &Frame, a: &Answer) -> Value {
    let mut m = json!({"role": "assistant", "content": a.text});
    if f.d == Dialect::OpenAi {
        m["refusal"] = Value::Null;
    }
    if let Some((name, args)) = &a.tool_call {
        m["content"] = Value::Null;
        m["tool_calls"] = json!([{"id": tool_call_id(f), "type": "function",
            "function": {"name": name, "arguments": args.to_string()}}]);
    }
    m
}

fn complete(f: &Frame, a: &Answer, filtered: bool) -> Value {
    let mut body = f.base("chat.completion");
    let finish = if filtered && f.d == Dialect::OpenAi {
        "content_filter"
    } else {
        a.openai_finish()
    };
    body.insert(
        "choices".into(),
        json!([{"index": 0, "message": message(f, a), "logprobs": null, "finish_reason": finish}]),
    );
    body.insert("usage".into(), usage(a));
    if f.d == Dialect::OpenAi {
        body.insert("service_tier".into(), json!("default"));
    }
    Value::Object(body)
}

/// How a stream ends.
#[derive(Clone, Copy, PartialEq)]
enum StreamEnd {
    /// Finish chunk, usage, `[DONE]`.
    Done,
    /// Just stops (no finish, no `[DONE]`).
    Cut,
    /// An `{"error": ...}` event, then stops.
    Error,
    /// An event that is not JSON, then `[DONE]`.
    Garbage,
}

fn stream(f: &Frame, a: &Answer, chat: &ChatRequest, filtered: bool, end: StreamEnd, limit: usize) -> String {
    let mut out = String::new();
    let with_usage = chat.include_usage && f.d != Dialect::Kimi;
    let chunk = |delta: Value, finish: Value, extra: Option<Value>| -> String {
        let mut c = f.base("chat.completion.chunk");
        let mut choice = json!({"index": 0, "delta": delta, "logprobs": null, "finish_reason": finish});
        if let Some(u) = extra {
            choice["usage"] = u;
        }
        c.insert("choices".into(), json!([choice]));
        if with_usage {
            c.insert("usage".into(), Value::Null);
        }
        Value::Object(c).to_string()
    };
    sse_data(
        &mut out,
        &chunk(json!({"role": "assistant", "content": ""}), Value::Null, None),
    );
    let pieces: Vec<Value> = match &a.tool_call {
        Some((name, args)) => {
            let args = args.to_string();
            let mut v = vec![
                json!({"tool_calls": [{"index": 0, "id": tool_call_id(f), "type": "function",
                "function": {"name": name, "arguments": ""}}]}),
            ];
            let mid = args.len() / 2;
            let split = (0..=mid).rev().find(|i| args.is_char_boundary(*i)).unwrap_or(0);
            for frag in [&args[..split], &args[split..]] {
                v.push(json!({"tool_calls": [{"index": 0, "function": {"arguments": frag}}]}));
            }
            v
        }
        None => a.pieces().into_iter().map(|p| json!({"content": p})).collect(),
    };
    for (i, delta) in pieces.into_iter().enumerate() {
        if end != StreamEnd::Done && i >= limit {
            break;
        }
        sse_data(&mut out, &chunk(delta, Value::Null, None));
    }
    match end {
        StreamEnd::Cut => return out,
        StreamEnd::Error => {
            sse_data(&mut out, &stream_error_event(f.d).to_string());
            return out;
        }
        StreamEnd::Garbage => {
            sse_data(&mut out, &format!("{{\"id\":\"{}\",\"object\":\"chat.completion.chunk\",\"choices\":[{{\"delta\":{{\"content\":\"tru", f.id));
            sse_data(&mut out, "[DONE]");
            return out;
        }
        StreamEnd::Done => {}
    }
    let finish = if filtered && f.d == Dialect::OpenAi {
        "content_filter"
    } else {
        a.openai_finish()
    };
    let in_choice = (f.d == Dialect::Kimi).then(|| {
        json!({"prompt_tokens": a.prompt_tokens,
        "completion_tokens": a.completion_tokens, "total_tokens": a.total_tokens()})
    });
    sse_data(&mut out, &chunk(json!({}), json!(finish), in_choice));
    if with_usage {
        let mut c = f.base("chat.completion.chunk");
        c.insert("choices".into(), json!([]));
        c.insert("usage".into(), usage(a));
        sse_data(&mut out, &Value::Object(c).to_string());
    }
    sse_data(&mut out, "[DONE]");
    out
}
