//! The simulated reconcile's set-up: interval due check, `dependsOn` readiness, source /
//! runner / workspace set-up and the state lock after it (`controllers/tf_controller.go`,
//! `tf_controller_runner.go`, `tf_controller_backend.go`, v0.16.5).

use super::*;

impl Run<'_> {
    /// `shouldReconcile` for a live object: `Some(wait)` when not due yet.
    pub(super) fn not_due(&self, revision: &str) -> Option<Duration> {
        if self.spec_bool("force") {
            return None;
        }
        if let Some(req) = self.requested_at() {
            if self.st_str(&["lastHandledReconcileAt"]) != req {
                return None;
            }
        }
        if self.st_str(&["lastPlanAt"]).is_empty() {
            return None;
        }
        let observed = self
            .status
            .get("observedGeneration")
            .and_then(Value::as_i64)
            .unwrap_or(0);
        if observed != 0 && observed != self.generation {
            return None;
        }
        if !self.st_str(&["plan", "pending"]).is_empty() || self.should_apply() {
            return None;
        }
        if self.st_str(&["lastAttemptedRevision"]) != revision {
            return None;
        }
        if cond::has_any_reason(&self.status, cond::READY, &[reasons::DEPENDENCY_NOT_READY]) {
            return None;
        }
        let failures = self
            .status
            .get("reconciliationFailures")
            .and_then(Value::as_i64)
            .unwrap_or(0);
        if failures > 0 && !cond::is_true(&self.status, cond::READY) {
            let last = parse_time(&self.st_str(&["lastPlanAt"]))?;
            let next = last + chrono::Duration::from_std(retry_interval(self.tf)).ok()?;
            return (next > self.now).then(|| (next - self.now).to_std().unwrap_or_default());
        }
        let last_ok = parse_time(&self.st_str(&["lastSuccessfulReconcileAt"]))?;
        let interval = parse_go_duration(self.spec_str("interval")).unwrap_or_default();
        let next = last_ok + chrono::Duration::from_std(interval).ok()?;
        (next > self.now).then(|| (next - self.now).to_std().unwrap_or_default())
    }

    /// `checkDependencies`: `Some(message)` when a dependency is not ready.
    pub(super) fn check_dependencies(&mut self, revision: &str) -> Option<String> {
        let finalizer = format!("{DEPENDENCY_OF_PREFIX}{}", self.name);
        for dep in &self.world.dependencies {
            let key = format!("{}/{}", dep.namespace, dep.name);
            let Some(obj) = &dep.object else {
                return Some(format!(
                    "unable to get '{key}' dependency: terraforms.infra.contrib.fluxcd.io \"{}\" not found",
                    dep.name
                ));
            };
            let dep_deleting = !str_at(obj, &["metadata", "deletionTimestamp"]).is_empty();
            let has = s(obj, &["metadata", "finalizers"])
                .and_then(Value::as_array)
                .is_some_and(|a| a.iter().any(|f| f.as_str() == Some(finalizer.as_str())));
            if !dep_deleting && !has {
                self.actions.push(Action::AddDependencyFinalizer {
                    namespace: dep.namespace.clone(),
                    name: dep.name.clone(),
                    finalizer: finalizer.clone(),
                });
            }
            let gen = s(obj, &["metadata", "generation"])
                .and_then(Value::as_i64)
                .unwrap_or(1);
            let observed = s(obj, &["status", "observedGeneration"])
                .and_then(Value::as_i64)
                .unwrap_or(0);
            let dep_status = obj.get("status").cloned().unwrap_or_else(|| json!({}));
            if gen != observed || !cond::is_true(&dep_status, cond::READY) {
                return Some(format!("dependency '{key}' is not ready"));
            }
            let same_source = obj["spec"]["sourceRef"] == self.tf["spec"]["sourceRef"];
            if same_source
                && str_at(obj, &["status", "lastAppliedRevision"]) != revision
                && str_at(obj, &["status", "lastPlannedRevision"]) != revision
            {
                return Some(format!("dependency '{key}' is not updated yet"));
            }
            if let Some(out) = outputs_secret_name(obj) {
                if !dep.outputs_secret_present {
                    return Some(format!(
                        "dependency output secret: '{}/{out}' of '{key}' is not ready yet",
                        dep.namespace
                    ));
                }
            }
        }
        None
    }

    /// `setupTerraform`: varsFrom and force-unlock.
    pub(super) fn setup(&mut self, revision: &str) -> Result<(), SetupError> {
        self.progressing("Initializing");
        self.patch();
        if let Some((kind, name)) = self.world.missing_vars_from.first().cloned() {
            let msg = messages::vars_from_not_found(&kind, &name);
            self.not_ready(revision, reasons::VARS_GENERATION_FAILED, &msg);
            return Err(SetupError::VarsFromMissing);
        }
        let pending = self.st_str(&["lock", "pending"]);
        let mode = str_at(self.tf, &["spec", "tfstate", "forceUnlock"]);
        let ident = str_at(self.tf, &["spec", "tfstate", "lockIdentifier"]);
        let unlock = match mode {
            "yes" if ident == pending => pending.clone(),
            "auto" => pending.clone(),
            _ => String::new(),
        };
        if !unlock.is_empty() {
            // `terraform force-unlock` fails when that lock is not held (already released, or
            // held under another id): setupTerraform returns the error without touching the
            // status, so `lock.pending` stays and the next attempt fails the same way.
            let held = self
                .world
                .lock
                .as_ref()
                .is_some_and(|l| l.holder.id == unlock);
            if !held {
                return Err(SetupError::ForceUnlockFailed);
            }
            self.actions
                .push(Action::ForceUnlock { id: unlock.clone() });
            self.force_unlocked(&unlock);
            self.patch();
        }
        Ok(())
    }

    /// Effective lock after a possible force-unlock in this reconcile.
    pub(super) fn lock_after_setup(&self) -> Option<&crate::tofu::world::LockView> {
        let unlocked: Vec<&str> = self
            .actions
            .iter()
            .filter_map(|a| match a {
                Action::ForceUnlock { id } => Some(id.as_str()),
                _ => None,
            })
            .collect();
        self.world
            .lock
            .as_ref()
            .filter(|l| !unlocked.contains(&l.holder.id.as_str()))
    }

    /// Plan hit the lock: rows 13 / 24.
    pub(super) fn plan_locked(&mut self, revision: &str) {
        let Some(lock) = self.lock_after_setup().cloned() else {
            return;
        };
        self.event(
            EventType::Warning,
            reasons::PLAN_FAILED,
            messages::locked_event(&lock.holder.id),
        );
        self.state_locked(&lock.holder.id);
        let path = tfstate_secret_name(self.tf);
        let msg = messages::plan_locked(&lock.holder, &path, &lock.created);
        self.not_ready(revision, reasons::PLAN_FAILED, &msg);
    }
}
