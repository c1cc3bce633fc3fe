//! Shared helpers of the integration tests: fixtures, output parsing, shared-facts lookup.
#![allow(dead_code)]

use std::path::{Path, PathBuf};

use serde_json::Value;

/// `<workspace root>/../shared`, i.e. beside the clone.
pub fn shared_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../../../shared")
}

/// A fixture file of this crate.
pub fn fixture(name: &str) -> Vec<u8> {
    let p = Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("tests/fixtures")
        .join(name);
    std::fs::read(&p).unwrap_or_else(|e| panic!("{}: {e}", p.display()))
}

/// Parse every non-blank document of a stream.
pub fn docs(output: &[u8]) -> Vec<Value> {
    tfops_render::split::split(output)
        .iter()
        .filter(|s| !tfops_render::split::is_blank(&output[s.body.clone()]))
        .map(|s| {
            let text = std::str::from_utf8(&output[s.span.clone()]).unwrap();
            serde_saphyr::from_str::<Value>(text).unwrap_or_else(|e| panic!("{e}\n{text}"))
        })
        .collect()
}

/// The (kind, name) pairs of a stream, in order.
pub fn kinds_names(values: &[Value]) -> Vec<(String, String)> {
    values
        .iter()
        .map(|v| {
            (
                v["kind"].as_str().unwrap_or("").to_string(),
                v["metadata"]["name"].as_str().unwrap_or("").to_string(),
            )
        })
        .collect()
}

/// Find one object by kind and name.
pub fn find<'a>(values: &'a [Value], kind: &str, name: &str) -> &'a Value {
    values
        .iter()
        .find(|v| v["kind"] == kind && v["metadata"]["name"] == name)
        .unwrap_or_else(|| panic!("{kind} {name} not in output: {:?}", kinds_names(values)))
}

/// Options with a release and namespace.
pub fn opts(release: Option<&str>, namespace: Option<&str>) -> tfops_render::RenderOptions {
    tfops_render::RenderOptions {
        release: release.map(str::to_string),
        namespace: namespace.map(str::to_string),
        ..Default::default()
    }
}

/// A Helm 4 style document: the filename annotation inside metadata.annotations.
pub fn helm4_doc(file: &str, body: &str) -> String {
    let mut v: Value = serde_saphyr::from_str(body).unwrap();
    let meta = v["metadata"].as_object_mut().unwrap();
    let ann = meta
        .entry("annotations")
        .or_insert_with(|| Value::Object(Default::default()));
    ann.as_object_mut().unwrap().insert(
        "postrenderer.helm.sh/postrender-filename".into(),
        Value::String(file.into()),
    );
    serde_saphyr::to_string(&v).unwrap()
}

/// Join Helm 4 documents the way kyaml does (`---` between documents, none leading).
pub fn helm4_stream(docs: &[String]) -> Vec<u8> {
    docs.join("---\n").into_bytes()
}
