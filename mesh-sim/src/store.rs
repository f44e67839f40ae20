//! The object store: every object of every kind, with resource versions and a
//! watch history.
//!
//! The store knows nothing of Kubernetes semantics (validation, generations,
//! admission): [`crate::world::World`] does that and calls the store to keep
//! the result. The store only keeps objects in order, stamps each write with
//! the next `resourceVersion`, and records an event for watchers.
//!
//! ```text
//!   API handlers ─┐
//!                 ├─> World (semantics) ─> Store (objects, rv, events) ─> watchers
//!   controllers ──┘
//! ```
//!
//! Objects are kept as their JSON text ([`Stored`]), as etcd keeps them
//! serialized, and decoded when read. A decoded `serde_json::Value` takes
//! about ten times the memory of its text (every map is a B-tree node with
//! room for eleven entries), which put a 150,000-pod generated cluster near
//! 10 GB; as text it takes about a tenth of that. Lists and watch events
//! send the text as it is, so they decode nothing unless a selector has to
//! look inside.
//!
//! Beside its text an object keeps its protobuf message once a protobuf
//! LIST has needed it ([`Stored::protobuf`]): the API server encodes from
//! objects it holds, so encoding again from JSON on every list would make
//! mesh-sim's CPU, not the transfer, the cost of a protobuf LIST. A write
//! stores a new [`Stored`], so the message never outlives the text it was
//! made from.

use std::collections::{BTreeMap, HashMap, HashSet, VecDeque};
use std::sync::{Arc, OnceLock};

use serde_json::Value;
use tokio::sync::broadcast;

use crate::resources::Resource;

/// A decoded object, as readers get it.
pub type Obj = Arc<Value>;

/// An object as the store keeps it: its JSON text, with `apiVersion`,
/// `kind` and `metadata.resourceVersion`, exactly as a GET answers it and a
/// list or a watch event carries it, and its protobuf message once one was
/// asked for. Cloning shares both; two are equal when their texts are.
#[derive(Clone)]
pub struct Stored(Arc<StoredText>);

struct StoredText {
    json: Box<[u8]>,
    /// The protobuf message, made on first use; `None` when the object
    /// cannot be encoded (so it is not tried again).
    protobuf: OnceLock<Option<Box<[u8]>>>,
}

impl PartialEq for Stored {
    fn eq(&self, other: &Self) -> bool {
        Arc::ptr_eq(&self.0, &other.0) || self.json() == other.json()
    }
}

impl Eq for Stored {}

impl std::fmt::Debug for Stored {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_tuple("Stored")
            .field(&String::from_utf8_lossy(self.json()))
            .finish()
    }
}

impl Stored {
    /// The text of an object of `resource` that is not (or no longer) in
    /// the store, typed as stored objects are.
    pub fn of(resource: &Resource, obj: &Value) -> Self {
        if obj.get("apiVersion").is_some() && obj.get("kind").is_some() {
            return Stored::encode(obj);
        }
        let mut typed = obj.clone();
        set_type(resource, &mut typed);
        Stored::encode(&typed)
    }

    fn encode(obj: &Value) -> Self {
        Stored(Arc::new(StoredText {
            json: serde_json::to_vec(obj)
                .expect("a JSON value always serializes")
                .into_boxed_slice(),
            protobuf: OnceLock::new(),
        }))
    }

    /// The JSON text.
    pub fn json(&self) -> &[u8] {
        &self.0.json
    }

    /// The object, decoded.
    pub fn value(&self) -> Value {
        serde_json::from_slice(&self.0.json).expect("the store holds only JSON it wrote")
    }

    /// [`Stored::value`], shared.
    pub fn obj(&self) -> Obj {
        Arc::new(self.value())
    }

    /// The object's protobuf message: made by `encode` from the JSON text
    /// the first time it is asked for, then kept with the text (every clone
    /// sees it). `None` when `encode` could not make one, which is kept too.
    /// The store knows nothing of protobuf; the caller's `encode` does, and
    /// must give the same answer for the same text.
    pub fn protobuf(&self, encode: impl FnOnce(&[u8]) -> Option<Vec<u8>>) -> Option<&[u8]> {
        self.0
            .protobuf
            .get_or_init(|| encode(&self.0.json).map(Vec::into_boxed_slice))
            .as_deref()
    }
}

/// Where an object lives: namespace (empty for cluster-scoped kinds) and name.
#[derive(Clone, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct ObjKey {
    pub namespace: String,
    pub name: String,
}

impl ObjKey {
    pub fn new(namespace: &str, name: &str) -> Self {
        ObjKey {
            namespace: namespace.to_string(),
            name: name.to_string(),
        }
    }

    /// The key of an object, read from its metadata.
    pub fn of(obj: &Value) -> Self {
        ObjKey::new(
            obj.pointer("/metadata/namespace")
                .and_then(Value::as_str)
                .unwrap_or(""),
            obj.pointer("/metadata/name")
                .and_then(Value::as_str)
                .unwrap_or(""),
        )
    }
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum EventType {
    Added,
    Modified,
    Deleted,
}

impl EventType {
    pub fn as_str(self) -> &'static str {
        match self {
            EventType::Added => "ADDED",
            EventType::Modified => "MODIFIED",
            EventType::Deleted => "DELETED",
        }
    }
}

/// One change, as a watcher sees it.
#[derive(Clone, Debug)]
pub struct WatchEvent {
    pub resource: &'static Resource,
    pub event_type: EventType,
    /// Where the changed object lives.
    pub key: ObjKey,
    /// The object after the change (for a deletion: as it was, with the
    /// deletion's resource version).
    pub object: Stored,
    pub resource_version: u64,
}

impl WatchEvent {
    /// The changed object, decoded.
    pub fn value(&self) -> Value {
        self.object.value()
    }
}

/// Asked for events older than the history keeps: the watcher must re-list
/// (the API answers 410 Gone).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct TooOld {
    pub oldest: u64,
}

/// One stored object and the owner uids its ownerReferences name (kept so
/// a replacement or removal unindexes them without decoding the old text).
#[derive(Debug)]
struct Entry {
    stored: Stored,
    owners: Box<[String]>,
}

pub struct Store {
    rv: u64,
    buckets: HashMap<&'static Resource, BTreeMap<ObjKey, Entry>>,
    history: VecDeque<Arc<WatchEvent>>,
    history_cap: usize,
    /// Resource version of the oldest event that was dropped from history.
    compacted_through: u64,
    events: broadcast::Sender<Arc<WatchEvent>>,
    /// Objects by the uids their ownerReferences name, so garbage
    /// collection finds an object's dependents without a scan.
    dependents: HashMap<String, HashSet<(&'static Resource, ObjKey)>>,
}

impl Default for Store {
    fn default() -> Self {
        Store::new(100_000)
    }
}

/// Stored objects of one kind, in key order.
pub type StoredIter<'a> = Box<dyn Iterator<Item = (&'a ObjKey, &'a Stored)> + 'a>;

impl Store {
    /// A store keeping the last `history_cap` events for watches.
    pub fn new(history_cap: usize) -> Self {
        let (events, _) = broadcast::channel(65_536);
        Store {
            rv: 1,
            buckets: HashMap::new(),
            history: VecDeque::new(),
            history_cap,
            compacted_through: 0,
            events,
            dependents: HashMap::new(),
        }
    }

    /// The resource version of the latest write.
    pub fn resource_version(&self) -> u64 {
        self.rv
    }

    /// The object, decoded.
    pub fn get(&self, resource: &Resource, namespace: &str, name: &str) -> Option<Obj> {
        self.get_stored(resource, namespace, name).map(Stored::obj)
    }

    /// The object as stored.
    pub fn get_stored(&self, resource: &Resource, namespace: &str, name: &str) -> Option<&Stored> {
        let ns = if resource.namespaced { namespace } else { "" };
        self.buckets
            .get(resource)
            .and_then(|b| b.get(&ObjKey::new(ns, name)))
            .map(|e| &e.stored)
    }

    /// Objects of one kind, decoded, ordered by namespace then name;
    /// `namespace: None` means all namespaces.
    pub fn list<'a>(
        &'a self,
        resource: &Resource,
        namespace: Option<&'a str>,
    ) -> Box<dyn Iterator<Item = Obj> + 'a> {
        Box::new(self.list_stored(resource, namespace).map(|(_, s)| s.obj()))
    }

    /// [`Store::list`] as stored, without decoding.
    pub fn list_stored<'a>(
        &'a self,
        resource: &Resource,
        namespace: Option<&'a str>,
    ) -> StoredIter<'a> {
        let Some(bucket) = self.buckets.get(resource) else {
            return Box::new(std::iter::empty());
        };
        match namespace {
            Some(ns) if resource.namespaced => {
                let start = ObjKey::new(ns, "");
                Box::new(
                    bucket
                        .range(start..)
                        .take_while(move |(k, _)| k.namespace == ns)
                        .map(|(k, e)| (k, &e.stored)),
                )
            }
            _ => Box::new(bucket.iter().map(|(k, e)| (k, &e.stored))),
        }
    }

    /// Stored objects of one kind starting strictly after `after` (for
    /// `continue` tokens).
    pub fn list_stored_after<'a>(
        &'a self,
        resource: &Resource,
        namespace: Option<&'a str>,
        after: &ObjKey,
    ) -> StoredIter<'a> {
        use std::ops::Bound;
        let Some(bucket) = self.buckets.get(resource) else {
            return Box::new(std::iter::empty());
        };
        let iter = bucket
            .range((Bound::Excluded(after.clone()), Bound::Unbounded))
            .map(|(k, e)| (k, &e.stored));
        match namespace {
            Some(ns) if resource.namespaced => {
                Box::new(iter.take_while(move |(k, _)| k.namespace == ns))
            }
            _ => Box::new(iter),
        }
    }

    pub fn count(&self, resource: &Resource) -> usize {
        self.buckets.get(resource).map_or(0, BTreeMap::len)
    }

    /// Keeps `obj` (created or replaced), stamping the next resource version
    /// (and its `apiVersion` and `kind`, if it lacks them). Callers have
    /// validated it; the store does not look inside beyond the key and the
    /// owners.
    pub fn put(&mut self, resource: &'static Resource, mut obj: Value) -> Obj {
        self.rv += 1;
        let rv = self.rv;
        set_resource_version(&mut obj, rv);
        set_type(resource, &mut obj);
        let key = ObjKey::of(&obj);
        let stored = Stored::encode(&obj);
        let owners: Box<[String]> = owner_uids(&obj).map(str::to_string).collect();
        self.index_owners(resource, &key, &owners);
        let previous = self.buckets.entry(resource).or_default().insert(
            key.clone(),
            Entry {
                stored: stored.clone(),
                owners: owners.clone(),
            },
        );
        if let Some(previous) = &previous {
            let gone: Vec<String> = previous
                .owners
                .iter()
                .filter(|uid| !owners.contains(uid))
                .cloned()
                .collect();
            self.unindex_owners(resource, &key, &gone);
        }
        let event_type = if previous.is_some() {
            EventType::Modified
        } else {
            EventType::Added
        };
        self.record(resource, event_type, key, stored, rv);
        Arc::new(obj)
    }

    /// Removes an object; the deletion gets its own resource version.
    pub fn remove(
        &mut self,
        resource: &'static Resource,
        namespace: &str,
        name: &str,
    ) -> Option<Obj> {
        let ns = if resource.namespaced { namespace } else { "" };
        let key = ObjKey::new(ns, name);
        let removed = self.buckets.get_mut(resource)?.remove(&key)?;
        self.unindex_owners(resource, &key, &removed.owners);
        self.rv += 1;
        let rv = self.rv;
        let mut last = removed.stored.value();
        set_resource_version(&mut last, rv);
        self.record(resource, EventType::Deleted, key, Stored::encode(&last), rv);
        Some(Arc::new(last))
    }

    /// Objects whose ownerReferences name `uid`.
    pub fn dependents_of(&self, uid: &str) -> Vec<(&'static Resource, ObjKey)> {
        self.dependents
            .get(uid)
            .map(|d| d.iter().cloned().collect())
            .unwrap_or_default()
    }

    fn index_owners(&mut self, resource: &'static Resource, key: &ObjKey, uids: &[String]) {
        for uid in uids {
            self.dependents
                .entry(uid.clone())
                .or_default()
                .insert((resource, key.clone()));
        }
    }

    fn unindex_owners(&mut self, resource: &'static Resource, key: &ObjKey, uids: &[String]) {
        for uid in uids {
            if let Some(set) = self.dependents.get_mut(uid) {
                set.remove(&(resource, key.clone()));
                if set.is_empty() {
                    self.dependents.remove(uid);
                }
            }
        }
    }

    fn record(
        &mut self,
        resource: &'static Resource,
        event_type: EventType,
        key: ObjKey,
        object: Stored,
        rv: u64,
    ) {
        let event = Arc::new(WatchEvent {
            resource,
            event_type,
            key,
            object,
            resource_version: rv,
        });
        if self.history.len() >= self.history_cap {
            if let Some(old) = self.history.pop_front() {
                self.compacted_through = old.resource_version;
            }
        }
        self.history.push_back(event.clone());
        // No receivers is fine: nobody is watching.
        let _ = self.events.send(event);
    }

    /// A receiver of every future event (all kinds; filter on the receiving side).
    pub fn subscribe(&self) -> broadcast::Receiver<Arc<WatchEvent>> {
        self.events.subscribe()
    }

    /// Events of one kind newer than `since`, or [`TooOld`] when history no
    /// longer reaches back that far.
    pub fn events_since(
        &self,
        resource: &Resource,
        since: u64,
    ) -> Result<Vec<Arc<WatchEvent>>, TooOld> {
        if since < self.compacted_through {
            return Err(TooOld {
                oldest: self.compacted_through,
            });
        }
        let start = self
            .history
            .partition_point(|e| e.resource_version <= since);
        Ok(self
            .history
            .range(start..)
            .filter(|e| e.resource == resource)
            .cloned()
            .collect())
    }

    /// Forgets watch history up to now, so a watch from an older version gets
    /// 410 Gone (as after an etcd compaction). Tests use this.
    pub fn compact(&mut self) {
        self.history.clear();
        self.compacted_through = self.rv;
    }

    /// Every kind that currently has objects.
    pub fn kinds(&self) -> impl Iterator<Item = &'static Resource> + '_ {
        self.buckets
            .iter()
            .filter(|(_, b)| !b.is_empty())
            .map(|(r, _)| *r)
    }
}

fn owner_uids(obj: &Value) -> impl Iterator<Item = &str> {
    obj.pointer("/metadata/ownerReferences")
        .and_then(Value::as_array)
        .into_iter()
        .flatten()
        .filter_map(|r| r.get("uid").and_then(Value::as_str))
}

fn set_resource_version(obj: &mut Value, rv: u64) {
    if let Some(meta) = obj.get_mut("metadata").and_then(Value::as_object_mut) {
        meta.insert("resourceVersion".into(), Value::String(rv.to_string()));
    }
}

/// Objects carry `apiVersion` and `kind` wherever they are sent.
fn set_type(resource: &Resource, obj: &mut Value) {
    if let Some(map) = obj.as_object_mut() {
        if !map.contains_key("apiVersion") {
            map.insert("apiVersion".into(), Value::String(resource.api_version()));
        }
        if !map.contains_key("kind") {
            map.insert("kind".into(), Value::String(resource.kind.to_string()));
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::resources::kinds;
    use serde_json::json;

    fn pod(ns: &str, name: &str) -> Value {
        json!({"apiVersion": "v1", "kind": "Pod", "metadata": {"namespace": ns, "name": name}})
    }

    #[test]
    fn writes_get_increasing_resource_versions_and_events() {
        let mut store = Store::new(10);
        let a = store.put(kinds::pods(), pod("a", "p1"));
        let b = store.put(kinds::pods(), pod("a", "p1"));
        assert_eq!(a["metadata"]["resourceVersion"], "2");
        assert_eq!(b["metadata"]["resourceVersion"], "3");
        let events = store.events_since(kinds::pods(), 2).unwrap();
        assert_eq!(events.len(), 1);
        assert_eq!(events[0].event_type, EventType::Modified);
    }

    #[test]
    fn list_by_namespace_is_ordered_and_scoped() {
        let mut store = Store::default();
        for (ns, n) in [("b", "x"), ("a", "z"), ("a", "y"), ("c", "w")] {
            store.put(kinds::pods(), pod(ns, n));
        }
        let names: Vec<_> = store
            .list(kinds::pods(), Some("a"))
            .map(|o| o["metadata"]["name"].as_str().unwrap().to_string())
            .collect();
        assert_eq!(names, ["y", "z"]);
        assert_eq!(store.list(kinds::pods(), None).count(), 4);
        let after: Vec<_> = store
            .list_stored_after(kinds::pods(), None, &ObjKey::new("a", "z"))
            .map(|(k, _)| k.name.clone())
            .collect();
        assert_eq!(after, ["x", "w"]);
    }

    #[test]
    fn dependents_are_indexed_by_owner_uid_through_writes_and_removals() {
        let mut store = Store::default();
        let mut owned = pod("a", "p1");
        owned["metadata"]["ownerReferences"] =
            json!([{"uid": "rs-1", "kind": "ReplicaSet", "name": "rs"}]);
        store.put(kinds::pods(), owned.clone());
        assert_eq!(
            store.dependents_of("rs-1"),
            [(kinds::pods(), ObjKey::new("a", "p1"))]
        );
        owned["metadata"]["ownerReferences"] =
            json!([{"uid": "rs-2", "kind": "ReplicaSet", "name": "rs"}]);
        store.put(kinds::pods(), owned);
        assert!(store.dependents_of("rs-1").is_empty());
        assert_eq!(store.dependents_of("rs-2").len(), 1);
        store.remove(kinds::pods(), "a", "p1");
        assert!(store.dependents_of("rs-2").is_empty());
    }

    #[test]
    fn objects_are_kept_as_typed_json_text_and_decoded_on_read() {
        let mut store = Store::default();
        let written = store.put(
            kinds::pods(),
            json!({"metadata": {"namespace": "a", "name": "p1", "labels": {"app": "web"}}}),
        );
        let text = store.get_stored(kinds::pods(), "a", "p1").unwrap().clone();
        let decoded: Value = serde_json::from_slice(text.json()).unwrap();
        assert_eq!(decoded["kind"], "Pod");
        assert_eq!(decoded["apiVersion"], "v1");
        assert_eq!(decoded["metadata"]["resourceVersion"], "2");
        assert_eq!(*written, decoded);
        assert_eq!(*store.get(kinds::pods(), "a", "p1").unwrap(), decoded);
        let event = &store.events_since(kinds::pods(), 1).unwrap()[0];
        assert_eq!(event.key, ObjKey::new("a", "p1"));
        assert_eq!(event.object, text);
    }

    #[test]
    fn a_removal_is_recorded_with_its_own_resource_version() {
        let mut store = Store::default();
        store.put(kinds::pods(), pod("a", "p1"));
        let removed = store.remove(kinds::pods(), "a", "p1").unwrap();
        assert_eq!(removed["metadata"]["resourceVersion"], "3");
        let events = store.events_since(kinds::pods(), 2).unwrap();
        assert_eq!(events[0].event_type, EventType::Deleted);
        assert_eq!(events[0].value(), *removed);
        assert!(store.get(kinds::pods(), "a", "p1").is_none());
    }

    #[test]
    fn watch_from_a_compacted_version_is_too_old() {
        let mut store = Store::new(2);
        for i in 0..5 {
            store.put(kinds::pods(), pod("a", &format!("p{i}")));
        }
        assert!(store.events_since(kinds::pods(), 1).is_err());
        assert_eq!(store.events_since(kinds::pods(), 4).unwrap().len(), 2);
        store.compact();
        assert!(store.events_since(kinds::pods(), 5).is_err());
    }
}
