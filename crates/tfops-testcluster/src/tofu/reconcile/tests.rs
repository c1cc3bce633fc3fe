//! One unit test per row of the deletion flow (and the normal reconcile) of the pure core.

use std::time::Duration;

use chrono::{DateTime, Utc};
use serde_json::{json, Value};

use crate::tofu::behavior::{Behavior, DestroyAttempt, FailStage, LockSpec};
use crate::tofu::conditions as cond;
use crate::tofu::reconcile::{reasons, reconcile, Action, Input, Outcome, Requeue, Row};
use crate::tofu::world::{DependencyView, LockView, SourceState, World};
use crate::tofu::TERRAFORM_FINALIZER;

const REV: &str = "main@sha1:0123456789abcdef0123456789abcdef01234567";

fn now() -> DateTime<Utc> {
    DateTime::parse_from_rfc3339("2026-11-26T21:00:00Z")
        .map(|t| t.with_timezone(&Utc))
        .unwrap()
}

fn tf(deleting: bool) -> Value {
    let mut v = json!({
        "apiVersion": "infra.contrib.fluxcd.io/v1alpha2",
        "kind": "Terraform",
        "metadata": {
            "name": "bucket",
            "namespace": "team-a",
            "uid": "11111111-2222-3333-4444-555555555555",
            "generation": 2,
            "finalizers": [TERRAFORM_FINALIZER],
        },
        "spec": {
            "interval": "10m",
            "approvePlan": "auto",
            "path": "./modules/bucket",
            "sourceRef": {"kind": "OCIRepository", "name": "bucket-src"},
            "destroyResourcesOnDeletion": true,
            "writeOutputsToSecret": {"name": "bucket-outputs"},
        },
        "status": {
            "observedGeneration": 1,
            "lastAppliedRevision": REV,
            "lastAttemptedRevision": REV,
            "lastPlannedRevision": REV,
            "conditions": [{
                "type": "Ready", "status": "True", "reason": "TerraformOutputsWritten",
                "message": format!("Outputs written: {REV}"), "lastTransitionTime": "2026-11-26T20:00:00Z",
                "observedGeneration": 1
            }],
            "inventory": {"entries": [{"n": "this", "t": "aws_s3_bucket", "id": "bucket-bucket"}]},
        }
    });
    if deleting {
        v["metadata"]["deletionTimestamp"] = json!("2026-11-26T20:59:00Z");
    }
    v
}

fn run(tf: &Value, world: &World, behavior: &Behavior, attempts: u32) -> Outcome {
    reconcile(Input {
        terraform: tf,
        world,
        behavior,
        destroy_attempts: attempts,
        now: now(),
        runner: Default::default(),
    })
}

fn last_status(o: &Outcome) -> Value {
    o.actions
        .iter()
        .rev()
        .find_map(|a| match a {
            Action::PatchStatus(s) => Some(s.clone()),
            _ => None,
        })
        .expect("a status patch")
}

fn ready(o: &Outcome) -> (String, String, String) {
    cond::get(&last_status(o), cond::READY).expect("Ready condition")
}

fn removes_finalizer(o: &Outcome) -> bool {
    o.actions
        .iter()
        .any(|a| matches!(a, Action::RemoveFinalizer(f) if f == TERRAFORM_FINALIZER))
}

fn fail(stage: FailStage, message: &str, times: u32) -> Behavior {
    Behavior {
        destroy: vec![DestroyAttempt::fail(stage, message, times)],
        ..Default::default()
    }
}

#[test]
fn row1_adds_finalizer_first_and_requeues() {
    let mut t = tf(false);
    t["metadata"]["finalizers"] = json!([]);
    let o = run(&t, &World::healthy(REV), &Behavior::default(), 0);
    assert_eq!(o.row, Row::AddFinalizer);
    assert!(o
        .actions
        .contains(&Action::AddFinalizer(TERRAFORM_FINALIZER.into())));
    assert_eq!(o.requeue, Requeue::RateLimited);
}

#[test]
fn row2_requested_at_is_echoed_even_when_suspended() {
    let mut t = tf(true);
    t["spec"]["suspend"] = json!(true);
    t["metadata"]["annotations"] =
        json!({"reconcile.fluxcd.io/requestedAt": "2026-11-26T21:00:00.123Z"});
    let o = run(&t, &World::healthy(REV), &Behavior::default(), 0);
    assert_eq!(
        last_status(&o)["lastHandledReconcileAt"],
        "2026-11-26T21:00:00.123Z"
    );
}

#[test]
fn row3_suspended_returns_before_deletion_handling() {
    let mut t = tf(true);
    t["spec"]["suspend"] = json!(true);
    let o = run(&t, &World::healthy(REV), &Behavior::default(), 0);
    assert_eq!(o.row, Row::Suspended);
    assert_eq!(o.requeue, Requeue::None);
    assert!(!removes_finalizer(&o));
    // nothing but the deferred status patch: conditions untouched, only the deferred
    // observedGeneration bump (Ready is True)
    assert_eq!(o.actions.len(), 1);
    let st = last_status(&o);
    assert_eq!(st["conditions"], t["status"]["conditions"]);
    assert_eq!(st["observedGeneration"], 2);
}

#[test]
fn row5_dependants_block_deletion_even_without_destroy() {
    let mut t = tf(true);
    t["spec"]["destroyResourcesOnDeletion"] = json!(false);
    t["metadata"]["finalizers"] = json!([
        TERRAFORM_FINALIZER,
        "tf.dependency.of.app",
        "tf.dependency.of.dns"
    ]);
    let o = run(&t, &World::healthy(REV), &Behavior::default(), 0);
    assert_eq!(o.row, Row::BlockedByDependants);
    let (st, reason, msg) = ready(&o);
    assert_eq!(
        (st.as_str(), reason.as_str()),
        ("False", reasons::DELETION_BLOCKED_BY_DEPENDANTS)
    );
    assert_eq!(
        msg,
        "Deletion in progress, but blocked. Please delete app, dns to resume ..."
    );
    assert_eq!(o.requeue, Requeue::After(Duration::from_secs(15)));
    assert!(!removes_finalizer(&o));
}

#[test]
fn row6_source_missing_blocks_deletion_forever_with_artifact_failed() {
    let t = tf(true);
    let mut w = World::healthy(REV);
    w.source = SourceState::Missing;
    for attempt in 0..3 {
        let o = run(&t, &w, &Behavior::default(), attempt);
        assert_eq!(o.row, Row::SourceMissing);
        let (st, reason, msg) = ready(&o);
        assert_eq!(
            (st.as_str(), reason.as_str()),
            ("False", reasons::ARTIFACT_FAILED)
        );
        assert_eq!(
            msg,
            "ocirepositories.source.toolkit.fluxcd.io \"bucket-src\" not found"
        );
        assert!(cond::is_true(&last_status(&o), cond::STALLED));
        assert_eq!(o.requeue, Requeue::After(Duration::from_secs(15)));
        assert!(!removes_finalizer(&o));
    }
}

#[test]
fn row7_source_without_artifact() {
    let t = tf(true);
    let mut w = World::healthy(REV);
    w.source = SourceState::NoArtifact;
    let o = run(&t, &w, &Behavior::default(), 0);
    assert_eq!(o.row, Row::NoArtifact);
    assert_eq!(ready(&o).2, "Source is not ready, artifact not found");
    assert!(!removes_finalizer(&o));
}

#[test]
fn retry_interval_follows_spec() {
    let mut t = tf(true);
    t["spec"]["retryInterval"] = json!("1m");
    let mut w = World::healthy(REV);
    w.source = SourceState::Missing;
    assert_eq!(
        run(&t, &w, &Behavior::default(), 0).requeue,
        Requeue::After(Duration::from_secs(60))
    );
    t["spec"]["retryStrategy"] = json!("ExponentialBackoff");
    t["status"]["reconciliationFailures"] = json!(2);
    assert_eq!(
        run(&t, &w, &Behavior::default(), 0).requeue,
        Requeue::After(Duration::from_secs(240))
    );
}

#[test]
fn row8_dependencies_get_dependant_finalizer_when_live() {
    let mut t = tf(false);
    t["spec"]["dependsOn"] = json!([{"name": "vpc"}]);
    let mut w = World::healthy(REV);
    let mut dep = tf(false);
    dep["metadata"]["name"] = json!("vpc");
    dep["status"]["conditions"][0]["status"] = json!("False");
    w.dependencies = vec![DependencyView {
        namespace: "team-a".into(),
        name: "vpc".into(),
        object: Some(dep),
        outputs_secret_present: true,
    }];
    let o = run(&t, &w, &Behavior::default(), 0);
    assert_eq!(o.row, Row::DependencyNotReady);
    assert!(o.actions.contains(&Action::AddDependencyFinalizer {
        namespace: "team-a".into(),
        name: "vpc".into(),
        finalizer: "tf.dependency.of.bucket".into(),
    }));
    let (_, reason, msg) = ready(&o);
    assert_eq!(reason, reasons::DEPENDENCY_NOT_READY);
    assert_eq!(msg, "dependency 'team-a/vpc' is not ready");
}

#[test]
fn row10_runner_sa_missing_leaves_nothing_in_status() {
    let t = tf(true);
    let mut w = World::healthy(REV);
    w.runner_sa_present = false;
    let o = run(&t, &w, &Behavior::default(), 0);
    assert_eq!(o.row, Row::RunnerUnavailable);
    assert_eq!(o.requeue, Requeue::RateLimited);
    let (st, reason, msg) = ready(&o);
    assert_eq!(
        (st.as_str(), reason.as_str(), msg.as_str()),
        ("Unknown", "Progressing", "Deletion in progress")
    );
    assert!(!o.actions.iter().any(|a| matches!(a, Action::Event { .. })));
    assert!(!removes_finalizer(&o));
}

#[test]
fn row10_terminating_namespace_cannot_start_a_runner() {
    let t = tf(true);
    let mut w = World::healthy(REV);
    w.namespace_terminating = true;
    let o = run(&t, &w, &Behavior::default(), 0);
    assert_eq!(o.row, Row::RunnerUnavailable);
    assert_eq!(o.requeue, Requeue::RateLimited);
    assert!(!removes_finalizer(&o));
}

#[test]
fn row10_runner_needed_even_without_destroy() {
    let mut t = tf(true);
    t["spec"]["destroyResourcesOnDeletion"] = json!(false);
    let mut w = World::healthy(REV);
    w.runner_sa_present = false;
    assert_eq!(
        run(&t, &w, &Behavior::default(), 0).row,
        Row::RunnerUnavailable
    );
    w.runner_sa_present = true;
    w.source = SourceState::Missing;
    assert_eq!(run(&t, &w, &Behavior::default(), 0).row, Row::SourceMissing);
}

#[test]
fn row11_vars_from_missing() {
    let t = tf(true);
    let mut w = World::healthy(REV);
    w.missing_vars_from = vec![("Secret".into(), "db-creds".into())];
    let o = run(&t, &w, &Behavior::default(), 0);
    assert_eq!(o.row, Row::VarsFromMissing);
    let (st, reason, msg) = ready(&o);
    assert_eq!(
        (st.as_str(), reason.as_str()),
        ("False", reasons::VARS_GENERATION_FAILED)
    );
    assert_eq!(
        msg,
        "rpc error: code = Unknown desc = secrets \"db-creds\" not found"
    );
    assert_eq!(o.requeue, Requeue::RateLimited);
}

fn held_lock() -> LockView {
    LockView {
        holder: LockSpec {
            id: "lock-123".into(),
            who: "runner@old-tf-runner".into(),
            operation: "OperationTypeApply".into(),
            release_after: None,
        },
        created: "2026-11-26 20:00:00.000000000 +0000 UTC".into(),
    }
}

#[test]
fn row13_lock_held_sets_pending_and_plan_failed() {
    let t = tf(true);
    let mut w = World::healthy(REV);
    w.lock = Some(held_lock());
    let o = run(&t, &w, &Behavior::default(), 0);
    assert_eq!(o.row, Row::LockHeld);
    let st = last_status(&o);
    assert_eq!(st["lock"]["pending"], "lock-123");
    let (lst, lreason, lmsg) = cond::get(&st, cond::STATE_LOCKED).unwrap();
    assert_eq!(
        (lst.as_str(), lreason.as_str()),
        ("True", reasons::LOCK_HELD)
    );
    assert_eq!(lmsg, "Terraform Locked with Lock Identifier: lock-123");
    let (_, reason, msg) = ready(&o);
    assert_eq!(reason, reasons::PLAN_FAILED);
    assert!(msg.contains("error acquiring the state lock"), "{msg}");
    assert!(msg.contains("Who:       runner@old-tf-runner"));
    assert_eq!(o.requeue, Requeue::RateLimited);
}

#[test]
fn row12_force_unlock_yes_with_matching_id_unlocks_and_destroys() {
    let mut t = tf(true);
    t["status"]["lock"] = json!({"pending": "lock-123"});
    t["spec"]["tfstate"] = json!({"forceUnlock": "yes", "lockIdentifier": "lock-123"});
    let mut w = World::healthy(REV);
    w.lock = Some(held_lock());
    let o = run(&t, &w, &Behavior::default(), 0);
    assert!(o.actions.contains(&Action::ForceUnlock {
        id: "lock-123".into()
    }));
    assert_eq!(o.row, Row::Destroyed);
    // a mismatching identifier does nothing
    t["spec"]["tfstate"]["lockIdentifier"] = json!("other");
    let o = run(&t, &w, &Behavior::default(), 0);
    assert_eq!(o.row, Row::LockHeld);
    // auto unlocks whatever is pending
    t["spec"]["tfstate"] = json!({"forceUnlock": "auto"});
    let released = {
        let mut w2 = w.clone();
        w2.lock = None;
        run(&t, &w2, &Behavior::default(), 0)
    };
    // ...but force-unlocking a lock that is no longer held fails in setup, forever
    assert_eq!(released.row, Row::ForceUnlockFailed);
    assert_eq!(released.requeue, Requeue::RateLimited);
    assert_eq!(last_status(&released)["lock"]["pending"], "lock-123");
    let o = run(&t, &w, &Behavior::default(), 0);
    assert_eq!(o.row, Row::Destroyed);
    let st = o.actions.iter().find_map(|a| match a {
        Action::PatchStatus(s) if cond::get(s, cond::STATE_LOCKED).is_some() => Some(s.clone()),
        _ => None,
    });
    let st = st.expect("a status with StateLocked");
    assert_eq!(
        cond::get(&st, cond::STATE_LOCKED).unwrap().1,
        reasons::FORCE_UNLOCK
    );
    assert_eq!(st["lock"]["lastApplied"], "lock-123");
}

#[test]
fn row14_plan_failure() {
    let t = tf(true);
    let b = fail(FailStage::Plan, "No valid credential sources found", 1);
    let o = run(&t, &World::healthy(REV), &b, 0);
    assert_eq!(o.row, Row::PlanFailed);
    let (_, reason, msg) = ready(&o);
    assert_eq!(reason, reasons::PLAN_FAILED);
    assert_eq!(
        msg,
        "error running Plan: rpc error: code = Internal desc = exit status 1\n\nError: No valid credential sources found\n"
    );
    assert!(o.actions.contains(&Action::CountDestroyAttempt));
    // second attempt: behaviour moved on → success
    assert_eq!(run(&t, &World::healthy(REV), &b, 1).row, Row::Destroyed);
}

#[test]
fn row15_nothing_to_destroy_skips_apply() {
    let t = tf(true);
    let mut w = World::healthy(REV);
    w.state_resources = Some(0);
    let o = run(&t, &w, &Behavior::default(), 0);
    assert_eq!(o.row, Row::NothingToDestroy);
    assert!(removes_finalizer(&o));
    assert!(!o.actions.iter().any(|a| matches!(a, Action::Sleep(_))));
    let st = o.actions.iter().find_map(|a| match a {
        Action::PatchStatus(s) if cond::get(s, cond::PLAN).is_some() => Some(s.clone()),
        _ => None,
    });
    let (_, r, m) = cond::get(&st.unwrap(), cond::PLAN).unwrap();
    assert_eq!(
        (r.as_str(), m.as_str()),
        (
            reasons::PLANNED_NO_CHANGES,
            "No objects need to be destroyed"
        )
    );
    // no tfstate Secret at all is the same
    w.state_resources = None;
    assert_eq!(
        run(&t, &w, &Behavior::default(), 0).row,
        Row::NothingToDestroy
    );
    // or forced by the behaviour
    let b = Behavior {
        nothing_to_destroy: true,
        ..Default::default()
    };
    assert_eq!(
        run(&t, &World::healthy(REV), &b, 0).row,
        Row::NothingToDestroy
    );
}

#[test]
fn row16_apply_failure_is_retried_forever_without_counting() {
    let mut t = tf(true);
    t["spec"]["remediation"] = json!({"retries": 1});
    let msg = crate::tofu::messages::samples::AWS_THROTTLING;
    let b = Behavior {
        destroy: vec![DestroyAttempt::fail_forever(FailStage::Apply, msg)],
        destroy_duration: Duration::from_secs(40),
        ..Default::default()
    };
    for attempt in [0, 5, 500] {
        let o = run(&t, &World::healthy(REV), &b, attempt);
        assert_eq!(o.row, Row::ApplyFailed);
        assert_eq!(o.requeue, Requeue::RateLimited);
        let (st, reason, m) = ready(&o);
        assert_eq!(
            (st.as_str(), reason.as_str()),
            ("False", reasons::APPLY_FAILED)
        );
        assert!(m.starts_with("error running Apply: rpc error: code = Internal desc = exit status 1\n\nError: deleting EC2 VPC"));
        let s = last_status(&o);
        assert!(s.get("reconciliationFailures").is_none());
        assert_eq!(cond::get(&s, cond::APPLY).unwrap().1, reasons::APPLIED_FAIL);
        assert!(o.actions.contains(&Action::Sleep(Duration::from_secs(40))));
        assert!(!removes_finalizer(&o));
    }
}

/// The tfstate Secret the actions write, decoded: the resource names it holds.
fn written_state(o: &Outcome) -> Option<Vec<String>> {
    o.actions.iter().find_map(|a| match a {
        Action::ApplySecret(s) if s["metadata"]["name"] == "tfstate-default-bucket" => {
            let bytes = crate::tofu::encoding::base64_decode(s["data"]["tfstate"].as_str()?)?;
            let state: Value = serde_json::from_slice(&bytes).ok()?;
            Some(
                state["resources"]
                    .as_array()?
                    .iter()
                    .filter_map(|r| r["name"].as_str().map(str::to_owned))
                    .collect(),
            )
        }
        _ => None,
    })
}

#[test]
fn row16_a_failed_apply_writes_the_state_without_what_it_destroyed() {
    let t = tf(true);
    let entry = |name: &str, kind: &str, id: &str| crate::tofu::behavior::InventoryEntry {
        name: name.into(),
        kind: kind.into(),
        identifier: id.into(),
    };
    let b = Behavior {
        destroy: vec![DestroyAttempt::Fail {
            stage: FailStage::Apply,
            message: "DependencyViolation: resource sg-0a1b2c3d4e5f60718 has a dependent object"
                .into(),
            times: 2,
            forever: false,
            destroyed: vec!["f".into()],
        }],
        inventory: Some(vec![
            entry("f", "aws_lambda_function", "f"),
            entry("sg", "aws_security_group", "sg-0a1b2c3d4e5f60718"),
        ]),
        ..Default::default()
    };
    // The first failed apply destroyed the function before the error: the state it writes
    // keeps only the security group.
    let first = run(&t, &World::healthy(REV), &b, 0);
    assert_eq!(first.row, Row::ApplyFailed);
    assert_eq!(written_state(&first), Some(vec!["sg".to_owned()]));
    // A later failure that destroys nothing more leaves that state as it is: no write.
    let second = run(&t, &World::healthy(REV), &b, 1);
    assert_eq!(second.row, Row::ApplyFailed);
    assert_eq!(written_state(&second), None);
    // A failure that destroyed nothing leaves the state as it was: no write.
    let untouched = Behavior {
        destroy: vec![DestroyAttempt::fail(
            FailStage::Apply,
            "Throttling: Rate exceeded",
            1,
        )],
        ..Default::default()
    };
    assert_eq!(
        written_state(&run(&t, &World::healthy(REV), &untouched, 0)),
        None
    );
    // A plan that fails destroys nothing.
    let plan = Behavior {
        destroy: vec![DestroyAttempt::Fail {
            stage: FailStage::Plan,
            message: "No valid credential sources found".into(),
            times: 1,
            forever: false,
            destroyed: vec!["f".into()],
        }],
        ..b.clone()
    };
    assert_eq!(
        written_state(&run(&t, &World::healthy(REV), &plan, 0)),
        None
    );
}

#[test]
fn row17_19_21_destroy_success_deletes_outputs_keeps_tfstate_and_releases() {
    let t = tf(true);
    let b = Behavior {
        destroy_duration: Duration::from_secs(30),
        ..Default::default()
    };
    let o = run(&t, &World::healthy(REV), &b, 0);
    assert_eq!(o.row, Row::Destroyed);
    assert_eq!(o.requeue, Requeue::None);
    assert!(o
        .actions
        .contains(&Action::DeleteSecret("tfplan-default-bucket".into())));
    assert!(o
        .actions
        .contains(&Action::DeleteSecret("bucket-outputs".into())));
    assert!(!o
        .actions
        .iter()
        .any(|a| matches!(a, Action::DeleteSecret(n) if n.starts_with("tfstate-"))));
    // the tfstate Secret is rewritten with an empty state, not deleted
    let state = o.actions.iter().find_map(|a| match a {
        Action::ApplySecret(s) if s["metadata"]["name"] == "tfstate-default-bucket" => {
            Some(s.clone())
        }
        _ => None,
    });
    assert!(state.is_some());
    assert!(removes_finalizer(&o));
    assert_eq!(
        o.actions.last(),
        Some(&Action::RemoveFinalizer(TERRAFORM_FINALIZER.into()))
    );
    // the success message is the plain apply one (isDestroyPlan follows spec.destroy)
    assert!(o
        .actions
        .iter()
        .any(|a| matches!(a, Action::Event { message, .. } if message == "Applied successfully")));
}

#[test]
fn row19_outputs_secret_survives_when_there_is_no_plan_secret() {
    let mut t = tf(true);
    t["spec"]["destroyResourcesOnDeletion"] = json!(false);
    let mut w = World::healthy(REV);
    w.plan_secret_present = false;
    let o = run(&t, &w, &Behavior::default(), 0);
    assert_eq!(o.row, Row::ReleasedWithoutDestroy);
    assert!(!o
        .actions
        .iter()
        .any(|a| matches!(a, Action::DeleteSecret(_))));
    assert!(removes_finalizer(&o));
}

#[test]
fn row18_destroy_false_releases_without_destroy() {
    let mut t = tf(true);
    t["spec"]["destroyResourcesOnDeletion"] = json!(false);
    let b = fail(FailStage::Apply, "would fail", 100);
    let o = run(&t, &World::healthy(REV), &b, 0);
    assert_eq!(o.row, Row::ReleasedWithoutDestroy);
    assert!(!o.actions.contains(&Action::CountDestroyAttempt));
    assert!(removes_finalizer(&o));
    assert!(o
        .actions
        .contains(&Action::DeleteSecret("bucket-outputs".into())));
}

#[test]
fn row20_removes_own_dependant_finalizer_from_dependencies() {
    let mut t = tf(true);
    t["spec"]["dependsOn"] = json!([{"name": "vpc"}]);
    let mut dep = tf(false);
    dep["metadata"]["name"] = json!("vpc");
    dep["metadata"]["finalizers"] = json!([TERRAFORM_FINALIZER, "tf.dependency.of.bucket"]);
    let mut w = World::healthy(REV);
    w.dependencies = vec![DependencyView {
        namespace: "team-a".into(),
        name: "vpc".into(),
        object: Some(dep),
        outputs_secret_present: true,
    }];
    let o = run(&t, &w, &Behavior::default(), 0);
    assert_eq!(o.row, Row::Destroyed);
    assert!(o.actions.contains(&Action::RemoveDependencyFinalizer {
        namespace: "team-a".into(),
        name: "vpc".into(),
        finalizer: "tf.dependency.of.bucket".into(),
    }));
}

#[test]
fn row20_dependency_already_gone_blocks_forever() {
    let mut t = tf(true);
    t["spec"]["dependsOn"] = json!([{"name": "vpc"}]);
    let mut w = World::healthy(REV);
    w.dependencies = vec![DependencyView {
        namespace: "team-a".into(),
        name: "vpc".into(),
        object: None,
        outputs_secret_present: false,
    }];
    let o = run(&t, &w, &Behavior::default(), 0);
    assert_eq!(o.row, Row::DependencyGone);
    assert_eq!(o.requeue, Requeue::RateLimited);
    assert!(!removes_finalizer(&o));
}

#[test]
fn row23_normal_reconcile_plans_and_applies_with_auto() {
    let mut t = tf(false);
    t["status"] = json!({});
    t["spec"]["enableInventory"] = json!(true);
    let mut w = World::healthy(REV);
    w.state_resources = None;
    let o = run(&t, &w, &Behavior::default(), 0);
    assert_eq!(o.row, Row::Applied);
    let st = last_status(&o);
    assert_eq!(cond::get(&st, cond::READY).unwrap().0, "True");
    assert_eq!(st["lastAppliedRevision"], REV);
    assert_eq!(st["lastPlannedRevision"], REV);
    assert_eq!(st["inventory"]["entries"][0]["id"], "bucket-bucket");
    assert!(st["lastSuccessfulReconcileAt"].is_string());
    assert!(o.actions.iter().any(
        |a| matches!(a, Action::ApplySecret(s) if s["metadata"]["name"] == "tfstate-default-bucket")
    ));
    assert!(o
        .actions
        .iter()
        .any(|a| matches!(a, Action::ApplySecret(s) if s["metadata"]["name"] == "bucket-outputs")));
    assert_eq!(o.requeue, Requeue::After(Duration::from_secs(600)));
}

#[test]
fn row23_manual_approval_stops_with_plan_pending() {
    let mut t = tf(false);
    t["status"] = json!({});
    t["spec"]["approvePlan"] = json!("");
    let mut w = World::healthy(REV);
    w.state_resources = None;
    let o = run(&t, &w, &Behavior::default(), 0);
    assert_eq!(o.row, Row::AwaitingApproval);
    let st = last_status(&o);
    assert_eq!(st["plan"]["pending"], "plan-main-0123456789");
    let (rs, rr, rm) = cond::get(&st, cond::READY).unwrap();
    assert_eq!(
        (rs.as_str(), rr.as_str()),
        ("Unknown", reasons::PLANNED_WITH_CHANGES)
    );
    assert_eq!(
        rm,
        "Plan generated: set approvePlan: \"plan-main-0123456789\" to approve this plan."
    );
    assert_eq!(o.requeue, Requeue::None);
}

#[test]
fn row23_drift_detection_when_applied() {
    let mut t = tf(false);
    t["metadata"]["generation"] = json!(1);
    t["spec"]["approvePlan"] = json!("disable");
    let b = Behavior {
        drift: true,
        ..Default::default()
    };
    let o = run(&t, &World::healthy(REV), &b, 0);
    assert_eq!(o.row, Row::DriftDetected);
    let st = last_status(&o);
    assert!(st["lastDriftDetectedAt"].is_string());
    assert_eq!(
        cond::get(&st, cond::READY).unwrap().1,
        reasons::DRIFT_DETECTED
    );
    assert_eq!(st["reconciliationFailures"], 1);
    let o = run(&t, &World::healthy(REV), &Behavior::default(), 0);
    assert_eq!(o.row, Row::NoDrift);
}

#[test]
fn row24_not_due_waits_for_interval() {
    let mut t = tf(false);
    t["metadata"]["generation"] = json!(1);
    t["status"]["lastPlanAt"] = json!("2026-11-26T20:55:00Z");
    t["status"]["lastSuccessfulReconcileAt"] = json!("2026-11-26T20:55:00Z");
    let o = run(&t, &World::healthy(REV), &Behavior::default(), 0);
    assert_eq!(o.row, Row::NotDue);
    assert_eq!(o.requeue, Requeue::After(Duration::from_secs(300)));
    // a new requestedAt makes it due
    t["metadata"]["annotations"] = json!({"reconcile.fluxcd.io/requestedAt": "x"});
    let o = run(&t, &World::healthy(REV), &Behavior::default(), 0);
    assert_ne!(o.row, Row::NotDue);
    assert_eq!(last_status(&o)["lastHandledReconcileAt"], "x");
}

#[test]
fn plan_ids_match_upstream_format() {
    use crate::tofu::reconcile::plan_id;
    assert_eq!(
        plan_id("main@sha1:b8e362c206e3d0cbb7ed22ced771a0056455a2fb"),
        "plan-main-b8e362c206"
    );
    assert_eq!(
        plan_id("master/b8e362c206e3d0cbb7ed22ced771a0056455a2fb"),
        "plan-master-b8e362c206"
    );
    assert_eq!(
        plan_id("latest@sha256:abcdef0123456789"),
        "plan-latest-abcdef0123"
    );
}

#[test]
fn base64_round_trip() {
    use crate::tofu::reconcile::{base64_decode, base64_encode};
    for s in ["", "a", "ab", "abc", "{\"version\":4}"] {
        assert_eq!(
            base64_decode(&base64_encode(s.as_bytes())).unwrap(),
            s.as_bytes()
        );
    }
    assert_eq!(base64_encode(b"hello"), "aGVsbG8=");
}

/// Tiny deterministic generator (xorshift64*), so the property run needs no extra crate.
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        self.0.wrapping_mul(0x2545_f491_4f6c_dd1d)
    }
    fn pick(&mut self, n: u64) -> u64 {
        self.next() % n
    }
    fn flip(&mut self) -> bool {
        self.pick(2) == 0
    }
}

/// Randomised worlds on the deletion path: the finalizer goes exactly when the real
/// controller would let it go, it is always the last action, and every other outcome
/// requeues (nothing on the deletion path gives up).
#[test]
fn deletion_path_properties_over_random_worlds() {
    let mut rng = Rng(0x9e37_79b9_7f4a_7c15);
    let mut released = 0;
    for case in 0..5000 {
        let mut t = tf(true);
        let suspend = rng.pick(8) == 0;
        let destroy = rng.pick(4) != 0;
        let dependants = rng.pick(5) == 0;
        t["spec"]["suspend"] = json!(suspend);
        t["spec"]["destroyResourcesOnDeletion"] = json!(destroy);
        if dependants {
            t["metadata"]["finalizers"] = json!([TERRAFORM_FINALIZER, "tf.dependency.of.app"]);
        }
        let force_unlock = rng.pick(4) == 0;
        if force_unlock {
            t["spec"]["tfstate"] = json!({"forceUnlock": "auto"});
            t["status"]["lock"] = json!({"pending": "lock-123"});
        }
        let dep_state = rng.pick(3); // 0 none, 1 present, 2 gone
        let mut w = World::healthy(REV);
        w.source = match rng.pick(6) {
            0 => SourceState::Missing,
            1 => SourceState::NoArtifact,
            _ => SourceState::Ready {
                revision: REV.into(),
            },
        };
        w.runner_sa_present = rng.pick(6) != 0;
        w.namespace_terminating = rng.pick(10) == 0;
        if rng.pick(6) == 0 {
            w.missing_vars_from = vec![("Secret".into(), "db".into())];
        }
        let lock = rng.pick(6) == 0;
        if lock {
            w.lock = Some(held_lock());
        }
        w.state_resources = match rng.pick(4) {
            0 => None,
            1 => Some(0),
            _ => Some(1),
        };
        w.plan_secret_present = rng.flip();
        if dep_state > 0 {
            t["spec"]["dependsOn"] = json!([{"name": "vpc"}]);
            let mut dep = tf(false);
            dep["metadata"]["name"] = json!("vpc");
            w.dependencies = vec![DependencyView {
                namespace: "team-a".into(),
                name: "vpc".into(),
                object: (dep_state == 1).then_some(dep),
                outputs_secret_present: true,
            }];
        }
        let nothing = rng.pick(6) == 0;
        let outcome_kind = rng.pick(3); // 0 succeed, 1 plan fail, 2 apply fail
        let b = Behavior {
            nothing_to_destroy: nothing,
            destroy: match outcome_kind {
                0 => vec![],
                1 => vec![DestroyAttempt::fail_forever(FailStage::Plan, "x")],
                _ => vec![DestroyAttempt::fail_forever(FailStage::Apply, "y")],
            },
            ..Default::default()
        };
        let attempts = rng.pick(5) as u32;
        let o = run(&t, &w, &b, attempts);

        // The driver skips GETs past the point where the controller stops; the outcome must
        // not depend on what it skipped.
        let staged = if suspend || dependants {
            World::only_source(SourceState::Missing)
        } else if !matches!(w.source, SourceState::Ready { .. }) {
            World::only_source(w.source.clone())
        } else if !w.runner_sa_present || w.namespace_terminating {
            World {
                runner_sa_present: w.runner_sa_present,
                namespace_terminating: w.namespace_terminating,
                dependencies: w.dependencies.clone(),
                ..World::only_source(w.source.clone())
            }
        } else {
            w.clone()
        };
        assert_eq!(
            run(&t, &staged, &b, attempts),
            o,
            "case {case}: staged observation changed the outcome"
        );

        let source_ok = matches!(w.source, SourceState::Ready { .. });
        let runner_ok = w.runner_sa_present && !w.namespace_terminating;
        let empty = nothing || w.state_resources.unwrap_or(0) == 0;
        let lock_effective = lock && !force_unlock;
        let unlock_fails = force_unlock && !lock;
        let destroy_ok = !destroy
            || (w.missing_vars_from.is_empty()
                && !unlock_fails
                && !lock_effective
                && outcome_kind != 1
                && (empty || outcome_kind == 0));
        let expect_release =
            !suspend && !dependants && source_ok && runner_ok && destroy_ok && dep_state != 2;

        let removes = removes_finalizer(&o);
        assert_eq!(
            removes, expect_release,
            "case {case}: row {:?}, world {w:?}, spec {:#}",
            o.row, t["spec"]
        );
        if removes {
            released += 1;
            assert_eq!(
                o.actions.last(),
                Some(&Action::RemoveFinalizer(TERRAFORM_FINALIZER.into())),
                "case {case}"
            );
            assert_eq!(o.requeue, Requeue::None);
        } else if suspend {
            assert_eq!(
                o.requeue,
                Requeue::None,
                "case {case}: suspended waits for an event"
            );
            assert_eq!(o.actions.len(), 1);
        } else {
            assert_ne!(
                o.requeue,
                Requeue::None,
                "case {case}: row {:?} gave up",
                o.row
            );
        }
        assert!(
            !o.actions
                .iter()
                .any(|a| matches!(a, Action::AddDependencyFinalizer { .. })),
            "case {case}: no dependant finalizers are added while deleting"
        );
        assert!(
            !o.actions
                .iter()
                .any(|a| matches!(a, Action::DeleteSecret(n) if n.starts_with("tfstate-"))),
            "case {case}: the tfstate Secret is never deleted"
        );
        let s = last_status(&o);
        assert!(
            s.get("reconciliationFailures").is_none(),
            "case {case}: failures not counted while deleting"
        );
    }
    assert!(
        released > 200,
        "the generator reaches the release rows ({released})"
    );
}

#[test]
fn state_outside_the_cluster_writes_no_tfstate_secret() {
    let mut t = tf(true);
    t["spec"]["backendConfig"] =
        json!({"customConfiguration": "backend \"s3\" {\n  bucket = \"acme-tfstate\"\n}"});
    let o = run(&t, &World::healthy(REV), &Behavior::default(), 0);
    assert_eq!(o.row, Row::Destroyed);
    assert!(o
        .actions
        .contains(&Action::WriteRemoteState { resources: 0 }));
    assert!(!o.actions.iter().any(|a| matches!(a, Action::ApplySecret(s) if s["metadata"]["name"].as_str().unwrap_or("").starts_with("tfstate-"))));
    assert!(!crate::tofu::reconcile::state_in_cluster(&t));
    t["spec"]["backendConfig"] = json!({"secretSuffix": "shop-bucket", "inClusterConfig": true});
    assert!(crate::tofu::reconcile::state_in_cluster(&t));
    t["spec"]["cloud"] = json!({"organization": "acme", "workspaces": {"name": "w"}});
    assert!(!crate::tofu::reconcile::state_in_cluster(&t));
}

#[test]
fn secret_suffix_names_the_tfstate_secret_and_the_lock_lease() {
    use crate::tofu::reconcile::{lock_lease_name, tfstate_secret_name};
    let mut t = tf(false);
    assert_eq!(tfstate_secret_name(&t), "tfstate-default-bucket");
    t["spec"]["backendConfig"] = json!({"secretSuffix": "shop-orders-db", "inClusterConfig": true});
    t["spec"]["workspace"] = json!("prod");
    assert_eq!(tfstate_secret_name(&t), "tfstate-prod-shop-orders-db");
    assert_eq!(lock_lease_name(&t), "lock-tfstate-prod-shop-orders-db");
    let o = run(
        &t,
        &World {
            state_resources: None,
            ..World::healthy(REV)
        },
        &Behavior::default(),
        0,
    );
    assert!(o.actions.iter().any(|a| matches!(a, Action::ApplySecret(s) if s["metadata"]["name"] == "tfstate-prod-shop-orders-db" && s["metadata"]["labels"]["tfstateSecretSuffix"] == "shop-orders-db")));
}

fn run_with_runner(tf: &Value, behavior: &Behavior, runner: super::RunnerTiming) -> Outcome {
    reconcile(Input {
        terraform: tf,
        world: &World::healthy(REV),
        behavior,
        destroy_attempts: 0,
        now: now(),
        runner,
    })
}

fn realistic_runner(start: u64) -> super::RunnerTiming {
    super::RunnerTiming {
        pods: true,
        start: Duration::from_secs(start),
        creation_timeout: Duration::from_secs(120),
        dial: Duration::from_secs(1),
    }
}

/// Position of the first action matching `f`.
fn pos(o: &Outcome, f: impl Fn(&Action) -> bool) -> usize {
    o.actions.iter().position(f).expect("action present")
}

#[test]
fn row10b_runner_pod_starts_before_anything_runs_and_goes_at_the_end() {
    // The old simulation had no runner pod and no start latency: a deletion reconcile
    // answered at once. Upstream waits for the pod (up to 120 s) and dials it (≤ 30 s)
    // before setup, and deletes the pod in a defer before the deferred status patch.
    let t = tf(true);
    let b = Behavior {
        destroy_duration: Duration::from_secs(300),
        ..Default::default()
    };
    let o = run_with_runner(&t, &b, realistic_runner(90));
    assert_eq!(o.row, Row::Destroyed);
    let create = pos(&o, |a| *a == Action::RunnerPod(super::PodStep::Create));
    let wait = pos(&o, |a| *a == Action::Sleep(Duration::from_secs(90)));
    let running = pos(&o, |a| *a == Action::RunnerPod(super::PodStep::Running));
    let initializing = pos(
        &o,
        |a| matches!(a, Action::PatchStatus(s) if cond::get(s, cond::READY).is_some_and(|(_, _, m)| m == "Initializing")),
    );
    let destroying = pos(&o, |a| *a == Action::DestroyInFlight(true));
    let destroyed = pos(&o, |a| *a == Action::DestroyInFlight(false));
    let delete = pos(&o, |a| *a == Action::RunnerPod(super::PodStep::Delete));
    assert!(create < wait && wait < running && running < initializing);
    assert!(initializing < destroying && destroying < destroyed && destroyed < delete);
    // While the destroy runs the CR says so: Apply=Unknown is patched before the Sleep.
    let apply_unknown = pos(
        &o,
        |a| matches!(a, Action::PatchStatus(s) if cond::get(s, cond::APPLY).is_some_and(|(st, _, _)| st == "Unknown")),
    );
    assert!(apply_unknown < destroying);
}

#[test]
fn row2_the_echo_comes_only_with_the_last_status_patch() {
    // `lastHandledReconcileAt` is written by the deferred patch at the end of Reconcile
    // (controllers/tf_controller.go lines 162–180): never before the runner has started
    // and the destroy has run.
    let mut t = tf(true);
    t["metadata"]["annotations"] =
        json!({"reconcile.fluxcd.io/requestedAt": "2026-11-26T21:00:00.5Z"});
    let b = Behavior {
        destroy_duration: Duration::from_secs(60),
        ..Default::default()
    };
    let o = run_with_runner(&t, &b, realistic_runner(45));
    let patches: Vec<&Value> = o
        .actions
        .iter()
        .filter_map(|a| match a {
            Action::PatchStatus(s) => Some(s),
            _ => None,
        })
        .collect();
    let echoed: Vec<bool> = patches
        .iter()
        .map(|s| s["lastHandledReconcileAt"] == "2026-11-26T21:00:00.5Z")
        .collect();
    assert!(echoed.len() > 2);
    assert_eq!(echoed.iter().filter(|e| **e).count(), 1, "{echoed:?}");
    let last_sleep = o
        .actions
        .iter()
        .rposition(|a| matches!(a, Action::Sleep(_)))
        .unwrap();
    let echo_at = o
        .actions
        .iter()
        .position(|a| matches!(a, Action::PatchStatus(s) if s["lastHandledReconcileAt"] == "2026-11-26T21:00:00.5Z"))
        .unwrap();
    assert!(echo_at > last_sleep, "echoed only after the destroy ran");
}

#[test]
fn row10b_runner_creation_timeout_fails_the_reconcile_with_nothing_new_in_status() {
    // `LookupOrCreateRunner` gives up after --runner-creation-timeout (120 s), force-kills
    // the pod and returns "failed to create and obtain pod ip" (tf_controller_runner.go
    // lines 536–549): rate-limited, status as row 9 left it (Ready Unknown "Deletion in
    // progress"), the request echoed by the deferred patch.
    let t = tf(true);
    let o = run_with_runner(&t, &Behavior::default(), realistic_runner(150));
    assert_eq!(o.row, Row::RunnerTimeout);
    assert_eq!(o.requeue, Requeue::RateLimited);
    assert!(o.actions.contains(&Action::Sleep(Duration::from_secs(120))));
    assert_eq!(
        o.actions
            .iter()
            .filter(|a| **a == Action::RunnerPod(super::PodStep::Delete))
            .count(),
        1
    );
    assert!(!o
        .actions
        .iter()
        .any(|a| matches!(a, Action::CountDestroyAttempt)));
    let (st, reason, msg) = ready(&o);
    assert_eq!((st.as_str(), reason.as_str()), ("Unknown", "Progressing"));
    assert_eq!(msg, "Deletion in progress");
}

#[test]
fn row4_finalize_reads_the_destroy_flag_once_at_its_start() {
    // The whole reconcile is decided on the object read at its start: a patch of
    // destroyResourcesOnDeletion=false while the destroy runs changes nothing for it
    // (tf_controller_finalizer.go line 30 reads the spec once; the Apply RPC blocks).
    let t = tf(true);
    let b = Behavior {
        destroy_duration: Duration::from_secs(600),
        ..Default::default()
    };
    let o = run_with_runner(&t, &b, realistic_runner(5));
    assert_eq!(o.row, Row::Destroyed);
    let sleep = pos(&o, |a| *a == Action::Sleep(Duration::from_secs(600)));
    assert!(o.actions[sleep..].iter().any(
        |a| matches!(a, Action::ApplySecret(s) if s["metadata"]["name"] == "tfstate-default-bucket")
    ));
}
