//! `engine::run::executor` — carries out one decision of the state machine for one CR: the
//! DELETE, reconcile requests, orphan / un-suspend / force-unlock patches, ledger writes before
//! any release, the finalizer strip, progress persistence and the Event that says why.

use super::*;

impl Engine {
    /// Execute one step; returns whether to decide again right away.
    pub(super) async fn execute(&mut self, key: &Key, step: machine::Step) -> bool {
        let machine::Step {
            decision,
            progress,
            why,
            classification,
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
                // What its state holds, before the destroy empties it: the holder check of
                // another CR may need it later, and its own, to tell what this attempt
                // destroyed.
                let destroys = self
                    .crs
                    .get(key)
                    .and_then(|c| c.obj.as_ref().map(|o| holders::will_destroy(c, o)))
                    .unwrap_or(false);
                let read = destroys && self.read_state(key).await == holders::StateRead::Read;
                let deleted = self.delete(key, &api).await;
                if destroys && deleted.is_ok() {
                    self.attempt_began(key, read);
                }
                match deleted {
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
                let read = self.read_state(key).await == holders::StateRead::Read;
                let sent = self
                    .patch(
                        key,
                        &api,
                        "requesting a destroy retry of",
                        &patch,
                        &progress,
                    )
                    .await;
                if sent.is_ok() {
                    self.attempt_began(key, read);
                }
                sent
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
                let read = self.read_state(key).await == holders::StateRead::Read;
                let sent = self
                    .patch(key, &api, "force-unlocking", &patch, &progress)
                    .await;
                if sent.is_ok() {
                    self.attempt_began(key, read);
                }
                sent
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
                let message = match &decision {
                    Decision::Block { message } => message.clone(),
                    _ => why.clone(),
                };
                self.tell_observer(key, &decision, &progress, classification.as_ref(), &message);
                if emit {
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

    pub(super) fn set_progress(&mut self, key: &Key, p: Progress, persisted: bool) {
        if let Some(cr) = self.crs.get_mut(key) {
            if persisted {
                cr.persisted = p.clone();
            }
            cr.progress = p;
        }
    }

    /// Take a server response as the newest view of the CR.
    pub(super) fn absorb(&mut self, key: &Key, o: Option<DynamicObject>, p: &Progress) {
        if let Some(rv) = o.as_ref().and_then(rv_num) {
            let want = self.awaiting_echo.map_or(rv, |(w, _)| w.max(rv));
            self.awaiting_echo = Some((want, std::time::Instant::now()));
        }
        let Some(cr) = self.crs.get_mut(key) else {
            return;
        };
        match o {
            Some(o) => cr.take_object(o, self.clock.now()),
            None => cr.obj = None,
        }
        cr.progress = p.clone();
    }

    pub(super) async fn patch(
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

    pub(super) async fn delete(
        &mut self,
        key: &Key,
        api: &kube::Api<DynamicObject>,
    ) -> Result<bool, OpError> {
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

    pub(super) async fn write_ledger(
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
    pub(super) async fn state_emptied_since_ledger(&self, key: &Key) -> bool {
        let Some(cr) = self.crs.get(key) else {
            return false;
        };
        let Some(secret) = cr.tfstate_secret.clone() else {
            return false;
        };
        for _ in 0..4 {
            match ops::tfstate(&self.client, &key.0, &secret).await {
                Ok(Some((_, state))) => {
                    return crate::core::tfstate::managed_resources(&state) == Some(0)
                }
                Ok(None) => return false,
                Err(e) => tracing::debug!(cr = %key.1, error = %e, "tfstate not read; retrying"),
            }
        }
        false
    }

    /// Record on this CR's ledger entry (if any) that the controller destroyed the resources.
    pub(super) async fn mark_ledger_destroyed(&mut self, key: &Key) {
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

    pub(super) async fn force_remove(
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

    /// Hand the decision to the run's observer, if any (see [`crate::engine::observer`]).
    fn tell_observer(
        &self,
        key: &Key,
        decision: &Decision,
        progress: &Progress,
        classification: Option<&Classification>,
        why: &str,
    ) {
        let Some(observer) = &self.opts.observer else {
            return;
        };
        // Milliseconds are precise enough for a log and keep the lines short.
        let elapsed = Duration::from_millis(
            u64::try_from(self.clock.started_at().elapsed().as_millis()).unwrap_or(u64::MAX),
        );
        let record = DecisionRecord {
            elapsed,
            budget_left: self.opts.budget.saturating_sub(elapsed),
            namespace: key.0.clone(),
            name: key.1.clone(),
            module: self
                .crs
                .get(key)
                .map(|c| c.module.clone())
                .unwrap_or_default(),
            decision: decision.kind().to_owned(),
            outcome: match decision {
                Decision::Done(o) => Some(o.as_str().to_owned()),
                _ => None,
            },
            attempts: progress.attempts,
            class: progress.last_failure_class,
            rule: classification.and_then(|c| c.rule.as_ref()).map(|m| {
                if m.code.is_empty() {
                    m.name.clone()
                } else {
                    format!("{} ({} {})", m.name, m.provider, m.code)
                }
            }),
            why: why.to_owned(),
        };
        observer.notify(&record);
    }

    pub(super) async fn emit(&mut self, key: &Key, decision: &Decision, message: &str) {
        let (reason, sev) = event_reason(decision);
        self.emit_reason(key, reason, sev, message).await;
    }

    pub(super) async fn emit_reason(
        &mut self,
        key: &Key,
        reason: &str,
        sev: Severity,
        message: &str,
    ) {
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
}
