//! `order` — placeholder, being written.
