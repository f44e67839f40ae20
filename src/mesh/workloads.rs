//! Workload classification: which pods belong to which workload, what proxy
//! they run against what their template would now get, and what could go
//! wrong restarting them.
//!
//! Pods are grouped by following ownerReferences the way the controllers
//! own them:
//!
//! ```text
//! Pod ─► ReplicaSet ─► Deployment      restartable by a template patch
//! Pod ─► StatefulSet | DaemonSet       restartable by a template patch
//! Pod ─► ReplicaSet ─► Rollout         restartable by Argo's spec.restartAt (when Rollouts were read)
//! Pod ─► Job [─► CronJob] | ReplicaSet (bare) | nothing ...   "unreachable": reported with a remedy
//! ```
//!
//! A Rollout's template is its own `spec.template`, or that of the
//! Deployment its `spec.workloadRef` names; such a Deployment is listed with
//! a note and never restarted itself (a patch of its template would start
//! an Argo update of the Rollout, steps and all).
//!
//! A workload's expected revision comes from its *template* (what a new pod
//! would get, see [`crate::mesh::injection`]); a pod is stale when the proxy
//! it runs has another revision or version. `status`, `restart-sidecars`,
//! `relabel` and `gateway-switch` all read the same [`Workload`] values, so
//! "stale" means one thing everywhere; [`stale_workloads`] is the
//! restart-sidecars selection over them.

use std::borrow::Cow;
use std::collections::BTreeMap;

use rustc_hash::FxHashMap as HashMap;
use std::fmt;

use serde::Serialize;

use crate::mesh::control_plane::ControlPlane;
use crate::mesh::injection::{
    Declined, INJECT_LABEL, InjectionOutcome, NewPod, NotInjectedReason, expected_for_pod,
};
use crate::mesh::pacing::PdbsByNamespace;
use crate::mesh::proxy::{RunningProxy, is_custom_image, is_skewed, pod_proxy, same_version};
use crate::snapshot::{
    ClusterSnapshot, LabelLookup, Labels, NamespaceInfo, PROXY_IMAGE_ANNOTATION, PdbInfo, PodInfo,
    PodTemplateInfo, Shared, SharedStr, controller_of,
};

/// The kinds a restart can reach: a template patch for the three apps
/// kinds, `spec.restartAt` for Argo Rollouts.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize)]
pub enum WorkloadKind {
    Deployment,
    StatefulSet,
    DaemonSet,
    Rollout,
}

impl WorkloadKind {
    /// The kind as the API names it (`Deployment`).
    pub fn as_str(self) -> &'static str {
        match self {
            WorkloadKind::Deployment => "Deployment",
            WorkloadKind::StatefulSet => "StatefulSet",
            WorkloadKind::DaemonSet => "DaemonSet",
            WorkloadKind::Rollout => "Rollout",
        }
    }

    /// The lowercase resource name kubectl uses (`deployment/x`).
    pub fn resource(self) -> &'static str {
        match self {
            WorkloadKind::Deployment => "deployment",
            WorkloadKind::StatefulSet => "statefulset",
            WorkloadKind::DaemonSet => "daemonset",
            WorkloadKind::Rollout => "rollout",
        }
    }
}

impl fmt::Display for WorkloadKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// Where a workload stands.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum WorkloadState {
    /// At least one pod runs a proxy of another revision or version than a
    /// new pod would get (or none while its siblings have one): a restart fixes it.
    Stale,
    /// A rollout is in progress; look again when it is done.
    Rolling,
    /// The template would get a proxy (or names a revision) but no pod has one.
    NotInjected,
    /// Pods run a proxy but a new pod would get none (the label names a
    /// missing revision, or injection was turned off): a restart removes it.
    NoInjector,
    /// Every pod runs what a new pod would get.
    UpToDate,
    /// `sidecar.istio.io/proxyImage` chose the proxy image on purpose.
    CustomImage,
    /// The template opts out with `sidecar.istio.io/inject: "false"`.
    OptedOut,
    /// An ambient namespace: no sidecars to restart.
    Ambient,
    /// Nothing selects it for injection.
    NoMesh,
}

impl WorkloadState {
    /// The kebab-case name used in tables and JSON.
    pub fn as_str(self) -> &'static str {
        match self {
            WorkloadState::Stale => "stale",
            WorkloadState::Rolling => "rolling",
            WorkloadState::NotInjected => "not-injected",
            WorkloadState::NoInjector => "no-injector",
            WorkloadState::UpToDate => "up-to-date",
            WorkloadState::CustomImage => "custom-image",
            WorkloadState::OptedOut => "opted-out",
            WorkloadState::Ambient => "ambient",
            WorkloadState::NoMesh => "no-mesh",
        }
    }

    /// Whether a person should act on it.
    pub fn is_problem(self) -> bool {
        matches!(
            self,
            WorkloadState::Stale | WorkloadState::NotInjected | WorkloadState::NoInjector
        )
    }

    /// Whether the workload is part of the sidecar mesh at all.
    pub fn is_meshed(self) -> bool {
        !matches!(self, WorkloadState::Ambient | WorkloadState::NoMesh)
    }
}

impl fmt::Display for WorkloadState {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// What could cause downtime (or surprise) when restarting a workload.
#[derive(Clone, Debug, PartialEq, Eq, PartialOrd, Ord, Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum Risk {
    /// At most one Ready replica: a restart drops its traffic for a moment.
    SingleReplica,
    /// No PodDisruptionBudget selects its pods.
    NoPdb,
    /// A PodDisruptionBudget covering it allows zero disruptions now.
    PdbAllowsZero,
    /// PodDisruptionBudgets could not be read (forbidden), so whether one
    /// covers it is unknown. Set by the `status` command, never by the model.
    PdbUnknown,
    /// StatefulSet (or DaemonSet) `updateStrategy: OnDelete`: a template
    /// patch rolls nothing; pods must be deleted one by one.
    OnDelete,
    /// Deployment `spec.paused`: a template patch waits until resumed.
    Paused,
    /// Zero replicas: nothing runs, nothing to restart.
    ZeroReplicas,
    /// The revision it should run has no Ready istiod: new pods would fail
    /// to be created.
    TargetNotReady,
    /// Its rollout reported `ProgressDeadlineExceeded`.
    RolloutStuck,
    /// Some proxies are more than one minor version behind the istiod they
    /// talk to.
    VersionSkew,
}

impl Risk {
    /// The kebab-case code used in tables and JSON.
    pub fn code(&self) -> &'static str {
        match self {
            Risk::SingleReplica => "single-replica",
            Risk::NoPdb => "no-pdb",
            Risk::PdbAllowsZero => "pdb-allows-zero",
            Risk::PdbUnknown => "pdb-unknown",
            Risk::OnDelete => "on-delete",
            Risk::Paused => "paused",
            Risk::ZeroReplicas => "zero-replicas",
            Risk::TargetNotReady => "target-not-ready",
            Risk::RolloutStuck => "rollout-stuck",
            Risk::VersionSkew => "version-skew",
        }
    }
}

impl fmt::Display for Risk {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.code())
    }
}

/// Pods running the same proxy.
#[derive(Clone, Debug, PartialEq, Eq, PartialOrd, Ord, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct ProxyGroup {
    /// The revision that injected them (tags resolved); `null` when unknown.
    /// Shared with the workload's pods.
    pub revision: Option<SharedStr>,
    /// The proxy version from the image tag; `null` for a digest-pinned image.
    pub version: Option<SharedStr>,
    /// How many pods.
    pub pods: usize,
}

/// One pod of a workload, as the verbs need it.
#[derive(Clone, Debug, PartialEq)]
pub struct WorkloadPod {
    /// Shared with the snapshot's pod (a reference count, not a copy).
    pub name: SharedStr,
    /// `metadata.uid`: a delete is planned on exactly this pod.
    pub uid: SharedStr,
    pub ready: bool,
    /// Shared with the workload's other pods that run the same proxy.
    pub proxy: Option<Shared<RunningProxy>>,
    /// The proxy's revision with tags resolved to revisions.
    pub revision: Option<SharedStr>,
    /// Runs another proxy than a new pod would get (or none while one is expected).
    pub stale: bool,
    /// `metadata.creationTimestamp`: Argo restarts only pods created before
    /// `spec.restartAt`.
    pub created: Option<chrono::DateTime<chrono::Utc>>,
}

/// What a pod's proxy facts and revision label say of it, shared by the
/// pods that have the same ones.
#[derive(Clone)]
struct ProxyVerdict {
    proxy: Option<Shared<RunningProxy>>,
    revision: Option<SharedStr>,
    stale: bool,
}

/// Whether `pod_proxy` reads the same of both pods: the same proxy facts
/// (one shared copy) and the same `istio.io/rev` label.
fn same_proxy_facts(a: &PodInfo, b: &PodInfo) -> bool {
    const REV_LABEL: &str = crate::mesh::injection::REV_LABEL;
    Shared::ptr_eq(&a.proxy, &b.proxy) && a.labels.get(REV_LABEL) == b.labels.get(REV_LABEL)
}

/// A Deployment, StatefulSet or DaemonSet, classified.
#[derive(Clone, Debug, PartialEq)]
pub struct Workload {
    /// Shared with the report (a reference count, not a copy per use).
    pub namespace: SharedStr,
    pub kind: WorkloadKind,
    pub name: SharedStr,
    pub uid: SharedStr,
    /// Desired replicas (DaemonSets: nodes it should run on).
    pub desired: i32,
    pub ready: i32,
    pub template: Shared<PodTemplateInfo>,
    /// Labelled or templated as an Istio gateway.
    pub is_gateway: bool,
    /// What a new pod of its template would get.
    pub expected: InjectionOutcome,
    /// The proxy version of the expected revision.
    pub expected_version: Option<String>,
    /// The `istio-proxy` image a new pod of the template would get, as the
    /// expected revision's injector renders it (with the template's
    /// `sidecar.istio.io/proxyImage[Type]` annotations); `None` when unknown.
    pub expected_image: Option<String>,
    /// Its running pods (terminating and finished ones left out).
    pub pods: Vec<WorkloadPod>,
    /// Pods grouped by the proxy they run (pods without a proxy left out).
    pub proxies: Vec<ProxyGroup>,
    pub pods_without_proxy: usize,
    pub stale_pods: usize,
    /// Why it counts as rolling, when it does.
    pub rollout_in_progress: Option<String>,
    pub state: WorkloadState,
    pub risks: Vec<Risk>,
    /// Sentences explaining the state or risks (which PDB, which skew, ...).
    pub notes: Vec<String>,
    /// `RollingUpdate`, `Recreate` or `OnDelete`; a Rollout's `Canary` or
    /// `BlueGreen`.
    pub update_strategy: String,
    pub paused: bool,
    /// A Deployment whose template a Rollout runs (`spec.workloadRef`):
    /// that Rollout's name. Restarted through the Rollout, never itself.
    pub template_of: Option<String>,
    /// A Rollout's `spec.restartAt`: a restart must set a later time.
    pub restart_at: Option<chrono::DateTime<chrono::Utc>>,
}

impl Workload {
    /// A Deployment istiod renders for a Gateway API `Gateway`: its template
    /// carries `gateway.istio.io/managed`. `status` shows it with its
    /// Gateway, not as a workload, and no restart changes its proxy.
    pub fn is_gateway_api(&self) -> bool {
        self.template
            .labels
            .contains_key(crate::mesh::gateway_api::MANAGED_LABEL)
    }

    /// `kind/name` as kubectl takes it.
    pub fn reference(&self) -> String {
        format!("{}/{}", self.kind.resource(), self.name)
    }

    /// The revision its pods should run, if a new pod would get a proxy.
    pub fn expected_revision(&self) -> Option<&str> {
        self.expected.revision()
    }

    /// Whether any pod runs a proxy.
    pub fn is_injected(&self) -> bool {
        !self.proxies.is_empty()
    }

    /// Whether a template patch restarts it (OnDelete needs pod deletion).
    pub fn rolls_on_template_change(&self) -> bool {
        self.update_strategy != "OnDelete"
    }
}

/// The pod template a Rollout runs: its own, else that of the Deployment
/// its `workloadRef` names, else that of its newest ReplicaSet (when the
/// Deployment was not read, e.g. left out by `-l`).
pub fn rollout_template(
    snapshot: &ClusterSnapshot,
    rollout: &crate::snapshot::RolloutInfo,
) -> Shared<PodTemplateInfo> {
    if let Some(template) = &rollout.template {
        return template.clone();
    }
    let referenced = rollout
        .workload_ref
        .as_ref()
        .filter(|r| r.kind == "Deployment")
        .and_then(|r| {
            snapshot
                .deployments
                .iter()
                .find(|d| d.namespace == rollout.namespace && d.name == r.name)
        });
    if let Some(deployment) = referenced {
        return deployment.template.clone();
    }
    let newest = snapshot
        .replica_sets
        .iter()
        .filter(|rs| {
            rs.namespace == rollout.namespace
                && controller_of(&rs.owners).is_some_and(|o| o.uid == rollout.uid)
        })
        // The one running the Rollout's pods now.
        .max_by_key(|rs| (rs.desired, rs.replicas))
        .and_then(|rs| rs.template.clone());
    let mut template = newest.unwrap_or_default();
    // Copies the ReplicaSet's template (copy-on-write) before the label goes.
    template.labels.remove(crate::snapshot::ROLLOUT_HASH_LABEL);
    template
}

/// Whether a Rollout's latest update is done, as `kubectl argo rollouts
/// status` judges it from `GetRolloutPhase` (`utils/rollout/rolloututil.go`):
/// the reason when it is not.
fn argo_rollout_in_progress(r: &crate::snapshot::RolloutInfo) -> Option<String> {
    if !r.generation_observed() {
        return Some("the controller has not seen the latest spec yet".into());
    }
    match r.phase.as_deref() {
        Some("Healthy") => None,
        Some(phase) => Some(match r.message.as_deref().filter(|m| !m.is_empty()) {
            Some(message) => format!("{phase}: {message}"),
            None => phase.to_string(),
        }),
        // An Argo older than v1.0 writes no phase: the counts say it.
        None if r.updated < r.desired => {
            Some(format!("{} of {} replicas updated", r.updated, r.desired))
        }
        None if r.available < r.updated => Some(format!(
            "{} of {} updated replicas available",
            r.available, r.updated
        )),
        None => None,
    }
}

/// Which workloads `restart-sidecars` picks (flags over one classification).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct RestartSelection {
    /// `--all`: every injected workload that is up to date or stale.
    pub all: bool,
    /// `--include-uninjected`: also workloads that should have a proxy but
    /// have none yet.
    pub include_uninjected: bool,
}

/// The workloads a restart would bring up to date, per `selection`. Never
/// ambient, opted-out, custom-image, no-mesh, rolling or no-injector ones
/// (a restart would not give them the expected proxy, or is already running).
pub fn stale_workloads(workloads: &[Workload], selection: RestartSelection) -> Vec<&Workload> {
    workloads
        .iter()
        .filter(|w| w.template_of.is_none())
        .filter(|w| match w.state {
            WorkloadState::Stale => true,
            WorkloadState::UpToDate => selection.all && w.is_injected(),
            WorkloadState::NotInjected => {
                selection.include_uninjected && w.expected.revision().is_some()
            }
            _ => false,
        })
        .collect()
}

/// Why no restart can reach a pod.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
#[serde(rename_all = "camelCase", tag = "kind")]
pub enum UnreachableReason {
    /// No owner: nothing recreates it.
    Standalone,
    /// Owned by a Job no CronJob made (or whose CronJob was not read).
    Job { name: String },
    /// Owned by a Job a CronJob made: the next run gets the new proxy.
    CronJob {
        job: String,
        name: String,
        schedule: String,
        suspended: bool,
    },
    /// Owned by a ReplicaSet that no Deployment controls.
    BareReplicaSet { name: String },
    /// Owned by something else (an Argo `Rollout`, an operator's CRD).
    ForeignOwner { owner_kind: String, name: String },
}

impl fmt::Display for UnreachableReason {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            UnreachableReason::Standalone => f.write_str("standalone pod: nothing recreates it"),
            UnreachableReason::Job { name } => write!(f, "owned by Job {name}"),
            UnreachableReason::CronJob { job, name, .. } => {
                write!(f, "owned by Job {job} of CronJob {name}")
            }
            UnreachableReason::BareReplicaSet { name } => {
                write!(
                    f,
                    "owned by ReplicaSet {name}, which no Deployment controls"
                )
            }
            UnreachableReason::ForeignOwner { owner_kind, name } => {
                write!(
                    f,
                    "owned by {owner_kind} {name}, which a template patch cannot restart"
                )
            }
        }
    }
}

impl UnreachableReason {
    /// What becomes of the pod, or what to do about it, in a sentence.
    pub fn remedy(&self) -> String {
        match self {
            UnreachableReason::Standalone => "nothing recreates it".into(),
            UnreachableReason::Job { .. } => {
                "finishes on the old proxy: wait, or delete and rerun the Job".into()
            }
            UnreachableReason::CronJob {
                schedule,
                suspended: false,
                ..
            } => format!("the next run gets the new proxy (schedule {schedule})"),
            UnreachableReason::CronJob {
                schedule,
                suspended: true,
                ..
            } => format!(
                "the next run gets the new proxy (schedule {schedule}; suspended: no run until it is resumed)"
            ),
            UnreachableReason::BareReplicaSet { .. } => {
                "its ReplicaSet recreates a deleted pod from its template".into()
            }
            UnreachableReason::ForeignOwner { owner_kind, .. } if owner_kind == "Rollout" => {
                "restart it through Argo Rollouts".into()
            }
            UnreachableReason::ForeignOwner { owner_kind, .. } => {
                format!("restart it through its {owner_kind}")
            }
        }
    }
}

/// A pod no template patch can restart.
#[derive(Clone, Debug, PartialEq)]
pub struct UnreachablePod {
    pub namespace: String,
    pub name: String,
    pub reason: UnreachableReason,
    pub proxy: Option<RunningProxy>,
    /// The proxy's revision with tags resolved.
    pub revision: Option<String>,
    pub expected: InjectionOutcome,
    pub state: WorkloadState,
    /// What becomes of it, or what to do (see [`UnreachableReason::remedy`]).
    pub remedy: String,
    /// What a person would run to move it (after checking it is safe).
    pub command: String,
}

/// Every workload and unreachable pod of the namespaces read.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct Classification {
    /// Sorted by namespace, kind, name.
    pub workloads: Vec<Workload>,
    /// Sorted by namespace, name; only pods in the mesh (with a proxy, or
    /// whose namespace selects a revision).
    pub unreachable: Vec<UnreachablePod>,
}

/// Labels and annotations marking an Istio gateway: the `istio` label, the
/// `gateway` injection template, or istiod's label on what it renders for a
/// Gateway API `Gateway` (`gateway.istio.io/managed`).
pub fn is_gateway(object_labels: &dyn LabelLookup, template: &PodTemplateInfo) -> bool {
    let gateway_label = |l: &dyn LabelLookup| {
        l.label("istio")
            .is_some_and(|v| v == "ingressgateway" || v == "egressgateway")
    };
    object_labels
        .label(crate::mesh::gateway_api::MANAGED_LABEL)
        .is_some()
        || gateway_label(object_labels)
        || gateway_label(&template.labels)
        || template
            .annotations
            .get("inject.istio.io/templates")
            .is_some_and(|t| t.split(',').any(|t| t.trim() == "gateway"))
}

/// Groups and classifies every pod of the snapshot.
pub fn classify(snapshot: &ClusterSnapshot, control_plane: &ControlPlane) -> Classification {
    let namespaces: HashMap<&str, &NamespaceInfo> = snapshot
        .namespaces
        .iter()
        .map(|n| (n.name.as_str(), n))
        .collect();
    // Borrowed: a clone of the namespace (its label map) per workload was
    // 50,000 copies on a large cluster. Only a namespace that was not read
    // gets a stand-in.
    let namespace_of = |name: &str| -> Cow<'_, NamespaceInfo> {
        namespaces
            .get(name)
            .map(|n| Cow::Borrowed(*n))
            .unwrap_or_else(|| {
                Cow::Owned(NamespaceInfo {
                    name: name.to_string(),
                    labels: Labels::from([(
                        "kubernetes.io/metadata.name".to_string(),
                        name.to_string(),
                    )]),
                    ..NamespaceInfo::default()
                })
            })
    };

    // Pods by the workload that controls them.
    let owners = OwnerIndex::new(snapshot);
    // Sized for every workload up front: grown from empty, its rehashing
    // showed in the model's profile at 50,000 workloads.
    let mut pods_of: HashMap<(WorkloadKind, &str), Vec<&PodInfo>> =
        HashMap::with_capacity_and_hasher(
            snapshot.deployments.len()
                + snapshot.stateful_sets.len()
                + snapshot.daemon_sets.len()
                + snapshot.rollouts.len(),
            Default::default(),
        );
    let mut unreachable_pods: Vec<(&PodInfo, UnreachableReason, Option<&PodTemplateInfo>)> =
        Vec::new();
    for pod in &snapshot.pods {
        if pod.terminating || pod.phase == "Succeeded" || pod.phase == "Failed" {
            continue;
        }
        match owners.owner_of(pod) {
            Owner::Workload(kind, uid) => pods_of.entry((kind, uid)).or_default().push(pod),
            Owner::Unreachable(reason, template) => unreachable_pods.push((pod, reason, template)),
            Owner::Unknown => {}
        }
    }

    let no_pods = Vec::new();
    // Deployments are most of a cluster's workloads: built on two threads
    // (the model runs after the last page, when the machine is otherwise
    // idle). Each is judged on its own, so the split changes no answer.
    let mut workloads = split_map(&snapshot.deployments, |d| {
        // istiod is the control plane, shown as revisions, not a workload to restart.
        let is_istiod = d.namespace == snapshot.control_plane_namespace
            && d.labels.get("app") == Some("istiod");
        if is_istiod {
            return None;
        }
        let pods = pods_of
            .get(&(WorkloadKind::Deployment, d.uid.as_str()))
            .unwrap_or(&no_pods);
        let rolling = deployment_rollout(d, &owners);
        let template_of = snapshot
            .rollouts
            .iter()
            .find(|r| {
                r.namespace == d.namespace
                    && r.workload_ref
                        .as_ref()
                        .is_some_and(|w| w.kind == "Deployment" && w.name == d.name)
            })
            .map(|r| r.name.clone());
        let shape = Shape {
            namespace: d.namespace.clone(),
            kind: WorkloadKind::Deployment,
            name: d.name.clone(),
            uid: d.uid.clone(),
            desired: d.desired,
            ready: d.ready,
            object_labels: &d.labels,
            template: &d.template,
            update_strategy: &d.strategy,
            paused: d.paused,
            rollout_in_progress: rolling,
            stuck: d.progress_deadline_exceeded,
            template_of,
            restart_at: None,
        };
        Some(build_workload(
            shape,
            pods,
            &namespace_of(&d.namespace),
            &owners,
            control_plane,
        ))
    });
    for s in &snapshot.stateful_sets {
        let pods = pods_of
            .get(&(WorkloadKind::StatefulSet, s.uid.as_str()))
            .unwrap_or(&no_pods);
        let shape = Shape {
            namespace: s.namespace.as_str().into(),
            kind: WorkloadKind::StatefulSet,
            name: s.name.as_str().into(),
            uid: s.uid.as_str().into(),
            desired: s.desired,
            ready: s.ready,
            object_labels: &s.labels,
            template: &s.template,
            update_strategy: &s.update_strategy,
            paused: false,
            rollout_in_progress: stateful_set_rollout(s),
            stuck: false,
            template_of: None,
            restart_at: None,
        };
        workloads.push(build_workload(
            shape,
            pods,
            &namespace_of(&s.namespace),
            &owners,
            control_plane,
        ));
    }
    for d in &snapshot.daemon_sets {
        // ztunnel and istio-cni are ambient's data plane, shown node by
        // node (`mesh::ambient`); their `istio-proxy` is no sidecar.
        if d.namespace == snapshot.control_plane_namespace && d.data_plane.is_some() {
            continue;
        }
        let pods = pods_of
            .get(&(WorkloadKind::DaemonSet, d.uid.as_str()))
            .unwrap_or(&no_pods);
        let shape = Shape {
            namespace: d.namespace.as_str().into(),
            kind: WorkloadKind::DaemonSet,
            name: d.name.as_str().into(),
            uid: d.uid.as_str().into(),
            desired: d.desired,
            ready: d.ready,
            object_labels: &d.labels,
            template: &d.template,
            update_strategy: &d.update_strategy,
            paused: false,
            rollout_in_progress: daemon_set_rollout(d),
            stuck: false,
            template_of: None,
            restart_at: None,
        };
        workloads.push(build_workload(
            shape,
            pods,
            &namespace_of(&d.namespace),
            &owners,
            control_plane,
        ));
    }
    let rollout_templates: Vec<Shared<PodTemplateInfo>> = snapshot
        .rollouts
        .iter()
        .map(|r| rollout_template(snapshot, r))
        .collect();
    for (r, template) in snapshot.rollouts.iter().zip(&rollout_templates) {
        let pods = pods_of
            .get(&(WorkloadKind::Rollout, r.uid.as_str()))
            .unwrap_or(&no_pods);
        let shape = Shape {
            namespace: r.namespace.as_str().into(),
            kind: WorkloadKind::Rollout,
            name: r.name.as_str().into(),
            uid: r.uid.as_str().into(),
            desired: r.desired,
            ready: r.ready,
            object_labels: &r.labels,
            template,
            update_strategy: r.strategy.as_str(),
            paused: r.paused,
            rollout_in_progress: argo_rollout_in_progress(r),
            stuck: r.phase.as_deref() == Some("Degraded"),
            template_of: None,
            restart_at: r.restart_at,
        };
        workloads.push(build_workload(
            shape,
            pods,
            &namespace_of(&r.namespace),
            &owners,
            control_plane,
        ));
    }
    workloads.sort_by(|a, b| (&a.namespace, a.kind, &a.name).cmp(&(&b.namespace, b.kind, &b.name)));

    let mut unreachable: Vec<UnreachablePod> = unreachable_pods
        .into_iter()
        .filter_map(|(pod, reason, template)| {
            classify_unreachable(
                pod,
                reason,
                template,
                &namespace_of(&pod.namespace),
                control_plane,
            )
        })
        .collect();
    unreachable.sort_by(|a, b| (&a.namespace, &a.name).cmp(&(&b.namespace, &b.name)));
    Classification {
        workloads,
        unreachable,
    }
}

/// Below this many items a second thread costs more than it saves.
const SPLIT_AT: usize = 2_000;

/// `build` over `items` in order, keeping the `Some`s; a long slice is
/// split in two halves built on two threads.
fn split_map<T: Sync, R: Send>(items: &[T], build: impl Fn(&T) -> Option<R> + Sync) -> Vec<R> {
    let all = |part: &[T]| part.iter().filter_map(&build).collect::<Vec<R>>();
    if items.len() < SPLIT_AT {
        return all(items);
    }
    let (first, second) = items.split_at(items.len() / 2);
    std::thread::scope(|scope| {
        let second = scope.spawn(|| all(second));
        let mut built = all(first);
        // A panic in the other half is this function's panic.
        built.extend(
            second
                .join()
                .unwrap_or_else(|p| std::panic::resume_unwind(p)),
        );
        built
    })
}

/// Resolves pods to their controlling workload.
struct OwnerIndex<'a> {
    replica_sets: HashMap<&'a str, &'a crate::snapshot::ReplicaSetInfo>,
    replica_sets_by_name: HashMap<(&'a str, &'a str), &'a crate::snapshot::ReplicaSetInfo>,
    deployments: HashMap<&'a str, ()>,
    stateful_sets: HashMap<&'a str, ()>,
    daemon_sets: HashMap<&'a str, ()>,
    rollouts: HashMap<&'a str, ()>,
    /// The Rollouts were listed: a pod of one that was not (left out by
    /// `-l`) is not ours to report.
    rollouts_read: bool,
    /// Jobs by uid, and by (namespace, name) for owner references without one.
    jobs: HashMap<&'a str, &'a crate::snapshot::JobInfo>,
    jobs_by_name: HashMap<(&'a str, &'a str), &'a crate::snapshot::JobInfo>,
    cron_jobs: HashMap<(&'a str, &'a str), &'a crate::snapshot::CronJobInfo>,
    /// Deployment uid → how many of its ReplicaSets still own pods.
    live_replica_sets: HashMap<&'a str, usize>,
    pdbs: PdbsByNamespace<'a>,
}

enum Owner<'a> {
    Workload(WorkloadKind, &'a str),
    Unreachable(UnreachableReason, Option<&'a PodTemplateInfo>),
    /// An owner that was not read (filtered out by `-l`): not ours to report.
    Unknown,
}

impl<'a> OwnerIndex<'a> {
    fn new(snapshot: &'a ClusterSnapshot) -> Self {
        OwnerIndex {
            replica_sets: snapshot
                .replica_sets
                .iter()
                .map(|r| (r.uid.as_str(), r))
                .collect(),
            replica_sets_by_name: snapshot
                .replica_sets
                .iter()
                .map(|r| ((r.namespace.as_str(), r.name.as_str()), r))
                .collect(),
            deployments: snapshot
                .deployments
                .iter()
                .map(|d| (d.uid.as_str(), ()))
                .collect(),
            stateful_sets: snapshot
                .stateful_sets
                .iter()
                .map(|s| (s.uid.as_str(), ()))
                .collect(),
            daemon_sets: snapshot
                .daemon_sets
                .iter()
                .map(|d| (d.uid.as_str(), ()))
                .collect(),
            rollouts: snapshot
                .rollouts
                .iter()
                .map(|r| (r.uid.as_str(), ()))
                .collect(),
            rollouts_read: snapshot.rollouts_served == Some(true),
            jobs: snapshot.jobs.iter().map(|j| (j.uid.as_str(), j)).collect(),
            jobs_by_name: snapshot
                .jobs
                .iter()
                .map(|j| ((j.namespace.as_str(), j.name.as_str()), j))
                .collect(),
            cron_jobs: snapshot
                .cron_jobs
                .iter()
                .map(|c| ((c.namespace.as_str(), c.name.as_str()), c))
                .collect(),
            live_replica_sets: snapshot
                .replica_sets
                .iter()
                .filter(|rs| rs.replicas > 0)
                .filter_map(|rs| controller_of(&rs.owners))
                .fold(HashMap::default(), |mut counts, owner| {
                    *counts.entry(owner.uid.as_str()).or_insert(0) += 1;
                    counts
                }),
            pdbs: PdbsByNamespace::new(&snapshot.pod_disruption_budgets),
        }
    }

    fn owner_of(&self, pod: &'a PodInfo) -> Owner<'a> {
        let Some(owner) = controller_of(&pod.owners) else {
            return Owner::Unreachable(UnreachableReason::Standalone, None);
        };
        let known = |map: &HashMap<&'a str, ()>, kind| match map.get_key_value(owner.uid.as_str()) {
            Some((uid, _)) => Owner::Workload(kind, uid),
            None => Owner::Unknown,
        };
        match owner.kind.as_str() {
            "StatefulSet" => known(&self.stateful_sets, WorkloadKind::StatefulSet),
            "DaemonSet" => known(&self.daemon_sets, WorkloadKind::DaemonSet),
            "Job" => Owner::Unreachable(self.job_reason(pod, owner), None),
            "ReplicaSet" => {
                let rs = self.replica_sets.get(owner.uid.as_str()).or_else(|| {
                    self.replica_sets_by_name
                        .get(&(pod.namespace.as_str(), owner.name.as_str()))
                });
                let Some(rs) = rs else {
                    return Owner::Unknown;
                };
                match controller_of(&rs.owners) {
                    None => Owner::Unreachable(
                        UnreachableReason::BareReplicaSet {
                            name: rs.name.clone(),
                        },
                        rs.template.as_deref(),
                    ),
                    Some(o) if o.kind == "Deployment" => {
                        match self.deployments.get_key_value(o.uid.as_str()) {
                            Some((uid, _)) => Owner::Workload(WorkloadKind::Deployment, uid),
                            None => Owner::Unknown,
                        }
                    }
                    Some(o) if o.kind == "Rollout" && self.rollouts_read => {
                        match self.rollouts.get_key_value(o.uid.as_str()) {
                            Some((uid, _)) => Owner::Workload(WorkloadKind::Rollout, uid),
                            None => Owner::Unknown,
                        }
                    }
                    Some(o) => Owner::Unreachable(
                        UnreachableReason::ForeignOwner {
                            owner_kind: o.kind.clone(),
                            name: o.name.clone(),
                        },
                        None,
                    ),
                }
            }
            other => Owner::Unreachable(
                UnreachableReason::ForeignOwner {
                    owner_kind: other.to_string(),
                    name: owner.name.clone(),
                },
                None,
            ),
        }
    }

    /// A Job's pod: the run of a CronJob, or a Job of its own (also when
    /// Jobs could not be read).
    fn job_reason(&self, pod: &PodInfo, owner: &crate::snapshot::OwnerRef) -> UnreachableReason {
        let job = self.jobs.get(owner.uid.as_str()).or_else(|| {
            self.jobs_by_name
                .get(&(pod.namespace.as_str(), owner.name.as_str()))
        });
        let cron = job.and_then(|j| j.cron_job()).map(|c| {
            (
                c,
                self.cron_jobs
                    .get(&(pod.namespace.as_str(), c.name.as_str())),
            )
        });
        match cron {
            Some((cron_ref, cron)) => UnreachableReason::CronJob {
                job: owner.name.clone(),
                name: cron_ref.name.clone(),
                schedule: cron.map_or_else(|| "unknown".to_string(), |c| c.schedule.clone()),
                suspended: cron.is_some_and(|c| c.suspended),
            },
            None => UnreachableReason::Job {
                name: owner.name.clone(),
            },
        }
    }

    /// ReplicaSets of a Deployment that still own pods.
    fn replica_sets_with_pods(&self, deployment_uid: &str) -> usize {
        self.live_replica_sets
            .get(deployment_uid)
            .copied()
            .unwrap_or(0)
    }

    /// PodDisruptionBudgets of `namespace` selecting the template's pods.
    fn covering_pdbs(&self, namespace: &str, template: &PodTemplateInfo) -> Vec<&'a PdbInfo> {
        self.pdbs.selecting(namespace, &template.labels).collect()
    }
}

/// The rollout test `kubectl rollout status` makes, as a reason when unfinished.
fn deployment_rollout(
    d: &crate::snapshot::DeploymentInfo,
    owners: &OwnerIndex<'_>,
) -> Option<String> {
    if d.observed_generation < d.generation {
        return Some("the controller has not seen the latest spec yet".into());
    }
    if d.updated < d.desired {
        return Some(format!("{} of {} replicas updated", d.updated, d.desired));
    }
    if d.replicas > d.updated {
        return Some(format!(
            "{} old replicas still running",
            d.replicas - d.updated
        ));
    }
    if d.available < d.desired {
        return Some(format!(
            "{} of {} updated replicas available",
            d.available, d.desired
        ));
    }
    if owners.replica_sets_with_pods(&d.uid) > 1 {
        return Some("old ReplicaSets still have pods".into());
    }
    None
}

fn stateful_set_rollout(s: &crate::snapshot::StatefulSetInfo) -> Option<String> {
    if s.observed_generation < s.generation {
        return Some("the controller has not seen the latest spec yet".into());
    }
    // OnDelete never rolls by itself: a revision mismatch there means pods
    // wait to be deleted, which the state (stale) and the risk (on-delete) say.
    if s.update_strategy != "OnDelete" {
        if let (Some(current), Some(update)) = (&s.current_revision, &s.update_revision) {
            if current != update {
                return Some(format!("{} of {} replicas updated", s.updated, s.desired));
            }
        }
    }
    if s.ready < s.desired {
        return Some(format!("{} of {} replicas ready", s.ready, s.desired));
    }
    None
}

fn daemon_set_rollout(d: &crate::snapshot::DaemonSetInfo) -> Option<String> {
    if d.observed_generation < d.generation {
        return Some("the controller has not seen the latest spec yet".into());
    }
    if d.update_strategy != "OnDelete" && d.updated < d.desired {
        return Some(format!("{} of {} pods updated", d.updated, d.desired));
    }
    if d.available < d.desired {
        return Some(format!("{} of {} pods available", d.available, d.desired));
    }
    None
}

/// The fields of a workload object the classification needs.
struct Shape<'a> {
    /// Owned, as the workload keeps them: a Deployment's are shared with
    /// the snapshot (a reference count), the other kinds' copied once.
    namespace: SharedStr,
    kind: WorkloadKind,
    name: SharedStr,
    uid: SharedStr,
    desired: i32,
    ready: i32,
    object_labels: &'a dyn LabelLookup,
    template: &'a Shared<PodTemplateInfo>,
    update_strategy: &'a str,
    paused: bool,
    rollout_in_progress: Option<String>,
    stuck: bool,
    template_of: Option<String>,
    restart_at: Option<chrono::DateTime<chrono::Utc>>,
}

/// The revision and version new pods should run, when they should run any.
/// Borrowed: built for every workload, it copied two strings each time.
fn target<'a>(
    expected: &'a InjectionOutcome,
    control_plane: &'a ControlPlane,
) -> Option<(&'a str, Option<&'a str>)> {
    match expected {
        InjectionOutcome::Injected {
            revision, version, ..
        } => Some((revision, version.as_deref())),
        InjectionOutcome::WouldFail { revision, .. } => Some((
            revision,
            control_plane
                .revision(revision)
                .and_then(|r| r.proxy_version.as_deref()),
        )),
        InjectionOutcome::NotInjected { .. } => None,
    }
}

/// Whether a proxy differs from the target: revision when both are known,
/// version when both are known (a digest-pinned image has no version; an
/// old injector no revision).
fn differs(proxy: &RunningProxy, revision: Option<&str>, target: (&str, Option<&str>)) -> bool {
    let revision_differs = revision.is_some_and(|r| r != target.0);
    let version_differs = match (&proxy.version, target.1) {
        (Some(running), Some(wanted)) => !same_version(running, wanted),
        _ => false,
    };
    revision_differs || version_differs
}

/// What a pod runs, the revision that injected it (tags resolved), and
/// whether that is stale against `target` (no proxy while one is
/// expected, or one while none is, counts as stale).
fn judge_proxy(
    pod: &PodInfo,
    control_plane: &ControlPlane,
    target: Option<(&str, Option<&str>)>,
) -> (Option<RunningProxy>, Option<String>, bool) {
    let proxy = pod_proxy(pod);
    let revision = proxy
        .as_ref()
        .and_then(|p| resolve_revision(p, control_plane));
    let stale = match (&proxy, target) {
        (Some(p), Some(t)) => differs(p, revision.as_deref(), t),
        (None, Some(_)) | (Some(_), None) => true,
        (None, None) => false,
    };
    (proxy, revision, stale)
}

fn resolve_revision(proxy: &RunningProxy, control_plane: &ControlPlane) -> Option<String> {
    let named = proxy.revision.as_deref()?;
    Some(control_plane.resolve(named).unwrap_or(named).to_string())
}

fn build_workload(
    shape: Shape<'_>,
    pods: &[&PodInfo],
    namespace: &NamespaceInfo,
    index: &OwnerIndex<'_>,
    control_plane: &ControlPlane,
) -> Workload {
    let template = shape.template;
    let expected = expected_for_pod(
        namespace,
        &NewPod {
            labels: &template.labels,
            annotations: &template.annotations,
            host_network: template.host_network,
        },
        control_plane,
    );
    let target = target(&expected, control_plane);

    // The pods of a workload mostly run one proxy: what the previous pod's
    // proxy facts and revision label gave is shared by the next pod with
    // the same ones (a reference count each, not a copy per pod).
    let mut previous: Option<(&PodInfo, ProxyVerdict)> = None;
    let mut workload_pods: Vec<WorkloadPod> = Vec::with_capacity(pods.len());
    for pod in pods {
        let verdict = match &previous {
            Some((before, verdict)) if same_proxy_facts(before, pod) => verdict.clone(),
            _ => {
                let (proxy, revision, stale) = judge_proxy(pod, control_plane, target);
                ProxyVerdict {
                    proxy: proxy.map(Shared::new),
                    revision: revision.map(SharedStr::from),
                    stale,
                }
            }
        };
        workload_pods.push(WorkloadPod {
            name: pod.name.clone(),
            uid: pod.uid.clone(),
            ready: pod.ready,
            proxy: verdict.proxy.clone(),
            revision: verdict.revision.clone(),
            stale: verdict.stale,
            created: pod.created,
        });
        previous = Some((pod, verdict));
    }
    workload_pods.sort_by(|a, b| a.name.cmp(&b.name));

    // Keys borrowed from the pods: nothing copied per pod.
    let mut groups: BTreeMap<(Option<&SharedStr>, Option<&SharedStr>), usize> = BTreeMap::new();
    for pod in &workload_pods {
        if let Some(proxy) = &pod.proxy {
            *groups
                .entry((pod.revision.as_ref(), proxy.version.as_ref()))
                .or_default() += 1;
        }
    }
    let proxies: Vec<ProxyGroup> = groups
        .into_iter()
        .map(|((revision, version), pods)| ProxyGroup {
            revision: revision.cloned(),
            version: version.cloned(),
            pods,
        })
        .collect();
    let injected = workload_pods.iter().filter(|p| p.proxy.is_some()).count();
    let pods_without_proxy = workload_pods.len() - injected;
    let stale_pods = workload_pods.iter().filter(|p| p.stale).count();
    let expected_image = target
        .as_ref()
        .and_then(|(revision, _)| control_plane.revision(revision))
        .and_then(|r| r.image_values.as_ref())
        .and_then(|v| v.render(&template.annotations));
    let custom_image = template
        .annotations
        .get(PROXY_IMAGE_ANNOTATION)
        .is_some_and(|a| is_custom_image(a))
        || workload_pods
            .iter()
            .any(|p| p.proxy.as_ref().is_some_and(|x| x.custom_image));

    let state = decide_state(
        &expected,
        target.is_some(),
        injected,
        stale_pods,
        custom_image,
        shape.rollout_in_progress.is_some(),
    );

    let mut risks = Vec::new();
    let mut notes = Vec::new();
    if let Some(why) = &shape.rollout_in_progress {
        notes.push(format!("rollout in progress: {why}"));
    }
    if let Some(rollout) = &shape.template_of {
        notes.push(format!(
            "the template of Rollout {rollout} (spec.workloadRef): restarted through the Rollout, never itself (a change of its template would start an Argo update of the Rollout)"
        ));
    }
    if state.is_meshed() && state != WorkloadState::OptedOut {
        collect_risks(
            &shape,
            index,
            &expected,
            &proxies,
            control_plane,
            &mut risks,
            &mut notes,
        );
    }
    match &expected {
        InjectionOutcome::NotInjected {
            reason:
                reason @ (NotInjectedReason::MissingRevision { .. }
                | NotInjectedReason::InjectorUnavailable { .. }),
        } => notes.push(format!("new pods get no proxy: {reason}")),
        InjectionOutcome::NotInjected { reason } if state == WorkloadState::NoInjector => notes
            .push(format!(
                "new pods get no proxy ({reason}): a restart removes it"
            )),
        InjectionOutcome::NotInjected {
            reason:
                reason @ (NotInjectedReason::HostNetwork | NotInjectedReason::DeclinedByPolicy { .. }),
        } => notes.push(format!("new pods get no proxy: {reason}")),
        _ => {}
    }
    risks.sort();
    risks.dedup();

    Workload {
        namespace: shape.namespace,
        kind: shape.kind,
        name: shape.name,
        uid: shape.uid,
        desired: shape.desired,
        ready: shape.ready,
        template: template.clone(),
        is_gateway: is_gateway(shape.object_labels, template),
        expected_version: target.and_then(|t| t.1).map(str::to_string),
        expected_image,
        expected,
        pods: workload_pods,
        proxies,
        pods_without_proxy,
        stale_pods,
        rollout_in_progress: shape.rollout_in_progress,
        state,
        risks,
        notes,
        update_strategy: shape.update_strategy.to_string(),
        paused: shape.paused,
        template_of: shape.template_of,
        restart_at: shape.restart_at,
    }
}

fn decide_state(
    expected: &InjectionOutcome,
    has_target: bool,
    injected: usize,
    stale_pods: usize,
    custom_image: bool,
    rolling: bool,
) -> WorkloadState {
    if let InjectionOutcome::NotInjected { reason } = expected {
        match reason {
            NotInjectedReason::OptedOut
            | NotInjectedReason::DeclinedByPolicy {
                why: Declined::NeverInjectSelector,
                ..
            } => return WorkloadState::OptedOut,
            NotInjectedReason::Ambient if injected == 0 => return WorkloadState::Ambient,
            _ => {}
        }
    }
    if custom_image {
        return WorkloadState::CustomImage;
    }
    if rolling {
        return WorkloadState::Rolling;
    }
    if has_target {
        return if stale_pods == 0 {
            WorkloadState::UpToDate
        } else if injected == 0 {
            WorkloadState::NotInjected
        } else {
            WorkloadState::Stale
        };
    }
    if injected > 0 {
        return WorkloadState::NoInjector;
    }
    match expected {
        InjectionOutcome::NotInjected {
            reason:
                NotInjectedReason::MissingRevision { .. }
                | NotInjectedReason::InjectorUnavailable { .. },
        } => WorkloadState::NotInjected,
        _ => WorkloadState::NoMesh,
    }
}

fn collect_risks(
    shape: &Shape<'_>,
    index: &OwnerIndex<'_>,
    expected: &InjectionOutcome,
    proxies: &[ProxyGroup],
    control_plane: &ControlPlane,
    risks: &mut Vec<Risk>,
    notes: &mut Vec<String>,
) {
    let replicated = shape.kind != WorkloadKind::DaemonSet;
    if shape.desired == 0 {
        risks.push(Risk::ZeroReplicas);
        notes.push("scaled to zero: nothing to restart".into());
    } else if replicated {
        if shape.kind == WorkloadKind::Rollout && shape.desired == 1 {
            // rollout/restart.go restarts at least one pod, by eviction,
            // before any replacement exists.
            risks.push(Risk::SingleReplica);
            notes.push(
                "1 replica: Argo evicts its pod before a replacement starts, so it serves nothing until the new pod is Ready".into(),
            );
        } else if shape.ready <= 1 {
            risks.push(Risk::SingleReplica);
            notes.push(format!(
                "{} ready replica{}: a restart drops its traffic for a moment",
                shape.ready,
                if shape.ready == 1 { "" } else { "s" }
            ));
        }
        let pdbs = index.covering_pdbs(&shape.namespace, shape.template);
        if pdbs.is_empty() {
            risks.push(Risk::NoPdb);
        }
        for pdb in pdbs.iter().filter(|p| p.disruptions_allowed == 0) {
            risks.push(Risk::PdbAllowsZero);
            notes.push(format!(
                "PodDisruptionBudget {} allows 0 disruptions now",
                pdb.name
            ));
        }
    }
    if shape.update_strategy == "OnDelete" {
        risks.push(Risk::OnDelete);
        notes.push("updateStrategy OnDelete: pods must be deleted one at a time (restart-sidecars --delete-pods)".into());
    }
    if shape.paused && shape.kind == WorkloadKind::Rollout {
        risks.push(Risk::Paused);
        notes.push(
            "paused: Argo restarts nothing until `kubectl argo rollouts promote` (or resume)"
                .into(),
        );
    } else if shape.paused {
        risks.push(Risk::Paused);
        notes.push("paused: a restart waits until `kubectl rollout resume`".into());
    }
    if shape.stuck && shape.kind == WorkloadKind::Rollout {
        risks.push(Risk::RolloutStuck);
        notes.push("rollout Degraded: Argo will not finish it by itself".into());
    } else if shape.stuck {
        risks.push(Risk::RolloutStuck);
        notes.push("rollout stuck: ProgressDeadlineExceeded".into());
    }
    if let InjectionOutcome::WouldFail { revision, .. } = expected {
        risks.push(Risk::TargetNotReady);
        notes.push(format!(
            "istiod {revision} has no Ready pod: new pods would fail to be created"
        ));
    }
    for group in proxies {
        let Some(control) = group
            .revision
            .as_deref()
            .and_then(|r| control_plane.revision(r))
            .and_then(|r| r.istiod_version.as_deref())
        else {
            continue;
        };
        if let Some(version) = &group.version {
            if is_skewed(version, control) {
                risks.push(Risk::VersionSkew);
                notes.push(format!(
                    "{} pod(s) run proxy {version}, more than one minor version behind istiod {control}",
                    group.pods
                ));
            }
        }
    }
}

fn classify_unreachable(
    pod: &PodInfo,
    reason: UnreachableReason,
    template: Option<&PodTemplateInfo>,
    namespace: &NamespaceInfo,
    control_plane: &ControlPlane,
) -> Option<UnreachablePod> {
    // A pod no template describes is judged by its own labels, its
    // `sidecar.istio.io/inject` annotation and its hostNetwork.
    let own_annotations: Labels = pod
        .proxy
        .inject_annotation
        .iter()
        .map(|v| (INJECT_LABEL.to_string(), v.clone()))
        .collect();
    let new_pod = match template {
        Some(t) => NewPod {
            labels: &t.labels,
            annotations: &t.annotations,
            host_network: t.host_network,
        },
        None => NewPod {
            labels: &pod.labels,
            annotations: &own_annotations,
            host_network: pod.proxy.host_network,
        },
    };
    let expected = expected_for_pod(namespace, &new_pod, control_plane);
    let target = target(&expected, control_plane);
    let (proxy, revision, stale) = judge_proxy(pod, control_plane, target);
    let injected = usize::from(proxy.is_some());
    let custom = proxy.as_ref().is_some_and(|p| p.custom_image);
    let state = decide_state(
        &expected,
        target.is_some(),
        injected,
        usize::from(stale),
        custom,
        false,
    );
    if !state.is_meshed() || state == WorkloadState::OptedOut {
        return None;
    }
    let command = match &reason {
        UnreachableReason::Standalone => format!(
            "kubectl delete pod {} -n {}, then create it again from its original manifest",
            pod.name, pod.namespace
        ),
        UnreachableReason::Job { name } => format!(
            "kubectl delete job {name} -n {}, then create it again from its manifest",
            pod.namespace
        ),
        UnreachableReason::CronJob { name, .. } => format!(
            "none needed; to run it now: kubectl create job {name}-now --from=cronjob/{name} -n {}",
            pod.namespace
        ),
        UnreachableReason::BareReplicaSet { .. } => {
            format!("kubectl delete pod {} -n {}", pod.name, pod.namespace)
        }
        UnreachableReason::ForeignOwner { owner_kind, name } if owner_kind == "Rollout" => {
            format!("kubectl argo rollouts restart {name} -n {}", pod.namespace)
        }
        UnreachableReason::ForeignOwner { owner_kind, name } => format!(
            "restart it through its {owner_kind} {name}, or kubectl delete pod {} -n {} if that recreates it",
            pod.name, pod.namespace
        ),
    };
    Some(UnreachablePod {
        namespace: pod.namespace.to_string(),
        name: pod.name.to_string(),
        remedy: reason.remedy(),
        reason,
        proxy,
        revision,
        expected,
        state,
        command,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::mesh::fixtures::{ClusterFixture, PodFixture, ProxySpec, WorkloadFixture};

    fn canary() -> ClusterFixture {
        ClusterFixture::new()
            .revision("1-21-2", "1.21.2")
            .revision("1-22-3", "1.22.3")
            .tag("default", "1-21-2")
            .tag("prod-canary", "1-22-3")
            .namespace("shop", &[("istio-injection", "enabled")])
            .namespace("pay", &[("istio.io/rev", "1-22-3")])
    }

    fn classify_fixture(fixture: ClusterFixture) -> Classification {
        let snapshot = fixture.build();
        let cp = ControlPlane::from_snapshot(&snapshot);
        classify(&snapshot, &cp)
    }

    fn only(c: &Classification, name: &str) -> Workload {
        c.workloads
            .iter()
            .find(|w| w.name == name)
            .cloned()
            .expect("workload")
    }

    #[test]
    fn split_map_keeps_the_order_and_drops_the_nones_on_either_side_of_the_split() {
        for len in [0, 1, SPLIT_AT - 1, SPLIT_AT, 2 * SPLIT_AT + 1] {
            let items: Vec<usize> = (0..len).collect();
            let kept = split_map(&items, |&i| (i % 3 != 0).then_some(i * 2));
            let expected: Vec<usize> = (0..len).filter(|i| i % 3 != 0).map(|i| i * 2).collect();
            assert_eq!(kept, expected, "{len} items");
        }
    }

    #[test]
    fn a_cluster_large_enough_to_split_classifies_every_deployment_as_one_at_a_time() {
        let mut fixture = canary();
        let count = SPLIT_AT + 11;
        for i in 0..count {
            let (namespace, proxy) = if i % 2 == 0 {
                ("shop", ProxySpec::istio("1-21-2", "1.21.2"))
            } else {
                ("pay", ProxySpec::istio("1-21-2", "1.21.2"))
            };
            fixture = fixture.workload(
                WorkloadFixture::deployment(namespace, &format!("app-{i:05}")).pods(1, proxy),
            );
        }
        let c = classify_fixture(fixture);
        assert_eq!(c.workloads.len(), count);
        for w in &c.workloads {
            let i: usize = w.name["app-".len()..].parse().expect("numbered");
            // shop follows the default tag (1-21-2): up to date; pay moved to 1-22-3: stale.
            assert_eq!(w.namespace, if i % 2 == 0 { "shop" } else { "pay" });
            assert_eq!(w.pods.len(), 1, "{}", w.name);
            assert_eq!(w.pods[0].stale, i % 2 == 1, "{}", w.name);
        }
    }

    #[test]
    fn pods_with_one_shared_copy_of_proxy_facts_share_one_verdict_and_the_template() {
        let mut snapshot = canary()
            .workload(
                WorkloadFixture::deployment("pay", "payments")
                    .pods(3, ProxySpec::istio("1-21-2", "1.21.2")),
            )
            .build();
        // As the page decoders leave them: one copy of the proxy facts for
        // the pods of a workload.
        let facts = snapshot.pods[0].proxy.clone();
        for pod in &mut snapshot.pods {
            pod.proxy = facts.clone();
        }
        let cp = ControlPlane::from_snapshot(&snapshot);
        let c = classify(&snapshot, &cp);
        let w = only(&c, "payments");
        assert_eq!(w.pods.len(), 3);
        assert!(w.pods.iter().all(|p| p.stale));
        let first = w.pods[0].proxy.as_ref().expect("a proxy");
        for pod in &w.pods[1..] {
            assert!(Shared::ptr_eq(first, pod.proxy.as_ref().unwrap()));
            assert_eq!(pod.revision.as_deref(), Some("1-21-2"));
        }
        let deployment = &snapshot.deployments[0];
        assert!(
            Shared::ptr_eq(&w.template, &deployment.template),
            "the workload holds the Deployment's template, not a copy"
        );
    }

    #[test]
    fn pods_on_the_selected_revision_are_up_to_date() {
        let c = classify_fixture(
            canary()
                .workload(
                    WorkloadFixture::deployment("shop", "frontend")
                        .pods(2, ProxySpec::istio("1-21-2", "1.21.2")),
                )
                .pdb("shop", "frontend", 1),
        );
        let w = only(&c, "frontend");
        assert_eq!(w.state, WorkloadState::UpToDate);
        assert_eq!(w.expected_revision(), Some("1-21-2"));
        assert_eq!(
            w.proxies,
            vec![ProxyGroup {
                revision: Some("1-21-2".into()),
                version: Some("1.21.2".into()),
                pods: 2
            }]
        );
        assert!(w.risks.is_empty(), "{:?}", w.risks);
    }

    #[test]
    fn pods_of_a_relabelled_namespace_are_stale_until_restarted() {
        let c = classify_fixture(
            canary()
                .workload(
                    WorkloadFixture::deployment("pay", "payments")
                        .pods(2, ProxySpec::istio("1-21-2", "1.21.2")),
                )
                .pdb("pay", "payments", 1),
        );
        let w = only(&c, "payments");
        assert_eq!(w.state, WorkloadState::Stale);
        assert_eq!(w.stale_pods, 2);
        assert_eq!(w.expected_version.as_deref(), Some("1.22.3"));
    }

    #[test]
    fn an_in_place_upgrade_makes_same_revision_proxies_stale_by_version() {
        let c = classify_fixture(
            ClusterFixture::new()
                .default_revision_install("default", "1.22.3")
                .namespace("shop", &[("istio-injection", "enabled")])
                .workload(
                    WorkloadFixture::deployment("shop", "frontend")
                        .pods(2, ProxySpec::istio("default", "1.21.2")),
                )
                .pdb("shop", "frontend", 1),
        );
        assert_eq!(only(&c, "frontend").state, WorkloadState::Stale);
    }

    #[test]
    fn a_digest_pinned_proxy_is_compared_by_revision() {
        let c = classify_fixture(
            canary()
                .workload(WorkloadFixture::deployment("pay", "payments").replicas(1))
                .pod(
                    PodFixture::new("pay", "payments-x")
                        .proxy("1-22-3", "docker.io/istio/proxyv2@sha256:0123")
                        .owner(
                            "ReplicaSet",
                            "payments-5d8f7c9b4",
                            "uid-rs-pay-payments-5d8f7c9b4",
                        ),
                ),
        );
        let w = only(&c, "payments");
        assert_eq!(w.state, WorkloadState::UpToDate);
        assert_eq!(w.proxies[0].version, None);
    }

    #[test]
    fn a_proxy_injected_through_a_tag_matches_the_revision_behind_it() {
        let c = classify_fixture(
            canary()
                .namespace("batch", &[("istio.io/rev", "prod-canary")])
                .workload(
                    WorkloadFixture::deployment("batch", "worker")
                        .pods(2, ProxySpec::istio("prod-canary", "1.22.3")),
                )
                .pdb("batch", "worker", 1),
        );
        let w = only(&c, "worker");
        assert_eq!(w.state, WorkloadState::UpToDate);
        assert_eq!(w.proxies[0].revision.as_deref(), Some("1-22-3"));
    }

    #[test]
    fn a_meshed_namespace_with_proxyless_pods_is_not_injected() {
        let c = classify_fixture(
            canary().workload(WorkloadFixture::deployment("pay", "new").pods(2, ProxySpec::none())),
        );
        assert_eq!(only(&c, "new").state, WorkloadState::NotInjected);
    }

    #[test]
    fn a_label_naming_a_missing_revision_leaves_pods_not_injected_with_a_note() {
        let c = classify_fixture(
            canary()
                .namespace("typo", &[("istio.io/rev", "1-22-4")])
                .workload(WorkloadFixture::deployment("typo", "orders").pods(2, ProxySpec::none())),
        );
        let w = only(&c, "orders");
        assert_eq!(w.state, WorkloadState::NotInjected);
        assert!(
            w.notes.iter().any(|n| n.contains("1-22-4")),
            "{:?}",
            w.notes
        );
        assert!(
            stale_workloads(
                &c.workloads,
                RestartSelection {
                    all: true,
                    include_uninjected: true
                }
            )
            .is_empty()
        );
    }

    #[test]
    fn proxies_that_no_injector_would_give_again_are_called_out() {
        let c = classify_fixture(
            canary()
                .namespace("typo", &[("istio.io/rev", "1-22-4")])
                .workload(
                    WorkloadFixture::deployment("typo", "orders")
                        .pods(2, ProxySpec::istio("1-21-2", "1.21.2")),
                ),
        );
        assert_eq!(only(&c, "orders").state, WorkloadState::NoInjector);
    }

    #[test]
    fn opted_out_custom_image_ambient_and_unmeshed_workloads_are_told_apart() {
        let c = classify_fixture(
            canary()
                .namespace("ambient-apps", &[("istio.io/dataplane-mode", "ambient")])
                .namespace("no-mesh", &[])
                .workload(
                    WorkloadFixture::deployment("shop", "exporter")
                        .template_label("sidecar.istio.io/inject", "false")
                        .pods(1, ProxySpec::none()),
                )
                .workload(
                    WorkloadFixture::deployment("shop", "pricing")
                        .template_annotation(
                            "sidecar.istio.io/proxyImage",
                            "registry.example.com/istio/proxyv2:1.21.2-debug",
                        )
                        .pods(2, ProxySpec::custom("1-21-2", "1.21.2-debug")),
                )
                .workload(
                    WorkloadFixture::deployment("ambient-apps", "reviews")
                        .pods(2, ProxySpec::none()),
                )
                .workload(
                    WorkloadFixture::deployment("no-mesh", "static-site")
                        .pods(2, ProxySpec::none()),
                ),
        );
        assert_eq!(only(&c, "exporter").state, WorkloadState::OptedOut);
        assert_eq!(only(&c, "pricing").state, WorkloadState::CustomImage);
        assert_eq!(only(&c, "reviews").state, WorkloadState::Ambient);
        assert_eq!(only(&c, "static-site").state, WorkloadState::NoMesh);
        assert!(only(&c, "static-site").risks.is_empty());
    }

    #[test]
    fn a_rollout_in_progress_is_rolling_not_stale() {
        let c = classify_fixture(
            canary().workload(
                WorkloadFixture::deployment("pay", "payments")
                    .replicas(2)
                    .pods(1, ProxySpec::istio("1-21-2", "1.21.2"))
                    .pods(1, ProxySpec::istio("1-22-3", "1.22.3"))
                    .updated(1),
            ),
        );
        let w = only(&c, "payments");
        assert_eq!(w.state, WorkloadState::Rolling);
        assert_eq!(w.proxies.len(), 2);
    }

    #[test]
    fn an_unobserved_generation_counts_as_rolling() {
        let c = classify_fixture(
            canary().workload(
                WorkloadFixture::stateful_set("pay", "ledger")
                    .generation_behind()
                    .pods(2, ProxySpec::istio("1-22-3", "1.22.3")),
            ),
        );
        assert_eq!(only(&c, "ledger").state, WorkloadState::Rolling);
    }

    #[test]
    fn risks_flag_single_replica_missing_pdb_blocking_pdb_on_delete_and_paused() {
        let c = classify_fixture(
            canary()
                .workload(
                    WorkloadFixture::deployment("shop", "recommendations")
                        .replicas(1)
                        .pods(1, ProxySpec::istio("1-21-2", "1.21.2")),
                )
                .workload(
                    WorkloadFixture::deployment("shop", "cart")
                        .replicas(2)
                        .pods(2, ProxySpec::istio("1-21-2", "1.21.2"))
                        .paused(),
                )
                .pdb("shop", "cart", 0)
                .workload(
                    WorkloadFixture::stateful_set("pay", "ledger")
                        .on_delete()
                        .pods(2, ProxySpec::istio("1-21-2", "1.21.2")),
                )
                .pdb("pay", "ledger", 1),
        );
        assert_eq!(
            only(&c, "recommendations").risks,
            vec![Risk::SingleReplica, Risk::NoPdb]
        );
        assert_eq!(
            only(&c, "cart").risks,
            vec![Risk::PdbAllowsZero, Risk::Paused]
        );
        let ledger = only(&c, "ledger");
        assert_eq!(ledger.risks, vec![Risk::OnDelete]);
        assert_eq!(
            ledger.state,
            WorkloadState::Stale,
            "OnDelete waits for deletion, it is not rolling"
        );
        assert!(!ledger.rolls_on_template_change());
    }

    #[test]
    fn zero_replicas_is_a_note_not_a_downtime_risk() {
        let c = classify_fixture(
            canary().workload(WorkloadFixture::deployment("shop", "idle").replicas(0)),
        );
        let w = only(&c, "idle");
        assert_eq!(w.state, WorkloadState::UpToDate);
        assert_eq!(w.risks, vec![Risk::ZeroReplicas]);
    }

    #[test]
    fn proxies_two_minors_behind_their_istiod_are_flagged_as_skew() {
        let c = classify_fixture(
            ClusterFixture::new()
                .default_revision_install("default", "1.22.3")
                .namespace("shop", &[("istio-injection", "enabled")])
                .workload(
                    WorkloadFixture::deployment("shop", "old")
                        .pods(2, ProxySpec::istio("default", "1.20.8")),
                )
                .pdb("shop", "old", 1)
                .workload(
                    WorkloadFixture::deployment("shop", "recent")
                        .pods(2, ProxySpec::istio("default", "1.21.2")),
                )
                .pdb("shop", "recent", 1),
        );
        assert!(only(&c, "old").risks.contains(&Risk::VersionSkew));
        assert!(!only(&c, "recent").risks.contains(&Risk::VersionSkew));
    }

    #[test]
    fn a_target_revision_without_ready_istiod_is_a_risk() {
        let c = classify_fixture(
            canary()
                .unready("1-22-3")
                .workload(
                    WorkloadFixture::deployment("pay", "payments")
                        .pods(2, ProxySpec::istio("1-21-2", "1.21.2")),
                )
                .pdb("pay", "payments", 1),
        );
        let w = only(&c, "payments");
        assert_eq!(w.state, WorkloadState::Stale);
        assert_eq!(w.risks, vec![Risk::TargetNotReady]);
    }

    #[test]
    fn native_sidecars_and_daemon_sets_are_classified_like_the_rest() {
        let c = classify_fixture(
            canary()
                .workload(
                    WorkloadFixture::deployment("pay", "indexer")
                        .pods(2, ProxySpec::native("1-21-2", "1.21.2")),
                )
                .pdb("pay", "indexer", 1)
                .workload(
                    WorkloadFixture::daemon_set("shop", "log-agent")
                        .replicas(3)
                        .pods(3, ProxySpec::istio("1-21-2", "1.21.2")),
                ),
        );
        assert_eq!(only(&c, "indexer").state, WorkloadState::Stale);
        let agent = only(&c, "log-agent");
        assert_eq!(agent.state, WorkloadState::UpToDate);
        assert!(
            agent.risks.is_empty(),
            "DaemonSets carry no replica or PDB risks: {:?}",
            agent.risks
        );
    }

    #[test]
    fn a_host_network_workload_in_an_injected_namespace_is_outside_the_mesh_not_missing_a_proxy() {
        let c = classify_fixture(
            canary().workload(
                WorkloadFixture::deployment("shop", "node-exporter")
                    .host_network()
                    .pods(2, ProxySpec::none()),
            ),
        );
        let w = c
            .workloads
            .iter()
            .find(|w| w.name == "node-exporter")
            .unwrap();
        assert_eq!(w.state, WorkloadState::NoMesh);
        assert_eq!(
            w.expected,
            InjectionOutcome::NotInjected {
                reason: NotInjectedReason::HostNetwork
            }
        );
        assert_eq!(w.stale_pods, 0);
        assert!(
            w.notes
                .contains(&"new pods get no proxy: hostNetwork pods are never injected".into()),
            "{:?}",
            w.notes
        );
        let selection = RestartSelection {
            all: true,
            include_uninjected: true,
        };
        assert!(
            stale_workloads(&c.workloads, selection)
                .iter()
                .all(|w| w.name != "node-exporter")
        );
    }

    #[test]
    fn the_expected_image_is_what_the_injector_renders_for_the_template() {
        let c = classify_fixture(
            canary()
                .edit(|s| {
                    for cfg in s
                        .injector_configs
                        .iter_mut()
                        .filter(|c| c.revision == "1-22-3")
                    {
                        cfg.hub = Some("gcr.io/istio-release".into());
                        cfg.variant = Some("distroless".into());
                    }
                })
                .workload(
                    WorkloadFixture::deployment("pay", "payments")
                        .pods(1, ProxySpec::istio("1-22-3", "1.22.3")),
                )
                .workload(
                    WorkloadFixture::deployment("pay", "debugging")
                        .template_annotation("sidecar.istio.io/proxyImageType", "debug")
                        .pods(1, ProxySpec::istio("1-22-3", "1.22.3")),
                )
                .workload(
                    WorkloadFixture::deployment("pay", "not-custom")
                        .template_annotation("sidecar.istio.io/proxyImage", "proxyv2:1.9.9")
                        .pods(1, ProxySpec::istio("1-22-3", "1.22.3")),
                ),
        );
        let w = |name: &str| c.workloads.iter().find(|w| w.name == name).unwrap();
        assert_eq!(
            w("payments").expected_image.as_deref(),
            Some("gcr.io/istio-release/proxyv2:1.22.3-distroless")
        );
        assert_eq!(
            w("debugging").expected_image.as_deref(),
            Some("gcr.io/istio-release/proxyv2:1.22.3-debug")
        );
        assert_eq!(w("debugging").state, WorkloadState::UpToDate);
        // The template ignores a proxyImage without a `/`: not a custom image.
        assert_eq!(w("not-custom").state, WorkloadState::UpToDate);
    }

    #[test]
    fn a_full_proxy_image_in_the_injector_values_decides_the_expected_version() {
        let c = classify_fixture(
            canary()
                .edit(|s| {
                    for cfg in s
                        .injector_configs
                        .iter_mut()
                        .filter(|c| c.revision == "1-22-3")
                    {
                        cfg.proxy_image = Some("registry.example.com/istio/proxyv2:1.22.4".into());
                    }
                })
                .workload(
                    WorkloadFixture::deployment("pay", "fresh")
                        .pods(1, ProxySpec::istio("1-22-3", "1.22.4")),
                )
                .workload(
                    WorkloadFixture::deployment("pay", "payments")
                        .pods(1, ProxySpec::istio("1-22-3", "1.22.3")),
                ),
        );
        let w = |name: &str| c.workloads.iter().find(|w| w.name == name).unwrap();
        assert_eq!(w("fresh").expected_version.as_deref(), Some("1.22.4"));
        assert_eq!(w("fresh").state, WorkloadState::UpToDate);
        assert_eq!(
            w("fresh").expected_image.as_deref(),
            Some("registry.example.com/istio/proxyv2:1.22.4")
        );
        // Same revision, but 1.22.3 is not what the injector renders now.
        assert_eq!(w("payments").state, WorkloadState::Stale);
    }

    #[test]
    fn a_template_opted_out_by_the_older_annotation_is_opted_out() {
        let c = classify_fixture(
            canary().workload(
                WorkloadFixture::deployment("shop", "batch")
                    .template_annotation("sidecar.istio.io/inject", "false")
                    .pods(1, ProxySpec::none()),
            ),
        );
        let w = c.workloads.iter().find(|w| w.name == "batch").unwrap();
        assert_eq!(w.state, WorkloadState::OptedOut);
    }

    #[test]
    fn bare_pods_opted_out_by_annotation_or_on_the_host_network_are_not_reported() {
        let c = classify_fixture(
            canary()
                .pod(PodFixture::new("shop", "one-off").inject_annotation("false"))
                .pod(PodFixture::new("shop", "node-probe").host_network())
                .pod(PodFixture::new("shop", "forgotten")),
        );
        let names: Vec<&str> = c.unreachable.iter().map(|p| p.name.as_str()).collect();
        assert_eq!(names, ["forgotten"], "only the pod istiod would inject");
        assert_eq!(c.unreachable[0].state, WorkloadState::NotInjected);
    }

    #[test]
    fn a_never_inject_selector_opts_matching_workloads_out() {
        let c = classify_fixture(
            canary()
                .edit(|s| {
                    for cfg in &mut s.injector_configs {
                        cfg.policy = crate::snapshot::InjectionPolicyConfig::parse(
                            "policy: enabled\nneverInjectSelector:\n- matchLabels: {app: builder}\n",
                        );
                    }
                })
                .workload(
                    WorkloadFixture::deployment("shop", "builder")
                        .template_label("app", "builder")
                        .pods(1, ProxySpec::none()),
                ),
        );
        let w = c.workloads.iter().find(|w| w.name == "builder").unwrap();
        assert_eq!(w.state, WorkloadState::OptedOut);
    }

    #[test]
    fn pods_no_template_patch_reaches_are_reported_with_a_command() {
        let c = classify_fixture(
            canary()
                .pod(PodFixture::new("pay", "debug").spec(&ProxySpec::istio("1-21-2", "1.21.2")))
                .pod(
                    PodFixture::new("pay", "report-x")
                        .spec(&ProxySpec::istio("1-22-3", "1.22.3"))
                        .owner("Job", "report", "uid-job"),
                )
                .pod(
                    PodFixture::new("pay", "canary-abc")
                        .spec(&ProxySpec::istio("1-21-2", "1.21.2"))
                        .owner("ReplicaSet", "canary-abc", "uid-rs-rollout"),
                )
                .replica_set(crate::snapshot::ReplicaSetInfo {
                    namespace: "pay".into(),
                    name: "canary-abc".into(),
                    uid: "uid-rs-rollout".into(),
                    owners: vec![crate::snapshot::OwnerRef {
                        kind: "Rollout".into(),
                        api_version: "argoproj.io/v1alpha1".into(),
                        name: "canary".into(),
                        uid: "uid-rollout".into(),
                        controller: true,
                    }],
                    desired: 1,
                    replicas: 1,
                    ready: 1,
                    available: 1,
                    deployment_revision: None,
                    template: None,
                })
                .pod(
                    PodFixture::new("pay", "bare-x")
                        .spec(&ProxySpec::istio("1-21-2", "1.21.2"))
                        .owner("ReplicaSet", "bare", "uid-rs-bare"),
                )
                .replica_set(crate::snapshot::ReplicaSetInfo {
                    namespace: "pay".into(),
                    name: "bare".into(),
                    uid: "uid-rs-bare".into(),
                    owners: vec![],
                    desired: 1,
                    replicas: 1,
                    ready: 1,
                    available: 1,
                    deployment_revision: None,
                    template: Some(Shared::default()),
                })
                .pod(PodFixture::new("no-mesh-ns", "plain")),
        );
        let by_name: HashMap<&str, &UnreachablePod> =
            c.unreachable.iter().map(|p| (p.name.as_str(), p)).collect();
        assert_eq!(
            by_name.len(),
            4,
            "the unmeshed standalone pod is not listed: {:?}",
            by_name.keys()
        );
        assert_eq!(by_name["debug"].reason, UnreachableReason::Standalone);
        assert_eq!(by_name["debug"].state, WorkloadState::Stale);
        assert_eq!(
            by_name["report-x"].reason,
            UnreachableReason::Job {
                name: "report".into()
            }
        );
        assert_eq!(by_name["report-x"].state, WorkloadState::UpToDate);
        assert_eq!(
            by_name["report-x"].command,
            "kubectl delete job report -n pay, then create it again from its manifest"
        );
        assert_eq!(
            by_name["report-x"].remedy,
            "finishes on the old proxy: wait, or delete and rerun the Job"
        );
        assert_eq!(
            by_name["canary-abc"].command,
            "kubectl argo rollouts restart canary -n pay"
        );
        assert_eq!(
            by_name["bare-x"].reason,
            UnreachableReason::BareReplicaSet {
                name: "bare".into()
            }
        );
        assert!(c.workloads.is_empty());
    }

    #[test]
    fn restart_selection_picks_stale_by_default_and_widens_with_flags() {
        let c = classify_fixture(
            canary()
                .workload(
                    WorkloadFixture::deployment("pay", "stale")
                        .pods(2, ProxySpec::istio("1-21-2", "1.21.2")),
                )
                .workload(
                    WorkloadFixture::deployment("pay", "fresh")
                        .pods(2, ProxySpec::istio("1-22-3", "1.22.3")),
                )
                .workload(WorkloadFixture::deployment("pay", "bare").pods(2, ProxySpec::none()))
                .workload(
                    WorkloadFixture::deployment("pay", "opted")
                        .template_label("sidecar.istio.io/inject", "false")
                        .pods(1, ProxySpec::none()),
                ),
        );
        let names = |sel| -> Vec<String> {
            stale_workloads(&c.workloads, sel)
                .iter()
                .map(|w| w.name.to_string())
                .collect()
        };
        assert_eq!(names(RestartSelection::default()), vec!["stale"]);
        assert_eq!(
            names(RestartSelection {
                all: true,
                include_uninjected: false
            }),
            vec!["fresh", "stale"]
        );
        assert_eq!(
            names(RestartSelection {
                all: false,
                include_uninjected: true
            }),
            vec!["bare", "stale"]
        );
    }

    #[test]
    fn istiod_deployments_are_not_listed_as_workloads() {
        let c = classify_fixture(
            canary().workload(
                WorkloadFixture::deployment("istio-system", "istiod-1-22-3")
                    .object_label("app", "istiod")
                    .template_label("sidecar.istio.io/inject", "false")
                    .pods(1, ProxySpec::none()),
            ),
        );
        assert!(c.workloads.is_empty(), "{:?}", c.workloads);
        assert!(c.unreachable.is_empty());
    }

    #[test]
    fn gateways_are_recognised_by_label_or_injection_template() {
        let c = classify_fixture(
            canary().namespace("istio-gateways", &[]).workload(
                WorkloadFixture::deployment("istio-gateways", "gw-1-22-3")
                    .gateway("1-22-3")
                    .pods(2, ProxySpec::istio("1-22-3", "1.22.3")),
            ),
        );
        let w = only(&c, "gw-1-22-3");
        assert!(w.is_gateway);
        assert_eq!(w.expected_revision(), Some("1-22-3"));
        assert_eq!(w.state, WorkloadState::UpToDate);
    }
}
