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
    if !r.peers.is_empty() {
        peers(&mut s, r);
    }
    if !r.overhead.is_empty() {
        overhead(&mut s, r);
    }
    if !r.fallback.is_empty() || !r.peer_fallback.is_empty() {
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
    if !r.streams.is_empty() || !r.stream_memory.is_empty() {
        streams(&mut s, r);
    }
    s
}

fn peers(s: &mut String, r: &Results) {
    let _ = writeln!(
        s,
        "## Peers\n\n| peer | package | installed | measured |\n|---|---|---|---|"
    );
    for p in &r.peers {
        let measured = match &p.failure {
            None => "yes".to_string(),
            Some(f) => format!("**no**: {}", f.replace('|', "\\|")),
        };
        let _ = writeln!(
            s,
            "| {} | {} | {} | {measured} |",
            p.name,
            p.package,
            p.version.as_deref().unwrap_or("no")
        );
    }
    let _ = writeln!(s);
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
    let _ = writeln!(
        s,
        "\nAdded latency: a target's percentile minus the fake's own (`direct`) at the same rate.\n\n\
         | rate | target | added p50 ms | added p99 ms | ÷ forwarder p50 / p99 |\n|---:|---|---:|---:|---:|"
    );
    for rate in rates {
        let (Some(d), Some(f)) = (row_of(r, "direct", rate), row_of(r, "forwarder", rate)) else {
            continue;
        };
        let (f50, f99) = (f.p50_ms - d.p50_ms, f.p99_ms - d.p99_ms);
        for x in r
            .overhead
            .iter()
            .filter(|x| x.rate == rate && x.target != "direct")
        {
            let (a50, a99) = (x.latency.p50_ms - d.p50_ms, x.latency.p99_ms - d.p99_ms);
            let _ = writeln!(
                s,
                "| {rate} | {} | {a50:.3} | {a99:.3} | {} / {} |",
                x.target,
                ratio(a50, f50),
                ratio(a99, f99)
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
    if r.peer_fallback.is_empty() {
        return;
    }
    let _ = writeln!(
        s,
        "\n### Peers' fallback (a refusing primary, then the backup; added: over the same peer's backup alone)\n\n\
         | target | case | requests | errors | p50 ms | p99 ms | p50 added ms | p99 added ms |\n\
         |---|---|---:|---:|---:|---:|---:|---:|"
    );
    let mut rows: Vec<(&str, &str, crate::stats::Summary, Option<crate::stats::Summary>)> = Vec::new();
    if let (Some(b), Some(f)) = (
        r.fallback.first(),
        r.fallback.iter().find(|x| x.case.starts_with("primary refuses")),
    ) {
        rows.push(("gateway", "backup alone", b.latency, None));
        rows.push((
            "gateway",
            "primary refuses connections",
            f.latency,
            Some(b.latency),
        ));
    }
    for x in &r.peer_fallback {
        let base = r
            .peer_fallback
            .iter()
            .find(|b| b.peer == x.peer && b.case == "backup alone" && x.case != "backup alone")
            .map(|b| b.latency);
        rows.push((&x.peer, &x.case, x.latency, base));
    }
    for (target, case, l, base) in rows {
        let added = |v: f64, b: Option<f64>| b.map(|b| format!("{:.3}", v - b)).unwrap_or_else(|| "".into());
        let _ = writeln!(
            s,
            "| {target} | {case} | {} | {} | {:.3} | {:.3} | {} | {} |",
            l.count,
            l.errors,
            l.p50_ms,
            l.p99_ms,
            added(l.p50_ms, base.map(|b| b.p50_ms)),
            added(l.p99_ms, base.map(|b| b.p99_ms))
        );
    }
}

/// The stream targets: the gateway's added time to first token within 1.5× the forwarder's at p99, and its
/// added time between chunks under 0.1 ms at p99.
const TTFT_RATIO_TARGET: f64 = 1.5;
const GAP_ADDED_TARGET_MS: f64 = 0.1;

fn streams(s: &mut String, r: &Results) {
    let _ = writeln!(s, "\n## Streams\n");
    if let Some(st) = &r.stream_setup {
        let _ = writeln!(
            s,
            "Each stream: {} content chunks, the fake pausing {} ms between events (its `stream_delay_ms`); \
             time to first token (TTFT) from sending the request to the first content chunk; gap: between \
             consecutive chunks. Added: a target's percentile minus the fake's own (`direct`) with as many streams.\n",
            st.chunks, st.delay_ms
        );
    }
    if !r.streams.is_empty() {
        let _ = writeln!(
            s,
            "| streams | target | streams done | failed | TTFT p50 ms | TTFT p99 ms | gap p50 ms | gap p99 ms | gap p99.9 ms |\n\
             |---:|---|---:|---:|---:|---:|---:|---:|---:|"
        );
        for x in &r.streams {
            let _ = writeln!(
                s,
                "| {} | {} | {} | {} | {:.3} | {:.3} | {:.3} | {:.3} | {:.3} |",
                x.concurrency,
                x.target,
                x.ttft.count,
                x.ttft.errors,
                x.ttft.p50_ms,
                x.ttft.p99_ms,
                x.gap.p50_ms,
                x.gap.p99_ms,
                x.gap.p999_ms
            );
        }
        let _ = writeln!(
            s,
            "\n| streams | target | added TTFT p50 / p99 ms | TTFT p99 added ÷ forwarder's | added gap p50 / p99 ms |\n\
             |---:|---|---:|---:|---:|"
        );
        let mut levels: Vec<usize> = r.streams.iter().map(|x| x.concurrency).collect();
        levels.dedup();
        let mut verdicts = Vec::new();
        for level in levels {
            let at = |t: &str| r.streams.iter().find(|x| x.concurrency == level && x.target == t);
            let (Some(d), Some(f)) = (at("direct"), at("forwarder")) else {
                continue;
            };
            let f99 = f.ttft.p99_ms - d.ttft.p99_ms;
            for x in r
                .streams
                .iter()
                .filter(|x| x.concurrency == level && x.target != "direct")
            {
                let (t50, t99) = (x.ttft.p50_ms - d.ttft.p50_ms, x.ttft.p99_ms - d.ttft.p99_ms);
                let (g50, g99) = (x.gap.p50_ms - d.gap.p50_ms, x.gap.p99_ms - d.gap.p99_ms);
                let _ = writeln!(
                    s,
                    "| {level} | {} | {t50:.3} / {t99:.3} | {} | {g50:.3} / {g99:.3} |",
                    x.target,
                    ratio(t99, f99)
                );
                if x.target == "gateway" {
                    verdicts.push(stream_verdict(level, t99, f99, g99));
                }
            }
        }
        let _ = writeln!(s);
        for v in verdicts {
            let _ = writeln!(s, "{v}");
        }
    }
    if !r.stream_memory.is_empty() {
        let _ = writeln!(
            s,
            "\nMemory with streams open (a fresh server each time, the fake pausing 1 s between events so that all \
             are open at once; per stream: (VmRSS open − before) ÷ streams open):\n\n\
             | server | streams | open | VmRSS before MB | VmRSS open MB | per open stream KB |\n\
             |---|---:|---:|---:|---:|---:|"
        );
        for m in &r.stream_memory {
            let _ = writeln!(
                s,
                "| {} | {} | {} | {:.1} | {:.1} | {} |",
                m.target,
                m.open.streams,
                m.open.open,
                m.open.before_bytes as f64 / 1e6,
                m.open.open_bytes as f64 / 1e6,
                m.per_stream_bytes
                    .map(|b| format!("{:.1}", b / 1e3))
                    .unwrap_or_else(|| "n/a".into())
            );
        }
    }
}

/// One line on the gateway's stream targets at `level` streams.
fn stream_verdict(level: usize, ttft99: f64, fwd_ttft99: f64, gap99: f64) -> String {
    // A forwarder adding nothing measurable (≤ 0) leaves no ratio: then compare the gateway's own added time.
    let ttft = if fwd_ttft99 > 0.0 {
        let x = ttft99 / fwd_ttft99;
        let met = if x <= TTFT_RATIO_TARGET {
            "met"
        } else {
            "**missed**"
        };
        format!("added TTFT p99 {ttft99:.3} ms = {x:.2}× the forwarder's {fwd_ttft99:.3} ms (target ≤ {TTFT_RATIO_TARGET}×: {met})")
    } else {
        format!("added TTFT p99 {ttft99:.3} ms, the forwarder's {fwd_ttft99:.3} ms (no ratio: the forwarder adds nothing measurable)")
    };
    let met = if gap99 < GAP_ADDED_TARGET_MS {
        "met"
    } else {
        "**missed**"
    };
    format!(
        "- {level} streams: gateway {ttft}; added gap p99 {gap99:.3} ms (target < {GAP_ADDED_TARGET_MS} ms: {met})."
    )
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
