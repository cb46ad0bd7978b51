//! The Response object and its SSE event stream (AGENT_APIS.md 1.3, 1.4) for one chat [`Answer`]: a `message`
//! item with one `output_text` part, or a `function_call` item; `sequence_number` from 0 on every event.

use crate::chat::{Answer, Finish};
use crate::content::{hex_id, unix_now};
use serde_json::{json, Map, Value};

/// Ids, stamps and request echoes shared by the object and every event of one answer.
pub(crate) struct Frame {
    pub(crate) id: String,
    created_at: u64,
    model: String,
    echo: Map<String, Value>,
}

/// How a stream ends.
#[derive(Debug, Clone, PartialEq)]
pub(crate) enum End {
    /// `response.completed` (or `response.incomplete`).
    Done,
    /// Just stops: no terminal event.
    Cut,
    /// An `error` event (flat and nested shapes), then `response.failed` with `response.error {code, message}`.
    Failed { code: String, message: String },
    /// An event whose data is not JSON, then the end.
    Garbage,
}

fn text_part(text: &str) -> Value {
    json!({"type": "output_text", "text": text, "annotations": [], "logprobs": []})
}

fn usage(a: &Answer) -> Value {
    json!({"input_tokens": a.prompt_tokens, "input_tokens_details": {"cached_tokens": 0, "cache_write_tokens": 0},
        "output_tokens": a.completion_tokens, "output_tokens_details": {"reasoning_tokens": 0},
        "total_tokens": a.total_tokens()})
}

/// The final status and `incomplete_details` of an answer.
fn status(a: &Answer, filtered: bool) -> (&'static str, Value) {
    if filtered {
        ("incomplete", json!({"reason": "content_filter"}))
    } else if a.finish == Finish::Length {
        ("incomplete", json!({"reason": "max_output_tokens"}))
    } else {
        ("completed", Value::Null)
    }
}

impl Frame {
    pub(crate) fn new(seed: u64, model: &str, echo: Map<String, Value>) -> Frame {
        Frame {
            id: format!("resp_{}", hex_id(&[&seed.to_le_bytes(), b"resp"], 48)),
            created_at: unix_now(),
            model: model.to_string(),
            echo,
        }
    }

    fn item_id(&self, prefix: &str) -> String {
        format!(
            "{prefix}_{}",
            hex_id(&[self.id.as_bytes(), prefix.as_bytes()], 48)
        )
    }

    fn call_id(&self) -> String {
        format!("call_{}", hex_id(&[self.id.as_bytes(), b"call"], 24))
    }

    /// The whole Response object.
    fn object(&self, status: &str, output: Vec<Value>, usage: Value, details: Value, error: Value) -> Value {
        let mut o = Map::new();
        o.insert("id".into(), json!(self.id));
        o.insert("object".into(), json!("response"));
        o.insert("created_at".into(), json!(self.created_at));
        o.insert("status".into(), json!(status));
        let done = matches!(status, "completed" | "incomplete" | "failed");
        o.insert(
            "completed_at".into(),
            if status == "completed" {
                json!(unix_now())
            } else {
                Value::Null
            },
        );
        o.insert("background".into(), json!(false));
        o.insert("error".into(), error);
        o.insert("incomplete_details".into(), details);
        o.insert("model".into(), json!(self.model));
        o.insert("output".into(), Value::Array(output));
        o.insert("previous_response_id".into(), Value::Null);
        o.insert("prompt_cache_key".into(), Value::Null);
        o.insert("safety_identifier".into(), Value::Null);
        o.insert(
            "service_tier".into(),
            json!(if done { "default" } else { "auto" }),
        );
        o.insert("max_tool_calls".into(), Value::Null);
        o.insert("top_logprobs".into(), json!(0));
        o.insert("truncation".into(), json!("disabled"));
        o.insert("usage".into(), usage);
        for (k, v) in &self.echo {
            o.insert(k.clone(), v.clone());
        }
        Value::Object(o)
    }

    /// The output item of `a` with this item status (none for an empty text).
    fn item(&self, a: &Answer, text: &str, arguments: &str, status: &str) -> Option<Value> {
        match &a.tool_call {
            Some((name, _)) => Some(
                json!({"type": "function_call", "id": self.item_id("fc"), "call_id": self.call_id(),
                "name": name, "arguments": arguments, "status": status}),
            ),
            None => Some(
                json!({"type": "message", "id": self.item_id("msg"), "status": status, "role": "assistant",
                "content": if status == "in_progress" { json!([]) } else { json!([text_part(text)]) }}),
            ),
        }
    }

    /// The plain (non-stream) answer.
    pub(crate) fn complete(&self, a: &Answer, filtered: bool) -> Value {
        let (st, details) = status(a, filtered);
        let item_status = if st == "completed" {
            "completed"
        } else {
            "incomplete"
        };
        let args = a
            .tool_call
            .as_ref()
            .map(|(_, v)| v.to_string())
            .unwrap_or_default();
        let output: Vec<Value> = if a.tool_call.is_none() && a.text.is_empty() {
            Vec::new()
        } else {
            self.item(a, &a.text, &args, item_status).into_iter().collect()
        };
        self.object(st, output, usage(a), details, Value::Null)
    }

    /// The event stream of the answer; with an `end` other than [`End::Done`] it breaks after `limit` deltas.
    pub(crate) fn stream(&self, a: &Answer, filtered: bool, end: &End, limit: usize) -> String {
        let mut w = Writer {
            out: String::new(),
            seq: 0,
        };
        let start = self.object("in_progress", Vec::new(), Value::Null, Value::Null, Value::Null);
        w.emit("response.created", json!({"response": start}));
        w.emit("response.in_progress", json!({"response": start}));
        let args = a
            .tool_call
            .as_ref()
            .map(|(_, v)| v.to_string())
            .unwrap_or_default();
        let pieces: Vec<String> = match &a.tool_call {
            Some(_) => halves(&args),
            None => a.pieces(),
        };
        let has_item = a.tool_call.is_some() || !a.text.is_empty();
        let mut sent = String::new();
        let breaks = *end != End::Done;
        if has_item {
            let added = self.item(a, "", "", "in_progress").unwrap_or(Value::Null);
            let item_id = added["id"].clone();
            w.emit(
                "response.output_item.added",
                json!({"output_index": 0, "item": added}),
            );
            let call = a.tool_call.is_some();
            if !call {
                w.emit(
                    "response.content_part.added",
                    json!({"item_id": item_id, "output_index": 0,
                    "content_index": 0, "part": text_part("")}),
                );
            }
            for (i, p) in pieces.iter().enumerate() {
                if breaks && i >= limit {
                    return self.finish_broken(w, a, end, &sent);
                }
                sent.push_str(p);
                if call {
                    w.emit(
                        "response.function_call_arguments.delta",
                        json!({"item_id": item_id, "output_index": 0,
                        "delta": p}),
                    );
                } else {
                    w.emit(
                        "response.output_text.delta",
                        json!({"item_id": item_id, "output_index": 0,
                        "content_index": 0, "delta": p, "logprobs": []}),
                    );
                }
            }
            if breaks {
                return self.finish_broken(w, a, end, &sent);
            }
            let (st, _) = status(a, filtered);
            let item_status = if st == "completed" {
                "completed"
            } else {
                "incomplete"
            };
            if let Some((name, _)) = &a.tool_call {
                w.emit(
                    "response.function_call_arguments.done",
                    json!({"item_id": item_id, "output_index": 0,
                    "name": name, "arguments": args}),
                );
            } else {
                w.emit(
                    "response.output_text.done",
                    json!({"item_id": item_id, "output_index": 0,
                    "content_index": 0, "text": a.text, "logprobs": []}),
                );
                w.emit(
                    "response.content_part.done",
                    json!({"item_id": item_id, "output_index": 0,
                    "content_index": 0, "part": text_part(&a.text)}),
                );
            }
            let done = self.item(a, &a.text, &args, item_status).unwrap_or(Value::Null);
            w.emit(
                "response.output_item.done",
                json!({"output_index": 0, "item": done}),
            );
        } else if breaks {
            return self.finish_broken(w, a, end, &sent);
        }
        let full = self.complete(a, filtered);
        let kind = if full["status"] == "completed" {
            "response.completed"
        } else {
            "response.incomplete"
        };
        w.emit(kind, json!({"response": full}));
        w.out
    }

    fn finish_broken(&self, mut w: Writer, a: &Answer, end: &End, sent: &str) -> String {
        match end {
            End::Done | End::Cut => {}
            End::Garbage => {
                w.out.push_str(&format!(
                    "event: response.output_text.delta\ndata: {{\"type\":\"response.output_text.delta\",\"sequence_number\":{},\"delta\":\"tru\n\n",
                    w.seq
                ));
            }
            End::Failed { code, message } => {
                w.emit(
                    "error",
                    json!({"code": code, "message": message, "param": null,
                    "error": {"type": "server_error", "code": code, "message": message, "param": null}}),
                );
                let so_far: Vec<Value> = if a.tool_call.is_none() && sent.is_empty() && a.text.is_empty() {
                    Vec::new()
                } else {
                    self.item(a, sent, sent, "incomplete").into_iter().collect()
                };
                let failed = self.object(
                    "failed",
                    so_far,
                    Value::Null,
                    Value::Null,
                    json!({"code": code, "message": message}),
                );
                w.emit("response.failed", json!({"response": failed}));
            }
        }
        w.out
    }
}

struct Writer {
    out: String,
    seq: u64,
}

impl Writer {
    /// One event: `event: <type>` and `data:` with the same `type` and the next `sequence_number`.
    fn emit(&mut self, kind: &str, mut data: Value) {
        data["type"] = json!(kind);
        data["sequence_number"] = json!(self.seq);
        self.seq += 1;
        self.out.push_str("event: ");
        self.out.push_str(kind);
        self.out.push_str("\ndata: ");
        self.out.push_str(&data.to_string());
        self.out.push_str("\n\n");
    }
}

/// Arguments in two deltas, split on a character boundary.
fn halves(s: &str) -> Vec<String> {
    let mid = s.len() / 2;
    let split = (0..=mid).rev().find(|i| s.is_char_boundary(*i)).unwrap_or(0);
    [&s[..split], &s[split..]]
        .into_iter()
        .filter(|p| !p.is_empty())
        .map(str::to_string)
        .collect()
}
