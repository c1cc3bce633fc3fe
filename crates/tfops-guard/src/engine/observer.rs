//! `engine::observer` — what a guard run tells whoever watches it while it runs: one
//! [`DecisionRecord`] per decision of the state machine (the action decisions are also the
//! Kubernetes Events on the CR; waits and final outcomes are included here so a progress
//! display can say what each CR is waiting for). The guard Job prints them as JSON lines; `helm
//! tfops uninstall` turns them into a live display. No I/O here: the engine calls the observer
//! synchronously, the observer decides where the record goes.

use std::sync::Arc;
use std::time::Duration;

use serde::Serialize;
use tfops_api::FailureClass;

/// One decision of the run, for logs and progress displays.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct DecisionRecord {
    /// Time since the run started.
    #[serde(with = "tfops_api::duration::serde_go")]
    pub elapsed: Duration,
    /// Budget left at that time.
    #[serde(with = "tfops_api::duration::serde_go")]
    pub budget_left: Duration,
    pub namespace: String,
    pub name: String,
    /// The `tfops.dev/module` of the CR (empty when it has none).
    pub module: String,
    /// `delete`, `retry`, `wait`, `orphan`, `force-remove`, `block`, `done`, … (the machine's
    /// decision kinds).
    pub decision: String,
    /// For `done`: `destroyed`, `nothing-to-destroy`, `orphaned`, `force-removed`, `blocked`.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub outcome: Option<String>,
    /// Failed destroy attempts counted so far.
    pub attempts: u32,
    /// Class of the last failure, when there was one.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub class: Option<FailureClass>,
    /// The classifier rule that matched the current failure (name, provider, code).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub rule: Option<String>,
    /// One line: why this decision.
    pub why: String,
}

impl DecisionRecord {
    /// Whether this is worth a log line of its own: every action and final outcome, not the
    /// waits between them (a wait is a state, shown by progress displays).
    pub fn is_action(&self) -> bool {
        self.decision != "wait"
    }
}

/// Receives every [`DecisionRecord`] of a run, synchronously, in order.
#[derive(Clone)]
pub struct Observer(Arc<dyn Fn(&DecisionRecord) + Send + Sync>);

impl Observer {
    /// An observer calling `f` for each record.
    pub fn new(f: impl Fn(&DecisionRecord) + Send + Sync + 'static) -> Self {
        Observer(Arc::new(f))
    }

    /// Hand one record to the observer.
    pub fn notify(&self, record: &DecisionRecord) {
        (self.0)(record)
    }
}

impl std::fmt::Debug for Observer {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Observer(..)")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn records_serialise_as_one_json_object_with_go_durations() {
        let r = DecisionRecord {
            elapsed: Duration::from_secs(12),
            budget_left: Duration::from_secs(228),
            namespace: "shop".into(),
            name: "shop-bucket".into(),
            module: "bucket".into(),
            decision: "orphan".into(),
            outcome: None,
            attempts: 1,
            class: Some(FailureClass::Permanent),
            rule: Some("bucket-not-empty (aws BucketNotEmpty)".into()),
            why: "permanent failure".into(),
        };
        let v = serde_json::to_value(&r).unwrap();
        assert_eq!(v["elapsed"], "12s");
        assert_eq!(v["budgetLeft"], "3m48s");
        assert_eq!(v["class"], "permanent");
        assert_eq!(v["decision"], "orphan");
        assert!(v.get("outcome").is_none());
        assert!(r.is_action());
        let line = serde_json::to_string(&r).unwrap();
        assert!(!line.contains('\n'));
    }

    #[test]
    fn the_observer_sees_each_record() {
        let seen = Arc::new(std::sync::Mutex::new(Vec::new()));
        let s = seen.clone();
        let o = Observer::new(move |r| s.lock().unwrap().push(r.decision.clone()));
        let mut r = DecisionRecord {
            elapsed: Duration::ZERO,
            budget_left: Duration::ZERO,
            namespace: String::new(),
            name: String::new(),
            module: String::new(),
            decision: "wait".into(),
            outcome: None,
            attempts: 0,
            class: None,
            rule: None,
            why: String::new(),
        };
        o.notify(&r);
        assert!(!r.is_action());
        r.decision = "done".into();
        o.notify(&r);
        assert_eq!(*seen.lock().unwrap(), ["wait", "done"]);
    }
}
