//! Catalog overlays: JSON merge patches (RFC 7396) applied to the generated objects whose
//! kind / name (exact or glob) / module match.

use serde_json::Value;

use crate::config::Overlay;
use crate::template::{render_value, TemplateContext};

/// Glob match with `*` (any run) and `?` (one character).
pub fn glob_match(pattern: &str, text: &str) -> bool {
    let p: Vec<char> = pattern.chars().collect();
    let t: Vec<char> = text.chars().collect();
    let (mut pi, mut ti) = (0usize, 0usize);
    let (mut star, mut mark) = (None::<usize>, 0usize);
    while ti < t.len() {
        if pi < p.len() && (p[pi] == '?' || p[pi] == t[ti]) {
            pi += 1;
            ti += 1;
        } else if pi < p.len() && p[pi] == '*' {
            star = Some(pi);
            mark = ti;
            pi += 1;
        } else if let Some(s) = star {
            pi = s + 1;
            mark += 1;
            ti = mark;
        } else {
            return false;
        }
    }
    while pi < p.len() && p[pi] == '*' {
        pi += 1;
    }
    pi == p.len()
}

/// Whether `overlay` targets this object.
pub fn matches(overlay: &Overlay, kind: &str, name: &str, module: Option<&str>) -> bool {
    let t = &overlay.target;
    t.kind == kind
        && t.name.as_deref().is_none_or(|n| glob_match(n, name))
        && t.module.as_deref().is_none_or(|m| Some(m) == module)
}

/// Apply every matching overlay, in order. `Err((index, message))` on a template error.
pub fn apply_all(
    overlays: &[Overlay],
    object: &mut Value,
    module: Option<&str>,
    ctx: &TemplateContext,
) -> Result<(), (usize, String)> {
    let kind = object
        .get("kind")
        .and_then(Value::as_str)
        .unwrap_or("")
        .to_string();
    let name = crate::meta::name(object).unwrap_or("").to_string();
    for (i, overlay) in overlays.iter().enumerate() {
        if matches(overlay, &kind, &name, module) {
            let patch = render_value(&overlay.merge_patch, ctx).map_err(|e| (i, e))?;
            json_patch::merge(object, &patch);
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::OverlayTarget;
    use serde_json::json;

    #[test]
    fn globs() {
        assert!(glob_match("*", ""));
        assert!(glob_match("shop-*", "shop-orders-db"));
        assert!(glob_match("*-db", "shop-orders-db"));
        assert!(glob_match("s?op-*-db", "shop-orders-db"));
        assert!(!glob_match("shop-*", "web-orders"));
        assert!(glob_match("exact", "exact"));
        assert!(!glob_match("exact", "exact2"));
        assert!(glob_match("a*b*c", "aXbYc"));
        assert!(!glob_match("a*b*c", "aXbY"));
    }

    #[test]
    fn applies_matching_patches_in_order() {
        let overlays = vec![
            Overlay {
                target: OverlayTarget {
                    kind: "Terraform".into(),
                    name: Some("*-db".into()),
                    module: None,
                },
                merge_patch: json!({"spec": {"runnerPodTemplate": {"metadata": {"annotations": {"team": "{{release}}"}}}}}),
            },
            Overlay {
                target: OverlayTarget {
                    kind: "Terraform".into(),
                    name: None,
                    module: Some("other".into()),
                },
                merge_patch: json!({"spec": {"suspend": true}}),
            },
            Overlay {
                target: OverlayTarget {
                    kind: "Terraform".into(),
                    name: None,
                    module: Some("db".into()),
                },
                merge_patch: json!({"spec": {"interval": null}}),
            },
        ];
        let mut obj = json!({"kind": "Terraform", "metadata": {"name": "shop-db"}, "spec": {"interval": "1m"}});
        let ctx = TemplateContext {
            release: "shop".into(),
            ..Default::default()
        };
        apply_all(&overlays, &mut obj, Some("db"), &ctx).unwrap();
        assert_eq!(
            obj["spec"],
            json!({"runnerPodTemplate": {"metadata": {"annotations": {"team": "shop"}}}})
        );
    }
}
