//! YAML edges: parse one document into a `serde_json::Value` under the configured budget,
//! and serialise structured values back to YAML. serde-saphyr only.

use serde::Serialize;
use serde_json::Value;

use crate::Limits;

/// Parse one YAML document into a JSON value, enforcing nesting / alias / node budgets.
pub fn parse_value(text: &str, limits: &Limits) -> Result<Value, String> {
    let options = serde_saphyr::options! {
        budget: serde_saphyr::budget! {
            max_depth: limits.max_depth,
            max_aliases: limits.max_aliases,
            max_nodes: limits.max_nodes,
            max_documents: 1,
        },
    };
    serde_saphyr::from_str_with_options::<Value>(text, options).map_err(|e| e.to_string())
}

/// Serialise a value as a YAML document body (no leading `---`), ending with a newline.
pub fn to_yaml<T: Serialize>(value: &T) -> Result<String, String> {
    let mut s = serde_saphyr::to_string(value).map_err(|e| e.to_string())?;
    if !s.ends_with('\n') {
        s.push('\n');
    }
    Ok(s)
}
