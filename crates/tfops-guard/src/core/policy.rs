//! `policy` — the per-CR uninstall policy: what the guard may do with one `Terraform` CR.
//!
//! Resolution order: the CR's `tfops.dev/*` annotations (written by the post-renderer with
//! already-resolved values) over [`PolicyDefaults`] (built-in: destroy, orphan, 3 retries,
//! 10m; the guard's flags may override them).
//!
//! Invalid annotation values never abort the guard: [`resolve`] returns the policy with a
//! *safe fallback* for each bad field plus one [`PolicyError`] per bad annotation, which the
//! runtime must report (Event + log). The fallbacks are chosen so that nothing is lost and the
//! uninstall still finishes:
//! - `uninstall-policy` invalid → `retain` (never destroy real infrastructure on an unreadable
//!   intent; the CR is orphaned with a ledger entry, so nothing is lost and it can still be
//!   destroyed later from the ledger),
//! - `on-failure` invalid → `orphan` (keeps the cloud resources, writes the ledger, lets the
//!   uninstall finish; `force` would skip the controller's secret cleanup, `block` would wedge
//!   the uninstall on a typo),
//! - `retries` / `timeout` / `force-unlock` invalid → the default value.

use std::collections::BTreeMap;
use std::time::Duration;

use serde::{Deserialize, Serialize};

use tfops_api::duration::{format_duration, parse_duration};

pub use tfops_api::names::{
    ANN_FORCE_UNLOCK, ANN_GUARD, ANN_ON_FAILURE, ANN_RETRIES, ANN_TIMEOUT, ANN_UNINSTALL_POLICY,
};

pub use tfops_api::{OnFailure, UninstallPolicy};

/// The resolved policy of one CR.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Policy {
    pub uninstall: UninstallPolicy,
    pub on_failure: OnFailure,
    /// Retries after the first failed destroy attempt: the guard escalates after
    /// `1 + retries` failed attempts.
    pub retries: u32,
    /// The longest the guard spends on this CR before escalating to `on_failure`.
    #[serde(with = "tfops_api::duration::serde_go")]
    pub timeout: Duration,
    /// Whether the guard may force-unlock the state when the current failure names a lock
    /// whose holder is provably gone (annotation `tfops.dev/force-unlock`; off by default:
    /// a wrong force-unlock can corrupt state, and a stale `forceUnlock: yes` fails every
    /// later setup).
    pub force_unlock: bool,
}

/// Defaults applied where a CR has no annotation (built-in, overridable by guard flags).
pub type PolicyDefaults = Policy;

impl Default for Policy {
    /// Built-in defaults: destroy, orphan, 3 retries, 10m, no force-unlock.
    fn default() -> Self {
        Policy {
            uninstall: UninstallPolicy::Destroy,
            on_failure: OnFailure::Orphan,
            retries: 3,
            timeout: Duration::from_secs(600),
            force_unlock: false,
        }
    }
}

impl Policy {
    /// The annotations that express this policy (as the post-renderer writes them).
    pub fn to_annotations(&self) -> BTreeMap<String, String> {
        let mut m = BTreeMap::new();
        m.insert(ANN_UNINSTALL_POLICY.to_string(), self.uninstall.to_string());
        m.insert(ANN_ON_FAILURE.to_string(), self.on_failure.to_string());
        m.insert(ANN_RETRIES.to_string(), self.retries.to_string());
        m.insert(ANN_TIMEOUT.to_string(), format_duration(self.timeout));
        if self.force_unlock {
            m.insert(ANN_FORCE_UNLOCK.to_string(), "true".to_string());
        }
        m
    }
}

/// One invalid policy annotation; the field fell back to [`PolicyError::fallback`].
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("annotation {annotation}: invalid value {value:?} (expected {expected}); using the safe fallback {fallback:?}")]
pub struct PolicyError {
    /// The annotation key, e.g. `tfops.dev/on-failure`.
    pub annotation: &'static str,
    /// The value found on the CR.
    pub value: String,
    /// What would have been accepted.
    pub expected: String,
    /// The value used instead.
    pub fallback: String,
}

/// A resolved policy plus the annotation problems met on the way.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Resolved {
    pub policy: Policy,
    pub errors: Vec<PolicyError>,
}

/// Resolve a CR's policy from its annotations over `defaults`. Never fails: each invalid
/// annotation yields its safe fallback (see the module doc) and a [`PolicyError`].
pub fn resolve(annotations: &BTreeMap<String, String>, defaults: &PolicyDefaults) -> Resolved {
    let mut policy = defaults.clone();
    let mut errors = Vec::new();
    if let Some(v) = annotations.get(ANN_UNINSTALL_POLICY) {
        match v.parse::<UninstallPolicy>() {
            Ok(p) => policy.uninstall = p,
            Err(e) => {
                policy.uninstall = UninstallPolicy::Retain;
                errors.push(PolicyError {
                    annotation: ANN_UNINSTALL_POLICY,
                    value: v.clone(),
                    expected: e.expected.to_string(),
                    fallback: UninstallPolicy::Retain.to_string(),
                });
            }
        }
    }
    if let Some(v) = annotations.get(ANN_ON_FAILURE) {
        match v.parse::<OnFailure>() {
            Ok(p) => policy.on_failure = p,
            Err(e) => {
                policy.on_failure = OnFailure::Orphan;
                errors.push(PolicyError {
                    annotation: ANN_ON_FAILURE,
                    value: v.clone(),
                    expected: e.expected.to_string(),
                    fallback: OnFailure::Orphan.to_string(),
                });
            }
        }
    }
    if let Some(v) = annotations.get(ANN_RETRIES) {
        match v.trim().parse::<u32>() {
            Ok(n) if n <= 100 => policy.retries = n,
            _ => errors.push(PolicyError {
                annotation: ANN_RETRIES,
                value: v.clone(),
                expected: "a whole number from 0 to 100".to_string(),
                fallback: defaults.retries.to_string(),
            }),
        }
    }
    if let Some(v) = annotations.get(ANN_TIMEOUT) {
        match parse_duration(v) {
            Ok(d) if !d.is_zero() => policy.timeout = d,
            _ => errors.push(PolicyError {
                annotation: ANN_TIMEOUT,
                value: v.clone(),
                expected: "a positive Go-style duration such as 90s, 10m or 1h30m".to_string(),
                fallback: format_duration(defaults.timeout),
            }),
        }
    }
    if let Some(v) = annotations.get(ANN_FORCE_UNLOCK) {
        match v.trim().to_ascii_lowercase().as_str() {
            "true" | "yes" => policy.force_unlock = true,
            "false" | "no" => policy.force_unlock = false,
            _ => errors.push(PolicyError {
                annotation: ANN_FORCE_UNLOCK,
                value: v.clone(),
                expected: "true or false".to_string(),
                fallback: defaults.force_unlock.to_string(),
            }),
        }
    }
    Resolved { policy, errors }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ann(pairs: &[(&str, &str)]) -> BTreeMap<String, String> {
        pairs
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect()
    }

    #[test]
    fn no_annotations_gives_defaults() {
        let r = resolve(&BTreeMap::new(), &Policy::default());
        assert_eq!(r.policy, Policy::default());
        assert!(r.errors.is_empty());
        assert_eq!(r.policy.uninstall, UninstallPolicy::Destroy);
        assert_eq!(r.policy.on_failure, OnFailure::Orphan);
        assert_eq!(r.policy.retries, 3);
        assert_eq!(r.policy.timeout, Duration::from_secs(600));
    }

    #[test]
    fn annotations_override_defaults() {
        let r = resolve(
            &ann(&[
                (ANN_UNINSTALL_POLICY, "retain"),
                (ANN_ON_FAILURE, "Block"),
                (ANN_RETRIES, "0"),
                (ANN_TIMEOUT, "1h30m"),
                (ANN_FORCE_UNLOCK, "false"),
            ]),
            &Policy::default(),
        );
        assert!(r.errors.is_empty(), "{:?}", r.errors);
        assert_eq!(r.policy.uninstall, UninstallPolicy::Retain);
        assert_eq!(r.policy.on_failure, OnFailure::Block);
        assert_eq!(r.policy.retries, 0);
        assert_eq!(r.policy.timeout, Duration::from_secs(5400));
        assert!(!r.policy.force_unlock);
    }

    #[test]
    fn guard_flag_defaults_apply_where_annotations_are_missing() {
        let defaults = Policy {
            on_failure: OnFailure::Force,
            retries: 5,
            ..Policy::default()
        };
        let r = resolve(&ann(&[(ANN_RETRIES, "1")]), &defaults);
        assert_eq!(r.policy.on_failure, OnFailure::Force);
        assert_eq!(r.policy.retries, 1);
    }

    #[test]
    fn invalid_values_fall_back_safely_and_name_the_annotation() {
        let defaults = Policy {
            uninstall: UninstallPolicy::Destroy,
            on_failure: OnFailure::Block,
            ..Policy::default()
        };
        let r = resolve(
            &ann(&[
                (ANN_UNINSTALL_POLICY, "destory"),
                (ANN_ON_FAILURE, "ignore"),
                (ANN_RETRIES, "-1"),
                (ANN_TIMEOUT, "ten minutes"),
                (ANN_FORCE_UNLOCK, "maybe"),
            ]),
            &defaults,
        );
        assert_eq!(r.policy.uninstall, UninstallPolicy::Retain);
        assert_eq!(r.policy.on_failure, OnFailure::Orphan);
        assert_eq!(r.policy.retries, 3);
        assert_eq!(r.policy.timeout, Duration::from_secs(600));
        assert!(!r.policy.force_unlock, "falls back to the default: off");
        let names: Vec<_> = r.errors.iter().map(|e| e.annotation).collect();
        assert_eq!(
            names,
            vec![
                ANN_UNINSTALL_POLICY,
                ANN_ON_FAILURE,
                ANN_RETRIES,
                ANN_TIMEOUT,
                ANN_FORCE_UNLOCK
            ]
        );
        let msg = r.errors[0].to_string();
        assert!(msg.contains("tfops.dev/uninstall-policy"), "{msg}");
        assert!(msg.contains("destory"), "{msg}");
        assert!(msg.contains("retain"), "{msg}");
    }

    #[test]
    fn zero_timeout_is_rejected() {
        let r = resolve(&ann(&[(ANN_TIMEOUT, "0s")]), &Policy::default());
        assert_eq!(r.errors.len(), 1);
        assert_eq!(r.policy.timeout, Duration::from_secs(600));
    }

    #[test]
    fn annotations_round_trip() {
        let p = Policy {
            uninstall: UninstallPolicy::Retain,
            on_failure: OnFailure::Force,
            retries: 7,
            timeout: Duration::from_secs(90),
            force_unlock: true,
        };
        let a = p.to_annotations();
        assert_eq!(a[ANN_TIMEOUT], "1m30s");
        assert_eq!(resolve(&a, &Policy::default()).policy, p);
    }
}
