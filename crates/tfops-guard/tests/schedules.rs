//! Randomized fault schedules for the guard, on paused (virtual) tokio time, against the real
//! in-process API server and the tofu-controller simulation. Each schedule gets its own
//! namespace in one shared cluster: 1–3 CRs with random `dependsOn`, random
//! destroy behaviour (success, transient failures, permanent failure, nothing to destroy,
//! slow destroy, foreign lock, controller ignoring the CR), random environment damage (source,
//! runner ServiceAccount, varsFrom Secret deleted), random policies and budget, and random API
//! faults for the guard (5xx, 409, 429, dropped watches).
//!
//! Invariants checked on every schedule:
//! 1. the guard ends within its budget (virtual time);
//! 2. every CR that left without a destroy (per the simulation, not the guard's report) has a
//!    ledger entry whose Secret was created before the CR's controller finalizer went;
//! 3. no finalizer is stripped while the controller is making progress within budget: a CR
//!    whose destroy succeeds quickly, with everything it needs present, is destroyed, never
//!    orphaned or force-removed;
//! 4. a re-run after a finished run is idempotent: it finds nothing and writes nothing;
//! 5. no finalizer is stripped and no orphan patch is made while a destroy is in flight (the
//!    simulation's ground truth: destroys cut, `destroyResourcesOnDeletion` turned false
//!    during a destroy);
//! 6. no unnecessary escalation: a CR whose destroy succeeds and whose environment is intact
//!    is never orphaned or force-removed (under realistic timing it may end unfinished while
//!    its destroy still runs at the budget's end — never cut);
//! 7. no apply triggered by the guard (no normal apply by the simulation after the run began);
//! 8. the outcome recorded is what the controller did (destroyed ⇔ the simulation completed
//!    a destroy; orphaned / force-removed ⇒ it did not);
//! 9. no destroy of a dependency while a dependant exists in any namespace (some schedules add
//!    a dependant in another namespace, outside the release).
//!
//! Two timing models: `instant` (the simulation answers at once) and `realistic` (runner pods
//! start in 0–150 s, some past the 120 s runner-creation timeout; destroys take minutes;
//! budgets of 5–20 minutes).
//! Count: env `TFOPS_SCHEDULES` (default 500 instant), `TFOPS_REALISTIC_SCHEDULES` (default
//! 200); seed: env `TFOPS_SCHEDULE_SEED` (default fixed). `make soak` runs 10 000 of each in
//! release mode. Run with `--nocapture` to see counts, outcomes and time.

use crate::support;

use std::collections::BTreeMap;
use std::time::Duration;

use serde_json::{json, Value};
use support::{
    b64, finalizer_removed_at, ledger_created_at, relay_client, source, start_relay, TF,
    TF_FINALIZER,
};
use tfops_guard::clock::Clock;
use tfops_guard::engine::{run_guard, GuardOptions, GuardReport, RunStatus};
use tfops_testcluster::tofu::behavior::{Behavior, DestroyAttempt, FailStage, LockSpec};
use tfops_testcluster::tofu::messages::samples;
use tfops_testcluster::tofu::reconcile::Row;
use tfops_testcluster::tofu::{
    SimConfig, SimTiming, TofuSim, BEHAVIOR_ANNOTATION, CONTROLLER_USER,
};
use tfops_testcluster::{ClusterOptions, FaultRule, TestCluster, Verb};

const REV: &str = "latest@sha256:3b1f5e2d9c7a4b6e8f0a1c3d5e7f9b2a4c6e8d0f1a3b5c7d9e1f3a5b7c9d1e3f";
const RELEASE: &str = "shop";
/// Schedules run concurrently (one runtime, one cluster, one simulation).
const PARALLEL: usize = 8;

/// SplitMix64: small, seeded, reproducible.
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9e37_79b9_7f4a_7c15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
        z ^ (z >> 31)
    }
    fn below(&mut self, n: u64) -> u64 {
        self.next() % n.max(1)
    }
    fn chance(&mut self, percent: u64) -> bool {
        self.below(100) < percent
    }
    fn pick<'a, T>(&mut self, items: &'a [T]) -> &'a T {
        &items[self.below(items.len() as u64) as usize]
    }
}

#[derive(Debug, Clone)]
struct CrPlan {
    name: String,
    depends_on: Vec<String>,
    behavior: Behavior,
    on_failure: &'static str,
    retries: u32,
    timeout_secs: u64,
    source_deleted: bool,
    vars_deleted: bool,
    /// Destroy succeeds at once and quickly, nothing missing: must end destroyed.
    healthy: bool,
}

#[derive(Debug, Clone)]
struct Schedule {
    index: usize,
    ns: String,
    budget: Duration,
    runner_sa_deleted: bool,
    crs: Vec<CrPlan>,
    faults: Vec<FaultRule>,
    /// A `Terraform` CR in another namespace (not in the release) depending on this CR.
    foreign_dependant_of: Option<String>,
}

fn make_schedule(index: usize, seed: u64, realistic: bool) -> Schedule {
    let mut r = Rng(seed ^ (index as u64).wrapping_mul(0x2545_f491_4f6c_dd1d));
    let ns = if realistic {
        format!("r{index}")
    } else {
        format!("s{index}")
    };
    let budget = if realistic {
        Duration::from_secs(300 + r.below(901))
    } else {
        Duration::from_secs(60 + r.below(181))
    };
    let n = 1 + r.below(3) as usize;
    let runner_sa_deleted = r.chance(5);
    let mut crs: Vec<CrPlan> = Vec::new();
    for i in 0..n {
        let name = format!("m{i}");
        let mut depends_on = Vec::new();
        for j in 0..i {
            if r.chance(35) {
                depends_on.push(format!("m{j}"));
            }
        }
        let mut behavior = Behavior::default();
        let mut healthy = true;
        match r.below(10) {
            0..=4 => {}
            5 | 6 => {
                behavior.destroy = vec![DestroyAttempt::fail(
                    FailStage::Apply,
                    r.pick(&[
                        samples::AWS_THROTTLING,
                        samples::GCP_RATE_LIMIT,
                        samples::AZURE_THROTTLED,
                    ])
                    .to_string(),
                    1 + r.below(4) as u32,
                )];
                healthy = false;
            }
            7 => {
                behavior.destroy = vec![DestroyAttempt::fail_forever(
                    *r.pick(&[FailStage::Apply, FailStage::Plan]),
                    r.pick(&[
                        samples::AWS_ACCESS_DENIED,
                        samples::AWS_DELETION_PROTECTION,
                        samples::PLAN_INVALID_CONFIG,
                    ])
                    .to_string(),
                )];
                healthy = false;
            }
            8 => behavior.nothing_to_destroy = true,
            _ => {
                behavior.destroy_duration = Duration::from_secs(20 + r.below(300));
                // Slow but succeeding: under realistic timing that is the normal case.
                healthy = realistic;
            }
        }
        if realistic && behavior.destroy_duration.is_zero() {
            behavior.destroy_duration = Duration::from_secs(10 + r.below(120));
        }
        if r.chance(8) {
            behavior.lock = Some(LockSpec {
                id: format!("lock-{index}-{i}"),
                who: "runner@crashed-tf-runner".into(),
                operation: "OperationTypeApply".into(),
                release_after: r.chance(50).then(|| Duration::from_secs(5 + r.below(60))),
            });
            healthy = false;
        }
        if r.chance(5) {
            behavior.paused = true; // the controller ignores this CR (absent for it)
            healthy = false;
        }
        let source_deleted = r.chance(8);
        let vars_deleted = r.chance(5);
        if source_deleted || vars_deleted || runner_sa_deleted {
            healthy = false;
        }
        crs.push(CrPlan {
            name,
            depends_on,
            behavior,
            on_failure: ["orphan", "orphan", "force", "block"][r.below(4) as usize],
            retries: r.below(4) as u32,
            timeout_secs: 30 + r.below(600),
            source_deleted,
            vars_deleted,
            healthy,
        });
    }
    // Health is transitive over dependants (a dependency waits for them).
    for i in (0..crs.len()).rev() {
        let dependants_unhealthy = crs
            .iter()
            .any(|c| c.depends_on.contains(&crs[i].name) && !c.healthy);
        if dependants_unhealthy {
            crs[i].healthy = false;
        }
    }
    let foreign_dependant_of = r
        .chance(8)
        .then(|| crs[r.below(crs.len() as u64) as usize].name.clone());
    if let Some(d) = &foreign_dependant_of {
        for c in crs.iter_mut().filter(|c| &c.name == d) {
            c.healthy = false;
        }
        // What depends (transitively) on nothing but waits for it: its dependencies.
        let mut stuck = vec![d.clone()];
        while let Some(n) = stuck.pop() {
            let deps: Vec<String> = crs
                .iter()
                .find(|c| c.name == n)
                .map(|c| c.depends_on.clone())
                .unwrap_or_default();
            for dep in deps {
                if let Some(c) = crs.iter_mut().find(|c| c.name == dep) {
                    if c.healthy {
                        c.healthy = false;
                    }
                    stuck.push(dep);
                }
            }
        }
    }
    let mut faults = Vec::new();
    if r.chance(30) {
        faults.push(
            FaultRule::status(*r.pick(&[500, 503, 429]))
                .verb(*r.pick(&[
                    Verb::Patch,
                    Verb::Delete,
                    Verb::Create,
                    Verb::Get,
                    Verb::List,
                ]))
                .times(1 + r.below(3) as usize),
        );
    }
    if r.chance(20) {
        faults.push(
            FaultRule::status(409)
                .verb(Verb::Patch)
                .times(1 + r.below(2) as usize),
        );
    }
    if r.chance(25) {
        faults.push(
            FaultRule::drop_watch_after(1 + r.below(4) as usize).times(1 + r.below(3) as usize),
        );
    }
    Schedule {
        index,
        ns,
        budget,
        runner_sa_deleted,
        crs,
        faults,
        foreign_dependant_of,
    }
}

/// The state a successful apply leaves (one managed resource), base64 as Secret data.
fn applied_state(name: &str) -> String {
    let state = json!({"version": 4, "serial": 1, "resources": [
        {"mode": "managed", "type": "aws_s3_bucket", "name": "this",
         "instances": [{"schema_version": 0, "attributes": {"id": format!("{name}-bucket")}}]}]});
    tfops_testcluster::tofu::encoding::base64_encode(state.to_string().as_bytes())
}

/// A CR as the controller leaves it after a successful apply, plus its state and outputs.
fn seed(cluster: &TestCluster, s: &Schedule) {
    let st = cluster.store();
    if !s.runner_sa_deleted {
        st.create(json!({"apiVersion": "v1", "kind": "ServiceAccount",
            "metadata": {"name": "tf-runner", "namespace": s.ns}}))
            .unwrap();
    }
    for c in &s.crs {
        if !c.source_deleted {
            let mut src = source(&format!("{}-src", c.name));
            src["metadata"]["namespace"] = json!(s.ns);
            st.create(src).unwrap();
        }
        if !c.vars_deleted {
            st.create(json!({"apiVersion": "v1", "kind": "Secret",
                "metadata": {"name": format!("{}-vars", c.name), "namespace": s.ns},
                "data": {"region": "ZXUtd2VzdC0x"}}))
                .unwrap();
        }
        st.create(json!({"apiVersion": "v1", "kind": "Secret",
            "metadata": {"name": format!("tfstate-default-{}", c.name), "namespace": s.ns,
                "labels": {"app.kubernetes.io/managed-by": "terraform", "tfstate": "true"}},
            "data": {"tfstate": applied_state(&c.name)}}))
            .unwrap();
        st.create(json!({"apiVersion": "v1", "kind": "Secret",
            "metadata": {"name": format!("{}-outputs", c.name), "namespace": s.ns},
            "data": {"id": "YnVja2V0"}}))
            .unwrap();
        let mut spec = json!({
            "interval": "10m", "approvePlan": "auto", "path": "./modules/bucket",
            "sourceRef": {"kind": "OCIRepository", "name": format!("{}-src", c.name)},
            "destroyResourcesOnDeletion": true, "enableInventory": true,
            "writeOutputsToSecret": {"name": format!("{}-outputs", c.name)},
            "varsFrom": [{"kind": "Secret", "name": format!("{}-vars", c.name)}],
        });
        if !c.depends_on.is_empty() {
            spec["dependsOn"] = json!(c
                .depends_on
                .iter()
                .map(|d| json!({"name": d}))
                .collect::<Vec<_>>());
        }
        let finalizers: Vec<String> = std::iter::once(TF_FINALIZER.to_string())
            .chain(
                s.crs
                    .iter()
                    .filter(|d| d.depends_on.contains(&c.name))
                    .map(|d| format!("tf.dependency.of.{}", d.name)),
            )
            .chain(
                (s.foreign_dependant_of.as_deref() == Some(c.name.as_str()))
                    .then(|| "tf.dependency.of.ext".to_string()),
            )
            .collect();
        st.create(json!({
            "apiVersion": TF, "kind": "Terraform",
            "metadata": {
                "name": c.name, "namespace": s.ns, "finalizers": finalizers,
                "labels": {"tfops.dev/release": RELEASE, "tfops.dev/module": c.name},
                "annotations": {
                    "tfops.dev/uninstall-policy": "destroy",
                    "tfops.dev/on-failure": c.on_failure,
                    "tfops.dev/retries": c.retries.to_string(),
                    "tfops.dev/timeout": format!("{}s", c.timeout_secs),
                    "tfops.dev/guard": "hook",
                    // Seeded already applied: the simulation ignores it until the schedule
                    // starts (see `run_schedule`), so no apply cycle is simulated for nothing.
                    BEHAVIOR_ANNOTATION: serde_json::to_string(&Behavior { paused: true, ..Behavior::default() }).unwrap(),
                }
            },
            "spec": spec,
            "status": {
                "lastAppliedRevision": REV, "lastAttemptedRevision": REV, "observedGeneration": 1,
                "inventory": {"entries": [{"n": "this", "t": "aws_s3_bucket", "id": format!("{}-bucket", c.name)}]},
                "conditions": [{"type": "Ready", "status": "True", "reason": "TerraformOutputsWritten",
                    "message": format!("Outputs written: {REV}"), "lastTransitionTime": "2026-11-26T20:00:00Z"}]
            }
        }))
        .unwrap();
    }
}

/// The dependant outside the release (namespace `<ns>-x`), ignored by the simulation.
fn seed_foreign_dependant(cluster: &TestCluster, s: &Schedule) {
    let Some(d) = &s.foreign_dependant_of else {
        return;
    };
    let xns = format!("{}-x", s.ns);
    let _ = cluster
        .store()
        .create(json!({"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": xns}}));
    cluster
        .store()
        .create(json!({
            "apiVersion": TF, "kind": "Terraform",
            "metadata": {"name": "ext", "namespace": xns, "finalizers": [TF_FINALIZER],
                "annotations": {BEHAVIOR_ANNOTATION: serde_json::to_string(&Behavior { paused: true, ..Behavior::default() }).unwrap()}},
            "spec": {"interval": "10m", "path": "./", "sourceRef": {"kind": "OCIRepository", "name": "ext-src"},
                "dependsOn": [{"name": d, "namespace": s.ns}]}
        }))
        .unwrap();
}

fn ledger_names(cluster: &TestCluster, ns: &str) -> Vec<String> {
    cluster
        .store()
        .list_selected("v1", "Secret", ns, "tfops.dev/ledger")
        .unwrap()
        .iter()
        .filter_map(|s| {
            let e: Value = serde_json::from_slice(&b64(s["data"]["entry.json"].as_str()?)).ok()?;
            Some(e["name"].as_str()?.to_string())
        })
        .collect()
}

#[derive(Default)]
struct Tally {
    schedules: usize,
    crs: usize,
    outcomes: BTreeMap<String, usize>,
    statuses: BTreeMap<String, usize>,
    reruns_checked: usize,
    max_elapsed_over_budget: f64,
    /// Outcomes of the CRs whose destroy succeeds with everything intact.
    healthy: BTreeMap<String, usize>,
}

/// What every schedule shares: one guard client, one re-run client, one compiled classifier.
struct Shared {
    guard: kube::Client,
    rerun: kube::Client,
    template: GuardOptions,
}

const GUARD_USER: &str = "guard";
const RERUN_USER: &str = "guard-rerun";

async fn run_schedule(
    cluster: &TestCluster,
    shared: &Shared,
    sim: &TofuSim,
    s: Schedule,
    realistic: bool,
) -> Result<(GuardReport, bool), String> {
    let t0 = std::time::Instant::now();
    let trace = std::env::var_os("TFOPS_SCHEDULE_TRACE").is_some();
    let req0 = if trace {
        cluster.requests().all().len()
    } else {
        0
    };
    seed(cluster, &s);
    seed_foreign_dependant(cluster, &s);
    let guard_began = tokio::time::Instant::now();
    for c in &s.crs {
        sim.set_behavior(&s.ns, &c.name, c.behavior.clone());
    }
    let t_seed = t0.elapsed();
    // Faults hit only this schedule's guard requests (its user, in its namespace).
    let fault_ids: Vec<_> = s
        .faults
        .iter()
        .map(|f| {
            cluster
                .faults()
                .add(f.clone().user(GUARD_USER).namespace(&s.ns))
        })
        .collect();
    let client = shared.guard.clone();
    let start = tokio::time::Instant::now();
    let real_start = std::time::Instant::now();
    let mut opts = shared.template.clone();
    opts.namespace = s.ns.clone();
    opts.budget = s.budget;
    let report = run_guard(client, opts, Clock::start())
        .await
        .map_err(|e| format!("schedule {}: guard error {e}", s.index))?;
    let elapsed = start.elapsed();
    for id in fault_ids {
        cluster.faults().remove(id);
    }
    if trace {
        println!(
            "schedule {}: {} CRs, {:?}, virtual {:?} of {:?}, real {:?}, faults {}",
            s.index,
            s.crs.len(),
            report.status,
            elapsed,
            s.budget,
            real_start.elapsed(),
            s.faults.len()
        );
    }
    let ctx = || {
        let events: Vec<String> = cluster
            .store()
            .list("v1", "Event", &s.ns)
            .iter()
            .map(|e| {
                format!(
                    "  {} {} {}: {}",
                    e["lastTimestamp"]
                        .as_str()
                        .or(e["eventTime"].as_str())
                        .unwrap_or(""),
                    e["involvedObject"]["name"].as_str().unwrap_or(""),
                    e["reason"].as_str().unwrap_or(""),
                    e["message"].as_str().unwrap_or("")
                )
            })
            .collect();
        let stats: Vec<String> = s
            .crs
            .iter()
            .map(|c| format!("  {}: {:?}", c.name, sim.stats(&s.ns, &c.name)))
            .collect();
        format!(
            "schedule {} {:#?}\n{}\nguard events:\n{}\nsimulation:\n{}",
            s.index,
            s,
            report.render(),
            events.join("\n"),
            stats.join("\n")
        )
    };
    // 1. Within budget (a request in flight at the deadline may add a moment of virtual time).
    if elapsed > s.budget + Duration::from_secs(1) {
        return Err(format!(
            "ran {elapsed:?} > budget {:?}\n{}",
            s.budget,
            ctx()
        ));
    }
    let t_guard = t0.elapsed();
    let relevant: Vec<_> = cluster
        .store()
        .history()
        .into_iter()
        .filter(|h| h.namespace == s.ns)
        .collect();
    for c in &s.crs {
        let gone = cluster
            .store()
            .get(TF, "Terraform", &s.ns, &c.name)
            .is_none();
        let stats = sim.stats(&s.ns, &c.name);
        // The simulation's ground truth (a destroy that completed is counted before the
        // finalizer goes, so a reconcile still cleaning up its runner pod counts too).
        let destroyed = stats.destroys_completed > 0
            || matches!(
                stats.released_as.or(stats.last_row),
                Some(Row::Destroyed) | Some(Row::NothingToDestroy)
            );
        let outcome = report
            .crs
            .iter()
            .find(|r| r.name == c.name)
            .and_then(|r| r.outcome);
        // 2. Left without a destroy → ledger first.
        let left_without_destroy = gone && !destroyed;
        if left_without_destroy {
            let l = ledger_created_at(&relevant, &c.name).ok_or_else(|| {
                format!(
                    "{} left without destroy and without ledger ({stats:?})\n{}",
                    c.name,
                    ctx()
                )
            })?;
            let f = finalizer_removed_at(&relevant, &c.name)
                .ok_or_else(|| format!("{}: no finalizer removal in history\n{}", c.name, ctx()))?;
            if l >= f {
                return Err(format!(
                    "{}: ledger at {l} after finalizer removal at {f}\n{}",
                    c.name,
                    ctx()
                ));
            }
        }
        use tfops_guard::machine::Outcome::*;
        // 3. A healthy destroy is never cut short: it ends destroyed — or, under realistic
        //    timing, unfinished because it still ran when the run ended.
        let run_end = guard_began + elapsed;
        let finished_in_run = stats
            .destroy_runs
            .iter()
            .any(|(_, end)| end.is_some_and(|e| e <= run_end));
        if c.healthy && s.faults.is_empty() {
            let ok = match outcome {
                Some(Destroyed) | Some(NothingToDestroy) => true,
                None => realistic && !finished_in_run,
                _ => false,
            };
            if !ok {
                return Err(format!(
                    "healthy {} ended {outcome:?} (destroy finished within the run: {finished_in_run})\n{}",
                    c.name,
                    ctx()
                ));
            }
        }
        // 6. No unnecessary escalation.
        if c.healthy && matches!(outcome, Some(ForceRemoved) | Some(Orphaned)) {
            return Err(format!(
                "healthy {} was escalated ({outcome:?})\n{}",
                c.name,
                ctx()
            ));
        }
        // 5. Nothing cut, no orphan patch while a destroy ran.
        if stats.destroys_cut > 0 || stats.orphan_patch_during_destroy > 0 {
            return Err(format!(
                "{}: destroy cut {} time(s), orphan patch during a destroy {} time(s)\n{}",
                c.name,
                stats.destroys_cut,
                stats.orphan_patch_during_destroy,
                ctx()
            ));
        }
        // 7. No apply triggered by the guard.
        if stats.applies.iter().any(|t| *t >= guard_began) {
            return Err(format!(
                "{}: a normal apply ran during the guard's run\n{}",
                c.name,
                ctx()
            ));
        }
        // 8. The outcome is what the controller did.
        // (destroyed / nothing-to-destroy both say "no cloud resources left": the guard may
        // miss the empty-plan condition on a dropped watch, never the resources' fate.)
        let controller_destroyed = stats.destroys_completed > 0;
        let truthful = match outcome {
            Some(Destroyed) => destroyed,
            Some(Orphaned) | Some(ForceRemoved) => !controller_destroyed,
            Some(NothingToDestroy) => !controller_destroyed && destroyed,
            _ => true,
        };
        if !truthful {
            return Err(format!(
                "{}: outcome {outcome:?} but the controller completed {} destroy(s)\n{}",
                c.name,
                stats.destroys_completed,
                ctx()
            ));
        }
        // 9. A dependency used from another namespace is never destroyed nor released.
        if s.foreign_dependant_of.as_deref() == Some(c.name.as_str())
            && (gone || stats.destroy_attempts > 0 || !matches!(outcome, None | Some(Blocked)))
        {
            return Err(format!(
                "{} is used by a dependant in another namespace but ended {outcome:?} (gone: {gone}, destroy attempts {})\n{}",
                c.name,
                stats.destroy_attempts,
                ctx()
            ));
        }
    }
    let t_checks = t0.elapsed();
    if trace {
        let reqs = cluster.requests().all();
        let mine = &reqs[req0.min(reqs.len())..];
        let by = |u: &str| mine.iter().filter(|r| r.user == u).count();
        println!(
            "  phases: seed {t_seed:?} guard {t_guard:?} checks {t_checks:?}; requests: {} (guard {}, controller {})",
            mine.len(),
            by(GUARD_USER),
            by(CONTROLLER_USER)
        );
    }
    // 4. Re-run after a finished run: finds nothing, writes nothing.
    let mut rerun_checked = false;
    if report.status == RunStatus::Finished {
        let ledgers = ledger_names(cluster, &s.ns);
        let mut opts = shared.template.clone();
        opts.namespace = s.ns.clone();
        opts.budget = Duration::from_secs(30);
        let again = run_guard(shared.rerun.clone(), opts, Clock::start())
            .await
            .map_err(|e| format!("rerun: {e}"))?;
        if !again.crs.is_empty() || again.status != RunStatus::Finished {
            return Err(format!(
                "re-run not idempotent: {}\n{}",
                again.render(),
                ctx()
            ));
        }
        let writes = cluster
            .requests()
            .filter(|r| {
                r.user == RERUN_USER
                    && r.namespace == s.ns
                    && matches!(
                        r.verb,
                        Some(Verb::Patch | Verb::Delete | Verb::Create | Verb::Update)
                    )
            })
            .len();
        if writes != 0 || ledger_names(cluster, &s.ns) != ledgers {
            return Err(format!("re-run wrote {writes} times\n{}", ctx()));
        }
        rerun_checked = true;
    }
    cleanup(cluster, &s.ns);
    Ok((report, rerun_checked))
}

/// Remove everything the schedule left in its namespace (held CRs included), so the store
/// stays small however many schedules run.
fn cleanup(cluster: &TestCluster, ns: &str) {
    let kinds = [
        (TF, "Terraform"),
        ("v1", "Secret"),
        ("source.toolkit.fluxcd.io/v1", "OCIRepository"),
        ("v1", "ServiceAccount"),
        ("v1", "Event"),
        ("coordination.k8s.io/v1", "Lease"),
    ];
    for (av, kind) in kinds {
        for o in cluster.store().list(av, kind, ns) {
            if let Some(name) = o["metadata"]["name"].as_str() {
                let _ = cluster.store().force_remove(av, kind, ns, name);
            }
        }
    }
    let _ = cluster.store().force_remove("v1", "Namespace", "", ns);
    let xns = format!("{ns}-x");
    for o in cluster.store().list(TF, "Terraform", &xns) {
        if let Some(name) = o["metadata"]["name"].as_str() {
            let _ = cluster.store().force_remove(TF, "Terraform", &xns, name);
        }
    }
    let _ = cluster.store().force_remove("v1", "Namespace", "", &xns);
    for p in cluster.store().list("v1", "Pod", ns) {
        if let Some(name) = p["metadata"]["name"].as_str() {
            let _ = cluster.store().force_remove("v1", "Pod", ns, name);
        }
    }
}

// Two tests, not one: each phase has its own cluster and simulation, so the harness runs them
// on two threads at once.
#[tokio::test(start_paused = true)]
async fn instant_fault_schedules_keep_the_invariants() {
    let count: usize = env_or("TFOPS_SCHEDULES", 500);
    let seed: u64 = env_or("TFOPS_SCHEDULE_SEED", 0x5eed_7f0e);
    run_phase("instant", count, seed, false).await;
}

#[tokio::test(start_paused = true)]
async fn realistic_fault_schedules_keep_the_invariants() {
    let realistic: usize = env_or("TFOPS_REALISTIC_SCHEDULES", 200);
    let seed: u64 = env_or("TFOPS_SCHEDULE_SEED", 0x5eed_7f0e);
    run_phase("realistic", realistic, seed, true).await;
}

fn env_or<T: std::str::FromStr>(key: &str, default: T) -> T {
    std::env::var(key)
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(default)
}

async fn run_phase(label: &str, count: usize, seed: u64, realistic: bool) {
    if count == 0 {
        return;
    }
    let real = std::time::Instant::now();
    // A short history keeps the per-schedule history copy cheap; it still spans every schedule
    // of a batch (watch resumes and the ledger-order check only need recent changes).
    let cluster = TestCluster::start(ClusterOptions {
        history_limit: 5_000,
        ..ClusterOptions::default()
    })
    .await
    .unwrap();
    let relay = start_relay(cluster.addr()).await;
    let sim = TofuSim::start(
        relay_client(relay, CONTROLLER_USER),
        SimConfig {
            namespace: None,
            no_events: true,
            timing: if realistic {
                SimTiming::realistic(seed)
            } else {
                SimTiming::instant()
            },
            ..SimConfig::default()
        },
    );
    let shared = Shared {
        guard: relay_client(relay, GUARD_USER),
        rerun: relay_client(relay, RERUN_USER),
        template: GuardOptions::new(RELEASE, "unset", Duration::from_secs(60)),
    };
    let mut tally = Tally::default();
    let mut next = 0usize;
    while next < count {
        let parallel: usize = env_or("TFOPS_SCHEDULES_PARALLEL", PARALLEL);
        // `TFOPS_SCHEDULE_ONLY=N`: replay schedule N alone (reproducing a failure).
        let only: Option<usize> = std::env::var("TFOPS_SCHEDULE_ONLY")
            .ok()
            .and_then(|v| v.parse().ok());
        let end = (next + parallel).min(count);
        let batch: Vec<Schedule> = (next..end)
            .filter(|i| only.is_none_or(|o| o == *i))
            .map(|i| make_schedule(i, seed, realistic))
            .collect();
        if only.is_some() {
            next = end;
            if batch.is_empty() {
                continue;
            }
        }
        if only.is_none() {
            next += batch.len();
        }
        let budgets: Vec<Duration> = batch.iter().map(|s| s.budget).collect();
        let healthy: Vec<Vec<String>> = batch
            .iter()
            .map(|s| {
                s.crs
                    .iter()
                    .filter(|c| c.healthy && s.faults.is_empty())
                    .map(|c| c.name.clone())
                    .collect()
            })
            .collect();
        let results = futures::future::join_all(
            batch
                .into_iter()
                .map(|s| run_schedule(&cluster, &shared, &sim, s, realistic)),
        )
        .await;
        for ((res, budget), healthy) in results.into_iter().zip(budgets).zip(healthy) {
            let (report, rerun) = res.unwrap_or_else(|e| panic!("{label}: {e}"));
            for c in report.crs.iter().filter(|c| healthy.contains(&c.name)) {
                *tally
                    .healthy
                    .entry(
                        c.outcome
                            .map_or("unfinished".to_string(), |o| o.to_string()),
                    )
                    .or_default() += 1;
            }
            tally.schedules += 1;
            tally.crs += report.crs.len();
            tally.reruns_checked += usize::from(rerun);
            *tally
                .statuses
                .entry(format!("{:?}", report.status))
                .or_default() += 1;
            for c in &report.crs {
                *tally
                    .outcomes
                    .entry(
                        c.outcome
                            .map_or("unfinished".to_string(), |o| o.to_string()),
                    )
                    .or_default() += 1;
            }
            let over = report.elapsed.as_secs_f64() - budget.as_secs_f64();
            tally.max_elapsed_over_budget = tally.max_elapsed_over_budget.max(over);
        }
        // Between batches nothing of ours is running: keep the store's history and the
        // request log (both copied by the checks) from growing with the schedule count.
        cluster.store().compact_history();
        cluster.requests().clear();
    }
    sim.stop();
    println!(
        "{label} schedules: {} (seed {seed:#x}), CRs: {}, outcomes: {:?}, healthy CRs (destroy succeeds, nothing missing, no API faults): {:?}, runs: {:?}, idempotent re-runs checked: {}, unnecessary escalations: 0, max(elapsed - budget): {:.3}s, real time: {:.1?}",
        tally.schedules,
        tally.crs,
        tally.outcomes,
        tally.healthy,
        tally.statuses,
        tally.reruns_checked,
        tally.max_elapsed_over_budget,
        real.elapsed()
    );
    if std::env::var_os("TFOPS_SCHEDULE_ONLY").is_none() {
        assert_eq!(tally.schedules, count);
    }
}
