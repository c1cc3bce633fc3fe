//! The state mapping: one `Terraform` CR (conditions and status as tofu-controller v0.16.5
//! writes them, spec flags, deletion metadata, the guard's progress annotation) and/or its
//! ledger entry → one [`State`] with the facts that explain it. Pure; no clock (times are
//! returned as instants, the renderer turns them into ages).
//!
//! Rules are applied top to bottom; the first that matches wins.
//!
//! | #  | Observation                                                                                   | State           | Shown with                                  |
//! |----|-----------------------------------------------------------------------------------------------|-----------------|---------------------------------------------|
//! | 1  | ledger entry for this CR, decision `orphaned` (no live CR, or the live CR has the entry's uid) | `Orphaned`      | reason, message, cleanup state              |
//! | 2  | ledger entry, decision `force-removed`                                                        | `ForceRemoved`  | reason, message, cleanup state              |
//! | 3  | deletionTimestamp and `spec.suspend: true`                                                    | `Blocked`       | "suspended: the controller ignores deletion" |
//! | 4  | deletionTimestamp and (Ready=False `DeletionBlockedByDependantsReason`, or `tf.dependency.of.*` finalizers) | `Blocked` | the dependants                |
//! | 5  | deletionTimestamp and Ready=False whose message names a state lock (Terraform's `Lock Info:` block), or reason `ArtifactFailed` / `VarsGenerationFailed` / `AccessDenied` | `Blocked` | lock id and holder / source / varsFrom / access |
//! | 6  | deletionTimestamp and guard progress phase `blocked`                                          | `Blocked`       | the guard's last failure reason             |
//! | 7  | deletionTimestamp and (Ready=False with any other reason, or guard progress with attempts > 0 and a failure reason) | `DestroyFailed` | reason, message, attempts, escalation time |
//! | 8  | deletionTimestamp otherwise                                                                   | `Destroying`    | guard phase / attempts when present         |
//! | 9  | `spec.suspend: true`                                                                          | `Suspended`     |                                             |
//! | 10 | Stalled=True (e.g. `RetryLimitReached`, `AccessDenied`, `ArtifactFailed`)                      | `Stalled`       | Stalled reason, message                     |
//! | 11 | Ready=False `DriftDetected`                                                                   | `Drifted`       | `status.lastDriftDetectedAt`, detect-only when `spec.approvePlan: disable` |
//! | 12 | Ready=False whose message names a state lock, or reason `DependencyNotReady` / `DeletionBlockedByDependantsReason` | `Blocked` | lock id and holder / dependency |
//! | 13 | Ready=False any other reason (`TFExecApplyFailed`, `TFExecPlanFailed`, `ArtifactFailed`, `VarsGenerationFailed`, `DriftDetectionFailed`, …) | `Failed` | reason, message |
//! | 14 | `status.plan.pending` set, Ready reason `TerraformPlannedWithChanges`, `spec.approvePlan` neither `auto` nor a non-empty prefix of the pending plan id | `PlanPending` | plan id, approve command (plan-only mode noted) |
//!
//! Locks: tofu-controller v0.16.5 writes Ready reason `LockHeld` (`TerraformStateLocked`) and then
//! overwrites it in the same reconcile with `TFExecPlanFailed` / `TFExecInitFailed` /
//! `TFExecApplyFailed`; `StateLocked=True` and `status.lock.pending` outlive the lock. So a lock
//! is recognised from the failure message itself (`tfops_guard::lock`).
//! | 15 | Ready=Unknown `Progressing` "Terraform Planning", or Plan=Unknown                              | `Planning`      |                                             |
//! | 16 | Ready=True and `status.observedGeneration` = `metadata.generation`                             | `Ready`         |                                             |
//! | 17 | anything else (no status yet, Ready=Unknown while initialising / applying, spec changed)       | `Reconciling`   | Ready message                               |

use chrono::{DateTime, Utc};

use serde::Serialize;

use crate::ledger::{cleanup_str, LedgerDecision, LedgerItem};
use tfops_api::names::{APPROVE_PLAN_AUTO, APPROVE_PLAN_DISABLE};
use tfops_api::{Condition, Phase, TerraformView};

/// "state lock held (lock id …, holder …)".
fn lock_text(l: &tfops_guard::lock::LockInfo) -> String {
    match &l.who {
        Some(w) => format!("state lock held (lock id {}, holder {w})", l.id),
        None => format!("state lock held (lock id {})", l.id),
    }
}

/// Condition reasons (tofu-controller v0.16.5 `api/v1alpha2/condition_types.go`).
pub mod reasons {
    pub const ARTIFACT_FAILED: &str = "ArtifactFailed";
    pub const VARS_GENERATION_FAILED: &str = "VarsGenerationFailed";
    pub const ACCESS_DENIED: &str = "AccessDenied";
    pub const LOCK_HELD: &str = "LockHeld";
    pub const DEPENDENCY_NOT_READY: &str = "DependencyNotReady";
    pub const DELETION_BLOCKED_BY_DEPENDANTS: &str = "DeletionBlockedByDependantsReason";
    pub const DRIFT_DETECTED: &str = "DriftDetected";
    pub const PLANNED_WITH_CHANGES: &str = "TerraformPlannedWithChanges";
    pub const PROGRESSING: &str = "Progressing";
    pub const TF_EXEC_APPLY_FAILED: &str = "TFExecApplyFailed";
}

/// What a Terraform piece of a release is doing, as `status` reports it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize)]
pub enum State {
    Ready,
    Reconciling,
    Planning,
    PlanPending,
    Drifted,
    Failed,
    Destroying,
    DestroyFailed,
    Blocked,
    Orphaned,
    ForceRemoved,
    Stalled,
    Suspended,
}

/// How a state counts for the exit code of `status`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub enum Health {
    /// Nothing to do.
    Healthy,
    /// Will settle by itself (reconciling, planning, destroying).
    Progressing,
    /// Needs a person or is failing.
    Unhealthy,
}

impl State {
    pub const ALL: [State; 13] = [
        State::Ready,
        State::Reconciling,
        State::Planning,
        State::PlanPending,
        State::Drifted,
        State::Failed,
        State::Destroying,
        State::DestroyFailed,
        State::Blocked,
        State::Orphaned,
        State::ForceRemoved,
        State::Stalled,
        State::Suspended,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            State::Ready => "Ready",
            State::Reconciling => "Reconciling",
            State::Planning => "Planning",
            State::PlanPending => "PlanPending",
            State::Drifted => "Drifted",
            State::Failed => "Failed",
            State::Destroying => "Destroying",
            State::DestroyFailed => "DestroyFailed",
            State::Blocked => "Blocked",
            State::Orphaned => "Orphaned",
            State::ForceRemoved => "ForceRemoved",
            State::Stalled => "Stalled",
            State::Suspended => "Suspended",
        }
    }

    /// Health class (ledger states are re-classed healthy once cleaned up, see
    /// [`Assessment::health`]).
    pub fn health(self) -> Health {
        match self {
            State::Ready => Health::Healthy,
            State::Reconciling | State::Planning | State::Destroying => Health::Progressing,
            State::PlanPending
            | State::Drifted
            | State::Failed
            | State::DestroyFailed
            | State::Blocked
            | State::Orphaned
            | State::ForceRemoved
            | State::Stalled
            | State::Suspended => Health::Unhealthy,
        }
    }
}

impl std::fmt::Display for State {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

/// A pending plan and how to approve it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct PendingPlan {
    pub id: String,
    pub plan_only: bool,
    /// Exact command approving the plan (absent in plan-only mode, which never applies).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub approve_command: Option<String>,
}

/// Guard destroy bookkeeping (from the progress annotation).
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct DestroyProgress {
    pub attempts: u32,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub phase: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub first_failure_at: Option<DateTime<Utc>>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub escalates_at: Option<DateTime<Utc>>,
}

/// The outcome of the mapping for one piece.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Assessment {
    pub state: State,
    /// The condition / ledger reason behind the state, when there is one.
    pub reason: Option<String>,
    /// One human line (may be empty for `Ready`).
    pub message: String,
    /// What blocks it (state `Blocked`).
    pub blocked_by: Option<String>,
    pub pending_plan: Option<PendingPlan>,
    pub destroy: Option<DestroyProgress>,
    /// Drift-detection-only mode (`spec.approvePlan: disable`).
    pub detect_only: bool,
    /// Ledger cleanup state (Orphaned / ForceRemoved).
    pub cleanup: Option<String>,
}

impl Assessment {
    fn new(state: State, reason: Option<&str>, message: impl Into<String>) -> Self {
        Self {
            state,
            reason: reason.filter(|r| !r.is_empty()).map(str::to_owned),
            message: message.into(),
            blocked_by: None,
            pending_plan: None,
            destroy: None,
            detect_only: false,
            cleanup: None,
        }
    }

    /// Health for the exit code: a ledger entry whose cleanup finished counts as healthy.
    pub fn health(&self) -> Health {
        if matches!(self.state, State::Orphaned | State::ForceRemoved)
            && self.cleanup.as_deref() == Some("destroyed")
        {
            return Health::Healthy;
        }
        self.state.health()
    }
}

/// POSIX shell single-quoting.
pub fn shell_quote(s: &str) -> String {
    if !s.is_empty()
        && s.chars()
            .all(|c| c.is_ascii_alphanumeric() || "-_./:@=".contains(c))
    {
        return s.to_owned();
    }
    format!("'{}'", s.replace('\'', r"'\''"))
}

/// The exact `kubectl` command that approves `plan_id` on CR `name` in `namespace`.
pub fn approve_command(name: &str, namespace: &str, plan_id: &str) -> String {
    let patch = serde_json::json!({"spec": {"approvePlan": plan_id}}).to_string();
    format!(
        "kubectl patch terraform {} -n {} --type merge -p {}",
        shell_quote(name),
        shell_quote(namespace),
        shell_quote(&patch)
    )
}

fn is_false(c: &Option<Condition>) -> bool {
    c.as_ref().is_some_and(|c| c.status == "False")
}

fn ledger_assessment(item: &LedgerItem) -> Assessment {
    let entry = item.entry();
    let state = match entry.decision {
        LedgerDecision::Orphaned => State::Orphaned,
        LedgerDecision::ForceRemoved => State::ForceRemoved,
    };
    let cleanup = cleanup_str(item.cleanup_state());
    let message = match cleanup {
        "destroyed" => format!(
            "cleaned up by `orphans destroy` (ledger {})",
            item.secret_name
        ),
        "destroying" => format!("cleanup in progress (ledger {})", item.secret_name),
        "destroy-failed" => format!(
            "cleanup failed; see `helm tfops orphans show {}`",
            item.secret_name
        ),
        _ => {
            let why = if entry.reason.is_empty() {
                String::new()
            } else {
                format!(" ({})", entry.reason)
            };
            format!(
                "left without destroy{why}; cloud resources may remain: helm tfops orphans destroy {} -n {}",
                item.secret_name, item.secret_namespace
            )
        }
    };
    let mut a = Assessment::new(state, Some(&entry.reason), message);
    a.cleanup = Some(cleanup.to_owned());
    a
}

/// Map a ledger entry whose CR no longer exists.
pub fn assess_ledger_only(entry: &LedgerItem) -> Assessment {
    ledger_assessment(entry)
}

/// Map one live `Terraform` CR (and its ledger entry, when the guard already decided on it).
pub fn assess(tf: &TerraformView<'_>, ledger: Option<&LedgerItem>) -> Assessment {
    // Rules 1–2: the guard's decision is recorded; the CR is on its way out.
    if let Some(entry) = ledger.filter(|e| e.entry().uid.is_empty() || e.entry().uid == tf.uid()) {
        return ledger_assessment(entry);
    }

    let ready = tf.condition("Ready");
    let ready_reason = ready.as_ref().map(|c| c.reason.as_str()).unwrap_or("");
    let ready_message = ready.as_ref().map(|c| c.message.as_str()).unwrap_or("");
    let progress = tf.guard_progress();

    if tf.deleting() {
        // Rule 3.
        if tf.suspended() {
            let mut a = Assessment::new(
                State::Blocked,
                None,
                "deletion requested but spec.suspend is true: the controller ignores deletion",
            );
            a.blocked_by = Some("suspend".into());
            return a;
        }
        // Rule 4.
        let dependants = tf.dependant_finalizers();
        if (is_false(&ready) && ready_reason == reasons::DELETION_BLOCKED_BY_DEPENDANTS)
            || !dependants.is_empty()
        {
            let who = if dependants.is_empty() {
                ready_message.to_owned()
            } else {
                dependants.join(", ")
            };
            let mut a = Assessment::new(
                State::Blocked,
                Some(ready_reason),
                format!("waiting for dependants to be deleted: {who}"),
            );
            a.blocked_by = Some(format!("dependants: {who}"));
            return a;
        }
        // Rule 5. A lock counts only when the current failure names it: upstream overwrites
        // the `LockHeld` reason in the same reconcile and `StateLocked=True` can be stale.
        let lock = is_false(&ready)
            .then(|| tfops_guard::lock::lock_info(ready_message))
            .flatten();
        let locked = lock.is_some();
        if is_false(&ready) {
            let what = if let Some(l) = &lock {
                Some(lock_text(l))
            } else {
                match ready_reason {
                    reasons::ARTIFACT_FAILED => Some("source artifact unavailable".to_owned()),
                    reasons::VARS_GENERATION_FAILED => {
                        Some("varsFrom object unavailable".to_owned())
                    }
                    reasons::ACCESS_DENIED => Some("access denied".to_owned()),
                    _ => None,
                }
            };
            if let Some(what) = what {
                let reason = if locked {
                    reasons::LOCK_HELD
                } else {
                    ready_reason
                };
                let mut a = Assessment::new(
                    State::Blocked,
                    Some(reason),
                    format!("{what}: {ready_message}"),
                );
                a.blocked_by = Some(what);
                return a;
            }
        }
        let destroy = progress.as_ref().map(|p| DestroyProgress {
            attempts: p.attempts,
            phase: Some(p.phase.as_str().to_owned()),
            first_failure_at: p.first_failure_at,
            escalates_at: p.escalates_at,
        });
        // Rule 6.
        if let Some(p) = progress.as_ref().filter(|p| p.phase == Phase::Blocked) {
            let why = p
                .last_failure_reason
                .clone()
                .unwrap_or_else(|| "guard policy block".into());
            let mut a = Assessment::new(
                State::Blocked,
                p.last_failure_reason.as_deref(),
                format!("guard blocked the uninstall: {why}"),
            );
            a.blocked_by = Some(why);
            a.destroy = destroy;
            return a;
        }
        // Rule 7.
        let guard_failed = progress
            .as_ref()
            .is_some_and(|p| p.attempts > 0 && p.last_failure_reason.is_some());
        if is_false(&ready) || guard_failed {
            let reason = if is_false(&ready) {
                Some(ready_reason.to_owned())
            } else {
                progress
                    .as_ref()
                    .and_then(|p| p.last_failure_reason.clone())
            };
            let mut a = Assessment::new(
                State::DestroyFailed,
                reason.as_deref(),
                ready_message.to_owned(),
            );
            a.destroy = destroy;
            return a;
        }
        // Rule 8.
        let mut a = Assessment::new(State::Destroying, None, ready_message.to_owned());
        a.destroy = destroy;
        return a;
    }

    // Rule 9.
    if tf.suspended() {
        return Assessment::new(State::Suspended, None, "spec.suspend is true");
    }
    // Rule 10.
    if let Some(stalled) = tf.condition("Stalled").filter(|c| c.status == "True") {
        return Assessment::new(State::Stalled, Some(&stalled.reason), stalled.message);
    }
    if is_false(&ready) {
        // Rule 12 (lock half): the failure message names a state lock.
        if let Some(l) = tfops_guard::lock::lock_info(ready_message) {
            let mut a = Assessment::new(State::Blocked, Some(reasons::LOCK_HELD), ready_message);
            a.blocked_by = Some(lock_text(&l));
            return a;
        }
        match ready_reason {
            // Rule 11.
            reasons::DRIFT_DETECTED => {
                let mut a = Assessment::new(State::Drifted, Some(ready_reason), ready_message);
                a.detect_only = tf.approve_plan() == APPROVE_PLAN_DISABLE;
                return a;
            }
            // Rule 12.
            reasons::DEPENDENCY_NOT_READY | reasons::DELETION_BLOCKED_BY_DEPENDANTS => {
                let mut a = Assessment::new(State::Blocked, Some(ready_reason), ready_message);
                a.blocked_by = Some(format!(
                    "dependencies: {}",
                    tf.depends_on()
                        .iter()
                        .map(|d| d.name.as_str())
                        .collect::<Vec<_>>()
                        .join(", ")
                ));
                return a;
            }
            // Rule 13.
            _ => return Assessment::new(State::Failed, Some(ready_reason), ready_message),
        }
    }
    // Rule 14.
    let pending = tf.pending_plan().unwrap_or_default();
    let approve = tf.approve_plan();
    // Upstream applies when approvePlan is `auto`, the plan id, or any non-empty prefix of
    // it (`controllers/tf_controller_apply.go` v0.16.5, lines 31–38).
    let approved =
        approve == APPROVE_PLAN_AUTO || (!approve.is_empty() && pending.starts_with(approve));
    if !pending.is_empty() && ready_reason == reasons::PLANNED_WITH_CHANGES && !approved {
        let plan_only = tf.plan_only();
        let mut a = Assessment::new(State::PlanPending, Some(ready_reason), ready_message);
        a.pending_plan = Some(PendingPlan {
            id: pending.to_owned(),
            plan_only,
            approve_command: (!plan_only)
                .then(|| approve_command(tf.name(), tf.namespace(), pending)),
        });
        return a;
    }
    // Rule 15.
    let plan_unknown = tf.condition("Plan").is_some_and(|c| c.status == "Unknown");
    if (ready.as_ref().is_some_and(|c| c.status == "Unknown")
        && ready_reason == reasons::PROGRESSING
        && ready_message == "Terraform Planning")
        || plan_unknown
    {
        return Assessment::new(State::Planning, Some(ready_reason), ready_message);
    }
    // Rule 16.
    if ready.as_ref().is_some_and(|c| c.status == "True")
        && tf.observed_generation() == tf.generation()
    {
        return Assessment::new(State::Ready, Some(ready_reason), ready_message);
    }
    // Rule 17.
    let message = if ready.is_none() {
        "not reconciled yet".to_owned()
    } else if tf.observed_generation() != 0 && tf.observed_generation() != tf.generation() {
        format!(
            "spec changed (generation {}, observed {}); {ready_message}",
            tf.generation(),
            tf.observed_generation()
        )
    } else {
        ready_message.to_owned()
    };
    Assessment::new(State::Reconciling, Some(ready_reason), message)
}

#[cfg(test)]
#[path = "state_tests.rs"]
mod tests;
