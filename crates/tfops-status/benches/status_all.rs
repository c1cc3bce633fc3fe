//! Benchmark: `status -A` over 1,000 `Terraform` CRs in 50 namespaces (plus 50 ledger entries)
//! seeded into the project's test API server, read over real HTTP. Prints the time of the whole
//! fetch → build → render (table) path, in-process and — when `TFOPS_BIN` points at a built
//! `tfops` — as the real binary end to end, and the number of LIST requests each made.
//! Run with `scripts/bench-status.sh` (release mode).

use std::time::{Duration, Instant};

use chrono::Utc;
use serde_json::{json, Value};
use tfops_guard::ledger::LedgerDecision;
use tfops_status::fetch::{Namespaces, Selection};
use tfops_status::fixtures;
use tfops_status::render::{Format, RenderOptions};
use tfops_status::state::State;
use tfops_status::status::status_once;
use tfops_testcluster::{ClusterOptions, TestCluster, Verb};

const NAMESPACES: usize = 50;
const PER_NAMESPACE: usize = 20;
const RUNS: usize = 15;

fn seed(cluster: &TestCluster) {
    let states: Vec<State> = State::ALL
        .into_iter()
        .filter(|s| !matches!(s, State::Orphaned | State::ForceRemoved))
        .collect();
    for n in 0..NAMESPACES {
        let ns = format!("team-{n:02}");
        for i in 0..PER_NAMESPACE {
            let release = format!("app-{}", i % 4);
            let name = format!("{release}-mod-{i:02}");
            let mut cr = fixtures::terraform(&ns, &release, &format!("mod-{i:02}"), &name);
            fixtures::into_state(&mut cr, states[(n + i) % states.len()]);
            let deleting = cr["metadata"]
                .as_object_mut()
                .and_then(|m| m.remove("deletionTimestamp"))
                .is_some();
            cluster
                .store()
                .create(cr)
                .unwrap_or_else(|e| panic!("{e:?}"));
            if deleting {
                cluster
                    .store()
                    .delete("infra.contrib.fluxcd.io/v1alpha2", "terraforms", &ns, &name)
                    .unwrap_or_else(|e| panic!("{e:?}"));
            }
        }
        let item = fixtures::ledger_item(
            &ns,
            "app-0",
            "gone",
            "app-0-gone",
            &format!("{n:08}-uid"),
            LedgerDecision::Orphaned,
            Utc::now(),
        );
        let secret = item.record.to_secret(&ns).unwrap_or_else(|e| panic!("{e}"));
        let mut v: Value = serde_json::to_value(&secret).unwrap_or_else(|e| panic!("{e}"));
        v["apiVersion"] = json!("v1");
        v["kind"] = json!("Secret");
        cluster
            .store()
            .create(v)
            .unwrap_or_else(|e| panic!("{e:?}"));
    }
}

fn summary(mut times: Vec<Duration>) -> String {
    times.sort();
    let ms = |d: Duration| d.as_secs_f64() * 1000.0;
    format!(
        "min {:.1} ms, median {:.1} ms, max {:.1} ms over {} runs",
        ms(times[0]),
        ms(times[times.len() / 2]),
        ms(times[times.len() - 1]),
        times.len()
    )
}

fn main() {
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .unwrap_or_else(|e| panic!("{e}"));
    rt.block_on(async {
        let cluster = TestCluster::start(ClusterOptions::default())
            .await
            .unwrap_or_else(|e| panic!("{e}"));
        seed(&cluster);
        let client = cluster.client("bench").unwrap_or_else(|e| panic!("{e}"));
        let sel = Selection { namespaces: Namespaces::All, release: None, ledger_namespace: None };
        let opts = RenderOptions { format: Format::Table, color: false, now: Utc::now() };

        // Warm-up (connection set-up), then measured runs.
        let (text, _, _) = status_once(&client, &sel, &opts).await.unwrap_or_else(|e| panic!("{e}"));
        let rows = text.lines().count() - 1;
        let mut times = Vec::with_capacity(RUNS);
        cluster.requests().clear();
        for _ in 0..RUNS {
            let t = Instant::now();
            let (text, _, _) = status_once(&client, &sel, &opts).await.unwrap_or_else(|e| panic!("{e}"));
            times.push(t.elapsed());
            assert_eq!(text.lines().count() - 1, rows);
        }
        // Where the time goes (one more run, split).
        let t = Instant::now();
        let snap = tfops_status::fetch::fetch(&client, &sel).await.unwrap_or_else(|e| panic!("{e}"));
        let t_fetch = t.elapsed();
        let t = Instant::now();
        let report = tfops_status::status::report_of(&snap, &sel, Utc::now());
        let t_build = t.elapsed();
        let t = Instant::now();
        let _ = tfops_status::render::render(&report, &opts);
        let t_render = t.elapsed();
        println!(
            "  split: fetch (2 LISTs over HTTP, decode) {:.1} ms, build {:.1} ms, render {:.1} ms",
            t_fetch.as_secs_f64() * 1e3,
            t_build.as_secs_f64() * 1e3,
            t_render.as_secs_f64() * 1e3
        );
        let lists = cluster.requests().filter(|r| r.user == "bench" && r.verb == Some(Verb::List));
        let tf_lists = lists.iter().filter(|r| r.resource == "terraforms").count();
        let ledger_lists = lists.iter().filter(|r| r.resource == "secrets").count();
        println!("status -A (in-process client): {rows} rows ({} CRs + {NAMESPACES} ledger entries in {NAMESPACES} namespaces)", NAMESPACES * PER_NAMESPACE);
        println!("  time: {}", summary(times));
        println!(
            "  LIST requests per run: {} Terraform (cluster-wide) + {} ledger Secrets; other requests: {}",
            tf_lists / (RUNS + 1),
            ledger_lists / (RUNS + 1),
            cluster.requests().count_user("bench") - lists.len()
        );

        let Ok(bin) = std::env::var("TFOPS_BIN") else {
            println!("(set TFOPS_BIN to a built tfops to measure the binary end to end)");
            return;
        };
        let dir = tempfile::tempdir().unwrap_or_else(|e| panic!("{e}"));
        let kubeconfig = dir.path().join("kubeconfig");
        cluster.write_kubeconfig(&kubeconfig, "bench-cli", "default").unwrap_or_else(|e| panic!("{e}"));
        let mut times = Vec::with_capacity(RUNS);
        cluster.requests().clear();
        for _ in 0..RUNS {
            let t = Instant::now();
            let out = tokio::process::Command::new(&bin)
                .args(["status", "-A"])
                .env_clear()
                .env("KUBECONFIG", &kubeconfig)
                .output()
                .await
                .unwrap_or_else(|e| panic!("running {bin}: {e}"));
            times.push(t.elapsed());
            assert_eq!(out.status.code(), Some(2), "{}", String::from_utf8_lossy(&out.stderr));
            assert_eq!(out.stdout.iter().filter(|b| **b == b'\n').count() - 1, rows);
        }
        let lists = cluster.requests().filter(|r| r.user == "bench-cli" && r.verb == Some(Verb::List));
        println!("status -A (tfops binary, process start to exit): {rows} rows");
        println!("  time: {}", summary(times));
        println!(
            "  LIST requests per run: {} Terraform (cluster-wide) + {} ledger Secrets; total requests per run: {}",
            lists.iter().filter(|r| r.resource == "terraforms").count() / RUNS,
            lists.iter().filter(|r| r.resource == "secrets").count() / RUNS,
            cluster.requests().count_user("bench-cli") / RUNS
        );
    });
}
