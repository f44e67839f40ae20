//! Watches: a chunked stream of `{"type": ..., "object": ...}` lines.
//!
//! The stream starts from what the request asks: with no `resourceVersion`
//! (or `0`), or with `sendInitialEvents=true`, the current matching objects
//! come first as ADDED, as the API server sends them (a streaming list then
//! gets a BOOKMARK annotated `k8s.io/initial-events-end`); with a version,
//! the store's history since it is replayed, or a single ERROR event
//! carrying a 410 `Expired` Status when history no longer reaches back that
//! far (client-go's reflector and kube-rs's watcher both re-list on it).
//! Live events follow from the store's broadcast, filtered by kind,
//! namespace and selectors. An object that stops matching a selector is sent
//! as DELETED, one that starts matching as ADDED, like the API server's
//! watch cache does.
//!
//! ```text
//!  world lock held:  subscribe ─> snapshot rv ─> initial events (list or history)
//!  task:             initial ─> [bookmark: initial-events-end] ─> live events ─> end
//!                    (timeoutSeconds, client gone, fault cut, server shutdown, lag → 410)
//! ```

use std::collections::HashSet;
use std::convert::Infallible;
use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use http_body_util::{BodyExt, StreamBody};
use hyper::body::Frame;
use serde::Serialize;
use serde_json::{Value, json};
use tokio::sync::{broadcast, mpsc};

use crate::error::{ApiError, ApiResult};
use crate::resources::Resource;
use crate::store::{EventType, ObjKey, Stored, WatchEvent};

use super::list::Selectors;
use super::route::Query;
use super::table::{IncludeObject, table};
use super::{Body, Shared, lock};

/// How often a watch that allows bookmarks gets one.
const BOOKMARK_INTERVAL: Duration = Duration::from_secs(1);

/// One watch event on the wire.
#[derive(Serialize)]
struct WireEvent<'a> {
    #[serde(rename = "type")]
    event_type: &'a str,
    object: &'a Value,
}

/// Encodes one event as a line of the stream.
pub fn encode_event(event_type: &str, object: &Value) -> Bytes {
    let mut line = serde_json::to_vec(&WireEvent { event_type, object }).expect("events serialize");
    line.push(b'\n');
    Bytes::from(line)
}

/// [`encode_event`] for a stored object: its text goes in as it is.
fn encode_stored_event(event_type: &str, stored: &Stored) -> Bytes {
    let mut line = Vec::with_capacity(stored.json().len() + 40);
    line.extend_from_slice(b"{\"type\":");
    serde_json::to_writer(&mut line, event_type).expect("a string serializes");
    line.extend_from_slice(b",\"object\":");
    line.extend_from_slice(stored.json());
    line.extend_from_slice(b"}\n");
    Bytes::from(line)
}

/// The ERROR event for a version history no longer holds.
pub fn expired_event(requested: u64, oldest: u64) -> Bytes {
    let status =
        ApiError::gone(format!("too old resource version: {requested} ({oldest})")).to_status();
    encode_event("ERROR", &status)
}

fn bookmark(resource: &Resource, rv: u64, initial_events_end: bool) -> Value {
    let mut metadata = json!({"resourceVersion": rv.to_string()});
    if initial_events_end {
        metadata["annotations"] = json!({"k8s.io/initial-events-end": "true"});
    }
    json!({"kind": resource.kind, "apiVersion": resource.api_version(), "metadata": metadata})
}

/// What a watch request asked for.
pub struct WatchRequest {
    pub resource: &'static Resource,
    pub namespace: Option<String>,
    /// Set when the watch is on one object (by path, or `metadata.name=`).
    pub name: Option<String>,
    pub selectors: Selectors,
    /// `Some` when kubectl asked for Table rows (`kubectl get -w`).
    pub table: Option<IncludeObject>,
    pub timeout: Option<Duration>,
    pub bookmarks: bool,
    pub send_initial_events: bool,
    pub cut_after: Option<usize>,
}

impl WatchRequest {
    pub fn from_query(
        resource: &'static Resource,
        namespace: Option<String>,
        name: Option<String>,
        query: &Query,
        table: Option<IncludeObject>,
        cut_after: Option<usize>,
    ) -> ApiResult<Self> {
        let timeout = query
            .non_empty("timeoutSeconds")
            .map(|t| {
                t.parse::<u64>()
                    .map(Duration::from_secs)
                    .map_err(|_| ApiError::bad_request(format!("invalid timeoutSeconds: {t:?}")))
            })
            .transpose()?;
        Ok(WatchRequest {
            resource,
            namespace,
            name,
            selectors: Selectors::from_query(query)?,
            table,
            timeout,
            bookmarks: query.flag("allowWatchBookmarks"),
            send_initial_events: query.flag("sendInitialEvents"),
            cut_after,
        })
    }

    fn in_scope(&self, key: &ObjKey) -> bool {
        self.namespace
            .as_deref()
            .is_none_or(|ns| key.namespace == ns)
            && self.name.as_deref().is_none_or(|n| key.name == n)
    }

    fn matches(&self, key: &ObjKey, stored: &Stored) -> bool {
        self.in_scope(key) && self.selectors.matches_stored(stored)
    }
}

/// Where the stream starts.
enum Start {
    /// Send these objects as ADDED, then live events after `rv`.
    Objects(Vec<(ObjKey, Stored)>),
    /// Replay these events, then live events.
    History(Vec<Arc<WatchEvent>>),
    /// The version is too old: one ERROR event and the end.
    Expired { requested: u64, oldest: u64 },
}

/// Answers a watch: sets up the start under the world lock, then streams
/// from a task.
pub fn watch(shared: &Arc<Shared>, request: WatchRequest, query: &Query) -> ApiResult<Body> {
    let (receiver, snapshot_rv, start, now) = {
        let world = lock(&shared.world);
        let receiver = world.store.subscribe();
        let snapshot_rv = world.store.resource_version();
        // `sendInitialEvents=true` (a streaming list) always starts with the
        // current objects, whatever version it names.
        let from = query
            .non_empty("resourceVersion")
            .filter(|_| !request.send_initial_events);
        let start = match from {
            None | Some("0") => Start::Objects(
                world
                    .store
                    .list_stored(request.resource, request.namespace.as_deref())
                    .filter(|(k, s)| request.matches(k, s))
                    .map(|(k, s)| (k.clone(), s.clone()))
                    .collect(),
            ),
            Some(rv) => {
                let requested = rv.parse::<u64>().map_err(|_| {
                    ApiError::bad_request(format!("invalid resourceVersion: {rv:?}"))
                })?;
                match world.store.events_since(request.resource, requested) {
                    Ok(events) => Start::History(events),
                    Err(too_old) => Start::Expired {
                        requested,
                        oldest: too_old.oldest,
                    },
                }
            }
        };
        (receiver, snapshot_rv, start, world.clock.now())
    };
    let (tx, rx) = mpsc::channel::<Bytes>(256);
    let shutdown = shared.shutdown.clone();
    let clock_world = shared.world.clone();
    tokio::spawn(async move {
        let mut stream = Stream {
            request,
            tx,
            sent: 0,
            known: HashSet::new(),
            knows_all: false,
            columns_sent: false,
            now,
        };
        stream
            .run(receiver, snapshot_rv, start, shutdown, clock_world)
            .await;
    });
    let frames = futures::stream::unfold(rx, |mut rx| async move {
        rx.recv()
            .await
            .map(|bytes| (Ok::<_, Infallible>(Frame::data(bytes)), rx))
    });
    Ok(StreamBody::new(frames).boxed())
}

struct Stream {
    request: WatchRequest,
    tx: mpsc::Sender<Bytes>,
    sent: usize,
    /// Objects the client was told about and not told are gone.
    known: HashSet<ObjKey>,
    /// Whether `known` is every object the client holds (the stream began
    /// with the current objects), so a modified object it does not hold has
    /// just entered the selection. Replayed from a version, it may hold
    /// objects this stream never sent.
    knows_all: bool,
    columns_sent: bool,
    /// Simulated time for Table ages, refreshed per live event.
    now: chrono::DateTime<chrono::Utc>,
}

enum Sent {
    Continue,
    Stop,
}

impl Stream {
    async fn run(
        &mut self,
        mut receiver: broadcast::Receiver<Arc<WatchEvent>>,
        snapshot_rv: u64,
        start: Start,
        mut shutdown: tokio::sync::watch::Receiver<bool>,
        world: Arc<std::sync::Mutex<crate::world::World>>,
    ) {
        let mut last_rv = snapshot_rv;
        match start {
            Start::Expired { requested, oldest } => {
                let _ = self.tx.send(expired_event(requested, oldest)).await;
                return;
            }
            Start::Objects(objects) => {
                self.knows_all = true;
                for (key, stored) in objects {
                    if let Sent::Stop = self.send_object("ADDED", key, &stored).await {
                        return;
                    }
                }
            }
            Start::History(events) => {
                for event in events {
                    if let Sent::Stop = self.send_change(&event).await {
                        return;
                    }
                }
            }
        }
        if self.request.send_initial_events {
            let mark = bookmark(self.request.resource, last_rv, true);
            if self.tx.send(encode_event("BOOKMARK", &mark)).await.is_err() {
                return;
            }
        }
        let deadline = self
            .request
            .timeout
            .map(|t| tokio::time::Instant::now() + t);
        let mut bookmarks = tokio::time::interval(BOOKMARK_INTERVAL);
        bookmarks.tick().await;
        loop {
            tokio::select! {
                received = receiver.recv() => match received {
                    Ok(event) => {
                        if event.resource_version <= snapshot_rv {
                            continue;
                        }
                        last_rv = last_rv.max(event.resource_version);
                        if event.resource != self.request.resource {
                            continue;
                        }
                        if self.request.table.is_some() {
                            self.now = lock(&world).clock.now();
                        }
                        if let Sent::Stop = self.send_change(&event).await {
                            return;
                        }
                    }
                    Err(broadcast::error::RecvError::Lagged(_)) => {
                        let _ = self.tx.send(expired_event(last_rv, last_rv + 1)).await;
                        return;
                    }
                    Err(broadcast::error::RecvError::Closed) => return,
                },
                _ = sleep_until(deadline) => return,
                _ = bookmarks.tick(), if self.request.bookmarks => {
                    let mark = bookmark(self.request.resource, last_rv, false);
                    if self.tx.send(encode_event("BOOKMARK", &mark)).await.is_err() {
                        return;
                    }
                }
                _ = self.tx.closed() => return,
                _ = shutdown.changed() => return,
            }
        }
    }

    /// Sends a stored change, translated for the selector: leaving the
    /// selection is a DELETED, entering it an ADDED.
    async fn send_change(&mut self, event: &WatchEvent) -> Sent {
        let key = &event.key;
        let matches = self.request.matches(key, &event.object);
        let known = self.known.contains(key);
        let event_type = match (event.event_type, matches, known) {
            (EventType::Deleted, true, _) | (EventType::Deleted, false, true) => "DELETED",
            (EventType::Deleted, false, false) => return Sent::Continue,
            (_, false, true) => "DELETED",
            (_, false, false) => return Sent::Continue,
            (EventType::Added, true, _) => "ADDED",
            (EventType::Modified, true, false) if self.knows_all => "ADDED",
            (EventType::Modified, true, _) => "MODIFIED",
        };
        self.send_object(event_type, key.clone(), &event.object)
            .await
    }

    async fn send_object(&mut self, event_type: &str, key: ObjKey, stored: &Stored) -> Sent {
        if event_type == "DELETED" {
            self.known.remove(&key);
        } else {
            self.known.insert(key);
        }
        let line = match self.request.table {
            Some(include) => {
                let obj = stored.value();
                let rv = obj
                    .pointer("/metadata/resourceVersion")
                    .cloned()
                    .unwrap_or(Value::Null);
                let t = table(
                    self.request.resource,
                    [&obj],
                    include,
                    self.now,
                    json!({"resourceVersion": rv}),
                    !self.columns_sent,
                );
                self.columns_sent = true;
                encode_event(event_type, &t)
            }
            None => encode_stored_event(event_type, stored),
        };
        if self.tx.send(line).await.is_err() {
            return Sent::Stop;
        }
        self.sent += 1;
        match self.request.cut_after {
            Some(limit) if self.sent >= limit => Sent::Stop,
            _ => Sent::Continue,
        }
    }
}

async fn sleep_until(deadline: Option<tokio::time::Instant>) {
    match deadline {
        Some(at) => tokio::time::sleep_until(at).await,
        None => std::future::pending().await,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn events_are_one_json_line_each() {
        let line = encode_event("ADDED", &json!({"kind": "Pod", "metadata": {"name": "a"}}));
        assert!(line.ends_with(b"\n"));
        let parsed: Value = serde_json::from_slice(&line).unwrap();
        assert_eq!(parsed["type"], "ADDED");
        assert_eq!(parsed["object"]["metadata"]["name"], "a");
    }

    #[test]
    fn an_expired_version_is_an_error_event_with_a_410_status() {
        let parsed: Value = serde_json::from_slice(&expired_event(5, 10)).unwrap();
        assert_eq!(parsed["type"], "ERROR");
        assert_eq!(parsed["object"]["kind"], "Status");
        assert_eq!(parsed["object"]["code"], 410);
        assert_eq!(parsed["object"]["reason"], "Expired");
        assert_eq!(
            parsed["object"]["message"],
            "too old resource version: 5 (10)"
        );
    }

    #[test]
    fn initial_events_end_bookmark_carries_the_annotation() {
        let mark = bookmark(crate::resources::kinds::pods(), 9, true);
        assert_eq!(mark["metadata"]["resourceVersion"], "9");
        assert_eq!(
            mark["metadata"]["annotations"]["k8s.io/initial-events-end"],
            "true"
        );
        assert_eq!(mark["kind"], "Pod");
    }
}
