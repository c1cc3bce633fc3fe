//! `progress` — placeholder, being written.
