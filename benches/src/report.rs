//! The load benchmark's report: a Markdown table (quoted in the README) and the raw JSON.

use crate::suite::Results;
use std::fmt::Write as _;

fn row_of<'a>(r: &'a Results, target: &str, rate: u32) -> Option<&'a crate::stats::Summary> {
    r.overhead
        .iter()
        .find(|x| x.target == target && x.rate == rate)
        .map(|x| &x.latency)
}

/// The overhead section's rates, in run order, each once.
fn rates(r: &Results) -> Vec<u32> {
    let mut rates: Vec<u32> = r.overhead.iter().map(|x| x.rate).collect();
    rates.dedup();
    rates
}

/// The rounds of `target` at `rate` (empty when the run kept none).
fn rounds_of<'a>(r: &'a Results, target: &str, rate: u32) -> &'a [crate::stats::Summary] {
    r.overhead
        .iter()
        .find(|x| x.target == target && x.rate == rate)
        .map_or(&[], |x| x.rounds.as_slice())
}

/// `target`'s added latency ÷ the forwarder's, paired round by round: in each round both ran within seconds of
/// each other and of `direct`, so a round's ratio compares them on the same state of a shared machine, and a burst
/// of host noise moves one round, not the verdict. The median of the rounds' ratios at p50 and at p99, and the
/// range of the p99 ones; `None` without rounds. A round where the forwarder added nothing measurable is left out.
fn paired(r: &Results, target: &str, rate: u32) -> Option<Paired> {
    let (d, f, x) = (
        rounds_of(r, "direct", rate),
        rounds_of(r, "forwarder", rate),
        rounds_of(r, target, rate),
    );
    let mut p50 = Vec::new();
    let mut p99 = Vec::new();
    for ((d, f), x) in d.iter().zip(f).zip(x) {
        let ((f50, f99), (x50, x99)) = (added(f, d), added(x, d));
        if f50 > 0.0 && x50.is_finite() {
            p50.push(x50 / f50);
        }
        if f99 > 0.0 && x99.is_finite() {
            p99.push(x99 / f99);
        }
    }
    let median = |v: &mut Vec<f64>| {
        v.sort_by(f64::total_cmp);
        match v.len() {
            0 => f64::NAN,
            n if n % 2 == 1 => v[n / 2],
            n => (v[n / 2 - 1] + v[n / 2]) / 2.0,
        }
    };
    let rounds = d.len().min(f.len()).min(x.len());
    if rounds == 0 {
        return None;
    }
    let (lo, hi) = (
        p99.iter().copied().fold(f64::INFINITY, f64::min),
        p99.iter().copied().fold(f64::NEG_INFINITY, f64::max),
    );
    Some(Paired {
        rounds,
        used: p99.len(),
        p50: median(&mut p50),
        p99: median(&mut p99),
        p99_range: (lo, hi),
    })
}

/// What [`paired`] finds.
struct Paired {
    rounds: usize,
    /// Rounds with a p99 ratio.
    used: usize,
    p50: f64,
    p99: f64,
    p99_range: (f64, f64),
}

/// What `x` adds over `base`: the p50 and p99 differences in milliseconds.
fn added(x: &crate::stats::Summary, base: &crate::stats::Summary) -> (f64, f64) {
    (x.p50_ms - base.p50_ms, x.p99_ms - base.p99_ms)
}

/// Milliseconds to 3 places; `n/a` when nothing was measured (every request failed).
fn ms3(v: f64) -> String {
    if v.is_finite() {
        format!("{v:.3}")
    } else {
        "n/a".into()
    }
}

/// A ratio already divided, as `1.23×`; `n/a` when there is none.
fn times(v: f64) -> String {
    if v.is_finite() {
        format!("{v:.2}×")
    } else {
        "n/a".into()
    }
}

fn ratio(a: f64, b: f64) -> String {
    if b > 0.0 {
        times(a / b)
    } else {
        "n/a".into()
    }
}

/// Renders the results as Markdown.
pub fn markdown(r: &Results) -> String {
    let mut s = String::new();
    let _ = writeln!(
        s,
        "# Load benchmark\n\nStarted {} on {}.\nCPUs: {}.",
        r.started, r.machine, r.cpus
    );
    if let [start, end] = r.load_average.as_slice() {
        let _ = writeln!(
            s,
            "Load average (1, 5, 15 min): {start} at the start, {end} at the end (other work on the machine)."
        );
    }
    let _ = writeln!(s);
    if !r.peers.is_empty() {
        peers(&mut s, r);
    }
    if !r.overhead.is_empty() {
        overhead(&mut s, r);
        state_backend(&mut s, r);
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
            "| {} | {} | {} | {} | {} | {} | {} |",
            x.rate,
            x.target,
            ms3(l.p50_ms),
            ms3(l.p90_ms),
            ms3(l.p99_ms),
            ms3(l.p999_ms),
            l.errors
        );
    }
    let failed: Vec<String> = r
        .overhead
        .iter()
        .filter(|x| !x.error_reasons.is_empty())
        .map(|x| {
            let why: Vec<String> = x.error_reasons.iter().map(|(k, n)| format!("{k} ×{n}")).collect();
            format!("{} at {}/s: {}", x.target, x.rate, why.join(", "))
        })
        .collect();
    if !failed.is_empty() {
        let _ = writeln!(s, "\nErrors: {}.", failed.join("; "));
    }
    let _ = writeln!(
        s,
        "\nAdded latency: a target's percentile minus the fake's own (`direct`) at the same rate.\n\n\
         | rate | target | added p50 ms | added p99 ms | ÷ forwarder p50 / p99 |\n|---:|---|---:|---:|---:|"
    );
    for rate in rates(r) {
        let (Some(d), Some(f)) = (row_of(r, "direct", rate), row_of(r, "forwarder", rate)) else {
            continue;
        };
        let (f50, f99) = added(f, d);
        for x in r
            .overhead
            .iter()
            .filter(|x| x.rate == rate && x.target != "direct")
        {
            let (a50, a99) = added(&x.latency, d);
            // An open loop above a target's ceiling measures its queue, which grows with the run's length.
            let over = r
                .ceilings
                .iter()
                .any(|(t, c)| *t == x.target && *c > 0.0 && *c < f64::from(rate));
            let _ = writeln!(
                s,
                "| {rate} | {}{} | {} | {} | {} / {} |",
                x.target,
                if over {
                    " (rate above its ceiling: queueing)"
                } else {
                    ""
                },
                ms3(a50),
                ms3(a99),
                ratio(a50, f50),
                ratio(a99, f99)
            );
        }
    }
    let pairs: Vec<String> = rates(r)
        .into_iter()
        .flat_map(|rate| {
            r.overhead
                .iter()
                .filter(move |x| x.rate == rate && x.target != "direct" && x.target != "forwarder")
                .filter_map(move |x| {
                    let p = paired(r, &x.target, rate)?;
                    Some(format!(
                        "| {rate} | {} | {} | {} / {} | {} to {} |",
                        x.target,
                        if p.used < p.rounds {
                            format!("{} of {}", p.used, p.rounds)
                        } else {
                            p.rounds.to_string()
                        },
                        times(p.p50),
                        times(p.p99),
                        times(p.p99_range.0),
                        times(p.p99_range.1)
                    ))
                })
        })
        .collect();
    if !pairs.is_empty() {
        let _ = writeln!(
            s,
            "\nThe same ratios paired round by round: each round gives every target one slice in turn, so a round's \
             ratio compares the target with the forwarder on the same state of the machine; the median of the \
             rounds' ratios, and the range of the p99 ones (the pooled figures above take every round's samples \
             together, where a burst of host noise in one slice can move a p99).\n\n\
             | rate | target | rounds | median ÷ forwarder p50 / p99 | p99 ratio range |\n|---:|---|---:|---:|---:|"
        );
        for line in pairs {
            let _ = writeln!(s, "{line}");
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

/// The same limits in memory and on Redis, at the same rates: what sharing the state adds.
fn state_backend(s: &mut String, r: &Results) {
    let Some(note) = &r.state_backend else {
        return;
    };
    let _ = writeln!(
        s,
        "\n## State backend: Redis beside memory\n\n{note}.\n\n\
         | rate | memory added p50 / p99 ms | redis added p50 / p99 ms | redis − memory p50 / p99 ms | redis ÷ memory p99 |\n\
         |---:|---:|---:|---:|---:|"
    );
    for rate in rates(r) {
        let (Some(d), Some(m), Some(x)) = (
            row_of(r, "direct", rate),
            row_of(r, "gateway-limits", rate),
            row_of(r, "gateway-limits-redis", rate),
        ) else {
            continue;
        };
        let ((m50, m99), (x50, x99)) = (added(m, d), added(x, d));
        let _ = writeln!(
            s,
            "| {rate} | {} / {} | {} / {} | {} / {} | {} |",
            ms3(m50),
            ms3(m99),
            ms3(x50),
            ms3(x99),
            ms3(x50 - m50),
            ms3(x99 - m99),
            ratio(x99, m99)
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
        let (a50, a99) = base.map(|b| added(l, &b)).unwrap_or((f64::NAN, f64::NAN));
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

/// The stream targets: the gateway's added time to first token within 1.5× the forwarder's at p99, and what it
/// adds to each later chunk's latency under 0.1 ms at p99.
const TTFT_RATIO_TARGET: f64 = 1.5;
const CHUNK_ADDED_TARGET_MS: f64 = 0.1;

fn streams(s: &mut String, r: &Results) {
    let _ = writeln!(s, "\n## Streams\n");
    if let Some(st) = &r.stream_setup {
        let _ = writeln!(
            s,
            "Each stream: {} content chunks {} ms apart (the first {} ms in), from the bench's stamping upstream. \
             TTFT: sending the request to reading the first content chunk. Chunk latency: the upstream writing a \
             later chunk to the client reading it (each chunk carries its send time). Gap: between consecutive \
             chunks as read (it also carries the upstream timer's 1 ms jitter). Added: a target's percentile \
             minus the upstream's own (`direct`) with as many streams.\n",
            st.chunks, st.delay_ms, st.delay_ms
        );
    }
    if !r.streams.is_empty() {
        let _ = writeln!(
            s,
            "| streams | target | streams done | failed | TTFT p50 ms | TTFT p99 ms | chunk latency p50 ms | p99 ms | p99.9 ms | gap p50 ms | gap p99 ms |\n\
             |---:|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|"
        );
        for x in &r.streams {
            let _ = writeln!(
                s,
                "| {} | {} | {} | {} | {:.3} | {:.3} | {:.3} | {:.3} | {:.3} | {:.3} | {:.3} |",
                x.concurrency,
                x.target,
                x.ttft.count,
                x.ttft.errors,
                x.ttft.p50_ms,
                x.ttft.p99_ms,
                x.chunk_latency.p50_ms,
                x.chunk_latency.p99_ms,
                x.chunk_latency.p999_ms,
                x.gap.p50_ms,
                x.gap.p99_ms
            );
        }
        let _ = writeln!(
            s,
            "\n| streams | target | added TTFT p50 / p99 ms | added TTFT p99 ÷ forwarder's | added chunk latency p50 / p99 ms |\n\
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
            let ((_, f99), (_, fc99)) = (added(&f.ttft, &d.ttft), added(&f.chunk_latency, &d.chunk_latency));
            for x in r
                .streams
                .iter()
                .filter(|x| x.concurrency == level && x.target != "direct")
            {
                let ((t50, t99), (c50, c99)) =
                    (added(&x.ttft, &d.ttft), added(&x.chunk_latency, &d.chunk_latency));
                let _ = writeln!(
                    s,
                    "| {level} | {} | {t50:.3} / {t99:.3} | {} | {c50:.3} / {c99:.3} |",
                    x.target,
                    ratio(t99, f99)
                );
                if x.target == "gateway" {
                    verdicts.push(stream_verdict(level, t99, f99, c99, fc99));
                    if let Some(h) = at(crate::suite::HELD_FORWARDER) {
                        verdicts.push(held_line((t50, t99), added(&h.ttft, &d.ttft)));
                    }
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
            "\nMemory with streams open (a fresh server each time, the upstream pausing 1 s between chunks so that \
             all are open at once; read when every stream has had its first chunk or failed; per stream: (VmRSS \
             open − before) ÷ streams open):\n\n\
             | server | streams | open | failed | VmRSS before MB | VmRSS open MB | per open stream KB |\n\
             |---|---:|---:|---:|---:|---:|---:|"
        );
        for m in &r.stream_memory {
            let _ = writeln!(
                s,
                "| {} | {} | {} | {} | {:.1} | {:.1} | {} |",
                m.target,
                m.open.streams,
                m.open.open,
                m.open.failed,
                m.open.before_bytes as f64 / 1e6,
                m.open.open_bytes as f64 / 1e6,
                m.per_stream_bytes
                    .map(|b| format!("{:.1}", b / 1e3))
                    .unwrap_or_else(|| "n/a".into())
            );
        }
    }
}

/// One line on the gateway's stream targets at `level` streams (added ms at p99: TTFT of the gateway and the
/// forwarder, chunk latency of the gateway and the forwarder).
pub fn stream_verdict(level: usize, ttft99: f64, fwd_ttft99: f64, chunk99: f64, fwd_chunk99: f64) -> String {
    let ttft = if fwd_ttft99 > 0.0 {
        let x = ttft99 / fwd_ttft99;
        let met = if x <= TTFT_RATIO_TARGET {
            "met"
        } else {
            "**missed**"
        };
        format!(
            "added TTFT p99 {ttft99:.3} ms = {x:.2}× the forwarder's {fwd_ttft99:.3} ms (target ≤ {TTFT_RATIO_TARGET}×: {met})"
        )
    } else {
        // A forwarder adding nothing measurable leaves no ratio: then the gateway must add nothing either.
        let met = if ttft99 <= 0.0 { "met" } else { "**missed**" };
        format!(
            "added TTFT p99 {ttft99:.3} ms, the forwarder's {fwd_ttft99:.3} ms (within noise; target ≤ {TTFT_RATIO_TARGET}× the forwarder's: {met})"
        )
    };
    let met = if chunk99 < CHUNK_ADDED_TARGET_MS {
        "met"
    } else {
        "**missed**"
    };
    format!(
        "- {level} streams: gateway {ttft}; added chunk latency p99 {chunk99:.3} ms, the forwarder's {fwd_chunk99:.3} ms (target < {CHUNK_ADDED_TARGET_MS} ms: {met})."
    )
}

/// The gateway's added TTFT beside the held forwarder's (`(p50, p99)` added ms each): what is left once the
/// hold to the first token, which the gateway needs to fall back before it, is in the baseline too.
pub fn held_line(gw: (f64, f64), held: (f64, f64)) -> String {
    format!(
        "  - beside a forwarder that also holds the head until the first token (`{}`, added TTFT p50 / p99 \
         {:.3} / {:.3} ms), the gateway's added TTFT p99 is {} that forwarder's and its p50 {:+.3} ms from it.",
        crate::suite::HELD_FORWARDER,
        held.0,
        held.1,
        ratio(gw.1, held.1),
        gw.0 - held.0
    )
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::stats::Samples;
    use std::time::Duration;

    #[test]
    fn the_state_backend_table_compares_redis_with_memory_at_each_rate() {
        let mut r = Results::new("t".into(), "m".into(), "shared".into());
        for (target, ms) in [
            ("direct", 1.0),
            ("forwarder", 1.2),
            ("gateway", 1.3),
            ("gateway-limits", 1.4),
            ("gateway-limits-redis", 1.9),
        ] {
            r.overhead.push(crate::suite::RateRow {
                target: target.into(),
                rate: 2000,
                latency: summary(&[ms]),
                rounds: Vec::new(),
                error_reasons: Default::default(),
            });
        }
        assert!(!markdown(&r).contains("State backend"), "no note, no section");
        assert!(!markdown(&r).contains("Errors:"));
        r.overhead[4]
            .error_reasons
            .insert("HTTP 503 overloaded".into(), 85);
        r.overhead[4].error_reasons.insert("connect".into(), 2);
        assert!(
            markdown(&r)
                .contains("Errors: gateway-limits-redis at 2000/s: HTTP 503 overloaded ×85, connect ×2."),
            "{}",
            markdown(&r)
        );
        r.state_backend = Some("redis-server at 127.0.0.1:1".into());
        let md = markdown(&r);
        assert!(md.contains("## State backend: Redis beside memory"), "{md}");
        assert!(
            md.contains("| 2000 | 0.400 / 0.400 | 0.900 / 0.900 | 0.500 / 0.500 | 2.25× |"),
            "{md}"
        );
        r.state_backend = Some("Redis not measured: redis-server is not on PATH".into());
        assert!(markdown(&r).contains("Redis not measured: redis-server is not on PATH."));
    }

    /// One noisy round moves the pooled p99 but not the paired median; a round where the forwarder added nothing
    /// is left out and said so.
    #[test]
    fn the_paired_ratio_is_the_median_of_the_rounds() {
        let mut r = Results::new("t".into(), "m".into(), "shared".into());
        // Rounds: direct p99 1.0 ms; the forwarder adds 0.2 ms, the gateway 0.3 ms, except round 3 where the
        // host stalled during the forwarder's slice (it adds 5 ms) and round 4 where it added nothing.
        let fwd = [1.2, 1.2, 6.0, 1.0, 1.2];
        let gw = [1.3, 1.3, 1.3, 1.3, 1.26];
        for (target, p99s) in [("direct", [1.0; 5]), ("forwarder", fwd), ("gateway", gw)] {
            let rounds: Vec<_> = p99s.iter().map(|ms| summary(&[*ms])).collect();
            r.overhead.push(crate::suite::RateRow {
                target: target.into(),
                rate: 5000,
                latency: summary(&p99s),
                rounds,
                error_reasons: Default::default(),
            });
        }
        let p = paired(&r, "gateway", 5000).unwrap();
        assert_eq!((p.rounds, p.used), (5, 4));
        // Ratios 1.5, 1.5, 0.0625, 1.3: the median of the four is 1.4.
        // (Samples keep whole microseconds: a ratio may be off by one part in a thousand.)
        let near = |a: f64, b: f64| (a - b).abs() < 0.01;
        assert!(near(p.p99, 1.4), "{}", p.p99);
        assert!(
            near(p.p99_range.0, 0.0625) && near(p.p99_range.1, 1.5),
            "{:?}",
            p.p99_range
        );
        let md = markdown(&r);
        assert!(
            md.contains("| 5000 | gateway | 4 of 5 | 1.40× / 1.40× | 0.06× to 1.50× |"),
            "{md}"
        );
        assert!(paired(&r, "nobody", 5000).is_none());
    }

    #[test]
    fn ceilings_bounded_by_the_load_side_are_called_so() {
        let mut r = Results::new(String::new(), String::new(), String::new());
        r.overhead.push(crate::suite::RateRow {
            target: "direct".into(),
            rate: 100,
            latency: Samples::default().summary(),
            rounds: Vec::new(),
            error_reasons: Default::default(),
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

    fn summary(ms: &[f64]) -> crate::stats::Summary {
        let mut s = Samples::default();
        for m in ms {
            s.record(Duration::from_secs_f64(m / 1000.0));
        }
        s.summary()
    }

    #[test]
    fn peers_share_the_tables_and_a_failed_one_says_why() {
        let mut r = Results::new(String::new(), String::new(), String::new());
        r.peers = vec![
            crate::suite::PeerRow {
                name: "litellm".into(),
                package: "PyPI litellm[proxy]==1.100.5".into(),
                version: Some("1.100.5".into()),
                failure: None,
            },
            crate::suite::PeerRow {
                name: "portkey".into(),
                package: "npm @portkey-ai/gateway@1.15.2".into(),
                version: None,
                failure: Some("install failed: npm install exited with 1 | E404".into()),
            },
        ];
        for (target, ms) in [
            ("direct", 1.0),
            ("forwarder", 1.5),
            ("gateway", 1.6),
            ("litellm", 12.0),
        ] {
            r.overhead.push(crate::suite::RateRow {
                target: target.into(),
                rate: 1000,
                latency: summary(&[ms]),
                rounds: Vec::new(),
                error_reasons: Default::default(),
            });
        }
        r.ceilings = vec![("gateway".into(), 9000.0), ("litellm".into(), 140.0)];
        r.fallback.push(crate::suite::FallbackRow {
            case: "backup alone (primary skipped by X-LLM-Provider)".into(),
            latency: summary(&[0.4]),
        });
        r.fallback.push(crate::suite::FallbackRow {
            case: "primary refuses connections".into(),
            latency: summary(&[0.5]),
        });
        for (case, ms) in [("backup alone", 80.0), ("primary refuses connections", 2000.0)] {
            r.peer_fallback.push(crate::suite::PeerFallbackRow {
                peer: "litellm".into(),
                case: case.into(),
                latency: summary(&[ms]),
            });
        }
        let md = markdown(&r);
        assert!(
            md.contains("| litellm | PyPI litellm[proxy]==1.100.5 | 1.100.5 | yes |"),
            "{md}"
        );
        assert!(
            md.contains("| portkey | npm @portkey-ai/gateway@1.15.2 | no | **no**: install failed: npm install exited with 1 \\| E404 |"),
            "the reason, with its table-breaking | escaped:\n{md}"
        );
        assert!(
            md.contains("| 1000 | gateway | 0.600 | 0.600 | 1.20× / 1.20× |"),
            "{md}"
        );
        assert!(
            md.contains("| 1000 | litellm (rate above its ceiling: queueing) | 11.000 |"),
            "{md}"
        );
        assert!(md.contains("| litellm | primary refuses connections | 1 | 0 | 2000.000 | 2000.000 | 1920.000 | 1920.000 |"), "{md}");
        assert!(
            md.contains("| gateway | primary refuses connections | 1 | 0 | 0.500 | 0.500 | 0.100 | 0.100 |"),
            "{md}"
        );
    }

    #[test]
    fn stream_targets_are_judged_against_the_forwarder_and_0_1_ms() {
        let met = stream_verdict(100, 1.2, 1.0, 0.05, 0.04);
        assert!(
            met.contains("1.20× the forwarder's 1.000 ms (target ≤ 1.5×: met)"),
            "{met}"
        );
        assert!(
            met.contains("added chunk latency p99 0.050 ms, the forwarder's 0.040 ms (target < 0.1 ms: met)"),
            "{met}"
        );
        let missed = stream_verdict(1000, 3.1, 2.0, 0.1, 0.0);
        assert!(
            missed.contains("1.55× the forwarder's 2.000 ms (target ≤ 1.5×: **missed**)"),
            "{missed}"
        );
        assert!(missed.contains("(target < 0.1 ms: **missed**)"), "{missed}");
        // A forwarder within noise (≤ 0 added) leaves no ratio: the gateway must add nothing either.
        assert!(stream_verdict(10, -0.2, -0.5, 0.0, 0.0)
            .contains("within noise; target ≤ 1.5× the forwarder's: met"));
        assert!(stream_verdict(10, 0.3, -0.5, 0.0, 0.0)
            .contains("within noise; target ≤ 1.5× the forwarder's: **missed**"));
    }

    #[test]
    fn the_stream_section_shows_each_target_and_the_memory_per_open_stream() {
        let mut r = Results::new(String::new(), String::new(), String::new());
        r.stream_setup = Some(crate::suite::StreamSetup {
            delay_ms: 50,
            chunks: 32,
        });
        for (target, ttft, chunk) in [
            ("direct", 51.0, 0.1),
            ("forwarder", 51.5, 0.15),
            ("forwarder-held", 51.55, 0.15),
            ("gateway", 51.6, 0.16),
        ] {
            r.streams.push(crate::suite::StreamRow {
                target: target.into(),
                concurrency: 10,
                ttft: summary(&[ttft]),
                gap: summary(&[50.0]),
                chunk_latency: summary(&[chunk]),
            });
        }
        r.stream_memory.push(crate::suite::MemoryRow {
            target: "gateway".into(),
            open: crate::streams::OpenStreams {
                streams: 1000,
                open: 1000,
                failed: 0,
                before_bytes: 20_000_000,
                open_bytes: 70_000_000,
            },
            per_stream_bytes: Some(50_000.0),
        });
        let md = markdown(&r);
        assert!(md.contains("32 content chunks 50 ms apart"), "{md}");
        assert!(
            md.contains("| 10 | gateway | 0.600 / 0.600 | 1.20× | 0.060 / 0.060 |"),
            "{md}"
        );
        assert!(
            md.contains("- 10 streams: gateway added TTFT p99 0.600 ms = 1.20×"),
            "{md}"
        );
        // The held forwarder is a row of its own and the line under the verdict.
        assert!(
            md.contains("| 10 | forwarder-held | 0.550 / 0.550 | 1.10× |"),
            "{md}"
        );
        assert!(
            md.contains("added TTFT p99 is 1.09× that forwarder's and its p50 +0.050 ms from it."),
            "{md}"
        );
        assert!(
            md.contains("| gateway | 1000 | 1000 | 0 | 20.0 | 70.0 | 50.0 |"),
            "{md}"
        );
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
