//! tfops-testcluster: a small in-process Kubernetes API server for tests (real HTTP for
//! `kube::Client`) and a tofu-controller v0.16.5 simulation ([`tofu`]).

pub mod tofu;
