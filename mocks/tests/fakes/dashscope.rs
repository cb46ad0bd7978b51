//! Qwen's native DashScope API.

use crate::common::*;
use llm_mocks::Provider;
use serde_json::{json, Value};

const GEN: &str = "/api/v1/services/aigc/text-generation/generation";

async fn generate(f: &llm_mocks::FakeServer, params: Value, sse: bool) -> Reply {
    let body = json!({"model": "qwen-plus", "input": {"messages": [{"role": "user", "content": "Привет"}]}, "parameters": params});
    let mut h = vec![("authorization", "Bearer sk-q")];
    if sse {
        h.push(("x-dashscope-sse", "enable"));
    }
    send(
        reqwest::Method::POST,
        format!("{}{GEN}", f.uri()),
        &h,
        Some(body.to_string()),
    )
    .await
    .unwrap()
}

#[tokio::test]
async fn text_and_message_result_formats() {
    let f = start(Provider::Qwen).await;
    let t = generate(&f, json!({}), false).await.json();
    let text = t["output"]["text"].as_str().unwrap();
    assert!(text.starts_with("[qwen] "));
    assert_eq!(t["output"]["finish_reason"], "stop");
    assert!(t["usage"]["input_tokens"].as_u64().unwrap() > 0);
    assert_eq!(
        t["usage"]["total_tokens"].as_u64().unwrap(),
        t["usage"]["input_tokens"].as_u64().unwrap() + t["usage"]["output_tokens"].as_u64().unwrap()
    );
    assert!(t["request_id"].is_string());
    let m = generate(&f, json!({"result_format": "message"}), false)
        .await
        .json();
    assert_eq!(m["output"]["choices"][0]["message"]["content"], text);
    assert_eq!(m["output"]["choices"][0]["finish_reason"], "stop");
}

#[tokio::test]
async fn prompt_input_works_and_missing_input_is_invalid_parameter() {
    let f = start(Provider::Qwen).await;
    let h = [("authorization", "Bearer sk-q")];
    let ok = json!({"model": "qwen-plus", "input": {"prompt": "hi"}});
    let r = send(
        reqwest::Method::POST,
        format!("{}{GEN}", f.uri()),
        &h,
        Some(ok.to_string()),
    )
    .await
    .unwrap();
    assert_eq!(r.status, 200);
    let bad = json!({"model": "qwen-plus", "messages": [{"role": "user", "content": "hi"}]});
    let r = send(
        reqwest::Method::POST,
        format!("{}{GEN}", f.uri()),
        &h,
        Some(bad.to_string()),
    )
    .await
    .unwrap();
    assert_eq!(r.status, 400);
    assert_eq!(r.json()["code"], "InvalidParameter");
    let r = send(
        reqwest::Method::POST,
        format!("{}{GEN}", f.uri()),
        &[],
        Some(ok.to_string()),
    )
    .await
    .unwrap();
    assert_eq!(r.status, 401);
    assert_eq!(r.json()["code"], "InvalidApiKey");
}

fn events(r: &Reply) -> Vec<Value> {
    r.sse_data()
        .iter()
        .map(|d| serde_json::from_str(d).unwrap())
        .collect()
}

#[tokio::test]
async fn sse_incremental_and_cumulative() {
    let f = start(Provider::Qwen).await;
    let full = generate(&f, json!({"result_format": "message"}), false)
        .await
        .json();
    let full = full["output"]["choices"][0]["message"]["content"]
        .as_str()
        .unwrap()
        .to_string();
    let inc = generate(
        &f,
        json!({"result_format": "message", "incremental_output": true}),
        true,
    )
    .await;
    assert!(inc
        .header("content-type")
        .unwrap()
        .starts_with("text/event-stream"));
    assert!(
        inc.text
            .starts_with("id:1\nevent:result\n:HTTP_STATUS/200\ndata:{"),
        "{}",
        inc.text
    );
    assert!(!inc.text.contains("[DONE]"));
    let ev = events(&inc);
    let joined: String = ev
        .iter()
        .map(|e| e["output"]["choices"][0]["message"]["content"].as_str().unwrap())
        .collect();
    assert_eq!(joined, full);
    assert_eq!(
        ev.last().unwrap()["output"]["choices"][0]["finish_reason"],
        "stop"
    );
    assert!(ev[..ev.len() - 1]
        .iter()
        .all(|e| e["output"]["choices"][0]["finish_reason"] == "null"));
    // Usage is cumulative.
    let outs: Vec<u64> = ev
        .iter()
        .map(|e| e["usage"]["output_tokens"].as_u64().unwrap())
        .collect();
    assert!(outs.windows(2).all(|w| w[0] <= w[1]));
    let cum = generate(
        &f,
        json!({"result_format": "message", "incremental_output": false}),
        true,
    )
    .await;
    let ev = events(&cum);
    let texts: Vec<&str> = ev
        .iter()
        .map(|e| e["output"]["choices"][0]["message"]["content"].as_str().unwrap())
        .collect();
    assert!(
        texts.windows(2).all(|w| w[1].starts_with(w[0])),
        "each event repeats the text so far"
    );
    assert_eq!(*texts.last().unwrap(), full);
    // Text format streams too; Accept: text/event-stream also switches SSE on.
    let body = json!({"model": "qwen-plus", "input": {"prompt": "hi"}});
    let r = send(
        reqwest::Method::POST,
        format!("{}{GEN}", f.uri()),
        &[("authorization", "Bearer k"), ("accept", "text/event-stream")],
        Some(body.to_string()),
    )
    .await
    .unwrap();
    assert_eq!(events(&r).last().unwrap()["output"]["finish_reason"], "stop");
}

#[tokio::test]
async fn native_tool_calls_use_message_format() {
    let f = start(Provider::Qwen).await;
    let tools = json!([{"type": "function", "function": {"name": "lookup", "parameters": {"type": "object",
        "properties": {"q": {"type": "string"}}, "required": ["q"]}}}]);
    let r = generate(&f, json!({"tools": tools}), false).await.json();
    let c = &r["output"]["choices"][0];
    assert_eq!(c["finish_reason"], "tool_calls");
    assert_eq!(c["message"]["tool_calls"][0]["function"]["name"], "lookup");
    assert!(c["message"]["tool_calls"][0]["function"]["arguments"].is_string());
}

#[tokio::test]
async fn native_embeddings() {
    let f = start(Provider::Qwen).await;
    let body = json!({"model": "text-embedding-v3", "input": {"texts": ["a", "bb"]}, "parameters": {"dimension": 512}});
    let r = send(
        reqwest::Method::POST,
        format!(
            "{}/api/v1/services/embeddings/text-embedding/text-embedding",
            f.uri()
        ),
        &[("authorization", "Bearer k")],
        Some(body.to_string()),
    )
    .await
    .unwrap();
    let b = r.json();
    let e = b["output"]["embeddings"].as_array().unwrap();
    assert_eq!(e.len(), 2);
    assert_eq!(e[1]["text_index"], 1);
    assert_eq!(e[0]["embedding"].as_array().unwrap().len(), 512);
    assert!(b["usage"]["total_tokens"].as_u64().unwrap() > 0);
}

#[tokio::test]
async fn unknown_native_model_and_path() {
    let f = start(Provider::Qwen).await;
    let body = json!({"model": "qwen-nope", "input": {"prompt": "x"}});
    let r = send(
        reqwest::Method::POST,
        format!("{}{GEN}", f.uri()),
        &[("authorization", "Bearer k")],
        Some(body.to_string()),
    )
    .await
    .unwrap();
    assert_eq!(r.status, 400);
    assert_eq!(r.json()["message"], "Model not exist.");
    let r = get(&f, "/api/v1/nothing", Some("k")).await;
    assert_eq!(r.status, 404);
    assert!(r.json()["request_id"].is_string());
}
