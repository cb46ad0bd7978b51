//! Phase two of scenario loading: raw YAML values into runtime types, every problem collected with its YAML path.

use std::collections::BTreeSet;
use std::path::{Path, PathBuf};
use std::str::FromStr;
use std::time::Duration;

use llm_chaos::{Stream, ToxicKind};
use llm_mocks::{FaultKind, FaultSpec};

use super::bound::{parse_metric_check, Bound, Unit};
use super::raw::{RawExpect, RawFault, RawLoad, RawPhase, RawScenario};
use super::{
    Check, Fault, GatewaySpec, JournalWhat, Load, Measure, Pacing, Phase, Problem, RollbackAction, Route, Scenario,
    Stat, SteadyState, Stop, StreamEnd, Target,
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

const TOXIC_ATTRIBUTES: [(&str, &[&str]); 8] = [
    ("bandwidth", &["rate"]),
    ("latency", &["latency", "jitter"]),
    ("limit_data", &["bytes"]),
    ("noop", &[]),
    ("reset_peer", &["timeout"]),
    ("slicer", &["average_size", "size_variation", "delay"]),
    ("slow_close", &["delay"]),
    ("timeout", &["timeout"]),
];

const SOURCES: [&str; 5] = ["provider", "cache", "local", "offline-package", "none"];

struct Ctx {
    problems: Vec<Problem>,
    /// Provider names of the gateway config, when it loaded.
    providers: Option<Vec<String>>,
}

impl Ctx {
    fn push(&mut self, path: impl Into<String>, message: impl Into<String>) {
        self.problems.push(Problem { path: path.into(), message: message.into() });
    }

    fn duration(&mut self, path: &str, text: Option<&str>) -> Option<Duration> {
        let t = text?;
        match humantime::parse_duration(t.trim()) {
            Ok(d) => Some(d),
            Err(e) => {
                self.push(path, format!("{t:?} is not a duration ({e}); expected e.g. 500ms, 2s, 1m"));
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
        if let Some(list) = &self.providers {
            if !list.iter().any(|p| p == name) {
                let star_text = if star { " or \"*\"" } else { "" };
                let msg = format!("unknown {what} {name:?}; expected one of {}{star_text}", self.provider_list());
                self.push(path, msg);
            }
        }
        Target::Named(name.to_string())
    }
}

pub(crate) fn validate(raw: RawScenario, file: &Path) -> Result<Scenario, Vec<Problem>> {
    let mut c = Ctx { problems: Vec::new(), providers: None };
    if raw.version != 1 {
        c.push("version", format!("unsupported version {}; expected 1", raw.version));
    }
    if raw.name.is_empty() || !raw.name.chars().all(|ch| ch.is_ascii_alphanumeric() || ch == '-' || ch == '_') {
        c.push("name", format!("{:?} is not a valid name; expected letters, digits, '-' and '_'", raw.name));
    }
    let base = file.parent().map(Path::to_path_buf).unwrap_or_default();
    let config_path = if Path::new(&raw.gateway.config).is_absolute() {
        PathBuf::from(&raw.gateway.config)
    } else {
        base.join(&raw.gateway.config)
    };
    let gateway = match gateway_config::load(&config_path, raw.gateway.overrides.as_ref()) {
        Ok((yaml, parsed)) => {
            c.providers = Some(parsed.providers.keys().cloned().collect());
            Some(GatewaySpec { config: config_path, yaml, parsed })
        }
        Err(e) => {
            c.push(e.path(), e.to_string());
            None
        }
    };
    let steady_state = raw.steady_state.map(|s| {
        let recovery_wait = c.duration("steady_state.recovery_wait", s.recovery_wait.as_deref()).unwrap_or_default();
        let load = load(&mut c, "steady_state.load", &s.load, None);
        let expect = expect(&mut c, "steady_state.expect", &s.expect);
        SteadyState { recovery_wait, load: load.unwrap_or_else(placeholder_load), expect }
    });
    if raw.phases.is_empty() {
        c.push("phases", "a scenario needs at least one phase");
    }
    let mut names = BTreeSet::new();
    let phases: Vec<Phase> =
        raw.phases.iter().enumerate().map(|(i, p)| phase(&mut c, &format!("phases[{i}]"), p, &mut names)).collect();
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
    }
}

fn phase(c: &mut Ctx, at: &str, p: &RawPhase, names: &mut BTreeSet<String>) -> Phase {
    if p.name.trim().is_empty() {
        c.push(format!("{at}.name"), "a phase needs a non-empty name");
    } else if !names.insert(p.name.clone()) {
        c.push(format!("{at}.name"), format!("duplicate phase name {:?}; expected names unique in the scenario", p.name));
    }
    let duration = c.duration(&format!("{at}.duration"), p.duration.as_deref());
    let pause_before = c.duration(&format!("{at}.pause_before"), p.pause_before.as_deref()).unwrap_or_default();
    if let Some(m) = &p.mode {
        if !matches!(m.as_str(), "auto" | "remote" | "offline") {
            c.push(format!("{at}.mode"), format!("unknown mode {m:?}; expected auto, remote or offline"));
        }
    }
    let mut toxic_names = BTreeSet::new();
    let faults = p
        .faults
        .iter()
        .enumerate()
        .filter_map(|(i, f)| fault(c, &format!("{at}.faults[{i}]"), f, &mut toxic_names))
        .collect();
    let load = p.load.as_ref().and_then(|l| load(c, &format!("{at}.load"), l, duration));
    if p.load.is_none() && duration.is_none() && p.pause_before.is_none() {
        c.push(at, "a phase needs a load, a duration or a pause_before");
    }
    let expect = expect(c, &format!("{at}.expect"), &p.expect);
    let traffic = expect.iter().any(|ch| !matches!(ch.measure, Measure::Metric { .. } | Measure::Journal { .. }));
    if p.load.is_none() && traffic {
        c.push(format!("{at}.expect"), "request checks need a load; without one only metrics and journal checks apply");
    }
    Phase { name: p.name.clone(), duration, pause_before, mode: p.mode.clone(), faults, load, expect }
}

fn fault(c: &mut Ctx, at: &str, f: &RawFault, toxic_names: &mut BTreeSet<(String, String)>) -> Option<Fault> {
    let chaos_fields = [
        ("toxic", f.toxic.is_some()),
        ("name", f.name.is_some()),
        ("stream", f.stream.is_some()),
        ("toxicity", f.toxicity.is_some()),
        ("attributes", f.attributes.is_some()),
        ("enabled", f.enabled.is_some()),
    ];
    let fake_fields = [
        ("fault", f.fault.is_some()),
        ("times", f.times.is_some()),
        ("probability", f.probability.is_some()),
        ("after_requests", f.after_requests.is_some()),
        ("retry_after_s", f.retry_after_s.is_some()),
        ("after_chunks", f.after_chunks.is_some()),
        ("delay_ms", f.delay_ms.is_some()),
        ("latency_ms", f.latency_ms.is_some()),
        ("token_ttl_ms", f.token_ttl_ms.is_some()),
    ];
    let stray = |c: &mut Ctx, fields: &[(&str, bool)], kind: &str| {
        for (name, set) in fields {
            if *set {
                c.push(format!("{at}.{name}"), format!("`{name}` does not apply to {kind} faults"));
            }
        }
    };
    match (&f.proxy, &f.fake) {
        (Some(proxy), None) => {
            stray(c, &fake_fields, "proxy (chaos)");
            let proxy = c.target(&format!("{at}.proxy"), proxy, "proxy", true);
            match (&f.toxic, f.enabled) {
                (None, Some(enabled)) => {
                    stray(c, &chaos_fields[..5], "proxy enabled/disabled");
                    Some(Fault::Proxy { proxy, enabled })
                }
                (Some(t), None) => toxic(c, at, f, t, proxy, toxic_names),
                _ => {
                    c.push(at, "a proxy fault needs exactly one of `toxic` (a toxic type) or `enabled` (true/false)");
                    None
                }
            }
        }
        (None, Some(fake)) => {
            stray(c, &chaos_fields, "fake");
            let fake = c.target(&format!("{at}.fake"), fake, "fake", true);
            match &f.fault {
                None if f.latency_ms.is_some() || f.token_ttl_ms.is_some() => {
                    stray(c, &fake_fields[1..7], "fake settings");
                    Some(Fault::FakeSettings { fake, latency_ms: f.latency_ms, token_ttl_ms: f.token_ttl_ms })
                }
                None => {
                    c.push(at, "a fake fault needs `fault` (a fault name) or settings (`latency_ms`, `token_ttl_ms`)");
                    None
                }
                Some(name) => {
                    stray(c, &fake_fields[7..], "fake fault (settings go in a separate entry)");
                    let Ok(kind) = FaultKind::from_str(name) else {
                        let all: Vec<&str> = FaultKind::ALL.iter().map(|k| k.name()).collect();
                        c.push(format!("{at}.fault"), format!("unknown fault {name:?}; expected one of {}", all.join(", ")));
                        return None;
                    };
                    let spec = FaultSpec {
                        fault: kind,
                        times: f.times,
                        probability: f.probability,
                        after_requests: f.after_requests,
                        retry_after_s: f.retry_after_s,
                        after_chunks: f.after_chunks,
                        delay_ms: f.delay_ms,
                    };
                    if let Err(e) = spec.validate() {
                        c.push(at, e.to_string());
                    }
                    Some(Fault::Fake { fake, spec })
                }
            }
        }
        _ => {
            c.push(at, "a fault needs exactly one of `proxy` (a chaos toxic or proxy state) or `fake` (a fake provider fault)");
            None
        }
    }
}

fn toxic(
    c: &mut Ctx,
    at: &str,
    f: &RawFault,
    type_name: &str,
    proxy: Target,
    names: &mut BTreeSet<(String, String)>,
) -> Option<Fault> {
    let Some((_, allowed)) = TOXIC_ATTRIBUTES.iter().find(|(t, _)| *t == type_name) else {
        let all: Vec<&str> = TOXIC_ATTRIBUTES.iter().map(|(t, _)| *t).collect();
        c.push(format!("{at}.toxic"), format!("unknown toxic type {type_name:?}; expected one of {}", all.join(", ")));
        return None;
    };
    let attrs = f.attributes.clone().unwrap_or_default();
    for (k, v) in &attrs {
        if !allowed.contains(&k.as_str()) {
            let msg = format!("unknown attribute {k:?} for toxic {type_name}; expected {}", allowed.join(", "));
            c.push(format!("{at}.attributes.{k}"), msg);
        } else if *v < 0 {
            c.push(format!("{at}.attributes.{k}"), format!("{v} is negative; expected 0 or more"));
        }
    }
    let stream = match f.stream.as_deref() {
        None => Stream::Downstream,
        Some(s) => Stream::parse(s).unwrap_or_else(|| {
            c.push(format!("{at}.stream"), format!("unknown stream {s:?}; expected upstream or downstream"));
            Stream::Downstream
        }),
    };
    let toxicity = f.toxicity.unwrap_or(1.0);
    if !(0.0..=1.0).contains(&toxicity) {
        c.push(format!("{at}.toxicity"), format!("{toxicity} is out of range; expected 0 to 1"));
    }
    let name = f.name.clone().unwrap_or_else(|| format!("{type_name}_{}", stream.as_str()));
    if !names.insert((proxy.to_string(), name.clone())) {
        c.push(format!("{at}.name"), format!("toxic {name:?} appears twice on proxy {proxy} in this phase; give one a `name`"));
    }
    let map: serde_json::Map<String, serde_json::Value> = attrs.into_iter().map(|(k, v)| (k, v.into())).collect();
    match ToxicKind::from_parts(type_name, &map) {
        Ok(Some(kind)) => Some(Fault::Toxic { proxy, name, stream, toxicity: toxicity as f32, kind }),
        Ok(None) => None,
        Err(e) => {
            c.push(format!("{at}.attributes"), e);
            None
        }
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
            c.push(at, "`requests` and `duration` are exclusive; expected one of them");
            None
        }
        (None, None, None) => {
            c.push(at, "a load needs `requests` (a count) or `duration` (or a phase `duration`)");
            None
        }
    };
    let pacing = match (l.rate, l.concurrency) {
        (_, Some(0)) => {
            c.push(format!("{at}.concurrency"), "0; expected at least 1");
            None
        }
        (Some(r), cap) if r > 0.0 && r.is_finite() => Some(Pacing::Rate { per_second: r, max_in_flight: cap.unwrap_or(64) }),
        (Some(r), _) => {
            c.push(format!("{at}.rate"), format!("{r} requests per second; expected a positive number"));
            None
        }
        (None, n) => Some(Pacing::Concurrency(n.unwrap_or(4))),
    };
    let route = match l.route.as_deref() {
        None | Some("chat") => Route::Chat,
        Some("assistants") => Route::Assistants,
        Some(other) => {
            c.push(format!("{at}.route"), format!("unknown route {other:?}; expected chat or assistants"));
            Route::Chat
        }
    };
    if route == Route::Assistants && l.stream {
        c.push(format!("{at}.stream"), "the assistants route does not stream; expected stream: false or route: chat");
    }
    for (k, v) in &l.headers {
        if k.eq_ignore_ascii_case("x-llm-provider") {
            c.target(&format!("{at}.headers.{k}"), &v.to_ascii_lowercase(), "provider", false);
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
    let timeout = c.duration(&format!("{at}.timeout"), l.timeout.as_deref()).unwrap_or(Duration::from_secs(60));
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
    })
}

#[derive(Clone, Copy, PartialEq)]
enum Kind {
    /// A fraction: plain 0..=1 or a percentage.
    Rate,
    /// A count, or a share of the requests with `%`.
    Count,
    /// A plain number only.
    Plain,
    /// A duration.
    Time,
}

fn check(c: &mut Ctx, out: &mut Vec<Check>, path: String, key: &str, text: &str, kind: Kind, measure: Measure) {
    let bound = match Bound::parse(text) {
        Ok(b) => b,
        Err(e) => return c.push(path, e),
    };
    let ok = match (kind, bound.unit) {
        (Kind::Rate, Unit::Plain) if !(0.0..=1.0).contains(&bound.value) => {
            return c.push(path, format!("{text:?}: a rate is a fraction from 0 to 1 or a percentage such as 99%"));
        }
        (Kind::Rate, Unit::Plain | Unit::Percent) | (Kind::Count, Unit::Plain | Unit::Percent) => true,
        (Kind::Plain, Unit::Plain) | (Kind::Time, Unit::Seconds) => true,
        _ => false,
    };
    if !ok {
        let expected = match kind {
            Kind::Rate => "a fraction or a percentage, e.g. \">= 99%\"",
            Kind::Count => "a count or a share, e.g. \"== 0\" or \"<= 1%\"",
            Kind::Plain => "a plain count, e.g. \">= 100\"",
            Kind::Time => "a duration, e.g. \"< 500ms\"",
        };
        return c.push(path, format!("{text:?}: expected {expected}"));
    }
    out.push(Check { path, label: format!("{key} {}", text.trim()), measure, bound });
}

fn stat(key: &str) -> Option<Stat> {
    match key {
        "mean" => Some(Stat::Mean),
        "max" => Some(Stat::Max),
        "min" => Some(Stat::Min),
        _ => key.strip_prefix('p').and_then(|n| n.parse::<f64>().ok()).filter(|p| *p > 0.0 && *p <= 100.0).map(Stat::P),
    }
}

fn expect(c: &mut Ctx, at: &str, e: &RawExpect) -> Vec<Check> {
    let mut out = Vec::new();
    let o = &mut out;
    if let Some(t) = &e.requests {
        check(c, o, format!("{at}.requests"), "requests", t, Kind::Plain, Measure::Requests);
    }
    if let Some(t) = &e.success_rate {
        check(c, o, format!("{at}.success_rate"), "success_rate", t, Kind::Rate, Measure::SuccessRate);
    }
    if let Some(t) = &e.status_5xx {
        check(c, o, format!("{at}.status_5xx"), "status_5xx", t, Kind::Count, Measure::Status5xx);
    }
    if let Some(t) = &e.fell_back {
        check(c, o, format!("{at}.fell_back"), "fell_back", t, Kind::Count, Measure::FellBack);
    }
    for (code, t) in &e.status {
        let path = format!("{at}.status.{code}");
        if !(100..=599).contains(code) {
            c.push(path.clone(), format!("{code} is not an HTTP status; expected 100 to 599"));
        }
        check(c, o, path, &format!("status.{code}"), t, Kind::Count, Measure::Status(*code));
    }
    for (p, t) in &e.served_by {
        let path = format!("{at}.served_by.{p}");
        c.target(&path, p, "provider", false);
        check(c, o, path, &format!("served_by.{p}"), t, Kind::Rate, Measure::ServedBy(p.clone()));
    }
    for (s, t) in &e.source {
        let path = format!("{at}.source.{s}");
        if !SOURCES.contains(&s.as_str()) {
            c.push(path.clone(), format!("unknown source {s:?}; expected one of {}", SOURCES.join(", ")));
        }
        check(c, o, path, &format!("source.{s}"), t, Kind::Rate, Measure::Source(s.clone()));
    }
    for (group, map, fallback) in [("latency", &e.latency, false), ("fallback_latency", &e.fallback_latency, true)] {
        for (k, t) in map {
            let path = format!("{at}.{group}.{k}");
            let Some(s) = stat(k) else {
                c.push(path, format!("unknown statistic {k:?}; expected p50, p90, p95, p99 (any pN), mean, min or max"));
                continue;
            };
            let m = if fallback { Measure::FallbackLatency(s) } else { Measure::Latency(s) };
            check(c, o, path, &format!("{group}.{k}"), t, Kind::Time, m);
        }
    }
    for (i, t) in e.metrics.iter().enumerate() {
        let path = format!("{at}.metrics[{i}]");
        match parse_metric_check(t) {
            Ok((func, selector, bound)) => {
                o.push(Check { path, label: t.trim().to_string(), measure: Measure::Metric { func, selector }, bound })
            }
            Err(msg) => c.push(path, msg),
        }
    }
    for (k, t) in &e.journal {
        let path = format!("{at}.journal.{k}");
        let (name, what) = match k.split_once('.') {
            None => (k.as_str(), JournalWhat::Inference),
            Some((n, "oauth")) => (n, JournalWhat::Oauth),
            Some((n, "all")) => (n, JournalWhat::All),
            Some((_, w)) => {
                c.push(path, format!("unknown journal selector {w:?}; expected PROVIDER, PROVIDER.oauth or PROVIDER.all"));
                continue;
            }
        };
        c.target(&path, name, "fake", false);
        let m = Measure::Journal { fake: name.to_string(), what };
        check(c, o, path, &format!("journal.{k}"), t, Kind::Plain, m);
    }
    let ends = [StreamEnd::Completed, StreamEnd::ErrorEvent, StreamEnd::Cut, StreamEnd::ErrorThenDone, StreamEnd::NotStreamed];
    for (k, t) in &e.streams {
        let path = format!("{at}.streams.{k}");
        let Some(end) = ends.iter().find(|s| s.as_str() == k) else {
            let all: Vec<&str> = ends.iter().map(|s| s.as_str()).collect();
            c.push(path, format!("unknown stream outcome {k:?}; expected one of {}", all.join(", ")));
            continue;
        };
        check(c, o, path, &format!("streams.{k}"), t, Kind::Count, Measure::Stream(*end));
    }
    for (code, t) in &e.error_code {
        let m = Measure::ErrorCode(code.clone());
        check(c, o, format!("{at}.error_code.{code}"), &format!("error_code.{code}"), t, Kind::Count, m);
    }
    if let Some(list) = &e.error_lists {
        let path = format!("{at}.error_lists");
        if list.is_empty() {
            c.push(path.clone(), "empty list; expected the providers every error must list, in order");
        }
        for (i, p) in list.iter().enumerate() {
            c.target(&format!("{path}[{i}]"), p, "provider", false);
        }
        let bound = Bound { op: super::Op::Ge, value: 1.0, unit: Unit::Percent };
        let label = format!("error_lists [{}] (every error response)", list.join(", "));
        o.push(Check { path, label, measure: Measure::ErrorLists(list.clone()), bound });
    }
    out
}
