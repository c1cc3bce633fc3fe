//! The pure reconcile core: (`Terraform` JSON + observed [`World`] + [`Behavior`] script and
//! its cursor + now) → ordered [`Action`]s and a [`Requeue`]. It follows
//! `TerraformReconciler.Reconcile` / `finalize` of tofu-controller v0.16.5 row by row (see the
//! table in the module doc of [`crate::tofu`]); [`Outcome::row`] names the row that decided.

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
    fn new(input: Input<'a>) -> Self {
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

    fn finalizers(&self) -> Vec<String> {
        s(self.tf, &["metadata", "finalizers"])
            .and_then(Value::as_array)
            .map(|a| {
                a.iter()
                    .filter_map(Value::as_str)
                    .map(str::to_string)
                    .collect()
            })
            .unwrap_or_default()
    }

    fn deleting(&self) -> bool {
        !str_at(self.tf, &["metadata", "deletionTimestamp"]).is_empty()
    }

    fn requested_at(&self) -> Option<String> {
        s(
            self.tf,
            &["metadata", "annotations", REQUESTED_AT_ANNOTATION],
        )
        .and_then(Value::as_str)
        .map(str::to_string)
    }

    fn spec_str(&self, key: &str) -> &str {
        str_at(self.tf, &["spec", key])
    }

    fn spec_bool(&self, key: &str) -> bool {
        bool_at(self.tf, &["spec", key])
    }

    fn st_str(&self, path: &[&str]) -> String {
        str_at(&self.status, path).to_string()
    }

    fn set_st(&mut self, key: &str, value: Value) {
        if let Some(o) = self.status.as_object_mut() {
            o.insert(key.to_string(), value);
        }
    }

    fn remove_st(&mut self, key: &str) {
        if let Some(o) = self.status.as_object_mut() {
            o.remove(key);
        }
    }

    fn set_cond(&mut self, t: &str, st: &str, reason: &str, msg: &str) {
        cond::set(
            &mut self.status,
            t,
            st,
            reason,
            msg,
            self.generation,
            self.now,
        );
    }

    fn event(&mut self, type_: EventType, reason: &str, message: String) {
        self.actions.push(Action::Event {
            type_,
            reason: reason.to_string(),
            message,
        });
    }

    fn patch(&mut self) {
        self.actions.push(Action::PatchStatus(self.status.clone()));
    }

    // ---- status helpers of api/v1alpha2/terraform_types.go ----

    /// `SetTerraformReadiness`.
    fn readiness(&mut self, st: &str, reason: &str, msg: &str, revision: &str) {
        if st != "Unknown" {
            cond::delete(&mut self.status, cond::RECONCILING);
        }
        self.set_cond(cond::READY, st, reason, msg);
        self.set_st("observedGeneration", json!(self.generation));
        self.set_st("lastAttemptedRevision", json!(revision));
    }

    /// `TerraformNotReady`.
    fn not_ready(&mut self, revision: &str, reason: &str, msg: &str) {
        self.readiness("False", reason, msg, revision);
        cond::delete(&mut self.status, cond::RECONCILING);
    }

    /// `TerraformProgressing`.
    fn progressing(&mut self, msg: &str) {
        self.set_cond(cond::READY, "Unknown", reasons::PROGRESSING, msg);
    }

    fn plan_status(&self) -> Value {
        self.status
            .get("plan")
            .cloned()
            .unwrap_or_else(|| json!({}))
    }

    fn lock_released(&mut self) {
        cond::delete(&mut self.status, cond::STATE_LOCKED);
        self.remove_st("lock");
    }

    fn rotate_lock(&mut self) -> Map<String, Value> {
        let mut lock = self
            .status
            .get("lock")
            .and_then(Value::as_object)
            .cloned()
            .unwrap_or_default();
        let pending = lock
            .get("pending")
            .and_then(Value::as_str)
            .unwrap_or("")
            .to_string();
        let last = lock
            .get("lastApplied")
            .and_then(Value::as_str)
            .unwrap_or("")
            .to_string();
        if !pending.is_empty() && last != pending {
            lock.insert("lastApplied".into(), json!(pending));
        }
        lock
    }

    /// `TerraformStateLocked`.
    fn state_locked(&mut self, id: &str) {
        let msg = messages::locked_condition(id);
        self.set_cond(cond::STATE_LOCKED, "True", reasons::LOCK_HELD, &msg);
        self.readiness("False", reasons::LOCK_HELD, &msg, "");
        let mut lock = self.rotate_lock();
        lock.insert("pending".into(), json!(id));
        self.set_st("lock", Value::Object(lock));
    }

    /// `TerraformForceUnlock`.
    fn force_unlocked(&mut self, id: &str) {
        let msg = messages::force_unlock_condition(id);
        self.set_cond(cond::STATE_LOCKED, "False", reasons::FORCE_UNLOCK, &msg);
        let mut lock = self.rotate_lock();
        lock.remove("pending");
        self.set_st("lock", Value::Object(lock));
    }

    /// `TerraformPlannedNoChanges`.
    fn planned_no_changes(&mut self, revision: &str, msg: &str) {
        self.set_cond(cond::PLAN, "False", reasons::PLANNED_NO_CHANGES, msg);
        let mut plan = Map::new();
        if let Some(la) = self.plan_status().get("lastApplied").cloned() {
            plan.insert("lastApplied".into(), la);
        }
        if self.spec_bool("destroy") {
            plan.insert("isDestroyPlan".into(), json!(true));
        }
        self.set_st("plan", Value::Object(plan));
        self.set_st("lastPlannedRevision", json!(revision));
        self.set_st("lastPlannedGeneration", json!(self.generation));
        self.set_st("lastPlanAt", json!(kube_time(self.now)));
        self.lock_released();
        self.readiness(
            "True",
            reasons::PLANNED_NO_CHANGES,
            &format!("{msg}: {revision}"),
            revision,
        );
    }

    fn force_or_auto(&self) -> bool {
        self.spec_bool("force") || self.spec_str("approvePlan") == "auto"
    }

    fn should_apply(&self) -> bool {
        if self.spec_bool("force") {
            return true;
        }
        if self.spec_bool("planOnly") {
            return false;
        }
        let approve = self.spec_str("approvePlan");
        let pending = self.st_str(&["plan", "pending"]);
        if approve.is_empty() {
            return false;
        }
        if approve == "auto" {
            return !pending.is_empty();
        }
        approve == pending || (!pending.is_empty() && pending.starts_with(approve))
    }

    /// `TerraformPlannedWithChanges`.
    fn planned_with_changes(&mut self, revision: &str) {
        let id = plan_id(revision);
        let msg = "Plan generated";
        self.set_cond(cond::PLAN, "True", reasons::PLANNED_WITH_CHANGES, msg);
        let mut plan = Map::new();
        if let Some(la) = self.plan_status().get("lastApplied").cloned() {
            plan.insert("lastApplied".into(), la);
        }
        plan.insert("pending".into(), json!(id));
        if self.spec_bool("destroy") {
            plan.insert("isDestroyPlan".into(), json!(true));
        }
        self.set_st("plan", Value::Object(plan));
        self.set_st("lastPlannedRevision", json!(revision));
        self.set_st("lastPlannedGeneration", json!(self.generation));
        self.set_st("lastPlanAt", json!(kube_time(self.now)));
        self.lock_released();
        let ready_msg = if self.spec_bool("planOnly") {
            format!("{msg}: This object is in the plan only mode.")
        } else if self.force_or_auto() {
            msg.to_string()
        } else {
            format!("{msg}: set approvePlan: \"{id}\" to approve this plan.")
        };
        self.readiness(
            "Unknown",
            reasons::PLANNED_WITH_CHANGES,
            &ready_msg,
            revision,
        );
        self.actions
            .push(Action::ApplySecret(self.plan_secret(&id)));
    }

    fn plan_secret(&self, id: &str) -> Value {
        let ws = workspace(self.tf);
        json!({
            "apiVersion": "v1",
            "kind": "Secret",
            "metadata": {
                "name": plan_secret_name(self.tf),
                "namespace": self.namespace,
                "labels": {
                    "infra.contrib.fluxcd.io/plan-name": self.name,
                    "infra.contrib.fluxcd.io/plan-workspace": ws,
                },
                "annotations": {
                    "encoding": "gzip",
                    "savedPlan": id,
                },
                "ownerReferences": [self.owner_ref(false)],
            },
            "type": "Opaque",
            "data": {},
        })
    }

    fn owner_ref(&self, controller: bool) -> Value {
        let mut o = json!({
            "apiVersion": super::TERRAFORM_API_VERSION,
            "kind": "Terraform",
            "name": self.name,
            "uid": str_at(self.tf, &["metadata", "uid"]),
        });
        if controller {
            o["controller"] = json!(true);
        }
        o
    }

    /// Persist the state: the tfstate Secret for the in-cluster kubernetes backend, otherwise
    /// (custom backend / Terraform Cloud) only the driver's memory.
    fn write_state(&self, resources: &[super::behavior::InventoryEntry], serial: u64) -> Action {
        if state_in_cluster(self.tf) {
            Action::ApplySecret(self.tfstate_secret(resources, serial))
        } else {
            Action::WriteRemoteState {
                resources: resources.len(),
            }
        }
    }

    /// The tfstate Secret the kubernetes backend writes (plain JSON state, not gzipped).
    fn tfstate_secret(&self, resources: &[super::behavior::InventoryEntry], serial: u64) -> Value {
        let ws = workspace(self.tf);
        let suffix = tfstate_secret_name(self.tf)
            .trim_start_matches(&format!("tfstate-{ws}-"))
            .to_string();
        let res: Vec<Value> = resources
            .iter()
            .map(|e| {
                json!({
                    "mode": "managed",
                    "type": e.kind,
                    "name": e.name,
                    "provider": "provider[\"registry.opentofu.org/hashicorp/aws\"]",
                    "instances": [{"schema_version": 0, "attributes": {"id": e.identifier}}],
                })
            })
            .collect();
        let state = json!({
            "version": 4,
            "terraform_version": "1.8.7",
            "serial": serial,
            "lineage": format!("sim-{}", str_at(self.tf, &["metadata", "uid"])),
            "outputs": {},
            "resources": res,
            "check_results": null,
        });
        let encoded = base64_encode(state.to_string().as_bytes());
        json!({
            "apiVersion": "v1",
            "kind": "Secret",
            "metadata": {
                "name": tfstate_secret_name(self.tf),
                "namespace": self.namespace,
                "labels": {
                    "app.kubernetes.io/managed-by": "terraform",
                    "tfstate": "true",
                    "tfstateSecretSuffix": suffix,
                    "tfstateWorkspace": ws,
                },
            },
            "type": "Opaque",
            "data": {"tfstate": encoded},
        })
    }

    /// The deferred patch of `Reconcile`: echo requestedAt, observedGeneration when ready.
    fn finish(&mut self, row: Row, requeue: Requeue) -> (Row, Requeue) {
        self.cleanup_runner();
        self.deferred();
        self.patch();
        (row, requeue)
    }

    /// The deferred runner clean-up (runs before the deferred status patch: Go defers run last
    /// registered first).
    fn cleanup_runner(&mut self) {
        if std::mem::take(&mut self.runner_up) {
            self.actions.push(Action::RunnerPod(PodStep::Delete));
        }
    }

    fn deferred(&mut self) {
        if let Some(v) = self.requested_at() {
            self.set_st("lastHandledReconcileAt", json!(v));
        }
        if cond::is_true(&self.status, cond::READY) {
            self.set_st("observedGeneration", json!(self.generation));
        }
    }

    fn run(&mut self) -> (Row, Requeue) {
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

    /// `shouldReconcile` for a live object: `Some(wait)` when not due yet.
    fn not_due(&self, revision: &str) -> Option<Duration> {
        if self.spec_bool("force") {
            return None;
        }
        if let Some(req) = self.requested_at() {
            if self.st_str(&["lastHandledReconcileAt"]) != req {
                return None;
            }
        }
        if self.st_str(&["lastPlanAt"]).is_empty() {
            return None;
        }
        let observed = self
            .status
            .get("observedGeneration")
            .and_then(Value::as_i64)
            .unwrap_or(0);
        if observed != 0 && observed != self.generation {
            return None;
        }
        if !self.st_str(&["plan", "pending"]).is_empty() || self.should_apply() {
            return None;
        }
        if self.st_str(&["lastAttemptedRevision"]) != revision {
            return None;
        }
        if cond::has_any_reason(&self.status, cond::READY, &[reasons::DEPENDENCY_NOT_READY]) {
            return None;
        }
        let failures = self
            .status
            .get("reconciliationFailures")
            .and_then(Value::as_i64)
            .unwrap_or(0);
        if failures > 0 && !cond::is_true(&self.status, cond::READY) {
            let last = parse_time(&self.st_str(&["lastPlanAt"]))?;
            let next = last + chrono::Duration::from_std(retry_interval(self.tf)).ok()?;
            return (next > self.now).then(|| (next - self.now).to_std().unwrap_or_default());
        }
        let last_ok = parse_time(&self.st_str(&["lastSuccessfulReconcileAt"]))?;
        let interval = parse_go_duration(self.spec_str("interval")).unwrap_or_default();
        let next = last_ok + chrono::Duration::from_std(interval).ok()?;
        (next > self.now).then(|| (next - self.now).to_std().unwrap_or_default())
    }

    /// `checkDependencies`: `Some(message)` when a dependency is not ready.
    fn check_dependencies(&mut self, revision: &str) -> Option<String> {
        let finalizer = format!("{DEPENDENCY_OF_PREFIX}{}", self.name);
        for dep in &self.world.dependencies {
            let key = format!("{}/{}", dep.namespace, dep.name);
            let Some(obj) = &dep.object else {
                return Some(format!(
                    "unable to get '{key}' dependency: terraforms.infra.contrib.fluxcd.io \"{}\" not found",
                    dep.name
                ));
            };
            let dep_deleting = !str_at(obj, &["metadata", "deletionTimestamp"]).is_empty();
            let has = s(obj, &["metadata", "finalizers"])
                .and_then(Value::as_array)
                .is_some_and(|a| a.iter().any(|f| f.as_str() == Some(finalizer.as_str())));
            if !dep_deleting && !has {
                self.actions.push(Action::AddDependencyFinalizer {
                    namespace: dep.namespace.clone(),
                    name: dep.name.clone(),
                    finalizer: finalizer.clone(),
                });
            }
            let gen = s(obj, &["metadata", "generation"])
                .and_then(Value::as_i64)
                .unwrap_or(1);
            let observed = s(obj, &["status", "observedGeneration"])
                .and_then(Value::as_i64)
                .unwrap_or(0);
            let dep_status = obj.get("status").cloned().unwrap_or_else(|| json!({}));
            if gen != observed || !cond::is_true(&dep_status, cond::READY) {
                return Some(format!("dependency '{key}' is not ready"));
            }
            let same_source = obj["spec"]["sourceRef"] == self.tf["spec"]["sourceRef"];
            if same_source
                && str_at(obj, &["status", "lastAppliedRevision"]) != revision
                && str_at(obj, &["status", "lastPlannedRevision"]) != revision
            {
                return Some(format!("dependency '{key}' is not updated yet"));
            }
            if let Some(out) = outputs_secret_name(obj) {
                if !dep.outputs_secret_present {
                    return Some(format!(
                        "dependency output secret: '{}/{out}' of '{key}' is not ready yet",
                        dep.namespace
                    ));
                }
            }
        }
        None
    }

    /// `setupTerraform`: varsFrom and force-unlock.
    fn setup(&mut self, revision: &str) -> Result<(), SetupError> {
        self.progressing("Initializing");
        self.patch();
        if let Some((kind, name)) = self.world.missing_vars_from.first().cloned() {
            let msg = messages::vars_from_not_found(&kind, &name);
            self.not_ready(revision, reasons::VARS_GENERATION_FAILED, &msg);
            return Err(SetupError::VarsFromMissing);
        }
        let pending = self.st_str(&["lock", "pending"]);
        let mode = str_at(self.tf, &["spec", "tfstate", "forceUnlock"]);
        let ident = str_at(self.tf, &["spec", "tfstate", "lockIdentifier"]);
        let unlock = match mode {
            "yes" if ident == pending => pending.clone(),
            "auto" => pending.clone(),
            _ => String::new(),
        };
        if !unlock.is_empty() {
            // `terraform force-unlock` fails when that lock is not held (already released, or
            // held under another id): setupTerraform returns the error without touching the
            // status, so `lock.pending` stays and the next attempt fails the same way.
            let held = self
                .world
                .lock
                .as_ref()
                .is_some_and(|l| l.holder.id == unlock);
            if !held {
                return Err(SetupError::ForceUnlockFailed);
            }
            self.actions
                .push(Action::ForceUnlock { id: unlock.clone() });
            self.force_unlocked(&unlock);
            self.patch();
        }
        Ok(())
    }

    /// Effective lock after a possible force-unlock in this reconcile.
    fn lock_after_setup(&self) -> Option<&super::world::LockView> {
        let unlocked: Vec<&str> = self
            .actions
            .iter()
            .filter_map(|a| match a {
                Action::ForceUnlock { id } => Some(id.as_str()),
                _ => None,
            })
            .collect();
        self.world
            .lock
            .as_ref()
            .filter(|l| !unlocked.contains(&l.holder.id.as_str()))
    }

    /// Plan hit the lock: rows 13 / 24.
    fn plan_locked(&mut self, revision: &str) {
        let Some(lock) = self.lock_after_setup().cloned() else {
            return;
        };
        self.event(
            EventType::Warning,
            reasons::PLAN_FAILED,
            messages::locked_event(&lock.holder.id),
        );
        self.state_locked(&lock.holder.id);
        let path = tfstate_secret_name(self.tf);
        let msg = messages::plan_locked(&lock.holder, &path, &lock.created);
        self.not_ready(revision, reasons::PLAN_FAILED, &msg);
    }

    fn finalize(&mut self, revision: &str) -> (Row, Requeue) {
        if self.spec_bool("destroyResourcesOnDeletion") {
            match self.setup(revision) {
                Ok(()) => {}
                Err(SetupError::VarsFromMissing) => {
                    return self.finish(Row::VarsFromMissing, Requeue::RateLimited)
                }
                Err(SetupError::ForceUnlockFailed) => {
                    return self.finish(Row::ForceUnlockFailed, Requeue::RateLimited)
                }
            }
            self.progressing("Terraform Planning");
            self.patch();
            if self.lock_after_setup().is_some() {
                self.plan_locked(revision);
                return self.finish(Row::LockHeld, Requeue::RateLimited);
            }
            let empty =
                self.behavior.nothing_to_destroy || self.world.state_resources.unwrap_or(0) == 0;
            let outcome = self.behavior.destroy_outcome(self.attempts);
            if let AttemptOutcome::Fail {
                stage: FailStage::Plan,
                message,
            } = &outcome
            {
                self.actions.push(Action::CountDestroyAttempt);
                self.event(
                    EventType::Warning,
                    reasons::PLAN_FAILED,
                    messages::plan_failed_event(message),
                );
                let msg = messages::plan_failed(message);
                self.not_ready(revision, reasons::PLAN_FAILED, &msg);
                return self.finish(Row::PlanFailed, Requeue::RateLimited);
            }
            if empty {
                self.planned_no_changes(revision, "No objects need to be destroyed");
                self.patch();
            } else {
                self.actions.push(Action::CountDestroyAttempt);
                self.planned_with_changes(revision);
                self.patch();
                // apply
                self.progressing("Applying");
                self.patch();
                self.set_cond(
                    cond::APPLY,
                    "Unknown",
                    reasons::PROGRESSING,
                    "Apply started",
                );
                self.set_st("lastAttemptedRevision", json!(revision));
                self.patch();
                self.actions.push(Action::DestroyInFlight(true));
                if !self.behavior.destroy_duration.is_zero() {
                    self.actions
                        .push(Action::Sleep(self.behavior.destroy_duration));
                }
                self.actions.push(Action::DestroyInFlight(false));
                if let AttemptOutcome::Fail { message, .. } = &outcome {
                    self.event(
                        EventType::Warning,
                        reasons::APPLY_FAILED,
                        messages::apply_failed_event(message),
                    );
                    let msg = messages::apply_failed(message);
                    self.set_cond(cond::APPLY, "False", reasons::APPLIED_FAIL, &msg);
                    self.not_ready(revision, reasons::APPLY_FAILED, &msg);
                    if let Some(p) = self.status.get_mut("plan").and_then(Value::as_object_mut) {
                        p.remove("pending");
                    }
                    return self.finish(Row::ApplyFailed, Requeue::RateLimited);
                }
                // success: the state is now empty (the Secret stays).
                let serial = 2 + u64::from(self.attempts);
                self.actions.push(self.write_state(&[], serial));
                self.event(
                    EventType::Normal,
                    reasons::APPLY_SUCCEED,
                    "Applied successfully".to_string(),
                );
                self.applied(revision, "Applied successfully", &[]);
                self.patch();
            }
        }
        // Row 19: finalize secrets.
        if self.world.plan_secret_present || self.actions.iter().any(|a| {
            matches!(a, Action::ApplySecret(v) if str_at(v, &["metadata", "name"]) == plan_secret_name(self.tf))
        }) {
            self.actions
                .push(Action::DeleteSecret(plan_secret_name(self.tf)));
            if let Some(out) = outputs_secret_name(self.tf) {
                if self.world.outputs_secret_present {
                    self.actions.push(Action::DeleteSecret(out));
                }
            }
        }
        // Row 20: dependant finalizers on dependencies.
        let finalizer = format!("{DEPENDENCY_OF_PREFIX}{}", self.name);
        for dep in &self.world.dependencies {
            let Some(obj) = &dep.object else {
                return self.finish(Row::DependencyGone, Requeue::RateLimited);
            };
            let has = s(obj, &["metadata", "finalizers"])
                .and_then(Value::as_array)
                .is_some_and(|a| a.iter().any(|f| f.as_str() == Some(finalizer.as_str())));
            if has {
                self.actions.push(Action::RemoveDependencyFinalizer {
                    namespace: dep.namespace.clone(),
                    name: dep.name.clone(),
                    finalizer: finalizer.clone(),
                });
            }
        }
        let row = if !self.spec_bool("destroyResourcesOnDeletion") {
            Row::ReleasedWithoutDestroy
        } else if self
            .actions
            .iter()
            .any(|a| matches!(a, Action::CountDestroyAttempt))
        {
            Row::Destroyed
        } else {
            Row::NothingToDestroy
        };
        self.deferred();
        self.patch();
        // Row 21.
        self.actions
            .push(Action::RemoveFinalizer(TERRAFORM_FINALIZER.to_string()));
        self.cleanup_runner();
        (row, Requeue::None)
    }

    /// `TerraformApplied`.
    fn applied(&mut self, revision: &str, msg: &str, entries: &[super::behavior::InventoryEntry]) {
        self.set_cond(cond::APPLY, "True", reasons::APPLY_SUCCEED, msg);
        let pending = self.st_str(&["plan", "pending"]);
        let mut plan = Map::new();
        if !pending.is_empty() {
            plan.insert("lastApplied".into(), json!(pending));
        }
        self.set_st("plan", Value::Object(plan));
        self.set_st("lastAppliedRevision", json!(revision));
        if !entries.is_empty() {
            self.set_st("inventory", json!({"entries": entries}));
        }
        self.lock_released();
        self.readiness(
            "Unknown",
            reasons::APPLY_SUCCEED,
            &format!("{msg}: {revision}"),
            revision,
        );
    }

    /// Failure outside deletion (row 24).
    fn failed(&mut self, row: Row, retry: Duration, err: &str) -> (Row, Requeue) {
        let failures = self
            .status
            .get("reconciliationFailures")
            .and_then(Value::as_i64)
            .unwrap_or(0);
        self.set_st("reconciliationFailures", json!(failures + 1));
        self.event(
            EventType::Warning,
            reasons::RECONCILIATION_FAILED,
            err.to_string(),
        );
        self.finish(row, Requeue::After(retry))
    }

    fn succeeded(&mut self, row: Row) -> (Row, Requeue) {
        cond::delete(&mut self.status, cond::STALLED);
        self.remove_st("reconciliationFailures");
        self.set_st("lastSuccessfulReconcileAt", json!(kube_time(self.now)));
        let pending = self.st_str(&["plan", "pending"]);
        let requeue = if !pending.is_empty() && !self.force_or_auto() {
            Requeue::None
        } else {
            match parse_go_duration(self.spec_str("interval")) {
                Some(d) if !d.is_zero() => Requeue::After(d),
                _ => Requeue::None,
            }
        };
        self.finish(row, requeue)
    }

    /// The normal (non-deletion) reconcile, enough for realistic status.
    fn normal(&mut self, revision: &str, retry: Duration) -> (Row, Requeue) {
        if let Some(retries) =
            s(self.tf, &["spec", "remediation", "retries"]).and_then(Value::as_i64)
        {
            let failures = self
                .status
                .get("reconciliationFailures")
                .and_then(Value::as_i64)
                .unwrap_or(0);
            if retries >= 0 && failures >= retries {
                self.set_cond(
                    cond::STALLED,
                    "True",
                    reasons::RETRY_LIMIT_REACHED,
                    "Resource reached maximum number of retries.",
                );
                cond::delete(&mut self.status, cond::RECONCILING);
                return self.finish(Row::RetryLimitReached, Requeue::None);
            }
        }
        match self.setup(revision) {
            Ok(()) => {}
            Err(SetupError::VarsFromMissing) => {
                let msg = self
                    .world
                    .missing_vars_from
                    .first()
                    .map(|(k, n)| messages::vars_from_not_found(k, n))
                    .unwrap_or_default();
                return self.failed(Row::VarsFromMissing, retry, &msg);
            }
            Err(SetupError::ForceUnlockFailed) => {
                return self.failed(Row::ForceUnlockFailed, retry, "force-unlock failed");
            }
        }
        let has_resources = self.world.state_resources.unwrap_or(0) > 0;
        // drift detection
        if self.should_detect_drift(revision) {
            if self.lock_after_setup().is_some() {
                self.plan_locked(revision);
                return self.failed(Row::LockHeld, retry, "error running Plan: state locked");
            }
            if self.behavior.drift {
                self.set_st("lastDriftDetectedAt", json!(kube_time(self.now)));
                self.lock_released();
                let raw = "  # aws_s3_bucket.this has changed";
                self.readiness("False", reasons::DRIFT_DETECTED, raw, revision);
                self.event(
                    EventType::Warning,
                    reasons::DRIFT_DETECTED,
                    format!("Drift detected.\n{raw}"),
                );
                if !self.force_or_auto() {
                    return self.failed(Row::DriftDetected, retry, reasons::DRIFT_DETECTED);
                }
            } else {
                self.lock_released();
                self.readiness(
                    "True",
                    reasons::NO_DRIFT,
                    &format!("No drift: {revision}"),
                    revision,
                );
                return self.succeeded(Row::NoDrift);
            }
        }
        if self.spec_str("approvePlan") == "disable" {
            return self.succeeded(Row::NoDrift);
        }
        let mut row = Row::PlannedNoChanges;
        if self.st_str(&["plan", "pending"]).is_empty() || self.spec_bool("force") {
            self.progressing("Terraform Planning");
            self.patch();
            if self.lock_after_setup().is_some() {
                self.plan_locked(revision);
                return self.failed(Row::LockHeld, retry, "error running Plan: state locked");
            }
            let changes = !has_resources
                || self.st_str(&["lastAppliedRevision"]) != revision
                || self.behavior.drift;
            if changes {
                self.planned_with_changes(revision);
                row = Row::AwaitingApproval;
            } else {
                self.planned_no_changes(revision, "Plan no changes");
            }
            self.patch();
        }
        if self.should_apply() {
            self.progressing("Applying");
            self.set_cond(
                cond::APPLY,
                "Unknown",
                reasons::PROGRESSING,
                "Apply started",
            );
            self.set_st("lastAttemptedRevision", json!(revision));
            self.patch();
            if !self.behavior.apply_duration.is_zero() {
                self.actions
                    .push(Action::Sleep(self.behavior.apply_duration));
            }
            let entries = self.behavior.inventory_for(&self.name);
            self.actions.push(Action::CountApply);
            self.actions.push(self.write_state(&entries, 1));
            self.event(
                EventType::Normal,
                reasons::APPLY_SUCCEED,
                "Applied successfully".to_string(),
            );
            let inv: &[super::behavior::InventoryEntry] = if self.spec_bool("enableInventory") {
                &entries
            } else {
                &[]
            };
            let inv = inv.to_vec();
            self.applied(revision, "Applied successfully", &inv);
            if !self.spec_bool("enableInventory") {
                self.remove_st("inventory");
            }
            self.patch();
            row = Row::Applied;
        }
        if row == Row::AwaitingApproval {
            return self.succeeded(row);
        }
        // outputs
        let outputs = self.behavior.outputs_for(&self.name);
        let mut keys: Vec<String> = outputs.keys().cloned().collect();
        keys.sort();
        if !keys.is_empty() {
            self.set_cond(
                cond::OUTPUT,
                "True",
                reasons::OUTPUTS_AVAILABLE,
                "Outputs available",
            );
            self.set_st("availableOutputs", json!(keys));
        }
        if let Some(secret) = outputs_secret_name(self.tf) {
            let mut data = Map::new();
            for (k, v) in &outputs {
                let text = match v {
                    Value::String(s) => s.clone(),
                    other => other.to_string(),
                };
                data.insert(k.clone(), json!(base64_encode(text.as_bytes())));
            }
            let labels = self.tf["spec"]["writeOutputsToSecret"]["labels"].clone();
            let annotations = self.tf["spec"]["writeOutputsToSecret"]["annotations"].clone();
            let mut meta = json!({
                "name": secret,
                "namespace": self.namespace,
                "ownerReferences": [self.owner_ref(true)],
            });
            if labels.is_object() {
                meta["labels"] = labels;
            }
            if annotations.is_object() {
                meta["annotations"] = annotations;
            }
            self.actions.push(Action::ApplySecret(json!({
                "apiVersion": "v1",
                "kind": "Secret",
                "metadata": meta,
                "type": "Opaque",
                "data": data,
            })));
            self.set_cond(
                cond::OUTPUT,
                "True",
                reasons::OUTPUTS_WRITTEN,
                "Outputs written",
            );
            self.readiness(
                "True",
                reasons::OUTPUTS_WRITTEN,
                &format!("Outputs written: {revision}"),
                revision,
            );
        }
        if let Some((st, reason, msg)) = cond::get(&self.status, cond::READY) {
            if st == "Unknown"
                && reason != reasons::PROGRESSING
                && !(reason == reasons::PLANNED_WITH_CHANGES && msg.starts_with("Plan generated"))
            {
                self.set_cond(cond::READY, "True", &reason, &msg);
                cond::delete(&mut self.status, cond::RECONCILING);
            }
        }
        self.succeeded(row)
    }

    /// `shouldDetectDrift`.
    fn should_detect_drift(&self, revision: &str) -> bool {
        if self.spec_bool("disableDriftDetection") || self.spec_bool("destroy") {
            return false;
        }
        if self.spec_str("approvePlan") == "disable" {
            return true;
        }
        let applied = self.st_str(&["lastAppliedRevision"]);
        let planned = self.st_str(&["lastPlannedRevision"]);
        let attempted = self.st_str(&["lastAttemptedRevision"]);
        if applied.is_empty() && planned.is_empty() && attempted.is_empty() {
            return false;
        }
        let observed = self
            .status
            .get("observedGeneration")
            .and_then(Value::as_i64)
            .unwrap_or(0);
        if self.generation != observed {
            return false;
        }
        let pending = self.st_str(&["plan", "pending"]);
        attempted == planned && attempted == revision && pending.is_empty()
    }
}

fn parse_time(text: &str) -> Option<DateTime<Utc>> {
    DateTime::parse_from_rfc3339(text)
        .ok()
        .map(|t| t.with_timezone(&Utc))
}
