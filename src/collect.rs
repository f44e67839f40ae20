//! Read the cluster state every verb starts from: a fixed set of LISTs, run
//! concurrently, then turned into a [`ClusterSnapshot`] by [`assemble`].
//!
//! ```text
//!  ReadSet ─► LISTs (concurrent, each page decoded leanly as it arrives) ─► RawLists
//!          ─► assemble (pure: istiods, -l filtering) ─► ClusterSnapshot
//! ```
//!
//! What is read is a [`ReadSet`]: [`ReadSet::ControlPlane`] is the five
//! LISTs `relabel` plans from (namespaces, webhook configurations, and the
//! control-plane namespace's istiod Deployments, Services and injector
//! ConfigMaps); [`ReadSet::Everything`] adds the workloads, pods and what
//! surrounds them, and the Gateway API's Gateways and GatewayClasses
//! (`collect/gateway_api.rs`: a 404 there means the CRDs are not
//! installed). [`assemble`] does no I/O, so the test fixtures build their
//! snapshots through it too: there is one assembly.
//!
//! The number of requests depends on the selection, never on the number of
//! workloads: one paginated LIST per kind (plus pages). Which URL each LIST
//! uses follows from the namespaces to read — the selection plus the control
//! plane's namespace (istiod, its Services and usually the gateways):
//!
//! ```text
//!  -A                         one cluster-wide LIST per kind
//!  -n shop  (reads shop +     one LIST per kind per namespace (2): small,
//!   istio-system)             and a big cluster's other namespaces are skipped
//!  -n a,b,c (reads 4)         one cluster-wide LIST per kind, filtered while paging
//! ```
//!
//! Namespaces and MutatingWebhookConfigurations are always listed whole: the
//! webhooks decide injection from namespace labels.
//!
//! `-l` is sent to the server for Deployments, StatefulSets and DaemonSets.
//! Pods and ReplicaSets are listed unfiltered and kept when their owning
//! workload was selected (a Deployment's pods need not carry its labels);
//! pods no restart can reach are matched by their own labels.
//!
//! A LIST that fails ends the collection with its error sentence, except where
//! showing the rest stays honest: PodDisruptionBudgets (risks become
//! "unknown"), EndpointSlices (gateway endpoints unknown) and the injector
//! ConfigMaps (versions come from istiod's image) and Nodes (cordons
//! unknown) may be forbidden; the caller gets a warning and the kinds that
//! could not be read.
//!
//! `status --watch` reads the same lists with [`read_lists`]: the lists as
//! listed, before assembly, and where each LIST stood ([`ListPosition`], the
//! resourceVersion its pages were served at, which the lean page decoding
//! returns as the typed one does), from which `run/follow.rs` watches the
//! same URLs; [`live`] applies what the watches see and assembles again. A
//! kind whose LIST failed (forbidden, or 404 for a CRD not installed) has no
//! position, so it is not watched.

use std::collections::{BTreeMap, BTreeSet};

use futures::future::try_join_all;
use k8s_openapi::api::admissionregistration::v1::MutatingWebhookConfiguration;
use k8s_openapi::api::apps::v1::{DaemonSet, Deployment, ReplicaSet, StatefulSet};
use k8s_openapi::api::batch::v1::{CronJob, Job};
use k8s_openapi::api::core::v1::{ConfigMap, Namespace, Node, Pod, Service};
use k8s_openapi::api::discovery::v1::EndpointSlice;
use k8s_openapi::api::policy::v1::PodDisruptionBudget;
use kube::core::Resource;
use serde::de::DeserializeOwned;

mod gateway_api;
pub mod live;

use crate::api::{ApiClient, KnownScope, ListEncoding, ListScope, ListSelector};
use crate::error::Error;
use crate::selector::LabelSelector;
use crate::snapshot::decode;
use crate::snapshot::{
    ClusterSnapshot, CronJobInfo, DaemonSetInfo, DeploymentInfo, EndpointSliceInfo,
    InjectorConfigInfo, Interner, IstiodInfo, JobInfo, NamespaceInfo, NodeInfo, OwnerRef, PdbInfo,
    PodInfo, ReplicaSetInfo, Rollout, RolloutInfo, Scope, ServiceInfo, StatefulSetInfo,
    WebhookConfigurationInfo, controller_of,
};
pub use live::{ListKind, ListPosition};

/// What to read.
#[derive(Debug, Clone)]
pub struct CollectOptions {
    /// The namespaces the user selected.
    pub scope: Scope,
    /// Where istiod lives.
    pub control_plane_namespace: String,
    /// `-l`: applied to workloads and their pods.
    pub selector: Option<LabelSelector>,
}

impl CollectOptions {
    /// Whether namespaced objects of `namespace` are read: the selected
    /// namespaces plus the control-plane namespace.
    pub fn reads_namespace(&self, namespace: &str) -> bool {
        namespace == self.control_plane_namespace || self.scope.contains(namespace)
    }
}

/// Which kinds a read covers.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ReadSet {
    /// What the control plane is resolved from, and the namespaces: every
    /// Namespace and MutatingWebhookConfiguration, and in the control-plane
    /// namespace the istiod Deployments (`app=istiod`), the Services and the
    /// injector ConfigMaps. Five LISTs; no workload or pod is read. For verbs
    /// that change namespaces, not pods (`relabel`).
    ControlPlane,
    /// Everything the model uses: the control plane, and the workloads,
    /// ReplicaSets, pods, Services, PodDisruptionBudgets and EndpointSlices
    /// of the read namespaces.
    Everything,
}

/// A kind that could not be read, and why.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Unreadable {
    /// The resource plural: `poddisruptionbudgets`, `endpointslices`, `configmaps`.
    pub resource: &'static str,
    /// The error sentence.
    pub reason: String,
}

/// The snapshot, plus what could not be read.
#[derive(Debug, Clone)]
pub struct Collected {
    pub snapshot: ClusterSnapshot,
    /// Optional kinds that were forbidden; the snapshot has none of them.
    pub unreadable: Vec<Unreadable>,
    /// Sentences for stderr about what the snapshot lacks.
    pub warnings: Vec<String>,
}

impl Collected {
    /// Whether `resource` (a plural such as `poddisruptionbudgets`) was read.
    pub fn was_read(&self, resource: &str) -> bool {
        !self.unreadable.iter().any(|u| u.resource == resource)
    }
}

/// What the LISTs returned, each object already reduced to its snapshot
/// struct while paging (so no page is kept as full objects), and namespaced
/// kinds only for the read namespaces. A kind the read set leaves out, or an
/// optional kind that could not be read, is empty. [`assemble`] turns it
/// into the snapshot.
#[derive(Debug, Clone, Default)]
pub struct RawLists {
    pub namespaces: Vec<NamespaceInfo>,
    pub webhook_configurations: Vec<WebhookConfigurationInfo>,
    /// Each Deployment, with its istiod facts when it is an istiod of the
    /// control-plane namespace (see [`deployment_facts`]).
    pub deployments: Vec<(DeploymentInfo, Option<Box<IstiodInfo>>)>,
    /// The `app=istiod` LIST of the control-plane namespace, when one was
    /// made (with `-l`, which may leave istiod out of the Deployments LIST,
    /// or when no Deployment is listed); else istiod comes from `deployments`.
    pub istiods: Option<Vec<IstiodInfo>>,
    pub stateful_sets: Vec<StatefulSetInfo>,
    pub daemon_sets: Vec<DaemonSetInfo>,
    pub replica_sets: Vec<ReplicaSetInfo>,
    pub pods: Vec<PodInfo>,
    pub services: Vec<ServiceInfo>,
    pub pod_disruption_budgets: Vec<PdbInfo>,
    pub endpoint_slices: Vec<EndpointSliceInfo>,
    /// The control-plane namespace's ConfigMaps that are injector configs
    /// (see [`injector_config`]).
    pub injector_configs: Vec<InjectorConfigInfo>,
    pub rollouts: Vec<RolloutInfo>,
    /// `Some(false)`: the Rollout LIST answered 404 (no Argo Rollouts).
    pub rollouts_served: Option<bool>,
    pub jobs: Vec<JobInfo>,
    pub cron_jobs: Vec<CronJobInfo>,
    /// Gateways and GatewayClasses (see `collect/gateway_api.rs`).
    pub gateway_api: crate::snapshot::gateway_api::GatewayApiSnapshot,
    /// Every Node (cluster-scoped).
    pub nodes: Vec<NodeInfo>,
}

/// A Deployment as the Deployments LIST keeps it: its facts, and istiod's
/// when it is an istiod of `control_plane_namespace`.
pub fn deployment_facts(
    d: &Deployment,
    control_plane_namespace: &str,
) -> (DeploymentInfo, Option<Box<IstiodInfo>>) {
    let istiod =
        IstiodInfo::is_istiod(d, control_plane_namespace).then(|| Box::new(IstiodInfo::from(d)));
    (DeploymentInfo::from(d), istiod)
}

/// A ConfigMap of the control-plane namespace, kept when it is an injector
/// config (`istio-sidecar-injector[-<rev>]`).
pub fn injector_config(c: &ConfigMap) -> Option<InjectorConfigInfo> {
    InjectorConfigInfo::is_injector_config(c).then(|| InjectorConfigInfo::from(c))
}

/// The snapshot from what was listed. Pure: no request, no clock. istiod
/// comes from its own LIST when one was made, else from the Deployments; with
/// `-l`, only the ReplicaSets and pods of the selected workloads are kept
/// (see [`keep_selected_workloads_pods`]).
pub fn assemble(raw: RawLists, options: &CollectOptions) -> ClusterSnapshot {
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
    let (deployments, istiods_from_deployments): (Vec<_>, Vec<_>) = deployments.into_iter().unzip();
    let mut snapshot =
        ClusterSnapshot::new(&options.control_plane_namespace, options.scope.clone());
    snapshot.namespaces = namespaces;
    snapshot.webhook_configurations = webhook_configurations;
    snapshot.deployments = deployments;
    snapshot.istiods = istiods.unwrap_or_else(|| {
        istiods_from_deployments
            .into_iter()
            .flatten()
            .map(|i| *i)
            .collect()
    });
    snapshot.stateful_sets = stateful_sets;
    snapshot.daemon_sets = daemon_sets;
    snapshot.replica_sets = replica_sets;
    snapshot.pods = pods;
    snapshot.services = services;
    snapshot.pod_disruption_budgets = pod_disruption_budgets;
    snapshot.endpoint_slices = endpoint_slices;
    snapshot.injector_configs = injector_configs;
    snapshot.rollouts = rollouts;
    snapshot.rollouts_served = rollouts_served;
    snapshot.jobs = jobs;
    snapshot.cron_jobs = cron_jobs;
    snapshot.gateway_api = gateway_api;
    snapshot.nodes = nodes;
    if let Some(selector) = &options.selector {
        keep_selected_workloads_pods(&mut snapshot, selector);
    }
    snapshot
}

/// Up to this many namespaces to read are listed namespace by namespace;
/// more are listed cluster-wide in one LIST and filtered while paging.
const MAX_PER_NAMESPACE_LISTS: usize = 2;

/// The URLs the namespaced LISTs use.
#[derive(Debug, Clone, PartialEq, Eq)]
enum ListPlan {
    /// One cluster-wide LIST per kind, keeping objects of these namespaces
    /// (`None`: every namespace).
    ClusterWide { keep: Option<BTreeSet<String>> },
    /// One LIST per kind per namespace.
    PerNamespace(Vec<String>),
}

impl ListPlan {
    fn for_selection(scope: &Scope, control_plane_namespace: &str) -> Self {
        match scope {
            Scope::All => ListPlan::ClusterWide { keep: None },
            Scope::Namespaces(selected) => {
                let mut read: BTreeSet<String> = selected.iter().cloned().collect();
                read.insert(control_plane_namespace.to_string());
                if read.len() <= MAX_PER_NAMESPACE_LISTS {
                    ListPlan::PerNamespace(read.into_iter().collect())
                } else {
                    ListPlan::ClusterWide { keep: Some(read) }
                }
            }
        }
    }
}

/// Read everything and build the snapshot: [`read`] with [`ReadSet::Everything`].
pub async fn collect(api: &ApiClient, options: &CollectOptions) -> anyhow::Result<Collected> {
    read(api, options, ReadSet::Everything).await
}

/// Run the LISTs of `read_set` and build the snapshot.
pub async fn read(
    api: &ApiClient,
    options: &CollectOptions,
    read_set: ReadSet,
) -> anyhow::Result<Collected> {
    let (raw, unreadable, warnings) = match read_set {
        ReadSet::ControlPlane => list_control_plane(api, options).await?,
        ReadSet::Everything => {
            list_everything_and_gateway_api(api, options, &Positions::default()).await?
        }
    };
    let snapshot = assemble(raw, options);
    tracing::info!(
        namespaces = snapshot.namespaces.len(),
        pods = snapshot.pods.len(),
        deployments = snapshot.deployments.len(),
        istiods = snapshot.istiods.len(),
        "collected the cluster state"
    );
    Ok(Collected {
        snapshot,
        unreadable,
        warnings,
    })
}

/// What the LISTs of a read set gave: the lists, the optional kinds that
/// were forbidden, and the warnings.
type Listed = (RawLists, Vec<Unreadable>, Vec<String>);

/// [`ReadSet::Everything`] as listed, before assembly, with where each LIST
/// stood: what `status --watch` keeps current ([`live::LiveLists`]) by
/// watching each list from its position.
#[derive(Debug)]
pub struct ReadLists {
    pub raw: RawLists,
    /// One per LIST that answered (a kind that could not be read, or whose
    /// CRD is not installed, has none).
    pub positions: Vec<ListPosition>,
    /// Optional kinds that were forbidden; the lists have none of them.
    pub unreadable: Vec<Unreadable>,
    /// Sentences for stderr about what the lists lack.
    pub warnings: Vec<String>,
}

/// Run the LISTs of [`ReadSet::Everything`] and keep them as listed, with
/// each LIST's resourceVersion.
pub async fn read_lists(api: &ApiClient, options: &CollectOptions) -> anyhow::Result<ReadLists> {
    let positions = Positions::default();
    let (raw, unreadable, warnings) =
        list_everything_and_gateway_api(api, options, &positions).await?;
    Ok(ReadLists {
        raw,
        positions: positions.into_inner(),
        unreadable,
        warnings,
    })
}

/// Records where each LIST stood, as the LISTs of a read run concurrently.
#[derive(Debug, Default)]
struct Positions(std::sync::Mutex<Vec<ListPosition>>);

impl Positions {
    /// LIST `K` as [`ApiClient::list_all`] does (each object decoded as `K`,
    /// then `map`ped), recording its position as one of `kind`'s lists.
    async fn list<K, T>(
        &self,
        api: &ApiClient,
        kind: ListKind,
        scope: &ListScope,
        selector: &ListSelector,
        map: impl FnMut(K) -> Option<T>,
    ) -> anyhow::Result<Vec<T>>
    where
        K: Resource<DynamicType = ()> + DeserializeOwned + Clone + std::fmt::Debug,
        K::Scope: KnownScope,
    {
        let (items, resource_version) = api.list_versioned(scope, selector, map).await?;
        self.record(kind, scope, selector, resource_version);
        Ok(items)
    }

    /// LIST `K` as [`ApiClient::list_pages`] does (each page decoded by
    /// `decode` while the next is fetched, in the encoding `kind` asks for),
    /// recording its position as one of `kind`'s lists.
    async fn pages<K, T>(
        &self,
        api: &ApiClient,
        kind: ListKind,
        scope: &ListScope,
        selector: &ListSelector,
        decode: impl Fn(&[u8], &mut Vec<T>) -> decode::Decoded + Send + Sync + 'static,
    ) -> anyhow::Result<Vec<T>>
    where
        K: Resource<DynamicType = ()>,
        K::Scope: KnownScope,
        T: Send + 'static,
    {
        let (items, resource_version) = api
            .list_pages::<K, T>(scope, selector, kind.encoding(), decode)
            .await?;
        self.record(kind, scope, selector, resource_version);
        Ok(items)
    }

    fn record(
        &self,
        kind: ListKind,
        scope: &ListScope,
        selector: &ListSelector,
        resource_version: String,
    ) {
        self.0
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
            .push(ListPosition {
                kind,
                scope: scope.clone(),
                selector: selector.clone(),
                resource_version,
            });
    }

    /// Drop the positions of `kind`'s lists: lists that are not kept.
    fn forget(&self, kind: ListKind) {
        self.0
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
            .retain(|p| p.kind != kind);
    }

    fn into_inner(self) -> Vec<ListPosition> {
        let mut positions = self
            .0
            .into_inner()
            .unwrap_or_else(|poisoned| poisoned.into_inner());
        positions.sort_by(|a, b| {
            let namespace = |p: &ListPosition| match &p.scope {
                ListScope::All => String::new(),
                ListScope::Namespace(namespace) => namespace.clone(),
            };
            (a.kind, namespace(a)).cmp(&(b.kind, namespace(b)))
        });
        positions
    }
}

/// [`ReadSet::ControlPlane`]: five LISTs, concurrently.
async fn list_control_plane(api: &ApiClient, options: &CollectOptions) -> anyhow::Result<Listed> {
    let cp = options.control_plane_namespace.as_str();
    let all = ListSelector::everything();
    let istiod_selector =
        ListSelector::labels(LabelSelector::parse("app=istiod").map_err(anyhow::Error::msg)?);
    let cp_scope = ListScope::Namespace(cp.to_string());
    let (namespaces, webhooks, istiods, services, injector_configs) = tokio::join!(
        read_namespaces(api, options, ReadSet::ControlPlane, None),
        api.list_all::<MutatingWebhookConfiguration, _>(&ListScope::All, &all, |w| {
            Some(WebhookConfigurationInfo::from(&w))
        }),
        async {
            api.list_pages::<Deployment, _>(
                &cp_scope,
                &istiod_selector,
                ListEncoding::ProtobufOrJson,
                {
                    let cp = cp.to_string();
                    move |page, out| decode::istiods(page, &cp, out)
                },
            )
            .await
            .map(|(istiods, _)| istiods)
        },
        api.list_all::<Service, _>(&cp_scope, &all, |s| Some(ServiceInfo::from(&s))),
        api.list_all::<ConfigMap, _>(&cp_scope, &all, |c| injector_config(&c)),
    );
    let (namespaces, mut warnings) = namespaces?;
    check_selected_namespaces_exist(&options.scope, &namespaces, &api.target().context)?;
    let mut unreadable = Vec::new();
    let raw = RawLists {
        namespaces,
        webhook_configurations: webhooks?,
        istiods: Some(istiods?),
        services: services?,
        injector_configs: optional(
            injector_configs,
            "configmaps",
            INJECTOR_CONFIGS_UNREADABLE,
            &mut unreadable,
            &mut warnings,
        )?,
        ..RawLists::default()
    };
    Ok((raw, unreadable, warnings))
}

/// The warning when the injector ConfigMaps are forbidden.
const INJECTOR_CONFIGS_UNREADABLE: &str =
    "the injector ConfigMaps could not be read, so proxy versions come from istiod's image";

/// [`ReadSet::Everything`]: [`list_everything`] and the Gateway API's
/// LISTs side by side, each LIST's position recorded in `positions`.
async fn list_everything_and_gateway_api(
    api: &ApiClient,
    options: &CollectOptions,
    positions: &Positions,
) -> anyhow::Result<Listed> {
    let (everything, gateway_api) = tokio::join!(
        list_everything(api, options, positions),
        gateway_api::list(api, options, positions)
    );
    let (mut raw, mut unreadable, mut warnings) = everything?;
    let (gateway_api, more_unreadable, more_warnings) = gateway_api?;
    raw.gateway_api = gateway_api;
    unreadable.extend(more_unreadable);
    warnings.extend(more_warnings);
    // Nodes matter only to ambient mode's data plane: without a ztunnel or
    // istio-cni DaemonSet, Nodes that could not be read go unmentioned.
    if !raw.daemon_sets.iter().any(|d| d.data_plane.is_some()) {
        warnings.retain(|w| !w.starts_with(NODES_UNREADABLE));
    }
    Ok((raw, unreadable, warnings))
}

/// The kinds of [`ReadSet::Everything`] but the Gateway API's: one LIST per
/// kind (and per read namespace when they are few), concurrently; Nodes
/// always in one cluster-wide LIST.
async fn list_everything(
    api: &ApiClient,
    options: &CollectOptions,
    positions: &Positions,
) -> anyhow::Result<Listed> {
    let plan = ListPlan::for_selection(&options.scope, &options.control_plane_namespace);
    let cp = options.control_plane_namespace.as_str();
    let workload_selector = ListSelector::maybe_labels(options.selector.as_ref());
    let all = ListSelector::everything();
    let istiod_selector =
        ListSelector::labels(LabelSelector::parse("app=istiod").map_err(anyhow::Error::msg)?);
    let cp_scope = ListScope::Namespace(cp.to_string());
    // What the objects of this read repeat (label maps, owners, proxy
    // facts, names) is stored once, for every page of every kind.
    let interner = std::sync::Arc::new(Interner::default());

    let (
        namespaces,
        webhooks,
        deployments,
        stateful_sets,
        daemon_sets,
        replica_sets,
        pods,
        services,
        pdbs,
        slices,
        istiods,
        injector_configs,
        nodes,
    ) = tokio::join!(
        read_namespaces(api, options, ReadSet::Everything, Some(positions)),
        positions.list::<MutatingWebhookConfiguration, _>(
            api,
            ListKind::WebhookConfigurations,
            &ListScope::All,
            &all,
            |w| Some(WebhookConfigurationInfo::from(&w))
        ),
        list_namespaced::<Deployment, _>(
            api,
            (positions, ListKind::Deployments),
            &plan,
            &workload_selector,
            {
                let cp = cp.to_string();
                let interner = interner.clone();
                move |page, out| decode::deployments(page, &cp, &interner, out)
            },
            |(d, _)| &d.namespace
        ),
        list_namespaced::<StatefulSet, _>(
            api,
            (positions, ListKind::StatefulSets),
            &plan,
            &workload_selector,
            decode::sharing(&interner, decode::stateful_sets),
            |s| &s.namespace
        ),
        list_namespaced::<DaemonSet, _>(
            api,
            (positions, ListKind::DaemonSets),
            &plan,
            &workload_selector,
            decode::sharing(&interner, decode::daemon_sets),
            |d| &d.namespace
        ),
        list_namespaced::<ReplicaSet, _>(
            api,
            (positions, ListKind::ReplicaSets),
            &plan,
            &all,
            decode::sharing(&interner, decode::replica_sets),
            |r| &r.namespace
        ),
        list_namespaced::<Pod, _>(
            api,
            (positions, ListKind::Pods),
            &plan,
            &all,
            decode::sharing(&interner, decode::pods),
            |p| &p.namespace
        ),
        list_namespaced::<Service, _>(
            api,
            (positions, ListKind::Services),
            &plan,
            &all,
            decode::typed(|s: Service| Some(ServiceInfo::from(&s))),
            |s| &s.namespace
        ),
        list_namespaced::<PodDisruptionBudget, _>(
            api,
            (positions, ListKind::PodDisruptionBudgets),
            &plan,
            &all,
            decode::pod_disruption_budgets,
            |p| &p.namespace
        ),
        list_namespaced::<EndpointSlice, _>(
            api,
            (positions, ListKind::EndpointSlices),
            &plan,
            &all,
            decode::typed(|e: EndpointSlice| Some(EndpointSliceInfo::from(&e))),
            |e| &e.namespace
        ),
        async {
            // Without -l the Deployments LIST already holds istiod; with -l it
            // may not, so istiod gets its own small LIST.
            if options.selector.is_some() {
                positions
                    .pages::<Deployment, _>(api, ListKind::Istiods, &cp_scope, &istiod_selector, {
                        let cp = cp.to_string();
                        move |page, out| decode::istiods(page, &cp, out)
                    })
                    .await
                    .map(Some)
            } else {
                Ok(None)
            }
        },
        positions.list::<ConfigMap, _>(api, ListKind::InjectorConfigs, &cp_scope, &all, |c| {
            injector_config(&c)
        }),
        positions.list::<Node, _>(api, ListKind::Nodes, &ListScope::All, &all, |n| Some(
            NodeInfo::from(&n)
        )),
    );
    // The owners beyond the apps kinds: Argo Rollouts (a CRD that may not
    // be installed), Jobs and CronJobs.
    let (rollouts, jobs, cron_jobs) = tokio::join!(
        list_namespaced::<Rollout, _>(
            api,
            (positions, ListKind::Rollouts),
            &plan,
            &workload_selector,
            decode::typed(|r: Rollout| Some(RolloutInfo::from(&r))),
            |r| &r.namespace
        ),
        list_namespaced::<Job, _>(
            api,
            (positions, ListKind::Jobs),
            &plan,
            &all,
            decode::typed(|j: Job| Some(JobInfo::from(&j))),
            |j| &j.namespace
        ),
        list_namespaced::<CronJob, _>(
            api,
            (positions, ListKind::CronJobs),
            &plan,
            &all,
            decode::typed(|c: CronJob| Some(CronJobInfo::from(&c))),
            |c| &c.namespace
        ),
    );
    let (namespaces, mut warnings) = namespaces?;
    check_selected_namespaces_exist(&options.scope, &namespaces, &api.target().context)?;
    let webhook_configurations = webhooks?;
    let deployments = deployments?;
    let istiods = istiods?;
    let stateful_sets = stateful_sets?;
    let daemon_sets = daemon_sets?;
    let replica_sets = replica_sets?;
    let pods = pods?;
    let services = services?;

    let mut unreadable = Vec::new();
    let pod_disruption_budgets = optional(
        pdbs,
        "poddisruptionbudgets",
        "PodDisruptionBudgets could not be read, so downtime risks are unknown",
        &mut unreadable,
        &mut warnings,
    )?;
    let endpoint_slices = optional(
        slices,
        "endpointslices",
        "EndpointSlices could not be read, so which gateway pods serve traffic is unknown",
        &mut unreadable,
        &mut warnings,
    )?;
    let injector_configs = optional(
        injector_configs,
        "configmaps",
        INJECTOR_CONFIGS_UNREADABLE,
        &mut unreadable,
        &mut warnings,
    )?;
    // A cluster without Argo Rollouts answers its LIST with 404: nothing
    // to read, not an error.
    let (rollouts, rollouts_served) = match rollouts {
        Err(err) if crate::error::is_not_served(&err) => (Vec::new(), Some(false)),
        other => {
            let read = other.is_ok();
            let rollouts = optional(
                other,
                "rollouts",
                ROLLOUTS_UNREADABLE,
                &mut unreadable,
                &mut warnings,
            )?;
            (rollouts, read.then_some(true))
        }
    };
    let jobs = optional(
        jobs,
        "jobs",
        JOBS_UNREADABLE,
        &mut unreadable,
        &mut warnings,
    )?;
    let cron_jobs = optional(
        cron_jobs,
        "cronjobs",
        JOBS_UNREADABLE,
        &mut unreadable,
        &mut warnings,
    )?;
    let nodes = optional(
        nodes,
        "nodes",
        NODES_UNREADABLE,
        &mut unreadable,
        &mut warnings,
    )?;
    let raw = RawLists {
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
        // Filled by `read`, which lists the Gateway API beside these.
        gateway_api: Default::default(),
        nodes,
    };
    Ok((raw, unreadable, warnings))
}

/// The warning when Rollouts are forbidden.
const ROLLOUTS_UNREADABLE: &str =
    "Argo Rollouts could not be read, so their pods are listed as pods no restart can reach";

/// The warning when Jobs or CronJobs are forbidden.
const JOBS_UNREADABLE: &str =
    "Jobs and CronJobs could not be read, so a Job's pods are not told apart from a CronJob's";

/// The warning when Nodes are forbidden.
pub const NODES_UNREADABLE: &str =
    "Nodes could not be read, so which nodes are cordoned is unknown";

/// LIST a namespaced kind as the plan says, each page decoded by `decode`
/// as it arrives; `namespace` says where a decoded object lives, for the
/// cluster-wide LIST that keeps only some namespaces. Each LIST's position
/// is recorded as one of `kind`'s.
async fn list_namespaced<K, T>(
    api: &ApiClient,
    (positions, kind): (&Positions, ListKind),
    plan: &ListPlan,
    selector: &ListSelector,
    decode: impl Fn(&[u8], &mut Vec<T>) -> decode::Decoded + Clone + Send + Sync + 'static,
    namespace: fn(&T) -> &str,
) -> anyhow::Result<Vec<T>>
where
    K: Resource<DynamicType = ()>,
    K::Scope: KnownScope,
    T: Send + 'static,
{
    match plan {
        ListPlan::ClusterWide { keep: None } => {
            positions
                .pages::<K, T>(api, kind, &ListScope::All, selector, decode)
                .await
        }
        ListPlan::ClusterWide { keep: Some(keep) } => {
            let keep = std::sync::Arc::new(keep.clone());
            positions
                .pages::<K, T>(api, kind, &ListScope::All, selector, move |page, out| {
                    // Only this page's items: the list it is given holds
                    // nothing else.
                    decode(page, out)?;
                    out.retain(|item| keep.contains(namespace(item)));
                    Ok(())
                })
                .await
        }
        ListPlan::PerNamespace(namespaces) => {
            let lists = try_join_all(namespaces.iter().map(|name| {
                let decode = decode.clone();
                async move {
                    positions
                        .pages::<K, T>(
                            api,
                            kind,
                            &ListScope::Namespace(name.clone()),
                            selector,
                            decode,
                        )
                        .await
                }
            }))
            .await?;
            Ok(lists.into_iter().flatten().collect())
        }
    }
}

/// LIST every namespace. A user who may not list namespaces but named them
/// (`-n shop`) can still be served by reading each named one, which a Role
/// with `get` on those namespaces allows: with [`ReadSet::Everything`] the
/// control-plane namespace too (its workloads are read, and injection into
/// them depends on its labels), with [`ReadSet::ControlPlane`] only the
/// selected ones.
async fn read_namespaces(
    api: &ApiClient,
    options: &CollectOptions,
    read_set: ReadSet,
    positions: Option<&Positions>,
) -> anyhow::Result<(Vec<NamespaceInfo>, Vec<String>)> {
    let everything = ListSelector::everything();
    let keep = |n: Namespace| Some(NamespaceInfo::from(&n));
    let listed = match positions {
        Some(positions) => {
            positions
                .list(
                    api,
                    ListKind::Namespaces,
                    &ListScope::All,
                    &everything,
                    keep,
                )
                .await
        }
        None => api.list_all(&ListScope::All, &everything, keep).await,
    };
    let list_error = match listed {
        Ok(namespaces) => return Ok((namespaces, Vec::new())),
        Err(err) if crate::error::is_forbidden(&err) => err,
        Err(err) => return Err(err),
    };
    let Scope::Namespaces(selected) = &options.scope else {
        return Err(list_error);
    };
    let mut wanted: BTreeSet<&str> = selected.iter().map(String::as_str).collect();
    if read_set == ReadSet::Everything {
        wanted.insert(&options.control_plane_namespace);
    }
    let read = try_join_all(wanted.iter().map(|name| api.get::<Namespace>(None, name))).await;
    match read {
        Ok(found) => {
            let warning = format!(
                "{list_error:#}; read the {} selected namespaces one by one instead",
                found.len()
            );
            Ok((
                found.iter().flatten().map(NamespaceInfo::from).collect(),
                vec![warning],
            ))
        }
        Err(_) => Err(list_error),
    }
}

/// Keep an optional kind's list, or record it as unreadable when forbidden.
fn optional<T>(
    result: anyhow::Result<Vec<T>>,
    resource: &'static str,
    consequence: &str,
    unreadable: &mut Vec<Unreadable>,
    warnings: &mut Vec<String>,
) -> anyhow::Result<Vec<T>> {
    match result {
        Ok(items) => Ok(items),
        Err(err) if crate::error::is_forbidden(&err) => {
            warnings.push(format!("{consequence} ({err:#})"));
            unreadable.push(Unreadable {
                resource,
                reason: format!("{err:#}"),
            });
            Ok(Vec::new())
        }
        Err(err) => Err(err),
    }
}

/// A selected namespace that does not exist is an error, not an empty report.
fn check_selected_namespaces_exist(
    scope: &Scope,
    namespaces: &[NamespaceInfo],
    context: &str,
) -> anyhow::Result<()> {
    if let Scope::Namespaces(selected) = scope
        && let Some(missing) = selected
            .iter()
            .find(|name| !namespaces.iter().any(|n| &n.name == *name))
    {
        return Err(Error::NamespaceNotFound {
            namespace: missing.clone(),
            context: context.to_string(),
        }
        .into());
    }
    Ok(())
}

/// After `-l` filtered the workloads on the server, keep only the
/// ReplicaSets and pods that belong to a selected workload, plus the pods and
/// bare ReplicaSets no workload owns whose own labels match.
fn keep_selected_workloads_pods(snapshot: &mut ClusterSnapshot, selector: &LabelSelector) {
    let mut selected_owners: BTreeSet<String> = BTreeSet::new();
    selected_owners.extend(snapshot.deployments.iter().map(|d| d.uid.to_string()));
    selected_owners.extend(snapshot.stateful_sets.iter().map(|s| s.uid.clone()));
    selected_owners.extend(snapshot.daemon_sets.iter().map(|d| d.uid.clone()));
    selected_owners.extend(snapshot.rollouts.iter().map(|r| r.uid.clone()));

    // ReplicaSet uid -> whether it is kept.
    let mut kept_replica_sets: BTreeMap<String, bool> = BTreeMap::new();
    for rs in &snapshot.replica_sets {
        let keep = match controller_of(&rs.owners) {
            Some(owner) if owner.kind == "Deployment" || owner.kind == "Rollout" => {
                selected_owners.contains(&owner.uid)
            }
            // A bare (or foreign-owned) ReplicaSet is its own unit.
            _ => rs
                .template
                .as_ref()
                .is_some_and(|t| selector.matches(&t.labels)),
        };
        kept_replica_sets.insert(rs.uid.clone(), keep);
    }
    snapshot
        .replica_sets
        .retain(|rs| kept_replica_sets.get(&rs.uid).copied().unwrap_or(false));

    let restartable_owner = |owner: &OwnerRef| -> Option<bool> {
        match owner.kind.as_str() {
            "ReplicaSet" => kept_replica_sets.get(&owner.uid).copied(),
            "StatefulSet" | "DaemonSet" => Some(selected_owners.contains(&owner.uid)),
            _ => None,
        }
    };
    snapshot.pods.retain(|pod| {
        match controller_of(&pod.owners).and_then(restartable_owner) {
            Some(keep) => keep,
            // Standalone, Job-owned, foreign-owned, or an owner that was not
            // listed: the pod stands for itself.
            None => selector.matches(&pod.labels),
        }
    });
}

/// Create each pod with `dryRun=All` ([`PROBE_CONCURRENCY`] at a time) and
/// reduce each answer to its sidecar; a refused create keeps its sentence.
/// The answers come back in the order of `probes`.
pub async fn probe_injection(
    api: &ApiClient,
    probes: Vec<k8s_openapi::api::core::v1::Pod>,
) -> Vec<crate::mesh::injection_check::ProbeAnswer> {
    use crate::mesh::injection_check::{PROBE_CONCURRENCY, ProbeAnswer, SidecarShape};
    use futures::StreamExt;
    futures::stream::iter(probes)
        .map(|pod| async move {
            let namespace = pod.metadata.namespace.clone();
            match api.create_dry_run(namespace.as_deref(), &pod).await {
                Ok(answer) => ProbeAnswer::Admitted(SidecarShape::of_pod(&answer)),
                Err(err)
                    if matches!(err.downcast_ref::<Error>(), Some(Error::Forbidden { .. })) =>
                {
                    ProbeAnswer::Forbidden(format!("{err:#}"))
                }
                Err(err) => ProbeAnswer::Refused(format!("{err:#}")),
            }
        })
        .buffered(PROBE_CONCURRENCY)
        .collect()
        .await
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::snapshot::{PodTemplateInfo, ProxyFacts};

    fn owner(kind: &str, name: &str, uid: &str) -> OwnerRef {
        OwnerRef {
            kind: kind.into(),
            api_version: "apps/v1".into(),
            name: name.into(),
            uid: uid.into(),
            controller: true,
        }
    }

    fn pod(name: &str, labels: &[(&str, &str)], owners: Vec<OwnerRef>) -> PodInfo {
        PodInfo {
            namespace: "shop".into(),
            name: name.into(),
            uid: format!("uid-{name}").into(),
            labels: labels
                .iter()
                .map(|(k, v)| (k.to_string(), v.to_string()))
                .collect(),
            owners: owners.into(),
            phase: "Running".into(),
            ready: true,
            terminating: false,
            created: None,
            proxy: ProxyFacts::default().into(),
            ambient: Default::default(),
        }
    }

    fn replica_set(
        name: &str,
        uid: &str,
        owners: Vec<OwnerRef>,
        template_labels: Option<&[(&str, &str)]>,
    ) -> ReplicaSetInfo {
        ReplicaSetInfo {
            namespace: "shop".into(),
            name: name.into(),
            uid: uid.into(),
            owners,
            desired: 1,
            replicas: 1,
            ready: 1,
            available: 1,
            deployment_revision: None,
            template: template_labels.map(|labels| {
                crate::snapshot::Shared::new(PodTemplateInfo {
                    labels: labels
                        .iter()
                        .map(|(k, v)| (k.to_string(), v.to_string()))
                        .collect(),
                    ..PodTemplateInfo::default()
                })
            }),
        }
    }

    #[test]
    fn one_namespace_is_listed_beside_the_control_plane_namespace() {
        let plan = ListPlan::for_selection(&Scope::Namespaces(vec!["shop".into()]), "istio-system");
        assert_eq!(
            plan,
            ListPlan::PerNamespace(vec!["istio-system".into(), "shop".into()])
        );
        let plan = ListPlan::for_selection(
            &Scope::Namespaces(vec!["istio-system".into()]),
            "istio-system",
        );
        assert_eq!(plan, ListPlan::PerNamespace(vec!["istio-system".into()]));
    }

    #[test]
    fn several_namespaces_are_listed_cluster_wide_and_filtered() {
        let plan = ListPlan::for_selection(
            &Scope::Namespaces(vec!["shop".into(), "pay".into()]),
            "istio-system",
        );
        let keep: BTreeSet<String> = ["istio-system", "pay", "shop"].map(String::from).into();
        assert_eq!(plan, ListPlan::ClusterWide { keep: Some(keep) });
        assert_eq!(
            ListPlan::for_selection(&Scope::All, "istio-system"),
            ListPlan::ClusterWide { keep: None }
        );
    }

    #[test]
    fn a_selected_namespace_that_does_not_exist_is_an_error() {
        let mut snapshot = ClusterSnapshot::new(
            "istio-system",
            Scope::Namespaces(vec!["shop".into(), "typo".into()]),
        );
        snapshot.namespaces = vec![NamespaceInfo {
            name: "shop".into(),
            labels: Default::default(),
            terminating: false,
            ..NamespaceInfo::default()
        }];
        let err = check_selected_namespaces_exist(&snapshot.scope, &snapshot.namespaces, "prod")
            .unwrap_err();
        assert_eq!(
            err.to_string(),
            "namespace \"typo\" does not exist in context prod"
        );
        snapshot.scope = Scope::All;
        assert!(
            check_selected_namespaces_exist(&snapshot.scope, &snapshot.namespaces, "prod").is_ok()
        );
    }

    #[test]
    fn the_selector_keeps_pods_of_selected_workloads_and_matching_unowned_pods() {
        let selector = LabelSelector::parse("app=cart").unwrap();
        let mut snapshot = ClusterSnapshot::new("istio-system", Scope::All);
        // The server returned only the cart Deployment and the db StatefulSet.
        snapshot.deployments = vec![];
        snapshot.replica_sets = vec![
            replica_set(
                "cart-1",
                "rs-cart",
                vec![owner("Deployment", "cart", "dep-cart")],
                None,
            ),
            replica_set(
                "web-1",
                "rs-web",
                vec![owner("Deployment", "web", "dep-web")],
                None,
            ),
            replica_set("bare", "rs-bare", vec![], Some(&[("app", "cart")])),
        ];
        let mut cart = crate::snapshot::DeploymentInfo::from(&Deployment::default());
        cart.uid = "dep-cart".into();
        snapshot.deployments.push(cart);
        snapshot.pods = vec![
            // Labels differ from the Deployment's: kept through ownership.
            pod(
                "cart-1-a",
                &[("component", "cart")],
                vec![owner("ReplicaSet", "cart-1", "rs-cart")],
            ),
            pod(
                "web-1-a",
                &[("app", "cart")],
                vec![owner("ReplicaSet", "web-1", "rs-web")],
            ),
            pod("bare-a", &[], vec![owner("ReplicaSet", "bare", "rs-bare")]),
            pod("standalone-cart", &[("app", "cart")], vec![]),
            pod("standalone-web", &[("app", "web")], vec![]),
            pod(
                "job-cart",
                &[("app", "cart")],
                vec![owner("Job", "migrate", "job-1")],
            ),
            pod(
                "rollout-web",
                &[("app", "web")],
                vec![owner("Rollout", "web", "ro-1")],
            ),
        ];
        keep_selected_workloads_pods(&mut snapshot, &selector);
        let rs: Vec<&str> = snapshot
            .replica_sets
            .iter()
            .map(|r| r.name.as_str())
            .collect();
        assert_eq!(rs, ["cart-1", "bare"]);
        let pods: Vec<&str> = snapshot.pods.iter().map(|p| p.name.as_str()).collect();
        assert_eq!(pods, ["cart-1-a", "bare-a", "standalone-cart", "job-cart"]);
    }

    #[test]
    fn a_forbidden_optional_kind_becomes_a_warning() {
        let forbidden: anyhow::Result<Vec<u8>> = Err(Error::Forbidden {
            verb: "list".into(),
            resource: "poddisruptionbudgets".into(),
            scope: "in all namespaces".into(),
            user: "alice".into(),
        }
        .into());
        let mut unreadable = Vec::new();
        let mut warnings = Vec::new();
        let items = optional(
            forbidden,
            "poddisruptionbudgets",
            "risks unknown",
            &mut unreadable,
            &mut warnings,
        )
        .unwrap();
        assert!(items.is_empty());
        assert_eq!(unreadable[0].resource, "poddisruptionbudgets");
        assert!(
            warnings[0].starts_with("risks unknown (forbidden: cannot list poddisruptionbudgets"),
            "{}",
            warnings[0]
        );

        let other: anyhow::Result<Vec<u8>> = Err(anyhow::anyhow!("server exploded"));
        assert!(
            optional(
                other,
                "poddisruptionbudgets",
                "x",
                &mut unreadable,
                &mut warnings
            )
            .is_err()
        );
    }

    fn istiod(name: &str, revision: &str) -> IstiodInfo {
        let d: Deployment = serde_json::from_value(serde_json::json!({
            "metadata": {"name": name, "namespace": "istio-system",
                         "labels": {"app": "istiod", "istio.io/rev": revision}},
        }))
        .unwrap();
        IstiodInfo::from(&d)
    }

    fn options(scope: Scope, selector: Option<&str>) -> CollectOptions {
        CollectOptions {
            scope,
            control_plane_namespace: "istio-system".into(),
            selector: selector.map(|s| LabelSelector::parse(s).unwrap()),
        }
    }

    #[test]
    fn assembly_takes_istiod_from_the_deployments_unless_it_was_listed_apart() {
        let d = |namespace: &str, name: &str, app: &str| -> Deployment {
            serde_json::from_value(serde_json::json!({
                "metadata": {"name": name, "namespace": namespace, "uid": name,
                             "labels": {"app": app}},
            }))
            .unwrap()
        };
        let raw = RawLists {
            deployments: vec![
                deployment_facts(&d("istio-system", "istiod", "istiod"), "istio-system"),
                deployment_facts(&d("shop", "cart", "cart"), "istio-system"),
                // An app=istiod Deployment elsewhere is not the control plane.
                deployment_facts(&d("shop", "istiod", "istiod"), "istio-system"),
            ],
            ..RawLists::default()
        };
        let snapshot = assemble(raw.clone(), &options(Scope::All, None));
        let names: Vec<&str> = snapshot
            .deployments
            .iter()
            .map(|d| d.name.as_str())
            .collect();
        assert_eq!(names, ["istiod", "cart", "istiod"]);
        assert_eq!(snapshot.istiods.len(), 1);
        assert_eq!(snapshot.istiods[0].namespace, "istio-system");

        let listed_apart = RawLists {
            istiods: Some(vec![istiod("istiod-1-22-3", "1-22-3")]),
            ..raw
        };
        let snapshot = assemble(listed_apart, &options(Scope::All, None));
        let istiods: Vec<&str> = snapshot.istiods.iter().map(|i| i.name.as_str()).collect();
        assert_eq!(istiods, ["istiod-1-22-3"]);
    }

    #[test]
    fn assembly_keeps_the_scope_and_applies_the_selector_to_pods() {
        let raw = RawLists {
            pods: vec![
                pod("standalone-cart", &[("app", "cart")], vec![]),
                pod("standalone-web", &[("app", "web")], vec![]),
            ],
            ..RawLists::default()
        };
        let scope = Scope::Namespaces(vec!["shop".into()]);
        let snapshot = assemble(raw.clone(), &options(scope.clone(), Some("app=cart")));
        assert_eq!(snapshot.scope, scope);
        assert_eq!(snapshot.control_plane_namespace, "istio-system");
        let pods: Vec<&str> = snapshot.pods.iter().map(|p| p.name.as_str()).collect();
        assert_eq!(pods, ["standalone-cart"]);
        let unfiltered = assemble(raw, &options(scope, None));
        assert_eq!(unfiltered.pods.len(), 2);
    }

    #[test]
    fn the_read_namespaces_are_the_selection_and_the_control_plane_namespace() {
        let shop = options(Scope::Namespaces(vec!["shop".into()]), None);
        assert!(shop.reads_namespace("shop"));
        assert!(shop.reads_namespace("istio-system"));
        assert!(!shop.reads_namespace("pay"));
        assert!(options(Scope::All, None).reads_namespace("pay"));
    }

    /// A fake API server with the canary control plane: namespaces shop
    /// (with a relabel record and resourceVersion 17) and istio-system, one
    /// istiod, its Service, its injector ConfigMap and one webhook
    /// configuration. `namespaces_forbidden` refuses the namespace LIST.
    fn control_plane_server(namespaces_forbidden: bool) -> (ApiClient, crate::api::fake::Requests) {
        use crate::api::fake::{fake_client, forbidden};
        use serde_json::json;
        let shop = json!({"metadata": {
            "name": "shop", "resourceVersion": "17",
            "labels": {"istio-injection": "enabled"},
            "annotations": {
                "mesh-upgrade.io/previous-injection-labels": "{\"istio.io/rev\":null}",
                "owner": "payments",
            },
        }});
        let system = json!({"metadata": {"name": "istio-system", "resourceVersion": "3"}});
        let list = |items: Vec<serde_json::Value>| {
            json!({"metadata": {"resourceVersion": "20"}, "items": items}).to_string()
        };
        fake_client(move |method, path, _query, _| match (method, path) {
            ("GET", "/api/v1/namespaces") if namespaces_forbidden => forbidden("namespaces"),
            ("GET", "/api/v1/namespaces") => (200, list(vec![shop.clone(), system.clone()])),
            ("GET", "/api/v1/namespaces/shop") => (200, shop.to_string()),
            ("GET", "/api/v1/namespaces/istio-system") => (200, system.to_string()),
            ("GET", "/apis/admissionregistration.k8s.io/v1/mutatingwebhookconfigurations") => (
                200,
                list(vec![
                    json!({"metadata": {"name": "istio-sidecar-injector"}, "webhooks": []}),
                ]),
            ),
            ("GET", "/apis/apps/v1/namespaces/istio-system/deployments") => (
                200,
                list(vec![json!({"metadata": {
                    "name": "istiod", "namespace": "istio-system",
                    "labels": {"app": "istiod", "istio.io/rev": "default"},
                }})]),
            ),
            ("GET", "/api/v1/namespaces/istio-system/services") => (
                200,
                list(vec![
                    json!({"metadata": {"name": "istiod", "namespace": "istio-system"}}),
                ]),
            ),
            ("GET", "/api/v1/namespaces/istio-system/configmaps") => (
                200,
                list(vec![
                    json!({"metadata": {"name": "istio-sidecar-injector", "namespace": "istio-system"}}),
                    json!({"metadata": {"name": "unrelated", "namespace": "istio-system"}}),
                ]),
            ),
            _ => (404, json!({"kind": "Status", "code": 404}).to_string()),
        })
    }

    fn paths(requests: &crate::api::fake::Requests) -> Vec<String> {
        let mut paths: Vec<String> = requests
            .lock()
            .unwrap()
            .iter()
            .map(|r| r.split_once('?').map_or(r.as_str(), |(p, _)| p).to_string())
            .collect();
        paths.sort();
        paths
    }

    #[tokio::test]
    async fn the_control_plane_read_set_is_five_lists_and_keeps_what_a_namespace_write_needs() {
        let (api, requests) = control_plane_server(false);
        let options = options(Scope::Namespaces(vec!["shop".into()]), None);
        let collected = read(&api, &options, ReadSet::ControlPlane).await.unwrap();
        assert_eq!(
            paths(&requests),
            [
                "GET /api/v1/namespaces",
                "GET /api/v1/namespaces/istio-system/configmaps",
                "GET /api/v1/namespaces/istio-system/services",
                "GET /apis/admissionregistration.k8s.io/v1/mutatingwebhookconfigurations",
                "GET /apis/apps/v1/namespaces/istio-system/deployments",
            ]
        );
        let istiod_list = requests
            .lock()
            .unwrap()
            .iter()
            .find(|r| r.contains("/deployments"))
            .cloned()
            .unwrap();
        assert!(
            istiod_list.contains("labelSelector=app%3Distiod"),
            "{istiod_list}"
        );
        assert!(collected.warnings.is_empty(), "{:?}", collected.warnings);

        let snapshot = &collected.snapshot;
        let shop = snapshot.namespace("shop").unwrap();
        assert_eq!(shop.resource_version, "17");
        assert_eq!(
            shop.records,
            crate::snapshot::Labels::from([(
                "mesh-upgrade.io/previous-injection-labels".to_string(),
                "{\"istio.io/rev\":null}".to_string()
            )])
        );
        assert_eq!(snapshot.istiods.len(), 1);
        assert_eq!(snapshot.services.len(), 1);
        assert_eq!(snapshot.webhook_configurations.len(), 1);
        let configs: Vec<&str> = snapshot
            .injector_configs
            .iter()
            .map(|c| c.name.as_str())
            .collect();
        assert_eq!(configs, ["istio-sidecar-injector"]);
        assert!(snapshot.pods.is_empty() && snapshot.deployments.is_empty());
    }

    #[tokio::test]
    async fn without_the_namespace_list_the_control_plane_read_gets_only_the_selected_ones() {
        let (api, requests) = control_plane_server(true);
        let options = options(Scope::Namespaces(vec!["shop".into()]), None);
        let collected = read(&api, &options, ReadSet::ControlPlane).await.unwrap();
        let gets: Vec<String> = paths(&requests)
            .into_iter()
            // One namespace by name: `GET /api/v1/namespaces/<name>`.
            .filter(|p| p.starts_with("GET /api/v1/namespaces/") && p.matches('/').count() == 4)
            .collect();
        assert_eq!(gets, ["GET /api/v1/namespaces/shop"]);
        let names: Vec<&str> = collected
            .snapshot
            .namespaces
            .iter()
            .map(|n| n.name.as_str())
            .collect();
        assert_eq!(names, ["shop"]);
        assert!(
            collected.warnings[0].ends_with("read the 1 selected namespaces one by one instead"),
            "{:?}",
            collected.warnings
        );
    }

    #[tokio::test]
    async fn read_lists_records_where_each_list_stood_and_no_position_for_a_kind_not_read() {
        use crate::api::fake::{fake_client, forbidden};
        use serde_json::json;
        let (api, _) = fake_client(|_, path, _, _| {
            if path.ends_with("/poddisruptionbudgets") {
                return forbidden("poddisruptionbudgets");
            }
            if path.starts_with("/apis/argoproj.io/") {
                // Argo Rollouts is not installed.
                return (404, json!({"kind": "Status", "code": 404}).to_string());
            }
            let items = if path == "/api/v1/namespaces" {
                vec![
                    json!({"metadata": {"name": "shop"}}),
                    json!({"metadata": {"name": "istio-system"}}),
                ]
            } else {
                vec![]
            };
            // Each URL's list is taken at its own version.
            let version = path.len().to_string();
            (
                200,
                json!({"metadata": {"resourceVersion": version}, "items": items}).to_string(),
            )
        });
        let read = read_lists(&api, &options(Scope::Namespaces(vec!["shop".into()]), None))
            .await
            .unwrap();
        let positions: Vec<(ListKind, Option<&str>, &str)> = read
            .positions
            .iter()
            .map(|p| {
                let namespace = match &p.scope {
                    ListScope::All => None,
                    ListScope::Namespace(namespace) => Some(namespace.as_str()),
                };
                (p.kind, namespace, p.resource_version.as_str())
            })
            .collect();
        let version = |path: &str| path.len().to_string();
        assert_eq!(
            positions[0],
            (
                ListKind::Namespaces,
                None,
                version("/api/v1/namespaces").as_str()
            )
        );
        // The lean page decoders (pods, Deployments) and the typed ones
        // (Gateways, Nodes) all give their LIST's version.
        let of = |kind: ListKind| -> Vec<(ListKind, Option<&str>, &str)> {
            positions
                .iter()
                .filter(|(k, _, _)| *k == kind)
                .cloned()
                .collect()
        };
        assert_eq!(
            of(ListKind::Pods),
            [
                (
                    ListKind::Pods,
                    Some("istio-system"),
                    version("/api/v1/namespaces/istio-system/pods").as_str()
                ),
                (
                    ListKind::Pods,
                    Some("shop"),
                    version("/api/v1/namespaces/shop/pods").as_str()
                ),
            ]
        );
        assert_eq!(
            of(ListKind::Deployments)[1],
            (
                ListKind::Deployments,
                Some("shop"),
                version("/apis/apps/v1/namespaces/shop/deployments").as_str()
            )
        );
        assert_eq!(
            of(ListKind::Gateways)[1],
            (
                ListKind::Gateways,
                Some("shop"),
                version("/apis/gateway.networking.k8s.io/v1/namespaces/shop/gateways").as_str()
            )
        );
        assert_eq!(
            of(ListKind::Nodes),
            [(ListKind::Nodes, None, version("/api/v1/nodes").as_str())]
        );
        for not_read in [ListKind::PodDisruptionBudgets, ListKind::Rollouts] {
            assert!(of(not_read).is_empty(), "{not_read:?}: {positions:?}");
        }
        assert_eq!(read.unreadable[0].resource, "poddisruptionbudgets");
        assert_eq!(read.raw.rollouts_served, Some(false));
        assert!(read.raw.gateway_api.installed);
        // Namespaces, webhooks, the injector ConfigMaps, Nodes and
        // GatewayClasses, and 12 namespaced kinds in 2 namespaces, less the
        // PodDisruptionBudgets' and the Rollouts' lists.
        assert_eq!(positions.len(), 5 + 12 * 2 - 2 - 2, "{positions:?}");
    }

    #[tokio::test]
    async fn without_the_gateway_api_neither_gateways_nor_classes_are_watched() {
        use crate::api::fake::fake_client;
        use serde_json::json;
        let (api, _) = fake_client(|_, path, _, _| {
            if path.ends_with("/gateways") {
                return (404, json!({"kind": "Status", "code": 404}).to_string());
            }
            let items = if path == "/api/v1/namespaces" {
                vec![json!({"metadata": {"name": "istio-system"}})]
            } else {
                vec![]
            };
            (
                200,
                json!({"metadata": {"resourceVersion": "7"}, "items": items}).to_string(),
            )
        });
        let read = read_lists(&api, &options(Scope::All, None)).await.unwrap();
        assert!(!read.raw.gateway_api.installed);
        let kinds: Vec<ListKind> = read.positions.iter().map(|p| p.kind).collect();
        assert!(!kinds.contains(&ListKind::Gateways), "{kinds:?}");
        assert!(!kinds.contains(&ListKind::GatewayClasses), "{kinds:?}");
        assert!(kinds.contains(&ListKind::Rollouts), "{kinds:?}");
    }

    #[tokio::test]
    async fn a_missing_selected_namespace_ends_the_control_plane_read() {
        let (api, _) = control_plane_server(false);
        let options = options(Scope::Namespaces(vec!["shopp".into()]), None);
        let err = read(&api, &options, ReadSet::ControlPlane)
            .await
            .unwrap_err();
        assert_eq!(
            err.to_string(),
            "namespace \"shopp\" does not exist in context test"
        );
    }
}
