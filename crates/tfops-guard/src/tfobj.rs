//! `tfobj` — typed read access to a tofu-controller `Terraform` CR held as a
//! [`kube::api::DynamicObject`] (API resource, finalizer names, spec / status accessors).
//! Pure: no I/O.

use kube::api::{ApiResource, DynamicObject, GroupVersionKind};

/// API group of tofu-controller CRs.
pub const GROUP: &str = "infra.contrib.fluxcd.io";
/// Served storage version we talk to.
pub const VERSION: &str = "v1alpha2";
/// Kind.
pub const KIND: &str = "Terraform";
/// Plural resource name.
pub const PLURAL: &str = "terraforms";
/// tofu-controller's own finalizer (stays until destroy succeeds).
pub const FINALIZER: &str = "finalizers.tf.contrib.fluxcd.io";
/// Prefix of the finalizers a dependant puts on its dependencies.
pub const DEPENDENCY_OF_PREFIX: &str = "tf.dependency.of.";
/// Annotation that triggers a reconcile (echoed in `status.lastHandledReconcileAt`).
pub const REQUESTED_AT: &str = "reconcile.fluxcd.io/requestedAt";
/// Release label on every generated / adopted object.
pub const LABEL_RELEASE: &str = "tfops.dev/release";
/// Module label.
pub const LABEL_MODULE: &str = "tfops.dev/module";
/// Persisted guard progress annotation.
pub const PROGRESS_ANNOTATION: &str = "tfops.dev/guard-progress";

/// The `ApiResource` for `terraforms.infra.contrib.fluxcd.io/v1alpha2`.
pub fn api_resource() -> ApiResource {
    ApiResource::from_gvk_with_plural(&GroupVersionKind::gvk(GROUP, VERSION, KIND), PLURAL)
}

/// Whether a Flux source kind is one we know (`GitRepository`, `OCIRepository`, `Bucket`),
/// returning its `ApiResource` (source.toolkit.fluxcd.io/v1).
pub fn source_api_resource(kind: &str) -> Option<ApiResource> {
    let plural = match kind {
        "GitRepository" => "gitrepositories",
        "OCIRepository" => "ocirepositories",
        "Bucket" => "buckets",
        _ => return None,
    };
    Some(ApiResource::from_gvk_with_plural(
        &GroupVersionKind::gvk("source.toolkit.fluxcd.io", "v1", kind),
        plural,
    ))
}

/// A reference to another object (`varsFrom`, `backendConfigsFrom`, `sourceRef`, `dependsOn`).
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash, serde::Serialize)]
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

/// Read-only view of a `Terraform` CR.
#[derive(Debug, Clone, Copy)]
pub struct TfView<'a>(pub &'a DynamicObject);

fn str_at<'a>(v: &'a serde_json::Value, path: &[&str]) -> Option<&'a str> {
    let mut cur = v;
    for p in path {
        cur = cur.get(p)?;
    }
    cur.as_str()
}

impl<'a> TfView<'a> {
    pub fn name(&self) -> &'a str {
        self.0.metadata.name.as_deref().unwrap_or("")
    }
    pub fn namespace(&self) -> &'a str {
        self.0.metadata.namespace.as_deref().unwrap_or("")
    }
    pub fn uid(&self) -> &'a str {
        self.0.metadata.uid.as_deref().unwrap_or("")
    }
    pub fn spec(&self) -> Option<&'a serde_json::Value> {
        self.0.data.get("spec")
    }
    pub fn status(&self) -> Option<&'a serde_json::Value> {
        self.0.data.get("status")
    }
    pub fn annotation(&self, key: &str) -> Option<&'a str> {
        self.0
            .metadata
            .annotations
            .as_ref()
            .and_then(|a| a.get(key))
            .map(String::as_str)
    }
    pub fn label(&self, key: &str) -> Option<&'a str> {
        self.0
            .metadata
            .labels
            .as_ref()
            .and_then(|a| a.get(key))
            .map(String::as_str)
    }
    /// `tfops.dev/module`, falling back to the CR name (adopted CRs).
    pub fn module(&self) -> &'a str {
        self.label(LABEL_MODULE).unwrap_or_else(|| self.name())
    }
    pub fn finalizers(&self) -> &'a [String] {
        self.0.metadata.finalizers.as_deref().unwrap_or(&[])
    }
    /// Whether any tofu-controller finalizer (own or `tf.dependency.of.*`) is present.
    pub fn has_controller_finalizers(&self) -> bool {
        self.finalizers()
            .iter()
            .any(|f| f == FINALIZER || f.starts_with(DEPENDENCY_OF_PREFIX))
    }
    /// Names of dependants holding `tf.dependency.of.<dependant>` finalizers on this CR.
    pub fn dependant_finalizers(&self) -> Vec<&'a str> {
        self.finalizers()
            .iter()
            .filter_map(|f| f.strip_prefix(DEPENDENCY_OF_PREFIX))
            .collect()
    }
    pub fn deleting(&self) -> bool {
        self.0.metadata.deletion_timestamp.is_some()
    }
    pub fn suspended(&self) -> bool {
        self.spec()
            .and_then(|s| s.get("suspend"))
            .and_then(serde_json::Value::as_bool)
            .unwrap_or(false)
    }
    /// `spec.destroyResourcesOnDeletion` (tofu-controller default false).
    pub fn destroy_on_deletion(&self) -> bool {
        self.spec()
            .and_then(|s| s.get("destroyResourcesOnDeletion"))
            .and_then(serde_json::Value::as_bool)
            .unwrap_or(false)
    }
    pub fn workspace(&self) -> Option<&'a str> {
        self.spec().and_then(|s| str_at(s, &["workspace"]))
    }
    /// `spec.serviceAccountName`, default `tf-runner`.
    pub fn runner_service_account(&self) -> &'a str {
        self.spec()
            .and_then(|s| str_at(s, &["serviceAccountName"]))
            .filter(|s| !s.is_empty())
            .unwrap_or("tf-runner")
    }
    pub fn outputs_secret(&self) -> Option<&'a str> {
        self.spec()
            .and_then(|s| str_at(s, &["writeOutputsToSecret", "name"]))
            .filter(|s| !s.is_empty())
    }
    /// Suffix of the in-cluster tfstate Secret (tofu-controller's kubernetes backend
    /// `secret_suffix`): the CR's name only when `spec.backendConfig` is absent; with a
    /// `backendConfig`, its `secretSuffix` as it is, even empty
    /// (`controllers/tf_controller_backend.go` v0.16.5, lines 89–103 vs 111–126).
    pub fn state_secret_suffix(&self) -> &'a str {
        match self.spec().and_then(|s| s.get("backendConfig")) {
            None | Some(serde_json::Value::Null) => self.name(),
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
            None | Some(serde_json::Value::Null) => true,
            Some(b) => {
                let disabled = b.get("disable").and_then(|d| d.as_bool()).unwrap_or(false);
                let custom = b
                    .get("customConfiguration")
                    .and_then(|c| c.as_str())
                    .is_some_and(|c| !c.trim().is_empty());
                !disabled && !custom
            }
        }
    }
    /// `spec.sourceRef`.
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
            .and_then(|v| v.as_array())
            .map(|items| {
                items
                    .iter()
                    .map(|r| ObjectRef {
                        kind: str_at(r, &["kind"]).unwrap_or("").to_owned(),
                        namespace: self.namespace().to_owned(),
                        name: str_at(r, &["name"]).unwrap_or("").to_owned(),
                        optional: r.get("optional").and_then(|o| o.as_bool()).unwrap_or(false),
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
    /// `spec.dependsOn[].name` (same-namespace dependencies; others carry their namespace).
    pub fn depends_on(&self) -> Vec<ObjectRef> {
        self.spec()
            .and_then(|s| s.get("dependsOn"))
            .and_then(|v| v.as_array())
            .map(|items| {
                items
                    .iter()
                    .map(|r| ObjectRef {
                        kind: KIND.to_owned(),
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
    /// `status.lock.pending`.
    pub fn lock_pending(&self) -> Option<&'a str> {
        self.status()
            .and_then(|s| str_at(s, &["lock", "pending"]))
            .filter(|s| !s.is_empty())
    }
    /// `status.lastHandledReconcileAt`.
    pub fn last_handled_reconcile_at(&self) -> Option<&'a str> {
        self.status()
            .and_then(|s| str_at(s, &["lastHandledReconcileAt"]))
    }
    /// The `Ready` condition: (status, reason, message).
    pub fn ready_condition(&self) -> Option<(&'a str, &'a str, &'a str)> {
        self.condition("Ready")
    }
    /// A condition by type: (status, reason, message).
    pub fn condition(&self, type_: &str) -> Option<(&'a str, &'a str, &'a str)> {
        let conds = self.status()?.get("conditions")?.as_array()?;
        conds
            .iter()
            .find(|c| c.get("type").and_then(|t| t.as_str()) == Some(type_))
            .map(|c| {
                (
                    str_at(c, &["status"]).unwrap_or(""),
                    str_at(c, &["reason"]).unwrap_or(""),
                    str_at(c, &["message"]).unwrap_or(""),
                )
            })
    }
    /// `status.inventory.entries`.
    pub fn inventory(&self) -> Vec<crate::ledger::InventoryEntry> {
        self.status()
            .and_then(|s| s.get("inventory"))
            .and_then(|i| i.get("entries"))
            .and_then(|e| serde_json::from_value(e.clone()).ok())
            .unwrap_or_default()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn tf(spec: serde_json::Value, status: serde_json::Value) -> DynamicObject {
        serde_json::from_value(serde_json::json!({
            "apiVersion": "infra.contrib.fluxcd.io/v1alpha2",
            "kind": "Terraform",
            "metadata": {"name": "shop-db", "namespace": "shop"},
            "spec": spec,
            "status": status,
        }))
        .unwrap()
    }

    #[test]
    fn tfstate_secret_follows_workspace_and_secret_suffix() {
        let plain = tf(serde_json::json!({}), serde_json::json!({}));
        let v = TfView(&plain);
        assert_eq!(
            crate::ledger::tfstate_secret_name(v.workspace(), v.state_secret_suffix()),
            "tfstate-default-shop-db"
        );
        let suffixed = tf(
            serde_json::json!({"workspace": "prod", "backendConfig": {"secretSuffix": "shop-orders-db", "inClusterConfig": true}}),
            serde_json::json!({}),
        );
        let v = TfView(&suffixed);
        assert_eq!(
            crate::ledger::tfstate_secret_name(v.workspace(), v.state_secret_suffix()),
            "tfstate-prod-shop-orders-db"
        );
        assert!(v.state_in_cluster());
        // Upstream falls back to the CR name only when backendConfig is nil, not when its
        // secretSuffix is empty (the backend then gets secret_suffix = "").
        let empty_suffix = tf(
            serde_json::json!({"backendConfig": {"inClusterConfig": true}}),
            serde_json::json!({}),
        );
        let v = TfView(&empty_suffix);
        assert_eq!(
            crate::ledger::tfstate_secret_name(v.workspace(), v.state_secret_suffix()),
            "tfstate-default-"
        );
    }

    #[test]
    fn inventory_is_read_with_the_crd_keys() {
        let o = tf(
            serde_json::json!({}),
            serde_json::json!({"inventory": {"entries": [{"n": "this", "t": "aws_s3_bucket", "id": "arn:aws:s3:::b"}]}}),
        );
        let inv = TfView(&o).inventory();
        assert_eq!(inv.len(), 1);
        assert_eq!(inv[0].name, "this");
        assert_eq!(inv[0].type_, "aws_s3_bucket");
        assert_eq!(inv[0].identifier, "arn:aws:s3:::b");
    }
}
