//! The pure reconcile core: (`Terraform` JSON + observed [`World`] + [`Behavior`] script and
//! its cursor + now) → ordered [`Action`]s and a [`Requeue`]. It follows
//! `TerraformReconciler.Reconcile` / `finalize` of tofu-controller v0.16.5 row by row (see the
//! table in the module doc of [`crate::tofu`]); [`Outcome::row`] names the row that decided.
//!
//! Split like the upstream files the table cites: [`status`] (status and Secret writing),
//! [`setup`] (due check, dependencies, runner set-up), [`finalize`] (the deletion flow),
//! [`normal`] (plan / apply / drift); this file holds the types and the dispatcher.

mod finalize;
mod normal;
mod setup;
mod status;
#[cfg(test)]
mod tests;

use std::time::Duration;

use chrono::{DateTime, Utc};
use serde_json::{json, Map, Value};

use super::behavior::{parse_go_duration, AttemptOutcome, Behavior, FailStage};
use super::clock::kube_time;
use super::conditions as cond;
pub use super::encoding::{base64_decode, base64_encode};
use super::messages;
use super::names::{bool_at, s, str_at};
pub use super::names::{
    lock_lease_name, outputs_secret_name, plan_id, plan_secret_name, retry_interval,
    runner_service_account, state_in_cluster, tfstate_secret_name, workspace,
};
use super::world::{SourceState, World};
use super::{DEPENDENCY_OF_PREFIX, REQUESTED_AT_ANNOTATION, TERRAFORM_FINALIZER};

/// Condition reasons used by tofu-controller v0.16.5 (`api/v1alpha2/condition_types.go`).
pub mod reasons {
    pub const PROGRESSING: &str = "Progressing";
    pub const ARTIFACT_FAILED: &str = "ArtifactFailed";
    pub const ACCESS_DENIED: &str = "AccessDenied";
    pub const DELETION_BLOCKED_BY_DEPENDANTS: &str = "DeletionBlockedByDependantsReason";
    pub const DEPENDENCY_NOT_READY: &str = "DependencyNotReady";
    pub const DRIFT_DETECTED: &str = "DriftDetected";
    pub const NO_DRIFT: &str = "NoDrift";
    pub const PLANNED_NO_CHANGES: &str = "TerraformPlannedNoChanges";
    pub const PLANNED_WITH_CHANGES: &str = "TerraformPlannedWithChanges";
    pub const APPLY_FAILED: &str = "TFExecApplyFailed";
    pub const APPLY_SUCCEED: &str = "TerraformAppliedSucceed";
    pub const PLAN_FAILED: &str = "TFExecPlanFailed";
    pub const PLAN_SUCCEED: &str = "TerraformPlanSucceed";
    pub const LOCK_HELD: &str = "LockHeld";
    pub const FORCE_UNLOCK: &str = "ForceUnlock";
    pub const VARS_GENERATION_FAILED: &str = "VarsGenerationFailed";
    pub const RETRY_LIMIT_REACHED: &str = "RetryLimitReached";
    pub const RECONCILIATION_FAILED: &str = "ReconciliationFailed";
    pub const OUTPUTS_WRITTEN: &str = "TerraformOutputsWritten";
    pub const OUTPUTS_AVAILABLE: &str = "TerraformOutputsAvailable";
    pub const APPLIED_FAIL: &str = "TerraformAppliedFail";
    /// The (misnamed upstream) event reason used for "Outputs written" events.
    pub const OUTPUTS_WRITING_FAILED: &str = "OutputsWritingFailed";
}

/// Kubernetes event type.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum EventType {
    Normal,
    Warning,
}

impl EventType {
    /// `Normal` / `Warning`.
    pub fn as_str(self) -> &'static str {
        match self {
            EventType::Normal => "Normal",
            EventType::Warning => "Warning",
        }
    }
}

/// One side effect, applied by the driver in order.
#[derive(Debug, Clone, PartialEq)]
pub enum Action {
    /// Add a finalizer to this CR (merge patch of the whole finalizer list).
    AddFinalizer(String),
    /// Remove a finalizer from this CR (merge patch of the whole finalizer list).
    RemoveFinalizer(String),
    /// Write this whole `status` (the driver sends the difference as a merge patch).
    PatchStatus(Value),
    /// Add `finalizer` to another `Terraform` CR.
    AddDependencyFinalizer {
        namespace: String,
        name: String,
        finalizer: String,
    },
    /// Remove `finalizer` from another `Terraform` CR.
    RemoveDependencyFinalizer {
        namespace: String,
        name: String,
        finalizer: String,
    },
    /// Create or replace a Secret in the CR's namespace.
    ApplySecret(Value),
    /// Delete a Secret in the CR's namespace (absent is fine).
    DeleteSecret(String),
    /// The state lives outside the cluster (custom backend / cloud): remember its size.
    WriteRemoteState { resources: usize },
    /// Force-unlock the state: clear the lock Lease's holder.
    ForceUnlock { id: String },
    /// Record a Kubernetes Event on the CR.
    Event {
        type_: EventType,
        reason: String,
        message: String,
    },
    /// Simulated time passes (terraform running).
    Sleep(Duration),
    /// A step of the runner pod `<name>-tf-runner` (only with [`RunnerTiming::pods`]).
    RunnerPod(PodStep),
    /// The destroy apply starts (`true`) / ends (`false`): ground truth for tests.
    DestroyInFlight(bool),
    /// A normal (non-destroy) apply ran: ground truth for tests.
    CountApply,
    /// One destroy attempt was made (advance the behaviour cursor).
    CountDestroyAttempt,
}

/// Steps of the runner pod (`controllers/tf_controller_runner.go` v0.16.5).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum PodStep {
    /// Created, `Pending` (lines 347–362: `createNewPod`).
    Create,
    /// `Running` with a pod IP (what the watch at lines 500–535 waits for).
    Running,
    /// Deleted: at the end of every reconcile that got a runner
    /// (`alwaysCleanupRunnerPod`, default true: `api/v1alpha2/terraform_types.go` line 980,
    /// deferred in `controllers/tf_controller.go` lines 467–513), or force-killed when it did
    /// not get an IP within `--runner-creation-timeout` (`tf_controller_runner.go` 536–549).
    Delete,
}

/// The runner pod's timing for one reconcile (the driver draws `start` from the simulation's
/// timing model). Default: no pod objects, no latency (the runner is implicit).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct RunnerTiming {
    /// Create real Pod objects (Pending → Running → deleted).
    pub pods: bool,
    /// From creation to Running with an IP (image pull, scheduling).
    pub start: Duration,
    /// `--runner-creation-timeout` (`cmd/manager/main.go` line 121, default 120 s).
    pub creation_timeout: Duration,
    /// gRPC dial to the runner (bounded by 30 s: `tf_controller_runner.go` line 123).
    pub dial: Duration,
}

/// When the controller looks at the CR again (besides watch events).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Requeue {
    /// Not until a watch event.
    None,
    /// `RequeueAfter`.
    After(Duration),
    /// Error / `Requeue: true`: controller-runtime's per-item exponential backoff.
    RateLimited,
}

/// Which row of the flow decided (names follow the table in [`crate::tofu`]).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Row {
    AddFinalizer,
    Suspended,
    BlockedByDependants,
    SourceMissing,
    NoArtifact,
    NotDue,
    DependencyNotReady,
    RunnerUnavailable,
    /// The runner pod got no IP within `--runner-creation-timeout`.
    RunnerTimeout,
    VarsFromMissing,
    /// `spec.tfstate` asks to force-unlock a lock that is not held (any more): setup fails.
    ForceUnlockFailed,
    LockHeld,
    PlanFailed,
    NothingToDestroy,
    ApplyFailed,
    Destroyed,
    ReleasedWithoutDestroy,
    DependencyGone,
    AwaitingApproval,
    RetryLimitReached,
    DriftDetected,
    NoDrift,
    PlannedNoChanges,
    Applied,
}

/// Result of one reconcile.
#[derive(Debug, Clone, PartialEq)]
pub struct Outcome {
    pub actions: Vec<Action>,
    pub requeue: Requeue,
    pub row: Row,
}

/// Inputs of one reconcile.
#[derive(Debug, Clone, Copy)]
pub struct Input<'a> {
    /// The `Terraform` object as read.
    pub terraform: &'a Value,
    pub world: &'a World,
    pub behavior: &'a Behavior,
    /// Destroy attempts already made for this CR (behaviour cursor).
    pub destroy_attempts: u32,
    pub now: DateTime<Utc>,
    /// The runner pod of this reconcile.
    pub runner: RunnerTiming,
}

/// Run one reconcile.
pub fn reconcile(input: Input<'_>) -> Outcome {
    let mut r = Run::new(input);
    let (row, requeue) = r.run();
    Outcome {
        actions: r.actions,
        requeue,
        row,
    }
}

enum SetupError {
    VarsFromMissing,
    ForceUnlockFailed,
}

struct Run<'a> {
    tf: &'a Value,
    world: &'a World,
    behavior: &'a Behavior,
    attempts: u32,
    now: DateTime<Utc>,
    runner: RunnerTiming,
    /// This reconcile got a runner pod (deleted again at its end).
    runner_up: bool,
    status: Value,
    actions: Vec<Action>,
    generation: i64,
    name: String,
    namespace: String,
}

impl<'a> Run<'a> {
    pub(super) fn new(input: Input<'a>) -> Self {
        let tf = input.terraform;
        let status = tf.get("status").cloned().unwrap_or_else(|| json!({}));
        let status = if status.is_object() {
            status
        } else {
            json!({})
        };
        Self {
            tf,
            world: input.world,
            behavior: input.behavior,
            attempts: input.destroy_attempts,
            now: input.now,
            runner: input.runner,
            runner_up: false,
            status,
            actions: Vec::new(),
            generation: s(tf, &["metadata", "generation"])
                .and_then(Value::as_i64)
                .unwrap_or(1),
            name: str_at(tf, &["metadata", "name"]).to_string(),
            namespace: str_at(tf, &["metadata", "namespace"]).to_string(),
        }
    }

    /// The deferred patch of `Reconcile`: echo requestedAt, observedGeneration when ready.
    pub(super) fn finish(&mut self, row: Row, requeue: Requeue) -> (Row, Requeue) {
        self.cleanup_runner();
        self.deferred();
        self.patch();
        (row, requeue)
    }

    /// The deferred runner clean-up (runs before the deferred status patch: Go defers run last
    /// registered first).
    pub(super) fn cleanup_runner(&mut self) {
        if std::mem::take(&mut self.runner_up) {
            self.actions.push(Action::RunnerPod(PodStep::Delete));
        }
    }

    pub(super) fn deferred(&mut self) {
        if let Some(v) = self.requested_at() {
            self.set_st("lastHandledReconcileAt", json!(v));
        }
        if cond::is_true(&self.status, cond::READY) {
            self.set_st("observedGeneration", json!(self.generation));
        }
    }

    pub(super) fn run(&mut self) -> (Row, Requeue) {
        // Row 1: finalizer.
        let finalizers = self.finalizers();
        if !finalizers.iter().any(|f| f == TERRAFORM_FINALIZER) {
            self.actions
                .push(Action::AddFinalizer(TERRAFORM_FINALIZER.to_string()));
            return self.finish(Row::AddFinalizer, Requeue::RateLimited);
        }
        // Row 3: suspend returns before any deletion handling.
        if self.spec_bool("suspend") {
            return self.finish(Row::Suspended, Requeue::None);
        }
        // Row 4.
        self.set_cond(
            cond::RECONCILING,
            "True",
            reasons::PROGRESSING,
            "Fulfilling prerequisites",
        );
        self.patch();
        let retry = retry_interval(self.tf);
        // Row 5: dependants block deletion.
        if self.deleting() {
            let dependants: Vec<String> = finalizers
                .iter()
                .filter_map(|f| f.strip_prefix(DEPENDENCY_OF_PREFIX))
                .map(str::to_string)
                .collect();
            if !dependants.is_empty() {
                let msg = messages::blocked_by_dependants(&dependants);
                self.not_ready("", reasons::DELETION_BLOCKED_BY_DEPENDANTS, &msg);
                return self.finish(Row::BlockedByDependants, Requeue::After(retry));
            }
        }
        // Rows 6–7: source.
        let kind = self.tf["spec"]["sourceRef"]["kind"]
            .as_str()
            .unwrap_or("")
            .to_string();
        let src_name = self.tf["spec"]["sourceRef"]["name"]
            .as_str()
            .unwrap_or("")
            .to_string();
        let revision = match &self.world.source {
            SourceState::Missing => {
                let msg = messages::source_not_found(&kind, &src_name);
                self.set_cond(cond::STALLED, "True", reasons::ARTIFACT_FAILED, &msg);
                self.set_cond(cond::READY, "False", reasons::ARTIFACT_FAILED, &msg);
                cond::delete(&mut self.status, cond::RECONCILING);
                self.event(EventType::Warning, reasons::ARTIFACT_FAILED, msg);
                return self.finish(Row::SourceMissing, Requeue::After(retry));
            }
            SourceState::NoArtifact => {
                if cond::has_any_reason(
                    &self.status,
                    cond::READY,
                    &[reasons::ACCESS_DENIED, reasons::ARTIFACT_FAILED],
                ) {
                    self.set_cond(
                        cond::READY,
                        "Unknown",
                        reasons::PROGRESSING,
                        "Reconciliation in progress",
                    );
                }
                self.set_cond(
                    cond::READY,
                    "False",
                    reasons::ARTIFACT_FAILED,
                    "Source is not ready, artifact not found",
                );
                cond::delete(&mut self.status, cond::RECONCILING);
                return self.finish(Row::NoArtifact, Requeue::After(retry));
            }
            SourceState::Ready { revision } => revision.clone(),
        };
        if cond::has_any_reason(
            &self.status,
            cond::READY,
            &[reasons::ACCESS_DENIED, reasons::ARTIFACT_FAILED],
        ) {
            self.set_cond(
                cond::READY,
                "Unknown",
                reasons::PROGRESSING,
                "Reconciliation in progress",
            );
        }
        // shouldReconcile (always true while deleting).
        if !self.deleting() {
            if let Some(wait) = self.not_due(&revision) {
                cond::delete(&mut self.status, cond::RECONCILING);
                return self.finish(Row::NotDue, Requeue::After(wait));
            }
        }
        // Row 8: dependencies (not while deleting).
        if !self.deleting() && !self.world.dependencies.is_empty() {
            if let Some(msg) = self.check_dependencies(&revision) {
                self.not_ready(&revision, reasons::DEPENDENCY_NOT_READY, &msg);
                self.event(
                    EventType::Normal,
                    reasons::DEPENDENCY_NOT_READY,
                    format!(
                        "Dependencies do not meet ready condition, retrying in {}",
                        super::behavior::format_go_duration(retry)
                    ),
                );
                let _ = msg;
                return self.finish(Row::DependencyNotReady, Requeue::After(retry));
            }
        }
        if cond::has_any_reason(
            &self.status,
            cond::READY,
            &[reasons::ACCESS_DENIED, reasons::DEPENDENCY_NOT_READY],
        ) {
            self.set_cond(
                cond::READY,
                "Unknown",
                reasons::PROGRESSING,
                "Reconciliation in progress",
            );
        }
        // Row 9.
        let ready_unknown =
            cond::get(&self.status, cond::READY).is_some_and(|(st, _, _)| st == "Unknown");
        if !ready_unknown {
            let msg = if self.deleting() {
                "Deletion in progress"
            } else {
                "Reconciliation in progress"
            };
            self.progressing(msg);
            self.patch();
        }
        let observed = self
            .status
            .get("observedGeneration")
            .and_then(Value::as_i64)
            .unwrap_or(0);
        if revision != self.st_str(&["lastAttemptedRevision"]) || self.generation != observed {
            cond::delete(&mut self.status, cond::STALLED);
            self.remove_st("reconciliationFailures");
        }
        if !self.deleting() {
            let pending = self.st_str(&["plan", "pending"]);
            if revision != self.st_str(&["lastAttemptedRevision"])
                && !pending.is_empty()
                && !self.should_apply()
            {
                if let Some(p) = self.status.get_mut("plan").and_then(Value::as_object_mut) {
                    p.remove("pending");
                }
            }
            let pending = self.st_str(&["plan", "pending"]);
            if !pending.is_empty() && !self.force_or_auto() && !self.should_apply() {
                return self.finish(Row::AwaitingApproval, Requeue::None);
            }
        }
        // Row 10: runner pod (needs its ServiceAccount and a namespace that accepts creates).
        if !self.world.runner_sa_present || self.world.namespace_terminating {
            return self.finish(Row::RunnerUnavailable, Requeue::RateLimited);
        }
        // Row 10b: the runner pod starts (Pending until it has an IP), or is force-killed
        // after `--runner-creation-timeout`: `LookupOrCreateRunner` returns
        // "failed to create and obtain pod ip", status unchanged, rate-limited.
        if self.runner.pods {
            self.actions.push(Action::RunnerPod(PodStep::Create));
            if self.runner.start > self.runner.creation_timeout {
                self.actions
                    .push(Action::Sleep(self.runner.creation_timeout));
                self.actions.push(Action::RunnerPod(PodStep::Delete));
                return self.finish(Row::RunnerTimeout, Requeue::RateLimited);
            }
            if !self.runner.start.is_zero() {
                self.actions.push(Action::Sleep(self.runner.start));
            }
            self.actions.push(Action::RunnerPod(PodStep::Running));
            if !self.runner.dial.is_zero() {
                self.actions.push(Action::Sleep(self.runner.dial));
            }
            self.runner_up = true;
        }
        if self.deleting() {
            return self.finalize(&revision);
        }
        self.normal(&revision, retry)
    }
}

fn parse_time(text: &str) -> Option<DateTime<Utc>> {
    DateTime::parse_from_rfc3339(text)
        .ok()
        .map(|t| t.with_timezone(&Utc))
}
