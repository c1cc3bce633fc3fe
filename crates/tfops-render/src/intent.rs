//! The `TerraformModule` declaration (`tfops.dev/v1alpha1`) chart authors write in templates:
//! strongly typed, unknown fields rejected, errors carry the field path. Never emitted.

use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};

use tfops_api::GoDuration;

/// apiVersion of the declaration.
pub const API_VERSION: &str = tfops_api::names::TFOPS_API_VERSION;
/// kind of the declaration.
pub const KIND: &str = tfops_api::names::MODULE_KIND;

/// A whole `TerraformModule` document.
#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub struct TerraformModule {
    /// Must be `tfops.dev/v1alpha1`.
    pub api_version: String,
    /// Must be `TerraformModule`.
    pub kind: String,
    /// Name (the module name) and optional extra labels/annotations.
    pub metadata: ModuleMeta,
    /// What to run.
    pub spec: ModuleSpec,
}

/// Metadata of a declaration.
#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub struct ModuleMeta {
    /// Module name (DNS-1123 label).
    pub name: String,
    /// Namespace, if the chart sets one (must equal the release namespace).
    #[serde(default)]
    pub namespace: Option<String>,
    /// Labels copied to every generated object.
    #[serde(default)]
    pub labels: Map<String, Value>,
    /// Annotations (the Helm 4 filename annotation is used for mapping; others are copied).
    #[serde(default)]
    pub annotations: Map<String, Value>,
}

/// `spec` of a declaration.
#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub struct ModuleSpec {
    /// Exactly one of `oci`, `git`, `sourceRef`.
    pub source: SourceSpec,
    /// Path of the module inside the source (default `./`).
    #[serde(default)]
    pub path: Option<String>,
    /// Terraform input variables → `spec.vars` ([{name, value}], sorted by name).
    #[serde(default)]
    pub vars: Map<String, Value>,
    /// Passed through to `spec.varsFrom`.
    #[serde(default)]
    pub vars_from: Option<Vec<Value>>,
    /// Where outputs go → `spec.writeOutputsToSecret`.
    #[serde(default)]
    pub outputs: Option<Outputs>,
    /// Names of other modules of the release this one depends on.
    #[serde(default)]
    pub depends_on: Vec<String>,
    /// Plan approval mode.
    #[serde(default)]
    pub approve_plan: Option<ApprovePlan>,
    /// Reconcile interval.
    #[serde(default)]
    pub interval: Option<GoDuration>,
    /// Uninstall intent.
    #[serde(default)]
    pub uninstall: Option<Uninstall>,
    /// Extra Terraform spec fields, merged last as a JSON merge patch.
    #[serde(default)]
    pub terraform: Option<Map<String, Value>>,
}

/// Source of the module: exactly one field must be set (checked after parsing).
#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub struct SourceSpec {
    /// OCI artifact.
    #[serde(default)]
    pub oci: Option<OciSource>,
    /// Git repository.
    #[serde(default)]
    pub git: Option<GitSource>,
    /// An existing Flux source.
    #[serde(default)]
    pub source_ref: Option<SourceRef>,
}

/// OCI source.
#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub struct OciSource {
    /// `oci://…` URL.
    pub url: String,
    /// Tag (exactly one of tag / digest).
    #[serde(default)]
    pub tag: Option<String>,
    /// Digest `sha256:…` (exactly one of tag / digest).
    #[serde(default)]
    pub digest: Option<String>,
    /// Pull secret.
    #[serde(default)]
    pub secret_ref: Option<SecretRef>,
    /// Auth provider.
    #[serde(default)]
    pub provider: Option<OciProvider>,
}

/// OCI auth provider (Flux `spec.provider`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum OciProvider {
    /// Generic.
    Generic,
    /// AWS ECR.
    Aws,
    /// Azure ACR.
    Azure,
    /// GCP Artifact Registry.
    Gcp,
}

/// Git source.
#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub struct GitSource {
    /// Repository URL.
    pub url: String,
    /// Reference: exactly one of tag / branch / commit / semver.
    pub r#ref: GitRef,
    /// Credentials secret.
    #[serde(default)]
    pub secret_ref: Option<SecretRef>,
}

/// Git reference.
#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub struct GitRef {
    /// Tag.
    #[serde(default)]
    pub tag: Option<String>,
    /// Branch.
    #[serde(default)]
    pub branch: Option<String>,
    /// Commit SHA.
    #[serde(default)]
    pub commit: Option<String>,
    /// SemVer range.
    #[serde(default)]
    pub semver: Option<String>,
}

/// Reference to a Secret.
#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub struct SecretRef {
    /// Secret name.
    pub name: String,
}

/// Reference to an existing Flux source.
#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub struct SourceRef {
    /// Source kind.
    pub kind: SourceKind,
    /// Source name.
    pub name: String,
    /// Source namespace (default: the CR's).
    #[serde(default)]
    pub namespace: Option<String>,
}

/// Flux source kinds a Terraform may reference.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub enum SourceKind {
    /// `OCIRepository`.
    OCIRepository,
    /// `GitRepository`.
    GitRepository,
    /// `Bucket`.
    Bucket,
}

impl SourceKind {
    /// The Kubernetes kind string.
    pub fn as_str(self) -> &'static str {
        match self {
            SourceKind::OCIRepository => "OCIRepository",
            SourceKind::GitRepository => "GitRepository",
            SourceKind::Bucket => "Bucket",
        }
    }
}

/// Outputs handling.
#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub struct Outputs {
    /// Secret that receives the outputs (default from `naming.outputsSecret`).
    #[serde(default)]
    pub secret: Option<String>,
}

/// Plan approval mode.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum ApprovePlan {
    /// Apply every plan → `"auto"`.
    Auto,
    /// Plans wait for approval → `""`.
    Manual,
    /// Only detect drift → `"disable"`.
    DetectDrift,
}

impl ApprovePlan {
    /// The tofu-controller `spec.approvePlan` value.
    pub fn terraform_value(self) -> &'static str {
        match self {
            ApprovePlan::Auto => "auto",
            ApprovePlan::Manual => "",
            ApprovePlan::DetectDrift => "disable",
        }
    }
}

/// Uninstall intent.
#[derive(Debug, Clone, Default, PartialEq, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub struct Uninstall {
    /// Destroy or retain the cloud resources.
    #[serde(default)]
    pub policy: Option<UninstallPolicy>,
    /// What the guard does when the destroy keeps failing.
    #[serde(default)]
    pub on_failure: Option<OnFailure>,
    /// Retries before escalation.
    #[serde(default)]
    pub retries: Option<u32>,
    /// Time allowed.
    #[serde(default)]
    pub timeout: Option<GoDuration>,
}

pub use tfops_api::{OnFailure, UninstallPolicy};

/// Parse and check a declaration from its JSON value. `Err((field path, message))`.
pub fn parse(value: Value) -> Result<TerraformModule, (String, String)> {
    let module: TerraformModule = serde_path_to_error::deserialize(value).map_err(|e| {
        let path = e.path().to_string();
        let path = if path == "." { String::new() } else { path };
        (path, e.into_inner().to_string())
    })?;
    module.check()?;
    Ok(module)
}

impl TerraformModule {
    /// Checks serde cannot express: exactly-one-of groups, non-empty names.
    fn check(&self) -> Result<(), (String, String)> {
        if self.api_version != API_VERSION {
            return Err(("apiVersion".into(), format!("must be {API_VERSION}")));
        }
        if self.kind != KIND {
            return Err(("kind".into(), format!("must be {KIND}")));
        }
        if let Some(interval) = &self.spec.interval {
            // Goes into Flux / tofu-controller `spec.interval`, whose CRD pattern is narrower.
            interval
                .check_flux_field()
                .map_err(|m| ("spec.interval".to_string(), m))?;
        }
        for (what, map) in [
            ("labels", &self.metadata.labels),
            ("annotations", &self.metadata.annotations),
        ] {
            for (k, v) in map.iter() {
                if !v.is_string() {
                    return Err((
                        format!("metadata.{what}[{k}]"),
                        format!("must be a string, got {v}"),
                    ));
                }
                if k.starts_with("helm.sh/hook") {
                    return Err((
                        format!("metadata.{what}[{k}]"),
                        "a TerraformModule cannot be a Helm hook: its objects must be ordinary release objects".into(),
                    ));
                }
            }
        }
        let src = &self.spec.source;
        let n = [
            src.oci.is_some(),
            src.git.is_some(),
            src.source_ref.is_some(),
        ]
        .iter()
        .filter(|b| **b)
        .count();
        if n != 1 {
            return Err((
                "spec.source".into(),
                "exactly one of oci, git, sourceRef".into(),
            ));
        }
        if let Some(oci) = &src.oci {
            if !oci.url.starts_with("oci://") {
                return Err((
                    "spec.source.oci.url".into(),
                    "must start with oci://".into(),
                ));
            }
            if oci.tag.is_some() == oci.digest.is_some() {
                return Err((
                    "spec.source.oci".into(),
                    "exactly one of tag, digest".into(),
                ));
            }
            if let Some(d) = &oci.digest {
                if !d.contains(':') {
                    return Err((
                        "spec.source.oci.digest".into(),
                        "must look like sha256:<hex>".into(),
                    ));
                }
            }
        }
        if let Some(git) = &src.git {
            if git.url.is_empty() {
                return Err(("spec.source.git.url".into(), "must not be empty".into()));
            }
            let r = &git.r#ref;
            let n = [&r.tag, &r.branch, &r.commit, &r.semver]
                .iter()
                .filter(|x| x.is_some())
                .count();
            if n != 1 {
                return Err((
                    "spec.source.git.ref".into(),
                    "exactly one of tag, branch, commit, semver".into(),
                ));
            }
        }
        if let Some(sr) = &src.source_ref {
            if sr.name.is_empty() {
                return Err((
                    "spec.source.sourceRef.name".into(),
                    "must not be empty".into(),
                ));
            }
        }
        for (i, d) in self.spec.depends_on.iter().enumerate() {
            if d.is_empty() {
                return Err((format!("spec.dependsOn[{i}]"), "must not be empty".into()));
            }
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn base() -> Value {
        json!({
            "apiVersion": API_VERSION, "kind": KIND,
            "metadata": {"name": "db", "labels": {"team": "shop"}},
            "spec": {"source": {"oci": {"url": "oci://r/x", "tag": "1"}}}
        })
    }

    #[test]
    fn minimal_module_parses_with_defaults() {
        let m = parse(base()).unwrap();
        assert_eq!(m.metadata.name, "db");
        assert!(m.spec.depends_on.is_empty());
        assert!(m.spec.vars.is_empty());
        assert_eq!(m.spec.approve_plan, None);
        assert_eq!(
            m.spec.source.oci.as_ref().unwrap().tag.as_deref(),
            Some("1")
        );
    }

    #[test]
    fn full_module_parses() {
        let mut v = base();
        v["spec"] = json!({
            "source": {"git": {"url": "https://g/x", "ref": {"semver": ">=1"}, "secretRef": {"name": "s"}}},
            "path": "./m", "vars": {"b": 1, "a": [1]}, "varsFrom": [{"kind": "Secret", "name": "x"}],
            "outputs": {"secret": "o"}, "dependsOn": ["net"], "approvePlan": "detect-drift", "interval": "1h",
            "uninstall": {"policy": "retain", "onFailure": "force", "retries": 0, "timeout": "90s"},
            "terraform": {"suspend": false}
        });
        let m = parse(v).unwrap();
        assert_eq!(m.spec.approve_plan, Some(ApprovePlan::DetectDrift));
        assert_eq!(
            m.spec.vars.keys().collect::<Vec<_>>(),
            ["b", "a"],
            "declaration order kept"
        );
        let u = m.spec.uninstall.unwrap();
        assert_eq!(
            (u.policy, u.on_failure, u.retries),
            (
                Some(UninstallPolicy::Retain),
                Some(OnFailure::Force),
                Some(0)
            )
        );
        assert_eq!(u.timeout.unwrap().as_secs(), 90);
    }

    #[test]
    fn approve_plan_mapping() {
        assert_eq!(ApprovePlan::Auto.terraform_value(), "auto");
        assert_eq!(ApprovePlan::Manual.terraform_value(), "");
        assert_eq!(ApprovePlan::DetectDrift.terraform_value(), "disable");
    }

    #[test]
    fn hooks_and_non_string_metadata_are_rejected() {
        let mut v = base();
        v["metadata"]["annotations"] = json!({"helm.sh/hook": "pre-install"});
        assert_eq!(
            parse(v).unwrap_err().0,
            "metadata.annotations[helm.sh/hook]"
        );
        let mut v = base();
        v["metadata"]["labels"] = json!({"tier": 1});
        assert_eq!(parse(v).unwrap_err().0, "metadata.labels[tier]");
    }

    #[test]
    fn interval_must_fit_the_flux_crd_pattern_timeout_takes_any_go_duration() {
        for bad in ["0", "500us"] {
            let mut v = base();
            v["spec"]["interval"] = json!(bad);
            let (field, msg) = parse(v).unwrap_err();
            assert_eq!(field, "spec.interval", "{bad}: {msg}");
        }
        let mut v = base();
        v["spec"]["uninstall"] = json!({"policy": "Retain", "timeout": "0"});
        let m = parse(v).unwrap();
        let u = m.spec.uninstall.unwrap();
        assert_eq!(u.policy, Some(UninstallPolicy::Retain));
        assert_eq!(u.timeout.unwrap().as_secs(), 0);
    }
}
