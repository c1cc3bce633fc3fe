//! Closed-loop property test of `machine::decide`: the real state machine drives a small model
//! of one `Terraform` CR and of tofu-controller's deletion flow (reaction delay, destroy time,
//! N failures then success, permanent failure, missing source / runner SA, absent controller,
//! suspend) in virtual seconds, called the way the runtime calls it (on every change, or when
//! the last wait ends). The model echoes a request only at the end of a reconcile and shows a
//! running destroy only as `Apply=Unknown` plus a running runner pod, as v0.16.5 does; the
//! controller's liveness is known only when its Lease is readable (`evidence`).
//! Invariants: the guard stops deciding within its budget; nothing leaves without a destroy
//! unless its ledger entry was written first; no force-remove and no orphan patch while a
//! destroy runs; no force-remove on silence alone; a run may end unfinished only with a
//! destroy still running or a silent controller and no evidence; a healthy controller that
//! fits the deadline is never cut short; outcomes tell the truth.

use super::*;
use crate::core::classify::Classifier;
use crate::core::policy::{OnFailure, Policy, UninstallPolicy};
use crate::progress::Progress;
use chrono::TimeZone;
use proptest::prelude::*;

const BUDGET: i64 = 240;

fn t(s: i64) -> DateTime<Utc> {
    Utc.with_ymd_and_hms(2026, 11, 26, 12, 0, 0).unwrap() + chrono::Duration::seconds(s)
}

#[derive(Debug, Clone)]
struct Ctl {
    alive: bool,
    reaction: i64,
    destroy_secs: i64,
    /// Transient failures before success.
    fail_times: u32,
    /// Every attempt fails permanently.
    permanent: bool,
    source_ok: bool,
    sa_ok: bool,
    /// The controller's own requeue after a failure.
    requeue: i64,
    /// Its leader-election Lease is readable (liveness evidence either way).
    evidence: bool,
}

impl Ctl {
    fn controller_presence(&self) -> Presence {
        match (self.alive, self.evidence) {
            (_, false) => Presence::Unknown,
            (true, true) => Presence::Present,
            (false, true) => Presence::Missing,
        }
    }
}

#[derive(Debug, Clone)]
struct Cr {
    exists: bool,
    deleting: bool,
    finalizer: bool,
    suspend: bool,
    destroy_flag: bool,
    annotation: Option<String>,
    last_handled: Option<String>,
    ready: Option<ReadyCondition>,
    last_change: Option<DateTime<Utc>>,
    pending_at: Option<i64>,
    running: Option<(i64, Option<String>)>,
    destroyed: bool,
    gone_at: Option<i64>,
    /// Transient failures still to come.
    fails_left: u32,
}

#[derive(Debug, Default)]
struct Log {
    ledger_at: Option<i64>,
    force_removed_at: Option<i64>,
    violations: Vec<String>,
    /// A destroy was running when the run ended.
    running_at_end: bool,
}

impl Cr {
    fn trigger(&mut self, now: i64, ctl: &Ctl) {
        if self.running.is_none() {
            let at = now + ctl.reaction;
            self.pending_at = Some(self.pending_at.map_or(at, |p| p.min(at)));
        }
    }

    fn set_ready(&mut self, now: i64, status: ConditionStatus, reason: &str, message: &str) {
        let changed = self
            .ready
            .as_ref()
            .is_none_or(|r| r.status != status || r.reason != reason);
        let ltt = if changed {
            Some(t(now))
        } else {
            self.ready.as_ref().and_then(|r| r.last_transition_time)
        };
        self.ready = Some(ReadyCondition {
            status,
            reason: reason.to_string(),
            message: message.to_string(),
            last_transition_time: ltt,
        });
        if changed {
            self.last_change = Some(t(now));
        }
    }

    fn gone(&mut self, now: i64) {
        self.exists = false;
        self.gone_at = Some(now);
        self.running = None;
        self.pending_at = None;
    }

    /// One second of tofu-controller. Returns whether anything visible changed.
    fn controller_tick(&mut self, now: i64, ctl: &Ctl) -> bool {
        if !ctl.alive || !self.exists {
            return false;
        }
        if let Some((end, captured)) = self.running.clone() {
            if now < end {
                return false;
            }
            self.running = None;
            self.last_handled = captured;
            if ctl.permanent {
                self.set_ready(now, ConditionStatus::False, "TFExecApplyFailed", "Error: deleting RDS DB Instance: AccessDenied: not authorized to perform: rds:DeleteDBInstance");
                self.pending_at = Some(now + ctl.requeue);
            } else if self.fails_left > 0 {
                self.fails_left -= 1;
                self.set_ready(
                    now,
                    ConditionStatus::False,
                    "TFExecApplyFailed",
                    "Error: deleting security group: RequestLimitExceeded: Request limit exceeded.",
                );
                self.pending_at = Some(now + ctl.requeue);
            } else {
                self.destroyed = true;
                self.gone(now);
            }
            return true;
        }
        if self.deleting && self.pending_at.is_none() && self.ready_is_initial() {
            self.pending_at = Some(now + ctl.reaction);
        }
        match self.pending_at {
            Some(at) if at <= now => {}
            _ => return false,
        }
        self.pending_at = None;
        let captured = self.annotation.clone();
        if self.suspend || !self.deleting {
            self.last_handled = captured;
            return true;
        }
        if !ctl.source_ok {
            self.set_ready(
                now,
                ConditionStatus::False,
                "ArtifactFailed",
                "GitRepository.source.toolkit.fluxcd.io \"db\" not found",
            );
            self.last_handled = captured;
            self.pending_at = Some(now + ctl.requeue);
            return true;
        }
        if !ctl.sa_ok {
            // Runner pod cannot be created: nothing in status, the request is still echoed.
            self.last_handled = captured;
            self.pending_at = Some(now + ctl.requeue);
            return true;
        }
        if !self.destroy_flag {
            self.gone(now);
            return true;
        }
        self.set_ready(
            now,
            ConditionStatus::Unknown,
            "Progressing",
            "Deletion in progress",
        );
        self.running = Some((now + ctl.destroy_secs, captured));
        true
    }

    fn ready_is_initial(&self) -> bool {
        self.ready
            .as_ref()
            .is_some_and(|r| r.status == ConditionStatus::True)
    }

    fn observation(&self) -> Observation {
        if !self.exists {
            return Observation::gone("db", "ns");
        }
        Observation {
            name: "db".into(),
            namespace: "ns".into(),
            exists: true,
            deleting: self.deleting,
            finalizers: if self.finalizer {
                vec![TF_FINALIZER.to_string()]
            } else {
                vec![]
            },
            suspend: self.suspend,
            destroy_resources_on_deletion: self.destroy_flag,
            ready: self.ready.clone(),
            last_handled_reconcile_at: self.last_handled.clone(),
            last_status_change_at: self.last_change,
            apply: self.running.as_ref().map(|_| ReadyCondition {
                status: ConditionStatus::Unknown,
                reason: "Progressing".into(),
                message: "Applying".into(),
                last_transition_time: self.last_change,
            }),
            ..Observation::default()
        }
    }

    fn runner(&self) -> RunnerPod {
        if self.running.is_some() {
            RunnerPod::Running
        } else {
            RunnerPod::Absent
        }
    }
}

struct SimEnd {
    outcome: Option<Outcome>,
    blocked: bool,
    end: i64,
    run_start: i64,
}

/// `kill_at`: the guard dies at that second and a new run starts 5 s later from the progress
/// persisted on the CR (annotation round trip), with a fresh budget.
fn simulate(
    ctl: &Ctl,
    policy: &Policy,
    suspended: bool,
    finalizer: bool,
    kill_at: Option<i64>,
    log: &mut Log,
) -> SimEnd {
    static CLASSIFIER: std::sync::LazyLock<Classifier> =
        std::sync::LazyLock::new(Classifier::builtin);
    let tun = Tunables::default();
    let mut cr = Cr {
        exists: true,
        deleting: false,
        finalizer,
        suspend: suspended,
        destroy_flag: true,
        annotation: None,
        last_handled: None,
        ready: Some(ReadyCondition {
            status: ConditionStatus::True,
            reason: "TerraformAppliedSucceed".into(),
            message: "Applied successfully".into(),
            last_transition_time: Some(t(-3600)),
        }),
        last_change: Some(t(-3600)),
        pending_at: None,
        running: None,
        destroyed: false,
        gone_at: None,
        fails_left: ctl.fail_times,
    };
    let env = Environment {
        source: if ctl.source_ok {
            SourceState::Ready
        } else {
            SourceState::Missing
        },
        runner_service_account: if ctl.sa_ok {
            Presence::Present
        } else {
            Presence::Missing
        },
        vars_from: Presence::Present,
        namespace_terminating: false,
        lock_holder: Presence::Unknown,
        controller: ctl.controller_presence(),
        runner: RunnerPod::Unknown,
        dependency_gone: None,
        holders_in_destroy: Default::default(),
        referrers_in_destroy: Default::default(),
    };
    let mut progress = Progress::default();
    let mut changed = true;
    let mut wake: i64 = 0;
    let mut run_start: i64 = 0;
    for now in 0..=(2 * BUDGET + 60) {
        // Controller first (it may finish a destroy this second).
        let c = cr.controller_tick(now, ctl);
        changed |= c;
        if kill_at == Some(now) {
            // Killed: only what was persisted on the CR survives (if it still exists).
            let ann: std::collections::BTreeMap<String, String> = [(
                crate::progress::PROGRESS_ANNOTATION.to_string(),
                progress.to_annotation_value(),
            )]
            .into();
            if cr.exists {
                progress = match Progress::from_annotations(&ann) {
                    Ok(Some(p)) => p,
                    other => {
                        log.violations
                            .push(format!("progress did not round-trip: {other:?}"));
                        Progress::default()
                    }
                };
            }
            run_start = now + 5;
            changed = true;
        }
        if now >= run_start + BUDGET && now >= run_start {
            // The guard's run ends at its budget (the runtime stops deciding).
            if !cr.exists {
                // Gone in this very second: the runtime sees it on the watch.
                let obs = cr.observation();
                let step = decide(&Input {
                    observation: &obs,
                    environment: &env,
                    policy,
                    progress: &progress,
                    timing: Timing {
                        now: t(now),
                        run_started_at: t(run_start),
                        share_deadline: t(run_start + BUDGET),
                        budget_deadline: t(run_start + BUDGET),
                    },
                    tunables: &tun,
                    classifier: &CLASSIFIER,
                });
                if let Decision::Done(o) = step.decision {
                    return SimEnd {
                        outcome: Some(o),
                        blocked: false,
                        end: now,
                        run_start,
                    };
                }
            }
            log.running_at_end |= cr.running.is_some();
            return SimEnd {
                outcome: None,
                blocked: false,
                end: now,
                run_start,
            };
        }
        if now < run_start || (!changed && now < wake) {
            continue;
        }
        changed = false;
        let obs = cr.observation();
        let timing = Timing {
            now: t(now),
            run_started_at: t(run_start),
            share_deadline: t(run_start + BUDGET),
            budget_deadline: t(run_start + BUDGET),
        };
        let env = Environment {
            runner: cr.runner(),
            ..env.clone()
        };
        let step = decide(&Input {
            observation: &obs,
            environment: &env,
            policy,
            progress: &progress,
            timing,
            tunables: &tun,
            classifier: &CLASSIFIER,
        });
        let deadline = cr_deadline(
            step.progress.started_at.unwrap_or(t(now)),
            policy,
            &timing,
            &tun,
        );
        progress = step.progress;
        match step.decision {
            Decision::Done(o) => {
                return SimEnd {
                    outcome: Some(o),
                    blocked: o == Outcome::Blocked,
                    end: now,
                    run_start,
                }
            }
            Decision::Block { .. } => {
                return SimEnd {
                    outcome: None,
                    blocked: true,
                    end: now,
                    run_start,
                }
            }
            Decision::Wait { until, waiting_for } => {
                // Waiting on a running destroy at the budget's end: it may finish in the very
                // second the run ends.
                log.running_at_end = waiting_for == WaitFor::Destroy && cr.running.is_some();
                wake = (until - t(0)).num_seconds();
                if wake <= now {
                    log.violations.push(format!("wait until {wake} at {now}"));
                    wake = now + 1;
                }
            }
            Decision::Unsuspend => {
                cr.suspend = false;
                cr.trigger(now, ctl);
                changed = true;
            }
            Decision::Delete { requested_at } => {
                cr.annotation = Some(requested_at);
                cr.deleting = true;
                if !cr.finalizer {
                    cr.gone(now);
                } else {
                    cr.trigger(now, ctl);
                }
                changed = true;
            }
            Decision::Retry { requested_at, .. } | Decision::ForceUnlock { requested_at, .. } => {
                cr.annotation = Some(requested_at);
                cr.trigger(now, ctl);
                changed = true;
            }
            Decision::Orphan {
                requested_at,
                suspend,
                ..
            } => {
                log.ledger_at.get_or_insert(now);
                if cr.running.is_some() {
                    log.violations
                        .push(format!("orphan patch at {now} while the destroy runs"));
                }
                if suspend {
                    cr.suspend = true;
                }
                cr.destroy_flag = false;
                if let Some(r) = requested_at {
                    cr.annotation = Some(r);
                }
                cr.trigger(now, ctl);
                changed = true;
            }
            Decision::ForceRemove { .. } => {
                log.ledger_at.get_or_insert(now);
                if cr.running.is_some() {
                    log.violations.push(format!(
                        "force-remove at {now} while the destroy runs (deadline {deadline})"
                    ));
                }
                if !ctl.alive
                    && !ctl.evidence
                    && ctl.source_ok
                    && ctl.sa_ok
                    && progress.attempts == 0
                {
                    log.violations.push(format!(
                        "force-remove at {now} on silence alone (no evidence, no failure)"
                    ));
                }
                log.force_removed_at = Some(now);
                cr.gone(now);
                changed = true;
            }
            Decision::RestoreTfstate { requested_at, .. } => {
                cr.annotation = Some(requested_at);
                cr.trigger(now, ctl);
                changed = true;
            }
            Decision::DropStaleDependencyFinalizers { .. } => {
                log.violations
                    .push("no dependency finalizers in this model".into());
            }
        }
    }
    SimEnd {
        outcome: None,
        blocked: false,
        end: 2 * BUDGET + 60,
        run_start,
    }
}

prop_compose! {
    fn controller()(
        alive in prop::bool::weighted(0.85),
        reaction in 0i64..8,
        destroy_secs in 1i64..150,
        fail_times in 0u32..5,
        permanent in prop::bool::weighted(0.15),
        source_ok in prop::bool::weighted(0.9),
        sa_ok in prop::bool::weighted(0.9),
        requeue in 5i64..90,
        evidence in prop::bool::weighted(0.7),
    ) -> Ctl {
        Ctl { alive, reaction, destroy_secs, fail_times, permanent, source_ok, sa_ok, requeue, evidence }
    }
}

prop_compose! {
    fn policy()(
        retain in prop::bool::weighted(0.15),
        of in prop_oneof![Just(OnFailure::Orphan), Just(OnFailure::Force), Just(OnFailure::Block)],
        retries in 0u32..5,
        timeout in 20u64..700,
    ) -> Policy {
        Policy {
            uninstall: if retain { UninstallPolicy::Retain } else { UninstallPolicy::Destroy },
            on_failure: of,
            retries,
            timeout: Duration::from_secs(timeout),
            force_unlock: true,
        }
    }
}

proptest! {
    // 1000 closed-loop runs by default; `TFOPS_MACHINE_SIM_CASES=N` for a longer soak.
    #![proptest_config(ProptestConfig {
        cases: std::env::var("TFOPS_MACHINE_SIM_CASES").ok().and_then(|v| v.parse().ok()).unwrap_or(1000),
        ..ProptestConfig::default()
    })]

    #[test]
    fn closed_loop_invariants(
        ctl in controller(),
        p in policy(),
        suspended in prop::bool::weighted(0.2),
        finalizer in prop::bool::weighted(0.95),
        kill_at in prop::option::weighted(0.3, 0i64..200),
    ) {
        let mut log = Log::default();
        let r = simulate(&ctl, &p, suspended, finalizer, kill_at, &mut log);
        prop_assert!(log.violations.is_empty(), "{:?}", log.violations);
        // Finishes within the budget, one way or the other — or ends unfinished for a reason
        // it may not act on: a destroy still running, or a controller that stays silent
        // with no evidence either way.
        let silent_unknown = !ctl.evidence && !ctl.alive;
        prop_assert!(
            r.outcome.is_some() || r.blocked || log.running_at_end || silent_unknown,
            "no outcome by {} {:?}", r.end, log
        );
        prop_assert!(
            r.end <= r.run_start + BUDGET,
            "ended at {} > run start {} + budget {}", r.end, r.run_start, BUDGET
        );
        if r.blocked {
            prop_assert_eq!(p.on_failure, OnFailure::Block);
        }
        match r.outcome {
            Some(Outcome::Destroyed) => {
                prop_assert!(log.ledger_at.is_none() || p.uninstall == UninstallPolicy::Destroy);
            }
            Some(Outcome::Orphaned) | Some(Outcome::ForceRemoved) => {
                prop_assert!(log.ledger_at.is_some(), "released without a ledger entry");
            }
            Some(Outcome::NothingToDestroy) => prop_assert!(!finalizer),
            _ => {}
        }
        if let Some(fr) = log.force_removed_at {
            prop_assert!(log.ledger_at.is_some_and(|l| l <= fr));
            prop_assert_eq!(r.outcome, Some(Outcome::ForceRemoved));
        }
        // A healthy controller whose destroy fits the deadline is never cut short.
        let healthy = ctl.alive && ctl.source_ok && ctl.sa_ok && !ctl.permanent && ctl.fail_times == 0;
        let deadline = (p.timeout.as_secs() as i64).min(BUDGET - 10);
        if healthy && p.uninstall == UninstallPolicy::Destroy && finalizer
            && ctl.reaction * 2 + ctl.destroy_secs + 2 < deadline
        {
            prop_assert_eq!(r.outcome, Some(Outcome::Destroyed), "{:?}", log);
        }
        // Transient failures within the retry limit that fit the deadline end destroyed.
        let cycle = ctl.reaction + ctl.destroy_secs + 1;
        let backoffs: i64 = (1..=ctl.fail_times)
            .map(|n| backoff(&Tunables::default(), n).as_secs() as i64)
            .sum();
        if ctl.alive && ctl.source_ok && ctl.sa_ok && !ctl.permanent
            && ctl.fail_times <= p.retries
            && p.uninstall == UninstallPolicy::Destroy && finalizer
            && (ctl.fail_times as i64 + 1) * (cycle + ctl.reaction) + backoffs + 2 < deadline
        {
            prop_assert_eq!(r.outcome, Some(Outcome::Destroyed), "{:?}", log);
        }
    }
}

fn healthy() -> Ctl {
    Ctl {
        alive: true,
        reaction: 2,
        destroy_secs: 30,
        fail_times: 0,
        permanent: false,
        source_ok: true,
        sa_ok: true,
        requeue: 30,
        evidence: true,
    }
}

fn run(ctl: &Ctl, p: &Policy) -> (SimEnd, Log) {
    let mut log = Log::default();
    let r = simulate(ctl, p, false, true, None, &mut log);
    assert!(log.violations.is_empty(), "{:?}", log.violations);
    (r, log)
}

#[test]
fn sim_rows() {
    let p = Policy::default();
    // Clean destroy: deleted at 0, controller reacts at 2, destroy runs 30s.
    let (r, log) = run(&healthy(), &p);
    assert_eq!((r.outcome, r.end), (Some(Outcome::Destroyed), 32));
    assert!(log.ledger_at.is_none());
    // Two transient failures, then success.
    let (r, _) = run(
        &Ctl {
            fail_times: 2,
            ..healthy()
        },
        &p,
    );
    assert_eq!(r.outcome, Some(Outcome::Destroyed));
    // Permanent failure → orphan (ledger first) → the controller releases it.
    let (r, log) = run(
        &Ctl {
            permanent: true,
            ..healthy()
        },
        &p,
    );
    assert_eq!(r.outcome, Some(Outcome::Orphaned));
    assert_eq!(log.ledger_at, Some(32));
    // Retain: orphaned straight away, never destroyed.
    let retain = Policy {
        uninstall: UninstallPolicy::Retain,
        ..Policy::default()
    };
    let (r, log) = run(&healthy(), &retain);
    assert_eq!(r.outcome, Some(Outcome::Orphaned));
    assert_eq!(log.ledger_at, Some(0));
    // Controller known to be gone (its Lease is not renewed): force-remove at once.
    let (r, log) = run(
        &Ctl {
            alive: false,
            ..healthy()
        },
        &p,
    );
    assert_eq!(r.outcome, Some(Outcome::ForceRemoved));
    assert!(log.force_removed_at.is_some_and(|t| t <= 2), "{log:?}");
    // Controller silent and no evidence either way: never forced; the run ends unfinished
    // with the CR as it was (item 1: the old machine force-removed after 45 s of silence).
    let (r, log) = run(
        &Ctl {
            alive: false,
            evidence: false,
            ..healthy()
        },
        &p,
    );
    assert_eq!((r.outcome, r.blocked), (None, false));
    assert_eq!((log.ledger_at, log.force_removed_at), (None, None));
    // Missing source: orphaning impossible → force-remove once the failure shows.
    let (r, _) = run(
        &Ctl {
            source_ok: false,
            ..healthy()
        },
        &p,
    );
    assert_eq!(r.outcome, Some(Outcome::ForceRemoved));
    // Destroy longer than the budget: never cut (item 2) — no orphan patch, no finalizer
    // strip; the run ends unfinished while it runs.
    let (r, log) = run(
        &Ctl {
            destroy_secs: 1000,
            ..healthy()
        },
        &p,
    );
    assert_eq!(r.outcome, None);
    assert!(log.running_at_end);
    assert_eq!((log.ledger_at, log.force_removed_at), (None, None));
    // Block policy on a permanent failure.
    let block = Policy {
        on_failure: OnFailure::Block,
        ..Policy::default()
    };
    let (r, log) = run(
        &Ctl {
            permanent: true,
            ..healthy()
        },
        &block,
    );
    assert!(r.blocked && log.ledger_at.is_none());
}
