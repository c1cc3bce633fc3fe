//! helm-tfops: a Helm plugin that turns declared Terraform modules into Flux tofu-controller
//! objects (post-renderer) and makes `helm uninstall` of such releases always finish (guard).
//!
//! The pure cores live in the workspace crates `tfops-render` (post-renderer) and
//! `tfops-guard` (state machine, classifier, ledger, guard engine); this crate holds the CLI
//! and the thin I/O around them.

pub mod cli;
pub mod commands;
pub mod kubeenv;
pub mod progress;
