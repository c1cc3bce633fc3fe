//! The behaviour script of one simulated `Terraform` CR: what terraform and the cloud do when
//! the controller destroys it (outcome sequence, messages, durations, lock holder, pauses).
//! Serialised as camelCase JSON (annotation `sim.tfops.dev/behavior`), durations Go-style
//! (`"250ms"`, `"20s"`, `"1m30s"`).

use std::collections::BTreeMap;
use std::time::Duration;

use serde::{Deserialize, Serialize};

/// Which terraform step of a destroy attempt fails.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, Default)]
#[serde(rename_all = "camelCase")]
pub enum FailStage {
    /// `terraform plan -destroy` fails (`TFExecPlanFailed`).
    Plan,
    /// `terraform apply` of the destroy plan fails (`TFExecApplyFailed`).
    #[default]
    Apply,
}

/// One entry of the destroy outcome sequence.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "outcome", rename_all = "camelCase")]
pub enum DestroyAttempt {
    /// The attempt fails with this terraform error text, `times` times (default 1;
    /// `forever: true` never moves past this entry). `destroyed` names the inventory entries
    /// the failed apply destroyed before the error: the state it writes no longer has them.
    #[serde(rename_all = "camelCase")]
    Fail {
        #[serde(default)]
        stage: FailStage,
        message: String,
        #[serde(default = "one")]
        times: u32,
        #[serde(default)]
        forever: bool,
        #[serde(default, skip_serializing_if = "Vec::is_empty")]
        destroyed: Vec<String>,
    },
    /// The attempt succeeds.
    Succeed,
}

fn one() -> u32 {
    1
}

impl DestroyAttempt {
    /// An attempt that fails with `message` at `stage`, `times` times, destroying nothing
    /// first.
    pub fn fail(stage: FailStage, message: impl Into<String>, times: u32) -> Self {
        DestroyAttempt::Fail {
            stage,
            message: message.into(),
            times,
            forever: false,
            destroyed: Vec::new(),
        }
    }

    /// An attempt that fails with `message` at `stage` every time, destroying nothing.
    pub fn fail_forever(stage: FailStage, message: impl Into<String>) -> Self {
        DestroyAttempt::Fail {
            stage,
            message: message.into(),
            times: 1,
            forever: true,
            destroyed: Vec::new(),
        }
    }
}

/// A state lock held by someone else (a Lease `lock-tfstate-<ws>-<name>` the driver creates).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct LockSpec {
    /// Lock ID (terraform prints it as `Lock Info: ID:`).
    #[serde(default = "default_lock_id")]
    pub id: String,
    /// Holder (`Who:`), e.g. `runner@my-module-tf-runner`.
    #[serde(default = "default_lock_who")]
    pub who: String,
    /// Operation that holds it.
    #[serde(default = "default_lock_operation")]
    pub operation: String,
    /// Released by its holder after this long (from when the simulation first sees the CR);
    /// `None` = never released (only force-unlock frees it).
    #[serde(
        default,
        with = "opt_go_duration",
        skip_serializing_if = "Option::is_none"
    )]
    pub release_after: Option<Duration>,
}

fn default_lock_id() -> String {
    "9db590f1-b6fe-c5f2-2f24-b1d3f0e2c7a4".to_string()
}
fn default_lock_who() -> String {
    "runner@crashed-tf-runner".to_string()
}
fn default_lock_operation() -> String {
    "OperationTypeApply".to_string()
}

/// Everything the simulation needs to know about one CR's "terraform + cloud".
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, Default)]
#[serde(rename_all = "camelCase", default)]
pub struct Behavior {
    /// Destroy outcomes, consumed one per destroy attempt; after the list: success.
    pub destroy: Vec<DestroyAttempt>,
    /// The destroy plan is empty (nothing in state) even if the state Secret says otherwise.
    pub nothing_to_destroy: bool,
    /// A foreign lock on the state.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub lock: Option<LockSpec>,
    /// Simulated time `terraform apply` of the destroy plan takes.
    #[serde(with = "go_duration")]
    pub destroy_duration: Duration,
    /// Simulated time a normal apply takes.
    #[serde(with = "go_duration")]
    pub apply_duration: Duration,
    /// Delay before each reconcile of this CR starts (controller busy / slow API).
    #[serde(with = "go_duration")]
    pub reconcile_latency: Duration,
    /// The controller ignores this CR entirely (as if stopped, for this CR only).
    pub paused: bool,
    /// Resources the (normal) apply creates; default one `aws_s3_bucket`.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub inventory: Option<Vec<InventoryEntry>>,
    /// More attributes the state records for the resource of that inventory name (what it
    /// references: `subnet_id`, `vpc_security_group_ids` …); the inventory itself has only
    /// name, type and identifier.
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub state_attributes: BTreeMap<String, serde_json::Map<String, serde_json::Value>>,
    /// Outputs the apply produces (written to `writeOutputsToSecret`); default `{"id": <name>}`.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub outputs: Option<serde_json::Map<String, serde_json::Value>>,
    /// Drift is detected on the next drift-detection run.
    pub drift: bool,
    /// This CR's runner pods take this long to start (overrides the simulation's timing
    /// model; takes effect when runner pods are simulated).
    #[serde(
        default,
        skip_serializing_if = "Option::is_none",
        with = "go_duration_opt"
    )]
    pub runner_start: Option<Duration>,
}

/// `Option<Duration>` as a Go duration string.
mod go_duration_opt {
    use serde::{Deserialize, Deserializer, Serializer};
    use std::time::Duration;

    pub fn serialize<S: Serializer>(d: &Option<Duration>, s: S) -> Result<S::Ok, S::Error> {
        match d {
            Some(d) => super::go_duration::serialize(d, s),
            None => s.serialize_none(),
        }
    }

    pub fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<Option<Duration>, D::Error> {
        #[derive(Deserialize)]
        struct W(#[serde(with = "super::go_duration")] Duration);
        Ok(Option::<W>::deserialize(d)?.map(|w| w.0))
    }
}

/// One `status.inventory.entries` item, serialised with the v0.16.5 CRD's keys
/// (`n`, `t`, `id`); behaviour scripts may also spell them `name`, `type`, `identifier`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct InventoryEntry {
    #[serde(rename = "n", alias = "name")]
    pub name: String,
    #[serde(rename = "t", alias = "type")]
    pub kind: String,
    #[serde(rename = "id", alias = "identifier")]
    pub identifier: String,
}

/// The outcome of the `attempt`-th destroy attempt (0-based) under `script`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum AttemptOutcome {
    Fail { stage: FailStage, message: String },
    Succeed,
}

impl Behavior {
    /// Parse from the annotation value.
    pub fn from_json(text: &str) -> Result<Self, serde_json::Error> {
        serde_json::from_str(text)
    }

    /// The outcome entry that governs destroy attempt number `attempt` (0-based); `None`
    /// past the end of the list (success).
    fn step(&self, attempt: u32) -> Option<&DestroyAttempt> {
        let mut remaining = attempt;
        for step in &self.destroy {
            let covers = match step {
                DestroyAttempt::Succeed => 1,
                DestroyAttempt::Fail { forever: true, .. } => return Some(step),
                DestroyAttempt::Fail { times, .. } => *times,
            };
            if remaining < covers {
                return Some(step);
            }
            remaining -= covers;
        }
        None
    }

    /// What destroy attempt number `attempt` (0-based) does.
    pub fn destroy_outcome(&self, attempt: u32) -> AttemptOutcome {
        match self.step(attempt) {
            Some(DestroyAttempt::Fail { stage, message, .. }) => AttemptOutcome::Fail {
                stage: *stage,
                message: message.clone(),
            },
            _ => AttemptOutcome::Succeed,
        }
    }

    /// Inventory names that the failed applies of attempts `0..=attempt` destroyed before
    /// their error (a plan that fails destroys nothing).
    pub fn destroyed_through(&self, attempt: u32) -> std::collections::BTreeSet<String> {
        (0..=attempt)
            .filter_map(|a| match self.step(a) {
                Some(DestroyAttempt::Fail {
                    stage: FailStage::Apply,
                    destroyed,
                    ..
                }) => Some(destroyed.iter().cloned()),
                _ => None,
            })
            .flatten()
            .collect()
    }

    /// Inventory entries a successful apply records for CR `name`.
    pub fn inventory_for(&self, name: &str) -> Vec<InventoryEntry> {
        match &self.inventory {
            Some(entries) => entries.clone(),
            None => vec![InventoryEntry {
                name: "this".to_string(),
                kind: "aws_s3_bucket".to_string(),
                identifier: format!("{name}-bucket"),
            }],
        }
    }

    /// Outputs a successful apply produces for CR `name`.
    pub fn outputs_for(&self, name: &str) -> serde_json::Map<String, serde_json::Value> {
        match &self.outputs {
            Some(o) => o.clone(),
            None => {
                let mut m = serde_json::Map::new();
                m.insert(
                    "id".to_string(),
                    serde_json::Value::String(format!("{name}-bucket")),
                );
                m
            }
        }
    }
}

/// Parse a Go-style duration (`250ms`, `20s`, `1m30s`, `2h`) with the project's one grammar
/// (`tfops_api::duration`, Go's `time.ParseDuration` without negatives); for scenario authors a
/// bare number also means seconds.
pub fn parse_go_duration(text: &str) -> Option<Duration> {
    let text = text.trim();
    if let Ok(secs) = text.parse::<f64>() {
        return (secs >= 0.0 && secs.is_finite()).then(|| Duration::from_secs_f64(secs));
    }
    tfops_api::duration::parse_duration(text).ok()
}

/// Format a duration the way Go's `Duration.String()` does (`1m30s`, `1h0m5s`, `250ms`, `0s`).
pub fn format_go_duration(d: Duration) -> String {
    tfops_api::duration::format_duration(d)
}

mod go_duration {
    use std::time::Duration;

    use serde::{Deserialize, Deserializer, Serializer};

    pub fn serialize<S: Serializer>(d: &Duration, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(&super::format_go_duration(*d))
    }

    pub fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<Duration, D::Error> {
        let v = serde_json::Value::deserialize(d)?;
        let text = match &v {
            serde_json::Value::String(s) => s.clone(),
            serde_json::Value::Number(n) => n.to_string(),
            _ => {
                return Err(serde::de::Error::custom(
                    "duration must be a string like \"20s\"",
                ))
            }
        };
        super::parse_go_duration(&text)
            .ok_or_else(|| serde::de::Error::custom(format!("invalid duration {text:?}")))
    }
}

mod opt_go_duration {
    use std::time::Duration;

    use serde::{Deserializer, Serializer};

    pub fn serialize<S: Serializer>(d: &Option<Duration>, s: S) -> Result<S::Ok, S::Error> {
        match d {
            Some(d) => super::go_duration::serialize(d, s),
            None => s.serialize_none(),
        }
    }

    pub fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<Option<Duration>, D::Error> {
        super::go_duration::deserialize(d).map(Some)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn outcome_sequence_fail_twice_then_succeed() {
        let b = Behavior {
            destroy: vec![DestroyAttempt::fail(FailStage::Apply, "throttled", 2)],
            ..Default::default()
        };
        assert!(matches!(b.destroy_outcome(0), AttemptOutcome::Fail { .. }));
        assert!(matches!(b.destroy_outcome(1), AttemptOutcome::Fail { .. }));
        assert_eq!(b.destroy_outcome(2), AttemptOutcome::Succeed);
    }

    #[test]
    fn forever_never_succeeds() {
        let b = Behavior {
            destroy: vec![DestroyAttempt::fail_forever(FailStage::Plan, "denied")],
            ..Default::default()
        };
        for i in [0, 1, 50, 10_000] {
            assert!(matches!(
                b.destroy_outcome(i),
                AttemptOutcome::Fail {
                    stage: FailStage::Plan,
                    ..
                }
            ));
        }
    }

    #[test]
    fn mixed_sequence_walks_entries_in_order() {
        let b = Behavior {
            destroy: vec![
                DestroyAttempt::fail(FailStage::Plan, "a", 1),
                DestroyAttempt::Succeed,
                DestroyAttempt::fail(FailStage::Apply, "b", 1),
            ],
            ..Default::default()
        };
        assert_eq!(
            b.destroy_outcome(0),
            AttemptOutcome::Fail {
                stage: FailStage::Plan,
                message: "a".into()
            }
        );
        assert_eq!(b.destroy_outcome(1), AttemptOutcome::Succeed);
        assert_eq!(
            b.destroy_outcome(2),
            AttemptOutcome::Fail {
                stage: FailStage::Apply,
                message: "b".into()
            }
        );
        assert_eq!(b.destroy_outcome(3), AttemptOutcome::Succeed);
    }

    #[test]
    fn json_round_trip_with_go_durations() {
        let text = r#"{"destroy":[{"outcome":"fail","message":"x","times":3}],
            "destroyDuration":"1m30s","reconcileLatency":"250ms",
            "lock":{"who":"runner@other","releaseAfter":"45s"}}"#;
        let b = Behavior::from_json(text).unwrap();
        assert_eq!(b.destroy_duration, Duration::from_secs(90));
        assert_eq!(b.reconcile_latency, Duration::from_millis(250));
        let lock = b.lock.clone().unwrap();
        assert_eq!(lock.release_after, Some(Duration::from_secs(45)));
        assert_eq!(lock.who, "runner@other");
        let again = Behavior::from_json(&serde_json::to_string(&b).unwrap()).unwrap();
        assert_eq!(again, b);
    }

    #[test]
    fn go_duration_parse_and_format() {
        assert_eq!(parse_go_duration("10m"), Some(Duration::from_secs(600)));
        assert_eq!(parse_go_duration("1h30m"), Some(Duration::from_secs(5400)));
        assert_eq!(parse_go_duration("15"), Some(Duration::from_secs(15)));
        assert_eq!(parse_go_duration("1x"), None);
        assert_eq!(parse_go_duration(""), None);
        assert_eq!(format_go_duration(Duration::from_secs(5400)), "1h30m");
        assert_eq!(format_go_duration(Duration::from_millis(250)), "250ms");
        assert_eq!(format_go_duration(Duration::ZERO), "0s");
    }

    #[test]
    fn bad_behavior_json_is_an_error() {
        assert!(Behavior::from_json(r#"{"destroyDuration":"soon"}"#).is_err());
        assert!(Behavior::from_json(r#"{"destroy":[{"outcome":"explode"}]}"#).is_err());
    }
}
