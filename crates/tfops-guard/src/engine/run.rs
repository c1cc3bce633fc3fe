//! `engine::run` — the guard's event loop. One watch per namespace (label selector
//! `tfops.dev/release=<release>`, or unselected and filtered by name for manifest-only CRs),
//! whose initial list doubles as discovery; per-CR timers from the machine's `Wait` decisions;
//! one budget deadline. Every decision comes from [`crate::machine::decide`]; this module
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
//! policy annotations.
//!
//! Evidence, not inference (see [`crate::liveness`]): the controller's liveness comes from its
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
use super::ops::{self, LedgerFacts, OpError};
use crate::classify::Classifier;
use crate::clock::Clock;
use crate::events::{self, Severity};
use crate::ledger;
use crate::liveness::{self, LeaseSample, LeaseTrack};
use crate::machine::{
    self, Decision, Environment as MEnv, Input, Observation, Outcome, Presence, RunnerPod,
    SourceState, Timing, Tunables,
};
use crate::order::{self, Key, Node};
use crate::policy::{self, Policy};
use crate::probe;
use crate::progress::{Phase, Progress, PROGRESS_ANNOTATION};
use crate::tfobj;

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
        }
    }

    fn ledger_ns(&self) -> &str {
        self.ledger_namespace.as_deref().unwrap_or(&self.namespace)
    }
}

/// How the run ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum RunStatus {
    /// Every CR reached destroyed / nothing-to-destroy / orphaned / force-removed.
    Finished,
    /// At least one CR is blocked by policy `block` (exit 2).
    Blocked,
    /// The budget ended with CRs unresolved (API errors, ledger unwritable) (exit 3).
    Unfinished,
}

/// Result for one CR.
#[derive(Debug, Clone, serde::Serialize)]
#[serde(rename_all = "camelCase")]
pub struct CrReport {
    pub namespace: String,
    pub name: String,
    pub module: String,
    pub outcome: Option<Outcome>,
    /// Kind of the last decision (`delete`, `retry`, `orphan` …).
    pub last_decision: String,
    /// The machine's explanation of the last decision.
    pub why: String,
    pub attempts: u32,
    /// Ledger Secret (namespace/name) written for this CR, if any.
    pub ledger: Option<String>,
    /// What to do next (blocked / unfinished CRs).
    pub next_step: Option<String>,
}

/// Result of a guard run.
#[derive(Debug, Clone, serde::Serialize)]
#[serde(rename_all = "camelCase")]
pub struct GuardReport {
    pub release: String,
    pub namespace: String,
    pub status: RunStatus,
    pub crs: Vec<CrReport>,
    #[serde(with = "tfops_api::duration::serde_go")]
    pub elapsed: Duration,
    #[serde(with = "tfops_api::duration::serde_go")]
    pub budget: Duration,
    /// Things the user should know about the budget and the evidence the guard had (e.g. a
    /// CR whose declared timeout is longer than the budget).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub notes: Vec<String>,
}

impl GuardReport {
    /// Process exit code: 0 finished, 2 blocked, 3 unfinished.
    pub fn exit_code(&self) -> u8 {
        match self.status {
            RunStatus::Finished => 0,
            RunStatus::Blocked => 2,
            RunStatus::Unfinished => 3,
        }
    }

    /// Human summary: one line per CR, then what to do next.
    pub fn render(&self) -> String {
        let mut out = format!(
            "tfops guard: release {} in {}: {} Terraform CR(s), {} of {} budget used\n",
            self.release,
            self.namespace,
            self.crs.len(),
            tfops_api::duration::format_duration(Duration::from_secs(self.elapsed.as_secs())),
            tfops_api::duration::format_duration(self.budget)
        );
        for c in &self.crs {
            let outcome = c.outcome.map_or("unfinished", Outcome::as_str);
            out.push_str(&format!(
                "  {}/{} (module {}): {} — {}",
                c.namespace, c.name, c.module, outcome, c.why
            ));
            if c.attempts > 0 {
                out.push_str(&format!(" [failed attempts: {}]", c.attempts));
            }
            if let Some(l) = &c.ledger {
                out.push_str(&format!(" [ledger: {l}]"));
            }
            out.push('\n');
        }
        for n in &self.notes {
            out.push_str(&format!("note: {n}\n"));
        }
        for c in &self.crs {
            if let Some(n) = &c.next_step {
                out.push_str(&format!(
                    "next step for {}/{}: {}\n",
                    c.namespace, c.name, n
                ));
            }
        }
        match self.status {
            RunStatus::Finished => {}
            RunStatus::Blocked => out.push_str(
                "the uninstall is blocked on purpose (policy on-failure=block); fix the cause above, then run the uninstall again\n",
            ),
            RunStatus::Unfinished => out.push_str(
                "the guard could not finish within its budget; nothing was released without a ledger entry; fix the cause above and run the uninstall again\n",
            ),
        }
        out
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
    env: Option<(probe::Environment, Instant)>,
    dependants_gone: BTreeSet<String>,
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
fn lock_holder(cr: &Cr, env: &probe::Environment) -> Presence {
    let Some(obj) = &cr.obj else {
        return Presence::Unknown;
    };
    let Some((_, _, message)) = tfobj::view(obj).ready_condition() else {
        return Presence::Unknown;
    };
    let Some(info) = crate::lock::lock_info(message) else {
        return Presence::Unknown;
    };
    let own_pod = format!("{}-tf-runner", cr.key.1);
    if info.holder_host() != Some(own_pod.as_str()) {
        return Presence::Unknown;
    }
    match (&env.runner_pod_presence, &env.runner_pod) {
        (probe::Presence::Missing, _) => Presence::Missing,
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
        let mut stack: Vec<&Key> = self.dependants.get(key).into_iter().flatten().collect();
        let mut seen = BTreeSet::new();
        while let Some(k) = stack.pop() {
            if !seen.insert(k) {
                continue;
            }
            if self
                .crs
                .get(k)
                .is_some_and(|c| c.outcome == Some(Outcome::Blocked))
            {
                return true;
            }
            stack.extend(self.dependants.get(k).into_iter().flatten());
        }
        false
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
        let shares = crate::plan::shares(&ord, self.opts.budget, self.opts.tunables.force_reserve);
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
                "{} may take up to {} to destroy (tfops.dev/timeout) but the guard budget is {}: a destroy still running when the budget ends is left to finish (never cut) and the run ends unfinished; for destroys that long give the guard a budget of at least {} (and Helm a --timeout a minute longer)",
                names.join(", "),
                tfops_api::duration::format_duration(max),
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
        let fp = fingerprint(&o);
        if fp != cr.status_fingerprint {
            cr.status_fingerprint = fp;
            cr.last_status_change = Instant::now();
        }
        let sfp = status_fingerprint(&o);
        if sfp != cr.controller_fingerprint {
            cr.controller_fingerprint = sfp;
            cr.status_changed_at = Some(self.clock.now());
        }
        cr.obj = Some(o);
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
            env.source = match (p.source.presence, p.source.has_artifact) {
                (probe::Presence::Present, true) => SourceState::Ready,
                (probe::Presence::Present, false) => SourceState::NoArtifact,
                (probe::Presence::Missing, _) => SourceState::Missing,
                (probe::Presence::Unknown, _) => SourceState::Unknown,
            };
            env.runner_service_account = match p.runner_service_account_presence {
                probe::Presence::Present => Presence::Present,
                probe::Presence::Missing => Presence::Missing,
                probe::Presence::Unknown => Presence::Unknown,
            };
            env.vars_from = if p.missing_vars_from.is_empty() {
                Presence::Present
            } else {
                Presence::Missing
            };
            env.namespace_terminating = p.namespace_terminating == Some(true);
            env.dependency_gone = p.depends_on_gone.first().map(ToString::to_string);
            env.runner = match (&p.runner_pod_presence, &p.runner_pod) {
                (probe::Presence::Unknown, _) => RunnerPod::Unknown,
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
            if self.wants_probe(cr, &obs) {
                let _ = self.probe(key).await;
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
            if escalating && stale_env {
                if !self.probe(key).await {
                    // No fresh evidence (the probe failed): never release on an old view;
                    // look again shortly.
                    if let Some(cr) = self.crs.get_mut(key) {
                        cr.wake_at = Some(Instant::now() + FRESH_PROBE);
                        cr.why = "about to release it, but the environment could not be read just now: retrying before deciding".to_owned();
                    }
                    return;
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

    /// Execute one step; returns whether to decide again right away.
    async fn execute(&mut self, key: &Key, step: machine::Step) -> bool {
        let machine::Step {
            decision,
            progress,
            why,
            ..
        } = step;
        let (ns, name) = key.clone();
        let api = ops::tf_api(&self.client, &ns);
        let now = self.clock.now();
        {
            let Some(cr) = self.crs.get_mut(key) else {
                return false;
            };
            cr.last_kind = decision.kind().to_owned();
            cr.why = why.clone();
            cr.wake_at = None;
        }
        let progress_json = progress.to_annotation_value();
        let result: Result<bool, OpError> = match &decision {
            Decision::Wait { until, .. } => {
                let wake = self.clock.started_at() + self.clock.offset_of(*until);
                let persist = {
                    let Some(cr) = self.crs.get_mut(key) else {
                        return false;
                    };
                    cr.wake_at = Some(wake);
                    cr.obj.is_some() && significant(&progress) != significant(&cr.persisted)
                };
                if persist {
                    let patch = ops::annotations_patch(
                        &[(PROGRESS_ANNOTATION, Some(&progress_json))],
                        None,
                    );
                    self.patch(key, &api, "recording progress on", &patch, &progress)
                        .await
                        .map(|_| false)
                } else {
                    self.set_progress(key, progress.clone(), false);
                    Ok(false)
                }
            }
            Decision::Done(outcome) => {
                let mut progress = progress.clone();
                let state_says_destroyed =
                    matches!(outcome, Outcome::Orphaned | Outcome::ForceRemoved)
                        && self.state_emptied_since_ledger(key).await;
                if state_says_destroyed {
                    // The destroy that was running when the guard escalated finished (its
                    // status may have been missed on the watch): the state says so.
                    progress.outcome = Some(Outcome::Destroyed);
                    if let Some(cr) = self.crs.get_mut(key) {
                        cr.why = "the controller finished a destroy that had started before the guard escalated: the tfstate holds no managed resource any more (the ledger entry is marked destroyed)".to_owned();
                    }
                }
                let outcome = &progress.outcome.unwrap_or(*outcome);
                if *outcome == Outcome::Destroyed && progress.escalation_reason.is_some() {
                    // The guard had given up on it (ledger written), but the destroy that was
                    // running then finished: the ledger entry must say so.
                    self.mark_ledger_destroyed(key).await;
                }
                let Some(cr) = self.crs.get_mut(key) else {
                    return false;
                };
                cr.outcome = Some(*outcome);
                cr.progress = progress.clone();
                if *outcome == Outcome::Blocked && cr.next_step.is_none() {
                    cr.next_step = Some(why.clone());
                }
                // A CR that still exists (held by foreign finalizers) keeps its record.
                if cr.obj.is_some() && significant(&progress) != significant(&cr.persisted) {
                    let patch = ops::annotations_patch(
                        &[(PROGRESS_ANNOTATION, Some(&progress_json))],
                        None,
                    );
                    let _ = self
                        .patch(key, &api, "recording progress on", &patch, &progress)
                        .await;
                }
                Ok(false)
            }
            Decision::Unsuspend => {
                let patch = ops::annotations_patch(
                    &[(PROGRESS_ANNOTATION, Some(&progress_json))],
                    Some(json!({"suspend": false})),
                );
                self.patch(key, &api, "un-suspending", &patch, &progress)
                    .await
            }
            Decision::Delete { requested_at } => {
                let patch = ops::annotations_patch(
                    &[
                        (tfops_api::names::REQUESTED_AT, Some(requested_at)),
                        (PROGRESS_ANNOTATION, Some(&progress_json)),
                    ],
                    None,
                );
                // DELETE first, then the reconcile request: the echo of `requested_at` must
                // come from a reconcile that saw the deletion. (Patching first lets the
                // controller answer it with a pre-deletion failure, e.g. DependencyNotReady,
                // which would then be counted as a failed destroy.)
                match self.delete(key, &api).await {
                    Ok(_) if self.crs.get(key).is_some_and(|c| c.obj.is_some()) => self
                        .patch(key, &api, "requesting reconcile of", &patch, &progress)
                        .await
                        .map(|_| true),
                    Ok(_) => {
                        self.set_progress(key, progress.clone(), false);
                        Ok(true)
                    }
                    Err(e) => Err(e),
                }
            }
            Decision::Retry { requested_at, .. } => {
                let patch = ops::annotations_patch(
                    &[
                        (tfops_api::names::REQUESTED_AT, Some(requested_at)),
                        (PROGRESS_ANNOTATION, Some(&progress_json)),
                    ],
                    None,
                );
                self.patch(
                    key,
                    &api,
                    "requesting a destroy retry of",
                    &patch,
                    &progress,
                )
                .await
            }
            Decision::ForceUnlock {
                lock_id,
                requested_at,
            } => {
                let patch = ops::annotations_patch(
                    &[
                        (tfops_api::names::REQUESTED_AT, Some(requested_at)),
                        (PROGRESS_ANNOTATION, Some(&progress_json)),
                    ],
                    Some(json!({"tfstate": {"forceUnlock": "yes", "lockIdentifier": lock_id}})),
                );
                self.patch(key, &api, "force-unlocking", &patch, &progress)
                    .await
            }
            Decision::DropStaleDependencyFinalizers { finalizers } => {
                let current = self.crs.get(key).and_then(|c| c.obj.clone());
                let drop: BTreeSet<String> = finalizers.iter().cloned().collect();
                match ops::strip_finalizers(&api, &ns, &name, current, |f| {
                    f.iter().filter(|x| !drop.contains(*x)).cloned().collect()
                })
                .await
                {
                    Ok(o) => {
                        self.absorb(key, o, &progress);
                        Ok(true)
                    }
                    Err(e) => Err(e),
                }
            }
            Decision::Orphan {
                requested_at,
                ledger,
                suspend,
            } => match self.write_ledger(key, ledger, now).await {
                Err(e) => Err(e),
                Ok(()) => {
                    let mut annotations = vec![(PROGRESS_ANNOTATION, Some(progress_json.as_str()))];
                    if let Some(r) = requested_at {
                        annotations.push((tfops_api::names::REQUESTED_AT, Some(r.as_str())));
                    }
                    let spec = if *suspend {
                        json!({"destroyResourcesOnDeletion": false, "suspend": true})
                    } else {
                        json!({"destroyResourcesOnDeletion": false})
                    };
                    let patch = ops::annotations_patch(&annotations, Some(spec));
                    self.patch(key, &api, "orphaning", &patch, &progress).await
                }
            },
            Decision::RestoreTfstate {
                tfstate,
                requested_at,
            } => {
                let patch = ops::annotations_patch(
                    &[
                        (tfops_api::names::REQUESTED_AT, Some(requested_at)),
                        (PROGRESS_ANNOTATION, Some(&progress_json)),
                    ],
                    Some(json!({ "tfstate": tfstate })),
                );
                self.patch(key, &api, "restoring spec.tfstate of", &patch, &progress)
                    .await
            }
            Decision::ForceRemove {
                ledger,
                dependency_finalizer,
            } => match self.write_ledger(key, ledger, now).await {
                Err(e) => Err(e),
                Ok(()) => {
                    self.force_remove(key, &api, dependency_finalizer, &progress, &progress_json)
                        .await
                }
            },
            Decision::Block { message } => {
                let Some(cr) = self.crs.get_mut(key) else {
                    return false;
                };
                cr.next_step = Some(message.clone());
                if cr.obj.is_some() {
                    let patch = ops::annotations_patch(
                        &[(PROGRESS_ANNOTATION, Some(&progress_json))],
                        None,
                    );
                    let _ = self
                        .patch(key, &api, "recording the block on", &patch, &progress)
                        .await;
                } else {
                    self.set_progress(key, progress.clone(), false);
                }
                Ok(true)
            }
        };
        // One Event per action decision (Waits and clean terminal outcomes are not events).
        let emit = !matches!(&decision, Decision::Wait { .. } | Decision::Done(_));
        match result {
            Ok(again) => {
                if emit {
                    let message = match &decision {
                        Decision::Block { message } => message.clone(),
                        _ => why.clone(),
                    };
                    self.emit(key, &decision, &message).await;
                }
                if let Some(cr) = self.crs.get_mut(key) {
                    cr.op_backoff = None;
                }
                again
            }
            Err(e) => {
                let Some(cr) = self.crs.get_mut(key) else {
                    return false;
                };
                let n = cr.op_backoff.map_or(0, |(_, n)| n) + 1;
                let delay = Duration::from_secs(1u64 << n.min(4)).min(Duration::from_secs(15));
                let until = Instant::now() + delay;
                cr.op_backoff = Some((until, n));
                cr.wake_at = Some(until.min(self.deadline));
                cr.next_step = Some(format!("{e}"));
                cr.why = format!("{} failed: {e}", decision.kind());
                tracing::warn!(cr = %name, error = %e, "guard operation failed; retrying");
                false
            }
        }
    }

    fn set_progress(&mut self, key: &Key, p: Progress, persisted: bool) {
        if let Some(cr) = self.crs.get_mut(key) {
            if persisted {
                cr.persisted = p.clone();
            }
            cr.progress = p;
        }
    }

    /// Take a server response as the newest view of the CR.
    fn absorb(&mut self, key: &Key, o: Option<DynamicObject>, p: &Progress) {
        if let Some(rv) = o.as_ref().and_then(rv_num) {
            let want = self.awaiting_echo.map_or(rv, |(w, _)| w.max(rv));
            self.awaiting_echo = Some((want, std::time::Instant::now()));
        }
        let Some(cr) = self.crs.get_mut(key) else {
            return;
        };
        match o {
            Some(o) => {
                let fp = fingerprint(&o);
                if fp != cr.status_fingerprint {
                    cr.status_fingerprint = fp;
                    cr.last_status_change = Instant::now();
                }
                let sfp = status_fingerprint(&o);
                if sfp != cr.controller_fingerprint {
                    cr.controller_fingerprint = sfp;
                    cr.status_changed_at = Some(self.clock.now());
                }
                cr.obj = Some(o);
            }
            None => cr.obj = None,
        }
        cr.progress = p.clone();
    }

    async fn patch(
        &mut self,
        key: &Key,
        api: &kube::Api<DynamicObject>,
        op: &'static str,
        patch: &serde_json::Value,
        p: &Progress,
    ) -> Result<bool, OpError> {
        let o = ops::merge_patch(api, op, &key.0, &key.1, patch).await?;
        let persisted = o.is_some();
        self.absorb(key, o, p);
        self.set_progress(key, p.clone(), persisted);
        Ok(true)
    }

    async fn delete(&mut self, key: &Key, api: &kube::Api<DynamicObject>) -> Result<bool, OpError> {
        let remaining = ops::delete(api, &key.0, &key.1).await?;
        let p = self
            .crs
            .get(key)
            .map(|c| c.progress.clone())
            .unwrap_or_default();
        // The object as the DELETE left it (deletionTimestamp set), or gone: decide again on it.
        self.absorb(key, remaining, &p);
        Ok(true)
    }

    async fn write_ledger(
        &mut self,
        key: &Key,
        rec: &machine::LedgerRecord,
        now: DateTime<Utc>,
    ) -> Result<(), OpError> {
        let Some(cr) = self.crs.get(key) else {
            return Ok(());
        };
        let Some(obj) = cr.obj.clone() else {
            // Gone already: nothing can be released any more; the machine will see it.
            return Ok(());
        };
        let facts = LedgerFacts {
            release: self.opts.release.clone(),
            reason: rec.reason.clone(),
            message: rec.message.clone(),
            class: rec.class.map(|c| c.as_str().to_owned()),
            attempts: rec.attempts,
            decision: rec.decision,
            first_failure_at: rec.first_failure_at,
            decided_at: now,
        };
        let record = ops::gather_record(&self.client, &obj, &facts).await?;
        let ledger_ns = self.opts.ledger_ns().to_owned();
        ledger::write(&self.client, &ledger_ns, &record).await?;
        let Some(cr) = self.crs.get_mut(key) else {
            return Ok(());
        };
        cr.ledger = Some(format!("{ledger_ns}/{}", record.secret_name()));
        Ok(())
    }

    /// The in-cluster state holds no managed resource now (the controller's destroy emptied
    /// it — possibly before the guard's ledger copy, when the destroy raced the escalation).
    /// A read that fails is retried a few times, then counts as "cannot tell".
    async fn state_emptied_since_ledger(&self, key: &Key) -> bool {
        let Some(cr) = self.crs.get(key) else {
            return false;
        };
        let Some(secret) = cr.tfstate_secret.clone() else {
            return false;
        };
        for _ in 0..4 {
            match ops::secret_data(&self.client, &key.0, &secret).await {
                Ok(Some(data)) => {
                    return data
                        .get("tfstate")
                        .and_then(|b| crate::tfstate::managed_resources(b))
                        == Some(0)
                }
                Ok(None) => return false,
                Err(e) => tracing::debug!(cr = %key.1, error = %e, "tfstate not read; retrying"),
            }
        }
        false
    }

    /// Record on this CR's ledger entry (if any) that the controller destroyed the resources.
    async fn mark_ledger_destroyed(&mut self, key: &Key) {
        let Some(cr) = self.crs.get(key) else { return };
        let name = ledger::secret_name(&key.1, &cr.uid);
        let ns = self.opts.ledger_ns().to_owned();
        let event = ledger::CleanupEvent {
            at: self.clock.now(),
            state: ledger::CleanupState::Destroyed,
            message: "tofu-controller finished the destroy that was already running when the guard escalated; nothing was left behind".to_owned(),
        };
        match ledger::record_cleanup(&self.client, &ns, &name, event).await {
            Ok(_) => {
                if let Some(cr) = self.crs.get_mut(key) {
                    cr.ledger = Some(format!("{ns}/{name}"));
                }
            }
            Err(e) => tracing::debug!(cr = %key.1, error = %e, "ledger entry not marked destroyed"),
        }
    }

    async fn force_remove(
        &mut self,
        key: &Key,
        api: &kube::Api<DynamicObject>,
        dependency_finalizer: &str,
        progress: &Progress,
        progress_json: &str,
    ) -> Result<bool, OpError> {
        let (deps, current) = {
            let Some(cr) = self.crs.get(key) else {
                return Ok(false);
            };
            (cr.depends_on.clone(), cr.obj.clone())
        };
        // 1. Record the phase first so a re-run finishes the job.
        if current.is_some() && progress.phase == Phase::ForceRemoving {
            let persisted = self
                .crs
                .get(key)
                .is_some_and(|c| c.persisted.phase == Phase::ForceRemoving);
            if !persisted {
                let patch =
                    ops::annotations_patch(&[(PROGRESS_ANNOTATION, Some(progress_json))], None);
                self.patch(key, api, "recording the force-remove of", &patch, progress)
                    .await?;
            }
        }
        // 2. Its dependant finalizer on each dependency.
        for (dns, dname) in deps {
            let dapi = ops::tf_api(&self.client, &dns);
            let held = self
                .crs
                .get(&(dns.clone(), dname.clone()))
                .and_then(|c| c.obj.clone());
            let fin = dependency_finalizer.to_owned();
            let o = ops::strip_finalizers(&dapi, &dns, &dname, held, |f| {
                f.iter().filter(|x| **x != fin).cloned().collect()
            })
            .await?;
            if let Some(dc) = self.crs.get_mut(&(dns, dname)) {
                if let Some(o) = o {
                    dc.obj = Some(o);
                }
            }
        }
        // 3. The controller's finalizers on this CR (test-guarded JSON patch).
        let current = self.crs.get(key).and_then(|c| c.obj.clone());
        let o =
            ops::strip_finalizers(api, &key.0, &key.1, current, ops::stripped_finalizers).await?;
        let deleting = o.as_ref().is_some_and(|o| tfobj::view(o).deleting());
        let exists = o.is_some();
        self.absorb(key, o, progress);
        // 4. Delete it if it was not being deleted.
        if exists && !deleting {
            let remaining = ops::delete(api, &key.0, &key.1).await?;
            self.absorb(key, remaining, progress);
        }
        Ok(true)
    }

    async fn emit(&mut self, key: &Key, decision: &Decision, message: &str) {
        let (reason, sev) = event_reason(decision);
        self.emit_reason(key, reason, sev, message).await;
    }

    async fn emit_reason(&mut self, key: &Key, reason: &str, sev: Severity, message: &str) {
        let Some(cr) = self.crs.get_mut(key) else {
            return;
        };
        cr.events_sent += 1;
        let seq = cr.events_sent;
        // Build against the last known object (uid survives the CR).
        let obj = cr.obj.clone().unwrap_or_else(|| {
            let mut o = DynamicObject::new(&key.1, &tfobj::api_resource()).within(&key.0);
            o.metadata.uid = Some(cr.uid.clone());
            o
        });
        let ev = events::build(&obj, reason, message, sev, &self.clock, seq);
        if let Err(e) = events::emit(&self.client, &ev).await {
            tracing::debug!(cr = %key.1, error = %e, "event not recorded");
        }
    }

    fn report(&self) -> GuardReport {
        let mut crs = Vec::new();
        let mut blocked = false;
        let mut unfinished = false;
        for c in self.crs.values() {
            let held = c.outcome.is_none() && self.held_by_block(&c.key);
            match c.outcome {
                Some(Outcome::Blocked) => blocked = true,
                None if held => blocked = true,
                None => unfinished = true,
                _ => {}
            }
            let next_step = if held {
                Some(
                    "not deleted: a dependant is blocked; it is handled once that is resolved"
                        .to_owned(),
                )
            } else if c.outcome.is_none() {
                Some(c.next_step.clone().unwrap_or_else(|| {
                    format!(
                        "still present after the budget ({}); inspect it with `helm tfops doctor`",
                        c.why
                    )
                }))
            } else if c.outcome == Some(Outcome::Blocked) {
                c.next_step.clone()
            } else {
                None
            };
            crs.push(CrReport {
                namespace: c.key.0.clone(),
                name: c.key.1.clone(),
                module: c.module.clone(),
                outcome: c.outcome,
                last_decision: c.last_kind.clone(),
                why: c.why.clone(),
                attempts: c.progress.attempts,
                ledger: c.ledger.clone(),
                next_step,
            });
        }
        let status = if unfinished {
            RunStatus::Unfinished
        } else if blocked {
            RunStatus::Blocked
        } else {
            RunStatus::Finished
        };
        GuardReport {
            release: self.opts.release.clone(),
            namespace: self.opts.namespace.clone(),
            status,
            crs,
            elapsed: self.clock.elapsed(),
            budget: self.opts.budget,
            notes: self.notes.clone(),
        }
    }
}
