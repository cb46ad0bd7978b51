//! Running scenarios: bring the stand up, check the steady state, run the phases (faults, load, checks), roll back
//! (always), check the steady state again, tear down.

use std::collections::BTreeMap;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use tokio::time::Instant;

use crate::evaluate::{evaluate, JournalCounts, Window};
use crate::faults::{self, Applied};
use crate::format::{Check, Fault, Load, Scenario, Stop};
use crate::load::{self, Sample};
use crate::metrics::Scrape;
use crate::progress::Progress;
use crate::report::{RunReport, ScenarioReport, StageKind, StageReport, Summary};
use crate::stand::{Stand, StandOptions};

/// Options for a run.
#[derive(Debug, Clone, Default)]
pub struct RunOptions {
    /// How to bring the stand up.
    pub stand: StandOptions,
    /// Draw a progress line on stderr (when it is a terminal).
    pub progress: bool,
    /// Print each scenario's table as soon as it finishes.
    pub print: bool,
    /// Print every check, not only the failed ones.
    pub verbose: bool,
    /// Write each scenario's offline-incident report (the gateway's `docs/templates/offline_incident_report.md`
    /// filled from the run's own `/metrics` scrapes) to this folder.
    pub incident_reports: Option<std::path::PathBuf>,
}

/// How often `/metrics` is scraped for an incident report.
pub const INCIDENT_SCRAPE_EVERY: Duration = Duration::from_millis(250);

fn unix_secs() -> f64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_secs_f64())
        .unwrap_or(0.0)
}

type Snapshot = (f64, Vec<(String, BTreeMap<String, String>, f64)>);

async fn snapshot(stand: &Stand) -> Option<Snapshot> {
    let text = stand.scrape().await.ok()?;
    let series = Scrape::parse(&text)
        .series
        .into_iter()
        .map(|s| (s.name, s.labels, s.value))
        .collect();
    Some((unix_secs(), series))
}

/// Scrapes `/metrics` every [`INCIDENT_SCRAPE_EVERY`] until `stop`, then once more.
async fn record_scrapes(stand: &Stand, mut stop: tokio::sync::oneshot::Receiver<()>) -> Vec<Snapshot> {
    let mut out = Vec::new();
    loop {
        out.extend(snapshot(stand).await);
        tokio::select! {
            _ = &mut stop => break,
            () = tokio::time::sleep(INCIDENT_SCRAPE_EVERY) => {}
        }
    }
    out.extend(snapshot(stand).await);
    out
}

/// The offline-incident report of one rehearsal, from its scrapes; the stages are marked on the timeline.
pub fn incident_report(report: &ScenarioReport, t0_unix: f64, snapshots: Vec<Snapshot>) -> String {
    use llm_gateway::ops::incident;
    let from = snapshots.first().map_or(t0_unix, |s| s.0.min(t0_unix));
    let to = snapshots.last().map_or(t0_unix, |s| s.0);
    let mut m = incident::Measurements::from_snapshots(
        from,
        to,
        format!(
            "rehearsal {} (llm-scenarios, the gateway's /metrics scraped every {} ms)",
            report.name,
            INCIDENT_SCRAPE_EVERY.as_millis()
        ),
        snapshots,
    );
    for st in report.stages.iter().filter(|s| !s.skipped) {
        let faults = if st.faults.is_empty() {
            String::new()
        } else {
            format!(" (faults: {})", st.faults.join("; "))
        };
        m.marks.push(incident::Mark {
            at: t0_unix + st.start,
            text: format!("rehearsal stage {} started{faults}", st.name),
        });
    }
    if m.series.is_empty() {
        m.problems
            .push("no /metrics scrape of the gateway succeeded during the run".into());
    }
    incident::render(&incident::analyse(&m))
}

/// What one stage does.
struct StageSpec<'a> {
    name: &'a str,
    kind: StageKind,
    index: usize,
    faults: &'a [Fault],
    pause_before: Duration,
    mode: Option<&'a str>,
    load: Option<&'a Load>,
    duration: Option<Duration>,
    expect: &'a [Check],
}

fn is_inference(path: &str) -> bool {
    path.contains("chat") || path.contains("generat") || path.contains("embed")
}

fn journal_counts(stand: &Stand, from: SystemTime, to: SystemTime) -> BTreeMap<String, JournalCounts> {
    let mut out = BTreeMap::new();
    for (name, fake) in &stand.fakes {
        let mut c = JournalCounts::default();
        for e in fake.journal().iter().filter(|e| e.time >= from && e.time <= to) {
            c.all += 1;
            if e.path.contains("oauth") {
                c.oauth += 1;
            } else if is_inference(&e.path) {
                c.inference += 1;
            }
        }
        out.insert(name.clone(), c);
    }
    out
}

async fn scrape(stand: &Stand, errors: &mut Vec<String>) -> Option<Scrape> {
    match stand.scrape().await {
        Ok(text) => Some(Scrape::parse(&text)),
        Err(e) => {
            errors.push(format!("metrics scrape failed: {e}"));
            None
        }
    }
}

async fn stage(
    stand: &Stand,
    sc: &Scenario,
    spec: StageSpec<'_>,
    t0: Instant,
    progress: &Progress,
) -> (StageReport, Vec<Sample>) {
    let start = t0.elapsed().as_secs_f64();
    let begin = Instant::now();
    let mut errors = Vec::new();
    let mut applied = Applied::default();
    let mut samples = Vec::new();
    let mut journal = BTreeMap::new();
    let mut checks = Vec::new();
    let fault_ok = match faults::apply(stand, spec.faults, &mut applied).await {
        Ok(()) => true,
        Err(e) => {
            errors.push(format!("cannot apply the faults: {e}"));
            false
        }
    };
    let mode_ok = match spec.mode {
        Some(m) => stand
            .set_mode(m)
            .await
            .map_err(|e| errors.push(format!("cannot switch mode: {e}")))
            .is_ok(),
        None => true,
    };
    if fault_ok && mode_ok {
        tokio::time::sleep(spec.pause_before).await;
        let before = scrape(stand, &mut errors).await;
        let from = SystemTime::now();
        let loaded = Instant::now();
        if let Some(l) = spec.load {
            let total = match l.stop {
                Stop::Count(n) => Some(n),
                Stop::Duration(_) => None,
            };
            progress.stage(format!("{} / {}", sc.name, spec.name), total);
            let target = load::Target {
                http: stand.http.clone(),
                gateway_urls: stand.gateway_urls.clone().into(),
                seed: sc.seed.wrapping_add(spec.index as u64),
                stage: spec.name.into(),
                t0,
            };
            samples = load::run(&target, l, progress).await;
        }
        if let Some(d) = spec.duration {
            let left = d.saturating_sub(loaded.elapsed());
            tokio::time::sleep(left).await;
        }
        let after = scrape(stand, &mut errors).await;
        journal = journal_counts(stand, from, SystemTime::now());
        let window = Window {
            samples: &samples,
            before: before.as_ref(),
            after: after.as_ref(),
            journal: &journal,
        };
        checks = spec.expect.iter().map(|c| evaluate(c, &window)).collect();
    }
    for e in faults::remove(stand, applied).await {
        errors.push(format!("cannot remove a fault: {e}"));
    }
    tracing::debug!(scenario = %sc.name, stage = spec.name, ms = begin.elapsed().as_millis() as u64, "stage done");
    let report = StageReport {
        name: spec.name.to_string(),
        kind: spec.kind,
        start,
        end: t0.elapsed().as_secs_f64(),
        faults: spec.faults.iter().map(Fault::describe).collect(),
        skipped: false,
        errors,
        summary: Summary::of(&samples),
        journal,
        checks,
    };
    (report, samples)
}

fn skipped(name: &str, faults: &[Fault]) -> StageReport {
    StageReport {
        name: name.to_string(),
        kind: StageKind::Phase,
        start: 0.0,
        end: 0.0,
        faults: faults.iter().map(Fault::describe).collect(),
        skipped: true,
        errors: vec!["skipped: the steady state before the faults did not hold".into()],
        summary: Summary::default(),
        journal: BTreeMap::new(),
        checks: Vec::new(),
    }
}

/// Seed offset of the steady state before (phases use their index).
pub const STEADY_BEFORE: usize = usize::MAX - 1;
/// Seed offset of the steady state after.
pub const STEADY_AFTER: usize = usize::MAX;

/// The steady state before, the phases, the rollback and the steady state after, on a running stand.
async fn run_stages(
    stand: &Stand,
    sc: &Scenario,
    t0: Instant,
    progress: &Progress,
    report: &mut ScenarioReport,
) {
    let mut gate = true;
    if let Some(ss) = &sc.steady_state {
        let spec = StageSpec {
            name: "steady-state-before",
            kind: StageKind::SteadyBefore,
            index: STEADY_BEFORE,
            faults: &[],
            pause_before: Duration::ZERO,
            mode: None,
            load: Some(&ss.load),
            duration: None,
            expect: &ss.expect,
        };
        let (r, s) = stage(stand, sc, spec, t0, progress).await;
        gate = r.passed();
        report.stages.push(r);
        report.samples.extend(s);
    }
    for (i, p) in sc.phases.iter().enumerate() {
        if !gate {
            report.stages.push(skipped(&p.name, &p.faults));
            continue;
        }
        let spec = StageSpec {
            name: &p.name,
            kind: StageKind::Phase,
            index: i,
            faults: &p.faults,
            pause_before: p.pause_before,
            mode: p.mode.as_deref(),
            load: p.load.as_ref(),
            duration: p.duration,
            expect: &p.expect,
        };
        let (r, s) = stage(stand, sc, spec, t0, progress).await;
        report.stages.push(r);
        report.samples.extend(s);
    }
    report.rollback = faults::rollback(stand, &sc.rollback).await;
    if let (Some(ss), true) = (&sc.steady_state, gate) {
        tokio::time::sleep(ss.recovery_wait).await;
        let spec = StageSpec {
            name: "steady-state-after",
            kind: StageKind::SteadyAfter,
            index: STEADY_AFTER,
            faults: &[],
            pause_before: Duration::ZERO,
            mode: None,
            load: Some(&ss.load),
            duration: None,
            expect: &ss.expect,
        };
        let (r, s) = stage(stand, sc, spec, t0, progress).await;
        report.stages.push(r);
        report.samples.extend(s);
    }
}

/// Runs one scenario on a fresh stand.
pub async fn run_scenario(sc: &Scenario, opts: &RunOptions, progress: &Progress) -> ScenarioReport {
    let t0 = Instant::now();
    let t0_unix = unix_secs();
    let mut report = ScenarioReport {
        name: sc.name.clone(),
        file: sc.file.display().to_string(),
        description: sc.description.clone(),
        tags: sc.tags.clone(),
        seed: sc.seed,
        passed: false,
        errors: Vec::new(),
        wall_seconds: 0.0,
        requests: 0,
        stages: Vec::new(),
        rollback: Vec::new(),
        samples: Vec::new(),
        incident_report: None,
    };
    let stand =
        match Stand::start_replicas(&sc.gateway.parsed, sc.seed, &opts.stand, sc.gateway.replicas).await {
            Ok(s) => s,
            Err(e) => {
                report.errors.push(format!("the stand did not come up: {e}"));
                report.wall_seconds = t0.elapsed().as_secs_f64();
                return report;
            }
        };
    match &opts.incident_reports {
        Some(dir) => {
            let (stop_tx, stop_rx) = tokio::sync::oneshot::channel();
            let stages = async {
                run_stages(&stand, sc, t0, progress, &mut report).await;
                let _ = stop_tx.send(());
            };
            let ((), snapshots) = tokio::join!(stages, record_scrapes(&stand, stop_rx));
            let file: String = report
                .name
                .chars()
                .map(|c| {
                    if c.is_ascii_alphanumeric() || matches!(c, '-' | '_' | '.') {
                        c
                    } else {
                        '_'
                    }
                })
                .collect();
            let path = dir.join(format!("{file}.md"));
            let text = incident_report(&report, t0_unix, snapshots);
            let written = std::fs::create_dir_all(dir).and_then(|()| std::fs::write(&path, text));
            match written {
                Ok(()) => report.incident_report = Some(path.display().to_string()),
                Err(e) => report.errors.push(format!(
                    "cannot write the incident report {}: {e}",
                    path.display()
                )),
            }
        }
        None => run_stages(&stand, sc, t0, progress, &mut report).await,
    }
    stand.shutdown().await;
    report.requests = report.samples.len() as u64;
    report.passed = report.errors.is_empty()
        && report.stages.iter().all(StageReport::passed)
        && report.rollback.iter().all(|r| r.ok);
    report.wall_seconds = t0.elapsed().as_secs_f64();
    report
}

/// Runs scenarios one after the other (each on its own stand) and prints each result when `opts.print`.
pub async fn run_all(scenarios: &[Scenario], opts: &RunOptions) -> RunReport {
    let started_unix = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_secs())
        .unwrap_or(0);
    let t0 = Instant::now();
    let progress = Progress::new(opts.progress);
    let mut out = Vec::new();
    for sc in scenarios {
        let r = run_scenario(sc, opts, &progress).await;
        if opts.print {
            progress.clear();
            print!("{}", crate::report::console::scenario(&r, opts.verbose));
        }
        out.push(r);
    }
    progress.finish();
    RunReport {
        started_unix,
        wall_seconds: t0.elapsed().as_secs_f64(),
        total_requests: out.iter().map(|s| s.requests).sum(),
        passed: out.iter().all(|s| s.passed),
        scenarios: out,
    }
}
