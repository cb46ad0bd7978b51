//! The standard suite, in process: one test per scenario file (so nextest runs and reports them one by one), plus
//! a test that every file of `scenarios/suites/` is listed here and that the suite plans at least 10,000 requests.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::path::PathBuf;

use llm_scenarios::format::{self, Scenario, Stop};
use llm_scenarios::report::console;
use llm_scenarios::{run_scenario, RunOptions};

fn suite_dir() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("suites")
}

async fn run_file(file: &str) {
    let sc = format::load(&suite_dir().join(file)).unwrap_or_else(|e| panic!("{e}"));
    let progress = llm_scenarios::progress::Progress::new(false);
    let report = run_scenario(&sc, &RunOptions::default(), &progress).await;
    let table = console::scenario(&report, true);
    println!("{table}");
    assert!(report.passed, "scenario {} failed:\n{table}", sc.name);
}

macro_rules! suite {
    ($($test:ident => $file:literal),* $(,)?) => {
        $(
            #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
            async fn $test() {
                run_file($file).await;
            }
        )*
        const FILES: &[&str] = &[$($file),*];
    };
}

suite! {
    healthy_baseline => "01_healthy_baseline.yaml",
    primary_refused => "02_primary_refused.yaml",
    primary_black_hole => "03_primary_black_hole.yaml",
    primary_reset => "04_primary_reset.yaml",
    primary_slow => "05_primary_slow.yaml",
    primary_quota_exhausted => "06_primary_quota_exhausted.yaml",
    rate_limit_retry_after => "07_rate_limit_retry_after.yaml",
    kimi_overloaded => "08_kimi_overloaded.yaml",
    qwen_arrearage => "09_qwen_arrearage.yaml",
    gigachat_token_expiry => "10_gigachat_token_expiry.yaml",
    gigachat_oauth_failure => "11_gigachat_oauth_failure.yaml",
    no_internet => "12_no_internet.yaml",
    forced_offline => "13_forced_offline.yaml",
    stream_cut_before_first_byte => "14_stream_cut_before_first_byte.yaml",
    stream_cut_after_first_byte => "15_stream_cut_after_first_byte.yaml",
    stream_stall => "16_stream_stall.yaml",
    flapping_provider => "17_flapping_provider.yaml",
    content_refusal_fallback => "18_content_refusal_fallback.yaml",
    content_refusal_return => "19_content_refusal_return.yaml",
    malformed_upstream => "20_malformed_upstream.yaml",
    everything_down => "21_everything_down.yaml",
    provider_header => "22_provider_header.yaml",
    stale_cache => "23_stale_cache.yaml",
    client_errors_dont_cool_providers => "24_client_errors_dont_cool_providers.yaml",
    embeddings_fallback_same_space => "25_embeddings_fallback_same_space.yaml",
    vision_and_tools_fallback => "26_vision_and_tools_fallback.yaml",
    cut_streams_open_the_breaker => "27_cut_streams_open_the_breaker.yaml",
    mcp_primary_quota_exhausted => "28_mcp_primary_quota_exhausted.yaml",
    replicas_client_key_limit => "29_replicas_client_key_limit.yaml",
    replicas_quota_found_by_one => "30_replicas_quota_found_by_one.yaml",
    replicas_mode_switch => "31_replicas_mode_switch.yaml",
    replicas_redis_black_hole => "32_replicas_redis_black_hole.yaml",
    agent_apis_primary_quota_exhausted => "33_agent_apis_primary_quota_exhausted.yaml",
    agent_apis_stream_cut_after_first_delta => "34_agent_apis_stream_cut_after_first_delta.yaml",
    agent_apis_no_internet => "35_agent_apis_no_internet.yaml",
    agent_apis_function_call_round_trip => "36_agent_apis_function_call_round_trip.yaml",
}

fn planned(sc: &Scenario) -> u64 {
    let count = |l: &format::Load| match l.stop {
        Stop::Count(n) => n,
        Stop::Duration(_) => 0,
    };
    let steady = sc.steady_state.as_ref().map(|s| 2 * count(&s.load)).unwrap_or(0);
    steady
        + sc.phases
            .iter()
            .filter_map(|p| p.load.as_ref())
            .map(count)
            .sum::<u64>()
}

#[test]
fn every_suite_file_is_tested_and_the_suite_sends_10k_requests() {
    let files = format::discover(&[suite_dir()]).unwrap();
    let names: Vec<String> = files
        .iter()
        .map(|f| f.file_name().unwrap().to_string_lossy().into_owned())
        .collect();
    let mut listed: Vec<String> = FILES.iter().map(|s| s.to_string()).collect();
    listed.sort();
    assert_eq!(
        names, listed,
        "every file in scenarios/suites/ needs a test in tests/suite.rs"
    );
    let scenarios: Vec<Scenario> = files
        .iter()
        .map(|f| format::load(f).unwrap_or_else(|e| panic!("{e}")))
        .collect();
    // Requests of count-based loads only (duration-based loads add more at run time).
    let total: u64 = scenarios.iter().map(planned).sum();
    assert!(total >= 10_000, "the suite plans only {total} requests");
}
