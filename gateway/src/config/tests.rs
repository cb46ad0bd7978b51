//! Config tests: load the shipped files, then change one field of a known-good fixture and assert the exact error.

use std::collections::HashMap;
use std::time::Duration;

use super::{Config, ConfigError, Mode, ProviderKind};

const SIM: &str = include_str!("../../../config/llm_gateway_simulation.yaml");
const PROD: &str = include_str!("../../../config/llm_providers.yaml");

fn no_env(_: &str) -> Option<String> {
    None
}

fn problems(text: &str) -> Vec<String> {
    match Config::from_yaml(text, &no_env) {
        Err(ConfigError::Invalid(p)) => p.iter().map(ToString::to_string).collect(),
        other => panic!("expected validation problems, got {other:?}"),
    }
}

#[test]
fn shipped_configs_are_valid_and_define_default() {
    for text in [SIM, PROD] {
        let cfg = Config::from_yaml(text, &no_env).unwrap();
        assert!(cfg.models.contains_key("default"));
        assert_eq!(cfg.policy.order.len(), 5);
        assert_eq!(cfg.providers["ollama"].kind, ProviderKind::Ollama);
        assert_eq!(cfg.server.listen.to_string(), "127.0.0.1:6001");
    }
    let sim = Config::from_yaml(SIM, &no_env).unwrap();
    assert_eq!(sim.providers["openai"].base_url, "http://127.0.0.1:28081/v1");
    assert_eq!(sim.policy.deadline, Duration::from_secs(30));
    assert_eq!(sim.providers["openai"].secret_source.found_in, "literal");
    let prod = Config::from_yaml(PROD, &no_env).unwrap();
    assert!(prod.providers["openai"].secret.is_none());
}

#[test]
fn unknown_key_names_its_path() {
    let text = SIM.replace("    open_for: 15s", "    open_for: 15s\n    opn_for: 3s");
    match Config::from_yaml(&text, &no_env) {
        Err(ConfigError::Parse { path, message }) => {
            assert_eq!(path, "fallback_policy.breaker.opn_for");
            assert!(message.contains("unknown field `opn_for`"), "{message}");
        }
        other => panic!("{other:?}"),
    }
}

#[test]
fn wrong_type_names_its_path() {
    let text = SIM.replace("max_retries: 1", "max_retries: lots");
    match Config::from_yaml(&text, &no_env) {
        Err(ConfigError::Parse { path, .. }) => assert_eq!(path, "fallback_policy.retries.max_retries"),
        other => panic!("{other:?}"),
    }
}

#[test]
fn every_problem_is_reported_at_once() {
    let text = SIM
        .replace(
            "order: [openai, kimi, qwen, gigachat, ollama]",
            "order: [openai, nope, qwen, gigachat, ollama]",
        )
        .replace("attempt_timeout: 15s", "attempt_timeout: 45s")
        .replace("failure_ratio: 0.5", "failure_ratio: 1.5");
    let p = problems(&text);
    assert_eq!(
        p,
        vec![
            "fallback_policy.attempt_timeout: 45s is above the deadline 30s".to_string(),
            "fallback_policy.breaker.failure_ratio: must be in (0, 1]".to_string(),
            "providers.gigachat.attempt_timeout: 45s is above the deadline 30s".to_string(),
            "providers.kimi.attempt_timeout: 45s is above the deadline 30s".to_string(),
            "providers.ollama.attempt_timeout: 45s is above the deadline 30s".to_string(),
            "providers.openai.attempt_timeout: 45s is above the deadline 30s".to_string(),
            "providers.qwen.attempt_timeout: 45s is above the deadline 30s".to_string(),
            "fallback_policy.order[1]: provider \"nope\" is not defined under providers".to_string(),
        ]
    );
}

#[test]
fn model_mapping_to_unknown_provider_and_missing_default() {
    let text = SIM.replace(
        "  default:\n    openai: gpt-4o-mini",
        "  dflt:\n    opneai: gpt-4o-mini",
    );
    let p = problems(&text);
    assert!(
        p.contains(&"models: the logical model \"default\" must be defined".to_string()),
        "{p:?}"
    );
    assert!(
        p.contains(&"models.dflt.opneai: provider \"opneai\" is not defined".to_string()),
        "{p:?}"
    );
}

#[test]
fn bad_duration_scope_and_url() {
    let text = SIM
        .replace("deadline: 30s", "deadline: soon")
        .replace("scope: GIGACHAT_API_PERS", "scope: EVERYTHING")
        .replace("base_url: http://127.0.0.1:18085", "base_url: ftp://x");
    let p = problems(&text);
    assert!(
        p.iter()
            .any(|m| m.starts_with("fallback_policy.deadline: invalid duration \"soon\"")),
        "{p:?}"
    );
    assert!(
        p.iter()
            .any(|m| m.starts_with("providers.gigachat.auth.scope: unknown scope")),
        "{p:?}"
    );
    assert!(
        p.contains(&"providers.ollama.base_url: not an http(s) URL: \"ftp://x\"".to_string()),
        "{p:?}"
    );
}

#[test]
fn env_overrides_mode_and_secrets() {
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("kimi");
    std::fs::write(&file, "kimi-from-file\n").unwrap();
    let env: HashMap<String, String> = [
        ("LLM_GATEWAY_MODE", "offline"),
        ("OPENAI_API_KEY", "sk-from-env"),
        ("KIMI_API_KEY_FILE", file.to_str().unwrap()),
    ]
    .into_iter()
    .map(|(k, v)| (k.to_string(), v.to_string()))
    .collect();
    let lookup = |k: &str| env.get(k).cloned();
    let cfg = Config::from_yaml(PROD, &lookup).unwrap();
    assert_eq!(cfg.mode, Mode::Offline);
    assert_eq!(
        cfg.providers["openai"].secret.as_ref().unwrap().expose(),
        "sk-from-env"
    );
    assert_eq!(
        cfg.providers["kimi"].secret.as_ref().unwrap().expose(),
        "kimi-from-file"
    );
    assert_eq!(cfg.providers["kimi"].secret_source.found_in, "env_file");
    assert!(
        !format!("{cfg:?}").contains("sk-from-env"),
        "Debug must not print secrets"
    );
    let bad = |k: &str| (k == "LLM_GATEWAY_MODE").then(|| "sideways".to_string());
    let p = match Config::from_yaml(PROD, &bad) {
        Err(ConfigError::Invalid(p)) => p,
        other => panic!("{other:?}"),
    };
    assert_eq!(p[0].path, "LLM_GATEWAY_MODE (env)");
}

#[test]
fn garbage_yaml_is_an_error_not_a_panic() {
    for text in ["", "- 1\n- 2", "server: [", "providers: 7", "\u{0}\u{1}"] {
        assert!(Config::from_yaml(text, &no_env).is_err(), "{text:?}");
    }
}

#[test]
fn models_take_a_name_or_a_name_with_a_context_window() {
    let text = SIM.replace(
        "    openai: gpt-4.1\n",
        "    openai: { model: gpt-4.1, context_window: 1047576 }\n",
    );
    let cfg = Config::from_yaml(&text, &no_env).unwrap();
    assert_eq!(cfg.models["large"]["openai"], "gpt-4.1");
    assert_eq!(cfg.model_caps["large"]["openai"].context_window, Some(1047576));
    let zero = SIM.replace(
        "    openai: gpt-4.1\n",
        "    openai: { model: gpt-4.1, context_window: 0 }\n",
    );
    assert_eq!(
        problems(&zero),
        vec!["models.large.openai.context_window: must be greater than zero".to_string()]
    );
    let typo = SIM.replace("    openai: gpt-4.1\n", "    openai: { modle: gpt-4.1 }\n");
    match Config::from_yaml(&typo, &no_env) {
        Err(ConfigError::Parse { path, .. }) => assert_eq!(path, "models.large.openai"),
        other => panic!("{other:?}"),
    }
}

#[test]
fn relative_package_paths_are_found_beside_the_config_file_then_from_the_working_directory() {
    let dir = std::env::temp_dir().join(format!("llm-gw-paths-{}", std::process::id()));
    std::fs::create_dir_all(dir.join("offline")).unwrap();
    let file = dir.join("gateway.yaml");
    let text = SIM.replace(
        "packages: [offline]",
        "packages: [offline, config/offline, /opt/packages]",
    );
    assert_ne!(text, SIM, "the shipped config names its packages `offline`");
    std::fs::write(&file, text).unwrap();
    let cfg = Config::load(&file, &no_env).unwrap();
    assert_eq!(
        cfg.offline.packages,
        vec![
            dir.join("offline"),
            std::path::PathBuf::from("config/offline"),
            std::path::PathBuf::from("/opt/packages"),
        ]
    );
    // The shipped configs load from any working directory: their `offline` is the folder beside them.
    let shipped =
        std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../config/llm_gateway_simulation.yaml");
    let cfg = Config::load(&shipped, &no_env).unwrap();
    assert!(
        cfg.offline.packages[0].join("analytics-assistant").is_dir(),
        "{:?}",
        cfg.offline.packages
    );
    std::fs::remove_dir_all(&dir).unwrap();
}

#[test]
fn a_base_url_with_a_query_string_or_fragment_is_an_error_with_its_path() {
    for url in [
        "http://127.0.0.1:28081/v1?api-version=2024-01-01",
        "http://127.0.0.1:28081/v1#x",
    ] {
        let text = SIM.replace(
            "base_url: http://127.0.0.1:28081/v1",
            &format!("base_url: \"{url}\""),
        );
        let p = problems(&text);
        assert_eq!(p.len(), 1, "{p:?}");
        assert!(
            p[0].starts_with("providers.openai.base_url: ") && p[0].contains("query string or fragment"),
            "{p:?}"
        );
    }
}

#[test]
fn model_capabilities_can_be_set_and_bad_values_name_their_path() {
    use crate::providers::capabilities::{Structured, Vision};
    let text = SIM.replace(
        "    ollama: llama3.2\n",
        "    ollama: { model: llava, vision: data_urls, tools: false, structured_output: json_object }\n",
    );
    let cfg = Config::from_yaml(&text, &no_env).unwrap();
    let o = &cfg.model_caps["default"]["ollama"];
    assert_eq!(o.vision, Some(Vision::DataUrls));
    assert_eq!(o.tools, Some(false));
    assert_eq!(o.structured, Some(Structured::JsonObject));
    let bad = SIM.replace(
        "    ollama: llama3.2\n",
        "    ollama: { model: llava, vision: maybe, structured_output: yaml, dimensions: 0 }\n",
    );
    let p = problems(&bad);
    assert!(
        p.iter().any(|x| x.starts_with("models.default.ollama.vision: ")),
        "{p:?}"
    );
    assert!(
        p.iter()
            .any(|x| x.starts_with("models.default.ollama.structured_output: ")),
        "{p:?}"
    );
    assert!(
        p.iter()
            .any(|x| x == "models.default.ollama.dimensions: must be greater than zero"),
        "{p:?}"
    );
}

#[test]
fn the_shipped_configs_embeddings_chains_stay_inside_one_space() {
    for text in [SIM, PROD] {
        let cfg = Config::from_yaml(text, &no_env).unwrap();
        assert_eq!(
            crate::router::Planner::new(&cfg).warnings(),
            Vec::<(String, String)>::new()
        );
    }
    let mixed = SIM.replace(
        "  embeddings-qwen:\n    qwen:",
        "    qwen: text-embedding-v3\n  embeddings-qwen:\n    qwen:",
    );
    let cfg = Config::from_yaml(&mixed, &no_env).unwrap();
    let w = crate::router::Planner::new(&cfg).warnings();
    assert_eq!(w.len(), 1, "{w:?}");
    assert_eq!(w[0].0, "models.embeddings");
    assert!(w[0].1.contains("mixes vector spaces"), "{w:?}");
}

#[test]
fn offline_misses_record_is_configured_and_checked() {
    use crate::offline::MissRecording;
    let cfg = Config::from_yaml(SIM, &no_env).unwrap();
    assert_eq!(cfg.offline.misses.record, MissRecording::Text);
    assert_eq!(cfg.offline.misses.max_entries, 1000);
    let with = |misses: &str| SIM.replacen("offline:\n", &format!("offline:\n  misses: {misses}\n"), 1);
    let cfg = Config::from_yaml(&with("{ record: hashed, max_entries: 50 }"), &no_env).unwrap();
    assert_eq!(cfg.offline.misses.record, MissRecording::Hashed);
    assert_eq!(cfg.offline.misses.max_entries, 50);
    let p = problems(&with("{ record: everything, max_entries: 0 }"));
    assert!(p.iter().any(|m| m == "offline.misses.record: unknown value \"everything\"; expected text, hashed or off"), "{p:?}");
    assert!(
        p.iter()
            .any(|m| m == "offline.misses.max_entries: 0 is not in 1..=100000"),
        "{p:?}"
    );
    assert!(problems(&with("{ max_entries: 100001 }"))
        .iter()
        .any(|m| m.contains("100001 is not in")));
    match Config::from_yaml(&with("{ recrod: off }"), &no_env) {
        Err(e) => assert!(e.to_string().contains("offline.misses"), "{e}"),
        Ok(_) => panic!("unknown key accepted"),
    }
    // A prompt recorded by a gateway never keeps a configured secret.
    let mut cfg = Config::from_yaml(SIM, &no_env).unwrap();
    cfg.offline.packages.clear();
    let secrets = cfg.secret_values();
    assert!(!secrets.is_empty());
    let state = crate::AppState::new(cfg).unwrap();
    let asked = format!("why does {} fail", secrets[0]);
    state.offline.record_miss(Some(&asked));
    let view = serde_json::to_string(&state.offline.misses().view(10)).unwrap();
    assert!(!view.contains(&secrets[0]), "{view}");
}

#[test]
fn a_provider_of_the_order_without_a_secret_reads_0_on_metrics() {
    let text = SIM.replace(
        "secret: { env: KIMI_API_KEY, value: sim-kimi-key }",
        "secret: { env: KIMI_API_KEY }",
    );
    let state = crate::AppState::new(Config::from_yaml(&text, &no_env).unwrap()).unwrap();
    let m = state.metrics.encode();
    assert!(
        m.contains("llm_gateway_provider_secret_present{provider=\"kimi\"} 0"),
        "{m}"
    );
    assert!(
        m.contains("llm_gateway_provider_secret_present{provider=\"openai\"} 1"),
        "{m}"
    );
    assert!(
        !m.contains("llm_gateway_provider_secret_present{provider=\"ollama\""),
        "{m}"
    );
}

#[test]
fn state_defaults_to_memory() {
    let cfg = Config::from_yaml(SIM, &no_env).unwrap();
    assert_eq!(cfg.state.backend, super::StateBackendKind::Memory);
    assert!(cfg.state.redis.is_none());
}

#[test]
fn state_redis_parses_and_hides_its_password() {
    let text = format!(
        "{SIM}\nstate:\n  backend: redis\n  redis:\n    url: redis://gw:s3cret-pass@10.0.0.5:6379/2\n    key_prefix: \"gw-a:\"\n    timeout: 50ms\n    on_error: fail_closed\n"
    );
    let cfg = Config::from_yaml(&text, &no_env).unwrap();
    assert_eq!(cfg.state.backend, super::StateBackendKind::Redis);
    let r = cfg.state.redis.as_ref().unwrap();
    assert_eq!(r.key_prefix, "gw-a:");
    assert_eq!(r.timeout, Duration::from_millis(50));
    assert_eq!(r.on_error, super::OnError::FailClosed);
    assert_eq!(r.url.expose(), "redis://gw:s3cret-pass@10.0.0.5:6379/2");
    assert_eq!(r.display_url(), "redis://gw:***@10.0.0.5:6379/2");
    assert!(!format!("{cfg:?}").contains("s3cret-pass"));
    assert!(cfg.secret_values().iter().any(|s| s.contains("s3cret-pass")));
    let defaults = format!("{SIM}\nstate:\n  backend: redis\n  redis:\n    url: redis://127.0.0.1:6379\n");
    let r = Config::from_yaml(&defaults, &no_env)
        .unwrap()
        .state
        .redis
        .unwrap();
    assert_eq!(r.key_prefix, "llm-gateway:");
    assert_eq!(r.timeout, Duration::from_millis(100));
    assert_eq!(r.on_error, super::OnError::Local);
}

#[test]
fn state_unknown_key_names_its_path() {
    let text =
        format!("{SIM}\nstate:\n  backend: redis\n  redis:\n    url: redis://127.0.0.1:1\n    pasword: x\n");
    match Config::from_yaml(&text, &no_env) {
        Err(ConfigError::Parse { path, message }) => {
            assert_eq!(path, "state.redis.pasword");
            assert!(message.contains("unknown field `pasword`"), "{message}");
        }
        other => panic!("{other:?}"),
    }
}

#[test]
fn state_problems_name_their_paths() {
    let text = format!(
        "{SIM}\nstate:\n  backend: etcd\n  redis:\n    url: http://u:hunter2@h:1\n    key_prefix: \"a b\"\n    timeout: 0s\n    on_error: retry\n"
    );
    let got = problems(&text);
    for want in [
        "state.backend: unknown backend \"etcd\"; expected memory or redis",
        "state.redis.url: \"http://u:***@h:1\" is not a redis:// or rediss:// URL",
        "state.redis.key_prefix: must be 1 to 64 characters without spaces or control characters",
        "state.redis.timeout: must be greater than zero",
        "state.redis.on_error: unknown value \"retry\"; expected local or fail_closed",
        "state.redis: set, but state.backend is not redis (set backend: redis or remove it)",
    ] {
        assert!(got.iter().any(|g| g == want), "missing {want:?} in {got:?}");
    }
    assert!(got.iter().all(|g| !g.contains("hunter2")), "{got:?}");
    let got = problems(&format!("{SIM}\nstate:\n  backend: redis\n"));
    assert!(
        got.iter().any(|g| g.starts_with("state.redis: required")),
        "{got:?}"
    );
    let got = problems(&format!(
        "{SIM}\nstate:\n  backend: redis\n  redis:\n    url: redis://h:1\n    timeout: 10s\n"
    ));
    assert!(
        got.iter()
            .any(|g| g.starts_with("state.redis.timeout: 10s is above 5s")),
        "{got:?}"
    );
}

#[test]
fn cache_backend_redis_needs_the_redis_state_backend() {
    let shared = SIM.replace("  backend: memory ", "  backend: redis ");
    assert_ne!(shared, SIM);
    let got = problems(&shared);
    assert!(
        got.iter().any(|g| g
            == "cache.backend: redis needs state.backend: redis (the shared tier lives on the state.redis server)"),
        "{got:?}"
    );
    let ok = format!("{shared}\nstate:\n  backend: redis\n  redis:\n    url: redis://127.0.0.1:6379\n");
    let cfg = Config::from_yaml(&ok, &no_env).unwrap();
    assert_eq!(cfg.cache.backend, super::CacheBackend::Redis);
    assert_eq!(
        Config::from_yaml(SIM, &no_env).unwrap().cache.backend,
        super::CacheBackend::Memory
    );
    let got = problems(&SIM.replace("  backend: memory ", "  backend: memcached "));
    assert!(
        got.iter()
            .any(|g| g == "cache.backend: unknown backend \"memcached\"; expected memory or redis"),
        "{got:?}"
    );
}
