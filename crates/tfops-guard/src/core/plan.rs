//! `plan` — `helm tfops uninstall --dry-run`: what the guard would do with each `Terraform`
//! CR of a release, in deletion order, with each CR's share of the budget. Pure over the
//! listed CRs and their probed environments; changes nothing.
//!
//! Budget split (shared with the engine): CRs are grouped in levels — level 0 has no
//! in-release dependants, level n+1 waits for level n — and level `l` of `L` must be done by
//! `(l + 1) / L` of the usable budget (budget minus the machine's force reserve). CRs of a
//! level run in parallel.

use std::collections::BTreeMap;
use std::time::Duration;

use kube::api::DynamicObject;

use crate::core::findings::{ControllerAnswer, Findings as Environment};
use crate::core::order::{self, DeletionOrder, Key, Node};
use crate::core::policy::{self, OnFailure, Policy, UninstallPolicy};
use crate::tfobj;
use tfops_api::duration::format_duration;

/// The window of the budget a CR may use: (earliest start, deadline), from the run start.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Share {
    pub level: usize,
    pub start: Duration,
    pub deadline: Duration,
}

/// Levels and budget shares for an order (see the module doc).
pub fn shares(ord: &DeletionOrder, budget: Duration, reserve: Duration) -> BTreeMap<Key, Share> {
    let mut level: BTreeMap<Key, usize> = BTreeMap::new();
    for k in &ord.order {
        let l = ord
            .dependants_of(k)
            .filter_map(|d| level.get(d))
            .max()
            .map_or(0, |m| m + 1);
        level.insert(k.clone(), l);
    }
    let levels = level.values().max().map_or(1, |m| m + 1);
    let usable = budget.saturating_sub(reserve);
    level
        .into_iter()
        .map(|(k, l)| {
            let start = usable.mul_f64(l as f64 / levels as f64);
            let deadline = usable.mul_f64((l + 1) as f64 / levels as f64);
            (
                k,
                Share {
                    level: l,
                    start,
                    deadline,
                },
            )
        })
        .collect()
}

/// What the guard is expected to do with one CR.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum Expectation {
    /// Deleted; tofu-controller destroys the cloud resources.
    Destroy,
    /// Kept (policy retain / destroy disabled): ledger entry, then released without destroy.
    Retain,
    /// The destroy cannot run as things stand; the on-failure policy orphans it (ledger).
    Orphan,
    /// Neither destroy nor orphan can complete: force-removed after a ledger entry.
    AtRiskOfForce,
    /// Policy `block` would stop the uninstall on this CR.
    Block,
}

impl Expectation {
    pub fn as_str(&self) -> &'static str {
        match self {
            Expectation::Destroy => "destroy",
            Expectation::Retain => "retain (orphan with ledger entry)",
            Expectation::Orphan => "orphan (ledger entry)",
            Expectation::AtRiskOfForce => "at risk of force-remove (ledger entry)",
            Expectation::Block => "block",
        }
    }
}

/// One line of the dry-run plan.
#[derive(Debug, Clone, serde::Serialize)]
#[serde(rename_all = "camelCase")]
pub struct PlanItem {
    /// 1-based position in the deletion order.
    pub step: usize,
    pub namespace: String,
    pub name: String,
    pub module: String,
    pub expectation: Expectation,
    pub uninstall_policy: UninstallPolicy,
    pub on_failure: OnFailure,
    pub retries: u32,
    /// Budget window (from the start of the run).
    #[serde(with = "tfops_api::duration::serde_go")]
    pub starts_after: Duration,
    #[serde(with = "tfops_api::duration::serde_go")]
    pub deadline: Duration,
    /// Things the guard would do first (un-suspend, force-unlock) and what stands in the way.
    pub notes: Vec<String>,
    /// Invalid policy annotations (their safe fallback is used).
    pub policy_errors: Vec<String>,
}

/// The whole dry-run plan.
#[derive(Debug, Clone, serde::Serialize)]
#[serde(rename_all = "camelCase")]
pub struct Plan {
    #[serde(with = "tfops_api::duration::serde_go")]
    pub budget: Duration,
    pub items: Vec<PlanItem>,
}

fn expectation_for_failure(on_failure: OnFailure, orphan_possible: bool) -> Expectation {
    match on_failure {
        OnFailure::Block => Expectation::Block,
        OnFailure::Force => Expectation::AtRiskOfForce,
        OnFailure::Orphan if orphan_possible => Expectation::Orphan,
        OnFailure::Orphan => Expectation::AtRiskOfForce,
    }
}

/// Build the plan. `crs` are the release's CRs with their probed environment (`None` when
/// not probed: assumed healthy).
pub fn plan(
    crs: &[(DynamicObject, Option<Environment>)],
    defaults: &Policy,
    budget: Duration,
    reserve: Duration,
) -> Plan {
    let nodes: Vec<Node> = crs
        .iter()
        .map(|(o, _)| {
            let v = tfobj::view(o);
            Node {
                key: (v.namespace().to_owned(), v.name().to_owned()),
                depends_on: v
                    .depends_on()
                    .into_iter()
                    .map(|r| (r.namespace, r.name))
                    .collect(),
            }
        })
        .collect();
    let ord = order::deletion_order(&nodes);
    let sh = shares(&ord, budget, reserve);
    let by_key: BTreeMap<Key, &(DynamicObject, Option<Environment>)> = crs
        .iter()
        .map(|c| {
            let v = tfobj::view(&c.0);
            ((v.namespace().to_owned(), v.name().to_owned()), c)
        })
        .collect();
    let mut items = Vec::new();
    for (i, key) in ord.order.iter().enumerate() {
        let Some((obj, env)) = by_key.get(key).map(|c| (&c.0, &c.1)) else {
            continue;
        };
        let v = tfobj::view(obj);
        let resolved = policy::resolve(
            &obj.metadata.annotations.clone().unwrap_or_default(),
            defaults,
        );
        let p = resolved.policy;
        let mut notes = Vec::new();
        if v.suspended() {
            notes.push("un-suspended first (spec.suspend is true)".to_owned());
        }
        if ord.cyclic.contains(key) {
            notes.push("on a dependsOn cycle: ordered by name".to_owned());
        }
        let dependants: Vec<&str> = ord.dependants_of(key).map(|k| k.1.as_str()).collect();
        if !dependants.is_empty() {
            notes.push(format!("deleted after: {}", dependants.join(", ")));
        }
        let (mut orphan_possible, mut destroy_possible) = (true, true);
        if let Some(env) = env {
            for b in env.blockers(v.namespace()) {
                notes.push(b);
            }
            let source_bad = env.source.presence == crate::core::machine::Presence::Missing
                || (env.source.presence == crate::core::machine::Presence::Present
                    && !env.source.has_artifact);
            let runner_bad =
                env.runner_service_account_presence == crate::core::machine::Presence::Missing;
            let ns_bad = env.namespace_terminating == Some(true);
            let controller_silent = matches!(env.controller, ControllerAnswer::Pending { .. });
            orphan_possible = !(source_bad || runner_bad || ns_bad || controller_silent);
            destroy_possible = orphan_possible && env.missing_vars_from.is_empty();
            if let Some(lock) = &env.lock_pending {
                notes.push(if p.force_unlock {
                    format!("state lock {lock}: force-unlocked if it stays held")
                } else {
                    format!("state lock {lock}: force-unlock not allowed by policy")
                });
            }
        }
        let keep = p.uninstall == UninstallPolicy::Retain || !v.destroy_on_deletion();
        let expectation = if keep {
            if orphan_possible {
                Expectation::Retain
            } else if p.on_failure == OnFailure::Block {
                Expectation::Block
            } else {
                Expectation::AtRiskOfForce
            }
        } else if destroy_possible {
            Expectation::Destroy
        } else {
            expectation_for_failure(p.on_failure, orphan_possible)
        };
        if expectation == Expectation::Destroy {
            notes.push(format!(
                "if the destroy fails: up to {} retries, then {}",
                p.retries, p.on_failure
            ));
        }
        let share = sh.get(key).copied().unwrap_or(Share {
            level: 0,
            start: Duration::ZERO,
            deadline: budget,
        });
        let deadline = share.deadline.min(share.start + p.timeout);
        items.push(PlanItem {
            step: i + 1,
            namespace: key.0.clone(),
            name: key.1.clone(),
            module: v.module().to_owned(),
            expectation,
            uninstall_policy: p.uninstall,
            on_failure: p.on_failure,
            retries: p.retries,
            starts_after: share.start,
            deadline,
            notes,
            policy_errors: resolved.errors.iter().map(|e| e.to_string()).collect(),
        });
    }
    Plan { budget, items }
}

impl Plan {
    /// Human rendering, one block per CR in order.
    pub fn render(&self, release: &str) -> String {
        let mut out = format!(
            "helm tfops uninstall {release} --dry-run: {} Terraform CR(s), guard budget {} (nothing was changed)\n",
            self.items.len(),
            format_duration(self.budget)
        );
        for it in &self.items {
            out.push_str(&format!(
                "{:>2}. {}/{} (module {}): {} — policy {}, on-failure {}, retries {}, budget {}..{}\n",
                it.step,
                it.namespace,
                it.name,
                it.module,
                it.expectation.as_str(),
                it.uninstall_policy,
                it.on_failure,
                it.retries,
                format_duration(Duration::from_secs(it.starts_after.as_secs())),
                format_duration(Duration::from_secs(it.deadline.as_secs())),
            ));
            for n in it.notes.iter().chain(&it.policy_errors) {
                out.push_str(&format!("      - {n}\n"));
            }
        }
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::core::findings::SourceFinding as SourceState;
    use crate::core::machine::Presence;
    use serde_json::json;

    fn cr(name: &str, deps: &[&str], ann: serde_json::Value) -> DynamicObject {
        serde_json::from_value(json!({
            "apiVersion": "infra.contrib.fluxcd.io/v1alpha2", "kind": "Terraform",
            "metadata": {"name": name, "namespace": "ns", "annotations": ann},
            "spec": {"destroyResourcesOnDeletion": true,
                     "sourceRef": {"kind": "OCIRepository", "name": "s"},
                     "dependsOn": deps.iter().map(|d| json!({"name": d})).collect::<Vec<_>>()}
        }))
        .unwrap()
    }

    fn healthy() -> Environment {
        Environment {
            source: SourceState {
                reference: None,
                presence: Presence::Present,
                has_artifact: true,
            },
            runner_service_account: "tf-runner".into(),
            runner_service_account_presence: Presence::Present,
            missing_vars_from: vec![],
            missing_backend_configs_from: vec![],
            dependants_present: vec![],
            dependants_gone: vec![],
            depends_on_gone: vec![],
            runner_pod_presence: Presence::Missing,
            runner_pod: None,
            namespace_terminating: Some(false),
            lock_pending: None,
            controller: ControllerAnswer::NotRequested,
            suspended: false,
        }
    }

    #[test]
    fn orders_and_splits_the_budget_by_level() {
        let crs = vec![
            (cr("vpc", &[], json!({})), Some(healthy())),
            (cr("db", &["vpc"], json!({})), Some(healthy())),
        ];
        let p = plan(
            &crs,
            &Policy::default(),
            Duration::from_secs(240),
            Duration::from_secs(10),
        );
        assert_eq!(p.items[0].name, "db");
        assert_eq!(p.items[1].name, "vpc");
        assert_eq!(p.items[0].deadline, Duration::from_secs(115));
        assert_eq!(p.items[1].starts_after, Duration::from_secs(115));
        assert_eq!(p.items[1].deadline, Duration::from_secs(230));
        assert!(p
            .items
            .iter()
            .all(|i| i.expectation == Expectation::Destroy));
        let text = p.render("shop");
        assert!(text.contains(" 1. ns/db"), "{text}");
        assert!(text.contains("deleted after: db"), "{text}");
    }

    #[test]
    fn retained_orphaned_and_forced() {
        let mut no_source = healthy();
        no_source.source.presence = Presence::Missing;
        let mut no_vars = healthy();
        no_vars.missing_vars_from.push(crate::tfobj::ObjectRef {
            kind: "Secret".into(),
            namespace: "ns".into(),
            name: "v".into(),
            optional: false,
        });
        let crs = vec![
            (
                cr("keep", &[], json!({"tfops.dev/uninstall-policy": "retain"})),
                Some(healthy()),
            ),
            (cr("nosrc", &[], json!({})), Some(no_source.clone())),
            (cr("novars", &[], json!({})), Some(no_vars)),
            (
                cr("blocky", &[], json!({"tfops.dev/on-failure": "block"})),
                Some(no_source),
            ),
            (
                cr("bad", &[], json!({"tfops.dev/on-failure": "explode"})),
                None,
            ),
        ];
        let p = plan(
            &crs,
            &Policy::default(),
            Duration::from_secs(240),
            Duration::from_secs(10),
        );
        let exp = |n: &str| {
            p.items
                .iter()
                .find(|i| i.name == n)
                .unwrap()
                .expectation
                .clone()
        };
        assert_eq!(exp("keep"), Expectation::Retain);
        assert_eq!(exp("nosrc"), Expectation::AtRiskOfForce);
        assert_eq!(exp("novars"), Expectation::Orphan);
        assert_eq!(exp("blocky"), Expectation::Block);
        assert_eq!(exp("bad"), Expectation::Destroy);
        let bad = p.items.iter().find(|i| i.name == "bad").unwrap();
        assert_eq!(bad.policy_errors.len(), 1);
    }
}
