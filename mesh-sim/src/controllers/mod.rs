//! The simulated cluster's controllers, run on the simulated clock.
//!
//! They do what kube-controller-manager, the scheduler, the kubelet and a
//! cloud controller do in a real cluster, as far as a mesh upgrade sees it:
//!
//! | module          | what it keeps true                                                   |
//! |-----------------|----------------------------------------------------------------------|
//! | [`deployment`]  | ReplicaSets per template; rolling/recreate rollouts; rollout status   |
//! | [`replicaset`]  | `spec.replicas` pods; `FailedCreate` when admission refuses a pod     |
//! | [`statefulset`] | ordinal pods; RollingUpdate (highest first, partition) and OnDelete   |
//! | [`daemonset`]   | one pod per node; rolling update with maxUnavailable/maxSurge         |
//! | [`job`]         | pods until `completions` succeed                                      |
//! | [`cronjob`]     | CronJob status from the Jobs it owns (no schedule is run)             |
//! | [`rollout`]     | Argo Rollouts: ReplicaSets per template, canary/blueGreen, restarts   |
//! | [`pods`]        | binding, start, Ready after a delay (`mesh-sim.io/never-ready` etc.)  |
//! | [`endpoints`]   | Endpoints and EndpointSlices of Services from the pods they select     |
//! | [`pdb`]         | PodDisruptionBudget status (`disruptionsAllowed`)                     |
//! | [`cluster`]     | Nodes (the cordon taint), Namespace phase, Service IPs and load balancers |
//! | [`gateway`]     | istiod's Gateway API controllers: classes, rendered gateways, status  |
//! | [`ambient`]     | Istio's CNI agent: `ambient.istio.io/redirection` on captured pods     |
//! | [`defaults`]    | the API server's defaults for workload and Service specs              |
//!
//! Every write goes through [`World`] (so admission, generations, resource
//! versions and watch events are those of any other write), and one pass,
//! [`reconcile`], looks only at what changed since the last one or fell
//! due on the clock ([`state`]): a pass over a quiet 50,000-pod cluster
//! reads nothing. A pass runs the controllers in rounds, top-down
//! (Deployments, ReplicaSets, pods, then Services and PDBs), until a round
//! writes nothing, so one call carries a change as far as it goes without
//! the clock moving.
//!
//! Time: a pod's readiness, a Job's completion, a Deployment's progress
//! deadline and `minReadySeconds` are timers on the simulated clock.
//! [`settle`] jumps the clock from timer to timer until [`is_settled`].

pub mod ambient;
pub mod cluster;
pub mod cronjob;
pub mod daemonset;
pub mod defaults;
pub mod deployment;
pub mod endpoints;
pub mod events;
pub mod gateway;
pub mod job;
pub mod pdb;
pub mod pods;
pub mod replicaset;
pub mod revisions;
pub mod rollout;
pub mod state;
pub mod statefulset;
pub mod util;

use std::time::Duration;

pub use state::ControllerState;

use crate::world::World;

/// Rounds in one [`reconcile`] call; a rollout step takes about five.
const MAX_ROUNDS: usize = 40;

/// How far [`settle`] lets the simulated clock run looking for quiet: long
/// enough for a stuck Deployment to pass the default 600 s progress deadline.
const SETTLE_LIMIT: Duration = Duration::from_secs(15 * 60);

/// The step [`settle`] takes when no timer is pending.
const SETTLE_STEP: Duration = Duration::from_millis(500);

/// Runs every controller on whatever changed or fell due, in rounds until
/// nothing more changes; returns whether anything was written.
pub fn reconcile(world: &mut World) -> bool {
    let start = world.store.resource_version();
    let mut st = std::mem::take(&mut world.controllers);
    if !st.initialized {
        cluster::create_nodes(world, world.clock.now());
    }
    for _ in 0..MAX_ROUNDS {
        let now = world.clock.now();
        st.absorb(world);
        st.fire_timers(now);
        if st.dirty.is_empty() {
            break;
        }
        run_round(world, &mut st, now);
    }
    world.controllers = st;
    world.store.resource_version() != start
}

fn run_round(world: &mut World, st: &mut ControllerState, now: chrono::DateTime<chrono::Utc>) {
    for ns in std::mem::take(&mut st.dirty.namespaces) {
        cluster::sync_namespace(world, &ns);
    }
    for node in std::mem::take(&mut st.dirty.nodes) {
        cluster::sync_node(world, &node, now);
    }
    st.absorb(world);
    for key in std::mem::take(&mut st.dirty.deployments) {
        deployment::sync(world, st, &key, now);
    }
    st.absorb(world);
    for key in std::mem::take(&mut st.dirty.rollouts) {
        rollout::sync(world, st, &key, now);
    }
    st.absorb(world);
    for key in std::mem::take(&mut st.dirty.replicasets) {
        replicaset::sync(world, st, &key, now);
    }
    st.absorb(world);
    for key in std::mem::take(&mut st.dirty.statefulsets) {
        statefulset::sync(world, st, &key, now);
    }
    let mut daemonsets = std::mem::take(&mut st.dirty.daemonsets);
    if std::mem::take(&mut st.dirty.all_daemonsets) {
        daemonsets.extend(
            world
                .store
                .list_stored(crate::resources::kinds::daemonsets(), None)
                .map(|(k, _)| k.clone()),
        );
    }
    for key in daemonsets {
        daemonset::sync(world, st, &key, now);
    }
    for key in std::mem::take(&mut st.dirty.jobs) {
        job::sync(world, st, &key, now);
    }
    st.absorb(world);
    for key in std::mem::take(&mut st.dirty.cronjobs) {
        cronjob::sync(world, st, &key, now);
    }
    st.absorb(world);
    let nodes = pods::nodes(world);
    let pods_dirty = std::mem::take(&mut st.dirty.pods);
    let agents = if pods_dirty.is_empty() {
        None
    } else {
        ambient::node_agents(world)
    };
    for key in pods_dirty {
        pods::sync(world, st, &key, now, &nodes, agents.as_ref());
    }
    st.absorb(world);
    ambient::sync(world, st);
    st.absorb(world);

    // Services and PDBs: the changed ones, and every one in a namespace
    // whose pods changed. The namespace's pods are indexed once for both,
    // one namespace at a time (decoded pods are far larger than stored
    // ones, so a pass never holds more than one namespace's).
    let pod_namespaces = std::mem::take(&mut st.dirty.pod_namespaces);
    let mut services = std::mem::take(&mut st.dirty.services);
    let mut budgets = std::mem::take(&mut st.dirty.pdbs);
    for ns in &pod_namespaces {
        services.extend(
            world
                .store
                .list_stored(crate::resources::kinds::services(), Some(ns))
                .map(|(k, _)| k.clone()),
        );
        budgets.extend(
            world
                .store
                .list_stored(crate::resources::kinds::pdbs(), Some(ns))
                .map(|(k, _)| k.clone()),
        );
    }
    type Keys<'a> = Vec<&'a crate::store::ObjKey>;
    let mut by_namespace: std::collections::BTreeMap<&str, (Keys, Keys)> =
        std::collections::BTreeMap::new();
    for key in &services {
        by_namespace.entry(&key.namespace).or_default().0.push(key);
    }
    for key in &budgets {
        by_namespace.entry(&key.namespace).or_default().1.push(key);
    }
    for (services, budgets) in by_namespace.into_values() {
        let mut namespace_pods = std::collections::HashMap::new();
        for key in services {
            cluster::sync_service_allocations(world, st, key);
            endpoints::sync(world, st, key, &mut namespace_pods);
        }
        for key in budgets {
            pdb::sync(world, st, key, &mut namespace_pods, now);
        }
    }

    // istiod's gateway controller, last: it renders Deployments (rolled out
    // in the next round) and reads the endpoints this round wrote.
    let mut gateways = std::mem::take(&mut st.dirty.gateways);
    let all_gateways = std::mem::take(&mut st.dirty.all_gateways);
    if all_gateways || !gateways.is_empty() {
        let istiods = gateway::istiods(world);
        if all_gateways {
            gateway::sync_classes(world, &istiods);
            gateways.extend(
                world
                    .store
                    .list_stored(crate::resources::kinds::gateways(), None)
                    .map(|(k, _)| k.clone()),
            );
        }
        for key in gateways {
            gateway::sync(world, &key, &istiods);
        }
    }
}

/// Whether the controllers have nothing left to do: every change has been
/// looked at, and no pod is waiting to become Ready, no Job to finish, no
/// rollout to reach its deadline. A rollout stuck for good counts as
/// settled once its `ProgressDeadlineExceeded` condition is set.
pub fn is_settled(world: &World) -> bool {
    let st = &world.controllers;
    st.initialized
        && st.dirty.is_empty()
        && !st.timers.has_blocking()
        && !st.has_unabsorbed_changes(world)
}

/// Runs [`reconcile`], moving the simulated clock to the next timer each
/// time the controllers are idle, until [`is_settled`] or 15 simulated
/// minutes have passed; returns whether it settled.
pub fn settle(world: &mut World) -> bool {
    let limit = world.clock.now() + chrono::Duration::from_std(SETTLE_LIMIT).unwrap_or_default();
    loop {
        reconcile(world);
        if is_settled(world) {
            return true;
        }
        let now = world.clock.now();
        if now >= limit {
            return false;
        }
        // A due timer still moves the clock a little, so churn that never
        // quiets down cannot hold a paused clock (and this loop) forever.
        let step = match world.controllers.timers.next() {
            Some(at) => (at - now).to_std().unwrap_or_default(),
            None => SETTLE_STEP,
        };
        let room = (limit - now).to_std().unwrap_or_default();
        world
            .clock
            .advance(step.min(room).max(Duration::from_millis(1)));
    }
}

#[cfg(test)]
mod tests;

#[cfg(test)]
mod ambient_tests;
