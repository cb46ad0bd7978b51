//! The analysis and the renderer on synthetic series.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::collections::BTreeMap;
use std::time::{Duration, UNIX_EPOCH};

use super::analyse::quantile;
use super::*;

fn series(name: &str, labels: &[(&str, &str)], points: &[(f64, f64)]) -> Series {
    Series {
        name: name.into(),
        labels: labels
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect(),
        points: points.to_vec(),
    }
}

fn sample() -> Measurements {
    let req = |source: &str, status: &str, pts: &[(f64, f64)]| {
        series(
            "llm_gateway_requests_total",
            &[
                ("route", "chat_completions"),
                ("source", source),
                ("status", status),
            ],
            pts,
        )
    };
    Measurements {
        from: 1000.0,
        to: 1010.0,
        source: "test".into(),
        resolution: 1.0,
        series: vec![
            series(
                "llm_gateway_mode",
                &[("mode", "auto")],
                &[(1000.0, 1.0), (1004.0, 1.0), (1005.0, 0.0), (1010.0, 1.0)],
            ),
            series(
                "llm_gateway_mode",
                &[("mode", "offline")],
                &[(1000.0, 0.0), (1004.0, 0.0), (1005.0, 1.0), (1010.0, 0.0)],
            ),
            series(
                "llm_gateway_breaker_state",
                &[("provider", "kimi")],
                &[(1000.0, 0.0), (1003.0, 1.0), (1008.0, 2.0), (1009.0, 0.0)],
            ),
            req("provider", "200", &[(1000.0, 5.0), (1002.0, 7.0), (1010.0, 9.0)]),
            // Born inside the window: counted from zero.
            req("none", "503", &[(1006.0, 2.0), (1007.0, 3.0)]),
            // A restart: 4 -> 1 counts the 1.
            req(
                "offline-package",
                "200",
                &[(1000.0, 3.0), (1005.0, 4.0), (1006.0, 1.0)],
            ),
            series(
                "llm_gateway_offline_misses_total",
                &[],
                &[(1000.0, 0.0), (1007.0, 3.0)],
            ),
            series(
                "llm_gateway_offline_hits_total",
                &[("source", "package")],
                &[(1000.0, 0.0), (1006.0, 2.0)],
            ),
        ],
        marks: Vec::new(),
        problems: Vec::new(),
    }
}

#[test]
fn counts_are_increases_with_new_series_and_resets() {
    let r = analyse(&sample());
    let tier = |s: &str| r.by_tier.iter().find(|c| c.key[0] == s).map(|c| c.count);
    assert_eq!(tier("provider"), Some(4.0));
    assert_eq!(tier("none"), Some(3.0));
    assert_eq!(tier("offline-package"), Some(2.0));
    assert_eq!((r.requests, r.server_errors, r.offline_misses), (9.0, 3.0, 3.0));
    assert_eq!(r.mode_at_start.as_deref(), Some("auto"));
}

#[test]
fn timeline_has_breaker_and_mode_changes_in_order() {
    let r = analyse(&sample());
    let what: Vec<&str> = r.timeline.iter().map(|e| e.what.as_str()).collect();
    let pos = |s: &str| {
        what.iter()
            .position(|w| w.contains(s))
            .unwrap_or_else(|| panic!("{s} in {what:?}"))
    };
    assert!(pos("breaker of kimi opened") < pos("mode changed: auto -> offline"));
    assert!(pos("mode changed: auto -> offline") < pos("breaker of kimi half-open"));
    assert!(pos("breaker of kimi closed") < pos("mode changed: offline -> auto"));
    assert_eq!(r.providers[0].breaker_openings, 1);
}

#[test]
fn absent_families_are_named_and_the_template_is_filled() {
    let r = analyse(&sample());
    assert!(r
        .missing
        .iter()
        .any(|m| m.contains("llm_gateway_cooldowns_total")));
    assert!(!r.missing.iter().any(|m| m.contains("`llm_gateway_mode`")));
    let md = render(&r);
    assert!(!md.contains("{{"), "unfilled marker in\n{md}");
    assert!(md.contains("breaker of kimi opened"));
    let empty = analyse(&Measurements {
        from: 0.0,
        to: 60.0,
        ..Measurements::default()
    });
    assert!(empty.missing[0].contains("absent"));
    assert!(render(&empty).contains("no data of the gateway"));
}

#[test]
fn quantiles_follow_histogram_quantile() {
    let mut b = BTreeMap::new();
    for (le, c) in [(0.1, 50.0), (0.5, 90.0), (1.0, 100.0), (f64::INFINITY, 100.0)] {
        b.insert(f64::to_bits(le), (le, c));
    }
    assert!((quantile(&b, 0.5).unwrap() - 0.1).abs() < 1e-9);
    assert!((quantile(&b, 0.99).unwrap() - 0.95).abs() < 1e-9);
    assert_eq!(quantile(&BTreeMap::new(), 0.5), None);
}

#[test]
fn times_parse() {
    let now = UNIX_EPOCH + Duration::from_secs(10_000);
    assert_eq!(parse_time("now", now).unwrap(), 10_000.0);
    assert_eq!(parse_time("now-1h", now).unwrap(), 6_400.0);
    assert_eq!(parse_time("1700000000", now).unwrap(), 1.7e9);
    assert_eq!(parse_time("1970-01-01T00:01:00Z", now).unwrap(), 60.0);
    assert!(parse_time("yesterday", now).unwrap_err().contains("RFC 3339"));
    assert!(parse_time("now-forever", now).is_err());
    assert!(parse_time("-5", now).is_err());
}
