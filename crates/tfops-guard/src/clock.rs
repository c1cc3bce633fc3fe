//! `clock` — the guard's wall clock: `base` (`chrono::Utc::now()` taken once at start) plus
//! the `tokio::time::Instant` elapsed since start, so paused virtual time in tests moves the
//! timestamps the guard writes consistently with the tofu-controller simulation.
//!
//! [`Clock::now`] is strictly increasing across calls (at least 1 ns apart): the machine
//! derives `reconcile.fluxcd.io/requestedAt` tokens from it, and a paused test clock would
//! otherwise hand two decisions the same instant and therefore the same token.

use std::sync::atomic::{AtomicI64, Ordering};
use std::sync::Arc;
use std::time::Duration;

use chrono::{DateTime, Utc};
use tokio::time::Instant;

/// Monotonic clock anchored to a wall-clock base.
#[derive(Debug, Clone)]
pub struct Clock {
    base: DateTime<Utc>,
    start: Instant,
    /// Nanoseconds since `base` of the last `now()` reading.
    last: Arc<AtomicI64>,
}

impl Clock {
    /// Anchor now.
    pub fn start() -> Self {
        Self::with_base(Utc::now())
    }

    /// Anchor at an explicit base (tests).
    pub fn with_base(base: DateTime<Utc>) -> Self {
        Self {
            base,
            start: Instant::now(),
            last: Arc::new(AtomicI64::new(-1)),
        }
    }

    /// Time since the clock was anchored.
    pub fn elapsed(&self) -> Duration {
        self.start.elapsed()
    }

    /// The tokio instant the clock was anchored at.
    pub fn started_at(&self) -> Instant {
        self.start
    }

    /// Wall-clock now: base + elapsed, strictly after any earlier reading of this clock.
    pub fn now(&self) -> DateTime<Utc> {
        let elapsed = i64::try_from(self.start.elapsed().as_nanos()).unwrap_or(i64::MAX);
        let mut prev = self.last.load(Ordering::Relaxed);
        loop {
            let next = elapsed.max(prev.saturating_add(1));
            match self
                .last
                .compare_exchange(prev, next, Ordering::Relaxed, Ordering::Relaxed)
            {
                Ok(_) => return self.base + chrono::Duration::nanoseconds(next),
                Err(p) => prev = p,
            }
        }
    }

    /// Wall-clock time `offset` after the anchor.
    pub fn at(&self, offset: Duration) -> DateTime<Utc> {
        self.base + chrono::Duration::from_std(offset).unwrap_or(chrono::Duration::MAX)
    }

    /// Offset from the anchor of a wall-clock time (zero if before it).
    pub fn offset_of(&self, t: DateTime<Utc>) -> Duration {
        (t - self.base).to_std().unwrap_or(Duration::ZERO)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test(start_paused = true)]
    async fn virtual_time_moves_the_wall_clock() {
        let base: DateTime<Utc> = "2026-11-26T00:00:00Z".parse().unwrap();
        let c = Clock::with_base(base);
        assert_eq!(c.now(), base);
        // Readings at the same virtual instant are still distinct and increasing.
        let (a, b) = (c.now(), c.now());
        assert!(base < a && a < b);
        tokio::time::sleep(Duration::from_secs(90)).await;
        assert_eq!(c.now(), base + chrono::Duration::seconds(90));
        assert!(c.offset_of(c.now()) > Duration::from_secs(90));
        assert_eq!(
            c.offset_of(base - chrono::Duration::seconds(5)),
            Duration::ZERO
        );
    }
}
