//! `classify::holder` — the holder an in-use error names, and whether a Terraform state
//! manages it (pure).
//!
//! An in-use error leans permanent from its text alone: the text cannot tell a sibling of the
//! same destroy from something outside it. Some texts name the holder — googleapi "is already
//! being used by 'projects/…/firewalls/fw'", ARM "Subnet … is in use by
//! /subscriptions/…/networkInterfaces/nic/ipConfigurations/ip", ACM "in use by
//! arn:aws:elasticloadbalancing:…". When that holder is managed by the state of a `Terraform`
//! the same uninstall is destroying, it goes away with that destroy: the guard then reads the
//! failure as transient ([`super::Classification::in_context`]). Most AWS texts name no holder,
//! only what could not be deleted ([`subjects`]): then a resource in the state of another
//! `Terraform` being destroyed that references it (an instance's `subnet_id`) is the holder
//! that goes with the destroy. The engine reads the states; this module only extracts and
//! matches identifiers.

use std::collections::BTreeSet;
use std::sync::LazyLock;

/// The phrases after which an in-use message names its holder (lower case).
const HOLDER_PHRASES: [&str; 8] = [
    "used by",
    "in use by",
    "referenced by",
    "attached by",
    "associated by",
    "held by",
    "consumed by",
    "required by",
];

/// Where the holder clause after the phrase ends: the end of the line, the next diagnostic, a
/// sentence's end, or the "and cannot be deleted" that closes ARM's text.
const CLAUSE_ENDS: [&str; 5] = ["\n", "error:", ". ", ".\t", " and cannot"];

/// Earliest of `needles` in `haystack` (lower case) that starts a word: (start, end).
fn earliest(haystack: &str, needles: &[&str], word_start: bool) -> Option<(usize, usize)> {
    needles
        .iter()
        .filter_map(|n| {
            let mut from = 0;
            while let Some(i) = haystack[from..].find(n) {
                let at = from + i;
                let starts_word = at == 0
                    || !haystack.as_bytes()[at - 1].is_ascii_alphanumeric()
                    || !n.as_bytes()[0].is_ascii_alphanumeric();
                if !word_start || starts_word {
                    return Some((at, at + n.len()));
                }
                from = at + 1;
            }
            None
        })
        .min()
}

/// Bytes that end an identifier: whitespace and control bytes, quotes, escapes, separators,
/// brackets, and any non-ASCII byte (identifiers are ASCII; typographic quotes end them).
const ID_END: &str = r#"[^\x00-\x20'`"\\,()\[\]\x7f-\xff]"#;

/// Cloud resource identifiers, matched over the lower-cased message's bytes (ASCII only, so
/// the pattern compiles in microseconds, not the milliseconds Unicode case folding costs):
/// AWS ARNs, Azure resource IDs, Google resource paths (bare or in a
/// `https://www.googleapis.com/<api>/<version>/` self link), AWS EC2-style short IDs (8 or
/// 17 hex digits; checked in [`ids`] not to be part of a longer token).
static CLOUD_ID: LazyLock<Option<regex::bytes::Regex>> = LazyLock::new(|| {
    regex::bytes::Regex::new(&format!(
        concat!(
            r"(?-u)",
            r"arn:aws[a-z-]*:[a-z0-9-]+:[a-z0-9-]*:[0-9]*:{id}+",
            r"|/subscriptions/[0-9a-f-]{{36}}/{id}+",
            r"|(?:https://[a-z0-9.-]+\.googleapis\.com/[a-z]+/[a-z0-9]+/)?projects/[a-z0-9-]+/{id}+",
            r"|\b(?:sg|sgr|eni|subnet|vpc|igw|eigw|nat|rtb|acl|vpce-svc|vpce|i|eipalloc|eipassoc|tgw|tgw-attach|pcx|lt|vol|snap|fs|fsmp|fsap|vgw|cgw|dopt|pl|lb)-(?:[0-9a-f]{{17}}|[0-9a-f]{{8}})\b",
        ),
        id = ID_END
    ))
    .ok()
});

/// Identifiers a message names as the holders of what could not be deleted: those in the
/// clause right after the first "used by" / "in use by" / "attached by" phrase (up to the end
/// of its line or sentence) that the message does not also name anywhere else (the subject,
/// or the subject of another error joined to the same message). Lower-cased, Google self
/// links reduced to their `projects/…` path. Empty when the message names no holder.
pub fn holders(message: &str) -> Vec<String> {
    let lower = message.to_ascii_lowercase();
    let Some((start, end)) = earliest(&lower, &HOLDER_PHRASES, true) else {
        return Vec::new();
    };
    let rest = &message[end..];
    let clause_end = earliest(&lower[end..], &CLAUSE_ENDS, false).map_or(rest.len(), |(s, _)| s);
    let at_start = start;
    let elsewhere: BTreeSet<String> = ids(&message[..at_start])
        .into_iter()
        .chain(ids(&rest[clause_end..]))
        .collect();
    let mut out: Vec<String> = Vec::new();
    for id in ids(&rest[..clause_end]) {
        if !elsewhere.contains(&id) && !out.contains(&id) {
            out.push(id);
        }
    }
    out
}

/// Identifiers a message names, in order, without repeats: what could not be deleted when
/// the message names no holder (AWS `DependencyViolation`: "deleting EC2 Subnet
/// (subnet-0abc…): … The subnet 'subnet-0abc…' has dependencies"). The engine looks for
/// resources in other states that reference them ([`crate::core::tfstate::StateIndex`]).
pub fn subjects(message: &str) -> Vec<String> {
    let mut out: Vec<String> = Vec::new();
    for id in ids(message) {
        if !out.contains(&id) {
            out.push(id);
        }
    }
    out
}

/// The message cut into Terraform diagnostics: a new one starts at each line that begins
/// with `Error:` (after indentation, the `│` gutter and colour codes), and inside a line where
/// a diagnostic box opens (`╷ │ Error:`, a box whose newlines were flattened into spaces), except
/// that text before the first start belongs to the first. A message without one is one
/// diagnostic. An `Error:` in the middle of a line without a box opening it (`Original Error:`,
/// `with error:`) is part of the text, not a new diagnostic. The guard reads an in-use failure
/// as transient from its context only when no other diagnostic in the same message needs a
/// human.
pub fn diagnostics(message: &str) -> Vec<&str> {
    let mut starts = Vec::new();
    let mut offset = 0;
    for line in message.split_inclusive('\n') {
        if strip_gutter(line).starts_with("Error:") {
            starts.push(offset);
        }
        starts.extend(
            line.match_indices('╷')
                .filter(|&(i, _)| {
                    // a box opening the line is the line's own start (counted above)
                    !strip_gutter(&line[..i]).is_empty() && opens_error_box(&line[i..])
                })
                .map(|(i, _)| offset + i),
        );
        offset += line.len();
    }
    // A preamble before the first `Error:` line ("error running Apply: rpc error: code =
    // Unknown desc = exit status 1", tofu-controller's wrapping) belongs to the first one.
    match starts.first_mut() {
        Some(first) => *first = 0,
        None => starts.push(0),
    }
    let mut out: Vec<&str> = starts
        .windows(2)
        .map(|w| &message[w[0]..w[1]])
        .chain(starts.last().map(|&s| &message[s..]))
        .filter(|d| !strip_gutter(d).trim().is_empty())
        .collect();
    if out.is_empty() {
        out.push(message);
    }
    out
}

/// Whether `rest` (starting at a `╷`) opens a diagnostic box of an error: `╷`, then `│`, then
/// `Error:`, with only blanks or colour codes between them.
fn opens_error_box(rest: &str) -> bool {
    let after_open = skip_blanks_and_codes(rest.trim_start_matches('╷'));
    after_open.starts_with('│') && strip_gutter(after_open).starts_with("Error:")
}

/// `s` without leading blanks and ANSI colour codes.
fn skip_blanks_and_codes(s: &str) -> &str {
    skip_leading(s, &[' ', '\t'])
}

/// A line without its indentation, Terraform's `│`/`╷` gutter and ANSI colour codes.
fn strip_gutter(line: &str) -> &str {
    skip_leading(line, &[' ', '\t', '│', '╷', '╵'])
}

/// `s` without any leading run of `chars` and ANSI colour codes, in any order.
fn skip_leading<'s>(s: &'s str, chars: &[char]) -> &'s str {
    let mut rest = s;
    loop {
        let trimmed = rest.trim_start_matches(chars);
        match trimmed.strip_prefix('\u{1b}') {
            Some(esc) => {
                rest = esc
                    .find(|c: char| c.is_ascii_alphabetic())
                    .map_or("", |i| &esc[i + 1..]);
            }
            None => return trimmed,
        }
    }
}

/// Whether context explains every in-use diagnostic of a failure message: each one names
/// holders that all go with the uninstall (`holder`: id → the `Terraform` that manages it),
/// or, naming none, everything it could not delete is used by a resource that does
/// (`referrer`: id → a description of that resource, naming the id, and its `Terraform`). A
/// diagnostic classed transient needs
/// nothing; any other (a permanent cause that is not in use, an unknown one) leaves the
/// failure unexplained. The found holders as (description, `Terraform`), or `None`.
///
/// A message of one diagnostic is taken as the in-use failure it was classed as.
pub fn explained(
    classifier: &super::Classifier,
    reason: &str,
    message: &str,
    holder: impl Fn(&str) -> Option<String>,
    referrer: impl Fn(&str) -> Option<(String, String)>,
) -> Option<Vec<(String, String)>> {
    let parts = diagnostics(message);
    let single = parts.len() == 1;
    let mut found = Vec::new();
    for d in parts {
        if !single {
            let c = classifier.classify(reason, d);
            if c.class == super::FailureClass::Transient {
                continue;
            }
            if !c.is_in_use() {
                return None;
            }
        }
        let named = holders(d);
        let part: Option<Vec<(String, String)>> = if named.is_empty() {
            subjects(d).iter().map(|s| referrer(s)).collect()
        } else {
            named
                .iter()
                .map(|h| holder(h).map(|t| (h.clone(), t)))
                .collect()
        };
        match part {
            Some(p) if !p.is_empty() => found.extend(p),
            _ => return None,
        }
    }
    (!found.is_empty()).then_some(found)
}

/// Holders (per diagnostic) and, for diagnostics that name none, the subjects a message's
/// in-use diagnostics name: what the engine reads the states for.
pub fn named_in_diagnostics(message: &str) -> (Vec<String>, Vec<String>) {
    let (mut holders_out, mut subjects_out) = (Vec::new(), Vec::new());
    for d in diagnostics(message) {
        let named = holders(d);
        let (target, new) = if named.is_empty() {
            (&mut subjects_out, subjects(d))
        } else {
            (&mut holders_out, named)
        };
        for id in new {
            if !target.contains(&id) {
                target.push(id);
            }
        }
    }
    (holders_out, subjects_out)
}

fn ids(text: &str) -> Vec<String> {
    let lower = text.to_ascii_lowercase();
    let bytes = lower.as_bytes();
    let Some(re) = CLOUD_ID.as_ref() else {
        return Vec::new();
    };
    re.find_iter(bytes)
        .filter(|m| {
            // A short id is a token of its own: not `foo-i-deadbeef`, not `i-12345678-aaaa`.
            let before = m.start().checked_sub(1).map(|i| bytes[i]);
            let after = bytes.get(m.end()).copied();
            !(before.is_some_and(|c| c == b'-' || c.is_ascii_alphanumeric()) || after == Some(b'-'))
        })
        .filter_map(|m| std::str::from_utf8(m.as_bytes()).ok())
        .map(canonical)
        .collect()
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

/// Whether `holder` is one of `managed` (canonical state identifiers), or a part of one: an
/// Azure child (`…/networkInterfaces/nic/ipConfigurations/ip` of a managed NIC) or a Google
/// sub-path of a managed resource. A parent counts only when it is itself a resource — never
/// a scope such as a subscription, a resource group or a project, whose state would otherwise
/// "manage" everything in it.
pub fn is_managed(holder: &str, managed: &BTreeSet<String>) -> bool {
    if managed.contains(holder) {
        return true;
    }
    // The nearest parents first: `a/b/c/d` → `a/b/c`, `a/b`.
    let mut rest = holder;
    while let Some(cut) = rest.rfind('/') {
        rest = &rest[..cut];
        if !is_resource_path(rest) {
            return false;
        }
        if managed.contains(rest) {
            return true;
        }
    }
    false
}

/// An Azure ID with at least `/providers/<namespace>/<type>/<name>`, or a Google path with at
/// least `projects/<p>/<location or global>/<collection>/<name>` (`global` has no location
/// segment, so 5 segments; `regions/<r>` and `zones/<z>` make it 6).
fn is_resource_path(path: &str) -> bool {
    if let Some(at) = path.find("/providers/") {
        return path[at + "/providers/".len()..].split('/').count() >= 3;
    }
    if path.starts_with("projects/") {
        let segments: Vec<&str> = path.split('/').collect();
        let needed = match segments.get(2) {
            Some(&"regions" | &"zones" | &"locations") => 6,
            _ => 5,
        };
        return segments.len() >= needed;
    }
    false
}

/// Whether `id` (a state attribute value) looks like a cloud identifier worth keeping: long
/// enough and structured (a `random_id`'s "abc" or a name like "default" is dropped; holders
/// are identifier-shaped, so a name that passes, "kube-system", never matches one).
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
        assert!(CLOUD_ID.is_some());
    }

    #[test]
    fn only_the_holder_clause_counts_not_a_later_error() {
        let m = "deleting ACM Certificate: ResourceInUseException: Certificate arn:aws:acm:eu-west-1:123456789012:certificate/a in use by arn:aws:elasticloadbalancing:eu-west-1:123456789012:loadbalancer/app/web/50dc\n\nError: deleting EC2 VPC (vpc-0abc123def4567890): DependencyViolation";
        assert_eq!(
            holders(m),
            ["arn:aws:elasticloadbalancing:eu-west-1:123456789012:loadbalancer/app/web/50dc"]
        );
        // an id named in the clause and again elsewhere is a subject, not a holder
        let m = "sg-0123456789abcdef0 in use by eni-0a1b2c3d4e5f60718\nError: deleting eni-0a1b2c3d4e5f60718";
        assert!(holders(m).is_empty());
        // several holders in one clause are all returned
        let m = "Certificate arn:aws:acm:us-east-1:1:certificate/c in use by arn:aws:elasticloadbalancing:us-east-1:1:loadbalancer/app/a/1, arn:aws:elasticloadbalancing:us-east-1:1:loadbalancer/app/b/2";
        assert_eq!(holders(m).len(), 2);
    }

    #[test]
    fn quotes_and_escapes_end_an_identifier() {
        for m in [
            r#"is already being used by 'projects/p/global/firewalls/fw\'"#,
            "is already being used by \u{2018}projects/p/global/firewalls/fw\u{2019}",
        ] {
            assert_eq!(holders(m), ["projects/p/global/firewalls/fw"], "{m}");
        }
    }

    #[test]
    fn short_ids_are_whole_tokens() {
        assert!(holders("in use by i-12345678-aaaa-bbbb").is_empty());
        assert!(holders("in use by foo-i-deadbeef").is_empty());
        assert!(holders("in use by i-1234567890").is_empty());
        assert_eq!(holders("in use by i-12345678."), ["i-12345678"]);
    }

    #[test]
    fn a_scope_never_manages_what_is_in_it() {
        let scopes = set(&[
            "/subscriptions/00000000-1111-2222-3333-444444444444",
            "/subscriptions/00000000-1111-2222-3333-444444444444/resourceGroups/rg",
            "projects/p",
            "projects/p/regions/europe-west1",
        ]);
        for h in [
            "/subscriptions/00000000-1111-2222-3333-444444444444/resourcegroups/rg/providers/microsoft.network/networkinterfaces/nic-1/ipconfigurations/ipconfig1",
            "projects/p/zones/z/instances/hand-made",
            "projects/p/regions/europe-west1/forwardingrules/fr",
        ] {
            assert!(!is_managed(h, &scopes), "{h}");
        }
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
    fn subjects_are_the_identifiers_a_message_names() {
        let m = "Error: deleting EC2 Subnet (subnet-0a1b2c3d4e5f60718): operation error EC2: DeleteSubnet, https response error StatusCode: 400, RequestID: 5f3c1c1e-8c3a-4b9e-9b1e-0c1d2e3f4a5b, api error DependencyViolation: The subnet 'subnet-0a1b2c3d4e5f60718' has dependencies and cannot be deleted.\n\n  with module.vpc.aws_subnet.private[0],\n  on main.tf line 3";
        assert_eq!(subjects(m), ["subnet-0a1b2c3d4e5f60718"]);
        let m = "deleting IAM Policy (arn:aws:iam::123456789012:policy/app): DeleteConflict: Cannot delete a policy attached to entities.";
        assert_eq!(subjects(m), ["arn:aws:iam::123456789012:policy/app"]);
        let m = "Error: deleting Security Group (sg-0123456789abcdef0): DependencyViolation\nError: deleting EC2 VPC (vpc-0abc123def4567890): DependencyViolation";
        assert_eq!(
            subjects(m),
            ["sg-0123456789abcdef0", "vpc-0abc123def4567890"]
        );
        assert!(subjects("Cannot delete entity, must detach all policies first.").is_empty());
    }

    #[test]
    fn a_message_is_cut_at_each_error_line() {
        let one = "deleting EC2 Subnet (subnet-0a1b2c3d4e5f60718): DependencyViolation";
        assert_eq!(diagnostics(one), [one]);
        let two = "Error: deleting EC2 Subnet (subnet-0a1b2c3d4e5f60718): DependencyViolation\n\n  with aws_subnet.a,\n\n\u{1b}[31m│\u{1b}[0m \u{1b}[1mError: \u{1b}[0mdeleting IAM Role (app): AccessDenied\n";
        let d = diagnostics(two);
        assert_eq!(d.len(), 2, "{d:?}");
        assert!(d[0].contains("DependencyViolation") && d[1].contains("AccessDenied"));
        // tofu-controller's wrapping before the first Error: line belongs to the first one.
        let lead = "error running Apply: rpc error: code = Unknown desc = exit status 1\n\nError: a\nError: b";
        assert_eq!(
            diagnostics(lead),
            [
                "error running Apply: rpc error: code = Unknown desc = exit status 1\n\nError: a\n",
                "Error: b"
            ]
        );
        assert_eq!(diagnostics(""), [""]);
        // boxes flattened onto one line are cut where each box opens ...
        let flat = "╷ │ Error: deleting EC2 Subnet (subnet-0a1b2c3d4e5f60718): DependencyViolation │ with aws_subnet.a ╵ ╷ │ Error: deleting IAM Role (app): AccessDenied ╵";
        let d = diagnostics(flat);
        assert_eq!(d.len(), 2, "{d:?}");
        assert!(d[0].contains("DependencyViolation") && !d[0].contains("AccessDenied"));
        assert!(d[1].starts_with("╷ │ Error: deleting IAM Role"));
        // ... but an error quoted inside a diagnostic is not a new one
        // colour codes around the gutter: no stray piece, and a coloured flattened box splits
        let coloured = "\u{1b}[31m╷ │ Error: deleting EC2 Subnet (subnet-0a1b2c3d4e5f60718): DependencyViolation";
        assert_eq!(diagnostics(coloured), [coloured]);
        let flat_coloured = "Error: deleting EC2 Subnet (subnet-0a1b2c3d4e5f60718): DependencyViolation ╷\u{1b}[0m \u{1b}[31m│\u{1b}[0m \u{1b}[1mError: deleting IAM Role (app): AccessDenied";
        let d = diagnostics(flat_coloured);
        assert_eq!(d.len(), 2, "{d:?}");
        assert!(d[1].contains("AccessDenied") && !d[0].contains("AccessDenied"));
        let nested = "Error: deleting Subnet: Failure sending request: StatusCode=400 -- Original Error: Code=\"InUseSubnetCannotBeDeleted\" Message=\"in use by ipconfig\" with error: x ╷ not a box";
        assert_eq!(diagnostics(nested), [nested]);
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
