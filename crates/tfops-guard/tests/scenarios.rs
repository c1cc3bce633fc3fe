//! One scenario per row of the guard's fault matrix, against the real in-process API server
//! over HTTP with the tofu-controller simulation, on paused (virtual) tokio time. Each asserts
//! the outcome, the ledger entries (written before the finalizer went), the guard's Events,
//! and that the run ended within its budget.

mod support;

use std::time::Duration;

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
        destroy: vec![DestroyAttempt::Fail {
            stage: FailStage::Apply,
            message: msg.to_owned(),
            times: 1,
            forever: true,
        }],
        ..Behavior::default()
    }
}

#[tokio::test(start_paused = true)]
async fn clean_uninstall_destroys_everything_with_few_requests() {
    let rig = Rig::start().await;
    rig.release(&[Module::new("db"), Module::new("bucket"), Module::new("queue")])
        .await;
    let before = rig.guard_requests();
    let (report, took) = rig.guard(opts(240)).await;
    assert_eq!(report.status, RunStatus::Finished, "{}", report.render());
    for n in ["db", "bucket", "queue"] {
        assert_eq!(outcome(&report, n), Some(Outcome::Destroyed), "{}", report.render());
        assert!(rig.gone(n));
        assert!(rig.ledger_entry(NS, n).is_none(), "no ledger for a destroyed CR");
        assert!(rig
            .guard_events(n)
            .iter()
            .any(|(r, _)| r == "TfopsGuardDelete"));
    }
    assert!(took <= Duration::from_secs(240));
    let requests = rig.guard_requests() - before;
    println!("clean uninstall: {requests} guard requests for 3 CRs, {took:?} virtual");
    // ≤ 3 per CR + constant (LIST + WATCH).
    assert!(requests <= 3 * 3 + 2, "{requests} requests: {:#?}", rig.cluster.requests().all().into_iter().filter(|r| r.user == GUARD_USER).collect::<Vec<_>>());
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
        assert_eq!(outcome(&report, n), Some(Outcome::Destroyed), "{}", report.render());
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
        destroy: vec![DestroyAttempt::Fail {
            stage: FailStage::Apply,
            message: samples::AWS_THROTTLING.to_owned(),
            times: 2,
            forever: false,
        }],
        ..Behavior::default()
    })])
    .await;
    let (report, took) = rig.guard(opts(240)).await;
    assert_eq!(outcome(&report, "db"), Some(Outcome::Destroyed), "{}", report.render());
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
    assert_eq!(outcome(&report, "db"), Some(Outcome::Orphaned), "{}", report.render());
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
