//! Names and settings tofu-controller derives from a `Terraform` spec: workspace, tfstate
//! Secret and lock Lease names (kubernetes backend), plan Secret and plan id, outputs Secret,
//! runner ServiceAccount, where the state lives, and the retry interval.
//!
//! On purpose this is an independent copy of upstream's names and derivations, not the one in
//! `tfops-api`: the simulation is the reference model the guard is tested against, so a wrong
//! name in the product must make a test fail rather than be shared by both sides.

use std::time::Duration;

use serde_json::Value;

use super::behavior::parse_go_duration;

/// The value at `path` in a JSON object, if every step exists.
pub(super) fn s<'v>(v: &'v Value, path: &[&str]) -> Option<&'v Value> {
    let mut cur = v;
    for p in path {
        cur = cur.get(*p)?;
    }
    Some(cur)
}

/// The string at `path`, or `""`.
pub(super) fn str_at<'v>(v: &'v Value, path: &[&str]) -> &'v str {
    s(v, path).and_then(Value::as_str).unwrap_or("")
}

/// The bool at `path`, or `false`.
pub(super) fn bool_at(v: &Value, path: &[&str]) -> bool {
    s(v, path).and_then(Value::as_bool).unwrap_or(false)
}

/// `plan-<branch>-<hash10>` from a Flux revision (`api/planid`).
pub fn plan_id(revision: &str) -> String {
    match revision.split_once('@') {
        Some((branch, rest)) => {
            let hash = rest.split_once(':').map(|(_, h)| h).unwrap_or(rest);
            let hash: String = hash.chars().take(10).collect();
            format!("plan-{branch}-{hash}")
        }
        None => match revision.split_once('/') {
            Some((branch, hash)) => {
                let hash: String = hash.chars().take(10).collect();
                format!("plan-{branch}-{hash}")
            }
            None => {
                let hash: String = revision.chars().take(10).collect();
                format!("plan-{hash}")
            }
        },
    }
}

/// Workspace name (`spec.workspace` or `default`).
pub fn workspace(tf: &Value) -> String {
    let ws = str_at(tf, &["spec", "workspace"]);
    if ws.is_empty() {
        "default".to_string()
    } else {
        ws.to_string()
    }
}

/// Name of the tfstate Secret (`tfstate-<workspace>-<secret suffix or name>`).
pub fn tfstate_secret_name(tf: &Value) -> String {
    let suffix = str_at(tf, &["spec", "backendConfig", "secretSuffix"]);
    let suffix = if suffix.is_empty() {
        str_at(tf, &["metadata", "name"])
    } else {
        suffix
    };
    format!("tfstate-{}-{}", workspace(tf), suffix)
}

/// Whether the state lives in a tfstate Secret (the default kubernetes backend): not with
/// `spec.cloud`, `backendConfig.disable` or `backendConfig.customConfiguration`.
pub fn state_in_cluster(tf: &Value) -> bool {
    if s(tf, &["spec", "cloud"]).is_some_and(|c| !c.is_null()) {
        return false;
    }
    if bool_at(tf, &["spec", "backendConfig", "disable"]) {
        return false;
    }
    str_at(tf, &["spec", "backendConfig", "customConfiguration"])
        .trim()
        .is_empty()
}

/// Name of the lock Lease (`lock-tfstate-<workspace>-<suffix>`).
pub fn lock_lease_name(tf: &Value) -> String {
    format!("lock-{}", tfstate_secret_name(tf))
}

/// Name of the (legacy, single) plan Secret.
pub fn plan_secret_name(tf: &Value) -> String {
    format!(
        "tfplan-{}-{}",
        workspace(tf),
        str_at(tf, &["metadata", "name"])
    )
}

/// `spec.writeOutputsToSecret.name`, if set.
pub fn outputs_secret_name(tf: &Value) -> Option<String> {
    let n = str_at(tf, &["spec", "writeOutputsToSecret", "name"]);
    (!n.is_empty()).then(|| n.to_string())
}

/// The runner ServiceAccount name.
pub fn runner_service_account(tf: &Value) -> String {
    let n = str_at(tf, &["spec", "serviceAccountName"]);
    if n.is_empty() {
        "tf-runner".to_string()
    } else {
        n.to_string()
    }
}

/// `GetRetryInterval` (`retryInterval`, default 15 s; `ExponentialBackoff` doubles per failure).
pub fn retry_interval(tf: &Value) -> Duration {
    let base = parse_go_duration(str_at(tf, &["spec", "retryInterval"]))
        .unwrap_or(Duration::from_secs(15));
    if str_at(tf, &["spec", "retryStrategy"]) == "ExponentialBackoff" {
        let failures = s(tf, &["status", "reconciliationFailures"])
            .and_then(Value::as_u64)
            .unwrap_or(0)
            .min(40) as u32;
        let max = parse_go_duration(str_at(tf, &["spec", "maxRetryInterval"]))
            .unwrap_or(Duration::from_secs(24 * 3600));
        let scaled = base.saturating_mul(2u32.saturating_pow(failures.min(31)));
        return scaled.min(max);
    }
    base
}
