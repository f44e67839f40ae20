//! Endpoints and EndpointSlices of Services with a selector: the pods the
//! selector matches that have an IP and have not finished, Ready ones as
//! serving addresses and the rest as not ready (`notReadyAddresses`;
//! `conditions.ready: false` in slices), unless the Service publishes
//! not-ready addresses. Each Service port's `targetPort` is resolved per
//! pod (a number, or the name of a container port); pods that resolve to
//! different ports land in different subsets and slices, as in Kubernetes.
//! Slices hold at most 100 endpoints and are named `<service>-<hash>`,
//! stable for a given port set. Objects are written only when they change;
//! Services without a selector are left to whoever manages their endpoints.

use std::collections::{BTreeMap, BTreeSet, HashMap};

use super::util::At;
use serde_json::{Value, json};

use super::pods::{self, NamespacePods};
use super::state::ControllerState;
use super::util::{self, Selector, is_being_deleted, label, name_of, short_hash, str_at};
use crate::resources::kinds;
use crate::store::{Obj, ObjKey};
use crate::world::{World, WriteOptions};

const MANAGED_BY: &str = "endpointslice.kubernetes.io/managed-by";
const CONTROLLER: &str = "endpointslice-controller.k8s.io";
const SERVICE_NAME: &str = "kubernetes.io/service-name";
const SKIP_MIRROR: &str = "endpointslice.kubernetes.io/skip-mirror";
const MAX_PER_SLICE: usize = 100;

/// One resolved Service port: name, number on the pod, protocol.
type Port = (String, i64, String);

/// Resolves each Service port's `targetPort` on `pod`; a named port the
/// pod does not have is left out.
fn resolve_ports(service_ports: &[Value], pod: &Value) -> Vec<Port> {
    let container_ports: Vec<&Value> = ["/spec/containers", "/spec/initContainers"]
        .iter()
        .filter_map(|p| pod.at(p).and_then(Value::as_array))
        .flatten()
        .filter_map(|c| c.get("ports").and_then(Value::as_array))
        .flatten()
        .collect();
    service_ports
        .iter()
        .filter_map(|p| {
            let name = p
                .get("name")
                .and_then(Value::as_str)
                .unwrap_or("")
                .to_string();
            let protocol = p
                .get("protocol")
                .and_then(Value::as_str)
                .unwrap_or("TCP")
                .to_string();
            let number = match p.get("targetPort").or_else(|| p.get("port"))? {
                Value::Number(n) => n.as_i64()?,
                Value::String(s) => match s.parse::<i64>() {
                    Ok(n) => n,
                    Err(_) => container_ports
                        .iter()
                        .find(|cp| {
                            cp.get("name").and_then(Value::as_str) == Some(s.as_str())
                                && cp.get("protocol").and_then(Value::as_str).unwrap_or("TCP")
                                    == protocol
                        })?
                        .get("containerPort")?
                        .as_i64()?,
                },
                _ => return None,
            };
            Some((name, number, protocol))
        })
        .collect()
}

fn target_ref(pod: &Value) -> Value {
    json!({"kind": "Pod", "namespace": util::namespace_of(pod), "name": name_of(pod), "uid": util::uid_of(pod)})
}

/// Brings the Endpoints and EndpointSlices of one Service up to date.
pub(crate) fn sync(
    world: &mut World,
    st: &ControllerState,
    key: &ObjKey,
    cache: &mut HashMap<String, NamespacePods>,
) {
    let Some(svc) = util::get(world, kinds::services(), key) else {
        // Slices go with their owner; Endpoints carry no owner reference.
        if let Some(ep) = util::get(world, kinds::endpoints(), key) {
            if label(&ep, SKIP_MIRROR).is_some() {
                let _ = world.delete(
                    kinds::endpoints(),
                    &key.namespace,
                    &key.name,
                    &WriteOptions::default(),
                );
            }
        }
        return;
    };
    let selector_map = svc.at("/spec/selector").and_then(Value::as_object);
    if selector_map.is_none_or(|m| m.is_empty())
        || str_at(&svc, "/spec/type") == Some("ExternalName")
        || is_being_deleted(&svc)
    {
        return;
    }
    let selector = Selector::from_map(svc.at("/spec/selector"));
    let publish_not_ready = util::bool_at(&svc, "/spec/publishNotReadyAddresses");
    let service_ports: Vec<Value> = svc
        .at("/spec/ports")
        .and_then(Value::as_array)
        .cloned()
        .unwrap_or_default();
    let ns_pods = cache
        .entry(key.namespace.clone())
        .or_insert_with(|| NamespacePods::of(world, &key.namespace));
    let mut groups: BTreeMap<Vec<Port>, Vec<(Obj, bool)>> = BTreeMap::new();
    for pod in ns_pods.select(&selector) {
        if !pods::is_active(pod) || str_at(pod, "/status/podIP").is_none_or(str::is_empty) {
            continue;
        }
        let ports = resolve_ports(&service_ports, pod);
        groups
            .entry(ports)
            .or_default()
            .push((pod.clone(), pods::is_ready(pod)));
    }
    sync_endpoints(world, &svc, &groups, publish_not_ready);
    let existing: Vec<Obj> = st
        .slices_by_service
        .get(key)
        .into_iter()
        .flatten()
        .filter_map(|n| world.store.get(kinds::endpointslices(), &key.namespace, n))
        .filter(|s| label(s, MANAGED_BY) == Some(CONTROLLER))
        .collect();
    sync_slices(world, &svc, &groups, publish_not_ready, &existing);
}

fn port_json(ports: &[Port], named_empty: bool) -> Vec<Value> {
    ports
        .iter()
        .map(|(name, number, protocol)| {
            let mut p = json!({"port": number, "protocol": protocol});
            if !name.is_empty() || named_empty {
                p["name"] = json!(name);
            }
            p
        })
        .collect()
}

fn sync_endpoints(
    world: &mut World,
    svc: &Value,
    groups: &BTreeMap<Vec<Port>, Vec<(Obj, bool)>>,
    publish_not_ready: bool,
) {
    let subsets: Vec<Value> = groups
        .iter()
        .map(|(ports, members)| {
            let address = |pod: &Obj| {
                json!({
                    "ip": str_at(pod, "/status/podIP").unwrap_or(""),
                    "nodeName": str_at(pod, "/spec/nodeName").unwrap_or(""),
                    "targetRef": target_ref(pod),
                })
            };
            let mut ready: Vec<&Obj> = members
                .iter()
                .filter(|(_, r)| *r || publish_not_ready)
                .map(|(p, _)| p)
                .collect();
            let mut not_ready: Vec<&Obj> = members
                .iter()
                .filter(|(_, r)| !(*r || publish_not_ready))
                .map(|(p, _)| p)
                .collect();
            let ip = |p: &&Obj| str_at(p, "/status/podIP").unwrap_or("").to_string();
            ready.sort_by_key(ip);
            not_ready.sort_by_key(ip);
            let mut subset = json!({});
            if !ready.is_empty() {
                subset["addresses"] = json!(ready.iter().map(|p| address(p)).collect::<Vec<_>>());
            }
            if !not_ready.is_empty() {
                subset["notReadyAddresses"] =
                    json!(not_ready.iter().map(|p| address(p)).collect::<Vec<_>>());
            }
            if !ports.is_empty() {
                subset["ports"] = json!(port_json(ports, false));
            }
            subset
        })
        .collect();
    let mut labels = svc
        .at("/metadata/labels")
        .filter(|l| l.is_object())
        .cloned()
        .unwrap_or_else(|| json!({}));
    labels[SKIP_MIRROR] = json!("true");
    let namespace = util::namespace_of(svc);
    let name = name_of(svc);
    match world.store.get(kinds::endpoints(), namespace, name) {
        Some(current) => {
            let current_subsets = current.get("subsets").cloned().unwrap_or_else(|| json!([]));
            if current_subsets == json!(subsets) && current.at("/metadata/labels") == Some(&labels)
            {
                return;
            }
            let mut next = (*current).clone();
            next["metadata"]["labels"] = labels;
            match next.as_object_mut() {
                Some(map) if subsets.is_empty() => {
                    map.remove("subsets");
                }
                _ => next["subsets"] = json!(subsets),
            }
            util::write_object(world, kinds::endpoints(), next);
        }
        None => {
            let mut ep = json!({
                "apiVersion": "v1",
                "kind": "Endpoints",
                "metadata": {"name": name, "namespace": namespace, "labels": labels},
            });
            if !subsets.is_empty() {
                ep["subsets"] = json!(subsets);
            }
            let _ = world.create(kinds::endpoints(), ep, &WriteOptions::default());
        }
    }
}

fn sync_slices(
    world: &mut World,
    svc: &Value,
    groups: &BTreeMap<Vec<Port>, Vec<(Obj, bool)>>,
    publish_not_ready: bool,
    existing: &[Obj],
) {
    let namespace = util::namespace_of(svc);
    let name = name_of(svc);
    let uid = util::uid_of(svc);
    let mut labels = svc
        .at("/metadata/labels")
        .filter(|l| l.is_object())
        .cloned()
        .unwrap_or_else(|| json!({}));
    labels[SERVICE_NAME] = json!(name);
    labels[MANAGED_BY] = json!(CONTROLLER);
    let owner = json!([{"apiVersion": "v1", "kind": "Service", "name": name, "uid": uid, "controller": true, "blockOwnerDeletion": true}]);

    // Desired slices: name → (endpoints, ports).
    let mut desired: Vec<(String, Vec<Value>, Vec<Value>)> = Vec::new();
    for (ports, members) in groups {
        let mut members: Vec<&(Obj, bool)> = members.iter().collect();
        members.sort_by(|a, b| name_of(&a.0).cmp(name_of(&b.0)));
        let signature = format!("{ports:?}");
        for (chunk_index, chunk) in members.chunks(MAX_PER_SLICE).enumerate() {
            let endpoints: Vec<Value> = chunk
                .iter()
                .map(|(pod, ready)| {
                    json!({
                        "addresses": [str_at(pod, "/status/podIP").unwrap_or("")],
                        "conditions": {"ready": *ready || publish_not_ready, "serving": *ready || publish_not_ready, "terminating": false},
                        "nodeName": str_at(pod, "/spec/nodeName").unwrap_or(""),
                        "targetRef": target_ref(pod),
                    })
                })
                .collect();
            let slice_name = format!(
                "{name}-{}",
                short_hash(&[uid, &signature, &chunk_index.to_string()], 5)
            );
            desired.push((slice_name, endpoints, port_json(ports, true)));
        }
    }
    if desired.is_empty() {
        // A Service selecting nothing still has one (empty) slice.
        desired.push((
            format!("{name}-{}", short_hash(&[uid, "empty"], 5)),
            Vec::new(),
            Vec::new(),
        ));
    }

    let wanted: BTreeSet<&str> = desired.iter().map(|(n, _, _)| n.as_str()).collect();
    for slice in existing {
        if !wanted.contains(name_of(slice)) {
            let _ = world.delete(
                kinds::endpointslices(),
                namespace,
                name_of(slice),
                &WriteOptions::default(),
            );
        }
    }
    for (slice_name, endpoints, ports) in desired {
        let current = existing.iter().find(|s| name_of(s) == slice_name);
        match current {
            Some(current) => {
                if current.get("endpoints") == Some(&json!(endpoints))
                    && current.get("ports") == Some(&json!(ports))
                    && current.at("/metadata/labels") == Some(&labels)
                {
                    continue;
                }
                let mut next = (**current).clone();
                next["metadata"]["labels"] = labels.clone();
                next["endpoints"] = json!(endpoints);
                next["ports"] = json!(ports);
                next["addressType"] = json!("IPv4");
                util::write_object(world, kinds::endpointslices(), next);
            }
            None => {
                let slice = json!({
                    "apiVersion": "discovery.k8s.io/v1",
                    "kind": "EndpointSlice",
                    "metadata": {"name": slice_name, "namespace": namespace, "labels": labels, "ownerReferences": owner},
                    "addressType": "IPv4",
                    "endpoints": endpoints,
                    "ports": ports,
                });
                let _ = world.create(kinds::endpointslices(), slice, &WriteOptions::default());
            }
        }
    }
}
