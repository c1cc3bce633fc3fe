//! End-to-end behaviour of `render` on Helm 3 and Helm 4 shaped streams: expansion, adoption,
//! guard injection, placement, fidelity of untouched documents, determinism.

use crate::common;

use common::{docs, find, fixture, helm4_doc, helm4_stream, kinds_names, opts};
use serde_json::json;
use tfops_render::{render, HelmFlavor};

const FILE_ANN: &str = "postrenderer.helm.sh/postrender-filename";

fn helm4_input() -> Vec<u8> {
    helm4_stream(&[
        helm4_doc(
            "shop/templates/configmap.yaml",
            "apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: shop-config\n  namespace: prod\n  labels: {app.kubernetes.io/instance: shop}\ndata: {mode: \"on\", perms: \"0644\"}\n",
        ),
        helm4_doc(
            "shop/templates/db.yaml",
            "apiVersion: tfops.dev/v1alpha1\nkind: TerraformModule\nmetadata: {name: orders-db}\nspec:\n  source: {oci: {url: oci://registry.example/tf/postgres, tag: \"1.4.2\"}}\n  vars: {tier: db-f1-micro}\n  dependsOn: [network]\n",
        ),
        helm4_doc(
            "shop/templates/network.yaml",
            "apiVersion: tfops.dev/v1alpha1\nkind: TerraformModule\nmetadata: {name: network}\nspec:\n  source: {git: {url: https://git.example/net.git, ref: {branch: main}}}\n  uninstall: {policy: retain}\n",
        ),
        helm4_doc(
            "shop/templates/deploy.yaml",
            "apiVersion: apps/v1\nkind: Deployment\nmetadata: {name: shop, labels: {app.kubernetes.io/instance: shop}}\nspec: {replicas: 1}\n",
        ),
    ])
}

#[test]
fn helm3_stream_expands_in_place_and_warns_about_client_uninstall() {
    let input = fixture("helm3.yaml");
    let r = render(&input, &opts(None, Some("prod"))).unwrap();
    assert_eq!(r.helm_flavor, HelmFlavor::Helm3);
    assert!(!r.summary.guard_injected);
    assert_eq!(r.summary.modules_expanded, 2);
    assert_eq!(r.summary.crs_adopted, 1);
    assert_eq!(r.summary.objects_added, 8);
    assert_eq!(r.summary.release.as_deref(), Some("shop"));
    // The adopted raw CR has no enableInventory: its ledger entries would list no resources.
    assert_eq!(r.warnings.len(), 2, "{:?}", r.warnings);
    assert!(r.warnings[0].contains("\"legacy\": spec.enableInventory is not true"));
    assert!(r.warnings[1].contains("helm tfops uninstall shop"));
    let out = docs(&r.output);
    assert_eq!(
        kinds_names(&out),
        [
            ("ConfigMap", "shop-config"),
            ("OCIRepository", "shop-orders-db"),
            ("ServiceAccount", "shop-orders-db-tf-runner"),
            ("RoleBinding", "shop-orders-db-tf-runner"),
            ("Terraform", "shop-orders-db"),
            ("GitRepository", "shop-network"),
            ("ServiceAccount", "shop-network-tf-runner"),
            ("RoleBinding", "shop-network-tf-runner"),
            ("Terraform", "shop-network"),
            ("Terraform", "legacy"),
        ]
        .map(|(k, n)| (k.to_string(), n.to_string()))
    );
    assert!(!out.iter().any(|d| d["kind"] == "Job"), "no hook on Helm 3");
    // The untouched first document is byte-identical, including "on" / 0644 spelling.
    let first_end = input.windows(5).position(|w| w == b"\n---\n").unwrap() + 1;
    assert_eq!(&r.output[..first_end], &input[..first_end]);
    // Generated docs keep a `# Source:` comment of their declaration.
    let text = String::from_utf8(r.output.clone()).unwrap();
    assert_eq!(
        text.matches("# Source: shop/templates/db.yaml\n").count(),
        4
    );
    let tf = find(&out, "Terraform", "shop-orders-db");
    assert_eq!(tf["metadata"]["annotations"]["tfops.dev/guard"], "client");
    assert_eq!(
        tf["metadata"]["annotations"]["tfops.dev/on-failure"],
        "block"
    );
    assert_eq!(tf["metadata"]["annotations"]["tfops.dev/retries"], "5");
    assert_eq!(tf["metadata"]["annotations"]["tfops.dev/timeout"], "15m");
    assert_eq!(tf["spec"]["approvePlan"], "");
    assert_eq!(tf["spec"]["dependsOn"], json!([{"name": "shop-network"}]));
    assert_eq!(
        tf["spec"]["vars"],
        json!([{"name": "tier", "value": "db-f1-micro"}, {"name": "replicas", "value": 2}])
    );
    assert_eq!(
        tf["spec"]["runnerPodTemplate"]["spec"]["tolerations"][0]["key"],
        "dedicated"
    );
    let legacy = find(&out, "Terraform", "legacy");
    assert_eq!(
        legacy["metadata"]["annotations"]["tfops.dev/on-failure"],
        "force"
    );
    assert_eq!(legacy["spec"]["sourceRef"]["name"], "legacy-src");
}

#[test]
fn every_generated_object_carries_labels_and_a_correct_spec_hash() {
    for (input, o) in [
        (fixture("helm3.yaml"), opts(None, Some("prod"))),
        (helm4_input(), opts(None, None)),
    ] {
        let r = render(&input, &o).unwrap();
        for d in docs(&r.output) {
            if d["kind"] == "ConfigMap" || d["kind"] == "Deployment" {
                continue;
            }
            assert_eq!(d["metadata"]["labels"]["tfops.dev/release"], "shop", "{d}");
            let sha = d["metadata"]["annotations"]["tfops.dev/spec-sha256"]
                .as_str()
                .unwrap();
            assert_eq!(sha, tfops_render::hash::spec_sha256(&d), "{d}");
            if d["kind"] != "Job" && d["metadata"]["labels"]["tfops.dev/component"] != "guard" {
                assert!(
                    d["metadata"]["labels"]["tfops.dev/module"].is_string(),
                    "{d}"
                );
            }
        }
    }
}

#[test]
fn helm4_stream_gets_the_guard_and_filename_annotations() {
    let input = helm4_input();
    let r = render(&input, &opts(None, None)).unwrap();
    assert_eq!(r.helm_flavor, HelmFlavor::Helm4);
    assert!(r.summary.guard_injected);
    assert!(r.warnings.is_empty(), "{:?}", r.warnings);
    assert_eq!(
        r.summary.namespace.as_deref(),
        Some("prod"),
        "namespace from the chart's documents"
    );
    let out = docs(&r.output);
    let kn = kinds_names(&out);
    assert_eq!(kn.len(), 4 - 2 + 8 + 4);
    // Guard objects appended at the end.
    assert_eq!(
        kn[kn.len() - 4..]
            .iter()
            .map(|(k, _)| k.as_str())
            .collect::<Vec<_>>(),
        ["ServiceAccount", "Role", "RoleBinding", "Job"]
    );
    let job = find(&out, "Job", "shop-tfops-guard");
    assert_eq!(job["metadata"]["annotations"]["helm.sh/hook"], "pre-delete");
    assert_eq!(
        job["metadata"]["annotations"][FILE_ANN],
        "shop/templates/tfops-guard.yaml"
    );
    assert_eq!(
        job["spec"]["template"]["spec"]["containers"][0]["args"][3],
        "prod"
    );
    // Generated objects are filed under their declaration's template file.
    for (kind, name, file) in [
        ("OCIRepository", "shop-orders-db", "shop/templates/db.yaml"),
        ("Terraform", "shop-orders-db", "shop/templates/db.yaml"),
        (
            "RoleBinding",
            "shop-network-tf-runner",
            "shop/templates/network.yaml",
        ),
    ] {
        assert_eq!(
            find(&out, kind, name)["metadata"]["annotations"][FILE_ANN],
            file
        );
    }
    let net = find(&out, "Terraform", "shop-network");
    assert_eq!(net["spec"]["destroyResourcesOnDeletion"], false);
    assert_eq!(
        net["metadata"]["annotations"]["tfops.dev/uninstall-policy"],
        "retain"
    );
    assert_eq!(net["metadata"]["annotations"]["tfops.dev/guard"], "hook");
    assert_eq!(
        net["spec"]["sourceRef"],
        json!({"kind": "GitRepository", "name": "shop-network"})
    );
    // Untouched documents are byte-identical (first and last).
    let segs = tfops_render::split::split(&input);
    let first = &input[segs[0].span.clone()];
    assert!(r.output.starts_with(first));
    let last = &input[segs[3].span.clone()];
    assert!(r.output.windows(last.len()).any(|w| w == last));
}

#[test]
fn output_is_deterministic() {
    for input in [fixture("helm3.yaml"), helm4_input()] {
        let a = render(&input, &opts(None, Some("prod"))).unwrap();
        for _ in 0..5 {
            let b = render(&input, &opts(None, Some("prod"))).unwrap();
            assert_eq!(a.output, b.output);
            assert_eq!(a.warnings, b.warnings);
        }
    }
}

#[test]
fn stream_without_terraform_content_is_identical_and_adds_nothing() {
    let input = b"---\n# Source: c/templates/a.yaml\napiVersion: v1\nkind: ConfigMap\nmetadata: {name: a}\ndata: {x: yes}\n...\nweird: document\n";
    let r = render(input, &opts(None, None)).unwrap();
    assert_eq!(r.output, input);
    assert!(r.warnings.is_empty());
    assert!(!r.summary.guard_injected);
    let helm4 = helm4_stream(&[helm4_doc(
        "c/templates/a.yaml",
        "apiVersion: v1\nkind: ConfigMap\nmetadata: {name: a}\n",
    )]);
    let r = render(&helm4, &opts(None, None)).unwrap();
    assert_eq!(r.output, helm4);
    assert_eq!(r.helm_flavor, HelmFlavor::Helm4);
    assert!(!r.summary.guard_injected);
    // A document that merely mentions our API group is parsed but left alone.
    let mention = b"apiVersion: v1\nkind: ConfigMap\nmetadata: {name: a}\ndata: {doc: \"see tfops.dev/v1alpha1 and infra.contrib.fluxcd.io\"}\n";
    assert_eq!(render(mention, &opts(None, None)).unwrap().output, mention);
    // Comment-only documents mentioning them parse to nothing and pass through.
    let comments = b"# about tfops.dev/v1alpha1\n---\napiVersion: v1\nkind: ConfigMap\nmetadata: {name: a}\n---\n# infra.contrib.fluxcd.io\n";
    assert_eq!(
        render(comments, &opts(None, None)).unwrap().output,
        comments
    );
}

#[test]
fn release_option_wins_and_names_use_it() {
    let r = render(&fixture("helm3.yaml"), &opts(Some("other"), Some("prod"))).unwrap();
    let out = docs(&r.output);
    find(&out, "Terraform", "other-orders-db");
    assert_eq!(r.summary.release.as_deref(), Some("other"));
}

#[test]
fn first_document_without_marker_and_end_markers_are_kept_well_formed() {
    let input = b"apiVersion: tfops.dev/v1alpha1\nkind: TerraformModule\nmetadata: {name: a}\nspec: {source: {sourceRef: {kind: Bucket, name: b}}}\n...\nbare: next\n---\nlast: doc\n";
    let r = render(input, &opts(Some("rel"), Some("ns"))).unwrap();
    let text = String::from_utf8(r.output.clone()).unwrap();
    assert!(
        text.starts_with("apiVersion: v1\nkind: ServiceAccount\n"),
        "{text}"
    );
    assert!(
        text.ends_with("...\nbare: next\n---\nlast: doc\n"),
        "{text}"
    );
    let out = docs(&r.output);
    assert_eq!(out.len(), 3 + 2);
    let tf = find(&out, "Terraform", "rel-a");
    assert_eq!(
        tf["spec"]["sourceRef"],
        json!({"kind": "Bucket", "name": "b", "apiVersion": "source.toolkit.fluxcd.io/v1"})
    );
    assert!(!out
        .iter()
        .any(|d| d["kind"] == "OCIRepository" || d["kind"] == "GitRepository"));
}

#[test]
fn catalog_config_shapes_the_generated_objects() {
    let cfg =
        tfops_render::CatalogConfig::from_yaml(&fixture("catalog.yaml"), "catalog.yaml").unwrap();
    let mut o = opts(None, Some("prod"));
    o.config = cfg;
    let r = render(&fixture("helm3.yaml"), &o).unwrap();
    let out = docs(&r.output);
    // naming pattern, runner not created (catalog provides it), backend templated, overlays.
    let tf = find(&out, "Terraform", "tf-shop-network");
    assert_eq!(tf["spec"]["serviceAccountName"], "platform-tf-runner");
    assert_eq!(tf["spec"]["backendConfig"]["secretSuffix"], "shop-network");
    assert_eq!(tf["spec"]["backendConfig"]["labels"]["team"], "shop");
    assert_eq!(tf["spec"]["interval"], "30m");
    assert_eq!(tf["spec"]["approvePlan"], "disable");
    assert_eq!(
        tf["metadata"]["annotations"]["tfops.dev/on-failure"],
        "block"
    );
    assert_eq!(tf["metadata"]["annotations"]["tfops.dev/timeout"], "20m");
    assert_eq!(
        tf["spec"]["runnerPodTemplate"]["metadata"]["annotations"]
            ["iam.gke.io/gcp-service-account"],
        "shop-network@proj.iam.gserviceaccount.com"
    );
    assert!(
        !out.iter().any(|d| d["kind"] == "ServiceAccount"),
        "runner SA provided by the catalog"
    );
    // The module's own `terraform` overrides win over overlays (merged last).
    let db = find(&out, "Terraform", "tf-shop-orders-db");
    assert_eq!(
        db["spec"]["runnerPodTemplate"]["spec"]["tolerations"],
        json!([{"key": "dedicated", "operator": "Exists"}])
    );
    assert_eq!(db["spec"]["interval"], "5m");
    assert_eq!(db["metadata"]["annotations"]["tfops.dev/retries"], "5");
    let src = find(&out, "OCIRepository", "src-shop-orders-db");
    assert_eq!(src["spec"]["provider"], "gcp");
}

#[test]
fn a_declared_uninstall_timeout_longer_than_the_guard_budget_warns() {
    // The fixture's orders-db module declares `uninstall: {timeout: 10m}`.
    let base = String::from_utf8(fixture("helm4-orders-app.yaml")).unwrap();
    assert!(base.contains("timeout: 10m"));
    let with = |t: &str| base.replace("timeout: 10m", &format!("timeout: {t}"));
    let r = render(with("20m").as_bytes(), &opts(None, Some("prod"))).unwrap();
    let warned: Vec<_> = r
        .warnings
        .iter()
        .filter(|w| w.contains("longer than the guard budget"))
        .collect();
    assert_eq!(warned.len(), 1, "{:?}", r.warnings);
    assert!(
        warned[0].contains("(20m)") && warned[0].contains("guard.budget to at least 20m"),
        "{}",
        warned[0]
    );
    // Within the budget: nothing to say.
    let r = render(with("3m").as_bytes(), &opts(None, Some("prod"))).unwrap();
    assert!(
        !r.warnings.iter().any(|w| w.contains("guard budget")),
        "{:?}",
        r.warnings
    );
}

#[test]
fn guard_uses_catalog_image_budget_and_rules() {
    let cfg =
        tfops_render::CatalogConfig::from_yaml(&fixture("catalog.yaml"), "catalog.yaml").unwrap();
    let mut o = opts(None, None);
    o.config = cfg;
    let r = render(&helm4_input(), &o).unwrap();
    let out = docs(&r.output);
    let job = find(&out, "Job", "shop-tfops-guard");
    let c = &job["spec"]["template"]["spec"]["containers"][0];
    assert_eq!(c["image"], "registry.example/platform/tfops:1.2.3");
    assert_eq!(
        c["args"],
        json!([
            "--release",
            "shop",
            "--namespace",
            "prod",
            "--budget",
            "180s",
            "--ledger-namespace",
            "tfops-ledger",
            "--controller-namespace="
        ])
    );
    assert_eq!(job["spec"]["activeDeadlineSeconds"], 210);
    let rules: serde_json::Value =
        serde_json::from_str(c["env"][0]["value"].as_str().unwrap()).unwrap();
    assert_eq!(rules[0]["class"], "transient");
    assert_eq!(
        job["spec"]["template"]["spec"]["tolerations"][0]["key"],
        "platform"
    );
    let ledger_role = out
        .iter()
        .find(|d| d["kind"] == "Role" && d["metadata"]["namespace"] == "tfops-ledger");
    assert!(ledger_role.is_some());
}

#[test]
fn long_names_are_shortened_deterministically() {
    let release = "a-very-long-release-name-that-is-allowed-by-helm-x";
    let input = "apiVersion: tfops.dev/v1alpha1\nkind: TerraformModule\nmetadata: {name: an-equally-long-module-name-for-the-database}\nspec: {source: {oci: {url: oci://r/x, digest: \"sha256:abc\"}}}\n";
    let r = render(input.as_bytes(), &opts(Some(release), Some("ns"))).unwrap();
    let out = docs(&r.output);
    for d in &out {
        let n = d["metadata"]["name"].as_str().unwrap();
        assert!(n.len() <= 63, "{n}");
        assert!(n.starts_with("a-very-long"), "{n}");
    }
    let r2 = render(input.as_bytes(), &opts(Some(release), Some("ns"))).unwrap();
    assert_eq!(r.output, r2.output);
}

/// Input captured from real Helm 4.1.4 (`helm template shop charts-example/orders-app -n prod
/// --post-renderer <tee plugin>`): no leading marker, quoted filename annotations, and no
/// HELM_NAMESPACE given to the post-renderer.
#[test]
fn real_helm4_input() {
    let input = fixture("helm4-orders-app.yaml");
    let r = render(&input, &opts(None, None)).unwrap();
    assert_eq!(r.helm_flavor, HelmFlavor::Helm4);
    assert_eq!(r.summary.release.as_deref(), Some("shop"));
    assert_eq!(r.summary.modules_expanded, 1);
    assert!(r.summary.guard_injected);
    let out = docs(&r.output);
    let tf = find(&out, "Terraform", "shop-orders-db");
    assert_eq!(
        tf["metadata"]["annotations"][FILE_ANN],
        "orders-app/templates/database.yaml"
    );
    assert_eq!(
        tf["metadata"]["labels"]["app.kubernetes.io/instance"], "shop",
        "declaration labels copied"
    );
    assert_eq!(
        tf["spec"]["writeOutputsToSecret"]["name"],
        "shop-db-outputs"
    );
    let job = find(&out, "Job", "shop-tfops-guard");
    assert_eq!(
        job["metadata"]["annotations"][FILE_ANN],
        "orders-app/templates/tfops-guard.yaml"
    );
    // Namespace unknown at render time: the guard reads its own pod namespace.
    assert_eq!(
        job["spec"]["template"]["spec"]["containers"][0]["args"][3],
        "$(TFOPS_POD_NAMESPACE)"
    );
    assert!(
        r.warnings.iter().any(|w| w.contains("namespace unknown")),
        "{:?}",
        r.warnings
    );
    // With the namespace given (HELM_NAMESPACE / --namespace) everything is namespaced. The
    // chart's module declares `uninstall.timeout: 10m`, longer than the 240s guard budget.
    let r = render(&input, &opts(None, Some("prod"))).unwrap();
    assert_eq!(r.warnings.len(), 1, "{:?}", r.warnings);
    assert!(
        r.warnings[0].contains("shop-orders-db (10m)"),
        "{:?}",
        r.warnings
    );
    for d in docs(&r.output) {
        if d["metadata"]["labels"]["tfops.dev/release"] == "shop" {
            assert_eq!(d["metadata"]["namespace"], "prod", "{d}");
        }
    }
    // The first document (the declaration) had no marker; every other chart document is kept.
    let segs = tfops_render::split::split(&input);
    for s in &segs[1..] {
        let bytes = &input[s.span.clone()];
        if !bytes.windows(15).any(|w| w == b"TerraformModule") {
            assert!(r.output.windows(bytes.len()).any(|w| w == bytes));
        }
    }
}

/// Strings that YAML 1.1 readers (Kubernetes' Go YAML) would turn into booleans, numbers or
/// null must come out quoted in what we serialise.
#[test]
fn ambiguous_strings_are_quoted_in_generated_yaml() {
    let input = "apiVersion: tfops.dev/v1alpha1\nkind: TerraformModule\nmetadata: {name: db}\nspec:\n  source: {oci: {url: oci://r/x, tag: \"1.0\"}}\n  vars: {a: \"on\", b: \"0644\", c: \"yes\", d: \"1e3\", e: \"null\", f: \"~\", g: \"off\", h: \"y\", i: \"N\", j: \"0x1F\", k: \"12:30\", l: \"\"}\n";
    let r = render(input.as_bytes(), &opts(Some("rel"), Some("ns"))).unwrap();
    let text = String::from_utf8(r.output).unwrap();
    for v in [
        "on", "0644", "yes", "1e3", "null", "~", "off", "y", "N", "0x1F", "12:30",
    ] {
        let quoted_d = format!("value: \"{v}\"");
        let quoted_s = format!("value: '{v}'");
        assert!(
            text.contains(&quoted_d) || text.contains(&quoted_s),
            "{v} not quoted:\n{text}"
        );
    }
    assert!(
        text.contains("tag: \"1.0\"") || text.contains("tag: '1.0'"),
        "{text}"
    );
}

#[test]
fn a_module_may_depend_on_an_adopted_terraform_cr() {
    let input = "---\n# Source: c/templates/legacy.yaml\napiVersion: infra.contrib.fluxcd.io/v1alpha2\nkind: Terraform\nmetadata: {name: legacy-net}\nspec: {interval: 1h, path: ./, sourceRef: {kind: GitRepository, name: g}}\n---\n# Source: c/templates/db.yaml\napiVersion: tfops.dev/v1alpha1\nkind: TerraformModule\nmetadata: {name: db}\nspec:\n  source: {oci: {url: oci://r/x, tag: \"1\"}}\n  dependsOn: [legacy-net]\n";
    let r = render(input.as_bytes(), &opts(Some("shop"), Some("prod"))).unwrap();
    let out = docs(&r.output);
    assert_eq!(
        find(&out, "Terraform", "shop-db")["spec"]["dependsOn"],
        json!([{"name": "legacy-net"}])
    );
    // And a cycle through it is caught.
    let cyclic = input.replace(
        "sourceRef: {kind: GitRepository, name: g}}",
        "sourceRef: {kind: GitRepository, name: g}, dependsOn: [{name: shop-db}]}",
    );
    let e = render(cyclic.as_bytes(), &opts(Some("shop"), Some("prod"))).unwrap_err();
    assert_eq!(e.kind(), tfops_render::ErrorKind::Dependency);
    assert_eq!(e.source_file(), Some("c/templates/db.yaml"));
    assert!(e.to_string().contains("cycle"), "{e}");
}
