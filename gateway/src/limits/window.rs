//! A fixed-window counter on tokio time (paused-time tests move it): `used` against `limit` per `period`,
//! starting at the first use. Token counts may overshoot (usage is known after the answer); the window then
//! stays closed until it resets.

use std::time::Duration;

use tokio::time::Instant;

/// One budget window.
#[derive(Debug, Clone)]
pub struct Window {
    limit: u64,
    period: Duration,
    start: Option<Instant>,
    used: u64,
}

impl Window {
    /// A window of `limit` per `period`.
    pub fn new(limit: u64, period: Duration) -> Window {
        Window {
            limit,
            period,
            start: None,
            used: 0,
        }
    }

    fn roll(&mut self, now: Instant) {
        if let Some(s) = self.start {
            if now >= s + self.period {
                self.start = None;
                self.used = 0;
            }
        }
    }

    /// `None` when there is room; else how long until the window resets.
    pub fn blocked(&mut self, now: Instant) -> Option<Duration> {
        self.roll(now);
        if self.used < self.limit {
            return None;
        }
        Some(self.start.map_or(Duration::ZERO, |s| {
            (s + self.period).saturating_duration_since(now)
        }))
    }

    /// Adds `n` (opening the window on first use).
    pub fn add(&mut self, now: Instant, n: u64) {
        self.roll(now);
        if self.start.is_none() {
            self.start = Some(now);
        }
        self.used = self.used.saturating_add(n);
    }

    /// Takes back `n` added in the current window (a request counted but not made).
    pub fn sub(&mut self, now: Instant, n: u64) {
        self.roll(now);
        self.used = self.used.saturating_sub(n);
    }

    /// Used so far in the current window.
    pub fn used(&mut self, now: Instant) -> u64 {
        self.roll(now);
        self.used
    }

    /// The limit.
    pub fn limit(&self) -> u64 {
        self.limit
    }

    /// Time until the current window resets (`None` when no window is open).
    pub fn resets_in(&self, now: Instant) -> Option<Duration> {
        self.start
            .map(|s| (s + self.period).saturating_duration_since(now))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test(start_paused = true)]
    async fn window_blocks_at_the_limit_and_resets_after_its_period() {
        let mut w = Window::new(10, Duration::from_secs(60));
        let t0 = Instant::now();
        assert_eq!(w.blocked(t0), None);
        w.add(t0, 7);
        assert_eq!(w.blocked(t0), None);
        w.add(t0, 7); // overshoot: usage is known after the answer
        assert_eq!(
            w.blocked(t0 + Duration::from_secs(20)),
            Some(Duration::from_secs(40))
        );
        tokio::time::advance(Duration::from_secs(60)).await;
        assert_eq!(w.blocked(Instant::now()), None);
        assert_eq!(w.used(Instant::now()), 0);
    }
}
