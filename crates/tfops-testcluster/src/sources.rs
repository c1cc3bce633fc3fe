//! `sources` — a stand-in for Flux source-controller, for the standalone test cluster and the
//! demo (tests that need a source's artifact seed or patch it themselves): every
//! `GitRepository`, `OCIRepository` and `Bucket` (`source.toolkit.fluxcd.io/v1`) that has no
//! `status.artifact` gets one, with `Ready=True/Succeeded` "stored artifact for revision '…'"
//! and `observedGeneration`, written through the status subresource over real HTTP as user
//! [`SOURCE_CONTROLLER_USER`].
//!
//! Nothing is fetched: the revision names the ref the spec asks for (`main@sha1:…`,
//! `v1.2.0@sha256:…`) with a digest derived deterministically from the spec (a stand-in, not a
//! content hash), so the same spec always gets the same revision. The pure part is
//! [`artifact_status`]; [`SourceController::start`] is the thin watch-and-patch loop.

use futures::StreamExt;
use kube::api::{Api, DynamicObject, Patch, PatchParams};
use kube::core::{ApiResource, GroupVersionKind};
use kube::runtime::{watcher, WatchStreamExt};
use serde_json::{json, Value};
use tokio::task::JoinHandle;

/// The user the stand-in authenticates as (its writes are in the request log under it).
pub const SOURCE_CONTROLLER_USER: &str = "source-controller";

/// The source kinds served (all `source.toolkit.fluxcd.io/v1`), with their plurals.
pub const KINDS: [(&str, &str); 3] = [
    ("GitRepository", "gitrepositories"),
    ("OCIRepository", "ocirepositories"),
    ("Bucket", "buckets"),
];

/// 64-bit FNV-1a, for a stable stand-in digest.
fn fnv1a(data: &[u8], seed: u64) -> u64 {
    let mut h = 0xcbf2_9ce4_8422_2325_u64 ^ seed;
    for b in data {
        h ^= u64::from(*b);
        h = h.wrapping_mul(0x0100_0000_01b3);
    }
    h
}

/// `len` hex digits derived from `data`.
fn stand_in_digest(data: &[u8], len: usize) -> String {
    let mut out = String::with_capacity(len + 16);
    let mut seed = 0u64;
    while out.len() < len {
        out.push_str(&format!("{:016x}", fnv1a(data, seed)));
        seed += 1;
    }
    out.truncate(len);
    out
}

/// The `status` source-controller would write once it stored an artifact for `source`
/// (`None` for a kind it does not serve). `now` is the RFC 3339 time of the write.
pub fn artifact_status(source: &Value, now: &str) -> Option<Value> {
    let kind = source["kind"].as_str()?;
    let (_, plural) = KINDS.iter().find(|(k, _)| *k == kind)?;
    let spec = serde_json::to_vec(&source["spec"]).unwrap_or_default();
    let ns = source["metadata"]["namespace"].as_str().unwrap_or("");
    let name = source["metadata"]["name"].as_str().unwrap_or("");
    let reference = &source["spec"]["ref"];
    let revision = match kind {
        "GitRepository" => {
            let r = reference["tag"]
                .as_str()
                .or_else(|| reference["branch"].as_str())
                .or_else(|| reference["name"].as_str())
                .unwrap_or("main");
            format!("{r}@sha1:{}", stand_in_digest(&spec, 40))
        }
        "OCIRepository" => {
            let r = reference["tag"]
                .as_str()
                .or_else(|| reference["semver"].as_str())
                .unwrap_or("latest");
            format!("{r}@sha256:{}", stand_in_digest(&spec, 64))
        }
        _ => format!("sha256:{}", stand_in_digest(&spec, 64)),
    };
    let digest = format!("sha256:{}", stand_in_digest(revision.as_bytes(), 64));
    let singular = kind.to_ascii_lowercase();
    Some(json!({
        "observedGeneration": source["metadata"]["generation"].as_i64().unwrap_or(1),
        "artifact": {
            "revision": revision,
            "digest": digest,
            "path": format!("{singular}/{ns}/{name}/{}.tar.gz", &digest[7..23]),
            "url": format!("http://source-controller.flux-system.svc.cluster.local./{singular}/{ns}/{name}/{}.tar.gz", &digest[7..23]),
            "lastUpdateTime": now,
            "size": 4096
        },
        "conditions": [{
            "type": "Ready",
            "status": "True",
            "reason": "Succeeded",
            "message": format!("stored artifact for revision '{revision}'"),
            "observedGeneration": source["metadata"]["generation"].as_i64().unwrap_or(1),
            "lastTransitionTime": now
        }],
        "url": format!("http://source-controller.flux-system.svc.cluster.local./{plural}/{ns}/{name}/latest.tar.gz")
    }))
}

/// True when the stand-in should act on this object: no artifact yet and not being deleted.
pub fn needs_artifact(source: &Value) -> bool {
    source["status"]["artifact"].is_null() && source["metadata"]["deletionTimestamp"].is_null()
}

/// The running stand-in: one watch per source kind.
pub struct SourceController {
    tasks: Vec<JoinHandle<()>>,
}

impl std::fmt::Debug for SourceController {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SourceController").finish_non_exhaustive()
    }
}

impl SourceController {
    /// Start watching (all namespaces, or `namespace`) with `client` (authenticated as
    /// [`SOURCE_CONTROLLER_USER`]); spawns on the current tokio runtime.
    pub fn start(client: kube::Client, namespace: Option<String>) -> SourceController {
        let tasks = KINDS
            .iter()
            .map(|(kind, plural)| {
                let resource = ApiResource::from_gvk_with_plural(
                    &GroupVersionKind::gvk("source.toolkit.fluxcd.io", "v1", kind),
                    plural,
                );
                tokio::spawn(watch_kind(client.clone(), namespace.clone(), resource))
            })
            .collect();
        SourceController { tasks }
    }
}

impl Drop for SourceController {
    fn drop(&mut self) {
        for t in &self.tasks {
            t.abort();
        }
    }
}

async fn watch_kind(client: kube::Client, namespace: Option<String>, resource: ApiResource) {
    let api: Api<DynamicObject> = match &namespace {
        Some(ns) => Api::namespaced_with(client.clone(), ns, &resource),
        None => Api::all_with(client.clone(), &resource),
    };
    let mut stream = watcher(api, watcher::Config::default())
        .default_backoff()
        .boxed();
    while let Some(ev) = stream.next().await {
        let obj = match ev {
            Ok(watcher::Event::Apply(o)) | Ok(watcher::Event::InitApply(o)) => o,
            Ok(_) => continue,
            Err(e) => {
                tracing::debug!(error = %e, "source-controller stand-in: watch error (retrying)");
                continue;
            }
        };
        let mut v = serde_json::to_value(&obj).unwrap_or(Value::Null);
        v["kind"] = json!(resource.kind);
        if !needs_artifact(&v) {
            continue;
        }
        let now = chrono::Utc::now().to_rfc3339_opts(chrono::SecondsFormat::Secs, true);
        let Some(status) = artifact_status(&v, &now) else {
            continue;
        };
        let ns = v["metadata"]["namespace"]
            .as_str()
            .unwrap_or("")
            .to_string();
        let name = v["metadata"]["name"].as_str().unwrap_or("").to_string();
        let api: Api<DynamicObject> = Api::namespaced_with(client.clone(), &ns, &resource);
        if let Err(e) = api
            .patch_status(
                &name,
                &PatchParams::default(),
                &Patch::Merge(json!({ "status": status })),
            )
            .await
        {
            tracing::debug!(error = %e, %ns, %name, "source-controller stand-in: status patch failed");
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn git(spec: Value) -> Value {
        json!({"apiVersion": "source.toolkit.fluxcd.io/v1", "kind": "GitRepository",
               "metadata": {"name": "mods", "namespace": "shop", "generation": 2}, "spec": spec})
    }

    #[test]
    fn git_revision_names_the_ref_and_is_stable_per_spec() {
        let a = artifact_status(
            &git(json!({"url": "https://x", "ref": {"tag": "v0.1.0"}})),
            "2026-12-04T00:00:00Z",
        )
        .unwrap();
        let rev = a["artifact"]["revision"].as_str().unwrap();
        let (r, sha) = rev.split_once("@sha1:").unwrap();
        assert_eq!(r, "v0.1.0");
        assert_eq!(sha.len(), 40);
        assert!(sha.chars().all(|c| c.is_ascii_hexdigit()));
        assert_eq!(a["observedGeneration"], 2);
        assert_eq!(a["conditions"][0]["reason"], "Succeeded");
        assert_eq!(
            a["conditions"][0]["message"],
            format!("stored artifact for revision '{rev}'")
        );
        let again = artifact_status(
            &git(json!({"url": "https://x", "ref": {"tag": "v0.1.0"}})),
            "2026-12-05T00:00:00Z",
        )
        .unwrap();
        assert_eq!(again["artifact"]["revision"], rev);
        let other = artifact_status(
            &git(json!({"url": "https://y", "ref": {"tag": "v0.1.0"}})),
            "2026-12-04T00:00:00Z",
        )
        .unwrap();
        assert_ne!(other["artifact"]["revision"], rev);
    }

    #[test]
    fn oci_and_bucket_revisions_and_unknown_kinds() {
        let oci = json!({"kind": "OCIRepository", "metadata": {"name": "m", "namespace": "n"},
                         "spec": {"url": "oci://r/m", "ref": {"tag": "1.2.0"}}});
        let rev = artifact_status(&oci, "t").unwrap()["artifact"]["revision"]
            .as_str()
            .unwrap()
            .to_string();
        assert!(rev.starts_with("1.2.0@sha256:") && rev.len() == "1.2.0@sha256:".len() + 64);
        let bucket =
            json!({"kind": "Bucket", "metadata": {"name": "b", "namespace": "n"}, "spec": {}});
        assert!(
            artifact_status(&bucket, "t").unwrap()["artifact"]["revision"]
                .as_str()
                .unwrap()
                .starts_with("sha256:")
        );
        assert!(artifact_status(&json!({"kind": "HelmRepository"}), "t").is_none());
    }

    #[test]
    fn only_sources_without_artifact_and_not_deleting_are_served() {
        assert!(needs_artifact(&json!({"metadata": {}})));
        assert!(!needs_artifact(
            &json!({"metadata": {}, "status": {"artifact": {"revision": "r"}}})
        ));
        assert!(!needs_artifact(
            &json!({"metadata": {"deletionTimestamp": "2026-12-04T00:00:00Z"}})
        ));
    }
}
