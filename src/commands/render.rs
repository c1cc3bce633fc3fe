//! `tfops render` (also run as `tfops-render`): Helm post-renderer edge. Reads Helm's rendered
//! manifests from stdin (bounded), runs the `tfops_render` core, and writes the result to
//! stdout only when the whole render succeeded; warnings and errors go to stderr.
//!
//! Helm 3 shows a failing post-renderer's stderr; Helm 4 drops it, so the Helm 4 plugin
//! wrapper (`plugins/tfops-render/tfops-render.sh`) forwards our stderr to helm's own stderr.

use std::io::{Read, Write};
use std::path::PathBuf;

use anyhow::Context;
use tfops_render::{CatalogConfig, Limits, RenderOptions};

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
    /// Release namespace (Helm passes HELM_NAMESPACE to post-renderers).
    #[arg(long, env = "HELM_NAMESPACE")]
    pub namespace: Option<String>,
}

/// Run `tfops render`: exit 0 with the output on stdout, or 1 with the reason on stderr and
/// nothing on stdout.
pub fn run(args: Args) -> anyhow::Result<u8> {
    let limits = Limits::default();
    let config = match &args.config {
        Some(path) => {
            let bytes = match std::fs::read(path) {
                Ok(bytes) => bytes,
                Err(e) => {
                    eprintln!(
                        "{WHO}: cannot read the catalog configuration {}: {e}",
                        path.display()
                    );
                    return Ok(1);
                }
            };
            match CatalogConfig::from_yaml(&bytes, &path.display().to_string()) {
                Ok(config) => config,
                Err(e) => {
                    eprintln!("{WHO}: invalid catalog configuration: {e}");
                    return Ok(1);
                }
            }
        }
        None => CatalogConfig::default(),
    };
    let input = match read_bounded(std::io::stdin().lock(), limits.max_input_bytes) {
        Ok(input) => input,
        Err(e) => {
            eprintln!("{WHO}: cannot read the manifests from stdin: {e}");
            return Ok(1);
        }
    };
    let mut opts = RenderOptions::default();
    opts.release = args.release.filter(|r| !r.is_empty());
    opts.namespace = args.namespace.filter(|n| !n.is_empty());
    opts.config = config;
    opts.limits = limits;
    let rendered = match tfops_render::render(&input, &opts) {
        Ok(rendered) => rendered,
        Err(e) => {
            eprintln!("{WHO}: {e}");
            return Ok(1);
        }
    };
    for warning in &rendered.warnings {
        eprintln!("{WHO}: warning: {warning}");
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
    use super::*;

    #[test]
    fn read_bounded_stops_one_past_the_limit() {
        let data = vec![b'a'; 100];
        assert_eq!(read_bounded(&data[..], 10).unwrap().len(), 11);
        assert_eq!(read_bounded(&data[..], 100).unwrap().len(), 100);
        assert_eq!(read_bounded(&data[..], 1000).unwrap(), data);
    }
}
