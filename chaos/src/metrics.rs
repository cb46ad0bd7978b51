//! Prometheus text for `/metrics`: Toxiproxy's per-proxy byte counters, plus a few process figures.
//!
//! As in Toxiproxy (`collectors/proxy.go`) bytes are added when a link ends, so a keep-alive connection shows
//! nothing until it closes.

use std::collections::BTreeMap;
use std::fmt::Write as _;
use std::sync::Mutex;

/// Which metric families are served, as Toxiproxy's `-proxy-metrics` and `-runtime-metrics` flags.
#[derive(Debug, Default)]
pub(crate) struct Metrics {
    pub(crate) proxy: bool,
    pub(crate) runtime: bool,
    totals: Mutex<BTreeMap<Labels, Totals>>,
}

/// The labels of one link's counters, sorted as Prometheus prints them.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord)]
pub(crate) struct Labels {
    pub(crate) direction: &'static str,
    pub(crate) listener: String,
    pub(crate) proxy: String,
    pub(crate) upstream: String,
}

#[derive(Debug, Default, Clone, Copy)]
struct Totals {
    received: u64,
    sent: u64,
}

impl Metrics {
    /// A registry with the given families switched on.
    pub(crate) fn new(proxy: bool, runtime: bool) -> Self {
        Self {
            proxy,
            runtime,
            totals: Mutex::default(),
        }
    }

    /// Whether `/metrics` exists at all.
    pub(crate) fn enabled(&self) -> bool {
        self.proxy || self.runtime
    }

    /// Adds the totals of a finished link side.
    pub(crate) fn add(&self, labels: &Labels, received: u64, sent: u64) {
        if !self.proxy || (received == 0 && sent == 0) {
            return;
        }
        let mut totals = self
            .totals
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner());
        let entry = totals.entry(labels.clone()).or_default();
        entry.received = entry.received.saturating_add(received);
        entry.sent = entry.sent.saturating_add(sent);
    }

    /// The exposition text.
    pub(crate) fn render(&self, live_link_tasks: usize) -> String {
        let mut out = String::new();
        if self.proxy {
            let totals = self
                .totals
                .lock()
                .unwrap_or_else(|poisoned| poisoned.into_inner())
                .clone();
            family(
                &mut out,
                "received",
                "Total bytes received from a proxy",
                &totals,
                |t| t.received,
            );
            family(
                &mut out,
                "sent",
                "Total bytes sent through a proxy",
                &totals,
                |t| t.sent,
            );
        }
        if self.runtime {
            let fds = std::fs::read_dir("/proc/self/fd").map_or(0, |d| d.count());
            let _ = writeln!(out, "# HELP process_open_fds Number of open file descriptors.");
            let _ = writeln!(out, "# TYPE process_open_fds gauge\nprocess_open_fds {fds}");
            let _ = writeln!(
                out,
                "# HELP llm_chaos_link_tasks Live link tasks (two per direction per connection)."
            );
            let _ = writeln!(
                out,
                "# TYPE llm_chaos_link_tasks gauge\nllm_chaos_link_tasks {live_link_tasks}"
            );
        }
        out
    }
}

fn family(
    out: &mut String,
    what: &str,
    help: &str,
    totals: &BTreeMap<Labels, Totals>,
    pick: impl Fn(&Totals) -> u64,
) {
    let name = format!("toxiproxy_proxy_{what}_bytes_total");
    let _ = writeln!(out, "# HELP {name} {help}\n# TYPE {name} counter");
    for (l, t) in totals {
        let _ = writeln!(
            out,
            "{name}{{direction=\"{}\",listener=\"{}\",proxy=\"{}\",upstream=\"{}\"}} {}",
            l.direction,
            escape(&l.listener),
            escape(&l.proxy),
            escape(&l.upstream),
            pick(t)
        );
    }
}

fn escape(value: &str) -> String {
    value
        .replace('\\', "\\\\")
        .replace('"', "\\\"")
        .replace('\n', "\\n")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn renders_counters_with_sorted_labels() {
        let m = Metrics::new(true, false);
        let l = Labels {
            direction: "upstream",
            listener: "127.0.0.1:1".into(),
            proxy: "p\"q".into(),
            upstream: "u:2".into(),
        };
        m.add(&l, 10, 0);
        m.add(&l, 0, 7);
        let text = m.render(0);
        assert!(text.contains(
            "toxiproxy_proxy_received_bytes_total{direction=\"upstream\",listener=\"127.0.0.1:1\",proxy=\"p\\\"q\",upstream=\"u:2\"} 10"
        ));
        assert!(text.contains("toxiproxy_proxy_sent_bytes_total{direction=\"upstream\""));
        assert!(text.contains("} 7\n"));
    }
}
