//! Namespace lifecycle: auto-create on first use, Terminating (creates answer 403), and the
//! finish of a namespace deletion once it is empty.

use super::*;

impl Store {
    pub(super) fn ensure_namespace_for_create(
        &self,
        st: &mut State,
        ns: &str,
    ) -> Result<(), ApiError> {
        let nsrt = ns_rt()?;
        let key = State::key(nsrt, "", ns);
        match st.objects.get(&key) {
            Some(obj) => {
                let terminating = obj.pointer("/status/phase").and_then(Value::as_str)
                    == Some("Terminating")
                    || is_deleting(obj);
                if terminating {
                    Err(ApiError::forbidden(format!(
                        "unable to create new content in namespace {ns} because it is being terminated"
                    )))
                } else {
                    Ok(())
                }
            }
            None if self.inner.config.auto_create_namespaces => {
                let obj =
                    json!({"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": ns}});
                self.create_locked(st, nsrt, "", obj, WriteMode::Main)
                    .map(|_| ())
            }
            None => Err(ApiError::not_found("namespaces", "", "namespaces", ns)),
        }
    }

    /// Delete the contents of cascading namespaces; remove a namespace once it is empty.
    pub(super) fn reconcile_namespaces(&self, st: &mut State) {
        let Ok(nsrt) = ns_rt() else { return };
        for ns in st.cascading.clone() {
            let keys: Vec<Key> = st
                .objects
                .keys()
                .filter(|k| !k.2.is_empty() && k.2 == ns)
                .cloned()
                .collect();
            for k in &keys {
                let deleting = st.objects.get(k).is_some_and(is_deleting);
                if !deleting {
                    if let Some(rt) = registry::RESOURCES
                        .iter()
                        .find(|r| r.group == k.0 && r.resource == k.1)
                    {
                        let _ = self.delete_locked(st, rt, &k.2, &k.3, &Preconditions::default());
                    }
                }
            }
            let empty = !st.objects.keys().any(|k| !k.2.is_empty() && k.2 == ns);
            let nskey = State::key(nsrt, "", &ns);
            let meta_finalizers = st.objects.get(&nskey).map(finalizers).unwrap_or_default();
            if empty && meta_finalizers.is_empty() {
                if let Some(mut obj) = st.objects.remove(&nskey) {
                    let prev = obj.clone();
                    let rv = st.bump();
                    meta_mut(&mut obj).insert("resourceVersion".into(), json!(rv.to_string()));
                    let limit = self.inner.config.history_limit;
                    st.record(limit, EventType::Deleted, nsrt, &nskey, obj, Some(prev));
                }
                st.cascading.remove(&ns);
            }
        }
    }

    // ----- core operations (caller holds the lock) ------------------------------------------

    /// Mark a namespace Terminating (deletionTimestamp + phase) WITHOUT deleting its contents:
    /// creates in it answer 403 Forbidden. Creates the namespace if missing.
    pub fn set_namespace_terminating(&self, ns: &str) -> Result<Value, ApiError> {
        let nsrt = ns_rt()?;
        let mut st = self.lock();
        let key = State::key(nsrt, "", ns);
        if !st.objects.contains_key(&key) {
            let obj = json!({"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": ns}});
            if let Err(e) = self.create_locked(&mut st, nsrt, "", obj, WriteMode::Main) {
                self.finish(st);
                return Err(e);
            }
        }
        let r = match st.objects.get(&key).cloned() {
            Some(current) => {
                let mut obj = current.clone();
                let now = self.inner.clock.now_rfc3339();
                let rv = st.bump();
                {
                    let m = meta_mut(&mut obj);
                    m.insert("deletionTimestamp".into(), json!(now));
                    m.insert("resourceVersion".into(), json!(rv.to_string()));
                }
                obj["status"] = json!({"phase": "Terminating"});
                st.objects.insert(key.clone(), obj.clone());
                let limit = self.inner.config.history_limit;
                st.record(
                    limit,
                    EventType::Modified,
                    nsrt,
                    &key,
                    obj.clone(),
                    Some(current),
                );
                Ok(obj)
            }
            None => Err(ApiError::not_found("namespaces", "", "namespaces", ns)),
        };
        self.finish(st);
        r
    }

    /// Delete a namespace the way the namespace controller does: Terminating, then every object
    /// in it is deleted; the namespace disappears once they are all gone (finalizers cleared).
    pub fn delete_namespace(&self, ns: &str) -> Result<(), ApiError> {
        let nsrt = ns_rt()?;
        self.delete_in(nsrt, "", ns, &Preconditions::default())
            .map(|_| ())
    }
}
