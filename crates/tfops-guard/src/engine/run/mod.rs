//! `engine::run` — the guard's event loop. One watch per namespace (label selector
//! `tfops.dev/release=<release>`, or unselected and filtered by name for manifest-only CRs),
//! whose initial list doubles as discovery; per-CR timers from the machine's `Wait` decisions;
//! one budget deadline. Every decision comes from [`crate::core::machine::decide`]; this module
//! only observes, executes and records.
//!
//! Ordering: a CR is deleted only once its in-release dependants have reached a terminal
//! outcome (the machine waits while `dependants_present` is non-empty). tofu-controller would
//! hold a dependency anyway through `tf.dependency.of.*` finalizers, but only if it reconciled
//! the dependant; deleting in order also keeps every dependency (and its outputs Secret) in
//! place while its dependants destroy, and keeps the force-remove of a dependant from racing
//! a dependency that tofu-controller would otherwise fail to find (row 20 of the simulation
//! table: a dependency already gone wedges the dependant's finalize forever).
//!
//! Write-ahead ledger: an `Orphan` / `ForceRemove` decision first writes its ledger Secret
//! (created, or already present for the same uid); only when that succeeded does any patch
//! follow. When the ledger cannot be written (namespace terminating, RBAC), the CR is left
//! exactly as it is (finalizers kept), the write is retried with backoff until the budget
//! ends, and the run finishes with exit code 3 naming the CR — nothing is lost silently.
//!
//! Requests on a clean uninstall: constant LIST + WATCH per namespace, then per CR one merge
//! patch (reconcile request + progress) and one DELETE, plus one Event (3 per CR). The
//! environment is probed only for a CR that is not progressing (no status change for
//! `probe_after`, or a failure condition), at most once per `reprobe_every`. Events are
//! emitted for every action decision (not for waits, nor for a plain destroyed /
//! nothing-to-destroy end, which tofu-controller reports itself) and once per CR for invalid
//! policy annotations. A failure that a built-in in-use rule classes permanent and that names
//! its holders adds one tfstate Secret GET per `Terraform` that will be destroyed, at each
//! probe and when the message changes ([`holders`]).
//!
//! Evidence, not inference (see [`crate::core::liveness`]): the controller's liveness comes from its
//! leader-election Lease (sampled at most every `lease_every`, only while some CR is not
//! progressing); progress comes from the CR's runner pod `<name>-tf-runner` (read by the
//! probe), its `Apply` condition, and status changes the guard saw in its own clock. A state
//! lock is abandoned only when the current failure's `Lock Info` names a holder that was this
//! CR's own runner pod and that pod is gone or newer than the lock; the machine then
//! force-unlocks if the policy allows it (`tfops.dev/force-unlock`, off by default).
//!
//! Exit: when every CR is terminal (or held back because a dependant is blocked), or at the
//! budget deadline — whichever comes first. Timers are local (no polling of the API).

use std::collections::{BTreeMap, BTreeSet};
use std::time::Duration;

use chrono::{DateTime, Utc};
use futures::stream::{select_all, BoxStream};
use futures::StreamExt;
use k8s_openapi::api::coordination::v1::Lease;
use kube::api::DynamicObject;
use kube::runtime::watcher::{self, Event as WEvent};
use kube::runtime::WatchStreamExt;
use kube::Client;
use serde_json::json;
use tokio::time::Instant;

use super::discover::{release_selector, ManifestRef};
use super::observer::{DecisionRecord, Observer};
use super::ops::{self, LedgerFacts, OpError};
use crate::clock::Clock;
use crate::core::classify::{Classification, Classifier};
use crate::core::findings;
use crate::core::liveness::{self, LeaseSample, LeaseTrack};
use crate::core::machine::{
    self, Decision, Environment as MEnv, Input, Observation, Outcome, Presence, RunnerPod,
    SourceState, Timing, Tunables,
};
use crate::core::order::{self, Key, Node};
use crate::core::policy::{self, Policy};
use crate::events::{self, Severity};
use crate::ledger;
use crate::probe;
use crate::progress::{Phase, Progress, PROGRESS_ANNOTATION};
use crate::tfobj;

mod executor;
mod holders;
mod report;

pub use report::{CrReport, GuardReport, RunStatus};

/// A probe older than this is taken again before a decision that lets a CR go without a
/// destroy.
const FRESH_PROBE: Duration = Duration::from_secs(2);
/// Longest single sleep of the event loop.
const TICK: Duration = Duration::from_secs(1);
/// Longest REAL time the loop waits (without letting a timer fire) for the watch to echo the
/// guard's own last write. The echo normally arrives within a millisecond; waiting for it
/// keeps the next decision from being taken on a view older than our own write. Under a paused
/// test clock it also stops virtual time from running ahead while bytes are in flight on real
/// sockets (the first chunk of a new watch response can take ~40 ms of real time on loopback:
/// Nagle + delayed ACK), which a paused clock would otherwise skip by jumping to the next timer.
const ECHO_WAIT: Duration = Duration::from_millis(100);

/// Everything a guard run needs besides the client and the clock.
#[derive(Debug, Clone)]
pub struct GuardOptions {
    pub release: String,
    /// Release namespace (where the labelled CRs are).
    pub namespace: String,
    /// The whole run ends within this.
    pub budget: Duration,
    /// Where ledger Secrets go (default: the release namespace).
    pub ledger_namespace: Option<String>,
    /// Policy for CRs without (or with invalid) policy annotations.
    pub defaults: Policy,
    pub classifier: Classifier,
    pub tunables: Tunables,
    /// CRs named by the release manifest (client-side path), found even without labels.
    pub extra: Vec<ManifestRef>,
    /// tofu-controller's leader-election Lease (namespace, name); `None` = do not look.
    pub controller_lease: Option<(String, String)>,
    /// Sample the Lease at most this often.
    pub lease_every: Duration,
    /// Probe a CR's environment once it shows no status change for this long.
    pub probe_after: Duration,
    /// At most one probe per CR per this interval.
    pub reprobe_every: Duration,
    /// Told every decision as it is made (progress displays, JSON logs).
    pub observer: Option<Observer>,
}

impl GuardOptions {
    /// Options with built-in defaults for `release` in `namespace`.
    pub fn new(release: &str, namespace: &str, budget: Duration) -> Self {
        Self {
            release: release.to_owned(),
            namespace: namespace.to_owned(),
            budget,
            ledger_namespace: None,
            defaults: Policy::default(),
            classifier: Classifier::builtin(),
            tunables: Tunables::default(),
            extra: Vec::new(),
            controller_lease: Some((
                liveness::CONTROLLER_NAMESPACE.to_owned(),
                liveness::CONTROLLER_LEASE_NAME.to_owned(),
            )),
            lease_every: Duration::from_secs(10),
            probe_after: Duration::from_secs(10),
            reprobe_every: Duration::from_secs(20),
            observer: None,
        }
    }

    fn ledger_ns(&self) -> &str {
        self.ledger_namespace.as_deref().unwrap_or(&self.namespace)
    }
}

/// Fatal errors (nothing was changed).
#[derive(Debug, thiserror::Error)]
pub enum EngineError {
    #[error(
        "the watch on Terraform CRs in {namespace} could not start within the budget: {message}"
    )]
    Watch { namespace: String, message: String },
}

/// Per-CR working state.
struct Cr {
    key: Key,
    obj: Option<DynamicObject>,
    uid: String,
    module: String,
    progress: Progress,
    persisted: Progress,
    policy: Policy,
    policy_errors: Vec<String>,
    depends_on: Vec<Key>,
    share_deadline: DateTime<Utc>,
    env: Option<(findings::Findings, Instant)>,
    dependants_gone: BTreeSet<String>,
    /// Holders named by the current in-use failure that go with this uninstall (read at each
    /// probe and when the failure message changes: [`holders`]).
    holders_in_destroy: BTreeMap<String, String>,
    /// The failure message `holders_in_destroy` was read for.
    holders_for: Option<String>,
    /// What a resource in another `Terraform`'s state references of the current in-use
    /// failure's subjects (read with `holders_in_destroy`).
    referrers_in_destroy: BTreeMap<String, crate::machine::Referrer>,
    /// `Terraform`s whose state the last holder check could not read (an API error), and how
    /// often releasing this CR was put off to read them again.
    unread: holders::UnreadStates,
    /// What this run has seen in this CR's state (every read merged: read before the guard
    /// deletes the CR and by holder checks) — so that a holder whose Terraform finished its
    /// destroy before the check still counts. Reads are parsed only when a holder check needs
    /// them, and only when the Secret changed.
    state: holders::SeenState,
    /// Cloud identifiers in `status.inventory` when last seen non-empty (kept after the CR is
    /// gone, for the same reason).
    inventory_ids: BTreeSet<String>,
    /// Runner pod uid first seen Pending, and when (guard clock).
    runner_pending_since: Option<(String, DateTime<Utc>)>,
    /// The in-cluster tfstate Secret, when the state lives in-cluster.
    tfstate_secret: Option<String>,
    wake_at: Option<Instant>,
    outcome: Option<Outcome>,
    last_kind: String,
    why: String,
    ledger: Option<String>,
    next_step: Option<String>,
    /// Don't retry a failed operation before this.
    op_backoff: Option<(Instant, u32)>,
    last_status_change: Instant,
    /// Guard-clock time of the last status change seen after the run started.
    status_changed_at: Option<DateTime<Utc>>,
    status_fingerprint: String,
    controller_fingerprint: String,
    events_sent: u64,
}

/// The controller-written part of the CR (its status): a change is the controller at work.
fn status_fingerprint(obj: &DynamicObject) -> String {
    tfobj::view(obj)
        .status()
        .map(|s| s.to_string())
        .unwrap_or_default()
}

fn fingerprint(obj: &DynamicObject) -> String {
    let v = tfobj::view(obj);
    format!(
        "{}|{}|{:?}",
        v.status().map(|s| s.to_string()).unwrap_or_default(),
        v.deleting(),
        v.finalizers()
    )
}

/// Progress fields whose change must be persisted even without an action.
fn significant(p: &Progress) -> serde_json::Value {
    let mut v = serde_json::to_value(p).unwrap_or_default();
    if let Some(m) = v.as_object_mut() {
        m.remove("escalatesAt");
        m.remove("lastFailureMessage");
        // Seen on the watch right before the controller releases the CR: not worth a write
        // of its own (it rides along with the next action's patch).
        m.remove("destroyAppliedAt");
        m.remove("lastBusyAt");
    }
    v
}

fn rv_num(o: &DynamicObject) -> Option<u64> {
    o.metadata.resource_version.as_deref()?.parse().ok()
}

fn key_of(o: &DynamicObject, default_ns: &str) -> Key {
    (
        o.metadata
            .namespace
            .clone()
            .unwrap_or_else(|| default_ns.to_owned()),
        o.metadata.name.clone().unwrap_or_default(),
    )
}

/// Whether the holder of the lock named by the current failure is provably gone: its `Who`
/// is this CR's own runner pod (`<name>-tf-runner`; controller-runtime never runs two
/// reconciles of one CR at once) and that pod is gone or was created after the lock was
/// taken. Anything else (another host, no `Lock Info`) is Unknown: never force-unlocked.
impl Cr {
    /// Hold `o` as the newest view of the CR, noting when anything (`last_status_change`) or
    /// the controller's part of it (`status_changed_at`, guard clock `now`) last changed.
    fn take_object(&mut self, o: DynamicObject, now: DateTime<Utc>) {
        let fp = fingerprint(&o);
        if fp != self.status_fingerprint {
            self.status_fingerprint = fp;
            self.last_status_change = Instant::now();
        }
        let inventory = holders::inventory_ids(&o);
        if !inventory.is_empty() {
            self.inventory_ids = inventory;
        }
        let sfp = status_fingerprint(&o);
        if sfp != self.controller_fingerprint {
            self.controller_fingerprint = sfp;
            self.status_changed_at = Some(now);
        }
        self.obj = Some(o);
    }
}

fn lock_holder(cr: &Cr, env: &findings::Findings) -> Presence {
    let Some(obj) = &cr.obj else {
        return Presence::Unknown;
    };
    let Some((_, _, message)) = tfobj::view(obj).ready_condition() else {
        return Presence::Unknown;
    };
    let Some(info) = crate::core::lock::lock_info(message) else {
        return Presence::Unknown;
    };
    if !info.held_by_runner_of(&cr.key.1) {
        return Presence::Unknown;
    }
    match (&env.runner_pod_presence, &env.runner_pod) {
        (Presence::Missing, _) => Presence::Missing,
        (_, Some(pod)) => match (pod.created, info.created) {
            (Some(pod_at), Some(lock_at)) if pod_at > lock_at => Presence::Missing,
            _ => Presence::Unknown,
        },
        _ => Presence::Unknown,
    }
}

fn event_reason(d: &Decision) -> (&'static str, Severity) {
    match d {
        Decision::Unsuspend => ("TfopsGuardUnsuspend", Severity::Normal),
        Decision::Delete { .. } => ("TfopsGuardDelete", Severity::Normal),
        Decision::DropStaleDependencyFinalizers { .. } => {
            ("TfopsGuardDropStaleFinalizers", Severity::Normal)
        }
        Decision::Wait { .. } => ("TfopsGuardWait", Severity::Normal),
        Decision::Retry { .. } => ("TfopsGuardRetry", Severity::Warning),
        Decision::ForceUnlock { .. } => ("TfopsGuardForceUnlock", Severity::Warning),
        Decision::RestoreTfstate { .. } => ("TfopsGuardRestoreTfstate", Severity::Normal),
        Decision::Orphan { .. } => ("TfopsGuardOrphaned", Severity::Warning),
        Decision::ForceRemove { .. } => ("TfopsGuardForceRemoved", Severity::Warning),
        Decision::Block { .. } => ("TfopsGuardBlocked", Severity::Warning),
        Decision::Done(_) => ("TfopsGuardDone", Severity::Normal),
    }
}

type WatchStream = BoxStream<'static, (String, Result<WEvent<DynamicObject>, watcher::Error>)>;

/// The guard engine state for one run.
struct Engine {
    client: Client,
    opts: GuardOptions,
    clock: Clock,
    deadline: Instant,
    crs: BTreeMap<Key, Cr>,
    dependants: BTreeMap<Key, BTreeSet<Key>>,
    /// Initial list buffers per namespace (watch (re)start).
    init_buf: BTreeMap<String, Vec<DynamicObject>>,
    /// Names per namespace to accept when unlabelled (manifest path).
    wanted: BTreeMap<String, BTreeSet<String>>,
    /// Namespaces whose first initial list completed.
    listed: BTreeSet<String>,
    started: bool,
    /// resourceVersion of our own last write not yet echoed by the watch, and since when (real
    /// time; see [`ECHO_WAIT`]).
    awaiting_echo: Option<(u64, std::time::Instant)>,
    /// What the guard saw of the controller's leader-election Lease.
    lease: LeaseTrack,
    lease_sampled: Option<Instant>,
    /// Notes for the report (budget sizing, evidence).
    notes: Vec<String>,
}

/// Run the guard for `opts.release` until every CR is terminal or the budget ends.
pub async fn run_guard(
    client: Client,
    opts: GuardOptions,
    clock: Clock,
) -> Result<GuardReport, EngineError> {
    let deadline = clock.started_at() + opts.budget;
    let mut wanted: BTreeMap<String, BTreeSet<String>> = BTreeMap::new();
    wanted.entry(opts.namespace.clone()).or_default();
    for r in &opts.extra {
        let ns = r
            .namespace
            .clone()
            .unwrap_or_else(|| opts.namespace.clone());
        wanted.entry(ns).or_default().insert(r.name.clone());
    }
    let mut streams: Vec<WatchStream> = Vec::new();
    for (ns, names) in &wanted {
        let api = ops::tf_api(&client, ns);
        let cfg = if names.is_empty() {
            watcher::Config::default().labels(&release_selector(&opts.release))
        } else {
            watcher::Config::default()
        };
        let ns2 = ns.clone();
        streams.push(
            watcher::watcher(api, cfg)
                .default_backoff()
                .map(move |e| (ns2.clone(), e))
                .boxed(),
        );
    }
    let mut stream = select_all(streams);
    let mut eng = Engine {
        client,
        clock,
        deadline,
        crs: BTreeMap::new(),
        dependants: BTreeMap::new(),
        init_buf: BTreeMap::new(),
        wanted,
        listed: BTreeSet::new(),
        started: false,
        awaiting_echo: None,
        lease: LeaseTrack::default(),
        lease_sampled: None,
        notes: Vec::new(),
        opts,
    };
    let mut last_watch_error: Option<String> = None;
    loop {
        if eng.started && eng.all_settled() {
            break;
        }
        let now = Instant::now();
        if now >= eng.deadline {
            break;
        }
        let next_wake = eng
            .crs
            .values()
            .filter(|c| c.outcome.is_none())
            .filter_map(|c| c.wake_at)
            .min()
            .unwrap_or(eng.deadline)
            .min(eng.deadline)
            // Local tick (no API traffic): re-checks due timers at least once a second.
            .min(now + TICK);
        let echo_pending = eng
            .awaiting_echo
            .is_some_and(|(_, since)| since.elapsed() < ECHO_WAIT);
        tokio::select! {
            biased;
            ev = stream.next() => {
                match ev {
                    Some((ns, Ok(e))) => {
                        last_watch_error = None;
                        eng.on_watch(&ns, e).await;
                    }
                    Some((ns, Err(e))) => {
                        tracing::warn!(namespace = %ns, error = %e, "watch error; resuming");
                        last_watch_error = Some(e.to_string());
                    }
                    None => break,
                }
            }
            // Our own write is not echoed yet: yield (the runtime stays busy, no timer fires)
            // and look at the watch again.
            _ = tokio::task::yield_now(), if echo_pending => {}
            _ = tokio::time::sleep_until(next_wake), if !echo_pending => {
                let now = Instant::now();
                let due: Vec<Key> = eng.crs.iter()
                    .filter(|(_, c)| c.outcome.is_none() && c.wake_at.is_some_and(|w| w <= now))
                    .map(|(k, _)| k.clone()).collect();
                for k in due {
                    // A due timer is consumed; `step` sets the next one if the CR waits.
                    if let Some(cr) = eng.crs.get_mut(&k) {
                        cr.wake_at = None;
                    }
                    eng.step(&k).await;
                }
            }
        }
    }
    if !eng.started {
        return Err(EngineError::Watch {
            namespace: eng.opts.namespace.clone(),
            message: last_watch_error.unwrap_or_else(|| "no initial list received".to_owned()),
        });
    }
    Ok(eng.report())
}

impl Engine {
    fn all_settled(&self) -> bool {
        self.crs
            .values()
            .all(|c| c.outcome.is_some() || self.held_by_block(&c.key))
    }

    /// A CR one of whose dependants (transitively) is blocked: never started on purpose.
    fn held_by_block(&self, key: &Key) -> bool {
        order::reachable(key, |k| self.dependants.get(k).into_iter().flatten())
            .iter()
            .any(|k| {
                self.crs
                    .get(k)
                    .is_some_and(|c| c.outcome == Some(Outcome::Blocked))
            })
    }

    fn accept(&self, ns: &str, o: &DynamicObject) -> bool {
        let name = o.metadata.name.as_deref().unwrap_or("");
        let labelled = tfobj::view(o).label(tfops_api::names::LABEL_RELEASE)
            == Some(self.opts.release.as_str());
        labelled || self.wanted.get(ns).is_some_and(|w| w.contains(name))
    }

    async fn on_watch(&mut self, ns: &str, e: WEvent<DynamicObject>) {
        if let WEvent::Apply(o) | WEvent::Delete(o) | WEvent::InitApply(o) = &e {
            if let (Some(rv), Some((want, _))) = (rv_num(o), self.awaiting_echo) {
                if rv >= want {
                    self.awaiting_echo = None;
                }
            }
        }
        match e {
            WEvent::Init => {
                self.init_buf.insert(ns.to_owned(), Vec::new());
            }
            WEvent::InitApply(o) => {
                if self.accept(ns, &o) {
                    self.init_buf.entry(ns.to_owned()).or_default().push(o);
                }
            }
            WEvent::InitDone => {
                let objs = self.init_buf.remove(ns).unwrap_or_default();
                if !self.started {
                    for o in objs {
                        self.add_cr(ns, o);
                    }
                    self.listed.insert(ns.to_owned());
                    if self.wanted.keys().all(|n| self.listed.contains(n)) {
                        self.begin().await;
                    }
                } else {
                    // Relist after a watch gap: anything we track that is absent is gone.
                    let present: BTreeSet<Key> = objs.iter().map(|o| key_of(o, ns)).collect();
                    for o in objs {
                        self.observe(ns, Some(o)).await;
                    }
                    let gone: Vec<Key> = self
                        .crs
                        .keys()
                        .filter(|k| k.0 == ns && !present.contains(*k))
                        .cloned()
                        .collect();
                    for k in gone {
                        self.mark_gone(&k).await;
                    }
                }
            }
            WEvent::Apply(o) => {
                if self.started && self.accept(ns, &o) {
                    self.observe(ns, Some(o)).await;
                }
            }
            WEvent::Delete(o) => {
                if self.started {
                    let k = key_of(&o, ns);
                    self.mark_gone(&k).await;
                }
            }
        }
    }

    fn add_cr(&mut self, ns: &str, o: DynamicObject) {
        let key = key_of(&o, ns);
        let v = tfobj::view(&o);
        let annotations = o.metadata.annotations.clone().unwrap_or_default();
        let resolved = policy::resolve(&annotations, &self.opts.defaults);
        let progress = match Progress::from_annotations(&annotations) {
            Ok(p) => p.unwrap_or_default(),
            Err(e) => {
                tracing::warn!(cr = %key.1, error = %e, "progress annotation unreadable");
                Progress::default()
            }
        };
        let depends_on = v
            .depends_on()
            .into_iter()
            .map(|r| (r.namespace, r.name))
            .collect();
        let fp = fingerprint(&o);
        let cr = Cr {
            key: key.clone(),
            uid: v.uid().to_owned(),
            module: v.module().to_owned(),
            persisted: progress.clone(),
            progress,
            policy: resolved.policy,
            policy_errors: resolved.errors.iter().map(|e| e.to_string()).collect(),
            depends_on,
            share_deadline: self.clock.now(),
            env: None,
            dependants_gone: BTreeSet::new(),
            holders_in_destroy: BTreeMap::new(),
            holders_for: None,
            state: holders::SeenState::default(),
            referrers_in_destroy: BTreeMap::new(),
            unread: holders::UnreadStates::default(),
            inventory_ids: BTreeSet::new(),
            runner_pending_since: None,
            tfstate_secret: v
                .state_in_cluster()
                .then(|| ledger::tfstate_secret_name(v.workspace(), v.state_secret_suffix())),
            wake_at: None,
            outcome: None,
            last_kind: String::new(),
            why: "not started".to_owned(),
            ledger: None,
            next_step: None,
            op_backoff: None,
            last_status_change: Instant::now(),
            status_changed_at: None,
            status_fingerprint: fp,
            controller_fingerprint: status_fingerprint(&o),
            events_sent: 0,
            obj: Some(o),
        };
        self.crs.insert(key, cr);
    }

    /// All initial lists are in: compute order and shares, then decide every CR once.
    async fn begin(&mut self) {
        self.started = true;
        let nodes: Vec<Node> = self
            .crs
            .values()
            .map(|c| Node {
                key: c.key.clone(),
                depends_on: c.depends_on.clone(),
            })
            .collect();
        let ord = order::deletion_order(&nodes);
        self.dependants = ord.dependants.clone();
        let shares =
            crate::core::plan::shares(&ord, self.opts.budget, self.opts.tunables.force_reserve);
        for (k, cr) in self.crs.iter_mut() {
            let share = shares.get(k).map_or(self.opts.budget, |s| s.deadline);
            cr.share_deadline = self.clock.at(share);
            for e in &cr.policy_errors {
                tracing::warn!(cr = %k.1, "{e}");
            }
        }
        let with_errors: Vec<(Key, String)> = self
            .crs
            .values()
            .filter(|c| !c.policy_errors.is_empty())
            .map(|c| (c.key.clone(), c.policy_errors.join("; ")))
            .collect();
        for (k, msg) in with_errors {
            self.emit_reason(&k, "TfopsGuardInvalidPolicy", Severity::Warning, &msg)
                .await;
        }
        let budget = self.opts.budget;
        let long: Vec<(Key, Duration)> = self
            .crs
            .values()
            .filter(|c| {
                c.policy.timeout > budget && c.policy.uninstall == policy::UninstallPolicy::Destroy
            })
            .map(|c| (c.key.clone(), c.policy.timeout))
            .collect();
        if let Some(max) = long.iter().map(|(_, t)| *t).max() {
            let names: Vec<String> = long
                .iter()
                .map(|(k, _)| format!("{}/{}", k.0, k.1))
                .collect();
            let msg = format!(
                "{} may take up to {} to destroy ({}) but the guard budget is {}: a destroy still running when the budget ends is left to finish (never cut) and the run ends unfinished; for destroys that long give the guard a budget of at least {} (and Helm a --timeout a minute longer)",
                names.join(", "),
                tfops_api::duration::format_duration(max),
                tfops_api::names::ANN_TIMEOUT,
                tfops_api::duration::format_duration(budget),
                tfops_api::duration::format_duration(max)
            );
            tracing::info!("{msg}");
            self.notes.push(msg);
        }
        for k in ord.order {
            self.step(&k).await;
        }
    }

    async fn observe(&mut self, ns: &str, o: Option<DynamicObject>) {
        let Some(o) = o else { return };
        let key = key_of(&o, ns);
        let Some(cr) = self.crs.get_mut(&key) else {
            return;
        };
        // Ignore stale events older than what we already hold (our own patch responses).
        if let (Some(new), Some(old)) = (rv_num(&o), cr.obj.as_ref().and_then(rv_num)) {
            if new <= old {
                return;
            }
        }
        if cr.obj.is_none() && cr.outcome.is_some() {
            return;
        }
        cr.take_object(o, self.clock.now());
        self.step(&key).await;
        self.step_dependencies(&key).await;
    }

    async fn mark_gone(&mut self, key: &Key) {
        let Some(cr) = self.crs.get_mut(key) else {
            return;
        };
        if cr.obj.is_none() {
            return;
        }
        cr.obj = None;
        self.step(key).await;
        self.step_dependencies(key).await;
    }

    async fn step_dependencies(&mut self, key: &Key) {
        let deps: Vec<Key> = self
            .crs
            .get(key)
            .map(|c| c.depends_on.clone())
            .unwrap_or_default();
        for d in deps {
            if self.crs.get(&d).is_some_and(|c| c.outcome.is_none()) {
                self.step(&d).await;
            }
        }
    }

    fn observation(&self, cr: &Cr) -> Observation {
        let Some(obj) = &cr.obj else {
            return Observation::gone(&cr.key.1, &cr.key.0);
        };
        let mut o = Observation::from_object(&serde_json::to_value(obj).unwrap_or_default());
        if o.namespace.is_empty() {
            o.namespace = cr.key.0.clone();
        }
        let mut present: BTreeSet<String> = BTreeSet::new();
        for d in self.dependants.get(&cr.key).into_iter().flatten() {
            if let Some(dc) = self.crs.get(d) {
                if dc.obj.is_some() && dc.outcome.is_none() {
                    present.insert(d.1.clone());
                }
            }
        }
        // Dependants named only by finalizers (outside the release): present unless probed gone.
        let in_release: BTreeSet<&str> = self
            .crs
            .keys()
            .filter(|k| k.0 == cr.key.0)
            .map(|k| k.1.as_str())
            .collect();
        for name in tfobj::view(obj).dependant_finalizers() {
            if !in_release.contains(name) && !cr.dependants_gone.contains(name) {
                present.insert(name.to_owned());
            }
        }
        o.dependants_present = present.into_iter().collect();
        o.status_changed_at = cr.status_changed_at;
        o
    }

    fn environment(&self, cr: &Cr) -> MEnv {
        let mut env = MEnv::default();
        if let Some((p, _)) = &cr.env {
            env.source = SourceState::from(&p.source);
            env.runner_service_account = p.runner_service_account_presence;
            env.vars_from = if p.missing_vars_from.is_empty() {
                Presence::Present
            } else {
                Presence::Missing
            };
            env.namespace_terminating = p.namespace_terminating == Some(true);
            env.dependency_gone = p.depends_on_gone.first().map(ToString::to_string);
            env.runner = match (&p.runner_pod_presence, &p.runner_pod) {
                (Presence::Unknown, _) => RunnerPod::Unknown,
                (_, None) => RunnerPod::Absent,
                (_, Some(pod)) if pod.deleting => RunnerPod::Finished,
                (_, Some(pod)) => match pod.phase.as_str() {
                    "Running" => RunnerPod::Running,
                    "Pending" => RunnerPod::Pending {
                        since: cr
                            .runner_pending_since
                            .as_ref()
                            .filter(|(uid, _)| *uid == pod.uid)
                            .map_or(self.clock.now(), |(_, at)| *at),
                    },
                    _ => RunnerPod::Finished,
                },
            };
            env.lock_holder = lock_holder(cr, p);
        }
        (env.holders_in_destroy, env.referrers_in_destroy) = self.holders_still_going(&cr.key, cr);
        env.controller = self.lease.presence(self.clock.now());
        env
    }

    /// Probe the CR's environment (and sample the controller Lease); false when it failed.
    async fn probe(&mut self, key: &Key) -> bool {
        self.sample_lease().await;
        let Some(obj) = self.crs.get(key).and_then(|c| c.obj.clone()) else {
            return true;
        };
        match probe::probe_environment(&self.client, &obj).await {
            Ok(env) => {
                let now = self.clock.now();
                let Some(cr) = self.crs.get_mut(key) else {
                    return true;
                };
                cr.dependants_gone = env.dependants_gone.iter().cloned().collect();
                cr.runner_pending_since = match &env.runner_pod {
                    Some(p) if p.phase == "Pending" && !p.deleting => {
                        match &cr.runner_pending_since {
                            Some((uid, at)) if *uid == p.uid => Some((uid.clone(), *at)),
                            _ => Some((p.uid.clone(), now)),
                        }
                    }
                    _ => None,
                };
                cr.env = Some((env, Instant::now()));
                self.refresh_holders(key).await;
                true
            }
            Err(e) => {
                tracing::warn!(cr = %key.1, error = %e, "probe failed");
                false
            }
        }
    }

    /// The machine's step for one CR on what the engine holds now.
    fn decide(&self, key: &Key) -> Option<machine::Step> {
        let cr = self.crs.get(key)?;
        let obs = self.observation(cr);
        let env = self.environment(cr);
        Some(machine::decide(&Input {
            observation: &obs,
            environment: &env,
            policy: &cr.policy,
            progress: &cr.progress,
            timing: self.timing(cr),
            tunables: &self.opts.tunables,
            classifier: &self.opts.classifier,
        }))
    }

    /// Read the controller's leader-election Lease (at most every `lease_every`).
    async fn sample_lease(&mut self) {
        let Some((ns, name)) = self.opts.controller_lease.clone() else {
            return;
        };
        if self
            .lease_sampled
            .is_some_and(|at| at.elapsed() < self.opts.lease_every)
        {
            return;
        }
        self.lease_sampled = Some(Instant::now());
        let api: kube::Api<Lease> = kube::Api::namespaced(self.client.clone(), &ns);
        let sample = match api.get(&name).await {
            Ok(l) => {
                let spec = l.spec.unwrap_or_default();
                Some(LeaseSample {
                    holder: spec.holder_identity,
                    renew_time: spec.renew_time.and_then(|t| probe::jiff_to_chrono(t.0)),
                    lease_duration: spec
                        .lease_duration_seconds
                        .and_then(|s| u64::try_from(s).ok())
                        .map(Duration::from_secs),
                })
            }
            Err(e) if matches!(ops::status_code(&e), Some(403 | 404)) => None,
            Err(e) => {
                tracing::debug!(error = %e, "controller Lease not read");
                return;
            }
        };
        self.lease.observe(sample, self.clock.now());
    }

    /// Whether to (re)probe the CR's environment now (lazy: only when not progressing).
    fn wants_probe(&self, cr: &Cr, obs: &Observation) -> bool {
        if cr.obj.is_none() || !obs.deleting {
            return false;
        }
        if cr
            .env
            .as_ref()
            .is_some_and(|(_, at)| at.elapsed() < self.opts.reprobe_every)
        {
            return false;
        }
        let failing = obs.ready.as_ref().is_some_and(|r| {
            r.status == machine::ConditionStatus::False
                && r.reason != "DeletionBlockedByDependantsReason"
        });
        failing || cr.last_status_change.elapsed() >= self.opts.probe_after
    }

    fn timing(&self, cr: &Cr) -> Timing {
        Timing {
            now: self.clock.now(),
            run_started_at: self.clock.at(Duration::ZERO),
            share_deadline: cr.share_deadline,
            budget_deadline: self.clock.at(self.opts.budget),
        }
    }

    /// Whether `step` escalates `key` on an in-use failure whose holder check could not read
    /// a state it needed, and reading it again is still worth the wait
    /// ([`holders::UnreadStates::waits`]).
    fn holder_check_incomplete(&self, key: &Key, step: &machine::Step) -> bool {
        let Some(cr) = self.crs.get(key) else {
            return false;
        };
        let probe = chrono::TimeDelta::from_std(FRESH_PROBE).unwrap_or(chrono::TimeDelta::MAX);
        // The unread states belong to the failure now on the CR (the check ran on its text;
        // `step` already says whether it is in use, so it is not classified again here).
        let failure = cr
            .obj
            .as_ref()
            .and_then(|o| tfobj::view(o).ready_condition())
            .map(|(_, _, message)| message);
        cr.unread.waits(&holders::Escalation {
            in_use: step
                .classification
                .as_ref()
                .is_some_and(Classification::is_in_use),
            reason: step.progress.escalation_reason.as_deref(),
            next_read_at: self.clock.now() + probe,
            force_point: machine::force_point(&self.timing(cr), &self.opts.tunables),
            checked_for: cr.holders_for.as_deref(),
            failure,
        })
    }

    /// Decide and execute for one CR until the machine waits or is done (bounded).
    async fn step(&mut self, key: &Key) {
        if !self.started {
            return;
        }
        if self.held_by_block(key) {
            // Never started on purpose: no timer may keep waking the loop for it.
            if let Some(cr) = self.crs.get_mut(key) {
                cr.wake_at = None;
            }
            return;
        }
        for _ in 0..8 {
            let Some(cr) = self.crs.get(key) else { return };
            if cr.outcome.is_some() {
                return;
            }
            if let Some((until, _)) = cr.op_backoff {
                if Instant::now() < until {
                    let Some(cr) = self.crs.get_mut(key) else {
                        return;
                    };
                    cr.wake_at = Some(until);
                    return;
                }
            }
            let obs = self.observation(cr);
            let holders_stale = cr.holders_for.as_deref() != self.in_use_message(cr).as_deref();
            if self.wants_probe(cr, &obs) {
                let _ = self.probe(key).await;
            } else if holders_stale && obs.deleting {
                // A new failure message: whether its holder goes with this uninstall is read
                // before it is classified (the probe does it too).
                self.refresh_holders(key).await;
            }
            let Some(mut step) = self.decide(key) else {
                return;
            };
            // Letting a CR go without a destroy, or blocking on it: decide on fresh evidence
            // (runner pod, Lease, source …), never on a probe older than a reconcile that just
            // began.
            let stale_env = self.crs.get(key).is_some_and(|c| {
                c.obj.as_ref().is_some_and(|o| tfobj::view(o).deleting())
                    && c.env
                        .as_ref()
                        .is_none_or(|(_, at)| at.elapsed() >= FRESH_PROBE)
            });
            let escalating = step.decision.releases_without_destroy()
                || matches!(step.decision, Decision::Block { .. });
            let unread = escalating && self.holder_check_incomplete(key, &step);
            if escalating && (stale_env || unread) {
                if !self.probe(key).await {
                    // No fresh evidence (the probe failed): never release on an old view;
                    // look again shortly.
                    let deadline = self.deadline;
                    if let Some(cr) = self.crs.get_mut(key) {
                        cr.wake_at = Some((Instant::now() + FRESH_PROBE).min(deadline));
                        cr.why = "about to release it, but the environment could not be read just now: retrying before deciding".to_owned();
                    }
                    return;
                }
                // A state the holder check needs still could not be read: what the failure
                // is may change with it, so look again shortly (a few times at most).
                if self.holder_check_incomplete(key, &step) {
                    let deadline = self.deadline;
                    if let Some(cr) = self.crs.get_mut(key) {
                        cr.unread.deferred();
                        cr.wake_at = Some((Instant::now() + FRESH_PROBE).min(deadline));
                        cr.why = format!(
                            "about to release it, but the state of Terraform {} could not be read just now: reading it again before deciding",
                            cr.unread.names().join(", ")
                        );
                        return;
                    }
                }
                match self.decide(key) {
                    Some(s) => step = s,
                    None => return,
                }
            }
            let again = self.execute(key, step).await;
            if !again {
                return;
            }
        }
        // Eight actions in a row without a wait: look again in a moment rather than never.
        if let Some(cr) = self.crs.get_mut(key) {
            if cr.outcome.is_none() && cr.wake_at.is_none() {
                cr.wake_at = Some(Instant::now() + TICK);
            }
        }
    }
}
