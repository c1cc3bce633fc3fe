//! Message texts: the exact status/event wording tofu-controller v0.16.5 produces around a
//! terraform error, and a set of realistic terraform / AWS / GCP / Azure error texts for
//! behaviour scripts (the guard's classifier is tested against these).

use super::behavior::LockSpec;

/// What the runner's `tfexec` error looks like for a failed terraform command
/// (`exit status 1`, a blank line, then terraform's diagnostic).
pub fn terraform_cli_error(diagnostic: &str) -> String {
    let diag = diagnostic.trim_end();
    if diag.starts_with("Error:") {
        format!("exit status 1\n\n{diag}\n")
    } else {
        format!("exit status 1\n\nError: {diag}\n")
    }
}

/// Ready message after a failed destroy apply (`controllers/tf_controller_apply.go`).
pub fn apply_failed(diagnostic: &str) -> String {
    format!(
        "error running Apply: rpc error: code = Internal desc = {}",
        terraform_cli_error(diagnostic)
    )
}

/// Warning event message after a failed apply.
pub fn apply_failed_event(diagnostic: &str) -> String {
    format!(
        "Apply error: rpc error: code = Internal desc = {}",
        terraform_cli_error(diagnostic)
    )
}

/// Ready message after a failed plan (`controllers/tf_controller_plan.go`).
pub fn plan_failed(diagnostic: &str) -> String {
    format!(
        "error running Plan: rpc error: code = Internal desc = {}",
        terraform_cli_error(diagnostic)
    )
}

/// Warning event message after a failed plan.
pub fn plan_failed_event(diagnostic: &str) -> String {
    format!(
        "Plan error: rpc error: code = Internal desc = {}",
        terraform_cli_error(diagnostic)
    )
}

/// The runner's normalised state-lock error (`runner/server_exec_wrapper.go StateLockError`).
pub fn state_lock_error(lock: &LockSpec, path: &str, created: &str) -> String {
    format!(
        "error acquiring the state lock: Lock Info:\n  ID:        {}\n  Path:      {}\n  Operation: {}\n  Who:       {}\n  Version:   1.8.7\n  Created:   {}\n",
        lock.id, path, lock.operation, lock.who, created
    )
}

/// Ready message when the destroy plan hits a held lock.
pub fn plan_locked(lock: &LockSpec, path: &str, created: &str) -> String {
    format!(
        "error running Plan: rpc error: code = Internal desc = {}",
        state_lock_error(lock, path, created)
    )
}

/// `StateLocked` condition message.
pub fn locked_condition(id: &str) -> String {
    format!("Terraform Locked with Lock Identifier: {id}")
}

/// Warning event when the plan hits a lock.
pub fn locked_event(id: &str) -> String {
    format!("Plan error: State locked with Lock Identifier {id}")
}

/// `StateLocked=False/ForceUnlock` message.
pub fn force_unlock_condition(id: &str) -> String {
    format!("Terraform Force Unlock with Lock Identifier: {id}")
}

/// Ready/Stalled message for a missing source (controller-runtime NotFound error text).
pub fn source_not_found(kind: &str, name: &str) -> String {
    let resource = match kind {
        "GitRepository" => "gitrepositories",
        "OCIRepository" => "ocirepositories",
        "Bucket" => "buckets",
        other => other,
    };
    format!("{resource}.source.toolkit.fluxcd.io \"{name}\" not found")
}

/// Ready message for a missing required varsFrom object (runner gRPC error, code Unknown).
pub fn vars_from_not_found(kind: &str, name: &str) -> String {
    let resource = if kind == "ConfigMap" {
        "configmaps"
    } else {
        "secrets"
    };
    format!("rpc error: code = Unknown desc = {resource} \"{name}\" not found")
}

/// Message of `DeletionBlockedByDependantsReason`.
pub fn blocked_by_dependants(dependants: &[String]) -> String {
    format!(
        "Deletion in progress, but blocked. Please delete {} to resume ...",
        dependants.join(", ")
    )
}

/// Realistic terraform diagnostics (without the `Error: ` prefix), grouped by what a
/// sensible classifier should call them.
pub mod samples {
    /// AWS API throttling (transient).
    pub const AWS_THROTTLING: &str = "deleting EC2 VPC (vpc-0a1b2c3d4e5f67890): operation error EC2: DeleteVpc, https response error StatusCode: 503, RequestID: 5f2c1e0a-8d1b-4f7e-9c1a-2b3c4d5e6f70, api error RequestLimitExceeded: Request limit exceeded.";
    /// AWS dependency still in use, reported after the provider's own retries (the guard's
    /// classifier leans permanent: the text does not show the holder going away).
    pub const AWS_DEPENDENCY_VIOLATION: &str = "deleting EC2 Subnet (subnet-0123456789abcdef0): operation error EC2: DeleteSubnet, https response error StatusCode: 400, RequestID: 0e1d2c3b-4a59-6877-8695-a4b3c2d1e0f9, api error DependencyViolation: The subnet 'subnet-0123456789abcdef0' has dependencies and cannot be deleted.";
    /// AWS security group still referenced after the provider's own 15-minute retry (the guard's
    /// classifier leans permanent: what still holds it outlives the guard's budget).
    pub const AWS_SG_IN_USE: &str = "deleting Security Group (sg-0f1e2d3c4b5a69788): DependencyViolation: resource sg-0f1e2d3c4b5a69788 has a dependent object\n\tstatus code: 400, request id: 7a8b9c0d-1e2f-3a4b-5c6d-7e8f9a0b1c2d";
    /// AWS access denied (permanent).
    pub const AWS_ACCESS_DENIED: &str = "deleting RDS DB Instance (app-db): operation error RDS: DeleteDBInstance, https response error StatusCode: 403, RequestID: 3c2b1a09-8f7e-6d5c-4b3a-291807f6e5d4, api error AccessDenied: User: arn:aws:sts::123456789012:assumed-role/tf-runner/1700000000000000000 is not authorized to perform: rds:DeleteDBInstance on resource: arn:aws:rds:eu-west-1:123456789012:db:app-db because no identity-based policy allows the rds:DeleteDBInstance action";
    /// AWS RDS deletion protection (permanent).
    pub const AWS_DELETION_PROTECTION: &str = "deleting RDS DB Instance (app-db): operation error RDS: DeleteDBInstance, https response error StatusCode: 400, RequestID: 9e8d7c6b-5a49-3827-1605-f4e3d2c1b0a9, api error InvalidParameterCombination: Cannot delete protected DB Instance, please disable deletion protection and try again.";
    /// S3 bucket not empty (permanent without force_destroy).
    pub const AWS_BUCKET_NOT_EMPTY: &str = "deleting S3 Bucket (my-app-assets): operation error S3: DeleteBucket, https response error StatusCode: 409, RequestID: KX3C6QZ1Y2B8R4TN, HostID: 8l2Hq0c6Zy0Jm4X1w8f9N0v3a5B7d9E1g3H5j7K9m1P3r5T7v9X1z3B5d7F9h1J3l5N7p9R1, api error BucketNotEmpty: The bucket you tried to delete is not empty";
    /// Expired credentials (permanent until credentials are fixed).
    pub const AWS_EXPIRED_TOKEN: &str = "deleting IAM Role (app-role): operation error IAM: DeleteRole, https response error StatusCode: 403, RequestID: 1a2b3c4d-5e6f-7a8b-9c0d-1e2f3a4b5c6d, api error ExpiredToken: The security token included in the request is expired";
    /// Provider-side delete timeout (transient).
    pub const AWS_DELETE_TIMEOUT: &str = "waiting for EKS Cluster (prod) delete: timeout while waiting for resource to be gone (last state: 'DELETING', timeout: 15m0s)";
    /// Network error reaching the cloud API after the SDK's 25 attempts (the guard's classifier
    /// calls a dial timeout api-unreachable, permanent: no route leads to the endpoint).
    pub const NETWORK_TIMEOUT: &str = "deleting ElastiCache Replication Group (sessions): operation error ElastiCache: DeleteReplicationGroup, exceeded maximum number of attempts, 25, https response error StatusCode: 0, RequestID: , request send failed, Post \"https://elasticache.eu-west-1.amazonaws.com/\": dial tcp 52.94.1.10:443: i/o timeout";
    /// GCP rate limit (transient).
    pub const GCP_RATE_LIMIT: &str = "Error when reading or editing Bucket \"my-bucket\": googleapi: Error 429: The rate of change requests to the bucket has exceeded the rate limit. Please reduce the rate of create, update, and delete requests., rateLimitExceeded";
    /// GCP backend error (transient).
    pub const GCP_BACKEND_ERROR: &str = "Error deleting Instance: googleapi: Error 503: Internal error. Please try again or contact Google Support. (Code: '5E2A3B4C5D6E7F80'), backendError";
    /// GCP network still used by a firewall rule (the guard's classifier leans permanent: the
    /// provider deletes a module's own rules first, so a rule left is usually made outside).
    pub const GCP_RESOURCE_IN_USE: &str = "Error waiting for Deleting Network: The network resource 'projects/acme-prod/global/networks/app-vpc' is already being used by 'projects/acme-prod/global/firewalls/allow-internal'";
    /// GCP deletion protection (permanent).
    pub const GCP_DELETION_PROTECTION: &str = "Cannot destroy instance without setting deletion_protection=false and running `terraform apply`";
    /// GCP permission denied (permanent).
    pub const GCP_PERMISSION_DENIED: &str = "Error when reading or editing SQL Database Instance \"app-db\": googleapi: Error 403: The client is not authorized to make this request., notAuthorized";
    /// Azure throttling (transient).
    pub const AZURE_THROTTLED: &str = "deleting Storage Account (Subscription: \"00000000-0000-0000-0000-000000000000\"\nResource Group Name: \"rg-app\"\nStorage Account Name: \"appassets\"): unexpected status 429 (429 Too Many Requests) with error: TooManyRequests: The request is being throttled.";
    /// Azure resource group not empty (permanent unless the provider feature is set).
    pub const AZURE_RG_NOT_EMPTY: &str = "deleting Resource Group \"rg-app\": the Resource Group still contains Resources.\n\nTerraform is configured to check for Resources within the Resource Group when deleting the Resource Group - and\nraise an error if nested Resources still exist to avoid unintentionally deleting these Resources.";
    /// Plan-time configuration error (permanent).
    pub const PLAN_INVALID_CONFIG: &str = "Reference to undeclared input variable\n\n  on main.tf line 12, in resource \"aws_s3_bucket\" \"this\":\n  12:   bucket = var.bucket_nme\n\nAn input variable with the name \"bucket_nme\" has not been declared. This variable can be declared with a variable \"bucket_nme\" {} block.";
    /// Plan-time credentials error (permanent).
    pub const PLAN_NO_CREDENTIALS: &str = "No valid credential sources found\n\n  with provider[\"registry.terraform.io/hashicorp/aws\"],\n  on providers.tf line 1, in provider \"aws\":\n   1: provider \"aws\" {\n\nPlease see https://registry.terraform.io/providers/hashicorp/aws\nfor more information about providing credentials.\n\nError: failed to refresh cached credentials, no EC2 IMDS role found, operation error ec2imds: GetMetadata, request canceled, context deadline exceeded";
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn apply_failure_wraps_like_the_controller() {
        let m = apply_failed(samples::AWS_THROTTLING);
        assert!(m.starts_with("error running Apply: rpc error: code = Internal desc = exit status 1\n\nError: deleting EC2 VPC"));
        assert!(m.contains("RequestLimitExceeded"));
        let p = plan_failed("Error: boom");
        assert_eq!(
            p,
            "error running Plan: rpc error: code = Internal desc = exit status 1\n\nError: boom\n"
        );
    }

    #[test]
    fn lock_texts_match_runner_format() {
        let lock = LockSpec {
            id: "abc".into(),
            who: "runner@x".into(),
            operation: "OperationTypeApply".into(),
            release_after: None,
        };
        let m = plan_locked(&lock, "tfstate-default-x", "2026-01-01 00:00:00 +0000 UTC");
        assert!(m.contains("error acquiring the state lock: Lock Info:\n  ID:        abc\n"));
        assert_eq!(
            locked_condition("abc"),
            "Terraform Locked with Lock Identifier: abc"
        );
        assert_eq!(
            source_not_found("OCIRepository", "m"),
            "ocirepositories.source.toolkit.fluxcd.io \"m\" not found"
        );
        assert_eq!(
            vars_from_not_found("Secret", "db"),
            "rpc error: code = Unknown desc = secrets \"db\" not found"
        );
        assert_eq!(
            blocked_by_dependants(&["a".into(), "b".into()]),
            "Deletion in progress, but blocked. Please delete a, b to resume ..."
        );
    }
}
