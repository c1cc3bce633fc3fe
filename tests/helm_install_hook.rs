//! The `tfops` plugin's install hook (`plugin/install-binary.sh`) against a fake release served
//! by the test over HTTP: the archive's SHA-256 checked before anything is installed, a
//! tampered archive refused, the `cargo build` fallback (a fake cargo on PATH) when there is no
//! release binary to use, HELM_TFOPS_VERSION, TFOPS_BIN for offline installs, curl / wget and
//! sha256sum / shasum. Through the real Helm 4 and 3 `helm plugin install` where it is cheap.

use std::path::Path;

use crate::common::{self, stderr, stdout, tfops_bin, Helm, HelmHome, BOTH};
use crate::fake_release::{
    all_output, asset_name, fake_archive, fake_tfops, helm_plugin_install, helm_run, path_with,
    plugin_checkout, restricted_path, run_hook, this_platform, Fakes, ReleaseServer, HOOK_TOOLS,
};

const VERSION: &str = env!("CARGO_PKG_VERSION");

/// The platform that is not this one (for a release that lacks this machine's binary).
fn other_platform() -> (&'static str, &'static str) {
    match this_platform() {
        ("linux", _) => ("darwin", "arm64"),
        _ => ("linux", "amd64"),
    }
}

/// A release `v<version>` with an archive for this machine and one for another platform.
fn serve_full_release(server: &ReleaseServer, version: &str) {
    let (os, arch) = this_platform();
    let (o2, a2) = other_platform();
    server.put_release(
        version,
        &[
            (
                asset_name(version, os, arch),
                fake_archive(version, &format!("release {os}/{arch}")),
            ),
            (
                asset_name(version, o2, a2),
                fake_archive(version, &format!("release {o2}/{a2}")),
            ),
        ],
    );
}

fn this_asset_path(version: &str) -> String {
    let (os, arch) = this_platform();
    format!("/v{version}/{}", asset_name(version, os, arch))
}

fn read(path: &Path) -> String {
    std::fs::read_to_string(path).unwrap_or_else(|e| panic!("read {}: {e}", path.display()))
}

/// The hook's temporary folders (`$TMPDIR/helm-tfops.*`) left in `home`: none, thanks to its trap.
fn leftover_temp_dirs(home: &HelmHome) -> Vec<String> {
    std::fs::read_dir(home.path("tmp"))
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .filter(|n| n.starts_with("helm-tfops."))
        .collect()
}

fn is_symlink(path: &Path) -> bool {
    std::fs::symlink_metadata(path)
        .map(|m| m.file_type().is_symlink())
        .unwrap_or(false)
}

#[test]
fn release_binary_is_verified_then_installed_and_run_by_helm() {
    let server = ReleaseServer::start();
    serve_full_release(&server, VERSION);
    let (os, arch) = this_platform();
    for helm in BOTH {
        server.clear_requests();
        let home = HelmHome::new(helm);
        let checkout = plugin_checkout(&home, true);
        let fakes = Fakes::new(&home);
        fakes.cargo(VERSION);
        let path = path_with(&fakes, &home);
        let url = server.url();
        let env = [("HELM_TFOPS_RELEASE_URL", url.as_str())];

        let out = helm_plugin_install(&home, &checkout, &path, &env);
        assert!(
            out.status.success(),
            "{}: {}",
            helm.version(),
            all_output(&out)
        );
        assert!(
            stdout(&out).contains(&format!(
                "installed {}/bin/tfops (tfops {VERSION}, sha256 verified",
                checkout.canonicalize().unwrap().display()
            )),
            "{}",
            all_output(&out)
        );
        assert_eq!(
            server.requests(),
            [
                format!("/v{VERSION}/checksums.txt"),
                this_asset_path(VERSION)
            ]
        );
        let installed = checkout.join("bin/tfops");
        assert!(!is_symlink(&installed));
        assert_eq!(
            read(&installed),
            fake_tfops(VERSION, &format!("release {os}/{arch}"))
        );
        assert!(fakes.cargo_calls().is_empty(), "{:?}", fakes.cargo_calls());
        assert_eq!(leftover_temp_dirs(&home), Vec::<String>::new());

        // `helm tfops …` runs the downloaded binary (no TFOPS_BIN anywhere).
        let version = helm_run(&home, &path, &["tfops", "--version"]);
        assert!(version.status.success(), "{}", all_output(&version));
        assert_eq!(stdout(&version).trim(), format!("tfops {VERSION}"));
        let status = helm_run(&home, &path, &["tfops", "status", "shop"]);
        assert!(status.status.success(), "{}", all_output(&status));
        assert_eq!(
            stdout(&status).trim(),
            format!("fake tfops release {os}/{arch}: status shop")
        );

        // Running the hook again (an update) keeps the binary: nothing is downloaded.
        server.clear_requests();
        let again = run_hook(&home, &checkout, &path, &env);
        assert!(again.status.success(), "{}", all_output(&again));
        assert!(stdout(&again).contains("keeping"), "{}", all_output(&again));
        assert!(server.requests().is_empty(), "{:?}", server.requests());
    }
}

/// macOS has `shasum -a 256` rather than sha256sum; some machines have wget but no curl.
#[test]
fn wget_and_shasum_install_the_release_binary_too() {
    let server = ReleaseServer::start();
    serve_full_release(&server, VERSION);
    for (fetcher, hasher) in [("wget", "sha256sum"), ("curl", "shasum")] {
        server.clear_requests();
        let home = HelmHome::new(Helm::V4);
        let checkout = plugin_checkout(&home, true);
        let fakes = Fakes::new(&home);
        fakes.cargo(VERSION);
        let mut tools = HOOK_TOOLS.to_vec();
        tools.extend([fetcher, hasher]);
        let path = restricted_path(&fakes, &home, &tools);
        let url = server.url();
        let out = run_hook(
            &home,
            &checkout,
            &path,
            &[("HELM_TFOPS_RELEASE_URL", url.as_str())],
        );
        assert!(out.status.success(), "{fetcher}: {}", all_output(&out));
        assert!(
            stdout(&out).contains(&format!("({fetcher})")),
            "{}",
            all_output(&out)
        );
        assert!(
            stdout(&out).contains("sha256 verified"),
            "{}",
            all_output(&out)
        );
        assert_eq!(server.requests().len(), 2, "{:?}", server.requests());
        assert!(fakes.cargo_calls().is_empty());
        let version = home
            .command(checkout.join("bin/tfops"))
            .arg("--version")
            .output()
            .unwrap();
        assert_eq!(stdout(&version).trim(), format!("tfops {VERSION}"));
    }
}

/// The archive does not match checksums.txt: an error, nothing installed, nothing built, and a
/// binary already there is left as it was.
#[test]
fn a_tampered_archive_is_refused_and_nothing_is_installed() {
    let server = ReleaseServer::start();
    serve_full_release(&server, VERSION);
    server.put(&this_asset_path(VERSION), fake_archive(VERSION, "tampered"));
    let check_refusal = |out: &std::process::Output, fakes: &Fakes| {
        assert!(!out.status.success(), "{}", all_output(out));
        for says in [
            "checksum mismatch for",
            "refusing to install it (nothing was installed or built)",
            "TFOPS_BIN",
        ] {
            assert!(stderr(out).contains(says), "{says}: {}", all_output(out));
        }
        assert!(
            !stdout(out).contains("building tfops"),
            "{}",
            all_output(out)
        );
        assert!(fakes.cargo_calls().is_empty(), "{:?}", fakes.cargo_calls());
    };

    // Through Helm 4 and 3 (curl, sha256sum).
    for helm in BOTH {
        server.clear_requests();
        let home = HelmHome::new(helm);
        let checkout = plugin_checkout(&home, true);
        let fakes = Fakes::new(&home);
        fakes.cargo(VERSION);
        let path = path_with(&fakes, &home);
        let url = server.url();
        let out = helm_plugin_install(
            &home,
            &checkout,
            &path,
            &[("HELM_TFOPS_RELEASE_URL", url.as_str())],
        );
        check_refusal(&out, &fakes);
        assert!(server.requests().contains(&this_asset_path(VERSION)));
        assert_eq!(leftover_temp_dirs(&home), Vec::<String>::new());
        assert!(!checkout.join("bin").exists());
        let listed = helm_run(&home, &path, &["tfops", "--version"]);
        assert!(!listed.status.success(), "{}", all_output(&listed));
    }

    // wget and shasum, over an older binary: it stays.
    let home = HelmHome::new(Helm::V4);
    let checkout = plugin_checkout(&home, true);
    let fakes = Fakes::new(&home);
    fakes.cargo(VERSION);
    std::fs::create_dir_all(checkout.join("bin")).unwrap();
    let old = fake_tfops("0.0.1", "old");
    crate::fake_release::write_executable(&checkout.join("bin/tfops"), &old);
    let mut tools = HOOK_TOOLS.to_vec();
    tools.extend(["wget", "shasum"]);
    let path = restricted_path(&fakes, &home, &tools);
    let url = server.url();
    let out = run_hook(
        &home,
        &checkout,
        &path,
        &[("HELM_TFOPS_RELEASE_URL", url.as_str())],
    );
    check_refusal(&out, &fakes);
    assert!(
        stdout(&out).contains(&format!(
            "is tfops 0.0.1, not {VERSION}: looking for tfops {VERSION}"
        )),
        "{}",
        all_output(&out)
    );
    assert_eq!(read(&checkout.join("bin/tfops")), old);
    let leftovers: Vec<_> = std::fs::read_dir(checkout.join("bin"))
        .unwrap()
        .map(|e| e.unwrap().file_name())
        .collect();
    assert_eq!(leftovers, ["tfops"]);
}

/// Assert the hook fell back to the (fake) cargo build in `checkout` and linked bin/tfops to it.
fn assert_built(out: &std::process::Output, fakes: &Fakes, checkout: &Path) {
    assert!(out.status.success(), "{}", all_output(out));
    assert!(
        stdout(out).contains(
            "building tfops from source instead: cargo build --release --locked --bin tfops"
        ),
        "{}",
        all_output(out)
    );
    let root = checkout.canonicalize().unwrap();
    assert_eq!(
        fakes.cargo_calls(),
        [format!(
            "{}|{}|build --release --locked --bin tfops",
            root.display(),
            root.join("target").display()
        )]
    );
    let bin = checkout.join("bin/tfops");
    assert!(is_symlink(&bin));
    assert_eq!(
        std::fs::read_link(&bin).unwrap(),
        Path::new("../target/release/tfops")
    );
    assert_eq!(read(&bin), fake_tfops(VERSION, "built from source"));
}

/// No release binary to use → say why, then `cargo build --release --locked --bin tfops`.
#[test]
fn without_a_release_binary_the_hook_builds_from_source() {
    let (os, arch) = this_platform();
    let (o2, a2) = other_platform();

    // The release has no archive for this platform: through Helm 4 and 3, then `helm tfops`
    // runs the build.
    let server = ReleaseServer::start();
    server.put_release(
        VERSION,
        &[(asset_name(VERSION, o2, a2), fake_archive(VERSION, "other"))],
    );
    for helm in BOTH {
        server.clear_requests();
        let home = HelmHome::new(helm);
        let checkout = plugin_checkout(&home, true);
        let fakes = Fakes::new(&home);
        fakes.cargo(VERSION);
        let path = path_with(&fakes, &home);
        let url = server.url();
        let out = helm_plugin_install(
            &home,
            &checkout,
            &path,
            &[("HELM_TFOPS_RELEASE_URL", url.as_str())],
        );
        assert!(
            stderr(&out).contains(&format!(
                "release v{VERSION} has no {} (no tfops binary for {os}/{arch} in its checksums.txt)",
                asset_name(VERSION, os, arch)
            )),
            "{}",
            all_output(&out)
        );
        assert_built(&out, &fakes, &checkout);
        assert_eq!(server.requests(), [format!("/v{VERSION}/checksums.txt")]);
        let version = helm_run(&home, &path, &["tfops", "status"]);
        assert_eq!(
            stdout(&version).trim(),
            "fake tfops built from source: status",
            "{}",
            all_output(&version)
        );
    }

    // No such release at all (404).
    let home = HelmHome::new(Helm::V4);
    let checkout = plugin_checkout(&home, true);
    let fakes = Fakes::new(&home);
    fakes.cargo(VERSION);
    let empty = ReleaseServer::start();
    let url = empty.url();
    let out = run_hook(
        &home,
        &checkout,
        &path_with(&fakes, &home),
        &[("HELM_TFOPS_RELEASE_URL", url.as_str())],
    );
    assert!(
        stderr(&out).contains(&format!(
            "could not download {url}/v{VERSION}/checksums.txt"
        )),
        "{}",
        all_output(&out)
    );
    assert_built(&out, &fakes, &checkout);

    // A platform releases are not built for: nothing is downloaded.
    let home = HelmHome::new(Helm::V4);
    let checkout = plugin_checkout(&home, true);
    let fakes = Fakes::new(&home);
    fakes.cargo(VERSION).uname("FreeBSD", "riscv64");
    server.clear_requests();
    let url = server.url();
    let out = run_hook(
        &home,
        &checkout,
        &path_with(&fakes, &home),
        &[("HELM_TFOPS_RELEASE_URL", url.as_str())],
    );
    assert!(
        stderr(&out).contains("no release binary for FreeBSD/riscv64"),
        "{}",
        all_output(&out)
    );
    assert_built(&out, &fakes, &checkout);
    assert!(server.requests().is_empty(), "{:?}", server.requests());

    // Neither curl nor wget.
    let home = HelmHome::new(Helm::V4);
    let checkout = plugin_checkout(&home, true);
    let fakes = Fakes::new(&home);
    fakes.cargo(VERSION);
    let mut tools = HOOK_TOOLS.to_vec();
    tools.push("sha256sum");
    let path = restricted_path(&fakes, &home, &tools);
    let out = run_hook(
        &home,
        &checkout,
        &path,
        &[("HELM_TFOPS_RELEASE_URL", url.as_str())],
    );
    assert!(
        stderr(&out).contains("neither curl nor wget is installed"),
        "{}",
        all_output(&out)
    );
    assert_built(&out, &fakes, &checkout);
    assert!(server.requests().is_empty(), "{:?}", server.requests());
}

/// No release binary and no cargo: an error that names TFOPS_BIN and rustup; no sources to
/// build from: an error naming TFOPS_BIN.
#[test]
fn without_a_release_binary_or_cargo_the_hook_says_what_to_do() {
    let (o2, a2) = other_platform();
    let server = ReleaseServer::start();
    server.put_release(
        VERSION,
        &[(asset_name(VERSION, o2, a2), fake_archive(VERSION, "other"))],
    );
    let url = server.url();
    let env = [("HELM_TFOPS_RELEASE_URL", url.as_str())];

    let home = HelmHome::new(Helm::V4);
    let checkout = plugin_checkout(&home, true);
    let fakes = Fakes::new(&home);
    let mut tools = HOOK_TOOLS.to_vec();
    tools.extend(["curl", "sha256sum"]);
    let out = run_hook(
        &home,
        &checkout,
        &restricted_path(&fakes, &home, &tools),
        &env,
    );
    assert!(!out.status.success(), "{}", all_output(&out));
    for says in [
        "no tfops binary and no cargo to build one",
        "set TFOPS_BIN to a tfops binary (offline install)",
        "install Rust (https://rustup.rs)",
    ] {
        assert!(stderr(&out).contains(says), "{says}: {}", all_output(&out));
    }
    assert!(!checkout.join("bin").exists());

    // An install without the sources (no Cargo.toml): cargo is not run.
    let home = HelmHome::new(Helm::V4);
    let checkout = plugin_checkout(&home, false);
    let fakes = Fakes::new(&home);
    fakes.cargo(VERSION);
    let out = run_hook(&home, &checkout, &path_with(&fakes, &home), &env);
    assert!(!out.status.success(), "{}", all_output(&out));
    assert!(
        stderr(&out).contains("no sources to build tfops from"),
        "{}",
        all_output(&out)
    );
    assert!(fakes.cargo_calls().is_empty());
}

/// HELM_TFOPS_VERSION picks the release fetched (a leading `v` is fine), and replaces a binary
/// of another version; the same version again is kept.
#[test]
fn helm_tfops_version_pins_the_release_fetched() {
    let server = ReleaseServer::start();
    serve_full_release(&server, VERSION);
    serve_full_release(&server, "0.0.7");
    let url = server.url();

    // Through Helm 4: the pinned version is what `helm tfops` runs.
    let home = HelmHome::new(Helm::V4);
    let checkout = plugin_checkout(&home, true);
    let fakes = Fakes::new(&home);
    fakes.cargo(VERSION);
    let path = path_with(&fakes, &home);
    let out = helm_plugin_install(
        &home,
        &checkout,
        &path,
        &[
            ("HELM_TFOPS_RELEASE_URL", url.as_str()),
            ("HELM_TFOPS_VERSION", "0.0.7"),
        ],
    );
    assert!(out.status.success(), "{}", all_output(&out));
    assert_eq!(
        server.requests(),
        [
            "/v0.0.7/checksums.txt".to_string(),
            this_asset_path("0.0.7")
        ]
    );
    let version = helm_run(&home, &path, &["tfops", "--version"]);
    assert_eq!(stdout(&version).trim(), "tfops 0.0.7");

    // The hook again with the plugin's own version: 0.0.7 is replaced.
    server.clear_requests();
    let out = run_hook(
        &home,
        &checkout,
        &path,
        &[("HELM_TFOPS_RELEASE_URL", url.as_str())],
    );
    assert!(out.status.success(), "{}", all_output(&out));
    assert!(
        stdout(&out).contains(&format!(
            "is tfops 0.0.7, not {VERSION}: looking for tfops {VERSION}"
        )),
        "{}",
        all_output(&out)
    );
    assert_eq!(server.requests()[1], this_asset_path(VERSION));

    // `v0.0.7` means 0.0.7; then the same pin again keeps what is there.
    for (pin, downloads) in [("v0.0.7", 2), ("0.0.7", 0)] {
        server.clear_requests();
        let out = run_hook(
            &home,
            &checkout,
            &path,
            &[
                ("HELM_TFOPS_RELEASE_URL", url.as_str()),
                ("HELM_TFOPS_VERSION", pin),
            ],
        );
        assert!(out.status.success(), "{}", all_output(&out));
        assert_eq!(
            server.requests().len(),
            downloads,
            "{pin}: {:?}",
            server.requests()
        );
        assert!(server.requests().iter().all(|r| r.starts_with("/v0.0.7/")));
    }
    let version = helm_run(&home, &path, &["tfops", "--version"]);
    assert_eq!(stdout(&version).trim(), "tfops 0.0.7");
    assert!(fakes.cargo_calls().is_empty());
}

/// TFOPS_BIN: nothing downloaded or built (offline installs); an error when it is not an
/// executable file.
#[test]
fn tfops_bin_installs_offline() {
    let server = ReleaseServer::start();
    serve_full_release(&server, VERSION);
    let url = server.url();
    let tfops = tfops_bin();
    for helm in BOTH {
        let home = HelmHome::new(helm);
        let checkout = plugin_checkout(&home, true);
        let fakes = Fakes::new(&home);
        fakes.cargo(VERSION);
        let path = path_with(&fakes, &home);
        let out = helm_plugin_install(
            &home,
            &checkout,
            &path,
            &[
                ("HELM_TFOPS_RELEASE_URL", url.as_str()),
                ("TFOPS_BIN", tfops.to_str().unwrap()),
            ],
        );
        assert!(out.status.success(), "{}", all_output(&out));
        assert!(
            stdout(&out).contains(&format!("using TFOPS_BIN={}", tfops.display())),
            "{}",
            all_output(&out)
        );
        assert!(server.requests().is_empty(), "{:?}", server.requests());
        assert!(fakes.cargo_calls().is_empty());
        assert!(!checkout.join("bin").exists());
        let out = home
            .command(helm.binary())
            .env("PATH", &path)
            .env("TFOPS_BIN", &tfops)
            .args(["tfops", "--version"])
            .output()
            .unwrap();
        assert_eq!(stdout(&out).trim(), format!("tfops {VERSION}"));
    }

    let home = HelmHome::new(Helm::V4);
    let checkout = plugin_checkout(&home, true);
    let fakes = Fakes::new(&home);
    fakes.cargo(VERSION);
    let not_executable = home.path("tfops-not-executable");
    std::fs::write(&not_executable, "not a program").unwrap();
    let missing = home.path("no-such-tfops");
    for bad in [&not_executable, &missing, &home.path("")] {
        let out = run_hook(
            &home,
            &checkout,
            &path_with(&fakes, &home),
            &[
                ("HELM_TFOPS_RELEASE_URL", url.as_str()),
                ("TFOPS_BIN", bad.to_str().unwrap()),
            ],
        );
        assert!(!out.status.success(), "{}", all_output(&out));
        assert!(
            stderr(&out).contains("is not an executable file"),
            "{}",
            all_output(&out)
        );
    }
    assert!(server.requests().is_empty(), "{:?}", server.requests());
    assert!(fakes.cargo_calls().is_empty());
    assert!(!checkout.join("bin").exists());
}

/// A checkout with `make build` done: the hook links bin/tfops to target/release/tfops of the
/// wanted version instead of downloading.
#[test]
fn a_checkout_build_of_the_wanted_version_is_used() {
    let server = ReleaseServer::start();
    serve_full_release(&server, VERSION);
    let url = server.url();
    let home = HelmHome::new(Helm::V4);
    let checkout = plugin_checkout(&home, true);
    let fakes = Fakes::new(&home);
    fakes.cargo(VERSION);
    std::fs::create_dir_all(checkout.join("target/release")).unwrap();
    std::os::unix::fs::symlink(tfops_bin(), checkout.join("target/release/tfops")).unwrap();
    let path = path_with(&fakes, &home);
    let out = run_hook(
        &home,
        &checkout,
        &path,
        &[("HELM_TFOPS_RELEASE_URL", url.as_str())],
    );
    assert!(out.status.success(), "{}", all_output(&out));
    assert!(
        stdout(&out).contains("using this checkout's build"),
        "{}",
        all_output(&out)
    );
    assert!(server.requests().is_empty(), "{:?}", server.requests());
    assert_eq!(
        std::fs::read_link(checkout.join("bin/tfops")).unwrap(),
        Path::new("../target/release/tfops")
    );

    // Pinned to another version, the checkout's build does not fit: the release is fetched.
    serve_full_release(&server, "0.0.7");
    let out = run_hook(
        &home,
        &checkout,
        &path,
        &[
            ("HELM_TFOPS_RELEASE_URL", url.as_str()),
            ("HELM_TFOPS_VERSION", "0.0.7"),
        ],
    );
    assert!(out.status.success(), "{}", all_output(&out));
    assert!(!common::stdout(&out).contains("this checkout's build"));
    assert!(!is_symlink(&checkout.join("bin/tfops")));
    // The checkout's own build is untouched.
    assert!(checkout.join("target/release/tfops").exists());
}
