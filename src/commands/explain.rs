//! `tfops explain` (work in progress).

/// Arguments of `tfops explain`.
#[derive(Debug, clap::Args)]
pub struct Args {}

/// Run `tfops explain`.
pub fn run(_args: Args) -> anyhow::Result<u8> {
    anyhow::bail!("tfops explain: not implemented yet")
}
