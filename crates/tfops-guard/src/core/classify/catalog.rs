//! `classify::catalog` — operator-supplied classifier rules (catalog `guard.classifierRules`,
//! env `TFOPS_CLASSIFIER_RULES`): parsing, and compiling them under limits so that a regex bomb
//! is rejected with an error naming the rule instead of stalling or exhausting the guard.

use regex::RegexBuilder;

use super::{Rule, RuleOrigin};

/// Environment variable holding extra classifier rules as a JSON array.
pub const ENV_CLASSIFIER_RULES: &str = "TFOPS_CLASSIFIER_RULES";

/// Longest accepted catalog pattern, in bytes.
pub const MAX_PATTERN_LEN: usize = 2048;
/// Most catalog rules accepted.
pub const MAX_RULES: usize = 256;
/// Compiled-program size limit per catalog pattern (bytes).
pub const SIZE_LIMIT: usize = 1 << 18;
/// Lazy-DFA cache limit per catalog pattern (bytes).
pub const DFA_SIZE_LIMIT: usize = 1 << 20;
/// Deepest accepted nesting of groups / repetitions.
pub const NEST_LIMIT: u32 = 32;

/// A classifier rule as written in catalog config / `TFOPS_CLASSIFIER_RULES` (one definition,
/// shared with the post-renderer's config validation).
pub use tfops_api::rules::RuleSpec;

/// Errors building a classifier from catalog rules.
#[derive(Debug, thiserror::Error)]
pub enum ClassifierError {
    /// The JSON was not an array of `{pattern, reason?, class, why?}`.
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
    /// A rule's pattern is longer than [`MAX_PATTERN_LEN`].
    #[error("classifier rules ({source_name}): rule [{index}] field \"pattern\": {len} bytes, longer than the {max}-byte limit")]
    TooLong {
        source_name: String,
        index: usize,
        len: usize,
        max: usize,
    },
    /// A rule's pattern compiles to a program over the size limit (a regex bomb such as
    /// `(a{1000}){1000}` or deeply nested repetitions).
    #[error("classifier rules ({source_name}): rule [{index}] field \"pattern\": rejected as too complex (compiled size over {limit} bytes or nesting deeper than {nest}; a regex bomb?): {error}")]
    TooComplex {
        source_name: String,
        index: usize,
        limit: usize,
        nest: u32,
        error: regex::Error,
    },
    /// More than [`MAX_RULES`] rules.
    #[error("classifier rules ({source_name}): {count} rules, more than the {max} accepted")]
    TooMany {
        source_name: String,
        count: usize,
        max: usize,
    },
}

/// Compile catalog rules, in order, under the limits above.
pub fn compile(specs: &[RuleSpec], source_name: &str) -> Result<Vec<Rule>, ClassifierError> {
    if specs.len() > MAX_RULES {
        return Err(ClassifierError::TooMany {
            source_name: source_name.to_string(),
            count: specs.len(),
            max: MAX_RULES,
        });
    }
    let mut rules = Vec::with_capacity(specs.len());
    for (index, spec) in specs.iter().enumerate() {
        if spec.pattern.len() > MAX_PATTERN_LEN {
            return Err(ClassifierError::TooLong {
                source_name: source_name.to_string(),
                index,
                len: spec.pattern.len(),
                max: MAX_PATTERN_LEN,
            });
        }
        let pattern = RegexBuilder::new(&spec.pattern)
            .size_limit(SIZE_LIMIT)
            .dfa_size_limit(DFA_SIZE_LIMIT)
            .nest_limit(NEST_LIMIT)
            .build()
            .map_err(|error| {
                let too_complex = matches!(error, regex::Error::CompiledTooBig(_))
                    || error.to_string().contains("nest");
                if too_complex {
                    ClassifierError::TooComplex {
                        source_name: source_name.to_string(),
                        index,
                        limit: SIZE_LIMIT,
                        nest: NEST_LIMIT,
                        error,
                    }
                } else {
                    ClassifierError::Regex {
                        source_name: source_name.to_string(),
                        index,
                        pattern: spec.pattern.clone(),
                        error,
                    }
                }
            })?;
        rules.push(Rule {
            name: format!("catalog[{index}]"),
            origin: RuleOrigin::Catalog,
            reason: spec.reason.clone(),
            pattern: Some(pattern),
            class: spec.class,
            provider: "catalog".to_string(),
            code: spec.reason.clone().unwrap_or_default(),
            why: spec
                .why
                .clone()
                .unwrap_or_else(|| format!("catalog rule [{index}] ({source_name})")),
            source: String::new(),
            builtin_pattern: None,
            guard: None,
        });
    }
    Ok(rules)
}

/// Parse and compile a JSON array of rules; empty / whitespace input = no rules.
pub fn parse(json: &str, source_name: &str) -> Result<Vec<Rule>, ClassifierError> {
    if json.trim().is_empty() {
        return Ok(Vec::new());
    }
    let specs: Vec<RuleSpec> =
        serde_json::from_str(json).map_err(|error| ClassifierError::Json {
            source_name: source_name.to_string(),
            error,
        })?;
    compile(&specs, source_name)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::core::classify::FailureClass;

    #[test]
    fn regex_bombs_are_rejected_naming_the_rule() {
        for bomb in [
            r"(a{1000}){1000}",
            r"((((((((((((((((((((((((((((((((((a))))))))))))))))))))))))))))))))))",
            r"\w{5000}",
        ] {
            let specs = vec![
                RuleSpec {
                    pattern: "fine".to_string(),
                    reason: None,
                    class: FailureClass::Transient,
                    why: None,
                },
                RuleSpec {
                    pattern: bomb.to_string(),
                    reason: None,
                    class: FailureClass::Transient,
                    why: None,
                },
            ];
            let e = compile(&specs, "env X").unwrap_err();
            assert!(
                matches!(e, ClassifierError::TooComplex { index: 1, .. }),
                "{bomb}: {e}"
            );
            let msg = e.to_string();
            assert!(
                msg.contains("rule [1]") && msg.contains("too complex"),
                "{msg}"
            );
        }
    }

    #[test]
    fn overlong_patterns_and_too_many_rules_are_rejected() {
        let long = RuleSpec {
            pattern: "a".repeat(MAX_PATTERN_LEN + 1),
            reason: None,
            class: FailureClass::Permanent,
            why: None,
        };
        let e = compile(std::slice::from_ref(&long), "catalog").unwrap_err();
        assert!(
            matches!(e, ClassifierError::TooLong { index: 0, .. }),
            "{e}"
        );
        assert!(e.to_string().contains("rule [0]"), "{e}");
        let ok = RuleSpec {
            pattern: "x".to_string(),
            ..long
        };
        let e = compile(&vec![ok; MAX_RULES + 1], "catalog").unwrap_err();
        assert!(matches!(e, ClassifierError::TooMany { .. }), "{e}");
    }

    #[test]
    fn why_is_carried_and_defaulted() {
        let rules = parse(
            r#"[{"pattern": "a", "class": "permanent", "why": "ours"}, {"pattern": "b", "class": "transient"}]"#,
            "env X",
        )
        .unwrap();
        assert_eq!(rules[0].why, "ours");
        assert_eq!(rules[1].why, "catalog rule [1] (env X)");
        assert_eq!(rules[1].provider, "catalog");
    }
}
