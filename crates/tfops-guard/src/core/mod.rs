//! `core` — the guard's pure core: everything that decides, nothing that does I/O (no kube, no
//! clock, no stdout). The engine feeds it observations and executes its decisions.
//!
//! - [`machine`]: the per-CR state machine (observation + environment + policy + progress →
//!   decision), with its exhaustive and closed-loop tests;
//! - [`classify`]: the failure classifier (condition reason + message → class + rule);
//! - [`policy`]: the per-CR policy from annotations over defaults;
//! - [`findings`]: what a probe of a CR's environment found (the engine's probe fills it);
//! - [`order`]: dependants-first deletion order; [`plan`]: the dry-run plan;
//! - [`liveness`]: tofu-controller's leader Lease as evidence; [`lock`]: Terraform `Lock Info`;
//!   [`tfstate`]: managed resources in a state file;
//! - [`explain`]: what the guard would do with a failure, in words.

pub mod classify;
pub mod explain;
pub mod findings;
pub mod liveness;
pub mod lock;
pub mod machine;
pub mod order;
pub mod plan;
pub mod policy;
pub mod tfstate;
