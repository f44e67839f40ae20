//! One watch per kind and namespace, shared by every rollout waited for.
//!
//! Waiting for 200 rollouts with a watch each would cost 200 WATCH requests
//! (plus a GET each to learn where to start); one watch of Deployments in a
//! namespace sees all of them. A [`SharedWatch`] runs that watch in a task
//! and hands each object's latest state to whoever registered for its name:
//!
//! ```text
//! ResumableWatch(kind, namespace) ─► task ─► by name ─► tokio::sync::watch ─► waiter
//!   ends (timeout, cut) → resume from the last resourceVersion
//!   410 Gone / error    → start again from "0" (WatchOrigin::Replay): the server
//!                         replays the current objects as ADDED, so no waiter
//!                         misses a state
//! ```
//!
//! A waiter registers *before* it writes, so no event of its write can be
//! missed, and judges only states newer than its write (a generation or uid
//! it knows), so the replayed older state is harmless. Resuming, starting
//! again and backing off are [`ResumableWatch`]'s, in the API layer, which
//! also sends every request through [`ApiClient::watch`]: that counts them
//! and retries 429 and 5xx when the watch starts. This file only dispatches
//! by name.

use std::collections::HashMap;
use std::fmt;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use kube::core::Resource;
use serde::de::DeserializeOwned;
use tokio::sync::watch;
use tokio::task::JoinHandle;

use crate::api::{
    ApiClient, KnownScope, ListScope, ListSelector, ResumableWatch, WatchChange, WatchOrigin,
    WatchPolicy,
};

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

/// How the shared watch starts again: from "0", with no LIST; waiters are
/// told it is broken after this many failed starts in a row (and it keeps
/// trying).
const POLICY: WatchPolicy = WatchPolicy {
    origin: WatchOrigin::Replay,
    max_failed_starts: 6,
    backoff_step: Duration::from_millis(500),
};

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
        let events = api.resumable_watch(
            ListScope::Namespace(namespace.to_string()),
            ListSelector::everything(),
            POLICY,
        );
        let task = tokio::spawn(run(events, waiters.clone()));
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

async fn run<K>(mut events: ResumableWatch<K>, waiters: Waiters<K>)
where
    K: Resource<DynamicType = ()> + DeserializeOwned + Clone + fmt::Debug + Send + Sync + 'static,
    K::Scope: KnownScope,
{
    loop {
        match events.next_event(None).await {
            Ok(Some(WatchChange::Added(object) | WatchChange::Modified(object))) => {
                let name = object.meta().name.clone().unwrap_or_default();
                dispatch(&waiters, &name, || Seen::Present(Arc::new(object)));
            }
            Ok(Some(WatchChange::Deleted(object))) => {
                let name = object.meta().name.clone().unwrap_or_default();
                dispatch(&waiters, &name, || Seen::Absent);
            }
            // Started from "0": the current objects follow as ADDED.
            Ok(Some(WatchChange::Restarted(_)) | None) => {}
            Err(err) => {
                let message = format!("{err:#}");
                for sender in lock(&waiters).values() {
                    sender.send_replace(Seen::Broken(message.clone()));
                }
            }
        }
    }
}

#[cfg(test)]
mod tests;
