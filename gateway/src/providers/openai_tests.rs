//! OpenAI adapter tests on recorded fixtures (PROVIDERS.md section 1).

use std::time::Duration;

use bytes::Bytes;
use futures::StreamExt;
use reqwest::header::{HeaderMap, HeaderValue};

use super::*;

pub(crate) async fn collect(stream: ChunkStream) -> (Vec<ChatChunk>, Option<ProviderError>) {
    let items: Vec<_> = stream.collect().await;
    let mut chunks = Vec::new();
    for item in items {
        match item {
            Ok(c) => chunks.push(c),
            Err(e) => return (chunks, Some(e)),
        }
    }
    (chunks, None)
}

pub(crate) fn body(parts: &[&str]) -> impl futures::Stream<Item = reqwest::Result<Bytes>> + Send + 'static {
    let owned: Vec<reqwest::Result<Bytes>> = parts.iter().map(|p| Ok(Bytes::from(p.to_string()))).collect();
    futures::stream::iter(owned)
}

fn openai_stream(parts: &[&str]) -> ChunkStream {
    stream::drive(
        body(parts),
        Framing::Sse,
        OpenAiStream {
            classify,
            flavor: Flavor::OpenAi,
            done: false,
        },
    )
}

const SSE: &str = "data: {\"id\":\"c1\",\"object\":\"chat.completion.chunk\",\"created\":1,\"model\":\"gpt-4o-mini\",\"choices\":[{\"index\":0,\"delta\":{\"role\":\"assistant\",\"content\":\"\"},\"finish_reason\":null}]}\n\n\
data: {\"id\":\"c1\",\"object\":\"chat.completion.chunk\",\"created\":1,\"model\":\"gpt-4o-mini\",\"choices\":[{\"index\":0,\"delta\":{\"content\":\"Hi\"},\"finish_reason\":null}]}\n\n\
data: {\"id\":\"c1\",\"object\":\"chat.completion.chunk\",\"created\":1,\"model\":\"gpt-4o-mini\",\"choices\":[{\"index\":0,\"delta\":{},\"finish_reason\":\"stop\"}]}\n\n\
data: {\"id\":\"c1\",\"object\":\"chat.completion.chunk\",\"created\":1,\"model\":\"gpt-4o-mini\",\"choices\":[],\"usage\":{\"prompt_tokens\":9,\"completion_tokens\":2,\"total_tokens\":11}}\n\n\
data: [DONE]\n\n";

#[tokio::test]
async fn stream_translates_chunk_by_chunk_and_ends_on_done() {
    // Split at awkward places to prove framing does not depend on chunk boundaries.
    let (a, b) = SSE.split_at(37);
    let (b, c) = b.split_at(200);
    let (chunks, err) = collect(openai_stream(&[a, b, c])).await;
    assert!(err.is_none(), "{err:?}");
    assert_eq!(chunks.len(), 4);
    assert_eq!(chunks[1].choices[0].delta.content.as_deref(), Some("Hi"));
    assert_eq!(chunks[2].choices[0].finish_reason.as_deref(), Some("stop"));
    assert_eq!(chunks[3].usage, Some(crate::canonical::Usage::new(9, 2)));
}

#[tokio::test]
async fn a_stream_without_done_is_an_error() {
    let cut = &SSE[..SSE.find("data: [DONE]").unwrap()];
    let (chunks, err) = collect(openai_stream(&[cut])).await;
    assert_eq!(chunks.len(), 4);
    assert_eq!(err.unwrap().class, ErrorClass::Malformed);
}

#[tokio::test]
async fn mid_stream_error_object_and_garbage_are_errors() {
    let first = SSE.split("\n\n").next().unwrap();
    let err_event = "data: {\"error\":{\"message\":\"The server had an error\",\"type\":\"server_error\",\"code\":null}}\n\n";
    let (chunks, err) = collect(openai_stream(&[first, "\n\n", err_event])).await;
    assert_eq!(chunks.len(), 1);
    assert_eq!(err.unwrap().class, ErrorClass::Overloaded);
    let (_, err) = collect(openai_stream(&["data: {\"choices\": [tru\n\n"])).await;
    assert_eq!(err.unwrap().class, ErrorClass::Malformed);
}

#[tokio::test]
async fn kimi_usage_inside_the_choice_is_lifted() {
    let ev = "data: {\"id\":\"cmpl-1\",\"object\":\"chat.completion.chunk\",\"created\":1,\"model\":\"moonshot-v1-8k\",\"choices\":[{\"index\":0,\"delta\":{},\"finish_reason\":\"stop\",\"usage\":{\"prompt_tokens\":19,\"completion_tokens\":13,\"total_tokens\":32}}]}\n\ndata: [DONE]\n\n";
    let s = stream::drive(
        body(&[ev]),
        Framing::Sse,
        OpenAiStream {
            classify: super::super::kimi::classify,
            flavor: Flavor::Kimi,
            done: false,
        },
    );
    let (chunks, err) = collect(s).await;
    assert!(err.is_none());
    assert_eq!(chunks[0].usage.unwrap().total_tokens, 32);
    assert_eq!(chunks[0].raw, None, "Moonshot's chunks are not OpenAI's shape");
}

#[tokio::test]
async fn an_openai_chunk_as_is_keeps_its_bytes_and_others_do_not() {
    let as_is = r#"{"id":"c1","object":"chat.completion.chunk","created":1,"model":"m","system_fingerprint":"fp","choices":[{"index":0,"delta":{"content":"Hi"},"logprobs":null,"finish_reason":null}],"usage":null}"#;
    let no_usage_key = r#"{"id":"c1","object":"chat.completion.chunk","created":1,"model":"m","choices":[]}"#;
    let no_object = r#"{"id":"c1","created":1,"model":"m","choices":[]}"#;
    let no_id = r#"{"object":"chat.completion.chunk","created":1,"model":"m","choices":[]}"#;
    let no_created = r#"{"id":"c1","object":"chat.completion.chunk","model":"m","choices":[]}"#;
    let usage_in_choice = r#"{"id":"c1","object":"chat.completion.chunk","created":1,"model":"m","choices":[{"index":0,"delta":{},"usage":{"prompt_tokens":1,"completion_tokens":1,"total_tokens":2}}]}"#;
    let repeated_key = r#"{"id":"c0","id":"c1","created":1,"model":"m","choices":[]}"#;
    let events: String = [
        as_is,
        no_usage_key,
        no_object,
        no_id,
        no_created,
        usage_in_choice,
        repeated_key,
    ]
    .iter()
    .map(|d| format!("data:  {d} \r\n\r\n"))
    .collect::<String>()
        + "data: [DONE]\n\n";
    let (chunks, err) = collect(openai_stream(&[&events])).await;
    assert!(err.is_none(), "{err:?}");
    let raw: Vec<_> = chunks
        .iter()
        .map(|c| {
            c.raw
                .as_ref()
                .map(|r| (std::str::from_utf8(&r.bytes).unwrap(), r.usage_key))
        })
        .collect();
    assert_eq!(
        raw,
        [
            Some((as_is, true)),
            Some((no_usage_key, false)),
            None,
            None,
            None,
            None,
            None
        ]
    );
    assert_eq!(chunks[5].usage.map(|u| u.total_tokens), Some(2));
    assert_eq!(
        chunks[6].id, "c1",
        "a repeated key reads as a JSON tree reads it: the last one wins (and it is a chunk without `object`)"
    );
    for c in &chunks {
        assert_eq!(c.object, "chat.completion.chunk");
    }
}

/// The chunk read before the typed one, kept here as the reference: a JSON tree, its error key, the canonical
/// chunk from the tree, Moonshot's usage lifted from the first choice.
fn tree_read(t: &OpenAiStream, data: &str) -> Result<ChatChunk, ProviderError> {
    let v: Value = http::parse_json(data.as_bytes())?;
    if v.get("error").is_some_and(is_error) {
        return Err(t.error(data));
    }
    let usage_in_choice = v.pointer("/choices/0/usage").cloned();
    let mut chunk: ChatChunk = serde_json::from_value(v)
        .map_err(|e| ProviderError::new(ErrorClass::Malformed, format!("bad stream chunk: {e}")))?;
    if chunk.usage.is_none() {
        chunk.usage = usage_in_choice.and_then(|u| serde_json::from_value(u).ok());
    }
    chunk.object = "chat.completion.chunk".into();
    Ok(chunk)
}

/// `base` with one field wrong, then with two (each path with each value, and every later path beside it).
fn with_two_wrong<'a>(
    base: &'a Value,
    paths: &'a [&str],
    values: &'a [Value],
) -> impl Iterator<Item = Value> + 'a {
    paths.iter().enumerate().flat_map(move |(i, p)| {
        values.iter().flat_map(move |a| {
            paths[i..].iter().zip(values.iter().cycle()).map(move |(q, b)| {
                let mut v = base.clone();
                set_at(&mut v, p, a);
                set_at(&mut v, q, b);
                v
            })
        })
    })
}

/// Every field of a chunk, and its wrong-typed values: the one-pass typed read takes exactly what the JSON tree
/// read takes, one and two fields wrong at a time, with its result and its error.
#[test]
fn the_typed_chunk_read_takes_exactly_what_the_tree_read_takes() {
    let base = json!({"id": "c1", "object": "chat.completion.chunk", "created": 1, "model": "m",
        "choices": [{"index": 0, "delta": {"role": "assistant", "content": "Hi",
            "tool_calls": [{"index": 0, "id": "call_1", "type": "function", "function": {"name": "f", "arguments": ""}}]},
            "finish_reason": null, "usage": {"prompt_tokens": 1, "completion_tokens": 2, "total_tokens": 3}}],
        "usage": null, "error": null});
    let paths = [
        "/id",
        "/object",
        "/created",
        "/model",
        "/choices",
        "/choices/0",
        "/choices/0/index",
        "/choices/0/delta",
        "/choices/0/delta/role",
        "/choices/0/delta/content",
        "/choices/0/delta/tool_calls",
        "/choices/0/delta/tool_calls/0/index",
        "/choices/0/finish_reason",
        "/choices/0/usage",
        "/usage",
        "/usage/prompt_tokens",
        "/error",
    ];
    let values = [
        json!(null),
        json!(5),
        json!(-1),
        json!(1.5),
        json!("s"),
        json!(true),
        json!(false),
        json!([]),
        json!({}),
        json!({"prompt_tokens": 4, "completion_tokens": 1, "total_tokens": 5}),
        json!({"message": "boom", "type": "server_error"}),
    ];
    let mut cases = 0;
    for flavor in [Flavor::OpenAi, Flavor::Kimi] {
        let t = OpenAiStream {
            classify,
            flavor,
            done: false,
        };
        for v in with_two_wrong(&base, &paths, &values) {
            let data = serde_json::to_string(&v).unwrap();
            let typed = t.chunk(&data).map(|(c, _)| c);
            match (typed, tree_read(&t, &data)) {
                (Ok(a), Ok(b)) => assert_eq!(a, b, "{v}"),
                (Err(a), Err(b)) => assert_eq!((a.class, a.message), (b.class, b.message), "{v}"),
                (a, b) => panic!("{v}: typed {a:?}, tree {b:?}"),
            }
            cases += 1;
        }
    }
    assert!(cases > 2000, "{cases}");
}

fn c(status: u16, body: &str) -> ProviderError {
    classify(status, &HeaderMap::new(), body)
}

fn err(kind: &str, code: &str, msg: &str) -> String {
    format!(r#"{{"error":{{"message":"{msg}","type":"{kind}","param":null,"code":"{code}"}}}}"#)
}

#[test]
fn classification_by_code_then_type_then_status() {
    let cases = [
        (
            401,
            err(
                "invalid_request_error",
                "invalid_api_key",
                "Incorrect API key provided: sk-…abcd.",
            ),
            ErrorClass::Auth,
        ),
        (
            404,
            err(
                "invalid_request_error",
                "model_not_found",
                "The model `x` does not exist",
            ),
            ErrorClass::NotFound,
        ),
        (
            400,
            err("invalid_request_error", "context_length_exceeded", "too long"),
            ErrorClass::ContextLength,
        ),
        (
            429,
            err(
                "tokens",
                "rate_limit_exceeded",
                "Rate limit reached. Please try again in 3.89s.",
            ),
            ErrorClass::RateLimited,
        ),
        (
            429,
            err("rate_limit_error", "slow_down", "slow down"),
            ErrorClass::RateLimited,
        ),
        (
            429,
            err(
                "insufficient_quota",
                "insufficient_quota",
                "You exceeded your current quota",
            ),
            ErrorClass::QuotaExhausted,
        ),
        (
            429,
            err("insufficient_quota", "credit_balance_exhausted", "no credit"),
            ErrorClass::QuotaExhausted,
        ),
        (
            500,
            err("server_error", "null", "The server had an error"),
            ErrorClass::Overloaded,
        ),
        (
            503,
            err("service_unavailable_error", "server_is_overloaded", "overloaded"),
            ErrorClass::Overloaded,
        ),
        (
            400,
            err("invalid_request_error", "null", "bad"),
            ErrorClass::BadRequest,
        ),
    ];
    for (status, body, want) in cases {
        assert_eq!(c(status, &body).class, want, "{body}");
    }
    assert_eq!(
        c(502, "<html><body>Bad gateway</body></html>").class,
        ErrorClass::Overloaded
    );
    assert_eq!(c(502, "<html>").message, "non-JSON (HTML) error body");
    let rl = c(
        429,
        &err(
            "tokens",
            "rate_limit_exceeded",
            "Please try again in 3.89s. Visit",
        ),
    );
    assert_eq!(rl.retry_after, Some(Duration::from_secs_f64(3.89)));
    let mut h = HeaderMap::new();
    h.insert("retry-after", HeaderValue::from_static("12"));
    assert_eq!(classify(429, &h, "{}").retry_after, Some(Duration::from_secs(12)));
    h.insert("retry-after-ms", HeaderValue::from_static("1500"));
    assert_eq!(
        classify(429, &h, "{}").retry_after,
        Some(Duration::from_millis(1500))
    );
}

#[test]
fn secrets_are_redacted_from_messages() {
    let e = c(
        401,
        &err(
            "invalid_request_error",
            "invalid_api_key",
            "Incorrect API key provided: sk-live-123456",
        ),
    )
    .redact(Some("sk-live-123456"));
    assert!(!e.message.contains("sk-live-123456"));
    assert!(e.message.contains("[redacted]"));
}

#[test]
fn chat_body_sets_model_stream_and_usage() {
    let req: ChatRequest = serde_json::from_str(
        r#"{"model":"default","messages":[{"role":"user","content":"hi"}],"temperature":1.5,"response_format":{"type":"json_object"}}"#,
    )
    .unwrap();
    let client = OpenAiCompat::new("http://x/v1", None, reqwest::Client::new(), Flavor::OpenAi);
    let b = serde_json::to_value(client.chat_body(&req, "gpt-4o-mini", true)).unwrap();
    assert_eq!(b["model"], "gpt-4o-mini");
    assert_eq!(b["stream"], true);
    assert_eq!(b["stream_options"]["include_usage"], true);
    assert_eq!(b["temperature"], 1.5);
    assert_eq!(
        b["response_format"]["type"], "json_object",
        "unknown fields pass through"
    );
    let kimi = OpenAiCompat::new("http://x/v1", None, reqwest::Client::new(), Flavor::Kimi);
    let k = serde_json::to_value(kimi.chat_body(&req, "moonshot-v1-8k", false)).unwrap();
    assert_eq!(k["temperature"], 1.0);
    assert!(k.get("stream_options").is_none());
}

/// The borrowed body writes the same bytes as the changed copy would: every field, in the same order.
#[test]
fn a_borrowed_body_is_the_request_as_a_copy_would_send_it() {
    let req: ChatRequest = serde_json::from_str(
        r#"{"model":"default","messages":[{"role":"system","content":"be brief"},{"role":"user","content":[{"type":"text","text":"hi"},{"type":"image_url","image_url":{"url":"data:image/png;base64,AAAA"}}]}],
            "stream":false,"temperature":0.5,"top_p":0.9,"max_tokens":100,"max_completion_tokens":90,"stop":["\n"],"seed":7,
            "tools":[{"type":"function","function":{"name":"f","parameters":{"type":"object"}}}],"tool_choice":"auto",
            "response_format":{"type":"json_object"},"user":"u-1","stream_options":{"include_usage":true}}"#,
    )
    .unwrap();
    let minimal: ChatRequest =
        serde_json::from_str(r#"{"model":"default","messages":[{"role":"user","content":"hi"}]}"#).unwrap();
    for flavor in [Flavor::OpenAi, Flavor::Qwen] {
        let client = OpenAiCompat::new("http://x/v1", None, reqwest::Client::new(), flavor);
        for r in [&req, &minimal] {
            let body = client.chat_body(r, "gpt-4o-mini", false);
            assert!(
                matches!(body, ChatBody::AsSent(_)),
                "a non-stream request is not copied"
            );
            let mut copy = r.clone();
            copy.model = "gpt-4o-mini".into();
            copy.stream = false;
            assert_eq!(
                serde_json::to_string(&body).unwrap(),
                serde_json::to_string(&copy).unwrap()
            );
        }
    }
}

#[test]
fn normalize_says_whether_the_answer_was_already_in_shape() {
    let mut ok: ChatResponse = serde_json::from_str(
        r#"{"id":"chatcmpl-1","object":"chat.completion","created":5,"model":"m","choices":[]}"#,
    )
    .unwrap();
    assert!(normalize_response(&mut ok));
    for body in [
        r#"{"object":"chat.completion","created":5,"model":"m","choices":[]}"#,
        r#"{"id":"x","object":"chat.completion","model":"m","choices":[]}"#,
        r#"{"id":"x","object":"chat.completion.chunk","created":5,"model":"m","choices":[]}"#,
    ] {
        let mut out: ChatResponse = serde_json::from_str(body).unwrap();
        assert!(!normalize_response(&mut out), "{body}");
        assert!(!out.id.is_empty() && out.created != 0 && out.object == "chat.completion");
    }
}

const ANSWER: &str = r#"{"id":"chatcmpl-9","object":"chat.completion","created":1700000000,"model":"gpt-4o-mini-2024-07-18","system_fingerprint":"fp_1","choices":[{"index":0,"message":{"role":"assistant","content":"Paris \u00e9 \"quoted\"","refusal":null},"logprobs":null,"finish_reason":"stop"}],"usage":{"prompt_tokens":12,"completion_tokens":3,"total_tokens":15,"prompt_tokens_details":{"cached_tokens":0}}}"#;

/// An answer without the id and time a full read mints when the upstream left them out (they differ per read).
fn unminted(mut r: ChatResponse) -> ChatResponse {
    if r.raw.is_none() {
        (r.id, r.created) = (String::new(), 0);
    }
    r
}

fn openai() -> OpenAiCompat {
    OpenAiCompat::new("http://x/v1", None, reqwest::Client::new(), Flavor::OpenAi)
}

#[test]
fn pass_through_reads_only_the_head_of_an_answer_that_goes_out_as_it_came() {
    let head = openai()
        .parse_chat(ANSWER.as_bytes().to_vec(), Read::PassThrough)
        .unwrap();
    let full = openai()
        .parse_chat(ANSWER.as_bytes().to_vec(), Read::Full)
        .unwrap();
    let raw = head.raw.as_ref().unwrap();
    assert!(raw.head_only);
    assert_eq!(&raw.bytes[..], ANSWER.as_bytes(), "the bytes go out as they came");
    assert_eq!(head.choices[0].message.content, None, "the content is not read");
    assert_eq!(
        (&head.id, &head.model, head.created, &head.usage),
        (&full.id, &full.model, full.created, &full.usage)
    );
    assert_eq!(head.choices[0].finish_reason.as_deref(), Some("stop"));
    assert_eq!(head.choices[0].message.role, Role::Assistant);
    assert_eq!(
        head.complete(),
        full,
        "read in full when someone needs the message"
    );
    assert!(!full.raw.unwrap().head_only);
}

#[test]
fn pass_through_reads_in_full_what_does_not_go_out_as_it_came() {
    let with = |from: &str, to: &str| ANSWER.replacen(from, to, 1);
    let tool_call = with(
        r#""content":"Paris \u00e9 \"quoted\"""#,
        r#""content":null,"tool_calls":[{"id":"call_1","type":"function","function":{"name":"f","arguments":"{}"}}]"#,
    );
    for body in [
        with(r#""id":"chatcmpl-9","#, ""),
        with(r#""created":1700000000"#, r#""created":0"#),
        with(
            r#""object":"chat.completion""#,
            r#""object":"chat.completion.chunk""#,
        ),
        tool_call,
    ] {
        let r = openai()
            .parse_chat(body.clone().into_bytes(), Read::PassThrough)
            .unwrap();
        assert!(r.raw.as_ref().is_none_or(|r| !r.head_only), "{body}");
        let full = openai().parse_chat(body.into_bytes(), Read::Full).unwrap();
        assert_eq!(unminted(r), unminted(full));
    }
    let tool_calls = openai()
        .parse_chat(
            with(r#""finish_reason":"stop""#, r#""finish_reason":"tool_calls""#).into_bytes(),
            Read::Full,
        )
        .unwrap();
    assert_eq!(tool_calls.choices[0].finish_reason.as_deref(), Some("tool_calls"));
    let filtered = with(r#""finish_reason":"stop""#, r#""finish_reason":"content_filter""#);
    let e = openai()
        .parse_chat(filtered.into_bytes(), Read::PassThrough)
        .unwrap_err();
    assert_eq!(
        e.class,
        ErrorClass::ContentFilter,
        "a refusal is still routed around"
    );
    // Only OpenAI's own answers go out as they came; a compatible vendor's is always read in full.
    let kimi = OpenAiCompat::new("http://x/v1", None, reqwest::Client::new(), Flavor::Kimi);
    let k = kimi
        .parse_chat(ANSWER.as_bytes().to_vec(), Read::PassThrough)
        .unwrap();
    assert!(k.raw.is_none() && k.text().starts_with("Paris"));
}

/// Sets the value at a JSON pointer whose parent exists (a missing parent or index: left as it is).
fn set_at(v: &mut Value, path: &str, to: &Value) {
    let (parent, key) = path.rsplit_once('/').unwrap();
    match v.pointer_mut(parent) {
        Some(Value::Object(m)) => {
            m.insert(key.to_string(), to.clone());
        }
        Some(Value::Array(a)) => {
            if let Some(slot) = key.parse::<usize>().ok().and_then(|i| a.get_mut(i)) {
                *slot = to.clone();
            }
        }
        _ => {}
    }
}

/// Every field of an answer, and its wrong-typed values: the head read takes exactly what the full read takes,
/// one and two fields wrong at a time, and fails with the full read's error.
#[test]
fn the_head_read_takes_exactly_what_the_full_read_takes() {
    let base: Value = serde_json::from_str(ANSWER).unwrap();
    let paths = [
        "/id",
        "/object",
        "/created",
        "/model",
        "/choices",
        "/choices/0",
        "/choices/0/index",
        "/choices/0/message",
        "/choices/0/message/role",
        "/choices/0/message/content",
        "/choices/0/message/name",
        "/choices/0/message/tool_calls",
        "/choices/0/message/tool_call_id",
        "/choices/0/finish_reason",
        "/usage",
        "/usage/prompt_tokens",
    ];
    let values = [
        json!(null),
        json!(5),
        json!(-1),
        json!(1.5),
        json!("s"),
        json!(true),
        json!([]),
        json!({}),
        json!([1]),
        json!({"a": 1}),
        json!("assistant"),
    ];
    let mut cases = 0;
    let openai = openai();
    for v in with_two_wrong(&base, &paths, &values) {
        let body = serde_json::to_vec(&v).unwrap();
        let full = openai.parse_chat(body.clone(), Read::Full);
        let head = openai
            .parse_chat(body, Read::PassThrough)
            .map(ChatResponse::complete);
        match (full, head) {
            (Ok(f), Ok(h)) => assert_eq!(unminted(f), unminted(h), "{v}"),
            (Err(f), Err(h)) => assert_eq!((f.class, f.message), (h.class, h.message), "{v}"),
            (f, h) => panic!("{v}: full {f:?}, head {h:?}"),
        }
        cases += 1;
    }
    assert!(cases > 1000, "{cases}");
}

/// serde reads a struct from an array of its fields too: an upstream that answers so is read, but its bytes are
/// never sent on as they came (a client expects an object), streamed or not.
#[tokio::test]
async fn an_answer_or_chunk_sent_as_an_array_is_written_again_as_an_object() {
    let answer = r#"["chatcmpl-1","chat.completion",1,"gpt-4o-mini",[{"index":0,"message":{"role":"assistant","content":"Hi"},"finish_reason":"stop"}],{"prompt_tokens":1,"completion_tokens":1,"total_tokens":2}]"#;
    for read in [Read::Full, Read::PassThrough] {
        let out = openai()
            .parse_chat(answer.as_bytes().to_vec(), read)
            .unwrap()
            .complete();
        assert_eq!((out.raw.is_none(), out.text().as_str()), (true, "Hi"), "{read:?}");
    }
    let chunk = r#"["c1","chat.completion.chunk",1,"m",[{"index":0,"delta":{"content":"Hi"},"finish_reason":null}],null]"#;
    let (chunks, err) = collect(openai_stream(&[&format!("data: {chunk}\n\ndata: [DONE]\n\n")])).await;
    assert!(err.is_none(), "{err:?}");
    assert_eq!(chunks[0].raw, None);
    assert_eq!(chunks[0].choices[0].delta.content.as_deref(), Some("Hi"));
}

/// One chunk written over several `data:` lines (valid SSE, joined with a line feed) or with a carriage return
/// between its tokens is read, and written again on one line: its bytes would break the client's framing.
#[tokio::test]
async fn a_chunk_with_line_breaks_in_its_data_is_written_again_on_one_line() {
    let lines = "data: {\"id\":\"c1\",\"object\":\"chat.completion.chunk\",\ndata: \"created\":1,\"model\":\"m\",\"choices\":[{\"index\":0,\"delta\":{\"content\":\"Hi\"}}]}\n\n";
    let cr = "data: {\"id\":\"c1\",\"object\":\"chat.completion.chunk\",\r\"created\":1,\"model\":\"m\",\"choices\":[]}\n\n";
    let (chunks, err) = collect(openai_stream(&[lines, cr, "data: [DONE]\n\n"])).await;
    assert!(err.is_none(), "{err:?}");
    assert_eq!(chunks.len(), 2);
    assert_eq!(chunks[0].choices[0].delta.content.as_deref(), Some("Hi"));
    assert!(chunks.iter().all(|c| c.raw.is_none()), "{chunks:?}");
}
