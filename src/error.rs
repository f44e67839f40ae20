//! Errors a user will hit, as one plain sentence each, and the exit codes.
//!
//! Most code returns `anyhow::Result` with context ("listing pods in namespace
//! shop"). The errors here are the ones a caller or `main` branches on: the
//! cluster-access failures a user can fix (no kubeconfig, unknown context,
//! unreachable server, TLS, 401, 403, missing namespace, bad selector), a 409
//! the caller re-reads on, and the outcomes with their own exit codes
//! (refused, rollout failed, needs attention, interrupted).
//!
//! Each message names the context, server or resource involved and says what
//! to do, so `main` prints it once and exits; no backtrace, no debug dump.
//!
//! | code | meaning                                                          |
//! |------|------------------------------------------------------------------|
//! | 0    | success                                                          |
//! | 1    | error talking to the cluster, or an unexpected failure           |
//! | 2    | invalid usage or input (clap's own code for usage errors)        |
//! | 3    | `status --exit-code` found something stale or broken             |
//! | 4    | a rollout or verification failed                                 |
//! | 5    | refused: a precheck failed, no terminal and no `--yes`, or "no"  |
//! | 130  | interrupted (Ctrl-C)                                             |

use std::fmt;

/// The process exit codes (see the module documentation for the table).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ExitCode {
    Success = 0,
    Failure = 1,
    Usage = 2,
    NeedsAttention = 3,
    RolloutFailed = 4,
    Refused = 5,
    Interrupted = 130,
}

impl ExitCode {
    /// The number the process exits with.
    pub fn code(self) -> u8 {
        self as u8
    }
}

impl From<ExitCode> for std::process::ExitCode {
    fn from(code: ExitCode) -> Self {
        std::process::ExitCode::from(code.code())
    }
}

/// Where requests go: named in every cluster-access error.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct ClusterTarget {
    /// The kubeconfig context in use.
    pub context: String,
    /// The API server URL.
    pub server: String,
}

impl fmt::Display for ClusterTarget {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{} (context {})", self.server, self.context)
    }
}

/// Typed errors: what callers branch on and what maps to an exit code.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    #[error("no kubeconfig found: set KUBECONFIG or pass --kubeconfig")]
    NoKubeconfig,

    #[error("cannot read the kubeconfig {path}: {reason}")]
    BadKubeconfig { path: String, reason: String },

    #[error("context {name:?} is not in the kubeconfig; known contexts: {}", list_or_none(.known))]
    UnknownContext { name: String, known: Vec<String> },

    #[error("cluster {name:?} is not in the kubeconfig; known clusters: {}", list_or_none(.known))]
    UnknownCluster { name: String, known: Vec<String> },

    #[error("the kubeconfig has no current-context: pass --context (known contexts: {})", list_or_none(.known))]
    NoCurrentContext { known: Vec<String> },

    #[error(
        "the API server {target} does not answer ({detail}): check that the cluster is running and the kubeconfig's server address"
    )]
    Unreachable {
        target: ClusterTarget,
        detail: String,
    },

    #[error("the API server {target} did not answer within {timeout} (--request-timeout)")]
    Timeout {
        target: ClusterTarget,
        timeout: String,
    },

    #[error(
        "the certificate of {target} could not be verified ({detail}): fix the kubeconfig's certificate-authority for this cluster, or pass --insecure-skip-tls-verify if you trust the network"
    )]
    Tls {
        target: ClusterTarget,
        detail: String,
    },

    #[error(
        "credentials rejected by {server} for context {context} (401 Unauthorized): log in again or refresh the kubeconfig's token"
    )]
    Unauthorized { server: String, context: String },

    #[error(
        "forbidden: cannot {verb} {resource} {scope} as {user}; ask a cluster admin to bind the mesh-upgrade ClusterRole (krew/rbac/ in https://github.com/mesh-upgrade/kubectl-mesh-upgrade)"
    )]
    Forbidden {
        verb: String,
        resource: String,
        /// "in namespace shop", "in all namespaces" or "cluster-wide".
        scope: String,
        user: String,
    },

    #[error("namespace {namespace:?} does not exist in context {context}")]
    NamespaceNotFound { namespace: String, context: String },

    /// A LIST answered 404: the cluster does not serve the kind at all (a
    /// custom resource whose CRD is not installed, such as Argo's Rollout).
    #[error(
        "the API server {target} does not serve {resource} (404): its CustomResourceDefinition is not installed"
    )]
    NotServed {
        resource: String,
        target: ClusterTarget,
    },

    #[error("invalid label selector {selector:?}: {reason}")]
    InvalidSelector { selector: String, reason: String },

    /// A write lost an optimistic-concurrency race: the caller re-reads and retries.
    #[error("conflict {action}: {message}")]
    Conflict { action: String, message: String },

    /// A bug guard: a write was attempted in client dry-run mode.
    #[error("refusing to {action}: client dry-run must not write (this is a bug in the plugin)")]
    DryRunWrite { action: String },

    #[error("{0}")]
    Usage(String),

    #[error("{0}")]
    Refused(String),

    #[error("{0}")]
    RolloutFailed(String),

    /// `status --exit-code` found something stale or broken (the report was printed).
    #[error("{0}")]
    NeedsAttention(String),

    #[error("interrupted")]
    Interrupted,
}

impl Error {
    /// The exit code this error ends the process with.
    pub fn exit_code(&self) -> ExitCode {
        match self {
            Error::Usage(_) | Error::InvalidSelector { .. } => ExitCode::Usage,
            Error::NeedsAttention(_) => ExitCode::NeedsAttention,
            Error::RolloutFailed(_) => ExitCode::RolloutFailed,
            Error::Refused(_) => ExitCode::Refused,
            Error::Interrupted => ExitCode::Interrupted,
            Error::NoKubeconfig
            | Error::BadKubeconfig { .. }
            | Error::UnknownContext { .. }
            | Error::UnknownCluster { .. }
            | Error::NoCurrentContext { .. }
            | Error::Unreachable { .. }
            | Error::Timeout { .. }
            | Error::Tls { .. }
            | Error::Unauthorized { .. }
            | Error::Forbidden { .. }
            | Error::NamespaceNotFound { .. }
            | Error::NotServed { .. }
            | Error::Conflict { .. }
            | Error::DryRunWrite { .. } => ExitCode::Failure,
        }
    }
}

/// The exit code for any error: the first typed [`Error`] in its chain
/// decides, anything else is an unexpected failure (1).
pub fn exit_code_of(err: &anyhow::Error) -> ExitCode {
    err.chain()
        .find_map(|cause| cause.downcast_ref::<Error>())
        .map_or(ExitCode::Failure, Error::exit_code)
}

/// Whether the chain holds a 409 ([`Error::Conflict`]): the caller re-reads
/// the object and tries again.
pub fn is_conflict(err: &anyhow::Error) -> bool {
    err.chain()
        .any(|cause| matches!(cause.downcast_ref::<Error>(), Some(Error::Conflict { .. })))
}

/// Whether the chain holds a LIST answered 404 ([`Error::NotServed`]).
pub fn is_not_served(err: &anyhow::Error) -> bool {
    err.chain()
        .any(|cause| matches!(cause.downcast_ref::<Error>(), Some(Error::NotServed { .. })))
}

/// Whether the chain holds a 403 ([`Error::Forbidden`]).
pub fn is_forbidden(err: &anyhow::Error) -> bool {
    err.chain()
        .any(|cause| matches!(cause.downcast_ref::<Error>(), Some(Error::Forbidden { .. })))
}

/// Whether the error is a broken pipe (stdout closed early, as `| head` does):
/// the process then exits quietly.
pub fn is_broken_pipe(err: &anyhow::Error) -> bool {
    err.chain().any(|cause| {
        cause
            .downcast_ref::<std::io::Error>()
            .is_some_and(|io| io.kind() == std::io::ErrorKind::BrokenPipe)
    })
}

fn list_or_none(items: &[String]) -> String {
    if items.is_empty() {
        "none".to_string()
    } else {
        items.join(", ")
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use anyhow::Context as _;

    fn target() -> ClusterTarget {
        ClusterTarget {
            context: "prod".into(),
            server: "https://10.0.0.1:6443".into(),
        }
    }

    #[test]
    fn cluster_access_errors_exit_with_one() {
        let errors = [
            Error::NoKubeconfig,
            Error::UnknownContext {
                name: "x".into(),
                known: vec!["a".into()],
            },
            Error::Unreachable {
                target: target(),
                detail: "connection refused".into(),
            },
            Error::Tls {
                target: target(),
                detail: "unknown issuer".into(),
            },
            Error::Unauthorized {
                server: "s".into(),
                context: "c".into(),
            },
            Error::Forbidden {
                verb: "list".into(),
                resource: "pods".into(),
                scope: "in namespace shop".into(),
                user: "alice".into(),
            },
            Error::NamespaceNotFound {
                namespace: "shop".into(),
                context: "prod".into(),
            },
        ];
        for error in errors {
            assert_eq!(error.exit_code(), ExitCode::Failure, "{error}");
        }
    }

    #[test]
    fn outcomes_have_their_own_exit_codes() {
        assert_eq!(Error::Usage("x".into()).exit_code().code(), 2);
        assert_eq!(Error::NeedsAttention("x".into()).exit_code().code(), 3);
        assert_eq!(Error::RolloutFailed("x".into()).exit_code().code(), 4);
        assert_eq!(Error::Refused("x".into()).exit_code().code(), 5);
        assert_eq!(Error::Interrupted.exit_code().code(), 130);
    }

    #[test]
    fn the_typed_error_decides_the_exit_code_even_under_context() {
        let err = anyhow::Error::new(Error::Refused("no terminal and no --yes".into()))
            .context("restarting sidecars");
        assert_eq!(exit_code_of(&err), ExitCode::Refused);
        let err: anyhow::Result<()> = Err(anyhow::anyhow!("boom")).context("doing things");
        assert_eq!(exit_code_of(&err.unwrap_err()), ExitCode::Failure);
    }

    #[test]
    fn messages_name_what_to_do() {
        let msg = Error::UnknownContext {
            name: "stage".into(),
            known: vec!["dev".into(), "prod".into()],
        }
        .to_string();
        assert_eq!(
            msg,
            "context \"stage\" is not in the kubeconfig; known contexts: dev, prod"
        );
        let msg = Error::Unauthorized {
            server: "https://s:6443".into(),
            context: "prod".into(),
        }
        .to_string();
        assert!(
            msg.starts_with("credentials rejected by https://s:6443 for context prod"),
            "{msg}"
        );
        let msg = Error::Forbidden {
            verb: "list".into(),
            resource: "pods".into(),
            scope: "in namespace shop".into(),
            user: "alice".into(),
        }
        .to_string();
        assert!(
            msg.starts_with("forbidden: cannot list pods in namespace shop as alice;"),
            "{msg}"
        );
        let msg = Error::Tls {
            target: target(),
            detail: "UnknownIssuer".into(),
        }
        .to_string();
        assert!(
            msg.contains("https://10.0.0.1:6443 (context prod)")
                && msg.contains("--insecure-skip-tls-verify")
        );
    }

    #[test]
    fn conflicts_and_forbidden_errors_are_recognised_through_context() {
        let conflict = anyhow::Error::new(Error::Conflict {
            action: "patching namespaces/shop".into(),
            message: "the object has been modified".into(),
        })
        .context("relabelling shop");
        assert!(is_conflict(&conflict));
        assert!(!is_forbidden(&conflict));
        let forbidden = anyhow::Error::new(Error::Forbidden {
            verb: "list".into(),
            resource: "namespaces".into(),
            scope: "cluster-wide".into(),
            user: "alice".into(),
        });
        assert!(is_forbidden(&forbidden));
        assert!(!is_conflict(&anyhow::anyhow!("other")));
    }

    #[test]
    fn a_broken_pipe_is_recognised_through_context() {
        let io = std::io::Error::new(std::io::ErrorKind::BrokenPipe, "closed");
        let err = anyhow::Error::new(io).context("writing the table");
        assert!(is_broken_pipe(&err));
        assert!(!is_broken_pipe(&anyhow::anyhow!("other")));
    }
}
