//! The `status` flow: fetch (one LIST per namespace + the ledger) → build the report → render;
//! and its `--watch` variant re-rendering on every watch event.

use std::io::Write;
use std::ops::ControlFlow;

use chrono::{DateTime, Utc};
use kube::Client;

use crate::fetch::{fetch, FetchError, Namespaces, Selection, Snapshot};
use crate::render::{render, RenderError, RenderOptions};
use crate::report::{build, Scope, StatusReport};

/// Errors of the status flow.
#[derive(Debug, thiserror::Error)]
pub enum StatusError {
    #[error(transparent)]
    Fetch(#[from] FetchError),
    #[error(transparent)]
    Render(#[from] RenderError),
    #[error("writing output: {0}")]
    Io(#[from] std::io::Error),
}

/// Scope of a selection, as the report records it.
pub fn scope_of(sel: &Selection) -> Scope {
    Scope {
        namespaces: match &sel.namespaces {
            Namespaces::One(ns) => Some(vec![ns.clone()]),
            Namespaces::All => None,
        },
        release: sel.release.clone(),
    }
}

/// Build a report from a snapshot.
pub fn report_of(snap: &Snapshot, sel: &Selection, now: DateTime<Utc>) -> StatusReport {
    build(&snap.terraforms, &snap.ledger, scope_of(sel), now)
}

/// Warnings about unreadable ledger Secrets (never their values).
pub fn warnings(snap: &Snapshot) -> Vec<String> {
    snap.ledger_errors
        .iter()
        .map(|e| format!("warning: skipping unreadable ledger entry: {e}"))
        .collect()
}

/// One-shot status: returns the rendered text, the exit code and warnings.
pub async fn status_once(
    client: &Client,
    sel: &Selection,
    opts: &RenderOptions,
) -> Result<(String, u8, Vec<String>), StatusError> {
    let snap = fetch(client, sel).await?;
    let report = report_of(&snap, sel, opts.now);
    let text = render(&report, opts)?;
    Ok((text, report.summary.exit_code, warnings(&snap)))
}

/// `--watch`: render after every change to `out` until `stop` says so (given the latest
/// report); returns the last exit code. `clock` gives `now` for each frame; `clear` prefixes
/// each frame with a screen clear (TTY).
pub async fn status_watch<W, S>(
    client: &Client,
    sel: &Selection,
    opts: &RenderOptions,
    clock: &dyn Fn() -> DateTime<Utc>,
    clear: bool,
    out: &mut W,
    mut stop: S,
) -> Result<u8, StatusError>
where
    W: Write,
    S: FnMut(&StatusReport) -> bool,
{
    let mut last = crate::report::EXIT_NOT_FOUND;
    let mut failure: Option<StatusError> = None;
    crate::watch::watch(client, sel, |snap| {
        let now = clock();
        let report = report_of(snap, sel, now);
        last = report.summary.exit_code;
        let frame = render(&report, &RenderOptions { now, ..*opts });
        let written = frame.map_err(StatusError::from).and_then(|text| {
            if clear {
                out.write_all(b"\x1b[H\x1b[2J")?;
            }
            out.write_all(text.as_bytes())?;
            if !clear {
                out.write_all(b"\n")?;
            }
            out.flush()?;
            Ok(())
        });
        if let Err(e) = written {
            failure = Some(e);
            return ControlFlow::Break(());
        }
        if stop(&report) {
            ControlFlow::Break(())
        } else {
            ControlFlow::Continue(())
        }
    })
    .await?;
    match failure {
        Some(e) => Err(e),
        None => Ok(last),
    }
}
