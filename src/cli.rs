//! Command-line surface of `tfops` (also reached as `helm tfops …` and, by argv[0],
//! as the `tfops-render` post-renderer executable).

use std::ffi::OsString;
use std::path::Path;
use std::process::ExitCode;

use clap::{Parser, Subcommand};

use crate::commands;

/// Name under which the binary acts as a Helm 3 `--post-renderer` executable.
pub const RENDER_ARGV0: &str = "tfops-render";

#[derive(Debug, Parser)]
#[command(
    name = "tfops",
    version,
    about = "Terraform modules for Flux tofu-controller in Helm releases, and uninstalls that always finish"
)]
pub struct Cli {
    #[command(subcommand)]
    pub command: Command,
}

#[derive(Debug, Subcommand)]
pub enum Command {
    /// Post-renderer: read Helm's rendered manifests on stdin, write them expanded on stdout.
    Render(commands::render::Args),
    /// Register the Helm 4 post-renderer plugin / install the Helm 3 `tfops-render` executable.
    Setup(commands::setup::Args),
    /// Pre-delete hook runtime: delete the release's Terraform CRs in order, within a budget.
    Guard(commands::guard::Args),
    /// Client-side uninstall: run the guard engine, then `helm uninstall`.
    Uninstall(commands::uninstall::Args),
    /// Classify a tofu-controller failure and print what the guard would do.
    Explain(commands::explain::Args),
    /// Show every Terraform piece of a release.
    Status(commands::status::Args),
    /// Read and operate the orphan ledger.
    Orphans(commands::orphans::Args),
    /// Name what would block (or is blocking) deletion of each Terraform CR of a release.
    Doctor(commands::doctor::Args),
}

/// Parse `args` (argv including argv[0]) and run the command; the binary's whole `main`.
pub fn main_with_args(mut args: Vec<OsString>) -> ExitCode {
    let invoked_as = args
        .first()
        .and_then(|a| Path::new(a).file_name())
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_default();
    if invoked_as == RENDER_ARGV0 || invoked_as.starts_with(&format!("{RENDER_ARGV0}.")) {
        args.insert(1, OsString::from("render"));
    }
    // Usage errors exit 1 like every other error: exit codes ≥ 2 carry meaning for scripts
    // (`status`, `doctor`, `orphans`, `guard` document theirs), and clap's default 2 would
    // collide with "unhealthy".
    let cli = match Cli::try_parse_from(args) {
        Ok(cli) => cli,
        Err(err) => {
            let code = if err.use_stderr() { 1 } else { 0 };
            // Printing can only fail on a closed stdout/stderr; nothing more to report then.
            let _ = err.print();
            return ExitCode::from(code);
        }
    };
    match run(cli) {
        Ok(code) => ExitCode::from(code),
        Err(err) => {
            eprintln!("Error: {err:#}");
            ExitCode::from(1)
        }
    }
}

/// Run one parsed command; returns the process exit code.
pub fn run(cli: Cli) -> anyhow::Result<u8> {
    match cli.command {
        // The post-renderer is synchronous and must start fast: no async runtime.
        Command::Render(args) => commands::render::run(args),
        Command::Setup(args) => commands::setup::run(args),
        Command::Explain(args) => commands::explain::run(args),
        other => {
            let rt = tokio::runtime::Builder::new_multi_thread()
                .enable_all()
                .build()?;
            rt.block_on(async move {
                match other {
                    Command::Guard(args) => commands::guard::run(args).await,
                    Command::Uninstall(args) => commands::uninstall::run(args).await,
                    Command::Status(args) => commands::status::run(args).await,
                    Command::Orphans(args) => commands::orphans::run(args).await,
                    Command::Doctor(args) => commands::doctor::run(args).await,
                    Command::Render(_) | Command::Setup(_) | Command::Explain(_) => {
                        unreachable!("handled synchronously above")
                    }
                }
            })
        }
    }
}
