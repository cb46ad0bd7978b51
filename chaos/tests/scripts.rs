//! The outage scripts in `chaos/scripts/`, run with bash against an embedded server and checked through the API.
#![allow(clippy::unwrap_used, clippy::panic)] // Tests: helpers fail loudly, like the tests themselves.

mod common;

use std::process::Command;

use common::{connect, crate_dir, echo_server, proxy_to, read_to_end, require_tool, start};
use llm_chaos::{Client, ServerHandle, ToxicKind};
use serde_json::json;
use tokio::io::AsyncWriteExt;

struct Run {
    ok: bool,
    stdout: String,
    stderr: String,
}

async fn run(url: &str, script: &str, args: &[&str]) -> Run {
    let path = crate_dir().join("scripts").join(script);
    let args: Vec<String> = args.iter().map(|a| (*a).to_owned()).collect();
    let url = url.to_owned();
    let out = tokio::task::spawn_blocking(move || {
        Command::new("bash")
            .arg(path)
            .args(args)
            .env("TOXIPROXY_URL", url)
            .output()
            .unwrap()
    })
    .await
    .unwrap();
    Run {
        ok: out.status.success(),
        stdout: String::from_utf8_lossy(&out.stdout).into_owned(),
        stderr: String::from_utf8_lossy(&out.stderr).into_owned(),
    }
}

async fn ok(s: &ServerHandle, script: &str, args: &[&str]) -> String {
    let r = run(&s.url(), script, args).await;
    assert!(r.ok, "{script} {args:?} failed: {}{}", r.stdout, r.stderr);
    r.stdout
}

async fn toxics(c: &Client, proxy: &str) -> Vec<(String, String, serde_json::Value)> {
    c.toxics(proxy)
        .await
        .unwrap()
        .into_iter()
        .map(|t| (t.name, t.kind.type_name().to_owned(), t.kind.attributes()))
        .collect()
}

fn tools_present() -> bool {
    let has = |tool: &str| {
        Command::new(tool)
            .arg("--version")
            .output()
            .is_ok_and(|o| o.status.success())
    };
    has("bash") && has("curl") || require_tool("bash and curl")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn scripts_break_and_heal_the_stand() {
    if !tools_present() {
        return;
    }
    let s = start().await;
    let c = s.client().unwrap();
    let echo = echo_server().await;
    let kimi = proxy_to(&c, "kimi", echo).await;
    proxy_to(&c, "qwen", echo).await;

    let out = ok(&s, "block_provider.sh", &["kimi"]).await;
    assert!(out.contains("kimi: disabled"), "{out}");
    assert!(!c.proxy("kimi").await.unwrap().enabled);

    let out = ok(&s, "block_provider.sh", &["kimi", "blackhole"]).await;
    assert!(out.contains("black hole"), "{out}");
    assert!(c.proxy("kimi").await.unwrap().enabled);
    assert_eq!(
        toxics(&c, "kimi").await,
        vec![
            (
                "block_blackhole_up".into(),
                "timeout".into(),
                json!({"timeout": 0})
            ),
            (
                "block_blackhole_down".into(),
                "timeout".into(),
                json!({"timeout": 0})
            ),
        ]
    );

    ok(&s, "restore.sh", &["kimi"]).await;
    let out = ok(&s, "block_provider.sh", &["kimi", "reset"]).await;
    assert!(out.contains("TCP RST"), "{out}");
    let kinds: Vec<String> = toxics(&c, "kimi").await.into_iter().map(|t| t.1).collect();
    assert_eq!(kinds, ["reset_peer", "reset_peer"]);
    let mut sock = connect(kimi).await;
    sock.write_all(b"hello").await.unwrap();
    assert_eq!(
        read_to_end(&mut sock).await.1,
        Some(std::io::ErrorKind::ConnectionReset)
    );

    let out = ok(&s, "restore.sh", &["kimi"]).await;
    assert!(
        out.contains("removed toxic block_reset_up") && out.contains("kimi: enabled, 2 toxics removed"),
        "{out}"
    );
    assert!(c.toxics("kimi").await.unwrap().is_empty());

    let out = ok(&s, "degrade.sh", &["kimi", "150", "20"]).await;
    assert!(out.contains("150 ms (jitter 20 ms)"), "{out}");
    ok(&s, "degrade.sh", &["kimi", "300"]).await;
    assert_eq!(
        toxics(&c, "kimi").await,
        vec![(
            "degrade_latency".into(),
            "latency".into(),
            json!({"latency": 300, "jitter": 0})
        )]
    );

    let out = ok(&s, "cut_stream.sh", &["qwen", "100"]).await;
    assert!(out.contains("after 100 response bytes"), "{out}");
    let t = c.toxic("qwen", "cut_stream").await.unwrap();
    assert_eq!(
        t.kind,
        ToxicKind::LimitData(llm_chaos::toxics::LimitData { bytes: 100 })
    );

    let out = ok(&s, "cut_internet.sh", &[]).await;
    assert!(
        out.contains("kimi: disabled") && out.contains("qwen: disabled") && out.contains("2 proxies"),
        "{out}"
    );
    assert!(c.proxies().await.unwrap().values().all(|p| !p.enabled));

    let out = ok(&s, "restore.sh", &[]).await;
    assert!(out.contains("all proxies enabled"), "{out}");
    for p in c.proxies().await.unwrap().values() {
        assert!(p.enabled && p.toxics.is_empty(), "{p:?}");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn scripts_fail_clearly() {
    if !tools_present() {
        return;
    }
    let s = start().await;
    let c = s.client().unwrap();
    proxy_to(&c, "kimi", echo_server().await).await;
    proxy_to(&c, "qwen", echo_server().await).await;
    for (script, args) in [
        ("block_provider.sh", vec!["nope"]),
        ("degrade.sh", vec!["nope", "10"]),
        ("cut_stream.sh", vec!["nope", "10"]),
        ("restore.sh", vec!["nope"]),
    ] {
        let r = run(&s.url(), script, &args).await;
        assert!(!r.ok, "{script}");
        assert!(
            r.stderr.contains("unknown proxy 'nope' (known: kimi, qwen)"),
            "{script}: {}",
            r.stderr
        );
    }
    for (script, args) in [
        ("block_provider.sh", vec!["kimi", "explode"]),
        ("degrade.sh", vec!["kimi", "fast"]),
        ("cut_stream.sh", vec!["kimi"]),
        ("cut_internet.sh", vec!["extra"]),
    ] {
        let r = run(&s.url(), script, &args).await;
        assert!(!r.ok && r.stderr.starts_with("error: "), "{script}: {}", r.stderr);
    }
    let closed = tokio::net::TcpListener::bind("127.0.0.1:0")
        .await
        .unwrap()
        .local_addr()
        .unwrap();
    for script in [
        "block_provider.sh",
        "cut_internet.sh",
        "degrade.sh",
        "cut_stream.sh",
        "restore.sh",
    ] {
        let args: &[&str] = match script {
            "cut_internet.sh" | "restore.sh" => &[],
            "block_provider.sh" => &["kimi"],
            _ => &["kimi", "10"],
        };
        let r = run(&format!("http://{closed}"), script, args).await;
        assert!(!r.ok, "{script}");
        assert!(
            r.stderr
                .contains(&format!("cannot reach the Toxiproxy API at http://{closed}")),
            "{script}: {}",
            r.stderr
        );
    }
    // Nothing was changed by the failures.
    for p in c.proxies().await.unwrap().values() {
        assert!(p.enabled && p.toxics.is_empty(), "{p:?}");
    }
}
