//! `tfops orphans` (work in progress).

/// Arguments of `tfops orphans`.
#[derive(Debug, clap::Args)]
pub struct Args {}

/// Run `tfops orphans`.
pub async fn run(_args: Args) -> anyhow::Result<u8> {
    anyhow::bail!("tfops orphans: not implemented yet")
}
