//! The cluster's fixtures and the API server's allocations: Nodes created
//! at start (`sim-node-1`..`sim-node-N`, `SimConfig::node_count`),
//! Namespaces marked `Active`, Services given a ClusterIP (10.96.0.0/16),
//! node ports, and, for `type: LoadBalancer`, an ingress IP in
//! `status.loadBalancer` as a cloud controller would.

use super::util::At;
use chrono::{DateTime, Utc};
use serde_json::{Value, json};

use super::state::ControllerState;
use super::util::{self, fmt_time, str_at};
use crate::resources::kinds;
use crate::store::ObjKey;
use crate::world::{World, WriteOptions};

/// Creates the configured nodes that do not exist yet.
pub(crate) fn create_nodes(world: &mut World, now: DateTime<Utc>) {
    let now_s = fmt_time(now);
    for i in 1..=world.config.node_count {
        let name = format!("sim-node-{i}");
        if world.store.get(kinds::nodes(), "", &name).is_some() {
            continue;
        }
        let node = json!({
            "apiVersion": "v1",
            "kind": "Node",
            "metadata": {
                "name": name,
                "labels": {
                    "kubernetes.io/hostname": name,
                    "kubernetes.io/os": "linux",
                    "kubernetes.io/arch": "amd64",
                    "beta.kubernetes.io/os": "linux",
                    "beta.kubernetes.io/arch": "amd64",
                    "topology.kubernetes.io/zone": format!("sim-zone-{}", ["a", "b", "c"][(i - 1) % 3]),
                },
            },
            "spec": {"podCIDR": format!("10.244.{}.0/24", i - 1), "podCIDRs": [format!("10.244.{}.0/24", i - 1)]},
            "status": {
                "conditions": [{
                    "type": "Ready", "status": "True", "reason": "KubeletReady",
                    "message": "kubelet is posting ready status",
                    "lastHeartbeatTime": now_s, "lastTransitionTime": now_s,
                }],
                "addresses": [
                    {"type": "InternalIP", "address": format!("172.18.0.{}", i + 1)},
                    {"type": "Hostname", "address": name},
                ],
                "capacity": {"cpu": "8", "memory": "32Gi", "pods": "110", "ephemeral-storage": "100Gi"},
                "allocatable": {"cpu": "8", "memory": "32Gi", "pods": "110", "ephemeral-storage": "100Gi"},
                "nodeInfo": {
                    "kubeletVersion": "v1.33.0",
                    "kubeProxyVersion": "v1.33.0",
                    "containerRuntimeVersion": "containerd://1.7.22",
                    "operatingSystem": "linux",
                    "architecture": "amd64",
                    "osImage": "mesh-sim",
                    "kernelVersion": "6.1.0",
                    "machineID": "", "systemUUID": "", "bootID": "",
                },
            },
        });
        if let Err(e) = world.create(kinds::nodes(), node, &WriteOptions::default()) {
            tracing::warn!(error = %e, "creating a simulated node failed");
        }
    }
}

/// The taint the node lifecycle controller keeps on a cordoned node
/// (`TaintNodesByCondition`): present exactly while `spec.unschedulable`.
pub const UNSCHEDULABLE_TAINT: &str = "node.kubernetes.io/unschedulable";

/// Adds or removes [`UNSCHEDULABLE_TAINT`] to follow `spec.unschedulable`.
pub(crate) fn sync_node(world: &mut World, name: &str, now: DateTime<Utc>) {
    let Some(node) = world.store.get(kinds::nodes(), "", name) else {
        return;
    };
    let cordoned = util::bool_at(&node, "/spec/unschedulable");
    let taints: Vec<Value> = node
        .at("/spec/taints")
        .and_then(Value::as_array)
        .cloned()
        .unwrap_or_default();
    let has = taints
        .iter()
        .any(|t| t.get("key").and_then(Value::as_str) == Some(UNSCHEDULABLE_TAINT));
    if has == cordoned {
        return;
    }
    let mut next = (*node).clone();
    let kept: Vec<Value> = taints
        .into_iter()
        .filter(|t| t.get("key").and_then(Value::as_str) != Some(UNSCHEDULABLE_TAINT))
        .collect();
    let mut taints = kept;
    if cordoned {
        taints.push(json!({
            "key": UNSCHEDULABLE_TAINT,
            "effect": "NoSchedule",
            "timeAdded": fmt_time(now),
        }));
    }
    let spec = next
        .as_object_mut()
        .expect("a node is an object")
        .entry("spec")
        .or_insert_with(|| json!({}));
    if taints.is_empty() {
        if let Some(spec) = spec.as_object_mut() {
            spec.remove("taints");
        }
    } else {
        spec["taints"] = json!(taints);
    }
    util::write_object(world, kinds::nodes(), next);
}

/// A namespace is `Active` as soon as it exists.
pub(crate) fn sync_namespace(world: &mut World, name: &str) {
    let Some(ns) = world.store.get(kinds::namespaces(), "", name) else {
        return;
    };
    if str_at(&ns, "/status/phase").is_some() {
        return;
    }
    let mut status = ns
        .get("status")
        .cloned()
        .filter(Value::is_object)
        .unwrap_or_else(|| json!({}));
    status["phase"] = json!("Active");
    util::write_status(world, kinds::namespaces(), &ns, status);
}

fn next_cluster_ip(st: &mut ControllerState) -> String {
    // 10.96.0.1 is the `kubernetes` Service's in a real cluster.
    let n = st.next_cluster_ip + 10;
    st.next_cluster_ip += 1;
    format!("10.96.{}.{}", (n / 254) % 256, n % 254 + 1)
}

/// Fills what the API server allocates for a Service (ClusterIP, node
/// ports) and what a cloud controller reports for a LoadBalancer.
pub(crate) fn sync_service_allocations(world: &mut World, st: &mut ControllerState, key: &ObjKey) {
    let Some(svc) = util::get(world, kinds::services(), key) else {
        return;
    };
    let kind = str_at(&svc, "/spec/type")
        .unwrap_or("ClusterIP")
        .to_string();
    let mut next = (*svc).clone();
    let mut changed = false;
    if kind != "ExternalName" && str_at(&svc, "/spec/clusterIP").is_none_or(str::is_empty) {
        let ip = next_cluster_ip(st);
        next["spec"]["clusterIP"] = json!(ip);
        next["spec"]["clusterIPs"] = json!([ip]);
        next["spec"]["ipFamilies"] = json!(["IPv4"]);
        next["spec"]["ipFamilyPolicy"] = json!("SingleStack");
        changed = true;
    }
    if kind != "ExternalName" && svc.at("/spec/internalTrafficPolicy").is_none() {
        next["spec"]["internalTrafficPolicy"] = json!("Cluster");
        changed = true;
    }
    if kind == "NodePort" || kind == "LoadBalancer" {
        if svc.at("/spec/externalTrafficPolicy").is_none() {
            next["spec"]["externalTrafficPolicy"] = json!("Cluster");
            changed = true;
        }
        if let Some(ports) = next
            .pointer_mut("/spec/ports")
            .and_then(Value::as_array_mut)
        {
            for port in ports.iter_mut().filter(|p| p.get("nodePort").is_none()) {
                port["nodePort"] = json!(30000 + st.next_node_port % 2768);
                st.next_node_port += 1;
                changed = true;
            }
        }
    }
    let svc = if changed {
        match util::write_object(world, kinds::services(), next) {
            Some(s) => s,
            None => return,
        }
    } else {
        svc
    };
    let ingress = svc
        .at("/status/loadBalancer/ingress")
        .and_then(Value::as_array);
    if kind == "LoadBalancer" && ingress.is_none_or(Vec::is_empty) {
        let n = st.next_load_balancer_ip;
        st.next_load_balancer_ip += 1;
        let ip = format!("172.18.{}.{}", 255 - (n / 250) % 56, n % 250 + 1);
        let status = json!({"loadBalancer": {"ingress": [{"ip": ip, "ipMode": "VIP"}]}});
        util::write_status(world, kinds::services(), &svc, status);
    } else if kind != "LoadBalancer" && ingress.is_some_and(|i| !i.is_empty()) {
        util::write_status(world, kinds::services(), &svc, json!({"loadBalancer": {}}));
    }
}
