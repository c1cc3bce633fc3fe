//! `policy` — placeholder, being written.
