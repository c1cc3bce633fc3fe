//! `tfops guard` — the Helm 4 pre-delete hook runtime: deletes the release's `Terraform` CRs
//! dependants first and drives each to a terminal outcome within the budget. Its log (`kubectl
//! logs job/<release>-tfops-guard`): one JSON line per decision on stderr, then the report on
//! stdout. Thin glue over `tfops_guard::engine`.

use std::time::Duration;
use tfops_api::duration::parse_arg;

use anyhow::Context;
use tfops_guard::classify::Classifier;
use tfops_guard::clock::Clock;
use tfops_guard::engine::{run_guard, GuardOptions};
use tfops_guard::policy::OnFailure;

use crate::kubeenv::KubeEnv;

const EXIT_CODES: &str = "\
Exit codes:
  0  every Terraform CR of the release is gone: destroyed, nothing to destroy, or orphaned /
     force-removed with a ledger entry (Secret tfops-ledger-*, `helm tfops orphans list`)
  1  error before anything was changed (no cluster, bad flags, bad TFOPS_CLASSIFIER_RULES)
  2  blocked on purpose: a CR with on-failure=block could not be destroyed; the message says
     what to do, then run the uninstall again
  3  unfinished: the budget ended with CRs still present that could not be released safely
     (e.g. the ledger could not be written); nothing was released without a ledger entry

Environment: TFOPS_CLASSIFIER_RULES (JSON array of {pattern, reason?, class}), KUBECONFIG /
HELM_KUBECONTEXT / in-cluster service account.";

/// Arguments of `tfops guard`.
#[derive(Debug, clap::Args)]
#[command(after_help = EXIT_CODES)]
pub struct Args {
    /// Helm release whose Terraform CRs to delete (label tfops.dev/release).
    #[arg(long)]
    pub release: String,
    /// Release namespace (default: HELM_NAMESPACE, then the kubeconfig context's).
    #[arg(short = 'n', long)]
    pub namespace: Option<String>,
    /// The whole run ends within this (Go duration); keep it below Helm's --timeout.
    #[arg(long, default_value = "240s", value_parser = parse_arg)]
    pub budget: Duration,
    /// Namespace for ledger Secrets (default: the release namespace).
    #[arg(long)]
    pub ledger_namespace: Option<String>,
    /// on-failure for CRs without the tfops.dev/on-failure annotation: orphan, force or block.
    #[arg(long)]
    pub default_on_failure: Option<OnFailure>,
    /// Retries for CRs without the tfops.dev/retries annotation.
    #[arg(long)]
    pub default_retries: Option<u32>,
    /// Per-CR timeout for CRs without the tfops.dev/timeout annotation.
    #[arg(long, value_parser = parse_arg)]
    pub default_timeout: Option<Duration>,
    #[command(flatten)]
    pub controller: ControllerArgs,
    /// Output: text or json.
    #[arg(short = 'o', long, default_value = "text", value_parser = ["text", "json"])]
    pub output: String,
}

/// How the guard finds evidence of tofu-controller (shared by `guard` and `uninstall`).
#[derive(Debug, Clone, clap::Args)]
pub struct ControllerArgs {
    /// Namespace of tofu-controller, where its leader-election Lease
    /// `1953de50.contrib.fluxcd.io` is (the guard's only evidence that the controller is
    /// gone; without it the guard never force-removes on silence). Empty: do not look.
    #[arg(
        long,
        env = "TFOPS_CONTROLLER_NAMESPACE",
        default_value = "flux-system"
    )]
    pub controller_namespace: String,
    /// How long a request may go unanswered (no echo, no status change, no runner pod)
    /// before the controller counts as silent. Keep it above tofu-controller's
    /// --runner-creation-timeout (120s) plus its 30s dial.
    #[arg(long, default_value = "180s", value_parser = parse_arg)]
    pub controller_patience: Duration,
}

impl ControllerArgs {
    /// Apply to guard options.
    pub fn apply(&self, opts: &mut GuardOptions) {
        opts.controller_lease = (!self.controller_namespace.is_empty()).then(|| {
            (
                self.controller_namespace.clone(),
                tfops_guard::liveness::CONTROLLER_LEASE_NAME.to_owned(),
            )
        });
        opts.tunables.controller_patience = self.controller_patience;
        opts.tunables.orphan_timeout = self.controller_patience;
    }
}

/// Classifier with the catalog's extra rules from `TFOPS_CLASSIFIER_RULES`.
pub fn classifier_from_env() -> anyhow::Result<Classifier> {
    match std::env::var("TFOPS_CLASSIFIER_RULES") {
        Ok(json) => Classifier::from_json(&json, "env TFOPS_CLASSIFIER_RULES")
            .context("reading the classifier rules"),
        Err(_) => Ok(Classifier::builtin()),
    }
}

/// Run `tfops guard`.
pub async fn run(args: Args) -> anyhow::Result<u8> {
    let classifier = classifier_from_env()?;
    let env = KubeEnv::from_env(args.namespace.as_deref()).await?;
    let mut opts = GuardOptions::new(&args.release, &env.namespace, args.budget);
    opts.ledger_namespace = args.ledger_namespace;
    opts.classifier = classifier;
    args.controller.apply(&mut opts);
    if let Some(v) = args.default_on_failure {
        opts.defaults.on_failure = v;
    }
    if let Some(v) = args.default_retries {
        opts.defaults.retries = v;
    }
    if let Some(v) = args.default_timeout {
        opts.defaults.timeout = v;
    }
    // The Job's log: one JSON line per decision on stderr; the report follows on stdout.
    opts.observer = Some(crate::progress::json_lines());
    let report = run_guard(env.client, opts, Clock::start()).await?;
    if args.output == "json" {
        println!("{}", serde_json::to_string_pretty(&report)?);
    } else {
        print!("{}", report.render());
    }
    Ok(report.exit_code())
}
