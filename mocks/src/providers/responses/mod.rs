//! `POST /v1/responses` of the OpenAI fake and Ollama's OpenAI-compatible surface: plain and streamed, on the
//! same deterministic answers (and tool-call-until-tool-result logic) as chat, with the same faults.
//!
//! Faults: HTTP-error faults answer OpenAI's error shape before any event (with `after_chunks` set on a stream
//! they come in-stream instead: `error` + `response.failed` carrying the fault's code after `response.created`);
//! `stream_error` sends `error` + `response.failed` (`server_error`) after `after_chunks` deltas;
//! `truncated_stream` stops there with no terminal event; `malformed` sends an event that is not JSON; plain
//! requests get a body cut in half for both; `content_filter` is an `incomplete` response (reason
//! `content_filter`) at OpenAI and a refusal at Ollama; `slow` and `drop_connection` are applied by the server.

mod options;
mod render;
mod request;

use super::openai_chat::validate;
use super::openai_errors::{render as render_error, Dialect, Problem};
use super::openai_misc::{common_headers, request_or_problem};
use super::shared::{after_chunks, fault_delay, first_half};
use crate::fault::{FaultKind, FaultSpec};
use crate::http::{delayed, json, raw, sse};
use crate::server::Faults;
use crate::state::State;
use crate::wire::{Request, ResponseTemplate};
use render::{End, Frame};

/// The code and message of an HTTP-error fault delivered in-stream (`response.error`).
fn in_stream(kind: FaultKind) -> Option<(&'static str, &'static str)> {
    match kind {
        FaultKind::RateLimited => Some((
            "rate_limit_exceeded",
            "Rate limit reached for requests. Please try again later.",
        )),
        FaultKind::QuotaExhausted => Some((
            "insufficient_quota",
            "You exceeded your current quota, please check your plan and billing details.",
        )),
        FaultKind::Overloaded => Some((
            "server_is_overloaded",
            "That model is currently overloaded with other requests. You can retry your request.",
        )),
        FaultKind::ServerError | FaultKind::StreamError => Some((
            "server_error",
            "The server had an error while processing your request. Sorry about that!",
        )),
        _ => None,
    }
}

/// Handles `POST /v1/responses`.
pub(crate) fn responses(state: &State, d: Dialect, req: &Request, faults: &Faults<'_>) -> ResponseTemplate {
    let latency = state.settings().latency_ms;
    let parsed = request_or_problem(d, req)
        .and_then(|body| request::parse(d, &body))
        .and_then(|p| validate(d, p.chat).map(|chat| (chat, p.echo)));
    let (chat, echo) = match parsed {
        Ok(p) => p,
        Err(p) => return delayed(render_error(state, d, &p), latency),
    };
    let fault = faults.decide();
    let delay = latency + fault_delay(fault.as_ref());
    let frame = Frame::new(state.request_seed(&req.body), &chat.model, echo);
    let mut answer = chat.answer(d.provider());
    let kind = fault.as_ref().map(|f| f.fault);
    let after = after_chunks(fault.as_ref());
    let filtered = kind == Some(FaultKind::ContentFilter);
    if filtered {
        answer.tool_call = None;
        answer.json = false;
        answer.text = if d == Dialect::OllamaV1 {
            super::ollama::REFUSAL.into()
        } else {
            String::new()
        };
        answer.completion_tokens = crate::content::count_tokens(&answer.text);
    }
    // At Ollama a refusal is a normal answer.
    let filtered = filtered && d == Dialect::OpenAi;
    let stream = |end: End, limit: usize| sse(frame.stream(&answer, filtered, &end, limit));
    let t = match kind {
        None | Some(FaultKind::Slow | FaultKind::ContentFilter) if chat.stream => {
            stream(End::Done, usize::MAX)
        }
        None | Some(FaultKind::Slow | FaultKind::ContentFilter) => {
            json(200, &frame.complete(&answer, filtered))
        }
        Some(FaultKind::TruncatedStream) if chat.stream => stream(End::Cut, after),
        Some(FaultKind::Malformed) if chat.stream => stream(End::Garbage, after),
        Some(FaultKind::Malformed | FaultKind::TruncatedStream) => raw(
            200,
            first_half(&frame.complete(&answer, false).to_string()),
            "application/json",
        ),
        Some(k @ FaultKind::StreamError) if chat.stream => stream(failed(k), after),
        Some(k)
            if chat.stream
                && in_stream(k).is_some()
                && fault.as_ref().is_some_and(|f| f.after_chunks.is_some()) =>
        {
            stream(failed(k), after)
        }
        Some(_) => render_error(
            state,
            d,
            &Problem::Fault(fault.unwrap_or(FaultSpec::new(FaultKind::ServerError))),
        ),
    };
    delayed(common_headers(state, d, t), delay)
}

fn failed(k: FaultKind) -> End {
    let (code, message) = in_stream(k).unwrap_or(("server_error", "The server had an error."));
    End::Failed {
        code: code.into(),
        message: message.into(),
    }
}
