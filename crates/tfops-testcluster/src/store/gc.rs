//! Garbage collection: dependents of deleted owners (ownerReferences) are deleted in turn.

use super::*;

impl Store {
    /// Garbage collector: dependents (ownerReferences) of removed objects are deleted once
    /// none of their owners exists (background propagation), or lose the reference (orphan).
    pub(super) fn collect_garbage(&self, st: &mut State) {
        while let Some((uid, orphan)) = st.removed.pop() {
            let dependents: Vec<Key> = st
                .objects
                .iter()
                .filter(|(_, o)| {
                    o.pointer("/metadata/ownerReferences")
                        .and_then(Value::as_array)
                        .is_some_and(|refs| {
                            refs.iter().any(|r| r["uid"].as_str() == Some(uid.as_str()))
                        })
                })
                .map(|(k, _)| k.clone())
                .collect();
            for k in dependents {
                let Some(rt) = registry::RESOURCES
                    .iter()
                    .find(|r| r.group == k.0 && r.resource == k.1)
                else {
                    continue;
                };
                let Some(obj) = st.objects.get(&k).cloned() else {
                    continue;
                };
                let refs: Vec<Value> = obj
                    .pointer("/metadata/ownerReferences")
                    .and_then(Value::as_array)
                    .cloned()
                    .unwrap_or_default();
                let remaining: Vec<Value> = refs
                    .iter()
                    .filter(|r| r["uid"].as_str() != Some(uid.as_str()))
                    .cloned()
                    .collect();
                let live_owner = remaining.iter().any(|r| {
                    let ruid = r["uid"].as_str().unwrap_or("");
                    st.objects
                        .values()
                        .any(|o| meta_str(o, "uid") == Some(ruid))
                });
                if orphan || live_owner {
                    let mut next = obj.clone();
                    let m = meta_mut(&mut next);
                    if remaining.is_empty() {
                        m.remove("ownerReferences");
                    } else {
                        m.insert("ownerReferences".into(), Value::Array(remaining));
                    }
                    m.remove("resourceVersion");
                    let _ = self.update_locked(st, rt, &k.2, &k.3, next, WriteMode::Admin);
                } else if !is_deleting(&obj) {
                    let _ = self.delete_locked(st, rt, &k.2, &k.3, &Preconditions::default());
                }
            }
        }
    }
}
