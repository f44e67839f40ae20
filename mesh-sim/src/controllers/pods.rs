//! Pods: the scheduler and the kubelet, simulated.
//!
//! A pod without `spec.nodeName` is bound to the next schedulable node
//! (round-robin over the Ready nodes whose `spec.unschedulable` is not set,
//! as `kubectl cordon` sets it; with none, the pod stays Pending and unbound
//! until a node can take it);
//! a bound pod starts at once (`Running`, an IP from 10.244.0.0/16, every
//! container and native sidecar running but not ready) and becomes Ready
//! after `SimConfig::pod_ready_delay` of simulated time. Two annotations,
//! on the pod (its template) or on the workload that creates it, change that:
//!
//! - `mesh-sim.io/never-ready: "true"`: the pod never becomes Ready, so a
//!   rollout of it gets stuck and reports `ProgressDeadlineExceeded`;
//! - `mesh-sim.io/ready-delay: "30s"`: this pod's own delay.
//!
//! An image whose registry host is under the reserved `.invalid` top-level
//! domain (`registry.invalid/istio/proxyv2:1.22.3`, RFC 2606: no such host
//! ever resolves) never pulls: its container stays waiting in
//! `ImagePullBackOff` and the pod never becomes Ready, as with a typo in a
//! hub or a mirror missing the image. (The pod reports phase `Running`
//! rather than the kubelet's `Pending`; readiness is what controllers see.)
//!
//! A pod ambient mode should capture does not start while its node's
//! istio-cni agent is not Ready (see [`super::ambient`]).
//!
//! A Job's pods never become Ready: they run for the same delay (or
//! `mesh-sim.io/run-duration`) and then succeed; `run-duration: forever`
//! keeps them running until deleted (a Job still at work, which does not
//! keep the cluster from settling). Deleting a pod removes it
//! at once; there is no graceful termination.
//!
//! This module also holds what the workload controllers share about pods:
//! readiness and availability as the controllers count them, and building
//! a pod from a template.

use super::util::At;
use chrono::{DateTime, Utc};
use serde_json::{Value, json};

use super::state::{ControllerState, Target};
use super::util::{
    self, NEVER_READY, READY_DELAY, RUN_DURATION, add, annotation, bool_at, controller_of,
    fake_digest, fmt_time, is_being_deleted, parse_duration, parse_time, str_at,
};
use crate::error::ApiError;
use crate::resources::kinds;
use crate::store::{Obj, ObjKey};
use crate::world::{World, WriteOptions};

pub fn phase(pod: &Value) -> &str {
    str_at(pod, "/status/phase").unwrap_or("Pending")
}

/// Succeeded or Failed: the pod will not run again.
pub fn is_terminal(pod: &Value) -> bool {
    matches!(phase(pod), "Succeeded" | "Failed")
}

/// Counts toward a controller's replicas: not finished, not being deleted.
pub fn is_active(pod: &Value) -> bool {
    !is_terminal(pod) && !is_being_deleted(pod)
}

fn pod_condition<'a>(pod: &'a Value, kind: &str) -> Option<&'a Value> {
    pod.at("/status/conditions")
        .and_then(Value::as_array)
        .and_then(|c| util::condition(c, kind))
}

pub fn is_ready(pod: &Value) -> bool {
    pod_condition(pod, "Ready")
        .and_then(|c| c.get("status"))
        .and_then(Value::as_str)
        == Some("True")
}

/// When the pod last became Ready (None when it is not Ready).
pub fn ready_since(pod: &Value) -> Option<DateTime<Utc>> {
    if !is_ready(pod) {
        return None;
    }
    pod_condition(pod, "Ready")
        .and_then(|c| c.get("lastTransitionTime"))
        .and_then(Value::as_str)
        .and_then(parse_time)
}

/// When a Ready pod counts as available (Ready for `min_ready_seconds`);
/// None when it is not Ready.
pub fn available_at(pod: &Value, min_ready_seconds: i64) -> Option<DateTime<Utc>> {
    if !is_ready(pod) {
        return None;
    }
    if min_ready_seconds <= 0 {
        return Some(DateTime::<Utc>::MIN_UTC);
    }
    Some(
        ready_since(pod).unwrap_or(DateTime::<Utc>::MIN_UTC)
            + chrono::Duration::seconds(min_ready_seconds),
    )
}

pub fn is_available(pod: &Value, min_ready_seconds: i64, now: DateTime<Utc>) -> bool {
    available_at(pod, min_ready_seconds).is_some_and(|at| at <= now)
}

/// A node as the scheduler and the kubelet see it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NodeSlot {
    pub name: String,
    /// Its InternalIP (a pod's `hostIP`).
    pub ip: String,
    /// New pods may be bound to it: Ready, and not cordoned
    /// (`spec.unschedulable`).
    pub schedulable: bool,
}

/// Every node, in name order.
pub fn nodes(world: &World) -> Vec<NodeSlot> {
    world
        .store
        .list(kinds::nodes(), None)
        .map(|n| {
            let ip = n
                .at("/status/addresses")
                .and_then(Value::as_array)
                .and_then(|a| {
                    a.iter()
                        .find(|a| a.get("type").and_then(Value::as_str) == Some("InternalIP"))
                })
                .and_then(|a| a.get("address"))
                .and_then(Value::as_str)
                .unwrap_or("")
                .to_string();
            let ready = n
                .at("/status/conditions")
                .and_then(Value::as_array)
                .and_then(|c| util::condition(c, "Ready"))
                .is_none_or(|c| c.get("status").and_then(Value::as_str) == Some("True"));
            NodeSlot {
                name: util::name_of(&n).to_string(),
                ip,
                schedulable: ready && !bool_at(&n, "/spec/unschedulable"),
            }
        })
        .collect()
}

/// The next node a new pod is bound to, round-robin over the schedulable
/// ones; `None` when no node takes new pods.
fn next_schedulable<'a>(st: &mut ControllerState, nodes: &'a [NodeSlot]) -> Option<&'a str> {
    let open: Vec<&NodeSlot> = nodes.iter().filter(|n| n.schedulable).collect();
    if open.is_empty() {
        return None;
    }
    let node = open[st.next_node % open.len()];
    st.next_node = st.next_node.wrapping_add(1);
    Some(&node.name)
}

/// How a new pod is named.
pub enum PodName {
    /// StatefulSet pods: `<set>-<ordinal>`.
    Exact(String),
    /// Everything else: `<prefix><5 random characters>`.
    Generate(String),
}

/// A pod built from `template` for the workload `owner`: the template's
/// labels and annotations plus `extra_labels`, an owner reference, and the
/// sim's readiness annotations carried over from the workload.
pub fn from_template(
    template: &Value,
    owner: &Value,
    name: PodName,
    extra_labels: &[(&str, &str)],
) -> Value {
    let mut metadata = json!({"namespace": util::namespace_of(owner)});
    match name {
        PodName::Exact(n) => metadata["name"] = json!(n),
        PodName::Generate(prefix) => metadata["generateName"] = json!(prefix),
    }
    if let Some(labels) = template.at("/metadata/labels").filter(|l| l.is_object()) {
        metadata["labels"] = labels.clone();
    }
    for (k, v) in extra_labels {
        util::insert_str(&mut metadata, "labels", k, v);
    }
    if let Some(annotations) = template
        .at("/metadata/annotations")
        .filter(|a| a.is_object())
    {
        metadata["annotations"] = annotations.clone();
    }
    for key in [NEVER_READY, READY_DELAY, RUN_DURATION] {
        if let Some(v) = annotation(owner, key) {
            if annotation(&json!({"metadata": metadata.clone()}), key).is_none() {
                util::insert_str(&mut metadata, "annotations", key, v);
            }
        }
    }
    metadata["ownerReferences"] = json!([util::controller_ref(owner)]);
    let spec = template.get("spec").cloned().unwrap_or_else(|| json!({}));
    json!({
        "apiVersion": "v1",
        "kind": "Pod",
        "metadata": metadata,
        "spec": spec,
        "status": {"phase": "Pending"},
    })
}

/// Creates a pod through [`World::create`] (so admission runs), bound to the
/// next node when it names none. A generated name that happens to be taken
/// is drawn again.
pub fn create(
    world: &mut World,
    st: &mut ControllerState,
    mut pod: Value,
) -> Result<Obj, ApiError> {
    if str_at(&pod, "/spec/nodeName").is_none_or(str::is_empty) {
        let nodes = nodes(world);
        if let Some(node) = next_schedulable(st, &nodes) {
            pod["spec"]["nodeName"] = json!(node);
        }
    }
    let generated = pod.at("/metadata/generateName").is_some();
    let mut attempt = 0;
    loop {
        match world.create(kinds::pods(), pod.clone(), &WriteOptions::default()) {
            Err(e) if generated && e.reason == "AlreadyExists" && attempt < 5 => attempt += 1,
            other => return other,
        }
    }
}

fn next_pod_ip(st: &mut ControllerState) -> String {
    let n = st.next_pod_ip;
    st.next_pod_ip = st.next_pod_ip.wrapping_add(1);
    let block = n / 250;
    format!(
        "10.{}.{}.{}",
        244 + (block / 256) % 12,
        block % 256,
        n % 250 + 2
    )
}

/// What the kubelet would report for the pod now.
enum Stage {
    Running { ready: bool },
    Succeeded,
}

/// The simulated time a pod takes to become Ready (None: never).
fn ready_delay(world: &World, pod: &Value) -> Option<std::time::Duration> {
    if annotation(pod, NEVER_READY) == Some("true") {
        return None;
    }
    let images = ["/spec/containers", "/spec/initContainers"]
        .iter()
        .filter_map(|p| pod.at(p).and_then(Value::as_array))
        .flatten()
        .filter_map(|c| c.get("image").and_then(Value::as_str));
    if images.into_iter().any(never_pulls) {
        return None;
    }
    Some(
        annotation(pod, READY_DELAY)
            .and_then(parse_duration)
            .unwrap_or(world.config.pod_ready_delay),
    )
}

/// Whether `image` comes from a registry under the reserved `.invalid`
/// domain: the first path segment, when it names a host (has a `.` or a
/// port), without its port.
pub fn never_pulls(image: &str) -> bool {
    let Some((first, _)) = image.split_once('/') else {
        return false;
    };
    let host = first.split(':').next().unwrap_or(first);
    host.ends_with(".invalid")
}

fn is_job_pod(pod: &Value) -> bool {
    controller_of(pod).is_some_and(|(kind, _, _)| kind == "Job")
}

/// Binds, starts, readies or completes one pod, as far as the clock allows.
pub(crate) fn sync(
    world: &mut World,
    st: &mut ControllerState,
    key: &ObjKey,
    now: DateTime<Utc>,
    nodes: &[NodeSlot],
    ambient: Option<&std::collections::HashMap<String, super::ambient::NodeAgents>>,
) {
    let target = Target::Pod(key.clone());
    st.timers.clear(&target);
    let Some(mut pod) = util::get(world, kinds::pods(), key) else {
        st.pod_started.remove(key);
        return;
    };
    if is_terminal(&pod) || is_being_deleted(&pod) {
        return;
    }
    if str_at(&pod, "/spec/nodeName").is_none_or(str::is_empty) {
        let Some(node) = next_schedulable(st, nodes) else {
            // Bound once a node takes new pods again (a Node change wakes it).
            st.unscheduled.insert(key.clone());
            return;
        };
        st.unscheduled.remove(key);
        let mut next = (*pod).clone();
        next["spec"]["nodeName"] = json!(node);
        match util::write_object(world, kinds::pods(), next) {
            Some(bound) => pod = bound,
            None => return,
        }
    }
    let running = phase(&pod) == "Running"
        && str_at(&pod, "/status/podIP").is_some()
        && str_at(&pod, "/status/startTime").is_some();
    if !running && super::ambient::blocks_start(world, &pod, ambient) {
        // Its node's istio-cni agent wakes it (see `ambient`).
        return;
    }
    let started = match (st.pod_started.get(key), running) {
        (Some(t), true) => *t,
        (None, true) => str_at(&pod, "/status/startTime")
            .and_then(parse_time)
            .unwrap_or(now),
        (_, false) => now,
    };
    st.pod_started.insert(key.clone(), started);

    let (stage, wake_at) = if is_job_pod(&pod) && annotation(&pod, RUN_DURATION) == Some("forever")
    {
        (Stage::Running { ready: false }, None)
    } else if is_job_pod(&pod) {
        let run = annotation(&pod, RUN_DURATION)
            .and_then(parse_duration)
            .unwrap_or(world.config.pod_ready_delay);
        let done_at = add(started, run);
        if now >= done_at {
            (Stage::Succeeded, None)
        } else {
            (Stage::Running { ready: false }, Some(done_at))
        }
    } else {
        match ready_delay(world, &pod).map(|d| add(started, d)) {
            Some(at) if at <= now => (Stage::Running { ready: true }, None),
            Some(at) => (Stage::Running { ready: false }, Some(at)),
            None => (Stage::Running { ready: false }, None),
        }
    };
    if let Some(at) = wake_at {
        st.timers.set(target, at, true);
    }
    // The common case on a big cluster: a running pod already reporting
    // what the clock says. Checked before building a status to compare.
    if running {
        let reported = match stage {
            Stage::Running { ready } => phase(&pod) == "Running" && is_ready(&pod) == ready,
            Stage::Succeeded => false,
        };
        let count = |pointer: &str| {
            pod.at(pointer)
                .and_then(Value::as_array)
                .map_or(0, Vec::len)
        };
        if reported
            && count("/status/containerStatuses") == count("/spec/containers")
            && count("/status/initContainerStatuses") == count("/spec/initContainers")
        {
            return;
        }
    }

    let node_name = str_at(&pod, "/spec/nodeName").unwrap_or("").to_string();
    let host_ip = nodes
        .iter()
        .find(|n| n.name == node_name)
        .map(|n| n.ip.clone())
        .unwrap_or_default();
    let pod_ip = match str_at(&pod, "/status/podIP") {
        Some(ip) if running => ip.to_string(),
        _ => next_pod_ip(st),
    };
    let status = kubelet_status(&pod, &stage, &pod_ip, &host_ip, started, now);
    // Timestamps aside, an unchanged phase and readiness means nothing to
    // report: compare those before writing.
    if running && same_state(pod.get("status").unwrap_or(&Value::Null), &status) {
        return;
    }
    util::write_status(world, kinds::pods(), &pod, status);
}

/// Phase, readiness and container states equal: nothing to report.
fn same_state(current: &Value, next: &Value) -> bool {
    let ready = |s: &Value| {
        s.get("conditions")
            .and_then(Value::as_array)
            .and_then(|c| util::condition(c, "Ready"))
            .and_then(|c| c.get("status"))
            .cloned()
    };
    let containers = |s: &Value, field: &str| -> Vec<(Value, Value, Value)> {
        s.get(field)
            .and_then(Value::as_array)
            .map(|cs| {
                cs.iter()
                    .map(|c| {
                        (
                            c.get("name").cloned().unwrap_or_default(),
                            c.get("ready").cloned().unwrap_or_default(),
                            c.get("image").cloned().unwrap_or_default(),
                        )
                    })
                    .collect()
            })
            .unwrap_or_default()
    };
    current.get("phase") == next.get("phase")
        && ready(current) == ready(next)
        && containers(current, "containerStatuses") == containers(next, "containerStatuses")
        && containers(current, "initContainerStatuses") == containers(next, "initContainerStatuses")
}

/// `docker.io/istio/proxyv2:1.22.3` → `docker.io/istio/proxyv2@sha256:…`.
fn image_id(image: &str) -> String {
    let without_digest = image.split('@').next().unwrap_or(image);
    let repository = match without_digest.rfind(':') {
        Some(i) if !without_digest[i..].contains('/') => &without_digest[..i],
        _ => without_digest,
    };
    format!("{repository}@sha256:{}", fake_digest(image))
}

fn kubelet_status(
    pod: &Value,
    stage: &Stage,
    pod_ip: &str,
    host_ip: &str,
    started: DateTime<Utc>,
    now: DateTime<Utc>,
) -> Value {
    let start = fmt_time(started);
    let now_s = fmt_time(now);
    let uid = util::uid_of(pod);
    let (ready, done) = match stage {
        Stage::Running { ready } => (*ready, false),
        Stage::Succeeded => (false, true),
    };
    let container_status = |c: &Value, sidecar: bool, init: bool| -> Value {
        let name = c.get("name").and_then(Value::as_str).unwrap_or("");
        let image = c.get("image").and_then(Value::as_str).unwrap_or("");
        let mut s = json!({
            "name": name,
            "image": image,
            "imageID": image_id(image),
            "containerID": format!("containerd://{}", fake_digest(&format!("{uid}/{name}"))),
            "restartCount": 0,
            "lastState": {},
        });
        if !done && never_pulls(image) {
            s["imageID"] = json!("");
            s["containerID"] = Value::Null;
            s["ready"] = json!(false);
            s["started"] = json!(false);
            s["state"] = json!({"waiting": {
                "reason": "ImagePullBackOff",
                "message": format!("Back-off pulling image \"{image}\": ErrImagePull: failed to resolve reference \"{image}\": no such host"),
            }});
            if let Some(map) = s.as_object_mut() {
                map.remove("containerID");
            }
        } else if done || (init && !sidecar) {
            // A finished init container reports ready, as the kubelet does.
            s["ready"] = json!(init && !sidecar);
            s["started"] = json!(false);
            s["state"] = json!({"terminated": {
                "exitCode": 0, "reason": "Completed", "startedAt": start,
                "finishedAt": if done { now_s.clone() } else { start.clone() },
                "containerID": s["containerID"].clone(),
            }});
        } else {
            s["ready"] = json!(ready);
            s["started"] = json!(true);
            s["state"] = json!({"running": {"startedAt": start}});
        }
        s
    };
    let containers: Vec<Value> = pod
        .at("/spec/containers")
        .and_then(Value::as_array)
        .into_iter()
        .flatten()
        .map(|c| container_status(c, false, false))
        .collect();
    let init_containers: Vec<Value> = pod
        .at("/spec/initContainers")
        .and_then(Value::as_array)
        .into_iter()
        .flatten()
        .map(|c| {
            let sidecar = c.get("restartPolicy").and_then(Value::as_str) == Some("Always");
            container_status(c, sidecar, true)
        })
        .collect();
    let unready: Vec<&str> = containers
        .iter()
        .chain(
            init_containers
                .iter()
                .filter(|c| c.at("/state/running").is_some()),
        )
        .filter(|c| !bool_at(c, "/ready"))
        .filter_map(|c| c.get("name").and_then(Value::as_str))
        .collect();
    let previous_ready_time = pod_condition(pod, "Ready")
        .filter(|c| {
            c.get("status").and_then(Value::as_str) == Some(if ready { "True" } else { "False" })
        })
        .and_then(|c| c.get("lastTransitionTime"))
        .cloned();
    let ready_time = previous_ready_time
        .unwrap_or_else(|| json!(if ready { now_s.clone() } else { start.clone() }));
    let condition = |kind: &str,
                     ok: bool,
                     reason: Option<&str>,
                     message: Option<String>,
                     at: &Value| {
        let mut c = json!({"type": kind, "status": if ok { "True" } else { "False" }, "lastProbeTime": null, "lastTransitionTime": at});
        if let Some(r) = reason {
            c["reason"] = json!(r);
        }
        if let Some(m) = message {
            c["message"] = json!(m);
        }
        c
    };
    let start_v = json!(start);
    let (not_ready_reason, not_ready_message) = if done {
        (Some("PodCompleted"), None)
    } else if ready {
        (None, None)
    } else {
        (
            Some("ContainersNotReady"),
            Some(format!(
                "containers with unready status: [{}]",
                unready.join(" ")
            )),
        )
    };
    let conditions = vec![
        condition("PodReadyToStartContainers", !done, None, None, &start_v),
        condition(
            "Initialized",
            true,
            done.then_some("PodCompleted"),
            None,
            &start_v,
        ),
        condition(
            "Ready",
            ready,
            not_ready_reason,
            not_ready_message.clone(),
            &ready_time,
        ),
        condition(
            "ContainersReady",
            ready,
            not_ready_reason,
            not_ready_message,
            &ready_time,
        ),
        condition("PodScheduled", true, None, None, &start_v),
    ];
    let mut status = json!({
        "phase": if done { "Succeeded" } else { "Running" },
        "conditions": conditions,
        "hostIP": host_ip,
        "hostIPs": [{"ip": host_ip}],
        "podIP": pod_ip,
        "podIPs": [{"ip": pod_ip}],
        "startTime": start,
        "containerStatuses": containers,
        "qosClass": "BestEffort",
    });
    if !init_containers.is_empty() {
        status["initContainerStatuses"] = json!(init_containers);
    }
    status
}

/// Orders surplus pods the way the ReplicaSet controller picks victims:
/// unbound before bound, pending before running, not ready before ready,
/// ready for less time before longer, newer before older.
pub fn deletion_order(a: &Value, b: &Value) -> std::cmp::Ordering {
    let bound = |p: &Value| str_at(p, "/spec/nodeName").is_some_and(|n| !n.is_empty());
    let phase_rank = |p: &Value| match phase(p) {
        "Pending" => 0,
        "Running" => 2,
        _ => 1,
    };
    let created = |p: &Value| {
        (
            str_at(p, "/metadata/creationTimestamp")
                .unwrap_or("")
                .to_string(),
            util::uid_of(p).to_string(),
        )
    };
    bound(a)
        .cmp(&bound(b))
        .then(phase_rank(a).cmp(&phase_rank(b)))
        .then(is_ready(a).cmp(&is_ready(b)))
        .then(ready_since(b).cmp(&ready_since(a)))
        .then(created(b).cmp(&created(a)))
}

/// One namespace's pods with an index by label, built once per pass for
/// the Services and PDBs of a namespace whose pods changed, so matching
/// their selectors reads only the pods carrying one of the labels.
pub struct NamespacePods {
    pods: Vec<Obj>,
    by_label: std::collections::HashMap<(String, String), Vec<usize>>,
}

impl NamespacePods {
    pub fn of(world: &World, namespace: &str) -> Self {
        let pods: Vec<Obj> = world.store.list(kinds::pods(), Some(namespace)).collect();
        let mut by_label: std::collections::HashMap<(String, String), Vec<usize>> =
            std::collections::HashMap::new();
        for (i, pod) in pods.iter().enumerate() {
            for (k, v) in pod
                .at("/metadata/labels")
                .and_then(Value::as_object)
                .into_iter()
                .flatten()
            {
                if let Some(v) = v.as_str() {
                    by_label
                        .entry((k.clone(), v.to_string()))
                        .or_default()
                        .push(i);
                }
            }
        }
        NamespacePods { pods, by_label }
    }

    /// The pods `selector` matches, in name order.
    pub fn select(&self, selector: &util::Selector) -> Vec<&Obj> {
        if selector.matches_nothing() {
            return Vec::new();
        }
        match selector.first_equality() {
            Some((k, v)) => self
                .by_label
                .get(&(k.to_string(), v.to_string()))
                .into_iter()
                .flatten()
                .map(|i| &self.pods[*i])
                .filter(|p| selector.matches_obj(p))
                .collect(),
            None => self
                .pods
                .iter()
                .filter(|p| selector.matches_obj(p))
                .collect(),
        }
    }
}
