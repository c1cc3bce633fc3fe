//! `engine` — placeholder, being written.
