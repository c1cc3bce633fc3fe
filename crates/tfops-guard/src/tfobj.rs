//! `tfobj` — the guard's side of the shared `Terraform` view: [`view`] reads a
//! [`kube::api::DynamicObject`] (typed metadata, JSON spec/status) through
//! [`tfops_api::TerraformView`], plus the `ApiResource`s the guard's kube calls need and the
//! inventory read with the ledger's types. Pure: no I/O.

use k8s_openapi::apimachinery::pkg::apis::meta::v1::Time;
use kube::api::{ApiResource, DynamicObject, GroupVersionKind};
use tfops_api::names::{SOURCE_GROUP, TF_GROUP, TF_KIND, TF_PLURAL, TF_VERSION};
use tfops_api::terraform::{ObjectSource, TerraformView};

pub use tfops_api::ObjectRef;

/// The `ApiResource` for `terraforms.infra.contrib.fluxcd.io/v1alpha2`.
pub fn api_resource() -> ApiResource {
    ApiResource::from_gvk_with_plural(
        &GroupVersionKind::gvk(TF_GROUP, TF_VERSION, TF_KIND),
        TF_PLURAL,
    )
}

/// Whether a Flux source kind is one we know (`GitRepository`, `OCIRepository`, `Bucket`),
/// returning its `ApiResource` (source.toolkit.fluxcd.io/v1).
pub fn source_api_resource(kind: &str) -> Option<ApiResource> {
    let plural = tfops_api::names::source_plural(kind)?;
    Some(ApiResource::from_gvk_with_plural(
        &GroupVersionKind::gvk(SOURCE_GROUP, "v1", kind),
        plural,
    ))
}

/// A `DynamicObject` as an [`ObjectSource`] of the shared view.
#[derive(Debug, Clone, Copy)]
pub struct DynSource<'a>(pub &'a DynamicObject);

/// The guard's view of a `Terraform` CR.
pub type TfView<'a> = TerraformView<'a, DynSource<'a>>;

/// View a `Terraform` CR held as a `DynamicObject`.
pub fn view(obj: &DynamicObject) -> TfView<'_> {
    TerraformView::of(DynSource(obj))
}

fn to_utc(t: &Time) -> Option<chrono::DateTime<chrono::Utc>> {
    tfops_api::terraform::parse_time(&t.0.to_string())
}

impl<'a> ObjectSource<'a> for DynSource<'a> {
    fn meta_str(self, field: &str) -> Option<&'a str> {
        let m = &self.0.metadata;
        match field {
            "name" => m.name.as_deref(),
            "namespace" => m.namespace.as_deref(),
            "uid" => m.uid.as_deref(),
            "resourceVersion" => m.resource_version.as_deref(),
            _ => None,
        }
    }
    fn meta_map(self, map: &str, key: &str) -> Option<&'a str> {
        let m = &self.0.metadata;
        let map = match map {
            "labels" => m.labels.as_ref(),
            "annotations" => m.annotations.as_ref(),
            _ => None,
        };
        map.and_then(|m| m.get(key)).map(String::as_str)
    }
    fn finalizers(self) -> Vec<&'a str> {
        self.0
            .metadata
            .finalizers
            .as_deref()
            .unwrap_or(&[])
            .iter()
            .map(String::as_str)
            .collect()
    }
    fn generation(self) -> i64 {
        self.0.metadata.generation.unwrap_or(0)
    }
    fn created_at(self) -> Option<chrono::DateTime<chrono::Utc>> {
        self.0.metadata.creation_timestamp.as_ref().and_then(to_utc)
    }
    fn deletion_timestamp(self) -> Option<chrono::DateTime<chrono::Utc>> {
        self.0.metadata.deletion_timestamp.as_ref().and_then(to_utc)
    }
    fn deleting(self) -> bool {
        self.0.metadata.deletion_timestamp.is_some()
    }
    fn body(self, field: &str) -> Option<&'a serde_json::Value> {
        self.0.data.get(field).filter(|v| !v.is_null())
    }
}

/// `status.inventory.entries`, read with the ledger's entry type.
pub fn inventory(v: TfView<'_>) -> Vec<crate::ledger::InventoryEntry> {
    v.inventory_entries()
        .and_then(|e| serde_json::from_value(serde_json::Value::Array(e.clone())).ok())
        .unwrap_or_default()
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
        let v = view(&plain);
        assert_eq!(
            crate::ledger::tfstate_secret_name(v.workspace(), v.state_secret_suffix()),
            "tfstate-default-shop-db"
        );
        let suffixed = tf(
            serde_json::json!({"workspace": "prod", "backendConfig": {"secretSuffix": "shop-orders-db", "inClusterConfig": true}}),
            serde_json::json!({}),
        );
        let v = view(&suffixed);
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
        let v = view(&empty_suffix);
        assert_eq!(
            crate::ledger::tfstate_secret_name(v.workspace(), v.state_secret_suffix()),
            "tfstate-default-"
        );
    }

    #[test]
    fn metadata_is_read_from_the_typed_object() {
        let o: DynamicObject = serde_json::from_value(serde_json::json!({
            "apiVersion": "infra.contrib.fluxcd.io/v1alpha2", "kind": "Terraform",
            "metadata": {"name": "db", "namespace": "shop", "uid": "u",
                "deletionTimestamp": "2026-11-26T12:00:05Z",
                "labels": {"tfops.dev/module": "database"},
                "finalizers": ["finalizers.tf.contrib.fluxcd.io", "tf.dependency.of.app"]},
            "spec": {"suspend": true}
        }))
        .unwrap();
        let v = view(&o);
        assert_eq!(
            (v.name(), v.namespace(), v.uid(), v.module()),
            ("db", "shop", "u", "database")
        );
        assert!(v.deleting() && v.suspended() && v.has_controller_finalizers());
        assert_eq!(v.dependant_finalizers(), ["app"]);
        assert_eq!(
            v.deletion_timestamp(),
            tfops_api::terraform::parse_time("2026-11-26T12:00:05Z")
        );
        assert!(v.status().is_none());
    }

    #[test]
    fn inventory_is_read_with_the_crd_keys() {
        let o = tf(
            serde_json::json!({}),
            serde_json::json!({"inventory": {"entries": [{"n": "this", "t": "aws_s3_bucket", "id": "arn:aws:s3:::b"}]}}),
        );
        let inv = inventory(view(&o));
        assert_eq!(inv.len(), 1);
        assert_eq!(inv[0].name, "this");
        assert_eq!(inv[0].type_, "aws_s3_bucket");
        assert_eq!(inv[0].identifier, "arn:aws:s3:::b");
    }
}
