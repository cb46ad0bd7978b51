//! Ollama tests on recorded fixtures (PROVIDERS.md section 5).

use serde_json::json;

use super::*;
use crate::providers::openai::tests::{body, collect};

#[test]
fn request_maps_options_and_roles() {
    let req: ChatRequest = serde_json::from_value(json!({
        "model": "default", "messages": [{"role": "developer", "content": "x"}, {"role": "user", "content": "hi"}],
        "max_tokens": 10, "temperature": 0.2, "stop": "END", "seed": 4
    }))
    .unwrap();
    let b = request(&req, "llama3.2", true);
    assert_eq!(b["messages"][0]["role"], "system");
    assert_eq!(b["stream"], true);
    assert_eq!(b["options"]["num_predict"], 10);
    assert_eq!(b["options"]["stop"], json!(["END"]));
}

#[test]
fn response_with_tool_call_object_arguments() {
    let v = json!({"model":"llama3.2","created_at":"2023-08-04T08:52:19.385406455-07:00",
        "message":{"role":"assistant","content":"","tool_calls":[{"function":{"name":"get_weather","arguments":{"city":"Tokyo"}}}]},
        "done":true,"done_reason":"stop","prompt_eval_count":26,"eval_count":282});
    let r = response(&v).unwrap();
    let call = &r.choices[0].message.tool_calls.as_ref().unwrap()[0];
    assert_eq!(call.function.arguments, r#"{"city":"Tokyo"}"#);
    assert_eq!(r.choices[0].finish_reason.as_deref(), Some("tool_calls"));
    assert_eq!(r.usage, Some(Usage::new(26, 282)));
}

const NDJSON: &str = "{\"model\":\"llama3.2\",\"created_at\":\"t\",\"message\":{\"role\":\"assistant\",\"content\":\"The\"},\"done\":false}\n\
{\"model\":\"llama3.2\",\"created_at\":\"t\",\"message\":{\"role\":\"assistant\",\"content\":\" sky\"},\"done\":false}\n\
{\"model\":\"llama3.2\",\"created_at\":\"t\",\"message\":{\"role\":\"assistant\",\"content\":\"\"},\"done\":true,\"done_reason\":\"stop\",\"total_duration\":4883583458,\"prompt_eval_count\":26,\"eval_count\":282}\n";

fn s(parts: &[&str]) -> ChunkStream {
    stream::drive(
        body(parts),
        Framing::Ndjson,
        OllamaStream {
            id: "x".into(),
            created: 1,
            first: true,
        },
    )
}

#[tokio::test]
async fn ndjson_stream_fixture_cut_and_error_line() {
    let (chunks, err) = collect(s(&[NDJSON])).await;
    assert!(err.is_none());
    let text: String = chunks
        .iter()
        .filter_map(|c| c.choices[0].delta.content.clone())
        .collect();
    assert_eq!(text, "The sky");
    assert_eq!(chunks[2].choices[0].finish_reason.as_deref(), Some("stop"));
    assert_eq!(chunks[2].usage, Some(Usage::new(26, 282)));
    let cut = &NDJSON[..NDJSON.rfind("{\"model\"").unwrap()];
    assert_eq!(collect(s(&[cut])).await.1.unwrap().class, ErrorClass::Malformed);
    let first = NDJSON.lines().next().unwrap();
    let (chunks, err) = collect(s(&[
        first,
        "\n{\"error\":\"an error was encountered while running the model\"}\n",
    ]))
    .await;
    assert_eq!(chunks.len(), 1);
    assert_eq!(err.unwrap().class, ErrorClass::Overloaded);
}

#[test]
fn errors() {
    let h = HeaderMap::new();
    assert_eq!(
        classify(
            404,
            &h,
            r#"{"error":"model \"x\" not found, try pulling it first"}"#
        )
        .class,
        ErrorClass::NotFound
    );
    assert_eq!(
        classify(400, &h, r#"{"error":"model is required"}"#).class,
        ErrorClass::BadRequest
    );
    assert_eq!(classify(500, &h, "oops").class, ErrorClass::Overloaded);
}

#[test]
fn inline_images_and_structured_output_reach_ollama() {
    let req: ChatRequest = serde_json::from_value(json!({"model": "m", "messages": [
        {"role": "user", "content": [{"type": "text", "text": "what is this?"},
            {"type": "image_url", "image_url": {"url": "data:image/png;base64,iVBORw0KGgo="}}]}],
        "response_format": {"type": "json_schema", "json_schema": {"name": "x", "schema": {"type": "object"}}}}))
    .unwrap();
    let body = request(&req, "llava", false);
    assert_eq!(body["messages"][0]["content"], "what is this?");
    assert_eq!(body["messages"][0]["images"], json!(["iVBORw0KGgo="]));
    assert_eq!(body["format"], json!({"type": "object"}));
}
