//! `tfstate` — what a Terraform state says is still managed (pure).
//!
//! tofu-controller's kubernetes backend keeps the state in the Secret
//! `tfstate-<workspace>-<suffix>`, key `tfstate`, gzip-compressed JSON (Terraform's kubernetes
//! backend); a successful destroy leaves it with no managed resource, and the controller never
//! deletes it (`runner/server.go` `FinalizeSecrets` keeps it). The guard reads it when a CR it
//! had given up on is released, to record what the controller really did even if the watch
//! missed the controller's last status, and to tell whether a holder an in-use failure names
//! is managed by (or references what failed in) a `Terraform` the same uninstall is destroying
//! ([`index`]).

use std::collections::{BTreeMap, BTreeSet};
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

/// What a state says about the cloud resources it manages.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct StateIndex {
    /// Cloud identifiers (`id`, `arn`, `self_link`, [`holder::canonical`]) of every managed
    /// instance.
    pub ids: BTreeSet<String>,
    /// Cloud identifiers that managed instances reference in their other attributes
    /// (`subnet_id`, `vpc_security_group_ids`, `vpc_config[0].subnet_ids`, `policy_arn`,
    /// `network` …) → the address of the first instance that references it
    /// (`module.app.aws_instance.web[0]`). A resource that references another is in it,
    /// attached to it or bound to it: it holds it until it is destroyed.
    pub references: BTreeMap<String, String>,
}

/// Attributes that carry a value for someone else rather than bind the resource to what the
/// value names: an SSM parameter or a ConfigMap publishing a VPC id does not hold the VPC.
const VALUE_CARRIERS: [&str; 14] = [
    "value",
    "values",
    "insecure_value",
    "content",
    "data",
    "binary_data",
    "string_data",
    "description",
    "tags",
    "tags_all",
    "triggers",
    "keepers",
    "input",
    "output",
];

/// The instance's own identity, not a reference.
const OWN_IDENTITY: [&str; 3] = ["id", "arn", "self_link"];

/// How deep the reference walk goes into an instance's attributes (provider schemas nest
/// blocks a few levels; a state is untrusted input).
const MAX_DEPTH: usize = 16;

/// Cloud identifiers and references of the managed resources in `data` (gzip or plain JSON
/// state); `None` when it is not a readable state.
pub fn index(data: &[u8]) -> Option<StateIndex> {
    let state = parse(data)?;
    let mut out = StateIndex::default();
    for resource in managed(&state)? {
        let field = |k: &str| resource.get(k).and_then(|v| v.as_str()).unwrap_or("");
        let base = match field("module") {
            "" => format!("{}.{}", field("type"), field("name")),
            m => format!("{m}.{}.{}", field("type"), field("name")),
        };
        let instances = resource.get("instances").and_then(|i| i.as_array());
        for instance in instances.into_iter().flatten() {
            let Some(attrs) = instance.get("attributes").and_then(|a| a.as_object()) else {
                continue;
            };
            let own: BTreeSet<String> = OWN_IDENTITY
                .iter()
                .filter_map(|k| attrs.get(*k).and_then(|v| v.as_str()))
                .filter(|v| holder::is_identifier(v))
                .map(holder::canonical)
                .collect();
            let address = match instance.get("index_key") {
                Some(serde_json::Value::Number(n)) => format!("{base}[{n}]"),
                Some(serde_json::Value::String(k)) => format!("{base}[{k:?}]"),
                _ => base.clone(),
            };
            for (key, value) in attrs {
                if OWN_IDENTITY.contains(&key.as_str()) || VALUE_CARRIERS.contains(&key.as_str()) {
                    continue;
                }
                let mut found = Vec::new();
                references_in(value, 0, &mut found);
                for id in found {
                    let id = holder::canonical(id);
                    if !own.contains(&id) {
                        out.references.entry(id).or_insert_with(|| address.clone());
                    }
                }
            }
            out.ids.extend(own);
        }
    }
    Some(out)
}

/// Identifier-shaped strings in `value`, nested objects and lists included (value carriers
/// inside nested blocks skipped too).
fn references_in<'a>(value: &'a serde_json::Value, depth: usize, out: &mut Vec<&'a str>) {
    if depth > MAX_DEPTH {
        return;
    }
    match value {
        serde_json::Value::String(s) if holder::is_identifier(s) => out.push(s),
        serde_json::Value::Array(items) => {
            for v in items {
                references_in(v, depth + 1, out);
            }
        }
        serde_json::Value::Object(map) => {
            for (k, v) in map {
                if !VALUE_CARRIERS.contains(&k.as_str()) {
                    references_in(v, depth + 1, out);
                }
            }
        }
        _ => {}
    }
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
        let ids = index(&gzip(state)).expect("state").ids;
        assert_eq!(
            ids.into_iter().collect::<Vec<_>>(),
            [
                "arn:aws:elasticloadbalancing:eu-west-1:123456789012:loadbalancer/app/web/50dc",
                "projects/acme/global/firewalls/allow-ssh",
            ]
        );
        assert_eq!(index(DESTROYED.as_bytes()), Some(StateIndex::default()));
        assert_eq!(index(b"not json"), None);
    }

    #[test]
    fn references_are_the_identifiers_other_attributes_point_at() {
        let state = r#"{"version":4,"resources":[
            {"module":"module.app","mode":"managed","type":"aws_instance","name":"web","instances":[
              {"index_key":0,"attributes":{
                "id":"i-0123456789abcdef0",
                "arn":"arn:aws:ec2:eu-west-1:123456789012:instance/i-0123456789abcdef0",
                "subnet_id":"subnet-0aaaaaaaaaaaaaaa1",
                "vpc_security_group_ids":["sg-0bbbbbbbbbbbbbbb2"],
                "root_block_device":[{"volume_id":"vol-0ccccccccccccccc3"}],
                "tags":{"Vpc":"vpc-0ddddddddddddddd4"}}}]},
            {"mode":"managed","type":"aws_lambda_function","name":"f","instances":[{"attributes":{
                "id":"f","vpc_config":[{"subnet_ids":["subnet-0aaaaaaaaaaaaaaa1","subnet-0eeeeeeeeeeeeeee5"]}]}}]},
            {"mode":"managed","type":"aws_ssm_parameter","name":"vpc","instances":[{"attributes":{
                "id":"/net/vpc-id","value":"vpc-0ddddddddddddddd4","insecure_value":"vpc-0ddddddddddddddd4"}}]},
            {"mode":"managed","type":"aws_iam_role_policy_attachment","name":"a","instances":[{"attributes":{
                "id":"role-20240101","policy_arn":"arn:aws:iam::123456789012:policy/app","role":"role"}}]},
            {"mode":"managed","type":"google_compute_firewall","name":"ssh","instances":[{"attributes":{
                "id":"projects/acme/global/firewalls/allow-ssh",
                "network":"https://www.googleapis.com/compute/v1/projects/acme/global/networks/core"}}]},
            {"mode":"data","type":"aws_subnet","name":"d","instances":[{"attributes":{
                "id":"subnet-0fffffffffffffff6","vpc_id":"vpc-0ddddddddddddddd4"}}]}]}"#;
        let refs = index(&gzip(state)).expect("state").references;
        let at = |id: &str| refs.get(id).map(String::as_str);
        assert_eq!(
            at("subnet-0aaaaaaaaaaaaaaa1"),
            Some("module.app.aws_instance.web[0]")
        );
        assert_eq!(
            at("sg-0bbbbbbbbbbbbbbb2"),
            Some("module.app.aws_instance.web[0]")
        );
        assert_eq!(
            at("vol-0ccccccccccccccc3"),
            Some("module.app.aws_instance.web[0]")
        );
        assert_eq!(
            at("subnet-0eeeeeeeeeeeeeee5"),
            Some("aws_lambda_function.f")
        );
        assert_eq!(
            at("arn:aws:iam::123456789012:policy/app"),
            Some("aws_iam_role_policy_attachment.a")
        );
        assert_eq!(
            at("projects/acme/global/networks/core"),
            Some("google_compute_firewall.ssh")
        );
        // Tags and published values carry an id without holding it; data sources hold
        // nothing; an instance's own identity is not a reference.
        assert_eq!(at("vpc-0ddddddddddddddd4"), None);
        assert_eq!(at("i-0123456789abcdef0"), None);
        assert_eq!(at("subnet-0fffffffffffffff6"), None);
    }

    #[test]
    fn a_hostile_state_is_walked_to_a_bounded_depth() {
        let mut nested = String::from("\"sg-0123456789abcdef0\"");
        for _ in 0..100 {
            nested = format!("[{nested}]");
        }
        let state = format!(
            r#"{{"resources":[{{"mode":"managed","type":"x","name":"y","instances":[{{"attributes":{{"id":"y","deep":{nested}}}}}]}}]}}"#
        );
        let idx = index(state.as_bytes()).expect("state");
        assert!(idx.references.is_empty());
    }

    #[test]
    fn anything_else_is_unreadable() {
        assert_eq!(managed_resources(b""), None);
        assert_eq!(managed_resources(b"not json"), None);
        assert_eq!(managed_resources(&[0x1f, 0x8b, 0, 1, 2]), None);
        assert_eq!(managed_resources(b"{\"version\":4}"), None);
    }
}
