//! `machine::types` — what the state machine reads and returns: the observation of one CR, what
//! the guard knows of its environment, time and tunables, and the decisions with their steps.

use std::collections::BTreeMap;
use std::time::Duration;

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};

use crate::core::classify::{Classification, Classifier, FailureClass};
use crate::core::policy::Policy;
use crate::progress::Progress;

/// Flux reconcile-request annotation; echoed in `status.lastHandledReconcileAt`.
pub use tfops_api::names::REQUESTED_AT as REQUESTED_AT_ANNOTATION;
/// Prefix of the finalizers tofu-controller puts on a dependency for each dependant.
pub use tfops_api::names::TF_DEPENDENCY_OF_PREFIX;
/// tofu-controller's own finalizer; it stays until destroy (or orphan release) succeeds.
pub use tfops_api::names::TF_FINALIZER;

pub use tfops_api::terraform::ConditionStatus;

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
    /// Names of `Terraform` CRs that depend on this one and are not PROVEN gone (filled by
    /// the runtime; a dependant may live in another namespace, and the
    /// `tf.dependency.of.<x>` finalizer carries only its name, so "not found in this
    /// namespace" is not proof). A `tf.dependency.of.<x>` finalizer whose `x` is not listed
    /// is stale.
    pub dependants_present: Vec<String>,
    /// `metadata.deletionTimestamp` (whole seconds, as the API server stores it).
    pub deletion_timestamp: Option<DateTime<Utc>>,
    /// `status.conditions[type=Apply]`: `Unknown`/`Progressing` while the runner applies
    /// (upstream `TerraformApplying`), `True`/`TerraformAppliedSucceed` after.
    pub apply: Option<ReadyCondition>,
    /// `spec.tfstate` as it is (to restore it after a force-unlock).
    pub tfstate_spec: Option<serde_json::Value>,
    /// When the GUARD saw the CR's status last change (its own clock; filled by the
    /// runtime). Independent of the controller's clock and of the whole-second precision of
    /// condition times.
    pub status_changed_at: Option<DateTime<Utc>>,
}

/// What the guard knows of the CR's runner pod (`<name>-tf-runner`, created by the controller
/// for every reconcile that needs terraform, deletion included).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case", tag = "state")]
pub enum RunnerPod {
    /// Not looked at (no permission, not probed yet).
    #[default]
    Unknown,
    /// No runner pod: no reconcile of this CR is running terraform right now.
    Absent,
    /// Created and not yet running (image pull, scheduling), first seen pending at `since`.
    Pending { since: DateTime<Utc> },
    /// Running: a reconcile is using it.
    Running,
    /// Succeeded / Failed / being deleted.
    Finished,
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
    /// tofu-controller itself, from positive evidence only: Present = its leader-election
    /// Lease is being renewed; Missing = the Lease exists and has not been renewed for longer
    /// than its lease duration (no leader: the controller is not running); Unknown = no
    /// evidence either way (no Lease readable). Silence (no echo) is never evidence.
    pub controller: Presence,
    /// The CR's runner pod.
    pub runner: RunnerPod,
    /// A `dependsOn` target that is gone: the controller's finalize returns NotFound on it
    /// forever (after the destroy).
    pub dependency_gone: Option<String>,
    /// Holders named by the CR's current in-use failure ([`crate::core::classify::holder`])
    /// that the state of a `Terraform` this uninstall is still destroying manages (this CR
    /// included): canonical holder id → that `Terraform`'s `namespace/name`.
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub holders_in_destroy: BTreeMap<String, String>,
    /// What the CR's current in-use failure could not delete, when the text names no holder
    /// ([`crate::core::classify::holder::subjects`]), that a resource in the state of another
    /// `Terraform` this uninstall is destroying references, or that a resource of the CR's own
    /// state referenced until the attempt that failed destroyed it: canonical id → that
    /// resource.
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub referrers_in_destroy: BTreeMap<String, Referrer>,
}

/// A resource that references what an in-use failure could not delete (an instance whose
/// `subnet_id` is the subnet), in the state of a `Terraform` this uninstall is destroying.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Referrer {
    /// The resource's address in that state (`module.app.aws_instance.web[0]`).
    pub resource: String,
    /// `namespace/name` of the `Terraform`.
    pub terraform: String,
    /// The failing `Terraform`'s own resource, which the attempt that failed destroyed before
    /// the error: the cloud had not released the subject yet. It speaks for one more attempt
    /// only (the engine reads it again when the next begins).
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub destroyed_by_attempt: bool,
}

impl Referrer {
    /// The resource, and how it holds `subject` (what could not be deleted).
    pub fn describe(&self, subject: &str) -> String {
        if self.destroyed_by_attempt {
            format!(
                "{} (which used {subject}; the attempt that failed destroyed it before the cloud let go of {subject})",
                self.resource
            )
        } else {
            format!("{} (which uses {subject})", self.resource)
        }
    }
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

/// Tunable bounds of the machine.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Tunables {
    /// How long a request may go unanswered (no echo, no status change, no runner pod)
    /// before the guard calls the controller silent. Longer than tofu-controller's
    /// `--runner-creation-timeout` (120 s) plus its 30 s gRPC dial, since a deletion
    /// reconcile writes nothing until its runner pod is up. Silence moves a CR to its
    /// on-failure action at its deadline, but never to a force-removal by itself.
    #[serde(with = "tfops_api::duration::serde_go")]
    pub controller_patience: Duration,
    /// An orphan request not completed within this time escalates to force when there is
    /// evidence that the controller cannot complete it (same floor as `controller_patience`:
    /// releasing also needs a runner pod).
    #[serde(with = "tfops_api::duration::serde_go")]
    pub orphan_timeout: Duration,
    /// First retry backoff; doubles per attempt up to `backoff_max`.
    #[serde(with = "tfops_api::duration::serde_go")]
    pub backoff_base: Duration,
    #[serde(with = "tfops_api::duration::serde_go")]
    pub backoff_max: Duration,
    /// The last moment to force-remove is `budget_deadline - force_reserve` (time left for
    /// the ledger write and the finalizer patches).
    #[serde(with = "tfops_api::duration::serde_go")]
    pub force_reserve: Duration,
    /// How long a source without artifact is given to get one before escalating.
    #[serde(with = "tfops_api::duration::serde_go")]
    pub missing_dependency_grace: Duration,
    /// Longest single wait: the machine is re-consulted at least this often.
    #[serde(with = "tfops_api::duration::serde_go")]
    pub max_wait: Duration,
}

impl Default for Tunables {
    fn default() -> Self {
        Tunables {
            controller_patience: Duration::from_secs(180),
            orphan_timeout: Duration::from_secs(180),
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

pub use tfops_api::Outcome;

/// The ledger decision label (`tfops.dev/decision`): one type shared with the ledger format.
pub use crate::ledger::format::LedgerDecision;

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
    /// The controller has not answered and there is no evidence either way (alive or
    /// absent): the guard waits, it never force-removes on silence alone.
    Silence,
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
    /// Only ever decided once the CR is being deleted: un-suspending before the DELETE would
    /// start a normal reconcile (plan, and apply with `approvePlan: auto`).
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
        #[serde(with = "tfops_api::duration::serde_go")]
        backoff: Duration,
    },
    /// Patch `spec.tfstate.forceUnlock: "yes"`, `spec.tfstate.lockIdentifier: <lock_id>` and
    /// annotation `reconcile.fluxcd.io/requestedAt: <requested_at>`.
    ForceUnlock {
        lock_id: String,
        requested_at: String,
    },
    /// Merge-patch `spec.tfstate` with `tfstate` (the fields the force-unlock changed, back
    /// to their earlier values; `null` removes one) and request a reconcile. A
    /// `forceUnlock: yes` left behind makes every later setup fail once the lock is gone.
    RestoreTfstate {
        tfstate: serde_json::Value,
        requested_at: String,
    },
    /// Steps, in order:
    /// 1. write the ledger entry (`ledger`, decision orphaned);
    /// 2. patch `spec.destroyResourcesOnDeletion: false`, plus `spec.suspend: true` when
    ///    `suspend` (the CR is not being deleted yet: the patch changes the generation, and
    ///    an unsuspended CR would start a normal reconcile — plan, and apply with
    ///    `approvePlan: auto`); when the CR is being deleted, also annotation
    ///    `reconcile.fluxcd.io/requestedAt: <requested_at>`;
    /// 3. nothing else: if the CR is not being deleted yet, the next decision is `Delete`,
    ///    then `Unsuspend`.
    Orphan {
        /// `None` while the CR is not being deleted (no reconcile may start before the DELETE).
        requested_at: Option<String>,
        ledger: LedgerRecord,
        suspend: bool,
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
            | Decision::RestoreTfstate { requested_at, .. } => Some(requested_at),
            Decision::Orphan { requested_at, .. } => requested_at.as_deref(),
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
            Decision::RestoreTfstate { .. } => "restore-tfstate",
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
        let v = tfops_api::TerraformView::new(obj);
        let condition = |c: tfops_api::Condition| ReadyCondition {
            status: c.status(),
            reason: c.reason,
            message: c.message,
            last_transition_time: c.last_transition_time,
        };
        let plan_nothing_to_destroy = v.condition_text("Plan").is_some_and(|(s, r, m)| {
            s == "False"
                && r == "TerraformPlannedNoChanges"
                && m == "No objects need to be destroyed"
        });
        Observation {
            name: v.name().to_owned(),
            namespace: v.namespace().to_owned(),
            exists: true,
            deleting: v.deleting(),
            finalizers: v.finalizers().into_iter().map(str::to_owned).collect(),
            suspend: v.suspended(),
            destroy_resources_on_deletion: v.destroy_on_deletion(),
            ready: v.condition("Ready").map(condition),
            plan_nothing_to_destroy,
            last_handled_reconcile_at: v.last_handled_reconcile_at().map(str::to_owned),
            last_status_change_at: v.last_condition_change(),
            lock_pending: v.lock_pending().map(str::to_owned),
            inventory_entries: v.inventory_entries().map(Vec::len),
            dependants_present: Vec::new(),
            deletion_timestamp: v.deletion_timestamp(),
            apply: v.condition("Apply").map(condition),
            tfstate_spec: v.tfstate_spec().cloned(),
            status_changed_at: None,
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
