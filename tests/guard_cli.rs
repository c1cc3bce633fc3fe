//! The real `tfops` binary as `tfops guard`, `tfops uninstall --dry-run` and `tfops uninstall`
//! against the project's in-process Kubernetes API server (real HTTP, kubeconfig in a temp
//! file) with the tofu-controller simulation running in the test process.
//!
//! `tfops uninstall` runs once with `HELM_BIN` pointing at a small recorded-arguments script
//! (it answers `get manifest` with a manifest naming an unlabelled Terraform CR and records
//! every call), so the test checks exactly what the command asks Helm to do; and once end to
//! end through the real Helm 3.16.1 binary: `helm install` with the post-renderer, then
//! `helm tfops uninstall` (Helm sets HELM_BIN for the plugin), against the test API server.

use crate::common;

use std::path::{Path, PathBuf};
use std::process::Output;

use serde_json::{json, Value};
use tfops_testcluster::tofu::{SimConfig, TofuSim, CONTROLLER_USER};
use tfops_testcluster::{ClusterOptions, TestCluster, Verb};

const NS: &str = "team-a";
const TF: &str = "infra.contrib.fluxcd.io/v1alpha2";
const USER: &str = "guard-cli";
const REV: &str = "latest@sha256:3b1f5e2d9c7a4b6e8f0a1c3d5e7f9b2a4c6e8d0f1a3b5c7d9e1f3a5b7c9d1e3f";

fn tfops() -> PathBuf {
    PathBuf::from(env!("CARGO_BIN_EXE_tfops"))
}

/// A CR as the controller leaves it after a successful apply (finalizer, Ready), so the test
/// does not have to wait for the simulation to apply it.
fn applied_terraform(name: &str, release_label: bool) -> Value {
    let mut labels = json!({"tfops.dev/module": name});
    if release_label {
        labels["tfops.dev/release"] = json!("shop");
    }
    json!({
        "apiVersion": TF, "kind": "Terraform",
        "metadata": {
            "name": name, "namespace": NS, "labels": labels,
            "finalizers": ["finalizers.tf.contrib.fluxcd.io"],
            "annotations": {
                "tfops.dev/uninstall-policy": "destroy", "tfops.dev/on-failure": "orphan",
                "tfops.dev/retries": "3", "tfops.dev/timeout": "10m", "tfops.dev/guard": "client"
            }
        },
        "spec": {
            "interval": "10m", "approvePlan": "auto", "path": "./modules/bucket",
            "sourceRef": {"kind": "OCIRepository", "name": "src"},
            "destroyResourcesOnDeletion": true,
            "writeOutputsToSecret": {"name": format!("{name}-outputs")}
        },
        "status": {
            "lastAppliedRevision": REV, "lastAttemptedRevision": REV,
            "conditions": [{"type": "Ready", "status": "True", "reason": "TerraformOutputsWritten",
                "message": format!("Outputs written: {REV}"), "lastTransitionTime": "2026-11-26T20:00:00Z"}]
        }
    })
}

async fn cluster_with_release() -> (TestCluster, TofuSim) {
    let cluster = TestCluster::start(ClusterOptions::default())
        .await
        .expect("test cluster");
    let store = cluster.store();
    store
        .create(json!({"apiVersion": "v1", "kind": "ServiceAccount",
            "metadata": {"name": "tf-runner", "namespace": NS}}))
        .unwrap();
    store
        .create(json!({
            "apiVersion": "source.toolkit.fluxcd.io/v1", "kind": "OCIRepository",
            "metadata": {"name": "src", "namespace": NS},
            "spec": {"interval": "5m", "url": "oci://ghcr.io/acme/modules", "ref": {"tag": "latest"}},
            "status": {"artifact": {"revision": REV, "digest": "sha256:3b1f5e2d9c7a4b6e8f0a1c3d5e7f9b2a4c6e8d0f1a3b5c7d9e1f3a5b7c9d1e3f",
                "path": "x.tar.gz", "url": "http://source-controller/x.tar.gz", "lastUpdateTime": "2026-11-26T20:00:00Z"}}
        }))
        .unwrap();
    store.create(applied_terraform("db", true)).unwrap();
    store.create(applied_terraform("bucket", true)).unwrap();
    let sim = TofuSim::start(
        cluster.client(CONTROLLER_USER).unwrap(),
        SimConfig {
            namespace: Some(NS.into()),
            no_events: true,
            ..SimConfig::default()
        },
    );
    (cluster, sim)
}

async fn run(cmd: &mut tokio::process::Command) -> Output {
    cmd.kill_on_drop(true).output().await.expect("run tfops")
}

fn text(o: &Output) -> String {
    format!(
        "exit {:?}\n--- stdout\n{}\n--- stderr\n{}",
        o.status.code(),
        String::from_utf8_lossy(&o.stdout),
        String::from_utf8_lossy(&o.stderr)
    )
}

fn base_cmd(kubeconfig: &Path) -> tokio::process::Command {
    let mut cmd = tokio::process::Command::new(tfops());
    cmd.env_clear()
        .env("PATH", std::env::var_os("PATH").unwrap_or_default())
        .env("KUBECONFIG", kubeconfig);
    cmd
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn tfops_guard_destroys_the_release_and_exits_zero() {
    let (cluster, _sim) = cluster_with_release().await;
    let dir = tempfile::tempdir().unwrap();
    let kc = dir.path().join("kubeconfig");
    cluster.write_kubeconfig(&kc, USER, NS).unwrap();
    let out = run(base_cmd(&kc).args([
        "guard",
        "--release",
        "shop",
        "--namespace",
        NS,
        "--budget",
        "60s",
    ]))
    .await;
    let t = text(&out);
    assert_eq!(out.status.code(), Some(0), "{t}");
    assert!(t.contains("team-a/db (module db): destroyed"), "{t}");
    assert!(
        t.contains("team-a/bucket (module bucket): destroyed"),
        "{t}"
    );
    for n in ["db", "bucket"] {
        assert!(
            cluster.store().get(TF, "Terraform", NS, n).is_none(),
            "{n} still there"
        );
    }
    // Constant LIST + WATCH, then ≤ 4 requests per CR (3 to delete and follow it, 1 to read
    // its state before the DELETE for its siblings' holder check).
    let n = cluster.requests().count_user(USER);
    assert!(n <= 2 + 4 * 2, "{n} requests");
    assert_eq!(cluster.requests().count(USER, Verb::Delete), 2);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn tfops_uninstall_dry_run_prints_the_plan_and_changes_nothing() {
    let (cluster, _sim) = cluster_with_release().await;
    // One CR with a missing runner dependency: at risk of force.
    cluster
        .store()
        .delete("source.toolkit.fluxcd.io/v1", "OCIRepository", NS, "src")
        .unwrap();
    let dir = tempfile::tempdir().unwrap();
    let kc = dir.path().join("kubeconfig");
    cluster.write_kubeconfig(&kc, USER, NS).unwrap();
    let script = helm_script(dir.path(), "");
    let out = run(base_cmd(&kc)
        .env("HELM_BIN", &script)
        .env("REC", dir.path().join("calls"))
        .args(["uninstall", "shop", "-n", NS, "--dry-run"]))
    .await;
    let t = text(&out);
    assert_eq!(out.status.code(), Some(0), "{t}");
    assert!(
        t.contains("--dry-run: 2 Terraform CR(s), guard budget 4m"),
        "{t}"
    );
    assert!(
        t.contains("team-a/db (module db): at risk of force-remove"),
        "{t}"
    );
    assert!(
        t.contains("source OCIRepository team-a/src is missing"),
        "{t}"
    );
    // Nothing written: no PATCH / DELETE / CREATE by the CLI user, and helm uninstall not run.
    for verb in [Verb::Patch, Verb::Delete, Verb::Create] {
        assert_eq!(cluster.requests().count(USER, verb), 0, "{verb:?}\n{t}");
    }
    let calls = std::fs::read_to_string(dir.path().join("calls")).unwrap_or_default();
    assert!(!calls.contains("uninstall"), "{calls}");
    assert!(cluster.store().get(TF, "Terraform", NS, "db").is_some());
}

/// A `helm` stand-in: records its arguments to $REC and prints `manifest` for `get manifest`.
fn helm_script(dir: &Path, manifest: &str) -> PathBuf {
    let manifest_path = dir.join("manifest.yaml");
    std::fs::write(&manifest_path, manifest).unwrap();
    let script = dir.join("helm");
    let body = format!(
        "#!/bin/sh\necho \"$@\" >> \"$REC\"\nif [ \"$1\" = get ]; then cat '{}'; fi\nexit 0\n",
        manifest_path.display()
    );
    std::fs::write(&script, body).unwrap();
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        std::fs::set_permissions(&script, std::fs::Permissions::from_mode(0o755)).unwrap();
    }
    script
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn tfops_uninstall_runs_the_guard_then_helm_uninstall() {
    let (cluster, _sim) = cluster_with_release().await;
    // A CR installed without the post-renderer: no release label, only in the manifest.
    cluster
        .store()
        .create(applied_terraform("legacy", false))
        .unwrap();
    let dir = tempfile::tempdir().unwrap();
    let kc = dir.path().join("kubeconfig");
    cluster.write_kubeconfig(&kc, USER, NS).unwrap();
    let manifest = "---\n# Source: shop/templates/legacy.yaml\napiVersion: infra.contrib.fluxcd.io/v1alpha2\nkind: Terraform\nmetadata:\n  name: legacy\nspec:\n  path: ./legacy\n---\n# Source: shop/templates/cm.yaml\napiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: cfg\n";
    let script = helm_script(dir.path(), manifest);
    let out = run(base_cmd(&kc)
        .env("HELM_BIN", &script)
        .env("REC", dir.path().join("calls"))
        .args([
            "uninstall",
            "shop",
            "-n",
            NS,
            "--timeout",
            "2m",
            "--",
            "--wait",
        ]))
    .await;
    let t = text(&out);
    assert_eq!(out.status.code(), Some(0), "{t}");
    // Not a terminal: the progress is plain lines on stderr, one per action; stdout keeps the
    // report only.
    let progress = String::from_utf8_lossy(&out.stderr);
    let report = String::from_utf8_lossy(&out.stdout);
    for n in ["db", "bucket", "legacy"] {
        assert!(
            progress.contains(&format!("team-a/{n}: deleting")),
            "{progress}"
        );
        assert!(
            progress.contains(&format!("team-a/{n}: destroyed")),
            "{progress}"
        );
        assert!(!report.contains(&format!("] team-a/{n}:")), "{report}");
        assert!(
            t.contains(&format!("team-a/{n} (module {n}): destroyed")),
            "{t}"
        );
        assert!(cluster.store().get(TF, "Terraform", NS, n).is_none());
    }
    let calls = std::fs::read_to_string(dir.path().join("calls")).unwrap();
    let calls: Vec<&str> = calls.lines().collect();
    assert_eq!(
        calls,
        [
            "get manifest shop -n team-a",
            "uninstall shop -n team-a --timeout 2m --wait"
        ],
        "{t}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn tfops_uninstall_json_output_has_no_progress_lines() {
    let (cluster, _sim) = cluster_with_release().await;
    let dir = tempfile::tempdir().unwrap();
    let kc = dir.path().join("kubeconfig");
    cluster.write_kubeconfig(&kc, USER, NS).unwrap();
    let script = helm_script(dir.path(), "");
    let out = run(base_cmd(&kc)
        .env("HELM_BIN", &script)
        .env("REC", dir.path().join("calls"))
        .args([
            "uninstall",
            "shop",
            "-n",
            NS,
            "--timeout",
            "2m",
            "-o",
            "json",
        ]))
    .await;
    let t = text(&out);
    assert_eq!(out.status.code(), Some(0), "{t}");
    let report: Value = serde_json::from_slice(&out.stdout).expect("stdout is one JSON report");
    assert!(
        report["crs"].as_array().is_some_and(|c| !c.is_empty()),
        "{report}"
    );
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(!err.contains("elapsed,"), "{err}");
}

/// The rescue: a plain `helm uninstall` already deleted the release, its source and runner
/// ServiceAccount, and left the Terraform CRs stuck behind their finalizers. `helm tfops
/// uninstall` clears them by label (ledger first) and does not run `helm uninstall` on a
/// release Helm no longer knows.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn tfops_uninstall_clears_the_crs_a_plain_uninstall_left_stuck() {
    let (cluster, _sim) = cluster_with_release().await;
    let store = cluster.store();
    for n in ["db", "bucket"] {
        store.delete(TF, "Terraform", NS, n).unwrap();
    }
    store
        .delete("source.toolkit.fluxcd.io/v1", "OCIRepository", NS, "src")
        .unwrap();
    store
        .delete("v1", "ServiceAccount", NS, "tf-runner")
        .unwrap();
    until(&cluster, "the CRs to be stuck without their source", || {
        ["db", "bucket"].iter().all(|n| {
            store.get(TF, "Terraform", NS, n).is_some_and(|cr| {
                cr["status"]["conditions"].as_array().is_some_and(|cs| {
                    cs.iter()
                        .any(|c| c["type"] == "Ready" && c["reason"] == "ArtifactFailed")
                })
            })
        })
    })
    .await;

    let dir = tempfile::tempdir().unwrap();
    let kc = dir.path().join("kubeconfig");
    cluster.write_kubeconfig(&kc, USER, NS).unwrap();
    let script = dir.path().join("helm");
    std::fs::write(
        &script,
        "#!/bin/sh\necho \"$@\" >> \"$REC\"\nif [ \"$1\" = get ]; then echo 'Error: release: not found' >&2; exit 1; fi\nexit 0\n",
    )
    .unwrap();
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        std::fs::set_permissions(&script, std::fs::Permissions::from_mode(0o755)).unwrap();
    }
    let out = run(base_cmd(&kc)
        .env("HELM_BIN", &script)
        .env("REC", dir.path().join("calls"))
        .args(["uninstall", "shop", "-n", NS, "--timeout", "2m"]))
    .await;
    let t = text(&out);
    assert_eq!(out.status.code(), Some(0), "{t}");
    assert!(t.contains("already uninstalled"), "{t}");
    for n in ["db", "bucket"] {
        assert!(store.get(TF, "Terraform", NS, n).is_none(), "{n}: {t}");
    }
    let ledger = store
        .list_selected("v1", "Secret", NS, "tfops.dev/ledger")
        .unwrap();
    assert_eq!(
        ledger.len(),
        2,
        "a ledger entry per CR released without a destroy: {t}"
    );
    let calls = std::fs::read_to_string(dir.path().join("calls")).unwrap();
    assert_eq!(
        calls.lines().collect::<Vec<_>>(),
        ["get manifest shop -n team-a"],
        "{t}"
    );
}

/// Wait (on store change notifications, bounded) until `cond` holds.
async fn until(cluster: &TestCluster, what: &str, cond: impl Fn() -> bool) {
    let mut changes = cluster.store().subscribe();
    let waited = tokio::time::timeout(std::time::Duration::from_secs(60), async {
        while !cond() {
            if changes.changed().await.is_err() {
                return;
            }
        }
    })
    .await;
    assert!(waited.is_ok() && cond(), "timed out waiting for {what}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn helm3_install_then_helm_tfops_uninstall_end_to_end() {
    use common::{chart, stderr, stdout, Helm, HelmHome};
    let cluster = TestCluster::start(ClusterOptions::default())
        .await
        .expect("test cluster");
    let home = HelmHome::new(Helm::V3);
    let kubeconfig = home.path("kubeconfig");
    cluster
        .write_kubeconfig(&kubeconfig, "helm-user", "shop")
        .expect("kubeconfig");
    let home = tokio::task::spawn_blocking(move || {
        home.install_plugins();
        home
    })
    .await
    .expect("join");
    let _sim = TofuSim::start(
        cluster.client(CONTROLLER_USER).unwrap(),
        SimConfig {
            namespace: Some("shop".into()),
            no_events: true,
            ..SimConfig::default()
        },
    );
    let helm = |args: Vec<String>| {
        let mut cmd = home.helm(args);
        cmd.env("KUBECONFIG", &kubeconfig);
        cmd
    };
    let install = helm(
        [
            "install",
            "shop",
            chart("orders-app").to_str().unwrap(),
            "--namespace",
            "shop",
            "--post-renderer",
            "tfops-render",
            "--post-renderer-args",
            "--namespace=shop",
            "--disable-openapi-validation",
        ]
        .iter()
        .map(|s| s.to_string())
        .collect(),
    );
    let out = tokio::task::spawn_blocking(move || {
        let mut install = install;
        install.output().expect("helm install")
    })
    .await
    .unwrap();
    assert!(
        out.status.success(),
        "helm install: {}\n{}",
        stdout(&out),
        stderr(&out)
    );
    // Stand in for source-controller: give the generated OCIRepository an artifact, then let
    // the simulated tofu-controller apply the module.
    let store = cluster.store();
    let src = store
        .get(
            "source.toolkit.fluxcd.io/v1",
            "OCIRepository",
            "shop",
            "shop-orders-db",
        )
        .expect("generated OCIRepository");
    let mut src = src;
    src["status"] = json!({"artifact": {"revision": REV, "digest": "sha256:3b1f5e2d9c7a4b6e8f0a1c3d5e7f9b2a4c6e8d0f1a3b5c7d9e1f3a5b7c9d1e3f",
        "path": "x.tar.gz", "url": "http://source-controller/x.tar.gz", "lastUpdateTime": "2026-11-26T20:00:00Z"}});
    store.update(src).unwrap();
    let tf_ready = || {
        store
            .get(TF, "Terraform", "shop", "shop-orders-db")
            .is_some_and(|t| {
                t["status"]["conditions"].as_array().is_some_and(|c| {
                    c.iter()
                        .any(|c| c["type"] == "Ready" && c["status"] == "True")
                })
            })
    };
    // The controller reacts to the source only on its next reconcile: request one.
    store
        .patch_merge(
            TF,
            "Terraform",
            "shop",
            "shop-orders-db",
            &json!({"metadata": {"annotations": {"reconcile.fluxcd.io/requestedAt": "now"}}}),
        )
        .unwrap();
    until(&cluster, "the module to be applied", tf_ready).await;

    let uninstall = helm(
        [
            "tfops",
            "uninstall",
            "shop",
            "-n",
            "shop",
            "--timeout",
            "2m",
        ]
        .iter()
        .map(|s| s.to_string())
        .collect(),
    );
    let out = tokio::task::spawn_blocking(move || {
        let mut uninstall = uninstall;
        uninstall.output().expect("helm tfops uninstall")
    })
    .await
    .unwrap();
    let t = format!("{}\n{}", stdout(&out), stderr(&out));
    assert!(out.status.success(), "{t}");
    assert!(
        t.contains("shop/shop-orders-db (module orders-db): destroyed"),
        "{t}"
    );
    assert!(t.contains("release \"shop\" uninstalled"), "{t}");
    assert!(store
        .get(TF, "Terraform", "shop", "shop-orders-db")
        .is_none());
    assert!(store
        .get("apps/v1", "Deployment", "shop", "shop-orders")
        .is_none());
    // Nothing left behind without a record: no ledger entry needed for a destroyed module.
    assert!(store
        .list_selected("v1", "Secret", "shop", "tfops.dev/ledger")
        .unwrap()
        .is_empty());
}
