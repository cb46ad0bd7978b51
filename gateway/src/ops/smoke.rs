//! `llm-gateway smoke`: each provider checked directly (credentials, one chat, one stream, embeddings with
//! `--full`), a table with a hint for every failure, a JSON report.

use std::time::Duration;

use futures::StreamExt;
use serde::Serialize;
use serde_json::json;
use tokio::time::Instant;

use crate::canonical::{ChatRequest, EmbeddingsRequest};
use crate::config::{Config, ProviderConfig};
use crate::providers::{Adapter, ErrorClass, ProviderError, Read};

/// One check of one provider.
#[derive(Debug, Clone, Serialize)]
pub struct Check {
    /// Provider name.
    pub provider: String,
    /// `credentials`, `chat`, `stream` or `embeddings`.
    pub check: &'static str,
    /// Passed.
    pub ok: bool,
    /// Milliseconds taken.
    pub ms: u64,
    /// What happened (never a secret).
    pub detail: String,
    /// What to do about a failure.
    pub hint: Option<String>,
}

/// The whole run.
#[derive(Debug, Clone, Serialize)]
pub struct SmokeReport {
    /// Every check, in order.
    pub checks: Vec<Check>,
    /// Failed checks.
    pub failed: usize,
}

/// Hint for a failed call, e.g. `401 from kimi: check KIMI_API_KEY`.
pub fn hint(pc: &ProviderConfig, e: &ProviderError) -> String {
    let name = &pc.name;
    let status = e.status.map_or_else(|| "error".to_string(), |s| s.to_string());
    let env = pc
        .secret_source
        .env
        .clone()
        .or_else(|| pc.kind.default_secret_env().map(str::to_string))
        .unwrap_or_else(|| "its secret".into());
    match e.class {
        ErrorClass::Auth => format!("{status} from {name}: check {env}"),
        ErrorClass::Connect => format!(
            "cannot reach {name} at {}: check the network, proxy or base_url",
            pc.base_url
        ),
        ErrorClass::Timeout => {
            format!("{name} did not answer in time: check connectivity or raise attempt_timeout")
        }
        ErrorClass::RateLimited => {
            format!("{status} from {name}: rate-limited, retry later or lower the load")
        }
        ErrorClass::QuotaExhausted => {
            format!("{status} from {name}: quota or balance exhausted, top up the account")
        }
        ErrorClass::Overloaded => {
            format!("{status} from {name}: provider overloaded or failing, retry later")
        }
        ErrorClass::NotFound => {
            format!("{status} from {name}: it has no such model: check models: for {name}")
        }
        ErrorClass::BadRequest | ErrorClass::ContextLength => {
            format!("{status} from {name}: check the model names under models: for {name}")
        }
        ErrorClass::ContentFilter => format!("{name} refused the smoke prompt (content filter)"),
        ErrorClass::Malformed => {
            format!("{name} answered something unexpected: check base_url points at its API")
        }
    }
}

/// The provider's embeddings model: under `embeddings`, else under any logical model named `embeddings-*`.
fn embeddings_model_for(cfg: &Config, provider: &str) -> Option<String> {
    cfg.models
        .iter()
        .filter(|(name, _)| *name == "embeddings" || name.starts_with("embeddings-"))
        .find_map(|(_, m)| m.get(provider).cloned())
}

fn model_for(cfg: &Config, logical: &str, provider: &str) -> Option<String> {
    cfg.models
        .get(logical)
        .and_then(|m| m.get(provider))
        .cloned()
        .or_else(|| {
            (logical == "default")
                .then(|| cfg.models.values().find_map(|m| m.get(provider).cloned()))
                .flatten()
        })
}

fn request(model: &str, stream: bool) -> Result<ChatRequest, String> {
    serde_json::from_value(json!({
        "model": model, "stream": stream, "max_tokens": 16,
        "messages": [{"role": "user", "content": "Reply with the single word: pong"}]
    }))
    .map_err(|e| e.to_string())
}

async fn timed<T>(
    limit: Duration,
    f: impl std::future::Future<Output = Result<T, ProviderError>>,
) -> (u64, Result<T, ProviderError>) {
    let t0 = Instant::now();
    let r = tokio::time::timeout(limit, f).await.unwrap_or_else(|_| {
        Err(ProviderError::new(
            ErrorClass::Timeout,
            "no answer within the attempt timeout",
        ))
    });
    (t0.elapsed().as_millis() as u64, r)
}

/// Runs the checks for `only` (or every provider in the fallback order).
pub async fn run(cfg: &Config, only: Option<&str>, full: bool) -> Result<SmokeReport, String> {
    let providers: Vec<&ProviderConfig> = match only {
        Some(n) => vec![cfg
            .providers
            .get(n)
            .ok_or_else(|| format!("no provider named {n:?} in the config"))?],
        None => cfg.ordered_providers().collect(),
    };
    let mut checks = Vec::new();
    // Upstream text in the report is redacted like everywhere else.
    let redactor = std::sync::Arc::new(crate::providers::Redactor::from_config(cfg));
    for pc in providers {
        let mut push = |check, ok, ms, detail: String, hint: Option<String>| {
            checks.push(Check {
                provider: pc.name.clone(),
                check,
                ok,
                ms,
                detail,
                hint,
            })
        };
        let needs_secret = pc.kind.default_secret_env().is_some();
        if needs_secret && pc.secret.is_none() {
            let env = pc.secret_source.env.clone().unwrap_or_default();
            push(
                "credentials",
                false,
                0,
                "no secret found".into(),
                Some(format!("set {env} or {env}_FILE")),
            );
            continue;
        }
        let detail = if needs_secret {
            format!("secret from {}", pc.secret_source.found_in)
        } else {
            "none needed".into()
        };
        push("credentials", true, 0, detail, None);
        let adapter = match Adapter::build(pc, redactor.clone()) {
            Ok(a) => a,
            Err(e) => {
                push(
                    "chat",
                    false,
                    0,
                    e.to_string(),
                    Some("check ca_bundle and base_url".into()),
                );
                continue;
            }
        };
        let Some(model) = model_for(cfg, "default", &pc.name) else {
            push(
                "chat",
                false,
                0,
                "no model mapped to this provider".into(),
                Some(format!("add {} under models.default", pc.name)),
            );
            continue;
        };
        let limit = pc.attempt_timeout;
        let req = request(&model, false)?;
        let (ms, r) = timed(limit, adapter.chat(&req, &model, Read::Full)).await;
        match r {
            Ok(resp) => push(
                "chat",
                true,
                ms,
                format!("{model}: {:?}", resp.text().chars().take(40).collect::<String>()),
                None,
            ),
            Err(e) => push(
                "chat",
                false,
                ms,
                format!("{model}: {} ({})", e.message, e.class.as_str()),
                Some(hint(pc, &e)),
            ),
        }
        let req = request(&model, true)?;
        let (ms, r) = timed(limit, async {
            let mut s = adapter.chat_stream(&req, &model).await?;
            let mut chunks = 0usize;
            while let Some(c) = s.next().await {
                c?;
                chunks += 1;
            }
            Ok(chunks)
        })
        .await;
        match r {
            Ok(n) if n > 0 => push("stream", true, ms, format!("{n} chunks"), None),
            Ok(_) => push(
                "stream",
                false,
                ms,
                "empty stream".into(),
                Some(format!("{} streamed nothing", pc.name)),
            ),
            Err(e) => push(
                "stream",
                false,
                ms,
                format!("{} ({})", e.message, e.class.as_str()),
                Some(hint(pc, &e)),
            ),
        }
        if full {
            let Some(model) = embeddings_model_for(cfg, &pc.name) else {
                push(
                    "embeddings",
                    true,
                    0,
                    "skipped: no models.embeddings or models.embeddings-* entry for it".into(),
                    None,
                );
                continue;
            };
            let req: EmbeddingsRequest =
                serde_json::from_value(json!({"model": model, "input": ["smoke test"]}))
                    .map_err(|e| e.to_string())?;
            let (ms, r) = timed(limit, adapter.embed(&req, &model)).await;
            match r {
                Ok(v) => {
                    let dims = v.data.first().map_or(0, |d| d.embedding.len());
                    push(
                        "embeddings",
                        dims > 0,
                        ms,
                        format!("{model}: {dims} dimensions"),
                        None,
                    );
                }
                Err(e) => push(
                    "embeddings",
                    false,
                    ms,
                    format!("{model}: {} ({})", e.message, e.class.as_str()),
                    Some(hint(pc, &e)),
                ),
            }
        }
    }
    let failed = checks.iter().filter(|c| !c.ok).count();
    Ok(SmokeReport { checks, failed })
}

/// The console table.
pub fn table(r: &SmokeReport) -> String {
    let mut out = format!(
        "{:<10} {:<12} {:<5} {:>7}  {}\n",
        "provider", "check", "ok", "ms", "detail"
    );
    for c in &r.checks {
        let ok = if c.ok { "ok" } else { "FAIL" };
        out.push_str(&format!(
            "{:<10} {:<12} {:<5} {:>7}  {}\n",
            c.provider, c.check, ok, c.ms, c.detail
        ));
        if let Some(h) = &c.hint {
            out.push_str(&format!("{:<10} {:<12} hint: {h}\n", "", ""));
        }
    }
    out.push_str(&format!("{} checks, {} failed\n", r.checks.len(), r.failed));
    out
}
