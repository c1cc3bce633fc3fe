//! `rules` — the written form of an extra failure-classifier rule, as the catalog config
//! (`guard.classifierRules`, validated by the post-renderer) and the guard
//! (`TFOPS_CLASSIFIER_RULES`, compiled by its classifier) both read it.

use serde::{Deserialize, Serialize};

use crate::progress::FailureClass;

/// One extra classifier rule: `{"pattern", "reason"?, "class", "why"?}`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RuleSpec {
    /// Regex (Rust `regex` syntax) searched in the condition message (raw or normalised).
    pub pattern: String,
    /// Optional exact condition reason the rule is limited to.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub reason: Option<String>,
    /// `transient` | `permanent` | `blocked-by-missing-dependency` | `unknown`.
    pub class: FailureClass,
    /// Optional one-line rationale, shown by `explain`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub why: Option<String>,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_the_documented_form_and_nothing_else() {
        let r: RuleSpec =
            serde_json::from_str(r#"{"pattern": "quota", "class": "transient"}"#).unwrap();
        assert_eq!(
            (r.pattern.as_str(), r.reason, r.class, r.why),
            ("quota", None, FailureClass::Transient, None)
        );
        let w: RuleSpec = serde_json::from_str(
            r#"{"pattern": "x", "class": "permanent", "why": "needs a human"}"#,
        )
        .unwrap();
        assert_eq!(w.why.as_deref(), Some("needs a human"));
        assert!(serde_json::from_str::<RuleSpec>(r#"{"pattern": "x", "class": "maybe"}"#).is_err());
        assert!(serde_json::from_str::<RuleSpec>(
            r#"{"pattern": "x", "class": "permanent", "extra": 1}"#
        )
        .is_err());
    }
}
