//! Reading and shaping one stored object: metadata access, finalizers, deletion state, the
//! spec part that decides `generation`, base64 checks of Secret data.

use super::*;

pub(super) fn meta(obj: &Value) -> Option<&Map<String, Value>> {
    obj.get("metadata").and_then(Value::as_object)
}

pub(super) fn meta_str<'a>(obj: &'a Value, field: &str) -> Option<&'a str> {
    meta(obj).and_then(|m| m.get(field)).and_then(Value::as_str)
}

pub(super) fn meta_mut(obj: &mut Value) -> &mut Map<String, Value> {
    if !obj.get("metadata").is_some_and(Value::is_object) {
        obj["metadata"] = json!({});
    }
    match obj.get_mut("metadata") {
        Some(Value::Object(m)) => m,
        _ => unreachable_meta(),
    }
}

#[allow(clippy::panic)]
pub(super) fn unreachable_meta() -> &'static mut Map<String, Value> {
    // metadata was just set to an object above; this cannot happen.
    panic!("metadata is an object")
}

pub(super) fn finalizers(obj: &Value) -> Vec<String> {
    meta(obj)
        .and_then(|m| m.get("finalizers"))
        .and_then(Value::as_array)
        .map(|a| {
            a.iter()
                .filter_map(|x| x.as_str().map(str::to_string))
                .collect()
        })
        .unwrap_or_default()
}

pub(super) fn is_deleting(obj: &Value) -> bool {
    meta(obj).is_some_and(|m| m.get("deletionTimestamp").is_some_and(|v| !v.is_null()))
}

/// The object without metadata and status: what `generation` tracks.
pub(super) fn spec_part(obj: &Value) -> Value {
    let mut v = obj.clone();
    if let Some(m) = v.as_object_mut() {
        m.remove("metadata");
        m.remove("status");
        m.remove("apiVersion");
        m.remove("kind");
    }
    v
}

pub(super) fn without_rv(obj: &Value) -> Value {
    let mut v = obj.clone();
    if let Some(m) = v.get_mut("metadata").and_then(Value::as_object_mut) {
        m.remove("resourceVersion");
        m.remove("managedFields");
    }
    v
}

/// Secret `data` (and ConfigMap `binaryData`) values must be base64 strings: the real API
/// server fails to decode anything else (400).
pub(super) fn check_base64(obj: &Value, field: &str) -> Result<(), ApiError> {
    let Some(data) = obj.get(field) else {
        return Ok(());
    };
    if data.is_null() {
        return Ok(());
    }
    let Some(map) = data.as_object() else {
        return Err(ApiError::bad_request(format!(
            "{field}: expected a map of base64 strings"
        )));
    };
    for (k, v) in map {
        let ok = v
            .as_str()
            .is_some_and(|s| base64::engine::general_purpose::STANDARD.decode(s).is_ok());
        if !ok {
            return Err(ApiError::bad_request(format!(
                "{field}.{k}: illegal base64 data (values must be base64-encoded strings)"
            )));
        }
    }
    Ok(())
}

/// Secret `stringData` is merged into base64 `data` on write, as the real API server does.
pub(super) fn fold_string_data(obj: &mut Value) {
    let Some(sd) = obj.as_object_mut().and_then(|m| m.remove("stringData")) else {
        return;
    };
    let Some(sd) = sd.as_object() else { return };
    if !obj.get("data").is_some_and(Value::is_object) {
        obj["data"] = json!({});
    }
    if let Some(data) = obj.get_mut("data").and_then(Value::as_object_mut) {
        for (k, v) in sd {
            let s = v.as_str().unwrap_or_default();
            data.insert(
                k.clone(),
                json!(base64::engine::general_purpose::STANDARD.encode(s.as_bytes())),
            );
        }
    }
}
