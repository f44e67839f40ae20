//! API errors, answered as Kubernetes `Status` objects.

use serde_json::{Value, json};

/// An error the API answers with; `code` and `reason` follow the API server's.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
#[error("{reason} ({code}): {message}")]
pub struct ApiError {
    pub code: u16,
    pub reason: &'static str,
    pub message: String,
    /// Seconds a client should wait before retrying (429 and some 5xx).
    pub retry_after: Option<u64>,
    /// `details.kind` / `details.name` of the object concerned, when there is one.
    pub details: Option<(String, String)>,
    /// `details.causes`: (reason, message), such as the `DisruptionBudget`
    /// cause of an eviction a PodDisruptionBudget refused. Boxed: most
    /// errors have none, and every `Result` carries this type.
    pub causes: Option<Box<Vec<(&'static str, String)>>>,
}

impl ApiError {
    fn new(code: u16, reason: &'static str, message: impl Into<String>) -> Self {
        ApiError {
            code,
            reason,
            message: message.into(),
            retry_after: None,
            details: None,
            causes: None,
        }
    }

    /// The same error with one `details.causes` entry.
    pub fn with_cause(mut self, reason: &'static str, message: impl Into<String>) -> Self {
        self.causes
            .get_or_insert_with(Default::default)
            .push((reason, message.into()));
        self
    }

    /// `pods "x" not found`, as the API server words it.
    pub fn not_found(plural: &str, name: &str) -> Self {
        let mut e = Self::new(404, "NotFound", format!("{plural} \"{name}\" not found"));
        e.details = Some((plural.to_string(), name.to_string()));
        e
    }
    pub fn already_exists(plural: &str, name: &str) -> Self {
        let mut e = Self::new(
            409,
            "AlreadyExists",
            format!("{plural} \"{name}\" already exists"),
        );
        e.details = Some((plural.to_string(), name.to_string()));
        e
    }
    pub fn conflict(plural: &str, name: &str, why: &str) -> Self {
        let mut e = Self::new(
            409,
            "Conflict",
            format!("Operation cannot be fulfilled on {plural} \"{name}\": {why}"),
        );
        e.details = Some((plural.to_string(), name.to_string()));
        e
    }
    pub fn invalid(kind: &str, name: &str, why: impl std::fmt::Display) -> Self {
        let mut e = Self::new(
            422,
            "Invalid",
            format!("{kind} \"{name}\" is invalid: {why}"),
        );
        e.details = Some((kind.to_string(), name.to_string()));
        e
    }
    pub fn bad_request(message: impl Into<String>) -> Self {
        Self::new(400, "BadRequest", message)
    }
    pub fn unauthorized() -> Self {
        Self::new(401, "Unauthorized", "Unauthorized")
    }
    pub fn forbidden(
        user: &str,
        verb: &str,
        plural: &str,
        group: &str,
        namespace: Option<&str>,
    ) -> Self {
        let scope = match namespace {
            Some(ns) => format!("in the namespace \"{ns}\""),
            None => "at the cluster scope".to_string(),
        };
        Self::new(
            403,
            "Forbidden",
            format!(
                "{plural} is forbidden: User \"{user}\" cannot {verb} resource \"{plural}\" in API group \"{group}\" {scope}"
            ),
        )
    }
    /// `poddisruptionbudget "x" is forbidden: <why>`.
    pub fn forbidden_because(resource: &str, name: &str, why: &str) -> Self {
        let mut e = Self::new(
            403,
            "Forbidden",
            format!("{resource} \"{name}\" is forbidden: {why}"),
        );
        e.details = Some((resource.to_string(), name.to_string()));
        e
    }
    pub fn gone(message: impl Into<String>) -> Self {
        Self::new(410, "Expired", message)
    }
    pub fn too_many_requests(retry_after: u64) -> Self {
        let mut e = Self::new(
            429,
            "TooManyRequests",
            "Too many requests, please try again later.",
        );
        e.retry_after = Some(retry_after);
        e
    }
    pub fn internal(message: impl Into<String>) -> Self {
        Self::new(500, "InternalError", message)
    }
    pub fn unavailable(message: impl Into<String>) -> Self {
        Self::new(503, "ServiceUnavailable", message)
    }
    pub fn method_not_allowed(message: impl Into<String>) -> Self {
        Self::new(405, "MethodNotAllowed", message)
    }
    pub fn unsupported_media_type(content_type: &str) -> Self {
        Self::new(
            415,
            "UnsupportedMediaType",
            format!(
                "the body of the request was in an unknown format - accepted media types include: application/json-patch+json, application/merge-patch+json, application/apply-patch+yaml, application/strategic-merge-patch+json (got {content_type})"
            ),
        )
    }
    /// No media type the client accepts can be answered (the API server's
    /// content negotiation failing).
    pub fn not_acceptable(accepted: &[&str]) -> Self {
        Self::new(
            406,
            "NotAcceptable",
            format!(
                "only the following media types are accepted: {}",
                accepted.join(", ")
            ),
        )
    }
    /// Admission webhook failure (`failurePolicy: Fail` and the webhook is down).
    pub fn webhook_failed(webhook: &str, why: &str) -> Self {
        Self::new(
            500,
            "InternalError",
            format!("Internal error occurred: failed calling webhook \"{webhook}\": {why}"),
        )
    }

    /// The `Status` object the API server sends for this error.
    pub fn to_status(&self) -> Value {
        let mut status = json!({
            "kind": "Status",
            "apiVersion": "v1",
            "metadata": {},
            "status": "Failure",
            "message": self.message,
            "reason": self.reason,
            "code": self.code,
        });
        if let Some((kind, name)) = &self.details {
            status["details"] = json!({"name": name, "kind": kind});
        }
        if let Some(secs) = self.retry_after {
            status["details"]["retryAfterSeconds"] = json!(secs);
        }
        if let Some(causes) = &self.causes {
            status["details"]["causes"] = causes
                .iter()
                .map(|(reason, message)| json!({"reason": reason, "message": message}))
                .collect();
        }
        status
    }
}

pub type ApiResult<T> = Result<T, ApiError>;
