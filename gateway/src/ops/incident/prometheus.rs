//! The Prometheus source: `query_range` over the window for every family the report needs.

use std::collections::{BTreeMap, BTreeSet};
use std::time::{SystemTime, UNIX_EPOCH};

use super::analyse::parse_le;
use super::render::clock;
use super::{Measurements, Series, NEEDED};

/// Parses a time: RFC 3339 (`2026-12-03T08:00:00Z`), unix seconds, `now`, or `now-30m` (any humantime
/// duration).
pub fn parse_time(text: &str, now: SystemTime) -> Result<f64, String> {
    let t = text.trim();
    let unix = |s: SystemTime| {
        s.duration_since(UNIX_EPOCH)
            .map(|d| d.as_secs_f64())
            .map_err(|_| format!("{t:?} is before 1970"))
    };
    if t == "now" {
        return unix(now);
    }
    if let Some(ago) = t.strip_prefix("now-") {
        let d = humantime::parse_duration(ago).map_err(|e| format!("{t:?}: {e}"))?;
        return unix(
            now.checked_sub(d)
                .ok_or_else(|| format!("{t:?} is too far back"))?,
        );
    }
    if let Ok(secs) = t.parse::<f64>() {
        if secs.is_finite() && secs >= 0.0 {
            return Ok(secs);
        }
    }
    humantime::parse_rfc3339_weak(t)
        .map_err(|e| {
            format!("{t:?} is not a time ({e}); use RFC 3339 (2026-12-03T08:00:00Z), unix seconds or now-1h")
        })
        .and_then(unix)
}

/// Where and how to ask Prometheus.
#[derive(Debug, Clone)]
pub struct PromQuery {
    /// Base URL, e.g. `http://127.0.0.1:9090`.
    pub url: String,
    /// Window start, unix seconds.
    pub from: f64,
    /// Window end.
    pub to: f64,
    /// Seconds between points (`None`: one point per second, or fewer for long windows: at most 10,000).
    pub step: Option<f64>,
    /// Label matchers added to every query, e.g. `job="llm-gateway",instance="10.0.0.5:6001"`.
    pub selector: Option<String>,
}

/// The step used for a window: the given one, or 1 s, raised so a series has at most 10,000 points.
pub fn step_for(q: &PromQuery) -> f64 {
    let span = (q.to - q.from).max(1.0);
    q.step.unwrap_or(1.0).max(span / 10_000.0).max(0.001)
}

/// Collects every needed family over the window from Prometheus's HTTP API (`/api/v1/query_range`).
pub async fn from_prometheus(client: &reqwest::Client, q: &PromQuery) -> Result<Measurements, String> {
    if q.to <= q.from {
        return Err(format!(
            "--to ({}) must be after --from ({})",
            clock(q.to),
            clock(q.from)
        ));
    }
    let step = step_for(q);
    let base = q.url.trim_end_matches('/');
    let mut m = Measurements {
        from: q.from,
        to: q.to,
        source: format!("Prometheus {base}"),
        resolution: step,
        ..Measurements::default()
    };
    let extra = q
        .selector
        .as_deref()
        .map(|s| s.trim().trim_start_matches('{').trim_end_matches('}').trim())
        .filter(|s| !s.is_empty());
    for (name, _) in NEEDED {
        let query = match extra {
            Some(sel) => format!("{name}{{{sel}}}"),
            None => name.to_string(),
        };
        let url = reqwest::Url::parse_with_params(
            &format!("{base}/api/v1/query_range"),
            &[
                ("query", query.as_str()),
                ("start", &format!("{:.3}", q.from)),
                ("end", &format!("{:.3}", q.to)),
                ("step", &format!("{step}")),
            ],
        )
        .map_err(|e| format!("--prometheus {base:?} is not a URL: {e}"))?;
        let resp = client
            .get(url)
            .send()
            .await
            .map_err(|e| format!("cannot reach Prometheus at {base}: {e}"))?;
        let status = resp.status();
        let body: serde_json::Value = resp.json().await.map_err(|e| {
            format!("Prometheus at {base} answered {status} with a body that is not JSON: {e}")
        })?;
        if body["status"] != "success" {
            let err = body["error"].as_str().unwrap_or("no error text");
            // A bad selector fails every query the same way: stop at the first.
            if status.is_client_error() {
                return Err(format!("Prometheus refused the query {query:?}: {err}"));
            }
            m.problems.push(format!("query {query:?} failed: {err}"));
            continue;
        }
        for r in body["data"]["result"].as_array().into_iter().flatten() {
            let mut labels: BTreeMap<String, String> = r["metric"]
                .as_object()
                .into_iter()
                .flatten()
                .filter_map(|(k, v)| Some((k.clone(), v.as_str()?.to_string())))
                .collect();
            labels.remove("__name__");
            let points = r["values"]
                .as_array()
                .into_iter()
                .flatten()
                .filter_map(|p| {
                    let t = p.get(0)?.as_f64()?;
                    let v = parse_le(p.get(1)?.as_str()?)?;
                    v.is_finite().then_some((t, v))
                })
                .collect();
            m.series.push(Series {
                name: name.to_string(),
                labels,
                points,
            });
        }
    }
    merge_instances(&mut m);
    Ok(m)
}

/// Several gateway instances (or a job relabelled): counters are summed per label set without `instance` and
/// `job` for the counts; gauges keep their instance so a transition of one is not hidden by another.
fn merge_instances(m: &mut Measurements) {
    let instances: BTreeSet<&str> = m
        .series
        .iter()
        .filter_map(|s| s.labels.get("instance").map(String::as_str))
        .collect();
    let several = instances.len() > 1;
    for s in &mut m.series {
        let instance = s.labels.remove("instance");
        s.labels.remove("job");
        if several && s.name == "llm_gateway_breaker_state" {
            if let (Some(i), Some(p)) = (instance, s.labels.get_mut("provider")) {
                *p = format!("{p}@{i}");
            }
        }
    }
}
