//! `ledger` — the orphan ledger: one Secret per `Terraform` CR that left the cluster without a
//! successful destroy (orphaned or force-removed), written BEFORE the step that lets it go.
//!
//! Format (cross-team contract): Secret `tfops-ledger-<cr name, shortened>-<uid[..8]>`,
//! `type: tfops.dev/ledger`, labels `tfops.dev/ledger: "v1"`, `tfops.dev/release`,
//! `tfops.dev/module`, `tfops.dev/cr-namespace`, `tfops.dev/decision`; data `entry.json`
//! (a [`LedgerEntry`]), `outputs.<key>` (copied outputs Secret data) and `tfstate.<key>`
//! (copied tfstate Secret data when the state lives in-cluster). The Secret is not part of the
//! Helm release, so it survives `helm uninstall`.
//!
//! Pure conversion ([`LedgerRecord::to_secret`] / [`LedgerRecord::from_secret`]) plus the thin
//! kube writes/reads ([`write`], [`list`]).

use std::collections::BTreeMap;

use chrono::{DateTime, Utc};
use k8s_openapi::api::core::v1::Secret;
use k8s_openapi::apimachinery::pkg::apis::meta::v1::ObjectMeta;
use k8s_openapi::ByteString;
use kube::api::{ListParams, Patch, PatchParams, PostParams};
use kube::{Api, Client};
use serde::{Deserialize, Serialize};

/// Secret `type` of ledger entries.
pub const LEDGER_SECRET_TYPE: &str = "tfops.dev/ledger";
/// Label marking a ledger Secret, with its format version as value.
pub const LABEL_LEDGER: &str = "tfops.dev/ledger";
/// Current ledger format version (value of [`LABEL_LEDGER`]).
pub const LEDGER_VERSION: &str = "v1";
/// Release label (shared with every generated object).
pub const LABEL_RELEASE: &str = "tfops.dev/release";
/// Module label (shared with every generated object).
pub const LABEL_MODULE: &str = "tfops.dev/module";
/// Namespace of the CR the entry is about (the ledger may live elsewhere).
pub const LABEL_CR_NAMESPACE: &str = "tfops.dev/cr-namespace";
/// `orphaned` | `force-removed`.
pub const LABEL_DECISION: &str = "tfops.dev/decision";
/// Data key holding the JSON [`LedgerEntry`].
pub const ENTRY_KEY: &str = "entry.json";
/// Prefix of data keys holding copied outputs Secret data.
pub const OUTPUTS_PREFIX: &str = "outputs.";
/// Prefix of data keys holding copied tfstate Secret data.
pub const TFSTATE_PREFIX: &str = "tfstate.";
/// Name prefix of ledger Secrets.
pub const NAME_PREFIX: &str = "tfops-ledger-";

/// Why a CR left without a destroy.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum LedgerDecision {
    /// `spec.destroyResourcesOnDeletion: false` was patched; the controller released the CR
    /// without destroying (cloud resources still exist).
    Orphaned,
    /// The guard stripped the tofu-controller finalizers (audited); cloud resources may exist.
    ForceRemoved,
}

impl LedgerDecision {
    /// Label / JSON value: `orphaned` | `force-removed`.
    pub fn as_str(self) -> &'static str {
        match self {
            LedgerDecision::Orphaned => "orphaned",
            LedgerDecision::ForceRemoved => "force-removed",
        }
    }
}

impl std::fmt::Display for LedgerDecision {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

/// State of the later clean-up of an entry (`helm tfops orphans destroy`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum CleanupState {
    /// Nothing done yet: the cloud resources may still exist.
    #[default]
    Open,
    /// A destroy was started from this entry.
    Destroying,
    /// A destroy from this entry succeeded.
    Destroyed,
    /// A destroy from this entry failed.
    DestroyFailed,
}

/// One step in the clean-up history of an entry.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct CleanupEvent {
    pub at: DateTime<Utc>,
    pub state: CleanupState,
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub message: String,
}

/// Clean-up bookkeeping of an entry.
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Cleanup {
    pub state: CleanupState,
    #[serde(default)]
    pub history: Vec<CleanupEvent>,
}

/// The CR as it was when the decision was taken: metadata name/labels/annotations and full spec.
#[derive(Debug, Clone, PartialEq, Default, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct TerraformSnapshot {
    pub name: String,
    #[serde(default)]
    pub labels: BTreeMap<String, String>,
    #[serde(default)]
    pub annotations: BTreeMap<String, String>,
    /// The full `spec` (source ref, path, vars / varsFrom refs, workspace, backend …).
    #[serde(default)]
    pub spec: serde_json::Value,
}

/// One `status.inventory.entries[]` item of a tofu-controller `Terraform` CR. The CRD keys
/// them `n`, `t`, `id` (read as aliases); the ledger stores the readable names.
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct InventoryEntry {
    #[serde(default, alias = "n")]
    pub name: String,
    #[serde(default, rename = "type", alias = "t")]
    pub type_: String,
    #[serde(default, alias = "id")]
    pub identifier: String,
}

/// The JSON document stored under `entry.json`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct LedgerEntry {
    /// Helm release the CR belonged to.
    pub release: String,
    /// Namespace of the CR.
    pub namespace: String,
    /// Name of the CR.
    pub name: String,
    /// `metadata.uid` of the CR.
    pub uid: String,
    /// Module name (`tfops.dev/module` label; the CR name for adopted CRs without it).
    pub module: String,
    /// The CR's metadata name/labels/annotations and full spec as it was.
    pub terraform: TerraformSnapshot,
    /// `status.inventory.entries` (cloud resources the state tracked).
    #[serde(default)]
    pub inventory: Vec<InventoryEntry>,
    /// Name of the outputs Secret (`spec.writeOutputsToSecret.name`), if any.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub outputs_secret: Option<String>,
    /// Name of the tfstate Secret: `tfstate-<workspace or "default">-<name>`.
    pub tfstate_secret: String,
    /// Whether the tfstate Secret's data was copied into this ledger Secret (`tfstate.<key>`).
    #[serde(default)]
    pub tfstate_copied: bool,
    /// Condition reason that led to the decision (e.g. `TFExecApplyFailed`), if any.
    #[serde(default)]
    pub reason: String,
    /// Condition message / guard explanation (never secret values).
    #[serde(default)]
    pub message: String,
    /// Failure class (`transient|permanent|blocked-by-missing-dependency|unknown`), if any.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub class: Option<String>,
    /// Destroy attempts made before the decision.
    #[serde(default)]
    pub attempts: u32,
    pub decision: LedgerDecision,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub first_failure_at: Option<DateTime<Utc>>,
    pub decided_at: DateTime<Utc>,
    #[serde(default)]
    pub cleanup: Cleanup,
}

/// A whole ledger Secret: the entry plus the copied Secret data.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct LedgerRecord {
    pub entry: LedgerEntry,
    /// Copied outputs Secret data (stored as `outputs.<key>`).
    #[serde(default)]
    pub outputs: BTreeMap<String, Vec<u8>>,
    /// Copied tfstate Secret data (stored as `tfstate.<key>`).
    #[serde(default)]
    pub tfstate: BTreeMap<String, Vec<u8>>,
}

/// Errors reading / writing ledger Secrets.
#[derive(Debug, thiserror::Error)]
pub enum LedgerError {
    #[error("Secret {namespace}/{name} is not a ledger entry: {reason}")]
    NotAnEntry {
        namespace: String,
        name: String,
        reason: String,
    },
    #[error("ledger Secret {namespace}/{name}: field `entry.json` is not a valid ledger entry: {source}")]
    BadEntry {
        namespace: String,
        name: String,
        #[source]
        source: serde_json::Error,
    },
    #[error("serialising ledger entry for {namespace}/{name}: {source}")]
    Serialise {
        namespace: String,
        name: String,
        #[source]
        source: serde_json::Error,
    },
    #[error(
        "ledger Secret {namespace}/{name} already exists for another CR (uid {existing_uid}, expected {uid})"
    )]
    UidMismatch {
        namespace: String,
        name: String,
        uid: String,
        existing_uid: String,
    },
    #[error("writing ledger Secret {namespace}/{name}: {source}")]
    Write {
        namespace: String,
        name: String,
        #[source]
        source: kube::Error,
    },
    #[error("listing ledger Secrets in {scope}: {source}")]
    List {
        scope: String,
        #[source]
        source: kube::Error,
    },
}

/// Longest DNS label we produce (keeps the name usable as a label value too).
const MAX_NAME: usize = 63;

/// Ledger Secret name for a CR: `tfops-ledger-<name, shortened>-<uid[..8]>` (≤ 63 chars).
pub fn secret_name(cr_name: &str, uid: &str) -> String {
    let uid8: String = uid
        .chars()
        .filter(|c| c.is_ascii_alphanumeric())
        .take(8)
        .collect::<String>()
        .to_ascii_lowercase();
    let room = MAX_NAME - NAME_PREFIX.len() - 1 - uid8.len();
    let mut short: String = cr_name.chars().take(room).collect();
    while short.ends_with(['-', '.']) {
        short.pop();
    }
    format!("{NAME_PREFIX}{short}-{uid8}")
}

/// `tfstate-<workspace or "default">-<secret suffix>` — tofu-controller's in-cluster state
/// Secret; the suffix is `spec.backendConfig.secretSuffix`, else the CR's name.
pub fn tfstate_secret_name(workspace: Option<&str>, secret_suffix: &str) -> String {
    let ws = workspace.filter(|w| !w.is_empty()).unwrap_or("default");
    format!("tfstate-{ws}-{secret_suffix}")
}

fn to_bytes<'a>(
    map: &'a BTreeMap<String, Vec<u8>>,
    prefix: &'a str,
) -> impl Iterator<Item = (String, ByteString)> + 'a {
    map.iter()
        .map(move |(k, v)| (format!("{prefix}{k}"), ByteString(v.clone())))
}

impl LedgerRecord {
    /// Name of this record's Secret.
    pub fn secret_name(&self) -> String {
        secret_name(&self.entry.name, &self.entry.uid)
    }

    /// Build the ledger Secret (structured; `ledger_namespace` is where it is stored).
    pub fn to_secret(&self, ledger_namespace: &str) -> Result<Secret, LedgerError> {
        let name = self.secret_name();
        let json = serde_json::to_vec(&self.entry).map_err(|source| LedgerError::Serialise {
            namespace: self.entry.namespace.clone(),
            name: self.entry.name.clone(),
            source,
        })?;
        let mut data: BTreeMap<String, ByteString> = BTreeMap::new();
        data.insert(ENTRY_KEY.to_owned(), ByteString(json));
        data.extend(to_bytes(&self.outputs, OUTPUTS_PREFIX));
        data.extend(to_bytes(&self.tfstate, TFSTATE_PREFIX));
        let labels: BTreeMap<String, String> = [
            (LABEL_LEDGER, LEDGER_VERSION.to_owned()),
            (LABEL_RELEASE, self.entry.release.clone()),
            (LABEL_MODULE, self.entry.module.clone()),
            (LABEL_CR_NAMESPACE, self.entry.namespace.clone()),
            (LABEL_DECISION, self.entry.decision.as_str().to_owned()),
        ]
        .into_iter()
        .map(|(k, v)| (k.to_owned(), v))
        .collect();
        Ok(Secret {
            metadata: ObjectMeta {
                name: Some(name),
                namespace: Some(ledger_namespace.to_owned()),
                labels: Some(labels),
                ..ObjectMeta::default()
            },
            type_: Some(LEDGER_SECRET_TYPE.to_owned()),
            data: Some(data),
            ..Secret::default()
        })
    }

    /// Parse a ledger Secret; names the Secret and the field on error.
    pub fn from_secret(secret: &Secret) -> Result<Self, LedgerError> {
        let namespace = secret.metadata.namespace.clone().unwrap_or_default();
        let name = secret.metadata.name.clone().unwrap_or_default();
        if secret.type_.as_deref() != Some(LEDGER_SECRET_TYPE) {
            return Err(LedgerError::NotAnEntry {
                namespace,
                name,
                reason: format!(
                    "field `type` is {:?}, expected {LEDGER_SECRET_TYPE:?}",
                    secret.type_.as_deref().unwrap_or("")
                ),
            });
        }
        let data = secret.data.clone().unwrap_or_default();
        let Some(raw) = data.get(ENTRY_KEY) else {
            return Err(LedgerError::NotAnEntry {
                namespace,
                name,
                reason: format!("field `data.{ENTRY_KEY}` is missing"),
            });
        };
        let entry: LedgerEntry =
            serde_json::from_slice(&raw.0).map_err(|source| LedgerError::BadEntry {
                namespace: namespace.clone(),
                name: name.clone(),
                source,
            })?;
        let mut outputs = BTreeMap::new();
        let mut tfstate = BTreeMap::new();
        for (k, v) in data {
            if let Some(key) = k.strip_prefix(OUTPUTS_PREFIX) {
                outputs.insert(key.to_owned(), v.0);
            } else if let Some(key) = k.strip_prefix(TFSTATE_PREFIX) {
                tfstate.insert(key.to_owned(), v.0);
            }
        }
        Ok(Self {
            entry,
            outputs,
            tfstate,
        })
    }
}

/// What [`write`] found.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum WriteOutcome {
    /// The Secret was created now.
    Created,
    /// An entry for the same CR uid already existed (a re-run); it was kept, with its decision
    /// updated when it differed (orphaned → force-removed).
    AlreadyPresent,
}

/// Write-ahead: make sure the ledger Secret for `record` exists in `ledger_namespace`.
/// Returns only once the entry is durably stored (created, or already there for the same uid).
pub async fn write(
    client: &Client,
    ledger_namespace: &str,
    record: &LedgerRecord,
) -> Result<WriteOutcome, LedgerError> {
    let api: Api<Secret> = Api::namespaced(client.clone(), ledger_namespace);
    let secret = record.to_secret(ledger_namespace)?;
    let name = record.secret_name();
    let werr = |source| LedgerError::Write {
        namespace: ledger_namespace.to_owned(),
        name: name.clone(),
        source,
    };
    match api.create(&PostParams::default(), &secret).await {
        Ok(_) => Ok(WriteOutcome::Created),
        Err(kube::Error::Api(status)) if status.code == 409 => {
            let existing = api.get(&name).await.map_err(werr)?;
            let parsed = LedgerRecord::from_secret(&existing)?;
            if parsed.entry.uid != record.entry.uid {
                return Err(LedgerError::UidMismatch {
                    namespace: ledger_namespace.to_owned(),
                    name,
                    uid: record.entry.uid.clone(),
                    existing_uid: parsed.entry.uid,
                });
            }
            if parsed.entry.decision != record.entry.decision {
                // Keep the original entry (first failure, copies) and record the escalation.
                let mut entry = parsed.entry.clone();
                entry.decision = record.entry.decision;
                entry.decided_at = record.entry.decided_at;
                entry.attempts = entry.attempts.max(record.entry.attempts);
                if !record.entry.reason.is_empty() {
                    entry.reason = record.entry.reason.clone();
                    entry.message = record.entry.message.clone();
                }
                let updated = LedgerRecord {
                    entry,
                    outputs: parsed.outputs,
                    tfstate: parsed.tfstate,
                };
                let mut desired = updated.to_secret(ledger_namespace)?;
                desired.metadata.resource_version = existing.metadata.resource_version.clone();
                api.replace(&name, &PostParams::default(), &desired)
                    .await
                    .map_err(werr)?;
            }
            Ok(WriteOutcome::AlreadyPresent)
        }
        Err(source) => Err(werr(source)),
    }
}

/// Record a clean-up step on an existing entry (used by `helm tfops orphans destroy`).
pub async fn record_cleanup(
    client: &Client,
    ledger_namespace: &str,
    secret_name: &str,
    event: CleanupEvent,
) -> Result<LedgerRecord, LedgerError> {
    let api: Api<Secret> = Api::namespaced(client.clone(), ledger_namespace);
    let werr = |source| LedgerError::Write {
        namespace: ledger_namespace.to_owned(),
        name: secret_name.to_owned(),
        source,
    };
    let existing = api.get(secret_name).await.map_err(werr)?;
    let mut record = LedgerRecord::from_secret(&existing)?;
    record.entry.cleanup.state = event.state;
    record.entry.cleanup.history.push(event);
    let json = serde_json::to_vec(&record.entry).map_err(|source| LedgerError::Serialise {
        namespace: record.entry.namespace.clone(),
        name: record.entry.name.clone(),
        source,
    })?;
    let patch = serde_json::json!({
        "metadata": {"resourceVersion": existing.metadata.resource_version},
        "data": {ENTRY_KEY: ByteString(json)},
    });
    api.patch(secret_name, &PatchParams::default(), &Patch::Merge(&patch))
        .await
        .map_err(werr)?;
    Ok(record)
}

/// List ledger records of `release` (or all releases when `None`) in `namespace` (or all
/// namespaces when `None`). Secrets that fail to parse are returned as errors beside the rest.
pub async fn list(
    client: &Client,
    namespace: Option<&str>,
    release: Option<&str>,
) -> Result<Vec<Result<LedgerRecord, LedgerError>>, LedgerError> {
    let api: Api<Secret> = match namespace {
        Some(ns) => Api::namespaced(client.clone(), ns),
        None => Api::all(client.clone()),
    };
    let mut selector = format!("{LABEL_LEDGER}={LEDGER_VERSION}");
    if let Some(r) = release {
        selector.push_str(&format!(",{LABEL_RELEASE}={r}"));
    }
    let list = api
        .list(&ListParams::default().labels(&selector))
        .await
        .map_err(|source| LedgerError::List {
            scope: namespace.unwrap_or("all namespaces").to_owned(),
            source,
        })?;
    Ok(list.items.iter().map(LedgerRecord::from_secret).collect())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sample() -> LedgerRecord {
        let at: DateTime<Utc> = "2026-11-26T20:00:00Z".parse().unwrap();
        LedgerRecord {
            entry: LedgerEntry {
                release: "shop".into(),
                namespace: "apps".into(),
                name: "shop-db".into(),
                uid: "0a1b2c3d-4e5f-6789-abcd-ef0123456789".into(),
                module: "db".into(),
                terraform: TerraformSnapshot {
                    name: "shop-db".into(),
                    labels: [("tfops.dev/release".to_owned(), "shop".to_owned())].into(),
                    annotations: BTreeMap::new(),
                    spec: serde_json::json!({"path": "./db", "sourceRef": {"kind": "OCIRepository", "name": "shop-db"}}),
                },
                inventory: vec![InventoryEntry {
                    name: "db".into(),
                    type_: "aws_db_instance".into(),
                    identifier: "shop-db-1".into(),
                }],
                outputs_secret: Some("shop-db-outputs".into()),
                tfstate_secret: tfstate_secret_name(None, "shop-db"),
                tfstate_copied: true,
                reason: "TFExecApplyFailed".into(),
                message: "AccessDenied".into(),
                class: Some("permanent".into()),
                attempts: 2,
                decision: LedgerDecision::ForceRemoved,
                first_failure_at: Some(at),
                decided_at: at,
                cleanup: Cleanup::default(),
            },
            outputs: [("endpoint".to_owned(), b"db.example".to_vec())].into(),
            tfstate: [("tfstate".to_owned(), vec![0x1f, 0x8b, 0])].into(),
        }
    }

    #[test]
    fn round_trips_through_a_secret() {
        let rec = sample();
        let secret = rec.to_secret("ledger").unwrap();
        assert_eq!(secret.type_.as_deref(), Some(LEDGER_SECRET_TYPE));
        assert_eq!(secret.metadata.namespace.as_deref(), Some("ledger"));
        let labels = secret.metadata.labels.clone().unwrap();
        assert_eq!(labels[LABEL_DECISION], "force-removed");
        assert_eq!(labels[LABEL_CR_NAMESPACE], "apps");
        assert_eq!(labels[LABEL_LEDGER], "v1");
        let data = secret.data.clone().unwrap();
        assert!(data.contains_key("outputs.endpoint"));
        assert!(data.contains_key("tfstate.tfstate"));
        // Wire form is camelCase as contracted.
        let json: serde_json::Value = serde_json::from_slice(&data[ENTRY_KEY].0).unwrap();
        assert_eq!(json["tfstateSecret"], "tfstate-default-shop-db");
        assert_eq!(json["tfstateCopied"], true);
        assert_eq!(json["outputsSecret"], "shop-db-outputs");
        assert_eq!(json["decision"], "force-removed");
        assert_eq!(json["cleanup"]["state"], "open");
        assert_eq!(json["inventory"][0]["type"], "aws_db_instance");
        assert_eq!(LedgerRecord::from_secret(&secret).unwrap(), rec);
    }

    #[test]
    fn names_are_short_and_carry_the_uid() {
        assert_eq!(
            secret_name("shop-db", "0a1b2c3d-4e5f"),
            "tfops-ledger-shop-db-0a1b2c3d"
        );
        let long = "x".repeat(200);
        let n = secret_name(&long, "ABCDEF12-3456");
        assert!(n.len() <= 63, "{n}");
        assert!(n.ends_with("-abcdef12"));
        let dashy = format!("{}-{}", "a".repeat(40), "b".repeat(10));
        assert!(!secret_name(&dashy, "12345678").contains("--"));
    }

    #[test]
    fn tfstate_name_uses_workspace() {
        assert_eq!(tfstate_secret_name(Some("prod"), "x"), "tfstate-prod-x");
        assert_eq!(tfstate_secret_name(Some(""), "x"), "tfstate-default-x");
    }

    #[test]
    fn rejects_foreign_secrets_naming_the_field() {
        let mut s = sample().to_secret("ns").unwrap();
        s.type_ = Some("Opaque".into());
        let e = LedgerRecord::from_secret(&s).unwrap_err().to_string();
        assert!(e.contains("field `type`"), "{e}");
        let mut s = sample().to_secret("ns").unwrap();
        s.data.as_mut().unwrap().remove(ENTRY_KEY);
        let e = LedgerRecord::from_secret(&s).unwrap_err().to_string();
        assert!(e.contains("entry.json"), "{e}");
        let mut s = sample().to_secret("ns").unwrap();
        s.data
            .as_mut()
            .unwrap()
            .insert(ENTRY_KEY.into(), ByteString(b"{}".to_vec()));
        let e = LedgerRecord::from_secret(&s).unwrap_err().to_string();
        assert!(e.contains("not a valid ledger entry"), "{e}");
    }
}
