//! Counting live link tasks, so that stopping a proxy can wait for its connections and tests can check leaks.

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;

use tokio::sync::Notify;

/// A count of live tasks that can be awaited until it drops to zero.
#[derive(Debug, Default)]
pub(crate) struct TaskCounter {
    live: AtomicUsize,
    idle: Notify,
}

impl TaskCounter {
    /// Tasks alive right now.
    pub(crate) fn live(&self) -> usize {
        self.live.load(Ordering::Acquire)
    }

    /// Returns once no task is alive.
    pub(crate) async fn wait_idle(&self) {
        loop {
            let notified = self.idle.notified();
            tokio::pin!(notified);
            notified.as_mut().enable();
            if self.live() == 0 {
                return;
            }
            notified.await;
        }
    }
}

/// Held by a task for its whole life: counts it in every counter given.
#[derive(Debug)]
pub(crate) struct TaskGuard {
    counters: Vec<Arc<TaskCounter>>,
}

impl TaskGuard {
    /// Counts one more live task in each counter.
    pub(crate) fn new(counters: &[Arc<TaskCounter>]) -> Self {
        for c in counters {
            c.live.fetch_add(1, Ordering::AcqRel);
        }
        Self {
            counters: counters.to_vec(),
        }
    }
}

impl Drop for TaskGuard {
    fn drop(&mut self) {
        for c in &self.counters {
            if c.live.fetch_sub(1, Ordering::AcqRel) == 1 {
                c.idle.notify_waiters();
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn waits_until_the_last_guard_drops() {
        let c = Arc::new(TaskCounter::default());
        let g = TaskGuard::new(std::slice::from_ref(&c));
        assert_eq!(c.live(), 1);
        let waiter = tokio::spawn({
            let c = c.clone();
            async move { c.wait_idle().await }
        });
        drop(g);
        waiter.await.unwrap();
        assert_eq!(c.live(), 0);
    }
}
