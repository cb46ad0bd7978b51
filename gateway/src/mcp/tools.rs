//! The tools: names, descriptions written for a model, input and output schemas, annotations, and the dispatch
//! from `tools/call` to the [`Backend`].

use std::sync::Arc;

use rmcp::model::{
    CallToolRequestParams, CallToolResponse, CallToolResult, ContentBlock, Implementation, ListToolsResult,
    PaginatedRequestParams, ServerCapabilities, ServerConfig, Tool, ToolAnnotations,
};
use rmcp::service::RequestContext;
use rmcp::{ErrorData, RoleServer, ServerHandler};
use schemars::generate::SchemaSettings;
use schemars::JsonSchema;
use serde::de::DeserializeOwned;
use serde::{Deserialize, Serialize};
use serde_json::Value;

use super::backend::{Backend, Generate, ToolError};
use crate::metrics::{McpLabels, McpOutcome, McpTool};

/// Generate text through the gateway.
#[derive(Debug, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub(crate) struct GenerateArgs {
    /// The user message to answer (non-empty).
    #[schemars(length(min = 1))]
    prompt: String,
    /// An optional system message put before the prompt.
    #[serde(default)]
    system: Option<String>,
    /// A logical model of the gateway (default "default"), or a provider's own model name.
    #[serde(default)]
    model: Option<String>,
    /// Try this provider first (e.g. "kimi"); the others still follow if it fails.
    #[serde(default)]
    provider: Option<String>,
    /// Upper bound on generated tokens (at least 1).
    #[serde(default)]
    #[schemars(range(min = 1))]
    max_tokens: Option<u32>,
    /// Sampling temperature, 0 to 2.
    #[serde(default)]
    #[schemars(range(min = 0.0, max = 2.0))]
    temperature: Option<f64>,
}

/// No arguments.
#[derive(Debug, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub(crate) struct NoArgs {}

/// Which route to explain.
#[derive(Debug, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub(crate) struct ExplainArgs {
    /// The model a request would name (default "default").
    #[serde(default)]
    model: Option<String>,
    /// The provider a request would put first.
    #[serde(default)]
    provider: Option<String>,
}

/// The prompt to look up.
#[derive(Debug, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub(crate) struct LookupArgs {
    /// The prompt to match against the offline packages (non-empty).
    #[schemars(length(min = 1))]
    prompt: String,
}

/// Which providers to smoke-test.
#[derive(Debug, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub(crate) struct SmokeArgs {
    /// Only this provider (default: every provider of the fallback order).
    #[serde(default)]
    provider: Option<String>,
    /// Also check embeddings.
    #[serde(default)]
    full: Option<bool>,
}

/// The mode to switch to.
#[derive(Debug, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub(crate) struct SetModeArgs {
    /// "auto" (providers, then local, then offline answers), "remote" (remote providers only), "offline" (none).
    #[schemars(extend("enum" = ["auto", "remote", "offline"]))]
    mode: String,
}

/// The answer and who gave it.
#[derive(Debug, Serialize, JsonSchema)]
pub(crate) struct GenerateOut {
    /// The answer text.
    text: String,
    /// Who answered: a provider name, "cache" or "offline-package".
    provider: String,
    /// The model that answered.
    model: String,
    /// "provider", "local", "cache" or "offline-package".
    source: String,
    /// Providers passed over (failed or skipped) before the one that answered.
    fallbacks: u32,
    /// Token usage, when known.
    usage: Option<Value>,
}

/// One provider's health.
#[derive(Debug, Serialize, JsonSchema)]
pub(crate) struct ProviderOut {
    /// Provider name.
    name: String,
    /// In the fallback order.
    in_order: bool,
    /// "closed", "open" or "half_open".
    breaker: String,
    /// Remaining cooldown in milliseconds.
    cooldown_remaining_ms: Option<u64>,
    /// The error class that started the cooldown.
    cooldown_reason: Option<String>,
    /// The class of the last error (connect, timeout, rate_limited, quota_exhausted, auth, ...).
    last_error_class: Option<String>,
    /// The last error.
    last_error: Option<Value>,
    /// Last connectivity probe.
    reachable: bool,
    /// Budgets: used and limit per window.
    budgets: Vec<Value>,
    /// A secret is configured (never the secret).
    secret_present: bool,
}

/// Every provider.
#[derive(Debug, Serialize, JsonSchema)]
pub(crate) struct ProvidersOut {
    /// Current mode.
    mode: String,
    /// Connectivity probes say the network is degraded.
    degraded: bool,
    /// Providers.
    providers: Vec<ProviderOut>,
}

/// One candidate of a route.
#[derive(Debug, Serialize, JsonSchema)]
pub(crate) struct StepOut {
    /// 1-based order.
    position: u32,
    /// Provider.
    provider: String,
    /// The provider's model.
    model: String,
    /// Local tier.
    local: bool,
    /// "try" or "skip".
    decision: String,
    /// For skips: skipped_breaker_open, skipped_cooldown, skipped_budget, skipped_unreachable, ...
    skip_outcome: Option<String>,
    /// Why.
    reason: String,
}

/// A route.
#[derive(Debug, Serialize, JsonSchema)]
pub(crate) struct ExplainOut {
    /// The model.
    model: String,
    /// Current mode.
    mode: String,
    /// The provider put first.
    preferred: Option<String>,
    /// The provider that would be called first, if any.
    would_serve: Option<String>,
    /// Candidates in order.
    candidates: Vec<StepOut>,
    /// A stale cached answer is served when every candidate fails.
    then_stale_cache: bool,
    /// Offline packages answer when every candidate fails.
    then_offline_packages: bool,
}

/// The best offline entry.
#[derive(Debug, Serialize, JsonSchema)]
pub(crate) struct LookupOut {
    /// Some entry shares words with the prompt.
    found: bool,
    /// Its score reaches `offline.match_threshold`: the gateway would serve it offline.
    clears_threshold: bool,
    /// `offline.match_threshold`.
    threshold: f64,
    /// Similarity, 1.0 for an exact match.
    score: Option<f64>,
    /// "exact" or "similar".
    #[serde(rename = "match")]
    kind: Option<String>,
    /// `name@version`.
    package: Option<String>,
    /// Entry id.
    entry: Option<String>,
    /// The entry's answer.
    answer: Option<String>,
}

/// The smoke report.
#[derive(Debug, Serialize, JsonSchema)]
pub(crate) struct SmokeOut {
    /// Every check (provider, check, ok, ms, detail, hint).
    checks: Vec<Value>,
    /// Failed checks.
    failed: u64,
}

/// The mode.
#[derive(Debug, Serialize, JsonSchema)]
pub(crate) struct ModeOut {
    /// "auto", "remote" or "offline".
    mode: String,
}

/// A mode switch.
#[derive(Debug, Serialize, JsonSchema)]
pub(crate) struct SetModeOut {
    /// The mode now.
    mode: String,
    /// The mode before.
    previous: String,
}

/// A tool's input schema: what the arguments' type accepts.
fn input_schema<T: JsonSchema>() -> Arc<rmcp::model::JsonObject> {
    // An optional argument is simply not required (no `"type": [T, "null"]`, no `"default": null`): the plain
    // shape function-calling models handle best; `null` is still accepted as "absent".
    let mut object = schema::<T>(SchemaSettings::draft2020_12()).as_ref().clone();
    let required: Vec<Value> = object
        .get("required")
        .and_then(Value::as_array)
        .cloned()
        .unwrap_or_default();
    if let Some(Value::Object(props)) = object.get_mut("properties") {
        for (name, p) in props.iter_mut() {
            if required.contains(&Value::from(name.as_str())) {
                continue;
            }
            if let Some(Value::Array(types)) = p.get("type") {
                let non_null: Vec<Value> = types.iter().filter(|t| *t != "null").cloned().collect();
                if let [only] = non_null.as_slice() {
                    p["type"] = only.clone();
                }
            }
        }
    }
    Arc::new(object)
}

/// A tool's output schema: what the result's type serialises to.
fn output_schema<T: JsonSchema>() -> Arc<rmcp::model::JsonObject> {
    schema::<T>(SchemaSettings::draft2020_12().for_serialize())
}

/// JSON Schema 2020-12 (MCP's default dialect) without a `$schema` stamp and with every subschema inlined (no
/// `$defs`/`$ref`), the top-level title and description dropped (the tool has its own): a plain object schema
/// that validators of either dialect accept (draft-07-only ones reject a 2020-12 stamp, 2020-12-only ones a
/// draft-07 one).
fn schema<T: JsonSchema>(mut settings: SchemaSettings) -> Arc<rmcp::model::JsonObject> {
    settings.meta_schema = None;
    settings.inline_subschemas = true;
    let root = settings.into_generator().into_root_schema_for::<T>();
    let mut object = match serde_json::to_value(root) {
        Ok(Value::Object(o)) => o,
        _ => rmcp::model::JsonObject::new(),
    };
    for key in ["$schema", "title", "description"] {
        object.remove(key);
    }
    object.entry("type").or_insert_with(|| Value::from("object"));
    let mut v = Value::Object(object);
    drop_custom_formats(&mut v);
    match v {
        Value::Object(o) => Arc::new(o),
        _ => Arc::new(rmcp::model::JsonObject::new()),
    }
}

/// Removes schemars' Rust-specific `format`s (`uint32`, `uint64`, `double`...): strict validators refuse
/// unknown formats, and `minimum`/`type` already say what they mean.
fn drop_custom_formats(v: &mut Value) {
    match v {
        Value::Object(o) => {
            let custom = o
                .get("format")
                .and_then(Value::as_str)
                .is_some_and(|f| !matches!(f, "date-time" | "date" | "time" | "email" | "uri" | "uuid"));
            if custom {
                o.remove("format");
            }
            if o.get("default") == Some(&Value::Null) {
                o.remove("default");
            }
            o.values_mut().for_each(drop_custom_formats);
        }
        Value::Array(a) => a.iter_mut().for_each(drop_custom_formats),
        _ => {}
    }
}

struct Spec {
    tool: McpTool,
    title: &'static str,
    description: &'static str,
    admin: bool,
    annotations: ToolAnnotations,
    input: Arc<rmcp::model::JsonObject>,
    output: Arc<rmcp::model::JsonObject>,
}

fn specs() -> Vec<Spec> {
    let ro = || {
        ToolAnnotations::new()
            .read_only(true)
            .idempotent(true)
            .open_world(false)
    };
    vec![
        Spec {
            tool: McpTool::Generate,
            title: "Generate text",
            description: "Answer a prompt through the LLM gateway: remote providers in fallback order, then the local \
                model, then cached and offline answers. The result says which provider answered, from which source, \
                and how many providers were passed over (fallbacks). Use `provider` to try one provider first. \
                Fails (isError) only when nothing could answer; the message lists each provider's failure.",
            admin: false,
            annotations: ToolAnnotations::new().read_only(false).destructive(false).idempotent(false).open_world(true),
            input: input_schema::<GenerateArgs>(),
            output: output_schema::<GenerateOut>(),
        },
        Spec {
            tool: McpTool::Providers,
            title: "Provider health",
            description: "Show each provider's health as the gateway sees it now: breaker state (closed/open/half_open), \
                cooldown and what caused it, budgets used, connectivity, and the class of the last error. No \
                provider is called. Needs the admin token when the gateway has one.",
            admin: true,
            annotations: ro(),
            input: input_schema::<NoArgs>(),
            output: output_schema::<ProvidersOut>(),
        },
        Spec {
            tool: McpTool::ExplainRoute,
            title: "Explain a route",
            description: "Explain where a request for `model` would go right now: the ordered candidate providers, and \
                for each whether it would be tried or skipped and why (breaker open, cooling down after a quota or \
                rate limit, budget used up, unreachable). Calls no provider and changes nothing.",
            admin: false,
            annotations: ro(),
            input: input_schema::<ExplainArgs>(),
            output: output_schema::<ExplainOut>(),
        },
        Spec {
            tool: McpTool::OfflineLookup,
            title: "Offline lookup",
            description: "Find the offline-package entry that best matches a prompt, with its similarity score and \
                whether it clears the gateway's match threshold (i.e. whether the gateway would serve it with no \
                provider available). Calls no provider.",
            admin: false,
            annotations: ro(),
            input: input_schema::<LookupArgs>(),
            output: output_schema::<LookupOut>(),
        },
        Spec {
            tool: McpTool::Smoke,
            title: "Smoke-test providers",
            description: "Check providers directly, bypassing fallback: credentials, one chat, one stream (embeddings \
                with full=true), with a hint for every failure, as `llm-gateway smoke` does. Makes real (small) \
                upstream calls. Needs the admin token when the gateway has one.",
            admin: true,
            annotations: ToolAnnotations::new().read_only(true).idempotent(false).open_world(true),
            input: input_schema::<SmokeArgs>(),
            output: output_schema::<SmokeOut>(),
        },
        Spec {
            tool: McpTool::Mode,
            title: "Current mode",
            description: "Show the gateway's mode: auto, remote or offline. Needs the admin token when the gateway has one.",
            admin: true,
            annotations: ro(),
            input: input_schema::<NoArgs>(),
            output: output_schema::<ModeOut>(),
        },
        Spec {
            tool: McpTool::SetMode,
            title: "Switch mode",
            description: "Switch the gateway's mode for every client: auto (remote providers, then local, then offline), \
                remote (remote providers only) or offline (no remote call at all). Affects all traffic at once. \
                Needs the admin token when the gateway has one.",
            admin: true,
            annotations: ToolAnnotations::new().read_only(false).destructive(true).idempotent(true).open_world(false),
            input: input_schema::<SetModeArgs>(),
            output: output_schema::<SetModeOut>(),
        },
    ]
}

/// The `LLMProviderTool` MCP server over a [`Backend`].
#[derive(Clone)]
pub struct LlmProviderTool {
    backend: Arc<Backend>,
    specs: Arc<Vec<Spec>>,
    /// The admin token of a stdio caller (`LLM_MCP_ADMIN_TOKEN`); HTTP callers send theirs per request.
    stdio_admin_token: Option<String>,
}

impl std::fmt::Debug for LlmProviderTool {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("LlmProviderTool").finish_non_exhaustive()
    }
}

impl LlmProviderTool {
    /// A server over `backend`; `stdio_admin_token` is what a stdio caller presents as the admin token.
    pub fn new(backend: Arc<Backend>, stdio_admin_token: Option<String>) -> LlmProviderTool {
        LlmProviderTool {
            backend,
            specs: Arc::new(specs()),
            stdio_admin_token,
        }
    }

    /// Every tool as `tools/list` shows it.
    pub fn tools(&self) -> Vec<Tool> {
        self.specs
            .iter()
            .map(|s| {
                Tool::new(s.tool.as_str(), s.description, s.input.clone())
                    .with_title(s.title)
                    .with_raw_output_schema(s.output.clone())
                    .with_annotations(s.annotations.clone())
            })
            .collect()
    }

    /// Runs one tool call for a caller presenting `admin_token`; the result is what `tools/call` answers.
    pub async fn run(
        &self,
        name: &str,
        args: Option<rmcp::model::JsonObject>,
        admin_token: Option<&str>,
    ) -> Option<CallToolResult> {
        self.run_for(name, args, admin_token, false).await
    }

    /// [`Self::run`] for a caller that may be a remote peer: without `server.admin_token`, admin tools answer
    /// loopback peers only, as `/admin/*` does.
    pub async fn run_for(
        &self,
        name: &str,
        args: Option<rmcp::model::JsonObject>,
        admin_token: Option<&str>,
        remote_peer: bool,
    ) -> Option<CallToolResult> {
        let spec = self.specs.iter().find(|s| s.tool.as_str() == name)?;
        let args = Value::Object(args.unwrap_or_default());
        let result = if spec.admin && remote_peer && self.backend.admin_allowed(None) {
            Err(ToolError::Unauthorized(format!(
                "{name} is an admin tool: without server.admin_token it answers loopback peers only;                  configure an admin token and send it as the {} header",
                super::ADMIN_TOKEN_HEADER
            )))
        } else if spec.admin && !self.backend.admin_allowed(admin_token) {
            Err(ToolError::Unauthorized(format!(
                "{name} is an admin tool and the gateway has an admin token: send it as the {} header \
                 (HTTP) or set {} (stdio)",
                super::ADMIN_TOKEN_HEADER,
                super::ADMIN_TOKEN_ENV
            )))
        } else {
            self.dispatch(spec.tool, args).await
        };
        let outcome = match &result {
            Ok(_) => McpOutcome::Ok,
            Err(ToolError::Invalid(_)) => McpOutcome::InvalidArguments,
            Err(ToolError::Unauthorized(_)) => McpOutcome::Unauthorized,
            Err(ToolError::Failed(_)) => McpOutcome::Failed,
        };
        if let Some(m) = self.backend.metrics() {
            m.mcp_tool_calls
                .get_or_create(&McpLabels {
                    tool: spec.tool,
                    outcome,
                })
                .inc();
        }
        tracing::info!(tool = name, outcome = outcome.as_str(), "mcp tool call");
        Some(match result {
            Ok(v) => CallToolResult::structured(v),
            Err(ToolError::Invalid(m) | ToolError::Unauthorized(m) | ToolError::Failed(m)) => {
                CallToolResult::error(vec![ContentBlock::text(m)])
            }
        })
    }

    async fn dispatch(&self, tool: McpTool, args: Value) -> Result<Value, ToolError> {
        let b = &self.backend;
        match tool {
            McpTool::Generate => {
                let a: GenerateArgs = parse(args)?;
                if a.prompt.trim().is_empty() {
                    return Err(ToolError::Invalid("'prompt' must be a non-empty string".into()));
                }
                if a.max_tokens == Some(0) {
                    return Err(ToolError::Invalid("'max_tokens' must be at least 1".into()));
                }
                if a.temperature.is_some_and(|t| !(0.0..=2.0).contains(&t)) {
                    return Err(ToolError::Invalid("'temperature' must be between 0 and 2".into()));
                }
                let v = b
                    .generate(Generate {
                        prompt: a.prompt,
                        system: a.system,
                        model: a.model,
                        provider: a.provider,
                        max_tokens: a.max_tokens,
                        temperature: a.temperature,
                    })
                    .await?;
                Ok(serde_json::json!({
                    "text": v["text"].as_str().unwrap_or_default(),
                    "provider": v["provider"].as_str().unwrap_or_default(),
                    "model": v["model"].as_str().unwrap_or_default(),
                    "source": v["source"].as_str().unwrap_or_default(),
                    "fallbacks": v["fallbacks"].as_u64().unwrap_or(0),
                    "usage": v["usage"],
                }))
            }
            McpTool::Providers => {
                let NoArgs {} = parse(args)?;
                let mut v = b.providers().await?;
                if let Some(list) = v["providers"].as_array_mut() {
                    for p in list {
                        p["last_error_class"] = p["last_error"]["error"].clone();
                    }
                }
                Ok(v)
            }
            McpTool::ExplainRoute => {
                let a: ExplainArgs = parse(args)?;
                b.explain_route(a.model.as_deref(), a.provider.as_deref()).await
            }
            McpTool::OfflineLookup => {
                let a: LookupArgs = parse(args)?;
                if a.prompt.trim().is_empty() {
                    return Err(ToolError::Invalid("'prompt' must be a non-empty string".into()));
                }
                Ok(b.offline_lookup(&a.prompt))
            }
            McpTool::Smoke => {
                let a: SmokeArgs = parse(args)?;
                b.smoke(a.provider.as_deref(), a.full.unwrap_or(false)).await
            }
            McpTool::Mode => {
                let NoArgs {} = parse(args)?;
                b.mode().await
            }
            McpTool::SetMode => {
                let a: SetModeArgs = parse(args)?;
                b.set_mode(&a.mode).await
            }
        }
    }
}

/// Arguments into `T`; a wrong one is an `isError` result naming the field.
fn parse<T: DeserializeOwned>(args: Value) -> Result<T, ToolError> {
    serde_path_to_error::deserialize(args).map_err(|e| {
        let path = e.path().to_string();
        if path == "." {
            ToolError::Invalid(format!("invalid arguments: {}", e.inner()))
        } else {
            ToolError::Invalid(format!("invalid argument '{path}': {}", e.inner()))
        }
    })
}

impl ServerHandler for LlmProviderTool {
    fn get_info(&self) -> ServerConfig {
        ServerConfig::new(ServerCapabilities::builder().enable_tools().build())
            .with_server_info(Implementation::new("LLMProviderTool", env!("CARGO_PKG_VERSION")))
            .with_instructions(
                "Tools of the LLM gateway: llm_generate answers a prompt with provider fallback and says who answered; \
                 llm_providers, llm_explain_route and llm_offline_lookup show health, routing and the offline tier \
                 without calling providers; llm_smoke checks providers directly; llm_mode and llm_set_mode read and \
                 switch the mode.",
            )
    }

    async fn list_tools(
        &self,
        _request: Option<PaginatedRequestParams>,
        _context: RequestContext<RoleServer>,
    ) -> Result<ListToolsResult, ErrorData> {
        Ok(ListToolsResult::with_all_items(self.tools()))
    }

    fn get_tool(&self, name: &str) -> Option<Tool> {
        self.tools().into_iter().find(|t| t.name == name)
    }

    async fn call_tool(
        &self,
        request: CallToolRequestParams,
        context: RequestContext<RoleServer>,
    ) -> Result<CallToolResponse, ErrorData> {
        let (token, client, remote) = match context.extensions.get::<http::request::Parts>() {
            Some(parts) => (
                header_token(&parts.headers),
                parts.extensions.get::<crate::limits::ClientId>().copied(),
                parts
                    .extensions
                    .get::<axum::extract::ConnectInfo<std::net::SocketAddr>>()
                    .is_some_and(|c| !crate::api::is_loopback(c.0.ip())),
            ),
            None => (self.stdio_admin_token.clone(), None, false),
        };
        match self
            .run_for(&request.name, request.arguments, token.as_deref(), remote)
            .await
        {
            Some(r) => {
                if let (Some(id), Some(out)) = (client, &r.structured_content) {
                    if r.is_error != Some(true) && request.name == McpTool::Generate.as_str() {
                        self.backend.record_client_tokens(id, &out["usage"]).await;
                    }
                }
                Ok(r.into())
            }
            None => Err(ErrorData::invalid_params(
                format!("unknown tool {:?}; call tools/list", request.name),
                None,
            )),
        }
    }
}

/// The admin token an HTTP caller presents: `X-LLM-Admin-Token`, else `Authorization: Bearer`.
pub(crate) fn header_token(h: &http::HeaderMap) -> Option<String> {
    h.get(super::ADMIN_TOKEN_HEADER)
        .and_then(|v| v.to_str().ok())
        .or_else(|| {
            h.get(http::header::AUTHORIZATION)
                .and_then(|v| v.to_str().ok())
                .and_then(|v| v.strip_prefix("Bearer "))
        })
        .map(|s| s.trim().to_string())
}
