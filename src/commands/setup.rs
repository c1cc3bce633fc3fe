//! `tfops setup` (work in progress).

/// Arguments of `tfops setup`.
#[derive(Debug, clap::Args)]
pub struct Args {}

/// Run `tfops setup`.
pub fn run(_args: Args) -> anyhow::Result<u8> {
    anyhow::bail!("tfops setup: not implemented yet")
}
