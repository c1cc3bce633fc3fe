//! Renders a [`StatusReport`] the kubectl way: `table` (upper-case header, space-aligned
//! columns), `wide` (more columns, untruncated messages), `json` and `yaml` (the stable report
//! schema). Ages are computed against an injected `now`; colour (state column only) is opt-in.

use chrono::{DateTime, Utc};

use crate::report::{StatusItem, StatusReport};
use crate::state::{Health, State};

/// Output format (`-o`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Format {
    Table,
    Wide,
    Json,
    Yaml,
}

impl std::str::FromStr for Format {
    type Err = RenderError;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        match s {
            "table" => Ok(Self::Table),
            "wide" => Ok(Self::Wide),
            "json" => Ok(Self::Json),
            "yaml" => Ok(Self::Yaml),
            other => Err(RenderError::Format(other.to_owned())),
        }
    }
}

/// Errors rendering.
#[derive(Debug, thiserror::Error)]
pub enum RenderError {
    #[error("unknown output format {0:?} (expected table, wide, json or yaml)")]
    Format(String),
    #[error("serialising the status report as JSON: {0}")]
    Json(#[from] serde_json::Error),
    #[error("serialising the status report as YAML: {0}")]
    Yaml(String),
}

/// How to render.
#[derive(Debug, Clone, Copy)]
pub struct RenderOptions {
    pub format: Format,
    pub color: bool,
    pub now: DateTime<Utc>,
}

/// Colour only on a terminal, and never when `NO_COLOR` is set to a non-empty value
/// (<https://no-color.org>).
pub fn use_colour(stdout_is_terminal: bool, no_color: Option<&std::ffi::OsStr>) -> bool {
    stdout_is_terminal && no_color.is_none_or(|v| v.is_empty())
}

/// Longest message shown in `table` format (wide shows it whole).
const TABLE_MESSAGE_MAX: usize = 100;

/// kubectl-style short duration (`45s`, `3m12s`, `25m`, `5h3m`, `20h`, `3d4h`, `40d`, `2y`).
pub fn human_duration(d: chrono::Duration) -> String {
    let secs = d.num_seconds();
    if secs < 0 {
        return "0s".to_owned();
    }
    let (m, h, day) = (secs / 60, secs / 3600, secs / 86_400);
    if secs < 120 {
        format!("{secs}s")
    } else if m < 10 {
        if secs % 60 == 0 {
            format!("{m}m")
        } else {
            format!("{m}m{}s", secs % 60)
        }
    } else if h < 3 {
        format!("{m}m")
    } else if h < 8 {
        if m % 60 == 0 {
            format!("{h}h")
        } else {
            format!("{h}h{}m", m % 60)
        }
    } else if h < 48 {
        format!("{h}h")
    } else if day < 8 {
        if h % 24 == 0 {
            format!("{day}d")
        } else {
            format!("{day}d{}h", h % 24)
        }
    } else if day < 365 * 2 {
        format!("{day}d")
    } else {
        format!("{}y", day / 365)
    }
}

fn age(now: DateTime<Utc>, t: Option<DateTime<Utc>>) -> String {
    t.map(|t| human_duration(now - t))
        .unwrap_or_else(|| "-".to_owned())
}

/// `main@sha1:4f0e1b2c…` → `main@4f0e1b2`; other formats shortened to 20 chars.
pub fn short_revision(rev: &str) -> String {
    if rev.is_empty() {
        return "-".to_owned();
    }
    if let Some((branch, digest)) = rev.split_once('@') {
        let hash = digest.split_once(':').map(|(_, h)| h).unwrap_or(digest);
        let short: String = hash.chars().take(7).collect();
        return format!("{branch}@{short}");
    }
    if let Some((branch, hash)) = rev.rsplit_once('/') {
        let short: String = hash.chars().take(7).collect();
        return format!("{branch}/{short}");
    }
    rev.chars().take(20).collect()
}

fn revision(item: &StatusItem, full: bool) -> String {
    let fmt = |r: &str| {
        if full {
            if r.is_empty() {
                "-".to_owned()
            } else {
                r.to_owned()
            }
        } else {
            short_revision(r)
        }
    };
    let r = &item.revision;
    match (r.source.is_empty(), r.last_applied.is_empty()) {
        (true, true) => "-".to_owned(),
        (false, true) => format!("{} (not applied)", fmt(&r.source)),
        (true, false) => fmt(&r.last_applied),
        (false, false) if r.source == r.last_applied => fmt(&r.source),
        (false, false) => format!("{} (applied {})", fmt(&r.source), fmt(&r.last_applied)),
    }
}

fn first_line(s: &str) -> &str {
    s.lines().next().unwrap_or("")
}

fn truncate(s: &str, max: usize) -> String {
    if s.chars().count() <= max {
        s.to_owned()
    } else {
        let mut t: String = s.chars().take(max.saturating_sub(3)).collect();
        t.push_str("...");
        t
    }
}

/// The MESSAGE column: the state's explanation, then the condition message.
fn message(item: &StatusItem, now: DateTime<Utc>, wide: bool) -> String {
    let raw = first_line(&item.message);
    let raw = if wide {
        raw.to_owned()
    } else {
        truncate(raw, TABLE_MESSAGE_MAX)
    };
    let with_reason = |prefix: &str| {
        let mut parts: Vec<String> = Vec::new();
        if !prefix.is_empty() {
            parts.push(prefix.to_owned());
        }
        if let Some(r) = item.reason.as_deref().filter(|r| !raw.starts_with(*r)) {
            parts.push(r.to_owned());
        }
        if !raw.is_empty() {
            parts.push(raw.clone());
        }
        parts.join(": ")
    };
    match item.state {
        State::PlanPending => match &item.pending_plan {
            Some(p) if p.plan_only => format!("plan {} (plan-only mode, never applied)", p.id),
            Some(p) => format!(
                "plan {} awaiting approval: {}",
                p.id,
                p.approve_command.as_deref().unwrap_or("")
            ),
            None => raw,
        },
        State::Drifted => {
            let mode = if item.detect_only {
                "drift detected (detect-only mode)"
            } else {
                "drift detected"
            };
            format!("{mode}: {raw}")
        }
        State::DestroyFailed => {
            let mut s = with_reason("");
            if let Some(d) = &item.destroy {
                s.push_str(&format!(" (attempt {}", d.attempts));
                if let Some(at) = d.escalates_at {
                    if at > now {
                        s.push_str(&format!(", escalates in {}", human_duration(at - now)));
                    } else {
                        s.push_str(", escalation due");
                    }
                }
                s.push(')');
            }
            s
        }
        State::Blocked => {
            let by = item.blocked_by.clone().unwrap_or_default();
            if raw.is_empty() || raw.starts_with(&by) {
                raw
            } else {
                format!("blocked by {by}: {raw}")
            }
        }
        State::Destroying => match item.destroy.as_ref().and_then(|d| d.phase.as_deref()) {
            Some(phase @ ("orphaning" | "force-removing" | "unlocking")) => {
                if raw.is_empty() {
                    format!("guard: {phase}")
                } else {
                    format!("guard: {phase}; {raw}")
                }
            }
            _ => raw,
        },
        State::Failed | State::Stalled => with_reason(""),
        // Our own text with the command to run: never truncated.
        State::Orphaned | State::ForceRemoved => first_line(&item.message).to_owned(),
        _ => raw,
    }
}

const GREEN: &str = "\u{1b}[32m";
const YELLOW: &str = "\u{1b}[33m";
const RED: &str = "\u{1b}[31m";
const RESET: &str = "\u{1b}[0m";

fn colour_of(item: &StatusItem) -> &'static str {
    match item.health.unwrap_or_else(|| item.state.health()) {
        Health::Healthy => GREEN,
        Health::Progressing => YELLOW,
        Health::Unhealthy => match item.state {
            State::PlanPending | State::Drifted | State::Suspended => YELLOW,
            _ => RED,
        },
    }
}

/// Render the report.
pub fn render(report: &StatusReport, opts: &RenderOptions) -> Result<String, RenderError> {
    match opts.format {
        Format::Json => {
            let mut s = serde_json::to_string_pretty(report)?;
            s.push('\n');
            Ok(s)
        }
        Format::Yaml => {
            serde_saphyr::to_string(report).map_err(|e| RenderError::Yaml(e.to_string()))
        }
        Format::Table | Format::Wide => Ok(table(report, opts)),
    }
}

fn table(report: &StatusReport, opts: &RenderOptions) -> String {
    if report.items.is_empty() {
        let what = match &report.scope.release {
            Some(r) => format!("release {r:?}"),
            None => "any release".to_owned(),
        };
        let where_ = match &report.scope.namespaces {
            Some(ns) => format!("namespace {}", ns.join(", ")),
            None => "any namespace".to_owned(),
        };
        return format!("No Terraform resources found for {what} in {where_}.\n");
    }
    let wide = opts.format == Format::Wide;
    let show_ns = report.scope.namespaces.as_ref().is_none_or(|n| n.len() > 1);
    let show_release = report.scope.release.is_none();
    let mut header: Vec<&str> = Vec::new();
    if show_ns {
        header.push("NAMESPACE");
    }
    if show_release {
        header.push("RELEASE");
    }
    header.extend([
        "MODULE", "NAME", "STATE", "READY", "REVISION", "PLANNED", "DRIFTED", "AGE",
    ]);
    if wide {
        header.extend(["SOURCE", "PLAN", "ATTEMPTS", "POLICY", "LEDGER"]);
    }
    header.push("MESSAGE");
    let state_col = header.iter().position(|h| *h == "STATE").unwrap_or(0);

    let mut rows: Vec<Vec<String>> = Vec::with_capacity(report.items.len());
    for item in &report.items {
        let mut row = Vec::with_capacity(header.len());
        if show_ns {
            row.push(item.namespace.clone());
        }
        if show_release {
            row.push(item.release.clone());
        }
        row.push(item.module.clone());
        row.push(item.name.clone());
        row.push(item.state.as_str().to_owned());
        row.push(item.ready.clone());
        row.push(revision(item, wide));
        row.push(age(opts.now, item.last_plan_at));
        row.push(age(opts.now, item.last_drift_detected_at));
        row.push(age(opts.now, item.created_at));
        if wide {
            row.push(
                item.source
                    .as_ref()
                    .map(|s| format!("{}/{}", s.kind, s.name))
                    .unwrap_or_else(|| "-".into()),
            );
            row.push(
                item.pending_plan
                    .as_ref()
                    .map(|p| p.id.clone())
                    .unwrap_or_else(|| "-".into()),
            );
            row.push(
                item.destroy
                    .as_ref()
                    .map(|d| d.attempts.to_string())
                    .unwrap_or_else(|| "-".into()),
            );
            row.push(
                item.policy
                    .as_ref()
                    .map(|p| {
                        format!(
                            "{}/{}",
                            p.uninstall.as_deref().unwrap_or("-"),
                            p.on_failure.as_deref().unwrap_or("-")
                        )
                    })
                    .unwrap_or_else(|| "-".into()),
            );
            row.push(
                item.ledger
                    .as_ref()
                    .map(|l| format!("{} ({})", l.name, l.cleanup))
                    .unwrap_or_else(|| "-".into()),
            );
        }
        row.push(message(item, opts.now, wide));
        rows.push(row);
    }

    let mut widths: Vec<usize> = header.iter().map(|h| h.chars().count()).collect();
    for row in &rows {
        for (i, cell) in row.iter().enumerate() {
            widths[i] = widths[i].max(cell.chars().count());
        }
    }
    let mut out = String::new();
    let last = header.len() - 1;
    let mut push_row = |cells: &[String], colour: Option<&str>| {
        let mut line = String::new();
        for (i, cell) in cells.iter().enumerate() {
            let padded = if i == last {
                cell.clone()
            } else {
                format!("{cell:<w$}   ", w = widths[i])
            };
            match colour {
                Some(c) if i == state_col => {
                    let (text, pad) = padded.split_at(cell.len());
                    line.push_str(&format!("{c}{text}{RESET}{pad}"));
                }
                _ => line.push_str(&padded),
            }
        }
        out.push_str(line.trim_end());
        out.push('\n');
    };
    let header_cells: Vec<String> = header.iter().map(|h| (*h).to_owned()).collect();
    push_row(&header_cells, None);
    for (row, item) in rows.iter().zip(&report.items) {
        push_row(row, opts.color.then(|| colour_of(item)));
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn durations_like_kubectl() {
        let d = chrono::Duration::seconds;
        assert_eq!(human_duration(d(45)), "45s");
        assert_eq!(human_duration(d(192)), "3m12s");
        assert_eq!(human_duration(d(25 * 60)), "25m");
        assert_eq!(human_duration(d(5 * 3600 + 180)), "5h3m");
        assert_eq!(human_duration(d(20 * 3600)), "20h");
        assert_eq!(human_duration(d(3 * 86_400 + 4 * 3600)), "3d4h");
        assert_eq!(human_duration(d(40 * 86_400)), "40d");
        assert_eq!(human_duration(d(800 * 86_400)), "2y");
        assert_eq!(human_duration(d(-5)), "0s");
    }

    #[test]
    fn revisions_are_shortened() {
        assert_eq!(short_revision("main@sha1:4f0e1b2c3d4e"), "main@4f0e1b2");
        assert_eq!(short_revision("main/4f0e1b2c3d4e"), "main/4f0e1b2");
        assert_eq!(short_revision(""), "-");
        assert_eq!(short_revision("v1.2.3"), "v1.2.3");
    }

    #[test]
    fn colour_only_on_a_terminal_without_no_color() {
        use std::ffi::OsStr;
        assert!(use_colour(true, None));
        assert!(use_colour(true, Some(OsStr::new(""))));
        assert!(!use_colour(true, Some(OsStr::new("1"))));
        assert!(!use_colour(false, None));
    }

    #[test]
    fn unknown_format_is_named() {
        let err = "xml".parse::<Format>().unwrap_err();
        assert_eq!(
            err.to_string(),
            "unknown output format \"xml\" (expected table, wide, json or yaml)"
        );
    }
}
