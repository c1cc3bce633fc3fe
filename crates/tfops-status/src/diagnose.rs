//! Doctor findings, pure: one `Terraform` CR + what `tfops_guard::probe::probe_environment`
//! observed around it (+ the optional active controller probe) → what would block (or is
//! blocking) its deletion, each with the exact command that fixes it.
//!
//! | Check                 | Blocking when                                              | Fix                                               |
//! |-----------------------|------------------------------------------------------------|---------------------------------------------------|
//! | `source-missing`      | the Flux source object is gone                             | re-create the source (`helm rollback`), or `helm tfops uninstall` (also after the release is gone) |
//! | `source-no-artifact`  | the source exists without `status.artifact`                | `flux reconcile source <oci|git|bucket> NAME -n NS` |
//! | `runner-sa-missing`   | the runner ServiceAccount is gone                          | `kubectl create serviceaccount` + rolebinding     |
//! | `vars-from-missing`   | a required `varsFrom` Secret/ConfigMap is gone             | re-create it (`kubectl create secret generic …`)  |
//! | `backend-config-missing` | a required `backendConfigsFrom` object is gone          | re-create it                                      |
//! | `dependants-present`  | the CR is being deleted while dependants still exist (else info: the guard deletes dependants first) | `kubectl delete terraform DEP -n NS` |
//! | `stale-dependant-finalizer` | a `tf.dependency.of.X` finalizer names a CR that is gone | `helm tfops uninstall RELEASE` (force-removes with a ledger entry) |
//! | `suspended`           | `spec.suspend: true` (the controller skips deletion)       | `kubectl patch … {"spec":{"suspend":false}}`      |
//! | `state-lock-held`     | `status.lock.pending` is set                               | `kubectl patch … {"spec":{"tfstate":{"forceUnlock":"yes","lockIdentifier":ID}}}` |
//! | `namespace-terminating` | the namespace is terminating                             | `helm tfops uninstall RELEASE` (orphan / force with ledger) |
//! | `controller-not-answering` | `requestedAt` not echoed (probe timed out, or outstanding on the CR) | check the tofu-controller Deployment |
//! | `permission-unknown`  | never (warning): a lookup was forbidden                    | run with more permissions                         |

use serde::Serialize;
use tfops_guard::core::findings::{ControllerAnswer, Findings as Environment};
use tfops_guard::machine::Presence;
use tfops_guard::tfobj::ObjectRef;

use crate::state::shell_quote;
use tfops_api::TerraformView;

/// How bad a finding is.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Severity {
    Info,
    Warning,
    Blocking,
}

/// One finding about one CR.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct Finding {
    pub check: &'static str,
    pub severity: Severity,
    pub message: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub fix: Option<String>,
}

/// Result of the active controller probe (`--probe-controller`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(rename_all = "camelCase")]
pub enum ControllerProbe {
    /// `status.lastHandledReconcileAt` echoed the value within the bound.
    Answered { after_ms: u64 },
    /// Not echoed within `waited_secs`.
    NoAnswer { waited_secs: u64 },
}

/// All findings for one CR.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct Diagnosis {
    pub namespace: String,
    pub name: String,
    pub module: String,
    pub deleting: bool,
    pub findings: Vec<Finding>,
}

impl Diagnosis {
    pub fn blocking(&self) -> bool {
        self.findings
            .iter()
            .any(|f| f.severity == Severity::Blocking)
    }
}

fn patch_cmd(name: &str, ns: &str, patch: &serde_json::Value) -> String {
    format!(
        "kubectl patch terraform {} -n {} --type merge -p {}",
        shell_quote(name),
        shell_quote(ns),
        shell_quote(&patch.to_string())
    )
}

fn flux_kind(kind: &str) -> &str {
    match kind {
        "OCIRepository" => "oci",
        "GitRepository" => "git",
        "Bucket" => "bucket",
        other => other,
    }
}

fn recreate_ref_fix(r: &ObjectRef) -> String {
    match r.kind.as_str() {
        "Secret" => format!(
            "kubectl create secret generic {} -n {} --from-literal=KEY=VALUE  # with the keys the module reads",
            shell_quote(&r.name),
            shell_quote(&r.namespace)
        ),
        "ConfigMap" => format!(
            "kubectl create configmap {} -n {} --from-literal=KEY=VALUE  # with the keys the module reads",
            shell_quote(&r.name),
            shell_quote(&r.namespace)
        ),
        _ => format!("re-create {r}"),
    }
}

/// Diagnose one CR of `release` from its probed environment.
pub fn diagnose(
    tf: &TerraformView<'_>,
    env: &Environment,
    probe: Option<&ControllerProbe>,
    release: &str,
) -> Diagnosis {
    let (name, ns) = (tf.name(), tf.namespace());
    let deleting = tf.deleting();
    let uninstall = format!("helm tfops uninstall {}", shell_quote(release));
    let mut f = Vec::new();
    let mut add = |check, severity, message: String, fix: Option<String>| {
        f.push(Finding {
            check,
            severity,
            message,
            fix,
        })
    };

    match (&env.source.reference, env.source.presence) {
        (Some(r), Presence::Missing) => add(
            "source-missing",
            Severity::Blocking,
            format!("source {r} is missing: the controller cannot delete (or destroy) without it"),
            Some(format!(
                "re-create the source (helm rollback {} while the release exists), or {uninstall} to orphan / force-remove with a ledger entry (also once the release is gone)",
                shell_quote(release)
            )),
        ),
        (Some(r), Presence::Present) if !env.source.has_artifact => add(
            "source-no-artifact",
            Severity::Blocking,
            format!("source {r} has no artifact"),
            Some(format!(
                "flux reconcile source {} {} -n {}",
                flux_kind(&r.kind),
                shell_quote(&r.name),
                shell_quote(&r.namespace)
            )),
        ),
        (Some(r), Presence::Unknown) => add(
            "permission-unknown",
            Severity::Warning,
            format!("source {r} could not be read (forbidden or unknown kind)"),
            None,
        ),
        (None, _) => add(
            "source-missing",
            Severity::Blocking,
            "spec.sourceRef is not set".to_owned(),
            Some(uninstall.clone()),
        ),
        _ => {}
    }
    match env.runner_service_account_presence {
        Presence::Missing => {
            let sa = &env.runner_service_account;
            add(
                "runner-sa-missing",
                Severity::Blocking,
                format!("runner ServiceAccount {ns}/{sa} is missing: no runner pod can start"),
                Some(format!(
                    "kubectl create serviceaccount {sa_q} -n {ns_q} && kubectl create rolebinding {sa_q} -n {ns_q} --clusterrole=tf-runner-role --serviceaccount={ns}:{sa}",
                    sa_q = shell_quote(sa),
                    ns_q = shell_quote(ns),
                )),
            )
        }
        Presence::Unknown => add(
            "permission-unknown",
            Severity::Warning,
            format!(
                "runner ServiceAccount {ns}/{} could not be read",
                env.runner_service_account
            ),
            None,
        ),
        Presence::Present => {}
    }
    for r in &env.missing_vars_from {
        add(
            "vars-from-missing",
            Severity::Blocking,
            format!("varsFrom {r} is missing (VarsGenerationFailed)"),
            Some(recreate_ref_fix(r)),
        );
    }
    for r in &env.missing_backend_configs_from {
        add(
            "backend-config-missing",
            Severity::Blocking,
            format!("backendConfigsFrom {r} is missing"),
            Some(recreate_ref_fix(r)),
        );
    }
    if !env.dependants_present.is_empty() {
        let list = env.dependants_present.join(", ");
        let fix = env
            .dependants_present
            .iter()
            .map(|d| {
                format!(
                    "kubectl delete terraform {} -n {}",
                    shell_quote(d),
                    shell_quote(ns)
                )
            })
            .collect::<Vec<_>>()
            .join(" && ");
        if deleting {
            add(
                "dependants-present",
                Severity::Blocking,
                format!("deletion waits for dependants still present: {list}"),
                Some(fix),
            );
        } else {
            add(
                "dependants-present",
                Severity::Info,
                format!("dependants {list} must go first (the guard deletes dependants first)"),
                None,
            );
        }
    }
    if !env.dependants_gone.is_empty() {
        add(
            "stale-dependant-finalizer",
            Severity::Blocking,
            format!(
                "finalizer(s) for dependants that no longer exist: {}",
                env.dependants_gone
                    .iter()
                    .map(|d| tfops_api::names::dependency_finalizer(d))
                    .collect::<Vec<_>>()
                    .join(", ")
            ),
            Some(format!(
                "{uninstall} (removes them with an audited ledger entry)"
            )),
        );
    }
    if env.suspended {
        add(
            "suspended",
            Severity::Blocking,
            "spec.suspend is true: the controller ignores the CR, including its deletion"
                .to_owned(),
            Some(patch_cmd(
                name,
                ns,
                &serde_json::json!({"spec": {"suspend": false}}),
            )),
        );
    }
    if let Some(lock) = &env.lock_pending {
        add(
            "state-lock-held",
            Severity::Blocking,
            format!("Terraform state lock held (lock id {lock})"),
            Some(patch_cmd(
                name,
                ns,
                &serde_json::json!({"spec": {"tfstate": {"forceUnlock": "yes", "lockIdentifier": lock}}}),
            )),
        );
    }
    match env.namespace_terminating {
        Some(true) => add(
            "namespace-terminating",
            Severity::Blocking,
            format!("namespace {ns} is terminating: runner pods and Secrets are going away"),
            Some(format!(
                "{uninstall} (orphans or force-removes with a ledger entry within its budget)"
            )),
        ),
        None => add(
            "permission-unknown",
            Severity::Info,
            format!("namespace {ns} could not be read; terminating state unknown"),
            None,
        ),
        Some(false) => {}
    }
    let controller_fix = "kubectl get deploy -A -l app.kubernetes.io/name=tofu-controller && kubectl logs -n flux-system deploy/tofu-controller --tail=50".to_owned();
    match probe {
        Some(ControllerProbe::NoAnswer { waited_secs }) => add(
            "controller-not-answering",
            Severity::Blocking,
            format!("tofu-controller did not handle reconcile.fluxcd.io/requestedAt within {waited_secs}s"),
            Some(controller_fix),
        ),
        Some(ControllerProbe::Answered { .. }) => {}
        None => {
            if let ControllerAnswer::Pending { requested, handled } = &env.controller {
                add(
                    "controller-not-answering",
                    Severity::Warning,
                    format!(
                        "requestedAt {requested} not handled yet (last handled: {}); run with --probe-controller to check actively",
                        handled.as_deref().unwrap_or("never")
                    ),
                    Some(controller_fix),
                );
            }
        }
    }
    Diagnosis {
        namespace: ns.to_owned(),
        name: name.to_owned(),
        module: tf.module().to_owned(),
        deleting,
        findings: f,
    }
}

/// Render diagnoses as text: one block per CR, findings with their fix.
pub fn render_text(diagnoses: &[Diagnosis]) -> String {
    let mut out = String::new();
    for d in diagnoses {
        let verdict = if d.blocking() {
            "deletion BLOCKED"
        } else {
            "deletion can proceed"
        };
        out.push_str(&format!(
            "Terraform {}/{} (module {}): {verdict}{}\n",
            d.namespace,
            d.name,
            d.module,
            if d.deleting { " [being deleted]" } else { "" }
        ));
        if d.findings.is_empty() {
            out.push_str(
                "  ok: source, runner ServiceAccount, vars, dependants, lock, namespace\n",
            );
        }
        for f in &d.findings {
            let tag = match f.severity {
                Severity::Blocking => "BLOCKING",
                Severity::Warning => "warning",
                Severity::Info => "info",
            };
            out.push_str(&format!("  {tag} [{}] {}\n", f.check, f.message));
            if let Some(fix) = &f.fix {
                out.push_str(&format!("    fix: {fix}\n"));
            }
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::fixtures::terraform;
    use serde_json::json;
    use tfops_guard::core::findings::SourceFinding;

    fn oref(kind: &str, name: &str) -> ObjectRef {
        ObjectRef {
            kind: kind.into(),
            namespace: "apps".into(),
            name: name.into(),
            optional: false,
        }
    }

    fn healthy_env() -> Environment {
        Environment {
            source: SourceFinding {
                reference: Some(oref("OCIRepository", "shop-db-src")),
                presence: Presence::Present,
                has_artifact: true,
            },
            runner_service_account: "tf-runner".into(),
            runner_service_account_presence: Presence::Present,
            missing_vars_from: vec![],
            missing_backend_configs_from: vec![],
            dependants_present: vec![],
            dependants_gone: vec![],
            depends_on_gone: vec![],
            runner_pod_presence: Presence::Missing,
            runner_pod: None,
            namespace_terminating: Some(false),
            lock_pending: None,
            controller: ControllerAnswer::Answered,
            suspended: false,
        }
    }

    fn run(env: &Environment, probe: Option<&ControllerProbe>, deleting: bool) -> Diagnosis {
        let mut v = terraform("apps", "shop", "db", "shop-db");
        if deleting {
            v["metadata"]["deletionTimestamp"] = json!("2026-11-26T12:00:00Z");
        }
        diagnose(&TerraformView::new(&v), env, probe, "shop")
    }

    fn checks(d: &Diagnosis) -> Vec<(&'static str, Severity)> {
        d.findings.iter().map(|f| (f.check, f.severity)).collect()
    }

    #[test]
    fn a_healthy_environment_has_no_findings() {
        let d = run(&healthy_env(), None, false);
        assert!(d.findings.is_empty());
        assert!(!d.blocking());
        assert!(render_text(&[d]).contains("deletion can proceed"));
    }

    #[test]
    fn every_blocker_is_named_with_its_fix() {
        let mut env = healthy_env();
        env.source.has_artifact = false;
        env.runner_service_account_presence = Presence::Missing;
        env.missing_vars_from = vec![oref("Secret", "db-vars")];
        env.missing_backend_configs_from = vec![oref("ConfigMap", "backend")];
        env.dependants_present = vec!["shop-app".into()];
        env.dependants_gone = vec!["old-app".into()];
        env.suspended = true;
        env.lock_pending = Some("f2ab685b".into());
        env.namespace_terminating = Some(true);
        let d = run(
            &env,
            Some(&ControllerProbe::NoAnswer { waited_secs: 20 }),
            true,
        );
        assert_eq!(
            checks(&d),
            vec![
                ("source-no-artifact", Severity::Blocking),
                ("runner-sa-missing", Severity::Blocking),
                ("vars-from-missing", Severity::Blocking),
                ("backend-config-missing", Severity::Blocking),
                ("dependants-present", Severity::Blocking),
                ("stale-dependant-finalizer", Severity::Blocking),
                ("suspended", Severity::Blocking),
                ("state-lock-held", Severity::Blocking),
                ("namespace-terminating", Severity::Blocking),
                ("controller-not-answering", Severity::Blocking),
            ]
        );
        let fix = |c: &str| {
            d.findings
                .iter()
                .find(|f| f.check == c)
                .and_then(|f| f.fix.clone())
                .unwrap_or_default()
        };
        assert_eq!(
            fix("source-no-artifact"),
            "flux reconcile source oci shop-db-src -n apps"
        );
        assert_eq!(
            fix("runner-sa-missing"),
            "kubectl create serviceaccount tf-runner -n apps && kubectl create rolebinding tf-runner -n apps --clusterrole=tf-runner-role --serviceaccount=apps:tf-runner"
        );
        assert_eq!(
            fix("suspended"),
            r#"kubectl patch terraform shop-db -n apps --type merge -p '{"spec":{"suspend":false}}'"#
        );
        assert_eq!(
            fix("state-lock-held"),
            r#"kubectl patch terraform shop-db -n apps --type merge -p '{"spec":{"tfstate":{"forceUnlock":"yes","lockIdentifier":"f2ab685b"}}}'"#
        );
        assert_eq!(
            fix("dependants-present"),
            "kubectl delete terraform shop-app -n apps"
        );
        assert!(
            fix("vars-from-missing").starts_with("kubectl create secret generic db-vars -n apps")
        );
        assert!(d.blocking());
    }

    #[test]
    fn missing_source_and_live_dependants() {
        let mut env = healthy_env();
        env.source.presence = Presence::Missing;
        env.dependants_present = vec!["shop-app".into()];
        let d = run(&env, None, false);
        assert_eq!(
            checks(&d),
            vec![
                ("source-missing", Severity::Blocking),
                ("dependants-present", Severity::Info)
            ]
        );
    }

    #[test]
    fn outstanding_request_without_probe_is_a_warning() {
        let mut env = healthy_env();
        env.controller = ControllerAnswer::Pending {
            requested: "2026-11-26T12:00:00Z".into(),
            handled: None,
        };
        env.namespace_terminating = None;
        let d = run(&env, None, false);
        assert_eq!(
            checks(&d),
            vec![
                ("permission-unknown", Severity::Info),
                ("controller-not-answering", Severity::Warning)
            ]
        );
        assert!(!d.blocking());
        let answered = run(
            &env,
            Some(&ControllerProbe::Answered { after_ms: 10 }),
            false,
        );
        assert_eq!(
            checks(&answered),
            vec![("permission-unknown", Severity::Info)]
        );
    }
}
