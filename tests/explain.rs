//! `tfops explain` end to end through the real binary: classification, next step, escalation,
//! JSON output, catalog rules from the environment, and clear errors on bad input.

use std::process::{Command, Output};

fn tfops(args: &[&str], env: &[(&str, &str)]) -> Output {
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_tfops"));
    cmd.arg("explain")
        .args(args)
        .env_remove("TFOPS_CLASSIFIER_RULES");
    for (k, v) in env {
        cmd.env(k, v);
    }
    cmd.output().expect("run tfops")
}

fn stdout(o: &Output) -> String {
    String::from_utf8_lossy(&o.stdout).into_owned()
}

fn stderr(o: &Output) -> String {
    String::from_utf8_lossy(&o.stderr).into_owned()
}

#[test]
fn transient_failure_prints_retry_then_escalation() {
    let o = tfops(
        &[
            "--reason",
            "TFExecApplyFailed",
            "--message",
            "Error: deleting RDS DB Instance: Throttling: Rate exceeded\n\tstatus code: 400",
            "--attempts",
            "2",
            "--elapsed",
            "1m",
        ],
        &[],
    );
    assert!(o.status.success(), "{}", stderr(&o));
    let out = stdout(&o);
    let first = out.lines().next().unwrap_or_default();
    assert!(
        first.starts_with("transient (rule: throttling) → retry 2/3 in 20s"),
        "{out}"
    );
    assert!(first.contains("after 4 failed attempts"), "{out}");
    assert!(
        first.contains("at 10m → orphan: ledger entry, then destroyResourcesOnDeletion=false"),
        "{out}"
    );
    assert!(out.contains("attempts: 2 failed, 1m elapsed"), "{out}");
}

#[test]
fn permanent_failure_with_force_policy_as_json() {
    let o = tfops(
        &[
            "--reason",
            "TFExecApplyFailed",
            "--message",
            "Error: Cannot destroy instance without setting deletion_protection=false and running `terraform apply`",
            "--on-failure",
            "force",
            "-o",
            "json",
        ],
        &[],
    );
    assert!(o.status.success(), "{}", stderr(&o));
    let v: serde_json::Value = serde_json::from_slice(&o.stdout).expect("json output");
    assert_eq!(v["class"], "permanent");
    assert_eq!(v["rule"], "deletion-protection");
    assert_eq!(v["next"]["action"], "force-remove");
    assert_eq!(v["decision"]["action"], "force-remove");
    assert_eq!(v["decision"]["ledger"]["decision"], "force-removed");
    assert_eq!(v["decision"]["ledger"]["reason"], "permanent-failure");
    assert_eq!(v["policy"]["onFailure"], "force");
}

#[test]
fn retries_exhausted_and_timeout_escalate_now() {
    let o = tfops(
        &[
            "--message",
            "context deadline exceeded",
            "--retries",
            "1",
            "--attempts",
            "2",
        ],
        &[],
    );
    assert!(o.status.success(), "{}", stderr(&o));
    assert!(
        stdout(&o).starts_with("transient (rule: timeout) → orphan now (retries-exhausted)"),
        "{}",
        stdout(&o)
    );
    let o = tfops(
        &[
            "--message",
            "context deadline exceeded",
            "--elapsed",
            "5m",
            "--timeout",
            "5m",
        ],
        &[],
    );
    assert!(
        stdout(&o).contains("orphan now (timeout)"),
        "{}",
        stdout(&o)
    );
}

#[test]
fn block_policy_and_retain_policy() {
    let o = tfops(
        &[
            "--reason",
            "TFExecApplyFailed",
            "--message",
            "AccessDenied",
            "--on-failure",
            "block",
        ],
        &[],
    );
    assert!(o.status.success());
    assert!(stdout(&o).contains("→ block now"), "{}", stdout(&o));
    let o = tfops(
        &[
            "--message",
            "Throttling: Rate exceeded",
            "--policy",
            "retain",
        ],
        &[],
    );
    assert!(
        stdout(&o).contains("orphan now (retain-policy)"),
        "{}",
        stdout(&o)
    );
}

#[test]
fn catalog_rules_from_the_environment_come_first() {
    let rules = r#"[{"pattern": "QuotaExceeded: too many snapshots", "class": "permanent"}]"#;
    let o = tfops(
        &[
            "--message",
            "QuotaExceeded: too many snapshots, rate exceeded",
            "-o",
            "json",
        ],
        &[("TFOPS_CLASSIFIER_RULES", rules)],
    );
    assert!(o.status.success(), "{}", stderr(&o));
    let v: serde_json::Value = serde_json::from_slice(&o.stdout).unwrap();
    assert_eq!(v["class"], "permanent");
    assert_eq!(v["rule"], "catalog[0]");
    assert_eq!(v["classification"]["rule"]["origin"], "catalog");
}

#[test]
fn bad_input_fails_clearly_with_nothing_on_stdout() {
    let o = tfops(&["--message", "x", "--elapsed", "ten minutes"], &[]);
    assert!(!o.status.success());
    assert!(o.stdout.is_empty());
    assert!(stderr(&o).contains("--elapsed"), "{}", stderr(&o));

    let o = tfops(&["--message", "x", "--policy", "keep"], &[]);
    assert!(!o.status.success());
    assert!(stderr(&o).contains("destroy or retain"), "{}", stderr(&o));

    let o = tfops(&["--message", "x", "--attempts", "0"], &[]);
    assert!(!o.status.success());
    assert!(o.stdout.is_empty());
    assert!(stderr(&o).contains("--attempts"), "{}", stderr(&o));

    let o = tfops(
        &["--message", "x"],
        &[(
            "TFOPS_CLASSIFIER_RULES",
            r#"[{"pattern": "(", "class": "transient"}]"#,
        )],
    );
    assert!(!o.status.success());
    assert!(o.stdout.is_empty());
    let e = stderr(&o);
    assert!(
        e.contains("TFOPS_CLASSIFIER_RULES") && e.contains("pattern"),
        "{e}"
    );
}

#[test]
fn check_measures_labelled_messages_and_fails_on_permanent_classed_transient() {
    let dir = tempfile::tempdir().expect("tempdir");
    let good = dir.path().join("good.yaml");
    std::fs::write(
        &good,
        "- source: https://example.org/a\n  reason: TFExecApplyFailed\n  message: \"Throttling: Rate exceeded\"\n  class: transient\n  origin: aws\n- message: \"BucketNotEmpty: The bucket you tried to delete is not empty\"\n  class: permanent\n- message: \"Error: operation failed\"\n  class: permanent\n",
    )
    .expect("write");
    let o = tfops(&["--check", good.to_str().expect("utf-8 path")], &[]);
    assert_eq!(o.status.code(), Some(0), "{}", stderr(&o));
    let out = stdout(&o);
    assert!(
        out.contains(
            "3 messages, agreement 66.7 % (2), unknown 33.3 % (1), permanent classed transient 0"
        ),
        "{out}"
    );
    assert!(
        out.contains(
            "#3 labelled permanent, classed unknown by no rule matched\n      Error: operation failed\n"
        ),
        "{out}"
    );

    // A permanent error classed transient: exit 2, JSON names it.
    let bad = dir.path().join("bad.json");
    std::fs::write(
        &bad,
        r#"[{"message": "Throttling: Rate exceeded", "class": "permanent", "source": "ticket-7"}]"#,
    )
    .expect("write");
    let o = tfops(
        &["--check", bad.to_str().expect("utf-8 path"), "-o", "json"],
        &[],
    );
    assert_eq!(o.status.code(), Some(2), "{}", stderr(&o));
    let v: serde_json::Value = serde_json::from_str(&stdout(&o)).expect("json");
    assert_eq!(v["permanentAsTransient"], 1);
    assert_eq!(v["agreementPct"], 0.0);
    assert_eq!(v["disagreements"][0]["source"], "ticket-7");
    assert_eq!(v["disagreements"][0]["rule"], "throttling");

    // Catalog rules take part, as in the guard.
    let o = tfops(
        &["--check", bad.to_str().expect("utf-8 path")],
        &[(
            "TFOPS_CLASSIFIER_RULES",
            r#"[{"pattern": "Rate exceeded", "class": "permanent", "why": "our account's limit is fixed"}]"#,
        )],
    );
    assert_eq!(o.status.code(), Some(0), "{}", stderr(&o));

    // --reason is the default for rows without one: an ArtifactFailed row with no transient
    // cause in its message is blocked.
    let reasonless = dir.path().join("reasonless.yaml");
    std::fs::write(
        &reasonless,
        "- message: \"\"\n  class: blocked-by-missing-dependency\n",
    )
    .expect("write");
    let path = reasonless.to_str().expect("utf-8 path");
    let o = tfops(&["--check", path], &[]);
    assert!(stdout(&o).contains("agreement 0.0 %"), "{}", stdout(&o));
    let o = tfops(&["--check", path, "--reason", "ArtifactFailed"], &[]);
    assert!(stdout(&o).contains("agreement 100.0 %"), "{}", stdout(&o));

    // --check with flags that only make sense for one message: a usage error.
    let o = tfops(&["--check", path, "--message", "x"], &[]);
    assert_eq!(o.status.code(), Some(1), "{}", stderr(&o));
    assert!(stderr(&o).contains("cannot be used with"), "{}", stderr(&o));

    // Bad input: a clear error naming the file and the field, nothing on stdout.
    let broken = dir.path().join("broken.yaml");
    std::fs::write(&broken, "- message: x\n").expect("write");
    let o = tfops(&["--check", broken.to_str().expect("utf-8 path")], &[]);
    assert!(!o.status.success());
    assert!(stdout(&o).is_empty(), "{}", stdout(&o));
    let err = stderr(&o);
    assert!(
        err.contains("broken.yaml") && err.contains("class"),
        "{err}"
    );
}
