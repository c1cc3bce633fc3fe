//! The test API server through a real `kube::Client` over HTTP: CRUD, errors, selectors,
//! optimistic concurrency, patches, status subresource, finalizers, namespaces, kubeconfig.

use k8s_openapi::api::core::v1::{Namespace, Secret, ServiceAccount};
use k8s_openapi::ByteString;
use kube::api::{
    Api, ApiResource, DeleteParams, DynamicObject, GroupVersionKind, ListParams, Patch,
    PatchParams, PostParams,
};
use serde_json::{json, Value};
use std::collections::BTreeMap;
use tfops_testcluster::{ClusterOptions, TestCluster, Verb};

fn tf_ar() -> ApiResource {
    ApiResource::from_gvk(&GroupVersionKind::gvk(
        "infra.contrib.fluxcd.io",
        "v1alpha2",
        "Terraform",
    ))
}

fn tf_obj(name: &str, finalizers: &[&str]) -> DynamicObject {
    serde_json::from_value(json!({
        "apiVersion": "infra.contrib.fluxcd.io/v1alpha2",
        "kind": "Terraform",
        "metadata": {"name": name, "finalizers": finalizers, "labels": {"tfops.dev/release": "r1", "tfops.dev/module": name}},
        "spec": {"path": "./mod", "sourceRef": {"kind": "OCIRepository", "name": "src"}},
        "status": {"should": "be dropped on create"}
    }))
    .unwrap()
}

fn api_err(e: kube::Error) -> (u16, String) {
    match e {
        kube::Error::Api(s) => (s.code, s.reason.clone()),
        other => panic!("expected kube::Error::Api, got {other:?}"),
    }
}

async fn cluster() -> TestCluster {
    TestCluster::start(ClusterOptions::default()).await.unwrap()
}

#[tokio::test]
async fn typed_secret_crud_and_errors() {
    let c = cluster().await;
    let client = c.client("alice").unwrap();
    let api: Api<Secret> = Api::namespaced(client, "ns1");
    let mut s = Secret::default();
    s.metadata.name = Some("creds".into());
    s.data = Some(BTreeMap::from([(
        "k".to_string(),
        ByteString(b"v1".to_vec()),
    )]));
    let created = api.create(&PostParams::default(), &s).await.unwrap();
    assert!(created.metadata.uid.is_some());
    assert!(created.metadata.creation_timestamp.is_some());
    assert_eq!(created.metadata.namespace.as_deref(), Some("ns1"));
    let got = api.get("creds").await.unwrap();
    assert_eq!(got.data.unwrap()["k"].0, b"v1".to_vec());
    // AlreadyExists
    let e = api.create(&PostParams::default(), &s).await.unwrap_err();
    assert_eq!(api_err(e), (409, "AlreadyExists".to_string()));
    // NotFound
    let e = api.get("nope").await.unwrap_err();
    assert_eq!(api_err(e), (404, "NotFound".to_string()));
    assert!(api.get_opt("nope").await.unwrap().is_none());
    // replace
    let mut upd = api.get("creds").await.unwrap();
    upd.data = Some(BTreeMap::from([(
        "k".to_string(),
        ByteString(b"v2".to_vec()),
    )]));
    let replaced = api
        .replace("creds", &PostParams::default(), &upd)
        .await
        .unwrap();
    assert_ne!(
        replaced.metadata.resource_version,
        created.metadata.resource_version
    );
    // list
    let list = api.list(&ListParams::default()).await.unwrap();
    assert_eq!(list.items.len(), 1);
    assert!(list.metadata.resource_version.is_some());
    // delete
    api.delete("creds", &DeleteParams::background())
        .await
        .unwrap();
    assert!(api.get_opt("creds").await.unwrap().is_none());
    let e = api
        .delete("creds", &DeleteParams::default())
        .await
        .unwrap_err();
    assert_eq!(api_err(e).0, 404);
    // stringData is folded into data by the server
    let sd: Secret = serde_json::from_value(json!({
        "metadata": {"name": "sd"}, "stringData": {"token": "abc"}
    }))
    .unwrap();
    let out = api.create(&PostParams::default(), &sd).await.unwrap();
    assert_eq!(out.data.unwrap()["token"].0, b"abc".to_vec());
    assert!(out.string_data.is_none());
}

#[tokio::test]
async fn stale_resource_version_is_a_real_409_conflict() {
    let c = cluster().await;
    let api: Api<ServiceAccount> = Api::namespaced(c.client("u").unwrap(), "ns1");
    let mut sa = ServiceAccount::default();
    sa.metadata.name = Some("runner".into());
    let first = api.create(&PostParams::default(), &sa).await.unwrap();
    let mut a = first.clone();
    a.metadata.labels = Some(BTreeMap::from([("x".into(), "1".into())]));
    api.replace("runner", &PostParams::default(), &a)
        .await
        .unwrap();
    let mut b = first.clone();
    b.metadata.labels = Some(BTreeMap::from([("x".into(), "2".into())]));
    match api
        .replace("runner", &PostParams::default(), &b)
        .await
        .unwrap_err()
    {
        kube::Error::Api(s) => {
            assert_eq!(s.code, 409);
            assert_eq!(s.reason, "Conflict");
            assert!(
                s.message.contains("the object has been modified"),
                "{}",
                s.message
            );
        }
        other => panic!("{other:?}"),
    }
    // merge patch carrying the stale resourceVersion also conflicts
    let p = json!({"metadata": {"resourceVersion": first.metadata.resource_version, "labels": {"y": "1"}}});
    let e = api
        .patch("runner", &PatchParams::default(), &Patch::Merge(&p))
        .await
        .unwrap_err();
    assert_eq!(api_err(e), (409, "Conflict".to_string()));
    // DELETE precondition on a stale resourceVersion conflicts too
    let dp = DeleteParams {
        preconditions: Some(kube::api::Preconditions {
            resource_version: first.metadata.resource_version.clone(),
            uid: None,
        }),
        ..Default::default()
    };
    let e = api.delete("runner", &dp).await.unwrap_err();
    assert_eq!(api_err(e).0, 409);
}

#[tokio::test]
async fn dynamic_terraform_status_subresource_and_generation() {
    let c = cluster().await;
    let api: Api<DynamicObject> = Api::namespaced_with(c.client("guard").unwrap(), "ns1", &tf_ar());
    let created = api
        .create(&PostParams::default(), &tf_obj("net", &[]))
        .await
        .unwrap();
    assert!(
        created.data.get("status").is_none(),
        "status dropped on create"
    );
    assert_eq!(created.metadata.generation, Some(1));
    // main endpoint ignores status changes, bumps generation on spec change
    let p = json!({"spec": {"path": "./other"}, "status": {"ready": true}});
    let out = api
        .patch("net", &PatchParams::default(), &Patch::Merge(&p))
        .await
        .unwrap();
    assert!(out.data.get("status").is_none());
    assert_eq!(out.metadata.generation, Some(2));
    // metadata-only change does not bump generation
    let p = json!({"metadata": {"annotations": {"a": "b"}}});
    let out = api
        .patch("net", &PatchParams::default(), &Patch::Merge(&p))
        .await
        .unwrap();
    assert_eq!(out.metadata.generation, Some(2));
    // status endpoint changes only status
    let p = json!({"spec": {"path": "./ignored"}, "status": {"lastHandledReconcileAt": "x"}});
    let out = api
        .patch_status("net", &PatchParams::default(), &Patch::Merge(&p))
        .await
        .unwrap();
    assert_eq!(out.data["status"]["lastHandledReconcileAt"], "x");
    assert_eq!(out.data["spec"]["path"], "./other");
    assert_eq!(out.metadata.generation, Some(2));
    let st = api.get_status("net").await.unwrap();
    assert_eq!(st.data["status"]["lastHandledReconcileAt"], "x");
    // v1alpha1 serves the same object
    let ar1 = ApiResource::from_gvk(&GroupVersionKind::gvk(
        "infra.contrib.fluxcd.io",
        "v1alpha1",
        "Terraform",
    ));
    let api1: Api<DynamicObject> = Api::namespaced_with(c.client("guard").unwrap(), "ns1", &ar1);
    let o1 = api1.get("net").await.unwrap();
    assert_eq!(
        o1.types.unwrap().api_version,
        "infra.contrib.fluxcd.io/v1alpha1"
    );
    // strategic merge is accepted as merge
    let p = json!({"metadata": {"labels": {"s": "1"}}});
    let out = api
        .patch("net", &PatchParams::default(), &Patch::Strategic(&p))
        .await
        .unwrap();
    assert_eq!(out.metadata.labels.unwrap()["s"], "1");
}

async fn json_patch(c: &TestCluster, path: &str, body: Value) -> Result<Value, kube::Error> {
    let client = c.client("guard").unwrap();
    let req = http::Request::builder()
        .method("PATCH")
        .uri(path)
        .header("content-type", "application/json-patch+json")
        .body(serde_json::to_vec(&body).unwrap())
        .unwrap();
    client.request::<Value>(req).await
}

#[tokio::test]
async fn json_patch_with_test_op() {
    let c = cluster().await;
    let api: Api<DynamicObject> = Api::namespaced_with(c.client("guard").unwrap(), "ns1", &tf_ar());
    api.create(
        &PostParams::default(),
        &tf_obj(
            "net",
            &["finalizers.tf.contrib.fluxcd.io", "tf.dependency.of.app"],
        ),
    )
    .await
    .unwrap();
    let path = "/apis/infra.contrib.fluxcd.io/v1alpha2/namespaces/ns1/terraforms/net";
    let bad = json!([
        {"op": "test", "path": "/metadata/finalizers/0", "value": "something-else"},
        {"op": "remove", "path": "/metadata/finalizers/0"}
    ]);
    let e = json_patch(&c, path, bad).await.unwrap_err();
    assert_eq!(api_err(e).0, 422);
    let good = json!([
        {"op": "test", "path": "/metadata/finalizers/1", "value": "tf.dependency.of.app"},
        {"op": "remove", "path": "/metadata/finalizers/1"}
    ]);
    let out = json_patch(&c, path, good).await.unwrap();
    assert_eq!(
        out["metadata"]["finalizers"],
        json!(["finalizers.tf.contrib.fluxcd.io"])
    );
}

#[tokio::test]
async fn finalizers_and_deletion_timestamp_over_http() {
    let c = cluster().await;
    let api: Api<DynamicObject> = Api::namespaced_with(c.client("helm").unwrap(), "ns1", &tf_ar());
    api.create(
        &PostParams::default(),
        &tf_obj("net", &["finalizers.tf.contrib.fluxcd.io"]),
    )
    .await
    .unwrap();
    let dp = DeleteParams {
        propagation_policy: Some(kube::api::PropagationPolicy::Foreground),
        ..Default::default()
    };
    let res = api.delete("net", &dp).await.unwrap();
    let left = res.left().expect("object returned while finalizers remain");
    assert!(left.metadata.deletion_timestamp.is_some());
    let still = api.get("net").await.unwrap();
    assert!(still.metadata.deletion_timestamp.is_some());
    // deleting again is harmless
    api.delete("net", &DeleteParams::background())
        .await
        .unwrap();
    // no new finalizers once deleting
    let p =
        json!({"metadata": {"finalizers": ["finalizers.tf.contrib.fluxcd.io", "new.example/x"]}});
    let e = api
        .patch("net", &PatchParams::default(), &Patch::Merge(&p))
        .await
        .unwrap_err();
    assert_eq!(api_err(e), (422, "Invalid".to_string()));
    // removing the last finalizer deletes the object
    let p = json!({"metadata": {"finalizers": null}});
    api.patch("net", &PatchParams::default(), &Patch::Merge(&p))
        .await
        .unwrap();
    assert!(api.get_opt("net").await.unwrap().is_none());
}

#[tokio::test]
async fn label_and_field_selectors() {
    let c = cluster().await;
    let client = c.client("status").unwrap();
    let api: Api<DynamicObject> = Api::namespaced_with(client.clone(), "ns1", &tf_ar());
    for (name, rel, tier) in [("a", "r1", "db"), ("b", "r1", "net"), ("c", "r2", "db")] {
        let mut o = tf_obj(name, &[]);
        o.metadata.labels = Some(BTreeMap::from([
            ("tfops.dev/release".into(), rel.into()),
            ("tier".into(), tier.into()),
        ]));
        api.create(&PostParams::default(), &o).await.unwrap();
    }
    let names = |l: kube::core::ObjectList<DynamicObject>| {
        l.items
            .into_iter()
            .filter_map(|o| o.metadata.name)
            .collect::<Vec<_>>()
    };
    let q = |s: &str| ListParams::default().labels(s);
    assert_eq!(
        names(api.list(&q("tfops.dev/release=r1")).await.unwrap()),
        ["a", "b"]
    );
    assert_eq!(
        names(
            api.list(&q("tfops.dev/release==r1,tier!=db"))
                .await
                .unwrap()
        ),
        ["b"]
    );
    assert_eq!(
        names(api.list(&q("tier in (db,x)")).await.unwrap()),
        ["a", "c"]
    );
    assert_eq!(names(api.list(&q("tier notin (db)")).await.unwrap()), ["b"]);
    assert_eq!(names(api.list(&q("tier")).await.unwrap()), ["a", "b", "c"]);
    assert_eq!(names(api.list(&q("!tier")).await.unwrap()).len(), 0);
    let f = ListParams::default().fields("metadata.name=c");
    assert_eq!(names(api.list(&f).await.unwrap()), ["c"]);
    let all: Api<DynamicObject> = Api::all_with(client, &tf_ar());
    let f = ListParams::default().fields("metadata.namespace=ns1,metadata.name!=a");
    assert_eq!(names(all.list(&f).await.unwrap()), ["b", "c"]);
    let e = api.list(&q("tier in db")).await.unwrap_err();
    assert_eq!(api_err(e).0, 400);
}

#[tokio::test]
async fn namespaces_cluster_scope_and_termination() {
    let c = TestCluster::start(ClusterOptions {
        auto_create_namespaces: false,
        ..Default::default()
    })
    .await
    .unwrap();
    let client = c.client("admin").unwrap();
    let secrets: Api<Secret> = Api::namespaced(client.clone(), "team");
    let mut s = Secret::default();
    s.metadata.name = Some("x".into());
    let e = secrets
        .create(&PostParams::default(), &s)
        .await
        .unwrap_err();
    assert_eq!(api_err(e), (404, "NotFound".to_string()));
    let nss: Api<Namespace> = Api::all(client.clone());
    let mut ns = Namespace::default();
    ns.metadata.name = Some("team".into());
    let created = nss.create(&PostParams::default(), &ns).await.unwrap();
    assert_eq!(created.status.unwrap().phase.as_deref(), Some("Active"));
    secrets.create(&PostParams::default(), &s).await.unwrap();
    let tfs: Api<DynamicObject> = Api::namespaced_with(client.clone(), "team", &tf_ar());
    tfs.create(
        &PostParams::default(),
        &tf_obj("net", &["finalizers.tf.contrib.fluxcd.io"]),
    )
    .await
    .unwrap();
    nss.delete("team", &DeleteParams::default()).await.unwrap();
    let ns_now = nss.get("team").await.unwrap();
    assert_eq!(ns_now.status.unwrap().phase.as_deref(), Some("Terminating"));
    assert!(
        secrets.get_opt("x").await.unwrap().is_none(),
        "contents deleted"
    );
    let tf = tfs.get("net").await.unwrap();
    assert!(
        tf.metadata.deletion_timestamp.is_some(),
        "finalized object waits"
    );
    let mut s2 = Secret::default();
    s2.metadata.name = Some("y".into());
    match secrets
        .create(&PostParams::default(), &s2)
        .await
        .unwrap_err()
    {
        kube::Error::Api(st) => {
            assert_eq!((st.code, st.reason.as_str()), (403, "Forbidden"));
            assert!(st.message.contains(
                "unable to create new content in namespace team because it is being terminated"
            ));
        }
        other => panic!("{other:?}"),
    }
    tfs.patch(
        "net",
        &PatchParams::default(),
        &Patch::Merge(&json!({"metadata": {"finalizers": []}})),
    )
    .await
    .unwrap();
    assert!(
        nss.get_opt("team").await.unwrap().is_none(),
        "namespace gone after finalizers cleared"
    );
    // cluster-scoped RBAC
    let cr_ar = ApiResource::from_gvk(&GroupVersionKind::gvk(
        "rbac.authorization.k8s.io",
        "v1",
        "ClusterRole",
    ));
    let crs: Api<DynamicObject> = Api::all_with(client, &cr_ar);
    let cr: DynamicObject = serde_json::from_value(json!({
        "apiVersion": "rbac.authorization.k8s.io/v1", "kind": "ClusterRole",
        "metadata": {"name": "viewer"}, "rules": []
    }))
    .unwrap();
    let out = crs.create(&PostParams::default(), &cr).await.unwrap();
    assert!(out.metadata.namespace.is_none());
    assert_eq!(
        crs.list(&ListParams::default()).await.unwrap().items.len(),
        1
    );
}

#[tokio::test]
async fn store_set_namespace_terminating_forbids_creates_over_http() {
    let c = cluster().await;
    c.store().set_namespace_terminating("gone").unwrap();
    let api: Api<ServiceAccount> = Api::namespaced(c.client("u").unwrap(), "gone");
    let mut sa = ServiceAccount::default();
    sa.metadata.name = Some("x".into());
    let e = api.create(&PostParams::default(), &sa).await.unwrap_err();
    assert_eq!(api_err(e), (403, "Forbidden".to_string()));
}

#[tokio::test]
async fn unknown_resources_are_404() {
    let c = cluster().await;
    let ar = ApiResource::from_gvk(&GroupVersionKind::gvk("example.com", "v1", "Widget"));
    let api: Api<DynamicObject> = Api::namespaced_with(c.client("u").unwrap(), "ns1", &ar);
    let e = api.list(&ListParams::default()).await.unwrap_err();
    assert_eq!(api_err(e).0, 404);
}

#[tokio::test]
async fn server_side_apply_creates_then_merges() {
    let c = cluster().await;
    let api: Api<DynamicObject> = Api::namespaced_with(c.client("helm").unwrap(), "ns1", &tf_ar());
    let pp = PatchParams::apply("helm").force();
    let obj = json!({"apiVersion": "infra.contrib.fluxcd.io/v1alpha2", "kind": "Terraform",
        "metadata": {"name": "app"}, "spec": {"path": "./a"}});
    let out = api.patch("app", &pp, &Patch::Apply(&obj)).await.unwrap();
    assert_eq!(out.data["spec"]["path"], "./a");
    let obj2 = json!({"apiVersion": "infra.contrib.fluxcd.io/v1alpha2", "kind": "Terraform",
        "metadata": {"name": "app"}, "spec": {"path": "./b"}});
    let out2 = api.patch("app", &pp, &Patch::Apply(&obj2)).await.unwrap();
    assert_eq!(out2.data["spec"]["path"], "./b");
    assert_eq!(out2.metadata.uid, out.metadata.uid);
}

#[tokio::test]
async fn typed_events_both_groups() {
    let c = cluster().await;
    let client = c.client("guard").unwrap();
    let core: Api<k8s_openapi::api::core::v1::Event> = Api::namespaced(client.clone(), "ns1");
    let ev: k8s_openapi::api::core::v1::Event = serde_json::from_value(json!({
        "metadata": {"name": "net.1"},
        "involvedObject": {"kind": "Terraform", "name": "net", "namespace": "ns1"},
        "reason": "Orphaned", "message": "m", "type": "Warning"
    }))
    .unwrap();
    core.create(&PostParams::default(), &ev).await.unwrap();
    let listed = core
        .list(&ListParams::default().fields("involvedObject.name=net"))
        .await
        .unwrap();
    assert_eq!(listed.items.len(), 1);
    let new: Api<k8s_openapi::api::events::v1::Event> = Api::namespaced(client, "ns1");
    let ev2: k8s_openapi::api::events::v1::Event = serde_json::from_value(json!({
        "metadata": {"generateName": "net."},
        "eventTime": "2026-11-26T20:00:00.000000Z",
        "reportingController": "tfops.dev/guard", "reportingInstance": "guard-1",
        "action": "Orphan", "reason": "Orphaned", "type": "Warning",
        "regarding": {"kind": "Terraform", "name": "net", "namespace": "ns1"}
    }))
    .unwrap();
    let out = new.create(&PostParams::default(), &ev2).await.unwrap();
    assert!(out.metadata.name.unwrap().starts_with("net."));
}

#[tokio::test]
async fn kubeconfig_works_with_kube_config_loader_and_records_user() {
    let c = cluster().await;
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("kubeconfig");
    c.write_kubeconfig(&path, "tfops-guard", "ns9").unwrap();
    let kc = kube::config::Kubeconfig::read_from(&path).unwrap();
    let cfg = kube::Config::from_custom_kubeconfig(kc, &kube::config::KubeConfigOptions::default())
        .await
        .unwrap();
    assert_eq!(cfg.default_namespace, "ns9");
    let client = kube::Client::try_from(cfg).unwrap();
    let api: Api<Secret> = Api::default_namespaced(client);
    api.list(&ListParams::default()).await.unwrap();
    assert_eq!(c.requests().count("tfops-guard", Verb::List), 1);
    let recs = c.requests().filter(|r| r.user == "tfops-guard");
    assert_eq!(recs[0].namespace, "ns9");
    assert_eq!(recs[0].resource, "secrets");
    assert_eq!(recs[0].status, 200);
}

#[tokio::test]
async fn request_log_counts_per_user_and_verb() {
    let c = cluster().await;
    let a: Api<Secret> = Api::namespaced(c.client("a").unwrap(), "ns1");
    let b: Api<Secret> = Api::namespaced(c.client("b").unwrap(), "ns1");
    let mut s = Secret::default();
    s.metadata.name = Some("x".into());
    a.create(&PostParams::default(), &s).await.unwrap();
    a.get("x").await.unwrap();
    let _ = a.get_opt("missing").await.unwrap();
    b.delete("x", &DeleteParams::default()).await.unwrap();
    let log = c.requests();
    assert_eq!(log.count("a", Verb::Create), 1);
    assert_eq!(log.count("a", Verb::Get), 2);
    assert_eq!(log.count("b", Verb::Delete), 1);
    assert_eq!(log.count_user("a"), 3);
    let statuses: Vec<u16> = log
        .filter(|r| r.user == "a")
        .iter()
        .map(|r| r.status)
        .collect();
    assert_eq!(statuses, [201, 200, 404]);
}

#[tokio::test]
async fn discovery_documents() {
    let c = cluster().await;
    let client = c.client("helm").unwrap();
    let v = client.apiserver_version().await.unwrap();
    assert_eq!(v.major, "1");
    let groups = client.list_api_groups().await.unwrap();
    assert!(groups
        .groups
        .iter()
        .any(|g| g.name == "infra.contrib.fluxcd.io"));
    let rs = client
        .list_api_group_resources("infra.contrib.fluxcd.io/v1alpha2")
        .await
        .unwrap();
    assert!(rs
        .resources
        .iter()
        .any(|r| r.name == "terraforms" && r.namespaced));
    assert!(rs.resources.iter().any(|r| r.name == "terraforms/status"));
    let core = client.list_core_api_resources("v1").await.unwrap();
    assert!(core
        .resources
        .iter()
        .any(|r| r.name == "namespaces" && !r.namespaced));
    let d = kube::Discovery::new(client).run().await.unwrap();
    assert!(d.has_group("source.toolkit.fluxcd.io"));
}

#[tokio::test]
async fn owner_references_garbage_collected_unless_orphaned() {
    let c = cluster().await;
    let client = c.client("guard").unwrap();
    let tfs: Api<DynamicObject> = Api::namespaced_with(client.clone(), "ns1", &tf_ar());
    let secrets: Api<Secret> = Api::namespaced(client, "ns1");
    for name in ["net", "db"] {
        let owner = tfs
            .create(&PostParams::default(), &tf_obj(name, &[]))
            .await
            .unwrap();
        let s: Secret = serde_json::from_value(json!({
            "metadata": {"name": format!("{name}-outputs"), "ownerReferences": [{
                "apiVersion": "infra.contrib.fluxcd.io/v1alpha2", "kind": "Terraform",
                "name": name, "uid": owner.metadata.uid, "controller": true}]},
            "data": {"id": "eA=="}
        }))
        .unwrap();
        secrets.create(&PostParams::default(), &s).await.unwrap();
    }
    tfs.delete("net", &DeleteParams::background())
        .await
        .unwrap();
    assert!(
        secrets.get_opt("net-outputs").await.unwrap().is_none(),
        "collected with its owner"
    );
    tfs.delete("db", &DeleteParams::orphan()).await.unwrap();
    let kept = secrets.get("db-outputs").await.unwrap();
    assert!(
        kept.metadata.owner_references.is_none(),
        "orphaned: reference removed"
    );
}

/// Throughput figure (not an assertion): `cargo test -p tfops-testcluster --release --test api
/// -- --ignored --nocapture throughput`.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[ignore]
async fn throughput() {
    let c = cluster().await;
    let api: Api<DynamicObject> = Api::namespaced_with(c.client("bench").unwrap(), "ns1", &tf_ar());
    for i in 0..200 {
        api.create(&PostParams::default(), &tf_obj(&format!("m{i}"), &[]))
            .await
            .unwrap();
    }
    let n = 2000;
    let t0 = std::time::Instant::now();
    for i in 0..n {
        api.get(&format!("m{}", i % 200)).await.unwrap();
    }
    let get = t0.elapsed();
    let t1 = std::time::Instant::now();
    for i in 0..n {
        let p = json!({"metadata": {"annotations": {"n": i.to_string()}}});
        api.patch(
            &format!("m{}", i % 200),
            &PatchParams::default(),
            &Patch::Merge(&p),
        )
        .await
        .unwrap();
    }
    let patch = t1.elapsed();
    let t2 = std::time::Instant::now();
    for _ in 0..100 {
        api.list(&ListParams::default().labels("tfops.dev/release=r1"))
            .await
            .unwrap();
    }
    let list = t2.elapsed();
    println!(
        "GET {:.0}/s, merge PATCH {:.0}/s, LIST of 200 with selector {:.1} ms each",
        n as f64 / get.as_secs_f64(),
        n as f64 / patch.as_secs_f64(),
        list.as_secs_f64() * 10.0
    );
}
