//! What the tools act on: the gateway in this process, or a running gateway over its REST API.

use std::sync::Arc;

use axum::response::IntoResponse;
use serde_json::{json, Value};
use tokio::time::Instant;

use crate::api::{self, ApiError, AppState, GenerateRequest};
use crate::config::Config;
use crate::metrics::{RequestLabels, Route, RouteLabels, Source};
use crate::offline::OfflineStore;
use crate::pipeline::Opts;
use crate::providers::capabilities::Needs;

/// Why a tool call did not produce its result; every variant is an `isError` result with this message.
#[derive(Debug, Clone, PartialEq)]
pub enum ToolError {
    /// An argument is wrong (type, value, unknown field).
    Invalid(String),
    /// An admin tool without the admin token.
    Unauthorized(String),
    /// The tool ran and failed.
    Failed(String),
}

/// The gateway the tools act on.
#[derive(Debug)]
pub enum Backend {
    /// This process.
    Local(Arc<AppState>),
    /// A running gateway.
    Remote(Box<Remote>),
}

/// A running gateway reached over HTTP (`llm-gateway mcp --gateway-url`).
#[derive(Debug)]
pub struct Remote {
    base: String,
    client: reqwest::Client,
    api_key: Option<String>,
    admin_token: Option<String>,
    config: Config,
    offline: OfflineStore,
}

impl Remote {
    /// A gateway at `base` (`http://host:port`). `config` is the same file the gateway runs with: `llm_smoke`
    /// checks its providers directly (as `llm-gateway smoke` does) and `llm_offline_lookup` reads its packages.
    pub fn new(
        base: &str,
        config: Config,
        api_key: Option<String>,
        admin_token: Option<String>,
    ) -> Result<Remote, String> {
        let url = reqwest::Url::parse(base).map_err(|e| format!("--gateway-url {base:?}: {e}"))?;
        if !matches!(url.scheme(), "http" | "https") {
            return Err(format!("--gateway-url {base:?}: use http:// or https://"));
        }
        let client = reqwest::Client::builder()
            .timeout(config.policy.deadline + std::time::Duration::from_secs(5))
            .build()
            .map_err(|e| format!("HTTP client: {e}"))?;
        let offline = OfflineStore::load(&config.offline);
        Ok(Remote {
            base: base.trim_end_matches('/').to_string(),
            client,
            api_key,
            admin_token,
            config,
            offline,
        })
    }

    async fn call(
        &self,
        method: reqwest::Method,
        path: &str,
        body: Option<Value>,
        admin: bool,
        preferred: Option<&str>,
    ) -> Result<Value, ToolError> {
        let mut req = self.client.request(method, format!("{}{path}", self.base));
        let bearer = if admin { &self.admin_token } else { &self.api_key };
        if let Some(t) = bearer {
            req = req.bearer_auth(t);
        }
        if let Some(p) = preferred {
            req = req.header(crate::pipeline::headers::PROVIDER, p);
        }
        if let Some(b) = body {
            req = req.json(&b);
        }
        let resp = req.send().await.map_err(|e| {
            ToolError::Failed(format!(
                "cannot reach the gateway at {}: {}",
                self.base,
                e.without_url()
            ))
        })?;
        let status = resp.status().as_u16();
        let body: Value = resp.json().await.unwrap_or(Value::Null);
        if status < 300 {
            return Ok(body);
        }
        let msg = describe(status, &body);
        Err(match status {
            401 | 403 if admin => ToolError::Unauthorized(format!(
                "{msg}; set {} to the gateway's admin token",
                super::ADMIN_TOKEN_ENV
            )),
            401 => ToolError::Unauthorized(format!(
                "{msg}; set {} to a client key of the gateway",
                super::API_KEY_ENV
            )),
            400 if path == "/admin/mode" => ToolError::Invalid(msg),
            _ => ToolError::Failed(msg),
        })
    }
}

impl Remote {
    /// One stateless (2026-07-28) `tools/call` on the running gateway's `/mcp`, for what only it can answer.
    async fn mcp_tool(&self, name: &str, arguments: Value) -> Result<Value, ToolError> {
        let body = json!({"jsonrpc": "2.0", "id": 1, "method": "tools/call", "params": {
            "name": name,
            "arguments": arguments,
            "_meta": {
                "io.modelcontextprotocol/protocolVersion": "2026-07-28",
                "io.modelcontextprotocol/clientCapabilities": {},
                "io.modelcontextprotocol/clientInfo": {"name": "llm-gateway-mcp", "version": env!("CARGO_PKG_VERSION")},
            },
        }});
        let mut req = self
            .client
            .post(format!("{}/mcp", self.base))
            .header("accept", "application/json, text/event-stream")
            .header("mcp-protocol-version", "2026-07-28")
            .header("mcp-method", "tools/call")
            .header("mcp-name", name)
            .json(&body);
        if let Some(k) = &self.api_key {
            req = req.bearer_auth(k);
        }
        if let Some(t) = &self.admin_token {
            req = req.header(super::ADMIN_TOKEN_HEADER, t);
        }
        let resp = req.send().await.map_err(|e| {
            ToolError::Failed(format!(
                "cannot reach the gateway at {}: {}",
                self.base,
                e.without_url()
            ))
        })?;
        let status = resp.status().as_u16();
        let text = resp.text().await.unwrap_or_default();
        // A gateway without `/mcp` answers unknown paths 404, or 401 `admin_unauthorized` when it has an admin
        // token (its admin layer also guards the fallback route); a refused client key is `invalid_api_key`.
        let missing = status == 404 || (status == 401 && text.contains("admin_unauthorized"));
        match status {
            200 => {}
            _ if missing => {
                return Err(ToolError::Failed(format!(
                    "{name} needs the gateway's live router state, which it serves on /mcp: set mcp.enabled: true \
                     in the gateway's config (HTTP 404 from {}/mcp)",
                    self.base
                )))
            }
            401 => {
                return Err(ToolError::Unauthorized(format!(
                    "the gateway refused the client key (HTTP 401); set {} to a client key of the gateway",
                    super::API_KEY_ENV
                )))
            }
            s => return Err(ToolError::Failed(format!("the gateway's /mcp answered HTTP {s}"))),
        }
        let msg = serde_json::from_str::<Value>(&text).ok().or_else(|| {
            text.lines()
                .filter_map(|l| l.trim_end().strip_prefix("data:"))
                .filter_map(|d| serde_json::from_str::<Value>(d.trim()).ok())
                .find(|v| v.get("result").is_some() || v.get("error").is_some())
        });
        let Some(msg) = msg else {
            return Err(ToolError::Failed(
                "the gateway's /mcp sent no JSON-RPC answer".into(),
            ));
        };
        if let Some(e) = msg.get("error") {
            let m = e["message"].as_str().unwrap_or("JSON-RPC error");
            return Err(ToolError::Failed(format!("the gateway's /mcp: {m}")));
        }
        let r = &msg["result"];
        if r["isError"].as_bool() == Some(true) {
            let m = r
                .pointer("/content/0/text")
                .and_then(Value::as_str)
                .unwrap_or("tool error");
            return Err(ToolError::Failed(m.to_string()));
        }
        Ok(r["structuredContent"].clone())
    }
}

/// A gateway error body as one sentence a model can act on (never a secret: the bodies carry none).
pub(crate) fn describe(status: u16, body: &Value) -> String {
    let e = &body["error"];
    let message = e["message"].as_str().unwrap_or("the gateway returned an error");
    let mut out = format!("{message} (HTTP {status}");
    if let Some(code) = e["code"].as_str() {
        out.push_str(&format!(", code {code}"));
    }
    out.push(')');
    if let Some(attempts) = e["attempts"].as_array().filter(|a| !a.is_empty()) {
        let list: Vec<String> = attempts
            .iter()
            .map(|a| {
                let what = a["error"].as_str().unwrap_or("?");
                let provider = a["provider"].as_str().unwrap_or("?");
                match a["message"].as_str().filter(|m| !m.is_empty()) {
                    Some(m) => format!("{provider}: {what} ({m})"),
                    None => format!("{provider}: {what}"),
                }
            })
            .collect();
        out.push_str(&format!(". Attempts: {}", list.join("; ")));
    }
    if status == 429 || status >= 500 {
        out.push_str(
            ". Retry later, name another provider, or call llm_providers to see which providers are healthy",
        );
    }
    out
}

/// An `ApiError` through the one error -> HTTP mapping, then [`describe`].
async fn api_error(e: ApiError) -> (u16, String) {
    let resp = e.into_response();
    let status = resp.status().as_u16();
    let bytes = axum::body::to_bytes(resp.into_body(), 1 << 20)
        .await
        .unwrap_or_default();
    let body: Value = serde_json::from_slice(&bytes).unwrap_or(Value::Null);
    (status, describe(status, &body))
}

/// The arguments of `llm_generate`, checked.
#[derive(Debug, Clone)]
pub struct Generate {
    pub(crate) prompt: String,
    pub(crate) system: Option<String>,
    pub(crate) model: Option<String>,
    pub(crate) provider: Option<String>,
    pub(crate) max_tokens: Option<u32>,
    pub(crate) temperature: Option<f64>,
}

impl Backend {
    /// Whether an admin tool may run for a caller presenting `token` (remote: the gateway decides).
    pub fn admin_allowed(&self, token: Option<&str>) -> bool {
        match self {
            Backend::Local(s) => api::admin_allowed(s, token),
            Backend::Remote(_) => true,
        }
    }

    /// Counts an answer's tokens against the client key of an HTTP caller (`limits.clients` tokens/min), as the
    /// client-key layer does for `/v1/*` answers.
    pub async fn record_client_tokens(&self, id: crate::limits::ClientId, usage: &Value) {
        if let Backend::Local(s) = self {
            let n = |k: &str| usage[k].as_u64().unwrap_or(0);
            let total = n("total_tokens").max(n("prompt_tokens") + n("completion_tokens"));
            s.clients.record_tokens(id, total).await;
        }
    }

    /// The metrics of the gateway in this process.
    pub fn metrics(&self) -> Option<&crate::metrics::Metrics> {
        match self {
            Backend::Local(s) => Some(&s.metrics),
            Backend::Remote(_) => None,
        }
    }

    /// `llm_generate`: the assistants route's answer, through the whole pipeline.
    pub async fn generate(&self, g: Generate) -> Result<Value, ToolError> {
        let preferred = g
            .provider
            .map(|p| p.trim().to_ascii_lowercase())
            .filter(|p| !p.is_empty());
        match self {
            Backend::Local(state) => {
                let start = Instant::now();
                let req = GenerateRequest {
                    prompt: g.prompt,
                    model: g.model,
                    system: g.system,
                    max_tokens: g.max_tokens,
                    temperature: g.temperature,
                };
                let opts = Opts {
                    preferred,
                    ..Default::default()
                };
                let (status, source, out) = match api::generate(state, req, &opts).await {
                    Ok(answer) => (200, answer.meta().source, Ok(api::generate_result(&answer))),
                    Err(e) => {
                        let (status, msg) = api_error(e).await;
                        (status, Source::None, Err(ToolError::Failed(msg)))
                    }
                };
                let route = Route::Mcp;
                state
                    .metrics
                    .requests
                    .get_or_create(&RequestLabels {
                        route,
                        status,
                        source,
                    })
                    .inc();
                state
                    .metrics
                    .request_duration
                    .get_or_create(&RouteLabels { route })
                    .observe(start.elapsed().as_secs_f64());
                out
            }
            Backend::Remote(r) => {
                let mut body = json!({"prompt": g.prompt});
                for (k, v) in [
                    ("system", g.system.map(Value::from)),
                    ("model", g.model.map(Value::from)),
                    ("max_tokens", g.max_tokens.map(Value::from)),
                    ("temperature", g.temperature.map(Value::from)),
                ] {
                    if let Some(v) = v {
                        body[k] = v;
                    }
                }
                r.call(
                    reqwest::Method::POST,
                    "/api/assistants/generate",
                    Some(body),
                    false,
                    preferred.as_deref(),
                )
                .await
            }
        }
    }

    /// `llm_providers`: `GET /admin/providers`.
    pub async fn providers(&self) -> Result<Value, ToolError> {
        match self {
            Backend::Local(s) => Ok(api::providers_json(s).await),
            Backend::Remote(r) => {
                r.call(reqwest::Method::GET, "/admin/providers", None, true, None)
                    .await
            }
        }
    }

    /// `llm_mode`.
    pub async fn mode(&self) -> Result<Value, ToolError> {
        match self {
            Backend::Local(s) => Ok(json!({"mode": s.router.mode().as_str()})),
            Backend::Remote(r) => {
                r.call(reqwest::Method::GET, "/admin/mode", None, true, None)
                    .await
            }
        }
    }

    /// `llm_set_mode`: `POST /admin/mode`'s validation and effect.
    pub async fn set_mode(&self, mode: &str) -> Result<Value, ToolError> {
        match self {
            Backend::Local(s) => {
                let m = api::parse_mode(mode).map_err(|e| ToolError::Invalid(e.to_string()))?;
                let previous = s.router.mode();
                let shared = s.router.switch_mode(m).await;
                tracing::info!(
                    from = previous.as_str(),
                    to = m.as_str(),
                    via = "mcp",
                    ?shared,
                    "mode switched"
                );
                let mut body = json!({"mode": m.as_str(), "previous": previous.as_str()});
                if let Some(shared) = shared {
                    body["shared"] = json!(shared);
                }
                Ok(body)
            }
            Backend::Remote(r) => {
                r.call(
                    reqwest::Method::POST,
                    "/admin/mode",
                    Some(json!({"mode": mode})),
                    true,
                    None,
                )
                .await
            }
        }
    }

    /// `llm_smoke`: the report of `llm-gateway smoke`.
    pub async fn smoke(&self, provider: Option<&str>, full: bool) -> Result<Value, ToolError> {
        let cfg = match self {
            Backend::Local(s) => &s.config,
            Backend::Remote(r) => &r.config,
        };
        if let Some(p) = provider {
            if !cfg.providers.contains_key(p) {
                let known: Vec<&str> = cfg.providers.keys().map(String::as_str).collect();
                return Err(ToolError::Invalid(format!(
                    "unknown provider {p:?}; configured: {}",
                    known.join(", ")
                )));
            }
        }
        // Offline mode promises not one remote call: only a local provider may be smoke-tested then.
        if let Backend::Local(s) = self {
            if s.router.mode() == crate::config::Mode::Offline {
                let local: Vec<&str> = cfg
                    .providers
                    .values()
                    .filter(|p| p.kind.is_local())
                    .map(|p| p.name.as_str())
                    .collect();
                if !provider.is_some_and(|p| local.contains(&p)) {
                    return Err(ToolError::Invalid(format!(
                        "the gateway is in offline mode, where no remote provider is called: pass a local                          provider ({}) or switch the mode with llm_set_mode first",
                        if local.is_empty() { "none configured".to_string() } else { local.join(", ") }
                    )));
                }
            }
        }
        let report = crate::ops::smoke::run(cfg, provider, full)
            .await
            .map_err(ToolError::Failed)?;
        serde_json::to_value(&report).map_err(|e| ToolError::Failed(e.to_string()))
    }

    /// `llm_offline_lookup`: the best offline-package entry for `prompt`, whatever its score.
    pub fn offline_lookup(&self, prompt: &str) -> Value {
        let store = match self {
            Backend::Local(s) => &s.offline,
            Backend::Remote(r) => &r.offline,
        };
        let threshold = f64::from(store.threshold());
        match store.best(prompt) {
            Some(hit) => json!({
                "found": true,
                "clears_threshold": hit.score >= store.threshold(),
                "threshold": threshold,
                "score": f64::from(hit.score),
                "match": if hit.score >= 1.0 { "exact" } else { "similar" },
                "package": format!("{}@{}", hit.package.name, hit.package.version),
                "entry": hit.entry.id,
                "answer": hit.entry.answer,
            }),
            None => json!({
                "found": false,
                "clears_threshold": false,
                "threshold": threshold,
                "score": null, "match": null, "package": null, "entry": null, "answer": null,
            }),
        }
    }

    /// `llm_explain_route`: the plan for `model` in the current mode and, for each candidate, whether it would be
    /// tried or skipped now and why; no upstream call, no state change.
    /// With `--gateway-url` the running gateway's own `/mcp` answers (only it knows its live health).
    pub async fn explain_route(
        &self,
        model: Option<&str>,
        provider: Option<&str>,
    ) -> Result<Value, ToolError> {
        let state = match self {
            Backend::Local(state) => state,
            Backend::Remote(r) => {
                let mut args = serde_json::Map::new();
                if let Some(m) = model {
                    args.insert("model".into(), Value::from(m));
                }
                if let Some(p) = provider {
                    args.insert("provider".into(), Value::from(p));
                }
                return r.mcp_tool("llm_explain_route", Value::Object(args)).await;
            }
        };
        let mode = state.router.mode();
        let model = model
            .map(str::trim)
            .filter(|m| !m.is_empty())
            .unwrap_or("default");
        let preferred = provider
            .map(|p| p.trim().to_ascii_lowercase())
            .filter(|p| !p.is_empty());
        let plan = state
            .router
            .plan(model, mode, preferred.as_deref())
            .map_err(|e| {
                let models: Vec<&str> = state
                    .router
                    .planner()
                    .logical_models()
                    .map(String::as_str)
                    .collect();
                let providers = state.config.policy.order.join(", ");
                ToolError::Failed(format!(
                    "{}; logical models: {}; providers: {providers}; mode: {}",
                    e.to_string().replace(" in X-LLM-Provider", ""),
                    models.join(", "),
                    mode.as_str()
                ))
            })?;
        let now = Instant::now();
        let needs = Needs::default();
        let mut first: Option<String> = None;
        let mut skips = Vec::with_capacity(plan.len());
        for c in plan.iter() {
            skips.push(state.router.would_skip(c, &needs, now).await);
        }
        let candidates: Vec<Value> = plan
            .iter()
            .zip(skips)
            .enumerate()
            .map(|(i, (c, skip))| {
                let (decision, outcome, reason) = match &skip {
                    Some(s) => ("skip", Some(s.outcome.as_str()), s.message.clone()),
                    None => {
                        let why = match &first {
                            None => {
                                first = Some(c.provider.clone());
                                "tried first: healthy, within budget, reachable".to_string()
                            }
                            Some(f) => format!("tried only if {f} (and any before it) fails"),
                        };
                        ("try", None, why)
                    }
                };
                json!({
                    "position": i + 1,
                    "provider": c.provider,
                    "model": c.model,
                    "local": c.local,
                    "decision": decision,
                    "skip_outcome": outcome,
                    "reason": reason,
                })
            })
            .collect();
        let offline = mode != crate::config::Mode::Remote && !state.offline.is_empty();
        Ok(json!({
            "model": model,
            "mode": mode.as_str(),
            "preferred": preferred,
            "would_serve": first,
            "candidates": candidates,
            "then_stale_cache": state.config.cache.serve_stale_on_error,
            "then_offline_packages": offline,
        }))
    }
}
