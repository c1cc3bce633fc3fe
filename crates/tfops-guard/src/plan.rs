//! `plan` — placeholder, being written.
