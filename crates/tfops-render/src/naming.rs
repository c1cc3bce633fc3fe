//! Kubernetes names: DNS-1123 validation and deterministic shortening to ≤ 63 characters
//! with a sha256-derived suffix.

use sha2::{Digest, Sha256};

/// Maximum length of a name we generate.
pub const MAX_NAME: usize = 63;

/// Which DNS-1123 rule a name must satisfy.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum NameRule {
    /// `[a-z0-9]([-a-z0-9]*[a-z0-9])?`, ≤ 63 (Services, Terraform CRs we generate, labels…).
    Label,
    /// Dot-separated labels, ≤ 253 (ServiceAccounts, Secrets, Roles…).
    Subdomain,
}

fn is_label(s: &str) -> bool {
    let b = s.as_bytes();
    !b.is_empty()
        && b.len() <= 63
        && b.iter()
            .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || *c == b'-')
        && b[0] != b'-'
        && b[b.len() - 1] != b'-'
}

/// Check `name` against `rule`; `Err` says why it is invalid.
pub fn validate(name: &str, rule: NameRule) -> Result<(), String> {
    let ok = match rule {
        NameRule::Label => is_label(name),
        NameRule::Subdomain => name.len() <= 253 && name.split('.').all(is_label),
    };
    if ok {
        Ok(())
    } else {
        let what = match rule {
            NameRule::Label => "a DNS-1123 label (lower-case letters, digits and '-', starting and ending alphanumeric, at most 63 characters)",
            NameRule::Subdomain => "a DNS-1123 subdomain (lower-case alphanumeric labels separated by '.', at most 253 characters)",
        };
        Err(format!("invalid name {name:?}: must be {what}"))
    }
}

/// Shorten `name` to at most `max` characters: keep a prefix and append `-<8 hex of
/// sha256(name)>`. Names that fit are returned unchanged. Deterministic.
pub fn shorten(name: &str, max: usize) -> String {
    if name.len() <= max {
        return name.to_string();
    }
    let digest = hex::encode(Sha256::digest(name.as_bytes()));
    let keep = max.saturating_sub(9);
    let mut prefix: String = name.chars().take(keep).collect();
    while prefix.len() > keep {
        prefix.pop();
    }
    while prefix.ends_with('-') || prefix.ends_with('.') {
        prefix.pop();
    }
    format!("{prefix}-{}", &digest[..8])
}

/// Shorten to ≤ 63 and validate: the name every generated object gets.
pub fn finish(name: &str, rule: NameRule) -> Result<String, String> {
    let short = shorten(name, MAX_NAME);
    validate(&short, rule)?;
    Ok(short)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn labels() {
        for ok in ["a", "orders-db", "a1", "0a", &"x".repeat(63)] {
            assert!(validate(ok, NameRule::Label).is_ok(), "{ok}");
        }
        for bad in ["", "-a", "a-", "A", "a_b", "a.b", &"x".repeat(64), "ä"] {
            assert!(validate(bad, NameRule::Label).is_err(), "{bad}");
        }
    }

    #[test]
    fn subdomains() {
        assert!(validate("a.b-c.d", NameRule::Subdomain).is_ok());
        assert!(validate("a..b", NameRule::Subdomain).is_err());
        assert!(validate(".a", NameRule::Subdomain).is_err());
    }

    #[test]
    fn shortening_is_deterministic_and_bounded() {
        let long = format!("{}-orders-db", "release".repeat(12));
        let a = finish(&long, NameRule::Label).unwrap();
        let b = finish(&long, NameRule::Label).unwrap();
        assert_eq!(a, b);
        assert!(a.len() <= 63);
        assert!(a.starts_with("releaserelease"));
        let other = finish(
            &format!("{}-orders-dc", "release".repeat(12)),
            NameRule::Label,
        )
        .unwrap();
        assert_ne!(a, other, "different names must stay different");
        assert_eq!(finish("short", NameRule::Label).unwrap(), "short");
    }

    #[test]
    fn shortening_never_leaves_a_dash_before_the_suffix() {
        let name = format!("{}-{}", "a".repeat(53), "b".repeat(20));
        let s = shorten(&name, 63);
        assert!(!s.contains("--"), "{s}");
        assert!(validate(&s, NameRule::Label).is_ok());
    }

    #[test]
    fn invalid_characters_are_not_repaired() {
        assert!(finish("Orders_DB", NameRule::Label).is_err());
    }
}
