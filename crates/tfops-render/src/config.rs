//! The catalog configuration (`--config FILE` / `TFOPS_CONFIG`): defaults for module intent,
//! naming patterns, runner and backend settings, guard settings and overlays.
//!
//! Strings may be handlebars expressions over `{release, module, namespace, chart}` (strict
//! mode, no HTML escaping); they are rendered per object by [`crate::template`]. Every field
//! is optional; unknown fields are errors. Full example (`tests/fixtures/catalog.yaml`):
//!
//! ```yaml
//! defaults:                      # module intent → these → built-in (10m, auto, destroy, orphan, 3, 10m)
//!   interval: 30m
//!   approvePlan: auto            # auto | manual | detect-drift
//!   uninstall: {policy: destroy, onFailure: orphan, retries: 3, timeout: 10m}
//! naming:                        # DNS-1123, shortened to ≤ 63 with a sha256 suffix
//!   source: "{{release}}-{{module}}"
//!   terraform: "{{release}}-{{module}}"
//!   runnerServiceAccount: "{{release}}-{{module}}-tf-runner"
//!   outputsSecret: "{{release}}-{{module}}-outputs"
//! runner:
//!   serviceAccount: {create: true, name: null}   # create: false = the catalog provides it
//!   clusterRole: tf-runner-role
//! backend:                       # copied into every Terraform spec (templated)
//!   backendConfig: {secretSuffix: "{{release}}-{{module}}", inClusterConfig: true}
//!   backendConfigsFrom: null
//! guard:
//!   image: ghcr.io/helm-tfops/tfops:v0.1.0
//!   budget: 240s
//!   ledgerNamespace: null
//!   classifierRules: [{pattern: "quota exceeded", reason: null, class: transient}]
//! overlays:                      # JSON merge patches, in order, before the module's `terraform`
//!   - target: {kind: Terraform, name: "shop-*", module: orders-db}
//!     mergePatch: {spec: {runnerPodTemplate: {spec: {tolerations: [{key: infra, operator: Exists}]}}}}
//! ```

use serde::{Deserialize, Serialize};
use serde_json::Value;

use crate::error::ConfigError;
use crate::intent::{ApprovePlan, OnFailure, UninstallPolicy};
use tfops_api::GoDuration;

/// The whole catalog configuration. `Default` = built-in defaults.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "camelCase", default)]
pub struct CatalogConfig {
    /// Defaults for `TerraformModule` fields the module leaves out.
    pub defaults: Defaults,
    /// Name patterns of generated objects.
    pub naming: Naming,
    /// Runner (tf-runner ServiceAccount) settings.
    pub runner: Runner,
    /// Terraform backend settings applied to every generated `Terraform`.
    pub backend: Backend,
    /// Guard (pre-delete hook Job) settings.
    pub guard: Guard,
    /// JSON merge patches applied to generated objects, in order.
    pub overlays: Vec<Overlay>,
}

/// Defaults for intent fields (module intent → these → built-in defaults).
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "camelCase", default)]
pub struct Defaults {
    /// Reconcile interval of the Terraform CR and the Flux source (built-in `10m`).
    pub interval: Option<GoDuration>,
    /// Plan approval mode (built-in `auto`).
    pub approve_plan: Option<ApprovePlan>,
    /// Uninstall behaviour defaults.
    pub uninstall: UninstallDefaults,
}

/// Defaults of `spec.uninstall`.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "camelCase", default)]
pub struct UninstallDefaults {
    /// `destroy` (built-in) or `retain`.
    pub policy: Option<UninstallPolicy>,
    /// `orphan` (built-in), `force` or `block`.
    pub on_failure: Option<OnFailure>,
    /// Destroy retries before escalation (built-in 3).
    pub retries: Option<u32>,
    /// Time allowed for the destroy (built-in `10m`).
    pub timeout: Option<GoDuration>,
}

/// Handlebars name patterns over `{release, module, namespace, chart}`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "camelCase", default)]
pub struct Naming {
    /// Flux source name (default `{{release}}-{{module}}`).
    pub source: String,
    /// Terraform CR name (default `{{release}}-{{module}}`).
    pub terraform: String,
    /// Runner ServiceAccount (and its RoleBinding) name (default `{{release}}-{{module}}-tf-runner`).
    pub runner_service_account: String,
    /// Outputs Secret name when the module gives none (default `{{release}}-{{module}}-outputs`).
    pub outputs_secret: String,
}

impl Default for Naming {
    fn default() -> Self {
        Naming {
            source: "{{release}}-{{module}}".into(),
            terraform: "{{release}}-{{module}}".into(),
            runner_service_account: "{{release}}-{{module}}-tf-runner".into(),
            outputs_secret: "{{release}}-{{module}}-outputs".into(),
        }
    }
}

/// Runner settings.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "camelCase", default)]
pub struct Runner {
    /// The runner ServiceAccount.
    pub service_account: RunnerServiceAccount,
    /// ClusterRole the runner RoleBinding refers to (default `tf-runner-role`).
    pub cluster_role: String,
}

impl Default for Runner {
    fn default() -> Self {
        Runner {
            service_account: RunnerServiceAccount::default(),
            cluster_role: "tf-runner-role".into(),
        }
    }
}

/// Runner ServiceAccount settings.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "camelCase", default)]
pub struct RunnerServiceAccount {
    /// Create the ServiceAccount + RoleBinding in the release (default true). When false the
    /// catalog provides its own and `name` (or `naming.runnerServiceAccount`) is only referenced.
    pub create: bool,
    /// Name (handlebars pattern); overrides `naming.runnerServiceAccount` when set.
    pub name: Option<String>,
}

impl Default for RunnerServiceAccount {
    fn default() -> Self {
        RunnerServiceAccount {
            create: true,
            name: None,
        }
    }
}

/// Backend settings copied into every generated Terraform spec (before the module's own
/// `terraform` overrides). String values may be handlebars expressions.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "camelCase", default)]
pub struct Backend {
    /// → `spec.backendConfig` (e.g. `{secretSuffix: "{{release}}-{{module}}"}`).
    pub backend_config: Option<Value>,
    /// → `spec.backendConfigsFrom`.
    pub backend_configs_from: Option<Value>,
}

/// Guard settings.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "camelCase", default)]
pub struct Guard {
    /// Image of the guard Job (default `ghcr.io/helm-tfops/tfops:v<crate version>`).
    pub image: String,
    /// Time budget of the guard; must stay below Helm's `--timeout` (default `240s`).
    pub budget: GoDuration,
    /// Namespace of the ledger Secrets (default: the release namespace).
    pub ledger_namespace: Option<String>,
    /// Extra failure-classifier rules, checked before the built-in ones.
    pub classifier_rules: Vec<ClassifierRule>,
    /// Namespace of tofu-controller. When set, the guard gets `get` on exactly its
    /// leader-election Lease there (a Role + RoleBinding in that namespace), its evidence
    /// that the controller is running or gone; without it the guard never concludes the
    /// controller is gone (and so never force-removes because of it).
    pub controller_namespace: Option<String>,
}

impl Default for Guard {
    fn default() -> Self {
        Guard {
            image: format!("ghcr.io/helm-tfops/tfops:v{}", env!("CARGO_PKG_VERSION")),
            budget: GoDuration::from_secs(240),
            ledger_namespace: None,
            classifier_rules: Vec::new(),
            controller_namespace: None,
        }
    }
}

pub use tfops_api::rules::RuleSpec as ClassifierRule;
pub use tfops_api::FailureClass;

/// One overlay: a JSON merge patch applied to the generated objects matching `target`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub struct Overlay {
    /// Which objects.
    pub target: OverlayTarget,
    /// RFC 7396 JSON merge patch (strings may be handlebars expressions).
    pub merge_patch: Value,
}

/// Selector of an overlay. Every given field must match.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub struct OverlayTarget {
    /// Object kind, e.g. `Terraform`, `OCIRepository`, `ServiceAccount`, `Job`.
    pub kind: String,
    /// Object name, exact or a glob with `*` / `?`.
    #[serde(default)]
    pub name: Option<String>,
    /// Module name (exact).
    #[serde(default)]
    pub module: Option<String>,
}

impl CatalogConfig {
    /// Parse a catalog configuration from YAML. `origin` (usually the file path) is used in
    /// error messages. Unknown fields are rejected with their path.
    pub fn from_yaml(bytes: &[u8], origin: &str) -> Result<Self, ConfigError> {
        let err = |field: Option<String>, message: String| ConfigError {
            origin: origin.to_string(),
            field,
            message,
        };
        let text = std::str::from_utf8(bytes)
            .map_err(|e| err(None, format!("configuration is not UTF-8: {e}")))?;
        if text.trim().is_empty() {
            return Ok(CatalogConfig::default());
        }
        let value: Value = crate::yaml::parse_value(text, &crate::Limits::default())
            .map_err(|e| err(None, format!("invalid YAML: {e}")))?;
        if value.is_null() {
            return Ok(CatalogConfig::default());
        }
        if !value.is_object() {
            return Err(err(None, "configuration must be a mapping".into()));
        }
        let cfg: CatalogConfig = serde_path_to_error::deserialize(value).map_err(|e| {
            let path = e.path().to_string();
            err((path != ".").then_some(path), e.into_inner().to_string())
        })?;
        cfg.validate().map_err(|(f, m)| err(Some(f), m))?;
        Ok(cfg)
    }

    /// Checks serde cannot express: templates compile, overlay patches are objects, the
    /// budget is positive, rule patterns are not empty.
    fn validate(&self) -> Result<(), (String, String)> {
        for (field, pattern) in [
            ("naming.source", &self.naming.source),
            ("naming.terraform", &self.naming.terraform),
            (
                "naming.runnerServiceAccount",
                &self.naming.runner_service_account,
            ),
            ("naming.outputsSecret", &self.naming.outputs_secret),
            ("runner.clusterRole", &self.runner.cluster_role),
            ("guard.image", &self.guard.image),
        ] {
            crate::template::check(pattern).map_err(|m| (field.to_string(), m))?;
        }
        if let Some(name) = &self.runner.service_account.name {
            crate::template::check(name)
                .map_err(|m| ("runner.serviceAccount.name".to_string(), m))?;
        }
        if let Some(interval) = &self.defaults.interval {
            interval
                .check_flux_field()
                .map_err(|m| ("defaults.interval".to_string(), m))?;
        }
        if self.guard.budget.as_secs() == 0 {
            return Err(("guard.budget".into(), "must be at least 1s".into()));
        }
        for (i, rule) in self.guard.classifier_rules.iter().enumerate() {
            if rule.pattern.is_empty() {
                return Err((
                    format!("guard.classifierRules[{i}].pattern"),
                    "must not be empty".into(),
                ));
            }
            // The guard compiles these with the `regex` crate at uninstall time: fail now.
            regex::Regex::new(&rule.pattern).map_err(|e| {
                (
                    format!("guard.classifierRules[{i}].pattern"),
                    format!("invalid regular expression: {e}"),
                )
            })?;
        }
        for (i, overlay) in self.overlays.iter().enumerate() {
            if !overlay.merge_patch.is_object() {
                return Err((
                    format!("overlays[{i}].mergePatch"),
                    "must be a mapping (JSON merge patch of the object)".into(),
                ));
            }
            if overlay.target.kind.is_empty() {
                return Err((
                    format!("overlays[{i}].target.kind"),
                    "must not be empty".into(),
                ));
            }
        }
        Ok(())
    }
}
