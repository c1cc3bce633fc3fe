//! End to end, everything real but the cluster: the plugins installed from this checkout,
//! `helm install` of charts-example/bucket-iam through the `tfops-render` post-renderer into
//! the project's in-process API server, the tofu-controller simulation applying both modules,
//! then the uninstall a user runs:
//! - Helm 4.1.4: a plain `helm uninstall`. Helm runs the injected pre-delete Job, the test
//!   cluster's Job runner executes it with the real `tfops guard`;
//! - Helm 3.16.1: `helm tfops uninstall` (Helm 3 runs no hook a post-renderer adds), the guard
//!   engine client-side, then `helm uninstall`.
//!
//! Either way the guard deletes the dependant (bucket-iam) before the bucket, the simulation
//! destroys both, and Helm removes the rest. Nothing stays behind: no Terraform CR, no
//! finalizer deadlock, no ledger entry.

mod common;

use std::time::Duration;

use common::{chart, stderr, stdout, Helm, HelmHome};
use serde_json::{json, Value};
use tfops_testcluster::tofu::{SimConfig, TofuSim, CONTROLLER_USER};
use tfops_testcluster::{ClusterOptions, TestCluster, Verb};

const NS: &str = "shop";
const TF: &str = "infra.contrib.fluxcd.io/v1alpha2";
const GIT: &str = "source.toolkit.fluxcd.io/v1";
/// Upper bound on how long the simulated controller may take to apply or destroy (real time:
/// helm and the guard are real processes); the test never sleeps, it waits for changes.
const PATIENCE: Duration = Duration::from_secs(60);

async fn output(mut cmd: std::process::Command) -> std::process::Output {
    tokio::task::spawn_blocking(move || cmd.output().expect("run helm"))
        .await
        .expect("join")
}

fn applied(cr: &Value) -> bool {
    let has_finalizer = cr["metadata"]["finalizers"]
        .as_array()
        .is_some_and(|f| !f.is_empty());
    let ready = cr["status"]["conditions"].as_array().is_some_and(|cs| {
        cs.iter()
            .any(|c| c["type"] == "Ready" && c["status"] == "True")
    });
    has_finalizer && ready
}

/// Wait (on store changes, bounded by [`PATIENCE`]) until `done` holds.
async fn wait_for(cluster: &TestCluster, what: &str, done: impl Fn(&TestCluster) -> bool) {
    let mut changes = cluster.store().subscribe();
    let waited = tokio::time::timeout(PATIENCE, async {
        while !done(cluster) {
            if changes.changed().await.is_err() {
                break;
            }
        }
    })
    .await;
    assert!(
        waited.is_ok() && done(cluster),
        "timed out waiting until {what}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn helm4_uninstall_runs_the_injected_guard_and_leaves_nothing_behind() {
    lifecycle(Helm::V4).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn helm3_tfops_uninstall_runs_the_guard_client_side_and_leaves_nothing_behind() {
    lifecycle(Helm::V3).await;
}

async fn lifecycle(version: Helm) {
    let cluster = TestCluster::start(ClusterOptions {
        job_bin: Some(common::tfops_bin()),
        ..ClusterOptions::default()
    })
    .await
    .expect("test cluster");
    let sim = TofuSim::start(
        cluster.client(CONTROLLER_USER).expect("client"),
        SimConfig {
            namespace: Some(NS.into()),
            no_events: true,
            ..SimConfig::default()
        },
    );
    let home = tokio::task::spawn_blocking(move || {
        let home = HelmHome::new(version);
        home.install_plugins();
        home
    })
    .await
    .expect("join");
    let kubeconfig = home.path("kubeconfig");
    cluster
        .write_kubeconfig(&kubeconfig, "developer", NS)
        .expect("kubeconfig");
    // A guard budget well inside the uninstall --timeout below.
    let catalog = home.path("catalog.yaml");
    std::fs::write(
        &catalog,
        serde_saphyr::to_string(&json!({"guard": {"budget": "60s"}})).unwrap(),
    )
    .unwrap();
    let config_arg = format!("--config={}", catalog.display());
    let helm = |args: &[&str]| {
        let mut cmd = home.helm(args);
        cmd.env("KUBECONFIG", &kubeconfig);
        cmd
    };

    let out = output(helm(&[
        "install",
        "reports",
        chart("bucket-iam").to_str().unwrap(),
        "-n",
        NS,
        "--post-renderer",
        "tfops-render",
        "--post-renderer-args",
        &config_arg,
        "--timeout",
        "60s",
    ]))
    .await;
    assert!(
        out.status.success(),
        "install: {}{}",
        stdout(&out),
        stderr(&out)
    );

    // source-controller's part: both Git sources get an artifact.
    let store = cluster.store();
    for source in ["reports-bucket", "reports-platform-modules"] {
        store
            .patch_merge(
                GIT,
                "GitRepository",
                NS,
                source,
                &json!({"status": {"artifact": {
                    "revision": "v0.1.0@sha1:0123456789abcdef0123456789abcdef01234567",
                    "digest": "sha256:3b1f5e2d9c7a4b6e8f0a1c3d5e7f9b2a4c6e8d0f1a3b5c7d9e1f3a5b7c9d1e3f",
                    "path": "gitrepository/shop/x.tar.gz",
                    "url": "http://source-controller/x.tar.gz",
                    "lastUpdateTime": "2026-11-26T20:00:00Z"
                }}}),
            )
            .unwrap_or_else(|e| panic!("{source}: {e}"));
    }
    for cr in ["reports-bucket", "reports-bucket-iam"] {
        sim.enqueue(NS, cr);
    }
    wait_for(&cluster, "both modules are applied", |c| {
        ["reports-bucket", "reports-bucket-iam"].iter().all(|n| {
            c.store()
                .get(TF, "Terraform", NS, n)
                .is_some_and(|cr| applied(&cr))
        })
    })
    .await;

    let uninstall: &[&str] = match version {
        Helm::V4 => &["uninstall", "reports", "-n", NS, "--timeout", "120s"],
        Helm::V3 => &[
            "tfops",
            "uninstall",
            "reports",
            "-n",
            NS,
            "--timeout",
            "120s",
        ],
    };
    let out = output(helm(uninstall)).await;
    assert!(
        out.status.success(),
        "uninstall: {}{}\njob runs: {:#?}",
        stdout(&out),
        stderr(&out),
        cluster.job_runs()
    );

    let runs = cluster.job_runs();
    let guard_user = match version {
        Helm::V4 => {
            assert_eq!(runs.len(), 1, "the guard hook ran once: {runs:#?}");
            let run = &runs[0];
            assert_eq!(run.exit_code, Some(0), "{run:#?}");
            assert_eq!(run.name, "reports-tfops-guard");
            assert!(run.argv.iter().any(|a| a == "guard"), "{:?}", run.argv);
            // As the Job's ServiceAccount.
            format!("system:serviceaccount:{NS}:reports-tfops-guard")
        }
        Helm::V3 => {
            assert!(runs.is_empty(), "Helm 3 ran a hook: {runs:#?}");
            "developer".to_string()
        }
    };

    // The guard deleted the dependant first (later 404s are Helm's own deletes).
    let deletes: Vec<String> = cluster
        .requests()
        .filter(|r| {
            r.user == guard_user
                && r.verb == Some(Verb::Delete)
                && r.resource == "terraforms"
                && r.status < 300
        })
        .into_iter()
        .map(|r| r.name)
        .collect();
    assert_eq!(
        deletes,
        ["reports-bucket-iam", "reports-bucket"],
        "{}",
        stdout(&out)
    );
    for cr in ["reports-bucket", "reports-bucket-iam"] {
        assert!(
            sim.stats(NS, cr).destroy_attempts >= 1,
            "{cr} was not destroyed"
        );
    }

    // Nothing behind: no CR, no source, no release record, no orphan ledger, no guard Job.
    assert!(store.list(TF, "Terraform", NS).is_empty());
    assert!(store.list(GIT, "GitRepository", NS).is_empty());
    assert!(store
        .list_selected("v1", "Secret", NS, "owner=helm")
        .unwrap()
        .is_empty());
    assert!(store
        .list_selected("v1", "Secret", "", "tfops.dev/ledger")
        .unwrap()
        .is_empty());
    assert!(store
        .get("batch/v1", "Job", NS, "reports-tfops-guard")
        .is_none());
}
