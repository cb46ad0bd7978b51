//! Structured output on every chat route: `response_format` json_schema / json_object (GigaChat's flat form,
//! DashScope's `parameters.response_format`, Ollama's `format`), forced tool calls with schema-valid arguments,
//! and the provider's own 400 for a `response_format` of the wrong type.

use crate::common::*;
use llm_mocks::Provider;
use serde_json::{json, Value};

fn nested_format() -> Value {
    json!({"type": "json_schema", "json_schema": {"name": "Event", "schema": event_schema(), "strict": true}})
}

fn check(text: &str) -> Value {
    let v: Value = serde_json::from_str(text).unwrap_or_else(|e| panic!("not JSON ({e}): {text}"));
    let s = event_schema();
    check_schema(&s, &s, &v, "$").unwrap();
    v
}

/// The OpenAI-shaped chat surfaces: (provider, path, model).
const OPENAI_SHAPED: [(Provider, &str, &str); 4] = [
    (Provider::OpenAi, "/v1/chat/completions", "gpt-4o-mini"),
    (Provider::Kimi, "/v1/chat/completions", "moonshot-v1-8k"),
    (
        Provider::Qwen,
        "/compatible-mode/v1/chat/completions",
        "qwen-plus",
    ),
    (Provider::Ollama, "/v1/chat/completions", "llama3.2"),
];

#[tokio::test]
async fn openai_shaped_chat_answers_an_instance_plain_and_streamed() {
    for (p, path, model) in OPENAI_SHAPED {
        let f = start(p).await;
        let mut body = chat_body(model, "Plan a meeting", false);
        body["response_format"] = nested_format();
        let r = post(&f, path, Some("k"), body.clone()).await;
        assert_eq!(r.status, 200, "{p}: {}", r.text);
        let content = r.json()["choices"][0]["message"]["content"]
            .as_str()
            .unwrap()
            .to_string();
        let v = check(&content);
        assert_eq!(v["place"]["floor"], 1);
        body["stream"] = json!(true);
        let r = post(&f, path, Some("k"), body).await;
        let mut text = String::new();
        let mut pieces = 0;
        for d in r.sse_data().iter().filter(|d| *d != "[DONE]") {
            let c: Value = serde_json::from_str(d).unwrap();
            if let Some(t) = c["choices"][0]["delta"]["content"]
                .as_str()
                .filter(|t| !t.is_empty())
            {
                text.push_str(t);
                pieces += 1;
            }
        }
        assert!(pieces > 3, "{p}: chunked like normal content");
        assert_eq!(text, content, "{p}");
        let mut body = chat_body(model, "x", false);
        body["response_format"] = json!({"type": "json_object"});
        let r = post(&f, path, Some("k"), body).await;
        let v: Value =
            serde_json::from_str(r.json()["choices"][0]["message"]["content"].as_str().unwrap()).unwrap();
        assert!(v.is_object());
    }
}

#[tokio::test]
async fn forced_tool_choice_gets_schema_valid_arguments() {
    let tools = json!([{"type": "function", "function": {"name": "other", "parameters": {"type": "object", "properties": {}}}},
        {"type": "function", "function": {"name": "Event", "parameters": event_schema()}}]);
    for (p, path, model) in OPENAI_SHAPED {
        let f = start(p).await;
        let mut body = chat_body(model, "Plan a meeting", false);
        body["tools"] = tools.clone();
        body["tool_choice"] = json!({"type": "function", "function": {"name": "Event"}});
        let r = post(&f, path, Some("k"), body).await;
        let call = &r.json()["choices"][0]["message"]["tool_calls"][0]["function"];
        assert_eq!(call["name"], "Event", "{p}: {}", r.text);
        check(call["arguments"].as_str().unwrap());
    }
}

#[tokio::test]
async fn bad_response_format_is_each_providers_400() {
    for (p, path, model) in OPENAI_SHAPED {
        let f = start(p).await;
        for bad in [
            json!(5),
            json!({"type": "yaml"}),
            json!({"type": "json_schema", "json_schema": {"name": "x", "schema": 3}}),
        ] {
            let mut body = chat_body(model, "x", false);
            body["response_format"] = bad.clone();
            let r = post(&f, path, Some("k"), body).await;
            assert_eq!(r.status, 400, "{p} {bad}: {}", r.text);
            assert_eq!(r.json()["error"]["type"], "invalid_request_error", "{p}");
        }
    }
    let f = start(Provider::Ollama).await;
    for bad in [json!(5), json!("yaml")] {
        let r = post(
            &f,
            "/api/chat",
            None,
            json!({"model": "llama3.2", "messages": [{"role": "user", "content": "x"}], "format": bad}),
        )
        .await;
        assert_eq!(r.status, 400, "{}", r.text);
        assert!(r.json()["error"].is_string());
    }
    let q = start(Provider::Qwen).await;
    let r = post(&q, "/api/v1/services/aigc/text-generation/generation", Some("k"), json!({"model": "qwen-plus",
        "input": {"messages": [{"role": "user", "content": "x"}]}, "parameters": {"response_format": "json"}})).await;
    assert_eq!(
        (r.status, r.json()["code"].as_str()),
        (400, Some("InvalidParameter"))
    );
    let g = start(Provider::GigaChat).await;
    let token = giga_token(&g).await;
    let mut body = chat_body("GigaChat", "x", false);
    body["response_format"] = json!([1]);
    let r = post(&g, "/api/v1/chat/completions", Some(&token), body).await;
    assert_eq!(r.status, 422, "{}", r.text);
}

#[tokio::test]
async fn ollama_native_format_schema_and_json() {
    let f = start(Provider::Ollama).await;
    for stream in [false, true] {
        let r = post(
            &f,
            "/api/chat",
            None,
            json!({"model": "llama3.2", "stream": stream, "format": event_schema(),
            "messages": [{"role": "user", "content": "Plan a meeting"}]}),
        )
        .await;
        assert_eq!(r.status, 200, "{}", r.text);
        let text: String = r
            .ndjson()
            .iter()
            .filter_map(|l| l["message"]["content"].as_str())
            .collect();
        check(&text);
    }
    let r = post(
        &f,
        "/api/generate",
        None,
        json!({"model": "llama3.2", "stream": false, "format": "json", "prompt": "x"}),
    )
    .await;
    assert!(
        serde_json::from_str::<Value>(r.json()["response"].as_str().unwrap())
            .unwrap()
            .is_object()
    );
}

#[tokio::test]
async fn dashscope_native_and_gigachat_forms() {
    let q = start(Provider::Qwen).await;
    let r = post(
        &q,
        "/api/v1/services/aigc/text-generation/generation",
        Some("k"),
        json!({"model": "qwen-plus",
        "input": {"messages": [{"role": "user", "content": "Plan"}]},
        "parameters": {"result_format": "message", "response_format": nested_format()}}),
    )
    .await;
    assert_eq!(r.status, 200, "{}", r.text);
    check(
        r.json()["output"]["choices"][0]["message"]["content"]
            .as_str()
            .unwrap(),
    );
    let g = start(Provider::GigaChat).await;
    let token = giga_token(&g).await;
    // GigaChat's flat form: {type: json_schema, schema, strict}.
    let mut body = chat_body("GigaChat", "Plan", false);
    body["response_format"] = json!({"type": "json_schema", "schema": event_schema(), "strict": true});
    let r = post(&g, "/api/v1/chat/completions", Some(&token), body).await;
    assert_eq!(r.status, 200, "{}", r.text);
    check(r.json()["choices"][0]["message"]["content"].as_str().unwrap());
    // Forced function call: object arguments that fit the schema.
    let mut body = chat_body("GigaChat", "Plan", false);
    body["functions"] = json!([{"name": "other", "parameters": {"type": "object"}}, {"name": "Event", "parameters": event_schema()}]);
    body["function_call"] = json!({"name": "Event"});
    let r = post(&g, "/api/v1/chat/completions", Some(&token), body).await;
    let call = &r.json()["choices"][0]["message"]["function_call"];
    assert_eq!(call["name"], "Event", "{}", r.text);
    check(&call["arguments"].to_string());
}

/// Structured-output and tool fields of every type on every chat route: an answer or a 4xx, never a 5xx.
#[tokio::test]
async fn any_value_in_structured_fields_is_answered() {
    let values = [
        json!(null),
        json!(true),
        json!(-1),
        json!(1.5),
        json!("json"),
        json!([]),
        json!({}),
        json!([1]),
        json!({"type": "json_schema"}),
        json!({"type": "json_schema", "json_schema": {"schema": {"$ref": "#"}}}),
        json!({"type": "function", "function": {"name": 1}}),
        json!([{"type": "function", "function": {"name": "f", "parameters": 3}}]),
    ];
    let fields = [
        "response_format",
        "tools",
        "tool_choice",
        "functions",
        "function_call",
        "format",
    ];
    let g = start(Provider::GigaChat).await;
    let token = giga_token(&g).await;
    let mut surfaces: Vec<(llm_mocks::FakeServer, &str, &str, Option<String>)> = Vec::new();
    for (p, path, model) in OPENAI_SHAPED {
        surfaces.push((start(p).await, path, model, Some("k".into())));
    }
    surfaces.push((start(Provider::Ollama).await, "/api/chat", "llama3.2", None));
    surfaces.push((g, "/api/v1/chat/completions", "GigaChat", Some(token)));
    for (f, path, model, key) in &surfaces {
        for field in fields {
            for v in &values {
                let mut body = chat_body(model, "x", false);
                body[field] = v.clone();
                let r = post(f, path, key.as_deref(), body).await;
                assert!(
                    r.status == 200 || (400..500).contains(&r.status),
                    "{path} {field}={v}: {} {}",
                    r.status,
                    r.text
                );
            }
        }
    }
}
