//! Shared helpers of the real-Helm tests (`tests/helm_*.rs`): the pinned Helm 4.1.4 and
//! 3.16.1 binaries, an isolated Helm home per test (cache/config/data/plugins + a PATH bin
//! dir), plugin installation from this checkout, and parsing of rendered manifests.
#![allow(dead_code)]

use std::ffi::OsStr;
use std::path::{Path, PathBuf};
use std::process::{Command, Output};
use std::sync::Once;

use serde_json::Value;

/// The two Helm majors every Helm-facing case runs on.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Helm {
    V4,
    V3,
}

pub const BOTH: [Helm; 2] = [Helm::V4, Helm::V3];

impl Helm {
    pub fn version(self) -> &'static str {
        match self {
            Helm::V4 => "v4.1.4",
            Helm::V3 => "v3.16.1",
        }
    }

    fn env_override(self) -> &'static str {
        match self {
            Helm::V4 => "HELM4_BIN",
            Helm::V3 => "HELM3_BIN",
        }
    }

    /// Path of the pinned binary: `$HELM4_BIN`/`$HELM3_BIN`, else `.cache/helm/<ver>/helm`
    /// (fetched with scripts/fetch-helm.sh when missing).
    pub fn binary(self) -> PathBuf {
        if let Some(path) = std::env::var_os(self.env_override()) {
            return PathBuf::from(path);
        }
        let path = repo_root()
            .join(".cache/helm")
            .join(self.version())
            .join("helm");
        if !path.is_file() {
            fetch_helm();
        }
        assert!(
            path.is_file(),
            "Helm {} is missing at {}: run `make helm` (scripts/fetch-helm.sh) or set {}",
            self.version(),
            path.display(),
            self.env_override()
        );
        path
    }
}

fn fetch_helm() {
    static FETCH: Once = Once::new();
    FETCH.call_once(|| {
        let status = Command::new(repo_root().join("scripts/fetch-helm.sh"))
            .status()
            .expect("run scripts/fetch-helm.sh");
        assert!(status.success(), "scripts/fetch-helm.sh failed ({status})");
    });
}

/// The checkout this test runs from (the `tfops` plugin root).
pub fn repo_root() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}

/// The `tfops` binary built for this test run.
pub fn tfops_bin() -> PathBuf {
    PathBuf::from(env!("CARGO_BIN_EXE_tfops"))
}

/// Files of the `tfops` CLI plugin and the `tfops-render` plugin as an install of the plugin
/// holds them (the scripts Helm runs, both plugin.yaml files), without sources or binaries.
pub const PLUGIN_FILES: [&str; 5] = [
    "plugin.yaml",
    "plugin/tfops.sh",
    "plugin/install-binary.sh",
    "plugins/tfops-render/plugin.yaml",
    "plugins/tfops-render/tfops-render.sh",
];

/// Copy [`PLUGIN_FILES`] from the checkout `from` into `to`.
pub fn copy_plugin_files(from: &Path, to: &Path) {
    for file in PLUGIN_FILES {
        let dest = to.join(file);
        std::fs::create_dir_all(dest.parent().expect("a parent")).expect("mkdir");
        std::fs::copy(from.join(file), &dest)
            .unwrap_or_else(|e| panic!("copy {file} to {}: {e}", dest.display()));
    }
}

pub fn chart(name: &str) -> PathBuf {
    repo_root().join("charts-example").join(name)
}

/// An isolated Helm home: its own cache/config/data/plugins dirs, HOME, and ~/.local/bin first on
/// PATH (where `helm tfops setup` puts `tfops-render` on Helm 3). Nothing leaks in from the
/// caller's environment except PATH (for sh, sed, …).
pub struct HelmHome {
    pub helm: Helm,
    pub dir: tempfile::TempDir,
}

impl HelmHome {
    pub fn new(helm: Helm) -> Self {
        let dir = tempfile::tempdir().expect("tempdir");
        for sub in ["cache", "config", "data/plugins", "home/.local/bin", "tmp"] {
            std::fs::create_dir_all(dir.path().join(sub)).expect("mkdir");
        }
        HelmHome { helm, dir }
    }

    pub fn path(&self, sub: &str) -> PathBuf {
        self.dir.path().join(sub)
    }

    pub fn plugins_dir(&self) -> PathBuf {
        self.path("data/plugins")
    }

    pub fn bin_dir(&self) -> PathBuf {
        self.path("home/.local/bin")
    }

    /// A command with this home's environment (no TFOPS_BIN: see [`Self::helm`]).
    pub fn command(&self, program: impl AsRef<OsStr>) -> Command {
        let mut cmd = Command::new(program);
        let path = std::env::join_paths(std::iter::once(self.bin_dir()).chain(
            std::env::split_paths(&std::env::var_os("PATH").unwrap_or_default()),
        ))
        .expect("PATH");
        cmd.env_clear()
            .env("PATH", path)
            .env("HOME", self.path("home"))
            .env("TMPDIR", self.path("tmp"))
            .env("HELM_CACHE_HOME", self.path("cache"))
            .env("HELM_CONFIG_HOME", self.path("config"))
            .env("HELM_DATA_HOME", self.path("data"))
            .env("HELM_PLUGINS", self.plugins_dir());
        cmd
    }

    /// `helm` (this home's version) with `TFOPS_BIN` pointing at the test build of tfops.
    pub fn helm<I, S>(&self, args: I) -> Command
    where
        I: IntoIterator<Item = S>,
        S: AsRef<OsStr>,
    {
        let mut cmd = self.command(self.helm.binary());
        cmd.env("TFOPS_BIN", tfops_bin()).args(args);
        cmd
    }

    /// Run helm, returning the output whatever the status.
    pub fn run<I, S>(&self, args: I) -> Output
    where
        I: IntoIterator<Item = S>,
        S: AsRef<OsStr>,
    {
        self.helm(args).output().expect("run helm")
    }

    /// Run helm and require success; returns stdout.
    pub fn ok<I, S>(&self, args: I) -> String
    where
        I: IntoIterator<Item = S>,
        S: AsRef<OsStr>,
    {
        let args: Vec<S> = args.into_iter().collect();
        let shown: Vec<String> = args
            .iter()
            .map(|a| a.as_ref().to_string_lossy().into_owned())
            .collect();
        let out = self.run(&args);
        assert!(
            out.status.success(),
            "helm {} ({}) failed: {}\nstdout:\n{}\nstderr:\n{}",
            shown.join(" "),
            self.helm.version(),
            out.status,
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        );
        String::from_utf8(out.stdout).expect("utf-8 stdout")
    }

    /// Install the `tfops` CLI plugin from `root` and run `helm tfops setup`, as a user does.
    pub fn install_plugins_from(&self, root: &Path) {
        self.ok([
            OsStr::new("plugin"),
            OsStr::new("install"),
            root.as_os_str(),
        ]);
        self.ok(["tfops", "setup"]);
    }

    /// Install both plugins from this checkout.
    pub fn install_plugins(&self) {
        self.install_plugins_from(&repo_root());
    }

    /// `helm template <release> <chart> --post-renderer tfops-render [extra…]`.
    pub fn template_rendered(&self, release: &str, chart: &Path, extra: &[&str]) -> Output {
        let mut args: Vec<&OsStr> = vec![
            OsStr::new("template"),
            OsStr::new(release),
            chart.as_os_str(),
            OsStr::new("--post-renderer"),
            OsStr::new("tfops-render"),
        ];
        args.extend(extra.iter().map(OsStr::new));
        self.run(args)
    }
}

/// Parse a rendered multi-document stream into JSON values (empty documents skipped).
pub fn parse_docs(stream: &str) -> Vec<Value> {
    split_docs(stream)
        .into_iter()
        .filter_map(|doc| {
            let value: Value = serde_saphyr::from_str(&doc)
                .unwrap_or_else(|e| panic!("rendered document is not YAML ({e}):\n{doc}"));
            (!value.is_null()).then_some(value)
        })
        .collect()
}

/// Split on `---` document markers (lines starting with `---`).
fn split_docs(stream: &str) -> Vec<String> {
    let mut docs = vec![String::new()];
    for line in stream.split_inclusive('\n') {
        if line.starts_with("---") {
            docs.push(String::new());
        } else if let Some(last) = docs.last_mut() {
            last.push_str(line);
        }
    }
    docs
}

pub fn kind(doc: &Value) -> &str {
    doc["kind"].as_str().unwrap_or_default()
}

pub fn name(doc: &Value) -> &str {
    doc["metadata"]["name"].as_str().unwrap_or_default()
}

pub fn annotation<'a>(doc: &'a Value, key: &str) -> Option<&'a str> {
    doc["metadata"]["annotations"][key].as_str()
}

pub fn label<'a>(doc: &'a Value, key: &str) -> Option<&'a str> {
    doc["metadata"]["labels"][key].as_str()
}

/// `(kind, name)` pairs of the documents, sorted.
pub fn kinds_and_names(docs: &[Value]) -> Vec<(String, String)> {
    let mut out: Vec<(String, String)> = docs
        .iter()
        .map(|d| (kind(d).to_string(), name(d).to_string()))
        .collect();
    out.sort();
    out
}

pub fn find<'a>(docs: &'a [Value], kind_: &str, name_: &str) -> Option<&'a Value> {
    docs.iter().find(|d| kind(d) == kind_ && name(d) == name_)
}

pub fn stderr(out: &Output) -> String {
    String::from_utf8_lossy(&out.stderr).into_owned()
}

pub fn stdout(out: &Output) -> String {
    String::from_utf8_lossy(&out.stdout).into_owned()
}
