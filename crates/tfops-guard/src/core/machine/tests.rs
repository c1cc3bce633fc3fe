//! Tests of `machine`: one table row per situation of the deletion flow, then property tests
//! over the whole input space (determinism, ledger-before-release, no force while progressing,
//! nothing waits past the budget).

use super::*;
use crate::core::classify::Classifier;
use crate::core::policy::{OnFailure, Policy, UninstallPolicy};
use crate::progress::{Phase, Progress};
use chrono::TimeZone;

fn t0() -> DateTime<Utc> {
    Utc.with_ymd_and_hms(2026, 11, 26, 12, 0, 0).unwrap()
}

fn at(secs: i64) -> DateTime<Utc> {
    t0() + chrono::Duration::seconds(secs)
}

/// A mutable test world: one CR and everything around it.
#[derive(Clone)]
struct World {
    o: Observation,
    e: Environment,
    p: Policy,
    g: Progress,
    timing: Timing,
    t: Tunables,
    c: Classifier,
}

impl World {
    /// A healthy applied CR, not yet deleted; budget 240s from t0.
    fn new() -> Self {
        World {
            o: Observation {
                name: "db".into(),
                namespace: "team-a".into(),
                exists: true,
                deleting: false,
                finalizers: vec![TF_FINALIZER.into()],
                suspend: false,
                destroy_resources_on_deletion: true,
                ready: Some(ReadyCondition {
                    status: ConditionStatus::True,
                    reason: "TerraformAppliedSucceed".into(),
                    message: "Applied successfully".into(),
                    last_transition_time: Some(at(-3600)),
                }),
                last_status_change_at: Some(at(-3600)),
                ..Observation::default()
            },
            e: Environment {
                source: SourceState::Ready,
                runner_service_account: Presence::Present,
                vars_from: Presence::Present,
                namespace_terminating: false,
                lock_holder: Presence::Unknown,
                controller: Presence::Unknown,
                runner: RunnerPod::Unknown,
                dependency_gone: None,
                holders_in_destroy: Default::default(),
                referrers_in_destroy: Default::default(),
            },
            p: Policy::default(),
            g: Progress::default(),
            timing: Timing {
                now: t0(),
                run_started_at: t0(),
                share_deadline: at(230),
                budget_deadline: at(240),
            },
            t: Tunables::default(),
            c: Classifier::builtin(),
        }
    }

    fn step(&self) -> Step {
        decide(&Input {
            observation: &self.o,
            environment: &self.e,
            policy: &self.p,
            progress: &self.g,
            timing: self.timing,
            tunables: &self.t,
            classifier: &self.c,
        })
    }

    /// Decide and adopt the returned progress (what the runtime does).
    fn apply(&mut self) -> Decision {
        let s = self.step();
        self.g = s.progress;
        s.decision
    }

    fn at(&mut self, secs: i64) -> &mut Self {
        self.timing.now = at(secs);
        self
    }

    /// The CR got deleted (deletionTimestamp) and the controller started on it.
    fn deleted(&mut self) -> &mut Self {
        self.o.deleting = true;
        self
    }

    /// The controller handled our last request and reports this Ready condition.
    fn controller_reports(&mut self, status: ConditionStatus, reason: &str, message: &str) {
        self.o.last_handled_reconcile_at = self.g.last_requested_at.clone();
        self.o.ready = Some(ReadyCondition {
            status,
            reason: reason.into(),
            message: message.into(),
            last_transition_time: Some(self.timing.now),
        });
        self.o.last_status_change_at = Some(self.timing.now);
    }

    fn fail(&mut self, reason: &str, message: &str) {
        self.controller_reports(ConditionStatus::False, reason, message);
    }

    fn progressing(&mut self) {
        self.controller_reports(
            ConditionStatus::Unknown,
            "Progressing",
            "Deletion in progress",
        );
    }

    fn gone(&mut self) {
        self.o.exists = false;
    }
}

const THROTTLED: &str = "error deleting DB Instance: Throttling: Rate exceeded\n\tstatus code: 400";
const DENIED: &str = "operation error RDS: DeleteDBInstance, https response error StatusCode: 403, api error AccessDenied: User is not authorized to perform: rds:DeleteDBInstance";

fn is_wait(d: &Decision, what: WaitFor) -> bool {
    matches!(d, Decision::Wait { waiting_for, .. } if *waiting_for == what)
}

fn ledger_of(d: &Decision) -> &LedgerRecord {
    d.requires_ledger()
        .expect("decision carries a ledger record")
}

// ----- happy paths ------------------------------------------------------------------------

#[test]
fn clean_destroy_deletes_waits_and_reports_destroyed() {
    let mut w = World::new();
    let d = w.apply();
    let token = match &d {
        Decision::Delete { requested_at } => requested_at.clone(),
        other => panic!("expected delete, got {other:?}"),
    };
    assert_eq!(token, request_token(t0()));
    assert_eq!(w.g.phase, Phase::Deleting);
    assert_eq!(w.g.started_at, Some(t0()));
    assert_eq!(w.g.last_requested_at.as_deref(), Some(token.as_str()));
    assert_eq!(
        w.g.escalates_at,
        Some(at(230)),
        "share deadline caps the 10m timeout"
    );
    assert!(!w.g.nothing_to_destroy);

    w.deleted().at(2).progressing();
    let d = w.apply();
    assert!(is_wait(&d, WaitFor::Destroy), "{d:?}");
    if let Decision::Wait { until, .. } = d {
        assert!(until > at(2) && until <= at(2 + 30));
    }

    w.at(60).gone();
    assert_eq!(w.apply(), Decision::Done(Outcome::Destroyed));
    assert_eq!(w.g.phase, Phase::Done);
    assert_eq!(w.g.outcome, Some(Outcome::Destroyed));
    // Idempotent once done.
    assert_eq!(w.apply(), Decision::Done(Outcome::Destroyed));
}

#[test]
fn nothing_to_destroy_is_recognised_from_the_plan_condition() {
    let mut w = World::new();
    w.apply();
    w.deleted().at(3).progressing();
    w.o.plan_nothing_to_destroy = true;
    assert!(is_wait(&w.apply(), WaitFor::Destroy));
    assert!(w.g.nothing_to_destroy);
    w.at(5).gone();
    assert_eq!(w.apply(), Decision::Done(Outcome::NothingToDestroy));
}

#[test]
fn a_cr_the_controller_never_took_over_has_nothing_to_destroy() {
    let mut w = World::new();
    w.o.finalizers.clear();
    assert!(matches!(w.apply(), Decision::Delete { .. }));
    assert!(w.g.nothing_to_destroy);
    w.gone();
    assert_eq!(w.apply(), Decision::Done(Outcome::NothingToDestroy));
}

#[test]
fn deleting_cr_held_only_by_foreign_finalizers_is_done_for_the_guard() {
    let mut w = World::new();
    w.apply();
    w.deleted().at(4);
    w.o.finalizers = vec!["example.com/keep".into()];
    assert_eq!(w.apply(), Decision::Done(Outcome::Destroyed));
}

#[test]
fn suspended_cr_is_deleted_first_then_unsuspended() {
    // Item 5: un-suspending before the DELETE starts a normal reconcile (plan, and apply
    // with approvePlan: auto) just before the destroy. A suspended CR with a
    // deletionTimestamp simply waits upstream, so: DELETE first, then un-suspend.
    let mut w = World::new();
    w.o.suspend = true;
    let d = w.apply();
    assert!(matches!(d, Decision::Delete { .. }), "{d:?}");
    w.deleted();
    assert_eq!(w.apply(), Decision::Unsuspend);
    w.o.suspend = false;
    w.at(2).progressing();
    assert!(is_wait(&w.apply(), WaitFor::Destroy));
    // Deleted by someone else while suspended, before the guard asked anything.
    let mut w = World::new();
    w.o.suspend = true;
    w.deleted();
    assert_eq!(w.apply(), Decision::Unsuspend);
    w.o.suspend = false;
    let d = w.apply();
    assert!(matches!(d, Decision::Retry { attempt: 0, .. }), "{d:?}");
}

#[test]
fn retain_on_a_live_cr_suspends_in_the_orphan_patch_and_requests_nothing() {
    // Item 5, orphan half: the orphan patch (destroyResourcesOnDeletion: false) changes the
    // generation; on a CR not deleted yet it also suspends it, and carries no reconcile
    // request, so that no normal reconcile runs before the DELETE.
    let mut w = World::new();
    w.p.uninstall = UninstallPolicy::Retain;
    let d = w.apply();
    match &d {
        Decision::Orphan {
            requested_at,
            suspend,
            ..
        } => {
            assert_eq!(requested_at, &None);
            assert!(*suspend);
        }
        other => panic!("{other:?}"),
    }
    w.o.destroy_resources_on_deletion = false;
    w.o.suspend = true;
    assert!(matches!(w.at(1).apply(), Decision::Delete { .. }));
    w.deleted();
    assert_eq!(w.at(2).apply(), Decision::Unsuspend);
}

// ----- dependencies -----------------------------------------------------------------------

#[test]
fn dependency_waits_for_dependants_before_being_deleted() {
    let mut w = World::new();
    w.o.dependants_present = vec!["app".into(), "app".into()];
    let d = w.apply();
    assert_eq!(
        d,
        Decision::Wait {
            until: at(30),
            waiting_for: WaitFor::Dependants(vec!["app".into()])
        }
    );
    assert_eq!(w.g.phase, Phase::Pending, "the clock has not started");
    w.o.dependants_present.clear();
    assert!(matches!(w.apply(), Decision::Delete { .. }));
}

#[test]
fn stale_dependency_finalizers_are_dropped_but_live_ones_wait() {
    let mut w = World::new();
    w.apply();
    w.deleted().at(1);
    w.o.finalizers = vec![
        TF_FINALIZER.into(),
        format!("{TF_DEPENDENCY_OF_PREFIX}gone-app"),
        format!("{TF_DEPENDENCY_OF_PREFIX}live-app"),
    ];
    w.o.dependants_present = vec!["live-app".into()];
    let d = w.apply();
    assert_eq!(
        d,
        Decision::DropStaleDependencyFinalizers {
            finalizers: vec![format!("{TF_DEPENDENCY_OF_PREFIX}gone-app")]
        }
    );
    assert!(!d.strips_controller_finalizer() && d.requires_ledger().is_none());
    w.o.finalizers.remove(1);
    assert!(is_wait(
        &w.apply(),
        WaitFor::Dependants(vec!["live-app".into()])
    ));
}

#[test]
fn dependants_that_never_leave_are_never_released() {
    // Item 3: a dependant (possibly in another namespace) still exists: the dependency is
    // neither orphaned nor force-removed, not at its deadline and not at the budget's end —
    // its destroy would break the dependant, and releasing it wedges the dependant's finalize.
    let mut w = World::new();
    w.apply();
    w.deleted().at(1);
    w.o.dependants_present = vec!["app".into()];
    w.o.finalizers.push(format!("{TF_DEPENDENCY_OF_PREFIX}app"));
    w.timing.share_deadline = at(100);
    for s in [99, 100, 229, 230, 239] {
        w.at(s);
        let d = w.apply();
        assert!(
            is_wait(&d, WaitFor::Dependants(vec!["app".into()])),
            "{s}: {d:?}"
        );
    }
    // Not this CR's failure: not blocked either (a dependant may still be destroying).
    w.p.on_failure = OnFailure::Block;
    w.at(231);
    assert!(is_wait(&w.apply(), WaitFor::Dependants(vec!["app".into()])));
}

// ----- retain / destroy disabled ------------------------------------------------------------

#[test]
fn retain_orphans_with_a_ledger_entry_then_deletes() {
    let mut w = World::new();
    w.p.uninstall = UninstallPolicy::Retain;
    let d = w.apply();
    let l = ledger_of(&d).clone();
    assert_eq!(l.decision, LedgerDecision::Orphaned);
    assert_eq!(l.reason, "retain-policy");
    assert_eq!(w.g.phase, Phase::Orphaning);
    // The runtime patched destroyResourcesOnDeletion=false.
    w.o.destroy_resources_on_deletion = false;
    w.at(1);
    assert!(matches!(w.apply(), Decision::Delete { .. }));
    assert_eq!(
        w.g.phase,
        Phase::Orphaning,
        "delete keeps the orphaning phase"
    );
    w.deleted().at(2).progressing();
    assert!(is_wait(&w.apply(), WaitFor::Orphan));
    w.at(5).gone();
    assert_eq!(w.apply(), Decision::Done(Outcome::Orphaned));
}

#[test]
fn destroy_disabled_on_the_cr_is_orphaned_not_lost() {
    let mut w = World::new();
    w.o.destroy_resources_on_deletion = false;
    let d = w.apply();
    assert_eq!(ledger_of(&d).reason, "destroy-disabled");
    // Deleted by someone else before the guard ran: still orphaned with a ledger entry.
    let mut w = World::new();
    w.o.destroy_resources_on_deletion = false;
    w.deleted();
    let d = w.apply();
    assert!(matches!(d, Decision::Orphan { .. }));
}

#[test]
fn retain_with_absent_controller_force_removes_since_nothing_would_destroy() {
    let mut w = World::new();
    w.p.uninstall = UninstallPolicy::Retain;
    w.e.controller = Presence::Missing;
    let d = w.apply();
    assert!(matches!(d, Decision::ForceRemove { .. }), "{d:?}");
    assert_eq!(ledger_of(&d).decision, LedgerDecision::ForceRemoved);
    w.p.on_failure = OnFailure::Block;
    w.g = Progress::default();
    assert!(matches!(w.apply(), Decision::Block { .. }));
}

// ----- failures ---------------------------------------------------------------------------

#[test]
fn transient_failures_retry_with_backoff_then_escalate_after_retries() {
    let mut w = World::new();
    w.apply(); // delete at t0
    w.deleted().at(20);
    w.fail("TFExecApplyFailed", THROTTLED);
    let s = w.step();
    assert_eq!(
        s.classification.as_ref().unwrap().class,
        FailureClass::Transient
    );
    w.g = s.progress;
    assert_eq!(w.g.attempts, 1);
    assert_eq!(w.g.first_failure_at, Some(at(20)));
    assert_eq!(
        w.g.last_failure_reason.as_deref(),
        Some("TFExecApplyFailed")
    );
    assert_eq!(
        s.decision,
        Decision::Wait {
            until: at(30),
            waiting_for: WaitFor::Backoff
        }
    );
    // Same observation again before the backoff ends: no double count.
    w.at(25);
    assert!(is_wait(&w.apply(), WaitFor::Backoff));
    assert_eq!(w.g.attempts, 1);

    let mut expected_backoffs = vec![];
    for (retry, when) in [(1u32, 30i64), (2, 60), (3, 110)] {
        w.at(when);
        let d = w.apply();
        match &d {
            Decision::Retry {
                requested_at,
                attempt,
                of,
                backoff,
            } => {
                assert_eq!(*attempt, retry);
                assert_eq!(*of, 3);
                assert_eq!(requested_at, &request_token(at(when)));
                expected_backoffs.push(backoff.as_secs());
            }
            other => panic!("expected retry {retry} at {when}s, got {other:?}"),
        }
        // Old failure still shown, request not echoed yet: wait for the controller.
        w.at(when + 1);
        assert!(is_wait(&w.apply(), WaitFor::Controller));
        assert_eq!(w.g.attempts, retry);
        // The controller handles the retry and fails again.
        w.at(when + 10);
        w.fail("TFExecApplyFailed", THROTTLED);
        w.apply();
        assert_eq!(w.g.attempts, retry + 1);
    }
    assert_eq!(expected_backoffs, vec![10, 20, 40]);
    // 4 failed attempts > 3 retries: the fourth failure escalated to orphan.
    assert_eq!(w.g.phase, Phase::Orphaning);
    assert_eq!(w.g.escalation_reason.as_deref(), Some("retries-exhausted"));
}

#[test]
fn retries_exhausted_produces_an_orphan_with_the_full_story() {
    let mut w = World::new();
    w.p.retries = 0;
    w.apply();
    w.deleted().at(5);
    w.fail("TFExecApplyFailed", THROTTLED);
    let d = w.apply();
    let l = ledger_of(&d);
    assert!(matches!(d, Decision::Orphan { .. }));
    assert_eq!(l.reason, "retries-exhausted");
    assert_eq!(l.attempts, 1);
    assert_eq!(l.class, Some(FailureClass::Transient));
    assert_eq!(l.first_failure_at, Some(at(5)));
    assert!(l.message.contains("Throttling"), "{}", l.message);
}

#[test]
fn unknown_failures_are_retried_like_transient_ones() {
    let mut w = World::new();
    w.apply();
    w.deleted().at(5);
    w.fail(
        "TFExecApplyFailed",
        "Error: operation failed (exit status 1)",
    );
    let s = w.step();
    assert_eq!(s.classification.unwrap().class, FailureClass::Unknown);
    assert!(is_wait(&s.decision, WaitFor::Backoff));
}

#[test]
fn permanent_failure_follows_on_failure_immediately() {
    for (on_failure, kind) in [
        (OnFailure::Orphan, "orphan"),
        (OnFailure::Force, "force-remove"),
        (OnFailure::Block, "block"),
    ] {
        let mut w = World::new();
        w.p.on_failure = on_failure;
        w.apply();
        w.deleted().at(8);
        w.fail("TFExecApplyFailed", DENIED);
        let d = w.apply();
        assert_eq!(d.kind(), kind, "{on_failure:?}: {d:?}");
        assert_eq!(w.g.attempts, 1);
        if let Some(l) = d.requires_ledger() {
            assert_eq!(l.reason, "permanent-failure");
            assert_eq!(l.class, Some(FailureClass::Permanent));
        }
    }
}

#[test]
fn block_says_what_to_do_next_and_is_terminal_for_this_run_only() {
    let mut w = World::new();
    w.p.on_failure = OnFailure::Block;
    w.apply();
    w.deleted().at(8);
    w.fail(
        "TFExecApplyFailed",
        "Error: Cannot destroy instance without setting deletion_protection=false and running `terraform apply`",
    );
    let d = w.apply();
    let msg = match &d {
        Decision::Block { message } => message.clone(),
        other => panic!("{other:?}"),
    };
    assert!(msg.contains("team-a/db"), "{msg}");
    // Both ways to run the uninstall again: Helm 4's hook and Helm 3's client-side command.
    assert!(
        msg.contains("`helm uninstall`") && msg.contains("`helm tfops uninstall` on Helm 3"),
        "{msg}"
    );
    assert!(
        msg.contains("kubectl -n team-a annotate terraform db tfops.dev/on-failure=orphan"),
        "{msg}"
    );
    assert!(msg.contains("deletion_protection"), "{msg}");
    assert_eq!(w.g.phase, Phase::Blocked);
    w.at(9);
    assert_eq!(w.apply(), Decision::Done(Outcome::Blocked));

    // The user fixes it and runs `helm uninstall` again: a new run retries right away.
    let mut next = w.clone();
    next.timing = Timing {
        now: at(600),
        run_started_at: at(600),
        share_deadline: at(830),
        budget_deadline: at(840),
    };
    let d = next.apply();
    assert!(matches!(d, Decision::Retry { .. }), "{d:?}");
    assert_eq!(next.g.attempts, 0);
    assert_eq!(next.g.phase, Phase::Deleting);
    assert_eq!(next.g.started_at, Some(at(600)));
    // ... and if the controller is now gone for good, the outcome is destroyed.
    next.at(700).gone();
    assert_eq!(next.apply(), Decision::Done(Outcome::Destroyed));
}

#[test]
fn missing_source_cannot_be_orphaned_so_it_is_force_removed() {
    let mut w = World::new();
    w.apply();
    w.deleted().at(3);
    w.e.source = SourceState::Missing;
    w.fail(
        "ArtifactFailed",
        "GitRepository.source.toolkit.fluxcd.io \"db\" not found",
    );
    let d = w.apply();
    assert!(matches!(d, Decision::ForceRemove { .. }), "{d:?}");
    let l = ledger_of(&d);
    assert_eq!(l.reason, "missing-dependency");
    assert!(l.message.contains("source is missing"), "{}", l.message);
}

#[test]
fn missing_runner_service_account_shows_nothing_in_status_but_is_detected() {
    let mut w = World::new();
    w.apply();
    w.deleted().at(3);
    w.e.runner_service_account = Presence::Missing;
    let d = w.apply();
    assert!(matches!(d, Decision::ForceRemove { .. }), "{d:?}");
    assert_eq!(
        w.g.last_failure_class,
        Some(FailureClass::BlockedByMissingDependency)
    );
}

#[test]
fn missing_vars_blocks_destroy_but_orphaning_still_works() {
    let mut w = World::new();
    w.apply();
    w.deleted().at(3);
    w.e.vars_from = Presence::Missing;
    w.fail(
        "VarsGenerationFailed",
        "failed to get vars: Secret \"db-vars\" not found",
    );
    let d = w.apply();
    assert!(matches!(d, Decision::Orphan { .. }), "{d:?}");
}

#[test]
fn terminating_namespace_means_no_runner_pod_so_force() {
    let mut w = World::new();
    w.apply();
    w.deleted().at(3);
    w.e.namespace_terminating = true;
    assert!(matches!(w.apply(), Decision::ForceRemove { .. }));
}

#[test]
fn source_without_artifact_gets_a_grace_period() {
    let mut w = World::new();
    w.apply();
    w.deleted().at(3);
    w.e.source = SourceState::NoArtifact;
    w.fail("ArtifactFailed", "Source is not ready, artifact not found");
    let d = w.apply();
    assert_eq!(
        d,
        Decision::Wait {
            until: at(23),
            waiting_for: WaitFor::MissingDependency
        }
    );
    w.at(23);
    let d = w.apply();
    assert!(matches!(d, Decision::ForceRemove { .. }), "{d:?}");
    // It came back in time: grace cleared, destroy followed.
    let mut w2 = World::new();
    w2.apply();
    w2.deleted().at(3);
    w2.e.source = SourceState::NoArtifact;
    w2.apply();
    w2.e.source = SourceState::Ready;
    w2.at(10).progressing();
    assert!(is_wait(&w2.apply(), WaitFor::Destroy));
    assert_eq!(w2.g.missing_dependency_since, None);
}

#[test]
fn silence_is_never_evidence_of_absence() {
    // Item 1: a deletion reconcile writes nothing until its runner pod is up (up to 120 s
    // runner-creation-timeout + 30 s dial) and echoes requestedAt only at its end. The old
    // machine called the controller absent after 45 s of silence and force-removed.
    let mut w = World::new();
    w.apply(); // request sent at t0
    w.deleted().at(10);
    assert!(is_wait(&w.apply(), WaitFor::Controller));
    w.at(45);
    let d = w.apply();
    assert!(matches!(d, Decision::Wait { .. }), "{d:?}");
    w.at(181);
    assert!(is_wait(&w.apply(), WaitFor::Silence));
    // Its deadline: orphan (a request that needs no force), never force.
    w.timing.share_deadline = at(200);
    w.at(200);
    let d = w.apply();
    assert!(matches!(d, Decision::Orphan { .. }), "{d:?}");
    assert_eq!(ledger_of(&d).reason, "timeout");
    w.o.destroy_resources_on_deletion = false;
    // The budget's end with no evidence: left as it is (the run ends unfinished).
    w.at(230);
    let d = w.apply();
    assert!(is_wait(&d, WaitFor::Silence), "{d:?}");
    // Evidence that it is gone (its Lease not renewed): force-remove at once.
    let mut w = World::new();
    w.apply();
    w.deleted().at(10);
    w.e.controller = Presence::Missing;
    let d = w.apply();
    assert!(matches!(d, Decision::ForceRemove { .. }), "{d:?}");
    assert_eq!(ledger_of(&d).reason, "controller-absent");
}

#[test]
fn a_starting_runner_pod_and_a_running_apply_are_progress() {
    // Item 1: positive evidence of progress — the runner pod, Apply=Unknown — keeps the guard
    // patient even without any echo.
    let mut w = World::new();
    w.apply();
    w.deleted().at(100);
    w.e.runner = RunnerPod::Pending { since: at(5) };
    assert!(is_wait(&w.apply(), WaitFor::Destroy));
    // Pending longer than the patience (image pull back-off …) is no longer progress.
    w.at(190);
    assert!(is_wait(&w.apply(), WaitFor::Silence));
    w.e.runner = RunnerPod::Running;
    assert!(is_wait(&w.apply(), WaitFor::Destroy));
    w.e.runner = RunnerPod::Absent;
    w.o.apply = Some(ReadyCondition {
        status: ConditionStatus::Unknown,
        reason: "Progressing".into(),
        message: "Applying".into(),
        last_transition_time: Some(at(150)),
    });
    assert!(is_wait(&w.apply(), WaitFor::Destroy));
}

#[test]
fn a_failure_left_from_before_the_deletion_does_not_hide_a_running_destroy() {
    // Found by the realistic soak: a CR that was `DependencyNotReady` before its deletion keeps
    // showing it until the deletion reconcile's next status patch, which comes only after its
    // runner pod is up. That stale failure must not make a starting runner "not in flight".
    let mut w = World::new();
    w.o.ready = Some(ReadyCondition {
        status: ConditionStatus::False,
        reason: "DependencyNotReady".into(),
        message: "dependency 'team-a/vpc' is not ready".into(),
        last_transition_time: Some(at(-600)),
    });
    w.p.timeout = Duration::from_secs(60);
    w.apply();
    w.deleted().at(1);
    w.o.deletion_timestamp = Some(at(0));
    w.e.runner = RunnerPod::Pending { since: at(1) };
    w.at(61);
    let d = w.apply();
    assert!(is_wait(&d, WaitFor::Destroy), "{d:?}");
}

#[test]
fn condition_times_in_whole_seconds_count_as_activity() {
    // Item 1: lastTransitionTime is truncated to whole seconds (fluxcd/pkg setter); a
    // transition in the same second as the request (sent at .4 s) is not "before" it.
    let mut w = World::new();
    w.timing.now = at(0) + chrono::Duration::milliseconds(400);
    w.apply();
    w.deleted();
    w.o.ready = Some(ReadyCondition {
        status: ConditionStatus::Unknown,
        reason: "Progressing".into(),
        message: "Deletion in progress".into(),
        last_transition_time: Some(at(0)),
    });
    w.o.last_status_change_at = Some(at(0));
    w.at(181);
    assert!(is_wait(&w.apply(), WaitFor::Destroy));
}

#[test]
fn long_destroy_with_visible_activity_is_not_mistaken_for_absence() {
    let mut w = World::new();
    w.apply();
    w.deleted().at(2);
    // The controller moved Ready to Unknown (activity) but has not echoed yet.
    w.o.ready = Some(ReadyCondition {
        status: ConditionStatus::Unknown,
        reason: "Progressing".into(),
        message: "Deletion in progress".into(),
        last_transition_time: Some(at(2)),
    });
    w.o.last_status_change_at = Some(at(2));
    w.at(200);
    assert!(is_wait(&w.apply(), WaitFor::Destroy));
}

#[test]
fn timeout_while_destroying_goes_to_on_failure() {
    let mut w = World::new();
    w.p.timeout = Duration::from_secs(60);
    w.apply();
    w.deleted().at(2).progressing();
    w.at(59);
    assert!(is_wait(&w.apply(), WaitFor::Destroy));
    // A timeout shorter than the controller's patience (a runner pod can take minutes) is
    // raised to it: no escalation before 180 s.
    w.at(60);
    assert!(is_wait(&w.apply(), WaitFor::Destroy));
    w.at(180);
    let d = w.apply();
    assert!(matches!(d, Decision::Orphan { .. }), "{d:?}");
    assert_eq!(ledger_of(&d).reason, "timeout");
}

const LOCK_ID: &str = "f2ab685b-f84d-ac0b-a125-378a22877e8d";

fn lock_message(id: &str) -> String {
    format!("error running Plan: rpc error: code = Internal desc = error acquiring the state lock: Error acquiring the state lock\n\nError message: the state is already locked\nLock Info:\n  ID:        {id}\n  Path:      \n  Operation: OperationTypeApply\n  Who:       runner@db-tf-runner\n  Version:   1.5.7\n  Created:   2026-11-26 11:00:00.5 +0000 UTC\n  Info:      \n")
}

#[test]
fn lock_named_by_the_current_failure_with_a_gone_holder_is_force_unlocked_then_reset() {
    // Item 4: only when the policy allows it, the CURRENT failure names the lock that
    // status.lock.pending holds, and its holder is provably gone; spec.tfstate goes back to
    // what it was once the request was handled.
    let mut w = World::new();
    w.p.force_unlock = true;
    w.o.tfstate_spec = Some(serde_json::json!({"forceUnlock": "no"}));
    w.apply();
    w.deleted().at(5);
    w.o.lock_pending = Some(LOCK_ID.into());
    w.fail("TFExecPlanFailed", &lock_message(LOCK_ID));
    // Holder unknown: never unlock; treat as transient.
    assert!(is_wait(&w.apply(), WaitFor::Backoff));
    w.e.lock_holder = Presence::Missing;
    let d = w.apply();
    assert_eq!(
        d,
        Decision::ForceUnlock {
            lock_id: LOCK_ID.into(),
            requested_at: request_token(at(5))
        }
    );
    assert_eq!(w.g.phase, Phase::Unlocking);
    // Handled (echoed): spec.tfstate is restored before anything else.
    w.at(10);
    w.fail(
        "TFExecPlanFailed",
        "error running Plan: rpc error: code = Internal desc = AccessDenied",
    );
    let d = w.apply();
    assert_eq!(
        d,
        Decision::RestoreTfstate {
            tfstate: serde_json::json!({"forceUnlock": "no", "lockIdentifier": null}),
            requested_at: request_token(at(10))
        }
    );
    assert_eq!(w.g.phase, Phase::Deleting);
    // Same lock reported again: no second unlock.
    w.at(20);
    w.fail("TFExecPlanFailed", &lock_message(LOCK_ID));
    assert!(!matches!(w.apply(), Decision::ForceUnlock { .. }));
}

#[test]
fn force_unlock_needs_the_lock_named_now_and_the_policy() {
    // A stale status.lock.pending (released lock, later non-lock failures) is no reason.
    let mut w = World::new();
    w.p.force_unlock = true;
    w.apply();
    w.deleted().at(5);
    w.o.lock_pending = Some(LOCK_ID.into());
    w.e.lock_holder = Presence::Missing;
    w.fail(
        "TFExecApplyFailed",
        "Error: DependencyViolation: sg-1 in use",
    );
    assert!(!matches!(w.apply(), Decision::ForceUnlock { .. }));
    // The message names another lock than status.lock.pending.
    let mut w = World::new();
    w.p.force_unlock = true;
    w.apply();
    w.deleted().at(5);
    w.o.lock_pending = Some("other-id".into());
    w.e.lock_holder = Presence::Missing;
    w.fail("TFExecPlanFailed", &lock_message(LOCK_ID));
    assert!(!matches!(w.apply(), Decision::ForceUnlock { .. }));
    // Off by default.
    let mut w = World::new();
    assert!(
        !w.p.force_unlock,
        "force-unlock is off unless the catalog turns it on"
    );
    w.apply();
    w.deleted().at(5);
    w.o.lock_pending = Some(LOCK_ID.into());
    w.e.lock_holder = Presence::Missing;
    w.fail("TFExecPlanFailed", &lock_message(LOCK_ID));
    assert!(!matches!(w.apply(), Decision::ForceUnlock { .. }));
}

#[test]
fn a_held_lock_is_orphaned_at_once_unless_something_will_release_it() {
    // One failure naming LOCK_ID, after the given set-up: (class, waits for a retry?).
    let held = |setup: &dyn Fn(&mut World), holder: &str| {
        let mut w = World::new();
        setup(&mut w);
        w.apply();
        w.deleted().at(5);
        w.fail(
            "TFExecPlanFailed",
            &lock_message(LOCK_ID).replace("runner@db-tf-runner", holder),
        );
        let s = w.step();
        let waits = is_wait(&s.decision, WaitFor::Backoff);
        let orphans = matches!(s.decision, Decision::Orphan { .. });
        assert!(waits != orphans, "{:?}", s.decision);
        (s.classification.map(|c| c.class), waits)
    };
    let transient = (Some(FailureClass::Transient), true);
    let permanent = (Some(FailureClass::Permanent), false);
    let own = "runner@db-tf-runner";
    // Nothing releases it (force-unlock off, spec.tfstate.forceUnlock no): a dead run's lock
    // leans permanent — orphaned now instead of burning the budget on retries.
    let no = |w: &mut World| {
        w.o.tfstate_spec = Some(serde_json::json!({"forceUnlock": "no"}));
        w.o.lock_pending = Some(LOCK_ID.into());
    };
    assert_eq!(held(&no, own), permanent);
    // spec.tfstate.forceUnlock: auto — the controller unlocks the pending lock next reconcile.
    let auto = |w: &mut World| {
        w.o.tfstate_spec = Some(serde_json::json!({"forceUnlock": "auto"}));
        w.o.lock_pending = Some(LOCK_ID.into());
    };
    assert_eq!(held(&auto, own), transient);
    // ... but only the pending one: with another lock pending nothing releases this one.
    let auto_other = |w: &mut World| {
        w.o.tfstate_spec = Some(serde_json::json!({"forceUnlock": "auto"}));
        w.o.lock_pending = Some("another-lock".into());
    };
    assert_eq!(held(&auto_other, own), permanent);
    // tfops.dev/force-unlock on, held by this CR's runner, not yet known gone: the guard waits
    // for the evidence; held by anyone else (a laptop, another CR) it never force-unlocks it.
    let guard = |w: &mut World| {
        w.p.force_unlock = true;
        w.o.lock_pending = Some(LOCK_ID.into());
    };
    assert_eq!(held(&guard, own), transient);
    assert_eq!(held(&guard, "alice@laptop"), permanent);
}

#[test]
fn an_in_use_failure_is_retried_only_while_its_holder_goes_with_this_uninstall() {
    const IN_USE: &str = "Error: Error waiting for Deleting Network: The network resource 'projects/acme/global/networks/core' is already being used by 'projects/acme/global/firewalls/allow-ssh'";
    // One failure, after the given holders are known: (class, waits for a retry?).
    let run = |holders: &[(&str, &str)]| {
        let mut w = World::new();
        w.e.holders_in_destroy = holders
            .iter()
            .map(|(h, t)| ((*h).to_owned(), (*t).to_owned()))
            .collect();
        w.apply();
        w.deleted().at(5);
        w.fail("TFExecApplyFailed", IN_USE);
        let s = w.step();
        let waits = is_wait(&s.decision, WaitFor::Backoff);
        let orphans = matches!(s.decision, Decision::Orphan { .. });
        assert!(waits != orphans, "{:?}", s.decision);
        let why = s
            .classification
            .as_ref()
            .and_then(|c| c.rule.as_ref())
            .map(|r| r.why.clone());
        // The wait says whose destroy it waits for.
        assert_eq!(
            s.why
                .contains("shop/fw, which this uninstall is destroying"),
            waits,
            "{}",
            s.why
        );
        (
            s.classification.map(|c| c.class),
            waits,
            why.unwrap_or_default(),
        )
    };
    // The holder is in no state this uninstall destroys: orphaned at once.
    let (class, waits, _) = run(&[]);
    assert_eq!((class, waits), (Some(FailureClass::Permanent), false));
    let (class, waits, _) = run(&[("projects/acme/global/firewalls/other", "shop/fw")]);
    assert_eq!((class, waits), (Some(FailureClass::Permanent), false));
    // Managed by a Terraform being destroyed by the same uninstall: retried, and says why.
    let (class, waits, why) = run(&[("projects/acme/global/firewalls/allow-ssh", "shop/fw")]);
    assert_eq!((class, waits), (Some(FailureClass::Transient), true));
    assert!(why.contains("shop/fw"), "{why}");
}

#[test]
fn an_in_use_failure_with_a_holder_outside_the_uninstall_is_not_retried() {
    // Two load balancers hold the certificate; only one goes with this uninstall.
    const TWO: &str = "deleting ACM Certificate: ResourceInUseException: Certificate arn:aws:acm:us-east-1:1:certificate/c in use by arn:aws:elasticloadbalancing:us-east-1:1:loadbalancer/app/a/1, arn:aws:elasticloadbalancing:us-east-1:1:loadbalancer/app/b/2";
    let run = |managed: &[&str]| {
        let mut w = World::new();
        w.e.holders_in_destroy = managed
            .iter()
            .map(|h| ((*h).to_owned(), "shop/lb".to_owned()))
            .collect();
        w.apply();
        w.deleted().at(5);
        w.fail("TFExecApplyFailed", TWO);
        let s = w.step();
        (s.classification.map(|c| c.class), s.decision)
    };
    let (class, d) = run(&["arn:aws:elasticloadbalancing:us-east-1:1:loadbalancer/app/a/1"]);
    assert_eq!(class, Some(FailureClass::Permanent));
    assert!(matches!(d, Decision::Orphan { .. }), "{d:?}");
    let (class, d) = run(&[
        "arn:aws:elasticloadbalancing:us-east-1:1:loadbalancer/app/a/1",
        "arn:aws:elasticloadbalancing:us-east-1:1:loadbalancer/app/b/2",
    ]);
    assert_eq!(class, Some(FailureClass::Transient));
    assert!(is_wait(&d, WaitFor::Backoff), "{d:?}");
}

/// `subjects`, each used by `aws_instance.web` in the state of `shop/app`.
fn used_by_app(subjects: &[&str]) -> std::collections::BTreeMap<String, crate::machine::Referrer> {
    subjects
        .iter()
        .map(|s| {
            (
                (*s).to_owned(),
                crate::machine::Referrer {
                    resource: "aws_instance.web".into(),
                    terraform: "shop/app".into(),
                    destroyed_by_attempt: false,
                },
            )
        })
        .collect()
}

#[test]
fn a_referrer_the_failed_attempt_destroyed_makes_the_failure_transient_and_says_so() {
    const DV: &str = "Error: deleting Security Group (sg-0a1b2c3d4e5f60718): DependencyViolation: resource sg-0a1b2c3d4e5f60718 has a dependent object";
    let mut w = World::new();
    w.e.referrers_in_destroy = [(
        "sg-0a1b2c3d4e5f60718".to_owned(),
        crate::machine::Referrer {
            resource: "aws_lambda_function.f".into(),
            terraform: "shop/net".into(),
            destroyed_by_attempt: true,
        },
    )]
    .into_iter()
    .collect();
    w.apply();
    w.deleted().at(5);
    w.fail("TFExecApplyFailed", DV);
    let s = w.step();
    assert_eq!(
        s.classification.map(|c| c.class),
        Some(FailureClass::Transient)
    );
    assert!(is_wait(&s.decision, WaitFor::Backoff), "{:?}", s.decision);
    assert!(
        s.why.contains("aws_lambda_function.f (which used sg-0a1b2c3d4e5f60718; the attempt that failed destroyed it before the cloud let go of sg-0a1b2c3d4e5f60718)"),
        "{}",
        s.why
    );
    // Without it the same text is orphaned at once.
    let mut bare = World::new();
    bare.apply();
    bare.deleted().at(5);
    bare.fail("TFExecApplyFailed", DV);
    assert!(matches!(bare.step().decision, Decision::Orphan { .. }));
}

#[test]
fn an_in_use_failure_without_a_holder_is_retried_only_while_a_referrer_goes_with_this_uninstall() {
    // AWS names only what could not be deleted; two subnets here.
    const DV: &str = "Error: deleting EC2 Subnet (subnet-0a1b2c3d4e5f60718): DependencyViolation: The subnet 'subnet-0a1b2c3d4e5f60718' has dependencies and cannot be deleted.\nError: deleting EC2 Subnet (subnet-0ffffffffffffffff): DependencyViolation: The subnet 'subnet-0ffffffffffffffff' has dependencies and cannot be deleted.";
    let run = |referenced: &[&str], holders: &[&str]| {
        let mut w = World::new();
        w.e.referrers_in_destroy = used_by_app(referenced);
        // A holder map never stands in for a referrer (this text names no holder).
        w.e.holders_in_destroy = holders
            .iter()
            .map(|h| ((*h).to_owned(), "shop/other".to_owned()))
            .collect();
        w.apply();
        w.deleted().at(5);
        w.fail("TFExecApplyFailed", DV);
        let s = w.step();
        (s.classification.map(|c| c.class), s.decision, s.why)
    };
    let (class, d, _) = run(&[], &[]);
    assert_eq!(class, Some(FailureClass::Permanent));
    assert!(matches!(d, Decision::Orphan { .. }), "{d:?}");
    // One subnet referenced by a sibling being destroyed, the other by nothing known: orphan.
    let (class, d, _) = run(&["subnet-0a1b2c3d4e5f60718"], &["subnet-0ffffffffffffffff"]);
    assert_eq!(class, Some(FailureClass::Permanent));
    assert!(matches!(d, Decision::Orphan { .. }), "{d:?}");
    // Both referenced: retried, and the reason names the resource and its Terraform.
    let (class, d, why) = run(
        &["subnet-0a1b2c3d4e5f60718", "subnet-0ffffffffffffffff"],
        &[],
    );
    assert_eq!(class, Some(FailureClass::Transient));
    assert!(is_wait(&d, WaitFor::Backoff), "{d:?}");
    assert!(
        why.contains("aws_instance.web (which uses subnet-0a1b2c3d4e5f60718)")
            && why.contains("shop/app, which this uninstall is destroying"),
        "{why}"
    );
}

#[test]
fn a_holder_going_with_the_uninstall_does_not_excuse_another_diagnostic() {
    const SUBNET: &str = "subnet-0a1b2c3d4e5f60718";
    let run = |second: &str| {
        let mut w = World::new();
        w.e.referrers_in_destroy = used_by_app(&[SUBNET]);
        w.apply();
        w.deleted().at(5);
        let message = format!(
            "error running Apply: rpc error: code = Internal desc = exit status 1\n\nError: deleting EC2 Subnet ({SUBNET}): DependencyViolation: The subnet '{SUBNET}' has dependencies and cannot be deleted.\n\n  with aws_subnet.private,\n{second}"
        );
        w.fail("TFExecApplyFailed", &message);
        w.step().classification.map(|c| c.class)
    };
    assert_eq!(run(""), Some(FailureClass::Transient));
    // A second diagnostic that needs a human keeps the whole failure permanent.
    assert_eq!(
        run("\nError: deleting IAM Role (app): operation error IAM: DeleteRole, https response error StatusCode: 403, api error AccessDenied: User: arn:aws:sts::123456789012:assumed-role/ci/x is not authorized to perform: iam:DeleteRole"),
        Some(FailureClass::Permanent)
    );
    // A second one that is itself transient does not.
    assert_eq!(
        run("\nError: deleting Route53 Record: Throttling: Rate exceeded"),
        Some(FailureClass::Transient)
    );
}

#[test]
fn each_in_use_diagnostic_needs_its_own_explanation() {
    // A certificate whose holder goes with the uninstall does not explain a subnet nothing in
    // the release uses.
    const SUBNET: &str = "subnet-0ffffffffffffffff";
    const LB: &str =
        "arn:aws:elasticloadbalancing:eu-west-1:123456789012:loadbalancer/app/web/0123456789abcdef";
    let run = |subnet_used: bool| {
        let mut w = World::new();
        w.e.holders_in_destroy = [(LB.to_owned(), "shop/app".to_owned())]
            .into_iter()
            .collect();
        if subnet_used {
            w.e.referrers_in_destroy = used_by_app(&[SUBNET]);
        }
        w.apply();
        w.deleted().at(5);
        let message = format!(
            "error running Apply: rpc error: code = Internal desc = exit status 1\n\nError: deleting EC2 Subnet ({SUBNET}): api error DependencyViolation: The subnet '{SUBNET}' has dependencies and cannot be deleted.\n\n  with aws_subnet.private,\n\nError: deleting ACM Certificate (arn:aws:acm:eu-west-1:123456789012:certificate/0a1b2c3d-aaaa-bbbb-cccc-0123456789ab): ResourceInUseException: Certificate arn:aws:acm:eu-west-1:123456789012:certificate/0a1b2c3d-aaaa-bbbb-cccc-0123456789ab in use by {LB}\n"
        );
        w.fail("TFExecApplyFailed", &message);
        w.step().classification.map(|c| c.class)
    };
    assert_eq!(run(false), Some(FailureClass::Permanent));
    assert_eq!(run(true), Some(FailureClass::Transient));
}

// ----- orphaning --------------------------------------------------------------------------

fn orphaning_world() -> World {
    let mut w = World::new();
    w.apply();
    w.deleted().at(5);
    w.fail("TFExecApplyFailed", DENIED);
    let d = w.apply();
    assert!(matches!(d, Decision::Orphan { .. }));
    w.o.destroy_resources_on_deletion = false;
    w
}

#[test]
fn orphan_that_the_controller_never_picks_up_is_forced_only_with_evidence() {
    let mut w = orphaning_world();
    w.at(20);
    assert!(is_wait(&w.apply(), WaitFor::Orphan));
    w.at(35); // the old 30 s orphan timeout: far too short for a runner pod to start
    assert!(is_wait(&w.apply(), WaitFor::Orphan));
    w.at(186);
    assert!(is_wait(&w.apply(), WaitFor::Silence));
    // The budget's end: the controller reported a permanent failure before (evidence).
    w.at(230);
    let d = w.apply();
    assert!(matches!(d, Decision::ForceRemove { .. }), "{d:?}");
    assert_eq!(ledger_of(&d).reason, "budget-exhausted");
    assert_eq!(ledger_of(&d).decision, LedgerDecision::ForceRemoved);
    assert_eq!(w.g.phase, Phase::ForceRemoving);
    // The runtime died before stripping: the re-run repeats the force-remove.
    w.at(235);
    assert!(matches!(w.apply(), Decision::ForceRemove { .. }));
    w.gone();
    assert_eq!(w.apply(), Decision::Done(Outcome::ForceRemoved));
    // The controller is gone (Lease not renewed): no point waiting.
    let mut w = orphaning_world();
    w.at(20);
    w.e.controller = Presence::Missing;
    let d = w.apply();
    assert!(matches!(d, Decision::ForceRemove { .. }), "{d:?}");
    assert_eq!(ledger_of(&d).reason, "orphan-stalled");
}

#[test]
fn a_destroy_in_flight_is_never_cut_and_its_outcome_is_what_the_controller_did() {
    // Item 2: finalize reads destroyResourcesOnDeletion once at its start and the Apply RPC
    // blocks until terraform exits: neither the orphan patch nor a finalizer strip may touch
    // a running destroy, and if it finishes, the CR was destroyed, not orphaned.
    let mut w = World::new();
    w.p.timeout = Duration::from_secs(60);
    w.apply();
    w.deleted().at(2);
    w.o.deletion_timestamp = Some(at(0));
    w.e.runner = RunnerPod::Running;
    w.o.apply = Some(ReadyCondition {
        status: ConditionStatus::Unknown,
        reason: "Progressing".into(),
        message: "Applying".into(),
        last_transition_time: Some(at(20)),
    });
    for s in [60, 100, 229, 230, 239] {
        w.at(s);
        let d = w.apply();
        assert!(is_wait(&d, WaitFor::Destroy), "{s}: {d:?}");
        assert!(!d.releases_without_destroy());
    }
    // The controller reports the destroy apply done, then releases the CR.
    w.o.apply = Some(ReadyCondition {
        status: ConditionStatus::True,
        reason: "TerraformAppliedSucceed".into(),
        message: "Applied successfully".into(),
        last_transition_time: Some(at(236)),
    });
    w.e.runner = RunnerPod::Absent;
    w.at(237).apply();
    w.gone();
    assert_eq!(w.apply(), Decision::Done(Outcome::Destroyed));

    // Orphaned earlier (permanent failure, then a retry by someone else started a destroy):
    // the destroy that ran to its end makes the outcome `destroyed`.
    let mut w = orphaning_world();
    w.o.deletion_timestamp = Some(at(0));
    w.at(20);
    w.e.runner = RunnerPod::Running;
    w.o.ready = Some(ReadyCondition {
        status: ConditionStatus::Unknown,
        reason: "Progressing".into(),
        message: "Deletion in progress".into(),
        last_transition_time: Some(at(19)),
    });
    assert!(is_wait(&w.apply(), WaitFor::Destroy));
    w.at(230);
    assert!(
        is_wait(&w.apply(), WaitFor::Destroy),
        "never forced at the budget end"
    );
    w.o.apply = Some(ReadyCondition {
        status: ConditionStatus::True,
        reason: "TerraformAppliedSucceed".into(),
        message: "Applied successfully".into(),
        last_transition_time: Some(at(231)),
    });
    w.at(232).apply();
    w.gone();
    assert_eq!(w.apply(), Decision::Done(Outcome::Destroyed));
}

#[test]
fn orphan_in_progress_is_not_forced_before_the_deadline() {
    let mut w = orphaning_world();
    w.at(10).progressing();
    w.at(50);
    let d = w.apply();
    assert!(is_wait(&d, WaitFor::Orphan), "{d:?}");
    w.at(230);
    assert!(matches!(w.apply(), Decision::ForceRemove { .. }));
}

#[test]
fn orphan_that_fails_on_a_missing_source_is_forced_at_once() {
    let mut w = orphaning_world();
    w.at(10);
    w.e.source = SourceState::Missing;
    let d = w.apply();
    assert!(matches!(d, Decision::ForceRemove { .. }), "{d:?}");
}

#[test]
fn stalled_orphan_under_block_policy_blocks() {
    let mut w = World::new();
    w.p.uninstall = UninstallPolicy::Retain;
    w.p.on_failure = OnFailure::Block;
    w.apply();
    w.o.destroy_resources_on_deletion = false;
    w.at(1).apply();
    w.deleted().at(40);
    assert!(is_wait(&w.apply(), WaitFor::Orphan));
    // The controller handled the orphan request and failed to release it.
    w.at(60);
    w.fail(
        "ArtifactFailed",
        "OCIRepository.source.toolkit.fluxcd.io \"shop-db\" not found",
    );
    let d = w.apply();
    assert!(matches!(d, Decision::Block { .. }), "{d:?}");
}

// ----- budget -----------------------------------------------------------------------------

#[test]
fn a_destroyed_cr_wedged_on_a_gone_dependency_is_released_at_once() {
    // Item 7: finalize removes `tf.dependency.of.<me>` from each dependsOn target after the
    // destroy; a target that is gone makes it fail NotFound forever. The old guard waited its
    // whole timeout; now it sees the target gone and releases the destroyed CR.
    let mut w = World::new();
    w.apply();
    w.deleted().at(30);
    w.o.apply = Some(ReadyCondition {
        status: ConditionStatus::True,
        reason: "TerraformAppliedSucceed".into(),
        message: "Applied successfully".into(),
        last_transition_time: Some(at(29)),
    });
    w.e.dependency_gone = Some("team-a/vpc".into());
    let d = w.apply();
    assert!(matches!(d, Decision::ForceRemove { .. }), "{d:?}");
    assert!(ledger_of(&d).message.contains("team-a/vpc"));
    w.gone();
    assert_eq!(
        w.apply(),
        Decision::Done(Outcome::Destroyed),
        "the resources were destroyed: that is the outcome"
    );
    // Not destroyed yet: the destroy runs first (it is not blocked by the gone target).
    let mut w = World::new();
    w.apply();
    w.deleted().at(30);
    w.e.dependency_gone = Some("team-a/vpc".into());
    w.e.runner = RunnerPod::Running;
    assert!(is_wait(&w.apply(), WaitFor::Destroy));
}

#[test]
fn at_the_force_point_force_needs_evidence() {
    for case in 0..4 {
        let mut w = World::new();
        match case {
            0 => {
                // Dependants still there: never released (item 3).
                w.o.dependants_present = vec!["app".into()];
            }
            1 => {
                // Activity and no failure: no evidence, left for the user (exit 3).
                w.apply();
                w.deleted().at(2).progressing();
            }
            2 => {
                // Retain, nothing answered: no evidence.
                w.p.uninstall = UninstallPolicy::Retain;
                w.apply();
                w.deleted();
            }
            _ => {
                // A failure the controller reported: evidence; force at the budget end.
                w.apply();
                w.deleted().at(2);
                w.fail(
                    "TFExecApplyFailed",
                    "Error: DependencyViolation: sg-1 in use",
                );
                w.apply();
            }
        }
        w.at(230);
        let d = w.apply();
        match case {
            0 => assert!(
                is_wait(&d, WaitFor::Dependants(vec!["app".into()])),
                "{d:?}"
            ),
            1 | 2 => assert!(is_wait(&d, WaitFor::Silence), "{case}: {d:?}"),
            _ => {
                assert!(matches!(d, Decision::ForceRemove { .. }), "{d:?}");
                assert_eq!(ledger_of(&d).reason, "budget-exhausted");
            }
        }
    }
}

#[test]
fn kill_and_rerun_continues_from_persisted_progress() {
    let mut w = World::new();
    w.apply();
    w.deleted().at(20);
    w.fail("TFExecApplyFailed", THROTTLED);
    w.apply();
    w.at(30);
    assert!(matches!(w.apply(), Decision::Retry { .. }));
    // The guard is killed; a new run reads the annotation back.
    let ann: std::collections::BTreeMap<String, String> = [(
        crate::progress::PROGRESS_ANNOTATION.to_string(),
        w.g.to_annotation_value(),
    )]
    .into();
    let restored = Progress::from_annotations(&ann).unwrap().unwrap();
    assert_eq!(restored, w.g);
    let mut rerun = w.clone();
    rerun.g = restored;
    rerun.timing.run_started_at = at(50);
    rerun.at(50);
    rerun.fail("TFExecApplyFailed", THROTTLED);
    rerun.apply();
    assert_eq!(rerun.g.attempts, 2, "continues counting");
    assert_eq!(rerun.g.first_failure_at, Some(at(20)));
}

#[test]
fn observation_is_read_from_a_real_shaped_terraform_object() {
    let obj = serde_json::json!({
        "apiVersion": "infra.contrib.fluxcd.io/v1alpha2",
        "kind": "Terraform",
        "metadata": {
            "name": "db", "namespace": "team-a",
            "deletionTimestamp": "2026-11-26T12:00:00Z",
            "finalizers": [TF_FINALIZER, "tf.dependency.of.app"],
            "annotations": {"reconcile.fluxcd.io/requestedAt": "x"}
        },
        "spec": {"destroyResourcesOnDeletion": true, "suspend": false},
        "status": {
            "lastHandledReconcileAt": "x",
            "lock": {"pending": "lock-1"},
            "inventory": {"entries": [{"n": "a", "t": "null_resource", "id": "a"}, {"n": "b", "t": "null_resource", "id": "b"}]},
            "conditions": [
                {"type": "Ready", "status": "False", "reason": "TFExecApplyFailed",
                 "message": "boom", "lastTransitionTime": "2026-11-26T12:00:05Z"},
                {"type": "Plan", "status": "False", "reason": "TerraformPlannedNoChanges",
                 "message": "No objects need to be destroyed",
                 "lastTransitionTime": "2026-11-26T12:00:07Z"}
            ]
        }
    });
    let o = Observation::from_object(&obj);
    assert!(o.exists && o.deleting && o.destroy_resources_on_deletion && !o.suspend);
    assert_eq!(o.name, "db");
    assert_eq!(o.namespace, "team-a");
    let r = o.ready.as_ref().unwrap();
    assert_eq!(r.status, ConditionStatus::False);
    assert_eq!(r.reason, "TFExecApplyFailed");
    assert!(o.plan_nothing_to_destroy);
    assert_eq!(o.last_status_change_at, Some(at(7)));
    assert_eq!(o.lock_pending.as_deref(), Some("lock-1"));
    assert_eq!(o.inventory_entries, Some(2));
    assert_eq!(o.last_handled_reconcile_at.as_deref(), Some("x"));
    assert_eq!(
        o.dependant_finalizer_names().collect::<Vec<_>>(),
        vec!["app"]
    );
    assert_eq!(o.controller_finalizers().count(), 2);
}

#[test]
fn observation_of_a_bare_object_has_safe_defaults() {
    let o = Observation::from_object(&serde_json::json!({"metadata": {"name": "x"}}));
    assert!(o.exists && !o.deleting && !o.suspend && !o.destroy_resources_on_deletion);
    assert!(o.ready.is_none() && o.finalizers.is_empty() && o.lock_pending.is_none());
    let o = Observation::from_object(&serde_json::json!({
        "metadata": {"name": "x", "deletionTimestamp": null},
        "status": {"lock": {"pending": ""}, "conditions": [{"type": "Ready", "status": "Weird"}]}
    }));
    assert!(!o.deleting && o.lock_pending.is_none());
    assert_eq!(o.ready.unwrap().status, ConditionStatus::Unknown);
}

#[test]
fn backoff_doubles_and_is_capped() {
    let t = Tunables::default();
    let b: Vec<u64> = (1..=6).map(|n| backoff(&t, n).as_secs()).collect();
    assert_eq!(b, vec![10, 20, 40, 60, 60, 60]);
    assert_eq!(backoff(&t, u32::MAX).as_secs(), 60);
}

// ----- properties -------------------------------------------------------------------------

mod props {
    use super::*;
    use proptest::prelude::*;

    fn presence() -> impl Strategy<Value = Presence> {
        prop_oneof![
            Just(Presence::Present),
            Just(Presence::Missing),
            Just(Presence::Unknown)
        ]
    }

    fn source() -> impl Strategy<Value = SourceState> {
        prop_oneof![
            Just(SourceState::Ready),
            Just(SourceState::NoArtifact),
            Just(SourceState::Missing),
            Just(SourceState::Unknown)
        ]
    }

    fn phase() -> impl Strategy<Value = Phase> {
        prop_oneof![
            Just(Phase::Pending),
            Just(Phase::Deleting),
            Just(Phase::Unlocking),
            Just(Phase::Orphaning),
            Just(Phase::ForceRemoving),
            Just(Phase::Blocked),
            Just(Phase::Done),
        ]
    }

    fn token() -> impl Strategy<Value = Option<String>> {
        prop_oneof![
            Just(None),
            Just(Some("A".to_string())),
            Just(Some("B".to_string()))
        ]
    }

    fn time() -> impl Strategy<Value = Option<DateTime<Utc>>> {
        prop_oneof![Just(None), (0i64..300).prop_map(|s| Some(at(s)))]
    }

    const MESSAGES: &[(&str, &str)] = &[
        ("TFExecApplyFailed", THROTTLED),
        ("TFExecApplyFailed", DENIED),
        ("TFExecPlanFailed", "Error: Invalid value for variable"),
        ("ArtifactFailed", "Source is not ready, artifact not found"),
        ("VarsGenerationFailed", "Secret \"v\" not found"),
        ("LockHeld", "Error acquiring the state lock"),
        ("TFExecApplyFailed", "the moon is in the wrong phase"),
        (
            "TFExecApplyFailed",
            "Error: operation failed (exit status 1)",
        ),
        (
            "DeletionBlockedByDependantsReason",
            "Deletion in progress, but blocked.",
        ),
        ("Progressing", "Deletion in progress"),
        ("TerraformAppliedSucceed", "Applied successfully"),
    ];

    prop_compose! {
        fn ready()(
            present in any::<bool>(),
            status in prop_oneof![Just(ConditionStatus::True), Just(ConditionStatus::False), Just(ConditionStatus::Unknown)],
            m in 0..MESSAGES.len(),
            ltt in time(),
        ) -> Option<ReadyCondition> {
            present.then(|| ReadyCondition {
                status,
                reason: MESSAGES[m].0.to_string(),
                message: MESSAGES[m].1.to_string(),
                last_transition_time: ltt,
            })
        }
    }

    prop_compose! {
        fn observation()(
            exists in any::<bool>(),
            deleting in any::<bool>(),
            tf_finalizer in any::<bool>(),
            dep_finalizer in any::<bool>(),
            foreign in any::<bool>(),
            suspend in any::<bool>(),
            destroy in any::<bool>(),
            ready in ready(),
            ntd in any::<bool>(),
            handled in token(),
            changed in time(),
            lock in prop_oneof![Just(None), Just(Some("L".to_string()))],
            dependant_present in any::<bool>(),
        ) -> Observation {
            let mut finalizers = vec![];
            if tf_finalizer { finalizers.push(TF_FINALIZER.to_string()); }
            if dep_finalizer { finalizers.push(format!("{TF_DEPENDENCY_OF_PREFIX}app")); }
            if foreign { finalizers.push("example.com/other".to_string()); }
            Observation {
                name: "db".into(),
                namespace: "ns".into(),
                exists,
                deleting,
                finalizers,
                suspend,
                destroy_resources_on_deletion: destroy,
                ready,
                plan_nothing_to_destroy: ntd,
                last_handled_reconcile_at: handled,
                last_status_change_at: changed,
                lock_pending: lock,
                inventory_entries: None,
                dependants_present: if dependant_present { vec!["app".into()] } else { vec![] },
                deletion_timestamp: None,
                apply: None,
                tfstate_spec: None,
                status_changed_at: None,
            }
        }
    }

    prop_compose! {
        fn environment()(
            source in source(),
            sa in presence(),
            vars in presence(),
            term in any::<bool>(),
            holder in presence(),
            controller in presence(),
            runner in prop_oneof![
                Just(RunnerPod::Unknown),
                Just(RunnerPod::Absent),
                Just(RunnerPod::Running),
                Just(RunnerPod::Finished),
                (0i64..300).prop_map(|s| RunnerPod::Pending { since: at(s) }),
            ],
            gone in prop_oneof![Just(None), Just(Some("ns/vpc".to_string()))],
        ) -> Environment {
            Environment {
                source,
                runner_service_account: sa,
                vars_from: vars,
                namespace_terminating: term,
                lock_holder: holder,
                controller,
                runner,
                dependency_gone: gone,
                holders_in_destroy: Default::default(),
                referrers_in_destroy: Default::default(),
            }
        }
    }

    prop_compose! {
        fn policy()(
            retain in any::<bool>(),
            of in prop_oneof![Just(OnFailure::Orphan), Just(OnFailure::Force), Just(OnFailure::Block)],
            retries in 0u32..5,
            timeout in 1u64..700,
            unlock in any::<bool>(),
        ) -> Policy {
            Policy {
                uninstall: if retain { UninstallPolicy::Retain } else { UninstallPolicy::Destroy },
                on_failure: of,
                retries,
                timeout: Duration::from_secs(timeout),
                force_unlock: unlock,
            }
        }
    }

    prop_compose! {
        fn progress()(
            phase in phase(),
            attempts in 0u32..7,
            started in time(),
            first in time(),
            last_fail in time(),
            requested in token(),
            sent in time(),
            counted in token(),
            orphan_at in time(),
            blocked in time(),
            unlocked in prop_oneof![Just(None), Just(Some("L".to_string()))],
            missing_since in time(),
            ntd in any::<bool>(),
        ) -> Progress {
            Progress {
                phase,
                attempts,
                started_at: started,
                first_failure_at: first,
                last_failure_at: last_fail,
                last_failure_reason: first.map(|_| "TFExecApplyFailed".to_string()),
                last_failure_message: None,
                last_failure_class: first.map(|_| FailureClass::Transient),
                last_requested_at: requested,
                last_requested_sent_at: sent,
                counted_request: counted,
                escalates_at: None,
                escalation_reason: None,
                orphan_requested_at: orphan_at,
                force_removed_at: None,
                blocked_at: blocked,
                force_unlocked_lock: unlocked,
                missing_dependency_since: missing_since,
                nothing_to_destroy: ntd,
                outcome: None,
                destroy_applied_at: None,
                apply_baseline: None,
                last_busy_at: None,
                tfstate_before_unlock: None,
            }
        }
    }

    prop_compose! {
        fn timing()(now in 0i64..400, run in 0i64..300, share in 0i64..300, budget in 0i64..300) -> Timing {
            Timing {
                now: at(now),
                run_started_at: at(run.min(now)),
                share_deadline: at(share),
                budget_deadline: at(budget),
            }
        }
    }

    static CLASSIFIER: std::sync::LazyLock<Classifier> =
        std::sync::LazyLock::new(Classifier::builtin);

    fn run(o: &Observation, e: &Environment, p: &Policy, g: &Progress, timing: Timing) -> Step {
        let t = Tunables::default();
        let c = &*CLASSIFIER;
        decide(&Input {
            observation: o,
            environment: e,
            policy: p,
            progress: g,
            timing,
            tunables: &t,
            classifier: c,
        })
    }

    proptest! {
        #![proptest_config(ProptestConfig { cases: 3000, ..ProptestConfig::default() })]

        /// Same input, same output.
        #[test]
        fn deterministic(o in observation(), e in environment(), p in policy(), g in progress(), timing in timing()) {
            prop_assert_eq!(run(&o, &e, &p, &g, timing), run(&o, &e, &p, &g, timing));
        }

        /// Every decision that lets a CR go without a destroy carries its ledger record, and
        /// leaves a progress phase that makes a re-run repeat the (idempotent) ledger step.
        #[test]
        fn ledger_before_release(o in observation(), e in environment(), p in policy(), g in progress(), timing in timing()) {
            let s = run(&o, &e, &p, &g, timing);
            prop_assert_eq!(s.decision.releases_without_destroy(), s.decision.requires_ledger().is_some());
            match &s.decision {
                Decision::Orphan { ledger, .. } => {
                    prop_assert_eq!(ledger.decision, LedgerDecision::Orphaned);
                    prop_assert_eq!(s.progress.phase, Phase::Orphaning);
                }
                Decision::ForceRemove { ledger, dependency_finalizer } => {
                    prop_assert_eq!(ledger.decision, LedgerDecision::ForceRemoved);
                    prop_assert_eq!(s.progress.phase, Phase::ForceRemoving);
                    prop_assert_eq!(dependency_finalizer.as_str(), "tf.dependency.of.db");
                }
                Decision::DropStaleDependencyFinalizers { finalizers } => {
                    prop_assert!(finalizers.iter().all(|f| f.starts_with(TF_DEPENDENCY_OF_PREFIX)));
                    let live: Vec<String> = o.dependants_present.iter().map(|d| format!("{TF_DEPENDENCY_OF_PREFIX}{d}")).collect();
                    prop_assert!(!finalizers.iter().any(|f| live.contains(f)));
                }
                _ => {}
            }
            prop_assert!(!s.decision.strips_controller_finalizer() || s.decision.requires_ledger().is_some());
        }

        /// Never orphan, force or block a CR whose destroy is visibly progressing before its
        /// deadline.
        #[test]
        fn no_escalation_while_progressing(
            mut o in observation(), g in progress(), mut p in policy(), timing in timing(),
            status in prop_oneof![Just(ConditionStatus::Unknown), Just(ConditionStatus::True)],
        ) {
            let e = Environment {
                source: SourceState::Ready,
                runner_service_account: Presence::Present,
                vars_from: Presence::Present,
                namespace_terminating: false,
                lock_holder: Presence::Unknown,
                controller: Presence::Present,
                runner: RunnerPod::Unknown,
                dependency_gone: None,
                holders_in_destroy: Default::default(),
                referrers_in_destroy: Default::default(),
            };
            p.uninstall = UninstallPolicy::Destroy;
            o.exists = true;
            o.deleting = true;
            o.suspend = false;
            o.destroy_resources_on_deletion = true;
            o.finalizers = vec![TF_FINALIZER.to_string()];
            o.dependants_present.clear();
            o.ready = Some(ReadyCondition {
                status,
                reason: "Progressing".into(),
                message: "Deletion in progress".into(),
                last_transition_time: Some(timing.now),
            });
            let mut g = g;
            if !matches!(g.phase, Phase::Deleting | Phase::Unlocking | Phase::Pending) {
                g.phase = Phase::Deleting;
            }
            let t = Tunables::default();
            let deadline = cr_deadline(g.started_at.unwrap_or(timing.now), &p, &timing, &t);
            let s = run(&o, &e, &p, &g, timing);
            if timing.now < deadline {
                let calm = match &s.decision {
                    Decision::Wait { .. } => true,
                    // Only the first request on a CR the guard never asked anything.
                    Decision::Retry { attempt: 0, .. } => g.last_requested_at.is_none() || g.phase == Phase::Blocked,
                    _ => false,
                };
                prop_assert!(calm, "{:?}", s.decision);
            }
        }

        /// Waits are bounded; at/after the force point the guard waits only on what it may
        /// not act on: a running destroy, live dependants, or a silent controller without
        /// evidence (the run then ends unfinished).
        #[test]
        fn waits_are_bounded(o in observation(), e in environment(), p in policy(), g in progress(), timing in timing()) {
            let t = Tunables::default();
            let s = run(&o, &e, &p, &g, timing);
            let fp = force_point(&timing, &t);
            if let Decision::Wait { until, waiting_for } = &s.decision {
                prop_assert!(*until > timing.now);
                prop_assert!(*until <= plus(timing.now, t.max_wait));
                prop_assert!(*until <= fp.max(plus(timing.now, Duration::from_secs(1))));
                if timing.now >= fp {
                    let allowed = matches!(waiting_for, WaitFor::Destroy | WaitFor::Dependants(_) | WaitFor::Silence);
                    prop_assert!(allowed, "{:?}", waiting_for);
                }
            }
        }

        /// At/after the force point a CR the controller still holds is force-removed only with
        /// evidence (controller gone, a blocker, reported failures), never while a destroy
        /// runs or dependants remain; never orphaned then.
        #[test]
        fn budget_end_forces_only_with_evidence(mut o in observation(), e in environment(), p in policy(), mut g in progress(), timing in timing()) {
            let t = Tunables::default();
            o.exists = true;
            o.finalizers.push(TF_FINALIZER.to_string());
            if g.phase == Phase::Blocked { g.blocked_at = None; }
            let fp = force_point(&timing, &t);
            let s = run(&o, &e, &p, &g, timing);
            if timing.now >= fp && g.phase != Phase::ForceRemoving {
                prop_assert!(!matches!(s.decision, Decision::Orphan { .. }), "{:?}", s.decision);
                if let Decision::ForceRemove { .. } = s.decision {
                    let evidence = e.controller == Presence::Missing
                        || e.source != SourceState::Ready && e.source != SourceState::Unknown
                        || e.runner_service_account == Presence::Missing
                        || e.namespace_terminating
                        || e.dependency_gone.is_some()
                        || g.attempts > 0
                        || g.last_failure_class.is_some();
                    prop_assert!(evidence, "forced without evidence: {:?} {:?}", e, g);
                    prop_assert!(o.dependants_present.is_empty());
                }
            }
        }

        /// Nothing that lets a CR go without a destroy while its runner runs a destroy.
        #[test]
        fn no_release_while_a_destroy_runs(mut o in observation(), mut e in environment(), p in policy(), g in progress(), timing in timing()) {
            o.exists = true;
            o.deleting = true;
            o.finalizers.push(TF_FINALIZER.to_string());
            o.ready = None;
            e.runner = RunnerPod::Running;
            if e.controller == Presence::Missing { e.controller = Presence::Present; }
            let mut g = g;
            if g.phase == Phase::ForceRemoving { g.phase = Phase::Deleting; }
            let s = run(&o, &e, &p, &g, timing);
            prop_assert!(!s.decision.releases_without_destroy(), "{:?}", s.decision);
        }

        /// Silence alone — no reported failure, no evidence the controller is gone, nothing
        /// missing — never leads to a force-removal.
        #[test]
        fn silence_alone_never_forces(o in observation(), mut e in environment(), p in policy(), mut g in progress(), timing in timing()) {
            e.source = SourceState::Ready;
            e.runner_service_account = Presence::Present;
            e.vars_from = Presence::Present;
            e.namespace_terminating = false;
            e.dependency_gone = None;
            if e.controller == Presence::Missing { e.controller = Presence::Unknown; }
            if g.phase == Phase::ForceRemoving { g.phase = Phase::Deleting; }
            g.attempts = 0;
            g.last_failure_class = None;
            g.first_failure_at = None;
            g.last_failure_reason = None;
            let mut o = o;
            o.ready = o.ready.filter(|r| !is_failure(r));
            let s = run(&o, &e, &p, &g, timing);
            prop_assert!(!matches!(s.decision, Decision::ForceRemove { .. }), "{:?}", s.decision);
        }

        /// Before the DELETE nothing starts a reconcile: no un-suspend, no retry, no unlock,
        /// and an orphan patch carries no request and suspends (or changes nothing).
        #[test]
        fn nothing_starts_a_reconcile_before_the_delete(mut o in observation(), e in environment(), p in policy(), g in progress(), timing in timing()) {
            o.exists = true;
            o.deleting = false;
            o.finalizers = vec![TF_FINALIZER.to_string()];
            let s = run(&o, &e, &p, &g, timing);
            match &s.decision {
                Decision::Unsuspend | Decision::Retry { .. } | Decision::ForceUnlock { .. } => {
                    prop_assert!(false, "{:?} before the DELETE", s.decision);
                }
                Decision::Orphan { requested_at, suspend, .. } => {
                    prop_assert!(requested_at.is_none());
                    prop_assert!(*suspend || !o.destroy_resources_on_deletion);
                }
                _ => {}
            }
        }

        /// Done only when the controller is through with the CR (or blocked this run).
        #[test]
        fn done_only_when_released(o in observation(), e in environment(), p in policy(), g in progress(), timing in timing()) {
            let s = run(&o, &e, &p, &g, timing);
            if let Decision::Done(outcome) = s.decision {
                let released = !o.exists || (o.deleting && o.controller_finalizers().next().is_none());
                prop_assert!(released || outcome == Outcome::Blocked, "{:?}", outcome);
                if outcome == Outcome::Blocked {
                    prop_assert_eq!(g.phase, Phase::Blocked);
                }
                if outcome == Outcome::Orphaned || outcome == Outcome::ForceRemoved {
                    // Only after the ledger-writing phases.
                    prop_assert!(matches!(g.phase, Phase::Orphaning | Phase::ForceRemoving | Phase::Done));
                }
            }
        }

        /// Retry numbers never exceed the policy's retries; tokens come from `now`.
        #[test]
        fn retries_within_policy(o in observation(), e in environment(), p in policy(), g in progress(), timing in timing()) {
            let s = run(&o, &e, &p, &g, timing);
            if let Some(tok) = s.decision.requested_at() {
                let expected = request_token(timing.now);
                prop_assert_eq!(tok, expected.as_str());
                prop_assert_eq!(s.progress.last_requested_at.as_deref(), Some(tok));
            }
            if let Decision::Retry { attempt, of, .. } = s.decision {
                prop_assert!(attempt <= of.max(1) || g.phase == Phase::Blocked);
                prop_assert!(timing.now < force_point(&timing, &Tunables::default()));
            }
        }
    }
}
