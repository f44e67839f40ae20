//! Running a [`RollPlan`]: node by node (at most `nodes_at_once` at once),
//! each through its writes and waits.
//!
//! ```text
//! plan.nodes ─► batch (≤ nodes_at_once; a failed node or Ctrl-C starts no more)
//!   per node (one deadline, --timeout):
//!     cordon ─► apply (409 → read the node: ours → landed, theirs → keep theirs, open → again)
//!     each eviction ─► 429 from its PDB ─► await_condition(PDBs of its namespace: budget_allows) ─► again
//!     ─► await_condition(pods on the node: evicted_gone)
//!     delete the ztunnel pod (uid) ─► await_condition(pods on the node: replacement_ready)
//!     uncordon (read the node first; only while our annotation is there)
//!   stopped before the ztunnel was deleted (failure, timeout, second Ctrl-C):
//!     uncordon what we cordoned, and say so
//!   stopped after: leave it cordoned (its new ztunnel is not Ready), and say
//!     which node and how to uncordon it
//! ```
//!
//! Every wait is one [`await_condition`] over a [`WatchedSet`] (the node's
//! pods by `fieldSelector=spec.nodeName`, or a namespace's budgets) with a
//! pure condition from `mesh::ztunnel_roll`, ending at the node's deadline
//! or the second Ctrl-C. A server dry run sends every write with
//! `dryRun=All` and waits for nothing.

use std::collections::BTreeSet;
use std::time::{Duration, Instant};

use k8s_openapi::api::core::v1::Pod;
use k8s_openapi::api::policy::v1::PodDisruptionBudget;

use super::Reporter;
use super::apply::{Applied, Replan, Sent, apply, read, send};
use super::batch::{StopCause, run_bounded};
use super::interrupt::Interrupts;
use super::wait::{StateSource, Verdict, Waited, await_condition};
use crate::api::{ApiClient, KnownScope, ListScope, ListSelector, WatchedSet};
use crate::duration::human_duration;
use crate::mesh::ztunnel_roll::{
    CordonEnd, NodeNow, NodeOutcome, NodeResult, NodeStep, RollPlan, StepKind, Wait, budget_allows,
    cordon_write, evicted_gone, newcomers, replacement_ready, uncordon_write,
};
use crate::snapshot::{PdbInfo, PodInfo};
use crate::write::ObjectKind;

/// How the roll runs.
#[derive(Clone, Copy, Debug)]
pub struct RollSettings {
    /// Bound of each node's whole sequence.
    pub timeout: Duration,
    /// Nodes at once (at least 1).
    pub nodes_at_once: usize,
    /// `--dry-run=server`: every write with `dryRun=All`, no waits.
    pub rehearsal: bool,
}

/// What the run did.
#[derive(Debug)]
pub struct RollRun {
    /// One per planned node, in plan order.
    pub results: Vec<NodeResult>,
    pub interrupted: bool,
}

/// A write lost this many conflicts in a row: give up on it.
const CONFLICT_RETRIES: u32 = 5;

/// Runs every node of `plan`.
pub async fn run_roll(
    api: &ApiClient,
    plan: &RollPlan,
    settings: RollSettings,
    interrupts: &Interrupts,
    reporter: &dyn Reporter,
) -> RollRun {
    let batch = run_bounded(
        plan.nodes.len(),
        settings.nodes_at_once,
        interrupts,
        |index| {
            let step = &plan.nodes[index];
            async move {
                let started = Instant::now();
                let progress = reporter.step(&format!("node/{}", step.node));
                let mut job = Job {
                    api,
                    plan,
                    step,
                    settings,
                    interrupts,
                    deadline: tokio::time::Instant::now() + settings.timeout,
                    progress: &*progress,
                    result: untouched(step, NodeOutcome::Rolled),
                };
                job.run().await;
                let mut result = job.result;
                result.seconds = Some((started.elapsed().as_secs_f64() * 10.0).round() / 10.0);
                progress.done(&describe(&result));
                result
            }
        },
        |result: &NodeResult| matches!(result.outcome, NodeOutcome::Failed | NodeOutcome::TimedOut),
        |cause, result: Option<&NodeResult>, in_flight| {
            let waiting = match in_flight {
                0 => String::new(),
                n => format!(
                    "; finishing the {n} node{} in flight",
                    if n == 1 { "" } else { "s" }
                ),
            };
            match cause {
                StopCause::Failure(index) => reporter.note(&format!(
                    "node {} {}: starting no more nodes{waiting}",
                    plan.nodes[index].node,
                    result.map_or("failed", |r| r.outcome.as_str())
                )),
                StopCause::Interrupt => reporter.note(&format!(
                    "Interrupted: starting no more nodes{waiting}{}",
                    if in_flight > 0 {
                        " (Ctrl-C again to stop waiting; a node whose ztunnel is not yet replaced is uncordoned)"
                    } else {
                        ""
                    }
                )),
            }
        },
    );
    let outcome = interrupts.noting_the_second(batch, reporter).await;
    let results = outcome
        .results
        .into_iter()
        .zip(&plan.nodes)
        .map(|(result, step)| result.unwrap_or_else(|| untouched(step, NodeOutcome::NotStarted)))
        .collect();
    RollRun {
        results,
        interrupted: outcome.interrupted,
    }
}

/// A node's result before anything is done to it: as planned, its cordon
/// as it is (ours from an earlier run is left as it is until uncordoned).
fn untouched(step: &NodeStep, outcome: NodeOutcome) -> NodeResult {
    NodeResult {
        node: step.node.clone(),
        outcome,
        detail: None,
        evicted: Vec::new(),
        replaced: None,
        new_ztunnel: None,
        cordon: if step.cordoned.is_ours() {
            CordonEnd::LeftCordoned
        } else if step.cordoned.is_cordoned() {
            CordonEnd::SomeoneElses
        } else {
            CordonEnd::None
        },
        seconds: None,
    }
}

fn describe(result: &NodeResult) -> String {
    let mut text = result.outcome.as_str().to_string();
    if let Some(detail) = &result.detail {
        text.push_str(": ");
        text.push_str(detail);
    }
    text
}

/// A wait's end other than done: how the node ends.
struct Stop {
    outcome: NodeOutcome,
    detail: String,
}

/// One node's run.
struct Job<'a> {
    api: &'a ApiClient,
    plan: &'a RollPlan,
    step: &'a NodeStep,
    settings: RollSettings,
    interrupts: &'a Interrupts,
    deadline: tokio::time::Instant,
    progress: &'a dyn super::StepReporter,
    result: NodeResult,
}

impl Job<'_> {
    async fn run(&mut self) {
        let node = self.step.node.clone();
        // The node's pods, for both waits (evicted pods gone, new ztunnel Ready).
        let mut pods = (!self.settings.rehearsal).then(|| {
            Watched::new(
                self.api.watch_set::<Pod>(
                    ListScope::All,
                    ListSelector {
                        labels: None,
                        fields: Some(format!("spec.nodeName={node}")),
                    },
                ),
                |p: &Pod| PodInfo::from(p),
            )
        });
        if let Err(stop) = self.cordon().await {
            return self.stop(stop, false).await;
        }
        if let Err(stop) = self.evict(pods.as_mut()).await {
            return self.stop(stop, false).await;
        }
        let replaced = match self.replace(pods.as_mut()).await {
            Ok(()) => true,
            Err((stop, deleted)) => return self.stop(stop, deleted).await,
        };
        if let Err(stop) = self.uncordon().await {
            return self.stop(stop, replaced).await;
        }
        self.result.outcome = match (self.settings.rehearsal, self.step.kind) {
            (true, _) => NodeOutcome::Rehearsed,
            (false, StepKind::Uncordon) => NodeOutcome::Uncordoned,
            (false, StepKind::Roll) => NodeOutcome::Rolled,
        };
    }

    /// Ends the node early: uncordons what we cordoned unless its ztunnel
    /// was already deleted (a node without a Ready ztunnel stays cordoned).
    async fn stop(&mut self, stop: Stop, ztunnel_deleted: bool) {
        self.result.outcome = stop.outcome;
        self.result.detail = Some(stop.detail);
        if self.result.cordon != CordonEnd::LeftCordoned || self.settings.rehearsal {
            return;
        }
        if ztunnel_deleted {
            let why = format!(
                "left cordoned: its new ztunnel is not Ready yet; once `kubectl -n {} get pods -l app=ztunnel --field-selector spec.nodeName={}` shows it Ready, run `kubectl uncordon {}` (or this command again, which uncordons it)",
                self.plan
                    .daemon_set
                    .as_deref()
                    .and_then(|d| d.split('/').next())
                    .unwrap_or("istio-system"),
                self.step.node,
                self.step.node
            );
            self.add_detail(&why);
            return;
        }
        self.progress
            .update("uncordoning (its ztunnel was not touched)");
        match self.uncordon_now().await {
            Ok(()) => self.add_detail("uncordoned again (its ztunnel was not replaced)"),
            Err(error) => {
                let why = format!(
                    "left cordoned: uncordoning failed ({error}); run `kubectl uncordon {}`",
                    self.step.node
                );
                self.add_detail(&why);
            }
        }
    }

    fn add_detail(&mut self, text: &str) {
        let detail = self.result.detail.get_or_insert_with(String::new);
        if !detail.is_empty() {
            detail.push_str("; ");
        }
        detail.push_str(text);
    }

    async fn cordon(&mut self) -> Result<(), Stop> {
        let Some(cordon) = &self.step.cordon else {
            return Ok(());
        };
        self.progress.update("cordoning");
        let node = self.step.node.clone();
        let at = self.plan.cordoned_at.clone();
        let applied =
            apply(
                self.api,
                cordon.clone(),
                (),
                CONFLICT_RETRIES,
                |fresh| match NodeNow::of(fresh) {
                    NodeNow::OursCordoned { .. } => Replan::Landed(()),
                    NodeNow::TheirsCordoned => Replan::Unneeded(
                        "someone else cordoned it meanwhile: their cordon is left as it is"
                            .to_string(),
                    ),
                    NodeNow::Open { resource_version } => {
                        Replan::Send(cordon_write(&node, &resource_version, &at), ())
                    }
                    NodeNow::Gone => Replan::Fail(format!("node {node} was deleted")),
                },
            )
            .await;
        match applied {
            Applied::Written { .. } => {
                self.result.cordon = CordonEnd::LeftCordoned;
                Ok(())
            }
            Applied::Unneeded { why, .. } => {
                self.result.cordon = CordonEnd::SomeoneElses;
                self.add_detail(&why);
                Ok(())
            }
            Applied::Failed { error, .. } => Err(Stop {
                outcome: NodeOutcome::Failed,
                detail: format!("cordoning failed: {error:#}"),
            }),
        }
    }

    async fn evict(&mut self, mut pods: Option<&mut Watched<Pod, PodInfo>>) -> Result<(), Stop> {
        let mut evicted_uids = BTreeSet::new();
        let mut evictions = self.step.evictions.clone();
        if self.plan.drain && self.step.kind == StepKind::Roll {
            if let Some(pods) = pods.as_deref_mut() {
                // What is on the node now: pods an earlier node's drain sent
                // here are carried by this ztunnel too.
                self.progress.update("reading the node's pods");
                match pods.next_state(self.deadline).await {
                    Ok(Some(now)) => evictions.extend(newcomers(&now, self.step)),
                    Ok(None) => {}
                    Err(why) => {
                        return Err(Stop {
                            outcome: NodeOutcome::Failed,
                            detail: format!("cannot read the pods on the node: {why}"),
                        });
                    }
                }
                pods.fresh_wait();
            }
        }
        let total = evictions.len();
        for (done, eviction) in evictions.iter().enumerate() {
            let name = format!("{}/{}", eviction.namespace, eviction.pod);
            loop {
                if self.interrupts.stop_waiting() {
                    return Err(self.interrupted());
                }
                self.progress
                    .update(&format!("evicting {name} ({done} of {total} evicted)"));
                let sent = send(self.api, &eviction.write)
                    .await
                    .map_err(|error| Stop {
                        outcome: NodeOutcome::Failed,
                        detail: format!("evicting {name} failed: {error:#}"),
                    })?;
                match sent {
                    Sent::EvictionRefused(why) if self.settings.rehearsal => {
                        self.add_detail(&format!("{name}: would wait: {why}"));
                        break;
                    }
                    Sent::EvictionRefused(why) => {
                        self.progress.update(&format!("{name}: {why}"));
                        self.wait_for_budget(eviction, &why).await?;
                    }
                    Sent::AlreadyGone => break,
                    _ => {
                        self.result.evicted.push(name.clone());
                        if let crate::write::Precondition::Uid(uid) = &eviction.write.precondition {
                            evicted_uids.insert(uid.clone());
                        }
                        break;
                    }
                }
            }
        }
        let Some(pods) = pods else {
            return Ok(());
        };
        if evicted_uids.is_empty() {
            return Ok(());
        }
        self.progress.update("waiting for the evicted pods to go");
        let waited = await_condition(
            pods,
            |state: &Vec<PodInfo>| verdict(evicted_gone(state, &evicted_uids)),
            self.deadline,
            self.interrupts.second(),
            |what| self.progress.update(what),
        )
        .await;
        self.waited(waited, "the evicted pods to terminate")
    }

    async fn wait_for_budget(
        &mut self,
        eviction: &crate::mesh::ztunnel_roll::PlannedEviction,
        why: &str,
    ) -> Result<(), Stop> {
        let mut budgets = Watched::new(
            self.api.watch_set::<PodDisruptionBudget>(
                ListScope::Namespace(eviction.namespace.clone()),
                ListSelector::everything(),
            ),
            |b: &PodDisruptionBudget| PdbInfo::from(b),
        );
        let labels = eviction.labels.clone();
        let waited = await_condition(
            &mut budgets,
            |state: &Vec<PdbInfo>| verdict(budget_allows(state, &labels)),
            self.deadline,
            self.interrupts.second(),
            |what| self.progress.update(what),
        )
        .await;
        let waited_for = format!(
            "the PodDisruptionBudget to allow evicting {}/{} ({why})",
            eviction.namespace, eviction.pod
        );
        self.waited(waited, &waited_for)
    }

    /// Deletes the node's ztunnel and waits for the new one; on an error,
    /// whether the old one was deleted.
    async fn replace(
        &mut self,
        pods: Option<&mut Watched<Pod, PodInfo>>,
    ) -> Result<(), (Stop, bool)> {
        let Some(delete) = &self.step.replace else {
            return Ok(());
        };
        if self.interrupts.stop_waiting() {
            return Err((self.interrupted(), false));
        }
        self.progress.update(&format!(
            "replacing ztunnel {}",
            self.step.ztunnel_pod.as_deref().unwrap_or("?")
        ));
        match send(self.api, delete).await {
            Ok(_) => self.result.replaced = Some(delete.target.name.clone()),
            Err(error) => {
                return Err((
                    Stop {
                        outcome: NodeOutcome::Failed,
                        detail: format!(
                            "deleting ztunnel {} failed: {error:#}",
                            delete.target.name
                        ),
                    },
                    false,
                ));
            }
        }
        let Some(pods) = pods else {
            return Ok(());
        };
        let image = self.plan.target_image.clone().unwrap_or_default();
        let node = self.step.node.clone();
        let old = self.step.ztunnel_uid.clone();
        self.progress
            .update("waiting for the new ztunnel to be Ready");
        pods.fresh_wait();
        let waited = await_condition(
            pods,
            |state: &Vec<PodInfo>| verdict(replacement_ready(state, &node, &old, &image)),
            self.deadline,
            self.interrupts.second(),
            |what| self.progress.update(what),
        )
        .await;
        match waited {
            Waited::Done(name) => {
                self.result.new_ztunnel = Some(name);
                Ok(())
            }
            other => {
                let waited_for = format!(
                    "a new ztunnel on {} Ready on {}",
                    self.step.node,
                    self.plan.target_version.as_deref().unwrap_or(&image)
                );
                Err((
                    self.waited(other.map_done(|_| ()), &waited_for)
                        .err()
                        .unwrap_or_else(|| self.interrupted()),
                    true,
                ))
            }
        }
    }

    async fn uncordon(&mut self) -> Result<(), Stop> {
        if self.step.uncordon.is_none() || self.result.cordon != CordonEnd::LeftCordoned {
            return Ok(());
        }
        self.progress.update("uncordoning");
        self.uncordon_now().await.map_err(|error| Stop {
            outcome: NodeOutcome::Failed,
            detail: format!("uncordoning failed: {error}"),
        })
    }

    /// Uncordon if our cordon is still there: read the node, then patch at
    /// the version read (a 409 reads it again).
    async fn uncordon_now(&mut self) -> Result<(), String> {
        let node = self.step.node.clone();
        let target = crate::write::ObjectRef::cluster(ObjectKind::Node, &node);
        let fresh = read(self.api, &target)
            .await
            .map_err(|e| format!("{e:#}"))?;
        let resource_version = match NodeNow::of(fresh.as_ref()) {
            NodeNow::OursCordoned { resource_version } => resource_version,
            // A server dry run cordoned nothing: rehearse the patch as planned.
            NodeNow::Open { resource_version } if self.settings.rehearsal => resource_version,
            NodeNow::Open { .. } => {
                self.result.cordon = CordonEnd::Uncordoned;
                self.add_detail("someone uncordoned it meanwhile");
                return Ok(());
            }
            NodeNow::TheirsCordoned => {
                self.result.cordon = CordonEnd::SomeoneElses;
                self.add_detail("someone else took over its cordon: left as it is");
                return Ok(());
            }
            NodeNow::Gone => return Err(format!("node {node} was deleted")),
        };
        let applied = apply(
            self.api,
            uncordon_write(&node, &resource_version),
            (),
            CONFLICT_RETRIES,
            |fresh| match NodeNow::of(fresh) {
                NodeNow::OursCordoned { resource_version } => {
                    Replan::Send(uncordon_write(&node, &resource_version), ())
                }
                NodeNow::Open { .. } => Replan::Landed(()),
                NodeNow::TheirsCordoned => {
                    Replan::Unneeded("someone else took over its cordon".to_string())
                }
                NodeNow::Gone => Replan::Fail(format!("node {node} was deleted")),
            },
        )
        .await;
        match applied {
            Applied::Written { .. } => {
                if !self.settings.rehearsal {
                    self.result.cordon = CordonEnd::Uncordoned;
                }
                Ok(())
            }
            Applied::Unneeded { why, .. } => {
                self.result.cordon = CordonEnd::SomeoneElses;
                self.add_detail(&why);
                Ok(())
            }
            Applied::Failed { error, .. } => Err(format!("{error:#}")),
        }
    }

    fn interrupted(&self) -> Stop {
        Stop {
            outcome: NodeOutcome::Interrupted,
            detail: "stopped (second Ctrl-C)".to_string(),
        }
    }

    fn waited<T>(&self, waited: Waited<T>, what: &str) -> Result<(), Stop> {
        match waited {
            Waited::Done(_) => Ok(()),
            Waited::TimedOut { last } => Err(Stop {
                outcome: NodeOutcome::TimedOut,
                detail: format!(
                    "waited {} (--timeout) for {what}{}",
                    human_duration(self.settings.timeout),
                    last.map(|l| format!("; last: {l}")).unwrap_or_default()
                ),
            }),
            Waited::Broken(why) => Err(Stop {
                outcome: NodeOutcome::Failed,
                detail: format!("cannot watch for {what}: {why}"),
            }),
            Waited::Stopped { .. } => Err(self.interrupted()),
        }
    }
}

fn verdict<T>(wait: Wait<T>) -> Verdict<T> {
    match wait {
        Wait::Pending(what) => Verdict::Pending(Some(what)),
        Wait::Done(value) => Verdict::Done(value),
    }
}

trait MapDone<T> {
    fn map_done<U>(self, f: impl FnOnce(T) -> U) -> Waited<U>;
}

impl<T> MapDone<T> for Waited<T> {
    fn map_done<U>(self, f: impl FnOnce(T) -> U) -> Waited<U> {
        match self {
            Waited::Done(v) => Waited::Done(f(v)),
            Waited::TimedOut { last } => Waited::TimedOut { last },
            Waited::Broken(why) => Waited::Broken(why),
            Waited::Stopped { last } => Waited::Stopped { last },
        }
    }
}

/// A [`WatchedSet`] as a state source of converted objects. A new wait on
/// the same set first gets the state the last one saw ([`Watched::fresh_wait`]),
/// since the set only speaks again when something changes.
struct Watched<K, T> {
    set: WatchedSet<K>,
    convert: fn(&K) -> T,
    last: Option<Vec<T>>,
    replay: bool,
}

impl<K, T: Clone> Watched<K, T> {
    fn new(set: WatchedSet<K>, convert: fn(&K) -> T) -> Self {
        Watched {
            set,
            convert,
            last: None,
            replay: false,
        }
    }

    fn fresh_wait(&mut self) {
        self.replay = self.last.is_some();
    }
}

impl<K, T> StateSource for Watched<K, T>
where
    K: kube::core::Resource<DynamicType = ()>
        + serde::de::DeserializeOwned
        + Clone
        + std::fmt::Debug
        + Send
        + Sync
        + 'static,
    K::Scope: KnownScope,
    T: Clone + Send + Sync,
{
    type State = Vec<T>;

    async fn next_state(
        &mut self,
        deadline: tokio::time::Instant,
    ) -> Result<Option<Vec<T>>, String> {
        if std::mem::take(&mut self.replay)
            && let Some(last) = &self.last
        {
            return Ok(Some(last.clone()));
        }
        let Some(objects) = self
            .set
            .next(deadline)
            .await
            .map_err(|err| format!("{err:#}"))?
        else {
            return Ok(None);
        };
        let state: Vec<T> = objects.iter().map(self.convert).collect();
        self.last = Some(state.clone());
        Ok(Some(state))
    }
}

#[cfg(test)]
mod tests;
