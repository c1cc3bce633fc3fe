//! `progress` — the schema of what the guard persists on each `Terraform` CR between decisions
//! (annotation `tfops.dev/guard-progress`), so that a killed and re-run guard continues
//! (attempt counts, first failure, requests sent, phase) instead of restarting, and so that
//! `helm tfops status` can show where the guard is. With it, the two enums the progress and the
//! ledger store: [`FailureClass`] and [`Outcome`].
//!
//! Stored as JSON (camelCase). The guard's machine returns the updated [`Progress`] with every
//! decision; the runtime writes it in the same patch as the decision's own change whenever the
//! CR still exists. Readers tolerate unknown fields (a newer guard) and missing ones.

use std::collections::BTreeMap;
use std::fmt;

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};

/// What kind of failure a destroy hit.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum FailureClass {
    /// Worth retrying: throttling, 5xx, timeouts, "still in use", state lock held…
    Transient,
    /// Retrying will not help: access denied, invalid configuration, deletion protection…
    Permanent,
    /// The controller cannot even start: source, varsFrom Secret or runner SA missing.
    BlockedByMissingDependency,
    /// No rule matched; treated like transient (retried up to the retry limit).
    Unknown,
}

impl FailureClass {
    /// Spelling used in JSON, ledger entries and `explain`.
    pub fn as_str(self) -> &'static str {
        match self {
            FailureClass::Transient => "transient",
            FailureClass::Permanent => "permanent",
            FailureClass::BlockedByMissingDependency => "blocked-by-missing-dependency",
            FailureClass::Unknown => "unknown",
        }
    }
}

impl fmt::Display for FailureClass {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl std::str::FromStr for FailureClass {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, String> {
        match s {
            "transient" => Ok(FailureClass::Transient),
            "permanent" => Ok(FailureClass::Permanent),
            "blocked-by-missing-dependency" => Ok(FailureClass::BlockedByMissingDependency),
            "unknown" => Ok(FailureClass::Unknown),
            other => Err(format!(
                "unknown class {other:?} (expected transient, permanent, blocked-by-missing-dependency or unknown)"
            )),
        }
    }
}

/// Terminal outcome for one CR.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum Outcome {
    /// The controller destroyed the resources and released the CR.
    Destroyed,
    /// The controller released the CR with nothing to destroy (planned no changes, or it
    /// never managed the CR: no finalizer when deleted).
    NothingToDestroy,
    /// Ledger written; the controller released the CR without destroying.
    Orphaned,
    /// Ledger written; the guard stripped the finalizers.
    ForceRemoved,
    /// Policy `block`: the guard exits non-zero with the block message.
    Blocked,
}

impl Outcome {
    /// Kebab-case spelling.
    pub fn as_str(self) -> &'static str {
        match self {
            Outcome::Destroyed => "destroyed",
            Outcome::NothingToDestroy => "nothing-to-destroy",
            Outcome::Orphaned => "orphaned",
            Outcome::ForceRemoved => "force-removed",
            Outcome::Blocked => "blocked",
        }
    }
}

impl fmt::Display for Outcome {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// Annotation holding the JSON of [`Progress`].
pub const PROGRESS_ANNOTATION: &str = crate::names::ANN_GUARD_PROGRESS;

/// Longest failure message kept in the progress annotation (characters).
pub const MAX_MESSAGE_CHARS: usize = 512;

/// Where the guard is with one CR.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum Phase {
    /// Nothing done yet (not deleted by the guard).
    #[default]
    Pending,
    /// Deleted (or deletion observed); waiting for the controller to destroy; retries happen
    /// in this phase.
    Deleting,
    /// A force-unlock of the state lock was requested.
    Unlocking,
    /// Ledger written and `destroyResourcesOnDeletion: false` requested; waiting for the
    /// controller to release the CR.
    Orphaning,
    /// Ledger written; finalizers are being stripped.
    ForceRemoving,
    /// Policy `block` stopped the guard on this CR.
    Blocked,
    /// Terminal: see `outcome`.
    Done,
}

impl Phase {
    /// Kebab-case spelling.
    pub fn as_str(self) -> &'static str {
        match self {
            Phase::Pending => "pending",
            Phase::Deleting => "deleting",
            Phase::Unlocking => "unlocking",
            Phase::Orphaning => "orphaning",
            Phase::ForceRemoving => "force-removing",
            Phase::Blocked => "blocked",
            Phase::Done => "done",
        }
    }
}

/// The guard's persisted progress on one CR.
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", default)]
pub struct Progress {
    pub phase: Phase,
    /// Failed destroy attempts observed by the guard (the first failure counts as 1; each
    /// retry the guard requested and saw fail adds 1).
    pub attempts: u32,
    /// When the guard first deleted (or saw deleted) this CR.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub started_at: Option<DateTime<Utc>>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub first_failure_at: Option<DateTime<Utc>>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub last_failure_at: Option<DateTime<Utc>>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub last_failure_reason: Option<String>,
    /// Truncated to [`MAX_MESSAGE_CHARS`].
    #[serde(skip_serializing_if = "Option::is_none")]
    pub last_failure_message: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub last_failure_class: Option<FailureClass>,
    /// The last `reconcile.fluxcd.io/requestedAt` value the guard set.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub last_requested_at: Option<String>,
    /// When the guard set it.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub last_requested_sent_at: Option<DateTime<Utc>>,
    /// The request token whose (failed) result has been counted in `attempts`.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub counted_request: Option<String>,
    /// When the guard will escalate to the on-failure action if nothing changes.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub escalates_at: Option<DateTime<Utc>>,
    /// Why the guard escalated (set with phase orphaning / force-removing / blocked).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub escalation_reason: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub orphan_requested_at: Option<DateTime<Utc>>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub force_removed_at: Option<DateTime<Utc>>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub blocked_at: Option<DateTime<Utc>>,
    /// Lock id the guard asked the controller to force-unlock.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub force_unlocked_lock: Option<String>,
    /// Since when a missing dependency (source without artifact…) has been seen.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub missing_dependency_since: Option<DateTime<Utc>>,
    /// The controller planned "No objects need to be destroyed", or the CR was deleted
    /// before the controller ever put its finalizer on it.
    #[serde(skip_serializing_if = "std::ops::Not::not")]
    pub nothing_to_destroy: bool,
    /// Set with phase done.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub outcome: Option<Outcome>,
    /// When the guard saw the controller report a successful apply after the deletion
    /// (the destroy ran to its end): the outcome is `destroyed` whatever the guard asked
    /// for later (an orphan request cannot stop a destroy that had started).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub destroy_applied_at: Option<DateTime<Utc>>,
    /// The CR's `Apply` condition (`status|lastTransitionTime|message`, or `none`) as it was
    /// when the deletion started: a later `Apply=True` that differs from it is the destroy's.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub apply_baseline: Option<String>,
    /// The last time (guard clock) the guard saw a destroy in flight (runner pod up,
    /// `Apply=Unknown`). Gaps between the controller's reconciles (a runner that timed out and
    /// is being re-created) are not a reason to give up on a destroy that was just running.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub last_busy_at: Option<DateTime<Utc>>,
    /// `spec.tfstate` fields the guard changed for a force-unlock, with their earlier values
    /// (`null` = absent); restored once the unlock request was handled.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub tfstate_before_unlock: Option<serde_json::Value>,
}

/// The progress annotation could not be read.
#[derive(Debug, thiserror::Error)]
#[error("annotation {PROGRESS_ANNOTATION}: invalid JSON ({0}); starting from scratch")]
pub struct ProgressError(#[source] pub serde_json::Error);

impl Progress {
    /// Read the progress from a CR's annotations (`Ok(None)` when absent). On error the
    /// runtime should report it and continue with `Progress::default()`.
    pub fn from_annotations(
        annotations: &BTreeMap<String, String>,
    ) -> Result<Option<Progress>, ProgressError> {
        match annotations.get(PROGRESS_ANNOTATION) {
            None => Ok(None),
            Some(v) => serde_json::from_str(v).map(Some).map_err(ProgressError),
        }
    }

    /// The annotation value (compact JSON).
    pub fn to_annotation_value(&self) -> String {
        // Serialising a struct of strings, numbers and timestamps cannot fail.
        serde_json::to_string(self).unwrap_or_default()
    }

    /// Record a failure message, truncated to [`MAX_MESSAGE_CHARS`].
    pub fn set_failure_message(&mut self, message: &str) {
        let truncated: String = message.chars().take(MAX_MESSAGE_CHARS).collect();
        self.last_failure_message = Some(truncated);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use chrono::TimeZone;

    #[test]
    fn round_trips_through_the_annotation_in_camel_case() {
        let t = Utc.with_ymd_and_hms(2026, 11, 26, 12, 0, 0).unwrap();
        let mut p = Progress {
            phase: Phase::Orphaning,
            attempts: 2,
            first_failure_at: Some(t),
            last_failure_reason: Some("TFExecApplyFailed".into()),
            last_requested_at: Some("2026-11-26T12:00:00Z".into()),
            escalates_at: Some(t),
            ..Progress::default()
        };
        p.set_failure_message(&"x".repeat(2000));
        let v = p.to_annotation_value();
        let json: serde_json::Value = serde_json::from_str(&v).unwrap();
        for key in [
            "attempts",
            "firstFailureAt",
            "lastFailureReason",
            "lastRequestedAt",
            "phase",
            "escalatesAt",
        ] {
            assert!(json.get(key).is_some(), "missing {key} in {v}");
        }
        assert_eq!(json["phase"], "orphaning");
        let mut ann = BTreeMap::new();
        ann.insert(PROGRESS_ANNOTATION.to_string(), v);
        let back = Progress::from_annotations(&ann).unwrap().unwrap();
        assert_eq!(back, p);
        assert_eq!(
            back.last_failure_message.unwrap().chars().count(),
            MAX_MESSAGE_CHARS
        );
    }

    #[test]
    fn absent_and_invalid_annotations() {
        assert!(Progress::from_annotations(&BTreeMap::new())
            .unwrap()
            .is_none());
        let mut ann = BTreeMap::new();
        ann.insert(PROGRESS_ANNOTATION.to_string(), "{not json".to_string());
        let e = Progress::from_annotations(&ann).unwrap_err();
        assert!(e.to_string().contains(PROGRESS_ANNOTATION));
        // Unknown fields from a newer guard are ignored; missing ones default.
        ann.insert(
            PROGRESS_ANNOTATION.to_string(),
            r#"{"phase":"deleting","attempts":1,"futureField":true}"#.to_string(),
        );
        let p = Progress::from_annotations(&ann).unwrap().unwrap();
        assert_eq!(p.phase, Phase::Deleting);
        assert_eq!(p.attempts, 1);
    }
}
