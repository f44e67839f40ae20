//! Istio's CNI node agent in ambient mode: which pods are captured, and the
//! `ambient.istio.io/redirection` annotation that says so.
//!
//! Written from istio/istio `cni/pkg/nodeagent/informers.go`
//! (`reconcilePod`), `cni/pkg/nodeagent/meshdataplane_linux.go`
//! (`AddPodToMesh`), `cni/pkg/util/podutil.go`,
//! `cni/pkg/util/enablement_selector.go`, `cni/pkg/plugin/plugin.go` and the
//! `istio-cni` chart's `ambient.enablementSelectors` and
//! `excludeNamespaces` defaults:
//!
//! ```text
//! a pod should be captured  = not hostNetwork, no sidecar (sidecar.istio.io/status),
//!                             not in kube-system, and either its label
//!                             istio.io/dataplane-mode=ambient, or its namespace's
//!                             with the pod's not `none`
//! node's istio-cni agent not Ready ─► nothing is annotated there, and a pod that
//!                                     should be captured does not start (the CNI
//!                                     plugin cannot reach the agent)
//! should, agent Ready, pod has an IP:
//!     node's ztunnel Ready  ─► redirection: enabled
//!     no Ready ztunnel      ─► redirection: pending (rules in place, no proxy yet)
//!     already enabled       ─► stays enabled (a ztunnel restart re-sends it)
//! should not, annotated     ─► annotation removed
//! ```
//!
//! The agent runs only where ambient is installed: with no `istio-cni-node`
//! DaemonSet in `istio-system` this controller does nothing.

use std::collections::{BTreeMap, BTreeSet, HashMap};

use serde_json::Value;

use super::pods;
use super::state::ControllerState;
use super::util::{self, At, annotation, label, str_at};
use crate::inject::{ISTIO_CNI_APP, ISTIO_NAMESPACE, STATUS_ANNOTATION, ZTUNNEL_APP};
use crate::resources::kinds;
use crate::store::ObjKey;
use crate::world::World;

/// The annotation the agent writes on captured pods.
pub const REDIRECTION_ANNOTATION: &str = "ambient.istio.io/redirection";
/// The label that enrols a namespace or pod (`ambient`) or opts a pod out (`none`).
pub const DATAPLANE_MODE_LABEL: &str = "istio.io/dataplane-mode";
/// The chart's `excludeNamespaces` default.
const EXCLUDED_NAMESPACES: &[&str] = &["kube-system"];

/// What the agent's node looks like from the cluster: its own pod and the
/// node's ztunnel.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct NodeAgents {
    pub cni_ready: bool,
    pub ztunnel_ready: bool,
}

/// Per node, whether istio-cni and ztunnel are Ready there; `None` when
/// ambient is not installed (no `istio-cni-node` DaemonSet).
pub fn node_agents(world: &World) -> Option<HashMap<String, NodeAgents>> {
    let installed = world
        .store
        .list(kinds::daemonsets(), Some(ISTIO_NAMESPACE))
        .any(|ds| {
            ds.at("/spec/selector/matchLabels/k8s-app")
                .and_then(Value::as_str)
                == Some(ISTIO_CNI_APP)
        });
    if !installed {
        return None;
    }
    let mut agents: HashMap<String, NodeAgents> = HashMap::new();
    for pod in world.store.list(kinds::pods(), Some(ISTIO_NAMESPACE)) {
        if !pods::is_active(&pod) || !pods::is_ready(&pod) {
            continue;
        }
        let Some(node) = str_at(&pod, "/spec/nodeName").filter(|n| !n.is_empty()) else {
            continue;
        };
        let entry = agents.entry(node.to_string()).or_default();
        if label(&pod, "k8s-app") == Some(ISTIO_CNI_APP) {
            entry.cni_ready = true;
        }
        if label(&pod, "app") == Some(ZTUNNEL_APP) {
            entry.ztunnel_ready = true;
        }
    }
    Some(agents)
}

/// Whether the agent captures `pod`, given its namespace's labels
/// (`CompiledEnablementSelectors::Matches` with the chart's default
/// selectors, and `excludeNamespaces`).
pub fn should_be_captured(pod: &Value, namespace_labels: Option<&Value>) -> bool {
    if util::bool_at(pod, "/spec/hostNetwork") || annotation(pod, STATUS_ANNOTATION).is_some() {
        return false;
    }
    if EXCLUDED_NAMESPACES.contains(&util::namespace_of(pod)) {
        return false;
    }
    let pod_mode = label(pod, DATAPLANE_MODE_LABEL);
    if pod_mode == Some("ambient") {
        return true;
    }
    let namespace_mode = namespace_labels
        .and_then(|l| l.get(DATAPLANE_MODE_LABEL))
        .and_then(Value::as_str);
    namespace_mode == Some("ambient") && pod_mode != Some("none")
}

/// Whether the pod is a ztunnel (`IsZtunnelPod`): the agent never enrols those.
fn is_ztunnel(pod: &Value) -> bool {
    util::namespace_of(pod) == ISTIO_NAMESPACE && label(pod, "app") == Some(ZTUNNEL_APP)
}

/// Whether a bound pod must wait before it starts: it should be captured,
/// and its node's istio-cni agent is not Ready (the CNI plugin fails the
/// pod's sandbox until the agent answers). `agents` is `None` without ambient.
pub fn blocks_start(
    world: &World,
    pod: &Value,
    agents: Option<&HashMap<String, NodeAgents>>,
) -> bool {
    let Some(agents) = agents else {
        return false;
    };
    let Some(node) = str_at(pod, "/spec/nodeName") else {
        return false;
    };
    if agents.get(node).is_some_and(|a| a.cni_ready) || is_ztunnel(pod) {
        return false;
    }
    let namespace = world
        .store
        .get(kinds::namespaces(), "", util::namespace_of(pod));
    should_be_captured(
        pod,
        namespace.as_deref().and_then(|n| n.at("/metadata/labels")),
    )
}

/// Looks at every pod that changed, every pod of a namespace whose labels
/// changed, and every pod on a node whose istio-cni or ztunnel changed.
pub(crate) fn sync(world: &mut World, st: &mut ControllerState) {
    let mut keys: BTreeSet<ObjKey> = std::mem::take(&mut st.dirty.ambient_pods);
    let namespaces = std::mem::take(&mut st.dirty.ambient_namespaces);
    let nodes = std::mem::take(&mut st.dirty.ambient_nodes);
    if keys.is_empty() && namespaces.is_empty() && nodes.is_empty() {
        return;
    }
    let Some(agents) = node_agents(world) else {
        return;
    };
    for ns in &namespaces {
        keys.extend(
            world
                .store
                .list_stored(kinds::pods(), Some(ns))
                .map(|(k, _)| k.clone()),
        );
    }
    if !nodes.is_empty() {
        for pod in world.store.list(kinds::pods(), None) {
            if str_at(&pod, "/spec/nodeName").is_some_and(|n| nodes.contains(n)) {
                let key = ObjKey::of(&pod);
                // A pod waiting for its node's agent may start now.
                st.dirty.pods.insert(key.clone());
                keys.insert(key);
            }
        }
    }
    let mut namespace_labels: BTreeMap<String, Option<Value>> = BTreeMap::new();
    for key in keys {
        let labels = namespace_labels
            .entry(key.namespace.clone())
            .or_insert_with(|| {
                world
                    .store
                    .get(kinds::namespaces(), "", &key.namespace)
                    .and_then(|n| n.at("/metadata/labels").cloned())
            })
            .clone();
        sync_pod(world, &key, &agents, labels.as_ref());
    }
}

fn sync_pod(
    world: &mut World,
    key: &ObjKey,
    agents: &HashMap<String, NodeAgents>,
    namespace_labels: Option<&Value>,
) {
    let Some(pod) = util::get(world, kinds::pods(), key) else {
        return;
    };
    if !pods::is_active(&pod) || is_ztunnel(&pod) {
        return;
    }
    let Some(node) = str_at(&pod, "/spec/nodeName").filter(|n| !n.is_empty()) else {
        return;
    };
    let Some(agent) = agents.get(node).filter(|a| a.cni_ready) else {
        return;
    };
    let current = annotation(&pod, REDIRECTION_ANNOTATION);
    let wanted = if should_be_captured(&pod, namespace_labels) {
        if str_at(&pod, "/status/podIP").is_none() {
            return;
        }
        match current {
            Some("enabled") => return,
            _ if agent.ztunnel_ready => Some("enabled"),
            _ => Some("pending"),
        }
    } else {
        None
    };
    if wanted == current {
        return;
    }
    let mut next = (*pod).clone();
    let metadata = crate::world::metadata_mut(&mut next);
    let annotations = metadata
        .entry("annotations")
        .or_insert_with(|| Value::Object(Default::default()));
    if let Some(map) = annotations.as_object_mut() {
        match wanted {
            Some(value) => {
                map.insert(REDIRECTION_ANNOTATION.into(), Value::String(value.into()));
            }
            None => {
                map.remove(REDIRECTION_ANNOTATION);
            }
        }
    }
    util::write_object(world, kinds::pods(), next);
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn pod(labels: Value) -> Value {
        json!({"metadata": {"name": "p", "namespace": "apps", "labels": labels}, "spec": {}})
    }

    #[test]
    fn the_charts_selectors_capture_ambient_namespaces_and_pods_and_honour_none() {
        let ambient_ns = json!({DATAPLANE_MODE_LABEL: "ambient"});
        assert!(should_be_captured(&pod(json!({})), Some(&ambient_ns)));
        assert!(!should_be_captured(
            &pod(json!({DATAPLANE_MODE_LABEL: "none"})),
            Some(&ambient_ns)
        ));
        assert!(should_be_captured(
            &pod(json!({DATAPLANE_MODE_LABEL: "ambient"})),
            None
        ));
        assert!(!should_be_captured(&pod(json!({})), None));
    }

    #[test]
    fn host_network_sidecar_and_kube_system_pods_are_never_captured() {
        let ambient_ns = json!({DATAPLANE_MODE_LABEL: "ambient"});
        let mut host = pod(json!({}));
        host["spec"]["hostNetwork"] = json!(true);
        assert!(!should_be_captured(&host, Some(&ambient_ns)));
        let mut sidecar = pod(json!({}));
        sidecar["metadata"]["annotations"] = json!({STATUS_ANNOTATION: "{}"});
        assert!(!should_be_captured(&sidecar, Some(&ambient_ns)));
        let mut system = pod(json!({DATAPLANE_MODE_LABEL: "ambient"}));
        system["metadata"]["namespace"] = json!("kube-system");
        assert!(!should_be_captured(&system, None));
    }
}
