//! Seeding helpers shared by the HTTP tests: put a fixture release into the test API server
//! the way it would be after the controller and the guard acted on it.

#![allow(dead_code)]

use serde_json::Value;
use tfops_status::fixtures;
use tfops_status::ledger::LedgerItem;
use tfops_testcluster::TestCluster;

pub const TF_API: &str = "infra.contrib.fluxcd.io/v1alpha2";

/// Create `crs` (deleting ones are created, then deleted: their finalizer keeps them with a
/// deletionTimestamp) and the ledger Secrets of `ledger`.
pub fn seed(cluster: &TestCluster, crs: &[Value], ledger: &[LedgerItem]) {
    for cr in crs {
        let mut v = cr.clone();
        let deleting = v["metadata"]
            .as_object_mut()
            .and_then(|m| m.remove("deletionTimestamp"))
            .is_some();
        cluster
            .store()
            .create(v.clone())
            .unwrap_or_else(|e| panic!("seeding {}: {e:?}", v["metadata"]["name"]));
        if deleting {
            let ns = v["metadata"]["namespace"].as_str().unwrap_or_default();
            let name = v["metadata"]["name"].as_str().unwrap_or_default();
            cluster
                .store()
                .delete(TF_API, "terraforms", ns, name)
                .unwrap_or_else(|e| panic!("deleting {name}: {e:?}"));
        }
    }
    for item in ledger {
        seed_ledger(cluster, item);
    }
}

/// Create one ledger Secret.
pub fn seed_ledger(cluster: &TestCluster, item: &LedgerItem) {
    let secret = item
        .record
        .to_secret(&item.secret_namespace)
        .unwrap_or_else(|e| panic!("ledger secret: {e}"));
    let mut v = serde_json::to_value(&secret).unwrap_or_else(|e| panic!("to json: {e}"));
    v["apiVersion"] = Value::from("v1");
    v["kind"] = Value::from("Secret");
    cluster
        .store()
        .create(v)
        .unwrap_or_else(|e| panic!("seeding ledger {}: {e:?}", item.secret_name));
}

/// Seed the every-state fixture release `release` in `namespace`.
pub fn seed_release(cluster: &TestCluster, namespace: &str, release: &str) {
    let decided: chrono::DateTime<chrono::Utc> = cluster.store().clock().now();
    let (crs, ledger) = fixtures::release(namespace, release, decided);
    seed(cluster, &crs, &ledger);
}
