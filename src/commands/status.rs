//! `tfops status` (`helm tfops status`): every Terraform piece of a release, its state and what
//! to do about it. Thin glue over `tfops_status::status`.

use std::io::{IsTerminal, Write};

use anyhow::Context;
use tfops_status::fetch::{Namespaces, Selection};
use tfops_status::render::{Format, RenderOptions};
use tfops_status::status::{status_once, status_watch};

use crate::kubeenv::KubeEnv;

const EXIT_CODES: &str = "\
Exit codes:
  0  every Terraform piece is Ready (ledger entries already cleaned up count as Ready)
  1  error (cluster unreachable, Terraform CRD missing)
  2  something is unhealthy or needs a person: PlanPending, Drifted, Failed, DestroyFailed,
     Blocked, Orphaned, ForceRemoved, Stalled, Suspended
  3  no Terraform piece found for the release / namespace
  4  nothing unhealthy, but something is still progressing: Reconciling, Planning, Destroying

States (first matching rule wins): Orphaned / ForceRemoved (ledger entry), Blocked (deleting
and suspended, dependants left, source / varsFrom missing, state lock held, guard policy block),
DestroyFailed, Destroying, Suspended, Stalled, Drifted, Blocked (lock held / dependency not
ready), Failed, PlanPending (with the approve command), Planning, Ready, Reconciling.

Usage errors (unknown flags, missing values) exit 1, like any other error.
Honours KUBECONFIG, HELM_KUBECONTEXT and HELM_NAMESPACE. Colours only on a terminal and never
when NO_COLOR is set.";

/// Arguments of `tfops status`.
#[derive(Debug, clap::Args)]
#[command(after_help = EXIT_CODES)]
pub struct Args {
    /// Helm release whose Terraform pieces to show.
    #[arg(required_unless_present_any = ["all", "all_namespaces"])]
    pub release: Option<String>,
    /// Every release in the namespace.
    #[arg(long, conflicts_with = "release")]
    pub all: bool,
    /// Every release in every namespace (one cluster-wide LIST).
    #[arg(short = 'A', long = "all-namespaces")]
    pub all_namespaces: bool,
    /// Namespace (default: HELM_NAMESPACE, then the kubeconfig context's).
    #[arg(short = 'n', long)]
    pub namespace: Option<String>,
    /// Output format: table, wide, json or yaml (json/yaml: `kind: StatusReport`).
    #[arg(short = 'o', long, default_value = "table")]
    pub output: Format,
    /// Keep watching and re-render on every change (Ctrl-C to stop).
    #[arg(short = 'w', long)]
    pub watch: bool,
    /// Also read ledger entries from this namespace (when the catalog configures one).
    #[arg(long)]
    pub ledger_namespace: Option<String>,
}

/// Run `tfops status`.
pub async fn run(args: Args) -> anyhow::Result<u8> {
    let env = KubeEnv::from_env(args.namespace.as_deref()).await?;
    let sel = Selection {
        namespaces: if args.all_namespaces {
            Namespaces::All
        } else {
            Namespaces::One(env.namespace.clone())
        },
        // `--all` conflicts with RELEASE; `-A RELEASE` is that release in every namespace.
        release: args.release.clone(),
        ledger_namespace: args.ledger_namespace.clone(),
    };
    let stdout = std::io::stdout();
    let tty = stdout.is_terminal();
    let color = tfops_status::render::use_colour(tty, std::env::var_os("NO_COLOR").as_deref());
    let opts = RenderOptions {
        format: args.output,
        color,
        now: chrono::Utc::now(),
    };
    if args.watch {
        let mut out = stdout.lock();
        let clear = tty && matches!(args.output, Format::Table | Format::Wide);
        let code = status_watch(
            &env.client,
            &sel,
            &opts,
            &chrono::Utc::now,
            clear,
            &mut out,
            |_| false,
        )
        .await
        .context("watching status")?;
        return Ok(code);
    }
    let (text, code, warnings) = status_once(&env.client, &sel, &opts).await?;
    for w in warnings {
        eprintln!("{w}");
    }
    let mut out = stdout.lock();
    out.write_all(text.as_bytes())?;
    out.flush()?;
    Ok(code)
}
