//! `machine` — placeholder, being written.
