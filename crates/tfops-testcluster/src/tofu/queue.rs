//! A work queue with controller-runtime semantics, on the tokio clock: one reconcile per key at
//! a time, deduplicated adds, `add_after` keeps the earliest due time, an add while a key is
//! being reconciled re-runs it right after, and `add_rate_limited` backs off per key
//! (`5ms * 2^failures`, capped at 1000 s; `forget` resets).

use std::collections::{BTreeMap, HashMap};
use std::time::Duration;

use tokio::time::Instant;

/// Queue key: `(namespace, name)`.
pub type Key = (String, String);

/// controller-runtime's default per-item backoff.
pub fn rate_limit_delay(failures: u32) -> Duration {
    let base = Duration::from_millis(5);
    let max = Duration::from_secs(1000);
    if failures >= 30 {
        return max;
    }
    base.saturating_mul(1u32 << failures).min(max)
}

#[derive(Debug, Default)]
struct Item {
    due: Option<Instant>,
    running: bool,
    failures: u32,
}

/// The queue state (no I/O; the driver polls it).
#[derive(Debug, Default)]
pub struct WorkQueue {
    items: HashMap<Key, Item>,
}

impl WorkQueue {
    /// Schedule `key` at `at` unless it is already due earlier.
    pub fn add_at(&mut self, key: Key, at: Instant) {
        let item = self.items.entry(key).or_default();
        item.due = Some(match item.due {
            Some(d) if d <= at => d,
            _ => at,
        });
    }

    /// Schedule now.
    pub fn add(&mut self, key: Key, now: Instant) {
        self.add_at(key, now);
    }

    /// Schedule after `delay`.
    pub fn add_after(&mut self, key: Key, now: Instant, delay: Duration) {
        self.add_at(key, now + delay);
    }

    /// Schedule after the key's backoff and count a failure.
    pub fn add_rate_limited(&mut self, key: Key, now: Instant) {
        let failures = self.items.get(&key).map(|i| i.failures).unwrap_or(0);
        let delay = rate_limit_delay(failures);
        self.items.entry(key.clone()).or_default().failures = failures.saturating_add(1);
        self.add_after(key, now, delay);
    }

    /// Reset the key's backoff.
    pub fn forget(&mut self, key: &Key) {
        if let Some(i) = self.items.get_mut(key) {
            i.failures = 0;
        }
    }

    /// Drop a key entirely (object gone).
    pub fn remove(&mut self, key: &Key) {
        if let Some(i) = self.items.get(key) {
            if !i.running {
                self.items.remove(key);
            } else if let Some(i) = self.items.get_mut(key) {
                i.due = None;
            }
        }
    }

    /// Keys due at `now` that are not running; marks them running.
    pub fn take_due(&mut self, now: Instant) -> Vec<Key> {
        let mut due: BTreeMap<Instant, Vec<Key>> = BTreeMap::new();
        for (k, i) in &self.items {
            if let Some(d) = i.due {
                if d <= now && !i.running {
                    due.entry(d).or_default().push(k.clone());
                }
            }
        }
        let keys: Vec<Key> = due.into_values().flatten().collect();
        for k in &keys {
            if let Some(i) = self.items.get_mut(k) {
                i.running = true;
                i.due = None;
            }
        }
        keys
    }

    /// Mark a reconcile of `key` finished.
    pub fn done(&mut self, key: &Key) {
        if let Some(i) = self.items.get_mut(key) {
            i.running = false;
        }
    }

    /// The earliest due time among keys not running.
    pub fn next_due(&self) -> Option<Instant> {
        self.items
            .values()
            .filter(|i| !i.running)
            .filter_map(|i| i.due)
            .min()
    }

    /// Current failure count of a key.
    pub fn failures(&self, key: &Key) -> u32 {
        self.items.get(key).map(|i| i.failures).unwrap_or(0)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn k(n: &str) -> Key {
        ("ns".to_string(), n.to_string())
    }

    #[test]
    fn earliest_due_wins_and_running_keys_wait() {
        let now = Instant::now();
        let mut q = WorkQueue::default();
        q.add_after(k("a"), now, Duration::from_secs(10));
        q.add_after(k("a"), now, Duration::from_secs(5));
        q.add_after(k("a"), now, Duration::from_secs(20));
        assert_eq!(q.next_due(), Some(now + Duration::from_secs(5)));
        assert!(q.take_due(now).is_empty());
        assert_eq!(q.take_due(now + Duration::from_secs(5)), vec![k("a")]);
        // while running, a new add is kept but not handed out
        q.add(k("a"), now + Duration::from_secs(6));
        assert!(q.take_due(now + Duration::from_secs(7)).is_empty());
        q.done(&k("a"));
        assert_eq!(q.take_due(now + Duration::from_secs(7)), vec![k("a")]);
    }

    #[test]
    fn rate_limit_doubles_and_forget_resets() {
        let now = Instant::now();
        let mut q = WorkQueue::default();
        q.add_rate_limited(k("b"), now);
        assert_eq!(q.next_due(), Some(now + Duration::from_millis(5)));
        q.take_due(now + Duration::from_secs(1));
        q.done(&k("b"));
        q.add_rate_limited(k("b"), now);
        assert_eq!(q.next_due(), Some(now + Duration::from_millis(10)));
        assert_eq!(q.failures(&k("b")), 2);
        q.forget(&k("b"));
        assert_eq!(q.failures(&k("b")), 0);
        assert_eq!(rate_limit_delay(40), Duration::from_secs(1000));
        assert_eq!(
            rate_limit_delay(17),
            Duration::from_secs(655) + Duration::from_millis(360)
        );
    }
}
