//! Ambient mode's data plane: the ztunnel and istio-cni DaemonSets node by
//! node, the control plane each talks to, Istio's supported version skew,
//! and which pods ambient mode captures.
//!
//! ```text
//! snapshot ─► components: DaemonSets whose template is ztunnel's / istio-cni's
//!               └─ per node (every linux node, plus any node with a pod):
//!                  its pod, version, Ready, on the template?, control plane, skew
//!          ─► ambient pods: captured per the CNI's enablement rules, and what
//!               `ambient.istio.io/redirection` says (enabled / pending / missing)
//!          ─► attention: stale nodes, skew outside the window, agents not Ready,
//!               pods not captured, nodes left cordoned by ztunnel-roll
//! ```
//!
//! Rules, from istio/istio:
//! - ztunnel pods are `app: ztunnel` in the control plane's namespace, the
//!   proxy in container `istio-proxy`; they talk to the istiod Service named
//!   in `XDS_ADDRESS` (`istiod[-<rev>].<ns>.svc:15012`,
//!   `manifests/charts/ztunnel/templates/daemonset.yaml`), else the one their
//!   `istio.io/rev` annotation names. istio-cni pods are
//!   `k8s-app: istio-cni-node` with container `install-cni`; the DaemonSet's
//!   `istio.io/rev` label (`default` without a revision) names its control plane
//!   (`manifests/charts/istio-cni/templates/daemonset.yaml`).
//! - Skew: "the ztunnel at version 1.x is compatible with the control plane
//!   at version 1.x+1 and 1.x" (and the same for the CNI node agent), so
//!   the control plane is upgraded first (istio.io
//!   `docs/ambient/upgrade/helm`). A data plane newer than its control
//!   plane, or two minors behind it, is outside the window.
//! - Captured: the chart's default `ambient.enablementSelectors` (pod label
//!   `istio.io/dataplane-mode=ambient`, or the namespace's with the pod's not
//!   `none`), never a host-network pod, a pod with a sidecar, or one in
//!   `kube-system` (`excludeNamespaces`)
//!   (`cni/pkg/util/enablement_selector.go`, `cni/pkg/nodeagent/informers.go`).
//!   The CNI writes `ambient.istio.io/redirection: enabled` once ztunnel
//!   took the pod, `pending` when its rules are in place but no ztunnel
//!   answered (`cni/pkg/nodeagent/meshdataplane_linux.go`, `AddPodToMesh`).

use std::collections::{BTreeMap, BTreeSet};

use serde::Serialize;

use crate::mesh::control_plane::ControlPlane;
use crate::mesh::proxy::{Version, image_version};
use crate::snapshot::ambient::DATAPLANE_MODE_LABEL;
use crate::snapshot::{
    ClusterSnapshot, DataPlaneComponent, DataPlaneFacts, NamespaceInfo, NodeInfo, PodInfo,
    controller_of,
};

/// The verb that cordons nodes for a ztunnel upgrade, as written in the
/// node annotation `mesh-upgrade.io/cordoned-by`.
pub const ROLL_VERB: &str = "ztunnel-roll";

/// The istiod revision a data-plane component talks to.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct ControlPlaneRef {
    pub revision: String,
    /// The istiod Deployment.
    pub istiod: String,
    /// istiod's version (its image tag).
    pub version: Option<String>,
    /// At least one istiod pod is Ready.
    pub ready: bool,
}

/// Where a data-plane version stands against its control plane's.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
#[serde(
    tag = "kind",
    rename_all = "kebab-case",
    rename_all_fields = "camelCase"
)]
pub enum Skew {
    /// Same minor, or one behind: what Istio supports.
    Supported { minors_behind: u64 },
    /// Two or more minors behind the control plane.
    TooFarBehind { minors_behind: u64 },
    /// Newer than the control plane (which must be upgraded first).
    Ahead { minors_ahead: u64 },
    /// Another major version altogether.
    OtherMajor,
}

impl Skew {
    /// Where `data_plane` stands against `control_plane`; `None` when either
    /// is no version.
    pub fn of(data_plane: &str, control_plane: &str) -> Option<Skew> {
        let (dp, cp) = (Version::parse(data_plane)?, Version::parse(control_plane)?);
        Some(if dp.major != cp.major {
            Skew::OtherMajor
        } else if dp.minor > cp.minor {
            Skew::Ahead {
                minors_ahead: dp.minor - cp.minor,
            }
        } else if cp.minor - dp.minor > 1 {
            Skew::TooFarBehind {
                minors_behind: cp.minor - dp.minor,
            }
        } else {
            Skew::Supported {
                minors_behind: cp.minor - dp.minor,
            }
        })
    }

    pub fn is_supported(self) -> bool {
        matches!(self, Skew::Supported { .. })
    }

    /// "2 minors behind istiod 1.24.0 (Istio supports one)", or `None` when supported.
    pub fn problem(self, control_plane: &str) -> Option<String> {
        let minors = |n: u64| {
            if n == 1 {
                "1 minor".to_string()
            } else {
                format!("{n} minors")
            }
        };
        match self {
            Skew::Supported { .. } => None,
            Skew::TooFarBehind { minors_behind } => Some(format!(
                "{} behind istiod {control_plane}; Istio supports at most one",
                minors(minors_behind)
            )),
            Skew::Ahead { minors_ahead } => Some(format!(
                "{} ahead of istiod {control_plane}; Istio supports none: upgrade istiod first",
                minors(minors_ahead)
            )),
            Skew::OtherMajor => Some(format!("another major version than istiod {control_plane}")),
        }
    }
}

/// Who cordoned a node.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
#[serde(rename_all = "kebab-case", tag = "by")]
pub enum Cordon {
    /// Not cordoned.
    None,
    /// This plugin's verb (`ztunnel-roll`), at `at`.
    Plugin { verb: String, at: Option<String> },
    /// Someone else (`kubectl cordon`, a node upgrade): never undone here.
    Other,
}

impl Cordon {
    pub fn of(node: &NodeInfo) -> Cordon {
        match (&node.cordoned_by, node.unschedulable) {
            (Some(verb), true) => Cordon::Plugin {
                verb: verb.clone(),
                at: node.cordoned_at.clone(),
            },
            (_, true) => Cordon::Other,
            (_, false) => Cordon::None,
        }
    }

    pub fn is_cordoned(&self) -> bool {
        !matches!(self, Cordon::None)
    }

    /// Cordoned by `ztunnel-roll`.
    pub fn is_ours(&self) -> bool {
        matches!(self, Cordon::Plugin { verb, .. } if verb == ROLL_VERB)
    }
}

/// A ztunnel or istio-cni pod.
#[derive(Clone, Debug, PartialEq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct ComponentPod {
    pub name: String,
    #[serde(skip)]
    pub uid: String,
    pub image: String,
    pub version: Option<String>,
    pub ready: bool,
    /// Runs the DaemonSet template's image.
    pub up_to_date: bool,
    /// The istiod it talks to.
    pub control_plane: Option<ControlPlaneRef>,
    /// Its version against that istiod's; `null` when either is unknown.
    pub skew: Option<Skew>,
}

/// One node's ztunnel or istio-cni.
#[derive(Clone, Debug, PartialEq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct ComponentNode {
    pub node: String,
    /// The node is Ready (`true` when Nodes could not be read).
    pub node_ready: bool,
    pub cordon: Cordon,
    /// Its pods, oldest first (two while a surge replaces one; none when missing).
    pub pods: Vec<ComponentPod>,
}

impl ComponentNode {
    /// The pod that serves the node: a Ready one on the template, else any
    /// Ready one, else the first.
    pub fn serving(&self) -> Option<&ComponentPod> {
        self.pods
            .iter()
            .find(|p| p.ready && p.up_to_date)
            .or_else(|| self.pods.iter().find(|p| p.ready))
            .or_else(|| self.pods.first())
    }

    /// A Ready pod runs here.
    pub fn is_ready(&self) -> bool {
        self.pods.iter().any(|p| p.ready)
    }

    /// Every pod runs the template's image (and there is one).
    pub fn is_up_to_date(&self) -> bool {
        !self.pods.is_empty() && self.pods.iter().all(|p| p.up_to_date)
    }

    /// `up-to-date`, `stale`, `not-ready`, `missing`.
    pub fn state(&self) -> &'static str {
        if self.pods.is_empty() {
            "missing"
        } else if !self.is_ready() {
            "not-ready"
        } else if self.is_up_to_date() {
            "up-to-date"
        } else {
            "stale"
        }
    }
}

/// A ztunnel or istio-cni DaemonSet and its pods, node by node.
#[derive(Clone, Debug, PartialEq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct ComponentStatus {
    /// `ztunnel` or `istio-cni`.
    pub component: &'static str,
    pub namespace: String,
    pub name: String,
    /// `RollingUpdate` or `OnDelete`.
    pub update_strategy: String,
    /// The template's image and version: what a new pod runs.
    pub image: String,
    pub version: Option<String>,
    /// The istiod the template talks to.
    pub control_plane: Option<ControlPlaneRef>,
    /// The template's version against it.
    pub skew: Option<Skew>,
    pub nodes: Vec<ComponentNode>,
    /// Nodes whose pod does not run the template.
    pub stale_nodes: usize,
    /// Nodes without a Ready pod.
    pub not_ready_nodes: usize,
    /// Sentences: what is wrong.
    pub problems: Vec<String>,
}

impl ComponentStatus {
    /// The node called `name`.
    pub fn node(&self, name: &str) -> Option<&ComponentNode> {
        self.nodes.iter().find(|n| n.node == name)
    }
}

/// How ambient mode holds one pod.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum Capture {
    /// `ambient.istio.io/redirection: enabled`: ztunnel carries its traffic.
    Enabled,
    /// `pending`: redirected, but no ztunnel took it yet: no traffic flows.
    Pending,
    /// Should be captured, and the CNI has not marked it (its node's
    /// istio-cni is not running, or it just started).
    Missing,
    /// In an ambient namespace, opted out with `istio.io/dataplane-mode=none`.
    OptedOut,
}

impl Capture {
    pub fn as_str(self) -> &'static str {
        match self {
            Capture::Enabled => "enabled",
            Capture::Pending => "pending",
            Capture::Missing => "missing",
            Capture::OptedOut => "opted-out",
        }
    }
}

/// A pod ambient mode captures (or was asked to and has not).
#[derive(Clone, Debug, PartialEq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct AmbientPod {
    pub namespace: String,
    pub name: String,
    pub node: Option<String>,
    /// `enabled`, `pending`, `missing` or `opted-out`.
    pub redirection: Capture,
    /// Its controller as `Kind/name` (`null` for a standalone pod).
    pub owner: Option<String>,
    #[serde(skip)]
    pub uid: String,
    #[serde(skip)]
    pub labels: crate::snapshot::Labels,
}

/// One namespace's ambient pods, counted.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct AmbientNamespace {
    pub name: String,
    /// The namespace carries `istio.io/dataplane-mode=ambient` (else only
    /// some of its pods do).
    pub labelled: bool,
    pub pods: usize,
    pub enabled: usize,
    pub pending: usize,
    pub missing: usize,
    pub opted_out: usize,
}

/// Ambient enrolment of the selected namespaces.
#[derive(Clone, Debug, Default, PartialEq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct AmbientStatus {
    /// An istio-cni DaemonSet runs in the control plane's namespace: only
    /// then is anything captured. Without it the lists below are empty.
    pub installed: bool,
    pub namespaces: Vec<AmbientNamespace>,
    /// Every captured (or should-be) pod, sorted by namespace and name.
    pub pods: Vec<AmbientPod>,
}

/// The ambient data plane of a snapshot.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct DataPlane {
    pub ztunnel: Vec<ComponentStatus>,
    pub istio_cni: Vec<ComponentStatus>,
}

/// The istiod a component talks to: the Service named in `XDS_ADDRESS`
/// (followed to the istiod its selector picks), else its `istio.io/rev`
/// (a revision or a tag; `default` is the default revision), else the
/// default revision.
pub fn control_plane_of(
    facts: &DataPlaneFacts,
    snapshot: &ClusterSnapshot,
    control_plane: &ControlPlane,
) -> Option<ControlPlaneRef> {
    let to_ref = |revision: &str| {
        control_plane.revision(revision).map(|r| ControlPlaneRef {
            revision: r.revision.clone(),
            istiod: r.deployment.clone(),
            version: r.istiod_version.clone(),
            ready: r.is_ready(),
        })
    };
    if let Some(address) = &facts.xds_address {
        let host = address.split(':').next().unwrap_or_default();
        let mut labels = host.split('.');
        let service = labels.next().unwrap_or_default();
        let namespace = labels
            .next()
            .unwrap_or(snapshot.control_plane_namespace.as_str());
        let istiod = snapshot
            .services
            .iter()
            .find(|s| s.name == service && s.namespace == namespace)
            .and_then(|s| {
                snapshot
                    .istiods
                    .iter()
                    .find(|i| i.namespace == namespace && s.selects(&i.template_labels))
            });
        if let Some(istiod) = istiod {
            return to_ref(&istiod.revision);
        }
        if snapshot.services.iter().any(|s| s.name == service) {
            return None;
        }
    }
    let revision = match facts.revision.as_deref() {
        Some("default") | None => control_plane.default_revision(),
        Some(named) => control_plane.resolve(named).map(str::to_string),
    }?;
    to_ref(&revision)
}

/// Nodes the charts' DaemonSets run on (`nodeSelector: kubernetes.io/os:
/// linux`); a node without the label is taken as Linux.
fn runs_component(node: &NodeInfo) -> bool {
    node.labels
        .get("kubernetes.io/os")
        .is_none_or(|os| os == "linux")
}

/// The ztunnel and istio-cni DaemonSets of the control plane's namespace.
pub fn data_plane(snapshot: &ClusterSnapshot, control_plane: &ControlPlane) -> DataPlane {
    let mut out = DataPlane::default();
    for ds in &snapshot.daemon_sets {
        if ds.namespace != snapshot.control_plane_namespace {
            continue;
        }
        let Some(facts) = &ds.data_plane else {
            continue;
        };
        let status = component_status(ds, facts, snapshot, control_plane);
        match facts.component {
            DataPlaneComponent::Ztunnel => out.ztunnel.push(status),
            DataPlaneComponent::IstioCni => out.istio_cni.push(status),
        }
    }
    out
}

fn component_status(
    ds: &crate::snapshot::DaemonSetInfo,
    facts: &DataPlaneFacts,
    snapshot: &ClusterSnapshot,
    control_plane: &ControlPlane,
) -> ComponentStatus {
    let template_cp = control_plane_of(facts, snapshot, control_plane);
    let version = image_version(&facts.image);
    let skew_of = |version: Option<&String>, cp: Option<&ControlPlaneRef>| {
        Skew::of(version?, cp?.version.as_deref()?)
    };
    let mut by_node: BTreeMap<String, ComponentNode> = BTreeMap::new();
    for node in snapshot.nodes.iter().filter(|n| runs_component(n)) {
        by_node.insert(
            node.name.clone(),
            ComponentNode {
                node: node.name.clone(),
                node_ready: node.ready,
                cordon: Cordon::of(node),
                pods: Vec::new(),
            },
        );
    }
    let mut pods: Vec<&PodInfo> = snapshot
        .pods
        .iter()
        .filter(|p| {
            p.namespace == ds.namespace
                && !p.terminating
                && controller_of(&p.owners)
                    .is_some_and(|o| o.kind == "DaemonSet" && o.uid == ds.uid)
        })
        .collect();
    pods.sort_by(|a, b| a.created.cmp(&b.created).then(a.name.cmp(&b.name)));
    for pod in pods {
        let Some(node_name) = pod.ambient.node.clone() else {
            continue;
        };
        let pod_facts = pod.ambient.data_plane.as_deref();
        let image = pod_facts.map(|f| f.image.clone()).unwrap_or_default();
        let pod_version = image_version(&image);
        // istio-cni pods carry no revision of their own: the DaemonSet's
        // label names their control plane.
        let pod_cp = match facts.component {
            DataPlaneComponent::IstioCni => template_cp.clone(),
            DataPlaneComponent::Ztunnel => {
                pod_facts.and_then(|f| control_plane_of(f, snapshot, control_plane))
            }
        };
        let entry = by_node
            .entry(node_name.clone())
            .or_insert_with(|| ComponentNode {
                node: node_name.clone(),
                node_ready: snapshot
                    .nodes
                    .iter()
                    .find(|n| n.name == node_name)
                    .is_none_or(|n| n.ready),
                cordon: snapshot
                    .nodes
                    .iter()
                    .find(|n| n.name == node_name)
                    .map_or(Cordon::None, Cordon::of),
                pods: Vec::new(),
            });
        entry.pods.push(ComponentPod {
            name: pod.name.to_string(),
            uid: pod.uid.to_string(),
            up_to_date: image == facts.image,
            skew: skew_of(pod_version.as_ref(), pod_cp.as_ref()),
            image,
            version: pod_version,
            ready: pod.ready,
            control_plane: pod_cp,
        });
    }
    let nodes: Vec<ComponentNode> = by_node.into_values().collect();
    let stale_nodes = nodes
        .iter()
        .filter(|n| !n.pods.is_empty() && !n.is_up_to_date())
        .count();
    let not_ready_nodes = nodes.iter().filter(|n| !n.is_ready()).count();
    let name = facts.component.display_name();
    let mut problems = Vec::new();
    let skew = skew_of(version.as_ref(), template_cp.as_ref());
    match (&template_cp, &facts.xds_address) {
        (None, Some(address)) => problems.push(format!(
            "its template talks to {address}, which no istiod Deployment serves"
        )),
        (None, None) => problems.push(format!(
            "no istiod serves its revision ({})",
            facts.revision.as_deref().unwrap_or("default")
        )),
        (Some(cp), _) if !cp.ready => problems.push(format!(
            "{} ({}) has no Ready pod: {name} cannot get its configuration",
            cp.istiod, cp.revision
        )),
        _ => {}
    }
    if let (Some(skew), Some(cp_version)) = (
        skew,
        template_cp.as_ref().and_then(|c| c.version.as_deref()),
    ) && let Some(problem) = skew.problem(cp_version)
    {
        problems.push(format!(
            "its template runs {} {}, {problem}",
            name,
            version.as_deref().unwrap_or("?")
        ));
    }
    let mut skewed: BTreeMap<String, Vec<&str>> = BTreeMap::new();
    for node in &nodes {
        for pod in &node.pods {
            let (Some(skew), Some(cp)) = (pod.skew, &pod.control_plane) else {
                continue;
            };
            if let Some(problem) = skew.problem(cp.version.as_deref().unwrap_or("?")) {
                skewed
                    .entry(format!(
                        "{name} {} is {problem}",
                        pod.version.as_deref().unwrap_or("?")
                    ))
                    .or_default()
                    .push(&node.node);
            }
        }
    }
    for (problem, on) in skewed {
        problems.push(format!("on {}: {problem}", and_list(&on)));
    }
    let not_ready: Vec<&str> = nodes
        .iter()
        .filter(|n| !n.is_ready() && n.node_ready)
        .map(|n| n.node.as_str())
        .collect();
    if !not_ready.is_empty() {
        problems.push(format!("no Ready {name} pod on {}", and_list(&not_ready)));
    }
    ComponentStatus {
        component: name,
        namespace: ds.namespace.clone(),
        name: ds.name.clone(),
        update_strategy: ds.update_strategy.clone(),
        image: facts.image.clone(),
        version,
        control_plane: template_cp,
        skew,
        nodes,
        stale_nodes,
        not_ready_nodes,
        problems,
    }
}

/// `a`, `a and b`, `a, b and c`.
pub fn and_list(items: &[&str]) -> String {
    match items {
        [] => String::new(),
        [one] => (*one).to_string(),
        [init @ .., last] => format!("{} and {last}", init.join(", ")),
    }
}

/// Whether the CNI captures `pod` in `namespace` (see the module's rules).
pub fn should_be_captured(pod: &PodInfo, namespace: Option<&NamespaceInfo>) -> bool {
    if pod.proxy.host_network || pod.proxy.has_status_annotation || pod.namespace == "kube-system" {
        return false;
    }
    if pod.ambient.data_plane.is_some() {
        return false;
    }
    let pod_mode = pod.labels.get(DATAPLANE_MODE_LABEL);
    if pod_mode == Some("ambient") {
        return true;
    }
    let namespace_mode = namespace
        .and_then(|n| n.labels.get(DATAPLANE_MODE_LABEL))
        .map(String::as_str);
    namespace_mode == Some("ambient") && pod_mode != Some("none")
}

/// The pods of the selected namespaces that ambient mode captures or should;
/// nothing when ambient mode is not installed (no istio-cni DaemonSet in the
/// control plane's namespace), where no pod is captured whatever its labels.
pub fn ambient(snapshot: &ClusterSnapshot) -> AmbientStatus {
    let installed = snapshot.daemon_sets.iter().any(|d| {
        d.namespace == snapshot.control_plane_namespace
            && d.data_plane
                .as_ref()
                .is_some_and(|f| f.component == DataPlaneComponent::IstioCni)
    });
    if !installed {
        return AmbientStatus::default();
    }
    let mut namespaces: BTreeMap<String, AmbientNamespace> = BTreeMap::new();
    for ns in &snapshot.namespaces {
        if snapshot.scope.contains(&ns.name)
            && ns.labels.get(DATAPLANE_MODE_LABEL).map(String::as_str) == Some("ambient")
        {
            namespaces.insert(
                ns.name.clone(),
                AmbientNamespace {
                    name: ns.name.clone(),
                    labelled: true,
                    ..AmbientNamespace::default()
                },
            );
        }
    }
    let mut pods = Vec::new();
    for pod in &snapshot.pods {
        if !snapshot.scope.contains(&pod.namespace)
            || pod.terminating
            || matches!(pod.phase.as_str(), "Succeeded" | "Failed")
        {
            continue;
        }
        let namespace = snapshot.namespace(&pod.namespace);
        let opted_out = namespaces.contains_key(pod.namespace.as_str())
            && pod.labels.get(DATAPLANE_MODE_LABEL) == Some("none");
        let capture = if opted_out {
            Capture::OptedOut
        } else if should_be_captured(pod, namespace) {
            match pod.ambient.redirection.as_deref() {
                Some("enabled") => Capture::Enabled,
                Some("pending") => Capture::Pending,
                _ => Capture::Missing,
            }
        } else {
            continue;
        };
        let entry = namespaces
            .entry(pod.namespace.to_string())
            .or_insert_with(|| AmbientNamespace {
                name: pod.namespace.to_string(),
                ..AmbientNamespace::default()
            });
        entry.pods += 1;
        match capture {
            Capture::Enabled => entry.enabled += 1,
            Capture::Pending => entry.pending += 1,
            Capture::Missing => entry.missing += 1,
            Capture::OptedOut => entry.opted_out += 1,
        }
        pods.push(AmbientPod {
            namespace: pod.namespace.to_string(),
            name: pod.name.to_string(),
            node: pod.ambient.node.clone(),
            redirection: capture,
            owner: workload_of(snapshot, pod),
            uid: pod.uid.to_string(),
            labels: pod.labels.to_labels(),
        });
    }
    pods.sort_by(|a, b| (&a.namespace, &a.name).cmp(&(&b.namespace, &b.name)));
    AmbientStatus {
        installed,
        namespaces: namespaces.into_values().collect(),
        pods,
    }
}

/// The workload a pod belongs to, as `Kind/name`: a ReplicaSet's
/// Deployment when it has one.
fn workload_of(snapshot: &ClusterSnapshot, pod: &PodInfo) -> Option<String> {
    let owner = controller_of(&pod.owners)?;
    if owner.kind == "ReplicaSet"
        && let Some(deployment) = snapshot
            .replica_sets
            .iter()
            .find(|rs| rs.uid == owner.uid)
            .and_then(|rs| controller_of(&rs.owners))
            .filter(|o| o.kind == "Deployment")
    {
        return Some(format!("Deployment/{}", deployment.name));
    }
    Some(format!("{}/{}", owner.kind, owner.name))
}

/// What `status` says needs attention, with the command that fixes it.
pub fn attention(data_plane: &DataPlane, ambient: &AmbientStatus) -> Vec<(String, Option<String>)> {
    let mut out = Vec::new();
    for z in &data_plane.ztunnel {
        let stale: Vec<&ComponentNode> = z
            .nodes
            .iter()
            .filter(|n| !n.pods.is_empty() && !n.is_up_to_date())
            .collect();
        if !stale.is_empty() {
            let running: BTreeSet<&str> = stale
                .iter()
                .flat_map(|n| n.pods.iter().filter(|p| !p.up_to_date))
                .map(|p| p.version.as_deref().unwrap_or("?"))
                .collect();
            let running: Vec<&str> = running.into_iter().collect();
            let message = format!(
                "ztunnel on {} runs {} but its DaemonSet now runs {}",
                plural(stale.len(), "node"),
                running.join("/"),
                z.version.as_deref().unwrap_or(&z.image)
            );
            if z.update_strategy == "OnDelete" {
                out.push((
                    format!("{message} (OnDelete: replaced node by node)"),
                    Some(format!("kubectl mesh-upgrade {ROLL_VERB}")),
                ));
            } else {
                out.push((
                    format!(
                        "{message}; the DaemonSet controller is replacing them (RollingUpdate)"
                    ),
                    Some(format!(
                        "kubectl -n {} rollout status daemonset/{}",
                        z.namespace, z.name
                    )),
                ));
            }
        }
        let ours: Vec<&str> = z
            .nodes
            .iter()
            .filter(|n| n.cordon.is_ours())
            .map(|n| n.node.as_str())
            .collect();
        if !ours.is_empty() {
            out.push((
                format!(
                    "{} left cordoned by an unfinished {ROLL_VERB}: running it again finishes and uncordons {}",
                    and_list(&ours),
                    if ours.len() == 1 { "it" } else { "them" }
                ),
                Some(format!("kubectl mesh-upgrade {ROLL_VERB}")),
            ));
        }
        for problem in &z.problems {
            out.push((
                format!("ztunnel {}/{}: {problem}", z.namespace, z.name),
                None,
            ));
        }
    }
    for c in &data_plane.istio_cni {
        for problem in &c.problems {
            out.push((
                format!("istio-cni {}/{}: {problem}", c.namespace, c.name),
                None,
            ));
        }
    }
    let pending: Vec<&AmbientPod> = ambient
        .pods
        .iter()
        .filter(|p| p.redirection == Capture::Pending)
        .collect();
    if !pending.is_empty() {
        out.push((
            format!(
                "{} redirected to ztunnel but not taken by one (ambient.istio.io/redirection=pending): no traffic flows for {}",
                plural(pending.len(), "pod"),
                if pending.len() == 1 { "it" } else { "them" }
            ),
            None,
        ));
    }
    let missing: Vec<&AmbientPod> = ambient
        .pods
        .iter()
        .filter(|p| p.redirection == Capture::Missing)
        .collect();
    if !missing.is_empty() {
        out.push((
            format!(
                "{} should be captured by ambient mode but carry no ambient.istio.io/redirection (is istio-cni Ready on their nodes?)",
                plural(missing.len(), "pod"),
            ),
            None,
        ));
    }
    out
}

fn plural(n: usize, word: &str) -> String {
    if n == 1 {
        format!("{n} {word}")
    } else {
        format!("{n} {word}s")
    }
}

/// The pods on `node` that ztunnel carries, which a drain moves: captured
/// (or should be) and not opted out.
pub fn ztunnel_dependents<'a>(ambient: &'a AmbientStatus, node: &str) -> Vec<&'a AmbientPod> {
    ambient
        .pods
        .iter()
        .filter(|p| p.node.as_deref() == Some(node) && p.redirection != Capture::OptedOut)
        .collect()
}

#[cfg(test)]
pub(crate) mod tests;
