//! The ledger round-trip against the test API server and the tofu-controller simulation over
//! real HTTP, on paused (virtual) time: a module is applied, orphaned (ledger entry written
//! first, then released without destroy, its namespace's tfstate Secret lost), and
//! `orphans destroy` finishes the cleanup — the simulation destroys it — recording the result.
//! Also: destroy failing, controller absent, name taken, forget, show redaction.

use crate::common;

use std::sync::Arc;
use std::time::Duration;

use serde_json::{json, Value};
use tfops_guard::ledger::{self, LedgerDecision};
use tfops_status::fetch::{fetch, list_ledger, Namespaces, Selection};
use tfops_status::fixtures;
use tfops_status::ledger::{CleanupState, LedgerItem};
use tfops_status::orphans::{self, DestroyOptions, DestroyOutcome, OrphansError};
use tfops_status::state::State;
use tfops_status::status::report_of;
use tfops_testcluster::tofu::behavior::{Behavior, DestroyAttempt, FailStage};
use tfops_testcluster::tofu::{SimConfig, TofuSim, CONTROLLER_USER};
use tfops_testcluster::{ClusterOptions, TestCluster};

const NS: &str = "apps";
const TF: &str = common::TF_API;
const REV: &str = "latest@sha256:3b1f5e2d9c7a4b6e8f0a1c3d5e7f9b2a4c6e8d0f1a3b5c7d9e1f3a5b7c9d1e3f";

struct Env {
    cluster: TestCluster,
    sim: TofuSim,
    client: kube::Client,
}

fn source(name: &str) -> Value {
    tfops_testcluster::tofu::fixtures::oci_source(NS, name, REV)
}

impl Env {
    async fn start() -> Env {
        let cluster = TestCluster::start(ClusterOptions::default())
            .await
            .unwrap_or_else(|e| panic!("{e}"));
        let sa = tfops_testcluster::tofu::fixtures::service_account(NS, "tf-runner");
        cluster
            .store()
            .create(sa)
            .unwrap_or_else(|e| panic!("{e:?}"));
        // Installed with tofu-controller (cluster-scoped; `orphans destroy` needs it).
        let role = json!({"apiVersion": "rbac.authorization.k8s.io/v1", "kind": "ClusterRole",
            "metadata": {"name": "tf-runner-role"}, "rules": []});
        cluster
            .store()
            .create(role)
            .unwrap_or_else(|e| panic!("{e:?}"));
        let sim = TofuSim::start(
            cluster
                .client(CONTROLLER_USER)
                .unwrap_or_else(|e| panic!("{e}")),
            SimConfig::default(),
        );
        let client = cluster.client("operator").unwrap_or_else(|e| panic!("{e}"));
        Env {
            cluster,
            sim,
            client,
        }
    }

    fn tf(&self, name: &str) -> Value {
        self.cluster
            .store()
            .get(TF, "Terraform", NS, name)
            .unwrap_or(Value::Null)
    }

    async fn wait(&self, cond: impl Fn() -> bool, max_secs: u64) -> bool {
        tfops_testcluster::vtime::poll_each_second(cond, max_secs).await
    }

    /// Apply module `name` through the simulation until Ready.
    async fn applied(&self, name: &str) {
        let src = format!("{name}-src");
        if self
            .cluster
            .store()
            .get("source.toolkit.fluxcd.io/v1", "OCIRepository", NS, &src)
            .is_none()
        {
            self.cluster
                .store()
                .create(source(&src))
                .unwrap_or_else(|e| panic!("{e:?}"));
        }
        let mut cr = fixtures::terraform(NS, "shop", "db", name);
        cr["spec"]["writeOutputsToSecret"] = json!({"name": format!("{name}-outputs")});
        if let Some(m) = cr["metadata"].as_object_mut() {
            m.remove("uid");
            m.remove("creationTimestamp");
        }
        self.cluster
            .store()
            .create(cr)
            .unwrap_or_else(|e| panic!("{e:?}"));
        let ready = || {
            self.tf(name)["status"]["conditions"]
                .as_array()
                .is_some_and(|c| {
                    c.iter()
                        .any(|c| c["type"] == "Ready" && c["status"] == "True")
                })
        };
        assert!(
            self.wait(ready, 600).await,
            "never Ready: {:#}",
            self.tf(name)
        );
    }

    /// What the guard does when it orphans: ledger entry first (with the tfstate copy), then
    /// `destroyResourcesOnDeletion: false` + delete; the controller releases the CR. Then the
    /// tfstate Secret is lost (as when the namespace is cleaned up).
    async fn orphan(&self, name: &str) -> LedgerItem {
        let cr = self.tf(name);
        let uid = cr["metadata"]["uid"]
            .as_str()
            .unwrap_or_default()
            .to_owned();
        let mut item = fixtures::ledger_item(
            NS,
            "shop",
            "db",
            name,
            &uid,
            LedgerDecision::Orphaned,
            self.cluster.store().clock().now(),
        );
        item.record.entry.terraform.spec = cr["spec"].clone();
        let state_name = format!("tfstate-default-{name}");
        let state = self.cluster.store().get("v1", "Secret", NS, &state_name);
        let state = state.unwrap_or_else(|| panic!("the simulation wrote no {state_name}"));
        item.record.tfstate = state["data"]
            .as_object()
            .map(|d| {
                d.iter()
                    .map(|(k, v)| {
                        let b64 = v.as_str().unwrap_or_default();
                        let bytes: k8s_openapi::ByteString =
                            serde_json::from_value(Value::from(b64))
                                .unwrap_or_else(|e| panic!("{e}"));
                        (k.clone(), bytes.0)
                    })
                    .collect()
            })
            .unwrap_or_default();
        item.record.entry.tfstate_secret = state_name.clone();
        item.record.entry.tfstate_copied = true;
        ledger::write(&self.client, NS, &item.record)
            .await
            .unwrap_or_else(|e| panic!("{e}"));
        self.cluster
            .store()
            .patch_merge(
                TF,
                "terraforms",
                NS,
                name,
                &json!({"spec": {"destroyResourcesOnDeletion": false}}),
            )
            .unwrap_or_else(|e| panic!("{e:?}"));
        self.cluster
            .store()
            .delete(TF, "terraforms", NS, name)
            .unwrap_or_else(|e| panic!("{e:?}"));
        assert!(
            self.wait(|| self.tf(name).is_null(), 600).await,
            "not released: {:#}",
            self.tf(name)
        );
        assert_eq!(
            self.sim.stats(NS, name).destroy_attempts,
            0,
            "orphaning must not destroy"
        );
        self.cluster
            .store()
            .force_remove("v1", "secrets", NS, &state_name)
            .unwrap_or_else(|e| panic!("{e:?}"));
        self.ledger_item(&item.secret_name).await
    }

    async fn ledger_item(&self, secret: &str) -> LedgerItem {
        let (items, errs) = list_ledger(&self.client, &Namespaces::One(NS.into()), None)
            .await
            .unwrap_or_else(|e| panic!("{e}"));
        assert!(errs.is_empty());
        orphans::find(&items, secret)
            .cloned()
            .unwrap_or_else(|e| panic!("{e}"))
    }
}

fn opts(name: Option<&str>, timeout_secs: u64) -> DestroyOptions {
    DestroyOptions {
        name: name.map(str::to_owned),
        namespace: None,
        dry_run: false,
        timeout: Duration::from_secs(timeout_secs),
        clock: Arc::new(chrono::Utc::now),
    }
}

#[tokio::test(start_paused = true)]
async fn orphan_then_orphans_destroy_then_destroyed() {
    let env = Env::start().await;
    env.applied("shop-db").await;
    let item = env.orphan("shop-db").await;
    assert_eq!(item.cleanup_state(), CleanupState::Open);

    // status shows it Orphaned, exit code 2.
    let sel = Selection {
        namespaces: Namespaces::One(NS.into()),
        release: Some("shop".into()),
        ledger_namespace: None,
    };
    let snap = fetch(&env.client, &sel)
        .await
        .unwrap_or_else(|e| panic!("{e}"));
    let r = report_of(&snap, &sel, chrono::Utc::now());
    assert_eq!(
        r.items.iter().map(|i| i.state).collect::<Vec<_>>(),
        vec![State::Orphaned]
    );
    assert_eq!(r.summary.exit_code, 2);

    let mut lines = Vec::new();
    let out = orphans::destroy(&env.client, &item, &opts(None, 600), &mut |l: &str| {
        lines.push(l.to_owned())
    })
    .await
    .unwrap_or_else(|e| panic!("{e}"));
    assert_eq!(
        out,
        DestroyOutcome::Destroyed {
            name: "shop-db".into()
        }
    );
    assert!(env.tf("shop-db").is_null());
    assert!(
        env.sim.stats(NS, "shop-db").destroy_attempts >= 1,
        "the simulation destroyed it"
    );
    assert!(
        lines
            .iter()
            .any(|l| l == "created Secret apps/tfstate-default-shop-db"),
        "{lines:?}"
    );
    // What it created is gone again; what it found (the ServiceAccount) is left alone.
    assert!(
        lines
            .iter()
            .any(|l| l == "deleted Secret apps/tfstate-default-shop-db"),
        "{lines:?}"
    );
    let store = env.cluster.store();
    assert!(store
        .list_selected("v1", "Secret", NS, orphans::CLEANUP_OF_LABEL)
        .unwrap()
        .is_empty());
    assert!(store
        .list_selected(
            "rbac.authorization.k8s.io/v1",
            "RoleBinding",
            NS,
            orphans::CLEANUP_OF_LABEL
        )
        .unwrap()
        .is_empty());
    assert!(store.get("v1", "ServiceAccount", NS, "tf-runner").is_some());

    let after = env.ledger_item(&item.secret_name).await;
    assert_eq!(after.cleanup_state(), CleanupState::Destroyed);
    let history: Vec<CleanupState> = after
        .entry()
        .cleanup
        .history
        .iter()
        .map(|h| h.state)
        .collect();
    assert_eq!(
        history,
        vec![CleanupState::Destroying, CleanupState::Destroyed]
    );

    // Cleaned-up entries count as healthy.
    let snap = fetch(&env.client, &sel)
        .await
        .unwrap_or_else(|e| panic!("{e}"));
    assert_eq!(
        report_of(&snap, &sel, chrono::Utc::now()).summary.exit_code,
        0
    );
    // A second destroy does nothing.
    let again = orphans::destroy(&env.client, &after, &opts(None, 600), &mut |_: &str| {}).await;
    assert_eq!(again.ok(), Some(DestroyOutcome::AlreadyDestroyed));
}

#[tokio::test(start_paused = true)]
async fn a_missing_cluster_role_is_refused_before_anything_is_created() {
    let env = Env::start().await;
    env.applied("shop-db").await;
    let item = env.orphan("shop-db").await;
    env.cluster
        .store()
        .delete(
            "rbac.authorization.k8s.io/v1",
            "ClusterRole",
            "",
            "tf-runner-role",
        )
        .unwrap_or_else(|e| panic!("{e:?}"));
    let err = orphans::destroy(&env.client, &item, &opts(None, 600), &mut |_: &str| {})
        .await
        .unwrap_err()
        .to_string();
    assert!(err.contains("ClusterRole tf-runner-role"), "{err}");
    assert!(env.tf("shop-db").is_null());
    // doctor says so too, before anyone tries.
    let d = tfops_status::doctor::doctor_orphans(&env.client, NS, "shop")
        .await
        .unwrap_or_else(|e| panic!("{e}"));
    assert_eq!(d.len(), 1, "{d:?}");
    assert_eq!(d[0].findings[0].check, "orphan-destroy-blocked");
    assert!(d[0].blocking());
    assert!(
        d[0].findings[0]
            .message
            .contains("ClusterRole tf-runner-role"),
        "{d:?}"
    );
    let after = env.ledger_item(&item.secret_name).await;
    assert_eq!(after.cleanup_state(), CleanupState::Open);
    // --dry-run lists what it would create, and creates nothing.
    let mut o = opts(None, 600);
    o.dry_run = true;
    let out = orphans::destroy(&env.client, &item, &o, &mut |_: &str| {})
        .await
        .unwrap_or_else(|e| panic!("{e}"));
    let DestroyOutcome::DryRun { would_create } = out else {
        panic!("{out:?}")
    };
    assert!(
        would_create.contains(&"Terraform apps/shop-db".to_owned()),
        "{would_create:?}"
    );
    assert!(env.tf("shop-db").is_null());
}

#[tokio::test(start_paused = true)]
async fn a_destroy_that_keeps_failing_is_recorded_and_releases_the_cr() {
    let env = Env::start().await;
    env.applied("shop-db").await;
    let item = env.orphan("shop-db").await;
    env.sim.set_behavior(NS, "shop-db", Behavior {
        destroy: vec![DestroyAttempt::fail_forever(FailStage::Apply, "deleting S3 Bucket (shop-db): operation error S3: DeleteBucket, https response error StatusCode: 403, api error AccessDenied: Access Denied")],
        ..Behavior::default()
    });
    let out = orphans::destroy(&env.client, &item, &opts(None, 300), &mut |_: &str| {})
        .await
        .unwrap_or_else(|e| panic!("{e}"));
    let DestroyOutcome::Failed { message } = out else {
        panic!("expected failure, got {out:?}")
    };
    assert!(
        message.starts_with("destroy did not finish within 5m"),
        "{message}"
    );
    assert!(message.contains("TFExecApplyFailed"), "{message}");
    assert!(
        env.wait(|| env.tf("shop-db").is_null(), 60).await,
        "re-created CR left behind"
    );
    let after = env.ledger_item(&item.secret_name).await;
    assert_eq!(after.cleanup_state(), CleanupState::DestroyFailed);
    assert_eq!(
        after
            .entry()
            .cleanup
            .history
            .last()
            .map(|h| h.message.clone()),
        Some(message)
    );
}

#[tokio::test(start_paused = true)]
async fn controller_absent_fails_without_leaving_anything() {
    let env = Env::start().await;
    env.applied("shop-db").await;
    let item = env.orphan("shop-db").await;
    env.sim.stop();
    let out = orphans::destroy(&env.client, &item, &opts(None, 120), &mut |_: &str| {})
        .await
        .unwrap_or_else(|e| panic!("{e}"));
    assert!(
        matches!(&out, DestroyOutcome::Failed { message } if message.contains("did not pick up")),
        "{out:?}"
    );
    assert!(env.tf("shop-db").is_null());
    assert_eq!(
        env.ledger_item(&item.secret_name).await.cleanup_state(),
        CleanupState::DestroyFailed
    );
}

#[tokio::test(start_paused = true)]
async fn a_taken_name_is_refused_and_a_fresh_name_keeps_the_state_secret() {
    let env = Env::start().await;
    env.applied("shop-db").await;
    let item = env.orphan("shop-db").await;
    // Someone re-installed the release meanwhile: a new shop-db exists.
    env.applied("shop-db").await;
    let err = orphans::destroy(&env.client, &item, &opts(None, 600), &mut |_: &str| {}).await;
    assert!(
        matches!(err, Err(OrphansError::NameTaken { .. })),
        "{err:?}"
    );

    let recreated = orphans::recreated_terraform(&item, "shop-db-cleanup");
    assert_eq!(
        recreated["spec"]["backendConfig"]["secretSuffix"],
        "shop-db"
    );
    assert_eq!(recreated["spec"]["destroyResourcesOnDeletion"], true);
    assert_eq!(recreated["spec"]["approvePlan"], "");
    assert_eq!(
        recreated["metadata"]["labels"]["tfops.dev/cleanup-of"],
        Value::from(item.secret_name.clone())
    );
    let out = orphans::destroy(
        &env.client,
        &item,
        &opts(Some("shop-db-cleanup"), 600),
        &mut |_: &str| {},
    )
    .await
    .unwrap_or_else(|e| panic!("{e}"));
    assert_eq!(
        out,
        DestroyOutcome::Destroyed {
            name: "shop-db-cleanup".into()
        }
    );
    assert!(
        !env.tf("shop-db").is_null(),
        "the release's own CR is untouched"
    );
}

#[tokio::test]
async fn show_redacts_and_forget_deletes() {
    let cluster = TestCluster::start(ClusterOptions::default())
        .await
        .unwrap_or_else(|e| panic!("{e}"));
    let client = cluster.client("operator").unwrap_or_else(|e| panic!("{e}"));
    let item = fixtures::ledger_item(
        NS,
        "shop",
        "db",
        "shop-db",
        "0a1b2c3d-0000",
        LedgerDecision::ForceRemoved,
        chrono::Utc::now(),
    );
    common::seed_ledger(&cluster, &item);
    let (items, _) = list_ledger(&client, &Namespaces::All, None)
        .await
        .unwrap_or_else(|e| panic!("{e}"));
    let found = orphans::find(&items, "shop-db").unwrap_or_else(|e| panic!("{e}"));
    assert_eq!(found.secret_name, "tfops-ledger-shop-db-0a1b2c3d");

    let shown = orphans::show_yaml(found, false).unwrap_or_else(|e| panic!("{e}"));
    assert!(!shown.contains("bucket-1.example"), "{shown}");
    assert!(!shown.contains("secret-state"), "{shown}");
    assert!(
        shown.contains("<redacted, 24 bytes; --show-secrets to print>"),
        "{shown}"
    );
    let revealed = orphans::show_yaml(found, true).unwrap_or_else(|e| panic!("{e}"));
    assert!(revealed.contains("https://bucket-1.example"), "{revealed}");

    let refusal = orphans::forget_refusal(found);
    assert!(
        refusal.starts_with(
            "Refusing to forget ledger entry apps/tfops-ledger-shop-db-0a1b2c3d without --yes."
        ),
        "{refusal}"
    );
    orphans::forget(&client, found)
        .await
        .unwrap_or_else(|e| panic!("{e}"));
    assert!(cluster
        .store()
        .get("v1", "Secret", NS, "tfops-ledger-shop-db-0a1b2c3d")
        .is_none());
    assert!(matches!(
        orphans::find(&[], "shop-db"),
        Err(OrphansError::NotFound(_))
    ));
}

#[tokio::test(start_paused = true)]
async fn the_tfstate_copy_is_replaced_through_parts_and_export_import_round_trips() {
    let env = Env::start().await;
    env.applied("shop-db").await;
    let item = env.orphan("shop-db").await;
    let store = env.cluster.store();

    // A bigger state (as after a partial destroy): moved into parts, checksummed.
    let big: Vec<u8> = (0..3_000_000u32).map(|i| (i % 251) as u8).collect();
    ledger::replace_tfstate(
        &env.client,
        NS,
        &item.secret_name,
        [("tfstate".to_owned(), big.clone())].into(),
    )
    .await
    .unwrap_or_else(|e| panic!("{e}"));
    let parts = store
        .list_selected("v1", "Secret", NS, ledger::LABEL_LEDGER_PART)
        .unwrap();
    assert_eq!(parts.len(), big.len().div_ceil(ledger::PART_SIZE));
    let mut after = env.ledger_item(&item.secret_name).await;
    assert!(after.record.parts_pending());
    ledger::load_parts(&env.client, NS, &mut after.record)
        .await
        .unwrap_or_else(|e| panic!("{e}"));
    assert_eq!(after.record.tfstate["tfstate"], big);

    // Export (full) → forget → import: the same entry, parts and all.
    let doc = orphans::export(&env.client, &after, true)
        .await
        .unwrap_or_else(|e| panic!("{e}"));
    let text = serde_saphyr::to_string(&doc).unwrap_or_else(|e| panic!("{e}"));
    let redacted = orphans::export(&env.client, &after, false)
        .await
        .unwrap_or_else(|e| panic!("{e}"));
    let e = orphans::import_secrets(&redacted, NS)
        .unwrap_err()
        .to_string();
    assert!(e.contains("redacted"), "{e}");
    orphans::forget(&env.client, &after)
        .await
        .unwrap_or_else(|e| panic!("{e}"));
    let back: Value = serde_saphyr::from_str(&text).unwrap_or_else(|e| panic!("{e}"));
    // A damaged copy is refused, naming the field.
    let mut damaged = back.clone();
    damaged["items"][1]["data"]["part"] = json!("AAAA");
    let e = orphans::import_secrets(&damaged, NS)
        .unwrap_err()
        .to_string();
    assert!(e.contains("tfstate.tfstate"), "{e}");
    let (main, parts) = orphans::import_secrets(&back, NS).unwrap_or_else(|e| panic!("{e}"));
    orphans::import(&env.client, &main, &parts)
        .await
        .unwrap_or_else(|e| panic!("{e}"));
    let mut again = env.ledger_item(&item.secret_name).await;
    ledger::load_parts(&env.client, NS, &mut again.record)
        .await
        .unwrap_or_else(|e| panic!("{e}"));
    assert_eq!(again.record.tfstate["tfstate"], big);

    // Back to a small state: inline again, the parts deleted.
    ledger::replace_tfstate(
        &env.client,
        NS,
        &item.secret_name,
        [("tfstate".to_owned(), b"{}".to_vec())].into(),
    )
    .await
    .unwrap_or_else(|e| panic!("{e}"));
    assert!(store
        .list_selected("v1", "Secret", NS, ledger::LABEL_LEDGER_PART)
        .unwrap()
        .is_empty());
    let small = env.ledger_item(&item.secret_name).await;
    assert_eq!(small.record.tfstate["tfstate"], b"{}");
}

#[tokio::test(start_paused = true)]
async fn adopt_hands_the_state_to_the_reinstalled_release() {
    let env = Env::start().await;
    env.applied("shop-db").await;
    let item = env.orphan("shop-db").await;
    let clock = chrono::Utc::now;

    // No CR of the module in the release yet: refused, named.
    let e = orphans::adopt(&env.client, &item, "shop", None, &clock)
        .await
        .unwrap_err()
        .to_string();
    assert!(e.contains("no Terraform CR of module \"db\""), "{e}");

    // Re-installed, suspended (so it does not apply before it has the state).
    let mut cr = fixtures::terraform(NS, "shop", "db", "shop-db-v2");
    cr["spec"]["suspend"] = json!(true);
    env.cluster
        .store()
        .create(cr)
        .unwrap_or_else(|e| panic!("{e:?}"));
    let out = orphans::adopt(&env.client, &item, "shop", None, &clock)
        .await
        .unwrap_or_else(|e| panic!("{e}"));
    assert_eq!(
        out,
        orphans::AdoptOutcome::Adopted {
            namespace: NS.into(),
            name: "shop-db-v2".into()
        }
    );
    let state = env
        .cluster
        .store()
        .get("v1", "Secret", NS, "tfstate-default-shop-db-v2")
        .unwrap_or_else(|| panic!("no state Secret"));
    let copy: k8s_openapi::ByteString =
        serde_json::from_value(state["data"]["tfstate"].clone()).unwrap_or_else(|e| panic!("{e}"));
    assert_eq!(copy.0, item.record.tfstate["tfstate"]);
    let after = env.ledger_item(&item.secret_name).await;
    assert_eq!(after.cleanup_state(), CleanupState::Adopted);
    assert!(after.cleaned_up());
    // Not twice.
    assert_eq!(
        orphans::adopt(&env.client, &after, "shop", None, &clock)
            .await
            .ok(),
        Some(orphans::AdoptOutcome::AlreadyCleanedUp)
    );
}
