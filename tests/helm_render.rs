//! Real Helm 4.1.4 and 3.16.1 running `tfops-render` as post-renderer on charts-example: what
//! gets injected on each version, `--post-renderer-args` reaching us, the catalog config,
//! byte-identical pass-through of a chart without Terraform content, and bad input failing with
//! the reason (chart file + field) visible to the user on both versions — on Helm 4, whose
//! plugin runtime drops a post-renderer's stderr, through the plugin wrapper's forwarding.

use crate::common;

use std::path::Path;

use common::{
    annotation, chart, find, kinds_and_names, label, parse_docs, stderr, stdout, Helm, HelmHome,
    BOTH,
};
use serde_json::{json, Value};

fn render_ok(home: &HelmHome, release: &str, chart: &Path, extra: &[&str]) -> (Vec<Value>, String) {
    let out = home.template_rendered(release, chart, extra);
    assert!(
        out.status.success(),
        "{}: helm template {} failed:\n{}",
        home.helm.version(),
        chart.display(),
        stderr(&out)
    );
    (parse_docs(&stdout(&out)), stderr(&out))
}

fn installed(helm: Helm) -> HelmHome {
    let home = HelmHome::new(helm);
    home.install_plugins();
    home
}

#[test]
fn orders_app_gets_terraform_source_rbac_and_guard_hook_on_helm4_only() {
    for helm in BOTH {
        let home = installed(helm);
        let (docs, err) = render_ok(&home, "shop", &chart("orders-app"), &[]);
        let v = helm.version();

        assert!(
            docs.iter().all(|d| common::kind(d) != "TerraformModule"),
            "{v}: a TerraformModule reached the output"
        );
        // The chart's own objects are still there.
        assert!(find(&docs, "Deployment", "shop-orders").is_some(), "{v}");
        assert!(find(&docs, "Service", "shop-orders").is_some(), "{v}");

        let tf = find(&docs, "Terraform", "shop-orders-db")
            .unwrap_or_else(|| panic!("{v}: no Terraform: {:?}", kinds_and_names(&docs)));
        assert_eq!(tf["apiVersion"], "infra.contrib.fluxcd.io/v1alpha2");
        assert_eq!(label(tf, "tfops.dev/release"), Some("shop"), "{v}");
        assert_eq!(label(tf, "tfops.dev/module"), Some("orders-db"), "{v}");
        assert!(annotation(tf, "tfops.dev/spec-sha256").is_some_and(|h| h.len() == 64));
        assert_eq!(
            annotation(tf, "tfops.dev/uninstall-policy"),
            Some("destroy")
        );
        assert_eq!(annotation(tf, "tfops.dev/on-failure"), Some("orphan"));
        assert_eq!(annotation(tf, "tfops.dev/retries"), Some("3"));
        assert_eq!(annotation(tf, "tfops.dev/timeout"), Some("10m"));
        assert_eq!(tf["spec"]["destroyResourcesOnDeletion"], json!(true));
        assert_eq!(tf["spec"]["sourceRef"]["kind"], "OCIRepository");
        assert_eq!(
            tf["spec"]["writeOutputsToSecret"]["name"],
            "shop-db-outputs"
        );

        let source_name = tf["spec"]["sourceRef"]["name"].as_str().unwrap();
        let source = find(&docs, "OCIRepository", source_name).expect("OCIRepository");
        assert_eq!(source["apiVersion"], "source.toolkit.fluxcd.io/v1");
        assert_eq!(
            source["spec"]["url"],
            "oci://ghcr.io/example/terraform/postgres"
        );
        assert_eq!(source["spec"]["ref"]["tag"], "1.4.2");

        let runner = tf["spec"]["serviceAccountName"]
            .as_str()
            .expect("runner service account");
        assert!(
            find(&docs, "ServiceAccount", runner).is_some(),
            "{v}: {runner}"
        );
        let binding = docs
            .iter()
            .find(|d| {
                common::kind(d) == "RoleBinding"
                    && d["roleRef"]["name"] == "tf-runner-role"
                    && d["subjects"][0]["name"] == runner
            })
            .unwrap_or_else(|| panic!("{v}: no runner RoleBinding: {:?}", kinds_and_names(&docs)));
        assert_eq!(binding["roleRef"]["kind"], "ClusterRole");

        let guard = "shop-tfops-guard";
        let job = find(&docs, "Job", guard);
        match helm {
            Helm::V4 => {
                assert_eq!(annotation(tf, "tfops.dev/guard"), Some("hook"));
                let job =
                    job.unwrap_or_else(|| panic!("no guard Job: {:?}", kinds_and_names(&docs)));
                assert_eq!(annotation(job, "helm.sh/hook"), Some("pre-delete"));
                assert_eq!(annotation(job, "helm.sh/hook-weight"), Some("-10"));
                assert_eq!(
                    annotation(job, "helm.sh/hook-delete-policy"),
                    Some("before-hook-creation,hook-succeeded")
                );
                let pod = &job["spec"]["template"]["spec"];
                assert_eq!(pod["serviceAccountName"], guard);
                assert_eq!(pod["containers"][0]["command"], json!(["tfops", "guard"]));
                for kind in ["ServiceAccount", "Role", "RoleBinding"] {
                    assert!(find(&docs, kind, guard).is_some(), "guard {kind}");
                }
                // Helm 4 sorted it out as a hook: --no-hooks drops the Job, not its RBAC.
                let out = home.template_rendered("shop", &chart("orders-app"), &["--no-hooks"]);
                assert!(out.status.success(), "{}", stderr(&out));
                let no_hooks = parse_docs(&stdout(&out));
                assert!(find(&no_hooks, "Job", guard).is_none());
                assert!(find(&no_hooks, "Role", guard).is_some());
                // Helm consumed its filename annotation.
                assert!(docs.iter().all(|d| annotation(
                    d,
                    "postrenderer.helm.sh/postrender-filename"
                )
                .is_none()));
            }
            Helm::V3 => {
                assert_eq!(annotation(tf, "tfops.dev/guard"), Some("client"));
                assert!(job.is_none(), "Helm 3 output has a guard Job");
                assert!(docs.iter().all(|d| common::name(d) != guard));
                assert!(
                    err.contains("helm tfops uninstall"),
                    "no Helm 3 warning: {err}"
                );
            }
        }
    }
}

#[test]
fn bucket_iam_pair_is_ordered_by_depends_on() {
    for helm in BOTH {
        let home = installed(helm);
        let (docs, _) = render_ok(&home, "reports", &chart("bucket-iam"), &[]);
        let v = helm.version();
        let bucket = find(&docs, "Terraform", "reports-bucket")
            .unwrap_or_else(|| panic!("{v}: {:?}", kinds_and_names(&docs)));
        let iam = find(&docs, "Terraform", "reports-bucket-iam").expect("iam Terraform");
        assert_eq!(
            iam["spec"]["dependsOn"],
            json!([{"name": "reports-bucket"}]),
            "{v}"
        );
        // Git module → generated GitRepository; sourceRef → the chart's own source.
        assert_eq!(bucket["spec"]["sourceRef"]["kind"], "GitRepository");
        let generated = bucket["spec"]["sourceRef"]["name"].as_str().unwrap();
        let git = find(&docs, "GitRepository", generated).expect("generated GitRepository");
        assert_eq!(git["spec"]["ref"]["tag"], "v0.1.0");
        assert_eq!(
            iam["spec"]["sourceRef"],
            json!({"kind": "GitRepository", "name": "reports-platform-modules"})
        );
        assert!(find(&docs, "GitRepository", "reports-platform-modules").is_some());
        // Module intent wins over built-in defaults.
        assert_eq!(annotation(iam, "tfops.dev/on-failure"), Some("block"));
        assert_eq!(annotation(iam, "tfops.dev/retries"), Some("2"));
        assert_eq!(annotation(iam, "tfops.dev/timeout"), Some("5m"));
        assert_eq!(annotation(bucket, "tfops.dev/retries"), Some("3"));
    }
}

#[test]
fn a_terraform_cr_already_in_the_chart_is_adopted_not_rewritten() {
    for helm in BOTH {
        let home = installed(helm);
        let plain = home.ok([
            "template",
            "legacy",
            chart("legacy-terraform").to_str().unwrap(),
        ]);
        let plain = parse_docs(&plain);
        let (docs, _) = render_ok(&home, "legacy", &chart("legacy-terraform"), &[]);
        let v = helm.version();
        let before = find(&plain, "Terraform", "legacy-cache-bucket").unwrap();
        let after = find(&docs, "Terraform", "legacy-cache-bucket")
            .unwrap_or_else(|| panic!("{v}: {:?}", kinds_and_names(&docs)));
        assert_eq!(after["spec"], before["spec"], "{v}: spec rewritten");
        assert_eq!(label(after, "tfops.dev/release"), Some("legacy"));
        assert_eq!(
            label(after, "tfops.dev/module"),
            Some("legacy-cache-bucket")
        );
        assert_eq!(label(after, "app.kubernetes.io/instance"), Some("legacy"));
        for key in [
            "tfops.dev/uninstall-policy",
            "tfops.dev/on-failure",
            "tfops.dev/retries",
            "tfops.dev/timeout",
            "tfops.dev/guard",
        ] {
            assert!(annotation(after, key).is_some(), "{v}: {key} missing");
        }
        assert_eq!(
            find(&docs, "Job", "legacy-tfops-guard").is_some(),
            helm == Helm::V4,
            "{v}"
        );
    }
}

#[test]
fn post_renderer_args_reach_tfops_render() {
    let catalog = chart("catalog.yaml");
    for helm in BOTH {
        let home = installed(helm);
        let v = helm.version();
        // --release overrides the release name taken from the chart's labels.
        let (docs, _) = render_ok(
            &home,
            "shop",
            &chart("orders-app"),
            &[
                "--post-renderer-args",
                "--release=custom",
                "--post-renderer-args",
                "--namespace=shop-ns",
            ],
        );
        let tf = find(&docs, "Terraform", "custom-orders-db")
            .unwrap_or_else(|| panic!("{v}: {:?}", kinds_and_names(&docs)));
        assert_eq!(label(tf, "tfops.dev/release"), Some("custom"));
        // Helm passes no `-n` to a post-renderer: --namespace (or HELM_NAMESPACE) does.
        let runner = tf["spec"]["serviceAccountName"].as_str().unwrap();
        let binding = docs
            .iter()
            .find(|d| common::kind(d) == "RoleBinding" && d["subjects"][0]["name"] == runner)
            .expect("runner RoleBinding");
        assert_eq!(binding["subjects"][0]["namespace"], "shop-ns", "{v}");
        let out = home
            .helm([
                "template",
                "shop",
                chart("orders-app").to_str().unwrap(),
                "--post-renderer",
                "tfops-render",
            ])
            .env("HELM_NAMESPACE", "env-ns")
            .output()
            .unwrap();
        assert!(out.status.success(), "{}", stderr(&out));
        let docs = parse_docs(&stdout(&out));
        let runner = find(&docs, "Terraform", "shop-orders-db").expect("Terraform")["spec"]
            ["serviceAccountName"]
            .as_str()
            .unwrap();
        let binding = docs
            .iter()
            .find(|d| common::kind(d) == "RoleBinding" && d["subjects"][0]["name"] == runner)
            .expect("runner RoleBinding");
        assert_eq!(binding["subjects"][0]["namespace"], "env-ns", "{v}");

        // --config applies the catalog: backend, overlays on Terraform and runner accounts.
        let config_arg = format!("--config={}", catalog.display());
        let (docs, _) = render_ok(
            &home,
            "shop",
            &chart("orders-app"),
            &["--post-renderer-args", &config_arg],
        );
        let tf = find(&docs, "Terraform", "shop-orders-db").expect("Terraform");
        assert_eq!(
            tf["spec"]["backendConfig"]["secretSuffix"], "shop-orders-db",
            "{v}"
        );
        assert_eq!(
            tf["spec"]["runnerPodTemplate"]["spec"]["tolerations"][0]["value"], "infra",
            "{v}"
        );
        assert_eq!(
            tf["spec"]["runnerPodTemplate"]["metadata"]["annotations"]["platform.example/team"],
            "shop"
        );
        let runner = tf["spec"]["serviceAccountName"].as_str().unwrap();
        let sa = find(&docs, "ServiceAccount", runner).unwrap();
        assert_eq!(
            annotation(sa, "iam.gke.io/gcp-service-account"),
            Some("tf-runner@platform.iam.gserviceaccount.com")
        );
    }
}

/// The identity post-renderer of each version: on Helm 4 a `postrenderer/v1` plugin running
/// `cat` (Helm 4 re-serialises whatever a post-renderer returns, so that is the fair
/// baseline); on Helm 3 the `cat` executable.
fn identity_post_renderer(home: &HelmHome) -> &'static str {
    if home.helm == Helm::V4 {
        let dir = home.plugins_dir().join("identity");
        std::fs::create_dir_all(&dir).unwrap();
        let plugin = json!({
            "apiVersion": "v1",
            "name": "identity",
            "version": "0.1.0",
            "type": "postrenderer/v1",
            "runtime": "subprocess",
            "runtimeConfig": {"platformCommand": [{"command": "cat"}]},
        });
        std::fs::write(
            dir.join("plugin.yaml"),
            serde_saphyr::to_string(&plugin).unwrap(),
        )
        .unwrap();
        "identity"
    } else {
        "cat"
    }
}

#[test]
fn a_chart_without_terraform_renders_identically_with_and_without_tfops_render() {
    for helm in BOTH {
        let home = installed(helm);
        let plain = chart("plain-app");
        let identity = identity_post_renderer(&home);
        let baseline = home.ok([
            "template",
            "web",
            plain.to_str().unwrap(),
            "--post-renderer",
            identity,
        ]);
        let with = home.template_rendered("web", &plain, &[]);
        assert!(with.status.success(), "{}", stderr(&with));
        assert_eq!(stdout(&with), baseline, "{}", helm.version());
        assert!(!stderr(&with).contains("tfops-render"), "{}", stderr(&with));
        if helm == Helm::V3 {
            // Helm 3 prints a post-renderer's output as is: same as no post-renderer at all.
            let without = home.ok(["template", "web", plain.to_str().unwrap()]);
            assert_eq!(stdout(&with), without);
        }
    }
}

/// A copy of orders-app with one more template holding `broken`.
fn chart_with_template(home: &HelmHome, file: &str, broken: &str) -> std::path::PathBuf {
    let dest = home.path("orders-app");
    copy_dir(&chart("orders-app"), &dest);
    std::fs::write(dest.join("templates").join(file), broken).unwrap();
    dest
}

fn copy_dir(from: &Path, to: &Path) {
    std::fs::create_dir_all(to).unwrap();
    for entry in std::fs::read_dir(from).unwrap() {
        let entry = entry.unwrap();
        let dest = to.join(entry.file_name());
        if entry.file_type().unwrap().is_dir() {
            copy_dir(&entry.path(), &dest);
        } else {
            std::fs::copy(entry.path(), dest).unwrap();
        }
    }
}

const TWO_SOURCES: &str = "\
apiVersion: tfops.dev/v1alpha1
kind: TerraformModule
metadata:
  name: cache
spec:
  source:
    oci: {url: oci://ghcr.io/example/terraform/redis, tag: \"7.0.0\"}
    git: {url: https://github.com/example/modules, ref: {branch: main}}
";

const UNKNOWN_DEPENDENCY: &str = "\
apiVersion: tfops.dev/v1alpha1
kind: TerraformModule
metadata:
  name: cache
spec:
  source:
    oci: {url: oci://ghcr.io/example/terraform/redis, tag: \"7.0.0\"}
  dependsOn: [network]
";

#[test]
fn bad_module_fails_on_both_versions_naming_the_chart_file_and_field() {
    for helm in BOTH {
        for (file, broken, field) in [
            ("cache.yaml", TWO_SOURCES, "spec.source"),
            ("cache-deps.yaml", UNKNOWN_DEPENDENCY, "spec.dependsOn"),
        ] {
            let home = installed(helm);
            let dir = chart_with_template(&home, file, broken);
            let out = home.template_rendered("shop", &dir, &[]);
            let (v, err) = (helm.version(), stderr(&out));
            assert!(!out.status.success(), "{v}: {file} rendered");
            assert_eq!(stdout(&out), "", "{v}: something reached stdout");
            let source = format!("orders-app/templates/{file}");
            assert!(
                err.contains(&source),
                "{v}: stderr does not name {source}:\n{err}"
            );
            assert!(
                err.contains(field),
                "{v}: stderr does not name {field}:\n{err}"
            );
            assert!(err.contains("tfops-render: "), "{v}:\n{err}");
            if helm == Helm::V4 {
                // What Helm 4 itself says stays, after our reason.
                assert!(
                    err.contains("plugin \"tfops-render\" exited with error"),
                    "{err}"
                );
            }
        }
    }
}

/// Helm passes no namespace to a post-renderer; tfops-render resolves it as Helm does, from
/// the helm command line that runs it: `-n`, else the kubeconfig context's namespace.
#[test]
fn the_release_namespace_comes_from_helm_itself() {
    for helm in BOTH {
        let home = installed(helm);
        let v = helm.version();
        let subject_namespace = |docs: &[Value]| {
            let tf = find(docs, "Terraform", "shop-orders-db").expect("Terraform");
            let runner = tf["spec"]["serviceAccountName"]
                .as_str()
                .unwrap()
                .to_string();
            let binding = docs
                .iter()
                .find(|d| {
                    common::kind(d) == "RoleBinding" && d["subjects"][0]["name"] == runner.as_str()
                })
                .expect("runner RoleBinding");
            binding["subjects"][0]["namespace"]
                .as_str()
                .unwrap()
                .to_string()
        };
        let (docs, err) = render_ok(&home, "shop", &chart("orders-app"), &["-n", "from-flag"]);
        assert_eq!(subject_namespace(&docs), "from-flag", "{v}");
        assert!(!err.contains("namespace unknown"), "{v}: {err}");

        let kubeconfig = home.path("kubeconfig");
        let config = json!({
            "apiVersion": "v1",
            "kind": "Config",
            "clusters": [{"name": "c", "cluster": {"server": "https://127.0.0.1:1"}}],
            "users": [{"name": "u", "user": {"token": "t"}}],
            "contexts": [
                {"name": "team", "context": {"cluster": "c", "user": "u", "namespace": "from-context"}},
                {"name": "other", "context": {"cluster": "c", "user": "u", "namespace": "other-ns"}},
            ],
            "current-context": "team",
        });
        std::fs::write(&kubeconfig, serde_saphyr::to_string(&config).unwrap()).unwrap();
        let plain = chart("orders-app");
        for (extra, want) in [
            (None, "from-context"),
            (Some("--kube-context=other"), "other-ns"),
        ] {
            let mut cmd = home.helm([
                "template",
                "shop",
                plain.to_str().unwrap(),
                "--post-renderer",
                "tfops-render",
            ]);
            cmd.args(extra).env("KUBECONFIG", &kubeconfig);
            let out = cmd.output().unwrap();
            assert!(out.status.success(), "{v}: {}", stderr(&out));
            assert_eq!(
                subject_namespace(&parse_docs(&stdout(&out))),
                want,
                "{v} {extra:?}"
            );
        }
    }
}

#[test]
fn a_bad_catalog_config_fails_naming_the_file_and_field() {
    for helm in BOTH {
        let home = installed(helm);
        let config = home.path("catalog.yaml");
        let bad = json!({"guard": {"budget": "240s", "imag": "x"}});
        std::fs::write(&config, serde_saphyr::to_string(&bad).unwrap()).unwrap();
        let arg = format!("--config={}", config.display());
        let out = home.template_rendered(
            "shop",
            &chart("orders-app"),
            &["--post-renderer-args", &arg],
        );
        let (v, err) = (helm.version(), stderr(&out));
        assert!(!out.status.success(), "{v}");
        assert_eq!(stdout(&out), "", "{v}");
        assert!(err.contains(&config.display().to_string()), "{v}: {err}");
        assert!(err.contains("guard"), "{v}: {err}");
        assert!(err.contains("imag"), "{v}: {err}");
        // Unknown post-renderer arguments are reported by us, visibly, too.
        let out = home.template_rendered(
            "shop",
            &chart("orders-app"),
            &["--post-renderer-args=--flavour=red"],
        );
        assert!(!out.status.success(), "{v}");
        assert!(
            stderr(&out).contains("unexpected argument(s) [\"--flavour=red\"]"),
            "{v}: {}",
            stderr(&out)
        );
    }
}

/// Helm 4 writing its stderr to a file: forwarded when the file is opened for appending; a
/// file helm writes at its own offset gets nothing from us (it would overwrite our lines).
#[test]
fn helm4_stderr_forwarding_respects_files() {
    let home = installed(Helm::V4);
    let dir = chart_with_template(&home, "cache.yaml", TWO_SOURCES);
    for append in [true, false] {
        let log = home.path(if append { "append.log" } else { "truncate.log" });
        let file = std::fs::OpenOptions::new()
            .create(true)
            .write(true)
            .append(append)
            .truncate(!append)
            .open(&log)
            .unwrap();
        let out = home
            .helm([
                "template",
                "shop",
                dir.to_str().unwrap(),
                "--post-renderer",
                "tfops-render",
            ])
            .stderr(file)
            .output()
            .unwrap();
        assert!(!out.status.success());
        let text = std::fs::read_to_string(&log).unwrap();
        assert!(
            text.contains("plugin \"tfops-render\" exited with error"),
            "{text}"
        );
        assert!(text.starts_with("Error: ") || append, "{text}");
        assert_eq!(
            text.contains("orders-app/templates/cache.yaml"),
            append,
            "append={append}:\n{text}"
        );
    }
}
