//! `findings` — what a probe of one `Terraform` CR's environment found: everything
//! tofu-controller v0.16.5 needs to finish its deletion (the Flux source with an artifact, the
//! runner ServiceAccount, `varsFrom` / `backendConfigsFrom` objects, dependants, `dependsOn`
//! targets, the runner pod, the namespace, the state lock, the controller's answer). Pure data
//! plus the readings the guard and `doctor` derive from it; `crate::probe` fills it.

use tfops_api::ObjectRef;

use crate::core::machine::{Presence, SourceState};

/// The Flux source object of the CR.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
#[serde(rename_all = "camelCase")]
pub struct SourceFinding {
    pub reference: Option<ObjectRef>,
    pub presence: Presence,
    /// `status.artifact` is set (the controller can fetch the module).
    pub has_artifact: bool,
}

/// Whether the controller echoes `reconcile.fluxcd.io/requestedAt`.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
#[serde(rename_all = "camelCase")]
pub enum ControllerAnswer {
    /// No `requestedAt` was ever set: nothing to judge.
    NotRequested,
    /// `status.lastHandledReconcileAt` equals the requested value.
    Answered,
    /// A request is outstanding (value requested, value last handled).
    Pending {
        requested: String,
        handled: Option<String>,
    },
}

/// The CR's runner pod as last read.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
#[serde(rename_all = "camelCase")]
pub struct RunnerPodState {
    pub name: String,
    pub uid: String,
    /// `status.phase` (`Pending` when not reported yet).
    pub phase: String,
    /// `metadata.deletionTimestamp` is set.
    pub deleting: bool,
    pub created: Option<chrono::DateTime<chrono::Utc>>,
}

/// Everything the guard can know about a CR's deletion prerequisites.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
#[serde(rename_all = "camelCase")]
pub struct Findings {
    pub source: SourceFinding,
    /// `spec.serviceAccountName` (default `tf-runner`).
    pub runner_service_account: String,
    pub runner_service_account_presence: Presence,
    /// Required (non-optional) `varsFrom` objects that are missing.
    pub missing_vars_from: Vec<ObjectRef>,
    /// Required (non-optional) `backendConfigsFrom` objects that are missing.
    pub missing_backend_configs_from: Vec<ObjectRef>,
    /// Dependants (from `tf.dependency.of.*` finalizers) whose CR still exists.
    pub dependants_present: Vec<String>,
    /// Dependants named by finalizers whose CR is gone (stale finalizer; only force removes it).
    pub dependants_gone: Vec<String>,
    /// `dependsOn` targets that are gone (the controller's finalize fails on them forever).
    pub depends_on_gone: Vec<ObjectRef>,
    /// Whether the runner pod could be looked at (Unknown: no permission).
    pub runner_pod_presence: Presence,
    /// The runner pod `<name>-tf-runner`, when it exists.
    pub runner_pod: Option<RunnerPodState>,
    /// `None` when the Namespace is not readable (namespace-scoped guard Role).
    pub namespace_terminating: Option<bool>,
    /// `status.lock.pending` (a lock identifier).
    pub lock_pending: Option<String>,
    pub controller: ControllerAnswer,
    pub suspended: bool,
}

impl Findings {
    /// Something the controller needs to delete the CR at all (even without destroying) is
    /// missing: the source/artifact, the runner SA, or required vars/backend objects.
    pub fn deletion_blocked(&self) -> bool {
        self.source.presence == Presence::Missing
            || (self.source.presence == Presence::Present && !self.source.has_artifact)
            || self.runner_service_account_presence == Presence::Missing
            || !self.missing_vars_from.is_empty()
            || !self.missing_backend_configs_from.is_empty()
    }

    /// Human-readable list of blockers, each with what fixes it (for doctor and the guard).
    pub fn blockers(&self, cr_namespace: &str) -> Vec<String> {
        let mut out = Vec::new();
        match (&self.source.reference, self.source.presence) {
            (Some(r), Presence::Missing) => out.push(format!(
                "source {r} is missing (re-create it, e.g. `helm rollback`, before deleting)"
            )),
            (Some(r), Presence::Present) if !self.source.has_artifact => out.push(format!(
                "source {r} has no artifact (check `kubectl -n {} describe {} {}`)",
                r.namespace,
                r.kind.to_ascii_lowercase(),
                r.name
            )),
            (None, _) => out.push("spec.sourceRef is not set".to_owned()),
            _ => {}
        }
        if self.runner_service_account_presence == Presence::Missing {
            out.push(format!(
                "runner ServiceAccount {cr_namespace}/{} is missing (`kubectl -n {cr_namespace} create serviceaccount {}`)",
                self.runner_service_account, self.runner_service_account
            ));
        }
        for r in self
            .missing_vars_from
            .iter()
            .chain(&self.missing_backend_configs_from)
        {
            out.push(format!("{r} is missing (re-create it)"));
        }
        if !self.dependants_present.is_empty() {
            out.push(format!(
                "dependants still present: {} (delete them first)",
                self.dependants_present.join(", ")
            ));
        }
        if self.suspended {
            out.push(
                "spec.suspend is true (the controller ignores the CR; un-suspend it)".to_owned(),
            );
        }
        if let Some(lock) = &self.lock_pending {
            out.push(format!(
                "state lock held (id {lock}); force-unlock: set spec.tfstate.forceUnlock=yes and spec.tfstate.lockIdentifier={lock}"
            ));
        }
        if self.namespace_terminating == Some(true) {
            out.push(format!(
                "namespace {cr_namespace} is terminating (its Secrets and runner pods may be going away)"
            ));
        }
        if let ControllerAnswer::Pending { requested, .. } = &self.controller {
            out.push(format!(
                "controller has not handled requestedAt={requested} (is tofu-controller running?)"
            ));
        }
        out
    }
}

impl From<&SourceFinding> for SourceState {
    /// The machine's view of the source: present with an artifact, without, missing, unknown.
    fn from(f: &SourceFinding) -> Self {
        match (f.presence, f.has_artifact) {
            (Presence::Present, true) => SourceState::Ready,
            (Presence::Present, false) => SourceState::NoArtifact,
            (Presence::Missing, _) => SourceState::Missing,
            (Presence::Unknown, _) => SourceState::Unknown,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn source_findings_map_to_the_machine_source_state() {
        let f = |presence, has_artifact| {
            SourceState::from(&SourceFinding {
                reference: None,
                presence,
                has_artifact,
            })
        };
        assert_eq!(f(Presence::Present, true), SourceState::Ready);
        assert_eq!(f(Presence::Present, false), SourceState::NoArtifact);
        assert_eq!(f(Presence::Missing, true), SourceState::Missing);
        assert_eq!(f(Presence::Unknown, false), SourceState::Unknown);
    }
}
