//! `orphans list|show|destroy|forget`: read and operate the orphan ledger.
//!
//! `destroy` finishes a cleanup later: it re-creates the `Terraform` CR from the entry (spec as
//! recorded, `destroyResourcesOnDeletion: true`, manual approval so nothing is applied,
//! `dependsOn` dropped because dependencies may be gone — tofu-controller would otherwise
//! never finish deleting it), restores the tfstate Secret from the copy when the original is
//! gone, waits until the controller has put its finalizer on the CR, deletes it and watches
//! until it is gone or the timeout ends. Every step is recorded in the entry's `cleanup`
//! (destroying → destroyed | destroy-failed). On failure the re-created CR is released without
//! destroying (and, if the controller does not answer, its finalizers are removed — the entry
//! already records everything), so a failed cleanup never leaves a new stuck object behind.

use std::collections::BTreeMap;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use chrono::{DateTime, Utc};
use k8s_openapi::api::core::v1::Secret;
use k8s_openapi::ByteString;
use kube::api::{DeleteParams, DynamicObject, Patch, PatchParams, PostParams, PropagationPolicy};
use kube::runtime::wait::conditions;

use crate::wait::wait_for;
use kube::{Api, Client};
use serde::Serialize;
use serde_json::{json, Value};

use crate::fetch::{terraform_resource, TF_GROUP, TF_VERSION};
use crate::ledger::{cleanup_str, CleanupEvent, CleanupState, LedgerError, LedgerItem};
use crate::render::human_duration;
use crate::terraform::TF_FINALIZER;

/// Label put on a CR re-created by `orphans destroy`: the ledger Secret it cleans up.
pub const CLEANUP_OF_LABEL: &str = "tfops.dev/cleanup-of";

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
    #[error("{what}: {source}")]
    Api {
        what: String,
        #[source]
        source: kube::Error,
    },
    #[error(transparent)]
    Ledger(#[from] LedgerError),
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

/// Delete the ledger Secret.
pub async fn forget(client: &Client, item: &LedgerItem) -> Result<(), OrphansError> {
    let api: Api<Secret> = Api::namespaced(client.clone(), &item.secret_namespace);
    api.delete(&item.secret_name, &DeleteParams::default())
        .await
        .map_err(api_err(format!(
            "deleting ledger Secret {}/{}",
            item.secret_namespace, item.secret_name
        )))?;
    Ok(())
}

/// Options of `orphans destroy`.
#[derive(Clone)]
pub struct DestroyOptions {
    /// Re-create under this name instead of the original.
    pub name: Option<String>,
    /// Overall bound for the controller to pick the CR up and destroy it.
    pub timeout: Duration,
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
}

/// The `Terraform` CR `destroy` creates from an entry (pure).
pub fn recreated_terraform(item: &LedgerItem, name: &str) -> Value {
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
        "metadata": {"name": name, "namespace": e.namespace, "labels": labels},
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
    let e = item.entry();
    let ns = e.namespace.as_str();
    let name = opts.name.clone().unwrap_or_else(|| e.name.clone());
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

    record(
        client,
        item,
        CleanupState::Destroying,
        format!("re-creating Terraform {ns}/{name} with destroyResourcesOnDeletion: true"),
        opts,
    )
    .await?;

    // Restore the tfstate Secret from the copy when the original is gone.
    if e.tfstate_copied && !item.record.tfstate.is_empty() {
        let secrets: Api<Secret> = Api::namespaced(client.clone(), ns);
        let present = secrets
            .get_metadata_opt(&e.tfstate_secret)
            .await
            .map_err(api_err(format!("reading Secret {ns}/{}", e.tfstate_secret)))?;
        if present.is_none() {
            secrets
                .create(&PostParams::default(), &restored_tfstate(item))
                .await
                .map_err(api_err(format!(
                    "restoring Secret {ns}/{}",
                    e.tfstate_secret
                )))?;
            progress(&format!(
                "restored tfstate Secret {ns}/{} from the ledger copy",
                e.tfstate_secret
            ));
        }
    }

    let uid = match existing {
        Some(obj) => obj.metadata.uid.unwrap_or_default(),
        None => {
            let obj: DynamicObject = serde_json::from_value(recreated_terraform(item, &name))?;
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
    let owned = wait_for(api.clone(), &name, has_finalizer, opts.timeout).await;
    if !matches!(owned, Ok(Some(_))) {
        // Nothing was destroyed; remove the CR we created (no finalizer: immediate).
        let _ = api.delete(&name, &DeleteParams::background()).await;
        let message = format!(
            "tofu-controller did not pick up Terraform {ns}/{name} within {}; is it running?",
            human_duration(chrono::Duration::from_std(opts.timeout).unwrap_or_default())
        );
        record(
            client,
            item,
            CleanupState::DestroyFailed,
            message.clone(),
            opts,
        )
        .await?;
        return Ok(DestroyOutcome::Failed { message });
    }
    progress("controller picked up the CR; deleting it to destroy the resources");
    let dp = DeleteParams {
        propagation_policy: Some(PropagationPolicy::Background),
        ..DeleteParams::default()
    };
    match api.delete(&name, &dp).await {
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
    let gone = wait_for(api.clone(), &name, watch_gone, remaining).await;
    if matches!(gone, Ok(Some(_))) {
        let message = format!("Terraform {ns}/{name} destroyed and released by the controller");
        record(client, item, CleanupState::Destroyed, message, opts).await?;
        return Ok(DestroyOutcome::Destroyed { name });
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
    release(&api, &name).await?;
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

/// Let the re-created CR go without destroying: strip the controller's finalizers (the ledger
/// entry already records everything about it).
async fn release(api: &Api<DynamicObject>, name: &str) -> Result<(), OrphansError> {
    let Some(obj) = api
        .get_opt(name)
        .await
        .map_err(api_err(format!("reading Terraform {name}")))?
    else {
        return Ok(());
    };
    let keep: Vec<String> = obj
        .metadata
        .finalizers
        .unwrap_or_default()
        .into_iter()
        .filter(|f| {
            f != TF_FINALIZER && !f.starts_with(crate::terraform::DEPENDENCY_FINALIZER_PREFIX)
        })
        .collect();
    let patch = json!({
        "metadata": {"finalizers": keep, "resourceVersion": obj.metadata.resource_version},
        "spec": {"destroyResourcesOnDeletion": false}
    });
    match api
        .patch(name, &PatchParams::default(), &Patch::Merge(&patch))
        .await
    {
        Ok(_) => Ok(()),
        Err(kube::Error::Api(s)) if s.code == 404 => Ok(()),
        Err(source) => Err(OrphansError::Api {
            what: format!("releasing Terraform {name}"),
            source,
        }),
    }
}
