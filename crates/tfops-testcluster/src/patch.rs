//! Patch application by content type: JSON merge patch (RFC 7386), JSON patch (RFC 6902, with
//! `test` ops), strategic merge patch (treated as a merge patch with `$`-directives dropped) and
//! server-side apply (create-or-merge). Pure.

use serde_json::Value;

/// The patch flavours the server accepts.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum PatchKind {
    /// `application/merge-patch+json`
    Merge,
    /// `application/json-patch+json`
    Json,
    /// `application/strategic-merge-patch+json` (handled as a merge patch)
    Strategic,
    /// `application/apply-patch+yaml` (server-side apply, handled as create-or-merge)
    Apply,
}

/// Why a patch could not be applied.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum PatchError {
    /// Unsupported `Content-Type`.
    #[error("the body of the request was in an unknown format - accepted media types include: application/json-patch+json, application/merge-patch+json, application/apply-patch+yaml, application/strategic-merge-patch+json (got {0:?})")]
    UnsupportedMediaType(String),
    /// The body did not parse.
    #[error("invalid patch body: {0}")]
    Parse(String),
    /// A JSON patch operation failed (including a failed `test`).
    #[error("the server rejected our request due to an error in our request: {0}")]
    Failed(String),
}

impl PatchKind {
    /// Map a `Content-Type` header value.
    pub fn from_content_type(ct: &str) -> Result<Self, PatchError> {
        let base = ct.split(';').next().unwrap_or("").trim();
        match base {
            "application/merge-patch+json" => Ok(Self::Merge),
            "application/json-patch+json" => Ok(Self::Json),
            "application/strategic-merge-patch+json" => Ok(Self::Strategic),
            "application/apply-patch+yaml" | "application/apply-patch+json" => Ok(Self::Apply),
            other => Err(PatchError::UnsupportedMediaType(other.to_string())),
        }
    }
}

/// Parse a patch body (JSON; for apply also YAML).
pub fn parse_body(kind: PatchKind, body: &[u8]) -> Result<Value, PatchError> {
    match serde_json::from_slice::<Value>(body) {
        Ok(v) => Ok(v),
        Err(e) if kind == PatchKind::Apply => {
            let text = std::str::from_utf8(body).map_err(|_| PatchError::Parse(e.to_string()))?;
            serde_saphyr::from_str::<Value>(text).map_err(|ye| PatchError::Parse(ye.to_string()))
        }
        Err(e) => Err(PatchError::Parse(e.to_string())),
    }
}

/// Remove strategic-merge directives (`$patch`, `$setElementOrder/…`, `$retainKeys`,
/// `$deleteFromPrimitiveList/…`) recursively.
fn strip_directives(v: &mut Value) {
    match v {
        Value::Object(m) => {
            m.retain(|k, _| !k.starts_with('$'));
            for x in m.values_mut() {
                strip_directives(x);
            }
        }
        Value::Array(a) => {
            for x in a.iter_mut() {
                strip_directives(x);
            }
        }
        _ => {}
    }
}

/// Apply `patch` of `kind` to a copy of `current` and return the result.
pub fn apply(kind: PatchKind, current: &Value, patch: &Value) -> Result<Value, PatchError> {
    let mut doc = current.clone();
    match kind {
        PatchKind::Merge | PatchKind::Apply => json_patch::merge(&mut doc, patch),
        PatchKind::Strategic => {
            let mut p = patch.clone();
            strip_directives(&mut p);
            json_patch::merge(&mut doc, &p);
        }
        PatchKind::Json => {
            let ops: json_patch::Patch = serde_json::from_value(patch.clone())
                .map_err(|e| PatchError::Parse(e.to_string()))?;
            json_patch::patch(&mut doc, &ops).map_err(|e| PatchError::Failed(e.to_string()))?;
        }
    }
    Ok(doc)
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn merge_patch_sets_and_removes() {
        let cur = json!({"metadata": {"finalizers": ["a", "b"], "labels": {"x": "1", "y": "2"}}});
        let p = json!({"metadata": {"finalizers": ["b"], "labels": {"x": null, "z": "3"}}});
        let out = apply(PatchKind::Merge, &cur, &p);
        assert_eq!(
            out,
            Ok(json!({"metadata": {"finalizers": ["b"], "labels": {"y": "2", "z": "3"}}}))
        );
    }

    #[test]
    fn json_patch_with_test_ops() {
        let cur = json!({"metadata": {"resourceVersion": "5", "finalizers": ["a", "b"]}});
        let ok = json!([
            {"op": "test", "path": "/metadata/finalizers/1", "value": "b"},
            {"op": "remove", "path": "/metadata/finalizers/1"}
        ]);
        assert_eq!(
            apply(PatchKind::Json, &cur, &ok),
            Ok(json!({"metadata": {"resourceVersion": "5", "finalizers": ["a"]}}))
        );
        let bad = json!([
            {"op": "test", "path": "/metadata/finalizers/0", "value": "zzz"},
            {"op": "remove", "path": "/metadata/finalizers/0"}
        ]);
        assert!(matches!(
            apply(PatchKind::Json, &cur, &bad),
            Err(PatchError::Failed(_))
        ));
        assert!(matches!(
            apply(PatchKind::Json, &cur, &json!({"not": "a list"})),
            Err(PatchError::Parse(_))
        ));
    }

    #[test]
    fn strategic_drops_directives() {
        let cur = json!({"spec": {"a": 1}});
        let p = json!({"spec": {"b": 2, "$retainKeys": ["b"]}, "$setElementOrder/x": []});
        assert_eq!(
            apply(PatchKind::Strategic, &cur, &p),
            Ok(json!({"spec": {"a": 1, "b": 2}}))
        );
    }

    #[test]
    fn content_types_and_yaml_apply() {
        assert_eq!(
            PatchKind::from_content_type("application/merge-patch+json; charset=utf-8"),
            Ok(PatchKind::Merge)
        );
        assert!(PatchKind::from_content_type("text/plain").is_err());
        let v = parse_body(PatchKind::Apply, b"kind: Secret\nmetadata:\n  name: x\n");
        assert_eq!(v, Ok(json!({"kind": "Secret", "metadata": {"name": "x"}})));
        assert!(parse_body(PatchKind::Merge, b"kind: x").is_err());
    }
}
