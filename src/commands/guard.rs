//! `tfops guard` (work in progress).

/// Arguments of `tfops guard`.
#[derive(Debug, clap::Args)]
pub struct Args {}

/// Run `tfops guard`.
pub async fn run(_args: Args) -> anyhow::Result<u8> {
    anyhow::bail!("tfops guard: not implemented yet")
}
