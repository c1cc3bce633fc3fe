//! `tfops orphans list|show|destroy|export|import|forget` (`helm tfops orphans …`): read and operate the
//! orphan ledger. Thin glue over `tfops_status::orphans`.

use std::io::Write;
use std::sync::Arc;

use tfops_status::fetch::{list_ledger, Namespaces};
use tfops_status::ledger::LedgerItem;
use tfops_status::orphans::{self, DestroyOptions, DestroyOutcome};

use crate::kubeenv::KubeEnv;

const AFTER: &str = "\
NAME is the ledger Secret name (tfops-ledger-<cr>-<uid8>) or the name of the Terraform CR.
Exit codes: 0 done; 1 error; 2 destroy failed (recorded as destroy-failed) or forget refused
without --yes; 3 no ledger entry found (list: none in scope).";

/// Arguments of `tfops orphans`.
#[derive(Debug, clap::Args)]
#[command(after_help = AFTER)]
pub struct Args {
    #[command(subcommand)]
    pub command: Sub,
    /// Namespace of the ledger (default: HELM_NAMESPACE, then the kubeconfig context's).
    #[arg(short = 'n', long, global = true)]
    pub namespace: Option<String>,
    /// Every namespace.
    #[arg(short = 'A', long = "all-namespaces", global = true)]
    pub all_namespaces: bool,
}

#[derive(Debug, clap::Subcommand)]
pub enum Sub {
    /// List ledger entries (orphaned / force-removed Terraform CRs).
    List {
        /// Only this release.
        #[arg(long)]
        release: Option<String>,
        /// table, json or yaml.
        #[arg(short = 'o', long, default_value = "table")]
        output: String,
    },
    /// Print one entry; copied outputs / tfstate values are redacted unless --show-secrets.
    Show {
        name: String,
        #[arg(long)]
        show_secrets: bool,
        /// yaml or json.
        #[arg(short = 'o', long, default_value = "yaml")]
        output: String,
    },
    /// Finish the cleanup: re-create the CR from the entry with destroy semantics, delete it and
    /// wait until destroyed; the result is recorded in the entry.
    Destroy {
        name: String,
        /// Re-create under this name instead of the original (when the original is taken).
        #[arg(long = "name")]
        new_name: Option<String>,
        /// Re-create in this namespace instead of the original one (-n is the ledger's).
        #[arg(long = "target-namespace")]
        target_namespace: Option<String>,
        /// How long to wait for the controller to destroy (Go-style: 90s, 10m, 1h30m).
        #[arg(long, default_value = "15m")]
        timeout: String,
        /// Only list what would be created.
        #[arg(long)]
        dry_run: bool,
    },
    /// Hand the orphan's resources back to a (re)installed release instead of destroying them:
    /// the release's Terraform CR of the same module (installed suspended, not applied yet)
    /// gets the ledger's tfstate copy as its state.
    Adopt {
        name: String,
        /// The release whose CR takes the resources over.
        #[arg(long)]
        release: String,
        /// Namespace of that CR (default: the orphan's).
        #[arg(long = "target-namespace")]
        target_namespace: Option<String>,
    },
    /// Write the entry (ledger Secret and tfstate parts) as a YAML/JSON List, to keep it outside
    /// the cluster; copied values are emptied unless --show-secrets (only such an export can be
    /// imported).
    Export {
        name: String,
        #[arg(long)]
        show_secrets: bool,
        /// yaml or json.
        #[arg(short = 'o', long, default_value = "yaml")]
        output: String,
    },
    /// Put an exported entry back into the ledger namespace, checked (not redacted, tfstate
    /// checksums right, not already there).
    Import {
        /// File written by `orphans export --show-secrets` (`-` for stdin).
        file: String,
    },
    /// Delete an entry (only with --yes: it may be the only record of live cloud resources).
    Forget {
        name: String,
        #[arg(long)]
        yes: bool,
    },
}

async fn load(env: &KubeEnv, all: bool, release: Option<&str>) -> anyhow::Result<Vec<LedgerItem>> {
    let ns = if all {
        Namespaces::All
    } else {
        Namespaces::One(env.namespace.clone())
    };
    let (items, errors) = list_ledger(&env.client, &ns, release).await?;
    for e in errors {
        eprintln!("warning: skipping unreadable ledger entry: {e}");
    }
    Ok(items)
}

/// Run `tfops orphans`.
pub async fn run(args: Args) -> anyhow::Result<u8> {
    let env = KubeEnv::from_env(args.namespace.as_deref()).await?;
    let mut out = std::io::stdout().lock();
    match args.command {
        Sub::List { release, output } => {
            let items = load(&env, args.all_namespaces, release.as_deref()).await?;
            let text = match output.as_str() {
                "table" => orphans::list_table(&items, chrono::Utc::now(), args.all_namespaces),
                "json" => serde_json::to_string_pretty(&orphans::rows(&items))? + "\n",
                "yaml" => serde_saphyr::to_string(&orphans::rows(&items))
                    .map_err(|e| anyhow::anyhow!("serialising YAML: {e}"))?,
                other => anyhow::bail!("-o {other:?}: expected table, json or yaml"),
            };
            out.write_all(text.as_bytes())?;
            Ok(if items.is_empty() { 3 } else { 0 })
        }
        Sub::Show {
            name,
            show_secrets,
            output,
        } => {
            let items = load(&env, args.all_namespaces, None).await?;
            let item = match orphans::find(&items, &name) {
                Ok(i) => i,
                Err(e) => {
                    eprintln!("Error: {e}");
                    return Ok(3);
                }
            };
            let text = match output.as_str() {
                "yaml" => orphans::show_yaml(item, show_secrets)?,
                "json" => {
                    serde_json::to_string_pretty(&orphans::show_document(item, show_secrets)?)?
                        + "\n"
                }
                other => anyhow::bail!("-o {other:?}: expected yaml or json"),
            };
            out.write_all(text.as_bytes())?;
            Ok(0)
        }
        Sub::Forget { name, yes } => {
            let items = load(&env, args.all_namespaces, None).await?;
            let item = match orphans::find(&items, &name) {
                Ok(i) => i,
                Err(e) => {
                    eprintln!("Error: {e}");
                    return Ok(3);
                }
            };
            if !yes {
                eprint!("{}", orphans::forget_refusal(item));
                return Ok(2);
            }
            orphans::forget(&env.client, item).await?;
            writeln!(
                out,
                "ledger entry {}/{} deleted",
                item.secret_namespace, item.secret_name
            )?;
            Ok(0)
        }
        Sub::Export {
            name,
            show_secrets,
            output,
        } => {
            let items = load(&env, args.all_namespaces, None).await?;
            let item = match orphans::find(&items, &name) {
                Ok(i) => i,
                Err(e) => {
                    eprintln!("Error: {e}");
                    return Ok(3);
                }
            };
            let doc = orphans::export(&env.client, item, show_secrets).await?;
            let text = match output.as_str() {
                "yaml" => serde_saphyr::to_string(&doc)
                    .map_err(|e| anyhow::anyhow!("serialising YAML: {e}"))?,
                "json" => serde_json::to_string_pretty(&doc)? + "\n",
                other => anyhow::bail!("-o {other:?}: expected yaml or json"),
            };
            out.write_all(text.as_bytes())?;
            Ok(0)
        }
        Sub::Adopt {
            name,
            release,
            target_namespace,
        } => {
            let items = load(&env, args.all_namespaces, None).await?;
            let item = match orphans::find(&items, &name) {
                Ok(i) => i,
                Err(e) => {
                    eprintln!("Error: {e}");
                    return Ok(3);
                }
            };
            let outcome = orphans::adopt(
                &env.client,
                item,
                &release,
                target_namespace.as_deref(),
                &chrono::Utc::now,
            )
            .await?;
            match outcome {
                orphans::AdoptOutcome::Adopted { namespace, name } => writeln!(
                    out,
                    "adopted: Terraform {namespace}/{name} of release {release} now holds the state; ledger entry {} recorded as adopted (un-suspend the module to reconcile)",
                    item.secret_name
                )?,
                orphans::AdoptOutcome::AlreadyCleanedUp => writeln!(
                    out,
                    "ledger entry {} was already cleaned up; nothing to do",
                    item.secret_name
                )?,
            }
            Ok(0)
        }
        Sub::Import { file } => {
            let text = if file == "-" {
                std::io::read_to_string(std::io::stdin())?
            } else {
                std::fs::read_to_string(&file)
                    .map_err(|e| anyhow::anyhow!("reading {file}: {e}"))?
            };
            let doc: serde_json::Value = serde_saphyr::from_str(&text)
                .map_err(|e| anyhow::anyhow!("{file}: not YAML/JSON: {e}"))?;
            let (main, parts) = orphans::import_secrets(&doc, &env.namespace)?;
            let at = orphans::import(&env.client, &main, &parts).await?;
            writeln!(out, "ledger entry {at} imported")?;
            Ok(0)
        }
        Sub::Destroy {
            name,
            new_name,
            target_namespace,
            timeout,
            dry_run,
        } => {
            let timeout = tfops_api::duration::parse_duration(&timeout)
                .map_err(|e| anyhow::anyhow!("--timeout {timeout:?}: {e}"))?;
            let items = load(&env, args.all_namespaces, None).await?;
            let item = match orphans::find(&items, &name) {
                Ok(i) => i,
                Err(e) => {
                    eprintln!("Error: {e}");
                    return Ok(3);
                }
            };
            let opts = DestroyOptions {
                name: new_name,
                namespace: target_namespace,
                dry_run,
                timeout,
                clock: Arc::new(chrono::Utc::now),
            };
            let outcome = orphans::destroy(&env.client, item, &opts, &mut |line: &str| {
                eprintln!("{line}");
            })
            .await?;
            match outcome {
                DestroyOutcome::Destroyed { name } => {
                    writeln!(
                        out,
                        "destroyed: Terraform {}/{name}; ledger entry {} recorded as destroyed",
                        item.entry().namespace,
                        item.secret_name
                    )?;
                    Ok(0)
                }
                DestroyOutcome::DryRun { would_create } => {
                    writeln!(
                        out,
                        "dry run: ledger entry {} would re-create (when absent):",
                        item.secret_name
                    )?;
                    for line in would_create {
                        writeln!(out, "  {line}")?;
                    }
                    Ok(0)
                }
                DestroyOutcome::AlreadyDestroyed => {
                    writeln!(
                        out,
                        "ledger entry {} was already cleaned up; nothing to do",
                        item.secret_name
                    )?;
                    Ok(0)
                }
                DestroyOutcome::Failed { message } => {
                    eprintln!("destroy failed: {message}");
                    eprintln!(
                        "recorded as destroy-failed in {}/{}; see `helm tfops orphans show {}`",
                        item.secret_namespace, item.secret_name, item.secret_name
                    );
                    Ok(2)
                }
            }
        }
    }
}
