//! The simulated cluster's state and the write semantics every writer shares.
//!
//! API handlers and controllers both write through [`World`], so admission
//! (Istio's injector), generation bumps, optimistic concurrency and garbage
//! collection behave the same whoever writes. The [`Store`] below only keeps
//! objects and events.

use std::time::Duration;

use serde_json::{Map, Value, json};

use crate::clock::SimClock;
use crate::error::{ApiError, ApiResult};
use crate::resources::{Resource, kinds};
use crate::store::{Obj, Store};

/// Knobs of the simulation that tests and scenarios set.
#[derive(Debug, Clone)]
pub struct SimConfig {
    /// Simulated time from a pod's start until it reports Ready.
    pub pod_ready_delay: Duration,
    /// Nodes created at start (DaemonSets run one pod per node).
    pub node_count: usize,
    /// Simulated seconds per wall second (0 pauses the clock).
    pub clock_speed: f64,
    /// Argo Rollouts is installed: its `Rollout` kind is served (discovery,
    /// requests) and its controller runs. Without it, every request under
    /// `argoproj.io` answers 404, as on a cluster without the CRD.
    pub argo_rollouts: bool,
    /// The Gateway API's CRDs are installed ([`crate::resources::GATEWAY_API`]
    /// is served); without them its URLs answer 404 and discovery omits them,
    /// as on a cluster where nobody installed them.
    pub gateway_api: bool,
    /// LISTs of the kinds with a protobuf schema are answered in protobuf
    /// when the client prefers it, as the API server answers kubectl's typed
    /// clients; without it every LIST is JSON, as from an API server behind
    /// a JSON-only proxy.
    pub protobuf: bool,
}

impl Default for SimConfig {
    fn default() -> Self {
        SimConfig {
            pod_ready_delay: Duration::from_secs(2),
            node_count: 3,
            clock_speed: 50.0,
            argo_rollouts: true,
            gateway_api: true,
            protobuf: true,
        }
    }
}

impl SimConfig {
    /// Whether the API serves `resource` on this cluster: every built-in
    /// kind, Argo's only while Argo Rollouts is installed, and the Gateway
    /// API's only while its CRDs are.
    pub fn serves(&self, resource: &Resource) -> bool {
        if resource.group == crate::resources::ARGO_GROUP {
            self.argo_rollouts
        } else if crate::resources::GATEWAY_API.contains(resource) {
            self.gateway_api
        } else {
            true
        }
    }
}

/// Options of one write.
#[derive(Debug, Clone, Default)]
pub struct WriteOptions {
    /// `dryRun=All`: validate and answer, never store.
    pub dry_run: bool,
    pub field_manager: Option<String>,
}

impl WriteOptions {
    pub fn dry_run(dry_run: bool) -> Self {
        WriteOptions {
            dry_run,
            field_manager: None,
        }
    }
}

pub struct World {
    pub store: Store,
    pub clock: SimClock,
    pub config: SimConfig,
    uid_counter: u64,
    /// What the controllers remember between passes (indexes, timers).
    pub controllers: crate::controllers::ControllerState,
}

impl World {
    pub fn new(config: SimConfig) -> Self {
        let clock = SimClock::new(chrono::Utc::now(), config.clock_speed);
        World {
            store: Store::default(),
            clock,
            config,
            uid_counter: 0,
            controllers: Default::default(),
        }
    }

    fn next_uid(&mut self) -> String {
        self.uid_counter += 1;
        // Deterministic within a run, shaped like a UUID.
        format!("00000000-0000-4000-8000-{:012x}", self.uid_counter)
    }

    /// Whether the server serves `resource` ([`SimConfig::serves`]).
    pub fn serves(&self, resource: &Resource) -> bool {
        self.config.serves(resource)
    }

    /// The custom kinds served now (for discovery and routing).
    pub fn custom_kinds(&self) -> impl Iterator<Item = &'static Resource> {
        let installed = self.config.gateway_api;
        crate::resources::GATEWAY_API
            .iter()
            .filter(move |_| installed)
    }

    /// Creates an object: fills metadata, runs admission, stores it.
    pub fn create(
        &mut self,
        resource: &'static Resource,
        mut obj: Value,
        opts: &WriteOptions,
    ) -> ApiResult<Obj> {
        if !self.serves(resource) {
            return Err(crate::server::not_found_path());
        }
        normalize_type_meta(resource, &mut obj);
        crate::controllers::defaults::apply_defaults(resource, &mut obj);
        let meta = metadata_mut(&mut obj);
        if resource.namespaced {
            let ns = meta
                .get("namespace")
                .and_then(Value::as_str)
                .unwrap_or("")
                .to_string();
            if ns.is_empty() {
                return Err(ApiError::bad_request(
                    "the namespace of the object must be set",
                ));
            }
            if self.store.get(kinds::namespaces(), "", &ns).is_none() {
                return Err(ApiError::not_found("namespaces", &ns));
            }
        } else {
            meta.remove("namespace");
        }
        let mut name = meta
            .get("name")
            .and_then(Value::as_str)
            .unwrap_or("")
            .to_string();
        if name.is_empty() {
            let Some(prefix) = meta
                .get("generateName")
                .and_then(Value::as_str)
                .map(str::to_string)
            else {
                return Err(ApiError::invalid(
                    resource.kind,
                    "",
                    "metadata.name: Required value: name or generateName is required",
                ));
            };
            name = format!("{prefix}{}", short_suffix(self.uid_counter + 1));
            meta.insert("name".into(), json!(name));
        }
        validate_name(resource, &name)?;
        let ns = meta
            .get("namespace")
            .and_then(Value::as_str)
            .unwrap_or("")
            .to_string();
        if self.store.get(resource, &ns, &name).is_some() {
            return Err(ApiError::already_exists(resource.plural, &name));
        }
        let uid = self.next_uid();
        let now = self.clock.now_rfc3339();
        let meta = metadata_mut(&mut obj);
        meta.insert("uid".into(), json!(uid));
        meta.insert("creationTimestamp".into(), json!(now));
        meta.remove("resourceVersion");
        meta.remove("deletionTimestamp");
        if resource.has_generation() {
            meta.insert("generation".into(), json!(1));
        }
        if resource.kind == "Pod" {
            crate::inject::admit_pod(&self.store, &mut obj, opts.dry_run)?;
        }
        if opts.dry_run {
            return Ok(std::sync::Arc::new(obj));
        }
        Ok(self.store.put(resource, obj))
    }

    /// Replaces an object. A `resourceVersion` in `obj` must match the stored
    /// one (409 otherwise); `status` is kept from the stored object, as the
    /// main resource ignores status changes.
    pub fn update(
        &mut self,
        resource: &'static Resource,
        obj: Value,
        opts: &WriteOptions,
    ) -> ApiResult<Obj> {
        self.replace(resource, obj, opts, false)
    }

    /// Writes only `status` (the `/status` subresource); the rest is kept.
    pub fn update_status(
        &mut self,
        resource: &'static Resource,
        obj: Value,
        opts: &WriteOptions,
    ) -> ApiResult<Obj> {
        self.replace(resource, obj, opts, true)
    }

    fn replace(
        &mut self,
        resource: &'static Resource,
        mut obj: Value,
        opts: &WriteOptions,
        status_only: bool,
    ) -> ApiResult<Obj> {
        normalize_type_meta(resource, &mut obj);
        if !status_only {
            crate::controllers::defaults::apply_defaults(resource, &mut obj);
        }
        let key = crate::store::ObjKey::of(&obj);
        let Some(current) = self.store.get(resource, &key.namespace, &key.name) else {
            return Err(ApiError::not_found(resource.plural, &key.name));
        };
        if let Some(rv) = obj
            .pointer("/metadata/resourceVersion")
            .and_then(Value::as_str)
        {
            if !rv.is_empty()
                && Some(rv)
                    != current
                        .pointer("/metadata/resourceVersion")
                        .and_then(Value::as_str)
            {
                return Err(ApiError::conflict(
                    resource.plural,
                    &key.name,
                    "the object has been modified; please apply your changes to the latest version and try again",
                ));
            }
        }
        let mut next = if status_only {
            let mut next = (*current).clone();
            match obj.get("status") {
                Some(s) => next["status"] = s.clone(),
                None => {
                    next.as_object_mut().map(|m| m.remove("status"));
                }
            }
            next
        } else {
            // Metadata the server owns stays the server's.
            let meta = metadata_mut(&mut obj);
            for owned in [
                "uid",
                "creationTimestamp",
                "generation",
                "deletionTimestamp",
            ] {
                match current.pointer(&format!("/metadata/{owned}")) {
                    Some(v) => {
                        meta.insert(owned.into(), v.clone());
                    }
                    None => {
                        meta.remove(owned);
                    }
                }
            }
            if resource.kind != "Namespace" || obj.get("status").is_none() {
                match current.get("status") {
                    Some(s) => obj["status"] = s.clone(),
                    None => {
                        obj.as_object_mut().map(|m| m.remove("status"));
                    }
                }
            }
            if resource.has_generation() && obj.get("spec") != current.get("spec") {
                let generation = current
                    .pointer("/metadata/generation")
                    .and_then(Value::as_i64)
                    .unwrap_or(1);
                metadata_mut(&mut obj).insert("generation".into(), json!(generation + 1));
            }
            obj
        };
        // Unchanged objects keep their resource version, as the API server
        // does for no-op writes.
        if strip_rv(&next) == strip_rv(&current) {
            return Ok(current);
        }
        if opts.dry_run {
            metadata_mut(&mut next).insert(
                "resourceVersion".into(),
                current
                    .pointer("/metadata/resourceVersion")
                    .cloned()
                    .unwrap_or(Value::Null),
            );
            return Ok(std::sync::Arc::new(next));
        }
        Ok(self.store.put(resource, next))
    }

    /// Deletes an object and, through ownerReferences, its dependents
    /// (background propagation). A namespace takes its contents with it.
    pub fn delete(
        &mut self,
        resource: &'static Resource,
        namespace: &str,
        name: &str,
        opts: &WriteOptions,
    ) -> ApiResult<Obj> {
        let Some(current) = self.store.get(resource, namespace, name) else {
            return Err(ApiError::not_found(resource.plural, name));
        };
        if opts.dry_run {
            return Ok(current);
        }
        let removed = self
            .store
            .remove(resource, namespace, name)
            .ok_or_else(|| ApiError::not_found(resource.plural, name))?;
        let mut gone = vec![uid_of(&removed)];
        if resource.kind == "Namespace" {
            let namespaced: Vec<&'static Resource> =
                self.store.kinds().filter(|r| r.namespaced).collect();
            for r in namespaced {
                let names: Vec<String> = self
                    .store
                    .list_stored(r, Some(name))
                    .map(|(k, _)| k.name.clone())
                    .collect();
                for n in names {
                    if let Some(o) = self.store.remove(r, name, &n) {
                        gone.push(uid_of(&o));
                    }
                }
            }
        }
        self.collect_dependents(gone);
        Ok(removed)
    }

    /// Removes the dependents of the objects whose uids are `gone` once all
    /// their owners are gone, and theirs in turn (background propagation).
    /// Finds them through the store's owner index, so a deletion costs what
    /// it removes, not a scan of the cluster.
    pub fn collect_dependents(&mut self, gone: Vec<String>) {
        let mut gone_set: std::collections::HashSet<String> = gone.iter().cloned().collect();
        let mut queue = gone;
        while let Some(uid) = queue.pop() {
            for (r, key) in self.store.dependents_of(&uid) {
                let Some(obj) = self.store.get(r, &key.namespace, &key.name) else {
                    continue;
                };
                let owners = obj
                    .pointer("/metadata/ownerReferences")
                    .and_then(Value::as_array)
                    .cloned()
                    .unwrap_or_default();
                let all_gone = owners.iter().all(|owner| {
                    let owner_uid = owner.get("uid").and_then(Value::as_str).unwrap_or("");
                    if gone_set.contains(owner_uid) {
                        return true;
                    }
                    let api_version = owner
                        .get("apiVersion")
                        .and_then(Value::as_str)
                        .unwrap_or("");
                    let kind = owner.get("kind").and_then(Value::as_str).unwrap_or("");
                    let name = owner.get("name").and_then(Value::as_str).unwrap_or("");
                    match crate::resources::lookup_kind(api_version, kind) {
                        Some(owner_resource) => self
                            .store
                            .get(owner_resource, &key.namespace, name)
                            .is_none_or(|o| {
                                o.pointer("/metadata/uid").and_then(Value::as_str)
                                    != Some(owner_uid)
                            }),
                        // An owner of a kind the server does not know
                        // cannot be checked: it is presumed alive.
                        None => false,
                    }
                });
                if all_gone {
                    if let Some(removed) = self.store.remove(r, &key.namespace, &key.name) {
                        let removed_uid = uid_of(&removed);
                        gone_set.insert(removed_uid.clone());
                        queue.push(removed_uid);
                    }
                }
            }
        }
    }

    /// Removes every object whose owners (by uid) are all gone, repeatedly,
    /// so a Deployment's deletion takes its ReplicaSets and then their pods.
    pub fn collect_garbage(&mut self) {
        loop {
            let mut live_uids = std::collections::HashSet::new();
            let all: Vec<&'static Resource> = self.store.kinds().collect();
            for r in &all {
                for o in self.store.list(r, None) {
                    if let Some(uid) = o.pointer("/metadata/uid").and_then(Value::as_str) {
                        live_uids.insert(uid.to_string());
                    }
                }
            }
            let mut orphans = Vec::new();
            for r in &all {
                for o in self.store.list(r, None) {
                    let Some(owners) = o
                        .pointer("/metadata/ownerReferences")
                        .and_then(Value::as_array)
                    else {
                        continue;
                    };
                    if !owners.is_empty()
                        && owners.iter().all(|ow| {
                            !ow.get("uid")
                                .and_then(Value::as_str)
                                .is_some_and(|u| live_uids.contains(u))
                        })
                    {
                        let k = crate::store::ObjKey::of(&o);
                        orphans.push((*r, k));
                    }
                }
            }
            if orphans.is_empty() {
                return;
            }
            for (r, k) in orphans {
                self.store.remove(r, &k.namespace, &k.name);
            }
        }
    }

    /// Moves simulated time forward (controllers see it on their next pass).
    pub fn advance(&mut self, by: Duration) {
        self.clock.advance(by);
    }
}

fn uid_of(obj: &Value) -> String {
    obj.pointer("/metadata/uid")
        .and_then(Value::as_str)
        .unwrap_or("")
        .to_string()
}

fn strip_rv(obj: &Value) -> Value {
    let mut o = obj.clone();
    if let Some(m) = o.get_mut("metadata").and_then(Value::as_object_mut) {
        m.remove("resourceVersion");
        m.remove("managedFields");
    }
    o
}

/// The object's `metadata` map, created if missing.
pub fn metadata_mut(obj: &mut Value) -> &mut Map<String, Value> {
    if !obj.is_object() {
        *obj = json!({});
    }
    let map = obj.as_object_mut().expect("object");
    map.entry("metadata")
        .or_insert_with(|| json!({}))
        .as_object_mut()
        .expect("metadata is an object")
}

fn normalize_type_meta(resource: &Resource, obj: &mut Value) {
    if let Some(map) = obj.as_object_mut() {
        map.insert("apiVersion".into(), json!(resource.api_version()));
        map.insert("kind".into(), json!(resource.kind));
    }
}

/// DNS-1123 subdomain names (lower case alphanumerics, `-` and `.`).
fn validate_name(resource: &Resource, name: &str) -> ApiResult<()> {
    let ok = !name.is_empty()
        && name.len() <= 253
        && name
            .chars()
            .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '-' || c == '.')
        && name
            .chars()
            .next()
            .is_some_and(|c| c.is_ascii_alphanumeric())
        && name
            .chars()
            .last()
            .is_some_and(|c| c.is_ascii_alphanumeric());
    if ok {
        Ok(())
    } else {
        Err(ApiError::invalid(
            resource.kind,
            name,
            format!(
                "metadata.name: Invalid value: \"{name}\": a lowercase RFC 1123 subdomain must consist of lower case alphanumeric characters, '-' or '.', and must start and end with an alphanumeric character"
            ),
        ))
    }
}

/// Five characters from Kubernetes' random-suffix alphabet, derived from `n`.
pub fn short_suffix(n: u64) -> String {
    const ALPHABET: &[u8] = b"bcdfghjklmnpqrstvwxz2456789";
    let mut x = n.wrapping_mul(0x9E37_79B9_7F4A_7C15) ^ 0x5bd1_e995;
    (0..5)
        .map(|_| {
            let c = ALPHABET[(x % ALPHABET.len() as u64) as usize] as char;
            x /= ALPHABET.len() as u64;
            c
        })
        .collect()
}
