//! What the ambient data plane is read from: Nodes, where each pod runs and
//! what Istio's CNI agent wrote on it, and what the ztunnel and istio-cni
//! DaemonSets and their pods run.
//!
//! Kept as small as the rest of the snapshot: a pod carries its node, its
//! `ambient.istio.io/redirection` annotation and, only when it is a ztunnel
//! or istio-cni pod, the [`DataPlaneFacts`] of its component container.
//! Which labels and containers mark those pods is Istio's charts'
//! (`manifests/charts/ztunnel/templates/daemonset.yaml`,
//! `manifests/charts/istio-cni/templates/daemonset.yaml`).

use k8s_openapi::api::apps::v1::DaemonSet;
use k8s_openapi::api::core::v1::{Container, Node, Pod};

use super::{LabelLookup, Labels, labels_of, name_of};

/// The annotation Istio's CNI agent writes on the pods it captured
/// (`enabled`) or set up without a ztunnel to take them yet (`pending`).
pub const REDIRECTION_ANNOTATION: &str = "ambient.istio.io/redirection";
/// The label enrolling a namespace or pod in ambient (`ambient`), or
/// opting a pod out (`none`).
pub const DATAPLANE_MODE_LABEL: &str = "istio.io/dataplane-mode";
/// Node annotation: which verb of this plugin cordoned the node (so a rerun
/// uncordons only what it cordoned).
pub const CORDONED_BY_ANNOTATION: &str = "mesh-upgrade.io/cordoned-by";
/// Node annotation: when that cordon was made (RFC 3339).
pub const CORDONED_AT_ANNOTATION: &str = "mesh-upgrade.io/cordoned-at";

/// The two node agents of ambient mode.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum DataPlaneComponent {
    /// The per-node proxy: pods `app: ztunnel`, container `istio-proxy`.
    Ztunnel,
    /// The CNI node agent: pods `k8s-app: istio-cni-node`, container `install-cni`.
    IstioCni,
}

impl DataPlaneComponent {
    /// The component whose pods carry `labels`, if any.
    pub fn of_labels(labels: &dyn LabelLookup) -> Option<Self> {
        if labels.label("app") == Some("ztunnel") {
            Some(DataPlaneComponent::Ztunnel)
        } else if labels.label("k8s-app") == Some("istio-cni-node") {
            Some(DataPlaneComponent::IstioCni)
        } else {
            None
        }
    }

    /// The container that runs the component.
    pub fn container(self) -> &'static str {
        match self {
            DataPlaneComponent::Ztunnel => "istio-proxy",
            DataPlaneComponent::IstioCni => "install-cni",
        }
    }

    /// How reports name it.
    pub fn display_name(self) -> &'static str {
        match self {
            DataPlaneComponent::Ztunnel => "ztunnel",
            DataPlaneComponent::IstioCni => "istio-cni",
        }
    }
}

/// What a ztunnel or istio-cni DaemonSet (its template) or pod runs.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub struct DataPlaneFacts {
    pub component: DataPlaneComponent,
    /// The image of [`DataPlaneComponent::container`].
    pub image: String,
    /// `istio.io/rev`: the ztunnel chart writes it as an annotation on the
    /// DaemonSet and its pods, the istio-cni chart as a DaemonSet label
    /// (`default` without a revision).
    pub revision: Option<String>,
    /// The literal `XDS_ADDRESS` of the container (ztunnel:
    /// `istiod[-<rev>].<namespace>.svc:15012`).
    pub xds_address: Option<String>,
}

/// One container as [`DataPlaneFacts`] reads it, whichever decoder read it
/// (the k8s-openapi types here, the lean decoders in `decode.rs`).
#[derive(Clone, Copy, Debug)]
pub struct DataPlaneContainer<'a> {
    pub name: &'a str,
    pub image: Option<&'a str>,
    /// The literal value of its first `XDS_ADDRESS` entry that has one.
    pub xds_address: Option<&'a str>,
}

impl<'a> From<&'a Container> for DataPlaneContainer<'a> {
    fn from(c: &'a Container) -> Self {
        DataPlaneContainer {
            name: &c.name,
            image: c.image.as_deref(),
            xds_address: c.env.iter().flatten().find_map(|e| {
                (e.name == "XDS_ADDRESS")
                    .then_some(e.value.as_deref())
                    .flatten()
            }),
        }
    }
}

impl DataPlaneFacts {
    /// The facts of a ztunnel or istio-cni pod or template, from its labels,
    /// its `istio.io/rev` and its containers; `None` for any other.
    pub fn from_parts(
        labels: &dyn LabelLookup,
        revision: Option<String>,
        containers: &[DataPlaneContainer<'_>],
    ) -> Option<Box<Self>> {
        let component = DataPlaneComponent::of_labels(labels)?;
        let container = containers
            .iter()
            .find(|c| c.name == component.container())
            .or_else(|| containers.first())?;
        Some(Box::new(DataPlaneFacts {
            component,
            image: container.image.unwrap_or_default().to_string(),
            revision: revision.filter(|r| !r.is_empty()),
            xds_address: container.xds_address.map(str::to_string),
        }))
    }

    fn extract(
        labels: &Labels,
        revision: Option<String>,
        containers: &[Container],
    ) -> Option<Box<Self>> {
        let containers: Vec<DataPlaneContainer> =
            containers.iter().map(DataPlaneContainer::from).collect();
        Self::from_parts(labels, revision, &containers)
    }

    /// The facts of a ztunnel or istio-cni pod; `None` for any other pod.
    pub fn of_pod(pod: &Pod) -> Option<Box<Self>> {
        let labels = pod.metadata.labels.as_ref()?;
        DataPlaneComponent::of_labels(labels)?;
        let revision = pod
            .metadata
            .annotations
            .as_ref()
            .and_then(|a| a.get("istio.io/rev"))
            .or_else(|| labels.get("istio.io/rev"))
            .cloned();
        let containers = pod.spec.as_ref().map(|s| s.containers.as_slice())?;
        Self::extract(labels, revision, containers)
    }

    /// The facts of a ztunnel or istio-cni DaemonSet's template; `None` for
    /// any other DaemonSet.
    pub fn of_daemon_set(ds: &DaemonSet) -> Option<Box<Self>> {
        let template = &ds.spec.as_ref()?.template;
        let labels = template.metadata.as_ref()?.labels.as_ref()?;
        DataPlaneComponent::of_labels(labels)?;
        let object_annotation = ds
            .metadata
            .annotations
            .as_ref()
            .and_then(|a| a.get("istio.io/rev"));
        let object_label = ds
            .metadata
            .labels
            .as_ref()
            .and_then(|l| l.get("istio.io/rev"));
        let revision = object_annotation.or(object_label).cloned();
        let containers = template.spec.as_ref().map(|s| s.containers.as_slice())?;
        Self::extract(labels, revision, containers)
    }
}

/// Where a pod runs and what ambient mode says of it.
#[derive(Clone, Debug, Default, PartialEq, Eq, Hash)]
pub struct AmbientPodFacts {
    /// `spec.nodeName` (`None` while unscheduled).
    pub node: Option<String>,
    /// The [`REDIRECTION_ANNOTATION`] value (`enabled`, `pending`), if set.
    pub redirection: Option<String>,
    /// Set only on ztunnel and istio-cni pods.
    pub data_plane: Option<Box<DataPlaneFacts>>,
}

impl From<&Pod> for AmbientPodFacts {
    fn from(pod: &Pod) -> Self {
        AmbientPodFacts {
            node: pod
                .spec
                .as_ref()
                .and_then(|s| s.node_name.clone())
                .filter(|n| !n.is_empty()),
            redirection: pod
                .metadata
                .annotations
                .as_ref()
                .and_then(|a| a.get(REDIRECTION_ANNOTATION))
                .cloned(),
            data_plane: DataPlaneFacts::of_pod(pod),
        }
    }
}

/// A Node, reduced to what cordoning and the data plane's placement need.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct NodeInfo {
    pub name: String,
    pub uid: String,
    /// `metadata.resourceVersion`: cordon patches are made against it.
    pub resource_version: String,
    pub labels: Labels,
    /// `spec.unschedulable`: cordoned.
    pub unschedulable: bool,
    /// The `Ready` condition is `True`.
    pub ready: bool,
    /// [`CORDONED_BY_ANNOTATION`]: this plugin's cordon, and which verb made it.
    pub cordoned_by: Option<String>,
    /// [`CORDONED_AT_ANNOTATION`].
    pub cordoned_at: Option<String>,
}

impl From<&Node> for NodeInfo {
    fn from(node: &Node) -> Self {
        let meta = &node.metadata;
        let annotation = |key: &str| meta.annotations.as_ref().and_then(|a| a.get(key)).cloned();
        NodeInfo {
            name: name_of(meta),
            uid: meta.uid.clone().unwrap_or_default(),
            resource_version: meta.resource_version.clone().unwrap_or_default(),
            labels: labels_of(meta),
            unschedulable: node
                .spec
                .as_ref()
                .and_then(|s| s.unschedulable)
                .unwrap_or(false),
            ready: node
                .status
                .as_ref()
                .and_then(|s| s.conditions.as_ref())
                .is_some_and(|cs| cs.iter().any(|c| c.type_ == "Ready" && c.status == "True")),
            cordoned_by: annotation(CORDONED_BY_ANNOTATION),
            cordoned_at: annotation(CORDONED_AT_ANNOTATION),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn pod(value: serde_json::Value) -> Pod {
        serde_json::from_value(value).unwrap()
    }

    #[test]
    fn a_ztunnel_pod_keeps_its_image_revision_and_xds_address_and_others_keep_none() {
        let ztunnel = pod(serde_json::json!({
            "metadata": {"name": "ztunnel-x", "namespace": "istio-system",
                         "labels": {"app": "ztunnel"}, "annotations": {"istio.io/rev": "1-23-1"}},
            "spec": {"nodeName": "n1", "containers": [{"name": "istio-proxy",
                     "image": "docker.io/istio/ztunnel:1.23.1",
                     "env": [{"name": "XDS_ADDRESS", "value": "istiod-1-23-1.istio-system.svc:15012"}]}]},
        }));
        let facts = AmbientPodFacts::from(&ztunnel);
        assert_eq!(facts.node.as_deref(), Some("n1"));
        let dp = facts.data_plane.unwrap();
        assert_eq!(dp.component, DataPlaneComponent::Ztunnel);
        assert_eq!(dp.image, "docker.io/istio/ztunnel:1.23.1");
        assert_eq!(dp.revision.as_deref(), Some("1-23-1"));
        assert_eq!(
            dp.xds_address.as_deref(),
            Some("istiod-1-23-1.istio-system.svc:15012")
        );

        let app = pod(serde_json::json!({
            "metadata": {"name": "web", "namespace": "apps", "labels": {"app": "web"},
                         "annotations": {REDIRECTION_ANNOTATION: "pending"}},
            "spec": {"containers": [{"name": "web", "image": "web:1"}]},
        }));
        let facts = AmbientPodFacts::from(&app);
        assert_eq!(facts.redirection.as_deref(), Some("pending"));
        assert!(facts.data_plane.is_none());
        assert!(facts.node.is_none());
    }

    #[test]
    fn a_node_says_whether_it_is_cordoned_and_by_whom() {
        let node: Node = serde_json::from_value(serde_json::json!({
            "metadata": {"name": "n1", "resourceVersion": "12",
                         "annotations": {CORDONED_BY_ANNOTATION: "ztunnel-roll"}},
            "spec": {"unschedulable": true},
            "status": {"conditions": [{"type": "Ready", "status": "True"}]},
        }))
        .unwrap();
        let info = NodeInfo::from(&node);
        assert!(info.unschedulable && info.ready);
        assert_eq!(info.cordoned_by.as_deref(), Some("ztunnel-roll"));
        assert_eq!(info.resource_version, "12");
    }
}
