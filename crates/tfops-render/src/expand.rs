//! Expansion (pure): one `TerraformModule` + catalog config + release context → Flux source,
//! `Terraform` CR and runner RBAC as structured values, plus dependency checks.

use std::collections::{BTreeMap, BTreeSet};
use tfops_api::names;

use serde_json::{json, Map, Value};

use crate::config::CatalogConfig;
use crate::error::ErrorKind;
use crate::intent::{OnFailure, SourceKind, TerraformModule, Uninstall, UninstallPolicy};
use crate::meta;
use crate::naming::{self, NameRule};
use crate::template::{self, TemplateContext};

/// Terraform CR apiVersion we generate.
pub const TERRAFORM_API: &str = tfops_api::names::TF_API_VERSION;
/// Flux source apiVersion we generate.
pub const SOURCE_API: &str = "source.toolkit.fluxcd.io/v1";

/// How uninstall is guarded for this render.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum GuardMode {
    /// Helm 4: a pre-delete hook Job is part of the release.
    Hook,
    /// Helm 3 (or unknown): uninstall must go through `helm tfops uninstall`.
    Client,
}

impl GuardMode {
    /// Annotation value.
    pub fn as_str(self) -> &'static str {
        match self {
            GuardMode::Hook => "hook",
            GuardMode::Client => "client",
        }
    }
}

/// What every object of a release shares.
#[derive(Debug, Clone)]
pub struct ReleaseContext {
    /// Release name.
    pub release: String,
    /// Release namespace, when known.
    pub namespace: Option<String>,
    /// Chart name, when known.
    pub chart: Option<String>,
    /// Guard mode.
    pub guard: GuardMode,
}

impl ReleaseContext {
    /// Template variables for `module` (or the release as a whole).
    pub fn template_context(&self, module: Option<&str>) -> TemplateContext {
        TemplateContext {
            release: self.release.clone(),
            module: module.map(str::to_string),
            namespace: self.namespace.clone(),
            chart: self.chart.clone(),
        }
    }
}

/// An expansion failure: kind, field path inside the module document, message.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ExpandError {
    /// Category.
    pub kind: ErrorKind,
    /// Field path (e.g. `spec.dependsOn[0]`), or a config path prefixed with `config:`.
    pub field: String,
    /// What is wrong.
    pub message: String,
}

fn err(kind: ErrorKind, field: impl Into<String>, message: impl Into<String>) -> ExpandError {
    ExpandError {
        kind,
        field: field.into(),
        message: message.into(),
    }
}

/// Resolved uninstall policy (module intent → catalog defaults → built-in defaults).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Policy {
    /// destroy | retain.
    pub policy: UninstallPolicy,
    /// orphan | force | block.
    pub on_failure: OnFailure,
    /// Retries.
    pub retries: u32,
    /// Timeout (Go duration text).
    pub timeout: String,
}

/// Resolve the policy of a module (or of an adopted CR, with `intent` = `None`).
pub fn resolve_policy(intent: Option<&Uninstall>, cfg: &CatalogConfig) -> Policy {
    let d = &cfg.defaults.uninstall;
    Policy {
        policy: intent
            .and_then(|u| u.policy)
            .or(d.policy)
            .unwrap_or(UninstallPolicy::Destroy),
        on_failure: intent
            .and_then(|u| u.on_failure)
            .or(d.on_failure)
            .unwrap_or(OnFailure::Orphan),
        retries: intent.and_then(|u| u.retries).or(d.retries).unwrap_or(3),
        timeout: intent
            .and_then(|u| u.timeout.as_ref())
            .or(d.timeout.as_ref())
            .map_or_else(|| "10m".to_string(), |t| t.as_str().to_string()),
    }
}

/// Write the policy + guard annotations.
pub fn annotate_policy(object: &mut Value, policy: &Policy, guard: GuardMode) {
    meta::set_annotation(object, names::ANN_UNINSTALL_POLICY, policy.policy.as_str());
    meta::set_annotation(object, names::ANN_ON_FAILURE, policy.on_failure.as_str());
    meta::set_annotation(object, names::ANN_RETRIES, &policy.retries.to_string());
    meta::set_annotation(object, names::ANN_TIMEOUT, &policy.timeout);
    meta::set_annotation(object, names::ANN_GUARD, guard.as_str());
}

/// Names of the objects generated for one module.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ModuleNames {
    /// Terraform CR.
    pub terraform: String,
    /// Flux source (unused for `sourceRef`).
    pub source: String,
    /// Runner ServiceAccount (and RoleBinding).
    pub runner_service_account: String,
    /// Outputs Secret.
    pub outputs_secret: String,
}

fn render_name(
    pattern: &str,
    config_field: &str,
    ctx: &TemplateContext,
    rule: NameRule,
) -> Result<String, ExpandError> {
    let raw = template::render(pattern, ctx)
        .map_err(|m| err(ErrorKind::Template, format!("config: {config_field}"), m))?;
    naming::finish(&raw, rule)
        .map_err(|m| err(ErrorKind::Name, format!("config: {config_field}"), m))
}

/// Compute (and validate) the names of `module`'s objects.
pub fn module_names(
    module: &TerraformModule,
    cfg: &CatalogConfig,
    rc: &ReleaseContext,
) -> Result<ModuleNames, ExpandError> {
    let name = &module.metadata.name;
    naming::validate(name, NameRule::Label)
        .map_err(|m| err(ErrorKind::Name, "metadata.name", m))?;
    let ctx = rc.template_context(Some(name));
    let runner_pattern = cfg
        .runner
        .service_account
        .name
        .as_deref()
        .unwrap_or(&cfg.naming.runner_service_account);
    let runner_field = if cfg.runner.service_account.name.is_some() {
        "runner.serviceAccount.name"
    } else {
        "naming.runnerServiceAccount"
    };
    let outputs_secret = match module
        .spec
        .outputs
        .as_ref()
        .and_then(|o| o.secret.as_deref())
    {
        Some(s) => {
            naming::validate(s, NameRule::Subdomain)
                .map_err(|m| err(ErrorKind::Name, "spec.outputs.secret", m))?;
            s.to_string()
        }
        None => render_name(
            &cfg.naming.outputs_secret,
            "naming.outputsSecret",
            &ctx,
            NameRule::Subdomain,
        )?,
    };
    Ok(ModuleNames {
        terraform: render_name(
            &cfg.naming.terraform,
            "naming.terraform",
            &ctx,
            NameRule::Label,
        )?,
        source: render_name(&cfg.naming.source, "naming.source", &ctx, NameRule::Label)?,
        runner_service_account: render_name(
            runner_pattern,
            runner_field,
            &ctx,
            NameRule::Subdomain,
        )?,
        outputs_secret,
    })
}

/// A `Terraform` CR adopted from the chart, as a node of the dependency graph.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AdoptedNode {
    /// Its `metadata.name`.
    pub name: String,
    /// Its `spec.dependsOn[].name` (CR names; those outside the chart are ignored).
    pub depends_on: Vec<String>,
}

/// Check `dependsOn` of all modules: targets must be modules of the release or `Terraform` CRs
/// adopted from the chart; no self-references; no cycles (also through adopted CRs, whose own
/// `spec.dependsOn` is followed). `terraform_names` maps module names to their CR names.
/// `Err((module index, error))`.
pub fn check_dependencies(
    modules: &[&TerraformModule],
    adopted: &[AdoptedNode],
    terraform_names: &BTreeMap<String, String>,
) -> Result<(), (usize, ExpandError)> {
    let m = modules.len();
    let module_index: BTreeMap<&str, usize> = modules
        .iter()
        .enumerate()
        .map(|(i, md)| (md.metadata.name.as_str(), i))
        .collect();
    let adopted_index: BTreeMap<&str, usize> = adopted
        .iter()
        .enumerate()
        .map(|(k, a)| (a.name.as_str(), m + k))
        .collect();
    // CR name → node, for following adopted CRs' own dependsOn.
    let mut cr_index: BTreeMap<&str, usize> = adopted_index.clone();
    for md in modules {
        if let (Some(cr), Some(&i)) = (
            terraform_names.get(&md.metadata.name),
            module_index.get(md.metadata.name.as_str()),
        ) {
            cr_index.insert(cr.as_str(), i);
        }
    }
    let label = |n: usize| -> String {
        if n < m {
            modules[n].metadata.name.clone()
        } else {
            format!("Terraform {:?}", adopted[n - m].name)
        }
    };
    // Adjacency: (target node, dependsOn index in the source document).
    let mut edges: Vec<Vec<(usize, usize)>> = vec![Vec::new(); m + adopted.len()];
    for (i, md) in modules.iter().enumerate() {
        for (j, dep) in md.spec.depends_on.iter().enumerate() {
            let field = format!("spec.dependsOn[{j}]");
            if dep == &md.metadata.name {
                return Err((
                    i,
                    err(
                        ErrorKind::Dependency,
                        field,
                        "a module cannot depend on itself",
                    ),
                ));
            }
            let target = module_index
                .get(dep.as_str())
                .or_else(|| adopted_index.get(dep.as_str()));
            let Some(&target) = target else {
                let mut known: Vec<String> = module_index.keys().map(|k| k.to_string()).collect();
                known.extend(adopted.iter().map(|a| format!("Terraform {:?}", a.name)));
                return Err((
                    i,
                    err(
                        ErrorKind::Dependency,
                        field,
                        format!(
                            "unknown module {dep:?} (modules of this release: {})",
                            known.join(", ")
                        ),
                    ),
                ));
            };
            edges[i].push((target, j));
        }
    }
    for (k, a) in adopted.iter().enumerate() {
        for (j, dep) in a.depends_on.iter().enumerate() {
            if let Some(&target) = cr_index.get(dep.as_str()) {
                edges[m + k].push((target, j));
            }
        }
    }
    // Cycle detection: iterative DFS with colours, reporting the cycle path on a module.
    #[derive(Clone, Copy, PartialEq)]
    enum Colour {
        White,
        Grey,
        Black,
    }
    let mut colour = vec![Colour::White; edges.len()];
    for root in 0..edges.len() {
        if colour[root] != Colour::White {
            continue;
        }
        let mut stack: Vec<(usize, usize)> = vec![(root, 0)];
        colour[root] = Colour::Grey;
        while let Some((node, next)) = stack.last().copied() {
            if next < edges[node].len() {
                if let Some(top) = stack.last_mut() {
                    top.1 += 1;
                }
                let (child, _) = edges[node][next];
                match colour[child] {
                    Colour::White => {
                        colour[child] = Colour::Grey;
                        stack.push((child, 0));
                    }
                    Colour::Grey => {
                        let start = stack.iter().position(|(n, _)| *n == child).unwrap_or(0);
                        let cycle = &stack[start..];
                        let mut path: Vec<String> = cycle.iter().map(|(n, _)| label(*n)).collect();
                        path.push(label(child));
                        // Report on the first module of the cycle, at the edge it takes.
                        if let Some((at, taken)) = cycle.iter().find(|(n, _)| *n < m) {
                            let field_index = edges[*at][taken - 1].1;
                            return Err((
                                *at,
                                err(
                                    ErrorKind::Dependency,
                                    format!("spec.dependsOn[{field_index}]"),
                                    format!("dependency cycle: {}", path.join(" -> ")),
                                ),
                            ));
                        }
                        // A cycle among adopted CRs only is the chart's own affair.
                    }
                    Colour::Black => {}
                }
            } else {
                colour[node] = Colour::Black;
                stack.pop();
            }
        }
    }
    Ok(())
}

fn base_object(api_version: &str, kind: &str, name: &str, rc: &ReleaseContext) -> Value {
    let mut metadata = Map::new();
    metadata.insert("name".into(), Value::String(name.to_string()));
    if let Some(ns) = &rc.namespace {
        metadata.insert("namespace".into(), Value::String(ns.clone()));
    }
    json!({"apiVersion": api_version, "kind": kind, "metadata": Value::Object(metadata)})
}

/// Expand one module. `terraform_names` maps every module name of the release to its
/// Terraform CR name (for `dependsOn`). Objects come back in apply order: source, runner
/// ServiceAccount, runner RoleBinding, Terraform — labelled, annotated and hashed.
pub fn expand(
    module: &TerraformModule,
    names: &ModuleNames,
    terraform_names: &BTreeMap<String, String>,
    cfg: &CatalogConfig,
    rc: &ReleaseContext,
) -> Result<Vec<Value>, ExpandError> {
    let module_name = module.metadata.name.as_str();
    let ctx = rc.template_context(Some(module_name));
    let spec = &module.spec;
    let interval = spec
        .interval
        .as_ref()
        .or(cfg.defaults.interval.as_ref())
        .map_or("10m", |d| d.as_str())
        .to_string();
    let mut objects = Vec::new();

    // Flux source.
    let source_ref = if let Some(oci) = &spec.source.oci {
        let mut obj = base_object(SOURCE_API, "OCIRepository", &names.source, rc);
        let mut r = Map::new();
        if let Some(tag) = &oci.tag {
            r.insert("tag".into(), json!(tag));
        }
        if let Some(digest) = &oci.digest {
            r.insert("digest".into(), json!(digest));
        }
        let mut s = Map::new();
        s.insert("interval".into(), json!(interval));
        s.insert("url".into(), json!(oci.url));
        s.insert("ref".into(), Value::Object(r));
        if let Some(p) = oci.provider {
            s.insert("provider".into(), json!(p));
        }
        if let Some(sec) = &oci.secret_ref {
            s.insert("secretRef".into(), json!({"name": sec.name}));
        }
        obj["spec"] = Value::Object(s);
        objects.push(obj);
        json!({"kind": "OCIRepository", "name": names.source})
    } else if let Some(git) = &spec.source.git {
        let mut obj = base_object(SOURCE_API, "GitRepository", &names.source, rc);
        let mut r = Map::new();
        for (k, v) in [
            ("tag", &git.r#ref.tag),
            ("branch", &git.r#ref.branch),
            ("commit", &git.r#ref.commit),
            ("semver", &git.r#ref.semver),
        ] {
            if let Some(v) = v {
                r.insert(k.into(), json!(v));
            }
        }
        let mut s = Map::new();
        s.insert("interval".into(), json!(interval));
        s.insert("url".into(), json!(git.url));
        s.insert("ref".into(), Value::Object(r));
        if let Some(sec) = &git.secret_ref {
            s.insert("secretRef".into(), json!({"name": sec.name}));
        }
        obj["spec"] = Value::Object(s);
        objects.push(obj);
        json!({"kind": "GitRepository", "name": names.source})
    } else if let Some(sr) = &spec.source.source_ref {
        let mut r = Map::new();
        r.insert("kind".into(), json!(sr.kind.as_str()));
        r.insert("name".into(), json!(sr.name));
        if let Some(ns) = &sr.namespace {
            r.insert("namespace".into(), json!(ns));
        }
        if sr.kind == SourceKind::Bucket {
            r.insert("apiVersion".into(), json!(SOURCE_API));
        }
        Value::Object(r)
    } else {
        return Err(err(
            ErrorKind::Intent,
            "spec.source",
            "exactly one of oci, git, sourceRef",
        ));
    };

    // Runner RBAC.
    if cfg.runner.service_account.create {
        let sa = base_object("v1", "ServiceAccount", &names.runner_service_account, rc);
        objects.push(sa);
        let cluster_role = template::render(&cfg.runner.cluster_role, &ctx)
            .map_err(|m| err(ErrorKind::Template, "config: runner.clusterRole", m))?;
        let mut rb = base_object(
            "rbac.authorization.k8s.io/v1",
            "RoleBinding",
            &names.runner_service_account,
            rc,
        );
        rb["roleRef"] = json!({"apiGroup": "rbac.authorization.k8s.io", "kind": "ClusterRole", "name": cluster_role});
        rb["subjects"] = json!([{
            "kind": "ServiceAccount",
            "name": names.runner_service_account,
            "namespace": rc.namespace.as_deref().unwrap_or("default"),
        }]);
        objects.push(rb);
    }

    // Terraform CR.
    let policy = resolve_policy(spec.uninstall.as_ref(), cfg);
    let approve = spec
        .approve_plan
        .or(cfg.defaults.approve_plan)
        .unwrap_or(crate::intent::ApprovePlan::Auto);
    let mut s = Map::new();
    s.insert("interval".into(), json!(interval));
    s.insert("approvePlan".into(), json!(approve.terraform_value()));
    s.insert("path".into(), json!(spec.path.as_deref().unwrap_or("./")));
    s.insert("sourceRef".into(), source_ref);
    if !spec.vars.is_empty() {
        let vars: Vec<Value> = spec
            .vars
            .iter()
            .map(|(k, v)| json!({"name": k, "value": v}))
            .collect();
        s.insert("vars".into(), Value::Array(vars));
    }
    if let Some(vf) = &spec.vars_from {
        s.insert("varsFrom".into(), Value::Array(vf.clone()));
    }
    s.insert(
        "writeOutputsToSecret".into(),
        json!({"name": names.outputs_secret}),
    );
    if !spec.depends_on.is_empty() {
        let mut deps = Vec::new();
        for (j, d) in spec.depends_on.iter().enumerate() {
            let target = terraform_names.get(d).ok_or_else(|| {
                err(
                    ErrorKind::Dependency,
                    format!("spec.dependsOn[{j}]"),
                    format!("unknown module {d:?}"),
                )
            })?;
            deps.push(json!({"name": target}));
        }
        s.insert("dependsOn".into(), Value::Array(deps));
    }
    s.insert(
        "destroyResourcesOnDeletion".into(),
        json!(policy.policy == UninstallPolicy::Destroy),
    );
    s.insert(
        "serviceAccountName".into(),
        json!(names.runner_service_account),
    );
    // tofu-controller keeps status.inventory empty without it; the orphan ledger lists the
    // cloud resources from there.
    s.insert("enableInventory".into(), json!(true));
    if let Some(bc) = &cfg.backend.backend_config {
        let v = template::render_value(bc, &ctx)
            .map_err(|m| err(ErrorKind::Template, "config: backend.backendConfig", m))?;
        s.insert("backendConfig".into(), v);
    }
    if let Some(bcf) = &cfg.backend.backend_configs_from {
        let v = template::render_value(bcf, &ctx)
            .map_err(|m| err(ErrorKind::Template, "config: backend.backendConfigsFrom", m))?;
        s.insert("backendConfigsFrom".into(), v);
    }
    let mut tf = base_object(TERRAFORM_API, "Terraform", &names.terraform, rc);
    tf["spec"] = Value::Object(s);
    objects.push(tf);

    // Overlays (catalog), then the module's own Terraform overrides last, then our metadata.
    let last = objects.len() - 1;
    for (i, obj) in objects.iter_mut().enumerate() {
        crate::overlay::apply_all(&cfg.overlays, obj, Some(module_name), &ctx).map_err(
            |(k, m)| {
                err(
                    ErrorKind::Template,
                    format!("config: overlays[{k}].mergePatch"),
                    m,
                )
            },
        )?;
        if i == last {
            if let Some(over) = &spec.terraform {
                let mut spec_value = obj.get("spec").cloned().unwrap_or_else(|| json!({}));
                json_patch::merge(&mut spec_value, &Value::Object(over.clone()));
                obj["spec"] = spec_value;
            }
        }
        copy_user_metadata(obj, module);
        meta::set_label(obj, names::LABEL_RELEASE, &rc.release);
        meta::set_label(obj, names::LABEL_MODULE, module_name);
        if i == last {
            annotate_policy(obj, &policy, rc.guard);
        }
        crate::hash::stamp(obj);
    }
    Ok(objects)
}

/// Copy the declaration's own labels and annotations (minus Helm 4's filename annotation,
/// which the pipeline sets) onto a generated object.
fn copy_user_metadata(obj: &mut Value, module: &TerraformModule) {
    for (k, v) in &module.metadata.labels {
        if let Some(s) = v.as_str() {
            meta::set_label(obj, k, s);
        }
    }
    for (k, v) in &module.metadata.annotations {
        if k == meta::FILENAME_ANNOTATION {
            continue;
        }
        if let Some(s) = v.as_str() {
            meta::set_annotation(obj, k, s);
        }
    }
}

/// All module names must be distinct. `Err((index of the second, name))`.
pub fn check_unique(modules: &[&TerraformModule]) -> Result<(), (usize, String)> {
    let mut seen = BTreeSet::new();
    for (i, m) in modules.iter().enumerate() {
        if !seen.insert(m.metadata.name.as_str()) {
            return Err((i, m.metadata.name.clone()));
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn module(name: &str, deps: &[&str]) -> TerraformModule {
        crate::intent::parse(json!({
            "apiVersion": "tfops.dev/v1alpha1", "kind": "TerraformModule",
            "metadata": {"name": name},
            "spec": {"source": {"sourceRef": {"kind": "GitRepository", "name": "shared"}}, "dependsOn": deps}
        }))
        .unwrap()
    }

    fn rc() -> ReleaseContext {
        ReleaseContext {
            release: "shop".into(),
            namespace: Some("prod".into()),
            chart: Some("shop".into()),
            guard: GuardMode::Client,
        }
    }

    #[test]
    fn policy_resolution_order() {
        let mut cfg = CatalogConfig::default();
        assert_eq!(
            resolve_policy(None, &cfg),
            Policy {
                policy: UninstallPolicy::Destroy,
                on_failure: OnFailure::Orphan,
                retries: 3,
                timeout: "10m".into()
            }
        );
        cfg.defaults.uninstall.retries = Some(7);
        cfg.defaults.uninstall.on_failure = Some(OnFailure::Block);
        let intent = Uninstall {
            retries: Some(1),
            ..Default::default()
        };
        let p = resolve_policy(Some(&intent), &cfg);
        assert_eq!((p.retries, p.on_failure), (1, OnFailure::Block));
    }

    #[test]
    fn dependency_checks() {
        let (a, b, c) = (module("a", &["b"]), module("b", &["c"]), module("c", &[]));
        assert!(check_dependencies(&[&a, &b, &c], &[], &BTreeMap::new()).is_ok());
        let c2 = module("c", &["a"]);
        let (_, e) = check_dependencies(&[&a, &b, &c2], &[], &BTreeMap::new()).unwrap_err();
        assert_eq!(e.kind, ErrorKind::Dependency);
        assert!(e.message.contains("a -> b -> c -> a"), "{}", e.message);
        let selfdep = module("a", &["a"]);
        assert!(check_dependencies(&[&selfdep], &[], &BTreeMap::new())
            .unwrap_err()
            .1
            .message
            .contains("itself"));
        let unknown = module("a", &["zz"]);
        let (i, e) = check_dependencies(&[&c, &unknown], &[], &BTreeMap::new()).unwrap_err();
        assert_eq!((i, e.field.as_str()), (1, "spec.dependsOn[0]"));
        // Diamond: no cycle.
        let (d1, d2, d3, d4) = (
            module("d1", &["d2", "d3"]),
            module("d2", &["d4"]),
            module("d3", &["d4"]),
            module("d4", &[]),
        );
        assert!(check_dependencies(&[&d1, &d2, &d3, &d4], &[], &BTreeMap::new()).is_ok());
    }

    #[test]
    fn dependencies_on_adopted_crs() {
        let a = module("a", &["legacy"]);
        let names: BTreeMap<String, String> = [("a".to_string(), "shop-a".to_string())].into();
        let legacy = AdoptedNode {
            name: "legacy".into(),
            depends_on: vec!["outside".into()],
        };
        assert!(check_dependencies(&[&a], &[legacy], &names).is_ok());
        // legacy depends back on a's CR: a cycle through the adopted CR, reported on module a.
        let legacy = AdoptedNode {
            name: "legacy".into(),
            depends_on: vec!["shop-a".into()],
        };
        let (i, e) = check_dependencies(&[&a], &[legacy], &names).unwrap_err();
        assert_eq!((i, e.field.as_str()), (0, "spec.dependsOn[0]"));
        assert!(
            e.message.contains("a -> Terraform \"legacy\" -> a"),
            "{}",
            e.message
        );
        // Cycles among adopted CRs alone are not ours to judge.
        let x = AdoptedNode {
            name: "x".into(),
            depends_on: vec!["y".into()],
        };
        let y = AdoptedNode {
            name: "y".into(),
            depends_on: vec!["x".into()],
        };
        assert!(check_dependencies(&[], &[x, y], &BTreeMap::new()).is_ok());
    }

    #[test]
    fn names_from_patterns() {
        let n = module_names(&module("db", &[]), &CatalogConfig::default(), &rc()).unwrap();
        assert_eq!(n.terraform, "shop-db");
        assert_eq!(n.source, "shop-db");
        assert_eq!(n.runner_service_account, "shop-db-tf-runner");
        assert_eq!(n.outputs_secret, "shop-db-outputs");
        let mut cfg = CatalogConfig::default();
        cfg.naming.terraform = "{{chart}}.{{module}}".into();
        let e = module_names(&module("db", &[]), &cfg, &rc()).unwrap_err();
        assert_eq!(e.kind, ErrorKind::Name, "dots are not allowed in a label");
    }

    #[test]
    fn source_ref_module_without_runner_creation() {
        let mut cfg = CatalogConfig::default();
        cfg.runner.service_account.create = false;
        let m = module("db", &[]);
        let names = module_names(&m, &cfg, &rc()).unwrap();
        let objs = expand(&m, &names, &BTreeMap::new(), &cfg, &rc()).unwrap();
        assert_eq!(objs.len(), 1);
        let tf = &objs[0];
        assert_eq!(
            tf["spec"]["sourceRef"],
            json!({"kind": "GitRepository", "name": "shared"})
        );
        assert_eq!(tf["spec"]["serviceAccountName"], "shop-db-tf-runner");
        assert_eq!(tf["metadata"]["namespace"], "prod");
        assert_eq!(tf["metadata"]["annotations"]["tfops.dev/guard"], "client");
        assert_eq!(tf["spec"]["destroyResourcesOnDeletion"], true);
        assert_eq!(tf["spec"]["enableInventory"], true);
    }

    #[test]
    fn module_overrides_are_merged_last_and_can_remove_fields() {
        let mut m = module("db", &[]);
        m.spec.terraform = Some(
            json!({"writeOutputsToSecret": null, "interval": "1m"})
                .as_object()
                .cloned()
                .unwrap(),
        );
        let mut cfg = CatalogConfig::default();
        cfg.overlays.push(crate::config::Overlay {
            target: crate::config::OverlayTarget {
                kind: "Terraform".into(),
                name: None,
                module: None,
            },
            merge_patch: json!({"spec": {"interval": "2m", "suspend": true}}),
        });
        let names = module_names(&m, &cfg, &rc()).unwrap();
        let objs = expand(&m, &names, &BTreeMap::new(), &cfg, &rc()).unwrap();
        let tf = objs.last().unwrap();
        assert_eq!(tf["spec"]["interval"], "1m");
        assert_eq!(tf["spec"]["suspend"], true);
        assert!(tf["spec"].get("writeOutputsToSecret").is_none());
    }
}
