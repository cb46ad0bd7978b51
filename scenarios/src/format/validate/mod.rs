//! Phase two of scenario loading: raw YAML values into runtime types, every problem collected with its YAML path.
//! `fault` and `expect` hold the two largest parts.

mod expect;
mod fault;

use std::collections::BTreeSet;
use std::path::{Path, PathBuf};
use std::time::Duration;

use super::raw::{RawLoad, RawPhase, RawScenario};
use super::{
    GatewaySpec, Load, Measure, Pacing, Phase, Problem, RollbackAction, Route, Scenario, SteadyState, Stop,
    Target,
};
use crate::gateway_config;

/// Prompts used when a load names none.
pub(crate) const DEFAULT_PROMPTS: [&str; 8] = [
    "Say hello to the gateway",
    "Summarise the benefits of provider fallback in one sentence",
    "What is a circuit breaker?",
    "Translate 'good morning' into Russian",
    "List three prime numbers",
    "Write a haiku about a network outage",
    "Explain retry budgets briefly",
    "What time zone is Moscow in?",
];

/// Upper bound of `gateway.replicas` (each is a gateway in this process on a 2-core machine).
const MAX_REPLICAS: u32 = 5;

pub(super) struct Ctx {
    problems: Vec<Problem>,
    /// Provider names of the gateway config, when it loaded.
    providers: Option<Vec<String>>,
    /// Proxies that front no provider (`redis` with `gateway.replicas` above 1).
    extra_proxies: Vec<String>,
}

impl Ctx {
    fn push(&mut self, path: impl Into<String>, message: impl Into<String>) {
        self.problems.push(Problem {
            path: path.into(),
            message: message.into(),
        });
    }

    fn duration(&mut self, path: &str, text: Option<&str>) -> Option<Duration> {
        let t = text?;
        match humantime::parse_duration(t.trim()) {
            Ok(d) => Some(d),
            Err(e) => {
                self.push(
                    path,
                    format!("{t:?} is not a duration ({e}); expected e.g. 500ms, 2s, 1m"),
                );
                None
            }
        }
    }

    fn provider_list(&self) -> String {
        self.providers.as_ref().map(|p| p.join(", ")).unwrap_or_default()
    }

    /// Checks a provider name; `star` allows `*`.
    fn target(&mut self, path: &str, name: &str, what: &str, star: bool) -> Target {
        if star && name == "*" {
            return Target::All;
        }
        let extra: &[String] = if what == "proxy" { &self.extra_proxies } else { &[] };
        if let Some(list) = &self.providers {
            if !list.iter().chain(extra).any(|p| p == name) {
                let star_text = if star { " or \"*\"" } else { "" };
                let mut names = self.provider_list();
                for e in extra {
                    names.push_str(", ");
                    names.push_str(e);
                }
                let msg = format!("unknown {what} {name:?}; expected one of {names}{star_text}");
                self.push(path, msg);
            }
        }
        Target::Named(name.to_string())
    }
}

pub(crate) fn validate(raw: RawScenario, file: &Path) -> Result<Scenario, Vec<Problem>> {
    let mut c = Ctx {
        problems: Vec::new(),
        providers: None,
        extra_proxies: Vec::new(),
    };
    if raw.version != 1 {
        c.push(
            "version",
            format!("unsupported version {}; expected 1", raw.version),
        );
    }
    if raw.name.is_empty()
        || !raw
            .name
            .chars()
            .all(|ch| ch.is_ascii_alphanumeric() || ch == '-' || ch == '_')
    {
        c.push(
            "name",
            format!(
                "{:?} is not a valid name; expected letters, digits, '-' and '_'",
                raw.name
            ),
        );
    }
    let base = file.parent().map(Path::to_path_buf).unwrap_or_default();
    let config_path = if Path::new(&raw.gateway.config).is_absolute() {
        PathBuf::from(&raw.gateway.config)
    } else {
        base.join(&raw.gateway.config)
    };
    let replicas = raw.gateway.replicas.unwrap_or(1);
    if !(1..=MAX_REPLICAS).contains(&replicas) {
        c.push(
            "gateway.replicas",
            format!("{replicas} is out of range; expected 1 to {MAX_REPLICAS}"),
        );
    }
    let gateway = match gateway_config::load(&config_path, raw.gateway.overrides.as_ref()) {
        Ok((yaml, parsed)) => {
            c.providers = Some(parsed.providers.keys().cloned().collect());
            if replicas > 1 {
                // The chaos proxy in front of the Redis the replicas share.
                c.extra_proxies.push(crate::stand::REDIS_PROXY.to_string());
            }
            Some(GatewaySpec {
                config: config_path,
                yaml,
                parsed,
                overridden: raw.gateway.overrides.is_some(),
                replicas,
            })
        }
        Err(e) => {
            c.push(e.path(), e.to_string());
            None
        }
    };
    let steady_state = raw.steady_state.map(|s| {
        let recovery_wait = c
            .duration("steady_state.recovery_wait", s.recovery_wait.as_deref())
            .unwrap_or_default();
        let load = load(&mut c, "steady_state.load", &s.load, None);
        let expect = expect::expect(&mut c, "steady_state.expect", &s.expect);
        SteadyState {
            recovery_wait,
            load: load.unwrap_or_else(placeholder_load),
            expect,
        }
    });
    if raw.phases.is_empty() {
        c.push("phases", "a scenario needs at least one phase");
    }
    let mut names = BTreeSet::new();
    let phases: Vec<Phase> = raw
        .phases
        .iter()
        .enumerate()
        .map(|(i, p)| phase(&mut c, &format!("phases[{i}]"), p, &mut names))
        .collect();
    let rollback = match raw.rollback {
        None => vec![RollbackAction::ResetChaos, RollbackAction::ResetFakes, RollbackAction::RestoreMode],
        Some(list) => list
            .iter()
            .enumerate()
            .filter_map(|(i, a)| match a.as_str() {
                "reset_chaos" => Some(RollbackAction::ResetChaos),
                "reset_fakes" => Some(RollbackAction::ResetFakes),
                "restore_mode" => Some(RollbackAction::RestoreMode),
                other => {
                    let msg = format!("unknown rollback action {other:?}; expected reset_chaos, reset_fakes or restore_mode");
                    c.push(format!("rollback[{i}]"), msg);
                    None
                }
            })
            .collect(),
    };
    match gateway {
        Some(gateway) if c.problems.is_empty() => Ok(Scenario {
            file: file.to_path_buf(),
            name: raw.name,
            description: raw.description.unwrap_or_default().trim().to_string(),
            tags: raw.tags,
            seed: raw.seed.unwrap_or(1),
            gateway,
            steady_state,
            phases,
            rollback,
        }),
        _ => Err(c.problems),
    }
}

fn placeholder_load() -> Load {
    Load {
        stop: Stop::Count(0),
        pacing: Pacing::Concurrency(1),
        stream: false,
        route: Route::Chat,
        model: String::new(),
        headers: Vec::new(),
        prompts: Vec::new(),
        max_tokens: None,
        timeout: Duration::ZERO,
        body: serde_json::Map::new(),
    }
}

fn phase(c: &mut Ctx, at: &str, p: &RawPhase, names: &mut BTreeSet<String>) -> Phase {
    if p.name.trim().is_empty() {
        c.push(format!("{at}.name"), "a phase needs a non-empty name");
    } else if !names.insert(p.name.clone()) {
        c.push(
            format!("{at}.name"),
            format!(
                "duplicate phase name {:?}; expected names unique in the scenario",
                p.name
            ),
        );
    }
    let duration = c.duration(&format!("{at}.duration"), p.duration.as_deref());
    let pause_before = c
        .duration(&format!("{at}.pause_before"), p.pause_before.as_deref())
        .unwrap_or_default();
    if let Some(m) = &p.mode {
        if !matches!(m.as_str(), "auto" | "remote" | "offline") {
            c.push(
                format!("{at}.mode"),
                format!("unknown mode {m:?}; expected auto, remote or offline"),
            );
        }
    }
    let mut toxic_names = BTreeSet::new();
    let faults = p
        .faults
        .iter()
        .enumerate()
        .filter_map(|(i, f)| fault::fault(c, &format!("{at}.faults[{i}]"), f, &mut toxic_names))
        .collect();
    let load = p
        .load
        .as_ref()
        .and_then(|l| load(c, &format!("{at}.load"), l, duration));
    if p.load.is_none() && duration.is_none() && p.pause_before.is_none() {
        c.push(at, "a phase needs a load, a duration or a pause_before");
    }
    let expect = expect::expect(c, &format!("{at}.expect"), &p.expect);
    let traffic = expect
        .iter()
        .any(|ch| !matches!(ch.measure, Measure::Metric { .. } | Measure::Journal { .. }));
    if p.load.is_none() && traffic {
        c.push(
            format!("{at}.expect"),
            "request checks need a load; without one only metrics and journal checks apply",
        );
    }
    Phase {
        name: p.name.clone(),
        duration,
        pause_before,
        mode: p.mode.clone(),
        faults,
        load,
        expect,
    }
}

fn load(c: &mut Ctx, at: &str, l: &RawLoad, phase_duration: Option<Duration>) -> Option<Load> {
    let duration = c.duration(&format!("{at}.duration"), l.duration.as_deref());
    let stop = match (l.requests, duration, phase_duration) {
        (Some(0), None, _) => {
            c.push(format!("{at}.requests"), "0 requests; expected at least 1");
            None
        }
        (Some(n), None, _) => Some(Stop::Count(n)),
        (None, Some(d), _) | (None, None, Some(d)) => Some(Stop::Duration(d)),
        (Some(_), Some(_), _) => {
            c.push(
                at,
                "`requests` and `duration` are exclusive; expected one of them",
            );
            None
        }
        (None, None, None) => {
            c.push(
                at,
                "a load needs `requests` (a count) or `duration` (or a phase `duration`)",
            );
            None
        }
    };
    let pacing = match (l.rate, l.concurrency) {
        (_, Some(0)) => {
            c.push(format!("{at}.concurrency"), "0; expected at least 1");
            None
        }
        (Some(r), cap) if r > 0.0 && r.is_finite() => Some(Pacing::Rate {
            per_second: r,
            max_in_flight: cap.unwrap_or(64),
        }),
        (Some(r), _) => {
            c.push(
                format!("{at}.rate"),
                format!("{r} requests per second; expected a positive number"),
            );
            None
        }
        (None, n) => Some(Pacing::Concurrency(n.unwrap_or(4))),
    };
    let route = match l.route.as_deref() {
        None | Some("chat") => Route::Chat,
        Some("responses") => Route::Responses,
        Some("messages") => Route::Messages,
        Some("assistants") => Route::Assistants,
        Some("embeddings") => Route::Embeddings,
        Some("mcp") => Route::Mcp,
        Some(other) => {
            c.push(
                format!("{at}.route"),
                format!(
                    "unknown route {other:?}; expected chat, responses, messages, assistants, embeddings or mcp"
                ),
            );
            Route::Chat
        }
    };
    if !matches!(route, Route::Chat | Route::Responses | Route::Messages) && l.stream {
        c.push(
            format!("{at}.stream"),
            "only chat, responses and messages stream; expected stream: false or one of those routes",
        );
    }
    let body = match &l.body {
        None => serde_json::Map::new(),
        Some(serde_json::Value::Object(m)) => m.clone(),
        Some(_) => {
            c.push(
                format!("{at}.body"),
                "expected a mapping of request fields (e.g. tools, messages, response_format)",
            );
            serde_json::Map::new()
        }
    };
    for (k, v) in &l.headers {
        if k.eq_ignore_ascii_case("x-llm-provider") {
            c.target(
                &format!("{at}.headers.{k}"),
                &v.to_ascii_lowercase(),
                "provider",
                false,
            );
        }
    }
    for (i, p) in l.prompts.iter().enumerate() {
        if p.trim().is_empty() {
            c.push(format!("{at}.prompts[{i}]"), "empty prompt; expected some text");
        }
    }
    let prompts = if l.prompts.is_empty() {
        DEFAULT_PROMPTS.iter().map(|s| s.to_string()).collect()
    } else {
        l.prompts.clone()
    };
    let timeout = c
        .duration(&format!("{at}.timeout"), l.timeout.as_deref())
        .unwrap_or(Duration::from_secs(60));
    Some(Load {
        stop: stop?,
        pacing: pacing?,
        stream: l.stream,
        route,
        model: l.model.clone().unwrap_or_else(|| "default".into()),
        headers: l.headers.iter().map(|(k, v)| (k.clone(), v.clone())).collect(),
        prompts,
        max_tokens: l.max_tokens,
        timeout,
        body,
    })
}
