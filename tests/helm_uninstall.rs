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

use crate::common;

use std::time::Duration;

use std::path::PathBuf;

use common::{chart, stderr, stdout, Helm, HelmHome};
use serde_json::{json, Value};
use tfops_testcluster::tofu::{
    Behavior, DestroyAttempt, FailStage, SimConfig, TofuSim, CONTROLLER_USER,
};
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

/// A release installed through the plugins with both modules applied by the simulation.
struct Installed {
    cluster: TestCluster,
    sim: TofuSim,
    home: HelmHome,
    kubeconfig: PathBuf,
}

impl Installed {
    /// `helm` of this home against the test cluster.
    fn helm(&self, args: &[&str]) -> std::process::Command {
        let mut cmd = self.home.helm(args);
        cmd.env("KUBECONFIG", &self.kubeconfig);
        cmd
    }

    /// `helm uninstall` as the user of each version runs it.
    async fn uninstall(&self) -> std::process::Output {
        let args: &[&str] = match self.home.helm {
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
        output(self.helm(args)).await
    }
}

/// Install charts-example/bucket-iam as release `reports` with `catalog` as the catalog
/// configuration (its guard budget set to 60s, well inside the uninstall --timeout), then let
/// the simulated controllers apply both modules.
async fn install_and_apply(
    version: Helm,
    mut catalog: Value,
    behaviors: &[(&str, Behavior)],
) -> Installed {
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
    for (cr, behavior) in behaviors {
        sim.set_behavior(NS, cr, behavior.clone());
    }
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
    catalog["guard"]["budget"] = json!("60s");
    let catalog_file = home.path("catalog.yaml");
    std::fs::write(&catalog_file, serde_saphyr::to_string(&catalog).unwrap()).unwrap();
    let installed = Installed {
        cluster,
        sim,
        home,
        kubeconfig,
    };

    let config_arg = format!("--config={}", catalog_file.display());
    let out = output(installed.helm(&[
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
    let store = installed.cluster.store();
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
        installed.sim.enqueue(NS, cr);
    }
    wait_for(&installed.cluster, "both modules are applied", |c| {
        ["reports-bucket", "reports-bucket-iam"].iter().all(|n| {
            c.store()
                .get(TF, "Terraform", NS, n)
                .is_some_and(|cr| applied(&cr))
        })
    })
    .await;
    installed
}

/// Who the guard is in the request log, after checking how it ran.
fn guard_user(installed: &Installed) -> String {
    let runs = installed.cluster.job_runs();
    match installed.home.helm {
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
    }
}

/// Successful DELETEs of Terraform CRs by `user`, in order.
fn terraform_deletes(cluster: &TestCluster, user: &str) -> Vec<String> {
    cluster
        .requests()
        .filter(|r| {
            r.user == user
                && r.verb == Some(Verb::Delete)
                && r.resource == "terraforms"
                && r.status < 300
        })
        .into_iter()
        .map(|r| r.name)
        .collect()
}

/// Uninstall finished: no CR, no source, no release record, no guard Job.
fn assert_release_gone(store: &tfops_testcluster::Store) {
    assert!(store.list(TF, "Terraform", NS).is_empty());
    assert!(store.list(GIT, "GitRepository", NS).is_empty());
    assert!(store
        .list_selected("v1", "Secret", NS, "owner=helm")
        .unwrap()
        .is_empty());
    assert!(store
        .get("batch/v1", "Job", NS, "reports-tfops-guard")
        .is_none());
}

async fn lifecycle(version: Helm) {
    let installed = install_and_apply(version, json!({}), &[]).await;
    let out = installed.uninstall().await;
    assert!(
        out.status.success(),
        "uninstall: {}{}\njob runs: {:#?}",
        stdout(&out),
        stderr(&out),
        installed.cluster.job_runs()
    );

    // The guard deleted the dependant first (later 404s are Helm's own deletes).
    let user = guard_user(&installed);
    assert_eq!(
        terraform_deletes(&installed.cluster, &user),
        ["reports-bucket-iam", "reports-bucket"],
        "{}",
        stdout(&out)
    );
    for cr in ["reports-bucket", "reports-bucket-iam"] {
        assert!(
            installed.sim.stats(NS, cr).destroy_attempts >= 1,
            "{cr} was not destroyed"
        );
    }
    let store = installed.cluster.store();
    assert_release_gone(store);
    assert!(store
        .list_selected("v1", "Secret", "", "tfops.dev/ledger")
        .unwrap()
        .is_empty());
}

/// The bucket cannot be destroyed (not empty): the catalog's classifier rule (charts-example
/// catalog.yaml, injected into the guard Job as TFOPS_CLASSIFIER_RULES) makes it permanent, the
/// module says onFailure orphan: the guard records it in the ledger and lets it go; Helm 4's
/// plain `helm uninstall` still finishes, and the ledger entry survives the release.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn helm4_a_bucket_that_cannot_be_destroyed_is_orphaned_into_the_ledger() {
    let catalog_text = std::fs::read_to_string(chart("catalog.yaml")).unwrap();
    let catalog: Value = serde_saphyr::from_str(&catalog_text).unwrap();
    let not_empty = Behavior {
        destroy: vec![DestroyAttempt::Fail {
            stage: FailStage::Apply,
            message: "deleting Storage Bucket \"reports-760cbee9\": googleapi: Error 409: The bucket you tried to delete is not empty., conflict".into(),
            times: 1,
            forever: true,
            destroyed: Vec::new(),
        }],
        ..Behavior::default()
    };
    let installed = install_and_apply(Helm::V4, catalog, &[("reports-bucket", not_empty)]).await;
    let out = installed.uninstall().await;
    assert!(
        out.status.success(),
        "uninstall: {}{}\njob runs: {:#?}",
        stdout(&out),
        stderr(&out),
        installed.cluster.job_runs()
    );
    let user = guard_user(&installed);
    let run = &installed.cluster.job_runs()[0];
    assert!(
        run.stdout.contains("orphan") || run.stderr.contains("orphan"),
        "{run:#?}"
    );
    assert_eq!(
        terraform_deletes(&installed.cluster, &user),
        ["reports-bucket-iam", "reports-bucket"]
    );
    let store = installed.cluster.store();
    assert_release_gone(store);

    let ledger = store
        .list_selected("v1", "Secret", NS, "tfops.dev/ledger")
        .unwrap();
    assert_eq!(ledger.len(), 1, "{ledger:#?}");
    let entry = &ledger[0];
    let labels = &entry["metadata"]["labels"];
    assert_eq!(labels["tfops.dev/release"], "reports");
    assert_eq!(labels["tfops.dev/module"], "bucket");
    assert_eq!(labels["tfops.dev/decision"], "orphaned");
    assert_eq!(entry["type"], "tfops.dev/ledger");
    assert!(entry["metadata"]["name"]
        .as_str()
        .unwrap()
        .starts_with("tfops-ledger-reports-bucket-"));
    // The entry: a permanent failure by the catalog's rule, decided as orphaned.
    let secret: k8s_openapi::api::core::v1::Secret = serde_json::from_value(entry.clone()).unwrap();
    let data = secret.data.unwrap_or_default();
    let record: Value = serde_json::from_slice(&data["entry.json"].0).unwrap();
    assert_eq!(record["decision"], "orphaned", "{record:#}");
    assert_eq!(record["class"], "permanent", "{record:#}");
    assert_eq!(record["module"], "bucket");
    assert!(
        record["message"]
            .as_str()
            .unwrap()
            .contains("rule catalog[0]"),
        "not classified by the catalog's rule: {record:#}"
    );
}
