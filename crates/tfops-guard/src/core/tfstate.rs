//! `tfstate` — what a Terraform state says is still managed (pure).
//!
//! tofu-controller's kubernetes backend keeps the state in the Secret
//! `tfstate-<workspace>-<suffix>`, key `tfstate`, gzip-compressed JSON (Terraform's kubernetes
//! backend); a successful destroy leaves it with no managed resource, and the controller never
//! deletes it (`runner/server.go` `FinalizeSecrets` keeps it). The guard reads it when a CR it
//! had given up on is released, to record what the controller really did even if the watch
//! missed the controller's last status, and to tell whether a holder an in-use failure names
//! is managed by a `Terraform` the same uninstall is destroying ([`managed_ids`]).

use std::collections::BTreeSet;
use std::io::Read;

use crate::core::classify::holder;

/// Largest decompressed state the guard reads (a state is rarely above a few MiB).
const MAX_STATE_BYTES: u64 = 64 * 1024 * 1024;

/// The state in `data` (gzip or plain JSON), `None` when it is not a readable state.
fn parse(data: &[u8]) -> Option<serde_json::Value> {
    let json: Vec<u8> = if data.starts_with(&[0x1f, 0x8b]) {
        let mut out = Vec::new();
        flate2::read::GzDecoder::new(data)
            .take(MAX_STATE_BYTES)
            .read_to_end(&mut out)
            .ok()?;
        out
    } else {
        data.to_vec()
    };
    serde_json::from_slice(&json).ok()
}

/// The state's managed resources that have at least one instance.
fn managed(state: &serde_json::Value) -> Option<impl Iterator<Item = &serde_json::Value>> {
    let resources = state.get("resources")?.as_array()?;
    Some(
        resources
            .iter()
            .filter(|r| r.get("mode").and_then(|m| m.as_str()).unwrap_or("managed") == "managed")
            .filter(|r| {
                r.get("instances")
                    .and_then(|i| i.as_array())
                    .is_some_and(|i| !i.is_empty())
            }),
    )
}

/// Managed resources with at least one instance in `data` (gzip or plain JSON state);
/// `None` when it is not a readable state.
pub fn managed_resources(data: &[u8]) -> Option<usize> {
    Some(managed(&parse(data)?)?.count())
}

/// Cloud identifiers (`id`, `arn`, `self_link` of every instance, [`holder::canonical`]) of
/// the managed resources in `data`; `None` when it is not a readable state.
pub fn managed_ids(data: &[u8]) -> Option<BTreeSet<String>> {
    let state = parse(data)?;
    let mut ids = BTreeSet::new();
    for resource in managed(&state)? {
        let instances = resource.get("instances").and_then(|i| i.as_array());
        for instance in instances.into_iter().flatten() {
            let Some(attrs) = instance.get("attributes") else {
                continue;
            };
            for key in ["id", "arn", "self_link"] {
                if let Some(v) = attrs.get(key).and_then(|v| v.as_str()) {
                    if holder::is_identifier(v) {
                        ids.insert(holder::canonical(v));
                    }
                }
            }
        }
    }
    Some(ids)
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::io::Write;

    const APPLIED: &str = r#"{"version":4,"serial":3,"resources":[
        {"mode":"managed","type":"aws_s3_bucket","name":"this","instances":[{"attributes":{"id":"b"}}]},
        {"mode":"data","type":"aws_caller_identity","name":"me","instances":[{"attributes":{}}]}]}"#;
    const DESTROYED: &str = r#"{"version":4,"serial":4,"resources":[]}"#;

    fn gzip(s: &str) -> Vec<u8> {
        let mut e = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::default());
        e.write_all(s.as_bytes()).unwrap();
        e.finish().unwrap()
    }

    #[test]
    fn counts_managed_resources_in_plain_and_gzip_state() {
        assert_eq!(managed_resources(APPLIED.as_bytes()), Some(1));
        assert_eq!(managed_resources(&gzip(APPLIED)), Some(1));
        assert_eq!(managed_resources(&gzip(DESTROYED)), Some(0));
        let emptied = r#"{"resources":[{"mode":"managed","type":"x","name":"y","instances":[]}]}"#;
        assert_eq!(managed_resources(emptied.as_bytes()), Some(0));
    }

    #[test]
    fn managed_ids_are_the_cloud_identifiers_of_managed_instances() {
        let state = r#"{"version":4,"resources":[
            {"mode":"managed","type":"google_compute_firewall","name":"ssh","instances":[{"attributes":{
                "id":"projects/acme/global/firewalls/allow-ssh",
                "self_link":"https://www.googleapis.com/compute/v1/projects/acme/global/firewalls/allow-ssh",
                "name":"allow-ssh"}}]},
            {"mode":"managed","type":"aws_lb","name":"web","instances":[{"attributes":{
                "id":"arn:aws:elasticloadbalancing:eu-west-1:123456789012:loadbalancer/app/web/50dc",
                "arn":"arn:aws:elasticloadbalancing:eu-west-1:123456789012:loadbalancer/app/web/50dc"}}]},
            {"mode":"managed","type":"random_id","name":"suffix","instances":[{"attributes":{"id":"abc"}}]},
            {"mode":"data","type":"google_compute_network","name":"n","instances":[{"attributes":{
                "id":"projects/acme/global/networks/shared"}}]}]}"#;
        let ids = managed_ids(&gzip(state)).expect("state");
        assert_eq!(
            ids.into_iter().collect::<Vec<_>>(),
            [
                "arn:aws:elasticloadbalancing:eu-west-1:123456789012:loadbalancer/app/web/50dc",
                "projects/acme/global/firewalls/allow-ssh",
            ]
        );
        assert_eq!(managed_ids(DESTROYED.as_bytes()), Some(BTreeSet::new()));
        assert_eq!(managed_ids(b"not json"), None);
    }

    #[test]
    fn anything_else_is_unreadable() {
        assert_eq!(managed_resources(b""), None);
        assert_eq!(managed_resources(b"not json"), None);
        assert_eq!(managed_resources(&[0x1f, 0x8b, 0, 1, 2]), None);
        assert_eq!(managed_resources(b"{\"version\":4}"), None);
    }
}
