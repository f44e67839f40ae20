//! PodDisruptionBudget status, as the disruption controller computes it.
//!
//! The budget's pods are the active pods its `spec.selector` matches in its
//! namespace (policy/v1: a null selector matches nothing, `{}` everything);
//! `currentHealthy` counts the Ready ones. `expectedPods` is the number of
//! matched pods for an integer `minAvailable`, and otherwise the scale of
//! their controllers (a Deployment's or StatefulSet's `spec.replicas`), so
//! percentages and `maxUnavailable` are measured against what should run.
//! `desiredHealthy` comes from `minAvailable` or `expectedPods -
//! maxUnavailable` (percentages round up), and `disruptionsAllowed` is
//! `currentHealthy - desiredHealthy`, never below zero. Pods in
//! `disruptedPods` (recorded by the eviction subresource,
//! [`crate::eviction`]) are not healthy until they are gone, and leave the
//! map then (or after two minutes).

use std::collections::{BTreeMap, HashMap};

use super::util::At;
use serde_json::{Value, json};

use super::pods::{self, NamespacePods};
use super::util::{
    self, Selector, conditions_of, controller_of, fmt_time, i64_at, int_or_percent, set_condition,
};
use crate::resources::kinds;
use crate::store::ObjKey;
use crate::world::World;

/// The replicas the controller of `pod` wants: a ReplicaSet's Deployment
/// or Rollout, a ReplicaSet or a StatefulSet; `None` for other owners.
fn controller_scale(world: &World, pod: &Value) -> Option<(String, i64)> {
    let (kind, name, uid) = controller_of(pod)?;
    let namespace = util::namespace_of(pod);
    match kind {
        "ReplicaSet" => {
            let rs = world.store.get(kinds::replicasets(), namespace, name)?;
            if let Some(("Deployment", d_name, d_uid)) = controller_of(&rs) {
                let d = world.store.get(kinds::deployments(), namespace, d_name)?;
                return Some((d_uid.to_string(), i64_at(&d, "/spec/replicas").unwrap_or(1)));
            }
            // A custom owner is read through its scale subresource, which
            // a Rollout's CRD declares at `.spec.replicas`.
            if let Some(("Rollout", r_name, r_uid)) = controller_of(&rs) {
                let r = world.store.get(kinds::rollouts(), namespace, r_name)?;
                return Some((r_uid.to_string(), i64_at(&r, "/spec/replicas").unwrap_or(1)));
            }
            Some((uid.to_string(), i64_at(&rs, "/spec/replicas").unwrap_or(1)))
        }
        "StatefulSet" => {
            let set = world.store.get(kinds::statefulsets(), namespace, name)?;
            Some((uid.to_string(), i64_at(&set, "/spec/replicas").unwrap_or(1)))
        }
        _ => None,
    }
}

pub(crate) fn sync(
    world: &mut World,
    st: &mut super::state::ControllerState,
    key: &ObjKey,
    cache: &mut HashMap<String, NamespacePods>,
    now: chrono::DateTime<chrono::Utc>,
) {
    let Some(pdb) = util::get(world, kinds::pdbs(), key) else {
        return;
    };
    let selector = Selector::from_label_selector(pdb.at("/spec/selector"));
    let ns_pods = cache
        .entry(key.namespace.clone())
        .or_insert_with(|| NamespacePods::of(world, &key.namespace));
    let matched: Vec<_> = ns_pods
        .select(&selector)
        .into_iter()
        .filter(|p| pods::is_active(p))
        .cloned()
        .collect();
    // Pods an eviction was granted for count as gone until they are, for
    // at most two minutes (the disruption controller's DeletionTimeout).
    // A pod of the same name created after the record (a StatefulSet's
    // replacement) is not the pod the eviction was granted for: the sim
    // deletes at once, so the controller never sees the old one terminating.
    let mut disrupted = serde_json::Map::new();
    let mut recheck: Option<chrono::DateTime<chrono::Utc>> = None;
    if let Some(entries) = pdb.at("/status/disruptedPods").and_then(Value::as_object) {
        for (name, at) in entries {
            let Some(when) = at.as_str().and_then(util::parse_time) else {
                continue;
            };
            let expires = when + chrono::Duration::minutes(2);
            let same_pod = matched.iter().any(|p| {
                util::name_of(p) == name
                    && util::str_at(p, "/metadata/creationTimestamp")
                        .and_then(util::parse_time)
                        .is_none_or(|created| created < when)
            });
            if now < expires && same_pod {
                disrupted.insert(name.clone(), at.clone());
                recheck = Some(recheck.map_or(expires, |r| r.min(expires)));
            }
        }
    }
    if let Some(at) = recheck {
        // As the disruption controller requeues the budget at the first
        // record's expiry.
        st.timers
            .set(super::state::Target::Pdb(key.clone()), at, false);
    }
    let healthy = matched
        .iter()
        .filter(|p| pods::is_ready(p) && !disrupted.contains_key(util::name_of(p)))
        .count() as i64;
    let min_available = pdb.at("/spec/minAvailable").filter(|v| !v.is_null());
    let max_unavailable = pdb.at("/spec/maxUnavailable").filter(|v| !v.is_null());
    let scale = || {
        let mut controllers: BTreeMap<String, i64> = BTreeMap::new();
        let mut uncontrolled = 0;
        for pod in &matched {
            match controller_scale(world, pod) {
                Some((uid, replicas)) => {
                    controllers.insert(uid, replicas);
                }
                None => uncontrolled += 1,
            }
        }
        controllers.values().sum::<i64>() + uncontrolled
    };
    let (expected, desired) = match (min_available, max_unavailable) {
        (_, Some(max)) => {
            let expected = scale();
            (
                expected,
                (expected - int_or_percent(Some(max), expected, true)).max(0),
            )
        }
        (Some(Value::Number(n)), None) => (matched.len() as i64, n.as_i64().unwrap_or(0)),
        (Some(min), None) => {
            let expected = scale();
            (expected, int_or_percent(Some(min), expected, true))
        }
        (None, None) => (matched.len() as i64, 0),
    };
    let allowed = (healthy - desired).max(0);
    let now_s = fmt_time(now);
    let mut conditions = conditions_of(&pdb);
    if allowed > 0 {
        set_condition(
            &mut conditions,
            "DisruptionAllowed",
            "True",
            "SufficientPods",
            "",
            &now_s,
            false,
        );
    } else {
        set_condition(
            &mut conditions,
            "DisruptionAllowed",
            "False",
            "InsufficientPods",
            "",
            &now_s,
            false,
        );
    }
    for c in conditions.iter_mut() {
        c["observedGeneration"] = json!(util::generation_of(&pdb));
    }
    let mut status = json!({
        "observedGeneration": util::generation_of(&pdb),
        "disruptionsAllowed": allowed,
        "currentHealthy": healthy,
        "desiredHealthy": desired,
        "expectedPods": expected,
        "conditions": conditions,
    });
    if !disrupted.is_empty() {
        status["disruptedPods"] = Value::Object(disrupted);
    }
    util::write_status(world, kinds::pdbs(), &pdb, status);
}
