//! What the controllers remember between passes: which objects changed
//! since the last pass (read from the store's watch history, like an
//! informer), who owns what (an index by owner uid), and timers on the
//! simulated clock (a pod due to become Ready, a Deployment's progress
//! deadline, a retry after a failed pod creation).
//!
//! ```text
//!   store history ──absorb──> Dirty sets ──controllers──> writes ──> history
//!                                 ^
//!   Timers (sim clock) ──due──────┘
//! ```
//!
//! This is what keeps a pass cheap on a 50,000-pod cluster: a pass looks
//! only at what changed or fell due, and finds a workload's pods through
//! the owner index instead of scanning every pod.

use std::collections::{BTreeSet, HashMap};

use chrono::{DateTime, Utc};
use serde_json::Value;

use super::util::controller_of;
use crate::resources::{Resource, kinds};
use crate::store::{EventType, ObjKey};
use crate::world::World;

/// Something a timer wakes up.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Target {
    Pod(ObjKey),
    ReplicaSet(ObjKey),
    Deployment(ObjKey),
    StatefulSet(ObjKey),
    DaemonSet(ObjKey),
    Job(ObjKey),
    Rollout(ObjKey),
    CronJob(ObjKey),
    /// A PodDisruptionBudget whose `disruptedPods` record expires.
    Pdb(ObjKey),
}

/// One timer per target; setting it again replaces it, so a workload that
/// finished its rollout drops the deadline it no longer needs.
#[derive(Debug, Default)]
pub struct Timers {
    by_target: HashMap<Target, (DateTime<Utc>, bool)>,
    queue: BTreeSet<(DateTime<Utc>, Target)>,
    blocking: usize,
}

impl Timers {
    /// Wakes `target` at `at`. A `blocking` timer keeps the cluster from
    /// counting as settled (a pod about to become Ready); a non-blocking one
    /// is only a retry.
    pub fn set(&mut self, target: Target, at: DateTime<Utc>, blocking: bool) {
        self.clear(&target);
        if blocking {
            self.blocking += 1;
        }
        self.queue.insert((at, target.clone()));
        self.by_target.insert(target, (at, blocking));
    }

    pub fn clear(&mut self, target: &Target) {
        if let Some((at, blocking)) = self.by_target.remove(target) {
            if blocking {
                self.blocking -= 1;
            }
            self.queue.remove(&(at, target.clone()));
        }
    }

    /// Removes and returns every target due at `now`.
    pub fn take_due(&mut self, now: DateTime<Utc>) -> Vec<Target> {
        let mut due = Vec::new();
        while let Some((at, _)) = self.queue.first() {
            if *at > now {
                break;
            }
            let Some((_, target)) = self.queue.pop_first() else {
                break;
            };
            if let Some((_, blocking)) = self.by_target.remove(&target) {
                if blocking {
                    self.blocking -= 1;
                }
            }
            due.push(target);
        }
        due
    }

    pub fn next(&self) -> Option<DateTime<Utc>> {
        self.queue.first().map(|(at, _)| *at)
    }

    pub fn has_blocking(&self) -> bool {
        self.blocking > 0
    }
}

/// Dependents by the uid of their controller (ownerReference with `controller: true`).
#[derive(Debug, Default)]
pub struct OwnerIndex {
    by_owner: HashMap<String, BTreeSet<ObjKey>>,
    owner_of: HashMap<ObjKey, String>,
}

impl OwnerIndex {
    fn set(&mut self, key: ObjKey, owner: Option<&str>) {
        if let Some(old) = self.owner_of.get(&key) {
            if Some(old.as_str()) == owner {
                return;
            }
            if let Some(set) = self.by_owner.get_mut(old) {
                set.remove(&key);
                if set.is_empty() {
                    self.by_owner.remove(old);
                }
            }
            self.owner_of.remove(&key);
        }
        if let Some(uid) = owner.filter(|u| !u.is_empty()) {
            self.by_owner
                .entry(uid.to_string())
                .or_default()
                .insert(key.clone());
            self.owner_of.insert(key, uid.to_string());
        }
    }

    /// Keys of the objects `uid` controls, in name order.
    pub fn dependents(&self, uid: &str) -> Vec<ObjKey> {
        self.by_owner
            .get(uid)
            .map(|s| s.iter().cloned().collect())
            .unwrap_or_default()
    }

    fn clear(&mut self) {
        self.by_owner.clear();
        self.owner_of.clear();
    }
}

/// Objects each controller must look at in this pass.
#[derive(Debug, Default)]
pub struct Dirty {
    pub deployments: BTreeSet<ObjKey>,
    pub replicasets: BTreeSet<ObjKey>,
    pub statefulsets: BTreeSet<ObjKey>,
    pub daemonsets: BTreeSet<ObjKey>,
    pub all_daemonsets: bool,
    pub jobs: BTreeSet<ObjKey>,
    pub cronjobs: BTreeSet<ObjKey>,
    pub rollouts: BTreeSet<ObjKey>,
    pub pods: BTreeSet<ObjKey>,
    pub services: BTreeSet<ObjKey>,
    /// Namespaces whose pods changed: every Service and PDB there is looked at.
    pub pod_namespaces: BTreeSet<String>,
    pub pdbs: BTreeSet<ObjKey>,
    pub namespaces: BTreeSet<String>,
    /// Gateways whose rendered objects or status may be out of date.
    pub gateways: BTreeSet<ObjKey>,
    /// Something every Gateway depends on changed (an istiod, a tag, a
    /// class, a namespace's labels): reconcile them all.
    pub all_gateways: bool,
    /// Nodes that changed (their taints follow `spec.unschedulable`).
    pub nodes: BTreeSet<String>,
    /// Pods the ambient CNI agent looks at: every pod that changed.
    pub ambient_pods: BTreeSet<ObjKey>,
    /// Namespaces whose labels may have enrolled or released their pods.
    pub ambient_namespaces: BTreeSet<String>,
    /// Nodes whose istio-cni or ztunnel pod changed: all their pods.
    pub ambient_nodes: BTreeSet<String>,
}

impl Dirty {
    pub fn is_empty(&self) -> bool {
        self.deployments.is_empty()
            && self.replicasets.is_empty()
            && self.statefulsets.is_empty()
            && self.daemonsets.is_empty()
            && !self.all_daemonsets
            && self.jobs.is_empty()
            && self.cronjobs.is_empty()
            && self.rollouts.is_empty()
            && self.pods.is_empty()
            && self.services.is_empty()
            && self.pod_namespaces.is_empty()
            && self.pdbs.is_empty()
            && self.namespaces.is_empty()
            && self.gateways.is_empty()
            && !self.all_gateways
            && self.nodes.is_empty()
            && self.ambient_pods.is_empty()
            && self.ambient_namespaces.is_empty()
            && self.ambient_nodes.is_empty()
    }

    pub fn mark(&mut self, target: Target) {
        match target {
            Target::Pod(k) => {
                self.pods.insert(k);
            }
            Target::ReplicaSet(k) => {
                self.replicasets.insert(k);
            }
            Target::Deployment(k) => {
                self.deployments.insert(k);
            }
            Target::StatefulSet(k) => {
                self.statefulsets.insert(k);
            }
            Target::DaemonSet(k) => {
                self.daemonsets.insert(k);
            }
            Target::Job(k) => {
                self.jobs.insert(k);
            }
            Target::Rollout(k) => {
                self.rollouts.insert(k);
            }
            Target::CronJob(k) => {
                self.cronjobs.insert(k);
            }
            Target::Pdb(k) => {
                self.pdbs.insert(k);
            }
        }
    }

    /// Marks the controller of `obj` (found by kind and name in its namespace).
    fn mark_controller_of(&mut self, obj: &Value) {
        let Some((kind, name, _)) = controller_of(obj) else {
            return;
        };
        let key = ObjKey::new(super::util::namespace_of(obj), name);
        match kind {
            "ReplicaSet" => self.mark(Target::ReplicaSet(key)),
            "Deployment" => self.mark(Target::Deployment(key)),
            "StatefulSet" => self.mark(Target::StatefulSet(key)),
            "DaemonSet" => self.mark(Target::DaemonSet(key)),
            "Job" => self.mark(Target::Job(key)),
            "Rollout" => self.mark(Target::Rollout(key)),
            "CronJob" => self.mark(Target::CronJob(key)),
            _ => {}
        }
    }
}

/// The kinds whose changes wake a controller.
fn watched() -> [&'static Resource; 21] {
    [
        kinds::namespaces(),
        kinds::nodes(),
        kinds::deployments(),
        kinds::replicasets(),
        kinds::statefulsets(),
        kinds::daemonsets(),
        kinds::controllerrevisions(),
        kinds::jobs(),
        kinds::cronjobs(),
        kinds::rollouts(),
        kinds::pods(),
        kinds::services(),
        kinds::endpoints(),
        kinds::endpointslices(),
        kinds::pdbs(),
        kinds::mutating_webhooks(),
        kinds::validating_webhooks(),
        kinds::configmaps(),
        kinds::gateway_classes(),
        kinds::gateways(),
        kinds::http_routes(),
    ]
}

/// Everything the controllers keep between passes; lives in [`World`].
#[derive(Debug, Default)]
pub struct ControllerState {
    /// The store's resource version up to which changes have been absorbed.
    pub(crate) cursor: u64,
    pub(crate) initialized: bool,
    pub(crate) dirty: Dirty,
    pub(crate) timers: Timers,
    pub(crate) pods_by_owner: OwnerIndex,
    pub(crate) replicasets_by_owner: OwnerIndex,
    pub(crate) revisions_by_owner: OwnerIndex,
    /// EndpointSlice names by the Service they are labelled with.
    pub(crate) slices_by_service: HashMap<ObjKey, BTreeSet<String>>,
    /// Rollouts by the Deployment their `spec.workloadRef` names: a change
    /// of the Deployment's template is a change of theirs.
    pub(crate) rollouts_by_workload: HashMap<ObjKey, BTreeSet<String>>,
    /// When each running pod started, at full precision (`status.startTime`
    /// has whole seconds only), for readiness and Job completion times.
    pub(crate) pod_started: HashMap<ObjKey, DateTime<Utc>>,
    /// Workloads whose pod creation failed: when to try again and how many
    /// attempts failed in a row (the delay doubles).
    pub(crate) create_backoff: HashMap<Target, (DateTime<Utc>, u32)>,
    pub(crate) next_node: usize,
    /// Pods no node could take when they were looked at (every node
    /// cordoned or not Ready): looked at again when a Node changes.
    pub(crate) unscheduled: BTreeSet<ObjKey>,
    pub(crate) next_pod_ip: u32,
    pub(crate) next_cluster_ip: u32,
    pub(crate) next_load_balancer_ip: u32,
    pub(crate) next_node_port: u32,
}

impl ControllerState {
    /// Reads the store's history since the last absorb into the dirty sets
    /// and indexes. When the history no longer reaches back (compacted),
    /// everything is re-read.
    pub(crate) fn absorb(&mut self, world: &World) {
        let latest = world.store.resource_version();
        if latest == self.cursor && self.initialized {
            return;
        }
        if !self.initialized {
            self.rescan(world);
            self.cursor = latest;
            self.initialized = true;
            return;
        }
        let mut batches = Vec::new();
        for resource in watched() {
            match world.store.events_since(resource, self.cursor) {
                Ok(events) => batches.push(events),
                Err(_) => {
                    self.rescan(world);
                    self.cursor = latest;
                    return;
                }
            }
        }
        for event in batches.into_iter().flatten() {
            self.note(event.resource, event.event_type, &event.value());
        }
        self.cursor = latest;
    }

    /// Whether the store holds changes no pass has looked at yet.
    pub(crate) fn has_unabsorbed_changes(&self, world: &World) -> bool {
        if !self.initialized {
            return true;
        }
        if world.store.resource_version() == self.cursor {
            return false;
        }
        watched().into_iter().any(|r| {
            world
                .store
                .events_since(r, self.cursor)
                .is_ok_and(|e| !e.is_empty())
        }) || world
            .store
            .events_since(kinds::pods(), self.cursor)
            .is_err()
    }

    /// Re-reads every object of the watched kinds: rebuilds the indexes and
    /// marks everything dirty.
    fn rescan(&mut self, world: &World) {
        self.pods_by_owner.clear();
        self.replicasets_by_owner.clear();
        self.revisions_by_owner.clear();
        self.slices_by_service.clear();
        self.rollouts_by_workload.clear();
        for resource in watched() {
            for obj in world.store.list(resource, None) {
                self.note(resource, EventType::Added, &obj);
            }
        }
        self.dirty.all_daemonsets = true;
    }

    fn note(&mut self, resource: &'static Resource, event: EventType, obj: &Value) {
        let key = ObjKey::of(obj);
        let deleted = event == EventType::Deleted;
        let in_istio_namespace = key.namespace == crate::inject::ISTIO_NAMESPACE;
        let owner = if deleted {
            None
        } else {
            controller_of(obj).map(|(_, _, uid)| uid)
        };
        match resource.kind {
            "Pod" => {
                self.pods_by_owner.set(key.clone(), owner);
                self.dirty.mark_controller_of(obj);
                self.dirty.pod_namespaces.insert(key.namespace.clone());
                if deleted {
                    self.timers.clear(&Target::Pod(key.clone()));
                    self.pod_started.remove(&key);
                    self.unscheduled.remove(&key);
                } else {
                    self.dirty.ambient_pods.insert(key.clone());
                    self.dirty.pods.insert(key);
                }
                if in_istio_namespace
                    && (super::util::label(obj, "app") == Some(crate::inject::ZTUNNEL_APP)
                        || super::util::label(obj, "k8s-app") == Some(crate::inject::ISTIO_CNI_APP))
                {
                    if let Some(node) = super::util::str_at(obj, "/spec/nodeName") {
                        self.dirty.ambient_nodes.insert(node.to_string());
                    }
                }
            }
            "ReplicaSet" => {
                self.replicasets_by_owner.set(key.clone(), owner);
                self.dirty.mark_controller_of(obj);
                self.dirty.replicasets.insert(key);
            }
            "ControllerRevision" => {
                self.revisions_by_owner.set(key, owner);
                self.dirty.mark_controller_of(obj);
            }
            "Deployment" => {
                for rollout in self.rollouts_by_workload.get(&key).into_iter().flatten() {
                    self.dirty
                        .rollouts
                        .insert(ObjKey::new(&key.namespace, rollout));
                }
                self.dirty.deployments.insert(key);
            }
            "Rollout" => {
                self.rollouts_by_workload
                    .retain(|_, rollouts| !(rollouts.remove(&key.name) && rollouts.is_empty()));
                let workload = obj
                    .pointer("/spec/workloadRef/name")
                    .and_then(Value::as_str)
                    .filter(|_| !deleted);
                if let Some(workload) = workload {
                    self.rollouts_by_workload
                        .entry(ObjKey::new(&key.namespace, workload))
                        .or_default()
                        .insert(key.name.clone());
                }
                self.dirty.rollouts.insert(key);
            }
            "CronJob" => {
                self.dirty.cronjobs.insert(key);
            }
            "StatefulSet" => {
                self.dirty.statefulsets.insert(key);
            }
            "DaemonSet" => {
                self.dirty.daemonsets.insert(key);
            }
            "Job" => {
                self.dirty.mark_controller_of(obj);
                self.dirty.jobs.insert(key);
            }
            "Service" | "Endpoints" => {
                self.dirty.services.insert(key);
            }
            "EndpointSlice" => {
                if let Some(service) = super::util::label(obj, "kubernetes.io/service-name") {
                    let service = ObjKey::new(&key.namespace, service);
                    let slices = self.slices_by_service.entry(service.clone()).or_default();
                    if deleted {
                        slices.remove(&key.name);
                        if slices.is_empty() {
                            self.slices_by_service.remove(&service);
                        }
                    } else {
                        slices.insert(key.name);
                    }
                    self.dirty.services.insert(service);
                }
            }
            "PodDisruptionBudget" => {
                self.dirty.pdbs.insert(key);
            }
            "Namespace" if !deleted => {
                self.dirty.ambient_namespaces.insert(key.name.clone());
                self.dirty.namespaces.insert(key.name);
            }
            "Node" => {
                self.dirty.all_daemonsets = true;
                self.dirty.nodes.insert(key.name.clone());
                let waiting = std::mem::take(&mut self.unscheduled);
                self.dirty.pods.extend(waiting);
            }
            "MutatingWebhookConfiguration" => {
                self.retry_failed_creations();
                self.dirty.all_gateways = true;
            }
            "Gateway" => {
                self.dirty.gateways.insert(key.clone());
            }
            "GatewayClass" | "HTTPRoute" | "ValidatingWebhookConfiguration" => {
                self.dirty.all_gateways = true;
            }
            _ => {}
        }
        // istiod's gateway controller: what it rendered for a Gateway (or
        // the EndpointSlices of its Service) changed, or something every
        // Gateway's revision or rendering depends on did.
        if matches!(
            resource.kind,
            "Deployment" | "Service" | "ServiceAccount" | "EndpointSlice"
        ) {
            if let Some(gateway) = super::gateway::gateway_of(obj) {
                self.dirty.gateways.insert(gateway);
            }
        }
        if resource.kind == "Namespace"
            || (in_istio_namespace
                && matches!(
                    resource.kind,
                    "Deployment" | "Pod" | "Service" | "ConfigMap"
                ))
        {
            self.dirty.all_gateways = true;
        }
        // The injector webhooks are served from istio-system: a change there
        // (istiod becoming Ready, its Service appearing) may let a refused
        // pod creation through.
        if in_istio_namespace && matches!(resource.kind, "Pod" | "Service") {
            self.retry_failed_creations();
        }
    }

    /// Workloads waiting to retry a refused pod creation try again at once.
    fn retry_failed_creations(&mut self) {
        if self.create_backoff.is_empty() {
            return;
        }
        let waiting: Vec<Target> = self.create_backoff.keys().cloned().collect();
        for target in waiting {
            self.create_backoff.remove(&target);
            self.dirty.mark(target);
        }
    }

    /// Marks everything whose timer is due at `now`.
    pub(crate) fn fire_timers(&mut self, now: DateTime<Utc>) {
        for target in self.timers.take_due(now) {
            self.dirty.mark(target);
        }
    }
}
