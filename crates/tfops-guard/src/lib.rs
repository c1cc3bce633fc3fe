//! tfops-guard: everything that makes `helm uninstall` of a release with Terraform pieces
//! finish within a budget without losing anything silently.
//!
//! Pure core ([`core`], no I/O): the per-CR state machine, the failure classifier, policy,
//! probe findings, ordering, dry-run plan, Lease liveness, lock and tfstate readers, explain.
//! The shared vocabulary (names, durations, progress schema, the Terraform view) comes from
//! `tfops-api`. Thin I/O: [`ledger`] (orphan ledger Secrets: pure format + kube reads/writes),
//! [`probe`] (reads a CR's environment into [`core::findings`]), [`tfobj`] (the shared view
//! over a `DynamicObject`, API resources), [`events`], [`clock`], and [`engine`] (the
//! watch-driven executor behind `tfops guard` and `helm tfops uninstall`).

pub mod clock;
pub mod core;
pub mod engine;
pub mod events;
pub mod ledger;
pub mod probe;
pub mod tfobj;

pub use crate::core::{classify, explain, liveness, lock, machine, order, plan, policy, tfstate};
pub use tfops_api::progress;
