//! `duration` — placeholder, being written.
