//! CustomResourceDefinition schemas: when a CRD for a served resource is stored in the cluster
//! (seeded from the real upstream files, e.g. `ClusterOptions::with_shared_crds()`), writes of
//! that resource are pruned and validated against its `openAPIV3Schema` the way the real API
//! server does: schema defaults are filled in, unknown fields are dropped (or rejected with
//! `fieldValidation=Strict`, which Helm sends), `null` in non-nullable fields is dropped, and
//! schema violations answer 422 Invalid naming the field. Pure.

use serde_json::Value;
use std::sync::Arc;

/// One served version's schema, compiled.
pub struct VersionSchema {
    /// The raw `openAPIV3Schema` (for pruning).
    pub schema: Value,
    /// The compiled validator.
    pub validator: jsonschema::Validator,
}

impl std::fmt::Debug for VersionSchema {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("VersionSchema").finish_non_exhaustive()
    }
}

/// (group, plural, version) and its schema, from one CRD object.
pub type CrdEntry = ((String, String, String), Arc<VersionSchema>);

/// Compile every served version of a CRD object. Versions without a schema are skipped.
pub fn compile(crd: &Value) -> Result<Vec<CrdEntry>, String> {
    let group = crd
        .pointer("/spec/group")
        .and_then(Value::as_str)
        .unwrap_or("");
    let plural = crd
        .pointer("/spec/names/plural")
        .and_then(Value::as_str)
        .unwrap_or("");
    let mut out = Vec::new();
    for v in crd
        .pointer("/spec/versions")
        .and_then(Value::as_array)
        .into_iter()
        .flatten()
    {
        let name = v.get("name").and_then(Value::as_str).unwrap_or("");
        let Some(schema) = v.pointer("/schema/openAPIV3Schema") else {
            continue;
        };
        let validator = jsonschema::validator_for(schema)
            .map_err(|e| format!("CRD {plural}.{group} {name}: invalid openAPIV3Schema: {e}"))?;
        out.push((
            (group.to_string(), plural.to_string(), name.to_string()),
            Arc::new(VersionSchema {
                schema: schema.clone(),
                validator,
            }),
        ));
    }
    Ok(out)
}

fn is_true(s: &Value, key: &str) -> bool {
    s.get(key).and_then(Value::as_bool) == Some(true)
}

fn join(path: &str, key: &str) -> String {
    if path.is_empty() {
        key.to_string()
    } else {
        format!("{path}.{key}")
    }
}

/// Fill in schema defaults, drop fields the structural schema does not know (returned as
/// dotted paths) and `null`s in non-nullable fields. `apiVersion`, `kind` and `metadata` of the root (and of embedded
/// resources) are kept.
pub fn prune(v: &mut Value, schema: &Value) -> Vec<String> {
    let mut out = Vec::new();
    prune_at(v, schema, "", true, &mut out);
    out
}

fn prune_at(v: &mut Value, s: &Value, path: &str, root: bool, out: &mut Vec<String>) {
    match v {
        Value::Object(m) => {
            let preserve = is_true(s, "x-kubernetes-preserve-unknown-fields");
            let embedded = root || is_true(s, "x-kubernetes-embedded-resource");
            let props = s.get("properties").and_then(Value::as_object);
            let addl = s.get("additionalProperties");
            // Structural defaulting: missing properties with a `default` get it.
            if let Some(props) = props {
                for (k, ps) in props {
                    if let Some(d) = ps.get("default") {
                        if !m.contains_key(k) {
                            m.insert(k.clone(), d.clone());
                        }
                    }
                }
            }
            let keys: Vec<String> = m.keys().cloned().collect();
            for k in keys {
                if embedded && matches!(k.as_str(), "apiVersion" | "kind" | "metadata") {
                    continue;
                }
                let child = props
                    .and_then(|p| p.get(&k))
                    .or_else(|| addl.filter(|a| a.is_object()));
                match child {
                    Some(cs) => {
                        if m.get(&k).is_some_and(Value::is_null) && !is_true(cs, "nullable") {
                            m.remove(&k);
                            continue;
                        }
                        if let Some(x) = m.get_mut(&k) {
                            prune_at(x, cs, &join(path, &k), false, out);
                        }
                    }
                    None => {
                        let keep = preserve || addl.and_then(Value::as_bool) == Some(true);
                        if !keep {
                            m.remove(&k);
                            out.push(join(path, &k));
                        }
                    }
                }
            }
        }
        Value::Array(a) => {
            if let Some(items) = s.get("items") {
                for (i, x) in a.iter_mut().enumerate() {
                    prune_at(x, items, &format!("{path}[{i}]"), false, out);
                }
            }
        }
        _ => {}
    }
}

fn strip_nulls(v: &mut Value) {
    match v {
        Value::Object(m) => {
            m.retain(|_, x| !x.is_null());
            m.values_mut().for_each(strip_nulls);
        }
        Value::Array(a) => a.iter_mut().for_each(strip_nulls),
        _ => {}
    }
}

/// Validate an (already pruned) object; errors as `field.path: Invalid value: …`.
pub fn validate(obj: &Value, vs: &VersionSchema) -> Result<(), Vec<String>> {
    // nullable nulls are allowed by Kubernetes; JSON Schema has no `nullable`.
    let mut copy = obj.clone();
    strip_nulls(&mut copy);
    let errs: Vec<String> = vs
        .validator
        .iter_errors(&copy)
        .map(|e| {
            let p = e.instance_path.to_string();
            let field = p.trim_start_matches('/').replace('/', ".");
            let field = if field.is_empty() {
                "<root>".to_string()
            } else {
                field
            };
            format!("{field}: Invalid value: {e}")
        })
        .collect();
    if errs.is_empty() {
        Ok(())
    } else {
        Err(errs)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn crd() -> Value {
        json!({
            "apiVersion": "apiextensions.k8s.io/v1", "kind": "CustomResourceDefinition",
            "metadata": {"name": "widgets.example.com"},
            "spec": {"group": "example.com", "names": {"plural": "widgets", "kind": "Widget"},
                "scope": "Namespaced",
                "versions": [{"name": "v1", "served": true, "storage": true, "schema": {"openAPIV3Schema": {
                    "type": "object",
                    "properties": {
                        "spec": {"type": "object", "required": ["size"], "properties": {
                            "size": {"type": "integer", "minimum": 1},
                            "enabled": {"type": "boolean", "default": false},
                            "mode": {"type": "string", "enum": ["a", "b"]},
                            "note": {"type": "string", "nullable": true},
                            "free": {"type": "object", "x-kubernetes-preserve-unknown-fields": true},
                            "labels": {"type": "object", "additionalProperties": {"type": "string"}},
                            "items": {"type": "array", "items": {"type": "object", "properties": {"name": {"type": "string"}}}}
                        }},
                        "status": {"type": "object", "properties": {"ok": {"type": "boolean"}}}
                    }
                }}}]
            }
        })
    }

    #[test]
    fn prunes_unknown_fields_and_nulls() {
        let compiled = compile(&crd()).unwrap();
        assert_eq!(compiled.len(), 1);
        let (key, vs) = &compiled[0];
        assert_eq!(
            key,
            &(
                "example.com".to_string(),
                "widgets".to_string(),
                "v1".to_string()
            )
        );
        let mut o = json!({
            "apiVersion": "example.com/v1", "kind": "Widget", "metadata": {"name": "w", "labels": {"a": "b"}},
            "spec": {"size": 2, "bogus": 1, "mode": null, "note": null, "free": {"anything": {"x": 1}},
                     "labels": {"k": "v"}, "items": [{"name": "n", "extra": true}]},
            "extraTop": 1
        });
        let mut pruned = prune(&mut o, &vs.schema);
        pruned.sort();
        assert_eq!(pruned, ["extraTop", "spec.bogus", "spec.items[0].extra"]);
        assert!(o["spec"].get("mode").is_none());
        assert!(o["spec"]["note"].is_null() && o["spec"].get("note").is_some());
        assert_eq!(o["spec"]["free"]["anything"]["x"], 1);
        assert_eq!(o["metadata"]["labels"]["a"], "b");
        assert_eq!(o["spec"]["enabled"], false, "defaulted");
        assert!(validate(&o, vs).is_ok());
    }

    #[test]
    fn reports_invalid_fields() {
        let compiled = compile(&crd()).unwrap();
        let vs = &compiled[0].1;
        let o = json!({"apiVersion": "example.com/v1", "kind": "Widget", "metadata": {"name": "w"},
            "spec": {"size": 0, "mode": "c"}});
        let errs = validate(&o, vs).unwrap_err();
        assert_eq!(errs.len(), 2, "{errs:?}");
        assert!(
            errs.iter()
                .any(|e| e.starts_with("spec.size: Invalid value")),
            "{errs:?}"
        );
        assert!(
            errs.iter()
                .any(|e| e.starts_with("spec.mode: Invalid value")),
            "{errs:?}"
        );
        let missing = json!({"apiVersion": "example.com/v1", "kind": "Widget", "metadata": {"name": "w"}, "spec": {}});
        assert!(validate(&missing, vs).is_err());
    }
}
