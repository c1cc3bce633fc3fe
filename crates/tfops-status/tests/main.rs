//! tfops-status integration tests, one binary: doctor, orphans, status and wait over real HTTP
//! against the test API server, and output snapshots.

mod common;

mod doctor_http;
mod orphans_http;
mod snapshots;
mod status_http;
mod wait_http;
