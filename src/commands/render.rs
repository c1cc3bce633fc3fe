//! `tfops render` (also run as `tfops-render`): Helm post-renderer edge. Reads Helm's rendered
//! manifests from stdin (bounded), runs the `tfops_render` core, and writes the result to
//! stdout only when the whole render succeeded; warnings and errors go to stderr.
//!
//! Helm captures a post-renderer's stderr: Helm 4 drops it always (the user reads only
//! `plugin "tfops-render" exited with error`), Helm 3 shows it only when we fail. So what the
//! user must read is also copied to helm's own stderr — see [`helm_stderr`].

use std::io::{Read, Write};
use std::path::PathBuf;

use anyhow::Context;
use tfops_render::{CatalogConfig, Limits, RenderOptions};

mod helm_parent;
mod helm_stderr;

/// Prefix of every line this command writes to stderr, so users can tell who is speaking.
const WHO: &str = "tfops-render";

/// Arguments of `tfops render` (pass them with `--post-renderer-args`).
#[derive(Debug, clap::Args)]
pub struct Args {
    /// Release name (else the `app.kubernetes.io/instance` label the chart's objects share).
    #[arg(long)]
    pub release: Option<String>,
    /// Catalog configuration file.
    #[arg(long, env = "TFOPS_CONFIG")]
    pub config: Option<PathBuf>,
    /// Release namespace. Helm does not pass `-n` to post-renderers: default taken from the
    /// helm command line that runs us (`-n`, else its kubeconfig context), see `helm_parent`.
    #[arg(long, env = "HELM_NAMESPACE")]
    pub namespace: Option<String>,
    /// Anything else: reported as an error by us (not by the argument parser), so that Helm
    /// users see it too.
    #[arg(hide = true, num_args = 0.., trailing_var_arg = true, allow_hyphen_values = true)]
    pub unexpected: Vec<String>,
}

/// Run `tfops render`: exit 0 with the output on stdout, or 1 with the reason on stderr and
/// nothing on stdout.
pub fn run(args: Args) -> anyhow::Result<u8> {
    let mut report = helm_stderr::Report::new();
    let code = render(args, &mut report)?;
    report.finish(code == 0);
    Ok(code)
}

fn render(args: Args, report: &mut helm_stderr::Report) -> anyhow::Result<u8> {
    if !args.unexpected.is_empty() {
        report.line(&format!(
            "{WHO}: unexpected argument(s) {:?}; it takes --release NAME, --config FILE, --namespace NS (through --post-renderer-args)",
            args.unexpected
        ));
        return Ok(1);
    }
    let limits = Limits::default();
    let config = match &args.config {
        Some(path) => {
            let bytes = match std::fs::read(path) {
                Ok(bytes) => bytes,
                Err(e) => {
                    report.line(&format!(
                        "{WHO}: cannot read the catalog configuration {}: {e}",
                        path.display()
                    ));
                    return Ok(1);
                }
            };
            match CatalogConfig::from_yaml(&bytes, &path.display().to_string()) {
                Ok(config) => config,
                Err(e) => {
                    report.line(&format!("{WHO}: invalid catalog configuration: {e}"));
                    return Ok(1);
                }
            }
        }
        None => CatalogConfig::default(),
    };
    let input = match read_bounded(std::io::stdin().lock(), limits.max_input_bytes) {
        Ok(input) => input,
        Err(e) => {
            report.line(&format!("{WHO}: cannot read the manifests from stdin: {e}"));
            return Ok(1);
        }
    };
    let opts = RenderOptions {
        release: args.release.filter(|r| !r.is_empty()),
        namespace: args
            .namespace
            .filter(|n| !n.is_empty())
            .or_else(|| helm_parent::HelmParent::detect().map(|p| p.namespace())),
        config,
        limits,
    };
    let rendered = match tfops_render::render(&input, &opts) {
        Ok(rendered) => rendered,
        Err(e) => {
            report.line(&format!("{WHO}: {e}"));
            return Ok(1);
        }
    };
    for warning in &rendered.warnings {
        report.line(&format!("{WHO}: warning: {warning}"));
    }
    let mut stdout = std::io::stdout().lock();
    stdout
        .write_all(&rendered.output)
        .and_then(|()| stdout.flush())
        .context("cannot write the rendered manifests to stdout")?;
    Ok(0)
}

/// Read all of `reader`, but at most `max + 1` bytes: enough for the core to tell an
/// oversize input (and name the limit) without letting a huge stream fill memory.
fn read_bounded(reader: impl Read, max: usize) -> std::io::Result<Vec<u8>> {
    let cap = u64::try_from(max).unwrap_or(u64::MAX).saturating_add(1);
    let mut input = Vec::new();
    reader.take(cap).read_to_end(&mut input)?;
    Ok(input)
}

#[cfg(test)]
mod tests {
    use super::helm_stderr::{fdinfo_appends, hidden, Caller};
    use super::*;

    #[test]
    fn read_bounded_stops_one_past_the_limit() {
        let data = vec![b'a'; 100];
        assert_eq!(read_bounded(&data[..], 10).unwrap().len(), 11);
        assert_eq!(read_bounded(&data[..], 100).unwrap().len(), 100);
        assert_eq!(read_bounded(&data[..], 1000).unwrap(), data);
    }

    #[test]
    fn what_helm_hides() {
        assert!(hidden(Caller::Helm4Plugin, true));
        assert!(hidden(Caller::Helm4Plugin, false));
        assert!(hidden(Caller::Helm3Exec, true));
        assert!(!hidden(Caller::Helm3Exec, false));
        assert!(!hidden(Caller::Other, true));
        assert!(!hidden(Caller::Other, false));
    }

    #[test]
    fn fdinfo_flags() {
        assert!(fdinfo_appends("pos:\t0\nflags:\t0102001\nmnt_id:\t30\n"));
        assert!(!fdinfo_appends("pos:\t0\nflags:\t0100001\nmnt_id:\t30\n"));
        assert!(!fdinfo_appends("pos:\t0\n"));
    }
}
