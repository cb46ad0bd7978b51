//! GigaChat: OAuth, token expiry, functions with object arguments, streaming, other endpoints.

use crate::common::*;
use llm_mocks::{Provider, SettingsPatch};
use serde_json::{json, Value};

async fn oauth(f: &llm_mocks::FakeServer, auth: Option<&str>, rquid: Option<&str>, body: &str) -> Reply {
    let mut h = vec![("content-type", "application/x-www-form-urlencoded")];
    if let Some(a) = auth {
        h.push(("authorization", a));
    }
    if let Some(r) = rquid {
        h.push(("rquid", r));
    }
    send(
        reqwest::Method::POST,
        format!("{}/api/v2/oauth", f.uri()),
        &h,
        Some(body.into()),
    )
    .await
    .unwrap()
}

const KEY: &str = "Basic Y2xpZW50LWlkOnNlY3JldA==";
const RQUID: &str = "6f0b1291-c7f3-43c6-bb2e-9f3efb2dc98e";

#[tokio::test]
async fn oauth_issues_tokens_with_expiry_in_epoch_ms() {
    let f = start(Provider::GigaChat).await;
    let r = oauth(&f, Some(KEY), Some(RQUID), "scope=GIGACHAT_API_PERS").await;
    assert_eq!(r.status, 200);
    let b = r.json();
    let exp = b["expires_at"].as_u64().unwrap();
    let now_ms = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_millis() as u64;
    assert!(
        exp > now_ms + 29 * 60 * 1000 && exp <= now_ms + 31 * 60 * 1000,
        "30 minutes, in ms"
    );
    assert!(!b["access_token"].as_str().unwrap().is_empty());
}

#[tokio::test]
async fn oauth_errors_have_code_and_message() {
    let f = start(Provider::GigaChat).await;
    let cases = [
        (Some(KEY), None, "scope=GIGACHAT_API_PERS", 400),
        (Some(KEY), Some("not-a-uuid"), "scope=GIGACHAT_API_PERS", 400),
        (None, Some(RQUID), "scope=GIGACHAT_API_PERS", 401),
        (
            Some("Basic !!!notbase64"),
            Some(RQUID),
            "scope=GIGACHAT_API_PERS",
            401,
        ),
        (
            Some("Basic bm9jb2xvbg=="),
            Some(RQUID),
            "scope=GIGACHAT_API_PERS",
            401,
        ),
        (Some(KEY), Some(RQUID), "", 400),
        (Some(KEY), Some(RQUID), "scope=SOMETHING", 400),
    ];
    for (auth, rquid, body, status) in cases {
        let r = oauth(&f, auth, rquid, body).await;
        assert_eq!(r.status, status, "{auth:?} {rquid:?} {body}: {}", r.text);
        let b = r.json();
        assert!(b["code"].is_u64() && b["message"].is_string(), "{}", r.text);
    }
    assert_eq!(oauth(&f, Some(KEY), Some(RQUID), "").await.json()["code"], 5);
    assert_eq!(
        oauth(&f, Some(KEY), Some(RQUID), "scope=X").await.json()["code"],
        1
    );
}

#[tokio::test]
async fn only_issued_unexpired_tokens_pass() {
    let f = start(Provider::GigaChat).await;
    let r = post(
        &f,
        "/api/v1/chat/completions",
        Some("made-up-token"),
        chat_body("GigaChat", "x", false),
    )
    .await;
    assert_eq!(r.status, 401);
    assert_eq!(r.json(), json!({"status": 401, "message": "Unauthorized"}));
    assert_eq!(
        post(
            &f,
            "/api/v1/chat/completions",
            None,
            chat_body("GigaChat", "x", false)
        )
        .await
        .status,
        401
    );
    let good = giga_token(&f).await;
    assert_eq!(
        post(
            &f,
            "/api/v1/chat/completions",
            Some(&good),
            chat_body("GigaChat", "x", false)
        )
        .await
        .status,
        200
    );
    // A token issued with a zero lifetime is expired at once.
    f.update_settings(SettingsPatch {
        token_ttl_ms: Some(0),
        ..Default::default()
    });
    let dead = giga_token(&f).await;
    assert_eq!(
        post(
            &f,
            "/api/v1/chat/completions",
            Some(&dead),
            chat_body("GigaChat", "x", false)
        )
        .await
        .status,
        401
    );
    assert_eq!(get(&f, "/api/v1/models", Some(&dead)).await.status, 401);
    // Reset forgets every token.
    f.reset();
    assert_eq!(
        post(
            &f,
            "/api/v1/chat/completions",
            Some(&good),
            chat_body("GigaChat", "x", false)
        )
        .await
        .status,
        401
    );
}

#[tokio::test]
async fn chat_has_no_id_and_a_versioned_model() {
    let f = start(Provider::GigaChat).await;
    let t = giga_token(&f).await;
    let r = post(
        &f,
        "/api/v1/chat/completions",
        Some(&t),
        chat_body("GigaChat", "Привет", false),
    )
    .await;
    let b = r.json();
    assert!(b.get("id").is_none());
    assert_eq!(b["object"], "chat.completion");
    assert!(b["model"].as_str().unwrap().starts_with("GigaChat:"));
    assert!(b["choices"][0]["message"]["content"]
        .as_str()
        .unwrap()
        .starts_with("[gigachat] "));
    assert!(b["usage"]["precached_prompt_tokens"].is_u64());
    // System message must come first.
    let bad = json!({"model": "GigaChat", "messages": [{"role": "user", "content": "a"}, {"role": "system", "content": "b"}]});
    let r = post(&f, "/api/v1/chat/completions", Some(&t), bad).await;
    assert_eq!(r.status, 422);
    assert!(r.json()["message"]
        .as_str()
        .unwrap()
        .contains("system message must be the first"));
}

#[tokio::test]
async fn functions_return_object_arguments() {
    let f = start(Provider::GigaChat).await;
    let t = giga_token(&f).await;
    let body = json!({"model": "GigaChat", "messages": [{"role": "user", "content": "Погода в Москве?"}],
        "functions": [{"name": "weather_forecast", "description": "d", "parameters": {"type": "object",
            "properties": {"location": {"type": "string"}, "num_days": {"type": "integer"}}, "required": ["location", "num_days"]}}],
        "function_call": "auto"});
    let b = post(&f, "/api/v1/chat/completions", Some(&t), body.clone())
        .await
        .json();
    let c = &b["choices"][0];
    assert_eq!(c["finish_reason"], "function_call");
    assert_eq!(c["message"]["function_call"]["name"], "weather_forecast");
    assert!(
        c["message"]["function_call"]["arguments"].is_object(),
        "object, not a string"
    );
    assert_eq!(c["message"]["function_call"]["arguments"]["num_days"], 1);
    assert!(c["message"]["functions_state_id"].is_string());
    // After a function result the model answers in text.
    let mut follow = body;
    follow["messages"] = json!([{"role": "user", "content": "Погода?"},
        {"role": "assistant", "content": "", "function_call": {"name": "weather_forecast", "arguments": {"location": "Москва"}}},
        {"role": "function", "name": "weather_forecast", "content": "{\"temp\": 3}"}]);
    let b = post(&f, "/api/v1/chat/completions", Some(&t), follow)
        .await
        .json();
    assert_eq!(b["choices"][0]["finish_reason"], "stop");
}

#[tokio::test]
async fn stream_has_usage_on_the_finish_chunk_then_done() {
    let f = start(Provider::GigaChat).await;
    let t = giga_token(&f).await;
    let plain = post(
        &f,
        "/api/v1/chat/completions",
        Some(&t),
        chat_body("GigaChat", "s", false),
    )
    .await
    .json();
    let r = post(
        &f,
        "/api/v1/chat/completions",
        Some(&t),
        chat_body("GigaChat", "s", true),
    )
    .await;
    assert!(r.header("content-type").unwrap().starts_with("text/event-stream"));
    let data = r.sse_data();
    assert_eq!(data.last().unwrap(), "[DONE]");
    let ev: Vec<Value> = data[..data.len() - 1]
        .iter()
        .map(|d| serde_json::from_str(d).unwrap())
        .collect();
    let fin = ev.last().unwrap();
    assert_eq!(fin["choices"][0]["finish_reason"], "stop");
    assert_eq!(fin["choices"][0]["delta"]["content"], "");
    assert_eq!(fin["usage"], plain["usage"]);
    let text: String = ev
        .iter()
        .map(|e| e["choices"][0]["delta"]["content"].as_str().unwrap())
        .collect();
    assert_eq!(text, plain["choices"][0]["message"]["content"].as_str().unwrap());
}

#[tokio::test]
async fn models_embeddings_tokens_balance_and_header_echo() {
    let f = start(Provider::GigaChat).await;
    let t = giga_token(&f).await;
    let m = get(&f, "/api/v1/models", Some(&t)).await.json();
    assert!(m["data"]
        .as_array()
        .unwrap()
        .iter()
        .any(|x| x["id"] == "GigaChat" && x["owned_by"] == "salutedevices"));
    assert_eq!(get(&f, "/api/v1/models/GigaChat-Pro", Some(&t)).await.status, 200);
    assert_eq!(get(&f, "/api/v1/models/Nope", Some(&t)).await.status, 404);
    let e = post(
        &f,
        "/api/v1/embeddings",
        Some(&t),
        json!({"model": "Embeddings", "input": ["a", "b"]}),
    )
    .await
    .json();
    assert_eq!(e["data"].as_array().unwrap().len(), 2);
    assert!(e["data"][0]["usage"]["prompt_tokens"].is_u64());
    assert!(e.get("usage").is_none(), "usage per item only");
    let c = post(
        &f,
        "/api/v1/tokens/count",
        Some(&t),
        json!({"model": "GigaChat", "input": ["hello world"]}),
    )
    .await
    .json();
    assert_eq!(c[0]["object"], "tokens");
    assert_eq!(c[0]["characters"], 11);
    let b = get(&f, "/api/v1/balance", Some(&t)).await.json();
    assert!(b["balance"][0]["value"].is_u64());
    let auth = format!("Bearer {t}");
    let r = send(
        reqwest::Method::GET,
        format!("{}/api/v1/models", f.uri()),
        &[
            ("authorization", &auth),
            ("x-request-id", "r-1"),
            ("x-session-id", "s-1"),
        ],
        None,
    )
    .await
    .unwrap();
    assert_eq!(r.header("x-request-id"), Some("r-1"));
    assert_eq!(r.header("x-session-id"), Some("s-1"));
}
