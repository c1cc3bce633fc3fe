//! End-to-end rows of tofu-controller v0.16.5's deletion flow, reproduced by the simulation
//! against the real in-process API server over HTTP, on paused (virtual) tokio time.

use std::time::Duration;

use serde_json::{json, Value};
use tfops_testcluster::tofu::behavior::{Behavior, DestroyAttempt, FailStage, LockSpec};
use tfops_testcluster::tofu::messages::samples;
use tfops_testcluster::tofu::{SimConfig, TofuSim, BEHAVIOR_ANNOTATION, CONTROLLER_USER};
use tfops_testcluster::{ClusterOptions, FaultRule, TestCluster, Verb};

const NS: &str = "team-a";
const TF: &str = "infra.contrib.fluxcd.io/v1alpha2";
const REV: &str = "latest@sha256:3b1f5e2d9c7a4b6e8f0a1c3d5e7f9b2a4c6e8d0f1a3b5c7d9e1f3a5b7c9d1e3f";

struct Env {
    cluster: TestCluster,
    sim: TofuSim,
}

fn terraform(name: &str, extra_spec: Value) -> Value {
    let mut spec = json!({
        "interval": "10m",
        "approvePlan": "auto",
        "path": "./modules/bucket",
        "sourceRef": {"kind": "OCIRepository", "name": format!("{name}-src")},
        "destroyResourcesOnDeletion": true,
        "writeOutputsToSecret": {"name": format!("{name}-outputs")},
    });
    if let (Some(s), Some(e)) = (spec.as_object_mut(), extra_spec.as_object()) {
        for (k, v) in e {
            s.insert(k.clone(), v.clone());
        }
    }
    json!({
        "apiVersion": TF,
        "kind": "Terraform",
        "metadata": {"name": name, "namespace": NS, "labels": {"tfops.dev/release": "shop"}},
        "spec": spec,
    })
}

fn source(name: &str) -> Value {
    tfops_testcluster::tofu::fixtures::oci_source(NS, name, REV)
}

impl Env {
    async fn start() -> Env {
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
            SimConfig::default(),
        );
        Env { cluster, sim }
    }

    /// Create source + CR and wait until the simulated controller made it Ready.
    async fn module(&self, name: &str, extra_spec: Value) {
        self.cluster
            .store()
            .create(source(&format!("{name}-src")))
            .unwrap();
        self.cluster
            .store()
            .create(terraform(name, extra_spec))
            .unwrap();
        assert!(
            self.wait(|| ready(&self.tf(name)) == Some("True".into()), 600)
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

    fn secret(&self, name: &str) -> Option<Value> {
        self.cluster.store().get("v1", "Secret", NS, name)
    }

    fn delete_tf(&self, name: &str) {
        self.cluster
            .store()
            .delete(TF, "Terraform", NS, name)
            .unwrap();
    }

    fn gone(&self, name: &str) -> bool {
        self.tf(name).is_null()
    }

    /// The CR once its Ready reason is `reason` (retries flip Ready to Progressing while a
    /// destroy attempt runs, so a single sample can land in between).
    async fn settled(&self, name: &str, reason: &str) -> Value {
        let ok = self
            .wait(|| ready_reason(&self.tf(name)) == reason, 1200)
            .await;
        let tf = self.tf(name);
        assert!(ok, "{name} never settled on {reason}: {:#}", tf["status"]);
        tf
    }

    /// Poll once per virtual second until `cond` holds; gives up after `4 * max_secs` polls
    /// (headroom: paused time also advances while the runtime waits on socket I/O).
    async fn wait(&self, cond: impl Fn() -> bool, max_secs: u64) -> bool {
        tfops_testcluster::vtime::poll_each_second(cond, max_secs * 4).await
    }

    /// Let `secs` of virtual time pass, one second at a time: with paused time the clock
    /// auto-advances to the next timer whenever the runtime waits on socket I/O, so one long
    /// sleep could end before the controller's in-flight HTTP round trips are done.
    async fn idle(&self, secs: u64) {
        tfops_testcluster::vtime::idle(secs).await
    }
}

fn condition(tf: &Value, t: &str) -> Option<(String, String, String)> {
    tf["status"]["conditions"]
        .as_array()?
        .iter()
        .find(|c| c["type"] == t)
        .map(|c| {
            (
                c["status"].as_str().unwrap_or("").to_string(),
                c["reason"].as_str().unwrap_or("").to_string(),
                c["message"].as_str().unwrap_or("").to_string(),
            )
        })
}

fn ready(tf: &Value) -> Option<String> {
    condition(tf, "Ready").map(|c| c.0)
}

fn ready_reason(tf: &Value) -> String {
    condition(tf, "Ready").map(|c| c.1).unwrap_or_default()
}

fn finalizers(tf: &Value) -> Vec<String> {
    tf["metadata"]["finalizers"]
        .as_array()
        .map(|a| {
            a.iter()
                .filter_map(|f| f.as_str().map(str::to_string))
                .collect()
        })
        .unwrap_or_default()
}

fn state_resources(secret: &Value) -> usize {
    let text = secret["data"]["tfstate"].as_str().unwrap();
    let bytes = tfops_testcluster::tofu::reconcile::base64_decode(text).unwrap();
    let state: Value = serde_json::from_slice(&bytes).unwrap();
    state["resources"].as_array().unwrap().len()
}

#[tokio::test(start_paused = true)]
async fn normal_reconcile_applies_and_writes_status_and_secrets() {
    let env = Env::start().await;
    env.module("bucket", json!({"enableInventory": true})).await;
    let tf = env.tf("bucket");
    assert!(finalizers(&tf).contains(&"finalizers.tf.contrib.fluxcd.io".to_string()));
    assert_eq!(tf["status"]["lastAppliedRevision"], REV);
    assert_eq!(tf["status"]["lastAttemptedRevision"], REV);
    assert_eq!(tf["status"]["lastPlannedRevision"], REV);
    assert_eq!(
        tf["status"]["inventory"]["entries"][0]["t"],
        "aws_s3_bucket"
    );
    assert_eq!(ready_reason(&tf), "TerraformOutputsWritten");
    assert_eq!(
        state_resources(&env.secret("tfstate-default-bucket").unwrap()),
        1
    );
    assert!(env.secret("bucket-outputs").is_some());
    assert!(env.secret("tfplan-default-bucket").is_some());
}

#[tokio::test(start_paused = true)]
async fn clean_delete_destroys_deletes_outputs_and_keeps_tfstate() {
    let env = Env::start().await;
    env.module("bucket", json!({})).await;
    env.sim.set_behavior(
        NS,
        "bucket",
        Behavior {
            destroy_duration: Duration::from_secs(45),
            ..Default::default()
        },
    );
    env.delete_tf("bucket");
    assert!(
        env.wait(|| env.gone("bucket"), 600).await,
        "{:#}",
        env.tf("bucket")
    );
    assert_eq!(env.sim.stats(NS, "bucket").destroy_attempts, 1);
    assert!(env.secret("bucket-outputs").is_none());
    assert!(env.secret("tfplan-default-bucket").is_none());
    let state = env
        .secret("tfstate-default-bucket")
        .expect("tfstate Secret is never deleted");
    assert_eq!(state_resources(&state), 0);
}

#[tokio::test(start_paused = true)]
async fn source_deleted_first_blocks_forever_with_artifact_failed() {
    let env = Env::start().await;
    env.module("bucket", json!({})).await;
    env.cluster
        .store()
        .delete(
            "source.toolkit.fluxcd.io/v1",
            "OCIRepository",
            NS,
            "bucket-src",
        )
        .unwrap();
    env.delete_tf("bucket");
    env.idle(1800).await;
    let tf = env.settled("bucket", "ArtifactFailed").await;
    assert!(!tf.is_null());
    assert!(finalizers(&tf).contains(&"finalizers.tf.contrib.fluxcd.io".to_string()));
    let (st, reason, msg) = condition(&tf, "Ready").unwrap();
    assert_eq!((st.as_str(), reason.as_str()), ("False", "ArtifactFailed"));
    assert_eq!(
        msg,
        "ocirepositories.source.toolkit.fluxcd.io \"bucket-src\" not found"
    );
    assert_eq!(condition(&tf, "Stalled").unwrap().1, "ArtifactFailed");
    assert_eq!(env.sim.stats(NS, "bucket").destroy_attempts, 0);
    // it keeps retrying every retryInterval (15 s): many reconciles, never giving up
    assert!(env.sim.stats(NS, "bucket").reconciles > 60);
    // the Warning events are aggregated like client-go does: one object, a growing count
    let events: Vec<Value> = env
        .cluster
        .store()
        .list("v1", "Event", NS)
        .into_iter()
        .filter(|e| e["involvedObject"]["name"] == "bucket" && e["reason"] == "ArtifactFailed")
        .collect();
    assert_eq!(events.len(), 1);
    assert_eq!(events[0]["type"], "Warning");
    assert!(events[0]["count"].as_u64().unwrap() > 60);
}

#[tokio::test(start_paused = true)]
async fn runner_service_account_missing_blocks_with_nothing_in_status() {
    let env = Env::start().await;
    env.module("bucket", json!({})).await;
    env.cluster
        .store()
        .delete("v1", "ServiceAccount", NS, "tf-runner")
        .unwrap();
    env.delete_tf("bucket");
    env.idle(1800).await;
    let tf = env.tf("bucket");
    assert!(!tf.is_null());
    let (st, reason, msg) = condition(&tf, "Ready").unwrap();
    assert_eq!(
        (st.as_str(), reason.as_str(), msg.as_str()),
        ("Unknown", "Progressing", "Deletion in progress")
    );
    assert_eq!(env.sim.stats(NS, "bucket").destroy_attempts, 0);
    // once the ServiceAccount is back, the next backoff retry destroys it
    env.cluster
        .store()
        .create(tfops_testcluster::tofu::fixtures::service_account(
            NS,
            "tf-runner",
        ))
        .unwrap();
    assert!(env.wait(|| env.gone("bucket"), 1200).await);
}

#[tokio::test(start_paused = true)]
async fn destroy_false_still_needs_source_and_runner() {
    let env = Env::start().await;
    env.module("bucket", json!({"destroyResourcesOnDeletion": false}))
        .await;
    env.cluster
        .store()
        .delete("v1", "ServiceAccount", NS, "tf-runner")
        .unwrap();
    env.delete_tf("bucket");
    env.idle(600).await;
    assert!(!env.gone("bucket"));
    env.cluster
        .store()
        .create(tfops_testcluster::tofu::fixtures::service_account(
            NS,
            "tf-runner",
        ))
        .unwrap();
    assert!(env.wait(|| env.gone("bucket"), 1200).await);
    assert_eq!(env.sim.stats(NS, "bucket").destroy_attempts, 0);
    // released without destroy: the state still holds the resources
    assert_eq!(
        state_resources(&env.secret("tfstate-default-bucket").unwrap()),
        1
    );
}

#[tokio::test(start_paused = true)]
async fn vars_from_missing_blocks_with_vars_generation_failed() {
    let env = Env::start().await;
    env.cluster
        .store()
        .create(json!({"apiVersion": "v1", "kind": "Secret", "metadata": {"name": "db-creds", "namespace": NS}, "stringData": {"password": "x"}}))
        .unwrap();
    env.module(
        "bucket",
        json!({"varsFrom": [{"kind": "Secret", "name": "db-creds"}]}),
    )
    .await;
    env.cluster
        .store()
        .delete("v1", "Secret", NS, "db-creds")
        .unwrap();
    env.delete_tf("bucket");
    env.idle(900).await;
    let tf = env.settled("bucket", "VarsGenerationFailed").await;
    assert!(!tf.is_null());
    let (st, reason, msg) = condition(&tf, "Ready").unwrap();
    assert_eq!(
        (st.as_str(), reason.as_str()),
        ("False", "VarsGenerationFailed")
    );
    assert_eq!(
        msg,
        "rpc error: code = Unknown desc = secrets \"db-creds\" not found"
    );
}

#[tokio::test(start_paused = true)]
async fn transient_failures_then_success() {
    let env = Env::start().await;
    env.module("vpc", json!({})).await;
    env.sim.set_behavior(
        NS,
        "vpc",
        Behavior {
            destroy: vec![DestroyAttempt::fail(
                FailStage::Apply,
                samples::AWS_DEPENDENCY_VIOLATION,
                2,
            )],
            destroy_duration: Duration::from_secs(20),
            ..Default::default()
        },
    );
    env.delete_tf("vpc");
    assert!(
        env.wait(|| env.gone("vpc"), 1200).await,
        "{:#}",
        env.tf("vpc")
    );
    assert_eq!(env.sim.stats(NS, "vpc").destroy_attempts, 3);
}

#[tokio::test(start_paused = true)]
async fn permanent_failure_retries_forever_without_counting() {
    let env = Env::start().await;
    env.module("db", json!({"remediation": {"retries": 2}}))
        .await;
    env.sim.set_behavior(
        NS,
        "db",
        Behavior {
            destroy: vec![DestroyAttempt::fail_forever(
                FailStage::Apply,
                samples::AWS_ACCESS_DENIED,
            )],
            destroy_duration: Duration::from_secs(30),
            ..Default::default()
        },
    );
    env.delete_tf("db");
    env.idle(3600).await;
    let tf = env.settled("db", "TFExecApplyFailed").await;
    assert!(!tf.is_null());
    let (st, reason, msg) = condition(&tf, "Ready").unwrap();
    assert_eq!(
        (st.as_str(), reason.as_str()),
        ("False", "TFExecApplyFailed")
    );
    assert!(msg.contains("api error AccessDenied"), "{msg}");
    assert!(tf["status"].get("reconciliationFailures").is_none());
    assert_eq!(condition(&tf, "Apply").unwrap().1, "TerraformAppliedFail");
    assert!(
        env.sim.stats(NS, "db").destroy_attempts > 2,
        "remediation.retries is not consulted"
    );
}

#[tokio::test(start_paused = true)]
async fn plan_failure_from_annotation_behaviour() {
    let env = Env::start().await;
    let behavior = json!({"destroy": [{"outcome": "fail", "stage": "plan", "message": samples::PLAN_NO_CREDENTIALS, "forever": true}]});
    env.cluster.store().create(source("creds-src")).unwrap();
    let mut tf = terraform("creds", json!({}));
    tf["metadata"]["annotations"] = json!({BEHAVIOR_ANNOTATION: behavior.to_string()});
    env.cluster.store().create(tf).unwrap();
    assert!(
        env.wait(|| ready(&env.tf("creds")) == Some("True".into()), 600)
            .await
    );
    env.delete_tf("creds");
    env.idle(300).await;
    let tf = env.settled("creds", "TFExecPlanFailed").await;
    let (st, reason, msg) = condition(&tf, "Ready").unwrap();
    assert_eq!(
        (st.as_str(), reason.as_str()),
        ("False", "TFExecPlanFailed")
    );
    assert!(msg.starts_with("error running Plan: rpc error: code = Internal desc = exit status 1\n\nError: No valid credential sources found"));
}

#[tokio::test(start_paused = true)]
async fn nothing_to_destroy_releases_without_apply() {
    let env = Env::start().await;
    env.module("empty", json!({})).await;
    env.sim.set_behavior(
        NS,
        "empty",
        Behavior {
            nothing_to_destroy: true,
            ..Default::default()
        },
    );
    env.delete_tf("empty");
    assert!(env.wait(|| env.gone("empty"), 600).await);
    assert_eq!(env.sim.stats(NS, "empty").destroy_attempts, 0);
}

#[tokio::test(start_paused = true)]
async fn lock_held_forever_until_force_unlock() {
    let env = Env::start().await;
    env.module("bucket", json!({})).await;
    let lock = LockSpec {
        id: "2f6c9a1e-7b3d-4c5f-9e8a-1b2c3d4e5f60".into(),
        who: "runner@bucket-tf-runner".into(),
        operation: "OperationTypeApply".into(),
        release_after: None,
    };
    env.sim.set_behavior(
        NS,
        "bucket",
        Behavior {
            lock: Some(lock.clone()),
            ..Default::default()
        },
    );
    env.delete_tf("bucket");
    env.idle(1200).await;
    let tf = env.settled("bucket", "TFExecPlanFailed").await;
    assert!(!tf.is_null());
    assert_eq!(tf["status"]["lock"]["pending"], lock.id.as_str());
    let (st, reason, msg) = condition(&tf, "StateLocked").unwrap();
    assert_eq!((st.as_str(), reason.as_str()), ("True", "LockHeld"));
    assert_eq!(
        msg,
        format!("Terraform Locked with Lock Identifier: {}", lock.id)
    );
    assert_eq!(ready_reason(&tf), "TFExecPlanFailed");
    let lease = env
        .cluster
        .store()
        .get(
            "coordination.k8s.io/v1",
            "Lease",
            NS,
            "lock-tfstate-default-bucket",
        )
        .unwrap();
    assert_eq!(lease["spec"]["holderIdentity"], lock.id.as_str());
    // what a guard does: spec.tfstate.forceUnlock yes + the pending identifier (generation change)
    env.cluster
        .store()
        .patch_merge(
            TF,
            "Terraform",
            NS,
            "bucket",
            &json!({"spec": {"tfstate": {"forceUnlock": "yes", "lockIdentifier": lock.id}}}),
        )
        .unwrap();
    assert!(
        env.wait(|| env.gone("bucket"), 1200).await,
        "{:#}",
        env.tf("bucket")
    );
    let lease = env
        .cluster
        .store()
        .get(
            "coordination.k8s.io/v1",
            "Lease",
            NS,
            "lock-tfstate-default-bucket",
        )
        .unwrap();
    assert!(lease["spec"]["holderIdentity"].is_null());
}

#[tokio::test(start_paused = true)]
async fn lock_released_by_holder_then_destroyed() {
    let env = Env::start().await;
    env.module("bucket", json!({})).await;
    let lock = LockSpec {
        id: "lock-a".into(),
        who: "runner@other".into(),
        operation: "OperationTypePlan".into(),
        release_after: Some(Duration::from_secs(90)),
    };
    env.sim.set_behavior(
        NS,
        "bucket",
        Behavior {
            lock: Some(lock),
            ..Default::default()
        },
    );
    env.delete_tf("bucket");
    assert!(
        env.wait(|| env.gone("bucket"), 2400).await,
        "{:#}",
        env.tf("bucket")
    );
}

#[tokio::test(start_paused = true)]
async fn controller_stopped_nothing_happens_and_nothing_is_echoed() {
    let env = Env::start().await;
    env.module("bucket", json!({})).await;
    env.sim.stop();
    env.cluster
        .store()
        .patch_merge(TF, "Terraform", NS, "bucket", &json!({"metadata": {"annotations": {"reconcile.fluxcd.io/requestedAt": "2026-11-26T21:00:00Z"}}}))
        .unwrap();
    env.delete_tf("bucket");
    env.idle(1800).await;
    let tf = env.tf("bucket");
    assert!(!tf.is_null());
    assert!(tf["status"].get("lastHandledReconcileAt").is_none());
    assert_eq!(ready(&tf), Some("True".into()));
}

#[tokio::test(start_paused = true)]
async fn paused_behaviour_ignores_one_cr() {
    let env = Env::start().await;
    env.module("a", json!({})).await;
    env.module("b", json!({})).await;
    env.sim.set_behavior(
        NS,
        "a",
        Behavior {
            paused: true,
            ..Default::default()
        },
    );
    env.delete_tf("a");
    env.delete_tf("b");
    assert!(env.wait(|| env.gone("b"), 600).await);
    assert!(!env.gone("a"));
}

#[tokio::test(start_paused = true)]
async fn suspended_cr_stays_untouched_but_echoes_requested_at() {
    let env = Env::start().await;
    env.module("bucket", json!({})).await;
    env.cluster
        .store()
        .patch_merge(
            TF,
            "Terraform",
            NS,
            "bucket",
            &json!({"spec": {"suspend": true}}),
        )
        .unwrap();
    env.idle(30).await;
    env.delete_tf("bucket");
    env.idle(30).await;
    env.cluster
        .store()
        .patch_merge(
            TF,
            "Terraform",
            NS,
            "bucket",
            &json!({"metadata": {"annotations": {"reconcile.fluxcd.io/requestedAt": "r1"}}}),
        )
        .unwrap();
    assert!(
        env.wait(
            || env.tf("bucket")["status"]["lastHandledReconcileAt"] == "r1",
            120
        )
        .await
    );
    env.idle(1800).await;
    let tf = env.tf("bucket");
    assert!(!tf.is_null());
    assert_eq!(ready(&tf), Some("True".into()));
    assert_eq!(env.sim.stats(NS, "bucket").destroy_attempts, 0);
    // un-suspending (what the guard does) lets the deletion proceed
    env.cluster
        .store()
        .patch_merge(
            TF,
            "Terraform",
            NS,
            "bucket",
            &json!({"spec": {"suspend": false}}),
        )
        .unwrap();
    assert!(env.wait(|| env.gone("bucket"), 600).await);
}

#[tokio::test(start_paused = true)]
async fn requested_at_is_echoed_in_last_handled_reconcile_at() {
    let env = Env::start().await;
    env.module("bucket", json!({})).await;
    let client = env.cluster.client("guard").unwrap();
    let api: kube::Api<kube::api::DynamicObject> = kube::Api::namespaced_with(
        client,
        NS,
        &kube::core::ApiResource::from_gvk_with_plural(
            &kube::core::GroupVersionKind::gvk("infra.contrib.fluxcd.io", "v1alpha2", "Terraform"),
            "terraforms",
        ),
    );
    let patch = json!({"metadata": {"annotations": {"reconcile.fluxcd.io/requestedAt": "2026-11-26T21:05:00.000000001Z"}}});
    api.patch(
        "bucket",
        &kube::api::PatchParams::default(),
        &kube::api::Patch::Merge(&patch),
    )
    .await
    .unwrap();
    assert!(
        env.wait(
            || env.tf("bucket")["status"]["lastHandledReconcileAt"]
                == "2026-11-26T21:05:00.000000001Z",
            60
        )
        .await
    );
}

#[tokio::test(start_paused = true)]
async fn depends_on_blocks_dependency_until_dependant_is_gone() {
    let env = Env::start().await;
    env.module("vpc", json!({})).await;
    env.module("app", json!({"dependsOn": [{"name": "vpc"}]}))
        .await;
    assert!(finalizers(&env.tf("vpc")).contains(&"tf.dependency.of.app".to_string()));
    env.delete_tf("vpc");
    env.idle(300).await;
    let vpc = env
        .settled("vpc", "DeletionBlockedByDependantsReason")
        .await;
    assert!(!vpc.is_null());
    let (st, reason, msg) = condition(&vpc, "Ready").unwrap();
    assert_eq!(
        (st.as_str(), reason.as_str()),
        ("False", "DeletionBlockedByDependantsReason")
    );
    assert_eq!(
        msg,
        "Deletion in progress, but blocked. Please delete app to resume ..."
    );
    assert_eq!(env.sim.stats(NS, "vpc").destroy_attempts, 0);
    env.delete_tf("app");
    assert!(
        env.wait(|| env.gone("app") && env.gone("vpc"), 600).await,
        "{:#}",
        env.tf("vpc")
    );
    assert_eq!(env.sim.stats(NS, "vpc").destroy_attempts, 1);
}

#[tokio::test(start_paused = true)]
async fn dependant_sticks_forever_when_its_dependency_was_force_removed() {
    let env = Env::start().await;
    env.module("vpc", json!({})).await;
    env.module("app", json!({"dependsOn": [{"name": "vpc"}]}))
        .await;
    env.cluster
        .store()
        .force_remove(TF, "Terraform", NS, "vpc")
        .unwrap();
    env.delete_tf("app");
    env.idle(1800).await;
    assert!(
        !env.gone("app"),
        "finalize fails on the missing dependency forever"
    );
    // it did destroy (then failed to finish): the state is empty but the CR stays
    assert!(env.sim.stats(NS, "app").destroy_attempts >= 1);
}

#[tokio::test(start_paused = true)]
async fn manual_approval_waits_with_plan_pending() {
    let env = Env::start().await;
    env.cluster.store().create(source("manual-src")).unwrap();
    env.cluster
        .store()
        .create(terraform("manual", json!({"approvePlan": ""})))
        .unwrap();
    assert!(
        env.wait(
            || !env.tf("manual")["status"]["plan"]["pending"].is_null(),
            300
        )
        .await
    );
    let tf = env.tf("manual");
    assert_eq!(tf["status"]["plan"]["pending"], "plan-latest-3b1f5e2d9c");
    let (st, reason, msg) = condition(&tf, "Ready").unwrap();
    assert_eq!(
        (st.as_str(), reason.as_str()),
        ("Unknown", "TerraformPlannedWithChanges")
    );
    assert_eq!(
        msg,
        "Plan generated: set approvePlan: \"plan-latest-3b1f5e2d9c\" to approve this plan."
    );
    env.cluster
        .store()
        .patch_merge(
            TF,
            "Terraform",
            NS,
            "manual",
            &json!({"spec": {"approvePlan": "plan-latest-3b1f5e2d9c"}}),
        )
        .unwrap();
    let ok = env
        .wait(|| ready(&env.tf("manual")) == Some("True".into()), 300)
        .await;
    assert!(
        ok,
        "{:?} {:#}",
        env.sim.stats(NS, "manual"),
        env.tf("manual")["status"]
    );
    assert_eq!(env.tf("manual")["status"]["lastAppliedRevision"], REV);
}

#[tokio::test(start_paused = true)]
async fn api_errors_are_retried_with_backoff() {
    let env = Env::start().await;
    env.module("bucket", json!({})).await;
    let fault = env.cluster.faults().add(
        FaultRule::status(500)
            .user(CONTROLLER_USER)
            .verb(Verb::Patch)
            .resource("terraforms")
            .times(5),
    );
    env.delete_tf("bucket");
    assert!(
        env.wait(|| env.gone("bucket"), 1200).await,
        "{:#}",
        env.tf("bucket")
    );
    assert_eq!(env.cluster.faults().hits(fault), 5);
}

#[tokio::test(start_paused = true)]
async fn terminating_namespace_blocks_the_runner_forever() {
    let env = Env::start().await;
    env.module("bucket", json!({})).await;
    env.cluster.store().set_namespace_terminating(NS).unwrap();
    env.delete_tf("bucket");
    env.idle(1800).await;
    let tf = env.tf("bucket");
    assert!(
        !tf.is_null(),
        "the runner pod cannot be created in a terminating namespace"
    );
    let (st, reason, _) = condition(&tf, "Ready").unwrap();
    assert_eq!((st.as_str(), reason.as_str()), ("Unknown", "Progressing"));
    assert_eq!(env.sim.stats(NS, "bucket").destroy_attempts, 0);
    // an orphan patch does not help either: releasing also needs the runner
    env.cluster
        .store()
        .patch_merge(
            TF,
            "Terraform",
            NS,
            "bucket",
            &json!({"spec": {"destroyResourcesOnDeletion": false}}),
        )
        .unwrap();
    env.idle(600).await;
    assert!(!env.gone("bucket"));
}

#[tokio::test(start_paused = true)]
async fn custom_backend_keeps_state_out_of_the_cluster() {
    let env = Env::start().await;
    env.module(
        "remote",
        json!({"backendConfig": {"customConfiguration": "backend \"s3\" {\n  bucket = \"acme-tfstate\"\n  key = \"remote.tfstate\"\n}"}}),
    )
    .await;
    assert!(env.secret("tfstate-default-remote").is_none());
    env.delete_tf("remote");
    assert!(env.wait(|| env.gone("remote"), 600).await);
    assert_eq!(env.sim.stats(NS, "remote").destroy_attempts, 1);
    assert!(env.secret("tfstate-default-remote").is_none());
}

#[tokio::test(start_paused = true)]
async fn secret_suffix_names_the_state_secret() {
    let env = Env::start().await;
    env.module(
        "orders-db",
        json!({"backendConfig": {"secretSuffix": "shop-orders-db", "inClusterConfig": true}}),
    )
    .await;
    assert!(env.secret("tfstate-default-shop-orders-db").is_some());
    assert!(env.secret("tfstate-default-orders-db").is_none());
}

/// Upstream watches Flux sources (`tf_controller.go` v0.16.5 lines 738–752,
/// `SourceRevisionChangePredicate`): an artifact that appears reconciles the Terraforms on that
/// source at once, not at their next `retryInterval`. Here the retry interval is 10 minutes, so
/// a simulation without the source watch leaves the CR un-applied for the whole wait.
#[tokio::test(start_paused = true)]
async fn a_source_getting_its_artifact_reconciles_its_terraforms_at_once() {
    let env = Env::start().await;
    let mut src = source("bucket-src");
    let artifact = src["status"].take();
    src.as_object_mut().unwrap().remove("status");
    env.cluster.store().create(src).unwrap();
    env.cluster
        .store()
        .create(terraform("bucket", json!({"retryInterval": "10m"})))
        .unwrap();
    let tf = env.settled("bucket", "ArtifactFailed").await;
    assert_eq!(
        condition(&tf, "Ready").unwrap().2,
        "Source is not ready, artifact not found"
    );
    let before = env.sim.stats(NS, "bucket").reconciles;

    // A status change without an artifact revision triggers nothing.
    env.cluster
        .store()
        .patch_merge(
            "source.toolkit.fluxcd.io/v1",
            "OCIRepository",
            NS,
            "bucket-src",
            &json!({"status": {"observedGeneration": 1}}),
        )
        .unwrap();
    env.idle(30).await;
    assert_eq!(env.sim.stats(NS, "bucket").reconciles, before);

    // The artifact appears: the CR is reconciled and applied well before its retry interval.
    env.cluster
        .store()
        .patch_merge(
            "source.toolkit.fluxcd.io/v1",
            "OCIRepository",
            NS,
            "bucket-src",
            &json!({ "status": artifact }),
        )
        .unwrap();
    assert!(
        env.wait(|| ready(&env.tf("bucket")) == Some("True".into()), 60)
            .await,
        "not applied after the artifact appeared: {:#}",
        env.tf("bucket")["status"]
    );
    assert_eq!(env.tf("bucket")["status"]["lastAppliedRevision"], REV);
}
