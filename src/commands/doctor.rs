//! `tfops doctor` (work in progress).

/// Arguments of `tfops doctor`.
#[derive(Debug, clap::Args)]
pub struct Args {}

/// Run `tfops doctor`.
pub async fn run(_args: Args) -> anyhow::Result<u8> {
    anyhow::bail!("tfops doctor: not implemented yet")
}
