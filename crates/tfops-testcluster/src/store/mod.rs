//! The object store: every object of the cluster with the API server's semantics —
//! resourceVersion (one global counter), uid, creationTimestamp, generation, optimistic
//! concurrency, finalizers and deletionTimestamp, the status subresource, namespace lifecycle
//! (auto-create, Terminating, cascading deletion) — plus the event history that watches read.
//!
//! [`Store`] is a cheap clonable handle. Its `pub` seeding/assertion methods (`create`, `get`,
//! `list`, `delete`, `update`, `patch_merge`, `force_remove`, `set_namespace_terminating`, …)
//! bypass HTTP; the HTTP layer uses the `*_in` methods with explicit [`WriteMode`]s.
//!
//! Files: `object` (one object's metadata), `write` (create / update / delete), `namespaces`,
//! `gc` (owner references), `seed` (the test API); this file holds the store and its reads.

mod gc;
mod namespaces;
mod object;
mod seed;
mod write;

use object::*;

use crate::clock::Clock;
use crate::crd;
use crate::error::ApiError;
use crate::patch::{self, PatchKind};
use crate::registry::{self, ResourceType};
use crate::selector::{FieldSelector, LabelSelector};
use crate::validate;
use base64::Engine as _;
use serde_json::{json, Map, Value};
use std::collections::hash_map::RandomState;
use std::collections::{BTreeMap, BTreeSet, HashMap, VecDeque};
use std::hash::BuildHasher;
use std::sync::{Arc, Mutex, MutexGuard};

/// Which part of an object a write may change.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum WriteMode {
    /// The main endpoint: status changes are ignored for resources with a status subresource
    /// (and dropped on create).
    Main,
    /// The `/status` subresource: only `status` changes.
    Status,
    /// Direct seeding from tests: everything may change.
    Admin,
}

/// Watch event type.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum EventType {
    /// ADDED
    Added,
    /// MODIFIED
    Modified,
    /// DELETED
    Deleted,
}

impl EventType {
    /// Wire name.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Added => "ADDED",
            Self::Modified => "MODIFIED",
            Self::Deleted => "DELETED",
        }
    }
}

/// One change recorded in the store's history (what watches replay).
#[derive(Debug, Clone)]
pub struct HistoryEntry {
    /// resourceVersion of the change.
    pub rv: u64,
    /// What happened.
    pub event: EventType,
    /// The resource type.
    pub rt: &'static ResourceType,
    /// Namespace ("" for cluster-scoped).
    pub namespace: String,
    /// Object name.
    pub name: String,
    /// The object after the change (for DELETED: its last state).
    pub object: Value,
    /// The object before the change (MODIFIED / DELETED).
    pub previous: Option<Value>,
}

/// Which objects a list or watch selects.
#[derive(Debug, Clone, Default)]
pub struct Filter {
    /// Only this namespace (None = all).
    pub namespace: Option<String>,
    /// Label selector.
    pub labels: LabelSelector,
    /// Field selector.
    pub fields: FieldSelector,
}

impl Filter {
    /// Whether `obj` (in namespace `ns`) is selected.
    pub fn matches(&self, ns: &str, obj: &Value) -> bool {
        self.namespace.as_deref().is_none_or(|n| n == ns)
            && self.labels.matches(obj)
            && self.fields.matches(obj)
    }
}

/// DELETE options: preconditions and propagation.
#[derive(Debug, Clone, Default)]
pub struct Preconditions {
    /// Required current uid.
    pub uid: Option<String>,
    /// Required current resourceVersion.
    pub resource_version: Option<String>,
    /// `propagationPolicy: Orphan`: dependents lose their ownerReference instead of being
    /// garbage-collected (Background and Foreground both collect them; Foreground is not
    /// ordered here).
    pub orphan_dependents: bool,
}

/// Store behaviour knobs (from `ClusterOptions`).
#[derive(Debug, Clone)]
pub struct StoreConfig {
    /// Create a missing namespace on first use instead of answering 404.
    pub auto_create_namespaces: bool,
    /// How many changes the history keeps for watch resume (older → 410 Gone).
    pub history_limit: usize,
}

impl Default for StoreConfig {
    fn default() -> Self {
        Self {
            auto_create_namespaces: true,
            history_limit: 100_000,
        }
    }
}

type Key = (&'static str, &'static str, String, String);

struct State {
    rv: u64,
    objects: BTreeMap<Key, Value>,
    history: VecDeque<HistoryEntry>,
    /// Highest rv dropped from history (watches from below it get 410).
    compacted_through: u64,
    /// Namespaces being deleted with cascade (DELETE namespace).
    cascading: BTreeSet<String>,
    /// Compiled CRD schemas by (group, plural, version).
    crds: HashMap<(String, String, String), Arc<crd::VersionSchema>>,
    uid_counter: u64,
    /// uids of objects removed since the last garbage collection, with "orphan dependents".
    removed: Vec<(String, bool)>,
    /// uids whose deletion asked for orphaning (applied when they are finally removed).
    orphan_on_removal: BTreeSet<String>,
}

struct Inner {
    state: Mutex<State>,
    notify: tokio::sync::watch::Sender<u64>,
    clock: Clock,
    config: StoreConfig,
    random: RandomState,
}

/// Handle on the cluster's objects.
#[derive(Clone)]
pub struct Store {
    inner: Arc<Inner>,
    /// `fieldValidation=Strict`: unknown fields of CRD-backed objects are an error instead of
    /// being pruned (see [`Store::strict`]).
    strict: bool,
}

fn qualified_err_not_found(rt: &ResourceType, name: &str) -> ApiError {
    ApiError::not_found(&rt.qualified(), rt.group, rt.resource, name)
}

fn ns_rt() -> Result<&'static ResourceType, ApiError> {
    registry::by_resource("", "v1", "namespaces")
        .ok_or_else(|| ApiError::internal("namespaces missing from registry"))
}

impl State {
    fn key(rt: &'static ResourceType, ns: &str, name: &str) -> Key {
        let ns = if rt.namespaced { ns } else { "" };
        (rt.group, rt.resource, ns.to_string(), name.to_string())
    }

    fn bump(&mut self) -> u64 {
        self.rv += 1;
        self.rv
    }

    fn record(
        &mut self,
        limit: usize,
        event: EventType,
        rt: &'static ResourceType,
        key: &Key,
        object: Value,
        previous: Option<Value>,
    ) {
        if event == EventType::Deleted && rt.kind == "CustomResourceDefinition" {
            let group = object
                .pointer("/spec/group")
                .and_then(Value::as_str)
                .unwrap_or("");
            let plural = object
                .pointer("/spec/names/plural")
                .and_then(Value::as_str)
                .unwrap_or("");
            self.crds.retain(|k, _| !(k.0 == group && k.1 == plural));
        }
        if event == EventType::Deleted {
            if let Some(uid) = object.pointer("/metadata/uid").and_then(Value::as_str) {
                let orphan = self.orphan_on_removal.remove(uid);
                self.removed.push((uid.to_string(), orphan));
            }
        }
        self.history.push_back(HistoryEntry {
            rv: self.rv,
            event,
            rt,
            namespace: key.2.clone(),
            name: key.3.clone(),
            object,
            previous,
        });
        while self.history.len() > limit.max(1) {
            if let Some(e) = self.history.pop_front() {
                self.compacted_through = e.rv;
            }
        }
    }
}

impl Store {
    /// A new empty store.
    pub fn new(config: StoreConfig) -> Self {
        let (notify, _) = tokio::sync::watch::channel(0);
        Self {
            inner: Arc::new(Inner {
                state: Mutex::new(State {
                    rv: 0,
                    objects: BTreeMap::new(),
                    history: VecDeque::new(),
                    compacted_through: 0,
                    cascading: BTreeSet::new(),
                    crds: HashMap::new(),
                    uid_counter: 0,
                    removed: Vec::new(),
                    orphan_on_removal: BTreeSet::new(),
                }),
                notify,
                clock: Clock::start(),
                config,
                random: RandomState::new(),
            }),
            strict: false,
        }
    }

    /// This handle with `fieldValidation=Strict` semantics: writes of CRD-backed objects with
    /// fields unknown to the CRD schema fail (422) instead of being pruned.
    pub fn strict(&self) -> Store {
        Store {
            inner: self.inner.clone(),
            strict: true,
        }
    }

    /// Prune and validate `obj` of `rt` against a stored CRD schema, if there is one; and
    /// (re)compile schemas when `obj` is itself a CRD.
    fn apply_crd_schema(
        &self,
        st: &mut State,
        rt: &'static ResourceType,
        name: &str,
        obj: &mut Value,
    ) -> Result<(), ApiError> {
        if rt.kind == "CustomResourceDefinition" {
            let compiled = crd::compile(obj).map_err(|m| ApiError::invalid(rt.kind, name, m))?;
            let group = obj
                .pointer("/spec/group")
                .and_then(Value::as_str)
                .unwrap_or("");
            let plural = obj
                .pointer("/spec/names/plural")
                .and_then(Value::as_str)
                .unwrap_or("");
            st.crds.retain(|k, _| !(k.0 == group && k.1 == plural));
            st.crds.extend(compiled);
            return Ok(());
        }
        if st.crds.is_empty() {
            return Ok(());
        }
        let version = obj
            .get("apiVersion")
            .and_then(Value::as_str)
            .map(|av| registry::split_api_version(av).1.to_string())
            .unwrap_or_default();
        let key = (rt.group.to_string(), rt.resource.to_string(), version);
        let Some(vs) = st.crds.get(&key).cloned() else {
            return Ok(());
        };
        let unknown = crd::prune(obj, &vs.schema);
        if self.strict && !unknown.is_empty() {
            let list: Vec<String> = unknown
                .iter()
                .map(|u| format!("unknown field \"{u}\""))
                .collect();
            return Err(ApiError::bad_request(format!(
                "strict decoding error: {}",
                list.join(", ")
            )));
        }
        crd::validate(obj, &vs).map_err(|errs| {
            ApiError::invalid(&format!("{}.{}", rt.kind, rt.group), name, errs.join(", "))
                .with_details(name, rt.group, rt.resource)
        })
    }

    fn lock(&self) -> MutexGuard<'_, State> {
        self.inner.state.lock().unwrap_or_else(|e| e.into_inner())
    }

    fn notify(&self, rv: u64) {
        self.inner.notify.send_replace(rv);
    }

    /// The cluster clock.
    pub fn clock(&self) -> Clock {
        self.inner.clock
    }

    /// Subscribe to "something changed" notifications (value = latest resourceVersion).
    pub fn subscribe(&self) -> tokio::sync::watch::Receiver<u64> {
        self.inner.notify.subscribe()
    }

    /// Current (latest) resourceVersion.
    pub fn resource_version(&self) -> u64 {
        self.lock().rv
    }

    fn new_uid(&self, st: &mut State) -> String {
        st.uid_counter += 1;
        let a = self.inner.random.hash_one(st.uid_counter);
        let b = self.inner.random.hash_one((st.uid_counter, "uid"));
        format!(
            "{:08x}-{:04x}-4{:03x}-8{:03x}-{:012x}",
            (a >> 32) as u32,
            (a >> 16) as u16,
            (a & 0xfff) as u16,
            (b >> 48) as u16 & 0xfff,
            b & 0xffff_ffff_ffff
        )
    }

    fn random_suffix(&self, st: &mut State) -> String {
        st.uid_counter += 1;
        let mut x = self.inner.random.hash_one((st.uid_counter, "name"));
        let alphabet = b"bcdfghjklmnpqrstvwxz2456789";
        let mut s = String::new();
        for _ in 0..5 {
            s.push(char::from(alphabet[(x % alphabet.len() as u64) as usize]));
            x /= alphabet.len() as u64;
        }
        s
    }

    // ----- namespace helpers -------------------------------------------------------------

    fn finish(&self, mut st: MutexGuard<'_, State>) {
        self.collect_garbage(&mut st);
        self.reconcile_namespaces(&mut st);
        self.collect_garbage(&mut st);
        let rv = st.rv;
        drop(st);
        self.notify(rv);
    }

    // ----- API used by the HTTP layer --------------------------------------------------------

    /// Create `obj` of type `rt` in `ns`.
    pub fn create_in(
        &self,
        rt: &'static ResourceType,
        ns: &str,
        obj: Value,
        mode: WriteMode,
    ) -> Result<Value, ApiError> {
        let mut st = self.lock();
        let r = self.create_locked(&mut st, rt, ns, obj, mode);
        self.finish(st);
        r
    }

    /// Get one object.
    pub fn get_in(
        &self,
        rt: &'static ResourceType,
        ns: &str,
        name: &str,
    ) -> Result<Value, ApiError> {
        self.lock()
            .objects
            .get(&State::key(rt, ns, name))
            .cloned()
            .ok_or_else(|| qualified_err_not_found(rt, name))
    }

    /// List objects of `rt` selected by `filter`, with the list's resourceVersion.
    pub fn list_in(&self, rt: &'static ResourceType, filter: &Filter) -> (Vec<Value>, u64) {
        let st = self.lock();
        let start: Key = (rt.group, rt.resource, String::new(), String::new());
        let items = st
            .objects
            .range(start..)
            .take_while(|(k, _)| k.0 == rt.group && k.1 == rt.resource)
            .filter(|(k, v)| filter.matches(&k.2, v))
            .map(|(_, v)| v.clone())
            .collect();
        (items, st.rv)
    }

    /// Replace an object (PUT).
    pub fn update_in(
        &self,
        rt: &'static ResourceType,
        ns: &str,
        name: &str,
        obj: Value,
        mode: WriteMode,
    ) -> Result<Value, ApiError> {
        let mut st = self.lock();
        let r = self.update_locked(&mut st, rt, ns, name, obj, mode);
        self.finish(st);
        r
    }

    /// Patch an object (PATCH). Server-side apply creates a missing object.
    pub fn patch_in(
        &self,
        rt: &'static ResourceType,
        ns: &str,
        name: &str,
        kind: PatchKind,
        patch_body: &Value,
        mode: WriteMode,
    ) -> Result<Value, ApiError> {
        let mut st = self.lock();
        let current = st.objects.get(&State::key(rt, ns, name)).cloned();
        let r = match current {
            None if kind == PatchKind::Apply && mode != WriteMode::Status => {
                let mut obj = patch_body.clone();
                if obj.is_object() {
                    meta_mut(&mut obj).insert("name".into(), json!(name));
                }
                self.create_locked(&mut st, rt, ns, obj, mode)
            }
            None => Err(qualified_err_not_found(rt, name)),
            Some(cur) => match patch::apply(kind, &cur, patch_body) {
                Ok(next) => self.update_locked(&mut st, rt, ns, name, next, mode),
                Err(patch::PatchError::Failed(m)) => Err(ApiError::invalid(rt.kind, name, m)),
                Err(e) => Err(ApiError::bad_request(e.to_string())),
            },
        };
        self.finish(st);
        r
    }

    /// Delete an object (DELETE): with finalizers it only gets a deletionTimestamp.
    pub fn delete_in(
        &self,
        rt: &'static ResourceType,
        ns: &str,
        name: &str,
        pre: &Preconditions,
    ) -> Result<Value, ApiError> {
        let mut st = self.lock();
        let r = self.delete_locked(&mut st, rt, ns, name, pre);
        self.finish(st);
        r
    }

    /// A consistent snapshot for a watch that starts with the current state: the selected
    /// objects and the resourceVersion to continue from.
    pub fn snapshot(&self, rt: &'static ResourceType, filter: &Filter) -> (Vec<Value>, u64) {
        self.list_in(rt, filter)
    }

    /// Changes to `rt` after `since` selected by `filter`, translated the way the real watch
    /// cache does (an object that stops matching yields DELETED, one that starts matching
    /// ADDED). Returns the events and the latest resourceVersion of the store.
    /// `410 Gone` when `since` is older than the retained history.
    pub fn events_after(
        &self,
        rt: &'static ResourceType,
        since: u64,
        filter: &Filter,
    ) -> Result<(Vec<(EventType, Value)>, u64), ApiError> {
        let st = self.lock();
        if since < st.compacted_through {
            return Err(ApiError::gone(format!(
                "too old resource version: {since} ({})",
                st.compacted_through + 1
            )));
        }
        let start = st.history.partition_point(|e| e.rv <= since);
        let mut out = Vec::new();
        for e in st.history.iter().skip(start) {
            if e.rt.group != rt.group || e.rt.resource != rt.resource {
                continue;
            }
            let new_match = filter.matches(&e.namespace, &e.object);
            let old_match = e
                .previous
                .as_ref()
                .is_some_and(|p| filter.matches(&e.namespace, p));
            let ev = match e.event {
                EventType::Added => new_match.then_some(EventType::Added),
                EventType::Deleted => (new_match || old_match).then_some(EventType::Deleted),
                EventType::Modified => match (old_match, new_match) {
                    (true, true) => Some(EventType::Modified),
                    (false, true) => Some(EventType::Added),
                    (true, false) => Some(EventType::Deleted),
                    (false, false) => None,
                },
            };
            if let Some(ev) = ev {
                out.push((ev, e.object.clone()));
            }
        }
        Ok((out, st.rv))
    }

    /// The change history (oldest first) — e.g. to assert that a ledger Secret was created
    /// before a finalizer was removed.
    pub fn history(&self) -> Vec<HistoryEntry> {
        self.lock().history.iter().cloned().collect()
    }

    /// Drop all history: watches resuming from an older resourceVersion get 410 Gone.
    pub fn compact_history(&self) {
        let mut st = self.lock();
        st.history.clear();
        st.compacted_through = st.rv;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn store() -> Store {
        Store::new(StoreConfig::default())
    }

    fn tf(name: &str, finalizers: &[&str]) -> Value {
        json!({
            "apiVersion": "infra.contrib.fluxcd.io/v1alpha2",
            "kind": "Terraform",
            "metadata": {"name": name, "namespace": "ns1", "finalizers": finalizers, "labels": {"tfops.dev/release": "r1"}},
            "spec": {"path": "./x"},
            "status": {"observedGeneration": 1}
        })
    }

    fn tfrt() -> &'static ResourceType {
        registry::lookup("infra.contrib.fluxcd.io/v1alpha2", "terraforms").unwrap()
    }

    #[tokio::test]
    async fn create_sets_metadata_and_rv_increases() {
        let s = store();
        let a = s.create(tf("a", &[])).unwrap();
        let b = s.create(tf("b", &[])).unwrap();
        let rva: u64 = a["metadata"]["resourceVersion"]
            .as_str()
            .unwrap()
            .parse()
            .unwrap();
        let rvb: u64 = b["metadata"]["resourceVersion"]
            .as_str()
            .unwrap()
            .parse()
            .unwrap();
        assert!(rvb > rva);
        assert_eq!(a["metadata"]["generation"], 1);
        assert!(a["metadata"]["uid"].as_str().unwrap().len() == 36);
        assert_ne!(a["metadata"]["uid"], b["metadata"]["uid"]);
        assert!(a["metadata"]["creationTimestamp"]
            .as_str()
            .unwrap()
            .ends_with('Z'));
        // namespace auto-created
        assert!(s.get("v1", "Namespace", "", "ns1").is_some());
        // admin create keeps status
        assert_eq!(a["status"]["observedGeneration"], 1);
        let dup = s.create(tf("a", &[])).unwrap_err();
        assert_eq!((dup.code, dup.reason.as_str()), (409, "AlreadyExists"));
    }

    #[tokio::test]
    async fn main_endpoint_ignores_status_and_status_endpoint_only_status() {
        let s = store();
        let rt = tfrt();
        let created = s
            .create_in(rt, "ns1", tf("a", &[]), WriteMode::Main)
            .unwrap();
        assert!(created.get("status").is_none());
        let mut next = created.clone();
        next["status"] = json!({"ready": true});
        next["spec"]["path"] = json!("./y");
        let upd = s.update_in(rt, "ns1", "a", next, WriteMode::Main).unwrap();
        assert!(upd.get("status").is_none());
        assert_eq!(upd["metadata"]["generation"], 2);
        let mut st = upd.clone();
        st["status"] = json!({"ready": true});
        st["spec"]["path"] = json!("./z");
        let upd2 = s.update_in(rt, "ns1", "a", st, WriteMode::Status).unwrap();
        assert_eq!(upd2["status"]["ready"], true);
        assert_eq!(upd2["spec"]["path"], "./y");
        assert_eq!(upd2["metadata"]["generation"], 2);
    }

    #[tokio::test]
    async fn stale_resource_version_conflicts() {
        let s = store();
        let rt = tfrt();
        let a = s.create(tf("a", &[])).unwrap();
        let mut n1 = a.clone();
        n1["spec"]["path"] = json!("1");
        s.update_in(rt, "ns1", "a", n1, WriteMode::Main).unwrap();
        let mut n2 = a.clone();
        n2["spec"]["path"] = json!("2");
        let e = s
            .update_in(rt, "ns1", "a", n2, WriteMode::Main)
            .unwrap_err();
        assert_eq!((e.code, e.reason.as_str()), (409, "Conflict"));
        let p = json!({"metadata": {"resourceVersion": a["metadata"]["resourceVersion"]}, "spec": {"path": "3"}});
        let e = s
            .patch_in(rt, "ns1", "a", PatchKind::Merge, &p, WriteMode::Main)
            .unwrap_err();
        assert_eq!(e.code, 409);
    }

    #[tokio::test]
    async fn noop_update_keeps_resource_version() {
        let s = store();
        let rt = tfrt();
        let a = s.create(tf("a", &[])).unwrap();
        let same = s
            .patch_in(
                rt,
                "ns1",
                "a",
                PatchKind::Merge,
                &json!({"spec": {"path": "./x"}}),
                WriteMode::Main,
            )
            .unwrap();
        assert_eq!(
            same["metadata"]["resourceVersion"],
            a["metadata"]["resourceVersion"]
        );
    }

    #[tokio::test]
    async fn finalizers_and_deletion_timestamp() {
        let s = store();
        let rt = tfrt();
        s.create(tf("a", &["f1", "f2"])).unwrap();
        let d = s
            .delete_in(rt, "ns1", "a", &Preconditions::default())
            .unwrap();
        assert!(d["metadata"]["deletionTimestamp"].is_string());
        assert!(s.get_in(rt, "ns1", "a").is_ok());
        // cannot add finalizers while deleting
        let e = s
            .patch_in(
                rt,
                "ns1",
                "a",
                PatchKind::Merge,
                &json!({"metadata": {"finalizers": ["f1", "f2", "f3"]}}),
                WriteMode::Main,
            )
            .unwrap_err();
        assert_eq!(e.code, 422);
        // cannot clear deletionTimestamp
        let kept = s
            .patch_in(
                rt,
                "ns1",
                "a",
                PatchKind::Merge,
                &json!({"metadata": {"deletionTimestamp": null, "finalizers": ["f2"]}}),
                WriteMode::Main,
            )
            .unwrap();
        assert!(kept["metadata"]["deletionTimestamp"].is_string());
        s.patch_in(
            rt,
            "ns1",
            "a",
            PatchKind::Merge,
            &json!({"metadata": {"finalizers": []}}),
            WriteMode::Main,
        )
        .unwrap();
        assert_eq!(s.get_in(rt, "ns1", "a").unwrap_err().code, 404);
        let h = s.history();
        assert_eq!(h.last().map(|e| e.event), Some(EventType::Deleted));
        // no finalizers: gone immediately
        s.create(tf("b", &[])).unwrap();
        assert_eq!(
            s.delete("infra.contrib.fluxcd.io/v1alpha2", "Terraform", "ns1", "b")
                .unwrap(),
            None
        );
    }

    #[tokio::test]
    async fn namespace_lifecycle() {
        let s = Store::new(StoreConfig {
            auto_create_namespaces: false,
            ..Default::default()
        });
        let e = s.create(tf("a", &[])).unwrap_err();
        assert_eq!(e.code, 404);
        s.create(json!({"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": "ns1"}}))
            .unwrap();
        s.create(tf("a", &["f"])).unwrap();
        s.create(json!({"apiVersion": "v1", "kind": "Secret", "metadata": {"name": "s", "namespace": "ns1"}, "stringData": {"k": "v"}}))
            .unwrap();
        assert_eq!(
            s.get("v1", "Secret", "ns1", "s").unwrap()["data"]["k"],
            "dg=="
        );
        s.delete_namespace("ns1").unwrap();
        let ns = s.get("v1", "Namespace", "", "ns1").unwrap();
        assert_eq!(ns["status"]["phase"], "Terminating");
        assert!(s.get("v1", "Secret", "ns1", "s").is_none());
        let a = s
            .get("infra.contrib.fluxcd.io/v1alpha2", "Terraform", "ns1", "a")
            .unwrap();
        assert!(a["metadata"]["deletionTimestamp"].is_string());
        let e = s
            .create(json!({"apiVersion": "v1", "kind": "Secret", "metadata": {"name": "s2", "namespace": "ns1"}}))
            .unwrap_err();
        assert_eq!(e.code, 403);
        assert!(e.message.contains("because it is being terminated"));
        s.patch_merge(
            "infra.contrib.fluxcd.io/v1alpha2",
            "Terraform",
            "ns1",
            "a",
            &json!({"metadata": {"finalizers": null}}),
        )
        .unwrap();
        assert!(s.get("v1", "Namespace", "", "ns1").is_none());
    }

    #[tokio::test]
    async fn secret_data_must_be_base64() {
        let s = store();
        let bad = json!({"apiVersion": "v1", "kind": "Secret", "metadata": {"name": "x", "namespace": "n"}, "data": {"k": "not base64!"}});
        assert_eq!(s.create(bad).unwrap_err().code, 400);
        let ok = json!({"apiVersion": "v1", "kind": "Secret", "metadata": {"name": "x", "namespace": "n"}, "data": {"k": "dg=="}});
        s.create(ok).unwrap();
        let e = s
            .patch_merge("v1", "Secret", "n", "x", &json!({"data": {"k": 5}}))
            .unwrap_err();
        assert_eq!(e.code, 400);
    }

    #[tokio::test]
    async fn terminating_without_cascade() {
        let s = store();
        s.create(tf("a", &["f"])).unwrap();
        s.set_namespace_terminating("ns1").unwrap();
        assert!(s.create(tf("b", &[])).is_err_and(|e| e.code == 403));
        let a = s
            .get("infra.contrib.fluxcd.io/v1alpha2", "Terraform", "ns1", "a")
            .unwrap();
        assert!(a["metadata"].get("deletionTimestamp").is_none());
    }

    #[tokio::test]
    async fn watch_events_translate_selector_transitions() {
        let s = store();
        let rt = tfrt();
        let start = s.resource_version();
        s.create(tf("a", &[])).unwrap();
        s.patch_merge(
            "infra.contrib.fluxcd.io/v1alpha2",
            "terraforms",
            "ns1",
            "a",
            &json!({"metadata": {"labels": {"tfops.dev/release": "other"}}}),
        )
        .unwrap();
        let filter = Filter {
            labels: LabelSelector::parse("tfops.dev/release=r1").unwrap(),
            ..Default::default()
        };
        let (evs, _) = s.events_after(rt, start, &filter).unwrap();
        let types: Vec<EventType> = evs.iter().map(|e| e.0).collect();
        assert_eq!(types, vec![EventType::Added, EventType::Deleted]);
        s.compact_history();
        assert_eq!(s.events_after(rt, start, &filter).unwrap_err().code, 410);
    }

    #[tokio::test]
    async fn owner_references_are_garbage_collected() {
        let s = store();
        let owner = s.create(tf("a", &["f"])).unwrap();
        let uid = owner["metadata"]["uid"].clone();
        let dep = |name: &str, uids: Vec<Value>| {
            let refs: Vec<Value> = uids
                .into_iter()
                .map(|u| json!({"apiVersion": "infra.contrib.fluxcd.io/v1alpha2", "kind": "Terraform", "name": "a", "uid": u}))
                .collect();
            json!({"apiVersion": "v1", "kind": "Secret", "metadata": {"name": name, "namespace": "ns1", "ownerReferences": refs}})
        };
        s.create(dep("outputs", vec![uid.clone()])).unwrap();
        let other = s.create(tf("b", &[])).unwrap();
        s.create(dep(
            "shared",
            vec![uid.clone(), other["metadata"]["uid"].clone()],
        ))
        .unwrap();
        // deletion pending on a finalizer: dependents stay
        s.delete("infra.contrib.fluxcd.io/v1alpha2", "Terraform", "ns1", "a")
            .unwrap();
        assert!(s.get("v1", "Secret", "ns1", "outputs").is_some());
        // owner gone: sole dependent collected, the one with another live owner loses the ref
        s.patch_merge(
            "infra.contrib.fluxcd.io/v1alpha2",
            "Terraform",
            "ns1",
            "a",
            &json!({"metadata": {"finalizers": null}}),
        )
        .unwrap();
        assert!(s.get("v1", "Secret", "ns1", "outputs").is_none());
        let shared = s.get("v1", "Secret", "ns1", "shared").unwrap();
        assert_eq!(
            shared["metadata"]["ownerReferences"]
                .as_array()
                .unwrap()
                .len(),
            1
        );
    }

    #[tokio::test]
    async fn orphan_propagation_keeps_dependents() {
        let s = store();
        let owner = s.create(tf("a", &[])).unwrap();
        let uid = owner["metadata"]["uid"].clone();
        s.create(json!({"apiVersion": "v1", "kind": "Secret", "metadata": {"name": "outputs", "namespace": "ns1",
            "ownerReferences": [{"apiVersion": "infra.contrib.fluxcd.io/v1alpha2", "kind": "Terraform", "name": "a", "uid": uid}]}}))
            .unwrap();
        let rt = tfrt();
        let pre = Preconditions {
            orphan_dependents: true,
            ..Default::default()
        };
        s.delete_in(rt, "ns1", "a", &pre).unwrap();
        let out = s.get("v1", "Secret", "ns1", "outputs").unwrap();
        assert!(out["metadata"].get("ownerReferences").is_none());
    }

    #[tokio::test]
    async fn names_are_validated() {
        let s = store();
        let e = s.create(tf("Bad_Name", &[])).unwrap_err();
        assert_eq!(e.code, 422);
        let g = s
            .create(json!({"apiVersion": "v1", "kind": "Secret", "metadata": {"generateName": "x-", "namespace": "n"}}))
            .unwrap();
        assert!(g["metadata"]["name"].as_str().unwrap().starts_with("x-"));
        assert_eq!(g["metadata"]["name"].as_str().unwrap().len(), 7);
    }
}
