//! The SVG timeline of one scenario: requests over time as stacked bars coloured by who served them (failures in
//! red), fault windows shaded, stage boundaries marked, and below it each request's latency (log scale) with each
//! stage's p95 drawn as a line.

use std::collections::BTreeMap;
use std::fmt::Write;

use super::{escape, ScenarioReport};
use crate::load::Sample;

const W: f64 = 960.0;
const LEFT: f64 = 56.0;
const RIGHT: f64 = 12.0;
const TOP: f64 = 30.0;
const BARS_H: f64 = 120.0;
const GAP: f64 = 34.0;
const LAT_H: f64 = 110.0;
const BUCKETS: usize = 80;
/// At most this many latency dots per scenario (evenly thinned) to keep the page small.
const MAX_DOTS: usize = 1500;

/// Colour of a serving provider (or of a failure).
pub fn colour(key: &str) -> &'static str {
    match key {
        "openai" => "#2b7bb9",
        "kimi" => "#8e44ad",
        "qwen" => "#e67e22",
        "gigachat" => "#16a085",
        "ollama" => "#7f8c8d",
        "cache" => "#c0a000",
        "offline-package" => "#34495e",
        "error" => "#d62728",
        _ => "#95a5a6",
    }
}

/// What a sample is coloured by: the provider that served it, its source when no provider, or `error`.
pub fn key(s: &Sample) -> String {
    if !s.ok {
        return "error".into();
    }
    match (&s.provider, &s.source) {
        (Some(p), _) => p.clone(),
        (None, Some(src)) => src.clone(),
        _ => "other".into(),
    }
}

fn lat_y(v: f64, lo: f64, hi: f64) -> f64 {
    let (l, h) = (lo.log10(), hi.log10());
    let t = ((v.max(lo).log10() - l) / (h - l)).clamp(0.0, 1.0);
    TOP + BARS_H + GAP + LAT_H * (1.0 - t)
}

/// Renders the timeline.
pub fn timeline(r: &ScenarioReport) -> String {
    let end = r
        .stages
        .iter()
        .map(|s| s.end)
        .chain(r.samples.iter().map(|s| s.start + s.latency))
        .fold(0.1_f64, f64::max);
    let plot_w = W - LEFT - RIGHT;
    let x = |t: f64| LEFT + plot_w * (t / end).clamp(0.0, 1.0);
    let height = TOP + BARS_H + GAP + LAT_H + 30.0;
    let mut o = String::new();
    let _ = write!(
        o,
        "<svg xmlns=\"http://www.w3.org/2000/svg\" viewBox=\"0 0 {W} {height}\" width=\"100%\" role=\"img\" \
         aria-label=\"timeline of {}\" font-family=\"sans-serif\" font-size=\"10\">",
        escape(&r.name)
    );
    // Fault windows and stage boundaries.
    for (i, st) in r.stages.iter().enumerate() {
        if st.skipped {
            continue;
        }
        let (x0, x1) = (x(st.start), x(st.end));
        if !st.faults.is_empty() {
            let _ = write!(
                o,
                "<rect x=\"{x0:.1}\" y=\"{TOP}\" width=\"{:.1}\" height=\"{:.1}\" fill=\"#f4b6b6\" opacity=\"0.45\"><title>{}</title></rect>",
                (x1 - x0).max(1.0),
                BARS_H + GAP + LAT_H,
                escape(&st.faults.join("\n"))
            );
        }
        let _ = write!(o, "<line x1=\"{x0:.1}\" x2=\"{x0:.1}\" y1=\"{TOP}\" y2=\"{:.1}\" stroke=\"#999\" stroke-dasharray=\"2,2\"/>", TOP + BARS_H + GAP + LAT_H);
        // Two rows of stage names, so short stages side by side do not write over each other; names near
        // the right edge end at their stage's start.
        let anchor = if x0 > W - RIGHT - 150.0 { "end" } else { "start" };
        let _ = write!(
            o,
            "<text x=\"{:.1}\" y=\"{:.1}\" fill=\"#333\" text-anchor=\"{anchor}\">{}</text>",
            if anchor == "end" { x0 - 2.0 } else { x0 + 2.0 },
            TOP - 5.0 - 11.0 * (i % 2) as f64,
            escape(&st.name)
        );
    }
    // Requests over time, stacked by who served them.
    let width = end / BUCKETS as f64;
    let mut buckets: Vec<BTreeMap<String, u32>> = vec![BTreeMap::new(); BUCKETS];
    for s in &r.samples {
        let i = ((s.start / width) as usize).min(BUCKETS - 1);
        *buckets[i].entry(key(s)).or_default() += 1;
    }
    let max = buckets
        .iter()
        .map(|b| b.values().sum::<u32>())
        .max()
        .unwrap_or(0)
        .max(1);
    let bw = plot_w / BUCKETS as f64;
    for (i, b) in buckets.iter().enumerate() {
        let mut y = TOP + BARS_H;
        for (k, n) in b {
            let h = BARS_H * f64::from(*n) / f64::from(max);
            y -= h;
            let _ = write!(
                o,
                "<rect x=\"{:.1}\" y=\"{y:.1}\" width=\"{:.1}\" height=\"{h:.1}\" fill=\"{}\"><title>{k}: {n}</title></rect>",
                LEFT + bw * i as f64,
                (bw - 0.5).max(0.5),
                colour(k)
            );
        }
    }
    let _ = write!(o, "<text x=\"4\" y=\"{:.1}\">{max} req</text>", TOP + 10.0);
    let _ = write!(
        o,
        "<text x=\"4\" y=\"{:.1}\">per {:.0} ms</text>",
        TOP + 22.0,
        width * 1e3
    );
    // Latency dots (log scale) and each stage's p95.
    let (lo, hi) = (
        0.001_f64,
        r.samples.iter().map(|s| s.latency).fold(0.01_f64, f64::max) * 1.2,
    );
    for (v, label) in [
        (0.001, "1ms"),
        (0.01, "10ms"),
        (0.1, "100ms"),
        (1.0, "1s"),
        (10.0, "10s"),
    ] {
        if v <= hi {
            let y = lat_y(v, lo, hi);
            let _ = write!(o, "<line x1=\"{LEFT}\" x2=\"{:.1}\" y1=\"{y:.1}\" y2=\"{y:.1}\" stroke=\"#ddd\"/><text x=\"4\" y=\"{:.1}\">{label}</text>", W - RIGHT, y + 3.0);
        }
    }
    let step = r.samples.len().div_ceil(MAX_DOTS).max(1);
    for s in r.samples.iter().step_by(step) {
        let _ = write!(
            o,
            "<circle cx=\"{:.1}\" cy=\"{:.1}\" r=\"1.6\" fill=\"{}\" opacity=\"0.6\"/>",
            x(s.start),
            lat_y(s.latency, lo, hi),
            colour(&key(s))
        );
    }
    for st in r.stages.iter().filter(|s| s.summary.requests > 0) {
        let y = lat_y(st.summary.p95, lo, hi);
        let _ = write!(
            o,
            "<line x1=\"{:.1}\" x2=\"{:.1}\" y1=\"{y:.1}\" y2=\"{y:.1}\" stroke=\"#000\" stroke-width=\"1.5\"><title>{} p95 {:.1} ms</title></line>",
            x(st.start),
            x(st.end),
            escape(&st.name),
            st.summary.p95 * 1e3
        );
    }
    let base = TOP + BARS_H + GAP + LAT_H;
    let _ = write!(o, "<text x=\"{LEFT}\" y=\"{:.1}\">0 s</text><text x=\"{:.1}\" y=\"{:.1}\" text-anchor=\"end\">{end:.2} s</text>", base + 14.0, W - RIGHT, base + 14.0);
    let _ = write!(o, "<text x=\"{:.1}\" y=\"{:.1}\" text-anchor=\"middle\">latency per request (log), black line: stage p95; red band: fault window</text>", LEFT + plot_w / 2.0, base + 14.0);
    o.push_str("</svg>");
    o
}
