//! tfops-status: everything behind `helm tfops status`, `orphans` and `doctor`.
//!
//! Pure core: [`terraform`] (typed view of a `Terraform` CR), [`ledger`] (ledger Secret
//! read side over the guard's format), [`state`] (the documented state mapping), [`report`]
//! (items, the `StatusReport` schema, exit codes), [`render`] (table / wide / json / yaml),
//! [`diagnose`] (doctor findings from the guard's probe), [`fixtures`] (CRs in every state for
//! tests and the benchmark).
//! Thin I/O: [`fetch`] (one LIST per namespace or one cluster-wide, plus one ledger LIST),
//! [`status`] (fetch → report → render, and `--watch`), [`watch`], [`wait`] (bounded watch of
//! one object), [`orphans`] (list / show / destroy / forget), [`doctor`].

pub mod diagnose;
pub mod doctor;
pub mod fetch;
#[cfg(any(test, feature = "fixtures"))]
pub mod fixtures;
pub mod ledger;
pub mod orphans;
pub mod render;
pub mod report;
pub mod state;
pub mod status;
pub mod wait;
pub mod watch;
