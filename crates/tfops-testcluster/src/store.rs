//! The object store: every object of the cluster with the API server's semantics —
//! resourceVersion (one global counter), uid, creationTimestamp, generation, optimistic
//! concurrency, finalizers and deletionTimestamp, the status subresource, namespace lifecycle
//! (auto-create, Terminating, cascading deletion) — plus the event history that watches read.
//!
//! [`Store`] is a cheap clonable handle. Its `pub` seeding/assertion methods (`create`, `get`,
//! `list`, `delete`, `update`, `patch_merge`, `force_remove`, `set_namespace_terminating`, …)
//! bypass HTTP; the HTTP layer uses the `*_in` methods with explicit [`WriteMode`]s.

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

fn meta(obj: &Value) -> Option<&Map<String, Value>> {
    obj.get("metadata").and_then(Value::as_object)
}

fn meta_str<'a>(obj: &'a Value, field: &str) -> Option<&'a str> {
    meta(obj).and_then(|m| m.get(field)).and_then(Value::as_str)
}

fn meta_mut(obj: &mut Value) -> &mut Map<String, Value> {
    if !obj.get("metadata").is_some_and(Value::is_object) {
        obj["metadata"] = json!({});
    }
    match obj.get_mut("metadata") {
        Some(Value::Object(m)) => m,
        _ => unreachable_meta(),
    }
}

#[allow(clippy::panic)]
fn unreachable_meta() -> &'static mut Map<String, Value> {
    // metadata was just set to an object above; this cannot happen.
    panic!("metadata is an object")
}

fn finalizers(obj: &Value) -> Vec<String> {
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

fn is_deleting(obj: &Value) -> bool {
    meta(obj).is_some_and(|m| m.get("deletionTimestamp").is_some_and(|v| !v.is_null()))
}

/// The object without metadata and status: what `generation` tracks.
fn spec_part(obj: &Value) -> Value {
    let mut v = obj.clone();
    if let Some(m) = v.as_object_mut() {
        m.remove("metadata");
        m.remove("status");
        m.remove("apiVersion");
        m.remove("kind");
    }
    v
}

fn without_rv(obj: &Value) -> Value {
    let mut v = obj.clone();
    if let Some(m) = v.get_mut("metadata").and_then(Value::as_object_mut) {
        m.remove("resourceVersion");
        m.remove("managedFields");
    }
    v
}

/// Secret `data` (and ConfigMap `binaryData`) values must be base64 strings: the real API
/// server fails to decode anything else (400).
fn check_base64(obj: &Value, field: &str) -> Result<(), ApiError> {
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
fn fold_string_data(obj: &mut Value) {
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

    fn ensure_namespace_for_create(&self, st: &mut State, ns: &str) -> Result<(), ApiError> {
        let nsrt = ns_rt()?;
        let key = State::key(nsrt, "", ns);
        match st.objects.get(&key) {
            Some(obj) => {
                let terminating = obj.pointer("/status/phase").and_then(Value::as_str)
                    == Some("Terminating")
                    || is_deleting(obj);
                if terminating {
                    Err(ApiError::forbidden(format!(
                        "unable to create new content in namespace {ns} because it is being terminated"
                    )))
                } else {
                    Ok(())
                }
            }
            None if self.inner.config.auto_create_namespaces => {
                let obj =
                    json!({"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": ns}});
                self.create_locked(st, nsrt, "", obj, WriteMode::Main)
                    .map(|_| ())
            }
            None => Err(ApiError::not_found("namespaces", "", "namespaces", ns)),
        }
    }

    /// Delete the contents of cascading namespaces; remove a namespace once it is empty.
    fn reconcile_namespaces(&self, st: &mut State) {
        let Ok(nsrt) = ns_rt() else { return };
        for ns in st.cascading.clone() {
            let keys: Vec<Key> = st
                .objects
                .keys()
                .filter(|k| !k.2.is_empty() && k.2 == ns)
                .cloned()
                .collect();
            for k in &keys {
                let deleting = st.objects.get(k).is_some_and(is_deleting);
                if !deleting {
                    if let Some(rt) = registry::RESOURCES
                        .iter()
                        .find(|r| r.group == k.0 && r.resource == k.1)
                    {
                        let _ = self.delete_locked(st, rt, &k.2, &k.3, &Preconditions::default());
                    }
                }
            }
            let empty = !st.objects.keys().any(|k| !k.2.is_empty() && k.2 == ns);
            let nskey = State::key(nsrt, "", &ns);
            let meta_finalizers = st.objects.get(&nskey).map(finalizers).unwrap_or_default();
            if empty && meta_finalizers.is_empty() {
                if let Some(mut obj) = st.objects.remove(&nskey) {
                    let prev = obj.clone();
                    let rv = st.bump();
                    meta_mut(&mut obj).insert("resourceVersion".into(), json!(rv.to_string()));
                    let limit = self.inner.config.history_limit;
                    st.record(limit, EventType::Deleted, nsrt, &nskey, obj, Some(prev));
                }
                st.cascading.remove(&ns);
            }
        }
    }

    // ----- core operations (caller holds the lock) ------------------------------------------

    fn create_locked(
        &self,
        st: &mut State,
        rt: &'static ResourceType,
        ns: &str,
        mut obj: Value,
        mode: WriteMode,
    ) -> Result<Value, ApiError> {
        if !obj.is_object() {
            return Err(ApiError::bad_request(
                "the request body must be a JSON object",
            ));
        }
        let body_ns = meta_str(&obj, "namespace").unwrap_or("").to_string();
        let ns = if rt.namespaced {
            match (ns.is_empty(), body_ns.is_empty()) {
                (false, false) if ns != body_ns => {
                    return Err(ApiError::bad_request(
                        "the namespace of the provided object does not match the namespace sent on the request",
                    ))
                }
                (false, _) => ns.to_string(),
                (true, false) => body_ns,
                (true, true) => "default".to_string(),
            }
        } else {
            String::new()
        };
        let mut name = meta_str(&obj, "name").unwrap_or("").to_string();
        if name.is_empty() {
            match meta_str(&obj, "generateName") {
                Some(g) if !g.is_empty() => {
                    name = format!("{g}{}", self.random_suffix(st));
                }
                _ => {
                    return Err(ApiError::invalid(
                        rt.kind,
                        "",
                        "metadata.name: Required value: name or generateName is required",
                    ))
                }
            }
        }
        validate::validate_name(rt.kind, &name)?;
        validate::validate_metadata(rt.kind, &name, &obj)?;
        if rt.namespaced {
            self.ensure_namespace_for_create(st, &ns)?;
        }
        let key = State::key(rt, &ns, &name);
        if st.objects.contains_key(&key) {
            return Err(ApiError::already_exists(
                &rt.qualified(),
                rt.group,
                rt.resource,
                &name,
            ));
        }
        let api_version = match obj.get("apiVersion").and_then(Value::as_str) {
            Some(av)
                if registry::split_api_version(av).0 == rt.group
                    && rt.serves(registry::split_api_version(av).1) =>
            {
                av.to_string()
            }
            _ => rt.preferred_api_version(),
        };
        obj["apiVersion"] = json!(api_version);
        obj["kind"] = json!(rt.kind);
        if rt.kind == "Secret" && rt.group.is_empty() {
            check_base64(&obj, "data")?;
            fold_string_data(&mut obj);
            if obj.get("type").is_none() {
                obj["type"] = json!("Opaque");
            }
        }
        if rt.kind == "ConfigMap" && rt.group.is_empty() {
            check_base64(&obj, "binaryData")?;
        }
        if rt.status && mode != WriteMode::Admin {
            if let Some(m) = obj.as_object_mut() {
                m.remove("status");
            }
        }
        if rt.kind == "Namespace" && rt.group.is_empty() {
            if obj.pointer("/status/phase").is_none() {
                obj["status"] = json!({"phase": "Active"});
            }
            if obj.pointer("/spec/finalizers").is_none() {
                obj["spec"] = json!({"finalizers": ["kubernetes"]});
            }
        }
        let uid = self.new_uid(st);
        let now = self.inner.clock.now_rfc3339();
        let m = meta_mut(&mut obj);
        m.insert("name".into(), json!(name));
        if rt.namespaced {
            m.insert("namespace".into(), json!(ns));
        } else {
            m.remove("namespace");
        }
        m.insert("uid".into(), json!(uid));
        m.insert("creationTimestamp".into(), json!(now));
        m.insert("generation".into(), json!(1));
        m.remove("deletionTimestamp");
        m.remove("deletionGracePeriodSeconds");
        m.remove("managedFields");
        self.apply_crd_schema(st, rt, &name, &mut obj)?;
        let rv = st.bump();
        meta_mut(&mut obj).insert("resourceVersion".into(), json!(rv.to_string()));
        st.objects.insert(key.clone(), obj.clone());
        let limit = self.inner.config.history_limit;
        st.record(limit, EventType::Added, rt, &key, obj.clone(), None);
        Ok(obj)
    }

    fn update_locked(
        &self,
        st: &mut State,
        rt: &'static ResourceType,
        ns: &str,
        name: &str,
        new: Value,
        mode: WriteMode,
    ) -> Result<Value, ApiError> {
        let key = State::key(rt, ns, name);
        let current = st
            .objects
            .get(&key)
            .cloned()
            .ok_or_else(|| qualified_err_not_found(rt, name))?;
        if !new.is_object() {
            return Err(ApiError::bad_request(
                "the request body must be a JSON object",
            ));
        }
        if let Some(body_name) = meta_str(&new, "name") {
            if !body_name.is_empty() && body_name != name {
                return Err(ApiError::bad_request(format!(
                    "the name of the object ({body_name}) does not match the name on the URL ({name})"
                )));
            }
        }
        if rt.namespaced {
            if let Some(body_ns) = meta_str(&new, "namespace") {
                if !body_ns.is_empty() && body_ns != ns {
                    return Err(ApiError::bad_request(
                        "the namespace of the provided object does not match the namespace sent on the request",
                    ));
                }
            }
        }
        let cur_rv = meta_str(&current, "resourceVersion").unwrap_or("");
        if let Some(want) = meta_str(&new, "resourceVersion") {
            if !want.is_empty() && want != cur_rv {
                return Err(ApiError::conflict(
                    &rt.qualified(),
                    rt.group,
                    rt.resource,
                    name,
                ));
            }
        }
        let mut merged = match mode {
            WriteMode::Admin => new,
            WriteMode::Main => {
                let mut m = new;
                if rt.status {
                    match current.get("status") {
                        Some(s) => m["status"] = s.clone(),
                        None => {
                            if let Some(o) = m.as_object_mut() {
                                o.remove("status");
                            }
                        }
                    }
                }
                m
            }
            WriteMode::Status => {
                let mut m = current.clone();
                match new.get("status") {
                    Some(s) => m["status"] = s.clone(),
                    None => {
                        if let Some(o) = m.as_object_mut() {
                            o.remove("status");
                        }
                    }
                }
                m
            }
        };
        merged["apiVersion"] = current.get("apiVersion").cloned().unwrap_or(Value::Null);
        merged["kind"] = json!(rt.kind);
        if rt.kind == "Secret" && rt.group.is_empty() {
            check_base64(&merged, "data")?;
            fold_string_data(&mut merged);
        }
        if rt.kind == "ConfigMap" && rt.group.is_empty() {
            check_base64(&merged, "binaryData")?;
        }
        // Immutable / server-owned metadata.
        let cur_meta = meta(&current).cloned().unwrap_or_default();
        {
            let m = meta_mut(&mut merged);
            for f in [
                "name",
                "namespace",
                "uid",
                "creationTimestamp",
                "deletionTimestamp",
                "deletionGracePeriodSeconds",
                "generation",
                "resourceVersion",
            ] {
                match cur_meta.get(f) {
                    Some(v) => {
                        m.insert(f.into(), v.clone());
                    }
                    None => {
                        m.remove(f);
                    }
                }
            }
            m.remove("managedFields");
        }
        validate::validate_metadata(rt.kind, name, &merged)?;
        self.apply_crd_schema(st, rt, name, &mut merged)?;
        if is_deleting(&current) {
            let old: BTreeSet<String> = finalizers(&current).into_iter().collect();
            let added: Vec<String> = finalizers(&merged)
                .into_iter()
                .filter(|f| !old.contains(f))
                .collect();
            if !added.is_empty() {
                return Err(ApiError::invalid(
                    rt.kind,
                    name,
                    format!(
                        "metadata.finalizers: Forbidden: no new finalizers can be added if the object is being deleted, found new finalizers {added:?}"
                    ),
                ));
            }
        }
        if without_rv(&merged) == without_rv(&current) {
            return Ok(current);
        }
        if spec_part(&merged) != spec_part(&current) {
            let g = cur_meta
                .get("generation")
                .and_then(Value::as_i64)
                .unwrap_or(1);
            meta_mut(&mut merged).insert("generation".into(), json!(g + 1));
        }
        let rv = st.bump();
        meta_mut(&mut merged).insert("resourceVersion".into(), json!(rv.to_string()));
        let limit = self.inner.config.history_limit;
        if is_deleting(&merged) && finalizers(&merged).is_empty() {
            st.objects.remove(&key);
            st.record(
                limit,
                EventType::Deleted,
                rt,
                &key,
                merged.clone(),
                Some(current),
            );
        } else {
            st.objects.insert(key.clone(), merged.clone());
            st.record(
                limit,
                EventType::Modified,
                rt,
                &key,
                merged.clone(),
                Some(current),
            );
        }
        Ok(merged)
    }

    fn delete_locked(
        &self,
        st: &mut State,
        rt: &'static ResourceType,
        ns: &str,
        name: &str,
        pre: &Preconditions,
    ) -> Result<Value, ApiError> {
        let key = State::key(rt, ns, name);
        let current = st
            .objects
            .get(&key)
            .cloned()
            .ok_or_else(|| qualified_err_not_found(rt, name))?;
        if let Some(uid) = &pre.uid {
            if meta_str(&current, "uid") != Some(uid.as_str()) {
                return Err(ApiError::new(
                    409,
                    "Conflict",
                    format!(
                        "Operation cannot be fulfilled on {} \"{name}\": Precondition failed: UID in precondition: {uid}, UID in object meta: {}",
                        rt.qualified(),
                        meta_str(&current, "uid").unwrap_or("")
                    ),
                )
                .with_details(name, rt.group, rt.resource));
            }
        }
        if let Some(want) = &pre.resource_version {
            if meta_str(&current, "resourceVersion") != Some(want.as_str()) {
                return Err(ApiError::conflict(
                    &rt.qualified(),
                    rt.group,
                    rt.resource,
                    name,
                ));
            }
        }
        let limit = self.inner.config.history_limit;
        if pre.orphan_dependents {
            if let Some(uid) = meta_str(&current, "uid") {
                st.orphan_on_removal.insert(uid.to_string());
            }
        }
        let is_namespace = rt.kind == "Namespace" && rt.group.is_empty();
        if is_namespace {
            st.cascading.insert(name.to_string());
        }
        if is_deleting(&current) {
            return Ok(current);
        }
        if finalizers(&current).is_empty() && !is_namespace {
            let mut obj = current.clone();
            let rv = st.bump();
            meta_mut(&mut obj).insert("resourceVersion".into(), json!(rv.to_string()));
            st.objects.remove(&key);
            st.record(
                limit,
                EventType::Deleted,
                rt,
                &key,
                obj.clone(),
                Some(current),
            );
            return Ok(obj);
        }
        let mut obj = current.clone();
        let now = self.inner.clock.now_rfc3339();
        let rv = st.bump();
        let g = meta(&current)
            .and_then(|m| m.get("generation"))
            .and_then(Value::as_i64)
            .unwrap_or(1);
        {
            let m = meta_mut(&mut obj);
            m.insert("deletionTimestamp".into(), json!(now));
            m.insert("deletionGracePeriodSeconds".into(), json!(0));
            m.insert("resourceVersion".into(), json!(rv.to_string()));
            if !is_namespace {
                m.insert("generation".into(), json!(g + 1));
            }
        }
        if is_namespace {
            obj["status"] = json!({"phase": "Terminating"});
        }
        st.objects.insert(key.clone(), obj.clone());
        st.record(
            limit,
            EventType::Modified,
            rt,
            &key,
            obj.clone(),
            Some(current),
        );
        Ok(obj)
    }

    /// Garbage collector: dependents (ownerReferences) of removed objects are deleted once
    /// none of their owners exists (background propagation), or lose the reference (orphan).
    fn collect_garbage(&self, st: &mut State) {
        while let Some((uid, orphan)) = st.removed.pop() {
            let dependents: Vec<Key> = st
                .objects
                .iter()
                .filter(|(_, o)| {
                    o.pointer("/metadata/ownerReferences")
                        .and_then(Value::as_array)
                        .is_some_and(|refs| {
                            refs.iter().any(|r| r["uid"].as_str() == Some(uid.as_str()))
                        })
                })
                .map(|(k, _)| k.clone())
                .collect();
            for k in dependents {
                let Some(rt) = registry::RESOURCES
                    .iter()
                    .find(|r| r.group == k.0 && r.resource == k.1)
                else {
                    continue;
                };
                let Some(obj) = st.objects.get(&k).cloned() else {
                    continue;
                };
                let refs: Vec<Value> = obj
                    .pointer("/metadata/ownerReferences")
                    .and_then(Value::as_array)
                    .cloned()
                    .unwrap_or_default();
                let remaining: Vec<Value> = refs
                    .iter()
                    .filter(|r| r["uid"].as_str() != Some(uid.as_str()))
                    .cloned()
                    .collect();
                let live_owner = remaining.iter().any(|r| {
                    let ruid = r["uid"].as_str().unwrap_or("");
                    st.objects
                        .values()
                        .any(|o| meta_str(o, "uid") == Some(ruid))
                });
                if orphan || live_owner {
                    let mut next = obj.clone();
                    let m = meta_mut(&mut next);
                    if remaining.is_empty() {
                        m.remove("ownerReferences");
                    } else {
                        m.insert("ownerReferences".into(), Value::Array(remaining));
                    }
                    m.remove("resourceVersion");
                    let _ = self.update_locked(st, rt, &k.2, &k.3, next, WriteMode::Admin);
                } else if !is_deleting(&obj) {
                    let _ = self.delete_locked(st, rt, &k.2, &k.3, &Preconditions::default());
                }
            }
        }
    }

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

    // ----- seeding / assertion API for tests (bypasses HTTP) -----------------------------------

    fn resolve(
        api_version: &str,
        kind_or_resource: &str,
    ) -> Result<&'static ResourceType, ApiError> {
        registry::lookup(api_version, kind_or_resource).ok_or_else(|| {
            ApiError::not_found(
                "the server could not find the requested resource",
                "",
                kind_or_resource,
                kind_or_resource,
            )
        })
    }

    fn at_version(mut obj: Value, api_version: &str) -> Value {
        obj["apiVersion"] = json!(api_version);
        obj
    }

    /// The resource an object's `apiVersion`/`kind` pick, and its namespace (`""` when none).
    fn resolve_object(obj: &Value) -> Result<(&'static ResourceType, String), ApiError> {
        let field = |k: &str| obj.get(k).and_then(Value::as_str).unwrap_or("");
        let rt = Self::resolve(field("apiVersion"), field("kind"))?;
        Ok((rt, meta_str(obj, "namespace").unwrap_or("").to_string()))
    }

    /// Seed an object (its `apiVersion`/`kind` pick the resource; `status` is kept).
    pub fn create(&self, obj: Value) -> Result<Value, ApiError> {
        let (rt, ns) = Self::resolve_object(&obj)?;
        self.create_in(rt, &ns, obj, WriteMode::Admin)
    }

    /// Get an object (`ns` ignored for cluster-scoped resources).
    pub fn get(
        &self,
        api_version: &str,
        kind_or_resource: &str,
        ns: &str,
        name: &str,
    ) -> Option<Value> {
        let rt = registry::lookup(api_version, kind_or_resource)?;
        self.get_in(rt, ns, name)
            .ok()
            .map(|o| Self::at_version(o, api_version))
    }

    /// List objects (`ns` = "" for all namespaces).
    pub fn list(&self, api_version: &str, kind_or_resource: &str, ns: &str) -> Vec<Value> {
        self.list_selected(api_version, kind_or_resource, ns, "")
            .unwrap_or_default()
    }

    /// List objects matching a label selector (`ns` = "" for all namespaces).
    pub fn list_selected(
        &self,
        api_version: &str,
        kind_or_resource: &str,
        ns: &str,
        label_selector: &str,
    ) -> Result<Vec<Value>, ApiError> {
        let rt = Self::resolve(api_version, kind_or_resource)?;
        let labels = LabelSelector::parse(label_selector)
            .map_err(|e| ApiError::bad_request(e.to_string()))?;
        let filter = Filter {
            namespace: (!ns.is_empty() && rt.namespaced).then(|| ns.to_string()),
            labels,
            fields: FieldSelector::default(),
        };
        Ok(self
            .list_in(rt, &filter)
            .0
            .into_iter()
            .map(|o| Self::at_version(o, api_version))
            .collect())
    }

    /// Replace an object, status included (resourceVersion checked when present).
    pub fn update(&self, obj: Value) -> Result<Value, ApiError> {
        let (rt, ns) = Self::resolve_object(&obj)?;
        let name = meta_str(&obj, "name").unwrap_or("").to_string();
        self.update_in(rt, &ns, &name, obj, WriteMode::Admin)
    }

    /// Merge-patch an object, status included.
    pub fn patch_merge(
        &self,
        api_version: &str,
        kind_or_resource: &str,
        ns: &str,
        name: &str,
        patch_body: &Value,
    ) -> Result<Value, ApiError> {
        let rt = Self::resolve(api_version, kind_or_resource)?;
        self.patch_in(rt, ns, name, PatchKind::Merge, patch_body, WriteMode::Admin)
    }

    /// Delete with API semantics (finalizers respected). `Ok(Some(obj))` when the object
    /// stays (deletionTimestamp set), `Ok(None)` when it is gone.
    pub fn delete(
        &self,
        api_version: &str,
        kind_or_resource: &str,
        ns: &str,
        name: &str,
    ) -> Result<Option<Value>, ApiError> {
        let rt = Self::resolve(api_version, kind_or_resource)?;
        self.delete_in(rt, ns, name, &Preconditions::default())?;
        Ok(self.get_in(rt, ns, name).ok())
    }

    /// Remove an object immediately, ignoring its finalizers (like etcd surgery).
    pub fn force_remove(
        &self,
        api_version: &str,
        kind_or_resource: &str,
        ns: &str,
        name: &str,
    ) -> Result<Value, ApiError> {
        let rt = Self::resolve(api_version, kind_or_resource)?;
        let mut st = self.lock();
        let key = State::key(rt, ns, name);
        let r = match st.objects.remove(&key) {
            Some(prev) => {
                let mut obj = prev.clone();
                let rv = st.bump();
                meta_mut(&mut obj).insert("resourceVersion".into(), json!(rv.to_string()));
                let limit = self.inner.config.history_limit;
                st.record(limit, EventType::Deleted, rt, &key, obj.clone(), Some(prev));
                Ok(obj)
            }
            None => Err(qualified_err_not_found(rt, name)),
        };
        self.finish(st);
        r
    }

    /// Mark a namespace Terminating (deletionTimestamp + phase) WITHOUT deleting its contents:
    /// creates in it answer 403 Forbidden. Creates the namespace if missing.
    pub fn set_namespace_terminating(&self, ns: &str) -> Result<Value, ApiError> {
        let nsrt = ns_rt()?;
        let mut st = self.lock();
        let key = State::key(nsrt, "", ns);
        if !st.objects.contains_key(&key) {
            let obj = json!({"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": ns}});
            if let Err(e) = self.create_locked(&mut st, nsrt, "", obj, WriteMode::Main) {
                self.finish(st);
                return Err(e);
            }
        }
        let r = match st.objects.get(&key).cloned() {
            Some(current) => {
                let mut obj = current.clone();
                let now = self.inner.clock.now_rfc3339();
                let rv = st.bump();
                {
                    let m = meta_mut(&mut obj);
                    m.insert("deletionTimestamp".into(), json!(now));
                    m.insert("resourceVersion".into(), json!(rv.to_string()));
                }
                obj["status"] = json!({"phase": "Terminating"});
                st.objects.insert(key.clone(), obj.clone());
                let limit = self.inner.config.history_limit;
                st.record(
                    limit,
                    EventType::Modified,
                    nsrt,
                    &key,
                    obj.clone(),
                    Some(current),
                );
                Ok(obj)
            }
            None => Err(ApiError::not_found("namespaces", "", "namespaces", ns)),
        };
        self.finish(st);
        r
    }

    /// Delete a namespace the way the namespace controller does: Terminating, then every object
    /// in it is deleted; the namespace disappears once they are all gone (finalizers cleared).
    pub fn delete_namespace(&self, ns: &str) -> Result<(), ApiError> {
        let nsrt = ns_rt()?;
        self.delete_in(nsrt, "", ns, &Preconditions::default())
            .map(|_| ())
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
