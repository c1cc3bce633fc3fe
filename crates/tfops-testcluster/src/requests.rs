//! The request log: one record per API request (user = bearer token, verb, resource,
//! namespace, name, subresource, status code, watch flag), for counting in tests.

use std::sync::{Arc, Mutex};

/// Kubernetes API verbs.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Verb {
    /// GET one object
    Get,
    /// GET a collection
    List,
    /// GET a collection with `watch=true`
    Watch,
    /// POST
    Create,
    /// PUT
    Update,
    /// PATCH
    Patch,
    /// DELETE one object
    Delete,
    /// DELETE a collection
    DeleteCollection,
}

impl Verb {
    /// Lower-case name as in RBAC rules.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Get => "get",
            Self::List => "list",
            Self::Watch => "watch",
            Self::Create => "create",
            Self::Update => "update",
            Self::Patch => "patch",
            Self::Delete => "delete",
            Self::DeleteCollection => "deletecollection",
        }
    }

    /// Parse an RBAC-style verb name.
    pub fn parse(s: &str) -> Option<Self> {
        Some(match s {
            "get" => Self::Get,
            "list" => Self::List,
            "watch" => Self::Watch,
            "create" => Self::Create,
            "update" => Self::Update,
            "patch" => Self::Patch,
            "delete" => Self::Delete,
            "deletecollection" => Self::DeleteCollection,
            _ => return None,
        })
    }
}

/// One logged request.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RequestRecord {
    /// Bearer token (the user name given to `TestCluster::client`), "" when anonymous.
    pub user: String,
    /// HTTP method.
    pub method: String,
    /// URL path.
    pub path: String,
    /// Verb (None for discovery and other non-resource requests).
    pub verb: Option<Verb>,
    /// API group ("" = core).
    pub group: String,
    /// Plural resource ("" for non-resource requests).
    pub resource: String,
    /// Subresource (`status`) or "".
    pub subresource: String,
    /// Namespace or "".
    pub namespace: String,
    /// Object name or "".
    pub name: String,
    /// HTTP status code returned.
    pub status: u16,
    /// Whether this was a watch.
    pub is_watch: bool,
    /// The `Status` message of a failed request handled by the store ("" otherwise).
    pub error: String,
}

/// Shared, append-only request log.
#[derive(Clone, Default)]
pub struct RequestLog {
    inner: Arc<Mutex<Vec<RequestRecord>>>,
}

impl RequestLog {
    /// Append a record.
    pub fn push(&self, r: RequestRecord) {
        self.inner.lock().unwrap_or_else(|e| e.into_inner()).push(r);
    }

    /// All records so far.
    pub fn all(&self) -> Vec<RequestRecord> {
        self.inner.lock().unwrap_or_else(|e| e.into_inner()).clone()
    }

    /// Records matching a predicate.
    pub fn filter(&self, f: impl Fn(&RequestRecord) -> bool) -> Vec<RequestRecord> {
        self.inner
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .iter()
            .filter(|r| f(r))
            .cloned()
            .collect()
    }

    /// Number of requests by `user` with `verb`.
    pub fn count(&self, user: &str, verb: Verb) -> usize {
        self.filter(|r| r.user == user && r.verb == Some(verb))
            .len()
    }

    /// Number of requests by `user` (any verb, discovery included).
    pub fn count_user(&self, user: &str) -> usize {
        self.filter(|r| r.user == user).len()
    }

    /// Number of requests by `user` with `verb` on `resource` (plural).
    pub fn count_resource(&self, user: &str, verb: Verb, resource: &str) -> usize {
        self.filter(|r| r.user == user && r.verb == Some(verb) && r.resource == resource)
            .len()
    }

    /// Forget everything logged so far.
    pub fn clear(&self) {
        self.inner.lock().unwrap_or_else(|e| e.into_inner()).clear();
    }
}
