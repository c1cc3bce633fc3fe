//! Read-only typed view over a tofu-controller `Terraform` object held as JSON
//! (`infra.contrib.fluxcd.io/v1alpha2`), plus the guard-progress annotation on it.
//!
//! Everything here tolerates missing fields: a CR that has never been reconciled has no
//! `status` at all.

use chrono::{DateTime, Utc};
use serde::Deserialize;
use serde_json::Value;

/// Label that ties every generated or adopted object to its Helm release.
pub const RELEASE_LABEL: &str = "tfops.dev/release";
/// Label naming the `TerraformModule` a CR was generated from.
pub const MODULE_LABEL: &str = "tfops.dev/module";
/// Annotation where the guard persists its per-CR progress.
pub const PROGRESS_ANNOTATION: &str = "tfops.dev/guard-progress";
/// tofu-controller's own finalizer.
pub const TF_FINALIZER: &str = "finalizers.tf.contrib.fluxcd.io";
/// Prefix of the finalizers tofu-controller puts on dependencies of a CR.
pub const DEPENDENCY_FINALIZER_PREFIX: &str = "tf.dependency.of.";
/// `spec.approvePlan` value of drift-detection-only mode.
pub const APPROVE_PLAN_DISABLE: &str = "disable";
/// `spec.approvePlan` value of auto-apply mode.
pub const APPROVE_PLAN_AUTO: &str = "auto";
/// Default runner ServiceAccount (`spec.serviceAccountName` CRD default).
pub const DEFAULT_RUNNER_SA: &str = "tf-runner";

/// One `metav1.Condition` as tofu-controller writes it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Condition {
    pub type_: String,
    pub status: String,
    pub reason: String,
    pub message: String,
    pub last_transition_time: Option<DateTime<Utc>>,
}

/// Guard progress persisted on a CR (`tfops.dev/guard-progress`), read tolerantly: the guard
/// owns the schema (`tfops_guard::progress::Progress`), status only needs these fields.
#[derive(Debug, Clone, Default, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "camelCase", default)]
pub struct GuardProgress {
    pub attempts: u32,
    pub first_failure_at: Option<DateTime<Utc>>,
    pub last_failure_reason: Option<String>,
    pub last_requested_at: Option<String>,
    pub phase: Option<String>,
    pub escalates_at: Option<DateTime<Utc>>,
}

/// Borrowed view of one `Terraform` object.
#[derive(Debug, Clone, Copy)]
pub struct TerraformView<'a> {
    obj: &'a Value,
}

fn str_at<'a>(v: &'a Value, path: &[&str]) -> Option<&'a str> {
    let mut cur = v;
    for p in path {
        cur = cur.get(*p)?;
    }
    cur.as_str()
}

fn time_at(v: &Value, path: &[&str]) -> Option<DateTime<Utc>> {
    str_at(v, path).and_then(parse_time)
}

/// Parse an RFC 3339 Kubernetes timestamp.
pub fn parse_time(s: &str) -> Option<DateTime<Utc>> {
    DateTime::parse_from_rfc3339(s)
        .ok()
        .map(|t| t.with_timezone(&Utc))
}

impl<'a> TerraformView<'a> {
    pub fn new(obj: &'a Value) -> Self {
        Self { obj }
    }

    pub fn raw(&self) -> &'a Value {
        self.obj
    }

    pub fn name(&self) -> &'a str {
        str_at(self.obj, &["metadata", "name"]).unwrap_or_default()
    }

    pub fn namespace(&self) -> &'a str {
        str_at(self.obj, &["metadata", "namespace"]).unwrap_or_default()
    }

    pub fn uid(&self) -> &'a str {
        str_at(self.obj, &["metadata", "uid"]).unwrap_or_default()
    }

    pub fn label(&self, key: &str) -> Option<&'a str> {
        self.obj.get("metadata")?.get("labels")?.get(key)?.as_str()
    }

    pub fn annotation(&self, key: &str) -> Option<&'a str> {
        self.obj
            .get("metadata")?
            .get("annotations")?
            .get(key)?
            .as_str()
    }

    /// Helm release the CR belongs to (label), empty when unlabelled.
    pub fn release(&self) -> &'a str {
        self.label(RELEASE_LABEL).unwrap_or_default()
    }

    /// Module name (label), falling back to the CR name for adopted CRs without the label.
    pub fn module(&self) -> &'a str {
        self.label(MODULE_LABEL).unwrap_or_else(|| self.name())
    }

    pub fn created_at(&self) -> Option<DateTime<Utc>> {
        time_at(self.obj, &["metadata", "creationTimestamp"])
    }

    pub fn deletion_timestamp(&self) -> Option<DateTime<Utc>> {
        time_at(self.obj, &["metadata", "deletionTimestamp"])
    }

    pub fn is_deleting(&self) -> bool {
        self.obj
            .get("metadata")
            .and_then(|m| m.get("deletionTimestamp"))
            .is_some_and(|v| !v.is_null())
    }

    pub fn finalizers(&self) -> Vec<&'a str> {
        self.obj
            .get("metadata")
            .and_then(|m| m.get("finalizers"))
            .and_then(Value::as_array)
            .map(|a| a.iter().filter_map(Value::as_str).collect())
            .unwrap_or_default()
    }

    /// Names of the CRs that hold a `tf.dependency.of.<name>` finalizer on this one.
    pub fn dependant_finalizers(&self) -> Vec<&'a str> {
        self.finalizers()
            .into_iter()
            .filter_map(|f| f.strip_prefix(DEPENDENCY_FINALIZER_PREFIX))
            .collect()
    }

    pub fn generation(&self) -> i64 {
        self.obj
            .get("metadata")
            .and_then(|m| m.get("generation"))
            .and_then(Value::as_i64)
            .unwrap_or(0)
    }

    pub fn spec(&self) -> Option<&'a Value> {
        self.obj.get("spec")
    }

    pub fn status(&self) -> Option<&'a Value> {
        self.obj.get("status")
    }

    pub fn suspended(&self) -> bool {
        self.obj
            .get("spec")
            .and_then(|s| s.get("suspend"))
            .and_then(Value::as_bool)
            .unwrap_or(false)
    }

    pub fn approve_plan(&self) -> &'a str {
        str_at(self.obj, &["spec", "approvePlan"]).unwrap_or_default()
    }

    pub fn plan_only(&self) -> bool {
        self.obj
            .get("spec")
            .and_then(|s| s.get("planOnly"))
            .and_then(Value::as_bool)
            .unwrap_or(false)
    }

    pub fn destroy_on_deletion(&self) -> bool {
        self.obj
            .get("spec")
            .and_then(|s| s.get("destroyResourcesOnDeletion"))
            .and_then(Value::as_bool)
            .unwrap_or(false)
    }

    pub fn workspace(&self) -> &'a str {
        str_at(self.obj, &["spec", "workspace"])
            .filter(|w| !w.is_empty())
            .unwrap_or("default")
    }

    /// `spec.serviceAccountName`, defaulting like the CRD does.
    pub fn runner_service_account(&self) -> &'a str {
        str_at(self.obj, &["spec", "serviceAccountName"])
            .filter(|s| !s.is_empty())
            .unwrap_or(DEFAULT_RUNNER_SA)
    }

    pub fn observed_generation(&self) -> i64 {
        self.status()
            .and_then(|s| s.get("observedGeneration"))
            .and_then(Value::as_i64)
            .unwrap_or(0)
    }

    fn raw_conditions(&self) -> &'a [Value] {
        self.status()
            .and_then(|s| s.get("conditions"))
            .and_then(Value::as_array)
            .map(Vec::as_slice)
            .unwrap_or_default()
    }

    fn to_condition(c: &Value) -> Condition {
        Condition {
            type_: str_at(c, &["type"]).unwrap_or_default().to_owned(),
            status: str_at(c, &["status"]).unwrap_or_default().to_owned(),
            reason: str_at(c, &["reason"]).unwrap_or_default().to_owned(),
            message: str_at(c, &["message"]).unwrap_or_default().to_owned(),
            last_transition_time: time_at(c, &["lastTransitionTime"]),
        }
    }

    pub fn conditions(&self) -> Vec<Condition> {
        self.raw_conditions()
            .iter()
            .map(Self::to_condition)
            .collect()
    }

    pub fn condition(&self, type_: &str) -> Option<Condition> {
        self.raw_conditions()
            .iter()
            .find(|c| str_at(c, &["type"]) == Some(type_))
            .map(Self::to_condition)
    }

    pub fn pending_plan(&self) -> &'a str {
        str_at(self.obj, &["status", "plan", "pending"]).unwrap_or_default()
    }

    pub fn lock_pending(&self) -> &'a str {
        str_at(self.obj, &["status", "lock", "pending"]).unwrap_or_default()
    }

    pub fn last_applied_revision(&self) -> &'a str {
        str_at(self.obj, &["status", "lastAppliedRevision"]).unwrap_or_default()
    }

    pub fn last_attempted_revision(&self) -> &'a str {
        str_at(self.obj, &["status", "lastAttemptedRevision"]).unwrap_or_default()
    }

    pub fn last_planned_revision(&self) -> &'a str {
        str_at(self.obj, &["status", "lastPlannedRevision"]).unwrap_or_default()
    }

    pub fn last_plan_at(&self) -> Option<DateTime<Utc>> {
        time_at(self.obj, &["status", "lastPlanAt"])
    }

    pub fn last_drift_detected_at(&self) -> Option<DateTime<Utc>> {
        time_at(self.obj, &["status", "lastDriftDetectedAt"])
    }

    pub fn last_handled_reconcile_at(&self) -> &'a str {
        str_at(self.obj, &["status", "lastHandledReconcileAt"]).unwrap_or_default()
    }

    /// `spec.sourceRef` as (kind, name, namespace); namespace defaults to the CR's.
    pub fn source_ref(&self) -> Option<(&'a str, &'a str, &'a str)> {
        let r = self.spec()?.get("sourceRef")?;
        let kind = str_at(r, &["kind"])?;
        let name = str_at(r, &["name"])?;
        let ns = str_at(r, &["namespace"])
            .filter(|n| !n.is_empty())
            .unwrap_or_else(|| self.namespace());
        Some((kind, name, ns))
    }

    /// `spec.varsFrom` / `spec.backendConfigsFrom` entries as (kind, name, optional).
    pub fn refs_from(&self, field: &str) -> Vec<(&'a str, &'a str, bool)> {
        self.spec()
            .and_then(|s| s.get(field))
            .and_then(Value::as_array)
            .map(|a| {
                a.iter()
                    .filter_map(|r| {
                        Some((
                            str_at(r, &["kind"])?,
                            str_at(r, &["name"])?,
                            r.get("optional").and_then(Value::as_bool).unwrap_or(false),
                        ))
                    })
                    .collect()
            })
            .unwrap_or_default()
    }

    /// `spec.dependsOn[].name` (same-namespace dependencies).
    pub fn depends_on(&self) -> Vec<&'a str> {
        self.spec()
            .and_then(|s| s.get("dependsOn"))
            .and_then(Value::as_array)
            .map(|a| a.iter().filter_map(|d| str_at(d, &["name"])).collect())
            .unwrap_or_default()
    }

    /// The guard's progress annotation, when present and parseable.
    pub fn guard_progress(&self) -> Option<GuardProgress> {
        self.annotation(PROGRESS_ANNOTATION)
            .and_then(|s| serde_json::from_str(s).ok())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn reads_defaults_from_an_empty_object() {
        let v = json!({"metadata": {"name": "a", "namespace": "ns"}});
        let t = TerraformView::new(&v);
        assert_eq!(t.module(), "a");
        assert_eq!(t.runner_service_account(), "tf-runner");
        assert_eq!(t.workspace(), "default");
        assert!(!t.is_deleting());
        assert!(t.conditions().is_empty());
        assert_eq!(t.source_ref(), None);
    }

    #[test]
    fn reads_refs_progress_and_finalizers() {
        let v = json!({
            "metadata": {"name": "a", "namespace": "ns",
                "labels": {"tfops.dev/module": "db", "tfops.dev/release": "r"},
                "annotations": {"tfops.dev/guard-progress": "{\"attempts\":2,\"phase\":\"retrying\",\"extra\":1}"},
                "finalizers": ["finalizers.tf.contrib.fluxcd.io", "tf.dependency.of.app"]},
            "spec": {"sourceRef": {"kind": "OCIRepository", "name": "src"},
                "varsFrom": [{"kind": "Secret", "name": "v", "optional": true}],
                "dependsOn": [{"name": "net"}]}
        });
        let t = TerraformView::new(&v);
        assert_eq!(t.module(), "db");
        assert_eq!(t.release(), "r");
        assert_eq!(t.source_ref(), Some(("OCIRepository", "src", "ns")));
        assert_eq!(t.refs_from("varsFrom"), vec![("Secret", "v", true)]);
        assert_eq!(t.depends_on(), vec!["net"]);
        assert_eq!(t.dependant_finalizers(), vec!["app"]);
        let p = t.guard_progress().unwrap_or_default();
        assert_eq!(p.attempts, 2);
        assert_eq!(p.phase.as_deref(), Some("retrying"));
    }
}
