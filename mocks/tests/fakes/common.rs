//! Helpers: start a fake, send requests, read SSE and NDJSON.

use llm_mocks::{FakeServer, Provider};
use serde_json::Value;

pub async fn start(p: Provider) -> FakeServer {
    FakeServer::start(p).await.unwrap()
}

pub struct Reply {
    pub status: u16,
    pub headers: reqwest::header::HeaderMap,
    pub text: String,
}

impl Reply {
    pub fn json(&self) -> Value {
        serde_json::from_str(&self.text).unwrap_or_else(|e| panic!("not JSON ({e}): {}", self.text))
    }
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers.get(name).and_then(|v| v.to_str().ok())
    }
    /// The `data:` payloads of an SSE body (with or without a space after the colon).
    pub fn sse_data(&self) -> Vec<String> {
        self.text
            .lines()
            .filter_map(|l| l.strip_prefix("data:"))
            .map(|d| d.strip_prefix(' ').unwrap_or(d).to_string())
            .collect()
    }
    /// The lines of an NDJSON body, parsed.
    pub fn ndjson(&self) -> Vec<Value> {
        self.text
            .lines()
            .filter(|l| !l.is_empty())
            .map(|l| serde_json::from_str(l).unwrap())
            .collect()
    }
}

pub async fn send(
    method: reqwest::Method,
    url: String,
    headers: &[(&str, &str)],
    body: Option<String>,
) -> Result<Reply, reqwest::Error> {
    let client = reqwest::Client::new();
    let mut rb = client.request(method, url);
    for (k, v) in headers {
        rb = rb.header(*k, *v);
    }
    if let Some(b) = body {
        rb = rb.header("content-type", "application/json").body(b);
    }
    let r = rb.send().await?;
    let status = r.status().as_u16();
    let headers = r.headers().clone();
    let text = r.text().await?;
    Ok(Reply {
        status,
        headers,
        text,
    })
}

pub async fn post(fake: &FakeServer, path: &str, key: Option<&str>, body: Value) -> Reply {
    post_raw(fake, path, key, body.to_string()).await
}

pub async fn post_raw(fake: &FakeServer, path: &str, key: Option<&str>, body: String) -> Reply {
    let auth = key.map(|k| format!("Bearer {k}"));
    let mut h = vec![];
    if let Some(a) = &auth {
        h.push(("authorization", a.as_str()));
    }
    send(
        reqwest::Method::POST,
        format!("{}{path}", fake.uri()),
        &h,
        Some(body),
    )
    .await
    .unwrap()
}

pub async fn get(fake: &FakeServer, path: &str, key: Option<&str>) -> Reply {
    let auth = key.map(|k| format!("Bearer {k}"));
    let mut h = vec![];
    if let Some(a) = &auth {
        h.push(("authorization", a.as_str()));
    }
    send(reqwest::Method::GET, format!("{}{path}", fake.uri()), &h, None)
        .await
        .unwrap()
}

/// Installs a fault through the admin API and checks the 201.
pub async fn fault(fake: &FakeServer, spec: Value) {
    let r = post(fake, "/__mock/faults", None, spec).await;
    assert_eq!(r.status, 201, "{}", r.text);
}

/// Gets a GigaChat token through the fake's OAuth.
pub async fn giga_token(fake: &FakeServer) -> String {
    let r = send(
        reqwest::Method::POST,
        format!("{}/api/v2/oauth", fake.uri()),
        &[
            ("authorization", "Basic Y2xpZW50LWlkOnNlY3JldA=="),
            ("rquid", "6f0b1291-c7f3-43c6-bb2e-9f3efb2dc98e"),
            ("content-type", "application/x-www-form-urlencoded"),
        ],
        Some("scope=GIGACHAT_API_PERS".into()),
    )
    .await
    .unwrap();
    assert_eq!(r.status, 200, "{}", r.text);
    r.json()["access_token"].as_str().unwrap().to_string()
}

pub fn chat_body(model: &str, prompt: &str, stream: bool) -> Value {
    serde_json::json!({"model": model, "stream": stream, "messages": [{"role": "user", "content": prompt}]})
}
