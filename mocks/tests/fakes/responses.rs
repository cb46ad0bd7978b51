//! `POST /v1/responses` of the OpenAI and Ollama fakes: the object, the event grammar, function calls,
//! `text.format`, faults (in-stream ones after `response.created` too) and a 400 for every field of the wrong type.

use crate::common::*;
use llm_mocks::{FakeServer, Provider};
use serde_json::{json, Value};

const KEY: Option<&str> = Some("sk-test");

async fn create(f: &FakeServer, body: Value) -> Reply {
    post(f, "/v1/responses", KEY, body).await
}

fn weather_tools() -> Value {
    json!([{"type": "function", "name": "get_weather", "description": "Weather in a city", "strict": true,
        "parameters": {"type": "object", "properties": {"city": {"type": "string"}, "days": {"type": "integer"}},
            "required": ["city", "days"], "additionalProperties": false}},
        {"type": "function", "name": "book", "parameters": {"type": "object",
            "properties": {"when": {"type": "string", "format": "date"}}, "required": ["when"]}},
        {"type": "web_search"}])
}

fn output_text(r: &Value) -> String {
    r["output"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|i| i["type"] == "message")
        .flat_map(|i| i["content"].as_array().unwrap().iter())
        .filter_map(|p| p["text"].as_str())
        .collect()
}

#[tokio::test]
async fn plain_answer_is_a_response_object_with_the_chat_text() {
    for (p, model) in [(Provider::OpenAi, "gpt-4o-mini"), (Provider::Ollama, "llama3.2")] {
        let f = start(p).await;
        let r = create(
            &f,
            json!({"model": model, "input": "Hello there", "instructions": "Be brief."}),
        )
        .await;
        assert_eq!(r.status, 200, "{}", r.text);
        let v = r.json();
        assert!(v["id"].as_str().unwrap().starts_with("resp_"), "{v}");
        assert_eq!(v["object"], "response");
        assert_eq!(v["status"], "completed");
        assert_eq!(v["model"], model);
        assert_eq!(v["instructions"], "Be brief.");
        assert!(v["created_at"].is_u64() && v["incomplete_details"].is_null() && v["error"].is_null());
        for k in [
            "tools",
            "tool_choice",
            "parallel_tool_calls",
            "text",
            "usage",
            "metadata",
            "store",
            "truncation",
        ] {
            assert!(v.get(k).is_some(), "{k} missing: {v}");
        }
        let item = &v["output"][0];
        assert_eq!(item["type"], "message");
        assert!(item["id"].as_str().unwrap().starts_with("msg_"));
        assert_eq!(item["role"], "assistant");
        assert_eq!(item["content"][0]["type"], "output_text");
        assert_eq!(item["content"][0]["annotations"], json!([]));
        let u = &v["usage"];
        assert_eq!(
            u["total_tokens"].as_u64(),
            Some(u["input_tokens"].as_u64().unwrap() + u["output_tokens"].as_u64().unwrap())
        );
        assert_eq!(u["input_tokens_details"]["cached_tokens"], 0);
        assert_eq!(u["output_tokens_details"]["reasoning_tokens"], 0);
        // The same deterministic answer as chat gives to the same prompt.
        let chat = post(
            &f,
            "/v1/chat/completions",
            KEY,
            chat_body(model, "Hello there", false),
        )
        .await;
        assert_eq!(
            output_text(&v),
            chat.json()["choices"][0]["message"]["content"].as_str().unwrap()
        );
        assert!(output_text(&v).starts_with(&format!("[{}] ", p.name())));
        // The journal has it.
        assert!(f.journal().iter().any(|e| e.path == "/v1/responses"));
    }
}

#[tokio::test]
async fn item_lists_with_roles_and_parts_answer_the_last_user_text() {
    let f = start(Provider::OpenAi).await;
    let r = create(&f, json!({"model": "gpt-4o-mini", "input": [
        {"role": "developer", "content": "Answer in English."},
        {"type": "message", "role": "system", "content": [{"type": "input_text", "text": "Be kind."}]},
        {"role": "assistant", "content": [{"type": "output_text", "text": "Earlier.", "annotations": []}], "id": "msg_1", "status": "completed"},
        {"type": "reasoning", "id": "rs_1", "summary": []},
        {"role": "user", "content": [{"type": "input_text", "text": "Tell me more"}]}]})).await;
    assert_eq!(r.status, 200, "{}", r.text);
    let chat = post(
        &f,
        "/v1/chat/completions",
        KEY,
        chat_body("gpt-4o-mini", "Tell me more", false),
    )
    .await;
    assert_eq!(
        output_text(&r.json()),
        chat.json()["choices"][0]["message"]["content"].as_str().unwrap()
    );
}

#[tokio::test]
async fn stream_follows_the_event_grammar_with_sequence_numbers() {
    let f = start(Provider::OpenAi).await;
    let plain = create(&f, json!({"model": "gpt-4o-mini", "input": "Stream please"}))
        .await
        .json();
    let r = create(
        &f,
        json!({"model": "gpt-4o-mini", "input": "Stream please", "stream": true}),
    )
    .await;
    assert_eq!(r.status, 200);
    assert!(r.header("content-type").unwrap().starts_with("text/event-stream"));
    let events = sse_events(&r.text);
    for (i, (name, data)) in events.iter().enumerate() {
        assert_eq!(data["type"], name.as_str(), "event line matches data.type");
        assert_eq!(data["sequence_number"], i as u64, "{name}");
    }
    let names: Vec<&str> = events.iter().map(|(n, _)| n.as_str()).collect();
    let deltas = names
        .iter()
        .filter(|n| **n == "response.output_text.delta")
        .count();
    assert!(deltas > 3, "{names:?}");
    let mut want = vec![
        "response.created",
        "response.in_progress",
        "response.output_item.added",
        "response.content_part.added",
    ];
    want.extend(std::iter::repeat_n("response.output_text.delta", deltas));
    want.extend([
        "response.output_text.done",
        "response.content_part.done",
        "response.output_item.done",
        "response.completed",
    ]);
    assert_eq!(names, want);
    assert_eq!(events[0].1["response"]["status"], "in_progress");
    assert_eq!(events[0].1["response"]["output"], json!([]));
    let text: String = events
        .iter()
        .filter(|(n, _)| n == "response.output_text.delta")
        .map(|(_, d)| d["delta"].as_str().unwrap().to_string())
        .collect();
    let done = &events.last().unwrap().1["response"];
    assert_eq!(text, output_text(done));
    assert_eq!(text, output_text(&plain));
    assert_eq!(done["status"], "completed");
    let item_id = &events[2].1["item"]["id"];
    assert!(events[3..events.len() - 1]
        .iter()
        .all(|(_, d)| d.get("item_id").is_none_or(|i| i == item_id)));
    assert!(!r.text.contains("[DONE]"));
}

#[tokio::test]
async fn function_call_round_trip_plain_and_streamed() {
    let f = start(Provider::OpenAi).await;
    let r = create(
        &f,
        json!({"model": "gpt-4o-mini", "input": "Weather in Oslo?", "tools": weather_tools()}),
    )
    .await;
    assert_eq!(r.status, 200, "{}", r.text);
    let v = r.json();
    let call = &v["output"][0];
    assert_eq!(call["type"], "function_call");
    assert_eq!(call["name"], "get_weather");
    assert_eq!(call["status"], "completed");
    assert!(call["id"].as_str().unwrap().starts_with("fc_"));
    let call_id = call["call_id"].as_str().unwrap();
    assert!(call_id.starts_with("call_"));
    let args: Value = serde_json::from_str(call["arguments"].as_str().unwrap()).unwrap();
    let schema = &weather_tools()[0]["parameters"];
    check_schema(schema, schema, &args, "$").unwrap();
    assert_eq!(v["tools"], weather_tools(), "tools are echoed");
    // The result goes back: now the answer is text.
    let r = create(
        &f,
        json!({"model": "gpt-4o-mini", "tools": weather_tools(), "input": [
        {"role": "user", "content": "Weather in Oslo?"},
        {"type": "function_call", "call_id": call_id, "name": "get_weather", "arguments": call["arguments"]},
        {"type": "function_call_output", "call_id": call_id, "output": "{\"temp\": 21}"}]}),
    )
    .await;
    assert_eq!(r.status, 200, "{}", r.text);
    assert_eq!(r.json()["output"][0]["type"], "message");
    // Streamed: arguments deltas, then done with the name.
    let r = create(&f, json!({"model": "gpt-4o-mini", "input": "Weather in Oslo?", "tools": weather_tools(), "stream": true})).await;
    let events = sse_events(&r.text);
    let names: Vec<&str> = events.iter().map(|(n, _)| n.as_str()).collect();
    assert_eq!(
        names[..3],
        [
            "response.created",
            "response.in_progress",
            "response.output_item.added"
        ]
    );
    assert_eq!(events[2].1["item"]["type"], "function_call");
    assert_eq!(events[2].1["item"]["arguments"], "");
    let streamed: String = events
        .iter()
        .filter(|(n, _)| n == "response.function_call_arguments.delta")
        .map(|(_, d)| d["delta"].as_str().unwrap().to_string())
        .collect();
    let done = events
        .iter()
        .find(|(n, _)| n == "response.function_call_arguments.done")
        .unwrap();
    assert_eq!(done.1["name"], "get_weather");
    assert_eq!(done.1["arguments"], streamed.as_str());
    assert_eq!(streamed, call["arguments"].as_str().unwrap());
    assert_eq!(names.last(), Some(&"response.completed"));
}

#[tokio::test]
async fn forced_tool_choice_calls_that_tool() {
    let f = start(Provider::OpenAi).await;
    for (choice, name) in [
        (json!({"type": "function", "name": "book"}), "book"),
        (json!("required"), "get_weather"),
    ] {
        let r = create(&f, json!({"model": "gpt-4o-mini", "input": "Book it", "tools": weather_tools(), "tool_choice": choice})).await;
        let call = &r.json()["output"][0];
        assert_eq!(call["name"], name, "{}", r.text);
        let args: Value = serde_json::from_str(call["arguments"].as_str().unwrap()).unwrap();
        if name == "book" {
            assert_eq!(args["when"].as_str().unwrap().len(), 10, "a date: {args}");
        }
    }
    let r = create(
        &f,
        json!({"model": "gpt-4o-mini", "input": "x", "tools": weather_tools(), "tool_choice": "none"}),
    )
    .await;
    assert_eq!(r.json()["output"][0]["type"], "message");
}

#[tokio::test]
async fn text_format_json_schema_gives_an_instance() {
    for (p, model) in [(Provider::OpenAi, "gpt-4o-mini"), (Provider::Ollama, "llama3.2")] {
        let f = start(p).await;
        let schema = event_schema();
        for stream in [false, true] {
            let r = create(&f, json!({"model": model, "input": "Plan a meeting", "stream": stream,
                "text": {"format": {"type": "json_schema", "name": "Event", "schema": schema, "strict": true}}})).await;
            assert_eq!(r.status, 200, "{}", r.text);
            let v = if stream {
                sse_events(&r.text).last().unwrap().1["response"].clone()
            } else {
                r.json()
            };
            assert_eq!(v["text"]["format"]["name"], "Event");
            let got: Value = serde_json::from_str(&output_text(&v)).unwrap();
            check_schema(&schema, &schema, &got, "$").unwrap();
            assert_eq!(got["kind"], "meeting");
            assert!(got["attendees"][1].as_str().unwrap().contains('@'));
        }
        let r = create(
            &f,
            json!({"model": model, "input": "x", "text": {"format": {"type": "json_object"}}}),
        )
        .await;
        let got: Value = serde_json::from_str(&output_text(&r.json())).unwrap();
        assert!(got.is_object());
    }
}

#[tokio::test]
async fn max_output_tokens_makes_an_incomplete_response() {
    let f = start(Provider::OpenAi).await;
    let r = create(
        &f,
        json!({"model": "gpt-4o-mini", "input": "x", "max_output_tokens": 16}),
    )
    .await;
    let v = r.json();
    assert_eq!(v["status"], "incomplete");
    assert_eq!(v["incomplete_details"]["reason"], "max_output_tokens");
    assert_eq!(v["max_output_tokens"], 16);
    let r = create(
        &f,
        json!({"model": "gpt-4o-mini", "input": "x", "max_output_tokens": 16, "stream": true}),
    )
    .await;
    let events = sse_events(&r.text);
    assert_eq!(events.last().unwrap().0, "response.incomplete");
}

#[tokio::test]
async fn http_error_faults_use_the_openai_error_shape() {
    let f = start(Provider::OpenAi).await;
    for (fault_name, status, code) in [
        ("rate_limited", 429, "rate_limit_exceeded"),
        ("quota_exhausted", 429, "insufficient_quota"),
        ("overloaded", 503, "server_is_overloaded"),
        ("auth", 401, "invalid_api_key"),
        ("context_length", 400, "context_length_exceeded"),
    ] {
        for stream in [false, true] {
            fault(&f, json!({"fault": fault_name, "times": 1})).await;
            let r = create(
                &f,
                json!({"model": "gpt-4o-mini", "input": "x", "stream": stream}),
            )
            .await;
            assert_eq!(r.status, status, "{fault_name}: {}", r.text);
            assert_eq!(r.json()["error"]["code"], code);
        }
    }
    fault(&f, json!({"fault": "server_error", "times": 1})).await;
    let r = create(&f, json!({"model": "gpt-4o-mini", "input": "x"})).await;
    assert_eq!(
        (r.status, r.json()["error"]["type"].as_str()),
        (500, Some("server_error"))
    );
    // Ollama's /v1 in its own dialect, without a key.
    let o = start(Provider::Ollama).await;
    fault(&o, json!({"fault": "overloaded", "times": 1})).await;
    let r = post(
        &o,
        "/v1/responses",
        None,
        json!({"model": "llama3.2", "input": "x"}),
    )
    .await;
    assert_eq!(
        (r.status, r.json()["error"]["type"].as_str()),
        (503, Some("api_error"))
    );
    let r = post(
        &o,
        "/v1/responses",
        None,
        json!({"model": "llama3.2", "input": "x"}),
    )
    .await;
    assert_eq!(r.status, 200);
}

fn failed_after_created(text: &str) -> (Vec<String>, Value) {
    let events = sse_events(text);
    for (i, (_, d)) in events.iter().enumerate() {
        assert_eq!(d["sequence_number"], i as u64);
    }
    let names: Vec<String> = events.iter().map(|(n, _)| n.clone()).collect();
    assert_eq!(names[0], "response.created");
    let n = names.len();
    assert_eq!(names[n - 2..], ["error", "response.failed"], "{names:?}");
    let err = &events[n - 2].1;
    assert_eq!(err["error"]["code"], err["code"]);
    let failed = events[n - 1].1["response"].clone();
    assert_eq!(failed["status"], "failed");
    (names, failed)
}

#[tokio::test]
async fn stream_faults_fail_or_cut_after_response_created() {
    let f = start(Provider::OpenAi).await;
    let body = json!({"model": "gpt-4o-mini", "input": "x", "stream": true});
    fault(
        &f,
        json!({"fault": "stream_error", "times": 1, "after_chunks": 2}),
    )
    .await;
    let r = create(&f, body.clone()).await;
    assert_eq!(r.status, 200);
    let (names, failed) = failed_after_created(&r.text);
    assert_eq!(
        names
            .iter()
            .filter(|n| *n == "response.output_text.delta")
            .count(),
        2
    );
    assert_eq!(failed["error"]["code"], "server_error");
    assert_eq!(failed["output"][0]["status"], "incomplete");
    // A quota running out in-stream: after response.created, before any delta.
    fault(
        &f,
        json!({"fault": "quota_exhausted", "times": 1, "after_chunks": 0}),
    )
    .await;
    let (names, failed) = failed_after_created(&create(&f, body.clone()).await.text);
    assert!(
        !names.iter().any(|n| n == "response.output_text.delta"),
        "{names:?}"
    );
    assert_eq!(failed["error"]["code"], "insufficient_quota");
    fault(
        &f,
        json!({"fault": "rate_limited", "times": 1, "after_chunks": 1}),
    )
    .await;
    let (_, failed) = failed_after_created(&create(&f, body.clone()).await.text);
    assert_eq!(failed["error"]["code"], "rate_limit_exceeded");
    // Truncated: no terminal event at all.
    fault(
        &f,
        json!({"fault": "truncated_stream", "times": 1, "after_chunks": 3}),
    )
    .await;
    let events = sse_events(&create(&f, body.clone()).await.text);
    assert_eq!(events[0].0, "response.created");
    assert_eq!(
        events
            .iter()
            .filter(|(n, _)| n == "response.output_text.delta")
            .count(),
        3
    );
    assert!(events
        .iter()
        .all(|(n, _)| !matches!(n.as_str(), "response.completed" | "response.failed" | "error")));
    // Malformed: the last event is not JSON.
    fault(&f, json!({"fault": "malformed", "times": 1})).await;
    let events = sse_events(&create(&f, body.clone()).await.text);
    assert!(events.last().unwrap().1.is_string());
    // A plain request under a stream fault gets a body cut short.
    fault(&f, json!({"fault": "truncated_stream", "times": 1})).await;
    let r = create(&f, json!({"model": "gpt-4o-mini", "input": "x"})).await;
    assert!(serde_json::from_str::<Value>(&r.text).is_err());
    // Content filter: an incomplete response.
    fault(&f, json!({"fault": "content_filter", "times": 1})).await;
    let v = create(&f, json!({"model": "gpt-4o-mini", "input": "x"}))
        .await
        .json();
    assert_eq!(
        (v["status"].as_str(), v["incomplete_details"]["reason"].as_str()),
        (Some("incomplete"), Some("content_filter"))
    );
}

#[tokio::test]
async fn drop_connection_cuts_the_stream_after_n_events() {
    let f = start(Provider::OpenAi).await;
    fault(
        &f,
        json!({"fault": "drop_connection", "times": 1, "after_chunks": 3}),
    )
    .await;
    let res = reqwest::Client::new()
        .post(format!("{}/v1/responses", f.uri()))
        .bearer_auth("k")
        .json(&json!({"model": "gpt-4o-mini", "input": "x", "stream": true}))
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 200);
    let got = res.text().await;
    assert!(got.is_err(), "the body ends in a cut");
    fault(&f, json!({"fault": "drop_connection", "times": 1})).await;
    let res = reqwest::Client::new()
        .post(format!("{}/v1/responses", f.uri()))
        .bearer_auth("k")
        .json(&json!({"model": "gpt-4o-mini", "input": "x"}))
        .send()
        .await;
    assert!(res.is_err());
}

#[tokio::test]
async fn wrong_types_in_every_field_are_400s_naming_it() {
    let f = start(Provider::OpenAi).await;
    let base = json!({"model": "gpt-4o-mini", "input": "x"});
    let cases: Vec<(&str, Value)> = vec![
        ("model", json!(5)),
        ("model", json!(null)),
        ("input", json!(5)),
        ("input", json!({"a": 1})),
        ("input", json!(null)),
        ("input", json!([5])),
        ("input", json!([{"role": 5, "content": "x"}])),
        ("input", json!([{"role": "robot", "content": "x"}])),
        ("input", json!([{"role": "user", "content": 5}])),
        ("input", json!([{"role": "user", "content": [5]}])),
        (
            "input",
            json!([{"role": "user", "content": [{"type": "input_text", "text": 5}]}]),
        ),
        ("input", json!([{"role": "user", "content": [{"type": "bogus"}]}])),
        ("input", json!([{"type": 5}])),
        (
            "input",
            json!([{"type": "function_call", "name": "f", "arguments": {}}]),
        ),
        (
            "input",
            json!([{"type": "function_call_output", "call_id": "c", "output": 5}]),
        ),
        ("input", json!([{"type": "item_reference", "id": "x"}])),
        ("input", json!([{"type": "strange"}])),
        ("instructions", json!(5)),
        ("tools", json!({})),
        ("tools", json!([5])),
        ("tools", json!([{"type": 5}])),
        ("tools", json!([{"type": "function"}])),
        (
            "tools",
            json!([{"type": "function", "name": "f", "parameters": "x"}]),
        ),
        (
            "tools",
            json!([{"type": "function", "name": "f", "strict": "yes"}]),
        ),
        ("tools", json!([{"type": "teleport"}])),
        ("tool_choice", json!(5)),
        ("tool_choice", json!("sometimes")),
        ("tool_choice", json!({"type": "function"})),
        ("tool_choice", json!({"type": "function", "name": "nope"})),
        ("tool_choice", json!({"type": 5})),
        ("text", json!("json")),
        ("text", json!({"format": "json"})),
        ("text", json!({"format": {"type": 5}})),
        ("text", json!({"format": {"type": "yaml"}})),
        ("text", json!({"format": {"type": "json_schema", "schema": {}}})),
        ("text", json!({"format": {"type": "json_schema", "name": "x"}})),
        (
            "text",
            json!({"format": {"type": "json_schema", "name": "x", "schema": 5}}),
        ),
        (
            "text",
            json!({"format": {"type": "json_schema", "name": 5, "schema": {}}}),
        ),
        ("text", json!({"verbosity": 5})),
        ("max_output_tokens", json!("many")),
        ("max_output_tokens", json!(-1)),
        ("max_output_tokens", json!(3)),
        ("max_output_tokens", json!(1.5)),
        ("stream", json!("yes")),
        ("temperature", json!("hot")),
        ("temperature", json!(7)),
        ("top_p", json!([])),
        ("parallel_tool_calls", json!(1)),
        ("store", json!("no")),
        ("metadata", json!([])),
        ("metadata", json!({"a": 1})),
        ("user", json!(5)),
        ("include", json!("x")),
        ("reasoning", json!("high")),
        ("previous_response_id", json!("resp_1")),
        ("previous_response_id", json!(5)),
    ];
    for (field, bad) in cases {
        let mut body = base.clone();
        body[field] = bad.clone();
        let r = create(&f, body).await;
        assert_eq!(r.status, 400, "{field}={bad}: {}", r.text);
        let e = &r.json()["error"];
        assert_eq!(e["type"], "invalid_request_error", "{field}={bad}");
        assert_eq!(e["param"], field, "{field}={bad}: {e}");
    }
    for raw in ["not json", "[1,2]", "\"x\"", "{\"model\":"] {
        let r = post_raw(&f, "/v1/responses", KEY, raw.to_string()).await;
        assert_eq!(r.status, 400, "{raw}");
    }
    assert_eq!(
        create(&f, json!({"model": "gpt-nope", "input": "x"}))
            .await
            .status,
        404
    );
    assert_eq!(post(&f, "/v1/responses", None, base.clone()).await.status, 401);
    // Still serving, and none of these used up a fault.
    fault(&f, json!({"fault": "server_error", "times": 1})).await;
    let r = create(
        &f,
        json!({"model": "gpt-4o-mini", "input": [{"role": "user", "content": 5}]}),
    )
    .await;
    assert_eq!(r.status, 400);
    assert_eq!(create(&f, base).await.status, 500);
}

/// Every field, every JSON type: an answer or a 4xx, never a 5xx or a dropped connection.
#[tokio::test]
async fn any_value_in_any_field_is_answered() {
    let values = [
        json!(null),
        json!(true),
        json!(-1),
        json!(1.5),
        json!("x"),
        json!([]),
        json!({}),
        json!([1]),
        json!({"a": 1}),
        json!([{"type": "function"}]),
        json!({"type": "json_schema", "schema": 1}),
    ];
    let fields = [
        "model",
        "input",
        "instructions",
        "tools",
        "tool_choice",
        "text",
        "max_output_tokens",
        "stream",
        "temperature",
        "top_p",
        "parallel_tool_calls",
        "store",
        "metadata",
        "user",
        "include",
        "reasoning",
        "previous_response_id",
        "truncation",
        "background",
    ];
    for (p, model) in [(Provider::OpenAi, "gpt-4o-mini"), (Provider::Ollama, "llama3.2")] {
        let f = start(p).await;
        for field in fields {
            for v in &values {
                let mut body = json!({"model": model, "input": "x"});
                body[field] = v.clone();
                let r = create(&f, body).await;
                assert!(
                    r.status == 200 || (400..500).contains(&r.status),
                    "{p} {field}={v}: {} {}",
                    r.status,
                    r.text
                );
            }
        }
    }
}

#[tokio::test]
async fn stream_delay_paces_responses_events_and_kimi_has_no_responses_route() {
    let f = start(Provider::OpenAi).await;
    post(&f, "/__mock/settings", None, json!({"stream_delay_ms": 20})).await;
    let t0 = tokio::time::Instant::now();
    let r = create(
        &f,
        json!({"model": "gpt-4o-mini", "input": "pace me", "stream": true}),
    )
    .await;
    let events = sse_events(&r.text).len() as u32;
    assert!(events > 8);
    assert!(
        t0.elapsed() >= std::time::Duration::from_millis(20) * (events - 2),
        "{:?}",
        t0.elapsed()
    );
    let k = start(Provider::Kimi).await;
    let r = create(&k, json!({"model": "moonshot-v1-8k", "input": "x"})).await;
    assert_eq!(
        (r.status, r.json()["error"].as_str()),
        (404, Some("url.not_found"))
    );
}
