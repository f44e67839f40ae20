//! What many snapshot objects hold alike, stored once.
//!
//! At 150,000 pods the snapshot must stay well under 150 MB, yet a pod's
//! labels alone, as a `BTreeMap<String, String>` of its own, take about a
//! kilobyte. Most of what a pod carries repeats: every pod of a ReplicaSet
//! has the same labels, owner and proxy facts; every label key and most
//! label values recur across the cluster; a namespace or node name is held
//! by thousands of pods. So the snapshot structs hold such values through
//! reference-counted handles, and the lean page decoders (`decode.rs`) hand
//! them out from one [`Interner`] per read, so equal values share one copy:
//!
//! ```text
//!   pod a ─┐                          pod c ─┐
//!   pod b ─┼─► LabelMap [(app, shop) (pod-template-hash, 5d8f) ...]
//!          │             │                    ▲ each key and value an
//!          └─► Shared<ProxyFacts>             │ interned SharedStr
//! ```
//!
//! The handles compare, hash, print and serialise by value, so a snapshot
//! built by the `From<&K>` conversions (fresh, unshared values) equals the
//! one the decoders build, and tests build values by hand as before.
//! [`Shared`] derefs mutably by copy-on-write, so fixtures can still edit
//! a field in place.

use std::borrow::Borrow;
use std::collections::{HashMap, HashSet};
use std::fmt;
use std::hash::{Hash, Hasher};

use rustc_hash::FxHasher;
use std::ops::{Deref, DerefMut};
use std::sync::{Arc, Mutex};

use serde::{Serialize, Serializer};

use super::Labels;

/// An immutable string held by many objects (a namespace, a label key or
/// value, an image): cloning it is a reference count.
#[derive(Clone, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct SharedStr(Arc<str>);

impl SharedStr {
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl Default for SharedStr {
    fn default() -> Self {
        SharedStr::from("")
    }
}

impl Deref for SharedStr {
    type Target = str;
    fn deref(&self) -> &str {
        &self.0
    }
}

impl Borrow<str> for SharedStr {
    fn borrow(&self) -> &str {
        &self.0
    }
}

impl AsRef<str> for SharedStr {
    fn as_ref(&self) -> &str {
        &self.0
    }
}

impl From<&str> for SharedStr {
    fn from(s: &str) -> Self {
        SharedStr(Arc::from(s))
    }
}

impl From<String> for SharedStr {
    fn from(s: String) -> Self {
        SharedStr(Arc::from(s))
    }
}

impl From<&String> for SharedStr {
    fn from(s: &String) -> Self {
        SharedStr::from(s.as_str())
    }
}

impl From<&SharedStr> for String {
    fn from(s: &SharedStr) -> Self {
        s.0.to_string()
    }
}

impl From<SharedStr> for String {
    fn from(s: SharedStr) -> Self {
        s.0.to_string()
    }
}

impl PartialEq<str> for SharedStr {
    fn eq(&self, other: &str) -> bool {
        &*self.0 == other
    }
}

impl PartialEq<&str> for SharedStr {
    fn eq(&self, other: &&str) -> bool {
        &*self.0 == *other
    }
}

impl PartialEq<String> for SharedStr {
    fn eq(&self, other: &String) -> bool {
        *self.0 == **other
    }
}

impl PartialEq<SharedStr> for String {
    fn eq(&self, other: &SharedStr) -> bool {
        **self == *other.0
    }
}

impl PartialEq<SharedStr> for str {
    fn eq(&self, other: &SharedStr) -> bool {
        *self == *other.0
    }
}

impl PartialEq<SharedStr> for &str {
    fn eq(&self, other: &SharedStr) -> bool {
        **self == *other.0
    }
}

impl fmt::Debug for SharedStr {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Debug::fmt(&*self.0, f)
    }
}

impl fmt::Display for SharedStr {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Display::fmt(&*self.0, f)
    }
}

impl Serialize for SharedStr {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.serialize_str(&self.0)
    }
}

/// A value held by many objects (a pod's owners, its proxy facts): cloning
/// it is a reference count. Compared, hashed and printed by value; a
/// mutable borrow copies it first when it is shared (copy-on-write).
#[derive(Default, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct Shared<T>(Arc<T>);

impl<T> Shared<T> {
    pub fn new(value: T) -> Self {
        Shared(Arc::new(value))
    }

    /// Whether both are the same copy (not only equal).
    pub fn ptr_eq(a: &Self, b: &Self) -> bool {
        Arc::ptr_eq(&a.0, &b.0)
    }
}

impl<T> Clone for Shared<T> {
    fn clone(&self) -> Self {
        Shared(self.0.clone())
    }
}

impl<T> From<T> for Shared<T> {
    fn from(value: T) -> Self {
        Shared::new(value)
    }
}

impl<T> Deref for Shared<T> {
    type Target = T;
    fn deref(&self) -> &T {
        &self.0
    }
}

impl<T: Clone> DerefMut for Shared<T> {
    fn deref_mut(&mut self) -> &mut T {
        Arc::make_mut(&mut self.0)
    }
}

impl<T: fmt::Debug> fmt::Debug for Shared<T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Debug::fmt(&*self.0, f)
    }
}

impl<T: Serialize> Serialize for Shared<T> {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        self.0.serialize(serializer)
    }
}

/// A label map as the snapshot keeps it: its entries sorted by key, each
/// key and value a [`SharedStr`], the whole shared by every object with
/// the same labels. About a fifth of a `BTreeMap<String, String>`'s size
/// for a pod's labels, and nothing again for the next pod of its workload.
/// Read like a map (`get`, `contains_key`, `iter`); [`LabelMap::to_labels`]
/// gives an owned [`Labels`] where one is built on.
#[derive(Clone, Default)]
pub struct LabelMap(Option<Arc<[(SharedStr, SharedStr)]>>);

impl LabelMap {
    pub fn new() -> Self {
        LabelMap(None)
    }

    fn entries(&self) -> &[(SharedStr, SharedStr)] {
        self.0.as_deref().unwrap_or_default()
    }

    /// From entries sorted by key without duplicates.
    fn from_sorted(entries: Vec<(SharedStr, SharedStr)>) -> Self {
        if entries.is_empty() {
            LabelMap(None)
        } else {
            LabelMap(Some(Arc::from(entries)))
        }
    }

    /// The value of `key`.
    pub fn get(&self, key: &str) -> Option<&str> {
        let entries = self.entries();
        entries
            .binary_search_by(|(k, _)| k.as_str().cmp(key))
            .ok()
            .map(|i| entries[i].1.as_str())
    }

    /// Whether both hold the same copy of their entries (not only equal ones).
    pub fn shares_entries_with(&self, other: &LabelMap) -> bool {
        match (&self.0, &other.0) {
            (Some(a), Some(b)) => Arc::ptr_eq(a, b),
            _ => false,
        }
    }

    pub fn contains_key(&self, key: &str) -> bool {
        self.get(key).is_some()
    }

    /// The entries in key order.
    pub fn iter(&self) -> impl Iterator<Item = (&str, &str)> + '_ {
        self.entries().iter().map(|(k, v)| (k.as_str(), v.as_str()))
    }

    pub fn keys(&self) -> impl Iterator<Item = &str> + '_ {
        self.iter().map(|(k, _)| k)
    }

    pub fn len(&self) -> usize {
        self.entries().len()
    }

    pub fn is_empty(&self) -> bool {
        self.entries().is_empty()
    }

    /// The labels as an owned map.
    pub fn to_labels(&self) -> Labels {
        self.iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect()
    }

    /// Sets `key` (a new copy of the entries: for building by hand).
    pub fn insert(&mut self, key: String, value: String) {
        let mut labels = self.to_labels();
        labels.insert(key, value);
        *self = LabelMap::from(&labels);
    }

    /// Removes `key` (a new copy of the entries: for building by hand).
    pub fn remove(&mut self, key: &str) -> Option<String> {
        let mut labels = self.to_labels();
        let removed = labels.remove(key);
        if removed.is_some() {
            *self = LabelMap::from(&labels);
        }
        removed
    }

    /// Adds every entry of `labels` (a new copy: for building by hand).
    pub fn extend(&mut self, labels: impl IntoIterator<Item = (String, String)>) {
        let mut all = self.to_labels();
        all.extend(labels);
        *self = LabelMap::from(&all);
    }
}

impl From<&Labels> for LabelMap {
    fn from(labels: &Labels) -> Self {
        LabelMap::from_sorted(
            labels
                .iter()
                .map(|(k, v)| (SharedStr::from(k), SharedStr::from(v)))
                .collect(),
        )
    }
}

impl From<Labels> for LabelMap {
    fn from(labels: Labels) -> Self {
        LabelMap::from(&labels)
    }
}

impl<K: Into<String>, V: Into<String>> FromIterator<(K, V)> for LabelMap {
    fn from_iter<I: IntoIterator<Item = (K, V)>>(iter: I) -> Self {
        let labels: Labels = iter
            .into_iter()
            .map(|(k, v)| (k.into(), v.into()))
            .collect();
        LabelMap::from(&labels)
    }
}

impl<const N: usize> From<[(String, String); N]> for LabelMap {
    fn from(entries: [(String, String); N]) -> Self {
        entries.into_iter().collect()
    }
}

impl PartialEq for LabelMap {
    fn eq(&self, other: &Self) -> bool {
        match (&self.0, &other.0) {
            (Some(a), Some(b)) if Arc::ptr_eq(a, b) => true,
            _ => self.entries() == other.entries(),
        }
    }
}

impl Eq for LabelMap {}

impl Hash for LabelMap {
    fn hash<H: Hasher>(&self, state: &mut H) {
        self.entries().hash(state);
    }
}

impl fmt::Debug for LabelMap {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_map().entries(self.iter()).finish()
    }
}

impl Serialize for LabelMap {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.collect_map(self.iter())
    }
}

impl PartialEq<Labels> for LabelMap {
    fn eq(&self, other: &Labels) -> bool {
        self.len() == other.len()
            && self
                .iter()
                .zip(other)
                .all(|((a, b), (c, d))| a == c && b == d)
    }
}

/// Read access to labels, whichever way they are held (selectors match
/// both the snapshot's [`LabelMap`]s and maps the model builds).
pub trait LabelLookup: fmt::Debug {
    fn label(&self, key: &str) -> Option<&str>;
}

impl LabelLookup for Labels {
    fn label(&self, key: &str) -> Option<&str> {
        self.get(key).map(String::as_str)
    }
}

impl LabelLookup for LabelMap {
    fn label(&self, key: &str) -> Option<&str> {
        self.get(key)
    }
}

impl<T: LabelLookup + ?Sized> LabelLookup for &T {
    fn label(&self, key: &str) -> Option<&str> {
        (**self).label(key)
    }
}

/// Hands out one shared copy of each distinct value met while decoding a
/// read's pages (one per `collect` run, shared by the threads decoding its
/// pages). Its tables live only as long as the read: the values stay with
/// the snapshot.
#[derive(Default)]
pub struct Interner(Mutex<Tables>);

#[derive(Default)]
struct Tables {
    strs: HashSet<SharedStr>,
    /// Label maps by the hash of their entries.
    label_maps: HashMap<u64, Vec<LabelMap>>,
    any: HashMap<std::any::TypeId, Box<dyn std::any::Any + Send>>,
    /// Shared values by the hash of the borrowed form they were built from.
    by_form: HashMap<std::any::TypeId, Box<dyn std::any::Any + Send>>,
}

impl fmt::Debug for Interner {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("Interner")
    }
}

impl Interner {
    fn tables(&self) -> std::sync::MutexGuard<'_, Tables> {
        // A panic while interning leaves the tables consistent (each is
        // one insert), so a poisoned lock is still usable.
        self.0
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
    }

    /// The shared copy of `s`.
    pub fn str(&self, s: &str) -> SharedStr {
        intern_str(&mut self.tables().strs, s)
    }

    /// The shared label map of these entries (as read from a page: in any
    /// order; of a repeated key the last counts, as in a JSON object read
    /// into a map). `entries` is left sorted, in no useful state.
    pub fn labels<K: AsRef<str>, V: AsRef<str>>(&self, entries: &mut [(K, V)]) -> LabelMap {
        if entries.is_empty() {
            return LabelMap::new();
        }
        // Stable, so of equal keys the last read stays last.
        entries.sort_by(|a, b| a.0.as_ref().cmp(b.0.as_ref()));
        let mut unique = 0;
        for i in 0..entries.len() {
            let last_of_key = entries
                .get(i + 1)
                .is_none_or(|next| next.0.as_ref() != entries[i].0.as_ref());
            if last_of_key {
                entries.swap(unique, i);
                unique += 1;
            }
        }
        let entries = &entries[..unique];
        // A fixed hasher: the same entries must hash alike on every call.
        let hash = {
            let mut h = FxHasher::default();
            for (k, v) in entries {
                h.write(k.as_ref().as_bytes());
                h.write_u8(0xff);
                h.write(v.as_ref().as_bytes());
                h.write_u8(0xfe);
            }
            h.finish()
        };
        let mut tables = self.tables();
        let same = |map: &LabelMap| {
            map.len() == entries.len()
                && map
                    .iter()
                    .zip(entries)
                    .all(|((a, b), (c, d))| a == c.as_ref() && b == d.as_ref())
        };
        if let Some(found) = tables
            .label_maps
            .get(&hash)
            .and_then(|maps| maps.iter().find(|m| same(m)))
        {
            return found.clone();
        }
        let strs = &mut tables.strs;
        let map = LabelMap::from_sorted(
            entries
                .iter()
                .map(|(k, v)| (intern_str(strs, k.as_ref()), intern_str(strs, v.as_ref())))
                .collect(),
        );
        tables.label_maps.entry(hash).or_default().push(map.clone());
        map
    }

    /// The shared copy of `value` (owners, proxy facts, ambient facts).
    pub fn shared<T>(&self, value: T) -> Shared<T>
    where
        T: Eq + Hash + Send + Sync + 'static,
    {
        let mut tables = self.tables();
        let set = tables
            .any
            .entry(std::any::TypeId::of::<T>())
            .or_insert_with(|| Box::new(HashSet::<Shared<T>>::new()))
            .downcast_mut::<HashSet<Shared<T>>>()
            .expect("one table per type");
        if let Some(found) = set.get(&value) {
            return found.clone();
        }
        let shared = Shared::new(value);
        set.insert(shared.clone());
        shared
    }
}

impl Interner {
    /// The shared copy of the value a borrowed form describes, found by
    /// `form_hash` (from [`Interner::form_hash`]) and `same` before
    /// anything is built; `build` makes the owned value only the first
    /// time. For values read once per object whose borrowed form is
    /// cheaper to compare than the owned one is to build (a pod's owner
    /// references: five strings a pod, one copy for the pods of a
    /// ReplicaSet).
    pub fn shared_by_form<T>(
        &self,
        form_hash: u64,
        same: impl Fn(&T) -> bool,
        build: impl FnOnce() -> T,
    ) -> Shared<T>
    where
        T: Send + Sync + 'static,
    {
        // The first value of a hash is held in the entry itself, and only
        // values whose hash collides with it in the list beside it (which
        // allocates nothing while empty).
        type Table<T> = HashMap<u64, (Shared<T>, Vec<Shared<T>>)>;
        let mut tables = self.tables();
        let by_hash = tables
            .by_form
            .entry(std::any::TypeId::of::<T>())
            .or_insert_with(|| Box::new(Table::<T>::new()))
            .downcast_mut::<Table<T>>()
            .expect("one table per type");
        match by_hash.entry(form_hash) {
            std::collections::hash_map::Entry::Occupied(mut entry) => {
                let (first, others) = entry.get_mut();
                if same(first) {
                    return first.clone();
                }
                if let Some(found) = others.iter().find(|c| same(c)) {
                    return found.clone();
                }
                let shared = Shared::new(build());
                others.push(shared.clone());
                shared
            }
            std::collections::hash_map::Entry::Vacant(entry) => {
                let shared = Shared::new(build());
                entry.insert((shared.clone(), Vec::new()));
                shared
            }
        }
    }

    /// A fixed hash of strings (and flags) read in order, for
    /// [`Interner::shared_by_form`]: equal sequences hash alike on every call.
    pub fn form_hash<'s>(parts: impl IntoIterator<Item = &'s str>) -> u64 {
        let mut h = FxHasher::default();
        for part in parts {
            h.write(part.as_bytes());
            h.write_u8(0xff);
        }
        h.finish()
    }
}

impl<T> Borrow<T> for Shared<T> {
    fn borrow(&self) -> &T {
        &self.0
    }
}

fn intern_str(strs: &mut HashSet<SharedStr>, s: &str) -> SharedStr {
    if let Some(found) = strs.get(s) {
        return found.clone();
    }
    let shared = SharedStr::from(s);
    strs.insert(shared.clone());
    shared
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_value_found_by_its_borrowed_form_is_built_once_and_a_hash_collision_is_told_apart() {
        let interner = Interner::default();
        let mut built = 0;
        let mut read = |form: &str, hash: u64| {
            interner.shared_by_form(
                hash,
                |v: &String| v == form,
                || {
                    built += 1;
                    form.to_string()
                },
            )
        };
        let hash = Interner::form_hash(["rs-1"]);
        let a = read("rs-1", hash);
        let b = read("rs-1", hash);
        // Another form under the same hash is another value.
        let c = read("rs-2", hash);
        assert!(Shared::ptr_eq(&a, &b));
        assert!(!Shared::ptr_eq(&a, &c));
        assert_eq!(*c, "rs-2");
        assert_eq!(built, 2);
        assert_eq!(
            Interner::form_hash(["a", "b"]),
            Interner::form_hash(["a", "b"])
        );
        assert_ne!(
            Interner::form_hash(["ab", ""]),
            Interner::form_hash(["a", "b"])
        );
    }

    #[test]
    fn equal_label_entries_read_twice_share_one_map_whatever_their_order() {
        let interner = Interner::default();
        let a = interner.labels(&mut [("b", "2"), ("a", "1")]);
        let b = interner.labels(&mut [("a", "1"), ("b", "2")]);
        assert!(Arc::ptr_eq(a.0.as_ref().unwrap(), b.0.as_ref().unwrap()));
        assert_eq!(a.get("a"), Some("1"));
        assert_eq!(a.get("c"), None);
        let c = interner.labels(&mut [("a", "1"), ("b", "3")]);
        assert_ne!(a, c);
        // The same strings are shared between maps.
        let (ka, kc) = (&a.entries()[0].0, &c.entries()[0].0);
        assert!(Arc::ptr_eq(&ka.0, &kc.0));
    }

    #[test]
    fn a_repeated_key_keeps_its_last_value_as_a_map_read_from_json_would() {
        let interner = Interner::default();
        let map = interner.labels(&mut [("a", "1"), ("b", "x"), ("a", "2")]);
        let json: Labels = serde_json::from_str(r#"{"a":"1","b":"x","a":"2"}"#).unwrap();
        assert_eq!(map, json);
        assert_eq!(map, LabelMap::from(&json));
    }

    #[test]
    fn shared_values_are_equal_by_value_and_copied_on_write() {
        let interner = Interner::default();
        let a = interner.shared(vec![1, 2]);
        let b = interner.shared(vec![1, 2]);
        assert!(Shared::ptr_eq(&a, &b));
        let mut c = b.clone();
        c.push(3);
        assert_eq!(*b, vec![1, 2]);
        assert_eq!(*c, vec![1, 2, 3]);
        assert_eq!(a, Shared::new(vec![1, 2]));
    }

    #[test]
    fn a_label_map_prints_and_serialises_as_a_map() {
        let map: LabelMap = [("b", "2"), ("a", "1")].into_iter().collect();
        assert_eq!(format!("{map:?}"), r#"{"a": "1", "b": "2"}"#);
        assert_eq!(serde_json::to_string(&map).unwrap(), r#"{"a":"1","b":"2"}"#);
        assert!(LabelMap::new().is_empty());
    }
}
