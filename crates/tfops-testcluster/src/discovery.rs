//! Discovery documents built from the registry: `/version`, `/api`, `/apis`, `/apis/<g>`,
//! `/api/v1` and `/apis/<g>/<v>` (APIResourceList), enough for kube-rs discovery and Helm.

use crate::registry::{ResourceType, RESOURCES};
use serde_json::{json, Value};

/// `/version`
pub fn version() -> Value {
    json!({
        "major": "1",
        "minor": "33",
        "gitVersion": "v1.33.0-tfops-testcluster",
        "gitCommit": "0000000000000000000000000000000000000000",
        "gitTreeState": "clean",
        "buildDate": "2026-01-01T00:00:00Z",
        "goVersion": "go1.24.0",
        "compiler": "gc",
        "platform": "linux/amd64"
    })
}

/// `/api`
pub fn core_versions() -> Value {
    json!({
        "kind": "APIVersions",
        "versions": ["v1"],
        "serverAddressByClientCIDRs": [{"clientCIDR": "0.0.0.0/0", "serverAddress": "127.0.0.1"}]
    })
}

fn groups() -> Vec<&'static str> {
    let mut gs: Vec<&'static str> = Vec::new();
    for r in RESOURCES {
        if !r.group.is_empty() && !gs.contains(&r.group) {
            gs.push(r.group);
        }
    }
    gs
}

fn group_versions(group: &str) -> Vec<&'static str> {
    let mut vs: Vec<&'static str> = Vec::new();
    for r in RESOURCES.iter().filter(|r| r.group == group) {
        for v in r.versions {
            if !vs.contains(v) {
                vs.push(v);
            }
        }
    }
    vs
}

fn group_doc(group: &str) -> Value {
    let vs = group_versions(group);
    let versions: Vec<Value> = vs
        .iter()
        .map(|v| json!({"groupVersion": format!("{group}/{v}"), "version": v}))
        .collect();
    let preferred = vs.first().copied().unwrap_or("v1");
    json!({
        "name": group,
        "versions": versions,
        "preferredVersion": {"groupVersion": format!("{group}/{preferred}"), "version": preferred}
    })
}

/// `/apis`
pub fn group_list() -> Value {
    let gs: Vec<Value> = groups().into_iter().map(group_doc).collect();
    json!({"kind": "APIGroupList", "apiVersion": "v1", "groups": gs})
}

/// `/apis/<group>`
pub fn group(group: &str) -> Option<Value> {
    if group.is_empty() || !groups().contains(&group) {
        return None;
    }
    let mut d = group_doc(group);
    d["kind"] = json!("APIGroup");
    d["apiVersion"] = json!("v1");
    Some(d)
}

fn resource_entries(r: &ResourceType) -> Vec<Value> {
    let mut out = vec![json!({
        "name": r.resource,
        "singularName": r.singular,
        "namespaced": r.namespaced,
        "kind": r.kind,
        "verbs": ["create", "delete", "deletecollection", "get", "list", "patch", "update", "watch"],
        "shortNames": r.short_names,
    })];
    if r.status {
        out.push(json!({
            "name": format!("{}/status", r.resource),
            "singularName": "",
            "namespaced": r.namespaced,
            "kind": r.kind,
            "verbs": ["get", "patch", "update"],
        }));
    }
    out
}

/// `/api/v1` or `/apis/<group>/<version>`
pub fn resource_list(group: &str, version: &str) -> Option<Value> {
    let rs: Vec<Value> = RESOURCES
        .iter()
        .filter(|r| r.group == group && r.serves(version))
        .flat_map(resource_entries)
        .collect();
    if rs.is_empty() {
        return None;
    }
    let gv = if group.is_empty() {
        version.to_string()
    } else {
        format!("{group}/{version}")
    };
    Some(
        json!({"kind": "APIResourceList", "apiVersion": "v1", "groupVersion": gv, "resources": rs}),
    )
}

fn gv_path(group: &str, version: &str) -> String {
    if group.is_empty() {
        format!("api/{version}")
    } else {
        format!("apis/{group}/{version}")
    }
}

fn all_group_versions() -> Vec<(&'static str, &'static str)> {
    let mut out: Vec<(&'static str, &'static str)> = Vec::new();
    for r in RESOURCES {
        for v in r.versions {
            if !out.contains(&(r.group, *v)) {
                out.push((r.group, v));
            }
        }
    }
    out
}

/// `/openapi/v3`: the index of per-group-version documents.
pub fn openapi_v3_root() -> Value {
    let mut paths = serde_json::Map::new();
    for (g, v) in all_group_versions() {
        let p = gv_path(g, v);
        paths.insert(
            p.clone(),
            json!({"serverRelativeURL": format!("/openapi/v3/{p}?hash=tfops-testcluster")}),
        );
    }
    json!({"paths": paths})
}

/// `/openapi/v3/api/v1`, `/openapi/v3/apis/<g>/<v>`: an OpenAPI 3 document with, per kind, a
/// permissive schema (`x-kubernetes-preserve-unknown-fields`) tagged with its GVK and the
/// object paths whose PATCH accepts `fieldValidation` — what Helm's (kubectl's) query-param
/// verifier looks for before sending server-side field validation.
pub fn openapi_v3_gv(group: &str, version: &str) -> Option<Value> {
    let rs: Vec<&ResourceType> = RESOURCES
        .iter()
        .filter(|r| r.group == group && r.serves(version))
        .collect();
    if rs.is_empty() {
        return None;
    }
    let mut paths = serde_json::Map::new();
    let mut schemas = serde_json::Map::new();
    let query = |name: &str| json!({"name": name, "in": "query", "schema": {"type": "string"}, "uniqueItems": true});
    for r in rs {
        let gvk = json!({"group": group, "version": version, "kind": r.kind});
        let schema_name = format!(
            "{}.{}.{}",
            if group.is_empty() {
                "io.k8s.api.core"
            } else {
                group
            },
            version,
            r.kind
        );
        schemas.insert(
            schema_name.clone(),
            json!({
                "type": "object",
                "x-kubernetes-group-version-kind": [gvk.clone()],
                "x-kubernetes-preserve-unknown-fields": true
            }),
        );
        let base = if r.namespaced {
            format!(
                "/{}/namespaces/{{namespace}}/{}",
                gv_path(group, version),
                r.resource
            )
        } else {
            format!("/{}/{}", gv_path(group, version), r.resource)
        };
        let content = json!({"application/json": {"schema": {"$ref": format!("#/components/schemas/{schema_name}")}}});
        let op = |verb: &str| {
            json!({
                "x-kubernetes-action": verb,
                "x-kubernetes-group-version-kind": gvk.clone(),
                "parameters": [query("dryRun"), query("fieldManager"), query("fieldValidation")],
                "responses": {"200": {"description": "OK", "content": content.clone()}}
            })
        };
        paths.insert(
            format!("{base}/{{name}}"),
            json!({"patch": op("patch"), "put": op("put")}),
        );
        paths.insert(base, json!({"post": op("post")}));
    }
    Some(json!({
        "openapi": "3.0.0",
        "info": {"title": "Kubernetes", "version": "v1.33.0"},
        "paths": paths,
        "components": {"schemas": schemas}
    }))
}
