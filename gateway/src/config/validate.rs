//! Phase two of config loading: turn raw structs into runtime types, collecting every problem with its YAML path.

use std::collections::{BTreeMap, BTreeSet};
use std::net::SocketAddr;
use std::path::PathBuf;
use std::time::Duration;

use super::raw::{RawConfig, RawModelRef, RawProvider, RawVision};
use super::{
    secrets, CapsOverride, Config, EnvLookup, GigaChatAuth, Mode, Policy, Problem, ProviderConfig,
    ProviderKind, QwenApi, ServerConfig,
};

const GIGACHAT_SCOPES: [&str; 3] = ["GIGACHAT_API_PERS", "GIGACHAT_API_B2B", "GIGACHAT_API_CORP"];

/// Collects problems while converting.
pub(super) struct Problems(pub(super) Vec<Problem>);

impl Problems {
    pub(super) fn push(&mut self, path: impl Into<String>, message: impl Into<String>) {
        self.0.push(Problem {
            path: path.into(),
            message: message.into(),
        });
    }

    /// Parses an optional humantime duration, falling back to `default`; zero is a problem.
    pub(super) fn duration(&mut self, path: &str, value: Option<&String>, default: Duration) -> Duration {
        let Some(text) = value else { return default };
        match humantime::parse_duration(text.trim()) {
            Ok(d) if d.is_zero() => {
                self.push(path, "must be greater than zero");
                default
            }
            Ok(d) => d,
            Err(e) => {
                self.push(
                    path,
                    format!("invalid duration {text:?}: {e} (use e.g. \"500ms\", \"2s\", \"10m\")"),
                );
                default
            }
        }
    }

    fn addr(&mut self, path: &str, value: &str) -> Option<SocketAddr> {
        match value.parse() {
            Ok(a) => Some(a),
            Err(_) => {
                self.push(
                    path,
                    format!("invalid socket address {value:?} (expected host:port, e.g. 127.0.0.1:6001)"),
                );
                None
            }
        }
    }
}

pub(crate) fn validate(raw: RawConfig, env: EnvLookup<'_>) -> Result<Config, Vec<Problem>> {
    let mut p = Problems(Vec::new());

    let listen = p.addr(
        "server.listen",
        raw.server.listen.as_deref().unwrap_or("127.0.0.1:6001"),
    );
    let metrics_listen = raw
        .server
        .metrics_listen
        .as_deref()
        .and_then(|a| p.addr("server.metrics_listen", a));
    let body_limit = raw.server.body_limit_bytes.unwrap_or(super::DEFAULT_BODY_LIMIT);
    if body_limit == 0 {
        p.push("server.body_limit_bytes", "must be greater than zero");
    }
    let shutdown_grace = p.duration(
        "server.shutdown_grace",
        raw.server.shutdown_grace.as_ref(),
        Duration::from_secs(10),
    );

    let admin_token = raw.server.admin_token.as_ref().and_then(|s| {
        let file = s.file.as_ref().map(PathBuf::from);
        let (_, value, problem) = secrets::resolve(s.env.clone(), file, s.value.clone(), env);
        if let Some(msg) = problem {
            p.push("server.admin_token", msg);
        } else if let Some(v) = value.as_ref().filter(|v| v.expose().chars().count() < 16) {
            let _ = v;
            p.push(
                "server.admin_token",
                "must be at least 16 characters (e.g. `openssl rand -hex 16`)",
            );
        } else if value.as_ref().is_some_and(|v| {
            v.expose()
                .bytes()
                .any(|b| b.is_ascii_whitespace() || b.is_ascii_control())
        }) {
            p.push(
                "server.admin_token",
                "must not contain spaces or control characters",
            );
        } else if value.is_none() {
            // Fail closed at start-up rather than run with admin routes nobody can (or everybody could) use.
            p.push(
                "server.admin_token",
                "configured but no value found (set its env var, file or value)",
            );
        }
        value
    });

    let server_duration = |p: &mut Problems, key: &str, v: &Option<String>, d: u64| {
        p.duration(&format!("server.{key}"), v.as_ref(), Duration::from_secs(d))
    };
    let header_read_timeout =
        server_duration(&mut p, "header_read_timeout", &raw.server.header_read_timeout, 10);
    let idle_timeout = server_duration(&mut p, "idle_timeout", &raw.server.idle_timeout, 60);
    let body_read_timeout = server_duration(&mut p, "body_read_timeout", &raw.server.body_read_timeout, 60);
    let max_connections = raw.server.max_connections.unwrap_or(1024);
    if !(1..=1_000_000).contains(&max_connections) {
        p.push("server.max_connections", "must be between 1 and 1000000");
    }
    let max_header_bytes = raw.server.max_header_bytes.unwrap_or(16 * 1024);
    if !(4096..=1024 * 1024).contains(&max_header_bytes) {
        p.push("server.max_header_bytes", "must be between 4096 and 1048576");
    }

    let mode = mode(&mut p, raw.mode.as_deref(), env);
    let policy = super::policy::policy(&mut p, &raw.fallback_policy);

    let mut providers = BTreeMap::new();
    if raw.providers.is_empty() {
        p.push("providers", "at least one provider must be defined");
    }
    for (name, rp) in &raw.providers {
        if let Some(pc) = provider(&mut p, name, rp, &policy, env) {
            providers.insert(name.clone(), pc);
        }
    }
    check_order(&mut p, &policy.order, &raw.providers);
    let (models, model_caps) = check_models(&mut p, &raw.models, &raw.providers);
    let aliases = super::aliases::aliases(&mut p, &raw.aliases, &models);
    let offline = super::tiers::offline(&mut p, &raw.offline);
    let cache = super::tiers::cache(&mut p, &raw.cache);
    let clients = super::tiers::clients(&mut p, &raw.limits, env);
    let connectivity = super::tiers::connectivity(&mut p, raw.connectivity.as_ref());
    let state = super::state::state(&mut p, &raw.state);
    if cache.backend == super::CacheBackend::Redis && state.backend != super::StateBackendKind::Redis {
        p.push(
            "cache.backend",
            "redis needs state.backend: redis (the shared tier lives on the state.redis server)",
        );
    }
    let mcp = mcp(&mut p, &raw.mcp);
    let telemetry = super::telemetry::otlp(&mut p, raw.telemetry.as_ref(), env);
    let hosted_tools = match raw.responses.hosted_tools.as_deref() {
        None | Some("drop") => super::HostedTools::Drop,
        Some("reject") => super::HostedTools::Reject,
        Some(v) => {
            p.push(
                "responses.hosted_tools",
                format!("unknown value {v:?}; expected drop or reject"),
            );
            super::HostedTools::Drop
        }
    };

    if p.0.is_empty() {
        if let Some(listen) = listen {
            let server = ServerConfig {
                listen,
                metrics_listen,
                body_limit_bytes: body_limit as usize,
                shutdown_grace,
                admin_token,
                header_read_timeout,
                idle_timeout,
                body_read_timeout,
                max_connections: max_connections as usize,
                max_header_bytes: max_header_bytes as usize,
            };
            return Ok(Config {
                server,
                mode,
                models,
                aliases,
                model_caps,
                providers,
                policy,
                offline,
                cache,
                clients,
                connectivity,
                state,
                mcp,
                telemetry,
                responses: super::ResponsesConfig { hosted_tools },
            });
        }
    }
    Err(p.0)
}

fn mcp(p: &mut Problems, raw: &super::raw::RawMcp) -> super::McpConfig {
    let mut out = super::McpConfig {
        enabled: raw.enabled.unwrap_or(false),
        ..Default::default()
    };
    if let Some(hosts) = &raw.allowed_hosts {
        if hosts.is_empty() {
            p.push(
                "mcp.allowed_hosts",
                "must list at least one host (an empty list would accept any Host header)",
            );
        }
        for (i, h) in hosts.iter().enumerate() {
            let bare = h.trim().trim_start_matches('[').trim_end_matches(']');
            let ok = !h.trim().is_empty()
                && (axum::http::uri::Authority::try_from(h.trim()).is_ok()
                    || bare.parse::<std::net::Ipv6Addr>().is_ok());
            if !ok || h.contains(['/', '*']) {
                p.push(
                    format!("mcp.allowed_hosts[{i}]"),
                    format!("{h:?} is not a host or host:port"),
                );
            }
        }
        out.allowed_hosts = hosts.iter().map(|h| h.trim().to_string()).collect();
    }
    if let Some(origins) = &raw.allowed_origins {
        for (i, o) in origins.iter().enumerate() {
            let ok = reqwest::Url::parse(o).is_ok_and(|u| {
                matches!(u.scheme(), "http" | "https")
                    && u.host_str().is_some()
                    && u.path() == "/"
                    && !o.ends_with('/')
            });
            if !ok {
                p.push(
                    format!("mcp.allowed_origins[{i}]"),
                    format!("{o:?} is not an origin (scheme://host[:port], no path)"),
                );
            }
        }
        out.allowed_origins = Some(origins.clone());
    }
    out
}

fn mode(p: &mut Problems, configured: Option<&str>, env: EnvLookup<'_>) -> Mode {
    if let Some(v) = env("LLM_GATEWAY_MODE").filter(|v| !v.trim().is_empty()) {
        return Mode::parse(&v).unwrap_or_else(|| {
            p.push(
                "LLM_GATEWAY_MODE (env)",
                format!("unknown mode {v:?}; expected auto, remote or offline"),
            );
            Mode::Auto
        });
    }
    match configured {
        None => Mode::Auto,
        Some(v) => Mode::parse(v).unwrap_or_else(|| {
            p.push(
                "mode",
                format!("unknown mode {v:?}; expected auto, remote or offline"),
            );
            Mode::Auto
        }),
    }
}

fn valid_name(name: &str) -> bool {
    !name.is_empty()
        && name.len() <= 40
        && name
            .chars()
            .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '-' || c == '_')
}

fn provider(
    p: &mut Problems,
    name: &str,
    raw: &RawProvider,
    policy: &Policy,
    env: EnvLookup<'_>,
) -> Option<ProviderConfig> {
    let path = format!("providers.{name}");
    if !valid_name(name) {
        p.push(
            &path,
            "provider names use a-z, 0-9, '-' and '_' only (at most 40 characters)",
        );
    }
    let kind = ProviderKind::parse(&raw.kind);
    if kind.is_none() {
        p.push(
            format!("{path}.kind"),
            format!(
                "unknown kind {:?}; expected openai, kimi, qwen, gigachat or ollama",
                raw.kind
            ),
        );
    }
    let base_url = raw.base_url.trim().trim_end_matches('/').to_string();
    match reqwest::Url::parse(&base_url) {
        // Endpoint paths are appended to the base: a query or fragment would end up in the middle of the URL.
        Ok(u) if u.query().is_some() || u.fragment().is_some() || base_url.contains(['?', '#']) => p.push(
            format!("{path}.base_url"),
            format!(
                "{:?} has a query string or fragment; endpoint paths are appended to base_url, so give the path only",
                raw.base_url
            ),
        ),
        Ok(u) if matches!(u.scheme(), "http" | "https") => {}
        _ => p.push(
            format!("{path}.base_url"),
            format!("not an http(s) URL: {:?}", raw.base_url),
        ),
    }
    let connect_timeout = p.duration(
        &format!("{path}.connect_timeout"),
        raw.connect_timeout.as_ref(),
        policy.connect_timeout,
    );
    let attempt_timeout = p.duration(
        &format!("{path}.attempt_timeout"),
        raw.attempt_timeout.as_ref(),
        policy.attempt_timeout,
    );
    if attempt_timeout > policy.deadline {
        p.push(
            format!("{path}.attempt_timeout"),
            format!("{attempt_timeout:?} is above the deadline {:?}", policy.deadline),
        );
    }
    let kind = kind?;

    let gigachat_auth = match (&raw.auth, kind) {
        (Some(a), ProviderKind::GigaChat) => {
            let scope = a.scope.clone().unwrap_or_else(|| "GIGACHAT_API_PERS".to_string());
            if !GIGACHAT_SCOPES.contains(&scope.as_str()) {
                p.push(
                    format!("{path}.auth.scope"),
                    format!("unknown scope {scope:?}; expected one of {GIGACHAT_SCOPES:?}"),
                );
            }
            if reqwest::Url::parse(&a.url).is_err() {
                p.push(format!("{path}.auth.url"), format!("not a URL: {:?}", a.url));
            }
            let refresh_before = p.duration(
                &format!("{path}.auth.refresh_before"),
                a.refresh_before.as_ref(),
                Duration::from_secs(60),
            );
            Some(GigaChatAuth {
                url: a.url.clone(),
                scope,
                refresh_before,
            })
        }
        (None, ProviderKind::GigaChat) => {
            p.push(
                format!("{path}.auth"),
                "gigachat providers need auth.url (the OAuth endpoint)",
            );
            None
        }
        (Some(_), _) => {
            p.push(format!("{path}.auth"), "only gigachat providers take auth");
            None
        }
        (None, _) => None,
    };
    let qwen_api = match (raw.api.as_deref(), kind) {
        (None | Some("compatible"), _) => QwenApi::Compatible,
        (Some("native"), ProviderKind::Qwen) => QwenApi::Native,
        (Some(v), ProviderKind::Qwen) => {
            p.push(
                format!("{path}.api"),
                format!("unknown api {v:?}; expected compatible or native"),
            );
            QwenApi::Compatible
        }
        (Some(_), _) => {
            p.push(format!("{path}.api"), "only qwen providers take api");
            QwenApi::Compatible
        }
    };
    let ca_bundle = raw.ca_bundle.as_ref().map(PathBuf::from);
    if let Some(ca) = &ca_bundle {
        if !ca.is_file() {
            p.push(
                format!("{path}.ca_bundle"),
                format!("no such file: {}", ca.display()),
            );
        }
    }

    let (env_name, file, literal) = match &raw.secret {
        Some(s) => (s.env.clone(), s.file.as_ref().map(PathBuf::from), s.value.clone()),
        None => (kind.default_secret_env().map(str::to_string), None, None),
    };
    if kind.is_local() && raw.secret.is_some() {
        p.push(format!("{path}.secret"), "ollama takes no secret");
    }
    let (secret_source, secret, secret_problem) = secrets::resolve(env_name, file, literal, env);
    if let Some(msg) = secret_problem {
        p.push(format!("{path}.secret"), msg);
    }

    let limits = super::tiers::provider_limits(p, &path, raw.limits.as_ref());
    if kind.is_local() && !limits.is_empty() {
        p.push(format!("{path}.limits"), "the local tier has no quota to protect");
    }
    Some(ProviderConfig {
        limits,
        name: name.to_string(),
        kind,
        base_url,
        secret_source,
        secret,
        connect_timeout,
        attempt_timeout,
        gigachat_auth,
        ca_bundle,
        qwen_api,
    })
}

fn check_order(p: &mut Problems, order: &[String], providers: &BTreeMap<String, RawProvider>) {
    if order.is_empty() {
        p.push("fallback_policy.order", "must list at least one provider");
    }
    let mut seen = BTreeSet::new();
    for (i, name) in order.iter().enumerate() {
        if !providers.contains_key(name) {
            p.push(
                format!("fallback_policy.order[{i}]"),
                format!("provider {name:?} is not defined under providers"),
            );
        }
        if !seen.insert(name) {
            p.push(
                format!("fallback_policy.order[{i}]"),
                format!("provider {name:?} is listed twice"),
            );
        }
    }
}

type ModelMaps = (
    BTreeMap<String, BTreeMap<String, String>>,
    BTreeMap<String, BTreeMap<String, CapsOverride>>,
);

fn check_models(
    p: &mut Problems,
    models: &BTreeMap<String, BTreeMap<String, RawModelRef>>,
    providers: &BTreeMap<String, RawProvider>,
) -> ModelMaps {
    let (mut names, mut caps) = (BTreeMap::new(), BTreeMap::new());
    if !models.contains_key("default") {
        p.push("models", "the logical model \"default\" must be defined");
    }
    for (logical, map) in models {
        if map.is_empty() {
            p.push(format!("models.{logical}"), "maps to no provider");
        }
        for (provider, entry) in map {
            let path = format!("models.{logical}.{provider}");
            if !providers.contains_key(provider) {
                p.push(&path, format!("provider {provider:?} is not defined"));
            }
            let (model, over) = match entry {
                RawModelRef::Name(n) => (n.clone(), CapsOverride::default()),
                RawModelRef::Detailed(d) => (d.model.clone(), caps_override(p, &path, d)),
            };
            if model.trim().is_empty() {
                p.push(&path, "model name is empty");
            }
            names
                .entry(logical.clone())
                .or_insert_with(BTreeMap::new)
                .insert(provider.clone(), model);
            if over != CapsOverride::default() {
                caps.entry(logical.clone())
                    .or_insert_with(BTreeMap::new)
                    .insert(provider.clone(), over);
            }
        }
    }
    (names, caps)
}

fn caps_override(p: &mut Problems, path: &str, d: &super::raw::RawModelDetail) -> CapsOverride {
    use crate::providers::capabilities::{Structured, Vision};
    for (key, v) in [
        ("context_window", d.context_window),
        ("max_output_tokens", d.max_output_tokens),
        ("dimensions", d.dimensions),
    ] {
        if v == Some(0) {
            p.push(format!("{path}.{key}"), "must be greater than zero");
        }
    }
    let vision = match &d.vision {
        None => None,
        Some(RawVision::Flag(true)) => Some(Vision::Any),
        Some(RawVision::Flag(false)) => Some(Vision::None),
        Some(RawVision::Kind(k)) if k == "data_urls" => Some(Vision::DataUrls),
        Some(RawVision::Kind(k)) => {
            p.push(
                format!("{path}.vision"),
                format!("unknown value {k:?}; expected true, false or data_urls"),
            );
            None
        }
    };
    let structured = d.structured_output.as_deref().and_then(|v| {
        let parsed = Structured::parse(v);
        if parsed.is_none() {
            p.push(
                format!("{path}.structured_output"),
                format!("unknown value {v:?}; expected json_schema, json_object or none"),
            );
        }
        parsed
    });
    if d.space.as_deref().is_some_and(|s| s.trim().is_empty()) {
        p.push(format!("{path}.space"), "must not be empty");
    }
    CapsOverride {
        context_window: d.context_window.filter(|w| *w > 0),
        max_output_tokens: d.max_output_tokens.filter(|n| *n > 0),
        vision,
        tools: d.tools,
        structured,
        dimensions: d.dimensions.filter(|n| *n > 0),
        space: d.space.clone(),
        token_input: d.token_input,
    }
}
