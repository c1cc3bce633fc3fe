//! tofu-controller v0.16.5 in time, reproduced by the simulation over real HTTP on paused
//! (virtual) tokio time: runner pods that take minutes to start, a destroy that runs for
//! minutes with `Apply=Unknown`, the `requestedAt` echo only at the end of the reconcile, the
//! runner-creation timeout, and the leader-election Lease (rows 2, 10b, 16a, 26 of the table
//! in `tofu/mod.rs`). The old simulation answered every deletion at once.

use std::time::Duration;

use serde_json::{json, Value};
use tfops_testcluster::tofu::behavior::Behavior;
use tfops_testcluster::tofu::{
    SimConfig, SimTiming, TofuSim, BEHAVIOR_ANNOTATION, CONTROLLER_USER, LEADER_LEASE_NAME,
};
use tfops_testcluster::{ClusterOptions, TestCluster};

const NS: &str = "team-a";
const TF: &str = "infra.contrib.fluxcd.io/v1alpha2";
const REV: &str = "latest@sha256:3b1f5e2d9c7a4b6e8f0a1c3d5e7f9b2a4c6e8d0f1a3b5c7d9e1f3a5b7c9d1e3f";

struct Env {
    cluster: TestCluster,
    sim: TofuSim,
}

impl Env {
    async fn start(timing: SimTiming) -> Env {
        let cluster = TestCluster::start(ClusterOptions::default()).await.unwrap();
        cluster
            .store()
            .create(tfops_testcluster::tofu::fixtures::service_account(
                NS,
                "tf-runner",
            ))
            .unwrap();
        let sim = TofuSim::start(
            cluster.client(CONTROLLER_USER).unwrap(),
            SimConfig {
                timing,
                ..SimConfig::default()
            },
        );
        Env { cluster, sim }
    }

    /// An applied module (created, reconciled to Ready by the simulation).
    async fn module(&self, name: &str, behavior: &Behavior) {
        self.cluster
            .store()
            .create(tfops_testcluster::tofu::fixtures::oci_source(
                NS,
                &format!("{name}-src"),
                REV,
            ))
            .unwrap();
        self.cluster
            .store()
            .create(json!({
                "apiVersion": TF, "kind": "Terraform",
                "metadata": {"name": name, "namespace": NS,
                    "annotations": {BEHAVIOR_ANNOTATION: serde_json::to_string(behavior).unwrap()}},
                "spec": {"interval": "10m", "approvePlan": "auto", "path": "./",
                    "sourceRef": {"kind": "OCIRepository", "name": format!("{name}-src")},
                    "destroyResourcesOnDeletion": true},
            }))
            .unwrap();
        assert!(
            self.wait(|| self.ready(name) == Some("True".into()), 900)
                .await,
            "{name} never became Ready: {:#}",
            self.tf(name)
        );
    }

    fn tf(&self, name: &str) -> Value {
        self.cluster
            .store()
            .get(TF, "Terraform", NS, name)
            .unwrap_or(Value::Null)
    }

    fn cond(&self, name: &str, t: &str) -> Option<(String, String, String)> {
        let tf = self.tf(name);
        let c = tf["status"]["conditions"]
            .as_array()?
            .iter()
            .find(|c| c["type"] == t)?
            .clone();
        let s = |k: &str| c[k].as_str().unwrap_or("").to_string();
        Some((s("status"), s("reason"), s("message")))
    }

    fn ready(&self, name: &str) -> Option<String> {
        self.cond(name, "Ready").map(|c| c.0)
    }

    fn pod_phase(&self, name: &str) -> Option<String> {
        let p = self
            .cluster
            .store()
            .get("v1", "Pod", NS, &format!("{name}-tf-runner"))?;
        Some(p["status"]["phase"].as_str().unwrap_or("").to_string())
    }

    fn lease_renew_time(&self) -> Option<String> {
        let l = self.cluster.store().get(
            "coordination.k8s.io/v1",
            "Lease",
            "flux-system",
            LEADER_LEASE_NAME,
        )?;
        l["spec"]["renewTime"].as_str().map(str::to_owned)
    }

    /// Request a reconcile (as the guard does) and delete.
    fn delete_with_request(&self, name: &str, token: &str) {
        self.cluster
            .store()
            .patch_merge(
                TF,
                "Terraform",
                NS,
                name,
                &json!({"metadata": {"annotations": {"reconcile.fluxcd.io/requestedAt": token}}}),
            )
            .unwrap();
        self.cluster
            .store()
            .delete(TF, "Terraform", NS, name)
            .unwrap();
    }

    async fn wait(&self, cond: impl Fn() -> bool, max_secs: u64) -> bool {
        tfops_testcluster::vtime::poll_each_second(cond, max_secs).await
    }

    /// Let `secs` of virtual time pass in 1 s steps.
    async fn idle(&self, secs: u64) {
        tfops_testcluster::vtime::idle(secs).await
    }
}

fn fixed(start: u64) -> SimTiming {
    SimTiming {
        runner_start: tfops_testcluster::tofu::RunnerStart::Fixed(Duration::from_secs(start)),
        ..SimTiming::realistic(7)
    }
}

#[tokio::test(start_paused = true)]
async fn a_deletion_waits_for_its_runner_then_destroys_for_minutes_and_echoes_at_the_end() {
    let env = Env::start(fixed(60)).await;
    let b = Behavior {
        destroy_duration: Duration::from_secs(240),
        ..Behavior::default()
    };
    env.module("db", &b).await;
    env.delete_with_request("db", "2026-12-03T10:00:00.123456789Z");
    // Runner pod starting: Pending, nothing answered yet.
    assert!(
        env.wait(|| env.pod_phase("db").as_deref() == Some("Pending"), 30)
            .await
    );
    env.idle(20).await;
    assert_eq!(env.pod_phase("db").as_deref(), Some("Pending"));
    assert!(
        env.tf("db")["status"]["lastHandledReconcileAt"].is_null()
            || env.tf("db")["status"]["lastHandledReconcileAt"] != "2026-12-03T10:00:00.123456789Z"
    );
    // Destroy running: pod Running, Apply=Unknown, still no echo, for minutes.
    assert!(
        env.wait(
            || env.cond("db", "Apply").is_some_and(|c| c.0 == "Unknown"),
            90
        )
        .await,
        "{:#}",
        env.tf("db")
    );
    assert_eq!(env.pod_phase("db").as_deref(), Some("Running"));
    env.idle(120).await;
    assert!(!env.tf("db").is_null(), "still destroying");
    assert_eq!(
        env.cond("db", "Apply").map(|c| c.0).as_deref(),
        Some("Unknown")
    );
    assert_ne!(
        env.tf("db")["status"]["lastHandledReconcileAt"],
        "2026-12-03T10:00:00.123456789Z",
        "the echo comes only at the end of the reconcile"
    );
    // Done: the CR and its runner pod are gone.
    assert!(env.wait(|| env.tf("db").is_null(), 200).await);
    assert_eq!(env.pod_phase("db"), None);
    let st = env.sim.stats(NS, "db");
    assert_eq!(st.destroys_completed, 1, "{st:?}");
    assert_eq!(st.destroys_cut, 0);
    assert!(st.runner_pods >= 1);
}

#[tokio::test(start_paused = true)]
async fn a_runner_that_never_gets_an_ip_fails_after_the_creation_timeout() {
    let env = Env::start(fixed(0)).await;
    env.module("db", &Behavior::default()).await;
    // This CR's runner now takes 150 s: past the 120 s --runner-creation-timeout.
    env.sim.set_behavior(
        NS,
        "db",
        Behavior {
            runner_start: Some(Duration::from_secs(150)),
            ..Behavior::default()
        },
    );
    env.delete_with_request("db", "t1");
    env.idle(100).await;
    assert_eq!(env.pod_phase("db").as_deref(), Some("Pending"));
    assert_eq!(
        env.cond("db", "Ready"),
        Some((
            "Unknown".into(),
            "Progressing".into(),
            "Deletion in progress".into()
        ))
    );
    assert!(
        env.wait(|| env.sim.stats(NS, "db").runner_timeouts >= 1, 60)
            .await
    );
    // Nothing new in status beyond the echo; the CR is still held.
    assert_eq!(env.tf("db")["status"]["lastHandledReconcileAt"], "t1");
    assert_eq!(env.ready("db").as_deref(), Some("Unknown"));
    assert!(!env.tf("db").is_null());
    assert_eq!(env.sim.stats(NS, "db").destroy_attempts, 0);
}

#[tokio::test(start_paused = true)]
async fn an_orphan_patch_during_a_running_destroy_changes_nothing() {
    let env = Env::start(fixed(5)).await;
    let b = Behavior {
        destroy_duration: Duration::from_secs(300),
        ..Behavior::default()
    };
    env.module("db", &b).await;
    env.delete_with_request("db", "t1");
    assert!(
        env.wait(
            || env.cond("db", "Apply").is_some_and(|c| c.0 == "Unknown"),
            60
        )
        .await
    );
    env.cluster
        .store()
        .patch_merge(
            TF,
            "Terraform",
            NS,
            "db",
            &json!({"spec": {"destroyResourcesOnDeletion": false}}),
        )
        .unwrap();
    assert!(env.wait(|| env.tf("db").is_null(), 400).await);
    let st = env.sim.stats(NS, "db");
    assert_eq!(
        st.destroys_completed, 1,
        "the destroy ran to its end: {st:?}"
    );
    assert_eq!(st.orphan_patch_during_destroy, 1);
}

#[tokio::test(start_paused = true)]
async fn the_leader_renews_its_lease_until_stopped() {
    let env = Env::start(SimTiming::instant()).await;
    assert!(env.wait(|| env.lease_renew_time().is_some(), 10).await);
    let first = env.lease_renew_time();
    env.idle(12).await;
    let later = env.lease_renew_time();
    assert_ne!(first, later, "renewed every 5 s");
    let lease = env
        .cluster
        .store()
        .get(
            "coordination.k8s.io/v1",
            "Lease",
            "flux-system",
            LEADER_LEASE_NAME,
        )
        .unwrap();
    assert_eq!(lease["spec"]["leaseDurationSeconds"], 35);
    assert!(lease["spec"]["holderIdentity"]
        .as_str()
        .is_some_and(|h| h.starts_with("tofu-controller")));
    env.sim.stop();
    let stopped = env.lease_renew_time();
    env.idle(120).await;
    assert_eq!(
        env.lease_renew_time(),
        stopped,
        "a stopped controller renews nothing"
    );
}
