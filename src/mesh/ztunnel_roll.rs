//! `ztunnel-roll`: upgrade ztunnel one node at a time, as a plan of typed
//! writes and the pure conditions its waits end on.
//!
//! ```text
//! snapshot ─► data_plane (mesh::ambient) ─► the ztunnel DaemonSet, node by node
//!   refusals: no ztunnel or istio-cni, RollingUpdate (the controller rolls it
//!             itself), the template's istiod missing or not Ready, a template
//!             newer than its istiod, istio-cni or the node not Ready on a node
//!   per node, in order (finish our earlier cordons, then fewest evictions first):
//!     cordon (merge patch: spec.unschedulable + mesh-upgrade.io/cordoned-by)
//!     evict the pods ztunnel carries there (PodDisruptionBudgets decide when)
//!     delete the node's ztunnel pod (uid precondition; OnDelete makes a new one)
//!     ── wait: the replacement Ready on the template's image ──
//!     uncordon (only a cordon this verb made; annotation removed)
//! ```
//!
//! Why the DaemonSet must already be `OnDelete`, rather than this verb
//! setting it: the strategy belongs to the chart's values (the next `helm
//! upgrade` writes it back), and on `RollingUpdate` the DaemonSet controller
//! replaces every node's ztunnel as soon as the template changes, with no
//! cordon or drain before: the verb could only race it.
//!
//! Resuming: a node this verb cordoned carries the annotation, so a rerun
//! finds it. A node whose ztunnel is already on the template and that we
//! cordoned gets its uncordon only; one still stale gets the rest of its
//! steps (its cordon is not made twice). A node someone else cordoned is
//! rolled without touching its cordon, and never uncordoned.

use std::collections::BTreeSet;

use chrono::{DateTime, SecondsFormat, Utc};
use serde::Serialize;
use serde_json::{Value, json};

use crate::mesh::API_VERSION;
use crate::mesh::ambient::{
    self, AmbientPod, ComponentNode, ComponentStatus, ControlPlaneRef, Cordon, ROLL_VERB, Skew,
};
use crate::mesh::control_plane::ControlPlane;
use crate::selector::LabelSelector;
use crate::snapshot::ambient::{CORDONED_AT_ANNOTATION, CORDONED_BY_ANNOTATION};
use crate::snapshot::{ClusterSnapshot, PdbInfo, PodInfo};
use crate::write::{ObjectKind, ObjectRef, Patch, Write};

/// What the user asked for.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct RollOptions {
    /// Nodes named on the command line (empty: every node).
    pub nodes: Vec<String>,
    /// `-l`: only nodes whose labels match.
    pub node_selector: Option<LabelSelector>,
    /// Cordon and evict before replacing (false with `--no-drain`).
    pub drain: bool,
    /// Nodes rolled at once (shown in the plan; the engine bounds it).
    pub nodes_at_once: usize,
}

/// An error in what was asked (exit 2), not a refusal.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum RollUsageError {
    #[error("node {0} does not exist or runs no ztunnel; nodes: {1}")]
    UnknownNode(String, String),
}

/// What happens to one node.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum StepKind {
    /// Cordon, drain, replace ztunnel, uncordon.
    Roll,
    /// An earlier run replaced its ztunnel and left our cordon: uncordon it.
    Uncordon,
}

/// A pod a drain evicts.
#[derive(Clone, Debug, PartialEq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct PlannedEviction {
    pub namespace: String,
    pub pod: String,
    /// `Deployment/productpage`, `null` for none.
    pub workload: Option<String>,
    /// The PodDisruptionBudget that decides when it may go.
    pub budget: Option<String>,
    /// Why it may hurt (`1 replica, no PDB`).
    pub risk: Option<String>,
    /// Its labels, to find its budget while waiting.
    #[serde(skip)]
    pub labels: crate::snapshot::Labels,
    pub write: Write,
}

/// A pod ztunnel carries that stays on the node.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct StayingPod {
    pub namespace: String,
    pub pod: String,
    pub why: String,
}

/// One node's steps.
#[derive(Clone, Debug, PartialEq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct NodeStep {
    pub node: String,
    pub kind: StepKind,
    /// The cordon as found (`by: plugin` for ours from an earlier run).
    pub cordoned: Cordon,
    /// The ztunnel pod replaced, and the version it runs.
    pub ztunnel_pod: Option<String>,
    #[serde(skip)]
    pub ztunnel_uid: String,
    pub from_version: Option<String>,
    /// `null` when the node is already cordoned or with `--no-drain`.
    pub cordon: Option<Write>,
    pub evictions: Vec<PlannedEviction>,
    pub staying: Vec<StayingPod>,
    /// The delete of the node's ztunnel pod (`null` for an uncordon step).
    pub replace: Option<Write>,
    /// `null` unless this verb cordons (or cordoned) the node. Sent at the
    /// node's resourceVersion read just before.
    pub uncordon: Option<Write>,
}

impl NodeStep {
    /// Writes of this step, in order.
    pub fn writes(&self) -> usize {
        usize::from(self.cordon.is_some())
            + self.evictions.len()
            + usize::from(self.replace.is_some())
            + usize::from(self.uncordon.is_some())
    }
}

/// A node the roll leaves alone, and why.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct SkippedNode {
    pub node: String,
    pub reason: String,
}

/// The whole plan (`--dry-run -o json` prints it).
#[derive(Clone, Debug, PartialEq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct RollPlan {
    pub api_version: &'static str,
    /// `ZtunnelRollPlan`.
    pub kind: &'static str,
    /// `istio-system/ztunnel`, `null` when there is none.
    pub daemon_set: Option<String>,
    pub update_strategy: Option<String>,
    /// The template's image and version: where every node ends.
    pub target_image: Option<String>,
    pub target_version: Option<String>,
    /// The istiod the template talks to.
    pub control_plane: Option<ControlPlaneRef>,
    pub drain: bool,
    pub nodes_at_once: usize,
    /// When this run cordons (the `mesh-upgrade.io/cordoned-at` value).
    pub cordoned_at: String,
    pub nodes: Vec<NodeStep>,
    pub skipped: Vec<SkippedNode>,
    /// Sentences: why the roll must not start. Non-empty means refused.
    pub refusals: Vec<String>,
    /// Sentences needing no action.
    pub notes: Vec<String>,
}

impl RollPlan {
    /// Nodes this run touches.
    pub fn node_names(&self) -> Vec<&str> {
        self.nodes.iter().map(|n| n.node.as_str()).collect()
    }

    /// "Roll ztunnel on 3 nodes?"
    pub fn question(&self) -> String {
        let rolls = self
            .nodes
            .iter()
            .filter(|n| n.kind == StepKind::Roll)
            .count();
        let uncordons = self.nodes.len() - rolls;
        match (rolls, uncordons) {
            (0, n) => format!("Uncordon {}?", plural(n, "node")),
            (n, 0) => format!("Roll ztunnel on {}?", plural(n, "node")),
            (n, m) => format!(
                "Roll ztunnel on {} and uncordon {}?",
                plural(n, "node"),
                plural(m, "more node")
            ),
        }
    }
}

fn plural(n: usize, word: &str) -> String {
    if n == 1 {
        format!("{n} {word}")
    } else {
        format!("{n} {word}s")
    }
}

/// The annotation patch's timestamp format.
pub fn timestamp(now: DateTime<Utc>) -> String {
    now.to_rfc3339_opts(SecondsFormat::Secs, true)
}

/// Cordon `node` (as `kubectl cordon` does) and say it was this verb, only
/// while the node is at `resource_version`.
pub fn cordon_write(node: &str, resource_version: &str, at: &str) -> Write {
    Write::patch(
        ObjectRef::cluster(ObjectKind::Node, node),
        Patch::Merge(json!({
            "metadata": {"annotations": {CORDONED_BY_ANNOTATION: ROLL_VERB, CORDONED_AT_ANNOTATION: at}},
            "spec": {"unschedulable": true},
        })),
        format!("cordon {node} while its ztunnel is replaced"),
    )
    .at_version(resource_version)
}

/// Uncordon `node` and remove this verb's annotations, only while the node
/// is at `resource_version` (empty: as it is).
pub fn uncordon_write(node: &str, resource_version: &str) -> Write {
    Write::patch(
        ObjectRef::cluster(ObjectKind::Node, node),
        Patch::Merge(json!({
            "metadata": {"annotations": {CORDONED_BY_ANNOTATION: null, CORDONED_AT_ANNOTATION: null}},
            "spec": {"unschedulable": null},
        })),
        format!("uncordon {node}: {ROLL_VERB} cordoned it"),
    )
    .at_version(resource_version)
}

/// A node as read again (after a 409, or before uncordoning).
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum NodeNow {
    /// Cordoned by this verb.
    OursCordoned {
        resource_version: String,
    },
    /// Cordoned by someone else.
    TheirsCordoned,
    /// Schedulable.
    Open {
        resource_version: String,
    },
    Gone,
}

impl NodeNow {
    pub fn of(node: Option<&Value>) -> NodeNow {
        let Some(node) = node else {
            return NodeNow::Gone;
        };
        let resource_version = node
            .pointer("/metadata/resourceVersion")
            .and_then(Value::as_str)
            .unwrap_or_default()
            .to_string();
        let cordoned = node
            .pointer("/spec/unschedulable")
            .and_then(Value::as_bool)
            .unwrap_or(false);
        let ours = node
            .pointer("/metadata/annotations")
            .and_then(|a| a.get(CORDONED_BY_ANNOTATION))
            .and_then(Value::as_str)
            == Some(ROLL_VERB);
        match (cordoned, ours) {
            (true, true) => NodeNow::OursCordoned { resource_version },
            (true, false) => NodeNow::TheirsCordoned,
            (false, _) => NodeNow::Open { resource_version },
        }
    }
}

/// The roll's plan. Pure: `now` stamps the cordon annotation.
pub fn plan(
    snapshot: &ClusterSnapshot,
    options: &RollOptions,
    now: DateTime<Utc>,
) -> Result<RollPlan, RollUsageError> {
    let control_plane = ControlPlane::from_snapshot(snapshot);
    let data_plane = ambient::data_plane(snapshot, &control_plane);
    let captured = ambient::ambient(snapshot);
    let at = timestamp(now);
    let mut plan = RollPlan {
        api_version: API_VERSION,
        kind: "ZtunnelRollPlan",
        daemon_set: None,
        update_strategy: None,
        target_image: None,
        target_version: None,
        control_plane: None,
        drain: options.drain,
        nodes_at_once: options.nodes_at_once.max(1),
        cordoned_at: at.clone(),
        nodes: Vec::new(),
        skipped: Vec::new(),
        refusals: Vec::new(),
        notes: Vec::new(),
    };
    let cp_namespace = &snapshot.control_plane_namespace;
    let z = match data_plane.ztunnel.as_slice() {
        [] => {
            plan.refusals.push(format!(
                "no ztunnel DaemonSet (pods app=ztunnel) in {cp_namespace}: ambient mode is not installed there"
            ));
            return Ok(plan);
        }
        [one] => one,
        many => {
            plan.refusals.push(format!(
                "{} ztunnel DaemonSets in {cp_namespace} ({}): a node runs one ztunnel, so which to roll is not clear",
                many.len(),
                many.iter()
                    .map(|z| z.name.as_str())
                    .collect::<Vec<_>>()
                    .join(", ")
            ));
            return Ok(plan);
        }
    };
    plan.daemon_set = Some(format!("{}/{}", z.namespace, z.name));
    plan.update_strategy = Some(z.update_strategy.clone());
    plan.target_image = Some(z.image.clone());
    plan.target_version = z.version.clone();
    plan.control_plane = z.control_plane.clone();

    let selected = select_nodes(z, snapshot, options)?;
    let cni = data_plane.istio_cni.first();
    let mut steps = Vec::new();
    for node in &z.nodes {
        if !selected.contains(node.node.as_str()) {
            continue;
        }
        match node_step(node, z, &captured, snapshot, options, &at) {
            Ok(step) => steps.push(step),
            Err(reason) => plan.skipped.push(SkippedNode {
                node: node.node.clone(),
                reason,
            }),
        }
    }
    order(&mut steps);
    plan.nodes = steps;
    refuse(&mut plan, z, cni, snapshot);
    notes(&mut plan, z);
    let open_nodes = snapshot
        .nodes
        .iter()
        .filter(|n| n.ready && !n.unschedulable)
        .count();
    if plan.drain && plan.nodes.len() > 1 && plan.nodes_at_once >= open_nodes.max(1) {
        plan.notes.push(format!(
            "{} nodes at once can cordon every schedulable node together: evicted pods then wait unscheduled (and budgets hold further evictions) until a node is uncordoned",
            plan.nodes_at_once
        ));
    }
    Ok(plan)
}

/// The nodes asked for: named, else every node of the DaemonSet; `-l` keeps
/// those whose labels match.
fn select_nodes<'a>(
    z: &'a ComponentStatus,
    snapshot: &ClusterSnapshot,
    options: &RollOptions,
) -> Result<BTreeSet<&'a str>, RollUsageError> {
    let known: Vec<&str> = z.nodes.iter().map(|n| n.node.as_str()).collect();
    for name in &options.nodes {
        if !known.contains(&name.as_str()) {
            return Err(RollUsageError::UnknownNode(name.clone(), known.join(", ")));
        }
    }
    Ok(z.nodes
        .iter()
        .map(|n| n.node.as_str())
        .filter(|n| options.nodes.is_empty() || options.nodes.iter().any(|o| o == n))
        .filter(|n| {
            options.node_selector.as_ref().is_none_or(|selector| {
                snapshot
                    .nodes
                    .iter()
                    .find(|node| node.name == *n)
                    .is_some_and(|node| selector.matches(&node.labels))
            })
        })
        .collect())
}

/// The steps of one node, or why it is skipped.
fn node_step(
    node: &ComponentNode,
    z: &ComponentStatus,
    captured: &ambient::AmbientStatus,
    snapshot: &ClusterSnapshot,
    options: &RollOptions,
    at: &str,
) -> Result<NodeStep, String> {
    let ours = node.cordon.is_ours();
    let uncordon = ours.then(|| uncordon_write(&node.node, ""));
    if node.pods.is_empty() {
        return Err(format!(
            "no ztunnel pod here (the DaemonSet controller creates one from the template){}",
            if ours {
                format!(
                    "; still cordoned by an earlier {ROLL_VERB}: run it again once the ztunnel is Ready (it uncordons the node), or kubectl uncordon {}",
                    node.node
                )
            } else {
                String::new()
            }
        ));
    }
    if node.is_up_to_date() && node.is_ready() {
        if ours {
            return Ok(NodeStep {
                node: node.node.clone(),
                kind: StepKind::Uncordon,
                cordoned: node.cordon.clone(),
                ztunnel_pod: node.serving().map(|p| p.name.clone()),
                ztunnel_uid: String::new(),
                from_version: z.version.clone(),
                cordon: None,
                evictions: Vec::new(),
                staying: Vec::new(),
                replace: None,
                uncordon,
            });
        }
        return Err(format!(
            "up to date on {}",
            z.version.as_deref().unwrap_or(&z.image)
        ));
    }
    // The pod to replace: the one not on the template (the oldest).
    let Some(old) = node.pods.iter().find(|p| !p.up_to_date) else {
        return Err(format!(
            "its ztunnel runs the template but is not Ready yet: nothing to replace{}",
            if ours {
                format!(
                    "; still cordoned by an earlier {ROLL_VERB}: run it again once the ztunnel is Ready (it uncordons the node), or kubectl uncordon {}",
                    node.node
                )
            } else {
                String::new()
            }
        ));
    };
    let replace = Write::delete(
        ObjectRef::namespaced(ObjectKind::Pod, &z.namespace, &old.name),
        &old.uid,
        format!(
            "replace ztunnel {} ({}) on {}: OnDelete makes a new one from the template",
            old.name,
            old.version.as_deref().unwrap_or(&old.image),
            node.node
        ),
    );
    let (cordon, uncordon) = match (&node.cordon, options.drain) {
        (_, false) => (None, uncordon),
        (Cordon::None, true) => {
            let rv = snapshot
                .nodes
                .iter()
                .find(|n| n.name == node.node)
                .map(|n| n.resource_version.clone())
                .unwrap_or_default();
            (
                Some(cordon_write(&node.node, &rv, at)),
                Some(uncordon_write(&node.node, "")),
            )
        }
        (Cordon::Plugin { .. }, true) if ours => (None, uncordon),
        // Someone else's cordon: kept as it is, and never undone here.
        (_, true) => (None, None),
    };
    let (evictions, staying) = if options.drain {
        drain(&node.node, captured, snapshot)
    } else {
        (Vec::new(), Vec::new())
    };
    Ok(NodeStep {
        node: node.node.clone(),
        kind: StepKind::Roll,
        cordoned: node.cordon.clone(),
        ztunnel_pod: Some(old.name.clone()),
        ztunnel_uid: old.uid.clone(),
        from_version: old.version.clone(),
        cordon,
        evictions,
        staying,
        replace: Some(replace),
        uncordon,
    })
}

/// The pods ztunnel carries on `node`: evicted when a controller recreates
/// them elsewhere; DaemonSet and standalone pods stay.
fn drain(
    node: &str,
    captured: &ambient::AmbientStatus,
    snapshot: &ClusterSnapshot,
) -> (Vec<PlannedEviction>, Vec<StayingPod>) {
    let mut evictions = Vec::new();
    let mut staying = Vec::new();
    for pod in ambient::ztunnel_dependents(captured, node) {
        let stay = match pod.owner.as_deref() {
            None => Some(
                "standalone: an eviction would delete it for good (no controller recreates it); its connections reset when ztunnel is replaced"
                    .to_string(),
            ),
            Some(owner) if owner.starts_with("DaemonSet/") => Some(format!(
                "{owner} runs one pod on every node; its connections reset when ztunnel is replaced"
            )),
            Some(_) => None,
        };
        if let Some(why) = stay {
            staying.push(StayingPod {
                namespace: pod.namespace.clone(),
                pod: pod.name.clone(),
                why,
            });
            continue;
        }
        evictions.push(planned_eviction(pod, snapshot));
    }
    (evictions, staying)
}

fn planned_eviction(pod: &AmbientPod, snapshot: &ClusterSnapshot) -> PlannedEviction {
    let budgets: Vec<&PdbInfo> = snapshot
        .pod_disruption_budgets
        .iter()
        .filter(|b| b.namespace == pod.namespace && b.selector.matches(&pod.labels))
        .collect();
    let replicas = pod.owner.as_deref().and_then(|owner| {
        let (kind, name) = owner.split_once('/')?;
        match kind {
            "Deployment" => snapshot
                .deployments
                .iter()
                .find(|d| d.namespace == pod.namespace && d.name == name)
                .map(|d| d.desired),
            "StatefulSet" => snapshot
                .stateful_sets
                .iter()
                .find(|s| s.namespace == pod.namespace && s.name == name)
                .map(|s| s.desired),
            _ => None,
        }
    });
    let risk = match (budgets.as_slice(), replicas) {
        ([], Some(1)) => Some("1 replica, no PDB: down until its replacement is Ready".to_string()),
        ([], _) => Some("no PDB: nothing paces these evictions".to_string()),
        ([b], _) if b.desired_healthy >= b.expected_pods && b.expected_pods > 0 => Some(format!(
            "PDB {} allows no disruption: the drain waits until --timeout",
            b.name
        )),
        ([_, _, ..], _) => {
            Some("more than one PDB selects it: the API server refuses to evict it".to_string())
        }
        _ => None,
    };
    PlannedEviction {
        namespace: pod.namespace.clone(),
        pod: pod.name.clone(),
        workload: pod.owner.clone(),
        budget: budgets.first().map(|b| b.name.clone()),
        risk,
        labels: pod.labels.clone(),
        write: Write::evict(
            ObjectRef::namespaced(ObjectKind::Pod, &pod.namespace, &pod.name),
            &pod.uid,
            format!(
                "move {}/{} off the node before its ztunnel is replaced",
                pod.namespace, pod.name
            ),
        ),
    }
}

/// The order nodes go in: uncordons left by an earlier run first, then
/// nodes an earlier run cordoned and did not finish, then the nodes with
/// the fewest pods to evict (the first node is the canary), by name.
pub fn order(steps: &mut [NodeStep]) {
    steps.sort_by_key(|s| {
        (
            s.kind != StepKind::Uncordon,
            !s.cordoned.is_ours(),
            s.evictions.len(),
            s.node.clone(),
        )
    });
}

fn refuse(
    plan: &mut RollPlan,
    z: &ComponentStatus,
    cni: Option<&ComponentStatus>,
    snapshot: &ClusterSnapshot,
) {
    let cp_ns = &snapshot.control_plane_namespace;
    let rolls = plan.nodes.iter().any(|n| n.kind == StepKind::Roll);
    if z.update_strategy != "OnDelete" && rolls {
        plan.refusals.push(format!(
            "DaemonSet {}/{} uses updateStrategy {}, so its controller replaces every node's ztunnel by itself, without cordon or drain: set it to OnDelete in the ztunnel chart's values (helm upgrade ztunnel istio/ztunnel -n {} --reuse-values --set updateStrategy.type=OnDelete) or with kubectl -n {} patch daemonset {} --type merge -p '{{\"spec\":{{\"updateStrategy\":{{\"type\":\"OnDelete\",\"rollingUpdate\":null}}}}}}', then run this again",
            z.namespace, z.name, z.update_strategy, z.namespace, z.namespace, z.name
        ));
    }
    match &z.control_plane {
        None => plan.refusals.push(format!(
            "the ztunnel template talks to an istiod that does not exist ({}): new ztunnels would get no configuration; install that revision or fix the template first",
            z.problems.first().cloned().unwrap_or_else(|| "unknown".into())
        )),
        Some(cp) if !cp.ready && rolls => plan.refusals.push(format!(
            "{} (revision {}), which the new ztunnels talk to, has no Ready pod: wait until it is (kubectl -n {cp_ns} rollout status deployment/{}), then run this again",
            cp.istiod, cp.revision, cp.istiod
        )),
        Some(cp) => {
            if let (Some(Skew::Ahead { .. }), Some(cp_version)) = (z.skew, cp.version.as_deref()) {
                plan.refusals.push(format!(
                    "the ztunnel template runs {}, newer than istiod {} ({cp_version}): Istio supports ztunnel at its control plane's version or one minor behind, so upgrade istiod first",
                    z.version.as_deref().unwrap_or(&z.image),
                    cp.istiod
                ));
            }
        }
    }
    let Some(cni) = cni else {
        plan.refusals.push(format!(
            "no istio-cni DaemonSet (pods k8s-app=istio-cni-node) in {cp_ns}: without its node agent no pod is captured"
        ));
        return;
    };
    let cni_down: Vec<&str> = plan
        .nodes
        .iter()
        .filter(|s| cni.node(&s.node).is_none_or(|n| !n.is_ready()))
        .map(|s| s.node.as_str())
        .collect();
    if !cni_down.is_empty() {
        let others: Vec<&str> = plan
            .nodes
            .iter()
            .map(|s| s.node.as_str())
            .filter(|n| !cni_down.contains(n))
            .collect();
        let mut sentence = format!(
            "istio-cni is not Ready on {}: pods evicted there or started there cannot be captured, and its ztunnel cannot be given the node's pods; fix it first (kubectl -n {cp_ns} get pods -l k8s-app=istio-cni-node -o wide)",
            ambient::and_list(&cni_down)
        );
        if !others.is_empty() {
            sentence.push_str(&format!(
                ", or roll the other nodes: kubectl mesh-upgrade {ROLL_VERB} {}",
                others.join(" ")
            ));
        }
        plan.refusals.push(sentence);
    }
    let node_down: Vec<&str> = plan
        .nodes
        .iter()
        .filter(|s| {
            snapshot
                .nodes
                .iter()
                .find(|n| n.name == s.node)
                .is_some_and(|n| !n.ready)
        })
        .map(|s| s.node.as_str())
        .collect();
    if !node_down.is_empty() {
        plan.refusals.push(format!(
            "node {} is not Ready: a new ztunnel would not start there; leave it out (name the other nodes) until it is",
            ambient::and_list(&node_down)
        ));
    }
}

fn notes(plan: &mut RollPlan, z: &ComponentStatus) {
    if let (Some(Skew::TooFarBehind { minors_behind }), Some(cp)) = (z.skew, &z.control_plane) {
        plan.notes.push(format!(
            "the template's ztunnel is {minors_behind} minors behind {} ({}): outside Istio's window even after this roll",
            cp.istiod,
            cp.version.as_deref().unwrap_or("?")
        ));
    }
    if !plan.drain {
        plan.notes.push(
            "--no-drain: pods stay on their nodes; their connections through ztunnel reset when it is replaced (new connections go to the new ztunnel)"
                .to_string(),
        );
    }
    for step in &plan.nodes {
        if step.cordoned == Cordon::Other {
            plan.notes.push(format!(
                "{} was already cordoned by someone else: it is rolled and left cordoned",
                step.node
            ));
        }
    }
}

/// How one node ended.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum NodeOutcome {
    /// Its ztunnel replaced and Ready on the template.
    Rolled,
    /// An earlier run's cordon removed.
    Uncordoned,
    /// Server dry run: the server accepted the writes.
    Rehearsed,
    Failed,
    TimedOut,
    /// The second Ctrl-C ended its waits.
    Interrupted,
    /// Never started (an earlier node failed, or Ctrl-C).
    NotStarted,
}

impl NodeOutcome {
    pub fn as_str(self) -> &'static str {
        match self {
            NodeOutcome::Rolled => "rolled",
            NodeOutcome::Uncordoned => "uncordoned",
            NodeOutcome::Rehearsed => "rehearsed",
            NodeOutcome::Failed => "failed",
            NodeOutcome::TimedOut => "timed-out",
            NodeOutcome::Interrupted => "interrupted",
            NodeOutcome::NotStarted => "not-started",
        }
    }
}

/// What became of the node's cordon.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum CordonEnd {
    /// Not cordoned by this verb (and not before).
    None,
    /// Cordoned by this verb, and uncordoned again.
    Uncordoned,
    /// Cordoned by this verb and still cordoned: `kubectl uncordon <node>`
    /// (or a rerun) undoes it.
    LeftCordoned,
    /// Someone else's cordon, left as it was.
    SomeoneElses,
}

/// One node's result.
#[derive(Clone, Debug, PartialEq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct NodeResult {
    pub node: String,
    pub outcome: NodeOutcome,
    /// Why, for anything but a clean roll.
    pub detail: Option<String>,
    /// Pods evicted (`namespace/name`).
    pub evicted: Vec<String>,
    /// The ztunnel pod deleted.
    pub replaced: Option<String>,
    /// The ztunnel pod that took over, Ready on the template.
    pub new_ztunnel: Option<String>,
    pub cordon: CordonEnd,
    pub seconds: Option<f64>,
}

/// What `ztunnel-roll` prints after running (`-o json`).
#[derive(Clone, Debug, PartialEq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct RollReport {
    pub api_version: &'static str,
    /// `ZtunnelRollReport`.
    pub kind: &'static str,
    pub daemon_set: Option<String>,
    pub target_version: Option<String>,
    /// One per planned node, in order.
    pub nodes: Vec<NodeResult>,
    /// Nodes this verb left cordoned: `kubectl uncordon <node>` (or a rerun)
    /// undoes each.
    pub left_cordoned: Vec<String>,
    pub summary: RollSummary,
}

/// Nodes by outcome.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct RollSummary {
    pub rolled: usize,
    pub uncordoned: usize,
    pub rehearsed: usize,
    pub failed: usize,
    pub timed_out: usize,
    pub interrupted: usize,
    pub not_started: usize,
    pub evicted_pods: usize,
}

impl RollReport {
    pub fn new(plan: &RollPlan, nodes: Vec<NodeResult>) -> Self {
        let mut summary = RollSummary::default();
        for n in &nodes {
            let slot = match n.outcome {
                NodeOutcome::Rolled => &mut summary.rolled,
                NodeOutcome::Uncordoned => &mut summary.uncordoned,
                NodeOutcome::Rehearsed => &mut summary.rehearsed,
                NodeOutcome::Failed => &mut summary.failed,
                NodeOutcome::TimedOut => &mut summary.timed_out,
                NodeOutcome::Interrupted => &mut summary.interrupted,
                NodeOutcome::NotStarted => &mut summary.not_started,
            };
            *slot += 1;
            summary.evicted_pods += n.evicted.len();
        }
        RollReport {
            api_version: API_VERSION,
            kind: "ZtunnelRollReport",
            daemon_set: plan.daemon_set.clone(),
            target_version: plan.target_version.clone(),
            left_cordoned: nodes
                .iter()
                .filter(|n| n.cordon == CordonEnd::LeftCordoned)
                .map(|n| n.node.clone())
                .collect(),
            nodes,
            summary,
        }
    }
}

/// Pods ztunnel carries that came to the step's node after the plan was
/// made (evicted from a node rolled before it, say): evicted too, as
/// `kubectl drain` evicts what is on the node when it runs. Carried means
/// marked by the CNI (`ambient.istio.io/redirection`); pods with no
/// controller, or a DaemonSet's, stay as the plan says.
pub fn newcomers(pods_on_node: &[PodInfo], step: &NodeStep) -> Vec<PlannedEviction> {
    let known: BTreeSet<&str> = step
        .evictions
        .iter()
        .map(|e| e.pod.as_str())
        .chain(step.staying.iter().map(|p| p.pod.as_str()))
        .collect();
    let mut out: Vec<PlannedEviction> = pods_on_node
        .iter()
        .filter(|p| p.ambient.node.as_deref() == Some(step.node.as_str()))
        .filter(|p| p.ambient.redirection.is_some() && p.ambient.data_plane.is_none())
        .filter(|p| !p.terminating && !matches!(p.phase.as_str(), "Succeeded" | "Failed"))
        .filter(|p| !known.contains(p.name.as_str()))
        .filter_map(|p| {
            let owner = crate::snapshot::controller_of(&p.owners)?;
            (owner.kind != "DaemonSet").then(|| PlannedEviction {
                namespace: p.namespace.to_string(),
                pod: p.name.to_string(),
                workload: Some(format!("{}/{}", owner.kind, owner.name)),
                budget: None,
                risk: None,
                labels: p.labels.to_labels(),
                write: Write::evict(
                    ObjectRef::namespaced(ObjectKind::Pod, &p.namespace, &p.name),
                    &p.uid,
                    format!(
                        "move {}/{} off the node before its ztunnel is replaced (it came after the plan)",
                        p.namespace, p.name
                    ),
                ),
            })
        })
        .collect();
    out.sort_by(|a, b| (&a.namespace, &a.pod).cmp(&(&b.namespace, &b.pod)));
    out
}

/// How a wait stands: not yet (what is happening), or done.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Wait<T> {
    Pending(String),
    Done(T),
}

/// Whether the evicted pods have left `node`: none of `uids` is among the
/// pods bound there.
pub fn evicted_gone(pods_on_node: &[PodInfo], uids: &BTreeSet<String>) -> Wait<()> {
    let left: Vec<&str> = pods_on_node
        .iter()
        .filter(|p| uids.contains(p.uid.as_str()))
        .map(|p| p.name.as_str())
        .collect();
    if left.is_empty() {
        Wait::Done(())
    } else {
        Wait::Pending(format!("waiting for {} to terminate", left.join(", ")))
    }
}

/// Whether `node` runs a new ztunnel: a pod other than `old_uid`, Ready,
/// on `image`. Done with its name.
pub fn replacement_ready(
    pods_on_node: &[PodInfo],
    node: &str,
    old_uid: &str,
    image: &str,
) -> Wait<String> {
    let ztunnels: Vec<&PodInfo> = pods_on_node
        .iter()
        .filter(|p| p.ambient.node.as_deref() == Some(node) && !p.terminating)
        .filter(|p| {
            p.ambient
                .data_plane
                .as_ref()
                .is_some_and(|d| d.component == crate::snapshot::DataPlaneComponent::Ztunnel)
        })
        .filter(|p| p.uid != old_uid)
        .collect();
    let on_target = |p: &&PodInfo| {
        p.ambient
            .data_plane
            .as_ref()
            .is_some_and(|d| d.image == image)
    };
    if let Some(ready) = ztunnels.iter().find(|p| p.ready && on_target(p)) {
        return Wait::Done(ready.name.to_string());
    }
    Wait::Pending(match ztunnels.iter().find(|p| on_target(p)) {
        Some(p) => format!("waiting for {} to be Ready", p.name),
        None => format!("waiting for a new ztunnel on {node}"),
    })
}

/// Whether the budget of a refused eviction allows one now: the budget
/// selecting the pod (by `labels`) has a disruption to spend.
pub fn budget_allows(budgets: &[PdbInfo], labels: &dyn crate::snapshot::LabelLookup) -> Wait<()> {
    let selecting: Vec<&PdbInfo> = budgets
        .iter()
        .filter(|b| b.selector.matches(labels))
        .collect();
    match selecting.as_slice() {
        [] => Wait::Done(()),
        [one] if one.disruptions_allowed >= 1 => Wait::Done(()),
        [one] => Wait::Pending(format!(
            "PDB {} allows no disruption ({} of {} healthy, {} needed)",
            one.name, one.current_healthy, one.expected_pods, one.desired_healthy
        )),
        _ => Wait::Pending("more than one PDB selects the pod".to_string()),
    }
}

#[cfg(test)]
mod tests;
