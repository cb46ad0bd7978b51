//! Format errors: each test changes one thing in the known-good fixture and asserts the exact message (file, YAML
//! path, what was expected).
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::path::PathBuf;

use llm_scenarios::format::{self, FormatError, Measure, Stop};

fn fixture() -> (PathBuf, String) {
    let path = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("fixtures/valid.yaml");
    let text = std::fs::read_to_string(&path).unwrap();
    (path, text)
}

/// The fixture with `from` replaced by `to` (which must occur exactly once).
fn mutated(from: &str, to: &str) -> Result<format::Scenario, FormatError> {
    let (path, text) = fixture();
    assert_eq!(
        text.matches(from).count(),
        1,
        "{from:?} must occur once in the fixture"
    );
    format::parse(&text.replace(from, to), &path)
}

/// The error text without the file prefix.
fn error(from: &str, to: &str) -> String {
    let e = mutated(from, to).expect_err("the mutation must be rejected");
    let (path, _) = fixture();
    let text = e.to_string();
    let prefix = format!("{}: ", path.display());
    assert!(text.starts_with(&prefix), "the error names the file: {text}");
    text[prefix.len()..].to_string()
}

#[test]
fn the_fixture_is_valid_and_complete() {
    let (path, text) = fixture();
    let sc = format::parse(&text, &path).unwrap_or_else(|e| panic!("{e}"));
    assert_eq!(sc.name, "fixture-valid");
    assert_eq!(sc.seed, 7);
    assert_eq!(sc.phases.len(), 2);
    assert_eq!(sc.phases[0].faults.len(), 4);
    assert_eq!(sc.phases[0].load.as_ref().unwrap().stop, Stop::Count(50));
    assert!(matches!(
        sc.phases[1].load.as_ref().unwrap().stop,
        Stop::Duration(_)
    ));
    assert_eq!(sc.phases[0].expect.len(), 15);
    assert!(sc.phases[0]
        .expect
        .iter()
        .any(|c| matches!(c.measure, Measure::Journal { .. })));
    assert_eq!(
        sc.gateway.parsed.policy.attempt_timeout,
        std::time::Duration::from_secs(2),
        "overrides merged"
    );
    assert_eq!(sc.rollback.len(), 3);
}

#[test]
fn unknown_key_names_its_path() {
    assert_eq!(
        error("    duration: 1s\n", "    duraton: 1s\n"),
        "phases[0].duraton: unknown field `duraton`, expected one of `name`, `duration`, `pause_before`, `mode`, `faults`, `load`, `expect` at line 17 column 5"
    );
    assert_eq!(
        error("      fell_back:", "      fellback:"),
        "phases[0].expect.fellback: unknown field `fellback`, expected one of `requests`, `success_rate`, `status_5xx`, `status`, `served_by`, `source`, `fell_back`, `latency`, `fallback_latency`, `metrics`, `journal`, `streams`, `error_code`, `finish_reason`, `error_lists` at line 39 column 7"
    );
}

#[test]
fn unknown_key_in_a_fault() {
    assert_eq!(
        error("{ proxy: kimi, enabled: false }", "{ proxy: kimi, enabled: false, direction: up }"),
        "phases[0].faults[1].direction: unknown field `direction`, expected one of `proxy`, `toxic`, `name`, `stream`, `toxicity`, `attributes`, `enabled`, `fake`, `fault`, `times`, `probability`, `after_requests`, `retry_after_s`, `after_chunks`, `delay_ms`, `latency_ms`, `token_ttl_ms`, `stream_delay_ms` at line 21 column 40"
    );
}

#[test]
fn wrong_version() {
    assert_eq!(
        error("version: 1\n", "version: 2\n"),
        "1 problem(s):\n  - version: unsupported version 2; expected 1"
    );
}

#[test]
fn missing_version() {
    assert_eq!(
        error("version: 1\n", ""),
        "(top level): missing field `version` at line 2 column 1"
    );
}

#[test]
fn unknown_toxic_type() {
    assert_eq!(
        error("toxic: latency", "toxic: latncy"),
        "1 problem(s):\n  - phases[0].faults[0].toxic: unknown toxic type \"latncy\"; expected one of bandwidth, latency, limit_data, noop, reset_peer, slicer, slow_close, timeout"
    );
}

#[test]
fn unknown_toxic_attribute() {
    assert_eq!(
        error("jitter: 5", "jiter: 5"),
        "1 problem(s):\n  - phases[0].faults[0].attributes.jiter: unknown attribute \"jiter\" for toxic latency; expected latency, jitter"
    );
}

#[test]
fn unknown_proxy_and_fake_names() {
    assert_eq!(
        error("{ proxy: kimi, enabled: false }", "{ proxy: kimmi, enabled: false }"),
        "1 problem(s):\n  - phases[0].faults[1].proxy: unknown proxy \"kimmi\"; expected one of gigachat, kimi, ollama, openai, qwen or \"*\""
    );
    assert_eq!(
        error("fault: rate_limited", "fault: rate_limit"),
        "1 problem(s):\n  - phases[0].faults[2].fault: unknown fault \"rate_limit\"; expected one of rate_limited, quota_exhausted, overloaded, server_error, auth, bad_request, context_length, content_filter, malformed, truncated_stream, stream_error, slow, drop_connection"
    );
}

#[test]
fn fault_needs_proxy_or_fake() {
    assert_eq!(
        error("{ proxy: kimi, enabled: false }", "{ fake: kimi, proxy: kimi, enabled: false }"),
        "1 problem(s):\n  - phases[0].faults[1]: a fault needs exactly one of `proxy` (a chaos toxic or proxy state) or `fake` (a fake provider fault)"
    );
    assert_eq!(
        error(
            "{ fake: qwen, fault: rate_limited, times: 2, retry_after_s: 1 }",
            "{ fake: qwen, fault: rate_limited, stream: upstream }"
        ),
        "1 problem(s):\n  - phases[0].faults[2].stream: `stream` does not apply to fake faults"
    );
}

#[test]
fn bounds_need_an_operator_and_the_right_unit() {
    assert_eq!(
        error("success_rate: \">= 99%\"", "success_rate: \"99%\""),
        "1 problem(s):\n  - phases[0].expect.success_rate: \"99%\" does not start with an operator; expected e.g. \">= 99%\", \"< 500ms\" or \"== 0\" (operators < <= > >= == !=)"
    );
    assert_eq!(
        error("p95: \"< 2s\"", "p95: \"< 2\""),
        "1 problem(s):\n  - phases[0].expect.latency.p95: \"< 2\": expected a duration, e.g. \"< 500ms\""
    );
    assert_eq!(
        error("served_by: { openai: \">= 0.5\" }", "served_by: { openai: \">= 5\" }"),
        "1 problem(s):\n  - phases[0].expect.served_by.openai: \">= 5\": a rate is a fraction from 0 to 1 or a percentage such as 99%"
    );
}

#[test]
fn metric_checks_are_parsed() {
    assert_eq!(
        error("{from=\"openai\"} >= 0", "{from=openai} >= 0"),
        "1 problem(s):\n  - phases[0].expect.metrics[0]: \"llm_gateway_fallbacks_total{from=openai} >= 0\": the value of label \"from\" must be in double quotes"
    );
}

#[test]
fn requests_and_duration_are_exclusive() {
    assert_eq!(
        error("      requests: 50\n", "      requests: 50\n      duration: 2s\n"),
        "1 problem(s):\n  - phases[0].load: `requests` and `duration` are exclusive; expected one of them"
    );
}

#[test]
fn durations_are_checked() {
    assert_eq!(
        error("pause_before: 10ms", "pause_before: soon"),
        "1 problem(s):\n  - phases[0].pause_before: \"soon\" is not a duration (expected number at 0); expected e.g. 500ms, 2s, 1m"
    );
}

#[test]
fn gateway_config_must_exist_and_be_accepted_by_the_gateway() {
    let e = error(
        "config: ../../config/llm_gateway_simulation.yaml",
        "config: ../../config/missing.yaml",
    );
    assert!(
        e.starts_with("1 problem(s):\n  - gateway.config: cannot read the gateway config "),
        "{e}"
    );
    assert!(e.contains("missing.yaml"), "{e}");
    let e = error("{ attempt_timeout: 2s }", "{ attempt_timeout: 2s, deadline: 1s }");
    assert!(
        e.starts_with("1 problem(s):\n  - gateway.overrides: the gateway refused its config "),
        "{e}"
    );
    assert!(e.contains("fallback_policy.attempt_timeout"), "{e}");
}

#[test]
fn every_problem_is_reported_at_once() {
    let (path, text) = fixture();
    let text = text
        .replace("version: 1", "version: 3")
        .replace("mode: offline", "mode: airplane")
        .replace("rollback: [reset_chaos", "rollback: [reset_all");
    let e = format::parse(&text, &path).unwrap_err();
    let FormatError::Invalid { problems, .. } = e else {
        panic!("{e}")
    };
    let paths: Vec<&str> = problems.iter().map(|p| p.path.as_str()).collect();
    assert_eq!(paths, ["version", "phases[1].mode", "rollback[0]"]);
}

#[test]
fn duplicate_phase_names_and_provider_headers() {
    assert_eq!(
        error("  - name: offline\n", "  - name: primary-down\n"),
        "1 problem(s):\n  - phases[1].name: duplicate phase name \"primary-down\"; expected names unique in the scenario"
    );
    assert_eq!(
        error("X-LLM-Provider: openai", "X-LLM-Provider: openia"),
        "1 problem(s):\n  - phases[0].load.headers.X-LLM-Provider: unknown provider \"openia\"; expected one of gigachat, kimi, ollama, openai, qwen"
    );
}

#[test]
fn mcp_load_is_route_mcp_or_api_mcp() {
    let from = "load: { requests: 10, concurrency: 2 }";
    for to in [
        "load: { requests: 10, concurrency: 2, api: mcp }",
        "load: { requests: 10, concurrency: 2, route: mcp }",
    ] {
        let sc = mutated(from, to).unwrap();
        let load = &sc.steady_state.as_ref().unwrap().load;
        assert_eq!(load.route, format::Route::Mcp, "{to}");
    }
    let e = error(
        from,
        "load: { requests: 10, concurrency: 2, api: mcp, stream: true }",
    );
    assert!(e.contains("only chat, responses and messages stream"), "{e}");
    let e = error(from, "load: { requests: 10, concurrency: 2, api: grpc }");
    assert!(
        e.contains("expected chat, responses, messages, assistants, embeddings or mcp"),
        "{e}"
    );
}

#[test]
fn agent_api_loads_stream() {
    let from = "load: { requests: 10, concurrency: 2 }";
    for (to, route) in [
        (
            "load: { requests: 10, concurrency: 2, api: responses, stream: true }",
            format::Route::Responses,
        ),
        (
            "load: { requests: 10, concurrency: 2, api: messages, stream: true }",
            format::Route::Messages,
        ),
        (
            "load: { requests: 10, concurrency: 2, route: messages }",
            format::Route::Messages,
        ),
    ] {
        let sc = mutated(from, to).unwrap();
        let load = &sc.steady_state.as_ref().unwrap().load;
        assert_eq!(load.route, route, "{to}");
    }
}

#[test]
fn replicas_are_bounded_and_bring_the_redis_proxy() {
    let three = "config: ../../config/llm_gateway_simulation.yaml\n  replicas: 3";
    let sc = mutated("config: ../../config/llm_gateway_simulation.yaml", three).unwrap();
    assert_eq!(sc.gateway.replicas, 3);
    assert_eq!(
        mutated(
            "{ proxy: kimi, enabled: false }",
            "{ proxy: kimi, enabled: false }"
        )
        .unwrap()
        .gateway
        .replicas,
        1
    );
    assert_eq!(
        error(
            "config: ../../config/llm_gateway_simulation.yaml",
            "config: ../../config/llm_gateway_simulation.yaml\n  replicas: 9"
        ),
        "1 problem(s):\n  - gateway.replicas: 9 is out of range; expected 1 to 5"
    );
    // `proxy: redis` exists only with replicas, and is never a fake.
    assert_eq!(
        error("{ proxy: kimi, enabled: false }", "{ proxy: redis, enabled: false }"),
        "1 problem(s):\n  - phases[0].faults[1].proxy: unknown proxy \"redis\"; expected one of gigachat, kimi, ollama, openai, qwen or \"*\""
    );
    let (path, text) = fixture();
    let with_redis = text
        .replace("config: ../../config/llm_gateway_simulation.yaml", three)
        .replace(
            "{ proxy: kimi, enabled: false }",
            "{ proxy: redis, enabled: false }",
        );
    assert!(format::parse(&with_redis, &path).is_ok());
    let fake_redis = with_redis.replace(
        "{ proxy: redis, enabled: false }",
        "{ fake: redis, fault: rate_limited }",
    );
    let e = format::parse(&fake_redis, &path).unwrap_err().to_string();
    assert!(e.contains("unknown fake \"redis\""), "{e}");
}
