//! The Job runner: a Job whose container runs `tfops …` is executed with the configured binary
//! (its args, literal env, and a kubeconfig for the Job's ServiceAccount), and its status gets
//! the `Complete` / `Failed` conditions Helm waits for.

use k8s_openapi::api::batch::v1::Job;
use kube::api::{Api, PostParams};
use serde_json::{json, Value};
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use tfops_testcluster::{ClusterOptions, Store, TestCluster};

fn script(dir: &Path, body: &str) -> PathBuf {
    let p = dir.join("fake-tfops");
    std::fs::write(&p, format!("#!/bin/sh\n{body}\n")).unwrap();
    std::fs::set_permissions(&p, std::fs::Permissions::from_mode(0o755)).unwrap();
    p
}

fn job(name: &str, deadline: Option<u64>) -> Job {
    let mut spec = json!({
        "backoffLimit": 0,
        "template": {"spec": {
            "restartPolicy": "Never",
            "serviceAccountName": "shop-tfops-guard",
            "containers": [{
                "name": "guard",
                "image": "ghcr.io/helm-tfops/tfops:v0.1.0",
                "command": ["tfops", "guard"],
                "args": ["--release", "shop", "--namespace", "shop", "--budget", "240s"],
                "env": [{"name": "TFOPS_CLASSIFIER_RULES", "value": "[]"}]
            }]
        }}
    });
    if let Some(d) = deadline {
        spec["activeDeadlineSeconds"] = json!(d);
    }
    serde_json::from_value(json!({
        "apiVersion": "batch/v1", "kind": "Job",
        "metadata": {"name": name, "annotations": {"helm.sh/hook": "pre-delete"}},
        "spec": spec
    }))
    .unwrap()
}

async fn cluster_with(bin: PathBuf) -> TestCluster {
    let c = TestCluster::start(ClusterOptions {
        job_bin: Some(bin),
        ..Default::default()
    })
    .await
    .unwrap();
    c.store()
        .create(json!({"apiVersion": "v1", "kind": "ServiceAccount",
            "metadata": {"name": "shop-tfops-guard", "namespace": "shop"}}))
        .unwrap();
    c
}

/// Wait (on store change notifications, no polling sleeps) until the Job has a terminal condition.
async fn terminal_condition(store: &Store, ns: &str, name: &str) -> (String, String) {
    let mut changes = store.subscribe();
    loop {
        if let Some(j) = store.get("batch/v1", "Job", ns, name) {
            let conds = j
                .pointer("/status/conditions")
                .and_then(Value::as_array)
                .cloned()
                .unwrap_or_default();
            for c in conds {
                let ty = c["type"].as_str().unwrap_or("");
                if (ty == "Complete" || ty == "Failed") && c["status"] == "True" {
                    return (
                        ty.to_string(),
                        c["reason"].as_str().unwrap_or("").to_string(),
                    );
                }
            }
        }
        changes.changed().await.unwrap();
    }
}

#[tokio::test]
async fn tfops_job_runs_the_binary_and_completes() {
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("out.txt");
    let bin = script(
        dir.path(),
        &format!(
            "echo \"$@\" > {o}; echo \"rules=$TFOPS_CLASSIFIER_RULES\" >> {o}; cat \"$KUBECONFIG\" >> {o}; echo done",
            o = out.display()
        ),
    );
    let c = cluster_with(bin).await;
    let api: Api<Job> = Api::namespaced(c.client("helm").unwrap(), "shop");
    api.create(&PostParams::default(), &job("shop-tfops-guard", Some(270)))
        .await
        .unwrap();
    let (ty, _) = terminal_condition(c.store(), "shop", "shop-tfops-guard").await;
    assert_eq!(ty, "Complete");
    let j = api.get("shop-tfops-guard").await.unwrap();
    let st = j.status.unwrap();
    assert_eq!(st.succeeded, Some(1));
    assert!(st.completion_time.is_some());
    let written = std::fs::read_to_string(&out).unwrap();
    assert!(
        written.starts_with("guard --release shop --namespace shop --budget 240s\n"),
        "{written}"
    );
    assert!(written.contains("rules=[]"));
    assert!(
        written.contains("token: system:serviceaccount:shop:shop-tfops-guard"),
        "{written}"
    );
    assert!(written.contains(&c.url()));
    let runs = c.job_runs();
    assert_eq!(runs.len(), 1);
    assert_eq!(runs[0].exit_code, Some(0));
    assert_eq!(runs[0].stdout, "done\n");
}

#[tokio::test]
async fn failing_job_gets_failed_condition() {
    let dir = tempfile::tempdir().unwrap();
    let bin = script(
        dir.path(),
        "echo 'blocked: run helm tfops orphans' >&2; exit 3",
    );
    let c = cluster_with(bin).await;
    let api: Api<Job> = Api::namespaced(c.client("helm").unwrap(), "shop");
    api.create(&PostParams::default(), &job("g", None))
        .await
        .unwrap();
    let (ty, reason) = terminal_condition(c.store(), "shop", "g").await;
    assert_eq!(
        (ty.as_str(), reason.as_str()),
        ("Failed", "BackoffLimitExceeded")
    );
    assert_eq!(c.job_runs()[0].exit_code, Some(3));
    assert!(c.job_runs()[0].stderr.contains("blocked"));
}

#[tokio::test]
async fn job_past_its_active_deadline_is_killed() {
    let dir = tempfile::tempdir().unwrap();
    let bin = script(dir.path(), "exec sleep 30");
    let c = cluster_with(bin).await;
    let api: Api<Job> = Api::namespaced(c.client("helm").unwrap(), "shop");
    api.create(&PostParams::default(), &job("slow", Some(1)))
        .await
        .unwrap();
    let (ty, reason) = terminal_condition(c.store(), "shop", "slow").await;
    assert_eq!(
        (ty.as_str(), reason.as_str()),
        ("Failed", "DeadlineExceeded")
    );
}

#[tokio::test]
async fn other_jobs_are_left_alone() {
    let dir = tempfile::tempdir().unwrap();
    let bin = script(dir.path(), "exit 0");
    let c = cluster_with(bin).await;
    let mut j = job("other", None);
    j.spec
        .as_mut()
        .unwrap()
        .template
        .spec
        .as_mut()
        .unwrap()
        .containers[0]
        .command = Some(vec!["sh".into()]);
    let api: Api<Job> = Api::namespaced(c.client("helm").unwrap(), "shop");
    api.create(&PostParams::default(), &j).await.unwrap();
    // a tfops job created afterwards completes; the other one stays without status
    api.create(&PostParams::default(), &job("guard", None))
        .await
        .unwrap();
    terminal_condition(c.store(), "shop", "guard").await;
    assert!(api.get("other").await.unwrap().status.is_none());
    assert_eq!(c.job_runs().len(), 1);
}

#[tokio::test]
async fn job_waits_for_its_service_account() {
    let dir = tempfile::tempdir().unwrap();
    let bin = script(dir.path(), "exit 0");
    let c = cluster_with(bin).await;
    let mut j = job("needs-sa", None);
    j.spec
        .as_mut()
        .unwrap()
        .template
        .spec
        .as_mut()
        .unwrap()
        .service_account_name = Some("later".into());
    let api: Api<Job> = Api::namespaced(c.client("helm").unwrap(), "shop");
    api.create(&PostParams::default(), &j).await.unwrap();
    // unrelated writes do not start it
    c.store()
        .create(json!({"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": "x", "namespace": "shop"}}))
        .unwrap();
    assert!(api.get("needs-sa").await.unwrap().status.is_none());
    assert!(c.job_runs().is_empty());
    c.store()
        .create(json!({"apiVersion": "v1", "kind": "ServiceAccount", "metadata": {"name": "later", "namespace": "shop"}}))
        .unwrap();
    let (ty, _) = terminal_condition(c.store(), "shop", "needs-sa").await;
    assert_eq!(ty, "Complete");
}
