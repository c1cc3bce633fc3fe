//! With the real upstream CRDs seeded (`ClusterOptions::with_shared_crds()`; skipped when
//! `../shared/crds` is absent), Terraform writes over HTTP are defaulted, pruned and validated
//! like a real API server: invalid values → 422, unknown fields pruned (400 with
//! `fieldValidation=Strict`), and the simulated controller's status writes survive pruning.

use kube::api::{
    Api, ApiResource, DynamicObject, GroupVersionKind, Patch, PatchParams, PostParams,
};
use serde_json::{json, Value};
use std::time::Duration;
use tfops_testcluster::tofu::{SimConfig, TofuSim, CONTROLLER_USER};
use tfops_testcluster::{ClusterOptions, TestCluster};

fn tf_ar() -> ApiResource {
    ApiResource::from_gvk(&GroupVersionKind::gvk(
        "infra.contrib.fluxcd.io",
        "v1alpha2",
        "Terraform",
    ))
}

fn tf(name: &str, spec: Value) -> DynamicObject {
    serde_json::from_value(json!({
        "apiVersion": "infra.contrib.fluxcd.io/v1alpha2", "kind": "Terraform",
        "metadata": {"name": name}, "spec": spec
    }))
    .unwrap()
}

async fn cluster() -> Option<TestCluster> {
    let opts = ClusterOptions::default().with_shared_crds();
    if opts.crds_dir.is_none() {
        eprintln!("SKIP: ../shared/crds absent");
        return None;
    }
    Some(TestCluster::start(opts).await.unwrap())
}

fn code_reason(e: kube::Error) -> (u16, String, String) {
    match e {
        kube::Error::Api(s) => (s.code, s.reason.clone(), s.message.clone()),
        other => panic!("{other:?}"),
    }
}

#[tokio::test]
async fn terraform_writes_are_defaulted_pruned_and_validated() {
    let Some(c) = cluster().await else { return };
    assert_eq!(
        c.store()
            .list("apiextensions.k8s.io/v1", "CustomResourceDefinition", "")
            .len(),
        4
    );
    let api: Api<DynamicObject> = Api::namespaced_with(c.client("guard").unwrap(), "ns1", &tf_ar());
    let ok = tf(
        "net",
        json!({"interval": "10m", "path": "./net", "bogusField": 1,
        "sourceRef": {"kind": "OCIRepository", "name": "src"}}),
    );
    let out = api.create(&PostParams::default(), &ok).await.unwrap();
    assert!(
        out.data["spec"].get("bogusField").is_none(),
        "unknown field pruned"
    );
    assert_eq!(
        out.data["spec"]["destroyResourcesOnDeletion"], false,
        "schema default applied"
    );
    // invalid enum / type / missing required
    let bad = tf(
        "bad",
        json!({"interval": "10m", "sourceRef": {"kind": "HelmRepository", "name": "x"}}),
    );
    let (code, reason, msg) =
        code_reason(api.create(&PostParams::default(), &bad).await.unwrap_err());
    assert_eq!((code, reason.as_str()), (422, "Invalid"));
    assert!(msg.contains("spec.sourceRef.kind"), "{msg}");
    let missing = tf("missing", json!({"path": "./x"}));
    assert_eq!(
        code_reason(
            api.create(&PostParams::default(), &missing)
                .await
                .unwrap_err()
        )
        .0,
        422
    );
    let p = json!({"spec": {"destroyResourcesOnDeletion": "yes"}});
    let (code, _, msg) = code_reason(
        api.patch("net", &PatchParams::default(), &Patch::Merge(&p))
            .await
            .unwrap_err(),
    );
    assert_eq!(code, 422);
    assert!(msg.contains("spec.destroyResourcesOnDeletion"), "{msg}");
    // the guard's orphan patch is valid
    let p = json!({"spec": {"destroyResourcesOnDeletion": false}});
    api.patch("net", &PatchParams::default(), &Patch::Merge(&p))
        .await
        .unwrap();
    // strict field validation (what Helm sends) rejects unknown fields
    let strict = PatchParams {
        field_validation: Some(kube::api::ValidationDirective::Strict),
        ..Default::default()
    };
    let p = json!({"spec": {"notAField": true}});
    let (code, _, msg) = code_reason(
        api.patch("net", &strict, &Patch::Merge(&p))
            .await
            .unwrap_err(),
    );
    assert_eq!(code, 400);
    assert!(msg.contains("unknown field \"spec.notAField\""), "{msg}");
}

#[tokio::test(start_paused = true)]
async fn simulated_controller_status_survives_the_real_schema() {
    let Some(c) = cluster().await else { return };
    let store = c.store();
    store
        .create(json!({"apiVersion": "source.toolkit.fluxcd.io/v1", "kind": "OCIRepository",
            "metadata": {"name": "src", "namespace": "ns1"},
            "spec": {"interval": "5m", "url": "oci://ghcr.io/acme/m", "ref": {"tag": "v1"}},
            "status": {"artifact": {"revision": "v1@sha256:0123456789abcdef", "digest": "sha256:0123456789abcdef",
                "path": "p", "url": "http://source-controller/p", "lastUpdateTime": "2026-01-01T00:00:00Z"}}}))
        .unwrap();
    store
        .create(json!({"apiVersion": "v1", "kind": "ServiceAccount", "metadata": {"name": "tf-runner", "namespace": "ns1"}}))
        .unwrap();
    let api: Api<DynamicObject> = Api::namespaced_with(c.client("helm").unwrap(), "ns1", &tf_ar());
    api.create(
        &PostParams::default(),
        &tf("net", json!({"interval": "10m", "approvePlan": "auto", "path": "./net", "enableInventory": true,
            "sourceRef": {"kind": "OCIRepository", "name": "src"}})),
    )
    .await
    .unwrap();
    // The simulation's status (inventory entries keyed {n, t, id} included) must pass the real
    // v0.16.5 schema.
    let cfg = SimConfig::default();
    let _sim = TofuSim::start(c.client(CONTROLLER_USER).unwrap(), cfg);
    for _ in 0..300 {
        let o = api.get("net").await.unwrap();
        let ready = o
            .data
            .pointer("/status/conditions")
            .and_then(Value::as_array)
            .is_some_and(|cs| {
                cs.iter()
                    .any(|c| c["type"] == "Ready" && c["status"] == "True")
            });
        if ready {
            assert!(o.data.pointer("/status/lastAppliedRevision").is_some());
            assert!(
                o.data.pointer("/status/inventory/entries/0/id").is_some(),
                "inventory written with the CRD's keys: {:#}",
                o.data
            );
            return;
        }
        tokio::time::sleep(Duration::from_secs(1)).await;
    }
    let failed: Vec<String> = c
        .requests()
        .filter(|r| r.status >= 400 && r.user == CONTROLLER_USER)
        .iter()
        .map(|r| {
            format!(
                "{} {:?} {}/{} {} {}",
                r.status, r.verb, r.resource, r.name, r.subresource, r.error
            )
        })
        .collect();
    panic!(
        "never Ready under the real schema: {:#}\nfailed controller requests: {failed:#?}",
        api.get("net").await.unwrap().data
    );
}

#[tokio::test]
async fn inventory_entries_use_the_real_short_keys() {
    let Some(c) = cluster().await else { return };
    let api: Api<DynamicObject> = Api::namespaced_with(c.client("sim").unwrap(), "ns1", &tf_ar());
    api.create(
        &PostParams::default(),
        &tf(
            "net",
            json!({"interval": "10m", "sourceRef": {"kind": "OCIRepository", "name": "src"}}),
        ),
    )
    .await
    .unwrap();
    let real = json!({"status": {"inventory": {"entries": [{"n": "this", "t": "aws_s3_bucket", "id": "bucket-1"}]}}});
    let out = api
        .patch_status("net", &PatchParams::default(), &Patch::Merge(&real))
        .await
        .unwrap();
    assert_eq!(
        out.data["status"]["inventory"]["entries"][0]["id"],
        "bucket-1"
    );
    let long = json!({"status": {"inventory": {"entries": [{"name": "this", "type": "aws_s3_bucket", "identifier": "b"}]}}});
    let (code, _, msg) = code_reason(
        api.patch_status("net", &PatchParams::default(), &Patch::Merge(&long))
            .await
            .unwrap_err(),
    );
    assert_eq!(code, 422);
    assert!(msg.contains("status.inventory.entries.0"), "{msg}");
}
