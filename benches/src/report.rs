//! The load benchmark's report: a Markdown table (quoted in the README) and the raw JSON.

use crate::suite::Results;
use std::fmt::Write as _;

fn row_of<'a>(r: &'a Results, target: &str, rate: u32) -> Option<&'a crate::stats::Summary> {
    r.overhead
        .iter()
        .find(|x| x.target == target && x.rate == rate)
        .map(|x| &x.latency)
}

fn ratio(a: f64, b: f64) -> String {
    if b > 0.0 && a.is_finite() {
        format!("{:.2}×", a / b)
    } else {
        "n/a".into()
    }
}

/// Renders the results as Markdown.
pub fn markdown(r: &Results) -> String {
    let mut s = String::new();
    let _ = writeln!(
        s,
        "# Load benchmark\n\nStarted {} on {}.\nCPUs: {}.\n",
        r.started, r.machine, r.cpus
    );
    if !r.overhead.is_empty() {
        overhead(&mut s, r);
    }
    if !r.fallback.is_empty() {
        fallback(&mut s, r);
    }
    if let Some(l) = &r.offline {
        let _ = writeln!(
            s,
            "\n## Offline-package answer (gateway in offline mode, end to end)\n"
        );
        let _ = writeln!(
            s,
            "| requests | errors | p50 ms | p99 ms | p99.9 ms |\n|---:|---:|---:|---:|---:|"
        );
        let _ = writeln!(
            s,
            "| {} | {} | {:.3} | {:.3} | {:.3} |",
            l.count, l.errors, l.p50_ms, l.p99_ms, l.p999_ms
        );
    }
    s
}

fn overhead(s: &mut String, r: &Results) {
    let _ = writeln!(
        s,
        "## Overhead (open loop, latency from the intended send time)\n"
    );
    let _ = writeln!(
        s,
        "| rate (req/s) | target | p50 ms | p90 ms | p99 ms | p99.9 ms | errors |"
    );
    let _ = writeln!(s, "|---:|---|---:|---:|---:|---:|---:|");
    for x in &r.overhead {
        let l = &x.latency;
        let _ = writeln!(
            s,
            "| {} | {} | {:.3} | {:.3} | {:.3} | {:.3} | {} |",
            x.rate, x.target, l.p50_ms, l.p90_ms, l.p99_ms, l.p999_ms, l.errors
        );
    }
    let mut rates: Vec<u32> = r.overhead.iter().map(|x| x.rate).collect();
    rates.dedup();
    let _ = writeln!(s, "\n| rate | forwarder added p50 / p99 ms | gateway added p50 / p99 ms | gateway ÷ forwarder p50 / p99 |");
    let _ = writeln!(s, "|---:|---:|---:|---:|");
    for rate in rates {
        if let (Some(d), Some(f), Some(g)) = (
            row_of(r, "direct", rate),
            row_of(r, "forwarder", rate),
            row_of(r, "gateway", rate),
        ) {
            let (f50, f99) = (f.p50_ms - d.p50_ms, f.p99_ms - d.p99_ms);
            let (g50, g99) = (g.p50_ms - d.p50_ms, g.p99_ms - d.p99_ms);
            let _ = writeln!(
                s,
                "| {rate} | {f50:.3} / {f99:.3} | {g50:.3} / {g99:.3} | {} / {} |",
                ratio(g50, f50),
                ratio(g99, f99)
            );
        }
    }
    let _ = writeln!(s, "\n| target | throughput ceiling (req/s) |\n|---|---:|");
    for (t, c) in &r.ceilings {
        let _ = writeln!(s, "| {t} | {c:.0} |");
    }
    let ceiling = |name: &str| {
        r.ceilings
            .iter()
            .find(|(t, _)| t == name)
            .map(|x| x.1)
            .unwrap_or(0.0)
    };
    let (direct, fwd, gw) = (ceiling("direct"), ceiling("forwarder"), ceiling("gateway"));
    let _ = writeln!(s, "\nGateway ceiling ÷ forwarder ceiling: {}.", ratio(gw, fwd));
    if direct > 0.0 && fwd.max(gw) >= 0.9 * direct {
        // Through a server the fake cannot go faster than alone: the load side is the limit, not the server.
        let _ = writeln!(
            s,
            "The forwarder or the gateway reached at least 90% of the fake's own ceiling: the load side (generator \
             and fake) bounds these ceilings, so their ratio says little about the servers; `--cpus shared` gives \
             the load more CPU."
        );
    }
    if let Some(b) = r.gateway_peak_rss_bytes {
        let _ = writeln!(s, "Gateway peak RSS: {:.1} MB.", b as f64 / 1e6);
    }
    if let Some(p) = r.gateway_overhead_metric_p50_s {
        let _ = writeln!(
            s,
            "`llm_gateway_overhead_seconds` p50 (bucket upper bound): {:.0} µs.",
            p * 1e6
        );
    }
}

fn fallback(s: &mut String, r: &Results) {
    let _ = writeln!(
        s,
        "\n## Fallback latency (gateway; primary fails, backup answers)\n"
    );
    let _ = writeln!(
        s,
        "| case | requests | errors | p50 ms | p99 ms | p50 added ms | p99 added ms |"
    );
    let _ = writeln!(s, "|---|---:|---:|---:|---:|---:|---:|");
    let base = r.fallback.first().map(|x| x.latency);
    for x in &r.fallback {
        let l = &x.latency;
        let (a50, a99) = base
            .map(|b| (l.p50_ms - b.p50_ms, l.p99_ms - b.p99_ms))
            .unwrap_or((f64::NAN, f64::NAN));
        let _ = writeln!(
            s,
            "| {} | {} | {} | {:.3} | {:.3} | {:.3} | {:.3} |",
            x.case, l.count, l.errors, l.p50_ms, l.p99_ms, a50, a99
        );
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::stats::Samples;
    use std::time::Duration;

    #[test]
    fn ceilings_bounded_by_the_load_side_are_called_so() {
        let mut r = Results::new(String::new(), String::new(), String::new());
        r.overhead.push(crate::suite::RateRow {
            target: "direct".into(),
            rate: 100,
            latency: Samples::default().summary(),
        });
        r.ceilings = vec![
            ("direct".into(), 20_000.0),
            ("forwarder".into(), 19_000.0),
            ("gateway".into(), 19_500.0),
        ];
        let md = markdown(&r);
        assert!(md.contains("Gateway ceiling ÷ forwarder ceiling: 1.03×."), "{md}");
        assert!(
            md.contains("the load side (generator and fake) bounds these ceilings"),
            "{md}"
        );
        r.ceilings[0].1 = 35_000.0;
        assert!(!markdown(&r).contains("bounds these ceilings"));
    }

    #[test]
    fn a_part_that_did_not_run_leaves_no_section() {
        let mut r = Results::new(
            "2026-11-26T00:00:00Z".into(),
            "test".into(),
            "shared: every process on every CPU".into(),
        );
        let mut s = Samples::default();
        s.record(Duration::from_micros(300));
        r.offline = Some(s.summary());
        let md = markdown(&r);
        assert!(md.contains("## Offline-package answer"), "{md}");
        assert!(md.contains("CPUs: shared: every process on every CPU."), "{md}");
        assert!(!md.contains("## Overhead"), "{md}");
        assert!(!md.contains("## Fallback"), "{md}");
    }
}
