//! Helpers the controllers share: reading fields of JSON objects, compiled
//! label selectors, int-or-percent values, template hashes, conditions,
//! timestamps and the writes every controller makes.
//!
//! Objects stay `serde_json::Value` (as the store keeps them) rather than
//! typed structs: a controller reads a handful of fields and writes back
//! the object it read with one field changed, so a typed round trip would
//! cost more than it saves and could drop fields the sim does not model.

use std::collections::BTreeMap;
use std::time::Duration;

use chrono::{DateTime, SecondsFormat, Utc};
use serde_json::{Map, Value, json};

use crate::resources::Resource;
use crate::store::{Obj, ObjKey};
use crate::world::{World, WriteOptions};

/// Pod template or workload annotation: the pods never become Ready.
pub const NEVER_READY: &str = "mesh-sim.io/never-ready";
/// Pod template or workload annotation: simulated time until Ready
/// (`"30s"`, `"1m30s"`, `"500ms"`), overriding `SimConfig::pod_ready_delay`.
pub const READY_DELAY: &str = "mesh-sim.io/ready-delay";
/// Job pod annotation: simulated time a Job's pod runs before it succeeds.
pub const RUN_DURATION: &str = "mesh-sim.io/run-duration";

/// `Value::pointer` without its allocations: serde_json unescapes every
/// path segment into a new `String`, and the controllers read a few fields
/// of every pod of a changed namespace on every pass.
pub trait At {
    fn at(&self, pointer: &str) -> Option<&Value>;
}

impl At for Value {
    fn at(&self, pointer: &str) -> Option<&Value> {
        if pointer.is_empty() {
            return Some(self);
        }
        let mut target = self;
        for token in pointer.strip_prefix('/')?.split('/') {
            let unescaped;
            let token = if token.contains('~') {
                unescaped = token.replace("~1", "/").replace("~0", "~");
                unescaped.as_str()
            } else {
                token
            };
            target = match target {
                Value::Object(map) => map.get(token)?,
                Value::Array(items) => items.get(token.parse::<usize>().ok()?)?,
                _ => return None,
            };
        }
        Some(target)
    }
}

pub fn str_at<'a>(obj: &'a Value, pointer: &str) -> Option<&'a str> {
    obj.at(pointer).and_then(Value::as_str)
}

pub fn i64_at(obj: &Value, pointer: &str) -> Option<i64> {
    obj.at(pointer).and_then(Value::as_i64)
}

pub fn bool_at(obj: &Value, pointer: &str) -> bool {
    obj.at(pointer).and_then(Value::as_bool).unwrap_or(false)
}

pub fn name_of(obj: &Value) -> &str {
    str_at(obj, "/metadata/name").unwrap_or("")
}

pub fn namespace_of(obj: &Value) -> &str {
    str_at(obj, "/metadata/namespace").unwrap_or("")
}

pub fn uid_of(obj: &Value) -> &str {
    str_at(obj, "/metadata/uid").unwrap_or("")
}

pub fn annotation<'a>(obj: &'a Value, key: &str) -> Option<&'a str> {
    obj.at("/metadata/annotations")
        .and_then(|a| a.get(key))
        .and_then(Value::as_str)
}

pub fn label<'a>(obj: &'a Value, key: &str) -> Option<&'a str> {
    obj.at("/metadata/labels")
        .and_then(|a| a.get(key))
        .and_then(Value::as_str)
}

pub fn is_being_deleted(obj: &Value) -> bool {
    obj.at("/metadata/deletionTimestamp")
        .is_some_and(|v| !v.is_null())
}

/// `metadata.generation` (1 when the kind has none).
pub fn generation_of(obj: &Value) -> i64 {
    i64_at(obj, "/metadata/generation").unwrap_or(1)
}

/// The owner reference with `controller: true`: `(kind, name, uid)`.
pub fn controller_of(obj: &Value) -> Option<(&str, &str, &str)> {
    obj.at("/metadata/ownerReferences")?
        .as_array()?
        .iter()
        .find(|r| r.get("controller").and_then(Value::as_bool) == Some(true))
        .map(|r| {
            (
                r.get("kind").and_then(Value::as_str).unwrap_or(""),
                r.get("name").and_then(Value::as_str).unwrap_or(""),
                r.get("uid").and_then(Value::as_str).unwrap_or(""),
            )
        })
}

/// A controller owner reference to `owner`, as controllers set on what they create.
pub fn controller_ref(owner: &Value) -> Value {
    json!({
        "apiVersion": owner.get("apiVersion").cloned().unwrap_or(Value::Null),
        "kind": owner.get("kind").cloned().unwrap_or(Value::Null),
        "name": name_of(owner),
        "uid": uid_of(owner),
        "controller": true,
        "blockOwnerDeletion": true,
    })
}

/// A structured label selector (`matchLabels` + `matchExpressions`),
/// compiled once: the controllers match it against every pod of a
/// namespace, so it must not be re-parsed per pod.
#[derive(Debug, Clone, Default)]
pub struct Selector {
    equal: Vec<(String, String)>,
    expressions: Vec<(String, Operator, Vec<String>)>,
    /// A selector that matches nothing (null, or malformed).
    nothing: bool,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Operator {
    In,
    NotIn,
    Exists,
    DoesNotExist,
}

impl Selector {
    /// A `metav1.LabelSelector`; null or malformed selects nothing, `{}` everything.
    pub fn from_label_selector(selector: Option<&Value>) -> Self {
        let Some(selector) = selector.filter(|s| s.is_object()) else {
            return Selector {
                nothing: true,
                ..Selector::default()
            };
        };
        let mut compiled = Selector::from_map(selector.get("matchLabels"));
        for expression in selector
            .get("matchExpressions")
            .and_then(Value::as_array)
            .into_iter()
            .flatten()
        {
            let key = expression.get("key").and_then(Value::as_str).unwrap_or("");
            let values: Vec<String> = expression
                .get("values")
                .and_then(Value::as_array)
                .into_iter()
                .flatten()
                .filter_map(|v| v.as_str().map(str::to_string))
                .collect();
            let operator = match expression.get("operator").and_then(Value::as_str) {
                Some("In") => Operator::In,
                Some("NotIn") => Operator::NotIn,
                Some("Exists") => Operator::Exists,
                Some("DoesNotExist") => Operator::DoesNotExist,
                _ => {
                    compiled.nothing = true;
                    continue;
                }
            };
            compiled
                .expressions
                .push((key.to_string(), operator, values));
        }
        compiled
    }

    /// A plain `key: value` map, as a Service's `spec.selector` or `matchLabels`.
    pub fn from_map(map: Option<&Value>) -> Self {
        let equal = map
            .and_then(Value::as_object)
            .into_iter()
            .flatten()
            .filter_map(|(k, v)| Some((k.clone(), v.as_str()?.to_string())))
            .collect();
        Selector {
            equal,
            expressions: Vec::new(),
            nothing: false,
        }
    }

    pub fn matches(&self, labels: &Map<String, Value>) -> bool {
        if self.nothing {
            return false;
        }
        let get = |k: &str| labels.get(k).and_then(Value::as_str);
        self.equal.iter().all(|(k, v)| get(k) == Some(v.as_str()))
            && self.expressions.iter().all(|(k, op, values)| match op {
                Operator::In => get(k).is_some_and(|v| values.iter().any(|x| x == v)),
                Operator::NotIn => get(k).is_none_or(|v| values.iter().all(|x| x != v)),
                Operator::Exists => get(k).is_some(),
                Operator::DoesNotExist => get(k).is_none(),
            })
    }

    /// Matches the labels of `obj`.
    pub fn matches_obj(&self, obj: &Value) -> bool {
        static EMPTY: std::sync::OnceLock<Map<String, Value>> = std::sync::OnceLock::new();
        let labels = obj
            .at("/metadata/labels")
            .and_then(Value::as_object)
            .unwrap_or_else(|| EMPTY.get_or_init(Map::new));
        self.matches(labels)
    }

    pub fn matches_nothing(&self) -> bool {
        self.nothing
    }

    /// One `key=value` requirement, if there is any: the pod index narrows a
    /// namespace's pods to those carrying it before matching the rest.
    pub fn first_equality(&self) -> Option<(&str, &str)> {
        self.equal.first().map(|(k, v)| (k.as_str(), v.as_str()))
    }
}

/// Resolves an int-or-percent (`3` or `"25%"`) against `total`: percentages
/// round up or down as the caller's field does in Kubernetes.
pub fn int_or_percent(value: Option<&Value>, total: i64, round_up: bool) -> i64 {
    match value {
        Some(Value::Number(n)) => n.as_i64().unwrap_or(0),
        Some(Value::String(s)) => {
            if let Some(p) = s.strip_suffix('%') {
                let percent: i64 = p.trim().parse().unwrap_or(0);
                let scaled = total * percent;
                if round_up {
                    (scaled + 99).div_euclid(100)
                } else {
                    scaled.div_euclid(100)
                }
            } else {
                s.trim().parse().unwrap_or(0)
            }
        }
        _ => 0,
    }
}

/// FNV-1a over a canonical walk of the value (object keys sorted), so equal
/// templates hash equally whatever order their keys were written in.
struct Fnv(u64);

impl Fnv {
    fn new() -> Self {
        Fnv(0xcbf2_9ce4_8422_2325)
    }
    fn write(&mut self, bytes: &[u8]) {
        for b in bytes {
            self.0 ^= u64::from(*b);
            self.0 = self.0.wrapping_mul(0x0100_0000_01b3);
        }
    }
    fn value(&mut self, v: &Value) {
        match v {
            Value::Null => self.write(b"n"),
            Value::Bool(b) => self.write(if *b { b"t" } else { b"f" }),
            Value::Number(n) => {
                self.write(b"#");
                self.write(n.to_string().as_bytes());
            }
            Value::String(s) => {
                self.write(b"\"");
                self.write(&(s.len() as u64).to_le_bytes());
                self.write(s.as_bytes());
            }
            Value::Array(items) => {
                self.write(b"[");
                for item in items {
                    self.value(item);
                }
                self.write(b"]");
            }
            Value::Object(map) => {
                let mut keys: Vec<&String> = map.keys().collect();
                keys.sort();
                self.write(b"{");
                for k in keys {
                    self.write(&(k.len() as u64).to_le_bytes());
                    self.write(k.as_bytes());
                    self.value(&map[k]);
                }
                self.write(b"}");
            }
        }
    }
}

/// Kubernetes' alphabet for generated names (no vowels, no look-alikes).
const ALPHABET: &[u8] = b"bcdfghjklmnpqrstvwxz2456789";

fn encode(mut x: u64, len: usize) -> String {
    (0..len)
        .map(|_| {
            let c = ALPHABET[(x % ALPHABET.len() as u64) as usize] as char;
            x /= ALPHABET.len() as u64;
            c
        })
        .collect()
}

/// The `pod-template-hash` / `controller-revision-hash` of a pod template:
/// ten characters, stable for equal templates, changed by a collision count.
pub fn template_hash(template: &Value, collision_count: Option<i64>) -> String {
    let mut h = Fnv::new();
    h.value(template);
    if let Some(c) = collision_count {
        h.write(b"collision");
        h.write(&c.to_le_bytes());
    }
    encode(h.0, 10)
}

/// A short stable name suffix derived from `parts`.
pub fn short_hash(parts: &[&str], len: usize) -> String {
    let mut h = Fnv::new();
    for p in parts {
        h.write(p.as_bytes());
        h.write(b"\0");
    }
    encode(h.0, len)
}

/// 64 hex digits derived from `seed`, for image digests and container ids.
pub fn fake_digest(seed: &str) -> String {
    (0..4u8)
        .map(|i| {
            let mut h = Fnv::new();
            h.write(&[i]);
            h.write(seed.as_bytes());
            format!("{:016x}", h.0)
        })
        .collect()
}

/// RFC 3339 with seconds, as Kubernetes writes timestamps.
pub fn fmt_time(t: DateTime<Utc>) -> String {
    t.to_rfc3339_opts(SecondsFormat::Secs, true)
}

pub fn parse_time(s: &str) -> Option<DateTime<Utc>> {
    DateTime::parse_from_rfc3339(s)
        .ok()
        .map(|t| t.with_timezone(&Utc))
}

/// A Go-style duration (`"30s"`, `"1m30s"`, `"500ms"`, `"1.5h"`); a bare
/// number is seconds.
pub fn parse_duration(text: &str) -> Option<Duration> {
    let text = text.trim();
    if let Ok(seconds) = text.parse::<f64>() {
        return (seconds >= 0.0).then(|| Duration::from_secs_f64(seconds));
    }
    let mut total = 0.0f64;
    let mut rest = text;
    while !rest.is_empty() {
        let number_len = rest
            .find(|c: char| !(c.is_ascii_digit() || c == '.'))
            .unwrap_or(rest.len());
        let number: f64 = rest[..number_len].parse().ok()?;
        rest = &rest[number_len..];
        let unit_len = rest
            .find(|c: char| c.is_ascii_digit() || c == '.')
            .unwrap_or(rest.len());
        let scale = match &rest[..unit_len] {
            "ns" => 1e-9,
            "us" | "µs" => 1e-6,
            "ms" => 1e-3,
            "s" => 1.0,
            "m" => 60.0,
            "h" => 3600.0,
            _ => return None,
        };
        rest = &rest[unit_len..];
        total += number * scale;
    }
    Some(Duration::from_secs_f64(total))
}

pub fn add(t: DateTime<Utc>, d: Duration) -> DateTime<Utc> {
    t + chrono::Duration::from_std(d).unwrap_or_else(|_| chrono::Duration::days(365 * 100))
}

/// Finds a condition of `type` in a `conditions` array.
pub fn condition<'a>(conditions: &'a [Value], kind: &str) -> Option<&'a Value> {
    conditions
        .iter()
        .find(|c| c.get("type").and_then(Value::as_str) == Some(kind))
}

/// The conditions array at `status.conditions` (empty when absent).
pub fn conditions_of(obj: &Value) -> Vec<Value> {
    obj.at("/status/conditions")
        .and_then(Value::as_array)
        .cloned()
        .unwrap_or_default()
}

/// Sets a condition the way the Kubernetes controllers' helpers do: an
/// existing one with the same status and reason is left alone (its times
/// and message are history; remove it first to refresh it); otherwise it is replaced, keeping `lastTransitionTime` when
/// the status did not change, and moved to the end. `lastUpdateTime` is
/// written only for kinds whose conditions carry it (Deployments).
pub fn set_condition(
    conditions: &mut Vec<Value>,
    kind: &str,
    status: &str,
    reason: &str,
    message: &str,
    now: &str,
    with_update_time: bool,
) {
    let existing = condition(conditions, kind).cloned();
    if let Some(c) = &existing {
        if c.get("status").and_then(Value::as_str) == Some(status)
            && c.get("reason").and_then(Value::as_str) == Some(reason)
        {
            return;
        }
    }
    let transition = match &existing {
        Some(c) if c.get("status").and_then(Value::as_str) == Some(status) => c
            .get("lastTransitionTime")
            .cloned()
            .unwrap_or_else(|| json!(now)),
        _ => json!(now),
    };
    conditions.retain(|c| c.get("type").and_then(Value::as_str) != Some(kind));
    let mut c = json!({"type": kind, "status": status});
    if with_update_time {
        c["lastUpdateTime"] = json!(now);
    }
    c["lastTransitionTime"] = transition;
    c["reason"] = json!(reason);
    c["message"] = json!(message);
    conditions.push(c);
}

pub fn remove_condition(conditions: &mut Vec<Value>, kind: &str) {
    conditions.retain(|c| c.get("type").and_then(Value::as_str) != Some(kind));
}

/// Writes `status` through the `/status` subresource unless it is what the
/// object already has; returns whether it wrote.
pub fn write_status(
    world: &mut World,
    resource: &'static Resource,
    current: &Value,
    status: Value,
) -> bool {
    if current.get("status") == Some(&status) {
        return false;
    }
    let mut patch = json!({"metadata": {"name": name_of(current)}, "status": status});
    if resource.namespaced {
        patch["metadata"]["namespace"] = json!(namespace_of(current));
    }
    match world.update_status(resource, patch, &WriteOptions::default()) {
        Ok(_) => true,
        Err(e) => {
            tracing::debug!(kind = resource.kind, name = name_of(current), error = %e, "status write failed");
            false
        }
    }
}

/// Writes a changed object (spec or metadata) back; returns the stored result.
pub fn write_object(world: &mut World, resource: &'static Resource, next: Value) -> Option<Obj> {
    match world.update(resource, next, &WriteOptions::default()) {
        Ok(obj) => Some(obj),
        Err(e) => {
            tracing::debug!(kind = resource.kind, error = %e, "update failed");
            None
        }
    }
}

pub fn get(world: &World, resource: &Resource, key: &ObjKey) -> Option<Obj> {
    world.store.get(resource, &key.namespace, &key.name)
}

/// Inserts `key: value` into a JSON map at `obj[field]`, creating it.
pub fn insert_str(obj: &mut Value, field: &str, key: &str, value: &str) {
    if !obj.get(field).is_some_and(Value::is_object) {
        obj[field] = json!({});
    }
    obj[field][key] = json!(value);
}

/// A JSON object with the non-zero counts of `fields`, in order: most
/// workload status counters are `omitempty` in the API.
pub fn counts(fields: &[(&str, i64)]) -> Map<String, Value> {
    let mut map = Map::new();
    for (k, v) in fields {
        if *v != 0 {
            map.insert((*k).to_string(), json!(v));
        }
    }
    map
}

/// The labels of an object as a sorted map, for code that compares them.
pub fn label_map(obj: &Value) -> BTreeMap<String, String> {
    crate::selectors::labels_of(obj)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn percentages_round_the_way_each_field_asks() {
        let pct = json!("25%");
        assert_eq!(int_or_percent(Some(&pct), 3, true), 1);
        assert_eq!(int_or_percent(Some(&pct), 3, false), 0);
        assert_eq!(int_or_percent(Some(&pct), 4, false), 1);
        assert_eq!(int_or_percent(Some(&json!(2)), 10, true), 2);
        assert_eq!(int_or_percent(Some(&json!("3")), 10, true), 3);
        assert_eq!(int_or_percent(None, 10, true), 0);
    }

    #[test]
    fn template_hash_ignores_key_order_and_changes_with_content() {
        let a = json!({"metadata": {"labels": {"app": "x", "tier": "web"}}, "spec": {"containers": []}});
        let b: Value = serde_json::from_str(
            r#"{"spec":{"containers":[]},"metadata":{"labels":{"tier":"web","app":"x"}}}"#,
        )
        .unwrap();
        assert_eq!(template_hash(&a, None), template_hash(&b, None));
        assert_eq!(template_hash(&a, None).len(), 10);
        assert_ne!(template_hash(&a, None), template_hash(&a, Some(1)));
        let c = json!({"metadata": {"labels": {"app": "y"}}, "spec": {"containers": []}});
        assert_ne!(template_hash(&a, None), template_hash(&c, None));
        assert!(
            template_hash(&a, None)
                .bytes()
                .all(|b| ALPHABET.contains(&b))
        );
    }

    #[test]
    fn go_durations_parse() {
        assert_eq!(parse_duration("30s"), Some(Duration::from_secs(30)));
        assert_eq!(parse_duration("1m30s"), Some(Duration::from_secs(90)));
        assert_eq!(parse_duration("500ms"), Some(Duration::from_millis(500)));
        assert_eq!(parse_duration("2"), Some(Duration::from_secs(2)));
        assert_eq!(parse_duration("soon"), None);
    }

    #[test]
    fn selectors_follow_label_selector_semantics() {
        let labels = json!({"app": "web", "tier": "front"});
        let labels = labels.as_object().unwrap();
        let s = Selector::from_label_selector(Some(&json!({
            "matchLabels": {"app": "web"},
            "matchExpressions": [{"key": "tier", "operator": "In", "values": ["front", "back"]},
                                 {"key": "canary", "operator": "DoesNotExist"}]
        })));
        assert!(s.matches(labels));
        assert!(
            !Selector::from_label_selector(Some(&json!({"matchLabels": {"app": "db"}})))
                .matches(labels)
        );
        assert!(Selector::from_label_selector(Some(&json!({}))).matches(labels));
        assert!(!Selector::from_label_selector(None).matches(labels));
        assert!(!Selector::from_label_selector(Some(&Value::Null)).matches(labels));
    }

    #[test]
    fn set_condition_keeps_transition_time_when_status_is_unchanged() {
        let mut conditions = Vec::new();
        set_condition(
            &mut conditions,
            "Progressing",
            "True",
            "NewReplicaSetCreated",
            "a",
            "t1",
            true,
        );
        set_condition(
            &mut conditions,
            "Progressing",
            "True",
            "ReplicaSetUpdated",
            "b",
            "t2",
            true,
        );
        assert_eq!(conditions[0]["lastTransitionTime"], "t1");
        assert_eq!(conditions[0]["lastUpdateTime"], "t2");
        set_condition(
            &mut conditions,
            "Progressing",
            "False",
            "ProgressDeadlineExceeded",
            "c",
            "t3",
            true,
        );
        assert_eq!(conditions[0]["lastTransitionTime"], "t3");
    }
}
