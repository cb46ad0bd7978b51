//! Offline package loading (broken entries skipped with file and line) and matching over the sample package.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::path::{Path, PathBuf};

use super::package::{self, checksum};
use super::{MatchKind, OfflineConfig, OfflineStore};

fn sample_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../config/offline")
}

fn sample() -> OfflineStore {
    let store = OfflineStore::load(&OfflineConfig {
        packages: vec![sample_dir()],
        ..OfflineConfig::default()
    });
    assert!(store.issues().is_empty(), "{:?}", store.issues());
    store
}

#[test]
fn sample_package_loads_clean_with_a_matching_checksum() {
    let s = sample();
    let st = s.status();
    assert_eq!(st.packages.len(), 1);
    assert_eq!(st.packages[0].name, "analytics-assistant");
    assert_eq!(st.packages[0].checksum_ok, Some(true));
    assert!(st.entries >= 20, "{}", st.entries);
}

#[test]
fn sql_filter_prompt_and_its_variants_match() {
    let s = sample();
    let exact = s.lookup("Сделай SQL-фильтр по продажам").expect("exact");
    assert_eq!(exact.entry.id, "sql-filter-sales");
    assert_eq!(exact.kind, MatchKind::Exact);
    for variant in [
        "сделай sql фильтр по продажам!",
        "Сделайте SQL-фильтр по продажам, пожалуйста",
        "Сделать SQL фильтры по продажам",
        "Сделай SQL-фильтр для продаж за месяц",
        "Нужен SQL-фильтр по продажам",
        "SQL фильтр по продажам",
        "sql-фильтр продажи",
        "Make a SQL filter for sales",
        "Write an SQL filter for the sales table",
        "sql filters on sales please",
    ] {
        let hit = s
            .lookup(variant)
            .unwrap_or_else(|| panic!("no match for {variant:?}"));
        assert_eq!(
            hit.entry.id, "sql-filter-sales",
            "{variant:?} -> {} ({})",
            hit.entry.id, hit.score
        );
    }
}

#[test]
fn other_tasks_match_their_own_entries() {
    let s = sample();
    for (q, id) in [
        ("посчитай продажи по месяцам в SQL", "sql-sales-by-month"),
        ("как посчитать LTV клиентов", "explain-ltv"),
        ("top 10 customers by revenue", "sql-top-customers"),
        ("проверить значимость A/B-теста", "ab-test-significance"),
        ("pandas: сгруппировать продажи по региону", "pandas-groupby"),
    ] {
        let hit = s.lookup(q).unwrap_or_else(|| panic!("no match for {q:?}"));
        assert_eq!(hit.entry.id, id, "{q:?} ({})", hit.score);
    }
}

#[test]
fn unrelated_prompts_miss() {
    let s = sample();
    // The scenario runner's default prompts must reach the providers, not the package.
    for q in [
        "Say hello to the gateway",
        "Summarise the benefits of provider fallback in one sentence",
        "What is a circuit breaker?",
        "Translate 'good morning' into Russian",
        "List three prime numbers",
        "Write a haiku about a network outage",
        "Explain retry budgets briefly",
        "What time zone is Moscow in?",
        "Какая погода в Москве?",
        "",
        "!!!",
    ] {
        assert!(
            s.lookup(q).is_none(),
            "{q:?} matched {:?}",
            s.lookup(q).map(|h| (h.entry.id.clone(), h.score))
        );
    }
}

#[test]
fn embeddings_come_from_matching_entries() {
    let s = sample();
    let v = s.embedding("Сделай SQL-фильтр по продажам").expect("vector");
    assert_eq!(v.len(), 8);
    assert!(
        s.embedding("Find duplicate rows in a table with SQL").is_none(),
        "entry without a vector"
    );
}

fn write_package(dir: &Path, entries: &str, with_checksum: bool) {
    std::fs::create_dir_all(dir).unwrap();
    std::fs::write(dir.join("entries.jsonl"), entries).unwrap();
    let cs = if with_checksum {
        format!("checksum: {}\n", checksum(entries.as_bytes()))
    } else {
        "checksum: sha256:00\n".into()
    };
    std::fs::write(
        dir.join("manifest.yaml"),
        format!("name: t\nversion: \"1\"\ncreated: 2026-01-01\n{cs}"),
    )
    .unwrap();
}

fn temp_dir(name: &str) -> PathBuf {
    let d = std::env::temp_dir().join(format!("llm-gw-offline-{name}-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&d);
    d
}

#[test]
fn broken_entries_are_reported_with_line_and_the_rest_load() {
    let dir = temp_dir("broken");
    let entries = [
        r#"{"id": "ok-1", "prompts": ["first question"], "answer": "first answer"}"#,
        r#"{"id": "bad-json", "prompts": ["x"], "answer": "#,
        "",
        "# a comment",
        r#"{"id": "no-prompts", "prompts": [], "answer": "a"}"#,
        r#"{"id": "ok-1", "prompts": ["other question"], "answer": "dup id"}"#,
        r#"{"id": "unknown", "prompts": ["q"], "answer": "a", "colour": "red"}"#,
        r#"{"id": "empty-answer", "prompts": ["q2"], "answer": "  "}"#,
        r#"{"id": "vec-a", "prompts": ["vector one"], "answer": "a", "embedding": [0.1, 0.2]}"#,
        r#"{"id": "vec-b", "prompts": ["vector two"], "answer": "b", "embedding": [0.1]}"#,
        r#"{"id": "dup-prompt", "prompts": ["First question!"], "answer": "c"}"#,
        r#"{"id": "ok-2", "prompts": ["second question"], "answer": "second answer", "tags": ["t"]}"#,
    ]
    .join("\n");
    write_package(&dir, &entries, true);
    let (p, issues) = package::load(&dir).unwrap();
    let ids: Vec<&str> = p.entries.iter().map(|e| e.id.as_str()).collect();
    assert_eq!(ids, ["ok-1", "vec-a", "ok-2"]);
    assert_eq!(p.skipped, 7);
    let lines: Vec<Option<usize>> = issues.iter().map(|i| i.line).collect();
    assert_eq!(
        lines,
        [Some(2), Some(5), Some(6), Some(7), Some(8), Some(10), Some(11)],
        "{issues:?}"
    );
    let text: Vec<String> = issues.iter().map(ToString::to_string).collect();
    assert!(text[0].contains("entries.jsonl:2: "), "{text:?}");
    assert!(text[2].contains("duplicate id \"ok-1\""), "{text:?}");
    assert!(text[3].contains("unknown field `colour`"), "{text:?}");
    assert!(text[5].contains("1 dimensions"), "{text:?}");
    assert_eq!(p.manifest.checksum_ok, Some(true));
    let store = OfflineStore::load(&OfflineConfig {
        packages: vec![dir.clone()],
        ..OfflineConfig::default()
    });
    assert_eq!(
        store.lookup("second question?").unwrap().entry.answer,
        "second answer"
    );
    assert_eq!(store.status().skipped_entries, 7);
    let _ = std::fs::remove_dir_all(&dir);
}

#[test]
fn bad_checksum_and_missing_folders_are_reported_not_fatal() {
    let dir = temp_dir("checksum");
    write_package(
        &dir.join("pkg"),
        r#"{"id": "a", "prompts": ["q"], "answer": "a"}"#,
        false,
    );
    let store = OfflineStore::load(&OfflineConfig {
        packages: vec![dir.clone(), dir.join("does-not-exist")],
        ..OfflineConfig::default()
    });
    assert_eq!(store.status().entries, 1);
    assert_eq!(store.status().packages[0].checksum_ok, Some(false));
    let issues: Vec<String> = store.issues().iter().map(ToString::to_string).collect();
    assert_eq!(issues.len(), 2, "{issues:?}");
    assert!(issues[0].contains("checksum does not match"), "{issues:?}");
    assert!(issues[1].contains("does-not-exist"), "{issues:?}");
    let bad = temp_dir("manifest");
    std::fs::create_dir_all(&bad).unwrap();
    std::fs::write(bad.join("manifest.yaml"), "name: x\nversion: 1\n").unwrap();
    let e = package::load(&bad).unwrap_err();
    assert!(e.to_string().contains("missing field `created`"), "{e}");
    let _ = std::fs::remove_dir_all(&dir);
    let _ = std::fs::remove_dir_all(&bad);
}
