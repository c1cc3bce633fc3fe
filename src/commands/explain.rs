//! `tfops explain` (`helm tfops explain`): classify a tofu-controller failure and print what the
//! guard would do next and later; with `--check FILE`, measure the classifier (and catalog
//! rules) against labelled messages. Thin edge over `tfops_guard::explain` and
//! `tfops_guard::classify::check`.

use std::io::Write;
use std::time::Duration;

use anyhow::Context;
use tfops_api::duration::parse_arg;
use tfops_guard::classify::check::{check, Labelled};
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
    #[arg(long, required_unless_present = "check")]
    pub message: Option<String>,
    /// Measure the classifier against labelled messages instead: a YAML or JSON list of
    /// `{message, class, reason?, source?}` (other keys ignored; `--reason` is used for rows
    /// without one). Prints agreement, the unknown rate, permanent errors classed transient and
    /// every disagreement; exits 2 when a permanent error is classed transient.
    #[arg(
        long,
        value_name = "FILE",
        conflicts_with_all = ["message", "policy", "on_failure", "retries", "timeout", "budget"]
    )]
    pub check: Option<std::path::PathBuf>,
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
    if let Some(path) = &args.check {
        return run_check(&classifier, path, &args.reason, args.output);
    }
    let message = args.message.unwrap_or_default();
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
            message,
            policy,
            attempts: args.attempts,
            elapsed: args.elapsed,
            budget: args.budget,
        },
        &classifier,
    )?;
    let out = match args.output {
        Format::Text => explanation.to_text(),
        Format::Json => json_line(&explanation)?,
    };
    write_stdout(&out)?;
    Ok(0)
}

/// Pretty JSON ending in a newline.
fn json_line(value: &impl serde::Serialize) -> anyhow::Result<String> {
    let mut s = serde_json::to_string_pretty(value)?;
    s.push('\n');
    Ok(s)
}

fn write_stdout(out: &str) -> anyhow::Result<()> {
    std::io::stdout()
        .write_all(out.as_bytes())
        .context("writing to stdout")
}

/// `--check FILE`: figures and disagreements of the classifier on labelled messages.
fn run_check(
    classifier: &Classifier,
    path: &std::path::Path,
    default_reason: &str,
    output: Format,
) -> anyhow::Result<u8> {
    let text =
        std::fs::read_to_string(path).with_context(|| format!("reading {}", path.display()))?;
    let mut rows: Vec<Labelled> = serde_saphyr::from_str(&text).with_context(|| {
        format!(
            "{}: expected a list of {{message, class, reason?, source?}}",
            path.display()
        )
    })?;
    for row in rows.iter_mut().filter(|r| r.reason.is_empty()) {
        row.reason = default_reason.to_string();
    }
    let report = check(classifier, &rows);
    let out = match output {
        Format::Text => {
            let mut s = format!("{}: {}\n", path.display(), report.summary());
            for d in &report.disagreements {
                let excerpt = rows
                    .get(d.index)
                    .map(|r| one_line(&r.message, 100))
                    .unwrap_or_default();
                let source = d
                    .source
                    .as_deref()
                    .map(|src| format!(" — {src}"))
                    .unwrap_or_default();
                s.push_str(&format!(
                    "  #{} labelled {}, classed {} by {}{source}\n      {excerpt}\n",
                    d.index + 1,
                    d.expected,
                    d.got,
                    d.rule,
                ));
            }
            s
        }
        Format::Json => json_line(&report)?,
    };
    write_stdout(&out)?;
    Ok(if report.permanent_as_transient > 0 {
        2
    } else {
        0
    })
}

/// The first `max` characters of `text` on one line (whitespace runs folded).
fn one_line(text: &str, max: usize) -> String {
    let folded = text.split_whitespace().collect::<Vec<_>>().join(" ");
    match folded.char_indices().nth(max) {
        Some((at, _)) => format!("{}…", &folded[..at]),
        None => folded,
    }
}
