//! One table over the five providers (their fakes): the finish reason of a plain, a tool-call, a length-cut and a
//! content-filtered answer, non-stream and streamed, as the client sees it. Agent loops test
//! `finish_reason == "tool_calls"`: every adapter in both modes must say so.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod common;

use common::*;
use llm_mocks::{FaultKind, FaultSpec};
use serde_json::{json, Value};

const TOOLS: &str = r#"[{"type": "function", "function": {"name": "get_weather", "description": "Weather in a city",
    "parameters": {"type": "object", "properties": {"city": {"type": "string"}}, "required": ["city"]}}}]"#;

#[derive(Debug, Clone, Copy, PartialEq)]
enum Case {
    Plain,
    ToolCall,
    Length,
    ContentFilter,
}

fn body(case: Case, stream: bool) -> Value {
    let mut b = json!({"model": "default", "stream": stream,
        "messages": [{"role": "user", "content": "What is the weather in Oslo? Explain in detail, please."}]});
    match case {
        Case::ToolCall => b["tools"] = serde_json::from_str(TOOLS).unwrap(),
        Case::Length => b["max_tokens"] = json!(2),
        Case::Plain | Case::ContentFilter => {}
    }
    b
}

/// The finish reasons of an SSE body, in order.
fn stream_finishes(body: &str) -> Vec<String> {
    body.lines()
        .filter_map(|l| l.strip_prefix("data: "))
        .filter_map(|d| serde_json::from_str::<Value>(d).ok())
        .filter_map(|v| {
            v.pointer("/choices/0/finish_reason")
                .and_then(Value::as_str)
                .map(str::to_string)
        })
        .collect()
}

fn stream_has_tool_call(body: &str) -> bool {
    body.lines()
        .filter_map(|l| l.strip_prefix("data: "))
        .filter_map(|d| serde_json::from_str::<Value>(d).ok())
        .any(|v| v.pointer("/choices/0/delta/tool_calls/0/function/name").is_some())
}

#[tokio::test]
async fn finish_reasons_of_every_provider_in_both_modes() {
    let s = stand_with(
        "openai, kimi, qwen, gigachat, ollama",
        "  content_filter: return\n",
        "compatible",
    )
    .await;
    let mut seen = Vec::new();
    for (p, _) in PROVIDERS {
        for case in [Case::Plain, Case::ToolCall, Case::Length, Case::ContentFilter] {
            if case == Case::ContentFilter && p == "ollama" {
                continue; // Ollama has no content filter.
            }
            for stream in [false, true] {
                if case == Case::ContentFilter {
                    s.fakes[p]
                        .add_fault(FaultSpec::new(FaultKind::ContentFilter).times(1))
                        .unwrap();
                }
                let label = format!("{p} {case:?} stream={stream}");
                let r = call(
                    &s.app,
                    "POST",
                    "/v1/chat/completions",
                    Some(body(case, stream)),
                    &[("x-llm-provider", p), ("cache-control", "no-store, no-cache")],
                )
                .await;
                if case == Case::ContentFilter {
                    // Refused before any content: the content-filter class in both modes (policy `return`: 400),
                    // or a stream that carried content and ended with `content_filter`.
                    if r.status == 400 {
                        assert_eq!(r.json()["error"]["code"], "content_filter", "{label}: {}", r.body);
                    } else {
                        assert!(stream, "{label}: {} {}", r.status, r.body);
                        assert_eq!(
                            stream_finishes(&r.body).last().map(String::as_str),
                            Some("content_filter"),
                            "{label}: {}",
                            r.body
                        );
                    }
                    seen.push(label);
                    continue;
                }
                assert_eq!(r.status, 200, "{label}: {}", r.body);
                assert_eq!(r.header("x-llm-actual-provider"), p, "{label}");
                let want = match case {
                    Case::Plain => "stop",
                    Case::ToolCall => "tool_calls",
                    _ => "length",
                };
                if stream {
                    let finishes = stream_finishes(&r.body);
                    assert_eq!(finishes, [want], "{label}: {}", r.body);
                    assert_eq!(stream_has_tool_call(&r.body), case == Case::ToolCall, "{label}");
                    assert!(r.body.trim_end().ends_with("data: [DONE]"), "{label}");
                } else {
                    let v = r.json();
                    assert_eq!(v["choices"][0]["finish_reason"], want, "{label}: {v}");
                    let calls = v["choices"][0]["message"]["tool_calls"]
                        .as_array()
                        .map_or(0, Vec::len);
                    assert_eq!(calls > 0, case == Case::ToolCall, "{label}: {v}");
                }
                seen.push(label);
            }
        }
    }
    assert_eq!(seen.len(), 5 * 3 * 2 + 4 * 2);
}
