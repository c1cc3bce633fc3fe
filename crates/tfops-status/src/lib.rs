//! tfops-status: everything behind `helm tfops status`, `orphans` and `doctor`.
//!
//! Pure core: [`terraform`] (typed view of a `Terraform` CR), [`ledger`] (ledger Secret
//! read side), [`state`] (the documented state mapping), [`report`] (rows, the
//! `StatusReport` schema, exit codes), [`render`] (table / wide / json / yaml),
//! [`diagnose`] (doctor findings from observations).
//! Thin I/O: [`fetch`] (one LIST per namespace), [`watch`], [`orphans`], [`observe`]
//! (what doctor looks at in the cluster).

pub mod diagnose;
pub mod doctor;
pub mod fetch;
pub mod fixtures;
pub mod ledger;
pub mod orphans;
pub mod render;
pub mod report;
pub mod state;
pub mod status;
pub mod terraform;
pub mod wait;
pub mod watch;
