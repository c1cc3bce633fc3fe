//! `explain` — placeholder, being written.
