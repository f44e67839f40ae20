//! Watches: one WATCH request ([`ApiClient::watch`]), and the resume policy
//! every caller shares, written once in [`ResumableWatch`]; [`WatchedSet`]
//! keeps a set of objects current on top of it.
//!
//! A watch resumes from the last resourceVersion when the server ends it and
//! starts from scratch on 410 Gone, a failed stream or a WATCH that could not
//! start; every wait on it is bounded by its caller's deadline. A caller that
//! made its own LIST starts the watch at that LIST's resourceVersion
//! ([`ResumableWatch::starting_at`]) and says what a relist keeps of each
//! object ([`ApiClient::resumable_watch_keeping`]), as `status --watch` does.

use std::fmt;
use std::pin::Pin;
use std::sync::Arc;
use std::time::Duration;

use futures::{Stream, StreamExt};
use http::Request;
use kube::core::params::WatchParams;
use kube::core::{Resource, WatchEvent};
use serde::de::DeserializeOwned;

use super::ApiClient;
use super::classify::Action;
use super::request::{KnownScope, ListScope, ListSelector};
use crate::selector::LabelSelector;

impl ApiClient {
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
        self.resumable_watch_keeping(scope, selector, policy, Some)
    }

    /// [`ApiClient::resumable_watch`] whose LISTs (when it starts from
    /// scratch) keep `keep(object)` of each object, converted page by page
    /// as [`ApiClient::list_all`] does: a relist of 50,000 pods never sits
    /// in memory as full objects. Events still carry whole objects, one at
    /// a time.
    pub fn resumable_watch_keeping<K, T>(
        &self,
        scope: ListScope,
        selector: ListSelector,
        policy: WatchPolicy,
        keep: impl Fn(K) -> Option<T> + Send + Sync + 'static,
    ) -> ResumableWatch<K, T>
    where
        K: Resource<DynamicType = ()> + DeserializeOwned + Clone + fmt::Debug + Send + 'static,
        K::Scope: KnownScope,
    {
        ResumableWatch {
            api: self.clone(),
            scope,
            selector,
            policy,
            keep: Arc::new(keep),
            resource_version: None,
            stream: None,
            failed_starts: 0,
            pause: None,
            forbidden_is_final: false,
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

/// What a [`ResumableWatch`] saw. `T` is what its LISTs keep of each
/// object (the object itself unless made with
/// [`ApiClient::resumable_watch_keeping`]).
#[derive(Debug)]
pub enum WatchChange<K, T = K> {
    /// It started from scratch. With [`WatchOrigin::List`], every object as
    /// listed: the set is now exactly these. With [`WatchOrigin::Replay`],
    /// empty: the current objects follow as [`WatchChange::Added`].
    Restarted(Vec<T>),
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
/// [`ApiClient::list_versioned`]), which count them. Used by [`WatchedSet`],
/// by restart-sidecars' watch shared by name and by `status --watch`, which
/// starts each watch where its own LIST stood ([`ResumableWatch::starting_at`]).
pub struct ResumableWatch<K, T = K> {
    api: ApiClient,
    scope: ListScope,
    selector: ListSelector,
    policy: WatchPolicy,
    /// What a LIST keeps of each object.
    keep: Keep<K, T>,
    /// Where the next WATCH resumes; `None`: start from scratch first.
    resource_version: Option<String>,
    stream: Option<EventStream<K>>,
    /// WATCHes that failed to start in a row.
    failed_starts: u32,
    /// How long to wait before the next start, after a failed one.
    pause: Option<Duration>,
    /// A refused (403) WATCH is returned at once, not started over.
    forbidden_is_final: bool,
}

/// A LIST's conversion of each object, page by page.
type Keep<K, T> = Arc<dyn Fn(K) -> Option<T> + Send + Sync>;

impl<K, T> fmt::Debug for ResumableWatch<K, T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("ResumableWatch")
            .field("policy", &self.policy)
            .field("resource_version", &self.resource_version)
            .finish_non_exhaustive()
    }
}

impl<K, T> ResumableWatch<K, T>
where
    K: Resource<DynamicType = ()> + DeserializeOwned + Clone + fmt::Debug + Send + 'static,
    K::Scope: KnownScope,
{
    /// Start by watching from `resource_version`, where the caller's own
    /// LIST of the same objects (same scope, same selector) was taken, so
    /// the first call makes no LIST and no change since that LIST is
    /// missed. It starts from scratch as usual when that version has
    /// expired (410).
    pub fn starting_at(mut self, resource_version: impl Into<String>) -> Self {
        self.resource_version = Some(resource_version.into());
        self
    }

    /// A WATCH the server refuses (403) is returned as the error at once,
    /// instead of being started over [`WatchPolicy::max_failed_starts`]
    /// times (each with a LIST): for a caller to whom a missing permission
    /// is final rather than a moment's trouble.
    pub fn forbidden_is_final(mut self) -> Self {
        self.forbidden_is_final = true;
        self
    }

    /// The next change. `deadline` bounds the wait: `None` once it passes
    /// without one (an open stream is kept for the next call); with no
    /// deadline each WATCH asks for the longest window (290 s) and the wait
    /// is unbounded.
    /// An error when the LIST of [`WatchOrigin::List`] fails, or after
    /// [`WatchPolicy::max_failed_starts`] failed starts in a row.
    pub async fn next_event(
        &mut self,
        deadline: Option<tokio::time::Instant>,
    ) -> anyhow::Result<Option<WatchChange<K, T>>> {
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
                        let refused = self.forbidden_is_final && crate::error::is_forbidden(&err);
                        if refused || self.failed_starts >= self.policy.max_failed_starts {
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

    async fn start_from_scratch(&mut self) -> anyhow::Result<WatchChange<K, T>> {
        self.stream = None;
        let (listed, version) = match self.policy.origin {
            WatchOrigin::List => {
                let keep = self.keep.clone();
                self.api
                    .list_versioned::<K, T>(&self.scope, &self.selector, |object| keep(object))
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
