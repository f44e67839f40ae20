//! StatefulSets: pods `<set>-<ordinal>` with stable names, updated by
//! revision.
//!
//! - `podManagementPolicy: OrderedReady` (default) creates pods in ordinal
//!   order, each waiting for the one before to be Running and Ready, and
//!   removes surplus ones highest first, one at a time; `Parallel` does
//!   both at once.
//! - `updateStrategy: RollingUpdate` replaces pods whose
//!   `controller-revision-hash` is not the update revision, highest ordinal
//!   first, one at a time, waiting for each replacement to be Ready; pods
//!   below `partition` keep (and are recreated at) the current revision.
//! - `updateStrategy: OnDelete` replaces nothing: a deleted pod comes back
//!   at the update revision.
//!
//! `status.currentRevision` becomes the update revision when a
//! RollingUpdate has updated every pod and they are Ready (as in
//! Kubernetes, an OnDelete set keeps its old `currentRevision`; count
//! `updatedReplicas` instead). Volume claim templates are not simulated.

use std::collections::BTreeMap;

use super::util::At;
use chrono::{DateTime, Utc};
use serde_json::{Value, json};

use super::pods::{self, PodName};
use super::replicaset::{PodOwner, create_pods, delete_pods, owned_pods};
use super::revisions::{self, HASH_LABEL};
use super::state::{ControllerState, Target};
use super::util::{self, i64_at, is_being_deleted, name_of, str_at};
use crate::resources::kinds;
use crate::store::{Obj, ObjKey};
use crate::world::World;

const COMPONENT: &str = "statefulset-controller";

fn ordinal(set_name: &str, pod: &Value) -> Option<i64> {
    name_of(pod)
        .strip_prefix(set_name)?
        .strip_prefix('-')?
        .parse()
        .ok()
}

fn running_and_ready(pod: &Value) -> bool {
    pods::phase(pod) == "Running" && pods::is_ready(pod)
}

pub(crate) fn sync(world: &mut World, st: &mut ControllerState, key: &ObjKey, now: DateTime<Utc>) {
    let target = Target::StatefulSet(key.clone());
    st.timers.clear(&target);
    let Some(set) = util::get(world, kinds::statefulsets(), key) else {
        st.create_backoff.remove(&target);
        return;
    };
    if is_being_deleted(&set) {
        return;
    }
    let Ok(revs) = revisions::sync(world, st, &set) else {
        let count = i64_at(&set, "/status/collisionCount").unwrap_or(0) + 1;
        let mut status = set.get("status").cloned().unwrap_or_else(|| json!({}));
        status["collisionCount"] = json!(count);
        util::write_status(world, kinds::statefulsets(), &set, status);
        return;
    };
    let update_name = name_of(&revs.update).to_string();
    let current = str_at(&set, "/status/currentRevision")
        .and_then(|c| revs.all.iter().find(|r| name_of(r) == c))
        .cloned()
        .unwrap_or_else(|| revs.update.clone());
    let current_name = name_of(&current).to_string();

    let name = name_of(&set).to_string();
    let replicas = i64_at(&set, "/spec/replicas").unwrap_or(1).max(0);
    let ordered = str_at(&set, "/spec/podManagementPolicy") != Some("Parallel");
    let rolling =
        str_at(&set, "/spec/updateStrategy/type").unwrap_or("RollingUpdate") == "RollingUpdate";
    let partition = if rolling {
        i64_at(&set, "/spec/updateStrategy/rollingUpdate/partition")
            .unwrap_or(0)
            .max(0)
    } else {
        0
    };
    let by_ordinal: BTreeMap<i64, Obj> = owned_pods(world, st, &set)
        .into_iter()
        .filter(|p| !is_being_deleted(p))
        .filter_map(|p| Some((ordinal(&name, &p)?, p)))
        .collect();
    let revision_of = |p: &Value| util::label(p, HASH_LABEL).unwrap_or("").to_string();
    let owner = PodOwner {
        obj: &set,
        target: &target,
        component: COMPONENT,
    };

    // Replicas in order: create the missing, replace the finished, and
    // (OrderedReady) wait at the first that is not Running and Ready.
    let mut busy = false;
    let mut missing = Vec::new();
    for ord in 0..replicas {
        match by_ordinal.get(&ord) {
            None => {
                missing.push(ord);
                if ordered {
                    break;
                }
            }
            Some(pod) if pods::is_terminal(pod) => {
                delete_pods(world, &set, std::slice::from_ref(pod), COMPONENT, now);
                busy = true;
                if ordered {
                    break;
                }
            }
            Some(pod) if ordered && !running_and_ready(pod) => {
                busy = true;
                break;
            }
            Some(_) => {}
        }
    }
    if !missing.is_empty() {
        busy = true;
        let template = set
            .at("/spec/template")
            .cloned()
            .unwrap_or_else(|| json!({}));
        let current_template = revisions::template_of(&current);
        let service = str_at(&set, "/spec/serviceName").unwrap_or("").to_string();
        create_pods(world, st, &owner, missing.len(), now, |i| {
            let ord = missing[i];
            let at_current = rolling && ord < partition;
            let (template, revision) = if at_current {
                (&current_template, current_name.as_str())
            } else {
                (&template, update_name.as_str())
            };
            let pod_name = format!("{name}-{ord}");
            let ord_s = ord.to_string();
            let mut pod = pods::from_template(
                template,
                &set,
                PodName::Exact(pod_name.clone()),
                &[
                    (HASH_LABEL, revision),
                    ("statefulset.kubernetes.io/pod-name", &pod_name),
                    ("apps.kubernetes.io/pod-index", &ord_s),
                ],
            );
            pod["spec"]["hostname"] = json!(pod_name);
            if !service.is_empty() {
                pod["spec"]["subdomain"] = json!(service);
            }
            pod
        });
    }

    // Surplus ordinals, highest first.
    if !busy {
        let condemned: Vec<Obj> = by_ordinal
            .range(replicas..)
            .rev()
            .map(|(_, p)| p.clone())
            .collect();
        if !condemned.is_empty() {
            let take = if ordered { 1 } else { condemned.len() };
            delete_pods(world, &set, &condemned[..take], COMPONENT, now);
            busy = true;
        }
    }

    // Rolling update: the highest pod not at the update revision goes,
    // once every pod above it is updated and Ready.
    if !busy && rolling {
        for ord in (partition..replicas).rev() {
            let Some(pod) = by_ordinal.get(&ord) else {
                break;
            };
            if revision_of(pod) != update_name {
                delete_pods(world, &set, std::slice::from_ref(pod), COMPONENT, now);
                break;
            }
            if !running_and_ready(pod) {
                break;
            }
        }
    }

    // Status, from the pods as they are now.
    let pods: Vec<Obj> = owned_pods(world, st, &set)
        .into_iter()
        .filter(|p| pods::is_active(p))
        .collect();
    let min_ready = i64_at(&set, "/spec/minReadySeconds").unwrap_or(0);
    let count = |f: &dyn Fn(&Value) -> bool| pods.iter().filter(|p| f(p)).count() as i64;
    let ready = count(&|p| pods::is_ready(p));
    let available = count(&|p| pods::is_available(p, min_ready, now));
    let updated = count(&|p| revision_of(p) == update_name);
    let mut current_replicas = count(&|p| revision_of(p) == current_name);
    let mut current_revision = current_name.clone();
    let total = pods.len() as i64;
    if rolling && updated == total && ready == total {
        current_revision = update_name.clone();
        current_replicas = updated;
    }
    if let Some(at) = pods
        .iter()
        .filter_map(|p| pods::available_at(p, min_ready))
        .filter(|at| *at > now)
        .min()
    {
        st.timers.set(target, at, true);
    }
    let mut status = json!(util::counts(&[
        ("observedGeneration", util::generation_of(&set)),
        ("readyReplicas", ready),
        ("currentReplicas", current_replicas),
        ("updatedReplicas", updated),
    ]));
    status["replicas"] = json!(total);
    status["availableReplicas"] = json!(available);
    status["currentRevision"] = json!(current_revision);
    status["updateRevision"] = json!(update_name);
    status["collisionCount"] = json!(i64_at(&set, "/status/collisionCount").unwrap_or(0));
    util::write_status(world, kinds::statefulsets(), &set, status);

    let live: Vec<String> = pods
        .iter()
        .map(|p| revision_of(p))
        .chain([current_revision])
        .collect();
    let live: Vec<&str> = live.iter().map(String::as_str).collect();
    revisions::cleanup(world, &set, &revs, &live);
}
