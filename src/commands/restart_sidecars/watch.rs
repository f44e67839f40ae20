//! One watch per kind and namespace, shared by every rollout waited for.
//!
//! Waiting for 200 rollouts with a watch each would cost 200 WATCH requests
//! (plus a GET each to learn where to start); one watch of Deployments in a
//! namespace sees all of them. A [`SharedWatch`] runs that watch in a task
//! and hands each object's latest state to whoever registered for its name:
//!
//! ```text
//! ApiClient::watch(kind, namespace) ─► task ─► by name ─► tokio::sync::watch ─► waiter
//!   ends (timeout, cut) → resume from the last resourceVersion
//!   410 Gone / error    → start again from "0": the server replays the current
//!                         objects as ADDED, so no waiter misses a state
//! ```
//!
//! A waiter registers *before* it writes, so no event of its write can be
//! missed, and judges only states newer than its write (a generation or uid
//! it knows), so the replayed older state is harmless. Everything goes
//! through [`ApiClient::watch`], which counts the requests and retries 429
//! and 5xx when the watch starts.

use std::collections::HashMap;
use std::fmt;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use futures::StreamExt;
use kube::core::{Resource, WatchEvent};
use serde::de::DeserializeOwned;
use tokio::sync::watch;
use tokio::task::JoinHandle;

use crate::api::{ApiClient, KnownScope, ListScope, ListSelector};

/// The last state the watch delivered for one name.
#[derive(Debug)]
pub enum Seen<K> {
    /// Nothing delivered yet.
    Unknown,
    Present(Arc<K>),
    /// Deleted (or not there when the watch started over).
    Absent,
    /// The watch could not be (re)started: the error sentence.
    Broken(String),
}

impl<K> Clone for Seen<K> {
    fn clone(&self) -> Self {
        match self {
            Seen::Unknown => Seen::Unknown,
            Seen::Present(k) => Seen::Present(k.clone()),
            Seen::Absent => Seen::Absent,
            Seen::Broken(e) => Seen::Broken(e.clone()),
        }
    }
}

/// How long one WATCH request asks the server to stay open.
const WATCH_WINDOW: Duration = Duration::from_secs(290);
/// Failed starts in a row before waiters are told the watch is broken.
const MAX_FAILED_STARTS: u32 = 6;

type Waiters<K> = Arc<Mutex<HashMap<String, watch::Sender<Seen<K>>>>>;

/// A watch of kind `K` in one namespace, dispatched by object name.
pub struct SharedWatch<K> {
    waiters: Waiters<K>,
    task: JoinHandle<()>,
}

impl<K> fmt::Debug for SharedWatch<K> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("SharedWatch").finish_non_exhaustive()
    }
}

impl<K> Drop for SharedWatch<K> {
    fn drop(&mut self) {
        self.task.abort();
    }
}

impl<K> SharedWatch<K>
where
    K: Resource<DynamicType = ()> + DeserializeOwned + Clone + fmt::Debug + Send + Sync + 'static,
    K::Scope: KnownScope,
{
    /// Starts watching `K` in `namespace`.
    pub fn start(api: &ApiClient, namespace: &str) -> Self {
        let waiters: Waiters<K> = Arc::new(Mutex::new(HashMap::new()));
        let task = tokio::spawn(run(
            api.clone(),
            ListScope::Namespace(namespace.to_string()),
            waiters.clone(),
        ));
        SharedWatch { waiters, task }
    }

    /// Follow the object called `name` from now on. Register before writing
    /// to it; drop the receiver (or call [`SharedWatch::forget`]) when done.
    pub fn register(&self, name: &str) -> watch::Receiver<Seen<K>> {
        let mut waiters = lock(&self.waiters);
        match waiters.get(name) {
            Some(sender) => sender.subscribe(),
            None => {
                let (sender, receiver) = watch::channel(Seen::Unknown);
                waiters.insert(name.to_string(), sender);
                receiver
            }
        }
    }

    /// Stop following `name`.
    pub fn forget(&self, name: &str) {
        lock(&self.waiters).remove(name);
    }
}

fn lock<T>(mutex: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    mutex
        .lock()
        .unwrap_or_else(|poisoned| poisoned.into_inner())
}

fn dispatch<K>(waiters: &Waiters<K>, name: &str, seen: impl FnOnce() -> Seen<K>) {
    if let Some(sender) = lock(waiters).get(name) {
        sender.send_replace(seen());
    }
}

async fn run<K>(api: ApiClient, scope: ListScope, waiters: Waiters<K>)
where
    K: Resource<DynamicType = ()> + DeserializeOwned + Clone + fmt::Debug + Send + Sync + 'static,
    K::Scope: KnownScope,
{
    // "0": the current objects first (as ADDED), then changes.
    let mut version = "0".to_string();
    let mut failed_starts = 0u32;
    let everything = ListSelector::everything();
    loop {
        let mut stream = match api
            .watch::<K>(&scope, &everything, &version, WATCH_WINDOW)
            .await
        {
            Ok(stream) => {
                failed_starts = 0;
                stream
            }
            Err(err) => {
                failed_starts += 1;
                if failed_starts >= MAX_FAILED_STARTS {
                    let message = format!("{err:#}");
                    for sender in lock(&waiters).values() {
                        sender.send_replace(Seen::Broken(message.clone()));
                    }
                    failed_starts = 0;
                }
                // The API layer already retried 429/5xx; back off before
                // starting over from the current state.
                version = "0".to_string();
                tokio::time::sleep(Duration::from_millis(500 * u64::from(failed_starts.max(1))))
                    .await;
                continue;
            }
        };
        while let Some(item) = stream.next().await {
            match item {
                Ok(WatchEvent::Added(object) | WatchEvent::Modified(object)) => {
                    if let Some(rv) = object.meta().resource_version.clone() {
                        version = rv;
                    }
                    let name = object.meta().name.clone().unwrap_or_default();
                    dispatch(&waiters, &name, || Seen::Present(Arc::new(object)));
                }
                Ok(WatchEvent::Deleted(object)) => {
                    if let Some(rv) = object.meta().resource_version.clone() {
                        version = rv;
                    }
                    let name = object.meta().name.clone().unwrap_or_default();
                    dispatch(&waiters, &name, || Seen::Absent);
                }
                Ok(WatchEvent::Bookmark(bookmark)) => {
                    version = bookmark.metadata.resource_version;
                }
                Ok(WatchEvent::Error(status)) => {
                    tracing::debug!(
                        "watch ended with {} {}: starting again from the current state",
                        status.code,
                        status.message
                    );
                    version = "0".to_string();
                    break;
                }
                Err(err) => {
                    // A cut stream: resume where it stopped.
                    tracing::debug!("watch dropped ({err:#}); resuming from {version}");
                    break;
                }
            }
        }
    }
}
