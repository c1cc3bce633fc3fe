//! tfops-testcluster: a small in-process Kubernetes API server for tests (real HTTP for
//! `kube::Client`) and a tofu-controller v0.16.5 simulation ([`tofu`]).
//!
//! ```no_run
//! # async fn demo() -> Result<(), Box<dyn std::error::Error>> {
//! use tfops_testcluster::{ClusterOptions, TestCluster};
//! let cluster = TestCluster::start(ClusterOptions::default()).await?;
//! let client = cluster.client("guard")?; // bearer token "guard", recorded per request
//! cluster.store().create(serde_json::json!({
//!     "apiVersion": "v1", "kind": "Secret",
//!     "metadata": {"name": "s", "namespace": "ns1"}, "stringData": {"k": "v"}
//! }))?;
//! # let _ = client; Ok(()) }
//! ```
//!
//! Namespaces are auto-created on first use by default (`ClusterOptions::auto_create_namespaces`).

pub mod clock;
pub mod cluster;
pub mod crd;
pub mod discovery;
pub mod error;
pub mod faults;
pub mod jobs;
pub mod patch;
pub mod protobuf;
pub mod registry;
pub mod requests;
pub mod scenario;
pub mod selector;
mod server;
pub mod store;
pub mod validate;
mod watch;

pub use cluster::{ClusterError, ClusterOptions, TestCluster};
pub use error::ApiError;
pub use faults::{FaultAction, FaultId, FaultRule, Faults};
pub use requests::{RequestLog, RequestRecord, Verb};
pub use store::{EventType, HistoryEntry, Store, WriteMode};

pub mod tofu;
