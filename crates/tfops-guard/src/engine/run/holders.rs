//! `engine::run::holders` — whether the holders an in-use failure names go with this
//! uninstall: the I/O half of [`crate::core::classify::holder`]. It reads the in-cluster
//! tfstate Secrets of the release's `Terraform`s that this run will destroy and matches the
//! holders against their cloud identifiers — or, when the text names no holder (AWS
//! `DependencyViolation`), looks for a resource in another such state that references what
//! could not be deleted; the machine then reads such a failure as transient
//! ([`crate::core::classify::Classification::in_context`]). In the failing CR's own state a
//! referrer counts only when the attempt that failed destroyed it ([`SeenState`] keeps the read
//! taken when the attempt began, [`Engine::attempt_began`]).
//!
//! Costs: one Secret GET of a CR's state right before each request that begins one of its
//! destroy attempts (the DELETE, a retry, a force-unlock), never parsed unless a holder check
//! needs it; and, only for a failure whose text-only class comes from a built-in in-use rule
//! and that names a cloud identifier, one Secret GET per candidate `Terraform` at each probe of
//! the failing CR and when its message changes. A GET that fails makes the check incomplete:
//! before it escalates on it, the guard probes again up to 3 times, 2 s apart, per failure
//! message and attempt, and only while that fits before the force point. A state is parsed
//! again only when its Secret's resourceVersion changed.

use super::*;
use crate::core::classify::holder;
use std::sync::{Arc, OnceLock};

use crate::core::tfstate::StateIndex;
use crate::machine::{Outcome, Referrer};

impl Engine {
    /// The CR's current Ready message when the guard would check its holders: a built-in
    /// in-use rule classes it permanent from its text and it names at least one identifier (a
    /// holder, or what could not be deleted).
    pub(super) fn in_use_message(&self, cr: &Cr) -> Option<String> {
        let obj = cr.obj.as_ref()?;
        let (_, reason, message) = tfobj::view(obj).ready_condition()?;
        let in_use = self.opts.classifier.classify(reason, message).is_in_use();
        (in_use && !holder::subjects(message).is_empty()).then(|| message.to_owned())
    }

    /// Read again which holders named by `key`'s current failure go with this uninstall, or,
    /// when it names none, which resources of such `Terraform`s reference what it could not
    /// delete.
    pub(super) async fn refresh_holders(&mut self, key: &Key) {
        let message = self.crs.get(key).and_then(|cr| self.in_use_message(cr));
        let found = match &message {
            Some(m) => {
                let (holders, subjects) = holder::named_in_diagnostics(m);
                self.in_destroy(key, &holders, &subjects).await
            }
            None => InDestroy::default(),
        };
        if let Some(cr) = self.crs.get_mut(key) {
            cr.unread.checked(message.as_deref(), found.unread);
            cr.holders_in_destroy = found.holders;
            cr.referrers_in_destroy = found.referrers;
            cr.holders_for = message;
        }
    }

    /// Those of `holders` that go with this uninstall: managed by the state (or named in the
    /// `status.inventory`) of a `Terraform` this run will still destroy (`key`'s own included),
    /// or of one it has already destroyed (state read earlier in the run, inventory last seen)
    /// — holder → `namespace/name`. And those of `subjects` that a resource in such a state
    /// references (in `key`'s own state only a resource its failed attempt destroyed:
    /// Terraform orders the destroy within one state).
    ///
    /// A candidate [goes with this uninstall](Engine::goes_with_uninstall) and is not
    /// something `key` depends on (the guard deletes that only after `key` is gone). A state
    /// that cannot be read counts as not managing the holder, and is listed in
    /// [`InDestroy::unread`]: before an escalation on such an incomplete check the guard reads
    /// it again a few times, seconds apart, then decides on the text-only class, which leans
    /// permanent.
    async fn in_destroy(
        &mut self,
        key: &Key,
        holders: &[String],
        subjects: &[String],
    ) -> InDestroy {
        let mut found = InDestroy::default();
        if holders.is_empty() && subjects.is_empty() {
            return found;
        }
        // Every CR `key` depends on, directly or through others (`spec.dependsOn`).
        let dependencies = order::reachable(key, |k| {
            self.crs
                .get(k)
                .into_iter()
                .flat_map(|c| c.depends_on.iter())
        });
        let candidates: Vec<(Key, Going)> = self
            .crs
            .keys()
            .filter(|k| !dependencies.contains(*k))
            .map(|k| (k.clone(), self.goes_with_uninstall(key, k)))
            .filter(|(_, going)| *going != Going::No)
            .collect();
        // First what is known without a read, in order (a holder two `Terraform`s name goes
        // to the first): a destroyed one's state and inventory (gone with this run, what they
        // had is gone too), a destroying one's inventory; then the destroying ones' states.
        for (k, going) in &candidates {
            let Some(cr) = self.crs.get_mut(k) else {
                continue;
            };
            if *going == Going::Destroyed {
                found.note(holders, subjects, cr.state.index(), k, k == key);
            }
            found.note_managed(holders, &cr.inventory_ids, k);
        }
        for (k, going) in &candidates {
            if *going != Going::Destroying {
                continue;
            }
            if self.read_state(k).await == StateRead::Failed {
                found.unread.push(format!("{}/{}", k.0, k.1));
            }
            if let Some(cr) = self.crs.get_mut(k) {
                found.note(holders, subjects, cr.state.index(), k, k == key);
            }
        }
        // Within its own state Terraform orders the destroy, so a referrer there explains
        // nothing — unless the attempt that failed destroyed it just before: the cloud had
        // not let go of the subject yet.
        if candidates
            .iter()
            .any(|(k, g)| k == key && *g == Going::Destroying)
        {
            if let Some(cr) = self.crs.get(key) {
                for s in subjects {
                    if found.referrers.contains_key(s) {
                        continue;
                    }
                    if let Some(resource) = cr.state.went_during_attempt(s) {
                        found.referrers.insert(
                            s.clone(),
                            Referrer {
                                resource: resource.to_string(),
                                terraform: format!("{}/{}", key.0, key.1),
                                destroyed_by_attempt: true,
                            },
                        );
                    }
                }
            }
        }
        found
    }
}

impl Engine {
    /// Read `k`'s in-cluster state and keep it with what this run has seen of it (nothing when
    /// the Secret has not changed since the last read), and say whether it could be read
    /// ([`StateRead`]). Called right before each request that begins a destroy attempt of a CR (its
    /// DELETE, a retry, a force-unlock: [`Engine::attempt_began`]), so that what its destroy
    /// removes stays known, and by the holder check. A state that cannot be read adds nothing.
    pub(super) async fn read_state(&mut self, k: &Key) -> StateRead {
        let Some(secret) = self.crs.get(k).and_then(|cr| cr.tfstate_secret.clone()) else {
            return StateRead::Absent;
        };
        let read = match ops::tfstate(&self.client, &k.0, &secret).await {
            Ok(read) => read,
            Err(e) => {
                tracing::debug!(cr = %k.1, error = %e, "tfstate Secret could not be read (holder check / attempt start)");
                return StateRead::Failed;
            }
        };
        match (read, self.crs.get_mut(k)) {
            (Some((version, data)), Some(cr)) => {
                cr.state.add_read(version, data);
                StateRead::Read
            }
            _ => StateRead::Absent,
        }
    }

    /// A request that begins a destroy attempt of `k` (its DELETE, a retry, a force-unlock)
    /// was accepted: the state read right before it (`read`: [`Engine::read_state`]'s answer)
    /// is the attempt's starting point ([`SeenState::went_during_attempt`]), and the holders of
    /// its next failure are read again, since what the last attempt removed no longer speaks
    /// for the next one. Not called when the request failed: no attempt began, and the
    /// evidence of the last one still holds.
    pub(super) fn attempt_began(&mut self, k: &Key, read: bool) {
        if let Some(cr) = self.crs.get_mut(k) {
            cr.state.mark_attempt(read);
            cr.holders_for = None;
            cr.unread.attempt_began();
        }
    }
}

/// How often the guard reads again a state its holder check could not read before it
/// releases a CR on the failure anyway (an API error that persists is not waited out).
const MAX_UNREAD_REREADS: u8 = 3;

/// The states one CR's last holder check could not read, and how often releasing the CR was
/// put off to read them again — per failure message and attempt (pure bookkeeping).
#[derive(Debug, Default)]
pub(super) struct UnreadStates {
    /// `Terraform`s (`namespace/name`) whose state could not be read.
    names: Vec<String>,
    /// Re-reads put off for `message` in this attempt.
    rereads: u8,
    /// The failure message the re-reads count for.
    message: Option<String>,
}

/// An escalation the guard is about to execute, as far as [`UnreadStates::waits`] cares.
#[derive(Debug, Clone, Copy)]
pub(super) struct Escalation<'a> {
    /// The step's classification is in use.
    pub in_use: bool,
    /// Why it escalates (`Progress::escalation_reason`).
    pub reason: Option<&'a str>,
    /// When another read would be taken.
    pub next_read_at: DateTime<Utc>,
    /// When the machine force-removes anyway.
    pub force_point: DateTime<Utc>,
    /// The failure message the last holder check ran on.
    pub checked_for: Option<&'a str>,
    /// The failure message on the CR now.
    pub failure: Option<&'a str>,
}

impl UnreadStates {
    /// After a holder check of `message`: the states it could not read. The bound on re-reads
    /// is per failure message (the message is gone while the controller runs the next attempt
    /// and comes back the same, so only a new text restarts it).
    pub(super) fn checked(&mut self, message: Option<&str>, unread: Vec<String>) {
        if message.is_some() && self.message.as_deref() != message {
            self.rereads = 0;
            self.message = message.map(str::to_owned);
        }
        self.names = unread;
    }

    /// A destroy attempt began: what the last check could not read no longer speaks for the
    /// next failure, and that failure gets its own re-reads.
    pub(super) fn attempt_began(&mut self) {
        *self = Self::default();
    }

    /// Releasing the CR was put off for one more read.
    pub(super) fn deferred(&mut self) {
        self.rereads = self.rereads.saturating_add(1);
    }

    /// The states the last check could not read.
    pub(super) fn names(&self) -> &[String] {
        &self.names
    }

    /// Whether `e` waits for another read: it escalates on the failure's class
    /// (`permanent-failure` — orphan, force-removal and block all record their reason; a
    /// timeout, a stalled orphan or the budget never waits) of an in-use failure, the check
    /// of that very failure left states unread, fewer than [`MAX_UNREAD_REREADS`] re-reads
    /// were put off for it, and another read fits before the force point.
    pub(super) fn waits(&self, e: &Escalation<'_>) -> bool {
        e.in_use
            && e.reason == Some("permanent-failure")
            && e.next_read_at < e.force_point
            && !self.names.is_empty()
            && self.rereads < MAX_UNREAD_REREADS
            && e.checked_for.is_some()
            && e.checked_for == e.failure
    }
}

/// What one run has read of one `Terraform`'s state: the index of the reads parsed so far
/// and the reads not parsed yet, and the read taken when its latest destroy attempt began. A
/// clean uninstall reads each state once before its DELETE and never parses it (a gunzip and
/// a JSON parse of up to 64 MiB); the first holder check that needs it parses every read it
/// holds, in order, and merges them.
#[derive(Debug, Default)]
pub(super) struct SeenState {
    /// The Secret's resourceVersion at the last read.
    version: String,
    index: StateIndex,
    unparsed: Vec<Read>,
    /// The last read, and the one taken right before the latest attempt began (the DELETE, a
    /// retry, a force-unlock); each parsed when first asked.
    latest: Option<Read>,
    at_attempt: Option<Read>,
}

/// One read of a state Secret, parsed once, on demand (clones share the parse).
#[derive(Debug, Clone)]
struct Read {
    data: Arc<[u8]>,
    parsed: Arc<OnceLock<Option<StateIndex>>>,
}

impl Read {
    fn new(data: Vec<u8>) -> Self {
        Read {
            data: data.into(),
            parsed: Arc::default(),
        }
    }

    /// `None` when the read is not a readable state.
    fn index(&self) -> Option<&StateIndex> {
        self.parsed
            .get_or_init(|| crate::core::tfstate::index(&self.data))
            .as_ref()
    }

    fn same(&self, other: &Read) -> bool {
        Arc::ptr_eq(&self.data, &other.data)
    }
}

/// Most reads kept unparsed per state; an older one is parsed when a new one would pass it.
const MAX_UNPARSED: usize = 2;

impl SeenState {
    /// Keep a read of the Secret at `version`, unless it is the version last read.
    pub(super) fn add_read(&mut self, version: String, data: Vec<u8>) {
        if !version.is_empty() && version == self.version {
            return;
        }
        self.version.clone_from(&version);
        if self.unparsed.len() >= MAX_UNPARSED {
            self.parse_pending();
        }
        let read = Read::new(data);
        self.unparsed.push(read.clone());
        self.latest = Some(read);
    }

    /// The last read is what the attempt about to begin starts from; `read` false (the Secret
    /// could not be read now) forgets the mark instead: an older read would make what an
    /// earlier attempt destroyed look like this one's doing.
    pub(super) fn mark_attempt(&mut self, read: bool) {
        self.at_attempt = if read { self.latest.clone() } else { None };
    }

    /// The resource that referenced `subject` in the state the latest attempt began from,
    /// when a later read has no resource referencing it any more: that attempt destroyed the
    /// referrer before it failed (OpenTofu writes the state before it reports the error). The
    /// cloud may not have released `subject` yet (AWS detaches a Lambda's or a load
    /// balancer's network interfaces minutes after they are deleted), so the next attempt can
    /// pass. `None` without two distinct reads, or when either is not a readable state or the
    /// later one hit the reference cap.
    pub(super) fn went_during_attempt(&self, subject: &str) -> Option<Arc<str>> {
        let (Some(before), Some(after)) = (&self.at_attempt, &self.latest) else {
            return None;
        };
        if before.same(after) {
            return None;
        }
        let referrer = before.index()?.references.get(subject).cloned()?;
        let after = after.index()?;
        (!after.references_capped() && !after.references.contains_key(subject)).then_some(referrer)
    }

    /// Everything the reads so far say, merged (reads that are not a state add nothing).
    pub(super) fn index(&mut self) -> &StateIndex {
        self.parse_pending();
        &self.index
    }

    fn parse_pending(&mut self) {
        for read in std::mem::take(&mut self.unparsed) {
            if let Some(index) = read.index() {
                self.index.merge(index.clone());
            }
        }
    }

    /// Reads not parsed yet (for tests).
    #[cfg(test)]
    pub(super) fn unparsed(&self) -> usize {
        self.unparsed.len()
    }
}

/// Whether a `Terraform` goes with this uninstall (for the holder check).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Going {
    /// Already destroyed by this run.
    Destroyed,
    /// Set to be destroyed and not stuck on an in-use failure of its own.
    Destroying,
    /// Kept, orphaned, gone otherwise, or stuck.
    No,
}

impl Engine {
    /// Whether `k` goes with this uninstall, as seen from `key`'s holder check: destroyed by
    /// this run, or still to destroy (`uninstall-policy: destroy`,
    /// `destroyResourcesOnDeletion: true`, not being orphaned) and not stuck on an in-use
    /// failure of its own (two CRs that hold each other's resources would otherwise wait on
    /// each other until the budget ends).
    fn goes_with_uninstall(&self, key: &Key, k: &Key) -> Going {
        let Some(cr) = self.crs.get(k) else {
            return Going::No;
        };
        match cr.outcome {
            Some(Outcome::Destroyed) => return Going::Destroyed,
            Some(_) => return Going::No,
            None => {}
        }
        let Some(obj) = &cr.obj else {
            return Going::No;
        };
        if !will_destroy(cr, obj) || (k != key && self.stuck(key, cr)) {
            return Going::No;
        }
        Going::Destroying
    }

    /// `cr` fails on an in-use error of its own that nothing else going with this uninstall
    /// explains (its last holder check found holders or referrers only in `key`, or none):
    /// it is not on its way out. One level deep: whether those others are stuck in turn is
    /// not asked (a chain network ← platform ← app resolves from its end).
    fn stuck(&self, key: &Key, cr: &Cr) -> bool {
        let Some(message) = self.in_use_message(cr) else {
            return false;
        };
        let key_name = format!("{}/{}", key.0, key.1);
        let going = |terraform: &str| {
            terraform != key_name
                && terraform.split_once('/').is_some_and(|(ns, name)| {
                    self.crs
                        .get(&(ns.to_owned(), name.to_owned()))
                        .is_some_and(|c| match (&c.outcome, &c.obj) {
                            (Some(o), _) => *o == Outcome::Destroyed,
                            (None, Some(obj)) => will_destroy(c, obj),
                            (None, None) => false,
                        })
                })
        };
        let reason = cr
            .obj
            .as_ref()
            .and_then(|o| {
                tfobj::view(o)
                    .ready_condition()
                    .map(|(_, r, _)| r.to_owned())
            })
            .unwrap_or_default();
        holder::explained(
            &self.opts.classifier,
            &reason,
            &message,
            |h| cr.holders_in_destroy.get(h).filter(|t| going(t)).cloned(),
            |s| {
                cr.referrers_in_destroy
                    .get(s)
                    .filter(|r| going(&r.terraform))
                    .map(|r| (r.describe(s), r.terraform.clone()))
            },
        )
        .is_none()
    }

    /// `key`'s holders and referrers from its last holder check, without those whose
    /// `Terraform` no longer goes with this uninstall (it was orphaned, or got stuck, since):
    /// what the machine may count on now.
    pub(super) fn holders_still_going(
        &self,
        key: &Key,
        cr: &Cr,
    ) -> (BTreeMap<String, String>, BTreeMap<String, Referrer>) {
        let going = |terraform: &str| {
            terraform.split_once('/').is_some_and(|(ns, name)| {
                self.goes_with_uninstall(key, &(ns.to_owned(), name.to_owned())) != Going::No
            })
        };
        (
            cr.holders_in_destroy
                .iter()
                .filter(|(_, t)| going(t))
                .map(|(h, t)| (h.clone(), t.clone()))
                .collect(),
            cr.referrers_in_destroy
                .iter()
                .filter(|(_, r)| going(&r.terraform))
                .map(|(s, r)| (s.clone(), r.clone()))
                .collect(),
        )
    }
}

/// Set to destroy its resources on deletion: `uninstall-policy: destroy`,
/// `destroyResourcesOnDeletion: true`, not being orphaned.
pub(super) fn will_destroy(cr: &Cr, obj: &DynamicObject) -> bool {
    cr.policy.uninstall == policy::UninstallPolicy::Destroy
        && tfobj::view(obj).destroy_on_deletion()
        && cr.progress.phase != Phase::Orphaning
}

/// What [`Engine::read_state`] got.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum StateRead {
    /// The Secret was read (changed or not).
    Read,
    /// No in-cluster state, or no Secret (yet).
    Absent,
    /// The API answered with an error: what the state holds is not known.
    Failed,
}

/// What [`Engine::in_destroy`] found.
#[derive(Default)]
struct InDestroy {
    /// Holder → `namespace/name` of the `Terraform` that manages it.
    holders: BTreeMap<String, String>,
    /// What could not be deleted → the resource that references it.
    referrers: BTreeMap<String, Referrer>,
    /// `namespace/name` of the candidates whose state could not be read.
    unread: Vec<String>,
}

impl InDestroy {
    /// Note what `state` (of `k`; `own` when it is the failing CR's) manages or references.
    fn note(
        &mut self,
        holders: &[String],
        subjects: &[String],
        state: &StateIndex,
        k: &Key,
        own: bool,
    ) {
        self.note_managed(holders, &state.ids, k);
        if own {
            return;
        }
        for s in subjects {
            if let Some(resource) = state.references.get(s) {
                self.referrers.entry(s.clone()).or_insert_with(|| Referrer {
                    resource: resource.to_string(),
                    terraform: format!("{}/{}", k.0, k.1),
                    destroyed_by_attempt: false,
                });
            }
        }
    }

    fn note_managed(&mut self, holders: &[String], ids: &BTreeSet<String>, k: &Key) {
        for h in holders {
            if holder::is_managed(h, ids) {
                self.holders
                    .entry(h.clone())
                    .or_insert_with(|| format!("{}/{}", k.0, k.1));
            }
        }
    }
}

/// Cloud identifiers in a `Terraform`'s `status.inventory.entries` (tofu-controller's
/// `enableInventory`), as [`holder::canonical`] forms.
pub(super) fn inventory_ids(obj: &DynamicObject) -> BTreeSet<String> {
    tfobj::inventory(tfobj::view(obj))
        .into_iter()
        .map(|e| e.identifier)
        .filter(|id| holder::is_identifier(id))
        .map(|id| holder::canonical(&id))
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn escalation(at: i64) -> Escalation<'static> {
        let t0 = DateTime::<Utc>::UNIX_EPOCH;
        Escalation {
            in_use: true,
            reason: Some("permanent-failure"),
            next_read_at: t0 + chrono::TimeDelta::seconds(at),
            force_point: t0 + chrono::TimeDelta::seconds(100),
            checked_for: Some("DependencyViolation: subnet-1"),
            failure: Some("DependencyViolation: subnet-1"),
        }
    }

    fn one_unread() -> UnreadStates {
        let mut u = UnreadStates::default();
        u.checked(
            Some("DependencyViolation: subnet-1"),
            vec!["apps/vpc".to_owned()],
        );
        u
    }

    #[test]
    fn only_an_in_use_escalation_on_the_checked_failure_waits_while_a_read_fits() {
        let u = one_unread();
        assert!(u.waits(&escalation(10)));
        let off: [(&str, Escalation<'static>); 9] = [
            (
                "not in use",
                Escalation {
                    in_use: false,
                    ..escalation(10)
                },
            ),
            (
                "a timeout",
                Escalation {
                    reason: Some("timeout"),
                    ..escalation(10)
                },
            ),
            (
                "a block with no failure reason",
                Escalation {
                    reason: None,
                    ..escalation(10)
                },
            ),
            ("the read would land on the force point", escalation(100)),
            ("the read would land past it", escalation(101)),
            (
                "no check ran",
                Escalation {
                    checked_for: None,
                    ..escalation(10)
                },
            ),
            (
                "the check ran on another failure",
                Escalation {
                    failure: Some("DependencyViolation: subnet-2"),
                    ..escalation(10)
                },
            ),
            (
                "no failure on the CR now",
                Escalation {
                    failure: None,
                    ..escalation(10)
                },
            ),
            ("nothing unread", escalation(10)),
        ];
        for (why, e) in off {
            let u = if why == "nothing unread" {
                UnreadStates::default()
            } else {
                one_unread()
            };
            assert!(!u.waits(&e), "{why}");
        }
        // just before the force point still fits
        assert!(u.waits(&escalation(99)));
    }

    #[test]
    fn rereads_are_bounded_per_message_and_restart_with_an_attempt_or_a_new_text() {
        let mut u = one_unread();
        for _ in 0..MAX_UNREAD_REREADS {
            assert!(u.waits(&escalation(10)));
            u.deferred();
        }
        assert!(!u.waits(&escalation(10)), "bounded");
        // the same text checked again (the controller's next attempt failed the same way)
        // keeps the count
        u.checked(
            Some("DependencyViolation: subnet-1"),
            vec!["apps/vpc".to_owned()],
        );
        assert!(!u.waits(&escalation(10)), "same text: still bounded");
        // a message gone while the controller runs does not restart it either
        u.checked(None, vec!["apps/vpc".to_owned()]);
        u.checked(
            Some("DependencyViolation: subnet-1"),
            vec!["apps/vpc".to_owned()],
        );
        assert!(!u.waits(&escalation(10)), "gone and back: still bounded");
        // a new text restarts it
        let other = Escalation {
            checked_for: Some("DependencyViolation: subnet-2"),
            failure: Some("DependencyViolation: subnet-2"),
            ..escalation(10)
        };
        u.checked(
            Some("DependencyViolation: subnet-2"),
            vec!["apps/vpc".to_owned()],
        );
        assert!(u.waits(&other), "new text");
        // a destroy attempt the guard requested clears what was unread and the count
        for _ in 0..MAX_UNREAD_REREADS {
            u.deferred();
        }
        assert!(!u.waits(&other));
        u.attempt_began();
        assert!(u.names().is_empty());
        assert!(!u.waits(&other), "nothing unread after the attempt began");
        u.checked(
            Some("DependencyViolation: subnet-2"),
            vec!["apps/vpc".to_owned()],
        );
        assert!(u.waits(&other), "the next failure gets its own re-reads");
    }

    fn state(instances: &[&str]) -> Vec<u8> {
        let instances: Vec<String> = instances
            .iter()
            .map(|id| {
                format!(
                    r#"{{"attributes":{{"id":"{id}","subnet_id":"subnet-0a1b2c3d4e5f60718"}}}}"#
                )
            })
            .collect();
        format!(
            r#"{{"version":4,"resources":[{{"mode":"managed","type":"aws_instance","name":"web","instances":[{}]}}]}}"#,
            instances.join(",")
        )
        .into_bytes()
    }

    #[test]
    fn reads_are_parsed_only_when_asked_and_merged_in_order() {
        let mut seen = SeenState::default();
        seen.add_read(
            "1".into(),
            state(&["i-0a1b2c3d4e5f60718", "i-0b1b2c3d4e5f60718"]),
        );
        assert_eq!(seen.unparsed(), 1);
        // the same resourceVersion again is not kept twice
        seen.add_read("1".into(), state(&[]));
        assert_eq!(seen.unparsed(), 1);
        // a later read after a partial destroy: what the first had stays known
        seen.add_read("2".into(), state(&["i-0b1b2c3d4e5f60718"]));
        assert_eq!(seen.unparsed(), 2);
        let index = seen.index();
        assert!(index.ids.contains("i-0a1b2c3d4e5f60718"));
        assert!(index.ids.contains("i-0b1b2c3d4e5f60718"));
        assert_eq!(
            index
                .references
                .get("subnet-0a1b2c3d4e5f60718")
                .map(|a| &**a),
            Some("aws_instance.web")
        );
        assert_eq!(seen.unparsed(), 0);
    }

    #[test]
    fn unparsed_reads_are_bounded_and_garbage_adds_nothing() {
        let mut seen = SeenState::default();
        seen.add_read("1".into(), state(&["i-0a1b2c3d4e5f60718"]));
        seen.add_read("2".into(), b"not a state".to_vec());
        seen.add_read("3".into(), state(&["i-0c1b2c3d4e5f60718"]));
        assert_eq!(
            seen.unparsed(),
            1,
            "older reads are parsed before a third is kept"
        );
        let ids = &seen.index().ids;
        assert_eq!(ids.len(), 2, "{ids:?}");
        // an empty resourceVersion never matches: each such read is kept, and both count
        let mut unversioned = SeenState::default();
        unversioned.add_read(String::new(), state(&["i-0a1b2c3d4e5f60718"]));
        unversioned.add_read(String::new(), state(&["i-0c1b2c3d4e5f60718"]));
        assert_eq!(unversioned.unparsed(), 2);
        assert_eq!(unversioned.index().ids.len(), 2);
    }

    /// A state with the security group and, when `with_function`, a Lambda in it.
    fn lambda_state(with_function: bool) -> Vec<u8> {
        let function = r#"{"mode":"managed","type":"aws_lambda_function","name":"f","instances":[{"attributes":{"id":"f","vpc_config":[{"security_group_ids":["sg-0a1b2c3d4e5f60718"]}]}}]},"#;
        format!(
            r#"{{"version":4,"resources":[{}{{"mode":"managed","type":"aws_security_group","name":"sg","instances":[{{"attributes":{{"id":"sg-0a1b2c3d4e5f60718"}}}}]}}]}}"#,
            if with_function { function } else { "" }
        )
        .into_bytes()
    }

    const SG: &str = "sg-0a1b2c3d4e5f60718";

    #[test]
    fn a_referrer_is_gone_during_an_attempt_only_between_its_start_and_a_later_read() {
        let mut seen = SeenState::default();
        seen.add_read("1".into(), lambda_state(true));
        // no attempt marked yet
        assert_eq!(seen.went_during_attempt(SG), None);
        seen.mark_attempt(true);
        // no read since the attempt began
        assert_eq!(seen.went_during_attempt(SG), None);
        // the failed attempt destroyed the function
        seen.add_read("2".into(), lambda_state(false));
        assert_eq!(
            seen.went_during_attempt(SG).as_deref(),
            Some("aws_lambda_function.f")
        );
        // nothing references anything else
        assert_eq!(seen.went_during_attempt("sg-0ffffffffffffffff"), None);
        // the next attempt begins from a state without the function: no longer evidence
        seen.mark_attempt(true);
        seen.add_read("3".into(), lambda_state(false));
        assert_eq!(seen.went_during_attempt(SG), None);
        // and the merged index still remembers the function's reference
        assert!(seen.index().references.contains_key(SG));
    }

    #[test]
    fn no_evidence_when_the_referrer_stays_or_a_read_fails_or_is_not_a_state() {
        // still referenced after the attempt
        let mut stays = SeenState::default();
        stays.add_read("1".into(), lambda_state(true));
        stays.mark_attempt(true);
        stays.add_read("2".into(), lambda_state(true));
        assert_eq!(stays.went_during_attempt(SG), None);
        // the read at the attempt's start failed: an older read does not stand in for it
        let mut failed = SeenState::default();
        failed.add_read("1".into(), lambda_state(true));
        failed.mark_attempt(false);
        failed.add_read("2".into(), lambda_state(false));
        assert_eq!(failed.went_during_attempt(SG), None);
        // the later read is not a state
        let mut garbage = SeenState::default();
        garbage.add_read("1".into(), lambda_state(true));
        garbage.mark_attempt(true);
        garbage.add_read("2".into(), b"not a state".to_vec());
        assert_eq!(garbage.went_during_attempt(SG), None);
    }
}
