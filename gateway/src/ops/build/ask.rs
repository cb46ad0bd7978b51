//! Asking the live chain (the gateway in process) for answers and vectors, and reading a gateway's recorded misses.

use std::sync::Arc;

use axum::body::Body;
use axum::http::Request;
use serde_json::{json, Value};
use tower::ServiceExt;

use super::progress::Done;
use super::BuildOptions;
use crate::config::{Config, Mode};
use crate::AppState;

/// The in-process gateway that answers: cache and packages off (answers come from models), no probes, no client
/// keys, `auto` mode (or only `provider`).
pub(super) fn chain(mut cfg: Config, opts: &BuildOptions) -> Result<Arc<AppState>, String> {
    cfg.mode = Mode::Auto;
    cfg.connectivity = None;
    cfg.clients.clear();
    cfg.cache.enabled = false;
    cfg.offline.packages.clear();
    cfg.offline.misses.record = crate::offline::MissRecording::Off;
    if let Some(p) = &opts.provider {
        if !cfg.providers.contains_key(p) {
            let known: Vec<&str> = cfg.providers.keys().map(String::as_str).collect();
            return Err(format!(
                "--provider {p:?} is not in the config (providers: {})",
                known.join(", ")
            ));
        }
        cfg.policy.order = vec![p.clone()];
    }
    let state = AppState::new(cfg).map_err(|e| e.to_string())?;
    state
        .router
        .plan(&opts.model, Mode::Auto, None)
        .map_err(|e| format!("cannot ask model {:?}: {e}", opts.model))?;
    if let Some(m) = &opts.embeddings_model {
        state
            .router
            .plan(m, Mode::Auto, None)
            .map_err(|e| format!("cannot ask embeddings model {m:?}: {e}"))?;
    }
    Ok(state)
}

/// Sends one request to the in-process gateway: (status, `X-LLM-Actual-Provider`, `X-LLM-Source`, JSON body).
async fn post(
    router: &axum::Router,
    path: &str,
    body: Value,
) -> Result<(u16, String, String, Value), String> {
    let req = Request::post(path)
        .header("content-type", "application/json")
        .body(Body::from(body.to_string()))
        .map_err(|e| e.to_string())?;
    let resp = router.clone().oneshot(req).await.map_err(|e| e.to_string())?;
    let status = resp.status().as_u16();
    let header = |n: &str| {
        resp.headers()
            .get(n)
            .and_then(|v| v.to_str().ok())
            .unwrap_or("")
            .to_string()
    };
    let (who, source) = (header("x-llm-actual-provider"), header("x-llm-source"));
    let bytes = axum::body::to_bytes(resp.into_body(), 64 * 1024 * 1024)
        .await
        .map_err(|e| format!("cannot read the answer: {e}"))?;
    let v = serde_json::from_slice(&bytes).unwrap_or(Value::Null);
    Ok((status, who, source, v))
}

fn error_text(status: u16, v: &Value) -> String {
    let e = &v["error"];
    let mut s = format!("HTTP {status}");
    if let Some(c) = e["code"].as_str() {
        s.push_str(&format!(" {c}"));
    }
    if let Some(m) = e["message"].as_str() {
        s.push_str(&format!(": {m}"));
    }
    s
}

pub(super) async fn ask(router: &axum::Router, opts: &BuildOptions, prompt: &str) -> Result<Done, String> {
    let body = json!({"model": opts.model, "temperature": 0,
        "messages": [{"role": "user", "content": prompt}]});
    let (status, provider, source, v) = post(router, "/v1/chat/completions", body).await?;
    if status != 200 {
        return Err(error_text(status, &v));
    }
    // Only a model's answer goes into a package (the cache and the packages are off; this keeps it so).
    if !matches!(source.as_str(), "provider" | "local") {
        return Err(format!("answered by {source:?}, not by a model"));
    }
    let answer = v
        .pointer("/choices/0/message/content")
        .and_then(Value::as_str)
        .map(str::trim)
        .filter(|a| !a.is_empty())
        .ok_or_else(|| format!("{provider} answered without text"))?
        .to_string();
    let finish = v.pointer("/choices/0/finish_reason").and_then(Value::as_str);
    if matches!(finish, Some("length" | "content_filter")) {
        return Err(format!("{provider}'s answer was cut ({})", finish.unwrap_or("")));
    }
    let (mut embedding, mut embedding_model) = (None, None);
    if let Some(m) = &opts.embeddings_model {
        let (status, _, _, v) = post(router, "/v1/embeddings", json!({"model": m, "input": prompt})).await?;
        if status != 200 {
            return Err(format!("embeddings: {}", error_text(status, &v)));
        }
        let vector: Vec<f32> = v
            .pointer("/data/0/embedding")
            .and_then(Value::as_array)
            .map(|a| a.iter().filter_map(Value::as_f64).map(|x| x as f32).collect())
            .filter(|x: &Vec<f32>| !x.is_empty() && x.iter().all(|f| f.is_finite()))
            .ok_or("embeddings: the answer has no vector of finite numbers")?;
        embedding = Some(vector);
        embedding_model = v["model"].as_str().map(str::to_string);
    }
    Ok(Done {
        prompt: prompt.to_string(),
        answer,
        provider,
        embedding,
        embedding_model,
    })
}
/// The prompts of a `GET /admin/offline/misses` answer (at `url`, with an optional admin token): each recorded
/// prompt seen at least `min_count` times. Hash-only and redacted records cannot be asked; they are returned as
/// skipped with the reason.
pub async fn prompts_from_misses(
    client: &reqwest::Client,
    url: &str,
    token: Option<&str>,
    min_count: u64,
) -> Result<(Vec<String>, Vec<String>), String> {
    let mut req = client.get(url);
    if let Some(t) = token {
        req = req.bearer_auth(t);
    }
    let resp = req.send().await.map_err(|e| format!("cannot reach {url}: {e}"))?;
    let status = resp.status();
    let v: Value = resp
        .json()
        .await
        .map_err(|e| format!("{url} answered {status} with a body that is not JSON: {e}"))?;
    if !status.is_success() {
        return Err(format!("{url} answered {}", error_text(status.as_u16(), &v)));
    }
    let list = v["misses"]
        .as_array()
        .ok_or_else(|| format!("{url}: no \"misses\" list (is it /admin/offline/misses?)"))?;
    let (mut prompts, mut skipped) = (Vec::new(), Vec::new());
    for m in list {
        let count = m["count"].as_u64().unwrap_or(0);
        let hash = m["hash"].as_str().unwrap_or("?");
        match m["prompt"].as_str() {
            _ if count < min_count => {}
            None => skipped.push(format!(
                "{hash}: only its hash is recorded (offline.misses.record: hashed)"
            )),
            Some(_) if m["redacted"].as_bool() == Some(true) => skipped.push(format!(
                "{hash}: a secret was removed from it; write this one by hand"
            )),
            Some(p) => prompts.push(p.to_string()),
        }
    }
    Ok((prompts, skipped))
}
