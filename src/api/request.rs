//! Requests: LIST (always paginated), GET, PATCH, DELETE and `GET /version`,
//! each with the request timeout, the retries and the write mode.
//!
//! - **LIST** is paginated (`limit`/`continue`). A page's `continue` token is
//!   read from its list head and the next page requested at once, while the
//!   page is decoded (by the caller's page decoder on a blocking thread,
//!   [`ApiClient::list_pages`], or object by object as k8s-openapi types,
//!   [`ApiClient::list_all`]), so a 50,000-pod cluster never sits in memory
//!   as full objects or as more than a few pages of bytes; an expired
//!   `continue` token (410) starts the LIST over once, as kubectl's pager does.
//!   A LIST whose decoder also reads Kubernetes' protobuf
//!   ([`ListEncoding::ProtobufOrJson`]) asks for protobuf first, as
//!   client-go's typed clients do; the server may answer either, and each
//!   page says which (protobuf begins with `k8s\0`).
//! - **Writes** (`patch`, `delete`) carry the [`WriteMode`]: `dryRun=All` for
//!   a server dry run, and in client dry-run mode any write is refused with an
//!   error — a bug guard, since client dry-run must never reach the server.
//! - **Creates** come in two kinds. [`ApiClient::create_dry_run`] is always
//!   `dryRun=All` whatever the write mode (the plugin asks the API server
//!   what it *would* admit, e.g. an injected pod), and its guard refuses a
//!   built request that does not say so. [`ApiClient::create`] is a write
//!   like a patch (`tag set` creating a tag's webhook configuration): it
//!   carries the write mode, and client dry-run refuses it.
//! - **Retries** live here only ([`RetryPolicy`]): 429 waits for the server's
//!   `Retry-After` (the Observe layer copies the header into the Status'
//!   `retryAfterSeconds` because kube-rs drops response headers on errors),
//!   5xx and dropped connections back off exponentially a bounded number of
//!   times, and 409 surfaces as [`crate::error::Error::Conflict`] for the
//!   caller to re-read.

use std::collections::VecDeque;
use std::fmt;
use std::future::Future;
use std::sync::Arc;
use std::time::Duration;

use http::Request;
use kube::core::params::{DeleteParams, ListParams, Patch, PatchParams, Preconditions};
use kube::core::{ClusterResourceScope, NamespaceResourceScope, Resource};
use serde::de::DeserializeOwned;
use serde_json::Value;

use super::ApiClient;
use super::classify::{Action, is_gone, is_retryable_transport_error, short_reason, timeout_error};
use crate::error::Error;
use crate::selector::LabelSelector;

/// The field manager recorded for every write (server-side apply and patches).
pub const FIELD_MANAGER: &str = "kubectl-mesh-upgrade";

/// Objects per LIST page: large enough that a big cluster needs few round
/// trips, small enough that one page of pods stays a few MB.
pub const DEFAULT_PAGE_SIZE: u32 = 500;

/// Pages of one LIST decoded at the same time by [`ApiClient::list_pages`].
pub const PAGES_DECODED_AT_ONCE: usize = 2;

/// What a paginated LIST asks the server for.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ListEncoding {
    /// JSON only (no `Accept` header: JSON is the API server's default).
    Json,
    /// Kubernetes' protobuf, or JSON where the server has no protobuf for
    /// the kind (a custom resource, a proxy that speaks only JSON).
    ProtobufOrJson,
}

/// The `Accept` header of a [`ListEncoding::ProtobufOrJson`] LIST: what
/// client-go's typed clients send.
const PROTOBUF_OR_JSON: &str = "application/vnd.kubernetes.protobuf, application/json";

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
    pub(super) fn namespace(&self) -> Option<&str> {
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

/// A create may leave the plugin only as a dry run.
fn guard_dry_run_create(req: &Request<Vec<u8>>) -> Result<(), kube::Error> {
    let dry_run = req
        .uri()
        .query()
        .is_some_and(|q| q.split('&').any(|pair| pair == "dryRun=All"));
    if req.method() == http::Method::POST && !dry_run {
        tracing::error!("a create without dryRun=All was refused before sending");
        return Err(kube::Error::BuildRequest(
            kube::core::request::Error::Validation(
                "creates are sent only with dryRun=All".to_string(),
            ),
        ));
    }
    Ok(())
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
                    // A PodDisruptionBudget refusing an eviction is an
                    // answer, not throttling: the caller waits for the budget.
                    429 if is_disruption_budget_refusal(status) && server_wait.is_none() => None,
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

/// Whether a 429 is an eviction refused by a PodDisruptionBudget (its
/// `details.causes` carry the `DisruptionBudget` reason).
pub(super) fn is_disruption_budget_refusal(status: &kube::core::Status) -> bool {
    status
        .details
        .as_ref()
        .is_some_and(|d| d.causes.iter().any(|c| c.reason == "DisruptionBudget"))
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

impl ApiClient {
    /// LIST every object of kind `K` in `scope`, page by page, converting each
    /// object with `map` (dropping those it returns `None` for) as its page
    /// arrives, so no more than two pages are ever held as bytes and one as
    /// full objects.
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
        self.page_loop::<K, T>(scope, selector, ListEncoding::Json, |body| {
            let mut items = Vec::new();
            let decoded = serde_json::from_slice::<ListItems<K>>(&body).map(|list| {
                items.extend(list.items.into_iter().flatten().filter_map(&mut map));
            });
            PageDecode::Done(decoded.map(|()| items), body)
        })
        .await
    }

    /// LIST every object of kind `K` in `scope`, handing each page's body to
    /// `decode`, which reads the items it needs straight from the bytes (a
    /// lean decoder that skips what the caller does not keep, see
    /// `crate::snapshot::decode`) and pushes them onto the list it is given.
    /// Returns the items of every page in order, and the list's
    /// `resourceVersion`.
    ///
    /// Fetching and decoding overlap: as soon as a page has arrived, its
    /// `continue` token is read from the list head (which precedes the
    /// items) and the next page is requested, on a task of its own, while
    /// this page is decoded on a blocking thread; up to
    /// [`PAGES_DECODED_AT_ONCE`] pages decode at once, so a LIST whose
    /// pages arrive faster than one thread decodes them uses a second. The
    /// decoded pages are put back in order. Following the `continue` tokens
    /// is what keeps the pages one consistent snapshot: the API server
    /// serves every later page at the `resourceVersion` of the first (a
    /// token too old for that is 410 Gone, and the LIST starts over once, as
    /// kubectl's pager does).
    ///
    /// `encoding` says what to ask for: a decoder that reads protobuf pages
    /// too (they begin with `k8s\0`) is given whichever the server answers.
    pub async fn list_pages<K, T>(
        &self,
        scope: &ListScope,
        selector: &ListSelector,
        encoding: ListEncoding,
        decode: impl Fn(&[u8], &mut Vec<T>) -> Result<(), serde_json::Error> + Send + Sync + 'static,
    ) -> anyhow::Result<(Vec<T>, String)>
    where
        K: Resource<DynamicType = ()>,
        K::Scope: KnownScope,
        T: Send + 'static,
    {
        let decode = Arc::new(decode);
        // A page holds at most `limit` items: room for them up front spares
        // the decoder growing (and copying) its vector nine times a page.
        let page_size = self.page_size as usize;
        self.page_loop::<K, T>(scope, selector, encoding, move |body| {
            let decode = decode.clone();
            PageDecode::Running(tokio::task::spawn_blocking(move || {
                let mut items = Vec::with_capacity(page_size);
                let decoded = decode(&body, &mut items);
                (decoded.map(|()| items), body)
            }))
        })
        .await
    }

    /// The paginated LIST both of the above run: each page's body, once
    /// its continue token has been read and the next page asked for, goes
    /// to `start_decoding`; the decoded pages are collected in order and
    /// their buffers reused for later pages, so at most
    /// [`PAGES_DECODED_AT_ONCE`] + 2 pages are ever held as bytes.
    async fn page_loop<K, T>(
        &self,
        scope: &ListScope,
        selector: &ListSelector,
        encoding: ListEncoding,
        mut start_decoding: impl FnMut(Vec<u8>) -> PageDecode<T>,
    ) -> anyhow::Result<(Vec<T>, String)>
    where
        K: Resource<DynamicType = ()>,
        K::Scope: KnownScope,
    {
        let action = Action::new::<K>(
            "list",
            scope.namespace(),
            None,
            selector.labels.as_ref().map(LabelSelector::as_str),
        );
        let pager = Pager {
            api: self.clone(),
            action: action.clone(),
            request: kube::core::Request::new(K::url_path(&(), scope.namespace())),
            labels: selector.labels.as_ref().map(|s| s.as_str().to_string()),
            fields: selector.fields.clone(),
            encoding,
        };
        let unreadable = |err| self.classify(kube::Error::SerdeError(err), &action);
        let mut out = Vec::new();
        let mut decoding: VecDeque<PageDecode<T>> = VecDeque::new();
        let mut buffers: Vec<Vec<u8>> = Vec::new();
        let mut started_over = false;
        // The page being fetched, and the continue token it was asked with.
        let mut next = Some(pager.fetch(None, Vec::new()));
        while let Some(fetching) = next.take() {
            let (asked_with, page) = fetching.result().await;
            let body = match page {
                Err(err) if is_gone(&err) && asked_with.is_some() && !started_over => {
                    tracing::debug!(
                        "{}: continue token expired, listing again",
                        action.describe()
                    );
                    out.clear();
                    decoding.clear();
                    started_over = true;
                    next = Some(pager.fetch(None, buffers.pop().unwrap_or_default()));
                    continue;
                }
                other => other.map_err(|err| self.classify(err, &action))?,
            };
            let head = list_head(&body).map_err(unreadable)?;
            if let Some(token) = head.continue_token {
                next = Some(pager.fetch(Some(token), buffers.pop().unwrap_or_default()));
            }
            while decoding.len() >= PAGES_DECODED_AT_ONCE || next.is_none() && !decoding.is_empty()
            {
                let oldest = decoding.pop_front().expect("a page is decoding");
                let (items, buffer) = oldest.finish().await;
                out.extend(items.map_err(unreadable)?);
                buffers.push(buffer);
            }
            decoding.push_back(start_decoding(body));
            if next.is_none() {
                let last = decoding.pop_front().expect("the last page is decoding");
                out.extend(last.finish().await.0.map_err(unreadable)?);
                return Ok((out, head.resource_version));
            }
        }
        unreachable!("the loop returns at the last page")
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

    /// POST `object` (JSON of kind `K`) with [`FIELD_MANAGER`], honouring
    /// the write mode. An existing object of the name comes back as
    /// [`Error::Conflict`] (409 AlreadyExists): read it and decide.
    pub async fn create<K>(&self, namespace: Option<&str>, object: &Value) -> anyhow::Result<K>
    where
        K: Resource<DynamicType = ()> + DeserializeOwned,
        K::Scope: KnownScope,
    {
        let action = Action::new::<K>("create", namespace, None, None);
        self.guard_write(&action)?;
        let params = kube::core::params::PostParams {
            dry_run: self.write_mode == WriteMode::ServerDryRun,
            field_manager: Some(FIELD_MANAGER.to_string()),
        };
        let body = serde_json::to_vec(object)
            .map_err(|e| anyhow::anyhow!("{}: {e}", action.describe()))?;
        let request = kube::core::Request::new(K::url_path(&(), namespace));
        self.send::<K>(&action, || {
            request
                .create(&params, body.clone())
                .map_err(kube::Error::BuildRequest)
        })
        .await
        .map_err(|err| self.classify(err, &action))
    }

    /// POST `object` with `dryRun=All`: the API server runs admission (the
    /// mutating webhooks included) and answers with the object it would
    /// store, storing nothing. Sent in every write mode, since it writes
    /// nothing; the guard refuses the request if `dryRun=All` is missing.
    pub async fn create_dry_run<K>(&self, namespace: Option<&str>, object: &K) -> anyhow::Result<K>
    where
        K: Resource<DynamicType = ()> + DeserializeOwned + serde::Serialize,
        K::Scope: KnownScope,
    {
        let action = Action::new::<K>("create", namespace, None, None);
        let params = kube::core::params::PostParams {
            dry_run: true,
            field_manager: Some(FIELD_MANAGER.to_string()),
        };
        let body = serde_json::to_vec(object)
            .map_err(|e| anyhow::anyhow!("{}: {e}", action.describe()))?;
        let request = kube::core::Request::new(K::url_path(&(), namespace));
        let build = || -> Result<Request<Vec<u8>>, kube::Error> {
            let req = request
                .create(&params, body.clone())
                .map_err(kube::Error::BuildRequest)?;
            guard_dry_run_create(&req)?;
            Ok(req)
        };
        self.send::<K>(&action, build)
            .await
            .map_err(|err| self.classify(err, &action))
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

    pub(super) fn guard_write(&self, action: &Action) -> anyhow::Result<()> {
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
    pub(super) async fn send<T>(
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
    pub(super) async fn attempt_with_retries<T, F, Fut>(
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
}

/// The items of a list page, decoded as `K` (absent or `null`: none).
#[derive(serde::Deserialize)]
#[serde(bound(deserialize = "K: DeserializeOwned"))]
struct ListItems<K> {
    #[serde(default)]
    items: Option<Vec<K>>,
}

/// What the next request of a paginated LIST needs from a page.
#[derive(Debug, Default, PartialEq, Eq)]
struct ListHead {
    /// `metadata.continue`: where the next page starts (`None`: last page).
    continue_token: Option<String>,
    /// `metadata.resourceVersion`: the snapshot the pages are served at.
    resource_version: String,
}

/// Reads a list page's `metadata` without decoding its items when, as API
/// servers write it, the metadata comes first: decoding stops at `items`
/// once the metadata has been read. (Written the other way round, the items
/// are skipped unread and the metadata read after them.)
fn list_head(body: &[u8]) -> Result<ListHead, serde_json::Error> {
    if crate::protobuf::is_protobuf(body) {
        let (continue_token, resource_version) = crate::protobuf::list_head(body)?;
        return Ok(ListHead {
            continue_token,
            resource_version,
        });
    }
    use serde::de::{DeserializeSeed, Error as _, IgnoredAny, MapAccess, Visitor};

    #[derive(serde::Deserialize, Default)]
    struct Meta {
        #[serde(default, rename = "continue")]
        continue_token: Option<String>,
        #[serde(default, rename = "resourceVersion")]
        resource_version: Option<String>,
    }

    #[derive(serde::Deserialize)]
    #[serde(field_identifier, rename_all = "lowercase")]
    enum Key {
        Metadata,
        Items,
        #[serde(other)]
        Other,
    }

    /// Fills the slot with the metadata; stops at `items` once it is filled.
    struct Head<'s>(&'s mut Option<Meta>);

    const HEAD_READ: &str = "the list head has been read";

    impl<'de> DeserializeSeed<'de> for Head<'_> {
        type Value = ();
        fn deserialize<D: serde::Deserializer<'de>>(self, d: D) -> Result<(), D::Error> {
            d.deserialize_map(self)
        }
    }

    impl<'de> Visitor<'de> for Head<'_> {
        type Value = ();
        fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
            f.write_str("a list")
        }
        fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<(), A::Error> {
            while let Some(key) = map.next_key::<Key>()? {
                match key {
                    Key::Metadata => {
                        *self.0 = Some(map.next_value::<Option<Meta>>()?.unwrap_or_default())
                    }
                    Key::Items if self.0.is_some() => return Err(A::Error::custom(HEAD_READ)),
                    Key::Items | Key::Other => {
                        map.next_value::<IgnoredAny>()?;
                    }
                }
            }
            Ok(())
        }
    }

    let mut meta = None;
    let mut deserializer = serde_json::Deserializer::from_slice(body);
    match Head(&mut meta).deserialize(&mut deserializer) {
        Ok(()) => {}
        Err(err) if meta.is_none() || !err.to_string().starts_with(HEAD_READ) => return Err(err),
        Err(_) => {}
    }
    let meta = meta.unwrap_or_default();
    Ok(ListHead {
        continue_token: meta.continue_token.filter(|token| !token.is_empty()),
        resource_version: meta.resource_version.unwrap_or_default(),
    })
}

/// Fetches the pages of one LIST, each on a task of its own so the caller
/// can decode the previous page meanwhile.
struct Pager {
    api: ApiClient,
    action: Action,
    request: kube::core::Request,
    labels: Option<String>,
    fields: Option<String>,
    encoding: ListEncoding,
}

impl Pager {
    /// Start fetching the page that `continue_token` points at (the first
    /// page when `None`) into `buffer`, with the API layer's retries and
    /// request timeout.
    fn fetch(&self, continue_token: Option<String>, buffer: Vec<u8>) -> PageFetch {
        let params = ListParams {
            label_selector: self.labels.clone(),
            field_selector: self.fields.clone(),
            limit: Some(self.api.page_size),
            continue_token: continue_token.clone(),
            ..ListParams::default()
        };
        let built = self.request.list(&params).map(|mut request| {
            if self.encoding == ListEncoding::ProtobufOrJson {
                request.headers_mut().insert(
                    http::header::ACCEPT,
                    http::HeaderValue::from_static(PROTOBUF_OR_JSON),
                );
            }
            request
        });
        let api = self.api.clone();
        let action = self.action.clone();
        let task = tokio::spawn(async move {
            let built = built.map_err(kube::Error::BuildRequest)?;
            let mut buffer = buffer;
            api.attempt_with_retries(&action, || {
                let client = api.client.clone();
                let request = clone_request(&built);
                let mut buffer = std::mem::take(&mut buffer);
                async move {
                    receive_body(&client, request, &mut buffer).await?;
                    Ok(buffer)
                }
            })
            .await
        });
        PageFetch {
            continue_token,
            task: Some(task),
        }
    }
}

/// A page's items being decoded: already (on the caller's task), or on a
/// blocking thread; either way with the page's buffer, to be reused.
enum PageDecode<T> {
    Done(Result<Vec<T>, serde_json::Error>, Vec<u8>),
    Running(tokio::task::JoinHandle<DecodedPage<T>>),
}

/// A decoded page's items, and its buffer.
type DecodedPage<T> = (Result<Vec<T>, serde_json::Error>, Vec<u8>);

impl<T> PageDecode<T> {
    async fn finish(self) -> DecodedPage<T> {
        match self {
            PageDecode::Done(items, buffer) => (items, buffer),
            PageDecode::Running(task) => match task.await {
                Ok(done) => done,
                Err(join) if join.is_panic() => std::panic::resume_unwind(join.into_panic()),
                Err(join) => (
                    Err(serde::de::Error::custom(format!(
                        "decoding a page stopped: {join}"
                    ))),
                    Vec::new(),
                ),
            },
        }
    }
}

/// A page being fetched. Dropping it (the LIST failed or was abandoned)
/// stops the fetch.
struct PageFetch {
    continue_token: Option<String>,
    task: Option<tokio::task::JoinHandle<Result<Vec<u8>, kube::Error>>>,
}

impl PageFetch {
    /// The continue token the page was asked with, and the page's body.
    async fn result(mut self) -> (Option<String>, Result<Vec<u8>, kube::Error>) {
        let task = self.task.take().expect("a page fetch is awaited once");
        let body = match task.await {
            Ok(body) => body,
            Err(join) if join.is_panic() => std::panic::resume_unwind(join.into_panic()),
            Err(join) => Err(kube::Error::Service(Box::new(join))),
        };
        (self.continue_token.take(), body)
    }
}

impl Drop for PageFetch {
    fn drop(&mut self) {
        if let Some(task) = &self.task {
            task.abort();
        }
    }
}

fn clone_request(request: &Request<Vec<u8>>) -> Request<Vec<u8>> {
    let mut copy = Request::new(request.body().clone());
    *copy.method_mut() = request.method().clone();
    *copy.uri_mut() = request.uri().clone();
    *copy.headers_mut() = request.headers().clone();
    copy
}

/// Send `request` and read the whole body into `buffer` (emptied first;
/// no UTF-8 copy, no decoding); an error status becomes `kube::Error::Api`
/// with the server's Status, as kube's own requests do.
async fn receive_body(
    client: &kube::Client,
    request: Request<Vec<u8>>,
    buffer: &mut Vec<u8>,
) -> Result<(), kube::Error> {
    use http_body_util::BodyExt;
    let response = client.send(request.map(kube::client::Body::from)).await?;
    let status = response.status();
    let mut body = response.into_body();
    buffer.clear();
    while let Some(frame) = body.frame().await {
        if let Ok(data) = frame?.into_data() {
            buffer.extend_from_slice(&data);
        }
    }
    if status.is_client_error() || status.is_server_error() {
        // A request that asked for protobuf gets its error in protobuf too.
        let parsed = match crate::protobuf::is_protobuf(buffer) {
            true => crate::protobuf::status(buffer)
                .map_err(|_| ())
                .and_then(|status| serde_json::from_value(status.to_json()).map_err(|_| ())),
            false => serde_json::from_slice::<kube::core::Status>(buffer).map_err(|_| ()),
        };
        let failure = parsed.unwrap_or_else(|()| {
            let text = String::from_utf8_lossy(buffer);
            kube::core::Status::failure(text.trim(), "Failed to parse error data")
                .with_code(status.as_u16())
        });
        return Err(kube::Error::Api(failure.boxed()));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    #[test]
    fn the_list_head_is_read_without_decoding_the_items() {
        // The items after the head are not even valid JSON: decoding stops before them.
        let head = list_head(
            br#"{"kind":"PodList","apiVersion":"v1","metadata":{"resourceVersion":"12","continue":"abc","remainingItemCount":3},"items":[{"broken"#,
        )
        .unwrap();
        assert_eq!(
            head,
            ListHead {
                continue_token: Some("abc".into()),
                resource_version: "12".into(),
            }
        );
        // Written the other way round, the items are skipped to reach it.
        let head =
            list_head(br#"{"items":[{"metadata":{"name":"a"}}],"metadata":{"continue":""}}"#)
                .unwrap();
        assert_eq!(head, ListHead::default());
        assert_eq!(
            list_head(br#"{"items":null}"#).unwrap(),
            ListHead::default()
        );
        assert!(list_head(br#"{"metadata":"#).is_err());
        assert!(list_head(b"<html>").is_err());
    }

    #[test]
    fn retry_decisions_follow_the_status_code() {
        let policy = RetryPolicy::default();
        let api = |code: u16, retry_after: u32| {
            let mut status = kube::core::Status::failure("x", "y").with_code(code);
            if retry_after > 0 {
                status.details = Some(
                    serde_json::from_value(json!({"retryAfterSeconds": retry_after})).unwrap(),
                );
            }
            kube::Error::Api(Box::new(status))
        };
        assert_eq!(
            policy.delay_after(&api(429, 7), 0),
            Some(Duration::from_secs(7))
        );
        assert_eq!(policy.delay_after(&api(429, 0), 0), Some(policy.base_delay));
        assert_eq!(
            policy.delay_after(&api(503, 0), 2),
            Some(policy.base_delay * 4)
        );
        assert_eq!(policy.delay_after(&api(500, 0), policy.max_retries), None);
        assert_eq!(
            policy.delay_after(&api(500, 0), 4),
            Some(policy.base_delay * 16).map(|d| d.min(policy.max_delay))
        );
        for final_code in [400, 401, 403, 404, 409, 410, 422] {
            assert_eq!(
                policy.delay_after(&api(final_code, 0), 0),
                None,
                "{final_code}"
            );
        }
        assert_eq!(
            policy.delay_after(&api(429, 3600), 0),
            Some(policy.max_retry_after)
        );
    }
}
