//! Adoption of `Terraform` CRs the chart already has: add our labels, the resolved policy
//! annotations (keeping and validating values the chart set), the guard mode and the spec
//! hash. Nothing else is rewritten.

use serde_json::Value;
use tfops_api::names;

use crate::config::CatalogConfig;
use crate::error::ErrorKind;
use crate::expand::{annotate_policy, resolve_policy, ExpandError, GuardMode, ReleaseContext};
use crate::intent::{OnFailure, UninstallPolicy};
use crate::meta;
use tfops_api::GoDuration;

fn err(field: String, message: String) -> ExpandError {
    ExpandError {
        kind: ErrorKind::Adoption,
        field,
        message,
    }
}

fn chart_annotation<'a>(object: &'a Value, key: &str) -> Result<Option<&'a str>, ExpandError> {
    match meta::annotation(object, key) {
        None | Some(Value::Null) => Ok(None),
        Some(Value::String(s)) => Ok(Some(s.as_str())),
        Some(other) => Err(err(
            format!("metadata.annotations[{key}]"),
            format!("must be a string, got {other}"),
        )),
    }
}

/// Adopt `object` (a parsed `Terraform` CR), returning the warnings it produced.
pub fn adopt(
    object: &mut Value,
    cfg: &CatalogConfig,
    rc: &ReleaseContext,
) -> Result<Vec<String>, ExpandError> {
    let mut warnings = Vec::new();
    let name = meta::name(object)
        .ok_or_else(|| err("metadata.name".into(), "missing".into()))?
        .to_string();
    let field = |k: &str| format!("metadata.annotations[{k}]");

    // Policy: chart annotation → derived from the spec → catalog defaults → built-in.
    let mut policy = resolve_policy(None, cfg);
    let destroys = object
        .pointer("/spec/destroyResourcesOnDeletion")
        .and_then(Value::as_bool)
        .unwrap_or(false);
    policy.policy = match chart_annotation(object, names::ANN_UNINSTALL_POLICY)? {
        Some(v) => {
            let p = v
                .parse::<UninstallPolicy>()
                .map_err(|e| err(field(names::ANN_UNINSTALL_POLICY), e.to_string()))?;
            if (p == UninstallPolicy::Destroy) != destroys {
                warnings.push(format!(
                    "Terraform {name:?}: annotation {}={v} but spec.destroyResourcesOnDeletion is {destroys}; tofu-controller follows the spec",
                    names::ANN_UNINSTALL_POLICY
                ));
            }
            p
        }
        // The controller follows the spec; the annotation must tell the truth about it.
        None if destroys => UninstallPolicy::Destroy,
        None => UninstallPolicy::Retain,
    };
    if let Some(v) = chart_annotation(object, names::ANN_ON_FAILURE)? {
        policy.on_failure = v
            .parse::<OnFailure>()
            .map_err(|e| err(field(names::ANN_ON_FAILURE), e.to_string()))?;
    }
    if let Some(v) = chart_annotation(object, names::ANN_RETRIES)? {
        policy.retries = v.parse::<u32>().map_err(|_| {
            err(
                field(names::ANN_RETRIES),
                format!("{v:?} is not a non-negative integer"),
            )
        })?;
    }
    if let Some(v) = chart_annotation(object, names::ANN_TIMEOUT)? {
        GoDuration::parse(v).map_err(|m| err(field(names::ANN_TIMEOUT), m.to_string()))?;
        policy.timeout = v.to_string();
    }
    if let Some(v) = chart_annotation(object, names::ANN_GUARD)? {
        if v != rc.guard.as_str() {
            warnings.push(format!(
                "Terraform {name:?}: annotation {}={v} replaced by {} (decided by the Helm version)",
                names::ANN_GUARD,
                rc.guard.as_str()
            ));
        }
    }
    if rc.guard == GuardMode::Hook
        && object
            .pointer("/metadata/annotations/helm.sh~1hook")
            .is_some()
    {
        return Err(err(
            "metadata.annotations[helm.sh/hook]".into(),
            "a Terraform CR managed by tfops must be an ordinary release object, not a Helm hook"
                .into(),
        ));
    }
    if object.pointer("/spec/enableInventory") != Some(&Value::Bool(true)) {
        warnings.push(format!(
            "Terraform {name:?}: spec.enableInventory is not true; tofu-controller then keeps status.inventory empty and an orphan ledger entry of it would list no cloud resources (set enableInventory: true)"
        ));
    }
    meta::set_label(object, names::LABEL_RELEASE, &rc.release);
    meta::set_label(object, names::LABEL_MODULE, &name);
    annotate_policy(object, &policy, rc.guard);
    crate::hash::stamp(object);
    Ok(warnings)
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn rc() -> ReleaseContext {
        ReleaseContext {
            release: "shop".into(),
            namespace: Some("prod".into()),
            chart: None,
            guard: GuardMode::Hook,
        }
    }

    #[test]
    fn adds_labels_and_resolved_annotations_only() {
        let mut cr = json!({
            "apiVersion": "infra.contrib.fluxcd.io/v1alpha2", "kind": "Terraform",
            "metadata": {"name": "legacy", "annotations": {"tfops.dev/retries": "5"}},
            "spec": {"interval": "1m", "destroyResourcesOnDeletion": true, "enableInventory": true, "sourceRef": {"kind": "GitRepository", "name": "x"}}
        });
        let before_spec = cr["spec"].clone();
        let w = adopt(&mut cr, &CatalogConfig::default(), &rc()).unwrap();
        assert!(w.is_empty());
        assert_eq!(cr["spec"], before_spec);
        let a = &cr["metadata"]["annotations"];
        assert_eq!(a["tfops.dev/retries"], "5");
        assert_eq!(a["tfops.dev/uninstall-policy"], "destroy");
        assert_eq!(a["tfops.dev/on-failure"], "orphan");
        assert_eq!(a["tfops.dev/timeout"], "10m");
        assert_eq!(a["tfops.dev/guard"], "hook");
        assert_eq!(cr["metadata"]["labels"]["tfops.dev/module"], "legacy");
        assert_eq!(cr["metadata"]["labels"]["tfops.dev/release"], "shop");
        assert_eq!(
            a["tfops.dev/spec-sha256"].as_str().unwrap(),
            crate::hash::spec_sha256(&cr)
        );
    }

    #[test]
    fn policy_follows_spec_when_not_annotated() {
        let mut cr = json!({"kind": "Terraform", "metadata": {"name": "a"}, "spec": {}});
        adopt(&mut cr, &CatalogConfig::default(), &rc()).unwrap();
        assert_eq!(
            cr["metadata"]["annotations"]["tfops.dev/uninstall-policy"],
            "retain"
        );
    }

    #[test]
    fn conflicting_annotation_warns() {
        let mut cr = json!({"kind": "Terraform", "metadata": {"name": "a", "annotations": {"tfops.dev/uninstall-policy": "destroy"}}, "spec": {"enableInventory": true}});
        let w = adopt(&mut cr, &CatalogConfig::default(), &rc()).unwrap();
        assert_eq!(w.len(), 1);
    }

    #[test]
    fn a_cr_without_inventory_warns_and_is_left_as_it_is() {
        let mut cr = json!({"kind": "Terraform", "metadata": {"name": "a"}, "spec": {"destroyResourcesOnDeletion": true}});
        let w = adopt(&mut cr, &CatalogConfig::default(), &rc()).unwrap();
        assert_eq!(w.len(), 1, "{w:?}");
        assert!(w[0].contains("spec.enableInventory"), "{w:?}");
        assert!(cr["spec"].get("enableInventory").is_none());
    }

    #[test]
    fn bad_chart_values_are_errors_naming_the_annotation() {
        for (k, v) in [
            ("tfops.dev/uninstall-policy", json!("maybe")),
            ("tfops.dev/on-failure", json!("panic")),
            ("tfops.dev/retries", json!("-1")),
            ("tfops.dev/timeout", json!("10 minutes")),
            ("tfops.dev/retries", json!(3)),
        ] {
            let mut cr = json!({"kind": "Terraform", "metadata": {"name": "a", "annotations": {k: v}}, "spec": {}});
            let e = adopt(&mut cr, &CatalogConfig::default(), &rc()).unwrap_err();
            assert_eq!(e.field, format!("metadata.annotations[{k}]"));
        }
    }
}
