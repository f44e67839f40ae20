//! `kubectl mesh-upgrade restart-sidecars`: restart exactly the workloads
//! whose sidecars run a stale proxy, wait for each rollout, and check the
//! new pods run the proxy they should.
//!
//! ```text
//! collect ─► plan (mesh::restart, pure) ─► istiod Ready? (else refuse, 5)
//!         ─► show the plan ─► confirm::decide_interactively
//!         ─► restart up to --concurrency at once ─► wait (shared watches, --timeout each)
//!         ─► one LIST of pods: do they run the expected proxy? ─► summary, exit code
//! ```
//!
//! The run stops starting new restarts when a rollout fails or times out
//! (exit 4) or on Ctrl-C (exit 130); restarts already started are waited for
//! (a second Ctrl-C stops waiting). Nothing is paused or half-written: each
//! restart is one patch, or for OnDelete StatefulSets one pod deletion at a
//! time, each replacement waited for. Running the same command again picks
//! up what is still stale, because a restarted workload whose new pods run
//! the expected proxy is no longer stale.

mod watch;

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use chrono::Utc;
use k8s_openapi::api::apps::v1::{DaemonSet, Deployment, StatefulSet};
use k8s_openapi::api::core::v1::Pod;
use kube::core::Resource;
use serde::de::DeserializeOwned;
use tokio::task::JoinSet;

use crate::api::{ApiClient, KnownScope, ListScope, ListSelector, PatchBody, WriteMode};
use crate::cli::{DryRun, GlobalArgs, RestartSidecarsArgs};
use crate::collect::{CollectOptions, collect};
use crate::confirm::{self, Decision};
use crate::error::{Error, ExitCode};
use crate::mesh::restart::{
    Outcome, RestartAction, RestartMethod, RestartOptions, RestartPlan, RestartReport, TargetRef,
    WorkloadResult, plan, pods_not_running_expected,
};
use crate::mesh::rollout::{
    RolloutProgress, daemon_set_progress, deployment_progress, stateful_set_progress,
};
use crate::mesh::workloads::{RestartSelection, WorkloadKind};
use crate::output::{Output, Progress, WorkloadProgress};
use crate::render::restart::{plan_text, report_text};
use crate::selector::LabelSelector;
use crate::snapshot::{DEFAULT_CONTROL_PLANE_NAMESPACE, PodInfo, Scope};
use watch::{Seen, SharedWatch};

/// Restart the stale workloads of the selection (`-n`, `-A`, `-l`, targets).
pub async fn run(
    global: &GlobalArgs,
    args: &RestartSidecarsArgs,
    output: &Output,
) -> anyhow::Result<ExitCode> {
    let selector = super::label_selector(global)?;
    let options = restart_options(args)?;
    let api = super::connect(global).await?;
    let scope = super::selected_scope(global, api.default_namespace());
    execute(&api, global, args, output, scope, selector, options).await
}

/// Restart the stale workloads of `namespaces` (the entry point `relabel
/// --restart` uses after relabelling them); `-l`, `--kind`, the targets and
/// every other flag of `args` apply as for `restart-sidecars` itself.
pub async fn restart_in_namespaces(
    api: &ApiClient,
    global: &GlobalArgs,
    args: &RestartSidecarsArgs,
    output: &Output,
    namespaces: &[String],
) -> anyhow::Result<ExitCode> {
    let selector = super::label_selector(global)?;
    let options = restart_options(args)?;
    let scope = Scope::Namespaces(namespaces.to_vec());
    execute(api, global, args, output, scope, selector, options).await
}

/// The flags as the plan takes them; a malformed target is a usage error.
fn restart_options(args: &RestartSidecarsArgs) -> anyhow::Result<RestartOptions> {
    let targets = args
        .targets
        .iter()
        .map(|t| TargetRef::parse(t).map_err(Error::Usage))
        .collect::<Result<Vec<_>, _>>()?;
    let mut kinds: Vec<WorkloadKind> = args
        .kinds
        .iter()
        .map(|k| match k {
            crate::cli::WorkloadKind::Deployment => WorkloadKind::Deployment,
            crate::cli::WorkloadKind::Statefulset => WorkloadKind::StatefulSet,
            crate::cli::WorkloadKind::Daemonset => WorkloadKind::DaemonSet,
        })
        .collect();
    kinds.sort();
    kinds.dedup();
    Ok(RestartOptions {
        selection: RestartSelection {
            all: args.all,
            include_uninjected: args.include_uninjected,
        },
        kinds,
        targets,
        delete_pods: args.delete_pods,
    })
}

async fn execute(
    api: &ApiClient,
    global: &GlobalArgs,
    args: &RestartSidecarsArgs,
    output: &Output,
    scope: Scope,
    selector: Option<LabelSelector>,
    options: RestartOptions,
) -> anyhow::Result<ExitCode> {
    // The clock is read once: every patch of this run carries this time.
    let now = Utc::now();
    let collected = collect(
        api,
        &CollectOptions {
            scope,
            control_plane_namespace: DEFAULT_CONTROL_PLANE_NAMESPACE.to_string(),
            selector,
        },
    )
    .await?;
    for warning in &collected.warnings {
        output.warn(warning);
    }
    let plan = plan(&collected.snapshot, &options, now).map_err(|e| Error::Usage(e.to_string()))?;
    if !plan.not_ready_revisions.is_empty() {
        return Err(Error::Refused(not_ready_sentence(&plan)).into());
    }

    let machine = global.output.is_machine_readable();
    let client_dry_run = args.write.dry_run == DryRun::Client;
    output.show_plan(
        &plan,
        &plan_text(&plan, &output.text_layout()),
        client_dry_run,
    )?;

    let decision =
        confirm::decide_interactively(&args.write, plan.actions.len(), &plan.question(), output)?;
    match decision {
        Decision::PlanOnly => {
            output
                .note("Dry run: nothing was changed. Run again without --dry-run to restart them.");
            super::log_request_summary(api);
            return Ok(ExitCode::Success);
        }
        Decision::NothingToDo => {
            if machine && !client_dry_run {
                output.print_document(&RestartReport::new(&plan, Vec::new()))?;
            }
            super::log_request_summary(api);
            return Ok(ExitCode::Success);
        }
        Decision::Apply | Decision::RehearseOnServer => {}
    }

    let writer = api
        .clone()
        .with_write_mode(WriteMode::from(args.write.dry_run));
    let settings = Settings {
        timeout: args.timeout,
        wait: !args.no_wait && decision == Decision::Apply,
        rehearsal: decision == Decision::RehearseOnServer,
    };
    let progress = output.progress(plan.actions.len());
    let run = restart_all(
        &writer,
        &plan,
        settings,
        usize::from(args.concurrency),
        &progress,
    )
    .await;
    progress.finish();
    let mut results = run.results;
    if settings.wait {
        verify(&writer, &plan, &mut results).await;
    }
    super::log_request_summary(api);

    let report = RestartReport::new(&plan, results);
    if machine {
        output.print_document(&report)?;
        output.note(report_text(&report, &output.text_layout()).trim_end());
    } else {
        output.print_text(&report_text(&report, &output.text_layout()))?;
    }
    conclude(&report, run.interrupted)
}

/// The exit: 130 after Ctrl-C, 4 when a rollout failed, timed out or left
/// pods on another proxy, 1 when API errors kept workloads from restarting.
fn conclude(report: &RestartReport, interrupted: bool) -> anyhow::Result<ExitCode> {
    if interrupted {
        return Err(Error::Interrupted.into());
    }
    let failed: Vec<String> = report
        .results
        .iter()
        .filter(|r| r.outcome.is_rollout_failure())
        .map(|r| {
            format!(
                "{}/{}/{} ({})",
                r.namespace,
                r.kind.resource(),
                r.name,
                r.outcome.as_str()
            )
        })
        .collect();
    if !failed.is_empty() {
        let not_started = report.summary.not_started;
        let mut sentence = format!(
            "{} restart{} did not end with every pod on the expected proxy: {}",
            failed.len(),
            if failed.len() == 1 { "" } else { "s" },
            failed.join(", ")
        );
        if report
            .results
            .iter()
            .any(|r| matches!(r.outcome, Outcome::Failed | Outcome::TimedOut))
        {
            sentence.push_str(
                "; a stuck rollout keeps its old pods serving until fixed or undone (kubectl rollout undo)",
            );
        }
        if not_started > 0 {
            sentence.push_str(&format!(
                "; {not_started} workload{} never started (run the same command again once fixed)",
                if not_started == 1 { "" } else { "s" }
            ));
        }
        return Err(Error::RolloutFailed(sentence).into());
    }
    let errors = report.summary.errors;
    if errors > 0 {
        anyhow::bail!(
            "{errors} workload{} could not be restarted because of API errors (see the summary); run the same command again to retry them",
            if errors == 1 { "" } else { "s" }
        );
    }
    Ok(ExitCode::Success)
}

fn not_ready_sentence(plan: &RestartPlan) -> String {
    let parts: Vec<String> = plan
        .not_ready_revisions
        .iter()
        .map(|n| {
            let istiod = n.istiod.as_deref().map_or_else(
                || "no istiod Deployment serves it".to_string(),
                |d| format!("istiod Deployment {d} has no Ready pod"),
            );
            format!(
                "revision {} is not Ready ({istiod}; needed by {})",
                n.revision,
                n.workloads.join(", ")
            )
        })
        .collect();
    format!(
        "{}: restarting now would fail to create pods or re-inject the old proxy; wait until istiod is Ready (kubectl -n {DEFAULT_CONTROL_PLANE_NAMESPACE} rollout status deployment/<istiod>), then run this again",
        parts.join("; ")
    )
}

#[derive(Clone, Copy, Debug)]
struct Settings {
    /// Bound of each rollout.
    timeout: Duration,
    /// Wait for rollouts (false with --no-wait and for server dry runs).
    wait: bool,
    /// `--dry-run=server`.
    rehearsal: bool,
}

struct RunResults {
    results: Vec<WorkloadResult>,
    interrupted: bool,
}

/// One shared watch per kind and namespace, started on first use.
#[derive(Default)]
struct Watches {
    deployments: Mutex<HashMap<String, Arc<SharedWatch<Deployment>>>>,
    stateful_sets: Mutex<HashMap<String, Arc<SharedWatch<StatefulSet>>>>,
    daemon_sets: Mutex<HashMap<String, Arc<SharedWatch<DaemonSet>>>>,
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

/// Ctrl-C presses so far, counted by a task that owns the signal.
fn watch_interrupts() -> tokio::sync::watch::Receiver<u32> {
    let (sender, receiver) = tokio::sync::watch::channel(0u32);
    tokio::spawn(async move {
        let mut presses = 0;
        while tokio::signal::ctrl_c().await.is_ok() {
            presses += 1;
            if sender.send(presses).is_err() {
                break;
            }
        }
    });
    receiver
}

/// Runs the actions, at most `concurrency` at once, in plan order.
async fn restart_all(
    api: &ApiClient,
    plan: &RestartPlan,
    settings: Settings,
    concurrency: usize,
    progress: &Progress,
) -> RunResults {
    let watches = Arc::new(Watches::default());
    let mut interrupts = watch_interrupts();
    let mut results: Vec<Option<WorkloadResult>> = vec![None; plan.actions.len()];
    let mut in_flight: JoinSet<(usize, WorkloadResult)> = JoinSet::new();
    let mut index_of_task: HashMap<tokio::task::Id, usize> = HashMap::new();
    let mut next = 0;
    let mut stopping = false;
    let mut interrupted = false;
    loop {
        while !stopping && in_flight.len() < concurrency.max(1) && next < plan.actions.len() {
            let action = plan.actions[next].clone();
            let reporter =
                progress.workload(format!("{}/{}", action.namespace, action.reference()));
            let api = api.clone();
            let watches = watches.clone();
            let index = next;
            let handle = in_flight.spawn(async move {
                let result = restart_one(&api, &watches, &action, settings, &reporter).await;
                reporter.done(&describe(&result));
                (index, result)
            });
            index_of_task.insert(handle.id(), index);
            next += 1;
        }
        if in_flight.is_empty() {
            break;
        }
        tokio::select! {
            joined = in_flight.join_next_with_id() => {
                let Some(joined) = joined else { continue };
                match joined {
                    Ok((_, (index, result))) => {
                        if matches!(result.outcome, Outcome::Failed | Outcome::TimedOut) && !stopping {
                            stopping = true;
                            let waiting = match in_flight.len() {
                                0 => String::new(),
                                n => format!("; waiting for the {n} in flight"),
                            };
                            progress.note(&format!(
                                "{}/{}/{} {}: starting no more restarts{waiting}",
                                result.namespace,
                                result.kind.resource(),
                                result.name,
                                result.outcome.as_str(),
                            ));
                        }
                        results[index] = Some(result);
                    }
                    Err(err) => {
                        if let Some(&index) = index_of_task.get(&err.id()) {
                            let action = &plan.actions[index];
                            let detail = if err.is_cancelled() {
                                "stopped waiting (second Ctrl-C); the rollout goes on in the cluster"
                            } else {
                                "the restart task failed (a bug in kubectl mesh-upgrade)"
                            };
                            results[index] = Some(result_of(action, Outcome::Interrupted, Some(detail.to_string()), None));
                        }
                    }
                }
            }
            changed = interrupts.changed() => {
                if changed.is_err() {
                    continue;
                }
                let presses = *interrupts.borrow_and_update();
                if presses == 1 {
                    interrupted = true;
                    stopping = true;
                    progress.note(&format!(
                        "Interrupted: starting no more restarts; waiting for the {} in flight (Ctrl-C again to stop waiting)",
                        in_flight.len()
                    ));
                } else if presses >= 2 {
                    progress.note("Interrupted again: no longer waiting.");
                    in_flight.abort_all();
                }
            }
        }
    }
    let results = results
        .into_iter()
        .zip(&plan.actions)
        .map(|(result, action)| {
            result.unwrap_or_else(|| result_of(action, Outcome::NotStarted, None, None))
        })
        .collect();
    RunResults {
        results,
        interrupted,
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
        namespace: action.namespace.clone(),
        kind: action.kind,
        name: action.name.clone(),
        outcome,
        detail,
        seconds,
    }
}

/// Restart one workload and wait for it, per `settings`.
async fn restart_one(
    api: &ApiClient,
    watches: &Watches,
    action: &RestartAction,
    settings: Settings,
    reporter: &WorkloadProgress,
) -> WorkloadResult {
    let started = Instant::now();
    let deadline = tokio::time::Instant::now() + settings.timeout;
    let ended = |outcome: Outcome, detail: Option<String>| {
        result_of(
            action,
            outcome,
            detail,
            Some((started.elapsed().as_secs_f64() * 10.0).round() / 10.0),
        )
    };
    let job = Job {
        api,
        action,
        settings,
        deadline,
        reporter,
    };
    match &action.method {
        RestartMethod::TemplatePatch { patch } => {
            let body = PatchBody::Strategic(patch.clone());
            let ns = action.namespace.as_str();
            let outcome = match action.kind {
                WorkloadKind::Deployment => {
                    let watch = settings.wait.then(|| shared(&watches.deployments, api, ns));
                    patch_and_wait(&job, watch.as_deref(), &body, deployment_progress).await
                }
                WorkloadKind::StatefulSet => {
                    let watch = settings
                        .wait
                        .then(|| shared(&watches.stateful_sets, api, ns));
                    patch_and_wait(&job, watch.as_deref(), &body, stateful_set_progress).await
                }
                WorkloadKind::DaemonSet => {
                    let watch = settings.wait.then(|| shared(&watches.daemon_sets, api, ns));
                    patch_and_wait(&job, watch.as_deref(), &body, daemon_set_progress).await
                }
            };
            ended(outcome.0, outcome.1)
        }
        RestartMethod::DeletePods { pods } => {
            let watch =
                (!settings.rehearsal).then(|| shared(&watches.pods, api, &action.namespace));
            let (outcome, detail) = delete_pods_one_by_one(&job, watch.as_deref(), pods).await;
            ended(outcome, detail)
        }
    }
}

/// One workload's restart: what it needs at every step.
struct Job<'a> {
    api: &'a ApiClient,
    action: &'a RestartAction,
    settings: Settings,
    /// When `--timeout` runs out for this workload.
    deadline: tokio::time::Instant,
    reporter: &'a WorkloadProgress,
}

/// Tries a write up to this many times when it keeps losing a conflict.
const CONFLICT_RETRIES: u32 = 5;

/// Patch the template, then (unless told not to) wait on the shared watch
/// until `check` says the rollout is complete, failed, or the deadline.
async fn patch_and_wait<K>(
    job: &Job<'_>,
    watch: Option<&SharedWatch<K>>,
    body: &PatchBody,
    check: fn(&K) -> RolloutProgress,
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
    let Job {
        api,
        action,
        settings,
        deadline,
        reporter,
    } = *job;
    let ns = Some(action.namespace.as_str());
    // Registered before the patch, so no event of the rollout is missed.
    let mut receiver = watch.map(|w| w.register(&action.name));
    reporter.update("patching");
    let mut attempt = 0;
    let patched: K = loop {
        match api.patch::<K>(ns, &action.name, body).await {
            Ok(object) => break object,
            Err(err) if crate::error::is_conflict(&err) && attempt < CONFLICT_RETRIES => {
                attempt += 1;
                reporter.update("conflict: reading it again");
                if let Err(err) = api.get::<K>(ns, &action.name).await {
                    if let Some(w) = watch {
                        w.forget(&action.name);
                    }
                    return (Outcome::Error, Some(format!("{err:#}")));
                }
            }
            Err(err) => {
                if let Some(w) = watch {
                    w.forget(&action.name);
                }
                return (Outcome::Error, Some(format!("{err:#}")));
            }
        }
    };
    if settings.rehearsal {
        return (
            Outcome::Rehearsed,
            Some("the server accepted the patch (dryRun=All)".into()),
        );
    }
    let (Some(watch), Some(receiver)) = (watch, receiver.as_mut()) else {
        return (Outcome::Patched, Some("not waited for (--no-wait)".into()));
    };
    let generation = patched.meta().generation.unwrap_or(0);
    reporter.update("waiting for the rollout");
    let outcome = loop {
        let judged = match &*receiver.borrow_and_update() {
            Seen::Present(object) if object.meta().generation.unwrap_or(0) >= generation => {
                Some(check(object))
            }
            Seen::Absent => {
                break (
                    Outcome::Error,
                    Some("deleted while rolling out".to_string()),
                );
            }
            Seen::Broken(message) => {
                break (
                    Outcome::Error,
                    Some(format!("cannot watch the rollout: {message}")),
                );
            }
            _ => None,
        };
        match judged {
            Some(RolloutProgress::Complete) => break (Outcome::Restarted, None),
            Some(RolloutProgress::Failed(why)) => break (Outcome::Failed, Some(why)),
            Some(RolloutProgress::InProgress(what)) => reporter.update(&what),
            None => {}
        }
        match tokio::time::timeout_at(deadline, receiver.changed()).await {
            Ok(Ok(())) => {}
            Ok(Err(_)) => break (Outcome::Error, Some("the watch stopped".to_string())),
            Err(_) => {
                break (
                    Outcome::TimedOut,
                    Some(format!(
                        "not complete after {} (--timeout)",
                        humantime(settings.timeout)
                    )),
                );
            }
        }
    };
    watch.forget(&action.name);
    outcome
}

fn humantime(d: Duration) -> String {
    let secs = d.as_secs();
    if secs >= 60 && secs % 60 == 0 {
        format!("{}m", secs / 60)
    } else if secs >= 1 {
        format!("{secs}s")
    } else {
        format!("{}ms", d.as_millis())
    }
}

/// OnDelete: delete each pod (highest ordinal first) and wait until its
/// replacement is Ready and runs the expected proxy before the next.
async fn delete_pods_one_by_one(
    job: &Job<'_>,
    watch: Option<&SharedWatch<Pod>>,
    pods: &[String],
) -> (Outcome, Option<String>) {
    let Job {
        api,
        action,
        settings,
        deadline,
        reporter,
    } = *job;
    let ns = action.namespace.as_str();
    for (done, pod_name) in pods.iter().enumerate() {
        let mut receiver = watch.map(|w| w.register(pod_name));
        let pod = match api.get::<Pod>(Some(ns), pod_name).await {
            Ok(pod) => pod,
            Err(err) => return (Outcome::Error, Some(format!("{err:#}"))),
        };
        // A pod already gone is being replaced: wait for that replacement.
        let old_uid = pod.as_ref().and_then(|p| p.metadata.uid.clone());
        if pod.is_some() {
            reporter.update(&format!(
                "deleting pod {pod_name} ({done} of {} done)",
                pods.len()
            ));
            if let Err(err) = api
                .delete::<Pod>(Some(ns), pod_name, old_uid.as_deref())
                .await
            {
                if let Some(w) = watch {
                    w.forget(pod_name);
                }
                return (Outcome::Error, Some(format!("{err:#}")));
            }
        }
        if settings.rehearsal {
            continue;
        }
        let (Some(watch), Some(receiver)) = (watch, receiver.as_mut()) else {
            continue;
        };
        reporter.update(&format!("waiting for {pod_name} to come back Ready"));
        let waited = loop {
            let replaced = match &*receiver.borrow_and_update() {
                Seen::Present(new) if new.metadata.uid != old_uid => {
                    let info = PodInfo::from(new.as_ref());
                    Some(info.ready && action.pod_runs_expected_proxy(&info))
                }
                Seen::Broken(message) => {
                    break Err((
                        Outcome::Error,
                        Some(format!("cannot watch pod {pod_name}: {message}")),
                    ));
                }
                _ => None,
            };
            if replaced == Some(true) {
                break Ok(());
            }
            match tokio::time::timeout_at(deadline, receiver.changed()).await {
                Ok(Ok(())) => {}
                Ok(Err(_)) => break Err((Outcome::Error, Some("the watch stopped".into()))),
                Err(_) => {
                    break Err((
                        Outcome::TimedOut,
                        Some(format!(
                            "pod {pod_name} not Ready on the expected proxy after {} (--timeout)",
                            humantime(settings.timeout)
                        )),
                    ));
                }
            }
        };
        watch.forget(pod_name);
        if let Err(end) = waited {
            return end;
        }
    }
    if settings.rehearsal {
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
async fn verify(api: &ApiClient, plan: &RestartPlan, results: &mut [WorkloadResult]) {
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
        .list_all::<Pod, _>(&scope, &ListSelector::everything(), |p| {
            Some(PodInfo::from(&p))
        })
        .await
    {
        Ok(pods) => pods,
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
