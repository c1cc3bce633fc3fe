//! Builders of `Terraform` objects in each state as tofu-controller v0.16.5 leaves them, and of
//! ledger entries, for this crate's tests, the CLI tests and the benchmark. Built as
//! structured JSON values, never pasted text.

use std::collections::BTreeMap;

use chrono::{DateTime, Utc};
use serde_json::{json, Value};
use sha2::{Digest, Sha256};

use crate::ledger::{Cleanup, CleanupState, LedgerDecision, LedgerEntry, LedgerItem, LedgerRecord};
use crate::state::State;

/// A deterministic uid for `namespace/name` (uuid-shaped, from its sha256).
pub fn uid_for(namespace: &str, name: &str) -> String {
    let h = hex::encode(Sha256::digest(format!("{namespace}/{name}").as_bytes()));
    format!(
        "{}-{}-4{}-8{}-{}",
        &h[0..8],
        &h[8..12],
        &h[13..16],
        &h[17..20],
        &h[20..32]
    )
}

/// A `Terraform` CR of release `release`, module `module`, with no status yet.
pub fn terraform(namespace: &str, release: &str, module: &str, name: &str) -> Value {
    json!({
        "apiVersion": "infra.contrib.fluxcd.io/v1alpha2",
        "kind": "Terraform",
        "metadata": {
            "name": name,
            "namespace": namespace,
            "uid": uid_for(namespace, name),
            "generation": 1,
            "creationTimestamp": "2026-11-26T10:00:00Z",
            "labels": {"tfops.dev/release": release, "tfops.dev/module": module},
            "annotations": {
                "tfops.dev/uninstall-policy": "destroy",
                "tfops.dev/on-failure": "orphan",
                "tfops.dev/retries": "3",
                "tfops.dev/timeout": "10m",
                "tfops.dev/guard": "hook"
            },
            "finalizers": ["finalizers.tf.contrib.fluxcd.io"]
        },
        "spec": {
            "path": format!("./{module}"),
            "interval": "10m",
            "approvePlan": "auto",
            "sourceRef": {"kind": "OCIRepository", "name": format!("{name}-src")},
            "serviceAccountName": "tf-runner",
            "destroyResourcesOnDeletion": true
        }
    })
}

fn cond(type_: &str, status: &str, reason: &str, message: &str, at: &str) -> Value {
    json!({"type": type_, "status": status, "reason": reason, "message": message,
           "lastTransitionTime": at, "observedGeneration": 1})
}

const REV: &str = "main@sha1:4f0e1b2c3d4e5f60718293a4b5c6d7e8f9012345";
const OLD_REV: &str = "main@sha1:0123456789abcdef0123456789abcdef01234567";
const T: &str = "2026-11-26T11:00:00Z";

fn set_status(obj: &mut Value, status: Value) {
    obj["status"] = status;
}

fn set(obj: &mut Value, path: &[&str], v: Value) {
    let mut cur = obj;
    for p in &path[..path.len() - 1] {
        if cur.get(*p).is_none() {
            cur[*p] = json!({});
        }
        cur = &mut cur[*p];
    }
    if let Some(last) = path.last() {
        cur[*last] = v;
    }
}

/// Put `obj` into `state` the way the controller (and guard) would have; ledger states are
/// not CR states (use [`ledger_item`]) and leave `obj` Ready.
pub fn into_state(obj: &mut Value, state: State) {
    let ready = |status: &str, reason: &str, msg: &str| cond("Ready", status, reason, msg, T);
    let applied = json!({
        "observedGeneration": 1,
        "lastAppliedRevision": REV, "lastAttemptedRevision": REV, "lastPlannedRevision": REV,
        "lastPlanAt": "2026-11-26T10:30:00Z",
        "plan": {"lastApplied": "plan-main-4f0e1b2c3d"},
        "inventory": {"entries": [{"n": "this", "t": "aws_s3_bucket", "id": "bucket-1"}]},
        "conditions": [
            cond("Ready", "True", "TerraformOutputsWritten", &format!("Outputs written: {REV}"), T),
            cond("Apply", "True", "TerraformAppliedSucceed", "Applied successfully", T),
            cond("Plan", "True", "TerraformPlannedWithChanges", "Plan generated", T)
        ]
    });
    match state {
        State::Ready | State::Orphaned | State::ForceRemoved => set_status(obj, applied),
        State::Reconciling => set_status(
            obj,
            json!({"conditions": [
                cond("Reconciling", "True", "Progressing", "Fulfilling prerequisites", T),
                cond("Ready", "Unknown", "Progressing", "Initializing", T)
            ]}),
        ),
        State::Planning => set_status(
            obj,
            json!({"conditions": [cond("Ready", "Unknown", "Progressing", "Terraform Planning", T)]}),
        ),
        State::PlanPending => {
            set(obj, &["spec", "approvePlan"], json!(""));
            let mut st = applied;
            st["lastAppliedRevision"] = json!(OLD_REV);
            st["plan"] = json!({"pending": "plan-main-4f0e1b2c3d"});
            st["conditions"] = json!([
                ready("Unknown", "TerraformPlannedWithChanges",
                      "Plan generated: set approvePlan: \"plan-main-4f0e1b2c3d\" to approve this plan."),
                cond("Plan", "True", "TerraformPlannedWithChanges", "Plan generated", T)
            ]);
            set_status(obj, st);
        }
        State::Drifted => {
            set(obj, &["spec", "approvePlan"], json!("disable"));
            let mut st = applied;
            st["lastDriftDetectedAt"] = json!("2026-11-26T11:30:00Z");
            st["conditions"][0] = ready(
                "False",
                "DriftDetected",
                "aws_s3_bucket.this: tags changed outside of Terraform",
            );
            set_status(obj, st);
        }
        State::Failed => {
            let mut st = applied;
            st["conditions"][0] = ready(
                "False",
                "TFExecApplyFailed",
                "error applying: operation error S3: CreateBucket, api error AccessDenied: Access Denied",
            );
            set_status(obj, st);
        }
        State::Stalled => {
            let mut st = applied;
            st["conditions"] = json!([
                cond(
                    "Stalled",
                    "True",
                    "RetryLimitReached",
                    "Resource reached maximum number of retries.",
                    T
                ),
                ready(
                    "False",
                    "TFExecApplyFailed",
                    "error applying: timeout while waiting for state"
                )
            ]);
            set_status(obj, st);
        }
        State::Suspended => {
            set(obj, &["spec", "suspend"], json!(true));
            set_status(obj, applied);
        }
        State::Destroying => {
            set(
                obj,
                &["metadata", "deletionTimestamp"],
                json!("2026-11-26T12:00:00Z"),
            );
            let mut st = applied;
            st["conditions"][0] = ready("Unknown", "Progressing", "Reconciliation in progress");
            set_status(obj, st);
        }
        State::DestroyFailed => {
            set(
                obj,
                &["metadata", "deletionTimestamp"],
                json!("2026-11-26T12:00:00Z"),
            );
            let progress = json!({
                "attempts": 2, "phase": "deleting", "firstFailureAt": "2026-11-26T12:00:30Z",
                "lastFailureReason": "TFExecApplyFailed",
                "lastRequestedAt": "2026-11-26T12:01:00Z",
                "escalatesAt": "2026-11-26T12:04:00Z"
            })
            .to_string();
            set(
                obj,
                &["metadata", "annotations", "tfops.dev/guard-progress"],
                json!(progress),
            );
            let mut st = applied;
            st["conditions"][0] = ready(
                "False",
                "TFExecApplyFailed",
                "error running Destroy: DependencyViolation: resource sg-1 has a dependent object",
            );
            set_status(obj, st);
        }
        State::Blocked => {
            set(
                obj,
                &["metadata", "deletionTimestamp"],
                json!("2026-11-26T12:00:00Z"),
            );
            let mut st = applied;
            st["conditions"][0] = ready(
                "False",
                "ArtifactFailed",
                "Source 'OCIRepository/apps/src' not found",
            );
            set_status(obj, st);
        }
    }
}

/// A ledger entry (as the guard writes it) for CR `name` in `namespace`.
pub fn ledger_item(
    namespace: &str,
    release: &str,
    module: &str,
    name: &str,
    uid: &str,
    decision: LedgerDecision,
    decided_at: DateTime<Utc>,
) -> LedgerItem {
    let spec = json!({
        "path": format!("./{module}"), "approvePlan": "auto",
        "sourceRef": {"kind": "OCIRepository", "name": format!("{name}-src")},
        "destroyResourcesOnDeletion": false
    });
    let record = LedgerRecord {
        entry: LedgerEntry {
            release: release.into(),
            namespace: namespace.into(),
            name: name.into(),
            uid: uid.into(),
            module: module.into(),
            terraform: tfops_guard::ledger::TerraformSnapshot {
                name: name.into(),
                labels: [
                    ("tfops.dev/release".to_owned(), release.to_owned()),
                    ("tfops.dev/module".to_owned(), module.to_owned()),
                ]
                .into(),
                annotations: BTreeMap::new(),
                spec,
            },
            inventory: vec![tfops_guard::ledger::InventoryEntry {
                name: "this".into(),
                type_: "aws_s3_bucket".into(),
                identifier: "bucket-1".into(),
            }],
            outputs_secret: Some(format!("{name}-outputs")),
            tfstate_secret: format!("tfstate-default-{name}"),
            tfstate_copied: true,
            reason: "TFExecApplyFailed".into(),
            message:
                "error running Destroy: AccessDenied: not authorized to perform s3:DeleteBucket"
                    .into(),
            class: Some("permanent".into()),
            attempts: 1,
            decision,
            first_failure_at: Some(decided_at),
            decided_at,
            cleanup: Cleanup {
                state: CleanupState::Open,
                history: vec![],
            },
            source: None,
            source_ref: None,
            service_account: None,
            role_binding: None,
            vars_from: Vec::new(),
            tfstate_sha256: BTreeMap::new(),
            tfstate_parts: Vec::new(),
            not_recorded: Vec::new(),
        },
        outputs: [(
            "bucket_url".to_owned(),
            b"https://bucket-1.example".to_vec(),
        )]
        .into(),
        tfstate: [("tfstate".to_owned(), b"H4sIAAAAAAAA/secret-state".to_vec())].into(),
        vars: BTreeMap::new(),
    };
    LedgerItem {
        secret_namespace: namespace.into(),
        secret_name: tfops_guard::ledger::secret_name(name, uid),
        record,
    }
}

/// Module names used by [`release`]: one per state, named after it.
pub fn module_for(state: State) -> String {
    state.as_str().to_ascii_lowercase()
}

/// A whole release exercising every state: one `Terraform` CR per CR state (module and CR
/// named `<release>-<state>`) and one ledger entry each for `Orphaned` and `ForceRemoved`
/// (their CRs are gone). `decided_at` stamps the ledger entries.
pub fn release(
    namespace: &str,
    release: &str,
    decided_at: DateTime<Utc>,
) -> (Vec<Value>, Vec<LedgerItem>) {
    let mut crs = Vec::new();
    let mut ledger = Vec::new();
    for state in State::ALL {
        let module = module_for(state);
        let name = format!("{release}-{module}");
        match state {
            State::Orphaned | State::ForceRemoved => {
                let decision = if state == State::Orphaned {
                    LedgerDecision::Orphaned
                } else {
                    LedgerDecision::ForceRemoved
                };
                let uid = uid_for(namespace, &name);
                ledger.push(ledger_item(
                    namespace, release, &module, &name, &uid, decision, decided_at,
                ));
            }
            _ => {
                let mut v = terraform(namespace, release, &module, &name);
                into_state(&mut v, state);
                crs.push(v);
            }
        }
    }
    (crs, ledger)
}
