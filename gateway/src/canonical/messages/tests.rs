//! The translation tables, both directions: Messages requests to chat, chat answers and chunks to Messages.

use serde_json::json;

use super::*;
use crate::canonical::{Choice, ChunkChoice, Delta, ToolCallDelta};

fn chat_of(body: Value) -> ChatRequest {
    translate(&body, Purpose::Answer).unwrap().chat
}

#[test]
fn requests_translate_field_by_field() {
    let c = chat_of(
        json!({"model": "claude-x", "max_tokens": 100, "temperature": 0.5, "top_p": 0.9, "top_k": 5,
        "stop_sequences": ["END"], "stream": true, "system": "S",
        "messages": [{"role": "user", "content": "hi"}]}),
    );
    assert_eq!(c.model, "claude-x");
    assert_eq!(c.max_tokens, Some(100));
    assert_eq!(c.temperature, Some(0.5));
    assert_eq!(c.top_p, Some(0.9));
    assert_eq!(c.stop, Some(json!(["END"])));
    assert!(c.stream);
    assert_eq!(c.extra["stream_options"], json!({"include_usage": true}));
    assert!(!c.extra.contains_key("top_k"), "top_k is not a chat field");
    assert_eq!(c.messages[0].role, Role::System);
    assert_eq!(c.messages[1].content, Some(json!("hi")));
}

#[test]
fn tool_choice_maps_to_chat() {
    let tools = json!([{"name": "f", "input_schema": {"type": "object"}}]);
    for (choice, want, parallel) in [
        (json!({"type": "auto"}), json!("auto"), None),
        (json!({"type": "any"}), json!("required"), None),
        (json!({"type": "none"}), json!("none"), None),
        (
            json!({"type": "tool", "name": "f", "disable_parallel_tool_use": true}),
            json!({"type": "function", "function": {"name": "f"}}),
            Some(false),
        ),
    ] {
        let c = chat_of(
            json!({"model": "m", "max_tokens": 5, "tools": tools, "tool_choice": choice,
            "messages": [{"role": "user", "content": "x"}]}),
        );
        assert_eq!(c.tool_choice, Some(want));
        assert_eq!(
            c.extra.get("parallel_tool_calls").and_then(Value::as_bool),
            parallel
        );
        assert_eq!(
            c.tools.as_ref().unwrap()[0]["function"]["parameters"],
            json!({"type": "object"})
        );
    }
    let e = translate(
        &json!({"model": "m", "max_tokens": 5, "tools": tools, "tool_choice": {"type": "tool", "name": "g"},
            "messages": [{"role": "user", "content": "x"}]}),
        Purpose::Answer,
    )
    .unwrap_err();
    assert_eq!(e.param, "tool_choice.name");
}

#[test]
fn output_config_format_is_a_json_schema_response_format() {
    let c = chat_of(
        json!({"model": "m", "max_tokens": 5, "messages": [{"role": "user", "content": "x"}],
        "output_config": {"effort": "low", "format": {"type": "json_schema", "schema": {"type": "object"}}}}),
    );
    assert_eq!(c.extra["response_format"]["type"], "json_schema");
    assert_eq!(c.extra["response_format"]["json_schema"]["name"], "output");
}

#[test]
fn count_tokens_needs_no_max_tokens_and_never_streams() {
    let t = translate(
        &json!({"model": "m", "stream": true, "messages": [{"role": "user", "content": "x"}]}),
        Purpose::Count,
    )
    .unwrap();
    assert!(!t.chat.stream);
    assert_eq!(t.chat.max_tokens, None);
}

#[test]
fn a_document_of_text_is_a_text_part_other_documents_are_refused() {
    let c = chat_of(
        json!({"model": "m", "max_tokens": 5, "messages": [{"role": "user", "content": [
        {"type": "document", "source": {"type": "text", "media_type": "text/plain", "data": "doc body"}},
        {"type": "text", "text": "summarise"}]}]}),
    );
    assert_eq!(c.messages[0].content, Some(json!("doc body\n\nsummarise")));
    let e = translate(
        &json!({"model": "m", "max_tokens": 5, "messages": [{"role": "user", "content": [
            {"type": "document", "source": {"type": "base64", "media_type": "application/pdf", "data": "JVBER"}}]}]}),
        Purpose::Answer,
    )
    .unwrap_err();
    assert_eq!(e.code, "unsupported_content");
}

fn answer(text: &str, calls: Vec<ToolCall>, finish: &str) -> ChatResponse {
    let mut message = Message::plain(Role::Assistant, text.to_string());
    message.tool_calls = (!calls.is_empty()).then_some(calls);
    ChatResponse {
        id: "c1".into(),
        object: "chat.completion".into(),
        created: 0,
        model: "gpt-4o-mini".into(),
        choices: vec![Choice {
            index: 0,
            message,
            finish_reason: Some(finish.into()),
        }],
        usage: Some(Usage::new(12, 7)),
        raw: None,
    }
}

fn call(id: &str, args: &str) -> ToolCall {
    ToolCall {
        id: id.into(),
        kind: "function".into(),
        function: ToolFunction {
            name: "f".into(),
            arguments: args.into(),
        },
    }
}

#[test]
fn answers_translate_with_stop_reasons_usage_and_tool_inputs() {
    for (finish, want) in [
        ("stop", "end_turn"),
        ("length", "max_tokens"),
        ("tool_calls", "tool_use"),
        ("function_call", "tool_use"),
        ("content_filter", "refusal"),
        ("blacklist", "refusal"),
    ] {
        let v = message_object("claude-x", &answer("hi", vec![], finish));
        assert_eq!(v["stop_reason"], want, "{finish}");
    }
    let v = message_object(
        "claude-x",
        &answer(
            "",
            vec![call("call_1", "{\"a\":1}"), call("", "not json"), call("c3", "")],
            "tool_calls",
        ),
    );
    assert_eq!(v["model"], "claude-x");
    let c = v["content"].as_array().unwrap();
    assert_eq!(c.len(), 3, "no empty text block: {v}");
    assert_eq!(
        c[0],
        json!({"type": "tool_use", "id": "call_1", "name": "f", "input": {"a": 1}})
    );
    assert!(c[1]["id"].as_str().unwrap().starts_with("toolu_"));
    assert_eq!(c[1]["input"], json!({"_raw_arguments": "not json"}));
    assert_eq!(c[2]["input"], json!({}));
    assert_eq!(v["usage"]["input_tokens"], 12);
    assert_eq!(v["usage"]["output_tokens"], 7);
}

fn chunk(
    content: Option<&str>,
    tool: Option<ToolCallDelta>,
    finish: Option<&str>,
    usage: Option<Usage>,
) -> ChatChunk {
    ChatChunk {
        id: "c".into(),
        object: "chat.completion.chunk".into(),
        created: 0,
        model: "m".into(),
        choices: vec![ChunkChoice {
            index: 0,
            delta: Delta {
                role: None,
                content: content.map(str::to_string),
                tool_calls: tool.map(|t| vec![t]),
            },
            finish_reason: finish.map(str::to_string),
        }],
        usage,
        raw: None,
    }
}

fn tool_delta(index: u32, id: Option<&str>, name: Option<&str>, args: &str) -> ToolCallDelta {
    let mut f = Map::new();
    if let Some(n) = name {
        f.insert("name".into(), json!(n));
    }
    f.insert("arguments".into(), json!(args));
    ToolCallDelta {
        index,
        id: id.map(str::to_string),
        kind: None,
        function: Some(Value::Object(f)),
    }
}

#[test]
fn a_stream_of_text_then_two_calls_opens_and_closes_blocks_in_order() {
    let mut w = StreamWriter::new("claude-x".into());
    let mut out = w.chunk(&chunk(Some("Checking."), None, None, None));
    out += &w.chunk(&chunk(
        None,
        Some(tool_delta(0, Some("call_a"), Some("f"), "")),
        None,
        None,
    ));
    out += &w.chunk(&chunk(
        None,
        Some(tool_delta(0, None, None, "{\"a\":")),
        None,
        None,
    ));
    out += &w.chunk(&chunk(None, Some(tool_delta(0, None, None, "1}")), None, None));
    out += &w.chunk(&chunk(
        None,
        Some(tool_delta(1, Some("call_b"), Some("f"), "{}")),
        Some("tool_calls"),
        None,
    ));
    out += &w.chunk(&ChatChunk {
        choices: vec![],
        ..chunk(None, None, None, Some(Usage::new(30, 9)))
    });
    out += &w.complete();
    let seq: Vec<String> = out
        .lines()
        .filter_map(|l| l.strip_prefix("data: "))
        .map(|d| {
            let v: Value = serde_json::from_str(d).unwrap();
            let t = v["type"].as_str().unwrap().to_string();
            match t.as_str() {
                "content_block_start" => format!(
                    "start{}:{}",
                    v["index"],
                    v["content_block"]["type"].as_str().unwrap()
                ),
                "content_block_delta" => format!("delta{}", v["index"]),
                "content_block_stop" => format!("stop{}", v["index"]),
                "message_delta" => format!(
                    "message_delta:{}:{}",
                    v["delta"]["stop_reason"].as_str().unwrap(),
                    v["usage"]["input_tokens"]
                ),
                _ => t,
            }
        })
        .collect();
    assert_eq!(
        seq,
        [
            "message_start",
            "ping",
            "start0:text",
            "delta0",
            "stop0",
            "start1:tool_use",
            "delta1",
            "delta1",
            "stop1",
            "start2:tool_use",
            "delta2",
            "stop2",
            "message_delta:tool_use:30",
            "message_stop"
        ]
    );
    assert!(out.contains("\"partial_json\":\"{\\\"a\\\":\""), "{out}");
}

#[test]
fn a_failed_stream_ends_with_an_error_event_only() {
    let mut w = StreamWriter::new("m".into());
    let mut out = w.chunk(&chunk(Some("par"), None, None, None));
    out += &w.fail("overloaded_error", "upstream broke");
    let last = out.trim_end().lines().rev().take(2).collect::<Vec<_>>();
    assert_eq!(last[1], "event: error");
    assert!(last[0].contains("\"overloaded_error\""), "{out}");
    assert!(
        !out.contains("message_stop") && !out.contains("message_delta"),
        "{out}"
    );
}
