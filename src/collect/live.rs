//! The read set kept current: what `status --watch` holds between two
//! screens, changed by watch events instead of being listed again.
//!
//! ```text
//!  read_lists: the LISTs ──► LiveLists::new ◄── ListChange ◄── change_of ◄── a watch per LIST
//!                              (compact structs by          (Watched::keep: the LISTs'
//!                               kind, namespace/name)        own conversions)
//!                          └─► LiveLists::with_snapshot ─► collect::assemble ─► ClusterSnapshot
//!                                (the lists moved in and back out, not copied)
//! ```
//!
//! Pure: no request, no clock. The watches themselves run in
//! `run/follow.rs`; this file only says what an event does to the lists.
//! Each kind is held as the LIST left it — the same compact structs, keyed
//! by namespace and name, in the API server's list order — and a snapshot is
//! assembled from them by [`assemble`], the one assembly, so a live screen
//! and a fresh `status` never disagree about the same objects.
//!
//! How a watched object becomes what its list keeps is written once, in
//! [`Watched::keep`], from the `From<&K>` conversions (and
//! [`deployment_facts`], [`injector_config`]). The LISTs of the kinds with
//! many objects decode their pages with the lean decoders of
//! `snapshot/decode.rs` instead, which are pinned (by decoding the same
//! objects both ways) to give exactly what these conversions give, so an
//! object looks the same whether it came from a LIST or an event. A watch
//! event carries one whole object, and a relist after an expired position
//! is rare, so both are converted here, typed.
//!
//! Two things keep a big cluster cheap: a change that leaves the kept struct
//! as it was (most pod updates touch nothing the model reads; a Node's
//! status report changes only its resourceVersion) reports no change, so
//! nothing is redrawn; and only the compact structs are held, never an
//! object as the server sent it.
//!
//! A kind that was not read is held as read, not watched: a forbidden kind
//! stays empty (its warning was given with the first screen), and so do
//! Rollouts or the Gateway API when their LIST answered 404 (the CRDs are
//! not installed; the report says so as a fresh `status` would).

use std::collections::BTreeMap;

use k8s_openapi::api::admissionregistration::v1::MutatingWebhookConfiguration;
use k8s_openapi::api::apps::v1::{DaemonSet, Deployment, ReplicaSet, StatefulSet};
use k8s_openapi::api::batch::v1::{CronJob, Job};
use k8s_openapi::api::core::v1::{ConfigMap, Namespace, Node, Pod, Service};
use k8s_openapi::api::discovery::v1::EndpointSlice;
use k8s_openapi::api::policy::v1::PodDisruptionBudget;
use kube::core::Resource;
use serde::de::DeserializeOwned;

use super::{CollectOptions, RawLists, assemble, deployment_facts, injector_config};
use crate::api::{KnownScope, ListEncoding, ListScope, ListSelector, WatchChange};
use crate::snapshot::gateway_api::{
    Gateway, GatewayApiSnapshot, GatewayClass, GatewayClassInfo, GatewayInfo,
};
use crate::snapshot::{
    ClusterSnapshot, CronJobInfo, DaemonSetInfo, DeploymentInfo, EndpointSliceInfo,
    InjectorConfigInfo, IstiodInfo, JobInfo, NamespaceInfo, NodeInfo, PdbInfo, PodInfo,
    ReplicaSetInfo, Rollout, RolloutInfo, ServiceInfo, StatefulSetInfo, WebhookConfigurationInfo,
};

/// Which list of the read set: a kind, or (istiod) a kind read apart.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum ListKind {
    Namespaces,
    WebhookConfigurations,
    Deployments,
    /// The control-plane namespace's `app=istiod` Deployments, listed apart
    /// when `-l` may leave them out of the Deployments LIST.
    Istiods,
    StatefulSets,
    DaemonSets,
    ReplicaSets,
    Pods,
    Services,
    PodDisruptionBudgets,
    EndpointSlices,
    /// The control-plane namespace's ConfigMaps, of which the injector
    /// configs are kept.
    InjectorConfigs,
    /// Argo Rollouts (argoproj.io), when the cluster serves them.
    Rollouts,
    Jobs,
    CronJobs,
    /// Gateway API Gateways, when the cluster serves them.
    Gateways,
    GatewayClasses,
    Nodes,
}

impl ListKind {
    /// What the kind's LIST asks for: protobuf first where its page decoder
    /// reads protobuf (the kinds with the most objects, most of a large
    /// cluster's bytes: see `snapshot::decode`), JSON otherwise.
    pub fn encoding(self) -> ListEncoding {
        match self {
            ListKind::Pods
            | ListKind::ReplicaSets
            | ListKind::Deployments
            | ListKind::Istiods
            | ListKind::PodDisruptionBudgets => ListEncoding::ProtobufOrJson,
            _ => ListEncoding::Json,
        }
    }

    /// The resource plural, as RBAC and error sentences name it.
    pub fn resource(self) -> &'static str {
        match self {
            ListKind::Namespaces => "namespaces",
            ListKind::WebhookConfigurations => "mutatingwebhookconfigurations",
            ListKind::Deployments | ListKind::Istiods => "deployments",
            ListKind::StatefulSets => "statefulsets",
            ListKind::DaemonSets => "daemonsets",
            ListKind::ReplicaSets => "replicasets",
            ListKind::Pods => "pods",
            ListKind::Services => "services",
            ListKind::PodDisruptionBudgets => "poddisruptionbudgets",
            ListKind::EndpointSlices => "endpointslices",
            ListKind::InjectorConfigs => "configmaps",
            ListKind::Rollouts => "rollouts",
            ListKind::Jobs => "jobs",
            ListKind::CronJobs => "cronjobs",
            ListKind::Gateways => "gateways",
            ListKind::GatewayClasses => "gatewayclasses",
            ListKind::Nodes => "nodes",
        }
    }
}

/// Where one LIST of the read set stood: a watch of the same objects (same
/// scope, same selector) resumes from `resource_version` and misses nothing
/// that changed since.
#[derive(Debug, Clone)]
pub struct ListPosition {
    pub kind: ListKind,
    pub scope: ListScope,
    pub selector: ListSelector,
    pub resource_version: String,
}

/// An object's namespace (empty for a cluster-scoped kind) and name.
pub type ObjectKey = (String, String);

/// What a list keeps of one object.
#[derive(Debug, Clone, PartialEq)]
pub enum Item {
    Namespace(NamespaceInfo),
    WebhookConfiguration(WebhookConfigurationInfo),
    /// A Deployment, with istiod's facts when it is an istiod.
    Deployment(DeploymentInfo, Option<Box<IstiodInfo>>),
    Istiod(IstiodInfo),
    StatefulSet(StatefulSetInfo),
    DaemonSet(DaemonSetInfo),
    ReplicaSet(ReplicaSetInfo),
    Pod(PodInfo),
    Service(ServiceInfo),
    PodDisruptionBudget(PdbInfo),
    EndpointSlice(EndpointSliceInfo),
    InjectorConfig(InjectorConfigInfo),
    Rollout(RolloutInfo),
    Job(JobInfo),
    CronJob(CronJobInfo),
    Gateway(GatewayInfo),
    GatewayClass(GatewayClassInfo),
    Node(NodeInfo),
}

impl Item {
    /// The object's namespace and name.
    pub fn key(&self) -> ObjectKey {
        let (namespace, name) = match self {
            Item::Namespace(n) => ("", n.name.as_str()),
            Item::WebhookConfiguration(w) => ("", w.name.as_str()),
            Item::Deployment(d, _) => (d.namespace.as_str(), d.name.as_str()),
            Item::Istiod(i) => (i.namespace.as_str(), i.name.as_str()),
            Item::StatefulSet(s) => (s.namespace.as_str(), s.name.as_str()),
            Item::DaemonSet(d) => (d.namespace.as_str(), d.name.as_str()),
            Item::ReplicaSet(r) => (r.namespace.as_str(), r.name.as_str()),
            Item::Pod(p) => (p.namespace.as_str(), p.name.as_str()),
            Item::Service(s) => (s.namespace.as_str(), s.name.as_str()),
            Item::PodDisruptionBudget(p) => (p.namespace.as_str(), p.name.as_str()),
            Item::EndpointSlice(e) => (e.namespace.as_str(), e.name.as_str()),
            Item::InjectorConfig(c) => (c.namespace.as_str(), c.name.as_str()),
            Item::Rollout(r) => (r.namespace.as_str(), r.name.as_str()),
            Item::Job(j) => (j.namespace.as_str(), j.name.as_str()),
            Item::CronJob(c) => (c.namespace.as_str(), c.name.as_str()),
            Item::Gateway(g) => (g.namespace.as_str(), g.name.as_str()),
            Item::GatewayClass(c) => ("", c.name.as_str()),
            Item::Node(n) => ("", n.name.as_str()),
        };
        (namespace.to_string(), name.to_string())
    }
}

/// A kind the read set watches, and what its lists keep of an object.
pub trait Watched:
    Resource<DynamicType = (), Scope: KnownScope>
    + DeserializeOwned
    + Clone
    + std::fmt::Debug
    + Send
    + Sync
    + 'static
{
    /// What list `kind` keeps of this object (`None`: nothing, as a LIST
    /// would drop it), with the control plane in `control_plane_namespace`.
    fn keep(&self, kind: ListKind, control_plane_namespace: &str) -> Option<Item>;
}

impl Watched for Namespace {
    fn keep(&self, _: ListKind, _: &str) -> Option<Item> {
        Some(Item::Namespace(NamespaceInfo::from(self)))
    }
}

impl Watched for MutatingWebhookConfiguration {
    fn keep(&self, _: ListKind, _: &str) -> Option<Item> {
        Some(Item::WebhookConfiguration(WebhookConfigurationInfo::from(
            self,
        )))
    }
}

impl Watched for Deployment {
    fn keep(&self, kind: ListKind, control_plane_namespace: &str) -> Option<Item> {
        if kind == ListKind::Istiods {
            return IstiodInfo::is_istiod(self, control_plane_namespace)
                .then(|| Item::Istiod(IstiodInfo::from(self)));
        }
        let (deployment, istiod) = deployment_facts(self, control_plane_namespace);
        Some(Item::Deployment(deployment, istiod))
    }
}

impl Watched for StatefulSet {
    fn keep(&self, _: ListKind, _: &str) -> Option<Item> {
        Some(Item::StatefulSet(StatefulSetInfo::from(self)))
    }
}

impl Watched for DaemonSet {
    fn keep(&self, _: ListKind, _: &str) -> Option<Item> {
        Some(Item::DaemonSet(DaemonSetInfo::from(self)))
    }
}

impl Watched for ReplicaSet {
    fn keep(&self, _: ListKind, _: &str) -> Option<Item> {
        Some(Item::ReplicaSet(ReplicaSetInfo::from(self)))
    }
}

impl Watched for Pod {
    fn keep(&self, _: ListKind, _: &str) -> Option<Item> {
        Some(Item::Pod(PodInfo::from(self)))
    }
}

impl Watched for Service {
    fn keep(&self, _: ListKind, _: &str) -> Option<Item> {
        Some(Item::Service(ServiceInfo::from(self)))
    }
}

impl Watched for PodDisruptionBudget {
    fn keep(&self, _: ListKind, _: &str) -> Option<Item> {
        Some(Item::PodDisruptionBudget(PdbInfo::from(self)))
    }
}

impl Watched for EndpointSlice {
    fn keep(&self, _: ListKind, _: &str) -> Option<Item> {
        Some(Item::EndpointSlice(EndpointSliceInfo::from(self)))
    }
}

impl Watched for ConfigMap {
    fn keep(&self, _: ListKind, _: &str) -> Option<Item> {
        injector_config(self).map(Item::InjectorConfig)
    }
}

impl Watched for Rollout {
    fn keep(&self, _: ListKind, _: &str) -> Option<Item> {
        Some(Item::Rollout(RolloutInfo::from(self)))
    }
}

impl Watched for Job {
    fn keep(&self, _: ListKind, _: &str) -> Option<Item> {
        Some(Item::Job(JobInfo::from(self)))
    }
}

impl Watched for CronJob {
    fn keep(&self, _: ListKind, _: &str) -> Option<Item> {
        Some(Item::CronJob(CronJobInfo::from(self)))
    }
}

impl Watched for Gateway {
    fn keep(&self, _: ListKind, _: &str) -> Option<Item> {
        Some(Item::Gateway(GatewayInfo::from(self)))
    }
}

impl Watched for GatewayClass {
    fn keep(&self, _: ListKind, _: &str) -> Option<Item> {
        Some(Item::GatewayClass(GatewayClassInfo::from(self)))
    }
}

impl Watched for Node {
    fn keep(&self, _: ListKind, _: &str) -> Option<Item> {
        Some(Item::Node(NodeInfo::from(self)))
    }
}

/// One change to the lists.
#[derive(Debug, Clone, PartialEq)]
pub enum ListChange {
    /// An object was added or modified. `item`: what its list keeps of it
    /// now (boxed: most changes in flight are of one small kind or another);
    /// `None` when it is no longer one the list keeps (an istiod whose
    /// `app=istiod` label went), which removes it.
    Put {
        kind: ListKind,
        key: ObjectKey,
        item: Option<Box<Item>>,
    },
    /// An object was deleted (or left the watch's selector).
    Removed { kind: ListKind, key: ObjectKey },
    /// The watch started over with a LIST (its position expired): the
    /// objects of `kind` in `scope` are now exactly `items`.
    Relisted {
        kind: ListKind,
        scope: ListScope,
        items: Vec<Item>,
    },
}

/// The change a watch event of list `position` makes. The one conversion
/// of watch events; a relist's items were converted by [`Watched::keep`]
/// page by page.
pub fn change_of<K: Watched>(
    change: WatchChange<K, Item>,
    position: &ListPosition,
    control_plane_namespace: &str,
) -> ListChange {
    let kind = position.kind;
    let key = |object: &K| -> ObjectKey {
        let meta = object.meta();
        (
            meta.namespace.clone().unwrap_or_default(),
            meta.name.clone().unwrap_or_default(),
        )
    };
    match change {
        WatchChange::Restarted(items) => ListChange::Relisted {
            kind,
            scope: position.scope.clone(),
            items,
        },
        WatchChange::Added(object) | WatchChange::Modified(object) => ListChange::Put {
            kind,
            key: key(&object),
            item: object.keep(kind, control_plane_namespace).map(Box::new),
        },
        WatchChange::Deleted(object) => ListChange::Removed {
            kind,
            key: key(&object),
        },
    }
}

/// One kind's objects by namespace and name: a LIST's order.
type Table<T> = BTreeMap<ObjectKey, T>;

/// The read set's lists, kept current. Built from what [`super::read_lists`]
/// listed; [`LiveLists::apply`] takes each change; [`LiveLists::snapshot`]
/// assembles the snapshot a screen is built from.
#[derive(Debug, Clone)]
pub struct LiveLists {
    options: CollectOptions,
    namespaces: Table<NamespaceInfo>,
    webhook_configurations: Table<WebhookConfigurationInfo>,
    deployments: Table<(DeploymentInfo, Option<Box<IstiodInfo>>)>,
    /// `Some` when istiod was listed apart (see [`RawLists::istiods`]).
    istiods: Option<Table<IstiodInfo>>,
    stateful_sets: Table<StatefulSetInfo>,
    daemon_sets: Table<DaemonSetInfo>,
    replica_sets: Table<ReplicaSetInfo>,
    pods: Table<PodInfo>,
    services: Table<ServiceInfo>,
    pod_disruption_budgets: Table<PdbInfo>,
    endpoint_slices: Table<EndpointSliceInfo>,
    injector_configs: Table<InjectorConfigInfo>,
    rollouts: Table<RolloutInfo>,
    /// As read: whether the cluster served Rollouts (not watched).
    rollouts_served: Option<bool>,
    jobs: Table<JobInfo>,
    cron_jobs: Table<CronJobInfo>,
    gateways: Table<GatewayInfo>,
    gateway_classes: Table<GatewayClassInfo>,
    /// As read: whether the Gateway API CRDs were installed (not watched).
    gateway_api_installed: bool,
    nodes: Table<NodeInfo>,
}

fn table<T>(items: Vec<T>, key: impl Fn(&T) -> ObjectKey) -> Table<T> {
    items.into_iter().map(|item| (key(&item), item)).collect()
}

fn named(namespace: &str, name: &str) -> ObjectKey {
    (namespace.to_string(), name.to_string())
}

impl LiveLists {
    /// The lists as read for `options`.
    pub fn new(raw: RawLists, options: &CollectOptions) -> Self {
        let RawLists {
            namespaces,
            webhook_configurations,
            deployments,
            istiods,
            stateful_sets,
            daemon_sets,
            replica_sets,
            pods,
            services,
            pod_disruption_budgets,
            endpoint_slices,
            injector_configs,
            rollouts,
            rollouts_served,
            jobs,
            cron_jobs,
            gateway_api,
            nodes,
        } = raw;
        let GatewayApiSnapshot {
            installed: gateway_api_installed,
            gateways,
            classes: gateway_classes,
        } = gateway_api;
        LiveLists {
            options: options.clone(),
            namespaces: table(namespaces, |n| named("", &n.name)),
            webhook_configurations: table(webhook_configurations, |w| named("", &w.name)),
            deployments: table(deployments, |(d, _)| named(&d.namespace, &d.name)),
            istiods: istiods.map(|i| table(i, |i| named(&i.namespace, &i.name))),
            stateful_sets: table(stateful_sets, |s| named(&s.namespace, &s.name)),
            daemon_sets: table(daemon_sets, |d| named(&d.namespace, &d.name)),
            replica_sets: table(replica_sets, |r| named(&r.namespace, &r.name)),
            pods: table(pods, |p| named(&p.namespace, &p.name)),
            services: table(services, |s| named(&s.namespace, &s.name)),
            pod_disruption_budgets: table(pod_disruption_budgets, |p| named(&p.namespace, &p.name)),
            endpoint_slices: table(endpoint_slices, |e| named(&e.namespace, &e.name)),
            injector_configs: table(injector_configs, |c| named(&c.namespace, &c.name)),
            rollouts: table(rollouts, |r| named(&r.namespace, &r.name)),
            rollouts_served,
            jobs: table(jobs, |j| named(&j.namespace, &j.name)),
            cron_jobs: table(cron_jobs, |c| named(&c.namespace, &c.name)),
            gateways: table(gateways, |g| named(&g.namespace, &g.name)),
            gateway_classes: table(gateway_classes, |c| named("", &c.name)),
            gateway_api_installed,
            nodes: table(nodes, |n| named("", &n.name)),
        }
    }

    /// Apply one change; whether anything the lists keep changed (an update
    /// that leaves the kept struct as it was changes nothing). Objects of
    /// namespaces that are not read (a cluster-wide watch serving `-n a,b,c`)
    /// are ignored.
    pub fn apply(&mut self, change: ListChange) -> bool {
        match change {
            ListChange::Put { kind, key, item } => {
                if !self.reads(kind, &key.0) {
                    return false;
                }
                match item {
                    Some(item) => self.put(kind, key, *item),
                    None => self.remove(kind, &key),
                }
            }
            ListChange::Removed { kind, key } => self.remove(kind, &key),
            ListChange::Relisted { kind, scope, items } => {
                // Rare (a watch's position expired), so not compared item by
                // item: the lists are taken as changed.
                self.clear(kind, &scope);
                for item in items {
                    let key = item.key();
                    if self.reads(kind, &key.0) {
                        self.put(kind, key, item);
                    }
                }
                true
            }
        }
    }

    /// The snapshot these lists make, assembled as a fresh read's would be
    /// (a copy: see [`LiveLists::with_snapshot`] for the one a screen uses).
    pub fn snapshot(&self) -> ClusterSnapshot {
        assemble(self.raw(), &self.options)
    }

    /// Call `with` on the snapshot these lists make, then take the lists
    /// back from it. Without `-l`, assembly moves every list into the
    /// snapshot unchanged (istiod's facts split off their Deployments), so
    /// the lists are moved out and back instead of copied: a 50,000-pod
    /// screen never holds them twice. With `-l`, assembly drops the pods and
    /// ReplicaSets of unselected workloads, which the lists must keep for
    /// later events, so it assembles a copy.
    pub fn with_snapshot<R>(&mut self, with: impl FnOnce(&ClusterSnapshot) -> R) -> R {
        if self.options.selector.is_some() || self.istiods.is_some() {
            return with(&self.snapshot());
        }
        let raw = self.take_raw();
        let snapshot = assemble(raw, &self.options);
        let result = with(&snapshot);
        self.put_back(snapshot);
        result
    }

    /// The lists moved out as [`RawLists`], leaving them empty.
    fn take_raw(&mut self) -> RawLists {
        fn drain<T>(table: &mut Table<T>) -> Vec<T> {
            std::mem::take(table).into_values().collect()
        }
        RawLists {
            namespaces: drain(&mut self.namespaces),
            webhook_configurations: drain(&mut self.webhook_configurations),
            deployments: drain(&mut self.deployments),
            istiods: self.istiods.as_mut().map(drain),
            stateful_sets: drain(&mut self.stateful_sets),
            daemon_sets: drain(&mut self.daemon_sets),
            replica_sets: drain(&mut self.replica_sets),
            pods: drain(&mut self.pods),
            services: drain(&mut self.services),
            pod_disruption_budgets: drain(&mut self.pod_disruption_budgets),
            endpoint_slices: drain(&mut self.endpoint_slices),
            injector_configs: drain(&mut self.injector_configs),
            rollouts: drain(&mut self.rollouts),
            rollouts_served: self.rollouts_served,
            jobs: drain(&mut self.jobs),
            cron_jobs: drain(&mut self.cron_jobs),
            gateway_api: GatewayApiSnapshot {
                installed: self.gateway_api_installed,
                gateways: drain(&mut self.gateways),
                classes: drain(&mut self.gateway_classes),
            },
            nodes: drain(&mut self.nodes),
        }
    }

    /// The lists back from a snapshot assembled without `-l`: each list as
    /// it went in, each Deployment with istiod's facts when it is one.
    /// Every field is named, so a kind added to the snapshot cannot be
    /// dropped here unnoticed.
    fn put_back(&mut self, snapshot: ClusterSnapshot) {
        let ClusterSnapshot {
            control_plane_namespace: _,
            scope: _,
            namespaces,
            pods,
            replica_sets,
            deployments,
            stateful_sets,
            daemon_sets,
            pod_disruption_budgets,
            services,
            endpoint_slices,
            webhook_configurations,
            istiods,
            injector_configs,
            rollouts,
            rollouts_served: _,
            jobs,
            cron_jobs,
            gateway_api:
                GatewayApiSnapshot {
                    installed: _,
                    gateways,
                    classes: gateway_classes,
                },
            nodes,
        } = snapshot;
        let mut istiods: BTreeMap<ObjectKey, IstiodInfo> = istiods
            .into_iter()
            .map(|i| (named(&i.namespace, &i.name), i))
            .collect();
        self.namespaces = table(namespaces, |n| named("", &n.name));
        self.webhook_configurations = table(webhook_configurations, |w| named("", &w.name));
        self.deployments = deployments
            .into_iter()
            .map(|d| {
                let key = named(&d.namespace, &d.name);
                let istiod = istiods.remove(&key).map(Box::new);
                (key, (d, istiod))
            })
            .collect();
        self.stateful_sets = table(stateful_sets, |s| named(&s.namespace, &s.name));
        self.daemon_sets = table(daemon_sets, |d| named(&d.namespace, &d.name));
        self.replica_sets = table(replica_sets, |r| named(&r.namespace, &r.name));
        self.pods = table(pods, |p| named(&p.namespace, &p.name));
        self.services = table(services, |s| named(&s.namespace, &s.name));
        self.pod_disruption_budgets =
            table(pod_disruption_budgets, |p| named(&p.namespace, &p.name));
        self.endpoint_slices = table(endpoint_slices, |e| named(&e.namespace, &e.name));
        self.injector_configs = table(injector_configs, |c| named(&c.namespace, &c.name));
        self.rollouts = table(rollouts, |r| named(&r.namespace, &r.name));
        self.jobs = table(jobs, |j| named(&j.namespace, &j.name));
        self.cron_jobs = table(cron_jobs, |c| named(&c.namespace, &c.name));
        self.gateways = table(gateways, |g| named(&g.namespace, &g.name));
        self.gateway_classes = table(gateway_classes, |c| named("", &c.name));
        self.nodes = table(nodes, |n| named("", &n.name));
    }

    /// The lists as [`RawLists`], in list order.
    pub fn raw(&self) -> RawLists {
        fn values<T: Clone>(table: &Table<T>) -> Vec<T> {
            table.values().cloned().collect()
        }
        RawLists {
            namespaces: values(&self.namespaces),
            webhook_configurations: values(&self.webhook_configurations),
            deployments: values(&self.deployments),
            istiods: self.istiods.as_ref().map(values),
            stateful_sets: values(&self.stateful_sets),
            daemon_sets: values(&self.daemon_sets),
            replica_sets: values(&self.replica_sets),
            pods: values(&self.pods),
            services: values(&self.services),
            pod_disruption_budgets: values(&self.pod_disruption_budgets),
            endpoint_slices: values(&self.endpoint_slices),
            injector_configs: values(&self.injector_configs),
            rollouts: values(&self.rollouts),
            rollouts_served: self.rollouts_served,
            jobs: values(&self.jobs),
            cron_jobs: values(&self.cron_jobs),
            gateway_api: GatewayApiSnapshot {
                installed: self.gateway_api_installed,
                gateways: values(&self.gateways),
                classes: values(&self.gateway_classes),
            },
            nodes: values(&self.nodes),
        }
    }

    /// Objects held of `kind`.
    pub fn count(&self, kind: ListKind) -> usize {
        match kind {
            ListKind::Namespaces => self.namespaces.len(),
            ListKind::WebhookConfigurations => self.webhook_configurations.len(),
            ListKind::Deployments => self.deployments.len(),
            ListKind::Istiods => self.istiods.as_ref().map_or(0, BTreeMap::len),
            ListKind::StatefulSets => self.stateful_sets.len(),
            ListKind::DaemonSets => self.daemon_sets.len(),
            ListKind::ReplicaSets => self.replica_sets.len(),
            ListKind::Pods => self.pods.len(),
            ListKind::Services => self.services.len(),
            ListKind::PodDisruptionBudgets => self.pod_disruption_budgets.len(),
            ListKind::EndpointSlices => self.endpoint_slices.len(),
            ListKind::InjectorConfigs => self.injector_configs.len(),
            ListKind::Rollouts => self.rollouts.len(),
            ListKind::Jobs => self.jobs.len(),
            ListKind::CronJobs => self.cron_jobs.len(),
            ListKind::Gateways => self.gateways.len(),
            ListKind::GatewayClasses => self.gateway_classes.len(),
            ListKind::Nodes => self.nodes.len(),
        }
    }

    /// Whether objects of `kind` in `namespace` belong in the lists.
    fn reads(&self, kind: ListKind, namespace: &str) -> bool {
        match kind {
            ListKind::Namespaces
            | ListKind::WebhookConfigurations
            | ListKind::GatewayClasses
            | ListKind::Nodes => true,
            ListKind::Istiods | ListKind::InjectorConfigs => {
                namespace == self.options.control_plane_namespace
            }
            _ => self.options.reads_namespace(namespace),
        }
    }

    /// Hold `item` under `key`; whether that changed anything. An item of
    /// another list than `kind` is a caller's bug and is ignored.
    fn put(&mut self, kind: ListKind, key: ObjectKey, item: Item) -> bool {
        fn set<T: PartialEq>(table: &mut Table<T>, key: ObjectKey, value: T) -> bool {
            if table.get(&key) == Some(&value) {
                return false;
            }
            table.insert(key, value);
            true
        }
        match (kind, item) {
            (ListKind::Namespaces, Item::Namespace(n)) => set(&mut self.namespaces, key, n),
            (ListKind::WebhookConfigurations, Item::WebhookConfiguration(w)) => {
                set(&mut self.webhook_configurations, key, w)
            }
            (ListKind::Deployments, Item::Deployment(d, i)) => {
                set(&mut self.deployments, key, (d, i))
            }
            (ListKind::Istiods, Item::Istiod(i)) => match &mut self.istiods {
                Some(istiods) => set(istiods, key, i),
                None => false,
            },
            (ListKind::StatefulSets, Item::StatefulSet(s)) => set(&mut self.stateful_sets, key, s),
            (ListKind::DaemonSets, Item::DaemonSet(d)) => set(&mut self.daemon_sets, key, d),
            (ListKind::ReplicaSets, Item::ReplicaSet(r)) => set(&mut self.replica_sets, key, r),
            (ListKind::Pods, Item::Pod(p)) => set(&mut self.pods, key, p),
            (ListKind::Services, Item::Service(s)) => set(&mut self.services, key, s),
            (ListKind::PodDisruptionBudgets, Item::PodDisruptionBudget(p)) => {
                set(&mut self.pod_disruption_budgets, key, p)
            }
            (ListKind::EndpointSlices, Item::EndpointSlice(e)) => {
                set(&mut self.endpoint_slices, key, e)
            }
            (ListKind::InjectorConfigs, Item::InjectorConfig(c)) => {
                set(&mut self.injector_configs, key, c)
            }
            (ListKind::Rollouts, Item::Rollout(r)) => set(&mut self.rollouts, key, r),
            (ListKind::Jobs, Item::Job(j)) => set(&mut self.jobs, key, j),
            (ListKind::CronJobs, Item::CronJob(c)) => set(&mut self.cron_jobs, key, c),
            (ListKind::Gateways, Item::Gateway(g)) => set(&mut self.gateways, key, g),
            (ListKind::GatewayClasses, Item::GatewayClass(c)) => {
                set(&mut self.gateway_classes, key, c)
            }
            (ListKind::Nodes, Item::Node(n)) => {
                // A Node's status report (every few minutes per node) moves
                // its resourceVersion and nothing else kept: held, so a
                // cordon is patched against the latest, but no change.
                let same = self.nodes.get(&key).is_some_and(|held| {
                    held == &NodeInfo {
                        resource_version: held.resource_version.clone(),
                        ..n.clone()
                    }
                });
                self.nodes.insert(key, n);
                !same
            }
            (kind, item) => {
                tracing::debug!("{item:?} is no object of the {kind:?} list; ignored");
                false
            }
        }
    }

    /// Forget `key` of `kind`; whether it was held.
    fn remove(&mut self, kind: ListKind, key: &ObjectKey) -> bool {
        match kind {
            ListKind::Namespaces => self.namespaces.remove(key).is_some(),
            ListKind::WebhookConfigurations => self.webhook_configurations.remove(key).is_some(),
            ListKind::Deployments => self.deployments.remove(key).is_some(),
            ListKind::Istiods => self
                .istiods
                .as_mut()
                .is_some_and(|i| i.remove(key).is_some()),
            ListKind::StatefulSets => self.stateful_sets.remove(key).is_some(),
            ListKind::DaemonSets => self.daemon_sets.remove(key).is_some(),
            ListKind::ReplicaSets => self.replica_sets.remove(key).is_some(),
            ListKind::Pods => self.pods.remove(key).is_some(),
            ListKind::Services => self.services.remove(key).is_some(),
            ListKind::PodDisruptionBudgets => self.pod_disruption_budgets.remove(key).is_some(),
            ListKind::EndpointSlices => self.endpoint_slices.remove(key).is_some(),
            ListKind::InjectorConfigs => self.injector_configs.remove(key).is_some(),
            ListKind::Rollouts => self.rollouts.remove(key).is_some(),
            ListKind::Jobs => self.jobs.remove(key).is_some(),
            ListKind::CronJobs => self.cron_jobs.remove(key).is_some(),
            ListKind::Gateways => self.gateways.remove(key).is_some(),
            ListKind::GatewayClasses => self.gateway_classes.remove(key).is_some(),
            ListKind::Nodes => self.nodes.remove(key).is_some(),
        }
    }

    /// Forget every object of `kind` in `scope`.
    fn clear(&mut self, kind: ListKind, scope: &ListScope) {
        fn clear_in<T>(table: &mut Table<T>, scope: &ListScope) {
            match scope {
                ListScope::All => table.clear(),
                ListScope::Namespace(namespace) => table.retain(|(ns, _), _| ns != namespace),
            }
        }
        match kind {
            ListKind::Namespaces => clear_in(&mut self.namespaces, scope),
            ListKind::WebhookConfigurations => clear_in(&mut self.webhook_configurations, scope),
            ListKind::Deployments => clear_in(&mut self.deployments, scope),
            ListKind::Istiods => {
                if let Some(istiods) = &mut self.istiods {
                    clear_in(istiods, scope)
                }
            }
            ListKind::StatefulSets => clear_in(&mut self.stateful_sets, scope),
            ListKind::DaemonSets => clear_in(&mut self.daemon_sets, scope),
            ListKind::ReplicaSets => clear_in(&mut self.replica_sets, scope),
            ListKind::Pods => clear_in(&mut self.pods, scope),
            ListKind::Services => clear_in(&mut self.services, scope),
            ListKind::PodDisruptionBudgets => clear_in(&mut self.pod_disruption_budgets, scope),
            ListKind::EndpointSlices => clear_in(&mut self.endpoint_slices, scope),
            ListKind::InjectorConfigs => clear_in(&mut self.injector_configs, scope),
            ListKind::Rollouts => clear_in(&mut self.rollouts, scope),
            ListKind::Jobs => clear_in(&mut self.jobs, scope),
            ListKind::CronJobs => clear_in(&mut self.cron_jobs, scope),
            ListKind::Gateways => clear_in(&mut self.gateways, scope),
            ListKind::GatewayClasses => clear_in(&mut self.gateway_classes, scope),
            ListKind::Nodes => clear_in(&mut self.nodes, scope),
        }
    }
}

#[cfg(test)]
mod tests;
