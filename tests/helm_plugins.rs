//! Real Helm 4.1.4 and 3.16.1: installing the `tfops` CLI plugin from this checkout, `helm
//! tfops setup` registering the post-renderer (Helm 4 plugin / Helm 3 executable on PATH),
//! idempotence, `--dry-run`, and the Helm 3 loader's refusal of `apiVersion: v1` plugins.

use crate::common;

use common::{stderr, stdout, tfops_bin, Helm, HelmHome, BOTH};

/// Rows of `helm plugin list` (columns split on whitespace), sorted by plugin name.
fn plugin_rows(home: &HelmHome) -> Vec<Vec<String>> {
    let listing = home.ok(["plugin", "list"]);
    let mut rows: Vec<Vec<String>> = listing
        .lines()
        .skip(1)
        .map(|l| l.split_whitespace().map(str::to_string).collect())
        .collect();
    rows.sort();
    rows
}

#[test]
fn both_plugins_install_and_run() {
    for helm in BOTH {
        let home = HelmHome::new(helm);
        let install = home.ok(["plugin", "install", common::repo_root().to_str().unwrap()]);
        assert!(install.contains("Installed plugin: tfops"), "{install}");

        let setup = home.ok(["tfops", "setup"]);
        let rows = plugin_rows(&home);
        let names: Vec<&str> = rows.iter().map(|r| r[0].as_str()).collect();
        match helm {
            Helm::V4 => {
                assert!(
                    setup.contains("registered the Helm 4 post-renderer plugin tfops-render"),
                    "{setup}"
                );
                assert_eq!(names, ["tfops", "tfops-render"], "{rows:?}");
                assert_eq!(rows[0][2], "cli/v1");
                assert_eq!(rows[1][2], "postrenderer/v1");
                // Installed as a link to the nested folder of this checkout.
                let link = home.plugins_dir().join("tfops-render");
                assert_eq!(
                    link.canonicalize().unwrap(),
                    common::repo_root()
                        .join("plugins/tfops-render")
                        .canonicalize()
                        .unwrap()
                );
            }
            Helm::V3 => {
                assert_eq!(names, ["tfops"], "{rows:?}");
                let link = home.bin_dir().join("tfops-render");
                assert!(
                    std::fs::symlink_metadata(&link)
                        .unwrap()
                        .file_type()
                        .is_symlink(),
                    "{setup}"
                );
                assert_eq!(
                    link.canonicalize().unwrap(),
                    tfops_bin().canonicalize().unwrap()
                );
                assert!(setup.contains("helm tfops uninstall"), "{setup}");
            }
        }

        // `helm tfops …` runs the binary; the plugin list loads cleanly on both versions.
        let help = home.run(["tfops", "--help"]);
        assert!(help.status.success(), "{}", stderr(&help));
        assert!(
            stdout(&help).contains("Register the Helm 4 post-renderer plugin"),
            "{}",
            stdout(&help)
        );
        assert!(
            !stderr(&help).contains("failed to load plugins"),
            "{}",
            stderr(&help)
        );

        // Idempotent.
        let again = home.ok(["tfops", "setup"]);
        match helm {
            Helm::V4 => assert!(again.contains("already registered"), "{again}"),
            Helm::V3 => assert!(again.contains("already points to"), "{again}"),
        }
        assert_eq!(plugin_rows(&home), rows, "{}", helm.version());
    }
}

#[test]
fn setup_dry_run_changes_nothing() {
    for helm in BOTH {
        let home = HelmHome::new(helm);
        home.ok(["plugin", "install", common::repo_root().to_str().unwrap()]);
        let out = home.ok(["tfops", "setup", "--dry-run"]);
        match helm {
            Helm::V4 => {
                assert!(out.contains("would run:"), "{out}");
                assert!(out.contains("plugin install"), "{out}");
                assert!(!home.plugins_dir().join("tfops-render").exists());
            }
            Helm::V3 => {
                assert!(out.contains("would link:"), "{out}");
                assert!(std::fs::symlink_metadata(home.bin_dir().join("tfops-render")).is_err());
            }
        }
        let rows = plugin_rows(&home);
        assert_eq!(rows.len(), 1, "{}: {rows:?}", helm.version());
    }
}

/// The research claim behind the nested folder: Helm 3 rejects `apiVersion` in plugin.yaml and
/// then loads no plugin at all. `tfops setup` for Helm 3 names the offending file.
#[test]
fn helm3_drops_every_plugin_next_to_a_v1_plugin_and_setup_says_so() {
    let home = HelmHome::new(Helm::V3);
    home.ok(["plugin", "install", common::repo_root().to_str().unwrap()]);
    std::os::unix::fs::symlink(
        common::repo_root().join("plugins/tfops-render"),
        home.plugins_dir().join("tfops-render"),
    )
    .unwrap();

    let listed = home.run(["tfops", "--help"]);
    assert!(!listed.status.success());
    assert!(
        stderr(&listed).contains("unknown field \"apiVersion\""),
        "{}",
        stderr(&listed)
    );

    let setup = home
        .command(tfops_bin())
        .env("HELM_BIN", Helm::V3.binary())
        .args(["setup", "--bin-dir"])
        .arg(home.bin_dir())
        .output()
        .unwrap();
    assert_eq!(setup.status.code(), Some(1), "{}", stderr(&setup));
    assert!(
        stderr(&setup).contains("tfops-render/plugin.yaml has an apiVersion"),
        "{}",
        stderr(&setup)
    );

    // Helm 4 loads the same folder fine.
    let home4 = HelmHome::new(Helm::V4);
    std::os::unix::fs::symlink(
        common::repo_root().join("plugins/tfops-render"),
        home4.plugins_dir().join("tfops-render"),
    )
    .unwrap();
    home4.ok(["plugin", "install", common::repo_root().to_str().unwrap()]);
    let rows = plugin_rows(&home4);
    assert_eq!(rows.len(), 2, "{rows:?}");
}

/// Without TFOPS_BIN the plugin finds a prebuilt `bin/tfops` in its own folder (the layout of a
/// release archive); the install hook then builds nothing.
#[test]
fn plugin_finds_its_bundled_binary() {
    for helm in BOTH {
        let home = HelmHome::new(helm);
        let checkout = home.path("helm-tfops");
        common::copy_plugin_files(&common::repo_root(), &checkout);
        std::fs::create_dir_all(checkout.join("bin")).unwrap();
        std::os::unix::fs::symlink(tfops_bin(), checkout.join("bin/tfops")).unwrap();

        let mut install = home.command(helm.binary());
        install.args(["plugin", "install"]).arg(&checkout);
        let out = install.output().unwrap();
        assert!(out.status.success(), "{}{}", stdout(&out), stderr(&out));
        assert!(stdout(&out).contains("bin/tfops"), "{}", stdout(&out));

        let out = home
            .command(helm.binary())
            .args(["tfops", "--version"])
            .output()
            .unwrap();
        assert!(out.status.success(), "{}", stderr(&out));
        assert_eq!(
            stdout(&out).trim(),
            format!("tfops {}", env!("CARGO_PKG_VERSION"))
        );
    }
}

/// Helm 4.1.4's local installer links into $HELM_DATA_HOME/plugins whatever HELM_PLUGINS says;
/// with HELM_PLUGINS elsewhere, setup links the post-renderer plugin into HELM_PLUGINS itself.
#[test]
fn helm4_setup_with_helm_plugins_outside_the_data_home() {
    let home = HelmHome::new(Helm::V4);
    let elsewhere = home.path("my-plugins");
    std::fs::create_dir_all(&elsewhere).unwrap();
    std::os::unix::fs::symlink(common::repo_root(), elsewhere.join("helm-tfops")).unwrap();
    let helm = |args: &[&str]| {
        let out = home
            .helm(args)
            .env("HELM_PLUGINS", &elsewhere)
            .output()
            .unwrap();
        assert!(out.status.success(), "{args:?}: {}", stderr(&out));
        stdout(&out)
    };
    let setup = helm(&["tfops", "setup"]);
    assert!(setup.contains("which is not in HELM_PLUGINS"), "{setup}");
    assert!(elsewhere.join("tfops-render/plugin.yaml").is_file());
    let listing = helm(&["plugin", "list"]);
    assert!(listing.contains("postrenderer/v1"), "{listing}");
    let again = helm(&["tfops", "setup"]);
    assert!(again.contains("already registered"), "{again}");
}

/// No binary anywhere and no cargo to build one: the install hook fails with what to do, and
/// `helm tfops` says where it looked.
#[test]
fn without_a_binary_or_cargo_the_plugin_says_what_to_do() {
    for helm in BOTH {
        let home = HelmHome::new(helm);
        let checkout = home.path("helm-tfops");
        common::copy_plugin_files(&common::repo_root(), &checkout);
        // A PATH with only what the scripts need: no cargo, no tfops, no curl or wget.
        let tools = home.path("tools");
        std::fs::create_dir_all(&tools).unwrap();
        for tool in ["sh", "dirname", "sed", "head", "uname"] {
            let found = std::env::split_paths(&std::env::var_os("PATH").unwrap())
                .map(|d| d.join(tool))
                .find(|p| p.is_file())
                .unwrap_or_else(|| panic!("{tool} not on PATH"));
            std::os::unix::fs::symlink(found, tools.join(tool)).unwrap();
        }
        let run = |args: &[&str]| {
            home.command(helm.binary())
                .env("PATH", &tools)
                .args(args)
                .output()
                .unwrap()
        };
        let out = run(&["plugin", "install", checkout.to_str().unwrap()]);
        assert!(!out.status.success(), "{}", helm.version());
        for says in [
            "neither curl nor wget is installed",
            "no tfops binary and no cargo to build one",
            "TFOPS_BIN",
            "https://rustup.rs",
        ] {
            assert!(stderr(&out).contains(says), "{says}: {}", stderr(&out));
        }
        let out = run(&["tfops", "--help"]);
        assert!(!out.status.success());
        assert!(
            stderr(&out).contains("the tfops binary was not found"),
            "{}",
            stderr(&out)
        );
    }
}

/// Both plugin.yaml files carry the crate's version, so `helm plugin list` tells which tfops
/// a user runs; only the nested one has an apiVersion.
#[test]
fn plugin_manifests_match_the_crate() {
    let read = |file: &str| -> serde_json::Value {
        let text = std::fs::read_to_string(common::repo_root().join(file)).unwrap();
        serde_saphyr::from_str(&text).unwrap()
    };
    let cli = read("plugin.yaml");
    let render = read("plugins/tfops-render/plugin.yaml");
    for (file, doc) in [
        ("plugin.yaml", &cli),
        ("plugins/tfops-render/plugin.yaml", &render),
    ] {
        assert_eq!(doc["version"], env!("CARGO_PKG_VERSION"), "{file}");
    }
    assert_eq!(cli["name"], "tfops");
    assert!(cli.get("apiVersion").is_none());
    assert_eq!(render["name"], "tfops-render");
    assert_eq!(render["apiVersion"], "v1");
    assert_eq!(render["type"], "postrenderer/v1");
}

/// The checkout moved: the old `tfops-render` link dangles; setup replaces it.
#[test]
fn helm4_setup_replaces_a_dangling_link_from_a_moved_checkout() {
    let home = HelmHome::new(Helm::V4);
    home.ok(["plugin", "install", common::repo_root().to_str().unwrap()]);
    let stale = home.plugins_dir().join("tfops-render");
    std::os::unix::fs::symlink(home.path("gone/plugins/tfops-render"), &stale).unwrap();
    let setup = home.ok(["tfops", "setup"]);
    assert!(setup.contains("removed the dangling link"), "{setup}");
    assert!(
        setup.contains("registered the Helm 4 post-renderer plugin"),
        "{setup}"
    );
    assert!(stale.join("plugin.yaml").is_file());
}

/// `tfops-render` still linked into another (older) checkout: setup re-links it to this one,
/// whose scripts run this tfops.
#[test]
fn helm4_setup_relinks_a_plugin_from_another_checkout() {
    let home = HelmHome::new(Helm::V4);
    let old = home.path("old-checkout");
    common::copy_plugin_files(&common::repo_root(), &old);
    home.ok([
        "plugin",
        "install",
        old.join("plugins/tfops-render").to_str().unwrap(),
    ]);
    home.ok(["plugin", "install", common::repo_root().to_str().unwrap()]);
    let dry = home.ok(["tfops", "setup", "--dry-run"]);
    assert!(dry.contains("would replace"), "{dry}");
    let setup = home.ok(["tfops", "setup"]);
    assert!(setup.contains("a link into another checkout"), "{setup}");
    assert_eq!(
        home.plugins_dir()
            .join("tfops-render")
            .canonicalize()
            .unwrap(),
        common::repo_root()
            .join("plugins/tfops-render")
            .canonicalize()
            .unwrap()
    );
    let again = home.ok(["tfops", "setup"]);
    assert!(again.contains("already registered"), "{again}");
}
