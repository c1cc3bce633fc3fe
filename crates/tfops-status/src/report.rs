//! The `StatusReport`: one item per Terraform piece of the selected release(s), built from the
//! listed `Terraform` CRs and ledger entries via the [`crate::state`] mapping, plus the exit
//! code. Pure. This is also the stable `-o json|yaml` schema:
//!
//! ```yaml
//! apiVersion: tfops.dev/v1alpha1
//! kind: StatusReport
//! metadata: {generatedAt: <RFC 3339>}
//! scope: {namespaces: [..] | null (all), release: <name> | null (all releases)}
//! summary: {total: N, states: {Ready: n, ...}, health: healthy|progressing|unhealthy|empty, exitCode: 0|2|3|4}
//! items:
//! - namespace, release, module, name, uid, state, ready (True|False|Unknown|-), reason, message,
//!   source {kind, name, namespace}, revision {source, lastApplied, lastPlanned},
//!   lastPlanAt, lastDriftDetectedAt, createdAt, deletionTimestamp, detectOnly,
//!   pendingPlan {id, planOnly, approveCommand}, blockedBy, destroy {attempts, phase,
//!   firstFailureAt, escalatesAt}, ledger {namespace, name, decision, cleanup},
//!   policy {uninstall, onFailure, retries, timeout, guard}
//! ```
//! Absent values are omitted. Items are sorted by namespace, release, module, name.
//!
//! Exit codes: 0 every piece is `Ready` (or a ledger entry already cleaned up); 2 at least one
//! piece is unhealthy or needs a person (PlanPending, Drifted, Failed, DestroyFailed, Blocked,
//! Orphaned, ForceRemoved, Stalled, Suspended); 3 nothing found (no Terraform CR and no ledger
//! entry for the selection); 4 nothing unhealthy but something still progressing
//! (Reconciling, Planning, Destroying). 1 is left for errors (API unreachable, bad flags).

use std::collections::{BTreeMap, HashSet};
use tfops_api::names;

use chrono::{DateTime, Utc};
use serde::Serialize;
use serde_json::Value;

use crate::ledger::{cleanup_str, LedgerItem};
use crate::state::{
    assess, assess_ledger_only, Assessment, DestroyProgress, Health, PendingPlan, State,
};
use tfops_api::TerraformView;

pub use tfops_api::names::TFOPS_API_VERSION as API_VERSION;
pub const KIND: &str = "StatusReport";

/// Exit code: everything Ready.
pub const EXIT_HEALTHY: u8 = 0;
/// Exit code: something unhealthy or awaiting a person.
pub const EXIT_UNHEALTHY: u8 = 2;
/// Exit code: no Terraform pieces found for the selection.
pub const EXIT_NOT_FOUND: u8 = 3;
/// Exit code: nothing unhealthy, something still progressing.
pub const EXIT_PROGRESSING: u8 = 4;

/// What was asked for.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct Scope {
    /// `None`: all namespaces.
    pub namespaces: Option<Vec<String>>,
    /// `None`: every release.
    pub release: Option<String>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct Metadata {
    pub generated_at: DateTime<Utc>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct Summary {
    pub total: usize,
    pub states: BTreeMap<String, usize>,
    pub health: String,
    pub exit_code: u8,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct SourceRef {
    pub kind: String,
    pub name: String,
    pub namespace: String,
}

#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct Revisions {
    #[serde(skip_serializing_if = "String::is_empty")]
    pub source: String,
    #[serde(skip_serializing_if = "String::is_empty")]
    pub last_applied: String,
    #[serde(skip_serializing_if = "String::is_empty")]
    pub last_planned: String,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct LedgerRef {
    pub namespace: String,
    pub name: String,
    pub decision: String,
    pub cleanup: String,
}

#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct Policy {
    #[serde(skip_serializing_if = "Option::is_none")]
    pub uninstall: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub on_failure: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub retries: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub timeout: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub guard: Option<String>,
}

/// One Terraform piece.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct StatusItem {
    pub namespace: String,
    pub release: String,
    pub module: String,
    pub name: String,
    #[serde(skip_serializing_if = "String::is_empty")]
    pub uid: String,
    pub state: State,
    pub ready: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub reason: Option<String>,
    pub message: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub source: Option<SourceRef>,
    pub revision: Revisions,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub last_plan_at: Option<DateTime<Utc>>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub last_drift_detected_at: Option<DateTime<Utc>>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub created_at: Option<DateTime<Utc>>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub deletion_timestamp: Option<DateTime<Utc>>,
    #[serde(skip_serializing_if = "std::ops::Not::not")]
    pub detect_only: bool,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub pending_plan: Option<PendingPlan>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub blocked_by: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub destroy: Option<DestroyProgress>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub ledger: Option<LedgerRef>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub policy: Option<Policy>,
    #[serde(skip)]
    pub health: Option<Health>,
}

/// The whole report.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct StatusReport {
    pub api_version: String,
    pub kind: String,
    pub metadata: Metadata,
    pub scope: Scope,
    pub summary: Summary,
    pub items: Vec<StatusItem>,
}

fn ledger_ref(item: &LedgerItem) -> LedgerRef {
    LedgerRef {
        namespace: item.secret_namespace.clone(),
        name: item.secret_name.clone(),
        decision: item.entry().decision.as_str().to_owned(),
        cleanup: cleanup_str(item.cleanup_state()).to_owned(),
    }
}

fn apply(item: &mut StatusItem, a: Assessment) {
    item.health = Some(a.health());
    item.state = a.state;
    item.reason = a.reason;
    item.message = a.message;
    item.pending_plan = a.pending_plan;
    item.blocked_by = a.blocked_by;
    item.destroy = a.destroy;
    item.detect_only = a.detect_only;
}

fn policy_of(tf: &TerraformView<'_>) -> Option<Policy> {
    let get = |k: &str| tf.annotation(k).map(str::to_owned);
    let p = Policy {
        uninstall: get(names::ANN_UNINSTALL_POLICY),
        on_failure: get(names::ANN_ON_FAILURE),
        retries: get(names::ANN_RETRIES),
        timeout: get(names::ANN_TIMEOUT),
        guard: get(names::ANN_GUARD),
    };
    (p != Policy::default()).then_some(p)
}

/// One item from a live CR.
pub fn item_from_cr(obj: &Value, ledger: Option<&LedgerItem>) -> StatusItem {
    let tf = TerraformView::new(obj);
    let ready = tf
        .condition("Ready")
        .map(|c| c.status)
        .unwrap_or_else(|| "-".to_owned());
    let mut item = StatusItem {
        namespace: tf.namespace().to_owned(),
        release: tf.release().to_owned(),
        module: tf.module().to_owned(),
        name: tf.name().to_owned(),
        uid: tf.uid().to_owned(),
        state: State::Reconciling,
        ready,
        reason: None,
        message: String::new(),
        source: tf.source_ref().map(|r| SourceRef {
            kind: r.kind,
            name: r.name,
            namespace: r.namespace,
        }),
        revision: Revisions {
            source: tf.last_attempted_revision().unwrap_or_default().to_owned(),
            last_applied: tf.last_applied_revision().unwrap_or_default().to_owned(),
            last_planned: tf.last_planned_revision().unwrap_or_default().to_owned(),
        },
        last_plan_at: tf.last_plan_at(),
        last_drift_detected_at: tf.last_drift_detected_at(),
        created_at: tf.created_at(),
        deletion_timestamp: tf.deletion_timestamp(),
        detect_only: false,
        pending_plan: None,
        blocked_by: None,
        destroy: None,
        ledger: None,
        policy: policy_of(&tf),
        health: None,
    };
    let matching = ledger.filter(|l| l.entry().uid.is_empty() || l.entry().uid == tf.uid());
    item.ledger = matching.map(ledger_ref);
    apply(&mut item, assess(&tf, matching));
    item
}

/// One item from a ledger entry whose CR is gone.
pub fn item_from_ledger(l: &LedgerItem) -> StatusItem {
    let e = l.entry();
    let source = e.terraform.spec.get("sourceRef").and_then(|r| {
        Some(SourceRef {
            kind: r.get("kind")?.as_str()?.to_owned(),
            name: r.get("name")?.as_str()?.to_owned(),
            namespace: r
                .get("namespace")
                .and_then(Value::as_str)
                .filter(|n| !n.is_empty())
                .unwrap_or(&e.namespace)
                .to_owned(),
        })
    });
    let mut item = StatusItem {
        namespace: e.namespace.clone(),
        release: e.release.clone(),
        module: e.module.clone(),
        name: e.name.clone(),
        uid: e.uid.clone(),
        state: State::Orphaned,
        ready: "-".to_owned(),
        reason: None,
        message: String::new(),
        source,
        revision: Revisions::default(),
        last_plan_at: None,
        last_drift_detected_at: None,
        created_at: Some(e.decided_at),
        deletion_timestamp: None,
        detect_only: false,
        pending_plan: None,
        blocked_by: None,
        destroy: None,
        ledger: Some(ledger_ref(l)),
        policy: None,
        health: None,
    };
    apply(&mut item, assess_ledger_only(l));
    item
}

/// Build the report from listed CRs and ledger entries of the scope.
pub fn build(
    crs: &[Value],
    ledger: &[LedgerItem],
    scope: Scope,
    now: DateTime<Utc>,
) -> StatusReport {
    let mut items = Vec::with_capacity(crs.len() + ledger.len());
    let mut used: HashSet<usize> = HashSet::new();
    // Ledger entries by (namespace, name) of the CR they are about.
    let mut by_cr: BTreeMap<(&str, &str), Vec<usize>> = BTreeMap::new();
    for (i, l) in ledger.iter().enumerate() {
        by_cr
            .entry((l.entry().namespace.as_str(), l.entry().name.as_str()))
            .or_default()
            .push(i);
    }
    for obj in crs {
        let tf = TerraformView::new(obj);
        let found = by_cr.get(&(tf.namespace(), tf.name())).and_then(|ix| {
            ix.iter()
                .copied()
                .find(|&i| ledger[i].entry().uid == tf.uid())
        });
        if let Some(i) = found {
            used.insert(i);
        }
        items.push(item_from_cr(obj, found.map(|i| &ledger[i])));
    }
    for (i, l) in ledger.iter().enumerate() {
        if !used.contains(&i) {
            items.push(item_from_ledger(l));
        }
    }
    items.sort_by(|a, b| {
        (&a.namespace, &a.release, &a.module, &a.name, &a.uid).cmp(&(
            &b.namespace,
            &b.release,
            &b.module,
            &b.name,
            &b.uid,
        ))
    });
    let summary = summarise(&items);
    StatusReport {
        api_version: API_VERSION.to_owned(),
        kind: KIND.to_owned(),
        metadata: Metadata { generated_at: now },
        scope,
        summary,
        items,
    }
}

fn summarise(items: &[StatusItem]) -> Summary {
    let mut states = BTreeMap::new();
    for i in items {
        *states.entry(i.state.as_str().to_owned()).or_insert(0) += 1;
    }
    let worst = items
        .iter()
        .map(|i| i.health.unwrap_or_else(|| i.state.health()))
        .max();
    let (health, exit_code) = match worst {
        None => ("empty", EXIT_NOT_FOUND),
        Some(Health::Healthy) => ("healthy", EXIT_HEALTHY),
        Some(Health::Progressing) => ("progressing", EXIT_PROGRESSING),
        Some(Health::Unhealthy) => ("unhealthy", EXIT_UNHEALTHY),
    };
    Summary {
        total: items.len(),
        states,
        health: health.to_owned(),
        exit_code,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::fixtures::{into_state, ledger_item, terraform};
    use crate::ledger::LedgerDecision;

    fn now() -> DateTime<Utc> {
        "2026-11-26T12:10:00Z".parse().unwrap_or_default()
    }

    fn scope() -> Scope {
        Scope {
            namespaces: Some(vec!["apps".into()]),
            release: Some("shop".into()),
        }
    }

    fn cr(name: &str, s: State) -> Value {
        let mut v = terraform("apps", "shop", name, name);
        into_state(&mut v, s);
        v
    }

    #[test]
    fn exit_codes() {
        let r = build(&[], &[], scope(), now());
        assert_eq!(
            (r.summary.exit_code, r.summary.health.as_str()),
            (3, "empty")
        );
        let r = build(&[cr("a", State::Ready)], &[], scope(), now());
        assert_eq!(r.summary.exit_code, 0);
        let r = build(
            &[cr("a", State::Ready), cr("b", State::Planning)],
            &[],
            scope(),
            now(),
        );
        assert_eq!(r.summary.exit_code, 4);
        let r = build(
            &[cr("a", State::Failed), cr("b", State::Planning)],
            &[],
            scope(),
            now(),
        );
        assert_eq!(r.summary.exit_code, 2);
    }

    #[test]
    fn ledger_entries_join_their_live_cr_or_stand_alone() {
        let live = cr("a", State::Destroying);
        let uid = TerraformView::new(&live).uid().to_owned();
        let joined = ledger_item(
            "apps",
            "shop",
            "a",
            "a",
            &uid,
            LedgerDecision::Orphaned,
            now(),
        );
        let gone = ledger_item(
            "apps",
            "shop",
            "b",
            "b",
            "uid-b",
            LedgerDecision::ForceRemoved,
            now(),
        );
        let r = build(&[live], &[joined, gone], scope(), now());
        assert_eq!(r.items.len(), 2);
        assert_eq!(r.items[0].state, State::Orphaned);
        assert_eq!(r.items[0].ready, "Unknown");
        assert_eq!(r.items[1].state, State::ForceRemoved);
        assert_eq!(r.items[1].ready, "-");
        assert_eq!(r.summary.states.get("ForceRemoved"), Some(&1));
        assert_eq!(r.summary.exit_code, 2);
    }

    #[test]
    fn a_recreated_cr_and_its_old_entry_are_two_items() {
        let live = cr("a", State::Destroying);
        let old = ledger_item(
            "apps",
            "shop",
            "a",
            "a",
            "old-uid",
            LedgerDecision::Orphaned,
            now(),
        );
        let r = build(&[live], &[old], scope(), now());
        let states: Vec<State> = r.items.iter().map(|i| i.state).collect();
        assert_eq!(states.len(), 2);
        assert!(states.contains(&State::Destroying) && states.contains(&State::Orphaned));
    }
}
