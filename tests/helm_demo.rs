//! `scripts/demo-render.sh` (`make demo-render`, the post-renderer's chart tour) keeps working:
//! run with the test build of tfops and the pinned Helm binaries, it installs the plugins for Helm 4 and Helm 3 and reports,
//! per chart of charts-example, what the post-renderer injected.

use crate::common;

use std::process::Command;

use common::{stderr, stdout, tfops_bin, Helm};

#[test]
fn make_demo_renders_every_example_chart_on_both_helm_versions() {
    let tmp = tempfile::tempdir().unwrap();
    let out = Command::new(common::repo_root().join("scripts/demo-render.sh"))
        .env("TFOPS_BIN", tfops_bin())
        .env("HELM4_BIN", Helm::V4.binary())
        .env("HELM3_BIN", Helm::V3.binary())
        .env("TMPDIR", tmp.path())
        .env_remove("KEEP")
        .output()
        .unwrap();
    let text = stdout(&out);
    assert!(out.status.success(), "{text}\n{}", stderr(&out));
    let (helm4, helm3) = text
        .split_once("== Helm v3.16.1 ==")
        .unwrap_or_else(|| panic!("no Helm 3 section:\n{text}"));
    assert!(helm4.contains("== Helm v4.1.4 =="), "{text}");
    for section in [helm4, helm3] {
        for chart in ["orders-app", "bucket-iam", "legacy-terraform", "plain-app"] {
            assert!(
                section.contains(&format!("  {chart} (release ")),
                "{chart}:\n{section}"
            );
        }
        assert!(
            section.contains("+ Terraform/demo-orders-orders-db"),
            "{section}"
        );
        assert!(
            section.contains("+ OCIRepository/demo-orders-orders-db"),
            "{section}"
        );
        assert!(
            section.contains("+ Terraform/demo-bucket-bucket-iam"),
            "{section}"
        );
        assert!(
            section.contains("~ Terraform/demo-legacy-cache-bucket"),
            "{section}"
        );
        assert!(section.contains("no Terraform content"), "{section}");
        assert!(!section.contains("FAILED"), "{section}");
    }
    assert!(helm4.contains("+ Job/demo-orders-tfops-guard  [helm.sh/hook: pre-delete]"));
    assert!(helm4.contains("postrenderer/v1"));
    assert!(!helm3.contains("Job/"), "{helm3}");
    assert!(
        helm3.contains("helm tfops uninstall demo-orders"),
        "{helm3}"
    );
    // The throw-away Helm homes are gone.
    assert_eq!(std::fs::read_dir(tmp.path()).unwrap().count(), 0);
}
