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

/// A tiny JSON Schema check for the fakes' structured output: type, properties, required, additionalProperties:
/// false, enum, const, items, minItems/maxItems, anyOf/oneOf, allOf and `$ref` into the root. Returns the first
/// problem as a path.
pub fn check_schema(root: &Value, schema: &Value, v: &Value, at: &str) -> Result<(), String> {
    let Some(s) = schema.as_object() else {
        return Ok(());
    };
    if let Some(r) = s.get("$ref").and_then(Value::as_str) {
        let target = root
            .pointer(r.trim_start_matches('#'))
            .ok_or(format!("{at}: bad ref {r}"))?;
        check_schema(root, target, v, at)?;
    }
    if let Some(c) = s.get("const") {
        if c != v {
            return Err(format!("{at}: {v} is not const {c}"));
        }
    }
    if let Some(e) = s.get("enum").and_then(Value::as_array) {
        if !e.contains(v) {
            return Err(format!("{at}: {v} not in enum"));
        }
    }
    for key in ["anyOf", "oneOf"] {
        if let Some(bs) = s.get(key).and_then(Value::as_array) {
            if !bs.iter().any(|b| check_schema(root, b, v, at).is_ok()) {
                return Err(format!("{at}: {v} matches no branch of {key}"));
            }
        }
    }
    if let Some(bs) = s.get("allOf").and_then(Value::as_array) {
        for b in bs {
            check_schema(root, b, v, at)?;
        }
    }
    let types: Vec<&str> = match s.get("type") {
        Some(Value::String(t)) => vec![t.as_str()],
        Some(Value::Array(ts)) => ts.iter().filter_map(Value::as_str).collect(),
        _ => vec![],
    };
    let is = |t: &str| match t {
        "object" => v.is_object(),
        "array" => v.is_array(),
        "string" => v.is_string(),
        "integer" => v.is_i64() || v.is_u64(),
        "number" => v.is_number(),
        "boolean" => v.is_boolean(),
        "null" => v.is_null(),
        _ => true,
    };
    if !types.is_empty() && !types.iter().any(|t| is(t)) {
        return Err(format!("{at}: {v} is not of type {types:?}"));
    }
    if let Some(o) = v.as_object() {
        let props = s.get("properties").and_then(Value::as_object);
        for r in s.get("required").and_then(Value::as_array).into_iter().flatten() {
            let r = r.as_str().unwrap_or("");
            if !o.contains_key(r) {
                return Err(format!("{at}: missing required {r}"));
            }
        }
        for (k, val) in o {
            match props.and_then(|p| p.get(k)) {
                Some(p) => check_schema(root, p, val, &format!("{at}.{k}"))?,
                None if s.get("additionalProperties") == Some(&Value::Bool(false)) => {
                    return Err(format!("{at}: unexpected property {k}"))
                }
                None => {}
            }
        }
    }
    if let Some(a) = v.as_array() {
        if let Some(min) = s.get("minItems").and_then(Value::as_u64) {
            if (a.len() as u64) < min {
                return Err(format!("{at}: fewer than {min} items"));
            }
        }
        if let Some(max) = s.get("maxItems").and_then(Value::as_u64) {
            if (a.len() as u64) > max {
                return Err(format!("{at}: more than {max} items"));
            }
        }
        if let Some(items) = s.get("items") {
            for (i, x) in a.iter().enumerate() {
                check_schema(root, items, x, &format!("{at}[{i}]"))?;
            }
        }
    }
    if let (Some(n), Some(min)) = (v.as_f64(), s.get("minimum").and_then(Value::as_f64)) {
        if n < min {
            return Err(format!("{at}: {n} below minimum {min}"));
        }
    }
    if let (Some(n), Some(max)) = (v.as_f64(), s.get("maximum").and_then(Value::as_f64)) {
        if n > max {
            return Err(format!("{at}: {n} above maximum {max}"));
        }
    }
    if let (Some(t), Some(min)) = (v.as_str(), s.get("minLength").and_then(Value::as_u64)) {
        if (t.chars().count() as u64) < min {
            return Err(format!("{at}: shorter than {min}"));
        }
    }
    Ok(())
}

/// A pydantic-style schema: nested model by `$ref`, an enum, a list, an optional field, strict.
pub fn event_schema() -> Value {
    serde_json::json!({
        "$defs": {
            "Kind": {"enum": ["meeting", "call"], "title": "Kind", "type": "string"},
            "Place": {"type": "object", "title": "Place", "additionalProperties": false,
                "properties": {"city": {"type": "string"}, "floor": {"type": "integer", "minimum": 1}},
                "required": ["city", "floor"]}
        },
        "type": "object", "title": "Event", "additionalProperties": false,
        "properties": {
            "name": {"type": "string", "title": "Name"},
            "kind": {"$ref": "#/$defs/Kind"},
            "place": {"$ref": "#/$defs/Place"},
            "attendees": {"type": "array", "items": {"type": "string", "format": "email"}, "minItems": 2},
            "starts": {"type": "string", "format": "date-time"},
            "note": {"anyOf": [{"type": "string"}, {"type": "null"}], "default": null}
        },
        "required": ["name", "kind", "place", "attendees", "starts", "note"]
    })
}

/// Parses an SSE body with `event:` lines into (event name, data JSON) pairs.
pub fn sse_events(text: &str) -> Vec<(String, Value)> {
    text.split("\n\n")
        .filter(|b| !b.trim().is_empty())
        .map(|b| {
            let event = b
                .lines()
                .find_map(|l| l.strip_prefix("event: "))
                .unwrap_or("")
                .to_string();
            let data = b.lines().find_map(|l| l.strip_prefix("data: ")).unwrap_or("");
            let v = serde_json::from_str(data).unwrap_or(Value::String(data.to_string()));
            (event, v)
        })
        .collect()
}
