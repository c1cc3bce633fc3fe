//! The helm process that runs us as its post-renderer, seen from its command line
//! (`/proc/<ppid>/cmdline`): whether it is post-rendering, and the namespace it installs into.
//!
//! Neither Helm 3 nor Helm 4 tells a post-renderer the release namespace (`-n` does not reach
//! its environment), yet the runner RoleBinding must name its ServiceAccount's namespace. So
//! when `--namespace`/`HELM_NAMESPACE` are not given, the namespace is resolved as Helm does:
//! helm's `-n/--namespace`, else the namespace of the kubeconfig context helm uses
//! (`--kube-context`/`HELM_KUBECONTEXT`, `--kubeconfig`/`KUBECONFIG`), else `default`.

use std::path::PathBuf;

use kube::config::Kubeconfig;

/// Arguments of the parent process, when it is a helm running us as `--post-renderer`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct HelmParent {
    args: Vec<String>,
}

impl HelmParent {
    /// The parent process, if its command line shows `--post-renderer` (Linux; else None).
    pub fn detect() -> Option<Self> {
        let args = parent_args()?;
        Self::from_args(args)
    }

    /// From a command line (argv[0] first).
    pub fn from_args(args: Vec<String>) -> Option<Self> {
        args.iter()
            .any(|a| a == "--post-renderer" || a.starts_with("--post-renderer="))
            .then_some(HelmParent { args })
    }

    /// Value of a helm flag, in any spelling pflag accepts (`--name v`, `--name=v`, and for a
    /// short name `-n v`, `-n=v`, `-nv`). Values of `--post-renderer-args` and `--set*` are
    /// skipped; scanning stops at `--`.
    pub fn flag(&self, long: &str, short: Option<char>) -> Option<String> {
        let long_eq = format!("--{long}=");
        let long = format!("--{long}");
        let short = short.map(|c| format!("-{c}"));
        let mut found = None;
        let mut args = self.args.iter().skip(1);
        while let Some(arg) = args.next() {
            if arg == "--" {
                break;
            }
            if arg == &long || short.as_deref() == Some(arg.as_str()) {
                found = args.next().cloned();
            } else if let Some(v) = arg.strip_prefix(&long_eq) {
                found = Some(v.to_string());
            } else if let Some(v) = short.as_deref().and_then(|s| arg.strip_prefix(s)) {
                if !v.is_empty() && !arg.starts_with("--") {
                    found = Some(v.strip_prefix('=').unwrap_or(v).to_string());
                }
            } else if takes_value(arg) {
                args.next();
            }
        }
        found.filter(|v| !v.is_empty())
    }

    /// The namespace helm installs into: `-n/--namespace`, else the kubeconfig context's
    /// namespace, else `default` — also when the kubeconfig cannot be read (Helm's own rule:
    /// `EnvSettings.Namespace()` falls back to `default` on any kubeconfig error).
    pub fn namespace(&self) -> String {
        if let Some(ns) = self.flag("namespace", Some('n')) {
            return ns;
        }
        let kubeconfig = match self.flag("kubeconfig", None) {
            Some(path) => Kubeconfig::read_from(PathBuf::from(path)),
            None => Kubeconfig::read(),
        };
        let Ok(kubeconfig) = kubeconfig else {
            return "default".to_string();
        };
        let context = self
            .flag("kube-context", None)
            .or_else(|| std::env::var("HELM_KUBECONTEXT").ok())
            .filter(|c| !c.is_empty());
        context_namespace(&kubeconfig, context.as_deref())
    }
}

/// Helm flags whose next argument is a value that may look like a flag.
fn takes_value(arg: &str) -> bool {
    matches!(
        arg,
        "--post-renderer-args"
            | "--set"
            | "--set-string"
            | "--set-file"
            | "--set-json"
            | "--set-literal"
    )
}

/// The namespace of `context` (or the current context) in `kubeconfig`, else `default`.
pub fn context_namespace(kubeconfig: &Kubeconfig, context: Option<&str>) -> String {
    let name = context.or(kubeconfig.current_context.as_deref());
    kubeconfig
        .contexts
        .iter()
        .find(|c| Some(c.name.as_str()) == name)
        .and_then(|c| c.context.as_ref())
        .and_then(|c| c.namespace.clone())
        .filter(|ns| !ns.is_empty())
        .unwrap_or_else(|| "default".to_string())
}

#[cfg(target_os = "linux")]
fn parent_args() -> Option<Vec<String>> {
    let ppid = std::os::unix::process::parent_id();
    let raw = std::fs::read(format!("/proc/{ppid}/cmdline")).ok()?;
    Some(
        raw.split(|b| *b == 0)
            .filter(|a| !a.is_empty())
            .map(|a| String::from_utf8_lossy(a).into_owned())
            .collect(),
    )
}

#[cfg(not(target_os = "linux"))]
fn parent_args() -> Option<Vec<String>> {
    None
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parent(args: &[&str]) -> Option<HelmParent> {
        HelmParent::from_args(args.iter().map(|s| s.to_string()).collect())
    }

    #[test]
    fn only_a_post_rendering_helm_counts() {
        assert!(parent(&[
            "helm",
            "template",
            "r",
            "c",
            "--post-renderer",
            "tfops-render"
        ])
        .is_some());
        assert!(parent(&["helm", "install", "r", "c", "--post-renderer=tfops-render"]).is_some());
        assert!(parent(&["bash", "-c", "helm template x | tfops render"]).is_none());
        assert!(parent(&[]).is_none());
    }

    #[test]
    fn namespace_flag_spellings() {
        let pr = ["--post-renderer", "tfops-render"];
        for (args, want) in [
            (vec!["-n", "shop"], Some("shop")),
            (vec!["-nshop"], Some("shop")),
            (vec!["-n=shop"], Some("shop")),
            (vec!["--namespace", "shop"], Some("shop")),
            (vec!["--namespace=shop"], Some("shop")),
            (vec!["-n", "a", "--namespace=b"], Some("b")),
            (vec!["--post-renderer-args", "-n", "--set", "-nx=1"], None),
            (vec!["--", "-n", "shop"], None),
            (vec!["--namespace="], None),
        ] {
            let mut all = vec!["helm", "install", "r", "c"];
            all.extend(pr);
            all.extend(args.iter().copied());
            let p = parent(&all).unwrap();
            assert_eq!(p.flag("namespace", Some('n')).as_deref(), want, "{args:?}");
        }
    }

    #[test]
    fn kube_context_namespace() {
        let kubeconfig: Kubeconfig = serde_json::from_value(serde_json::json!({
            "apiVersion": "v1",
            "kind": "Config",
            "current-context": "a",
            "contexts": [
                {"name": "a", "context": {"cluster": "c", "namespace": "team-a"}},
                {"name": "b", "context": {"cluster": "c"}},
            ],
            "clusters": [],
            "users": [],
        }))
        .unwrap();
        assert_eq!(context_namespace(&kubeconfig, None), "team-a");
        assert_eq!(context_namespace(&kubeconfig, Some("b")), "default");
        assert_eq!(context_namespace(&kubeconfig, Some("missing")), "default");
    }
}
