//! Waiting in virtual time (tokio paused clock), shared by every test suite that drives the
//! simulation: poll a condition once per virtual second, or let seconds pass one at a time.
//! One-second steps matter: with paused time the clock auto-advances to the next timer whenever
//! the runtime waits on socket I/O, so one long sleep could end before the controller's
//! in-flight HTTP round trips are done.

use std::time::Duration;

/// Check `cond` once per virtual second, at most `polls` times; whether it ever held.
pub async fn poll_each_second(cond: impl Fn() -> bool, polls: u64) -> bool {
    for _ in 0..polls {
        if cond() {
            return true;
        }
        tokio::time::sleep(Duration::from_secs(1)).await;
    }
    cond()
}

/// Let `secs` of virtual time pass in one-second steps.
pub async fn idle(secs: u64) {
    for _ in 0..secs {
        tokio::time::sleep(Duration::from_secs(1)).await;
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::atomic::{AtomicU64, Ordering};

    #[tokio::test(start_paused = true)]
    async fn polls_until_the_condition_holds_or_gives_up() {
        let start = tokio::time::Instant::now();
        let calls = AtomicU64::new(0);
        let held = poll_each_second(|| calls.fetch_add(1, Ordering::SeqCst) >= 3, 10).await;
        assert!(held);
        assert_eq!(calls.load(Ordering::SeqCst), 4);
        assert_eq!(start.elapsed(), Duration::from_secs(3));
        assert!(!poll_each_second(|| false, 5).await);
        idle(7).await;
        assert_eq!(start.elapsed(), Duration::from_secs(3 + 5 + 7));
    }
}
