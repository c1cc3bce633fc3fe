//! `machine` — the per-CR uninstall state machine (pure): observation of one `Terraform` CR +
//! what the guard knows of its environment + policy + persisted progress + time →
//! [`Decision`] and the updated [`Progress`].
//!
//! The runtime calls [`decide`] whenever something about the CR changes (watch event) or the
//! `until` of the last [`Decision::Wait`] passes, executes the decision, and persists the
//! returned progress (annotation `tfops.dev/guard-progress`) in the same patch when it can.
//! The function is deterministic: same input, same output (request tokens derive from `now`).
//!
//! [`types`] holds the vocabulary (observation, environment, timing, tunables, decisions);
//! this file holds the decision logic.

use std::time::Duration;

use chrono::{DateTime, Utc};

use crate::core::classify::{
    Classification, FailureClass, FailureContext, HolderInDestroy, LockRelease,
};
use crate::core::policy::{OnFailure, Policy, UninstallPolicy};
use crate::progress::{Phase, Progress};
use tfops_api::names::{ANN_ON_FAILURE, ANN_TIMEOUT};

mod types;
pub use types::*;

/// `t + d`, saturating.
fn plus(t: DateTime<Utc>, d: Duration) -> DateTime<Utc> {
    chrono::TimeDelta::from_std(d)
        .ok()
        .and_then(|d| t.checked_add_signed(d))
        .unwrap_or(DateTime::<Utc>::MAX_UTC)
}

/// `t - d`, saturating.
fn minus(t: DateTime<Utc>, d: Duration) -> DateTime<Utc> {
    chrono::TimeDelta::from_std(d)
        .ok()
        .and_then(|d| t.checked_sub_signed(d))
        .unwrap_or(DateTime::<Utc>::MIN_UTC)
}

/// The retry backoff before retry number `attempt` (1-based): `base * 2^(attempt-1)`, capped.
pub fn backoff(tunables: &Tunables, attempt: u32) -> Duration {
    let exp = attempt.saturating_sub(1).min(20);
    tunables
        .backoff_base
        .saturating_mul(1u32 << exp)
        .min(tunables.backoff_max)
}

/// The last moment the guard may still strip finalizers within the budget.
pub fn force_point(timing: &Timing, tunables: &Tunables) -> DateTime<Utc> {
    minus(timing.budget_deadline, tunables.force_reserve)
}

/// When this CR escalates to its on-failure action at the latest: the earliest of its share
/// of the budget, `started_at + policy.timeout`, and the force point.
pub fn cr_deadline(
    started_at: DateTime<Utc>,
    policy: &Policy,
    timing: &Timing,
    tunables: &Tunables,
) -> DateTime<Utc> {
    timing
        .share_deadline
        .min(plus(started_at, policy.timeout))
        .min(force_point(timing, tunables))
}

/// Ready reasons that mean "in progress", not failure.
fn is_failure(ready: &ReadyCondition) -> bool {
    ready.status == ConditionStatus::False
        && ready.reason != "DeletionBlockedByDependantsReason"
        && ready.reason != "Progressing"
}

/// `t` truncated to whole seconds (how the API server stores condition times).
fn whole_seconds(t: DateTime<Utc>) -> i64 {
    t.timestamp()
}

/// Why the guard escalates to the on-failure action.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Escalation {
    RetainPolicy,
    DestroyDisabled,
    PermanentFailure,
    MissingDependency,
    RetriesExhausted,
    Timeout,
    ControllerAbsent,
    OrphanStalled,
    BudgetExhausted,
}

impl Escalation {
    fn code(self) -> &'static str {
        match self {
            Escalation::RetainPolicy => "retain-policy",
            Escalation::DestroyDisabled => "destroy-disabled",
            Escalation::PermanentFailure => "permanent-failure",
            Escalation::MissingDependency => "missing-dependency",
            Escalation::RetriesExhausted => "retries-exhausted",
            Escalation::Timeout => "timeout",
            Escalation::ControllerAbsent => "controller-absent",
            Escalation::OrphanStalled => "orphan-stalled",
            Escalation::BudgetExhausted => "budget-exhausted",
        }
    }
}

/// Working state of one `decide` call.
struct Ctx<'a> {
    input: &'a Input<'a>,
    obs: &'a Observation,
    env: &'a Environment,
    policy: &'a Policy,
    tun: &'a Tunables,
    now: DateTime<Utc>,
    /// The progress being updated (returned in the [`Step`]).
    progress: Progress,
    classification: Option<Classification>,
}

/// Decide what to do next with one CR. Pure and deterministic.
pub fn decide(input: &Input<'_>) -> Step {
    let mut cx = Ctx {
        input,
        obs: input.observation,
        env: input.environment,
        policy: input.policy,
        tun: input.tunables,
        now: input.timing.now,
        progress: input.progress.clone(),
        classification: None,
    };
    let (decision, why) = cx.run();
    Step {
        decision,
        progress: cx.progress,
        why,
        classification: cx.classification,
    }
}

impl Ctx<'_> {
    fn run(&mut self) -> (Decision, String) {
        let o = self.obs;
        if o.plan_nothing_to_destroy {
            self.progress.nothing_to_destroy = true;
        }
        self.note_destroy_applied();
        if self.destroy_in_flight() {
            self.progress.last_busy_at = Some(self.now);
        }
        // Gone, or held only by foreign finalizers after deletion: tofu-controller is done.
        if !o.exists || (o.deleting && o.controller_finalizers().next().is_none()) {
            let outcome = self.outcome_when_released();
            return self.done(outcome);
        }
        if self.progress.phase == Phase::Done {
            // The CR is back or still held by the controller: look again.
            self.progress.phase = if o.deleting {
                Phase::Deleting
            } else {
                Phase::Pending
            };
            self.progress.outcome = None;
        }
        let mut fresh_after_block = false;
        if self.progress.phase == Phase::Blocked {
            let this_run = self
                .progress
                .blocked_at
                .is_some_and(|b| b >= self.input.timing.run_started_at);
            if this_run {
                return (
                    Decision::Done(Outcome::Blocked),
                    "blocked earlier in this guard run".to_string(),
                );
            }
            // A new run after a block: the user fixed something (or changed the policy).
            // Fresh failure accounting and a fresh timeout, then carry on.
            self.progress = Progress {
                phase: if o.deleting {
                    Phase::Deleting
                } else {
                    Phase::Pending
                },
                started_at: o.deleting.then_some(self.now),
                nothing_to_destroy: self.progress.nothing_to_destroy,
                last_requested_at: self.progress.last_requested_at.clone(),
                last_requested_sent_at: self.progress.last_requested_sent_at,
                tfstate_before_unlock: self.progress.tfstate_before_unlock.clone(),
                ..Progress::default()
            };
            fresh_after_block = o.deleting;
        }
        if self.progress.phase == Phase::ForceRemoving {
            // The strip did not finish (guard killed, API error): do it again (idempotent).
            let reason = self
                .progress
                .escalation_reason
                .clone()
                .unwrap_or_else(|| Escalation::BudgetExhausted.code().to_string());
            return self.force_remove_with_code(&reason, "finishing the force-remove");
        }
        // A force-unlock left `spec.tfstate` changed: put it back once the request was handled.
        if let Some(step) = self.restore_tfstate_if_due() {
            return step;
        }
        // Budget end: nothing may wait any longer.
        if self.now >= force_point(&self.input.timing, self.tun) {
            return self.final_escalation(Escalation::BudgetExhausted);
        }
        if fresh_after_block {
            return self.retry_now(0, 0, "new guard run after a block: retrying the destroy");
        }
        if o.deleting {
            self.deleting()
        } else {
            self.not_deleting()
        }
    }

    // ----- terminal ---------------------------------------------------------------------

    /// `Apply` as a comparable fingerprint.
    fn apply_fingerprint(&self) -> String {
        match &self.obs.apply {
            None => "none".to_string(),
            Some(a) => format!(
                "{:?}|{}|{}",
                a.status,
                a.last_transition_time.map_or(0, |t| t.timestamp()),
                a.message
            ),
        }
    }

    /// Remember the `Apply` condition as the deletion starts (before the guard's DELETE, or at
    /// its first sight of a deleted CR).
    fn note_apply_baseline(&mut self) {
        if self.progress.apply_baseline.is_none() {
            self.progress.apply_baseline = Some(self.apply_fingerprint());
        }
    }

    /// Remember that the controller reported a successful apply after the deletion started
    /// (an `Apply=True` that differs from the baseline): the destroy ran to its end, whatever
    /// was asked afterwards.
    fn note_destroy_applied(&mut self) {
        if self.progress.destroy_applied_at.is_some() || !self.obs.deleting {
            return;
        }
        let Some(baseline) = self.progress.apply_baseline.clone() else {
            return;
        };
        let applied = self
            .obs
            .apply
            .as_ref()
            .is_some_and(|a| a.status == ConditionStatus::True);
        if applied && self.apply_fingerprint() != baseline {
            self.progress.destroy_applied_at = Some(self.now);
        }
    }

    fn outcome_when_released(&self) -> Outcome {
        if self.progress.destroy_applied_at.is_some() {
            // What the controller did, not what the guard last asked for.
            return Outcome::Destroyed;
        }
        if self.progress.nothing_to_destroy && self.progress.phase != Phase::ForceRemoving {
            // The controller's destroy plan was empty (`Plan=False` "No objects need to be
            // destroyed" is written only by a finalize with destroy on), or it never took the
            // CR over: nothing was left behind, whatever the guard had asked.
            return Outcome::NothingToDestroy;
        }
        match self.progress.phase {
            Phase::Orphaning => Outcome::Orphaned,
            Phase::ForceRemoving => Outcome::ForceRemoved,
            Phase::Done => self.progress.outcome.unwrap_or(Outcome::Destroyed),
            _ if self.progress.nothing_to_destroy => Outcome::NothingToDestroy,
            _ => Outcome::Destroyed,
        }
    }

    fn done(&mut self, outcome: Outcome) -> (Decision, String) {
        let orphan_asked = matches!(self.progress.phase, Phase::Orphaning | Phase::ForceRemoving);
        self.progress.phase = Phase::Done;
        self.progress.outcome = Some(outcome);
        self.progress.escalates_at = None;
        let why = match outcome {
            Outcome::Destroyed if orphan_asked => {
                "the controller finished the destroy it had started before the guard gave up on it; the resources are destroyed (the ledger entry is marked destroyed)"
            }
            Outcome::Destroyed => "the controller destroyed the resources and released the CR",
            Outcome::NothingToDestroy => {
                "the controller released the CR; there was nothing to destroy"
            }
            Outcome::Orphaned => {
                "the controller released the CR without destroying (ledger entry written)"
            }
            Outcome::ForceRemoved => "finalizers stripped after the ledger entry was written",
            Outcome::Blocked => "blocked",
        };
        (Decision::Done(outcome), why.to_string())
    }

    // ----- evidence ---------------------------------------------------------------------

    fn token(&self) -> String {
        request_token(self.now)
    }

    fn record_request(&mut self, token: &str) {
        self.progress.last_requested_at = Some(token.to_string());
        self.progress.last_requested_sent_at = Some(self.now);
    }

    fn started_at(&self) -> DateTime<Utc> {
        self.progress.started_at.unwrap_or(self.now)
    }

    /// When this CR escalates at the latest. A CR that starts late (its dependants took their
    /// share and more) still gets the controller's patience to pick it up — a runner pod can
    /// take minutes — before a timeout can escalate it (never past the force point).
    fn deadline(&self) -> DateTime<Utc> {
        let started = self.started_at();
        cr_deadline(started, self.policy, &self.input.timing, self.tun)
            .max(plus(started, self.tun.controller_patience).min(self.force_point()))
    }

    fn force_point(&self) -> DateTime<Utc> {
        force_point(&self.input.timing, self.tun)
    }

    /// Seconds of the guard budget left (for every explanation).
    fn budget_left(&self) -> String {
        let left = (self.input.timing.budget_deadline - self.now)
            .to_std()
            .unwrap_or(Duration::ZERO);
        format!(
            "{} of the guard budget left",
            tfops_api::duration::format_duration(Duration::from_secs(left.as_secs()))
        )
    }

    fn wait(
        &mut self,
        until: DateTime<Utc>,
        waiting_for: WaitFor,
        why: String,
    ) -> (Decision, String) {
        let cap = plus(self.now, self.tun.max_wait).min(self.force_point());
        let mut until = until.min(cap);
        if until <= self.now {
            // Never a zero wait: re-consult one second later at the earliest.
            until = plus(self.now, Duration::from_secs(1));
        }
        let why = format!("{why} ({})", self.budget_left());
        (Decision::Wait { until, waiting_for }, why)
    }

    /// Dependants not proven gone.
    fn live_dependants(&self) -> Vec<String> {
        let mut v = self.obs.dependants_present.clone();
        v.sort();
        v.dedup();
        v
    }

    fn stale_dependency_finalizers(&self) -> Vec<String> {
        self.obs
            .finalizers
            .iter()
            .filter(|f| {
                f.strip_prefix(TF_DEPENDENCY_OF_PREFIX)
                    .is_some_and(|x| !self.obs.dependants_present.iter().any(|d| d == x))
            })
            .cloned()
            .collect()
    }

    /// Did the controller echo our last request (end of a reconcile that saw it)?
    fn echoed(&self) -> bool {
        match (
            &self.progress.last_requested_at,
            &self.obs.last_handled_reconcile_at,
        ) {
            (Some(ours), Some(seen)) => ours == seen,
            _ => false,
        }
    }

    /// A reconcile that reached the destroy is running now: the runner pod is starting or
    /// running, or `Apply` is `Unknown`, and no failure ended it; and the controller is not
    /// known to be gone. tofu-controller reads `destroyResourcesOnDeletion` once at the start
    /// of `finalize` and its Apply RPC blocks until terraform exits, so nothing the guard
    /// patches can stop it: cutting it (finalizer strip) loses the state write.
    fn destroy_in_flight(&self) -> bool {
        let o = self.obs;
        if !o.deleting || self.env.controller == Presence::Missing {
            return false;
        }
        if o.ready.as_ref().is_some_and(|r| self.current_failure(r)) {
            return false;
        }
        let applying = o
            .apply
            .as_ref()
            .is_some_and(|a| a.status == ConditionStatus::Unknown);
        let runner_busy = match self.env.runner {
            RunnerPod::Running => true,
            RunnerPod::Pending { since } => self.now < plus(since, self.tun.controller_patience),
            _ => false,
        };
        applying || runner_busy
    }

    /// A Ready=False that ended the current deletion reconcile — not one left over from
    /// before the deletion (e.g. `DependencyNotReady`, which a deletion never checks, shown
    /// until the next status patch after the runner is up).
    fn current_failure(&self, r: &ReadyCondition) -> bool {
        if !is_failure(r) || r.reason == "DependencyNotReady" {
            return false;
        }
        match (r.last_transition_time, self.obs.deletion_timestamp) {
            (Some(t), Some(d)) => whole_seconds(t) >= whole_seconds(d),
            _ => true,
        }
    }

    /// Any sign of the controller working on our last request: the echo, a status change the
    /// guard saw after sending it, or a busy runner pod. Condition times are whole seconds on
    /// the controller's clock, so a same-second transition counts (it only buys patience).
    fn progress_since_request(&self) -> bool {
        if self.echoed() || self.destroy_in_flight() {
            return true;
        }
        let Some(sent) = self.progress.last_requested_sent_at else {
            return true; // nothing asked yet: nothing to hold against it
        };
        if let Some(changed) = self.obs.status_changed_at {
            return changed > sent;
        }
        self.obs
            .last_status_change_at
            .is_some_and(|changed| whole_seconds(changed) >= whole_seconds(sent))
    }

    /// Our last request went unanswered for longer than the patience (no evidence of any
    /// work on it). Silence is never a reason to force-remove.
    fn silent(&self) -> bool {
        !self.progress_since_request()
            && self
                .progress
                .last_requested_sent_at
                .is_some_and(|s| self.now >= plus(s, self.tun.controller_patience))
    }

    /// When silence would start counting, if nothing has answered yet.
    fn silence_at(&self) -> Option<DateTime<Utc>> {
        if self.progress_since_request() {
            return None;
        }
        self.progress
            .last_requested_sent_at
            .map(|s| plus(s, self.tun.controller_patience))
    }

    /// Positive evidence that tofu-controller is not running.
    fn controller_absent(&self) -> bool {
        self.env.controller == Presence::Missing
    }

    /// Evidence that the controller cannot complete an orphan release (or a destroy) now.
    fn orphan_blocker(&self) -> Option<String> {
        match self.env.source {
            SourceState::Missing => return Some("its Flux source is missing".to_string()),
            SourceState::NoArtifact => return Some("its Flux source has no artifact".to_string()),
            _ => {}
        }
        if self.env.runner_service_account == Presence::Missing {
            return Some("the runner ServiceAccount is missing".to_string());
        }
        if self.env.namespace_terminating {
            return Some("the namespace is terminating (no runner pod can start)".to_string());
        }
        if let Some(d) = &self.env.dependency_gone {
            return Some(format!(
                "its dependsOn target {d} is gone (the controller's finalize fails on it forever)"
            ));
        }
        None
    }

    /// A blocker that stops the destroy itself (beyond the orphan blockers).
    fn destroy_blocker(&self) -> Option<(String, bool)> {
        // (description, immediate?) — a source without artifact gets a grace period.
        match self.env.source {
            SourceState::Missing => return Some(("its Flux source is missing".to_string(), true)),
            SourceState::NoArtifact => {
                return Some(("its Flux source has no artifact".to_string(), false))
            }
            _ => {}
        }
        if self.env.runner_service_account == Presence::Missing {
            return Some(("the runner ServiceAccount is missing".to_string(), true));
        }
        if self.env.vars_from == Presence::Missing {
            return Some(("a varsFrom Secret/ConfigMap is missing".to_string(), true));
        }
        if self.env.namespace_terminating {
            return Some((
                "the namespace is terminating (no runner pod can start)".to_string(),
                true,
            ));
        }
        None
    }

    /// Evidence that justifies stripping finalizers (besides the policy asking for it): the
    /// controller is gone, or it cannot release the CR, or it reported failures. Never
    /// silence alone, never while a destroy runs.
    fn force_evidence(&self) -> Option<String> {
        if self.controller_absent() {
            return Some(
                "tofu-controller is not running (its leader-election Lease is not renewed)"
                    .to_string(),
            );
        }
        if let Some(b) = self.orphan_blocker() {
            return Some(b);
        }
        if self.progress.attempts > 0 || self.progress.last_failure_class.is_some() {
            return Some(format!(
                "the controller reported failures ({})",
                self.failure_text()
            ));
        }
        None
    }

    fn failure_text(&self) -> String {
        match (
            &self.progress.last_failure_reason,
            &self.progress.last_failure_message,
        ) {
            (Some(r), Some(m)) => {
                let class = self
                    .progress
                    .last_failure_class
                    .map(|c| format!("{c} "))
                    .unwrap_or_default();
                format!("last failure ({class}{r}): {m}")
            }
            (Some(r), None) => format!("last failure: {r}"),
            _ => "no destroy failure recorded".to_string(),
        }
    }

    fn ledger(&self, decision: LedgerDecision, code: &str, detail: &str) -> LedgerRecord {
        let mut message = detail.to_string();
        if self.progress.last_failure_reason.is_some() {
            message.push_str("; ");
            message.push_str(&self.failure_text());
        }
        LedgerRecord {
            decision,
            reason: code.to_string(),
            message,
            class: self.progress.last_failure_class,
            attempts: self.progress.attempts,
            first_failure_at: self.progress.first_failure_at,
        }
    }

    // ----- decisions --------------------------------------------------------------------

    /// Retry `attempt` (0 = a first request with no failure counted yet: after a block in a
    /// previous run, or for a CR deleted by someone else before the guard asked anything).
    fn retry_now(&mut self, attempt: u32, waited: u64, why: &str) -> (Decision, String) {
        let token = self.token();
        self.record_request(&token);
        self.progress.escalates_at = Some(self.deadline());
        (
            Decision::Retry {
                requested_at: token,
                attempt,
                of: self.policy.retries,
                backoff: Duration::from_secs(waited),
            },
            format!("{why} ({})", self.budget_left()),
        )
    }

    fn orphan(&mut self, esc: Escalation, detail: &str) -> (Decision, String) {
        let ledger = self.ledger(LedgerDecision::Orphaned, esc.code(), detail);
        // Not deleted yet: suspend in the same patch, so that the generation change starts no
        // normal reconcile (plan/apply); and no reconcile request until the DELETE.
        let deleting = self.obs.deleting;
        let requested_at = if deleting {
            let token = self.token();
            self.record_request(&token);
            Some(token)
        } else {
            None
        };
        let suspend = !deleting && self.obs.destroy_resources_on_deletion;
        self.progress.phase = Phase::Orphaning;
        self.progress.orphan_requested_at = Some(self.now);
        self.progress.escalation_reason = Some(esc.code().to_string());
        self.progress.escalates_at =
            Some(plus(self.now, self.tun.orphan_timeout).min(self.force_point()));
        (
            Decision::Orphan {
                requested_at,
                ledger,
                suspend,
            },
            format!("orphan ({}): {detail} ({})", esc.code(), self.budget_left()),
        )
    }

    fn force_remove(&mut self, esc: Escalation, detail: &str) -> (Decision, String) {
        self.force_remove_with_code(esc.code(), detail)
    }

    fn force_remove_with_code(&mut self, code: &str, detail: &str) -> (Decision, String) {
        let ledger = self.ledger(LedgerDecision::ForceRemoved, code, detail);
        self.progress.phase = Phase::ForceRemoving;
        self.progress.escalation_reason = Some(code.to_string());
        if self.progress.force_removed_at.is_none() {
            self.progress.force_removed_at = Some(self.now);
        }
        self.progress.escalates_at = None;
        (
            Decision::ForceRemove {
                ledger,
                dependency_finalizer: format!("{TF_DEPENDENCY_OF_PREFIX}{}", self.obs.name),
            },
            format!("force-remove ({code}): {detail}"),
        )
    }

    fn block(&mut self, esc: Escalation, detail: &str) -> (Decision, String) {
        self.progress.phase = Phase::Blocked;
        self.progress.blocked_at = Some(self.now);
        self.progress.escalation_reason = Some(esc.code().to_string());
        self.progress.escalates_at = None;
        let message = self.block_message(esc, detail);
        (
            Decision::Block {
                message: message.clone(),
            },
            message,
        )
    }

    fn block_message(&self, esc: Escalation, detail: &str) -> String {
        let name = &self.obs.name;
        let ns = &self.obs.namespace;
        let fix = match esc {
            Escalation::ControllerAbsent => {
                "start tofu-controller (it must finalize the CR)".to_string()
            }
            Escalation::MissingDependency => format!(
                "restore what the controller needs ({detail}); see `helm tfops doctor -n {ns}`"
            ),
            Escalation::Timeout | Escalation::BudgetExhausted => format!(
                "let the destroy finish (raise `{}` on the CR or run the uninstall with a longer `--timeout`); {}",
                ANN_TIMEOUT,
                self.failure_text()
            ),
            _ => match self.progress.last_failure_class {
                Some(FailureClass::Permanent) => format!(
                    "fix the cause in the cloud account or the module ({})",
                    self.failure_text()
                ),
                _ => format!("fix the cause ({})", self.failure_text()),
            },
        };
        format!(
            "Terraform {ns}/{name} was not destroyed: {detail} [{code}]. The guard stopped because its policy is {on_failure}=block. Next: {fix}, then run the uninstall again (`helm uninstall`, or `helm tfops uninstall` on Helm 3; the guard retries the destroy). To keep the cloud resources instead and record them in the orphan ledger: `kubectl -n {ns} annotate terraform {name} {on_failure}=orphan --overwrite`, then run the uninstall again.",
            code = esc.code(),
            on_failure = ANN_ON_FAILURE,
        )
    }

    /// A destroy is running: wait for it, whatever `esc` would have done.
    fn let_destroy_run(&mut self, detail: &str) -> (Decision, String) {
        let until = self.force_point();
        self.progress.escalates_at = None;
        self.wait(
            until,
            WaitFor::Destroy,
            format!("a destroy is running (runner pod / Apply in progress); the guard never interrupts it — {detail}"),
        )
    }

    /// The on-failure action. Never while a destroy runs; force only with evidence.
    fn escalate(&mut self, esc: Escalation, detail: &str) -> (Decision, String) {
        if self.destroy_in_flight() {
            return self.let_destroy_run(&format!("would escalate: {detail}"));
        }
        match self.policy.on_failure {
            OnFailure::Block => self.block(esc, detail),
            OnFailure::Force => match self.force_evidence() {
                Some(_) => self.force_remove(esc, detail),
                None => self.orphan(
                    esc,
                    &format!("{detail}; no evidence that the controller failed or is gone, so orphaning first"),
                ),
            },
            OnFailure::Orphan => {
                if self.controller_absent() {
                    return self.force_remove(
                        esc,
                        &format!("{detail}; orphaning needs the controller and it is not running, so force-removing"),
                    );
                }
                match self.orphan_blocker() {
                    Some(b) => self.force_remove(
                        esc,
                        &format!(
                            "{detail}; the controller cannot release it ({b}), so force-removing"
                        ),
                    ),
                    None => self.orphan(esc, detail),
                }
            }
        }
    }

    /// At the force point: the last decision of the budget. Force-remove only with evidence
    /// and never a running destroy or a CR that dependants still use; else leave the CR as it
    /// is and let the run end unfinished (exit 3), saying why.
    fn final_escalation(&mut self, esc: Escalation) -> (Decision, String) {
        if self.destroy_in_flight() {
            return self.let_destroy_run(
                "the guard budget ends while it runs: leaving it to finish (the run ends unfinished; run the uninstall again once it is done, or give the guard a longer budget)",
            );
        }
        let dependants = self.live_dependants();
        if !dependants.is_empty() {
            let detail = format!(
                "still used by dependants {} (possibly in other namespaces); it is never destroyed or released while they exist",
                dependants.join(", ")
            );
            // Not this CR's failure (a dependant may still be destroying): no block either;
            // the run ends unfinished naming them.
            let until = self.force_point();
            return self.wait(until, WaitFor::Dependants(dependants), detail);
        }
        let detail = format!(
            "the guard budget ends at {} and the CR is still held",
            self.input.timing.budget_deadline.to_rfc3339()
        );
        if self.policy.on_failure == OnFailure::Block {
            return self.block(esc, &detail);
        }
        match self.force_evidence() {
            Some(ev) => self.force_remove(esc, &format!("{detail}; {ev}")),
            None => {
                let until = self.force_point();
                self.wait(
                    until,
                    WaitFor::Silence,
                    format!("{detail}; tofu-controller has not answered and there is no evidence that it failed or is gone, so the CR is left as it is (the run ends unfinished; check the controller with `helm tfops doctor`)"),
                )
            }
        }
    }

    fn restore_tfstate_if_due(&mut self) -> Option<(Decision, String)> {
        let before = self.progress.tfstate_before_unlock.clone()?;
        if !self.obs.exists {
            return None;
        }
        let handled = self.echoed() || self.silent();
        if !handled && self.progress.phase == Phase::Unlocking {
            return None;
        }
        let token = self.token();
        self.record_request(&token);
        self.progress.tfstate_before_unlock = None;
        if self.progress.phase == Phase::Unlocking {
            self.progress.phase = Phase::Deleting;
        }
        Some((
            Decision::RestoreTfstate {
                tfstate: before,
                requested_at: token,
            },
            "the force-unlock request was handled: spec.tfstate back to what it was (a forceUnlock left behind fails every later setup)".to_string(),
        ))
    }

    // ----- not deleted yet --------------------------------------------------------------

    fn not_deleting(&mut self) -> (Decision, String) {
        let o = self.obs;
        let dependants = self.live_dependants();
        if !dependants.is_empty() {
            let until = self.force_point();
            let why = format!(
                "waiting for dependants to go first: {}",
                dependants.join(", ")
            );
            return self.wait(until, WaitFor::Dependants(dependants), why);
        }
        let keep =
            self.policy.uninstall == UninstallPolicy::Retain || !o.destroy_resources_on_deletion;
        if keep && self.progress.phase != Phase::Orphaning {
            let esc = if self.policy.uninstall == UninstallPolicy::Retain {
                Escalation::RetainPolicy
            } else {
                Escalation::DestroyDisabled
            };
            let detail = if esc == Escalation::RetainPolicy {
                "uninstall-policy is retain: keep the cloud resources".to_string()
            } else {
                "spec.destroyResourcesOnDeletion is false: the controller will not destroy"
                    .to_string()
            };
            if self.controller_absent() {
                return self.retain_without_controller(esc, &detail);
            }
            return self.orphan(esc, &detail);
        }
        // Delete it first — before anything that starts a reconcile (an un-suspend would
        // start a normal one) — then request a reconcile with a fresh token.
        self.note_apply_baseline();
        let token = self.token();
        self.record_request(&token);
        if self.progress.started_at.is_none() {
            self.progress.started_at = Some(self.now);
        }
        if self.progress.phase == Phase::Pending {
            self.progress.phase = Phase::Deleting;
        }
        if !o.finalizers.iter().any(|f| f == TF_FINALIZER) {
            // The controller never took it over: nothing can have been applied by it.
            self.progress.nothing_to_destroy = true;
        }
        self.progress.escalates_at = Some(self.deadline());
        let why = if o.suspend {
            "deleting while suspended (un-suspended after the deletion, so no normal reconcile runs)"
        } else {
            "deleting; the controller will run the destroy"
        };
        (
            Decision::Delete {
                requested_at: token,
            },
            format!("{why} ({})", self.budget_left()),
        )
    }

    fn retain_without_controller(&mut self, esc: Escalation, detail: &str) -> (Decision, String) {
        let detail = format!(
            "{detail}; tofu-controller is not running, nothing would destroy or release it"
        );
        if self.policy.on_failure == OnFailure::Block {
            self.block(Escalation::ControllerAbsent, &detail)
        } else {
            self.force_remove(esc, &detail)
        }
    }

    // ----- being deleted ----------------------------------------------------------------

    fn deleting(&mut self) -> (Decision, String) {
        let o = self.obs;
        if self.progress.apply_baseline.is_none() {
            // First sight of a CR deleted by someone else (or a run that lost its record):
            // only a change from here on is evidence of the destroy.
            self.note_apply_baseline();
        }
        if self.progress.started_at.is_none() {
            self.progress.started_at = Some(self.now);
            if !o.finalizers.iter().any(|f| f == TF_FINALIZER) {
                self.progress.nothing_to_destroy = true;
            }
        }
        if self.progress.phase == Phase::Pending {
            self.progress.phase = Phase::Deleting;
        }
        if o.suspend {
            return (
                Decision::Unsuspend,
                "spec.suspend is true; the controller returns before finalizing (deleted already, so un-suspending starts the finalize, not a normal reconcile)".to_string(),
            );
        }
        let stale = self.stale_dependency_finalizers();
        if !stale.is_empty() {
            return (
                Decision::DropStaleDependencyFinalizers {
                    finalizers: stale.clone(),
                },
                format!(
                    "dependants proven gone but their finalizers remain: {}",
                    stale.join(", ")
                ),
            );
        }
        if self.progress.phase == Phase::Orphaning {
            return self.orphaning();
        }
        let keep =
            self.policy.uninstall == UninstallPolicy::Retain || !o.destroy_resources_on_deletion;
        if keep {
            let (esc, detail) = if self.policy.uninstall == UninstallPolicy::Retain {
                (
                    Escalation::RetainPolicy,
                    "uninstall-policy is retain: keep the cloud resources",
                )
            } else {
                (
                    Escalation::DestroyDisabled,
                    "spec.destroyResourcesOnDeletion is false: the controller will not destroy",
                )
            };
            if self.destroy_in_flight() {
                return self.let_destroy_run(detail);
            }
            if self.controller_absent() {
                return self.retain_without_controller(esc, detail);
            }
            return self.orphan(esc, detail);
        }
        self.destroying()
    }

    /// Phase orphaning: wait for the controller to release the CR; force only with evidence.
    fn orphaning(&mut self) -> (Decision, String) {
        let requested = self.progress.orphan_requested_at.unwrap_or(self.now);
        let patience_end = plus(requested, self.tun.orphan_timeout);
        if self.destroy_in_flight() {
            // Started before the orphan request (finalize read the flag at its start): it
            // runs to its end; the outcome is what the controller reports.
            return self.let_destroy_run("it started before the orphan request");
        }
        if self.controller_absent() {
            return self.orphan_stalled(
                "the orphan request cannot complete: tofu-controller is not running",
            );
        }
        if let Some(b) = self.orphan_blocker() {
            return self.orphan_stalled(&format!("the orphan request cannot complete: {b}"));
        }
        // A failure reported after the controller handled our orphan request.
        if let Some(r) = self.obs.ready.as_ref().filter(|r| is_failure(r)) {
            if self.echoed() {
                let c = self
                    .input
                    .classifier
                    .classify(&r.reason, &r.message)
                    .in_context(self.failure_context(r));
                let class = c.class;
                self.classification = Some(c);
                if class == FailureClass::BlockedByMissingDependency || self.now >= patience_end {
                    if self.progress.last_failure_class.is_none() {
                        self.progress.last_failure_class = Some(class);
                        self.progress.last_failure_reason = Some(r.reason.clone());
                        self.progress.set_failure_message(&r.message);
                    }
                    return self.orphan_stalled(&format!(
                        "the controller failed to release it: {}: {}",
                        r.reason, r.message
                    ));
                }
            }
        }
        if self.now >= patience_end {
            let until = self.force_point();
            self.progress.escalates_at = Some(until);
            return self.wait(
                until,
                WaitFor::Silence,
                "the controller has not released the CR yet and shows no failure: waiting (never forced on silence)".to_string(),
            );
        }
        self.progress.escalates_at = Some(patience_end);
        self.wait(
            patience_end,
            WaitFor::Orphan,
            "waiting for the controller to release the CR without destroying".to_string(),
        )
    }

    fn orphan_stalled(&mut self, detail: &str) -> (Decision, String) {
        if self.policy.on_failure == OnFailure::Block {
            self.block(Escalation::OrphanStalled, detail)
        } else {
            self.force_remove(Escalation::OrphanStalled, detail)
        }
    }

    /// Phase deleting/unlocking with destroy on: follow the destroy, retry, escalate.
    fn destroying(&mut self) -> (Decision, String) {
        let o = self.obs;
        let deadline = self.deadline();
        self.progress.escalates_at = Some(deadline);
        if self.progress.phase == Phase::Unlocking && self.echoed() {
            // The force-unlock request was handled; back to following the destroy.
            self.progress.phase = Phase::Deleting;
        }

        // Dependants first: the controller holds this CR until they are gone, and the guard
        // never releases a dependency that a dependant (in any namespace) may still use.
        let dependants = self.live_dependants();
        if !dependants.is_empty() {
            let until = self.force_point();
            let why = format!(
                "waiting for dependants to go first: {}",
                dependants.join(", ")
            );
            return self.wait(until, WaitFor::Dependants(dependants), why);
        }

        // The destroy ran to its end but `finalize` cannot finish: a `dependsOn` target is
        // gone, so removing its `tf.dependency.of.<me>` fails NotFound on every reconcile
        // (tf_controller_finalizer.go lines 155–178). Waiting changes nothing; the resources
        // are destroyed, only the finalizer is stuck.
        if let (Some(dep), Some(_)) = (&self.env.dependency_gone, self.progress.destroy_applied_at)
        {
            if !self.destroy_in_flight() {
                let detail = format!(
                    "the destroy completed, but the controller cannot finish: its dependsOn target {dep} is gone (finalize fails on it forever)"
                );
                return self.force_remove(Escalation::MissingDependency, &detail);
            }
        }

        if self.destroy_in_flight() {
            let why = if self.now >= deadline {
                "the destroy runs past this CR's deadline; it is never cut".to_string()
            } else {
                "the controller is destroying".to_string()
            };
            let until = if self.now >= deadline {
                self.force_point()
            } else {
                deadline
            };
            return self.wait(until, WaitFor::Destroy, why);
        }

        // What the controller needs before it can even start.
        if let Some((what, immediate)) = self.destroy_blocker() {
            let since = *self
                .progress
                .missing_dependency_since
                .get_or_insert(self.now);
            let grace_end = plus(since, self.tun.missing_dependency_grace).min(deadline);
            if immediate || self.now >= grace_end {
                self.progress.last_failure_class = Some(FailureClass::BlockedByMissingDependency);
                return self.escalate(
                    Escalation::MissingDependency,
                    &format!("the destroy cannot run: {what}"),
                );
            }
            return self.wait(
                grace_end,
                WaitFor::MissingDependency,
                format!("the destroy cannot run yet: {what}"),
            );
        }
        self.progress.missing_dependency_since = None;

        // Deleted by someone else and never asked anything by the guard: ask once, so that
        // any failure shown is fresh and the controller's response can be measured.
        if self.progress.last_requested_at.is_none() && self.now < deadline {
            return self.retry_now(
                0,
                0,
                "deleted before the guard asked anything: requesting a fresh reconcile",
            );
        }

        if self.controller_absent() {
            return self.escalate(
                Escalation::ControllerAbsent,
                "tofu-controller is not running (its leader-election Lease is not renewed)",
            );
        }

        match o.ready.as_ref().filter(|r| is_failure(r)) {
            Some(r) => self.failing(r, deadline),
            None => {
                // The controller was visibly destroying a moment ago (a runner between two
                // reconciles, e.g. re-created after a creation timeout): not a timeout yet.
                let busy_until = self
                    .progress
                    .last_busy_at
                    .map(|t| plus(t, self.tun.controller_patience));
                if self.now >= deadline && busy_until.is_some_and(|b| self.now < b) {
                    let until = busy_until.unwrap_or(deadline).min(self.force_point());
                    return self.wait(
                        until,
                        WaitFor::Destroy,
                        "past this CR's deadline, but the controller was destroying it moments ago (its runner is between reconciles): waiting, never cut".to_string(),
                    );
                }
                if self.now >= deadline {
                    let silence = if self.silent() {
                        "; tofu-controller has not answered the request (no echo, no status change, no runner pod)"
                    } else {
                        ""
                    };
                    return self.escalate(
                        Escalation::Timeout,
                        &format!(
                            "the destroy did not finish within {}{silence}",
                            self.budget_text(deadline)
                        ),
                    );
                }
                let until = self.silence_at().map_or(deadline, |d| d.min(deadline));
                let (waiting_for, why) = if self.silent() {
                    (
                        WaitFor::Silence,
                        "tofu-controller has not answered yet (a runner pod can take minutes to start); waiting — silence alone never leads to force".to_string(),
                    )
                } else if self.progress_since_request() {
                    (WaitFor::Destroy, "the controller is destroying".to_string())
                } else {
                    (
                        WaitFor::Controller,
                        "waiting for the controller to pick up the request".to_string(),
                    )
                };
                self.wait(until, waiting_for, why)
            }
        }
    }

    fn budget_text(&self, deadline: DateTime<Utc>) -> String {
        let secs = (deadline - self.started_at()).num_seconds().max(0) as u64;
        format!(
            "its time limit ({}; {}={})",
            tfops_api::duration::format_duration(Duration::from_secs(secs)),
            ANN_TIMEOUT,
            tfops_api::duration::format_duration(self.policy.timeout)
        )
    }

    /// Force-unlock `lock`? Only when the policy allows it, the CURRENT failure message names
    /// the lock that `status.lock.pending` holds, its holder is provably gone, and it was not
    /// tried before.
    fn force_unlock_target(&self, r: &ReadyCondition) -> Option<String> {
        if self.env.lock_holder != Presence::Missing {
            return None;
        }
        let info = self.pending_lock_named(r)?;
        self.guard_may_force_unlock(&info).then_some(info.id)
    }

    /// The lock the current failure names, if it is the one `status.lock.pending` holds (the
    /// only one tofu-controller, and the guard, ever force-unlock).
    fn pending_lock_named(&self, r: &ReadyCondition) -> Option<crate::core::lock::LockInfo> {
        let info = crate::core::lock::lock_info(&r.message)?;
        (self.obs.lock_pending.as_deref() == Some(info.id.as_str())).then_some(info)
    }

    /// The policy lets the guard force-unlock `info`, and it has not done so before.
    fn guard_may_force_unlock(&self, info: &crate::core::lock::LockInfo) -> bool {
        self.policy.force_unlock
            && self.progress.force_unlocked_lock.as_deref() != Some(info.id.as_str())
    }

    /// What the guard knows beyond the failure message (for [`Classification::in_context`]).
    ///
    /// Who, if anyone, releases the lock the current failure names. Both releases need the
    /// lock in the message to be the one `status.lock.pending` holds (tofu-controller
    /// force-unlocks only that one, `tf_controller_backend.go` 408–431; the guard likewise).
    /// The controller does it with `spec.tfstate.forceUnlock: auto`; the guard only when
    /// `tfops.dev/force-unlock` is on, it has not force-unlocked this lock yet, and the holder
    /// is this CR's own runner pod whose absence is not proven yet (then
    /// [`Self::force_unlock_target`] takes over).
    ///
    /// And whether a holder the failure names is managed by a `Terraform` this uninstall is
    /// destroying (the engine's reading of their states, [`Environment::holders_in_destroy`]),
    /// or, when it names none, whether what it could not delete is referenced by a resource of
    /// such a `Terraform` ([`Environment::referrers_in_destroy`]).
    fn failure_context(&self, r: &ReadyCondition) -> FailureContext {
        // Every holder each in-use diagnostic names must go with this uninstall (one outside
        // it still holds); one that names no holder: everything it could not delete must be
        // used by a resource such a destroy removes. Another diagnostic in the same message
        // that needs a human keeps the failure permanent whatever the holders do.
        let found = crate::core::classify::holder::explained(
            self.input.classifier,
            &r.reason,
            &r.message,
            |h| self.env.holders_in_destroy.get(h).cloned(),
            |s| {
                self.env
                    .referrers_in_destroy
                    .get(s)
                    .map(|x| (x.describe(s), x.terraform.clone()))
            },
        );
        let holder_in_destroy = found.map(|found| {
            let mut terraforms: Vec<&str> = found.iter().map(|(_, t)| t.as_str()).collect();
            terraforms.sort();
            terraforms.dedup();
            HolderInDestroy {
                holder: found
                    .iter()
                    .map(|(h, _)| h.as_str())
                    .collect::<Vec<_>>()
                    .join(", "),
                terraform: terraforms.join(", "),
            }
        });
        let lock_released_by = self.pending_lock_named(r).and_then(|info| {
            let force_unlock = self
                .obs
                .tfstate_spec
                .as_ref()
                .and_then(|t| t.get("forceUnlock"))
                .and_then(serde_json::Value::as_str);
            if force_unlock == Some("auto") {
                Some(LockRelease::Controller)
            } else if self.guard_may_force_unlock(&info)
                && self.env.lock_holder != Presence::Missing
                && info.held_by_runner_of(&self.obs.name)
            {
                Some(LockRelease::Guard)
            } else {
                None
            }
        });
        FailureContext {
            lock_released_by,
            holder_in_destroy,
        }
    }

    fn failing(&mut self, r: &ReadyCondition, deadline: DateTime<Utc>) -> (Decision, String) {
        let cx = self.failure_context(r);
        let holder_note = cx
            .holder_in_destroy
            .as_ref()
            .map(|h| {
                format!(
                    " (its holder {} is managed by Terraform {}, which this uninstall is destroying)",
                    h.holder, h.terraform
                )
            })
            .unwrap_or_default();
        let text_only = self.input.classifier.classify(&r.reason, &r.message);
        let text_class = text_only.class;
        let in_use = text_only.is_in_use();
        let c = text_only.in_context(cx);
        let class = c.class;
        // Name the holder's Terraform only when it is what made the failure transient.
        let by_holder = in_use && class != text_class;
        let rule = if by_holder {
            format!("{}{holder_note}", c.rule_name())
        } else {
            c.rule_name().to_string()
        };
        self.classification = Some(c);

        // Count a failure once per request of ours (the first one even without a request).
        let new = match &self.progress.last_requested_at {
            Some(tok) => {
                self.echoed() && self.progress.counted_request.as_deref() != Some(tok.as_str())
            }
            None => self.progress.attempts == 0,
        };
        if new {
            self.progress.attempts += 1;
            if self.progress.first_failure_at.is_none() {
                self.progress.first_failure_at = Some(self.now);
            }
            self.progress.last_failure_at = Some(self.now);
            self.progress.last_failure_reason = Some(r.reason.clone());
            self.progress.set_failure_message(&r.message);
            self.progress.counted_request = self.progress.last_requested_at.clone();
        }
        let counted_current = new
            || match &self.progress.last_requested_at {
                Some(tok) => self.progress.counted_request.as_deref() == Some(tok.as_str()),
                None => self.progress.attempts > 0,
            };
        if counted_current {
            // The same failure may change class as its context does (a holder's Terraform got
            // stuck since it was counted): the record says what the decision is based on.
            self.progress.last_failure_class = Some(class);
        }
        if !counted_current {
            // Our last request has not been handled yet; this failure is older.
            if self.now >= deadline {
                return self.escalate(
                    Escalation::Timeout,
                    &format!(
                        "the destroy did not finish within {}",
                        self.budget_text(deadline)
                    ),
                );
            }
            let until = self.silence_at().map_or(deadline, |d| d.min(deadline));
            return self.wait(
                until,
                WaitFor::Controller,
                "waiting for the controller to handle the retry".to_string(),
            );
        }

        // A state lock named by the current failure, held by a holder that is provably gone.
        if let Some(lock) = self.force_unlock_target(r) {
            let token = self.token();
            self.record_request(&token);
            let before = self.obs.tfstate_spec.as_ref();
            let field = |k: &str| {
                before
                    .and_then(|t| t.get(k))
                    .cloned()
                    .unwrap_or(serde_json::Value::Null)
            };
            self.progress.tfstate_before_unlock = Some(serde_json::json!({
                "forceUnlock": field("forceUnlock"),
                "lockIdentifier": field("lockIdentifier"),
            }));
            self.progress.force_unlocked_lock = Some(lock.clone());
            self.progress.phase = Phase::Unlocking;
            return (
                Decision::ForceUnlock {
                    lock_id: lock.clone(),
                    requested_at: token,
                },
                format!("state lock {lock} is named by the current failure and its holder is gone"),
            );
        }

        let what = format!("{}: {}", r.reason, r.message);
        match class {
            FailureClass::Permanent => {
                return self.escalate(
                    Escalation::PermanentFailure,
                    &format!("permanent failure (rule {rule}) — {what}"),
                )
            }
            FailureClass::BlockedByMissingDependency => {
                let since = *self
                    .progress
                    .missing_dependency_since
                    .get_or_insert(self.now);
                let grace_end = plus(since, self.tun.missing_dependency_grace).min(deadline);
                if self.now >= grace_end {
                    return self.escalate(
                        Escalation::MissingDependency,
                        &format!("the destroy cannot run (rule {rule}) — {what}"),
                    );
                }
                return self.wait(
                    grace_end,
                    WaitFor::MissingDependency,
                    format!("the destroy cannot run yet (rule {rule}) — {what}"),
                );
            }
            FailureClass::Transient | FailureClass::Unknown => {}
        }
        if self.progress.attempts > self.policy.retries {
            return self.escalate(
                Escalation::RetriesExhausted,
                &format!(
                    "{} failed attempts ({} retries allowed) — {what}",
                    self.progress.attempts, self.policy.retries
                ),
            );
        }
        if self.now >= deadline {
            return self.escalate(
                Escalation::Timeout,
                &format!(
                    "the destroy did not finish within {} — {what}",
                    self.budget_text(deadline)
                ),
            );
        }
        let wait_for = backoff(self.tun, self.progress.attempts);
        let retry_at = plus(self.progress.last_failure_at.unwrap_or(self.now), wait_for);
        if self.now >= retry_at {
            self.progress.phase = Phase::Deleting;
            let attempt = self.progress.attempts;
            return self.retry_now(
                attempt,
                wait_for.as_secs(),
                &format!(
                    "{class} failure (rule {rule}), retry {}/{}",
                    self.progress.attempts, self.policy.retries
                ),
            );
        }
        self.wait(
            retry_at.min(deadline),
            WaitFor::Backoff,
            format!(
                "{class} failure (rule {rule}); retry {}/{} at {}",
                self.progress.attempts,
                self.policy.retries,
                retry_at.to_rfc3339()
            ),
        )
    }
}

#[cfg(test)]
mod tests;

#[cfg(test)]
mod sim_tests;
