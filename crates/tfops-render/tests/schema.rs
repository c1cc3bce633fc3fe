//! Generated objects validate against the real upstream CRD schemas in `../shared/crds/`
//! (tofu-controller v0.16.5 Terraform v1alpha2, Flux source v1). Skips when absent.

use crate::common;

use common::{docs, fixture, opts};
use serde_json::Value;

fn schema(file: &str, version: &str) -> Option<Value> {
    let path = common::shared_dir().join("crds").join(file);
    let text = std::fs::read_to_string(&path).ok()?;
    let crd: Value = serde_saphyr::from_str(&text).unwrap();
    let v = crd["spec"]["versions"]
        .as_array()
        .unwrap()
        .iter()
        .find(|v| v["name"] == version)
        .unwrap_or_else(|| panic!("{file} has no version {version}"));
    assert_eq!(v["served"], true, "{file} {version} is not served");
    Some(v["schema"]["openAPIV3Schema"].clone())
}

struct Schemas(Vec<(&'static str, &'static str, jsonschema::Validator)>);

impl Schemas {
    fn load() -> Option<Schemas> {
        let mut out = Vec::new();
        for (api, kind, file, version) in [
            (
                "infra.contrib.fluxcd.io/v1alpha2",
                "Terraform",
                "infra.contrib.fluxcd.io_terraforms.yaml",
                "v1alpha2",
            ),
            (
                "source.toolkit.fluxcd.io/v1",
                "OCIRepository",
                "source.toolkit.fluxcd.io_ocirepositories.yaml",
                "v1",
            ),
            (
                "source.toolkit.fluxcd.io/v1",
                "GitRepository",
                "source.toolkit.fluxcd.io_gitrepositories.yaml",
                "v1",
            ),
            (
                "source.toolkit.fluxcd.io/v1",
                "Bucket",
                "source.toolkit.fluxcd.io_buckets.yaml",
                "v1",
            ),
        ] {
            let s = schema(file, version)?;
            out.push((api, kind, jsonschema::validator_for(&s).unwrap()));
        }
        Some(Schemas(out))
    }

    /// Validate every CRD-backed object of `output`; returns how many were checked.
    fn check_all(&self, output: &[u8]) -> usize {
        let mut n = 0;
        for d in docs(output) {
            for (api, kind, validator) in &self.0 {
                if d["apiVersion"] == *api && d["kind"] == *kind {
                    let errors: Vec<String> = validator
                        .iter_errors(&d)
                        .map(|e| format!("{} at {}", e, e.instance_path))
                        .collect();
                    assert!(
                        errors.is_empty(),
                        "{kind} {}: {errors:#?}\n{d:#}",
                        d["metadata"]["name"]
                    );
                    n += 1;
                }
            }
        }
        n
    }
}

macro_rules! schemas_or_skip {
    () => {
        match Schemas::load() {
            Some(s) => s,
            None => {
                eprintln!("SKIP: ../shared/crds absent");
                return;
            }
        }
    };
}

fn module(spec: &str) -> Vec<u8> {
    format!("---\n# Source: c/templates/m.yaml\napiVersion: tfops.dev/v1alpha1\nkind: TerraformModule\nmetadata: {{name: m}}\nspec:\n{spec}").into_bytes()
}

#[test]
fn fixture_objects_validate() {
    let s = schemas_or_skip!();
    let r = tfops_render::render(&fixture("helm3.yaml"), &opts(None, Some("prod"))).unwrap();
    // 2 Terraform + OCIRepository + GitRepository + adopted Terraform.
    assert_eq!(s.check_all(&r.output), 5);
}

#[test]
fn catalog_configured_objects_validate() {
    let s = schemas_or_skip!();
    let mut o = opts(None, Some("prod"));
    o.config =
        tfops_render::CatalogConfig::from_yaml(&fixture("catalog.yaml"), "catalog.yaml").unwrap();
    let r = tfops_render::render(&fixture("helm3.yaml"), &o).unwrap();
    assert_eq!(s.check_all(&r.output), 5);
}

#[test]
fn source_variants_validate() {
    let s = schemas_or_skip!();
    for spec in [
        "  source: {oci: {url: oci://r.example/tf/x, tag: \"1.0\", secretRef: {name: pull}, provider: aws}}\n",
        "  source: {oci: {url: oci://r.example/tf/x, digest: \"sha256:0123456789abcdef\"}}\n",
        "  source: {git: {url: https://g.example/x.git, ref: {commit: 0123abcd}, secretRef: {name: git-cred}}}\n",
        "  source: {git: {url: ssh://git@g.example/x.git, ref: {semver: \">=1.0.0\"}}}\n",
        "  source: {git: {url: https://g.example/x.git, ref: {branch: main}}}\n",
        "  source: {sourceRef: {kind: OCIRepository, name: shared, namespace: flux-system}}\n",
        "  source: {sourceRef: {kind: GitRepository, name: shared}}\n",
        "  source: {sourceRef: {kind: Bucket, name: shared}}\n",
    ] {
        let r = tfops_render::render(&module(spec), &opts(Some("rel"), Some("ns"))).unwrap();
        let n = s.check_all(&r.output);
        assert!(n >= 1, "{spec}");
    }
}

#[test]
fn rich_terraform_overrides_validate() {
    let s = schemas_or_skip!();
    let spec = r#"  source: {oci: {url: oci://r.example/tf/x, tag: "1.0"}}
  path: ./envs/prod
  vars:
    tier: db-f1-micro
    replicas: 2
    enabled: true
    tags: {team: shop, cost: "12"}
    zones: [a, b]
  varsFrom:
    - {kind: Secret, name: db-creds, varsKeys: [password]}
    - {kind: ConfigMap, name: db-settings}
  outputs: {secret: m-out}
  approvePlan: detect-drift
  interval: 1h30m
  uninstall: {policy: retain, onFailure: force, retries: 0, timeout: 90s}
  terraform:
    runnerPodTemplate:
      metadata:
        annotations: {iam.gke.io/gcp-service-account: x@p.iam.gserviceaccount.com}
      spec:
        tolerations: [{key: dedicated, operator: Equal, value: tf, effect: NoSchedule}]
        nodeSelector: {pool: terraform}
        env: [{name: TF_LOG, value: INFO}]
    backendConfig: {secretSuffix: custom, inClusterConfig: true}
    retryInterval: 30s
    alwaysCleanupRunnerPod: true
    enableInventory: true
"#;
    let r = tfops_render::render(&module(spec), &opts(Some("rel"), Some("ns"))).unwrap();
    assert_eq!(s.check_all(&r.output), 2);
    let out = docs(&r.output);
    let tf = common::find(&out, "Terraform", "rel-m");
    assert_eq!(tf["spec"]["destroyResourcesOnDeletion"], false);
    assert_eq!(tf["spec"]["approvePlan"], "disable");
    assert_eq!(tf["spec"]["vars"].as_array().unwrap().len(), 5);
}

#[test]
fn an_invalid_override_is_caught_by_the_schema() {
    // Proves the validator is really enforcing the CRD: a wrong type must be rejected.
    let s = schemas_or_skip!();
    let spec = "  source: {oci: {url: oci://r.example/tf/x, tag: \"1.0\"}}\n  terraform: {alwaysCleanupRunnerPod: \"yes please\"}\n";
    let r = tfops_render::render(&module(spec), &opts(Some("rel"), Some("ns"))).unwrap();
    let bad = docs(&r.output)
        .into_iter()
        .find(|d| d["kind"] == "Terraform")
        .unwrap();
    let (_, _, v) = s.0.iter().find(|(_, k, _)| *k == "Terraform").unwrap();
    assert!(!v.is_valid(&bad));
}
