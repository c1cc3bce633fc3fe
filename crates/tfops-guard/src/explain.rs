//! `explain` — what the guard would do with a given failure (pure; behind `tfops explain`).
//! Work in progress.
