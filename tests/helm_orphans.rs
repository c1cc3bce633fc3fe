//! End to end, a cleanup finished later: real Helm 4.1.4 / 3.16.1 with the plugins installed
//! from this checkout, the project's in-process API server and its tofu-controller simulation.
//!
//! install (a bucket module with a `varsFrom` Secret of the release) → the bucket's destroy
//! fails permanently → the uninstall finishes with the CR orphaned into the ledger → Helm has
//! deleted the Source, the runner ServiceAccount / RoleBinding and the Secret (asserted; the
//! tfstate Secret is lost as well) → the failure cause is fixed (the simulation's behaviour for
//! the CR) → `helm tfops orphans destroy` re-creates what tofu-controller needs → the
//! simulation destroys the same inventory from the restored state → the ledger says destroyed
//! and nothing the command created is left.
//!
//! Variants: a 5 MB tfstate (kept in ledger part Secrets, checksummed), and an entry rewritten
//! into the previous (v1) ledger format (which holds no Source copy: the command refuses,
//! naming it, until the Source is back).

use crate::common;

use std::path::{Path, PathBuf};
use std::time::Duration;

use common::{chart, stderr, stdout, Helm, HelmHome};
use k8s_openapi::api::core::v1::Secret;
use k8s_openapi::ByteString;
use serde_json::{json, Value};
use tfops_testcluster::tofu::{
    reconcile::Row, Behavior, DestroyAttempt, FailStage, SimConfig, TofuSim, CONTROLLER_USER,
};
use tfops_testcluster::{ClusterOptions, Store, TestCluster};

const NS: &str = "shop";
const TF: &str = "infra.contrib.fluxcd.io/v1alpha2";
const GIT: &str = "source.toolkit.fluxcd.io/v1";
const RBAC: &str = "rbac.authorization.k8s.io/v1";
const CR: &str = "reports-bucket";
const CREDS: &str = "reports-bucket-creds";
const STATE: &str = "tfstate-default-reports-bucket";
const CLEANUP_OF: &str = "tfops.dev/cleanup-of";
/// Upper bound for the real processes (helm, guard, tfops) and the simulation; never slept.
const PATIENCE: Duration = Duration::from_secs(90);

#[derive(Clone, Copy, PartialEq)]
enum Variant {
    Plain,
    BigState,
    V1Entry,
}

async fn output(mut cmd: std::process::Command) -> std::process::Output {
    tokio::task::spawn_blocking(move || cmd.output().expect("run helm"))
        .await
        .expect("join")
}

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

fn ready(cr: &Value) -> bool {
    cr["metadata"]["finalizers"]
        .as_array()
        .is_some_and(|f| !f.is_empty())
        && cr["status"]["conditions"].as_array().is_some_and(|cs| {
            cs.iter()
                .any(|c| c["type"] == "Ready" && c["status"] == "True")
        })
}

fn artifact() -> Value {
    json!({"status": {"artifact": {
        "revision": "v0.1.0@sha1:0123456789abcdef0123456789abcdef01234567",
        "digest": "sha256:3b1f5e2d9c7a4b6e8f0a1c3d5e7f9b2a4c6e8d0f1a3b5c7d9e1f3a5b7c9d1e3f",
        "path": "gitrepository/shop/x.tar.gz",
        "url": "http://source-controller/x.tar.gz",
        "lastUpdateTime": "2026-11-26T20:00:00Z"
    }}})
}

/// source-controller's part: every GitRepository of the namespace gets an artifact, also
/// the ones `orphans destroy` re-creates. Runs until aborted.
fn source_controller(store: Store) -> tokio::task::JoinHandle<()> {
    tokio::spawn(async move {
        let mut changes = store.subscribe();
        loop {
            for repo in store.list(GIT, "GitRepository", NS) {
                if repo["status"]["artifact"].is_null() {
                    let name = repo["metadata"]["name"].as_str().unwrap_or_default();
                    let _ = store.patch_merge(GIT, "GitRepository", NS, name, &artifact());
                }
            }
            if changes.changed().await.is_err() {
                return;
            }
        }
    })
}

/// charts-example/bucket-iam plus a Secret the bucket module reads through `varsFrom`.
fn chart_with_creds(dir: &Path) -> PathBuf {
    let src = chart("bucket-iam");
    let dst = dir.join("bucket-iam");
    copy_dir(&src, &dst);
    let secret = json!({
        "apiVersion": "v1", "kind": "Secret",
        "metadata": {"name": CREDS},
        "type": "Opaque",
        "stringData": {"token": "not-a-real-token"}
    });
    std::fs::write(
        dst.join("templates/creds.yaml"),
        serde_saphyr::to_string(&secret).expect("yaml"),
    )
    .expect("write template");
    dst
}

fn copy_dir(src: &Path, dst: &Path) {
    std::fs::create_dir_all(dst).expect("mkdir");
    for e in std::fs::read_dir(src).expect("read_dir") {
        let e = e.expect("entry");
        let to = dst.join(e.file_name());
        if e.file_type().expect("type").is_dir() {
            copy_dir(&e.path(), &to);
        } else {
            std::fs::copy(e.path(), to).expect("copy");
        }
    }
}

fn secret_data(store: &Store, name: &str) -> std::collections::BTreeMap<String, ByteString> {
    let s: Secret = serde_json::from_value(store.get("v1", "Secret", NS, name).expect("secret"))
        .expect("Secret");
    s.data.unwrap_or_default()
}

fn entry_json(store: &Store) -> (String, Value) {
    let ledger = store
        .list_selected("v1", "Secret", NS, "tfops.dev/ledger")
        .unwrap();
    assert_eq!(ledger.len(), 1, "{ledger:#?}");
    let name = ledger[0]["metadata"]["name"].as_str().unwrap().to_owned();
    let data = secret_data(store, &name);
    (name, serde_json::from_slice(&data["entry.json"].0).unwrap())
}

/// A tfstate of about 5 MB (JSON, as the simulation reads it) tracking the bucket.
fn big_state() -> Vec<u8> {
    let padding: Vec<String> = (0..70_000)
        .map(|i| {
            format!(
                "{i:08}-{:064x}",
                (i as u128).wrapping_mul(0x9e37_79b9_7f4a_7c15)
            )
        })
        .collect();
    let state = json!({
        "version": 4, "serial": 7, "lineage": "3c2b1a09-8f7e-6d5c-4b3a-291807f6e5d4",
        "resources": [{"mode": "managed", "type": "aws_s3_bucket", "name": "this",
            "instances": [{"attributes": {"id": "reports-bucket-bucket", "tags": padding}}]}]
    });
    serde_json::to_vec(&state).unwrap()
}

/// Rewrite the (v2) ledger entry as the previous format wrote it: label v1, no v2 fields,
/// no varsFrom data, the tfstate inline.
fn downgrade_to_v1(store: &Store, name: &str) {
    let data = secret_data(store, name);
    let mut entry: Value = serde_json::from_slice(&data["entry.json"].0).unwrap();
    for k in [
        "source",
        "sourceRef",
        "serviceAccount",
        "roleBinding",
        "varsFrom",
        "tfstateSha256",
        "tfstateParts",
        "notRecorded",
    ] {
        entry.as_object_mut().unwrap().remove(k);
    }
    let mut v1: std::collections::BTreeMap<String, ByteString> = data
        .into_iter()
        .filter(|(k, _)| k.starts_with("outputs.") || k.starts_with("tfstate."))
        .collect();
    v1.insert(
        "entry.json".into(),
        ByteString(serde_json::to_vec(&entry).unwrap()),
    );
    let mut secret = store.get("v1", "Secret", NS, name).unwrap();
    secret["metadata"]["labels"]["tfops.dev/ledger"] = json!("v1");
    secret["data"] = serde_json::to_value(&v1).unwrap();
    store.delete("v1", "Secret", NS, name).unwrap();
    store.create(secret).unwrap();
}

fn left_by_the_command(store: &Store) -> Vec<String> {
    let mut left = Vec::new();
    for (api, kind) in [
        ("v1", "Secret"),
        ("v1", "ConfigMap"),
        ("v1", "ServiceAccount"),
        (RBAC, "RoleBinding"),
        (GIT, "GitRepository"),
        (TF, "Terraform"),
    ] {
        for o in store.list_selected(api, kind, NS, CLEANUP_OF).unwrap() {
            left.push(format!("{kind} {}", o["metadata"]["name"]));
        }
    }
    left
}

async fn later_cleanup(version: Helm, variant: Variant) {
    let cluster = TestCluster::start(ClusterOptions {
        job_bin: Some(common::tfops_bin()),
        ..ClusterOptions::default()
    })
    .await
    .expect("test cluster");
    let store = cluster.store().clone();
    // Installed with tofu-controller.
    store
        .create(json!({"apiVersion": RBAC, "kind": "ClusterRole",
            "metadata": {"name": "tf-runner-role"}, "rules": []}))
        .unwrap();
    let sim = TofuSim::start(
        cluster.client(CONTROLLER_USER).expect("client"),
        SimConfig {
            namespace: Some(NS.into()),
            no_events: true,
            ..SimConfig::default()
        },
    );
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
    sim.set_behavior(NS, CR, not_empty);
    let sources = source_controller(store.clone());

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
    let helm = |args: &[&str]| {
        let mut cmd = home.helm(args);
        cmd.env("KUBECONFIG", &kubeconfig);
        cmd
    };
    let mut catalog: Value =
        serde_saphyr::from_str(&std::fs::read_to_string(chart("catalog.yaml")).unwrap()).unwrap();
    catalog["guard"]["budget"] = json!("60s");
    // The bucket reads the release's Secret through varsFrom.
    catalog["overlays"]
        .as_array_mut()
        .expect("overlays")
        .push(json!({"target": {"kind": "Terraform", "name": CR},
            "mergePatch": {"spec": {"varsFrom": [{"kind": "Secret", "name": CREDS}]}}}));
    let catalog_file = home.path("catalog.yaml");
    std::fs::write(&catalog_file, serde_saphyr::to_string(&catalog).unwrap()).unwrap();
    let chart_dir = chart_with_creds(&home.path("tmp"));

    let config_arg = format!("--config={}", catalog_file.display());
    let out = output(helm(&[
        "install",
        "reports",
        chart_dir.to_str().unwrap(),
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
    for cr in [CR, "reports-bucket-iam"] {
        sim.enqueue(NS, cr);
    }
    wait_for(&cluster, "both modules are applied", |c| {
        [CR, "reports-bucket-iam"].iter().all(|n| {
            c.store()
                .get(TF, "Terraform", NS, n)
                .is_some_and(|cr| ready(&cr))
        })
    })
    .await;
    let applied = store.get(TF, "Terraform", NS, CR).unwrap();
    assert_eq!(applied["spec"]["enableInventory"], true);
    assert_eq!(applied["spec"]["varsFrom"][0]["name"], CREDS);
    let inventory = applied["status"]["inventory"]["entries"].clone();
    assert_eq!(inventory[0]["id"], "reports-bucket-bucket", "{applied:#}");
    if variant == Variant::BigState {
        let state = big_state();
        assert!(state.len() > 5_000_000, "{}", state.len());
        store
            .patch_merge(
                "v1",
                "Secret",
                NS,
                STATE,
                &json!({"data": {"tfstate": ByteString(state)}}),
            )
            .unwrap();
    }

    // Uninstall: the bucket cannot be destroyed; the guard orphans it into the ledger.
    let args: &[&str] = match version {
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
    let out = output(helm(args)).await;
    assert!(
        out.status.success(),
        "uninstall: {}{}\njob runs: {:#?}",
        stdout(&out),
        stderr(&out),
        cluster.job_runs()
    );
    assert!(store.list(TF, "Terraform", NS).is_empty());
    // Helm deleted everything a later destroy needs.
    assert!(store.list(GIT, "GitRepository", NS).is_empty());
    assert!(store
        .get("v1", "ServiceAccount", NS, "reports-bucket-tf-runner")
        .is_none());
    assert!(store
        .get(RBAC, "RoleBinding", NS, "reports-bucket-tf-runner")
        .is_none());
    assert!(store.get("v1", "Secret", NS, CREDS).is_none());
    assert!(store
        .list_selected("v1", "Secret", NS, "owner=helm")
        .unwrap()
        .is_empty());
    // The tfstate Secret is lost too (e.g. the namespace was cleaned): only the ledger has it.
    let _ = store.delete("v1", "Secret", NS, STATE);

    let (ledger_name, entry) = entry_json(&store);
    assert_eq!(entry["decision"], "orphaned", "{entry:#}");
    assert_eq!(
        entry["inventory"][0]["identifier"], "reports-bucket-bucket",
        "{entry:#}"
    );
    assert_eq!(
        entry["inventory"].as_array().map(Vec::len),
        inventory.as_array().map(Vec::len)
    );
    assert_eq!(entry["source"]["kind"], "GitRepository", "{entry:#}");
    assert_eq!(
        entry["serviceAccount"]["name"], "reports-bucket-tf-runner",
        "{entry:#}"
    );
    assert_eq!(
        entry["roleBinding"]["body"]["roleRef"]["name"], "tf-runner-role",
        "{entry:#}"
    );
    assert_eq!(entry["varsFrom"][0]["name"], CREDS, "{entry:#}");
    assert_eq!(entry["varsFrom"][0]["copied"], true, "{entry:#}");
    assert!(entry["tfstateSha256"]["tfstate"].is_string(), "{entry:#}");
    let ledger_data = secret_data(&store, &ledger_name);
    assert_eq!(ledger_data["vars.0.token"].0, b"not-a-real-token");
    match variant {
        Variant::BigState => {
            let parts = entry["tfstateParts"].as_array().expect("parts");
            assert!(parts.len() >= 6, "{parts:?}");
            assert!(!ledger_data.contains_key("tfstate.tfstate"));
        }
        _ => assert!(ledger_data.contains_key("tfstate.tfstate")),
    }

    // The cause is fixed (the bucket was emptied by hand).
    sim.set_behavior(NS, CR, Behavior::default());

    let destroy = |extra: &[&str]| {
        let mut args = vec![
            "tfops",
            "orphans",
            "destroy",
            CR,
            "-n",
            NS,
            "--timeout",
            "80s",
        ];
        args.extend_from_slice(extra);
        helm(&args)
    };
    if variant == Variant::V1Entry {
        downgrade_to_v1(&store, &ledger_name);
        // No copy of the Source in a v1 entry: refused before anything is created, named.
        let out = output(destroy(&[])).await;
        assert!(!out.status.success(), "{}", stdout(&out));
        assert!(
            stderr(&out).contains("GitRepository shop/reports-bucket"),
            "{}",
            stderr(&out)
        );
        assert!(left_by_the_command(&store).is_empty());
        // No copy of the varsFrom Secret either; the user puts both back.
        let src: Value = serde_json::from_value(entry["source"].clone()).unwrap();
        let mut repo = json!({"apiVersion": GIT, "kind": "GitRepository",
            "metadata": {"name": "reports-bucket", "namespace": NS}});
        repo["spec"] = src["body"]["spec"].clone();
        store.create(repo).unwrap();
        store
            .create(json!({"apiVersion": "v1", "kind": "Secret",
                "metadata": {"name": CREDS, "namespace": NS},
                "data": {"token": ByteString(b"not-a-real-token".to_vec())}}))
            .unwrap();
    } else {
        let out = output(destroy(&["--dry-run"])).await;
        assert!(out.status.success(), "{}{}", stdout(&out), stderr(&out));
        for what in [
            "ServiceAccount shop/reports-bucket-tf-runner",
            "RoleBinding shop/reports-bucket-tf-runner",
            "Secret shop/reports-bucket-creds",
            "GitRepository shop/reports-bucket",
            "Secret shop/tfstate-default-reports-bucket",
            "Terraform shop/reports-bucket",
        ] {
            assert!(stdout(&out).contains(what), "{what}: {}", stdout(&out));
        }
        assert!(store.list(TF, "Terraform", NS).is_empty());
    }

    let out = output(destroy(&[])).await;
    assert!(
        out.status.success(),
        "orphans destroy: {}{}",
        stdout(&out),
        stderr(&out)
    );
    assert!(stdout(&out).contains("destroyed"), "{}", stdout(&out));
    // The simulation destroyed the resources of the restored state (not "nothing to destroy").
    let stats = sim.stats(NS, CR);
    assert!(stats.destroy_attempts >= 1, "{stats:?}");
    assert_eq!(
        stats.last_row,
        Some(Row::Destroyed),
        "{stats:?}\n{}",
        stderr(&out)
    );

    let (_, after) = entry_json(&store);
    assert_eq!(after["cleanup"]["state"], "destroyed", "{after:#}");
    assert!(store.list(TF, "Terraform", NS).is_empty());
    assert_eq!(left_by_the_command(&store), Vec::<String>::new());
    if variant != Variant::V1Entry {
        assert!(store.list(GIT, "GitRepository", NS).is_empty());
        assert!(store
            .get("v1", "ServiceAccount", NS, "reports-bucket-tf-runner")
            .is_none());
        assert!(store.get("v1", "Secret", NS, CREDS).is_none());
        assert!(store.get("v1", "Secret", NS, STATE).is_none());
    }
    sources.abort();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn helm4_orphan_destroyed_later_after_helm_deleted_everything() {
    later_cleanup(Helm::V4, Variant::Plain).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn helm3_orphan_destroyed_later_after_helm_deleted_everything() {
    later_cleanup(Helm::V3, Variant::Plain).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn helm4_orphan_with_a_5mb_tfstate_is_kept_in_parts_and_destroyed_later() {
    later_cleanup(Helm::V4, Variant::BigState).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn helm4_orphan_from_a_v1_ledger_entry_is_destroyed_later() {
    later_cleanup(Helm::V4, Variant::V1Entry).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn helm3_orphan_with_a_5mb_tfstate_is_kept_in_parts_and_destroyed_later() {
    later_cleanup(Helm::V3, Variant::BigState).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn helm3_orphan_from_a_v1_ledger_entry_is_destroyed_later() {
    later_cleanup(Helm::V3, Variant::V1Entry).await;
}
