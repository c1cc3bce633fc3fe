//! `probe` — placeholder, being written.
