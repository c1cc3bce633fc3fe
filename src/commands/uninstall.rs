//! `tfops uninstall` (`helm tfops uninstall RELEASE`) — the client-side uninstall for Helm 3
//! and for releases installed without the guard hook: runs the guard engine (budget = Helm's
//! `--timeout` minus a margin), then `$HELM_BIN uninstall` — unless Helm says the release is
//! already gone (a plain `helm uninstall` that left its Terraform CRs stuck: the guard clears
//! them by label and that is all). `--dry-run` prints what the guard
//! would do and changes nothing. While the guard waits, each CR's state and the budget left
//! are shown on stderr ([`crate::progress`]). Thin glue over `tfops_guard::{engine, plan, probe}`.

use std::io::IsTerminal;
use std::process::Stdio;
use std::time::Duration;

use anyhow::Context;
use tfops_guard::clock::Clock;
use tfops_guard::engine::discover::discover;
use tfops_guard::engine::{run_guard, terraform_refs_from_manifest, GuardOptions, ManifestRef};
use tfops_guard::machine::Tunables;
use tfops_guard::policy::Policy;
use tfops_guard::{plan, probe};

use super::guard::classifier_from_env;
use crate::kubeenv::KubeEnv;
use tfops_api::duration::parse_arg;

const EXIT_CODES: &str = "\
Exit codes: the exit code of `helm uninstall` once the guard finished; otherwise
  1  error before anything was changed
  2  blocked on purpose by on-failure=block (helm uninstall NOT run; fix, then re-run)
  3  guard unfinished within its budget (helm uninstall NOT run; fix, then re-run)
With --dry-run: 0, nothing changed.

Environment: HELM_BIN (set by Helm for plugins; default `helm`), HELM_NAMESPACE,
HELM_KUBECONTEXT, KUBECONFIG, TFOPS_CLASSIFIER_RULES.";

/// Arguments of `tfops uninstall`.
#[derive(Debug, clap::Args)]
#[command(after_help = EXIT_CODES)]
pub struct Args {
    /// Release to uninstall.
    pub release: String,
    /// Release namespace (default: HELM_NAMESPACE, then the kubeconfig context's).
    #[arg(short = 'n', long)]
    pub namespace: Option<String>,
    /// Helm's --timeout for `helm uninstall` (the guard budget is derived from it).
    #[arg(long, default_value = "5m", value_parser = parse_arg)]
    pub timeout: Duration,
    /// Guard budget (default: timeout minus min(60s, timeout/5)).
    #[arg(long, value_parser = parse_arg)]
    pub budget: Option<Duration>,
    /// Namespace for ledger Secrets (default: the release namespace).
    #[arg(long)]
    pub ledger_namespace: Option<String>,
    /// Print what the guard would do, in order, and change nothing.
    #[arg(long)]
    pub dry_run: bool,
    #[command(flatten)]
    pub controller: super::guard::ControllerArgs,
    /// Output of --dry-run and of the guard summary: text or json.
    #[arg(short = 'o', long, default_value = "text", value_parser = ["text", "json"])]
    pub output: String,
    /// Extra arguments passed to `helm uninstall` (after `--`).
    #[arg(last = true)]
    pub helm_args: Vec<String>,
}

/// The guard budget for a Helm timeout: leave min(60s, timeout/5) for `helm uninstall`.
pub fn budget_for(timeout: Duration) -> Duration {
    timeout.saturating_sub(Duration::from_secs(60).min(timeout / 5))
}

fn helm_bin() -> String {
    std::env::var("HELM_BIN")
        .ok()
        .filter(|s| !s.is_empty())
        .unwrap_or_else(|| "helm".to_owned())
}

/// What Helm knows of the release.
struct Manifest {
    /// The Terraform CRs its manifest names.
    refs: Vec<ManifestRef>,
    /// Helm answered that the release does not exist (already uninstalled — typically by a
    /// plain `helm uninstall` that left its Terraform CRs stuck): there is nothing left for
    /// `helm uninstall` to do once the guard has finished.
    gone: bool,
}

/// Did `helm get manifest` fail because the release does not exist? (Helm 3 and 4 print
/// `Error: release: not found`.)
fn release_not_found(stderr: &str) -> bool {
    stderr.contains("release: not found")
}

/// The Terraform CRs named by the release manifest (`helm get manifest`), if Helm knows it.
/// Without a runnable Helm this is an error when `helm_required` (the real uninstall would
/// otherwise run the guard and then fail to uninstall), a warning for `--dry-run`.
async fn manifest_refs(
    release: &str,
    namespace: &str,
    helm_required: bool,
) -> anyhow::Result<Manifest> {
    let spawned = tokio::process::Command::new(helm_bin())
        .args(["get", "manifest", release, "-n", namespace])
        .stdin(Stdio::null())
        .output()
        .await;
    let out = match spawned {
        Ok(out) => out,
        Err(err) if !helm_required => {
            eprintln!(
                "warning: cannot run `{}` ({err}); using the tfops.dev/release label only",
                helm_bin()
            );
            return Ok(Manifest {
                refs: Vec::new(),
                gone: false,
            });
        }
        Err(err) => {
            return Err(err)
                .with_context(|| format!("running `{} get manifest {release}`", helm_bin()))
        }
    };
    if !out.status.success() {
        let err = String::from_utf8_lossy(&out.stderr);
        let gone = release_not_found(&err);
        if gone {
            eprintln!(
                "release {release} is not installed in {namespace} (already uninstalled?): the guard handles the Terraform CRs still labelled tfops.dev/release={release}; helm uninstall will not be needed"
            );
        } else {
            eprintln!(
                "warning: `{} get manifest {release} -n {namespace}` failed ({}); using the tfops.dev/release label only",
                helm_bin(),
                err.trim()
            );
        }
        return Ok(Manifest {
            refs: Vec::new(),
            gone,
        });
    }
    let text = String::from_utf8_lossy(&out.stdout);
    Ok(Manifest {
        refs: terraform_refs_from_manifest(&text)?,
        gone: false,
    })
}

/// Run `tfops uninstall`.
pub async fn run(args: Args) -> anyhow::Result<u8> {
    let classifier = classifier_from_env()?;
    let env = KubeEnv::from_env(args.namespace.as_deref()).await?;
    let ns = env.namespace.clone();
    let budget = args.budget.unwrap_or_else(|| budget_for(args.timeout));
    let manifest = manifest_refs(&args.release, &ns, !args.dry_run).await?;
    let extra = manifest.refs;

    if args.dry_run {
        let crs = discover(&env.client, &ns, &args.release, &extra).await?;
        let mut probed = Vec::with_capacity(crs.len());
        for cr in crs {
            let envr = probe::probe_environment(&env.client, &cr).await?;
            probed.push((cr, Some(envr)));
        }
        let p = plan::plan(
            &probed,
            &Policy::default(),
            budget,
            Tunables::default().force_reserve,
        );
        if args.output == "json" {
            println!("{}", serde_json::to_string_pretty(&p)?);
        } else {
            print!("{}", p.render(&args.release));
        }
        return Ok(0);
    }

    let mut opts = GuardOptions::new(&args.release, &ns, budget);
    opts.ledger_namespace = args.ledger_namespace.clone();
    opts.classifier = classifier;
    opts.extra = extra;
    args.controller.apply(&mut opts);
    let (live, observer) = if args.output == "json" {
        crate::progress::Live::none()
    } else if std::io::stderr().is_terminal() {
        crate::progress::Live::terminal(&args.release, budget)
    } else {
        crate::progress::Live::plain(budget)
    };
    opts.observer = observer;
    let report = run_guard(env.client.clone(), opts, Clock::start()).await;
    live.finish();
    let report = report?;
    if args.output == "json" {
        println!("{}", serde_json::to_string_pretty(&report)?);
    } else {
        print!("{}", report.render());
    }
    let code = report.exit_code();
    if code != 0 {
        eprintln!("helm uninstall was NOT run: the guard did not finish (exit {code})");
        return Ok(code);
    }
    if manifest.gone {
        eprintln!(
            "release {} was already uninstalled: helm uninstall not run",
            args.release
        );
        return Ok(0);
    }
    let timeout = tfops_api::duration::format_duration(args.timeout);
    let status = tokio::process::Command::new(helm_bin())
        .args(["uninstall", &args.release, "-n", &ns, "--timeout", &timeout])
        .args(&args.helm_args)
        .status()
        .await
        .with_context(|| format!("running `{} uninstall {}`", helm_bin(), args.release))?;
    Ok(status
        .code()
        .and_then(|c| u8::try_from(c).ok())
        .unwrap_or(1))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_missing_release_is_told_from_other_helm_failures() {
        assert!(release_not_found("Error: release: not found\n"));
        assert!(!release_not_found(
            "Error: Kubernetes cluster unreachable: Get \"https://x\": dial tcp: connection refused"
        ));
    }

    #[test]
    fn budget_leaves_room_for_helm() {
        assert_eq!(
            budget_for(Duration::from_secs(300)),
            Duration::from_secs(240)
        );
        assert_eq!(budget_for(Duration::from_secs(60)), Duration::from_secs(48));
        assert_eq!(
            budget_for(Duration::from_secs(3600)),
            Duration::from_secs(3540)
        );
    }
}
