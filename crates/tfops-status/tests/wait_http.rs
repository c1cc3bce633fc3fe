//! `wait::wait_for` against the test API server on paused (virtual) time: it sees a change made
//! while it waits and gives up at its bound when nothing changes — even when the watch stream
//! does not deliver the event (the per-tick GET covers that).

use std::time::Duration;

use kube::api::DynamicObject;
use serde_json::json;
use tfops_status::fetch::terraform_resource;
use tfops_status::wait::wait_for;
use tfops_testcluster::{ClusterOptions, TestCluster};

fn handled(token: &'static str) -> impl Fn(Option<&DynamicObject>) -> bool {
    move |o| {
        o.and_then(|o| o.data.get("status"))
            .and_then(|s| s.get("lastHandledReconcileAt"))
            .and_then(|v| v.as_str())
            == Some(token)
    }
}

#[tokio::test(start_paused = true)]
async fn sees_a_change_and_respects_its_bound() {
    let c = TestCluster::start(ClusterOptions::default())
        .await
        .unwrap_or_else(|e| panic!("{e}"));
    let mut v = tfops_status::fixtures::terraform("apps", "shop", "db", "shop-db");
    if let Some(m) = v["metadata"].as_object_mut() {
        m.remove("uid");
    }
    c.store().create(v).unwrap_or_else(|e| panic!("{e:?}"));
    let store = c.store().clone();
    tokio::spawn(async move {
        tokio::time::sleep(Duration::from_secs(3)).await;
        let patch = json!({"status": {"lastHandledReconcileAt": "tok"}});
        store
            .patch_merge(
                "infra.contrib.fluxcd.io/v1alpha2",
                "terraforms",
                "apps",
                "shop-db",
                &patch,
            )
            .unwrap_or_else(|e| panic!("{e:?}"));
    });
    let client = c.client("waiter").unwrap_or_else(|e| panic!("{e}"));
    let api: kube::Api<DynamicObject> =
        kube::Api::namespaced_with(client, "apps", &terraform_resource());
    let seen = wait_for(
        api.clone(),
        "shop-db",
        handled("tok"),
        Duration::from_secs(30),
    )
    .await
    .unwrap_or_else(|e| panic!("{e}"));
    assert!(seen.is_some_and(|o| o.is_some()));
    let never = wait_for(api, "shop-db", handled("other"), Duration::from_secs(10))
        .await
        .unwrap_or_else(|e| panic!("{e}"));
    assert!(never.is_none());
}
