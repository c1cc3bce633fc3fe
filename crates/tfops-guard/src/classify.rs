//! `classify` — placeholder, being written.
