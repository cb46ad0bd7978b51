//! `POST /v1/responses` (OpenAI Responses) against the fakes: the same pipeline as the chat route (fallback
//! before the first delta, an explicit `response.failed` after it), the Responses object and event grammar.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod common;

use common::*;
use llm_mocks::{FaultKind, FaultSpec};
use serde_json::{json, Value};

fn plain(input: Value) -> Value {
    json!({"model": "default", "input": input})
}

fn streamed(input: Value) -> Value {
    json!({"model": "default", "input": input, "stream": true})
}

/// The events of a Responses SSE body: (`event:` line, data JSON); `[DONE]` as ("", "[DONE]").
fn events(body: &str) -> Vec<(String, Value)> {
    let mut out = Vec::new();
    let mut name = String::new();
    for line in body.lines() {
        if let Some(n) = line.strip_prefix("event: ") {
            name = n.to_string();
        } else if let Some(d) = line.strip_prefix("data: ") {
            if d == "[DONE]" {
                out.push((String::new(), json!("[DONE]")));
            } else {
                let v: Value = serde_json::from_str(d).unwrap_or_else(|e| panic!("{e}: {d}"));
                out.push((std::mem::take(&mut name), v));
            }
        }
    }
    out
}

fn types(evs: &[(String, Value)]) -> Vec<String> {
    evs.iter()
        .filter_map(|(_, v)| v["type"].as_str().map(str::to_string))
        .collect()
}

fn deltas(evs: &[(String, Value)]) -> String {
    evs.iter()
        .filter(|(_, v)| v["type"] == "response.output_text.delta")
        .filter_map(|(_, v)| v["delta"].as_str())
        .collect()
}

/// Every event names its type in `event:` and `type`, with `sequence_number` 0, 1, 2...
fn assert_grammar(evs: &[(String, Value)]) {
    for (seq, (name, v)) in evs.iter().filter(|(_, v)| v.is_object()).enumerate() {
        assert_eq!(name, v["type"].as_str().unwrap(), "{v}");
        assert_eq!(v["sequence_number"], seq, "{v}");
    }
    assert_eq!(evs[0].1["type"], "response.created", "{evs:?}");
}

#[tokio::test]
async fn a_plain_response_is_the_responses_object_with_usage() {
    let s = stand().await;
    let body = json!({"model": "default", "input": "Say hello to the gateway", "instructions": "Be brief.",
        "metadata": {"team": "a"}, "store": false, "some_future_field": {"x": 1}});
    let r = call(&s.app, "POST", "/v1/responses", Some(body), &[]).await;
    assert_eq!(r.status, 200, "{}", r.body);
    assert_eq!(r.header("x-llm-actual-provider"), "openai");
    assert_eq!(r.header("x-llm-source"), "provider");
    let v = r.json();
    assert!(v["id"].as_str().unwrap().starts_with("resp_"), "{v}");
    assert_eq!(v["object"], "response");
    assert_eq!(v["status"], "completed");
    assert!(v["created_at"].as_u64().unwrap() > 0);
    assert_eq!(v["instructions"], "Be brief.");
    assert_eq!(v["metadata"]["team"], "a");
    assert_eq!(v["output"][0]["type"], "message");
    assert_eq!(v["output"][0]["role"], "assistant");
    assert!(v["output"][0]["id"].as_str().unwrap().starts_with("msg_"));
    let text = v["output"][0]["content"][0]["text"].as_str().unwrap();
    assert!(text.starts_with("[openai]"), "{v}");
    let u = &v["usage"];
    assert!(u["input_tokens"].as_u64().unwrap() > 0, "{v}");
    assert!(u["output_tokens"].as_u64().unwrap() > 0, "{v}");
    assert_eq!(
        u["total_tokens"].as_u64().unwrap(),
        u["input_tokens"].as_u64().unwrap() + u["output_tokens"].as_u64().unwrap()
    );
    // The upstream got a chat request: the instructions as the system message, no Responses fields.
    let sent = s.fakes["openai"].journal().last().unwrap().body_json().unwrap();
    assert_eq!(sent["messages"][0]["role"], "system", "{sent}");
    assert_eq!(sent["messages"][1]["content"], "Say hello to the gateway");
    assert!(
        sent.get("metadata").is_none() && sent.get("input").is_none(),
        "{sent}"
    );
    let m = metrics(&s.app).await;
    assert_eq!(
        sample(
            &m,
            "llm_gateway_requests_total",
            &[("route", "responses"), ("status", "200")]
        ),
        1.0,
        "{m}"
    );
}

#[tokio::test]
async fn a_streamed_response_follows_the_event_grammar_and_ends_completed() {
    let s = stand().await;
    let r = call(
        &s.app,
        "POST",
        "/v1/responses",
        Some(streamed(json!("Say hello to the gateway"))),
        &[],
    )
    .await;
    assert_eq!(r.status, 200, "{}", r.body);
    assert_eq!(r.header("content-type"), "text/event-stream");
    assert_eq!(r.header("x-llm-actual-provider"), "openai");
    let evs = events(&r.body);
    assert_grammar(&evs);
    let t = types(&evs);
    let head = [
        "response.created",
        "response.in_progress",
        "response.output_item.added",
        "response.content_part.added",
        "response.output_text.delta",
    ];
    assert_eq!(&t[..5], &head, "{t:?}");
    let tail = [
        "response.output_text.done",
        "response.content_part.done",
        "response.output_item.done",
        "response.completed",
    ];
    assert_eq!(&t[t.len() - 4..], &tail, "{t:?}");
    assert_eq!(evs.last().unwrap().1, json!("[DONE]"));
    let text = deltas(&evs);
    assert!(text.starts_with("[openai]"), "{text}");
    let done = &evs
        .iter()
        .find(|(_, v)| v["type"] == "response.completed")
        .unwrap()
        .1["response"];
    assert_eq!(done["status"], "completed");
    assert_eq!(done["output"][0]["content"][0]["text"], text.as_str());
    assert!(done["usage"]["total_tokens"].as_u64().unwrap() > 0, "{done}");
    let created = &evs[0].1["response"];
    assert_eq!(created["id"], done["id"]);
    assert_eq!(created["status"], "in_progress");
}

#[tokio::test]
async fn a_primary_fault_falls_back_plain_and_streamed() {
    let s = stand().await;
    s.fakes["openai"]
        .add_fault(FaultSpec::new(FaultKind::ServerError).times(2))
        .unwrap();
    let r = call(&s.app, "POST", "/v1/responses", Some(plain(json!("hello"))), &[]).await;
    assert_eq!(r.status, 200, "{}", r.body);
    assert_eq!(r.header("x-llm-actual-provider"), "kimi");
    assert_eq!(r.header("x-llm-fallbacks"), "1");
    let v = r.json();
    assert!(
        v["output"][0]["content"][0]["text"]
            .as_str()
            .unwrap()
            .starts_with("[kimi]"),
        "{v}"
    );
    // A stream broken before its first delta is served by the next provider, invisibly.
    s.fakes["openai"].clear_faults();
    s.fakes["openai"]
        .add_fault(
            FaultSpec::new(FaultKind::TruncatedStream)
                .times(1)
                .after_chunks(0),
        )
        .unwrap();
    let r = call(
        &s.app,
        "POST",
        "/v1/responses",
        Some(streamed(json!("hello"))),
        &[],
    )
    .await;
    assert_eq!(r.status, 200, "{}", r.body);
    assert_eq!(r.header("x-llm-actual-provider"), "kimi", "{}", r.body);
    assert_eq!(r.header("x-llm-fallbacks"), "1");
    let evs = events(&r.body);
    assert_grammar(&evs);
    assert!(deltas(&evs).starts_with("[kimi]"), "{}", r.body);
    assert!(types(&evs).contains(&"response.completed".to_string()));
}

#[tokio::test]
async fn a_stream_broken_after_the_first_delta_ends_with_response_failed_never_completed() {
    let s = stand().await;
    for kind in [FaultKind::TruncatedStream, FaultKind::StreamError] {
        s.fakes["openai"]
            .add_fault(FaultSpec::new(kind).times(1).after_chunks(2))
            .unwrap();
        let r = call(
            &s.app,
            "POST",
            "/v1/responses",
            Some(streamed(json!("hello"))),
            &[],
        )
        .await;
        let label = format!("{kind:?}");
        assert_eq!(r.status, 200, "{label}");
        assert_eq!(r.header("x-llm-actual-provider"), "openai", "{label}");
        let evs = events(&r.body);
        assert_grammar(&evs);
        let t = types(&evs);
        assert!(
            !deltas(&evs).is_empty(),
            "{label}: the first delta reached the client"
        );
        assert!(
            !t.contains(&"response.completed".to_string()),
            "{label}: {}",
            r.body
        );
        assert!(!r.body.contains("[DONE]"), "{label}: {}", r.body);
        assert_eq!(&t[t.len() - 2..], ["error", "response.failed"], "{label}: {t:?}");
        let err = &evs[evs.len() - 2].1;
        assert_eq!(err["code"], "upstream_stream_broken", "{err}");
        assert_eq!(err["error"]["code"], "upstream_stream_broken", "{err}");
        let failed = &evs.last().unwrap().1["response"];
        assert_eq!(failed["status"], "failed");
        assert_eq!(failed["error"]["code"], "server_error");
        assert_eq!(failed["output"][0]["status"], "incomplete", "{failed}");
    }
}

fn weather_tools() -> Value {
    json!([
        {"type": "web_search"},
        {"type": "function", "name": "get_weather", "description": "Weather of a city",
         "parameters": {"type": "object", "properties": {"city": {"type": "string"}}, "required": ["city"]}}
    ])
}

#[tokio::test]
async fn a_function_call_round_trip_with_a_hosted_tool_dropped() {
    let s = stand().await;
    let body = json!({"model": "default", "input": [{"role": "developer", "content": "You are an agent."},
        {"role": "user", "content": [{"type": "input_text", "text": "Weather in Oslo?"}]}],
        "tools": weather_tools(), "parallel_tool_calls": true});
    let r = call(&s.app, "POST", "/v1/responses", Some(body), &[]).await;
    assert_eq!(r.status, 200, "{}", r.body);
    assert_eq!(r.header("x-llm-dropped-tools"), "web_search");
    let v = r.json();
    assert_eq!(v["status"], "completed", "{v}");
    let call_item = v["output"]
        .as_array()
        .unwrap()
        .iter()
        .find(|i| i["type"] == "function_call")
        .unwrap()
        .clone();
    assert_eq!(call_item["name"], "get_weather");
    assert!(call_item["id"].as_str().unwrap().starts_with("fc_"));
    let call_id = call_item["call_id"].as_str().unwrap().to_string();
    assert!(!call_id.is_empty());
    let args: Value = serde_json::from_str(call_item["arguments"].as_str().unwrap()).unwrap();
    assert!(args["city"].is_string(), "{args}");
    assert_eq!(
        v["tools"].as_array().unwrap().len(),
        1,
        "only the served tool is echoed: {v}"
    );
    let sent = s.fakes["openai"].journal().last().unwrap().body_json().unwrap();
    assert_eq!(sent["tools"].as_array().unwrap().len(), 1, "{sent}");
    assert_eq!(sent["tools"][0]["function"]["name"], "get_weather");
    assert_eq!(
        sent["messages"][0]["role"], "system",
        "developer goes up as system: {sent}"
    );

    // The next turn resends the history with the call and its output: the answer is text.
    let body = json!({"model": "default", "tools": weather_tools(), "input": [
        {"role": "user", "content": "Weather in Oslo?"},
        call_item,
        {"type": "function_call_output", "call_id": call_id, "output": "{\"temp\": 3}"}]});
    let r = call(&s.app, "POST", "/v1/responses", Some(body), &[]).await;
    assert_eq!(r.status, 200, "{}", r.body);
    let v = r.json();
    assert_eq!(v["output"][0]["type"], "message", "{v}");
    let sent = s.fakes["openai"].journal().last().unwrap().body_json().unwrap();
    let msgs = sent["messages"].as_array().unwrap();
    assert_eq!(msgs[1]["role"], "assistant", "{sent}");
    assert_eq!(msgs[1]["tool_calls"][0]["id"], call_id.as_str());
    assert_eq!(msgs[2]["role"], "tool");
    assert_eq!(msgs[2]["tool_call_id"], call_id.as_str());
}

#[tokio::test]
async fn a_streamed_function_call_has_its_argument_events() {
    let s = stand().await;
    let body = json!({"model": "default", "input": "Weather in Oslo?", "tools": weather_tools(), "stream": true,
        "tool_choice": {"type": "function", "name": "get_weather"}});
    let r = call(&s.app, "POST", "/v1/responses", Some(body), &[]).await;
    assert_eq!(r.status, 200, "{}", r.body);
    assert_eq!(r.header("x-llm-dropped-tools"), "web_search");
    let evs = events(&r.body);
    assert_grammar(&evs);
    let t = types(&evs);
    for kind in [
        "response.output_item.added",
        "response.function_call_arguments.delta",
        "response.function_call_arguments.done",
        "response.output_item.done",
        "response.completed",
    ] {
        assert!(t.contains(&kind.to_string()), "{kind}: {t:?}");
    }
    let args: String = evs
        .iter()
        .filter(|(_, v)| v["type"] == "response.function_call_arguments.delta")
        .filter_map(|(_, v)| v["delta"].as_str())
        .collect();
    let done = &evs
        .iter()
        .find(|(_, v)| v["type"] == "response.completed")
        .unwrap()
        .1["response"];
    let item = done["output"]
        .as_array()
        .unwrap()
        .iter()
        .find(|i| i["type"] == "function_call")
        .unwrap();
    assert_eq!(item["arguments"], args.as_str(), "{done}");
    assert_eq!(item["name"], "get_weather");
    let fa_done = &evs
        .iter()
        .find(|(_, v)| v["type"] == "response.function_call_arguments.done")
        .unwrap()
        .1;
    assert_eq!(fa_done["name"], "get_weather");
    assert_eq!(fa_done["item_id"], item["id"]);
}

#[tokio::test]
async fn max_output_tokens_reached_is_incomplete_plain_and_streamed() {
    let s = stand().await;
    let mut body = plain(json!("Tell me a long story about the gateway"));
    body["max_output_tokens"] = json!(2);
    let r = call(&s.app, "POST", "/v1/responses", Some(body.clone()), &[]).await;
    assert_eq!(r.status, 200, "{}", r.body);
    let v = r.json();
    assert_eq!(v["status"], "incomplete", "{v}");
    assert_eq!(v["incomplete_details"]["reason"], "max_output_tokens");
    body["stream"] = json!(true);
    let r = call(&s.app, "POST", "/v1/responses", Some(body), &[]).await;
    let evs = events(&r.body);
    assert_grammar(&evs);
    let t = types(&evs);
    assert!(t.contains(&"response.incomplete".to_string()), "{t:?}");
    assert!(!t.contains(&"response.completed".to_string()), "{t:?}");
}

#[tokio::test]
async fn what_the_gateway_cannot_honour_or_parse_is_a_400_naming_the_field() {
    let s = stand().await;
    let cases = [
        (
            json!({"model": "default", "input": "hi", "previous_response_id": "resp_1"}),
            "previous_response_id",
            "previous_response_not_found",
        ),
        (
            json!({"model": "default", "input": "hi", "background": true}),
            "background",
            "unsupported_parameter",
        ),
        (
            json!({"model": "default", "input": "hi", "temperature": "hot"}),
            "temperature",
            "invalid_request",
        ),
        (
            json!({"model": "default", "input": 7}),
            "input",
            "invalid_request",
        ),
        (json!({"model": "default"}), "input", "invalid_request"),
        (
            json!({"model": "default", "input": [{"role": "user", "content": [{"type": "input_file", "file_id": "f"}]}]}),
            "input[0].content[0].type",
            "unsupported_content",
        ),
        (
            json!({"model": "default", "input": [{"type": "item_reference", "id": "msg_1"}]}),
            "input[0].type",
            "unsupported_input_item",
        ),
        (
            json!({"model": "default", "input": "hi", "tools": [{"type": "function"}]}),
            "tools[0].name",
            "invalid_request",
        ),
        (
            json!({"model": "default", "input": "hi", "text": {"format": {"type": "json_schema", "name": "x"}}}),
            "text.format.schema",
            "invalid_request",
        ),
    ];
    for (body, param, code) in cases {
        let r = call(&s.app, "POST", "/v1/responses", Some(body.clone()), &[]).await;
        assert_eq!(r.status, 400, "{body}: {}", r.body);
        let v = r.json();
        assert_eq!(v["error"]["param"], param, "{body}: {v}");
        assert_eq!(v["error"]["code"], code, "{body}: {v}");
        assert_eq!(v["error"]["type"], "invalid_request_error", "{v}");
    }
    let upstream: usize = PROVIDERS.iter().map(|(p, _)| s.fakes[p].journal().len()).sum();
    assert_eq!(upstream, 0, "no 400 reaches a provider");
}

#[tokio::test]
async fn dropped_hosted_tools_are_counted_and_refused_when_configured() {
    let s = stand().await;
    let body = json!({"model": "default", "input": "hi", "tools": [{"type": "web_search"}]});
    let r = call(&s.app, "POST", "/v1/responses", Some(body.clone()), &[]).await;
    assert_eq!(r.status, 200, "{}", r.body);
    assert_eq!(r.header("x-llm-dropped-tools"), "web_search");
    let sent = s.fakes["openai"].journal().last().unwrap().body_json().unwrap();
    assert!(
        sent.get("tools").is_none() && sent.get("tool_choice").is_none(),
        "{sent}"
    );
    let m = metrics(&s.app).await;
    let dropped = |tool| {
        sample(
            &m,
            "llm_gateway_dropped_tools_total",
            &[("route", "responses"), ("tool", tool)],
        )
    };
    assert_eq!(dropped("web_search"), 1.0, "{m}");
    assert_eq!(dropped("file_search"), 0.0, "{m}");
    assert!(
        m.contains("llm_gateway_dropped_tools_total{route=\"responses\",tool=\"file_search\"} 0"),
        "{m}"
    );

    let fakes = fakes().await;
    let text = format!(
        "{}\nresponses: {{ hosted_tools: reject }}\n",
        yaml(&fakes, "openai, kimi", "", "compatible")
    );
    let (_, app) = gateway(&text);
    let r = call(&app, "POST", "/v1/responses", Some(body), &[]).await;
    assert_eq!(r.status, 400, "{}", r.body);
    let v = r.json();
    assert_eq!(v["error"]["code"], "unsupported_tool", "{v}");
    assert_eq!(v["error"]["param"], "tools[0].type", "{v}");
    assert!(r.header("x-llm-dropped-tools").is_empty());
}

#[tokio::test]
async fn the_chat_routes_pipeline_serves_it_cache_continue_and_client_keys() {
    // Cache: a deterministic request is answered from the cache the second time, on this route as on chat.
    let s = stand().await;
    let mut body = plain(json!("Say hello to the gateway"));
    body["temperature"] = json!(0);
    let first = call(&s.app, "POST", "/v1/responses", Some(body.clone()), &[]).await;
    assert_eq!(first.header("x-llm-source"), "provider", "{}", first.body);
    let again = call(&s.app, "POST", "/v1/responses", Some(body.clone()), &[]).await;
    assert_eq!(again.status, 200, "{}", again.body);
    assert_eq!(again.header("x-llm-source"), "cache");
    assert_eq!(again.header("x-llm-cache"), "hit");
    assert_eq!(
        again.json()["output"][0]["content"][0]["text"],
        first.json()["output"][0]["content"][0]["text"]
    );
    assert_ne!(
        again.json()["id"],
        first.json()["id"],
        "every response has its own id"
    );
    body["stream"] = json!(true);
    let streamed = call(&s.app, "POST", "/v1/responses", Some(body), &[]).await;
    assert_eq!(streamed.header("x-llm-source"), "cache");
    let evs = events(&streamed.body);
    assert_grammar(&evs);
    assert_eq!(
        deltas(&evs),
        first.json()["output"][0]["content"][0]["text"].as_str().unwrap()
    );

    // stream_failure: continue finishes a cut answer on the next provider, ending completed.
    let s = stand_with("openai, kimi", "  stream_failure: continue\n", "compatible").await;
    s.fakes["openai"]
        .add_fault(
            FaultSpec::new(FaultKind::TruncatedStream)
                .times(1)
                .after_chunks(2),
        )
        .unwrap();
    let r = call(&s.app, "POST", "/v1/responses", Some(streamed_body()), &[]).await;
    let evs = events(&r.body);
    assert_grammar(&evs);
    let t = types(&evs);
    assert!(t.contains(&"response.completed".to_string()), "{}", r.body);
    assert!(!t.contains(&"response.failed".to_string()), "{}", r.body);
    let text = deltas(&evs);
    assert!(text.starts_with("[openai]") && text.contains("[kimi]"), "{text}");

    // Client keys: the route sits behind the same layer as /v1/chat/completions.
    let fakes = fakes().await;
    let text = format!(
        "{}limits:\n  clients:\n    - {{ name: team, key: {{ value: team-key-123456 }} }}\n",
        yaml(&fakes, "openai, kimi", "", "compatible")
    );
    let (_, app) = gateway(&text);
    let r = call(&app, "POST", "/v1/responses", Some(plain(json!("hi"))), &[]).await;
    assert_eq!(r.status, 401, "{}", r.body);
    let auth = [("authorization", "Bearer team-key-123456")];
    let r = call(&app, "POST", "/v1/responses", Some(plain(json!("hi"))), &auth).await;
    assert_eq!(r.status, 200, "{}", r.body);
}

fn streamed_body() -> Value {
    streamed(json!("Say hello to the gateway"))
}

#[tokio::test]
async fn when_every_provider_fails_the_error_lists_the_attempts_as_gateway_attempts() {
    let s = stand_with("openai, kimi", "", "compatible").await;
    for p in ["openai", "kimi", "ollama"] {
        s.fakes[p]
            .add_fault(FaultSpec::new(FaultKind::DropConnection))
            .unwrap();
    }
    let r = call(&s.app, "POST", "/v1/responses", Some(plain(json!("hi"))), &[]).await;
    assert!(r.status.is_server_error(), "{}", r.body);
    let v = r.json();
    assert!(v["error"]["code"].is_string(), "{v}");
    let attempts = v["gateway_attempts"].as_array().unwrap();
    assert_eq!(attempts[0]["provider"], "openai", "{v}");
    assert_eq!(v["gateway_attempts"], v["error"]["attempts"]);
}

#[tokio::test]
async fn an_answer_the_chat_route_read_by_its_head_answers_every_surface_from_the_cache_in_full() {
    // /v1/chat/completions reads an OpenAI answer it sends on as it came by its head only; the cached answer
    // still has its message for every other surface, and for a streamed chat request.
    let s = stand().await;
    let mut chat_body = chat(false);
    chat_body["temperature"] = json!(0);
    let first = call(
        &s.app,
        "POST",
        "/v1/chat/completions",
        Some(chat_body.clone()),
        &[],
    )
    .await;
    assert_eq!(first.header("x-llm-actual-provider"), "openai", "{}", first.body);
    let v = first.json();
    assert_eq!(
        v["system_fingerprint"], "fp_fake0001",
        "the upstream's bytes: {v}"
    );
    let text = v["choices"][0]["message"]["content"]
        .as_str()
        .unwrap()
        .to_string();
    assert!(text.starts_with("[openai]"), "{text}");

    let mut body = plain(json!("Say hello to the gateway"));
    body["temperature"] = json!(0);
    let r = call(&s.app, "POST", "/v1/responses", Some(body), &[]).await;
    assert_eq!(
        (r.status.as_u16(), r.header("x-llm-cache")),
        (200, "hit"),
        "{}",
        r.body
    );
    assert_eq!(r.json()["output"][0]["content"][0]["text"], text.as_str());

    chat_body["stream"] = json!(true);
    let streamed = call(
        &s.app,
        "POST",
        "/v1/chat/completions",
        Some(chat_body.clone()),
        &[],
    )
    .await;
    assert_eq!(streamed.header("x-llm-cache"), "hit");
    assert_eq!(streamed.sse_text(), text);

    chat_body["stream"] = json!(false);
    let again = call(&s.app, "POST", "/v1/chat/completions", Some(chat_body), &[]).await;
    assert_eq!(again.header("x-llm-cache"), "hit");
    assert_eq!(again.body, first.body, "a hit sends the same bytes");
}
