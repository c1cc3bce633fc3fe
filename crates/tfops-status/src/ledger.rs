//! Read side of the orphan ledger for status / orphans: a ledger Secret parsed with the
//! guard's own format (`tfops_guard::ledger`), kept together with where the Secret lives
//! (the ledger may be in another namespace than the CR, and `-A` lists across namespaces).

use k8s_openapi::api::core::v1::Secret;

pub use tfops_guard::ledger::{
    Cleanup, CleanupEvent, CleanupState, LedgerDecision, LedgerEntry, LedgerError, LedgerRecord,
    LABEL_LEDGER, LABEL_RELEASE, LEDGER_VERSION, LEDGER_VERSION_V1,
};

/// One ledger Secret: where it is, and what it says.
#[derive(Debug, Clone, PartialEq)]
pub struct LedgerItem {
    pub secret_namespace: String,
    pub secret_name: String,
    pub record: LedgerRecord,
}

/// `open` | `destroying` | `destroyed` | `destroy-failed`.
pub fn cleanup_str(state: CleanupState) -> &'static str {
    match state {
        CleanupState::Open => "open",
        CleanupState::Destroying => "destroying",
        CleanupState::Destroyed => "destroyed",
        CleanupState::DestroyFailed => "destroy-failed",
        CleanupState::Adopted => "adopted",
    }
}

/// Label selector of ledger Secrets, optionally of one release.
pub fn selector(release: Option<&str>) -> String {
    tfops_guard::ledger::selector(release)
}

impl LedgerItem {
    /// Parse a ledger Secret (error names the Secret and the field).
    pub fn from_secret(secret: &Secret) -> Result<Self, LedgerError> {
        Ok(Self {
            secret_namespace: secret.metadata.namespace.clone().unwrap_or_default(),
            secret_name: secret.metadata.name.clone().unwrap_or_default(),
            record: LedgerRecord::from_secret(secret)?,
        })
    }

    pub fn entry(&self) -> &LedgerEntry {
        &self.record.entry
    }

    pub fn cleanup_state(&self) -> CleanupState {
        self.record.entry.cleanup.state
    }

    /// True once `orphans destroy` finished the cleanup successfully, or `orphans adopt` handed
    /// the resources back to a release.
    pub fn cleaned_up(&self) -> bool {
        matches!(
            self.cleanup_state(),
            CleanupState::Destroyed | CleanupState::Adopted
        )
    }
}
