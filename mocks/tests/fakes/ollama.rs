//! Ollama's native API.

use crate::common::*;
use llm_mocks::Provider;
use serde_json::json;

#[tokio::test]
async fn chat_streams_ndjson_by_default() {
    let f = start(Provider::Ollama).await;
    let r = post(
        &f,
        "/api/chat",
        None,
        json!({"model": "llama3.2", "messages": [{"role": "user", "content": "hi"}]}),
    )
    .await;
    assert_eq!(r.header("content-type"), Some("application/x-ndjson"));
    let lines = r.ndjson();
    assert!(lines.len() > 3);
    assert!(lines[..lines.len() - 1]
        .iter()
        .all(|l| l["done"] == false && l["message"]["role"] == "assistant"));
    let last = lines.last().unwrap();
    assert_eq!(last["done"], true);
    assert_eq!(last["done_reason"], "stop");
    assert!(last["eval_count"].as_u64().unwrap() > 0 && last["total_duration"].as_u64().unwrap() > 1_000_000);
    assert!(last["created_at"].as_str().unwrap().contains('T'));
    let text: String = lines
        .iter()
        .map(|l| l["message"]["content"].as_str().unwrap())
        .collect();
    let plain = post(
        &f,
        "/api/chat",
        None,
        json!({"model": "llama3.2", "stream": false,
        "messages": [{"role": "user", "content": "hi"}]}),
    )
    .await;
    assert!(plain
        .header("content-type")
        .unwrap()
        .starts_with("application/json"));
    assert_eq!(plain.json()["message"]["content"], text);
    assert!(text.starts_with("[ollama] "));
}

#[tokio::test]
async fn generate_plain_and_streamed() {
    let f = start(Provider::Ollama).await;
    let p = post(
        &f,
        "/api/generate",
        None,
        json!({"model": "llama3.2", "prompt": "why", "stream": false}),
    )
    .await
    .json();
    assert!(p["response"].as_str().unwrap().starts_with("[ollama] "));
    assert!(p["context"].is_array());
    let s = post(
        &f,
        "/api/generate",
        None,
        json!({"model": "llama3.2", "prompt": "why"}),
    )
    .await;
    let text: String = s
        .ndjson()
        .iter()
        .map(|l| l["response"].as_str().unwrap())
        .collect();
    assert_eq!(text, p["response"].as_str().unwrap());
    let load = post(
        &f,
        "/api/generate",
        None,
        json!({"model": "llama3.2", "prompt": ""}),
    )
    .await
    .json();
    assert_eq!(load["done_reason"], "load");
}

#[tokio::test]
async fn tool_calls_have_object_arguments() {
    let f = start(Provider::Ollama).await;
    let body = json!({"model": "qwen2.5:7b", "stream": false, "messages": [{"role": "user", "content": "Tokyo weather"}],
        "tools": [{"type": "function", "function": {"name": "get_weather", "parameters": {"type": "object",
            "properties": {"city": {"type": "string"}}, "required": ["city"]}}}]});
    let b = post(&f, "/api/chat", None, body).await.json();
    assert_eq!(b["message"]["tool_calls"][0]["function"]["name"], "get_weather");
    assert!(b["message"]["tool_calls"][0]["function"]["arguments"].is_object());
}

#[tokio::test]
async fn embed_embeddings_tags_version_show() {
    let f = start(Provider::Ollama).await;
    let e = post(
        &f,
        "/api/embed",
        None,
        json!({"model": "all-minilm", "input": ["a", "b"]}),
    )
    .await
    .json();
    assert_eq!(e["embeddings"].as_array().unwrap().len(), 2);
    assert_eq!(e["embeddings"][0].as_array().unwrap().len(), 384);
    let one = post(
        &f,
        "/api/embed",
        None,
        json!({"model": "all-minilm", "input": "a"}),
    )
    .await
    .json();
    assert_eq!(one["embeddings"][0], e["embeddings"][0]);
    let legacy = post(
        &f,
        "/api/embeddings",
        None,
        json!({"model": "all-minilm", "prompt": "a"}),
    )
    .await
    .json();
    assert_eq!(legacy["embedding"], e["embeddings"][0]);
    let tags = get(&f, "/api/tags", None).await.json();
    let m = &tags["models"][0];
    assert!(m["name"].as_str().unwrap().contains(':'));
    assert_eq!(m["digest"].as_str().unwrap().len(), 64);
    assert_eq!(m["details"]["format"], "gguf");
    assert!(get(&f, "/api/version", None).await.json()["version"].is_string());
    assert_eq!(
        post(&f, "/api/show", None, json!({"model": "llama3.2"}))
            .await
            .status,
        200
    );
    assert_eq!(get(&f, "/", None).await.text, "Ollama is running");
}

#[tokio::test]
async fn errors_are_error_strings() {
    let f = start(Provider::Ollama).await;
    let r = post(&f, "/api/chat", None, json!({"model": "nope", "messages": []})).await;
    assert_eq!(r.status, 404);
    assert_eq!(
        r.json()["error"],
        "model \"nope\" not found, try pulling it first"
    );
    let r = post(&f, "/api/chat", None, json!({"messages": []})).await;
    assert_eq!(r.status, 400);
    assert_eq!(r.json()["error"], "model is required");
    let r = post_raw(&f, "/api/chat", None, "{{".into()).await;
    assert_eq!(r.status, 400);
    assert!(r.json()["error"].is_string());
}
