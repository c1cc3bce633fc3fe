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
use std::sync::Arc;

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
    /// Cloud identifiers that managed instances hold through an attribute that puts them in,
    /// on or behind the identified resource ([`HOLDING`]: an instance's `subnet_id`, a
    /// Lambda's `vpc_config[0].security_group_ids`, a policy attachment's `policy_arn`) → the
    /// address of the first such instance (`module.app.aws_instance.web[0]`).
    pub references: BTreeMap<String, Arc<str>>,
}

impl StateIndex {
    /// Add what `other` (a later read of the same state) manages and references: what a
    /// `Terraform` being destroyed had in its state stays known after its destroy removed it.
    pub fn merge(&mut self, other: StateIndex) {
        self.merge_capped(other, MAX_REFERENCES);
    }

    /// Whether the reference cap was reached: a reference absent from a capped index may
    /// still be in the state.
    pub fn references_capped(&self) -> bool {
        self.references.len() >= MAX_REFERENCES
    }

    fn merge_capped(&mut self, other: StateIndex, cap: usize) {
        self.ids.extend(other.ids);
        for (id, address) in other.references {
            if self.references.len() >= cap && !self.references.contains_key(&id) {
                break;
            }
            self.references.entry(id).or_insert(address);
        }
    }
}

/// Attributes (top level or inside a nested block) whose value is a resource that the
/// instance sits in, is attached to or routes to, so that the provider refuses to delete that
/// resource while the instance exists: the usual holders behind AWS `DependencyViolation`,
/// `DeleteConflict`, `ResourceInUse`, `VolumeInUse`, `FileSystemInUse`, and the network
/// bindings of Google and Azure. Anything else (tags, labels, published values, a rule's own
/// group, a route's table) is not read.
const HOLDING: [&str; 23] = [
    "vpc_id",
    "subnet_id",
    "subnet_ids",
    "subnets",
    "security_groups",
    "security_group_id",
    "security_group_ids",
    "vpc_security_group_ids",
    "source_security_group_id",
    "referenced_security_group_id",
    "network_interface_id",
    "network_interface_ids",
    "allocation_id",
    "volume_id",
    "file_system_id",
    "transit_gateway_id",
    "policy_arn",
    "target_group_arn",
    "certificate_arn",
    "network",
    "subnetwork",
    "instance_template",
    "public_ip_address_id",
];

/// Resource types that only decorate, configure or copy what they name and do not stop its
/// deletion: a tag, the VPC's default group / table / ACL, a flow log, a DHCP options or CIDR
/// association, a target group attachment (a target group is held by listeners and rules), a
/// launch template or configuration (a template for instances, not one), a snapshot, a route.
const NOT_HOLDING_TYPES: [&str; 11] = [
    "aws_ec2_tag",
    "aws_launch_template",
    "aws_launch_configuration",
    "aws_ebs_snapshot",
    "aws_route",
    "aws_flow_log",
    "aws_vpc_dhcp_options_association",
    "aws_vpc_ipv4_cidr_block_association",
    "aws_vpc_ipv6_cidr_block_association",
    "aws_lb_target_group_attachment",
    "aws_alb_target_group_attachment",
];

/// Holding attributes that do not hold on these types: a rule's own group, and an ECS
/// service's target group registration (its `network_configuration` subnets and groups do).
const NOT_HOLDING: [(&str, &str); 4] = [
    ("aws_security_group_rule", "security_group_id"),
    ("aws_vpc_security_group_ingress_rule", "security_group_id"),
    ("aws_vpc_security_group_egress_rule", "security_group_id"),
    ("aws_ecs_service", "target_group_arn"),
];

/// The instance's own identity, not a reference.
const OWN_IDENTITY: [&str; 3] = ["id", "arn", "self_link"];

/// How deep the reference walk goes into an instance's attributes (provider schemas nest
/// blocks a few levels; a state is untrusted input).
const MAX_DEPTH: usize = 16;

/// Most references one state contributes (a state is untrusted input).
const MAX_REFERENCES: usize = 100_000;

fn holds(resource_type: &str, attribute: &str) -> bool {
    HOLDING.contains(&attribute)
        && !resource_type.starts_with("aws_default_")
        && !NOT_HOLDING_TYPES.contains(&resource_type)
        && !NOT_HOLDING.contains(&(resource_type, attribute))
}

/// Cloud identifiers and references of the managed resources in `data` (gzip or plain JSON
/// state); `None` when it is not a readable state.
pub fn index(data: &[u8]) -> Option<StateIndex> {
    index_capped(data, MAX_REFERENCES)
}

fn index_capped(data: &[u8], cap: usize) -> Option<StateIndex> {
    let state = parse(data)?;
    let mut out = StateIndex::default();
    for resource in managed(&state)? {
        let field = |k: &str| resource.get(k).and_then(|v| v.as_str()).unwrap_or("");
        let resource_type = field("type");
        let base = match field("module") {
            "" => format!("{resource_type}.{}", field("name")),
            m => format!("{m}.{resource_type}.{}", field("name")),
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
            let mut found = Vec::new();
            if out.references.len() < cap {
                held_in_block(resource_type, attrs, 0, &mut found);
            }
            if !found.is_empty() {
                let address: Arc<str> = match instance.get("index_key") {
                    Some(serde_json::Value::Number(n)) => format!("{base}[{n}]"),
                    Some(serde_json::Value::String(k)) => format!("{base}[{k:?}]"),
                    _ => base.clone(),
                }
                .into();
                for id in found.into_iter().map(holder::canonical) {
                    if out.references.len() >= cap {
                        break;
                    }
                    if !own.contains(&id) {
                        out.references
                            .entry(id)
                            .or_insert_with(|| Arc::clone(&address));
                    }
                }
            }
            out.ids.extend(own);
        }
    }
    Some(out)
}

/// Identifier-shaped values of the holding attributes of one block (the instance's
/// attributes, or one element of a nested block list). A JSON object reached directly is a
/// map-typed attribute (tags, labels, variables, annotations) and is not read.
fn held_in_block<'a>(
    resource_type: &str,
    block: &'a serde_json::Map<String, serde_json::Value>,
    depth: usize,
    out: &mut Vec<&'a str>,
) {
    if depth > MAX_DEPTH {
        return;
    }
    for (key, value) in block {
        if OWN_IDENTITY.contains(&key.as_str()) && depth == 0 {
            continue;
        }
        let holding = holds(resource_type, key);
        match value {
            serde_json::Value::String(s) if holding && holder::is_identifier(s) => out.push(s),
            serde_json::Value::Array(items) => {
                for item in items {
                    match item {
                        serde_json::Value::String(s) if holding && holder::is_identifier(s) => {
                            out.push(s)
                        }
                        serde_json::Value::Object(nested) => {
                            held_in_block(resource_type, nested, depth + 1, out)
                        }
                        _ => {}
                    }
                }
            }
            _ => {}
        }
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
    fn references_stop_at_the_cap_and_ids_do_not() {
        let instance = |n: usize| {
            format!(
                r#"{{"attributes":{{"id":"i-{n:017x}","subnet_id":"subnet-{n:017x}","vpc_security_group_ids":["sg-{n:017x}"]}}}}"#
            )
        };
        let state = format!(
            r#"{{"version":4,"resources":[{{"mode":"managed","type":"aws_instance","name":"web","instances":[{}]}}]}}"#,
            (0..5).map(instance).collect::<Vec<_>>().join(",")
        );
        let full = index_capped(state.as_bytes(), usize::MAX).unwrap();
        assert_eq!((full.ids.len(), full.references.len()), (5, 10));
        // the cap holds inside one instance too (each holds two ids here)
        let capped = index_capped(state.as_bytes(), 3).unwrap();
        assert_eq!((capped.ids.len(), capped.references.len()), (5, 3));
        // a merge adds ids freely, references only up to the cap, and keeps what it knew
        let mut merged = capped.clone();
        merged.merge_capped(full.clone(), 4);
        assert_eq!((merged.ids.len(), merged.references.len()), (5, 4));
        assert!(capped
            .references
            .keys()
            .all(|k| merged.references.contains_key(k)));
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
        let at = |id: &str| refs.get(id).map(|a| a.as_ref());
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
    fn decorations_maps_and_own_parts_do_not_hold() {
        const SG: &str = "sg-0bbbbbbbbbbbbbbb2";
        const OTHER_SG: &str = "sg-0999999999999999a";
        const VPC: &str = "vpc-0ddddddddddddddd4";
        const TG: &str =
            "arn:aws:elasticloadbalancing:eu-west-1:123456789012:targetgroup/web/0123456789abcdef";
        let state = format!(
            r#"{{"version":4,"resources":[
            {{"mode":"managed","type":"aws_ec2_tag","name":"t","instances":[{{"attributes":{{"id":"{SG},k","resource_id":"{SG}"}}}}]}},
            {{"mode":"managed","type":"aws_security_group_rule","name":"r","instances":[{{"attributes":{{
                "id":"sgrule-1234567","security_group_id":"{SG}","source_security_group_id":"{OTHER_SG}"}}}}]}},
            {{"mode":"managed","type":"aws_default_security_group","name":"d","instances":[{{"attributes":{{"id":"sg-0111111111111111b","vpc_id":"{VPC}"}}}}]}},
            {{"mode":"managed","type":"aws_flow_log","name":"f","instances":[{{"attributes":{{"id":"fl-0123456789abcdef0","vpc_id":"{VPC}"}}}}]}},
            {{"mode":"managed","type":"aws_lb_target_group_attachment","name":"a","instances":[{{"attributes":{{"id":"tga-1","target_group_arn":"{TG}"}}}}]}},
            {{"mode":"managed","type":"aws_lambda_function","name":"l","instances":[{{"attributes":{{"id":"l",
                "environment":[{{"variables":{{"subnet_id":"subnet-0aaaaaaaaaaaaaaa1"}}}}]}}}}]}},
            {{"mode":"managed","type":"kubernetes_service","name":"s","instances":[{{"attributes":{{"id":"default/s",
                "metadata":[{{"annotations":{{"service.beta.kubernetes.io/aws-load-balancer-security-groups":"{SG}"}}}}]}}}}]}},
            {{"mode":"managed","type":"helm_release","name":"h","instances":[{{"attributes":{{"id":"h",
                "set":[{{"name":"vpc_id","value":"{VPC}"}}]}}}}]}}]}}"#
        );
        let refs = index(state.as_bytes()).expect("state").references;
        assert_eq!(
            refs.keys().map(String::as_str).collect::<Vec<_>>(),
            [OTHER_SG],
            "{refs:?}"
        );
    }

    #[test]
    fn a_hostile_state_is_walked_to_a_bounded_depth() {
        let block = |depth: usize| {
            let mut nested = String::from(r#"{"subnet_id":"subnet-0aaaaaaaaaaaaaaa1"}"#);
            for _ in 0..depth {
                nested = format!(r#"{{"block":[{nested}]}}"#);
            }
            format!(
                r#"{{"resources":[{{"mode":"managed","type":"x","name":"y","instances":[{{"attributes":{nested}}}]}}]}}"#
            )
        };
        let shallow = index(block(3).as_bytes()).expect("state");
        assert_eq!(shallow.references.len(), 1);
        let deep = index(block(60).as_bytes()).expect("state");
        assert!(deep.references.is_empty());
    }

    #[test]
    fn anything_else_is_unreadable() {
        assert_eq!(managed_resources(b""), None);
        assert_eq!(managed_resources(b"not json"), None);
        assert_eq!(managed_resources(&[0x1f, 0x8b, 0, 1, 2]), None);
        assert_eq!(managed_resources(b"{\"version\":4}"), None);
    }
}
