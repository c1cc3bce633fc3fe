//! The real `tfops` binary (`helm tfops status|orphans|doctor`) against the project's test API
//! server over real HTTP, configured only through a written kubeconfig and Helm's plugin
//! environment (KUBECONFIG, HELM_NAMESPACE, HELM_KUBECONTEXT, NO_COLOR).

use std::path::PathBuf;
use std::process::Output;

use serde_json::{json, Value};
use tfops_guard::ledger::LedgerDecision;
use tfops_status::fixtures;
use tfops_status::state::State;
use tfops_testcluster::{ClusterOptions, TestCluster, Verb};

const TF: &str = "infra.contrib.fluxcd.io/v1alpha2";

struct Cli {
    cluster: TestCluster,
    _dir: tempfile::TempDir,
    kubeconfig: PathBuf,
}

impl Cli {
    async fn start() -> Cli {
        let cluster = TestCluster::start(ClusterOptions::default())
            .await
            .unwrap_or_else(|e| panic!("{e}"));
        let dir = tempfile::tempdir().unwrap_or_else(|e| panic!("{e}"));
        let kubeconfig = dir.path().join("kubeconfig");
        cluster
            .write_kubeconfig(&kubeconfig, "cli", "default")
            .unwrap_or_else(|e| panic!("{e}"));
        Cli {
            cluster,
            _dir: dir,
            kubeconfig,
        }
    }

    fn seed(&self, crs: &[Value], ledger: &[tfops_status::ledger::LedgerItem]) {
        for cr in crs {
            let mut v = cr.clone();
            let deleting = v["metadata"]
                .as_object_mut()
                .and_then(|m| m.remove("deletionTimestamp"))
                .is_some();
            self.cluster
                .store()
                .create(v.clone())
                .unwrap_or_else(|e| panic!("{e:?}"));
            if deleting {
                let ns = v["metadata"]["namespace"].as_str().unwrap_or_default();
                let name = v["metadata"]["name"].as_str().unwrap_or_default();
                self.cluster
                    .store()
                    .delete(TF, "terraforms", ns, name)
                    .unwrap_or_else(|e| panic!("{e:?}"));
            }
        }
        for item in ledger {
            let secret = item
                .record
                .to_secret(&item.secret_namespace)
                .unwrap_or_else(|e| panic!("{e}"));
            let mut v = serde_json::to_value(&secret).unwrap_or_else(|e| panic!("{e}"));
            v["apiVersion"] = json!("v1");
            v["kind"] = json!("Secret");
            self.cluster
                .store()
                .create(v)
                .unwrap_or_else(|e| panic!("{e:?}"));
        }
    }

    fn seed_release(&self, ns: &str, release: &str) {
        let (crs, ledger) = fixtures::release(ns, release, self.cluster.store().clock().now());
        self.seed(&crs, &ledger);
    }

    /// Run `tfops ARGS` with HELM_NAMESPACE=`ns` (async: the server keeps serving meanwhile).
    async fn run(&self, ns: &str, args: &[&str], extra_env: &[(&str, &str)]) -> Output {
        let mut cmd = tokio::process::Command::new(env!("CARGO_BIN_EXE_tfops"));
        cmd.args(args)
            .env_clear()
            .env("KUBECONFIG", &self.kubeconfig)
            .env("HELM_NAMESPACE", ns);
        for (k, v) in extra_env {
            cmd.env(k, v);
        }
        cmd.output()
            .await
            .unwrap_or_else(|e| panic!("running tfops: {e}"))
    }
}

fn stdout(o: &Output) -> String {
    String::from_utf8_lossy(&o.stdout).into_owned()
}

fn stderr(o: &Output) -> String {
    String::from_utf8_lossy(&o.stderr).into_owned()
}

fn code(o: &Output) -> i32 {
    o.status.code().unwrap_or(-1)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn status_table_json_and_exit_codes() {
    let cli = Cli::start().await;
    cli.seed_release("apps", "shop");
    cli.seed_release("apps", "other");
    cli.seed_release("billing", "pay");

    cli.cluster.requests().clear();
    let o = cli.run("apps", &["status", "shop"], &[]).await;
    assert_eq!(code(&o), 2, "{}", stderr(&o));
    let out = stdout(&o);
    assert!(
        !out.contains('\u{1b}'),
        "no colour when stdout is not a terminal"
    );
    let lines: Vec<&str> = out.lines().collect();
    assert!(
        lines[0].starts_with("MODULE ")
            && lines[0].contains(" STATE ")
            && lines[0].ends_with("MESSAGE"),
        "{out}"
    );
    assert_eq!(lines.len(), 14, "{out}");
    for s in State::ALL {
        assert!(
            out.contains(&format!("shop-{}", s.as_str().to_ascii_lowercase())),
            "{s} missing:\n{out}"
        );
    }
    // Exactly one Terraform LIST and one ledger LIST for one namespace.
    let lists = cli
        .cluster
        .requests()
        .filter(|r| r.verb == Some(Verb::List));
    let resources: Vec<&str> = lists.iter().map(|r| r.resource.as_str()).collect();
    assert_eq!(
        resources.iter().filter(|r| **r == "terraforms").count(),
        1,
        "{resources:?}"
    );
    assert_eq!(
        resources.iter().filter(|r| **r == "secrets").count(),
        1,
        "{resources:?}"
    );
    assert!(cli
        .cluster
        .requests()
        .filter(|r| r.verb == Some(Verb::Get) && r.resource == "terraforms")
        .is_empty());

    let o = cli
        .run("apps", &["status", "shop", "-o", "json"], &[])
        .await;
    let v: Value =
        serde_json::from_slice(&o.stdout).unwrap_or_else(|e| panic!("{e}: {}", stdout(&o)));
    assert_eq!(
        (v["kind"].as_str(), v["summary"]["total"].as_u64()),
        (Some("StatusReport"), Some(13))
    );

    let o = cli
        .run("apps", &["status", "--all", "-o", "wide"], &[])
        .await;
    assert_eq!(code(&o), 2);
    assert!(
        stdout(&o)
            .lines()
            .next()
            .is_some_and(|h| h.starts_with("RELEASE ") && h.contains(" LEDGER ")),
        "{}",
        stdout(&o)
    );
    assert_eq!(stdout(&o).lines().count(), 27);

    let o = cli
        .run("default", &["status", "-A", "-o", "yaml"], &[])
        .await;
    assert_eq!(code(&o), 2, "{}", stderr(&o));
    let y: Value = serde_saphyr::from_str(&stdout(&o)).unwrap_or_else(|e| panic!("{e}"));
    assert_eq!(y["summary"]["total"], 39);

    // -n wins over HELM_NAMESPACE.
    let o = cli
        .run(
            "apps",
            &["status", "pay", "-n", "billing", "-o", "json"],
            &[],
        )
        .await;
    let v: Value = serde_json::from_slice(&o.stdout).unwrap_or_else(|e| panic!("{e}"));
    assert_eq!(v["summary"]["total"], 13);

    // Not found: 3. Healthy: 0. Progressing only: 4.
    let o = cli.run("apps", &["status", "nope"], &[]).await;
    assert_eq!(code(&o), 3);
    assert_eq!(
        stdout(&o),
        "No Terraform resources found for release \"nope\" in namespace apps.\n"
    );
    let mut ok = fixtures::terraform("web", "site", "cdn", "site-cdn");
    fixtures::into_state(&mut ok, State::Ready);
    cli.seed(&[ok], &[]);
    assert_eq!(code(&cli.run("web", &["status", "site"], &[]).await), 0);
    let mut planning = fixtures::terraform("web", "site", "dns", "site-dns");
    fixtures::into_state(&mut planning, State::Planning);
    cli.seed(&[planning], &[]);
    assert_eq!(code(&cli.run("web", &["status", "site"], &[]).await), 4);

    // A context that does not exist: an error, exit 1.
    let o = cli
        .run(
            "apps",
            &["status", "shop"],
            &[("HELM_KUBECONTEXT", "no-such-context")],
        )
        .await;
    assert_eq!(code(&o), 1);
    assert!(stderr(&o).starts_with("Error: "), "{}", stderr(&o));
    // The real context name works.
    let o = cli
        .run(
            "apps",
            &["status", "shop"],
            &[("HELM_KUBECONTEXT", "tfops-testcluster")],
        )
        .await;
    assert_eq!(code(&o), 2, "{}", stderr(&o));
    // Usage documents the exit codes.
    let o = cli.run("apps", &["status", "--help"], &[]).await;
    assert!(
        stdout(&o).contains("  3  no Terraform piece found"),
        "{}",
        stdout(&o)
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn orphans_list_show_forget() {
    let cli = Cli::start().await;
    let at = cli.cluster.store().clock().now();
    let a = fixtures::ledger_item(
        "apps",
        "shop",
        "db",
        "shop-db",
        "0a1b2c3d-1111",
        LedgerDecision::Orphaned,
        at,
    );
    let b = fixtures::ledger_item(
        "billing",
        "pay",
        "q",
        "pay-q",
        "9f8e7d6c-2222",
        LedgerDecision::ForceRemoved,
        at,
    );
    cli.seed(&[], &[a, b]);

    let o = cli.run("apps", &["orphans", "list"], &[]).await;
    assert_eq!(code(&o), 0, "{}", stderr(&o));
    let out = stdout(&o);
    assert!(out.starts_with("NAME "), "{out}");
    assert!(
        out.contains("tfops-ledger-shop-db-0a1b2c3d") && !out.contains("pay-q"),
        "{out}"
    );
    let o = cli
        .run("apps", &["orphans", "list", "-A", "-o", "json"], &[])
        .await;
    let rows: Value = serde_json::from_slice(&o.stdout).unwrap_or_else(|e| panic!("{e}"));
    assert_eq!(rows.as_array().map(Vec::len), Some(2));

    let o = cli.run("apps", &["orphans", "show", "shop-db"], &[]).await;
    assert_eq!(code(&o), 0);
    assert!(
        stdout(&o).contains("<redacted, 24 bytes; --show-secrets to print>")
            && !stdout(&o).contains("bucket-1.example")
    );
    let o = cli
        .run(
            "apps",
            &["orphans", "show", "shop-db", "--show-secrets"],
            &[],
        )
        .await;
    assert!(stdout(&o).contains("https://bucket-1.example"));
    let o = cli.run("apps", &["orphans", "show", "nope"], &[]).await;
    assert_eq!(code(&o), 3);

    let o = cli
        .run("apps", &["orphans", "forget", "shop-db"], &[])
        .await;
    assert_eq!(code(&o), 2);
    assert!(stderr(&o).starts_with(
        "Refusing to forget ledger entry apps/tfops-ledger-shop-db-0a1b2c3d without --yes."
    ));
    assert!(cli
        .cluster
        .store()
        .get("v1", "Secret", "apps", "tfops-ledger-shop-db-0a1b2c3d")
        .is_some());
    let o = cli
        .run("apps", &["orphans", "forget", "shop-db", "--yes"], &[])
        .await;
    assert_eq!(code(&o), 0, "{}", stderr(&o));
    assert!(cli
        .cluster
        .store()
        .get("v1", "Secret", "apps", "tfops-ledger-shop-db-0a1b2c3d")
        .is_none());
    assert_eq!(code(&cli.run("apps", &["orphans", "list"], &[]).await), 3);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn doctor_names_blockers_and_exits_non_zero() {
    let cli = Cli::start().await;
    let mut cr = fixtures::terraform("apps", "shop", "db", "shop-db");
    cr["spec"]["suspend"] = json!(true);
    cli.seed(&[cr], &[]);
    let o = cli.run("apps", &["doctor", "shop"], &[]).await;
    assert_eq!(code(&o), 2, "{}", stderr(&o));
    let out = stdout(&o);
    assert!(
        out.starts_with("Terraform apps/shop-db (module db): deletion BLOCKED"),
        "{out}"
    );
    assert!(out.contains("BLOCKING [source-missing]"), "{out}");
    assert!(out.contains("BLOCKING [runner-sa-missing]"), "{out}");
    assert!(out.contains(r#"    fix: kubectl patch terraform shop-db -n apps --type merge -p '{"spec":{"suspend":false}}'"#), "{out}");
    let o = cli
        .run("apps", &["doctor", "shop", "-o", "json"], &[])
        .await;
    let v: Value = serde_json::from_slice(&o.stdout).unwrap_or_else(|e| panic!("{e}"));
    assert_eq!(v[0]["findings"][0]["check"], "source-missing");
    assert_eq!(code(&cli.run("apps", &["doctor", "nope"], &[]).await), 3);
}
