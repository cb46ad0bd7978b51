//! The span processor: finished spans go into a bounded queue (never blocking the request that ends them; a full
//! queue drops the span and counts it), and one thread of its own, with its own small runtime, sends them in
//! batches. A collector that is down or slow costs that thread's time only: the gateway's runtime never waits
//! for an export.

use std::sync::mpsc::{Receiver, RecvTimeoutError, SyncSender, TrySendError};
use std::sync::{Mutex, RwLock};
use std::thread::JoinHandle;
use std::time::Duration;

use tokio::time::Instant;

use opentelemetry::Context;
use opentelemetry_sdk::error::{OTelSdkError, OTelSdkResult};
use opentelemetry_sdk::trace::{Span, SpanData, SpanExporter, SpanProcessor};
use prometheus_client::metrics::counter::Counter;

/// How a queue processor batches.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Batching {
    pub(crate) queue_size: usize,
    pub(crate) batch_size: usize,
    pub(crate) interval: Duration,
}

/// What the export thread is asked besides spans.
enum Msg {
    Span(Box<SpanData>),
    /// Export what is queued, then answer.
    Flush(std::sync::mpsc::Sender<()>),
}

/// A batch span processor with a bounded queue and a dropped-span counter.
#[derive(Debug)]
pub(crate) struct QueueProcessor {
    tx: RwLock<Option<SyncSender<Msg>>>,
    dropped: Counter,
    /// Answers once the thread has exported what was queued and ended.
    finished: Mutex<Option<Receiver<()>>>,
    thread: Mutex<Option<JoinHandle<()>>>,
}

impl QueueProcessor {
    /// Starts the export thread for `exporter`.
    pub(crate) fn start<E: SpanExporter + 'static>(
        exporter: E,
        batching: Batching,
        dropped: Counter,
    ) -> std::io::Result<QueueProcessor> {
        // One slot more for a flush request beside a full queue of spans.
        let (tx, rx) = std::sync::mpsc::sync_channel(batching.queue_size + 1);
        let counter = dropped.clone();
        let (finish, finished) = std::sync::mpsc::channel();
        let thread = std::thread::Builder::new()
            .name("otlp-export".into())
            .spawn(move || {
                run(exporter, rx, batching, counter);
                let _ = finish.send(());
            })?;
        Ok(QueueProcessor {
            tx: RwLock::new(Some(tx)),
            dropped,
            finished: Mutex::new(Some(finished)),
            thread: Mutex::new(Some(thread)),
        })
    }

    fn sender(&self) -> Option<SyncSender<Msg>> {
        match self.tx.read() {
            Ok(g) => g.clone(),
            Err(p) => p.into_inner().clone(),
        }
    }
}

impl SpanProcessor for QueueProcessor {
    fn on_start(&self, _span: &mut Span, _cx: &Context) {}

    fn on_end(&self, span: SpanData) {
        let sent = match self.tx.read() {
            Ok(g) => g.as_ref().map(|tx| tx.try_send(Msg::Span(Box::new(span)))),
            Err(p) => p
                .into_inner()
                .as_ref()
                .map(|tx| tx.try_send(Msg::Span(Box::new(span)))),
        };
        match sent {
            Some(Ok(())) => {}
            Some(Err(TrySendError::Full(_) | TrySendError::Disconnected(_))) | None => {
                self.dropped.inc();
            }
        };
    }

    fn force_flush(&self) -> OTelSdkResult {
        let Some(tx) = self.sender() else {
            return Err(OTelSdkError::AlreadyShutdown);
        };
        let (done, wait) = std::sync::mpsc::channel();
        tx.try_send(Msg::Flush(done))
            .map_err(|_| OTelSdkError::InternalFailure("export queue full".into()))?;
        wait.recv_timeout(Duration::from_secs(30))
            .map_err(|_| OTelSdkError::Timeout(Duration::from_secs(30)))
    }

    fn shutdown_with_timeout(&self, timeout: Duration) -> OTelSdkResult {
        let tx = match self.tx.write() {
            Ok(mut g) => g.take(),
            Err(p) => p.into_inner().take(),
        };
        let Some(tx) = tx else {
            return Err(OTelSdkError::AlreadyShutdown);
        };
        // Dropping the last sender ends the thread once it has exported what is queued.
        drop(tx);
        let finished = match self.finished.lock() {
            Ok(mut g) => g.take(),
            Err(p) => p.into_inner().take(),
        };
        let flushed = finished.map(|f| f.recv_timeout(timeout));
        let thread = match self.thread.lock() {
            Ok(mut g) => g.take(),
            Err(p) => p.into_inner().take(),
        };
        if matches!(flushed, Some(Ok(()))) {
            if let Some(t) = thread {
                let _ = t.join();
            }
            Ok(())
        } else {
            Err(OTelSdkError::Timeout(timeout))
        }
    }
}

fn run<E: SpanExporter>(exporter: E, rx: Receiver<Msg>, b: Batching, dropped: Counter) {
    let rt = match tokio::runtime::Builder::new_current_thread().enable_all().build() {
        Ok(rt) => rt,
        Err(e) => {
            tracing::error!(error = %e, "OTLP export thread has no runtime: spans are dropped");
            for m in rx {
                if let Msg::Span(_) = m {
                    dropped.inc();
                }
            }
            return;
        }
    };
    let mut failing = false;
    let mut batch: Vec<SpanData> = Vec::with_capacity(b.batch_size);
    let mut export = |batch: &mut Vec<SpanData>| {
        if batch.is_empty() {
            return;
        }
        let n = batch.len() as u64;
        match rt.block_on(exporter.export(std::mem::take(batch))) {
            Ok(()) => {
                if failing {
                    tracing::info!("OTLP trace export works again");
                    failing = false;
                }
            }
            Err(e) => {
                dropped.inc_by(n);
                if !failing {
                    // Once per outage, not per batch.
                    tracing::warn!(error = %e, spans = n, "OTLP trace export failed; spans are dropped until it works");
                    failing = true;
                }
            }
        }
    };
    let mut due = Instant::now() + b.interval;
    loop {
        match rx.recv_timeout(due.saturating_duration_since(Instant::now())) {
            Ok(Msg::Span(s)) => {
                batch.push(*s);
                if batch.len() >= b.batch_size {
                    export(&mut batch);
                    due = Instant::now() + b.interval;
                }
            }
            Ok(Msg::Flush(done)) => {
                export(&mut batch);
                let _ = done.send(());
            }
            Err(RecvTimeoutError::Timeout) => {
                export(&mut batch);
                due = Instant::now() + b.interval;
            }
            Err(RecvTimeoutError::Disconnected) => {
                export(&mut batch);
                break;
            }
        }
    }
    let _ = exporter.shutdown();
}

#[cfg(test)]
mod tests {
    use super::*;
    use opentelemetry::trace::{Tracer, TracerProvider};
    use opentelemetry_sdk::trace::SdkTracerProvider;
    use std::sync::atomic::{AtomicUsize, Ordering};
    use std::sync::Arc;

    /// An exporter that fails every batch, or blocks until released.
    #[derive(Debug, Clone)]
    struct Stub {
        exported: Arc<AtomicUsize>,
        fail: bool,
        gate: Arc<(Mutex<bool>, std::sync::Condvar)>,
    }

    impl SpanExporter for Stub {
        async fn export(&self, batch: Vec<SpanData>) -> OTelSdkResult {
            let (m, cv) = &*self.gate;
            let mut open = m.lock().unwrap();
            while !*open {
                open = cv.wait(open).unwrap();
            }
            if self.fail {
                return Err(OTelSdkError::InternalFailure("collector down".into()));
            }
            self.exported.fetch_add(batch.len(), Ordering::SeqCst);
            Ok(())
        }
    }

    fn stub(fail: bool, open: bool) -> Stub {
        Stub {
            exported: Arc::new(AtomicUsize::new(0)),
            fail,
            gate: Arc::new((Mutex::new(open), std::sync::Condvar::new())),
        }
    }

    fn provider(s: &Stub, queue: usize, dropped: &Counter) -> SdkTracerProvider {
        let b = Batching {
            queue_size: queue,
            batch_size: 2,
            interval: Duration::from_secs(3600),
        };
        let p = QueueProcessor::start(s.clone(), b, dropped.clone()).unwrap();
        SdkTracerProvider::builder().with_span_processor(p).build()
    }

    #[test]
    fn a_stuck_collector_fills_the_queue_and_later_spans_are_dropped_and_counted_without_waiting() {
        let (s, dropped) = (stub(false, false), Counter::default());
        let p = provider(&s, 4, &dropped);
        let t = p.tracer("test");
        let start = Instant::now();
        for _ in 0..50 {
            t.start("span");
        }
        assert!(
            start.elapsed() < Duration::from_secs(1),
            "ending spans never waits on the exporter"
        );
        // The thread holds at most one batch (2) in the stuck export; the queue (4, plus the flush slot) the rest.
        let d = dropped.get();
        assert!((50 - 2 - 5..=50 - 2).contains(&(d as usize)), "dropped {d}");
        let (m, cv) = &*s.gate;
        *m.lock().unwrap() = true;
        cv.notify_all();
        p.shutdown().unwrap();
        assert_eq!(s.exported.load(Ordering::SeqCst) as u64 + dropped.get(), 50);
    }

    #[test]
    fn failed_exports_count_their_spans_as_dropped() {
        let (s, dropped) = (stub(true, true), Counter::default());
        let p = provider(&s, 100, &dropped);
        let t = p.tracer("test");
        for _ in 0..5 {
            t.start("span");
        }
        p.force_flush().unwrap();
        assert_eq!(dropped.get(), 5);
        p.shutdown().unwrap();
    }
}
