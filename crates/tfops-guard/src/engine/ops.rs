//! `engine::ops` — every write the guard makes to a `Terraform` CR, each one request (plus
//! conflict retries): un-suspend, delete (background propagation), reconcile request,
//! orphan patch, force-unlock patch, finalizer strip (JSON patch guarded by a `test` op), and
//! the ledger record gathered from the CR plus its outputs / tfstate Secrets.

use std::collections::BTreeMap;

use k8s_openapi::api::core::v1::Secret;
use kube::api::{
    ApiResource, DeleteParams, DynamicObject, GroupVersionKind, ListParams, Patch, PatchParams,
    PropagationPolicy,
};
use kube::{Api, Client};
use serde_json::{json, Value};

use crate::ledger::{
    self, LedgerDecision, LedgerEntry, LedgerRecord, ObjectRef, RecordedObject, TerraformSnapshot,
    VarsFromRecord,
};
use crate::tfobj;

/// Field manager for every guard patch.
pub const FIELD_MANAGER: &str = "tfops-guard";

/// How many times a finalizer strip is retried after a conflict / failed `test`.
const STRIP_ATTEMPTS: usize = 5;

/// Errors of one guard operation on one CR.
#[derive(Debug, thiserror::Error)]
pub enum OpError {
    #[error("{op} Terraform {namespace}/{name}: {source}")]
    Api {
        op: &'static str,
        namespace: String,
        name: String,
        #[source]
        source: kube::Error,
    },
    #[error("stripping finalizers of Terraform {namespace}/{name}: still conflicting after {STRIP_ATTEMPTS} attempts")]
    Conflict { namespace: String, name: String },
    #[error(transparent)]
    Ledger(#[from] ledger::LedgerError),
}

/// HTTP status of an API error, if any.
pub fn status_code(e: &kube::Error) -> Option<u16> {
    match e {
        kube::Error::Api(s) => Some(s.code),
        _ => None,
    }
}

fn pp() -> PatchParams {
    PatchParams {
        field_manager: Some(FIELD_MANAGER.to_owned()),
        ..PatchParams::default()
    }
}

/// The `Terraform` API in `namespace`.
pub fn tf_api(client: &Client, namespace: &str) -> Api<DynamicObject> {
    Api::namespaced_with(client.clone(), namespace, &tfobj::api_resource())
}

/// Merge-patch a CR. `None` when it is already gone (404).
pub async fn merge_patch(
    api: &Api<DynamicObject>,
    op: &'static str,
    namespace: &str,
    name: &str,
    patch: &Value,
) -> Result<Option<DynamicObject>, OpError> {
    match api.patch(name, &pp(), &Patch::Merge(patch)).await {
        Ok(o) => Ok(Some(o)),
        Err(e) if status_code(&e) == Some(404) => Ok(None),
        Err(source) => Err(OpError::Api {
            op,
            namespace: namespace.to_owned(),
            name: name.to_owned(),
            source,
        }),
    }
}

/// Build a merge patch that sets annotations (`None` value removes one) and spec fields.
pub fn annotations_patch(annotations: &[(&str, Option<&str>)], spec: Option<Value>) -> Value {
    let mut ann = serde_json::Map::new();
    for (k, v) in annotations {
        ann.insert(
            (*k).to_owned(),
            v.map_or(Value::Null, |v| Value::String(v.to_owned())),
        );
    }
    let mut root = serde_json::Map::new();
    if !ann.is_empty() {
        root.insert("metadata".to_owned(), json!({ "annotations": ann }));
    }
    if let Some(spec) = spec {
        root.insert("spec".to_owned(), spec);
    }
    Value::Object(root)
}

/// DELETE with background propagation. Returns the object when it stays (finalizers hold it,
/// deletionTimestamp set), `None` when it is gone (or was already).
pub async fn delete(
    api: &Api<DynamicObject>,
    namespace: &str,
    name: &str,
) -> Result<Option<DynamicObject>, OpError> {
    let dp = DeleteParams {
        propagation_policy: Some(PropagationPolicy::Background),
        ..DeleteParams::default()
    };
    match api.delete(name, &dp).await {
        Ok(either) => Ok(either.left()),
        Err(e) if status_code(&e) == Some(404) => Ok(None),
        Err(source) => Err(OpError::Api {
            op: "deleting",
            namespace: namespace.to_owned(),
            name: name.to_owned(),
            source,
        }),
    }
}

/// Finalizers the guard strips on force-remove: the controller's own and every
/// `tf.dependency.of.*` (foreign finalizers are kept).
pub fn stripped_finalizers(finalizers: &[String]) -> Vec<String> {
    finalizers
        .iter()
        .filter(|f| {
            *f != tfops_api::names::TF_FINALIZER
                && !f.starts_with(tfops_api::names::TF_DEPENDENCY_OF_PREFIX)
        })
        .cloned()
        .collect()
}

/// JSON patch replacing `finalizers` by `keep`, guarded by a `test` of the current list so a
/// concurrent change (the controller finishing, a dependant adding its finalizer) is never
/// overwritten.
pub fn finalizer_patch(
    current: &[String],
    keep: &[String],
) -> Result<json_patch::Patch, serde_json::Error> {
    let ops = if current.is_empty() {
        json!([])
    } else {
        json!([
            {"op": "test", "path": "/metadata/finalizers", "value": current},
            {"op": "replace", "path": "/metadata/finalizers", "value": keep},
        ])
    };
    serde_json::from_value(ops)
}

/// Strip finalizers chosen by `keep_fn` from the CR `name`, starting from `current` (a recent
/// read), retrying on conflict / failed test with a fresh GET. Returns the CR after the patch
/// (`None` if gone).
pub async fn strip_finalizers(
    api: &Api<DynamicObject>,
    namespace: &str,
    name: &str,
    mut current: Option<DynamicObject>,
    keep_fn: impl Fn(&[String]) -> Vec<String>,
) -> Result<Option<DynamicObject>, OpError> {
    let aerr = |op, source| OpError::Api {
        op,
        namespace: namespace.to_owned(),
        name: name.to_owned(),
        source,
    };
    for _ in 0..STRIP_ATTEMPTS {
        let obj = match current.take() {
            Some(o) => o,
            None => match api.get(name).await {
                Ok(o) => o,
                Err(e) if status_code(&e) == Some(404) => return Ok(None),
                Err(e) => return Err(aerr("reading", e)),
            },
        };
        let fins: Vec<String> = obj.metadata.finalizers.clone().unwrap_or_default();
        let keep = keep_fn(&fins);
        if keep == fins {
            return Ok(Some(obj));
        }
        let patch = finalizer_patch(&fins, &keep)
            .map_err(|e| aerr("building finalizer patch for", kube::Error::SerdeError(e)))?;
        match api.patch(name, &pp(), &Patch::<()>::Json(patch)).await {
            Ok(o) => return Ok(Some(o)),
            Err(e) if status_code(&e) == Some(404) => return Ok(None),
            // 409 conflict or 422 failed `test`: re-read and try again.
            Err(e) if matches!(status_code(&e), Some(409) | Some(422)) => continue,
            Err(e) => return Err(aerr("stripping finalizers of", e)),
        }
    }
    Err(OpError::Conflict {
        namespace: namespace.to_owned(),
        name: name.to_owned(),
    })
}

/// What the guard knows when it writes a ledger entry.
#[derive(Debug, Clone)]
pub struct LedgerFacts {
    pub release: String,
    pub reason: String,
    pub message: String,
    pub class: Option<String>,
    pub attempts: u32,
    pub decision: LedgerDecision,
    pub first_failure_at: Option<chrono::DateTime<chrono::Utc>>,
    pub decided_at: chrono::DateTime<chrono::Utc>,
}

fn snapshot(tf: &DynamicObject) -> TerraformSnapshot {
    let v = tfobj::view(tf);
    TerraformSnapshot {
        name: v.name().to_owned(),
        labels: tf.metadata.labels.clone().unwrap_or_default(),
        annotations: tf.metadata.annotations.clone().unwrap_or_default(),
        spec: v.spec().cloned().unwrap_or(Value::Null),
    }
}

pub async fn secret_data(
    client: &Client,
    namespace: &str,
    name: &str,
) -> Result<Option<BTreeMap<String, Vec<u8>>>, kube::Error> {
    match Api::<Secret>::namespaced(client.clone(), namespace)
        .get(name)
        .await
    {
        Ok(s) => Ok(Some(
            s.data
                .unwrap_or_default()
                .into_iter()
                .map(|(k, v)| (k, v.0))
                .collect(),
        )),
        Err(e) if matches!(status_code(&e), Some(404) | Some(403)) => Ok(None),
        Err(e) => Err(e),
    }
}

/// The `tfstate` key of the in-cluster state Secret `name` (the kubernetes backend's gzip
/// JSON) with the Secret's resourceVersion; `None` when the Secret, or its `tfstate` key, is
/// absent or not readable (403).
pub async fn tfstate(
    client: &Client,
    namespace: &str,
    name: &str,
) -> Result<Option<(String, Vec<u8>)>, kube::Error> {
    match Api::<Secret>::namespaced(client.clone(), namespace)
        .get(name)
        .await
    {
        Ok(s) => {
            let version = s.metadata.resource_version.unwrap_or_default();
            Ok(s.data
                .and_then(|mut d| d.remove("tfstate"))
                .map(|b| (version, b.0)))
        }
        Err(e) if matches!(status_code(&e), Some(404) | Some(403)) => Ok(None),
        Err(e) => Err(e),
    }
}

/// The ClusterRole tofu-controller's runner RoleBindings grant.
pub const RUNNER_CLUSTER_ROLE: &str = "tf-runner-role";
/// Flux source API group.
pub const SOURCE_GROUP: &str = "source.toolkit.fluxcd.io";

/// Plural of a Flux source kind (`GitRepository` → `gitrepositories`, `Bucket` → `buckets`).
pub fn source_plural(kind: &str) -> String {
    let k = kind.to_ascii_lowercase();
    match k.strip_suffix('y') {
        Some(stem) => format!("{stem}ies"),
        None => format!("{k}s"),
    }
}

fn api_resource(group: &str, version: &str, kind: &str, plural: &str) -> ApiResource {
    ApiResource::from_gvk_with_plural(&GroupVersionKind::gvk(group, version, kind), plural)
}

/// GET an object as JSON; `None` when absent or forbidden (the reason goes to `missing`).
async fn get_json(
    client: &Client,
    ar: &ApiResource,
    namespace: &str,
    name: &str,
    missing: &mut Vec<String>,
) -> Option<Value> {
    let api: Api<DynamicObject> = Api::namespaced_with(client.clone(), namespace, ar);
    match api.get(name).await {
        Ok(o) => serde_json::to_value(o).ok(),
        Err(e) => {
            let why = match status_code(&e) {
                Some(404) => "not found".to_owned(),
                Some(403) => "forbidden to the guard".to_owned(),
                _ => e.to_string(),
            };
            missing.push(format!("{} {namespace}/{name}: {why}", ar.kind));
            None
        }
    }
}

/// Everything a later destroy needs besides the CR: the Source, the runner ServiceAccount and
/// RoleBinding, the `varsFrom` objects (data separately). Absent / unreadable pieces are named
/// in `not_recorded`; reading never fails the ledger write (the entry matters more).
async fn gather_dependencies(
    client: &Client,
    tf: &DynamicObject,
    release: &str,
    entry: &mut LedgerEntry,
    vars: &mut BTreeMap<usize, BTreeMap<String, Vec<u8>>>,
) {
    let v = tfobj::view(tf);
    let ns = v.namespace();
    let spec = v.spec().cloned().unwrap_or(Value::Null);
    let mut missing = Vec::new();

    // Source.
    let sref = &spec["sourceRef"];
    if let (Some(kind), Some(name)) = (sref["kind"].as_str(), sref["name"].as_str()) {
        let sns = sref["namespace"]
            .as_str()
            .filter(|s| !s.is_empty())
            .unwrap_or(ns);
        let mut found = None;
        let mut notes = Vec::new();
        for version in ["v1", "v1beta2"] {
            let ar = api_resource(SOURCE_GROUP, version, kind, &source_plural(kind));
            let mut note = Vec::new();
            if let Some(o) = get_json(client, &ar, sns, name, &mut note).await {
                found = Some((o, version));
                break;
            }
            notes.extend(note);
        }
        entry.source_ref = Some(ObjectRef {
            api_version: found
                .as_ref()
                .map(|(_, ver)| format!("{SOURCE_GROUP}/{ver}"))
                .unwrap_or_default(),
            kind: kind.to_owned(),
            name: name.to_owned(),
            namespace: sns.to_owned(),
        });
        match found {
            Some((o, _)) => entry.source = Some(RecordedObject::from_object(&o, release)),
            None => missing.extend(notes.into_iter().take(1)),
        }
    }

    // Runner ServiceAccount and its RoleBinding to tf-runner-role.
    let sa_name = spec["serviceAccountName"]
        .as_str()
        .filter(|s| !s.is_empty())
        .unwrap_or("tf-runner")
        .to_owned();
    let sa_ar = api_resource("", "v1", "ServiceAccount", "serviceaccounts");
    if let Some(o) = get_json(client, &sa_ar, ns, &sa_name, &mut missing).await {
        entry.service_account = Some(RecordedObject::from_object(&o, release));
    }
    let rb_ar = api_resource(
        "rbac.authorization.k8s.io",
        "v1",
        "RoleBinding",
        "rolebindings",
    );
    let rbs: Api<DynamicObject> = Api::namespaced_with(client.clone(), ns, &rb_ar);
    match rbs.list(&ListParams::default()).await {
        Ok(list) => {
            let binding = list
                .items
                .into_iter()
                .filter_map(|o| serde_json::to_value(o).ok())
                .find(|rb| {
                    rb["roleRef"]["kind"] == "ClusterRole"
                        && rb["roleRef"]["name"] == RUNNER_CLUSTER_ROLE
                        && rb["subjects"].as_array().is_some_and(|subs| {
                            subs.iter().any(|s| {
                                s["kind"] == "ServiceAccount"
                                    && s["name"] == sa_name.as_str()
                                    && s["namespace"].as_str().unwrap_or(ns) == ns
                            })
                        })
                });
            match binding {
                Some(rb) => entry.role_binding = Some(RecordedObject::from_object(&rb, release)),
                None => missing.push(format!(
                    "RoleBinding in {ns} of ServiceAccount {sa_name} to ClusterRole {RUNNER_CLUSTER_ROLE}: not found"
                )),
            }
        }
        Err(e) => missing.push(format!("RoleBindings in {ns}: {e}")),
    }

    // varsFrom objects.
    let items = spec["varsFrom"].as_array().cloned().unwrap_or_default();
    for item in items {
        let kind = item["kind"].as_str().unwrap_or("Secret").to_owned();
        let name = item["name"].as_str().unwrap_or_default().to_owned();
        let mut rec = VarsFromRecord {
            kind: kind.clone(),
            name: name.clone(),
            optional: item["optional"].as_bool().unwrap_or(false),
            ..VarsFromRecord::default()
        };
        let ar = if kind == "ConfigMap" {
            api_resource("", "v1", "ConfigMap", "configmaps")
        } else {
            api_resource("", "v1", "Secret", "secrets")
        };
        if let Some(o) = get_json(client, &ar, ns, &name, &mut missing).await {
            let mut data: BTreeMap<String, Vec<u8>> = BTreeMap::new();
            if kind == "ConfigMap" {
                if let Some(m) = o["data"].as_object() {
                    for (k, v) in m {
                        data.insert(
                            k.clone(),
                            v.as_str().unwrap_or_default().as_bytes().to_vec(),
                        );
                    }
                }
                if let Some(m) = o["binaryData"].as_object() {
                    for (k, v) in m {
                        if let Ok(b) = serde_json::from_value::<k8s_openapi::ByteString>(v.clone())
                        {
                            data.insert(k.clone(), b.0);
                        }
                    }
                }
            } else {
                if let Ok(secret) = serde_json::from_value::<Secret>(o.clone()) {
                    data = secret
                        .data
                        .unwrap_or_default()
                        .into_iter()
                        .map(|(k, v)| (k, v.0))
                        .collect();
                }
                rec.secret_type = o["type"].as_str().map(str::to_owned);
            }
            rec.labels = RecordedObject::from_object(&o, release).labels;
            rec.copied = true;
            vars.insert(entry.vars_from.len(), data);
        }
        entry.vars_from.push(rec);
    }
    entry.not_recorded = missing;
}

/// Gather the ledger record for `tf`: the entry plus copies of the outputs Secret, (when the
/// state lives in-cluster) the tfstate Secret, and what a later destroy needs (Source,
/// runner ServiceAccount / RoleBinding, `varsFrom` objects).
pub async fn gather_record(
    client: &Client,
    tf: &DynamicObject,
    facts: &LedgerFacts,
) -> Result<LedgerRecord, OpError> {
    let v = tfobj::view(tf);
    let ns = v.namespace();
    let aerr = |source| OpError::Api {
        op: "reading Secrets for the ledger entry of",
        namespace: ns.to_owned(),
        name: v.name().to_owned(),
        source,
    };
    let outputs = match v.outputs_secret() {
        Some(s) => secret_data(client, ns, s)
            .await
            .map_err(aerr)?
            .unwrap_or_default(),
        None => BTreeMap::new(),
    };
    let tfstate_name = ledger::tfstate_secret_name(v.workspace(), v.state_secret_suffix());
    let tfstate = if v.state_in_cluster() {
        secret_data(client, ns, &tfstate_name).await.map_err(aerr)?
    } else {
        None
    };
    let mut entry = LedgerEntry {
        release: facts.release.clone(),
        namespace: ns.to_owned(),
        name: v.name().to_owned(),
        uid: v.uid().to_owned(),
        module: v.module().to_owned(),
        terraform: snapshot(tf),
        inventory: tfobj::inventory(v),
        outputs_secret: v.outputs_secret().map(str::to_owned),
        tfstate_secret: tfstate_name,
        tfstate_copied: tfstate.is_some(),
        reason: facts.reason.clone(),
        message: facts.message.clone(),
        class: facts.class.clone(),
        attempts: facts.attempts,
        decision: facts.decision,
        first_failure_at: facts.first_failure_at,
        decided_at: facts.decided_at,
        cleanup: ledger::Cleanup::default(),
        source: None,
        source_ref: None,
        service_account: None,
        role_binding: None,
        vars_from: Vec::new(),
        tfstate_sha256: BTreeMap::new(),
        tfstate_parts: Vec::new(),
        not_recorded: Vec::new(),
    };
    let mut vars = BTreeMap::new();
    gather_dependencies(client, tf, &facts.release, &mut entry, &mut vars).await;
    Ok(LedgerRecord {
        entry,
        outputs,
        tfstate: tfstate.unwrap_or_default(),
        vars,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn source_plurals() {
        assert_eq!(source_plural("GitRepository"), "gitrepositories");
        assert_eq!(source_plural("OCIRepository"), "ocirepositories");
        assert_eq!(source_plural("Bucket"), "buckets");
    }

    #[test]
    fn strips_only_controller_finalizers() {
        let f = vec![
            tfops_api::names::TF_FINALIZER.to_owned(),
            "tf.dependency.of.app".to_owned(),
            "example.com/keep".to_owned(),
        ];
        assert_eq!(stripped_finalizers(&f), vec!["example.com/keep".to_owned()]);
    }

    #[test]
    fn finalizer_patch_tests_before_replacing() {
        let cur = vec![tfops_api::names::TF_FINALIZER.to_owned()];
        let p = serde_json::to_value(finalizer_patch(&cur, &[]).unwrap()).unwrap();
        assert_eq!(p[0]["op"], "test");
        assert_eq!(p[0]["value"], json!([tfops_api::names::TF_FINALIZER]));
        assert_eq!(p[1]["op"], "replace");
        assert_eq!(p[1]["value"], json!([]));
    }

    #[test]
    fn annotation_patch_sets_and_removes() {
        let p = annotations_patch(
            &[("a/b", Some("1")), ("c", None)],
            Some(json!({"suspend": false})),
        );
        assert_eq!(
            p,
            json!({"metadata": {"annotations": {"a/b": "1", "c": null}}, "spec": {"suspend": false}})
        );
    }
}
