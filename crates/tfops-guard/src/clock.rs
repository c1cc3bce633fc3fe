//! `clock` — placeholder, being written.
