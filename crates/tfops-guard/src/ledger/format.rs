//! `ledger::format` — the orphan ledger's format, pure: the entry types and their conversion
//! to and from Secrets ([`LedgerRecord::to_secret`] / [`LedgerRecord::from_secret`]), names,
//! sizes and checksums. No I/O (the reads and writes are in `ledger::io`).

use std::collections::BTreeMap;

use chrono::{DateTime, Utc};
use k8s_openapi::api::core::v1::Secret;
use k8s_openapi::apimachinery::pkg::apis::meta::v1::ObjectMeta;
use k8s_openapi::ByteString;
use serde::{Deserialize, Serialize};
use tfops_api::names;

/// Secret `type` of ledger entries.
pub const LEDGER_SECRET_TYPE: &str = names::LEDGER;
/// Label marking a ledger Secret, with its format version as value.
pub const LABEL_LEDGER: &str = names::LEDGER;
/// Current ledger format version (value of [`LABEL_LEDGER`]).
pub const LEDGER_VERSION: &str = "v2";
/// Previous format version, still read.
pub const LEDGER_VERSION_V1: &str = "v1";
/// Every version [`list`] reads.
pub const LEDGER_VERSIONS: [&str; 2] = [LEDGER_VERSION_V1, LEDGER_VERSION];
/// Secret `type` of tfstate part Secrets.
pub const LEDGER_PART_TYPE: &str = names::LEDGER_PART;
/// Label of a part Secret: the ledger Secret it belongs to.
pub const LABEL_LEDGER_PART: &str = names::LEDGER_PART;
/// Data key of a part Secret.
pub const PART_KEY: &str = "part";
/// Prefix of data keys holding recorded `varsFrom` data (`vars.<index>.<key>`).
pub const VARS_PREFIX: &str = "vars.";
/// What a Secret may hold (data keys + values), with room for metadata: 1 MiB − 48 KiB.
pub const SECRET_BUDGET: usize = 1024 * 1024 - 48 * 1024;
/// Largest tfstate part per part Secret.
pub const PART_SIZE: usize = 900 * 1024;
/// Namespace of the CR the entry is about (the ledger may live elsewhere).
pub use tfops_api::names::LABEL_CR_NAMESPACE;
/// `orphaned` | `force-removed`.
pub use tfops_api::names::LABEL_DECISION;
/// Module label (shared with every generated object).
pub use tfops_api::names::LABEL_MODULE;
/// Release label (shared with every generated object).
pub use tfops_api::names::LABEL_RELEASE;
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
    /// Handed back to a (re)installed release (`orphans adopt`): its CR manages the resources.
    Adopted,
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

/// A Kubernetes object a later destroy may have to re-create, as it was: identity, labels and
/// annotations (Helm's ownership ones dropped) and every top-level field but `metadata` /
/// `status` (e.g. `spec`, `subjects`, `roleRef`). Never holds Secret / ConfigMap data.
#[derive(Debug, Clone, PartialEq, Default, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct RecordedObject {
    pub api_version: String,
    pub kind: String,
    pub name: String,
    #[serde(default)]
    pub namespace: String,
    #[serde(default)]
    pub labels: BTreeMap<String, String>,
    #[serde(default)]
    pub annotations: BTreeMap<String, String>,
    /// Top-level fields other than apiVersion / kind / metadata / status.
    #[serde(default)]
    pub body: serde_json::Map<String, serde_json::Value>,
    /// It carried the release's Helm ownership (`meta.helm.sh/release-name`), so `helm
    /// uninstall` deletes it.
    #[serde(default)]
    pub in_release: bool,
}

/// Annotations and labels Helm uses to claim an object; dropped from recordings so a
/// re-created object is never mistaken for part of a release.
const HELM_OWNERSHIP: [&str; 3] = [
    "meta.helm.sh/release-name",
    "meta.helm.sh/release-namespace",
    "app.kubernetes.io/managed-by",
];

impl RecordedObject {
    /// Record `obj` (a JSON Kubernetes object) as part of `release` or not.
    pub fn from_object(obj: &serde_json::Value, release: &str) -> Self {
        let meta = &obj["metadata"];
        let strings = |v: &serde_json::Value| -> BTreeMap<String, String> {
            v.as_object()
                .map(|m| {
                    m.iter()
                        .filter(|(k, _)| !HELM_OWNERSHIP.contains(&k.as_str()))
                        .filter_map(|(k, v)| v.as_str().map(|s| (k.clone(), s.to_owned())))
                        .collect()
                })
                .unwrap_or_default()
        };
        let in_release = meta["annotations"]["meta.helm.sh/release-name"].as_str() == Some(release);
        let body = obj
            .as_object()
            .map(|m| {
                m.iter()
                    .filter(|(k, _)| {
                        !matches!(k.as_str(), "apiVersion" | "kind" | "metadata" | "status")
                    })
                    .map(|(k, v)| (k.clone(), v.clone()))
                    .collect()
            })
            .unwrap_or_default();
        let s = |v: &serde_json::Value| v.as_str().unwrap_or_default().to_owned();
        RecordedObject {
            api_version: s(&obj["apiVersion"]),
            kind: s(&obj["kind"]),
            name: s(&meta["name"]),
            namespace: s(&meta["namespace"]),
            labels: strings(&meta["labels"]),
            annotations: strings(&meta["annotations"]),
            body,
            in_release,
        }
    }

    /// The object to create again in `namespace` (pure), with `extra_labels` added.
    pub fn to_object(
        &self,
        namespace: &str,
        extra_labels: &BTreeMap<String, String>,
    ) -> serde_json::Value {
        let mut labels = self.labels.clone();
        labels.extend(extra_labels.clone());
        let mut obj = self.body.clone();
        obj.insert("apiVersion".into(), self.api_version.clone().into());
        obj.insert("kind".into(), self.kind.clone().into());
        obj.insert(
            "metadata".into(),
            serde_json::json!({
                "name": self.name,
                "namespace": namespace,
                "labels": labels,
                "annotations": self.annotations,
            }),
        );
        serde_json::Value::Object(obj)
    }
}

/// A reference to an object (e.g. `spec.sourceRef`) when the object itself could not be read.
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct ObjectRef {
    #[serde(default)]
    pub api_version: String,
    pub kind: String,
    pub name: String,
    #[serde(default)]
    pub namespace: String,
}

/// One `spec.varsFrom` item and whether its data was copied (`vars.<index>.<key>`).
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct VarsFromRecord {
    /// `Secret` or `ConfigMap`.
    pub kind: String,
    pub name: String,
    #[serde(default)]
    pub optional: bool,
    /// The object was read and its data copied.
    #[serde(default)]
    pub copied: bool,
    #[serde(default)]
    pub labels: BTreeMap<String, String>,
    /// Secret `type` (Secrets only).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub secret_type: Option<String>,
}

/// One piece of a tfstate key stored in a part Secret.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct TfstatePart {
    /// The tfstate Secret data key (`tfstate`).
    pub key: String,
    /// Order of this piece within the key.
    pub index: u32,
    /// Part Secret holding it (in the ledger namespace).
    pub secret: String,
    pub size: usize,
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
    // ---- v2 (absent in v1 entries: defaults) ----
    /// The Flux Source named by `spec.sourceRef`, as it was (v2).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub source: Option<RecordedObject>,
    /// `spec.sourceRef` (namespace filled in) — always set by v2 writers.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub source_ref: Option<ObjectRef>,
    /// The runner ServiceAccount (`spec.serviceAccountName`, default `tf-runner`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub service_account: Option<RecordedObject>,
    /// The RoleBinding granting that ServiceAccount the ClusterRole `tf-runner-role`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub role_binding: Option<RecordedObject>,
    /// `spec.varsFrom` objects (data in `vars.<index>.<key>`).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub vars_from: Vec<VarsFromRecord>,
    /// SHA-256 (hex) of every copied tfstate key's bytes.
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub tfstate_sha256: BTreeMap<String, String>,
    /// tfstate pieces moved to part Secrets (empty when it is inline).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub tfstate_parts: Vec<TfstatePart>,
    /// What a later destroy needs but could not be recorded, named (e.g. `ServiceAccount
    /// shop/tf-runner: not found`).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub not_recorded: Vec<String>,
}

/// A whole ledger Secret: the entry plus the copied Secret data.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct LedgerRecord {
    pub entry: LedgerEntry,
    /// Copied outputs Secret data (stored as `outputs.<key>`).
    #[serde(default)]
    pub outputs: BTreeMap<String, Vec<u8>>,
    /// Copied tfstate Secret data (stored as `tfstate.<key>`, or in part Secrets).
    #[serde(default)]
    pub tfstate: BTreeMap<String, Vec<u8>>,
    /// Data of `entry.vars_from[i]` (stored as `vars.<i>.<key>`).
    #[serde(default)]
    pub vars: BTreeMap<usize, BTreeMap<String, Vec<u8>>>,
}

/// SHA-256 (hex) of bytes.
pub fn sha256_hex(bytes: &[u8]) -> String {
    use sha2::Digest;
    hex::encode(sha2::Sha256::digest(bytes))
}

/// Bytes a Secret's data takes against the 1 MiB limit (keys + values).
pub fn data_size(data: &BTreeMap<String, ByteString>) -> usize {
    data.iter().map(|(k, v)| k.len() + v.0.len()).sum()
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
    #[error("ledger entry for Terraform {namespace}/{name} does not fit in a Secret: {size} bytes without the tfstate (outputs, varsFrom data, entry), limit {limit}")]
    TooLarge {
        namespace: String,
        name: String,
        size: usize,
        limit: usize,
    },
    #[error("ledger Secret {namespace}/{name}: field `{field}`: {reason}")]
    Corrupt {
        namespace: String,
        name: String,
        field: String,
        reason: String,
    },
    #[error("reading ledger part Secret {namespace}/{name}: {source}")]
    ReadPart {
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

/// Name of the `n`-th tfstate part Secret of ledger Secret `ledger_name`.
pub fn part_secret_name(ledger_name: &str, n: usize) -> String {
    format!("{ledger_name}-p{n}")
}

impl LedgerRecord {
    /// Name of this record's Secret.
    pub fn secret_name(&self) -> String {
        secret_name(&self.entry.name, &self.entry.uid)
    }

    fn serialise_entry(&self, entry: &LedgerEntry) -> Result<Vec<u8>, LedgerError> {
        serde_json::to_vec(entry).map_err(|source| LedgerError::Serialise {
            namespace: self.entry.namespace.clone(),
            name: self.entry.name.clone(),
            source,
        })
    }

    fn labels(&self) -> BTreeMap<String, String> {
        [
            (LABEL_LEDGER, LEDGER_VERSION.to_owned()),
            (LABEL_RELEASE, self.entry.release.clone()),
            (LABEL_MODULE, self.entry.module.clone()),
            (LABEL_CR_NAMESPACE, self.entry.namespace.clone()),
            (LABEL_DECISION, self.entry.decision.as_str().to_owned()),
        ]
        .into_iter()
        .map(|(k, v)| (k.to_owned(), v))
        .collect()
    }

    /// Build the ledger Secret and its tfstate part Secrets (structured, pure;
    /// `ledger_namespace` is where they are stored). The tfstate stays inline when everything
    /// fits under [`SECRET_BUDGET`]; otherwise it moves to parts of at most [`PART_SIZE`].
    pub fn to_secrets(&self, ledger_namespace: &str) -> Result<(Secret, Vec<Secret>), LedgerError> {
        let name = self.secret_name();
        let mut entry = self.entry.clone();
        entry.tfstate_sha256 = self
            .tfstate
            .iter()
            .map(|(k, v)| (k.clone(), sha256_hex(v)))
            .collect();
        entry.tfstate_parts.clear();
        let mut data: BTreeMap<String, ByteString> = BTreeMap::new();
        data.extend(to_bytes(&self.outputs, OUTPUTS_PREFIX));
        for (i, vars) in &self.vars {
            for (k, v) in vars {
                data.insert(format!("{VARS_PREFIX}{i}.{k}"), ByteString(v.clone()));
            }
        }
        let tfstate_size: usize = self
            .tfstate
            .iter()
            .map(|(k, v)| TFSTATE_PREFIX.len() + k.len() + v.len())
            .sum();
        let inline_json = self.serialise_entry(&entry)?;
        let mut parts = Vec::new();
        if data_size(&data) + ENTRY_KEY.len() + inline_json.len() + tfstate_size <= SECRET_BUDGET {
            data.extend(to_bytes(&self.tfstate, TFSTATE_PREFIX));
            data.insert(ENTRY_KEY.to_owned(), ByteString(inline_json));
        } else {
            for (key, bytes) in &self.tfstate {
                for (index, piece) in bytes.chunks(PART_SIZE).enumerate() {
                    let part_name = part_secret_name(&name, parts.len());
                    entry.tfstate_parts.push(TfstatePart {
                        key: key.clone(),
                        index: u32::try_from(index).unwrap_or(u32::MAX),
                        secret: part_name.clone(),
                        size: piece.len(),
                    });
                    parts.push(Secret {
                        metadata: ObjectMeta {
                            name: Some(part_name),
                            namespace: Some(ledger_namespace.to_owned()),
                            labels: Some(
                                [
                                    (LABEL_LEDGER_PART.to_owned(), name.clone()),
                                    (LABEL_RELEASE.to_owned(), self.entry.release.clone()),
                                ]
                                .into(),
                            ),
                            ..ObjectMeta::default()
                        },
                        type_: Some(LEDGER_PART_TYPE.to_owned()),
                        data: Some([(PART_KEY.to_owned(), ByteString(piece.to_vec()))].into()),
                        ..Secret::default()
                    });
                }
            }
            let json = self.serialise_entry(&entry)?;
            data.insert(ENTRY_KEY.to_owned(), ByteString(json));
        }
        let size = data_size(&data);
        if size > SECRET_BUDGET {
            return Err(LedgerError::TooLarge {
                namespace: self.entry.namespace.clone(),
                name: self.entry.name.clone(),
                size,
                limit: SECRET_BUDGET,
            });
        }
        let main = Secret {
            metadata: ObjectMeta {
                name: Some(name),
                namespace: Some(ledger_namespace.to_owned()),
                labels: Some(self.labels()),
                ..ObjectMeta::default()
            },
            type_: Some(LEDGER_SECRET_TYPE.to_owned()),
            data: Some(data),
            ..Secret::default()
        };
        Ok((main, parts))
    }

    /// Build the ledger Secret alone (the tfstate must fit inline).
    pub fn to_secret(&self, ledger_namespace: &str) -> Result<Secret, LedgerError> {
        let (main, parts) = self.to_secrets(ledger_namespace)?;
        if parts.is_empty() {
            Ok(main)
        } else {
            Err(LedgerError::TooLarge {
                namespace: self.entry.namespace.clone(),
                name: self.entry.name.clone(),
                size: self.tfstate.values().map(Vec::len).sum(),
                limit: SECRET_BUDGET,
            })
        }
    }

    /// Parse a ledger Secret (v1 or v2); names the Secret and the field on error. A tfstate
    /// kept in part Secrets is not read here: see [`Self::attach_parts`] / [`load_parts`].
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
        let mut vars: BTreeMap<usize, BTreeMap<String, Vec<u8>>> = BTreeMap::new();
        for (k, v) in data {
            if let Some(key) = k.strip_prefix(OUTPUTS_PREFIX) {
                outputs.insert(key.to_owned(), v.0);
            } else if let Some(key) = k.strip_prefix(TFSTATE_PREFIX) {
                tfstate.insert(key.to_owned(), v.0);
            } else if let Some(rest) = k.strip_prefix(VARS_PREFIX) {
                let parsed = rest
                    .split_once('.')
                    .and_then(|(i, key)| i.parse::<usize>().ok().map(|i| (i, key)));
                let Some((i, key)) = parsed.filter(|(i, _)| *i < entry.vars_from.len()) else {
                    return Err(LedgerError::Corrupt {
                        namespace,
                        name,
                        field: format!("data.{k}"),
                        reason: "not `vars.<index of entry.varsFrom>.<key>`".to_owned(),
                    });
                };
                vars.entry(i).or_default().insert(key.to_owned(), v.0);
            }
        }
        let record = Self {
            entry,
            outputs,
            tfstate,
            vars,
        };
        if record.entry.tfstate_parts.is_empty() {
            record.verify(&namespace, &name)?;
        }
        Ok(record)
    }

    /// True when the tfstate is kept in part Secrets that are not loaded yet.
    pub fn parts_pending(&self) -> bool {
        !self.entry.tfstate_parts.is_empty() && self.tfstate.is_empty()
    }

    /// Put the tfstate back together from its part Secrets (by name) and check the checksums.
    pub fn attach_parts(
        &mut self,
        ledger_namespace: &str,
        parts: &BTreeMap<String, Secret>,
    ) -> Result<(), LedgerError> {
        let name = self.secret_name();
        let mut pieces: Vec<&TfstatePart> = self.entry.tfstate_parts.iter().collect();
        pieces.sort_by(|a, b| (&a.key, a.index).cmp(&(&b.key, b.index)));
        let mut tfstate: BTreeMap<String, Vec<u8>> = BTreeMap::new();
        for p in pieces {
            let bytes = parts
                .get(&p.secret)
                .and_then(|s| s.data.as_ref())
                .and_then(|d| d.get(PART_KEY))
                .ok_or_else(|| LedgerError::Corrupt {
                    namespace: ledger_namespace.to_owned(),
                    name: name.clone(),
                    field: "entry.tfstateParts".to_owned(),
                    reason: format!(
                        "part Secret {ledger_namespace}/{} (data `{PART_KEY}`) is missing",
                        p.secret
                    ),
                })?;
            tfstate
                .entry(p.key.clone())
                .or_default()
                .extend_from_slice(&bytes.0);
        }
        self.tfstate = tfstate;
        self.verify(ledger_namespace, &name)
    }

    /// Check every tfstate key against its recorded SHA-256 (v1 entries have none).
    pub fn verify(&self, ledger_namespace: &str, name: &str) -> Result<(), LedgerError> {
        for (key, want) in &self.entry.tfstate_sha256 {
            let got = self.tfstate.get(key).map(|v| sha256_hex(v));
            if got.as_deref() != Some(want.as_str()) {
                return Err(LedgerError::Corrupt {
                    namespace: ledger_namespace.to_owned(),
                    name: name.to_owned(),
                    field: format!("{TFSTATE_PREFIX}{key}"),
                    reason: match got {
                        Some(g) => format!("SHA-256 {g} differs from the recorded {want}"),
                        None => "missing".to_owned(),
                    },
                });
            }
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::ledger::io::selector;

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
                source: None,
                source_ref: None,
                service_account: None,
                role_binding: None,
                vars_from: vec![VarsFromRecord {
                    kind: "Secret".into(),
                    name: "db-vars".into(),
                    copied: true,
                    ..VarsFromRecord::default()
                }],
                tfstate_sha256: BTreeMap::new(),
                tfstate_parts: Vec::new(),
                not_recorded: Vec::new(),
            },
            outputs: [("endpoint".to_owned(), b"db.example".to_vec())].into(),
            tfstate: [("tfstate".to_owned(), vec![0x1f, 0x8b, 0])].into(),
            vars: [(0, [("password".to_owned(), b"s3cret".to_vec())].into())].into(),
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
        assert_eq!(labels[LABEL_LEDGER], "v2");
        let data = secret.data.clone().unwrap();
        assert!(data.contains_key("outputs.endpoint"));
        assert!(data.contains_key("tfstate.tfstate"));
        assert!(data.contains_key("vars.0.password"));
        // Wire form is camelCase as contracted.
        let json: serde_json::Value = serde_json::from_slice(&data[ENTRY_KEY].0).unwrap();
        assert_eq!(json["tfstateSecret"], "tfstate-default-shop-db");
        assert_eq!(json["tfstateCopied"], true);
        assert_eq!(json["outputsSecret"], "shop-db-outputs");
        assert_eq!(json["decision"], "force-removed");
        assert_eq!(json["cleanup"]["state"], "open");
        assert_eq!(json["inventory"][0]["type"], "aws_db_instance");
        assert_eq!(
            json["tfstateSha256"]["tfstate"],
            sha256_hex(&[0x1f, 0x8b, 0])
        );
        let back = LedgerRecord::from_secret(&secret).unwrap();
        assert_eq!(back.tfstate, rec.tfstate);
        assert_eq!(back.vars, rec.vars);
        assert_eq!(back.entry.vars_from, rec.entry.vars_from);
    }

    #[test]
    fn reads_a_v1_entry() {
        // entry.json as the v1 writer produced it: no v2 fields at all.
        let v1 = serde_json::json!({
            "release": "shop", "namespace": "apps", "name": "shop-db", "uid": "0a1b2c3d-4e",
            "module": "db",
            "terraform": {"name": "shop-db", "spec": {"path": "./db"}},
            "inventory": [{"name": "db", "type": "aws_db_instance", "identifier": "x"}],
            "tfstateSecret": "tfstate-default-shop-db", "tfstateCopied": true,
            "reason": "", "message": "", "attempts": 1, "decision": "orphaned",
            "decidedAt": "2026-11-26T20:00:00Z", "cleanup": {"state": "open", "history": []}
        });
        let secret = Secret {
            metadata: ObjectMeta {
                name: Some("tfops-ledger-shop-db-0a1b2c3d".into()),
                namespace: Some("apps".into()),
                labels: Some([(LABEL_LEDGER.to_owned(), "v1".to_owned())].into()),
                ..ObjectMeta::default()
            },
            type_: Some(LEDGER_SECRET_TYPE.into()),
            data: Some(
                [
                    (
                        ENTRY_KEY.to_owned(),
                        ByteString(serde_json::to_vec(&v1).unwrap()),
                    ),
                    ("tfstate.tfstate".to_owned(), ByteString(b"{}".to_vec())),
                ]
                .into(),
            ),
            ..Secret::default()
        };
        let rec = LedgerRecord::from_secret(&secret).unwrap();
        assert_eq!(rec.entry.inventory.len(), 1);
        assert!(rec.entry.source.is_none() && rec.entry.vars_from.is_empty());
        assert_eq!(rec.tfstate["tfstate"], b"{}");
        assert!(selector(None).contains("v1") && selector(None).contains("v2"));
    }

    #[test]
    fn a_large_tfstate_goes_to_checked_parts() {
        let mut rec = sample();
        // 5 MB of incompressible-looking state: cannot be inline.
        let big: Vec<u8> = (0..5_000_000u32)
            .map(|i| (i.wrapping_mul(2_654_435_761) >> 13) as u8)
            .collect();
        rec.tfstate = [("tfstate".to_owned(), big.clone())].into();
        let (main, parts) = rec.to_secrets("ledger").unwrap();
        assert_eq!(parts.len(), big.len().div_ceil(PART_SIZE));
        for p in &parts {
            assert!(data_size(p.data.as_ref().unwrap()) <= SECRET_BUDGET);
            assert_eq!(p.type_.as_deref(), Some(LEDGER_PART_TYPE));
        }
        let data = main.data.clone().unwrap();
        assert!(!data.contains_key("tfstate.tfstate"));
        assert!(data_size(&data) <= SECRET_BUDGET);
        let mut back = LedgerRecord::from_secret(&main).unwrap();
        assert!(back.parts_pending());
        let by_name: BTreeMap<String, Secret> = parts
            .iter()
            .map(|p| (p.metadata.name.clone().unwrap(), p.clone()))
            .collect();
        back.attach_parts("ledger", &by_name).unwrap();
        assert_eq!(back.tfstate["tfstate"], big);
        // A damaged part is caught by the checksum, naming the field.
        let mut bad = by_name.clone();
        let first = part_secret_name(&rec.secret_name(), 0);
        bad.get_mut(&first)
            .unwrap()
            .data
            .as_mut()
            .unwrap()
            .get_mut(PART_KEY)
            .unwrap()
            .0[0] ^= 1;
        let mut back = LedgerRecord::from_secret(&main).unwrap();
        let e = back.attach_parts("ledger", &bad).unwrap_err().to_string();
        assert!(
            e.contains("tfstate.tfstate") && e.contains("SHA-256"),
            "{e}"
        );
        // Missing part: named.
        let mut back = LedgerRecord::from_secret(&main).unwrap();
        let e = back
            .attach_parts("ledger", &BTreeMap::new())
            .unwrap_err()
            .to_string();
        assert!(e.contains(&first), "{e}");
    }

    #[test]
    fn too_large_without_the_tfstate_is_a_clear_error() {
        let mut rec = sample();
        rec.outputs = [("blob".to_owned(), vec![b'x'; 2 * 1024 * 1024])].into();
        let e = rec.to_secrets("ledger").unwrap_err().to_string();
        assert!(
            e.contains("apps/shop-db") && e.contains("does not fit"),
            "{e}"
        );
    }

    #[test]
    fn recorded_objects_drop_helm_ownership_and_status() {
        let sa = serde_json::json!({
            "apiVersion": "v1", "kind": "ServiceAccount",
            "metadata": {"name": "tf-runner", "namespace": "shop", "uid": "u", "resourceVersion": "3",
                "labels": {"app.kubernetes.io/managed-by": "Helm", "team": "a"},
                "annotations": {"meta.helm.sh/release-name": "shop"}},
            "automountServiceAccountToken": true, "status": {}
        });
        let r = RecordedObject::from_object(&sa, "shop");
        assert!(r.in_release);
        let o = r.to_object(
            "other",
            &[("tfops.dev/cleanup-of".to_owned(), "x".to_owned())].into(),
        );
        assert_eq!(o["metadata"]["namespace"], "other");
        assert_eq!(o["metadata"]["labels"]["team"], "a");
        assert!(o["metadata"]["labels"]
            .get("app.kubernetes.io/managed-by")
            .is_none());
        assert!(o["metadata"].get("uid").is_none() && o.get("status").is_none());
        assert_eq!(o["automountServiceAccountToken"], true);
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
