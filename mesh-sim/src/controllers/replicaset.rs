//! ReplicaSets: keep `spec.replicas` active pods from the template.
//!
//! Missing pods are created through [`World::create`], so the Istio
//! injector (admission) runs on each; when it refuses one (a
//! `failurePolicy: Fail` webhook whose istiod has no Ready pod), the
//! ReplicaSet gets a `FailedCreate` Warning event and a `ReplicaFailure`
//! condition, and tries again after a delay that doubles up to ten
//! simulated seconds (or at once when a webhook configuration changes), not
//! in a hot loop. Surplus pods go in the order the real controller picks:
//! unready and newest first.

use super::util::At;
use chrono::{DateTime, Utc};
use serde_json::{Value, json};

use super::events;
use super::pods::{self, PodName};
use super::state::{ControllerState, Target};
use super::util::{
    self, Selector, conditions_of, fmt_time, i64_at, is_being_deleted, name_of, set_condition,
};
use crate::resources::kinds;
use crate::store::{Obj, ObjKey};
use crate::world::{World, WriteOptions};

/// Pods one ReplicaSet creates per pass, so one huge scale-up does not
/// hold the world for long; the rest follow in the next passes.
const CREATE_BURST: usize = 500;

/// The delay before the `attempt`-th retry after failed pod creation.
pub fn retry_delay(attempt: u32) -> std::time::Duration {
    let seconds = 1u64 << attempt.saturating_sub(1).min(4);
    std::time::Duration::from_secs(seconds.min(10))
}

/// The workload creating pods: its object, its timer target (for retries)
/// and the controller name its events carry.
#[derive(Clone, Copy)]
pub(crate) struct PodOwner<'a> {
    pub obj: &'a Value,
    pub target: &'a Target,
    pub component: &'static str,
}

/// Creates up to `missing` pods with `make_pod(index)`; on an admission
/// failure records the event and the backoff. Returns the created pods and
/// the error message, if creation failed.
pub(crate) fn create_pods(
    world: &mut World,
    st: &mut ControllerState,
    owner: &PodOwner<'_>,
    missing: usize,
    now: DateTime<Utc>,
    mut make_pod: impl FnMut(usize) -> Value,
) -> (Vec<Obj>, Option<String>) {
    let PodOwner {
        obj: owner,
        target,
        component,
    } = *owner;
    if let Some((at, _)) = st.create_backoff.get(target) {
        if *at > now {
            st.timers.set(target.clone(), *at, false);
            return (Vec::new(), None);
        }
    }
    let mut created = Vec::new();
    let mut failure = None;
    for i in 0..missing.min(CREATE_BURST) {
        match pods::create(world, st, make_pod(i)) {
            Ok(pod) => created.push(pod),
            Err(e) => {
                failure = Some(e.message);
                break;
            }
        }
    }
    if let Some(last) = created.last() {
        let message = if owner.get("kind").and_then(Value::as_str) == Some("StatefulSet") {
            format!(
                "create Pod {} in StatefulSet {} successful",
                name_of(last),
                name_of(owner)
            )
        } else {
            format!("Created pod: {}", name_of(last))
        };
        events::record(
            world,
            owner,
            "Normal",
            "SuccessfulCreate",
            &message,
            component,
            now,
        );
    }
    match &failure {
        Some(message) => {
            let attempts = st.create_backoff.get(target).map_or(0, |(_, n)| *n) + 1;
            let at = util::add(now, retry_delay(attempts));
            st.create_backoff.insert(target.clone(), (at, attempts));
            st.timers.set(target.clone(), at, false);
            events::record(
                world,
                owner,
                "Warning",
                "FailedCreate",
                &format!("Error creating: {message}"),
                component,
                now,
            );
        }
        None => {
            st.create_backoff.remove(target);
        }
    }
    (created, failure)
}

/// Deletes `victims`, recording an event for the last one.
pub(crate) fn delete_pods(
    world: &mut World,
    owner: &Value,
    victims: &[Obj],
    component: &str,
    now: DateTime<Utc>,
) {
    let mut last = None;
    for pod in victims {
        if world
            .delete(
                kinds::pods(),
                util::namespace_of(pod),
                name_of(pod),
                &WriteOptions::default(),
            )
            .is_ok()
        {
            last = Some(name_of(pod).to_string());
        }
    }
    if let Some(name) = last {
        let message = if owner.get("kind").and_then(Value::as_str) == Some("StatefulSet") {
            format!(
                "delete Pod {name} in StatefulSet {} successful",
                name_of(owner)
            )
        } else {
            format!("Deleted pod: {name}")
        };
        events::record(
            world,
            owner,
            "Normal",
            "SuccessfulDelete",
            &message,
            component,
            now,
        );
    }
}

/// The pods `owner` controls, from the owner index.
pub(crate) fn owned_pods(world: &World, st: &ControllerState, owner: &Value) -> Vec<Obj> {
    st.pods_by_owner
        .dependents(util::uid_of(owner))
        .iter()
        .filter_map(|k| util::get(world, kinds::pods(), k))
        .collect()
}

pub(crate) fn sync(world: &mut World, st: &mut ControllerState, key: &ObjKey, now: DateTime<Utc>) {
    let target = Target::ReplicaSet(key.clone());
    st.timers.clear(&target);
    let Some(rs) = util::get(world, kinds::replicasets(), key) else {
        st.create_backoff.remove(&target);
        return;
    };
    if is_being_deleted(&rs) {
        return;
    }
    let desired = i64_at(&rs, "/spec/replicas").unwrap_or(1).max(0) as usize;
    let template = rs.at("/spec/template").unwrap_or(&Value::Null);
    let mut active: Vec<Obj> = owned_pods(world, st, &rs)
        .into_iter()
        .filter(|p| pods::is_active(p))
        .collect();
    let mut conditions = conditions_of(&rs);
    let now_s = fmt_time(now);

    if active.len() < desired {
        let prefix = format!("{}-", name_of(&rs));
        let owner = PodOwner {
            obj: &rs,
            target: &target,
            component: "replicaset-controller",
        };
        let (created, failure) =
            create_pods(world, st, &owner, desired - active.len(), now, |_| {
                pods::from_template(template, &rs, PodName::Generate(prefix.clone()), &[])
            });
        active.extend(created);
        match failure {
            Some(message) => set_condition(
                &mut conditions,
                "ReplicaFailure",
                "True",
                "FailedCreate",
                &message,
                &now_s,
                false,
            ),
            None if !st.create_backoff.contains_key(&target) => {
                util::remove_condition(&mut conditions, "ReplicaFailure")
            }
            None => {}
        }
    } else {
        st.create_backoff.remove(&target);
        util::remove_condition(&mut conditions, "ReplicaFailure");
        if active.len() > desired {
            active.sort_by(|a, b| pods::deletion_order(a, b));
            let victims: Vec<Obj> = active.drain(..active.len() - desired).collect();
            delete_pods(world, &rs, &victims, "replicaset-controller", now);
        }
    }

    let min_ready = i64_at(&rs, "/spec/minReadySeconds").unwrap_or(0);
    let labels = Selector::from_map(template.at("/metadata/labels"));
    let fully_labeled = active.iter().filter(|p| labels.matches_obj(p)).count() as i64;
    let ready = active.iter().filter(|p| pods::is_ready(p)).count() as i64;
    let mut available = 0;
    let mut next_available: Option<DateTime<Utc>> = None;
    for pod in &active {
        match pods::available_at(pod, min_ready) {
            Some(at) if at <= now => available += 1,
            Some(at) => next_available = Some(next_available.map_or(at, |n| n.min(at))),
            None => {}
        }
    }
    if let Some(at) = next_available {
        st.timers.set(target, at, true);
    }
    let mut status = json!({"replicas": active.len()});
    let map = status.as_object_mut().expect("status is an object");
    map.extend(util::counts(&[
        ("fullyLabeledReplicas", fully_labeled),
        ("readyReplicas", ready),
        ("availableReplicas", available),
        ("observedGeneration", util::generation_of(&rs)),
    ]));
    if !conditions.is_empty() {
        map.insert("conditions".into(), json!(conditions));
    }
    util::write_status(world, kinds::replicasets(), &rs, status);
}
