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
