//! `explain` — what the guard would do with a given failure: classifies (reason, message) and
//! runs the real state machine on a synthetic observation of a CR that just failed its destroy
//! with that condition, then describes the next step and the escalation that follows.
//! Pure; `tfops explain` is its thin CLI edge.

use std::time::Duration;

use chrono::{DateTime, TimeZone, Utc};
use serde::Serialize;

use crate::core::classify::{holder, Classification, Classifier, FailureClass};
use crate::core::machine::{
    self, ConditionStatus, Decision, Environment, Input, Observation, Presence, ReadyCondition,
    RunnerPod, SourceState, Timing, Tunables, WaitFor, TF_FINALIZER,
};
use crate::core::policy::{OnFailure, Policy, UninstallPolicy};
use crate::progress::{Phase, Progress};
use tfops_api::duration::format_duration;

/// What to explain.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Request {
    /// Ready condition reason (may be empty).
    pub reason: String,
    /// Ready condition message.
    pub message: String,
    pub policy: Policy,
    /// Failed destroy attempts so far, including the one that produced this message (≥ 1).
    pub attempts: u32,
    /// Time since the guard started on this CR (deleted it).
    pub elapsed: Duration,
    /// The guard budget, when it should be taken into account (else only the CR timeout).
    pub budget: Option<Duration>,
}

/// The next step, in words and as data.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct NextStep {
    /// `retry`, `wait`, `orphan`, `force-remove`, `block`, …
    pub action: String,
    /// In how long (absent = now).
    #[serde(
        rename = "in",
        skip_serializing_if = "Option::is_none",
        serialize_with = "ser_opt_duration"
    )]
    pub after: Option<Duration>,
    pub summary: String,
}

fn ser_opt_duration<S: serde::Serializer>(d: &Option<Duration>, s: S) -> Result<S::Ok, S::Error> {
    match d {
        Some(d) => s.serialize_str(&format_duration(*d)),
        None => s.serialize_none(),
    }
}

/// The explanation.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct Explanation {
    pub class: FailureClass,
    /// Name of the matched rule, or `no rule matched`.
    pub rule: String,
    pub classification: Classification,
    /// Provider of the matched code (`aws`, `google`, …), absent when nothing matched.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub provider: Option<String>,
    /// The provider's error code the rule keys on.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub code: Option<String>,
    /// Why this class (one line).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub why: Option<String>,
    /// Documentation or public issue for the code.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub source: Option<String>,
    /// The text of the (normalised) message the rule matched: which of its codes or
    /// wordings answered (cut to 160 characters).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub matched_text: Option<String>,
    pub policy: Policy,
    pub attempts: u32,
    #[serde(serialize_with = "tfops_api::duration::serde_go::serialize")]
    pub elapsed: Duration,
    pub next: NextStep,
    /// What happens after that if the failure persists.
    pub later: String,
    /// Holders an in-use failure names ([`crate::core::classify::holder::holders`]) when its
    /// rule leans permanent: the guard retries instead when one of them is managed by a
    /// `Terraform` the same uninstall is destroying (it reads their states; `explain` cannot).
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub holders: Vec<String>,
    /// What such a failure could not delete when it names no holder
    /// ([`crate::core::classify::holder::subjects`]): the guard retries instead when a
    /// resource in the state of another `Terraform` the same uninstall is destroying uses
    /// every one of them, or (for one more attempt) a resource of the CR's own state used it
    /// until the attempt that failed destroyed it.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub subjects: Vec<String>,
    /// The state machine's own decision for this situation.
    pub decision: Decision,
    /// One-line summary: `<class> (rule: <rule>) → <next>; <later>`.
    pub summary: String,
}

impl Explanation {
    /// Human-readable, several lines.
    pub fn to_text(&self) -> String {
        let p = &self.policy;
        format!(
            "{summary}\n\nclass:    {class} (rule: {rule})\n{matched}{holders}next:     {next}\nlater:    {later}\npolicy:   uninstall-policy={u} on-failure={f} retries={r} timeout={t}\nattempts: {a} failed, {e} elapsed\n",
            summary = self.summary,
            class = self.class,
            rule = self.rule,
            matched = match &self.classification.rule {
                Some(m) => format!(
                    "matched:  {provider} {code}\n{text}why:      {why}\nsource:   {source}\n",
                    provider = m.provider,
                    code = m.code,
                    text = self
                        .matched_text
                        .as_ref()
                        .map(|t| format!("text:     {t:?}\n"))
                        .unwrap_or_default(),
                    why = m.why,
                    source = m.source.as_deref().unwrap_or("(catalog rule)"),
                ),
                None => "matched:  nothing (treated like transient, retried up to the limit)\n"
                    .to_string(),
            },
            holders = if !self.holders.is_empty() {
                format!(
                    "holder:   {} — if a Terraform of the same release manages it, the guard reads this failure as transient and waits for that destroy\n",
                    self.holders.join(", ")
                )
            } else if !self.subjects.is_empty() {
                format!(
                    "in use:   {} — if a resource in the state of another Terraform of the same release uses it (an instance's subnet_id, a policy attachment's policy_arn), the guard reads this failure as transient and waits for that destroy; so it does, for one more attempt, if a resource of this Terraform's own state used it until the attempt that failed destroyed it\n",
                    self.subjects.join(", ")
                )
            } else {
                String::new()
            },
            next = self.next.summary,
            later = self.later,
            u = p.uninstall,
            f = p.on_failure,
            r = p.retries,
            t = format_duration(p.timeout),
            a = self.attempts,
            e = format_duration(self.elapsed),
        )
    }
}

/// Why a request cannot be explained.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ExplainError {
    #[error("--attempts must be at least 1 (the failure being explained is one)")]
    NoAttempts,
}

fn on_failure_text(p: &Policy, t: &Tunables) -> String {
    match p.on_failure {
        OnFailure::Orphan => format!(
            "orphan: ledger entry, then destroyResourcesOnDeletion=false (force-remove only with evidence that the controller cannot release it — it reports a failure, its source or runner ServiceAccount is gone, or its leader-election Lease is not renewed; patience {} for a runner pod to start)",
            format_duration(t.orphan_timeout)
        ),
        OnFailure::Force => {
            "force-remove: ledger entry, then strip the tofu-controller finalizers (only after the controller reported a failure or is known to be gone; silence alone orphans first)".to_string()
        }
        OnFailure::Block => {
            "block: the guard fails the uninstall and says what to do next".to_string()
        }
    }
}

fn dur_between(from: DateTime<Utc>, to: DateTime<Utc>) -> Duration {
    (to - from).to_std().unwrap_or(Duration::ZERO)
}

/// Explain what the guard would do with this failure.
pub fn explain(req: &Request, classifier: &Classifier) -> Result<Explanation, ExplainError> {
    if req.attempts == 0 {
        return Err(ExplainError::NoAttempts);
    }
    let t = Tunables::default();
    let p = &req.policy;
    // A fixed clock keeps the output deterministic; only differences are shown.
    let started = Utc
        .with_ymd_and_hms(2026, 1, 1, 0, 0, 0)
        .single()
        .unwrap_or_default();
    let elapsed = chrono::TimeDelta::from_std(req.elapsed).unwrap_or(chrono::TimeDelta::MAX);
    let now = started.checked_add_signed(elapsed).unwrap_or(started);
    let far = now + chrono::TimeDelta::days(3650);
    let (share_deadline, budget_deadline) = match req.budget {
        Some(b) => {
            let end = started
                .checked_add_signed(
                    chrono::TimeDelta::from_std(b).unwrap_or(chrono::TimeDelta::MAX),
                )
                .unwrap_or(far);
            (end, end)
        }
        None => (far, far),
    };
    let previous_token = (req.attempts > 1).then(|| "previous".to_string());
    let token = "explain".to_string();
    let progress = Progress {
        phase: Phase::Deleting,
        attempts: req.attempts - 1,
        started_at: Some(started),
        first_failure_at: (req.attempts > 1).then_some(started),
        last_requested_at: Some(token.clone()),
        last_requested_sent_at: Some(now),
        counted_request: previous_token,
        ..Progress::default()
    };
    let blocked_by_dependants = req.reason == "DeletionBlockedByDependantsReason";
    let dependant = "<dependant>".to_string();
    let observation = Observation {
        name: "<name>".to_string(),
        namespace: "<namespace>".to_string(),
        exists: true,
        deleting: true,
        finalizers: if blocked_by_dependants {
            vec![
                TF_FINALIZER.to_string(),
                format!("{}{dependant}", machine::TF_DEPENDENCY_OF_PREFIX),
            ]
        } else {
            vec![TF_FINALIZER.to_string()]
        },
        dependants_present: if blocked_by_dependants {
            vec![dependant]
        } else {
            Vec::new()
        },
        destroy_resources_on_deletion: p.uninstall == UninstallPolicy::Destroy,
        ready: Some(ReadyCondition {
            status: ConditionStatus::False,
            reason: req.reason.clone(),
            message: req.message.clone(),
            last_transition_time: Some(now),
        }),
        last_handled_reconcile_at: Some(token),
        last_status_change_at: Some(now),
        ..Observation::default()
    };
    let environment = Environment {
        source: SourceState::Ready,
        runner_service_account: Presence::Present,
        vars_from: Presence::Present,
        namespace_terminating: false,
        lock_holder: Presence::Unknown,
        controller: Presence::Present,
        runner: RunnerPod::Absent,
        dependency_gone: None,
        holders_in_destroy: Default::default(),
        referrers_in_destroy: Default::default(),
    };
    let step = machine::decide(&Input {
        observation: &observation,
        environment: &environment,
        policy: p,
        progress: &progress,
        timing: Timing {
            now,
            run_started_at: started,
            share_deadline,
            budget_deadline,
        },
        tunables: &t,
        classifier,
    });
    let classification = step
        .classification
        .clone()
        .unwrap_or_else(|| classifier.classify(&req.reason, &req.message));
    let class = classification.class;
    let rule = classification.rule_name().to_string();
    let escalation = on_failure_text(p, &t);
    let total = p.retries.saturating_add(1);

    let deadline = machine::cr_deadline(
        started,
        p,
        &Timing {
            now,
            run_started_at: started,
            share_deadline,
            budget_deadline,
        },
        &t,
    );
    let deadline_text = format_duration(dur_between(started, deadline));
    let next = match &step.decision {
        Decision::Wait {
            waiting_for: WaitFor::Backoff,
            ..
        } => {
            // The wait itself is capped (the machine is re-consulted at least every
            // max_wait); the retry happens after the full backoff or at the deadline.
            let after =
                machine::backoff(&t, step.progress.attempts).min(dur_between(now, deadline));
            NextStep {
                action: "retry".to_string(),
                after: Some(after),
                summary: format!(
                    "retry {}/{} in {} (fresh reconcile.fluxcd.io/requestedAt)",
                    step.progress.attempts,
                    p.retries,
                    format_duration(after)
                ),
            }
        }
        Decision::Retry { attempt, of, .. } => NextStep {
            action: "retry".to_string(),
            after: None,
            summary: format!("retry {attempt}/{of} now (fresh reconcile.fluxcd.io/requestedAt)"),
        },
        Decision::Wait {
            until,
            waiting_for: WaitFor::MissingDependency,
        } => {
            let after = dur_between(now, *until);
            NextStep {
                action: "wait".to_string(),
                after: Some(after),
                summary: format!(
                    "wait up to {} for the missing dependency to come back",
                    format_duration(after)
                ),
            }
        }
        Decision::Wait {
            waiting_for: WaitFor::Dependants(_),
            ..
        } => NextStep {
            action: "wait".to_string(),
            after: None,
            summary: "wait for its dependants to be deleted first (the controller holds it until they are gone)".to_string(),
        },
        Decision::Wait { until, .. } => {
            let after = dur_between(now, *until);
            NextStep {
                action: "wait".to_string(),
                after: Some(after),
                summary: format!("wait (re-check in {})", format_duration(after)),
            }
        }
        Decision::Orphan { ledger, .. } => NextStep {
            action: "orphan".to_string(),
            after: None,
            summary: format!(
                "orphan now ({}): ledger entry, then destroyResourcesOnDeletion=false",
                ledger.reason
            ),
        },
        Decision::ForceRemove { ledger, .. } => NextStep {
            action: "force-remove".to_string(),
            after: None,
            summary: format!(
                "force-remove now ({}): ledger entry, then strip the tofu-controller finalizers",
                ledger.reason
            ),
        },
        Decision::Block { .. } => NextStep {
            action: "block".to_string(),
            after: None,
            summary: "block now: the guard fails the uninstall and says what to do next"
                .to_string(),
        },
        other => NextStep {
            action: other.kind().to_string(),
            after: None,
            summary: step.why.clone(),
        },
    };

    let never_cut = "a destroy that is running (runner pod up, Apply=Unknown) is never interrupted: at the budget's end it is left to finish and the run ends unfinished (exit 3)";
    let later = if p.uninstall == UninstallPolicy::Retain {
        format!(
            "uninstall-policy retain: never destroyed; if the controller shows it cannot release it (a failure, a missing source / runner ServiceAccount, its Lease not renewed) → force-remove (ledger entry first); a controller that stays silent for {} without such evidence is waited for until the budget ends, never forced",
            format_duration(t.orphan_timeout)
        )
    } else {
        let lock_note = match (crate::core::lock::lock_info(&req.message), p.force_unlock) {
            (Some(l), true) => format!("state lock {}: force-unlock once if its holder was this CR's own earlier runner pod (then spec.tfstate is restored); ", l.id),
            (Some(l), false) => format!("state lock {}: never force-unlocked ({} is off); ", l.id, tfops_api::names::ANN_FORCE_UNLOCK),
            (None, _) => String::new(),
        };
        match (&step.decision, class) {
            (Decision::Orphan { .. }, _) => format!(
                "{lock_note}if the controller shows it cannot release it → force-remove (the ledger entry is kept); silence alone (no failure, no missing dependency, Lease still renewed or unreadable) is waited for {} and then until the budget ends, never forced; {never_cut}",
                format_duration(t.orphan_timeout)
            ),
            (Decision::ForceRemove { .. }, _) => "done: the CR is gone, its ledger entry records what was left behind".to_string(),
            (Decision::Block { .. }, _) => format!("nothing until someone acts: fix the cause and run the uninstall again (`helm uninstall`, or `helm tfops uninstall` on Helm 3), or set {}=orphan", tfops_api::names::ANN_ON_FAILURE),
            (Decision::Wait { waiting_for: WaitFor::Dependants(_), .. }, _) => format!(
                "dependants still present (in any namespace: {}<name> carries no namespace) → never destroyed, orphaned or force-removed while they exist; at the budget's end the run ends unfinished (exit 3) naming them",
                tfops_api::names::TF_DEPENDENCY_OF_PREFIX
            ),
            (_, FailureClass::BlockedByMissingDependency) => format!(
                "still missing after {} → {escalation} (orphaning also needs the source artifact and the runner ServiceAccount; without them → force-remove)",
                format_duration(t.missing_dependency_grace)
            ),
            _ => format!(
                "{lock_note}after {total} failed attempts (1 + {} retries) or at {deadline_text} → {escalation}; {never_cut}",
                p.retries
            ),
        }
    };
    let summary = format!("{class} (rule: {rule}) → {}; {later}", next.summary);
    let matched = classification.rule.clone();
    let matched_text = classifier.matched_text(&req.message, &classification);
    let in_use = classification.is_in_use();
    let holders = if in_use {
        holder::holders(&req.message)
    } else {
        Vec::new()
    };
    let subjects = if in_use && holders.is_empty() {
        holder::subjects(&req.message)
    } else {
        Vec::new()
    };
    Ok(Explanation {
        class,
        rule,
        provider: matched.as_ref().map(|m| m.provider.clone()),
        code: matched.as_ref().map(|m| m.code.clone()),
        why: matched.as_ref().map(|m| m.why.clone()),
        source: matched.and_then(|m| m.source),
        matched_text,
        classification,
        policy: p.clone(),
        attempts: req.attempts,
        elapsed: req.elapsed,
        next,
        later,
        holders,
        subjects,
        decision: step.decision,
        summary,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_in_use_failure_shows_the_holder_the_guard_checks() {
        let c = Classifier::builtin();
        let e = explain(
            &req("TFExecApplyFailed", "The network resource 'projects/acme/global/networks/core' is already being used by 'projects/acme/global/firewalls/allow-ssh'"),
            &c,
        )
        .expect("explain");
        assert_eq!(e.holders, ["projects/acme/global/firewalls/allow-ssh"]);
        assert!(e
            .to_text()
            .contains("holder:   projects/acme/global/firewalls/allow-ssh"));
        let json = serde_json::to_value(&e).expect("json");
        assert_eq!(
            json["holders"][0],
            "projects/acme/global/firewalls/allow-ssh"
        );
        assert!(e.subjects.is_empty());
        // no holder line for other causes, nor for an in-use text that names none
        for m in [
            "AccessDenied: not authorized, used by arn:aws:iam::123456789012:role/x",
            "DependencyViolation: resource sg-0123456789abcdef0 has a dependent object",
        ] {
            let e = explain(&req("TFExecApplyFailed", m), &c).expect("explain");
            assert!(e.holders.is_empty(), "{m}");
            assert!(!e.to_text().contains("holder:"), "{m}");
            assert!(serde_json::to_value(&e)
                .expect("json")
                .get("holders")
                .is_none());
        }
    }

    #[test]
    fn an_in_use_failure_without_a_holder_shows_what_the_guard_looks_for() {
        let c = Classifier::builtin();
        let m = "DependencyViolation: resource sg-0123456789abcdef0 has a dependent object";
        let e = explain(&req("TFExecApplyFailed", m), &c).expect("explain");
        assert_eq!(e.subjects, ["sg-0123456789abcdef0"]);
        assert!(e.to_text().contains("in use:   sg-0123456789abcdef0 — "));
        let json = serde_json::to_value(&e).expect("json");
        assert_eq!(json["subjects"][0], "sg-0123456789abcdef0");
        // not for a cause other than in use
        let m = "AccessDenied: User arn:aws:iam::123456789012:user/x is not authorized";
        let e = explain(&req("TFExecApplyFailed", m), &c).expect("explain");
        assert!(e.subjects.is_empty());
        assert!(!e.to_text().contains("in use:"));
    }

    fn req(reason: &str, message: &str) -> Request {
        Request {
            reason: reason.to_string(),
            message: message.to_string(),
            policy: Policy::default(),
            attempts: 1,
            elapsed: Duration::from_secs(20),
            budget: None,
        }
    }

    fn run(r: &Request) -> Explanation {
        explain(r, &Classifier::builtin()).unwrap()
    }

    #[test]
    fn transient_failure_is_retried_with_backoff() {
        let e = run(&req("TFExecApplyFailed", "Throttling: Rate exceeded"));
        assert_eq!(e.class, FailureClass::Transient);
        assert_eq!(e.rule, "throttling");
        assert_eq!(e.next.action, "retry");
        assert_eq!(e.next.after, Some(Duration::from_secs(10)));
        assert!(
            e.next.summary.starts_with("retry 1/3 in 10s"),
            "{}",
            e.next.summary
        );
        assert!(e.later.contains("after 4 failed attempts"), "{}", e.later);
        assert!(e.later.contains("10m"), "{}", e.later);
        assert!(e
            .later
            .contains("orphan: ledger entry, then destroyResourcesOnDeletion=false"));
        assert!(e
            .summary
            .starts_with("transient (rule: throttling) → retry 1/3 in 10s"));
    }

    #[test]
    fn later_attempts_back_off_longer_and_then_escalate() {
        let mut r = req("TFExecApplyFailed", "Throttling: Rate exceeded");
        r.attempts = 3;
        let e = run(&r);
        assert_eq!(e.next.after, Some(Duration::from_secs(40)));
        assert!(
            e.next.summary.starts_with("retry 3/3"),
            "{}",
            e.next.summary
        );
        r.attempts = 4;
        let e = run(&r);
        assert_eq!(e.next.action, "orphan");
        assert!(
            e.next.summary.contains("retries-exhausted"),
            "{}",
            e.next.summary
        );
    }

    #[test]
    fn timeout_is_taken_from_elapsed() {
        let mut r = req("TFExecApplyFailed", "Throttling: Rate exceeded");
        r.elapsed = Duration::from_secs(600);
        let e = run(&r);
        assert_eq!(e.next.action, "orphan");
        assert!(e.next.summary.contains("timeout"), "{}", e.next.summary);
        // A guard budget shorter than the timeout wins.
        let mut r = req("TFExecApplyFailed", "Throttling: Rate exceeded");
        r.budget = Some(Duration::from_secs(240));
        let e = run(&r);
        assert!(e.later.contains("at 3m50s"), "{}", e.later);
    }

    #[test]
    fn permanent_failure_follows_the_on_failure_policy() {
        let denied = "AccessDenied: User is not authorized to perform: rds:DeleteDBInstance";
        let e = run(&req("TFExecApplyFailed", denied));
        assert_eq!(e.class, FailureClass::Permanent);
        assert_eq!(e.next.action, "orphan");
        let mut r = req("TFExecApplyFailed", denied);
        r.policy.on_failure = OnFailure::Force;
        assert_eq!(run(&r).next.action, "force-remove");
        r.policy.on_failure = OnFailure::Block;
        let e = run(&r);
        assert_eq!(e.next.action, "block");
        assert!(matches!(e.decision, Decision::Block { .. }));
    }

    #[test]
    fn missing_dependency_waits_briefly_then_escalates() {
        let e = run(&req(
            "ArtifactFailed",
            "Source is not ready, artifact not found",
        ));
        assert_eq!(e.class, FailureClass::BlockedByMissingDependency);
        assert_eq!(e.next.action, "wait");
        assert_eq!(e.next.after, Some(Duration::from_secs(20)));
        assert!(e.later.contains("force-remove"), "{}", e.later);
    }

    #[test]
    fn dependants_and_locks() {
        let e = run(&req(
            "DeletionBlockedByDependantsReason",
            "Deletion in progress, but blocked. Please delete app to resume ...",
        ));
        assert_eq!(e.next.action, "wait");
        assert!(e.next.summary.contains("dependants"), "{}", e.next.summary);
        assert!(
            e.later
                .contains("never destroyed, orphaned or force-removed"),
            "{}",
            e.later
        );
        // Locks are recognised from the message (upstream overwrites the LockHeld reason).
        let msg = "error running Plan: rpc error: code = Internal desc = error acquiring the state lock: Error acquiring the state lock\nLock Info:\n  ID:        9e1c\n  Who:       runner@db-tf-runner\n";
        let e = run(&req("TFExecPlanFailed", msg));
        // Force-unlock off and nothing else releases it: a held lock leans permanent.
        assert_eq!(e.next.action, "orphan");
        assert_eq!(e.class, FailureClass::Permanent);
        assert!(
            e.later.starts_with("state lock 9e1c: never force-unlocked"),
            "{}",
            e.later
        );
    }

    #[test]
    fn retain_policy_orphans() {
        let mut r = req("TFExecApplyFailed", "Throttling: Rate exceeded");
        r.policy.uninstall = UninstallPolicy::Retain;
        let e = run(&r);
        assert_eq!(e.next.action, "orphan");
        assert!(e.later.contains("retain"), "{}", e.later);
    }

    #[test]
    fn unknown_and_zero_attempts() {
        let e = run(&req("", "Error: operation failed (exit status 1)"));
        assert_eq!(e.class, FailureClass::Unknown);
        assert_eq!(e.rule, "no rule matched");
        assert_eq!(e.next.action, "retry");
        let mut r = req("", "x");
        r.attempts = 0;
        assert_eq!(
            explain(&r, &Classifier::builtin()),
            Err(ExplainError::NoAttempts)
        );
    }

    #[test]
    fn json_shape() {
        let e = run(&req("TFExecApplyFailed", "Throttling: Rate exceeded"));
        let v = serde_json::to_value(&e).unwrap();
        assert_eq!(v["class"], "transient");
        assert_eq!(v["rule"], "throttling");
        assert_eq!(v["provider"], "any");
        assert!(v["code"].as_str().unwrap().contains("Throttling"), "{v}");
        assert!(v["why"].as_str().unwrap().contains("slow down"), "{v}");
        assert!(v["source"].as_str().unwrap().starts_with("https://"), "{v}");
        assert_eq!(v["next"]["action"], "retry");
        assert_eq!(v["next"]["in"], "10s");
        assert_eq!(v["elapsed"], "20s");
        assert_eq!(v["policy"]["onFailure"], "orphan");
        assert_eq!(v["decision"]["action"], "wait");
        let text = e.to_text();
        assert!(
            text.contains("class:    transient (rule: throttling)"),
            "{text}"
        );
        assert!(
            text.contains("\nwhy:      the API asks the caller to slow down"),
            "{text}"
        );
        assert!(text.contains("\nsource:   https://"), "{text}");
    }

    #[test]
    fn explain_shows_which_wording_of_a_rule_matched() {
        // a rule with many codes: the one in the message is shown, in text and JSON
        let e = run(&req(
            "TFExecApplyFailed",
            "Error: deleting EC2 Subnet: OperationInProgress: an operation on subnet-0a1b2c3d4e5f60718 is already running",
        ));
        assert_eq!(e.rule, "operation-in-progress");
        assert_eq!(e.matched_text.as_deref(), Some("OperationInProgress"));
        assert!(
            e.to_text()
                .contains("\ntext:     \"OperationInProgress\"\n"),
            "{}",
            e.to_text()
        );
        let v = serde_json::to_value(&e).unwrap();
        assert_eq!(v["matchedText"], "OperationInProgress");
        // a regex branch: the span it matched, in the message's own case
        let f = run(&req(
            "TFExecApplyFailed",
            "Error: Droplet already has a pending event.",
        ));
        assert_eq!(
            f.matched_text.as_deref(),
            Some("already has a pending event")
        );
        // a catalog rule: its own match
        let c = Classifier::from_json(
            r#"[{"pattern": "kms key \\w+", "class": "transient"}]"#,
            "test",
        )
        .unwrap();
        let g = explain(
            &req("TFExecApplyFailed", "AccessDenied: kms key rotating now"),
            &c,
        )
        .unwrap();
        assert_eq!(g.matched_text.as_deref(), Some("kms key rotating"));
        // a rule that keys on one code: the code says it, no text is looked up
        let b = run(&req(
            "TFExecApplyFailed",
            "Error: deleting S3 Bucket (logs): BucketNotEmpty: The bucket you tried to delete is not empty",
        ));
        assert_eq!(
            (b.rule.as_str(), b.matched_text.as_deref()),
            ("bucket-not-empty", None)
        );
        // a reason-only rule and no rule at all: nothing to show
        let r = run(&req("ArtifactFailed", "exit status 1"));
        assert_eq!(
            (r.rule.as_str(), r.matched_text.as_deref()),
            ("source-failed", None)
        );
        assert!(!r.to_text().contains("\ntext:"));
        let u = run(&req("TFExecApplyFailed", "Error: operation failed"));
        assert!(u.matched_text.is_none());
        // a long match is cut
        let long = format!("Error: {}", "x".repeat(500));
        let l = run(&req("TFExecApplyFailed", &long));
        assert!(l
            .matched_text
            .as_ref()
            .is_none_or(|t| t.chars().count() <= 161));
    }

    #[test]
    fn explain_names_provider_code_rationale_and_source() {
        let e = run(&req(
            "TFExecApplyFailed",
            "\u{2577}\n\u{2502} Error: deleting S3 Bucket (logs): operation error S3: DeleteBucket, https response error StatusCode: 409, RequestID: X1, HostID: Y2, api error BucketNotEmpty: The bucket you tried to delete is not empty\n\u{2502}\n\u{2502}   with aws_s3_bucket.logs,\n\u{2502}   on main.tf line 1, in resource \"aws_s3_bucket\" \"logs\":\n\u{2575}",
        ));
        assert_eq!(e.class, FailureClass::Permanent);
        assert_eq!(e.rule, "bucket-not-empty");
        assert_eq!(
            (e.provider.as_deref(), e.code.as_deref()),
            (Some("aws"), Some("BucketNotEmpty"))
        );
        let text = e.to_text();
        assert!(text.contains("matched:  aws BucketNotEmpty\n"), "{text}");
        assert!(text.contains("force_destroy"), "{text}");
        let u = run(&req("TFExecApplyFailed", "Error: operation failed"));
        assert!(u.provider.is_none() && u.source.is_none());
        assert!(u.to_text().contains("matched:  nothing"), "{}", u.to_text());
        let p = run(&req("TFExecApplyFailed", "the moon is in the wrong phase"));
        assert_eq!(p.class, FailureClass::Permanent);
        assert_eq!(p.rule, "unrecognised-error");
        assert!(p.to_text().contains("leans permanent"), "{}", p.to_text());
    }
}
