//! The `doctor` flow: one LIST of the release's `Terraform` CRs, the guard's
//! `probe_environment` per CR (GETs of what deletion needs), the optional bounded active
//! controller probe (`reconcile.fluxcd.io/requestedAt` → `status.lastHandledReconcileAt`), and
//! the pure [`crate::diagnose`] on top.

use std::time::Duration;

use kube::api::{DynamicObject, Patch, PatchParams};
use kube::{Api, Client};
use serde_json::json;
use tfops_guard::probe::{probe_environment, ProbeError};

use crate::diagnose::{diagnose, ControllerProbe, Diagnosis};
use crate::fetch::{list_terraforms, terraform_resource, FetchError, Namespaces, Selection};
use tfops_api::TerraformView;

/// Flux's reconcile-request annotation.
pub use tfops_api::names::REQUESTED_AT;

/// Exit code: nothing blocks.
pub const EXIT_OK: u8 = 0;
/// Exit code: something blocks (or would block) deletion.
pub const EXIT_BLOCKED: u8 = 2;
/// Exit code: no Terraform CR found for the release.
pub const EXIT_NOT_FOUND: u8 = 3;

/// Errors of the doctor flow.
#[derive(Debug, thiserror::Error)]
pub enum DoctorError {
    #[error(transparent)]
    Fetch(#[from] FetchError),
    #[error(transparent)]
    Probe(#[from] Box<ProbeError>),
    #[error(transparent)]
    Orphans(#[from] Box<crate::orphans::OrphansError>),
    #[error("reading listed Terraform object: {0}")]
    Decode(#[from] serde_json::Error),
    #[error("requesting a reconcile of Terraform {namespace}/{name}: {source}")]
    Request {
        namespace: String,
        name: String,
        #[source]
        source: kube::Error,
    },
}

/// Exit code for a set of diagnoses.
pub fn exit_code(diagnoses: &[Diagnosis]) -> u8 {
    if diagnoses.is_empty() {
        EXIT_NOT_FOUND
    } else if diagnoses.iter().any(Diagnosis::blocking) {
        EXIT_BLOCKED
    } else {
        EXIT_OK
    }
}

/// Ask the controller to reconcile `name` and wait (bounded) for it to echo the request.
pub async fn probe_controller(
    client: &Client,
    namespace: &str,
    name: &str,
    token: &str,
    bound: Duration,
) -> Result<ControllerProbe, DoctorError> {
    let api: Api<DynamicObject> =
        Api::namespaced_with(client.clone(), namespace, &terraform_resource());
    let patch = json!({"metadata": {"annotations": {REQUESTED_AT: token}}});
    api.patch(name, &PatchParams::default(), &Patch::Merge(&patch))
        .await
        .map_err(|source| DoctorError::Request {
            namespace: namespace.to_owned(),
            name: name.to_owned(),
            source,
        })?;
    let started = tokio::time::Instant::now();
    let answered = |o: Option<&DynamicObject>| {
        o.and_then(|o| o.data.get("status"))
            .and_then(|s| s.get("lastHandledReconcileAt"))
            .and_then(|v| v.as_str())
            == Some(token)
    };
    match crate::wait::wait_for(api, name, answered, bound).await {
        Ok(Some(_)) => Ok(ControllerProbe::Answered {
            after_ms: u64::try_from(started.elapsed().as_millis()).unwrap_or(u64::MAX),
        }),
        _ => Ok(ControllerProbe::NoAnswer {
            waited_secs: bound.as_secs(),
        }),
    }
}

/// Diagnose every `Terraform` CR of `release` in `namespace`. `probe` = bound of the active
/// controller check (None: passive only); `token` = the requestedAt value to send.
pub async fn doctor(
    client: &Client,
    namespace: &str,
    release: &str,
    probe: Option<(Duration, String)>,
) -> Result<Vec<Diagnosis>, DoctorError> {
    let sel = Selection {
        namespaces: Namespaces::One(namespace.to_owned()),
        release: Some(release.to_owned()),
        ledger_namespace: None,
    };
    let crs = list_terraforms(client, &sel).await?;
    let mut envs = Vec::with_capacity(crs.len());
    for cr in &crs {
        let obj: DynamicObject = serde_json::from_value(cr.clone())?;
        envs.push(probe_environment(client, &obj).await.map_err(Box::new)?);
    }
    // Active probes run concurrently, each bounded.
    let probes: Vec<Option<ControllerProbe>> = match &probe {
        Some((bound, token)) => {
            let all = futures::future::join_all(crs.iter().map(|cr| {
                probe_controller(
                    client,
                    namespace,
                    TerraformView::new(cr).name(),
                    token,
                    *bound,
                )
            }))
            .await;
            all.into_iter()
                .map(|r| r.map(Some))
                .collect::<Result<_, _>>()?
        }
        None => vec![None; crs.len()],
    };
    let mut out: Vec<Diagnosis> = crs
        .iter()
        .zip(&envs)
        .zip(&probes)
        .map(|((cr, env), p)| diagnose(&TerraformView::new(cr), env, p.as_ref(), release))
        .collect();
    out.extend(doctor_orphans(client, namespace, release).await?);
    out.sort_by(|a, b| (&a.module, &a.name).cmp(&(&b.module, &b.name)));
    Ok(out)
}

/// The release's ledger entries not cleaned up yet whose `orphans destroy` would be refused:
/// one blocking `orphan-destroy-blocked` diagnosis each, naming what cannot be re-created
/// (nothing for entries it could destroy).
pub async fn doctor_orphans(
    client: &Client,
    namespace: &str,
    release: &str,
) -> Result<Vec<Diagnosis>, DoctorError> {
    use crate::diagnose::{Finding, Severity};
    let (items, _unreadable) = crate::fetch::list_ledger(
        client,
        &Namespaces::One(namespace.to_owned()),
        Some(release),
    )
    .await?;
    let mut out = Vec::new();
    for item in items.iter().filter(|i| !i.cleaned_up()) {
        let e = item.entry();
        let plan = crate::orphans::plan_dependencies(item, &e.namespace).map_err(Box::new)?;
        let missing = crate::orphans::preflight(client, &plan)
            .await
            .map_err(Box::new)?;
        if missing.is_empty() {
            continue;
        }
        out.push(Diagnosis {
            namespace: e.namespace.clone(),
            name: e.name.clone(),
            module: e.module.clone(),
            deleting: false,
            findings: vec![Finding {
                check: "orphan-destroy-blocked",
                severity: Severity::Blocking,
                message: format!(
                    "`helm tfops orphans destroy {}` would be refused: {}",
                    item.secret_name,
                    missing.join("; ")
                ),
                fix: Some(
                    "re-create the named objects (the ClusterRole comes with tofu-controller), then run `helm tfops orphans destroy`"
                        .to_owned(),
                ),
            }],
        });
    }
    Ok(out)
}
