//! Error classification: what a request does ([`Action`], for logs and
//! sentences) and how a final kube error becomes the one sentence a user can
//! act on ([`crate::error::Error`]: 401, 403 with the user, 409, a rejected
//! selector, a timeout, a TLS failure, an unreachable server), plus the
//! predicates the retries and the LIST pager branch on (transport errors
//! worth retrying, 410 Gone, the request-timeout marker).
//!
//! Causes are searched through the whole chain, `io::Error`s included, since
//! rustls and connect errors sit inside them.

use std::error::Error as StdError;
use std::time::Duration;

use kube::core::Resource;

use super::ApiClient;
use super::request::KnownScope;
use crate::error::Error;

/// What a request does, for error sentences and logs.
#[derive(Debug, Clone)]
pub(super) struct Action {
    /// The RBAC verb: list, get, patch, delete, watch.
    verb: &'static str,
    /// The resource plural, with `/name` for one object.
    resource: String,
    /// "in namespace shop", "in all namespaces", "cluster-wide", or "".
    scope: String,
    /// The label selector sent, if any.
    selector: Option<String>,
}

impl Action {
    pub(super) fn new<K>(
        verb: &'static str,
        namespace: Option<&str>,
        name: Option<&str>,
        selector: Option<&str>,
    ) -> Self
    where
        K: Resource<DynamicType = ()>,
        K::Scope: KnownScope,
    {
        let plural = K::plural(&());
        let resource = match name {
            Some(name) => format!("{plural}/{name}"),
            None => plural.into_owned(),
        };
        let scope = match (namespace, <K::Scope as KnownScope>::NAMESPACED) {
            (Some(ns), _) => format!("in namespace {ns}"),
            (None, true) => "in all namespaces".to_string(),
            (None, false) => "cluster-wide".to_string(),
        };
        Action {
            verb,
            resource,
            scope,
            selector: selector.map(str::to_string),
        }
    }

    /// A request on a subresource: `pods/<name>/eviction`.
    pub(super) fn subresource<K>(
        verb: &'static str,
        namespace: Option<&str>,
        name: &str,
        subresource: &str,
    ) -> Self
    where
        K: Resource<DynamicType = ()>,
        K::Scope: KnownScope,
    {
        let mut action = Action::new::<K>(verb, namespace, Some(name), None);
        action.resource = format!("{}/{subresource}", action.resource);
        action
    }

    pub(super) fn non_resource(verb: &'static str, path: &str) -> Self {
        Action {
            verb,
            resource: path.to_string(),
            scope: String::new(),
            selector: None,
        }
    }

    /// "listing pods in namespace shop".
    pub(super) fn describe(&self) -> String {
        let gerund = match self.verb {
            "list" => "listing",
            "get" => "reading",
            "watch" => "watching",
            "patch" => "patching",
            "delete" => "deleting",
            "create" => "creating",
            "update" => "updating",
            other => other,
        };
        let mut text = format!("{gerund} {}", self.resource);
        if !self.scope.is_empty() {
            text.push(' ');
            text.push_str(&self.scope);
        }
        if let Some(selector) = &self.selector {
            text.push_str(&format!(" (selector {selector})"));
        }
        text
    }
}

impl ApiClient {
    /// Turn a final kube error into the sentence a user can act on.
    pub(super) fn classify(&self, err: kube::Error, action: &Action) -> anyhow::Error {
        let target = self.target.clone();
        if let kube::Error::Api(status) = &err {
            return match status.code {
                401 => Error::Unauthorized {
                    server: target.server,
                    context: target.context,
                }
                .into(),
                403 => Error::Forbidden {
                    verb: action.verb.to_string(),
                    resource: action.resource.clone(),
                    scope: action.scope.clone(),
                    user: user_in_forbidden_message(&status.message)
                        .unwrap_or_else(|| self.user.clone()),
                }
                .into(),
                409 => Error::Conflict {
                    action: action.describe(),
                    message: status.message.clone(),
                }
                .into(),
                // A LIST of a kind the server does not serve: the whole
                // resource is missing (a CRD not installed), not one object.
                404 if action.verb == "list" => Error::NotServed {
                    resource: action.resource.clone(),
                    target,
                }
                .into(),
                400 if action.selector.is_some() => Error::InvalidSelector {
                    selector: action.selector.clone().unwrap_or_default(),
                    reason: status.message.clone(),
                }
                .into(),
                code => {
                    let reason = if status.reason.is_empty() {
                        String::new()
                    } else {
                        format!(" {}", status.reason)
                    };
                    anyhow::anyhow!(
                        "{} on {}: the API server answered {code}{reason}: {}",
                        action.describe(),
                        target,
                        status.message
                    )
                }
            };
        }
        if let Some(limit) = timeout_of(&err) {
            return Error::Timeout {
                target,
                timeout: crate::duration::human_duration(limit),
            }
            .into();
        }
        if let Some(detail) = tls_failure(&err) {
            return Error::Tls { target, detail }.into();
        }
        if let kube::Error::Auth(auth) = &err {
            return anyhow::anyhow!(
                "cannot get credentials for {target}: {}",
                deepest_message(auth)
            );
        }
        if matches!(err, kube::Error::SerdeError(_)) {
            return anyhow::anyhow!(
                "{} on {target}: unexpected response: {err}",
                action.describe()
            );
        }
        Error::Unreachable {
            target,
            detail: deepest_message(&err),
        }
        .into()
    }
}

/// The timeout marker: a kube error whose source is this type means
/// `--request-timeout` ran out.
#[derive(Debug, thiserror::Error)]
#[error("no answer within {0:?}")]
struct RequestTimedOut(Duration);

pub(super) fn timeout_error(limit: Duration) -> kube::Error {
    kube::Error::Service(Box::new(RequestTimedOut(limit)))
}

fn timeout_of(err: &kube::Error) -> Option<Duration> {
    causes(err).find_map(|cause| cause.downcast_ref::<RequestTimedOut>().map(|t| t.0))
}

pub(super) fn is_gone(err: &kube::Error) -> bool {
    matches!(err, kube::Error::Api(status) if status.code == 410)
}

/// Every cause of an error, looking inside `io::Error`s too (their `source()`
/// skips the error they wrap, which is where rustls and connect errors sit).
fn causes<'a>(
    err: &'a (dyn StdError + 'static),
) -> impl Iterator<Item = &'a (dyn StdError + 'static)> {
    let mut next = Some(err);
    std::iter::from_fn(move || {
        let current = next?;
        next = match current
            .downcast_ref::<std::io::Error>()
            .and_then(|io| io.get_ref())
        {
            Some(inner) => Some(inner as &(dyn StdError + 'static)),
            None => current.source(),
        };
        Some(current)
    })
}

/// The innermost message of an error chain: the most specific one.
pub(super) fn deepest_message(err: &(dyn StdError + 'static)) -> String {
    causes(err)
        .last()
        .map(|cause| cause.to_string())
        .unwrap_or_default()
}

/// `Some(detail)` when the error is a failed TLS handshake.
fn tls_failure(err: &kube::Error) -> Option<String> {
    if let kube::Error::RustlsTls(tls) = err {
        return Some(deepest_message(tls));
    }
    causes(err).find_map(|cause| {
        cause
            .downcast_ref::<rustls::Error>()
            .map(ToString::to_string)
    })
}

/// Whether a transport error is worth retrying: the connection was reset or
/// closed mid-request. A refused connection or a TLS failure is not: it will
/// fail the same way again.
pub(super) fn is_retryable_transport_error(err: &kube::Error) -> bool {
    if tls_failure(err).is_some() || timeout_of(err).is_some() {
        return false;
    }
    causes(err).any(|cause| {
        if let Some(io) = cause.downcast_ref::<std::io::Error>() {
            return matches!(
                io.kind(),
                std::io::ErrorKind::ConnectionReset
                    | std::io::ErrorKind::ConnectionAborted
                    | std::io::ErrorKind::BrokenPipe
                    | std::io::ErrorKind::UnexpectedEof
            );
        }
        let text = cause.to_string();
        text.contains("connection closed before message completed")
            || text.contains("IncompleteMessage")
    })
}

pub(super) fn short_reason(err: &kube::Error) -> String {
    match err {
        kube::Error::Api(status) => format!("{} {}", status.code, status.reason),
        other => deepest_message(other),
    }
}

/// The user named in an API server 403 message: `User "alice" cannot list ...`.
fn user_in_forbidden_message(message: &str) -> Option<String> {
    let rest = message.split_once("User \"")?.1;
    let user = rest.split_once('"')?.0;
    (!user.is_empty()).then(|| user.to_string())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_user_is_read_from_the_servers_forbidden_message() {
        let message = "pods is forbidden: User \"system:serviceaccount:ci:deployer\" cannot list resource \"pods\"";
        assert_eq!(
            user_in_forbidden_message(message).as_deref(),
            Some("system:serviceaccount:ci:deployer")
        );
        assert_eq!(user_in_forbidden_message("forbidden"), None);
    }
}
