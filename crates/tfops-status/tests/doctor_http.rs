//! `doctor` against the test API server over real HTTP: a release whose CRs each lack one thing
//! deletion needs, plus the bounded active controller probe with the simulation running and
//! stopped.

use crate::common;

use std::time::Duration;

use serde_json::{json, Value};
use tfops_status::diagnose::{render_text, ControllerProbe, Severity};
use tfops_status::doctor::{doctor, exit_code, probe_controller};
use tfops_status::fixtures;
use tfops_testcluster::tofu::{SimConfig, TofuSim, CONTROLLER_USER};
use tfops_testcluster::{ClusterOptions, TestCluster};

const NS: &str = "apps";

fn source(name: &str, artifact: bool) -> Value {
    let mut v = tfops_testcluster::tofu::fixtures::oci_source(NS, name, "latest@sha256:3b1f");
    if !artifact {
        if let Some(o) = v.as_object_mut() {
            o.remove("status");
        }
    }
    v
}

fn cr(name: &str) -> Value {
    let mut v = fixtures::terraform(NS, "shop", name.trim_start_matches("shop-"), name);
    if let Some(m) = v["metadata"].as_object_mut() {
        m.remove("uid");
    }
    v
}

fn checks(d: &tfops_status::diagnose::Diagnosis) -> Vec<(&'static str, Severity)> {
    d.findings.iter().map(|f| (f.check, f.severity)).collect()
}

#[tokio::test]
async fn names_what_blocks_each_cr_with_its_fix() {
    let c = TestCluster::start(ClusterOptions::default())
        .await
        .unwrap_or_else(|e| panic!("{e}"));
    let s = c.store();
    let create = |v: Value| {
        s.create(v).unwrap_or_else(|e| panic!("{e:?}"));
    };
    create(json!({"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": NS}}));
    create(tfops_testcluster::tofu::fixtures::service_account(
        NS,
        "tf-runner",
    ));
    // ok: everything present.
    create(source("shop-ok-src", true));
    create(cr("shop-ok"));
    // source missing.
    create(cr("shop-nosrc"));
    // source without artifact.
    create(source("shop-noart-src", false));
    create(cr("shop-noart"));
    // runner SA missing + required varsFrom missing + suspended + lock held.
    create(source("shop-many-src", true));
    let mut many = cr("shop-many");
    many["spec"]["serviceAccountName"] = json!("custom-runner");
    many["spec"]["varsFrom"] = json!([{"kind": "Secret", "name": "db-vars"}, {"kind": "ConfigMap", "name": "opt", "optional": true}]);
    many["spec"]["suspend"] = json!(true);
    many["status"] = json!({"lock": {"pending": "9db590f1-b6fe"}});
    create(many);
    // other release: not looked at.
    let mut other = fixtures::terraform(NS, "other", "x", "other-x");
    if let Some(m) = other["metadata"].as_object_mut() {
        m.remove("uid");
    }
    create(other);

    let client = c.client("doctor").unwrap_or_else(|e| panic!("{e}"));
    let ds = doctor(&client, NS, "shop", None)
        .await
        .unwrap_or_else(|e| panic!("{e}"));
    let by: Vec<(&str, Vec<(&'static str, Severity)>)> =
        ds.iter().map(|d| (d.name.as_str(), checks(d))).collect();
    assert_eq!(
        by,
        vec![
            (
                "shop-many",
                vec![
                    ("runner-sa-missing", Severity::Blocking),
                    ("vars-from-missing", Severity::Blocking),
                    ("suspended", Severity::Blocking),
                    ("state-lock-held", Severity::Blocking),
                ]
            ),
            (
                "shop-noart",
                vec![("source-no-artifact", Severity::Blocking)]
            ),
            ("shop-nosrc", vec![("source-missing", Severity::Blocking)]),
            ("shop-ok", vec![]),
        ]
    );
    assert_eq!(exit_code(&ds), 2);
    let text = render_text(&ds);
    assert!(
        text.contains("Terraform apps/shop-ok (module ok): deletion can proceed"),
        "{text}"
    );
    assert!(
        text.contains("    fix: kubectl create serviceaccount custom-runner -n apps"),
        "{text}"
    );
    assert!(
        text.contains("    fix: flux reconcile source oci shop-noart-src -n apps"),
        "{text}"
    );

    // Namespace terminating blocks everything.
    s.set_namespace_terminating(NS)
        .unwrap_or_else(|e| panic!("{e:?}"));
    let ds = doctor(&client, NS, "shop", None)
        .await
        .unwrap_or_else(|e| panic!("{e}"));
    assert!(ds.iter().all(|d| d
        .findings
        .iter()
        .any(|f| f.check == "namespace-terminating")));

    // Nothing for an unknown release.
    let none = doctor(&client, NS, "nope", None)
        .await
        .unwrap_or_else(|e| panic!("{e}"));
    assert_eq!(exit_code(&none), 3);
}

#[tokio::test(start_paused = true)]
async fn active_probe_with_the_controller_running_and_stopped() {
    let c = TestCluster::start(ClusterOptions::default())
        .await
        .unwrap_or_else(|e| panic!("{e}"));
    c.store()
        .create(tfops_testcluster::tofu::fixtures::service_account(
            NS,
            "tf-runner",
        ))
        .unwrap_or_else(|e| panic!("{e:?}"));
    c.store()
        .create(source("shop-db-src", true))
        .unwrap_or_else(|e| panic!("{e:?}"));
    c.store()
        .create(cr("shop-db"))
        .unwrap_or_else(|e| panic!("{e:?}"));
    let sim = TofuSim::start(
        c.client(CONTROLLER_USER).unwrap_or_else(|e| panic!("{e}")),
        SimConfig::default(),
    );
    let client = c.client("doctor").unwrap_or_else(|e| panic!("{e}"));

    let p = probe_controller(
        &client,
        NS,
        "shop-db",
        "2026-11-26T21:00:00.000000001Z",
        Duration::from_secs(30),
    )
    .await
    .unwrap_or_else(|e| panic!("{e}"));
    assert!(
        matches!(p, ControllerProbe::Answered { .. }),
        "{p:?} {:#} {:?}",
        c.store()
            .get(common::TF_API, "Terraform", NS, "shop-db")
            .unwrap_or_default()["status"]["lastHandledReconcileAt"],
        sim.stats(NS, "shop-db")
    );
    let ds = doctor(
        &client,
        NS,
        "shop",
        Some((Duration::from_secs(30), "tok-2".into())),
    )
    .await
    .unwrap_or_else(|e| panic!("{e}"));
    assert_eq!(
        exit_code(&ds),
        0,
        "{}\n{:#}\n{:?}",
        render_text(&ds),
        c.store()
            .get(common::TF_API, "Terraform", NS, "shop-db")
            .unwrap_or_default()["status"]["lastHandledReconcileAt"],
        sim.stats(NS, "shop-db")
    );

    sim.stop();
    let ds = doctor(
        &client,
        NS,
        "shop",
        Some((Duration::from_secs(20), "tok-3".into())),
    )
    .await
    .unwrap_or_else(|e| panic!("{e}"));
    assert_eq!(
        checks(&ds[0]),
        vec![("controller-not-answering", Severity::Blocking)]
    );
    assert_eq!(exit_code(&ds), 2);
}
