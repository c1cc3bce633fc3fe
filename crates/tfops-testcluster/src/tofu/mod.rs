//! tofu-controller v0.16.5 simulation: a pure reconcile core ([`reconcile`]) that mirrors the
//! real controller's decisions row by row, and a thin driver ([`TofuSim`]) that watches
//! `Terraform` CRs over real HTTP (user `tofu-controller`), reads the world with GETs, runs the
//! core and applies its actions with patches, requeueing on the tokio clock (virtual in tests).
//!
//! # What the real controller does (read at tag `v0.16.5`, commit 4cb9876f)
//!
//! `R` = `controllers/tf_controller.go` `TerraformReconciler.Reconcile`, `F` =
//! `controllers/tf_controller_finalizer.go` `finalize`, `B` = `tf_controller_backend.go`
//! `setupTerraform`, `P` = `tf_controller_plan.go` `plan`, `A` = `tf_controller_apply.go` `apply`,
//! `T` = `api/v1alpha2/terraform_types.go` (status helpers), `S` = `runner/server.go`, `O` =
//! OpenTofu v1.12.1, the `tofu` the v0.16.5 runner image ships (`runner.Dockerfile` line 2).
//! "rate-limited" = the reconcile returned an error (or `Requeue: true`): controller-runtime's
//! default limiter requeues after `5ms * 2^failures`, capped at 1000 s, reset on success.
//!
//! | # | situation | what the controller does | where |
//! |---|---|---|---|
//! | 1 | no `finalizers.tf.contrib.fluxcd.io` | adds it, returns `Requeue` (rate-limited) | R "Make sure the Finalizer exists" |
//! | 2 | every return path | deferred patch: `status.lastHandledReconcileAt` = `reconcile.fluxcd.io/requestedAt` when present (also when suspended); `observedGeneration` = generation when Ready=True — written ONLY here, at the END of the reconcile (after the runner start and the whole destroy) | R deferred func, lines 162–180 |
//! | 3 | `spec.suspend: true` | returns before ANY deletion handling; nothing else written, no requeue | R "Return early if the Terraform is suspended" |
//! | 4 | always next | `Reconciling=True/Progressing "Fulfilling prerequisites"` patched | R `MarkReconciling` |
//! | 5 | deleting, finalizers `tf.dependency.of.<dependant>` present (for any `destroyResourcesOnDeletion`) | `Ready=False/DeletionBlockedByDependantsReason` "Deletion in progress, but blocked. Please delete a, b to resume ...", requeue after `retryInterval` | R `isBeingDeleted` block, `T.TerraformNotReady` |
//! | 6 | source object missing | `Stalled=True` + `Ready=False/ArtifactFailed` `<kind>.source.toolkit.fluxcd.io "<name>" not found`, Warning event, requeue after `retryInterval` (forever, also when deleting) | R `getSource`, `apierrors.IsNotFound` |
//! | 7 | source without `status.artifact` | `Ready=False/ArtifactFailed` "Source is not ready, artifact not found", requeue after `retryInterval` | R "Check we have a source object" |
//! | 8 | not deleting, `dependsOn` | puts `tf.dependency.of.<me>` on each dependency; not ready → `Ready=False/DependencyNotReady`, requeue after `retryInterval` | R `checkDependencies` |
//! | 9 | then | `Ready=Unknown/Progressing` "Reconciliation in progress" / "Deletion in progress" (unless Ready already Unknown); reset `reconciliationFailures` when generation or revision changed | R, `T.TerraformProgressing`, `T.TerraformResetRetry` |
//! | 10 | runner pod not creatable (runner ServiceAccount `spec.serviceAccountName` or `tf-runner` missing: pod admission rejects it; or the namespace is terminating: creates are forbidden) | reconcile returns the error: rate-limited, NOTHING new in status (Ready stays Unknown/Progressing), no event | R `LookupOrCreateRunner` line 442, `tf_controller_runner.go` `reconcileRunnerPod` |
//! | 10b | runner pod (with [`SimTiming`] `runner_pods`) | Pod `<name>-tf-runner` created (labels `app.kubernetes.io/created-by: tofu-controller`, `app.kubernetes.io/name: tf-runner`, `tf.weave.works/tls-secret-name`), Pending until it has an IP (0–150 s: image pull, scheduling), then a gRPC dial (≤ 30 s); no IP within `--runner-creation-timeout` (120 s) → pod force-deleted, error "failed to create and obtain pod ip", rate-limited, status as row 9 left it; at the end of every reconcile that got a runner the pod is deleted (`alwaysCleanupRunnerPod` defaults to true) before the deferred status patch | `tf_controller_runner.go` lines 69–76 (labels), 123 (dial 30 s), 340 (timeout), 500–549 (watch for the IP, force-kill); `cmd/manager/main.go` line 121; R lines 467–513; `terraform_types.go` line 980 |
//! | 11 | deleting, `destroyResourcesOnDeletion: true`: setup | `Ready=Unknown "Initializing"`; a required `varsFrom` Secret/ConfigMap missing → `Ready=False/VarsGenerationFailed` `rpc error: code = Unknown desc = secrets "<n>" not found`, rate-limited | B `GenerateVarsForTF`, `runner/server_generate_tf_vars.go` |
//! | 12 | `spec.tfstate.forceUnlock: yes` and `lockIdentifier == status.lock.pending` (or `auto`) | force-unlocks; `StateLocked=False/ForceUnlock`, `lock.lastApplied` = old pending, `lock.pending` cleared. If that lock is not held any more (released, or another id) `terraform force-unlock` fails: setup returns the error, status untouched, `lock.pending` stays — rate-limited forever until `spec.tfstate` changes | B end, `T.TerraformForceUnlock` |
//! | 13 | destroy plan: lock held | Warning event, `StateLocked=True/LockHeld` "Terraform Locked with Lock Identifier: <id>", `status.lock.pending=<id>`, then Ready is overwritten to `Ready=False/TFExecPlanFailed` "error running Plan: rpc error: code = Internal desc = error acquiring the state lock: Lock Info: ..."; rate-limited | P, `T.TerraformStateLocked`, `runner/server_exec_wrapper.go` |
//! | 14 | destroy plan fails | `Ready=False/TFExecPlanFailed` "error running Plan: rpc error: code = Internal desc = <terraform error>", Warning event, rate-limited | P |
//! | 15 | destroy plan empty (no state / no resources) | `Plan=False/TerraformPlannedNoChanges` "No objects need to be destroyed", `Ready=True`, apply skipped | P corner case, F `thereIsNothingToDestroy` |
//! | 16a | destroy apply runs | `Apply=Unknown/Progressing` (`TerraformApplying`) and Ready `Unknown` "Applying" are patched BEFORE the Apply RPC, which blocks until terraform exits (minutes: `destroyDuration`); `finalize` decided everything on the object read at its start — a `destroyResourcesOnDeletion: false` patched meanwhile changes nothing for this reconcile | A, `T.TerraformApplying` line 629, F line 30 |
//! | 16 | destroy apply fails | `Apply=False/TerraformAppliedFail`, `Ready=False/TFExecApplyFailed` "error running Apply: rpc error: code = Internal desc = <terraform error>", `plan.pending` cleared, Warning event, rate-limited — retried forever: `remediation` is not consulted, `reconciliationFailures` not incremented on this path. The state Secret is written before the error is reported: what the apply destroyed before failing is gone from it, and an unchanged state is not written again (the runner image is OpenTofu 1.12.1, `runner.Dockerfile` line 2; opentofu v1.12.1 `internal/backend/local/backend_apply.go` lines 280–310 store the final state before returning on `applyDiags.HasErrors()`, `internal/states/remote/state.go` lines 206–210 skip an unchanged one) | A, F, O |
//! | 17 | destroy apply succeeds | `Apply=True`, `Ready=Unknown/TerraformAppliedSucceed` "Applied successfully: <rev>" (`plan.isDestroyPlan` stays false because it follows `spec.destroy`) | A, `T.TerraformApplied` |
//! | 18 | `destroyResourcesOnDeletion: false` | skips plan/apply but still went through rows 5–10: needs the source with an artifact and a creatable runner | F |
//! | 19 | finalize secrets | deletes the plan Secrets (`infra.contrib.fluxcd.io/plan-name` label / legacy `tfplan-<ws>-<name>`); only if there were any, deletes the `writeOutputsToSecret` Secret. The tfstate Secret `tfstate-<workspace>-<backendConfig.secretSuffix or name>` (kubernetes backend; none with `customConfiguration`/`cloud`) is NEVER deleted | F, S `FinalizeSecrets` |
//! | 20 | remove `tf.dependency.of.<me>` from every `dependsOn` dependency; a dependency that is already GONE makes `finalize` return NotFound: rate-limited forever, the finalizer stays | F |
//! | 21 | finally | removes `finalizers.tf.contrib.fluxcd.io` (merge patch of the finalizer list, no resourceVersion precondition) | F |
//! | 22 | triggers | watch events pass only on generation change or a new `reconcile.fluxcd.io/requestedAt` (`GenerationChangedPredicate` OR `ReconcileRequestedPredicate`); metadata-only edits (finalizers, other annotations) do not trigger | R `SetupWithManager` |
//! | 23 | normal reconcile | plan → `Plan=True/TerraformPlannedWithChanges`, `status.plan.pending=plan-<branch>-<sha10>`; manual approval (`approvePlan` empty) stops with `Ready=Unknown` "Plan generated: set approvePlan: \"<id>\" to approve this plan."; `auto` applies → `status.lastAppliedRevision`, `inventory.entries`, tfstate Secret, outputs Secret (`writeOutputsToSecret`), `Ready=True`, `lastSuccessfulReconcileAt`; drift detection when everything is applied (`lastDriftDetectedAt`, `Ready=False/DriftDetected`), `approvePlan: disable` = drift detection only; requeue after `spec.interval` | R, `tf_controller_reconcile.go`, `tf_controller_drift_detect.go`, `tf_controller_outputs.go` |
//! | 24 | failure outside deletion | `reconciliationFailures++`, requeue after `retryInterval` (15 s default; `ExponentialBackoff` strategy doubles it) | R, `T.GetRetryInterval` |
//! | 25 | every condition write | `lastTransitionTime` = now truncated to whole seconds, changed only when status, reason OR message change | fluxcd/pkg runtime v0.111.0 `conditions/setter.go` lines 45–85, `hasSameState` 222–228 |
//! | 26 | leader election (on unless [`SimConfig::no_leader_election`]) | Lease `1953de50.contrib.fluxcd.io` in the controller's namespace (`flux-system`): `holderIdentity`, `leaseDurationSeconds: 35`, `renewTime` renewed every 5 s; a stopped controller leaves it with its last `renewTime` | `cmd/manager/main.go` line 174; fluxcd/pkg `runtime/leaderelection/leaderelection.go` lines 84–93 (flag default off, but the Helm chart `deployment.yaml` line 41 and `config/manager/manager.yaml` line 32 pass `--enable-leader-election`) |
//! | 27 | Flux source watches | a source event reconciles the Terraforms whose `spec.sourceRef` (namespace defaulting to the CR's) names it and whose `lastAttemptedRevision` differs from the artifact's revision: creates and deletes always pass the predicate, updates only when the artifact appears or its revision changes; no artifact → no requests (pure part: [`source_watch`]) | R `SetupWithManager` lines 704–721, 738–752, `requestsForRevisionChangeOf` 831–875, `IndexBy` 974–990; `controllers/source_predicate.go` lines 10–39 |
//!
//! The simulation adds no behaviour of its own beyond the [`behavior::Behavior`] script that
//! stands in for terraform and the cloud (outcomes, messages, durations, lock holders).
//!
//! Timing: [`SimTiming::instant`] (the default) creates no runner Pod objects and adds no
//! latency; [`SimTiming::realistic`] (pods start in 0–150 s, seeded) and
//! [`SimTiming::cold_node`] (100–150 s) reproduce v0.16.5 in time; `Behavior::runner_start`
//! overrides per CR. Ground truth for tests is in [`driver::CrStats`] (destroys completed /
//! cut, destroy runs, orphan patches seen during a destroy, normal applies, runner timeouts).
//!
//! Not modelled: after a `finalize` that returns no error (the finalizer removed),
//! `Reconcile` falls through into the normal reconcile with the now-deleted object
//! (`controllers/tf_controller.go` lines 525–560: the `err` of `finalize` is checked, its
//! success is not a return). After a destroy it plans an empty destroy plan (harmless); after
//! a release without destroy it runs a normal plan, which with a pending change and
//! `approvePlan: auto` would apply once against the released state. The simulation stops at
//! the finalizer removal.
//!
//! Simplifications (none changes a deletion outcome): runner creatability = ServiceAccount
//! present and namespace not terminating (no admission, no RoleBinding check); source events
//! are enqueued in list order (upstream sorts them by `dependsOn` first);
//! no `--concurrent` limit; status patches not separated by simulated time are folded into one;
//! the tfstate Secret holds plain JSON state (real: gzip); the foreign lock is always a Lease
//! `lock-tfstate-<ws>-<suffix>`, whatever the backend; drift/health-check/webhook/break-glass
//! paths of the normal reconcile are reduced to what status needs.
//!
//! # Using it
//!
//! ```no_run
//! # async fn demo() -> Result<(), Box<dyn std::error::Error>> {
//! use std::time::Duration;
//! use tfops_testcluster::tofu::behavior::{Behavior, DestroyAttempt, FailStage};
//! use tfops_testcluster::tofu::{messages::samples, SimConfig, TofuSim, CONTROLLER_USER};
//! use tfops_testcluster::{ClusterOptions, TestCluster};
//!
//! let cluster = TestCluster::start(ClusterOptions::default()).await?;
//! let sim = TofuSim::start(cluster.client(CONTROLLER_USER)?, SimConfig::default());
//! // destroy of shop/db fails twice with an AWS throttling error, then succeeds; 40 s each
//! sim.set_behavior("shop", "db", Behavior {
//!     destroy: vec![DestroyAttempt::fail(FailStage::Apply, samples::AWS_THROTTLING, 2)],
//!     destroy_duration: Duration::from_secs(40),
//!     ..Behavior::default()
//! });
//! sim.stop(); // controller absent from now on
//! # Ok(()) }
//! ```
//!
//! The same script as a CR annotation (scenario files):
//! `sim.tfops.dev/behavior: '{"destroy":[{"outcome":"fail","message":"...","times":2}],"destroyDuration":"40s"}'`
//! (`lock: {id, who, releaseAfter}`, `nothingToDestroy`, `paused`, `reconcileLatency`, …).
//! [`fixtures::as_applied`] seeds a CR + Secrets exactly as an applied module looks.
//!
//! Paused-time note for tests: the tokio clock auto-advances whenever the runtime waits on
//! socket I/O, so let virtual time pass in short steps (e.g. 1 s sleeps in a loop) rather than
//! one long sleep, and wait for a state rather than sampling it once (Ready flips to
//! `Progressing` while a retry runs).
//!
//! Its names (group, finalizers, annotations, Lease, Secret names) are its own copy of
//! upstream's (see `names`), independent of `tfops-api` on purpose: the reference model must not
//! share a mistake with the product it checks.

pub mod behavior;
pub mod clock;
pub mod conditions;
pub mod driver;
pub mod encoding;
pub mod fixtures;
pub mod messages;
pub mod names;
pub mod queue;
pub mod reconcile;
pub mod source_watch;
pub mod world;

pub use behavior::{Behavior, DestroyAttempt, FailStage, LockSpec};
pub use driver::{RunnerStart, SimConfig, SimTiming, TofuSim, LEADER_LEASE_NAME};
pub use reconcile::{reconcile, Action, Outcome, PodStep, Requeue, RunnerTiming};
pub use world::{SourceState, World};

/// The controller's own finalizer.
pub const TERRAFORM_FINALIZER: &str = "finalizers.tf.contrib.fluxcd.io";
/// Prefix of the finalizers the controller puts on dependencies (`tf.dependency.of.<dependant>`).
pub const DEPENDENCY_OF_PREFIX: &str = "tf.dependency.of.";
/// Flux's reconcile request annotation.
pub const REQUESTED_AT_ANNOTATION: &str = "reconcile.fluxcd.io/requestedAt";
/// Per-CR behaviour script annotation (JSON of [`Behavior`]), for standalone scenario files.
pub const BEHAVIOR_ANNOTATION: &str = "sim.tfops.dev/behavior";
/// Terraform API group/version.
pub const TERRAFORM_API_VERSION: &str = "infra.contrib.fluxcd.io/v1alpha2";
/// User name the simulation authenticates as.
pub const CONTROLLER_USER: &str = "tofu-controller";
