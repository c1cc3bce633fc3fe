//! `tfops uninstall` (work in progress).

/// Arguments of `tfops uninstall`.
#[derive(Debug, clap::Args)]
pub struct Args {}

/// Run `tfops uninstall`.
pub async fn run(_args: Args) -> anyhow::Result<u8> {
    anyhow::bail!("tfops uninstall: not implemented yet")
}
