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
//! `currentHealthy - desiredHealthy`, never below zero.
//!
//! [`evict`] is the eviction subresource's rule, shared by the API
//! (`pods/<name>/eviction`) and the controllers that evict (Argo Rollouts'
//! restarts): refused (429) while a budget covering the pod allows no
//! disruption; otherwise the budget's `disruptionsAllowed` is decremented
//! and the pod recorded in `disruptedPods` before the pod is deleted, as the
//! API server does (`pkg/registry/core/pod/storage/eviction.go`), so two
//! evictions before the next pass cannot both spend the same disruption.

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
    let healthy = matched.iter().filter(|p| pods::is_ready(p)).count() as i64;
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
    // Evicted pods stay listed until they are gone (the sim deletes at
    // once, so by the next pass).
    if let Some(disrupted) = pdb.at("/status/disruptedPods").and_then(Value::as_object) {
        let still_there: serde_json::Map<String, Value> = disrupted
            .iter()
            .filter(|(pod, _)| {
                world
                    .store
                    .get(kinds::pods(), &key.namespace, pod)
                    .is_some()
            })
            .map(|(pod, at)| (pod.clone(), at.clone()))
            .collect();
        if !still_there.is_empty() {
            status["disruptedPods"] = Value::Object(still_there);
        }
    }
    util::write_status(world, kinds::pdbs(), &pdb, status);
}

/// Why an eviction was refused: the budget that allows no disruption.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct EvictionRefused {
    pub budget: String,
}

impl EvictionRefused {
    /// The API server's 429 for it.
    pub fn to_api_error(&self) -> crate::error::ApiError {
        let mut e = crate::error::ApiError::too_many_requests(10);
        e.message = format!(
            "Cannot evict pod as it would violate the pod's disruption budget. The disruption budget {} needs more healthy pods.",
            self.budget
        );
        e
    }
}

/// Evicts pod `name` of `namespace`: refused while a PodDisruptionBudget
/// selecting it allows no disruption; otherwise that budget's
/// `disruptionsAllowed` goes down by one (`disruptedPods` records the pod)
/// and the pod is deleted. A dry run checks and changes nothing.
pub fn evict(
    world: &mut World,
    namespace: &str,
    name: &str,
    opts: &crate::world::WriteOptions,
) -> crate::error::ApiResult<Result<(), EvictionRefused>> {
    let pods = kinds::pods();
    let pod = world
        .store
        .get(pods, namespace, name)
        .ok_or_else(|| crate::error::ApiError::not_found(pods.plural, name))?;
    let labels = crate::selectors::labels_of(&pod);
    let budget = world
        .store
        .list(kinds::pdbs(), Some(namespace))
        .find(|pdb| {
            pdb.at("/spec/selector").is_some_and(|selector| {
                crate::selectors::label_selector_matches(selector, &labels).unwrap_or(false)
            })
        });
    if let Some(pdb) = &budget {
        if i64_at(pdb, "/status/disruptionsAllowed").unwrap_or(0) < 1 {
            return Ok(Err(EvictionRefused {
                budget: util::name_of(pdb).to_string(),
            }));
        }
    }
    if opts.dry_run {
        return Ok(Ok(()));
    }
    if let Some(pdb) = budget {
        let mut status = pdb.get("status").cloned().unwrap_or_else(|| json!({}));
        let allowed = i64_at(&pdb, "/status/disruptionsAllowed").unwrap_or(0);
        status["disruptionsAllowed"] = json!(allowed - 1);
        if !status.get("disruptedPods").is_some_and(Value::is_object) {
            status["disruptedPods"] = json!({});
        }
        status["disruptedPods"][name] = json!(fmt_time(world.clock.now()));
        util::write_status(world, kinds::pdbs(), &pdb, status);
    }
    world.delete(pods, namespace, name, opts)?;
    Ok(Ok(()))
}
