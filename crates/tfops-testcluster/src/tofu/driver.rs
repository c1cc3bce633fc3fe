//! The thin I/O driver of the tofu-controller simulation: watches `Terraform` CRs over real HTTP
//! (`kube::runtime::watcher`), filters events like the real controller's predicates
//! (generation change or a new `reconcile.fluxcd.io/requestedAt`), runs a controller-runtime
//! style work queue on the tokio clock, reads the [`World`] with GETs, runs the pure
//! [`reconcile`] core and applies its [`Action`]s with merge patches.

use std::collections::HashMap;
use std::sync::{Arc, Mutex, MutexGuard};

use futures::StreamExt;
use kube::api::{Api, DeleteParams, DynamicObject, Patch, PatchParams, PostParams};
use kube::core::{ApiResource, GroupVersionKind};
use kube::runtime::watcher;
use kube::runtime::WatchStreamExt;
use serde_json::{json, Map, Value};
use tokio::sync::Notify;
use tokio::task::JoinHandle;
use tokio::time::Instant;

use super::behavior::{Behavior, LockSpec};
use super::clock::SimClock;
use super::names::str_at;
use super::queue::{Key, WorkQueue};
use super::reconcile::{
    self, base64_decode, lock_lease_name, outputs_secret_name, plan_secret_name,
    runner_service_account, tfstate_secret_name, Action, Input, Requeue, Row,
};
use super::source_watch::{self, SourceEvent};
use super::world::{DependencyView, LockView, SourceState, World};
use super::{BEHAVIOR_ANNOTATION, REQUESTED_AT_ANNOTATION};

/// Field manager of the simulated controller's writes.
pub const FIELD_MANAGER: &str = "tf-controller";
/// Annotation terraform's kubernetes backend stores lock info in (on the Lease).
pub const LOCK_INFO_ANNOTATION: &str = "app.terraform.io/lock-info";

/// Configuration of a simulation run.
#[derive(Debug, Clone, Default)]
pub struct SimConfig {
    /// Watch only this namespace (`None` = all namespaces).
    pub namespace: Option<String>,
    /// Behaviour for CRs with neither a [`TofuSim::set_behavior`] override nor an annotation.
    pub default_behavior: Behavior,
    /// Do not record Kubernetes Events (fewer requests).
    pub no_events: bool,
    /// The runner-pod timing model ([`SimTiming::instant`] by default).
    pub timing: SimTiming,
    /// Run without leader election (no Lease). tofu-controller's own flag defaults to off
    /// (fluxcd/pkg `runtime/leaderelection` line 84) but both its Helm chart
    /// (`charts/tofu-controller/templates/deployment.yaml` line 41) and its kustomize manifest
    /// (`config/manager/manager.yaml` line 32) pass `--enable-leader-election`.
    pub no_leader_election: bool,
    /// Namespace of the controller (its Lease); `None` = `flux-system`.
    pub controller_namespace: Option<String>,
}

/// tofu-controller's leader-election Lease name (`cmd/manager/main.go` v0.16.5 line 174).
pub const LEADER_LEASE_NAME: &str = "1953de50.contrib.fluxcd.io";
/// fluxcd/pkg `runtime/leaderelection` defaults (lines 88–93): lease 35 s, retry 5 s.
pub const LEASE_DURATION_SECS: i64 = 35;
/// How often the leader renews (the retry period).
pub const LEASE_RENEW_EVERY: std::time::Duration = std::time::Duration::from_secs(5);

/// How long runner pods take to come up.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RunnerStart {
    /// Always this long.
    Fixed(std::time::Duration),
    /// Drawn per reconcile, uniformly in `[min, max]` (seeded).
    Between(std::time::Duration, std::time::Duration),
}

impl Default for RunnerStart {
    fn default() -> Self {
        RunnerStart::Fixed(std::time::Duration::ZERO)
    }
}

/// The simulation's model of time around runner pods.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct SimTiming {
    /// Create real runner Pod objects (`<name>-tf-runner`, Pending → Running → deleted).
    pub runner_pods: bool,
    pub runner_start: RunnerStart,
    /// `--runner-creation-timeout` (zero = the default 120 s).
    pub runner_creation_timeout: std::time::Duration,
    /// The gRPC dial once the pod runs (≤ 30 s upstream).
    pub dial: std::time::Duration,
    /// Seed of the per-reconcile draws.
    pub seed: u64,
}

impl SimTiming {
    /// No pod objects, no latency: the simulation as fast as it can be (the default).
    pub fn instant() -> Self {
        SimTiming::default()
    }

    /// As on a real cluster: runner pods take 0–150 s to start (beyond the 120 s creation
    /// timeout the reconcile fails and is retried), 1 s to dial.
    pub fn realistic(seed: u64) -> Self {
        SimTiming {
            runner_pods: true,
            runner_start: RunnerStart::Between(
                std::time::Duration::ZERO,
                std::time::Duration::from_secs(150),
            ),
            runner_creation_timeout: std::time::Duration::from_secs(120),
            dial: std::time::Duration::from_secs(1),
            seed,
        }
    }

    /// A cold node: every runner pod takes 100–150 s (image pull), often past the timeout.
    pub fn cold_node(seed: u64) -> Self {
        SimTiming {
            runner_start: RunnerStart::Between(
                std::time::Duration::from_secs(100),
                std::time::Duration::from_secs(150),
            ),
            ..SimTiming::realistic(seed)
        }
    }

    fn creation_timeout(&self) -> std::time::Duration {
        if self.runner_creation_timeout.is_zero() {
            std::time::Duration::from_secs(120)
        } else {
            self.runner_creation_timeout
        }
    }

    /// The runner start of draw number `n` for `key` (deterministic).
    fn draw(&self, key: &Key, n: u32) -> std::time::Duration {
        match self.runner_start {
            RunnerStart::Fixed(d) => d,
            RunnerStart::Between(lo, hi) => {
                let span = hi.saturating_sub(lo).as_millis() as u64;
                if span == 0 {
                    return lo;
                }
                let mut h = self.seed
                    ^ 0x9e37_79b9_7f4a_7c15
                    ^ u64::from(n).wrapping_mul(0xbf58_476d_1ce4_e5b9);
                for b in key.0.bytes().chain([b'/']).chain(key.1.bytes()) {
                    h = (h ^ u64::from(b)).wrapping_mul(0x0100_0000_01b3);
                }
                h ^= h >> 31;
                lo + std::time::Duration::from_millis(h % (span + 1))
            }
        }
    }
}

/// What the simulation did with one CR so far (for assertions and logs).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct CrStats {
    /// Reconciles run.
    pub reconciles: u32,
    /// Destroy attempts made (plan or apply of a destroy plan).
    pub destroy_attempts: u32,
    /// The row of the last reconcile whose actions were all applied.
    pub last_row: Option<Row>,
    /// Reconciles cut short: the CR vanished mid-way (e.g. finalizers stripped during a
    /// destroy) or an API call failed (retried with backoff).
    pub interrupted: u32,
    /// Destroy applies that ran to their end (the cloud resources are gone).
    pub destroys_completed: u32,
    /// Destroy applies during which the CR vanished (finalizers stripped mid-destroy).
    pub destroys_cut: u32,
    /// Start and end (tokio clock) of every destroy apply; `None` end = still running.
    pub destroy_runs: Vec<(Instant, Option<Instant>)>,
    /// `destroyResourcesOnDeletion` patched to false while a destroy was visibly running
    /// (true when `Apply=Unknown` was written, false when the Apply RPC returned, at least a
    /// second of simulated time apart).
    pub orphan_patch_during_destroy: u32,
    /// Normal (non-destroy) applies, when they ran (tokio clock).
    pub applies: Vec<Instant>,
    /// Runner pods started (Running).
    pub runner_pods: u32,
    /// Reconciles that failed on the runner-creation timeout.
    pub runner_timeouts: u32,
    /// The row of the reconcile that removed the controller's finalizer (set as soon as it
    /// is removed, before that reconcile's clean-up ends).
    pub released_as: Option<Row>,
}

#[derive(Default)]
struct Memory {
    /// uid of the CR this memory belongs to (a re-created CR starts afresh).
    uid: String,
    stats: CrStats,
    /// Resources in an out-of-cluster state (custom backend / cloud), once written.
    remote_resources: Option<usize>,
    first_seen: Option<Instant>,
    lock_seeded: bool,
    /// Reconciles that asked for a runner (draw counter of the timing model).
    runner_draws: u32,
}

/// (namespace, object, reason, message) of an aggregated event.
type EventKey = (String, String, String, String);

struct Shared {
    client: kube::Client,
    config: SimConfig,
    clock: SimClock,
    queue: Mutex<WorkQueue>,
    notify: Notify,
    overrides: Mutex<HashMap<Key, Behavior>>,
    memory: Mutex<HashMap<Key, Memory>>,
    seen: Mutex<HashMap<Key, (i64, Option<String>)>>,
    /// Recorded events by (namespace, object, reason, message) → (event name, count), for
    /// client-go style aggregation (a repeat bumps `count` instead of creating an object).
    events: Mutex<HashMap<EventKey, (String, u64)>>,
    tasks: Mutex<Vec<JoinHandle<()>>>,
}

fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|p| p.into_inner())
}

/// A running tofu-controller simulation.
pub struct TofuSim {
    shared: Arc<Shared>,
}

impl std::fmt::Debug for TofuSim {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("TofuSim").finish_non_exhaustive()
    }
}

fn ar(group: &str, version: &str, kind: &str, plural: &str) -> ApiResource {
    ApiResource::from_gvk_with_plural(&GroupVersionKind::gvk(group, version, kind), plural)
}

fn terraform_ar() -> ApiResource {
    ar(
        "infra.contrib.fluxcd.io",
        "v1alpha2",
        "Terraform",
        "terraforms",
    )
}

fn source_ar(kind: &str) -> Option<ApiResource> {
    let plural = match kind {
        "GitRepository" => "gitrepositories",
        "OCIRepository" => "ocirepositories",
        "Bucket" => "buckets",
        _ => return None,
    };
    Some(ar("source.toolkit.fluxcd.io", "v1", kind, plural))
}

fn core_ar(kind: &str, plural: &str) -> ApiResource {
    ar("", "v1", kind, plural)
}

fn lease_ar() -> ApiResource {
    ar("coordination.k8s.io", "v1", "Lease", "leases")
}

fn is_status(err: &kube::Error, code: u16) -> bool {
    matches!(err, kube::Error::Api(s) if s.code == code)
}

fn to_value(obj: &DynamicObject) -> Value {
    serde_json::to_value(obj).unwrap_or(Value::Null)
}

/// JSON merge patch (RFC 7386) turning `old` into `new`.
pub fn merge_diff(old: &Value, new: &Value) -> Option<Value> {
    match (old, new) {
        (Value::Object(o), Value::Object(n)) => {
            let mut patch = Map::new();
            for (k, nv) in n {
                match o.get(k) {
                    Some(ov) => {
                        if let Some(d) = merge_diff(ov, nv) {
                            patch.insert(k.clone(), d);
                        }
                    }
                    None => {
                        patch.insert(k.clone(), nv.clone());
                    }
                }
            }
            for k in o.keys() {
                if !n.contains_key(k) {
                    patch.insert(k.clone(), Value::Null);
                }
            }
            (!patch.is_empty()).then_some(Value::Object(patch))
        }
        _ if old == new => None,
        _ => Some(new.clone()),
    }
}

impl TofuSim {
    /// Start watching and reconciling (spawns on the current tokio runtime). `client` should
    /// authenticate as [`super::CONTROLLER_USER`].
    pub fn start(client: kube::Client, config: SimConfig) -> TofuSim {
        let shared = Arc::new(Shared {
            client,
            config,
            clock: SimClock::start(),
            queue: Mutex::new(WorkQueue::default()),
            notify: Notify::new(),
            overrides: Mutex::new(HashMap::new()),
            memory: Mutex::new(HashMap::new()),
            seen: Mutex::new(HashMap::new()),
            events: Mutex::new(HashMap::new()),
            tasks: Mutex::new(Vec::new()),
        });
        let w = tokio::spawn(watch_loop(shared.clone()));
        let q = tokio::spawn(queue_loop(shared.clone()));
        lock(&shared.tasks).extend([w, q]);
        for kind in ["GitRepository", "Bucket", "OCIRepository"] {
            let t = tokio::spawn(source_watch_loop(shared.clone(), kind));
            lock(&shared.tasks).push(t);
        }
        if !shared.config.no_leader_election {
            let l = tokio::spawn(lease_loop(shared.clone()));
            lock(&shared.tasks).push(l);
        }
        TofuSim { shared }
    }

    /// Stop the controller (as if its Deployment were gone): the watch, the queue and any
    /// in-flight reconcile end at once.
    pub fn stop(&self) {
        for t in lock(&self.shared.tasks).drain(..) {
            t.abort();
        }
    }

    /// Override the behaviour of one CR (takes precedence over its annotation) and reconcile it.
    pub fn set_behavior(&self, namespace: &str, name: &str, behavior: Behavior) {
        let key = (namespace.to_string(), name.to_string());
        lock(&self.shared.overrides).insert(key.clone(), behavior);
        lock(&self.shared.queue).add(key, Instant::now());
        self.shared.notify.notify_one();
    }

    /// Ask for a reconcile of one CR now (like a watch event).
    pub fn enqueue(&self, namespace: &str, name: &str) {
        lock(&self.shared.queue).add((namespace.to_string(), name.to_string()), Instant::now());
        self.shared.notify.notify_one();
    }

    /// What the simulation did with one CR so far.
    pub fn stats(&self, namespace: &str, name: &str) -> CrStats {
        lock(&self.shared.memory)
            .get(&(namespace.to_string(), name.to_string()))
            .map(|m| m.stats.clone())
            .unwrap_or_default()
    }
}

impl Drop for TofuSim {
    fn drop(&mut self) {
        self.stop();
    }
}

/// `resource` in the namespace the simulation watches, or in all namespaces.
fn watched_api(shared: &Shared, resource: &ApiResource) -> Api<DynamicObject> {
    match &shared.config.namespace {
        Some(ns) => Api::namespaced_with(shared.client.clone(), ns, resource),
        None => Api::all_with(shared.client.clone(), resource),
    }
}

async fn watch_loop(shared: Arc<Shared>) {
    let api = watched_api(&shared, &terraform_ar());
    let mut stream = watcher(api, watcher::Config::default())
        .default_backoff()
        .boxed();
    while let Some(ev) = stream.next().await {
        match ev {
            Ok(watcher::Event::Apply(obj)) | Ok(watcher::Event::InitApply(obj)) => {
                on_object(&shared, &to_value(&obj));
            }
            Ok(watcher::Event::Delete(obj)) => {
                let v = to_value(&obj);
                let key = (
                    str_at(&v, &["metadata", "namespace"]).to_string(),
                    str_at(&v, &["metadata", "name"]).to_string(),
                );
                lock(&shared.seen).remove(&key);
                lock(&shared.queue).remove(&key);
            }
            Ok(_) => {}
            Err(e) => tracing::debug!(error = %e, "tofu-sim: watch error (retrying)"),
        }
    }
}

/// Watch one Flux source kind like upstream's `Watches(&sourcev1.<Kind>{}, …)`: each event goes
/// through [`source_watch::triggering_revision`], and the Terraforms it maps to are enqueued.
async fn source_watch_loop(shared: Arc<Shared>, kind: &'static str) {
    let Some(resource) = source_ar(kind) else {
        return;
    };
    let api = watched_api(&shared, &resource);
    let mut stream = watcher(api, watcher::Config::default())
        .default_backoff()
        .boxed();
    // Last revision seen per source (namespace/name), to tell creates from updates.
    let mut last: HashMap<Key, Option<String>> = HashMap::new();
    while let Some(ev) = stream.next().await {
        let (v, deleted) = match ev {
            Ok(watcher::Event::Apply(obj)) | Ok(watcher::Event::InitApply(obj)) => {
                (to_value(&obj), false)
            }
            Ok(watcher::Event::Delete(obj)) => (to_value(&obj), true),
            Ok(_) => continue,
            Err(e) => {
                tracing::debug!(error = %e, kind, "tofu-sim: source watch error (retrying)");
                continue;
            }
        };
        let key = (
            str_at(&v, &["metadata", "namespace"]).to_string(),
            str_at(&v, &["metadata", "name"]).to_string(),
        );
        let revision = source_watch::artifact_revision(&v);
        let previous = if deleted {
            last.remove(&key);
            None
        } else {
            Some(last.insert(key.clone(), revision.map(str::to_string)))
        };
        let event = match &previous {
            None => SourceEvent::Deleted { revision },
            Some(None) => SourceEvent::Created { revision },
            Some(Some(old)) => SourceEvent::Updated {
                old: old.as_deref(),
                new: revision,
            },
        };
        let Some(revision) = source_watch::triggering_revision(event).map(str::to_string) else {
            continue;
        };
        let terraforms = match list_terraforms(&shared).await {
            Ok(list) => list,
            Err(e) => {
                tracing::debug!(error = %e, "tofu-sim: listing Terraforms for a source event failed");
                continue;
            }
        };
        let keys = source_watch::dependents(kind, &key.0, &key.1, &revision, &terraforms);
        if keys.is_empty() {
            continue;
        }
        {
            let mut q = lock(&shared.queue);
            let now = Instant::now();
            for k in keys {
                q.add(k, now);
            }
        }
        shared.notify.notify_one();
    }
}

/// Every Terraform the simulation watches (its namespace, or all).
async fn list_terraforms(shared: &Shared) -> Result<Vec<Value>, kube::Error> {
    let api = watched_api(shared, &terraform_ar());
    let list = api.list(&Default::default()).await?;
    Ok(list.items.iter().map(to_value).collect())
}

/// `GenerationChangedPredicate` OR `ReconcileRequestedPredicate` (create events always pass).
fn on_object(shared: &Shared, v: &Value) {
    let key = (
        str_at(v, &["metadata", "namespace"]).to_string(),
        str_at(v, &["metadata", "name"]).to_string(),
    );
    let generation = v["metadata"]["generation"].as_i64().unwrap_or(1);
    let requested = v["metadata"]["annotations"][REQUESTED_AT_ANNOTATION]
        .as_str()
        .map(str::to_string);
    let trigger = {
        let mut seen = lock(&shared.seen);
        let t = match seen.get(&key) {
            None => true,
            Some((g, r)) => *g != generation || (requested.is_some() && *r != requested),
        };
        seen.insert(key.clone(), (generation, requested));
        t
    };
    if trigger {
        lock(&shared.queue).add(key, Instant::now());
        shared.notify.notify_one();
    }
}

async fn queue_loop(shared: Arc<Shared>) {
    loop {
        let now = Instant::now();
        let due = lock(&shared.queue).take_due(now);
        for key in due {
            let s = shared.clone();
            let handle = tokio::spawn(async move {
                let requeue = reconcile_key(&s, &key).await;
                {
                    let mut q = lock(&s.queue);
                    q.done(&key);
                    let now = Instant::now();
                    match requeue {
                        Requeue::None => q.forget(&key),
                        Requeue::After(d) => {
                            q.forget(&key);
                            q.add_after(key.clone(), now, d);
                        }
                        Requeue::RateLimited => q.add_rate_limited(key.clone(), now),
                    }
                }
                s.notify.notify_one();
            });
            let mut tasks = lock(&shared.tasks);
            tasks.retain(|t| !t.is_finished());
            tasks.push(handle);
        }
        let next = lock(&shared.queue).next_due();
        match next {
            Some(at) => {
                tokio::select! {
                    _ = shared.notify.notified() => {}
                    _ = tokio::time::sleep_until(at) => {}
                }
            }
            None => shared.notify.notified().await,
        }
    }
}

fn behavior_for(shared: &Shared, key: &Key, tf: &Value) -> Behavior {
    if let Some(b) = lock(&shared.overrides).get(key) {
        return b.clone();
    }
    if let Some(text) = tf["metadata"]["annotations"][BEHAVIOR_ANNOTATION].as_str() {
        match Behavior::from_json(text) {
            Ok(b) => return b,
            Err(e) => tracing::warn!(
                namespace = %key.0, name = %key.1, error = %e,
                "tofu-sim: invalid {BEHAVIOR_ANNOTATION} annotation, using the default behaviour"
            ),
        }
    }
    shared.config.default_behavior.clone()
}

async fn get_tf(shared: &Shared, key: &Key) -> Result<Option<Value>, kube::Error> {
    let api: Api<DynamicObject> =
        Api::namespaced_with(shared.client.clone(), &key.0, &terraform_ar());
    match api.get(&key.1).await {
        Ok(o) => Ok(Some(to_value(&o))),
        Err(e) if is_status(&e, 404) => Ok(None),
        Err(e) => Err(e),
    }
}

/// One reconcile of one key; returns how to requeue it.
async fn reconcile_key(shared: &Arc<Shared>, key: &Key) -> Requeue {
    let tf = match get_tf(shared, key).await {
        Ok(Some(tf)) => tf,
        Ok(None) => return Requeue::None,
        Err(e) => {
            tracing::debug!(error = %e, "tofu-sim: get failed");
            return Requeue::RateLimited;
        }
    };
    let behavior = behavior_for(shared, key, &tf);
    if behavior.paused {
        return Requeue::None;
    }
    let tf = if behavior.reconcile_latency.is_zero() {
        tf
    } else {
        tokio::time::sleep(behavior.reconcile_latency).await;
        match get_tf(shared, key).await {
            Ok(Some(tf)) => tf,
            Ok(None) => return Requeue::None,
            Err(_) => return Requeue::RateLimited,
        }
    };
    let first_seen = {
        let mut mem = lock(&shared.memory);
        let m = mem.entry(key.clone()).or_default();
        let uid = str_at(&tf, &["metadata", "uid"]);
        if m.uid != uid {
            *m = Memory {
                uid: uid.to_string(),
                ..Memory::default()
            };
        }
        m.stats.reconciles += 1;
        *m.first_seen.get_or_insert_with(Instant::now)
    };
    if let Some(spec) = &behavior.lock {
        seed_lock(shared, key, &tf, spec, first_seen).await;
    }
    let world = match observe(shared, &tf).await {
        Ok(w) => w,
        Err(e) => {
            tracing::debug!(error = %e, "tofu-sim: observing the world failed");
            return Requeue::RateLimited;
        }
    };
    let (attempts, draw) = {
        let mut mem = lock(&shared.memory);
        let m = mem.entry(key.clone()).or_default();
        m.runner_draws += 1;
        (m.stats.destroy_attempts, m.runner_draws)
    };
    let timing = shared.config.timing;
    let runner = reconcile::RunnerTiming {
        pods: timing.runner_pods,
        start: behavior
            .runner_start
            .unwrap_or_else(|| timing.draw(key, draw)),
        creation_timeout: timing.creation_timeout(),
        dial: timing.dial,
    };
    let outcome = reconcile::reconcile(Input {
        terraform: &tf,
        world: &world,
        behavior: &behavior,
        destroy_attempts: attempts,
        now: shared.clock.now(),
        runner,
    });
    tracing::debug!(namespace = %key.0, name = %key.1, row = ?outcome.row, "tofu-sim: reconciled");
    let applied = apply_actions(shared, key, &tf, &outcome.actions, outcome.row).await;
    let mut mem = lock(&shared.memory);
    let stats = mem.get_mut(key).map(|m| &mut m.stats);
    match applied {
        Ok(Applied::Done) => {
            if let Some(st) = stats {
                st.last_row = Some(outcome.row);
                if outcome.row == Row::RunnerTimeout {
                    st.runner_timeouts += 1;
                }
            }
            outcome.requeue
        }
        Ok(Applied::Gone) => {
            if let Some(st) = stats {
                st.interrupted += 1;
                if let Some(run) = st.destroy_runs.last_mut().filter(|r| r.1.is_none()) {
                    run.1 = Some(Instant::now());
                    st.destroys_cut += 1;
                }
            }
            Requeue::None
        }
        Err(e) => {
            tracing::debug!(error = %e, "tofu-sim: applying actions failed");
            if let Some(st) = stats {
                st.interrupted += 1;
            }
            Requeue::RateLimited
        }
    }
}

/// Create the foreign lock's Lease once and schedule its release.
async fn seed_lock(
    shared: &Arc<Shared>,
    key: &Key,
    tf: &Value,
    spec: &LockSpec,
    first_seen: Instant,
) {
    let already = {
        let mut mem = lock(&shared.memory);
        let m = mem.entry(key.clone()).or_default();
        std::mem::replace(&mut m.lock_seeded, true)
    };
    if already {
        return;
    }
    let name = lock_lease_name(tf);
    let created = shared
        .clock
        .now()
        .format("%Y-%m-%d %H:%M:%S%.9f +0000 UTC")
        .to_string();
    let info = json!({
        "ID": spec.id,
        "Operation": spec.operation,
        "Info": "",
        "Who": spec.who,
        "Version": "1.8.7",
        "Created": created,
        "Path": "",
    });
    let ws = reconcile::workspace(tf);
    let state_name = tfstate_secret_name(tf);
    let suffix = state_name
        .strip_prefix(&format!("tfstate-{ws}-"))
        .unwrap_or("")
        .to_string();
    let lease = json!({
        "apiVersion": "coordination.k8s.io/v1",
        "kind": "Lease",
        "metadata": {
            "name": name,
            "namespace": key.0,
            "labels": {
                "app.kubernetes.io/managed-by": "terraform",
                "tfstate": "true",
                "tfstateSecretSuffix": suffix,
                "tfstateWorkspace": ws,
            },
            "annotations": {LOCK_INFO_ANNOTATION: info.to_string()},
        },
        "spec": {"holderIdentity": spec.id},
    });
    let api: Api<DynamicObject> = Api::namespaced_with(shared.client.clone(), &key.0, &lease_ar());
    if let Ok(obj) = serde_json::from_value::<DynamicObject>(lease) {
        if let Err(e) = api.create(&PostParams::default(), &obj).await {
            if !is_status(&e, 409) {
                tracing::debug!(error = %e, "tofu-sim: creating the lock lease failed");
            }
        }
    }
    if let Some(after) = spec.release_after {
        let s = shared.clone();
        let ns = key.0.clone();
        let id = spec.id.clone();
        let h = tokio::spawn(async move {
            tokio::time::sleep_until(first_seen + after).await;
            let _ = unlock_lease(&s, &ns, &name, &id).await;
        });
        lock(&shared.tasks).push(h);
    }
}

/// Clear the Lease holder if it is `id` (terraform's `Unlock`).
async fn unlock_lease(shared: &Shared, ns: &str, name: &str, id: &str) -> Result<(), kube::Error> {
    let api: Api<DynamicObject> = Api::namespaced_with(shared.client.clone(), ns, &lease_ar());
    let lease = match api.get(name).await {
        Ok(l) => to_value(&l),
        Err(e) if is_status(&e, 404) => return Ok(()),
        Err(e) => return Err(e),
    };
    if str_at(&lease, &["spec", "holderIdentity"]) != id {
        return Ok(());
    }
    let patch = json!({
        "metadata": {"annotations": {LOCK_INFO_ANNOTATION: null}},
        "spec": {"holderIdentity": null},
    });
    api.patch(name, &pp(), &Patch::Merge(&patch))
        .await
        .map(|_| ())
}

fn pp() -> PatchParams {
    PatchParams {
        field_manager: Some(FIELD_MANAGER.to_string()),
        ..Default::default()
    }
}

async fn exists(api: &Api<DynamicObject>, name: &str) -> Result<Option<Value>, kube::Error> {
    match api.get(name).await {
        Ok(o) => Ok(Some(to_value(&o))),
        Err(e) if is_status(&e, 404) => Ok(None),
        Err(e) => Err(e),
    }
}

/// Whether the core decides before reading anything outside the CR (rows 1, 3, 5).
fn decided_without_world(tf: &Value) -> bool {
    let finalizers: Vec<&str> = tf["metadata"]["finalizers"]
        .as_array()
        .map(|a| a.iter().filter_map(Value::as_str).collect())
        .unwrap_or_default();
    let deleting = !str_at(tf, &["metadata", "deletionTimestamp"]).is_empty();
    !finalizers.contains(&super::TERRAFORM_FINALIZER)
        || tf["spec"]["suspend"].as_bool().unwrap_or(false)
        || (deleting
            && finalizers
                .iter()
                .any(|f| f.starts_with(super::DEPENDENCY_OF_PREFIX)))
}

/// Read what the controller looks at besides the CR, in the controller's order, stopping
/// where the controller would stop (source not ready, runner not creatable).
async fn observe(shared: &Shared, tf: &Value) -> Result<World, kube::Error> {
    if decided_without_world(tf) {
        return Ok(World::only_source(SourceState::Missing));
    }
    let ns = str_at(tf, &["metadata", "namespace"]).to_string();
    let client = shared.client.clone();
    let secrets: Api<DynamicObject> =
        Api::namespaced_with(client.clone(), &ns, &core_ar("Secret", "secrets"));

    let kind = str_at(tf, &["spec", "sourceRef", "kind"]);
    let src_name = str_at(tf, &["spec", "sourceRef", "name"]);
    let src_ns = match str_at(tf, &["spec", "sourceRef", "namespace"]) {
        "" => ns.clone(),
        other => other.to_string(),
    };
    let source = match source_ar(kind) {
        None => SourceState::Missing,
        Some(ar) => {
            let api: Api<DynamicObject> = Api::namespaced_with(client.clone(), &src_ns, &ar);
            match exists(&api, src_name).await? {
                None => SourceState::Missing,
                Some(src) => match str_at(&src, &["status", "artifact", "revision"]) {
                    "" => SourceState::NoArtifact,
                    rev => SourceState::Ready {
                        revision: rev.to_string(),
                    },
                },
            }
        }
    };

    if !matches!(source, SourceState::Ready { .. }) {
        return Ok(World::only_source(source));
    }

    let mut dependencies = Vec::new();
    if let Some(items) = tf["spec"]["dependsOn"].as_array() {
        for d in items {
            let dns = match str_at(d, &["namespace"]) {
                "" => ns.clone(),
                other => other.to_string(),
            };
            let dname = str_at(d, &["name"]).to_string();
            let api: Api<DynamicObject> =
                Api::namespaced_with(client.clone(), &dns, &terraform_ar());
            let object = exists(&api, &dname).await?;
            let mut outputs_secret_present = false;
            if let Some(out) = object.as_ref().and_then(outputs_secret_name) {
                let dsec: Api<DynamicObject> =
                    Api::namespaced_with(client.clone(), &dns, &core_ar("Secret", "secrets"));
                outputs_secret_present = exists(&dsec, &out).await?.is_some();
            }
            dependencies.push(DependencyView {
                namespace: dns,
                name: dname,
                object,
                outputs_secret_present,
            });
        }
    }

    let sas: Api<DynamicObject> = Api::namespaced_with(
        client.clone(),
        &ns,
        &core_ar("ServiceAccount", "serviceaccounts"),
    );
    let runner_sa_present = exists(&sas, &runner_service_account(tf)).await?.is_some();
    let namespaces: Api<DynamicObject> =
        Api::all_with(client.clone(), &core_ar("Namespace", "namespaces"));
    let namespace_terminating = exists(&namespaces, &ns).await?.is_some_and(|n| {
        !str_at(&n, &["metadata", "deletionTimestamp"]).is_empty()
            || str_at(&n, &["status", "phase"]) == "Terminating"
    });
    if !runner_sa_present || namespace_terminating {
        return Ok(World {
            runner_sa_present,
            namespace_terminating,
            dependencies,
            ..World::only_source(source)
        });
    }

    let mut missing_vars_from = Vec::new();
    if let Some(items) = tf["spec"]["varsFrom"].as_array() {
        let cms: Api<DynamicObject> =
            Api::namespaced_with(client.clone(), &ns, &core_ar("ConfigMap", "configmaps"));
        for vf in items {
            let kind = str_at(vf, &["kind"]);
            let name = str_at(vf, &["name"]);
            let optional = vf["optional"].as_bool().unwrap_or(false);
            let api = if kind == "ConfigMap" { &cms } else { &secrets };
            if !optional && exists(api, name).await?.is_none() {
                missing_vars_from.push((kind.to_string(), name.to_string()));
            }
        }
    }

    let leases: Api<DynamicObject> = Api::namespaced_with(client.clone(), &ns, &lease_ar());
    let lock = exists(&leases, &lock_lease_name(tf))
        .await?
        .and_then(|lease| {
            let holder = str_at(&lease, &["spec", "holderIdentity"]);
            if holder.is_empty() {
                return None;
            }
            let info: Value = lease["metadata"]["annotations"][LOCK_INFO_ANNOTATION]
                .as_str()
                .and_then(|t| serde_json::from_str(t).ok())
                .unwrap_or(Value::Null);
            let field = |k: &str, d: &str| match info[k].as_str() {
                Some(v) if !v.is_empty() => v.to_string(),
                _ => d.to_string(),
            };
            Some(LockView {
                holder: LockSpec {
                    id: holder.to_string(),
                    who: field("Who", "unknown"),
                    operation: field("Operation", "OperationTypeApply"),
                    release_after: None,
                },
                created: field("Created", ""),
            })
        });

    let plan_secret_present = exists(&secrets, &plan_secret_name(tf)).await?.is_some();
    let outputs_secret_present = match outputs_secret_name(tf) {
        Some(n) => exists(&secrets, &n).await?.is_some(),
        None => false,
    };
    if !reconcile::state_in_cluster(tf) {
        let key = (ns.clone(), str_at(tf, &["metadata", "name"]).to_string());
        let remembered = self::lock(&shared.memory)
            .get(&key)
            .and_then(|m| m.remote_resources);
        let state_resources = remembered.or_else(|| {
            let entries = tf["status"]["inventory"]["entries"]
                .as_array()
                .map(Vec::len)
                .unwrap_or(0);
            if entries > 0 {
                Some(entries)
            } else if !str_at(tf, &["status", "lastAppliedRevision"]).is_empty() {
                Some(1)
            } else {
                None
            }
        });
        return Ok(World {
            source,
            runner_sa_present,
            namespace_terminating,
            missing_vars_from,
            dependencies,
            lock,
            plan_secret_present,
            outputs_secret_present,
            state_resources,
        });
    }
    let state_resources = exists(&secrets, &tfstate_secret_name(tf)).await?.map(|s| {
        s["data"]["tfstate"]
            .as_str()
            .and_then(base64_decode)
            .and_then(|b| serde_json::from_slice::<Value>(&b).ok())
            .and_then(|st| st["resources"].as_array().map(Vec::len))
            // a state we cannot read (e.g. real gzip) is assumed non-empty
            .unwrap_or(1)
    });

    Ok(World {
        source,
        runner_sa_present,
        namespace_terminating,
        missing_vars_from,
        dependencies,
        lock,
        plan_secret_present,
        outputs_secret_present,
        state_resources,
    })
}

enum Applied {
    Done,
    Gone,
}

async fn patch_finalizers(
    api: &Api<DynamicObject>,
    name: &str,
    edit: impl Fn(&mut Vec<String>),
) -> Result<Applied, kube::Error> {
    let cur = match exists(api, name).await? {
        Some(v) => v,
        None => return Ok(Applied::Gone),
    };
    let before: Vec<String> = cur["metadata"]["finalizers"]
        .as_array()
        .map(|a| {
            a.iter()
                .filter_map(Value::as_str)
                .map(str::to_string)
                .collect()
        })
        .unwrap_or_default();
    let mut after = before.clone();
    edit(&mut after);
    if after == before {
        return Ok(Applied::Done);
    }
    let patch = json!({"metadata": {"finalizers": after}});
    match api.patch(name, &pp(), &Patch::Merge(&patch)).await {
        Ok(_) => Ok(Applied::Done),
        Err(e) if is_status(&e, 404) => Ok(Applied::Gone),
        Err(e) => Err(e),
    }
}

/// Hold and renew the leader-election Lease as controller-runtime's leader elector does
/// (client-go `leaderelection`: acquire, then renew `spec.renewTime` every retry period). When
/// the simulation is stopped the task ends and the Lease stays with its last `renewTime`, as a
/// killed controller leaves it.
async fn lease_loop(shared: Arc<Shared>) {
    let ns = shared
        .config
        .controller_namespace
        .clone()
        .unwrap_or_else(|| "flux-system".to_owned());
    let namespaces: Api<DynamicObject> =
        Api::all_with(shared.client.clone(), &core_ar("Namespace", "namespaces"));
    if let Ok(obj) = serde_json::from_value::<DynamicObject>(
        json!({"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": ns}}),
    ) {
        let _ = namespaces.create(&PostParams::default(), &obj).await;
    }
    let leases: Api<DynamicObject> = Api::namespaced_with(shared.client.clone(), &ns, &lease_ar());
    let holder = format!(
        "tofu-controller-7d9f8c6b5-x2x4q_{}",
        shared.clock.now().timestamp_micros()
    );
    let micro =
        |t: chrono::DateTime<chrono::Utc>| t.to_rfc3339_opts(chrono::SecondsFormat::Micros, true);
    let acquired = micro(shared.clock.now());
    loop {
        let now = micro(shared.clock.now());
        let spec = json!({
            "holderIdentity": holder,
            "leaseDurationSeconds": LEASE_DURATION_SECS,
            "acquireTime": acquired,
            "renewTime": now,
            "leaseTransitions": 0,
        });
        let patch = json!({"spec": spec});
        match leases
            .patch(LEADER_LEASE_NAME, &pp(), &Patch::Merge(&patch))
            .await
        {
            Ok(_) => {}
            Err(e) if is_status(&e, 404) => {
                if let Ok(obj) = serde_json::from_value::<DynamicObject>(json!({
                    "apiVersion": "coordination.k8s.io/v1", "kind": "Lease",
                    "metadata": {"name": LEADER_LEASE_NAME, "namespace": ns},
                    "spec": spec,
                })) {
                    let _ = leases.create(&PostParams::default(), &obj).await;
                }
            }
            Err(e) => tracing::debug!(error = %e, "tofu-sim: lease renewal failed"),
        }
        tokio::time::sleep(LEASE_RENEW_EVERY).await;
    }
}

/// The reason of condition `type_` in a status object.
fn cond_reason<'a>(status: &'a Value, type_: &str) -> Option<&'a str> {
    status["conditions"]
        .as_array()?
        .iter()
        .find(|c| c["type"] == type_)?
        .get("reason")?
        .as_str()
}

/// Create / start / delete the runner pod `<name>-tf-runner` (labels as
/// `controllers/tf_controller_runner.go` v0.16.5 `runnerPodTemplate`, lines 69–76).
async fn runner_pod(
    shared: &Arc<Shared>,
    key: &Key,
    tf: &Value,
    step: reconcile::PodStep,
) -> Result<(), kube::Error> {
    let (ns, name) = (key.0.as_str(), key.1.as_str());
    let pods: Api<DynamicObject> =
        Api::namespaced_with(shared.client.clone(), ns, &core_ar("Pod", "pods"));
    let pod_name = format!("{name}-tf-runner");
    match step {
        reconcile::PodStep::Create => {
            let _ = pods.delete(&pod_name, &DeleteParams::default()).await;
            let sa = runner_service_account(tf);
            let obj: DynamicObject = serde_json::from_value(json!({
                "apiVersion": "v1", "kind": "Pod",
                "metadata": {
                    "name": pod_name, "namespace": ns,
                    "labels": {
                        "app.kubernetes.io/created-by": "tofu-controller",
                        "app.kubernetes.io/name": "tf-runner",
                        "app.kubernetes.io/instance": format!("tf-runner-{name}"),
                        "infra.contrib.fluxcd.io/terraform": name,
                        "tf.weave.works/tls-secret-name": "terraform-runner.tls",
                    },
                },
                "spec": {
                    "serviceAccountName": sa,
                    "containers": [{"name": "tf-runner", "image": "ghcr.io/flux-iac/tf-runner:v0.16.5"}],
                },
            }))
            .map_err(kube::Error::SerdeError)?;
            match pods.create(&PostParams::default(), &obj).await {
                Ok(_) => {}
                Err(e) if is_status(&e, 409) => {}
                Err(e) => return Err(e),
            }
            let _ = pods
                .patch_status(
                    &pod_name,
                    &pp(),
                    &Patch::Merge(&json!({"status": {"phase": "Pending"}})),
                )
                .await;
        }
        reconcile::PodStep::Running => {
            pods.patch_status(
                &pod_name,
                &pp(),
                &Patch::Merge(&json!({"status": {"phase": "Running", "podIP": "10.244.0.17"}})),
            )
            .await?;
            if let Some(m) = lock(&shared.memory).get_mut(key) {
                m.stats.runner_pods += 1;
            }
        }
        reconcile::PodStep::Delete => {
            match pods.delete(&pod_name, &DeleteParams::default()).await {
                Ok(_) => {}
                Err(e) if is_status(&e, 404) => {}
                Err(e) => return Err(e),
            }
        }
    }
    Ok(())
}

async fn apply_actions(
    shared: &Arc<Shared>,
    key: &Key,
    tf: &Value,
    actions: &[Action],
    row: Row,
) -> Result<Applied, kube::Error> {
    let (ns, name) = (key.0.as_str(), key.1.as_str());
    let client = shared.client.clone();
    let tfs: Api<DynamicObject> = Api::namespaced_with(client.clone(), ns, &terraform_ar());
    let secrets: Api<DynamicObject> =
        Api::namespaced_with(client.clone(), ns, &core_ar("Secret", "secrets"));
    let mut last_status = tf.get("status").cloned().unwrap_or_else(|| json!({}));
    let mut flag_at_destroy_start: Option<bool> = None;
    for (i, action) in actions.iter().enumerate() {
        match action {
            Action::PatchStatus(_) if superseded(actions, i) => {}
            Action::AddFinalizer(f) => {
                let f = f.clone();
                if let Applied::Gone = patch_finalizers(&tfs, name, |l| {
                    if !l.contains(&f) {
                        l.push(f.clone());
                    }
                })
                .await?
                {
                    return Ok(Applied::Gone);
                }
            }
            Action::RemoveFinalizer(f) => {
                let f = f.clone();
                if let Applied::Gone =
                    patch_finalizers(&tfs, name, |l| l.retain(|x| *x != f)).await?
                {
                    return Ok(Applied::Gone);
                }
                if f == super::TERRAFORM_FINALIZER {
                    if let Some(m) = lock(&shared.memory).get_mut(key) {
                        m.stats.released_as = Some(row);
                    }
                }
            }
            Action::PatchStatus(new) => {
                if let Some(diff) = merge_diff(&last_status, new) {
                    let patch = json!({"status": diff});
                    match tfs.patch_status(name, &pp(), &Patch::Merge(&patch)).await {
                        Ok(_) => last_status = new.clone(),
                        Err(e) if is_status(&e, 404) => return Ok(Applied::Gone),
                        Err(e) => return Err(e),
                    }
                }
            }
            Action::AddDependencyFinalizer {
                namespace,
                name: dep,
                finalizer,
            } => {
                let api: Api<DynamicObject> =
                    Api::namespaced_with(client.clone(), namespace, &terraform_ar());
                let f = finalizer.clone();
                patch_finalizers(&api, dep, |l| {
                    if !l.contains(&f) {
                        l.push(f.clone());
                    }
                })
                .await?;
            }
            Action::RemoveDependencyFinalizer {
                namespace,
                name: dep,
                finalizer,
            } => {
                let api: Api<DynamicObject> =
                    Api::namespaced_with(client.clone(), namespace, &terraform_ar());
                let f = finalizer.clone();
                patch_finalizers(&api, dep, |l| l.retain(|x| *x != f)).await?;
            }
            Action::ApplySecret(secret) => {
                let sname = str_at(secret, &["metadata", "name"]).to_string();
                let mut meta = Map::new();
                for k in ["labels", "annotations"] {
                    if let Some(v) = secret["metadata"].get(k).filter(|v| v.is_object()) {
                        meta.insert(k.to_string(), v.clone());
                    }
                }
                let patch = json!({"metadata": meta, "data": secret["data"]});
                match secrets.patch(&sname, &pp(), &Patch::Merge(&patch)).await {
                    Ok(_) => {}
                    Err(e) if is_status(&e, 404) => {
                        let obj: DynamicObject = serde_json::from_value(secret.clone())
                            .map_err(kube::Error::SerdeError)?;
                        secrets.create(&PostParams::default(), &obj).await?;
                    }
                    Err(e) => return Err(e),
                }
            }
            Action::DeleteSecret(sname) => {
                match secrets.delete(sname, &DeleteParams::default()).await {
                    Ok(_) => {}
                    Err(e) if is_status(&e, 404) => {}
                    Err(e) => return Err(e),
                }
            }
            Action::ForceUnlock { id } => {
                unlock_lease(shared, ns, &lock_lease_name(tf), id).await?;
            }
            Action::Event {
                type_,
                reason,
                message,
            } => {
                if !shared.config.no_events {
                    record_event(shared, tf, type_.as_str(), reason, message).await;
                }
            }
            Action::Sleep(d) => tokio::time::sleep(*d).await,
            Action::WriteRemoteState { resources } => {
                if let Some(m) = lock(&shared.memory).get_mut(key) {
                    m.remote_resources = Some(*resources);
                }
            }
            Action::CountDestroyAttempt => {
                if let Some(m) = lock(&shared.memory).get_mut(key) {
                    m.stats.destroy_attempts += 1;
                }
            }
            Action::DestroyInFlight(true) => {
                // What the flag says once the destroy is visible (Apply=Unknown patched).
                flag_at_destroy_start = get_tf(shared, key).await.ok().flatten().map(|o| {
                    o["spec"]["destroyResourcesOnDeletion"]
                        .as_bool()
                        .unwrap_or(false)
                });
                if let Some(m) = lock(&shared.memory).get_mut(key) {
                    m.stats.destroy_runs.push((Instant::now(), None));
                }
            }
            Action::DestroyInFlight(false) => {
                // The Apply RPC returned: did the guard (or anyone) patch the flag meanwhile?
                // It changes nothing for this reconcile (`finalize` read it at its start).
                let flag_now = get_tf(shared, key).await.ok().flatten().map(|o| {
                    o["spec"]["destroyResourcesOnDeletion"]
                        .as_bool()
                        .unwrap_or(false)
                });
                let gone = flag_now.is_none();
                // Patched while the destroy was visibly running (for at least a second of
                // simulated time): a patch that raced the controller's read of the object, before
                // anything showed the destroy, is not counted.
                let ran_visibly = actions[..i]
                    .iter()
                    .rev()
                    .take_while(|a| !matches!(a, Action::DestroyInFlight(true)))
                    .any(|a| matches!(a, Action::Sleep(d) if *d >= std::time::Duration::from_secs(1)));
                if let Some(m) = lock(&shared.memory).get_mut(key) {
                    if flag_at_destroy_start == Some(true) && flag_now == Some(false) && ran_visibly
                    {
                        m.stats.orphan_patch_during_destroy += 1;
                    }
                    if let Some(run) = m.stats.destroy_runs.last_mut().filter(|r| r.1.is_none()) {
                        run.1 = Some(Instant::now());
                        if gone {
                            m.stats.destroys_cut += 1;
                        }
                    }
                    let failed = actions[i + 1..].iter().any(|a| {
                        matches!(a, Action::PatchStatus(v) if cond_reason(v, "Apply") == Some("TerraformAppliedFail"))
                    });
                    if !gone && !failed {
                        m.stats.destroys_completed += 1;
                    }
                }
                if gone {
                    return Ok(Applied::Gone);
                }
            }
            Action::CountApply => {
                if let Some(m) = lock(&shared.memory).get_mut(key) {
                    m.stats.applies.push(Instant::now());
                }
            }
            Action::RunnerPod(step) => {
                runner_pod(shared, key, tf, *step).await?;
            }
        }
    }
    Ok(Applied::Done)
}

/// Whether the status patch at `i` is followed by another one before any simulated time
/// passes: no observer could see it for a measurable time, so it is folded into the later one.
fn superseded(actions: &[Action], i: usize) -> bool {
    for a in &actions[i + 1..] {
        match a {
            Action::PatchStatus(_) => return true,
            Action::Sleep(_) | Action::RemoveFinalizer(_) => return false,
            _ => {}
        }
    }
    false
}

/// Best-effort core/v1 Event on the CR (like the controller's event recorder).
async fn record_event(shared: &Shared, tf: &Value, type_: &str, reason: &str, message: &str) {
    let ns = str_at(tf, &["metadata", "namespace"]);
    let name = str_at(tf, &["metadata", "name"]);
    let now = super::clock::kube_time(shared.clock.now());
    let micros = shared.clock.now().timestamp_micros();
    let ev = json!({
        "apiVersion": "v1",
        "kind": "Event",
        "metadata": {"name": format!("{name}.{micros:x}"), "namespace": ns},
        "involvedObject": {
            "apiVersion": super::TERRAFORM_API_VERSION,
            "kind": "Terraform",
            "name": name,
            "namespace": ns,
            "uid": str_at(tf, &["metadata", "uid"]),
            "resourceVersion": str_at(tf, &["metadata", "resourceVersion"]),
        },
        "reason": reason,
        "message": message,
        "type": type_,
        "source": {"component": "tf-controller"},
        "reportingComponent": "tf-controller",
        "firstTimestamp": now,
        "lastTimestamp": now,
        "count": 1,
    });
    let api: Api<DynamicObject> =
        Api::namespaced_with(shared.client.clone(), ns, &core_ar("Event", "events"));
    let agg_key = (
        ns.to_string(),
        name.to_string(),
        reason.to_string(),
        message.to_string(),
    );
    let previous = lock(&shared.events).get(&agg_key).cloned();
    if let Some((ev_name, count)) = previous {
        let patch = json!({"count": count + 1, "lastTimestamp": now});
        if api
            .patch(&ev_name, &pp(), &Patch::Merge(&patch))
            .await
            .is_ok()
        {
            lock(&shared.events).insert(agg_key, (ev_name, count + 1));
            return;
        }
    }
    let ev_name = format!("{name}.{micros:x}");
    if let Ok(obj) = serde_json::from_value::<DynamicObject>(ev) {
        match api.create(&PostParams::default(), &obj).await {
            Ok(_) => {
                lock(&shared.events).insert(agg_key, (ev_name, 1));
            }
            Err(e) => tracing::debug!(error = %e, "tofu-sim: recording an event failed"),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::merge_diff;
    use serde_json::json;

    #[test]
    fn merge_diff_nulls_removed_keys_and_replaces_arrays() {
        let old = json!({"a": 1, "b": {"c": 2, "d": 3}, "l": [1, 2], "gone": true});
        let new = json!({"a": 1, "b": {"c": 5, "d": 3}, "l": [1], "new": "x"});
        assert_eq!(
            merge_diff(&old, &new),
            Some(json!({"b": {"c": 5}, "l": [1], "new": "x", "gone": null}))
        );
        assert_eq!(merge_diff(&new, &new), None);
    }
}
