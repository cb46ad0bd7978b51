//! A small progress line on stderr (only when stderr is a terminal): scenario, phase, requests done, failures.

use std::io::{IsTerminal, Write};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

#[derive(Debug, Default)]
struct Inner {
    done: AtomicU64,
    failed: AtomicU64,
    total: AtomicU64,
    label: Mutex<String>,
    stop: AtomicBool,
}

/// A shared progress counter; cheap to clone.
#[derive(Debug, Clone, Default)]
pub struct Progress {
    inner: Arc<Inner>,
    enabled: bool,
}

impl Progress {
    /// A progress line drawn when `enabled` and stderr is a terminal.
    pub fn new(enabled: bool) -> Progress {
        let p = Progress {
            inner: Arc::new(Inner::default()),
            enabled: enabled && std::io::stderr().is_terminal(),
        };
        if p.enabled {
            let q = p.clone();
            tokio::spawn(async move {
                while !q.inner.stop.load(Ordering::Relaxed) {
                    q.draw();
                    tokio::time::sleep(Duration::from_millis(150)).await;
                }
            });
        }
        p
    }

    /// Starts a new stage (`scenario / phase`), with its request count when known.
    pub fn stage(&self, label: String, total: Option<u64>) {
        self.inner.done.store(0, Ordering::Relaxed);
        self.inner.failed.store(0, Ordering::Relaxed);
        self.inner.total.store(total.unwrap_or(0), Ordering::Relaxed);
        if let Ok(mut l) = self.inner.label.lock() {
            *l = label;
        }
    }

    /// One request done.
    pub fn tick(&self, ok: bool) {
        self.inner.done.fetch_add(1, Ordering::Relaxed);
        if !ok {
            self.inner.failed.fetch_add(1, Ordering::Relaxed);
        }
    }

    fn draw(&self) {
        let done = self.inner.done.load(Ordering::Relaxed);
        let failed = self.inner.failed.load(Ordering::Relaxed);
        let total = self.inner.total.load(Ordering::Relaxed);
        let label = self.inner.label.lock().map(|l| l.clone()).unwrap_or_default();
        let bar = if let Some(filled) = (done.min(total) * 30).checked_div(total) {
            let filled = filled as usize;
            format!(
                "[{}{}] {done}/{total}",
                "#".repeat(filled),
                "-".repeat(30 - filled)
            )
        } else {
            format!("{done} requests")
        };
        let mut err = std::io::stderr().lock();
        let _ = write!(err, "\r\x1b[2K{label} {bar} ({failed} not ok)");
        let _ = err.flush();
    }

    /// Clears the line before other output.
    pub fn clear(&self) {
        if self.enabled {
            let mut err = std::io::stderr().lock();
            let _ = write!(err, "\r\x1b[2K");
            let _ = err.flush();
        }
    }

    /// Stops drawing.
    pub fn finish(&self) {
        self.inner.stop.store(true, Ordering::Relaxed);
        self.clear();
    }
}
