//! `classify::holder` — the holder an in-use error names, and whether a Terraform state
//! manages it (pure).
//!
//! An in-use error leans permanent from its text alone: the text cannot tell a sibling of the
//! same destroy from something outside it. Some texts name the holder — googleapi "is already
//! being used by 'projects/…/firewalls/fw'", ARM "Subnet … is in use by
//! /subscriptions/…/networkInterfaces/nic/ipConfigurations/ip", ACM "in use by
//! arn:aws:elasticloadbalancing:…". When that holder is managed by the state of a `Terraform`
//! the same uninstall is destroying, it goes away with that destroy: the guard then reads the
//! failure as transient ([`super::Classification::in_context`]). The engine reads the states;
//! this module only extracts and matches identifiers.

use std::collections::BTreeSet;
use std::sync::LazyLock;

use regex::Regex;

/// The phrase after which an in-use message names its holder.
static HOLDER_PHRASE: LazyLock<Option<Regex>> = LazyLock::new(|| {
    Regex::new(
        r"(?i)\b(?:used|in use|referenced|attached|associated|held|consumed|required)\s+by\b",
    )
    .ok()
});

/// Cloud resource identifiers: AWS ARNs, Azure resource IDs, Google resource paths (bare or in
/// a `https://www.googleapis.com/<api>/<version>/` self link), AWS EC2-style short IDs.
static CLOUD_ID: LazyLock<Option<Regex>> = LazyLock::new(|| {
    Regex::new(concat!(
        r"(?i)",
        r"arn:aws[a-z-]*:[a-z0-9-]+:[a-z0-9-]*:[0-9]*:[^\s'`\x22,()\[\]]+",
        r"|/subscriptions/[0-9a-f-]{36}/[^\s'`\x22,()\[\]]+",
        r"|(?:https://[a-z0-9.-]+\.googleapis\.com/[a-z]+/[a-z0-9]+/)?projects/[a-z0-9-]+/[^\s'`\x22,()\[\]]+",
        r"|\b(?:sg|eni|subnet|vpc|igw|eigw|nat|rtb|acl|vpce|i|eipalloc|eipassoc|tgw|tgw-attach|pcx|lt|vol|snap|fs|fsmp|vgw|cgw|dopt|pl|lb)-[0-9a-f]{8,17}\b",
    ))
    .ok()
});

/// Identifiers a message names as the holder of what could not be deleted: those after the
/// first "used by" / "in use by" / "attached to … by" phrase that do not also name the subject
/// (the text before it). Lower-cased, Google self links reduced to their `projects/…` path.
/// Empty when the message names no holder.
pub fn holders(message: &str) -> Vec<String> {
    let (Some(phrase), Some(_)) = (HOLDER_PHRASE.as_ref(), CLOUD_ID.as_ref()) else {
        return Vec::new();
    };
    let Some(at) = phrase.find(message) else {
        return Vec::new();
    };
    let subject: BTreeSet<String> = ids(&message[..at.start()]).collect();
    let mut out: Vec<String> = Vec::new();
    for id in ids(&message[at.end()..]) {
        if !subject.contains(&id) && !out.contains(&id) {
            out.push(id);
        }
    }
    out
}

fn ids(text: &str) -> impl Iterator<Item = String> + '_ {
    CLOUD_ID
        .iter()
        .flat_map(move |re| re.find_iter(text))
        .map(|m| canonical(m.as_str()))
}

/// Lower case, without trailing punctuation or a Google API URL prefix.
pub fn canonical(id: &str) -> String {
    let id = id
        .trim_end_matches(['.', ':', ';', '/'])
        .to_ascii_lowercase();
    match id.find("googleapis.com/") {
        Some(at) if id.starts_with("https://") => match id[at..].find("/projects/") {
            Some(p) => id[at + p + 1..].to_owned(),
            None => id,
        },
        _ => id,
    }
}

/// Whether `holder` is one of `managed` (canonical state identifiers), or a part of one (an
/// Azure `ipConfigurations/…` of a managed NIC, a Google sub-path of a managed resource).
pub fn is_managed(holder: &str, managed: &BTreeSet<String>) -> bool {
    if managed.contains(holder) {
        return true;
    }
    // The nearest parents first: `a/b/c/d` → `a/b/c`, `a/b`.
    let mut rest = holder;
    while let Some(cut) = rest.rfind('/') {
        rest = &rest[..cut];
        if managed.contains(rest) {
            return true;
        }
    }
    false
}

/// Whether `id` (a state attribute value) looks like a cloud identifier worth matching: long
/// enough and structured, so that a `random_id`'s "abc" or a name like "default" never match.
pub fn is_identifier(id: &str) -> bool {
    id.len() >= 8 && id.contains(['-', '/', ':'])
}

#[cfg(test)]
mod tests {
    use super::*;

    fn set(ids: &[&str]) -> BTreeSet<String> {
        ids.iter().map(|s| canonical(s)).collect()
    }

    #[test]
    fn the_patterns_compile() {
        assert!(HOLDER_PHRASE.is_some());
        assert!(CLOUD_ID.is_some());
    }

    #[test]
    fn google_names_its_holder_after_being_used_by() {
        let m = "Error: Error waiting for Deleting Network: The network resource 'projects/acme-prod/global/networks/core' is already being used by 'projects/acme-prod/global/firewalls/allow-ssh'";
        assert_eq!(
            holders(m),
            ["projects/acme-prod/global/firewalls/allow-ssh"]
        );
        let m = "googleapi: Error 400: The subnetwork resource 'projects/p-1/regions/europe-west1/subnetworks/apps' is already being used by 'https://www.googleapis.com/compute/v1/projects/p-1/zones/europe-west1-b/instances/gke-node-1', resourceInUseByAnotherResource";
        assert_eq!(
            holders(m),
            ["projects/p-1/zones/europe-west1-b/instances/gke-node-1"]
        );
    }

    #[test]
    fn azure_and_aws_holders() {
        let m = "Code=\"InUseSubnetCannotBeDeleted\" Message=\"Subnet snet-app is in use by /subscriptions/00000000-1111-2222-3333-444444444444/resourceGroups/rg/providers/Microsoft.Network/networkInterfaces/nic-1/ipConfigurations/ipconfig1 and cannot be deleted.\"";
        assert_eq!(
            holders(m),
            ["/subscriptions/00000000-1111-2222-3333-444444444444/resourcegroups/rg/providers/microsoft.network/networkinterfaces/nic-1/ipconfigurations/ipconfig1"]
        );
        let m = "deleting ACM Certificate (arn:aws:acm:eu-west-1:123456789012:certificate/abc): ResourceInUseException: Certificate arn:aws:acm:eu-west-1:123456789012:certificate/abc in use by arn:aws:elasticloadbalancing:eu-west-1:123456789012:loadbalancer/app/web/50dc6c495c0c9188";
        assert_eq!(
            holders(m),
            ["arn:aws:elasticloadbalancing:eu-west-1:123456789012:loadbalancer/app/web/50dc6c495c0c9188"]
        );
        let m = "Network interface eni-0a1b2c3d4e5f60718 is currently in use by instance i-0123456789abcdef0.";
        assert_eq!(holders(m), ["i-0123456789abcdef0"]);
    }

    #[test]
    fn no_holder_without_the_phrase_or_an_identifier() {
        for m in [
            "DependencyViolation: resource sg-0123456789abcdef0 has a dependent object",
            "Error deleting VPC: DependencyViolation: The vpc 'vpc-0abc123def456789' has dependencies and cannot be deleted.",
            "Cannot delete entity, must detach all policies first.",
            "ResourceInUse: Target group is currently in use by a listener or a rule",
            "",
        ] {
            assert!(holders(m).is_empty(), "{m}");
        }
    }

    #[test]
    fn the_subject_is_never_its_own_holder() {
        let m = "subnet-0123456789abcdef0 is in use by subnet-0123456789abcdef0 and eni-0a1b2c3d4e5f60718";
        assert_eq!(holders(m), ["eni-0a1b2c3d4e5f60718"]);
    }

    #[test]
    fn managed_matches_the_resource_or_a_part_of_it() {
        let managed = set(&[
            "/subscriptions/00000000-1111-2222-3333-444444444444/resourceGroups/rg/providers/Microsoft.Network/networkInterfaces/nic-1",
            "https://www.googleapis.com/compute/v1/projects/p/global/firewalls/fw",
            "sg-0123456789abcdef0",
        ]);
        assert!(is_managed(
            &canonical("/subscriptions/00000000-1111-2222-3333-444444444444/resourceGroups/rg/providers/Microsoft.Network/networkInterfaces/nic-1/ipConfigurations/ipconfig1"),
            &managed
        ));
        assert!(is_managed("projects/p/global/firewalls/fw", &managed));
        assert!(is_managed("sg-0123456789abcdef0", &managed));
        assert!(!is_managed("projects/p/global/firewalls/other", &managed));
        assert!(!is_managed("projects/p/global", &managed));
        assert!(!is_managed("/subscriptions", &managed));
    }

    #[test]
    fn only_structured_identifiers_are_matched() {
        assert!(is_identifier("sg-0123456789abcdef0"));
        assert!(is_identifier("projects/p/global/firewalls/fw"));
        assert!(!is_identifier("abc"));
        assert!(!is_identifier("default"));
        assert!(!is_identifier("bucketname"));
    }

    #[test]
    fn hostile_input_is_linear_and_safe() {
        let long = "used by ".repeat(20_000) + &"projects/".repeat(5_000) + "\u{1F600}";
        let _ = holders(&long);
        let _ = holders(&"a".repeat(100_000));
    }
}
