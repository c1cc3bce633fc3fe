//! Real Helm (3.16.1 and 4.1.4, from `.cache/helm`, skipped when absent) against the test
//! cluster: install, upgrade and uninstall of a chart with a Terraform CR and a `tfops guard`
//! pre-delete hook Job, which the Job runner executes (here with a stand-in script).

use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use tfops_testcluster::{ClusterOptions, TestCluster, Verb};

fn helm(version: &str) -> Option<PathBuf> {
    let p = Path::new(env!("CARGO_MANIFEST_DIR")).join(format!("../../.cache/helm/{version}/helm"));
    p.exists().then_some(p)
}

fn chart() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/hook-chart")
}

struct Env {
    cluster: TestCluster,
    dir: tempfile::TempDir,
    kubeconfig: PathBuf,
    record: PathBuf,
}

async fn env(exit_code: i32) -> Env {
    let dir = tempfile::tempdir().unwrap();
    let record = dir.path().join("guard-args.txt");
    let bin = dir.path().join("tfops");
    std::fs::write(
        &bin,
        format!(
            "#!/bin/sh\necho \"$@\" >> '{}'\ntest -s \"$KUBECONFIG\" || exit 9\nexit {exit_code}\n",
            record.display()
        ),
    )
    .unwrap();
    std::fs::set_permissions(&bin, std::fs::Permissions::from_mode(0o755)).unwrap();
    // The real CRDs (when ../shared/crds exists): Helm's Terraform CR is validated like on a
    // real cluster (Helm sends fieldValidation=Strict).
    let cluster = TestCluster::start(ClusterOptions {
        job_bin: Some(bin),
        ..ClusterOptions::default().with_shared_crds()
    })
    .await
    .unwrap();
    let kubeconfig = dir.path().join("kubeconfig");
    cluster
        .write_kubeconfig(&kubeconfig, "developer", "default")
        .unwrap();
    Env {
        cluster,
        dir,
        kubeconfig,
        record,
    }
}

async fn run_helm(e: &Env, helm: &Path, args: &[&str]) -> (bool, String) {
    let out = tokio::process::Command::new(helm)
        .args(args)
        .env("KUBECONFIG", &e.kubeconfig)
        .env("HELM_CACHE_HOME", e.dir.path().join("cache"))
        .env("HELM_CONFIG_HOME", e.dir.path().join("config"))
        .env("HELM_DATA_HOME", e.dir.path().join("data"))
        .env_remove("HELM_KUBECONTEXT")
        .env_remove("HELM_NAMESPACE")
        .output()
        .await
        .unwrap();
    let text = format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    (out.status.success(), text)
}

async fn lifecycle(version: &str) {
    let Some(helm) = helm(version) else {
        eprintln!("SKIP: helm {version} not in .cache/helm (run scripts/fetch-helm.sh)");
        return;
    };
    let e = env(0).await;
    let chart = chart();
    let chart = chart.to_str().unwrap();
    let (ok, out) = run_helm(
        &e,
        &helm,
        &[
            "install",
            "shop",
            chart,
            "-n",
            "shop",
            "--create-namespace",
            // no --wait: with the real CRD the Terraform CR is only "ready" for Helm once a
            // controller reconciled it (see helm4_wait_needs_the_controller).
        ],
    )
    .await;
    assert!(ok, "install failed: {out}");
    let store = e.cluster.store();
    let releases = store
        .list_selected("v1", "Secret", "shop", "owner=helm,name=shop")
        .unwrap();
    assert_eq!(releases.len(), 1, "one release Secret");
    assert!(store
        .get(
            "infra.contrib.fluxcd.io/v1alpha2",
            "Terraform",
            "shop",
            "shop-network"
        )
        .is_some());
    assert!(store
        .get("v1", "ConfigMap", "shop", "shop-config")
        .is_some());
    assert!(
        store
            .get("batch/v1", "Job", "shop", "shop-tfops-guard")
            .is_none(),
        "hook not run at install"
    );

    let (ok, out) = run_helm(
        &e,
        &helm,
        &[
            "upgrade", "shop", chart, "-n",
            "shop",
            // no --wait: with the real CRD the Terraform CR is only "ready" for Helm once a
            // controller reconciled it (see helm4_wait_needs_the_controller).
        ],
    )
    .await;
    assert!(ok, "upgrade failed: {out}");
    assert_eq!(
        store
            .list_selected("v1", "Secret", "shop", "owner=helm,name=shop")
            .unwrap()
            .len(),
        2
    );

    let (ok, out) = run_helm(
        &e,
        &helm,
        &["uninstall", "shop", "-n", "shop", "--timeout", "60s"],
    )
    .await;
    assert!(ok, "uninstall failed: {out}");
    let runs = e.cluster.job_runs();
    assert_eq!(runs.len(), 1, "the guard hook ran once: {runs:?}");
    assert_eq!(runs[0].exit_code, Some(0));
    let recorded = std::fs::read_to_string(&e.record).unwrap();
    assert_eq!(
        recorded,
        "guard --release shop --namespace shop --budget 60s\n"
    );
    assert!(store
        .get(
            "infra.contrib.fluxcd.io/v1alpha2",
            "Terraform",
            "shop",
            "shop-network"
        )
        .is_none());
    assert!(store
        .get("v1", "ConfigMap", "shop", "shop-config")
        .is_none());
    assert!(
        store
            .get("batch/v1", "Job", "shop", "shop-tfops-guard")
            .is_none(),
        "hook-succeeded deleted it"
    );
    assert!(store
        .list_selected("v1", "Secret", "shop", "owner=helm")
        .unwrap()
        .is_empty());
    // Helm's requests are attributed to the kubeconfig user (via Impersonate-User).
    assert!(e.cluster.requests().count("developer", Verb::Delete) >= 4);
}

#[tokio::test]
async fn helm4_install_upgrade_uninstall_runs_the_guard_hook() {
    lifecycle("v4.1.4").await;
}

#[tokio::test]
async fn helm3_install_upgrade_uninstall_runs_the_guard_hook() {
    lifecycle("v3.16.1").await;
}

#[tokio::test]
async fn failing_guard_hook_fails_the_uninstall_and_keeps_the_release() {
    let Some(helm) = helm("v4.1.4") else {
        eprintln!("SKIP: helm v4.1.4 not in .cache/helm");
        return;
    };
    let e = env(3).await;
    let chart = chart();
    let (ok, out) = run_helm(
        &e,
        &helm,
        &[
            "install",
            "shop",
            chart.to_str().unwrap(),
            "-n",
            "shop",
            "--create-namespace",
        ],
    )
    .await;
    assert!(ok, "{out}");
    let (ok, out) = run_helm(
        &e,
        &helm,
        &["uninstall", "shop", "-n", "shop", "--timeout", "60s"],
    )
    .await;
    assert!(!ok, "uninstall must fail when the guard fails: {out}");
    assert!(
        out.contains("Job/shop/shop-tfops-guard") && out.contains("Failed"),
        "{out}"
    );
    let store = e.cluster.store();
    assert!(store
        .get(
            "infra.contrib.fluxcd.io/v1alpha2",
            "Terraform",
            "shop",
            "shop-network"
        )
        .is_some());
    let job = store
        .get("batch/v1", "Job", "shop", "shop-tfops-guard")
        .unwrap();
    assert_eq!(job["status"]["failed"], 1);
}

/// With the real Terraform CRD, a new CR has `status.observedGeneration: -1` (the schema's
/// status default), so Helm 4's `--wait` (kstatus) waits for tofu-controller to reconcile it:
/// without a controller the install times out, exactly as on a real cluster.
#[tokio::test]
async fn helm4_wait_needs_the_controller() {
    let Some(helm) = helm("v4.1.4") else {
        eprintln!("SKIP: helm v4.1.4 not in .cache/helm");
        return;
    };
    if ClusterOptions::shared_crds_dir().is_none() {
        eprintln!("SKIP: ../shared/crds absent");
        return;
    }
    let e = env(0).await;
    let chart = chart();
    let (ok, out) = run_helm(
        &e,
        &helm,
        &[
            "install",
            "shop",
            chart.to_str().unwrap(),
            "-n",
            "shop",
            "--create-namespace",
            "--wait",
            "--timeout",
            "2s",
        ],
    )
    .await;
    assert!(!ok, "{out}");
    assert!(
        out.contains("Terraform/shop/shop-network not ready"),
        "{out}"
    );
    assert!(out.contains("latest observed generation is -1"), "{out}");
    let tf = e
        .cluster
        .store()
        .get(
            "infra.contrib.fluxcd.io/v1alpha2",
            "Terraform",
            "shop",
            "shop-network",
        )
        .unwrap();
    assert_eq!(tf["status"]["observedGeneration"], -1);
}
