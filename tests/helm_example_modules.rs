//! The Terraform modules of charts-example are real: with `terraform` (or `tofu`) on PATH they
//! init, apply and destroy offline (no provider download), chained the way the bucket-iam
//! chart chains them; and every var the charts pass (through real Helm 4 and the post-renderer)
//! is declared by the module it points at. Skips the apply part when neither binary exists.

use crate::common;

use std::collections::BTreeSet;
use std::path::{Path, PathBuf};
use std::process::Command;

use common::{chart, parse_docs, Helm, HelmHome};

fn terraform() -> Option<PathBuf> {
    let path = std::env::var_os("PATH")?;
    ["terraform", "tofu"].iter().find_map(|bin| {
        std::env::split_paths(&path)
            .map(|dir| dir.join(bin))
            .find(|p| p.is_file())
    })
}

fn modules_dir() -> PathBuf {
    common::repo_root().join("charts-example/modules")
}

/// `variable "name"` blocks declared in a module folder.
fn declared_variables(module: &Path) -> BTreeSet<String> {
    let mut names = BTreeSet::new();
    for entry in std::fs::read_dir(module).unwrap() {
        let path = entry.unwrap().path();
        if path.extension().is_some_and(|e| e == "tf") {
            for line in std::fs::read_to_string(&path).unwrap().lines() {
                if let Some(rest) = line.trim().strip_prefix("variable \"") {
                    if let Some(name) = rest.split('"').next() {
                        names.insert(name.to_string());
                    }
                }
            }
        }
    }
    names
}

struct Tf {
    bin: PathBuf,
    dir: PathBuf,
    home: PathBuf,
}

impl Tf {
    fn run(&self, args: &[&str]) -> String {
        let out = Command::new(&self.bin)
            .args(args)
            .current_dir(&self.dir)
            .env("HOME", &self.home)
            .env("TF_IN_AUTOMATION", "1")
            .env("TF_INPUT", "0")
            .env("CHECKPOINT_DISABLE", "1")
            .output()
            .unwrap();
        assert!(
            out.status.success(),
            "{} {:?} in {}: {}{}",
            self.bin.display(),
            args,
            self.dir.display(),
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        );
        String::from_utf8_lossy(&out.stdout).into_owned()
    }
}

fn copy_module(name: &str, into: &Path) -> PathBuf {
    let dest = into.join(name);
    std::fs::create_dir_all(&dest).unwrap();
    for entry in std::fs::read_dir(modules_dir().join(name)).unwrap() {
        let path = entry.unwrap().path();
        if path.extension().is_some_and(|e| e == "tf") {
            std::fs::copy(&path, dest.join(path.file_name().unwrap())).unwrap();
        }
    }
    dest
}

#[test]
fn bucket_and_iam_modules_apply_and_destroy_offline() {
    let Some(bin) = terraform() else {
        eprintln!("SKIP: neither terraform nor tofu is on PATH");
        return;
    };
    let work = tempfile::tempdir().unwrap();
    let home = work.path().join("home");
    std::fs::create_dir_all(&home).unwrap();
    let bucket = Tf {
        bin: bin.clone(),
        dir: copy_module("bucket", work.path()),
        home: home.clone(),
    };
    let iam = Tf {
        bin,
        dir: copy_module("bucket-iam", work.path()),
        home,
    };

    bucket.run(&["init", "-backend=false"]);
    bucket.run(&["apply", "-auto-approve", "-var", "prefix=reports"]);
    let name = bucket.run(&["output", "-raw", "bucket_name"]);
    assert!(name.starts_with("reports-"), "{name}");

    iam.run(&["init", "-backend=false"]);
    let bucket_var = format!("bucket_name={name}");
    iam.run(&[
        "apply",
        "-auto-approve",
        "-var",
        &bucket_var,
        "-var",
        "member=serviceAccount:reports-writer",
        "-var",
        "role=writer",
    ]);
    let binding = iam.run(&["output", "-raw", "binding"]);
    assert_eq!(
        binding,
        format!("serviceAccount:reports-writer is writer on {name}")
    );

    // Dependants first, as the guard deletes them.
    iam.run(&[
        "destroy",
        "-auto-approve",
        "-var",
        &bucket_var,
        "-var",
        "member=serviceAccount:reports-writer",
    ]);
    bucket.run(&["destroy", "-auto-approve", "-var", "prefix=reports"]);
}

#[test]
fn every_var_a_chart_passes_is_declared_by_its_module() {
    let home = HelmHome::new(Helm::V4);
    home.install_plugins();
    let mut checked = 0;
    for (chart_name, release) in [("bucket-iam", "reports"), ("legacy-terraform", "legacy")] {
        let out = home.template_rendered(release, &chart(chart_name), &[]);
        assert!(out.status.success(), "{}", common::stderr(&out));
        for tf in parse_docs(&common::stdout(&out))
            .iter()
            .filter(|d| common::kind(d) == "Terraform")
        {
            let path = tf["spec"]["path"].as_str().unwrap();
            let module = path
                .strip_prefix("./charts-example/modules/")
                .unwrap_or_else(|| panic!("{chart_name}: unexpected module path {path}"));
            let declared = declared_variables(&modules_dir().join(module));
            assert!(!declared.is_empty(), "{module} declares no variables");
            let vars = tf["spec"]["vars"].as_array().cloned().unwrap_or_default();
            for var in vars {
                let name = var["name"].as_str().unwrap();
                assert!(
                    declared.contains(name),
                    "{chart_name}: Terraform {} passes {name}, which modules/{module} does not declare ({declared:?})",
                    common::name(tf)
                );
                checked += 1;
            }
            for from in tf["spec"]["varsFrom"]
                .as_array()
                .cloned()
                .unwrap_or_default()
            {
                for key in from["varsKeys"].as_array().cloned().unwrap_or_default() {
                    let key = key.as_str().unwrap();
                    assert!(declared.contains(key), "{chart_name}: varsKeys {key}");
                    checked += 1;
                }
            }
        }
    }
    assert!(checked >= 4, "only {checked} vars checked");
}
