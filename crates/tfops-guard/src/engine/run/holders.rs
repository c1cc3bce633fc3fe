//! `engine::run::holders` — whether the holders an in-use failure names go with this
//! uninstall: the I/O half of [`crate::core::classify::holder`]. It reads the in-cluster
//! tfstate Secrets of the release's `Terraform`s that this run will destroy and matches the
//! holders against their cloud identifiers — or, when the text names no holder (AWS
//! `DependencyViolation`), looks for a resource in another such state that references what
//! could not be deleted; the machine then reads such a failure as transient
//! ([`crate::core::classify::Classification::in_context`]).
//!
//! Only a failure whose text-only class comes from a built-in in-use rule, and that names a
//! cloud identifier, costs anything: one Secret GET per candidate `Terraform`, at each probe of the
//! failing CR and when its message changes; a state is parsed again only when its Secret's
//! resourceVersion changed.

use super::*;
use crate::core::classify::holder;
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
            cr.holders_in_destroy = found.holders;
            cr.referrers_in_destroy = found.referrers;
            cr.holders_for = message;
        }
    }

    /// Those of `holders` that go with this uninstall: managed by the state (or named in the
    /// `status.inventory`) of a `Terraform` this run will still destroy (`key`'s own included),
    /// or of one it has already destroyed (state read earlier in the run, inventory last seen)
    /// — holder → `namespace/name`. And those of `subjects` that a resource in such a state
    /// references (`key`'s own excluded: Terraform orders the destroy within one state).
    ///
    /// A candidate [goes with this uninstall](Engine::goes_with_uninstall) and is not
    /// something `key` depends on (the guard deletes that only after `key` is gone). A state
    /// that cannot be read counts as not managing the holder (the failure keeps its text-only
    /// class, which leans permanent).
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
            self.read_state(k).await;
            if let Some(cr) = self.crs.get_mut(k) {
                found.note(holders, subjects, cr.state.index(), k, k == key);
            }
        }
        found
    }
}

impl Engine {
    /// Read `k`'s in-cluster state and keep it with what this run has seen of it (nothing when
    /// the Secret has not changed since the last read). Called before the guard deletes a CR
    /// that will destroy, so that what its destroy removes stays known, and by the holder
    /// check. A state that cannot be read adds nothing.
    pub(super) async fn read_state(&mut self, k: &Key) {
        let Some(secret) = self.crs.get(k).and_then(|cr| cr.tfstate_secret.clone()) else {
            return;
        };
        let read = match ops::tfstate(&self.client, &k.0, &secret).await {
            Ok(read) => read,
            Err(e) => {
                tracing::debug!(cr = %k.1, error = %e, "tfstate not read for the holder check");
                None
            }
        };
        if let (Some((version, data)), Some(cr)) = (read, self.crs.get_mut(k)) {
            cr.state.add_read(version, data);
        }
    }
}

/// What one run has read of one `Terraform`'s state: the index of the reads parsed so far
/// and the reads not parsed yet. A clean uninstall reads each state once before its DELETE
/// and never parses it (a gunzip and a JSON parse of up to 64 MiB); the first holder check
/// that needs it parses every read it holds, in order, and merges them.
#[derive(Debug, Default)]
pub(super) struct SeenState {
    /// The Secret's resourceVersion at the last read.
    version: String,
    index: StateIndex,
    unparsed: Vec<Vec<u8>>,
}

/// Most reads kept unparsed per state; an older one is parsed when a new one would pass it.
const MAX_UNPARSED: usize = 2;

impl SeenState {
    /// Keep a read of the Secret at `version`, unless it is the version last read.
    pub(super) fn add_read(&mut self, version: String, data: Vec<u8>) {
        if !version.is_empty() && version == self.version {
            return;
        }
        self.version = version;
        if self.unparsed.len() >= MAX_UNPARSED {
            self.parse_pending();
        }
        self.unparsed.push(data);
    }

    /// Everything the reads so far say, merged (reads that are not a state add nothing).
    pub(super) fn index(&mut self) -> &StateIndex {
        self.parse_pending();
        &self.index
    }

    fn parse_pending(&mut self) {
        for data in std::mem::take(&mut self.unparsed) {
            if let Some(read) = crate::core::tfstate::index(&data) {
                self.index.merge(read);
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
                    .map(|r| (r.resource.clone(), r.terraform.clone()))
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

/// What [`Engine::in_destroy`] found.
#[derive(Default)]
struct InDestroy {
    /// Holder → `namespace/name` of the `Terraform` that manages it.
    holders: BTreeMap<String, String>,
    /// What could not be deleted → the resource that references it.
    referrers: BTreeMap<String, Referrer>,
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
}
