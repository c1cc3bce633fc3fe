//! `tfops.dev/spec-sha256`: hex sha256 of the canonical (recursively key-sorted, compact)
//! JSON of an object, excluding that annotation and Helm 4's transient filename annotation.

use serde_json::Value;
use sha2::{Digest, Sha256};

use crate::meta::FILENAME_ANNOTATION;
use tfops_api::names::ANN_SPEC_SHA256 as SPEC_SHA_ANNOTATION;

/// Canonical JSON: object keys sorted bytewise at every level, no whitespace.
pub fn canonical_json(value: &Value) -> Vec<u8> {
    let mut out = Vec::new();
    write_canonical(value, &mut out);
    out
}

fn write_canonical(value: &Value, out: &mut Vec<u8>) {
    match value {
        Value::Object(map) => {
            let mut keys: Vec<&String> = map.keys().collect();
            keys.sort();
            out.push(b'{');
            for (i, k) in keys.iter().enumerate() {
                if i > 0 {
                    out.push(b',');
                }
                write_canonical(&Value::String((*k).clone()), out);
                out.push(b':');
                if let Some(v) = map.get(*k) {
                    write_canonical(v, out);
                }
            }
            out.push(b'}');
        }
        Value::Array(items) => {
            out.push(b'[');
            for (i, v) in items.iter().enumerate() {
                if i > 0 {
                    out.push(b',');
                }
                write_canonical(v, out);
            }
            out.push(b']');
        }
        // Scalars: serde_json's compact form is already canonical.
        scalar => out.extend_from_slice(scalar.to_string().as_bytes()),
    }
}

/// The spec hash of `object` (annotation and Helm 4 filename annotation excluded).
pub fn spec_sha256(object: &Value) -> String {
    let mut copy = object.clone();
    if let Some(ann) = copy
        .pointer_mut("/metadata/annotations")
        .and_then(Value::as_object_mut)
    {
        ann.remove(SPEC_SHA_ANNOTATION);
        ann.remove(FILENAME_ANNOTATION);
        if ann.is_empty() {
            if let Some(meta) = copy.get_mut("metadata").and_then(Value::as_object_mut) {
                meta.remove("annotations");
            }
        }
    }
    hex::encode(Sha256::digest(canonical_json(&copy)))
}

/// Set `tfops.dev/spec-sha256` on `object` (last step of building an object).
pub fn stamp(object: &mut Value) {
    let sha = spec_sha256(object);
    crate::meta::set_annotation(object, SPEC_SHA_ANNOTATION, &sha);
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn canonical_form_sorts_keys_recursively() {
        let v = json!({"b": 1, "a": {"d": [true, null, "x"], "c": 1.5}});
        assert_eq!(
            String::from_utf8(canonical_json(&v)).unwrap(),
            r#"{"a":{"c":1.5,"d":[true,null,"x"]},"b":1}"#
        );
    }

    #[test]
    fn hash_ignores_key_order_and_its_own_annotation() {
        let a = json!({"kind": "X", "metadata": {"name": "n"}});
        let mut b = json!({"metadata": {"name": "n"}, "kind": "X"});
        assert_eq!(spec_sha256(&a), spec_sha256(&b));
        stamp(&mut b);
        assert_eq!(spec_sha256(&a), spec_sha256(&b));
        assert_eq!(
            b["metadata"]["annotations"][SPEC_SHA_ANNOTATION]
                .as_str()
                .unwrap(),
            spec_sha256(&a)
        );
        assert_eq!(spec_sha256(&a).len(), 64);
        let c = json!({"kind": "Y", "metadata": {"name": "n"}});
        assert_ne!(spec_sha256(&a), spec_sha256(&c));
    }
}
