//! The repository's Markdown stands alone: every relative link in every tracked `.md` file resolves to a file (or
//! folder) inside the repository, and every `#anchor` to a heading of its target.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic, missing_docs)]

use std::collections::BTreeSet;
use std::path::{Path, PathBuf};
use std::process::Command;

/// Tracked `.md` files (`git ls-files`), or every `.md` below the root outside build and dependency folders when
/// the tree is not a git checkout.
fn markdown_files(root: &Path) -> Vec<PathBuf> {
    if let Ok(out) = Command::new("git")
        .args(["ls-files", "-z", "--", "*.md"])
        .current_dir(root)
        .output()
    {
        if out.status.success() && !out.stdout.is_empty() {
            return out
                .stdout
                .split(|b| *b == 0)
                .filter(|p| !p.is_empty())
                .map(|p| root.join(String::from_utf8_lossy(p).as_ref()))
                .filter(|p| p.is_file())
                .collect();
        }
    }
    let mut out = Vec::new();
    let mut stack = vec![root.to_path_buf()];
    while let Some(dir) = stack.pop() {
        for e in std::fs::read_dir(&dir).unwrap().flatten() {
            let p = e.path();
            let name = e.file_name().to_string_lossy().into_owned();
            if p.is_dir() {
                if !matches!(
                    name.as_str(),
                    "target" | ".git" | ".venv" | "node_modules" | "output"
                ) {
                    stack.push(p);
                }
            } else if name.ends_with(".md") {
                out.push(p);
            }
        }
    }
    out
}

/// The text outside fenced code blocks and inline code spans.
fn prose(text: &str) -> String {
    let mut out = String::new();
    let mut fenced = false;
    for line in text.lines() {
        if line.trim_start().starts_with("```") {
            fenced = !fenced;
            out.push('\n');
            continue;
        }
        if fenced {
            out.push('\n');
            continue;
        }
        let mut in_code = false;
        for c in line.chars() {
            if c == '`' {
                in_code = !in_code;
            } else if !in_code {
                out.push(c);
            }
        }
        out.push('\n');
    }
    out
}

/// Link targets: `[text](target)`, `![alt](target)` and `[ref]: target`.
fn links(text: &str) -> Vec<String> {
    let p = prose(text);
    let mut out = Vec::new();
    let mut rest = p.as_str();
    while let Some(i) = rest.find("](") {
        let tail = &rest[i + 2..];
        let end = tail.find([')', '\n']).unwrap_or(tail.len());
        let target = tail[..end].trim();
        // `[text](url "title")`.
        let target = target.split_whitespace().next().unwrap_or("");
        out.push(target.trim_matches(['<', '>']).to_string());
        rest = &tail[end..];
    }
    for line in p.lines() {
        let l = line.trim_start();
        if let (true, Some(close)) = (l.starts_with('['), l.find("]: ")) {
            out.push(l[close + 3..].split_whitespace().next().unwrap_or("").to_string());
        }
    }
    out
}

/// GitHub's heading anchors: lower case, punctuation dropped (letters, digits, `-`, `_` and spaces kept), spaces
/// as hyphens, `-1`, `-2` for repeats.
fn anchors(text: &str) -> BTreeSet<String> {
    let mut seen = BTreeSet::new();
    let mut fenced = false;
    for line in text.lines() {
        if line.trim_start().starts_with("```") {
            fenced = !fenced;
        }
        if fenced {
            continue;
        }
        let Some(h) = line.strip_prefix('#') else { continue };
        let h = h.trim_start_matches('#');
        if !h.starts_with(' ') {
            continue;
        }
        let slug: String = h
            .trim()
            .to_lowercase()
            .chars()
            .filter(|c| c.is_alphanumeric() || matches!(c, ' ' | '-' | '_'))
            .map(|c| if c == ' ' { '-' } else { c })
            .collect();
        let mut candidate = slug.clone();
        let mut n = 0;
        while seen.contains(&candidate) {
            n += 1;
            candidate = format!("{slug}-{n}");
        }
        seen.insert(candidate);
    }
    seen
}

/// Every broken relative link of the Markdown files under `root`, as `file: target (why)`.
fn broken_links(root: &Path, files: &[PathBuf]) -> Vec<String> {
    let root = root.canonicalize().unwrap();
    let mut broken = Vec::new();
    for file in files {
        let text = std::fs::read_to_string(file).unwrap();
        let shown = file.strip_prefix(&root).unwrap_or(file).display().to_string();
        for target in links(&text) {
            if target.is_empty() || target.contains("://") || target.starts_with("mailto:") {
                continue;
            }
            let (path, anchor) = match target.split_once('#') {
                Some((p, a)) => (p, Some(a)),
                None => (target.as_str(), None),
            };
            let dest = if path.is_empty() {
                file.clone()
            } else {
                file.parent().unwrap().join(path)
            };
            let Ok(real) = dest.canonicalize() else {
                broken.push(format!("{shown}: {target} (no such file)"));
                continue;
            };
            if !real.starts_with(&root) {
                broken.push(format!("{shown}: {target} (outside the repository)"));
                continue;
            }
            if let (Some(a), true) = (anchor, real.extension().is_some_and(|e| e == "md")) {
                let heads = anchors(&std::fs::read_to_string(&real).unwrap());
                if !heads.contains(a) {
                    broken.push(format!("{shown}: {target} (no heading for #{a})"));
                }
            }
        }
    }
    broken
}

#[test]
fn every_relative_link_in_the_repository_markdown_resolves() {
    let root = llm_mocks::testing::workspace_root();
    let files = markdown_files(&root);
    assert!(files.len() >= 8, "found only {files:?}");
    let broken = broken_links(&root, &files);
    assert!(broken.is_empty(), "broken links:\n{}", broken.join("\n"));
    // The docs the READMEs used to point outside the repository for are here and linked.
    for doc in [
        "docs/ARCHITECTURE.md",
        "docs/PROVIDERS.md",
        "docs/llm_blocking_resilience_plan.md",
    ] {
        assert!(root.join(doc).is_file(), "{doc}");
    }
    let all: String = files
        .iter()
        .map(|f| std::fs::read_to_string(f).unwrap())
        .collect();
    assert!(
        !all.contains("../shared/"),
        "a Markdown file still points at ../shared/"
    );
}

#[test]
fn the_checker_finds_broken_links_and_anchors() {
    let dir = std::env::temp_dir().join(format!("llm-links-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(dir.join("docs")).unwrap();
    std::fs::write(
        dir.join("docs/B.md"),
        "# Title\n\n## Run the server (`serve`)\n\n## Run the server (`serve`)\n",
    )
    .unwrap();
    let a = dir.join("A.md");
    std::fs::write(
        &a,
        "[ok](docs/B.md) [ok anchor](docs/B.md#run-the-server-serve-1) [self](#a)\n\n# A\n\
         [missing](docs/C.md) [bad anchor](docs/B.md#nope) ![img](../../../etc/passwd)\n\
         [web](https://example.com/x.md) `[code](nowhere.md)`\n\n```\n[fenced](nowhere.md)\n```\n\
         [ref]: docs/missing.md\n",
    )
    .unwrap();
    let broken = broken_links(&dir, &[a]);
    assert_eq!(broken.len(), 4, "{broken:#?}");
    assert!(broken[0].contains("docs/C.md (no such file)"));
    assert!(broken[1].contains("docs/B.md#nope (no heading for #nope)"));
    assert!(broken[2].contains("outside the repository") || broken[2].contains("no such file"));
    assert!(broken[3].contains("docs/missing.md"));
    let _ = std::fs::remove_dir_all(&dir);
}
