//! `ledger` — the orphan ledger: one Secret per `Terraform` CR that left the cluster without a
//! successful destroy (orphaned or force-removed), written BEFORE the step that lets it go.
//!
//! Format (cross-team contract): Secret `tfops-ledger-<cr name, shortened>-<uid[..8]>`,
//! `type: tfops.dev/ledger`, labels `tfops.dev/ledger: "v2"` (`"v1"` entries are still read),
//! `tfops.dev/release`, `tfops.dev/module`, `tfops.dev/cr-namespace`, `tfops.dev/decision`;
//! data:
//! - `entry.json`: a [`LedgerEntry`] (v2 adds the Source object or reference, the runner
//!   ServiceAccount / RoleBinding, the `varsFrom` references, tfstate checksums and parts);
//! - `outputs.<key>`: copied outputs Secret data;
//! - `vars.<i>.<key>`: data of the `i`-th recorded `varsFrom` object (as in a Secret, also for
//!   ConfigMaps);
//! - `tfstate.<key>`: copied tfstate Secret data (tofu-controller stores it gzip-compressed),
//!   unless it was moved to part Secrets.
//!
//! Size: a Secret holds at most 1 MiB. When everything does not fit under [`SECRET_BUDGET`],
//! the tfstate bytes are split into part Secrets `<ledger name>-p<n>` (type
//! `tfops.dev/ledger-part`, label `tfops.dev/ledger-part: <ledger name>`, data `part`), each at
//! most [`PART_SIZE`] bytes, listed in `entry.tfstateParts`; every tfstate key carries a SHA-256
//! (`entry.tfstateSha256`) checked when read back. When even the entry without the tfstate does
//! not fit, writing fails with [`LedgerError::TooLarge`] (and the guard lets nothing go).
//! The Secrets are not part of the Helm release, so they survive `helm uninstall`.
//!
//! [`format`]: pure conversion ([`LedgerRecord::to_secret`] / [`LedgerRecord::from_secret`]);
//! [`io`]: the thin kube writes/reads ([`write`], [`list`]).

pub mod format;
pub mod io;

pub use format::*;
pub use io::*;
