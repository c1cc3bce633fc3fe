//! Table test of the failure classifier on real destroy-time error messages collected from
//! provider and tofu-controller issues (`tests/data/messages.yaml`, each with its source URL).

use std::collections::BTreeMap;
use std::path::Path;

use serde::Deserialize;
use tfops_guard::classify::{Classifier, FailureClass};

#[derive(Debug, Deserialize)]
struct Row {
    source: String,
    reason: String,
    message: String,
    class: FailureClass,
}

fn rows() -> Vec<Row> {
    let path = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/data/messages.yaml");
    let text = std::fs::read_to_string(&path).expect("read messages.yaml");
    serde_saphyr::from_str(&text).expect("parse messages.yaml")
}

#[test]
fn table_has_enough_real_messages_with_sources() {
    let rows = rows();
    assert!(rows.len() >= 40, "only {} messages", rows.len());
    for r in &rows {
        assert!(
            r.source.starts_with("https://github.com/"),
            "row without a source URL: {r:?}"
        );
        assert!(!r.message.trim().is_empty(), "empty message: {r:?}");
    }
    let mut per_class: BTreeMap<&str, usize> = BTreeMap::new();
    for r in &rows {
        *per_class.entry(r.class.as_str()).or_default() += 1;
    }
    for class in [
        "transient",
        "permanent",
        "blocked-by-missing-dependency",
        "unknown",
    ] {
        assert!(
            per_class.get(class).copied().unwrap_or(0) > 0,
            "no {class} rows: {per_class:?}"
        );
    }
}

#[test]
fn builtin_classifier_matches_the_table() {
    let c = Classifier::builtin();
    let mut wrong = Vec::new();
    for r in rows() {
        let got = c.classify(&r.reason, &r.message);
        if got.class != r.class || (r.class != FailureClass::Unknown && got.rule.is_none()) {
            wrong.push(format!(
                "{} ({}): expected {}, got {} by rule {}\n    {}",
                r.source,
                r.reason,
                r.class,
                got.class,
                got.rule_name(),
                r.message.lines().next().unwrap_or("")
            ));
        }
    }
    assert!(
        wrong.is_empty(),
        "{} misclassified:\n{}",
        wrong.len(),
        wrong.join("\n")
    );
}

#[test]
fn catalog_rules_override_the_table() {
    // A platform team decides that S3 buckets left non-empty are retried (a cleanup job
    // empties them) — the catalog rule must win over the built-in `not-empty` rule.
    let c = Classifier::from_json(
        r#"[{"pattern": "BucketNotEmpty", "reason": "TFExecApplyFailed", "class": "transient"}]"#,
        "test catalog",
    )
    .unwrap();
    let row = rows()
        .into_iter()
        .find(|r| r.message.contains("BucketNotEmpty"))
        .expect("a BucketNotEmpty row");
    let got = c.classify(&row.reason, &row.message);
    assert_eq!(got.class, FailureClass::Transient);
    assert_eq!(got.rule_name(), "catalog[0]");
    // Other rows are unaffected.
    for r in rows()
        .iter()
        .filter(|r| !r.message.contains("BucketNotEmpty"))
    {
        assert_eq!(
            c.classify(&r.reason, &r.message).class,
            r.class,
            "{}",
            r.source
        );
    }
}
