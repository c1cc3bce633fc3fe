//! tfops-testcluster integration tests, one binary: the test API server's Kubernetes semantics,
//! CRD validation, faults, Helm against it, Jobs, scenarios, and the tofu-controller simulation.

mod api;
mod crd;
mod faults;
mod helm;
mod jobs;
mod scenarios;
mod tofu_deletion;
mod tofu_fault_schedules;
mod tofu_guard_interplay;
mod tofu_timing;
mod watch;
