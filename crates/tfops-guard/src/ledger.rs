//! `ledger` — placeholder, being written.
