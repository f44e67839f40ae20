//! Jobs: run pods until `completions` of them have succeeded, at most
//! `parallelism` at a time (a Job without `completions` is a work queue: it
//! is done when one pod succeeded and none runs). Pods succeed after a
//! short simulated run (see [`super::pods`]). A complete Job gets
//! `completionTime` and the `SuccessCriteriaMet` and `Complete` conditions;
//! a suspended one runs nothing. Failures and `backoffLimit` are not
//! simulated: simulated pods do not fail.

use super::util::At;
use chrono::{DateTime, Utc};
use serde_json::{Value, json};

use super::pods::{self, PodName};
use super::replicaset::{PodOwner, create_pods, delete_pods, owned_pods};
use super::state::{ControllerState, Target};
use super::util::{
    self, bool_at, conditions_of, fmt_time, i64_at, is_being_deleted, name_of, set_condition,
};
use crate::resources::kinds;
use crate::store::{Obj, ObjKey};
use crate::world::World;

const COMPONENT: &str = "job-controller";

fn finished(job: &Value) -> bool {
    conditions_of(job).iter().any(|c| {
        matches!(
            c.get("type").and_then(Value::as_str),
            Some("Complete" | "Failed")
        ) && c.get("status").and_then(Value::as_str) == Some("True")
    })
}

pub(crate) fn sync(world: &mut World, st: &mut ControllerState, key: &ObjKey, now: DateTime<Utc>) {
    let target = Target::Job(key.clone());
    st.timers.clear(&target);
    let Some(job) = util::get(world, kinds::jobs(), key) else {
        st.create_backoff.remove(&target);
        return;
    };
    if is_being_deleted(&job) || finished(&job) {
        return;
    }
    let now_s = fmt_time(now);
    let all = owned_pods(world, st, &job);
    let succeeded_pods = all.iter().filter(|p| pods::phase(p) == "Succeeded").count() as i64;
    // Pods of a finished run may be deleted; what succeeded stays counted.
    let succeeded = succeeded_pods.max(i64_at(&job, "/status/succeeded").unwrap_or(0));
    let failed = all.iter().filter(|p| pods::phase(p) == "Failed").count() as i64;
    let mut active: Vec<Obj> = all.iter().filter(|p| pods::is_active(p)).cloned().collect();
    let completions = i64_at(&job, "/spec/completions");
    let parallelism = i64_at(&job, "/spec/parallelism").unwrap_or(1).max(0);
    let suspended = bool_at(&job, "/spec/suspend");
    let complete = match completions {
        Some(c) => succeeded >= c,
        None => succeeded > 0 && active.is_empty(),
    };

    if complete && !active.is_empty() {
        delete_pods(world, &job, &active, COMPONENT, now);
        active.clear();
    } else if !complete && !suspended {
        let wanted = match completions {
            Some(c) => parallelism.min(c - succeeded),
            None if succeeded > 0 => 0,
            None => parallelism,
        };
        let missing = (wanted - active.len() as i64).max(0) as usize;
        if missing > 0 {
            let uid = util::uid_of(&job).to_string();
            let job_name = name_of(&job).to_string();
            let template = job
                .at("/spec/template")
                .cloned()
                .unwrap_or_else(|| json!({}));
            let owner = PodOwner {
                obj: &job,
                target: &target,
                component: COMPONENT,
            };
            let (created, _) = create_pods(world, st, &owner, missing, now, |_| {
                pods::from_template(
                    &template,
                    &job,
                    PodName::Generate(format!("{job_name}-")),
                    &[
                        ("batch.kubernetes.io/controller-uid", &uid),
                        ("batch.kubernetes.io/job-name", &job_name),
                        ("controller-uid", &uid),
                        ("job-name", &job_name),
                    ],
                )
            });
            active.extend(created);
        }
    }

    let mut status = job
        .get("status")
        .cloned()
        .filter(Value::is_object)
        .unwrap_or_else(|| json!({}));
    let map = status.as_object_mut().expect("status is an object");
    for field in ["active", "succeeded", "failed"] {
        map.remove(field);
    }
    if !suspended && !map.contains_key("startTime") {
        map.insert("startTime".into(), json!(now_s));
    }
    map.extend(util::counts(&[
        ("active", active.len() as i64),
        ("succeeded", succeeded),
        ("failed", failed),
    ]));
    map.insert(
        "ready".into(),
        json!(active.iter().filter(|p| pods::is_ready(p)).count()),
    );
    map.insert("terminating".into(), json!(0));
    map.insert("uncountedTerminatedPods".into(), json!({}));
    let mut conditions = conditions_of(&job);
    if complete {
        map.insert("completionTime".into(), json!(now_s));
        set_condition(
            &mut conditions,
            "SuccessCriteriaMet",
            "True",
            "CompletionsReached",
            "Reached expected number of succeeded pods",
            &now_s,
            false,
        );
        set_condition(
            &mut conditions,
            "Complete",
            "True",
            "CompletionsReached",
            "Reached expected number of succeeded pods",
            &now_s,
            false,
        );
        for c in conditions.iter_mut() {
            c["lastProbeTime"] = json!(now_s);
        }
        map.insert("conditions".into(), json!(conditions));
        super::events::record(
            world,
            &job,
            "Normal",
            "Completed",
            "Job completed",
            COMPONENT,
            now,
        );
    }
    util::write_status(world, kinds::jobs(), &job, status);
}
