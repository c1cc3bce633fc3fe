//! Seeding helpers for tests: Flux sources, the runner ServiceAccount, and "as applied" — the
//! `Terraform` CR (finalizer + status) and Secrets exactly as the simulated controller leaves
//! them after a successful apply, computed by running the pure core in memory (so a test can
//! seed a ready release directly into the store, even with the controller stopped).

use std::collections::BTreeMap;

use chrono::{DateTime, Utc};
use serde_json::{json, Value};

use super::behavior::Behavior;
use super::reconcile::{reconcile, Action, Input, Row};
use super::world::World;

/// An `OCIRepository` (source.toolkit.fluxcd.io/v1) with an artifact at `revision`.
pub fn oci_source(namespace: &str, name: &str, revision: &str) -> Value {
    let digest = revision.split_once('@').map(|(_, d)| d).unwrap_or(revision);
    json!({
        "apiVersion": "source.toolkit.fluxcd.io/v1",
        "kind": "OCIRepository",
        "metadata": {"name": name, "namespace": namespace},
        "spec": {"interval": "5m", "url": format!("oci://ghcr.io/acme/{name}"), "ref": {"tag": "latest"}},
        "status": {"artifact": {
            "revision": revision,
            "digest": digest,
            "path": format!("ocirepository/{namespace}/{name}/artifact.tar.gz"),
            "url": format!("http://source-controller.flux-system.svc.cluster.local./ocirepository/{namespace}/{name}/artifact.tar.gz"),
            "lastUpdateTime": "2026-01-01T00:00:00Z"
        }}
    })
}

/// A `GitRepository` (source.toolkit.fluxcd.io/v1) with an artifact at `revision`.
pub fn git_source(namespace: &str, name: &str, revision: &str) -> Value {
    let digest = revision.split_once('@').map(|(_, d)| d).unwrap_or(revision);
    json!({
        "apiVersion": "source.toolkit.fluxcd.io/v1",
        "kind": "GitRepository",
        "metadata": {"name": name, "namespace": namespace},
        "spec": {"interval": "5m", "url": format!("https://github.com/acme/{name}"), "ref": {"branch": "main"}},
        "status": {"artifact": {
            "revision": revision,
            "digest": digest,
            "path": format!("gitrepository/{namespace}/{name}/artifact.tar.gz"),
            "url": format!("http://source-controller.flux-system.svc.cluster.local./gitrepository/{namespace}/{name}/artifact.tar.gz"),
            "lastUpdateTime": "2026-01-01T00:00:00Z"
        }}
    })
}

/// A ServiceAccount (the runner's, `tf-runner` by default).
pub fn service_account(namespace: &str, name: &str) -> Value {
    json!({"apiVersion": "v1", "kind": "ServiceAccount", "metadata": {"name": name, "namespace": namespace}})
}

/// A `Terraform` CR and its Secrets as left by a successful apply.
#[derive(Debug, Clone, PartialEq)]
pub struct AppliedModule {
    /// The CR with `finalizers.tf.contrib.fluxcd.io` and a Ready=True status.
    pub terraform: Value,
    /// tfstate, plan and (when `writeOutputsToSecret` is set) outputs Secrets.
    pub secrets: Vec<Value>,
}

/// Why [`as_applied`] could not produce an applied module.
#[derive(Debug, thiserror::Error)]
pub enum FixtureError {
    /// The core stopped somewhere else (e.g. manual approval, dependencies not ready).
    #[error("Terraform {name}: the controller would stop at {row:?}, not at an applied state")]
    NotApplied { name: String, row: Row },
}

/// Run the pure core on `terraform` (source ready at `revision`, runner present, no
/// dependencies) until it is applied, and return the resulting CR and Secrets.
pub fn as_applied(
    terraform: &Value,
    revision: &str,
    behavior: &Behavior,
    now: DateTime<Utc>,
) -> Result<AppliedModule, FixtureError> {
    let mut tf = terraform.clone();
    let name = tf["metadata"]["name"].as_str().unwrap_or("").to_string();
    let mut secrets: BTreeMap<String, Value> = BTreeMap::new();
    let mut last = Row::AddFinalizer;
    for _ in 0..4 {
        let mut world = World::healthy(revision);
        world.plan_secret_present = secrets.keys().any(|k| k.starts_with("tfplan-"));
        world.outputs_secret_present = false;
        world.state_resources = None;
        let outcome = reconcile(Input {
            terraform: &tf,
            world: &world,
            behavior,
            destroy_attempts: 0,
            now,
            runner: Default::default(),
        });
        for a in &outcome.actions {
            match a {
                Action::AddFinalizer(f) => {
                    let list = tf["metadata"]["finalizers"]
                        .as_array()
                        .cloned()
                        .unwrap_or_default();
                    let mut list = list;
                    if !list.iter().any(|x| x.as_str() == Some(f)) {
                        list.push(json!(f));
                    }
                    tf["metadata"]["finalizers"] = Value::Array(list);
                }
                Action::PatchStatus(s) => tf["status"] = s.clone(),
                Action::ApplySecret(s) => {
                    let mut s = s.clone();
                    let uid_missing = s["metadata"]["ownerReferences"][0]["uid"]
                        .as_str()
                        .is_none_or(str::is_empty);
                    if uid_missing {
                        if let Some(m) = s["metadata"].as_object_mut() {
                            m.remove("ownerReferences");
                        }
                    }
                    let n = s["metadata"]["name"].as_str().unwrap_or("").to_string();
                    secrets.insert(n, s);
                }
                Action::DeleteSecret(n) => {
                    secrets.remove(n);
                }
                _ => {}
            }
        }
        last = outcome.row;
        match last {
            Row::Applied | Row::NoDrift | Row::PlannedNoChanges => {
                return Ok(AppliedModule {
                    terraform: tf,
                    secrets: secrets.into_values().collect(),
                })
            }
            Row::AddFinalizer => continue,
            _ => break,
        }
    }
    Err(FixtureError::NotApplied { name, row: last })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::tofu::conditions as cond;

    #[test]
    fn as_applied_gives_finalizer_ready_status_and_secrets() {
        let tf = json!({
            "apiVersion": "infra.contrib.fluxcd.io/v1alpha2",
            "kind": "Terraform",
            "metadata": {"name": "bucket", "namespace": "ns"},
            "spec": {"interval": "10m", "approvePlan": "auto", "path": "./m",
                     "sourceRef": {"kind": "OCIRepository", "name": "src"},
                     "writeOutputsToSecret": {"name": "bucket-outputs"}, "enableInventory": true}
        });
        let a = as_applied(
            &tf,
            "latest@sha256:abcdef0123456789",
            &Behavior::default(),
            Utc::now(),
        )
        .unwrap();
        assert_eq!(
            a.terraform["metadata"]["finalizers"][0],
            "finalizers.tf.contrib.fluxcd.io"
        );
        assert!(cond::is_true(&a.terraform["status"], cond::READY));
        assert_eq!(
            a.terraform["status"]["inventory"]["entries"][0]["t"],
            "aws_s3_bucket"
        );
        let names: Vec<_> = a
            .secrets
            .iter()
            .map(|s| s["metadata"]["name"].as_str().unwrap().to_string())
            .collect();
        assert_eq!(
            names,
            vec![
                "bucket-outputs",
                "tfplan-default-bucket",
                "tfstate-default-bucket"
            ]
        );
        assert!(a
            .secrets
            .iter()
            .all(|s| s["metadata"].get("ownerReferences").is_none()));
    }

    #[test]
    fn manual_approval_is_not_an_applied_state() {
        let tf = json!({
            "apiVersion": "infra.contrib.fluxcd.io/v1alpha2",
            "kind": "Terraform",
            "metadata": {"name": "m", "namespace": "ns"},
            "spec": {"interval": "10m", "path": "./m", "sourceRef": {"kind": "OCIRepository", "name": "src"}}
        });
        let e = as_applied(
            &tf,
            "main@sha1:0123456789abcdef",
            &Behavior::default(),
            Utc::now(),
        )
        .unwrap_err();
        assert!(e.to_string().contains("AwaitingApproval"), "{e}");
    }
}
