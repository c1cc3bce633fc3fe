//! `probe` — reads what the environment of one `Terraform` CR looks like (into
//! [`crate::core::findings::Findings`]), i.e. everything
//! tofu-controller v0.16.5 needs to finish its deletion: the Flux source object with an
//! artifact, the runner ServiceAccount, `varsFrom` / `backendConfigsFrom` objects, dependants
//! gone, a namespace that is not terminating, no state lock held, a controller that answers
//! `reconcile.fluxcd.io/requestedAt`. Used lazily by the guard engine (only for CRs that are
//! not progressing) and by `helm tfops doctor`.
//!
//! Every lookup is a GET; a 403 on a lookup yields [`Presence::Unknown`] (the guard's Role is
//! least-privilege and may not read e.g. Namespaces), never an error.

use k8s_openapi::api::core::v1::{ConfigMap, Namespace, Pod, Secret, ServiceAccount};
use kube::api::DynamicObject;
use kube::api::ListParams;
use kube::{Api, Client};

use crate::core::findings::{ControllerAnswer, Findings, RunnerPodState, SourceFinding};
use crate::core::machine::Presence;
use crate::tfobj::{self, ObjectRef};

/// Errors probing (only non-403 API failures; absence is data, not an error).
#[derive(Debug, thiserror::Error)]
pub enum ProbeError {
    #[error("probing {what} for Terraform {namespace}/{name}: {source}")]
    Api {
        what: String,
        namespace: String,
        name: String,
        #[source]
        source: kube::Error,
    },
}

fn status_code(e: &kube::Error) -> Option<u16> {
    match e {
        kube::Error::Api(s) => Some(s.code),
        _ => None,
    }
}

/// GET that maps 404 → Missing, 403 → Unknown.
async fn presence<K>(api: Api<K>, name: &str) -> Result<(Presence, Option<K>), kube::Error>
where
    K: kube::Resource + Clone + serde::de::DeserializeOwned + std::fmt::Debug,
{
    match api.get(name).await {
        Ok(obj) => Ok((Presence::Present, Some(obj))),
        Err(e) if status_code(&e) == Some(404) => Ok((Presence::Missing, None)),
        Err(e) if status_code(&e) == Some(403) => Ok((Presence::Unknown, None)),
        Err(e) => Err(e),
    }
}

/// Controller answer from the CR alone (no I/O).
pub fn controller_answer(tf: &DynamicObject) -> ControllerAnswer {
    let v = tfobj::view(tf);
    match v.annotation(tfops_api::names::REQUESTED_AT) {
        None => ControllerAnswer::NotRequested,
        Some(req) => {
            let handled = v.last_handled_reconcile_at();
            if handled == Some(req) {
                ControllerAnswer::Answered
            } else {
                ControllerAnswer::Pending {
                    requested: req.to_owned(),
                    handled: handled.map(str::to_owned),
                }
            }
        }
    }
}

/// Probe the environment of `terraform` (a `Terraform` CR as read from the API server).
pub async fn probe_environment(
    client: &Client,
    terraform: &DynamicObject,
) -> Result<Findings, ProbeError> {
    let v = tfobj::view(terraform);
    let ns = v.namespace();
    let err = |what: String| {
        let namespace = ns.to_owned();
        let name = v.name().to_owned();
        move |source| ProbeError::Api {
            what,
            namespace,
            name,
            source,
        }
    };

    // Source object + artifact.
    let reference = v.source_ref();
    let source = match &reference {
        None => SourceFinding {
            reference: None,
            presence: Presence::Missing,
            has_artifact: false,
        },
        Some(r) => match tfobj::source_api_resource(&r.kind) {
            None => SourceFinding {
                reference: Some(r.clone()),
                presence: Presence::Unknown,
                has_artifact: false,
            },
            Some(ar) => {
                let api: Api<DynamicObject> =
                    Api::namespaced_with(client.clone(), &r.namespace, &ar);
                let (presence, obj) = presence(api, &r.name)
                    .await
                    .map_err(err(format!("source {r}")))?;
                let has_artifact = obj
                    .as_ref()
                    .and_then(|o| o.data.get("status"))
                    .and_then(|s| s.get("artifact"))
                    .is_some_and(|a| !a.is_null());
                SourceFinding {
                    reference: Some(r.clone()),
                    presence,
                    has_artifact,
                }
            }
        },
    };

    // Runner ServiceAccount.
    let sa_name = v.runner_service_account().to_owned();
    let (sa_presence, _) = presence(
        Api::<ServiceAccount>::namespaced(client.clone(), ns),
        &sa_name,
    )
    .await
    .map_err(err(format!("ServiceAccount {sa_name}")))?;

    // varsFrom / backendConfigsFrom.
    let mut missing_vars_from = Vec::new();
    for r in v.vars_from().into_iter().filter(|r| !r.optional) {
        if ref_presence(client, &r).await.map_err(err(r.to_string()))? == Presence::Missing {
            missing_vars_from.push(r);
        }
    }
    let mut missing_backend_configs_from = Vec::new();
    for r in v.backend_configs_from().into_iter().filter(|r| !r.optional) {
        if ref_presence(client, &r).await.map_err(err(r.to_string()))? == Presence::Missing {
            missing_backend_configs_from.push(r);
        }
    }

    // Dependants named by tf.dependency.of.* finalizers. The finalizer carries only the
    // dependant's NAME and `dependsOn` may cross namespaces, so a dependant is gone only when
    // a cluster-wide lookup proves that no Terraform of that name depends on this CR; when
    // that lookup is not allowed, it counts as present.
    let mut dependants_present = Vec::new();
    let mut dependants_gone = Vec::new();
    for d in v.dependant_finalizers() {
        match dependant_presence(client, ns, v.name(), d)
            .await
            .map_err(err(format!("dependant Terraform {d}")))?
        {
            Presence::Missing => dependants_gone.push(d.to_owned()),
            _ => dependants_present.push(d.to_owned()),
        }
    }

    // dependsOn targets: one that is gone makes the controller's finalize fail on it forever.
    let mut depends_on_gone = Vec::new();
    for r in v.depends_on() {
        let api: Api<DynamicObject> =
            Api::namespaced_with(client.clone(), &r.namespace, &tfobj::api_resource());
        let (p, _) = presence(api, &r.name)
            .await
            .map_err(err(format!("dependsOn Terraform {r}")))?;
        if p == Presence::Missing {
            depends_on_gone.push(r);
        }
    }

    // The runner pod (`<name>-tf-runner`): whether a reconcile is running terraform now.
    let runner_pod_name = format!("{}-tf-runner", v.name());
    let (pod_presence, pod) =
        presence(Api::<Pod>::namespaced(client.clone(), ns), &runner_pod_name)
            .await
            .map_err(err(format!("Pod {runner_pod_name}")))?;
    let runner_pod = match (pod_presence, pod) {
        (Presence::Present, Some(p)) => Some(RunnerPodState {
            name: runner_pod_name.clone(),
            uid: p.metadata.uid.clone().unwrap_or_default(),
            phase: p
                .status
                .as_ref()
                .and_then(|s| s.phase.clone())
                .unwrap_or_else(|| "Pending".to_owned()),
            deleting: p.metadata.deletion_timestamp.is_some(),
            created: p
                .metadata
                .creation_timestamp
                .as_ref()
                .and_then(|t| jiff_to_chrono(t.0)),
        }),
        _ => None,
    };
    let runner_pod_presence = pod_presence;

    // Namespace (often not readable by the namespace-scoped guard Role).
    let (ns_presence, ns_obj) = presence(Api::<Namespace>::all(client.clone()), ns)
        .await
        .map_err(err(format!("Namespace {ns}")))?;
    let namespace_terminating = match ns_presence {
        Presence::Unknown => None,
        Presence::Missing => Some(true),
        Presence::Present => Some(
            ns_obj
                .and_then(|n| n.status)
                .and_then(|s| s.phase)
                .is_some_and(|p| p == "Terminating"),
        ),
    };

    Ok(Findings {
        source,
        runner_service_account: sa_name,
        runner_service_account_presence: sa_presence,
        missing_vars_from,
        missing_backend_configs_from,
        dependants_present,
        dependants_gone,
        depends_on_gone,
        runner_pod_presence,
        runner_pod,
        namespace_terminating,
        lock_pending: v.lock_pending().map(str::to_owned),
        controller: controller_answer(terraform),
        suspended: v.suspended(),
    })
}

/// A Kubernetes timestamp (jiff) as chrono.
pub fn jiff_to_chrono(t: k8s_openapi::jiff::Timestamp) -> Option<chrono::DateTime<chrono::Utc>> {
    chrono::DateTime::from_timestamp(t.as_second(), u32::try_from(t.subsec_nanosecond()).ok()?)
}

/// Whether dependant `dependant` of `ns/name` still exists anywhere. Cluster-wide LIST by
/// name: Missing only when it succeeds and no Terraform of that name lists `ns/name` in
/// `spec.dependsOn`. Without permission for the cluster-wide LIST, a dependant found in `ns`
/// is Present and one not found there is Unknown (it may live in another namespace).
async fn dependant_presence(
    client: &Client,
    ns: &str,
    name: &str,
    dependant: &str,
) -> Result<Presence, kube::Error> {
    let all: Api<DynamicObject> = Api::all_with(client.clone(), &tfobj::api_resource());
    let lp = ListParams::default().fields(&format!("metadata.name={dependant}"));
    match all.list(&lp).await {
        Ok(list) => {
            let depends = list.items.iter().any(|o| {
                tfobj::view(o)
                    .depends_on()
                    .iter()
                    .any(|r| r.name == name && r.namespace == ns)
            });
            Ok(if depends {
                Presence::Present
            } else {
                Presence::Missing
            })
        }
        Err(e) if status_code(&e) == Some(403) => {
            let local: Api<DynamicObject> =
                Api::namespaced_with(client.clone(), ns, &tfobj::api_resource());
            Ok(match presence(local, dependant).await?.0 {
                Presence::Present => Presence::Present,
                _ => Presence::Unknown,
            })
        }
        Err(e) => Err(e),
    }
}

async fn ref_presence(client: &Client, r: &ObjectRef) -> Result<Presence, kube::Error> {
    match r.kind.as_str() {
        "Secret" => Ok(presence(
            Api::<Secret>::namespaced(client.clone(), &r.namespace),
            &r.name,
        )
        .await?
        .0),
        "ConfigMap" => Ok(presence(
            Api::<ConfigMap>::namespaced(client.clone(), &r.namespace),
            &r.name,
        )
        .await?
        .0),
        _ => Ok(Presence::Unknown),
    }
}
