//! The API layer: every request the plugin sends goes through [`ApiClient`].
//!
//! Keeping all cluster I/O behind one type puts the cross-cutting rules in one
//! place instead of in every verb:
//!
//! ```text
//!  verbs ──► ApiClient ──(retries, timeout, dry-run guard, error sentences)──►
//!            kube::Client ──► Observe layer (count, log, Retry-After) ──► auth ──► HTTP
//! ```
//!
//! One file per concern, all of them methods of the one [`ApiClient`]:
//!
//! | file | what it holds |
//! |---|---|
//! | `connect.rs` | the kubeconfig read as kubectl reads it, the flags applied, the client built |
//! | `request.rs` | LIST (paginated), GET, PATCH, DELETE, `/version`; the write mode and the retries |
//! | `evict.rs` | POST `pods/<name>/eviction`: evicted, gone, or refused by a PodDisruptionBudget |
//! | `watch.rs` | WATCH, [`ResumableWatch`] (resume, start over on 410) and [`WatchedSet`] |
//! | `classify.rs` | what a request does (`Action`) and a final error turned into a sentence ([`crate::error::Error`]) |
//! | `observe.rs` | the tower layer under every request: counting ([`RequestStats`]), logging, `Retry-After` |
//! | `fake.rs` | an in-memory API server for unit tests |
//!
//! - **Secrets**: the Observe layer sits outside kube's auth layer, so it
//!   never sees an `Authorization` header, and it logs only method, path,
//!   query and status. The tracing filter (`crate::logging`) never enables
//!   kube, hyper, h2, rustls or tower logs.
//! - Nothing here knows the command line: callers pass [`ConnectOptions`] and
//!   [`WriteMode`], plain values.

use std::fmt;
use std::sync::Arc;
use std::time::Duration;

use crate::error::ClusterTarget;

mod classify;
mod connect;
mod evict;
mod observe;
mod request;
mod watch;

pub use connect::{ConnectOptions, kubeconfig_contexts};
pub use evict::Eviction;
pub use observe::{RequestStats, RequestVerb};
pub use request::{
    DEFAULT_PAGE_SIZE, FIELD_MANAGER, KnownScope, ListEncoding, ListScope, ListSelector, PatchBody,
    RetryPolicy, WriteMode,
};
pub use watch::{ResumableWatch, WatchChange, WatchOrigin, WatchPolicy, WatchedSet};

/// The API client every verb uses. Cheap to clone; clones share counters.
#[derive(Clone)]
pub struct ApiClient {
    client: kube::Client,
    target: ClusterTarget,
    /// Who requests are made as, for 403 sentences when the server's message
    /// does not say: the impersonated user, else the kubeconfig user's name.
    user: String,
    default_namespace: String,
    write_mode: WriteMode,
    stats: Arc<RequestStats>,
    retry: RetryPolicy,
    request_timeout: Option<Duration>,
    page_size: u32,
}

impl fmt::Debug for ApiClient {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("ApiClient")
            .field("target", &self.target)
            .field("write_mode", &self.write_mode)
            .finish_non_exhaustive()
    }
}

impl ApiClient {
    /// Use `mode` for every later write.
    pub fn with_write_mode(mut self, mode: WriteMode) -> Self {
        self.write_mode = mode;
        self
    }

    /// Use `policy` for retries.
    pub fn with_retry_policy(mut self, policy: RetryPolicy) -> Self {
        self.retry = policy;
        self
    }

    /// Use `limit=page_size` on LISTs.
    pub fn with_page_size(mut self, page_size: u32) -> Self {
        self.page_size = page_size.max(1);
        self
    }

    /// The context and server requests go to.
    pub fn target(&self) -> &ClusterTarget {
        &self.target
    }

    /// The context's namespace, or `default`.
    pub fn default_namespace(&self) -> &str {
        &self.default_namespace
    }

    /// The write mode in force.
    pub fn write_mode(&self) -> WriteMode {
        self.write_mode
    }

    /// The request counters.
    pub fn stats(&self) -> &RequestStats {
        &self.stats
    }
}

#[cfg(test)]
pub(crate) mod fake;

#[cfg(test)]
mod tests;

#[cfg(test)]
mod watched_set_tests;
