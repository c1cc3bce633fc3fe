//! The writes with the API server's semantics: create, update (optimistic concurrency, status
//! subresource, generation), delete (finalizers, deletionTimestamp, propagation).

use super::*;

impl Store {
    pub(super) fn create_locked(
        &self,
        st: &mut State,
        rt: &'static ResourceType,
        ns: &str,
        mut obj: Value,
        mode: WriteMode,
    ) -> Result<Value, ApiError> {
        if !obj.is_object() {
            return Err(ApiError::bad_request(
                "the request body must be a JSON object",
            ));
        }
        let body_ns = meta_str(&obj, "namespace").unwrap_or("").to_string();
        let ns = if rt.namespaced {
            match (ns.is_empty(), body_ns.is_empty()) {
                (false, false) if ns != body_ns => {
                    return Err(ApiError::bad_request(
                        "the namespace of the provided object does not match the namespace sent on the request",
                    ))
                }
                (false, _) => ns.to_string(),
                (true, false) => body_ns,
                (true, true) => "default".to_string(),
            }
        } else {
            String::new()
        };
        let mut name = meta_str(&obj, "name").unwrap_or("").to_string();
        if name.is_empty() {
            match meta_str(&obj, "generateName") {
                Some(g) if !g.is_empty() => {
                    name = format!("{g}{}", self.random_suffix(st));
                }
                _ => {
                    return Err(ApiError::invalid(
                        rt.kind,
                        "",
                        "metadata.name: Required value: name or generateName is required",
                    ))
                }
            }
        }
        validate::validate_name(rt.kind, &name)?;
        validate::validate_metadata(rt.kind, &name, &obj)?;
        if rt.namespaced {
            self.ensure_namespace_for_create(st, &ns)?;
        }
        let key = State::key(rt, &ns, &name);
        if st.objects.contains_key(&key) {
            return Err(ApiError::already_exists(
                &rt.qualified(),
                rt.group,
                rt.resource,
                &name,
            ));
        }
        let api_version = match obj.get("apiVersion").and_then(Value::as_str) {
            Some(av)
                if registry::split_api_version(av).0 == rt.group
                    && rt.serves(registry::split_api_version(av).1) =>
            {
                av.to_string()
            }
            _ => rt.preferred_api_version(),
        };
        obj["apiVersion"] = json!(api_version);
        obj["kind"] = json!(rt.kind);
        if rt.kind == "Secret" && rt.group.is_empty() {
            check_base64(&obj, "data")?;
            fold_string_data(&mut obj);
            if obj.get("type").is_none() {
                obj["type"] = json!("Opaque");
            }
        }
        if rt.kind == "ConfigMap" && rt.group.is_empty() {
            check_base64(&obj, "binaryData")?;
        }
        if rt.status && mode != WriteMode::Admin {
            if let Some(m) = obj.as_object_mut() {
                m.remove("status");
            }
        }
        if rt.kind == "Namespace" && rt.group.is_empty() {
            if obj.pointer("/status/phase").is_none() {
                obj["status"] = json!({"phase": "Active"});
            }
            if obj.pointer("/spec/finalizers").is_none() {
                obj["spec"] = json!({"finalizers": ["kubernetes"]});
            }
        }
        let uid = self.new_uid(st);
        let now = self.inner.clock.now_rfc3339();
        let m = meta_mut(&mut obj);
        m.insert("name".into(), json!(name));
        if rt.namespaced {
            m.insert("namespace".into(), json!(ns));
        } else {
            m.remove("namespace");
        }
        m.insert("uid".into(), json!(uid));
        m.insert("creationTimestamp".into(), json!(now));
        m.insert("generation".into(), json!(1));
        m.remove("deletionTimestamp");
        m.remove("deletionGracePeriodSeconds");
        m.remove("managedFields");
        self.apply_crd_schema(st, rt, &name, &mut obj)?;
        let rv = st.bump();
        meta_mut(&mut obj).insert("resourceVersion".into(), json!(rv.to_string()));
        st.objects.insert(key.clone(), obj.clone());
        let limit = self.inner.config.history_limit;
        st.record(limit, EventType::Added, rt, &key, obj.clone(), None);
        Ok(obj)
    }

    pub(super) fn update_locked(
        &self,
        st: &mut State,
        rt: &'static ResourceType,
        ns: &str,
        name: &str,
        new: Value,
        mode: WriteMode,
    ) -> Result<Value, ApiError> {
        let key = State::key(rt, ns, name);
        let current = st
            .objects
            .get(&key)
            .cloned()
            .ok_or_else(|| qualified_err_not_found(rt, name))?;
        if !new.is_object() {
            return Err(ApiError::bad_request(
                "the request body must be a JSON object",
            ));
        }
        if let Some(body_name) = meta_str(&new, "name") {
            if !body_name.is_empty() && body_name != name {
                return Err(ApiError::bad_request(format!(
                    "the name of the object ({body_name}) does not match the name on the URL ({name})"
                )));
            }
        }
        if rt.namespaced {
            if let Some(body_ns) = meta_str(&new, "namespace") {
                if !body_ns.is_empty() && body_ns != ns {
                    return Err(ApiError::bad_request(
                        "the namespace of the provided object does not match the namespace sent on the request",
                    ));
                }
            }
        }
        let cur_rv = meta_str(&current, "resourceVersion").unwrap_or("");
        if let Some(want) = meta_str(&new, "resourceVersion") {
            if !want.is_empty() && want != cur_rv {
                return Err(ApiError::conflict(
                    &rt.qualified(),
                    rt.group,
                    rt.resource,
                    name,
                ));
            }
        }
        let mut merged = match mode {
            WriteMode::Admin => new,
            WriteMode::Main => {
                let mut m = new;
                if rt.status {
                    match current.get("status") {
                        Some(s) => m["status"] = s.clone(),
                        None => {
                            if let Some(o) = m.as_object_mut() {
                                o.remove("status");
                            }
                        }
                    }
                }
                m
            }
            WriteMode::Status => {
                let mut m = current.clone();
                match new.get("status") {
                    Some(s) => m["status"] = s.clone(),
                    None => {
                        if let Some(o) = m.as_object_mut() {
                            o.remove("status");
                        }
                    }
                }
                m
            }
        };
        merged["apiVersion"] = current.get("apiVersion").cloned().unwrap_or(Value::Null);
        merged["kind"] = json!(rt.kind);
        if rt.kind == "Secret" && rt.group.is_empty() {
            check_base64(&merged, "data")?;
            fold_string_data(&mut merged);
        }
        if rt.kind == "ConfigMap" && rt.group.is_empty() {
            check_base64(&merged, "binaryData")?;
        }
        // Immutable / server-owned metadata.
        let cur_meta = meta(&current).cloned().unwrap_or_default();
        {
            let m = meta_mut(&mut merged);
            for f in [
                "name",
                "namespace",
                "uid",
                "creationTimestamp",
                "deletionTimestamp",
                "deletionGracePeriodSeconds",
                "generation",
                "resourceVersion",
            ] {
                match cur_meta.get(f) {
                    Some(v) => {
                        m.insert(f.into(), v.clone());
                    }
                    None => {
                        m.remove(f);
                    }
                }
            }
            m.remove("managedFields");
        }
        validate::validate_metadata(rt.kind, name, &merged)?;
        self.apply_crd_schema(st, rt, name, &mut merged)?;
        if is_deleting(&current) {
            let old: BTreeSet<String> = finalizers(&current).into_iter().collect();
            let added: Vec<String> = finalizers(&merged)
                .into_iter()
                .filter(|f| !old.contains(f))
                .collect();
            if !added.is_empty() {
                return Err(ApiError::invalid(
                    rt.kind,
                    name,
                    format!(
                        "metadata.finalizers: Forbidden: no new finalizers can be added if the object is being deleted, found new finalizers {added:?}"
                    ),
                ));
            }
        }
        if without_rv(&merged) == without_rv(&current) {
            return Ok(current);
        }
        if spec_part(&merged) != spec_part(&current) {
            let g = cur_meta
                .get("generation")
                .and_then(Value::as_i64)
                .unwrap_or(1);
            meta_mut(&mut merged).insert("generation".into(), json!(g + 1));
        }
        let rv = st.bump();
        meta_mut(&mut merged).insert("resourceVersion".into(), json!(rv.to_string()));
        let limit = self.inner.config.history_limit;
        if is_deleting(&merged) && finalizers(&merged).is_empty() {
            st.objects.remove(&key);
            st.record(
                limit,
                EventType::Deleted,
                rt,
                &key,
                merged.clone(),
                Some(current),
            );
        } else {
            st.objects.insert(key.clone(), merged.clone());
            st.record(
                limit,
                EventType::Modified,
                rt,
                &key,
                merged.clone(),
                Some(current),
            );
        }
        Ok(merged)
    }

    pub(super) fn delete_locked(
        &self,
        st: &mut State,
        rt: &'static ResourceType,
        ns: &str,
        name: &str,
        pre: &Preconditions,
    ) -> Result<Value, ApiError> {
        let key = State::key(rt, ns, name);
        let current = st
            .objects
            .get(&key)
            .cloned()
            .ok_or_else(|| qualified_err_not_found(rt, name))?;
        if let Some(uid) = &pre.uid {
            if meta_str(&current, "uid") != Some(uid.as_str()) {
                return Err(ApiError::new(
                    409,
                    "Conflict",
                    format!(
                        "Operation cannot be fulfilled on {} \"{name}\": Precondition failed: UID in precondition: {uid}, UID in object meta: {}",
                        rt.qualified(),
                        meta_str(&current, "uid").unwrap_or("")
                    ),
                )
                .with_details(name, rt.group, rt.resource));
            }
        }
        if let Some(want) = &pre.resource_version {
            if meta_str(&current, "resourceVersion") != Some(want.as_str()) {
                return Err(ApiError::conflict(
                    &rt.qualified(),
                    rt.group,
                    rt.resource,
                    name,
                ));
            }
        }
        let limit = self.inner.config.history_limit;
        if pre.orphan_dependents {
            if let Some(uid) = meta_str(&current, "uid") {
                st.orphan_on_removal.insert(uid.to_string());
            }
        }
        let is_namespace = rt.kind == "Namespace" && rt.group.is_empty();
        if is_namespace {
            st.cascading.insert(name.to_string());
        }
        if is_deleting(&current) {
            return Ok(current);
        }
        if finalizers(&current).is_empty() && !is_namespace {
            let mut obj = current.clone();
            let rv = st.bump();
            meta_mut(&mut obj).insert("resourceVersion".into(), json!(rv.to_string()));
            st.objects.remove(&key);
            st.record(
                limit,
                EventType::Deleted,
                rt,
                &key,
                obj.clone(),
                Some(current),
            );
            return Ok(obj);
        }
        let mut obj = current.clone();
        let now = self.inner.clock.now_rfc3339();
        let rv = st.bump();
        let g = meta(&current)
            .and_then(|m| m.get("generation"))
            .and_then(Value::as_i64)
            .unwrap_or(1);
        {
            let m = meta_mut(&mut obj);
            m.insert("deletionTimestamp".into(), json!(now));
            m.insert("deletionGracePeriodSeconds".into(), json!(0));
            m.insert("resourceVersion".into(), json!(rv.to_string()));
            if !is_namespace {
                m.insert("generation".into(), json!(g + 1));
            }
        }
        if is_namespace {
            obj["status"] = json!({"phase": "Terminating"});
        }
        st.objects.insert(key.clone(), obj.clone());
        st.record(
            limit,
            EventType::Modified,
            rt,
            &key,
            obj.clone(),
            Some(current),
        );
        Ok(obj)
    }
}
