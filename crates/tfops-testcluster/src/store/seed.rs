//! The seeding / assertion API for tests and scenarios: typed-by-apiVersion create, get, list,
//! update, merge patch, delete and force-remove that bypass HTTP.

use super::*;

impl Store {
    pub(super) fn resolve(
        api_version: &str,
        kind_or_resource: &str,
    ) -> Result<&'static ResourceType, ApiError> {
        registry::lookup(api_version, kind_or_resource).ok_or_else(|| {
            ApiError::not_found(
                "the server could not find the requested resource",
                "",
                kind_or_resource,
                kind_or_resource,
            )
        })
    }

    pub(super) fn at_version(mut obj: Value, api_version: &str) -> Value {
        obj["apiVersion"] = json!(api_version);
        obj
    }

    /// The resource an object's `apiVersion`/`kind` pick, and its namespace (`""` when none).
    pub(super) fn resolve_object(obj: &Value) -> Result<(&'static ResourceType, String), ApiError> {
        let field = |k: &str| obj.get(k).and_then(Value::as_str).unwrap_or("");
        let rt = Self::resolve(field("apiVersion"), field("kind"))?;
        Ok((rt, meta_str(obj, "namespace").unwrap_or("").to_string()))
    }

    /// Seed an object (its `apiVersion`/`kind` pick the resource; `status` is kept).
    pub fn create(&self, obj: Value) -> Result<Value, ApiError> {
        let (rt, ns) = Self::resolve_object(&obj)?;
        self.create_in(rt, &ns, obj, WriteMode::Admin)
    }

    /// Get an object (`ns` ignored for cluster-scoped resources).
    pub fn get(
        &self,
        api_version: &str,
        kind_or_resource: &str,
        ns: &str,
        name: &str,
    ) -> Option<Value> {
        let rt = registry::lookup(api_version, kind_or_resource)?;
        self.get_in(rt, ns, name)
            .ok()
            .map(|o| Self::at_version(o, api_version))
    }

    /// List objects (`ns` = "" for all namespaces).
    pub fn list(&self, api_version: &str, kind_or_resource: &str, ns: &str) -> Vec<Value> {
        self.list_selected(api_version, kind_or_resource, ns, "")
            .unwrap_or_default()
    }

    /// List objects matching a label selector (`ns` = "" for all namespaces).
    pub fn list_selected(
        &self,
        api_version: &str,
        kind_or_resource: &str,
        ns: &str,
        label_selector: &str,
    ) -> Result<Vec<Value>, ApiError> {
        let rt = Self::resolve(api_version, kind_or_resource)?;
        let labels = LabelSelector::parse(label_selector)
            .map_err(|e| ApiError::bad_request(e.to_string()))?;
        let filter = Filter {
            namespace: (!ns.is_empty() && rt.namespaced).then(|| ns.to_string()),
            labels,
            fields: FieldSelector::default(),
        };
        Ok(self
            .list_in(rt, &filter)
            .0
            .into_iter()
            .map(|o| Self::at_version(o, api_version))
            .collect())
    }

    /// Replace an object, status included (resourceVersion checked when present).
    pub fn update(&self, obj: Value) -> Result<Value, ApiError> {
        let (rt, ns) = Self::resolve_object(&obj)?;
        let name = meta_str(&obj, "name").unwrap_or("").to_string();
        self.update_in(rt, &ns, &name, obj, WriteMode::Admin)
    }

    /// Merge-patch an object, status included.
    pub fn patch_merge(
        &self,
        api_version: &str,
        kind_or_resource: &str,
        ns: &str,
        name: &str,
        patch_body: &Value,
    ) -> Result<Value, ApiError> {
        let rt = Self::resolve(api_version, kind_or_resource)?;
        self.patch_in(rt, ns, name, PatchKind::Merge, patch_body, WriteMode::Admin)
    }

    /// Delete with API semantics (finalizers respected). `Ok(Some(obj))` when the object
    /// stays (deletionTimestamp set), `Ok(None)` when it is gone.
    pub fn delete(
        &self,
        api_version: &str,
        kind_or_resource: &str,
        ns: &str,
        name: &str,
    ) -> Result<Option<Value>, ApiError> {
        let rt = Self::resolve(api_version, kind_or_resource)?;
        self.delete_in(rt, ns, name, &Preconditions::default())?;
        Ok(self.get_in(rt, ns, name).ok())
    }

    /// Remove an object immediately, ignoring its finalizers (like etcd surgery).
    pub fn force_remove(
        &self,
        api_version: &str,
        kind_or_resource: &str,
        ns: &str,
        name: &str,
    ) -> Result<Value, ApiError> {
        let rt = Self::resolve(api_version, kind_or_resource)?;
        let mut st = self.lock();
        let key = State::key(rt, ns, name);
        let r = match st.objects.remove(&key) {
            Some(prev) => {
                let mut obj = prev.clone();
                let rv = st.bump();
                meta_mut(&mut obj).insert("resourceVersion".into(), json!(rv.to_string()));
                let limit = self.inner.config.history_limit;
                st.record(limit, EventType::Deleted, rt, &key, obj.clone(), Some(prev));
                Ok(obj)
            }
            None => Err(qualified_err_not_found(rt, name)),
        };
        self.finish(st);
        r
    }
}
