//! Helpers to read and set object metadata, and the metadata keys that are not ours (Helm's).
//! Our own `tfops.dev/*` keys live in `tfops_api::names`.

use serde_json::{Map, Value};

/// Helm 4's per-document source file annotation.
pub const FILENAME_ANNOTATION: &str = "postrenderer.helm.sh/postrender-filename";
/// Helm's release instance label.
pub const INSTANCE_LABEL: &str = "app.kubernetes.io/instance";

fn map_at<'a>(object: &'a mut Value, key: &str) -> Option<&'a mut Map<String, Value>> {
    let obj = object.as_object_mut()?;
    let meta = obj
        .entry("metadata")
        .or_insert_with(|| Value::Object(Map::new()));
    if !meta.is_object() {
        *meta = Value::Object(Map::new());
    }
    let meta = meta.as_object_mut()?;
    let m = meta
        .entry(key.to_string())
        .or_insert_with(|| Value::Object(Map::new()));
    if !m.is_object() {
        *m = Value::Object(Map::new());
    }
    m.as_object_mut()
}

/// Set a label (creating `metadata.labels` when needed).
pub fn set_label(object: &mut Value, key: &str, value: &str) {
    if let Some(m) = map_at(object, "labels") {
        m.insert(key.to_string(), Value::String(value.to_string()));
    }
}

/// Set an annotation (creating `metadata.annotations` when needed).
pub fn set_annotation(object: &mut Value, key: &str, value: &str) {
    if let Some(m) = map_at(object, "annotations") {
        m.insert(key.to_string(), Value::String(value.to_string()));
    }
}

/// Read a string at a JSON pointer.
pub fn str_at<'a>(object: &'a Value, pointer: &str) -> Option<&'a str> {
    object.pointer(pointer).and_then(Value::as_str)
}

/// `metadata.annotations[key]`, when present.
pub fn annotation<'a>(object: &'a Value, key: &str) -> Option<&'a Value> {
    object.get("metadata")?.get("annotations")?.get(key)
}

/// `metadata.labels[key]`, when present.
pub fn label<'a>(object: &'a Value, key: &str) -> Option<&'a Value> {
    object.get("metadata")?.get("labels")?.get(key)
}

/// `metadata.name`.
pub fn name(object: &Value) -> Option<&str> {
    str_at(object, "/metadata/name")
}
