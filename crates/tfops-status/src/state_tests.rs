//! One test per state of the mapping (and per variant of the rules that lead to it).

use super::*;
use crate::fixtures::{into_state, ledger_item, terraform};
use serde_json::{json, Value};

fn cr(state: State) -> Value {
    let mut v = terraform("apps", "shop", "db", "shop-db");
    into_state(&mut v, state);
    v
}

fn assess_one(v: &Value) -> Assessment {
    assess(&TerraformView::new(v), None)
}

fn at() -> DateTime<Utc> {
    "2026-11-26T12:05:00Z".parse().unwrap_or_default()
}

#[test]
fn ready() {
    let a = assess_one(&cr(State::Ready));
    assert_eq!(a.state, State::Ready);
    assert_eq!(a.reason.as_deref(), Some("TerraformOutputsWritten"));
    assert_eq!(a.health(), Health::Healthy);
}

#[test]
fn ready_with_a_newer_generation_is_reconciling() {
    let mut v = cr(State::Ready);
    v["metadata"]["generation"] = json!(2);
    let a = assess_one(&v);
    assert_eq!(a.state, State::Reconciling);
    assert!(a
        .message
        .starts_with("spec changed (generation 2, observed 1)"));
}

#[test]
fn reconciling() {
    let a = assess_one(&cr(State::Reconciling));
    assert_eq!(a.state, State::Reconciling);
    assert_eq!(a.message, "Initializing");
    assert_eq!(a.health(), Health::Progressing);
}

#[test]
fn no_status_is_reconciling() {
    let a = assess_one(&terraform("apps", "shop", "db", "shop-db"));
    assert_eq!(a.state, State::Reconciling);
    assert_eq!(a.message, "not reconciled yet");
}

#[test]
fn planning() {
    let a = assess_one(&cr(State::Planning));
    assert_eq!(a.state, State::Planning);
    assert_eq!(a.health(), Health::Progressing);
}

#[test]
fn plan_pending_with_the_exact_approve_command() {
    let a = assess_one(&cr(State::PlanPending));
    assert_eq!(a.state, State::PlanPending);
    assert_eq!(a.health(), Health::Unhealthy);
    let plan = a.pending_plan.unwrap_or_else(|| panic!("plan expected"));
    assert_eq!(plan.id, "plan-main-4f0e1b2c3d");
    assert_eq!(
        plan.approve_command.as_deref(),
        Some(
            r#"kubectl patch terraform shop-db -n apps --type merge -p '{"spec":{"approvePlan":"plan-main-4f0e1b2c3d"}}'"#
        )
    );
}

#[test]
fn plan_pending_in_plan_only_mode_has_no_approve_command() {
    let mut v = cr(State::PlanPending);
    v["spec"]["planOnly"] = json!(true);
    let a = assess_one(&v);
    assert_eq!(a.state, State::PlanPending);
    let plan = a.pending_plan.unwrap_or_else(|| panic!("plan expected"));
    assert!(plan.plan_only);
    assert_eq!(plan.approve_command, None);
}

#[test]
fn approved_or_auto_pending_plan_is_not_plan_pending() {
    let mut v = cr(State::PlanPending);
    v["spec"]["approvePlan"] = json!("plan-main-4f0e1b2c3d");
    assert_eq!(assess_one(&v).state, State::Reconciling);
    v["spec"]["approvePlan"] = json!("auto");
    assert_eq!(assess_one(&v).state, State::Reconciling);
    // Item 7: upstream also applies when approvePlan is a prefix of the plan id.
    v["spec"]["approvePlan"] = json!("plan-main-4f0");
    assert_eq!(assess_one(&v).state, State::Reconciling);
    v["spec"]["approvePlan"] = json!("plan-main-9");
    assert_eq!(assess_one(&v).state, State::PlanPending);
}

#[test]
fn drifted_in_detect_only_mode() {
    let a = assess_one(&cr(State::Drifted));
    assert_eq!(a.state, State::Drifted);
    assert!(a.detect_only);
    assert_eq!(a.reason.as_deref(), Some("DriftDetected"));
    let mut v = cr(State::Drifted);
    v["spec"]["approvePlan"] = json!("");
    assert!(!assess_one(&v).detect_only);
}

#[test]
fn failed() {
    let a = assess_one(&cr(State::Failed));
    assert_eq!(a.state, State::Failed);
    assert_eq!(a.reason.as_deref(), Some("TFExecApplyFailed"));
    assert!(a.message.contains("AccessDenied"));
}

#[test]
fn stalled() {
    let a = assess_one(&cr(State::Stalled));
    assert_eq!(a.state, State::Stalled);
    assert_eq!(a.reason.as_deref(), Some("RetryLimitReached"));
}

#[test]
fn suspended() {
    let a = assess_one(&cr(State::Suspended));
    assert_eq!(a.state, State::Suspended);
    assert_eq!(a.health(), Health::Unhealthy);
}

#[test]
fn destroying() {
    let a = assess_one(&cr(State::Destroying));
    assert_eq!(a.state, State::Destroying);
    assert_eq!(a.health(), Health::Progressing);
}

#[test]
fn destroy_failed_with_attempts_and_escalation() {
    let a = assess_one(&cr(State::DestroyFailed));
    assert_eq!(a.state, State::DestroyFailed);
    assert_eq!(a.reason.as_deref(), Some("TFExecApplyFailed"));
    let d = a.destroy.unwrap_or_else(|| panic!("progress expected"));
    assert_eq!(d.attempts, 2);
    assert_eq!(d.escalates_at, "2026-11-26T12:04:00Z".parse().ok());
}

#[test]
fn destroy_failed_from_guard_progress_alone() {
    let mut v = cr(State::DestroyFailed);
    v["status"]["conditions"][0]["status"] = json!("Unknown");
    v["status"]["conditions"][0]["reason"] = json!("Progressing");
    let a = assess_one(&v);
    assert_eq!(a.state, State::DestroyFailed);
    assert_eq!(a.reason.as_deref(), Some("TFExecApplyFailed"));
}

#[test]
fn blocked_by_missing_source_while_deleting() {
    let a = assess_one(&cr(State::Blocked));
    assert_eq!(a.state, State::Blocked);
    assert_eq!(a.blocked_by.as_deref(), Some("source artifact unavailable"));
}

#[test]
fn blocked_by_suspend_while_deleting() {
    let mut v = cr(State::Destroying);
    v["spec"]["suspend"] = json!(true);
    let a = assess_one(&v);
    assert_eq!(a.state, State::Blocked);
    assert_eq!(a.blocked_by.as_deref(), Some("suspend"));
}

#[test]
fn blocked_by_dependants_while_deleting() {
    let mut v = cr(State::Destroying);
    v["metadata"]["finalizers"] = json!([
        "finalizers.tf.contrib.fluxcd.io",
        "tf.dependency.of.shop-app"
    ]);
    let a = assess_one(&v);
    assert_eq!(a.state, State::Blocked);
    assert_eq!(a.blocked_by.as_deref(), Some("dependants: shop-app"));
}

/// What tofu-controller v0.16.5 leaves in Ready after a lock error: the `LockHeld` reason is
/// overwritten by `TFExecPlanFailed`; the lock is named only by the message.
const LOCK_FAILURE: &str = "error running Plan: rpc error: code = Internal desc = error acquiring the state lock: Error acquiring the state lock\n\nError message: the state is already locked\nLock Info:\n  ID:        f2ab685b-f84d\n  Path:      \n  Operation: OperationTypeApply\n  Who:       runner@shop-db-tf-runner\n  Version:   1.5.7\n  Created:   2026-11-26 11:00:00 +0000 UTC\n  Info:      \n";

#[test]
fn blocked_by_lock_while_deleting_and_while_live() {
    let mut v = cr(State::Destroying);
    v["status"]["lock"] = json!({"pending": "f2ab685b-f84d"});
    v["status"]["conditions"][0] = json!({"type": "Ready", "status": "False", "reason": "TFExecPlanFailed",
        "message": LOCK_FAILURE});
    let a = assess_one(&v);
    assert_eq!(a.state, State::Blocked);
    assert_eq!(
        a.blocked_by.as_deref(),
        Some("state lock held (lock id f2ab685b-f84d, holder runner@shop-db-tf-runner)")
    );
    let obj = v
        .as_object_mut()
        .and_then(|o| o.get_mut("metadata"))
        .and_then(Value::as_object_mut);
    if let Some(m) = obj {
        m.remove("deletionTimestamp");
    }
    let a = assess_one(&v);
    assert_eq!(a.state, State::Blocked);
    assert_eq!(a.reason.as_deref(), Some("LockHeld"));
}

#[test]
fn a_stale_lock_signal_is_not_a_lock() {
    // Item 6: StateLocked=True and status.lock.pending outlive the lock; a later failure for
    // another cause is that failure, not "lock held".
    let mut v = cr(State::Destroying);
    v["status"]["lock"] = json!({"pending": "f2ab685b-f84d"});
    v["status"]["conditions"] = json!([
        {"type": "Ready", "status": "False", "reason": "TFExecApplyFailed",
         "message": "error running Apply: rpc error: code = Internal desc = Error: deleting S3 Bucket (shop-assets): BucketNotEmpty"},
        {"type": "StateLocked", "status": "True", "reason": "LockHeld",
         "message": "Terraform Locked with Lock Identifier: f2ab685b-f84d"}
    ]);
    let a = assess_one(&v);
    assert_eq!(a.state, State::DestroyFailed, "{a:?}");
    assert_eq!(a.reason.as_deref(), Some("TFExecApplyFailed"));
}

#[test]
fn blocked_by_guard_policy() {
    let mut v = cr(State::Destroying);
    v["metadata"]["annotations"]["tfops.dev/guard-progress"] = json!(
        json!({"attempts": 3, "phase": "blocked", "lastFailureReason": "TFExecApplyFailed"})
            .to_string()
    );
    let a = assess_one(&v);
    assert_eq!(a.state, State::Blocked);
    assert_eq!(a.destroy.map(|d| d.attempts), Some(3));
}

#[test]
fn orphaned_from_the_ledger() {
    let item = ledger_item(
        "apps",
        "shop",
        "db",
        "shop-db",
        "u-1",
        LedgerDecision::Orphaned,
        at(),
    );
    let a = assess_ledger_only(&item);
    assert_eq!(a.state, State::Orphaned);
    assert_eq!(a.cleanup.as_deref(), Some("open"));
    assert!(a
        .message
        .contains("helm tfops orphans destroy tfops-ledger-shop-db-u1"));
    assert_eq!(a.health(), Health::Unhealthy);
}

#[test]
fn force_removed_from_the_ledger_and_healthy_once_cleaned() {
    let mut item = ledger_item(
        "apps",
        "shop",
        "db",
        "shop-db",
        "u-1",
        LedgerDecision::ForceRemoved,
        at(),
    );
    assert_eq!(assess_ledger_only(&item).state, State::ForceRemoved);
    item.record.entry.cleanup.state = crate::ledger::CleanupState::Destroyed;
    let a = assess_ledger_only(&item);
    assert_eq!(a.state, State::ForceRemoved);
    assert_eq!(a.health(), Health::Healthy);
}

#[test]
fn a_live_cr_with_its_ledger_entry_is_orphaned_but_not_one_with_another_uid() {
    let v = cr(State::Destroying);
    let uid = TerraformView::new(&v).uid().to_owned();
    let same = ledger_item(
        "apps",
        "shop",
        "db",
        "shop-db",
        &uid,
        LedgerDecision::Orphaned,
        at(),
    );
    assert_eq!(
        assess(&TerraformView::new(&v), Some(&same)).state,
        State::Orphaned
    );
    let other = ledger_item(
        "apps",
        "shop",
        "db",
        "shop-db",
        "other",
        LedgerDecision::Orphaned,
        at(),
    );
    assert_eq!(
        assess(&TerraformView::new(&v), Some(&other)).state,
        State::Destroying
    );
}

#[test]
fn every_state_is_reachable_from_the_fixtures() {
    for s in State::ALL {
        let got = if matches!(s, State::Orphaned | State::ForceRemoved) {
            let d = if s == State::Orphaned {
                LedgerDecision::Orphaned
            } else {
                LedgerDecision::ForceRemoved
            };
            assess_ledger_only(&ledger_item("apps", "shop", "db", "shop-db", "u", d, at())).state
        } else {
            assess_one(&cr(s)).state
        };
        assert_eq!(got, s);
    }
}

#[test]
fn shell_quoting() {
    assert_eq!(shell_quote("plain-name"), "plain-name");
    assert_eq!(shell_quote("it's"), r"'it'\''s'");
    assert_eq!(shell_quote(""), "''");
}

#[test]
fn destroying_shows_the_guard_phase() {
    let mut v = cr(State::Destroying);
    v["metadata"]["annotations"]["tfops.dev/guard-progress"] =
        json!(json!({"attempts": 0, "phase": "orphaning"}).to_string());
    let report = crate::report::build(
        &[v],
        &[],
        crate::report::Scope {
            namespaces: Some(vec!["apps".into()]),
            release: Some("shop".into()),
        },
        at(),
    );
    assert_eq!(report.items[0].state, State::Destroying);
    let text = crate::render::render(
        &report,
        &crate::render::RenderOptions {
            format: crate::render::Format::Table,
            color: false,
            now: at(),
        },
    )
    .unwrap_or_default();
    assert!(
        text.contains("guard: orphaning; Reconciliation in progress"),
        "{text}"
    );
}
