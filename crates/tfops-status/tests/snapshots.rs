//! Output snapshots of `status` for a release exercising every state (table, wide, json, yaml),
//! with `now` injected so ages are deterministic. Set `UPDATE_SNAPSHOTS=1` to rewrite them
//! (then review the diff).

use std::path::PathBuf;

use chrono::{DateTime, Utc};
use tfops_status::fixtures;
use tfops_status::render::{render, Format, RenderOptions};
use tfops_status::report::{build, Scope, StatusReport};

fn at(s: &str) -> DateTime<Utc> {
    s.parse().unwrap_or_else(|e| panic!("bad time {s}: {e}"))
}

fn report() -> StatusReport {
    let (crs, ledger) = fixtures::release("apps", "shop", at("2026-11-26T12:02:00Z"));
    build(
        &crs,
        &ledger,
        Scope {
            namespaces: Some(vec!["apps".into()]),
            release: Some("shop".into()),
        },
        at("2026-11-26T12:03:00Z"),
    )
}

fn check(name: &str, actual: &str) {
    let path = PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("tests/snapshots")
        .join(name);
    if std::env::var_os("UPDATE_SNAPSHOTS").is_some() {
        std::fs::write(&path, actual).unwrap_or_else(|e| panic!("writing {}: {e}", path.display()));
        return;
    }
    let expected = std::fs::read_to_string(&path).unwrap_or_else(|e| {
        panic!(
            "reading {} (run with UPDATE_SNAPSHOTS=1): {e}",
            path.display()
        )
    });
    assert_eq!(actual, expected, "snapshot {name} differs");
}

fn rendered(format: Format, color: bool) -> String {
    let r = report();
    render(
        &r,
        &RenderOptions {
            format,
            color,
            now: r.metadata.generated_at,
        },
    )
    .unwrap_or_else(|e| panic!("render: {e}"))
}

#[test]
fn table() {
    check("status-table.txt", &rendered(Format::Table, false));
}

#[test]
fn wide() {
    check("status-wide.txt", &rendered(Format::Wide, false));
}

#[test]
fn json() {
    check("status.json", &rendered(Format::Json, false));
}

#[test]
fn yaml() {
    check("status.yaml", &rendered(Format::Yaml, false));
}

#[test]
fn colour_only_wraps_the_state_cell() {
    let plain = rendered(Format::Table, false);
    let coloured = rendered(Format::Table, true);
    assert!(!plain.contains('\u{1b}'));
    assert!(coloured.contains("\u{1b}[32mReady\u{1b}[0m"));
    assert!(coloured.contains("\u{1b}[31mFailed\u{1b}[0m"));
    let stripped = coloured
        .replace("\u{1b}[32m", "")
        .replace("\u{1b}[33m", "")
        .replace("\u{1b}[31m", "")
        .replace("\u{1b}[0m", "");
    assert_eq!(stripped, plain);
}

#[test]
fn json_is_the_documented_schema() {
    let v: serde_json::Value = serde_json::from_str(&rendered(Format::Json, false))
        .unwrap_or_else(|e| panic!("json: {e}"));
    assert_eq!(v["apiVersion"], "tfops.dev/v1alpha1");
    assert_eq!(v["kind"], "StatusReport");
    assert_eq!(v["summary"]["total"], 13);
    assert_eq!(v["summary"]["exitCode"], 2);
    let states: Vec<&str> = v["items"]
        .as_array()
        .map(|a| a.iter().filter_map(|i| i["state"].as_str()).collect())
        .unwrap_or_default();
    for s in tfops_status::state::State::ALL {
        assert!(
            states.contains(&s.as_str()),
            "state {s} missing from {states:?}"
        );
    }
    let y: serde_json::Value = serde_saphyr::from_str(&rendered(Format::Yaml, false))
        .unwrap_or_else(|e| panic!("yaml: {e}"));
    assert_eq!(y, v, "yaml and json carry the same document");
}
