//! The simulation's wall clock: `base` (`chrono::Utc::now()` taken once at start) plus the
//! tokio `Instant` elapsed since start, so a paused tokio clock moves timestamps consistently
//! with the guard's (same rule as the guard's clock).

use chrono::{DateTime, Utc};
use tokio::time::Instant;

/// Virtual-time-aware wall clock.
#[derive(Debug, Clone, Copy)]
pub struct SimClock {
    base: DateTime<Utc>,
    start: Instant,
}

impl SimClock {
    /// Take the base now (must run inside a tokio runtime).
    pub fn start() -> Self {
        Self {
            base: Utc::now(),
            start: Instant::now(),
        }
    }

    /// Current wall-clock time.
    pub fn now(&self) -> DateTime<Utc> {
        let elapsed = self.start.elapsed();
        self.base + chrono::Duration::from_std(elapsed).unwrap_or_else(|_| chrono::Duration::zero())
    }
}

/// Kubernetes `metav1.Time` text (RFC 3339, seconds, `Z`).
pub fn kube_time(t: DateTime<Utc>) -> String {
    t.to_rfc3339_opts(chrono::SecondsFormat::Secs, true)
}
