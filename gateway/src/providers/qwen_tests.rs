//! DashScope tests on recorded fixtures (PROVIDERS.md section 3).

use serde_json::json;

use super::*;
use crate::providers::openai::tests::{body, collect};

#[test]
fn native_request_shape() {
    let req: ChatRequest = serde_json::from_value(json!({
        "model": "default", "messages": [{"role": "system", "content": "be brief"}, {"role": "user", "content": "hi"}],
        "max_tokens": 64, "temperature": 0.3, "stop": ["\n\n"]
    }))
    .unwrap();
    let b = native_body(&req, "qwen-plus", true);
    assert_eq!(b["model"], "qwen-plus");
    assert_eq!(b["input"]["messages"][1]["content"], "hi");
    assert_eq!(b["parameters"]["result_format"], "message");
    assert_eq!(b["parameters"]["incremental_output"], true);
    assert_eq!(b["parameters"]["max_tokens"], 64);
    assert!(b.get("messages").is_none(), "messages live under input");
}

#[test]
fn native_responses_message_and_text_formats() {
    let v = json!({"output":{"choices":[{"finish_reason":"stop","message":{"role":"assistant","content":"Hello"}}]},
        "usage":{"input_tokens":7,"output_tokens":12,"total_tokens":19},"request_id":"r1"});
    let r = native_response(&v, "qwen-plus").unwrap();
    assert_eq!(r.text(), "Hello");
    assert_eq!(r.usage, Some(Usage::new(7, 12)));
    assert_eq!(r.id, "chatcmpl-r1");
    let v = json!({"output":{"text":"Old","finish_reason":"length"},"usage":{"input_tokens":1,"output_tokens":2}});
    let r = native_response(&v, "qwen-plus").unwrap();
    assert_eq!(r.text(), "Old");
    assert_eq!(r.choices[0].finish_reason.as_deref(), Some("length"));
    assert_eq!(
        native_response(&json!({"weird": 1}), "m").unwrap_err().class,
        ErrorClass::Malformed
    );
}

#[test]
fn native_embeddings_are_ordered_by_text_index() {
    let v = json!({"output":{"embeddings":[{"text_index":1,"embedding":[0.5]},{"text_index":0,"embedding":[0.25]}]},"usage":{"total_tokens":9}});
    let r = native_embeddings(&v, "text-embedding-v3").unwrap();
    assert_eq!(r.data[0].embedding, vec![0.25]);
    assert_eq!(r.data[1].index, 1);
    assert_eq!(r.usage.total_tokens, 9);
}

const NATIVE_SSE: &str = "id:1\nevent:result\n:HTTP_STATUS/200\ndata:{\"output\":{\"choices\":[{\"message\":{\"content\":\"Hel\",\"role\":\"assistant\"},\"finish_reason\":\"null\"}]},\"usage\":{\"input_tokens\":7,\"output_tokens\":1,\"total_tokens\":8},\"request_id\":\"r\"}\n\n\
id:2\nevent:result\n:HTTP_STATUS/200\ndata:{\"output\":{\"choices\":[{\"message\":{\"content\":\"lo\",\"role\":\"assistant\"},\"finish_reason\":\"stop\"}]},\"usage\":{\"input_tokens\":7,\"output_tokens\":2,\"total_tokens\":9},\"request_id\":\"r\"}\n\n";

fn native(parts: &[&str]) -> ChunkStream {
    stream::drive(
        body(parts),
        Framing::Sse,
        NativeStream {
            id: "x".into(),
            created: 1,
            model: "qwen-plus".into(),
            first: true,
        },
    )
}

#[tokio::test]
async fn native_stream_without_done_ends_on_finish_reason() {
    let (chunks, err) = collect(native(&[NATIVE_SSE])).await;
    assert!(err.is_none(), "{err:?}");
    let text: String = chunks
        .iter()
        .filter_map(|c| c.choices[0].delta.content.clone())
        .collect();
    assert_eq!(text, "Hello");
    assert_eq!(chunks[0].choices[0].delta.role, Some(Role::Assistant));
    assert_eq!(chunks[1].usage, Some(Usage::new(7, 2)));
    let cut = &NATIVE_SSE[..NATIVE_SSE.find("id:2").unwrap()];
    let (_, err) = collect(native(&[cut])).await;
    assert_eq!(err.unwrap().class, ErrorClass::Malformed, "no final event: cut");
}

#[tokio::test]
async fn native_mid_stream_error_event_is_classified() {
    let first = &NATIVE_SSE[..NATIVE_SSE.find("id:2").unwrap()];
    let e = "id:2\nevent:error\n:HTTP_STATUS/400\ndata:{\"code\":\"DataInspectionFailed\",\"message\":\"Output data may contain inappropriate content.\",\"request_id\":\"r\"}\n\n";
    let (chunks, err) = collect(native(&[first, e])).await;
    assert_eq!(chunks.len(), 1);
    assert_eq!(err.unwrap().class, ErrorClass::ContentFilter);
}

#[test]
fn dashscope_codes_native_and_compatible() {
    let h = HeaderMap::new();
    let cases = [
        (
            400,
            r#"{"code":"Arrearage","message":"Access denied, please make sure your account is in good standing.","request_id":"x"}"#,
            ErrorClass::QuotaExhausted,
        ),
        (
            400,
            r#"{"error":{"message":"Access denied","type":"Arrearage","param":null,"code":"Arrearage"},"request_id":"x"}"#,
            ErrorClass::QuotaExhausted,
        ),
        (
            400,
            r#"{"code":"DataInspectionFailed","message":"Input or output data may contain inappropriate content."}"#,
            ErrorClass::ContentFilter,
        ),
        (
            400,
            r#"{"code":"InvalidParameter","message":"Required parameter(s) missing or invalid"}"#,
            ErrorClass::BadRequest,
        ),
        (
            400,
            r#"{"code":"InvalidParameter","message":"Range of input length should be [1, 30720]"}"#,
            ErrorClass::ContextLength,
        ),
        (
            401,
            r#"{"code":"InvalidApiKey","message":"Invalid API-key provided."}"#,
            ErrorClass::Auth,
        ),
        (
            401,
            r#"{"error":{"message":"Incorrect API key provided.","type":"invalid_request_error","code":"invalid_api_key"},"request_id":"x"}"#,
            ErrorClass::Auth,
        ),
        (
            403,
            r#"{"code":"AccessDenied.Unpurchased","message":"Access to model denied."}"#,
            ErrorClass::Auth,
        ),
        (
            429,
            r#"{"code":"Throttling.RateQuota","message":"Requests rate limit exceeded, please try again later."}"#,
            ErrorClass::RateLimited,
        ),
        (
            429,
            r#"{"code":"Throttling.AllocationQuota","message":"Allocated quota exceeded"}"#,
            ErrorClass::QuotaExhausted,
        ),
        (
            429,
            r#"{"error":{"message":"You have exceeded your current request limit.","type":"limit_requests","code":"limit_requests"}}"#,
            ErrorClass::RateLimited,
        ),
        (
            500,
            r#"{"code":"InternalError.Algo","message":"An internal error has occured"}"#,
            ErrorClass::Overloaded,
        ),
        (503, "Service Unavailable", ErrorClass::Overloaded),
    ];
    for (status, b, want) in cases {
        assert_eq!(classify(status, &h, b).class, want, "{b}");
    }
}

#[tokio::test]
async fn native_stream_tool_calls_become_deltas() {
    let ev = "id:1\nevent:result\ndata:{\"output\":{\"choices\":[{\"message\":{\"content\":\"\",\"role\":\"assistant\",\"tool_calls\":[{\"id\":\"call_1\",\"type\":\"function\",\"function\":{\"name\":\"get_weather\",\"arguments\":\"{\\\"city\\\":\\\"Hangzhou\\\"}\"}}]},\"finish_reason\":\"tool_calls\"}]},\"usage\":{\"input_tokens\":5,\"output_tokens\":3}}\n\n";
    let (chunks, err) = collect(native(&[ev])).await;
    assert!(err.is_none(), "{err:?}");
    let calls = chunks[0].choices[0].delta.tool_calls.as_ref().unwrap();
    assert_eq!(calls[0].id.as_deref(), Some("call_1"));
    assert_eq!(calls[0].function.as_ref().unwrap()["name"], "get_weather");
    assert_eq!(chunks[0].choices[0].finish_reason.as_deref(), Some("tool_calls"));
}
