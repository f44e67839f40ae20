//! Running a [`RestartPlan`]: patch or delete, wait for each rollout,
//! then verify the proxies.
//!
//! ```text
//! plan.actions ─► batch (≤ concurrency, paced by the PDBs: mesh::pacing; stop on failure or Ctrl-C)
//!   template patch: register on the shared watch ─► apply(write) ─► await_condition(rollout complete)
//!   Argo Rollout:   register ─► apply(spec.restartAt merge patch) ─► await_condition(restartedAt reached, Healthy)
//!   OnDelete:       for each pod: GET ─► delete(uid) ─► await_condition(replacement Ready on the expected proxy)
//! results ─► verify: one LIST of pods, every restarted workload on the expected proxy
//! ```
//!
//! A 409 on a restart patch is read again: when the fresh object already
//! carries this run's timestamp (the template's `restartedAt`, a Rollout's
//! `spec.restartAt`) the patch landed (a 5xx after the store, or a retry),
//! so it is not sent twice; otherwise the same patch is sent again, which
//! is safe because it names this run's timestamp.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use k8s_openapi::api::apps::v1::{DaemonSet, Deployment, StatefulSet};
use k8s_openapi::api::core::v1::Pod;
use kube::core::Resource;
use serde::de::DeserializeOwned;
use serde_json::Value;

use super::Reporter;
use super::apply::{Applied, Replan, Sent, apply, send};
use super::batch::{StopCause, run_paced};
use super::interrupt::Interrupts;
use super::wait::{Followed, ObjectState, Verdict, Waited, await_condition};
use super::watch::SharedWatch;
use crate::api::{ApiClient, KnownScope, ListScope, ListSelector};
use crate::duration::human_duration;
use crate::mesh::restart::{
    Outcome, RestartAction, RestartMethod, RestartPlan, WorkloadResult, pods_not_running_expected,
};
use crate::mesh::rollout::{
    RolloutProgress, argo_rollout_progress, daemon_set_progress, deployment_progress,
    stateful_set_progress,
};
use crate::mesh::workloads::WorkloadKind;
use crate::snapshot::{PodInfo, RESTARTED_AT_ANNOTATION, Rollout};
use crate::write::{Change, Patch, Write};

/// How the restarts run.
#[derive(Clone, Copy, Debug)]
pub struct RestartSettings {
    /// Bound of each rollout.
    pub timeout: Duration,
    /// Wait for rollouts (false with --no-wait and for server dry runs).
    pub wait: bool,
    /// `--dry-run=server`.
    pub rehearsal: bool,
    /// Restarts at once.
    pub concurrency: usize,
}

/// What a run of the plan did.
#[derive(Debug)]
pub struct RestartRun {
    /// One per planned action, in plan order.
    pub results: Vec<WorkloadResult>,
    pub interrupted: bool,
}

/// A template patch lost this many conflicts in a row: give up on it.
const CONFLICT_RETRIES: u32 = 5;

/// Runs every action of `plan`, then (when waiting) verifies the proxies.
pub async fn run_restarts(
    api: &ApiClient,
    plan: &RestartPlan,
    settings: RestartSettings,
    interrupts: &Interrupts,
    reporter: &dyn Reporter,
) -> RestartRun {
    let watches = Watches::default();
    let pacing = plan.pacing();
    let batch = run_paced(
        plan.actions.len(),
        settings.concurrency,
        interrupts,
        |index, in_flight| pacing.may_start(index, in_flight),
        |index| {
            let action = &plan.actions[index];
            let watches = &watches;
            async move {
                let step = reporter.step(&format!("{}/{}", action.namespace, action.reference()));
                let result = restart_one(api, watches, action, settings, interrupts, &*step).await;
                step.done(&describe(&result));
                result
            }
        },
        |result: &WorkloadResult| matches!(result.outcome, Outcome::Failed | Outcome::TimedOut),
        |cause, result: Option<&WorkloadResult>, in_flight| {
            let waiting = match in_flight {
                0 => String::new(),
                n => format!("; waiting for the {n} in flight"),
            };
            match cause {
                StopCause::Failure(index) => {
                    let action = &plan.actions[index];
                    reporter.note(&format!(
                        "{}/{} {}: starting no more restarts{waiting}",
                        action.namespace,
                        action.reference(),
                        result.map_or("failed", |r| r.outcome.as_str()),
                    ));
                }
                StopCause::Interrupt => reporter.note(&format!(
                    "Interrupted: starting no more restarts{waiting}{}",
                    if in_flight > 0 {
                        " (Ctrl-C again to stop waiting)"
                    } else {
                        ""
                    }
                )),
            }
        },
    );
    // The second Ctrl-C ends every wait (each listens for it).
    let outcome = interrupts.noting_the_second(batch, reporter).await;
    let mut results: Vec<WorkloadResult> = outcome
        .results
        .into_iter()
        .zip(&plan.actions)
        .map(|(result, action)| {
            result.unwrap_or_else(|| result_of(action, Outcome::NotStarted, None, None))
        })
        .collect();
    if settings.wait {
        verify(api, plan, &mut results).await;
    }
    RestartRun {
        results,
        interrupted: outcome.interrupted,
    }
}

fn describe(result: &WorkloadResult) -> String {
    let mut text = result.outcome.as_str().to_string();
    if let Some(seconds) = result.seconds {
        text.push_str(&format!(" in {seconds:.1}s"));
    }
    if let Some(detail) = &result.detail {
        text.push_str(": ");
        text.push_str(detail);
    }
    text
}

fn result_of(
    action: &RestartAction,
    outcome: Outcome,
    detail: Option<String>,
    seconds: Option<f64>,
) -> WorkloadResult {
    WorkloadResult {
        namespace: action.namespace.to_string(),
        kind: action.kind,
        name: action.name.to_string(),
        outcome,
        detail,
        seconds,
    }
}

/// One shared watch per kind and namespace, started on first use.
#[derive(Default)]
struct Watches {
    deployments: Mutex<HashMap<String, Arc<SharedWatch<Deployment>>>>,
    stateful_sets: Mutex<HashMap<String, Arc<SharedWatch<StatefulSet>>>>,
    daemon_sets: Mutex<HashMap<String, Arc<SharedWatch<DaemonSet>>>>,
    rollouts: Mutex<HashMap<String, Arc<SharedWatch<Rollout>>>>,
    pods: Mutex<HashMap<String, Arc<SharedWatch<Pod>>>>,
}

fn shared<K>(
    map: &Mutex<HashMap<String, Arc<SharedWatch<K>>>>,
    api: &ApiClient,
    namespace: &str,
) -> Arc<SharedWatch<K>>
where
    K: Resource<DynamicType = ()>
        + DeserializeOwned
        + Clone
        + std::fmt::Debug
        + Send
        + Sync
        + 'static,
    K::Scope: KnownScope,
{
    let mut map = map.lock().unwrap_or_else(|p| p.into_inner());
    map.entry(namespace.to_string())
        .or_insert_with(|| Arc::new(SharedWatch::start(api, namespace)))
        .clone()
}

/// What one restart needs at every step.
struct Job<'a> {
    api: &'a ApiClient,
    action: &'a RestartAction,
    settings: RestartSettings,
    interrupts: &'a Interrupts,
    /// When `--timeout` runs out for this workload.
    deadline: tokio::time::Instant,
    step: &'a dyn super::StepReporter,
}

/// Restart one workload and wait for it, per `settings`.
async fn restart_one(
    api: &ApiClient,
    watches: &Watches,
    action: &RestartAction,
    settings: RestartSettings,
    interrupts: &Interrupts,
    step: &dyn super::StepReporter,
) -> WorkloadResult {
    let started = Instant::now();
    let job = Job {
        api,
        action,
        settings,
        interrupts,
        deadline: tokio::time::Instant::now() + settings.timeout,
        step,
    };
    let ns = action.namespace.as_str();
    let (outcome, detail) = match &action.method {
        RestartMethod::TemplatePatch { write } => match action.kind {
            WorkloadKind::Deployment => {
                let watch = settings.wait.then(|| shared(&watches.deployments, api, ns));
                patch_and_wait(&job, watch.as_deref(), write, deployment_progress).await
            }
            WorkloadKind::StatefulSet => {
                let watch = settings
                    .wait
                    .then(|| shared(&watches.stateful_sets, api, ns));
                patch_and_wait(&job, watch.as_deref(), write, stateful_set_progress).await
            }
            WorkloadKind::DaemonSet => {
                let watch = settings.wait.then(|| shared(&watches.daemon_sets, api, ns));
                patch_and_wait(&job, watch.as_deref(), write, daemon_set_progress).await
            }
            WorkloadKind::Rollout => (
                Outcome::Error,
                Some("a Rollout is restarted through spec.restartAt, not its template".into()),
            ),
        },
        RestartMethod::RestartAt { write } => {
            let watch = settings.wait.then(|| shared(&watches.rollouts, api, ns));
            match restart_at_of(write) {
                Some(at) => {
                    patch_and_wait(&job, watch.as_deref(), write, |r: &Rollout| {
                        argo_rollout_progress(r, at)
                    })
                    .await
                }
                None => (
                    Outcome::Error,
                    Some("the planned patch sets no spec.restartAt".into()),
                ),
            }
        }
        RestartMethod::DeletePods { pods } => {
            let watch = (!settings.rehearsal).then(|| shared(&watches.pods, api, ns));
            delete_pods_one_by_one(&job, watch.as_deref(), pods).await
        }
    };
    result_of(
        action,
        outcome,
        detail,
        Some((started.elapsed().as_secs_f64() * 10.0).round() / 10.0),
    )
}

/// Where a restart patch puts its timestamp: the template annotation
/// (strategic merge patch) or a Rollout's `spec.restartAt` (merge patch).
fn stamp_pointer(write: &Write) -> Option<String> {
    match &write.change {
        Change::Patch(Patch::Strategic(_)) => Some(format!(
            "/spec/template/metadata/annotations/{}",
            RESTARTED_AT_ANNOTATION
                .replace('~', "~0")
                .replace('/', "~1")
        )),
        Change::Patch(Patch::Merge(_)) => Some("/spec/restartAt".to_string()),
        _ => None,
    }
}

/// The timestamp a restart patch sets.
fn stamp_of(write: &Write) -> Option<&str> {
    let Change::Patch(patch) = &write.change else {
        return None;
    };
    patch.body().pointer(&stamp_pointer(write)?)?.as_str()
}

/// The `spec.restartAt` a Rollout's restart patch sets.
fn restart_at_of(write: &Write) -> Option<chrono::DateTime<chrono::Utc>> {
    crate::snapshot::parse_rfc3339(stamp_of(write))
}

/// The re-plan of a restart patch after a 409: landed when the object
/// already carries this run's timestamp, else the same patch again.
fn replan_restart(write: &Write, fresh: Option<&Value>) -> Replan<()> {
    let Some(fresh) = fresh else {
        return Replan::Fail("deleted before it could be restarted".to_string());
    };
    let ours = stamp_of(write);
    let theirs = stamp_pointer(write)
        .and_then(|pointer| fresh.pointer(&pointer))
        .and_then(Value::as_str);
    if ours.is_some() && ours == theirs {
        Replan::Landed(())
    } else {
        Replan::Send(write.clone(), ())
    }
}

/// Patch the template, then (unless told not to) wait on the shared watch
/// until `check` says the rollout is complete, failed, or the deadline.
async fn patch_and_wait<K>(
    job: &Job<'_>,
    watch: Option<&SharedWatch<K>>,
    write: &Write,
    check: impl Fn(&K) -> RolloutProgress,
) -> (Outcome, Option<String>)
where
    K: Resource<DynamicType = ()>
        + DeserializeOwned
        + Clone
        + std::fmt::Debug
        + Send
        + Sync
        + 'static,
    K::Scope: KnownScope,
{
    let name = job.action.name.as_str();
    // Registered before the patch, so no event of the rollout is missed.
    let receiver = watch.map(|w| w.register(name));
    let forget = || {
        if let Some(w) = watch {
            w.forget(name);
        }
    };
    job.step.update("patching");
    let applied = apply(job.api, write.clone(), (), CONFLICT_RETRIES, |fresh| {
        job.step.update("conflict: reading it again");
        replan_restart(write, fresh)
    })
    .await;
    let patched = match applied {
        Applied::Written { sent, .. } => sent,
        Applied::Unneeded { why, .. } => {
            forget();
            return (Outcome::Error, Some(why));
        }
        Applied::Failed { error, .. } => {
            forget();
            return (Outcome::Error, Some(format!("{error:#}")));
        }
    };
    if job.settings.rehearsal {
        forget();
        return (
            Outcome::Rehearsed,
            Some("the server accepted the patch (dryRun=All)".into()),
        );
    }
    let (Some(_), Some(receiver)) = (watch, receiver) else {
        return (Outcome::Patched, Some("not waited for (--no-wait)".into()));
    };
    let generation = match &patched {
        Sent::Patched(object) => object
            .pointer("/metadata/generation")
            .and_then(Value::as_i64)
            .unwrap_or(0),
        _ => 0,
    };
    job.step.update("waiting for the rollout");
    let mut followed = Followed::new(receiver);
    let waited = await_condition(
        &mut followed,
        |state: &ObjectState<K>| match state {
            ObjectState::Absent => Verdict::Done((
                Outcome::Error,
                Some("deleted while rolling out".to_string()),
            )),
            ObjectState::Present(object) if object.meta().generation.unwrap_or(0) >= generation => {
                match check(object) {
                    RolloutProgress::Complete => Verdict::Done((Outcome::Restarted, None)),
                    RolloutProgress::Failed(why) => Verdict::Done((Outcome::Failed, Some(why))),
                    RolloutProgress::InProgress(what) => Verdict::Pending(Some(what)),
                }
            }
            ObjectState::Present(_) => Verdict::Pending(None),
        },
        job.deadline,
        job.interrupts.second(),
        |what| job.step.update(what),
    )
    .await;
    forget();
    match waited {
        Waited::Done(outcome) => outcome,
        Waited::TimedOut { .. } => (
            Outcome::TimedOut,
            Some(format!(
                "not complete after {} (--timeout)",
                human_duration(job.settings.timeout)
            )),
        ),
        Waited::Broken(why) => (
            Outcome::Error,
            Some(format!("cannot watch the rollout: {why}")),
        ),
        Waited::Stopped { .. } => stopped_waiting(),
    }
}

fn stopped_waiting() -> (Outcome, Option<String>) {
    (
        Outcome::Interrupted,
        Some("stopped waiting (second Ctrl-C); the rollout goes on in the cluster".to_string()),
    )
}

/// OnDelete: delete each pod (highest ordinal first) and wait until its
/// replacement is Ready and runs the expected proxy before the next.
async fn delete_pods_one_by_one(
    job: &Job<'_>,
    watch: Option<&SharedWatch<Pod>>,
    pods: &[Write],
) -> (Outcome, Option<String>) {
    let Job { api, action, .. } = *job;
    let ns = action.namespace.as_str();
    for (done, delete) in pods.iter().enumerate() {
        let pod_name = delete.target.name.as_str();
        let receiver = watch.map(|w| w.register(pod_name));
        let forget = || {
            if let Some(w) = watch {
                w.forget(pod_name);
            }
        };
        let pod = match api.get::<Pod>(Some(ns), pod_name).await {
            Ok(pod) => pod,
            Err(err) => {
                forget();
                return (Outcome::Error, Some(format!("{err:#}")));
            }
        };
        // A pod already gone, or already replaced under the same name, is
        // being replaced: wait for that replacement rather than delete it.
        let current_uid = pod.as_ref().and_then(|p| p.metadata.uid.clone());
        let planned = match &delete.precondition {
            crate::write::Precondition::Uid(uid) => Some(uid.clone()),
            _ => current_uid.clone(),
        };
        if pod.is_some() && current_uid == planned {
            job.step.update(&format!(
                "deleting pod {pod_name} ({done} of {} done)",
                pods.len()
            ));
            if let Err(err) = send(api, delete).await {
                forget();
                return (Outcome::Error, Some(format!("{err:#}")));
            }
        }
        if job.settings.rehearsal {
            forget();
            continue;
        }
        let Some(receiver) = receiver else {
            continue;
        };
        job.step
            .update(&format!("waiting for {pod_name} to come back Ready"));
        let mut followed = Followed::new(receiver);
        let waited = await_condition(
            &mut followed,
            |state: &ObjectState<Pod>| match state {
                ObjectState::Present(new) if new.metadata.uid != planned => {
                    let info = PodInfo::from(new.as_ref());
                    if info.ready && action.pod_runs_expected_proxy(&info) {
                        Verdict::Done(())
                    } else {
                        Verdict::Pending(None)
                    }
                }
                _ => Verdict::Pending(None),
            },
            job.deadline,
            job.interrupts.second(),
            |_| {},
        )
        .await;
        forget();
        match waited {
            Waited::Done(()) => {}
            Waited::TimedOut { .. } => {
                return (
                    Outcome::TimedOut,
                    Some(format!(
                        "pod {pod_name} not Ready on the expected proxy after {} (--timeout)",
                        human_duration(job.settings.timeout)
                    )),
                );
            }
            Waited::Broken(why) => {
                return (
                    Outcome::Error,
                    Some(format!("cannot watch pod {pod_name}: {why}")),
                );
            }
            Waited::Stopped { .. } => return stopped_waiting(),
        }
    }
    if job.settings.rehearsal {
        (
            Outcome::Rehearsed,
            Some("the server accepted the deletions (dryRun=All)".into()),
        )
    } else {
        (Outcome::Restarted, None)
    }
}

/// One LIST of pods after the rollouts: every restarted workload's pods must
/// run the expected proxy; those that do not become `unverified`.
pub async fn verify(api: &ApiClient, plan: &RestartPlan, results: &mut [WorkloadResult]) {
    let restarted: Vec<usize> = results
        .iter()
        .enumerate()
        .filter(|(_, r)| r.outcome == Outcome::Restarted)
        .map(|(i, _)| i)
        .collect();
    if restarted.is_empty() {
        return;
    }
    let mut namespaces: Vec<&str> = restarted
        .iter()
        .map(|&i| plan.actions[i].namespace.as_str())
        .collect();
    namespaces.sort();
    namespaces.dedup();
    let scope = match namespaces.as_slice() {
        [one] => ListScope::Namespace((*one).to_string()),
        _ => ListScope::All,
    };
    let pods = match api
        .list_pages::<Pod, _>(
            &scope,
            &ListSelector::everything(),
            crate::api::ListEncoding::ProtobufOrJson,
            crate::snapshot::decode::sharing(
                &std::sync::Arc::new(crate::snapshot::Interner::default()),
                crate::snapshot::decode::pods,
            ),
        )
        .await
    {
        Ok((pods, _)) => pods,
        Err(err) => {
            for &i in &restarted {
                results[i].outcome = Outcome::Unverified;
                results[i].detail = Some(format!("could not read the pods to verify: {err:#}"));
            }
            return;
        }
    };
    for &i in &restarted {
        let action = &plan.actions[i];
        let wrong = pods_not_running_expected(action, &pods);
        if !wrong.is_empty() {
            results[i].outcome = Outcome::Unverified;
            results[i].detail = Some(format!(
                "expected {}, but {}",
                action.expected_proxy(),
                wrong.join(", ")
            ));
        }
    }
}

#[cfg(test)]
mod tests;

#[cfg(test)]
mod argo_tests;
