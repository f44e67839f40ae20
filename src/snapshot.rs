//! What the plugin reads from the cluster, as compact plain structs.
//!
//! `collect.rs` runs a fixed set of LIST calls and turns every object into one of
//! the structs below: the kinds with many objects (pods, workloads,
//! ReplicaSets, PDBs) straight from the page bytes by the lean decoders of
//! [`decode`], the others with `From<&K>` (K being the k8s-openapi type),
//! which also stays the reference the decoders are tested against. The mesh
//! model (`crate::mesh`) only ever sees these structs, so it stays pure and is
//! tested on values built by hand.
//!
//! The structs keep only what the model uses. A 50,000-pod cluster must fit in
//! well under 300 MB, so a pod keeps its name, labels, owners, readiness and the
//! few proxy facts extracted here at conversion time, never its whole spec.
//! Label selectors are parsed once, here, into [`LabelMatcher`].
//!
//! Each field of [`ClusterSnapshot`] says which LIST fills it. "Read namespaces"
//! means the namespaces in [`ClusterSnapshot::scope`] plus the control-plane
//! namespace (istiod, its Services and usually the gateways live there even
//! when the user asked about `-n shop`). How those LISTs are issued (one
//! cluster-wide LIST filtered with [`ClusterSnapshot::reads_namespace`], or one
//! per namespace) is `collect.rs`'s choice.

use std::collections::BTreeMap;

use chrono::{DateTime, Utc};
use k8s_openapi::api::admissionregistration::v1::{
    MutatingWebhook, MutatingWebhookConfiguration, RuleWithOperations,
};
use k8s_openapi::api::apps::v1::{DaemonSet, Deployment, ReplicaSet, StatefulSet};
use k8s_openapi::api::core::v1::{
    ConfigMap, Container, Namespace, Pod, PodTemplateSpec, ResourceRequirements, Service,
    ServicePort,
};
use k8s_openapi::api::discovery::v1::EndpointSlice;
use k8s_openapi::api::policy::v1::PodDisruptionBudget;
use k8s_openapi::apimachinery::pkg::apis::meta::v1::{LabelSelector, ObjectMeta, OwnerReference};
use k8s_openapi::apimachinery::pkg::util::intstr::IntOrString;
use kube::core::{Expression, Selector};

mod owners;
pub use owners::{
    CronJobInfo, JobInfo, ROLLOUT_HASH_LABEL, Rollout, RolloutInfo, RolloutStatus,
    RolloutStrategyKind, WorkloadRef, parse_rfc3339,
};
pub mod ambient;
pub mod gateway_api;

pub use ambient::{
    AmbientPodFacts, DataPlaneComponent, DataPlaneContainer, DataPlaneFacts, NodeInfo,
};
pub mod decode;
mod shared;
pub use shared::{Interner, LabelLookup, LabelMap, Shared, SharedStr};

/// Labels or annotations, as Kubernetes stores them.
pub type Labels = BTreeMap<String, String>;

/// The namespace Istio's control plane lives in unless told otherwise.
pub const DEFAULT_CONTROL_PLANE_NAMESPACE: &str = "istio-system";

/// Which namespaces the user asked about (`-n a,b` or `-A`).
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Scope {
    /// `-A/--all-namespaces`.
    All,
    /// `-n a,b` (or the context's namespace).
    Namespaces(Vec<String>),
}

impl Scope {
    /// Whether objects of `namespace` are part of the selection.
    pub fn contains(&self, namespace: &str) -> bool {
        match self {
            Scope::All => true,
            Scope::Namespaces(names) => names.iter().any(|n| n == namespace),
        }
    }
}

/// Everything `status` and the other verbs read, from a fixed number of LISTs.
#[derive(Clone, Debug)]
pub struct ClusterSnapshot {
    /// Where istiod, its Services and injector ConfigMaps live (`--istio-namespace`,
    /// default [`DEFAULT_CONTROL_PLANE_NAMESPACE`]).
    pub control_plane_namespace: String,
    /// The namespaces the user selected.
    pub scope: Scope,
    /// LIST Namespaces (cluster-scoped, no selector). All of them: webhooks are
    /// matched against namespace labels, and a cluster has few namespaces.
    pub namespaces: Vec<NamespaceInfo>,
    /// LIST Pods in the read namespaces (no label selector; `-l` is applied by
    /// the model to workloads, not here, so a Deployment's pods are all seen).
    pub pods: Vec<PodInfo>,
    /// LIST ReplicaSets (apps/v1) in the read namespaces.
    pub replica_sets: Vec<ReplicaSetInfo>,
    /// LIST Deployments (apps/v1) in the read namespaces. Includes istiod's
    /// Deployments, which are also converted into [`Self::istiods`].
    pub deployments: Vec<DeploymentInfo>,
    /// LIST StatefulSets (apps/v1) in the read namespaces.
    pub stateful_sets: Vec<StatefulSetInfo>,
    /// LIST DaemonSets (apps/v1) in the read namespaces.
    pub daemon_sets: Vec<DaemonSetInfo>,
    /// LIST PodDisruptionBudgets (policy/v1) in the read namespaces.
    pub pod_disruption_budgets: Vec<PdbInfo>,
    /// LIST Services (v1) in the read namespaces. Includes the control-plane
    /// namespace's istiod Services the webhooks call.
    pub services: Vec<ServiceInfo>,
    /// LIST EndpointSlices (discovery.k8s.io/v1) in the read namespaces. The
    /// model only looks at slices of LoadBalancer/NodePort Services, so
    /// `collect.rs` may drop the others while paging.
    pub endpoint_slices: Vec<EndpointSliceInfo>,
    /// LIST MutatingWebhookConfigurations (admissionregistration.k8s.io/v1,
    /// cluster-scoped, no selector): the model decides which are injectors by
    /// following `clientConfig.service` to an istiod, as the API server would.
    pub webhook_configurations: Vec<WebhookConfigurationInfo>,
    /// The Deployments in the control-plane namespace labelled `app=istiod`
    /// (taken from the Deployments LIST with [`IstiodInfo::is_istiod`], or a
    /// LIST with label selector `app=istiod` in that namespace).
    pub istiods: Vec<IstiodInfo>,
    /// LIST ConfigMaps in the control-plane namespace, keeping those for which
    /// [`InjectorConfigInfo::is_injector_config`] holds (name
    /// `istio-sidecar-injector` or `istio-sidecar-injector-<rev>`).
    pub injector_configs: Vec<InjectorConfigInfo>,
    /// LIST Rollouts (argoproj.io/v1alpha1) in the read namespaces.
    pub rollouts: Vec<RolloutInfo>,
    /// Whether the cluster serves Rollouts: `Some(false)` when their LIST
    /// answered 404 (Argo Rollouts is not installed), `None` when it was not
    /// read (forbidden, or a read set without workloads).
    pub rollouts_served: Option<bool>,
    /// LIST Jobs (batch/v1) in the read namespaces.
    pub jobs: Vec<JobInfo>,
    /// LIST CronJobs (batch/v1) in the read namespaces.
    pub cron_jobs: Vec<CronJobInfo>,
    /// LIST Gateways (in the read namespaces) and GatewayClasses
    /// (`gateway.networking.k8s.io/v1`); `installed: false` when the cluster
    /// has no Gateway API CRDs.
    pub gateway_api: gateway_api::GatewayApiSnapshot,
    /// LIST Nodes (cluster-scoped, one paginated LIST): cordons, and where
    /// the ambient data plane runs. Empty when Nodes could not be read.
    pub nodes: Vec<NodeInfo>,
}

impl ClusterSnapshot {
    /// An empty snapshot for `scope`, to be filled by `collect.rs` (or tests).
    pub fn new(control_plane_namespace: impl Into<String>, scope: Scope) -> Self {
        ClusterSnapshot {
            control_plane_namespace: control_plane_namespace.into(),
            scope,
            namespaces: Vec::new(),
            pods: Vec::new(),
            replica_sets: Vec::new(),
            deployments: Vec::new(),
            stateful_sets: Vec::new(),
            daemon_sets: Vec::new(),
            pod_disruption_budgets: Vec::new(),
            services: Vec::new(),
            endpoint_slices: Vec::new(),
            webhook_configurations: Vec::new(),
            istiods: Vec::new(),
            injector_configs: Vec::new(),
            rollouts: Vec::new(),
            rollouts_served: None,
            jobs: Vec::new(),
            cron_jobs: Vec::new(),
            gateway_api: Default::default(),
            nodes: Vec::new(),
        }
    }

    /// Whether namespaced objects of `namespace` belong in the snapshot: the
    /// selected namespaces plus the control-plane namespace.
    pub fn reads_namespace(&self, namespace: &str) -> bool {
        namespace == self.control_plane_namespace || self.scope.contains(namespace)
    }

    /// The namespace called `name`, if it was read.
    pub fn namespace(&self, name: &str) -> Option<&NamespaceInfo> {
        self.namespaces.iter().find(|n| n.name == name)
    }
}

/// A label selector parsed once. `None` inside matches nothing: an absent PDB
/// selector, an empty Service selector, or one the API server would not accept.
/// It matches the snapshot's shared [`LabelMap`]s and plain [`Labels`] alike.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct LabelMatcher(Option<Vec<Expression>>);

impl LabelMatcher {
    /// A matcher that selects every label set (an absent webhook selector).
    pub fn everything() -> Self {
        LabelMatcher(Some(Vec::new()))
    }

    /// A matcher that selects nothing.
    pub fn nothing() -> Self {
        LabelMatcher(None)
    }

    /// Parses a `LabelSelector`; `absent` is what a missing selector means for
    /// this field (webhooks: everything; PDBs: nothing).
    pub fn from_label_selector(selector: Option<&LabelSelector>, absent: LabelMatcher) -> Self {
        Self::from_owned_label_selector(selector.cloned(), absent)
    }

    /// [`LabelMatcher::from_label_selector`] of a selector the caller no
    /// longer needs (a decoded page's): parsed without a copy.
    pub fn from_owned_label_selector(
        selector: Option<LabelSelector>,
        absent: LabelMatcher,
    ) -> Self {
        match selector {
            None => absent,
            Some(selector) => match Selector::try_from(selector) {
                Ok(parsed) => LabelMatcher::from_selector(parsed),
                // The API server validates selectors on write; one that does not
                // parse here cannot select anything we could reason about.
                Err(_) => LabelMatcher::nothing(),
            },
        }
    }

    fn from_selector(selector: Selector) -> Self {
        let mut expressions: Vec<Expression> = selector.into_iter().collect();
        expressions.shrink_to_fit();
        LabelMatcher(Some(expressions))
    }

    /// A map selector (a Service's, or `matchLabels` alone); empty selects nothing,
    /// as an empty Service selector does.
    pub fn from_map(labels: &Labels) -> Self {
        if labels.is_empty() {
            LabelMatcher::nothing()
        } else {
            LabelMatcher(Some(
                labels
                    .iter()
                    .map(|(k, v)| Expression::Equal(k.clone(), v.clone()))
                    .collect(),
            ))
        }
    }

    /// Whether `labels` are selected (the rules of kube's `Selector`, on
    /// labels however they are held).
    pub fn matches(&self, labels: &(impl LabelLookup + ?Sized)) -> bool {
        let Some(expressions) = &self.0 else {
            return false;
        };
        expressions.iter().all(|e| match e {
            Expression::In(key, values) => labels.label(key).is_some_and(|v| values.contains(v)),
            Expression::NotIn(key, values) => labels.label(key).is_none_or(|v| !values.contains(v)),
            Expression::Exists(key) => labels.label(key).is_some(),
            Expression::DoesNotExist(key) => labels.label(key).is_none(),
            Expression::Equal(key, value) => labels.label(key) == Some(value.as_str()),
            Expression::NotEqual(key, value) => labels.label(key) != Some(value.as_str()),
        })
    }

    /// Whether this selects no label set at all (an absent PDB selector).
    pub fn selects_nothing(&self) -> bool {
        self.0.is_none()
    }

    /// A `key=value` every label set it selects has (its first equality
    /// requirement: `matchLabels`), by which matches can be looked up.
    pub fn required_label(&self) -> Option<(&str, &str)> {
        self.0.as_ref()?.iter().find_map(|e| match e {
            Expression::Equal(key, value) => Some((key.as_str(), value.as_str())),
            _ => None,
        })
    }

    fn selector(&self) -> Option<Selector> {
        self.0.as_ref().map(|e| e.iter().cloned().collect())
    }

    /// The selector as a `LabelSelector`'s JSON (`None` for one that
    /// selects nothing).
    pub fn to_json(&self) -> Option<serde_json::Value> {
        let selector: LabelSelector = self.selector()?.into();
        serde_json::to_value(selector).ok()
    }

    /// Whether this selects every label set.
    pub fn selects_everything(&self) -> bool {
        self.0.as_ref().is_some_and(Vec::is_empty)
    }
}

impl std::fmt::Display for LabelMatcher {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self.selector() {
            None => f.write_str("<nothing>"),
            Some(s) if s.selects_all() => f.write_str("<everything>"),
            Some(s) => write!(f, "{s}"),
        }
    }
}

/// One ownerReference.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub struct OwnerRef {
    pub kind: String,
    pub api_version: String,
    pub name: String,
    pub uid: String,
    /// `controller: true`: the owner that manages this object.
    pub controller: bool,
}

impl From<&OwnerReference> for OwnerRef {
    fn from(o: &OwnerReference) -> Self {
        OwnerRef {
            kind: o.kind.clone(),
            api_version: o.api_version.clone(),
            name: o.name.clone(),
            uid: o.uid.clone(),
            controller: o.controller.unwrap_or(false),
        }
    }
}

/// The controlling owner among `owners`, if any.
pub fn controller_of(owners: &[OwnerRef]) -> Option<&OwnerRef> {
    owners.iter().find(|o| o.controller)
}

/// The prefix of the annotations the plugin writes itself: the records a
/// writing verb keeps to undo its change.
pub const RECORD_ANNOTATION_PREFIX: &str = "mesh-upgrade.io/";

/// A Namespace: its name and labels (matched by webhook namespaceSelectors),
/// and what a write of it needs (relabel patches namespaces).
#[derive(Clone, Debug, Default, PartialEq)]
pub struct NamespaceInfo {
    pub name: String,
    /// All labels, including `kubernetes.io/metadata.name`, which the API server
    /// sets on every namespace (added here when a server omitted it).
    pub labels: Labels,
    /// `metadata.deletionTimestamp` is set.
    pub terminating: bool,
    /// `metadata.resourceVersion`: the precondition a write of it carries.
    pub resource_version: String,
    /// The plugin's own annotations on it (keys under
    /// [`RECORD_ANNOTATION_PREFIX`]), such as relabel's record of the
    /// injection labels before its first relabel. Other annotations are not kept.
    pub records: Labels,
}

impl From<&Namespace> for NamespaceInfo {
    fn from(ns: &Namespace) -> Self {
        let name = name_of(&ns.metadata);
        let mut labels = labels_of(&ns.metadata);
        labels
            .entry("kubernetes.io/metadata.name".to_string())
            .or_insert_with(|| name.clone());
        let records = ns
            .metadata
            .annotations
            .iter()
            .flatten()
            .filter(|(key, _)| key.starts_with(RECORD_ANNOTATION_PREFIX))
            .map(|(key, value)| (key.clone(), value.clone()))
            .collect();
        NamespaceInfo {
            name,
            labels,
            terminating: ns.metadata.deletion_timestamp.is_some(),
            resource_version: ns.metadata.resource_version.clone().unwrap_or_default(),
            records,
        }
    }
}

/// Where a pod's `istio-proxy` container sits.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum SidecarPlacement {
    /// A regular container.
    Container,
    /// An init container with `restartPolicy: Always` (native sidecar).
    NativeSidecar,
    /// An init container without `restartPolicy: Always`: what a native
    /// sidecar looks like from an API server that drops the field (the
    /// `SidecarContainers` feature off). istioctl counts it as a proxy too.
    InitContainer,
}

/// The `istio-proxy` container found in a pod (or template).
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub struct SidecarContainer {
    /// The image reference as written (`reg:5000/istio/proxyv2:1.22.3-distroless`,
    /// `...@sha256:...`, or `auto` in a gateway template before injection).
    pub image: String,
    pub placement: SidecarPlacement,
}

/// Proxy facts extracted from a pod at conversion time; `mesh::proxy` interprets them.
#[derive(Clone, Debug, Default, PartialEq, Eq, Hash)]
pub struct ProxyFacts {
    /// The `istio-proxy` container, if any.
    pub sidecar: Option<SidecarContainer>,
    /// The `sidecar.istio.io/status` annotation is present.
    pub has_status_annotation: bool,
    /// The `revision` field of that annotation (older Istio versions lack it).
    pub status_revision: Option<String>,
    /// The `sidecar.istio.io/proxyImage` annotation (a custom proxy image).
    pub custom_image: Option<String>,
    /// The `sidecar.istio.io/proxyImageType` annotation (`distroless`,
    /// `debug`, `default`): the image variant istiod injects for this pod.
    pub proxy_image_type: Option<String>,
    /// The `sidecar.istio.io/inject` *annotation* (the older form of the
    /// label; istiod honours it, the webhooks' selectors do not see it).
    pub inject_annotation: Option<String>,
    /// `spec.hostNetwork: true`: istiod never injects such a pod.
    pub host_network: bool,
    /// The `istio-proxy` container's resources, as compact JSON (`None`: none set).
    pub sidecar_resources: Option<String>,
    /// The injector's init steps present: `istio-init` (iptables) and/or the
    /// CNI's `istio-validation`, in that order.
    pub init_steps: Vec<String>,
}

/// The init container that sets up iptables without the CNI.
pub const ISTIO_INIT: &str = "istio-init";
/// The init container the Istio CNI injects instead, to check its rules.
pub const ISTIO_VALIDATION: &str = "istio-validation";

/// The container name Istio injects.
pub const ISTIO_PROXY: &str = "istio-proxy";
/// Pod annotation written by the injector.
pub const SIDECAR_STATUS_ANNOTATION: &str = "sidecar.istio.io/status";
/// Pod annotation choosing a custom proxy image.
pub const PROXY_IMAGE_ANNOTATION: &str = "sidecar.istio.io/proxyImage";
/// Pod annotation choosing the proxy image's variant.
pub const PROXY_IMAGE_TYPE_ANNOTATION: &str = "sidecar.istio.io/proxyImageType";
/// Pod label (and older annotation) opting a pod in (`"true"`) or out (`"false"`).
pub const INJECT_KEY: &str = "sidecar.istio.io/inject";

impl ProxyFacts {
    /// Extracts the proxy facts from a pod's annotations, containers and
    /// `spec.hostNetwork`. Only the annotations named above are looked at.
    pub fn extract<C: ContainerFields>(
        annotations: Option<&Labels>,
        containers: &[C],
        init_containers: &[C],
        host_network: bool,
    ) -> Self {
        let sidecar = find_sidecar(containers, init_containers);
        let status = annotations.and_then(|a| a.get(SIDECAR_STATUS_ANNOTATION));
        // Only `revision` is read: the rest of the annotation (containers,
        // volumes, ...) is skipped, not built into a JSON tree for every pod.
        #[derive(serde::Deserialize)]
        struct InjectionStatus<'a> {
            #[serde(default, borrow)]
            revision: Option<std::borrow::Cow<'a, str>>,
        }
        let status_revision = status.and_then(|s| {
            serde_json::from_str::<InjectionStatus>(s)
                .ok()?
                .revision
                .filter(|r| !r.is_empty())
                .map(|r| r.into_owned())
        });
        ProxyFacts {
            sidecar,
            has_status_annotation: status.is_some(),
            status_revision,
            custom_image: annotations
                .and_then(|a| a.get(PROXY_IMAGE_ANNOTATION))
                .cloned(),
            proxy_image_type: annotations
                .and_then(|a| a.get(PROXY_IMAGE_TYPE_ANNOTATION))
                .cloned(),
            inject_annotation: annotations.and_then(|a| a.get(INJECT_KEY)).cloned(),
            host_network,
            sidecar_resources: sidecar_resources(containers, init_containers),
            init_steps: init_steps(init_containers),
        }
    }
}

/// The injector's init steps among `init_containers`, in a list no larger
/// than it needs to be (it lives as long as the snapshot, once per pod).
fn init_steps<C: ContainerFields>(init_containers: &[C]) -> Vec<String> {
    let mut steps: Vec<String> = [ISTIO_INIT, ISTIO_VALIDATION]
        .into_iter()
        .filter(|step| init_containers.iter().any(|c| c.name() == *step))
        .map(str::to_string)
        .collect();
    steps.shrink_to_fit();
    steps
}

/// What proxy detection reads of a container: a k8s-openapi [`Container`],
/// or the borrowed one a lean page decoder (`decode.rs`) reads, so both
/// paths apply the same rules.
pub trait ContainerFields {
    fn name(&self) -> &str;
    fn image(&self) -> Option<&str>;
    fn restart_policy(&self) -> Option<&str>;
    /// `resources`, as the API types hold them (asked of the proxy only).
    fn resources(&self) -> Option<std::borrow::Cow<'_, ResourceRequirements>>;
}

impl ContainerFields for Container {
    fn name(&self) -> &str {
        &self.name
    }
    fn image(&self) -> Option<&str> {
        self.image.as_deref()
    }
    fn restart_policy(&self) -> Option<&str> {
        self.restart_policy.as_deref()
    }
    fn resources(&self) -> Option<std::borrow::Cow<'_, ResourceRequirements>> {
        self.resources.as_ref().map(std::borrow::Cow::Borrowed)
    }
}

/// The resources of the first `istio-proxy` container (containers first),
/// serialised compactly so two pods' can be compared as strings.
fn sidecar_resources<C: ContainerFields>(
    containers: &[C],
    init_containers: &[C],
) -> Option<String> {
    let proxy = containers
        .iter()
        .chain(init_containers)
        .find(|c| c.name() == ISTIO_PROXY)?;
    let resources = proxy.resources()?;
    let empty = resources.requests.as_ref().is_none_or(|r| r.is_empty())
        && resources.limits.as_ref().is_none_or(|l| l.is_empty());
    if empty {
        return None;
    }
    serde_json::to_string(&*resources).ok()
}

/// The `istio-proxy` container as istioctl finds it (`hasIstioProxy` in
/// Istio's `pkg/config/analysis/analyzers/util/in_mesh.go`): the first
/// container of that name with an image, in `containers`, else in
/// `initContainers` whatever its `restartPolicy`.
fn find_sidecar<C: ContainerFields>(
    containers: &[C],
    init_containers: &[C],
) -> Option<SidecarContainer> {
    let is_proxy = |c: &&C| c.name() == ISTIO_PROXY;
    let image = |c: &C| c.image().filter(|i| !i.is_empty()).map(str::to_string);
    if let Some(c) = containers.iter().find(is_proxy) {
        return image(c).map(|image| SidecarContainer {
            image,
            placement: SidecarPlacement::Container,
        });
    }
    let c = init_containers.iter().find(is_proxy)?;
    image(c).map(|image| SidecarContainer {
        image,
        placement: if c.restart_policy() == Some("Always") {
            SidecarPlacement::NativeSidecar
        } else {
            SidecarPlacement::InitContainer
        },
    })
}

/// A Pod, reduced to what grouping, readiness and proxy detection need.
#[derive(Clone, Debug, PartialEq)]
pub struct PodInfo {
    /// Shared with the other pods of its namespace.
    pub namespace: SharedStr,
    pub name: SharedStr,
    pub uid: SharedStr,
    /// All pod labels (`istio.io/rev`, `sidecar.istio.io/inject`,
    /// `controller-revision-hash`, gateway labels, ...).
    pub labels: LabelMap,
    /// Shared with the other pods of its owner.
    pub owners: Shared<Vec<OwnerRef>>,
    /// `status.phase` (`Pending`, `Running`, `Succeeded`, `Failed`, `Unknown`).
    pub phase: SharedStr,
    /// The `Ready` condition is `True`.
    pub ready: bool,
    /// `metadata.deletionTimestamp` is set.
    pub terminating: bool,
    pub created: Option<DateTime<Utc>>,
    /// Shared with the pods whose proxy facts are the same.
    pub proxy: Shared<ProxyFacts>,
    /// Its node, its ambient redirection, and for ztunnel and istio-cni
    /// pods what they run.
    pub ambient: Shared<AmbientPodFacts>,
}

impl From<&Pod> for PodInfo {
    fn from(pod: &Pod) -> Self {
        let meta = &pod.metadata;
        let (containers, init_containers) = match &pod.spec {
            Some(spec) => (
                spec.containers.as_slice(),
                spec.init_containers.as_deref().unwrap_or_default(),
            ),
            None => (&[][..], &[][..]),
        };
        let host_network = pod
            .spec
            .as_ref()
            .and_then(|s| s.host_network)
            .unwrap_or(false);
        let status = pod.status.as_ref();
        PodInfo {
            namespace: namespace_of(meta).into(),
            name: name_of(meta).into(),
            uid: meta.uid.clone().unwrap_or_default().into(),
            labels: labels_of(meta).into(),
            owners: owners_of(meta).into(),
            phase: status
                .and_then(|s| s.phase.as_deref())
                .unwrap_or("Unknown")
                .into(),
            ready: status
                .and_then(|s| s.conditions.as_ref())
                .is_some_and(|cs| cs.iter().any(|c| c.type_ == "Ready" && c.status == "True")),
            terminating: meta.deletion_timestamp.is_some(),
            created: meta
                .creation_timestamp
                .as_ref()
                .and_then(|t| to_chrono(&t.0)),
            proxy: ProxyFacts::extract(
                meta.annotations.as_ref(),
                containers,
                init_containers,
                host_network,
            )
            .into(),
            ambient: AmbientPodFacts::from(pod).into(),
        }
    }
}

/// Template annotation keys kept: injection (`sidecar.istio.io/*`,
/// `inject.istio.io/*`, `proxy.istio.io/*`), the restart marker, and the
/// revision that rendered a Gateway API gateway.
pub fn is_kept_template_annotation(key: &str) -> bool {
    key.starts_with("sidecar.istio.io/")
        || key.starts_with("inject.istio.io/")
        || key.starts_with("proxy.istio.io/")
        || key == RESTARTED_AT_ANNOTATION
        || key == TEMPLATE_REVISION_ANNOTATION
}

/// The template annotation naming the istiod revision that rendered a
/// Gateway API gateway's Deployment (`kube-gateway.yaml`, `waypoint.yaml`).
pub const TEMPLATE_REVISION_ANNOTATION: &str = "istio.io/rev";

/// The annotation `kubectl rollout restart` sets on a pod template.
pub const RESTARTED_AT_ANNOTATION: &str = "kubectl.kubernetes.io/restartedAt";

/// A container's name, image and ports (templates only).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ContainerImage {
    pub name: String,
    pub image: String,
    /// Declared ports: a gateway must expose every `targetPort` of the
    /// Service switched to it, by number or by name.
    pub ports: Vec<ContainerPortInfo>,
}

/// One `ports[]` entry of a container.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ContainerPortInfo {
    pub name: Option<String>,
    pub container_port: i32,
}

/// A pod template, reduced to what injection evaluation needs.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct PodTemplateInfo {
    /// All template labels (matched by webhook objectSelectors and PDB selectors).
    pub labels: LabelMap,
    /// Only the annotations [`is_kept_template_annotation`] keeps.
    pub annotations: Labels,
    /// Containers' names and images (istiod's `discovery`, a gateway's `istio-proxy: auto`).
    pub containers: Vec<ContainerImage>,
    /// The `istio-proxy` container written into the template itself, if any
    /// (gateways use `image: auto`; a hand-injected template has a real image).
    pub sidecar: Option<SidecarContainer>,
    /// `spec.hostNetwork: true`: istiod never injects its pods.
    pub host_network: bool,
}

impl From<&PodTemplateSpec> for PodTemplateInfo {
    fn from(t: &PodTemplateSpec) -> Self {
        let meta = t.metadata.as_ref();
        let labels = meta
            .and_then(|m| m.labels.as_ref())
            .map(LabelMap::from)
            .unwrap_or_default();
        let annotations = meta
            .and_then(|m| m.annotations.as_ref())
            .map(|a| {
                a.iter()
                    .filter(|(k, _)| is_kept_template_annotation(k))
                    .map(|(k, v)| (k.clone(), v.clone()))
                    .collect()
            })
            .unwrap_or_default();
        let (containers, init_containers) = match &t.spec {
            Some(spec) => (
                spec.containers.as_slice(),
                spec.init_containers.as_deref().unwrap_or_default(),
            ),
            None => (&[][..], &[][..]),
        };
        PodTemplateInfo {
            labels,
            annotations,
            containers: containers
                .iter()
                .map(|c| ContainerImage {
                    name: c.name.clone(),
                    image: c.image.clone().unwrap_or_default(),
                    ports: c
                        .ports
                        .iter()
                        .flatten()
                        .map(|p| ContainerPortInfo {
                            name: p.name.clone(),
                            container_port: p.container_port,
                        })
                        .collect(),
                })
                .collect(),
            sidecar: find_sidecar(containers, init_containers),
            host_network: t
                .spec
                .as_ref()
                .and_then(|s| s.host_network)
                .unwrap_or(false),
        }
    }
}

/// A ReplicaSet: the link from a pod to its Deployment, and rollout progress.
#[derive(Clone, Debug, PartialEq)]
pub struct ReplicaSetInfo {
    /// Shared with the other objects of its namespace.
    pub namespace: SharedStr,
    pub name: String,
    pub uid: String,
    pub owners: Vec<OwnerRef>,
    /// `spec.replicas` (default 1).
    pub desired: i32,
    /// `status.replicas`: pods it currently owns.
    pub replicas: i32,
    pub ready: i32,
    pub available: i32,
    /// The `deployment.kubernetes.io/revision` annotation.
    pub deployment_revision: Option<String>,
    /// The template, kept only for a ReplicaSet with no controlling owner
    /// (a bare ReplicaSet is reported on its own; the others follow their
    /// Deployment) or controlled by a Rollout (whose own template may be a
    /// Deployment's that was not read).
    pub template: Option<Shared<PodTemplateInfo>>,
}

impl From<&ReplicaSet> for ReplicaSetInfo {
    fn from(rs: &ReplicaSet) -> Self {
        let meta = &rs.metadata;
        let owners = owners_of(meta);
        let spec = rs.spec.as_ref();
        let status = rs.status.as_ref();
        ReplicaSetInfo {
            namespace: namespace_of(meta).into(),
            name: name_of(meta),
            uid: meta.uid.clone().unwrap_or_default(),
            desired: spec.and_then(|s| s.replicas).unwrap_or(1),
            replicas: status.map(|s| s.replicas).unwrap_or(0),
            ready: status.and_then(|s| s.ready_replicas).unwrap_or(0),
            available: status.and_then(|s| s.available_replicas).unwrap_or(0),
            deployment_revision: meta
                .annotations
                .as_ref()
                .and_then(|a| a.get("deployment.kubernetes.io/revision"))
                .cloned(),
            template: if controller_of(&owners).is_none_or(|o| o.kind == "Rollout") {
                spec.and_then(|s| s.template.as_ref())
                    .map(|t| Shared::new(PodTemplateInfo::from(t)))
            } else {
                None
            },
            owners,
        }
    }
}

/// A Deployment.
#[derive(Clone, Debug, PartialEq)]
pub struct DeploymentInfo {
    /// Shared with the other objects of its namespace.
    pub namespace: SharedStr,
    /// Shared with the workload the model makes of it.
    pub name: SharedStr,
    pub uid: SharedStr,
    /// Object labels (gateway detection: `istio=ingressgateway`).
    pub labels: LabelMap,
    pub generation: i64,
    pub observed_generation: i64,
    /// `spec.replicas` (default 1).
    pub desired: i32,
    /// `status.replicas` (pods of all its ReplicaSets).
    pub replicas: i32,
    pub updated: i32,
    pub ready: i32,
    pub available: i32,
    pub unavailable: i32,
    /// `spec.paused`.
    pub paused: bool,
    /// `spec.strategy.type` (`RollingUpdate` unless `Recreate`).
    pub strategy: String,
    /// `rollingUpdate.maxUnavailable`/`maxSurge` as written (`25%`, `1`).
    pub max_unavailable: Option<String>,
    pub max_surge: Option<String>,
    /// The `Progressing` condition has reason `ProgressDeadlineExceeded`.
    pub progress_deadline_exceeded: bool,
    pub template: Shared<PodTemplateInfo>,
}

impl From<&Deployment> for DeploymentInfo {
    fn from(d: &Deployment) -> Self {
        let meta = &d.metadata;
        let spec = d.spec.as_ref();
        let status = d.status.as_ref();
        let rolling = spec
            .and_then(|s| s.strategy.as_ref())
            .and_then(|s| s.rolling_update.as_ref());
        DeploymentInfo {
            namespace: namespace_of(meta).into(),
            name: name_of(meta).into(),
            uid: meta.uid.clone().unwrap_or_default().into(),
            labels: labels_of(meta).into(),
            generation: meta.generation.unwrap_or(0),
            observed_generation: status.and_then(|s| s.observed_generation).unwrap_or(0),
            desired: spec.and_then(|s| s.replicas).unwrap_or(1),
            replicas: status.and_then(|s| s.replicas).unwrap_or(0),
            updated: status.and_then(|s| s.updated_replicas).unwrap_or(0),
            ready: status.and_then(|s| s.ready_replicas).unwrap_or(0),
            available: status.and_then(|s| s.available_replicas).unwrap_or(0),
            unavailable: status.and_then(|s| s.unavailable_replicas).unwrap_or(0),
            paused: spec.and_then(|s| s.paused).unwrap_or(false),
            strategy: spec
                .and_then(|s| s.strategy.as_ref())
                .and_then(|s| s.type_.clone())
                .unwrap_or_else(|| "RollingUpdate".to_string()),
            max_unavailable: rolling
                .and_then(|r| r.max_unavailable.as_ref())
                .map(int_or_string),
            max_surge: rolling
                .and_then(|r| r.max_surge.as_ref())
                .map(int_or_string),
            progress_deadline_exceeded: status.and_then(|s| s.conditions.as_ref()).is_some_and(
                |cs| {
                    cs.iter().any(|c| {
                        c.type_ == "Progressing"
                            && c.reason.as_deref() == Some("ProgressDeadlineExceeded")
                    })
                },
            ),
            template: Shared::new(
                spec.map(|s| PodTemplateInfo::from(&s.template))
                    .unwrap_or_default(),
            ),
        }
    }
}

/// A StatefulSet.
#[derive(Clone, Debug, PartialEq)]
pub struct StatefulSetInfo {
    pub namespace: String,
    pub name: String,
    pub uid: String,
    pub labels: LabelMap,
    pub generation: i64,
    pub observed_generation: i64,
    /// `spec.replicas` (default 1).
    pub desired: i32,
    pub replicas: i32,
    pub ready: i32,
    pub available: i32,
    pub current: i32,
    pub updated: i32,
    pub current_revision: Option<String>,
    pub update_revision: Option<String>,
    /// `spec.updateStrategy.type` (`RollingUpdate` unless `OnDelete`).
    pub update_strategy: String,
    /// `rollingUpdate.partition` (pods below it keep the old template).
    pub partition: i32,
    pub template: Shared<PodTemplateInfo>,
}

impl From<&StatefulSet> for StatefulSetInfo {
    fn from(s: &StatefulSet) -> Self {
        let meta = &s.metadata;
        let spec = s.spec.as_ref();
        let status = s.status.as_ref();
        let strategy = spec.and_then(|s| s.update_strategy.as_ref());
        StatefulSetInfo {
            namespace: namespace_of(meta),
            name: name_of(meta),
            uid: meta.uid.clone().unwrap_or_default(),
            labels: labels_of(meta).into(),
            generation: meta.generation.unwrap_or(0),
            observed_generation: status.and_then(|s| s.observed_generation).unwrap_or(0),
            desired: spec.and_then(|s| s.replicas).unwrap_or(1),
            replicas: status.map(|s| s.replicas).unwrap_or(0),
            ready: status.and_then(|s| s.ready_replicas).unwrap_or(0),
            available: status.and_then(|s| s.available_replicas).unwrap_or(0),
            current: status.and_then(|s| s.current_replicas).unwrap_or(0),
            updated: status.and_then(|s| s.updated_replicas).unwrap_or(0),
            current_revision: status.and_then(|s| s.current_revision.clone()),
            update_revision: status.and_then(|s| s.update_revision.clone()),
            update_strategy: strategy
                .and_then(|s| s.type_.clone())
                .unwrap_or_else(|| "RollingUpdate".to_string()),
            partition: strategy
                .and_then(|s| s.rolling_update.as_ref())
                .and_then(|r| r.partition)
                .unwrap_or(0),
            template: Shared::new(
                spec.map(|s| PodTemplateInfo::from(&s.template))
                    .unwrap_or_default(),
            ),
        }
    }
}

/// A DaemonSet.
#[derive(Clone, Debug, PartialEq)]
pub struct DaemonSetInfo {
    pub namespace: String,
    pub name: String,
    pub uid: String,
    pub labels: LabelMap,
    pub generation: i64,
    pub observed_generation: i64,
    /// `status.desiredNumberScheduled`.
    pub desired: i32,
    /// `status.currentNumberScheduled`.
    pub current: i32,
    pub updated: i32,
    pub ready: i32,
    pub available: i32,
    pub unavailable: i32,
    /// `spec.updateStrategy.type` (`RollingUpdate` unless `OnDelete`).
    pub update_strategy: String,
    pub template: Shared<PodTemplateInfo>,
    /// For the ztunnel and istio-cni DaemonSets: what their template runs.
    pub data_plane: Option<Box<DataPlaneFacts>>,
}

impl From<&DaemonSet> for DaemonSetInfo {
    fn from(d: &DaemonSet) -> Self {
        let meta = &d.metadata;
        let spec = d.spec.as_ref();
        let status = d.status.as_ref();
        DaemonSetInfo {
            namespace: namespace_of(meta),
            name: name_of(meta),
            uid: meta.uid.clone().unwrap_or_default(),
            labels: labels_of(meta).into(),
            generation: meta.generation.unwrap_or(0),
            observed_generation: status.and_then(|s| s.observed_generation).unwrap_or(0),
            desired: status.map(|s| s.desired_number_scheduled).unwrap_or(0),
            current: status.map(|s| s.current_number_scheduled).unwrap_or(0),
            updated: status.and_then(|s| s.updated_number_scheduled).unwrap_or(0),
            ready: status.map(|s| s.number_ready).unwrap_or(0),
            available: status.and_then(|s| s.number_available).unwrap_or(0),
            unavailable: status.and_then(|s| s.number_unavailable).unwrap_or(0),
            update_strategy: spec
                .and_then(|s| s.update_strategy.as_ref())
                .and_then(|s| s.type_.clone())
                .unwrap_or_else(|| "RollingUpdate".to_string()),
            template: Shared::new(
                spec.map(|s| PodTemplateInfo::from(&s.template))
                    .unwrap_or_default(),
            ),
            data_plane: DataPlaneFacts::of_daemon_set(d),
        }
    }
}

/// A PodDisruptionBudget.
#[derive(Clone, Debug, PartialEq)]
pub struct PdbInfo {
    pub namespace: String,
    pub name: String,
    /// `spec.selector`; absent selects nothing, `{}` selects every pod in the namespace (policy/v1).
    pub selector: LabelMatcher,
    pub min_available: Option<String>,
    pub max_unavailable: Option<String>,
    /// `status.disruptionsAllowed`.
    pub disruptions_allowed: i32,
    pub current_healthy: i32,
    pub desired_healthy: i32,
    pub expected_pods: i32,
}

impl From<&PodDisruptionBudget> for PdbInfo {
    fn from(p: &PodDisruptionBudget) -> Self {
        let meta = &p.metadata;
        let spec = p.spec.as_ref();
        let status = p.status.as_ref();
        PdbInfo {
            namespace: namespace_of(meta),
            name: name_of(meta),
            selector: LabelMatcher::from_label_selector(
                spec.and_then(|s| s.selector.as_ref()),
                LabelMatcher::nothing(),
            ),
            min_available: spec
                .and_then(|s| s.min_available.as_ref())
                .map(int_or_string),
            max_unavailable: spec
                .and_then(|s| s.max_unavailable.as_ref())
                .map(int_or_string),
            disruptions_allowed: status.map(|s| s.disruptions_allowed).unwrap_or(0),
            current_healthy: status.map(|s| s.current_healthy).unwrap_or(0),
            desired_healthy: status.map(|s| s.desired_healthy).unwrap_or(0),
            expected_pods: status.map(|s| s.expected_pods).unwrap_or(0),
        }
    }
}

/// One port of a Service.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ServicePortInfo {
    pub name: Option<String>,
    pub port: i32,
    /// `targetPort` as written: a number or a container port name (default: `port`).
    pub target_port: String,
    pub protocol: String,
    pub node_port: Option<i32>,
}

impl From<&ServicePort> for ServicePortInfo {
    fn from(p: &ServicePort) -> Self {
        ServicePortInfo {
            name: p.name.clone(),
            port: p.port,
            target_port: p
                .target_port
                .as_ref()
                .map(int_or_string)
                .unwrap_or_else(|| p.port.to_string()),
            protocol: p.protocol.clone().unwrap_or_else(|| "TCP".to_string()),
            node_port: p.node_port,
        }
    }
}

/// A Service.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct ServiceInfo {
    pub namespace: String,
    pub name: String,
    pub uid: String,
    pub labels: Labels,
    /// `spec.type` (`ClusterIP` by default).
    pub type_: String,
    /// `spec.selector` as written (gateway-switch patches one value of it);
    /// empty when the Service has none.
    pub selector: Labels,
    pub ports: Vec<ServicePortInfo>,
    pub owners: Vec<OwnerRef>,
    /// `metadata.resourceVersion`: the precondition a write of it carries
    /// (`tag set` moves a tag's Service).
    pub resource_version: String,
    /// The plugin's own annotations on it (keys under
    /// [`RECORD_ANNOTATION_PREFIX`]), such as `tag set`'s record of the
    /// revision before a move. Other annotations are not kept.
    pub records: Labels,
}

impl ServiceInfo {
    /// Whether the Service selects pods with these labels (an empty selector selects none).
    pub fn selects(&self, labels: &Labels) -> bool {
        !self.selector.is_empty() && self.selector.iter().all(|(k, v)| labels.get(k) == Some(v))
    }

    /// LoadBalancer or NodePort: reachable from outside the cluster.
    pub fn is_external(&self) -> bool {
        self.type_ == "LoadBalancer" || self.type_ == "NodePort"
    }
}

impl From<&Service> for ServiceInfo {
    fn from(s: &Service) -> Self {
        let meta = &s.metadata;
        let spec = s.spec.as_ref();
        ServiceInfo {
            namespace: namespace_of(meta),
            name: name_of(meta),
            uid: meta.uid.clone().unwrap_or_default(),
            labels: labels_of(meta),
            type_: spec
                .and_then(|s| s.type_.clone())
                .unwrap_or_else(|| "ClusterIP".to_string()),
            selector: spec.and_then(|s| s.selector.clone()).unwrap_or_default(),
            ports: spec
                .and_then(|s| s.ports.as_ref())
                .map(|ps| ps.iter().map(ServicePortInfo::from).collect())
                .unwrap_or_default(),
            owners: owners_of(meta),
            resource_version: meta.resource_version.clone().unwrap_or_default(),
            records: records_of(meta),
        }
    }
}

/// One endpoint of an EndpointSlice that points at a pod.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct EndpointRef {
    /// `targetRef.name` when `targetRef.kind` is `Pod`.
    pub pod: Option<String>,
    /// `conditions.ready` (absent means ready, per the API).
    pub ready: bool,
}

/// An EndpointSlice: which pods currently back a Service.
#[derive(Clone, Debug, PartialEq)]
pub struct EndpointSliceInfo {
    pub namespace: String,
    pub name: String,
    /// The `kubernetes.io/service-name` label.
    pub service_name: Option<String>,
    pub endpoints: Vec<EndpointRef>,
}

impl From<&EndpointSlice> for EndpointSliceInfo {
    fn from(e: &EndpointSlice) -> Self {
        let meta = &e.metadata;
        EndpointSliceInfo {
            namespace: namespace_of(meta),
            name: name_of(meta),
            service_name: meta
                .labels
                .as_ref()
                .and_then(|l| l.get("kubernetes.io/service-name"))
                .cloned(),
            endpoints: e
                .endpoints
                .iter()
                .map(|ep| EndpointRef {
                    pod: ep
                        .target_ref
                        .as_ref()
                        .filter(|r| r.kind.as_deref() == Some("Pod"))
                        .and_then(|r| r.name.clone()),
                    ready: ep.conditions.as_ref().and_then(|c| c.ready).unwrap_or(true),
                })
                .collect(),
        }
    }
}

/// One rule of a webhook (`rules[]`).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct WebhookRule {
    pub operations: Vec<String>,
    pub api_groups: Vec<String>,
    pub api_versions: Vec<String>,
    pub resources: Vec<String>,
    /// `*` (default), `Namespaced` or `Cluster`.
    pub scope: String,
}

impl WebhookRule {
    /// Whether this rule sends pod CREATE requests to the webhook.
    pub fn covers_pod_create(&self) -> bool {
        let any = |list: &[String], want: &str| list.iter().any(|v| v == "*" || v == want);
        any(&self.operations, "CREATE")
            && any(&self.api_groups, "")
            && any(&self.api_versions, "v1")
            && self
                .resources
                .iter()
                .any(|r| r == "*" || r == "pods" || r == "*/*")
            && (self.scope == "*" || self.scope == "Namespaced")
    }
}

impl From<&RuleWithOperations> for WebhookRule {
    fn from(r: &RuleWithOperations) -> Self {
        WebhookRule {
            operations: r.operations.clone().unwrap_or_default(),
            api_groups: r.api_groups.clone().unwrap_or_default(),
            api_versions: r.api_versions.clone().unwrap_or_default(),
            resources: r.resources.clone().unwrap_or_default(),
            scope: r.scope.clone().unwrap_or_else(|| "*".to_string()),
        }
    }
}

/// `clientConfig.service`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct WebhookService {
    pub namespace: String,
    pub name: String,
    pub path: Option<String>,
    pub port: Option<i32>,
}

/// One webhook of a MutatingWebhookConfiguration.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct WebhookInfo {
    pub name: String,
    pub rules: Vec<WebhookRule>,
    /// `namespaceSelector`; absent selects every namespace.
    pub namespace_selector: LabelMatcher,
    /// `objectSelector`; absent selects every object.
    pub object_selector: LabelMatcher,
    /// `failurePolicy` (`Fail` by default in admissionregistration/v1).
    pub failure_policy: String,
    pub service: Option<WebhookService>,
    /// `clientConfig.url`, for webhooks served outside the cluster.
    pub url: Option<String>,
    /// The webhook has `matchConditions` (CEL) we do not evaluate.
    pub has_match_conditions: bool,
    /// `clientConfig.caBundle` (base64, as the API serves it): `tag set`
    /// copies the revision's into the tag's webhooks, as istioctl does.
    pub ca_bundle: Option<String>,
    /// `reinvocationPolicy` (`Never`, `IfNeeded`), when set.
    pub reinvocation_policy: Option<String>,
    /// `namespaceSelector` and `objectSelector` as written: what `tag set
    /// default` records before it makes them never match, so `--undo` can
    /// put them back.
    pub raw_namespace_selector: Option<serde_json::Value>,
    pub raw_object_selector: Option<serde_json::Value>,
}

impl WebhookInfo {
    /// Whether any rule sends pod CREATE requests to this webhook.
    pub fn covers_pod_create(&self) -> bool {
        self.rules.iter().any(WebhookRule::covers_pod_create)
    }

    /// `failurePolicy: Fail`: a pod is refused when the webhook cannot answer.
    pub fn fails_closed(&self) -> bool {
        self.failure_policy != "Ignore"
    }
}

impl From<&MutatingWebhook> for WebhookInfo {
    fn from(w: &MutatingWebhook) -> Self {
        WebhookInfo {
            name: w.name.clone(),
            rules: w
                .rules
                .as_ref()
                .map(|rs| rs.iter().map(WebhookRule::from).collect())
                .unwrap_or_default(),
            namespace_selector: LabelMatcher::from_label_selector(
                w.namespace_selector.as_ref(),
                LabelMatcher::everything(),
            ),
            object_selector: LabelMatcher::from_label_selector(
                w.object_selector.as_ref(),
                LabelMatcher::everything(),
            ),
            failure_policy: w
                .failure_policy
                .clone()
                .unwrap_or_else(|| "Fail".to_string()),
            service: w.client_config.service.as_ref().map(|s| WebhookService {
                namespace: s.namespace.clone(),
                name: s.name.clone(),
                path: s.path.clone(),
                port: s.port,
            }),
            url: w.client_config.url.clone(),
            has_match_conditions: w.match_conditions.as_ref().is_some_and(|m| !m.is_empty()),
            ca_bundle: w.client_config.ca_bundle.as_ref().and_then(|b| {
                serde_json::to_value(b)
                    .ok()
                    .and_then(|v| v.as_str().map(str::to_string))
                    .filter(|s| !s.is_empty())
            }),
            reinvocation_policy: w.reinvocation_policy.clone(),
            raw_namespace_selector: w
                .namespace_selector
                .as_ref()
                .and_then(|s| serde_json::to_value(s).ok()),
            raw_object_selector: w
                .object_selector
                .as_ref()
                .and_then(|s| serde_json::to_value(s).ok()),
        }
    }
}

/// A MutatingWebhookConfiguration.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct WebhookConfigurationInfo {
    pub name: String,
    /// Labels (`istio.io/rev`, `istio.io/tag`).
    pub labels: Labels,
    pub webhooks: Vec<WebhookInfo>,
    pub uid: String,
    /// `metadata.resourceVersion`: the precondition a write of it carries.
    pub resource_version: String,
    /// Every annotation (a configuration has few): `tag set` copies the
    /// revision's onto the tag's, as istioctl does, and keeps its record here.
    pub annotations: Labels,
}

impl WebhookConfigurationInfo {
    /// The `istio.io/tag` label: this configuration serves a revision tag.
    pub fn tag(&self) -> Option<&str> {
        self.labels.get("istio.io/tag").map(String::as_str)
    }
}

impl From<&MutatingWebhookConfiguration> for WebhookConfigurationInfo {
    fn from(m: &MutatingWebhookConfiguration) -> Self {
        WebhookConfigurationInfo {
            name: name_of(&m.metadata),
            labels: labels_of(&m.metadata),
            uid: m.metadata.uid.clone().unwrap_or_default(),
            resource_version: m.metadata.resource_version.clone().unwrap_or_default(),
            annotations: m.metadata.annotations.clone().unwrap_or_default(),
            webhooks: m
                .webhooks
                .as_ref()
                .map(|ws| ws.iter().map(WebhookInfo::from).collect())
                .unwrap_or_default(),
        }
    }
}

/// An istiod Deployment: one control-plane revision.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct IstiodInfo {
    pub namespace: String,
    pub name: String,
    /// Object labels (`app=istiod`, `istio.io/rev`).
    pub labels: Labels,
    /// Template labels (matched by the istiod Service's selector).
    pub template_labels: Labels,
    /// The `istio.io/rev` label, `default` when absent.
    pub revision: String,
    /// The image of the `discovery` container (or the first container).
    pub image: String,
    /// Literal environment values of that container (`REVISION`, ...).
    pub env: Labels,
    pub generation: i64,
    pub observed_generation: i64,
    pub desired: i32,
    pub ready: i32,
    pub available: i32,
    pub updated: i32,
    /// The Helm release that installed it (`meta.helm.sh/release-name` and
    /// `-namespace` annotations, which only `helm install` writes; istioctl
    /// renders the same chart labels but not these).
    pub helm_release: Option<HelmRelease>,
}

/// A Helm release, as its annotations name it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct HelmRelease {
    pub name: String,
    pub namespace: String,
}

impl IstiodInfo {
    /// Whether `d` is an istiod Deployment in the control-plane namespace.
    pub fn is_istiod(d: &Deployment, control_plane_namespace: &str) -> bool {
        d.metadata.namespace.as_deref() == Some(control_plane_namespace)
            && d.metadata
                .labels
                .as_ref()
                .and_then(|l| l.get("app"))
                .is_some_and(|app| app == "istiod")
    }
}

impl IstiodInfo {
    /// [`IstiodInfo::is_istiod`] on what a lean decoder read of a
    /// Deployment: its namespace and labels.
    pub(crate) fn is_istiod_by(
        namespace: &str,
        labels: &dyn LabelLookup,
        control_plane_namespace: &str,
    ) -> bool {
        namespace == control_plane_namespace && labels.label("app") == Some("istiod")
    }
}

impl From<&Deployment> for IstiodInfo {
    fn from(d: &Deployment) -> Self {
        let meta = &d.metadata;
        let labels = labels_of(meta);
        let spec = d.spec.as_ref();
        let status = d.status.as_ref();
        let pod_spec = spec.and_then(|s| s.template.spec.as_ref());
        let container = pod_spec.and_then(|p| {
            p.containers
                .iter()
                .find(|c| c.name == "discovery")
                .or_else(|| p.containers.first())
        });
        IstiodInfo {
            namespace: namespace_of(meta),
            name: name_of(meta),
            revision: labels
                .get("istio.io/rev")
                .filter(|r| !r.is_empty())
                .cloned()
                .unwrap_or_else(|| "default".to_string()),
            labels,
            template_labels: spec
                .and_then(|s| s.template.metadata.as_ref())
                .and_then(|m| m.labels.clone())
                .unwrap_or_default(),
            image: container.and_then(|c| c.image.clone()).unwrap_or_default(),
            env: container
                .and_then(|c| c.env.as_ref())
                .map(|env| {
                    env.iter()
                        .filter_map(|e| Some((e.name.clone(), e.value.clone()?)))
                        .collect()
                })
                .unwrap_or_default(),
            generation: meta.generation.unwrap_or(0),
            observed_generation: status.and_then(|s| s.observed_generation).unwrap_or(0),
            desired: spec.and_then(|s| s.replicas).unwrap_or(1),
            ready: status.and_then(|s| s.ready_replicas).unwrap_or(0),
            available: status.and_then(|s| s.available_replicas).unwrap_or(0),
            updated: status.and_then(|s| s.updated_replicas).unwrap_or(0),
            helm_release: helm_release_of(meta),
        }
    }
}

/// The release named by Helm's ownership annotations, if both are there.
fn helm_release_of(meta: &ObjectMeta) -> Option<HelmRelease> {
    helm_release_from(meta.annotations.as_ref(), &namespace_of(meta))
}

/// Helm's ownership annotations, which [`helm_release_from`] reads.
pub const HELM_RELEASE_ANNOTATIONS: [&str; 2] = [
    "meta.helm.sh/release-name",
    "meta.helm.sh/release-namespace",
];

/// The release Helm's ownership annotations name (the object's own
/// namespace when the release's is not given).
pub fn helm_release_from(annotations: Option<&Labels>, namespace: &str) -> Option<HelmRelease> {
    let annotations = annotations?;
    let name = annotations.get(HELM_RELEASE_ANNOTATIONS[0])?;
    let namespace = annotations
        .get(HELM_RELEASE_ANNOTATIONS[1])
        .cloned()
        .unwrap_or_else(|| namespace.to_string());
    Some(HelmRelease {
        name: name.clone(),
        namespace,
    })
}

/// An injector ConfigMap (`istio-sidecar-injector[-<rev>]`): what the
/// revision's istiod renders into pods (`values`) and its injection policy
/// (`config`).
#[derive(Clone, Debug, PartialEq)]
pub struct InjectorConfigInfo {
    pub namespace: String,
    pub name: String,
    /// The `istio.io/rev` label, else the name's suffix, else `default`.
    pub revision: String,
    /// `global.hub` of the `values` JSON.
    pub hub: Option<String>,
    /// `global.tag` of the `values` JSON (a string, or a number written as one).
    pub tag: Option<String>,
    /// `global.proxy.image` (`proxyv2` when unset; a whole image reference
    /// when it contains a `/`).
    pub proxy_image: Option<String>,
    /// `global.variant` (`distroless`, `debug`; empty or `default` for none).
    pub variant: Option<String>,
    /// `sidecarInjectorWebhook.enableNamespacesByDefault`.
    pub enable_namespaces_by_default: bool,
    /// The `config` key, parsed; `None` when it is missing or unreadable.
    pub policy: Option<InjectionPolicyConfig>,
}

/// The part of an injector ConfigMap's `config` that decides whether istiod
/// injects a pod it was asked about (`Config` in Istio's
/// `pkg/kube/inject/inject.go`).
#[derive(Clone, Debug, PartialEq)]
pub struct InjectionPolicyConfig {
    /// `policy` as written: `enabled` or `disabled`; anything else (empty
    /// when missing) makes istiod inject nothing.
    pub policy: String,
    /// `neverInjectSelector`: pods whose labels match one are not injected
    /// (unless they ask to be). Empty and invalid selectors, which istiod
    /// skips, are left out.
    pub never_inject_selector: Vec<LabelMatcher>,
    /// `alwaysInjectSelector`: pods whose labels match one are injected
    /// (unless they opt out or a never-selector matches).
    pub always_inject_selector: Vec<LabelMatcher>,
}

impl InjectionPolicyConfig {
    /// Parses the `config` YAML (its templates are skipped unread); `None`
    /// when it is not a YAML mapping istiod could load.
    pub fn parse(text: &str) -> Option<Self> {
        #[derive(serde::Deserialize)]
        #[serde(rename_all = "camelCase")]
        struct Raw {
            #[serde(default)]
            policy: Option<String>,
            #[serde(default)]
            never_inject_selector: Option<Vec<serde_yaml::Value>>,
            #[serde(default)]
            always_inject_selector: Option<Vec<serde_yaml::Value>>,
        }
        let raw: Raw = serde_yaml::from_str(text).ok()?;
        let selectors = |list: Option<Vec<serde_yaml::Value>>| -> Vec<LabelMatcher> {
            list.unwrap_or_default()
                .into_iter()
                .filter_map(|v| serde_yaml::from_value::<LabelSelector>(v).ok())
                .filter(|s| {
                    s.match_labels.as_ref().is_some_and(|m| !m.is_empty())
                        || s.match_expressions.as_ref().is_some_and(|e| !e.is_empty())
                })
                // What metav1.LabelSelectorAsSelector refuses and kube's
                // conversion would accept: In/NotIn without values,
                // Exists/DoesNotExist with some.
                .filter(|s| {
                    s.match_expressions.iter().flatten().all(|e| {
                        let has_values = e.values.as_ref().is_some_and(|v| !v.is_empty());
                        match e.operator.as_str() {
                            "In" | "NotIn" => has_values,
                            "Exists" | "DoesNotExist" => !has_values,
                            _ => false,
                        }
                    })
                })
                .filter_map(|s| Selector::try_from(s).ok())
                .map(LabelMatcher::from_selector)
                .collect()
        };
        Some(InjectionPolicyConfig {
            policy: raw.policy.unwrap_or_default(),
            never_inject_selector: selectors(raw.never_inject_selector),
            always_inject_selector: selectors(raw.always_inject_selector),
        })
    }
}

/// Name of the default revision's injector ConfigMap (others add `-<rev>`).
pub const INJECTOR_CONFIGMAP: &str = "istio-sidecar-injector";

impl InjectorConfigInfo {
    /// Whether `cm` is an injector ConfigMap by name.
    pub fn is_injector_config(cm: &ConfigMap) -> bool {
        cm.metadata.name.as_deref().is_some_and(|n| {
            n == INJECTOR_CONFIGMAP
                || n.strip_prefix(INJECTOR_CONFIGMAP)
                    .is_some_and(|rest| rest.starts_with('-'))
        })
    }
}

impl From<&ConfigMap> for InjectorConfigInfo {
    fn from(cm: &ConfigMap) -> Self {
        let meta = &cm.metadata;
        let name = name_of(meta);
        let revision = meta
            .labels
            .as_ref()
            .and_then(|l| l.get("istio.io/rev"))
            .filter(|r| !r.is_empty())
            .cloned()
            .or_else(|| {
                name.strip_prefix(INJECTOR_CONFIGMAP)
                    .and_then(|r| r.strip_prefix('-'))
                    .map(str::to_string)
            })
            .unwrap_or_else(|| "default".to_string());
        let values = cm
            .data
            .as_ref()
            .and_then(|d| d.get("values"))
            .and_then(|v| serde_json::from_str::<serde_json::Value>(v).ok());
        let field = |pointer: &str| -> Option<String> {
            match values.as_ref()?.pointer(pointer)? {
                serde_json::Value::String(s) if !s.is_empty() => Some(s.clone()),
                serde_json::Value::Number(n) => Some(n.to_string()),
                _ => None,
            }
        };
        InjectorConfigInfo {
            namespace: namespace_of(meta),
            hub: field("/global/hub"),
            tag: field("/global/tag"),
            proxy_image: field("/global/proxy/image"),
            variant: field("/global/variant"),
            enable_namespaces_by_default: values
                .as_ref()
                .and_then(|v| v.pointer("/sidecarInjectorWebhook/enableNamespacesByDefault"))
                .and_then(serde_json::Value::as_bool)
                .unwrap_or(false),
            policy: cm
                .data
                .as_ref()
                .and_then(|d| d.get("config"))
                .and_then(|c| InjectionPolicyConfig::parse(c)),
            name,
            revision,
        }
    }
}

fn name_of(meta: &ObjectMeta) -> String {
    meta.name.clone().unwrap_or_default()
}

fn namespace_of(meta: &ObjectMeta) -> String {
    meta.namespace.clone().unwrap_or_default()
}

fn labels_of(meta: &ObjectMeta) -> Labels {
    meta.labels.clone().unwrap_or_default()
}

/// The annotations under [`RECORD_ANNOTATION_PREFIX`]: the plugin's own records.
fn records_of(meta: &ObjectMeta) -> Labels {
    meta.annotations
        .iter()
        .flatten()
        .filter(|(key, _)| key.starts_with(RECORD_ANNOTATION_PREFIX))
        .map(|(key, value)| (key.clone(), value.clone()))
        .collect()
}

fn owners_of(meta: &ObjectMeta) -> Vec<OwnerRef> {
    meta.owner_references
        .as_ref()
        .map(|os| os.iter().map(OwnerRef::from).collect())
        .unwrap_or_default()
}

fn int_or_string(v: &IntOrString) -> String {
    match v {
        IntOrString::Int(i) => i.to_string(),
        IntOrString::String(s) => s.clone(),
    }
}

fn to_chrono(t: &k8s_openapi::jiff::Timestamp) -> Option<DateTime<Utc>> {
    DateTime::from_timestamp(t.as_second(), t.subsec_nanosecond().try_into().ok()?)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn revision_of(status: &str) -> Option<String> {
        let annotations: Labels = [(SIDECAR_STATUS_ANNOTATION.to_string(), status.to_string())]
            .into_iter()
            .collect();
        let facts = ProxyFacts::extract::<Container>(Some(&annotations), &[], &[], false);
        assert!(facts.has_status_annotation);
        facts.status_revision
    }

    #[test]
    fn only_a_non_empty_string_revision_of_a_well_formed_status_is_read() {
        let injected = r#"{"initContainers":["istio-init"],"containers":["istio-proxy"],"volumes":["istio-envoy"],"imagePullSecrets":null,"revision":"1-22-3"}"#;
        assert_eq!(revision_of(injected).as_deref(), Some("1-22-3"));
        // Escapes are decoded, not borrowed as written.
        assert_eq!(
            revision_of(r#"{"revision":"1-22-\u0033"}"#).as_deref(),
            Some("1-22-3")
        );
        // Older injectors wrote no revision; none of these name one either.
        for status in [
            r#"{"containers":["istio-proxy"]}"#,
            r#"{"revision":""}"#,
            r#"{"revision":null}"#,
            r#"{"revision":7}"#,
            "not json",
        ] {
            assert_eq!(revision_of(status), None, "{status}");
        }
    }

    fn pod(spec: serde_json::Value, annotations: serde_json::Value) -> PodInfo {
        let pod: Pod = serde_json::from_value(serde_json::json!({
            "metadata": {"name": "p", "namespace": "shop", "annotations": annotations},
            "spec": spec,
        }))
        .expect("a Pod");
        PodInfo::from(&pod)
    }

    #[test]
    fn an_istio_proxy_init_container_is_a_proxy_whatever_its_restart_policy() {
        let app = serde_json::json!({"name": "app", "image": "app:1"});
        let proxy =
            serde_json::json!({"name": "istio-proxy", "image": "docker.io/istio/proxyv2:1.22.3"});
        let native = pod(
            serde_json::json!({"containers": [app], "initContainers": [
                {"name": "istio-proxy", "image": "docker.io/istio/proxyv2:1.22.3", "restartPolicy": "Always"}
            ]}),
            serde_json::json!({}),
        );
        assert_eq!(
            native.proxy.sidecar.as_ref().map(|s| s.placement),
            Some(SidecarPlacement::NativeSidecar)
        );
        // An API server without the SidecarContainers feature drops restartPolicy.
        let dropped = pod(
            serde_json::json!({"containers": [app], "initContainers": [proxy]}),
            serde_json::json!({}),
        );
        assert_eq!(
            dropped.proxy.sidecar,
            Some(SidecarContainer {
                image: "docker.io/istio/proxyv2:1.22.3".into(),
                placement: SidecarPlacement::InitContainer,
            })
        );
        // A container named istio-proxy without an image is no proxy.
        let empty = pod(
            serde_json::json!({"containers": [app, {"name": "istio-proxy"}]}),
            serde_json::json!({}),
        );
        assert_eq!(empty.proxy.sidecar, None);
    }

    #[test]
    fn host_network_and_the_injection_annotations_are_kept() {
        let p = pod(
            serde_json::json!({"hostNetwork": true, "containers": [{"name": "app", "image": "app:1"}]}),
            serde_json::json!({
                "sidecar.istio.io/inject": "false",
                "sidecar.istio.io/proxyImageType": "distroless",
            }),
        );
        assert!(p.proxy.host_network);
        assert_eq!(p.proxy.inject_annotation.as_deref(), Some("false"));
        assert_eq!(p.proxy.proxy_image_type.as_deref(), Some("distroless"));
    }

    #[test]
    fn the_injector_configmap_yields_image_settings_and_policy() {
        let cm: ConfigMap = serde_json::from_value(serde_json::json!({
            "metadata": {"name": "istio-sidecar-injector-1-22-3", "namespace": "istio-system"},
            "data": {
                "values": r#"{"global": {"hub": "gcr.io/istio-release", "tag": 1.22, "variant": "distroless",
                    "proxy": {"image": "proxyv2"}},
                    "sidecarInjectorWebhook": {"enableNamespacesByDefault": true}}"#,
                "config": "defaultTemplates: [sidecar]\npolicy: disabled\nalwaysInjectSelector:\n  - matchLabels: {team: a}\nneverInjectSelector: []\ntemplates:\n  sidecar: |\n    {{ .Values.global.hub }}\n",
            },
        }))
        .unwrap();
        let info = InjectorConfigInfo::from(&cm);
        assert_eq!(info.revision, "1-22-3");
        assert_eq!(info.hub.as_deref(), Some("gcr.io/istio-release"));
        assert_eq!(info.tag.as_deref(), Some("1.22"));
        assert_eq!(info.variant.as_deref(), Some("distroless"));
        assert_eq!(info.proxy_image.as_deref(), Some("proxyv2"));
        assert!(info.enable_namespaces_by_default);
        let policy = info.policy.expect("the config parses");
        assert_eq!(policy.policy, "disabled");
        assert_eq!(policy.always_inject_selector.len(), 1);
        assert!(policy.never_inject_selector.is_empty());
    }
}
