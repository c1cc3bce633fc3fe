//! Status writing of the simulated reconcile: conditions, readiness, lock and plan status, the
//! plan and tfstate Secrets, Events (`controllers/tf_controller*.go` status helpers and
//! `api/v1alpha2/terraform_types.go` `Terraform*` setters, v0.16.5).

use super::*;

impl Run<'_> {
    pub(super) fn finalizers(&self) -> Vec<String> {
        s(self.tf, &["metadata", "finalizers"])
            .and_then(Value::as_array)
            .map(|a| {
                a.iter()
                    .filter_map(Value::as_str)
                    .map(str::to_string)
                    .collect()
            })
            .unwrap_or_default()
    }

    pub(super) fn deleting(&self) -> bool {
        !str_at(self.tf, &["metadata", "deletionTimestamp"]).is_empty()
    }

    pub(super) fn requested_at(&self) -> Option<String> {
        s(
            self.tf,
            &["metadata", "annotations", REQUESTED_AT_ANNOTATION],
        )
        .and_then(Value::as_str)
        .map(str::to_string)
    }

    pub(super) fn spec_str(&self, key: &str) -> &str {
        str_at(self.tf, &["spec", key])
    }

    pub(super) fn spec_bool(&self, key: &str) -> bool {
        bool_at(self.tf, &["spec", key])
    }

    pub(super) fn st_str(&self, path: &[&str]) -> String {
        str_at(&self.status, path).to_string()
    }

    pub(super) fn set_st(&mut self, key: &str, value: Value) {
        if let Some(o) = self.status.as_object_mut() {
            o.insert(key.to_string(), value);
        }
    }

    pub(super) fn remove_st(&mut self, key: &str) {
        if let Some(o) = self.status.as_object_mut() {
            o.remove(key);
        }
    }

    pub(super) fn set_cond(&mut self, t: &str, st: &str, reason: &str, msg: &str) {
        cond::set(
            &mut self.status,
            t,
            st,
            reason,
            msg,
            self.generation,
            self.now,
        );
    }

    pub(super) fn event(&mut self, type_: EventType, reason: &str, message: String) {
        self.actions.push(Action::Event {
            type_,
            reason: reason.to_string(),
            message,
        });
    }

    pub(super) fn patch(&mut self) {
        self.actions.push(Action::PatchStatus(self.status.clone()));
    }

    // ---- status helpers of api/v1alpha2/terraform_types.go ----

    /// `SetTerraformReadiness`.
    pub(super) fn readiness(&mut self, st: &str, reason: &str, msg: &str, revision: &str) {
        if st != "Unknown" {
            cond::delete(&mut self.status, cond::RECONCILING);
        }
        self.set_cond(cond::READY, st, reason, msg);
        self.set_st("observedGeneration", json!(self.generation));
        self.set_st("lastAttemptedRevision", json!(revision));
    }

    /// `TerraformNotReady`.
    pub(super) fn not_ready(&mut self, revision: &str, reason: &str, msg: &str) {
        self.readiness("False", reason, msg, revision);
        cond::delete(&mut self.status, cond::RECONCILING);
    }

    /// `TerraformProgressing`.
    pub(super) fn progressing(&mut self, msg: &str) {
        self.set_cond(cond::READY, "Unknown", reasons::PROGRESSING, msg);
    }

    pub(super) fn plan_status(&self) -> Value {
        self.status
            .get("plan")
            .cloned()
            .unwrap_or_else(|| json!({}))
    }

    pub(super) fn lock_released(&mut self) {
        cond::delete(&mut self.status, cond::STATE_LOCKED);
        self.remove_st("lock");
    }

    pub(super) fn rotate_lock(&mut self) -> Map<String, Value> {
        let mut lock = self
            .status
            .get("lock")
            .and_then(Value::as_object)
            .cloned()
            .unwrap_or_default();
        let pending = lock
            .get("pending")
            .and_then(Value::as_str)
            .unwrap_or("")
            .to_string();
        let last = lock
            .get("lastApplied")
            .and_then(Value::as_str)
            .unwrap_or("")
            .to_string();
        if !pending.is_empty() && last != pending {
            lock.insert("lastApplied".into(), json!(pending));
        }
        lock
    }

    /// `TerraformStateLocked`.
    pub(super) fn state_locked(&mut self, id: &str) {
        let msg = messages::locked_condition(id);
        self.set_cond(cond::STATE_LOCKED, "True", reasons::LOCK_HELD, &msg);
        self.readiness("False", reasons::LOCK_HELD, &msg, "");
        let mut lock = self.rotate_lock();
        lock.insert("pending".into(), json!(id));
        self.set_st("lock", Value::Object(lock));
    }

    /// `TerraformForceUnlock`.
    pub(super) fn force_unlocked(&mut self, id: &str) {
        let msg = messages::force_unlock_condition(id);
        self.set_cond(cond::STATE_LOCKED, "False", reasons::FORCE_UNLOCK, &msg);
        let mut lock = self.rotate_lock();
        lock.remove("pending");
        self.set_st("lock", Value::Object(lock));
    }

    /// `TerraformPlannedNoChanges`.
    pub(super) fn planned_no_changes(&mut self, revision: &str, msg: &str) {
        self.set_cond(cond::PLAN, "False", reasons::PLANNED_NO_CHANGES, msg);
        let mut plan = Map::new();
        if let Some(la) = self.plan_status().get("lastApplied").cloned() {
            plan.insert("lastApplied".into(), la);
        }
        if self.spec_bool("destroy") {
            plan.insert("isDestroyPlan".into(), json!(true));
        }
        self.set_st("plan", Value::Object(plan));
        self.set_st("lastPlannedRevision", json!(revision));
        self.set_st("lastPlannedGeneration", json!(self.generation));
        self.set_st("lastPlanAt", json!(kube_time(self.now)));
        self.lock_released();
        self.readiness(
            "True",
            reasons::PLANNED_NO_CHANGES,
            &format!("{msg}: {revision}"),
            revision,
        );
    }

    pub(super) fn force_or_auto(&self) -> bool {
        self.spec_bool("force") || self.spec_str("approvePlan") == "auto"
    }

    pub(super) fn should_apply(&self) -> bool {
        if self.spec_bool("force") {
            return true;
        }
        if self.spec_bool("planOnly") {
            return false;
        }
        let approve = self.spec_str("approvePlan");
        let pending = self.st_str(&["plan", "pending"]);
        if approve.is_empty() {
            return false;
        }
        if approve == "auto" {
            return !pending.is_empty();
        }
        approve == pending || (!pending.is_empty() && pending.starts_with(approve))
    }

    /// `TerraformPlannedWithChanges`.
    pub(super) fn planned_with_changes(&mut self, revision: &str) {
        let id = plan_id(revision);
        let msg = "Plan generated";
        self.set_cond(cond::PLAN, "True", reasons::PLANNED_WITH_CHANGES, msg);
        let mut plan = Map::new();
        if let Some(la) = self.plan_status().get("lastApplied").cloned() {
            plan.insert("lastApplied".into(), la);
        }
        plan.insert("pending".into(), json!(id));
        if self.spec_bool("destroy") {
            plan.insert("isDestroyPlan".into(), json!(true));
        }
        self.set_st("plan", Value::Object(plan));
        self.set_st("lastPlannedRevision", json!(revision));
        self.set_st("lastPlannedGeneration", json!(self.generation));
        self.set_st("lastPlanAt", json!(kube_time(self.now)));
        self.lock_released();
        let ready_msg = if self.spec_bool("planOnly") {
            format!("{msg}: This object is in the plan only mode.")
        } else if self.force_or_auto() {
            msg.to_string()
        } else {
            format!("{msg}: set approvePlan: \"{id}\" to approve this plan.")
        };
        self.readiness(
            "Unknown",
            reasons::PLANNED_WITH_CHANGES,
            &ready_msg,
            revision,
        );
        self.actions
            .push(Action::ApplySecret(self.plan_secret(&id)));
    }

    pub(super) fn plan_secret(&self, id: &str) -> Value {
        let ws = workspace(self.tf);
        json!({
            "apiVersion": "v1",
            "kind": "Secret",
            "metadata": {
                "name": plan_secret_name(self.tf),
                "namespace": self.namespace,
                "labels": {
                    "infra.contrib.fluxcd.io/plan-name": self.name,
                    "infra.contrib.fluxcd.io/plan-workspace": ws,
                },
                "annotations": {
                    "encoding": "gzip",
                    "savedPlan": id,
                },
                "ownerReferences": [self.owner_ref(false)],
            },
            "type": "Opaque",
            "data": {},
        })
    }

    pub(super) fn owner_ref(&self, controller: bool) -> Value {
        let mut o = json!({
            "apiVersion": crate::tofu::TERRAFORM_API_VERSION,
            "kind": "Terraform",
            "name": self.name,
            "uid": str_at(self.tf, &["metadata", "uid"]),
        });
        if controller {
            o["controller"] = json!(true);
        }
        o
    }

    /// Persist the state: the tfstate Secret for the in-cluster kubernetes backend, otherwise
    /// (custom backend / Terraform Cloud) only the driver's memory.
    pub(super) fn write_state(
        &self,
        resources: &[crate::tofu::behavior::InventoryEntry],
        serial: u64,
    ) -> Action {
        if state_in_cluster(self.tf) {
            Action::ApplySecret(self.tfstate_secret(resources, serial))
        } else {
            Action::WriteRemoteState {
                resources: resources.len(),
            }
        }
    }

    /// The tfstate Secret the kubernetes backend writes (plain JSON state, not gzipped).
    pub(super) fn tfstate_secret(
        &self,
        resources: &[crate::tofu::behavior::InventoryEntry],
        serial: u64,
    ) -> Value {
        let ws = workspace(self.tf);
        let suffix = tfstate_secret_name(self.tf)
            .trim_start_matches(&format!("tfstate-{ws}-"))
            .to_string();
        let res: Vec<Value> = resources
            .iter()
            .map(|e| {
                let mut attributes = self
                    .behavior
                    .state_attributes
                    .get(&e.name)
                    .cloned()
                    .unwrap_or_default();
                attributes.insert("id".into(), json!(e.identifier));
                json!({
                    "mode": "managed",
                    "type": e.kind,
                    "name": e.name,
                    "provider": "provider[\"registry.opentofu.org/hashicorp/aws\"]",
                    "instances": [{"schema_version": 0, "attributes": attributes}],
                })
            })
            .collect();
        let state = json!({
            "version": 4,
            "terraform_version": "1.8.7",
            "serial": serial,
            "lineage": format!("sim-{}", str_at(self.tf, &["metadata", "uid"])),
            "outputs": {},
            "resources": res,
            "check_results": null,
        });
        let encoded = base64_encode(state.to_string().as_bytes());
        json!({
            "apiVersion": "v1",
            "kind": "Secret",
            "metadata": {
                "name": tfstate_secret_name(self.tf),
                "namespace": self.namespace,
                "labels": {
                    "app.kubernetes.io/managed-by": "terraform",
                    "tfstate": "true",
                    "tfstateSecretSuffix": suffix,
                    "tfstateWorkspace": ws,
                },
            },
            "type": "Opaque",
            "data": {"tfstate": encoded},
        })
    }
}
