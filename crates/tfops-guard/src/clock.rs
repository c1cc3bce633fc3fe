//! `clock` — the guard's wall clock: `base` (`chrono::Utc::now()` taken once at start) plus
//! the `tokio::time::Instant` elapsed since start, so paused virtual time in tests moves the
//! timestamps the guard writes consistently with the tofu-controller simulation.

use std::time::Duration;

use chrono::{DateTime, Utc};
use tokio::time::Instant;

/// Monotonic clock anchored to a wall-clock base.
#[derive(Debug, Clone, Copy)]
pub struct Clock {
    base: DateTime<Utc>,
    start: Instant,
}

impl Clock {
    /// Anchor now.
    pub fn start() -> Self {
        Self {
            base: Utc::now(),
            start: Instant::now(),
        }
    }

    /// Anchor at an explicit base (tests).
    pub fn with_base(base: DateTime<Utc>) -> Self {
        Self {
            base,
            start: Instant::now(),
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

    /// Wall-clock now: base + elapsed.
    pub fn now(&self) -> DateTime<Utc> {
        self.at(self.start.elapsed())
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
        tokio::time::sleep(Duration::from_secs(90)).await;
        assert_eq!(c.now(), base + chrono::Duration::seconds(90));
        assert_eq!(c.offset_of(c.now()), Duration::from_secs(90));
        assert_eq!(
            c.offset_of(base - chrono::Duration::seconds(5)),
            Duration::ZERO
        );
    }
}
