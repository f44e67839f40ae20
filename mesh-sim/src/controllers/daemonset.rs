//! DaemonSets: one pod per eligible node (every node whose labels match the
//! template's `nodeSelector`), bound to it directly.
//!
//! `updateStrategy: RollingUpdate` replaces pods whose
//! `controller-revision-hash` is not the current template's: with
//! `maxSurge: 0` (default) it deletes old pods while at most
//! `maxUnavailable` (default 1, percentages round up) nodes lack an
//! available pod, unavailable old pods first; with `maxSurge` it starts the
//! new pod next to the old one on up to that many nodes and deletes the old
//! one once the new one is available. `OnDelete` replaces nothing until a
//! pod is deleted.

use std::collections::BTreeMap;

use super::util::At;
use chrono::{DateTime, Utc};
use serde_json::{Value, json};

use super::pods::{self, PodName};
use super::replicaset::{PodOwner, create_pods, delete_pods, owned_pods};
use super::revisions::{self, HASH_LABEL};
use super::state::{ControllerState, Target};
use super::util::{self, Selector, i64_at, int_or_percent, is_being_deleted, name_of, str_at};
use crate::resources::kinds;
use crate::store::{Obj, ObjKey};
use crate::world::World;

const COMPONENT: &str = "daemonset-controller";

pub(crate) fn sync(world: &mut World, st: &mut ControllerState, key: &ObjKey, now: DateTime<Utc>) {
    let target = Target::DaemonSet(key.clone());
    st.timers.clear(&target);
    let Some(ds) = util::get(world, kinds::daemonsets(), key) else {
        st.create_backoff.remove(&target);
        return;
    };
    if is_being_deleted(&ds) {
        return;
    }
    let Ok(revs) = revisions::sync(world, st, &ds) else {
        let count = i64_at(&ds, "/status/collisionCount").unwrap_or(0) + 1;
        let mut status = ds.get("status").cloned().unwrap_or_else(|| json!({}));
        status["collisionCount"] = json!(count);
        util::write_status(world, kinds::daemonsets(), &ds, status);
        return;
    };
    let hash = revisions::hash_of(&revs.update);
    let template = ds
        .at("/spec/template")
        .cloned()
        .unwrap_or_else(|| json!({}));
    let node_selector = Selector::from_map(template.at("/spec/nodeSelector"));
    let nodes: Vec<Obj> = world.store.list(kinds::nodes(), None).collect();
    let eligible: Vec<String> = nodes
        .iter()
        .filter(|n| node_selector.matches_obj(n))
        .map(|n| name_of(n).to_string())
        .collect();
    let min_ready = i64_at(&ds, "/spec/minReadySeconds").unwrap_or(0);
    let is_updated = |p: &Value| util::label(p, HASH_LABEL) == Some(hash.as_str());
    let available = |p: &Value| pods::is_available(p, min_ready, now);

    let mut by_node: BTreeMap<String, Vec<Obj>> = BTreeMap::new();
    for pod in owned_pods(world, st, &ds) {
        if pods::is_active(&pod) {
            let node = str_at(&pod, "/spec/nodeName").unwrap_or("").to_string();
            by_node.entry(node).or_default().push(pod);
        }
    }
    let desired = eligible.len() as i64;
    let rolling =
        str_at(&ds, "/spec/updateStrategy/type").unwrap_or("RollingUpdate") == "RollingUpdate";
    let rolling_update = ds.at("/spec/updateStrategy/rollingUpdate");
    let max_surge = if rolling {
        int_or_percent(
            rolling_update.and_then(|r| r.get("maxSurge")),
            desired,
            true,
        )
    } else {
        0
    };
    let mut max_unavailable = int_or_percent(
        Some(
            rolling_update
                .and_then(|r| r.get("maxUnavailable"))
                .unwrap_or(&json!(1)),
        ),
        desired,
        true,
    );
    if max_surge == 0 && max_unavailable == 0 {
        max_unavailable = 1;
    }

    let mut create_on: Vec<String> = Vec::new();
    let mut victims: Vec<Obj> = Vec::new();
    // Pods on nodes that should not run one.
    for (node, node_pods) in &by_node {
        if !eligible.contains(node) {
            victims.extend(node_pods.iter().cloned());
        }
    }
    let mut unavailable_nodes = 0;
    let mut surging_nodes = 0;
    for node in &eligible {
        let node_pods = by_node.get(node).cloned().unwrap_or_default();
        if !node_pods.iter().any(|p| available(p)) {
            unavailable_nodes += 1;
        }
        let (new, old): (Vec<Obj>, Vec<Obj>) = node_pods.into_iter().partition(|p| is_updated(p));
        if !new.is_empty() && !old.is_empty() {
            surging_nodes += 1;
        }
        if new.is_empty() && old.is_empty() {
            create_on.push(node.clone());
        }
        // More than one pod of a kind on a node: keep the best.
        for mut group in [new, old] {
            if group.len() > 1 {
                group.sort_by(|a, b| pods::deletion_order(a, b));
                let extra = group.len() - 1;
                victims.extend(group.drain(..extra));
            }
        }
    }

    if rolling {
        let mut plan: Vec<(String, Option<Obj>, Option<Obj>)> = eligible
            .iter()
            .map(|node| {
                let node_pods = by_node.get(node).cloned().unwrap_or_default();
                let new = node_pods.iter().find(|p| is_updated(p)).cloned();
                let old = node_pods.iter().find(|p| !is_updated(p)).cloned();
                (node.clone(), new, old)
            })
            .collect();
        // Unavailable old pods serve nothing: replace them first.
        plan.sort_by_key(|(_, _, old)| old.as_ref().is_some_and(|p| available(p)));
        for (node, new, old) in plan {
            let Some(old) = old else {
                continue;
            };
            match new {
                Some(new) if available(&new) => victims.push(old),
                Some(_) => {}
                None if !available(&old) => victims.push(old),
                None if max_surge > 0 => {
                    if surging_nodes < max_surge {
                        surging_nodes += 1;
                        create_on.push(node);
                    }
                }
                None => {
                    if unavailable_nodes < max_unavailable {
                        unavailable_nodes += 1;
                        victims.push(old);
                    }
                }
            }
        }
    }

    if !victims.is_empty() {
        victims.sort_by(|a, b| name_of(a).cmp(name_of(b)));
        victims.dedup_by(|a, b| name_of(a) == name_of(b));
        delete_pods(world, &ds, &victims, COMPONENT, now);
    }
    if !create_on.is_empty() {
        let generation = util::generation_of(&ds).to_string();
        let prefix = format!("{}-", name_of(&ds));
        let owner = PodOwner {
            obj: &ds,
            target: &target,
            component: COMPONENT,
        };
        create_pods(world, st, &owner, create_on.len(), now, |i| {
            let mut pod = pods::from_template(
                &template,
                &ds,
                PodName::Generate(prefix.clone()),
                &[
                    (HASH_LABEL, &hash),
                    ("pod-template-generation", &generation),
                ],
            );
            pod["spec"]["nodeName"] = json!(create_on[i]);
            pod
        });
    }

    // Status, per node, from the pods as they are now.
    let mut by_node: BTreeMap<String, Vec<Obj>> = BTreeMap::new();
    for pod in owned_pods(world, st, &ds) {
        if pods::is_active(&pod) {
            by_node
                .entry(str_at(&pod, "/spec/nodeName").unwrap_or("").to_string())
                .or_default()
                .push(pod);
        }
    }
    let on_eligible = |f: &dyn Fn(&Value) -> bool| {
        eligible
            .iter()
            .filter(|n| by_node.get(*n).is_some_and(|ps| ps.iter().any(|p| f(p))))
            .count() as i64
    };
    let scheduled = on_eligible(&|_| true);
    let ready = on_eligible(&|p| pods::is_ready(p));
    let available_count = on_eligible(&|p| pods::is_available(p, min_ready, now));
    let updated = on_eligible(&|p| util::label(p, HASH_LABEL) == Some(hash.as_str()));
    let misscheduled = by_node.keys().filter(|n| !eligible.contains(n)).count() as i64;
    if let Some(at) = by_node
        .values()
        .flatten()
        .filter_map(|p| pods::available_at(p, min_ready))
        .filter(|at| *at > now)
        .min()
    {
        st.timers.set(target, at, true);
    }
    let mut status = json!({
        "currentNumberScheduled": scheduled,
        "numberMisscheduled": misscheduled,
        "desiredNumberScheduled": desired,
        "numberReady": ready,
    });
    let map = status.as_object_mut().expect("status is an object");
    map.extend(util::counts(&[
        ("observedGeneration", util::generation_of(&ds)),
        ("updatedNumberScheduled", updated),
        ("numberAvailable", available_count),
        ("numberUnavailable", (desired - available_count).max(0)),
    ]));
    if let Some(c) = ds.at("/status/collisionCount") {
        map.insert("collisionCount".into(), c.clone());
    }
    util::write_status(world, kinds::daemonsets(), &ds, status);

    let live: Vec<String> = by_node
        .values()
        .flatten()
        .filter_map(|p| util::label(p, HASH_LABEL).map(str::to_string))
        .collect();
    let live: Vec<&str> = live.iter().map(String::as_str).collect();
    revisions::cleanup(world, &ds, &revs, &live);
}
