//! The shipped scenario files parse, seed a cluster, and the simulated controller brings their
//! Terraform CRs to Ready (paused virtual time); deleting one then runs its scripted destroy.

use kube::api::{Api, ApiResource, DynamicObject, GroupVersionKind};
use std::path::Path;
use std::time::Duration;
use tfops_testcluster::scenario::Scenario;
use tfops_testcluster::{ClusterOptions, TestCluster};

fn scenarios_dir() -> std::path::PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("scenarios")
}

fn condition(o: &serde_json::Value, ty: &str) -> bool {
    o.pointer("/status/conditions")
        .and_then(|c| c.as_array())
        .is_some_and(|cs| cs.iter().any(|c| c["type"] == ty && c["status"] == "True"))
}

/// Ready, or (for CRs scripted with a foreign state lock) held at the lock.
fn ready(o: &serde_json::Value) -> bool {
    condition(o, "Ready") || condition(o, "StateLocked")
}

async fn wait_all_ready(c: &TestCluster, ns: &str) {
    for _ in 0..600 {
        let tfs = c
            .store()
            .list("infra.contrib.fluxcd.io/v1alpha2", "Terraform", ns);
        if !tfs.is_empty() && tfs.iter().all(ready) {
            return;
        }
        tokio::time::sleep(Duration::from_secs(1)).await;
    }
    let tfs = c
        .store()
        .list("infra.contrib.fluxcd.io/v1alpha2", "Terraform", ns);
    let not_ready: Vec<String> = tfs
        .iter()
        .filter(|o| !ready(o))
        .map(|o| format!("{}: {}", o["metadata"]["name"], o["status"]))
        .collect();
    panic!("Terraform CRs in {ns} never became Ready: {not_ready:#?}");
}

#[tokio::test(start_paused = true)]
async fn clean_uninstall_scenario_applies_and_destroys() {
    let s = Scenario::load(&scenarios_dir().join("clean-uninstall.yaml")).unwrap();
    let c = TestCluster::start(ClusterOptions::default()).await.unwrap();
    let _run = s.apply(&c).unwrap();
    wait_all_ready(&c, "shop").await;
    // dependency finalizer placed by the controller on the dependency
    let net = c
        .store()
        .get(
            "infra.contrib.fluxcd.io/v1alpha2",
            "Terraform",
            "shop",
            "shop-network",
        )
        .unwrap();
    let fins: Vec<&str> = net["metadata"]["finalizers"]
        .as_array()
        .unwrap()
        .iter()
        .filter_map(|f| f.as_str())
        .collect();
    assert!(fins.contains(&"tf.dependency.of.shop-database"), "{fins:?}");
    // delete the dependant: it is destroyed and released by the simulated controller
    let ar = ApiResource::from_gvk(&GroupVersionKind::gvk(
        "infra.contrib.fluxcd.io",
        "v1alpha2",
        "Terraform",
    ));
    let api: Api<DynamicObject> = Api::namespaced_with(c.client("developer").unwrap(), "shop", &ar);
    api.delete("shop-database", &Default::default())
        .await
        .unwrap();
    for _ in 0..300 {
        if api.get_opt("shop-database").await.unwrap().is_none() {
            return;
        }
        tokio::time::sleep(Duration::from_secs(1)).await;
    }
    panic!("shop-database was never released");
}

#[tokio::test(start_paused = true)]
async fn every_shipped_scenario_seeds_and_becomes_ready() {
    let mut n = 0;
    for entry in std::fs::read_dir(scenarios_dir()).unwrap() {
        let path = entry.unwrap().path();
        if path.extension().and_then(|e| e.to_str()) != Some("yaml") {
            continue;
        }
        n += 1;
        let s = Scenario::load(&path).unwrap();
        let c = TestCluster::start(ClusterOptions::default()).await.unwrap();
        // faults target the guard user; the controller is unaffected
        let _run = s.apply(&c).unwrap();
        wait_all_ready(&c, &s.namespace).await;
    }
    assert!(n >= 3);
}

/// `sourceController: true`: a source created without an artifact (as Helm creates it) gets
/// one from the stand-in, and the simulated controller then applies the Terraform on it.
#[tokio::test(start_paused = true)]
async fn the_source_controller_stand_in_serves_sources_created_later() {
    let s = Scenario::parse(
        "inline",
        "namespace: shop\nsourceController: true\ncontroller: {namespace: shop}\n",
    )
    .unwrap();
    let c = TestCluster::start(ClusterOptions::default()).await.unwrap();
    let run = s.apply(&c).unwrap();
    assert!(run.sources.is_some());
    let store = c.store();
    store
        .create(tfops_testcluster::tofu::fixtures::service_account(
            "shop",
            "tf-runner",
        ))
        .unwrap();
    store
        .create(serde_json::json!({
            "apiVersion": "source.toolkit.fluxcd.io/v1", "kind": "GitRepository",
            "metadata": {"name": "mods", "namespace": "shop"},
            "spec": {"interval": "5m", "url": "https://github.com/acme/mods", "ref": {"tag": "v0.1.0"}}
        }))
        .unwrap();
    store
        .create(serde_json::json!({
            "apiVersion": "infra.contrib.fluxcd.io/v1alpha2", "kind": "Terraform",
            "metadata": {"name": "bucket", "namespace": "shop"},
            "spec": {"interval": "10m", "approvePlan": "auto", "path": "./bucket",
                     "sourceRef": {"kind": "GitRepository", "name": "mods"}}
        }))
        .unwrap();
    wait_all_ready(&c, "shop").await;
    let src = store
        .get(
            "source.toolkit.fluxcd.io/v1",
            "GitRepository",
            "shop",
            "mods",
        )
        .unwrap();
    let rev = src["status"]["artifact"]["revision"].as_str().unwrap();
    assert!(rev.starts_with("v0.1.0@sha1:"), "{rev}");
    assert!(condition(&src, "Ready"));
    let tf = store
        .get(
            "infra.contrib.fluxcd.io/v1alpha2",
            "Terraform",
            "shop",
            "bucket",
        )
        .unwrap();
    assert_eq!(tf["status"]["lastAppliedRevision"], rev);
    // Who wrote the artifact: the stand-in, over HTTP, through the status subresource.
    assert!(c.requests().all().iter().any(|r| r.user
        == tfops_testcluster::sources::SOURCE_CONTROLLER_USER
        && r.resource == "gitrepositories"
        && r.subresource == "status"
        && r.status < 300));
}
