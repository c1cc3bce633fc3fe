//! Bad-input matrix: every case fails with an error naming the chart file, the document and
//! the field; `render` returns `Err`, so nothing partial can reach stdout.

use crate::common;

use common::opts;
use tfops_render::{render, CatalogConfig, ErrorKind, Limits, RenderError, RenderOptions};

const FILE: &str = "charts-example/templates/db.yaml";

fn module_doc(name: &str, spec: &str) -> String {
    format!("---\n# Source: {FILE}\napiVersion: tfops.dev/v1alpha1\nkind: TerraformModule\nmetadata:\n  name: {name}\nspec:\n{spec}")
}

const OCI: &str = "  source:\n    oci: {url: oci://registry.example/tf/postgres, tag: \"1.4.2\"}\n";

fn fail(input: &str) -> RenderError {
    fail_with(input, &opts(Some("shop"), Some("prod")))
}

fn fail_with(input: &str, o: &RenderOptions) -> RenderError {
    match render(input.as_bytes(), o) {
        Ok(r) => panic!(
            "accepted:\n{input}\n-- output:\n{}",
            String::from_utf8_lossy(&r.output)
        ),
        Err(e) => e,
    }
}

fn assert_err(e: &RenderError, kind: ErrorKind, field: Option<&str>, needle: &str) {
    assert_eq!(e.kind(), kind, "{e}");
    assert_eq!(e.field(), field, "{e}");
    assert!(
        e.to_string().contains(needle),
        "{e:?} does not mention {needle:?}"
    );
}

#[test]
fn two_sources_message_reads_as_documented() {
    let e = fail(&module_doc(
        "orders-db",
        "  source:\n    oci: {url: oci://r/x, tag: \"1\"}\n    git: {url: https://g/x, ref: {branch: main}}\n",
    ));
    assert_eq!(
        e.to_string(),
        "charts-example/templates/db.yaml: TerraformModule \"orders-db\": spec.source: exactly one of oci, git, sourceRef"
    );
    assert_eq!(e.source_file(), Some(FILE));
    assert_eq!(e.field(), Some("spec.source"));
    assert_eq!(e.document(), Some("TerraformModule \"orders-db\""));
}

#[test]
fn no_source_at_all() {
    let e = fail(&module_doc("db", "  source: {}\n"));
    assert_err(&e, ErrorKind::Intent, Some("spec.source"), "exactly one of");
}

#[test]
fn unknown_fields_name_their_path() {
    let e = fail(&module_doc("db", &format!("{OCI}  sourc: x\n")));
    assert_err(
        &e,
        ErrorKind::Intent,
        Some("spec.sourc"),
        "unknown field `sourc`",
    );
    let e = fail(&module_doc(
        "db",
        "  source:\n    oci: {url: oci://r/x, tag: \"1\", tga: x}\n",
    ));
    assert_err(
        &e,
        ErrorKind::Intent,
        Some("spec.source.oci.tga"),
        "unknown field `tga`",
    );
    let e = fail(&module_doc(
        "db",
        &format!("{OCI}  uninstall: {{policy: destroy, onFailur: block}}\n"),
    ));
    assert_err(
        &e,
        ErrorKind::Intent,
        Some("spec.uninstall.onFailur"),
        "onFailur",
    );
    assert_eq!(e.source_file(), Some(FILE));
}

#[test]
fn missing_fields_name_their_path() {
    let e = fail(&module_doc("db", "  path: ./\n"));
    assert_err(
        &e,
        ErrorKind::Intent,
        Some("spec"),
        "missing field `source`",
    );
    let e = fail(&module_doc(
        "db",
        "  source:\n    git: {url: https://g/x}\n",
    ));
    assert_err(
        &e,
        ErrorKind::Intent,
        Some("spec.source.git"),
        "missing field `ref`",
    );
    let e = fail("---\n# Source: c/t.yaml\napiVersion: tfops.dev/v1alpha1\nkind: TerraformModule\nmetadata: {}\nspec: {}\n");
    assert_err(
        &e,
        ErrorKind::Intent,
        Some("metadata"),
        "missing field `name`",
    );
}

#[test]
fn bad_enum_and_duration_values() {
    for (spec, field, needle) in [
        (
            "  approvePlan: sometimes\n",
            "spec.approvePlan",
            "sometimes",
        ),
        (
            "  uninstall: {policy: delete}\n",
            "spec.uninstall.policy",
            "delete",
        ),
        (
            "  uninstall: {onFailure: retry}\n",
            "spec.uninstall.onFailure",
            "retry",
        ),
        (
            "  uninstall: {retries: -1}\n",
            "spec.uninstall.retries",
            "-1",
        ),
        (
            "  interval: 10 minutes\n",
            "spec.interval",
            "invalid duration",
        ),
        (
            "  uninstall: {timeout: 1d}\n",
            "spec.uninstall.timeout",
            "invalid duration",
        ),
    ] {
        let e = fail(&module_doc("db", &format!("{OCI}{spec}")));
        assert_err(&e, ErrorKind::Intent, Some(field), needle);
    }
    let e = fail(&module_doc(
        "db",
        "  source:\n    oci: {url: oci://r/x, tag: \"1\", provider: ibm}\n",
    ));
    assert_err(
        &e,
        ErrorKind::Intent,
        Some("spec.source.oci.provider"),
        "ibm",
    );
    let e = fail(&module_doc(
        "db",
        "  source:\n    sourceRef: {kind: HelmRepository, name: x}\n",
    ));
    assert_err(
        &e,
        ErrorKind::Intent,
        Some("spec.source.sourceRef.kind"),
        "HelmRepository",
    );
}

#[test]
fn source_sub_rules() {
    let e = fail(&module_doc("db", "  source:\n    oci: {url: oci://r/x}\n"));
    assert_err(
        &e,
        ErrorKind::Intent,
        Some("spec.source.oci"),
        "exactly one of tag, digest",
    );
    let e = fail(&module_doc(
        "db",
        "  source:\n    oci: {url: https://r/x, tag: \"1\"}\n",
    ));
    assert_err(&e, ErrorKind::Intent, Some("spec.source.oci.url"), "oci://");
    let e = fail(&module_doc(
        "db",
        "  source:\n    git: {url: https://g/x, ref: {branch: main, tag: v1}}\n",
    ));
    assert_err(
        &e,
        ErrorKind::Intent,
        Some("spec.source.git.ref"),
        "exactly one of tag, branch, commit, semver",
    );
}

#[test]
fn dependency_errors() {
    let e = fail(&module_doc("db", &format!("{OCI}  dependsOn: [network]\n")));
    assert_err(
        &e,
        ErrorKind::Dependency,
        Some("spec.dependsOn[0]"),
        "unknown module \"network\"",
    );
    let e = fail(&module_doc("db", &format!("{OCI}  dependsOn: [db]\n")));
    assert_err(
        &e,
        ErrorKind::Dependency,
        Some("spec.dependsOn[0]"),
        "itself",
    );
    let input = [
        module_doc("a", &format!("{OCI}  dependsOn: [b]\n")),
        module_doc("b", &format!("{OCI}  dependsOn: [c]\n")),
        module_doc("c", &format!("{OCI}  dependsOn: [a]\n")),
    ]
    .concat();
    let e = fail(&input);
    assert_err(
        &e,
        ErrorKind::Dependency,
        Some("spec.dependsOn[0]"),
        "cycle",
    );
    assert!(
        e.to_string().contains("a -> b -> c -> a") || e.to_string().contains("c -> a -> b -> c"),
        "{e}"
    );
}

#[test]
fn duplicate_modules_and_colliding_objects() {
    let e = fail(&[module_doc("db", OCI), module_doc("db", OCI)].concat());
    assert_err(
        &e,
        ErrorKind::Duplicate,
        Some("metadata.name"),
        "declared twice",
    );
    // An adopted CR with the name a module's CR would get.
    let cr = "---\n# Source: c/templates/cr.yaml\napiVersion: infra.contrib.fluxcd.io/v1alpha2\nkind: Terraform\nmetadata: {name: shop-db}\nspec: {interval: 1m, sourceRef: {kind: GitRepository, name: x}}\n";
    let e = fail(&[module_doc("db", OCI), cr.to_string()].concat());
    assert_eq!(e.kind(), ErrorKind::Duplicate, "{e}");
    assert!(e.to_string().contains("Terraform \"shop-db\""), "{e}");
}

#[test]
fn invalid_names() {
    let e = fail(&module_doc("Orders_DB", OCI));
    assert_err(&e, ErrorKind::Name, Some("metadata.name"), "DNS-1123");
    let e = fail(&module_doc(
        "db",
        &format!("{OCI}  outputs: {{secret: Bad_Secret}}\n"),
    ));
    assert_err(
        &e,
        ErrorKind::Name,
        Some("spec.outputs.secret"),
        "Bad_Secret",
    );
    let mut o = opts(Some("shop"), Some("prod"));
    o.config =
        CatalogConfig::from_yaml(b"naming: {terraform: \"TF-{{release}}\"}\n", "cat.yaml").unwrap();
    let e = fail_with(&module_doc("db", OCI), &o);
    assert_err(
        &e,
        ErrorKind::Name,
        Some("config: naming.terraform"),
        "TF-shop",
    );
    let e = fail_with(&module_doc("db", OCI), &opts(Some("Shop!"), None));
    assert_eq!(e.kind(), ErrorKind::Release);
}

#[test]
fn template_errors_name_the_config_field() {
    let mut o = opts(Some("shop"), None);
    // `chart` is unknown for a stream without source file information: strict mode errors.
    o.config =
        CatalogConfig::from_yaml(b"naming: {source: \"{{chart}}-{{module}}\"}\n", "cat.yaml")
            .unwrap();
    let e = fail_with(
        "apiVersion: tfops.dev/v1alpha1\nkind: TerraformModule\nmetadata: {name: db}\nspec:\n  source: {oci: {url: oci://r/x, tag: \"1\"}}\n",
        &o,
    );
    assert_err(
        &e,
        ErrorKind::Template,
        Some("config: naming.source"),
        "chart",
    );
}

#[test]
fn malformed_yaml_in_a_terraform_document() {
    let e = fail(&format!("---\n# Source: {FILE}\napiVersion: tfops.dev/v1alpha1\nkind: TerraformModule\nmetadata: {{name: db\nspec: [\n"));
    assert_eq!(e.kind(), ErrorKind::Yaml, "{e}");
    assert_eq!(e.source_file(), Some(FILE));
    assert!(
        e.to_string()
            .contains("document starting at line 1 of the stream"),
        "{e}"
    );
    assert!(!e.to_string().contains('\n'), "one line: {e}");
    let e = fail("---\n# Source: c/templates/cr.yaml\napiVersion: infra.contrib.fluxcd.io/v1alpha2\nkind: Terraform\nmetadata:\n  name: a\n   bad: indent\n");
    assert_eq!(e.kind(), ErrorKind::Yaml, "{e}");
    assert_eq!(e.source_file(), Some("c/templates/cr.yaml"));
    assert_eq!(e.document(), Some("Terraform \"a\""));
    // Duplicate keys are an error too.
    let e = fail(&module_doc("db", &format!("{OCI}  path: a\n  path: b\n")));
    assert_eq!(e.kind(), ErrorKind::Yaml, "{e}");
}

#[test]
fn alias_bomb_is_bounded() {
    let mut bomb = String::from("---\n# Source: c/templates/bomb.yaml\napiVersion: tfops.dev/v1alpha1\nkind: TerraformModule\nmetadata: {name: db}\nspec:\n  source: {oci: {url: oci://r/x, tag: \"1\"}}\n  vars:\n    a0: &a0 [lol, lol, lol, lol, lol, lol, lol, lol, lol, lol]\n");
    for i in 1..10 {
        let p = i - 1;
        bomb.push_str(&format!("    a{i}: &a{i} [*a{p}, *a{p}, *a{p}, *a{p}, *a{p}, *a{p}, *a{p}, *a{p}, *a{p}, *a{p}]\n"));
    }
    let e = fail(&bomb);
    assert_eq!(e.kind(), ErrorKind::Yaml, "{e}");
    assert_eq!(e.source_file(), Some("c/templates/bomb.yaml"));
}

#[test]
fn deep_nesting_is_bounded() {
    let deep = format!("{}{}", "[".repeat(500), "]".repeat(500));
    let e = fail(&module_doc("db", &format!("{OCI}  vars: {{x: {deep}}}\n")));
    assert_eq!(e.kind(), ErrorKind::Yaml, "{e}");
}

#[test]
fn oversize_input() {
    let mut o = opts(Some("shop"), None);
    o.limits = Limits {
        max_input_bytes: 100,
        ..Limits::default()
    };
    let e = fail_with(&"a: 1\n".repeat(30), &o);
    assert_eq!(e.kind(), ErrorKind::Oversize);
    assert!(e.to_string().contains("150 bytes"), "{e}");
}

#[test]
fn non_utf8_input() {
    let mut input =
        b"---\n# Source: c/templates/a.yaml\napiVersion: v1\nkind: ConfigMap\ndata: {x: \""
            .to_vec();
    input.extend_from_slice(&[0xff, 0xfe]);
    input.extend_from_slice(b"\"}\n");
    let e = render(&input, &opts(None, None)).unwrap_err();
    assert_eq!(e.kind(), ErrorKind::Encoding);
    assert_eq!(e.source_file(), Some("c/templates/a.yaml"));
    assert!(e.to_string().contains("line 5"), "{e}");
}

#[test]
fn unknown_kind_in_our_api_group() {
    let e = fail("---\n# Source: c/t.yaml\napiVersion: tfops.dev/v1alpha1\nkind: TerraformModul\nmetadata: {name: x}\n");
    assert_err(&e, ErrorKind::Intent, Some("kind"), "TerraformModul");
    let e = fail("---\n# Source: c/t.yaml\napiVersion: tfops.dev/v1beta1\nkind: TerraformModule\nmetadata: {name: x}\n");
    assert_eq!(e.kind(), ErrorKind::Intent);
}

#[test]
fn release_name_undeterminable_or_ambiguous() {
    let e = fail_with(&module_doc("db", OCI), &opts(None, None));
    assert_eq!(e.kind(), ErrorKind::Release);
    assert!(e.to_string().contains("--release"), "{e}");
    let labelled = |r: &str| {
        format!("---\napiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: {r}\n  labels:\n    app.kubernetes.io/instance: {r}\n")
    };
    let e = fail_with(
        &[labelled("one"), labelled("two"), module_doc("db", OCI)].concat(),
        &opts(None, None),
    );
    assert_eq!(e.kind(), ErrorKind::Release);
    assert!(e.to_string().contains("one, two"), "{e}");
}

#[test]
fn conflicting_namespaces() {
    let a = module_doc("a", OCI).replace("  name: a\n", "  name: a\n  namespace: one\n");
    let b = module_doc("b", OCI).replace("  name: b\n", "  name: b\n  namespace: two\n");
    let e = fail(&[a, b].concat());
    assert_eq!(e.field(), Some("metadata.namespace"), "{e}");
}

#[test]
fn adopted_cr_with_bad_annotation() {
    let e = fail("---\n# Source: c/templates/cr.yaml\napiVersion: infra.contrib.fluxcd.io/v1alpha2\nkind: Terraform\nmetadata:\n  name: legacy\n  annotations: {tfops.dev/retries: many}\nspec: {interval: 1m, sourceRef: {kind: GitRepository, name: x}}\n");
    assert_err(
        &e,
        ErrorKind::Adoption,
        Some("metadata.annotations[tfops.dev/retries]"),
        "many",
    );
    assert_eq!(e.source_file(), Some("c/templates/cr.yaml"));
    assert_eq!(e.document(), Some("Terraform \"legacy\""));
}

#[test]
fn bad_catalog_configs() {
    for (yaml, field, needle) in [
        (
            "defaults: {intervall: 1m}\n",
            Some("defaults.intervall"),
            "intervall",
        ),
        ("guard: {budget: 0s}\n", Some("guard.budget"), "at least 1s"),
        (
            "guard: {budget: soon}\n",
            Some("guard.budget"),
            "invalid duration",
        ),
        (
            "naming: {terraform: \"{{#if}}\"}\n",
            Some("naming.terraform"),
            "invalid template",
        ),
        (
            "overlays: [{target: {kind: Terraform}, mergePatch: [1]}]\n",
            Some("overlays[0].mergePatch"),
            "mapping",
        ),
        (
            "guard: {classifierRules: [{pattern: x, class: fatal}]}\n",
            Some("guard.classifierRules[0].class"),
            "fatal",
        ),
        (
            "runner: {serviceAccount: {create: maybe}}\n",
            Some("runner.serviceAccount.create"),
            "maybe",
        ),
        (
            "guard: {classifierRules: [{pattern: \"quota (exceeded\", class: transient}]}\n",
            Some("guard.classifierRules[0].pattern"),
            "invalid regular expression",
        ),
        ("[1, 2]\n", None, "must be a mapping"),
    ] {
        let e = CatalogConfig::from_yaml(yaml.as_bytes(), "catalog.yaml").unwrap_err();
        assert_eq!(e.field.as_deref(), field, "{yaml}: {e}");
        assert!(e.to_string().starts_with("catalog.yaml: "), "{e}");
        assert!(e.to_string().contains(needle), "{e}");
    }
    assert!(CatalogConfig::from_yaml(&[0xff], "c.yaml").is_err());
    assert_eq!(
        CatalogConfig::from_yaml(b"", "c.yaml").unwrap(),
        CatalogConfig::default()
    );
    assert_eq!(
        CatalogConfig::from_yaml(b"# only a comment\n", "c.yaml").unwrap(),
        CatalogConfig::default()
    );
}

#[test]
#[ignore = "prints the messages for a human to read: cargo test -p tfops-render --test bad_input -- --ignored --nocapture"]
fn show_messages() {
    let mut bomb = String::from("---\n# Source: c/templates/bomb.yaml\napiVersion: tfops.dev/v1alpha1\nkind: TerraformModule\nmetadata: {name: db}\nspec:\n  vars:\n    a0: &a0 [lol, lol, lol, lol, lol, lol, lol, lol, lol, lol]\n");
    for i in 1..10 {
        let p = i - 1;
        bomb.push_str(&format!("    a{i}: &a{i} [*a{p}, *a{p}, *a{p}, *a{p}, *a{p}, *a{p}, *a{p}, *a{p}, *a{p}, *a{p}]\n"));
    }
    for input in [
        bomb,
        format!("---\n# Source: {FILE}\napiVersion: tfops.dev/v1alpha1\nkind: TerraformModule\nmetadata: {{name: db\nspec: [\n"),
        module_doc("db", &format!("{OCI}  sourc: x\n")),
        module_doc("db", &format!("{OCI}  dependsOn: [network]\n")),
    ] {
        println!("{}\n", fail(&input));
    }
}

#[test]
fn alias_count_is_bounded_by_the_limit() {
    let refs = vec!["*a"; 50].join(", ");
    let doc = module_doc(
        "db",
        &format!("{OCI}  vars:\n    x: &a v\n    many: [{refs}]\n"),
    );
    // Under the default limit this parses (50 aliases).
    assert!(render(doc.as_bytes(), &opts(Some("shop"), Some("prod"))).is_ok());
    let mut o = opts(Some("shop"), Some("prod"));
    o.limits.max_aliases = 10;
    let e = fail_with(&doc, &o);
    assert_eq!(e.kind(), ErrorKind::Yaml, "{e}");
    assert!(e.to_string().to_lowercase().contains("alias"), "{e}");
}
