//! GigaChat tests on recorded fixtures (PROVIDERS.md section 4).

use serde_json::json;

use super::*;
use crate::canonical::Role;
use crate::providers::openai::tests::{body, collect};

#[test]
fn request_translates_tools_roles_and_drops_unsupported_fields() {
    let req: ChatRequest = serde_json::from_value(json!({
        "model": "default", "seed": 3, "stop": ["x"], "presence_penalty": 0.5, "repetition_penalty": 1.1,
        "messages": [
            {"role": "developer", "content": "be brief"},
            {"role": "user", "content": "weather?"},
            {"role": "assistant", "content": null, "tool_calls": [{"id": "call_1", "type": "function",
                "function": {"name": "weather_forecast", "arguments": "{\"location\":\"Москва\"}"}}]},
            {"role": "tool", "tool_call_id": "call_1", "content": "sunny"}
        ],
        "tools": [{"type": "function", "function": {"name": "weather_forecast", "parameters": {"type": "object"}}}],
        "tool_choice": {"type": "function", "function": {"name": "weather_forecast"}}
    }))
    .unwrap();
    let b = translate::request(&req, "GigaChat", false);
    assert_eq!(b["messages"][0]["role"], "system");
    assert_eq!(
        b["messages"][2]["function_call"]["arguments"]["location"], "Москва",
        "arguments become an object"
    );
    assert_eq!(b["messages"][3]["role"], "function");
    assert_eq!(b["messages"][3]["name"], "weather_forecast");
    assert_eq!(b["messages"][3]["content"], "{\"result\":\"sunny\"}");
    assert_eq!(b["functions"][0]["name"], "weather_forecast");
    assert_eq!(b["function_call"]["name"], "weather_forecast");
    assert_eq!(b["repetition_penalty"], 1.1);
    for dropped in ["seed", "stop", "presence_penalty", "tools", "tool_choice"] {
        assert!(b.get(dropped).is_none(), "{dropped}");
    }
}

#[test]
fn response_function_call_becomes_tool_call_and_blacklist_is_content_filter() {
    let v = json!({"choices":[{"message":{"role":"assistant","content":"","function_call":{"name":"weather_forecast","arguments":{"location":"Москва","num_days":10}},"functions_state_id":"s1"},"index":0,"finish_reason":"function_call"}],
        "created":1760434636,"model":"GigaChat:2.0.28.2","object":"chat.completion","usage":{"prompt_tokens":55,"completion_tokens":30,"total_tokens":85,"precached_prompt_tokens":4}});
    let r = translate::response(v).unwrap();
    let call = &r.choices[0].message.tool_calls.as_ref().unwrap()[0];
    assert_eq!(call.function.name, "weather_forecast");
    let args: serde_json::Value = serde_json::from_str(&call.function.arguments).unwrap();
    assert_eq!(args["num_days"], 10);
    assert_eq!(r.choices[0].finish_reason.as_deref(), Some("tool_calls"));
    assert!(r.choices[0].message.content.is_none());
    assert_eq!(r.usage.unwrap().total_tokens, 85);
    let v = json!({"choices":[{"message":{"role":"assistant","content":"Не могу"},"index":0,"finish_reason":"blacklist"}],"created":1,"model":"GigaChat","object":"chat.completion"});
    assert_eq!(
        translate::response(v).unwrap_err().class,
        ErrorClass::ContentFilter
    );
}

const SSE: &str = "data: {\"choices\":[{\"delta\":{\"content\":\"GigaChat is\",\"role\":\"assistant\"},\"index\":0}],\"created\":1754637655,\"model\":\"GigaChat:2.0.28.2\",\"object\":\"chat.completion\"}\n\n\
data: {\"choices\":[{\"delta\":{\"content\":\"\"},\"index\":0,\"finish_reason\":\"stop\"}],\"created\":1754637655,\"model\":\"GigaChat:2.0.28.2\",\"object\":\"chat.completion\",\"usage\":{\"prompt_tokens\":56,\"completion_tokens\":31,\"total_tokens\":87,\"precached_prompt_tokens\":3}}\n\n\
data: [DONE]\n\n";

#[tokio::test]
async fn stream_fixture() {
    let s = stream::drive(body(&[SSE]), Framing::Sse, GigaStream { id: "x".into() });
    let (chunks, err) = collect(s).await;
    assert!(err.is_none(), "{err:?}");
    assert_eq!(chunks[0].choices[0].delta.role, Some(Role::Assistant));
    assert_eq!(chunks[0].object, "chat.completion.chunk");
    assert_eq!(chunks[1].usage.unwrap().total_tokens, 87);
    let cut = &SSE[..SSE.find("data: [DONE]").unwrap()];
    let s = stream::drive(body(&[cut]), Framing::Sse, GigaStream { id: "x".into() });
    assert_eq!(collect(s).await.1.unwrap().class, ErrorClass::Malformed);
}

#[test]
fn token_parsing_accepts_both_shapes_and_seconds() {
    let t = parse_token(&json!({"access_token": "tok", "expires_at": 1706026848841u64})).unwrap();
    assert_eq!(t.expires_at_ms, 1706026848841);
    let t = parse_token(&json!({"tok": "tok", "exp": 1706026848u64})).unwrap();
    assert_eq!(t.expires_at_ms, 1706026848000);
    assert_eq!(
        parse_token(&json!({"nope": 1})).unwrap_err().class,
        ErrorClass::Auth
    );
    assert!(!format!("{t:?}").contains("tok\""), "token Debug is redacted");
}

#[test]
fn rq_uid_is_a_v4_uuid() {
    let u = rq_uid();
    assert_eq!(u.len(), 36);
    assert_eq!(&u[14..15], "4");
    assert!(matches!(&u[19..20], "8" | "9" | "a" | "b"));
    assert_ne!(u, rq_uid());
}

#[test]
fn api_and_oauth_errors() {
    let h = HeaderMap::new();
    assert_eq!(
        classify_api(402, r#"{"status":402,"message":"Payment Required"}"#),
        ErrorClass::QuotaExhausted
    );
    assert_eq!(
        classify_api(401, r#"{"status":401,"message":"Unauthorized"}"#),
        ErrorClass::Auth
    );
    assert_eq!(
        classify_api(
            422,
            r#"{"status":422,"message":"Invalid params: context too long"}"#
        ),
        ErrorClass::ContextLength
    );
    assert_eq!(
        classify_api(
            422,
            r#"{"status":422,"message":"Invalid params: repetition_penalty must be in range"}"#
        ),
        ErrorClass::BadRequest
    );
    assert_eq!(
        classify_api(429, r#"{"status":429,"message":"Too many requests"}"#),
        ErrorClass::RateLimited
    );
    assert_eq!(
        classify_api(500, r#"{"status":500,"message":"Internal Server Error"}"#),
        ErrorClass::Overloaded
    );
    let e = classify_oauth(
        401,
        &h,
        r#"{"code":6,"message":"credentials doesn't match db data"}"#,
    );
    assert_eq!(e.class, ErrorClass::Auth);
    assert_eq!(e.code.as_deref(), Some("6"));
}

fn classify_api(status: u16, b: &str) -> ErrorClass {
    classify(status, &HeaderMap::new(), b).class
}

#[test]
fn system_messages_are_merged_into_one_first_message() {
    let req: ChatRequest = serde_json::from_value(json!({
        "model": "default",
        "messages": [
            {"role": "user", "content": "hi"},
            {"role": "system", "content": "be brief"},
            {"role": "developer", "content": "use Russian"},
            {"role": "user", "content": "again"}
        ]
    }))
    .unwrap();
    let b = translate::request(&req, "GigaChat", false);
    let roles: Vec<&str> = b["messages"]
        .as_array()
        .unwrap()
        .iter()
        .map(|m| m["role"].as_str().unwrap())
        .collect();
    assert_eq!(roles, ["system", "user", "user"]);
    assert_eq!(b["messages"][0]["content"], "be brief\n\nuse Russian");
}
