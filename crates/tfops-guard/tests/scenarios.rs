//! One scenario per row of the guard's fault matrix, against the real in-process API server
//! over HTTP with the tofu-controller simulation, on paused (virtual) tokio time. Each asserts
//! the outcome, the ledger entries (written before the finalizer went), the guard's Events,
//! and that the run ended within its budget.

use crate::support;

use std::time::Duration;

use serde_json::json;

use support::*;
use tfops_guard::engine::RunStatus;
use tfops_guard::machine::Outcome;
use tfops_testcluster::tofu::behavior::{Behavior, DestroyAttempt, FailStage};
use tfops_testcluster::tofu::messages::samples;

fn outcome(report: &tfops_guard::engine::GuardReport, name: &str) -> Option<Outcome> {
    report
        .crs
        .iter()
        .find(|c| c.name == name)
        .unwrap_or_else(|| panic!("{name} not in report: {report:#?}"))
        .outcome
}

fn fail_forever(msg: &str) -> Behavior {
    Behavior {
        destroy: vec![DestroyAttempt::fail_forever(FailStage::Apply, msg)],
        ..Behavior::default()
    }
}

#[tokio::test(start_paused = true)]
async fn clean_uninstall_destroys_everything_with_few_requests() {
    let rig = Rig::start().await;
    rig.release(&[
        Module::new("db"),
        Module::new("bucket"),
        Module::new("queue"),
    ])
    .await;
    let before = rig.guard_requests();
    let (report, took) = rig.guard(opts(240)).await;
    assert_eq!(report.status, RunStatus::Finished, "{}", report.render());
    for n in ["db", "bucket", "queue"] {
        assert_eq!(
            outcome(&report, n),
            Some(Outcome::Destroyed),
            "{}",
            report.render()
        );
        assert!(rig.gone(n));
        assert!(
            rig.ledger_entry(NS, n).is_none(),
            "no ledger for a destroyed CR"
        );
        assert!(rig
            .guard_events(n)
            .iter()
            .any(|(r, _)| r == "TfopsGuardDelete"));
    }
    assert!(took <= Duration::from_secs(240));
    let requests = rig.guard_requests() - before;
    println!("clean uninstall: {requests} guard requests for 3 CRs, {took:?} virtual");
    // ≤ 4 per CR (3 to delete and follow it, 1 to read its state before the DELETE, for the
    // holder checks of its siblings and its own) + constant (LIST + WATCH).
    assert!(
        requests <= 4 * 3 + 2,
        "{requests} requests: {:#?}",
        rig.cluster
            .requests()
            .all()
            .into_iter()
            .filter(|r| r.user == GUARD_USER)
            .collect::<Vec<_>>()
    );
    assert_eq!(report.exit_code(), 0);
}

#[tokio::test(start_paused = true)]
async fn depends_on_chain_is_deleted_dependants_first() {
    let rig = Rig::start().await;
    rig.release(&[
        Module::new("vpc"),
        Module::new("db").depends_on(&["vpc"]),
        Module::new("app").depends_on(&["db"]),
    ])
    .await;
    let (report, took) = rig.guard(opts(240)).await;
    assert_eq!(report.status, RunStatus::Finished, "{}", report.render());
    for n in ["vpc", "db", "app"] {
        assert_eq!(
            outcome(&report, n),
            Some(Outcome::Destroyed),
            "{}",
            report.render()
        );
    }
    // DELETE order in the request log: app, db, vpc.
    let deletes: Vec<String> = rig
        .cluster
        .requests()
        .all()
        .into_iter()
        .filter(|r| r.user == GUARD_USER && r.method == "DELETE" && r.resource == "terraforms")
        .map(|r| r.name)
        .collect();
    assert_eq!(deletes, ["app", "db", "vpc"]);
    assert!(took <= Duration::from_secs(240));
}

#[tokio::test(start_paused = true)]
async fn transient_failure_is_retried_until_it_succeeds() {
    let rig = Rig::start().await;
    rig.release(&[Module::new("db").behavior(Behavior {
        destroy: vec![DestroyAttempt::fail(
            FailStage::Apply,
            samples::AWS_THROTTLING,
            2,
        )],
        ..Behavior::default()
    })])
    .await;
    let (report, took) = rig.guard(opts(240)).await;
    assert_eq!(
        outcome(&report, "db"),
        Some(Outcome::Destroyed),
        "{}",
        report.render()
    );
    assert!(rig.ledger_entry(NS, "db").is_none());
    assert!(took <= Duration::from_secs(240));
    assert_eq!(report.exit_code(), 0);
}

#[tokio::test(start_paused = true)]
async fn permanent_failure_orphans_with_a_ledger_entry_first() {
    let rig = Rig::start().await;
    rig.release(&[Module::new("db").behavior(fail_forever(samples::AWS_ACCESS_DENIED))])
        .await;
    let (report, took) = rig.guard(opts(240)).await;
    assert_eq!(
        outcome(&report, "db"),
        Some(Outcome::Orphaned),
        "{}",
        report.render()
    );
    assert!(rig.gone("db"));
    let entry = rig.ledger_entry(NS, "db").expect("ledger entry");
    assert_eq!(entry["decision"], "orphaned");
    assert_eq!(entry["release"], RELEASE);
    assert_eq!(entry["tfstateSecret"], "tfstate-default-db");
    assert_eq!(entry["tfstateCopied"], true);
    assert_eq!(entry["class"], "permanent");
    assert!(entry["inventory"].as_array().is_some_and(|i| !i.is_empty()));
    assert_ledger_before_release(&rig, "db");
    assert!(rig
        .guard_events("db")
        .iter()
        .any(|(r, _)| r == "TfopsGuardOrphaned"));
    assert!(took <= Duration::from_secs(240));
    assert_eq!(report.exit_code(), 0);
}

/// The run's observer (the guard Job's JSON log, `helm tfops uninstall`'s progress) hears every
/// action the Events record, in order, and the final outcome with the failure's class and the
/// classifier rule that decided it.
#[tokio::test(start_paused = true)]
async fn the_observer_hears_each_decision_in_order_with_its_reason() {
    use std::sync::{Arc, Mutex};
    use tfops_guard::engine::{DecisionRecord, Observer};

    let rig = Rig::start().await;
    rig.release(&[Module::new("db").behavior(fail_forever(samples::AWS_ACCESS_DENIED))])
        .await;
    let heard: Arc<Mutex<Vec<DecisionRecord>>> = Arc::default();
    let sink = heard.clone();
    let mut o = opts(240);
    o.observer = Some(Observer::new(move |r| sink.lock().unwrap().push(r.clone())));
    let (report, _) = rig.guard(o).await;
    assert_eq!(outcome(&report, "db"), Some(Outcome::Orphaned));
    let heard = heard.lock().unwrap().clone();
    let actions: Vec<&str> = heard
        .iter()
        .filter(|r| r.is_action())
        .map(|r| r.decision.as_str())
        .collect();
    assert_eq!(actions.first(), Some(&"delete"), "{heard:#?}");
    assert!(actions.contains(&"orphan"), "{actions:?}");
    let last = heard.last().expect("records");
    assert_eq!(
        (
            last.name.as_str(),
            last.decision.as_str(),
            last.outcome.as_deref()
        ),
        ("db", "done", Some("orphaned"))
    );
    assert_eq!(
        last.class,
        Some(tfops_guard::classify::FailureClass::Permanent)
    );
    let orphan = heard.iter().find(|r| r.decision == "orphan").unwrap();
    assert!(
        orphan
            .rule
            .as_deref()
            .is_some_and(|r| r.contains("AccessDenied")),
        "{orphan:#?}"
    );
    // In the order they were made: elapsed never goes backwards.
    for pair in heard.windows(2) {
        assert!(pair[0].elapsed <= pair[1].elapsed);
    }
    // One Kubernetes Event per action the observer heard (waits and the outcome are not Events).
    let events = rig.guard_events("db");
    assert_eq!(
        events.len(),
        actions.iter().filter(|a| **a != "done").count(),
        "{events:?} vs {actions:?}"
    );
}

#[tokio::test(start_paused = true)]
async fn permanent_failure_with_policy_force_strips_finalizers_after_the_ledger() {
    let rig = Rig::start().await;
    rig.release(&[Module::new("db")
        .behavior(fail_forever(samples::AWS_DELETION_PROTECTION))
        .on_failure("force")])
        .await;
    let (report, took) = rig.guard(opts(240)).await;
    assert_eq!(
        outcome(&report, "db"),
        Some(Outcome::ForceRemoved),
        "{}",
        report.render()
    );
    assert!(rig.gone("db"));
    let entry = rig.ledger_entry(NS, "db").expect("ledger entry");
    assert_eq!(entry["decision"], "force-removed");
    assert_ledger_before_release(&rig, "db");
    // Outputs were copied before the CR went (the controller never cleaned them up).
    let ledger = rig
        .ledger_entries(NS)
        .into_iter()
        .find(|s| s["metadata"]["labels"]["tfops.dev/cr-namespace"] == NS)
        .unwrap();
    assert!(ledger["data"]
        .as_object()
        .unwrap()
        .keys()
        .any(|k| k.starts_with("outputs.")));
    assert!(ledger["data"]
        .as_object()
        .unwrap()
        .keys()
        .any(|k| k.starts_with("tfstate.")));
    assert!(rig
        .guard_events("db")
        .iter()
        .any(|(r, _)| r == "TfopsGuardForceRemoved"));
    assert!(took <= Duration::from_secs(240));
    assert_eq!(report.exit_code(), 0);
}

#[tokio::test(start_paused = true)]
async fn permanent_failure_with_policy_block_fails_with_a_next_step() {
    let rig = Rig::start().await;
    rig.release(&[Module::new("db")
        .behavior(fail_forever(samples::AWS_ACCESS_DENIED))
        .on_failure("block")])
        .await;
    let (report, took) = rig.guard(opts(240)).await;
    assert_eq!(
        outcome(&report, "db"),
        Some(Outcome::Blocked),
        "{}",
        report.render()
    );
    assert_eq!(report.status, RunStatus::Blocked);
    assert_eq!(report.exit_code(), 2);
    // Nothing was released: the CR and its finalizer stay, no ledger entry.
    assert!(!rig.gone("db"));
    assert!(rig.ledger_entry(NS, "db").is_none());
    let text = report.render();
    assert!(text.contains("next step for team-a/db"), "{text}");
    assert!(rig
        .guard_events("db")
        .iter()
        .any(|(r, _)| r == "TfopsGuardBlocked"));
    assert!(took <= Duration::from_secs(240));
}

#[tokio::test(start_paused = true)]
async fn nothing_to_destroy() {
    let rig = Rig::start().await;
    rig.release(&[Module::new("empty").behavior(Behavior {
        nothing_to_destroy: true,
        ..Behavior::default()
    })])
    .await;
    let (report, took) = rig.guard(opts(240)).await;
    assert_eq!(
        outcome(&report, "empty"),
        Some(Outcome::NothingToDestroy),
        "{}",
        report.render()
    );
    assert!(rig.ledger_entry(NS, "empty").is_none());
    assert!(took <= Duration::from_secs(240));
}

#[tokio::test(start_paused = true)]
async fn source_deleted_first_force_removes_with_ledger() {
    let rig = Rig::start().await;
    rig.release(&[Module::new("db")]).await;
    rig.cluster
        .store()
        .delete("source.toolkit.fluxcd.io/v1", "OCIRepository", NS, "db-src")
        .unwrap();
    let (report, took) = rig.guard(opts(240)).await;
    // Neither destroy nor orphan can run without the source: force, after the ledger.
    assert_eq!(
        outcome(&report, "db"),
        Some(Outcome::ForceRemoved),
        "{}",
        report.render()
    );
    assert_ledger_before_release(&rig, "db");
    let entry = rig.ledger_entry(NS, "db").unwrap();
    assert_eq!(entry["reason"], "missing-dependency");
    assert!(took <= Duration::from_secs(240));
    assert_eq!(report.exit_code(), 0);
}

#[tokio::test(start_paused = true)]
async fn runner_service_account_missing_force_removes_with_ledger() {
    let rig = Rig::start().await;
    rig.release(&[Module::new("db")]).await;
    rig.cluster
        .store()
        .delete("v1", "ServiceAccount", NS, "tf-runner")
        .unwrap();
    let (report, took) = rig.guard(opts(240)).await;
    assert_eq!(
        outcome(&report, "db"),
        Some(Outcome::ForceRemoved),
        "{}",
        report.render()
    );
    assert_ledger_before_release(&rig, "db");
    assert!(took <= Duration::from_secs(240));
}

#[tokio::test(start_paused = true)]
async fn vars_from_missing_orphans_with_ledger() {
    let rig = Rig::start().await;
    rig.release(&[Module::new("db").vars_from("db-vars")]).await;
    rig.cluster
        .store()
        .delete("v1", "Secret", NS, "db-vars")
        .unwrap();
    let (report, took) = rig.guard(opts(240)).await;
    // The destroy needs the vars; releasing without destroy does not.
    assert_eq!(
        outcome(&report, "db"),
        Some(Outcome::Orphaned),
        "{}",
        report.render()
    );
    assert_ledger_before_release(&rig, "db");
    assert!(took <= Duration::from_secs(240));
}

fn stale_lock(who: &str) -> Behavior {
    Behavior {
        lock: Some(tfops_testcluster::tofu::LockSpec {
            id: "9db590f1-b6fe-c5f2-2f24-b1d3f0e2c7a4".into(),
            who: who.into(),
            operation: "OperationTypeApply".into(),
            release_after: None,
        }),
        ..Behavior::default()
    }
}

#[tokio::test(start_paused = true)]
async fn lock_held_by_a_dead_holder_is_force_unlocked_then_destroyed() {
    // Item 4: force-unlock only when allowed (tfops.dev/force-unlock), when the current
    // failure names the lock and its holder was this CR's own earlier runner pod.
    let rig = Rig::start().await;
    rig.release(&[Module::new("db").annotate("tfops.dev/force-unlock", "true")])
        .await;
    // A crashed run of this CR's own runner left its lock on the state.
    rig.sim
        .as_ref()
        .unwrap()
        .set_behavior(NS, "db", stale_lock("runner@db-tf-runner"));
    let (report, took) = rig.guard(opts(240)).await;
    assert_eq!(
        outcome(&report, "db"),
        Some(Outcome::Destroyed),
        "{}",
        report.render()
    );
    let events = rig.guard_events("db");
    assert!(events.iter().any(|(r, _)| r == "TfopsGuardForceUnlock"));
    assert!(
        events.iter().any(|(r, _)| r == "TfopsGuardRestoreTfstate"),
        "spec.tfstate is reset after the unlock: {events:?}"
    );
    assert!(rig.ledger_entry(NS, "db").is_none());
    assert!(took <= Duration::from_secs(240));
}

#[tokio::test(start_paused = true)]
async fn lock_held_by_someone_else_is_never_force_unlocked() {
    // Item 4: a lock whose holder is another host (a human, another CR's runner) may be
    // alive: never force-unlocked, even with the policy on; the destroy is orphaned.
    let rig = Rig::start().await;
    rig.release(&[Module::new("db").annotate("tfops.dev/force-unlock", "true")])
        .await;
    rig.sim
        .as_ref()
        .unwrap()
        .set_behavior(NS, "db", stale_lock("alice@laptop"));
    let (report, _) = rig.guard(opts(240)).await;
    assert!(
        !rig.guard_events("db")
            .iter()
            .any(|(r, _)| r == "TfopsGuardForceUnlock"),
        "{}",
        report.render()
    );
    assert_eq!(
        outcome(&report, "db"),
        Some(Outcome::Orphaned),
        "{}",
        report.render()
    );
}

#[tokio::test(start_paused = true)]
async fn controller_absent_force_removes_with_ledger() {
    let mut rig = Rig::start().await;
    rig.release(&[Module::new("db")]).await;
    rig.sim.take().unwrap().stop();
    let (report, took) = rig.guard(opts(240)).await;
    assert_eq!(
        outcome(&report, "db"),
        Some(Outcome::ForceRemoved),
        "{}",
        report.render()
    );
    assert_ledger_before_release(&rig, "db");
    assert_eq!(
        rig.ledger_entry(NS, "db").unwrap()["reason"],
        "controller-absent"
    );
    assert!(took <= Duration::from_secs(240));
}

#[tokio::test(start_paused = true)]
async fn namespace_terminating_uses_the_ledger_namespace() {
    let rig = Rig::start().await;
    rig.release(&[Module::new("db").behavior(Behavior {
        destroy_duration: Duration::from_secs(600),
        ..Behavior::default()
    })])
    .await;
    rig.cluster.store().set_namespace_terminating(NS).unwrap();
    let mut o = opts(240);
    o.ledger_namespace = Some("tfops-ledger".into());
    let (report, took) = rig.guard(o).await;
    assert_eq!(
        outcome(&report, "db"),
        Some(Outcome::ForceRemoved),
        "{}",
        report.render()
    );
    assert!(rig.ledger_entry("tfops-ledger", "db").is_some());
    assert_ledger_before_release(&rig, "db");
    assert!(took <= Duration::from_secs(240));
}

#[tokio::test(start_paused = true)]
async fn namespace_terminating_without_writable_ledger_keeps_the_cr_and_fails() {
    let rig = Rig::start().await;
    rig.release(&[Module::new("db").behavior(Behavior {
        destroy_duration: Duration::from_secs(600),
        ..Behavior::default()
    })])
    .await;
    rig.cluster.store().set_namespace_terminating(NS).unwrap();
    let (report, took) = rig.guard(opts(120)).await;
    // The ledger cannot be written: nothing is released, the run says so (exit 3).
    assert_eq!(report.status, RunStatus::Unfinished, "{}", report.render());
    assert_eq!(report.exit_code(), 3);
    let tf = rig.tf("db");
    assert!(tf["metadata"]["finalizers"]
        .as_array()
        .unwrap()
        .iter()
        .any(|f| f == TF_FINALIZER));
    let text = report.render();
    assert!(text.contains("ledger"), "{text}");
    assert!(took <= Duration::from_secs(120));
}

#[tokio::test(start_paused = true)]
async fn suspended_cr_is_unsuspended_then_destroyed() {
    let rig = Rig::start().await;
    let mut m = Module::new("db");
    m.suspend = true;
    rig.release(&[m]).await;
    let (report, took) = rig.guard(opts(240)).await;
    assert_eq!(
        outcome(&report, "db"),
        Some(Outcome::Destroyed),
        "{}",
        report.render()
    );
    assert!(rig
        .guard_events("db")
        .iter()
        .any(|(r, _)| r == "TfopsGuardUnsuspend"));
    assert!(took <= Duration::from_secs(240));
}

#[tokio::test(start_paused = true)]
async fn api_faults_5xx_409_and_watch_drops_are_survived() {
    use tfops_testcluster::{FaultRule, Verb};
    let rig = Rig::start().await;
    rig.release(&[Module::new("vpc"), Module::new("db").depends_on(&["vpc"])])
        .await;
    let f = rig.cluster.faults();
    f.add(
        FaultRule::status(503)
            .user(GUARD_USER)
            .verb(Verb::Delete)
            .times(2),
    );
    f.add(
        FaultRule::status(409)
            .user(GUARD_USER)
            .verb(Verb::Patch)
            .times(2),
    );
    f.add(
        FaultRule::status(500)
            .user(GUARD_USER)
            .verb(Verb::List)
            .times(1),
    );
    f.add(FaultRule::drop_watch_after(1).user(GUARD_USER).times(3));
    let (report, took) = rig.guard(opts(240)).await;
    assert_eq!(report.status, RunStatus::Finished, "{}", report.render());
    assert_eq!(outcome(&report, "vpc"), Some(Outcome::Destroyed));
    assert_eq!(outcome(&report, "db"), Some(Outcome::Destroyed));
    assert!(rig.ledger_entries(NS).is_empty());
    assert!(took <= Duration::from_secs(240));
}

#[tokio::test(start_paused = true)]
async fn guard_killed_midway_continues_on_rerun_and_is_idempotent() {
    let rig = Rig::start().await;
    rig.release(&[Module::new("db")
        .behavior(fail_forever(samples::AWS_THROTTLING))
        .annotate("tfops.dev/retries", "2")])
        .await;
    // First run: killed after 25 s of virtual time (mid-retry).
    let client = rig.guard_client();
    let task = tokio::spawn(tfops_guard::engine::run_guard(
        client,
        opts(240),
        tfops_guard::clock::Clock::start(),
    ));
    tokio::time::sleep(Duration::from_secs(25)).await;
    task.abort();
    let _ = task.await;
    let tf = rig.tf("db");
    let progress: serde_json::Value = serde_json::from_str(
        tf["metadata"]["annotations"]["tfops.dev/guard-progress"]
            .as_str()
            .expect("progress persisted"),
    )
    .unwrap();
    let attempts_before = progress["attempts"].as_u64().unwrap_or(0);
    assert!(attempts_before >= 1, "{progress:#}");
    assert!(!rig.gone("db"));
    // Second run continues (attempts carried over) and finishes: retries exhausted → orphan.
    let (report, took) = rig.guard(opts(240)).await;
    assert_eq!(
        outcome(&report, "db"),
        Some(Outcome::Orphaned),
        "{}",
        report.render()
    );
    let entry = rig.ledger_entry(NS, "db").unwrap();
    assert!(entry["attempts"].as_u64().unwrap() >= attempts_before);
    assert_eq!(entry["reason"], "retries-exhausted");
    assert_ledger_before_release(&rig, "db");
    assert!(took <= Duration::from_secs(240));
    // Third run: nothing left; no new writes.
    let ledgers = rig.ledger_entries(NS).len();
    let (report, _) = rig.guard(opts(240)).await;
    assert!(report.crs.is_empty());
    assert_eq!(report.exit_code(), 0);
    assert_eq!(rig.ledger_entries(NS).len(), ledgers);
}

/// Guard overhead beyond the simulated destroy time, in virtual time: one CR whose destroy
/// takes 60 s. Printed (no timing assertion); the outcome is asserted.
#[tokio::test(start_paused = true)]
async fn overhead_beyond_a_slow_destroy_in_virtual_time() {
    let rig = Rig::start().await;
    rig.release(&[Module::new("db").behavior(Behavior {
        destroy_duration: Duration::from_secs(60),
        ..Behavior::default()
    })])
    .await;
    let (report, took) = rig.guard(opts(240)).await;
    assert_eq!(
        outcome(&report, "db"),
        Some(Outcome::Destroyed),
        "{}",
        report.render()
    );
    println!(
        "virtual: destroy 60s, guard run {:?}, overhead {:?}",
        took,
        took.saturating_sub(Duration::from_secs(60))
    );
}

/// Guard overhead in REAL wall time (clock not paused), 5 CRs with instant destroys:
/// overhead = (first DELETE seen by the store − guard start) + (guard end − last CR gone);
/// the time in between is the simulated controller's own work. Printed; outcome asserted.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn overhead_in_real_wall_time() {
    let rig = Rig::start().await;
    let modules: Vec<Module> = (0..5).map(|i| Module::new(&format!("m{i}"))).collect();
    rig.release(&modules).await;
    let store = rig.cluster.store().clone();
    let mut changes = store.subscribe();
    let watcher = tokio::spawn(async move {
        let mut first_delete = None;
        loop {
            if changes.changed().await.is_err() {
                return (first_delete, None);
            }
            let crs = store.list(TF, "Terraform", NS);
            let now = std::time::Instant::now();
            if first_delete.is_none()
                && crs
                    .iter()
                    .any(|c| !c["metadata"]["deletionTimestamp"].is_null())
            {
                first_delete = Some(now);
            }
            if crs.is_empty() {
                return (first_delete, Some(now));
            }
        }
    });
    let start = std::time::Instant::now();
    let (report, _) = rig.guard(opts(240)).await;
    let end = std::time::Instant::now();
    assert_eq!(report.status, RunStatus::Finished, "{}", report.render());
    let (first_delete, all_gone) = watcher.await.unwrap();
    let (first_delete, all_gone) = (first_delete.unwrap(), all_gone.unwrap());
    let before = first_delete.duration_since(start);
    let after = end.duration_since(all_gone);
    println!(
        "real: guard run {:?} over 5 CRs; guard overhead {:?} (start→first DELETE {:?}, last CR gone→exit {:?}); controller work {:?}",
        end - start,
        before + after,
        before,
        after,
        all_gone.duration_since(first_delete)
    );
}

#[tokio::test(start_paused = true)]
async fn retain_policy_orphans_with_a_ledger_entry_and_no_destroy() {
    let rig = Rig::start().await;
    rig.release(&[Module::new("db").annotate("tfops.dev/uninstall-policy", "retain")])
        .await;
    let (report, took) = rig.guard(opts(240)).await;
    assert_eq!(
        outcome(&report, "db"),
        Some(Outcome::Orphaned),
        "{}",
        report.render()
    );
    assert_eq!(
        rig.ledger_entry(NS, "db").unwrap()["reason"],
        "retain-policy"
    );
    assert_ledger_before_release(&rig, "db");
    // The cloud resources were kept: the simulation never ran a destroy.
    assert_eq!(
        rig.sim.as_ref().unwrap().stats(NS, "db").destroy_attempts,
        0
    );
    assert!(took <= Duration::from_secs(240));
}

#[tokio::test(start_paused = true)]
async fn invalid_policy_annotation_is_reported_and_a_safe_fallback_used() {
    let rig = Rig::start().await;
    rig.release(&[Module::new("db").annotate("tfops.dev/on-failure", "explode")])
        .await;
    let (report, _) = rig.guard(opts(240)).await;
    assert_eq!(
        outcome(&report, "db"),
        Some(Outcome::Destroyed),
        "{}",
        report.render()
    );
    let events = rig.guard_events("db");
    assert!(
        events
            .iter()
            .any(|(r, m)| r == "TfopsGuardInvalidPolicy" && m.contains("tfops.dev/on-failure")),
        "{events:?}"
    );
}

#[tokio::test(start_paused = true)]
async fn a_dependency_used_from_another_namespace_is_never_released() {
    // Item 3: `dependsOn` may name another namespace and `tf.dependency.of.<name>` carries only
    // the dependant's name. The old guard looked in the CR's own namespace, called the
    // dependant gone, dropped its finalizer as stale and destroyed a dependency still in use.
    let rig = Rig::start().await;
    rig.release(&[Module::new("network")]).await;
    // `app` in namespace `team-b` (not part of the release) depends on team-a/network; the
    // controller has put its finalizer on the dependency.
    rig.cluster
        .store()
        .create(json!({"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": "team-b"}}))
        .ok();
    rig.cluster
        .store()
        .create(json!({
            "apiVersion": TF, "kind": "Terraform",
            "metadata": {"name": "app", "namespace": "team-b"},
            "spec": {"interval": "10m", "path": "./", "sourceRef": {"kind": "OCIRepository", "name": "app-src"},
                     "dependsOn": [{"name": "network", "namespace": NS}]}
        }))
        .unwrap();
    rig.cluster
        .store()
        .patch_merge(
            TF,
            "Terraform",
            NS,
            "network",
            &json!({"metadata": {"finalizers": [TF_FINALIZER, "tf.dependency.of.app"]}}),
        )
        .unwrap();
    let (report, took) = rig.guard(opts(120)).await;
    let cr = report.crs.iter().find(|c| c.name == "network").unwrap();
    assert_eq!(cr.outcome, None, "{}", report.render());
    assert_eq!(report.exit_code(), 3);
    assert!(cr.why.contains("app"), "{}", report.render());
    assert!(!rig.gone("network"), "the dependency must stay");
    let fins = rig.tf("network")["metadata"]["finalizers"].clone();
    assert!(
        fins.as_array()
            .unwrap()
            .iter()
            .any(|f| f == "tf.dependency.of.app"),
        "the dependant's finalizer stays: {fins}"
    );
    assert!(rig.ledger_entry(NS, "network").is_none());
    assert!(took <= Duration::from_secs(120));
}

fn realistic(runner_start_secs: u64) -> tfops_testcluster::tofu::SimConfig {
    tfops_testcluster::tofu::SimConfig {
        timing: tfops_testcluster::tofu::SimTiming {
            runner_start: tfops_testcluster::tofu::RunnerStart::Fixed(Duration::from_secs(
                runner_start_secs,
            )),
            ..tfops_testcluster::tofu::SimTiming::realistic(1)
        },
        ..tfops_testcluster::tofu::SimConfig::default()
    }
}

#[tokio::test(start_paused = true)]
async fn a_slow_runner_on_a_cold_node_is_waited_for_and_the_destroy_finishes() {
    // Item 1: the runner pod takes 110 s to start and the echo comes only at the end of the
    // reconcile (after a 60 s destroy). The old guard called the controller absent after
    // 45 s of silence and force-removed a healthy CR.
    let rig = Rig::start_with(realistic(110)).await;
    rig.release(&[Module::new("db").behavior(Behavior {
        destroy_duration: Duration::from_secs(60),
        ..Behavior::default()
    })])
    .await;
    let (report, took) = rig.guard(opts(240)).await;
    assert_eq!(
        outcome(&report, "db"),
        Some(Outcome::Destroyed),
        "{}",
        report.render()
    );
    assert!(rig.ledger_entry(NS, "db").is_none());
    let st = rig.sim.as_ref().unwrap().stats(NS, "db");
    assert_eq!((st.destroys_completed, st.destroys_cut), (1, 0), "{st:?}");
    assert!(took <= Duration::from_secs(240));
}

#[tokio::test(start_paused = true)]
async fn a_destroy_longer_than_the_budget_is_never_cut() {
    // Item 2: the CR's own timeout (60 s) and then the budget end while terraform destroys:
    // no orphan patch, no finalizer strip, no ledger; the run ends unfinished (exit 3) and
    // the destroy completes on its own afterwards.
    let rig = Rig::start_with(realistic(20)).await;
    rig.release(&[Module::new("db")
        .annotate("tfops.dev/timeout", "60s")
        .behavior(Behavior {
            destroy_duration: Duration::from_secs(600),
            ..Behavior::default()
        })])
    .await;
    let (report, took) = rig.guard(opts(240)).await;
    assert_eq!(report.exit_code(), 3, "{}", report.render());
    assert_eq!(outcome(&report, "db"), None);
    assert!(
        report.render().contains("never interrupts"),
        "{}",
        report.render()
    );
    assert!(rig.ledger_entry(NS, "db").is_none());
    let sim = rig.sim.as_ref().unwrap();
    let st = sim.stats(NS, "db");
    assert_eq!(st.destroys_cut, 0, "{st:?}");
    assert_eq!(st.orphan_patch_during_destroy, 0);
    assert!(took <= Duration::from_secs(241));
    // The controller finishes on its own; a second run finds nothing to do.
    assert!(rig.wait(|| rig.gone("db"), 600).await);
    assert_eq!(sim.stats(NS, "db").destroys_completed, 1);
    let (again, _) = rig.guard(opts(60)).await;
    assert_eq!(again.exit_code(), 0, "{}", again.render());
}

#[tokio::test(start_paused = true)]
async fn a_suspended_cr_with_pending_changes_is_deleted_before_it_is_unsuspended() {
    // Item 5: un-suspending first starts a normal reconcile, which with approvePlan: auto
    // plans and applies the pending change just before the destroy.
    let rig = Rig::start_with(realistic(5)).await;
    rig.release(&[Module::new("db")]).await;
    let store = rig.cluster.store();
    store
        .patch_merge(
            TF,
            "Terraform",
            NS,
            "db",
            &json!({"spec": {"suspend": true}}),
        )
        .unwrap();
    // A change made while suspended (new generation, not applied).
    store
        .patch_merge(
            TF,
            "Terraform",
            NS,
            "db",
            &json!({"spec": {"vars": [{"name": "size", "value": "large"}]}}),
        )
        .unwrap();
    let sim = rig.sim.as_ref().unwrap();
    let applies_before = sim.stats(NS, "db").applies.len();
    let (report, _) = rig.guard(opts(240)).await;
    assert_eq!(
        outcome(&report, "db"),
        Some(Outcome::Destroyed),
        "{}",
        report.render()
    );
    let st = sim.stats(NS, "db");
    assert_eq!(
        st.applies.len(),
        applies_before,
        "the guard triggered an apply: {st:?}"
    );
}

/// One `status.inventory` entry (and state resource) of a simulated module.
fn inventory_entry(
    name: &str,
    kind: &str,
    id: &str,
) -> tfops_testcluster::tofu::behavior::InventoryEntry {
    tfops_testcluster::tofu::behavior::InventoryEntry {
        name: name.to_owned(),
        kind: kind.to_owned(),
        identifier: id.to_owned(),
    }
}

/// A network whose destroy fails because a firewall still uses it. The googleapi text names
/// the holder; whether the failure is worth a retry depends on who manages that firewall.
fn network_used_by(firewall: &str, fails: u32, firewall_destroy: Duration) -> [Module; 2] {
    let entry = |name: &str, kind: &str, id: &str| Some(vec![inventory_entry(name, kind, id)]);
    let message = format!(
        "Error: Error waiting for Deleting Network: The network resource 'projects/acme/global/networks/core' is already being used by '{firewall}'\n\n  with google_compute_network.core,\n  on main.tf line 1, in resource \"google_compute_network\" \"core\":"
    );
    [
        Module::new("network").behavior(Behavior {
            destroy: vec![DestroyAttempt::fail(FailStage::Apply, message, fails)],
            inventory: entry(
                "core",
                "google_compute_network",
                "projects/acme/global/networks/core",
            ),
            ..Behavior::default()
        }),
        Module::new("firewall").behavior(Behavior {
            destroy_duration: firewall_destroy,
            inventory: entry(
                "allow_ssh",
                "google_compute_firewall",
                "projects/acme/global/firewalls/allow-ssh",
            ),
            ..Behavior::default()
        }),
    ]
}

/// An in-use failure leans permanent from its text, but when the holder it names is in the
/// state of a `Terraform` the same uninstall is destroying, it goes with that destroy: the
/// guard retries instead of orphaning.
#[tokio::test(start_paused = true)]
async fn an_in_use_failure_whose_holder_this_uninstall_destroys_is_retried() {
    let rig = Rig::start().await;
    rig.release(&network_used_by(
        "projects/acme/global/firewalls/allow-ssh",
        3,
        Duration::from_secs(90),
    ))
    .await;
    let (report, took) = rig.guard(opts(300)).await;
    for n in ["network", "firewall"] {
        assert_eq!(
            outcome(&report, n),
            Some(Outcome::Destroyed),
            "{n}: {}",
            report.render()
        );
        assert!(rig.ledger_entry(NS, n).is_none(), "{n} has a ledger entry");
    }
    // Never escalated: no orphan, no force-removal (the controller's own next attempt passed
    // once the guard held back).
    assert!(!rig
        .guard_events("network")
        .iter()
        .any(|(r, _)| r == "TfopsGuardOrphaned" || r == "TfopsGuardForceRemoved"));
    assert!(took <= Duration::from_secs(300));
}

/// The same text with a holder no state of the release manages (created outside Terraform):
/// orphaned at once, with a ledger entry, instead of retried until the budget ends.
#[tokio::test(start_paused = true)]
async fn an_in_use_failure_whose_holder_is_outside_the_release_is_orphaned_at_once() {
    let rig = Rig::start().await;
    rig.release(&network_used_by(
        "projects/acme/global/firewalls/made-by-hand",
        u32::MAX,
        Duration::from_secs(90),
    ))
    .await;
    let (report, _) = rig.guard(opts(300)).await;
    assert_eq!(
        outcome(&report, "network"),
        Some(Outcome::Orphaned),
        "{}",
        report.render()
    );
    let entry = rig.ledger_entry(NS, "network").expect("ledger entry");
    assert_eq!(entry["class"], "permanent");
    assert!(!rig
        .guard_events("network")
        .iter()
        .any(|(r, _)| r == "TfopsGuardRetry"));
    assert_eq!(outcome(&report, "firewall"), Some(Outcome::Destroyed));
}

/// A holder managed by a `Terraform` the failing one depends on never makes the failure
/// transient: the guard deletes that dependency only after the failing CR is gone, so waiting
/// for it would wait forever.
#[tokio::test(start_paused = true)]
async fn an_in_use_holder_managed_by_a_dependency_does_not_make_it_transient() {
    let rig = Rig::start().await;
    let [network, firewall] = network_used_by(
        "projects/acme/global/firewalls/allow-ssh",
        u32::MAX,
        Duration::from_secs(10),
    );
    rig.release(&[network.depends_on(&["firewall"]), firewall])
        .await;
    let (report, _) = rig.guard(opts(300)).await;
    assert_eq!(
        outcome(&report, "network"),
        Some(Outcome::Orphaned),
        "{}",
        report.render()
    );
    assert!(!rig
        .guard_events("network")
        .iter()
        .any(|(r, _)| r == "TfopsGuardRetry"));
}

/// The holder's `Terraform` finished its destroy before the guard looked at the failure: its
/// state is empty and the CR gone, but its last-seen inventory named the holder, so the holder
/// went with this uninstall and the failure is retried, not orphaned.
#[tokio::test(start_paused = true)]
async fn an_in_use_holder_destroyed_moments_before_the_check_still_counts() {
    let rig = Rig::start().await;
    let [mut network, firewall] = network_used_by(
        "projects/acme/global/firewalls/allow-ssh",
        2,
        Duration::from_millis(200),
    );
    // The network's failing destroy runs long enough for the firewall's to finish first.
    network.behavior.destroy_duration = Duration::from_secs(30);
    rig.release(&[network, firewall]).await;
    let (report, _) = rig.guard(opts(300)).await;
    for n in ["network", "firewall"] {
        assert_eq!(
            outcome(&report, n),
            Some(Outcome::Destroyed),
            "{n}: {}",
            report.render()
        );
    }
    assert!(rig.ledger_entry(NS, "network").is_none());
}

/// A subnet whose destroy fails with AWS `DependencyViolation`, which names no holder, while
/// an instance in another `Terraform` of the release (no `dependsOn` between them, so the
/// guard deletes both at once) is being destroyed. `instance_subnet` is the `subnet_id` the
/// instance's state records; the network's own state also has a network interface in the
/// subnet (Terraform orders that one itself: it never makes the failure transient). The
/// simulation wraps the diagnostic as tofu-controller does (`error running Apply: rpc error:
/// … exit status 1`).
fn subnet_held_by_instance(instance_subnet: &str, fails: u32) -> [Module; 2] {
    const SUBNET: &str = "subnet-0a1b2c3d4e5f60718";
    let entry = inventory_entry;
    let uses = |subnet: &str| {
        let mut attributes = serde_json::Map::new();
        attributes.insert("subnet_id".into(), serde_json::json!(subnet));
        attributes
    };
    let message = format!(
        "Error: deleting EC2 Subnet ({SUBNET}): operation error EC2: DeleteSubnet, https response error StatusCode: 400, RequestID: 5f3c1c1e-8c3a-4b9e-9b1e-0c1d2e3f4a5b, api error DependencyViolation: The subnet '{SUBNET}' has dependencies and cannot be deleted.\n\n  with aws_subnet.private,\n  on main.tf line 12, in resource \"aws_subnet\" \"private\":"
    );
    [
        Module::new("network").behavior(Behavior {
            destroy: vec![DestroyAttempt::fail(FailStage::Apply, message, fails)],
            inventory: Some(vec![
                entry("private", "aws_subnet", SUBNET),
                entry("probe", "aws_network_interface", "eni-0a1b2c3d4e5f60718"),
            ]),
            state_attributes: [("probe".to_owned(), uses(SUBNET))].into_iter().collect(),
            ..Behavior::default()
        }),
        Module::new("app").behavior(Behavior {
            destroy_duration: Duration::from_secs(90),
            inventory: Some(vec![entry("web", "aws_instance", "i-0123456789abcdef0")]),
            state_attributes: [("web".to_owned(), uses(instance_subnet))]
                .into_iter()
                .collect(),
            ..Behavior::default()
        }),
    ]
}

fn all_destroyed_without_escalation(report: &tfops_guard::engine::GuardReport, rig: &Rig) {
    for n in ["network", "app"] {
        assert_eq!(
            outcome(report, n),
            Some(Outcome::Destroyed),
            "{n}: {}",
            report.render()
        );
        assert!(rig.ledger_entry(NS, n).is_none(), "{n} has a ledger entry");
    }
    assert!(!rig
        .guard_events("network")
        .iter()
        .any(|(r, _)| r == "TfopsGuardOrphaned" || r == "TfopsGuardForceRemoved"));
}

/// The text names no holder, but the release's other `Terraform`, which this uninstall is
/// destroying, has an instance in the subnet: the failure goes with that destroy and is
/// retried, not orphaned.
#[tokio::test(start_paused = true)]
async fn a_dependency_violation_on_what_a_sibling_being_destroyed_uses_is_retried() {
    let rig = Rig::start().await;
    rig.release(&subnet_held_by_instance("subnet-0a1b2c3d4e5f60718", 2))
        .await;
    let (report, took) = rig.guard(opts(300)).await;
    all_destroyed_without_escalation(&report, &rig);
    assert!(took <= Duration::from_secs(300));
}

/// The instance's destroy finished before the guard looked at the subnet's failure: its state
/// is empty by then, but the guard read it before deleting its CR, so the instance still
/// counts as going with this uninstall.
#[tokio::test(start_paused = true)]
async fn a_dependency_violation_on_what_a_sibling_just_destroyed_used_is_retried() {
    let rig = Rig::start().await;
    let [mut network, mut app] = subnet_held_by_instance("subnet-0a1b2c3d4e5f60718", 2);
    network.behavior.destroy_duration = Duration::from_secs(30);
    app.behavior.destroy_duration = Duration::from_millis(200);
    rig.release(&[network, app]).await;
    let (report, _) = rig.guard(opts(300)).await;
    all_destroyed_without_escalation(&report, &rig);
}

/// The same failure when the instance sits in another subnet: nothing this uninstall destroys
/// uses the subnet (the network's own interface does not count), so what holds it is outside
/// the release: orphaned at once.
#[tokio::test(start_paused = true)]
async fn a_dependency_violation_nothing_in_the_release_explains_is_orphaned_at_once() {
    let rig = Rig::start().await;
    rig.release(&subnet_held_by_instance(
        "subnet-0ffffffffffffffff",
        u32::MAX,
    ))
    .await;
    let (report, _) = rig.guard(opts(300)).await;
    assert_eq!(
        outcome(&report, "network"),
        Some(Outcome::Orphaned),
        "{}",
        report.render()
    );
    let entry = rig.ledger_entry(NS, "network").expect("ledger entry");
    assert_eq!(entry["class"], "permanent");
    assert!(!rig
        .guard_events("network")
        .iter()
        .any(|(r, _)| r == "TfopsGuardRetry"));
    assert_eq!(outcome(&report, "app"), Some(Outcome::Destroyed));
}

/// Two `Terraform`s whose destroys each fail on what the other's state holds: neither is on its
/// way out, so neither makes the other's failure transient — both are orphaned instead of
/// waiting on each other until their retries or the budget end. (A failure seen while the
/// other is still destroying is retried: that one may yet pass.)
#[tokio::test(start_paused = true)]
async fn two_terraforms_holding_each_other_are_orphaned_not_retried() {
    const SG: &str = "sg-0123456789abcdef0";
    let rig = Rig::start().await;
    let [network, mut app] = subnet_held_by_instance("subnet-0a1b2c3d4e5f60718", u32::MAX);
    app.behavior.destroy = vec![DestroyAttempt::fail(FailStage::Apply, format!(
            "Error: deleting Security Group ({SG}): DependencyViolation: resource {SG} has a dependent object"
        ), u32::MAX)];
    app.behavior
        .inventory
        .get_or_insert_with(Vec::new)
        .push(inventory_entry("app", "aws_security_group", SG));
    let mut network = network;
    // The app's destroy fails first; the network's failure comes while the app is stuck.
    app.behavior.destroy_duration = Duration::from_secs(1);
    network.behavior.destroy_duration = Duration::from_secs(20);
    let mut uses_sg = serde_json::Map::new();
    uses_sg.insert("security_groups".into(), json!([SG]));
    network
        .behavior
        .state_attributes
        .insert("probe".to_owned(), uses_sg);
    rig.release(&[network, app]).await;
    let (report, _) = rig.guard(opts(300)).await;
    for n in ["network", "app"] {
        assert_eq!(
            outcome(&report, n),
            Some(Outcome::Orphaned),
            "{n}: {}",
            report.render()
        );
    }
    // A failure seen while the other was still destroying may be retried; once both are
    // stuck, each is orphaned as the permanent failure it is, not after its retries ran out.
    for n in ["network", "app"] {
        let entry = rig.ledger_entry(NS, n).expect("ledger entry");
        assert_eq!(entry["class"], "permanent", "{n}: {entry}");
    }
}

/// A chain network ← platform ← app: the network's subnet is held by the platform's
/// instance, the platform's security group by the app's function. Each failure is explained
/// by a `Terraform` this uninstall is destroying and nothing is mutual, so the platform, while
/// it fails on its own in-use error, still counts as on its way out for the network: every
/// destroy is retried until it passes.
#[tokio::test(start_paused = true)]
async fn a_chain_of_in_use_failures_is_retried_from_its_end() {
    const SUBNET: &str = "subnet-0a1b2c3d4e5f60718";
    const SG: &str = "sg-0123456789abcdef0";
    let entry = inventory_entry;
    let fails = |message: String| vec![DestroyAttempt::fail(FailStage::Apply, message, 12)];
    let rig = Rig::start().await;
    let network = Module::new("network").behavior(Behavior {
        destroy: fails(format!(
            "Error: deleting EC2 Subnet ({SUBNET}): api error DependencyViolation: The subnet '{SUBNET}' has dependencies and cannot be deleted.\n\n  with aws_subnet.private,"
        )),
        destroy_duration: Duration::from_secs(5),
        inventory: Some(vec![entry("private", "aws_subnet", SUBNET)]),
        ..Behavior::default()
    });
    let mut web = serde_json::Map::new();
    web.insert("subnet_id".into(), json!(SUBNET));
    let platform = Module::new("platform").behavior(Behavior {
        destroy: fails(format!(
            "Error: deleting Security Group ({SG}): DependencyViolation: resource {SG} has a dependent object"
        )),
        destroy_duration: Duration::from_secs(1),
        inventory: Some(vec![
            entry("web", "aws_instance", "i-0123456789abcdef0"),
            entry("sg", "aws_security_group", SG),
        ]),
        state_attributes: [("web".to_owned(), web)].into_iter().collect(),
        ..Behavior::default()
    });
    let mut function = serde_json::Map::new();
    function.insert("vpc_config".into(), json!([{"security_group_ids": [SG]}]));
    let app = Module::new("app").behavior(Behavior {
        destroy_duration: Duration::from_secs(120),
        inventory: Some(vec![entry(
            "f",
            "aws_lambda_function",
            "arn:aws:lambda:eu-west-1:123456789012:function:f",
        )]),
        state_attributes: [("f".to_owned(), function)].into_iter().collect(),
        ..Behavior::default()
    });
    rig.release(&[network, platform, app]).await;
    let (report, _) = rig.guard(opts(600)).await;
    for n in ["app", "platform", "network"] {
        assert_eq!(
            outcome(&report, n),
            Some(Outcome::Destroyed),
            "{n}: {}",
            report.render()
        );
        assert!(rig.ledger_entry(NS, n).is_none(), "{n} has a ledger entry");
    }
}

/// One `Terraform` alone in its release, with a Lambda in a security group. Its destroy
/// removes the function, then fails to delete the group with AWS `DependencyViolation`: the
/// function's network interfaces are released minutes after it is gone. The failed apply
/// writes the state without the function; `repeats` is how many attempts fail that way
/// (whoever starts them: the controller requeues a failed destroy by itself).
fn lambda_in_its_group(repeats: u32) -> Module {
    const SG: &str = "sg-0a1b2c3d4e5f60718";
    let mut function = serde_json::Map::new();
    function.insert("vpc_config".into(), json!([{"security_group_ids": [SG]}]));
    Module::new("net").behavior(Behavior {
        destroy: vec![DestroyAttempt::Fail {
            stage: FailStage::Apply,
            message: format!(
                "Error: deleting Security Group ({SG}): operation error EC2: DeleteSecurityGroup, https response error StatusCode: 400, RequestID: 37a04680-456b-4361-af3a-a91503821818, api error DependencyViolation: resource {SG} has a dependent object\n\n  with aws_security_group.lambda,\n  on main.tf line 3, in resource \"aws_security_group\" \"lambda\":"
            ),
            times: repeats,
            forever: false,
            destroyed: vec!["f".into()],
        }],
        destroy_duration: Duration::from_secs(20),
        inventory: Some(vec![
            inventory_entry(
                "f",
                "aws_lambda_function",
                "arn:aws:lambda:eu-west-1:123456789012:function:f",
            ),
            inventory_entry("lambda", "aws_security_group", SG),
        ]),
        state_attributes: [("f".to_owned(), function)].into_iter().collect(),
        ..Behavior::default()
    })
}

/// A guard run in the background.
type GuardTask = tokio::task::JoinHandle<
    Result<tfops_guard::engine::GuardReport, tfops_guard::engine::EngineError>,
>;

/// A guard run in the background over one `lambda_in_its_group(1)`, started and waited on
/// until its first destroy attempt runs (`Apply=Unknown`). Returns the guard task and the
/// module's behaviour held still (`paused`: the controller starts no attempt by itself) and
/// running, to switch the simulated controller between them.
async fn guard_during_first_attempt(
    rig: &Rig,
    opts: tfops_guard::engine::GuardOptions,
) -> (GuardTask, Behavior, Behavior) {
    let module = lambda_in_its_group(1);
    let mut held = module.behavior.clone();
    held.paused = true;
    let running = module.behavior.clone();
    rig.release(&[module]).await;
    let guard = tokio::spawn(tfops_guard::engine::run_guard(
        rig.guard_client(),
        opts,
        tfops_guard::clock::Clock::start(),
    ));
    let applying = || {
        rig.tf("net")["status"]["conditions"]
            .as_array()
            .is_some_and(|cs| {
                cs.iter()
                    .any(|c| c["type"] == "Apply" && c["status"] == "Unknown")
            })
    };
    assert!(rig.wait(applying, 60).await, "the destroy never started");
    (guard, held, running)
}

/// The failed attempt destroyed what used the group: a later attempt can pass, so the guard
/// waits for one (the controller requeues a failed destroy by itself, and the guard asks for
/// one more) instead of orphaning (before, a lone CR's in-use failure was orphaned at once).
#[tokio::test(start_paused = true)]
async fn an_in_use_failure_right_after_its_own_destroy_removed_the_holder_is_retried() {
    let rig = Rig::start().await;
    rig.release(&[lambda_in_its_group(2)]).await;
    let (report, _) = rig.guard(opts(300)).await;
    assert_eq!(
        outcome(&report, "net"),
        Some(Outcome::Destroyed),
        "{}",
        report.render()
    );
    assert!(rig.ledger_entry(NS, "net").is_none());
    let events = rig.guard_events("net");
    assert!(
        !events
            .iter()
            .any(|(r, _)| r == "TfopsGuardOrphaned" || r == "TfopsGuardForceRemoved"),
        "{events:?}"
    );
}

/// The same failure again on the retry, whose state no longer had the function: what holds
/// the group now is not something this destroy removed, so it is orphaned after one retry,
/// not after the whole budget.
#[tokio::test(start_paused = true)]
async fn that_evidence_buys_one_retry_only() {
    let rig = Rig::start().await;
    rig.release(&[lambda_in_its_group(u32::MAX)]).await;
    let (report, _) = rig.guard(opts(300)).await;
    assert_eq!(
        outcome(&report, "net"),
        Some(Outcome::Orphaned),
        "{}",
        report.render()
    );
    let entry = rig.ledger_entry(NS, "net").expect("ledger entry");
    assert_eq!(entry["class"], "permanent");
    let events = rig.guard_events("net");
    let retries: Vec<&String> = events
        .iter()
        .filter(|(r, _)| r == "TfopsGuardRetry")
        .map(|(_, m)| m)
        .collect();
    assert_eq!(retries.len(), 1, "{events:?}");
    assert!(
        retries[0].contains("aws_lambda_function.f (which used sg-0a1b2c3d4e5f60718; the attempt that failed destroyed it"),
        "{retries:?}"
    );
}

/// The retry the guard asks for on that evidence fails to reach the API once (a 500 on its
/// PATCH): no attempt began, so the evidence of the failed one still holds and the guard asks
/// again, instead of reading the same failure as permanent and orphaning the CR. The
/// controller is held still after the first attempt so that only the guard's request can
/// start the next one.
#[tokio::test(start_paused = true)]
async fn a_retry_request_that_fails_keeps_the_evidence_of_the_failed_attempt() {
    use tfops_testcluster::{FaultRule, Verb};
    let rig = Rig::start().await;
    let (guard, held, running) = guard_during_first_attempt(&rig, opts(300)).await;
    let sim = rig.sim.as_ref().expect("simulated controller");
    // Hold the controller while the first attempt runs: it fails, and nothing starts another.
    sim.set_behavior(NS, "net", held);
    let counted = || {
        rig.tf("net")["metadata"]["annotations"][tfops_api::progress::PROGRESS_ANNOTATION]
            .as_str()
            .and_then(|s| serde_json::from_str::<serde_json::Value>(s).ok())
            .and_then(|p| p["attempts"].as_u64())
            .unwrap_or(0)
            >= 1
    };
    assert!(
        rig.wait(counted, 120).await,
        "the first failure was never counted"
    );
    rig.cluster.faults().add(
        FaultRule::status(500)
            .user(GUARD_USER)
            .verb(Verb::Patch)
            .resource("terraforms")
            .times(1),
    );
    let refused = || {
        !rig.cluster
            .requests()
            .filter(|r| r.user == GUARD_USER && r.method == "PATCH" && r.status == 500)
            .is_empty()
    };
    assert!(
        rig.wait(refused, 120).await,
        "the guard never asked for a retry"
    );
    // The next request (or an orphan) follows within the retry's short backoff.
    let decided = || {
        rig.guard_events("net")
            .iter()
            .any(|(r, _)| r == "TfopsGuardRetry" || r == "TfopsGuardOrphaned")
    };
    assert!(rig.wait(decided, 120).await);
    // Let the controller run the requested attempt: it passes.
    retried_then_destroyed(&rig, guard, running).await;
}

/// The state read right after the failure gets an API error, and so do the next two reads:
/// the holder check is incomplete, so the guard reads again shortly instead of orphaning on
/// what it could not see; the third re-read shows the function gone and the retry follows.
#[tokio::test(start_paused = true)]
async fn a_state_read_that_fails_is_read_again_before_the_cr_is_released() {
    let rig = Rig::start().await;
    let (guard, held, running) = guard_during_first_attempt(&rig, opts(300)).await;
    // The read before the DELETE is done; the next three reads of the state fail.
    let (_, failed_reads) = fail_state_reads(&rig, "net", Some(3));
    rig.sim
        .as_ref()
        .expect("simulated controller")
        .set_behavior(NS, "net", held);
    assert!(rig.wait(|| guard_decided(&rig, "net"), 120).await);
    assert_eq!(failed_reads(), 3, "the fault was not hit as planned");
    retried_then_destroyed(&rig, guard, running).await;
}

/// The CR's own state stays unreadable for a minute (every GET of its Secret fails): the
/// guard reads it again a few times, then would orphan the in-use failure — but the ledger
/// entry needs that same state, so nothing is released while it cannot be read. Once it can,
/// the guard sees the attempt's evidence and retries; the destroy then passes.
#[tokio::test(start_paused = true)]
async fn nothing_is_released_while_the_crs_own_state_cannot_be_read() {
    let rig = Rig::start().await;
    let (guard, held, running) = guard_during_first_attempt(&rig, opts(300)).await;
    let (fault, failed_reads) = fail_state_reads(&rig, "net", None);
    let sim = rig.sim.as_ref().expect("simulated controller");
    sim.set_behavior(NS, "net", held);
    assert!(!rig.wait(|| guard_decided(&rig, "net"), 60).await);
    assert!(failed_reads() > 4, "the state was not read again");
    assert!(rig.ledger_entry(NS, "net").is_none());
    assert!(rig.tf("net")["metadata"]["finalizers"]
        .as_array()
        .expect("finalizers")
        .iter()
        .any(|f| f == TF_FINALIZER));
    rig.cluster.faults().remove(fault);
    assert!(rig.wait(|| guard_decided(&rig, "net"), 60).await);
    retried_then_destroyed(&rig, guard, running).await;
}

/// The state of the sibling whose instance holds the subnet stays unreadable: the holder
/// check cannot finish, and the guard reads it again only a few times (seconds apart) before
/// it decides on what it has — the subnet's failure is orphaned while the sibling's destroy
/// is still running, not held until that destroy or the budget ends.
#[tokio::test(start_paused = true)]
async fn a_siblings_state_that_stays_unreadable_is_read_a_few_times_then_the_cr_is_released() {
    let rig = Rig::start().await;
    let [network, mut app] = subnet_held_by_instance("subnet-0a1b2c3d4e5f60718", u32::MAX);
    app.behavior.destroy_duration = Duration::from_secs(240);
    let (_, failed_reads) = fail_state_reads(&rig, "app", None);
    rig.release(&[network, app]).await;
    let guard = tokio::spawn(tfops_guard::engine::run_guard(
        rig.guard_client(),
        opts(300),
        tfops_guard::clock::Clock::start(),
    ));
    let orphaned = || {
        rig.guard_events("network")
            .iter()
            .any(|(r, _)| r == "TfopsGuardOrphaned")
    };
    assert!(
        rig.wait(orphaned, 120).await,
        "{:?}",
        rig.guard_events("network")
    );
    assert!(
        failed_reads() >= 4,
        "the sibling's state was not read again"
    );
    let app_destroying = rig.tf("app")["metadata"]["deletionTimestamp"].is_string();
    assert!(app_destroying, "the sibling's destroy is over already");
    let report = guard.await.expect("guard task").expect("guard run");
    assert_eq!(
        outcome(&report, "network"),
        Some(Outcome::Orphaned),
        "{}",
        report.render()
    );
    assert!(rig.ledger_entry(NS, "network").is_some());
}

/// The guard asked `net` for a retry and has not orphaned it; the controller then runs as
/// `running`, and the guard ends with `net` destroyed and no ledger entry.
async fn retried_then_destroyed(rig: &Rig, guard: GuardTask, running: Behavior) {
    let events = rig.guard_events("net");
    assert!(
        events.iter().any(|(r, _)| r == "TfopsGuardRetry")
            && !events.iter().any(|(r, _)| r == "TfopsGuardOrphaned"),
        "{events:?}"
    );
    rig.sim
        .as_ref()
        .expect("simulated controller")
        .set_behavior(NS, "net", running);
    let report = guard.await.expect("guard task").expect("guard run");
    assert_eq!(
        outcome(&report, "net"),
        Some(Outcome::Destroyed),
        "{}",
        report.render()
    );
    assert!(rig.ledger_entry(NS, "net").is_none());
}

/// Make the guard's GETs of `name`'s tfstate Secret fail with a 500 (`times` of them, or
/// all when `None`); returns the fault and a counter of the guard's failed Secret reads.
fn fail_state_reads<'a>(
    rig: &'a Rig,
    name: &str,
    times: Option<usize>,
) -> (tfops_testcluster::FaultId, impl Fn() -> usize + 'a) {
    use tfops_testcluster::{FaultRule, Verb};
    let mut rule = FaultRule::status(500)
        .user(GUARD_USER)
        .verb(Verb::Get)
        .resource("secrets")
        .name(&format!("tfstate-default-{name}"));
    if let Some(n) = times {
        rule = rule.times(n);
    }
    let id = rig.cluster.faults().add(rule);
    let failed = move || {
        rig.cluster
            .requests()
            .filter(|r| r.user == GUARD_USER && r.resource == "secrets" && r.status == 500)
            .len()
    };
    (id, failed)
}

/// Whether the guard has asked `name` for a retry or orphaned it.
fn guard_decided(rig: &Rig, name: &str) -> bool {
    rig.guard_events(name)
        .iter()
        .any(|(r, _)| r == "TfopsGuardRetry" || r == "TfopsGuardOrphaned")
}
