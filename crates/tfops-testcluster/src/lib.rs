//! tfops-testcluster: a small in-process Kubernetes API server for tests (real HTTP for
//! `kube::Client`) and a tofu-controller v0.16.5 simulation ([`tofu`]).
//!
//! ```no_run
//! # async fn demo() -> Result<(), Box<dyn std::error::Error>> {
//! use tfops_testcluster::{ClusterOptions, TestCluster};
//! let cluster = TestCluster::start(ClusterOptions::default()).await?;
//! let client = cluster.client("guard")?; // user "guard", recorded per request
//! cluster.store().create(serde_json::json!({
//!     "apiVersion": "v1", "kind": "Secret",
//!     "metadata": {"name": "s", "namespace": "ns1"}, "stringData": {"k": "v"}
//! }))?;
//! # let _ = client; Ok(()) }
//! ```
//!
//! Namespaces are auto-created on first use by default (`ClusterOptions::auto_create_namespaces`).
//!
//! # What the server does like a real API server
//! - CRUD + `deletecollection` for the resources in [`registry`] (namespaced and cluster
//!   scoped; unknown → 404), list/watch with label selectors (`=`, `==`, `!=`, `in`, `notin`,
//!   exists, `!`) and field selectors (any dotted path, `=`/`!=`).
//! - One global `resourceVersion` counter, `uid`, `creationTimestamp`, `generation` (bumped on
//!   changes outside metadata/status and on deletion), no-op writes keep the resourceVersion,
//!   stale `metadata.resourceVersion` on PUT/PATCH (and DELETE preconditions) → 409 Conflict.
//! - Finalizers: DELETE sets `deletionTimestamp`; the object goes when the last finalizer is
//!   removed; no new finalizers once deleting. ownerReference garbage collection (background;
//!   `propagationPolicy: Orphan` strips the reference). Namespace deletion: Terminating,
//!   contents deleted, namespace removed when empty; creates in a terminating namespace → 403.
//! - Merge, JSON (with `test`), strategic (as merge) and apply (create-or-merge) patches;
//!   `status` subresource (main endpoint ignores status, `/status` changes only status).
//! - Watches: ADDED/MODIFIED/DELETED (selector transitions included), resume from a
//!   resourceVersion, BOOKMARK, `sendInitialEvents`, 410 Gone after [`Store::compact_history`],
//!   `timeoutSeconds`.
//! - With CRDs stored (`ClusterOptions::with_shared_crds()`), schema defaulting, pruning,
//!   validation (422) and `fieldValidation=Strict` (400) for those resources ([`crd`]).
//! - Discovery, OpenAPI v3 index/documents, protobuf request bodies for Secret/ConfigMap and
//!   `Impersonate-User` identity: real Helm 3.16 / 4.1 install, upgrade and uninstall work;
//!   [`jobs`] runs `tfops` hook Jobs with a real binary (`ClusterOptions::job_bin`).
//!
//! # Not like a real API server
//! No authentication/RBAC enforcement (the user is only recorded), no admission webhooks, no
//! Pods or controllers other than the Job runner and the [`tofu`] simulation, server-side apply
//! without managed fields (fields removed from an applied config are not removed), Foreground
//! deletion is not ordered, list pagination (`limit`/`continue`) returns everything at once,
//! core/v1 and events.k8s.io/v1 Events are stored separately.
//!
//! Clients from [`TestCluster::client`] speak HTTP/1.1 to the server over an in-memory pipe
//! (safe under a paused clock: with a loopback socket, tokio's auto-advance can fire a client
//! timer while response bytes are in flight) and keep kube's default retry of 429/503/504 —
//! count requests accordingly. Kubeconfigs ([`TestCluster::write_kubeconfig`]) and
//! [`TestCluster::client_over_tcp`] use the real socket (subprocesses, Helm, `tfops`).

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
pub mod sources;
pub mod store;
mod transport;
pub mod validate;
pub mod vtime;
mod watch;

pub use cluster::{ClusterError, ClusterOptions, TestCluster};
pub use error::ApiError;
pub use faults::{FaultAction, FaultId, FaultRule, Faults};
pub use requests::{RequestLog, RequestRecord, Verb};
pub use store::{EventType, HistoryEntry, Store, WriteMode};

pub mod tofu;
