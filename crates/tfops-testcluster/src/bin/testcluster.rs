//! Standalone test cluster: seeds a scenario (see `tfops_testcluster::scenario` for the
//! format), writes a kubeconfig, runs the tofu-controller simulation, and serves until Ctrl-C.
//!
//! `cargo run -p tfops-testcluster -- --scenario crates/tfops-testcluster/scenarios/clean-uninstall.yaml`

use anyhow::Context as _;
use clap::Parser;
use std::path::PathBuf;
use std::time::Duration;
use tfops_testcluster::scenario::{BehaviorSpec, Scenario};
use tfops_testcluster::{ClusterOptions, TestCluster};

#[derive(Debug, Parser)]
#[command(
    name = "testcluster",
    about = "In-process Kubernetes test API server + tofu-controller simulation"
)]
struct Args {
    /// Scenario YAML (objects, controller behaviours, faults).
    #[arg(long)]
    scenario: Option<PathBuf>,
    /// Port on 127.0.0.1 (default: ephemeral).
    #[arg(long, default_value_t = 0)]
    port: u16,
    /// Where to write the kubeconfig (default: `$TMPDIR/tfops-testcluster-PORT.kubeconfig`).
    #[arg(long)]
    kubeconfig_out: Option<PathBuf>,
    /// Kubeconfig user (bearer token); overrides the scenario's `user`.
    #[arg(long)]
    user: Option<String>,
    /// Do not start the tofu-controller simulation.
    #[arg(long)]
    no_controller: bool,
    /// Do not create missing namespaces on first use (answer 404 like a real cluster).
    #[arg(long)]
    no_auto_namespaces: bool,
    /// Print every API request (user, verb, resource, namespace/name, status) to stderr.
    #[arg(long)]
    log_requests: bool,
    /// Seed the CRDs in this directory (e.g. ../shared/crds) so Terraform / Flux source writes
    /// are defaulted, pruned and validated against the real schemas.
    #[arg(long)]
    crds: Option<PathBuf>,
    /// Run the source-controller stand-in (sources get an artifact); overrides the scenario's
    /// `sourceController`.
    #[arg(long)]
    source_controller: bool,
    /// Write each finished Job run (stdout, then stderr) to DIR/<namespace>.<job>.log — what
    /// `kubectl logs job/<job>` shows on a real cluster.
    #[arg(long, value_name = "DIR")]
    job_logs: Option<PathBuf>,
    /// A YAML list of per-CR behaviours (`- {name, namespace?, behavior}`, the scenario's
    /// `behaviors:` form), re-read whenever the file changes: how a demo or a person tells the
    /// simulated cloud that something changed ("the bucket was emptied").
    #[arg(long, value_name = "FILE")]
    behaviors_file: Option<PathBuf>,
    /// Binary to run for Jobs whose container command is `tfops …` (Helm hooks); default:
    /// env TFOPS_TESTCLUSTER_JOB_BIN, else Jobs are left pending.
    #[arg(long, env = "TFOPS_TESTCLUSTER_JOB_BIN")]
    job_bin: Option<PathBuf>,
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let args = Args::parse();
    let mut scenario = match &args.scenario {
        Some(p) => Scenario::load(p)?,
        None => Scenario::parse("<empty>", "{}")?,
    };
    if args.no_controller {
        scenario.controller.enabled = false;
    }
    if args.source_controller {
        scenario.source_controller = true;
    }
    let user = args.user.clone().unwrap_or_else(|| scenario.user.clone());
    let cluster = TestCluster::start(ClusterOptions {
        port: args.port,
        auto_create_namespaces: !args.no_auto_namespaces,
        job_bin: args.job_bin.clone(),
        crds_dir: args.crds.clone(),
        ..Default::default()
    })
    .await
    .context("starting the test cluster")?;
    let run = scenario.apply(&cluster)?;
    let path = args.kubeconfig_out.clone().unwrap_or_else(|| {
        std::env::temp_dir().join(format!(
            "tfops-testcluster-{}.kubeconfig",
            cluster.addr().port()
        ))
    });
    cluster
        .write_kubeconfig(&path, &user, &scenario.namespace)
        .with_context(|| format!("writing {}", path.display()))?;
    println!("tfops-testcluster listening on {}", cluster.url());
    println!("kubeconfig: {}", path.display());
    println!("export KUBECONFIG={}", path.display());
    println!(
        "seeded {} object(s), {} fault rule(s); controller simulation: {}",
        scenario.objects.len(),
        scenario.faults.len(),
        if scenario.controller.enabled {
            "running"
        } else {
            "off"
        }
    );
    println!(
        "source-controller stand-in: {}",
        if scenario.source_controller {
            "running"
        } else {
            "off"
        }
    );
    println!("Ctrl-C to stop.");
    let mut seen = 0usize;
    let mut jobs_written = 0usize;
    let mut behaviors_seen: Option<std::time::SystemTime> = None;
    let mut tick = tokio::time::interval(Duration::from_millis(300));
    let mut term = tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate())
        .context("installing the SIGTERM handler")?;
    loop {
        tokio::select! {
            _ = tokio::signal::ctrl_c() => break,
            _ = term.recv() => break,
            _ = tick.tick() => {
                if let Some(dir) = &args.job_logs {
                    jobs_written = write_job_logs(&cluster, dir, jobs_written);
                }
                if let (Some(file), Some(sim)) = (&args.behaviors_file, &run.sim) {
                    behaviors_seen = apply_behaviors_file(file, behaviors_seen, sim, &scenario.namespace);
                }
                if !args.log_requests {
                    continue;
                }
                let all = cluster.requests().all();
                for r in all.iter().skip(seen) {
                    eprintln!(
                        "{:>3} {:<16} {:<7} {}{}{} {}",
                        r.status,
                        r.user,
                        r.verb.map(|v| v.as_str()).unwrap_or(r.method.as_str()),
                        r.resource,
                        if r.subresource.is_empty() { String::new() } else { format!("/{}", r.subresource) },
                        if r.namespace.is_empty() && r.name.is_empty() { String::new() } else { format!(" {}/{}", r.namespace, r.name) },
                        if r.resource.is_empty() { r.path.as_str() } else { "" },
                    );
                }
                seen = all.len();
            }
        }
    }
    drop(run);
    let _ = std::fs::remove_file(&path);
    Ok(())
}

/// Write the Job runs finished since the first `done` to `dir`; returns how many are written.
fn write_job_logs(cluster: &TestCluster, dir: &std::path::Path, done: usize) -> usize {
    let runs = cluster.job_runs();
    for r in runs.iter().skip(done) {
        let path = dir.join(format!("{}.{}.log", r.namespace, r.name));
        let text = format!("{}{}", r.stdout, r.stderr);
        if let Err(e) = std::fs::write(&path, text) {
            eprintln!("testcluster: writing {}: {e}", path.display());
        }
    }
    runs.len()
}

/// Apply `file`'s behaviours when its modification time differs from `seen`; returns the time
/// now applied (or `seen` when unchanged, missing or invalid — an invalid file is reported once
/// per change and ignored).
fn apply_behaviors_file(
    file: &std::path::Path,
    seen: Option<std::time::SystemTime>,
    sim: &tfops_testcluster::tofu::TofuSim,
    default_ns: &str,
) -> Option<std::time::SystemTime> {
    let Ok(modified) = std::fs::metadata(file).and_then(|m| m.modified()) else {
        return seen;
    };
    if seen == Some(modified) {
        return seen;
    }
    let parsed = std::fs::read_to_string(file)
        .map_err(|e| e.to_string())
        .and_then(|text| {
            serde_saphyr::from_str::<Vec<BehaviorSpec>>(&text).map_err(|e| e.to_string())
        });
    match parsed {
        Ok(list) => {
            for b in list {
                let ns = b.namespace.as_deref().unwrap_or(default_ns);
                sim.set_behavior(ns, &b.name, b.behavior);
                eprintln!(
                    "testcluster: behaviour of {ns}/{} changed ({})",
                    b.name,
                    file.display()
                );
            }
        }
        Err(e) => eprintln!("testcluster: {}: {e} (ignored)", file.display()),
    }
    Some(modified)
}
