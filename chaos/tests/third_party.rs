//! Third-party Toxiproxy clients used unchanged: the `toxiproxy_rust` crate and the npm `toxiproxy-node-client`.
#![allow(clippy::unwrap_used, clippy::panic)] // Tests: helpers fail loudly, like the tests themselves.

mod common;

use std::io::{Read, Write};
use std::net::TcpStream as StdStream;
use std::process::Command;
use std::time::Duration;

use common::{crate_dir, echo_server, require_tool, start};
use toxiproxy_rust::client::Client as RustClient;
use toxiproxy_rust::proxy::ProxyPack;

fn blocking_round_trip(addr: &str, msg: &[u8]) -> std::io::Result<Vec<u8>> {
    let mut sock = StdStream::connect(addr)?;
    sock.set_read_timeout(Some(Duration::from_secs(5)))?;
    sock.write_all(msg)?;
    let mut buf = vec![0u8; msg.len()];
    sock.read_exact(&mut buf)?;
    Ok(buf)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn toxiproxy_rust_crate_unchanged() {
    let s = start().await;
    let echo = echo_server().await.to_string();
    let api = s.addr();
    let listen = tokio::net::TcpListener::bind("127.0.0.1:0")
        .await
        .unwrap()
        .local_addr()
        .unwrap()
        .to_string();
    let report = tokio::task::spawn_blocking(move || {
        let client = RustClient::new(api);
        assert!(client.is_running());
        assert!(client.version().unwrap().contains("2.12.0"));
        let proxies = client
            .populate(vec![ProxyPack::new("rust".into(), listen.clone(), echo.clone())])
            .unwrap();
        assert_eq!(proxies.len(), 1);
        assert_eq!(proxies[0].proxy_pack.listen, listen);
        assert!(proxies[0].proxy_pack.enabled);

        let proxy = client.find_and_reset_proxy("rust").unwrap();
        proxy.with_latency("downstream".into(), 200, 0, 1.0);
        let toxics = proxy.toxics().unwrap();
        assert_eq!(toxics.len(), 1);
        assert_eq!(
            (toxics[0].name.as_str(), toxics[0].r#type.as_str()),
            ("latency_downstream", "latency")
        );
        assert_eq!(toxics[0].attributes.get("latency"), Some(&200));
        proxy
            .apply(|| {
                let t = tokio::time::Instant::now();
                assert_eq!(blocking_round_trip(&listen, b"slow").unwrap(), b"slow");
                assert!(t.elapsed() >= Duration::from_millis(200));
            })
            .unwrap();
        assert!(proxy.toxics().unwrap().is_empty(), "apply removes its toxics");

        proxy
            .with_bandwidth("upstream".into(), 100, 1.0)
            .with_slicer("downstream".into(), 10, 2, 100, 1.0);
        proxy
            .with_slow_close("downstream".into(), 1, 1.0)
            .with_timeout("upstream".into(), 1000, 0.0);
        proxy.with_limit_data("downstream".into(), 1000, 1.0);
        let names: Vec<String> = proxy.toxics().unwrap().into_iter().map(|t| t.name).collect();
        assert_eq!(
            names,
            [
                "bandwidth_upstream",
                "timeout_upstream",
                "slicer_downstream",
                "slow_close_downstream",
                "limit_data_downstream"
            ]
        );
        proxy.delete_all_toxics().unwrap();

        proxy
            .with_down(|| {
                let refused = StdStream::connect(&listen).unwrap_err();
                assert_eq!(refused.kind(), std::io::ErrorKind::ConnectionRefused);
            })
            .unwrap();
        assert_eq!(blocking_round_trip(&listen, b"back").unwrap(), b"back");

        let all = client.all().unwrap();
        assert!(all.contains_key("rust"));
        proxy.disable().unwrap();
        client.reset().unwrap();
        assert!(
            client.find_proxy("rust").unwrap().proxy_pack.enabled,
            "reset re-enables"
        );
        proxy.delete().unwrap();
        assert!(client.all().unwrap().is_empty());
        "ok"
    })
    .await
    .unwrap();
    assert_eq!(report, "ok");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn toxiproxy_node_client_unchanged() {
    let dir = crate_dir().join("tests").join("node");
    let node_ok = Command::new("node")
        .arg("--version")
        .output()
        .is_ok_and(|o| o.status.success());
    if !node_ok {
        require_tool("node");
        return;
    }
    if !dir.join("node_modules").join("toxiproxy-node-client").exists() {
        require_tool("chaos/tests/node/node_modules (run `npm ci --prefix chaos/tests/node`)");
        return;
    }
    let s = start().await;
    let url = s.url();
    let echo = echo_server().await.to_string();
    let out = tokio::task::spawn_blocking(move || {
        Command::new("node")
            .arg("client_check.js")
            .current_dir(dir)
            .env("TOXIPROXY_URL", url)
            .env("UPSTREAM", echo)
            .output()
            .unwrap()
    })
    .await
    .unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        out.status.success(),
        "node client check failed:\n{stdout}\n{stderr}"
    );
    assert!(stdout.contains("checks passed"), "{stdout}");
    // The script's end state, seen through our own client.
    let c = s.client().unwrap();
    let proxies = c.proxies().await.unwrap();
    assert!(!proxies.contains_key("node_api"));
    let pop = &proxies["node_pop"];
    assert!(pop.enabled && pop.toxics.is_empty());
}
