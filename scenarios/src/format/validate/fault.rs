//! Validation of `faults:` entries: chaos toxics and proxy states, fake faults and settings.

use std::collections::BTreeSet;
use std::str::FromStr;

use llm_chaos::{Stream, ToxicKind};
use llm_mocks::{FaultKind, FaultSpec};

use super::super::raw::RawFault;
use super::super::{Fault, Target};
use super::Ctx;

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

pub(super) fn fault(
    c: &mut Ctx,
    at: &str,
    f: &RawFault,
    toxic_names: &mut BTreeSet<(String, String)>,
) -> Option<Fault> {
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
        ("stream_delay_ms", f.stream_delay_ms.is_some()),
    ];
    let stray = |c: &mut Ctx, fields: &[(&str, bool)], kind: &str| {
        for (name, set) in fields {
            if *set {
                c.push(
                    format!("{at}.{name}"),
                    format!("`{name}` does not apply to {kind} faults"),
                );
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
                    c.push(
                        at,
                        "a proxy fault needs exactly one of `toxic` (a toxic type) or `enabled` (true/false)",
                    );
                    None
                }
            }
        }
        (None, Some(fake)) => {
            stray(c, &chaos_fields, "fake");
            let fake = c.target(&format!("{at}.fake"), fake, "fake", true);
            match &f.fault {
                None if f.latency_ms.is_some() || f.token_ttl_ms.is_some() || f.stream_delay_ms.is_some() => {
                    stray(c, &fake_fields[1..7], "fake settings");
                    Some(Fault::FakeSettings {
                        fake,
                        latency_ms: f.latency_ms,
                        token_ttl_ms: f.token_ttl_ms,
                        stream_delay_ms: f.stream_delay_ms,
                    })
                }
                None => {
                    c.push(at, "a fake fault needs `fault` (a fault name) or settings (`latency_ms`, `token_ttl_ms`, `stream_delay_ms`)");
                    None
                }
                Some(name) => {
                    stray(
                        c,
                        &fake_fields[7..],
                        "fake fault (settings go in a separate entry)",
                    );
                    let Ok(kind) = FaultKind::from_str(name) else {
                        let all: Vec<&str> = FaultKind::ALL.iter().map(|k| k.name()).collect();
                        c.push(
                            format!("{at}.fault"),
                            format!("unknown fault {name:?}; expected one of {}", all.join(", ")),
                        );
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
        c.push(
            format!("{at}.toxic"),
            format!(
                "unknown toxic type {type_name:?}; expected one of {}",
                all.join(", ")
            ),
        );
        return None;
    };
    let attrs = f.attributes.clone().unwrap_or_default();
    for (k, v) in &attrs {
        if !allowed.contains(&k.as_str()) {
            let msg = format!(
                "unknown attribute {k:?} for toxic {type_name}; expected {}",
                allowed.join(", ")
            );
            c.push(format!("{at}.attributes.{k}"), msg);
        } else if *v < 0 {
            c.push(
                format!("{at}.attributes.{k}"),
                format!("{v} is negative; expected 0 or more"),
            );
        }
    }
    let stream = match f.stream.as_deref() {
        None => Stream::Downstream,
        Some(s) => Stream::parse(s).unwrap_or_else(|| {
            c.push(
                format!("{at}.stream"),
                format!("unknown stream {s:?}; expected upstream or downstream"),
            );
            Stream::Downstream
        }),
    };
    let toxicity = f.toxicity.unwrap_or(1.0);
    if !(0.0..=1.0).contains(&toxicity) {
        c.push(
            format!("{at}.toxicity"),
            format!("{toxicity} is out of range; expected 0 to 1"),
        );
    }
    let name = f
        .name
        .clone()
        .unwrap_or_else(|| format!("{type_name}_{}", stream.as_str()));
    if !names.insert((proxy.to_string(), name.clone())) {
        c.push(
            format!("{at}.name"),
            format!("toxic {name:?} appears twice on proxy {proxy} in this phase; give one a `name`"),
        );
    }
    let map: serde_json::Map<String, serde_json::Value> =
        attrs.into_iter().map(|(k, v)| (k, v.into())).collect();
    match ToxicKind::from_parts(type_name, &map) {
        Ok(Some(kind)) => Some(Fault::Toxic {
            proxy,
            name,
            stream,
            toxicity: toxicity as f32,
            kind,
        }),
        Ok(None) => None,
        Err(e) => {
            c.push(format!("{at}.attributes"), e);
            None
        }
    }
}
