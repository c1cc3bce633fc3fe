//! Test support for the install hook (`plugin/install-binary.sh`): a small HTTP server on
//! 127.0.0.1 that serves a fake GitHub release (archives + checksums.txt) and records what was
//! asked, fake release archives holding a shell-script `tfops`, fake `cargo` / `uname` tools,
//! PATHs restricted to named tools, and running the hook as Helm does.

use std::collections::HashMap;
use std::io::{BufRead, BufReader, Write};
use std::net::{SocketAddr, TcpListener, TcpStream};
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::process::{Command, Output};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::thread::JoinHandle;

use sha2::{Digest, Sha256};

use crate::common::{self, HelmHome};

/// Serves `files` (URL path → body) over HTTP/1.1, 404 for anything else; one connection at a
/// time (curl and wget make one request per connection here).
pub struct ReleaseServer {
    addr: SocketAddr,
    files: Arc<Mutex<HashMap<String, Vec<u8>>>>,
    requests: Arc<Mutex<Vec<String>>>,
    stop: Arc<AtomicBool>,
    thread: Option<JoinHandle<()>>,
}

impl ReleaseServer {
    pub fn start() -> Self {
        let listener = TcpListener::bind("127.0.0.1:0").expect("bind 127.0.0.1:0");
        let addr = listener.local_addr().expect("local addr");
        let files: Arc<Mutex<HashMap<String, Vec<u8>>>> = Arc::default();
        let requests: Arc<Mutex<Vec<String>>> = Arc::default();
        let stop = Arc::new(AtomicBool::new(false));
        let thread = {
            let (files, requests, stop) = (files.clone(), requests.clone(), stop.clone());
            std::thread::spawn(move || {
                for stream in listener.incoming() {
                    if stop.load(Ordering::SeqCst) {
                        break;
                    }
                    if let Ok(stream) = stream {
                        serve(stream, &files, &requests);
                    }
                }
            })
        };
        ReleaseServer {
            addr,
            files,
            requests,
            stop,
            thread: Some(thread),
        }
    }

    /// Base URL, the value of HELM_TFOPS_RELEASE_URL.
    pub fn url(&self) -> String {
        format!("http://{}", self.addr)
    }

    pub fn put(&self, path: &str, body: Vec<u8>) {
        self.files
            .lock()
            .expect("files lock")
            .insert(path.to_string(), body);
    }

    /// A release `v<version>`: every asset plus checksums.txt listing them (sha256sum format).
    pub fn put_release(&self, version: &str, assets: &[(String, Vec<u8>)]) {
        let mut checksums = String::new();
        for (name, bytes) in assets {
            checksums.push_str(&format!("{}  {name}\n", sha256_hex(bytes)));
            self.put(&format!("/v{version}/{name}"), bytes.clone());
        }
        self.put(
            &format!("/v{version}/checksums.txt"),
            checksums.into_bytes(),
        );
    }

    /// Paths requested so far, in order.
    pub fn requests(&self) -> Vec<String> {
        self.requests.lock().expect("requests lock").clone()
    }

    pub fn clear_requests(&self) {
        self.requests.lock().expect("requests lock").clear();
    }
}

impl Drop for ReleaseServer {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::SeqCst);
        // Wake the accept loop so that it sees `stop`.
        let _ = TcpStream::connect(self.addr);
        if let Some(thread) = self.thread.take() {
            let _ = thread.join();
        }
    }
}

fn serve(
    stream: TcpStream,
    files: &Mutex<HashMap<String, Vec<u8>>>,
    requests: &Mutex<Vec<String>>,
) {
    // A safety net against a client that never sends its request, not a timing assertion.
    let _ = stream.set_read_timeout(Some(std::time::Duration::from_secs(30)));
    let mut reader = BufReader::new(match stream.try_clone() {
        Ok(s) => s,
        Err(_) => return,
    });
    let mut request_line = String::new();
    if reader.read_line(&mut request_line).is_err() {
        return;
    }
    loop {
        let mut header = String::new();
        match reader.read_line(&mut header) {
            Ok(0) | Err(_) => break,
            Ok(_) if header == "\r\n" || header == "\n" => break,
            Ok(_) => {}
        }
    }
    let mut parts = request_line.split_whitespace();
    let (method, path) = (parts.next().unwrap_or(""), parts.next().unwrap_or(""));
    if path.is_empty() {
        return;
    }
    requests
        .lock()
        .expect("requests lock")
        .push(path.to_string());
    let body = files.lock().expect("files lock").get(path).cloned();
    let (status, body) = match body {
        Some(body) => ("200 OK", body),
        None => ("404 Not Found", b"Not Found\n".to_vec()),
    };
    let mut stream = stream;
    let head = format!(
        "HTTP/1.1 {status}\r\nContent-Length: {}\r\nContent-Type: application/octet-stream\r\nConnection: close\r\n\r\n",
        body.len()
    );
    let _ = stream.write_all(head.as_bytes());
    if method != "HEAD" {
        let _ = stream.write_all(&body);
    }
    let _ = stream.flush();
}

pub fn sha256_hex(bytes: &[u8]) -> String {
    hex::encode(Sha256::digest(bytes))
}

/// The platform of this machine in release-asset terms (`linux`/`darwin`, `amd64`/`arm64`).
pub fn this_platform() -> (&'static str, &'static str) {
    let os = match std::env::consts::OS {
        "linux" => "linux",
        "macos" => "darwin",
        other => panic!("no release binaries for {other}"),
    };
    let arch = match std::env::consts::ARCH {
        "x86_64" => "amd64",
        "aarch64" => "arm64",
        other => panic!("no release binaries for {other}"),
    };
    (os, arch)
}

/// What `uname -s` / `uname -m` print on a machine of that platform.
pub fn uname_of(os: &str, arch: &str) -> (&'static str, &'static str) {
    match (os, arch) {
        ("linux", "amd64") => ("Linux", "x86_64"),
        ("linux", "arm64") => ("Linux", "aarch64"),
        ("darwin", "amd64") => ("Darwin", "x86_64"),
        ("darwin", "arm64") => ("Darwin", "arm64"),
        other => panic!("no uname for {other:?}"),
    }
}

/// The release asset name the tests use (`tfops_<version>_<os>_<arch>.tar.gz`).
pub fn asset_name(version: &str, os: &str, arch: &str) -> String {
    format!("tfops_{version}_{os}_{arch}.tar.gz")
}

/// A shell script standing in for tfops: `--version` answers like the real binary, anything else
/// prints `fake tfops <label>: <args>`.
pub fn fake_tfops(version: &str, label: &str) -> String {
    format!(
        "#!/bin/sh\nif [ \"$1\" = --version ]; then echo 'tfops {version}'; exit 0; fi\necho 'fake tfops {label}:' \"$@\"\n"
    )
}

/// A release archive (`tar -czf`) holding only `tfops` = [`fake_tfops`].
pub fn fake_archive(version: &str, label: &str) -> Vec<u8> {
    let dir = tempfile::tempdir().expect("tempdir");
    let tfops = dir.path().join("tfops");
    write_executable(&tfops, &fake_tfops(version, label));
    let archive = dir.path().join("release.tar.gz");
    let out = Command::new("tar")
        .arg("-C")
        .arg(dir.path())
        .arg("-czf")
        .arg(&archive)
        .arg("tfops")
        .output()
        .expect("run tar");
    assert!(out.status.success(), "tar: {}", common::stderr(&out));
    std::fs::read(&archive).expect("read archive")
}

pub fn write_executable(path: &Path, text: &str) {
    std::fs::write(path, text).expect("write script");
    std::fs::set_permissions(path, std::fs::Permissions::from_mode(0o755)).expect("chmod");
}

/// A folder of fake tools to put first on PATH.
pub struct Fakes {
    pub dir: PathBuf,
    /// One line per `cargo` call: `<cwd>|<CARGO_TARGET_DIR>|<args>`.
    pub cargo_record: PathBuf,
}

impl Fakes {
    pub fn new(home: &HelmHome) -> Self {
        let dir = home.path("fakes");
        std::fs::create_dir_all(&dir).expect("mkdir fakes");
        let cargo_record = home.path("cargo-calls");
        Fakes { dir, cargo_record }
    }

    /// A `cargo` that records its call and "builds" `$CARGO_TARGET_DIR/release/tfops` (a
    /// [`fake_tfops`] of `version` labelled `built from source`).
    pub fn cargo(&self, version: &str) -> &Self {
        let built = self.dir.join("built-tfops");
        write_executable(&built, &fake_tfops(version, "built from source"));
        // Only builtins and tools of HOOK_TOOLS, so it also runs on a restricted PATH.
        let script = format!(
            "#!/bin/sh\necho \"$(pwd -P)|${{CARGO_TARGET_DIR:-}}|$*\" >> '{record}'\n\
             mkdir -p \"$CARGO_TARGET_DIR/release\" && cp '{built}' \"$CARGO_TARGET_DIR/release/tfops\"\n",
            record = self.cargo_record.display(),
            built = built.display(),
        );
        write_executable(&self.dir.join("cargo"), &script);
        self
    }

    /// A `uname` that reports this kernel name (`-s`) and machine (`-m`).
    pub fn uname(&self, sys: &str, machine: &str) -> &Self {
        let script = format!(
            "#!/bin/sh\ncase \"$1\" in -s) echo '{sys}' ;; -m) echo '{machine}' ;; *) echo '{sys}' ;; esac\n"
        );
        write_executable(&self.dir.join("uname"), &script);
        self
    }

    /// The calls the fake cargo recorded (`<cwd>|<CARGO_TARGET_DIR>|<args>`).
    pub fn cargo_calls(&self) -> Vec<String> {
        std::fs::read_to_string(&self.cargo_record)
            .map(|t| t.lines().map(str::to_string).collect())
            .unwrap_or_default()
    }
}

/// PATH with the fakes first, then the home's bin dir, then this process's PATH.
pub fn path_with(fakes: &Fakes, home: &HelmHome) -> std::ffi::OsString {
    let inherited = std::env::var_os("PATH").unwrap_or_default();
    std::env::join_paths(
        [fakes.dir.clone(), home.bin_dir()]
            .into_iter()
            .chain(std::env::split_paths(&inherited)),
    )
    .expect("PATH")
}

/// The tools the hook needs besides a downloader, a hasher and cargo.
pub const HOOK_TOOLS: [&str; 15] = [
    "sh", "dirname", "sed", "head", "uname", "mktemp", "rm", "awk", "tr", "tar", "gzip", "mkdir",
    "cp", "chmod", "mv",
];

/// A PATH of `fakes` then a folder with links to only `tools` (found on this process's PATH).
pub fn restricted_path(fakes: &Fakes, home: &HelmHome, tools: &[&str]) -> std::ffi::OsString {
    let dir = home.path("tools");
    std::fs::create_dir_all(&dir).expect("mkdir tools");
    let inherited = std::env::var_os("PATH").unwrap_or_default();
    for tool in tools.iter().chain(["ln"].iter()) {
        let link = dir.join(tool);
        if link.exists() {
            continue;
        }
        let found = std::env::split_paths(&inherited)
            .map(|d| d.join(tool))
            .find(|p| p.is_file())
            .unwrap_or_else(|| panic!("{tool} not on PATH"));
        std::os::unix::fs::symlink(found, link).expect("link tool");
    }
    std::env::join_paths([fakes.dir.clone(), dir]).expect("PATH")
}

/// A copy of the plugin (scripts and plugin.yaml files) in `home`, plus Cargo.toml when
/// `with_sources` (what the build fallback checks for; the fake cargo needs nothing else).
pub fn plugin_checkout(home: &HelmHome, with_sources: bool) -> PathBuf {
    let checkout = home.path("helm-tfops");
    common::copy_plugin_files(&common::repo_root(), &checkout);
    if with_sources {
        std::fs::copy(
            common::repo_root().join("Cargo.toml"),
            checkout.join("Cargo.toml"),
        )
        .expect("copy Cargo.toml");
    }
    checkout
}

/// `plugin/install-binary.sh` of `checkout`, run as Helm runs it (HELM_PLUGIN_DIR set), with the
/// home's environment, `path` as PATH and the extra variables.
pub fn run_hook(
    home: &HelmHome,
    checkout: &Path,
    path: &std::ffi::OsStr,
    env: &[(&str, &str)],
) -> Output {
    let mut cmd = home.command(checkout.join("plugin/install-binary.sh"));
    cmd.env("PATH", path).env("HELM_PLUGIN_DIR", checkout);
    for (k, v) in env {
        cmd.env(k, v);
    }
    cmd.output().expect("run install-binary.sh")
}

/// `helm plugin install <checkout>` with this home's real Helm, without TFOPS_BIN.
pub fn helm_plugin_install(
    home: &HelmHome,
    checkout: &Path,
    path: &std::ffi::OsStr,
    env: &[(&str, &str)],
) -> Output {
    let mut cmd = home.command(home.helm.binary());
    cmd.env("PATH", path)
        .args(["plugin", "install"])
        .arg(checkout);
    for (k, v) in env {
        cmd.env(k, v);
    }
    cmd.output().expect("run helm plugin install")
}

/// `helm <args>` with this home's real Helm, without TFOPS_BIN (so `plugin/tfops.sh` finds
/// `bin/tfops`).
pub fn helm_run(home: &HelmHome, path: &std::ffi::OsStr, args: &[&str]) -> Output {
    home.command(home.helm.binary())
        .env("PATH", path)
        .args(args)
        .output()
        .expect("run helm")
}

/// Output as one string (stdout then stderr) for messages.
pub fn all_output(out: &Output) -> String {
    format!("{}{}", common::stdout(out), common::stderr(out))
}
