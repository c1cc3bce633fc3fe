//! `engine::run::report` — what a guard run reports: per-CR outcome and why, the run status
//! and exit code, the budget notes, and their text rendering (`-o json` serialises the same).

use super::*;

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

impl Engine {
    /// The report of the run so far.
    pub(super) fn report(&self) -> GuardReport {
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
