//! The `tfops` binary's commands run as a user would (explain, guard, status).

mod common;

mod explain;
mod guard_cli;
mod status_cli;
