//! `classify` — the failure classifier: (Ready condition reason, message) of a `Terraform` CR
//! → [`FailureClass`] plus the rule that matched (shown by `explain`).
//!
//! Pure. Rules are checked in order; the first match wins. Catalog rules (JSON
//! `[{"pattern", "reason"?, "class"}]`, from catalog config `guard.classifierRules` or env
//! `TFOPS_CLASSIFIER_RULES`) come before the built-in table. A rule matches when its `reason`
//! (if any) equals the condition reason exactly AND its `pattern` (if any) matches the message.
//! Built-in order: missing-dependency reasons, then permanent causes that must win over
//! incidental words (deletion protection, access denied), then transient causes, then the
//! remaining permanent causes (invalid configuration); anything else is `unknown`.

use regex::{Regex, RegexBuilder};
use serde::{Deserialize, Serialize};

/// Environment variable holding extra classifier rules as a JSON array.
pub const ENV_CLASSIFIER_RULES: &str = "TFOPS_CLASSIFIER_RULES";

pub use tfops_api::FailureClass;

pub use tfops_api::rules::RuleSpec;

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
    pub pattern: Option<Regex>,
    pub class: FailureClass,
}

impl Rule {
    fn matches(&self, reason: &str, message: &str) -> bool {
        if let Some(r) = &self.reason {
            if r != reason {
                return false;
            }
        }
        match &self.pattern {
            Some(p) => p.is_match(message),
            None => true,
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
}

/// Errors building a classifier from catalog rules.
#[derive(Debug, thiserror::Error)]
pub enum ClassifierError {
    /// The JSON was not an array of `{pattern, reason?, class}`.
    #[error("classifier rules ({source_name}): invalid JSON: {error}")]
    Json {
        source_name: String,
        error: serde_json::Error,
    },
    /// A rule's pattern is not a valid regex.
    #[error("classifier rules ({source_name}): rule [{index}] field \"pattern\": invalid regex {pattern:?}: {error}")]
    Regex {
        source_name: String,
        index: usize,
        pattern: String,
        error: regex::Error,
    },
}

/// The failure classifier: catalog rules first, then the built-in table. Build it once per
/// process (compiling the table takes a few milliseconds) and share it.
#[derive(Debug, Clone)]
pub struct Classifier {
    rules: Vec<Rule>,
}

impl Default for Classifier {
    fn default() -> Self {
        Classifier::builtin()
    }
}

fn compile(pattern: &str) -> Result<Regex, regex::Error> {
    RegexBuilder::new(pattern)
        .size_limit(1 << 20)
        .dfa_size_limit(1 << 20)
        .build()
}

impl Classifier {
    /// Only the built-in table.
    pub fn builtin() -> Self {
        Classifier {
            rules: builtin_rules(),
        }
    }

    /// Catalog rules (checked first) followed by the built-in table.
    pub fn with_rules(specs: &[RuleSpec], source_name: &str) -> Result<Self, ClassifierError> {
        let mut rules = Vec::with_capacity(specs.len() + 64);
        for (index, spec) in specs.iter().enumerate() {
            let pattern = compile(&spec.pattern).map_err(|error| ClassifierError::Regex {
                source_name: source_name.to_string(),
                index,
                pattern: spec.pattern.clone(),
                error,
            })?;
            rules.push(Rule {
                name: format!("catalog[{index}]"),
                origin: RuleOrigin::Catalog,
                reason: spec.reason.clone(),
                pattern: Some(pattern),
                class: spec.class,
            });
        }
        rules.extend(builtin_rules());
        Ok(Classifier { rules })
    }

    /// Parse a JSON array of rules (the `TFOPS_CLASSIFIER_RULES` format); `source_name` is
    /// used in errors (e.g. `env TFOPS_CLASSIFIER_RULES`). Empty / whitespace input = no rules.
    pub fn from_json(json: &str, source_name: &str) -> Result<Self, ClassifierError> {
        if json.trim().is_empty() {
            return Ok(Classifier::builtin());
        }
        let specs: Vec<RuleSpec> =
            serde_json::from_str(json).map_err(|error| ClassifierError::Json {
                source_name: source_name.to_string(),
                error,
            })?;
        Classifier::with_rules(&specs, source_name)
    }

    /// All rules in evaluation order.
    pub fn rules(&self) -> &[Rule] {
        &self.rules
    }

    /// Classify a failure from its Ready condition reason and message.
    pub fn classify(&self, reason: &str, message: &str) -> Classification {
        for rule in &self.rules {
            if rule.matches(reason, message) {
                return Classification {
                    class: rule.class,
                    rule: Some(MatchedRule {
                        name: rule.name.clone(),
                        origin: rule.origin,
                        reason: rule.reason.clone(),
                        pattern: rule.pattern.as_ref().map(|p| p.as_str().to_string()),
                    }),
                };
            }
        }
        Classification {
            class: FailureClass::Unknown,
            rule: None,
        }
    }
}

/// One row of the built-in table: (name, exact reason, case-insensitive message regex, class).
type BuiltinRow = (
    &'static str,
    Option<&'static str>,
    Option<&'static str>,
    FailureClass,
);

use FailureClass::{BlockedByMissingDependency as Blocked, Permanent, Transient};

/// The built-in table, in evaluation order.
const BUILTIN: &[BuiltinRow] = &[
    // --- the controller cannot start: source / vars / runner missing ---------------------
    ("source-missing", Some("ArtifactFailed"), None, Blocked),
    ("vars-missing", Some("VarsGenerationFailed"), None, Blocked),
    (
        "dependants-present",
        Some("DeletionBlockedByDependantsReason"),
        None,
        Blocked,
    ),
    (
        "source-not-found",
        None,
        Some(
            r#"(gitrepositor(y|ies)|ocirepositor(y|ies)|buckets?)(\.source\.toolkit\.fluxcd\.io)?\s+\S+\s+not found|source '?(gitrepository|ocirepository|bucket)/[^' ]+'? not found|source is not ready|artifact not found|could not get source object"#,
        ),
        Blocked,
    ),
    (
        "runner-serviceaccount-missing",
        None,
        Some(r#"serviceaccounts?\s+"?[^"\s]*"?\s*not found|error looking up service account"#),
        Blocked,
    ),
    (
        "secret-missing",
        None,
        Some(r#"secrets?\s+"[^"]+"\s+not found|configmaps?\s+"[^"]+"\s+not found"#),
        Blocked,
    ),
    // --- permanent causes that must win over incidental transient words ------------------
    (
        "deletion-protection",
        None,
        Some(
            r"deletion[_ ]?protection|protected against deletion|prevent_destroy|instance cannot be destroyed|termination protection|disableApiTermination|OperationNotPermitted.*(protect|termination)|cannot be deleted because .*protect",
        ),
        Permanent,
    ),
    (
        "management-lock",
        None,
        Some(r"scopelocked|scope\(s\) are locked|remove the lock and try again"),
        Permanent,
    ),
    (
        "not-empty",
        None,
        Some(r"bucketnotempty|you tried to delete is not empty|must delete all versions"),
        Permanent,
    ),
    (
        "access-denied",
        None,
        Some(
            r"access ?denied|unauthorizedoperation|\bforbidden\b|status code:? 403|statuscode[=:] ?403|\b403\b.*(forbidden|denied|permission)|authorizationfailed|authorizationerror|not authorized to perform|does not have (the required )?permission|permission to [\w ]+ is required|permission denied|not authorized|insufficient permissions|iam_permission_denied|invalidclienttokenid|signaturedoesnotmatch|expiredtoken|no valid credential sources|invalid_grant|authenticationfailed|\b401\b|unauthorized",
        ),
        Permanent,
    ),
    // --- transient ---------------------------------------------------------------------
    ("lock-held", Some("LockHeld"), None, Transient),
    (
        "state-lock",
        None,
        Some(
            r"error acquiring the state lock|state lock|lock info:|conditionalcheckfailedexception|resource temporarily unavailable",
        ),
        Transient,
    ),
    (
        "throttling",
        None,
        Some(
            r"throttl|rate exceeded|rate limit|ratelimit|too ?many ?requests|\b429\b|requestlimitexceeded|slow ?down|quota exceeded for quota metric|quotaexceeded|request rate higher|retry after|exceeded the rate",
        ),
        Transient,
    ),
    (
        "still-in-use",
        None,
        Some(
            r"dependencyviolation|has (a )?dependen(t|cies|cy)|still in use|resource ?is ?in ?use|resourceinuse|in use by|being used by|is currently being modified|currently in use|invalidgroup\.inuse|concurrentmodification|conflictingoperationinprogress|operation (is )?in progress|another operation|resourcenotready|is not in a valid state|pending deletion|failedprecondition.*(in use|being)|deleteconflict|invalid\w*state\b|already being deleted|still members? of|in the current (status|state)|has node ?groups attached",
        ),
        Transient,
    ),
    (
        "server-error",
        None,
        Some(
            r"\b50[0234]\b|internal\w*error|internal ?server ?error|internal error|serviceunavailable|service ?unavailable|bad gateway|gateway time-?out|backend ?error|serverbusy|server is busy|temporarily unavailable|try again later|retryable|please retry|unavailable",
        ),
        Transient,
    ),
    (
        "timeout",
        None,
        Some(
            r"context deadline exceeded|i/o timeout|timeout while waiting|timed out|timeout exceeded|tls handshake timeout|connection reset|connection refused|broken pipe|\beof\b|no such host|net/http: request canceled|client\.timeout|deadline exceeded|timeout waiting|waiting for .* timeout",
        ),
        Transient,
    ),
    (
        "eventual-consistency",
        None,
        Some(
            r"nosuchentity|does not exist yet|eventual(ly)? consisten|not yet (available|propagated)",
        ),
        Transient,
    ),
    // --- remaining permanent causes: invalid configuration -----------------------------
    (
        "invalid-config",
        None,
        Some(
            r"invalidparametervalue|invalidparametercombination|validationerror|validationexception|unsupported argument|invalid value|missing required argument|invalid reference|unsupported block type|invalid resource type|error: invalid|is not a valid|malformed|badrequest|bad request|\b400\b|invalidrequest|not supported|unknown variable|no value for required variable|reference to undeclared|invalid configuration|failed to query available provider packages|could not retrieve the list of available versions|incompatible provider version|unsupported attribute",
        ),
        Permanent,
    ),
    ("init-failed", Some("TFExecInitFailed"), None, Permanent),
];

fn builtin_rules() -> Vec<Rule> {
    BUILTIN
        .iter()
        .filter_map(|(name, reason, pattern, class)| {
            let pattern = match pattern {
                Some(p) => Some(compile(&format!("(?i){p}")).ok()?),
                None => None,
            };
            Some(Rule {
                name: (*name).to_string(),
                origin: RuleOrigin::BuiltIn,
                reason: reason.map(str::to_string),
                pattern,
                class: *class,
            })
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_builtin_pattern_compiles() {
        assert_eq!(builtin_rules().len(), BUILTIN.len());
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
    fn nothing_matched_is_unknown() {
        let r =
            Classifier::builtin().classify("TFExecApplyFailed", "the moon is in the wrong phase");
        assert_eq!(r.class, FailureClass::Unknown);
        assert!(r.rule.is_none());
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
