//! `restart-sidecars`, the pure part: which workloads to restart and how,
//! and what the results were (the text is `render::restart`'s).
//!
//! ```text
//! snapshot ─► classify (workloads.rs) ─► plan(snapshot, options, now) ─► RestartPlan
//!                                          │ actions:   template patch | delete pods (OnDelete)
//!                                          │            | spec.restartAt (Argo Rollouts), each with its PDBs
//!                                          │ held:      a PDB allows 0 disruptions (pacing.rs)
//!                                          │ skipped:   paused, zero replicas, OnDelete without --delete-pods,
//!                                          │            explicit targets that need nothing
//!                                          │ unreachable pods: reason + the command a person would run
//!                                          └ revisions whose istiod is not Ready (the command refuses)
//! RestartPlan + re-read pods ─► verify ─► pods still not running the expected proxy
//! ```
//!
//! The selection is [`stale_workloads`] over the same classification
//! `status` shows, so "stale" means the same thing in both. Each action
//! carries the exact patch it will send; the clock is read once by the
//! caller and passed in as `now`.

use std::borrow::Cow;
use std::collections::BTreeSet;

use chrono::{DateTime, SecondsFormat, Timelike, Utc};
use serde::Serialize;
use serde_json::{Value, json};

use crate::mesh::control_plane::ControlPlane;
use crate::mesh::injection::InjectionOutcome;
use crate::mesh::pacing::{Budget, Pacing, PdbsByNamespace, blocking_budget, covering_budgets};
use crate::mesh::proxy::{pod_proxy, same_version};
use crate::mesh::workloads::{
    ProxyGroup, RestartSelection, Risk, Workload, WorkloadKind, WorkloadState, classify,
    stale_workloads,
};
use crate::snapshot::{ClusterSnapshot, PodInfo, RESTARTED_AT_ANNOTATION, SharedStr};
use crate::write::{ObjectKind, ObjectRef, Patch, Write};

use crate::mesh::API_VERSION;

/// An explicit target: `deployment/cart`, `sts/db`, `daemonset.apps/agent`.
#[derive(Clone, Debug, PartialEq, Eq, PartialOrd, Ord)]
pub struct TargetRef {
    pub kind: WorkloadKind,
    pub name: String,
}

impl TargetRef {
    /// Parses `KIND/NAME` with kubectl's names and short names for the
    /// three kinds a template patch can restart.
    pub fn parse(text: &str) -> Result<TargetRef, String> {
        let Some((kind, name)) = text.split_once('/') else {
            return Err(format!(
                "{text:?} is not a target: write KIND/NAME, such as deployment/cart or statefulset/db"
            ));
        };
        let lower = kind.to_ascii_lowercase();
        let kind = match lower
            .trim_end_matches(".apps")
            .trim_end_matches(".argoproj.io")
        {
            "deployment" | "deployments" | "deploy" => WorkloadKind::Deployment,
            "statefulset" | "statefulsets" | "sts" => WorkloadKind::StatefulSet,
            "daemonset" | "daemonsets" | "ds" => WorkloadKind::DaemonSet,
            "rollout" | "rollouts" | "ro" => WorkloadKind::Rollout,
            other => {
                return Err(format!(
                    "{text:?}: cannot restart a {other:?}; targets are deployment/NAME, statefulset/NAME, daemonset/NAME or rollout/NAME"
                ));
            }
        };
        if name.is_empty() || name.contains('/') {
            return Err(format!("{text:?}: expected KIND/NAME with one name"));
        }
        Ok(TargetRef {
            kind,
            name: name.to_string(),
        })
    }
}

impl std::fmt::Display for TargetRef {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}/{}", self.kind.resource(), self.name)
    }
}

/// What the flags ask for.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct RestartOptions {
    /// `--all`, `--include-uninjected`.
    pub selection: RestartSelection,
    /// `--kind`: only these kinds (empty: every kind).
    pub kinds: Vec<WorkloadKind>,
    /// Explicit `KIND/NAME` targets (empty: every workload the selection picks).
    pub targets: Vec<TargetRef>,
    /// `--delete-pods`: roll OnDelete workloads by deleting their pods.
    pub delete_pods: bool,
}

/// Why there is no plan.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum PlanError {
    #[error("{target} not found in {where_}")]
    TargetNotFound { target: String, where_: String },
}

/// How one workload is restarted.
#[derive(Clone, Debug, PartialEq, Serialize)]
#[serde(rename_all = "camelCase", tag = "type")]
pub enum RestartMethod {
    /// A strategic merge patch of the pod template, as `kubectl rollout restart`
    /// sends (the document shows it as `patch`, the body sent).
    TemplatePatch {
        #[serde(rename = "patch", serialize_with = "crate::write::serialize_body")]
        write: Write,
    },
    /// OnDelete: these pods deleted one at a time, in this order (highest
    /// ordinal first), each replacement waited for; each delete carries the
    /// uid the pod had when planned (the document lists the pod names).
    DeletePods {
        #[serde(serialize_with = "pod_names")]
        pods: Vec<Write>,
    },
    /// An Argo Rollout: a merge patch of `spec.restartAt`, as `kubectl argo
    /// rollouts restart` sends; Argo then evicts its pods (the document
    /// shows the body as `patch`).
    RestartAt {
        #[serde(rename = "patch", serialize_with = "crate::write::serialize_body")]
        write: Write,
    },
}

fn pod_names<S: serde::Serializer>(pods: &[Write], serializer: S) -> Result<S::Ok, S::Error> {
    serializer.collect_seq(pods.iter().map(|w| w.target.name.as_str()))
}

/// One workload to restart.
#[derive(Clone, Debug, PartialEq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct RestartAction {
    pub namespace: SharedStr,
    pub kind: WorkloadKind,
    pub name: SharedStr,
    #[serde(skip)]
    pub uid: SharedStr,
    /// Desired replicas (DaemonSets: nodes).
    pub replicas: i32,
    /// What its pods run now.
    pub current: Vec<ProxyGroup>,
    /// The revision new pods get (tags resolved).
    pub expected_revision: String,
    /// The proxy version new pods get, when known.
    pub expected_version: Option<String>,
    /// Names a pod's proxy may carry for the expected revision: the
    /// revision and the tags pointing at it (old injectors wrote the tag).
    #[serde(skip)]
    pub accepted_revisions: Vec<String>,
    pub risks: Vec<Risk>,
    pub is_gateway: bool,
    /// Why it is restarted, in a sentence.
    pub reason: String,
    pub method: RestartMethod,
    /// The PodDisruptionBudgets its pods fall under: restarts spending the
    /// same budget run no more at once than it allows.
    pub disruption_budgets: Vec<Budget>,
}

impl RestartAction {
    /// `deployment/cart`.
    pub fn reference(&self) -> String {
        format!("{}/{}", self.kind.resource(), self.name)
    }

    /// `1.22.3 (1-22-3)`.
    pub fn expected_proxy(&self) -> String {
        proxy_text(
            Some(&self.expected_revision),
            self.expected_version.as_deref(),
        )
    }

    /// Whether `pod` runs the proxy this action promises.
    pub fn pod_runs_expected_proxy(&self, pod: &PodInfo) -> bool {
        let Some(proxy) = pod_proxy(pod) else {
            return false;
        };
        let revision_ok = proxy
            .revision
            .as_deref()
            .is_none_or(|r| self.accepted_revisions.iter().any(|a| a == r));
        let version_ok = match (&proxy.version, &self.expected_version) {
            (Some(running), Some(wanted)) => same_version(running, wanted),
            _ => true,
        };
        revision_ok && version_ok
    }

    /// Whether `pod` belongs to this workload: a Deployment's pods through
    /// their ReplicaSet (`<name>-<pod-template-hash>`), the others directly.
    pub fn owns(&self, pod: &PodInfo) -> bool {
        if pod.namespace != self.namespace {
            return false;
        }
        let Some(owner) = crate::snapshot::controller_of(&pod.owners) else {
            return false;
        };
        match self.kind {
            WorkloadKind::Deployment => {
                owner.kind == "ReplicaSet"
                    && pod
                        .labels
                        .get("pod-template-hash")
                        .is_some_and(|hash| owner.name == format!("{}-{hash}", self.name))
            }
            WorkloadKind::StatefulSet => {
                owner.kind == "StatefulSet" && (owner.uid == self.uid || owner.name == self.name)
            }
            WorkloadKind::DaemonSet => {
                owner.kind == "DaemonSet" && (owner.uid == self.uid || owner.name == self.name)
            }
            WorkloadKind::Rollout => {
                owner.kind == "ReplicaSet"
                    && pod
                        .labels
                        .get(crate::snapshot::ROLLOUT_HASH_LABEL)
                        .is_some_and(|hash| owner.name == format!("{}-{hash}", self.name))
            }
        }
    }
}

/// A workload in the selection that is not restarted, and why.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct SkippedWorkload {
    pub namespace: SharedStr,
    pub kind: WorkloadKind,
    pub name: SharedStr,
    /// `paused`, `zero-replicas`, `needs-delete-pods`, or the workload's state.
    pub reason: &'static str,
    /// A sentence: what it means and what to do.
    pub note: Cow<'static, str>,
}

/// A workload the selection picked that is not restarted because a
/// PodDisruptionBudget allows no disruption now.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct HeldWorkload {
    pub namespace: SharedStr,
    pub kind: WorkloadKind,
    pub name: SharedStr,
    /// `pdb-allows-zero`.
    pub reason: String,
    /// The budget that allows none.
    pub disruption_budget: String,
    /// A sentence: what it means and what to do.
    pub note: String,
}

/// A pod no template patch reaches: reported, never deleted.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct UnreachableEntry {
    pub namespace: String,
    pub pod: String,
    pub reason: String,
    /// What becomes of it or what to do, in a sentence.
    pub remedy: String,
    pub current: String,
    pub expected: String,
    /// What a person would run (after checking it is safe).
    pub command: String,
}

/// A revision some action needs whose istiod has no Ready pod.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct NotReadyRevision {
    pub revision: String,
    /// The istiod Deployment, when there is one.
    pub istiod: Option<String>,
    /// `namespace/kind/name` of the workloads that need it.
    pub workloads: Vec<String>,
}

/// The plan: what `restart-sidecars` will do, before it does anything.
#[derive(Clone, Debug, PartialEq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct RestartPlan {
    pub api_version: &'static str,
    pub kind: &'static str,
    /// The `kubectl.kubernetes.io/restartedAt` value every patch carries.
    pub restarted_at: String,
    pub actions: Vec<RestartAction>,
    pub skipped: Vec<SkippedWorkload>,
    /// Picked, but a PodDisruptionBudget allows no disruption now: not
    /// restarted (`--fail-on-blocked` refuses the whole run instead).
    pub held: Vec<HeldWorkload>,
    pub unreachable: Vec<UnreachableEntry>,
    /// Non-empty: restarting now would fail or re-inject the old proxy.
    pub not_ready_revisions: Vec<NotReadyRevision>,
}

impl RestartPlan {
    /// Namespaces the actions touch, sorted.
    pub fn namespaces(&self) -> BTreeSet<&str> {
        self.actions.iter().map(|a| a.namespace.as_str()).collect()
    }

    /// Which actions may run together under their budgets.
    pub fn pacing(&self) -> Pacing {
        Pacing::new(
            self.actions
                .iter()
                .map(|a| (a.namespace.as_str(), a.disruption_budgets.as_slice())),
        )
    }

    /// "Restart 3 workloads in 2 namespaces?"
    pub fn question(&self) -> String {
        let n = self.actions.len();
        let ns = self.namespaces().len();
        format!(
            "Restart {n} workload{} in {ns} namespace{}?",
            plural(n),
            plural(ns)
        )
    }
}

fn plural(n: usize) -> &'static str {
    if n == 1 { "" } else { "s" }
}

/// The patch `kubectl rollout restart` sends: the pod template annotation
/// `kubectl.kubernetes.io/restartedAt` set to `now` (RFC 3339, seconds).
pub fn restart_patch(now: DateTime<Utc>) -> Value {
    json!({
        "spec": {
            "template": {
                "metadata": {
                    "annotations": {
                        RESTARTED_AT_ANNOTATION: now.to_rfc3339_opts(SecondsFormat::Secs, true)
                    }
                }
            }
        }
    })
}

/// The patch `kubectl argo rollouts restart` sends: `spec.restartAt` set to
/// `at` (RFC 3339, seconds), a merge patch (custom resources take no
/// strategic merge patch).
pub fn restart_at_patch(at: DateTime<Utc>) -> Value {
    json!({"spec": {"restartAt": at.to_rfc3339_opts(SecondsFormat::Secs, true)}})
}

/// The object kind a workload is written as.
pub fn object_kind(kind: WorkloadKind) -> ObjectKind {
    match kind {
        WorkloadKind::Deployment => ObjectKind::Deployment,
        WorkloadKind::StatefulSet => ObjectKind::StatefulSet,
        WorkloadKind::DaemonSet => ObjectKind::DaemonSet,
        WorkloadKind::Rollout => ObjectKind::Rollout,
    }
}

/// `1.22.3 (1-22-3)`, or whichever half is known.
fn proxy_text(revision: Option<&str>, version: Option<&str>) -> String {
    match (version, revision) {
        (Some(v), Some(r)) => format!("{v} ({r})"),
        (Some(v), None) => v.to_string(),
        (None, Some(r)) => r.to_string(),
        (None, None) => "none".to_string(),
    }
}

fn groups_text(groups: &[ProxyGroup], without_proxy: usize) -> String {
    let mut parts: Vec<String> = groups
        .iter()
        .map(|g| proxy_text(g.revision.as_deref(), g.version.as_deref()))
        .collect();
    if without_proxy > 0 {
        parts.push("no proxy".to_string());
    }
    if parts.is_empty() {
        "none".to_string()
    } else {
        parts.join(", ")
    }
}

/// The ordinal of a StatefulSet pod (`db-2` → 2).
fn ordinal(pod: &str) -> Option<u32> {
    pod.rsplit_once('-')?.1.parse().ok()
}

/// `now`, or one second past the latest `restartedAt` a picked template
/// already carries, whichever is later, so every patch changes its template.
/// For an Argo Rollout, also past its `spec.restartAt` and past the creation
/// of each of its pods: Argo restarts only pods created before `restartAt`,
/// so a client clock behind the cluster's would otherwise restart nothing.
fn restart_time(picked: &[&Workload], now: DateTime<Utc>) -> DateTime<Utc> {
    let rollouts = picked.iter().filter(|w| w.kind == WorkloadKind::Rollout);
    let latest = picked
        .iter()
        .filter_map(|w| w.template.annotations.get(RESTARTED_AT_ANNOTATION))
        .filter_map(|v| DateTime::parse_from_rfc3339(v).ok())
        .map(|t| t.with_timezone(&Utc))
        .chain(rollouts.clone().filter_map(|w| w.restart_at))
        .chain(
            rollouts
                .flat_map(|w| &w.pods)
                .filter_map(|p| p.created)
                .map(|created| created.with_nanosecond(0).unwrap_or(created)),
        )
        .max();
    let now = now.with_nanosecond(0).unwrap_or(now);
    match latest {
        Some(latest) if latest >= now => latest + chrono::Duration::seconds(1),
        _ => now,
    }
}

/// Computes the plan. Pure: the snapshot, the flags and the clock in.
pub fn plan(
    snapshot: &ClusterSnapshot,
    options: &RestartOptions,
    now: DateTime<Utc>,
) -> Result<RestartPlan, PlanError> {
    let control_plane = ControlPlane::from_snapshot(snapshot);
    let classification = classify(snapshot, &control_plane);
    let in_selection = |w: &Workload| {
        snapshot.scope.contains(&w.namespace)
            && (options.kinds.is_empty() || options.kinds.contains(&w.kind))
    };
    let candidates: Vec<&Workload> = classification
        .workloads
        .iter()
        .filter(|w| in_selection(w))
        .collect();

    // Explicit targets must exist; the ones the selection does not pick are
    // reported with their state instead of restarted.
    let mut explicit: Vec<&Workload> = Vec::new();
    for target in &options.targets {
        let found: Vec<&Workload> = candidates
            .iter()
            .copied()
            .filter(|w| w.kind == target.kind && w.name == target.name)
            .collect();
        if found.is_empty() {
            return Err(PlanError::TargetNotFound {
                target: target.to_string(),
                where_: scope_text(snapshot, options),
            });
        }
        explicit.extend(found);
    }
    let picked: Vec<&Workload> = stale_workloads(&classification.workloads, options.selection)
        .into_iter()
        .filter(|w| in_selection(w))
        .filter(|w| options.targets.is_empty() || explicit.iter().any(|e| e.uid == w.uid))
        .collect();

    // The timestamp has seconds, as kubectl's: a restart within the second
    // of the previous one would write the same value, change nothing and
    // roll out nothing. Then the plan takes the second after the latest.
    let now = restart_time(&picked, now);
    let restarted_at = now.to_rfc3339_opts(SecondsFormat::Secs, true);
    let mut actions = Vec::new();
    let mut skipped = Vec::new();
    let mut held = Vec::new();
    let mut restarted: Vec<&Workload> = Vec::new();
    let pdbs = PdbsByNamespace::new(&snapshot.pod_disruption_budgets);
    for w in &picked {
        if let Some(skip) = skip_reason(w, options) {
            skipped.push(skip);
            continue;
        }
        let budgets = covering_budgets(&pdbs, &w.namespace, &w.template.labels);
        if let Some(blocking) = blocking_budget(&budgets) {
            held.push(held_by(w, blocking));
            continue;
        }
        let mut action = action_for(w, options, &control_plane, now);
        action.disruption_budgets = budgets;
        actions.push(action);
        restarted.push(w);
    }
    for w in &explicit {
        if picked.iter().any(|p| p.uid == w.uid) || skipped.iter().any(|s| same(s, w)) {
            continue;
        }
        skipped.push(skip_reason(w, options).unwrap_or_else(|| SkippedWorkload {
            namespace: w.namespace.clone(),
            kind: w.kind,
            name: w.name.clone(),
            reason: w.state.as_str(),
            note: not_picked_note(w),
        }));
    }

    // Stale pods under a rollout that is still going (or stuck) are not
    // restarted again, but the reader should know they are there.
    if options.targets.is_empty() {
        for w in candidates
            .iter()
            .filter(|w| w.state == WorkloadState::Rolling && w.pods.iter().any(|p| p.stale))
        {
            skipped.push(SkippedWorkload {
                namespace: w.namespace.clone(),
                kind: w.kind,
                name: w.name.clone(),
                reason: w.state.as_str(),
                note: not_picked_note(w),
            });
        }
    }

    let mut not_ready: Vec<NotReadyRevision> = Vec::new();
    for (action, w) in actions.iter().zip(&restarted) {
        let revision = &action.expected_revision;
        let ready = matches!(w.expected, InjectionOutcome::Injected { .. })
            && control_plane
                .revision(revision)
                .is_none_or(|r| r.is_ready());
        if ready {
            continue;
        }
        let entry = match not_ready.iter_mut().find(|n| &n.revision == revision) {
            Some(entry) => entry,
            None => {
                not_ready.push(NotReadyRevision {
                    revision: revision.clone(),
                    istiod: control_plane
                        .revision(revision)
                        .map(|r| r.deployment.clone()),
                    workloads: Vec::new(),
                });
                not_ready.last_mut().expect("just pushed")
            }
        };
        entry
            .workloads
            .push(format!("{}/{}", action.namespace, action.reference()));
    }

    let unreachable = if options.targets.is_empty() && options.kinds.is_empty() {
        classification
            .unreachable
            .iter()
            .filter(|p| snapshot.scope.contains(&p.namespace))
            .filter(|p| {
                p.state == WorkloadState::Stale
                    || (options.selection.include_uninjected
                        && p.state == WorkloadState::NotInjected)
            })
            .map(|p| UnreachableEntry {
                namespace: p.namespace.clone(),
                pod: p.name.clone(),
                reason: p.reason.to_string(),
                remedy: p.remedy.clone(),
                current: proxy_text(
                    p.revision.as_deref(),
                    p.proxy.as_ref().and_then(|x| x.version.as_deref()),
                ),
                expected: p.expected.revision().unwrap_or("none").to_string(),
                command: p.command.clone(),
            })
            .collect()
    } else {
        Vec::new()
    };

    Ok(RestartPlan {
        api_version: API_VERSION,
        kind: "RestartPlan",
        restarted_at,
        actions,
        skipped,
        held,
        unreachable,
        not_ready_revisions: not_ready,
    })
}

/// The entry of a workload held by `budget`.
fn held_by(w: &Workload, budget: &Budget) -> HeldWorkload {
    HeldWorkload {
        namespace: w.namespace.clone(),
        kind: w.kind,
        name: w.name.clone(),
        reason: "pdb-allows-zero".into(),
        disruption_budget: budget.name.clone(),
        note: format!(
            "PodDisruptionBudget {} allows 0 disruptions now: held, not restarted (a restart would stall or break the budget); run this again once `kubectl get pdb {} -n {}` shows ALLOWED DISRUPTIONS of 1 or more",
            budget.name, budget.name, w.namespace
        ),
    }
}

fn same(s: &SkippedWorkload, w: &Workload) -> bool {
    s.namespace == w.namespace && s.kind == w.kind && s.name == w.name
}

fn scope_text(snapshot: &ClusterSnapshot, options: &RestartOptions) -> String {
    let place = match &snapshot.scope {
        crate::snapshot::Scope::All => "any namespace".to_string(),
        crate::snapshot::Scope::Namespaces(ns) if ns.len() == 1 => format!("namespace {}", ns[0]),
        crate::snapshot::Scope::Namespaces(ns) => format!("namespaces {}", ns.join(", ")),
    };
    if options.kinds.is_empty() {
        place
    } else {
        let kinds: Vec<&str> = options.kinds.iter().map(|k| k.resource()).collect();
        format!("{place} (--kind {})", kinds.join(","))
    }
}

/// Why a picked workload is not restarted after all.
fn skip_reason(w: &Workload, options: &RestartOptions) -> Option<SkippedWorkload> {
    let skip = |reason: &'static str, note: Cow<'static, str>| SkippedWorkload {
        namespace: w.namespace.clone(),
        kind: w.kind,
        name: w.name.clone(),
        reason,
        note,
    };
    if let Some(rollout) = &w.template_of {
        return Some(skip(
            "workload-ref",
            format!(
                "its template is Rollout {rollout}'s (spec.workloadRef): a patch would start an Argo update of the Rollout; restart rollout/{rollout} instead (its own pods, if any, go when it is scaled to 0)"
            ).into(),
        ));
    }
    if w.desired == 0 {
        return Some(skip(
            "zero-replicas",
            "scaled to zero: no pod runs, nothing to restart (new pods will get the new proxy)"
                .into(),
        ));
    }
    if w.paused && w.kind == WorkloadKind::Rollout {
        return Some(skip(
            "paused",
            format!(
                "paused: Argo restarts nothing while a Rollout is paused; run `kubectl argo rollouts promote {} -n {}` (or resume it) first, then run this again",
                w.name, w.namespace
            ).into(),
        ));
    }
    if w.paused {
        return Some(skip(
            "paused",
            format!(
                "paused: a restart would wait until resumed; run `kubectl rollout resume {} -n {}` first, then run this again",
                w.reference(),
                w.namespace
            ).into(),
        ));
    }
    if !w.rolls_on_template_change() && !options.delete_pods {
        return Some(skip(
            "needs-delete-pods",
            "updateStrategy OnDelete: a template patch restarts nothing; run again with --delete-pods to delete its pods one at a time, highest ordinal first".into(),
        ));
    }
    None
}

/// Most notes are fixed sentences, shared rather than copied per workload.
fn not_picked_note(w: &Workload) -> Cow<'static, str> {
    if w.is_gateway_api() {
        let gateway = w
            .template
            .labels
            .get(crate::mesh::gateway_api::GATEWAY_NAME_LABEL)
            .unwrap_or("?");
        return format!(
            "istiod renders it for Gateway {gateway}, with its revision's proxy in the template: a restart changes nothing; move the Gateway with `kubectl mesh-upgrade gateway-switch -n {} --gateway {gateway} --to <revision>`",
            w.namespace
        )
        .into();
    }
    match w.state {
        WorkloadState::UpToDate => {
            "up to date: its pods run what a new pod would get; pass --all to restart it anyway"
                .into()
        }
        WorkloadState::Rolling if w.risks.contains(&Risk::RolloutStuck) => format!(
            "its last rollout is stuck (ProgressDeadlineExceeded): fix it or `kubectl rollout undo {} -n {}`, then run this again",
            w.reference(),
            w.namespace
        ).into(),
        WorkloadState::Rolling => format!(
            "a rollout is in progress ({}): wait for it, then run this again",
            w.rollout_in_progress.as_deref().unwrap_or("not finished")
        ).into(),
        WorkloadState::NotInjected => {
            "its pods have no proxy yet: pass --include-uninjected to restart it".into()
        }
        WorkloadState::NoInjector => {
            "no injector would give its pods a proxy again: a restart would remove it".into()
        }
        WorkloadState::CustomImage => {
            "runs a custom proxy image (sidecar.istio.io/proxyImage): left alone on purpose"
                .into()
        }
        WorkloadState::OptedOut => "opted out of injection: nothing to restart".into(),
        WorkloadState::Ambient => {
            "ambient namespace: no sidecars; upgrade ztunnel and waypoints instead".into()
        }
        WorkloadState::NoMesh => "not in the mesh: nothing to restart".into(),
        WorkloadState::Stale => "stale".into(),
    }
}

fn action_for(
    w: &Workload,
    options: &RestartOptions,
    control_plane: &ControlPlane,
    now: DateTime<Utc>,
) -> RestartAction {
    let expected_revision = w.expected_revision().unwrap_or_default().to_string();
    let mut accepted_revisions = vec![expected_revision.clone()];
    accepted_revisions.extend(
        control_plane
            .tags_of(&expected_revision)
            .into_iter()
            .map(str::to_string),
    );
    let expected = proxy_text(Some(&expected_revision), w.expected_version.as_deref());
    let reason = match w.state {
        WorkloadState::Stale => format!(
            "{} of {} pods run another proxy than {expected}",
            w.stale_pods,
            w.pods.len()
        ),
        WorkloadState::NotInjected => format!("no proxy yet; new pods get {expected}"),
        _ => format!("up to date on {expected}; restarted because of --all"),
    };
    let method = if w.kind == WorkloadKind::Rollout {
        RestartMethod::RestartAt {
            write: Write::patch(
                ObjectRef::namespaced(ObjectKind::Rollout, &w.namespace, &w.name),
                Patch::Merge(restart_at_patch(now)),
                reason.clone(),
            ),
        }
    } else if w.rolls_on_template_change() {
        RestartMethod::TemplatePatch {
            write: Write::patch(
                ObjectRef::namespaced(object_kind(w.kind), &w.namespace, &w.name),
                Patch::Strategic(restart_patch(now)),
                reason.clone(),
            ),
        }
    } else {
        let mut pods: Vec<(&str, &str)> = w
            .pods
            .iter()
            .filter(|p| p.stale || options.selection.all)
            .map(|p| (p.name.as_str(), p.uid.as_str()))
            .collect();
        pods.sort_by(|(a, _), (b, _)| ordinal(b).cmp(&ordinal(a)).then(b.cmp(a)));
        RestartMethod::DeletePods {
            pods: pods
                .into_iter()
                .map(|(name, uid)| {
                    Write::delete(
                        ObjectRef::namespaced(ObjectKind::Pod, &w.namespace, name),
                        uid,
                        format!(
                            "OnDelete {}: its pods are replaced only when deleted",
                            w.kind
                        ),
                    )
                })
                .collect(),
        }
    };
    RestartAction {
        namespace: w.namespace.clone(),
        kind: w.kind,
        name: w.name.clone(),
        uid: w.uid.clone(),
        replicas: w.desired,
        current: w.proxies.clone(),
        expected_revision,
        expected_version: w.expected_version.clone(),
        accepted_revisions,
        risks: w
            .risks
            .iter()
            .filter(|r| !matches!(r, Risk::OnDelete | Risk::TargetNotReady))
            .cloned()
            .collect(),
        is_gateway: w.is_gateway,
        reason,
        method,
        disruption_budgets: Vec::new(),
    }
    .with_current_text(w.pods_without_proxy)
}

impl RestartAction {
    /// Pods without a proxy count as a `none` group in `current`, so the
    /// plan shows "none → 1.22.3 (1-22-3)" for uninjected workloads.
    fn with_current_text(mut self, without_proxy: usize) -> Self {
        if without_proxy > 0 {
            self.current.push(ProxyGroup {
                revision: None,
                version: None,
                pods: without_proxy,
            });
        }
        self
    }

    /// The current proxies as text: `1.21.2 (1-21-2)`.
    pub fn current_proxy(&self) -> String {
        let with_proxy: Vec<ProxyGroup> = self
            .current
            .iter()
            .filter(|g| g.revision.is_some() || g.version.is_some())
            .cloned()
            .collect();
        groups_text(&with_proxy, self.current.len() - with_proxy.len())
    }
}

/// The pods of `action` in `pods` that do not run the expected proxy
/// (terminating and finished pods left out).
pub fn pods_not_running_expected(action: &RestartAction, pods: &[PodInfo]) -> Vec<String> {
    let mut wrong: Vec<String> = pods
        .iter()
        .filter(|p| action.owns(p))
        .filter(|p| !p.terminating && p.phase != "Succeeded" && p.phase != "Failed")
        .filter(|p| !action.pod_runs_expected_proxy(p))
        .map(|p| {
            let running = pod_proxy(p).map_or_else(
                || "no proxy".to_string(),
                |x| proxy_text(x.revision.as_deref(), x.version.as_deref()),
            );
            format!("{} runs {running}", p.name)
        })
        .collect();
    wrong.sort();
    wrong
}

// ---------------------------------------------------------------- results

/// How one workload's restart ended.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum Outcome {
    /// Rolled out and verified: every pod runs the expected proxy.
    Restarted,
    /// `--no-wait`: patched (or pods deleted), not waited for.
    Patched,
    /// `--dry-run=server`: the server accepted the write and stored nothing.
    Rehearsed,
    /// Rolled out, but some pods still run another proxy.
    Unverified,
    /// The rollout reported it cannot finish (ProgressDeadlineExceeded).
    Failed,
    /// The rollout did not finish within `--timeout`.
    TimedOut,
    /// An API error (after retries) kept it from being restarted.
    Error,
    /// Patched, but a second Ctrl-C stopped the wait.
    Interrupted,
    /// Not started: the run stopped first (a failure or Ctrl-C).
    NotStarted,
}

impl Outcome {
    pub fn as_str(self) -> &'static str {
        match self {
            Outcome::Restarted => "restarted",
            Outcome::Patched => "patched",
            Outcome::Rehearsed => "rehearsed",
            Outcome::Unverified => "unverified",
            Outcome::Failed => "failed",
            Outcome::TimedOut => "timed-out",
            Outcome::Error => "error",
            Outcome::Interrupted => "interrupted",
            Outcome::NotStarted => "not-started",
        }
    }

    /// Whether this outcome makes the run exit 4.
    pub fn is_rollout_failure(self) -> bool {
        matches!(
            self,
            Outcome::Failed | Outcome::TimedOut | Outcome::Unverified
        )
    }
}

/// One workload's result.
#[derive(Clone, Debug, PartialEq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct WorkloadResult {
    pub namespace: String,
    pub kind: WorkloadKind,
    pub name: String,
    pub outcome: Outcome,
    /// What happened, in a sentence (the failure, the pods still wrong).
    pub detail: Option<String>,
    /// Wall-clock seconds from the first write to the end of the wait.
    pub seconds: Option<f64>,
}

/// Counts by outcome.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct ResultSummary {
    pub restarted: usize,
    pub patched: usize,
    pub rehearsed: usize,
    pub unverified: usize,
    pub failed: usize,
    pub timed_out: usize,
    pub errors: usize,
    pub interrupted: usize,
    pub not_started: usize,
    pub skipped: usize,
    /// Held by a PodDisruptionBudget allowing no disruption.
    pub held: usize,
    pub unreachable: usize,
}

/// The `-o json` document of a run that wrote.
#[derive(Clone, Debug, PartialEq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct RestartReport {
    pub api_version: &'static str,
    pub kind: &'static str,
    pub restarted_at: String,
    pub results: Vec<WorkloadResult>,
    pub skipped: Vec<SkippedWorkload>,
    /// Not restarted: a PodDisruptionBudget allowed no disruption.
    pub held: Vec<HeldWorkload>,
    pub unreachable: Vec<UnreachableEntry>,
    pub summary: ResultSummary,
}

impl RestartReport {
    pub fn new(plan: &RestartPlan, results: Vec<WorkloadResult>) -> Self {
        let mut summary = ResultSummary {
            skipped: plan.skipped.len(),
            held: plan.held.len(),
            unreachable: plan.unreachable.len(),
            ..ResultSummary::default()
        };
        for r in &results {
            let counter = match r.outcome {
                Outcome::Restarted => &mut summary.restarted,
                Outcome::Patched => &mut summary.patched,
                Outcome::Rehearsed => &mut summary.rehearsed,
                Outcome::Unverified => &mut summary.unverified,
                Outcome::Failed => &mut summary.failed,
                Outcome::TimedOut => &mut summary.timed_out,
                Outcome::Error => &mut summary.errors,
                Outcome::Interrupted => &mut summary.interrupted,
                Outcome::NotStarted => &mut summary.not_started,
            };
            *counter += 1;
        }
        RestartReport {
            api_version: API_VERSION,
            kind: "RestartResult",
            restarted_at: plan.restarted_at.clone(),
            results,
            skipped: plan.skipped.clone(),
            held: plan.held.clone(),
            unreachable: plan.unreachable.clone(),
            summary,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::mesh::fixtures::{ClusterFixture, ProxySpec, WorkloadFixture};
    use crate::write::{Change, Precondition};
    use chrono::TimeZone;

    fn now() -> DateTime<Utc> {
        Utc.with_ymd_and_hms(2026, 11, 23, 14, 5, 9).unwrap()
    }

    fn cluster() -> ClusterFixture {
        ClusterFixture::new()
            .revision("1-21-2", "1.21.2")
            .revision("1-22-3", "1.22.3")
            .tag("default", "1-21-2")
            .namespace("shop", &[("istio-injection", "enabled")])
            .namespace("pay", &[("istio.io/rev", "1-22-3")])
    }

    fn plan_of(fixture: ClusterFixture, options: &RestartOptions) -> RestartPlan {
        plan(&fixture.build(), options, now()).expect("a plan")
    }

    fn names(plan: &RestartPlan) -> Vec<String> {
        plan.actions
            .iter()
            .map(|a| format!("{}/{}", a.namespace, a.reference()))
            .collect()
    }

    #[test]
    fn a_restart_within_the_second_of_the_last_one_takes_the_next_second() {
        // The previous run stamped this very second: the same value would
        // change nothing, so nothing would roll out.
        let plan = plan_of(
            cluster().workload(
                WorkloadFixture::deployment("pay", "payments")
                    .template_annotation(RESTARTED_AT_ANNOTATION, "2026-11-23T14:05:09Z")
                    .pods(2, ProxySpec::istio("1-21-2", "1.21.2")),
            ),
            &RestartOptions::default(),
        );
        assert_eq!(plan.restarted_at, "2026-11-23T14:05:10Z");
        let RestartMethod::TemplatePatch { write } = &plan.actions[0].method else {
            panic!("a template patch");
        };
        assert_eq!(
            write.body_to_send()["spec"]["template"]["metadata"]["annotations"]
                [RESTARTED_AT_ANNOTATION],
            "2026-11-23T14:05:10Z"
        );
        // An older stamp leaves the clock's time.
        let plan = plan_of(
            cluster().workload(
                WorkloadFixture::deployment("pay", "payments")
                    .template_annotation(RESTARTED_AT_ANNOTATION, "2026-11-23T14:00:00Z")
                    .pods(2, ProxySpec::istio("1-21-2", "1.21.2")),
            ),
            &RestartOptions::default(),
        );
        assert_eq!(plan.restarted_at, "2026-11-23T14:05:09Z");
    }

    #[test]
    fn the_restart_patch_is_the_one_kubectl_rollout_restart_sends() {
        assert_eq!(
            restart_patch(now()),
            json!({"spec": {"template": {"metadata": {"annotations": {
                "kubectl.kubernetes.io/restartedAt": "2026-11-23T14:05:09Z"
            }}}}})
        );
    }

    #[test]
    fn only_stale_workloads_are_restarted_with_the_exact_patch() {
        let plan = plan_of(
            cluster()
                .workload(
                    WorkloadFixture::deployment("pay", "payments")
                        .pods(2, ProxySpec::istio("1-21-2", "1.21.2")),
                )
                .workload(
                    WorkloadFixture::deployment("pay", "refunds")
                        .pods(2, ProxySpec::istio("1-22-3", "1.22.3")),
                )
                .workload(
                    WorkloadFixture::deployment("shop", "cart")
                        .pods(2, ProxySpec::istio("1-21-2", "1.21.2")),
                ),
            &RestartOptions::default(),
        );
        assert_eq!(names(&plan), ["pay/deployment/payments"]);
        let action = &plan.actions[0];
        let RestartMethod::TemplatePatch { write } = &action.method else {
            panic!("a template patch: {:?}", action.method);
        };
        assert_eq!(
            write.target,
            ObjectRef::namespaced(ObjectKind::Deployment, "pay", "payments")
        );
        assert_eq!(
            write.change,
            Change::Patch(Patch::Strategic(
                json!({"spec": {"template": {"metadata": {"annotations": {
                    "kubectl.kubernetes.io/restartedAt": "2026-11-23T14:05:09Z"
                }}}}})
            ))
        );
        // Idempotent: the same timestamp twice is one rollout, so no version is pinned.
        assert_eq!(write.precondition, Precondition::None);
        assert_eq!(action.expected_revision, "1-22-3");
        assert_eq!(action.expected_version.as_deref(), Some("1.22.3"));
        assert_eq!(action.current_proxy(), "1.21.2 (1-21-2)");
        assert_eq!(
            action.reason,
            "2 of 2 pods run another proxy than 1.22.3 (1-22-3)"
        );
        assert!(plan.not_ready_revisions.is_empty());
    }

    #[test]
    fn all_adds_up_to_date_workloads_and_kind_narrows() {
        let fixture = || {
            cluster()
                .workload(
                    WorkloadFixture::deployment("pay", "payments")
                        .pods(2, ProxySpec::istio("1-21-2", "1.21.2")),
                )
                .workload(
                    WorkloadFixture::deployment("shop", "cart")
                        .pods(2, ProxySpec::istio("1-21-2", "1.21.2")),
                )
        };
        let all = RestartOptions {
            selection: RestartSelection {
                all: true,
                include_uninjected: false,
            },
            ..RestartOptions::default()
        };
        assert_eq!(
            names(&plan_of(fixture(), &all)),
            ["pay/deployment/payments", "shop/deployment/cart"]
        );
        let only_sts = RestartOptions {
            kinds: vec![WorkloadKind::StatefulSet],
            ..all
        };
        assert!(plan_of(fixture(), &only_sts).actions.is_empty());
    }

    #[test]
    fn an_explicit_target_that_does_not_exist_is_an_error() {
        let options = RestartOptions {
            targets: vec![TargetRef::parse("deployment/nope").unwrap()],
            ..RestartOptions::default()
        };
        let err = plan(&cluster().build(), &options, now()).unwrap_err();
        assert_eq!(
            err.to_string(),
            "deployment/nope not found in any namespace"
        );
    }

    #[test]
    fn an_up_to_date_explicit_target_is_skipped_unless_all() {
        let fixture = || {
            cluster().workload(
                WorkloadFixture::deployment("pay", "refunds")
                    .pods(2, ProxySpec::istio("1-22-3", "1.22.3")),
            )
        };
        let options = RestartOptions {
            targets: vec![TargetRef::parse("deploy/refunds").unwrap()],
            ..RestartOptions::default()
        };
        let plan = plan_of(fixture(), &options);
        assert!(plan.actions.is_empty());
        assert_eq!(plan.skipped.len(), 1);
        assert_eq!(plan.skipped[0].reason, "up-to-date");
        assert!(plan.skipped[0].note.contains("--all"), "{:?}", plan.skipped);
        let with_all = RestartOptions {
            selection: RestartSelection {
                all: true,
                include_uninjected: false,
            },
            ..options
        };
        assert_eq!(
            names(&plan_of(fixture(), &with_all)),
            ["pay/deployment/refunds"]
        );
    }

    #[test]
    fn on_delete_needs_delete_pods_and_then_deletes_highest_ordinal_first() {
        let fixture = || {
            cluster().workload(
                WorkloadFixture::stateful_set("pay", "ledger")
                    .on_delete()
                    .pods(3, ProxySpec::istio("1-21-2", "1.21.2")),
            )
        };
        let plan = plan_of(fixture(), &RestartOptions::default());
        assert!(plan.actions.is_empty());
        assert_eq!(plan.skipped[0].reason, "needs-delete-pods");
        let plan = plan_of(
            fixture(),
            &RestartOptions {
                delete_pods: true,
                ..RestartOptions::default()
            },
        );
        let RestartMethod::DeletePods { pods } = &plan.actions[0].method else {
            panic!("pod deletions: {:?}", plan.actions[0].method);
        };
        let targets: Vec<String> = pods.iter().map(|w| w.target.to_string()).collect();
        assert_eq!(
            targets,
            ["pay/pod/ledger-2", "pay/pod/ledger-1", "pay/pod/ledger-0"]
        );
        assert!(pods.iter().all(|w| w.change == Change::Delete
            && matches!(&w.precondition, Precondition::Uid(uid) if !uid.is_empty())));
    }

    #[test]
    fn paused_and_scaled_to_zero_workloads_are_skipped_with_a_note() {
        let plan = plan_of(
            cluster()
                .workload(
                    WorkloadFixture::deployment("pay", "payments")
                        .paused()
                        .pods(2, ProxySpec::istio("1-21-2", "1.21.2")),
                )
                .workload(
                    WorkloadFixture::deployment("pay", "idle")
                        .replicas(0)
                        .pods(0, ProxySpec::istio("1-21-2", "1.21.2")),
                ),
            &RestartOptions {
                targets: vec![
                    TargetRef::parse("deployment/payments").unwrap(),
                    TargetRef::parse("deployment/idle").unwrap(),
                ],
                ..RestartOptions::default()
            },
        );
        assert!(plan.actions.is_empty(), "{:?}", plan.actions);
        let reasons: Vec<&str> = plan.skipped.iter().map(|s| s.reason).collect();
        assert_eq!(reasons, ["paused", "zero-replicas"]);
        let paused = plan.skipped.iter().find(|s| s.reason == "paused").unwrap();
        assert!(
            paused
                .note
                .contains("kubectl rollout resume deployment/payments -n pay")
        );
    }

    #[test]
    fn stale_pods_under_a_rollout_in_progress_are_listed_not_restarted() {
        let plan = plan_of(
            cluster().workload(
                WorkloadFixture::deployment("pay", "payments")
                    .updated(1)
                    .pods(2, ProxySpec::istio("1-21-2", "1.21.2")),
            ),
            &RestartOptions::default(),
        );
        assert!(plan.actions.is_empty(), "{:?}", plan.actions);
        assert_eq!(plan.skipped.len(), 1);
        assert_eq!(plan.skipped[0].reason, "rolling");
        assert!(plan.skipped[0].note.starts_with("a rollout is in progress"));
    }

    #[test]
    fn a_target_revision_without_a_ready_istiod_is_reported() {
        let plan = plan_of(
            ClusterFixture::new()
                .revision("1-21-2", "1.21.2")
                .revision("1-22-3", "1.22.3")
                .unready("1-22-3")
                .tag("default", "1-21-2")
                .namespace("pay", &[("istio.io/rev", "1-22-3")])
                .workload(
                    WorkloadFixture::deployment("pay", "payments")
                        .pods(2, ProxySpec::istio("1-21-2", "1.21.2")),
                ),
            &RestartOptions::default(),
        );
        assert_eq!(plan.not_ready_revisions.len(), 1, "{plan:#?}");
        assert_eq!(plan.not_ready_revisions[0].revision, "1-22-3");
        assert_eq!(
            plan.not_ready_revisions[0].workloads,
            ["pay/deployment/payments"]
        );
    }

    #[test]
    fn targets_parse_kubectl_kind_names() {
        assert_eq!(
            TargetRef::parse("sts/db").unwrap(),
            TargetRef {
                kind: WorkloadKind::StatefulSet,
                name: "db".into()
            }
        );
        assert_eq!(
            TargetRef::parse("daemonset.apps/agent").unwrap().kind,
            WorkloadKind::DaemonSet
        );
        assert!(TargetRef::parse("cart").is_err());
        assert!(TargetRef::parse("pod/cart-0").is_err());
        assert!(TargetRef::parse("deployment/").is_err());
    }
}
