//! `lock` — Terraform state-lock facts read from a failure message (pure).
//!
//! tofu-controller v0.16.5 never leaves a lock signal that survives in status: the Ready
//! reason `LockHeld` written by `TerraformStateLocked` is overwritten in the same reconcile by
//! `TFExecPlanFailed` / `TFExecInitFailed` / `TFExecApplyFailed` (`controllers/tf_controller_plan.go`),
//! and `status.lock.pending` stays after the lock is released and later failures have other
//! causes. The one current signal is the failure message itself, which carries Terraform's
//! `Lock Info:` block (`ID`, `Who`, `Created` …), wrapped in gRPC text and sometimes with its
//! newlines folded into spaces. The guard force-unlocks only a lock that the CURRENT message
//! names, and only when its holder is provably gone.

use chrono::{DateTime, NaiveDateTime, Utc};

/// What Terraform's `Lock Info:` block says about a held lock.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LockInfo {
    /// `ID:` — the lock identifier `terraform force-unlock` needs.
    pub id: String,
    /// `Who:` — `user@host` of the holder (for a runner: `<user>@<runner pod name>`).
    pub who: Option<String>,
    /// `Created:` — when the holder took the lock.
    pub created: Option<DateTime<Utc>>,
}

impl LockInfo {
    /// The host part of `Who` (`runner@shop-db-tf-runner` → `shop-db-tf-runner`).
    pub fn holder_host(&self) -> Option<&str> {
        let who = self.who.as_deref()?;
        who.rsplit_once('@').map(|(_, h)| h).or(Some(who))
    }

    /// Whether the holder is the runner pod of the `Terraform` named `name` (tofu-controller
    /// names it `<name>-tf-runner`, and Terraform's `Who` is `user@hostname`).
    pub fn held_by_runner_of(&self, name: &str) -> bool {
        self.holder_host()
            .and_then(|h| h.strip_suffix("-tf-runner"))
            .is_some_and(|n| n == name)
    }
}

/// Field names of the block, in Terraform's order; a value ends where the next one starts.
const FIELDS: [&str; 7] = [
    "ID:",
    "Path:",
    "Operation:",
    "Who:",
    "Version:",
    "Created:",
    "Info:",
];

/// The lock described by `message`, if it is a state-lock failure with a `Lock Info:` block.
pub fn lock_info(message: &str) -> Option<LockInfo> {
    let lower = message.to_ascii_lowercase();
    let start = lower.find("lock info:")? + "lock info:".len();
    let block = &message[start..];
    let id = field(block, "ID:")?;
    let id = id.split_whitespace().next()?.trim_matches('"').to_owned();
    if id.is_empty() {
        return None;
    }
    let who = field(block, "Who:")
        .and_then(|w| w.split_whitespace().next().map(str::to_owned))
        .filter(|w| !w.is_empty());
    let created = field(block, "Created:").and_then(|c| parse_go_time(&c));
    Some(LockInfo { id, who, created })
}

/// The text after `name` up to the next known field (or a blank line / the end).
fn field(block: &str, name: &str) -> Option<String> {
    let at = find_field(block, name)?;
    let rest = &block[at + name.len()..];
    let mut end = rest.len();
    for f in FIELDS.iter().filter(|f| **f != name) {
        if let Some(i) = find_field(rest, f) {
            end = end.min(i);
        }
    }
    if let Some(i) = rest.find("\n\n") {
        end = end.min(i);
    }
    let v = rest[..end].trim();
    (!v.is_empty()).then(|| v.to_owned())
}

/// Position of `name` as a field label: at the start or after whitespace (so `ID:` does not
/// match inside `UUID:`).
fn find_field(hay: &str, name: &str) -> Option<usize> {
    let mut from = 0;
    while let Some(i) = hay[from..].find(name) {
        let at = from + i;
        let before = hay[..at].chars().next_back();
        if before.is_none_or(char::is_whitespace) {
            return Some(at);
        }
        from = at + name.len();
    }
    None
}

/// Go's `time.Time.String()`: `2026-12-03 10:11:12.123456789 +0000 UTC`.
fn parse_go_time(s: &str) -> Option<DateTime<Utc>> {
    let mut parts = s.split_whitespace();
    let date = parts.next()?;
    let time = parts.next()?;
    let offset = parts.next().unwrap_or("+0000");
    let text = format!("{date} {time} {offset}");
    DateTime::parse_from_str(&text, "%Y-%m-%d %H:%M:%S%.f %z")
        .map(|t| t.with_timezone(&Utc))
        .ok()
        .or_else(|| {
            NaiveDateTime::parse_from_str(&format!("{date} {time}"), "%Y-%m-%d %H:%M:%S%.f")
                .ok()
                .map(|n| n.and_utc())
        })
}

#[cfg(test)]
mod tests {
    use super::*;
    use chrono::TimeZone;

    /// As tofu-controller v0.16.5 reports it (runner gRPC error around Terraform's text).
    const WRAPPED: &str = "error running Plan: rpc error: code = Internal desc = error acquiring the state lock: Error acquiring the state lock\n\nError message: the state is already locked by another terraform client\nLock Info:\n  ID:        6f4d6b37-2c5b-9b1e-8c1e-1a2b3c4d5e6f\n  Path:      \n  Operation: OperationTypeApply\n  Who:       runner@shop-db-tf-runner\n  Version:   1.5.7\n  Created:   2026-12-03 10:11:12.123456789 +0000 UTC\n  Info:      \n\n\nTerraform acquires a state lock to protect the state from being written\nby multiple users at the same time.";

    #[test]
    fn reads_id_who_and_created_from_the_wrapped_message() {
        let l = lock_info(WRAPPED).unwrap();
        assert_eq!(l.id, "6f4d6b37-2c5b-9b1e-8c1e-1a2b3c4d5e6f");
        assert_eq!(l.who.as_deref(), Some("runner@shop-db-tf-runner"));
        assert_eq!(l.holder_host(), Some("shop-db-tf-runner"));
        assert!(l.held_by_runner_of("shop-db"));
        assert!(!l.held_by_runner_of("db") && !l.held_by_runner_of("shop-db-tf"));
        let want = Utc.with_ymd_and_hms(2026, 12, 3, 10, 11, 12).unwrap()
            + chrono::Duration::nanoseconds(123_456_789);
        assert_eq!(l.created, Some(want));
    }

    #[test]
    fn folded_newlines_still_parse() {
        let folded = WRAPPED.replace('\n', " ");
        let l = lock_info(&folded).unwrap();
        assert_eq!(l.id, "6f4d6b37-2c5b-9b1e-8c1e-1a2b3c4d5e6f");
        assert_eq!(l.who.as_deref(), Some("runner@shop-db-tf-runner"));
        assert!(l.created.is_some());
    }

    #[test]
    fn a_message_without_lock_info_has_no_lock() {
        assert_eq!(
            lock_info("error running Apply: rpc error: code = Internal desc = AccessDenied"),
            None
        );
        assert_eq!(lock_info("Lock Info: (nothing here)"), None);
    }

    #[test]
    fn uuid_label_is_not_the_id_field() {
        let m = "Lock Info:\n  UUID: nope\n  ID: abc-1\n";
        assert_eq!(lock_info(m).unwrap().id, "abc-1");
    }

    #[test]
    fn hostile_input_does_not_panic() {
        for m in [
            "Lock Info:",
            "lock info: ID:",
            "LOCK INFO:\u{0}ID:\u{fffd}",
            "Lock Info: ID: x Created: not-a-time",
        ] {
            let _ = lock_info(m);
        }
        let big = format!("Lock Info: ID: {}", "a".repeat(200_000));
        assert_eq!(lock_info(&big).unwrap().id.len(), 200_000);
    }
}
