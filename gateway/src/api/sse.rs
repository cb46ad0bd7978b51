//! The chat completions SSE grammar of a streamed answer: each chunk as `data: {json}`; a clean end as
//! `data: [DONE]`; a broken upstream as an explicit `event: error` and close, never `[DONE]`; a continuation on
//! another provider (`stream_failure: continue`) as an SSE comment; a stream still open at the end of the
//! server's `shutdown_grace` as `event: error` with code `shutting_down`.

use std::convert::Infallible;

use axum::body::Body;
use axum::http::{header, HeaderValue, StatusCode};
use axum::response::Response;
use bytes::Bytes;
use futures::StreamExt;
use serde_json::json;

use crate::canonical::ChatChunk;
use crate::pipeline::{Event, EventStream};
use crate::providers::ProviderError;

/// Frames one chunk; `None` when it carries nothing the client asked for (the usage chunk without
/// `stream_options.include_usage`). A chunk that is the upstream's OpenAI chunk as is goes out as its bytes
/// (without its `"usage":null` when the client did not ask for usage, as OpenAI would have sent it).
fn frame(mut chunk: ChatChunk, include_usage: bool) -> Option<Bytes> {
    if !include_usage {
        if chunk.choices.is_empty() {
            return None;
        }
        if chunk.usage.take().is_some() {
            chunk.raw = None;
        }
    }
    if let Some(raw) = chunk.raw.take() {
        if include_usage || !raw.usage_key {
            return Some(data_event(&[&raw.bytes]));
        }
        if let Some((from, to)) = null_usage_span(&raw.bytes) {
            return Some(data_event(&[&raw.bytes[..from], &raw.bytes[to..]]));
        }
    }
    let json = serde_json::to_vec(&chunk).ok()?;
    Some(data_event(&[&json]))
}

/// `data: {json}` (the JSON in parts, written one after another) and the blank line that ends the event.
fn data_event(json: &[&[u8]]) -> Bytes {
    let len: usize = json.iter().map(|p| p.len()).sum();
    let mut b = Vec::with_capacity(len + 8);
    b.extend_from_slice(b"data: ");
    for p in json {
        b.extend_from_slice(p);
    }
    b.extend_from_slice(b"\n\n");
    Bytes::from(b)
}

/// [`null_usage_span`]'s cut made: the object without the member, the rest byte for byte.
#[cfg(test)]
pub(crate) fn without_null_usage(json: &[u8]) -> Option<Vec<u8>> {
    let (from, to) = null_usage_span(json)?;
    Some([&json[..from], &json[to..]].concat())
}

/// Where a JSON object's top-level `"usage":null` member is (with one comma beside it): the byte range to cut so
/// that the rest is the object without it; `None` when it has no such member spelled plainly (a key written with
/// escapes is left to the caller, which writes the chunk again). The bytes are valid JSON (the caller's typed
/// read took them); the scan follows strings and nesting so that a `usage` deeper down or inside a string is
/// never the one cut.
fn null_usage_span(json: &[u8]) -> Option<(usize, usize)> {
    // Where OpenAI puts it, last: `…,"usage":null}`. In valid JSON those bytes before the object's closing brace
    // are a top-level member (a string there would need a closing quote before the brace), so no scan is needed.
    const LAST: &[u8] = b",\"usage\":null}";
    let trimmed = json.trim_ascii_end();
    if trimmed.ends_with(LAST) {
        let from = trimmed.len() - LAST.len();
        return Some((from, trimmed.len() - 1));
    }
    let ws = |b: u8| matches!(b, b' ' | b'\t' | b'\n' | b'\r');
    let skip_ws = |mut i: usize| {
        while json.get(i).copied().is_some_and(ws) {
            i += 1;
        }
        i
    };
    let (mut depth, mut i) = (0usize, 0usize);
    // The last top-level comma seen: the one before the member, when the member is the object's last.
    let mut last_comma: Option<usize> = None;
    while i < json.len() {
        match json[i] {
            b'"' => {
                let start = i;
                i += 1;
                // To the closing quote, over escapes (a quote after a backslash is not one).
                loop {
                    match json.get(i..).and_then(|rest| memchr::memchr2(b'"', b'\\', rest)) {
                        Some(rel) if json[i + rel] == b'"' => {
                            i += rel;
                            break;
                        }
                        Some(rel) => i += rel + 2,
                        None => {
                            i = json.len();
                            break;
                        }
                    }
                }
                let end = i + 1; // past the closing quote
                if depth == 1 && &json[start..end.min(json.len())] == b"\"usage\"" {
                    let colon = skip_ws(end);
                    if json.get(colon) == Some(&b':') {
                        let value = skip_ws(colon + 1);
                        if json.get(value..value + 4) != Some(&b"null"[..]) {
                            return None;
                        }
                        let next = skip_ws(value + 4);
                        let (from, to) = match (json.get(next), last_comma) {
                            (Some(b','), _) => (start, skip_ws(next + 1)),
                            (_, Some(comma)) => (comma, value + 4),
                            (_, None) => (start, value + 4),
                        };
                        return Some((from, to));
                    }
                }
                i = end;
                continue;
            }
            b'{' | b'[' => depth += 1,
            b'}' | b']' => depth = depth.saturating_sub(1),
            b',' if depth == 1 => last_comma = Some(i),
            _ => {}
        }
        i += 1;
    }
    None
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

/// Renders one event; `None` for what this client does not see.
fn render(ev: Event, include_usage: bool) -> Option<Bytes> {
    match ev {
        Event::Chunk(c) => frame(c, include_usage),
        Event::Continued { to, after, .. } => Some(Bytes::from(format!(
            ": continued on {to} after {}\n\n",
            after.as_str()
        ))),
        Event::Failed { provider, error } => Some(error_event(&provider, &error)),
        Event::ShuttingDown => Some(shutting_down_event()),
        Event::Done => Some(Bytes::from_static(b"data: [DONE]\n\n")),
    }
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

/// The streaming response for the events of an answer.
pub(crate) fn response(events: EventStream, include_usage: bool) -> Response {
    let body =
        events.filter_map(move |ev| async move { render(ev, include_usage).map(Ok::<Bytes, Infallible>) });
    event_stream(Body::from_stream(body))
}

/// An agent surface's event grammar (Responses, Messages): the bytes of each pipeline event.
pub(crate) trait Grammar: Send + 'static {
    /// The bytes of one event; `true` once the stream has its terminal event.
    fn render(&mut self, ev: Event) -> (String, bool);
    /// The terminal failure of a stream that ended without a terminal event, so a client never takes a cut
    /// answer for a whole one.
    fn unterminated(&mut self) -> String;
}

/// The streaming response of an agent surface: every event rendered by `grammar`, up to its terminal one.
pub(crate) fn grammar_response<G: Grammar>(events: EventStream, grammar: G) -> Response {
    let body = futures::stream::unfold(Some((events, grammar)), |st| async move {
        let (mut events, mut g) = st?;
        let (out, ended) = match events.next().await {
            Some(ev) => g.render(ev),
            None => (g.unterminated(), true),
        };
        let next = (!ended).then_some((events, g));
        Some((Ok::<Bytes, Infallible>(Bytes::from(out)), next))
    });
    event_stream(Body::from_stream(body))
}

/// A 200 `text/event-stream` response, unbuffered by proxies.
fn event_stream(body: Body) -> Response {
    let mut resp = Response::new(body);
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
    use crate::canonical::{Delta, RawChunk, Usage};
    use proptest::prelude::*;
    use serde_json::Value;

    fn without(v: &Value) -> Value {
        let mut v = v.clone();
        if let Some(m) = v.as_object_mut() {
            m.remove("usage");
        }
        v
    }

    #[test]
    fn the_top_level_null_usage_is_cut_wherever_it_stands_and_nothing_else() {
        for (json, want) in [
            (r#"{"a":1,"usage":null}"#, Some(r#"{"a":1}"#)),
            (r#"{"usage":null,"a":1}"#, Some(r#"{"a":1}"#)),
            (r#"{"usage" : null}"#, Some(r#"{}"#)),
            (
                r#"{ "a":[1,2] , "usage":null , "b":{"c":3} }"#,
                Some(r#"{ "a":[1,2] , "b":{"c":3} }"#),
            ),
            // Deeper down, inside a string, as a value, or spelled with escapes: not the top-level key.
            (r#"{"a":{"usage":null}}"#, None),
            (r#"{"a":"\"usage\":null"}"#, None),
            (r#"{"a":"usage","b":null}"#, None),
            (r#"{"\u0075sage":null}"#, None),
            (r#"{"a\\":"x","usage":{"total_tokens":1}}"#, None),
            // Last, as OpenAI sends it (the short way), with what may follow the object.
            ("{\"a\":1,\"usage\":null}\n", Some("{\"a\":1}\n")),
            (r#"{"a":{"b":1,"usage":null}}"#, None),
            (r#"{"a":"x,\"usage\":null}"}"#, None),
            (r#"{"a\\":"x","usage":null}"#, Some(r#"{"a\\":"x"}"#)),
        ] {
            let got = without_null_usage(json.as_bytes()).map(|b| String::from_utf8(b).unwrap());
            assert_eq!(got.as_deref(), want, "{json}");
        }
    }

    /// A JSON value of a few levels whose strings and keys are drawn to look like the member being cut.
    fn value() -> impl Strategy<Value = Value> {
        let text = prop::sample::select(vec![
            "usage",
            "\"usage\":null",
            "a\\",
            "u",
            "",
            "{,}",
            "\"usage\"",
        ]);
        let leaf = prop_oneof![
            Just(Value::Null),
            any::<i32>().prop_map(Value::from),
            text.clone().prop_map(Value::from),
        ];
        leaf.prop_recursive(3, 16, 4, move |inner| {
            prop_oneof![
                prop::collection::vec(inner.clone(), 0..4).prop_map(Value::Array),
                prop::collection::vec((text.clone(), inner), 0..4)
                    .prop_map(|kv| Value::Object(kv.into_iter().map(|(k, v)| (k.to_string(), v)).collect())),
            ]
        })
    }

    proptest! {
        /// Whatever surrounds it and however it is spaced, the cut leaves valid JSON: the object without its
        /// top-level `usage`, every other member as it was; an object whose top-level usage is not `null` (or
        /// absent) is never cut.
        #[test]
        fn the_cut_is_the_object_without_its_usage(
            members in prop::collection::vec((prop::sample::select(vec!["id", "usage", "choices", "x"]), value()), 0..6),
            pretty in any::<bool>(),
        ) {
            let obj = Value::Object(members.into_iter().map(|(k, v)| (k.to_string(), v)).collect());
            let json = if pretty { serde_json::to_string_pretty(&obj) } else { serde_json::to_string(&obj) }.unwrap();
            match without_null_usage(json.as_bytes()) {
                Some(cut) => {
                    prop_assert_eq!(obj.get("usage"), Some(&Value::Null));
                    let back: Value = serde_json::from_slice(&cut).unwrap();
                    prop_assert_eq!(back, without(&obj));
                }
                None => prop_assert_ne!(obj.get("usage"), Some(&Value::Null), "{}", json),
            }
        }
    }

    fn as_is(json: &str, usage_key: bool) -> ChatChunk {
        let mut c: ChatChunk = serde_json::from_str(json).unwrap();
        c.raw = Some(RawChunk {
            bytes: Bytes::from(json.to_string()),
            usage_key,
        });
        c
    }

    fn data(b: Option<Bytes>) -> Option<String> {
        b.map(|b| String::from_utf8(b.to_vec()).unwrap())
    }

    #[test]
    fn a_chunk_as_it_came_goes_out_as_its_bytes_usage_as_the_client_asked() {
        let j = r#"{"id":"c","object":"chat.completion.chunk","created":1,"model":"m","system_fingerprint":"fp","choices":[{"index":0,"delta":{"content":"Hi"},"finish_reason":null}],"usage":null}"#;
        assert_eq!(data(frame(as_is(j, true), true)), Some(format!("data: {j}\n\n")));
        let cut = j.replace(r#","usage":null"#, "");
        assert_eq!(
            data(frame(as_is(j, true), false)),
            Some(format!("data: {cut}\n\n"))
        );
        // A usage key the bytes do not show plainly: written again, without usage.
        let escaped = j.replace(r#""usage""#, r#""\u0075sage""#);
        let out = data(frame(as_is(&escaped, true), false)).unwrap();
        let v: Value = serde_json::from_str(out.strip_prefix("data: ").unwrap().trim()).unwrap();
        assert!(
            v.get("usage").is_none() && v.get("system_fingerprint").is_none(),
            "{v}"
        );
        assert_eq!(v["choices"][0]["delta"]["content"], "Hi");
    }

    #[test]
    fn the_usage_chunk_is_hidden_or_shown_as_asked_and_a_chunk_without_bytes_is_written() {
        let u = r#"{"id":"c","object":"chat.completion.chunk","created":1,"model":"m","choices":[],"usage":{"prompt_tokens":1,"completion_tokens":2,"total_tokens":3}}"#;
        assert_eq!(data(frame(as_is(u, true), false)), None);
        assert_eq!(data(frame(as_is(u, true), true)), Some(format!("data: {u}\n\n")));
        // Usage on a chunk with choices, the client not asking: written again without it.
        let mut c = ChatChunk::with_delta("c", 1, "m", Delta::default(), Some("stop".into()));
        c.usage = Some(Usage::new(1, 2));
        let text = serde_json::to_string(&c).unwrap();
        c.raw = Some(RawChunk {
            bytes: Bytes::from(text),
            usage_key: true,
        });
        let out = data(frame(c, false)).unwrap();
        assert!(!out.contains("usage"), "{out}");
        assert!(out.contains(r#""finish_reason":"stop""#), "{out}");
    }
}
