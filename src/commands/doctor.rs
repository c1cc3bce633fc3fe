//! `tfops doctor RELEASE` (`helm tfops doctor`): for each Terraform CR of the release, what would
//! block (or is blocking) its deletion, with the command that fixes it. Thin glue over
//! `tfops_status::doctor`.

use std::io::Write;
use std::time::Duration;

use tfops_status::diagnose::render_text;
use tfops_status::doctor::doctor;

use crate::kubeenv::KubeEnv;

const AFTER: &str = "\
Checks: source missing / without artifact, runner ServiceAccount missing, varsFrom /
backendConfigsFrom objects missing, dependants still present, stale tf.dependency.of.*
finalizers, spec.suspend, state lock held, namespace terminating, controller not answering
reconcile.fluxcd.io/requestedAt (active check only with --probe-controller, which requests one
reconcile per CR and waits at most --probe-timeout).
Exit codes: 0 nothing blocks; 1 error; 2 something blocks deletion; 3 no Terraform CR found.";

/// Arguments of `tfops doctor`.
#[derive(Debug, clap::Args)]
#[command(after_help = AFTER)]
pub struct Args {
    /// Helm release.
    pub release: String,
    /// Namespace (default: HELM_NAMESPACE, then the kubeconfig context's).
    #[arg(short = 'n', long)]
    pub namespace: Option<String>,
    /// Actively check that tofu-controller answers a reconcile request.
    #[arg(long)]
    pub probe_controller: bool,
    /// Bound of the active check, in seconds.
    #[arg(long, default_value_t = 30)]
    pub probe_timeout: u64,
    /// text or json.
    #[arg(short = 'o', long, default_value = "text")]
    pub output: String,
}

/// Run `tfops doctor`.
pub async fn run(args: Args) -> anyhow::Result<u8> {
    let env = KubeEnv::from_env(args.namespace.as_deref()).await?;
    let probe = args.probe_controller.then(|| {
        (
            Duration::from_secs(args.probe_timeout),
            chrono::Utc::now().to_rfc3339_opts(chrono::SecondsFormat::Nanos, true),
        )
    });
    let diagnoses = doctor(&env.client, &env.namespace, &args.release, probe).await?;
    let code = tfops_status::doctor::exit_code(&diagnoses);
    let text = match args.output.as_str() {
        "text" if diagnoses.is_empty() => format!(
            "No Terraform resources found for release {:?} in namespace {}.\n",
            args.release, env.namespace
        ),
        "text" => render_text(&diagnoses),
        "json" => serde_json::to_string_pretty(&diagnoses)? + "\n",
        other => anyhow::bail!("-o {other:?}: expected text or json"),
    };
    let mut out = std::io::stdout().lock();
    out.write_all(text.as_bytes())?;
    Ok(code)
}
