//! Every fault of every provider: status, body and headers as that provider really sends them.

use crate::common::*;
use llm_mocks::{FakeServer, FaultKind, Provider};
use serde_json::{json, Value};

/// One chat surface of one fake.
#[derive(Clone, Copy, Debug)]
enum Surface {
    OpenAi,
    Kimi,
    QwenCompat,
    QwenNative,
    GigaChat,
    Ollama,
    OllamaV1,
}

impl Surface {
    const ALL: [Surface; 7] = [
        Surface::OpenAi,
        Surface::Kimi,
        Surface::QwenCompat,
        Surface::QwenNative,
        Surface::GigaChat,
        Surface::Ollama,
        Surface::OllamaV1,
    ];

    fn provider(self) -> Provider {
        match self {
            Surface::OpenAi => Provider::OpenAi,
            Surface::Kimi => Provider::Kimi,
            Surface::QwenCompat | Surface::QwenNative => Provider::Qwen,
            Surface::GigaChat => Provider::GigaChat,
            Surface::Ollama | Surface::OllamaV1 => Provider::Ollama,
        }
    }

    async fn chat(self, f: &FakeServer, stream: bool) -> Result<Reply, reqwest::Error> {
        let (path, body, mut headers): (&str, Value, Vec<(String, String)>) = match self {
            Surface::OpenAi => (
                "/v1/chat/completions",
                chat_body("gpt-4o-mini", "hi", stream),
                vec![],
            ),
            Surface::Kimi => (
                "/v1/chat/completions",
                chat_body("moonshot-v1-8k", "hi", stream),
                vec![],
            ),
            Surface::QwenCompat => (
                "/compatible-mode/v1/chat/completions",
                chat_body("qwen-plus", "hi", stream),
                vec![],
            ),
            Surface::QwenNative => (
                "/api/v1/services/aigc/text-generation/generation",
                json!({"model": "qwen-plus", "input": {"messages": [{"role": "user", "content": "hi"}]},
                    "parameters": {"result_format": "message", "incremental_output": true}}),
                if stream {
                    vec![("x-dashscope-sse".into(), "enable".into())]
                } else {
                    vec![]
                },
            ),
            Surface::GigaChat => (
                "/api/v1/chat/completions",
                chat_body("GigaChat", "hi", stream),
                vec![],
            ),
            Surface::Ollama => ("/api/chat", chat_body("llama3.2", "hi", stream), vec![]),
            Surface::OllamaV1 => (
                "/v1/chat/completions",
                chat_body("llama3.2", "hi", stream),
                vec![],
            ),
        };
        let key = match self {
            Surface::GigaChat => giga_token(f).await,
            _ => "sk-test-key".to_string(),
        };
        headers.push(("authorization".into(), format!("Bearer {key}")));
        let h: Vec<(&str, &str)> = headers.iter().map(|(a, b)| (a.as_str(), b.as_str())).collect();
        send(
            reqwest::Method::POST,
            format!("{}{path}", f.uri()),
            &h,
            Some(body.to_string()),
        )
        .await
    }
}

/// What each plain (non-stream) error fault must look like: status, a JSON pointer and its value.
fn expected(s: Surface, k: FaultKind) -> (u16, &'static str, &'static str) {
    use FaultKind::*;
    use Surface::*;
    match (s, k) {
        (OpenAi, RateLimited) => (429, "/error/code", "rate_limit_exceeded"),
        (OpenAi, QuotaExhausted) => (429, "/error/code", "insufficient_quota"),
        (OpenAi, Overloaded) => (503, "/error/code", "server_is_overloaded"),
        (OpenAi, ServerError) => (500, "/error/type", "server_error"),
        (OpenAi, Auth) => (401, "/error/code", "invalid_api_key"),
        (OpenAi, BadRequest) => (400, "/error/type", "invalid_request_error"),
        (OpenAi, ContextLength) => (400, "/error/code", "context_length_exceeded"),
        (OpenAi, ContentFilter) => (200, "/choices/0/finish_reason", "content_filter"),
        (Kimi, RateLimited) => (429, "/error/type", "rate_limit_reached_error"),
        (Kimi, QuotaExhausted) => (429, "/error/type", "exceeded_current_quota_error"),
        (Kimi, Overloaded) => (429, "/error/type", "engine_overloaded_error"),
        (Kimi, ServerError) => (500, "/error/type", "server_error"),
        (Kimi, Auth) => (401, "/error/type", "invalid_authentication_error"),
        (Kimi, BadRequest | ContextLength) => (400, "/error/type", "invalid_request_error"),
        (Kimi, ContentFilter) => (400, "/error/type", "content_filter"),
        (QwenCompat, RateLimited) => (429, "/error/code", "limit_requests"),
        (QwenCompat, QuotaExhausted) => (400, "/error/code", "Arrearage"),
        (QwenCompat, Overloaded) => (503, "/error/code", "ServiceUnavailable"),
        (QwenCompat, ServerError) => (500, "/error/code", "internal_error"),
        (QwenCompat, Auth) => (401, "/error/code", "invalid_api_key"),
        (QwenCompat, BadRequest | ContextLength) => (400, "/error/code", "invalid_parameter_error"),
        (QwenCompat, ContentFilter) => (400, "/error/code", "data_inspection_failed"),
        (QwenNative, RateLimited) => (429, "/code", "Throttling.RateQuota"),
        (QwenNative, QuotaExhausted) => (400, "/code", "Arrearage"),
        (QwenNative, Overloaded) => (503, "/code", "ServiceUnavailable"),
        (QwenNative, ServerError) => (500, "/code", "InternalError"),
        (QwenNative, Auth) => (401, "/code", "InvalidApiKey"),
        (QwenNative, BadRequest | ContextLength) => (400, "/code", "InvalidParameter"),
        (QwenNative, ContentFilter) => (400, "/code", "DataInspectionFailed"),
        (GigaChat, RateLimited) => (429, "/message", "Too many requests"),
        (GigaChat, QuotaExhausted) => (402, "/message", "Payment Required"),
        (GigaChat, Overloaded) => (503, "/message", "Service Unavailable"),
        (GigaChat, ServerError) => (500, "/message", "Internal Server Error"),
        (GigaChat, Auth) => (401, "/message", "Unauthorized"),
        (GigaChat, BadRequest) => (400, "/message", "bad request format"),
        (GigaChat, ContextLength) => (422, "/status", ""),
        (GigaChat, ContentFilter) => (200, "/choices/0/finish_reason", "blacklist"),
        (Ollama, RateLimited | QuotaExhausted) => (429, "/error", ""),
        (Ollama, Overloaded) => (503, "/error", ""),
        (Ollama, ServerError) => (500, "/error", ""),
        (Ollama, Auth) => (401, "/error", "unauthorized"),
        (Ollama, BadRequest | ContextLength) => (400, "/error", ""),
        (Ollama, ContentFilter) => (200, "/done_reason", "stop"),
        (OllamaV1, RateLimited | QuotaExhausted) => (429, "/error/type", "api_error"),
        (OllamaV1, Overloaded) => (503, "/error/type", "api_error"),
        (OllamaV1, ServerError) => (500, "/error/type", "api_error"),
        (OllamaV1, Auth) => (401, "/error/type", "api_error"),
        (OllamaV1, BadRequest | ContextLength) => (400, "/error/type", "invalid_request_error"),
        (OllamaV1, ContentFilter) => (200, "/choices/0/finish_reason", "stop"),
        _ => unreachable!("{s:?} {k:?}"),
    }
}

#[tokio::test]
async fn every_error_fault_of_every_provider_has_the_real_shape() {
    use FaultKind::*;
    for s in Surface::ALL {
        let f = start(s.provider()).await;
        for k in [
            RateLimited,
            QuotaExhausted,
            Overloaded,
            ServerError,
            Auth,
            BadRequest,
            ContextLength,
            ContentFilter,
        ] {
            fault(&f, json!({"fault": k.name(), "times": 1})).await;
            let r = s.chat(&f, false).await.unwrap();
            let (status, ptr, want) = expected(s, k);
            assert_eq!(r.status, status, "{s:?} {k}: {}", r.text);
            let got = r
                .json()
                .pointer(ptr)
                .cloned()
                .unwrap_or_else(|| panic!("{s:?} {k}: no {ptr} in {}", r.text));
            if !want.is_empty() {
                assert_eq!(got, want, "{s:?} {k}");
            }
            // The fault was used up: the next request is answered normally.
            let ok = s.chat(&f, false).await.unwrap();
            assert_eq!(ok.status, 200, "{s:?} after {k}: {}", ok.text);
        }
        let j = f.journal();
        assert!(
            j.iter().any(|e| e.fault == Some("rate_limited")),
            "{s:?}: journal marks faults"
        );
    }
}

#[tokio::test]
async fn retry_after_is_sent_when_asked() {
    for s in Surface::ALL {
        let f = start(s.provider()).await;
        fault(&f, json!({"fault": "rate_limited", "retry_after_s": 7})).await;
        let r = s.chat(&f, false).await.unwrap();
        assert_eq!(r.status, 429, "{s:?}");
        assert_eq!(r.header("retry-after"), Some("7"), "{s:?}");
    }
}

#[tokio::test]
async fn gigachat_content_refusal_is_a_200_with_blacklist() {
    let f = start(Provider::GigaChat).await;
    fault(&f, json!({"fault": "content_filter"})).await;
    let r = Surface::GigaChat.chat(&f, false).await.unwrap();
    assert_eq!(r.status, 200);
    let b = r.json();
    assert_eq!(b["choices"][0]["finish_reason"], "blacklist");
    assert!(b["choices"][0]["message"]["content"]
        .as_str()
        .unwrap()
        .starts_with("Не люблю"));
}

fn is_json(text: &str) -> bool {
    serde_json::from_str::<Value>(text).is_ok()
}

#[tokio::test]
async fn malformed_bodies_are_not_json() {
    for s in Surface::ALL {
        let f = start(s.provider()).await;
        fault(&f, json!({"fault": "malformed", "times": 2})).await;
        let r = s.chat(&f, false).await.unwrap();
        assert_eq!(r.status, 200, "{s:?}");
        assert!(!is_json(&r.text), "{s:?}: {}", r.text);
        let r = s.chat(&f, true).await.unwrap();
        let broken = match s {
            Surface::Ollama => r.text.lines().any(|l| !l.is_empty() && !is_json(l)),
            _ => r.sse_data().iter().any(|d| d != "[DONE]" && !is_json(d)),
        };
        assert!(broken, "{s:?}: stream has a broken event: {}", r.text);
    }
}

/// What the end of a stream looks like, in provider-neutral terms.
#[derive(Debug, PartialEq)]
enum End {
    /// The provider's normal end marker.
    Clean,
    /// Stopped with no end marker and no error.
    Cut,
    /// An error event.
    Error,
}

fn stream_end(s: Surface, r: &Reply) -> (End, usize) {
    match s {
        Surface::Ollama => {
            let lines = r.ndjson();
            let content = lines
                .iter()
                .filter(|l| l.get("message").is_some() && l["done"] == false)
                .count();
            let end = match lines.last() {
                Some(l) if l.get("error").is_some() => End::Error,
                Some(l) if l["done"] == true => End::Clean,
                _ => End::Cut,
            };
            (end, content)
        }
        Surface::QwenNative => {
            let data = r.sse_data();
            let events: Vec<Value> = data.iter().map(|d| serde_json::from_str(d).unwrap()).collect();
            let content = events
                .iter()
                .filter(|e| e.pointer("/output/choices/0/finish_reason") == Some(&json!("null")))
                .count();
            let end = if r.text.contains("event:error") {
                End::Error
            } else if events
                .last()
                .and_then(|e| e.pointer("/output/choices/0/finish_reason"))
                == Some(&json!("stop"))
            {
                End::Clean
            } else {
                End::Cut
            };
            (end, content)
        }
        _ => {
            let data = r.sse_data();
            let events: Vec<Value> = data
                .iter()
                .filter(|d| *d != "[DONE]")
                .map(|d| serde_json::from_str(d).unwrap())
                .collect();
            let content = events
                .iter()
                .filter(|e| {
                    e.pointer("/choices/0/delta/content")
                        .and_then(Value::as_str)
                        .is_some_and(|c| !c.is_empty())
                })
                .count();
            let end = if events
                .iter()
                .any(|e| e.get("error").is_some() || e.get("status").is_some())
            {
                End::Error
            } else if data.last().map(String::as_str) == Some("[DONE]") {
                End::Clean
            } else {
                End::Cut
            };
            (end, content)
        }
    }
}

#[tokio::test]
async fn stream_faults_cut_or_error_after_n_chunks() {
    for s in Surface::ALL {
        let f = start(s.provider()).await;
        let r = s.chat(&f, true).await.unwrap();
        let (end, full) = stream_end(s, &r);
        assert_eq!(end, End::Clean, "{s:?}: {}", r.text);
        assert!(full > 3, "{s:?}");
        fault(
            &f,
            json!({"fault": "truncated_stream", "after_chunks": 3, "times": 1}),
        )
        .await;
        let r = s.chat(&f, true).await.unwrap();
        assert_eq!(r.status, 200);
        assert_eq!(stream_end(s, &r), (End::Cut, 3), "{s:?}: {}", r.text);
        fault(
            &f,
            json!({"fault": "stream_error", "after_chunks": 1, "times": 1}),
        )
        .await;
        let r = s.chat(&f, true).await.unwrap();
        assert_eq!(r.status, 200);
        assert_eq!(stream_end(s, &r), (End::Error, 1), "{s:?}: {}", r.text);
    }
}

#[tokio::test]
async fn drop_connection_closes_without_a_response() {
    for s in Surface::ALL {
        let f = start(s.provider()).await;
        fault(&f, json!({"fault": "drop_connection", "times": 1})).await;
        let err = s.chat(&f, false).await;
        assert!(
            err.is_err(),
            "{s:?}: expected a transport error, got {:?}",
            err.map(|r| r.status)
        );
        assert_eq!(
            s.chat(&f, false).await.unwrap().status,
            200,
            "{s:?}: serves again"
        );
    }
}

#[tokio::test]
async fn slow_delays_the_answer() {
    let f = start(Provider::OpenAi).await;
    fault(&f, json!({"fault": "slow", "delay_ms": 300, "times": 1})).await;
    let t = std::time::Duration::from_millis(300);
    let start = tokio::time::Instant::now();
    let r = Surface::OpenAi.chat(&f, false).await.unwrap();
    assert_eq!(r.status, 200);
    assert!(start.elapsed() >= t, "{:?}", start.elapsed());
}

#[tokio::test]
async fn quota_runs_out_after_n_requests_and_stays_out() {
    let f = start(Provider::Kimi).await;
    fault(&f, json!({"fault": "quota_exhausted", "after_requests": 3})).await;
    let mut statuses = vec![];
    for _ in 0..6 {
        statuses.push(Surface::Kimi.chat(&f, false).await.unwrap().status);
    }
    assert_eq!(statuses, vec![200, 200, 200, 429, 429, 429]);
}

#[tokio::test]
async fn model_lists_are_not_hit_by_faults() {
    let f = start(Provider::OpenAi).await;
    fault(&f, json!({"fault": "server_error"})).await;
    assert_eq!(get(&f, "/v1/models", Some("k")).await.status, 200);
    assert_eq!(Surface::OpenAi.chat(&f, false).await.unwrap().status, 500);
}

#[tokio::test]
async fn requests_without_credentials_do_not_use_up_faults() {
    let f = start(Provider::OpenAi).await;
    fault(&f, json!({"fault": "server_error", "times": 1})).await;
    assert_eq!(
        post(&f, "/v1/chat/completions", None, chat_body("gpt-4o", "x", false))
            .await
            .status,
        401
    );
    assert_eq!(Surface::OpenAi.chat(&f, false).await.unwrap().status, 500);
}
