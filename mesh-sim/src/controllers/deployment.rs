//! Deployments: ReplicaSets per pod template, rolled over the way the
//! Kubernetes deployment controller does it.
//!
//! Each distinct template gets a ReplicaSet `<deployment>-<pod-template-hash>`
//! (the hash also labels its pods and narrows its selector) carrying
//! `deployment.kubernetes.io/revision`. The "new" ReplicaSet is the one
//! whose template equals the Deployment's, ignoring the hash label, so
//! `kubectl rollout undo` (which writes an old template back) simply makes
//! the old ReplicaSet new again and bumps its revision.
//!
//! Rolling updates scale the new ReplicaSet up while the total stays within
//! `replicas + maxSurge` (surge rounds up) and scale old ones down while
//! `replicas - maxUnavailable` (rounds down) pods stay available; `Recreate`
//! scales old ones to zero first. A paused Deployment only scales. Status
//! and conditions are the fields `kubectl rollout status` reads:
//! `observedGeneration`, `replicas`, `updatedReplicas`, `availableReplicas`
//! and the `Progressing` condition, which turns to `ProgressDeadlineExceeded`
//! after `progressDeadlineSeconds` of simulated time without progress.

use super::util::At;
use chrono::{DateTime, Utc};
use serde_json::{Value, json};

use super::events;
use super::state::{ControllerState, Target};
use super::util::{
    self, annotation, bool_at, conditions_of, fmt_time, i64_at, int_or_percent, is_being_deleted,
    name_of, parse_time, set_condition, str_at, template_hash,
};
use crate::resources::kinds;
use crate::store::{Obj, ObjKey};
use crate::world::{World, WriteOptions};

pub const REVISION: &str = "deployment.kubernetes.io/revision";
const DESIRED_REPLICAS: &str = "deployment.kubernetes.io/desired-replicas";
const MAX_REPLICAS: &str = "deployment.kubernetes.io/max-replicas";
const HASH_LABEL: &str = "pod-template-hash";
const COMPONENT: &str = "deployment-controller";

/// Deployment annotations that stay on the Deployment (the rest are copied
/// to its new ReplicaSet, as the real controller does).
const NOT_COPIED: &[&str] = &[
    "kubectl.kubernetes.io/last-applied-configuration",
    REVISION,
    "deployment.kubernetes.io/revision-history",
    DESIRED_REPLICAS,
    MAX_REPLICAS,
];

/// The parts of a Deployment's spec the rollout reads.
struct Spec<'a> {
    replicas: i64,
    paused: bool,
    recreate: bool,
    max_surge: i64,
    max_unavailable: i64,
    min_ready_seconds: i64,
    progress_deadline: Option<i64>,
    history_limit: i64,
    template: &'a Value,
}

static NO_TEMPLATE: Value = Value::Null;

impl<'a> Spec<'a> {
    fn of(d: &'a Value) -> Spec<'a> {
        let replicas = i64_at(d, "/spec/replicas").unwrap_or(1).max(0);
        let recreate = str_at(d, "/spec/strategy/type") == Some("Recreate");
        let (max_surge, max_unavailable) = if recreate {
            (0, 0)
        } else {
            let rolling = d.at("/spec/strategy/rollingUpdate");
            let surge_value = rolling
                .and_then(|r| r.get("maxSurge"))
                .cloned()
                .unwrap_or(json!("25%"));
            let unavailable_value = rolling
                .and_then(|r| r.get("maxUnavailable"))
                .cloned()
                .unwrap_or(json!("25%"));
            let surge = int_or_percent(Some(&surge_value), replicas, true);
            let mut unavailable = int_or_percent(Some(&unavailable_value), replicas, false);
            if surge == 0 && unavailable == 0 {
                // Both zero would deadlock; Kubernetes allows one unavailable.
                unavailable = 1;
            }
            (surge, unavailable.min(replicas))
        };
        Spec {
            replicas,
            paused: bool_at(d, "/spec/paused"),
            recreate,
            max_surge,
            max_unavailable,
            min_ready_seconds: i64_at(d, "/spec/minReadySeconds").unwrap_or(0),
            progress_deadline: match d.at("/spec/progressDeadlineSeconds") {
                Some(Value::Number(n)) => n.as_i64().filter(|s| *s < i64::from(i32::MAX)),
                _ => Some(600),
            },
            history_limit: i64_at(d, "/spec/revisionHistoryLimit").unwrap_or(10).max(0),
            template: d.at("/spec/template").unwrap_or(&NO_TEMPLATE),
        }
    }
}

fn spec_replicas(rs: &Value) -> i64 {
    i64_at(rs, "/spec/replicas").unwrap_or(1)
}

fn status_count(rs: &Value, field: &str) -> i64 {
    i64_at(rs, &format!("/status/{field}")).unwrap_or(0)
}

pub fn revision_of(rs: &Value) -> i64 {
    annotation(rs, REVISION)
        .and_then(|r| r.parse().ok())
        .unwrap_or(0)
}

/// A template without the `pod-template-hash` label, for comparing a
/// ReplicaSet's template with its Deployment's.
fn without_hash(template: &Value) -> Value {
    let mut t = template.clone();
    if let Some(labels) = t
        .pointer_mut("/metadata/labels")
        .and_then(Value::as_object_mut)
    {
        labels.remove(HASH_LABEL);
        if labels.is_empty() {
            if let Some(meta) = t.get_mut("metadata").and_then(Value::as_object_mut) {
                meta.remove("labels");
            }
        }
    }
    t
}

/// Whether a ReplicaSet's template is `template`, ignoring the
/// `pod-template-hash` label. Compared in place: templates with injected
/// sidecars are large, and every sync compares every ReplicaSet's.
fn same_template(rs: &Value, template: &Value) -> bool {
    let Some(rs_template) = rs.at("/spec/template") else {
        return false;
    };
    let (a, b) = (object(Some(rs_template)), object(Some(template)));
    let (meta_a, meta_b) = (object(a.get("metadata")), object(b.get("metadata")));
    let (labels_a, labels_b) = (object(meta_a.get("labels")), object(meta_b.get("labels")));
    equal_except(a, b, "metadata")
        && equal_except(meta_a, meta_b, "labels")
        && equal_except(labels_a, labels_b, HASH_LABEL)
}

static EMPTY_MAP: std::sync::LazyLock<serde_json::Map<String, Value>> =
    std::sync::LazyLock::new(serde_json::Map::new);

/// The map at `value` (empty when absent or not an object).
fn object(value: Option<&Value>) -> &serde_json::Map<String, Value> {
    value.and_then(Value::as_object).unwrap_or(&EMPTY_MAP)
}

fn equal_except(
    a: &serde_json::Map<String, Value>,
    b: &serde_json::Map<String, Value>,
    except: &str,
) -> bool {
    a.iter()
        .filter(|(k, _)| *k != except)
        .all(|(k, v)| b.get(k) == Some(v))
        && b.keys().filter(|k| *k != except).all(|k| a.contains_key(k))
}

/// Why a new ReplicaSet could not be made.
enum CreateError {
    /// Its name is taken by a ReplicaSet with another template: the
    /// Deployment's `collisionCount` goes up and the hash changes.
    Collision,
    Other,
}

pub(crate) fn sync(world: &mut World, st: &mut ControllerState, key: &ObjKey, now: DateTime<Utc>) {
    let target = Target::Deployment(key.clone());
    st.timers.clear(&target);
    let Some(d) = util::get(world, kinds::deployments(), key) else {
        return;
    };
    if is_being_deleted(&d) {
        return;
    }
    let spec = Spec::of(&d);
    let mut rss: Vec<Obj> = st
        .replicasets_by_owner
        .dependents(util::uid_of(&d))
        .iter()
        .filter_map(|k| util::get(world, kinds::replicasets(), k))
        .collect();
    rss.sort_by(|a, b| creation_order(a, b));
    let mut new_index = rss.iter().position(|rs| same_template(rs, spec.template));
    let max_old_revision = rss
        .iter()
        .enumerate()
        .filter(|(i, _)| Some(*i) != new_index)
        .map(|(_, rs)| revision_of(rs))
        .max()
        .unwrap_or(0);
    let mut progress_note: Option<(&str, String)> = None;
    let mut collided = false;

    // The new ReplicaSet's bookkeeping: revision, copied annotations.
    if let Some(i) = new_index {
        if let Some(updated) = sync_new_annotations(world, &d, &rss[i], max_old_revision + 1, &spec)
        {
            rss[i] = updated;
        }
    }

    if spec.paused {
        scale_paused(world, &d, &spec, &mut rss, new_index, now);
    } else if spec.recreate {
        let old_active = rss
            .iter()
            .enumerate()
            .filter(|(i, rs)| Some(*i) != new_index && spec_replicas(rs) > 0)
            .map(|(i, _)| i)
            .collect::<Vec<_>>();
        let old_pods_running = rss
            .iter()
            .enumerate()
            .filter(|(i, _)| Some(*i) != new_index)
            .any(|(_, rs)| {
                super::replicaset::owned_pods(world, st, rs)
                    .iter()
                    .any(|p| !super::pods::is_terminal(p))
            });
        if !old_active.is_empty() {
            for i in old_active {
                if let Some(rs) = scale(world, &d, &rss[i], 0, &spec, now) {
                    rss[i] = rs;
                }
            }
        } else if !old_pods_running {
            match new_index {
                None => {
                    match create_new(world, &d, &spec, max_old_revision + 1, spec.replicas, now) {
                        Ok(rs) => {
                            progress_note = Some((
                                "NewReplicaSetCreated",
                                format!("Created new replica set \"{}\"", name_of(&rs)),
                            ));
                            rss.push(rs);
                            new_index = Some(rss.len() - 1);
                        }
                        Err(CreateError::Collision) => collided = true,
                        Err(CreateError::Other) => {}
                    }
                }
                Some(i) if spec_replicas(&rss[i]) != spec.replicas => {
                    if let Some(rs) = scale(world, &d, &rss[i], spec.replicas, &spec, now) {
                        rss[i] = rs;
                    }
                }
                Some(_) => {}
            }
        }
    } else {
        if new_index.is_none() {
            let total: i64 = rss.iter().map(|rs| spec_replicas(rs)).sum();
            let first = (spec.replicas + spec.max_surge - total).clamp(0, spec.replicas);
            match create_new(world, &d, &spec, max_old_revision + 1, first, now) {
                Ok(rs) => {
                    progress_note = Some((
                        "NewReplicaSetCreated",
                        format!("Created new replica set \"{}\"", name_of(&rs)),
                    ));
                    rss.push(rs);
                    new_index = Some(rss.len() - 1);
                }
                Err(CreateError::Collision) => collided = true,
                Err(CreateError::Other) => {}
            }
        } else if !scale_new_up(world, &d, &spec, &mut rss, new_index, now) {
            scale_old_down(world, &d, &spec, &mut rss, new_index, now);
        }
    }

    let status = compute_status(&d, &spec, &rss, new_index, now);
    let mut status = status;
    if collided {
        let count = i64_at(&d, "/status/collisionCount").unwrap_or(0) + 1;
        status["collisionCount"] = json!(count);
    }
    let complete = is_complete(&d, &spec, &status);
    if complete && !spec.paused {
        cleanup(world, &spec, &rss, new_index);
    }
    let mut conditions = status
        .get("conditions")
        .and_then(Value::as_array)
        .cloned()
        .unwrap_or_default();
    let seen = Observed {
        d: &d,
        spec: &spec,
        rss: &rss,
        new_index,
        now,
    };
    progress(&seen, &status, &mut conditions, progress_note);
    status["conditions"] = json!(conditions);
    if let Some(at) = deadline(&spec, &conditions, complete) {
        st.timers.set(target, at, true);
    }

    // The Deployment carries its current revision too.
    if let Some(i) = new_index {
        let revision = revision_of(&rss[i]).to_string();
        if annotation(&d, REVISION) != Some(revision.as_str()) {
            let mut next = (*d).clone();
            util::insert_str(&mut next["metadata"], "annotations", REVISION, &revision);
            util::write_object(world, kinds::deployments(), next);
        }
    }
    let d = util::get(world, kinds::deployments(), key).unwrap_or(d);
    util::write_status(world, kinds::deployments(), &d, status);
}

/// Oldest first; the uid (a counter in the sim) breaks ties within a second.
fn creation_order(a: &Value, b: &Value) -> std::cmp::Ordering {
    let key = |v: &Value| {
        (
            str_at(v, "/metadata/creationTimestamp")
                .unwrap_or("")
                .to_string(),
            util::uid_of(v).to_string(),
        )
    };
    key(a).cmp(&key(b))
}

/// Brings the new ReplicaSet's revision up to `revision` (after an undo it
/// is older than the others) and copies the Deployment's annotations onto it.
fn sync_new_annotations(
    world: &mut World,
    d: &Value,
    rs: &Obj,
    revision: i64,
    spec: &Spec,
) -> Option<Obj> {
    let copied = copied_annotations(d);
    let needed = revision_of(rs) < revision
        || copied
            .iter()
            .any(|(k, v)| annotation(rs, k) != Some(v.as_str()))
        || spec.min_ready_seconds != i64_at(rs, "/spec/minReadySeconds").unwrap_or(0);
    if !needed {
        return None;
    }
    let mut next = (**rs).clone();
    let mut changed = false;
    if revision_of(rs) < revision {
        util::insert_str(
            &mut next["metadata"],
            "annotations",
            REVISION,
            &revision.to_string(),
        );
        changed = true;
    }
    for (k, v) in copied {
        if annotation(rs, &k) != Some(v.as_str()) {
            util::insert_str(&mut next["metadata"], "annotations", &k, &v);
            changed = true;
        }
    }
    if spec.min_ready_seconds != i64_at(rs, "/spec/minReadySeconds").unwrap_or(0) {
        next["spec"]["minReadySeconds"] = json!(spec.min_ready_seconds);
        changed = true;
    }
    if changed {
        util::write_object(world, kinds::replicasets(), next)
    } else {
        None
    }
}

fn copied_annotations(d: &Value) -> Vec<(String, String)> {
    d.at("/metadata/annotations")
        .and_then(Value::as_object)
        .into_iter()
        .flatten()
        .filter(|(k, _)| !NOT_COPIED.contains(&k.as_str()))
        .filter_map(|(k, v)| Some((k.clone(), v.as_str()?.to_string())))
        .collect()
}

fn create_new(
    world: &mut World,
    d: &Value,
    spec: &Spec,
    revision: i64,
    replicas: i64,
    now: DateTime<Utc>,
) -> Result<Obj, CreateError> {
    let collision_count = i64_at(d, "/status/collisionCount");
    let hash = template_hash(&without_hash(spec.template), collision_count);
    let name = format!("{}-{hash}", name_of(d));
    let mut template = without_hash(spec.template);
    util::insert_str(&mut template["metadata"], "labels", HASH_LABEL, &hash);
    let mut selector = d.at("/spec/selector").cloned().unwrap_or_else(|| json!({}));
    util::insert_str(&mut selector, "matchLabels", HASH_LABEL, &hash);
    let mut metadata = json!({
        "name": name,
        "namespace": util::namespace_of(d),
        "labels": template.at("/metadata/labels").cloned().unwrap_or_else(|| json!({})),
        "ownerReferences": [util::controller_ref(d)],
    });
    for (k, v) in copied_annotations(d) {
        util::insert_str(&mut metadata, "annotations", &k, &v);
    }
    util::insert_str(
        &mut metadata,
        "annotations",
        REVISION,
        &revision.to_string(),
    );
    util::insert_str(
        &mut metadata,
        "annotations",
        DESIRED_REPLICAS,
        &spec.replicas.to_string(),
    );
    util::insert_str(
        &mut metadata,
        "annotations",
        MAX_REPLICAS,
        &(spec.replicas + spec.max_surge).to_string(),
    );
    let mut rs_spec = json!({"replicas": replicas, "selector": selector, "template": template});
    if spec.min_ready_seconds > 0 {
        rs_spec["minReadySeconds"] = json!(spec.min_ready_seconds);
    }
    let rs = json!({"apiVersion": "apps/v1", "kind": "ReplicaSet", "metadata": metadata, "spec": rs_spec});
    match world.create(kinds::replicasets(), rs, &WriteOptions::default()) {
        Ok(rs) => {
            if replicas > 0 {
                let message = format!("Scaled up replica set {name} from 0 to {replicas}");
                events::record(
                    world,
                    d,
                    "Normal",
                    "ScalingReplicaSet",
                    &message,
                    COMPONENT,
                    now,
                );
            }
            Ok(rs)
        }
        Err(e) if e.reason == "AlreadyExists" => {
            // Ours with an equal template would have been found; anything
            // else under this name is a hash collision.
            Err(CreateError::Collision)
        }
        Err(e) => {
            tracing::debug!(deployment = name_of(d), error = %e, "creating a ReplicaSet failed");
            Err(CreateError::Other)
        }
    }
}

/// Sets a ReplicaSet's `spec.replicas` (and the desired/max annotations).
fn scale(
    world: &mut World,
    d: &Value,
    rs: &Obj,
    replicas: i64,
    spec: &Spec,
    now: DateTime<Utc>,
) -> Option<Obj> {
    let before = spec_replicas(rs);
    let mut next = (**rs).clone();
    next["spec"]["replicas"] = json!(replicas);
    util::insert_str(
        &mut next["metadata"],
        "annotations",
        DESIRED_REPLICAS,
        &spec.replicas.to_string(),
    );
    util::insert_str(
        &mut next["metadata"],
        "annotations",
        MAX_REPLICAS,
        &(spec.replicas + spec.max_surge).to_string(),
    );
    let written = util::write_object(world, kinds::replicasets(), next)?;
    if before != replicas {
        let direction = if replicas > before { "up" } else { "down" };
        let message = format!(
            "Scaled {direction} replica set {} from {before} to {replicas}",
            name_of(rs)
        );
        events::record(
            world,
            d,
            "Normal",
            "ScalingReplicaSet",
            &message,
            COMPONENT,
            now,
        );
    }
    Some(written)
}

/// Rolling update, first half: grows (or shrinks) the new ReplicaSet within
/// `replicas + maxSurge` pods in total. Returns whether it scaled.
fn scale_new_up(
    world: &mut World,
    d: &Value,
    spec: &Spec,
    rss: &mut [Obj],
    new_index: Option<usize>,
    now: DateTime<Utc>,
) -> bool {
    let Some(i) = new_index else {
        return false;
    };
    let current = spec_replicas(&rss[i]);
    let wanted = if current > spec.replicas {
        spec.replicas
    } else {
        let total: i64 = rss.iter().map(|rs| spec_replicas(rs)).sum();
        let room = spec.replicas + spec.max_surge - total;
        if room <= 0 {
            return false;
        }
        current + room.min(spec.replicas - current)
    };
    if wanted == current {
        return false;
    }
    match scale(world, d, &rss[i], wanted, spec, now) {
        Some(rs) => {
            rss[i] = rs;
            true
        }
        None => false,
    }
}

/// Rolling update, second half: shrinks old ReplicaSets while at least
/// `replicas - maxUnavailable` pods stay available, unhealthy ones first.
fn scale_old_down(
    world: &mut World,
    d: &Value,
    spec: &Spec,
    rss: &mut [Obj],
    new_index: Option<usize>,
    now: DateTime<Utc>,
) {
    let old: Vec<usize> = (0..rss.len()).filter(|i| Some(*i) != new_index).collect();
    let old_total: i64 = old.iter().map(|i| spec_replicas(&rss[*i])).sum();
    if old_total == 0 {
        return;
    }
    let all_total: i64 = rss.iter().map(|rs| spec_replicas(rs)).sum();
    let min_available = spec.replicas - spec.max_unavailable;
    let new_unavailable = new_index
        .map(|i| spec_replicas(&rss[i]) - status_count(&rss[i], "availableReplicas"))
        .unwrap_or(0)
        .max(0);
    let max_scaled_down = all_total - min_available - new_unavailable;
    if max_scaled_down <= 0 {
        return;
    }
    // Unhealthy old pods go first: they serve nothing.
    let mut scaled = 0;
    for &i in &old {
        if scaled >= max_scaled_down {
            break;
        }
        let replicas = spec_replicas(&rss[i]);
        let unhealthy = replicas - status_count(&rss[i], "availableReplicas");
        if replicas == 0 || unhealthy <= 0 {
            continue;
        }
        let down = unhealthy.min(max_scaled_down - scaled);
        if let Some(rs) = scale(world, d, &rss[i], replicas - down, spec, now) {
            rss[i] = rs;
            scaled += down;
        }
    }
    // Then healthy ones, as far as availability allows.
    let available: i64 = rss
        .iter()
        .map(|rs| status_count(rs, "availableReplicas"))
        .sum();
    if available <= min_available {
        return;
    }
    let mut budget = available - min_available;
    for &i in &old {
        if budget <= 0 {
            break;
        }
        let replicas = spec_replicas(&rss[i]);
        if replicas == 0 {
            continue;
        }
        let down = replicas.min(budget);
        if let Some(rs) = scale(world, d, &rss[i], replicas - down, spec, now) {
            rss[i] = rs;
            budget -= down;
        }
    }
}

/// A paused Deployment rolls nothing, but a change of `replicas` still
/// reaches its one active (or latest) ReplicaSet.
fn scale_paused(
    world: &mut World,
    d: &Value,
    spec: &Spec,
    rss: &mut [Obj],
    new_index: Option<usize>,
    now: DateTime<Utc>,
) {
    let active: Vec<usize> = (0..rss.len())
        .filter(|i| spec_replicas(&rss[*i]) > 0)
        .collect();
    let target = match active.as_slice() {
        [only] => Some(*only),
        [] => new_index.or_else(|| rss.len().checked_sub(1)),
        _ => None,
    };
    if let Some(i) = target {
        if spec_replicas(&rss[i]) != spec.replicas {
            if let Some(rs) = scale(world, d, &rss[i], spec.replicas, spec, now) {
                rss[i] = rs;
            }
        }
    }
}

fn compute_status(
    d: &Value,
    spec: &Spec,
    rss: &[Obj],
    new_index: Option<usize>,
    now: DateTime<Utc>,
) -> Value {
    let sum = |field: &str| rss.iter().map(|rs| status_count(rs, field)).sum::<i64>();
    let available = sum("availableReplicas");
    let total_spec: i64 = rss.iter().map(|rs| spec_replicas(rs)).sum();
    let updated = new_index
        .map(|i| status_count(&rss[i], "replicas"))
        .unwrap_or(0);
    let mut status = json!(util::counts(&[
        ("observedGeneration", util::generation_of(d)),
        ("replicas", sum("replicas")),
        ("updatedReplicas", updated),
        ("readyReplicas", sum("readyReplicas")),
        ("availableReplicas", available),
        ("unavailableReplicas", (total_spec - available).max(0)),
    ]));
    if let Some(c) = d.at("/status/collisionCount") {
        status["collisionCount"] = c.clone();
    }
    let mut conditions = conditions_of(d);
    let now_s = fmt_time(now);
    if available >= spec.replicas - spec.max_unavailable {
        set_condition(
            &mut conditions,
            "Available",
            "True",
            "MinimumReplicasAvailable",
            "Deployment has minimum availability.",
            &now_s,
            true,
        );
    } else {
        set_condition(
            &mut conditions,
            "Available",
            "False",
            "MinimumReplicasUnavailable",
            "Deployment does not have minimum availability.",
            &now_s,
            true,
        );
    }
    status["conditions"] = json!(conditions);
    status
}

fn count(status: &Value, field: &str) -> i64 {
    status.get(field).and_then(Value::as_i64).unwrap_or(0)
}

/// Every replica updated and available, no old ones left, spec observed.
fn is_complete(d: &Value, spec: &Spec, status: &Value) -> bool {
    count(status, "updatedReplicas") == spec.replicas
        && count(status, "replicas") == spec.replicas
        && count(status, "availableReplicas") == spec.replicas
        && count(status, "observedGeneration") >= util::generation_of(d)
}

/// A Deployment and its ReplicaSets after this pass's scaling.
struct Observed<'a> {
    d: &'a Value,
    spec: &'a Spec<'a>,
    rss: &'a [Obj],
    new_index: Option<usize>,
    now: DateTime<Utc>,
}

/// The `Progressing` (and `ReplicaFailure`) conditions, as the deployment
/// controller's rollout-status sync sets them.
fn progress(
    seen: &Observed<'_>,
    status: &Value,
    conditions: &mut Vec<Value>,
    note: Option<(&str, String)>,
) {
    let Observed {
        d,
        spec,
        rss,
        new_index,
        now,
    } = *seen;
    let now_s = fmt_time(now);
    let new_name = new_index.map(|i| name_of(&rss[i]).to_string());
    let current = util::condition(conditions, "Progressing").cloned();
    let reason_of = |c: &Option<Value>| {
        c.as_ref()
            .and_then(|c| c.get("reason"))
            .and_then(Value::as_str)
            .map(str::to_string)
    };
    let current_reason = reason_of(&current);

    if spec.progress_deadline.is_none() {
        util::remove_condition(conditions, "Progressing");
    } else if spec.paused {
        if current_reason.as_deref() != Some("ProgressDeadlineExceeded")
            && current_reason.as_deref() != Some("DeploymentPaused")
        {
            set_condition(
                conditions,
                "Progressing",
                "Unknown",
                "DeploymentPaused",
                "Deployment is paused",
                &now_s,
                true,
            );
        }
    } else {
        if current_reason.as_deref() == Some("DeploymentPaused") {
            set_condition(
                conditions,
                "Progressing",
                "Unknown",
                "DeploymentResumed",
                "Deployment is resumed",
                &now_s,
                true,
            );
        }
        if let Some((reason, message)) = &note {
            set_condition(
                conditions,
                "Progressing",
                "True",
                reason,
                message,
                &now_s,
                true,
            );
        } else if current.is_none() {
            if let Some(name) = &new_name {
                set_condition(
                    conditions,
                    "Progressing",
                    "True",
                    "FoundNewReplicaSet",
                    &format!("Found new replica set \"{name}\""),
                    &now_s,
                    true,
                );
            }
        }
        let current = util::condition(conditions, "Progressing").cloned();
        let current_reason = reason_of(&current);
        let already_complete = count(status, "replicas") == count(status, "updatedReplicas")
            && current_reason.as_deref() == Some("NewReplicaSetAvailable");
        if !already_complete {
            let subject = match &new_name {
                Some(name) => format!("ReplicaSet \"{name}\""),
                None => format!("Deployment \"{}\"", name_of(d)),
            };
            if is_complete(d, spec, status) {
                set_condition(
                    conditions,
                    "Progressing",
                    "True",
                    "NewReplicaSetAvailable",
                    &format!("{subject} has successfully progressed."),
                    &now_s,
                    true,
                );
            } else if made_progress(d, status) {
                // Progress refreshes lastUpdateTime: the deadline counts from here.
                let transition = current
                    .as_ref()
                    .filter(|c| c.get("status").and_then(Value::as_str) == Some("True"))
                    .and_then(|c| c.get("lastTransitionTime"))
                    .cloned();
                util::remove_condition(conditions, "Progressing");
                set_condition(
                    conditions,
                    "Progressing",
                    "True",
                    "ReplicaSetUpdated",
                    &format!("{subject} is progressing."),
                    &now_s,
                    true,
                );
                if let (Some(t), Some(c)) = (transition, conditions.last_mut()) {
                    c["lastTransitionTime"] = t;
                }
            } else if timed_out(spec, current.as_ref(), now) {
                set_condition(
                    conditions,
                    "Progressing",
                    "False",
                    "ProgressDeadlineExceeded",
                    &format!("{subject} has timed out progressing."),
                    &now_s,
                    true,
                );
            }
        }
    }

    // A ReplicaSet that cannot create pods says so on its Deployment.
    let failure = new_index
        .into_iter()
        .chain(0..rss.len())
        .find_map(|i| util::condition(&conditions_of(&rss[i]), "ReplicaFailure").cloned());
    match failure {
        Some(f) => {
            let reason = f
                .get("reason")
                .and_then(Value::as_str)
                .unwrap_or("FailedCreate")
                .to_string();
            let message = f
                .get("message")
                .and_then(Value::as_str)
                .unwrap_or("")
                .to_string();
            set_condition(
                conditions,
                "ReplicaFailure",
                "True",
                &reason,
                &message,
                &now_s,
                true,
            );
        }
        None => util::remove_condition(conditions, "ReplicaFailure"),
    }
}

/// Whether the new status shows progress over the stored one.
fn made_progress(d: &Value, status: &Value) -> bool {
    let old = d.get("status").cloned().unwrap_or_else(|| json!({}));
    let old_old_replicas = count(&old, "replicas") - count(&old, "updatedReplicas");
    let new_old_replicas = count(status, "replicas") - count(status, "updatedReplicas");
    count(status, "updatedReplicas") > count(&old, "updatedReplicas")
        || new_old_replicas < old_old_replicas
        || count(status, "readyReplicas") > count(&old, "readyReplicas")
        || count(status, "availableReplicas") > count(&old, "availableReplicas")
}

fn progressing_since(condition: &Value) -> Option<DateTime<Utc>> {
    condition
        .get("lastUpdateTime")
        .and_then(Value::as_str)
        .and_then(parse_time)
}

fn timed_out(spec: &Spec, condition: Option<&Value>, now: DateTime<Utc>) -> bool {
    let (Some(deadline), Some(c)) = (spec.progress_deadline, condition) else {
        return false;
    };
    match c.get("reason").and_then(Value::as_str) {
        Some("NewReplicaSetAvailable") => false,
        Some("ProgressDeadlineExceeded") => true,
        _ => progressing_since(c)
            .is_some_and(|from| from + chrono::Duration::seconds(deadline) < now),
    }
}

/// When the deadline of a rollout in progress passes (None when nothing is
/// in progress, it is paused, or it already timed out).
fn deadline(spec: &Spec, conditions: &[Value], complete: bool) -> Option<DateTime<Utc>> {
    let seconds = spec.progress_deadline?;
    if spec.paused || complete {
        return None;
    }
    let c = util::condition(conditions, "Progressing")?;
    match c.get("reason").and_then(Value::as_str) {
        Some("NewReplicaSetAvailable" | "ProgressDeadlineExceeded") => None,
        _ => progressing_since(c).map(|from| from + chrono::Duration::seconds(seconds + 1)),
    }
}

/// Deletes the oldest scaled-down ReplicaSets beyond `revisionHistoryLimit`.
fn cleanup(world: &mut World, spec: &Spec, rss: &[Obj], new_index: Option<usize>) {
    let mut old: Vec<&Obj> = rss
        .iter()
        .enumerate()
        .filter(|(i, rs)| Some(*i) != new_index && !is_being_deleted(rs))
        .map(|(_, rs)| rs)
        .collect();
    let excess = old.len() as i64 - spec.history_limit;
    if excess <= 0 {
        return;
    }
    old.sort_by_key(|rs| revision_of(rs));
    for rs in old.into_iter().take(excess as usize) {
        let observed =
            i64_at(rs, "/status/observedGeneration").unwrap_or(0) >= util::generation_of(rs);
        if spec_replicas(rs) != 0 || status_count(rs, "replicas") != 0 || !observed {
            continue;
        }
        let _ = world.delete(
            kinds::replicasets(),
            util::namespace_of(rs),
            name_of(rs),
            &WriteOptions::default(),
        );
    }
}
