//! The simulated deletion flow: `finalize` (`controllers/tf_controller_finalizer.go`, v0.16.5):
//! destroy plan and apply when `destroyResourcesOnDeletion`, dependants, finalizer removal.

use super::*;

impl Run<'_> {
    pub(super) fn finalize(&mut self, revision: &str) -> (Row, Requeue) {
        if self.spec_bool("destroyResourcesOnDeletion") {
            match self.setup(revision) {
                Ok(()) => {}
                Err(SetupError::VarsFromMissing) => {
                    return self.finish(Row::VarsFromMissing, Requeue::RateLimited)
                }
                Err(SetupError::ForceUnlockFailed) => {
                    return self.finish(Row::ForceUnlockFailed, Requeue::RateLimited)
                }
            }
            self.progressing("Terraform Planning");
            self.patch();
            if self.lock_after_setup().is_some() {
                self.plan_locked(revision);
                return self.finish(Row::LockHeld, Requeue::RateLimited);
            }
            let empty =
                self.behavior.nothing_to_destroy || self.world.state_resources.unwrap_or(0) == 0;
            let outcome = self.behavior.destroy_outcome(self.attempts);
            if let AttemptOutcome::Fail {
                stage: FailStage::Plan,
                message,
            } = &outcome
            {
                self.actions.push(Action::CountDestroyAttempt);
                self.event(
                    EventType::Warning,
                    reasons::PLAN_FAILED,
                    messages::plan_failed_event(message),
                );
                let msg = messages::plan_failed(message);
                self.not_ready(revision, reasons::PLAN_FAILED, &msg);
                return self.finish(Row::PlanFailed, Requeue::RateLimited);
            }
            if empty {
                self.planned_no_changes(revision, "No objects need to be destroyed");
                self.patch();
            } else {
                self.actions.push(Action::CountDestroyAttempt);
                self.planned_with_changes(revision);
                self.patch();
                // apply
                self.progressing("Applying");
                self.patch();
                self.set_cond(
                    cond::APPLY,
                    "Unknown",
                    reasons::PROGRESSING,
                    "Apply started",
                );
                self.set_st("lastAttemptedRevision", json!(revision));
                self.patch();
                self.actions.push(Action::DestroyInFlight(true));
                if !self.behavior.destroy_duration.is_zero() {
                    self.actions
                        .push(Action::Sleep(self.behavior.destroy_duration));
                }
                self.actions.push(Action::DestroyInFlight(false));
                if let AttemptOutcome::Fail { message, .. } = &outcome {
                    // Tofu persists the state before it reports the apply's errors (row 16):
                    // what the failed apply destroyed is gone from it; an unchanged state is
                    // not written again.
                    let gone = self.behavior.destroyed_through(self.attempts);
                    let gone_before = match self.attempts.checked_sub(1) {
                        Some(previous) => self.behavior.destroyed_through(previous),
                        None => Default::default(),
                    };
                    if gone != gone_before {
                        let left: Vec<_> = self
                            .behavior
                            .inventory_for(&self.name)
                            .into_iter()
                            .filter(|e| !gone.contains(&e.name))
                            .collect();
                        let serial = 2 + u64::from(self.attempts);
                        self.actions.push(self.write_state(&left, serial));
                    }
                    self.event(
                        EventType::Warning,
                        reasons::APPLY_FAILED,
                        messages::apply_failed_event(message),
                    );
                    let msg = messages::apply_failed(message);
                    self.set_cond(cond::APPLY, "False", reasons::APPLIED_FAIL, &msg);
                    self.not_ready(revision, reasons::APPLY_FAILED, &msg);
                    if let Some(p) = self.status.get_mut("plan").and_then(Value::as_object_mut) {
                        p.remove("pending");
                    }
                    return self.finish(Row::ApplyFailed, Requeue::RateLimited);
                }
                // success: the state is now empty (the Secret stays).
                let serial = 2 + u64::from(self.attempts);
                self.actions.push(self.write_state(&[], serial));
                self.event(
                    EventType::Normal,
                    reasons::APPLY_SUCCEED,
                    "Applied successfully".to_string(),
                );
                self.applied(revision, "Applied successfully", &[]);
                self.patch();
            }
        }
        // Row 19: finalize secrets.
        if self.world.plan_secret_present || self.actions.iter().any(|a| {
            matches!(a, Action::ApplySecret(v) if str_at(v, &["metadata", "name"]) == plan_secret_name(self.tf))
        }) {
            self.actions
                .push(Action::DeleteSecret(plan_secret_name(self.tf)));
            if let Some(out) = outputs_secret_name(self.tf) {
                if self.world.outputs_secret_present {
                    self.actions.push(Action::DeleteSecret(out));
                }
            }
        }
        // Row 20: dependant finalizers on dependencies.
        let finalizer = format!("{DEPENDENCY_OF_PREFIX}{}", self.name);
        for dep in &self.world.dependencies {
            let Some(obj) = &dep.object else {
                return self.finish(Row::DependencyGone, Requeue::RateLimited);
            };
            let has = s(obj, &["metadata", "finalizers"])
                .and_then(Value::as_array)
                .is_some_and(|a| a.iter().any(|f| f.as_str() == Some(finalizer.as_str())));
            if has {
                self.actions.push(Action::RemoveDependencyFinalizer {
                    namespace: dep.namespace.clone(),
                    name: dep.name.clone(),
                    finalizer: finalizer.clone(),
                });
            }
        }
        let row = if !self.spec_bool("destroyResourcesOnDeletion") {
            Row::ReleasedWithoutDestroy
        } else if self
            .actions
            .iter()
            .any(|a| matches!(a, Action::CountDestroyAttempt))
        {
            Row::Destroyed
        } else {
            Row::NothingToDestroy
        };
        self.deferred();
        self.patch();
        // Row 21.
        self.actions
            .push(Action::RemoveFinalizer(TERRAFORM_FINALIZER.to_string()));
        self.cleanup_runner();
        (row, Requeue::None)
    }
}
