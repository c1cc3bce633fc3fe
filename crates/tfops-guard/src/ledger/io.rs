//! `ledger::io` — the orphan ledger's thin kube reads and writes: write an entry (with its part
//! Secrets), record a clean-up step, replace a tfstate copy, list and load entries.

use std::collections::BTreeMap;

use k8s_openapi::api::core::v1::Secret;
use k8s_openapi::ByteString;
use kube::api::{ListParams, Patch, PatchParams, PostParams};
use kube::{Api, Client};

use super::format::*;

/// Read the part Secrets of `record` (when its tfstate is kept in parts) and attach them.
pub async fn load_parts(
    client: &Client,
    ledger_namespace: &str,
    record: &mut LedgerRecord,
) -> Result<(), LedgerError> {
    if !record.parts_pending() {
        return Ok(());
    }
    let api: Api<Secret> = Api::namespaced(client.clone(), ledger_namespace);
    let mut parts = BTreeMap::new();
    for p in &record.entry.tfstate_parts {
        if parts.contains_key(&p.secret) {
            continue;
        }
        let s = api
            .get(&p.secret)
            .await
            .map_err(|source| LedgerError::ReadPart {
                namespace: ledger_namespace.to_owned(),
                name: p.secret.clone(),
                source,
            })?;
        parts.insert(p.secret.clone(), s);
    }
    record.attach_parts(ledger_namespace, &parts)
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
    let (secret, parts) = record.to_secrets(ledger_namespace)?;
    let name = record.secret_name();
    let werr = |source| LedgerError::Write {
        namespace: ledger_namespace.to_owned(),
        name: name.clone(),
        source,
    };
    if api.get_metadata_opt(&name).await.map_err(werr)?.is_none() {
        // Parts first: once the entry exists, everything it names exists.
        for part in &parts {
            let part_name = part.metadata.name.clone().unwrap_or_default();
            let perr = |source| LedgerError::Write {
                namespace: ledger_namespace.to_owned(),
                name: part_name.clone(),
                source,
            };
            match api.create(&PostParams::default(), part).await {
                Ok(_) => {}
                Err(kube::Error::Api(status)) if status.code == 409 => {
                    // Left by an interrupted earlier write of the same entry: overwrite.
                    let existing = api.get(&part_name).await.map_err(perr)?;
                    let mut desired = part.clone();
                    desired.metadata.resource_version = existing.metadata.resource_version;
                    api.replace(&part_name, &PostParams::default(), &desired)
                        .await
                        .map_err(perr)?;
                }
                Err(source) => return Err(perr(source)),
            }
        }
    }
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
                patch_entry(&api, &existing, &entry)
                    .await
                    .map_err(|e| match e {
                        PatchEntryError::Json(source) => LedgerError::Serialise {
                            namespace: entry.namespace.clone(),
                            name: entry.name.clone(),
                            source,
                        },
                        PatchEntryError::Kube(source) => werr(source),
                    })?;
            }
            Ok(WriteOutcome::AlreadyPresent)
        }
        Err(source) => Err(werr(source)),
    }
}

enum PatchEntryError {
    Json(serde_json::Error),
    Kube(kube::Error),
}

/// Replace `entry.json` (and the decision label) of an existing ledger Secret, guarded by its
/// resourceVersion; the copied data (inline or in parts) is left as it is.
async fn patch_entry(
    api: &Api<Secret>,
    existing: &Secret,
    entry: &LedgerEntry,
) -> Result<(), PatchEntryError> {
    let json = serde_json::to_vec(entry).map_err(PatchEntryError::Json)?;
    let patch = serde_json::json!({
        "metadata": {
            "resourceVersion": existing.metadata.resource_version,
            "labels": {LABEL_DECISION: entry.decision.as_str()},
        },
        "data": {ENTRY_KEY: ByteString(json)},
    });
    let name = existing.metadata.name.clone().unwrap_or_default();
    api.patch(&name, &PatchParams::default(), &Patch::Merge(&patch))
        .await
        .map_err(PatchEntryError::Kube)?;
    Ok(())
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
    patch_entry(&api, &existing, &record.entry)
        .await
        .map_err(|e| match e {
            PatchEntryError::Json(source) => LedgerError::Serialise {
                namespace: record.entry.namespace.clone(),
                name: record.entry.name.clone(),
                source,
            },
            PatchEntryError::Kube(source) => werr(source),
        })?;
    Ok(record)
}

/// Replace the tfstate copy of an existing entry (e.g. after a partial destroy changed the
/// state): new parts are written before the entry names them, the entry is replaced guarded by
/// its resourceVersion, and only then are parts it no longer names deleted.
pub async fn replace_tfstate(
    client: &Client,
    ledger_namespace: &str,
    secret_name: &str,
    tfstate: BTreeMap<String, Vec<u8>>,
) -> Result<(), LedgerError> {
    let api: Api<Secret> = Api::namespaced(client.clone(), ledger_namespace);
    let werr = |name: &str| {
        let name = name.to_owned();
        move |source| LedgerError::Write {
            namespace: ledger_namespace.to_owned(),
            name,
            source,
        }
    };
    let existing = api.get(secret_name).await.map_err(werr(secret_name))?;
    let mut record = LedgerRecord::from_secret(&existing)?;
    let old_parts: Vec<String> = record
        .entry
        .tfstate_parts
        .iter()
        .map(|p| p.secret.clone())
        .collect();
    record.tfstate = tfstate;
    record.entry.tfstate_copied = true;
    let (mut main, parts) = record.to_secrets(ledger_namespace)?;
    // Keep the labels the entry has (its version may be v1: the data layout is v2 now).
    main.metadata.labels = existing.metadata.labels.clone().map(|mut l| {
        l.insert(LABEL_LEDGER.to_owned(), LEDGER_VERSION.to_owned());
        l
    });
    for part in &parts {
        let name = part.metadata.name.clone().unwrap_or_default();
        match api.get_opt(&name).await.map_err(werr(&name))? {
            Some(cur) => {
                let mut desired = part.clone();
                desired.metadata.resource_version = cur.metadata.resource_version;
                api.replace(&name, &PostParams::default(), &desired)
                    .await
                    .map_err(werr(&name))?;
            }
            None => {
                api.create(&PostParams::default(), part)
                    .await
                    .map_err(werr(&name))?;
            }
        }
    }
    main.metadata.resource_version = existing.metadata.resource_version.clone();
    api.replace(secret_name, &PostParams::default(), &main)
        .await
        .map_err(werr(secret_name))?;
    let kept: Vec<String> = parts
        .iter()
        .filter_map(|p| p.metadata.name.clone())
        .collect();
    for old in old_parts.iter().filter(|o| !kept.contains(o)) {
        match api.delete(old, &Default::default()).await {
            Ok(_) => {}
            Err(kube::Error::Api(s)) if s.code == 404 => {}
            Err(source) => return Err(werr(old)(source)),
        }
    }
    Ok(())
}

/// Label selector of ledger Secrets of every readable format, optionally of one release.
pub fn selector(release: Option<&str>) -> String {
    let mut selector = format!("{LABEL_LEDGER} in ({})", LEDGER_VERSIONS.join(","));
    if let Some(r) = release {
        selector.push_str(&format!(",{LABEL_RELEASE}={r}"));
    }
    selector
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
    let list = api
        .list(&ListParams::default().labels(&selector(release)))
        .await
        .map_err(|source| LedgerError::List {
            scope: namespace.unwrap_or("all namespaces").to_owned(),
            source,
        })?;
    Ok(list.items.iter().map(LedgerRecord::from_secret).collect())
}
