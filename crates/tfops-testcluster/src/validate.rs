//! Object validation the real API server performs and our code could get wrong: object names
//! (RFC 1123 subdomain / label), label keys and values, and annotation size. Pure.

use crate::error::ApiError;
use serde_json::Value;

fn is_label_like(s: &str, max: usize, allow_dots: bool) -> bool {
    !s.is_empty()
        && s.len() <= max
        && s.chars().all(|c| {
            c.is_ascii_lowercase() || c.is_ascii_digit() || c == '-' || (allow_dots && c == '.')
        })
        && s.starts_with(|c: char| c.is_ascii_alphanumeric())
        && s.ends_with(|c: char| c.is_ascii_alphanumeric())
}

/// RFC 1123 DNS subdomain as Kubernetes checks it (≤ 253 in total, dot-separated parts of
/// lowercase alphanumerics and `-`).
pub fn is_dns_subdomain(s: &str) -> bool {
    is_label_like(s, 253, true) && s.split('.').all(|p| is_label_like(p, 253, false))
}

/// RFC 1123 DNS label (≤ 63, lowercase alphanumerics and `-`).
pub fn is_dns_label(s: &str) -> bool {
    is_label_like(s, 63, false)
}

/// Label value: empty, or ≤ 63 chars of `[A-Za-z0-9_.-]` starting and ending alphanumeric.
pub fn is_label_value(s: &str) -> bool {
    s.is_empty()
        || (s.len() <= 63
            && s.chars()
                .all(|c| c.is_ascii_alphanumeric() || matches!(c, '-' | '_' | '.'))
            && s.starts_with(|c: char| c.is_ascii_alphanumeric())
            && s.ends_with(|c: char| c.is_ascii_alphanumeric()))
}

/// Qualified name (label / annotation key): optional DNS-subdomain prefix + `/` + name part.
pub fn is_qualified_name(s: &str) -> bool {
    let (prefix, name) = match s.rsplit_once('/') {
        Some((p, n)) => (Some(p), n),
        None => (None, s),
    };
    prefix.is_none_or(is_dns_subdomain)
        && !name.is_empty()
        && name.len() <= 63
        && is_label_value(name)
}

/// Validate the name of an object of `kind`; names of namespaces, services and jobs must be
/// DNS labels, everything else DNS subdomains.
pub fn validate_name(kind: &str, name: &str) -> Result<(), ApiError> {
    let label = matches!(kind, "Namespace" | "Service" | "Job");
    let ok = if label {
        is_dns_label(name)
    } else {
        is_dns_subdomain(name)
    };
    if ok {
        Ok(())
    } else if label {
        Err(ApiError::invalid(
            kind,
            name,
            format!("metadata.name: Invalid value: \"{name}\": a lowercase RFC 1123 label must consist of lower case alphanumeric characters or '-', and must start and end with an alphanumeric character and be at most 63 characters"),
        ))
    } else {
        Err(ApiError::invalid(
            kind,
            name,
            format!("metadata.name: Invalid value: \"{name}\": a lowercase RFC 1123 subdomain must consist of lower case alphanumeric characters, '-' or '.', and must start and end with an alphanumeric character"),
        ))
    }
}

/// Validate `metadata.labels`, `metadata.annotations` and `metadata.finalizers` shapes.
pub fn validate_metadata(kind: &str, name: &str, obj: &Value) -> Result<(), ApiError> {
    let meta = obj.get("metadata");
    if let Some(labels) = meta.and_then(|m| m.get("labels")) {
        let Some(map) = labels.as_object() else {
            return Err(ApiError::invalid(
                kind,
                name,
                "metadata.labels: must be a map of strings",
            ));
        };
        for (k, v) in map {
            if !is_qualified_name(k) {
                return Err(ApiError::invalid(
                    kind,
                    name,
                    format!("metadata.labels: Invalid value: \"{k}\": name part must consist of alphanumeric characters, '-', '_' or '.', and must start and end with an alphanumeric character"),
                ));
            }
            let Some(s) = v.as_str() else {
                return Err(ApiError::invalid(
                    kind,
                    name,
                    format!("metadata.labels.{k}: must be a string"),
                ));
            };
            if !is_label_value(s) {
                return Err(ApiError::invalid(
                    kind,
                    name,
                    format!("metadata.labels: Invalid value: \"{s}\": a valid label must be an empty string or consist of alphanumeric characters, '-', '_' or '.', and must start and end with an alphanumeric character (must be no more than 63 characters)"),
                ));
            }
        }
    }
    if let Some(ann) = meta.and_then(|m| m.get("annotations")) {
        let Some(map) = ann.as_object() else {
            return Err(ApiError::invalid(
                kind,
                name,
                "metadata.annotations: must be a map of strings",
            ));
        };
        let mut total = 0usize;
        for (k, v) in map {
            if !is_qualified_name(k) {
                return Err(ApiError::invalid(
                    kind,
                    name,
                    format!("metadata.annotations: Invalid value: \"{k}\""),
                ));
            }
            let Some(s) = v.as_str() else {
                return Err(ApiError::invalid(
                    kind,
                    name,
                    format!("metadata.annotations.{k}: must be a string"),
                ));
            };
            total += k.len() + s.len();
        }
        if total > 256 * 1024 {
            return Err(ApiError::invalid(
                kind,
                name,
                "metadata.annotations: Too long: must have at most 262144 bytes",
            ));
        }
    }
    if let Some(f) = meta.and_then(|m| m.get("finalizers")) {
        let ok = f
            .as_array()
            .is_some_and(|a| a.iter().all(|x| x.as_str().is_some_and(is_qualified_name)));
        if !ok {
            return Err(ApiError::invalid(
                kind,
                name,
                "metadata.finalizers: must be a list of qualified names",
            ));
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn names() {
        assert!(is_dns_subdomain("tfops-ledger-a.b-1"));
        assert!(!is_dns_subdomain("Upper"));
        assert!(!is_dns_subdomain("-a"));
        assert!(!is_dns_subdomain(&"a".repeat(254)));
        assert!(is_dns_label(&"a".repeat(63)));
        assert!(!is_dns_label(&"a".repeat(64)));
        assert!(validate_name("Job", &"j".repeat(64)).is_err());
        assert!(validate_name("Secret", &"s".repeat(64)).is_ok());
        assert!(validate_name("Namespace", "a.b").is_err());
    }

    #[test]
    fn labels() {
        assert!(is_qualified_name("tfops.dev/release"));
        assert!(is_qualified_name("app"));
        assert!(!is_qualified_name("Bad_/x"));
        assert!(is_label_value(""));
        assert!(!is_label_value(&"v".repeat(64)));
        let ok = json!({"metadata": {"labels": {"tfops.dev/release": "r1"}, "finalizers": ["finalizers.tf.contrib.fluxcd.io"]}});
        assert!(validate_metadata("Terraform", "x", &ok).is_ok());
        let bad = json!({"metadata": {"labels": {"a": "-bad-"}}});
        assert!(validate_metadata("Secret", "x", &bad).is_err_and(|e| e.code == 422));
        let bad2 = json!({"metadata": {"labels": {"a": 1}}});
        assert!(validate_metadata("Secret", "x", &bad2).is_err());
    }
}
