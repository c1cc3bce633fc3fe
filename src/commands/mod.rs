//! One module per `tfops` subcommand: argument struct + `run`, thin over the library crates.

pub mod doctor;
pub mod explain;
pub mod guard;
pub mod orphans;
pub mod render;
pub mod setup;
pub mod status;
pub mod uninstall;
