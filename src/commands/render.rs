//! `tfops render` (also run as `tfops-render`): Helm post-renderer edge. Reads Helm's rendered
//! manifests from stdin (bounded), runs the `tfops_render` core, and writes the result to
//! stdout only when the whole render succeeded; warnings and errors go to stderr.
//!
//! Helm captures a post-renderer's stderr: Helm 4 drops it always (the user reads only
//! `plugin "tfops-render" exited with error`), Helm 3 shows it only when we fail. So what the
//! user must read is also copied to helm's own stderr — see [`helm_stderr`].

use std::io::{Read, Write};
use std::path::PathBuf;

use anyhow::Context;
use tfops_render::{CatalogConfig, Limits, RenderOptions};

/// Prefix of every line this command writes to stderr, so users can tell who is speaking.
const WHO: &str = "tfops-render";

/// Arguments of `tfops render` (pass them with `--post-renderer-args`).
#[derive(Debug, clap::Args)]
pub struct Args {
    /// Release name (else the `app.kubernetes.io/instance` label the chart's objects share).
    #[arg(long)]
    pub release: Option<String>,
    /// Catalog configuration file.
    #[arg(long, env = "TFOPS_CONFIG")]
    pub config: Option<PathBuf>,
    /// Release namespace. Helm does not pass `-n` to post-renderers: give it here (or export
    /// HELM_NAMESPACE, which Helm also reads).
    #[arg(long, env = "HELM_NAMESPACE")]
    pub namespace: Option<String>,
    /// Anything else: reported as an error by us (not by the argument parser), so that Helm
    /// users see it too.
    #[arg(hide = true, num_args = 0.., trailing_var_arg = true, allow_hyphen_values = true)]
    pub unexpected: Vec<String>,
}

/// Run `tfops render`: exit 0 with the output on stdout, or 1 with the reason on stderr and
/// nothing on stdout.
pub fn run(args: Args) -> anyhow::Result<u8> {
    let mut report = helm_stderr::Report::new();
    let code = render(args, &mut report)?;
    report.finish(code == 0);
    Ok(code)
}

fn render(args: Args, report: &mut helm_stderr::Report) -> anyhow::Result<u8> {
    if !args.unexpected.is_empty() {
        report.line(&format!(
            "{WHO}: unexpected argument(s) {:?}; it takes --release NAME, --config FILE, --namespace NS (through --post-renderer-args)",
            args.unexpected
        ));
        return Ok(1);
    }
    let limits = Limits::default();
    let config = match &args.config {
        Some(path) => {
            let bytes = match std::fs::read(path) {
                Ok(bytes) => bytes,
                Err(e) => {
                    report.line(&format!(
                        "{WHO}: cannot read the catalog configuration {}: {e}",
                        path.display()
                    ));
                    return Ok(1);
                }
            };
            match CatalogConfig::from_yaml(&bytes, &path.display().to_string()) {
                Ok(config) => config,
                Err(e) => {
                    report.line(&format!("{WHO}: invalid catalog configuration: {e}"));
                    return Ok(1);
                }
            }
        }
        None => CatalogConfig::default(),
    };
    let input = match read_bounded(std::io::stdin().lock(), limits.max_input_bytes) {
        Ok(input) => input,
        Err(e) => {
            report.line(&format!("{WHO}: cannot read the manifests from stdin: {e}"));
            return Ok(1);
        }
    };
    let opts = RenderOptions {
        release: args.release.filter(|r| !r.is_empty()),
        namespace: args.namespace.filter(|n| !n.is_empty()),
        config,
        limits,
    };
    let rendered = match tfops_render::render(&input, &opts) {
        Ok(rendered) => rendered,
        Err(e) => {
            report.line(&format!("{WHO}: {e}"));
            return Ok(1);
        }
    };
    for warning in &rendered.warnings {
        report.line(&format!("{WHO}: warning: {warning}"));
    }
    let mut stdout = std::io::stdout().lock();
    stdout
        .write_all(&rendered.output)
        .and_then(|()| stdout.flush())
        .context("cannot write the rendered manifests to stdout")?;
    Ok(0)
}

/// Read all of `reader`, but at most `max + 1` bytes: enough for the core to tell an
/// oversize input (and name the limit) without letting a huge stream fill memory.
fn read_bounded(reader: impl Read, max: usize) -> std::io::Result<Vec<u8>> {
    let cap = u64::try_from(max).unwrap_or(u64::MAX).saturating_add(1);
    let mut input = Vec::new();
    reader.take(cap).read_to_end(&mut input)?;
    Ok(input)
}

/// Getting our messages in front of a Helm user.
///
/// When helm runs us as its post-renderer we are its direct child (the Helm 4 plugin wrapper
/// `exec`s us) and our stderr is a pipe into a buffer helm keeps to itself: Helm 4 never shows
/// it; Helm 3 shows it inside its error message when we fail, and drops it when we succeed.
/// So, besides our own stderr, lines are appended to helm's stderr (`/proc/<ppid>/fd/2`) when
/// helm would not show them itself, and only when that stream is a terminal, a pipe, or a file
/// helm opened for appending (helm writes a plain file at its own offset and would overwrite
/// our lines). Linux only (elsewhere: our stderr only).
mod helm_stderr {
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
        let ppid = std::os::unix::process::parent_id();
        match std::fs::read(format!("/proc/{ppid}/cmdline")) {
            Ok(cmdline) if is_helm_post_rendering(&cmdline) => Caller::Helm3Exec,
            _ => Caller::Other,
        }
    }

    #[cfg(not(target_os = "linux"))]
    fn detect() -> Caller {
        Caller::Other
    }

    /// A NUL-separated command line of a process run with `--post-renderer`.
    pub fn is_helm_post_rendering(cmdline: &[u8]) -> bool {
        cmdline
            .split(|b| *b == 0)
            .any(|arg| arg == b"--post-renderer" || arg.starts_with(b"--post-renderer="))
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
}

#[cfg(test)]
mod tests {
    use super::helm_stderr::{fdinfo_appends, hidden, is_helm_post_rendering, Caller};
    use super::*;

    #[test]
    fn read_bounded_stops_one_past_the_limit() {
        let data = vec![b'a'; 100];
        assert_eq!(read_bounded(&data[..], 10).unwrap().len(), 11);
        assert_eq!(read_bounded(&data[..], 100).unwrap().len(), 100);
        assert_eq!(read_bounded(&data[..], 1000).unwrap(), data);
    }

    #[test]
    fn what_helm_hides() {
        assert!(hidden(Caller::Helm4Plugin, true));
        assert!(hidden(Caller::Helm4Plugin, false));
        assert!(hidden(Caller::Helm3Exec, true));
        assert!(!hidden(Caller::Helm3Exec, false));
        assert!(!hidden(Caller::Other, true));
        assert!(!hidden(Caller::Other, false));
    }

    #[test]
    fn helm_command_lines() {
        assert!(is_helm_post_rendering(
            b"helm\0template\0r\0chart\0--post-renderer\0tfops-render\0"
        ));
        assert!(is_helm_post_rendering(
            b"helm\0install\0--post-renderer=tfops-render\0"
        ));
        assert!(!is_helm_post_rendering(
            b"bash\0-c\0helm template x | tfops render\0"
        ));
        assert!(!is_helm_post_rendering(b""));
    }

    #[test]
    fn fdinfo_flags() {
        assert!(fdinfo_appends("pos:\t0\nflags:\t0102001\nmnt_id:\t30\n"));
        assert!(!fdinfo_appends("pos:\t0\nflags:\t0100001\nmnt_id:\t30\n"));
        assert!(!fdinfo_appends("pos:\t0\n"));
    }
}
