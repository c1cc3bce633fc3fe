//! Reads what `status` shows: ONE LIST of `Terraform` CRs per namespace (or one cluster-wide
//! LIST for `-A`) by label selector, plus ONE LIST of ledger Secrets. Never one GET per object.

use k8s_openapi::api::core::v1::Secret;
use kube::api::{DynamicObject, ListParams};
use kube::{Api, Client, Resource};
use serde_json::Value;

use crate::ledger::{selector as ledger_selector, LedgerError, LedgerItem};
use tfops_api::names::LABEL_RELEASE as RELEASE_LABEL;

pub use tfops_guard::tfobj::api_resource as terraform_resource;

/// Which namespaces to read.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Namespaces {
    One(String),
    All,
}

/// What `status` reads.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Selection {
    pub namespaces: Namespaces,
    /// `None`: every release (`--all` / `-A`).
    pub release: Option<String>,
    /// Extra namespace holding ledger Secrets (catalog `ledgerNamespace`), if not the release's.
    pub ledger_namespace: Option<String>,
}

impl Selection {
    /// Label selector of the release's `Terraform` CRs.
    pub fn terraform_selector(&self) -> String {
        match &self.release {
            Some(r) => format!("{RELEASE_LABEL}={r}"),
            None => RELEASE_LABEL.to_owned(),
        }
    }
}

/// Errors reading from the cluster.
#[derive(Debug, thiserror::Error)]
pub enum FetchError {
    #[error("the Terraform CRD (terraforms.infra.contrib.fluxcd.io/v1alpha2) is not installed in this cluster: is tofu-controller installed?")]
    NoCrd,
    #[error("listing Terraform objects in {scope}: {source}")]
    ListTerraform {
        scope: String,
        #[source]
        source: kube::Error,
    },
    #[error("listing ledger Secrets in {scope}: {source}")]
    ListLedger {
        scope: String,
        #[source]
        source: kube::Error,
    },
    #[error("serialising a listed object: {0}")]
    Serialise(#[from] serde_json::Error),
}

/// What was read.
#[derive(Debug, Default)]
pub struct Snapshot {
    pub terraforms: Vec<Value>,
    pub ledger: Vec<LedgerItem>,
    /// Ledger Secrets that could not be parsed (reported, not fatal).
    pub ledger_errors: Vec<LedgerError>,
}

fn scope_name(ns: &Namespaces) -> String {
    match ns {
        Namespaces::One(n) => format!("namespace {n}"),
        Namespaces::All => "all namespaces".to_owned(),
    }
}

/// LIST the selection's `Terraform` CRs (one request), decoded straight into JSON values.
pub async fn list_terraforms(client: &Client, sel: &Selection) -> Result<Vec<Value>, FetchError> {
    let ar = terraform_resource();
    let ns = match &sel.namespaces {
        Namespaces::One(ns) => Some(ns.as_str()),
        Namespaces::All => None,
    };
    let err = |source| match &source {
        kube::Error::Api(s) if s.code == 404 => FetchError::NoCrd,
        _ => FetchError::ListTerraform {
            scope: scope_name(&sel.namespaces),
            source,
        },
    };
    let request = kube::core::Request::new(DynamicObject::url_path(&ar, ns))
        .list(&ListParams::default().labels(&sel.terraform_selector()))
        .map_err(|e| err(kube::Error::BuildRequest(e)))?;
    let mut list: Value = client.request(request).await.map_err(err)?;
    let items = match list.get_mut("items").map(Value::take) {
        Some(Value::Array(items)) => items,
        _ => Vec::new(),
    };
    Ok(items
        .into_iter()
        .map(|mut obj| {
            // Lists omit apiVersion/kind on items.
            if obj.get("kind").is_none() {
                obj["apiVersion"] = Value::from(tfops_api::names::TF_API_VERSION);
                obj["kind"] = Value::from("Terraform");
            }
            obj
        })
        .collect())
}

/// LIST ledger Secrets of the selection in `ns` (or everywhere) (one request).
pub async fn list_ledger(
    client: &Client,
    ns: &Namespaces,
    release: Option<&str>,
) -> Result<(Vec<LedgerItem>, Vec<LedgerError>), FetchError> {
    let api: Api<Secret> = match ns {
        Namespaces::One(n) => Api::namespaced(client.clone(), n),
        Namespaces::All => Api::all(client.clone()),
    };
    let list = api
        .list(&ListParams::default().labels(&ledger_selector(release)))
        .await
        .map_err(|source| FetchError::ListLedger {
            scope: scope_name(ns),
            source,
        })?;
    let mut items = Vec::new();
    let mut errors = Vec::new();
    for s in &list.items {
        match LedgerItem::from_secret(s) {
            Ok(i) => items.push(i),
            Err(e) => errors.push(e),
        }
    }
    Ok((items, errors))
}

/// Read the selection: one Terraform LIST, one ledger LIST (two when a separate ledger
/// namespace is configured). Ledger entries are kept when they are about a CR in the selected
/// namespace.
pub async fn fetch(client: &Client, sel: &Selection) -> Result<Snapshot, FetchError> {
    let release = sel.release.as_deref();
    let (terraforms, ledger) = tokio::join!(
        list_terraforms(client, sel),
        list_ledger(client, &sel.namespaces, release)
    );
    let terraforms = terraforms?;
    let (mut ledger, mut ledger_errors) = ledger?;
    if let (Namespaces::One(ns), Some(lns)) = (&sel.namespaces, &sel.ledger_namespace) {
        if lns != ns {
            let (more, errs) = list_ledger(client, &Namespaces::One(lns.clone()), release).await?;
            ledger.extend(more);
            ledger_errors.extend(errs);
        }
    }
    if let Namespaces::One(ns) = &sel.namespaces {
        ledger.retain(|l| &l.entry().namespace == ns);
    }
    Ok(Snapshot {
        terraforms,
        ledger,
        ledger_errors,
    })
}
