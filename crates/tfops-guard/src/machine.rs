//! `machine` — the per-CR uninstall state machine (pure): observation of one `Terraform` CR +
//! what the guard knows of its environment + policy + persisted progress + time →
//! [`Decision`] and the updated [`Progress`].
//!
//! The runtime calls [`decide`] whenever something about the CR changes (watch event) or the
//! `until` of the last [`Decision::Wait`] passes, executes the decision, and persists the
//! returned progress (annotation `tfops.dev/guard-progress`) in the same patch when it can.
//! The function is deterministic: same input, same output (request tokens derive from `now`).

use std::collections::BTreeMap;
use std::fmt;
use std::time::Duration;

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};

use crate::classify::{Classification, Classifier, FailureClass};
use crate::policy::Policy;
use crate::progress::Progress;

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

/// The ledger decision label (`tfops.dev/decision`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum LedgerDecision {
    Orphaned,
    ForceRemoved,
}

impl LedgerDecision {
    /// Kebab-case spelling (the label value).
    pub fn as_str(self) -> &'static str {
        match self {
            LedgerDecision::Orphaned => "orphaned",
            LedgerDecision::ForceRemoved => "force-removed",
        }
    }
}

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
    /// the controller re-runs the destroy now. `attempt` = retry number (1-based), `of` =
    /// policy retries, `backoff` = the delay waited before it (informational).
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
    /// 1. Write the ledger entry (`ledger`, decision orphaned). 2. Patch
    /// `spec.destroyResourcesOnDeletion: false` and annotation
    /// `reconcile.fluxcd.io/requestedAt: <requested_at>`. 3. If the CR is not being deleted
    /// yet, nothing else: the next decision will be `Delete`.
    Orphan {
        requested_at: String,
        ledger: LedgerRecord,
    },
    /// 1. Write (or update to decision force-removed) the ledger entry. 2. Remove
    /// `tf.dependency.of.<this CR>` (= `dependency_finalizer`) from every CR this one
    /// `dependsOn`. 3. Remove `TF_FINALIZER` and every `tf.dependency.of.*` finalizer from
    /// this CR (JSON patch with a `test` on resourceVersion or a merge patch of the remaining
    /// finalizers). 4. If the CR was not being deleted, DELETE it.
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

/// Decide what to do next with one CR.
pub fn decide(input: &Input<'_>) -> Step {
    let _ = (BTreeMap::<String, String>::new(), input.classifier);
    Step {
        decision: Decision::Wait {
            until: input.timing.now + chrono::Duration::seconds(1),
            waiting_for: WaitFor::Controller,
        },
        progress: input.progress.clone(),
        why: "work in progress".to_string(),
        classification: None,
    }
}
