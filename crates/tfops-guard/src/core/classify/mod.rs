//! `classify` — the failure classifier: (Ready condition reason, message) of a `Terraform` CR
//! → [`FailureClass`] plus the rule that matched, with its provider, error code, rationale and
//! source (shown by `explain`).
//!
//! Pure, no I/O. The built-in knowledge base ([`rules::BUILTIN`]) is keyed on what providers
//! actually return — AWS error codes, googleapi `Error NNN` reasons and gRPC codes, Azure ARM
//! codes, Kubernetes API reasons, Terraform/OpenTofu core and tofu-controller messages. It is
//! never compiled as a whole: the build script splits each pattern into its alternation
//! branches and finds the literals every match of a branch must contain (`prefilter.rs`); a
//! classification looks for those literals in the message and compiles (once per process, on
//! first use) and runs only the branches they point at, in table order. The first
//! classification of a process (all a `tfops explain` does) costs tens to hundreds of
//! microseconds, not the 15–25 ms compiling the ≈80 patterns as one `RegexSet` took. Messages
//! are first normalised ([`normalise::normalise`]): diagnostic gutters, context lines, request
//! ids and gRPC `Unknown` wrappers do not stop a rule from matching.
//!
//! **Rule of thumb for the class.** *Transient* = goes away by itself within a destroy's
//! patience: throttling, 5xx, timeouts on a reachable API, a local state file locked by a
//! process running now, a resource mid-transition, another operation running, or a holder that
//! the text shows going away (`ResourceGroupBeingDeleted`, "is being deleted", EKS node groups
//! still attached to their cluster). An in-use error (`DependencyViolation`,
//! `resourceInUseByAnotherResource`, `InUse…CannotBeDeleted`) whose text does not show the
//! holder going away leans permanent: the provider has usually retried it already (AWS for its
//! whole delete timeout) and the guard removes a release's dependants first, so the holder is
//! outside this destroy.
//! *Permanent* = needs a human or a config change: credentials,
//! permissions, deletion protection, management locks, containers holding content Terraform
//! did not put there (`BucketNotEmpty`, `RepositoryNotEmptyException`, a BigQuery dataset that
//! still holds tables, a resource group that still contains resources), IAM entities with
//! policies attached outside the module, a network used from another project, a removed
//! provider configuration, a provider that cannot reach its API at all (connection refused, no
//! route, a name that does not resolve), a state lock that can no longer be released — and a
//! held state lock: tofu-controller keeps one state per `Terraform`, runs one runner at a time
//! and force-unlocks only when `spec.tfstate.forceUnlock` says so, so a lock that blocks a
//! destroy is a dead run's (in the guard's context it is transient when the controller or the
//! guard will release it: [`Classification::in_context`]). When a code is ambiguous — one
//! report each way, or a text that cannot tell a sibling of the same destroy from an outside
//! holder after the provider's own retries — the rule leans permanent: a permanent error
//! retried burns the whole budget before orphaning, which is worse than orphaning early (an
//! orphan is a ledger entry `helm tfops orphans destroy` retries). An error no rule knows leans
//! permanent for the same reason (rule `unrecognised-error`); only a message that names no
//! cause at all (empty, or nothing but "failed" / "exit status" words) is `unknown`, which the
//! guard retries like a transient failure. *Blocked by missing dependency* = the controller
//! cannot start (source, vars Secret, runner ServiceAccount, dependants). `ArtifactFailed` and
//! `VarsGenerationFailed` are classified by their message first (tofu-controller also sets them
//! on download and runner gRPC failures); the reason alone is only the last resort.
//!
//! Catalog rules (JSON `[{"pattern", "reason"?, "class", "why"?}]`, from catalog config
//! `guard.classifierRules` or env `TFOPS_CLASSIFIER_RULES`) come before the built-in table;
//! their patterns are size-limited ([`catalog`]).

use std::sync::LazyLock;

use regex::Regex;
use serde::{Deserialize, Serialize};

pub mod catalog;
pub mod check;
pub mod holder;
pub mod normalise;
mod prefilter;
pub mod rules;

pub use catalog::{ClassifierError, RuleSpec, ENV_CLASSIFIER_RULES};
pub use tfops_api::FailureClass;

/// Where a rule comes from.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum RuleOrigin {
    /// The catalog / `TFOPS_CLASSIFIER_RULES`.
    Catalog,
    /// The built-in table.
    BuiltIn,
}

/// A compiled rule.
#[derive(Debug, Clone)]
pub struct Rule {
    /// Short name shown by `explain` (built-in: e.g. `throttling`; catalog: `catalog[2]`).
    pub name: String,
    pub origin: RuleOrigin,
    pub reason: Option<String>,
    /// The compiled pattern of a catalog rule (built-in rules are matched branch by branch
    /// behind a literal prefilter, compiled on first use; their pattern text is in
    /// [`Rule::pattern_text`]).
    pub pattern: Option<Regex>,
    pub class: FailureClass,
    /// Provider the code belongs to (`aws`, `google`, …; `catalog` for catalog rules).
    pub provider: String,
    /// Error code / reason the rule keys on.
    pub code: String,
    /// One line: why this class.
    pub why: String,
    /// Documentation or public issue (built-in rules; catalog rules may leave it empty).
    pub source: String,
    builtin_pattern: Option<&'static str>,
    guard: Option<fn(&str) -> bool>,
}

impl Rule {
    /// The rule's regex as written (catalog or built-in), if it has one.
    pub fn pattern_text(&self) -> Option<&str> {
        self.pattern
            .as_ref()
            .map(Regex::as_str)
            .or(self.builtin_pattern)
    }

    fn matched(&self) -> MatchedRule {
        MatchedRule {
            name: self.name.clone(),
            origin: self.origin,
            reason: self.reason.clone(),
            pattern: self.pattern_text().map(str::to_string),
            provider: self.provider.clone(),
            code: self.code.clone(),
            why: self.why.clone(),
            source: (!self.source.is_empty()).then(|| self.source.clone()),
        }
    }
}

/// The rule that decided a classification (none when nothing matched → unknown).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct MatchedRule {
    pub name: String,
    pub origin: RuleOrigin,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub reason: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub pattern: Option<String>,
    /// Provider the matched code belongs to.
    #[serde(default)]
    pub provider: String,
    /// The provider's error code / reason.
    #[serde(default)]
    pub code: String,
    /// Why this class (one line).
    #[serde(default)]
    pub why: String,
    /// Where the code is documented or was seen.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub source: Option<String>,
}

/// Result of classifying one failure.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Classification {
    pub class: FailureClass,
    /// `None` when no rule matched (class is then `unknown`).
    pub rule: Option<MatchedRule>,
}

impl Classification {
    /// Name of the matched rule, or `no rule matched`.
    pub fn rule_name(&self) -> &str {
        self.rule
            .as_ref()
            .map(|r| r.name.as_str())
            .unwrap_or("no rule matched")
    }

    /// Matched by one of the built-in rules `names`.
    fn built_in(&self, names: &[&str]) -> bool {
        self.rule
            .as_ref()
            .is_some_and(|m| m.origin == RuleOrigin::BuiltIn && names.contains(&m.name.as_str()))
    }

    /// A permanent class from a built-in in-use rule ([`IN_USE_RULES`]): the failures whose
    /// holders the guard checks ([`Self::in_context`]).
    pub fn is_in_use(&self) -> bool {
        self.class == FailureClass::Permanent && self.built_in(&IN_USE_RULES)
    }

    /// The class once what the guard knows about the failing `Terraform` beyond its message is
    /// taken into account. A held state lock leans permanent from its text alone (nothing
    /// releases a dead runner's lock), but it is transient when something other than a human
    /// will release it ([`LockRelease`]). An in-use error leans permanent from its text alone,
    /// but it is transient when the holder it names is managed by a `Terraform` this uninstall
    /// is destroying ([`FailureContext::holder_in_destroy`]): it goes away with that destroy.
    #[must_use]
    pub fn in_context(mut self, cx: FailureContext) -> Self {
        let why = match (cx.lock_released_by, cx.holder_in_destroy) {
            (Some(by), _) if self.built_in(&LOCK_RULES) => Some(by.why().to_string()),
            (_, Some(h)) if self.is_in_use() => {
                Some(format!(
                    "the holder {} is managed by Terraform {}, which this uninstall is destroying: it goes away with that destroy, so the next attempt can pass",
                    h.holder, h.terraform
                ))
            }
            _ => None,
        };
        if let Some(why) = why {
            self.class = FailureClass::Transient;
            if let Some(m) = self.rule.as_mut() {
                m.why = why;
            }
        }
        self
    }
}

/// Built-in rules that recognise a held state lock.
const LOCK_RULES: [&str; 2] = ["lock-held", "state-lock"];

/// Built-in permanent rules that recognise a resource still in use by another (whose holder
/// the text may name: [`holder::holders`]).
pub const IN_USE_RULES: [&str; 12] = [
    "still-in-use",
    "security-group-dependency-after-retry",
    "gce-network-used-by-firewall",
    "gce-instance-template-in-use",
    "azure-nic-attached-to-vm",
    "azure-subnet-used-by-cluster-nic",
    "neutron-in-use",
    "elb-target-group-in-use",
    "acm-certificate-in-use-after-retry",
    "elb-used-by-endpoint-service",
    "service-networking-in-use",
    "iam-delete-conflict",
];

/// What the guard knows about a failing `Terraform` beyond its Ready condition.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct FailureContext {
    /// Who releases a held state lock without a human, if anyone.
    pub lock_released_by: Option<LockRelease>,
    /// A holder the failure names that the state of a `Terraform` being destroyed by the same
    /// uninstall (this one included) manages.
    pub holder_in_destroy: Option<HolderInDestroy>,
}

/// A holder named by an in-use failure, managed by a `Terraform` the uninstall is destroying.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct HolderInDestroy {
    /// The holder's identifier as the message names it ([`holder::canonical`]).
    pub holder: String,
    /// `namespace/name` of the `Terraform` whose state manages it.
    pub terraform: String,
}

/// Who releases a held state lock without a human.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum LockRelease {
    /// `spec.tfstate.forceUnlock: auto`: tofu-controller force-unlocks the pending lock at the
    /// start of its next reconcile, the destroy's included (v0.16.5
    /// `controllers/tf_controller_backend.go` 408–431, called from `tf_controller_finalizer.go` 49).
    Controller,
    /// `tfops.dev/force-unlock` allows the guard to, once the holder is provably gone, and that
    /// is not known yet.
    Guard,
}

impl LockRelease {
    fn why(self) -> &'static str {
        match self {
            LockRelease::Controller => "spec.tfstate.forceUnlock is auto: tofu-controller force-unlocks the pending state lock at the start of its next reconcile, so the next attempt runs",
            LockRelease::Guard => "tfops.dev/force-unlock allows the guard to force-unlock this lock once its holder (this CR's earlier runner pod) is provably gone: the guard waits for that evidence",
        }
    }
}

/// The built-in table, ready to match: rules in order, and each rule's pattern split into
/// branches behind their literals ([`prefilter::Pattern`]). Built-in patterns are ASCII-only
/// (error codes and English messages), so they are matched case-insensitively without Unicode
/// tables against the message's bytes. Building this costs microseconds; a branch is compiled
/// the first time a message contains one of its literals.
#[derive(Debug)]
struct Compiled {
    rules: Vec<Rule>,
    /// For each rule, its pattern (None: no pattern, the reason alone decides).
    patterns: Vec<Option<prefilter::Pattern>>,
}

fn compile_builtin() -> Compiled {
    let mut rules = Vec::with_capacity(rules::BUILTIN.len());
    let mut patterns = Vec::with_capacity(rules::BUILTIN.len());
    for (index, d) in rules::BUILTIN.iter().enumerate() {
        patterns.push(d.pattern.map(|p| prefilter::Pattern::new(p, index)));
        rules.push(Rule {
            name: d.name.to_string(),
            origin: RuleOrigin::BuiltIn,
            reason: d.reason.map(str::to_string),
            pattern: None,
            class: d.class,
            provider: d.provider.to_string(),
            code: d.code.to_string(),
            why: d.why.to_string(),
            source: d.source.to_string(),
            builtin_pattern: d.pattern,
            guard: d.guard,
        });
    }
    Compiled { rules, patterns }
}

static BUILTIN: LazyLock<Compiled> = LazyLock::new(compile_builtin);

/// The failure classifier: catalog rules first, then the built-in table. The built-in table is
/// prepared once per process (its branches compiled on first use); building a `Classifier`
/// only compiles its catalog rules.
#[derive(Debug, Clone, Default)]
pub struct Classifier {
    catalog: Vec<Rule>,
}

impl Classifier {
    /// Only the built-in table.
    pub fn builtin() -> Self {
        Classifier::default()
    }

    /// Prepare the built-in table and the normaliser now (otherwise on first use). Branches of
    /// the table are still compiled only when a message first needs them.
    pub fn warm_up() {
        LazyLock::force(&BUILTIN);
        let _ = normalise::normalise("");
    }

    /// Catalog rules (checked first) followed by the built-in table.
    pub fn with_rules(specs: &[RuleSpec], source_name: &str) -> Result<Self, ClassifierError> {
        Ok(Classifier {
            catalog: catalog::compile(specs, source_name)?,
        })
    }

    /// Parse a JSON array of rules (the `TFOPS_CLASSIFIER_RULES` format); `source_name` is
    /// used in errors (e.g. `env TFOPS_CLASSIFIER_RULES`). Empty / whitespace input = no rules.
    pub fn from_json(json: &str, source_name: &str) -> Result<Self, ClassifierError> {
        Ok(Classifier {
            catalog: catalog::parse(json, source_name)?,
        })
    }

    /// All rules in evaluation order (catalog, then built-in).
    pub fn rules(&self) -> impl Iterator<Item = &Rule> {
        self.catalog.iter().chain(BUILTIN.rules.iter())
    }

    /// Classify a failure from its Ready condition reason and message.
    pub fn classify(&self, reason: &str, message: &str) -> Classification {
        let normal = normalise::normalise(message);
        let found = |rule: &Rule| Classification {
            class: rule.class,
            rule: Some(rule.matched()),
        };
        for rule in &self.catalog {
            if rule.reason.as_deref().is_some_and(|r| r != reason) {
                continue;
            }
            if rule
                .pattern
                .as_ref()
                .is_none_or(|p| p.is_match(message) || p.is_match(&normal))
            {
                return found(rule);
            }
        }
        let compiled = &*BUILTIN;
        let hay = prefilter::Haystack::new(&normal);
        for (rule, pattern) in compiled.rules.iter().zip(&compiled.patterns) {
            if rule.reason.as_deref().is_some_and(|r| r != reason) {
                continue;
            }
            if pattern.as_ref().is_none_or(|p| p.is_match(&hay))
                && rule.guard.is_none_or(|g| g(&normal))
            {
                return found(rule);
            }
        }
        Classification {
            class: FailureClass::Unknown,
            rule: None,
        }
    }

    /// The text of `message` (normalised) that made `classification`'s rule match, for
    /// `explain` — which of the codes a rule lists (`A/B/C`) answered. `None` for a built-in
    /// rule that keys on one code (its code says it), a reason-only rule, or when nothing
    /// matched. A branch matched through a regex is compiled again with offsets (up to a few
    /// hundred microseconds), which is why a one-code rule is not looked up.
    pub fn matched_text(&self, message: &str, classification: &Classification) -> Option<String> {
        let m = classification.rule.as_ref()?;
        let lists_codes = m.code.contains('/') && !m.code.contains(" / ");
        if m.origin == RuleOrigin::BuiltIn && !lists_codes {
            return None;
        }
        let normal = normalise::normalise(message);
        let found = match m.origin {
            RuleOrigin::Catalog => {
                let rule = self.catalog.iter().find(|r| r.name == m.name)?;
                let p = rule.pattern.as_ref()?;
                p.find(&normal)
                    .map(|f| f.as_str().to_owned())
                    .or_else(|| p.find(message).map(|f| f.as_str().to_owned()))
            }
            RuleOrigin::BuiltIn => {
                let compiled = &*BUILTIN;
                let index = compiled.rules.iter().position(|r| r.name == m.name)?;
                let pattern = compiled.patterns.get(index)?.as_ref()?;
                pattern
                    .matched(&prefilter::Haystack::new(&normal))
                    .map(str::to_owned)
            }
        }?;
        Some(shorten(&found, 160))
    }
}

/// `text` cut to at most `max` characters, with `…` when cut.
fn shorten(text: &str, max: usize) -> String {
    match text.char_indices().nth(max) {
        Some((cut, _)) => format!("{}…", &text[..cut]),
        None => text.to_owned(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::strategy::Strategy;

    #[test]
    fn every_builtin_pattern_compiles_and_is_documented() {
        for d in rules::BUILTIN {
            if let Some(p) = d.pattern {
                assert!(prefilter::compile(p).is_ok(), "{}: {p}", d.name);
            }
            assert!(d.source.starts_with("https://"), "{}: source", d.name);
            assert!(!d.why.is_empty() && !d.code.is_empty(), "{}", d.name);
        }
        assert_eq!(BUILTIN.rules.len(), rules::BUILTIN.len());
        assert_eq!(BUILTIN.patterns.len(), rules::BUILTIN.len());
        let mut names: Vec<_> = rules::BUILTIN.iter().map(|d| d.name).collect();
        names.sort_unstable();
        names.dedup();
        assert_eq!(names.len(), rules::BUILTIN.len(), "rule names are unique");
    }

    #[test]
    fn matched_rule_carries_provider_code_why_and_source() {
        let r = Classifier::builtin().classify(
            "TFExecApplyFailed",
            "Error: deleting S3 Bucket (x): BucketNotEmpty: The bucket you tried to delete is not empty",
        );
        assert_eq!(r.class, FailureClass::Permanent);
        let m = r.rule.unwrap();
        assert_eq!(
            (m.name.as_str(), m.provider.as_str(), m.code.as_str()),
            ("bucket-not-empty", "aws", "BucketNotEmpty")
        );
        assert!(m.why.contains("force_destroy"), "{}", m.why);
        assert!(m
            .source
            .unwrap()
            .starts_with("https://docs.aws.amazon.com/"));
    }

    #[test]
    fn artifact_and_vars_reasons_are_classified_by_message_first() {
        let c = Classifier::builtin();
        let t = c.classify("ArtifactFailed", "rpc error: code = Unavailable desc = connection error: desc = \"transport: Error while dialing: dial tcp 10.244.0.12:30000: connect: connection refused\"");
        assert_eq!(
            (t.class, t.rule_name()),
            (FailureClass::Transient, "runner-grpc-unavailable")
        );
        let t = c.classify("ArtifactFailed", "failed to download artifact, error: Get \"http://source-controller.flux-system.svc.cluster.local./gitrepository/x/y/z.tar.gz\": context deadline exceeded");
        assert_eq!(t.class, FailureClass::Transient);
        let t = c.classify(
            "VarsGenerationFailed",
            "rpc error: code = DeadlineExceeded desc = context deadline exceeded",
        );
        assert_eq!(t.class, FailureClass::Transient);
        let b = c.classify(
            "VarsGenerationFailed",
            "rpc error: code = Unknown desc = Secret \"db-creds\" not found",
        );
        assert_eq!(
            (b.class, b.rule_name()),
            (FailureClass::BlockedByMissingDependency, "vars-missing")
        );
        let b = c.classify("ArtifactFailed", "Source is not ready, artifact not found");
        assert_eq!(b.class, FailureClass::BlockedByMissingDependency);
        let b = c.classify("ArtifactFailed", "something new");
        assert_eq!(
            (b.class, b.rule_name()),
            (FailureClass::BlockedByMissingDependency, "source-failed")
        );
    }

    #[test]
    fn gce_in_use_depends_on_the_project_of_the_user() {
        let c = Classifier::builtin();
        let same = "googleapi: Error 400: The network resource 'projects/a/global/networks/n' is already being used by 'projects/a/zones/z/instances/i', resourceInUseByAnotherResource";
        let other = "googleapi: Error 400: The network resource 'projects/host-net-prod/global/networks/n' is already being used by 'projects/team-a-service/zones/z/instances/i', resourceInUseByAnotherResource";
        // Redacted or placeholder ids (too short to be a project id) say nothing about the user.
        let redacted = "googleapi: Error 400: The network resource 'projects/a/global/networks/n' is already being used by 'projects/b/zones/z/instances/i', resourceInUseByAnotherResource";
        // Both lean permanent; only a real other project says *why* (Shared VPC).
        for m in [redacted, same] {
            let r = c.classify("TFExecApplyFailed", m);
            assert_eq!(
                (r.class, r.rule_name()),
                (FailureClass::Permanent, "still-in-use")
            );
        }
        let o = c.classify("TFExecApplyFailed", other);
        assert_eq!(
            (o.class, o.rule_name()),
            (FailureClass::Permanent, "gce-used-by-other-project")
        );
    }

    #[test]
    fn in_use_is_not_always_transient() {
        let c = Classifier::builtin();
        // BigQuery answers resourceInUse for a dataset that still holds tables: permanent for
        // its own reason; a GCE resource used by another leans permanent (generic in-use).
        let bq = c.classify("TFExecApplyFailed", "Error: Error when reading or editing Dataset: googleapi: Error 400: Dataset gcp-project-name:test_cluster_dataset is still in use, resourceInUse");
        assert_eq!(
            (bq.class, bq.rule_name()),
            (FailureClass::Permanent, "bigquery-dataset-not-empty")
        );
        let gce = c.classify("TFExecApplyFailed", "Error: Error when reading or editing Subnetwork: googleapi: Error 400: The subnetwork resource 'projects/rnm-hostedsvcs-comsvcs-sq-7aea/regions/us-west1/subnetworks/s' is already being used by 'projects/rnm-hostedsvcs-comsvcs-sq-7aea/zones/us-west1-b/instances/i', resourceInUseByAnotherResource");
        assert_eq!(
            (gce.class, gce.rule_name()),
            (FailureClass::Permanent, "still-in-use")
        );
        // An ELB that backs a VPC endpoint service is not freed by the destroy.
        let elb = c.classify("TFExecApplyFailed", "Error deleting LB: ResourceInUse: Load balancer ZZZ cannot be deleted because it is currently associated with another service");
        assert_eq!(elb.class, FailureClass::Permanent);
    }

    #[test]
    fn marked_for_deletion_is_transient_only_for_the_resource_being_deleted() {
        let c = Classifier::builtin();
        // Azure: the VM is being deleted by this destroy; other operations wait for it.
        let vm = c.classify("TFExecApplyFailed", "Error: Error waiting for update of Network Interface \"nic\" (Resource Group \"rg\"): Code=\"OperationNotAllowed\" Message=\"Operation 'startTenantUpdate' is not allowed on VM 'vm' since the VM is marked for deletion. You can only retry the Delete operation (or wait for an ongoing one to complete).\" Details=[]");
        assert_eq!(vm.class, FailureClass::Transient);
        // AWS Secrets Manager: a secret scheduled for deletion stays so for days.
        let secret = c.classify("TFExecApplyFailed", "Error: error reading Secrets Manager Secret policy: InvalidRequestException: You can't perform this operation on the secret because it was marked for deletion.");
        assert_ne!(secret.class, FailureClass::Transient);
    }

    #[test]
    fn http_status_families_are_read_in_every_spelling() {
        let c = Classifier::builtin();
        let class = |m: &str| c.classify("TFExecApplyFailed", m).class;
        // 4xx after the URL it answered, opening the message, between colons: permanent
        for m in [
            "DELETE https://api.example.com/v1/things/42: 403 You do not have permission",
            "PUT https://ghe.example.com/api/v3/repos/o/r/actions/permissions: 409  []",
            "422 An enforced security configuration prevented the change",
            "Error: Error creating DNS Record: 403: Authentication error (10000)",
            "Error deleting bucket: Calling API: 422 Unprocessable Entity, status code 422",
        ] {
            assert_eq!(class(m), FailureClass::Permanent, "{m}");
        }
        // 5xx in the same spellings: transient; 429 stays throttling
        for m in [
            "DELETE https://api.example.com/v1/things/42: 502 Bad Gateway",
            "Error: unexpected response, status code: 503",
            "DELETE https://api.example.com/v1/things/42: 429 Too Many Requests",
        ] {
            assert_eq!(class(m), FailureClass::Transient, "{m}");
        }
        // a port is not a status: no route to the API at all, not a 4xx
        let r = Classifier::builtin().classify(
            "TFExecApplyFailed",
            "dial tcp [2606:4700:10::6814:565d]:443: connect: no route to host",
        );
        assert_eq!(r.rule_name(), "api-unreachable");
    }

    #[test]
    fn grpc_words_are_read_in_context() {
        let c = Classifier::builtin();
        let rule = |m: &str| {
            let r = c.classify("TFExecPlanFailed", m);
            (r.class, r.rule_name().to_string())
        };
        // Terraform's own diagnostic: the provider plugin died
        assert_eq!(
            rule("Error: rpc error: code = Unavailable desc = transport is closing").0,
            FailureClass::Permanent
        );
        // the runner's gRPC call: the runner pod went away
        assert_eq!(
            rule("Apply error: rpc error: code = Unavailable desc = transport is closing").0,
            FailureClass::Transient
        );
        // a long-running operation's gRPC code, bare or quoted (Eventarc), wins over the
        // generic words of its message
        assert_eq!(
            rule("Error: Error deleting Trigger: operation received error: error code \"7\", message: An internal error occurred."),
            (FailureClass::Permanent, "google-operation-permanent-code".to_string())
        );
        assert_eq!(
            rule("Error: Error waiting for Deleting Instance: Error code 13, message: an internal error has occurred"),
            (FailureClass::Permanent, "google-operation-permanent-code".to_string())
        );
        assert_eq!(
            rule("Error: waiting for Deleting Thing: error code \"14\", message: The service is currently unavailable."),
            (FailureClass::Transient, "google-operation-transient-code".to_string())
        );
        // "unavailable provider" is not a 503
        assert_eq!(
            rule("Failed to instantiate provider \"registry.terraform.io/hashicorp/azurerm\" to obtain schema: unavailable provider \"registry.terraform.io/hashicorp/azurerm\""),
            (FailureClass::Permanent, "dependency-lock-mismatch".to_string())
        );
    }

    #[test]
    fn an_explained_refusal_leans_permanent_unless_it_names_a_passing_cause() {
        let c = Classifier::builtin();
        let class = |m: &str| c.classify("TFExecApplyFailed", m).class;
        // ARM's JSON 409: a stated permanent cause wins over the Conflict catch-all
        assert_eq!(
            class(
                r#"unexpected status 409 with response: {"code":"Conflict","message":"The account is linked to a workspace so it cannot be deleted."}"#
            ),
            FailureClass::Permanent
        );
        // the same JSON 409 for a running operation stays transient
        assert_eq!(
            class(
                r#"unexpected status 409 with response: {"code":"Conflict","message":"Another operation is in progress on the resource."}"#
            ),
            FailureClass::Transient
        );
        // in use by a holder that is going away, mid-transition, or told to retry shortly:
        // transient
        for m in [
            "Subnet s is in use by /subscriptions/x/nic which is being deleted and cannot be deleted.",
            "Nic(s) in request is reserved for another Virtual Machine for 180 seconds. Please provide another nic(s) or retry after 180 seconds.",
            "Error waiting for internet gateway (igw-1) to detach: couldn't find resource",
            "Operation is not allowed: Another agentpool operation (np1 - Creating) is in progress, please wait for it to finish before starting a new operation.",
        ] {
            assert_eq!(class(m), FailureClass::Transient, "{m}");
        }
        // scheduled for deletion with a waiting period, or gone: permanent
        for m in [
            "KMSInvalidStateException: arn:aws:kms:eu-west-1:1:key/k is pending deletion.",
            "Error: uninstall: Release not loaded: web: release: not found",
            "Error: No valid token with ID 1234 found.",
        ] {
            assert_eq!(class(m), FailureClass::Permanent, "{m}");
        }
    }

    #[test]
    fn in_use_after_the_providers_own_wait_or_by_a_kept_holder_leans_permanent() {
        let c = Classifier::builtin();
        let rule = |m: &str| {
            let r = c.classify("TFExecApplyFailed", m);
            (r.class, r.rule_name().to_string())
        };
        // a holder this destroy keeps, or an in-use error reported after the provider's wait
        for (m, name) in [
            ("Error deleting Target Group: ResourceInUse: Target group 'arn:aws:elasticloadbalancing:eu-west-1:1:targetgroup/t/1' is currently in use by a listener or a rule", "elb-target-group-in-use"),
            ("Error: deleting Security Group (sg-1): DependencyViolation: resource sg-1 has a dependent object", "security-group-dependency-after-retry"),
            ("network.InterfacesClient#Delete: Failure sending request: StatusCode=400 -- Original Error: Code=\"NicInUse\" Message=\"Network Interface n is used by existing resource vm\"", "azure-nic-attached-to-vm"),
            ("{\"NeutronError\": {\"message\": \"Unable to complete operation on subnet s: One or more ports have an IP allocation from this subnet.\", \"type\": \"SubnetInUse\", \"detail\": \"\"}}", "neutron-in-use"),
        ] {
            assert_eq!(rule(m), (FailureClass::Permanent, name.to_string()), "{m}");
        }
        // in use with no sign of the holder going away: the generic rule leans permanent too
        assert_eq!(
            rule("Error: Error deleting security group: DependencyViolation: resource sg-1 has a dependent object"),
            (FailureClass::Permanent, "still-in-use".to_string())
        );
        // transient where the text shows the holder going away or a known short wait
        for m in [
            "Error: deleting EKS Cluster (c): ResourceInUseException: Cluster has nodegroups attached",
            "ResourceInUseException: The rule all_rules is currently being deleted. Please retry after some time.",
            "* aws_ecs_cluster.main: ClusterContainsContainerInstancesException: The Cluster cannot be deleted while Container Instances are active.",
            "Error deleting server certificate: DeleteConflict: Certificate: ASCA1 is currently in use by arn:aws:elasticloadbalancing:us-west-1:1:loadbalancer/lb. Please remove it first before deleting it from IAM.",
            "An error occurred (AuthFailure) when calling the ReleaseAddress operation: You do not have permission to access the specified resource.",
        ] {
            assert_eq!(rule(m).0, FailureClass::Transient, "{m}");
        }
        // a JSON `errorcode` is no HTTP status: CloudStack's 530 names a refusal, not a 5xx
        assert_eq!(
            rule(
                r#"Error disassociating IP address a: Undefined error: {"errorcode":530,"errortext":"ip address is used for source nat purposes and can not be disassociated."}"#
            ),
            (FailureClass::Permanent, "delete-refused".to_string())
        );
    }

    #[test]
    fn catalog_rules_win_over_builtin() {
        let c = Classifier::from_json(
            r#"[{"pattern": "AccessDenied.*kms", "class": "transient"}]"#,
            "test",
        )
        .unwrap();
        let r = c.classify(
            "TFExecApplyFailed",
            "AccessDenied: kms key is being rotated",
        );
        assert_eq!(r.class, FailureClass::Transient);
        assert_eq!(r.rule_name(), "catalog[0]");
        let r = c.classify("TFExecApplyFailed", "AccessDenied: not allowed");
        assert_eq!(r.class, FailureClass::Permanent);
        assert_eq!(r.rule_name(), "access-denied");
    }

    #[test]
    fn catalog_reason_restricts_match() {
        let c = Classifier::from_json(
            r#"[{"pattern": "quota", "reason": "TFExecPlanFailed", "class": "permanent"}]"#,
            "test",
        )
        .unwrap();
        assert_eq!(
            c.classify("TFExecPlanFailed", "quota exceeded for quota metric")
                .class,
            FailureClass::Permanent
        );
        assert_eq!(
            c.classify("TFExecApplyFailed", "quota exceeded for quota metric")
                .class,
            FailureClass::Transient
        );
    }

    #[test]
    fn bad_catalog_rules_name_the_field() {
        let e = Classifier::from_json(r#"[{"pattern": "(", "class": "transient"}]"#, "env X")
            .unwrap_err();
        let msg = e.to_string();
        assert!(
            msg.contains("env X") && msg.contains("[0]") && msg.contains("pattern"),
            "{msg}"
        );
        let e = Classifier::from_json(r#"[{"pattern": "x", "class": "sometimes"}]"#, "env X")
            .unwrap_err();
        assert!(e.to_string().contains("invalid JSON"), "{e}");
        let e = Classifier::from_json(r#"{"pattern": "x"}"#, "env X").unwrap_err();
        assert!(matches!(e, ClassifierError::Json { .. }));
        assert!(Classifier::from_json("  ", "env X").is_ok());
    }

    #[test]
    fn a_held_lock_leans_permanent_unless_the_controller_force_unlocks_it() {
        let msg = "error running Plan: rpc error: code = Internal desc = error acquiring the state lock\nLock Info:\n  ID:        9e1c\n  Who:       runner@shop-db-tf-runner";
        let c = Classifier::builtin().classify("TFExecPlanFailed", msg);
        assert_eq!(
            (c.class, c.rule_name()),
            (FailureClass::Permanent, "state-lock")
        );
        let same = c.clone().in_context(FailureContext::default());
        assert_eq!(same, c);
        for (by, says) in [
            (LockRelease::Controller, "forceUnlock is auto"),
            (LockRelease::Guard, "provably gone"),
        ] {
            let released = c.clone().in_context(FailureContext {
                lock_released_by: Some(by),
                ..FailureContext::default()
            });
            assert_eq!(released.class, FailureClass::Transient);
            assert!(released.rule.expect("rule").why.contains(says));
        }
        // only lock rules change
        let other = Classifier::builtin()
            .classify(
                "TFExecApplyFailed",
                "BucketNotEmpty: The bucket you tried to delete is not empty",
            )
            .in_context(FailureContext {
                lock_released_by: Some(LockRelease::Controller),
                ..FailureContext::default()
            });
        assert_eq!(other.class, FailureClass::Permanent);
        // a local file lock held by a running process stays transient
        let local = Classifier::builtin().classify(
            "TFExecPlanFailed",
            "Error acquiring the state lock Error message: resource temporarily unavailable Lock Info: ID: 681e4",
        );
        assert_eq!(local.class, FailureClass::Transient);
    }

    #[test]
    fn an_in_use_error_is_transient_only_when_its_holder_goes_with_this_uninstall() {
        let msg = "Error: Error waiting for Deleting Network: The network resource 'projects/acme/global/networks/core' is already being used by 'projects/acme/global/firewalls/allow-ssh'";
        let c = Classifier::builtin().classify("TFExecApplyFailed", msg);
        assert_eq!(c.class, FailureClass::Permanent, "{c:?}");
        assert!(IN_USE_RULES.contains(&c.rule_name()), "{c:?}");
        assert_eq!(c.clone().in_context(FailureContext::default()), c);
        let held = |terraform: &str| FailureContext {
            holder_in_destroy: Some(HolderInDestroy {
                holder: "projects/acme/global/firewalls/allow-ssh".into(),
                terraform: terraform.into(),
            }),
            ..FailureContext::default()
        };
        let t = c.clone().in_context(held("shop/firewall"));
        assert_eq!(t.class, FailureClass::Transient);
        let why = t.rule.expect("rule").why;
        assert!(
            why.contains("shop/firewall") && why.contains("allow-ssh"),
            "{why}"
        );
        // other permanent causes never change, whatever the context says
        for m in [
            "BucketNotEmpty: The bucket you tried to delete is not empty",
            "AccessDenied: User is not authorized to perform: ec2:DeleteSubnet",
        ] {
            let other = Classifier::builtin().classify("TFExecApplyFailed", m);
            assert_eq!(other.clone().in_context(held("shop/x")), other, "{m}");
        }
        // a catalog rule's in-use verdict is the catalog's to make
        let catalog = Classifier::from_json(
            r#"[{"pattern": "already being used", "class": "permanent"}]"#,
            "test",
        )
        .expect("catalog");
        let cat = catalog.classify("TFExecApplyFailed", msg);
        assert_eq!(cat.clone().in_context(held("shop/firewall")), cat);
    }

    #[test]
    fn context_rules_named_exist() {
        for name in IN_USE_RULES {
            assert!(
                rules::BUILTIN
                    .iter()
                    .any(|d| d.name == name && d.class == FailureClass::Permanent),
                "{name} is not a permanent built-in rule"
            );
        }
        for name in LOCK_RULES {
            assert!(
                rules::BUILTIN.iter().any(|d| d.name == name),
                "{name} is not a built-in rule"
            );
        }
        // the reason-only lock rule goes through the context too
        let c = Classifier::builtin()
            .classify("LockHeld", "")
            .in_context(FailureContext {
                lock_released_by: Some(LockRelease::Controller),
                ..FailureContext::default()
            });
        assert_eq!(
            (c.class, c.rule_name()),
            (FailureClass::Transient, "lock-held")
        );
    }

    #[test]
    fn built_in_patterns_are_ascii() {
        // the prefilter matches ASCII case-insensitively over bytes: a non-ASCII character in
        // a pattern silently stops it from matching
        for d in rules::BUILTIN {
            if let Some(p) = d.pattern {
                assert!(p.is_ascii(), "{}: pattern is not ASCII", d.name);
            }
        }
    }

    #[test]
    fn second_read_cases_keep_their_class() {
        let c = Classifier::builtin();
        let got = |m: &str| {
            let r = c.classify("TFExecApplyFailed", m);
            (r.class, r.rule_name().to_string())
        };
        // a custom resource type the API server cannot serve (operator destroyed first)
        assert_eq!(
            got("│ Error: Error deleting resource parametersdefinitions.parameters.kubeblocks.io:\n│ the server is currently unable to handle the request"),
            (FailureClass::Permanent, "kubernetes-api-group-unavailable".to_string())
        );
        // ... but Kubernetes' own groups are served by the API server: a passing 503
        for m in [
            "Error deleting resource ingresses.networking.k8s.io: the server is currently unable to handle the request",
            "Error when waiting for resource \"clusterroles.rbac.authorization.k8s.io\" to be deleted: the server is currently unable to handle the request",
        ] {
            assert_eq!(got(m).0, FailureClass::Transient, "{m}");
        }
        // a namespace destroy out of time, and not an unrelated timeout after its progress line
        assert_eq!(
            got("module.a.kubernetes_namespace.x: Still destroying... [id=x, 4m50s elapsed]\n│ Error: context deadline exceeded"),
            (FailureClass::Permanent, "kubernetes-namespace-delete-timeout".to_string())
        );
        assert_eq!(
            got("module.a.kubernetes_namespace.x: Still destroying... [id=x, 4m50s elapsed]\nError: Get \"https://api.example.com/\": context deadline exceeded").0,
            FailureClass::Transient
        );
        // in use only while an update runs
        assert_eq!(
            got("ResourceInUseException: Cannot Delete Fargate Profile gk because cluster c currently has an update in progress"),
            (FailureClass::Transient, "in-use-while-operation-runs".to_string())
        );
        // go-autorest's poller hid ARM's real outcome: an SDK bug that needs a provider upgrade
        assert_eq!(
            got("Error deleting Resource Group \"rg\": pollingTrackerBase#updatePollingState: the response from the async operation has an invalid status code: StatusCode=0"),
            (FailureClass::Permanent, "azure-async-poll-failed".to_string())
        );
    }

    #[test]
    fn a_request_timeout_is_permanent_only_towards_an_endpoint_of_one_deployment() {
        let c = Classifier::builtin();
        let got = |m: &str| {
            let r = c.classify("TFExecApplyFailed", m);
            (r.class, r.rule_name().to_string())
        };
        let one = (
            FailureClass::Permanent,
            "deployment-endpoint-timeout".to_string(),
        );
        for m in [
            // a self-hosted product on its own domain, quoted or not, with a port
            "Error: error reading folder: Get \"https://grafana.example.org:443/api/folders/x\": context deadline exceeded",
            "Error waiting for registry (1c4) to be removed: Get http://rancher.example.org/v1/projects/1a7/registrycredentials/1c4: net/http: request canceled (Client.Timeout exceeded while awaiting headers)",
            // an IP address, inside a 500's body
            "Bad response statusCode [500]. Body: [message=Post \"https://10.43.0.1:443/apis/x\": net/http: TLS handshake timeout, code=ServerError]",
            // a cluster's API server under a cloud's domain
            "Get \"https://ABC.gr7.eu-west-1.eks.amazonaws.com/api/v1/namespaces/x\": context deadline exceeded",
            // an HCP Vault cluster is one deployment, HCP's API is not
            "Get \"https://vault-c1.vault.11eb.aws.hashicorp.cloud:8200/v1/sys/mounts\": context deadline exceeded",
            // waiting for a connection until the client's timeout, on one line or wrapped
            "Get \"https://grafana.example.org/api\": net/http: request canceled while waiting for connection (Client.Timeout exceeded while awaiting headers)",
            "Get \"https://grafana.example.org/api\": net/http: request canceled while waiting for connection\n│ (Client.Timeout exceeded while awaiting headers)",
        ] {
            assert_eq!(got(m), one, "{m}");
        }
        // the providers' global APIs, public chart repositories, a vendor's `api.` host and
        // Flux's source-controller: a blip, transient
        for m in [
            "error getting helm chart: Get \"https://charts.bitnami.com/bitnami/index.yaml\": context deadline exceeded",
            "Post \"https://api.honeycomb.io/1/boards\": context deadline exceeded",
            "Get \"http://source-controller.flux-system.svc.cluster.local./gitrepository/flux-system/infra/6a1b.tar.gz\": net/http: request canceled (Client.Timeout exceeded while awaiting headers)",
            "Post \"https://sts.amazonaws.com/\": net/http: TLS handshake timeout",
            "Post \"https://sts.amazonaws.com./\": context deadline exceeded",
            "Get \"https://management.usgovcloudapi.net/subscriptions/x\": context deadline exceeded",
            "Get \"https://management.azure.com/subscriptions/x\": context deadline exceeded",
            "Post \"https://compute.googleapis.com/compute/v1/projects/p\": context deadline exceeded",
        ] {
            assert_eq!(got(m).0, FailureClass::Transient, "{m}");
            assert!(!rules::endpoint_of_one_deployment(m), "{m}");
        }
        // a URL that did not time out does not count, nor a bare deadline
        assert!(!rules::endpoint_of_one_deployment(
            "see https://grafana.example.org/docs for the timeout: context deadline exceeded"
        ));
        assert!(!rules::endpoint_of_one_deployment(
            "Error: context deadline exceeded"
        ));
        // a request canceled for another reason than the client's timeout
        assert!(!rules::endpoint_of_one_deployment(
            "Get \"https://grafana.example.org/api\": net/http: request canceled"
        ));
        assert!(!rules::endpoint_of_one_deployment(
            "Get \"https://grafana.example.org/api\": net/http: request canceled while waiting for connection"
        ));
        assert!(!rules::endpoint_of_one_deployment(
            "Get \"https://grafana.example.org/api\": 502 Bad Gateway"
        ));
    }

    #[test]
    fn a_state_refusal_that_names_a_dependant_is_in_use() {
        let c = Classifier::builtin();
        for m in [
            "Error: deleting App Runner Service (arn:aws:apprunner:eu-west-1:123456789012:service/s/1): operation error AppRunner: DeleteService, https response error StatusCode: 400, RequestID: 1, InvalidStateException: You cannot delete a Service while it has VpcIngressConnections with a status of AVAILABLE.",
            // without an article too
            "InvalidStateException: Cannot delete VPC while it has subnets",
            // IBM Cloud names what still exists in the container
            "Error: Error Deleting VPC Address Prefix (r006-1): Cannot delete due to existing subnets\n{\n    \"StatusCode\": 409,",
        ] {
            let r = c.classify("TFExecApplyFailed", m);
            assert_eq!(
                (r.class, r.rule_name()),
                (FailureClass::Permanent, "still-in-use"),
                "{m}"
            );
            assert!(r.is_in_use(), "{m}");
        }
        // a state refusal without a dependant stays mid-transition
        let r = c.classify(
            "TFExecApplyFailed",
            "InvalidStateException: The service is in OPERATION_IN_PROGRESS state; cannot delete it now",
        );
        assert_eq!(r.class, FailureClass::Transient);
        // "while it has" without a deletion before it is no dependant
        let r = c.classify(
            "TFExecApplyFailed",
            "InvalidStateException: while it has been updated recently, retry the request",
        );
        assert_eq!(r.rule_name(), "incorrect-state");
        // a deletion refused, however worded, because of what it still has is in use — up to 80
        // bytes between the two (ids, quotes, a multi-byte character); the words matched are
        // the deletion and what it still has
        for (m, matched) in [
            (
                "Unable to delete workspace 'ws-1' (arn:x): not allowed while it has attached members",
                "delete workspace 'ws-1' (arn:x): not allowed while it has a",
            ),
            (
                "InvalidStateException: deletion of the service is refused while it still has routes",
                "deletion of the service is refused while it still has r",
            ),
            (
                &format!("InvalidStateException: delete {}é while it has x", "a".repeat(70)),
                &format!("delete {}é while it has x", "a".repeat(70)),
            ),
        ] {
            let r = c.classify("TFExecApplyFailed", m);
            assert_eq!(r.rule_name(), "still-in-use", "{m}");
            assert!(r.is_in_use(), "{m}");
            assert_eq!(c.matched_text(m, &r).as_deref(), Some(matched), "{m}");
        }
        // not one refusal: too far apart, "has been", another diagnostic, a word that only
        // starts with "delete"
        for m in [
            format!("InvalidStateException: delete {} while it has x", "b".repeat(90)),
            "InvalidStateException: cannot delete it while it has been updated recently".to_owned(),
            "* aws_route.r: Error: failed to delete route\n* aws_x.y: InvalidStateException: while it has subnets".to_owned(),
            "InvalidStateException: deleted 3 of 4; cannot update it while it has subnets".to_owned(),
        ] {
            let r = c.classify("TFExecApplyFailed", &m);
            assert_ne!(r.rule_name(), "still-in-use", "{m}");
        }
        // an update or pending change in progress is an operation that ends by itself
        for m in [
            "Error: failed to delete cluster c-1: the cluster cannot be modified while it has an update in progress, try again later",
            "unable to delete the workspace: operation not permitted while it has pending changes",
            "Error: deleted 3 of 4 targets; ConflictException: cannot update the resource while it has an operation in progress",
        ] {
            let r = c.classify("TFExecApplyFailed", m);
            assert_eq!(r.class, FailureClass::Transient, "{m}: {}", r.rule_name());
        }
        // and a holder named as going away still is
        let r = c.classify(
            "TFExecApplyFailed",
            "Unable to delete network n-1: not allowed while it has subnets that are being deleted",
        );
        assert_eq!(
            (r.class, r.rule_name()),
            (FailureClass::Transient, "holder-going-away")
        );
    }

    #[test]
    fn a_resource_waiter_that_loses_what_it_deletes_leans_permanent_an_operation_waiter_does_not() {
        let c = Classifier::builtin();
        for m in [
            "Error: error waiting for API Gateway VPC Link (a1b2c3) deletion: couldn't find resource (21 retries)",
            "Error: Error waiting for Container Group \"cg\" (Resource Group \"rg\") to finish deleting: couldn't find resource (21 retries)",
            // an identifier with colons (an ARN, cluster:nodegroup)
            "Error: waiting for EKS Node Group (c:ng) to be deleted: couldn't find resource (21 retries)",
            "Error: waiting for Listener (arn:aws:elasticloadbalancing:us-east-1:1:listener/app/a/b/c) deletion: couldn't find resource (21 retries)",
        ] {
            let r = c.classify("TFExecApplyFailed", m);
            assert_eq!(
                (r.class, r.rule_name()),
                (FailureClass::Permanent, "delete-waiter-lost-resource"),
                "{m}"
            );
        }
        for m in [
            // Google's operation waiter: the operation, not the resource, went missing
            "Error: Error waiting for Deleting Index: couldn't find resource (21 retries)",
            // a detach waiter whose object vanished while watched
            "Error waiting for internet gateway (igw-0a1b2c3d) to detach: couldn't find resource (31 retries)",
        ] {
            let r = c.classify("TFExecApplyFailed", m);
            assert_eq!(
                (r.class, r.rule_name()),
                (FailureClass::Transient, "eventual-consistency"),
                "{m}"
            );
        }
    }

    #[test]
    fn a_queue_refusal_and_a_server_in_maintenance_are_retried() {
        let c = Classifier::builtin();
        let r = c.classify(
            "TFExecApplyFailed",
            "Error: Error deleting FeatureMembership: googleapi: Error 409: unable to queue the operation",
        );
        assert_eq!(
            (r.class, r.rule_name()),
            (FailureClass::Transient, "operation-in-progress")
        );
        let r = c.classify(
            "TFExecApplyFailed",
            "* upcloud_server.web: The operation is not allowed while the server 00ee80de-d95d-4ed5-89e7-875d7a317c7d is in state 'maintenance'. (SERVER_STATE_ILLEGAL)",
        );
        assert_eq!(
            (r.class, r.rule_name()),
            (FailureClass::Transient, "incorrect-state")
        );
        // a steady state is not a transition, nor is a pod that cannot be scheduled
        for m in [
            "The operation is not allowed while the server s-1 is in state 'stopped'.",
            "Error: Pod is in state 'Pending': 0/3 nodes are available: insufficient cpu",
        ] {
            let r = c.classify("TFExecApplyFailed", m);
            assert_ne!(r.class, FailureClass::Transient, "{m}: {}", r.rule_name());
        }
    }

    #[test]
    fn the_plugin_frameworks_retry_sentence_is_not_a_retry_hint() {
        let c = Classifier::builtin();
        let framework = "Error: Unable to Delete Resource\n\nAn unexpected error occurred while attempting to delete the resource. Please\nretry the operation or report this issue to the provider developers.\n\nError: ";
        // a provider's null pointer is not retried because of the template around it
        let r = c.classify(
            "TFExecApplyFailed",
            &format!("{framework}Cannot invoke \"org.example.Repo.getType()\" because the return value of \"org.example.Repos.byKey(String)\" is null"),
        );
        assert_eq!(r.class, FailureClass::Permanent, "{}", r.rule_name());
        // what the provider says after it still decides
        let r = c.classify(
            "TFExecApplyFailed",
            &format!("{framework}Could not merge and save new descriptor\n[org.jfrog.common.ExecutionFailed: Last retry failed: Should update revision\n206. Not trying again]"),
        );
        assert_eq!(
            (r.class, r.rule_name()),
            (
                FailureClass::Transient,
                "artifactory-descriptor-revision-conflict"
            )
        );
        // any other failure to save the configuration is not that race
        let r = c.classify(
            "TFExecApplyFailed",
            &format!("{framework}Could not merge and save new descriptor [java.lang.IllegalStateException: Repository 'x' is referenced by virtual repository 'y']"),
        );
        assert_ne!(r.rule_name(), "artifactory-descriptor-revision-conflict");
        let r = c.classify(
            "TFExecApplyFailed",
            &format!("{framework}ThrottlingException: Rate exceeded"),
        );
        assert_eq!(r.class, FailureClass::Transient, "{}", r.rule_name());
    }

    #[test]
    fn a_state_named_in_progress_and_a_fortios_cli_refusal() {
        let c = Classifier::builtin();
        let r = c.classify(
            "TFExecApplyFailed",
            "BadRequestException: Broker [b-1] can't be deleted while in state [REBOOT_IN_PROGRESS]",
        );
        assert_eq!(
            (r.class, r.rule_name()),
            (FailureClass::Transient, "incorrect-state")
        );
        let r = c.classify(
            "TFExecApplyFailed",
            "Error: Error clearing SystemReplacemsgNacQuar resource: Internal Server Error - Internal error when processing the request (500)\nCli response:\nempty table name\nvalue parse error before ''\nCommand fail. Return code 1",
        );
        assert_eq!(
            (r.class, r.rule_name()),
            (FailureClass::Permanent, "fortios-cli-command-failed")
        );
        // a CLI that timed out or found the configuration locked is a wait, not a refusal
        for m in [
            "Error: Internal Server Error (500)\nCli response:\nrequest timed out\nCommand fail. Return code -1",
            "Error: Internal Server Error (500)\nCli response:\nConfiguration is locked by another administrator\nCommand fail. Return code -1",
        ] {
            let r = c.classify("TFExecApplyFailed", m);
            assert_ne!(r.rule_name(), "fortios-cli-command-failed", "{m}");
            assert_eq!(r.class, FailureClass::Transient, "{m}: {}", r.rule_name());
        }
        // a state named *_IN_PROGRESS counts only as the state the resource is in, not as a
        // token elsewhere (an event log, a list of allowed states, a waiter's last state)
        for m in [
            "Stack events: DELETE_IN_PROGRESS | DELETE_FAILED | User is not authorized to perform: lambda:DeleteFunction (Status Code: 403)",
            "ValidationError: Stack app is in UPDATE_ROLLBACK_FAILED state and can not be updated (after UPDATE_ROLLBACK_IN_PROGRESS)",
        ] {
            let r = c.classify("TFExecApplyFailed", m);
            assert_eq!(r.class, FailureClass::Permanent, "{m}: {}", r.rule_name());
        }
        let r = c.classify(
            "TFExecApplyFailed",
            "Error: timeout while waiting for state to become 'DELETE_COMPLETE' (last state: 'DELETE_IN_PROGRESS', timeout: 30m0s)",
        );
        assert_ne!(r.rule_name(), "incorrect-state");
        // a bare FortiOS 500 stays a server error
        let r = c.classify(
            "TFExecApplyFailed",
            "Error: Internal Server Error - Internal error when processing the request (500)",
        );
        assert_eq!(r.rule_name(), "server-error");
    }

    #[test]
    fn an_elastic_cloud_shutdown_that_left_instances_running_is_retried() {
        let c = Classifier::builtin();
        let r = c.classify(
            "TFExecApplyFailed",
            "Error: deployment deletion error\n\nfound deployment plan errors: 1 error occurred:\n        * deployment [1a] -\n[elasticsearch][2b]: caught error: \"Plan change\nfailed: Some instances were not stopped\"",
        );
        assert_eq!(
            (r.class, r.rule_name()),
            (
                FailureClass::Transient,
                "elastic-cloud-instances-not-stopped"
            )
        );
    }

    #[test]
    fn codes_that_name_their_cause_win_over_generic_words() {
        let c = Classifier::builtin();
        let got = |m: &str| {
            let r = c.classify("TFExecApplyFailed", m);
            (r.class, r.rule_name().to_string())
        };
        let p = |rule: &str| (FailureClass::Permanent, rule.to_string());
        let t = |rule: &str| (FailureClass::Transient, rule.to_string());
        // an AWS API that names the transitional state the resource is in
        for m in [
            "error disassociating RAM Resource Share Principal Association: InvalidStateTransitionException: At least one of the associations in the resource share is in ASSOCIATING status.",
            "Error: failed deleting MSK cluster: BadRequestException: You can't delete cluster in HEALING state.",
        ] {
            assert_eq!(got(m), t("incorrect-state"), "{m}");
        }
        // ... a steady state named the same way is not a transition, nor PENDING, which
        // often waits on a person (an invitation, a letter of authorisation)
        for m in [
            "BadRequestException: You can't delete cluster in ACTIVE state.",
            "Error: deleting Direct Connect Connection: the connection is in PENDING state awaiting LOA",
        ] {
            assert_ne!(got(m).0, FailureClass::Transient, "{m}");
        }
        // a permission set whose re-provisioning failed while its assignments were going
        assert_eq!(
            got("Error: waiting for SSO Permission Set (arn:aws:sso:::permissionSet/ssoins-1/ps-1) provision: unexpected state 'FAILED', wanted target 'SUCCEEDED'. last error: Received a 404 status error: Assignment not found."),
            t("sso-permission-set-reprovision-failed")
        );
        // ... not when the provisioning was refused outright
        assert_eq!(
            got("Error: waiting for SSO Permission Set (arn:aws:sso:::permissionSet/ssoins-1/ps-1) provision: unexpected state 'FAILED', wanted target 'SUCCEEDED'. last error: Received a 400 status error: Customer managed policy CMP1 does not exist in account 123456789012.").0,
            FailureClass::Permanent
        );
        // any other waiter that met FAILED stays permanent
        assert_eq!(
            got("Error: waiting for Glue Job (j) delete: unexpected state 'FAILED', wanted target 'SUCCEEDED'.").0,
            FailureClass::Permanent
        );
        // Alibaba's catch-all server-side failure, even when reported with a 400
        assert_eq!(
            got("Deleting RouteEntry got an error: &common.Error{ErrorResponse:common.ErrorResponse{HostId:\"ecs-openapi-share.eu-central-1.aliyuncs.com\", Code:\"UnknownError\", Message:\"The request processing has failed due to some unknown error.\"}, StatusCode:400}"),
            t("alibaba-unknown-error")
        );
        // Google's 409 for concurrent mutations of one object
        assert_eq!(
            got("Error: Error when reading or editing Job: googleapi: Error 409: sync mutate calls cannot be queued"),
            t("operation-in-progress")
        );
        // a tool's wait that names a finalizer nobody lifts: permanent, lines joined or not
        for m in [
            "failed to delete kustomization \"db\": timeout waiting for\nkustomization gitops/db to be deleted; an inventory item is likely stuck\non a cloud-controller finalizer",
            "destroy aborted: timeout waiting for load balancer teardown.\nload balancer owner gatewayclasses envoy still present. A finalizer has not lifted.",
        ] {
            assert_eq!(got(m), p("finalizer-held-past-timeout"), "{m}");
        }
        // ... but a conflict while removing a finalizer is the usual optimistic-lock retry
        assert_eq!(
            got("cannot remove DataStore Secret finalizers: Operation cannot be fulfilled on secrets \"x\": the object has been modified; please apply your changes to the latest version and try again").0,
            FailureClass::Transient
        );
        // googleapi 412 conditionNotMet: an org policy constraint, not an operation running
        assert_eq!(
            got("Error: SetCommonInstanceMetadata failed: googleapi: Error 412: Constraint constraints/compute.requireOsLogin violated for project p., conditionNotMet"),
            p("google-org-policy-violated")
        );
        assert_eq!(
            got("googleapi: Error 412: At least one of the pre-conditions you specified did not hold., conditionNotMet").0,
            FailureClass::Transient
        );
        // an If-Match ETag that no longer holds: re-read and retry
        assert_eq!(
            got("performing ProjectsDelete: unexpected status 412 (412 Precondition Failed) with error: IfMatchPreconditionFailed: The specified precondition 'If-Match = \"\\\"8c00\\\"\"' failed."),
            t("etag-mismatch")
        );
        // in use because a sibling is mid-deletion (EKS runs one Fargate profile op at a time)
        assert_eq!(
            got("ResourceInUseException: Cannot Delete Fargate Profile a because cluster c currently has Fargate profile b in status DELETING"),
            t("in-use-while-operation-runs")
        );
        // Hetzner's own transient codes, with or without the action id; `protected` is not one
        for m in [
            "hcloudutil/WaitForAction: an unknown error occurred (unknown_error, 571419632258936)",
            "cannot perform operation because server is locked (locked, f21b9dc9d1535310)",
            "server is locked (locked)",
        ] {
            assert_eq!(got(m), t("hetzner-transient-code"), "{m}");
        }
        assert_eq!(
            got("Error: load balancer deletion is protected (protected)").0,
            FailureClass::Permanent
        );
        // ... and an in-use text with Hetzner's code is left to the in-use rules (holder check)
        assert!(c
            .classify(
                "TFExecApplyFailed",
                "Error: cannot remove subnet because servers are attached to it (service_error)"
            )
            .is_in_use());
        // an instance not (yet) available: mid-transition, with or without the AWS code
        assert_eq!(
            got("* aws_rds_cluster.default: RDS Cluster cannot be deleted: Cannot create a snapshot because the database instance tf-aurora-1 is not currently in the available state."),
            t("not-yet-available")
        );
        // ... unless the status it is in does not pass by itself
        for m in [
            "Cannot create a snapshot because the database instance db is not currently in the available state (it is in storage-full)",
            "cluster c is not currently in the ACTIVE state, it is in status FAILED",
        ] {
            assert_ne!(got(m), t("not-yet-available"), "{m}");
        }
        // an org policy is named as such; a database constraint is not one
        assert_ne!(
            got("ERROR: update or delete on table \"a\" violates constraint \"fk_a\"").1,
            "google-org-policy-violated"
        );
        // a holder being created does not release what it uses: only DELETING is a sibling going
        assert_ne!(
            got("ResourceInUseException: Cannot Delete Fargate Profile a because cluster c currently has Fargate profile b in status CREATING").1,
            "in-use-while-operation-runs"
        );
        // tofu-controller's own AccessDenied: a cross-namespace reference it may not follow
        let r = c.classify(
            "AccessDenied",
            "cannot access secret other/tfrc, cross-namespace references have been disabled",
        );
        assert_eq!(
            (r.class, r.rule_name()),
            (FailureClass::Permanent, "cross-namespace-ref-denied")
        );
        // DigitalOcean: an event (its word for an action) still runs on the droplet
        for m in [
            "Error: Error deleting droplet: DELETE https://api.digitalocean.com/v2/droplets/1: 422 Droplet is currently on an event and cannot be deleted",
            "Error: Droplet already has a pending event.",
        ] {
            assert_eq!(got(m), t("operation-in-progress"), "{m}");
        }
        // STS that flaked on a credentials call is not a credentials problem ...
        assert_eq!(
            got("Error: failed to refresh cached credentials, operation error STS: AssumeRoleWithWebIdentity, exceeded maximum number of attempts, 3, https response error StatusCode: 503, RequestID: x, api error ServiceUnavailable: Service is unavailable"),
            t("aws-sts-unavailable")
        );
        // ... but an STS 5xx next to another error does not make that error transient
        assert_eq!(
            got("Error: deleting EC2 Subnet (subnet-0a1b2c3d4e5f60718): DependencyViolation: The subnet has dependencies and cannot be deleted.\n\nError: reading caller identity: operation error STS: GetCallerIdentity, https response error StatusCode: 503, api error ServiceUnavailable").0,
            FailureClass::Permanent
        );
        assert_eq!(
            got("Error: operation error STS: AssumeRole, StatusCode: 400, api error InvalidAccessKeyId: The AWS Access Key Id does not exist; retrying after Throttling").0,
            FailureClass::Permanent
        );
        // ... and a refusal next to a 5xx word still is
        assert_eq!(
            got("Error: error calling sts:GetCallerIdentity: operation error STS: GetCallerIdentity, https response error StatusCode: 403, api error ExpiredToken: The security token included in the request is expired (InternalFailure earlier)"),
            p("aws-credentials")
        );
    }

    #[test]
    fn review_cases_keep_their_class() {
        let c = Classifier::builtin();
        let got = |reason: &str, m: &str| {
            let r = c.classify(reason, m);
            (r.class, r.rule_name().to_string())
        };
        // the current AWS provider's ECS message names the cluster by ARN (colons): still the
        // after-retry form
        assert_eq!(
            got("TFExecApplyFailed", "Error: deleting ECS Cluster (arn:aws:ecs:eu-west-1:123456789012:cluster/app): operation error ECS: DeleteCluster, https response error StatusCode: 400, RequestID: 1, ClusterContainsServicesException: The Cluster cannot be deleted while Services are active."),
            (FailureClass::Permanent, "ecs-cluster-busy-after-retry".to_string())
        );
        // a lock backend that flaked while taking the lock, with no holder: transient
        for m in [
            "Error acquiring the state lock: ThrottlingException: Rate exceeded",
            "Error: Error acquiring the state lock: RequestError: send request failed caused by: Post \"https://dynamodb.eu-west-1.amazonaws.com/\": dial tcp 1.2.3.4:443: i/o timeout",
        ] {
            assert_eq!(got("TFExecPlanFailed", m), (FailureClass::Transient, "state-lock-backend-error".to_string()), "{m}");
        }
        // ... but a holder named in Lock Info stays a held lock
        assert_eq!(
            got("TFExecPlanFailed", "Error acquiring the state lock: ConditionalCheckFailedException: The conditional request failed Lock Info: ID: 1 Who: runner@x-tf-runner Created: 2026-01-01 00:00:00 +0000 UTC timeout"),
            (FailureClass::Permanent, "state-lock".to_string())
        );
        // a LockHeld reason with a local flock EAGAIN is the local lock
        assert_eq!(
            got(
                "LockHeld",
                "Error acquiring the state lock: resource temporarily unavailable"
            ),
            (FailureClass::Transient, "local-state-lock-busy".to_string())
        );
        // "being detached" after a refusal is still the refusal
        assert_eq!(
            got("TFExecApplyFailed", "AccessDenied: not authorized to perform ec2:DeleteVolume on vol-1 which is being detached").0,
            FailureClass::Permanent
        );
        // the controller cancelled the runner call: transient
        for m in [
            "error running Apply: rpc error: code = Canceled desc = context canceled",
            "error running Apply: context canceled",
        ] {
            assert_eq!(
                got("TFExecApplyFailed", m).0,
                FailureClass::Transient,
                "{m}"
            );
        }
    }

    #[test]
    fn an_error_no_rule_knows_leans_permanent() {
        let r =
            Classifier::builtin().classify("TFExecApplyFailed", "the moon is in the wrong phase");
        assert_eq!(r.class, FailureClass::Permanent);
        let m = r.rule.expect("the last rule matched");
        assert_eq!(
            (m.name.as_str(), m.provider.as_str()),
            ("unrecognised-error", "any")
        );
        assert!(m.why.contains("leans permanent"), "{}", m.why);
    }

    #[test]
    fn a_message_that_names_no_cause_is_unknown() {
        for m in [
            "",
            "   ",
            "Operation failed: failed generating plan JSON: failed running command (exit -1)",
            "Error: 1 error(s) occurred:",
            "exit status 1",
        ] {
            let r = Classifier::builtin().classify("TFExecApplyFailed", m);
            assert_eq!(r.class, FailureClass::Unknown, "{m:?}");
            assert!(r.rule.is_none(), "{m:?}");
        }
        // one word of cause is enough to lean permanent
        let r = Classifier::builtin()
            .classify("TFExecApplyFailed", "Error: failed to make http request");
        assert_eq!(r.rule_name(), "unrecognised-error");
    }

    proptest::proptest! {
        /// Any input classifies without panicking, deterministically, and a class other than
        /// unknown always names its rule.
        #[test]
        fn classify_is_total_and_deterministic(reason in "\\PC{0,20}", message in "\\PC{0,200}") {
            static C: std::sync::LazyLock<Classifier> = std::sync::LazyLock::new(Classifier::builtin);
            let a = C.classify(&reason, &message);
            proptest::prop_assert_eq!(&a, &C.classify(&reason, &message));
            proptest::prop_assert_eq!(a.rule.is_none(), a.class == FailureClass::Unknown);
        }
    }

    proptest::proptest! {
        #![proptest_config(proptest::test_runner::Config::with_cases(6))]
        /// Hostile input — ~100 KB messages of unicode, control characters, ANSI escapes,
        /// box drawing, thousands of newlines, half-written codes — classifies without panicking,
        /// the same way as its normalised form would, with every built-in rule and a catalog rule.
        #[test]
        fn hostile_long_input_never_panics(
            chunk in proptest::collection::vec(
                proptest::prop_oneof![
                    "\\PC{0,40}",
                    "[\\n\\r\\t \u{1b}\\[│╷╵0-9;m]{0,40}",
                    proptest::sample::select(vec![
                        "rpc error: code = Unknown desc = ", "status code: 400, request id: ",
                        "googleapi: Error 4", "already being used by 'projects/", "projects/",
                        "DependencyViolation", "BucketNotEmpty", "with aws_s3_bucket.x,",
                        "on main.tf line ", "\u{1b}]8;;", "Code=\"Conflict", "\u{1b}[",
                    ]).prop_map(|s: &str| s.to_string()),
                ],
                1..16,
            ),
            reason in "\\PC{0,20}",
        ) {
            let unit: String = chunk.concat();
            let repeat = if unit.is_empty() { 0 } else { 100_000 / unit.len() + 1 };
            let message = unit.repeat(repeat);
            let catalog = Classifier::from_json(r#"[{"pattern": "(?i)x{1,50}y", "class": "permanent"}]"#, "t")
                .map_err(|e| proptest::test_runner::TestCaseError::fail(e.to_string()))?;
            let a = catalog.classify(&reason, &message);
            proptest::prop_assert_eq!(a.rule.is_none(), a.class == FailureClass::Unknown);
            let n = normalise::normalise(&message);
            let clean = !n.contains('\n') && !n.contains('\u{1b}');
            proptest::prop_assert!(clean, "normalised text keeps a newline or an escape");
        }
    }

    #[test]
    fn huge_message_with_many_newlines_still_matches_its_code() {
        let mut m = "\n".repeat(50_000);
        m.push_str("Error: deleting EC2 Subnet: DependencyViolation: The subnet has dependencies");
        m.push_str(&"│ \u{1b}[0m\n".repeat(5_000));
        let r = Classifier::builtin().classify("TFExecApplyFailed", &m);
        assert_eq!(
            (r.class, r.rule_name()),
            (FailureClass::Permanent, "still-in-use")
        );
    }

    #[test]
    fn class_spellings_round_trip() {
        for c in [
            FailureClass::Transient,
            FailureClass::Permanent,
            FailureClass::BlockedByMissingDependency,
            FailureClass::Unknown,
        ] {
            assert_eq!(c.as_str().parse::<FailureClass>().unwrap(), c);
            assert_eq!(serde_json::to_value(c).unwrap(), c.as_str());
        }
    }
}
