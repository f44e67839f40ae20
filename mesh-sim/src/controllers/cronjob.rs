//! CronJobs (batch/v1): stored with the API server's defaults, and their
//! status kept as the CronJob controller keeps it from the Jobs they own
//! (`pkg/controller/cronjob/cronjob_controllerv2.go` in kubernetes):
//! `active` lists the owned Jobs still running, `lastScheduleTime` is when
//! the latest of them was created, `lastSuccessfulTime` when the latest
//! finished successfully.
//!
//! No schedule is run: a test (or a person) creates a run as a Job with the
//! CronJob's controller owner reference, which is all the CronJob
//! controller itself adds (`kubectl create job --from=cronjob/<name>` makes
//! the same Job).

use chrono::{DateTime, Utc};
use serde_json::{Value, json};

use super::state::ControllerState;
use super::util::{self, At, conditions_of, str_at};
use crate::resources::kinds;
use crate::store::ObjKey;
use crate::world::World;

fn finished(job: &Value) -> Option<&'static str> {
    conditions_of(job).iter().find_map(|c| {
        let kind = match c.get("type").and_then(Value::as_str) {
            Some("Complete") => "Complete",
            Some("Failed") => "Failed",
            _ => return None,
        };
        (c.get("status").and_then(Value::as_str) == Some("True")).then_some(kind)
    })
}

pub(crate) fn sync(
    world: &mut World,
    _st: &mut ControllerState,
    key: &ObjKey,
    _now: DateTime<Utc>,
) {
    let Some(cron) = util::get(world, kinds::cronjobs(), key) else {
        return;
    };
    if util::is_being_deleted(&cron) {
        return;
    }
    let mut jobs: Vec<_> = world
        .store
        .dependents_of(util::uid_of(&cron))
        .into_iter()
        .filter(|(resource, _)| resource.kind == "Job")
        .filter_map(|(_, k)| util::get(world, kinds::jobs(), &k))
        .filter(|job| {
            util::controller_of(job).is_some_and(|(_, _, uid)| uid == util::uid_of(&cron))
        })
        .collect();
    jobs.sort_by(|a, b| util::name_of(a).cmp(util::name_of(b)));

    let mut status = cron
        .get("status")
        .cloned()
        .filter(Value::is_object)
        .unwrap_or_else(|| json!({}));
    let map = status.as_object_mut().expect("status is an object");
    let active: Vec<Value> = jobs
        .iter()
        .filter(|job| finished(job).is_none())
        .map(|job| {
            json!({
                "apiVersion": "batch/v1",
                "kind": "Job",
                "name": util::name_of(job),
                "namespace": util::namespace_of(job),
                "uid": util::uid_of(job),
                "resourceVersion": str_at(job, "/metadata/resourceVersion").unwrap_or(""),
            })
        })
        .collect();
    if active.is_empty() {
        map.remove("active");
    } else {
        map.insert("active".into(), json!(active));
    }
    if let Some(latest) = jobs
        .iter()
        .filter_map(|job| str_at(job, "/metadata/creationTimestamp"))
        .max()
    {
        map.insert("lastScheduleTime".into(), json!(latest));
    }
    if let Some(latest) = jobs
        .iter()
        .filter(|job| finished(job) == Some("Complete"))
        .filter_map(|job| job.at("/status/completionTime").and_then(Value::as_str))
        .max()
    {
        map.insert("lastSuccessfulTime".into(), json!(latest));
    }
    util::write_status(world, kinds::cronjobs(), &cron, status);
}
