//! `source_watch` — which Flux source events make the simulated controller reconcile which
//! `Terraform` CRs, as tofu-controller v0.16.5 decides it (pure; the driver's
//! `source_watch_loop` feeds it watch events and enqueues the answer).
//!
//! Upstream (`controllers/tf_controller.go` at v0.16.5, lines 704–721, 738–752 and
//! `IndexBy` 974–990): the manager indexes Terraforms by `spec.sourceRef` (kind, and namespace/name
//! with the namespace defaulting to the Terraform's) and watches `GitRepository`,
//! `Bucket` and `OCIRepository` with `SourceRevisionChangePredicate`
//! (`controllers/source_predicate.go` lines 10–39). That predicate embeds `predicate.Funcs`, so
//! create and delete events pass unfiltered; an update passes when the artifact appears or its
//! revision changes. The map function `requestsForRevisionChangeOf` (lines 831–875) returns
//! nothing for a source without an artifact, and otherwise every Terraform indexed on that
//! source whose `status.lastAttemptedRevision` differs from the artifact's revision.

use serde_json::Value;

use super::names::str_at;
use super::queue::Key;

/// A watch event on a Flux source, reduced to what the predicate reads.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SourceEvent<'a> {
    /// First sight of the source (a create, or the initial list when the controller starts).
    Created { revision: Option<&'a str> },
    /// A change: the artifact revision before and after.
    Updated {
        old: Option<&'a str>,
        new: Option<&'a str>,
    },
    /// The source is gone; `revision` is that of its last known state.
    Deleted { revision: Option<&'a str> },
}

/// `SourceRevisionChangePredicate` (create/delete pass, updates pass on a new or changed
/// artifact) followed by the map function's "no artifact, no requests": the revision the
/// Terraforms are compared against, or `None` when the event triggers nothing.
pub fn triggering_revision(event: SourceEvent<'_>) -> Option<&str> {
    match event {
        SourceEvent::Created { revision } | SourceEvent::Deleted { revision } => revision,
        SourceEvent::Updated { old, new } => match (old, new) {
            (None, Some(n)) => Some(n),
            (Some(o), Some(n)) if o != n => Some(n),
            _ => None,
        },
    }
}

/// The artifact revision of a source object (`status.artifact.revision`), when it has one.
pub fn artifact_revision(source: &Value) -> Option<&str> {
    source
        .pointer("/status/artifact/revision")
        .and_then(Value::as_str)
}

/// The Terraforms (of `terraforms`) indexed on the source `kind` `namespace/name` whose
/// `status.lastAttemptedRevision` is not `revision`, in list order (upstream also sorts them by
/// `dependsOn`; the simulation's queue does not depend on that order).
pub fn dependents(
    kind: &str,
    namespace: &str,
    name: &str,
    revision: &str,
    terraforms: &[Value],
) -> Vec<Key> {
    terraforms
        .iter()
        .filter(|tf| {
            let tf_ns = str_at(tf, &["metadata", "namespace"]);
            let ref_ns = match str_at(tf, &["spec", "sourceRef", "namespace"]) {
                "" => tf_ns,
                ns => ns,
            };
            str_at(tf, &["spec", "sourceRef", "kind"]) == kind
                && str_at(tf, &["spec", "sourceRef", "name"]) == name
                && ref_ns == namespace
                && str_at(tf, &["status", "lastAttemptedRevision"]) != revision
        })
        .map(|tf| {
            (
                str_at(tf, &["metadata", "namespace"]).to_string(),
                str_at(tf, &["metadata", "name"]).to_string(),
            )
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn the_predicate_passes_creates_deletes_and_new_or_changed_artifacts() {
        use SourceEvent::*;
        assert_eq!(
            triggering_revision(Created {
                revision: Some("r1")
            }),
            Some("r1")
        );
        assert_eq!(triggering_revision(Created { revision: None }), None);
        assert_eq!(
            triggering_revision(Deleted {
                revision: Some("r1")
            }),
            Some("r1")
        );
        assert_eq!(
            triggering_revision(Updated {
                old: None,
                new: Some("r1")
            }),
            Some("r1")
        );
        assert_eq!(
            triggering_revision(Updated {
                old: Some("r1"),
                new: Some("r2")
            }),
            Some("r2")
        );
        assert_eq!(
            triggering_revision(Updated {
                old: Some("r1"),
                new: Some("r1")
            }),
            None,
            "a status change without a new revision (conditions, lastHandledReconcileAt) triggers nothing"
        );
        assert_eq!(
            triggering_revision(Updated {
                old: Some("r1"),
                new: None
            }),
            None
        );
    }

    fn tf(ns: &str, name: &str, source: Value, attempted: Option<&str>) -> Value {
        let mut v = json!({
            "metadata": {"namespace": ns, "name": name},
            "spec": {"sourceRef": source},
        });
        if let Some(r) = attempted {
            v["status"] = json!({"lastAttemptedRevision": r});
        }
        v
    }

    #[test]
    fn dependents_are_the_crs_on_that_source_that_have_not_attempted_the_revision() {
        let all = vec![
            tf(
                "shop",
                "a",
                json!({"kind": "GitRepository", "name": "mods"}),
                None,
            ),
            tf(
                "shop",
                "b",
                json!({"kind": "GitRepository", "name": "mods"}),
                Some("r1"),
            ),
            tf(
                "other",
                "c",
                json!({"kind": "GitRepository", "name": "mods", "namespace": "shop"}),
                Some("r0"),
            ),
            tf(
                "other",
                "d",
                json!({"kind": "GitRepository", "name": "mods"}),
                None,
            ),
            tf(
                "shop",
                "e",
                json!({"kind": "OCIRepository", "name": "mods"}),
                None,
            ),
        ];
        assert_eq!(
            dependents("GitRepository", "shop", "mods", "r1", &all),
            vec![
                ("shop".to_string(), "a".to_string()),
                ("other".to_string(), "c".to_string())
            ]
        );
        assert!(dependents("Bucket", "shop", "mods", "r1", &all).is_empty());
    }

    #[test]
    fn artifact_revision_reads_the_status() {
        assert_eq!(
            artifact_revision(&json!({"status": {"artifact": {"revision": "main@sha1:ab"}}})),
            Some("main@sha1:ab")
        );
        assert_eq!(artifact_revision(&json!({"status": {}})), None);
    }
}
