//! wip
use crate::{HelmFlavor, RenderError, RenderOptions, Rendered, Summary};

pub(crate) fn run(input: &[u8], _opts: &RenderOptions) -> Result<Rendered, RenderError> {
    Ok(Rendered { output: input.to_vec(), warnings: vec![], helm_flavor: HelmFlavor::Unknown, summary: Summary::default() })
}
