//! Scenario files for the standalone test cluster (`cargo run -p tfops-testcluster --
//! --scenario FILE`): objects to seed, tofu-controller simulation settings and behaviours,
//! and faults. Parsing is pure; [`Scenario::apply`] seeds a running [`TestCluster`].
//!
//! # Format (YAML)
//!
//! ```yaml
//! namespace: team-a          # default namespace for objects without one and for the kubeconfig
//! user: developer            # kubeconfig user = bearer token recorded in the request log
//! controller:                # the tofu-controller simulation (omit the key: enabled, defaults)
//!   enabled: true
//!   namespace: team-a        # watch only this namespace (default: all)
//!   noEvents: false          # do not record Kubernetes Events
//!   defaultBehavior:         # tofu::Behavior (camelCase) for CRs without their own
//!     destroyDuration: 20s
//! sourceController: true     # stand-in for Flux source-controller: sources get an artifact
//!                            # (default false: tests seed or patch artifacts themselves)
//! behaviors:                 # per-CR behaviours (same as the annotation sim.tfops.dev/behavior)
//!   - name: network
//!     namespace: team-a      # default: the scenario namespace
//!     behavior:
//!       destroy:
//!         - {outcome: fail, message: "Error: deleting VPC: DependencyViolation", times: 2}
//!         - {outcome: succeed}
//! faults:                    # exactly one of status / latency / dropWatchAfter per entry
//!   - status: 503            # 500, 503, 409, 429 (429 gets Retry-After: 1 unless retryAfter)
//!     verb: patch            # get list watch create update patch delete deletecollection
//!     resource: terraforms   # plural; also: user, namespace, name, subresource ("" = main)
//!     times: 2               # omit = always
//!   - latency: 2s            # Go-style duration
//!     user: tfops-guard
//!   - dropWatchAfter: 3
//!     resource: terraforms
//!     times: 1
//! objects:                   # seeded directly into the store (status kept as written)
//!   - apiVersion: v1
//!     kind: Secret
//!     metadata: {name: creds}
//!     stringData: {token: x}
//! ```

use crate::cluster::TestCluster;
use crate::error::ApiError;
use crate::faults::FaultRule;
use crate::requests::Verb;
use crate::sources::{SourceController, SOURCE_CONTROLLER_USER};
use crate::tofu::{self, Behavior, SimConfig, TofuSim};
use serde::Deserialize;
use serde_json::Value;

/// A scenario that could not be parsed or applied; messages name the entry and field.
#[derive(Debug, thiserror::Error)]
pub enum ScenarioError {
    /// YAML/shape error.
    #[error("scenario {file}: {message}")]
    Parse {
        /// The scenario file.
        file: String,
        /// What is wrong.
        message: String,
    },
    /// Seeding an object failed.
    #[error("scenario {file}: objects[{index}] ({what}): {source}")]
    Seed {
        /// The scenario file.
        file: String,
        /// Index in `objects`.
        index: usize,
        /// `Kind namespace/name`.
        what: String,
        /// The API error.
        source: ApiError,
    },
    /// Building the controller's client failed.
    #[error("scenario {file}: starting the controller simulation: {message}")]
    Controller {
        /// The scenario file.
        file: String,
        /// What failed.
        message: String,
    },
}

/// Controller simulation settings.
#[derive(Debug, Clone, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct ControllerSpec {
    /// Start the simulation (default true).
    #[serde(default = "yes")]
    pub enabled: bool,
    /// Watch only this namespace.
    #[serde(default)]
    pub namespace: Option<String>,
    /// Do not record Events.
    #[serde(default)]
    pub no_events: bool,
    /// Behaviour for CRs without their own.
    #[serde(default)]
    pub default_behavior: Option<Behavior>,
    /// Runner-pod timing: `instant` (default), `realistic` (pods start in 0–150 s) or
    /// `cold-node` (100–150 s).
    #[serde(default)]
    pub timing: Option<String>,
    /// Run without leader election (no controller Lease).
    #[serde(default)]
    pub no_leader_election: bool,
}

impl Default for ControllerSpec {
    fn default() -> Self {
        Self {
            enabled: true,
            namespace: None,
            no_events: false,
            default_behavior: None,
            timing: None,
            no_leader_election: false,
        }
    }
}

fn yes() -> bool {
    true
}

/// One per-CR behaviour.
#[derive(Debug, Clone, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct BehaviorSpec {
    /// CR name.
    pub name: String,
    /// CR namespace (default: the scenario namespace).
    #[serde(default)]
    pub namespace: Option<String>,
    /// The behaviour.
    pub behavior: Behavior,
}

/// One fault rule.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct FaultSpec {
    /// Answer with this HTTP status.
    pub status: Option<u16>,
    /// Add this latency (Go-style duration).
    pub latency: Option<String>,
    /// End watch streams after this many events.
    pub drop_watch_after: Option<usize>,
    /// Only this user.
    pub user: Option<String>,
    /// Only this verb.
    pub verb: Option<String>,
    /// Only this plural resource.
    pub resource: Option<String>,
    /// Only this subresource.
    pub subresource: Option<String>,
    /// Only this namespace.
    pub namespace: Option<String>,
    /// Only this object name.
    pub name: Option<String>,
    /// Fire this many times (default: always).
    pub times: Option<usize>,
    /// Status message.
    pub message: Option<String>,
    /// `Retry-After` seconds.
    pub retry_after: Option<u64>,
}

/// A parsed scenario.
#[derive(Debug, Clone, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct Scenario {
    /// Default namespace.
    #[serde(default = "default_ns")]
    pub namespace: String,
    /// Kubeconfig user.
    #[serde(default = "default_user")]
    pub user: String,
    /// Controller simulation.
    #[serde(default)]
    pub controller: ControllerSpec,
    /// Run the source-controller stand-in ([`crate::sources`]).
    #[serde(default)]
    pub source_controller: bool,
    /// Per-CR behaviours.
    #[serde(default)]
    pub behaviors: Vec<BehaviorSpec>,
    /// Fault rules.
    #[serde(default)]
    pub faults: Vec<FaultSpec>,
    /// Objects to seed.
    #[serde(default)]
    pub objects: Vec<Value>,
    /// Where the scenario came from (for messages).
    #[serde(skip)]
    pub file: String,
}

fn default_ns() -> String {
    "default".to_string()
}

fn default_user() -> String {
    "developer".to_string()
}

/// A scenario applied to a cluster: the running simulation, if any.
pub struct ScenarioRun {
    /// The tofu-controller simulation.
    pub sim: Option<TofuSim>,
    /// The source-controller stand-in.
    pub sources: Option<SourceController>,
}

impl FaultSpec {
    /// The rule this entry describes.
    pub fn to_rule(&self, index: usize) -> Result<FaultRule, String> {
        let at = |m: String| format!("faults[{index}]: {m}");
        let mut rule = match (self.status, &self.latency, self.drop_watch_after) {
            (Some(code), None, None) => {
                if !(400..=599).contains(&code) {
                    return Err(at(format!("status: {code} is not an HTTP error code")));
                }
                FaultRule::status(code)
            }
            (None, Some(d), None) => {
                let dur = tofu::behavior::parse_go_duration(d).ok_or_else(|| {
                    at(format!(
                        "latency: invalid duration {d:?} (use 250ms, 2s, 1m30s)"
                    ))
                })?;
                FaultRule::latency(dur)
            }
            (None, None, Some(k)) => FaultRule::drop_watch_after(k),
            _ => {
                return Err(at(
                    "exactly one of status, latency, dropWatchAfter is required".to_string(),
                ))
            }
        };
        if let Some(u) = &self.user {
            rule = rule.user(u);
        }
        if let Some(v) = &self.verb {
            let verb = Verb::parse(v).ok_or_else(|| {
                at(format!(
                    "verb: unknown verb {v:?} (get, list, watch, create, update, patch, delete, deletecollection)"
                ))
            })?;
            rule = rule.verb(verb);
        }
        if let Some(r) = &self.resource {
            rule = rule.resource(r);
        }
        if let Some(s) = &self.subresource {
            rule = rule.subresource(s);
        }
        if let Some(n) = &self.namespace {
            rule = rule.namespace(n);
        }
        if let Some(n) = &self.name {
            rule = rule.name(n);
        }
        if let Some(t) = self.times {
            rule = rule.times(t);
        }
        if let Some(m) = &self.message {
            rule = rule.message(m);
        }
        if let Some(s) = self.retry_after {
            rule = rule.retry_after(s);
        }
        Ok(rule)
    }
}

impl Scenario {
    /// Parse scenario YAML; `file` names it in errors. Fault entries are validated here.
    pub fn parse(file: &str, yaml: &str) -> Result<Self, ScenarioError> {
        let mut s: Scenario = serde_saphyr::from_str(yaml).map_err(|e| ScenarioError::Parse {
            file: file.to_string(),
            message: e.to_string(),
        })?;
        s.file = file.to_string();
        for (i, f) in s.faults.iter().enumerate() {
            f.to_rule(i).map_err(|message| ScenarioError::Parse {
                file: file.to_string(),
                message,
            })?;
        }
        for (i, o) in s.objects.iter().enumerate() {
            let ok = o.get("apiVersion").and_then(Value::as_str).is_some()
                && o.get("kind").and_then(Value::as_str).is_some();
            if !ok {
                return Err(ScenarioError::Parse {
                    file: file.to_string(),
                    message: format!("objects[{i}]: apiVersion and kind are required"),
                });
            }
        }
        Ok(s)
    }

    /// Read and parse a scenario file.
    pub fn load(path: &std::path::Path) -> Result<Self, ScenarioError> {
        let file = path.display().to_string();
        let text = std::fs::read_to_string(path).map_err(|e| ScenarioError::Parse {
            file: file.clone(),
            message: e.to_string(),
        })?;
        Self::parse(&file, &text)
    }

    /// Seed the objects, install the faults and start the simulation (if enabled) on the
    /// current tokio runtime.
    pub fn apply(&self, cluster: &TestCluster) -> Result<ScenarioRun, ScenarioError> {
        for (index, obj) in self.objects.iter().enumerate() {
            let mut obj = obj.clone();
            let kind = obj
                .get("kind")
                .and_then(Value::as_str)
                .unwrap_or("")
                .to_string();
            let namespaced = crate::registry::lookup(
                obj.get("apiVersion").and_then(Value::as_str).unwrap_or(""),
                &kind,
            )
            .is_some_and(|r| r.namespaced);
            if namespaced && obj.pointer("/metadata/namespace").is_none() {
                if !obj.get("metadata").is_some_and(Value::is_object) {
                    obj["metadata"] = serde_json::json!({});
                }
                obj["metadata"]["namespace"] = Value::String(self.namespace.clone());
            }
            let what = format!(
                "{kind} {}/{}",
                obj.pointer("/metadata/namespace")
                    .and_then(Value::as_str)
                    .unwrap_or(""),
                obj.pointer("/metadata/name")
                    .and_then(Value::as_str)
                    .unwrap_or("")
            );
            cluster
                .store()
                .create(obj)
                .map_err(|source| ScenarioError::Seed {
                    file: self.file.clone(),
                    index,
                    what,
                    source,
                })?;
        }
        for (i, f) in self.faults.iter().enumerate() {
            let rule = f.to_rule(i).map_err(|message| ScenarioError::Parse {
                file: self.file.clone(),
                message,
            })?;
            cluster.faults().add(rule);
        }
        let sim = if self.controller.enabled {
            let client =
                cluster
                    .client(tofu::CONTROLLER_USER)
                    .map_err(|e| ScenarioError::Controller {
                        file: self.file.clone(),
                        message: e.to_string(),
                    })?;
            let timing = match self.controller.timing.as_deref() {
                None | Some("instant") => tofu::SimTiming::instant(),
                Some("realistic") => tofu::SimTiming::realistic(0),
                Some("cold-node") => tofu::SimTiming::cold_node(0),
                Some(other) => {
                    return Err(ScenarioError::Controller {
                        file: self.file.clone(),
                        message: format!(
                        "controller.timing: {other:?} is not one of instant, realistic, cold-node"
                    ),
                    })
                }
            };
            let cfg = SimConfig {
                namespace: self.controller.namespace.clone(),
                default_behavior: self.controller.default_behavior.clone().unwrap_or_default(),
                no_events: self.controller.no_events,
                timing,
                no_leader_election: self.controller.no_leader_election,
                controller_namespace: None,
            };
            let sim = TofuSim::start(client, cfg);
            for b in &self.behaviors {
                let ns = b
                    .namespace
                    .clone()
                    .unwrap_or_else(|| self.namespace.clone());
                sim.set_behavior(&ns, &b.name, b.behavior.clone());
            }
            Some(sim)
        } else {
            None
        };
        let sources = if self.source_controller {
            let client =
                cluster
                    .client(SOURCE_CONTROLLER_USER)
                    .map_err(|e| ScenarioError::Controller {
                        file: self.file.clone(),
                        message: e.to_string(),
                    })?;
            Some(SourceController::start(
                client,
                self.controller.namespace.clone(),
            ))
        } else {
            None
        };
        Ok(ScenarioRun { sim, sources })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_full_format() {
        let y = r#"
namespace: team-a
user: dev
controller:
  namespace: team-a
  defaultBehavior:
    destroyDuration: 20s
behaviors:
  - name: network
    behavior:
      destroy:
        - {outcome: fail, message: "Error: DependencyViolation", times: 2}
        - {outcome: succeed}
faults:
  - {status: 503, verb: patch, resource: terraforms, times: 2}
  - {latency: 2s, user: tfops-guard}
  - {dropWatchAfter: 3, resource: terraforms, times: 1}
objects:
  - apiVersion: v1
    kind: Secret
    metadata: {name: creds}
    stringData: {token: x}
"#;
        let s = Scenario::parse("s.yaml", y).unwrap();
        assert_eq!(s.namespace, "team-a");
        assert_eq!(s.behaviors[0].behavior.destroy.len(), 2);
        assert_eq!(s.faults.len(), 3);
        assert_eq!(s.objects.len(), 1);
        assert!(s.controller.enabled);
    }

    #[test]
    fn bad_entries_are_named() {
        let e = Scenario::parse("s.yaml", "faults:\n  - {status: 503, latency: 1s}\n").unwrap_err();
        assert!(e.to_string().contains("faults[0]"), "{e}");
        let e = Scenario::parse("s.yaml", "faults:\n  - {status: 503, verb: frob}\n").unwrap_err();
        assert!(e.to_string().contains("faults[0]: verb"), "{e}");
        let e = Scenario::parse("s.yaml", "objects:\n  - metadata: {name: x}\n").unwrap_err();
        assert!(e.to_string().contains("objects[0]"), "{e}");
        let e = Scenario::parse("s.yaml", "bogus: 1\n").unwrap_err();
        assert!(e.to_string().contains("s.yaml"), "{e}");
    }
}
