//! What the controller observes outside the `Terraform` object itself when it reconciles:
//! source, runner ServiceAccount, varsFrom objects, dependencies, state lock, and the Secrets
//! the runner manages. The driver fills this with GETs; tests build it by hand.

use serde_json::Value;

use super::behavior::LockSpec;

/// The Flux source referenced by `spec.sourceRef`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum SourceState {
    /// The source object does not exist.
    Missing,
    /// It exists but has no `status.artifact`.
    NoArtifact,
    /// It has an artifact with this revision (e.g. `main@sha1:<40 hex>`).
    Ready { revision: String },
}

/// One `spec.dependsOn` target as observed.
#[derive(Debug, Clone, PartialEq)]
pub struct DependencyView {
    pub namespace: String,
    pub name: String,
    /// The dependency's `Terraform` object, `None` when it does not exist.
    pub object: Option<Value>,
    /// Whether the dependency's `writeOutputsToSecret` Secret exists.
    pub outputs_secret_present: bool,
}

/// A state lock held on the backend (Lease `lock-tfstate-<ws>-<name>` with a holder).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LockView {
    pub holder: LockSpec,
    /// Go-style creation time text terraform prints (`Created:`).
    pub created: String,
}

/// Everything observed for one reconcile.
#[derive(Debug, Clone, PartialEq)]
pub struct World {
    pub source: SourceState,
    /// The runner ServiceAccount (`spec.serviceAccountName`, default `tf-runner`) exists.
    pub runner_sa_present: bool,
    /// The namespace is terminating: the API server refuses to create the runner pod
    /// ("unable to create new content in namespace … because it is being terminated").
    pub namespace_terminating: bool,
    /// Required (non-optional) `spec.varsFrom` objects that do not exist, as `(kind, name)`.
    pub missing_vars_from: Vec<(String, String)>,
    /// `spec.dependsOn` targets, in spec order.
    pub dependencies: Vec<DependencyView>,
    /// A foreign lock on the state, if any.
    pub lock: Option<LockView>,
    /// Plan Secrets (`tfplan-<ws>-<name>`) exist.
    pub plan_secret_present: bool,
    /// The `writeOutputsToSecret` Secret exists.
    pub outputs_secret_present: bool,
    /// Resources in the tfstate Secret; `None` when there is no tfstate Secret.
    pub state_resources: Option<usize>,
}

impl World {
    /// A healthy world: source ready at `revision`, runner SA present, nothing missing.
    pub fn healthy(revision: &str) -> Self {
        Self {
            source: SourceState::Ready {
                revision: revision.to_string(),
            },
            runner_sa_present: true,
            namespace_terminating: false,
            missing_vars_from: Vec::new(),
            dependencies: Vec::new(),
            lock: None,
            plan_secret_present: true,
            outputs_secret_present: true,
            state_resources: Some(1),
        }
    }

    /// A world in which only `source` was observed: everything read after the source is
    /// "absent". The core never reads those fields when it stops earlier (used by the driver
    /// to skip GETs the real controller would not make either).
    pub fn only_source(source: SourceState) -> Self {
        Self {
            source,
            runner_sa_present: false,
            namespace_terminating: false,
            missing_vars_from: Vec::new(),
            dependencies: Vec::new(),
            lock: None,
            plan_secret_present: false,
            outputs_secret_present: false,
            state_resources: None,
        }
    }
}
