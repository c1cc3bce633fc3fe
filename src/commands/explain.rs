//! `tfops explain` (`helm tfops explain`): classify a tofu-controller failure and print what the
//! guard would do next and later. Thin edge over `tfops_guard::explain`.

use std::io::Write;
use std::time::Duration;

use anyhow::Context;
use tfops_api::duration::parse_arg;
use tfops_guard::classify::{Classifier, ENV_CLASSIFIER_RULES};
use tfops_guard::explain::{explain, Request};
use tfops_guard::policy::{OnFailure, Policy, UninstallPolicy};

/// Output format.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum Format {
    Text,
    Json,
}

/// Arguments of `tfops explain`.
#[derive(Debug, clap::Args)]
pub struct Args {
    /// Ready condition reason of the Terraform CR (e.g. TFExecApplyFailed, ArtifactFailed).
    #[arg(long, default_value = "")]
    pub reason: String,
    /// Ready condition message (the error text).
    #[arg(long)]
    pub message: String,
    /// Uninstall policy: destroy or retain (default destroy).
    #[arg(long, value_parser = str::parse::<UninstallPolicy>)]
    pub policy: Option<UninstallPolicy>,
    /// What to do when the destroy cannot complete: orphan, force or block (default orphan).
    #[arg(long = "on-failure", value_parser = str::parse::<OnFailure>)]
    pub on_failure: Option<OnFailure>,
    /// Retries after the first failed destroy (default 3).
    #[arg(long)]
    pub retries: Option<u32>,
    /// Failed destroy attempts so far, including this one.
    #[arg(long, default_value_t = 1)]
    pub attempts: u32,
    /// Time since the guard started deleting the CR (Go duration, e.g. 5m).
    #[arg(long, default_value = "0s", value_parser = parse_arg)]
    pub elapsed: Duration,
    /// The CR's timeout (tfops.dev/timeout; default 10m).
    #[arg(long, value_parser = parse_arg)]
    pub timeout: Option<Duration>,
    /// The guard budget, if it should be taken into account (e.g. 240s).
    #[arg(long, value_parser = parse_arg)]
    pub budget: Option<Duration>,
    /// Extra classifier rules (JSON array of {pattern, reason?, class}); checked first.
    #[arg(long = "classifier-rules", env = ENV_CLASSIFIER_RULES)]
    pub classifier_rules: Option<String>,
    /// Output format.
    #[arg(short = 'o', long = "output", value_enum, default_value_t = Format::Text)]
    pub output: Format,
}

/// Run `tfops explain`.
pub fn run(args: Args) -> anyhow::Result<u8> {
    let classifier = match args.classifier_rules.as_deref() {
        Some(json) => Classifier::from_json(json, "--classifier-rules / TFOPS_CLASSIFIER_RULES")?,
        None => Classifier::builtin(),
    };
    let defaults = Policy::default();
    let policy = Policy {
        uninstall: args.policy.unwrap_or(defaults.uninstall),
        on_failure: args.on_failure.unwrap_or(defaults.on_failure),
        retries: args.retries.unwrap_or(defaults.retries),
        timeout: args.timeout.unwrap_or(defaults.timeout),
        force_unlock: defaults.force_unlock,
    };
    let explanation = explain(
        &Request {
            reason: args.reason,
            message: args.message,
            policy,
            attempts: args.attempts,
            elapsed: args.elapsed,
            budget: args.budget,
        },
        &classifier,
    )?;
    let out = match args.output {
        Format::Text => explanation.to_text(),
        Format::Json => {
            let mut s = serde_json::to_string_pretty(&explanation)?;
            s.push('\n');
            s
        }
    };
    std::io::stdout()
        .write_all(out.as_bytes())
        .context("writing to stdout")?;
    Ok(0)
}
