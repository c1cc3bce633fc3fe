//! `tfops-api` — the vocabulary every helm-tfops crate shares, defined once: the `tfops.dev/*`
//! and tofu-controller names ([`names`]), Go-style durations ([`duration`]), the per-CR
//! uninstall policy enums ([`policy`]), the written form of extra classifier rules ([`rules`]), the guard's progress schema persisted on each CR
//! ([`progress`]) and a read-only view over a `Terraform` object ([`terraform`]).
//!
//! No Kubernetes client here (serde, thiserror and chrono only), so the post-renderer stays
//! kube-free. The tofu-controller simulation in `tfops-testcluster` keeps its own copy of
//! upstream's names on purpose: it is the reference model the guard is tested against.

pub mod duration;
pub mod names;
pub mod policy;
pub mod progress;
pub mod rules;
pub mod terraform;

pub use duration::{format_duration, parse_duration, DurationError, GoDuration};
pub use policy::{OnFailure, UninstallPolicy};
pub use progress::{FailureClass, Outcome, Phase, Progress};
pub use terraform::{Condition, ObjectRef, TerraformView};
