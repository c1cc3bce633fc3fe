//! Getting our messages in front of a Helm user.
//!
//! When helm runs us as its post-renderer we are its direct child (the Helm 4 plugin wrapper
//! `exec`s us) and our stderr is a pipe into a buffer helm keeps to itself: Helm 4 never shows
//! it; Helm 3 shows it inside its error message when we fail, and drops it when we succeed.
//! So, besides our own stderr, lines are appended to helm's stderr (`/proc/<ppid>/fd/2`) when
//! helm would not show them itself, and only when that stream is a terminal, a pipe, or a file
//! helm opened for appending (helm writes a plain file at its own offset and would overwrite
//! our lines). Linux only (elsewhere: our stderr only).
use std::io::Write;

/// Which Helm runs us, if any.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Caller {
    /// Helm 4's plugin runtime (`HELM_PLUGIN_NAME=tfops-render`): stderr always dropped.
    Helm4Plugin,
    /// Helm 3's `--post-renderer <executable>`: stderr shown only on failure.
    Helm3Exec,
    /// Anything else (a shell, a test, …): our stderr is what the user sees.
    Other,
}

/// Whether helm would hide what we wrote to stderr.
pub fn hidden(caller: Caller, success: bool) -> bool {
    match caller {
        Caller::Helm4Plugin => true,
        Caller::Helm3Exec => success,
        Caller::Other => false,
    }
}

/// Lines written to stderr now and, at the end, to helm's stderr when helm hides ours.
pub struct Report {
    lines: Vec<String>,
}

impl Report {
    pub fn new() -> Self {
        Report { lines: Vec::new() }
    }

    pub fn line(&mut self, line: &str) {
        eprintln!("{line}");
        self.lines.push(line.to_string());
    }

    pub fn finish(self, success: bool) {
        if self.lines.is_empty() {
            return;
        }
        let caller = detect();
        if !hidden(caller, success) {
            return;
        }
        if let Some(mut helm) = open_parent_stderr() {
            let mut text = self.lines.join("\n");
            text.push('\n');
            // Best effort: the lines are on our own stderr already.
            let _ = helm.write_all(text.as_bytes());
        }
    }
}

#[cfg(target_os = "linux")]
fn detect() -> Caller {
    if std::env::var("HELM_PLUGIN_NAME").as_deref() == Ok(super::WHO) {
        return Caller::Helm4Plugin;
    }
    match super::helm_parent::HelmParent::detect() {
        Some(_) => Caller::Helm3Exec,
        None => Caller::Other,
    }
}

#[cfg(not(target_os = "linux"))]
fn detect() -> Caller {
    Caller::Other
}

/// Whether a `/proc/<pid>/fdinfo/<fd>` text shows O_APPEND (octal 02000) in `flags:`.
pub fn fdinfo_appends(fdinfo: &str) -> bool {
    fdinfo
        .lines()
        .find_map(|l| l.strip_prefix("flags:"))
        .and_then(|f| u32::from_str_radix(f.trim(), 8).ok())
        .is_some_and(|flags| flags & 0o2000 != 0)
}

#[cfg(target_os = "linux")]
fn open_parent_stderr() -> Option<std::fs::File> {
    use std::os::unix::fs::{FileTypeExt, MetadataExt};
    let ppid = std::os::unix::process::parent_id();
    let target = format!("/proc/{ppid}/fd/2");
    let theirs = std::fs::metadata(&target).ok()?;
    let ours = std::fs::metadata("/proc/self/fd/2").ok()?;
    if (theirs.dev(), theirs.ino()) == (ours.dev(), ours.ino()) {
        return None; // the same stream: already shown
    }
    let kind = theirs.file_type();
    let writable = kind.is_fifo()
        || kind.is_char_device()
        || (kind.is_file()
            && std::fs::read_to_string(format!("/proc/{ppid}/fdinfo/2"))
                .is_ok_and(|info| fdinfo_appends(&info)));
    if !writable {
        return None;
    }
    std::fs::OpenOptions::new().append(true).open(target).ok()
}

#[cfg(not(target_os = "linux"))]
fn open_parent_stderr() -> Option<std::fs::File> {
    None
}
