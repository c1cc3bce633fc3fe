//! How the simulated controller reacts to what a guard does: orphan patch, retry via
//! `requestedAt`, finalizer strip mid-destroy, and seeding an applied release directly.

use std::time::Duration;

use serde_json::{json, Value};
use tfops_testcluster::tofu::behavior::{Behavior, DestroyAttempt, FailStage};
use tfops_testcluster::tofu::fixtures::{as_applied, oci_source, service_account};
use tfops_testcluster::tofu::messages::samples;
use tfops_testcluster::tofu::reconcile::Row;
use tfops_testcluster::tofu::{SimConfig, TofuSim, CONTROLLER_USER};
use tfops_testcluster::{ClusterOptions, TestCluster};

const NS: &str = "shop";
const TF: &str = "infra.contrib.fluxcd.io/v1alpha2";
const REV: &str = "main@sha1:a1b2c3d4e5f60718293a4b5c6d7e8f9012345678";

fn module(name: &str) -> Value {
    json!({
        "apiVersion": TF,
        "kind": "Terraform",
        "metadata": {"name": name, "namespace": NS, "labels": {"tfops.dev/release": "shop", "tfops.dev/module": name}},
        "spec": {
            "interval": "10m", "approvePlan": "auto", "path": "./", "destroyResourcesOnDeletion": true,
            "sourceRef": {"kind": "OCIRepository", "name": format!("{name}-src")},
            "writeOutputsToSecret": {"name": format!("{name}-outputs")},
        }
    })
}

struct Env {
    cluster: TestCluster,
    sim: TofuSim,
}

impl Env {
    /// Seed `names` as already applied (no reconcile needed), then start the controller.
    async fn seeded(names: &[&str]) -> Env {
        let cluster = TestCluster::start(ClusterOptions::default()).await.unwrap();
        let store = cluster.store();
        store.create(service_account(NS, "tf-runner")).unwrap();
        for n in names {
            store
                .create(oci_source(NS, &format!("{n}-src"), REV))
                .unwrap();
            let applied =
                as_applied(&module(n), REV, &Behavior::default(), chrono::Utc::now()).unwrap();
            store.create(applied.terraform).unwrap();
            for s in applied.secrets {
                store.create(s).unwrap();
            }
        }
        let sim = TofuSim::start(
            cluster.client(CONTROLLER_USER).unwrap(),
            SimConfig::default(),
        );
        Env { cluster, sim }
    }

    fn tf(&self, name: &str) -> Value {
        self.cluster
            .store()
            .get(TF, "Terraform", NS, name)
            .unwrap_or(Value::Null)
    }

    fn patch(&self, name: &str, body: Value) {
        self.cluster
            .store()
            .patch_merge(TF, "Terraform", NS, name, &body)
            .unwrap();
    }

    /// Let `secs` of virtual time pass one second at a time (paused time auto-advances while
    /// the runtime waits on socket I/O; short steps keep the controller's round trips inside).
    async fn idle(&self, secs: u64) {
        tfops_testcluster::vtime::idle(secs).await
    }

    /// Poll once per virtual second until `cond` holds; gives up after `4 * max_secs` polls
    /// (headroom: paused time also advances while the runtime waits on socket I/O).
    async fn wait(&self, cond: impl Fn() -> bool, max_secs: u64) -> bool {
        tfops_testcluster::vtime::poll_each_second(cond, max_secs * 4).await
    }
}

fn forever(message: &str) -> Behavior {
    Behavior {
        destroy: vec![DestroyAttempt::fail_forever(FailStage::Apply, message)],
        destroy_duration: Duration::from_secs(60),
        ..Default::default()
    }
}

#[tokio::test(start_paused = true)]
async fn seeded_applied_module_is_destroyed_on_delete() {
    let env = Env::seeded(&["bucket"]).await;
    env.cluster
        .store()
        .delete(TF, "Terraform", NS, "bucket")
        .unwrap();
    assert!(env.wait(|| env.tf("bucket").is_null(), 600).await);
    assert_eq!(env.sim.stats(NS, "bucket").destroy_attempts, 1);
    assert_eq!(env.sim.stats(NS, "bucket").last_row, Some(Row::Destroyed));
}

#[tokio::test(start_paused = true)]
async fn orphan_patch_releases_a_cr_stuck_in_a_failing_destroy() {
    let env = Env::seeded(&["db"]).await;
    env.sim
        .set_behavior(NS, "db", forever(samples::AWS_DELETION_PROTECTION));
    env.cluster
        .store()
        .delete(TF, "Terraform", NS, "db")
        .unwrap();
    assert!(
        env.wait(|| env.sim.stats(NS, "db").destroy_attempts >= 2, 900)
            .await
    );
    assert!(!env.tf("db").is_null());
    // the guard's orphan decision: destroyResourcesOnDeletion false (a generation change)
    env.patch("db", json!({"spec": {"destroyResourcesOnDeletion": false}}));
    assert!(env.wait(|| env.tf("db").is_null(), 600).await);
    assert_eq!(
        env.sim.stats(NS, "db").last_row,
        Some(Row::ReleasedWithoutDestroy)
    );
    // the state still lists the resources: they were not destroyed
    assert!(env
        .cluster
        .store()
        .get("v1", "Secret", NS, "tfstate-default-db")
        .is_some());
}

#[tokio::test(start_paused = true)]
async fn requested_at_retries_at_once_during_a_long_backoff() {
    let env = Env::seeded(&["net"]).await;
    env.sim.set_behavior(
        NS,
        "net",
        Behavior {
            destroy: vec![DestroyAttempt::fail(
                FailStage::Apply,
                samples::GCP_RESOURCE_IN_USE,
                20,
            )],
            destroy_duration: Duration::from_secs(1),
            ..Default::default()
        },
    );
    env.cluster
        .store()
        .delete(TF, "Terraform", NS, "net")
        .unwrap();
    // 20 failures push controller-runtime's per-item backoff to 5ms*2^19 ≈ 44 min
    assert!(
        env.wait(|| env.sim.stats(NS, "net").destroy_attempts >= 20, 2000)
            .await
    );
    let before = env.sim.stats(NS, "net").reconciles;
    env.patch(
        "net",
        json!({"metadata": {"annotations": {"reconcile.fluxcd.io/requestedAt": "retry-1"}}}),
    );
    // a new requestedAt passes the predicate and is reconciled at once, not after the backoff
    let ok = env.wait(|| env.tf("net").is_null(), 600).await;
    assert!(ok, "{:?} {:#}", env.sim.stats(NS, "net"), env.tf("net"));
    assert!(env.sim.stats(NS, "net").reconciles > before);
}

#[tokio::test(start_paused = true)]
async fn finalizer_strip_mid_destroy_lets_the_cr_go_and_the_controller_copes() {
    let env = Env::seeded(&["cache"]).await;
    env.sim
        .set_behavior(NS, "cache", forever(samples::AWS_THROTTLING));
    env.cluster
        .store()
        .delete(TF, "Terraform", NS, "cache")
        .unwrap();
    assert!(
        env.wait(|| env.sim.stats(NS, "cache").destroy_attempts >= 1, 300)
            .await
    );
    // the guard's force-remove: strip every finalizer while a destroy is in flight
    env.patch("cache", json!({"metadata": {"finalizers": null}}));
    assert!(env.wait(|| env.tf("cache").is_null(), 60).await);
    // the simulated controller's in-flight reconcile ends on 404 without recreating anything
    env.idle(600).await;
    assert!(env.tf("cache").is_null());
    let stats = env.sim.stats(NS, "cache");
    assert!(stats.interrupted >= 1, "{stats:?}");
    assert_ne!(stats.last_row, Some(Row::Destroyed), "{stats:?}");
}

#[tokio::test(start_paused = true)]
async fn dependants_first_then_dependency_with_seeded_modules() {
    let env = Env::seeded(&["vpc"]).await;
    // app depends on vpc: created live so the controller adds tf.dependency.of.app to vpc
    let store = env.cluster.store();
    store.create(oci_source(NS, "app-src", REV)).unwrap();
    let mut app = module("app");
    app["spec"]["dependsOn"] = json!([{"name": "vpc"}]);
    store.create(app).unwrap();
    assert!(
        env.wait(
            || env.tf("vpc")["metadata"]["finalizers"]
                .as_array()
                .is_some_and(|f| f.iter().any(|x| x == "tf.dependency.of.app")),
            300
        )
        .await
    );
    store.delete(TF, "Terraform", NS, "vpc").unwrap();
    store.delete(TF, "Terraform", NS, "app").unwrap();
    assert!(
        env.wait(|| env.tf("vpc").is_null() && env.tf("app").is_null(), 900)
            .await
    );
    assert_eq!(env.sim.stats(NS, "vpc").last_row, Some(Row::Destroyed));
}

#[tokio::test(start_paused = true)]
async fn force_unlock_of_an_already_released_lock_fails_until_the_request_is_withdrawn() {
    let env = Env::seeded(&["q"]).await;
    let lock = tfops_testcluster::tofu::LockSpec {
        id: "7d1e0c4b-3a2f-4e5d-8c9b-0a1b2c3d4e5f".into(),
        who: "runner@q-tf-runner".into(),
        operation: "OperationTypeApply".into(),
        release_after: None,
    };
    env.sim.set_behavior(
        NS,
        "q",
        Behavior {
            lock: Some(lock.clone()),
            ..Default::default()
        },
    );
    env.cluster
        .store()
        .delete(TF, "Terraform", NS, "q")
        .unwrap();
    assert!(
        env.wait(
            || env.tf("q")["status"]["lock"]["pending"] == lock.id.as_str(),
            300
        )
        .await
    );
    // the holder lets go at the same moment the guard asks for a force-unlock
    env.cluster
        .store()
        .patch_merge(
            "coordination.k8s.io/v1",
            "Lease",
            NS,
            "lock-tfstate-default-q",
            &json!({"spec": {"holderIdentity": null}}),
        )
        .unwrap();
    env.patch(
        "q",
        json!({"spec": {"tfstate": {"forceUnlock": "yes", "lockIdentifier": lock.id}}}),
    );
    env.idle(1200).await;
    assert!(!env.tf("q").is_null());
    assert_eq!(
        env.sim.stats(NS, "q").last_row,
        Some(Row::ForceUnlockFailed)
    );
    assert_eq!(env.tf("q")["status"]["lock"]["pending"], lock.id.as_str());
    // withdrawing the request (a generation change) lets the destroy run
    env.patch("q", json!({"spec": {"tfstate": null}}));
    assert!(env.wait(|| env.tf("q").is_null(), 1200).await);
}

#[tokio::test(start_paused = true)]
async fn controller_requests_for_one_clean_destroy_stay_small() {
    let env = Env::seeded(&["bucket"]).await;
    // let the controller's first (no-op) reconcile of the seeded CR finish
    env.idle(30).await;
    let before = env.cluster.requests().count_user(CONTROLLER_USER);
    env.cluster
        .store()
        .delete(TF, "Terraform", NS, "bucket")
        .unwrap();
    assert!(env.wait(|| env.tf("bucket").is_null(), 600).await);
    env.idle(5).await;
    let used = env.cluster.requests().count_user(CONTROLLER_USER) - before;
    eprintln!("tofu-controller requests for one clean destroy: {used}");
    // 18 when measured: GET of the CR, 7 world GETs (source, SA, namespace, lease, 3
    // Secrets), status patches (folded per stretch of simulated time), 2 Secret writes, 2
    // Secret deletes, GET+PATCH of the finalizer list, 1 event
    assert!(used <= 24, "{used} requests");
}
