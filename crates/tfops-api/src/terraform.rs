//! `terraform` — the one read-only view over a tofu-controller `Terraform` object
//! (`infra.contrib.fluxcd.io/v1alpha2`), used by the guard (its engine and its machine's
//! observation) and by `status` / `doctor` / `orphans`.
//!
//! The view reads through [`ObjectSource`]: implemented here for a whole object held as JSON
//! (`&serde_json::Value`); the guard implements it for its typed `DynamicObject` (metadata
//! typed, spec/status JSON) so neither has to convert. Everything tolerates missing fields: a
//! CR that has never been reconciled has no `status` at all. Defaults follow the CRD
//! (`serviceAccountName: tf-runner`, `workspace: default`, `destroyResourcesOnDeletion: false`).

use std::marker::PhantomData;

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use serde_json::Value;

use crate::names::{
    is_controller_finalizer, LABEL_MODULE, LABEL_RELEASE, TF_DEFAULT_RUNNER_SA,
    TF_DEPENDENCY_OF_PREFIX, TF_KIND,
};
use crate::progress::{Progress, PROGRESS_ANNOTATION};

/// What the view needs of an object: metadata fields, and `spec` / `status` as JSON.
pub trait ObjectSource<'a>: Copy {
    /// A string field of `metadata` (`name`, `namespace`, `uid`).
    fn meta_str(self, field: &str) -> Option<&'a str>;
    /// One entry of `metadata.labels` (`map = "labels"`) or `metadata.annotations`.
    fn meta_map(self, map: &str, key: &str) -> Option<&'a str>;
    /// `metadata.finalizers`.
    fn finalizers(self) -> Vec<&'a str>;
    /// `metadata.generation` (0 when absent).
    fn generation(self) -> i64;
    /// `metadata.creationTimestamp`.
    fn created_at(self) -> Option<DateTime<Utc>>;
    /// `metadata.deletionTimestamp`.
    fn deletion_timestamp(self) -> Option<DateTime<Utc>>;
    /// Whether `metadata.deletionTimestamp` is set (even if unreadable).
    fn deleting(self) -> bool;
    /// A top-level body field: `spec` or `status`.
    fn body(self, field: &str) -> Option<&'a Value>;
}

/// Parse an RFC 3339 Kubernetes timestamp.
pub fn parse_time(s: &str) -> Option<DateTime<Utc>> {
    DateTime::parse_from_rfc3339(s)
        .ok()
        .map(|t| t.with_timezone(&Utc))
}

fn str_at<'a>(v: &'a Value, path: &[&str]) -> Option<&'a str> {
    let mut cur = v;
    for p in path {
        cur = cur.get(*p)?;
    }
    cur.as_str()
}

impl<'a> ObjectSource<'a> for &'a Value {
    fn meta_str(self, field: &str) -> Option<&'a str> {
        str_at(self, &["metadata", field])
    }
    fn meta_map(self, map: &str, key: &str) -> Option<&'a str> {
        str_at(self, &["metadata", map, key])
    }
    fn finalizers(self) -> Vec<&'a str> {
        self.get("metadata")
            .and_then(|m| m.get("finalizers"))
            .and_then(Value::as_array)
            .map(|a| a.iter().filter_map(Value::as_str).collect())
            .unwrap_or_default()
    }
    fn generation(self) -> i64 {
        self.get("metadata")
            .and_then(|m| m.get("generation"))
            .and_then(Value::as_i64)
            .unwrap_or(0)
    }
    fn created_at(self) -> Option<DateTime<Utc>> {
        str_at(self, &["metadata", "creationTimestamp"]).and_then(parse_time)
    }
    fn deletion_timestamp(self) -> Option<DateTime<Utc>> {
        str_at(self, &["metadata", "deletionTimestamp"]).and_then(parse_time)
    }
    fn deleting(self) -> bool {
        self.get("metadata")
            .and_then(|m| m.get("deletionTimestamp"))
            .is_some_and(|v| !v.is_null())
    }
    fn body(self, field: &str) -> Option<&'a Value> {
        self.get(field).filter(|v| !v.is_null())
    }
}

/// A reference to another object (`varsFrom`, `backendConfigsFrom`, `sourceRef`, `dependsOn`),
/// its namespace defaulted to the CR's.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct ObjectRef {
    pub kind: String,
    pub namespace: String,
    pub name: String,
    /// `optional: true` references never block deletion.
    #[serde(skip_serializing_if = "std::ops::Not::not")]
    pub optional: bool,
}

impl std::fmt::Display for ObjectRef {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{} {}/{}", self.kind, self.namespace, self.name)
    }
}

/// Status of a condition (`metav1.ConditionStatus`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub enum ConditionStatus {
    True,
    False,
    /// `Unknown`, or anything unreadable.
    Unknown,
}

impl ConditionStatus {
    /// Read `True` / `False`; anything else is `Unknown`.
    pub fn parse(s: &str) -> Self {
        match s {
            "True" => ConditionStatus::True,
            "False" => ConditionStatus::False,
            _ => ConditionStatus::Unknown,
        }
    }

    /// The Kubernetes spelling.
    pub fn as_str(self) -> &'static str {
        match self {
            ConditionStatus::True => "True",
            ConditionStatus::False => "False",
            ConditionStatus::Unknown => "Unknown",
        }
    }
}

/// One `metav1.Condition` as tofu-controller writes it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Condition {
    pub type_: String,
    pub status: String,
    pub reason: String,
    pub message: String,
    pub last_transition_time: Option<DateTime<Utc>>,
}

impl Condition {
    /// The status, typed.
    pub fn status(&self) -> ConditionStatus {
        ConditionStatus::parse(&self.status)
    }
}

/// Borrowed read-only view of one `Terraform` object.
#[derive(Debug, Clone, Copy)]
pub struct TerraformView<'a, S: ObjectSource<'a> = &'a Value> {
    obj: S,
    _life: PhantomData<&'a ()>,
}

impl<'a> TerraformView<'a, &'a Value> {
    /// View a whole object held as JSON.
    pub fn new(obj: &'a Value) -> Self {
        TerraformView::of(obj)
    }

    /// The object as it is.
    pub fn raw(&self) -> &'a Value {
        self.obj
    }
}

impl<'a, S: ObjectSource<'a>> TerraformView<'a, S> {
    /// View any [`ObjectSource`].
    pub fn of(obj: S) -> Self {
        TerraformView {
            obj,
            _life: PhantomData,
        }
    }

    pub fn name(&self) -> &'a str {
        self.obj.meta_str("name").unwrap_or_default()
    }
    pub fn namespace(&self) -> &'a str {
        self.obj.meta_str("namespace").unwrap_or_default()
    }
    pub fn uid(&self) -> &'a str {
        self.obj.meta_str("uid").unwrap_or_default()
    }
    pub fn label(&self, key: &str) -> Option<&'a str> {
        self.obj.meta_map("labels", key)
    }
    pub fn annotation(&self, key: &str) -> Option<&'a str> {
        self.obj.meta_map("annotations", key)
    }
    /// Helm release the CR belongs to (label), empty when unlabelled.
    pub fn release(&self) -> &'a str {
        self.label(LABEL_RELEASE).unwrap_or_default()
    }
    /// Module name (label), falling back to the CR name for adopted CRs without the label.
    pub fn module(&self) -> &'a str {
        self.label(LABEL_MODULE).unwrap_or_else(|| self.name())
    }
    pub fn created_at(&self) -> Option<DateTime<Utc>> {
        self.obj.created_at()
    }
    pub fn deletion_timestamp(&self) -> Option<DateTime<Utc>> {
        self.obj.deletion_timestamp()
    }
    /// Whether the object has a deletionTimestamp.
    pub fn deleting(&self) -> bool {
        self.obj.deleting()
    }
    pub fn generation(&self) -> i64 {
        self.obj.generation()
    }
    pub fn finalizers(&self) -> Vec<&'a str> {
        self.obj.finalizers()
    }
    /// Whether any tofu-controller finalizer (own or `tf.dependency.of.*`) is present.
    pub fn has_controller_finalizers(&self) -> bool {
        self.finalizers().into_iter().any(is_controller_finalizer)
    }
    /// Names of the CRs that hold a `tf.dependency.of.<name>` finalizer on this one.
    pub fn dependant_finalizers(&self) -> Vec<&'a str> {
        self.finalizers()
            .into_iter()
            .filter_map(|f| f.strip_prefix(TF_DEPENDENCY_OF_PREFIX))
            .collect()
    }

    pub fn spec(&self) -> Option<&'a Value> {
        self.obj.body("spec")
    }
    pub fn status(&self) -> Option<&'a Value> {
        self.obj.body("status")
    }
    fn spec_str(&self, path: &[&str]) -> Option<&'a str> {
        self.spec().and_then(|s| str_at(s, path))
    }
    fn spec_bool(&self, field: &str) -> bool {
        self.spec()
            .and_then(|s| s.get(field))
            .and_then(Value::as_bool)
            .unwrap_or(false)
    }
    fn status_str(&self, path: &[&str]) -> Option<&'a str> {
        self.status()
            .and_then(|s| str_at(s, path))
            .filter(|s| !s.is_empty())
    }

    pub fn suspended(&self) -> bool {
        self.spec_bool("suspend")
    }
    /// `spec.destroyResourcesOnDeletion` (CRD default false).
    pub fn destroy_on_deletion(&self) -> bool {
        self.spec_bool("destroyResourcesOnDeletion")
    }
    pub fn plan_only(&self) -> bool {
        self.spec_bool("planOnly")
    }
    /// `spec.approvePlan`, empty when unset.
    pub fn approve_plan(&self) -> &'a str {
        self.spec_str(&["approvePlan"]).unwrap_or_default()
    }
    /// `spec.workspace` as written (None when unset or empty).
    pub fn workspace(&self) -> Option<&'a str> {
        self.spec_str(&["workspace"]).filter(|w| !w.is_empty())
    }
    /// The Terraform workspace in effect (`default` when unset).
    pub fn workspace_or_default(&self) -> &'a str {
        self.workspace().unwrap_or("default")
    }
    /// `spec.serviceAccountName`, defaulting like the CRD does.
    pub fn runner_service_account(&self) -> &'a str {
        self.spec_str(&["serviceAccountName"])
            .filter(|s| !s.is_empty())
            .unwrap_or(TF_DEFAULT_RUNNER_SA)
    }
    /// `spec.writeOutputsToSecret.name`.
    pub fn outputs_secret(&self) -> Option<&'a str> {
        self.spec_str(&["writeOutputsToSecret", "name"])
            .filter(|s| !s.is_empty())
    }
    /// `spec.tfstate` when set.
    pub fn tfstate_spec(&self) -> Option<&'a Value> {
        self.spec()
            .and_then(|s| s.get("tfstate"))
            .filter(|v| !v.is_null())
    }
    /// Suffix of the in-cluster tfstate Secret (tofu-controller's kubernetes backend
    /// `secret_suffix`): the CR's name only when `spec.backendConfig` is absent; with a
    /// `backendConfig`, its `secretSuffix` as it is, even empty
    /// (`controllers/tf_controller_backend.go` v0.16.5, lines 89–103 vs 111–126).
    pub fn state_secret_suffix(&self) -> &'a str {
        match self.spec().and_then(|s| s.get("backendConfig")) {
            None | Some(Value::Null) => self.name(),
            Some(b) => str_at(b, &["secretSuffix"]).unwrap_or(""),
        }
    }
    /// Whether the state lives in-cluster (no `backendConfig` with custom config / cloud).
    pub fn state_in_cluster(&self) -> bool {
        let Some(spec) = self.spec() else { return true };
        if spec.get("cloud").is_some_and(|c| !c.is_null()) {
            return false;
        }
        match spec.get("backendConfig") {
            None | Some(Value::Null) => true,
            Some(b) => {
                let disabled = b.get("disable").and_then(Value::as_bool).unwrap_or(false);
                let custom = b
                    .get("customConfiguration")
                    .and_then(Value::as_str)
                    .is_some_and(|c| !c.trim().is_empty());
                !disabled && !custom
            }
        }
    }
    /// `spec.sourceRef`, its namespace defaulted to the CR's.
    pub fn source_ref(&self) -> Option<ObjectRef> {
        let r = self.spec()?.get("sourceRef")?;
        Some(ObjectRef {
            kind: str_at(r, &["kind"]).unwrap_or("").to_owned(),
            namespace: str_at(r, &["namespace"])
                .filter(|s| !s.is_empty())
                .unwrap_or(self.namespace())
                .to_owned(),
            name: str_at(r, &["name"]).unwrap_or("").to_owned(),
            optional: false,
        })
    }
    fn refs(&self, field: &str) -> Vec<ObjectRef> {
        self.spec()
            .and_then(|s| s.get(field))
            .and_then(Value::as_array)
            .map(|items| {
                items
                    .iter()
                    .map(|r| ObjectRef {
                        kind: str_at(r, &["kind"]).unwrap_or("").to_owned(),
                        namespace: self.namespace().to_owned(),
                        name: str_at(r, &["name"]).unwrap_or("").to_owned(),
                        optional: r.get("optional").and_then(Value::as_bool).unwrap_or(false),
                    })
                    .collect()
            })
            .unwrap_or_default()
    }
    /// `spec.varsFrom[]`.
    pub fn vars_from(&self) -> Vec<ObjectRef> {
        self.refs("varsFrom")
    }
    /// `spec.backendConfigsFrom[]`.
    pub fn backend_configs_from(&self) -> Vec<ObjectRef> {
        self.refs("backendConfigsFrom")
    }
    /// `spec.dependsOn[]` (namespace defaulted to the CR's).
    pub fn depends_on(&self) -> Vec<ObjectRef> {
        self.spec()
            .and_then(|s| s.get("dependsOn"))
            .and_then(Value::as_array)
            .map(|items| {
                items
                    .iter()
                    .map(|r| ObjectRef {
                        kind: TF_KIND.to_owned(),
                        namespace: str_at(r, &["namespace"])
                            .filter(|s| !s.is_empty())
                            .unwrap_or(self.namespace())
                            .to_owned(),
                        name: str_at(r, &["name"]).unwrap_or("").to_owned(),
                        optional: false,
                    })
                    .collect()
            })
            .unwrap_or_default()
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
            last_transition_time: str_at(c, &["lastTransitionTime"]).and_then(parse_time),
        }
    }
    /// Every condition.
    pub fn conditions(&self) -> Vec<Condition> {
        self.raw_conditions()
            .iter()
            .map(Self::to_condition)
            .collect()
    }
    /// A condition by type.
    pub fn condition(&self, type_: &str) -> Option<Condition> {
        self.raw_conditions()
            .iter()
            .find(|c| str_at(c, &["type"]) == Some(type_))
            .map(Self::to_condition)
    }
    /// A condition by type as borrowed (status, reason, message).
    pub fn condition_text(&self, type_: &str) -> Option<(&'a str, &'a str, &'a str)> {
        self.raw_conditions()
            .iter()
            .find(|c| str_at(c, &["type"]) == Some(type_))
            .map(|c| {
                (
                    str_at(c, &["status"]).unwrap_or(""),
                    str_at(c, &["reason"]).unwrap_or(""),
                    str_at(c, &["message"]).unwrap_or(""),
                )
            })
    }
    /// The `Ready` condition as borrowed (status, reason, message).
    pub fn ready_condition(&self) -> Option<(&'a str, &'a str, &'a str)> {
        self.condition_text("Ready")
    }
    /// The latest `lastTransitionTime` over all conditions.
    pub fn last_condition_change(&self) -> Option<DateTime<Utc>> {
        self.raw_conditions()
            .iter()
            .filter_map(|c| str_at(c, &["lastTransitionTime"]).and_then(parse_time))
            .max()
    }

    /// `status.plan.pending`, None when empty.
    pub fn pending_plan(&self) -> Option<&'a str> {
        self.status_str(&["plan", "pending"])
    }
    /// `status.lock.pending`, None when empty.
    pub fn lock_pending(&self) -> Option<&'a str> {
        self.status_str(&["lock", "pending"])
    }
    pub fn last_applied_revision(&self) -> Option<&'a str> {
        self.status_str(&["lastAppliedRevision"])
    }
    pub fn last_attempted_revision(&self) -> Option<&'a str> {
        self.status_str(&["lastAttemptedRevision"])
    }
    pub fn last_planned_revision(&self) -> Option<&'a str> {
        self.status_str(&["lastPlannedRevision"])
    }
    pub fn last_plan_at(&self) -> Option<DateTime<Utc>> {
        self.status_str(&["lastPlanAt"]).and_then(parse_time)
    }
    pub fn last_drift_detected_at(&self) -> Option<DateTime<Utc>> {
        self.status_str(&["lastDriftDetectedAt"])
            .and_then(parse_time)
    }
    /// `status.lastHandledReconcileAt`, None when empty.
    pub fn last_handled_reconcile_at(&self) -> Option<&'a str> {
        self.status_str(&["lastHandledReconcileAt"])
    }
    /// `status.inventory.entries` as JSON.
    pub fn inventory_entries(&self) -> Option<&'a Vec<Value>> {
        self.status()
            .and_then(|s| s.get("inventory"))
            .and_then(|i| i.get("entries"))
            .and_then(Value::as_array)
    }
    /// The guard's progress annotation, when present and readable.
    pub fn guard_progress(&self) -> Option<Progress> {
        self.annotation(PROGRESS_ANNOTATION)
            .and_then(|s| serde_json::from_str(s).ok())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::names::TF_FINALIZER;
    use crate::progress::Phase;
    use serde_json::json;

    fn sample() -> Value {
        json!({
            "apiVersion": "infra.contrib.fluxcd.io/v1alpha2", "kind": "Terraform",
            "metadata": {"name": "db", "namespace": "shop", "uid": "u1", "generation": 3,
                "creationTimestamp": "2026-11-26T12:00:00Z",
                "deletionTimestamp": "2026-11-26T12:10:00Z",
                "labels": {"tfops.dev/module": "database", "tfops.dev/release": "r"},
                "annotations": {"tfops.dev/guard-progress": "{\"attempts\":2,\"phase\":\"deleting\",\"extra\":1}"},
                "finalizers": [TF_FINALIZER, "tf.dependency.of.app", "kubernetes"]},
            "spec": {"sourceRef": {"kind": "GitRepository", "name": "src"},
                "dependsOn": [{"name": "net"}, {"name": "iam", "namespace": "sec"}],
                "varsFrom": [{"kind": "Secret", "name": "v", "optional": true}],
                "destroyResourcesOnDeletion": true, "approvePlan": "auto",
                "writeOutputsToSecret": {"name": "db-out"}},
            "status": {"observedGeneration": 2, "lastHandledReconcileAt": "t1",
                "lock": {"pending": ""}, "plan": {"pending": "plan-main-abc"},
                "inventory": {"entries": [{"n": "x"}]},
                "conditions": [
                    {"type": "Ready", "status": "False", "reason": "TFExecApplyFailed",
                     "message": "boom", "lastTransitionTime": "2026-11-26T12:11:00Z"},
                    {"type": "Apply", "status": "Unknown", "reason": "Progressing",
                     "message": "", "lastTransitionTime": "2026-11-26T12:12:00Z"}]}
        })
    }

    #[test]
    fn reads_metadata_spec_and_status() {
        let obj = sample();
        let v = TerraformView::new(&obj);
        assert_eq!((v.name(), v.namespace(), v.uid()), ("db", "shop", "u1"));
        assert_eq!(
            (v.module(), v.release(), v.generation()),
            ("database", "r", 3)
        );
        assert!(v.deleting() && v.deletion_timestamp().is_some() && v.created_at().is_some());
        assert!(v.has_controller_finalizers());
        assert_eq!(v.dependant_finalizers(), vec!["app"]);
        assert!(v.destroy_on_deletion() && !v.suspended() && !v.plan_only());
        assert_eq!(v.approve_plan(), "auto");
        assert_eq!(v.workspace(), None);
        assert_eq!(v.workspace_or_default(), "default");
        assert_eq!(v.runner_service_account(), "tf-runner");
        assert_eq!(v.outputs_secret(), Some("db-out"));
        assert_eq!(v.state_secret_suffix(), "db");
        assert!(v.state_in_cluster());
        let src = v.source_ref().unwrap();
        assert_eq!(src.to_string(), "GitRepository shop/src");
        let deps: Vec<String> = v.depends_on().iter().map(|r| r.to_string()).collect();
        assert_eq!(deps, ["Terraform shop/net", "Terraform sec/iam"]);
        assert!(v.vars_from()[0].optional);
        assert_eq!(v.observed_generation(), 2);
        assert_eq!(
            v.ready_condition(),
            Some(("False", "TFExecApplyFailed", "boom"))
        );
        assert_eq!(
            v.condition("Apply").unwrap().status(),
            ConditionStatus::Unknown
        );
        assert_eq!(v.conditions().len(), 2);
        assert_eq!(
            v.last_condition_change(),
            parse_time("2026-11-26T12:12:00Z")
        );
        assert_eq!(v.lock_pending(), None);
        assert_eq!(v.pending_plan(), Some("plan-main-abc"));
        assert_eq!(v.last_handled_reconcile_at(), Some("t1"));
        assert_eq!(v.inventory_entries().map(Vec::len), Some(1));
        let p = v.guard_progress().unwrap();
        assert_eq!((p.attempts, p.phase), (2, Phase::Deleting));
    }

    #[test]
    fn an_empty_object_reads_as_defaults() {
        let obj = json!({});
        let v = TerraformView::new(&obj);
        assert_eq!(v.name(), "");
        assert!(!v.deleting() && v.finalizers().is_empty() && v.status().is_none());
        assert!(v.source_ref().is_none() && v.depends_on().is_empty());
        assert!(v.ready_condition().is_none() && v.guard_progress().is_none());
        assert!(v.state_in_cluster());
    }

    #[test]
    fn backend_config_decides_the_state_secret() {
        let obj = json!({"metadata": {"name": "x"},
            "spec": {"backendConfig": {"secretSuffix": "custom"}}});
        assert_eq!(TerraformView::new(&obj).state_secret_suffix(), "custom");
        let obj = json!({"metadata": {"name": "x"},
            "spec": {"backendConfig": {"customConfiguration": "backend \"s3\" {}"}}});
        assert!(!TerraformView::new(&obj).state_in_cluster());
        let obj = json!({"metadata": {"name": "x"}, "spec": {"cloud": {"organization": "o"}}});
        assert!(!TerraformView::new(&obj).state_in_cluster());
    }
}
