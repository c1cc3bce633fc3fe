//! `status.conditions` helpers with the semantics of fluxcd/pkg/runtime/conditions as used by
//! tofu-controller: `lastTransitionTime` (whole seconds) changes when status, reason or message
//! change (fluxcd/pkg `hasSameState`), each condition
//! carries the object's generation, Ready is kept first.

use chrono::{DateTime, Utc};
use serde_json::{json, Value};

use super::clock::kube_time;

/// `Ready`.
pub const READY: &str = "Ready";
/// `Reconciling`.
pub const RECONCILING: &str = "Reconciling";
/// `Stalled`.
pub const STALLED: &str = "Stalled";
/// `Plan`.
pub const PLAN: &str = "Plan";
/// `Apply`.
pub const APPLY: &str = "Apply";
/// `Output`.
pub const OUTPUT: &str = "Output";
/// `StateLocked`.
pub const STATE_LOCKED: &str = "StateLocked";

/// Find a condition by type in a status object.
pub fn find<'a>(status: &'a Value, type_: &str) -> Option<&'a Value> {
    status
        .get("conditions")?
        .as_array()?
        .iter()
        .find(|c| c.get("type").and_then(Value::as_str) == Some(type_))
}

/// `(status, reason, message)` of a condition.
pub fn get(status: &Value, type_: &str) -> Option<(String, String, String)> {
    let c = find(status, type_)?;
    let s = |k: &str| c.get(k).and_then(Value::as_str).unwrap_or("").to_string();
    Some((s("status"), s("reason"), s("message")))
}

/// Whether the condition is `True`.
pub fn is_true(status: &Value, type_: &str) -> bool {
    get(status, type_).is_some_and(|(s, _, _)| s == "True")
}

/// Whether the condition's reason is one of `reasons`.
pub fn has_any_reason(status: &Value, type_: &str, reasons: &[&str]) -> bool {
    get(status, type_).is_some_and(|(_, r, _)| reasons.contains(&r.as_str()))
}

/// Set (insert or update) a condition.
pub fn set(
    status: &mut Value,
    type_: &str,
    cond_status: &str,
    reason: &str,
    message: &str,
    generation: i64,
    now: DateTime<Utc>,
) {
    if !status.is_object() {
        *status = json!({});
    }
    // fluxcd/pkg runtime v0.111.0 `conditions/setter.go` `Set` (lines 45–85) with
    // `hasSameState` (lines 222–228): the time changes when status, reason OR message change,
    // and is `time.Now().UTC().Truncate(time.Second)` (`kube_time` writes whole seconds).
    let same_state = |old: &Value| {
        let f = |k: &str| old.get(k).and_then(Value::as_str);
        f("status") == Some(cond_status)
            && f("reason") == Some(reason)
            && f("message") == Some(message)
    };
    let transition = match find(status, type_) {
        Some(old) if same_state(old) => old
            .get("lastTransitionTime")
            .cloned()
            .unwrap_or_else(|| json!(kube_time(now))),
        _ => json!(kube_time(now)),
    };
    let new = json!({
        "type": type_,
        "status": cond_status,
        "observedGeneration": generation,
        "lastTransitionTime": transition,
        "reason": reason,
        "message": message,
    });
    delete(status, type_);
    let obj = match status.as_object_mut() {
        Some(o) => o,
        None => return,
    };
    let list = obj.entry("conditions").or_insert_with(|| json!([]));
    if !list.is_array() {
        *list = json!([]);
    }
    if let Some(arr) = list.as_array_mut() {
        arr.push(new);
        arr.sort_by(|a, b| {
            let ka = sort_key(a);
            let kb = sort_key(b);
            ka.cmp(&kb)
        });
    }
}

fn sort_key(c: &Value) -> (u8, String) {
    let t = c
        .get("type")
        .and_then(Value::as_str)
        .unwrap_or("")
        .to_string();
    (if t == READY { 0 } else { 1 }, t)
}

/// Remove a condition.
pub fn delete(status: &mut Value, type_: &str) {
    if let Some(arr) = status.get_mut("conditions").and_then(Value::as_array_mut) {
        arr.retain(|c| c.get("type").and_then(Value::as_str) != Some(type_));
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn transition_time_changes_with_status_reason_or_message_in_whole_seconds() {
        // fluxcd/pkg runtime v0.111.0 setter.go: hasSameState = type, status, reason and
        // message; the old simulation kept the time across a reason/message change.
        let t0 = DateTime::parse_from_rfc3339("2026-01-01T00:00:00Z")
            .unwrap()
            .with_timezone(&Utc);
        let t1 = t0 + chrono::Duration::milliseconds(30_700);
        let mut st = json!({});
        set(&mut st, READY, "False", "A", "m1", 1, t0);
        set(&mut st, READY, "False", "A", "m1", 2, t1);
        let c = find(&st, READY).unwrap();
        assert_eq!(
            c["lastTransitionTime"], "2026-01-01T00:00:00Z",
            "same state: kept"
        );
        assert_eq!(c["observedGeneration"], 2);
        set(&mut st, READY, "False", "B", "m2", 2, t1);
        let c = find(&st, READY).unwrap();
        assert_eq!(
            c["lastTransitionTime"], "2026-01-01T00:00:30Z",
            "reason changed"
        );
        assert_eq!(c["reason"], "B");
        set(
            &mut st,
            READY,
            "False",
            "B",
            "m3",
            2,
            t1 + chrono::Duration::seconds(5),
        );
        assert_eq!(
            find(&st, READY).unwrap()["lastTransitionTime"],
            "2026-01-01T00:00:35Z",
            "message changed"
        );
    }

    #[test]
    fn ready_first_then_alphabetical_and_delete() {
        let t0 = Utc::now();
        let mut st = json!({});
        set(&mut st, STALLED, "True", "x", "", 1, t0);
        set(&mut st, READY, "False", "x", "", 1, t0);
        set(&mut st, APPLY, "True", "x", "", 1, t0);
        let types: Vec<_> = st["conditions"]
            .as_array()
            .unwrap()
            .iter()
            .map(|c| c["type"].as_str().unwrap().to_string())
            .collect();
        assert_eq!(types, vec!["Ready", "Apply", "Stalled"]);
        delete(&mut st, APPLY);
        assert!(find(&st, APPLY).is_none());
        assert!(has_any_reason(&st, READY, &["y", "x"]));
        assert!(!is_true(&st, READY));
    }
}
