//! API errors as the Kubernetes API server reports them: an HTTP code plus a `Status` body
//! (`kind: Status, status: Failure, reason, message, details, code`), so `kube::Client`
//! decodes them as `kube::Error::Api`.

use serde_json::{json, Value};

/// An API error (HTTP status + `Status` body fields).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{code} {reason}: {message}")]
pub struct ApiError {
    /// HTTP status code.
    pub code: u16,
    /// `Status.reason` (NotFound, AlreadyExists, Conflict, Forbidden, Invalid, …).
    pub reason: String,
    /// Human-readable message.
    pub message: String,
    /// `details` (which object the error is about).
    pub details: Option<Box<ErrorDetails>>,
}

/// `Status.details`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ErrorDetails {
    /// `details.name`
    pub name: String,
    /// `details.group`
    pub group: String,
    /// `details.kind` (the plural resource, as the real server does)
    pub kind: String,
}

impl ApiError {
    /// A bare error.
    pub fn new(code: u16, reason: &str, message: impl Into<String>) -> Self {
        Self {
            code,
            reason: reason.to_string(),
            message: message.into(),
            details: None,
        }
    }

    /// Attach `details` (resource name, group, plural).
    pub fn with_details(mut self, name: &str, group: &str, resource: &str) -> Self {
        self.details = Some(Box::new(ErrorDetails {
            name: name.to_string(),
            group: group.to_string(),
            kind: resource.to_string(),
        }));
        self
    }

    /// 404 `<qualified> "<name>" not found`.
    pub fn not_found(qualified: &str, group: &str, resource: &str, name: &str) -> Self {
        Self::new(404, "NotFound", format!("{qualified} \"{name}\" not found"))
            .with_details(name, group, resource)
    }

    /// 409 AlreadyExists.
    pub fn already_exists(qualified: &str, group: &str, resource: &str, name: &str) -> Self {
        Self::new(
            409,
            "AlreadyExists",
            format!("{qualified} \"{name}\" already exists"),
        )
        .with_details(name, group, resource)
    }

    /// 409 Conflict on a stale resourceVersion.
    pub fn conflict(qualified: &str, group: &str, resource: &str, name: &str) -> Self {
        Self::new(
            409,
            "Conflict",
            format!(
                "Operation cannot be fulfilled on {qualified} \"{name}\": the object has been modified; please apply your changes to the latest version and try again"
            ),
        )
        .with_details(name, group, resource)
    }

    /// 422 Invalid.
    pub fn invalid(kind: &str, name: &str, message: impl Into<String>) -> Self {
        let m = message.into();
        Self::new(422, "Invalid", format!("{kind} \"{name}\" is invalid: {m}"))
    }

    /// 400 BadRequest.
    pub fn bad_request(message: impl Into<String>) -> Self {
        Self::new(400, "BadRequest", message)
    }

    /// 403 Forbidden.
    pub fn forbidden(message: impl Into<String>) -> Self {
        Self::new(403, "Forbidden", message)
    }

    /// 410 Gone (watch resourceVersion too old).
    pub fn gone(message: impl Into<String>) -> Self {
        Self::new(410, "Expired", message)
    }

    /// 500 InternalError.
    pub fn internal(message: impl Into<String>) -> Self {
        Self::new(500, "InternalError", message)
    }

    /// The `Status` object for this error.
    pub fn status_body(&self) -> Value {
        let mut body = json!({
            "kind": "Status",
            "apiVersion": "v1",
            "metadata": {},
            "status": "Failure",
            "message": self.message,
            "reason": self.reason,
            "code": self.code,
        });
        if let Some(d) = &self.details {
            body["details"] = json!({"name": d.name, "group": d.group, "kind": d.kind});
        }
        body
    }
}

/// Canonical reason for an HTTP status code (used by fault injection).
pub fn reason_for_code(code: u16) -> &'static str {
    match code {
        400 => "BadRequest",
        401 => "Unauthorized",
        403 => "Forbidden",
        404 => "NotFound",
        405 => "MethodNotAllowed",
        409 => "Conflict",
        410 => "Expired",
        422 => "Invalid",
        429 => "TooManyRequests",
        500 => "InternalError",
        503 => "ServiceUnavailable",
        504 => "Timeout",
        _ => "Unknown",
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn status_shape() {
        let e = ApiError::not_found("secrets", "", "secrets", "x");
        let b = e.status_body();
        assert_eq!(b["kind"], "Status");
        assert_eq!(b["code"], 404);
        assert_eq!(b["reason"], "NotFound");
        assert_eq!(b["message"], "secrets \"x\" not found");
        assert_eq!(b["details"]["name"], "x");
    }
}
