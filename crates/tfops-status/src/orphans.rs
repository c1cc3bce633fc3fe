//! `orphans list|show|destroy|forget`: read and operate the orphan ledger.
//!
//! `destroy` finishes a cleanup later, after `helm uninstall` deleted everything else: it
//! re-creates what tofu-controller needs for a deletion — the runner ServiceAccount and its
//! RoleBinding to `tf-runner-role`, the `varsFrom` Secrets / ConfigMaps, the Flux Source, the
//! tfstate Secret (from the ledger copy, parts joined and checksums checked) — each only when
//! absent and each labelled `tfops.dev/cleanup-of: <ledger Secret>`, then the `Terraform` CR
//! (spec as recorded, `destroyResourcesOnDeletion: true`, manual approval so nothing is
//! applied, `dependsOn` dropped because dependencies may be gone). It waits until the
//! controller has put its finalizer on the CR, deletes it and watches until it is gone or the
//! timeout ends. Every step is recorded in the entry's `cleanup` (destroying → destroyed |
//! destroy-failed). Whatever happens, everything it created is deleted again at the end (a
//! re-run adopts objects labelled for the same entry, so an interrupted run is cleaned up by
//! the next); on failure the re-created CR is first released without destroying.
//! Before creating anything it refuses, naming the missing piece, when something it cannot
//! re-create is absent (the ClusterRole `tf-runner-role`, a Source or required `varsFrom`
//! object the entry holds no copy of).

use std::collections::BTreeMap;
use std::sync::{Arc, Mutex};
use std::time::Duration;
use tfops_guard::engine::ops;

use chrono::{DateTime, Utc};
use k8s_openapi::api::core::v1::Secret;
use k8s_openapi::ByteString;
use kube::api::{DeleteParams, DynamicObject, Patch, PatchParams, PostParams, PropagationPolicy};
use kube::runtime::wait::conditions;

use crate::wait::wait_for;
use kube::{Api, Client};
use serde::Serialize;
use serde_json::{json, Value};

use crate::fetch::terraform_resource;
use crate::ledger::{
    cleanup_str, CleanupEvent, CleanupState, LedgerError, LedgerItem, LedgerRecord,
};
use crate::render::human_duration;
use tfops_api::names::TF_FINALIZER;
use tfops_api::names::{TF_GROUP, TF_VERSION};
use tfops_guard::engine::ops::{RUNNER_CLUSTER_ROLE, SOURCE_GROUP};

/// Label put on a CR re-created by `orphans destroy`: the ledger Secret it cleans up.
pub use tfops_api::names::LABEL_CLEANUP_OF as CLEANUP_OF_LABEL;

/// Errors of the orphans commands.
#[derive(Debug, thiserror::Error)]
pub enum OrphansError {
    #[error("no ledger entry named {0:?} (give the ledger Secret name or the CR name; see `helm tfops orphans list`)")]
    NotFound(String),
    #[error("{name:?} matches several ledger entries ({candidates}); give the ledger Secret name")]
    Ambiguous { name: String, candidates: String },
    #[error("Terraform {namespace}/{name} already exists (uid {uid}) and is not a cleanup of this entry; pass --name NEW to re-create it under a fresh name")]
    NameTaken {
        namespace: String,
        name: String,
        uid: String,
    },
    #[error("refusing to destroy ledger entry {entry}: cannot re-create what tofu-controller needs: {missing}")]
    CannotRecreate { entry: String, missing: String },
    #[error("{what}: {source}")]
    Api {
        what: String,
        #[source]
        source: kube::Error,
    },
    #[error(transparent)]
    Ledger(#[from] LedgerError),
    #[error("refusing to adopt ledger entry {entry}: {why}")]
    Adopt { entry: String, why: String },
    #[error("import: {0}")]
    Import(String),
    #[error("serialising: {0}")]
    Json(#[from] serde_json::Error),
    #[error("serialising YAML: {0}")]
    Yaml(String),
}

fn api_err(what: impl Into<String>) -> impl FnOnce(kube::Error) -> OrphansError {
    let what = what.into();
    move |source| OrphansError::Api { what, source }
}

/// Find an entry by ledger Secret name, or by the name of the CR it is about.
pub fn find<'a>(items: &'a [LedgerItem], name: &str) -> Result<&'a LedgerItem, OrphansError> {
    if let Some(i) = items.iter().find(|i| i.secret_name == name) {
        return Ok(i);
    }
    let by_cr: Vec<&LedgerItem> = items.iter().filter(|i| i.entry().name == name).collect();
    match by_cr.as_slice() {
        [] => Err(OrphansError::NotFound(name.to_owned())),
        [one] => Ok(one),
        many => Err(OrphansError::Ambiguous {
            name: name.to_owned(),
            candidates: many
                .iter()
                .map(|i| format!("{}/{}", i.secret_namespace, i.secret_name))
                .collect::<Vec<_>>()
                .join(", "),
        }),
    }
}

/// One row of `orphans list -o json|yaml`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct OrphanRow {
    pub ledger_namespace: String,
    pub ledger_name: String,
    pub release: String,
    pub module: String,
    pub namespace: String,
    pub name: String,
    pub decision: String,
    pub cleanup: String,
    pub reason: String,
    pub decided_at: DateTime<Utc>,
    pub resources: usize,
}

/// Rows of the list, sorted by namespace, release, CR name.
pub fn rows(items: &[LedgerItem]) -> Vec<OrphanRow> {
    let mut rows: Vec<OrphanRow> = items
        .iter()
        .map(|i| {
            let e = i.entry();
            OrphanRow {
                ledger_namespace: i.secret_namespace.clone(),
                ledger_name: i.secret_name.clone(),
                release: e.release.clone(),
                module: e.module.clone(),
                namespace: e.namespace.clone(),
                name: e.name.clone(),
                decision: e.decision.as_str().to_owned(),
                cleanup: cleanup_str(e.cleanup.state).to_owned(),
                reason: e.reason.clone(),
                decided_at: e.decided_at,
                resources: e.inventory.len(),
            }
        })
        .collect();
    rows.sort_by(|a, b| {
        (&a.namespace, &a.release, &a.name, &a.ledger_name).cmp(&(
            &b.namespace,
            &b.release,
            &b.name,
            &b.ledger_name,
        ))
    });
    rows
}

/// `orphans list` as a table (`all_namespaces` adds the NAMESPACE column).
pub fn list_table(items: &[LedgerItem], now: DateTime<Utc>, all_namespaces: bool) -> String {
    let rows = rows(items);
    if rows.is_empty() {
        return "No orphan ledger entries found.\n".to_owned();
    }
    let mut header = Vec::new();
    if all_namespaces {
        header.push("NAMESPACE");
    }
    header.extend([
        "NAME",
        "RELEASE",
        "MODULE",
        "TERRAFORM",
        "DECISION",
        "CLEANUP",
        "RESOURCES",
        "AGE",
        "REASON",
    ]);
    let mut table: Vec<Vec<String>> = vec![header.iter().map(|h| (*h).to_owned()).collect()];
    for r in &rows {
        let mut row = Vec::new();
        if all_namespaces {
            row.push(r.ledger_namespace.clone());
        }
        row.extend([
            r.ledger_name.clone(),
            r.release.clone(),
            r.module.clone(),
            format!("{}/{}", r.namespace, r.name),
            r.decision.clone(),
            r.cleanup.clone(),
            r.resources.to_string(),
            human_duration(now - r.decided_at),
            if r.reason.is_empty() {
                "-".to_owned()
            } else {
                r.reason.clone()
            },
        ]);
        table.push(row);
    }
    let cols = table[0].len();
    let widths: Vec<usize> = (0..cols)
        .map(|c| {
            table
                .iter()
                .map(|r| r[c].chars().count())
                .max()
                .unwrap_or(0)
        })
        .collect();
    let mut out = String::new();
    for row in &table {
        let line: Vec<String> = row
            .iter()
            .enumerate()
            .map(|(i, c)| {
                if i + 1 == cols {
                    c.clone()
                } else {
                    format!("{c:<w$}   ", w = widths[i])
                }
            })
            .collect();
        out.push_str(line.concat().trim_end());
        out.push('\n');
    }
    out
}

fn copied(map: &BTreeMap<String, Vec<u8>>, show: bool) -> Value {
    let mut out = serde_json::Map::new();
    for (k, v) in map {
        let shown = if show {
            Value::from(String::from_utf8_lossy(v).into_owned())
        } else {
            Value::from(format!(
                "<redacted, {} bytes; --show-secrets to print>",
                v.len()
            ))
        };
        out.insert(k.clone(), shown);
    }
    Value::Object(out)
}

/// The document `orphans show` prints: where the entry is, the entry itself, and the copied
/// outputs / tfstate data (values redacted unless `show_secrets`).
pub fn show_document(item: &LedgerItem, show_secrets: bool) -> Result<Value, OrphansError> {
    Ok(json!({
        "ledger": {"namespace": item.secret_namespace, "name": item.secret_name},
        "entry": serde_json::to_value(item.entry())?,
        "outputs": copied(&item.record.outputs, show_secrets),
        "tfstate": copied(&item.record.tfstate, show_secrets),
        "varsFrom": item
            .entry()
            .vars_from
            .iter()
            .enumerate()
            .map(|(i, v)| json!({
                "kind": v.kind,
                "name": v.name,
                "data": item.record.vars.get(&i).map(|d| copied(d, show_secrets)).unwrap_or(Value::Null),
            }))
            .collect::<Vec<_>>(),
    }))
}

/// `orphans show` as YAML.
pub fn show_yaml(item: &LedgerItem, show_secrets: bool) -> Result<String, OrphansError> {
    serde_saphyr::to_string(&show_document(item, show_secrets)?)
        .map_err(|e| OrphansError::Yaml(e.to_string()))
}

/// What `forget` prints without `--yes`.
pub fn forget_refusal(item: &LedgerItem) -> String {
    let e = item.entry();
    format!(
        "Refusing to forget ledger entry {ns}/{name} without --yes.\n\
         It is the only record of Terraform {crns}/{cr} ({decision}, cleanup {cleanup}) and of the {n} cloud resource(s) it may have left behind{copy}.\n\
         Finish the cleanup first with `helm tfops orphans destroy {name} -n {ns}`, or re-run with --yes to delete the record.\n",
        ns = item.secret_namespace,
        name = item.secret_name,
        crns = e.namespace,
        cr = e.name,
        decision = e.decision.as_str(),
        cleanup = cleanup_str(e.cleanup.state),
        n = e.inventory.len(),
        copy = if e.tfstate_copied { ", including its only copy of the tfstate" } else { "" },
    )
}

/// Delete the ledger Secret, then its tfstate part Secrets.
pub async fn forget(client: &Client, item: &LedgerItem) -> Result<(), OrphansError> {
    let api: Api<Secret> = Api::namespaced(client.clone(), &item.secret_namespace);
    api.delete(&item.secret_name, &DeleteParams::default())
        .await
        .map_err(api_err(format!(
            "deleting ledger Secret {}/{}",
            item.secret_namespace, item.secret_name
        )))?;
    let parts: std::collections::BTreeSet<&String> = item
        .entry()
        .tfstate_parts
        .iter()
        .map(|p| &p.secret)
        .collect();
    for part in parts {
        match api.delete(part, &DeleteParams::default()).await {
            Ok(_) => {}
            Err(kube::Error::Api(s)) if s.code == 404 => {}
            Err(source) => {
                return Err(OrphansError::Api {
                    what: format!(
                        "deleting ledger part Secret {}/{part}",
                        item.secret_namespace
                    ),
                    source,
                })
            }
        }
    }
    Ok(())
}

/// Options of `orphans destroy`.
#[derive(Clone)]
pub struct DestroyOptions {
    /// Re-create under this name instead of the original.
    pub name: Option<String>,
    /// Re-create in this namespace instead of the original.
    pub namespace: Option<String>,
    /// Overall bound for the controller to pick the CR up and destroy it.
    pub timeout: Duration,
    /// Only show what would be created.
    pub dry_run: bool,
    /// Wall clock for the history timestamps.
    pub clock: Arc<dyn Fn() -> DateTime<Utc> + Send + Sync>,
}

/// How `orphans destroy` ended.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum DestroyOutcome {
    /// The controller destroyed the resources and released the CR.
    Destroyed { name: String },
    /// The entry was already cleaned up; nothing done.
    AlreadyDestroyed,
    /// The destroy did not finish; recorded as destroy-failed with this message.
    Failed { message: String },
    /// `--dry-run`: the objects it would create (`Kind namespace/name`), nothing done.
    DryRun { would_create: Vec<String> },
}

/// One object `destroy` re-creates when absent (pure plan).
#[derive(Debug, Clone, PartialEq)]
pub struct Planned {
    pub api_version: String,
    pub kind: String,
    pub namespace: String,
    pub name: String,
    /// The object to create (Secret data base64 as on the wire).
    pub object: Value,
    /// Without a copy in the entry: refuse when absent (the message names it).
    pub required_present: Option<String>,
}

impl Planned {
    /// `Kind namespace/name`.
    pub fn display(&self) -> String {
        format!("{} {}/{}", self.kind, self.namespace, self.name)
    }

    fn api_resource(&self) -> kube::api::ApiResource {
        let (group, version) = match self.api_version.split_once('/') {
            Some((g, v)) => (g, v),
            None => ("", self.api_version.as_str()),
        };
        kube::api::ApiResource::from_gvk_with_plural(
            &kube::api::GroupVersionKind::gvk(group, version, &self.kind),
            &plural(&self.kind),
        )
    }
}

/// Lower-case plural of a kind (`GitRepository` → `gitrepositories`).
pub fn plural(kind: &str) -> String {
    let k = kind.to_ascii_lowercase();
    match k.strip_suffix('y') {
        Some(stem) => format!("{stem}ies"),
        None => format!("{k}s"),
    }
}

fn cleanup_labels(item: &LedgerItem) -> BTreeMap<String, String> {
    [(CLEANUP_OF_LABEL.to_owned(), item.secret_name.clone())].into()
}

/// Namespace to re-create in.
pub fn target_namespace<'a>(item: &'a LedgerItem, opts: &'a DestroyOptions) -> &'a str {
    opts.namespace.as_deref().unwrap_or(&item.entry().namespace)
}

/// Everything `destroy` re-creates besides the `Terraform` CR, in creation order (pure):
/// ServiceAccount, RoleBinding, varsFrom objects, Source, tfstate Secret.
pub fn plan_dependencies(item: &LedgerItem, ns: &str) -> Result<Vec<Planned>, OrphansError> {
    use tfops_guard::ledger::RecordedObject;
    let e = item.entry();
    let labels = cleanup_labels(item);
    let spec = &e.terraform.spec;
    let mut out = Vec::new();
    let from_recorded = |r: &RecordedObject, object: Value| Planned {
        api_version: r.api_version.clone(),
        kind: r.kind.clone(),
        namespace: ns.to_owned(),
        name: r.name.clone(),
        object,
        required_present: None,
    };

    // Runner ServiceAccount (v1 entries: a plain one of the recorded name).
    let sa_name = spec["serviceAccountName"]
        .as_str()
        .filter(|s| !s.is_empty())
        .unwrap_or("tf-runner")
        .to_owned();
    let sa = e.service_account.clone().unwrap_or_else(|| RecordedObject {
        api_version: "v1".into(),
        kind: "ServiceAccount".into(),
        name: sa_name.clone(),
        ..RecordedObject::default()
    });
    out.push(from_recorded(&sa, sa.to_object(ns, &labels)));

    // Its RoleBinding to tf-runner-role, subjects moved to the target namespace.
    let rb = e.role_binding.clone().unwrap_or_else(|| {
        let mut body = serde_json::Map::new();
        body.insert(
            "roleRef".into(),
            json!({"apiGroup": "rbac.authorization.k8s.io", "kind": "ClusterRole", "name": RUNNER_CLUSTER_ROLE}),
        );
        RecordedObject {
            api_version: "rbac.authorization.k8s.io/v1".into(),
            kind: "RoleBinding".into(),
            name: format!("{sa_name}-{RUNNER_CLUSTER_ROLE}"),
            body,
            ..RecordedObject::default()
        }
    });
    let mut rb_obj = rb.to_object(ns, &labels);
    rb_obj["subjects"] = json!([{"kind": "ServiceAccount", "name": sa_name, "namespace": ns}]);
    out.push(from_recorded(&rb, rb_obj));

    // varsFrom objects: from the copies; without one, they must exist.
    let vars_refs: Vec<tfops_guard::ledger::VarsFromRecord> = if e.vars_from.is_empty() {
        spec["varsFrom"]
            .as_array()
            .map(|a| {
                a.iter()
                    .map(|v| tfops_guard::ledger::VarsFromRecord {
                        kind: v["kind"].as_str().unwrap_or("Secret").to_owned(),
                        name: v["name"].as_str().unwrap_or_default().to_owned(),
                        optional: v["optional"].as_bool().unwrap_or(false),
                        ..Default::default()
                    })
                    .collect()
            })
            .unwrap_or_default()
    } else {
        e.vars_from.clone()
    };
    for (i, vf) in vars_refs.iter().enumerate() {
        let data = item.record.vars.get(&i);
        let mut meta_labels = vf.labels.clone();
        meta_labels.extend(labels.clone());
        let object = match (vf.kind.as_str(), data) {
            ("ConfigMap", Some(d)) => {
                let text: BTreeMap<&String, String> = d
                    .iter()
                    .map(|(k, v)| (k, String::from_utf8_lossy(v).into_owned()))
                    .collect();
                json!({"apiVersion": "v1", "kind": "ConfigMap",
                       "metadata": {"name": vf.name, "namespace": ns, "labels": meta_labels},
                       "data": text})
            }
            (_, Some(d)) => serde_json::to_value(Secret {
                metadata: kube::api::ObjectMeta {
                    name: Some(vf.name.clone()),
                    namespace: Some(ns.to_owned()),
                    labels: Some(meta_labels),
                    ..Default::default()
                },
                type_: vf.secret_type.clone(),
                data: Some(
                    d.iter()
                        .map(|(k, v)| (k.clone(), ByteString(v.clone())))
                        .collect(),
                ),
                ..Default::default()
            })?,
            _ => Value::Null,
        };
        let required_present = (object.is_null() && !vf.optional).then(|| {
            format!(
                "{} {ns}/{} (spec.varsFrom[{i}]): the ledger entry holds no copy of it",
                vf.kind, vf.name
            )
        });
        if object.is_null() && required_present.is_none() {
            continue;
        }
        out.push(Planned {
            api_version: "v1".into(),
            kind: if vf.kind == "ConfigMap" {
                "ConfigMap".into()
            } else {
                "Secret".into()
            },
            namespace: ns.to_owned(),
            name: vf.name.clone(),
            object,
            required_present,
        });
    }

    // The Flux Source.
    let sref = &spec["sourceRef"];
    let ref_ns = sref["namespace"]
        .as_str()
        .filter(|s| !s.is_empty())
        .unwrap_or(&e.namespace);
    let source_ns = if ref_ns == e.namespace { ns } else { ref_ns };
    match &e.source {
        Some(src) => {
            let mut p = from_recorded(src, src.to_object(source_ns, &labels));
            p.namespace = source_ns.to_owned();
            out.push(p);
        }
        None => {
            if let (Some(kind), Some(name)) = (sref["kind"].as_str(), sref["name"].as_str()) {
                let api_version = e
                    .source_ref
                    .as_ref()
                    .map(|r| r.api_version.clone())
                    .filter(|v| !v.is_empty())
                    .unwrap_or_else(|| format!("{SOURCE_GROUP}/v1"));
                out.push(Planned {
                    api_version,
                    kind: kind.to_owned(),
                    namespace: source_ns.to_owned(),
                    name: name.to_owned(),
                    object: Value::Null,
                    required_present: Some(format!(
                        "{kind} {source_ns}/{name} (spec.sourceRef): the ledger entry holds no copy of it"
                    )),
                });
            }
        }
    }

    // The tfstate Secret from the copy.
    if e.tfstate_copied && !item.record.tfstate.is_empty() {
        let mut secret = restored_tfstate(item);
        secret.metadata.namespace = Some(ns.to_owned());
        out.push(Planned {
            api_version: "v1".into(),
            kind: "Secret".into(),
            namespace: ns.to_owned(),
            name: e.tfstate_secret.clone(),
            object: serde_json::to_value(secret)?,
            required_present: None,
        });
    }
    Ok(out)
}

/// The `Terraform` CR `destroy` creates from an entry, in the original namespace (pure).
pub fn recreated_terraform(item: &LedgerItem, name: &str) -> Value {
    recreated_terraform_in(item, name, &item.entry().namespace)
}

/// The `Terraform` CR `destroy` creates from an entry in `namespace` (pure).
pub fn recreated_terraform_in(item: &LedgerItem, name: &str, namespace: &str) -> Value {
    let e = item.entry();
    let mut spec = e.terraform.spec.clone();
    if !spec.is_object() {
        spec = json!({});
    }
    spec["destroyResourcesOnDeletion"] = json!(true);
    // Manual approval: the re-created CR must never apply a plan before its deletion.
    spec["approvePlan"] = json!("");
    if let Some(o) = spec.as_object_mut() {
        o.remove("suspend");
        // Dependencies may be gone; finalize would then fail forever (tf.dependency.of.*).
        o.remove("dependsOn");
    }
    // A same-namespace sourceRef follows the CR to another namespace.
    if spec["sourceRef"]["namespace"].as_str() == Some(e.namespace.as_str()) {
        spec["sourceRef"]["namespace"] = json!(namespace);
    }
    if name != e.name {
        // Keep using the original state Secret (`tfstate-<ws>-<suffix>`), unless the backend
        // is custom.
        let custom = spec
            .get("backendConfig")
            .and_then(|b| b.get("customConfiguration"))
            .is_some();
        if !custom {
            let ws = spec
                .get("workspace")
                .and_then(Value::as_str)
                .filter(|w| !w.is_empty())
                .unwrap_or("default");
            let suffix = e
                .tfstate_secret
                .strip_prefix(&format!("tfstate-{ws}-"))
                .unwrap_or(&e.name)
                .to_owned();
            if !spec.get("backendConfig").is_some_and(Value::is_object) {
                spec["backendConfig"] = json!({});
            }
            spec["backendConfig"]["secretSuffix"] = json!(suffix);
        }
    }
    let mut labels: serde_json::Map<String, Value> = e
        .terraform
        .labels
        .iter()
        .map(|(k, v)| (k.clone(), Value::from(v.clone())))
        .collect();
    labels.insert(
        CLEANUP_OF_LABEL.to_owned(),
        Value::from(item.secret_name.clone()),
    );
    json!({
        "apiVersion": format!("{TF_GROUP}/{TF_VERSION}"),
        "kind": "Terraform",
        "metadata": {"name": name, "namespace": namespace, "labels": labels},
        "spec": spec,
    })
}

/// The tfstate Secret restored from the entry's copy (pure), labelled the way terraform's
/// kubernetes backend labels it.
pub fn restored_tfstate(item: &LedgerItem) -> Secret {
    let e = item.entry();
    let ws = e
        .terraform
        .spec
        .get("workspace")
        .and_then(Value::as_str)
        .filter(|w| !w.is_empty())
        .unwrap_or("default");
    let suffix = e
        .tfstate_secret
        .strip_prefix(&format!("tfstate-{ws}-"))
        .unwrap_or(&e.name);
    let labels: BTreeMap<String, String> = [
        ("app.kubernetes.io/managed-by", "terraform"),
        ("tfstate", "true"),
        ("tfstateSecretSuffix", suffix),
        ("tfstateWorkspace", ws),
        (CLEANUP_OF_LABEL, item.secret_name.as_str()),
    ]
    .into_iter()
    .map(|(k, v)| (k.to_owned(), v.to_owned()))
    .collect();
    Secret {
        metadata: kube::api::ObjectMeta {
            name: Some(e.tfstate_secret.clone()),
            namespace: Some(e.namespace.clone()),
            labels: Some(labels),
            ..Default::default()
        },
        data: Some(
            item.record
                .tfstate
                .iter()
                .map(|(k, v)| (k.clone(), ByteString(v.clone())))
                .collect(),
        ),
        ..Default::default()
    }
}

async fn record(
    client: &Client,
    item: &LedgerItem,
    state: CleanupState,
    message: String,
    opts: &DestroyOptions,
) -> Result<(), OrphansError> {
    tfops_guard::ledger::record_cleanup(
        client,
        &item.secret_namespace,
        &item.secret_name,
        CleanupEvent {
            at: (opts.clock)(),
            state,
            message,
        },
    )
    .await?;
    Ok(())
}

fn ready_message(obj: &DynamicObject) -> Option<String> {
    obj.data
        .get("status")?
        .get("conditions")?
        .as_array()?
        .iter()
        .find(|c| c.get("type").and_then(Value::as_str) == Some("Ready"))
        .map(|c| {
            format!(
                "{}: {}",
                c.get("reason").and_then(Value::as_str).unwrap_or(""),
                c.get("message").and_then(Value::as_str).unwrap_or("")
            )
        })
}

/// Refusals before anything is created: the missing pieces, named (empty: go ahead).
pub async fn preflight(client: &Client, plan: &[Planned]) -> Result<Vec<String>, OrphansError> {
    let mut missing = Vec::new();
    let roles: Api<DynamicObject> = Api::all_with(
        client.clone(),
        &kube::api::ApiResource::from_gvk_with_plural(
            &kube::api::GroupVersionKind::gvk("rbac.authorization.k8s.io", "v1", "ClusterRole"),
            "clusterroles",
        ),
    );
    if roles
        .get_opt(RUNNER_CLUSTER_ROLE)
        .await
        .map_err(api_err(format!(
            "reading ClusterRole {RUNNER_CLUSTER_ROLE}"
        )))?
        .is_none()
    {
        missing.push(format!(
            "ClusterRole {RUNNER_CLUSTER_ROLE} (cluster-scoped, installed with tofu-controller): not found; the runner pod could not run"
        ));
    }
    for p in plan {
        if let Some(why) = &p.required_present {
            let api: Api<DynamicObject> =
                Api::namespaced_with(client.clone(), &p.namespace, &p.api_resource());
            let present = api
                .get_opt(&p.name)
                .await
                .map_err(api_err(format!("reading {}", p.display())))?;
            if present.is_none() {
                missing.push(format!("{why}, and it is gone"));
            }
        }
    }
    Ok(missing)
}

/// Objects `destroy` created (or adopted from an interrupted run of the same entry).
#[derive(Default)]
struct Created(Vec<Planned>);

/// Create the planned objects that are absent; objects labelled for this entry are adopted
/// (cleaned up at the end), other existing ones are used as they are and left alone.
async fn create_missing(
    client: &Client,
    item: &LedgerItem,
    plan: &[Planned],
    created: &mut Created,
    progress: &mut (dyn FnMut(&str) + Send),
) -> Result<(), OrphansError> {
    for p in plan {
        if p.object.is_null() {
            continue;
        }
        let api: Api<DynamicObject> =
            Api::namespaced_with(client.clone(), &p.namespace, &p.api_resource());
        if let Some(existing) = api
            .get_opt(&p.name)
            .await
            .map_err(api_err(format!("reading {}", p.display())))?
        {
            let ours = existing
                .metadata
                .labels
                .as_ref()
                .and_then(|l| l.get(CLEANUP_OF_LABEL))
                == Some(&item.secret_name);
            if ours {
                created.0.push(p.clone());
            }
            progress(&format!("{} exists; using it", p.display()));
            continue;
        }
        let obj: DynamicObject = serde_json::from_value(p.object.clone())?;
        api.create(&PostParams::default(), &obj)
            .await
            .map_err(api_err(format!("creating {}", p.display())))?;
        created.0.push(p.clone());
        progress(&format!("created {}", p.display()));
    }
    Ok(())
}

/// Delete what `destroy` created, last first. Errors are collected, not fatal: every object
/// carries the cleanup label, so what is left is findable (and a re-run adopts it).
async fn delete_created(
    client: &Client,
    created: &Created,
    progress: &mut (dyn FnMut(&str) + Send),
) -> Vec<String> {
    let mut errors = Vec::new();
    for p in created.0.iter().rev() {
        let api: Api<DynamicObject> =
            Api::namespaced_with(client.clone(), &p.namespace, &p.api_resource());
        match api.delete(&p.name, &DeleteParams::background()).await {
            Ok(_) => progress(&format!("deleted {}", p.display())),
            Err(kube::Error::Api(s)) if s.code == 404 => {}
            Err(e) => errors.push(format!("deleting {}: {e}", p.display())),
        }
    }
    errors
}

/// After a destroy that did not finish: copy the current tfstate Secret (if `destroy` created
/// it and it changed) back into the ledger entry; when that fails, keep the Secret (it is
/// removed from `created`) so nothing is lost.
async fn keep_latest_state(
    client: &Client,
    item: &LedgerItem,
    ns: &str,
    created: &mut Created,
    progress: &mut (dyn FnMut(&str) + Send),
) {
    let e = item.entry();
    let Some(pos) = created
        .0
        .iter()
        .position(|p| p.kind == "Secret" && p.name == e.tfstate_secret && p.namespace == ns)
    else {
        return;
    };
    let secrets: Api<Secret> = Api::namespaced(client.clone(), ns);
    let current = match secrets.get_opt(&e.tfstate_secret).await {
        Ok(Some(s)) => s,
        Ok(None) => return,
        Err(err) => {
            progress(&format!(
                "keeping Secret {ns}/{}: cannot read it to update the ledger copy: {err}",
                e.tfstate_secret
            ));
            created.0.remove(pos);
            return;
        }
    };
    let data: BTreeMap<String, Vec<u8>> = current
        .data
        .unwrap_or_default()
        .into_iter()
        .map(|(k, v)| (k, v.0))
        .collect();
    if data == item.record.tfstate {
        return;
    }
    match tfops_guard::ledger::replace_tfstate(
        client,
        &item.secret_namespace,
        &item.secret_name,
        data,
    )
    .await
    {
        Ok(()) => progress(&format!(
            "the state changed during the attempt; ledger entry {}/{} now holds the latest copy",
            item.secret_namespace, item.secret_name
        )),
        Err(err) => {
            progress(&format!(
                "keeping Secret {ns}/{}: the state changed and the ledger copy could not be updated: {err}",
                e.tfstate_secret
            ));
            created.0.remove(pos);
        }
    }
}

/// Finish the cleanup of `item` (see the module docs). `progress` receives one line per step.
pub async fn destroy(
    client: &Client,
    item: &LedgerItem,
    opts: &DestroyOptions,
    progress: &mut (dyn FnMut(&str) + Send),
) -> Result<DestroyOutcome, OrphansError> {
    if item.cleaned_up() {
        return Ok(DestroyOutcome::AlreadyDestroyed);
    }
    // The tfstate may be kept in part Secrets: join them (checksums checked).
    let mut item = item.clone();
    tfops_guard::ledger::load_parts(client, &item.secret_namespace, &mut item.record).await?;
    let item = &item;
    let e = item.entry();
    let ns = target_namespace(item, opts).to_owned();
    let ns = ns.as_str();
    let name = opts.name.clone().unwrap_or_else(|| e.name.clone());
    let plan = plan_dependencies(item, ns)?;
    let cr = recreated_terraform_in(item, &name, ns);
    if opts.dry_run {
        let mut would: Vec<String> = plan
            .iter()
            .filter(|p| !p.object.is_null())
            .map(Planned::display)
            .collect();
        would.push(format!("Terraform {ns}/{name}"));
        return Ok(DestroyOutcome::DryRun {
            would_create: would,
        });
    }
    let api: Api<DynamicObject> = Api::namespaced_with(client.clone(), ns, &terraform_resource());

    // A CR with that name must not be someone else's.
    let existing = api
        .get_opt(&name)
        .await
        .map_err(api_err(format!("reading Terraform {ns}/{name}")))?;
    if let Some(obj) = &existing {
        let ours = obj
            .metadata
            .labels
            .as_ref()
            .and_then(|l| l.get(CLEANUP_OF_LABEL))
            == Some(&item.secret_name);
        if !ours {
            return Err(OrphansError::NameTaken {
                namespace: ns.to_owned(),
                name,
                uid: obj.metadata.uid.clone().unwrap_or_default(),
            });
        }
    }
    let missing = preflight(client, &plan).await?;
    if !missing.is_empty() {
        return Err(OrphansError::CannotRecreate {
            entry: format!("{}/{}", item.secret_namespace, item.secret_name),
            missing: missing.join("; "),
        });
    }

    record(
        client,
        item,
        CleanupState::Destroying,
        format!("re-creating Terraform {ns}/{name} and what it needs, with destroyResourcesOnDeletion: true"),
        opts,
    )
    .await?;

    let mut created = Created::default();
    let outcome = run_destroy(
        client,
        item,
        opts,
        &plan,
        &cr,
        ns,
        &name,
        existing,
        &mut created,
        progress,
    )
    .await;
    // A destroy that did not finish may have changed the state: the ledger keeps the latest
    // copy before the re-created tfstate Secret goes (if that fails, the Secret is kept).
    if !matches!(outcome, Ok(DestroyOutcome::Destroyed { .. })) {
        keep_latest_state(client, item, ns, &mut created, progress).await;
    }
    // Whatever happened: the CR is gone or released; delete everything else we made.
    let leftovers = delete_created(client, &created, progress).await;
    match outcome {
        Ok(DestroyOutcome::Destroyed { name }) if leftovers.is_empty() => {
            let message = format!("Terraform {ns}/{name} destroyed and released by the controller; the re-created objects were deleted");
            record(client, item, CleanupState::Destroyed, message, opts).await?;
            Ok(DestroyOutcome::Destroyed { name })
        }
        Ok(DestroyOutcome::Destroyed { name }) => {
            let message = format!(
                "Terraform {ns}/{name} destroyed and released by the controller; left over (label {CLEANUP_OF_LABEL}={}): {}",
                item.secret_name,
                leftovers.join("; ")
            );
            record(client, item, CleanupState::Destroyed, message, opts).await?;
            Ok(DestroyOutcome::Destroyed { name })
        }
        Ok(DestroyOutcome::Failed { message }) => {
            let message = if leftovers.is_empty() {
                message
            } else {
                format!("{message}; left over: {}", leftovers.join("; "))
            };
            record(
                client,
                item,
                CleanupState::DestroyFailed,
                message.clone(),
                opts,
            )
            .await?;
            Ok(DestroyOutcome::Failed { message })
        }
        Ok(other) => Ok(other),
        Err(err) => {
            // Best effort: the entry says why; the error goes to the caller as well.
            let _ = record(
                client,
                item,
                CleanupState::DestroyFailed,
                err.to_string(),
                opts,
            )
            .await;
            Err(err)
        }
    }
}

#[allow(clippy::too_many_arguments)]
async fn run_destroy(
    client: &Client,
    item: &LedgerItem,
    opts: &DestroyOptions,
    plan: &[Planned],
    cr: &Value,
    ns: &str,
    name: &str,
    existing: Option<DynamicObject>,
    created: &mut Created,
    progress: &mut (dyn FnMut(&str) + Send),
) -> Result<DestroyOutcome, OrphansError> {
    let api: Api<DynamicObject> = Api::namespaced_with(client.clone(), ns, &terraform_resource());
    create_missing(client, item, plan, created, progress).await?;

    let uid = match existing {
        Some(obj) => obj.metadata.uid.unwrap_or_default(),
        None => {
            let obj: DynamicObject = serde_json::from_value(cr.clone())?;
            let created = api
                .create(&PostParams::default(), &obj)
                .await
                .map_err(api_err(format!("creating Terraform {ns}/{name}")))?;
            progress(&format!("created Terraform {ns}/{name}"));
            created.metadata.uid.unwrap_or_default()
        }
    };

    // The controller must own the CR (its finalizer) before we delete it, or the deletion
    // would be immediate and nothing would be destroyed.
    let started = tokio::time::Instant::now();
    let has_finalizer = |o: Option<&DynamicObject>| {
        o.and_then(|o| o.metadata.finalizers.as_ref())
            .is_some_and(|f| f.iter().any(|f| f == TF_FINALIZER))
    };
    let owned = wait_for(api.clone(), name, has_finalizer, opts.timeout).await;
    if !matches!(owned, Ok(Some(_))) {
        // Nothing was destroyed; remove the CR we created (no finalizer: immediate).
        release(&api, name).await?;
        let _ = api.delete(name, &DeleteParams::background()).await;
        let message = format!(
            "tofu-controller did not pick up Terraform {ns}/{name} within {}; is it running?",
            human_duration(chrono::Duration::from_std(opts.timeout).unwrap_or_default())
        );
        return Ok(DestroyOutcome::Failed { message });
    }
    progress("controller picked up the CR; deleting it to destroy the resources");
    let dp = DeleteParams {
        propagation_policy: Some(PropagationPolicy::Background),
        ..DeleteParams::default()
    };
    match api.delete(name, &dp).await {
        Ok(_) => {}
        Err(kube::Error::Api(s)) if s.code == 404 => {}
        Err(source) => {
            return Err(OrphansError::Api {
                what: format!("deleting Terraform {ns}/{name}"),
                source,
            })
        }
    }

    let last = Arc::new(Mutex::new(String::new()));
    let seen = last.clone();
    let gone_cond = conditions::is_deleted(&uid);
    let watch_gone = move |o: Option<&DynamicObject>| {
        if let Some(m) = o.and_then(ready_message) {
            if let Ok(mut l) = seen.lock() {
                *l = m;
            }
        }
        kube::runtime::wait::Condition::matches_object(&gone_cond, o)
    };
    let remaining = opts.timeout.saturating_sub(started.elapsed());
    let gone = wait_for(api.clone(), name, watch_gone, remaining).await;
    if matches!(gone, Ok(Some(_))) {
        return Ok(DestroyOutcome::Destroyed {
            name: name.to_owned(),
        });
    }

    // Timed out: release the CR without destroying; the entry keeps the record.
    let last = last.lock().map(|l| l.clone()).unwrap_or_default();
    let message = format!(
        "destroy did not finish within {}{}",
        human_duration(chrono::Duration::from_std(opts.timeout).unwrap_or_default()),
        if last.is_empty() {
            String::new()
        } else {
            format!("; last status {last}")
        }
    );
    progress(&format!("{message}; releasing the re-created CR"));
    release(&api, name).await?;
    Ok(DestroyOutcome::Failed { message })
}

/// Let the re-created CR go without destroying: `destroyResourcesOnDeletion: false` first (a
/// reconcile in between must not destroy), then the guard's finalizer strip (a JSON patch
/// guarded by a `test` of the current list, retried on conflict). The ledger entry already
/// records everything about the CR.
async fn release(api: &Api<DynamicObject>, name: &str) -> Result<(), OrphansError> {
    let keep_resources = json!({"spec": {"destroyResourcesOnDeletion": false}});
    let current = match api
        .patch(
            name,
            &PatchParams::default(),
            &Patch::Merge(&keep_resources),
        )
        .await
    {
        Ok(o) => o,
        Err(kube::Error::Api(s)) if s.code == 404 => return Ok(()),
        Err(source) => {
            return Err(OrphansError::Api {
                what: format!("releasing Terraform {name}"),
                source,
            })
        }
    };
    let namespace = current.metadata.namespace.clone().unwrap_or_default();
    ops::strip_finalizers(
        api,
        &namespace,
        name,
        Some(current),
        ops::stripped_finalizers,
    )
    .await
    .map(|_| ())
    .map_err(|e| match e {
        ops::OpError::Api { source, .. } => OrphansError::Api {
            what: format!("releasing Terraform {name}"),
            source,
        },
        other => OrphansError::Api {
            what: format!("releasing Terraform {name}"),
            source: kube::Error::Service(other.to_string().into()),
        },
    })
}

/// Annotation on an exported ledger Secret whose copied values were left out.
pub use tfops_api::names::ANN_REDACTED as REDACTED_ANNOTATION;

/// `orphans export`: the entry's Secrets (the ledger Secret and its tfstate parts) as a
/// Kubernetes `List`, read-only fields dropped. Unless `show_secrets`, the copied values
/// (outputs, varsFrom data, tfstate) are emptied and the Secret is annotated
/// [`REDACTED_ANNOTATION`] (such an export documents the entry but cannot be imported).
pub async fn export(
    client: &Client,
    item: &LedgerItem,
    show_secrets: bool,
) -> Result<Value, OrphansError> {
    let api: Api<Secret> = Api::namespaced(client.clone(), &item.secret_namespace);
    let main = api.get(&item.secret_name).await.map_err(api_err(format!(
        "reading ledger Secret {}/{}",
        item.secret_namespace, item.secret_name
    )))?;
    let mut secrets = vec![main];
    let mut seen = std::collections::BTreeSet::new();
    for p in &item.entry().tfstate_parts {
        if seen.insert(p.secret.clone()) {
            secrets.push(api.get(&p.secret).await.map_err(api_err(format!(
                "reading ledger part Secret {}/{}",
                item.secret_namespace, p.secret
            )))?);
        }
    }
    Ok(export_document(secrets, show_secrets))
}

/// The export document of `secrets` (pure).
pub fn export_document(secrets: Vec<Secret>, show_secrets: bool) -> Value {
    let items: Vec<Secret> = secrets
        .into_iter()
        .map(|mut s| {
            let meta = kube::api::ObjectMeta {
                name: s.metadata.name.take(),
                namespace: s.metadata.namespace.take(),
                labels: s.metadata.labels.take(),
                annotations: s.metadata.annotations.take(),
                ..Default::default()
            };
            s.metadata = meta;
            if !show_secrets {
                if let Some(data) = s.data.as_mut() {
                    for (k, v) in data.iter_mut() {
                        if k != tfops_guard::ledger::ENTRY_KEY {
                            v.0.clear();
                        }
                    }
                }
                s.metadata
                    .annotations
                    .get_or_insert_with(BTreeMap::new)
                    .insert(REDACTED_ANNOTATION.to_owned(), "true".to_owned());
            }
            s
        })
        .collect();
    json!({"apiVersion": "v1", "kind": "List", "items": items})
}

/// `orphans import`: check an export document and turn it into the Secrets to create in
/// `namespace` (pure): not redacted, exactly one ledger Secret, parts belonging to it, the
/// tfstate checksums right. Returns (ledger Secret, parts).
pub fn import_secrets(doc: &Value, namespace: &str) -> Result<(Secret, Vec<Secret>), OrphansError> {
    let bad = |why: String| OrphansError::Import(why);
    let items = doc["items"]
        .as_array()
        .ok_or_else(|| bad("field `items` is missing: not an `orphans export` document".into()))?;
    let mut main = None;
    let mut parts = Vec::new();
    for (i, it) in items.iter().enumerate() {
        let mut s: Secret = serde_json::from_value(it.clone())
            .map_err(|e| bad(format!("items[{i}] is not a Secret: {e}")))?;
        if s.metadata
            .annotations
            .as_ref()
            .and_then(|a| a.get(REDACTED_ANNOTATION))
            .is_some()
        {
            return Err(bad(format!(
                "items[{i}] ({}) was exported redacted (annotation {REDACTED_ANNOTATION}); export again with --show-secrets",
                s.metadata.name.clone().unwrap_or_default()
            )));
        }
        s.metadata.namespace = Some(namespace.to_owned());
        match s.type_.as_deref() {
            Some(tfops_guard::ledger::LEDGER_SECRET_TYPE) if main.is_none() => main = Some(s),
            Some(tfops_guard::ledger::LEDGER_SECRET_TYPE) => {
                return Err(bad(format!("items[{i}]: a second ledger Secret")))
            }
            Some(tfops_guard::ledger::LEDGER_PART_TYPE) => parts.push(s),
            other => {
                return Err(bad(format!(
                    "items[{i}]: field `type` is {:?}, expected {:?} or {:?}",
                    other.unwrap_or(""),
                    tfops_guard::ledger::LEDGER_SECRET_TYPE,
                    tfops_guard::ledger::LEDGER_PART_TYPE
                )))
            }
        }
    }
    let main = main.ok_or_else(|| bad("no ledger Secret in `items`".into()))?;
    let mut record = LedgerRecord::from_secret(&main)?;
    let main_name = main.metadata.name.clone().unwrap_or_default();
    let by_name: BTreeMap<String, Secret> = parts
        .iter()
        .map(|p| (p.metadata.name.clone().unwrap_or_default(), p.clone()))
        .collect();
    for p in &parts {
        let owner = p
            .metadata
            .labels
            .as_ref()
            .and_then(|l| l.get(tfops_guard::ledger::LABEL_LEDGER_PART));
        if owner != Some(&main_name) {
            return Err(bad(format!(
                "part Secret {} does not belong to ledger Secret {main_name}",
                p.metadata.name.clone().unwrap_or_default()
            )));
        }
    }
    if record.parts_pending() {
        record.attach_parts(namespace, &by_name)?;
    }
    Ok((main, parts))
}

/// Create the imported Secrets (parts first); refuses when the ledger Secret exists.
pub async fn import(
    client: &Client,
    main: &Secret,
    parts: &[Secret],
) -> Result<String, OrphansError> {
    let ns = main.metadata.namespace.clone().unwrap_or_default();
    let name = main.metadata.name.clone().unwrap_or_default();
    let api: Api<Secret> = Api::namespaced(client.clone(), &ns);
    if api
        .get_metadata_opt(&name)
        .await
        .map_err(api_err(format!("reading ledger Secret {ns}/{name}")))?
        .is_some()
    {
        return Err(OrphansError::Import(format!(
            "ledger Secret {ns}/{name} already exists; `orphans forget` it first or import into another namespace"
        )));
    }
    for s in parts.iter().chain(std::iter::once(main)) {
        let n = s.metadata.name.clone().unwrap_or_default();
        api.create(&PostParams::default(), s)
            .await
            .map_err(api_err(format!("creating Secret {ns}/{n}")))?;
    }
    Ok(format!("{ns}/{name}"))
}

/// How `orphans adopt` ended.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum AdoptOutcome {
    /// The tfstate copy now backs Terraform `namespace/name` of the release.
    Adopted { namespace: String, name: String },
    /// The entry was already cleaned up; nothing done.
    AlreadyCleanedUp,
}

/// `orphans adopt NAME --release R`: hand the orphan's resources back to release `release`
/// instead of destroying them. The release's `Terraform` CR of the same module (in
/// `namespace`) gets the ledger's tfstate copy as its state Secret, so it manages the existing
/// resources instead of creating new ones. Refused when that CR already has a state Secret or
/// has applied (it may have created new resources: install it suspended first).
pub async fn adopt(
    client: &Client,
    item: &LedgerItem,
    release: &str,
    namespace: Option<&str>,
    clock: &(dyn Fn() -> DateTime<Utc> + Send + Sync),
) -> Result<AdoptOutcome, OrphansError> {
    if item.cleaned_up() {
        return Ok(AdoptOutcome::AlreadyCleanedUp);
    }
    let mut item = item.clone();
    tfops_guard::ledger::load_parts(client, &item.secret_namespace, &mut item.record).await?;
    let e = item.entry();
    let ns = namespace.unwrap_or(&e.namespace);
    let refuse = |why: String| OrphansError::Adopt {
        entry: format!("{}/{}", item.secret_namespace, item.secret_name),
        why,
    };
    if !e.tfstate_copied || item.record.tfstate.is_empty() {
        return Err(refuse(
            "the entry holds no tfstate copy (the state is not in-cluster); point the release's module at the original backend instead".into(),
        ));
    }
    let api: Api<DynamicObject> = Api::namespaced_with(client.clone(), ns, &terraform_resource());
    let selector = format!(
        "{}={release},{}={}",
        tfops_guard::ledger::LABEL_RELEASE,
        tfops_guard::ledger::LABEL_MODULE,
        e.module
    );
    let found = api
        .list(&kube::api::ListParams::default().labels(&selector))
        .await
        .map_err(api_err(format!(
            "listing Terraform CRs in {ns} ({selector})"
        )))?;
    let target = match found.items.as_slice() {
        [one] => one.clone(),
        [] => {
            return Err(refuse(format!(
                "release {release:?} has no Terraform CR of module {:?} in {ns}; install it first (suspended)",
                e.module
            )))
        }
        many => {
            return Err(refuse(format!(
                "release {release:?} has {} Terraform CRs of module {:?} in {ns}",
                many.len(),
                e.module
            )))
        }
    };
    let name = target.metadata.name.clone().unwrap_or_default();
    let status = target.data.get("status").cloned().unwrap_or(Value::Null);
    if status["lastAppliedRevision"]
        .as_str()
        .is_some_and(|r| !r.is_empty())
    {
        return Err(refuse(format!(
            "Terraform {ns}/{name} has already applied (status.lastAppliedRevision) and may have created new resources"
        )));
    }
    let spec = target.data.get("spec").cloned().unwrap_or(Value::Null);
    if spec["backendConfig"]["customConfiguration"].is_string() {
        return Err(refuse(format!(
            "Terraform {ns}/{name} uses a custom backend; restore the state there"
        )));
    }
    let ws = spec["workspace"]
        .as_str()
        .filter(|w| !w.is_empty())
        .unwrap_or("default");
    let suffix = match spec["backendConfig"].as_object() {
        Some(bc) => bc
            .get("secretSuffix")
            .and_then(Value::as_str)
            .unwrap_or_default()
            .to_owned(),
        None => name.clone(),
    };
    let state_name = tfops_guard::ledger::tfstate_secret_name(Some(ws), &suffix);
    let secrets: Api<Secret> = Api::namespaced(client.clone(), ns);
    if secrets
        .get_metadata_opt(&state_name)
        .await
        .map_err(api_err(format!("reading Secret {ns}/{state_name}")))?
        .is_some()
    {
        return Err(refuse(format!(
            "Secret {ns}/{state_name} (the state of Terraform {ns}/{name}) already exists"
        )));
    }
    let mut secret = restored_tfstate(&item);
    secret.metadata.name = Some(state_name.clone());
    secret.metadata.namespace = Some(ns.to_owned());
    if let Some(labels) = secret.metadata.labels.as_mut() {
        labels.remove(CLEANUP_OF_LABEL);
        labels.insert("tfstateSecretSuffix".into(), suffix.clone());
        labels.insert("tfstateWorkspace".into(), ws.to_owned());
    }
    secrets
        .create(&PostParams::default(), &secret)
        .await
        .map_err(api_err(format!("creating Secret {ns}/{state_name}")))?;
    tfops_guard::ledger::record_cleanup(
        client,
        &item.secret_namespace,
        &item.secret_name,
        CleanupEvent {
            at: clock(),
            state: CleanupState::Adopted,
            message: format!(
                "handed back to release {release}: Terraform {ns}/{name} uses the tfstate copy as Secret {ns}/{state_name}"
            ),
        },
    )
    .await?;
    Ok(AdoptOutcome::Adopted {
        namespace: ns.to_owned(),
        name,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use tfops_guard::ledger::{LedgerDecision, RecordedObject, VarsFromRecord};

    fn item() -> LedgerItem {
        let at = "2026-11-26T20:00:00Z".parse().unwrap();
        let mut item = crate::fixtures::ledger_item(
            "apps",
            "shop",
            "db",
            "shop-db",
            "0a1b2c3d-4e",
            LedgerDecision::Orphaned,
            at,
        );
        item.record.entry.terraform.spec["varsFrom"] = json!([{"kind": "Secret", "name": "db-creds"}, {"kind": "ConfigMap", "name": "db-cfg", "optional": true}]);
        item
    }

    #[test]
    fn a_v1_entry_plans_a_plain_runner_and_requires_source_and_vars() {
        let plan = plan_dependencies(&item(), "apps").unwrap();
        let shown: Vec<String> = plan.iter().map(Planned::display).collect();
        assert_eq!(
            shown,
            [
                "ServiceAccount apps/tf-runner",
                "RoleBinding apps/tf-runner-tf-runner-role",
                "Secret apps/db-creds",
                "OCIRepository apps/shop-db-src",
                "Secret apps/tfstate-default-shop-db",
            ]
        );
        // Without copies, the Secret and the Source must exist (the optional ConfigMap not).
        assert!(plan[2].object.is_null() && plan[2].required_present.is_some());
        assert!(plan[3]
            .required_present
            .as_deref()
            .unwrap()
            .contains("spec.sourceRef"));
        assert_eq!(plan[1].object["roleRef"]["name"], "tf-runner-role");
        for p in plan.iter().filter(|p| !p.object.is_null()) {
            assert_eq!(
                p.object["metadata"]["labels"][CLEANUP_OF_LABEL],
                "tfops-ledger-shop-db-0a1b2c3d"
            );
        }
    }

    #[test]
    fn a_v2_entry_plans_copies_in_another_namespace() {
        let mut it = item();
        let e = &mut it.record.entry;
        e.source = Some(RecordedObject::from_object(
            &json!({"apiVersion": "source.toolkit.fluxcd.io/v1beta2", "kind": "OCIRepository",
                    "metadata": {"name": "shop-db-src", "namespace": "apps"}, "spec": {"url": "oci://x"}}),
            "shop",
        ));
        e.role_binding = Some(RecordedObject::from_object(
            &json!({"apiVersion": "rbac.authorization.k8s.io/v1", "kind": "RoleBinding",
                    "metadata": {"name": "rb", "namespace": "apps"},
                    "roleRef": {"kind": "ClusterRole", "name": "tf-runner-role"},
                    "subjects": [{"kind": "ServiceAccount", "name": "tf-runner", "namespace": "apps"}]}),
            "shop",
        ));
        e.vars_from = vec![
            VarsFromRecord {
                kind: "Secret".into(),
                name: "db-creds".into(),
                copied: true,
                ..Default::default()
            },
            VarsFromRecord {
                kind: "ConfigMap".into(),
                name: "db-cfg".into(),
                optional: true,
                copied: true,
                ..Default::default()
            },
        ];
        it.record.vars = [
            (0, [("token".to_owned(), b"s3cret".to_vec())].into()),
            (1, [("region".to_owned(), b"eu-west-1".to_vec())].into()),
        ]
        .into();
        let plan = plan_dependencies(&it, "restore").unwrap();
        assert!(plan
            .iter()
            .all(|p| p.namespace == "restore" && p.required_present.is_none()));
        assert_eq!(plan[1].object["subjects"][0]["namespace"], "restore");
        assert_eq!(plan[2].object["data"]["token"], "czNjcmV0");
        assert_eq!(plan[3].object["data"]["region"], "eu-west-1");
        assert_eq!(plan[4].object["spec"]["url"], "oci://x");
        assert_eq!(plan[4].api_version, "source.toolkit.fluxcd.io/v1beta2");
        let cr = recreated_terraform_in(&it, "shop-db", "restore");
        assert_eq!(cr["metadata"]["namespace"], "restore");
        assert_eq!(cr["spec"]["destroyResourcesOnDeletion"], true);
        // show redacts the varsFrom values.
        let doc = show_document(&it, false).unwrap();
        let text = doc.to_string();
        assert!(
            !text.contains("s3cret") && !text.contains("eu-west-1"),
            "{text}"
        );
        assert!(show_document(&it, true)
            .unwrap()
            .to_string()
            .contains("s3cret"));
    }

    #[test]
    fn plurals() {
        assert_eq!(plural("GitRepository"), "gitrepositories");
        assert_eq!(plural("RoleBinding"), "rolebindings");
        assert_eq!(plural("ServiceAccount"), "serviceaccounts");
    }
}
