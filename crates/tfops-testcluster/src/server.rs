//! HTTP layer (thin): parses Kubernetes API paths and query parameters, applies fault rules,
//! logs each request, and maps verbs onto [`Store`] operations and watch streams.

use crate::discovery;
use crate::error::{reason_for_code, ApiError};
use crate::faults::{FaultAction, FaultRequest, Faults};
use crate::patch::{self, PatchKind};
use crate::protobuf;
use crate::registry::{self, ResourceType};
use crate::requests::{RequestLog, RequestRecord, Verb};
use crate::selector::{FieldSelector, LabelSelector};
use crate::store::{Filter, Preconditions, Store, WriteMode};
use crate::watch::{self, WatchParams};
use axum::body::{Body, Bytes};
use axum::extract::{Query, Request, State};
use axum::http::{header, HeaderMap, HeaderValue, Method, StatusCode};
use axum::response::Response;
use axum::Router;
use serde_json::{json, Value};
use std::collections::HashMap;
use std::time::Duration;

/// Shared state of the HTTP handlers.
#[derive(Clone)]
pub(crate) struct ServerState {
    pub store: Store,
    pub faults: Faults,
    pub log: RequestLog,
    pub bookmark_interval: Duration,
}

/// The router: one fallback handler that does its own path parsing (Kubernetes paths are
/// ambiguous for a generic router: `/api/v1/namespaces/x/status` vs `/api/v1/namespaces/x/secrets`).
pub(crate) fn router(state: ServerState) -> Router {
    Router::new().fallback(handle).with_state(state)
}

/// A parsed resource path.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct ResourcePath {
    pub rt: &'static ResourceType,
    pub version: String,
    pub namespace: String,
    pub name: String,
    pub subresource: String,
}

/// A parsed request path.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum Route {
    /// Discovery / version documents.
    Discovery(Value),
    /// A known resource.
    Resource(ResourcePath),
    /// Unknown path or resource.
    NotFound,
}

/// Parse a request path.
pub(crate) fn parse_path(path: &str) -> Route {
    let segs: Vec<&str> = path
        .trim_matches('/')
        .split('/')
        .filter(|s| !s.is_empty())
        .collect();
    let (group, version, rest) = match segs.as_slice() {
        ["version"] => return Route::Discovery(discovery::version()),
        ["api"] => return Route::Discovery(discovery::core_versions()),
        ["apis"] => return Route::Discovery(discovery::group_list()),
        ["api", v, rest @ ..] => ("", *v, rest),
        ["apis", g] => {
            return discovery::group(g)
                .map(Route::Discovery)
                .unwrap_or(Route::NotFound)
        }
        ["apis", g, v, rest @ ..] => (*g, *v, rest),
        ["openapi", "v3"] => return Route::Discovery(discovery::openapi_v3_root()),
        ["openapi", "v3", "api", v] => {
            return discovery::openapi_v3_gv("", v)
                .map(Route::Discovery)
                .unwrap_or(Route::NotFound)
        }
        ["openapi", "v3", "apis", g, v] => {
            return discovery::openapi_v3_gv(g, v)
                .map(Route::Discovery)
                .unwrap_or(Route::NotFound)
        }
        _ => return Route::NotFound,
    };
    let mk = |rt: &'static ResourceType, ns: &str, name: &str, sub: &str| {
        Route::Resource(ResourcePath {
            rt,
            version: version.to_string(),
            namespace: ns.to_string(),
            name: name.to_string(),
            subresource: sub.to_string(),
        })
    };
    let find = |r: &str| registry::by_resource(group, version, r);
    let is_ns_sub = |s: &str| matches!(s, "status" | "finalize");
    match rest {
        [] => discovery::resource_list(group, version)
            .map(Route::Discovery)
            .unwrap_or(Route::NotFound),
        ["namespaces", ns, res, tail @ ..]
            if group.is_empty() && is_ns_sub(res) && tail.is_empty() =>
        {
            match find("namespaces") {
                Some(rt) => mk(rt, "", ns, res),
                None => Route::NotFound,
            }
        }
        ["namespaces", ns, res, tail @ ..] => match find(res) {
            Some(rt) if rt.namespaced => match tail {
                [] => mk(rt, ns, "", ""),
                [name] => mk(rt, ns, name, ""),
                [name, sub] => mk(rt, ns, name, sub),
                _ => Route::NotFound,
            },
            _ => Route::NotFound,
        },
        [res, tail @ ..] => match find(res) {
            Some(rt) => match tail {
                [] => mk(rt, "", "", ""),
                [name] if !rt.namespaced => mk(rt, "", name, ""),
                [name, sub] if !rt.namespaced => mk(rt, "", name, sub),
                _ => Route::NotFound,
            },
            None => Route::NotFound,
        },
    }
}

/// The requesting user: the bearer token, else the `Impersonate-User` header (Go clients do
/// not send bearer tokens over plain HTTP), else "".
fn user_of(headers: &HeaderMap) -> String {
    let bearer = headers
        .get(header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.strip_prefix("Bearer "))
        .map(str::trim)
        .filter(|t| !t.is_empty());
    let impersonated = headers
        .get("impersonate-user")
        .and_then(|v| v.to_str().ok());
    bearer.or(impersonated).unwrap_or("").to_string()
}

fn json_response(code: u16, body: &Value) -> Response {
    let bytes = serde_json::to_vec(body).unwrap_or_default();
    let mut r = Response::new(Body::from(bytes));
    *r.status_mut() = StatusCode::from_u16(code).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR);
    r.headers_mut().insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("application/json"),
    );
    r
}

fn error_response(e: &ApiError) -> Response {
    json_response(e.code, &e.status_body())
}

fn not_found_path() -> ApiError {
    ApiError::new(
        404,
        "NotFound",
        "the server could not find the requested resource",
    )
}

fn verb_for(method: &Method, rp: &ResourcePath, watch: bool) -> Option<Verb> {
    let named = !rp.name.is_empty();
    Some(match *method {
        Method::GET if named => Verb::Get,
        Method::GET if watch => Verb::Watch,
        Method::GET => Verb::List,
        Method::POST if !named => Verb::Create,
        Method::PUT if named => Verb::Update,
        Method::PATCH if named => Verb::Patch,
        Method::DELETE if named => Verb::Delete,
        Method::DELETE => Verb::DeleteCollection,
        _ => return None,
    })
}

fn truthy(q: &HashMap<String, String>, k: &str) -> bool {
    q.get(k).is_some_and(|v| v == "true" || v == "1")
}

async fn handle(State(s): State<ServerState>, req: Request) -> Response {
    let (parts, body) = req.into_parts();
    let user = user_of(&parts.headers);
    let path = parts.uri.path().to_string();
    let query: HashMap<String, String> = Query::try_from_uri(&parts.uri)
        .map(|Query(q)| q)
        .unwrap_or_default();
    let mut rec = RequestRecord {
        user: user.clone(),
        method: parts.method.to_string(),
        path: path.clone(),
        verb: None,
        group: String::new(),
        resource: String::new(),
        subresource: String::new(),
        namespace: String::new(),
        name: String::new(),
        status: 200,
        is_watch: false,
        error: String::new(),
    };
    let rp = match parse_path(&path) {
        Route::Discovery(doc) => {
            let resp = if parts.method == Method::GET {
                json_response(200, &doc)
            } else {
                error_response(&ApiError::new(
                    405,
                    "MethodNotAllowed",
                    "method not allowed",
                ))
            };
            rec.status = resp.status().as_u16();
            s.log.push(rec);
            return resp;
        }
        Route::NotFound => {
            rec.status = 404;
            s.log.push(rec);
            return error_response(&not_found_path());
        }
        Route::Resource(rp) => rp,
    };
    let watch = truthy(&query, "watch");
    let verb = verb_for(&parts.method, &rp, watch);
    rec.verb = verb;
    rec.group = rp.rt.group.to_string();
    rec.resource = rp.rt.resource.to_string();
    rec.subresource = rp.subresource.clone();
    rec.namespace = rp.namespace.clone();
    rec.name = rp.name.clone();
    rec.is_watch = verb == Some(Verb::Watch);

    let actions = s.faults.take(&FaultRequest {
        user: &user,
        verb,
        resource: rp.rt.resource,
        subresource: &rp.subresource,
        namespace: &rp.namespace,
        name: &rp.name,
    });
    let mut drop_after = None;
    for a in &actions {
        match a {
            FaultAction::Latency(d) => tokio::time::sleep(*d).await,
            FaultAction::DropWatchAfter(k) => drop_after = Some(*k),
            FaultAction::Status {
                code,
                message,
                retry_after,
            } => {
                let msg = message.clone().unwrap_or_else(|| {
                    format!(
                        "injected fault: {code} for {} {}",
                        verb.map(Verb::as_str).unwrap_or("?"),
                        rp.rt.resource
                    )
                });
                let mut e = ApiError::new(*code, reason_for_code(*code), msg);
                if !rp.name.is_empty() {
                    e = e.with_details(&rp.name, rp.rt.group, rp.rt.resource);
                }
                let mut resp = error_response(&e);
                if let Some(secs) = retry_after {
                    if let Ok(v) = HeaderValue::from_str(&secs.to_string()) {
                        resp.headers_mut().insert(header::RETRY_AFTER, v);
                    }
                }
                rec.status = *code;
                s.log.push(rec);
                return resp;
            }
        }
    }

    let body = match axum::body::to_bytes(body, 256 * 1024 * 1024).await {
        Ok(b) => b,
        Err(e) => {
            rec.status = 400;
            s.log.push(rec);
            return error_response(&ApiError::bad_request(format!("reading body: {e}")));
        }
    };
    let resp = match verb {
        Some(Verb::Watch) => match watch_response(&s, &rp, &query, drop_after) {
            Ok(r) => r,
            Err(e) => error_response(&e),
        },
        Some(v) => match dispatch(&s, v, &rp, &query, &parts.headers, &body) {
            Ok((code, v)) => json_response(code, &v),
            Err(e) => {
                rec.error = e.message.clone();
                error_response(&e)
            }
        },
        None => error_response(&ApiError::new(
            405,
            "MethodNotAllowed",
            "method not allowed",
        )),
    };
    rec.status = resp.status().as_u16();
    s.log.push(rec);
    resp
}

fn filter_from(rp: &ResourcePath, q: &HashMap<String, String>) -> Result<Filter, ApiError> {
    let labels = LabelSelector::parse(q.get("labelSelector").map(String::as_str).unwrap_or(""))
        .map_err(|e| ApiError::bad_request(e.to_string()))?;
    let fields = FieldSelector::parse(q.get("fieldSelector").map(String::as_str).unwrap_or(""))
        .map_err(|e| ApiError::bad_request(e.to_string()))?;
    Ok(Filter {
        namespace: (rp.rt.namespaced && !rp.namespace.is_empty()).then(|| rp.namespace.clone()),
        labels,
        fields,
    })
}

fn at_version(rp: &ResourcePath, mut obj: Value) -> Value {
    obj["apiVersion"] = json!(rp.rt.api_version(&rp.version));
    obj
}

/// Parse a create/update body: JSON, or Kubernetes protobuf for the kinds [`protobuf`] knows.
fn parse_body(headers: &HeaderMap, body: &Bytes) -> Result<Value, ApiError> {
    let ct = headers
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .unwrap_or("");
    if ct.starts_with(protobuf::CONTENT_TYPE) {
        return protobuf::decode(body)
            .map_err(|e| ApiError::new(415, "UnsupportedMediaType", e.to_string()));
    }
    serde_json::from_slice(body)
        .map_err(|e| ApiError::bad_request(format!("invalid JSON body: {e}")))
}

fn write_mode(rp: &ResourcePath) -> Result<WriteMode, ApiError> {
    match rp.subresource.as_str() {
        "" => Ok(WriteMode::Main),
        "status" if rp.rt.status => Ok(WriteMode::Status),
        // Namespace finalize: accepted as a status-like write of spec.finalizers.
        "finalize" if rp.rt.kind == "Namespace" => Ok(WriteMode::Admin),
        _ => Err(not_found_path()),
    }
}

fn dispatch(
    s: &ServerState,
    verb: Verb,
    rp: &ResourcePath,
    q: &HashMap<String, String>,
    headers: &HeaderMap,
    body: &Bytes,
) -> Result<(u16, Value), ApiError> {
    let strict_store;
    let store = if q.get("fieldValidation").map(String::as_str) == Some("Strict") {
        strict_store = s.store.strict();
        &strict_store
    } else {
        &s.store
    };
    let dry_run = q.get("dryRun").is_some_and(|v| v == "All");
    match verb {
        Verb::Get => {
            write_mode(rp)?;
            store
                .get_in(rp.rt, &rp.namespace, &rp.name)
                .map(|o| (200, at_version(rp, o)))
        }
        Verb::List => {
            let filter = filter_from(rp, q)?;
            let (items, rv) = store.list_in(rp.rt, &filter);
            let items: Vec<Value> = items.into_iter().map(|o| at_version(rp, o)).collect();
            Ok((
                200,
                json!({
                    "kind": format!("{}List", rp.rt.kind),
                    "apiVersion": rp.rt.api_version(&rp.version),
                    "metadata": {"resourceVersion": rv.to_string()},
                    "items": items,
                }),
            ))
        }
        Verb::Create => {
            if !rp.subresource.is_empty() {
                return Err(not_found_path());
            }
            let obj = parse_body(headers, body)?;
            if dry_run {
                return Ok((201, at_version(rp, obj)));
            }
            let created = store.create_in(rp.rt, &rp.namespace, obj, WriteMode::Main)?;
            Ok((201, at_version(rp, created)))
        }
        Verb::Update => {
            let mode = write_mode(rp)?;
            let obj = parse_body(headers, body)?;
            if dry_run {
                return Ok((200, at_version(rp, obj)));
            }
            let out = store.update_in(rp.rt, &rp.namespace, &rp.name, obj, mode)?;
            Ok((200, at_version(rp, out)))
        }
        Verb::Patch => {
            let mode = write_mode(rp)?;
            let ct = headers
                .get(header::CONTENT_TYPE)
                .and_then(|v| v.to_str().ok())
                .unwrap_or("");
            let kind = PatchKind::from_content_type(ct)
                .map_err(|e| ApiError::new(415, "UnsupportedMediaType", e.to_string()))?;
            let p =
                patch::parse_body(kind, body).map_err(|e| ApiError::bad_request(e.to_string()))?;
            if dry_run {
                let cur = store.get_in(rp.rt, &rp.namespace, &rp.name)?;
                let out = patch::apply(kind, &cur, &p)
                    .map_err(|e| ApiError::bad_request(e.to_string()))?;
                return Ok((200, at_version(rp, out)));
            }
            let existed = store.get_in(rp.rt, &rp.namespace, &rp.name).is_ok();
            let out = store.patch_in(rp.rt, &rp.namespace, &rp.name, kind, &p, mode)?;
            Ok((if existed { 200 } else { 201 }, at_version(rp, out)))
        }
        Verb::Delete => {
            if !rp.subresource.is_empty() {
                return Err(not_found_path());
            }
            let opts: Value = if body.is_empty() {
                Value::Null
            } else {
                serde_json::from_slice(body).unwrap_or(Value::Null)
            };
            let pre = Preconditions {
                uid: opts
                    .pointer("/preconditions/uid")
                    .and_then(Value::as_str)
                    .map(str::to_string),
                resource_version: opts
                    .pointer("/preconditions/resourceVersion")
                    .and_then(Value::as_str)
                    .map(str::to_string),
                orphan_dependents: opts.get("propagationPolicy").and_then(Value::as_str)
                    == Some("Orphan")
                    || q.get("propagationPolicy").map(String::as_str) == Some("Orphan"),
            };
            if dry_run {
                return store
                    .get_in(rp.rt, &rp.namespace, &rp.name)
                    .map(|o| (200, at_version(rp, o)));
            }
            let out = store.delete_in(rp.rt, &rp.namespace, &rp.name, &pre)?;
            Ok((200, at_version(rp, out)))
        }
        Verb::DeleteCollection => {
            let filter = filter_from(rp, q)?;
            let (items, rv) = store.list_in(rp.rt, &filter);
            let mut deleted = Vec::new();
            for o in items {
                let ns = o
                    .pointer("/metadata/namespace")
                    .and_then(Value::as_str)
                    .unwrap_or("");
                let name = o
                    .pointer("/metadata/name")
                    .and_then(Value::as_str)
                    .unwrap_or("");
                if let Ok(d) = store.delete_in(rp.rt, ns, name, &Preconditions::default()) {
                    deleted.push(at_version(rp, d));
                }
            }
            Ok((
                200,
                json!({
                    "kind": format!("{}List", rp.rt.kind),
                    "apiVersion": rp.rt.api_version(&rp.version),
                    "metadata": {"resourceVersion": rv.to_string()},
                    "items": deleted,
                }),
            ))
        }
        Verb::Watch => Err(ApiError::internal("watch dispatched as a plain request")),
    }
}

fn watch_response(
    s: &ServerState,
    rp: &ResourcePath,
    q: &HashMap<String, String>,
    drop_after: Option<usize>,
) -> Result<Response, ApiError> {
    let filter = filter_from(rp, q)?;
    // timeoutSeconds absent or 0: the server's own default (like the real minimum request
    // timeout); kube's watcher sends 0 to disable its client-side idle timeout.
    let timeout = q
        .get("timeoutSeconds")
        .and_then(|t| t.parse::<u64>().ok())
        .filter(|t| *t > 0)
        .map(Duration::from_secs)
        .unwrap_or(Duration::from_secs(1800));
    let params = WatchParams {
        resource_version: q.get("resourceVersion").cloned(),
        allow_bookmarks: truthy(q, "allowWatchBookmarks"),
        send_initial_events: truthy(q, "sendInitialEvents"),
        timeout,
        drop_after,
        bookmark_interval: s.bookmark_interval,
        drops: s.faults.watch_drops(),
    };
    let body = watch::watch_body(s.store.clone(), rp.rt, rp.version.clone(), filter, params);
    let mut r = Response::new(body);
    r.headers_mut().insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("application/json"),
    );
    Ok(r)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn res(path: &str) -> Option<(String, String, String, String)> {
        match parse_path(path) {
            Route::Resource(rp) => Some((
                rp.rt.resource.to_string(),
                rp.namespace,
                rp.name,
                rp.subresource,
            )),
            _ => None,
        }
    }

    #[test]
    fn paths() {
        let t = |a: &str, b: &str, c: &str, d: &str| Some((a.into(), b.into(), c.into(), d.into()));
        assert_eq!(res("/api/v1/namespaces"), t("namespaces", "", "", ""));
        assert_eq!(
            res("/api/v1/namespaces/ns1"),
            t("namespaces", "", "ns1", "")
        );
        assert_eq!(
            res("/api/v1/namespaces/ns1/status"),
            t("namespaces", "", "ns1", "status")
        );
        assert_eq!(
            res("/api/v1/namespaces/ns1/secrets"),
            t("secrets", "ns1", "", "")
        );
        assert_eq!(
            res("/api/v1/namespaces/ns1/secrets/s"),
            t("secrets", "ns1", "s", "")
        );
        assert_eq!(res("/api/v1/secrets"), t("secrets", "", "", ""));
        assert_eq!(
            res("/apis/infra.contrib.fluxcd.io/v1alpha2/namespaces/n/terraforms/x/status"),
            t("terraforms", "n", "x", "status")
        );
        assert_eq!(
            res("/apis/rbac.authorization.k8s.io/v1/clusterroles/r"),
            t("clusterroles", "", "r", "")
        );
        assert_eq!(res("/api/v1/secrets/x"), None);
        assert_eq!(res("/api/v1/namespaces/n/widgets"), None);
        assert_eq!(res("/apis/infra.contrib.fluxcd.io/v9/terraforms"), None);
        assert!(matches!(parse_path("/version"), Route::Discovery(_)));
        assert!(matches!(parse_path("/apis/batch/v1"), Route::Discovery(_)));
    }
}
