//! Argo Rollouts' controller for `Rollout` (argoproj.io/v1alpha1), as far
//! as a mesh upgrade sees it, written from Argo's source (argoproj/argo-rollouts):
//!
//! | what | Argo's file |
//! |---|---|
//! | the pod template from `spec.template`, or from the Deployment `spec.workloadRef` names (its selector too when the Rollout has none), recording its generation in `rollout.argoproj.io/workload-generation` | `rollout/templateref.go` |
//! | one ReplicaSet per template, `<rollout>-<hash>`, its pods and selector labelled `rollouts-pod-template-hash`, revision in `rollout.argoproj.io/revision` | `rollout/replicaset.go` |
//! | restarts: after `spec.restartAt`, pods created before it are **evicted** (the eviction API, so PodDisruptionBudgets can refuse), at most `max(maxUnavailable, 1)` below full availability; `status.restartedAt` is set once none is left; a canary pass that evicted stops there | `rollout/restart.go`, `utils/replicaset/replicaset.go` (`NeedsRestart`, `MaxUnavailable`) |
//! | canary: a template change scales the new ReplicaSet to each `setWeight` step (`pause` steps wait: with a duration on the clock, without one until `status.pauseConditions` is cleared), then promotes it to stable | `rollout/canary.go` |
//! | blueGreen: the new ReplicaSet scales up, the active Service's selector moves to it (`autoPromotionEnabled: false` pauses first), the old one scales down after `scaleDownDelaySeconds` (30) | `rollout/bluegreen.go`, `rollout/service.go` |
//! | `workloadRef.scaleDown: onsuccess` scales the Deployment to 0 once the first revision is Healthy | `rollout/sync.go` |
//! | status: `observedGeneration` **as a string**, replica counts, `stableRS`, `currentPodHash`, `restartedAt`, conditions, and `phase`/`message` | `rollout/sync.go`, `utils/rollout/rolloututil.go` (`CalculateRolloutPhase`) |
//!
//! Not simulated: traffic routing, analysis, experiments, anti-affinity,
//! `previewReplicaCount`, `workloadRef.scaleDown: progressively` (treated
//! as `never`), step types other than `setWeight` and `pause` (they count
//! as done at once), and the progress deadline.
//!
//! The defaults of `maxSurge`/`maxUnavailable` are Argo's `"25"`, which its
//! `GetValueFromIntOrPercent` reads as 25%.

use std::time::Duration;

use chrono::{DateTime, Utc};
use serde_json::{Value, json};

use super::events;
use super::pods;
use super::state::{ControllerState, Target};
use super::util::{
    self, At, annotation, bool_at, conditions_of, fmt_time, i64_at, int_or_percent,
    is_being_deleted, name_of, parse_time, set_condition, str_at, template_hash,
};
use crate::resources::kinds;
use crate::store::{Obj, ObjKey};
use crate::world::{World, WriteOptions};

/// The label on a Rollout's ReplicaSets, their selectors and pods.
pub const HASH_LABEL: &str = "rollouts-pod-template-hash";
/// A Rollout ReplicaSet's revision.
pub const REVISION: &str = "rollout.argoproj.io/revision";
const DESIRED_REPLICAS: &str = "rollout.argoproj.io/desired-replicas";
/// The referenced workload's generation the Rollout last resolved.
pub const WORKLOAD_GENERATION: &str = "rollout.argoproj.io/workload-generation";
/// On an old blue-green ReplicaSet: when it may be scaled down.
const SCALE_DOWN_DEADLINE: &str = "scale-down-deadline";
const COMPONENT: &str = "rollouts-controller";
/// How soon a restart that could not evict everything looks again
/// (`restartPodCheckTime` in `rollout/restart.go`).
const RESTART_CHECK: Duration = Duration::from_secs(30);
/// `DefaultScaleDownDelaySeconds`.
const DEFAULT_SCALE_DOWN_DELAY: i64 = 30;

/// The strategy, with Argo's defaults.
enum Strategy {
    Canary {
        steps: Vec<Value>,
        max_surge: i64,
        max_unavailable: i64,
    },
    BlueGreen {
        active_service: String,
        preview_service: Option<String>,
        auto_promotion: bool,
        max_unavailable: i64,
        scale_down_delay: i64,
    },
}

impl Strategy {
    fn of(ro: &Value, replicas: i64) -> Strategy {
        if let Some(bg) = ro.at("/spec/strategy/blueGreen").filter(|v| v.is_object()) {
            let unavailable = bg.get("maxUnavailable").cloned().unwrap_or(json!("25%"));
            return Strategy::BlueGreen {
                active_service: str_at(bg, "/activeService").unwrap_or("").to_string(),
                preview_service: str_at(bg, "/previewService")
                    .filter(|s| !s.is_empty())
                    .map(str::to_string),
                auto_promotion: bg
                    .get("autoPromotionEnabled")
                    .and_then(Value::as_bool)
                    .unwrap_or(true),
                max_unavailable: percent(&unavailable, replicas, false).min(replicas),
                scale_down_delay: i64_at(bg, "/scaleDownDelaySeconds")
                    .unwrap_or(DEFAULT_SCALE_DOWN_DELAY),
            };
        }
        let canary = ro.at("/spec/strategy/canary");
        let field = |name: &str| {
            canary
                .and_then(|c| c.get(name))
                .cloned()
                .unwrap_or(json!("25%"))
        };
        // resolveFenceposts: surge rounds up, unavailability down, and both
        // zero means one unavailable.
        let surge = percent(&field("maxSurge"), replicas, true);
        let mut unavailable = percent(&field("maxUnavailable"), replicas, false);
        if surge == 0 && unavailable == 0 {
            unavailable = 1;
        }
        Strategy::Canary {
            steps: canary
                .and_then(|c| c.get("steps"))
                .and_then(Value::as_array)
                .cloned()
                .unwrap_or_default(),
            max_surge: surge,
            max_unavailable: unavailable.min(replicas),
        }
    }

    /// `MaxUnavailable` of `utils/replicaset`: what a restart may take down.
    fn max_unavailable(&self, replicas: i64) -> i64 {
        if replicas == 0 {
            return 0;
        }
        match self {
            Strategy::Canary {
                max_unavailable, ..
            }
            | Strategy::BlueGreen {
                max_unavailable, ..
            } => *max_unavailable,
        }
    }

    fn is_canary(&self) -> bool {
        matches!(self, Strategy::Canary { .. })
    }
}

/// An int-or-percent as Argo reads it: a string is a percentage with or
/// without its `%` (its defaults are `"25"`).
fn percent(value: &Value, total: i64, round_up: bool) -> i64 {
    match value {
        Value::String(s) if !s.ends_with('%') => {
            int_or_percent(Some(&json!(format!("{s}%"))), total, round_up)
        }
        other => int_or_percent(Some(other), total, round_up),
    }
}

/// The template and selector a Rollout runs, resolved.
struct Resolved {
    template: Value,
    selector: Value,
}

/// `spec.template` and `spec.selector`, or the referenced Deployment's
/// (`rollout/templateref.go`); an error sentence for the InvalidSpec
/// condition when they cannot be had.
fn resolve(world: &mut World, ro: &Obj) -> Result<(Resolved, Option<Obj>), String> {
    let namespace = util::namespace_of(ro);
    let Some(reference) = ro.at("/spec/workloadRef").filter(|r| r.is_object()) else {
        let template = ro.at("/spec/template").cloned().unwrap_or(Value::Null);
        let selector = ro.at("/spec/selector").cloned().unwrap_or(Value::Null);
        if !selector.is_object() {
            return Err("Rollout has missing field '.spec.selector'".into());
        }
        if template.at("/metadata/labels").is_none() {
            return Err("Rollout has missing field '.spec.template'".into());
        }
        return Ok((Resolved { template, selector }, None));
    };
    let kind = str_at(reference, "/kind").unwrap_or("");
    let api_version = str_at(reference, "/apiVersion").unwrap_or("");
    let name = str_at(reference, "/name").unwrap_or("");
    if kind != "Deployment" || !matches!(api_version, "apps/v1" | "") {
        return Err(format!(
            "workloadRef {api_version} {kind} is not a kind this simulation resolves (Deployment apps/v1)"
        ));
    }
    let Some(deployment) = world.store.get(kinds::deployments(), namespace, name) else {
        return Err(format!("deployments.apps \"{name}\" not found"));
    };
    let template = deployment
        .at("/spec/template")
        .cloned()
        .unwrap_or(Value::Null);
    let selector = ro
        .at("/spec/selector")
        .filter(|s| s.is_object())
        .or_else(|| deployment.at("/spec/selector"))
        .cloned()
        .unwrap_or(Value::Null);
    // The Rollout records the generation of what it resolved.
    let generation = util::generation_of(&deployment).to_string();
    if annotation(ro, WORKLOAD_GENERATION) != Some(generation.as_str()) {
        let mut next = (**ro).clone();
        util::insert_str(
            &mut next["metadata"],
            "annotations",
            WORKLOAD_GENERATION,
            &generation,
        );
        util::write_object(world, kinds::rollouts(), next);
    }
    Ok((Resolved { template, selector }, Some(deployment)))
}

fn spec_replicas(rs: &Value) -> i64 {
    i64_at(rs, "/spec/replicas").unwrap_or(1)
}

fn status_count(obj: &Value, field: &str) -> i64 {
    i64_at(obj, &format!("/status/{field}")).unwrap_or(0)
}

fn hash_of(rs: &Value) -> &str {
    util::label(rs, HASH_LABEL).unwrap_or("")
}

/// The `rollouts-pod-template-hash` of a template. Argo hashes templates
/// its own way (`hash.ComputePodTemplateHash`), so a Rollout's ReplicaSet
/// never takes the name of the one a Deployment with the same template
/// (its workloadRef) made.
fn rollout_hash(template: &Value, collision_count: Option<i64>) -> String {
    template_hash(&json!({"rollout": without_hash(template)}), collision_count)
}

fn revision_of(rs: &Value) -> i64 {
    annotation(rs, REVISION)
        .and_then(|r| r.parse().ok())
        .unwrap_or(0)
}

/// The template without the hash label, as compared and hashed.
fn without_hash(template: &Value) -> Value {
    let mut t = template.clone();
    if let Some(labels) = t
        .pointer_mut("/metadata/labels")
        .and_then(Value::as_object_mut)
    {
        labels.remove(HASH_LABEL);
    }
    t
}

pub(crate) fn sync(world: &mut World, st: &mut ControllerState, key: &ObjKey, now: DateTime<Utc>) {
    let target = Target::Rollout(key.clone());
    st.timers.clear(&target);
    let Some(ro) = util::get(world, kinds::rollouts(), key) else {
        return;
    };
    if is_being_deleted(&ro) {
        return;
    }
    let (resolved, referenced) = match resolve(world, &ro) {
        Ok(resolved) => resolved,
        Err(message) => {
            invalid_spec(world, &ro, &message, now);
            return;
        }
    };
    let ro = util::get(world, kinds::rollouts(), key).unwrap_or(ro);
    let replicas = i64_at(&ro, "/spec/replicas").unwrap_or(1).max(0);
    let strategy = Strategy::of(&ro, replicas);
    if let Strategy::BlueGreen { active_service, .. } = &strategy {
        if world
            .store
            .get(kinds::services(), &key.namespace, active_service)
            .is_none()
        {
            invalid_spec(
                world,
                &ro,
                &format!(
                    "The Rollout \"{}\" is invalid: spec.strategy.blueGreen.activeService: Invalid value: \"{active_service}\": service \"{active_service}\" not found",
                    key.name
                ),
                now,
            );
            return;
        }
    }

    let mut rss: Vec<Obj> = st
        .replicasets_by_owner
        .dependents(util::uid_of(&ro))
        .iter()
        .filter_map(|k| util::get(world, kinds::replicasets(), k))
        .filter(|rs| !is_being_deleted(rs))
        .collect();
    rss.sort_by_key(|rs| {
        (
            str_at(rs, "/metadata/creationTimestamp")
                .unwrap_or("")
                .to_string(),
            util::uid_of(rs).to_string(),
        )
    });
    let stable_hash = str_at(&ro, "/status/stableRS").unwrap_or("").to_string();
    // The new ReplicaSet is the one labelled with the template's hash
    // (`FindNewReplicaSet`): the API server defaults a ReplicaSet's pod spec,
    // so the stored templates differ from the Rollout's.
    let wanted_hash = rollout_hash(&resolved.template, i64_at(&ro, "/status/collisionCount"));
    let mut new_index = rss.iter().position(|rs| hash_of(rs) == wanted_hash);
    if new_index.is_none() {
        let revision = rss.iter().map(|rs| revision_of(rs)).max().unwrap_or(0) + 1;
        // The first ReplicaSet starts at full scale; a later one at zero,
        // scaled by the strategy below.
        let initial = if rss.is_empty() { replicas } else { 0 };
        if let Some(rs) = create_replica_set(world, &ro, &resolved, revision, initial, now) {
            rss.push(rs);
            new_index = Some(rss.len() - 1);
        }
    }
    let Some(new_index) = new_index else {
        return;
    };
    let new_hash = hash_of(&rss[new_index]).to_string();

    // The pod restarter runs before any scaling, as in Argo.
    let restart = restart_pods(world, st, &ro, &strategy, &rss, now);
    if let Some(at) = restart.wake_at {
        st.timers.set(target.clone(), at, restart.blocking);
    }
    if strategy.is_canary() && restart.restarted > 0 {
        // Availability counts no longer include the evicted pods: Argo ends
        // the pass here and scales nothing until the next one.
        return;
    }

    let mut status = ro
        .get("status")
        .cloned()
        .filter(Value::is_object)
        .unwrap_or_else(|| json!({}));
    // A new template starts the steps again (resetRolloutStatus).
    let template_changed = str_at(&ro, "/status/currentPodHash") != Some(new_hash.as_str());
    if template_changed {
        if let Some(map) = status.as_object_mut() {
            map.remove("pauseConditions");
            map.remove("controllerPause");
            map.remove("currentStepIndex");
        }
    }
    let paused = bool_at(&ro, "/spec/paused");
    let mut promote = stable_hash.is_empty();

    match &strategy {
        Strategy::Canary {
            steps,
            max_surge,
            max_unavailable,
        } => {
            let stable_index = rss.iter().position(|rs| hash_of(rs) == stable_hash);
            let updating = !stable_hash.is_empty() && stable_index != Some(new_index);
            let mut step = if steps.is_empty() {
                0
            } else {
                i64_at(&status, "/currentStepIndex")
                    .unwrap_or(0)
                    .clamp(0, steps.len() as i64)
            };
            let weight = if updating && !steps.is_empty() {
                current_weight(steps, step)
            } else {
                100
            };
            let canary_target = (weight * replicas + 99) / 100;
            let stable_target = if updating {
                replicas - weight * replicas / 100
            } else {
                0
            };
            scale_toward(
                world,
                &ro,
                &mut rss,
                new_index,
                stable_index.filter(|_| updating),
                (canary_target, stable_target),
                (replicas, *max_surge, *max_unavailable),
                now,
            );
            if updating && !paused && (step as usize) < steps.len() {
                step = advance_steps(
                    &mut status,
                    steps,
                    step,
                    &rss[new_index],
                    replicas,
                    &target,
                    st,
                    now,
                );
            }
            if !steps.is_empty() {
                status["currentStepIndex"] = json!(step);
            }
            // shouldFullPromote: all steps done and the canary fully available.
            if updating
                && (steps.is_empty() || step as usize == steps.len())
                && status_count(&rss[new_index], "availableReplicas") >= replicas
            {
                promote = true;
            }
        }
        Strategy::BlueGreen {
            active_service,
            preview_service,
            auto_promotion,
            scale_down_delay,
            ..
        } => {
            let active_hash = selector_hash(world, &key.namespace, active_service);
            let first = stable_hash.is_empty() || active_hash.is_none();
            // The new ReplicaSet always runs at full scale.
            if spec_replicas(&rss[new_index]) != replicas {
                if let Some(rs) = scale(world, &ro, &rss[new_index], replicas, now) {
                    rss[new_index] = rs;
                }
            }
            if let Some(preview) = preview_service {
                set_selector_hash(world, &key.namespace, preview, &new_hash);
                status["blueGreen"]["previewSelector"] = json!(new_hash);
            }
            let new_available = status_count(&rss[new_index], "availableReplicas") >= replicas;
            let switch = first
                || (active_hash.as_deref() != Some(new_hash.as_str())
                    && new_available
                    && !paused
                    && (*auto_promotion || pause_cleared(&ro)));
            if active_hash.as_deref() != Some(new_hash.as_str()) && new_available && !switch {
                add_pause(&mut status, "BlueGreenPause", now);
            }
            let active_now = if switch {
                set_selector_hash(world, &key.namespace, active_service, &new_hash);
                if let Some(map) = status.as_object_mut() {
                    map.remove("pauseConditions");
                    map.remove("controllerPause");
                }
                promote = true;
                new_hash.clone()
            } else {
                active_hash.unwrap_or_default()
            };
            status["blueGreen"]["activeSelector"] = json!(active_now);
            scale_down_old_blue_green(
                world,
                st,
                &ro,
                &mut rss,
                (&active_now, &new_hash),
                *scale_down_delay,
                &target,
                now,
            );
        }
    }

    if promote {
        if str_at(&status, "/stableRS") != Some(new_hash.as_str()) {
            let revision = revision_of(&rss[new_index]);
            events::record(
                world,
                &ro,
                "Normal",
                "RolloutCompleted",
                &format!(
                    "Rollout completed update to revision {revision} ({new_hash}): Completed all steps"
                ),
                COMPONENT,
                now,
            );
        }
        status["stableRS"] = json!(new_hash);
        if let Strategy::Canary { steps, .. } = &strategy {
            if !steps.is_empty() {
                status["currentStepIndex"] = json!(steps.len());
            }
        }
    }
    // A canary's old ReplicaSets go once the new one is stable.
    if strategy.is_canary() && str_at(&status, "/stableRS") == Some(new_hash.as_str()) {
        for (i, rs) in rss.iter_mut().enumerate() {
            if i != new_index && spec_replicas(rs) != 0 {
                if let Some(scaled) = scale(world, &ro, rs, 0, now) {
                    *rs = scaled;
                }
            }
        }
        if spec_replicas(&rss[new_index]) != replicas {
            if let Some(rs) = scale(world, &ro, &rss[new_index], replicas, now) {
                rss[new_index] = rs;
            }
        }
    }

    if restart.finished {
        if let Some(at) = ro.at("/spec/restartAt") {
            status["restartedAt"] = at.clone();
        }
    }
    let status = finish_status(&ro, &strategy, status, &rss, new_index, &resolved, now);
    let healthy = str_at(&status, "/phase") == Some("Healthy");
    util::write_status(world, kinds::rollouts(), &ro, status);

    // workloadRef.scaleDown: onsuccess scales the Deployment to zero once
    // the first revision is Healthy.
    if let Some(deployment) = referenced {
        let scale_down = str_at(&ro, "/spec/workloadRef/scaleDown").unwrap_or("never");
        if scale_down == "onsuccess"
            && healthy
            && revision_of(&rss[new_index]) == 1
            && i64_at(&deployment, "/spec/replicas").unwrap_or(1) != 0
        {
            let mut next = (*deployment).clone();
            next["spec"]["replicas"] = json!(0);
            util::write_object(world, kinds::deployments(), next);
        }
    }
}

/// The weight of the latest `setWeight` step up to `step` (100 once every
/// step is done; 0 before the first): `GetCurrentSetWeight`.
fn current_weight(steps: &[Value], step: i64) -> i64 {
    if step as usize >= steps.len() {
        return 100;
    }
    steps[..=step as usize]
        .iter()
        .rev()
        .find_map(|s| i64_at(s, "/setWeight"))
        .unwrap_or(0)
        .clamp(0, 100)
}

/// Runs the steps from `step` as far as they go now; returns the step the
/// Rollout stands at.
#[allow(clippy::too_many_arguments)]
fn advance_steps(
    status: &mut Value,
    steps: &[Value],
    mut step: i64,
    canary: &Value,
    replicas: i64,
    target: &Target,
    st: &mut ControllerState,
    now: DateTime<Utc>,
) -> i64 {
    while (step as usize) < steps.len() {
        let current = &steps[step as usize];
        if let Some(weight) = i64_at(current, "/setWeight") {
            // Done once the canary runs its share, available.
            let wanted = (weight.clamp(0, 100) * replicas + 99) / 100;
            if status_count(canary, "availableReplicas") < wanted || spec_replicas(canary) < wanted
            {
                return step;
            }
        } else if let Some(pause) = current.get("pause") {
            let started = status
                .at("/pauseConditions")
                .and_then(Value::as_array)
                .and_then(|cs| {
                    cs.iter()
                        .find(|c| str_at(c, "/reason") == Some("CanaryPauseStep"))
                })
                .and_then(|c| str_at(c, "/startTime"))
                .and_then(parse_time);
            match pause.get("duration").and_then(|d| match d {
                Value::Number(n) => n.as_i64().map(|s| Duration::from_secs(s.max(0) as u64)),
                Value::String(s) => util::parse_duration(s),
                _ => None,
            }) {
                None => {
                    // Indefinite: waits until someone clears the condition
                    // (`kubectl argo rollouts promote`).
                    if started.is_none() && !bool_at(status, "/controllerPause") {
                        add_pause(status, "CanaryPauseStep", now);
                        return step;
                    }
                    if started.is_some() {
                        return step;
                    }
                    status["controllerPause"] = json!(false);
                }
                Some(duration) => {
                    let Some(since) = started else {
                        add_pause(status, "CanaryPauseStep", now);
                        st.timers
                            .set(target.clone(), util::add(now, duration), true);
                        return step;
                    };
                    let due = util::add(since, duration);
                    if due > now {
                        st.timers.set(target.clone(), due, true);
                        return step;
                    }
                    if let Some(map) = status.as_object_mut() {
                        map.remove("pauseConditions");
                        map.insert("controllerPause".into(), json!(false));
                    }
                }
            }
        }
        step += 1;
    }
    step
}

fn add_pause(status: &mut Value, reason: &str, now: DateTime<Utc>) {
    let exists = status
        .at("/pauseConditions")
        .and_then(Value::as_array)
        .is_some_and(|cs| cs.iter().any(|c| str_at(c, "/reason") == Some(reason)));
    if !exists {
        status["pauseConditions"] = json!([{"reason": reason, "startTime": fmt_time(now)}]);
        status["controllerPause"] = json!(true);
    }
}

/// A controller pause someone lifted: `controllerPause` still set, the
/// conditions cleared (`IsUnpausing`).
fn pause_cleared(ro: &Value) -> bool {
    bool_at(ro, "/status/controllerPause")
        && ro
            .at("/status/pauseConditions")
            .and_then(Value::as_array)
            .is_none_or(Vec::is_empty)
}

/// Moves the new ReplicaSet toward `canary` pods and the stable one toward
/// `stable` (others to zero), within `replicas + maxSurge` pods in all and
/// `replicas - maxUnavailable` available.
#[allow(clippy::too_many_arguments)]
fn scale_toward(
    world: &mut World,
    ro: &Value,
    rss: &mut [Obj],
    new_index: usize,
    stable_index: Option<usize>,
    (canary, stable): (i64, i64),
    (replicas, max_surge, max_unavailable): (i64, i64, i64),
    now: DateTime<Utc>,
) {
    let total: i64 = rss.iter().map(|rs| spec_replicas(rs)).sum();
    let current = spec_replicas(&rss[new_index]);
    if current < canary {
        let room = (replicas + max_surge - total).max(0);
        let wanted = (current + room).min(canary);
        if wanted != current {
            if let Some(rs) = scale(world, ro, &rss[new_index], wanted, now) {
                rss[new_index] = rs;
            }
        }
    } else if current > canary {
        if let Some(rs) = scale(world, ro, &rss[new_index], canary, now) {
            rss[new_index] = rs;
        }
    }
    let available: i64 = rss
        .iter()
        .map(|rs| status_count(rs, "availableReplicas"))
        .sum();
    let mut may_remove = (available - (replicas - max_unavailable)).max(0);
    for (i, rs) in rss.iter_mut().enumerate() {
        if i == new_index {
            continue;
        }
        let want = if Some(i) == stable_index { stable } else { 0 };
        let have = spec_replicas(rs);
        if have <= want {
            continue;
        }
        // Pods that are not available serve nothing: they go first and
        // free.
        let unavailable = (have - status_count(rs, "availableReplicas")).max(0);
        let down = (have - want).min(unavailable + may_remove);
        if down <= 0 {
            continue;
        }
        may_remove -= (down - unavailable).max(0);
        if let Some(scaled) = scale(world, ro, rs, have - down, now) {
            *rs = scaled;
        }
    }
}

/// Blue-green: ReplicaSets other than the active one are scaled down once
/// their `scale-down-deadline` has passed (set when they stop being active).
#[allow(clippy::too_many_arguments)]
fn scale_down_old_blue_green(
    world: &mut World,
    st: &mut ControllerState,
    ro: &Value,
    rss: &mut [Obj],
    (active, new_hash): (&str, &str),
    delay: i64,
    target: &Target,
    now: DateTime<Utc>,
) {
    for rs in rss.iter_mut() {
        let hash = hash_of(rs).to_string();
        if hash == active || hash == new_hash || spec_replicas(rs) == 0 {
            continue;
        }
        let deadline = annotation(rs, SCALE_DOWN_DEADLINE).and_then(parse_time);
        match deadline {
            None => {
                let at = now + chrono::Duration::seconds(delay);
                let mut next = (**rs).clone();
                util::insert_str(
                    &mut next["metadata"],
                    "annotations",
                    SCALE_DOWN_DEADLINE,
                    &fmt_time(at),
                );
                if let Some(written) = util::write_object(world, kinds::replicasets(), next) {
                    *rs = written;
                }
                st.timers.set(target.clone(), at, true);
            }
            Some(at) if at > now => st.timers.set(target.clone(), at, true),
            Some(_) => {
                if let Some(scaled) = scale(world, ro, rs, 0, now) {
                    *rs = scaled;
                }
            }
        }
    }
}

/// The `rollouts-pod-template-hash` a Service's selector holds.
fn selector_hash(world: &World, namespace: &str, service: &str) -> Option<String> {
    world
        .store
        .get(kinds::services(), namespace, service)?
        .at("/spec/selector")?
        .get(HASH_LABEL)?
        .as_str()
        .map(str::to_string)
}

/// Points a Service's selector at one ReplicaSet (`rollout/service.go`).
fn set_selector_hash(world: &mut World, namespace: &str, service: &str, hash: &str) {
    let Some(svc) = world.store.get(kinds::services(), namespace, service) else {
        return;
    };
    if svc.at("/spec/selector").and_then(|s| s.get(HASH_LABEL)) == Some(&json!(hash)) {
        return;
    }
    let mut next = (*svc).clone();
    util::insert_str(&mut next["spec"], "selector", HASH_LABEL, hash);
    util::write_object(world, kinds::services(), next);
}

fn create_replica_set(
    world: &mut World,
    ro: &Value,
    resolved: &Resolved,
    revision: i64,
    replicas: i64,
    now: DateTime<Utc>,
) -> Option<Obj> {
    let template = without_hash(&resolved.template);
    let hash = rollout_hash(&resolved.template, i64_at(ro, "/status/collisionCount"));
    let name = format!("{}-{hash}", name_of(ro));
    let mut template = template;
    util::insert_str(&mut template["metadata"], "labels", HASH_LABEL, &hash);
    let mut selector = resolved.selector.clone();
    util::insert_str(&mut selector, "matchLabels", HASH_LABEL, &hash);
    let mut metadata = json!({
        "name": name,
        "namespace": util::namespace_of(ro),
        "labels": template.at("/metadata/labels").cloned().unwrap_or_else(|| json!({})),
        "ownerReferences": [util::controller_ref(ro)],
    });
    util::insert_str(
        &mut metadata,
        "annotations",
        REVISION,
        &revision.to_string(),
    );
    let desired = i64_at(ro, "/spec/replicas").unwrap_or(1);
    util::insert_str(
        &mut metadata,
        "annotations",
        DESIRED_REPLICAS,
        &desired.to_string(),
    );
    let mut spec = json!({"replicas": replicas, "selector": selector, "template": template});
    if let Some(seconds) = i64_at(ro, "/spec/minReadySeconds").filter(|s| *s > 0) {
        spec["minReadySeconds"] = json!(seconds);
    }
    let rs =
        json!({"apiVersion": "apps/v1", "kind": "ReplicaSet", "metadata": metadata, "spec": spec});
    match world.create(kinds::replicasets(), rs, &WriteOptions::default()) {
        Ok(rs) => {
            events::record(
                world,
                ro,
                "Normal",
                "NewReplicaSetCreated",
                &format!("Created ReplicaSet {name} (revision {revision})"),
                COMPONENT,
                now,
            );
            Some(rs)
        }
        Err(e) => {
            tracing::debug!(rollout = name_of(ro), error = %e, "creating a ReplicaSet failed");
            None
        }
    }
}

fn scale(
    world: &mut World,
    ro: &Value,
    rs: &Obj,
    replicas: i64,
    now: DateTime<Utc>,
) -> Option<Obj> {
    let before = spec_replicas(rs);
    let mut next = (**rs).clone();
    next["spec"]["replicas"] = json!(replicas);
    let written = util::write_object(world, kinds::replicasets(), next)?;
    if before != replicas {
        events::record(
            world,
            ro,
            "Normal",
            "ScalingReplicaSet",
            &format!(
                "Scaled {} ReplicaSet {} (revision {}) from {before} to {replicas}",
                if replicas > before { "up" } else { "down" },
                name_of(rs),
                revision_of(rs)
            ),
            COMPONENT,
            now,
        );
    }
    Some(written)
}

/// What the pod restarter did in one pass.
#[derive(Debug, Default)]
struct Restart {
    restarted: i64,
    /// Every pod is newer than `spec.restartAt`: `status.restartedAt` may
    /// be set.
    finished: bool,
    /// When to look again, and whether that keeps the cluster from
    /// counting as settled.
    wake_at: Option<DateTime<Utc>>,
    blocking: bool,
}

/// `RolloutPodRestarter.Reconcile` of `rollout/restart.go`.
fn restart_pods(
    world: &mut World,
    st: &ControllerState,
    ro: &Value,
    strategy: &Strategy,
    rss: &[Obj],
    now: DateTime<Utc>,
) -> Restart {
    let Some(restart_at) = str_at(ro, "/spec/restartAt").and_then(parse_time) else {
        return Restart::default();
    };
    let restarted_at = str_at(ro, "/status/restartedAt").and_then(parse_time);
    if restarted_at == Some(restart_at) {
        return Restart::default();
    }
    // NeedsRestart: only once the time has come.
    if now <= restart_at {
        return Restart {
            wake_at: Some(restart_at + chrono::Duration::milliseconds(1)),
            blocking: true,
            ..Restart::default()
        };
    }
    let replicas = i64_at(ro, "/spec/replicas").unwrap_or(1).max(0);
    let min_ready = i64_at(ro, "/spec/minReadySeconds").unwrap_or(0);
    let total: i64 = rss.iter().map(|rs| spec_replicas(rs)).sum();
    // Pods of the Rollout's ReplicaSets, in the order a pod LIST gives them.
    let mut rollout_pods: Vec<Obj> = rss
        .iter()
        .flat_map(|rs| st.pods_by_owner.dependents(util::uid_of(rs)))
        .filter_map(|k| util::get(world, kinds::pods(), &k))
        .filter(|p| !pods::is_terminal(p))
        .collect();
    rollout_pods.sort_by(|a, b| name_of(a).cmp(name_of(b)));
    let available = rollout_pods
        .iter()
        .filter(|p| pods::is_available(p, min_ready, now) && !is_being_deleted(p))
        .count() as i64;
    // maxUnavailable may be 0; at least one pod is always restarted.
    let concurrent = strategy.max_unavailable(replicas).max(1);
    let effective_min_available = replicas.max(total) - concurrent;
    let mut can_restart = available - effective_min_available;

    let mut needs = 0;
    let mut restarted = 0;
    for pod in &rollout_pods {
        let created = str_at(pod, "/metadata/creationTimestamp").and_then(parse_time);
        if created.is_some_and(|c| c >= restart_at) {
            continue;
        }
        needs += 1;
        if can_restart <= 0 || is_being_deleted(pod) {
            continue;
        }
        match crate::eviction::evict(
            world,
            util::namespace_of(pod),
            name_of(pod),
            &Value::Null,
            &WriteOptions::default(),
        ) {
            Ok(()) => {}
            // A PodDisruptionBudget said no (429): the next check tries again.
            Err(e) => {
                tracing::debug!(pod = name_of(pod), error = %e, "evicting failed");
                continue;
            }
        }
        can_restart -= 1;
        restarted += 1;
    }
    if restarted > 0 {
        events::record(
            world,
            ro,
            "Normal",
            "RolloutRestarted",
            &format!(
                "Restarted {restarted} pod(s) older than {}",
                fmt_time(restart_at)
            ),
            COMPONENT,
            now,
        );
    }
    let remaining = needs - restarted;
    Restart {
        restarted,
        finished: remaining == 0,
        wake_at: (remaining != 0).then(|| util::add(now, RESTART_CHECK)),
        blocking: false,
    }
}

/// The counts, conditions and phase a pass ends with (`persistRolloutStatus`).
fn finish_status(
    ro: &Value,
    strategy: &Strategy,
    mut status: Value,
    rss: &[Obj],
    new_index: usize,
    resolved: &Resolved,
    now: DateTime<Utc>,
) -> Value {
    let replicas = i64_at(ro, "/spec/replicas").unwrap_or(1).max(0);
    let sum = |field: &str| rss.iter().map(|rs| status_count(rs, field)).sum::<i64>();
    let new_hash = hash_of(&rss[new_index]).to_string();
    let generation = util::generation_of(ro);
    let map = status.as_object_mut().expect("status is an object");
    for field in [
        "replicas",
        "updatedReplicas",
        "readyReplicas",
        "availableReplicas",
        "HPAReplicas",
        "phase",
        "message",
    ] {
        map.remove(field);
    }
    map.insert("observedGeneration".into(), json!(generation.to_string()));
    match annotation(ro, WORKLOAD_GENERATION) {
        Some(observed) if ro.at("/spec/workloadRef").is_some() => {
            map.insert("workloadObservedGeneration".into(), json!(observed));
        }
        _ => {
            map.remove("workloadObservedGeneration");
        }
    }
    map.insert("currentPodHash".into(), json!(new_hash));
    let selector_text = |selector: &Value| crate::selectors::format_label_selector(selector);
    let (available, ready, hpa, selector) = match strategy {
        Strategy::Canary { .. } => (
            sum("availableReplicas"),
            sum("readyReplicas"),
            sum("replicas"),
            selector_text(&resolved.selector),
        ),
        Strategy::BlueGreen { .. } => {
            let active = str_at(&status, "/blueGreen/activeSelector").unwrap_or("");
            match rss
                .iter()
                .find(|rs| hash_of(rs) == active && !active.is_empty())
            {
                Some(rs) => (
                    status_count(rs, "availableReplicas"),
                    status_count(rs, "readyReplicas"),
                    status_count(rs, "replicas"),
                    rs.at("/spec/selector")
                        .map(selector_text)
                        .unwrap_or_default(),
                ),
                None => (
                    sum("availableReplicas"),
                    sum("readyReplicas"),
                    sum("replicas"),
                    selector_text(&resolved.selector),
                ),
            }
        }
    };
    let map = status.as_object_mut().expect("status is an object");
    map.extend(util::counts(&[
        ("replicas", sum("replicas")),
        ("updatedReplicas", status_count(&rss[new_index], "replicas")),
        ("readyReplicas", ready),
        ("availableReplicas", available),
        ("HPAReplicas", hpa),
    ]));
    map.insert("selector".into(), json!(selector));
    if let Strategy::Canary { .. } = strategy {
        map.remove("blueGreen");
        if !map.contains_key("canary") {
            map.insert("canary".into(), json!({}));
        }
    } else {
        map.remove("canary");
    }
    let updated = status_count(&rss[new_index], "replicas");
    let total = sum("replicas");
    let stable = str_at(&status, "/stableRS").unwrap_or("").to_string();
    let paused = bool_at(ro, "/spec/paused")
        || status
            .at("/pauseConditions")
            .and_then(Value::as_array)
            .is_some_and(|c| !c.is_empty());
    // RolloutHealthy (utils/conditions): as Argo judges the new status.
    let completed_strategy = match strategy {
        Strategy::Canary { steps, .. } => {
            let executed = steps.is_empty()
                || i64_at(&status, "/currentStepIndex") == Some(steps.len() as i64);
            executed && stable == new_hash && total == replicas
        }
        Strategy::BlueGreen {
            preview_service, ..
        } => {
            str_at(&status, "/blueGreen/activeSelector") == Some(new_hash.as_str())
                && (preview_service.is_none()
                    || str_at(&status, "/blueGreen/previewSelector") == Some(new_hash.as_str()))
        }
    };
    let healthy = updated == replicas && available == replicas && completed_strategy;
    let now_s = fmt_time(now);
    let mut conditions = conditions_of(&status);
    util::remove_condition(&mut conditions, "InvalidSpec");
    set_condition(
        &mut conditions,
        "Progressing",
        "True",
        if healthy {
            "NewReplicaSetAvailable"
        } else {
            "ReplicaSetUpdated"
        },
        &format!(
            "ReplicaSet \"{}\" {}",
            name_of(&rss[new_index]),
            if healthy {
                "has successfully progressed."
            } else {
                "is progressing."
            }
        ),
        &now_s,
        true,
    );
    let minimum = match strategy {
        Strategy::Canary { .. } => available >= replicas,
        Strategy::BlueGreen { .. } => available >= replicas && !paused,
    };
    set_condition(
        &mut conditions,
        "Available",
        if minimum { "True" } else { "False" },
        "AvailableReason",
        if minimum {
            "Rollout has minimum availability"
        } else {
            "Rollout does not have minimum availability"
        },
        &now_s,
        true,
    );
    set_condition(
        &mut conditions,
        "Healthy",
        if healthy && !paused { "True" } else { "False" },
        "RolloutHealthy",
        if healthy && !paused {
            "Rollout is healthy"
        } else {
            "Rollout is not healthy"
        },
        &now_s,
        true,
    );
    let completed = !stable.is_empty() && stable == new_hash;
    set_condition(
        &mut conditions,
        "Completed",
        if completed { "True" } else { "False" },
        "RolloutCompleted",
        "RolloutCompleted",
        &now_s,
        true,
    );
    status["conditions"] = json!(conditions);
    let (phase, message) = phase(ro, strategy, &status, replicas);
    status["phase"] = json!(phase);
    if !message.is_empty() {
        status["message"] = json!(message);
    }
    status
}

/// `CalculateRolloutPhase` of `utils/rollout/rolloututil.go`.
fn phase(ro: &Value, strategy: &Strategy, status: &Value, replicas: i64) -> (&'static str, String) {
    for c in status
        .at("/conditions")
        .and_then(Value::as_array)
        .into_iter()
        .flatten()
    {
        if str_at(c, "/type") == Some("InvalidSpec") {
            return (
                "Degraded",
                format!("InvalidSpec: {}", str_at(c, "/message").unwrap_or("")),
            );
        }
        if let Some(reason @ ("RolloutAborted" | "ProgressDeadlineExceeded")) = str_at(c, "/reason")
        {
            return (
                "Degraded",
                format!("{reason}: {}", str_at(c, "/message").unwrap_or("")),
            );
        }
    }
    if bool_at(ro, "/spec/paused") {
        return ("Paused", "manually paused".into());
    }
    if let Some(reason) = status
        .at("/pauseConditions")
        .and_then(Value::as_array)
        .and_then(|c| c.first())
        .and_then(|c| str_at(c, "/reason"))
    {
        return ("Paused", reason.to_string());
    }
    let restart_at = str_at(ro, "/spec/restartAt").and_then(parse_time);
    let restarted_at = str_at(status, "/restartedAt").and_then(parse_time);
    if restart_at.is_some() && restart_at != restarted_at {
        return ("Progressing", "rollout is restarting".into());
    }
    let count = |f: &str| i64_at(status, &format!("/{f}")).unwrap_or(0);
    if count("updatedReplicas") < replicas {
        return ("Progressing", "more replicas need to be updated".into());
    }
    if count("availableReplicas") < count("updatedReplicas") {
        return (
            "Progressing",
            "updated replicas are still becoming available".into(),
        );
    }
    let current = str_at(status, "/currentPodHash").unwrap_or("");
    let stable = str_at(status, "/stableRS").unwrap_or("");
    match strategy {
        Strategy::BlueGreen { .. } => {
            let active = str_at(status, "/blueGreen/activeSelector").unwrap_or("");
            if active.is_empty() || active != current {
                return ("Progressing", "active service cutover pending".into());
            }
            if stable.is_empty() || stable != current {
                return (
                    "Progressing",
                    "waiting for post-promotion verification to complete".into(),
                );
            }
        }
        Strategy::Canary { .. } => {
            if count("replicas") > count("updatedReplicas") {
                return ("Progressing", "old replicas are pending termination".into());
            }
            if stable.is_empty() || stable != current {
                return ("Progressing", "waiting for all steps to complete".into());
            }
        }
    }
    ("Healthy", String::new())
}

/// A spec the controller cannot run: the `InvalidSpec` condition and the
/// Degraded phase, nothing scaled.
fn invalid_spec(world: &mut World, ro: &Value, message: &str, now: DateTime<Utc>) {
    let mut status = ro
        .get("status")
        .cloned()
        .filter(Value::is_object)
        .unwrap_or_else(|| json!({}));
    let mut conditions = conditions_of(ro);
    set_condition(
        &mut conditions,
        "InvalidSpec",
        "True",
        "InvalidSpec",
        message,
        &fmt_time(now),
        true,
    );
    status["conditions"] = json!(conditions);
    status["observedGeneration"] = json!(util::generation_of(ro).to_string());
    status["phase"] = json!("Degraded");
    status["message"] = json!(format!("InvalidSpec: {message}"));
    util::write_status(world, kinds::rollouts(), ro, status);
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::controllers::{is_settled, reconcile, settle};
    use crate::store::EventType;
    use crate::world::SimConfig;

    fn world() -> World {
        World::new(SimConfig {
            clock_speed: 0.0,
            ..SimConfig::default()
        })
    }

    fn create(w: &mut World, resource: &'static crate::resources::Resource, obj: Value) -> Obj {
        w.create(resource, obj, &WriteOptions::default())
            .unwrap_or_else(|e| panic!("creating a {}: {e}", resource.kind))
    }

    fn get(w: &World, resource: &crate::resources::Resource, name: &str) -> Obj {
        w.store
            .get(resource, "shop", name)
            .unwrap_or_else(|| panic!("{} shop/{name} exists", resource.kind))
    }

    fn modify(
        w: &mut World,
        resource: &'static crate::resources::Resource,
        name: &str,
        change: impl FnOnce(&mut Value),
    ) {
        let mut obj = (*get(w, resource, name)).clone();
        change(&mut obj);
        w.update(resource, obj, &WriteOptions::default())
            .expect("update");
    }

    fn shop() -> World {
        let mut w = world();
        create(
            &mut w,
            kinds::namespaces(),
            json!({"metadata": {"name": "shop"}}),
        );
        w
    }

    fn template(app: &str, image: &str) -> Value {
        json!({
            "metadata": {"labels": {"app": app}},
            "spec": {"containers": [{"name": "app", "image": image}]},
        })
    }

    fn rollout(name: &str, replicas: i64, strategy: Value) -> Value {
        json!({
            "apiVersion": "argoproj.io/v1alpha1",
            "kind": "Rollout",
            "metadata": {"name": name, "namespace": "shop"},
            "spec": {
                "replicas": replicas,
                "selector": {"matchLabels": {"app": name}},
                "template": template(name, "example.com/app:1"),
                "strategy": strategy,
            },
        })
    }

    fn pdb(w: &mut World, name: &str, app: &str, min_available: i64) {
        create(
            w,
            kinds::pdbs(),
            json!({
                "apiVersion": "policy/v1",
                "kind": "PodDisruptionBudget",
                "metadata": {"name": name, "namespace": "shop"},
                "spec": {"minAvailable": min_available, "selector": {"matchLabels": {"app": app}}},
            }),
        );
    }

    fn pods_of(w: &World, app: &str) -> Vec<Obj> {
        w.store
            .list(kinds::pods(), Some("shop"))
            .filter(|p| util::label(p, "app") == Some(app) && pods::is_active(p))
            .collect()
    }

    /// Sets `spec.restartAt` one second past the newest pod, as a client
    /// does with its clock.
    fn restart_at(w: &mut World, name: &str) -> String {
        let at = fmt_time(w.clock.now() + chrono::Duration::seconds(1));
        let value = at.clone();
        modify(w, kinds::rollouts(), name, |ro| {
            ro["spec"]["restartAt"] = json!(value)
        });
        at
    }

    fn step_until_settled(w: &mut World) {
        for _ in 0..4000 {
            reconcile(w);
            if is_settled(w) {
                return;
            }
            w.clock.advance(Duration::from_millis(250));
        }
        panic!("did not settle");
    }

    /// The most pods of `app` that were not Ready at once, replaying every
    /// pod event after `since`.
    fn most_unready(w: &World, app: &str, since: u64, replicas: usize) -> usize {
        let mut ready: std::collections::BTreeMap<String, bool> = Default::default();
        let mut worst = 0;
        for e in w
            .store
            .events_since(kinds::pods(), 0)
            .expect("history kept")
        {
            let pod = e.value();
            if util::label(&pod, "app") != Some(app) {
                continue;
            }
            match e.event_type {
                EventType::Deleted => {
                    ready.remove(&e.key.name);
                }
                _ => {
                    ready.insert(e.key.name.clone(), pods::is_ready(&pod));
                }
            }
            if e.resource_version > since {
                let up = ready.values().filter(|r| **r).count();
                worst = worst.max(replicas.saturating_sub(up));
            }
        }
        worst
    }

    #[test]
    fn a_rollout_gets_a_hashed_replica_set_and_becomes_healthy_with_argos_status() {
        let mut w = shop();
        create(
            &mut w,
            kinds::rollouts(),
            rollout("web", 2, json!({"canary": {}})),
        );
        assert!(settle(&mut w));
        let ro = get(&w, kinds::rollouts(), "web");
        let hash = ro["status"]["currentPodHash"].as_str().expect("a pod hash");
        let rs = get(&w, kinds::replicasets(), &format!("web-{hash}"));
        assert_eq!(
            util::controller_of(&rs).map(|(k, n, _)| (k, n)),
            Some(("Rollout", "web"))
        );
        assert_eq!(rs["spec"]["selector"]["matchLabels"][HASH_LABEL], hash);
        assert_eq!(annotation(&rs, REVISION), Some("1"));
        let pods = pods_of(&w, "web");
        assert_eq!(pods.len(), 2);
        assert!(
            pods.iter()
                .all(|p| util::label(p, HASH_LABEL) == Some(hash))
        );
        // Argo writes observedGeneration as a string.
        assert_eq!(ro["status"]["observedGeneration"], json!("1"));
        assert_eq!(
            ro["status"]["phase"], "Healthy",
            "{:#} {:#}",
            ro["status"], rs["status"]
        );
        assert_eq!(ro["status"]["stableRS"], hash);
        for field in [
            "replicas",
            "updatedReplicas",
            "readyReplicas",
            "availableReplicas",
        ] {
            assert_eq!(ro["status"][field], 2, "{field}");
        }
        assert_eq!(ro["status"]["selector"], "app=web");
        let healthy = util::condition(&util::conditions_of(&ro), "Healthy").cloned();
        assert_eq!(healthy.map(|c| c["status"].clone()), Some(json!("True")));
    }

    #[test]
    fn a_restart_evicts_the_pods_older_than_restart_at_one_at_a_time_then_records_it() {
        let mut w = shop();
        create(
            &mut w,
            kinds::rollouts(),
            rollout("web", 3, json!({"canary": {}})),
        );
        pdb(&mut w, "web", "web", 2);
        assert!(settle(&mut w));
        let before: Vec<String> = pods_of(&w, "web")
            .iter()
            .map(|p| name_of(p).to_string())
            .collect();
        let since = w.store.resource_version();
        let at = restart_at(&mut w, "web");
        let ro = get(&w, kinds::rollouts(), "web");
        assert_eq!(
            ro["metadata"]["generation"], 2,
            "restartAt is spec: a new generation"
        );
        reconcile(&mut w);
        let ro = get(&w, kinds::rollouts(), "web");
        assert_eq!(ro["status"]["phase"], "Progressing");
        assert_eq!(ro["status"]["message"], "rollout is restarting");
        assert!(
            pods_of(&w, "web").len() == 3,
            "nothing evicted before restartAt"
        );

        step_until_settled(&mut w);
        let pods = pods_of(&w, "web");
        assert_eq!(pods.len(), 3);
        assert!(
            pods.iter()
                .all(|p| !before.contains(&name_of(p).to_string()))
        );
        assert!(pods.iter().all(|p| {
            str_at(p, "/metadata/creationTimestamp").and_then(parse_time) >= parse_time(&at)
        }));
        // maxUnavailable 25% of 3 rounds to 0, so one at a time; the PDB
        // (minAvailable 2) was never broken.
        assert_eq!(most_unready(&w, "web", since, 3), 1);
        let ro = get(&w, kinds::rollouts(), "web");
        assert_eq!(ro["status"]["restartedAt"], json!(at));
        assert_eq!(ro["status"]["phase"], "Healthy");
        assert_eq!(ro["status"]["observedGeneration"], json!("2"));
        let evicted = w
            .store
            .list(kinds::events(), Some("shop"))
            .filter(|e| e["reason"] == "RolloutRestarted")
            .count();
        assert!(evicted >= 1);
        let budget = get(&w, kinds::pdbs(), "web");
        assert_eq!(budget["status"].get("disruptedPods"), None, "{budget:#}");
    }

    #[test]
    fn a_budget_allowing_no_disruption_holds_the_restart_until_it_allows_one() {
        let mut w = shop();
        create(
            &mut w,
            kinds::rollouts(),
            rollout("web", 2, json!({"canary": {}})),
        );
        pdb(&mut w, "web", "web", 2);
        assert!(settle(&mut w));
        assert_eq!(
            get(&w, kinds::pdbs(), "web")["status"]["disruptionsAllowed"],
            0
        );
        let before: Vec<String> = pods_of(&w, "web")
            .iter()
            .map(|p| name_of(p).to_string())
            .collect();
        restart_at(&mut w, "web");
        w.clock.advance(Duration::from_secs(5));
        // The retry timer is not blocking: held by a budget, the cluster settles.
        assert!(settle(&mut w));
        let after: Vec<String> = pods_of(&w, "web")
            .iter()
            .map(|p| name_of(p).to_string())
            .collect();
        assert_eq!(before, after, "every eviction was refused");
        let ro = get(&w, kinds::rollouts(), "web");
        assert_eq!(ro["status"]["message"], "rollout is restarting");
        assert_eq!(ro["status"].get("restartedAt"), None);

        modify(&mut w, kinds::pdbs(), "web", |p| {
            p["spec"]["minAvailable"] = json!(1)
        });
        w.clock.advance(RESTART_CHECK);
        step_until_settled(&mut w);
        let ro = get(&w, kinds::rollouts(), "web");
        assert_eq!(ro["status"]["phase"], "Healthy");
        assert!(ro["status"]["restartedAt"].is_string());
    }

    #[test]
    fn a_single_replica_rollout_is_evicted_before_its_replacement_starts() {
        let mut w = shop();
        create(
            &mut w,
            kinds::rollouts(),
            rollout("solo", 1, json!({"canary": {}})),
        );
        assert!(settle(&mut w));
        let since = w.store.resource_version();
        restart_at(&mut w, "solo");
        step_until_settled(&mut w);
        assert_eq!(
            most_unready(&w, "solo", since, 1),
            1,
            "no Ready pod for a while"
        );
        assert_eq!(
            get(&w, kinds::rollouts(), "solo")["status"]["phase"],
            "Healthy"
        );
    }

    #[test]
    fn a_restart_at_in_the_future_waits_for_its_time() {
        let mut w = shop();
        create(
            &mut w,
            kinds::rollouts(),
            rollout("web", 2, json!({"canary": {}})),
        );
        assert!(settle(&mut w));
        let at = fmt_time(w.clock.now() + chrono::Duration::seconds(60));
        let value = at.clone();
        modify(&mut w, kinds::rollouts(), "web", |ro| {
            ro["spec"]["restartAt"] = json!(value)
        });
        let before: Vec<String> = pods_of(&w, "web")
            .iter()
            .map(|p| name_of(p).to_string())
            .collect();
        w.clock.advance(Duration::from_secs(30));
        reconcile(&mut w);
        let now: Vec<String> = pods_of(&w, "web")
            .iter()
            .map(|p| name_of(p).to_string())
            .collect();
        assert_eq!(before, now);
        assert!(settle(&mut w), "the timer at restartAt carries it through");
        assert_eq!(
            get(&w, kinds::rollouts(), "web")["status"]["restartedAt"],
            json!(at)
        );
    }

    #[test]
    fn a_workload_ref_takes_the_deployments_template_and_scales_it_down_on_success() {
        let mut w = shop();
        create(
            &mut w,
            kinds::deployments(),
            json!({
                "apiVersion": "apps/v1",
                "kind": "Deployment",
                "metadata": {"name": "api", "namespace": "shop"},
                "spec": {
                    "replicas": 2,
                    "selector": {"matchLabels": {"app": "api"}},
                    "template": template("api", "example.com/api:1"),
                },
            }),
        );
        create(
            &mut w,
            kinds::rollouts(),
            json!({
                "apiVersion": "argoproj.io/v1alpha1",
                "kind": "Rollout",
                "metadata": {"name": "api", "namespace": "shop"},
                "spec": {
                    "replicas": 2,
                    "workloadRef": {"apiVersion": "apps/v1", "kind": "Deployment", "name": "api", "scaleDown": "onsuccess"},
                    "strategy": {"canary": {}},
                },
            }),
        );
        assert!(settle(&mut w));
        let ro = get(&w, kinds::rollouts(), "api");
        assert_eq!(ro["status"]["phase"], "Healthy");
        // Scaling the Deployment down was its generation 2, which the
        // Rollout recorded as it does any change of its workload.
        assert_eq!(get(&w, kinds::deployments(), "api")["spec"]["replicas"], 0);
        assert_eq!(annotation(&ro, WORKLOAD_GENERATION), Some("2"));
        assert_eq!(ro["status"]["workloadObservedGeneration"], "2");
        let pods = pods_of(&w, "api");
        assert_eq!(pods.len(), 2);
        assert!(pods.iter().all(|p| {
            let (kind, name, _) = util::controller_of(p).expect("an owner");
            let rs = get(&w, kinds::replicasets(), name);
            kind == "ReplicaSet" && util::controller_of(&rs).map(|o| o.0) == Some("Rollout")
        }));

        // A new template in the Deployment is a new revision of the Rollout.
        modify(&mut w, kinds::deployments(), "api", |d| {
            d["spec"]["template"]["spec"]["containers"][0]["image"] = json!("example.com/api:2")
        });
        assert!(settle(&mut w));
        let ro = get(&w, kinds::rollouts(), "api");
        assert_eq!(annotation(&ro, WORKLOAD_GENERATION), Some("3"));
        assert_eq!(ro["status"]["phase"], "Healthy");
        let pods = pods_of(&w, "api");
        assert_eq!(pods.len(), 2);
        assert!(
            pods.iter()
                .all(|p| p["spec"]["containers"][0]["image"] == "example.com/api:2")
        );
    }

    #[test]
    fn a_canary_update_pauses_at_its_step_and_promotes_once_resumed() {
        let mut w = shop();
        create(
            &mut w,
            kinds::rollouts(),
            rollout(
                "web",
                2,
                json!({"canary": {"steps": [{"setWeight": 50}, {"pause": {}}]}}),
            ),
        );
        assert!(settle(&mut w));
        let stable = get(&w, kinds::rollouts(), "web")["status"]["stableRS"].clone();
        modify(&mut w, kinds::rollouts(), "web", |ro| {
            ro["spec"]["template"]["spec"]["containers"][0]["image"] = json!("example.com/app:2")
        });
        assert!(settle(&mut w));
        let ro = get(&w, kinds::rollouts(), "web");
        assert_eq!(ro["status"]["phase"], "Paused");
        assert_eq!(ro["status"]["message"], "CanaryPauseStep");
        assert_eq!(ro["status"]["currentStepIndex"], 1);
        assert_eq!(ro["status"]["stableRS"], stable);
        let images: Vec<Value> = pods_of(&w, "web")
            .iter()
            .map(|p| p["spec"]["containers"][0]["image"].clone())
            .collect();
        assert_eq!(
            images.iter().filter(|i| **i == "example.com/app:2").count(),
            1
        );
        assert_eq!(
            images.iter().filter(|i| **i == "example.com/app:1").count(),
            1
        );

        // `kubectl argo rollouts promote` clears the pause conditions.
        let mut status = ro["status"].clone();
        status.as_object_mut().unwrap().remove("pauseConditions");
        w.update_status(
            kinds::rollouts(),
            json!({"metadata": {"name": "web", "namespace": "shop"}, "status": status}),
            &WriteOptions::default(),
        )
        .expect("status write");
        assert!(settle(&mut w));
        let ro = get(&w, kinds::rollouts(), "web");
        assert_eq!(ro["status"]["phase"], "Healthy", "{:#}", ro["status"]);
        assert_eq!(ro["status"]["stableRS"], ro["status"]["currentPodHash"]);
        assert!(
            pods_of(&w, "web")
                .iter()
                .all(|p| p["spec"]["containers"][0]["image"] == "example.com/app:2")
        );
    }

    #[test]
    fn blue_green_switches_the_active_service_and_scales_the_old_set_down_after_the_delay() {
        let mut w = shop();
        create(
            &mut w,
            kinds::services(),
            json!({"apiVersion": "v1", "kind": "Service",
                   "metadata": {"name": "web-active", "namespace": "shop"},
                   "spec": {"selector": {"app": "web"}, "ports": [{"port": 80}]}}),
        );
        create(
            &mut w,
            kinds::rollouts(),
            rollout(
                "web",
                2,
                json!({"blueGreen": {"activeService": "web-active"}}),
            ),
        );
        assert!(settle(&mut w));
        let ro = get(&w, kinds::rollouts(), "web");
        let first = ro["status"]["currentPodHash"].clone();
        assert_eq!(ro["status"]["phase"], "Healthy", "{:#}", ro["status"]);
        assert_eq!(ro["status"]["blueGreen"]["activeSelector"], first);
        assert_eq!(
            get(&w, kinds::services(), "web-active")["spec"]["selector"][HASH_LABEL],
            first
        );

        // A restart works on blue-green too.
        let at = restart_at(&mut w, "web");
        step_until_settled(&mut w);
        assert_eq!(
            get(&w, kinds::rollouts(), "web")["status"]["restartedAt"],
            json!(at)
        );

        modify(&mut w, kinds::rollouts(), "web", |ro| {
            ro["spec"]["template"]["spec"]["containers"][0]["image"] = json!("example.com/app:2")
        });
        step_until_settled(&mut w);
        let ro = get(&w, kinds::rollouts(), "web");
        let second = ro["status"]["currentPodHash"].clone();
        assert_ne!(first, second);
        assert_eq!(ro["status"]["phase"], "Healthy");
        assert_eq!(
            get(&w, kinds::services(), "web-active")["spec"]["selector"][HASH_LABEL],
            second
        );
        let old = get(
            &w,
            kinds::replicasets(),
            &format!("web-{}", first.as_str().unwrap()),
        );
        assert_eq!(
            old["spec"]["replicas"], 0,
            "scaled down after scaleDownDelaySeconds"
        );
        assert!(annotation(&old, SCALE_DOWN_DEADLINE).is_some());
    }

    #[test]
    fn a_blue_green_rollout_without_its_active_service_is_invalid() {
        let mut w = shop();
        create(
            &mut w,
            kinds::rollouts(),
            rollout("web", 2, json!({"blueGreen": {"activeService": "missing"}})),
        );
        assert!(settle(&mut w));
        let ro = get(&w, kinds::rollouts(), "web");
        assert_eq!(ro["status"]["phase"], "Degraded");
        assert!(
            ro["status"]["message"]
                .as_str()
                .unwrap()
                .starts_with("InvalidSpec: "),
            "{:#}",
            ro["status"]
        );
        assert!(pods_of(&w, "web").is_empty());
    }

    #[test]
    fn an_eviction_spends_the_budget_at_once() {
        let mut w = shop();
        create(
            &mut w,
            kinds::rollouts(),
            rollout("web", 3, json!({"canary": {}})),
        );
        pdb(&mut w, "web", "web", 2);
        assert!(settle(&mut w));
        let names: Vec<String> = pods_of(&w, "web")
            .iter()
            .map(|p| name_of(p).to_string())
            .collect();
        let opts = WriteOptions::default();
        let evict = |w: &mut World, name: &str| {
            crate::eviction::evict(w, "shop", name, &Value::Null, &opts)
        };
        assert_eq!(evict(&mut w, &names[0]), Ok(()));
        // Before any controller pass, the budget already says no.
        let second = evict(&mut w, &names[1]).expect_err("the budget is spent");
        assert_eq!(second.code, 429, "{second:?}");
        let budget = get(&w, kinds::pdbs(), "web");
        assert_eq!(budget["status"]["disruptionsAllowed"], 0);
        assert!(budget["status"]["disruptedPods"][&names[0]].is_string());
    }

    #[test]
    fn a_cron_job_keeps_defaults_and_reports_the_jobs_it_owns() {
        let mut w = shop();
        let cron = create(
            &mut w,
            kinds::cronjobs(),
            json!({
                "apiVersion": "batch/v1",
                "kind": "CronJob",
                "metadata": {"name": "nightly", "namespace": "shop"},
                "spec": {
                    "schedule": "0 2 * * *",
                    "jobTemplate": {"spec": {"template": {"spec": {
                        "restartPolicy": "Never",
                        "containers": [{"name": "report", "image": "example.com/report:1"}],
                    }}}},
                },
            }),
        );
        assert_eq!(cron["spec"]["concurrencyPolicy"], "Allow");
        assert_eq!(cron["spec"]["suspend"], false);
        assert_eq!(cron["spec"]["successfulJobsHistoryLimit"], 3);
        assert_eq!(cron["spec"]["failedJobsHistoryLimit"], 1);
        assert_eq!(
            cron["spec"]["jobTemplate"]["spec"]["template"]["spec"]["terminationGracePeriodSeconds"],
            30
        );
        // A run, as the CronJob controller (or `kubectl create job --from`) makes it.
        create(
            &mut w,
            kinds::jobs(),
            json!({
                "apiVersion": "batch/v1",
                "kind": "Job",
                "metadata": {"name": "nightly-29000000", "namespace": "shop",
                             "annotations": {"mesh-sim.io/run-duration": "60s"},
                             "ownerReferences": [util::controller_ref(&cron)]},
                "spec": cron["spec"]["jobTemplate"]["spec"].clone(),
            }),
        );
        reconcile(&mut w);
        let cron = get(&w, kinds::cronjobs(), "nightly");
        assert_eq!(cron["status"]["active"][0]["name"], "nightly-29000000");
        assert!(cron["status"]["lastScheduleTime"].is_string());
        assert!(settle(&mut w));
        let cron = get(&w, kinds::cronjobs(), "nightly");
        assert_eq!(cron["status"].get("active"), None);
        assert!(cron["status"]["lastSuccessfulTime"].is_string());
    }

    #[test]
    fn the_owners_scenario_settles_with_healthy_rollouts_on_the_old_proxy() {
        let mut w = World::new(SimConfig::default());
        crate::scenario::load_builtin(&mut w, "owners").expect("the scenario loads");
        assert!(crate::controllers::is_settled(&w));
        for name in ["checkout", "storefront", "catalog"] {
            let ro = w.store.get(kinds::rollouts(), "orders", name).unwrap();
            assert_eq!(
                ro["status"]["phase"], "Healthy",
                "{name}: {:#}",
                ro["status"]
            );
        }
        let catalog = w
            .store
            .get(kinds::deployments(), "orders", "catalog")
            .unwrap();
        assert_eq!(catalog["spec"]["replicas"], 0, "scaled down on success");
        let billing = w.store.get(kinds::pdbs(), "orders", "billing").unwrap();
        assert_eq!(billing["status"]["disruptionsAllowed"], 0);
        let proxies: Vec<String> = w
            .store
            .list(kinds::pods(), Some("orders"))
            .filter_map(|p| {
                p["spec"]["containers"]
                    .as_array()?
                    .iter()
                    .find(|c| c["name"] == "istio-proxy")
                    .and_then(|c| c["image"].as_str())
                    .map(str::to_string)
            })
            .collect();
        assert_eq!(proxies.len(), 12, "{proxies:?}");
        assert!(
            proxies.iter().all(|i| i.ends_with(":1.21.2")),
            "{proxies:?}"
        );
        let jobs: Vec<Obj> = w.store.list(kinds::pods(), Some("jobs")).collect();
        assert_eq!(jobs.len(), 2, "the running Job's pod and the bare pod");
        assert!(jobs.iter().all(|p| p["status"]["phase"] == "Running"));
    }

    #[test]
    fn argo_reads_a_bare_string_as_a_percentage() {
        assert_eq!(percent(&json!("25"), 4, false), 1);
        assert_eq!(percent(&json!("25%"), 2, true), 1);
        assert_eq!(percent(&json!(3), 10, true), 3);
    }

    #[test]
    fn the_weight_is_that_of_the_last_set_weight_before_the_step() {
        let steps = vec![
            json!({"setWeight": 20}),
            json!({"pause": {}}),
            json!({"setWeight": 60}),
        ];
        assert_eq!(current_weight(&steps, 0), 20);
        assert_eq!(current_weight(&steps, 1), 20);
        assert_eq!(current_weight(&steps, 2), 60);
        assert_eq!(current_weight(&steps, 3), 100);
        assert_eq!(current_weight(&[json!({"pause": {}})], 0), 0);
    }
}
