//! Pure core of the `tfops render` post-renderer: splits Helm's rendered stream into
//! documents, expands `TerraformModule` declarations into Flux source + `Terraform` CR +
//! runner RBAC, adopts `Terraform` CRs already in the chart, and injects the uninstall guard.
//!
//! No I/O: the caller passes the input bytes and writes [`Rendered::output`] to stdout only
//! when [`render`] returns `Ok` (on error nothing partial exists).

pub mod adopt;
pub mod config;
pub mod error;
pub mod expand;
pub mod guard;
pub mod hash;
pub mod intent;
pub mod meta;
pub mod naming;
pub mod overlay;
pub mod pipeline;
pub mod scan;
pub mod split;
pub mod template;
pub mod yaml;

pub use config::CatalogConfig;
pub use error::{ConfigError, ErrorKind, RenderError};

/// Resource limits for untrusted input.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Limits {
    /// Maximum input size in bytes (default 64 MiB).
    pub max_input_bytes: usize,
    /// Maximum YAML nesting depth of a parsed document (default 64).
    pub max_depth: usize,
    /// Maximum alias (`*ref`) uses per parsed document (default 1000; bounds billion laughs).
    pub max_aliases: usize,
    /// Maximum YAML nodes per parsed document (default 250 000).
    pub max_nodes: usize,
}

impl Default for Limits {
    fn default() -> Self {
        Limits {
            max_input_bytes: 64 * 1024 * 1024,
            max_depth: 64,
            max_aliases: 1000,
            max_nodes: 250_000,
        }
    }
}

/// Options of one render.
#[derive(Debug, Clone, Default)]
pub struct RenderOptions {
    /// Release name (`--release`); else taken from the `app.kubernetes.io/instance` label.
    pub release: Option<String>,
    /// Release namespace (the command passes `HELM_NAMESPACE`); documents'
    /// `metadata.namespace` wins when present.
    pub namespace: Option<String>,
    /// Catalog configuration (`Default` = built-in defaults).
    pub config: CatalogConfig,
    /// Input limits.
    pub limits: Limits,
}

/// Which Helm produced the input.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum HelmFlavor {
    /// Documents carry `postrenderer.helm.sh/postrender-filename` (Helm 4).
    Helm4,
    /// Documents carry `# Source:` comments (Helm 3).
    Helm3,
    /// Neither marker found.
    Unknown,
}

/// What a render did.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Summary {
    /// `TerraformModule` declarations expanded.
    pub modules_expanded: usize,
    /// `Terraform` CRs adopted.
    pub crs_adopted: usize,
    /// Whether the pre-delete guard (Job + RBAC) was injected.
    pub guard_injected: bool,
    /// Objects added to the stream (generated objects, guard objects).
    pub objects_added: usize,
    /// The release name used (when there was Terraform content).
    pub release: Option<String>,
    /// The release namespace used, when known.
    pub namespace: Option<String>,
}

/// Result of a render.
#[derive(Debug, Clone)]
pub struct Rendered {
    /// The post-rendered stream.
    pub output: Vec<u8>,
    /// Warnings for stderr.
    pub warnings: Vec<String>,
    /// Which Helm produced the input.
    pub helm_flavor: HelmFlavor,
    /// What was done.
    pub summary: Summary,
}

/// Post-render `input`. Documents without Terraform content pass through byte-for-byte; a
/// stream with no Terraform content at all comes back identical.
pub fn render(input: &[u8], opts: &RenderOptions) -> Result<Rendered, RenderError> {
    pipeline::run(input, opts)
}
