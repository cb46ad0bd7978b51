//! `telemetry:`: OpenTelemetry trace export (OTLP over HTTP/protobuf). Off unless the section or the standard
//! `OTEL_EXPORTER_OTLP_*` variables name an endpoint; config wins over env, as the OpenTelemetry SDKs rule.

use std::collections::BTreeMap;
use std::time::Duration;

use serde::Deserialize;

use super::validate::Problems;
use super::{EnvLookup, Secret};

/// `telemetry:`.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct RawTelemetry {
    pub(crate) otlp: Option<RawOtlp>,
}

/// `telemetry.otlp:`.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct RawOtlp {
    pub(crate) enabled: Option<bool>,
    pub(crate) endpoint: Option<String>,
    #[serde(default)]
    pub(crate) headers: BTreeMap<String, String>,
    pub(crate) timeout: Option<String>,
    pub(crate) service_name: Option<String>,
    pub(crate) queue_size: Option<u64>,
    pub(crate) batch_size: Option<u64>,
    pub(crate) export_interval: Option<String>,
}

/// Trace export, when on.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct OtlpConfig {
    /// The traces URL (`.../v1/traces`).
    pub endpoint: String,
    /// Headers of every export request (collector credentials: never logged).
    pub headers: Vec<(String, Secret)>,
    /// One export request's timeout.
    pub timeout: Duration,
    /// `service.name` of the resource.
    pub service_name: String,
    /// Finished spans waiting for export at most; past it spans are dropped (and counted).
    pub queue_size: usize,
    /// Spans per export request at most.
    pub batch_size: usize,
    /// How long a span waits for its batch at most.
    pub export_interval: Duration,
}

/// The standard variables read when the section does not say.
const ENV_TRACES_ENDPOINT: &str = "OTEL_EXPORTER_OTLP_TRACES_ENDPOINT";
const ENV_ENDPOINT: &str = "OTEL_EXPORTER_OTLP_ENDPOINT";
const ENV_TRACES_HEADERS: &str = "OTEL_EXPORTER_OTLP_TRACES_HEADERS";
const ENV_HEADERS: &str = "OTEL_EXPORTER_OTLP_HEADERS";
const ENV_TRACES_TIMEOUT: &str = "OTEL_EXPORTER_OTLP_TRACES_TIMEOUT";
const ENV_TIMEOUT: &str = "OTEL_EXPORTER_OTLP_TIMEOUT";

const MAX_QUEUE: u64 = 1_000_000;

/// `endpoint` the way `OTEL_EXPORTER_OTLP_ENDPOINT` means it: a base URL that `/v1/traces` is appended to.
fn traces_url(base: &str) -> String {
    format!("{}/v1/traces", base.trim_end_matches('/'))
}

fn check_url(p: &mut Problems, path: &str, url: &str) -> bool {
    let parsed = url.parse::<axum::http::Uri>().ok();
    if parsed
        .as_ref()
        .and_then(|u| u.authority())
        .is_some_and(|a| a.as_str().contains('@'))
    {
        // The URL is logged at start: credentials belong in `headers`.
        p.push(path, "credentials in the URL are not taken: put them in headers");
        return false;
    }
    let ok = (url.starts_with("http://") || url.starts_with("https://"))
        && parsed.is_some_and(|u| u.host().is_some());
    if !ok {
        p.push(
            path,
            format!("invalid URL {url:?} (expected http(s)://host:port)"),
        );
    }
    ok
}

/// `k1=v1,k2=v2` (values percent-decoded), as `OTEL_EXPORTER_OTLP_HEADERS` is written.
fn env_headers(p: &mut Problems, var: &str, text: &str) -> Vec<(String, Secret)> {
    let mut out = Vec::new();
    for (i, pair) in text.split(',').filter(|s| !s.trim().is_empty()).enumerate() {
        match pair.split_once('=') {
            Some((k, v)) if !k.trim().is_empty() => out.push((
                k.trim().to_ascii_lowercase(),
                Secret::new(percent_decode(v.trim())),
            )),
            // The value may be a credential: the message names the entry, never its text.
            _ => p.push(var, format!("entry {i} is not key=value")),
        }
    }
    out
}

fn percent_decode(s: &str) -> String {
    let b = s.as_bytes();
    let mut out = Vec::with_capacity(b.len());
    let mut i = 0;
    while i < b.len() {
        let hex = |c: u8| (c as char).to_digit(16);
        if b[i] == b'%' {
            if let (Some(h), Some(l)) = (
                b.get(i + 1).and_then(|c| hex(*c)),
                b.get(i + 2).and_then(|c| hex(*c)),
            ) {
                out.push((h * 16 + l) as u8);
                i += 3;
                continue;
            }
        }
        out.push(b[i]);
        i += 1;
    }
    String::from_utf8_lossy(&out).into_owned()
}

fn header_ok(name: &str, value: &str) -> bool {
    axum::http::HeaderName::from_bytes(name.as_bytes()).is_ok()
        && axum::http::HeaderValue::from_str(value).is_ok()
}

/// Milliseconds, as the OTLP timeout variables are written.
fn env_timeout(p: &mut Problems, var: &str, text: &str) -> Option<Duration> {
    match text.trim().parse::<u64>() {
        Ok(ms) if ms > 0 => Some(Duration::from_millis(ms)),
        _ => {
            p.push(
                var,
                format!("invalid timeout {text:?} (milliseconds, above zero)"),
            );
            None
        }
    }
}

/// The export settings, or `None` (off): off by default, on with `telemetry.otlp` (unless `enabled: false`) or
/// with an OTLP endpoint variable; `OTEL_SDK_DISABLED=true` or `OTEL_TRACES_EXPORTER=none` turn env-only export off.
pub(super) fn otlp(p: &mut Problems, raw: Option<&RawTelemetry>, env: EnvLookup<'_>) -> Option<OtlpConfig> {
    let env = |name: &str| env(name).filter(|v| !v.trim().is_empty());
    let raw = raw.and_then(|t| t.otlp.as_ref());
    if raw.and_then(|o| o.enabled) == Some(false) {
        return None;
    }
    let env_off = env("OTEL_SDK_DISABLED").is_some_and(|v| v.trim().eq_ignore_ascii_case("true"))
        || env("OTEL_TRACES_EXPORTER").is_some_and(|v| v.trim().eq_ignore_ascii_case("none"));
    let endpoint = match raw.and_then(|o| o.endpoint.as_deref()) {
        Some(e) => check_url(p, "telemetry.otlp.endpoint", e.trim()).then(|| traces_url(e.trim())),
        None if raw.is_none() && env_off => return None,
        None => {
            if let Some(e) = env(ENV_TRACES_ENDPOINT) {
                check_url(p, ENV_TRACES_ENDPOINT, e.trim()).then(|| e.trim().to_string())
            } else if let Some(e) = env(ENV_ENDPOINT) {
                check_url(p, ENV_ENDPOINT, e.trim()).then(|| traces_url(e.trim()))
            } else if raw.is_some() {
                // The section alone: the standard local collector.
                Some(traces_url("http://localhost:4318"))
            } else {
                return None;
            }
        }
    };
    let mut headers = Vec::new();
    let headers_var = [ENV_TRACES_HEADERS, ENV_HEADERS]
        .into_iter()
        .find(|v| env(v).is_some());
    if let Some(var) = headers_var {
        headers = env_headers(p, var, &env(var).unwrap_or_default());
    }
    for (k, v) in raw.map(|o| &o.headers).into_iter().flatten() {
        let name = k.trim().to_ascii_lowercase();
        if !header_ok(&name, v) {
            p.push(
                format!("telemetry.otlp.headers.{k}"),
                "not a valid HTTP header name and value",
            );
            continue;
        }
        headers.retain(|(n, _)| *n != name);
        headers.push((name, Secret::new(v.clone())));
    }
    for (i, (k, v)) in headers.iter().enumerate() {
        if !header_ok(k, v.expose()) {
            p.push(
                format!("{}[{i}]", headers_var.unwrap_or(ENV_HEADERS)),
                "not a valid HTTP header name and value",
            );
        }
    }
    let default_timeout = [ENV_TRACES_TIMEOUT, ENV_TIMEOUT]
        .into_iter()
        .find_map(|v| env(v).map(|t| (v, t)))
        .and_then(|(v, t)| env_timeout(p, v, &t))
        .unwrap_or(Duration::from_secs(10));
    let raw_default = RawOtlp::default();
    let o = raw.unwrap_or(&raw_default);
    let timeout = p.duration("telemetry.otlp.timeout", o.timeout.as_ref(), default_timeout);
    let export_interval = p.duration(
        "telemetry.otlp.export_interval",
        o.export_interval.as_ref(),
        Duration::from_secs(1),
    );
    let mut count = |path: &str, v: Option<u64>, default: u64| match v {
        None => default as usize,
        Some(n) if (1..=MAX_QUEUE).contains(&n) => n as usize,
        Some(_) => {
            p.push(path, format!("must be between 1 and {MAX_QUEUE}"));
            default as usize
        }
    };
    let queue_size = count("telemetry.otlp.queue_size", o.queue_size, 2048);
    let batch_size = count("telemetry.otlp.batch_size", o.batch_size, 512);
    if batch_size > queue_size {
        p.push(
            "telemetry.otlp.batch_size",
            format!("{batch_size} is above queue_size {queue_size}"),
        );
    }
    let service_name = o
        .service_name
        .clone()
        .or_else(|| env("OTEL_SERVICE_NAME"))
        .map(|s| s.trim().to_string())
        .unwrap_or_else(|| "llm-gateway".into());
    if service_name.is_empty() {
        p.push("telemetry.otlp.service_name", "must not be empty");
    }
    Some(OtlpConfig {
        endpoint: endpoint?,
        headers,
        timeout,
        service_name,
        queue_size,
        batch_size,
        export_interval,
    })
}

#[cfg(test)]
mod tests {
    use crate::config::{Config, ConfigError};

    const BASE: &str =
        "providers:\n  openai: { kind: openai, base_url: \"http://127.0.0.1:1/v1\", secret: { value: k } }\n\
                        models: { default: { openai: gpt-4o-mini } }\nfallback_policy: { order: [openai] }\n";

    fn load(extra: &str, env: &[(&str, &str)]) -> Result<Config, ConfigError> {
        let env: Vec<(String, String)> = env.iter().map(|(k, v)| (k.to_string(), v.to_string())).collect();
        let lookup = move |n: &str| env.iter().find(|(k, _)| k == n).map(|(_, v)| v.clone());
        Config::from_yaml(&format!("{BASE}{extra}"), &lookup)
    }

    fn problems(extra: &str, env: &[(&str, &str)]) -> String {
        match load(extra, env) {
            Err(e) => e.to_string(),
            Ok(_) => "no error".into(),
        }
    }

    #[test]
    fn off_by_default_and_on_from_the_section_or_the_standard_variables() {
        assert_eq!(load("", &[]).unwrap().telemetry, None);
        let c = load(
            "telemetry: { otlp: { endpoint: \"http://127.0.0.1:4318/\" } }\n",
            &[],
        )
        .unwrap();
        let o = c.telemetry.unwrap();
        assert_eq!(o.endpoint, "http://127.0.0.1:4318/v1/traces");
        assert_eq!(
            (o.queue_size, o.batch_size, o.service_name.as_str()),
            (2048, 512, "llm-gateway")
        );

        let env = [
            ("OTEL_EXPORTER_OTLP_ENDPOINT", "http://collector:4318"),
            ("OTEL_EXPORTER_OTLP_HEADERS", "api-key=s%3Dcret,X-Team=a"),
            ("OTEL_EXPORTER_OTLP_TIMEOUT", "2500"),
        ];
        let o = load("", &env).unwrap().telemetry.unwrap();
        assert_eq!(o.endpoint, "http://collector:4318/v1/traces");
        let h: Vec<(&str, &str)> = o.headers.iter().map(|(k, v)| (k.as_str(), v.expose())).collect();
        assert_eq!(h, [("api-key", "s=cret"), ("x-team", "a")]);
        assert_eq!(o.timeout, std::time::Duration::from_millis(2500));
        assert!(
            !format!("{o:?}").contains("s=cret"),
            "header values are never printed"
        );

        let traces = [("OTEL_EXPORTER_OTLP_TRACES_ENDPOINT", "http://c:1/custom")];
        assert_eq!(
            load("", &traces).unwrap().telemetry.unwrap().endpoint,
            "http://c:1/custom"
        );
        let off = [
            ("OTEL_EXPORTER_OTLP_ENDPOINT", "http://c:1"),
            ("OTEL_SDK_DISABLED", "true"),
        ];
        assert_eq!(load("", &off).unwrap().telemetry, None);
        let disabled = "telemetry: { otlp: { enabled: false, endpoint: \"http://c:1\" } }\n";
        assert_eq!(load(disabled, &[]).unwrap().telemetry, None);
        // Config over env.
        let both = "telemetry: { otlp: { endpoint: \"http://mine:4318\", headers: { api-key: x } } }\n";
        let o = load(both, &env).unwrap().telemetry.unwrap();
        assert_eq!(o.endpoint, "http://mine:4318/v1/traces");
        let h: Vec<(&str, &str)> = o.headers.iter().map(|(k, v)| (k.as_str(), v.expose())).collect();
        assert_eq!(h, [("x-team", "a"), ("api-key", "x")]);
    }

    #[test]
    fn bad_values_are_problems_with_their_path_and_unknown_keys_are_refused() {
        let e = problems(
            "telemetry:\n  otlp:\n    endpoint: \"collector:4318\"\n    queue_size: 0\n    batch_size: 5000\n    \
             timeout: 0s\n    export_interval: soon\n    headers: { \"bad name\": x }\n",
            &[],
        );
        for path in [
            "telemetry.otlp.endpoint",
            "telemetry.otlp.queue_size",
            "telemetry.otlp.batch_size",
            "telemetry.otlp.timeout",
            "telemetry.otlp.export_interval",
            "telemetry.otlp.headers.bad name",
        ] {
            assert!(e.contains(path), "{path} missing in: {e}");
        }
        let e = problems(
            "telemetry: { otlp: { endpoint: \"http://c:1\", sample: 1 } }\n",
            &[],
        );
        assert!(e.contains("telemetry.otlp") && e.contains("sample"), "{e}");
        let e = problems(
            "",
            &[
                ("OTEL_EXPORTER_OTLP_HEADERS", "novalue"),
                ("OTEL_EXPORTER_OTLP_ENDPOINT", "http://c:1"),
            ],
        );
        assert!(
            e.contains("OTEL_EXPORTER_OTLP_HEADERS") && !e.contains("novalue"),
            "{e}"
        );
        let e = problems("", &[("OTEL_EXPORTER_OTLP_ENDPOINT", "ftp://c")]);
        assert!(e.contains("OTEL_EXPORTER_OTLP_ENDPOINT"), "{e}");
        let e = problems("telemetry: { otlp: { endpoint: \"http://u:pw@c:4318\" } }\n", &[]);
        assert!(e.contains("telemetry.otlp.endpoint") && !e.contains("pw"), "{e}");
    }
}
