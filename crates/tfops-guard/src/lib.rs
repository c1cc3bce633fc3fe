//! tfops-guard: everything that makes `helm uninstall` of a release with Terraform pieces
//! finish within a budget without losing anything silently.
//!
//! Pure core: [`classify`] (failure classifier), [`machine`] (per-CR decision),
//! [`policy`] (per-CR policy from annotations + defaults), [`progress`] (what is persisted on
//! the CR between guard runs), [`duration`], [`explain`].
//! Thin I/O: [`ledger`] (orphan ledger Secrets), [`probe`] (what the environment of a CR looks
//! like), [`order`] (dependants-first ordering), [`events`], [`clock`], [`engine`] (the
//! watch-driven executor behind `tfops guard` and `helm tfops uninstall`), [`plan`] (dry-run).

pub mod classify;
pub mod clock;
pub mod engine;
pub mod events;
pub mod explain;
pub mod ledger;
pub mod liveness;
pub mod lock;
pub mod machine;
pub mod order;
pub mod plan;
pub mod policy;
pub mod probe;
pub use tfops_api::progress;
pub mod tfobj;
pub mod tfstate;
