//! `status` against the project's test API server over real HTTP: every state of the mapping
//! comes back from a LIST, exactly one LIST per namespace (or one cluster-wide) plus one ledger
//! LIST, selection by release / namespace, exit codes, and `--watch` re-rendering on events.

use crate::common;

use std::collections::BTreeMap;

use chrono::Utc;
use tfops_status::fetch::{fetch, Namespaces, Selection};
use tfops_status::render::{Format, RenderOptions};
use tfops_status::report::build;
use tfops_status::state::State;
use tfops_status::status::{report_of, scope_of, status_once, status_watch};
use tfops_testcluster::{ClusterOptions, TestCluster, Verb};

fn sel(ns: Option<&str>, release: Option<&str>) -> Selection {
    Selection {
        namespaces: ns.map_or(Namespaces::All, |n| Namespaces::One(n.to_owned())),
        release: release.map(str::to_owned),
        ledger_namespace: None,
    }
}

async fn cluster() -> TestCluster {
    TestCluster::start(ClusterOptions::default())
        .await
        .unwrap_or_else(|e| panic!("cluster: {e}"))
}

fn states_by_name(r: &tfops_status::report::StatusReport) -> BTreeMap<String, State> {
    r.items.iter().map(|i| (i.name.clone(), i.state)).collect()
}

#[tokio::test]
async fn every_state_over_http_with_one_list_per_namespace() {
    let c = cluster().await;
    common::seed_release(&c, "apps", "shop");
    common::seed_release(&c, "apps", "other");
    common::seed_release(&c, "billing", "shop");
    let client = c.client("status").unwrap_or_else(|e| panic!("{e}"));
    c.requests().clear();

    let s = sel(Some("apps"), Some("shop"));
    let snap = fetch(&client, &s)
        .await
        .unwrap_or_else(|e| panic!("fetch: {e}"));
    let report = report_of(&snap, &s, Utc::now());
    assert!(snap.ledger_errors.is_empty());

    // Same states as the pure mapping gives for the fixtures, item by item.
    let got = states_by_name(&report);
    let expected: BTreeMap<String, State> = State::ALL
        .iter()
        .map(|s| (format!("shop-{}", s.as_str().to_ascii_lowercase()), *s))
        .collect();
    assert_eq!(got, expected);
    assert!(report
        .items
        .iter()
        .all(|i| i.namespace == "apps" && i.release == "shop"));
    assert_eq!(report.summary.exit_code, 2);

    assert_eq!(
        c.requests()
            .count_resource("status", Verb::List, "terraforms"),
        1
    );
    assert_eq!(
        c.requests().count_resource("status", Verb::List, "secrets"),
        1
    );
    assert_eq!(
        c.requests().count_user("status"),
        2,
        "{:?}",
        c.requests().all()
    );
}

#[tokio::test]
async fn all_releases_and_all_namespaces() {
    let c = cluster().await;
    common::seed_release(&c, "apps", "shop");
    common::seed_release(&c, "apps", "other");
    common::seed_release(&c, "billing", "pay");
    let client = c.client("status").unwrap_or_else(|e| panic!("{e}"));

    c.requests().clear();
    let s = sel(Some("apps"), None);
    let r = report_of(
        &fetch(&client, &s).await.unwrap_or_else(|e| panic!("{e}")),
        &s,
        Utc::now(),
    );
    assert_eq!(r.items.len(), 26);
    assert_eq!(
        c.requests()
            .count_resource("status", Verb::List, "terraforms"),
        1
    );

    c.requests().clear();
    let s = sel(None, None);
    let r = report_of(
        &fetch(&client, &s).await.unwrap_or_else(|e| panic!("{e}")),
        &s,
        Utc::now(),
    );
    assert_eq!(r.items.len(), 39);
    let lists = c
        .requests()
        .filter(|q| q.user == "status" && q.verb == Some(Verb::List));
    assert_eq!(
        lists.len(),
        2,
        "one cluster-wide Terraform LIST + one ledger LIST"
    );
    assert!(lists.iter().all(|q| q.namespace.is_empty()));

    // `-A RELEASE`: that release everywhere.
    let s = sel(None, Some("pay"));
    let r = report_of(
        &fetch(&client, &s).await.unwrap_or_else(|e| panic!("{e}")),
        &s,
        Utc::now(),
    );
    assert_eq!(r.items.len(), 13);
    assert!(r.items.iter().all(|i| i.namespace == "billing"));
}

#[tokio::test]
async fn exit_codes_from_the_cluster() {
    let c = cluster().await;
    let client = c.client("status").unwrap_or_else(|e| panic!("{e}"));
    let opts = RenderOptions {
        format: Format::Table,
        color: false,
        now: Utc::now(),
    };
    // Nothing there.
    let (text, code, _) = status_once(&client, &sel(Some("apps"), Some("shop")), &opts)
        .await
        .unwrap_or_else(|e| panic!("{e}"));
    assert_eq!(code, 3);
    assert_eq!(
        text,
        "No Terraform resources found for release \"shop\" in namespace apps.\n"
    );

    // Healthy, then progressing, then unhealthy.
    let mut ready = tfops_status::fixtures::terraform("apps", "shop", "db", "shop-db");
    tfops_status::fixtures::into_state(&mut ready, State::Ready);
    common::seed(&c, &[ready], &[]);
    let code = status_once(&client, &sel(Some("apps"), Some("shop")), &opts)
        .await
        .map(|r| r.1);
    assert_eq!(code.ok(), Some(0));
    let mut planning = tfops_status::fixtures::terraform("apps", "shop", "net", "shop-net");
    tfops_status::fixtures::into_state(&mut planning, State::Planning);
    common::seed(&c, &[planning], &[]);
    let code = status_once(&client, &sel(Some("apps"), Some("shop")), &opts)
        .await
        .map(|r| r.1);
    assert_eq!(code.ok(), Some(4));
    let mut failed = tfops_status::fixtures::terraform("apps", "shop", "dns", "shop-dns");
    tfops_status::fixtures::into_state(&mut failed, State::Failed);
    common::seed(&c, &[failed], &[]);
    let (text, code, _) = status_once(&client, &sel(Some("apps"), Some("shop")), &opts)
        .await
        .unwrap_or_else(|e| panic!("{e}"));
    assert_eq!(code, 2);
    assert!(text.starts_with("MODULE "), "{text}");
}

#[tokio::test]
async fn a_broken_ledger_secret_is_reported_not_fatal() {
    let c = cluster().await;
    common::seed_release(&c, "apps", "shop");
    c.store()
        .create(serde_json::json!({
            "apiVersion": "v1", "kind": "Secret", "type": "tfops.dev/ledger",
            "metadata": {"name": "tfops-ledger-bad-00000000", "namespace": "apps",
                "labels": {"tfops.dev/ledger": "v1", "tfops.dev/release": "shop"}},
            "stringData": {"entry.json": "{not json"}
        }))
        .unwrap_or_else(|e| panic!("{e:?}"));
    let client = c.client("status").unwrap_or_else(|e| panic!("{e}"));
    let s = sel(Some("apps"), Some("shop"));
    let snap = fetch(&client, &s).await.unwrap_or_else(|e| panic!("{e}"));
    assert_eq!(snap.ledger.len(), 2);
    assert_eq!(snap.ledger_errors.len(), 1);
    let w = tfops_status::status::warnings(&snap);
    assert!(w[0].contains("apps/tfops-ledger-bad-00000000"), "{w:?}");
    assert_eq!(
        build(&snap.terraforms, &snap.ledger, scope_of(&s), Utc::now())
            .items
            .len(),
        13
    );
}

#[tokio::test]
async fn watch_re_renders_on_events() {
    let c = cluster().await;
    let mut planning = tfops_status::fixtures::terraform("apps", "shop", "db", "shop-db");
    tfops_status::fixtures::into_state(&mut planning, State::Planning);
    common::seed(&c, &[planning], &[]);
    let client = c.client("status").unwrap_or_else(|e| panic!("{e}"));
    let opts = RenderOptions {
        format: Format::Table,
        color: false,
        now: Utc::now(),
    };
    let store = c.store().clone();
    let mut frames = 0;
    let mut out: Vec<u8> = Vec::new();
    let selection = sel(Some("apps"), Some("shop"));
    let watch = status_watch(
        &client,
        &selection,
        &opts,
        &Utc::now,
        false,
        &mut out,
        |report| {
            frames += 1;
            if frames == 1 {
                assert_eq!(report.items[0].state, State::Planning);
                // The controller finishes: Ready.
                let mut ready = tfops_status::fixtures::terraform("apps", "shop", "db", "shop-db");
                tfops_status::fixtures::into_state(&mut ready, State::Ready);
                store
                    .patch_merge(
                        common::TF_API,
                        "terraforms",
                        "apps",
                        "shop-db",
                        &serde_json::json!({"status": ready["status"]}),
                    )
                    .unwrap_or_else(|e| panic!("{e:?}"));
                false
            } else {
                report.items[0].state == State::Ready
            }
        },
    );
    let code = tokio::time::timeout(std::time::Duration::from_secs(60), watch)
        .await
        .unwrap_or_else(|_| panic!("watch did not see the change"))
        .unwrap_or_else(|e| panic!("{e}"));
    assert_eq!(code, 0);
    let text = String::from_utf8(out).unwrap_or_default();
    assert!(frames >= 2);
    assert!(
        text.contains("Planning") && text.contains("Ready"),
        "{text}"
    );
}

#[tokio::test]
async fn ledger_entries_in_a_configured_ledger_namespace() {
    let c = cluster().await;
    let (crs, mut ledger) = tfops_status::fixtures::release("apps", "shop", Utc::now());
    for item in &mut ledger {
        item.secret_namespace = "tfops-ledger".into();
    }
    common::seed(&c, &crs, &ledger);
    let client = c.client("status").unwrap_or_else(|e| panic!("{e}"));
    let mut s = sel(Some("apps"), Some("shop"));
    let without = report_of(
        &fetch(&client, &s).await.unwrap_or_else(|e| panic!("{e}")),
        &s,
        Utc::now(),
    );
    assert_eq!(
        without.items.len(),
        11,
        "entries elsewhere are not seen without the option"
    );
    s.ledger_namespace = Some("tfops-ledger".into());
    c.requests().clear();
    let with = report_of(
        &fetch(&client, &s).await.unwrap_or_else(|e| panic!("{e}")),
        &s,
        Utc::now(),
    );
    assert_eq!(with.items.len(), 13);
    let orphaned = with.items.iter().find(|i| i.state == State::Orphaned);
    assert_eq!(
        orphaned
            .and_then(|i| i.ledger.as_ref())
            .map(|l| l.namespace.as_str()),
        Some("tfops-ledger")
    );
    assert_eq!(
        c.requests()
            .count_resource("status", Verb::List, "terraforms"),
        1
    );
    assert_eq!(
        c.requests().count_resource("status", Verb::List, "secrets"),
        2
    );
    // -A sees them with one cluster-wide ledger LIST.
    let all = sel(None, Some("shop"));
    let r = report_of(
        &fetch(&client, &all).await.unwrap_or_else(|e| panic!("{e}")),
        &all,
        Utc::now(),
    );
    assert_eq!(r.items.len(), 13);
}
