//! Requests: LIST (always paginated), GET, PATCH, DELETE and `GET /version`,
//! each with the request timeout, the retries and the write mode.
//!
//! - **LIST** is paginated (`limit`/`continue`) and each page is converted by
//!   the caller's function before the next is fetched, so a 50,000-pod
//!   cluster never sits in memory as full objects; an expired `continue`
//!   token (410) starts the LIST over once, as kubectl's pager does.
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

use std::fmt;
use std::future::Future;
use std::time::Duration;

use http::Request;
use kube::core::params::{DeleteParams, ListParams, Patch, PatchParams, Preconditions};
use kube::core::{ClusterResourceScope, NamespaceResourceScope, ObjectList, Resource};
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

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

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
