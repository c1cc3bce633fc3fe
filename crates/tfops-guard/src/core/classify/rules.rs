//! `classify::rules` — the built-in knowledge base: one row per error code or message a
//! provider, Terraform/OpenTofu or tofu-controller actually returns, with its class, a one-line
//! rationale (shown by `explain`) and where the code is documented or was seen.
//!
//! Order matters (first match wins), in bands:
//! 1. the controller cannot start (missing source, vars, runner ServiceAccount, dependants);
//! 2. specific codes that must win over incidental words later (mostly permanent: containers
//!    with content, credentials, in use after the provider's own retries; a few transient
//!    reported-at-once forms next to their after-retry twins);
//! 3. codes read in context: runner and controller errors, state locks (a held lock leans
//!    permanent, a backend that flaked while taking it is transient), throttling, a holder
//!    going away, then the generic in-use rule (leans permanent), mid-transition and another
//!    operation running, closed by `delete-refused`: a delete refused for a reason none of
//!    them names leans permanent, before the ARM `Conflict` catch-all;
//! 4. generic permanent causes (403/401, invalid configuration, failed preconditions, any other
//!    HTTP 4xx, not found / does not exist);
//! 5. generic transient causes (5xx in its usual spellings, timeouts, resets);
//! 6. reason-only fallbacks;
//! 7. `unrecognised-error`: any other message that names a cause leans permanent (only a
//!    message that names none — empty, or nothing but "failed" / "exit status" words — is
//!    left `unknown`).
//!
//! Patterns are matched case-insensitively against the normalised message
//! ([`super::normalise::normalise`]); `(?-i:…)` marks the few that must match a code's exact
//! spelling.

use super::FailureClass::{self, BlockedByMissingDependency as Blocked, Permanent, Transient};

/// One built-in rule.
#[derive(Debug, Clone, Copy)]
pub struct Def {
    /// Short, stable name (shown by `explain`, kept in ledger entries' text).
    pub name: &'static str,
    /// `aws`, `google`, `azure`, `kubernetes`, `helm`, `terraform`, `tofu-controller`, `any`, or
    /// the name of another provider a rule is specific to (`citrix`, `talos`).
    pub provider: &'static str,
    /// The provider's error code / reason the rule keys on.
    pub code: &'static str,
    /// Exact Ready condition reason the rule is limited to.
    pub reason: Option<&'static str>,
    /// Regex searched in the normalised message (case-insensitive).
    pub pattern: Option<&'static str>,
    /// Extra check on the normalised message, for what a regex cannot say.
    pub guard: Option<fn(&str) -> bool>,
    pub class: FailureClass,
    /// One line: why this class.
    pub why: &'static str,
    /// Provider documentation or a public issue where the error occurred.
    pub source: &'static str,
}

const fn rule(
    name: &'static str,
    provider: &'static str,
    code: &'static str,
    pattern: &'static str,
    class: FailureClass,
    why: &'static str,
    source: &'static str,
) -> Def {
    Def {
        name,
        provider,
        code,
        reason: None,
        pattern: Some(pattern),
        guard: None,
        class,
        why,
        source,
    }
}

const fn guarded(mut d: Def, guard: fn(&str) -> bool) -> Def {
    d.guard = Some(guard);
    d
}

const fn reason_only(
    name: &'static str,
    reason: &'static str,
    class: FailureClass,
    why: &'static str,
    source: &'static str,
) -> Def {
    Def {
        name,
        provider: "tofu-controller",
        code: reason,
        reason: Some(reason),
        pattern: None,
        guard: None,
        class,
        why,
        source,
    }
}

const TOFU_CONTROLLER: &str =
    "https://github.com/flux-iac/tofu-controller/blob/v0.16.5/controllers/tf_controller.go";
const TOFU_BACKEND: &str =
    "https://github.com/flux-iac/tofu-controller/blob/v0.16.5/controllers/tf_controller_backend.go";
const TOFU_RUNNER: &str =
    "https://github.com/flux-iac/tofu-controller/blob/v0.16.5/controllers/tf_controller_runner.go";
const EC2_ERRORS: &str =
    "https://docs.aws.amazon.com/AWSEC2/latest/APIReference/errors-overview.html";
const AWS_RETRIES: &str =
    "https://docs.aws.amazon.com/sdkref/latest/guide/feature-retry-behavior.html";
const S3_ERRORS: &str = "https://docs.aws.amazon.com/AmazonS3/latest/API/ErrorResponses.html";
const STS_ERRORS: &str = "https://docs.aws.amazon.com/STS/latest/APIReference/CommonErrors.html";
const GOOGLE_ERRORS: &str = "https://cloud.google.com/apis/design/errors";
const ARM_ERRORS: &str = "https://learn.microsoft.com/en-us/azure/azure-resource-manager/troubleshooting/common-deployment-errors";
const K8S_STATUS: &str =
    "https://kubernetes.io/docs/reference/kubernetes-api/common-definitions/status/";
const GRPC_CODES: &str = "https://grpc.io/docs/guides/status-codes/";
const TF_LOCKING: &str = "https://developer.hashicorp.com/terraform/language/state/locking";
const TOFU_LOCKS: &str = "https://github.com/flux-iac/tofu-controller/issues/1876";
const STALE_LOCK_WHY: &str = "a held state lock that blocks a destroy is nearly always left by a run that died mid-operation (a runner pod replaced or evicted, a Ctrl-C): tofu-controller gives each Terraform its own state, runs one runner at a time and force-unlocks only when spec.tfstate.forceUnlock says so (default no), so nothing releases it by itself — a human force-unlocks it (the guard does, first, when tfops.dev/force-unlock allows and the holder is provably gone; with forceUnlock: auto the controller does, and the guard then treats it as transient)";
const VSPHERE_FAULTS: &str =
    "https://developer.broadcom.com/xapis/vsphere-web-services-api/latest/vim.fault.InvalidPowerState.html";

/// An HTTP 4xx status in the spellings providers print: a status field (`StatusCode: 409`,
/// `status code 422`, `RESPONSE 400`, `HTTP 403`, `Error 404`, `http code: 409`), a status after
/// the URL it answered (`DELETE https://api.github.com/repos/o/r: 403 Must have admin rights`),
/// a status opening the message (`422 An enforced security configuration ...`) or set between
/// colons (`Error creating DNS Record: 403: Authentication error`; not a `:443:` port), or a status with
/// its reason phrase (`409 Conflict`). 408 (timeout) and 429 (throttling) are left to the
/// transient rules.
const HTTP_4XX: &str = r#"\b(status ?code|statuscode|status|http|response|Error|code)[ :=]*"?4(0[0-79]|1\d|2[0-8]|[3-9]\d)\b|https?://\S+\s+4(0[0-79]|1\d|2[0-8]|[3-9]\d)\b|^4(0[0-79]|1\d|2[0-8]|[3-9]\d) |:\s+4(0[0-79]|1\d|2[0-8]|[3-9]\d):\s|\b4\d\d (Bad Request|Unauthorized|Payment Required|Forbidden|Not Found|Method Not Allowed|Not Acceptable|Conflict|Gone|Precondition Failed|Unprocessable Entity|Locked|Failed Dependency)\b"#;

/// Different projects on both sides of a GCE "is already being used by" — a network or
/// subnetwork used from another project (Shared VPC) is not freed by this destroy.
pub fn gce_used_by_other_project(message: &str) -> bool {
    let Some(at) = message.find("already being used by") else {
        return false;
    };
    let project = |s: &str| -> Option<String> {
        let i = s.find("projects/")?;
        let rest = &s[i + "projects/".len()..];
        let end = rest.find(['/', '\'', '"', ' ']).unwrap_or(rest.len());
        Some(rest[..end].to_string())
    };
    // Only real project ids count (6–30 chars, lowercase letters, digits, hyphens): redacted
    // names (`projects/....`, `projects/b`) say nothing about who uses the resource.
    let valid = |p: &str| {
        (6..=30).contains(&p.len())
            && p.starts_with(|c: char| c.is_ascii_lowercase())
            && p.chars()
                .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '-')
    };
    match (project(&message[..at]), project(&message[at..])) {
        (Some(a), Some(b)) if valid(&a) && valid(&b) => a != b,
        _ => false,
    }
}

/// "couldn't find resource" from a provider's waiter (`Error waiting for ...: couldn't find
/// resource`, `couldn't find resource (21 retries)`): the object vanished while being watched,
/// the next refresh settles it. The same words from a plain read (`reading IAM Policies attached
/// to Role (r): couldn't find resource`) are an ordinary not-found.
pub fn waiter_context(message: &str) -> bool {
    let lower = message.to_ascii_lowercase();
    let Some(at) = lower.find("couldn't find resource") else {
        return true;
    };
    lower[..at].contains("waiting for") || lower[at..].starts_with("couldn't find resource (")
}

/// An error code in capitals ending in `_NOT_FOUND` or `_DELETED` (`CLUSTER_DELETED`), not a
/// snake_case attribute name that happens to end so.
pub fn upper_snake_code(message: &str) -> bool {
    message
        .split(|c: char| !(c.is_ascii_alphanumeric() || c == '_'))
        .any(|w| {
            (w.ends_with("_NOT_FOUND") || w.ends_with("_DELETED"))
                && w.len() > "_DELETED".len()
                && w.bytes()
                    .all(|b| b.is_ascii_uppercase() || b == b'_' || b.is_ascii_digit())
        })
}

/// An Azure subnet held by the network interface of a Kubernetes node pool: acs-engine names
/// its node NICs `k8s-agentpool…`/`k8s-master…`, AKS `aks-…` (also under a scale set
/// `virtualMachineScaleSets/aks-…`). Such NICs belong to a cluster deployment, not to the module.
pub fn subnet_held_by_cluster_nic(message: &str) -> bool {
    let lower = message.to_ascii_lowercase();
    let Some(at) = lower.find("in use by ") else {
        return false;
    };
    let holder = lower[at + "in use by ".len()..]
        .split_whitespace()
        .next()
        .unwrap_or("");
    if holder.contains("/virtualmachinescalesets/aks-") {
        return true;
    }
    match holder.find("/networkinterfaces/") {
        Some(i) => {
            let name = &holder[i + "/networkinterfaces/".len()..];
            name.starts_with("k8s-agentpool")
                || name.starts_with("k8s-master")
                || name.starts_with("aks-")
        }
        None => false,
    }
}

/// A failure to take the state lock that the backend caused — throttling, a 5xx, a timeout or
/// a reset — with no `Lock Info` block naming a holder.
pub fn lock_backend_flaked(message: &str) -> bool {
    let lower = message.to_ascii_lowercase();
    if lower.contains("lock info") {
        return false;
    }
    [
        "throttl",
        "rate exceeded",
        "requestlimitexceeded",
        "slowdown",
        "timeout",
        "timed out",
        "deadline exceeded",
        "connection reset",
        "internalerror",
        "internal error",
        "internal server error",
        "service unavailable",
        "serviceunavailable",
        "status code: 500",
        "status code: 503",
        "statuscode=500",
        "statuscode=503",
    ]
    .iter()
    .any(|w| lower.contains(w))
}

/// A not-found signal other than a waiter's target state: `timeout while waiting for state to
/// become 'notfound'` is a timeout of a delete still under way, not a 404.
pub fn not_only_a_waiter_target(message: &str) -> bool {
    let lower = message.to_ascii_lowercase();
    let rest = lower
        .replace("become 'notfound'", "")
        .replace("target 'notfound'", "")
        .replace("become \"notfound\"", "");
    rest.contains("notfound") || rest.contains("404") || rest.contains("not found")
}

/// The API group the server cannot serve is not one of Kubernetes' own (`*.k8s.io`, served
/// by the API server itself, where a 503 is a passing control-plane hiccup) — except the
/// metrics groups, which aggregated APIServices (metrics-server, adapters) serve.
pub fn not_a_built_in_api_group(message: &str) -> bool {
    let lower = message.to_ascii_lowercase();
    let Some(at) = lower.find("the server is currently unable to handle the request") else {
        return false;
    };
    let before = lower[..at]
        .trim_end_matches(|c: char| c.is_whitespace() || matches!(c, ':' | '"' | '│' | '╷'));
    let before = before
        .strip_suffix(" to be deleted")
        .unwrap_or(before)
        .trim_end_matches('"');
    let group = before
        .rsplit(|c: char| c.is_whitespace() || c == '"')
        .next()
        .unwrap_or("");
    let group = group.split('/').next().unwrap_or(group);
    !group.ends_with(".k8s.io") || group.ends_with("metrics.k8s.io")
}

/// The message is one diagnostic naming STS that flaked and nothing else: no code that says
/// the credentials themselves were refused, nothing in use, and no second `Error:` (an STS 5xx
/// next to another error must not turn that other error transient).
pub fn only_sts_flaked(message: &str) -> bool {
    let lower = message.to_ascii_lowercase();
    let refused_or_other = [
        "expiredtoken",
        "invalidclienttokenid",
        "invalidaccesskeyid",
        "unrecognizedclient",
        "signaturedoesnotmatch",
        "authfailure",
        "regiondisabled",
        "accessdenied",
        "access denied",
        "forbidden",
        "unauthorized",
        "not authorized",
        "invalididentitytoken",
        "no valid credential sources",
        "no ec2 imds role",
        "token included in the request is",
        "dependencyviolation",
        "in use",
        "inuse",
    ]
    .iter()
    .any(|w| lower.contains(w));
    !refused_or_other && lower.matches("error:").count() <= 1
}

/// No status that does not pass by itself is named (RDS `stopped`, `storage-full`,
/// `inaccessible-encryption-credentials`, `incompatible-*`; a `FAILED` cluster).
pub fn no_terminal_status(message: &str) -> bool {
    let lower = message.to_ascii_lowercase();
    ![
        "failed",
        "stopped",
        "storage-full",
        "inaccessible-encryption-credentials",
        "incompatible-",
        "suspended",
    ]
    .iter()
    .any(|w| lower.contains(w))
}

/// Hosts of the providers' global, multi-tenant APIs and of the public registries and chart
/// repositories `init` and the Helm provider talk to: a request to one of them that times out
/// is a blip, the next attempt gets another front end. Matched as the host or a suffix after
/// a dot; a host that starts with `api.` (a vendor's public API) counts too.
const GLOBAL_API_HOSTS: [&str; 66] = [
    "amazonaws.com",
    "amazonaws.com.cn",
    "amazon.com",
    "azure.com",
    "azure.net",
    "windows.net",
    "microsoft.com",
    "microsoftonline.com",
    "googleapis.com",
    "google.com",
    "terraform.io",
    "hashicorp.com",
    "opentofu.org",
    "github.com",
    "githubusercontent.com",
    "gitlab.com",
    "cloudflare.com",
    "digitalocean.com",
    "linode.com",
    "hetzner.cloud",
    "oraclecloud.com",
    "cloud.ibm.com",
    "bluemix.net",
    "datadoghq.com",
    "datadoghq.eu",
    "pagerduty.com",
    "mongodb.com",
    "confluent.cloud",
    "aliyuncs.com",
    "tencentcloudapi.com",
    "myhuaweicloud.com",
    "yandexcloud.net",
    "scaleway.com",
    "ovh.com",
    "exoscale.com",
    "vultr.com",
    "heroku.com",
    "fastly.com",
    "okta.com",
    "auth0.com",
    "newrelic.com",
    "atlassian.net",
    "snowflakecomputing.com",
    "upcloud.com",
    "github.io",
    "ghcr.io",
    "docker.io",
    "docker.com",
    "quay.io",
    "gcr.io",
    "pkg.dev",
    "k8s.io",
    "helm.sh",
    "bitnami.com",
    "jfrog.io",
    "golang.org",
    "pypi.org",
    "npmjs.org",
    "cloudfront.net",
    "usgovcloudapi.net",
    "chinacloudapi.cn",
    "microsoftonline.us",
    "microsoft.us",
    "azure.us",
    "azure.cn",
    "equinix.com",
];

/// Hosts under [`GLOBAL_API_HOSTS`] that belong to one deployment: a cluster's API server, a
/// load balancer, a database or search domain.
const ONE_DEPLOYMENT_SUFFIXES: [&str; 7] = [
    ".aks.containerservice.azure.us",
    ".eks.amazonaws.com",
    ".elb.amazonaws.com",
    ".rds.amazonaws.com",
    ".es.amazonaws.com",
    ".cache.amazonaws.com",
    ".azmk8s.io",
];

/// Go `net/http` request timeouts, as printed right after the URL (`Get "https://…": …`); a
/// `request canceled` counts only with the client timeout's own words ([`request_timed_out`]).
const REQUEST_TIMEOUTS: [&str; 3] = [
    ": context deadline exceeded",
    ": net/http: request canceled (client.timeout",
    ": net/http: tls handshake timeout",
];

/// Whether `after` (the lowercased text right after a URL) is a Go `net/http` request timeout.
/// `request canceled while waiting for connection` is one only when the client's timeout
/// follows, maybe on the next line of a boxed diagnostic: without it, the request was
/// canceled (an interrupted run), not timed out.
fn request_timed_out(after: &str) -> bool {
    const WAITING: &str = ": net/http: request canceled while waiting for connection";
    if let Some(rest) = after.strip_prefix(WAITING) {
        return rest
            .trim_start_matches(|c: char| c.is_whitespace() || c == '│')
            .starts_with("(client.timeout");
    }
    REQUEST_TIMEOUTS.iter().any(|t| after.starts_with(t))
}

/// A request the text shows timing out went to an endpoint of one deployment — an IP
/// address, `localhost`, an in-cluster service, a cluster's API server, a self-hosted
/// product on its own domain (Rancher, Grafana, Vault) — not to a provider's global API
/// ([`GLOBAL_API_HOSTS`]) nor to Flux's source-controller, which serves the runner its module
/// and comes back by itself (tofu-controller's `ArtifactFailed` on a download timeout).
pub fn endpoint_of_one_deployment(message: &str) -> bool {
    let lower = message.to_ascii_lowercase();
    let ends_url = |c: char| c.is_whitespace() || matches!(c, '"' | '\'' | '`' | '\\');
    lower.match_indices("://").any(|(at, _)| {
        let rest = &lower[at + 3..];
        let url_end = rest.find(ends_url).unwrap_or(rest.len());
        let (url, after) = rest.split_at(url_end);
        let after = after.trim_start_matches(['"', '\'', '`', '\\']);
        // `Get http://host/path: net/http: …` (unquoted) leaves the colon on the URL.
        let (url, after) = match url.strip_suffix(':') {
            Some(u) if after.starts_with(' ') => (u, format!(":{after}")),
            _ => (url, after.to_owned()),
        };
        if !request_timed_out(&after) {
            return false;
        }
        let host = url
            .split(['/', '?', '#'])
            .next()
            .unwrap_or("")
            .rsplit('@')
            .next()
            .unwrap_or("");
        let host = match host.rsplit_once(':') {
            Some((h, port)) if port.chars().all(|c| c.is_ascii_digit()) => h,
            _ => host,
        };
        // a fully qualified name's root dot (`sts.amazonaws.com.`)
        let host = host.strip_suffix('.').unwrap_or(host);
        let global = host.starts_with("api.")
            || host.starts_with("source-controller.")
            || GLOBAL_API_HOSTS
                .iter()
                .any(|g| host == *g || host.strip_suffix(g).is_some_and(|p| p.ends_with('.')));
        let one_deployment = ONE_DEPLOYMENT_SUFFIXES.iter().any(|s| host.ends_with(s));
        !global || one_deployment
    })
}

/// A FortiOS CLI output that does not say the device was busy: timed out, busy, or the
/// configuration locked by another administrator's session are waits, not refusals.
pub fn cli_refusal_not_busy(message: &str) -> bool {
    let lower = message.to_ascii_lowercase();
    !["timed out", "timeout", "busy", "locked by", "is locked"]
        .iter()
        .any(|w| lower.contains(w))
}

/// A failed provisioning whose last error is not a refusal of the request itself (a 400, a
/// policy that does not exist, a permission denied).
pub fn provisioning_not_refused(message: &str) -> bool {
    let lower = message.to_ascii_lowercase();
    ![
        "400 status error",
        "does not exist",
        "accessdenied",
        "access denied",
        "not authorized",
        "validationexception",
    ]
    .iter()
    .any(|w| lower.contains(w))
}

/// The text says nothing holds the resource ([`in_use_not_denied`] is false).
pub fn not_in_use(message: &str) -> bool {
    !in_use_not_denied(message)
}

/// An in-use context (something holds the resource) and no permission refusal in the same
/// message: "which is being detached" after `AccessDenied` is still a refusal.
pub fn in_use_not_denied(message: &str) -> bool {
    let lower = message.to_ascii_lowercase();
    let denied = ["denied", "not authorized", "forbidden", "unauthorized"]
        .iter()
        .any(|w| lower.contains(w));
    let in_use = [
        "in use",
        "inuse",
        "dependencyviolation",
        "dependent",
        "being used",
        "attached",
        "still",
        "retry after some time",
        "cannot be deleted",
        "while it has",
        "while it still has",
    ]
    .iter()
    .any(|w| lower.contains(w));
    in_use && !denied
}

/// The built-in table, in evaluation order.
pub const BUILTIN: &[Def] = &[
    // ===== 1. the controller cannot start =================================================
    reason_only(
        "dependants-present",
        "DeletionBlockedByDependantsReason",
        Blocked,
        "other Terraform CRs depend on this one; the controller holds it until they are gone",
        TOFU_CONTROLLER,
    ),
    rule(
        "cross-namespace-ref-denied",
        "tofu-controller",
        "AccessDenied (cross-namespace references disabled)",
        r"cross-namespace references have been disabled",
        Permanent,
        "tofu-controller runs with --no-cross-namespace-refs and this Terraform names a source, dependency or CLI-config Secret in another namespace: Reconcile stops at the source before it reaches finalize (controllers/tf_controller.go 225–236, tf_controller_backend.go 166–170), so nothing happens until the flag or the reference changes",
        "https://github.com/flux-iac/tofu-controller/blob/v0.16.5/controllers/tf_controller.go",
    ),
    rule(
        "dependants-present-message",
        "tofu-controller",
        "DeletionBlockedByDependants (message)",
        r"waiting for a dependant to be deleted",
        Blocked,
        "the message finalize writes while a tf.dependency.of finalizer remains (controllers/tf_controller_finalizer.go 32–41): other Terraform CRs depend on this one",
        "https://github.com/flux-iac/tofu-controller/blob/v0.16.5/controllers/tf_controller_finalizer.go",
    ),
    rule(
        "source-missing",
        "tofu-controller",
        "SourceNotFound",
        r#"(gitrepositor(y|ies)|ocirepositor(y|ies)|buckets?)(\.source\.toolkit\.fluxcd\.io)?\s+"?[^\s"]+"?\s+not found|source '?(gitrepository|ocirepository|bucket)/[^' ]+'? not found|source is not ready|artifact not found|could not get source object"#,
        Blocked,
        "the Flux source object or its artifact is gone: the runner has no module to destroy with",
        TOFU_CONTROLLER,
    ),
    rule(
        "runner-serviceaccount-missing",
        "tofu-controller",
        "ServiceAccountNotFound",
        r#"serviceaccounts?\s+"?[^"\s]*tf-runner"?\s*not found|error looking up service account"#,
        Blocked,
        "the runner pod cannot be created without its ServiceAccount (the pod admission's `error looking up service account`, or the runner's own `tf-runner` account; any other missing ServiceAccount is an ordinary not-found)",
        TOFU_RUNNER,
    ),
    rule(
        "vars-missing",
        "tofu-controller",
        "SecretNotFound",
        r#"\b(secrets?|configmaps?)\s+"[^"]+"\s+not found"#,
        Blocked,
        "a varsFrom / backend Secret or ConfigMap is missing: the runner cannot render its inputs",
        "https://github.com/flux-iac/tofu-controller/blob/v0.16.5/runner/server_generate_tf_vars.go",
    ),
    // ===== 2. specific permanent ===========================================================
    // --- Terraform / OpenTofu core --------------------------------------------------------
    rule(
        "state-persist-failed",
        "terraform",
        "FailedToPersistState",
        r"failed to persist state|failed to save state|error saving state|errored\.tfstate",
        Permanent,
        "Terraform could not write the state after changing resources: it kept it in errored.tfstate (lost with the runner pod) and warns that running again forks the state; a human must push or repair it, whatever made the write fail",
        "https://developer.hashicorp.com/terraform/cli/commands/state/push",
    ),
    rule(
        "provider-plugin-died",
        "terraform",
        "PluginCrashed (transport is closing)",
        r"(?-i:\bError: rpc error: code = Unavailable desc = transport is closing)|\bplugin crashed\b|plugin exited unexpectedly",
        Permanent,
        "Terraform lost its provider plugin mid-call (a panic or an OOM kill): the same state crashes it again on every run. Terraform prints `Error: ` before it; the runner's own gRPC errors have no such prefix",
        "https://github.com/hashicorp/terraform/issues/27546",
    ),
    rule(
        "provider-config-missing",
        "terraform",
        "ProviderConfigurationNotPresent",
        r"provider configuration not present|provider \S+ is not available|required provider is not configured|a provider configuration block is required|configuration for \S+ is not present",
        Permanent,
        "the provider block was removed from the module: resources in state cannot be destroyed without it",
        "https://developer.hashicorp.com/terraform/language/providers/configuration",
    ),
    rule(
        "deletion-protection",
        "any",
        "DeletionProtection",
        r"deletion[_ ]?protection|delete[_ -]protection|(deletion|delete) is protected|protected (against|from) deletion|prevent_destroy|instance cannot be destroyed|termination protection|disableApiTermination|OperationNotPermitted.*(protect|terminat)|cannot be deleted because .*protect|Cannot delete protected",
        Permanent,
        "deletion protection / prevent_destroy is on: someone must turn it off first",
        "https://developer.hashicorp.com/terraform/language/meta-arguments/lifecycle",
    ),
    rule(
        "default-object-undeletable",
        "any",
        "CannotDeleteDefault",
        r"can ?not delete (the )?default \w+|default \w+ (can ?not|may not) be deleted",
        Permanent,
        "the API never deletes its built-in default object (a default namespace, network or group), whatever the status code: the provider must stop managing it",
        "https://github.com/hashicorp/terraform-provider-nomad/pull/73",
    ),
    rule(
        "state-unlock-failed",
        "terraform",
        "UnlockFailed",
        r"failed to unlock state|error releasing the state lock|lock id .* does not match|lock not found|cannot unlock state",
        Permanent,
        "the state lock can no longer be released: it needs `terraform force-unlock` by a human",
        "https://developer.hashicorp.com/terraform/cli/commands/force-unlock",
    ),
    rule(
        "backend-init-required",
        "terraform",
        "BackendInitRequired",
        r"backend initialization required|backend configuration changed|initial configuration of the requested backend|state snapshot was created by (terraform|opentofu) v\S+, which is newer|unsupported state file format|does not support state version",
        Permanent,
        "the state backend or its format changed: needs re-initialisation or a newer binary",
        "https://developer.hashicorp.com/terraform/language/backend",
    ),
    rule(
        "s3-state-digest-mismatch",
        "terraform",
        "S3BackendBadChecksum",
        r"state data in S3 does not have the expected content|update the Digest value stored in the DynamoDB table",
        Permanent,
        "Terraform already waited out S3's consistency window before failing: a stale DynamoDB digest needs a human to check the state",
        "https://github.com/hashicorp/terraform/pull/14746",
    ),
    rule(
        "dependency-cycle",
        "terraform",
        "Cycle",
        r"(?-i:\bCycle: )",
        Permanent,
        "the dependency graph has a cycle: the same configuration fails the same way on every run",
        "https://developer.hashicorp.com/terraform/internals/graph",
    ),
    rule(
        "dependency-lock-mismatch",
        "terraform",
        "InconsistentLockFile",
        r"inconsistent dependency lock file|does not match any of the checksums|required plugins are not installed|incompatible provider version|no available releases match the given constraints|provider registry\.\S+ does not have a provider|unavailable provider",
        Permanent,
        "the provider version pinned by the module cannot be installed as it is: a config change",
        "https://developer.hashicorp.com/terraform/language/files/dependency-lock",
    ),
    // --- non-empty containers: only force_destroy / force_delete or a human empties them --
    rule(
        "bucket-not-empty",
        "aws",
        "BucketNotEmpty",
        r"\bBucketNotEmpty\b|bucket you tried to delete (is|was) not empty|must delete all versions in the bucket|containing objects without `?force_destroy`? set to true",
        Permanent,
        "objects written outside Terraform stay in the bucket: needs force_destroy or emptying by hand",
        S3_ERRORS,
    ),
    rule(
        "ecr-repository-not-empty",
        "aws",
        "RepositoryNotEmptyException",
        r"RepositoryNotEmptyException|repository .* cannot be deleted because it still contains images",
        Permanent,
        "images pushed by CI stay in the repository: needs force_delete or deleting the images",
        "https://docs.aws.amazon.com/AmazonECR/latest/APIReference/API_DeleteRepository.html",
    ),
    rule(
        "hosted-zone-not-empty",
        "aws",
        "HostedZoneNotEmpty",
        r"HostedZoneNotEmpty|hosted zone contains non-required resource record sets",
        Permanent,
        "records created outside Terraform (e.g. external-dns) remain: needs force_destroy or a human",
        "https://docs.aws.amazon.com/Route53/latest/APIReference/API_DeleteHostedZone.html",
    ),
    rule(
        "bigquery-dataset-not-empty",
        "google",
        "resourceInUse (BigQuery dataset)",
        r"\bDataset \S+ is still in use",
        Permanent,
        "BigQuery refuses to delete a dataset that still holds tables (written by sinks or jobs): needs delete_contents_on_destroy or emptying",
        "https://cloud.google.com/bigquery/docs/reference/rest/v2/datasets/delete",
    ),
    rule(
        "storage-lease-held",
        "azure",
        "LeaseIdMissing",
        r"\bLeaseIdMissing\b|there is currently a lease on the (container|blob) and no lease id",
        Permanent,
        "another client holds a lease on the container or blob: only its holder, or a human breaking the lease, releases it",
        "https://learn.microsoft.com/en-us/rest/api/storageservices/blob-service-error-codes",
    ),
    rule(
        "resource-group-not-empty",
        "azure",
        "ResourceGroupContainsResources",
        r"resource group .*still contains resources|prevent_deletion_if_contains_resources",
        Permanent,
        "the resource group holds resources Terraform does not manage; azurerm refuses to delete it",
        "https://registry.terraform.io/providers/hashicorp/azurerm/latest/docs/guides/features-block",
    ),
    rule(
        "iam-server-certificate-in-use",
        "aws",
        "DeleteConflict (server certificate in use)",
        r"DeleteConflict: Certificate: \S+ is currently in use by|DeleteServerCertificate operation: Please remove it first",
        Transient,
        "an IAM server certificate held by a load balancer that the same destroy deletes: IAM releases it shortly after (the AWS provider itself retries this conflict)",
        "https://github.com/hashicorp/terraform/pull/3898",
    ),
    rule(
        "iam-delete-conflict",
        "aws",
        "DeleteConflict",
        r"\bDeleteConflict\b|must (detach|delete|remove) (all )?\w+ .*first|cannot delete a policy attached to entities",
        Permanent,
        "policies / profiles attached outside this module keep the IAM entity: needs force_detach_policies or a human",
        "https://docs.aws.amazon.com/IAM/latest/APIReference/API_DeleteRole.html",
    ),
    rule(
        "rds-final-snapshot-required",
        "aws",
        "FinalSnapshotIdentifier",
        r"Final(DB)?SnapshotIdentifier is required",
        Permanent,
        "the database is configured to keep a final snapshot but names none: set final_snapshot_identifier or skip_final_snapshot",
        "https://registry.terraform.io/providers/hashicorp/aws/latest/docs/resources/db_instance#final_snapshot_identifier",
    ),
    rule(
        "elb-target-group-in-use",
        "aws",
        "ResourceInUse (target group used by a listener)",
        r"target group \S+ is currently in use by a listener or a rule",
        Permanent,
        "a destroy deletes the listeners that forward to a target group before the group, and a listener delete is synchronous: one still using it belongs to something this destroy keeps (a replacement, another stack, an ingress controller)",
        "https://docs.aws.amazon.com/elasticloadbalancing/latest/APIReference/API_DeleteTargetGroup.html",
    ),
    rule(
        "acm-certificate-in-use-after-retry",
        "aws",
        "ResourceInUseException (ACM certificate, Terraform)",
        r"Error deleting certificate: ResourceInUseException|deleting ACM Certificate \([^)]*\): \S*\s*ResourceInUseException",
        Permanent,
        "the AWS provider already retried the in-use certificate for 10 minutes (a load balancer of the same destroy releases it within seconds): one still using it is kept by something else (an ingress-controller load balancer, a replacement); the same text also came from a destroy whose rerun worked, so the rule leans permanent",
        "https://github.com/hashicorp/terraform-provider-aws/pull/3868",
    ),
    rule(
        "security-group-dependency-after-retry",
        "aws",
        "DependencyViolation (security group, after the provider's retries)",
        r"deleting Security Group \(sg-[^)]*\): \S*\s*DependencyViolation|has a dependent object \(Service: AmazonEC2;[^)]*Error Code: DependencyViolation",
        Permanent,
        "reported only after the AWS provider (v4+) deleted lingering ENIs and retried DependencyViolation for its whole delete timeout (15 min), or after CloudFormation gave up on the stack: what still holds the group (Lambda or EKS ENIs released much later, a group outside the module) outlives the guard's minutes",
        "https://github.com/hashicorp/terraform-provider-aws/issues/37046",
    ),
    rule(
        "igw-detach-after-retry",
        "aws",
        "DependencyViolation (internet gateway detach, after the provider's retries)",
        r"(deleting|error detaching) EC2 Internet Gateway \([^)]*\)[^\n]*DependencyViolation",
        Permanent,
        "the AWS provider retries the detach on DependencyViolation for its whole delete timeout: a public address still mapped after that belongs to something this destroy keeps or does not manage (a load balancer made by an in-cluster Service, an instance outside the module); the same text also came from a destroy whose rerun worked, so the rule leans permanent",
        "https://github.com/hashicorp/terraform-provider-aws/blob/main/internal/service/ec2/vpc_internet_gateway.go",
    ),
    rule(
        "ecs-cluster-busy-after-retry",
        "aws",
        "ClusterContains*Exception (after the provider's retries)",
        r"deleting ECS cluster\b[^\n]*?ClusterContains\w*Exception",
        Permanent,
        "the AWS provider retries ClusterContainsContainerInstances/Services/Tasks for 10 minutes before reporting it: instances or services still there come from capacity the destroy removes only after the cluster (a capacity-provider autoscaling group) or from outside the module",
        "https://github.com/hashicorp/terraform-provider-aws/blob/main/internal/service/ecs/cluster.go",
    ),
    rule(
        "ecs-cluster-instances-deregistering",
        "aws",
        "ClusterContains*Exception (no provider retry)",
        r"ClusterContains\w*Exception|cluster cannot be deleted while (container instances|services|tasks) are active",
        Transient,
        "reported at once (CloudFormation, old provider versions, other tools): container instances and services of the same stack deregister as its autoscaling group and services are deleted, within minutes, and the next attempt deletes the cluster (the current provider's form, after its own 10-minute retry, is matched above and leans permanent)",
        "https://docs.aws.amazon.com/AmazonECS/latest/APIReference/API_DeleteCluster.html",
    ),
    rule(
        "subnet-delete-timeout",
        "aws",
        "DependencyViolation (subnet delete timed out)",
        r"(Error )?deleting (EC2 )?subnet( \(subnet-[^)]*\))?: timeout while waiting for state to become",
        Permanent,
        "the AWS provider's subnet delete already retried DependencyViolation for its whole timeout (10 min): network interfaces still in the subnet were made outside this destroy; the same text also came from a destroy whose rerun worked, so the rule leans permanent",
        "https://github.com/kz8s/tack/issues/12",
    ),
    rule(
        "azure-nic-attached-to-vm",
        "azure",
        "NicInUse",
        r"\bNicInUse\b",
        Permanent,
        "azurerm deletes a VM and waits for it before deleting its NIC: a NIC still used by an existing VM is attached to a VM this destroy keeps (or not detached by the provider)",
        "https://github.com/hashicorp/terraform-provider-azurerm/issues/8105",
    ),
    rule(
        "azure-public-ip-allocated",
        "azure",
        "PublicIPAddressCannotBeDeleted",
        r"PublicIPAddressCannotBeDeleted|public ip address \S+ can not be deleted since it is still allocated",
        Permanent,
        "a public IP still allocated to a NIC, gateway or firewall: real destroys show it both freed by the holder's own deletion and never freed (azurerm does not detach it); the two cannot be told apart, so the rule leans permanent",
        "https://learn.microsoft.com/en-us/azure/virtual-network/ip-services/virtual-network-public-ip-address#delete-a-public-ip-address",
    ),
    guarded(
        rule(
            "azure-subnet-used-by-cluster-nic",
            "azure",
            "InUseSubnetCannotBeDeleted (Kubernetes node NIC)",
            r"\bInUseSubnetCannotBeDeleted\b",
            Permanent,
            "the subnet is held by the network interface of a Kubernetes node pool (acs-engine `k8s-agentpool…`, AKS `aks-…`) that a cluster deployment created, not this module: it stays until that cluster is deleted",
            "https://github.com/hashicorp/terraform-provider-azurerm/issues/688",
        ),
        subnet_held_by_cluster_nic,
    ),
    rule(
        "neutron-in-use",
        "openstack",
        "SubnetInUse / NetworkInUse / RouterInterfaceInUseByRoute",
        r"\b(SubnetInUse|NetworkInUse|RouterInterfaceInUseByRoute|RouterInUse)\b|required by one or more routes|one or more ports have an ip allocation from this subnet",
        Permanent,
        "the OpenStack provider deletes instances (with their ports) and router interfaces before subnets and routers and waits for them: ports or routes still there belong to something outside this destroy (load balancers, other tenants, routes set on the router)",
        "https://docs.openstack.org/api-ref/network/v2/index.html#delete-subnet",
    ),
    rule(
        "gce-network-used-by-firewall",
        "google",
        "resourceInUseByAnotherResource (firewall rule)",
        r"already being used by \S*firewalls/",
        Permanent,
        "the provider deletes the module's firewall rules before their network and waits for each: a rule still on the network was made outside this destroy (another service, a console user); the same text once came from a destroy whose rerun worked, so the rule leans permanent",
        "https://github.com/GoogleCloudPlatform/terraform-google-three-tier-web-app/issues/167",
    ),
    rule(
        "gce-instance-template-in-use",
        "google",
        "resourceInUseByAnotherResource (instance template)",
        r"instance_template resource '?\S+'? is already being used by",
        Permanent,
        "only instance group managers use a template, and the provider deletes a group manager and waits before deleting its template: one still using it is kept by this run (updated in place, a GKE node pool's group held by a load balancer) or failed its own delete, which is the error to act on; leans permanent",
        "https://cloud.google.com/compute/docs/instance-templates/delete-instance-templates",
    ),
    rule(
        "elb-used-by-endpoint-service",
        "aws",
        "ResourceInUse (VPC endpoint service)",
        r"load balancer \S+ cannot be deleted because it is currently associated with another service",
        Permanent,
        "the load balancer backs a VPC endpoint service (PrivateLink): the association must be removed before it can go",
        "https://github.com/ExpediaGroup/apiary-data-lake/issues/85",
    ),
    guarded(
        rule(
            "gce-used-by-other-project",
            "google",
            "resourceInUseByAnotherResource",
            r"already being used by",
            Permanent,
            "the user lives in another project (Shared VPC): this destroy will never delete it",
            "https://cloud.google.com/vpc/docs/shared-vpc",
        ),
        gce_used_by_other_project,
    ),
    rule(
        "gce-used-by-google-managed",
        "google",
        "resourceInUseByAnotherResource (GKE / Google-managed user)",
        r"already being used by \S*(networkEndpointGroups/|firewalls/k8s-|networkInstances/|addresses/serverless-ipv4|forwardingRules/a[0-9a-f]{20,}|targetPools/a[0-9a-f]{20,}|firewalls/gke-)",
        Permanent,
        "the user was created by GKE or a Google-managed service, not by this module: it outlives this destroy",
        "https://cloud.google.com/kubernetes-engine/docs/how-to/standalone-neg#deleting_negs",
    ),
    rule(
        "service-networking-in-use",
        "google",
        "ServiceNetworkingConnectionInUse",
        r"producer services .* are still using this connection|failed to delete connection",
        Permanent,
        "the producer keeps the peering for days after Cloud SQL is gone: needs deletion_policy=ABANDON",
        "https://registry.terraform.io/providers/hashicorp/google/latest/docs/resources/service_networking_connection",
    ),
    rule(
        "google-lien",
        "google",
        "Lien",
        r"\blien\b",
        Permanent,
        "a lien blocks project deletion until someone removes it",
        "https://cloud.google.com/resource-manager/docs/project-liens",
    ),
    rule(
        "google-org-policy-violated",
        "google",
        "conditionNotMet (organisation policy constraint)",
        r"\bconstraints/[\w.]+ violated|violates? (the |an? )?organi[sz]ation polic(y|ies)|organi[sz]ation policy constraint",
        Permanent,
        "an organisation policy constraint forbids the change (412 conditionNotMet names the constraint): it holds until an org-policy administrator lifts it or the config stops making the change",
        "https://cloud.google.com/resource-manager/docs/organization-policy/overview",
    ),
    guarded(
        rule(
            "hetzner-transient-code",
            "hetzner",
            "locked/conflict/rate_limit_exceeded/resource_unavailable/service_error/server_error/unavailable/maintenance/unknown_error/timeout",
            r"\((?-i:locked|conflict|rate_limit_exceeded|resource_unavailable|service_error|server_error|unavailable|maintenance|unknown_error|timeout)(, ?[0-9a-f]+)?\)",
            Transient,
            "Hetzner Cloud's own error code says the API is busy or failed on its side (an action already running on the item, a concurrent change, rate limit, maintenance, an action failing for an unknown server-side cause): the next attempt goes through; an in-use text with the code is left to the in-use rules (the guard checks its holders)",
            "https://docs.hetzner.cloud/#errors",
        ),
        not_in_use,
    ),
    rule(
        "arm-resource-group-deletion-timeout",
        "azure",
        "ResourceGroupDeletionTimeout",
        r"\bResourceGroupDeletionTimeout\b",
        Permanent,
        "ARM already retried the resource group's deletion for its allowed time and rolled it back: a resource in it cannot be deleted, and the portal and CLI fail the same way",
        "https://github.com/Azure/AKS/issues/1016",
    ),
    rule(
        "management-lock",
        "azure",
        "ScopeLocked",
        r"\bScopeLocked\b|scope\(s\) are locked|remove the lock and try again",
        Permanent,
        "an Azure management lock forbids the delete until an owner removes it",
        "https://learn.microsoft.com/en-us/azure/azure-resource-manager/management/lock-resources",
    ),
    rule(
        "resource-stopped",
        "aws",
        "Invalid*StateFault (stopped)",
        r"\bis in stopped state\b|\bin (the |a )?stopped state\b|cannot be deleted while (it is )?stopped",
        Permanent,
        "a stopped database or instance does not start by itself, and the API refuses to delete it stopped",
        "https://docs.aws.amazon.com/AmazonRDS/latest/APIReference/API_DeleteDBCluster.html",
    ),
    rule(
        "vsphere-vm-state",
        "vsphere",
        "InvalidPowerState / question pending",
        r"\bInvalidPowerState\b|cannot be performed in the current state \((Powered (off|on)|Suspended)\)|has a question pending",
        Permanent,
        "a VM powered off by hand, or waiting for an answer to a question, stays so: the provider's delete path fails the same way until someone acts",
        VSPHERE_FAULTS,
    ),
    rule(
        "waiter-transitional-state",
        "any",
        "UnexpectedState (transitional)",
        r"(reported )?unexpected state:? '?(PROVISIONING|UPDATING|CREATING|DELETING|TERMINATING|STARTING|STOPPING|PENDING|MODIFYING)\b",
        Transient,
        "the waiter saw the resource still mid-transition (provisioning, updating, deleting): the transition ends by itself and the next run finds it settled",
        "https://github.com/oracle/terraform-provider-oci/issues/2094",
    ),
    guarded(
        rule(
            "sso-permission-set-reprovision-failed",
            "aws",
            "PermissionSet provisioning FAILED",
            r"SSO Permission Set \([^)]{0,200}\)[^\n]{0,80}\bprovision[^\n]{0,300}unexpected state '?FAILED'?, wanted target '?SUCCEEDED",
            Transient,
            "the provider re-provisions a permission set after its policies or account assignments change; while the same destroy is still removing those assignments the provisioning fails, and the next run provisions a settled set (a provisioning refused outright — a policy that does not exist in the account — is left to the other rules)",
            "https://github.com/hashicorp/terraform-provider-aws/issues/23585",
        ),
        provisioning_not_refused,
    ),
    rule(
        "waiter-unexpected-state",
        "terraform",
        "UnexpectedStateError",
        r"unexpected state '[^']*', wanted target",
        Permanent,
        "the provider's waiter saw a state it does not expect to change (failed, or the delete was ignored)",
        "https://github.com/hashicorp/terraform/issues/5753",
    ),
    rule(
        "scheduled-deletion",
        "any",
        "PendingDeletion (KMS key, Secrets Manager secret, ...)",
        r"pending ?deletion|scheduled for (deletion|destruction)|because it was marked for deletion|is scheduled to be deleted",
        Permanent,
        "the object is already scheduled for deletion with a waiting period (KMS keys 7-30 days, secrets up to 30): it does not finish within a destroy, and the provider fails the same way on every run",
        "https://docs.aws.amazon.com/kms/latest/developerguide/deleting-keys.html",
    ),
    rule(
        "cloudfront-not-disabled",
        "aws",
        "DistributionNotDisabled",
        r"DistributionNotDisabled|distribution you are trying to delete has not been disabled",
        Transient,
        "the provider disables a distribution and waits for the change to deploy before deleting it; this arrives while the disable is still propagating, and the next attempt deletes it",
        "https://docs.aws.amazon.com/cloudfront/latest/APIReference/API_DeleteDistribution.html",
    ),
    rule(
        "lambda-edge-replica",
        "aws",
        "InvalidParameterValueException (replicated function)",
        r"because it is a replicated function|Lambda@Edge Functions and Replicas",
        Permanent,
        "CloudFront removes Lambda@Edge replicas hours after the function is disassociated: far beyond a destroy's patience; a later run or a human deletes it",
        "https://docs.aws.amazon.com/AmazonCloudFront/latest/DeveloperGuide/lambda-edge-delete-replicas.html",
    ),
    rule(
        "delete-preview-failed",
        "citrix",
        "DeletePreview 5xx",
        r"Error fetching \S+( \S+){0,3} delete preview",
        Permanent,
        "the Citrix provider's delete preview answered 502 on every re-run (a backend fault behind a wrong status): it needs Citrix or a human, not a retry",
        "https://github.com/citrix/terraform-provider-citrix/issues/320",
    ),
    // --- credentials: nothing changes until someone fixes them ----------------------------
    rule(
        "eip-release-while-held",
        "aws",
        "AuthFailure (Elastic IP release)",
        r"AuthFailure\) when calling the (ReleaseAddress|DisassociateAddress) operation|aws_eip\.\S+: AuthFailure: You do not have permission to access the specified resource|(releasing|disassociating) EC2 EIP[^\n]*AuthFailure|ReleaseAddress[\s\S]{0,200}InvalidNetworkInterfaceID\.NotFound",
        Transient,
        "EC2 refuses to release an Elastic IP with a misleading AuthFailure, or names the network interface of the NAT gateway deleted seconds before as missing, while that holder of the same destroy is still going away; the release works once it is gone",
        "https://github.com/aws-cloudformation/cloudformation-coverage-roadmap/issues/831",
    ),
    guarded(
        rule(
            "aws-sts-unavailable",
            "aws",
            "ServiceUnavailable/InternalFailure/Throttling (STS)",
            r"\b(sts|STS)\b[^\n]{0,300}(StatusCode: 5\d\d\b|\bServiceUnavailable\b|\bInternalFailure\b|\bThrottling\b|\bRate exceeded\b)",
            Transient,
            "STS answered a credentials call with a 5xx or a throttle: the credentials were not refused, the service flaked, and the SDK's next attempt gets them",
            STS_ERRORS,
        ),
        only_sts_flaked,
    ),
    rule(
        "aws-credentials",
        "aws",
        "InvalidClientTokenId/ExpiredToken",
        r"InvalidClientTokenId|ExpiredToken|security token included in the request is (invalid|expired)|SignatureDoesNotMatch|UnrecognizedClientException|InvalidAccessKeyId|\bAuthFailure\b|no valid credential sources|NoCredentialProviders|failed to refresh cached credentials|no EC2 IMDS role found|failed to (retrieve|get) credentials|failed to find any aws credentials|config profile \(.*\) could not be found|SharedConfigProfileNotExist|sso session has expired|token has expired and refresh failed|InvalidIdentityToken|WebIdentityErr|AccessDenied: Not authorized to perform sts:AssumeRoleWithWebIdentity|validating provider credentials|retrieving caller identity",
        Permanent,
        "missing, invalid or expired AWS credentials do not come back by themselves",
        STS_ERRORS,
    ),
    rule(
        "google-credentials",
        "google",
        "DefaultCredentialsNotFound/invalid_grant",
        r"could not find default credentials|google: could not find|invalid_grant|oauth2: cannot fetch token|Request had invalid authentication credentials|UNAUTHENTICATED|invalid_rapt|reauthentication (is )?(needed|required)|gcloud auth login|do not currently have an active account|error loading credentials|account not found",
        Permanent,
        "missing or revoked Google credentials: a human must provide or refresh them",
        "https://cloud.google.com/docs/authentication/provide-credentials-adc",
    ),
    rule(
        "azure-credentials",
        "azure",
        "InvalidAuthenticationToken",
        r"InvalidAuthenticationToken|ExpiredAuthenticationToken|AADSTS\d+|building account|please run 'az login'|az login|azure cli not found|unable to build authorizer|obtaining a token|getting authenticated object ID|ManagedIdentityCredential|ClientSecretCredential|client secret|InvalidSubscriptionId|SubscriptionNotFound|MissingSubscriptionRegistration",
        Permanent,
        "Azure credentials or subscription are wrong, missing or expired",
        ARM_ERRORS,
    ),
    rule(
        "api-not-enabled",
        "google",
        "SERVICE_DISABLED/accessNotConfigured",
        r"accessNotConfigured|SERVICE_DISABLED|has not been used in project \S+ before or it is disabled|API has not been used",
        Permanent,
        "the cloud API is disabled in the project: someone must enable it",
        GOOGLE_ERRORS,
    ),
    // --- the provider cannot reach its API at all ------------------------------------------
    rule(
        "kubernetes-unconfigured",
        "kubernetes",
        "ClusterUnreachable",
        r"kubernetes cluster unreachable|no configuration has been provided|dial tcp (127\.0\.0\.1|\[::1\]|localhost):\d+: connect: connection refused|https?://localhost(:\d+)?/\S*\W+dial tcp|invalid configuration: no configuration|the server has asked for the client to provide credentials|provider not configured|Get \W*https?://localhost",
        Permanent,
        "the kubernetes/helm provider has no cluster (its config was removed or its cluster destroyed first)",
        "https://registry.terraform.io/providers/hashicorp/kubernetes/latest/docs#credentials-config",
    ),
    rule(
        "endpoint-unresolvable",
        "any",
        "NoSuchHost",
        r"no such host|server misbehaving|could not resolve host|name or service not known|Temporary failure in name resolution",
        Permanent,
        "the API endpoint's name does not resolve: its cluster/endpoint is gone or misconfigured",
        "https://pkg.go.dev/net#DNSError",
    ),
    // --- Kubernetes / Helm ------------------------------------------------------------------
    rule(
        "helm-release-pending",
        "helm",
        "OperationInProgress",
        r"another operation \(install/upgrade/rollback\) is in progress|has no deployed releases",
        Permanent,
        "a Helm release stuck in pending-* stays stuck until someone rolls it back",
        "https://github.com/helm/helm/issues/4558",
    ),
    rule(
        "helm-hook-job-failed",
        "helm",
        "HookJobFailed (BackoffLimitExceeded / DeadlineExceeded)",
        r"job (\S+ )?failed: (BackoffLimitExceeded|DeadlineExceeded)",
        Permanent,
        "a chart's delete hook Job exhausted its retries (backoffLimit / activeDeadlineSeconds): it usually fails the same way until the chart, its values or the cluster change; one report's rerun worked, so the rule leans permanent",
        "https://helm.sh/docs/topics/charts_hooks/#hook-deletion-policies",
    ),
    rule(
        "crd-missing",
        "kubernetes",
        "NoKindMatch",
        r"no matches for kind|no kind is registered|no kind \S+ is registered|resource mapping not found|could not find the requested resource|the server doesn't have a resource type|failed to get resource mapping|no kind registered|failed to determine GroupVersionResource|API did not recognize GroupVersionKind",
        Permanent,
        "the CRD was removed before its objects: the API no longer serves the kind",
        "https://kubernetes.io/docs/tasks/extend-kubernetes/custom-resources/custom-resource-definitions/",
    ),
    guarded(
rule(
            "kubernetes-api-group-unavailable",
            "kubernetes",
            "ServiceUnavailable (custom resource type)",
            r#"resource "?[a-z0-9-]+\.[a-z0-9-]+\.[a-z0-9.-]+"?( to be deleted)?:\s*the server is currently unable to handle the request|[a-z0-9-]+\.[a-z0-9.-]+/v\d\w*: the server is currently unable to handle the request"#,
            Permanent,
            "the API server cannot serve this custom resource type: its aggregated APIService has no backend or its CRD is being torn down (the operator was destroyed first); it does not come back during the destroy",
            "https://kubernetes.io/docs/tasks/extend-kubernetes/configure-aggregation-layer/",
        ),
        not_a_built_in_api_group,
    ),
    rule(
        "webhook-unavailable",
        "kubernetes",
        "InternalError/webhook",
        r"failed calling webhook|no endpoints available for service|admission webhook .* denied the request",
        Permanent,
        "an admission webhook rejects or cannot serve the request (often its deployment was destroyed first)",
        "https://kubernetes.io/docs/reference/access-authn-authz/extensible-admission-controllers/",
    ),
    rule(
        "finalizer-on-deleting-object",
        "kubernetes",
        "Forbidden/finalizers",
        r"no new finalizers can be added if the object is being deleted",
        Permanent,
        "the API server never accepts a new finalizer on an object being deleted",
        "https://github.com/flux-iac/tofu-controller/issues/686",
    ),
    rule(
        "pod-disruption-budget",
        "kubernetes",
        "PodDrainFailure / eviction blocked",
        r"PodDrainFailure|failed to be drained|drain did not complete|violate the pod'?s disruption budget|Cannot evict pod",
        Permanent,
        "a PodDisruptionBudget keeps pods from being evicted; the drain already retried for its whole timeout, so a human or a config change must release them",
        "https://kubernetes.io/docs/tasks/run-application/configure-pdb/",
    ),
    rule(
        "kubernetes-invalid-object",
        "kubernetes",
        "Invalid (immutable / resourceVersion)",
        r"should not be set on objects to be created|field is immutable",
        Permanent,
        "the API server rejects the object as written (an immutable field, a resourceVersion on create): the same request is rejected again",
        K8S_STATUS,
    ),
    rule(
        "cluster-health-during-destroy",
        "talos",
        "ClusterHealth",
        r"waiting for all (k8s )?nodes to report",
        Permanent,
        "a cluster health-check data source is refreshed by the destroy plan while the cluster is torn down: it fails on every run until the destroy skips refresh",
        "https://github.com/siderolabs/terraform-provider-talos/issues/147",
    ),
    rule(
        "finalizer-held-past-timeout",
        "kubernetes",
        "Finalizers (delete timeout)",
        r"still exists with finalizers|stuck on (an? |the )?[\w./-]*\s?finali[sz]er|finali[sz]ers? (has|have) not (been )?lifted",
        Permanent,
        "the provider (or a tool waiting on the object) waited its whole delete timeout and a finalizer still holds the object: whatever should release it (a pod using a PVC, a controller torn down first) is not doing so",
        "https://kubernetes.io/docs/concepts/overview/working-with-objects/finalizers/",
    ),
    rule(
        "kubernetes-namespace-delete-timeout",
        "kubernetes",
        "namespace delete: context deadline exceeded",
        r#"kubernetes_namespace(_v1)?\.\S+: Still destroying\.\.\. \[[^\]]*\]\s*(Error: )?context deadline exceeded|vertex "[^"]*kubernetes_namespace[^"]*\(destroy\)" error: context deadline exceeded"#,
        Permanent,
        "the kubernetes provider waited its whole delete timeout for a namespace that is still terminating: content whose finalizers nobody releases (a controller destroyed first, a stuck PVC) holds it until a human clears them",
        "https://github.com/fluxcd/flux2/issues/2486",
    ),
    rule(
        "kubernetes-delete-timeout",
        "kubernetes",
        "StillExists (delete timeout)",
        r"\b(job|pod|deployment|stateful ?set|daemon ?set|replica ?set|namespace|service|persistent ?volume( claim)?|secret|config ?map|ingress|cron ?job) \S+ still exists\b",
        Permanent,
        "the kubernetes provider waited its whole delete timeout and the object is still there: a finalizer or a foreground deletion nobody completes holds it",
        "https://github.com/hashicorp/terraform-provider-kubernetes/issues/843",
    ),
    rule(
        "namespace-terminating",
        "kubernetes",
        "NamespaceTerminating",
        r"because it is being terminated|namespace \S+ is being terminated|NamespaceTerminating|termination is in progress|ensuring all content is removed from this namespace",
        Transient,
        "the namespace finishes terminating by itself, taking its objects with it",
        "https://kubernetes.io/docs/concepts/overview/working-with-objects/namespaces/",
    ),
    rule(
        "kubernetes-rbac",
        "kubernetes",
        "Forbidden",
        r#"is forbidden: User "[^"]*" cannot|cannot (get|list|delete|patch|update|create|watch) resource "[^"]+""#,
        Permanent,
        "the provider's identity lacks an RBAC permission",
        "https://kubernetes.io/docs/reference/access-authn-authz/rbac/",
    ),
    rule(
        "kubernetes-conflict",
        "kubernetes",
        "Conflict",
        r"the object has been modified|operation cannot be fulfilled on|please apply your changes to the latest version",
        Transient,
        "optimistic-concurrency conflict: the next attempt reads the new resourceVersion",
        K8S_STATUS,
    ),
    rule(
        "google-operation-permanent-code",
        "google",
        "operation Error code 3/5/7/9/13",
        r#"\bError code "?(3|5|7|9|13)"?, message"#,
        Permanent,
        "a long-running operation ended INVALID_ARGUMENT / NOT_FOUND / PERMISSION_DENIED / FAILED_PRECONDITION / INTERNAL: not retryable (Google's AIP-194 retries UNAVAILABLE only; gRPC reserves INTERNAL for broken invariants — the operation failed server-side after the provider's own wait, and the resource is often left stuck)",
        GRPC_CODES,
    ),
    // ===== 3. specific transient ============================================================
    rule(
        "google-operation-transient-code",
        "google",
        "operation Error code 4/8/10/14",
        r#"\bError code "?(4|8|10|14)"?, message|rpc error: code = (4|8|10|14) desc"#,
        Transient,
        "a long-running operation ended DEADLINE_EXCEEDED / RESOURCE_EXHAUSTED / ABORTED / UNAVAILABLE: retryable",
        GRPC_CODES,
    ),
    rule(
        "local-state-lock-busy",
        "terraform",
        "EAGAIN (local state file lock)",
        r"resource temporarily unavailable",
        Transient,
        "the local backend's file lock is taken by a process running now on the same machine (flock EAGAIN): it is released when that process exits",
        TF_LOCKING,
    ),
    guarded(
        rule(
            "state-lock-backend-error",
            "terraform",
            "lock backend error (no holder)",
            r"error acquiring the state lock",
            Transient,
            "taking the lock failed on the backend itself — throttled, a 5xx, a timeout or a reset — and no `Lock Info` names a holder: the next attempt takes it",
            TF_LOCKING,
        ),
        lock_backend_flaked,
    ),
    reason_only(
        "lock-held",
        "LockHeld",
        Permanent,
        STALE_LOCK_WHY,
        TOFU_LOCKS,
    ),
    rule(
        "state-lock",
        "terraform",
        "StateLocked",
        r"error acquiring the state lock|state lock|lock info:|ConditionalCheckFailedException|state blob is already locked|lease already present|already locked",
        Permanent,
        STALE_LOCK_WHY,
        TOFU_LOCKS,
    ),
    rule(
        "throttling",
        "any",
        "Throttling/RequestLimitExceeded/rateLimitExceeded/429",
        r"throttl|rate exceeded|rate ?limit|too ?many ?requests|\b429\b|RequestLimitExceeded|\bSlowDown\b|reduce your request rate|quota exceeded for quota metric|per minute per|request rate higher|exceeded the rate|ProvisionedThroughputExceeded|PriorRequestNotComplete|TooManyRequests|SubscriptionRequestsThrottled|RESOURCE_EXHAUSTED",
        Transient,
        "the API asks the caller to slow down; the limit resets within seconds",
        AWS_RETRIES,
    ),
    rule(
        "runner-pod-start",
        "tofu-controller",
        "RunnerPodNotReady",
        r"failed to create and obtain pod ip|runner pod .* not ready|waiting for runner|failed to get runner pod",
        Transient,
        "the runner pod was slow to start (image pull, scheduling); the next reconcile creates it again",
        TOFU_RUNNER,
    ),
    rule(
        "runner-pod-terminating",
        "tofu-controller",
        "RunnerPodTerminating",
        r"(failed to wait|failed waiting) for the terminating runner pod",
        Transient,
        "the previous runner pod is still terminating; the next reconcile finds it gone",
        TOFU_CONTROLLER,
    ),
    rule(
        "runner-grpc-unavailable",
        "tofu-controller",
        "gRPC Unavailable/DeadlineExceeded",
        r"rpc error: code = (Unavailable|DeadlineExceeded|Canceled|Aborted|ResourceExhausted)|transport is closing|connection error: desc|error reading from server|grpc: the client connection is closing",
        Transient,
        "the runner pod went away or restarted mid-call; the next reconcile starts a fresh one",
        GRPC_CODES,
    ),
    rule(
        "runner-call-cancelled",
        "tofu-controller",
        "gRPC Canceled / context canceled",
        r"code = Canceled|\bcontext canceled\b",
        Transient,
        "the controller cancelled its call to the runner (a reconcile cut short, a leader change, a restart); the next reconcile runs it again (a state lock left behind by it is matched above)",
        TOFU_RUNNER,
    ),
    rule(
        "artifact-download",
        "tofu-controller",
        "ArtifactDownloadFailed",
        r"failed to download artifact|failed to fetch artifact|failed to verify artifact",
        Transient,
        "source-controller was unreachable or had just garbage-collected the artifact; it serves a new one",
        TOFU_BACKEND,
    ),
    rule(
        "registry-unreachable",
        "terraform",
        "RegistryUnreachable",
        r"(could not connect to|failed to request discovery document|could not query provider registry|failed to install provider).*(timeout|timed out|connection reset|tls handshake|EOF|503|502|unavailable|request canceled)",
        Transient,
        "the provider registry or its CDN flaked during init",
        "https://developer.hashicorp.com/terraform/internals/provider-registry-protocol",
    ),
    guarded(
        rule(
            "holder-going-away",
            "any",
            "in use, holder being deleted",
            r"currently being deleted|is being (deleted|detached|drained|terminated|released)|are being (deleted|detached|drained|terminated)|still (deleting|detaching|draining|terminating)|retry after some time",
            Transient,
            "in use, but the text says the holder (or the resource) is going away right now: the deletion in flight finishes and the next attempt goes through",
            EC2_ERRORS,
        ),
        in_use_not_denied,
    ),
    rule(
        "eks-cluster-nodegroups-attached",
        "aws",
        "ResourceInUseException (Cluster has nodegroups attached)",
        r"Cluster has (node ?groups) attached",
        Transient,
        "managed node groups depend on their cluster, so the same destroy deletes them first; EKS reports them attached until their asynchronous deletion completes (minutes), and the next attempt deletes the cluster",
        "https://docs.aws.amazon.com/eks/latest/userguide/delete-cluster.html",
    ),
    rule(
        "in-use-while-operation-runs",
        "any",
        "ResourceInUse (an operation in progress)",
        r"(ResourceInUse\w*|\bin use\b)[^\n]{0,200}(\b(update|upgrade|operation|modification)s? (is |are )?(currently |already |still )?in progress|\bin status '?(?-i:DELETING)\b)|\bwhile it (still )?has (an? |some )?((pending|ongoing|running|in-progress) (update|upgrade|operation|modification|change)s?\b|(update|upgrade|operation|modification)s? in progress\b)",
        Transient,
        "in use only because an update or operation on it (or its parent) is running (\"while it has an update in progress\", \"pending changes\"): that operation ends by itself and the next attempt goes through",
        "https://github.com/terraform-aws-modules/terraform-aws-eks/issues/2194",
    ),
    rule(
        "still-in-use",
        "any",
        "DependencyViolation/ResourceInUse/InUse",
        r"DependencyViolation|has (a )?dependen(t|cies|cy)|still in use|resource ?is ?in ?use|ResourceInUse|\bin use by\b|is in use|being used by|currently in use|InvalidGroup\.InUse|\w+InUse\w*|InUse\w*CannotBeDeleted|\w+CannotBeDeleted\b|resourceInUseByAnotherResource|has (node ?groups|nodegroups) attached|still members? of|FileSystemInUse|has mount targets|nested resources exist|still (has|contains) (active|attached|associated)|is still attached|\b(are|is) (still )?attached to (it|this)\b|has some active \S+|that's attached to|cannot be deleted while|\bdelet(e|ion)\b[^*;.]{0,80}\bwhile it (still )?has ([^b\W]|b[^e]|be[^e]|bee[^n]|been\w)|(can ?not|can't) delete due to existing \w+|still has dependent",
        Permanent,
        "something still uses it and the text does not show the holder going away (holders being deleted or detached are matched above as transient): by the time such an error surfaces the provider has usually retried it already (AWS retries DependencyViolation for the whole delete timeout, 5–20 minutes, so a guard retry re-runs those minutes past the budget) and the guard has removed the release's dependants first, so the holder is outside this destroy (a Kubernetes load balancer's ENIs, a snapshot, another module) — in the reader-labelled slices 14 of 20 such errors needed a human; it leans permanent",
        EC2_ERRORS,
    ),
    rule(
        "db-role-owns-objects",
        "any",
        "DependentObjectsStillExist (role)",
        r"cannot be dropped because some objects (or privileges )?depend on it",
        Permanent,
        "PostgreSQL will not drop a role that still owns objects; when the database holding them is a sibling in the same destroy a rerun drops it (two reports), but objects in a database the module does not manage keep it forever: the text cannot tell which, so it leans permanent (an orphan is recoverable with `orphans destroy`, a permanent error retried burns the budget)",
        "https://www.postgresql.org/docs/current/sql-droprole.html",
    ),
    rule(
        "vsphere-folder-not-empty",
        "vsphere",
        "folder is not empty",
        r"folder is not empty, please remove all items before deleting",
        Permanent,
        "VMs name their folder by path, so Terraform may delete the folder while the VMs of the same destroy are still going (a race open since 2016, gone on a rerun), but VMs created outside Terraform keep it forever: the text cannot tell which, so it leans permanent",
        "https://github.com/vmware/terraform-provider-vsphere/issues/23",
    ),
    rule(
        "http-precondition-failed",
        "aws",
        "PreconditionFailed (HTTP 412, ETag)",
        r"\bPreconditionFailed: The request failed because it didn't meet the preconditions",
        Permanent,
        "an If-Match (ETag) precondition failed on delete: when the distribution changed between the provider's read and its delete (its own disable step) the next run reads the new ETag (terraform-provider-aws#27147), but a provider that keeps a stale ETag fails the same way every run and needed a manual delete (#1074, twice after 20 minutes): one report each way, so it leans permanent",
        "https://docs.aws.amazon.com/cloudfront/latest/APIReference/API_DeleteDistribution.html",
    ),
    guarded(
        rule(
            "not-yet-available",
            "any",
            "not currently in the available state",
            r"is ?n[o']t currently in (the |an? )?(available|ready|active) (state|status)",
            Transient,
            "the resource (an RDS instance before its final snapshot, a cluster) is mid-transition and not available yet; it becomes available by itself (a status that does not pass by itself — failed, stopped, storage-full, inaccessible-encryption-credentials — is left to the other rules)",
            "https://github.com/hashicorp/terraform-provider-aws/pull/3028",
        ),
        no_terminal_status,
    ),
    rule(
        "incorrect-state",
        "any",
        "Incorrect*State/Invalid*State/a transitional state named",
        r"\b(Invalid|Incorrect)\w*State(Fault|Exception)?\b|transitional state|\b(provisioning|is|still) in transition\b|not in (an? )?(appropriate|valid|available|correct|ready) state|in the current (status|state)|is not ready|resourceNotReady|already being deleted|is being deleted|deletion is in progress|deletion (isn't|is not) (yet )?(completed?|finished)|being (created|updated|modified|deleted|provisioned)|current status is:? '?(deleting|creating|attaching|detaching|extending|migrating|resizing|uploading|downloading|backing-up|restoring-backup|retyping)\b|(?-i:\b(status|state) (is|=) '?(CREATING|PROVISIONING|DEPLOYING|UPDATING|UPGRADING|UPSCALING|DOWNSCALING|SCALING|RESIZING|MODIFYING|REBOOTING|STARTING|STOPPING|DELETING|DEPROVISIONING|MIGRATING|RESTORING|REPAIRING|RECONCILING)\b)|cannot be executed until [\w ]{1,40} (state|status) is '?(ACTIVE|AVAILABLE|READY|RUNNING)\b|\bInvalidStateTransition|(?-i:\bin (the )?state \[?'?[A-Z]+(_[A-Z]+)*_IN_PROGRESS\b|\b[A-Z]+(_[A-Z]+)*_IN_PROGRESS'?\]? (state|status)\b)|\bin state '(maintenance|starting|stopping|rebooting|creating|deleting|updating|migrating|resizing|restoring|provisioning)'|(?-i:\bin (the )?'?(ASSOCIATING|DISASSOCIATING|ATTACHING|DETACHING|HEALING|CREATING|DELETING|UPDATING|MODIFYING|PROVISIONING|DEPROVISIONING|REBOOTING|STARTING|STOPPING|RESTORING|MIGRATING|SCALING|UPGRADING|REPAIRING|RECONCILING|MAINTENANCE)'? (state|status)\b)",
        Transient,
        "the resource is mid-transition (an API names the transitional state it is in — ASSOCIATING, HEALING, MAINTENANCE, REBOOT_IN_PROGRESS, a server in state 'maintenance' — or says InvalidStateTransition); the transition finishes by itself",
        EC2_ERRORS,
    ),
    rule(
        "elastic-cloud-instances-not-stopped",
        "elastic",
        "Plan change failed: Some instances were not stopped",
        r"Plan change\s+failed: Some instances were not stopped",
        Transient,
        "an Elastic Cloud deployment's shutdown plan that did not stop every instance in time: frequent on destroy and passes on the next attempt (the provider retries it itself, up to 3 times, since v0.3)",
        "https://github.com/elastic/terraform-provider-ec/pull/384",
    ),
    rule(
        "alibaba-unknown-error",
        "alibaba",
        "UnknownError",
        r"request processing has failed due to some unknown error",
        Transient,
        "Alibaba Cloud's catch-all server-side failure (its common error code `UnknownError`, whatever HTTP status the SDK reports): nothing in the request is wrong and the next call usually passes",
        "https://github.com/alibaba/terraform-provider/issues/319",
    ),
    rule(
        "azure-marked-for-deletion",
        "azure",
        "OperationNotAllowed (marked for deletion)",
        r"\bis marked for deletion\b|wait for an ongoing one to complete",
        Transient,
        "the VM is already being deleted (by this destroy): ARM refuses other operations until that delete completes",
        "https://github.com/hashicorp/terraform-provider-azurerm/issues/6669",
    ),
    rule(
        "gke-cluster-operation-running",
        "google",
        "ResponseError 400 (cluster operation running)",
        r"is currently (repairing|upgrading|updating|reconciling|creating|deleting) cluster|please wait and try again once it is done",
        Transient,
        "GKE runs one operation per cluster at a time (auto-repair, auto-upgrade): it finishes by itself",
        "https://github.com/stackrox/stackrox/pull/12439",
    ),
    rule(
        "etag-mismatch",
        "any",
        "IfMatchPreconditionFailed / ETag mismatch",
        r"IfMatchPreconditionFailed|\bIf-Match\b[^\n]{0,120}\bfailed",
        Transient,
        "optimistic concurrency: the object changed between the provider's read and its delete (a sibling's delete or the cloud's own update touched it), so the If-Match ETag no longer holds; the next attempt reads the new ETag (CloudFront's own PreconditionFailed wording is `http-precondition-failed`, which leans permanent: one provider kept a stale ETag every run)",
        "https://github.com/hashicorp/terraform-provider-azurerm/issues/32614",
    ),
    rule(
        "artifactory-descriptor-revision-conflict",
        "jfrog",
        "Should update revision N (descriptor revision conflict)",
        r"Should update revision \d+",
        Transient,
        "Artifactory keeps its whole configuration in one descriptor with a revision; deletes that run in parallel (many repositories in one destroy) race on it and the loser gives up after its own retries (\"Should update revision N. Not trying again\"): the next attempt reads the new revision and goes through",
        "https://github.com/jfrog/terraform-provider-artifactory/issues/1194",
    ),
    rule(
        "operation-in-progress",
        "any",
        "ConcurrentModification/AnotherOperationInProgress/OperationInProgress",
        r"ConcurrentModification|concurrent (policy )?changes|conflict with (a|another) concurrent (request|operation|update)|conflictingoperationinprogress|AnotherOperationInProgress|OperationInProgress|operation (is )?(already )?in progress|an? in[ -]progress \w+ operation|(delete|deletion|update|create|creation) (is )?(already |still )?in progress|another operation|incompatible operation|is currently being modified|another \w+ operation|wait for it to finish|(overrid(d)?en|superseded) (and canceled )?by (a|another) (later )?operation|CanceledAndSupersededDueToAnotherOperation|currently has (an? )?(update|operation)\b.*\bin progress|OperationAborted|ScalingActivityInProgress|(scaling )?activit(y|ies) (is |are )?in progress|conflicting conditional operation|(already has a pending|is currently on an) event\b|ResourceGroupBeingDeleted|RetryableError|\bretryable\b|conditionNotMet|please retry|try again later|try again in (a few|\d+) (minutes?|seconds?)|not finished configuring yet|mutate calls cannot be queued|unable to queue the operation",
        Transient,
        "another operation on the same resource is running; it ends by itself",
        ARM_ERRORS,
    ),
    rule(
        "retry-after",
        "any",
        "RetryAfter (NicReservedForAnotherVm, ...)",
        r"\bretry (the operation )?after (\d+ ?(s|sec|seconds?|m|min|minutes?)\b|(a few|some) ?(seconds?|minutes?|time))|NicReservedForAnotherVm",
        Transient,
        "the service itself names a short wait (seconds to minutes) after which the same request succeeds",
        "https://learn.microsoft.com/en-us/troubleshoot/azure/virtual-machines/windows/nicreservedforanothervm",
    ),
    rule(
        "runner-tls-secret-race",
        "tofu-controller",
        "AlreadyExists (runner TLS Secret)",
        r#"terraform-runner\.tls-\d+"? already exists"#,
        Transient,
        "two reconciles raced to create the runner's TLS Secret; the next reconcile finds it and goes on",
        "https://github.com/flux-iac/tofu-controller/pull/1682",
    ),
    rule(
        "delete-waiter-lost-resource",
        "any",
        "couldn't find resource (delete waiter)",
        r"waiting for ([^:\n]|:\S){1,160}\b(deletion|to (finish |be )?(deleting|deleted|destroyed))\b([^:\n]|:\S){0,40}: couldn't find resource",
        Permanent,
        "a provider's resource waiter that gives up on a deletion because the resource it waits on can no longer be found (AWS \"waiting for X deletion\", Azure \"to finish deleting\"): it wants a deletion state and reads \"gone\" as an error, and both such reports in the table failed every destroy until the provider was pinned or upgraded; it leans permanent. A Google operation waiter (\"waiting for Deleting X\") that loses its operation is polling noise that passed on a rerun both times, and a detach waiter that loses its object is eventual consistency (below)",
        "https://github.com/hashicorp/terraform-provider-aws/issues/20316",
    ),
    guarded(
        rule(
            "eventual-consistency",
            "aws",
            "NoSuchEntity",
            r"NoSuchEntity|does not exist yet|eventual(ly)? consisten|not yet (available|propagated)|couldn't find resource",
            Transient,
            "the API has not yet seen a change made seconds ago",
            "https://docs.aws.amazon.com/IAM/latest/UserGuide/troubleshoot_general.html",
        ),
        waiter_context,
    ),
    rule(
        "azure-async-poll-failed",
        "azure",
        "pollingTrackerBase (StatusCode=0)",
        r"pollingTrackerBase|async operation has an invalid status code",
        Permanent,
        "go-autorest's poller lost ARM's long-running delete (a response without a status, StatusCode=0) and hid its real outcome: an SDK bug fixed by upgrading the provider, and a retry with the same provider goes through the same poller — two of three readers of its report labelled it permanent",
        "https://github.com/hashicorp/terraform-provider-azurerm/issues/1836",
    ),
    rule(
        "delete-refused",
        "any",
        "CannotBeDeleted (explained)",
        r"can ?not be (deleted|removed|destroyed|disassociated|detached|released)\b|cannot delete (it|this \w+|the \w+) (because|while|since|as)\b|is not allowed to be deleted|is (still )?referenced (in|by)\b|state of \w+ is not disabled|must be disabled (first|before)",
        Permanent,
        "the API refuses the delete and says why, and the reason is none of the in-use / in-progress / mid-transition causes matched above: something outside this destroy must change first",
        ARM_ERRORS,
    ),
    rule(
        "arm-conflict",
        "azure",
        "Conflict",
        r#"(?-i:Code="?Conflict"?)|StatusCode=409"#,
        Permanent,
        "an ARM Conflict on delete that none of the rules above explains (another operation running, a resource being deleted, in use by a sibling are matched there): the resource's state does not allow the delete — Front Door with a DNS CNAME still pointing at it, a vault with content — and one report each way leans permanent",
        ARM_ERRORS,
    ),
    // ===== 4. generic permanent =============================================================
    rule(
        "access-denied",
        "any",
        "AccessDenied/Forbidden/AuthorizationFailed/PERMISSION_DENIED",
        r"access ?denied|UnauthorizedOperation|UnauthorizedAccess|\bforbidden\b|status code:? 403|statuscode[=:] ?403|Error 403|\b403\b.*(forbidden|denied|permission)|AuthorizationFailed|AuthorizationError|not authorized to perform|does not have (the required )?(permission|authorization)|(don't|do not) have permission|permission to [\w ]+ is required|permission denied|PERMISSION_DENIED|IAM_PERMISSION_DENIED|not authorized|insufficient (permissions|privileges)|Authorization_RequestDenied|must have admin rights|AuthenticationFailed|authentication (error|failed|failure)|\b401\b|unauthorized|explicit deny|caller does not have permission|Permission '\S+' denied|OptInRequired",
        Permanent,
        "the caller lacks a permission; retrying with the same identity cannot succeed",
        STS_ERRORS,
    ),
    rule(
        "policy-disallowed",
        "any",
        "RequestDisallowedByPolicy/disallowed",
        r"RequestDisallowedByPolicy|\bdisallowed\b",
        Permanent,
        "a policy (Azure Policy, an org policy, a management plane) forbids the operation: someone must change the policy or use the owning API",
        ARM_ERRORS,
    ),
    rule(
        "google-iam-policy-write-failed",
        "google",
        "setIamPolicy failed",
        r"error (setting|applying) IAM policy for",
        Permanent,
        "the Google provider's IAM read-modify-write already retries concurrent policy changes (those are matched above as transient): a policy write that still fails, with or without a cause, fails again on the next run",
        "https://github.com/hashicorp/terraform-provider-google/blob/main/google/tpgiamresource/iam.go",
    ),
    rule(
        "not-empty",
        "any",
        "NotEmpty",
        r"\bis not empty\b|NotEmpty|contains (objects|images|resources)",
        Permanent,
        "a container still holds content this module did not create",
        S3_ERRORS,
    ),
    guarded(
    rule(
            "not-found",
            "any",
            "notFound / *NotFound (404)",
            r"googleapi: Error 404|\bnotFound\b|Error 404:|status code: 404|StatusCode: 404|\b\w+NotFound(Exception|Fault)?\b|\b404 Not Found\b|HTTP 404\b",
            Permanent,
            "a 404 the provider did not absorb in a destroy (parent or project gone, provider bug): state needs a human (state rm)",
            GOOGLE_ERRORS,
        ),
        not_only_a_waiter_target,
    ),
    guarded(
        rule(
            "not-found-code",
            "any",
            "*_NOT_FOUND / *_DELETED",
            r"_(NOT_FOUND|DELETED)\b",
            Permanent,
            "an API error code saying the object is gone (MongoDB Atlas, ScyllaDB Cloud and others spell them in capitals: CLUSTER_NOT_FOUND, CLUSTER_DELETED): deleted outside the destroy and not absorbed by the provider, so state needs a human",
            "https://www.mongodb.com/docs/atlas/reference/api-errors/",
        ),
        upper_snake_code,
    ),
    rule(
        "failed-precondition",
        "google",
        "FAILED_PRECONDITION/failedPrecondition",
        r"FAILED_PRECONDITION|failedPrecondition|precondition check failed|Error 412",
        Permanent,
        "gRPC FAILED_PRECONDITION: the system state must be fixed before a retry can succeed",
        GRPC_CODES,
    ),

    rule(
        "invalid-config",
        "any",
        "ValidationError/InvalidParameterValue/invalid configuration",
        r"InvalidParameterValue|InvalidParameterCombination|InvalidParameter\b|ValidationError|ValidationException|unsupported argument|invalid value|missing required argument|missing required \S+ (parameter|argument|field)|required field is not set|invalid reference|unsupported block type|invalid resource type|error: invalid|is not a valid|malformed|BadRequest|bad request|InvalidRequest|not supported|unknown variable|no value for required variable|reference to undeclared|invalid configuration|failed to query available provider packages|could not retrieve the list of available versions|unsupported attribute|exactly one of\b|invalid argument|INVALID_ARGUMENT|badRequest|\binvalid\b|LimitExceeded|QUOTA_EXCEEDED|quota .* exceeded|UnsupportedOperation|OperationNotPermitted|OperationNotAllowed|MethodNotAllowed|Error 400|status[ _]?code:? ?400\b|StatusCode=400",
        Permanent,
        "the request or the configuration is invalid; only a config change helps",
        "https://developer.hashicorp.com/terraform/language/syntax/configuration",
    ),
    rule(
        "provider-crashed",
        "terraform",
        "PluginCrashed",
        r"plugin did not respond|the plugin encountered an error|plugin\.\(\*GRPCProvider\)|panic:|Request cancelled .*provider|provider produced an unexpected|provider produced inconsistent|Provider produced invalid",
        Permanent,
        "a provider bug: the same destroy crashes the same way every time",
        "https://developer.hashicorp.com/terraform/plugin/framework/diagnostics",
    ),
    rule(
        "http-client-error",
        "any",
        "HTTP 4xx",
        HTTP_4XX,
        Permanent,
        "an HTTP 4xx the rules above did not recognise as throttling, a race or a transition: the request or the caller is wrong, and the same request fails again",
        "https://www.rfc-editor.org/rfc/rfc9110#name-client-error-4xx",
    ),
    rule(
        "already-exists",
        "any",
        "AlreadyExists",
        r"\w+AlreadyExists(Fault|Exception)?\b|\balready exists\b",
        Permanent,
        "a name the destroy needs is already taken (a final snapshot left by an earlier run, an object made outside): it stays taken until the config or a human changes it",
        "https://docs.aws.amazon.com/AmazonRDS/latest/APIReference/API_DeleteDBInstance.html",
    ),
    rule(
        "not-found-text",
        "any",
        "not found / does not exist",
        r"\bnot found\b|could not be found|no matching [\w ]{1,40} found|cannot be found|\bno (valid |such )?\w+ (with (id|name|key) \S+ )?(was |were )?found\b|\bno \w+ with (id|name|key) \S+ exists\b|couldn't find resource|does ?n[o']t exist",
        Permanent,
        "something the destroy needs is gone (a release record, a token, a state bucket) and the provider did not absorb it: the same run fails the same way until state or config is fixed",
        "https://www.rfc-editor.org/rfc/rfc9110#name-404-not-found",
    ),
    rule(
        "api-unreachable",
        "any",
        "ECONNREFUSED/EHOSTUNREACH/ENETUNREACH/dial timeout",
        r"connection refused|no route to host|network is unreachable|dial tcp [^ ]+: i/o timeout|run out of available brokers",
        Permanent,
        "the provider cannot reach its API at all — nothing listens at the address or no route leads there, or (Kafka) no bootstrap broker accepts it (a cluster deleted earlier, a private endpoint whose security-group rule the destroy removed, an endpoint left empty, a wrong host); a dial that times out is the same (5 of 6 such reports needed a human); the same address fails the next attempt too (a runner restarting mid-call is matched above as gRPC Unavailable)",
        "https://pkg.go.dev/syscall#ECONNREFUSED",
    ),
    guarded(
        rule(
            "deployment-endpoint-timeout",
            "any",
            "net/http request timeout (an endpoint of one deployment)",
            r#"://[^\s"'`\\]+?["'`\\]*: (context deadline exceeded|net/http: (request canceled (\(Client\.Timeout|while waiting for connection)|TLS handshake timeout))"#,
            Permanent,
            "a request to an endpoint that belongs to one deployment (a cluster's API server, an IP address, an in-cluster service, a self-hosted Rancher, Grafana or Vault) got no answer in time: during a destroy that endpoint is usually gone or cut off (its cluster or network removed earlier, a VPN down), and the next attempt waits just as long; a timeout on a provider's global API is left to `timeout` (transient)",
            "https://pkg.go.dev/net/http#Client",
        ),
        endpoint_of_one_deployment,
    ),
    // ===== 5. generic transient =============================================================
    rule(
        "k8s-server-timeout",
        "kubernetes",
        "Timeout (504)",
        r"unable to return a response in the time allotted",
        Transient,
        "the API server timed out (StatusReasonTimeout) and may still finish the request: a reachable, busy server",
        "https://github.com/kubernetes/apimachinery/blob/master/pkg/api/errors/errors.go",
    ),
    guarded(
        rule(
            "fortios-cli-command-failed",
            "fortinet",
            "Cli response: Command fail",
            r"Cli response:.{0,400}\bCommand fail\b",
            Permanent,
            "a FortiOS / FortiManager API answers a configuration command the device's CLI refused with HTTP 500 and the CLI's own output (\"Cli response: … Command fail. Return code -1\"): the device rejects that change (an object that can only be updated, a value it does not accept), so it fails the same way every time until the config changes or the object leaves the state (a CLI output that says it timed out, is busy or is locked by another administrator is left to the rules after it)",
            "https://github.com/fortinetdev/terraform-provider-fortios/issues/377",
        ),
        cli_refusal_not_busy,
    ),
    rule(
        "server-error",
        "any",
        "5xx/InternalError/backendError/ServiceUnavailable",
        r#"\b50[0234]\b|\b(status ?code|statuscode|http|response|Error|code)[ :=]*"?5(0[02-9]|[1-9]\d)\b|https?://\S+\s+5(0[02-9]|[1-9]\d)\b|currently unable to handle the request|\bInternal\w*Error\b|InternalFailure|internal ?server ?error|internal (\w+ )?error|ServiceUnavailable|service ?unavailable|bad gateway|gateway ?time-?out|backend ?error|ServerBusy|server is busy|temporarily unavailable|(?-i:\bUNAVAILABLE\b)|(?-i:\bINTERNAL\b)|unexpected EOF|ServerTimeout|service is currently unavailable|please try again"#,
        Transient,
        "a server-side error; the service recovers without a change on our side",
        GOOGLE_ERRORS,
    ),
    rule(
        "timeout",
        "any",
        "Timeout/DeadlineExceeded/ConnectionReset",
        r"context deadline exceeded|\b408\b|request timeout|i/o timeout|timeout while waiting|timed out|timeout exceeded|tls handshake timeout|connection reset|broken pipe|\bEOF\b|net/http: request canceled|Client\.Timeout|deadline exceeded|DEADLINE_EXCEEDED|timeout waiting|waiting for .* timeout|http2: client connection lost|stream error",
        Transient,
        "a timeout or reset on a reachable API: the next attempt gets a fresh connection",
        "https://developer.hashicorp.com/terraform/language/resources/syntax#operation-timeouts",
    ),
    // ===== 6. reason-only fallbacks =========================================================
    reason_only(
        "source-failed",
        "ArtifactFailed",
        Blocked,
        "ArtifactFailed with no transient cause in its message: the source is unusable",
        TOFU_BACKEND,
    ),
    reason_only(
        "vars-failed",
        "VarsGenerationFailed",
        Blocked,
        "VarsGenerationFailed with no transient cause in its message: the inputs are unusable",
        TOFU_BACKEND,
    ),
    reason_only(
        "init-failed",
        "TFExecInitFailed",
        Permanent,
        "terraform init failed for no transient reason: module or backend configuration",
        TOFU_BACKEND,
    ),
    // ===== 7. an error no rule knows ========================================================
    Def {
        name: "unrecognised-error",
        provider: "any",
        code: "(no known code)",
        reason: None,
        pattern: None,
        guard: Some(names_a_cause),
        class: Permanent,
        why: "no rule knows this error, and it names a cause none of the transient rules (throttling, 5xx, timeouts, locks, transitions, in-use by a sibling) recognised: it leans permanent — retried, a permanent error burns the whole budget before orphaning; orphaned, a passing one is only a ledger entry that `helm tfops orphans destroy` retries",
        source: "https://developer.hashicorp.com/terraform/cli/commands/destroy",
    },
];

/// Words that say only *that* something failed, not why.
const NO_CAUSE_WORDS: &[&str] = &[
    "a",
    "an",
    "and",
    "apply",
    "applying",
    "code",
    "command",
    "destroy",
    "destroying",
    "err",
    "error",
    "errors",
    "exit",
    "fail",
    "failed",
    "failing",
    "failure",
    "for",
    "generating",
    "in",
    "json",
    "of",
    "on",
    "opentofu",
    "operation",
    "occurred",
    "plan",
    "run",
    "running",
    "status",
    "terraform",
    "the",
    "to",
    "tofu",
    "unexpected",
    "unknown",
    "while",
    "with",
];

/// Whether a message names any cause at all: some word other than the ones that only say
/// something failed (`Operation failed: failed generating plan JSON: failed running command
/// (exit -1)` names none, and stays `unknown`; `failed to make http request` names one).
pub fn names_a_cause(message: &str) -> bool {
    message
        .split(|c: char| !c.is_ascii_alphabetic())
        .filter(|w| w.len() > 1)
        .any(|w| !NO_CAUSE_WORDS.iter().any(|n| n.eq_ignore_ascii_case(w)))
}
