//! Static resource registry: every API resource the test server knows (group, versions,
//! plural, kind, scope, status subresource). Unknown resources are answered with 404.

/// One API resource type served by the test cluster.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ResourceType {
    /// API group ("" for the core group).
    pub group: &'static str,
    /// Served versions; the first is the preferred one.
    pub versions: &'static [&'static str],
    /// Plural resource name used in URLs.
    pub resource: &'static str,
    /// Singular lower-case name.
    pub singular: &'static str,
    /// Kind.
    pub kind: &'static str,
    /// Namespace-scoped (true) or cluster-scoped (false).
    pub namespaced: bool,
    /// Has a `status` subresource: the main endpoint ignores status changes.
    pub status: bool,
    /// Short names (discovery only).
    pub short_names: &'static [&'static str],
}

impl ResourceType {
    /// `group/version` (or `version` for the core group) for the given version.
    pub fn api_version(&self, version: &str) -> String {
        if self.group.is_empty() {
            version.to_string()
        } else {
            format!("{}/{}", self.group, version)
        }
    }

    /// `group/version` of the preferred version.
    pub fn preferred_api_version(&self) -> String {
        self.api_version(self.versions.first().copied().unwrap_or("v1"))
    }

    /// `resource.group` as Kubernetes spells it in error messages (`secrets`, `terraforms.infra.contrib.fluxcd.io`).
    pub fn qualified(&self) -> String {
        if self.group.is_empty() {
            self.resource.to_string()
        } else {
            format!("{}.{}", self.resource, self.group)
        }
    }

    /// Whether this type serves `version`.
    pub fn serves(&self, version: &str) -> bool {
        self.versions.contains(&version)
    }
}

#[allow(clippy::too_many_arguments)]
const fn rt(
    group: &'static str,
    versions: &'static [&'static str],
    resource: &'static str,
    singular: &'static str,
    kind: &'static str,
    namespaced: bool,
    status: bool,
    short_names: &'static [&'static str],
) -> ResourceType {
    ResourceType {
        group,
        versions,
        resource,
        singular,
        kind,
        namespaced,
        status,
        short_names,
    }
}

/// Every resource the test cluster serves.
pub static RESOURCES: &[ResourceType] = &[
    rt(
        "",
        &["v1"],
        "namespaces",
        "namespace",
        "Namespace",
        false,
        true,
        &["ns"],
    ),
    rt("", &["v1"], "secrets", "secret", "Secret", true, false, &[]),
    rt(
        "",
        &["v1"],
        "serviceaccounts",
        "serviceaccount",
        "ServiceAccount",
        true,
        false,
        &["sa"],
    ),
    rt(
        "",
        &["v1"],
        "configmaps",
        "configmap",
        "ConfigMap",
        true,
        false,
        &["cm"],
    ),
    rt(
        "",
        &["v1"],
        "events",
        "event",
        "Event",
        true,
        false,
        &["ev"],
    ),
    rt("", &["v1"], "pods", "pod", "Pod", true, true, &["po"]),
    rt(
        "",
        &["v1"],
        "services",
        "service",
        "Service",
        true,
        true,
        &["svc"],
    ),
    rt(
        "events.k8s.io",
        &["v1"],
        "events",
        "event",
        "Event",
        true,
        false,
        &["ev"],
    ),
    rt("batch", &["v1"], "jobs", "job", "Job", true, true, &[]),
    rt(
        "rbac.authorization.k8s.io",
        &["v1"],
        "roles",
        "role",
        "Role",
        true,
        false,
        &[],
    ),
    rt(
        "rbac.authorization.k8s.io",
        &["v1"],
        "rolebindings",
        "rolebinding",
        "RoleBinding",
        true,
        false,
        &[],
    ),
    rt(
        "rbac.authorization.k8s.io",
        &["v1"],
        "clusterroles",
        "clusterrole",
        "ClusterRole",
        false,
        false,
        &[],
    ),
    rt(
        "rbac.authorization.k8s.io",
        &["v1"],
        "clusterrolebindings",
        "clusterrolebinding",
        "ClusterRoleBinding",
        false,
        false,
        &[],
    ),
    rt(
        "apps",
        &["v1"],
        "deployments",
        "deployment",
        "Deployment",
        true,
        true,
        &["deploy"],
    ),
    rt(
        "coordination.k8s.io",
        &["v1"],
        "leases",
        "lease",
        "Lease",
        true,
        false,
        &[],
    ),
    rt(
        "apiextensions.k8s.io",
        &["v1"],
        "customresourcedefinitions",
        "customresourcedefinition",
        "CustomResourceDefinition",
        false,
        true,
        &["crd", "crds"],
    ),
    rt(
        "infra.contrib.fluxcd.io",
        &["v1alpha2", "v1alpha1"],
        "terraforms",
        "terraform",
        "Terraform",
        true,
        true,
        &["tf"],
    ),
    rt(
        "source.toolkit.fluxcd.io",
        &["v1", "v1beta2"],
        "ocirepositories",
        "ocirepository",
        "OCIRepository",
        true,
        true,
        &["ocirepo"],
    ),
    rt(
        "source.toolkit.fluxcd.io",
        &["v1", "v1beta2"],
        "gitrepositories",
        "gitrepository",
        "GitRepository",
        true,
        true,
        &["gitrepo"],
    ),
    rt(
        "source.toolkit.fluxcd.io",
        &["v1", "v1beta2"],
        "buckets",
        "bucket",
        "Bucket",
        true,
        true,
        &[],
    ),
];

/// Split an `apiVersion` into (group, version).
pub fn split_api_version(api_version: &str) -> (&str, &str) {
    match api_version.split_once('/') {
        Some((g, v)) => (g, v),
        None => ("", api_version),
    }
}

/// Find a resource by group, version and plural (URL form).
pub fn by_resource(group: &str, version: &str, resource: &str) -> Option<&'static ResourceType> {
    RESOURCES
        .iter()
        .find(|r| r.group == group && r.resource == resource && r.serves(version))
}

/// Find a resource by `apiVersion` and either its kind (`Secret`), plural (`secrets`) or
/// singular (`secret`) name.
pub fn lookup(api_version: &str, kind_or_resource: &str) -> Option<&'static ResourceType> {
    let (group, version) = split_api_version(api_version);
    RESOURCES.iter().find(|r| {
        r.group == group
            && r.serves(version)
            && (r.kind == kind_or_resource
                || r.resource == kind_or_resource
                || r.singular == kind_or_resource.to_ascii_lowercase())
    })
}

/// Find a resource by `apiVersion` + kind only.
pub fn by_kind(api_version: &str, kind: &str) -> Option<&'static ResourceType> {
    let (group, version) = split_api_version(api_version);
    RESOURCES
        .iter()
        .find(|r| r.group == group && r.kind == kind && r.serves(version))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn lookups() {
        let tf = lookup("infra.contrib.fluxcd.io/v1alpha2", "Terraform").map(|r| r.resource);
        assert_eq!(tf, Some("terraforms"));
        assert!(lookup("infra.contrib.fluxcd.io/v1alpha1", "terraforms").is_some());
        assert!(lookup("infra.contrib.fluxcd.io/v9", "terraforms").is_none());
        let sec = lookup("v1", "secret");
        assert_eq!(sec.map(|r| r.kind), Some("Secret"));
        assert_eq!(
            by_resource("", "v1", "namespaces").map(|r| r.namespaced),
            Some(false)
        );
        assert_eq!(by_kind("batch/v1", "Job").map(|r| r.status), Some(true));
        assert!(by_resource("", "v1", "widgets").is_none());
        assert_eq!(
            lookup("events.k8s.io/v1", "Event").map(|r| r.qualified()),
            Some("events.events.k8s.io".to_string())
        );
    }
}
