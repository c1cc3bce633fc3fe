//! `events` — one Kubernetes Event (core/v1) on the `Terraform` CR for every guard decision
//! (reason `TfopsGuard<Decision>`, e.g. `TfopsGuardRetry`, `TfopsGuardOrphaned`). Messages
//! carry names, classes and condition text, never Secret values.

use k8s_openapi::api::core::v1::{Event, EventSource, ObjectReference};
use k8s_openapi::apimachinery::pkg::apis::meta::v1::{MicroTime, ObjectMeta, Time};
use kube::api::{DynamicObject, PostParams};
use kube::{Api, Client};

use crate::clock::Clock;
use crate::tfobj;

/// Reporting component of the guard's Events.
pub const COMPONENT: &str = "tfops-guard";

/// Normal or Warning.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Severity {
    Normal,
    Warning,
}

/// Maximum Event message length the API server accepts comfortably.
const MAX_MESSAGE: usize = 1024;

/// Build the Event for `reason` / `message` about `tf` (pure).
pub fn build(
    tf: &DynamicObject,
    reason: &str,
    message: &str,
    severity: Severity,
    clock: &Clock,
    seq: u64,
) -> Event {
    let v = tfobj::view(tf);
    let now = clock.now();
    let mut msg: String = message.chars().take(MAX_MESSAGE).collect();
    if msg.len() < message.len() {
        msg.push('…');
    }
    // Unique per (CR, run, sequence): `<cr>.<unix-nanos hex>.<seq>`, like client-go's names.
    let nanos = now.timestamp_nanos_opt().unwrap_or_default();
    let ts = k8s_openapi::jiff::Timestamp::from_nanosecond(i128::from(nanos))
        .unwrap_or(k8s_openapi::jiff::Timestamp::UNIX_EPOCH);
    let name = format!("{}.{:x}{:x}", v.name(), nanos, seq);
    Event {
        metadata: ObjectMeta {
            name: Some(name),
            namespace: Some(v.namespace().to_owned()),
            ..ObjectMeta::default()
        },
        involved_object: ObjectReference {
            api_version: Some(format!(
                "{}/{}",
                tfops_api::names::TF_GROUP,
                tfops_api::names::TF_VERSION
            )),
            kind: Some(tfops_api::names::TF_KIND.to_owned()),
            name: Some(v.name().to_owned()),
            namespace: Some(v.namespace().to_owned()),
            uid: tf.metadata.uid.clone(),
            resource_version: tf.metadata.resource_version.clone(),
            ..ObjectReference::default()
        },
        reason: Some(reason.to_owned()),
        message: Some(msg),
        type_: Some(
            match severity {
                Severity::Normal => "Normal",
                Severity::Warning => "Warning",
            }
            .to_owned(),
        ),
        first_timestamp: Some(Time(ts)),
        last_timestamp: Some(Time(ts)),
        event_time: Some(MicroTime(ts)),
        count: Some(1),
        source: Some(EventSource {
            component: Some(COMPONENT.to_owned()),
            host: None,
        }),
        reporting_component: Some(COMPONENT.to_owned()),
        reporting_instance: Some(COMPONENT.to_owned()),
        action: Some(reason.trim_start_matches("TfopsGuard").to_owned()),
        ..Event::default()
    }
}

/// Emit an Event; failures are returned so the caller can log them (an Event never blocks a
/// decision).
pub async fn emit(client: &Client, event: &Event) -> Result<(), kube::Error> {
    let ns = event.metadata.namespace.clone().unwrap_or_default();
    Api::<Event>::namespaced(client.clone(), &ns)
        .create(&PostParams::default(), event)
        .await
        .map(|_| ())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn builds_an_event_on_the_cr() {
        let tf: DynamicObject = serde_json::from_value(serde_json::json!({
            "apiVersion": "infra.contrib.fluxcd.io/v1alpha2", "kind": "Terraform",
            "metadata": {"name": "db", "namespace": "apps", "uid": "u1", "resourceVersion": "7"}
        }))
        .unwrap();
        let clock = Clock::with_base("2026-11-26T00:00:00Z".parse().unwrap());
        let long = "x".repeat(5000);
        let e = build(
            &tf,
            "TfopsGuardOrphaned",
            &long,
            Severity::Warning,
            &clock,
            3,
        );
        assert_eq!(e.involved_object.kind.as_deref(), Some("Terraform"));
        assert_eq!(e.involved_object.uid.as_deref(), Some("u1"));
        assert_eq!(e.metadata.namespace.as_deref(), Some("apps"));
        assert!(e.metadata.name.unwrap().starts_with("db."));
        assert_eq!(e.type_.as_deref(), Some("Warning"));
        assert_eq!(e.action.as_deref(), Some("Orphaned"));
        assert!(e.message.unwrap().chars().count() <= MAX_MESSAGE + 1);
    }
}
