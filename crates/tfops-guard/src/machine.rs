//! `machine` — the per-CR uninstall state machine (pure): observation of one `Terraform` CR +
//! what the guard knows of its environment + policy + persisted progress + time →
//! [`Decision`] and the updated [`Progress`].
//!
//! The runtime calls [`decide`] whenever something about the CR changes (watch event) or the
//! `until` of the last [`Decision::Wait`] passes, executes the decision, and persists the
//! returned progress (annotation `tfops.dev/guard-progress`) in the same patch when it can.
//! The function is deterministic: same input, same output (request tokens derive from `now`).

use std::fmt;
use std::time::Duration;

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};

use crate::classify::{Classification, Classifier, FailureClass};
use crate::policy::{OnFailure, Policy, UninstallPolicy};
use crate::progress::{Phase, Progress};

/// tofu-controller's own finalizer; it stays until destroy (or orphan release) succeeds.
pub const TF_FINALIZER: &str = "finalizers.tf.contrib.fluxcd.io";
/// Prefix of the finalizers tofu-controller puts on a dependency for each dependant.
pub const TF_DEPENDENCY_OF_PREFIX: &str = "tf.dependency.of.";
/// Flux reconcile-request annotation; echoed in `status.lastHandledReconcileAt`.
pub const REQUESTED_AT_ANNOTATION: &str = "reconcile.fluxcd.io/requestedAt";

/// Status of a Kubernetes condition.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub enum ConditionStatus {
    True,
    False,
    Unknown,
}

/// The CR's `Ready` condition.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct ReadyCondition {
    pub status: ConditionStatus,
    pub reason: String,
    pub message: String,
    pub last_transition_time: Option<DateTime<Utc>>,
}

/// What the guard sees of one `Terraform` CR right now.
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Observation {
    /// `metadata.name`.
    pub name: String,
    /// `metadata.namespace`.
    pub namespace: String,
    /// False once the CR is gone (NotFound / watch Deleted).
    pub exists: bool,
    /// `metadata.deletionTimestamp` is set.
    pub deleting: bool,
    /// `metadata.finalizers`.
    pub finalizers: Vec<String>,
    /// `spec.suspend`.
    pub suspend: bool,
    /// `spec.destroyResourcesOnDeletion` (default false).
    pub destroy_resources_on_deletion: bool,
    /// `status.conditions[type=Ready]`.
    pub ready: Option<ReadyCondition>,
    /// `status.conditions[type=Plan]` is False / `TerraformPlannedNoChanges` / "No objects
    /// need to be destroyed" (the controller's own nothing-to-destroy test).
    pub plan_nothing_to_destroy: bool,
    /// `status.lastHandledReconcileAt`.
    pub last_handled_reconcile_at: Option<String>,
    /// The latest `lastTransitionTime` among `status.conditions` (controller activity).
    pub last_status_change_at: Option<DateTime<Utc>>,
    /// `status.lock.pending` (lock id the controller found held).
    pub lock_pending: Option<String>,
    /// `status.inventory.entries` count, when present.
    pub inventory_entries: Option<usize>,
    /// Names of `Terraform` CRs that depend on this one and are KNOWN to still exist (filled
    /// by the runtime; when unsure whether a dependant exists, list it). A
    /// `tf.dependency.of.<x>` finalizer whose `x` is not listed is treated as stale.
    pub dependants_present: Vec<String>,
}

/// Presence of something the controller needs, as far as the guard could tell.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum Presence {
    Present,
    Missing,
    #[default]
    Unknown,
}

/// The Flux source the CR refers to.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum SourceState {
    /// Exists with `status.artifact`.
    Ready,
    /// Exists, no artifact (yet).
    NoArtifact,
    /// NotFound.
    Missing,
    #[default]
    Unknown,
}

/// What the guard knows about the CR's environment (probed by the runtime).
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Environment {
    pub source: SourceState,
    /// The runner ServiceAccount (`spec.serviceAccountName`, default `tf-runner`).
    pub runner_service_account: Presence,
    /// Every `spec.varsFrom` Secret/ConfigMap that is not optional.
    pub vars_from: Presence,
    /// The namespace has a deletionTimestamp (no runner pod can be created).
    pub namespace_terminating: bool,
    /// Holder of `status.lock.pending`: Present = still alive (e.g. its runner pod / plan is
    /// running), Missing = provably gone, Unknown = cannot tell (never force-unlock then).
    pub lock_holder: Presence,
    /// tofu-controller itself: Present = seen responsive, Missing = known absent (e.g. no
    /// controller deployment/lease), Unknown = not probed (the machine then relies on the
    /// `requestedAt` echo).
    pub controller: Presence,
}

/// Time inputs. All wall-clock (the runtime's clock: start time + monotonic elapsed).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Timing {
    pub now: DateTime<Utc>,
    /// When this guard run started (a block recorded before this is from a previous run).
    pub run_started_at: DateTime<Utc>,
    /// End of this CR's share of the guard budget (the runtime's split). The machine
    /// additionally caps it by `progress.startedAt + policy.timeout`.
    pub share_deadline: DateTime<Utc>,
    /// End of the whole guard budget.
    pub budget_deadline: DateTime<Utc>,
}

/// Tunable bounds of the machine (defaults suit the 240s default budget).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Tunables {
    /// A controller that neither echoes a `requestedAt` nor changes any condition within this
    /// time is treated as absent.
    #[serde(with = "crate::duration::serde_go")]
    pub echo_timeout: Duration,
    /// An orphan request not completed within this time, while the controller shows no
    /// progress, escalates to force.
    #[serde(with = "crate::duration::serde_go")]
    pub orphan_timeout: Duration,
    /// First retry backoff; doubles per attempt up to `backoff_max`.
    #[serde(with = "crate::duration::serde_go")]
    pub backoff_base: Duration,
    #[serde(with = "crate::duration::serde_go")]
    pub backoff_max: Duration,
    /// The last moment to force-remove is `budget_deadline - force_reserve` (time left for
    /// the ledger write and the finalizer patches).
    #[serde(with = "crate::duration::serde_go")]
    pub force_reserve: Duration,
    /// How long a source without artifact is given to get one before escalating.
    #[serde(with = "crate::duration::serde_go")]
    pub missing_dependency_grace: Duration,
    /// Longest single wait: the machine is re-consulted at least this often.
    #[serde(with = "crate::duration::serde_go")]
    pub max_wait: Duration,
}

impl Default for Tunables {
    fn default() -> Self {
        Tunables {
            echo_timeout: Duration::from_secs(45),
            orphan_timeout: Duration::from_secs(30),
            backoff_base: Duration::from_secs(10),
            backoff_max: Duration::from_secs(60),
            force_reserve: Duration::from_secs(10),
            missing_dependency_grace: Duration::from_secs(20),
            max_wait: Duration::from_secs(30),
        }
    }
}

/// Everything [`decide`] looks at.
#[derive(Debug, Clone, Copy)]
pub struct Input<'a> {
    pub observation: &'a Observation,
    pub environment: &'a Environment,
    pub policy: &'a Policy,
    /// Progress read from the CR (or kept in memory once the CR is gone).
    pub progress: &'a Progress,
    pub timing: Timing,
    pub tunables: &'a Tunables,
    pub classifier: &'a Classifier,
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

/// The ledger decision label (`tfops.dev/decision`): one type shared with the ledger format.
pub use crate::ledger::LedgerDecision;

/// What the ledger entry written before an orphan / force-remove must say (the runtime adds
/// the CR snapshot, outputs, tfstate copy and `decidedAt`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct LedgerRecord {
    pub decision: LedgerDecision,
    /// Short machine-readable cause, e.g. `retain-policy`, `permanent-failure`,
    /// `retries-exhausted`, `timeout`, `controller-absent`, `orphan-stalled`.
    pub reason: String,
    /// Human sentence (includes the last failure reason/message when there was one).
    pub message: String,
    pub class: Option<FailureClass>,
    pub attempts: u32,
    pub first_failure_at: Option<DateTime<Utc>>,
}

/// What a [`Decision::Wait`] is waiting for.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case", tag = "kind", content = "detail")]
pub enum WaitFor {
    /// Dependants (listed) must be gone first.
    Dependants(Vec<String>),
    /// The controller has not yet handled the last request / deletion.
    Controller,
    /// The controller is destroying (or releasing) the CR.
    Destroy,
    /// Backoff before the next retry.
    Backoff,
    /// The controller is releasing the CR after the orphan request.
    Orphan,
    /// A source without artifact, given a grace period.
    MissingDependency,
    /// The force-unlock request is being handled.
    Unlock,
}

/// One decision for one CR. The runtime executes exactly what the doc of the variant says,
/// then persists the returned progress. Decisions that let a CR go without a destroy
/// ([`Decision::requires_ledger`]) MUST have their ledger entry written (and confirmed)
/// before the first patch of the decision; if the ledger write fails, do nothing else and
/// call [`decide`] again.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case", tag = "action")]
pub enum Decision {
    /// Patch `spec.suspend: false` (a suspended CR is never finalized by the controller).
    Unsuspend,
    /// Patch annotation `reconcile.fluxcd.io/requestedAt: <requested_at>` (together with the
    /// progress annotation), then DELETE the CR with `propagationPolicy: Background`.
    Delete { requested_at: String },
    /// Remove these stale `tf.dependency.of.<x>` finalizers from this CR (their dependant is
    /// gone; the controller would have removed them). Never touches `TF_FINALIZER`.
    DropStaleDependencyFinalizers { finalizers: Vec<String> },
    /// Do nothing; call [`decide`] again on the next watch event for this CR (or for a CR
    /// listed in `WaitFor::Dependants`), or at `until` at the latest.
    Wait {
        until: DateTime<Utc>,
        waiting_for: WaitFor,
    },
    /// Patch annotation `reconcile.fluxcd.io/requestedAt: <requested_at>` (fresh token) so
    /// the controller re-runs the destroy now. `attempt` = retry number (1-based; 0 = a first
    /// request with no failure counted yet), `of` = policy retries, `backoff` = the delay
    /// waited before it (informational).
    Retry {
        requested_at: String,
        attempt: u32,
        of: u32,
        #[serde(with = "crate::duration::serde_go")]
        backoff: Duration,
    },
    /// Patch `spec.tfstate.forceUnlock: "yes"`, `spec.tfstate.lockIdentifier: <lock_id>` and
    /// annotation `reconcile.fluxcd.io/requestedAt: <requested_at>`.
    ForceUnlock {
        lock_id: String,
        requested_at: String,
    },
    /// Steps, in order:
    /// 1. write the ledger entry (`ledger`, decision orphaned);
    /// 2. patch `spec.destroyResourcesOnDeletion: false` and annotation
    ///    `reconcile.fluxcd.io/requestedAt: <requested_at>`;
    /// 3. nothing else: if the CR is not being deleted yet, the next decision is `Delete`.
    Orphan {
        requested_at: String,
        ledger: LedgerRecord,
    },
    /// Steps, in order:
    /// 1. write (or update to decision force-removed) the ledger entry;
    /// 2. remove `tf.dependency.of.<this CR>` (= `dependency_finalizer`) from every CR this
    ///    one `dependsOn`;
    /// 3. remove `TF_FINALIZER` and every `tf.dependency.of.*` finalizer from this CR (keep
    ///    foreign finalizers; guard the patch with the resourceVersion);
    /// 4. if the CR was not being deleted, DELETE it.
    ForceRemove {
        ledger: LedgerRecord,
        dependency_finalizer: String,
    },
    /// Stop with this CR: emit a Warning Event with `message`; the guard exits non-zero at
    /// the end and prints `message` (it says exactly what to do next).
    Block { message: String },
    /// Terminal; nothing left to do for this CR.
    Done(Outcome),
}

impl Decision {
    /// The ledger entry that must exist before this decision's first patch, if any.
    pub fn requires_ledger(&self) -> Option<&LedgerRecord> {
        match self {
            Decision::Orphan { ledger, .. } | Decision::ForceRemove { ledger, .. } => Some(ledger),
            _ => None,
        }
    }

    /// True for decisions that let the CR go without a successful destroy.
    pub fn releases_without_destroy(&self) -> bool {
        matches!(self, Decision::Orphan { .. } | Decision::ForceRemove { .. })
    }

    /// True for decisions that remove `TF_FINALIZER` (only [`Decision::ForceRemove`]).
    pub fn strips_controller_finalizer(&self) -> bool {
        matches!(self, Decision::ForceRemove { .. })
    }

    /// True for `Done`.
    pub fn is_terminal(&self) -> bool {
        matches!(self, Decision::Done(_))
    }

    /// The `requestedAt` token this decision sets, if any.
    pub fn requested_at(&self) -> Option<&str> {
        match self {
            Decision::Delete { requested_at }
            | Decision::Retry { requested_at, .. }
            | Decision::ForceUnlock { requested_at, .. }
            | Decision::Orphan { requested_at, .. } => Some(requested_at),
            _ => None,
        }
    }

    /// Short name (Event reason suffix, logs): `unsuspend`, `delete`, `wait`, …
    pub fn kind(&self) -> &'static str {
        match self {
            Decision::Unsuspend => "unsuspend",
            Decision::Delete { .. } => "delete",
            Decision::DropStaleDependencyFinalizers { .. } => "drop-stale-dependency-finalizers",
            Decision::Wait { .. } => "wait",
            Decision::Retry { .. } => "retry",
            Decision::ForceUnlock { .. } => "force-unlock",
            Decision::Orphan { .. } => "orphan",
            Decision::ForceRemove { .. } => "force-remove",
            Decision::Block { .. } => "block",
            Decision::Done(_) => "done",
        }
    }
}

/// A decision, the progress it implies, and a one-line explanation (for Events and logs).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Step {
    pub decision: Decision,
    pub progress: Progress,
    pub why: String,
    /// Classification of the current failure, when there is one.
    pub classification: Option<Classification>,
}

/// The request token for `now` (RFC 3339 with nanoseconds, like `flux reconcile`).
pub fn request_token(now: DateTime<Utc>) -> String {
    now.to_rfc3339_opts(chrono::SecondsFormat::Nanos, true)
}

impl Observation {
    /// An observation of a CR that no longer exists.
    pub fn gone(name: &str, namespace: &str) -> Self {
        Observation {
            name: name.to_string(),
            namespace: namespace.to_string(),
            exists: false,
            ..Observation::default()
        }
    }

    /// Read everything but `dependants_present` from a `Terraform` object (JSON as served by
    /// the API server). `dependants_present` is left empty for the runtime to fill.
    pub fn from_object(obj: &serde_json::Value) -> Self {
        let meta = &obj["metadata"];
        let spec = &obj["spec"];
        let status = &obj["status"];
        let str_of = |v: &serde_json::Value| v.as_str().map(str::to_string);
        let time_of = |v: &serde_json::Value| {
            v.as_str()
                .and_then(|s| DateTime::parse_from_rfc3339(s).ok())
                .map(|t| t.with_timezone(&Utc))
        };
        let conditions = status["conditions"].as_array().cloned().unwrap_or_default();
        let find = |ty: &str| conditions.iter().find(|c| c["type"] == ty);
        let ready = find("Ready").map(|c| ReadyCondition {
            status: match c["status"].as_str() {
                Some("True") => ConditionStatus::True,
                Some("False") => ConditionStatus::False,
                _ => ConditionStatus::Unknown,
            },
            reason: str_of(&c["reason"]).unwrap_or_default(),
            message: str_of(&c["message"]).unwrap_or_default(),
            last_transition_time: time_of(&c["lastTransitionTime"]),
        });
        let plan_nothing_to_destroy = find("Plan").is_some_and(|c| {
            c["status"] == "False"
                && c["reason"] == "TerraformPlannedNoChanges"
                && c["message"] == "No objects need to be destroyed"
        });
        let last_status_change_at = conditions
            .iter()
            .filter_map(|c| time_of(&c["lastTransitionTime"]))
            .max();
        Observation {
            name: str_of(&meta["name"]).unwrap_or_default(),
            namespace: str_of(&meta["namespace"]).unwrap_or_default(),
            exists: true,
            deleting: meta.get("deletionTimestamp").is_some_and(|v| !v.is_null()),
            finalizers: meta["finalizers"]
                .as_array()
                .map(|a| a.iter().filter_map(str_of).collect())
                .unwrap_or_default(),
            suspend: spec["suspend"].as_bool().unwrap_or(false),
            destroy_resources_on_deletion: spec["destroyResourcesOnDeletion"]
                .as_bool()
                .unwrap_or(false),
            ready,
            plan_nothing_to_destroy,
            last_handled_reconcile_at: str_of(&status["lastHandledReconcileAt"]),
            last_status_change_at,
            lock_pending: str_of(&status["lock"]["pending"]).filter(|s| !s.is_empty()),
            inventory_entries: status["inventory"]["entries"].as_array().map(Vec::len),
            dependants_present: Vec::new(),
        }
    }

    /// The tofu-controller finalizers on this CR (`TF_FINALIZER` and `tf.dependency.of.*`).
    pub fn controller_finalizers(&self) -> impl Iterator<Item = &str> {
        self.finalizers
            .iter()
            .map(String::as_str)
            .filter(|f| *f == TF_FINALIZER || f.starts_with(TF_DEPENDENCY_OF_PREFIX))
    }

    /// Names `x` of the `tf.dependency.of.<x>` finalizers.
    pub fn dependant_finalizer_names(&self) -> impl Iterator<Item = &str> {
        self.finalizers
            .iter()
            .filter_map(|f| f.strip_prefix(TF_DEPENDENCY_OF_PREFIX))
    }
}

/// `t + d`, saturating.
fn plus(t: DateTime<Utc>, d: Duration) -> DateTime<Utc> {
    chrono::TimeDelta::from_std(d)
        .ok()
        .and_then(|d| t.checked_add_signed(d))
        .unwrap_or(DateTime::<Utc>::MAX_UTC)
}

/// `t - d`, saturating.
fn minus(t: DateTime<Utc>, d: Duration) -> DateTime<Utc> {
    chrono::TimeDelta::from_std(d)
        .ok()
        .and_then(|d| t.checked_sub_signed(d))
        .unwrap_or(DateTime::<Utc>::MIN_UTC)
}

/// The retry backoff before retry number `attempt` (1-based): `base * 2^(attempt-1)`, capped.
pub fn backoff(tunables: &Tunables, attempt: u32) -> Duration {
    let exp = attempt.saturating_sub(1).min(20);
    tunables
        .backoff_base
        .saturating_mul(1u32 << exp)
        .min(tunables.backoff_max)
}

/// The last moment the guard may still strip finalizers within the budget.
pub fn force_point(timing: &Timing, tunables: &Tunables) -> DateTime<Utc> {
    minus(timing.budget_deadline, tunables.force_reserve)
}

/// When this CR escalates to its on-failure action at the latest: the earliest of its share
/// of the budget, `started_at + policy.timeout`, and the force point.
pub fn cr_deadline(
    started_at: DateTime<Utc>,
    policy: &Policy,
    timing: &Timing,
    tunables: &Tunables,
) -> DateTime<Utc> {
    timing
        .share_deadline
        .min(plus(started_at, policy.timeout))
        .min(force_point(timing, tunables))
}

/// Ready reasons that mean "in progress", not failure.
fn is_failure(ready: &ReadyCondition) -> bool {
    ready.status == ConditionStatus::False
        && ready.reason != "DeletionBlockedByDependantsReason"
        && ready.reason != "Progressing"
}

/// Why the guard escalates to the on-failure action.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Escalation {
    RetainPolicy,
    DestroyDisabled,
    PermanentFailure,
    MissingDependency,
    RetriesExhausted,
    Timeout,
    ControllerAbsent,
    DependantsRemain,
    OrphanStalled,
    BudgetExhausted,
}

impl Escalation {
    fn code(self) -> &'static str {
        match self {
            Escalation::RetainPolicy => "retain-policy",
            Escalation::DestroyDisabled => "destroy-disabled",
            Escalation::PermanentFailure => "permanent-failure",
            Escalation::MissingDependency => "missing-dependency",
            Escalation::RetriesExhausted => "retries-exhausted",
            Escalation::Timeout => "timeout",
            Escalation::ControllerAbsent => "controller-absent",
            Escalation::DependantsRemain => "dependants-remain",
            Escalation::OrphanStalled => "orphan-stalled",
            Escalation::BudgetExhausted => "budget-exhausted",
        }
    }
}

/// Working state of one `decide` call.
struct Ctx<'a> {
    i: &'a Input<'a>,
    o: &'a Observation,
    e: &'a Environment,
    p: &'a Policy,
    t: &'a Tunables,
    now: DateTime<Utc>,
    g: Progress,
    classification: Option<Classification>,
}

/// Decide what to do next with one CR. Pure and deterministic.
pub fn decide(input: &Input<'_>) -> Step {
    let mut cx = Ctx {
        i: input,
        o: input.observation,
        e: input.environment,
        p: input.policy,
        t: input.tunables,
        now: input.timing.now,
        g: input.progress.clone(),
        classification: None,
    };
    let (decision, why) = cx.run();
    Step {
        decision,
        progress: cx.g,
        why,
        classification: cx.classification,
    }
}

impl Ctx<'_> {
    fn run(&mut self) -> (Decision, String) {
        let o = self.o;
        if o.plan_nothing_to_destroy {
            self.g.nothing_to_destroy = true;
        }
        // Gone, or held only by foreign finalizers after deletion: tofu-controller is done.
        if !o.exists || (o.deleting && o.controller_finalizers().next().is_none()) {
            let outcome = self.outcome_when_released();
            return self.done(outcome);
        }
        if self.g.phase == Phase::Done {
            // The CR is back or still held by the controller: look again.
            self.g.phase = if o.deleting {
                Phase::Deleting
            } else {
                Phase::Pending
            };
            self.g.outcome = None;
        }
        let mut fresh_after_block = false;
        if self.g.phase == Phase::Blocked {
            let this_run = self
                .g
                .blocked_at
                .is_some_and(|b| b >= self.i.timing.run_started_at);
            if this_run {
                return (
                    Decision::Done(Outcome::Blocked),
                    "blocked earlier in this guard run".to_string(),
                );
            }
            // A new run after a block: the user fixed something (or changed the policy).
            // Fresh failure accounting and a fresh timeout, then carry on.
            self.g = Progress {
                phase: if o.deleting {
                    Phase::Deleting
                } else {
                    Phase::Pending
                },
                started_at: o.deleting.then_some(self.now),
                nothing_to_destroy: self.g.nothing_to_destroy,
                last_requested_at: self.g.last_requested_at.clone(),
                last_requested_sent_at: self.g.last_requested_sent_at,
                ..Progress::default()
            };
            fresh_after_block = o.deleting;
        }
        if self.g.phase == Phase::ForceRemoving {
            // The strip did not finish (guard killed, API error): do it again (idempotent).
            let reason = self
                .g
                .escalation_reason
                .clone()
                .unwrap_or_else(|| Escalation::BudgetExhausted.code().to_string());
            return self.force_remove_with_code(&reason, "finishing the force-remove");
        }
        // Budget end: nothing may wait any longer.
        if self.now >= force_point(&self.i.timing, self.t) {
            return self.final_escalation(Escalation::BudgetExhausted);
        }
        if fresh_after_block {
            return self.retry_now(0, 0, "new guard run after a block: retrying the destroy");
        }
        if o.deleting {
            self.deleting()
        } else {
            self.not_deleting()
        }
    }

    // ----- terminal ---------------------------------------------------------------------

    fn outcome_when_released(&self) -> Outcome {
        match self.g.phase {
            Phase::Orphaning => Outcome::Orphaned,
            Phase::ForceRemoving => Outcome::ForceRemoved,
            Phase::Done => self.g.outcome.unwrap_or(Outcome::Destroyed),
            _ if self.g.nothing_to_destroy => Outcome::NothingToDestroy,
            _ => Outcome::Destroyed,
        }
    }

    fn done(&mut self, outcome: Outcome) -> (Decision, String) {
        self.g.phase = Phase::Done;
        self.g.outcome = Some(outcome);
        self.g.escalates_at = None;
        let why = match outcome {
            Outcome::Destroyed => "the controller destroyed the resources and released the CR",
            Outcome::NothingToDestroy => {
                "the controller released the CR; there was nothing to destroy"
            }
            Outcome::Orphaned => {
                "the controller released the CR without destroying (ledger entry written)"
            }
            Outcome::ForceRemoved => "finalizers stripped after the ledger entry was written",
            Outcome::Blocked => "blocked",
        };
        (Decision::Done(outcome), why.to_string())
    }

    // ----- helpers ----------------------------------------------------------------------

    fn token(&self) -> String {
        request_token(self.now)
    }

    fn record_request(&mut self, token: &str) {
        self.g.last_requested_at = Some(token.to_string());
        self.g.last_requested_sent_at = Some(self.now);
    }

    fn started_at(&self) -> DateTime<Utc> {
        self.g.started_at.unwrap_or(self.now)
    }

    fn deadline(&self) -> DateTime<Utc> {
        cr_deadline(self.started_at(), self.p, &self.i.timing, self.t)
    }

    fn wait(
        &mut self,
        until: DateTime<Utc>,
        waiting_for: WaitFor,
        why: String,
    ) -> (Decision, String) {
        let cap = plus(self.now, self.t.max_wait).min(force_point(&self.i.timing, self.t));
        let mut until = until.min(cap);
        if until <= self.now {
            // Never a zero wait: re-consult one second later at the earliest.
            until = plus(self.now, Duration::from_secs(1));
        }
        (Decision::Wait { until, waiting_for }, why)
    }

    /// Live dependants: listed as present by the runtime.
    fn live_dependants(&self) -> Vec<String> {
        let mut v = self.o.dependants_present.clone();
        v.sort();
        v.dedup();
        v
    }

    fn stale_dependency_finalizers(&self) -> Vec<String> {
        self.o
            .finalizers
            .iter()
            .filter(|f| {
                f.strip_prefix(TF_DEPENDENCY_OF_PREFIX)
                    .is_some_and(|x| !self.o.dependants_present.iter().any(|d| d == x))
            })
            .cloned()
            .collect()
    }

    /// Did the controller echo our last request?
    fn echoed(&self) -> bool {
        match (&self.g.last_requested_at, &self.o.last_handled_reconcile_at) {
            (Some(ours), Some(seen)) => ours == seen,
            _ => false,
        }
    }

    /// Any sign of the controller since our last request (echo, a condition transition, or
    /// the runtime's own probe).
    fn controller_seen(&self) -> bool {
        if self.e.controller == Presence::Present || self.echoed() {
            return true;
        }
        match (self.g.last_requested_sent_at, self.o.last_status_change_at) {
            // Strictly after: a transition stamped at the moment we asked predates the ask.
            (Some(sent), Some(changed)) => changed > sent,
            (None, _) => true, // nothing asked yet: nothing to hold against it
            _ => false,
        }
    }

    /// When the controller counts as absent if it stays silent.
    fn echo_deadline(&self) -> Option<DateTime<Utc>> {
        if self.controller_seen() {
            return None;
        }
        self.g
            .last_requested_sent_at
            .map(|s| plus(s, self.t.echo_timeout))
    }

    fn controller_absent(&self) -> bool {
        if self.e.controller == Presence::Missing {
            return true;
        }
        self.echo_deadline().is_some_and(|d| self.now >= d)
    }

    /// Why an orphan request could not complete now (the controller needs the source
    /// artifact, the runner SA and a creatable runner pod, and no live dependants).
    fn orphan_blocker(&self) -> Option<String> {
        if self.controller_absent() {
            return Some("tofu-controller does not respond".to_string());
        }
        if !self.live_dependants().is_empty() {
            return Some(format!(
                "dependants still present: {}",
                self.live_dependants().join(", ")
            ));
        }
        match self.e.source {
            SourceState::Missing => return Some("its Flux source is missing".to_string()),
            SourceState::NoArtifact => return Some("its Flux source has no artifact".to_string()),
            _ => {}
        }
        if self.e.runner_service_account == Presence::Missing {
            return Some("the runner ServiceAccount is missing".to_string());
        }
        if self.e.namespace_terminating {
            return Some("the namespace is terminating (no runner pod can start)".to_string());
        }
        None
    }

    /// A blocker that stops the destroy itself (beyond the orphan blockers).
    fn destroy_blocker(&self) -> Option<(String, bool)> {
        // (description, immediate?) — a source without artifact gets a grace period.
        match self.e.source {
            SourceState::Missing => return Some(("its Flux source is missing".to_string(), true)),
            SourceState::NoArtifact => {
                return Some(("its Flux source has no artifact".to_string(), false))
            }
            _ => {}
        }
        if self.e.runner_service_account == Presence::Missing {
            return Some(("the runner ServiceAccount is missing".to_string(), true));
        }
        if self.e.vars_from == Presence::Missing {
            return Some(("a varsFrom Secret/ConfigMap is missing".to_string(), true));
        }
        if self.e.namespace_terminating {
            return Some((
                "the namespace is terminating (no runner pod can start)".to_string(),
                true,
            ));
        }
        None
    }

    fn failure_text(&self) -> String {
        match (&self.g.last_failure_reason, &self.g.last_failure_message) {
            (Some(r), Some(m)) => {
                let class = self
                    .g
                    .last_failure_class
                    .map(|c| format!("{c} "))
                    .unwrap_or_default();
                format!("last failure ({class}{r}): {m}")
            }
            (Some(r), None) => format!("last failure: {r}"),
            _ => "no destroy failure recorded".to_string(),
        }
    }

    fn ledger(&self, decision: LedgerDecision, code: &str, detail: &str) -> LedgerRecord {
        let mut message = detail.to_string();
        if self.g.last_failure_reason.is_some() {
            message.push_str("; ");
            message.push_str(&self.failure_text());
        }
        LedgerRecord {
            decision,
            reason: code.to_string(),
            message,
            class: self.g.last_failure_class,
            attempts: self.g.attempts,
            first_failure_at: self.g.first_failure_at,
        }
    }

    // ----- decisions --------------------------------------------------------------------

    /// Retry `attempt` (0 = a first request with no failure counted yet: after a block in a
    /// previous run, or for a CR deleted by someone else before the guard asked anything).
    fn retry_now(&mut self, attempt: u32, waited: u64, why: &str) -> (Decision, String) {
        let token = self.token();
        self.record_request(&token);
        self.g.escalates_at = Some(self.deadline());
        (
            Decision::Retry {
                requested_at: token,
                attempt,
                of: self.p.retries,
                backoff: Duration::from_secs(waited),
            },
            why.to_string(),
        )
    }

    fn orphan(&mut self, esc: Escalation, detail: &str) -> (Decision, String) {
        let token = self.token();
        let ledger = self.ledger(LedgerDecision::Orphaned, esc.code(), detail);
        self.record_request(&token);
        self.g.phase = Phase::Orphaning;
        self.g.orphan_requested_at = Some(self.now);
        self.g.escalation_reason = Some(esc.code().to_string());
        let fp = force_point(&self.i.timing, self.t);
        self.g.escalates_at = Some(plus(self.now, self.t.orphan_timeout).min(fp));
        (
            Decision::Orphan {
                requested_at: token,
                ledger,
            },
            format!("orphan ({}): {detail}", esc.code()),
        )
    }

    fn force_remove(&mut self, esc: Escalation, detail: &str) -> (Decision, String) {
        self.force_remove_with_code(esc.code(), detail)
    }

    fn force_remove_with_code(&mut self, code: &str, detail: &str) -> (Decision, String) {
        let ledger = self.ledger(LedgerDecision::ForceRemoved, code, detail);
        self.g.phase = Phase::ForceRemoving;
        self.g.escalation_reason = Some(code.to_string());
        if self.g.force_removed_at.is_none() {
            self.g.force_removed_at = Some(self.now);
        }
        self.g.escalates_at = None;
        (
            Decision::ForceRemove {
                ledger,
                dependency_finalizer: format!("{TF_DEPENDENCY_OF_PREFIX}{}", self.o.name),
            },
            format!("force-remove ({code}): {detail}"),
        )
    }

    fn block(&mut self, esc: Escalation, detail: &str) -> (Decision, String) {
        self.g.phase = Phase::Blocked;
        self.g.blocked_at = Some(self.now);
        self.g.escalation_reason = Some(esc.code().to_string());
        self.g.escalates_at = None;
        let message = self.block_message(esc, detail);
        (
            Decision::Block {
                message: message.clone(),
            },
            message,
        )
    }

    fn block_message(&self, esc: Escalation, detail: &str) -> String {
        let name = &self.o.name;
        let ns = &self.o.namespace;
        let fix = match esc {
            Escalation::ControllerAbsent => {
                "start tofu-controller (it must finalize the CR)".to_string()
            }
            Escalation::MissingDependency => format!(
                "restore what the controller needs ({detail}); see `helm tfops doctor -n {ns}`"
            ),
            Escalation::DependantsRemain => {
                "delete the dependants first (they must finish their own destroy)".to_string()
            }
            Escalation::Timeout | Escalation::BudgetExhausted => format!(
                "let the destroy finish (raise `tfops.dev/timeout` on the CR or run `helm uninstall --timeout` with a longer value); {}",
                self.failure_text()
            ),
            _ => match self.g.last_failure_class {
                Some(FailureClass::Permanent) => format!(
                    "fix the cause in the cloud account or the module ({})",
                    self.failure_text()
                ),
                _ => format!("fix the cause ({})", self.failure_text()),
            },
        };
        format!(
            "Terraform {ns}/{name} was not destroyed: {detail} [{code}]. The guard stopped because its policy is tfops.dev/on-failure=block. Next: {fix}, then run `helm uninstall` again (the guard retries the destroy). To keep the cloud resources instead and record them in the orphan ledger: `kubectl -n {ns} annotate terraform {name} tfops.dev/on-failure=orphan --overwrite`, then `helm uninstall` again.",
            code = esc.code()
        )
    }

    /// The on-failure action (orphan when feasible and there is time; else force; or block).
    fn escalate(&mut self, esc: Escalation, detail: &str) -> (Decision, String) {
        match self.p.on_failure {
            OnFailure::Block => self.block(esc, detail),
            OnFailure::Force => self.force_remove(esc, detail),
            OnFailure::Orphan => {
                let fp = force_point(&self.i.timing, self.t);
                let no_time = plus(self.now, self.t.orphan_timeout) > fp;
                match self.orphan_blocker() {
                    _ if esc == Escalation::ControllerAbsent => self.force_remove(
                        esc,
                        &format!("{detail}; orphaning needs the controller, so force-removing"),
                    ),
                    Some(b) => self.force_remove(
                        esc,
                        &format!(
                            "{detail}; the controller cannot release it ({b}), so force-removing"
                        ),
                    ),
                    None if no_time => self.force_remove(
                        esc,
                        &format!(
                            "{detail}; no time left in the budget to orphan, so force-removing"
                        ),
                    ),
                    None => self.orphan(esc, detail),
                }
            }
        }
    }

    /// At the force point: force-remove (or block), no more waiting.
    fn final_escalation(&mut self, esc: Escalation) -> (Decision, String) {
        let detail = format!(
            "the guard budget ends at {} and the CR is still held",
            self.i.timing.budget_deadline.to_rfc3339()
        );
        if self.p.on_failure == OnFailure::Block {
            self.block(esc, &detail)
        } else {
            self.force_remove(esc, &detail)
        }
    }

    // ----- not deleted yet --------------------------------------------------------------

    fn not_deleting(&mut self) -> (Decision, String) {
        let o = self.o;
        if o.suspend {
            return (
                Decision::Unsuspend,
                "spec.suspend is true; the controller would never finalize it".to_string(),
            );
        }
        let dependants = self.live_dependants();
        if !dependants.is_empty() {
            let until = force_point(&self.i.timing, self.t);
            let why = format!(
                "waiting for dependants to go first: {}",
                dependants.join(", ")
            );
            return self.wait(until, WaitFor::Dependants(dependants), why);
        }
        let keep = self.p.uninstall == UninstallPolicy::Retain || !o.destroy_resources_on_deletion;
        if keep && self.g.phase != Phase::Orphaning {
            let esc = if self.p.uninstall == UninstallPolicy::Retain {
                Escalation::RetainPolicy
            } else {
                Escalation::DestroyDisabled
            };
            let detail = if esc == Escalation::RetainPolicy {
                "uninstall-policy is retain: keep the cloud resources".to_string()
            } else {
                "spec.destroyResourcesOnDeletion is false: the controller will not destroy"
                    .to_string()
            };
            if self.e.controller == Presence::Missing {
                return self.retain_without_controller(esc, &detail);
            }
            return self.orphan(esc, &detail);
        }
        // Delete it (with a fresh request token to measure the controller's response).
        let token = self.token();
        self.record_request(&token);
        if self.g.started_at.is_none() {
            self.g.started_at = Some(self.now);
        }
        if self.g.phase == Phase::Pending {
            self.g.phase = Phase::Deleting;
        }
        if !o.finalizers.iter().any(|f| f == TF_FINALIZER) {
            // The controller never took it over: nothing can have been applied by it.
            self.g.nothing_to_destroy = true;
        }
        self.g.escalates_at = Some(self.deadline());
        (
            Decision::Delete {
                requested_at: token,
            },
            "deleting; the controller will run the destroy".to_string(),
        )
    }

    fn retain_without_controller(&mut self, esc: Escalation, detail: &str) -> (Decision, String) {
        let detail =
            format!("{detail}; tofu-controller is absent, nothing would destroy or release it");
        if self.p.on_failure == OnFailure::Block {
            self.block(Escalation::ControllerAbsent, &detail)
        } else {
            self.force_remove(esc, &detail)
        }
    }

    // ----- being deleted ----------------------------------------------------------------

    fn deleting(&mut self) -> (Decision, String) {
        let o = self.o;
        if self.g.started_at.is_none() {
            self.g.started_at = Some(self.now);
            if !o.finalizers.iter().any(|f| f == TF_FINALIZER) {
                self.g.nothing_to_destroy = true;
            }
        }
        if self.g.phase == Phase::Pending {
            self.g.phase = Phase::Deleting;
        }
        if o.suspend {
            return (
                Decision::Unsuspend,
                "spec.suspend is true; the controller returns before finalizing".to_string(),
            );
        }
        let stale = self.stale_dependency_finalizers();
        if !stale.is_empty() {
            return (
                Decision::DropStaleDependencyFinalizers {
                    finalizers: stale.clone(),
                },
                format!(
                    "dependants gone but their finalizers remain: {}",
                    stale.join(", ")
                ),
            );
        }
        if self.g.phase == Phase::Orphaning {
            return self.orphaning();
        }
        let keep = self.p.uninstall == UninstallPolicy::Retain || !o.destroy_resources_on_deletion;
        if keep {
            let (esc, detail) = if self.p.uninstall == UninstallPolicy::Retain {
                (
                    Escalation::RetainPolicy,
                    "uninstall-policy is retain: keep the cloud resources",
                )
            } else {
                (
                    Escalation::DestroyDisabled,
                    "spec.destroyResourcesOnDeletion is false: the controller will not destroy",
                )
            };
            if self.controller_absent() {
                return self.retain_without_controller(esc, detail);
            }
            return self.orphan(esc, detail);
        }
        self.destroying()
    }

    /// Phase orphaning: wait for the controller to release the CR; force when it cannot.
    fn orphaning(&mut self) -> (Decision, String) {
        let requested = self.g.orphan_requested_at.unwrap_or(self.now);
        let patience_end = plus(requested, self.t.orphan_timeout);
        if let Some(b) = self.orphan_blocker() {
            return self.orphan_stalled(&format!("the orphan request cannot complete: {b}"));
        }
        // A failure reported after the controller handled our orphan request.
        if let Some(r) = self.o.ready.as_ref().filter(|r| is_failure(r)) {
            if self.echoed() {
                let c = self.i.classifier.classify(&r.reason, &r.message);
                let class = c.class;
                self.classification = Some(c);
                if class == FailureClass::BlockedByMissingDependency || self.now >= patience_end {
                    return self.orphan_stalled(&format!(
                        "the controller failed to release it: {}: {}",
                        r.reason, r.message
                    ));
                }
            }
        }
        let progressing = self.controller_seen();
        let hard_end = self.deadline().max(patience_end);
        if self.now >= patience_end && (!progressing || self.now >= hard_end) {
            return self.orphan_stalled(&format!(
                "the controller has not released it within {}",
                crate::duration::format_duration(self.t.orphan_timeout)
            ));
        }
        self.g.escalates_at = Some(if progressing { hard_end } else { patience_end });
        let until = if self.now < patience_end {
            patience_end
        } else {
            hard_end
        };
        let until = self.echo_deadline().map_or(until, |d| d.min(until));
        self.wait(
            until,
            WaitFor::Orphan,
            "waiting for the controller to release the CR without destroying".to_string(),
        )
    }

    fn orphan_stalled(&mut self, detail: &str) -> (Decision, String) {
        if self.p.on_failure == OnFailure::Block {
            self.block(Escalation::OrphanStalled, detail)
        } else {
            self.force_remove(Escalation::OrphanStalled, detail)
        }
    }

    /// Phase deleting/unlocking with destroy on: follow the destroy, retry, escalate.
    fn destroying(&mut self) -> (Decision, String) {
        let o = self.o;
        let deadline = self.deadline();
        self.g.escalates_at = Some(deadline);
        if self.g.phase == Phase::Unlocking && self.echoed() {
            // The force-unlock request was handled; back to following the destroy.
            self.g.phase = Phase::Deleting;
        }

        // Dependants first: the controller holds this CR until they are gone.
        let dependants = self.live_dependants();
        if !dependants.is_empty() {
            if self.now >= deadline {
                return self.escalate(
                    Escalation::DependantsRemain,
                    &format!("dependants still present: {}", dependants.join(", ")),
                );
            }
            let why = format!(
                "waiting for dependants to go first: {}",
                dependants.join(", ")
            );
            return self.wait(deadline, WaitFor::Dependants(dependants), why);
        }

        // What the controller needs before it can even start.
        if let Some((what, immediate)) = self.destroy_blocker() {
            let since = *self.g.missing_dependency_since.get_or_insert(self.now);
            let grace_end = plus(since, self.t.missing_dependency_grace).min(deadline);
            if immediate || self.now >= grace_end {
                self.g.last_failure_class = Some(FailureClass::BlockedByMissingDependency);
                return self.escalate(
                    Escalation::MissingDependency,
                    &format!("the destroy cannot run: {what}"),
                );
            }
            return self.wait(
                grace_end,
                WaitFor::MissingDependency,
                format!("the destroy cannot run yet: {what}"),
            );
        }
        self.g.missing_dependency_since = None;

        // Deleted by someone else and never asked anything by the guard: ask once, so that
        // any failure shown is fresh and the controller's response can be measured.
        if self.g.last_requested_at.is_none() && self.now < deadline {
            return self.retry_now(
                0,
                0,
                "deleted before the guard asked anything: requesting a fresh reconcile",
            );
        }

        if self.controller_absent() {
            return self.escalate(
                Escalation::ControllerAbsent,
                "tofu-controller did not respond to the deletion / reconcile request",
            );
        }

        match o.ready.as_ref().filter(|r| is_failure(r)) {
            Some(r) => self.failing(r, deadline),
            None => {
                if self.now >= deadline {
                    return self.escalate(
                        Escalation::Timeout,
                        &format!(
                            "the destroy did not finish within {}",
                            self.budget_text(deadline)
                        ),
                    );
                }
                let until = self.echo_deadline().map_or(deadline, |d| d.min(deadline));
                let (waiting_for, why) = if self.controller_seen() {
                    (WaitFor::Destroy, "the controller is destroying".to_string())
                } else {
                    (
                        WaitFor::Controller,
                        "waiting for the controller to pick up the request".to_string(),
                    )
                };
                self.wait(until, waiting_for, why)
            }
        }
    }

    fn budget_text(&self, deadline: DateTime<Utc>) -> String {
        let secs = (deadline - self.started_at()).num_seconds().max(0) as u64;
        format!(
            "its time limit ({}; tfops.dev/timeout={})",
            crate::duration::format_duration(Duration::from_secs(secs)),
            crate::duration::format_duration(self.p.timeout)
        )
    }

    fn failing(&mut self, r: &ReadyCondition, deadline: DateTime<Utc>) -> (Decision, String) {
        let c = self.i.classifier.classify(&r.reason, &r.message);
        let class = c.class;
        let rule = c.rule_name().to_string();
        self.classification = Some(c);

        // Count a failure once per request of ours (the first one even without a request).
        let new = match &self.g.last_requested_at {
            Some(tok) => self.echoed() && self.g.counted_request.as_deref() != Some(tok.as_str()),
            None => self.g.attempts == 0,
        };
        if new {
            self.g.attempts += 1;
            if self.g.first_failure_at.is_none() {
                self.g.first_failure_at = Some(self.now);
            }
            self.g.last_failure_at = Some(self.now);
            self.g.last_failure_reason = Some(r.reason.clone());
            self.g.set_failure_message(&r.message);
            self.g.last_failure_class = Some(class);
            self.g.counted_request = self.g.last_requested_at.clone();
        }
        let counted_current = new
            || match &self.g.last_requested_at {
                Some(tok) => self.g.counted_request.as_deref() == Some(tok.as_str()),
                None => self.g.attempts > 0,
            };
        if !counted_current {
            // Our last request has not been handled yet; this failure is older.
            if self.now >= deadline {
                return self.escalate(
                    Escalation::Timeout,
                    &format!(
                        "the destroy did not finish within {}",
                        self.budget_text(deadline)
                    ),
                );
            }
            let until = self.echo_deadline().map_or(deadline, |d| d.min(deadline));
            return self.wait(
                until,
                WaitFor::Controller,
                "waiting for the controller to handle the retry".to_string(),
            );
        }

        // State lock held by a holder that is gone: force-unlock once per lock id.
        if let Some(lock) = &self.o.lock_pending {
            if self.p.force_unlock
                && self.e.lock_holder == Presence::Missing
                && self.g.force_unlocked_lock.as_deref() != Some(lock.as_str())
            {
                let token = self.token();
                self.record_request(&token);
                self.g.force_unlocked_lock = Some(lock.clone());
                self.g.phase = Phase::Unlocking;
                return (
                    Decision::ForceUnlock {
                        lock_id: lock.clone(),
                        requested_at: token,
                    },
                    format!("state lock {lock} is held by a holder that is gone"),
                );
            }
        }

        let what = format!("{}: {}", r.reason, r.message);
        match class {
            FailureClass::Permanent => {
                return self.escalate(
                    Escalation::PermanentFailure,
                    &format!("permanent failure (rule {rule}) — {what}"),
                )
            }
            FailureClass::BlockedByMissingDependency => {
                let since = *self.g.missing_dependency_since.get_or_insert(self.now);
                let grace_end = plus(since, self.t.missing_dependency_grace).min(deadline);
                if self.now >= grace_end {
                    return self.escalate(
                        Escalation::MissingDependency,
                        &format!("the destroy cannot run (rule {rule}) — {what}"),
                    );
                }
                return self.wait(
                    grace_end,
                    WaitFor::MissingDependency,
                    format!("the destroy cannot run yet (rule {rule}) — {what}"),
                );
            }
            FailureClass::Transient | FailureClass::Unknown => {}
        }
        if self.g.attempts > self.p.retries {
            return self.escalate(
                Escalation::RetriesExhausted,
                &format!(
                    "{} failed attempts ({} retries allowed) — {what}",
                    self.g.attempts, self.p.retries
                ),
            );
        }
        if self.now >= deadline {
            return self.escalate(
                Escalation::Timeout,
                &format!(
                    "the destroy did not finish within {} — {what}",
                    self.budget_text(deadline)
                ),
            );
        }
        let wait_for = backoff(self.t, self.g.attempts);
        let retry_at = plus(self.g.last_failure_at.unwrap_or(self.now), wait_for);
        if self.now >= retry_at {
            self.g.phase = Phase::Deleting;
            let attempt = self.g.attempts;
            return self.retry_now(
                attempt,
                wait_for.as_secs(),
                &format!(
                    "{class} failure (rule {rule}), retry {}/{}",
                    self.g.attempts, self.p.retries
                ),
            );
        }
        self.wait(
            retry_at.min(deadline),
            WaitFor::Backoff,
            format!(
                "{class} failure (rule {rule}); retry {}/{} at {}",
                self.g.attempts,
                self.p.retries,
                retry_at.to_rfc3339()
            ),
        )
    }
}

#[cfg(test)]
#[path = "machine_tests.rs"]
mod tests;

#[cfg(test)]
#[path = "machine_sim_tests.rs"]
mod sim_tests;
