//! `events` — placeholder, being written.
