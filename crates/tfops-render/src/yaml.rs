//! YAML edges: parse one document into a `serde_json::Value` under the configured budget,
//! and serialise structured values back to YAML. serde-saphyr only.

use serde::Serialize;
use serde_json::Value;

use crate::Limits;

/// A YAML parse failure: a one-line message (no source snippet, which could echo values) and
/// the 1-based line inside the parsed text, when known.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct YamlError {
    /// What is wrong.
    pub message: String,
    /// Line inside the parsed text.
    pub line: Option<u64>,
}

impl std::fmt::Display for YamlError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.message)
    }
}

impl From<YamlError> for String {
    fn from(e: YamlError) -> String {
        e.message
    }
}

/// Parse one YAML document into a JSON value, enforcing nesting / alias / node budgets.
pub fn parse_value(text: &str, limits: &Limits) -> Result<Value, YamlError> {
    let options = serde_saphyr::options! {
        budget: serde_saphyr::budget! {
            max_depth: limits.max_depth,
            max_aliases: limits.max_aliases,
            max_nodes: limits.max_nodes,
            max_documents: 1,
        },
    };
    serde_saphyr::from_str_with_options::<Value>(text, options).map_err(|e| {
        let line = e.location().map(|l| l.line()).filter(|l| *l > 0);
        let message = e.without_snippet().to_string();
        let message = message.lines().next().unwrap_or("").trim().to_string();
        let message = message
            .strip_prefix("error: ")
            .unwrap_or(&message)
            .to_string();
        YamlError { message, line }
    })
}

/// Serialise a value as a YAML document body (no leading `---`), ending with a newline.
pub fn to_yaml<T: Serialize>(value: &T) -> Result<String, String> {
    let mut s = serde_saphyr::to_string(value).map_err(|e| e.to_string())?;
    if !s.ends_with('\n') {
        s.push('\n');
    }
    Ok(s)
}
