//! The simulated normal reconcile: plan, approval, apply, drift detection and their outcomes
//! (`controllers/tf_controller_plan.go`, `tf_controller_apply.go`, `tf_controller.go`, v0.16.5).

use super::*;

impl Run<'_> {
    /// `TerraformApplied`.
    pub(super) fn applied(
        &mut self,
        revision: &str,
        msg: &str,
        entries: &[crate::tofu::behavior::InventoryEntry],
    ) {
        self.set_cond(cond::APPLY, "True", reasons::APPLY_SUCCEED, msg);
        let pending = self.st_str(&["plan", "pending"]);
        let mut plan = Map::new();
        if !pending.is_empty() {
            plan.insert("lastApplied".into(), json!(pending));
        }
        self.set_st("plan", Value::Object(plan));
        self.set_st("lastAppliedRevision", json!(revision));
        if !entries.is_empty() {
            self.set_st("inventory", json!({"entries": entries}));
        }
        self.lock_released();
        self.readiness(
            "Unknown",
            reasons::APPLY_SUCCEED,
            &format!("{msg}: {revision}"),
            revision,
        );
    }

    /// Failure outside deletion (row 24).
    pub(super) fn failed(&mut self, row: Row, retry: Duration, err: &str) -> (Row, Requeue) {
        let failures = self
            .status
            .get("reconciliationFailures")
            .and_then(Value::as_i64)
            .unwrap_or(0);
        self.set_st("reconciliationFailures", json!(failures + 1));
        self.event(
            EventType::Warning,
            reasons::RECONCILIATION_FAILED,
            err.to_string(),
        );
        self.finish(row, Requeue::After(retry))
    }

    pub(super) fn succeeded(&mut self, row: Row) -> (Row, Requeue) {
        cond::delete(&mut self.status, cond::STALLED);
        self.remove_st("reconciliationFailures");
        self.set_st("lastSuccessfulReconcileAt", json!(kube_time(self.now)));
        let pending = self.st_str(&["plan", "pending"]);
        let requeue = if !pending.is_empty() && !self.force_or_auto() {
            Requeue::None
        } else {
            match parse_go_duration(self.spec_str("interval")) {
                Some(d) if !d.is_zero() => Requeue::After(d),
                _ => Requeue::None,
            }
        };
        self.finish(row, requeue)
    }

    /// The normal (non-deletion) reconcile, enough for realistic status.
    pub(super) fn normal(&mut self, revision: &str, retry: Duration) -> (Row, Requeue) {
        if let Some(retries) =
            s(self.tf, &["spec", "remediation", "retries"]).and_then(Value::as_i64)
        {
            let failures = self
                .status
                .get("reconciliationFailures")
                .and_then(Value::as_i64)
                .unwrap_or(0);
            if retries >= 0 && failures >= retries {
                self.set_cond(
                    cond::STALLED,
                    "True",
                    reasons::RETRY_LIMIT_REACHED,
                    "Resource reached maximum number of retries.",
                );
                cond::delete(&mut self.status, cond::RECONCILING);
                return self.finish(Row::RetryLimitReached, Requeue::None);
            }
        }
        match self.setup(revision) {
            Ok(()) => {}
            Err(SetupError::VarsFromMissing) => {
                let msg = self
                    .world
                    .missing_vars_from
                    .first()
                    .map(|(k, n)| messages::vars_from_not_found(k, n))
                    .unwrap_or_default();
                return self.failed(Row::VarsFromMissing, retry, &msg);
            }
            Err(SetupError::ForceUnlockFailed) => {
                return self.failed(Row::ForceUnlockFailed, retry, "force-unlock failed");
            }
        }
        let has_resources = self.world.state_resources.unwrap_or(0) > 0;
        // drift detection
        if self.should_detect_drift(revision) {
            if self.lock_after_setup().is_some() {
                self.plan_locked(revision);
                return self.failed(Row::LockHeld, retry, "error running Plan: state locked");
            }
            if self.behavior.drift {
                self.set_st("lastDriftDetectedAt", json!(kube_time(self.now)));
                self.lock_released();
                let raw = "  # aws_s3_bucket.this has changed";
                self.readiness("False", reasons::DRIFT_DETECTED, raw, revision);
                self.event(
                    EventType::Warning,
                    reasons::DRIFT_DETECTED,
                    format!("Drift detected.\n{raw}"),
                );
                if !self.force_or_auto() {
                    return self.failed(Row::DriftDetected, retry, reasons::DRIFT_DETECTED);
                }
            } else {
                self.lock_released();
                self.readiness(
                    "True",
                    reasons::NO_DRIFT,
                    &format!("No drift: {revision}"),
                    revision,
                );
                return self.succeeded(Row::NoDrift);
            }
        }
        if self.spec_str("approvePlan") == "disable" {
            return self.succeeded(Row::NoDrift);
        }
        let mut row = Row::PlannedNoChanges;
        if self.st_str(&["plan", "pending"]).is_empty() || self.spec_bool("force") {
            self.progressing("Terraform Planning");
            self.patch();
            if self.lock_after_setup().is_some() {
                self.plan_locked(revision);
                return self.failed(Row::LockHeld, retry, "error running Plan: state locked");
            }
            let changes = !has_resources
                || self.st_str(&["lastAppliedRevision"]) != revision
                || self.behavior.drift;
            if changes {
                self.planned_with_changes(revision);
                row = Row::AwaitingApproval;
            } else {
                self.planned_no_changes(revision, "Plan no changes");
            }
            self.patch();
        }
        if self.should_apply() {
            self.progressing("Applying");
            self.set_cond(
                cond::APPLY,
                "Unknown",
                reasons::PROGRESSING,
                "Apply started",
            );
            self.set_st("lastAttemptedRevision", json!(revision));
            self.patch();
            if !self.behavior.apply_duration.is_zero() {
                self.actions
                    .push(Action::Sleep(self.behavior.apply_duration));
            }
            let entries = self.behavior.inventory_for(&self.name);
            self.actions.push(Action::CountApply);
            self.actions.push(self.write_state(&entries, 1));
            self.event(
                EventType::Normal,
                reasons::APPLY_SUCCEED,
                "Applied successfully".to_string(),
            );
            let inv: &[crate::tofu::behavior::InventoryEntry] = if self.spec_bool("enableInventory")
            {
                &entries
            } else {
                &[]
            };
            let inv = inv.to_vec();
            self.applied(revision, "Applied successfully", &inv);
            if !self.spec_bool("enableInventory") {
                self.remove_st("inventory");
            }
            self.patch();
            row = Row::Applied;
        }
        if row == Row::AwaitingApproval {
            return self.succeeded(row);
        }
        // outputs
        let outputs = self.behavior.outputs_for(&self.name);
        let mut keys: Vec<String> = outputs.keys().cloned().collect();
        keys.sort();
        if !keys.is_empty() {
            self.set_cond(
                cond::OUTPUT,
                "True",
                reasons::OUTPUTS_AVAILABLE,
                "Outputs available",
            );
            self.set_st("availableOutputs", json!(keys));
        }
        if let Some(secret) = outputs_secret_name(self.tf) {
            let mut data = Map::new();
            for (k, v) in &outputs {
                let text = match v {
                    Value::String(s) => s.clone(),
                    other => other.to_string(),
                };
                data.insert(k.clone(), json!(base64_encode(text.as_bytes())));
            }
            let labels = self.tf["spec"]["writeOutputsToSecret"]["labels"].clone();
            let annotations = self.tf["spec"]["writeOutputsToSecret"]["annotations"].clone();
            let mut meta = json!({
                "name": secret,
                "namespace": self.namespace,
                "ownerReferences": [self.owner_ref(true)],
            });
            if labels.is_object() {
                meta["labels"] = labels;
            }
            if annotations.is_object() {
                meta["annotations"] = annotations;
            }
            self.actions.push(Action::ApplySecret(json!({
                "apiVersion": "v1",
                "kind": "Secret",
                "metadata": meta,
                "type": "Opaque",
                "data": data,
            })));
            self.set_cond(
                cond::OUTPUT,
                "True",
                reasons::OUTPUTS_WRITTEN,
                "Outputs written",
            );
            self.readiness(
                "True",
                reasons::OUTPUTS_WRITTEN,
                &format!("Outputs written: {revision}"),
                revision,
            );
        }
        if let Some((st, reason, msg)) = cond::get(&self.status, cond::READY) {
            if st == "Unknown"
                && reason != reasons::PROGRESSING
                && !(reason == reasons::PLANNED_WITH_CHANGES && msg.starts_with("Plan generated"))
            {
                self.set_cond(cond::READY, "True", &reason, &msg);
                cond::delete(&mut self.status, cond::RECONCILING);
            }
        }
        self.succeeded(row)
    }

    /// `shouldDetectDrift`.
    pub(super) fn should_detect_drift(&self, revision: &str) -> bool {
        if self.spec_bool("disableDriftDetection") || self.spec_bool("destroy") {
            return false;
        }
        if self.spec_str("approvePlan") == "disable" {
            return true;
        }
        let applied = self.st_str(&["lastAppliedRevision"]);
        let planned = self.st_str(&["lastPlannedRevision"]);
        let attempted = self.st_str(&["lastAttemptedRevision"]);
        if applied.is_empty() && planned.is_empty() && attempted.is_empty() {
            return false;
        }
        let observed = self
            .status
            .get("observedGeneration")
            .and_then(Value::as_i64)
            .unwrap_or(0);
        if self.generation != observed {
            return false;
        }
        let pending = self.st_str(&["plan", "pending"]);
        attempted == planned && attempted == revision && pending.is_empty()
    }
}
