//! `policy` — the per-CR uninstall policy vocabulary: [`UninstallPolicy`] (`destroy` |
//! `retain`) and [`OnFailure`] (`orphan` | `force` | `block`), with one spelling, one parser
//! (`FromStr`: surrounding blanks and letter case are ignored) and serde through both. The
//! post-renderer validates declarations and adopted CRs' annotations with it; the guard
//! resolves the annotations with it, so both accept exactly the same values.

use std::fmt;

use serde::{Deserialize, Deserializer, Serialize, Serializer};

/// What to do with the cloud resources when the release is uninstalled.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum UninstallPolicy {
    /// Run `terraform destroy` through tofu-controller (`destroyResourcesOnDeletion: true`).
    Destroy,
    /// Keep the cloud resources: ledger entry, then release the CR without destroying.
    Retain,
}

/// What to do when the destroy cannot complete (permanent failure, retries exhausted, the CR's
/// share of the budget used up, controller absent).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum OnFailure {
    /// Ledger entry, then `destroyResourcesOnDeletion: false` so the controller releases the
    /// CR without destroying (falls back to force when the controller cannot do that).
    Orphan,
    /// Ledger entry, then strip the tofu-controller finalizers (audited).
    Force,
    /// Stop: the guard fails (non-zero) with a message saying what to do next.
    Block,
}

/// A policy value that is none of the allowed spellings.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("invalid value {value:?}: expected {expected}")]
pub struct PolicyValueError {
    /// What was given.
    pub value: String,
    /// The allowed spellings, for the message.
    pub expected: &'static str,
}

macro_rules! spelled_enum {
    ($ty:ident, $expected:literal, $($variant:ident => $text:literal),+) => {
        impl $ty {
            /// Every value, in declaration order.
            pub const ALL: &'static [$ty] = &[$($ty::$variant),+];

            /// The annotation / YAML spelling.
            pub fn as_str(self) -> &'static str {
                match self {
                    $($ty::$variant => $text),+
                }
            }
        }

        impl fmt::Display for $ty {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str(self.as_str())
            }
        }

        impl std::str::FromStr for $ty {
            type Err = PolicyValueError;
            fn from_str(s: &str) -> Result<Self, PolicyValueError> {
                let wanted = s.trim();
                Self::ALL
                    .iter()
                    .copied()
                    .find(|v| v.as_str().eq_ignore_ascii_case(wanted))
                    .ok_or_else(|| PolicyValueError {
                        value: s.to_string(),
                        expected: $expected,
                    })
            }
        }

        impl Serialize for $ty {
            fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
                s.serialize_str(self.as_str())
            }
        }

        impl<'de> Deserialize<'de> for $ty {
            fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
                let text = String::deserialize(d)?;
                text.parse().map_err(serde::de::Error::custom)
            }
        }
    };
}

spelled_enum!(UninstallPolicy, "destroy or retain", Destroy => "destroy", Retain => "retain");
spelled_enum!(OnFailure, "orphan, force or block", Orphan => "orphan", Force => "force", Block => "block");

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn spellings_round_trip() {
        for p in UninstallPolicy::ALL {
            assert_eq!(p.as_str().parse::<UninstallPolicy>(), Ok(*p));
            let json = serde_json::to_string(p).unwrap();
            assert_eq!(serde_json::from_str::<UninstallPolicy>(&json).unwrap(), *p);
        }
        for p in OnFailure::ALL {
            assert_eq!(p.as_str().parse::<OnFailure>(), Ok(*p));
            assert_eq!(p.to_string(), p.as_str());
        }
    }

    #[test]
    fn blanks_and_case_are_ignored_anything_else_is_named() {
        assert_eq!(
            " Retain ".parse::<UninstallPolicy>(),
            Ok(UninstallPolicy::Retain)
        );
        assert_eq!("BLOCK".parse::<OnFailure>(), Ok(OnFailure::Block));
        let e = "maybe".parse::<UninstallPolicy>().unwrap_err();
        assert_eq!(
            e.to_string(),
            "invalid value \"maybe\": expected destroy or retain"
        );
        let e = serde_json::from_str::<OnFailure>("\"panic\"").unwrap_err();
        assert!(e.to_string().contains("orphan, force or block"), "{e}");
    }
}
