//! `tfops render` (work in progress).

/// Arguments of `tfops render`.
#[derive(Debug, clap::Args)]
pub struct Args {}

/// Run `tfops render`.
pub fn run(_args: Args) -> anyhow::Result<u8> {
    anyhow::bail!("tfops render: not implemented yet")
}
