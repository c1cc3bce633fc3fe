//! The release workflow (`.github/workflows/release.yml`, parsed as YAML) agrees with what uses
//! its output: the archives it names are the ones the install hook downloads for each platform
//! (checked by running the hook against those names), the version comes from plugin.yaml = the
//! crate, and the guard image it pushes is the post-renderer's default `guard.image`, built
//! from a distroless non-root Dockerfile.guard.

use std::collections::BTreeSet;

use serde_json::Value;

use crate::common::{self, stdout, HelmHome};
use crate::fake_release::{
    all_output, fake_archive, path_with, plugin_checkout, run_hook, uname_of, Fakes, ReleaseServer,
};

fn yaml_file(path: &str) -> Value {
    let text = std::fs::read_to_string(common::repo_root().join(path))
        .unwrap_or_else(|e| panic!("read {path}: {e}"));
    serde_saphyr::from_str(&text).unwrap_or_else(|e| panic!("{path} is not YAML: {e}"))
}

fn workflow() -> Value {
    yaml_file(".github/workflows/release.yml")
}

/// plugin.yaml's version, which must be the crate's.
fn plugin_version() -> String {
    let version = yaml_file("plugin.yaml")["version"]
        .as_str()
        .expect("plugin.yaml version")
        .to_string();
    assert_eq!(version, env!("CARGO_PKG_VERSION"));
    version
}

/// Replace the workflow expressions `${{ name }}` with values; every expression must be known.
fn expand(template: &str, values: &[(&str, &str)]) -> String {
    let mut out = template.to_string();
    for (name, value) in values {
        out = out.replace(&format!("${{{{ {name} }}}}"), value);
    }
    assert!(
        !out.contains("${{"),
        "unexpanded expression in {template:?}"
    );
    out
}

fn str_at<'a>(value: &'a Value, what: &str) -> &'a str {
    value
        .as_str()
        .unwrap_or_else(|| panic!("{what} is not a string: {value}"))
}

#[test]
fn release_archives_are_what_the_install_hook_downloads() {
    let wf = workflow();
    let version = plugin_version();
    assert_eq!(wf["on"]["push"]["tags"], serde_json::json!(["v*"]));

    let job = &wf["jobs"]["binaries"];
    let template = str_at(&job["env"]["ASSET"], "jobs.binaries.env.ASSET");
    let checksums = str_at(&wf["env"]["CHECKSUMS"], "env.CHECKSUMS");
    assert_eq!(checksums, "checksums.txt");
    let entries = job["strategy"]["matrix"]["include"]
        .as_array()
        .expect("jobs.binaries.strategy.matrix.include");

    // Every platform the hook maps `uname` to, once each.
    let platforms: BTreeSet<(String, String)> = entries
        .iter()
        .map(|e| {
            (
                str_at(&e["os"], "matrix os").to_string(),
                str_at(&e["arch"], "matrix arch").to_string(),
            )
        })
        .collect();
    let expected: BTreeSet<(String, String)> = ["linux", "darwin"]
        .iter()
        .flat_map(|os| {
            ["amd64", "arm64"]
                .iter()
                .map(move |arch| (os.to_string(), arch.to_string()))
        })
        .collect();
    assert_eq!(platforms, expected);
    assert_eq!(entries.len(), expected.len());

    // The release as the workflow publishes it: its archive names, checksums.txt.
    let server = ReleaseServer::start();
    let assets: Vec<(String, String, String)> = platforms
        .iter()
        .map(|(os, arch)| {
            let name = expand(
                template,
                &[
                    ("needs.version.outputs.version", &version),
                    ("matrix.os", os),
                    ("matrix.arch", arch),
                ],
            );
            (os.clone(), arch.clone(), name)
        })
        .collect();
    let served: Vec<(String, Vec<u8>)> = assets
        .iter()
        .map(|(os, arch, name)| {
            (
                name.clone(),
                fake_archive(&version, &format!("{os}/{arch}")),
            )
        })
        .collect();
    server.put_release(&version, &served);

    // The hook on a machine of each platform (a fake uname) installs that platform's archive.
    for (os, arch, name) in &assets {
        server.clear_requests();
        let home = HelmHome::new(common::Helm::V4);
        let checkout = plugin_checkout(&home, true);
        let fakes = Fakes::new(&home);
        let (sys, machine) = uname_of(os, arch);
        fakes.uname(sys, machine).cargo(&version);
        let url = server.url();
        let out = run_hook(
            &home,
            &checkout,
            &path_with(&fakes, &home),
            &[("HELM_TFOPS_RELEASE_URL", url.as_str())],
        );
        assert!(out.status.success(), "{os}/{arch}: {}", all_output(&out));
        assert!(fakes.cargo_calls().is_empty(), "{}", all_output(&out));
        assert_eq!(
            server.requests(),
            [
                format!("/v{version}/{checksums}"),
                format!("/v{version}/{name}")
            ]
        );
        let ran = home
            .command(checkout.join("bin/tfops"))
            .arg("guard")
            .output()
            .unwrap();
        assert_eq!(
            stdout(&ran).trim(),
            format!("fake tfops {os}/{arch}: guard")
        );
    }
}

#[test]
fn guard_image_is_pushed_where_the_post_renderer_points() {
    let wf = workflow();
    let version = plugin_version();
    let default_image = tfops_render::config::Guard::default().image;
    assert_eq!(
        default_image
            .rsplit_once(':')
            .map(|(_, tag)| tag.to_string()),
        Some(format!("v{version}")),
        "{default_image}"
    );

    let image = str_at(&wf["env"]["IMAGE"], "env.IMAGE");
    let steps = wf["jobs"]["image"]["steps"]
        .as_array()
        .expect("jobs.image.steps");
    let push = steps
        .iter()
        .find(|s| {
            s["uses"]
                .as_str()
                .is_some_and(|u| u.starts_with("docker/build-push-action@"))
        })
        .expect("a docker/build-push-action step");
    let with = &push["with"];
    assert_eq!(with["file"], "Dockerfile.guard");
    assert_eq!(with["push"], true);
    let platforms: BTreeSet<&str> = str_at(&with["platforms"], "platforms")
        .split(',')
        .map(str::trim)
        .collect();
    assert_eq!(platforms, BTreeSet::from(["linux/amd64", "linux/arm64"]));
    let tag = expand(
        str_at(&with["tags"], "tags"),
        &[
            ("env.IMAGE", image),
            ("needs.version.outputs.version", &version),
        ],
    );
    assert_eq!(tag, default_image);

    // The image is distroless and runs as the distroless non-root user.
    let dockerfile = std::fs::read_to_string(common::repo_root().join("Dockerfile.guard")).unwrap();
    let lines: Vec<&str> = dockerfile
        .lines()
        .map(str::trim)
        .filter(|l| !l.is_empty() && !l.starts_with('#'))
        .collect();
    let last_from = lines
        .iter()
        .rposition(|l| l.starts_with("FROM "))
        .expect("a FROM line");
    let base = lines[last_from]
        .split_whitespace()
        .nth(1)
        .expect("FROM image");
    assert!(
        base.starts_with("gcr.io/distroless/") && base.ends_with(":nonroot"),
        "{base}"
    );
    let users: Vec<&str> = lines[last_from..]
        .iter()
        .filter_map(|l| l.strip_prefix("USER "))
        .collect();
    assert_eq!(users, ["65532:65532"]);
}
