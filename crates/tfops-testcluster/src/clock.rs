//! The cluster clock: `base` (wall clock taken once at start) + tokio `Instant` elapsed since
//! start, so paused virtual time in tests moves timestamps consistently with the guard and the
//! simulation.

use chrono::{DateTime, SecondsFormat, Utc};
use tokio::time::Instant;

/// Wall-clock timestamps derived from tokio's (possibly paused) clock.
#[derive(Debug, Clone, Copy)]
pub struct Clock {
    base: DateTime<Utc>,
    start: Instant,
}

impl Clock {
    /// Start a clock now.
    pub fn start() -> Self {
        Self {
            base: Utc::now(),
            start: Instant::now(),
        }
    }

    /// Current time.
    pub fn now(&self) -> DateTime<Utc> {
        let elapsed = Instant::now().saturating_duration_since(self.start);
        self.base + chrono::Duration::from_std(elapsed).unwrap_or(chrono::Duration::zero())
    }

    /// Current time as RFC 3339 with second precision (`2026-11-26T20:43:32Z`), as Kubernetes
    /// writes `metav1.Time`.
    pub fn now_rfc3339(&self) -> String {
        self.now().to_rfc3339_opts(SecondsFormat::Secs, true)
    }

    /// Current time with microseconds (`metav1.MicroTime`, used by events.k8s.io and leases).
    pub fn now_micro(&self) -> String {
        self.now().to_rfc3339_opts(SecondsFormat::Micros, true)
    }
}
