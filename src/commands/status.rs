//! `tfops status` (work in progress).

/// Arguments of `tfops status`.
#[derive(Debug, clap::Args)]
pub struct Args {}

/// Run `tfops status`.
pub async fn run(_args: Args) -> anyhow::Result<u8> {
    anyhow::bail!("tfops status: not implemented yet")
}
