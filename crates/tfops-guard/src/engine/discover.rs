//! `engine::discover` — which `Terraform` CRs belong to a release: one LIST with the label
//! selector `tfops.dev/release=<release>` in the release namespace, plus (client-side path,
//! releases installed without the post-renderer) the `Terraform` documents of the release
//! manifest (`helm get manifest`), parsed with serde-saphyr.

use std::collections::BTreeSet;

use kube::api::{DynamicObject, ListParams};
use kube::Client;

use super::ops::{status_code, tf_api};

/// A CR named by the release manifest: (namespace or `None` = release namespace, name).
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord)]
pub struct ManifestRef {
    pub namespace: Option<String>,
    pub name: String,
}

/// Errors finding the release's CRs.
#[derive(Debug, thiserror::Error)]
pub enum DiscoverError {
    #[error("release manifest: document {index} is not valid YAML: {message}")]
    Manifest { index: usize, message: String },
    #[error("listing Terraform CRs of release {release} in {namespace}: {source}")]
    List {
        release: String,
        namespace: String,
        #[source]
        source: kube::Error,
    },
    #[error("reading Terraform {namespace}/{name} named by the release manifest: {source}")]
    Get {
        namespace: String,
        name: String,
        #[source]
        source: kube::Error,
    },
}

/// Label selector for the release's CRs.
pub fn release_selector(release: &str) -> String {
    format!("{}={release}", tfops_api::names::LABEL_RELEASE)
}

/// The `Terraform` documents (`infra.contrib.fluxcd.io/*`) of a rendered release manifest.
pub fn terraform_refs_from_manifest(manifest: &str) -> Result<Vec<ManifestRef>, DiscoverError> {
    let mut out = BTreeSet::new();
    // Split on document markers ourselves so one bad document is named by its index.
    let mut docs: Vec<String> = vec![String::new()];
    for line in manifest.lines() {
        if line == "---" || line.starts_with("--- ") {
            docs.push(String::new());
        } else if let Some(last) = docs.last_mut() {
            last.push_str(line);
            last.push('\n');
        }
    }
    for (index, doc) in docs.iter().enumerate() {
        if doc
            .lines()
            .all(|l| l.trim().is_empty() || l.trim_start().starts_with('#'))
        {
            continue;
        }
        let value: serde_json::Value =
            serde_saphyr::from_str(doc).map_err(|e| DiscoverError::Manifest {
                index,
                message: e.to_string(),
            })?;
        let api_version = value
            .get("apiVersion")
            .and_then(|v| v.as_str())
            .unwrap_or("");
        let kind = value.get("kind").and_then(|v| v.as_str()).unwrap_or("");
        if kind != tfops_api::names::TF_KIND
            || !api_version.starts_with(&format!("{}/", tfops_api::names::TF_GROUP))
        {
            continue;
        }
        let meta = value.get("metadata");
        let name = meta
            .and_then(|m| m.get("name"))
            .and_then(|n| n.as_str())
            .unwrap_or("");
        if name.is_empty() {
            continue;
        }
        out.insert(ManifestRef {
            namespace: meta
                .and_then(|m| m.get("namespace"))
                .and_then(|n| n.as_str())
                .filter(|s| !s.is_empty())
                .map(str::to_owned),
            name: name.to_owned(),
        });
    }
    Ok(out.into_iter().collect())
}

/// The release's CRs: the labelled ones in `namespace` (one LIST), plus any `extra` named by
/// the manifest that the LIST did not return (one GET each; missing ones are skipped).
/// Sorted by (namespace, name).
pub async fn discover(
    client: &Client,
    namespace: &str,
    release: &str,
    extra: &[ManifestRef],
) -> Result<Vec<DynamicObject>, DiscoverError> {
    let api = tf_api(client, namespace);
    let list = api
        .list(&ListParams::default().labels(&release_selector(release)))
        .await
        .map_err(|source| DiscoverError::List {
            release: release.to_owned(),
            namespace: namespace.to_owned(),
            source,
        })?;
    let mut found: Vec<DynamicObject> = list.items;
    let have: BTreeSet<(String, String)> = found
        .iter()
        .map(|o| {
            (
                o.metadata
                    .namespace
                    .clone()
                    .unwrap_or_else(|| namespace.to_owned()),
                o.metadata.name.clone().unwrap_or_default(),
            )
        })
        .collect();
    for r in extra {
        let ns = r.namespace.clone().unwrap_or_else(|| namespace.to_owned());
        if have.contains(&(ns.clone(), r.name.clone())) {
            continue;
        }
        match tf_api(client, &ns).get(&r.name).await {
            Ok(o) => found.push(o),
            Err(e) if status_code(&e) == Some(404) => {}
            Err(source) => {
                return Err(DiscoverError::Get {
                    namespace: ns,
                    name: r.name.clone(),
                    source,
                })
            }
        }
    }
    for o in &mut found {
        if o.metadata.namespace.is_none() {
            o.metadata.namespace = Some(namespace.to_owned());
        }
    }
    found.sort_by(|a, b| {
        (&a.metadata.namespace, &a.metadata.name).cmp(&(&b.metadata.namespace, &b.metadata.name))
    });
    Ok(found)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn finds_terraform_docs_only() {
        let m = "---\n# Source: c/templates/a.yaml\napiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: x\n---\n# Source: c/templates/tf.yaml\napiVersion: infra.contrib.fluxcd.io/v1alpha2\nkind: Terraform\nmetadata:\n  name: db\n---\napiVersion: infra.contrib.fluxcd.io/v1alpha1\nkind: Terraform\nmetadata:\n  name: net\n  namespace: infra\n---\n# only a comment\n";
        let refs = terraform_refs_from_manifest(m).unwrap();
        assert_eq!(
            refs,
            vec![
                ManifestRef {
                    namespace: None,
                    name: "db".into()
                },
                ManifestRef {
                    namespace: Some("infra".into()),
                    name: "net".into()
                },
            ]
        );
    }

    #[test]
    fn bad_document_is_named() {
        let m = "apiVersion: v1\nkind: A\n---\nkind: [unclosed\n";
        let e = terraform_refs_from_manifest(m).unwrap_err().to_string();
        assert!(e.contains("document 1"), "{e}");
    }

    #[test]
    fn empty_manifest() {
        assert!(terraform_refs_from_manifest("").unwrap().is_empty());
    }
}
