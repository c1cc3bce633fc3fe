//! `names` — every `tfops.dev/*` name helm-tfops writes or reads, and the tofu-controller /
//! Flux names it talks to (`infra.contrib.fluxcd.io/v1alpha2` `Terraform`, its finalizers and
//! the reconcile request annotation). One definition each; no string literal elsewhere.

// ---- tfops.dev: our API group --------------------------------------------------------------

/// apiVersion of `TerraformModule` declarations and of `status -o json` reports.
pub const TFOPS_API_VERSION: &str = "tfops.dev/v1alpha1";
/// Kind of a module declaration in a chart.
pub const MODULE_KIND: &str = "TerraformModule";
/// Prefix shared by every tfops.dev name (used to find candidate documents fast).
pub const TFOPS_PREFIX: &str = "tfops.dev/";

/// Label tying every generated or adopted object to its Helm release.
pub const LABEL_RELEASE: &str = "tfops.dev/release";
/// Label naming the `TerraformModule` an object was generated from.
pub const LABEL_MODULE: &str = "tfops.dev/module";
/// Label naming the role of a generated object (source, terraform, runner-sa…).
pub const LABEL_COMPONENT: &str = "tfops.dev/component";
/// Annotation: SHA-256 of the declaration a CR was generated from.
pub const ANN_SPEC_SHA256: &str = "tfops.dev/spec-sha256";
/// Annotation: `destroy` | `retain`.
pub const ANN_UNINSTALL_POLICY: &str = "tfops.dev/uninstall-policy";
/// Annotation: `orphan` | `force` | `block`.
pub const ANN_ON_FAILURE: &str = "tfops.dev/on-failure";
/// Annotation: retries after the first failed destroy (e.g. `"3"`).
pub const ANN_RETRIES: &str = "tfops.dev/retries";
/// Annotation: Go duration, the longest the guard spends on the CR (e.g. `"10m"`).
pub const ANN_TIMEOUT: &str = "tfops.dev/timeout";
/// Annotation (optional): `"true"`/`"false"`, whether the guard may force-unlock the state.
pub const ANN_FORCE_UNLOCK: &str = "tfops.dev/force-unlock";
/// Annotation: `hook` | `client`, which guard protects the CR.
pub const ANN_GUARD: &str = "tfops.dev/guard";
/// Annotation: the guard's persisted progress on a CR (JSON of [`crate::Progress`]).
pub const ANN_GUARD_PROGRESS: &str = "tfops.dev/guard-progress";
/// Annotation on exported / recorded objects whose secret values were left out.
pub const ANN_REDACTED: &str = "tfops.dev/redacted";

/// Secret `type` and label of ledger entries (label value = format version).
pub const LEDGER: &str = "tfops.dev/ledger";
/// Secret `type` and label of tfstate part Secrets (label value = the entry's Secret).
pub const LEDGER_PART: &str = "tfops.dev/ledger-part";
/// Ledger label: namespace of the CR the entry is about.
pub const LABEL_CR_NAMESPACE: &str = "tfops.dev/cr-namespace";
/// Ledger label: `orphaned` | `force-removed`.
pub const LABEL_DECISION: &str = "tfops.dev/decision";
/// Label on objects re-created by `orphans destroy`: the ledger entry they clean up.
pub const LABEL_CLEANUP_OF: &str = "tfops.dev/cleanup-of";

// ---- tofu-controller (flux-iac/tofu-controller v0.16.5) -------------------------------------

/// API group of tofu-controller CRs.
pub const TF_GROUP: &str = "infra.contrib.fluxcd.io";
/// Served storage version we talk to.
pub const TF_VERSION: &str = "v1alpha2";
/// `apiVersion` of `Terraform` objects.
pub const TF_API_VERSION: &str = "infra.contrib.fluxcd.io/v1alpha2";
/// Kind.
pub const TF_KIND: &str = "Terraform";
/// Plural resource name.
pub const TF_PLURAL: &str = "terraforms";
/// tofu-controller's own finalizer (stays until the destroy succeeds).
pub const TF_FINALIZER: &str = "finalizers.tf.contrib.fluxcd.io";
/// Prefix of the finalizers a dependant puts on its dependencies (`tf.dependency.of.<name>`).
pub const TF_DEPENDENCY_OF_PREFIX: &str = "tf.dependency.of.";
/// Default runner ServiceAccount (`spec.serviceAccountName` CRD default).
pub const TF_DEFAULT_RUNNER_SA: &str = "tf-runner";
/// `spec.approvePlan` value of auto-apply mode.
pub const APPROVE_PLAN_AUTO: &str = "auto";
/// `spec.approvePlan` value of drift-detection-only mode.
pub const APPROVE_PLAN_DISABLE: &str = "disable";

/// tofu-controller's leader-election Lease (`cmd/manager/main.go` line 174, v0.16.5).
pub const TF_LEADER_LEASE: &str = "1953de50.contrib.fluxcd.io";

/// Flux annotation that requests a reconcile (echoed in `status.lastHandledReconcileAt`).
pub const REQUESTED_AT: &str = "reconcile.fluxcd.io/requestedAt";
/// API group of Flux sources.
pub const SOURCE_GROUP: &str = "source.toolkit.fluxcd.io";

/// The finalizer a dependant named `dependant` puts on its dependencies.
pub fn dependency_finalizer(dependant: &str) -> String {
    format!("{TF_DEPENDENCY_OF_PREFIX}{dependant}")
}

/// Whether `finalizer` is one of tofu-controller's (its own or a `tf.dependency.of.*`).
pub fn is_controller_finalizer(finalizer: &str) -> bool {
    finalizer == TF_FINALIZER || finalizer.starts_with(TF_DEPENDENCY_OF_PREFIX)
}

/// Plural of a Flux source kind we know (`GitRepository`, `OCIRepository`, `Bucket`).
pub fn source_plural(kind: &str) -> Option<&'static str> {
    match kind {
        "GitRepository" => Some("gitrepositories"),
        "OCIRepository" => Some("ocirepositories"),
        "Bucket" => Some("buckets"),
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn api_version_is_group_and_version() {
        assert_eq!(TF_API_VERSION, format!("{TF_GROUP}/{TF_VERSION}"));
    }

    #[test]
    fn controller_finalizers() {
        assert!(is_controller_finalizer(TF_FINALIZER));
        assert!(is_controller_finalizer(&dependency_finalizer("app")));
        assert!(!is_controller_finalizer("kubernetes"));
        assert_eq!(dependency_finalizer("app"), "tf.dependency.of.app");
    }

    #[test]
    fn every_tfops_name_is_in_the_group() {
        for n in [
            LABEL_RELEASE,
            LABEL_MODULE,
            LABEL_COMPONENT,
            ANN_SPEC_SHA256,
            ANN_UNINSTALL_POLICY,
            ANN_ON_FAILURE,
            ANN_RETRIES,
            ANN_TIMEOUT,
            ANN_FORCE_UNLOCK,
            ANN_GUARD,
            ANN_GUARD_PROGRESS,
            ANN_REDACTED,
            LEDGER,
            LEDGER_PART,
            LABEL_CR_NAMESPACE,
            LABEL_DECISION,
            LABEL_CLEANUP_OF,
        ] {
            assert!(n.starts_with(TFOPS_PREFIX), "{n}");
        }
        assert_eq!(source_plural("OCIRepository"), Some("ocirepositories"));
        assert_eq!(source_plural("HelmRepository"), None);
    }
}
