//! `tfops setup`: registers the post-renderer with the Helm that runs it — the `tfops-render`
//! `postrenderer/v1` plugin on Helm 4, a `tfops-render` executable (symlink to this binary) in
//! a bin dir on Helm 3. Idempotent; `--dry-run` prints the plan without doing anything.

use std::ffi::OsStr;
use std::path::{Path, PathBuf};
use std::process::Command;

use anyhow::{bail, Context};

use crate::cli::RENDER_ARGV0;

/// Arguments of `tfops setup`.
#[derive(Debug, clap::Args)]
pub struct Args {
    /// Helm binary to set up for (Helm sets HELM_BIN when running `helm tfops setup`).
    #[arg(long, env = "HELM_BIN", default_value = "helm")]
    pub helm_bin: PathBuf,
    /// Root folder of the `tfops` plugin (holds plugins/tfops-render); default: HELM_PLUGIN_DIR,
    /// else found upwards from this binary's location.
    #[arg(long, env = "HELM_PLUGIN_DIR")]
    pub plugin_dir: Option<PathBuf>,
    /// Helm 3: folder that receives the `tfops-render` executable (default ~/.local/bin).
    #[arg(long)]
    pub bin_dir: Option<PathBuf>,
    /// Helm 3: replace an existing `tfops-render` that is not a symlink.
    #[arg(long)]
    pub force: bool,
    /// Print what would be done, change nothing.
    #[arg(long)]
    pub dry_run: bool,
}

/// Folder of the Helm 4 post-renderer plugin, relative to the plugin root.
const RENDER_PLUGIN_SUBDIR: &str = "plugins/tfops-render";

/// Run `tfops setup`.
pub fn run(args: Args) -> anyhow::Result<u8> {
    let version = helm_output(&args.helm_bin, ["version", "--template", "{{.Version}}"])?;
    let major = helm_major(&version).with_context(|| {
        format!(
            "cannot tell the Helm version from `{} version`: {version:?}",
            args.helm_bin.display()
        )
    })?;
    let plugins_env = helm_output(&args.helm_bin, ["env", "HELM_PLUGINS"])?;
    let plugin_dirs: Vec<PathBuf> = std::env::split_paths(plugins_env.trim()).collect();
    println!(
        "Helm {} ({}), plugins in {}",
        version.trim(),
        args.helm_bin.display(),
        plugins_env.trim()
    );
    match major {
        4 => setup_helm4(&args, &plugin_dirs),
        3 => setup_helm3(&args, &plugin_dirs),
        other => bail!("Helm {other} is not supported (Helm 3 and Helm 4 are)"),
    }
}

/// Helm 4: `helm plugin install <root>/plugins/tfops-render` unless a `tfops-render`
/// post-renderer plugin is already registered.
fn setup_helm4(args: &Args, plugin_dirs: &[PathBuf]) -> anyhow::Result<u8> {
    let listing = helm_output(&args.helm_bin, ["plugin", "list"])?;
    let plugins = parse_plugin_list(&listing);
    let registered = plugins.iter().find(|p| p.name == RENDER_ARGV0);
    if let Some(found) = registered {
        if found.kind.as_deref() != Some("postrenderer/v1") {
            bail!(
                "a plugin named {RENDER_ARGV0} is installed but its type is {}, not postrenderer/v1; remove it with `{} plugin uninstall {RENDER_ARGV0}` and run setup again",
                found.kind.as_deref().unwrap_or("unknown"),
                args.helm_bin.display()
            );
        }
    }
    // Already registered from this checkout (or from one we cannot tell): nothing to do. A
    // link into another checkout (an older clone) is replaced: it would run that one's tfops.
    let stale = match (registered, render_plugin_source(args)) {
        (None, _) => None,
        (Some(_), Ok(source)) => plugin_dirs
            .iter()
            .map(|dir| dir.join(RENDER_ARGV0))
            .find(|link| is_link_elsewhere(link, &source)),
        (Some(_), Err(_)) => None,
    };
    if registered.is_some() && stale.is_none() {
        println!("ok: the Helm 4 post-renderer plugin {RENDER_ARGV0} is already registered");
    } else {
        if let Some(link) = &stale {
            if args.dry_run {
                println!(
                    "would replace {} (a link into another checkout)",
                    link.display()
                );
            } else {
                std::fs::remove_file(link)
                    .with_context(|| format!("cannot remove {}", link.display()))?;
                println!("removed {} (a link into another checkout)", link.display());
            }
        }
        let source = render_plugin_source(args)?;
        // Helm 4.1.4 installs a local folder as a link in $HELM_DATA_HOME/plugins even when
        // HELM_PLUGINS points elsewhere (and then cannot find it): then we link it into the
        // first HELM_PLUGINS folder ourselves, as Helm would.
        let data_home = helm_output(&args.helm_bin, ["env", "HELM_DATA_HOME"])?;
        let data_plugins = PathBuf::from(data_home.trim()).join("plugins");
        let first_dir = plugin_dirs
            .first()
            .context("helm reports an empty HELM_PLUGINS")?;
        // A link left by an earlier setup whose checkout moved away: Helm lists nothing for it
        // but refuses to install over it.
        for dir in plugin_dirs.iter().chain(std::iter::once(&data_plugins)) {
            let stale = dir.join(RENDER_ARGV0);
            if is_dangling_symlink(&stale) {
                if args.dry_run {
                    println!("would remove the dangling link {}", stale.display());
                } else {
                    std::fs::remove_file(&stale)
                        .with_context(|| format!("cannot remove {}", stale.display()))?;
                    println!("removed the dangling link {}", stale.display());
                }
            }
        }
        if plugin_dirs.iter().any(|d| same_dir(d, &data_plugins)) {
            install_with_helm(args, &source)?;
        } else {
            let link = first_dir.join(RENDER_ARGV0);
            if args.dry_run {
                println!("would link: {} -> {}", link.display(), source.display());
            } else {
                if std::fs::symlink_metadata(&link).is_ok() {
                    bail!(
                        "{} exists but Helm does not list it as a plugin; remove it and run setup again",
                        link.display()
                    );
                }
                std::fs::create_dir_all(first_dir)
                    .with_context(|| format!("cannot create {}", first_dir.display()))?;
                std::os::unix::fs::symlink(&source, &link)
                    .with_context(|| format!("cannot create {}", link.display()))?;
                println!(
                    "linked {} -> {} (`helm plugin install` would put it in {}, which is not in HELM_PLUGINS)",
                    link.display(),
                    source.display(),
                    data_plugins.display()
                );
            }
        }
        if !args.dry_run {
            let listing = helm_output(&args.helm_bin, ["plugin", "list"])?;
            if !parse_plugin_list(&listing)
                .iter()
                .any(|p| p.name == RENDER_ARGV0 && p.kind.as_deref() == Some("postrenderer/v1"))
            {
                bail!("{RENDER_ARGV0} was installed but `helm plugin list` does not show it:\n{listing}");
            }
            println!("ok: registered the Helm 4 post-renderer plugin {RENDER_ARGV0}");
        }
    }
    println!(
        "use: helm install … --post-renderer {RENDER_ARGV0} [--post-renderer-args --release=NAME]"
    );
    println!(
        "note: Helm 3 cannot load an apiVersion v1 plugin and then drops every plugin of its folder; if Helm 3 also reads {}, give it its own HELM_PLUGINS",
        display_dirs(plugin_dirs)
    );
    Ok(0)
}

/// `helm plugin install <source>` (a link to the folder, plus its install hook).
fn install_with_helm(args: &Args, source: &Path) -> anyhow::Result<()> {
    let shown = format!(
        "{} plugin install {}",
        args.helm_bin.display(),
        source.display()
    );
    if args.dry_run {
        println!("would run: {shown}");
        return Ok(());
    }
    println!("running: {shown}");
    let status = Command::new(&args.helm_bin)
        .arg("plugin")
        .arg("install")
        .arg(source)
        .status()
        .with_context(|| format!("cannot run {}", args.helm_bin.display()))?;
    if !status.success() {
        bail!("`{shown}` failed ({status})");
    }
    Ok(())
}

/// A symlink whose target is not `source` (both resolved).
fn is_link_elsewhere(link: &Path, source: &Path) -> bool {
    std::fs::symlink_metadata(link).is_ok_and(|m| m.file_type().is_symlink())
        && link.canonicalize().ok().as_deref() != Some(source)
}

fn is_dangling_symlink(path: &Path) -> bool {
    std::fs::symlink_metadata(path).is_ok_and(|m| m.file_type().is_symlink())
        && std::fs::metadata(path).is_err()
}

fn same_dir(a: &Path, b: &Path) -> bool {
    let canon = |p: &Path| p.canonicalize().unwrap_or_else(|_| p.to_path_buf());
    canon(a) == canon(b)
}

/// Helm 3: a `tfops-render` symlink to this binary in the bin dir (argv[0] dispatch).
fn setup_helm3(args: &Args, plugin_dirs: &[PathBuf]) -> anyhow::Result<u8> {
    let mut problems = 0u8;
    for file in v1_plugin_files(plugin_dirs) {
        problems = 1;
        eprintln!(
            "warning: {} has an apiVersion: Helm 3 cannot load it and drops every plugin of its folder; move it out of Helm 3's HELM_PLUGINS",
            file.display()
        );
    }
    let exe = std::env::current_exe()
        .and_then(|p| p.canonicalize())
        .context("cannot locate the tfops binary")?;
    let bin_dir = match &args.bin_dir {
        Some(dir) => dir.clone(),
        None => default_bin_dir()?,
    };
    let link = bin_dir.join(RENDER_ARGV0);
    match link_state(&link, &exe) {
        LinkState::Current => {
            println!("ok: {} already points to {}", link.display(), exe.display());
        }
        state => {
            if state == LinkState::OtherFile && !args.force {
                bail!(
                    "{} exists and is not a symlink; remove it or pass --force",
                    link.display()
                );
            }
            if args.dry_run {
                println!("would link: {} -> {}", link.display(), exe.display());
            } else {
                std::fs::create_dir_all(&bin_dir)
                    .with_context(|| format!("cannot create {}", bin_dir.display()))?;
                if state != LinkState::Missing {
                    std::fs::remove_file(&link)
                        .with_context(|| format!("cannot replace {}", link.display()))?;
                }
                std::os::unix::fs::symlink(&exe, &link)
                    .with_context(|| format!("cannot create {}", link.display()))?;
                println!("ok: linked {} -> {}", link.display(), exe.display());
            }
        }
    }
    if !on_path(&bin_dir) {
        println!(
            "note: {} is not on PATH; add it (export PATH=\"{}:$PATH\") or pass --post-renderer {}",
            bin_dir.display(),
            bin_dir.display(),
            link.display()
        );
    }
    println!(
        "use: helm install … --post-renderer {RENDER_ARGV0} [--post-renderer-args --release=NAME]"
    );
    println!(
        "note: Helm 3 runs no hooks added by a post-renderer: uninstall such releases with `helm tfops uninstall`"
    );
    Ok(problems)
}

/// The folder to `helm plugin install` on Helm 4.
fn render_plugin_source(args: &Args) -> anyhow::Result<PathBuf> {
    let root = match &args.plugin_dir {
        Some(dir) => dir.clone(),
        None => {
            let exe = std::env::current_exe()
                .and_then(|p| p.canonicalize())
                .context("cannot locate the tfops binary")?;
            exe.ancestors()
                .skip(1)
                .find(|dir| dir.join(RENDER_PLUGIN_SUBDIR).join("plugin.yaml").is_file())
                .map(Path::to_path_buf)
                .with_context(|| {
                    format!(
                        "cannot find {RENDER_PLUGIN_SUBDIR} above {}; pass --plugin-dir <helm-tfops checkout>",
                        exe.display()
                    )
                })?
        }
    };
    let source = root.join(RENDER_PLUGIN_SUBDIR);
    if !source.join("plugin.yaml").is_file() {
        bail!(
            "{} has no plugin.yaml (is {} a helm-tfops checkout?)",
            source.display(),
            root.display()
        );
    }
    // Resolve symlinks: Helm links the install to the real folder.
    source
        .canonicalize()
        .with_context(|| format!("cannot resolve {}", source.display()))
}

/// Run helm and return its stdout; a failure names the command and shows helm's stderr.
fn helm_output<I, S>(helm: &Path, args: I) -> anyhow::Result<String>
where
    I: IntoIterator<Item = S>,
    S: AsRef<OsStr>,
{
    let args: Vec<S> = args.into_iter().collect();
    let shown: Vec<String> = args
        .iter()
        .map(|a| a.as_ref().to_string_lossy().into_owned())
        .collect();
    let out = Command::new(helm)
        .args(&args)
        .output()
        .with_context(|| format!("cannot run {} (set HELM_BIN or --helm-bin)", helm.display()))?;
    if !out.status.success() {
        bail!(
            "`{} {}` failed ({}): {}",
            helm.display(),
            shown.join(" "),
            out.status,
            String::from_utf8_lossy(&out.stderr).trim()
        );
    }
    Ok(String::from_utf8_lossy(&out.stdout).into_owned())
}

/// Major version from `helm version --template {{.Version}}` output (`v4.1.4` → 4).
fn helm_major(version: &str) -> Option<u32> {
    let v = version.trim();
    let v = v.strip_prefix('v').unwrap_or(v);
    v.split('.').next()?.parse().ok()
}

/// One row of `helm plugin list`.
#[derive(Debug, PartialEq, Eq)]
struct ListedPlugin {
    name: String,
    /// TYPE column (Helm 4 only).
    kind: Option<String>,
}

/// Parse `helm plugin list` (Helm 4: NAME VERSION TYPE …; Helm 3: NAME VERSION DESCRIPTION).
fn parse_plugin_list(listing: &str) -> Vec<ListedPlugin> {
    let mut lines = listing.lines();
    let Some(header) = lines.next() else {
        return Vec::new();
    };
    let type_col = header.split_whitespace().position(|c| c == "TYPE");
    lines
        .filter_map(|line| {
            let cols: Vec<&str> = line.split_whitespace().collect();
            let name = (*cols.first()?).to_string();
            let kind = type_col.and_then(|i| cols.get(i)).map(|s| (*s).to_string());
            Some(ListedPlugin { name, kind })
        })
        .collect()
}

/// `plugin.yaml` files one level below the plugin dirs that carry a top-level `apiVersion`.
fn v1_plugin_files(plugin_dirs: &[PathBuf]) -> Vec<PathBuf> {
    let mut found = Vec::new();
    for dir in plugin_dirs {
        let Ok(entries) = std::fs::read_dir(dir) else {
            continue;
        };
        let mut files: Vec<PathBuf> = entries
            .filter_map(Result::ok)
            .map(|e| e.path().join("plugin.yaml"))
            .filter(|p| p.is_file())
            .collect();
        files.sort();
        for file in files {
            let Ok(text) = std::fs::read_to_string(&file) else {
                continue;
            };
            if has_api_version(&text) {
                found.push(file);
            }
        }
    }
    found
}

/// Whether a plugin.yaml text has a top-level `apiVersion` key.
fn has_api_version(text: &str) -> bool {
    match serde_saphyr::from_str::<serde_json::Value>(text) {
        Ok(serde_json::Value::Object(map)) => map.contains_key("apiVersion"),
        _ => false,
    }
}

/// What is at the Helm 3 `tfops-render` path today.
#[derive(Debug, PartialEq, Eq, Clone, Copy)]
enum LinkState {
    Missing,
    /// A symlink resolving to this binary.
    Current,
    /// A symlink elsewhere (an older build): replaced.
    OtherLink,
    /// Not a symlink: replaced only with --force.
    OtherFile,
}

fn link_state(link: &Path, exe: &Path) -> LinkState {
    match std::fs::symlink_metadata(link) {
        Err(_) => LinkState::Missing,
        Ok(meta) if meta.file_type().is_symlink() => match link.canonicalize() {
            Ok(target) if target == exe => LinkState::Current,
            _ => LinkState::OtherLink,
        },
        Ok(_) => LinkState::OtherFile,
    }
}

fn default_bin_dir() -> anyhow::Result<PathBuf> {
    let home = std::env::var_os("HOME").context("HOME is not set; pass --bin-dir")?;
    Ok(PathBuf::from(home).join(".local").join("bin"))
}

fn on_path(dir: &Path) -> bool {
    let want = dir.canonicalize().unwrap_or_else(|_| dir.to_path_buf());
    std::env::var_os("PATH")
        .map(|path| std::env::split_paths(&path).any(|p| p.canonicalize().unwrap_or(p) == want))
        .unwrap_or(false)
}

fn display_dirs(dirs: &[PathBuf]) -> String {
    dirs.iter()
        .map(|d| d.display().to_string())
        .collect::<Vec<_>>()
        .join(":")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn major_version_from_helm_output() {
        assert_eq!(helm_major("v4.1.4"), Some(4));
        assert_eq!(helm_major("v3.16.1\n"), Some(3));
        assert_eq!(helm_major("garbage"), None);
    }

    #[test]
    fn plugin_list_helm4_has_types() {
        let listing = "NAME        \tVERSION\tTYPE           \tAPIVERSION\tPROVENANCE\tSOURCE \n\
                       tfops       \t0.1.0  \tcli/v1         \tlegacy    \tunknown   \tunknown\n\
                       tfops-render\t0.1.0  \tpostrenderer/v1\tv1        \tunknown   \tunknown\n";
        assert_eq!(
            parse_plugin_list(listing),
            vec![
                ListedPlugin {
                    name: "tfops".into(),
                    kind: Some("cli/v1".into())
                },
                ListedPlugin {
                    name: "tfops-render".into(),
                    kind: Some("postrenderer/v1".into())
                },
            ]
        );
    }

    #[test]
    fn plugin_list_helm3_has_no_types() {
        let listing = "NAME \tVERSION\tDESCRIPTION\ntfops\t0.1.0  \tTerraform modules for Flux\n";
        assert_eq!(
            parse_plugin_list(listing),
            vec![ListedPlugin {
                name: "tfops".into(),
                kind: None
            }]
        );
    }

    #[test]
    fn api_version_detection() {
        assert!(has_api_version("apiVersion: v1\nname: x\n"));
        assert!(!has_api_version("name: tfops\ncommand: x\n"));
        assert!(!has_api_version("- not a map\n"));
    }

    #[test]
    fn link_states() {
        let dir = tempfile::tempdir().unwrap();
        let exe = dir.path().join("tfops");
        std::fs::write(&exe, b"x").unwrap();
        let exe = exe.canonicalize().unwrap();
        let other = dir.path().join("old");
        std::fs::write(&other, b"y").unwrap();
        let link = dir.path().join("tfops-render");
        assert_eq!(link_state(&link, &exe), LinkState::Missing);
        std::os::unix::fs::symlink(&exe, &link).unwrap();
        assert_eq!(link_state(&link, &exe), LinkState::Current);
        std::fs::remove_file(&link).unwrap();
        std::os::unix::fs::symlink(&other, &link).unwrap();
        assert_eq!(link_state(&link, &exe), LinkState::OtherLink);
        std::fs::remove_file(&link).unwrap();
        std::fs::write(&link, b"z").unwrap();
        assert_eq!(link_state(&link, &exe), LinkState::OtherFile);
    }
}
