//! `status --watch`: keep the read set's lists current through watches and
//! show a fresh snapshot after each burst of changes, until Ctrl-C.
//!
//! ```text
//!  ListPosition ×n ─► a task each: ResumableWatch from the LIST's resourceVersion
//!                       (resume when the server ends it; 410 → LIST again,
//!                        converted page by page; a refused WATCH ends the view)
//!                   ─► change_of (collect::live) ─► channel ─┐
//!  LiveLists ◄── apply ◄────────────────────────────────────┘
//!      └─► Pacer says when ─► snapshot ─► show (the caller builds and prints)
//! ```
//!
//! No LIST is made per event and nothing is polled: after the first read,
//! requests are only WATCHes (one per LIST of the read, resumed when the
//! server ends them) and a LIST when a watch's position expired.
//!
//! Bounded on a big cluster: a burst of events (a rollout of many
//! workloads) is applied as it arrives, but the snapshot is rebuilt and
//! shown at most once per [`Pace::min_interval`], and never more often than
//! [`Pace::cost_factor`] times what the last rebuild took, so rebuilding a
//! 50,000-pod screen cannot take more than a share of a core however fast
//! events come. Only the compact structs are held between screens.

use std::time::Duration;

use k8s_openapi::api::admissionregistration::v1::MutatingWebhookConfiguration;
use k8s_openapi::api::apps::v1::{DaemonSet, Deployment, ReplicaSet, StatefulSet};
use k8s_openapi::api::batch::v1::{CronJob, Job};
use k8s_openapi::api::core::v1::{ConfigMap, Namespace, Node, Pod, Service};
use k8s_openapi::api::discovery::v1::EndpointSlice;
use k8s_openapi::api::policy::v1::PodDisruptionBudget;
use tokio::sync::mpsc;
use tokio::task::JoinSet;
use tokio::time::Instant;

use super::Interrupts;
use crate::api::{ApiClient, WatchOrigin, WatchPolicy};
use crate::collect::live::{Item, ListChange, LiveLists, Watched, change_of};
use crate::collect::{ListKind, ListPosition};
use crate::snapshot::gateway_api::{Gateway, GatewayClass};
use crate::snapshot::{ClusterSnapshot, Rollout};

/// How often a changing cluster is shown again.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Pace {
    /// The shortest time between two screens.
    pub min_interval: Duration,
    /// How long the first change after a quiet spell waits for the rest of
    /// its burst (a rollout's ReplicaSet, pods and Deployment status arrive
    /// as separate events a few milliseconds apart).
    pub settle: Duration,
    /// At least this many times the last rebuild's duration passes between
    /// two screens.
    pub cost_factor: u32,
}

/// The pace of `status --watch`: at most two screens a second, and
/// rebuilding takes at most a fifth of the time.
pub const PACE: Pace = Pace {
    min_interval: Duration::from_millis(500),
    settle: Duration::from_millis(50),
    cost_factor: 5,
};

/// When to show the next screen, from when changes came and what the last
/// screen cost. Pure: every instant is passed in.
#[derive(Debug, Clone)]
pub struct Pacer {
    pace: Pace,
    /// The earliest the next screen may be shown.
    not_before: Instant,
    /// A change is waiting to be shown.
    pending: bool,
}

impl Pacer {
    /// A pacer whose first screen was shown at `now`.
    pub fn new(pace: Pace, now: Instant) -> Self {
        Pacer {
            pace,
            not_before: now,
            pending: false,
        }
    }

    /// Something changed at `now`.
    pub fn changed(&mut self, now: Instant) {
        if !self.pending {
            self.pending = true;
            self.not_before = self.not_before.max(now + self.pace.settle);
        }
    }

    /// When the next screen is due, if a change is waiting.
    pub fn due(&self) -> Option<Instant> {
        self.pending.then_some(self.not_before)
    }

    /// A screen was shown at `now`, having taken `cost` to build.
    pub fn shown(&mut self, now: Instant, cost: Duration) {
        self.pending = false;
        let gap = self
            .pace
            .min_interval
            .max(cost.saturating_mul(self.pace.cost_factor));
        self.not_before = now + gap;
    }
}

/// How the lists' watches start over when a position expired or a WATCH
/// failed: a LIST (converted page by page), and up to eight failed starts in
/// a row (waiting 0.5 s, 1 s, ... 3.5 s between them: about 14 s of a server
/// in trouble) before the view ends with the error.
const POLICY: WatchPolicy = WatchPolicy {
    origin: WatchOrigin::List,
    max_failed_starts: 8,
    backoff_step: Duration::from_millis(500),
};

/// Changes in flight from the watch tasks; a full channel holds the watches
/// back rather than growing.
const CHANNEL: usize = 1024;

/// What the watch tasks send: a change, or the error that ended one.
type Message = anyhow::Result<ListChange>;

/// Show `lists`' snapshot, then watch every list from its position and show
/// the snapshot again after each burst of changes, paced by `pace`, until
/// the first Ctrl-C (`Ok`). A watch that cannot go on (refused, or failing
/// past [`POLICY`]) ends it with its error, as does an error of `show`.
pub async fn follow(
    api: &ApiClient,
    mut lists: LiveLists,
    positions: &[ListPosition],
    control_plane_namespace: &str,
    interrupts: &Interrupts,
    pace: Pace,
    mut show: impl FnMut(&ClusterSnapshot) -> anyhow::Result<()>,
) -> anyhow::Result<()> {
    let started = Instant::now();
    lists.with_snapshot(&mut show)?;
    let mut pacer = Pacer::new(pace, Instant::now());
    pacer.shown(Instant::now(), started.elapsed());

    let (sender, mut changes) = mpsc::channel::<Message>(CHANNEL);
    // Dropped when this returns, which aborts every watch.
    let mut watches = JoinSet::new();
    for position in positions {
        spawn_watch(
            &mut watches,
            api,
            position.clone(),
            control_plane_namespace,
            sender.clone(),
        );
    }
    drop(sender);

    // Changes applied since the last screen, for `-v=2`.
    let mut applied = 0usize;
    loop {
        let due = pacer.due();
        tokio::select! {
            // Ctrl-C first, then a due screen, then changes: a steady
            // stream of events can delay a screen by one event, never more.
            biased;
            () = interrupts.first() => return Ok(()),
            () = sleep_until(due), if due.is_some() => {
                let began = Instant::now();
                lists.with_snapshot(&mut show)?;
                let cost = began.elapsed();
                tracing::debug!(
                    "status --watch: {applied} changes applied, the screen took {} ms",
                    cost.as_millis()
                );
                applied = 0;
                pacer.shown(Instant::now(), cost);
            }
            message = changes.recv() => match message {
                Some(Ok(change)) => {
                    if lists.apply(change) {
                        applied += 1;
                        pacer.changed(Instant::now());
                    }
                }
                Some(Err(err)) => return Err(err),
                // Every watch ended, which none does on its own.
                None => return Ok(()),
            },
        }
    }
}

async fn sleep_until(at: Option<Instant>) {
    if let Some(at) = at {
        tokio::time::sleep_until(at).await;
    }
}

/// Start the watch of one list, as the kind its position names.
fn spawn_watch(
    watches: &mut JoinSet<()>,
    api: &ApiClient,
    position: ListPosition,
    control_plane_namespace: &str,
    sender: mpsc::Sender<Message>,
) {
    let api = api.clone();
    let cp = control_plane_namespace.to_string();
    match position.kind {
        ListKind::Namespaces => {
            watches.spawn(watch_list::<Namespace>(api, position, cp, sender));
        }
        ListKind::WebhookConfigurations => {
            watches.spawn(watch_list::<MutatingWebhookConfiguration>(
                api, position, cp, sender,
            ));
        }
        ListKind::Deployments | ListKind::Istiods => {
            watches.spawn(watch_list::<Deployment>(api, position, cp, sender));
        }
        ListKind::StatefulSets => {
            watches.spawn(watch_list::<StatefulSet>(api, position, cp, sender));
        }
        ListKind::DaemonSets => {
            watches.spawn(watch_list::<DaemonSet>(api, position, cp, sender));
        }
        ListKind::ReplicaSets => {
            watches.spawn(watch_list::<ReplicaSet>(api, position, cp, sender));
        }
        ListKind::Pods => {
            watches.spawn(watch_list::<Pod>(api, position, cp, sender));
        }
        ListKind::Services => {
            watches.spawn(watch_list::<Service>(api, position, cp, sender));
        }
        ListKind::PodDisruptionBudgets => {
            watches.spawn(watch_list::<PodDisruptionBudget>(api, position, cp, sender));
        }
        ListKind::EndpointSlices => {
            watches.spawn(watch_list::<EndpointSlice>(api, position, cp, sender));
        }
        ListKind::InjectorConfigs => {
            watches.spawn(watch_list::<ConfigMap>(api, position, cp, sender));
        }
        ListKind::Rollouts => {
            watches.spawn(watch_list::<Rollout>(api, position, cp, sender));
        }
        ListKind::Jobs => {
            watches.spawn(watch_list::<Job>(api, position, cp, sender));
        }
        ListKind::CronJobs => {
            watches.spawn(watch_list::<CronJob>(api, position, cp, sender));
        }
        ListKind::Gateways => {
            watches.spawn(watch_list::<Gateway>(api, position, cp, sender));
        }
        ListKind::GatewayClasses => {
            watches.spawn(watch_list::<GatewayClass>(api, position, cp, sender));
        }
        ListKind::Nodes => {
            watches.spawn(watch_list::<Node>(api, position, cp, sender));
        }
    }
}

/// Watch one list from its position and send each change; stop after
/// sending an error, or when no one listens.
async fn watch_list<K: Watched>(
    api: ApiClient,
    position: ListPosition,
    control_plane_namespace: String,
    sender: mpsc::Sender<Message>,
) {
    let kind = position.kind;
    let cp = control_plane_namespace.clone();
    let mut watch = api
        .resumable_watch_keeping::<K, Item>(
            position.scope.clone(),
            position.selector.clone(),
            POLICY,
            move |object: K| object.keep(kind, &cp),
        )
        .starting_at(position.resource_version.clone())
        .forbidden_is_final();
    loop {
        let message = match watch.next_event(None).await {
            Ok(Some(change)) => Ok(change_of(change, &position, &control_plane_namespace)),
            Ok(None) => continue,
            Err(err) => Err(err),
        };
        let failed = message.is_err();
        if sender.send(message).await.is_err() || failed {
            return;
        }
    }
}

#[cfg(test)]
mod tests;
