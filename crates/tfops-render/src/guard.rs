//! Guard injection (Helm 4 input): ServiceAccount, least-privilege Role and RoleBinding
//! (ordinary release objects, alive while pre-delete hooks run) and the `pre-delete` hook Job
//! running `tfops guard` within the configured budget.

use serde_json::{json, Map, Value};
use tfops_api::names;

use crate::config::CatalogConfig;
use crate::error::ErrorKind;
use crate::expand::{ExpandError, ReleaseContext};
use crate::meta;
use crate::naming::{self, NameRule};
use crate::template;

/// Budgets at or above this (Helm's default `--timeout`, 5m) get a warning.
pub const HELM_DEFAULT_TIMEOUT_SECS: u64 = 300;

fn err(field: &str, message: String) -> ExpandError {
    ExpandError {
        kind: ErrorKind::Config,
        field: format!("config: {field}"),
        message,
    }
}

/// The guard objects' shared name: `<release>-tfops-guard`, shortened to ≤ 63.
pub fn guard_name(release: &str) -> Result<String, String> {
    naming::finish(&format!("{release}-tfops-guard"), NameRule::Label)
}

fn object(api: &str, kind: &str, name: &str, namespace: Option<&str>) -> Value {
    let mut metadata = Map::new();
    metadata.insert("name".into(), json!(name));
    if let Some(ns) = namespace {
        metadata.insert("namespace".into(), json!(ns));
    }
    json!({"apiVersion": api, "kind": kind, "metadata": Value::Object(metadata)})
}

/// Namespace-scoped rules of the guard Role (see the contracts).
/// tofu-controller v0.16.5's leader-election Lease (`cmd/manager/main.go` line 174).
pub const CONTROLLER_LEASE_NAME: &str = names::TF_LEADER_LEASE;

pub fn guard_rules() -> Value {
    json!([
        {"apiGroups": [names::TF_GROUP], "resources": [names::TF_PLURAL], "verbs": ["get", "list", "watch", "patch", "delete"]},
        {"apiGroups": ["source.toolkit.fluxcd.io"], "resources": ["ocirepositories", "gitrepositories", "buckets"], "verbs": ["get", "list"]},
        {"apiGroups": [""], "resources": ["serviceaccounts", "configmaps"], "verbs": ["get"]},
        {"apiGroups": ["rbac.authorization.k8s.io"], "resources": ["rolebindings"], "verbs": ["list"]},
        {"apiGroups": [""], "resources": ["pods"], "verbs": ["get"]},
        {"apiGroups": [""], "resources": ["secrets"], "verbs": ["get", "list", "create", "patch"]},
        {"apiGroups": [""], "resources": ["events"], "verbs": ["create", "patch"]},
        {"apiGroups": ["coordination.k8s.io"], "resources": ["leases"], "verbs": ["get", "list"]}
    ])
}

/// Build the guard objects. Returns (objects, warnings). Objects are labelled and hashed;
/// the pipeline adds the Helm 4 filename annotation.
pub fn guard_objects(
    cfg: &CatalogConfig,
    rc: &ReleaseContext,
) -> Result<(Vec<Value>, Vec<String>), ExpandError> {
    let mut warnings = Vec::new();
    let ctx = rc.template_context(None);
    let name = guard_name(&rc.release).map_err(|m| ExpandError {
        kind: ErrorKind::Release,
        field: String::new(),
        message: m,
    })?;
    let ns = rc.namespace.as_deref();
    let image = template::render(&cfg.guard.image, &ctx).map_err(|m| err("guard.image", m))?;
    if image.is_empty() {
        return Err(err("guard.image", "must not be empty".into()));
    }
    let ledger_ns = match &cfg.guard.ledger_namespace {
        Some(t) => {
            let v = template::render(t, &ctx).map_err(|m| err("guard.ledgerNamespace", m))?;
            naming::validate(&v, NameRule::Label).map_err(|m| err("guard.ledgerNamespace", m))?;
            Some(v)
        }
        None => None,
    };
    let budget = cfg.guard.budget.as_secs();
    if budget >= HELM_DEFAULT_TIMEOUT_SECS {
        warnings.push(format!(
            "guard budget {} is not shorter than Helm's default --timeout (5m); pass a longer --timeout to helm uninstall",
            cfg.guard.budget
        ));
    }
    let subject_ns = ns.unwrap_or("default");
    let mut objects = Vec::new();

    objects.push(object("v1", "ServiceAccount", &name, ns));

    let mut role = object("rbac.authorization.k8s.io/v1", "Role", &name, ns);
    role["rules"] = guard_rules();
    objects.push(role);

    let mut rb = object("rbac.authorization.k8s.io/v1", "RoleBinding", &name, ns);
    rb["roleRef"] = json!({"apiGroup": "rbac.authorization.k8s.io", "kind": "Role", "name": name});
    rb["subjects"] = json!([{"kind": "ServiceAccount", "name": name, "namespace": subject_ns}]);
    objects.push(rb);

    if let Some(lns) = ledger_ns.as_deref().filter(|l| Some(*l) != ns) {
        let mut role = object("rbac.authorization.k8s.io/v1", "Role", &name, Some(lns));
        role["rules"] = json!([{"apiGroups": [""], "resources": ["secrets"], "verbs": ["get", "list", "create", "patch"]}]);
        objects.push(role);
        let mut rb = object(
            "rbac.authorization.k8s.io/v1",
            "RoleBinding",
            &name,
            Some(lns),
        );
        rb["roleRef"] =
            json!({"apiGroup": "rbac.authorization.k8s.io", "kind": "Role", "name": name});
        rb["subjects"] = json!([{"kind": "ServiceAccount", "name": name, "namespace": subject_ns}]);
        objects.push(rb);
    }

    let controller_ns = match &cfg.guard.controller_namespace {
        Some(t) => {
            let v = template::render(t, &ctx).map_err(|m| err("guard.controllerNamespace", m))?;
            naming::validate(&v, NameRule::Label)
                .map_err(|m| err("guard.controllerNamespace", m))?;
            Some(v)
        }
        None => None,
    };
    if let Some(cns) = controller_ns.as_deref() {
        // Least privilege: `get` on exactly tofu-controller's leader-election Lease.
        let mut role = object("rbac.authorization.k8s.io/v1", "Role", &name, Some(cns));
        role["rules"] = json!([{"apiGroups": ["coordination.k8s.io"], "resources": ["leases"], "resourceNames": [CONTROLLER_LEASE_NAME], "verbs": ["get"]}]);
        objects.push(role);
        let mut rb = object(
            "rbac.authorization.k8s.io/v1",
            "RoleBinding",
            &name,
            Some(cns),
        );
        rb["roleRef"] =
            json!({"apiGroup": "rbac.authorization.k8s.io", "kind": "Role", "name": name});
        rb["subjects"] = json!([{"kind": "ServiceAccount", "name": name, "namespace": subject_ns}]);
        objects.push(rb);
    }

    let mut args = vec![json!("--release"), json!(rc.release), json!("--namespace")];
    let mut env = Vec::new();
    match ns {
        Some(n) => args.push(json!(n)),
        None => {
            // Unknown at render time: let Kubernetes expand the pod's own namespace.
            args.push(json!("$(TFOPS_POD_NAMESPACE)"));
            env.push(json!({"name": "TFOPS_POD_NAMESPACE", "valueFrom": {"fieldRef": {"fieldPath": "metadata.namespace"}}}));
        }
    }
    args.push(json!("--budget"));
    args.push(json!(format!("{budget}s")));
    if let Some(l) = &ledger_ns {
        args.push(json!("--ledger-namespace"));
        args.push(json!(l));
    }
    match &controller_ns {
        Some(cns) => {
            args.push(json!("--controller-namespace"));
            args.push(json!(cns));
        }
        None => {
            // No permission to read the Lease: do not ask (liveness stays unknown).
            args.push(json!("--controller-namespace="));
        }
    }
    if !cfg.guard.classifier_rules.is_empty() {
        let rules = serde_json::to_string(&cfg.guard.classifier_rules)
            .map_err(|e| err("guard.classifierRules", e.to_string()))?;
        env.push(json!({"name": "TFOPS_CLASSIFIER_RULES", "value": rules}));
    }
    let mut container = json!({
        "name": "guard",
        "image": image,
        "imagePullPolicy": "IfNotPresent",
        "command": ["tfops", "guard"],
        "args": args,
        "securityContext": {
            "runAsNonRoot": true,
            "readOnlyRootFilesystem": true,
            "allowPrivilegeEscalation": false,
            "capabilities": {"drop": ["ALL"]},
            "seccompProfile": {"type": "RuntimeDefault"}
        },
        "resources": {"requests": {"cpu": "10m", "memory": "32Mi"}, "limits": {"memory": "128Mi"}}
    });
    if !env.is_empty() {
        container["env"] = Value::Array(env);
    }
    let mut job = object("batch/v1", "Job", &name, ns);
    meta::set_annotation(&mut job, "helm.sh/hook", "pre-delete");
    meta::set_annotation(&mut job, "helm.sh/hook-weight", "-10");
    meta::set_annotation(
        &mut job,
        "helm.sh/hook-delete-policy",
        "before-hook-creation,hook-succeeded",
    );
    job["spec"] = json!({
        "backoffLimit": 0,
        "activeDeadlineSeconds": budget + 30,
        "template": {
            "metadata": {"labels": {names::LABEL_RELEASE: rc.release, names::LABEL_COMPONENT: "guard"}},
            "spec": {
                "restartPolicy": "Never",
                "serviceAccountName": name,
                "automountServiceAccountToken": true,
                "securityContext": {"runAsNonRoot": true, "runAsUser": 65532, "runAsGroup": 65532, "seccompProfile": {"type": "RuntimeDefault"}},
                "containers": [container]
            }
        }
    });
    objects.push(job);

    for obj in &mut objects {
        crate::overlay::apply_all(&cfg.overlays, obj, None, &ctx)
            .map_err(|(k, m)| err(&format!("overlays[{k}].mergePatch"), m))?;
        meta::set_label(obj, names::LABEL_RELEASE, &rc.release);
        meta::set_label(obj, names::LABEL_COMPONENT, "guard");
        crate::hash::stamp(obj);
    }
    Ok((objects, warnings))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::{ClassifierRule, FailureClass};
    use crate::expand::GuardMode;

    fn rc(ns: Option<&str>) -> ReleaseContext {
        ReleaseContext {
            release: "shop".into(),
            namespace: ns.map(str::to_string),
            chart: None,
            guard: GuardMode::Hook,
        }
    }

    #[test]
    fn job_follows_the_contract() {
        let (objs, warnings) = guard_objects(&CatalogConfig::default(), &rc(Some("prod"))).unwrap();
        assert!(warnings.is_empty());
        let kinds: Vec<&str> = objs.iter().map(|o| o["kind"].as_str().unwrap()).collect();
        assert_eq!(kinds, ["ServiceAccount", "Role", "RoleBinding", "Job"]);
        let job = &objs[3];
        assert_eq!(job["metadata"]["name"], "shop-tfops-guard");
        assert_eq!(job["metadata"]["namespace"], "prod");
        let a = &job["metadata"]["annotations"];
        assert_eq!(a["helm.sh/hook"], "pre-delete");
        assert_eq!(a["helm.sh/hook-weight"], "-10");
        assert_eq!(
            a["helm.sh/hook-delete-policy"],
            "before-hook-creation,hook-succeeded"
        );
        assert_eq!(job["spec"]["backoffLimit"], 0);
        assert_eq!(job["spec"]["activeDeadlineSeconds"], 270);
        let pod = &job["spec"]["template"]["spec"];
        assert_eq!(pod["restartPolicy"], "Never");
        assert_eq!(pod["serviceAccountName"], "shop-tfops-guard");
        let c = &pod["containers"][0];
        assert_eq!(c["name"], "guard");
        assert_eq!(
            c["image"],
            format!("ghcr.io/helm-tfops/tfops:v{}", env!("CARGO_PKG_VERSION"))
        );
        assert_eq!(c["command"], json!(["tfops", "guard"]));
        assert_eq!(
            c["args"],
            json!([
                "--release",
                "shop",
                "--namespace",
                "prod",
                "--budget",
                "240s",
                "--controller-namespace="
            ])
        );
        assert!(c.get("env").is_none());
        assert_eq!(c["securityContext"]["capabilities"]["drop"], json!(["ALL"]));
        assert_eq!(objs[2]["subjects"][0]["namespace"], "prod");
        assert_eq!(objs[1]["rules"], guard_rules());
    }

    #[test]
    fn ledger_namespace_and_classifier_rules() {
        let mut cfg = CatalogConfig::default();
        cfg.guard.ledger_namespace = Some("tfops-ledger".into());
        cfg.guard.classifier_rules = vec![ClassifierRule {
            pattern: "quota".into(),
            reason: None,
            class: FailureClass::Transient,
            why: None,
        }];
        let (objs, _) = guard_objects(&cfg, &rc(Some("prod"))).unwrap();
        assert_eq!(objs.len(), 6);
        assert_eq!(objs[3]["metadata"]["namespace"], "tfops-ledger");
        assert_eq!(objs[3]["rules"][0]["resources"], json!(["secrets"]));
        assert_eq!(objs[4]["subjects"][0]["namespace"], "prod");
        let c = &objs[5]["spec"]["template"]["spec"]["containers"][0];
        assert_eq!(c["args"][6], "--ledger-namespace");
        assert_eq!(c["args"][7], "tfops-ledger");
        assert_eq!(c["env"][0]["name"], "TFOPS_CLASSIFIER_RULES");
        assert_eq!(
            c["env"][0]["value"],
            r#"[{"pattern":"quota","class":"transient"}]"#
        );
    }

    #[test]
    fn unknown_namespace_uses_the_downward_api() {
        let (objs, _) = guard_objects(&CatalogConfig::default(), &rc(None)).unwrap();
        let c = &objs[3]["spec"]["template"]["spec"]["containers"][0];
        assert_eq!(c["args"][3], "$(TFOPS_POD_NAMESPACE)");
        assert_eq!(
            c["env"][0]["valueFrom"]["fieldRef"]["fieldPath"],
            "metadata.namespace"
        );
        assert!(objs[3]["metadata"].get("namespace").is_none());
    }

    #[test]
    fn controller_namespace_grants_get_on_exactly_the_lease() {
        let mut cfg = CatalogConfig::default();
        cfg.guard.controller_namespace = Some("flux-system".into());
        let (objs, _) = guard_objects(&cfg, &rc(Some("prod"))).unwrap();
        let kinds: Vec<(&str, &str)> = objs
            .iter()
            .map(|o| {
                (
                    o["kind"].as_str().unwrap(),
                    o["metadata"]["namespace"].as_str().unwrap_or(""),
                )
            })
            .collect();
        assert_eq!(
            kinds,
            [
                ("ServiceAccount", "prod"),
                ("Role", "prod"),
                ("RoleBinding", "prod"),
                ("Role", "flux-system"),
                ("RoleBinding", "flux-system"),
                ("Job", "prod")
            ]
        );
        assert_eq!(
            objs[3]["rules"],
            json!([{"apiGroups": ["coordination.k8s.io"], "resources": ["leases"], "resourceNames": ["1953de50.contrib.fluxcd.io"], "verbs": ["get"]}])
        );
        assert_eq!(objs[4]["subjects"][0]["namespace"], "prod");
        let c = &objs[5]["spec"]["template"]["spec"]["containers"][0];
        assert_eq!(c["args"][6], "--controller-namespace");
        assert_eq!(c["args"][7], "flux-system");
        // Without it the guard is told not to look (it could not read the Lease anyway).
        let (objs, _) = guard_objects(&CatalogConfig::default(), &rc(Some("prod"))).unwrap();
        let c = &objs[3]["spec"]["template"]["spec"]["containers"][0];
        assert_eq!(c["args"][6], "--controller-namespace=");
    }

    #[test]
    fn long_budget_warns() {
        let mut cfg = CatalogConfig::default();
        cfg.guard.budget = tfops_api::GoDuration::parse("10m").unwrap();
        let (_, w) = guard_objects(&cfg, &rc(Some("prod"))).unwrap();
        assert_eq!(w.len(), 1);
    }
}
