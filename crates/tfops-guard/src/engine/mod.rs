//! `engine` — the watch-driven executor behind `tfops guard` and `helm tfops uninstall`:
//! finds a release's `Terraform` CRs, deletes them dependants first, watches them, and
//! executes what the pure state machine ([`crate::core::machine`]) decides, within a budget.

pub mod discover;
pub mod observer;
pub mod ops;
pub mod run;

pub use discover::{terraform_refs_from_manifest, ManifestRef};
pub use observer::{DecisionRecord, Observer};
pub use run::{run_guard, CrReport, EngineError, GuardOptions, GuardReport, RunStatus};
