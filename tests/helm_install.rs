//! Real `helm install` of charts-example/orders-app with the `tfops-render` post-renderer
//! against the project's in-process Kubernetes API server (real HTTP).
//!
//! - Helm 3.16.1: a full install; the generated Flux source, Terraform CR and runner RBAC are
//!   created, no hook is registered, the CR says uninstall goes through `helm tfops uninstall`,
//!   and the user reads that warning.
//! - Helm 4.1.4: a full install (its release storage posts the release Secret as protobuf,
//!   which the test API server decodes); the guard Job is registered as the release's
//!   pre-delete hook — stored, not created — while the guard RBAC are ordinary objects.

use crate::common;

use common::{chart, stderr, stdout, Helm, HelmHome};
use serde_json::{json, Value};
use tfops_testcluster::{ClusterOptions, TestCluster};

/// Run a prepared (blocking) command off the runtime so the in-process API server keeps serving.
async fn output(mut cmd: std::process::Command) -> std::process::Output {
    tokio::task::spawn_blocking(move || cmd.output().expect("run helm"))
        .await
        .expect("join")
}

fn annotation<'a>(obj: &'a Value, key: &str) -> Option<&'a str> {
    obj["metadata"]["annotations"][key].as_str()
}

/// A cluster, a Helm home with both plugins installed, and its kubeconfig.
async fn prepare(helm: Helm) -> (TestCluster, HelmHome, std::path::PathBuf) {
    let cluster = TestCluster::start(ClusterOptions::default())
        .await
        .expect("test cluster");
    let home = HelmHome::new(helm);
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
    (cluster, home, kubeconfig)
}

fn install_args(extra: &[&'static str]) -> Vec<String> {
    let mut args: Vec<String> = [
        "install",
        "shop",
        chart("orders-app").to_str().unwrap(),
        "--namespace",
        "shop",
        "--post-renderer",
        "tfops-render",
        "--post-renderer-args",
        "--namespace=shop",
        // The test API server serves no OpenAPI document (the generated objects are
        // validated against the real CRD schemas in the render crate's tests).
        "--disable-openapi-validation",
        "--output",
        "json",
    ]
    .iter()
    .map(|s| s.to_string())
    .collect();
    args.extend(extra.iter().map(|s| s.to_string()));
    args
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn helm3_install_creates_the_generated_objects_and_no_hook() {
    let (cluster, home, kubeconfig) = prepare(Helm::V3).await;
    let mut install = home.helm(install_args(&[]));
    install.env("KUBECONFIG", &kubeconfig);
    let out = output(install).await;
    assert!(
        out.status.success(),
        "helm install failed:\n{}\n{}",
        stdout(&out),
        stderr(&out)
    );
    let release: Value = serde_json::from_slice(&out.stdout).expect("release JSON");

    let store = cluster.store();
    let tf = store
        .get(
            "infra.contrib.fluxcd.io/v1alpha2",
            "Terraform",
            "shop",
            "shop-orders-db",
        )
        .expect("the Terraform CR was not created");
    assert_eq!(tf["metadata"]["labels"]["tfops.dev/release"], "shop");
    assert_eq!(annotation(&tf, "tfops.dev/guard"), Some("client"));
    assert!(store
        .get(
            "source.toolkit.fluxcd.io/v1",
            "OCIRepository",
            "shop",
            "shop-orders-db"
        )
        .is_some());
    let runner = tf["spec"]["serviceAccountName"].as_str().unwrap();
    assert!(store.get("v1", "ServiceAccount", "shop", runner).is_some());
    let binding = store
        .get(
            "rbac.authorization.k8s.io/v1",
            "RoleBinding",
            "shop",
            runner,
        )
        .expect("runner RoleBinding");
    assert_eq!(
        binding["subjects"],
        json!([{"kind": "ServiceAccount", "name": runner, "namespace": "shop"}])
    );
    assert!(store
        .get("apps/v1", "Deployment", "shop", "shop-orders")
        .is_some());

    // No guard on Helm 3: no hook, no guard objects; the user is told what to do instead.
    let hooks = release["hooks"].as_array().cloned().unwrap_or_default();
    assert!(hooks.is_empty(), "{hooks:?}");
    assert!(store
        .get("v1", "ServiceAccount", "shop", "shop-tfops-guard")
        .is_none());
    assert!(
        stderr(&out).contains("helm tfops uninstall shop"),
        "{}",
        stderr(&out)
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn helm4_install_registers_the_guard_job_as_pre_delete_hook() {
    let (cluster, home, kubeconfig) = prepare(Helm::V4).await;
    let mut install = home.helm(install_args(&[]));
    install.env("KUBECONFIG", &kubeconfig);
    let out = output(install).await;
    assert!(
        out.status.success(),
        "helm install failed:\n{}\n{}",
        stdout(&out),
        stderr(&out)
    );
    let release: Value = serde_json::from_slice(&out.stdout).expect("release JSON");

    let hooks = release["hooks"].as_array().cloned().unwrap_or_default();
    let guard = hooks
        .iter()
        .find(|h| h["name"] == "shop-tfops-guard")
        .unwrap_or_else(|| panic!("the guard Job is not a hook of the release: {hooks:?}"));
    assert_eq!(guard["kind"], "Job");
    assert_eq!(guard["events"], json!(["pre-delete"]));
    assert_eq!(guard["weight"], json!(-10));
    assert_eq!(
        guard["delete_policies"],
        json!(["before-hook-creation", "hook-succeeded"])
    );

    let manifest = common::parse_docs(release["manifest"].as_str().unwrap_or_default());
    for kind in ["ServiceAccount", "Role", "RoleBinding"] {
        assert!(
            common::find(&manifest, kind, "shop-tfops-guard").is_some(),
            "guard {kind} is not an ordinary release object"
        );
    }
    assert!(common::find(&manifest, "Job", "shop-tfops-guard").is_none());
    let tf = common::find(&manifest, "Terraform", "shop-orders-db").expect("Terraform");
    assert_eq!(annotation(tf, "tfops.dev/guard"), Some("hook"));

    // Installed: the Terraform CR and the guard RBAC exist; the hook Job waits for uninstall.
    let store = cluster.store();
    assert!(store
        .get(
            "infra.contrib.fluxcd.io/v1alpha2",
            "Terraform",
            "shop",
            "shop-orders-db"
        )
        .is_some());
    assert!(store
        .get(
            "rbac.authorization.k8s.io/v1",
            "Role",
            "shop",
            "shop-tfops-guard"
        )
        .is_some());
    assert!(store
        .get("batch/v1", "Job", "shop", "shop-tfops-guard")
        .is_none());

    // And Helm stored it with the release.
    let mut hooks = home.helm(["get", "hooks", "shop", "--namespace", "shop"]);
    hooks.env("KUBECONFIG", &kubeconfig);
    let hooks = output(hooks).await;
    assert!(hooks.status.success(), "{}", stderr(&hooks));
    let stored = common::parse_docs(&stdout(&hooks));
    let job = common::find(&stored, "Job", "shop-tfops-guard").expect("stored hook");
    assert_eq!(annotation(job, "helm.sh/hook"), Some("pre-delete"));
}
