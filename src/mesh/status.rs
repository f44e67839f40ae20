//! The `status` report: where the upgrade stands, as one serialisable
//! document (`-o json|yaml`) that the table renderer also draws from.
//!
//! The document is a stable interface (CI pipelines parse it), so every field
//! is documented here and named in camelCase; the README quotes these docs.
//! Lists are sorted (namespace, kind, name) so two runs on the same cluster
//! print the same bytes, apart from `generatedAt`.
//!
//! ```text
//! snapshot ─► ControlPlane ─► classify ─► gateways ─► StatusReport { revisions, namespaces, workloads,
//!                                                                  unreachablePods, gateways, gatewayServices,
//!                                                                  versionSkew, ztunnel, istioCni,
//!                                                                  ambient, summary }
//! ```

use std::collections::{BTreeMap, BTreeSet, HashMap};

use chrono::{DateTime, Utc};
use serde::Serialize;

use crate::mesh::ambient::{self, AmbientStatus, ComponentStatus};
use crate::mesh::control_plane::ControlPlane;
use crate::mesh::gateway_api::{
    GatewayApiStatus, WaypointStatus, gateway_api_gateways, status_lists,
};
use crate::mesh::gateways::{Gateway, GatewayService, gateway_services, gateways};
use crate::mesh::injection::{
    DATAPLANE_MODE_LABEL, INJECTION_LABEL, InjectionOutcome, NotInjectedReason, REV_LABEL,
    conflicting_injection_labels, expected_revision,
};
use crate::mesh::proxy::{Version, is_skewed};
use crate::mesh::revision_usage::{OwnObject, RevisionUsage, RevisionUser, revision_usage};
use crate::mesh::workloads::{
    Classification, ProxyGroup, Risk, UnreachablePod, UnreachableReason, Workload, WorkloadState,
    classify,
};
use crate::snapshot::{ClusterSnapshot, Labels, NamespaceInfo, Scope, SharedStr};

use crate::mesh::API_VERSION;
use crate::mesh::injection_check::Verification;

/// The whole `status` document.
#[derive(Clone, Debug, PartialEq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct StatusReport {
    /// Always `mesh-upgrade/v1`.
    pub api_version: String,
    /// Always `Status`.
    pub kind: String,
    /// When the report was built (RFC 3339, UTC).
    pub generated_at: DateTime<Utc>,
    /// The namespace istiod was looked for in.
    pub control_plane_namespace: String,
    /// The namespaces the report covers.
    pub scope: ScopeStatus,
    /// Every istiod revision, sorted by revision name.
    pub revisions: Vec<RevisionStatus>,
    /// The selected namespaces, sorted by name.
    pub namespaces: Vec<NamespaceStatus>,
    /// Deployments, StatefulSets, DaemonSets and Argo Rollouts of the selected namespaces,
    /// sorted by namespace, kind, name; including `ambient` and `no-mesh` ones.
    pub workloads: Vec<WorkloadStatus>,
    /// Meshed pods no template patch can restart, sorted by namespace, name.
    pub unreachable_pods: Vec<UnreachablePodStatus>,
    /// Gateway Deployments (of the selected namespaces and the control-plane namespace).
    pub gateways: Vec<GatewayStatus>,
    /// LoadBalancer/NodePort Services in front of gateway pods.
    pub gateway_services: Vec<GatewayServiceStatus>,
    /// Whether the cluster serves the Gateway API (`gateway.networking.k8s.io`
    /// CRDs installed; a 404 on the Gateway LIST means not).
    pub gateway_api_installed: bool,
    /// Istio-class Gateway API `Gateway`s (ingress, waypoint, east-west) of
    /// the selected namespaces and the control-plane namespace: the revision
    /// that serves each and what istiod rendered for it.
    pub gateway_api: Vec<GatewayApiStatus>,
    /// The waypoints among them, with who uses each.
    pub waypoints: Vec<WaypointStatus>,
    /// Proxies more than one minor version behind the istiod they talk to.
    pub version_skew: Vec<SkewStatus>,
    /// ztunnel DaemonSets (ambient mode's node proxy) of the control
    /// plane's namespace, node by node: see [`ComponentStatus`].
    pub ztunnel: Vec<ComponentStatus>,
    /// istio-cni DaemonSets (ambient mode's CNI node agent), node by node.
    pub istio_cni: Vec<ComponentStatus>,
    /// Pods of the selected namespaces that ambient mode captures (or
    /// should), and their `ambient.istio.io/redirection`.
    pub ambient: AmbientStatus,
    /// Counts and the next commands to run.
    pub summary: Summary,
}

/// Which namespaces were read.
#[derive(Clone, Debug, PartialEq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct ScopeStatus {
    /// `-A` was given.
    pub all_namespaces: bool,
    /// The selected namespaces (empty with `allNamespaces`).
    pub namespaces: Vec<String>,
}

/// One control-plane revision (an istiod Deployment).
#[derive(Clone, Debug, PartialEq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct RevisionStatus {
    /// The istiod Deployment (`istiod-1-22-3`).
    pub name: String,
    /// The revision (`istio.io/rev` label, `default` when absent).
    pub revision: String,
    /// istiod's Istio version (image tag), `null` when the image has none.
    pub version: Option<String>,
    /// The proxy version this revision injects (the tag of `proxyImage`,
    /// else the istiod version).
    pub proxy_version: Option<String>,
    /// The `istio-proxy` image it injects into a plain pod, rendered from its
    /// injector ConfigMap (`null` when that could not be read).
    pub proxy_image: Option<String>,
    /// Ready istiod replicas.
    pub ready_replicas: i32,
    /// Desired istiod replicas.
    pub replicas: i32,
    /// Revision tags pointing at it.
    pub tags: Vec<String>,
    /// It serves `istio-injection=enabled` namespaces (directly or through the `default` tag).
    pub default: bool,
    /// Something still uses it (see `usedBy`).
    pub in_use: bool,
    /// What still uses it: `{kind, namespace, name, reason}`; kinds are
    /// `Namespace` (its new pods get this revision, or its `istio.io/rev`
    /// names it or a tag of it), `RevisionTag`, `Deployment`, `StatefulSet`,
    /// `DaemonSet` (pods run its proxy, or the template selects it; a
    /// gateway's reason starts with `gateway:`), `Pod` (no restart reaches
    /// it) and `MutatingWebhookConfiguration` (another configuration calls
    /// its istiod, or its own serve `istio-injection=enabled`). Pods are
    /// counted in the namespaces read only.
    pub used_by: Vec<RevisionUser>,
    /// Nothing uses it, every namespace was read (`-A`), and a revision of a
    /// newer Istio version runs beside it: it can be removed.
    pub removable: bool,
    /// The command that removes it (`helm uninstall <release> -n <ns>`
    /// when Helm installed istiod, else `istioctl uninstall --revision <rev>`).
    pub remove_command: String,
    /// Its own objects, which removing it removes: `{kind, namespace, name}`.
    pub control_plane_objects: Vec<OwnObject>,
}

/// A problem with a namespace's injection labels.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct Problem {
    /// `both-labels` (`istio-injection` and `istio.io/rev`),
    /// `sidecar-and-ambient-labels` (either with `istio.io/dataplane-mode`;
    /// both are IST0123), `missing-revision`, `tag-without-webhook` (a tag
    /// known only from its Service), `revision-not-ready`,
    /// `injector-unavailable`.
    pub code: String,
    /// One sentence saying what happens and why.
    pub message: String,
}

/// One selected namespace.
#[derive(Clone, Debug, PartialEq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct NamespaceStatus {
    pub name: String,
    /// `enabled` (`istio-injection=enabled`), `rev:<name>` (`istio.io/rev`),
    /// `disabled`, `none` or `ambient`.
    pub injection: String,
    /// The revision a new pod without its own labels would get; `null` for none.
    pub revision: Option<String>,
    /// The revision tag that resolved it, if any.
    pub tag: Option<String>,
    /// Workloads in it (any state).
    pub workloads: usize,
    /// Problems with its labels; empty when fine.
    pub problems: Vec<Problem>,
    /// Sentences about its labels that need no action (a leftover
    /// `istio.io/rev` under `istio-injection=disabled`).
    pub notes: Vec<String>,
}

/// A Deployment, StatefulSet, DaemonSet or Argo Rollout.
#[derive(Clone, Debug, PartialEq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct WorkloadStatus {
    pub namespace: SharedStr,
    /// `Deployment`, `StatefulSet`, `DaemonSet` or `Rollout`.
    pub kind: &'static str,
    pub name: SharedStr,
    /// `up-to-date`, `stale`, `rolling`, `not-injected`, `no-injector`,
    /// `opted-out`, `custom-image`, `ambient` or `no-mesh`.
    pub state: WorkloadState,
    /// The revision a new pod of its template would get; `null` for none.
    pub expected_revision: Option<String>,
    /// The proxy version that revision injects.
    pub expected_version: Option<String>,
    /// The `istio-proxy` image a new pod would get (`null` when unknown).
    pub expected_image: Option<String>,
    /// Pods grouped by the proxy they run: `{revision, version, pods}`.
    pub proxies: Vec<ProxyGroup>,
    /// Pods running no proxy.
    pub pods_without_proxy: usize,
    /// Pods running another proxy than a new pod would get.
    pub stale_pods: usize,
    /// Desired replicas (DaemonSets: scheduled nodes).
    pub replicas: i32,
    pub ready_replicas: i32,
    /// `single-replica`, `no-pdb`, `pdb-allows-zero`, `pdb-unknown` (PDBs
    /// could not be read), `on-delete`, `paused`,
    /// `zero-replicas`, `target-not-ready`, `rollout-stuck`, `version-skew`.
    pub risks: Vec<Risk>,
    /// Sentences explaining the state and risks.
    pub notes: Vec<String>,
    /// It is an Istio gateway.
    pub gateway: bool,
    /// With `--verify-injection`: the API server's dry-run answer judged
    /// against the expectation above (absent without the flag). Boxed: it
    /// is there only with the flag, and inline it made every row of a large
    /// report larger.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub verification: Option<Box<Verification>>,
    /// With `--verify-injection`: how a stale pod's sidecar differs from the
    /// one the dry run injected (image, revision, native or classic sidecar,
    /// resources, `istio-init` or `istio-validation`); absent without the flag.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub reasons: Option<Vec<String>>,
}

/// A meshed pod no template patch can restart.
#[derive(Clone, Debug, PartialEq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct UnreachablePodStatus {
    pub namespace: String,
    pub name: String,
    /// `standalone`, `job` (a Job no CronJob made), `cronjob` (a run of a
    /// CronJob), `bare-replica-set` or `foreign-owner`.
    pub reason_code: String,
    /// The owner as `Kind/name` (a CronJob's run: the CronJob), `null` for
    /// a standalone pod.
    pub owner: Option<String>,
    /// Who owns it, in one sentence.
    pub reason: String,
    /// What becomes of it or what to do, in one sentence: `the next run gets
    /// the new proxy (schedule ...)` for a CronJob's run, `finishes on the
    /// old proxy: wait, or delete and rerun the Job` for a Job's.
    pub remedy: String,
    /// The revision and version of the proxy it runs (`null` without one).
    pub revision: Option<String>,
    pub version: Option<String>,
    pub expected_revision: Option<String>,
    /// The state its pod would have as a workload (`stale`, `up-to-date`, ...).
    pub state: WorkloadState,
    /// What a person would run, after checking it is safe.
    pub command: String,
}

/// A gateway Deployment.
#[derive(Clone, Debug, PartialEq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct GatewayStatus {
    pub namespace: String,
    pub name: String,
    /// The revision its new pods get.
    pub revision: Option<String>,
    /// The proxy version most of its pods run.
    pub version: Option<String>,
    pub ready_replicas: i32,
    pub replicas: i32,
    pub state: WorkloadState,
    /// External Services that select its pods now.
    pub services: Vec<String>,
}

/// An external Service in front of gateway pods.
#[derive(Clone, Debug, PartialEq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct GatewayServiceStatus {
    pub namespace: String,
    pub name: String,
    /// `LoadBalancer` or `NodePort`.
    #[serde(rename = "type")]
    pub type_: String,
    pub selector: Labels,
    /// The selector key that picks a revision (`version`, else `istio.io/rev`).
    pub selector_key: Option<String>,
    /// Gateway Deployments it selects now.
    pub selects: Vec<String>,
    /// Their revisions.
    pub selects_revisions: Vec<String>,
    /// Ready endpoints in its EndpointSlices.
    pub ready_endpoints: usize,
    pub not_ready_endpoints: usize,
    /// Ready endpoints by the revision of their pod's proxy.
    pub endpoints_by_revision: Vec<ProxyRevisionCount>,
    /// Other gateways it could be switched to.
    pub candidates: Vec<CandidateStatus>,
}

/// Pods per proxy revision.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct ProxyRevisionCount {
    pub revision: Option<String>,
    pub pods: usize,
}

/// A gateway a Service could be switched to.
#[derive(Clone, Debug, PartialEq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct CandidateStatus {
    pub deployment: String,
    pub revision: Option<String>,
    pub version: Option<String>,
    /// The value to set under `selectorKey`.
    pub selector_value: String,
    /// It can take over now.
    pub ready: bool,
    /// Why not, when it cannot.
    pub problems: Vec<String>,
}

/// Proxies too far behind their control plane.
#[derive(Clone, Debug, PartialEq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct SkewStatus {
    pub namespace: SharedStr,
    pub kind: &'static str,
    pub name: SharedStr,
    pub proxy_version: SharedStr,
    pub revision: SharedStr,
    pub control_plane_version: String,
    pub pods: usize,
}

/// Counts of workloads by state.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct StateCounts {
    pub total: usize,
    pub up_to_date: usize,
    pub stale: usize,
    pub rolling: usize,
    pub not_injected: usize,
    pub no_injector: usize,
    pub opted_out: usize,
    pub custom_image: usize,
    pub ambient: usize,
    pub no_mesh: usize,
}

impl StateCounts {
    fn add(&mut self, state: WorkloadState) {
        self.total += 1;
        let slot = match state {
            WorkloadState::UpToDate => &mut self.up_to_date,
            WorkloadState::Stale => &mut self.stale,
            WorkloadState::Rolling => &mut self.rolling,
            WorkloadState::NotInjected => &mut self.not_injected,
            WorkloadState::NoInjector => &mut self.no_injector,
            WorkloadState::OptedOut => &mut self.opted_out,
            WorkloadState::CustomImage => &mut self.custom_image,
            WorkloadState::Ambient => &mut self.ambient,
            WorkloadState::NoMesh => &mut self.no_mesh,
        };
        *slot += 1;
    }
}

/// One thing to do next.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct NextStep {
    /// What was found.
    pub message: String,
    /// The command to run, when there is one.
    pub command: Option<String>,
}

/// Counts, what needs attention, and the next commands.
#[derive(Clone, Debug, PartialEq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct Summary {
    /// Workloads by state.
    pub workloads: StateCounts,
    /// Pods whose proxy differs from what they should run (workloads and unreachable pods).
    pub stale_pods: usize,
    pub unreachable_pods: usize,
    /// Something is stale or broken (`status --exit-code` exits 3).
    pub needs_attention: bool,
    /// Why, one sentence each.
    pub attention: Vec<String>,
    /// What to run next, most useful first.
    pub next_steps: Vec<NextStep>,
}

impl StatusReport {
    /// Something is stale or broken: what `--exit-code` gates on.
    pub fn needs_attention(&self) -> bool {
        self.summary.needs_attention
    }
}

/// Builds the report from a snapshot. Pure: `now` only stamps `generatedAt`.
pub fn build_status(snapshot: &ClusterSnapshot, now: DateTime<Utc>) -> StatusReport {
    let control_plane = ControlPlane::from_snapshot(snapshot);
    let classification = classify(snapshot, &control_plane);
    build_status_from(snapshot, &control_plane, &classification, now)
}

/// Builds the report from an already classified snapshot (the other verbs
/// classify once and may print the report too).
pub fn build_status_from(
    snapshot: &ClusterSnapshot,
    control_plane: &ControlPlane,
    classification: &Classification,
    now: DateTime<Utc>,
) -> StatusReport {
    // A revision's users are found by walking every workload once per
    // revision: that runs on a second thread while this one builds the rest.
    std::thread::scope(|scope| {
        let usage = scope.spawn(|| revision_usage(snapshot, control_plane, classification));
        build_status_with(snapshot, control_plane, classification, now, || {
            usage
                .join()
                .unwrap_or_else(|p| std::panic::resume_unwind(p))
        })
    })
}

/// [`build_status_from`] with the revisions' usage handed in when needed.
fn build_status_with(
    snapshot: &ClusterSnapshot,
    control_plane: &ControlPlane,
    classification: &Classification,
    now: DateTime<Utc>,
    usage: impl FnOnce() -> Vec<RevisionUsage>,
) -> StatusReport {
    let in_scope = |ns: &str| snapshot.scope.contains(ns);
    let default_revision = control_plane.default_revision();

    // What istiod renders for Gateway API gateways is shown with each
    // Gateway (below), not as a workload.
    let workloads_in_scope: Vec<&Workload> = classification
        .workloads
        .iter()
        .filter(|w| in_scope(&w.namespace) && !w.is_gateway_api())
        .collect();

    // Counted in one pass: 500 namespaces each scanning 50,000 workloads
    // was a quarter of the model's time.
    let mut workloads_per_namespace: HashMap<&str, usize> = HashMap::new();
    for w in &workloads_in_scope {
        *workloads_per_namespace
            .entry(w.namespace.as_str())
            .or_default() += 1;
    }
    let mut namespaces: Vec<NamespaceStatus> = snapshot
        .namespaces
        .iter()
        .filter(|n| in_scope(&n.name))
        .map(|n| {
            let workloads = workloads_per_namespace
                .get(n.name.as_str())
                .copied()
                .unwrap_or(0);
            namespace_status(n, control_plane, workloads)
        })
        .collect();
    namespaces.sort_by(|a, b| a.name.cmp(&b.name));

    let workloads: Vec<WorkloadStatus> = workloads_in_scope
        .iter()
        .map(|w| workload_status(w))
        .collect();
    let unreachable_pods: Vec<UnreachablePodStatus> = classification
        .unreachable
        .iter()
        .filter(|p| in_scope(&p.namespace))
        .map(unreachable_status)
        .collect();

    let all_gateways: Vec<Gateway> = gateways(classification)
        .into_iter()
        .filter(|g| in_scope(&g.namespace) || g.namespace == snapshot.control_plane_namespace)
        .collect();
    // A Service istiod renders for a Gateway is the Gateway's, shown with it.
    let services: Vec<GatewayService> = gateway_services(snapshot, &all_gateways, control_plane)
        .into_iter()
        .filter(|s| in_scope(&s.namespace) || s.namespace == snapshot.control_plane_namespace)
        .filter(|s| !is_rendered_for_a_gateway(snapshot, &s.namespace, &s.name))
        .collect();
    let gateway_statuses: Vec<GatewayStatus> = all_gateways
        .iter()
        .filter(|g| {
            !g.template_labels
                .contains_key(crate::mesh::gateway_api::MANAGED_LABEL)
        })
        .map(|g| GatewayStatus {
            namespace: g.namespace.clone(),
            name: g.name.clone(),
            revision: g.revision.clone(),
            version: g.version.clone(),
            ready_replicas: g.ready,
            replicas: g.desired,
            state: g.state,
            services: services
                .iter()
                .filter(|s| s.namespace == g.namespace && s.selected.contains(&g.name))
                .map(|s| s.name.clone())
                .collect(),
        })
        .collect();
    let gateway_services: Vec<GatewayServiceStatus> = services.iter().map(service_status).collect();

    let api_gateways = gateway_api_gateways(snapshot, control_plane);
    let (gateway_api, waypoints) = status_lists(snapshot, &api_gateways, |ns| {
        in_scope(ns) || ns == snapshot.control_plane_namespace
    });

    let version_skew = skew(&workloads_in_scope, control_plane);
    let data_plane = ambient::data_plane(snapshot, control_plane);
    let ambient_status = ambient::ambient(snapshot);

    let mut usage = usage();
    let removal = removal_steps(&usage);
    let revisions: Vec<RevisionStatus> = control_plane
        .revisions
        .iter()
        .zip(&mut usage)
        .map(|(r, u)| RevisionStatus {
            in_use: u.in_use(),
            removable: u.removable(),
            // Moved, not copied: a revision's users are every workload
            // running it, 25,000 of them on a cluster of 150,000 pods.
            used_by: std::mem::take(&mut u.used_by),
            name: r.deployment.clone(),
            revision: r.revision.clone(),
            version: r.istiod_version.clone(),
            proxy_version: r.proxy_version.clone(),
            proxy_image: r.proxy_image.clone(),
            ready_replicas: r.ready,
            replicas: r.desired,
            tags: control_plane
                .tags_of(&r.revision)
                .iter()
                .map(|t| t.to_string())
                .collect(),
            default: default_revision.as_deref() == Some(r.revision.as_str()),
            remove_command: u.remove_command.clone(),
            control_plane_objects: u.own_objects.clone(),
        })
        .collect();

    let mut summary = summarise(
        control_plane,
        &namespaces,
        &workloads_in_scope,
        &unreachable_pods,
        &gateway_services,
        &version_skew,
        default_revision.as_deref(),
    );
    summary.next_steps.extend(removal);
    crate::mesh::gateway_api::summarise(&mut summary, &gateway_api, &waypoints, control_plane);
    for (message, command) in ambient::attention(&data_plane, &ambient_status) {
        summary.attention.push(message.clone());
        summary.next_steps.push(NextStep { message, command });
    }
    summary.needs_attention = !summary.attention.is_empty();

    StatusReport {
        api_version: API_VERSION.to_string(),
        kind: "Status".to_string(),
        generated_at: now,
        control_plane_namespace: snapshot.control_plane_namespace.clone(),
        scope: match &snapshot.scope {
            Scope::All => ScopeStatus {
                all_namespaces: true,
                namespaces: Vec::new(),
            },
            Scope::Namespaces(names) => {
                let mut names = names.clone();
                names.sort();
                ScopeStatus {
                    all_namespaces: false,
                    namespaces: names,
                }
            }
        },
        revisions,
        namespaces,
        workloads,
        unreachable_pods,
        gateways: gateway_statuses,
        gateway_services,
        gateway_api_installed: snapshot.gateway_api.installed,
        gateway_api,
        waypoints,
        version_skew,
        ztunnel: data_plane.ztunnel,
        istio_cni: data_plane.istio_cni,
        ambient: ambient_status,
        summary,
    }
}

/// A Service istiod rendered for a Gateway (labelled `gateway.istio.io/managed`
/// and with the Gateway's name).
fn is_rendered_for_a_gateway(snapshot: &ClusterSnapshot, namespace: &str, name: &str) -> bool {
    use crate::mesh::gateway_api::{GATEWAY_NAME_LABEL, MANAGED_LABEL};
    snapshot.services.iter().any(|s| {
        s.namespace == namespace
            && s.name == name
            && s.labels.contains_key(MANAGED_LABEL)
            && s.labels.contains_key(GATEWAY_NAME_LABEL)
    })
}

/// The namespace's injection mode as its labels decide it: sidecar labels
/// first (the webhooks do not look at ambient mode, so a namespace labelled
/// both ways gets sidecars), then ambient.
pub fn injection_mode(namespace: &NamespaceInfo) -> String {
    let labels = &namespace.labels;
    let ambient = labels.get(DATAPLANE_MODE_LABEL).map(String::as_str) == Some("ambient");
    match labels.get(INJECTION_LABEL).map(String::as_str) {
        Some("enabled") => return "enabled".into(),
        Some(_) if ambient => return "ambient".into(),
        Some(_) => return "disabled".into(),
        None => {}
    }
    match labels.get(REV_LABEL) {
        Some(rev) => format!("rev:{rev}"),
        None if ambient => "ambient".into(),
        None => "none".into(),
    }
}

/// `a`, `a and b`, `a, b and c`.
fn and_list(items: &[String]) -> String {
    match items {
        [] => String::new(),
        [one] => one.clone(),
        [init @ .., last] => format!("{} and {last}", init.join(", ")),
    }
}

fn namespace_status(
    namespace: &NamespaceInfo,
    control_plane: &ControlPlane,
    workloads: usize,
) -> NamespaceStatus {
    let outcome = expected_revision(namespace, &Labels::new(), &Labels::new(), control_plane);
    let mut problems = Vec::new();
    let mut notes = Vec::new();
    let labels = &namespace.labels;
    let gets = match outcome.revision() {
        Some(r) => format!("pods get {r}"),
        None => "pods get no proxy".to_string(),
    };
    let conflict = conflicting_injection_labels(namespace, &control_plane.namespace);
    if !conflict.is_empty() {
        let legacy_and_rev = labels.contains_key(INJECTION_LABEL) && labels.contains_key(REV_LABEL);
        let with_mode = labels.contains_key(DATAPLANE_MODE_LABEL);
        let mut why = Vec::new();
        if legacy_and_rev {
            why.push("istio-injection wins".to_string());
        }
        if with_mode {
            why.push(
                "sidecar injection wins over ambient (ztunnel leaves pods with a sidecar alone)"
                    .to_string(),
            );
        }
        let set = if conflict.len() == 2 { "both" } else { "all" };
        problems.push(Problem {
            // relabel fixes the two sidecar labels; with the dataplane mode
            // involved a person must choose between sidecars and ambient.
            code: if with_mode {
                "sidecar-and-ambient-labels".into()
            } else {
                "both-labels".into()
            },
            message: format!(
                "{} are {set} set; {} (IST0123), so {gets}",
                and_list(&conflict),
                why.join(", and ")
            ),
        });
    } else if let (Some(legacy), Some(rev)) = (labels.get(INJECTION_LABEL), labels.get(REV_LABEL)) {
        // istio-injection=disabled (or any value but enabled) beside a
        // revision label: deliberate, istioctl analyze says nothing.
        notes.push(format!(
            "istio.io/rev={rev} has no effect while istio-injection={legacy}: new pods get no proxy"
        ));
    }
    let mut tag = None;
    match &outcome {
        InjectionOutcome::Injected { via_tag, .. } => tag = via_tag.clone(),
        InjectionOutcome::WouldFail { revision, webhook } => problems.push(Problem {
            code: "revision-not-ready".into(),
            message: format!(
                "revision {revision} has no Ready istiod: new pods fail to be created (webhook {webhook} fails closed)"
            ),
        }),
        InjectionOutcome::NotInjected {
            reason: NotInjectedReason::MissingRevision { selected },
        } if control_plane
            .tag(selected)
            .is_some_and(|t| !t.has_webhook()) =>
        {
            let tag = control_plane.tag(selected).expect("checked above");
            let revision = tag.revision.as_deref().unwrap_or("<revision>");
            problems.push(Problem {
                code: "tag-without-webhook".into(),
                message: format!(
                    "tag {selected} exists only as Service {} (revision {revision}), and no injector webhook serves it: new pods start without a proxy (`kubectl mesh-upgrade tag set {selected} --revision {revision}` adds the webhook)",
                    tag.service.as_deref().unwrap_or("?"),
                ),
            });
        }
        InjectionOutcome::NotInjected {
            reason: NotInjectedReason::MissingRevision { selected },
        } => problems.push(Problem {
            code: "missing-revision".into(),
            message: if selected == "default" && labels.contains_key(INJECTION_LABEL) {
                "istio-injection=enabled but no default revision or `default` tag serves it: new pods start without a proxy".to_string()
            } else {
                format!("{selected} names no revision or tag: new pods start without a proxy")
            },
        }),
        InjectionOutcome::NotInjected {
            reason: NotInjectedReason::InjectorUnavailable { revision },
        } => problems.push(Problem {
            code: "injector-unavailable".into(),
            message: format!("revision {revision} has no Ready istiod: new pods start without a proxy"),
        }),
        InjectionOutcome::NotInjected { .. } => {}
    }
    NamespaceStatus {
        name: namespace.name.clone(),
        injection: injection_mode(namespace),
        revision: outcome.revision().map(str::to_string),
        tag,
        workloads,
        problems,
        notes,
    }
}

fn workload_status(w: &Workload) -> WorkloadStatus {
    WorkloadStatus {
        namespace: w.namespace.clone(),
        kind: w.kind.as_str(),
        name: w.name.clone(),
        state: w.state,
        expected_revision: w.expected_revision().map(str::to_string),
        expected_version: w.expected_version.clone(),
        expected_image: w.expected_image.clone(),
        proxies: w.proxies.clone(),
        pods_without_proxy: w.pods_without_proxy,
        stale_pods: w.stale_pods,
        replicas: w.desired,
        ready_replicas: w.ready,
        risks: w.risks.clone(),
        notes: w.notes.clone(),
        gateway: w.is_gateway,
        verification: None,
        reasons: None,
    }
}

fn unreachable_status(p: &UnreachablePod) -> UnreachablePodStatus {
    let (code, owner) = match &p.reason {
        UnreachableReason::Standalone => ("standalone", None),
        UnreachableReason::Job { name } => ("job", Some(format!("Job/{name}"))),
        UnreachableReason::CronJob { name, .. } => ("cronjob", Some(format!("CronJob/{name}"))),
        UnreachableReason::BareReplicaSet { name } => {
            ("bare-replica-set", Some(format!("ReplicaSet/{name}")))
        }
        UnreachableReason::ForeignOwner { owner_kind, name } => {
            ("foreign-owner", Some(format!("{owner_kind}/{name}")))
        }
    };
    UnreachablePodStatus {
        namespace: p.namespace.clone(),
        name: p.name.clone(),
        reason_code: code.into(),
        owner,
        reason: p.reason.to_string(),
        remedy: p.remedy.clone(),
        revision: p.revision.clone(),
        version: p
            .proxy
            .as_ref()
            .and_then(|x| x.version.as_ref().map(SharedStr::to_string)),
        expected_revision: p.expected.revision().map(str::to_string),
        state: p.state,
        command: p.command.clone(),
    }
}

fn service_status(s: &GatewayService) -> GatewayServiceStatus {
    GatewayServiceStatus {
        namespace: s.namespace.clone(),
        name: s.name.clone(),
        type_: s.type_.clone(),
        selector: s.selector.clone(),
        selector_key: s.selector_key.clone(),
        selects: s.selected.clone(),
        selects_revisions: s.selected_revisions.clone(),
        ready_endpoints: s.endpoints.ready,
        not_ready_endpoints: s.endpoints.not_ready,
        endpoints_by_revision: s
            .endpoints
            .ready_by_revision
            .iter()
            .map(|(revision, pods)| ProxyRevisionCount {
                revision: revision.clone(),
                pods: *pods,
            })
            .collect(),
        candidates: s
            .candidates
            .iter()
            .map(|c| CandidateStatus {
                deployment: c.deployment.clone(),
                revision: c.revision.clone(),
                version: c.version.clone(),
                selector_value: c.selector_value.clone(),
                ready: c.is_ready(),
                problems: c.problems.clone(),
            })
            .collect(),
    }
}

fn skew(workloads: &[&Workload], control_plane: &ControlPlane) -> Vec<SkewStatus> {
    let mut out = Vec::new();
    for w in workloads {
        for group in &w.proxies {
            let (Some(revision), Some(version)) = (&group.revision, &group.version) else {
                continue;
            };
            let Some(control) = control_plane
                .revision(revision)
                .and_then(|r| r.istiod_version.clone())
            else {
                continue;
            };
            if is_skewed(version, &control) {
                out.push(SkewStatus {
                    namespace: w.namespace.clone(),
                    kind: w.kind.as_str(),
                    name: w.name.clone(),
                    proxy_version: version.clone(),
                    revision: revision.clone(),
                    control_plane_version: control,
                    pods: group.pods,
                });
            }
        }
    }
    out
}

fn plural(n: usize, word: &str) -> String {
    if n == 1 {
        format!("{n} {word}")
    } else {
        format!("{n} {word}s")
    }
}

fn join<S: AsRef<str>>(set: &BTreeSet<S>) -> String {
    set.iter()
        .map(AsRef::as_ref)
        .collect::<Vec<&str>>()
        .join(",")
}

fn summarise(
    control_plane: &ControlPlane,
    namespaces: &[NamespaceStatus],
    workloads: &[&Workload],
    unreachable: &[UnreachablePodStatus],
    services: &[GatewayServiceStatus],
    skew: &[SkewStatus],
    default_revision: Option<&str>,
) -> Summary {
    let mut counts = StateCounts::default();
    for w in workloads {
        counts.add(w.state);
    }
    let stale_pods = workloads.iter().map(|w| w.stale_pods).sum::<usize>()
        + unreachable
            .iter()
            .filter(|p| p.state == WorkloadState::Stale)
            .count();
    let mut attention = Vec::new();
    let mut steps = Vec::new();

    for r in &control_plane.revisions {
        if !r.is_ready() {
            attention.push(format!(
                "istiod {} ({}) has no Ready replica",
                r.deployment, r.revision
            ));
        }
    }

    // Stale workloads, per revision they should move to.
    let mut stale_by_target: BTreeMap<String, Vec<&Workload>> = BTreeMap::new();
    for w in workloads.iter().filter(|w| w.state == WorkloadState::Stale) {
        stale_by_target
            .entry(w.expected_revision().unwrap_or("?").to_string())
            .or_default()
            .push(w);
    }
    for (target, group) in &stale_by_target {
        let namespaces: BTreeSet<&str> = group.iter().map(|w| w.namespace.as_str()).collect();
        let versions: BTreeSet<&str> = group
            .iter()
            .flat_map(|w| w.pods.iter().filter(|p| p.stale))
            .map(|p| match &p.proxy {
                Some(proxy) => proxy.version.as_deref().unwrap_or("digest-pinned"),
                None => "no",
            })
            .collect();
        let versions: Vec<&str> = versions.into_iter().collect();
        let (run, select) = if group.len() == 1 {
            ("runs", "selects")
        } else {
            ("run", "select")
        };
        let message = format!(
            "{} in {} {run} {} proxies but {select} {target}",
            plural(group.len(), "workload"),
            plural(namespaces.len(), "namespace"),
            versions.join("/"),
        );
        attention.push(message.clone());
        let target_ready = control_plane.revision(target).is_none_or(|r| r.is_ready());
        if !target_ready {
            steps.push(NextStep {
                message: format!(
                    "{message}; istiod {target} is not Ready yet: fix it before restarting"
                ),
                command: Some(format!(
                    "kubectl -n {} rollout status deployment/{}",
                    control_plane.namespace,
                    control_plane
                        .revision(target)
                        .map_or("istiod", |r| r.deployment.as_str())
                )),
            });
            continue;
        }
        steps.push(NextStep {
            message,
            command: Some(format!(
                "kubectl mesh-upgrade restart-sidecars -n {}",
                join(&namespaces)
            )),
        });
        let on_delete: Vec<&&Workload> = group
            .iter()
            .filter(|w| !w.rolls_on_template_change())
            .collect();
        if !on_delete.is_empty() {
            let ns: BTreeSet<&str> = on_delete.iter().map(|w| w.namespace.as_str()).collect();
            steps.push(NextStep {
                message: format!(
                    "{} {} updateStrategy OnDelete ({}): pods are deleted one at a time",
                    plural(on_delete.len(), "StatefulSet"),
                    if on_delete.len() == 1 { "uses" } else { "use" },
                    on_delete
                        .iter()
                        .map(|w| w.name.as_str())
                        .collect::<Vec<_>>()
                        .join(", ")
                ),
                command: Some(format!(
                    "kubectl mesh-upgrade restart-sidecars -n {} --delete-pods",
                    join(&ns)
                )),
            });
        }
    }

    let uninjected: Vec<&&Workload> = workloads
        .iter()
        .filter(|w| w.state == WorkloadState::NotInjected && w.expected.revision().is_some())
        .collect();
    if !uninjected.is_empty() {
        let ns: BTreeSet<&str> = uninjected.iter().map(|w| w.namespace.as_str()).collect();
        let message = format!(
            "{} in {} run no proxy but should get one",
            plural(uninjected.len(), "workload"),
            plural(ns.len(), "namespace")
        );
        attention.push(message.clone());
        steps.push(NextStep {
            message,
            command: Some(format!(
                "kubectl mesh-upgrade restart-sidecars -n {} --include-uninjected",
                join(&ns)
            )),
        });
    }
    let no_injector: Vec<&&Workload> = workloads
        .iter()
        .filter(|w| w.state == WorkloadState::NoInjector)
        .collect();
    if !no_injector.is_empty() {
        attention.push(format!(
            "{} run proxies that no injector would give a new pod ({}): a restart would remove them",
            plural(no_injector.len(), "workload"),
            no_injector
                .iter()
                .map(|w| format!("{}/{}", w.namespace, w.name))
                .collect::<Vec<_>>()
                .join(", ")
        ));
    }

    let known: Vec<String> = control_plane
        .revisions
        .iter()
        .map(|r| r.revision.clone())
        .chain(control_plane.tags.iter().map(|t| t.name.clone()))
        .collect();
    for ns in namespaces {
        for problem in &ns.problems {
            attention.push(format!("namespace {}: {}", ns.name, problem.message));
            let command = match problem.code.as_str() {
                "both-labels" => {
                    let target = ns.revision.clone().unwrap_or_else(|| "<revision>".into());
                    Some(format!(
                        "kubectl mesh-upgrade relabel -n {} --to {target}",
                        ns.name
                    ))
                }
                "missing-revision" => Some(format!(
                    "kubectl mesh-upgrade relabel -n {} --to <revision>",
                    ns.name
                )),
                _ => None,
            };
            let message = if problem.code == "missing-revision" {
                format!(
                    "namespace {}: {}; revisions and tags that exist: {}",
                    ns.name,
                    problem.message,
                    known.join(", ")
                )
            } else {
                format!("namespace {}: {}", ns.name, problem.message)
            };
            steps.push(NextStep { message, command });
        }
    }

    // The canary's next move: namespaces on an older revision than the newest.
    if let Some(newest) = newest_revision(control_plane) {
        // Tags first: moving one moves every namespace on it at once.
        for tag in control_plane
            .tags
            .iter()
            .filter(|_| stale_by_target.is_empty())
        {
            if let Some(r) = &tag.revision {
                if r != newest
                    && older(control_plane, r, newest)
                    && Some(tag.name.as_str()) != default_revision
                {
                    steps.push(NextStep {
                        message: format!("revision tag {} still points at {r}", tag.name),
                        command: Some(format!(
                            "kubectl mesh-upgrade tag set {} --revision {newest} --restart",
                            tag.name
                        )),
                    });
                }
            }
        }
        let behind: BTreeSet<String> = namespaces
            .iter()
            .filter(|n| n.problems.is_empty() && n.tag.as_deref().is_none_or(|t| t == "default"))
            .filter(|n| {
                n.revision
                    .as_deref()
                    .is_some_and(|r| r != newest && older(control_plane, r, newest))
            })
            .map(|n| n.name.clone())
            .collect();
        if !behind.is_empty() && stale_by_target.is_empty() {
            steps.push(NextStep {
                message: if behind.len() == 1 {
                    format!(
                        "namespace {} still selects an older revision than {newest}; when the canary looks good, move it",
                        join(&behind)
                    )
                } else {
                    format!(
                        "{} still select an older revision than {newest}; when the canary looks good, move them",
                        plural(behind.len(), "namespace")
                    )
                },
                command: Some(format!("kubectl mesh-upgrade relabel -n {} --to {newest}", join(&behind))),
            });
        }
    }

    for s in services {
        if s.ready_endpoints == 0 {
            attention.push(format!(
                "gateway Service {}/{} has no Ready endpoints",
                s.namespace, s.name
            ));
        }
        let current: BTreeSet<&str> = s.selects_revisions.iter().map(String::as_str).collect();
        for c in s.candidates.iter().filter(|c| c.ready) {
            let (Some(key), Some(candidate_revision)) = (&s.selector_key, &c.revision) else {
                continue;
            };
            let newer = current
                .iter()
                .all(|r| older(control_plane, r, candidate_revision));
            if !newer {
                continue;
            }
            steps.push(NextStep {
                message: format!(
                    "gateway Service {}/{} selects {}; the {} gateway ({}) is ready to take over",
                    s.namespace,
                    s.name,
                    if current.is_empty() {
                        "no gateway".to_string()
                    } else {
                        current.iter().copied().collect::<Vec<_>>().join(",")
                    },
                    candidate_revision,
                    c.deployment
                ),
                command: Some(format!(
                    "kubectl mesh-upgrade gateway-switch -n {} --service {} --to {}{}",
                    s.namespace,
                    s.name,
                    c.selector_value,
                    if key == "version" {
                        String::new()
                    } else {
                        format!(" --selector-key {key}")
                    }
                )),
            });
        }
    }

    // A CronJob's run needs nobody: its next run gets the new proxy.
    let unreachable_stale: Vec<&UnreachablePodStatus> = unreachable
        .iter()
        .filter(|p| p.state == WorkloadState::Stale && p.reason_code != "cronjob")
        .collect();
    if !unreachable_stale.is_empty() {
        let message = format!(
            "{} that no restart can reach {} an old proxy ({})",
            plural(unreachable_stale.len(), "pod"),
            if unreachable_stale.len() == 1 {
                "runs"
            } else {
                "run"
            },
            unreachable_stale
                .iter()
                .map(|p| format!("{}/{}", p.namespace, p.name))
                .collect::<Vec<_>>()
                .join(", ")
        );
        attention.push(message.clone());
        steps.push(NextStep {
            message: format!("{message}: see the unreachable pods for the command each needs"),
            command: None,
        });
    }
    if !skew.is_empty() {
        attention.push(format!(
            "{} run proxies more than one minor version behind their istiod",
            plural(
                skew.iter()
                    .map(|s| (&s.namespace, &s.name))
                    .collect::<BTreeSet<_>>()
                    .len(),
                "workload"
            )
        ));
    }

    Summary {
        workloads: counts,
        stale_pods,
        unreachable_pods: unreachable.len(),
        needs_attention: !attention.is_empty(),
        attention,
        next_steps: steps,
    }
}

/// A revision nothing uses (the whole cluster read): the command that removes it.
fn removal_steps(usage: &[RevisionUsage]) -> Vec<NextStep> {
    usage
        .iter()
        .filter(|u| u.removable())
        .map(|u| NextStep {
            message: format!(
                "revision {} is no longer used by anything (no namespace, tag, workload, gateway or pod): it can be removed",
                u.revision
            ),
            command: Some(u.remove_command.clone()),
        })
        .collect()
}

/// The revision with the highest istiod version.
pub(crate) fn newest_revision(control_plane: &ControlPlane) -> Option<&str> {
    if control_plane.revisions.len() < 2 {
        return None;
    }
    control_plane
        .revisions
        .iter()
        .filter_map(|r| {
            Some((
                Version::parse(r.istiod_version.as_deref()?)?,
                r.revision.as_str(),
            ))
        })
        .max()
        .map(|(_, r)| r)
}

/// Whether revision `a` runs an older istiod than revision `b`.
pub(crate) fn older(control_plane: &ControlPlane, a: &str, b: &str) -> bool {
    let version = |r: &str| {
        control_plane
            .revision(r)
            .and_then(|r| r.istiod_version.as_deref())
            .and_then(Version::parse)
    };
    match (version(a), version(b)) {
        (Some(a), Some(b)) => a < b,
        _ => false,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::mesh::fixtures::{
        ClusterFixture, ProxySpec, WorkloadFixture, canary_fixture, fixed_now,
    };

    #[test]
    fn the_document_names_its_api_version_and_kind() {
        let report = build_status(&canary_fixture().build(), fixed_now());
        let json = serde_json::to_value(&report).expect("serialises");
        assert_eq!(json["apiVersion"], "mesh-upgrade/v1");
        assert_eq!(json["kind"], "Status");
        for key in [
            "revisions",
            "namespaces",
            "workloads",
            "gateways",
            "summary",
        ] {
            assert!(json.get(key).is_some(), "missing {key}");
        }
        let workload = &json["workloads"][0];
        for key in [
            "namespace",
            "kind",
            "name",
            "state",
            "expectedRevision",
            "proxies",
            "risks",
        ] {
            assert!(workload.get(key).is_some(), "workload entry lacks {key}");
        }
        assert_eq!(json["generatedAt"], "2024-06-01T12:00:00Z");
    }

    #[test]
    fn revisions_list_versions_tags_and_the_default() {
        let report = build_status(&canary_fixture().build(), fixed_now());
        let old = &report.revisions[0];
        assert_eq!(
            (old.revision.as_str(), old.version.as_deref()),
            ("1-21-2", Some("1.21.2"))
        );
        assert_eq!(old.tags, vec!["default", "prod-stable"]);
        assert!(old.default);
        let new = &report.revisions[1];
        assert_eq!(new.tags, vec!["prod-canary"]);
        assert!(!new.default);
    }

    #[test]
    fn namespaces_show_mode_revision_and_label_problems() {
        let report = build_status(&canary_fixture().build(), fixed_now());
        let ns = |name: &str| {
            report
                .namespaces
                .iter()
                .find(|n| n.name == name)
                .expect("namespace")
        };
        assert_eq!(ns("shop").injection, "enabled");
        assert_eq!(ns("shop").revision.as_deref(), Some("1-21-2"));
        assert_eq!(ns("cart").injection, "rev:prod-stable");
        assert_eq!(ns("cart").tag.as_deref(), Some("prod-stable"));
        assert_eq!(ns("legacy").problems[0].code, "both-labels");
        assert_eq!(ns("legacy").revision.as_deref(), Some("1-21-2"));
        assert_eq!(ns("typo").problems[0].code, "missing-revision");
        assert_eq!(ns("istio-gateways").injection, "none");
        assert!(ns("pay").problems.is_empty());
    }

    #[test]
    fn sidecar_and_ambient_labels_together_are_a_conflict_and_sidecars_win() {
        let report = build_status(
            &canary_fixture()
                .namespace(
                    "mixed",
                    &[
                        ("istio-injection", "enabled"),
                        ("istio.io/dataplane-mode", "ambient"),
                    ],
                )
                .namespace(
                    "mixed-rev",
                    &[
                        ("istio.io/rev", "1-22-3"),
                        ("istio.io/dataplane-mode", "ambient"),
                    ],
                )
                .build(),
            fixed_now(),
        );
        let ns = |name: &str| report.namespaces.iter().find(|n| n.name == name).unwrap();
        let mixed = ns("mixed");
        assert_eq!(mixed.injection, "enabled");
        assert_eq!(mixed.revision.as_deref(), Some("1-21-2"));
        assert_eq!(mixed.problems.len(), 1, "{:?}", mixed.problems);
        assert_eq!(mixed.problems[0].code, "sidecar-and-ambient-labels");
        assert_eq!(
            mixed.problems[0].message,
            "istio-injection=enabled and istio.io/dataplane-mode=ambient are both set; sidecar injection wins over ambient (ztunnel leaves pods with a sidecar alone) (IST0123), so pods get 1-21-2"
        );
        assert_eq!(ns("mixed-rev").injection, "rev:1-22-3");
        assert_eq!(ns("mixed-rev").revision.as_deref(), Some("1-22-3"));
        assert_eq!(
            ns("mixed-rev").problems[0].code,
            "sidecar-and-ambient-labels"
        );
        assert!(report.needs_attention());
    }

    #[test]
    fn a_namespace_on_a_tag_known_only_from_its_service_gets_no_proxy_and_says_why() {
        let report = build_status(
            &canary_fixture()
                .tag_service("prod-next", "1-22-3")
                .namespace("next", &[("istio.io/rev", "prod-next")])
                .build(),
            fixed_now(),
        );
        let next = report.namespaces.iter().find(|n| n.name == "next").unwrap();
        assert_eq!(next.revision, None);
        assert_eq!(next.problems[0].code, "tag-without-webhook");
        assert_eq!(
            next.problems[0].message,
            "tag prod-next exists only as Service istiod-revision-tag-prod-next (revision 1-22-3), and no injector webhook serves it: new pods start without a proxy (`kubectl mesh-upgrade tag set prod-next --revision 1-22-3` adds the webhook)"
        );
        let canary = report
            .revisions
            .iter()
            .find(|r| r.revision == "1-22-3")
            .unwrap();
        assert!(
            canary.tags.contains(&"prod-next".to_string()),
            "{:?}",
            canary.tags
        );
    }

    #[test]
    fn injection_disabled_beside_a_revision_label_is_a_note_not_a_problem() {
        let report = build_status(
            &canary_fixture()
                .namespace(
                    "parked",
                    &[("istio-injection", "disabled"), ("istio.io/rev", "1-22-3")],
                )
                .namespace(
                    "parked-ambient",
                    &[
                        ("istio-injection", "disabled"),
                        ("istio.io/dataplane-mode", "ambient"),
                    ],
                )
                .build(),
            fixed_now(),
        );
        let ns = |name: &str| report.namespaces.iter().find(|n| n.name == name).unwrap();
        let parked = ns("parked");
        assert_eq!(parked.injection, "disabled");
        assert_eq!(parked.revision, None);
        assert!(parked.problems.is_empty(), "{:?}", parked.problems);
        assert_eq!(
            parked.notes,
            [
                "istio.io/rev=1-22-3 has no effect while istio-injection=disabled: new pods get no proxy"
            ]
        );
        assert_eq!(ns("parked-ambient").injection, "ambient");
        assert!(ns("parked-ambient").problems.is_empty());
    }

    #[test]
    fn an_unready_revision_is_a_namespace_problem_and_needs_attention() {
        let report = build_status(&canary_fixture().unready("1-22-3").build(), fixed_now());
        let pay = report.namespaces.iter().find(|n| n.name == "pay").unwrap();
        assert_eq!(pay.problems[0].code, "revision-not-ready");
        assert!(report.needs_attention());
    }

    #[test]
    fn summary_counts_states_and_suggests_the_restart_per_target_revision() {
        let report = build_status(&canary_fixture().build(), fixed_now());
        let s = &report.summary;
        assert_eq!(s.workloads.stale, 2, "payments and ledger");
        assert_eq!(s.workloads.not_injected, 1, "typo/orders");
        assert!(report.needs_attention());
        let commands: Vec<&str> = s
            .next_steps
            .iter()
            .filter_map(|n| n.command.as_deref())
            .collect();
        assert!(
            commands.contains(&"kubectl mesh-upgrade restart-sidecars -n pay"),
            "{commands:?}"
        );
        assert!(
            commands.contains(&"kubectl mesh-upgrade restart-sidecars -n pay --delete-pods"),
            "{commands:?}"
        );
        assert!(
            commands.contains(&"kubectl mesh-upgrade relabel -n legacy --to 1-21-2"),
            "{commands:?}"
        );
        assert!(
            commands.contains(&"kubectl mesh-upgrade gateway-switch -n istio-gateways --service istio-ingressgateway --to 1-22-3"),
            "{commands:?}"
        );
        let stale = &s.next_steps[0].message;
        assert_eq!(
            stale,
            "2 workloads in 1 namespace run 1.21.2 proxies but select 1-22-3"
        );
    }

    #[test]
    fn a_fully_upgraded_cluster_needs_no_attention() {
        let snapshot = ClusterFixture::new()
            .revision("1-22-3", "1.22.3")
            .tag("default", "1-22-3")
            .namespace("shop", &[("istio-injection", "enabled")])
            .workload(
                WorkloadFixture::deployment("shop", "frontend")
                    .pods(2, ProxySpec::istio("1-22-3", "1.22.3")),
            )
            .pdb("shop", "frontend", 1)
            .build();
        let report = build_status(&snapshot, fixed_now());
        assert!(!report.needs_attention(), "{:?}", report.summary.attention);
        assert!(
            report.summary.next_steps.is_empty(),
            "{:?}",
            report.summary.next_steps
        );
    }

    #[test]
    fn one_stale_workload_and_one_namespace_behind_read_in_the_singular() {
        let snapshot = ClusterFixture::new()
            .revision("1-21-2", "1.21.2")
            .revision("1-22-3", "1.22.3")
            .tag("default", "1-21-2")
            .namespace("shop", &[("istio.io/rev", "1-22-3")])
            .namespace("cart", &[("istio.io/rev", "1-21-2")])
            .workload(
                WorkloadFixture::deployment("shop", "frontend")
                    .pods(2, ProxySpec::istio("1-21-2", "1.21.2")),
            )
            .pdb("shop", "frontend", 1)
            .build();
        let report = build_status(&snapshot, fixed_now());
        assert_eq!(
            report.summary.next_steps[0].message,
            "1 workload in 1 namespace runs 1.21.2 proxies but selects 1-22-3"
        );

        let snapshot = ClusterFixture::new()
            .revision("1-21-2", "1.21.2")
            .revision("1-22-3", "1.22.3")
            .tag("default", "1-21-2")
            .namespace("shop", &[("istio.io/rev", "1-22-3")])
            .namespace("cart", &[("istio.io/rev", "1-21-2")])
            .build();
        let report = build_status(&snapshot, fixed_now());
        let messages: Vec<&str> = report
            .summary
            .next_steps
            .iter()
            .map(|n| n.message.as_str())
            .collect();
        assert!(
            messages.contains(
                &"namespace cart still selects an older revision than 1-22-3; when the canary looks good, move it"
            ),
            "{messages:?}"
        );
    }

    #[test]
    fn the_scope_limits_namespaces_and_workloads_but_keeps_control_plane_gateways() {
        let report = build_status(&canary_fixture().scope(&["pay"]).build(), fixed_now());
        assert_eq!(
            report
                .namespaces
                .iter()
                .map(|n| n.name.as_str())
                .collect::<Vec<_>>(),
            vec!["pay"]
        );
        assert!(report.workloads.iter().all(|w| w.namespace == "pay"));
        assert!(
            report.gateways.is_empty(),
            "gateways outside the scope and the control plane are not shown"
        );
        assert_eq!(report.unreachable_pods.len(), 1);
    }

    #[test]
    fn version_skew_lists_proxies_two_minors_behind() {
        let snapshot = ClusterFixture::new()
            .default_revision_install("default", "1.22.3")
            .namespace("shop", &[("istio-injection", "enabled")])
            .workload(
                WorkloadFixture::deployment("shop", "old")
                    .pods(2, ProxySpec::istio("default", "1.20.8")),
            )
            .build();
        let report = build_status(&snapshot, fixed_now());
        assert_eq!(report.version_skew.len(), 1);
        assert_eq!(report.version_skew[0].proxy_version, "1.20.8");
        assert!(
            report
                .summary
                .attention
                .iter()
                .any(|a| a.contains("minor version"))
        );
    }

    #[test]
    fn gateways_report_the_services_in_front_of_them() {
        let report = build_status(&canary_fixture().build(), fixed_now());
        let blue = report
            .gateways
            .iter()
            .find(|g| g.name.ends_with("1-21-2"))
            .unwrap();
        assert_eq!(blue.services, vec!["istio-ingressgateway"]);
        let svc = &report.gateway_services[0];
        assert_eq!(svc.selects_revisions, vec!["1-21-2"]);
        assert_eq!(svc.candidates[0].revision.as_deref(), Some("1-22-3"));
        assert!(svc.candidates[0].ready, "{:?}", svc.candidates[0].problems);
    }

    /// `build_status` on the `canary` scenario exactly as mesh-sim builds it
    /// (its injector, controllers and EndpointSlices), not on hand-written fixtures.
    mod sim_canary {
        use super::*;
        use crate::mesh::fixtures::sim_canary_snapshot;

        fn report() -> StatusReport {
            build_status(&sim_canary_snapshot(Scope::All), fixed_now())
        }

        fn state_of(report: &StatusReport, namespace: &str, name: &str) -> WorkloadState {
            report
                .workloads
                .iter()
                .find(|w| w.namespace == namespace && w.name == name)
                .unwrap_or_else(|| panic!("no workload {namespace}/{name}"))
                .state
        }

        #[test]
        fn both_revisions_their_tags_and_the_default_are_found() {
            let report = report();
            let summary: Vec<String> = report
                .revisions
                .iter()
                .map(|r| {
                    format!(
                        "{} {} tags={} default={} ready={}",
                        r.revision,
                        r.version.as_deref().unwrap_or("?"),
                        r.tags.join(","),
                        r.default,
                        r.ready_replicas
                    )
                })
                .collect();
            assert_eq!(
                summary,
                vec![
                    "1-21-2 1.21.2 tags=default,prod-stable default=true ready=1",
                    "1-22-3 1.22.3 tags=prod-canary default=false ready=1",
                ]
            );
        }

        #[test]
        fn each_namespace_resolves_as_the_scenario_describes() {
            let report = report();
            let ns = |name: &str| {
                let n = report
                    .namespaces
                    .iter()
                    .find(|n| n.name == name)
                    .expect("namespace");
                (
                    n.injection.clone(),
                    n.revision.clone(),
                    n.problems
                        .iter()
                        .map(|p| p.code.clone())
                        .collect::<Vec<_>>(),
                )
            };
            let some = |s: &str| Some(s.to_string());
            assert_eq!(ns("shop"), ("enabled".into(), some("1-21-2"), vec![]));
            assert_eq!(ns("pay"), ("rev:1-22-3".into(), some("1-22-3"), vec![]));
            assert_eq!(
                ns("cart"),
                ("rev:prod-stable".into(), some("1-21-2"), vec![])
            );
            assert_eq!(ns("search"), ("rev:1-22-3".into(), some("1-22-3"), vec![]));
            assert_eq!(
                ns("legacy"),
                (
                    "enabled".into(),
                    some("1-21-2"),
                    vec!["both-labels".to_string()]
                )
            );
            assert_eq!(
                ns("batch"),
                ("rev:prod-canary".into(), some("1-22-3"), vec![])
            );
            assert_eq!(ns("ambient-apps"), ("ambient".into(), None, vec![]));
            assert_eq!(ns("no-mesh"), ("none".into(), None, vec![]));
            assert_eq!(
                ns("typo"),
                (
                    "rev:1-22-4".into(),
                    None,
                    vec!["missing-revision".to_string()]
                )
            );
        }

        #[test]
        fn each_workload_gets_the_state_the_scenario_describes() {
            let report = report();
            use WorkloadState::*;
            for (namespace, name, state) in [
                ("shop", "frontend", UpToDate),
                ("shop", "recommendations", UpToDate),
                ("shop", "metrics-exporter", OptedOut),
                ("shop", "log-agent", UpToDate),
                ("pay", "payments", Stale),
                ("pay", "ledger", Stale),
                ("cart", "cart", UpToDate),
                ("cart", "pricing", CustomImage),
                ("search", "search-api", UpToDate),
                ("search", "indexer", UpToDate),
                ("legacy", "inventory", UpToDate),
                ("ambient-apps", "reviews", Ambient),
                ("no-mesh", "static-site", NoMesh),
                ("istio-gateways", "istio-ingressgateway-1-21-2", UpToDate),
                ("istio-gateways", "istio-ingressgateway-1-22-3", UpToDate),
            ] {
                assert_eq!(
                    state_of(&report, namespace, name),
                    state,
                    "{namespace}/{name}"
                );
            }
            for w in report.workloads.iter().filter(|w| w.namespace == "typo") {
                assert_eq!(w.state, NotInjected, "typo/{}", w.name);
            }
            let risks = |namespace: &str, name: &str| {
                report
                    .workloads
                    .iter()
                    .find(|w| w.namespace == namespace && w.name == name)
                    .map(|w| w.risks.clone())
                    .unwrap_or_default()
            };
            assert!(risks("shop", "recommendations").contains(&Risk::SingleReplica));
            assert!(risks("shop", "recommendations").contains(&Risk::NoPdb));
            assert!(risks("pay", "ledger").contains(&Risk::OnDelete));
            assert!(
                risks("shop", "frontend").is_empty(),
                "{:?}",
                risks("shop", "frontend")
            );
        }

        #[test]
        fn the_standalone_pod_is_reported_with_its_reason() {
            let report = report();
            let debug = report
                .unreachable_pods
                .iter()
                .find(|p| p.name == "debug-shell")
                .expect("debug-shell is listed");
            assert_eq!(debug.reason_code, "standalone");
            assert_eq!(debug.expected_revision.as_deref(), Some("1-22-3"));
        }

        #[test]
        fn the_load_balancer_selects_1_21_2_and_the_canary_gateway_can_take_over() {
            let report = report();
            let svc = report
                .gateway_services
                .iter()
                .find(|s| s.name == "istio-ingressgateway")
                .expect("the LoadBalancer Service");
            assert_eq!(svc.selects_revisions, vec!["1-21-2"]);
            assert_eq!(svc.ready_endpoints, 2);
            assert_eq!(
                svc.endpoints_by_revision,
                vec![ProxyRevisionCount {
                    revision: Some("1-21-2".into()),
                    pods: 2
                }]
            );
            let candidate = &svc.candidates[0];
            assert_eq!(candidate.selector_value, "1-22-3");
            assert!(candidate.ready, "{:?}", candidate.problems);
        }

        #[test]
        fn the_summary_points_at_the_stale_namespace() {
            let report = report();
            assert!(report.needs_attention());
            let commands: Vec<&str> = report
                .summary
                .next_steps
                .iter()
                .filter_map(|s| s.command.as_deref())
                .collect();
            assert!(
                commands.contains(&"kubectl mesh-upgrade restart-sidecars -n pay"),
                "{commands:?}"
            );
        }

        #[test]
        fn the_scenario_renders_within_a_terminal_of_a_hundred_and_twenty_columns() {
            let text = crate::render::status::status_table(
                &report(),
                false,
                &crate::render::Layout::at(120),
            );
            for line in text.lines() {
                assert!(line.chars().count() <= 120, "{line}\nin:\n{text}");
            }
            if std::env::var_os("SHOW_STATUS").is_some() {
                eprintln!("{text}");
                eprintln!(
                    "{}",
                    serde_json::to_string_pretty(&report()).unwrap_or_default()
                );
            }
        }
    }
}

/// How long `build_status` takes on a generated 50,000-pod cluster. Not a
/// timed assertion (machines differ): run it by hand with
/// `cargo test --release --lib large_cluster -- --ignored --nocapture`.
#[cfg(test)]
mod large_cluster {
    use super::*;
    use crate::mesh::fixtures::{fixed_now, snapshot_from_world};

    #[test]
    #[ignore = "slow: generates 50,000 pods"]
    fn build_status_on_fifty_thousand_pods() {
        let mut world = mesh_sim::world::World::new(mesh_sim::world::SimConfig::default());
        let options = mesh_sim::generate::GenerateOptions::for_pods(50_000);
        mesh_sim::generate::generate(&mut world, &options).expect("generates");
        let snapshot = snapshot_from_world(&world, Scope::All);
        drop(world);
        let started = std::time::Instant::now();
        let report = build_status(&snapshot, fixed_now());
        let elapsed = started.elapsed();
        let text = crate::render::status::status_table(
            &report,
            false,
            &crate::render::Layout::unlimited(),
        );
        let json = serde_json::to_vec(&report).expect("serialises");
        eprintln!(
            "pods={} workloads={} build_status={elapsed:?} render={:?} json={} bytes table={} bytes",
            snapshot.pods.len(),
            report.workloads.len(),
            started.elapsed() - elapsed,
            json.len(),
            text.len()
        );
        assert!(snapshot.pods.len() >= 45_000);
    }
}
