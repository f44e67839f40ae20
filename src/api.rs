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
//! - **Connection**: the kubeconfig is read the way kubectl reads it
//!   (`--kubeconfig`, else every file in `KUBECONFIG` merged first-wins with
//!   missing files skipped, else `~/.kube/config`), then `--context`,
//!   `--cluster`, `--user`, `--as`/`--as-group`, `--insecure-skip-tls-verify`
//!   and `--request-timeout` are applied.
//! - **LIST** is always paginated (`limit`/`continue`) and each page is
//!   converted by the caller's function before the next is fetched, so a
//!   50,000-pod cluster never sits in memory as full objects.
//! - **Writes** (`patch`, `delete`) carry the [`WriteMode`]: `dryRun=All` for
//!   a server dry run, and in client dry-run mode any write is refused with an
//!   error — a bug guard, since client dry-run must never reach the server.
//! - **Retries** live here only: 429 waits for the server's `Retry-After`
//!   (the Observe layer copies the header into the Status' `retryAfterSeconds`
//!   because kube-rs drops response headers on errors), 5xx and dropped
//!   connections back off exponentially a bounded number of times, and 409
//!   surfaces as [`Error::Conflict`] for the caller to re-read.
//! - **Watches** resume from the last resourceVersion and start from scratch
//!   on 410 Gone, with one policy for every caller: [`ResumableWatch`].
//! - **Counting**: every HTTP request is counted by verb in [`RequestStats`]
//!   (`-v` prints the summary; benchmarks read it).
//! - **Secrets**: the Observe layer sits outside kube's auth layer, so it
//!   never sees an `Authorization` header, and it logs only method, path,
//!   query and status. The tracing filter (`crate::logging`) never enables
//!   kube, hyper, h2, rustls or tower logs.

use std::error::Error as StdError;
use std::fmt;
use std::future::Future;
use std::path::{Path, PathBuf};
use std::pin::Pin;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::task::{Context, Poll};
use std::time::{Duration, Instant};

use bytes::Bytes;
use futures::{Stream, StreamExt};
use http::{Request, Response, StatusCode};
use http_body_util::{BodyExt, Either, Full};
use kube::config::{KubeConfigOptions, Kubeconfig};
use kube::core::params::{
    DeleteParams, ListParams, Patch, PatchParams, Preconditions, WatchParams,
};
use kube::core::{ClusterResourceScope, NamespaceResourceScope, ObjectList, Resource, WatchEvent};
use serde::de::DeserializeOwned;
use serde_json::Value;
use tower::{BoxError, Layer, Service};

use crate::error::{ClusterTarget, Error};
use crate::selector::LabelSelector;

/// The field manager recorded for every write (server-side apply and patches).
pub const FIELD_MANAGER: &str = "kubectl-mesh-upgrade";

/// Objects per LIST page: large enough that a big cluster needs few round
/// trips, small enough that one page of pods stays a few MB.
pub const DEFAULT_PAGE_SIZE: u32 = 500;

/// Everything needed to reach the cluster (`commands` fills it from the
/// global flags).
#[derive(Debug, Clone, Default)]
pub struct ConnectOptions {
    pub kubeconfig: Option<PathBuf>,
    pub context: Option<String>,
    pub cluster: Option<String>,
    pub user: Option<String>,
    pub impersonate_user: Option<String>,
    pub impersonate_groups: Vec<String>,
    pub request_timeout: Option<Duration>,
    pub insecure_skip_tls_verify: bool,
}

/// Whether writes happen for real.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum WriteMode {
    /// Writes are sent and stored.
    #[default]
    Write,
    /// Writes are sent with `dryRun=All`: validated and admitted, not stored.
    ServerDryRun,
    /// No write may be sent at all; attempting one is a bug and fails.
    ClientDryRun,
}

/// Which objects a LIST or watch covers.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ListScope {
    /// Every namespace (namespaced kinds) or the whole cluster (cluster-scoped kinds).
    All,
    /// One namespace (namespaced kinds only).
    Namespace(String),
}

impl ListScope {
    fn namespace(&self) -> Option<&str> {
        match self {
            ListScope::All => None,
            ListScope::Namespace(ns) => Some(ns),
        }
    }
}

/// Server-side filters of a LIST or watch.
#[derive(Debug, Clone, Default)]
pub struct ListSelector {
    /// `labelSelector`.
    pub labels: Option<LabelSelector>,
    /// `fieldSelector`, e.g. `metadata.name=istiod`.
    pub fields: Option<String>,
}

impl ListSelector {
    /// No filter.
    pub fn everything() -> Self {
        ListSelector::default()
    }

    /// Filter by labels.
    pub fn labels(selector: LabelSelector) -> Self {
        ListSelector {
            labels: Some(selector),
            fields: None,
        }
    }

    /// Filter by labels when a selector is given.
    pub fn maybe_labels(selector: Option<&LabelSelector>) -> Self {
        ListSelector {
            labels: selector.cloned(),
            fields: None,
        }
    }
}

/// A patch body and its type.
#[derive(Debug, Clone, PartialEq)]
pub enum PatchBody {
    /// `application/merge-patch+json` (RFC 7386).
    Merge(Value),
    /// `application/strategic-merge-patch+json`, as `kubectl rollout restart` sends.
    Strategic(Value),
    /// `application/json-patch+json` (RFC 6902): `Value` is the array of operations.
    Json(Value),
    /// Server-side apply with [`FIELD_MANAGER`], without forcing conflicts.
    Apply(Value),
}

/// How many times, and how long, to retry.
#[derive(Debug, Clone, Copy)]
pub struct RetryPolicy {
    /// Retries after the first attempt.
    pub max_retries: u32,
    /// The first backoff; it doubles each retry.
    pub base_delay: Duration,
    /// The longest backoff.
    pub max_delay: Duration,
    /// The longest wait a server's `Retry-After` may ask for.
    pub max_retry_after: Duration,
}

impl Default for RetryPolicy {
    fn default() -> Self {
        RetryPolicy {
            max_retries: 5,
            base_delay: Duration::from_millis(250),
            max_delay: Duration::from_secs(8),
            max_retry_after: Duration::from_secs(60),
        }
    }
}

impl RetryPolicy {
    /// The wait before retry number `attempt + 1` after `err`, or `None` when
    /// the error is final or the retries are used up.
    fn delay_after(&self, err: &kube::Error, attempt: u32) -> Option<Duration> {
        if attempt >= self.max_retries {
            return None;
        }
        let backoff = self
            .base_delay
            .saturating_mul(2u32.saturating_pow(attempt))
            .min(self.max_delay);
        match err {
            kube::Error::Api(status) => {
                let server_wait = status
                    .details
                    .as_ref()
                    .map(|d| d.retry_after_seconds)
                    .filter(|secs| *secs > 0)
                    .map(|secs| Duration::from_secs(secs.into()).min(self.max_retry_after));
                match status.code {
                    429 => Some(server_wait.unwrap_or(backoff)),
                    500 | 502 | 503 | 504 => Some(server_wait.unwrap_or(backoff)),
                    _ => None,
                }
            }
            other if is_retryable_transport_error(other) => Some(backoff),
            _ => None,
        }
    }
}

/// The Kubernetes verbs requests are counted by.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RequestVerb {
    Get,
    List,
    Watch,
    Create,
    Update,
    Patch,
    Delete,
    Other,
}

impl RequestVerb {
    const ALL: [RequestVerb; 8] = [
        RequestVerb::Get,
        RequestVerb::List,
        RequestVerb::Watch,
        RequestVerb::Create,
        RequestVerb::Update,
        RequestVerb::Patch,
        RequestVerb::Delete,
        RequestVerb::Other,
    ];

    /// The verb as RBAC names it.
    pub fn as_str(self) -> &'static str {
        match self {
            RequestVerb::Get => "get",
            RequestVerb::List => "list",
            RequestVerb::Watch => "watch",
            RequestVerb::Create => "create",
            RequestVerb::Update => "update",
            RequestVerb::Patch => "patch",
            RequestVerb::Delete => "delete",
            RequestVerb::Other => "other",
        }
    }

    /// Classify an HTTP request the way the API server's RBAC does: a GET of
    /// a collection is a list, with `watch=true` a watch, of one object a get.
    pub fn of(method: &http::Method, path: &str, query: Option<&str>) -> Self {
        let watching = query.is_some_and(|q| {
            q.split('&')
                .any(|pair| pair == "watch=true" || pair == "watch=1")
        });
        match *method {
            http::Method::GET if watching => RequestVerb::Watch,
            http::Method::GET if is_collection_path(path) => RequestVerb::List,
            http::Method::GET => RequestVerb::Get,
            http::Method::POST => RequestVerb::Create,
            http::Method::PUT => RequestVerb::Update,
            http::Method::PATCH => RequestVerb::Patch,
            http::Method::DELETE => RequestVerb::Delete,
            _ => RequestVerb::Other,
        }
    }
}

/// Whether a resource path names a collection (`/api/v1/pods`,
/// `/apis/apps/v1/namespaces/shop/deployments`, `/api/v1/namespaces`) rather
/// than one object or a non-resource path such as `/version`.
fn is_collection_path(path: &str) -> bool {
    let segments: Vec<&str> = path.trim_matches('/').split('/').collect();
    let rest = match segments.as_slice() {
        ["api", _version, rest @ ..] => rest,
        ["apis", _group, _version, rest @ ..] => rest,
        _ => return false,
    };
    matches!(rest, [_] | ["namespaces", _, _])
}

/// Request counters, shared by every clone of one [`ApiClient`].
#[derive(Debug, Default)]
pub struct RequestStats {
    by_verb: [AtomicU64; 8],
    retries: AtomicU64,
}

impl RequestStats {
    fn record(&self, verb: RequestVerb) {
        let index = RequestVerb::ALL
            .iter()
            .position(|v| *v == verb)
            .unwrap_or(7);
        self.by_verb[index].fetch_add(1, Ordering::Relaxed);
    }

    fn record_retry(&self) {
        self.retries.fetch_add(1, Ordering::Relaxed);
    }

    /// HTTP requests sent with this verb (retries included).
    pub fn count(&self, verb: RequestVerb) -> u64 {
        let index = RequestVerb::ALL
            .iter()
            .position(|v| *v == verb)
            .unwrap_or(7);
        self.by_verb[index].load(Ordering::Relaxed)
    }

    /// Every HTTP request sent.
    pub fn total(&self) -> u64 {
        self.by_verb.iter().map(|c| c.load(Ordering::Relaxed)).sum()
    }

    /// Requests that were retries of a failed attempt.
    pub fn retries(&self) -> u64 {
        self.retries.load(Ordering::Relaxed)
    }

    /// One line such as `9 requests: 8 list, 1 get; 0 retries`.
    pub fn summary(&self) -> String {
        let parts: Vec<String> = RequestVerb::ALL
            .iter()
            .filter_map(|verb| {
                let n = self.count(*verb);
                (n > 0).then(|| format!("{n} {}", verb.as_str()))
            })
            .collect();
        let detail = if parts.is_empty() {
            "none".to_string()
        } else {
            parts.join(", ")
        };
        format!(
            "{} API requests: {detail}; {} retries",
            self.total(),
            self.retries()
        )
    }
}

/// The scope types of k8s-openapi kinds, told apart at compile time so error
/// messages can say "in all namespaces" or "cluster-wide" correctly.
pub trait KnownScope {
    const NAMESPACED: bool;
}

impl KnownScope for NamespaceResourceScope {
    const NAMESPACED: bool = true;
}

impl KnownScope for ClusterResourceScope {
    const NAMESPACED: bool = false;
}

/// What a request does, for error sentences and logs.
#[derive(Debug, Clone)]
struct Action {
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
    fn new<K>(
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

    fn non_resource(verb: &'static str, path: &str) -> Self {
        Action {
            verb,
            resource: path.to_string(),
            scope: String::new(),
            selector: None,
        }
    }

    /// "listing pods in namespace shop".
    fn describe(&self) -> String {
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
    /// Read the kubeconfig, apply the flags and build the client. Sends no
    /// request: an unreachable server shows up on the first call.
    pub async fn connect(options: &ConnectOptions) -> anyhow::Result<Self> {
        let loaded = load_kubeconfig(
            options.kubeconfig.as_deref(),
            std::env::var_os("KUBECONFIG"),
            home_dir(),
        )?;
        let resolved = resolve_config(loaded, options).await?;
        let stats = Arc::new(RequestStats::default());
        let client = kube::client::ClientBuilder::try_from(resolved.config)
            .map_err(|err| Error::BadKubeconfig {
                path: resolved.source.clone(),
                reason: format!(
                    "cannot set up the connection to {}: {}",
                    resolved.target,
                    deepest_message(&err)
                ),
            })?
            .with_layer(&ObserveLayer {
                stats: stats.clone(),
            })
            .build();
        Ok(ApiClient {
            client,
            target: resolved.target,
            user: resolved.user,
            default_namespace: resolved.default_namespace,
            write_mode: WriteMode::Write,
            stats,
            retry: RetryPolicy::default(),
            request_timeout: options.request_timeout,
            page_size: DEFAULT_PAGE_SIZE,
        })
    }

    /// A client over any HTTP service (tests use an in-memory one).
    pub fn from_service<S, B>(service: S, target: ClusterTarget, default_namespace: &str) -> Self
    where
        S: Service<Request<kube::client::Body>, Response = Response<B>> + Send + 'static,
        S::Future: Send + 'static,
        S::Error: Into<BoxError>,
        B: http_body::Body<Data = Bytes> + Send + Unpin + 'static,
        B::Error: Into<BoxError>,
    {
        let stats = Arc::new(RequestStats::default());
        let service = ObserveLayer {
            stats: stats.clone(),
        }
        .layer(service);
        ApiClient {
            client: kube::Client::new(service, default_namespace),
            target,
            user: "the current user".to_string(),
            default_namespace: default_namespace.to_string(),
            write_mode: WriteMode::Write,
            stats,
            retry: RetryPolicy::default(),
            request_timeout: None,
            page_size: DEFAULT_PAGE_SIZE,
        }
    }

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

    /// LIST every object of kind `K` in `scope`, page by page, converting each
    /// object with `map` (dropping those it returns `None` for) before the
    /// next page is fetched.
    ///
    /// If the server expires the `continue` token mid-way (410 Gone), the
    /// LIST starts over once, as kubectl's pager does.
    pub async fn list_all<K, T>(
        &self,
        scope: &ListScope,
        selector: &ListSelector,
        map: impl FnMut(K) -> Option<T>,
    ) -> anyhow::Result<Vec<T>>
    where
        K: Resource<DynamicType = ()> + DeserializeOwned + Clone + fmt::Debug,
        K::Scope: KnownScope,
    {
        self.list_versioned(scope, selector, map)
            .await
            .map(|(items, _)| items)
    }

    /// [`ApiClient::list_all`], also returning the list's `resourceVersion`:
    /// where a watch of the same objects starts.
    pub async fn list_versioned<K, T>(
        &self,
        scope: &ListScope,
        selector: &ListSelector,
        mut map: impl FnMut(K) -> Option<T>,
    ) -> anyhow::Result<(Vec<T>, String)>
    where
        K: Resource<DynamicType = ()> + DeserializeOwned + Clone + fmt::Debug,
        K::Scope: KnownScope,
    {
        let action = Action::new::<K>(
            "list",
            scope.namespace(),
            None,
            selector.labels.as_ref().map(LabelSelector::as_str),
        );
        let request = kube::core::Request::new(K::url_path(&(), scope.namespace()));
        let mut out = Vec::new();
        let mut continue_token: Option<String> = None;
        let mut started_over = false;
        loop {
            let params = ListParams {
                label_selector: selector.labels.as_ref().map(|s| s.as_str().to_string()),
                field_selector: selector.fields.clone(),
                limit: Some(self.page_size),
                continue_token: continue_token.clone(),
                ..ListParams::default()
            };
            let page = self
                .send::<ObjectList<K>>(&action, || {
                    request.list(&params).map_err(kube::Error::BuildRequest)
                })
                .await;
            let page = match page {
                Err(err) if is_gone(&err) && continue_token.is_some() && !started_over => {
                    tracing::debug!(
                        "{}: continue token expired, listing again",
                        action.describe()
                    );
                    out.clear();
                    continue_token = None;
                    started_over = true;
                    continue;
                }
                other => other.map_err(|err| self.classify(err, &action))?,
            };
            let next = page.metadata.continue_.filter(|token| !token.is_empty());
            let version = page.metadata.resource_version.unwrap_or_default();
            out.extend(page.items.into_iter().filter_map(&mut map));
            match next {
                Some(token) => continue_token = Some(token),
                None => return Ok((out, version)),
            }
        }
    }

    /// The objects of kind `K` in `scope` matching `selector`, kept current
    /// by a watch: see [`WatchedSet`].
    pub fn watch_set<K>(&self, scope: ListScope, selector: ListSelector) -> WatchedSet<K>
    where
        K: Resource<DynamicType = ()> + DeserializeOwned + Clone + fmt::Debug + Send + 'static,
        K::Scope: KnownScope,
    {
        WatchedSet {
            watch: self.resumable_watch(scope, selector, WATCHED_SET_POLICY),
            objects: std::collections::BTreeMap::new(),
        }
    }

    /// A watch of kind `K` in `scope` that resumes and starts over by
    /// `policy`: see [`ResumableWatch`].
    pub fn resumable_watch<K>(
        &self,
        scope: ListScope,
        selector: ListSelector,
        policy: WatchPolicy,
    ) -> ResumableWatch<K>
    where
        K: Resource<DynamicType = ()> + DeserializeOwned + Clone + fmt::Debug + Send + 'static,
        K::Scope: KnownScope,
    {
        ResumableWatch {
            api: self.clone(),
            scope,
            selector,
            policy,
            resource_version: None,
            stream: None,
            failed_starts: 0,
            pause: None,
        }
    }

    /// GET one object; `None` when it does not exist.
    pub async fn get<K>(&self, namespace: Option<&str>, name: &str) -> anyhow::Result<Option<K>>
    where
        K: Resource<DynamicType = ()> + DeserializeOwned,
        K::Scope: KnownScope,
    {
        let action = Action::new::<K>("get", namespace, Some(name), None);
        let request = kube::core::Request::new(K::url_path(&(), namespace));
        match self
            .send::<K>(&action, || {
                request
                    .get(name, &Default::default())
                    .map_err(kube::Error::BuildRequest)
            })
            .await
        {
            Ok(object) => Ok(Some(object)),
            Err(kube::Error::Api(status)) if status.code == 404 => Ok(None),
            Err(err) => Err(self.classify(err, &action)),
        }
    }

    /// PATCH one object with [`FIELD_MANAGER`], honouring the write mode. A
    /// 409 comes back as [`Error::Conflict`]: re-read and try again.
    pub async fn patch<K>(
        &self,
        namespace: Option<&str>,
        name: &str,
        patch: &PatchBody,
    ) -> anyhow::Result<K>
    where
        K: Resource<DynamicType = ()> + DeserializeOwned,
        K::Scope: KnownScope,
    {
        let action = Action::new::<K>("patch", namespace, Some(name), None);
        self.guard_write(&action)?;
        let params = PatchParams {
            dry_run: self.write_mode == WriteMode::ServerDryRun,
            field_manager: Some(FIELD_MANAGER.to_string()),
            ..PatchParams::default()
        };
        let request = kube::core::Request::new(K::url_path(&(), namespace));
        let build = || -> Result<Request<Vec<u8>>, kube::core::request::Error> {
            match patch {
                PatchBody::Merge(v) => request.patch(name, &params, &Patch::Merge(v)),
                PatchBody::Strategic(v) => request.patch(name, &params, &Patch::Strategic(v)),
                PatchBody::Apply(v) => request.patch(name, &params, &Patch::Apply(v)),
                PatchBody::Json(ops) => {
                    // kube-core builds JSON patches only with its `jsonpatch`
                    // feature; the body is the operations array as written, so
                    // a merge request with the JSON-patch content type is the
                    // same request.
                    let mut req = request.patch(name, &params, &Patch::Merge(ops))?;
                    req.headers_mut().insert(
                        http::header::CONTENT_TYPE,
                        http::HeaderValue::from_static("application/json-patch+json"),
                    );
                    Ok(req)
                }
            }
        };
        self.send::<K>(&action, || build().map_err(kube::Error::BuildRequest))
            .await
            .map_err(|err| self.classify(err, &action))
    }

    /// DELETE one object, honouring the write mode; with `uid`, only if it is
    /// still that object (a replacement with the same name is left alone).
    /// Returns `false` when it was already gone.
    pub async fn delete<K>(
        &self,
        namespace: Option<&str>,
        name: &str,
        uid: Option<&str>,
    ) -> anyhow::Result<bool>
    where
        K: Resource<DynamicType = ()>,
        K::Scope: KnownScope,
    {
        let action = Action::new::<K>("delete", namespace, Some(name), None);
        self.guard_write(&action)?;
        let params = DeleteParams {
            dry_run: self.write_mode == WriteMode::ServerDryRun,
            preconditions: uid.map(|uid| Preconditions {
                uid: Some(uid.to_string()),
                resource_version: None,
            }),
            ..DeleteParams::default()
        };
        let request = kube::core::Request::new(K::url_path(&(), namespace));
        let build = || -> Result<Request<Vec<u8>>, kube::Error> {
            let mut req = request
                .delete(name, &params)
                .map_err(kube::Error::BuildRequest)?;
            if params.dry_run {
                // kube-core puts dryRun only in the DeleteOptions body; the
                // query says it too, so the request log shows it plainly.
                let uri = req.uri().to_string();
                let separator = if uri.ends_with('?') {
                    ""
                } else if uri.contains('?') {
                    "&"
                } else {
                    "?"
                };
                *req.uri_mut() = format!("{uri}{separator}dryRun=All")
                    .parse()
                    .map_err(|e| kube::Error::HttpError(http::Error::from(e)))?;
            }
            Ok(req)
        };
        match self.send::<Value>(&action, build).await {
            Ok(_) => Ok(true),
            Err(kube::Error::Api(status)) if status.code == 404 => Ok(false),
            Err(err) => Err(self.classify(err, &action)),
        }
    }

    /// WATCH kind `K` from `resource_version`. The stream ends after
    /// `timeout` (the server is asked to end it too); a dropped or expired
    /// watch (410) ends it with an error item, and the caller re-lists.
    pub async fn watch<K>(
        &self,
        scope: &ListScope,
        selector: &ListSelector,
        resource_version: &str,
        timeout: Duration,
    ) -> anyhow::Result<Pin<Box<dyn Stream<Item = anyhow::Result<WatchEvent<K>>> + Send>>>
    where
        K: Resource<DynamicType = ()> + DeserializeOwned + Clone + fmt::Debug + Send + 'static,
        K::Scope: KnownScope,
    {
        let action = Action::new::<K>(
            "watch",
            scope.namespace(),
            None,
            selector.labels.as_ref().map(LabelSelector::as_str),
        );
        let mut params = WatchParams::default()
            .timeout(timeout.as_secs().clamp(1, WATCH_WINDOW.as_secs()) as u32);
        params.label_selector = selector.labels.as_ref().map(|s| s.as_str().to_string());
        params.field_selector = selector.fields.clone();
        let request = kube::core::Request::new(K::url_path(&(), scope.namespace()));
        let req = request
            .watch(&params, resource_version)
            .map_err(kube::Error::BuildRequest)
            .map_err(|err| self.classify(err, &action))?;
        let stream = self
            .attempt_with_retries(&action, || {
                let client = self.client.clone();
                let req = clone_request(&req);
                async move { client.request_events::<K>(req).await }
            })
            .await
            .map_err(|err| self.classify(err, &action))?;
        let this = self.clone();
        let stream = stream
            .map(move |item: Result<WatchEvent<K>, kube::Error>| {
                item.map_err(|err| this.classify(err, &action))
            })
            .take_until(tokio::time::sleep(timeout));
        Ok(Box::pin(stream))
    }

    /// The API server's version (`GET /version`).
    pub async fn server_version(
        &self,
    ) -> anyhow::Result<k8s_openapi::apimachinery::pkg::version::Info> {
        let action = Action::non_resource("get", "/version");
        self.send(&action, || {
            Request::get("/version")
                .body(Vec::new())
                .map_err(kube::Error::HttpError)
        })
        .await
        .map_err(|err| self.classify(err, &action))
    }

    fn guard_write(&self, action: &Action) -> anyhow::Result<()> {
        if self.write_mode == WriteMode::ClientDryRun {
            tracing::error!("{} attempted in client dry-run mode", action.describe());
            return Err(Error::DryRunWrite {
                action: action.describe(),
            }
            .into());
        }
        Ok(())
    }

    /// Send a request built by `build`, with retries and the request timeout.
    async fn send<T>(
        &self,
        action: &Action,
        build: impl Fn() -> Result<Request<Vec<u8>>, kube::Error>,
    ) -> Result<T, kube::Error>
    where
        T: DeserializeOwned,
    {
        self.attempt_with_retries(action, || {
            let client = self.client.clone();
            let req = build();
            async move { client.request::<T>(req?).await }
        })
        .await
    }

    /// Run `attempt` until it succeeds, fails for good, or the retries run out.
    async fn attempt_with_retries<T, F, Fut>(
        &self,
        action: &Action,
        mut attempt: F,
    ) -> Result<T, kube::Error>
    where
        F: FnMut() -> Fut,
        Fut: Future<Output = Result<T, kube::Error>>,
    {
        let mut retry = 0;
        loop {
            let result = match self.request_timeout {
                None => attempt().await,
                Some(limit) => match tokio::time::timeout(limit, attempt()).await {
                    Ok(result) => result,
                    Err(_) => return Err(timeout_error(limit)),
                },
            };
            match result {
                Ok(value) => return Ok(value),
                Err(err) => match self.retry.delay_after(&err, retry) {
                    Some(delay) => {
                        tracing::info!(
                            "{} failed ({}); retry {} in {} ms",
                            action.describe(),
                            short_reason(&err),
                            retry + 1,
                            delay.as_millis()
                        );
                        self.stats.record_retry();
                        tokio::time::sleep(delay).await;
                        retry += 1;
                    }
                    None => return Err(err),
                },
            }
        }
    }

    /// Turn a final kube error into the sentence a user can act on.
    fn classify(&self, err: kube::Error, action: &Action) -> anyhow::Error {
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

/// A watch event stream, as [`ApiClient::watch`] returns it.
type EventStream<K> = Pin<Box<dyn Stream<Item = anyhow::Result<WatchEvent<K>>> + Send>>;

/// The longest a WATCH request asks the server to stay open (and the window
/// of a [`ResumableWatch`] waited on without a deadline).
const WATCH_WINDOW: Duration = Duration::from_secs(290);

/// How a [`ResumableWatch`] starts from scratch: on the first call, and
/// whenever it cannot resume (the server's 410 Gone or another error event,
/// a failed stream, a WATCH that could not start).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum WatchOrigin {
    /// LIST, then watch from the list's resourceVersion: the caller gets the
    /// whole set in [`WatchChange::Restarted`], for waits on a set.
    List,
    /// Watch from resourceVersion "0", with no LIST: the server sends the
    /// current objects as ADDED first. For callers that follow objects by
    /// name and judge only states newer than their own write, to whom an
    /// older state sent again is harmless.
    Replay,
}

/// How a [`ResumableWatch`] starts from scratch and how long it keeps trying.
#[derive(Debug, Clone, Copy)]
pub struct WatchPolicy {
    pub origin: WatchOrigin,
    /// WATCHes that failed to start in a row after which
    /// [`ResumableWatch::next_event`] returns the error (and the count
    /// starts again, should the caller call again).
    pub max_failed_starts: u32,
    /// After the nth failed start in a row, it waits n times this before
    /// starting from scratch: a watch that fails at once would otherwise spin.
    pub backoff_step: Duration,
}

/// What a [`ResumableWatch`] saw.
#[derive(Debug)]
pub enum WatchChange<K> {
    /// It started from scratch. With [`WatchOrigin::List`], every object as
    /// listed: the set is now exactly these. With [`WatchOrigin::Replay`],
    /// empty: the current objects follow as [`WatchChange::Added`].
    Restarted(Vec<K>),
    Added(K),
    Modified(K),
    Deleted(K),
}

/// A WATCH that outlives the server ending it, the one place the resume
/// policy is written:
///
/// ```text
/// stream ends (server timeout, the window, a cut) → resume from the last resourceVersion
/// bookmark                                        → remember its resourceVersion
/// ERROR event (410 Gone), failed stream           → start from scratch (WatchOrigin)
/// WATCH cannot start (after ApiClient::watch's    → wait backoff_step × n (n-th in a row),
///   own retries of 429 and 5xx)                       start from scratch; the error after
///                                                     max_failed_starts in a row
/// ```
///
/// Every request goes through [`ApiClient::watch`] (and
/// [`ApiClient::list_versioned`]), which count them. Used by [`WatchedSet`]
/// and by restart-sidecars' watch shared by name.
pub struct ResumableWatch<K> {
    api: ApiClient,
    scope: ListScope,
    selector: ListSelector,
    policy: WatchPolicy,
    /// Where the next WATCH resumes; `None`: start from scratch first.
    resource_version: Option<String>,
    stream: Option<EventStream<K>>,
    /// WATCHes that failed to start in a row.
    failed_starts: u32,
    /// How long to wait before the next start, after a failed one.
    pause: Option<Duration>,
}

impl<K> fmt::Debug for ResumableWatch<K> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("ResumableWatch")
            .field("policy", &self.policy)
            .field("resource_version", &self.resource_version)
            .finish_non_exhaustive()
    }
}

impl<K> ResumableWatch<K>
where
    K: Resource<DynamicType = ()> + DeserializeOwned + Clone + fmt::Debug + Send + 'static,
    K::Scope: KnownScope,
{
    /// The next change. `deadline` bounds the wait: `None` once it passes
    /// without one (an open stream is kept for the next call); with no
    /// deadline each WATCH asks for the longest window (290 s) and the wait
    /// is unbounded.
    /// An error when the LIST of [`WatchOrigin::List`] fails, or after
    /// [`WatchPolicy::max_failed_starts`] failed starts in a row.
    pub async fn next_event(
        &mut self,
        deadline: Option<tokio::time::Instant>,
    ) -> anyhow::Result<Option<WatchChange<K>>> {
        loop {
            if let Some(pause) = self.pause.take() {
                let until = tokio::time::Instant::now() + pause;
                tokio::time::sleep_until(deadline.map_or(until, |d| d.min(until))).await;
            }
            if self.resource_version.is_none() {
                return self.start_from_scratch().await.map(Some);
            }
            let now = tokio::time::Instant::now();
            if deadline.is_some_and(|d| now >= d) {
                return Ok(None);
            }
            if self.stream.is_none() {
                let version = self.resource_version.clone().unwrap_or_default();
                let window = deadline.map_or(WATCH_WINDOW, |d| d - now);
                match self
                    .api
                    .watch::<K>(&self.scope, &self.selector, &version, window)
                    .await
                {
                    Ok(stream) => {
                        self.failed_starts = 0;
                        self.stream = Some(stream);
                    }
                    Err(err) => {
                        self.failed_starts += 1;
                        self.resource_version = None;
                        if self.failed_starts >= self.policy.max_failed_starts {
                            self.failed_starts = 0;
                            self.pause = Some(self.policy.backoff_step);
                            return Err(err);
                        }
                        tracing::debug!("watch could not start ({err:#}); starting from scratch");
                        self.pause = Some(self.policy.backoff_step * self.failed_starts);
                        continue;
                    }
                }
            }
            let Some(stream) = self.stream.as_mut() else {
                continue;
            };
            let item = match deadline {
                None => stream.next().await,
                Some(deadline) => match tokio::time::timeout_at(deadline, stream.next()).await {
                    Err(_) => return Ok(None),
                    Ok(item) => item,
                },
            };
            match item {
                // The server (or the window) ended the stream: resume.
                None => self.stream = None,
                Some(Err(err)) => {
                    tracing::debug!("watch failed ({err:#}); starting from scratch");
                    self.start_over();
                }
                Some(Ok(WatchEvent::Added(object))) => {
                    self.remember_version(&object);
                    return Ok(Some(WatchChange::Added(object)));
                }
                Some(Ok(WatchEvent::Modified(object))) => {
                    self.remember_version(&object);
                    return Ok(Some(WatchChange::Modified(object)));
                }
                Some(Ok(WatchEvent::Deleted(object))) => {
                    self.remember_version(&object);
                    return Ok(Some(WatchChange::Deleted(object)));
                }
                Some(Ok(WatchEvent::Bookmark(bookmark))) => {
                    self.resource_version = Some(bookmark.metadata.resource_version);
                }
                Some(Ok(WatchEvent::Error(status))) => {
                    tracing::debug!(
                        "watch ended with {} {}; starting from scratch",
                        status.code,
                        status.message
                    );
                    self.start_over();
                }
            }
        }
    }

    /// Forget the position: the next call starts from scratch.
    fn start_over(&mut self) {
        self.stream = None;
        self.resource_version = None;
    }

    async fn start_from_scratch(&mut self) -> anyhow::Result<WatchChange<K>> {
        self.stream = None;
        let (listed, version) = match self.policy.origin {
            WatchOrigin::List => {
                self.api
                    .list_versioned::<K, K>(&self.scope, &self.selector, Some)
                    .await?
            }
            // "0": the current objects first (as ADDED), then changes.
            WatchOrigin::Replay => (Vec::new(), "0".to_string()),
        };
        self.resource_version = Some(version);
        Ok(WatchChange::Restarted(listed))
    }

    fn remember_version(&mut self, object: &K) {
        if let Some(version) = object.meta().resource_version.clone() {
            self.resource_version = Some(version);
        }
    }
}

/// A set of objects kept current by LIST then WATCH, for waits that end on
/// a condition ("the Service's EndpointSlices list only the new pods").
///
/// [`WatchedSet::next`] returns the whole set: first as listed, then after
/// each change. The caller evaluates its condition on every set and stops
/// when it holds or when `next` returns `None` at the deadline, so every
/// wait is bounded. The watch is a [`ResumableWatch`] from a LIST: resumed
/// from the last resourceVersion when the server ends it, and the set is
/// listed again when that version has expired (410 Gone), the stream failed
/// or a WATCH could not start: a wait outlives all three.
pub struct WatchedSet<K> {
    watch: ResumableWatch<K>,
    /// By namespace and name.
    objects: std::collections::BTreeMap<(String, String), K>,
}

/// How a [`WatchedSet`] watches: failed starts in a row after which
/// [`WatchedSet::next`] gives up, each waiting a little longer.
const WATCHED_SET_POLICY: WatchPolicy = WatchPolicy {
    origin: WatchOrigin::List,
    max_failed_starts: 5,
    backoff_step: Duration::from_millis(200),
};

impl<K> WatchedSet<K>
where
    K: Resource<DynamicType = ()> + DeserializeOwned + Clone + fmt::Debug + Send + 'static,
    K::Scope: KnownScope,
{
    /// The set now: listed on the first call (and after the watch could not
    /// resume), then after each change. `None` once `deadline` passes
    /// without one.
    pub async fn next(&mut self, deadline: tokio::time::Instant) -> anyhow::Result<Option<Vec<K>>> {
        let Some(change) = self.watch.next_event(Some(deadline)).await? else {
            return Ok(None);
        };
        match change {
            WatchChange::Restarted(listed) => {
                self.objects = listed.into_iter().map(|o| (key_of(&o), o)).collect();
            }
            WatchChange::Added(object) | WatchChange::Modified(object) => {
                self.objects.insert(key_of(&object), object);
            }
            WatchChange::Deleted(object) => {
                self.objects.remove(&key_of(&object));
            }
        }
        Ok(Some(self.objects.values().cloned().collect()))
    }
}

fn key_of<K: Resource>(object: &K) -> (String, String) {
    let meta = object.meta();
    (
        meta.namespace.clone().unwrap_or_default(),
        meta.name.clone().unwrap_or_default(),
    )
}

/// A copy of a bodiless request (a watch's GET), for a retry.
fn clone_request(req: &Request<Vec<u8>>) -> Request<Vec<u8>> {
    let mut copy = Request::new(req.body().clone());
    *copy.method_mut() = req.method().clone();
    *copy.uri_mut() = req.uri().clone();
    *copy.headers_mut() = req.headers().clone();
    copy
}

/// The timeout marker: a kube error whose source is this type means
/// `--request-timeout` ran out.
#[derive(Debug, thiserror::Error)]
#[error("no answer within {0:?}")]
struct RequestTimedOut(Duration);

fn timeout_error(limit: Duration) -> kube::Error {
    kube::Error::Service(Box::new(RequestTimedOut(limit)))
}

fn timeout_of(err: &kube::Error) -> Option<Duration> {
    causes(err).find_map(|cause| cause.downcast_ref::<RequestTimedOut>().map(|t| t.0))
}

fn is_gone(err: &kube::Error) -> bool {
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
fn deepest_message(err: &(dyn StdError + 'static)) -> String {
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
fn is_retryable_transport_error(err: &kube::Error) -> bool {
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

fn short_reason(err: &kube::Error) -> String {
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

/// The kubeconfig as kubectl would assemble it, and where it came from.
#[derive(Debug)]
struct LoadedKubeconfig {
    config: Kubeconfig,
    /// The file(s) read, for messages.
    source: String,
}

fn home_dir() -> Option<PathBuf> {
    std::env::var_os("HOME")
        .or_else(|| std::env::var_os("USERPROFILE"))
        .filter(|h| !h.is_empty())
        .map(PathBuf::from)
}

/// Read the kubeconfig like kubectl: `--kubeconfig` alone if given (it must
/// exist); else each file of `KUBECONFIG` that exists, merged with the first
/// file to set a value winning (kube-rs' `Kubeconfig::merge` implements those
/// rules; kubectl skips missing files, which kube-rs' own loader does not, so
/// the files are read here one by one); else `~/.kube/config`.
fn load_kubeconfig(
    explicit: Option<&Path>,
    kubeconfig_env: Option<std::ffi::OsString>,
    home: Option<PathBuf>,
) -> anyhow::Result<LoadedKubeconfig> {
    let read = |path: &Path| -> anyhow::Result<Kubeconfig> {
        Kubeconfig::read_from(path).map_err(|err| {
            Error::BadKubeconfig {
                path: path.display().to_string(),
                reason: kubeconfig_reason(&err),
            }
            .into()
        })
    };
    if let Some(path) = explicit {
        return Ok(LoadedKubeconfig {
            config: read(path)?,
            source: path.display().to_string(),
        });
    }
    if let Some(value) = kubeconfig_env.filter(|v| !v.is_empty()) {
        let existing: Vec<PathBuf> = std::env::split_paths(&value)
            .filter(|p| !p.as_os_str().is_empty())
            .filter(|p| p.exists())
            .collect();
        if existing.is_empty() {
            return Err(Error::NoKubeconfig.into());
        }
        let mut merged = Kubeconfig::default();
        for path in &existing {
            merged = merged
                .merge(read(path)?)
                .map_err(|err| Error::BadKubeconfig {
                    path: path.display().to_string(),
                    reason: kubeconfig_reason(&err),
                })?;
        }
        let source = existing
            .iter()
            .map(|p| p.display().to_string())
            .collect::<Vec<_>>()
            .join(", ");
        return Ok(LoadedKubeconfig {
            config: merged,
            source,
        });
    }
    let path = home
        .map(|h| h.join(".kube").join("config"))
        .filter(|p| p.exists());
    match path {
        Some(path) => Ok(LoadedKubeconfig {
            config: read(&path)?,
            source: path.display().to_string(),
        }),
        None => Err(Error::NoKubeconfig.into()),
    }
}

fn kubeconfig_reason(err: &kube::config::KubeconfigError) -> String {
    match err {
        kube::config::KubeconfigError::ReadConfig(io, _) => io.to_string(),
        other => deepest_message(other),
    }
}

/// A kube `Config` with the flags applied, and the names for messages.
struct ResolvedConfig {
    config: kube::Config,
    target: ClusterTarget,
    user: String,
    default_namespace: String,
    source: String,
}

async fn resolve_config(
    loaded: LoadedKubeconfig,
    options: &ConnectOptions,
) -> anyhow::Result<ResolvedConfig> {
    let LoadedKubeconfig {
        config: kubeconfig,
        source,
    } = loaded;
    let known_contexts: Vec<String> = kubeconfig.contexts.iter().map(|c| c.name.clone()).collect();
    let context_name = match options
        .context
        .clone()
        .or_else(|| kubeconfig.current_context.clone().filter(|c| !c.is_empty()))
    {
        Some(name) => name,
        None => {
            return Err(Error::NoCurrentContext {
                known: known_contexts,
            }
            .into());
        }
    };
    let Some(context) = kubeconfig
        .contexts
        .iter()
        .find(|c| c.name == context_name)
        .and_then(|c| c.context.clone())
    else {
        return Err(Error::UnknownContext {
            name: context_name,
            known: known_contexts,
        }
        .into());
    };
    let cluster_name = options
        .cluster
        .clone()
        .unwrap_or_else(|| context.cluster.clone());
    if !kubeconfig.clusters.iter().any(|c| c.name == cluster_name) {
        return Err(Error::UnknownCluster {
            name: cluster_name,
            known: kubeconfig.clusters.iter().map(|c| c.name.clone()).collect(),
        }
        .into());
    }
    if let Some(user) = &options.user
        && !kubeconfig.auth_infos.iter().any(|u| &u.name == user)
    {
        return Err(Error::BadKubeconfig {
            path: source,
            reason: format!(
                "user {user:?} is not in it; known users: {}",
                kubeconfig
                    .auth_infos
                    .iter()
                    .map(|u| u.name.clone())
                    .collect::<Vec<_>>()
                    .join(", ")
            ),
        }
        .into());
    }
    if !options.impersonate_groups.is_empty() && options.impersonate_user.is_none() {
        return Err(Error::Usage(
            "--as-group needs --as: say which user to impersonate".to_string(),
        )
        .into());
    }
    let kubeconfig_user = options.user.clone().or_else(|| context.user.clone());
    let kube_options = KubeConfigOptions {
        context: Some(context_name.clone()),
        cluster: options.cluster.clone(),
        user: options.user.clone(),
    };
    let mut config = kube::Config::from_custom_kubeconfig(kubeconfig, &kube_options)
        .await
        .map_err(|err| Error::BadKubeconfig {
            path: source.clone(),
            reason: format!("context {context_name}: {}", kubeconfig_reason(&err)),
        })?;
    // Retries happen in ApiClient, where they are counted and bounded.
    config.default_retry = false;
    if options.insecure_skip_tls_verify {
        config.accept_invalid_certs = true;
    }
    if let Some(user) = &options.impersonate_user {
        config.auth_info.impersonate = Some(user.clone());
        if !options.impersonate_groups.is_empty() {
            config.auth_info.impersonate_groups = Some(options.impersonate_groups.clone());
        }
    }
    if let Some(limit) = options.request_timeout {
        config.connect_timeout = Some(config.connect_timeout.map_or(limit, |c| c.min(limit)));
    }
    let target = ClusterTarget {
        context: context_name,
        server: config
            .cluster_url
            .to_string()
            .trim_end_matches('/')
            .to_string(),
    };
    let user = options
        .impersonate_user
        .clone()
        .or(kubeconfig_user)
        .unwrap_or_else(|| "the anonymous user".to_string());
    let default_namespace = config.default_namespace.clone();
    Ok(ResolvedConfig {
        config,
        target,
        user,
        default_namespace,
        source,
    })
}

/// The tower layer under every request: counts it, logs it without headers,
/// and puts a 429's `Retry-After` header into the Status body.
#[derive(Clone)]
struct ObserveLayer {
    stats: Arc<RequestStats>,
}

impl<S> Layer<S> for ObserveLayer {
    type Service = Observe<S>;

    fn layer(&self, inner: S) -> Observe<S> {
        Observe {
            inner,
            stats: self.stats.clone(),
        }
    }
}

#[derive(Clone)]
struct Observe<S> {
    inner: S,
    stats: Arc<RequestStats>,
}

type ObservedBody<B> = Either<B, Full<Bytes>>;

impl<S, B> Service<Request<kube::client::Body>> for Observe<S>
where
    S: Service<Request<kube::client::Body>, Response = Response<B>>,
    S::Future: Send + 'static,
    S::Error: Into<BoxError>,
    B: http_body::Body<Data = Bytes> + Send + Unpin + 'static,
    B::Error: Into<BoxError>,
{
    type Response = Response<ObservedBody<B>>;
    type Error = BoxError;
    type Future = Pin<Box<dyn Future<Output = Result<Self::Response, BoxError>> + Send>>;

    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), Self::Error>> {
        self.inner.poll_ready(cx).map_err(Into::into)
    }

    fn call(&mut self, req: Request<kube::client::Body>) -> Self::Future {
        let verb = RequestVerb::of(req.method(), req.uri().path(), req.uri().query());
        self.stats.record(verb);
        // Only the method and the path with its query: never headers.
        let line = format!(
            "{} {}",
            req.method(),
            req.uri().path_and_query().map_or("/", |pq| pq.as_str())
        );
        let started = Instant::now();
        let response = self.inner.call(req);
        Box::pin(async move {
            let response = match response.await {
                Ok(response) => response,
                Err(err) => {
                    let err: BoxError = err.into();
                    tracing::debug!(
                        "{line} -> failed after {} ms: {err}",
                        started.elapsed().as_millis()
                    );
                    return Err(err);
                }
            };
            tracing::debug!(
                "{line} -> {} in {} ms",
                response.status().as_u16(),
                started.elapsed().as_millis()
            );
            if response.status() != StatusCode::TOO_MANY_REQUESTS {
                return Ok(response.map(Either::Left));
            }
            let retry_after = response
                .headers()
                .get(http::header::RETRY_AFTER)
                .and_then(|v| v.to_str().ok())
                .and_then(|v| v.trim().parse::<u64>().ok());
            let (parts, body) = response.into_parts();
            let bytes = body.collect().await.map_err(Into::into)?.to_bytes();
            let body = with_retry_after(&bytes, retry_after);
            Ok(Response::from_parts(parts, Either::Right(Full::new(body))))
        })
    }
}

/// A 429 body as a Status that carries `retryAfterSeconds` when the header
/// gave one and the body did not (API Priority and Fairness answers with a
/// plain-text body and only the header).
fn with_retry_after(body: &[u8], retry_after: Option<u64>) -> Bytes {
    let mut status: Value = serde_json::from_slice(body).unwrap_or_else(|_| {
        serde_json::json!({
            "kind": "Status",
            "apiVersion": "v1",
            "status": "Failure",
            "message": String::from_utf8_lossy(body).trim(),
            "reason": "TooManyRequests",
            "code": 429,
        })
    });
    if let (Some(seconds), Some(object)) = (retry_after, status.as_object_mut()) {
        let details = object
            .entry("details")
            .or_insert_with(|| serde_json::json!({}));
        if let Some(details) = details.as_object_mut() {
            details
                .entry("retryAfterSeconds")
                .or_insert(serde_json::json!(seconds));
        }
    }
    Bytes::from(serde_json::to_vec(&status).unwrap_or_else(|_| body.to_vec()))
}

#[cfg(test)]
pub(crate) mod fake;

#[cfg(test)]
mod tests;

#[cfg(test)]
mod watched_set_tests;
