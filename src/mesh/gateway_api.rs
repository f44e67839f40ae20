//! Gateway API gateways and waypoints: which istiod revision serves each
//! Istio-class `Gateway`, what istiod rendered for it, and whether its pods
//! run the proxy that revision renders.
//!
//! ```text
//! Gateway ─► class ─► Istio's controller? (GatewayClass controllerName, else builtin name)
//!         ─► revision: its istio.io/rev, else its namespace's, else the default tag / revision
//!         ─► expected: that revision's proxy image, rendered with the Gateway's annotations
//!         ─► rendered: Deployment <name>-<class> (<name> for waypoints) labelled with the
//!            Gateway's name: template annotation istio.io/rev, istio-proxy image, rollout
//!         ─► pods (labelled with the Gateway's name): the proxy versions they run
//!         ─► Programmed condition ─► state
//! waypoints ◄─ istio.io/use-waypoint[-namespace] on namespaces and Services
//! ```
//!
//! The rules are istiod's (istio/istio): the revision is decided as each
//! istiod decides whether a Gateway is its own (`pkg/revisions/tag_watcher.go`,
//! `IsMine`), the names and labels of what it renders come from
//! `pilot/pkg/config/kube/gatewaycommon/deploymentcontroller.go` and
//! `manifests/charts/istio-control/istio-discovery/files/kube-gateway.yaml` /
//! `waypoint.yaml`, and waypoint use from
//! `pilot/pkg/serviceregistry/ambient/waypoints.go` (`GetUseWaypoint`). The
//! README's "Rules from Istio's source" quotes them.
//!
//! Pure: a snapshot and the control plane in, plain values out.

use std::collections::{BTreeMap, BTreeSet};

use serde::Serialize;

use crate::mesh::control_plane::{ControlPlane, REV_LABEL};
use crate::mesh::proxy::{image_version, same_version};
use crate::snapshot::gateway_api::{ConditionInfo, GatewayInfo};
use crate::snapshot::{
    ClusterSnapshot, DeploymentInfo, LabelLookup, Labels, NamespaceInfo, PROXY_IMAGE_ANNOTATION,
    PodInfo, ServiceInfo, TEMPLATE_REVISION_ANNOTATION,
};

/// The label istiod puts on everything it renders for a Gateway, and the
/// selector of the Deployment and Service.
pub const GATEWAY_NAME_LABEL: &str = "gateway.networking.k8s.io/gateway-name";
/// The label marking an object istiod manages for a Gateway.
pub const MANAGED_LABEL: &str = "gateway.istio.io/managed";
/// istiod's field manager for what it applies (`PILOT_GATEWAY_API_CONTROLLER_NAME`).
pub const GATEWAY_FIELD_MANAGER: &str = "istio.io/gateway-controller";
/// `istio.io/use-waypoint` on a namespace, Service or pod.
pub const USE_WAYPOINT_LABEL: &str = "istio.io/use-waypoint";
/// `istio.io/use-waypoint-namespace`: where the named waypoint lives.
pub const USE_WAYPOINT_NAMESPACE_LABEL: &str = "istio.io/use-waypoint-namespace";
/// `istio.io/waypoint-for` on a waypoint (or its class): `service`,
/// `workload`, `all` or `none`.
pub const WAYPOINT_FOR_LABEL: &str = "istio.io/waypoint-for";
/// The annotation that renames what istiod renders.
const NAME_OVERRIDE_ANNOTATION: &str = "gateway.istio.io/name-override";

/// What istiod provisions for a class (`ClassInfo` in
/// `pilot/pkg/config/kube/gatewaycommon/classinfo.go`).
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum GatewayKind {
    /// `istio.io/gateway-controller` (class `istio`): `kube-gateway.yaml`.
    Ingress,
    /// `istio.io/mesh-controller` (class `istio-waypoint`): `waypoint.yaml`.
    Waypoint,
    /// `istio.io/eastwest-controller` (class `istio-east-west`): `waypoint.yaml`.
    EastWest,
}

impl GatewayKind {
    /// Istio's kind of gateway for a controller name, `None` for others'.
    pub fn of_controller(controller: &str) -> Option<Self> {
        match controller {
            "istio.io/gateway-controller" => Some(GatewayKind::Ingress),
            "istio.io/mesh-controller" => Some(GatewayKind::Waypoint),
            "istio.io/eastwest-controller" => Some(GatewayKind::EastWest),
            _ => None,
        }
    }

    /// The controller of a builtin class name (`BuiltinGatewayClasses`).
    fn builtin_controller(class: &str) -> Option<&'static str> {
        match class {
            "istio" => Some("istio.io/gateway-controller"),
            "istio-waypoint" => Some("istio.io/mesh-controller"),
            "istio-east-west" => Some("istio.io/eastwest-controller"),
            _ => None,
        }
    }

    /// Whether rendered names get `-<class>` (`DisableNameSuffix` is set for
    /// waypoints and east-west gateways).
    fn name_suffix(self) -> bool {
        self == GatewayKind::Ingress
    }
}

/// The controller a Gateway's class names: the GatewayClass object's
/// `controllerName` when it exists, else the builtin class's.
pub fn gateway_kind(snapshot: &ClusterSnapshot, class: &str) -> Option<GatewayKind> {
    match snapshot
        .gateway_api
        .classes
        .iter()
        .find(|c| c.name == class)
    {
        Some(c) => GatewayKind::of_controller(&c.controller),
        None => GatewayKind::builtin_controller(class).and_then(GatewayKind::of_controller),
    }
}

/// Where a Gateway's revision came from.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum RevisionSource {
    /// The Gateway's own `istio.io/rev` label.
    Gateway,
    /// Its namespace's `istio.io/rev` label.
    Namespace,
    /// Neither: the `default` tag, else the default revision.
    Default,
}

/// The revision that serves a Gateway, and how it was chosen.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct RevisionChoice {
    pub source: RevisionSource,
    /// The label value it went through (a revision or a tag; `None` for the default).
    pub label: Option<String>,
    /// The revision behind it (`None`: no istiod serves it).
    pub revision: Option<String>,
}

/// The istiod that reconciles a Gateway, as istiod decides (`IsMine` in
/// `pkg/revisions/tag_watcher.go`): the Gateway's `istio.io/rev`, else its
/// namespace's (only `istio.io/rev`: `istio-injection` plays no part), names
/// a revision or a tag of one; with neither, the `default` tag's revision,
/// else the default revision. (istiod learns the default revision from the
/// `istiod-default-validator` webhook configuration, which the plugin does not
/// read; the revision serving `istio-injection=enabled`, which the charts make
/// the same one, stands in for it.)
pub fn serving_revision(
    gateway_labels: &Labels,
    namespace: Option<&NamespaceInfo>,
    control_plane: &ControlPlane,
) -> RevisionChoice {
    let (source, label) = match gateway_labels.get(REV_LABEL) {
        Some(value) => (RevisionSource::Gateway, Some(value.clone())),
        None => match namespace.and_then(|n| n.labels.get(REV_LABEL)) {
            Some(value) => (RevisionSource::Namespace, Some(value.clone())),
            None => (RevisionSource::Default, None),
        },
    };
    let revision = match &label {
        Some(value) => control_plane.resolve(value).map(str::to_string),
        None => default_revision(control_plane),
    };
    RevisionChoice {
        source,
        label,
        revision,
    }
}

/// The revision an unlabelled Gateway gets: the `default` tag's, else a
/// revision named `default` (an unrevisioned install), else the one serving
/// `istio-injection=enabled`.
pub fn default_revision(control_plane: &ControlPlane) -> Option<String> {
    if let Some(tag) = control_plane.tag("default") {
        return tag.revision.clone();
    }
    if control_plane.revision("default").is_some() {
        return Some("default".to_string());
    }
    control_plane.default_revision()
}

/// The Deployment istiod rendered for a Gateway, as read.
#[derive(Clone, Debug, PartialEq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct RenderedDeployment {
    pub name: String,
    /// The revision its template was rendered by (the template's `istio.io/rev`).
    pub rendered_by: Option<String>,
    /// The template's `istio-proxy` image.
    pub image: Option<String>,
    pub replicas: i32,
    pub ready_replicas: i32,
    /// No rollout in progress (the `kubectl rollout status` test).
    pub rolled_out: bool,
    /// What the rollout waits for, or why it is stuck.
    pub rollout: Option<String>,
}

impl RenderedDeployment {
    fn of(d: &DeploymentInfo) -> Self {
        let rollout = rollout_of(d);
        RenderedDeployment {
            name: d.name.to_string(),
            rendered_by: d
                .template
                .annotations
                .get(TEMPLATE_REVISION_ANNOTATION)
                .cloned(),
            image: d
                .template
                .containers
                .iter()
                .find(|c| c.name == crate::snapshot::ISTIO_PROXY)
                .map(|c| c.image.clone()),
            replicas: d.desired,
            ready_replicas: d.ready,
            rolled_out: rollout.is_none(),
            rollout,
        }
    }
}

/// `None` when the Deployment is rolled out, else what it waits for (the
/// test `kubectl rollout status` makes, on the listed counts).
fn rollout_of(d: &DeploymentInfo) -> Option<String> {
    if d.progress_deadline_exceeded {
        return Some("stuck: ProgressDeadlineExceeded".to_string());
    }
    if d.observed_generation < d.generation {
        return Some("waiting for the controller to see the change".to_string());
    }
    if d.updated < d.desired {
        return Some(format!("{} of {} replicas updated", d.updated, d.desired));
    }
    if d.replicas > d.updated {
        return Some(format!(
            "{} old replicas pending termination",
            d.replicas - d.updated
        ));
    }
    if d.available < d.desired {
        return Some(format!(
            "{} of {} updated replicas available",
            d.available, d.desired
        ));
    }
    None
}

/// The Service istiod rendered for a Gateway, as read.
#[derive(Clone, Debug, PartialEq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct RenderedService {
    pub name: String,
    #[serde(rename = "type")]
    pub type_: String,
}

/// Pods running one proxy version.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct ProxyVersionCount {
    /// The version from the image tag (`null`: digest-pinned or no proxy).
    pub version: Option<String>,
    pub pods: usize,
    pub ready: usize,
}

/// Where a Gateway API gateway stands.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum GatewayApiState {
    /// Rendered by its revision, every pod on that revision's proxy, Programmed.
    UpToDate,
    /// Its pods (or its Deployment's template) differ from what its revision renders.
    Stale,
    /// Rendered and running as its revision renders it, but not Programmed.
    NotProgrammed,
    /// Its revision serves it but nothing was rendered yet.
    NotRendered,
    /// No istiod serves the revision or tag it names (or there is no default).
    NoRevision,
    /// It names its own Service by address: istiod renders nothing for it.
    Unmanaged,
}

impl GatewayApiState {
    pub fn as_str(self) -> &'static str {
        match self {
            GatewayApiState::UpToDate => "up-to-date",
            GatewayApiState::Stale => "stale",
            GatewayApiState::NotProgrammed => "not-programmed",
            GatewayApiState::NotRendered => "not-rendered",
            GatewayApiState::NoRevision => "no-revision",
            GatewayApiState::Unmanaged => "unmanaged",
        }
    }

    /// What `status --exit-code` counts.
    pub fn needs_attention(self) -> bool {
        !matches!(self, GatewayApiState::UpToDate | GatewayApiState::Unmanaged)
    }
}

/// One Istio-class Gateway, as the model sees it.
#[derive(Clone, Debug, PartialEq)]
pub struct GatewayApiGateway {
    pub info: GatewayInfo,
    pub kind: GatewayKind,
    pub choice: RevisionChoice,
    /// The serving revision's istiod is Ready (only then does it render).
    pub revision_ready: bool,
    /// The image the serving revision renders for it.
    pub expected_image: Option<String>,
    pub expected_version: Option<String>,
    /// The name istiod gives what it renders.
    pub rendered_name: String,
    pub deployment: Option<RenderedDeployment>,
    pub service: Option<RenderedService>,
    /// Its live pods by proxy version.
    pub proxies: Vec<ProxyVersionCount>,
    /// Live pods on another version than the expected one.
    pub stale_pods: usize,
    pub state: GatewayApiState,
    /// Why it is not up to date, one sentence each.
    pub problems: Vec<String>,
}

impl GatewayApiGateway {
    /// `edge/public`.
    pub fn reference(&self) -> String {
        format!("{}/{}", self.info.namespace, self.info.name)
    }

    /// The `Programmed` condition holds for the current generation.
    pub fn programmed(&self) -> bool {
        programmed_now(&self.info)
    }
}

/// `Programmed=True`, written for the Gateway's current generation.
pub fn programmed_now(info: &GatewayInfo) -> bool {
    info.programmed()
        .is_some_and(|c| c.is_true() && c.observed_generation.is_none_or(|g| g >= info.generation))
}

/// The name istiod gives the Deployment and Service of a Gateway
/// (`GetDefaultName`, `gateway.istio.io/name-override`).
pub fn rendered_name(info: &GatewayInfo, kind: GatewayKind) -> String {
    if let Some(name) = info.annotations.get(NAME_OVERRIDE_ANNOTATION) {
        return name.clone();
    }
    if kind.name_suffix() {
        format!("{}-{}", info.name, info.class)
    } else {
        info.name.clone()
    }
}

/// The image istiod renders for a Gateway from `revision`: the injector's
/// values with the Gateway's annotations (`sidecar.istio.io/proxyImage` taken
/// whole when it contains a `/`), else the revision's own image.
pub fn rendered_image(
    info: &GatewayInfo,
    revision: &crate::mesh::control_plane::Revision,
) -> Option<String> {
    if let Some(custom) = info
        .annotations
        .get(PROXY_IMAGE_ANNOTATION)
        .filter(|i| i.contains('/'))
    {
        return Some(custom.clone());
    }
    revision
        .image_values
        .as_ref()
        .and_then(|v| v.render(&info.annotations))
        .or_else(|| revision.proxy_image.clone())
}

/// Every Istio-class Gateway of the snapshot, sorted by namespace and name.
pub fn gateway_api_gateways(
    snapshot: &ClusterSnapshot,
    control_plane: &ControlPlane,
) -> Vec<GatewayApiGateway> {
    let mut found: Vec<GatewayApiGateway> = snapshot
        .gateway_api
        .gateways
        .iter()
        .filter_map(|g| {
            let kind = gateway_kind(snapshot, &g.class)?;
            Some(assess(snapshot, control_plane, g, kind))
        })
        .collect();
    found.sort_by(|a, b| (&a.info.namespace, &a.info.name).cmp(&(&b.info.namespace, &b.info.name)));
    found
}

/// One Gateway's revision, rendering, pods and state.
pub fn assess(
    snapshot: &ClusterSnapshot,
    control_plane: &ControlPlane,
    info: &GatewayInfo,
    kind: GatewayKind,
) -> GatewayApiGateway {
    let choice = serving_revision(
        &info.labels,
        snapshot.namespace(&info.namespace),
        control_plane,
    );
    let revision = choice
        .revision
        .as_deref()
        .and_then(|r| control_plane.revision(r));
    let expected_image = revision.and_then(|r| rendered_image(info, r));
    let expected_version = expected_image
        .as_deref()
        .and_then(image_version)
        .or_else(|| revision.and_then(|r| r.proxy_version.clone()));
    let rendered_name = rendered_name(info, kind);
    let owned =
        |labels: &dyn LabelLookup| labels.label(GATEWAY_NAME_LABEL) == Some(info.name.as_str());
    let deployment = snapshot
        .deployments
        .iter()
        .find(|d| d.namespace == info.namespace && d.name == rendered_name && owned(&d.labels))
        .map(RenderedDeployment::of);
    let service = snapshot
        .services
        .iter()
        .find(|s| s.namespace == info.namespace && s.name == rendered_name && owned(&s.labels))
        .map(|s| RenderedService {
            name: s.name.clone(),
            type_: s.type_.clone(),
        });
    let pods: Vec<&PodInfo> = snapshot
        .pods
        .iter()
        .filter(|p| p.namespace == info.namespace && owned(&p.labels))
        .filter(|p| !p.terminating && p.phase != "Succeeded" && p.phase != "Failed")
        .collect();
    let proxies = proxy_counts(&pods);
    let stale_pods = match &expected_version {
        Some(expected) => pods
            .iter()
            .filter(|p| pod_version(p).is_none_or(|v| !same_version(&v, expected)))
            .count(),
        None => 0,
    };

    let mut problems = Vec::new();
    let managed = info.address_types.len() <= 1
        && info
            .address_types
            .iter()
            .all(|t| t.as_deref().is_none_or(|t| t == "IPAddress"));
    let state = match (managed, revision, &deployment) {
        (false, _, _) => GatewayApiState::Unmanaged,
        (true, None, _) => {
            problems.push(match (&choice.label, &choice.revision) {
                (Some(label), None) => format!(
                    "{REV_LABEL}={label} ({}) names no revision or tag: no istiod renders it",
                    source_text(choice.source)
                ),
                (_, Some(r)) => format!("revision {r} has no istiod: nothing renders it"),
                (None, None) => {
                    "no default revision or default tag: no istiod renders it".to_string()
                }
            });
            GatewayApiState::NoRevision
        }
        (true, Some(r), None) => {
            problems.push(if r.is_ready() {
                format!(
                    "no Deployment {rendered_name} yet: istiod {} has not rendered it",
                    r.deployment
                )
            } else {
                format!(
                    "no Deployment {rendered_name}: istiod {} is not Ready to render it",
                    r.deployment
                )
            });
            GatewayApiState::NotRendered
        }
        (true, Some(r), Some(d)) => {
            let template_current = d.rendered_by.as_deref() == Some(r.revision.as_str())
                && match (&expected_image, &d.image) {
                    (Some(expected), Some(image)) => expected == image,
                    _ => true,
                };
            if !template_current {
                problems.push(format!(
                    "its Deployment was rendered by {} ({}); {} renders {}{}",
                    d.rendered_by.as_deref().unwrap_or("an unknown revision"),
                    d.image.as_deref().unwrap_or("no proxy image"),
                    r.revision,
                    expected_image.as_deref().unwrap_or("an unknown image"),
                    if r.is_ready() {
                        String::new()
                    } else {
                        format!(": istiod {} is not Ready to re-render it", r.deployment)
                    }
                ));
            }
            if stale_pods > 0 {
                let running: BTreeSet<String> = pods
                    .iter()
                    .filter_map(|p| pod_version(p))
                    .filter(|v| {
                        !expected_version
                            .as_deref()
                            .is_some_and(|e| same_version(v, e))
                    })
                    .collect();
                problems.push(format!(
                    "{} of {} pods run {}, {} renders {}{}",
                    stale_pods,
                    pods.len(),
                    if running.is_empty() {
                        "another proxy".to_string()
                    } else {
                        running.into_iter().collect::<Vec<_>>().join("/")
                    },
                    r.revision,
                    expected_version.as_deref().unwrap_or("?"),
                    d.rollout
                        .as_deref()
                        .map(|why| format!(" (rollout: {why})"))
                        .unwrap_or_default()
                ));
            }
            if !template_current || stale_pods > 0 {
                GatewayApiState::Stale
            } else if !programmed_now(info) {
                problems.push(programmed_problem(info));
                GatewayApiState::NotProgrammed
            } else {
                GatewayApiState::UpToDate
            }
        }
    };

    GatewayApiGateway {
        info: info.clone(),
        kind,
        revision_ready: revision.is_some_and(|r| r.is_ready()),
        choice,
        expected_image,
        expected_version,
        rendered_name,
        deployment,
        service,
        proxies,
        stale_pods,
        state,
        problems,
    }
}

fn programmed_problem(info: &GatewayInfo) -> String {
    match info.programmed() {
        None => "no Programmed condition yet".to_string(),
        Some(c) if c.is_true() => format!(
            "Programmed was written for generation {}, the Gateway is at {}",
            c.observed_generation.unwrap_or(0),
            info.generation
        ),
        Some(c) => format!("Programmed is {} ({}): {}", c.status, c.reason, c.message),
    }
}

/// The version of the proxy a pod runs (the tag of its `istio-proxy` image).
fn pod_version(pod: &PodInfo) -> Option<String> {
    pod.proxy
        .sidecar
        .as_ref()
        .and_then(|s| image_version(&s.image))
}

fn proxy_counts(pods: &[&PodInfo]) -> Vec<ProxyVersionCount> {
    let mut by_version: BTreeMap<Option<String>, (usize, usize)> = BTreeMap::new();
    for pod in pods {
        let entry = by_version.entry(pod_version(pod)).or_default();
        entry.0 += 1;
        if pod.ready {
            entry.1 += 1;
        }
    }
    by_version
        .into_iter()
        .map(|(version, (pods, ready))| ProxyVersionCount {
            version,
            pods,
            ready,
        })
        .collect()
}

/// `gateway`, `namespace` or `default`, for sentences.
pub fn source_text(source: RevisionSource) -> &'static str {
    match source {
        RevisionSource::Gateway => "the Gateway's label",
        RevisionSource::Namespace => "its namespace's label",
        RevisionSource::Default => "the default",
    }
}

/// Who uses a waypoint.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct WaypointUse {
    /// Namespaces labelled `istio.io/use-waypoint` with it.
    pub namespaces: Vec<String>,
    /// Services (`namespace/name`) whose traffic goes through it: labelled
    /// themselves, or in such a namespace without opting out
    /// (`istio.io/use-waypoint: none`).
    pub services: Vec<String>,
}

/// Which waypoint (namespace, name) each labelled namespace and each Service
/// uses (`GetUseWaypoint` and `fetchWaypointForTarget` in
/// `pilot/pkg/serviceregistry/ambient/waypoints.go`): an object's own
/// `istio.io/use-waypoint` first (`none` opts out), else its namespace's;
/// the waypoint is in `istio.io/use-waypoint-namespace` of whichever object
/// carries the label, else in the object's own namespace. Waypoints and
/// east-west gateways use none.
pub fn waypoint_uses(snapshot: &ClusterSnapshot) -> BTreeMap<(String, String), WaypointUse> {
    let mut uses: BTreeMap<(String, String), WaypointUse> = BTreeMap::new();
    let named = |labels: &Labels, home: &str| -> Option<Option<(String, String)>> {
        let name = labels.get(USE_WAYPOINT_LABEL)?;
        if name == "none" {
            return Some(None);
        }
        let namespace = labels
            .get(USE_WAYPOINT_NAMESPACE_LABEL)
            .cloned()
            .unwrap_or_else(|| home.to_string());
        Some(Some((namespace, name.clone())))
    };
    for ns in &snapshot.namespaces {
        if let Some(Some(key)) = named(&ns.labels, &ns.name) {
            uses.entry(key)
                .or_default()
                .namespaces
                .push(ns.name.clone());
        }
    }
    for service in &snapshot.services {
        if is_mesh_gateway(service) {
            continue;
        }
        let waypoint = match named(&service.labels, &service.namespace) {
            Some(own) => own,
            None => snapshot
                .namespace(&service.namespace)
                .and_then(|ns| named(&ns.labels, &service.namespace))
                .flatten(),
        };
        if let Some(key) = waypoint {
            uses.entry(key)
                .or_default()
                .services
                .push(format!("{}/{}", service.namespace, service.name));
        }
    }
    for entry in uses.values_mut() {
        entry.namespaces.sort();
        entry.services.sort();
    }
    uses
}

/// A waypoint's or east-west gateway's own Service: it has no waypoint.
fn is_mesh_gateway(service: &ServiceInfo) -> bool {
    matches!(
        service.labels.get(MANAGED_LABEL).map(String::as_str),
        Some("istio.io-mesh-controller" | "istio.io-eastwest-controller")
    )
}

/// The traffic a waypoint takes (`istio.io/waypoint-for` on the Gateway,
/// default `service`).
pub fn waypoint_for(info: &GatewayInfo) -> String {
    info.labels
        .get(WAYPOINT_FOR_LABEL)
        .cloned()
        .unwrap_or_else(|| "service".to_string())
}

/// What `status` prints for one Gateway API gateway.
#[derive(Clone, Debug, PartialEq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct GatewayApiStatus {
    pub namespace: String,
    pub name: String,
    /// `spec.gatewayClassName`.
    pub class: String,
    /// `ingress`, `waypoint` or `east-west` (from the class's controller).
    pub kind: GatewayKind,
    /// The revision that serves it (`null`: none).
    pub revision: Option<String>,
    /// Where that came from: `gateway` (its `istio.io/rev`), `namespace`, or `default`.
    pub revision_from: RevisionSource,
    /// The label value it went through (a revision or a tag; `null` for the default).
    pub revision_label: Option<String>,
    /// The serving revision's istiod has a Ready replica.
    pub revision_ready: bool,
    /// The proxy version (and image) that revision renders for it.
    pub expected_version: Option<String>,
    pub expected_image: Option<String>,
    /// The Deployment istiod rendered (`null`: none yet).
    pub deployment: Option<RenderedDeployment>,
    /// The Service istiod rendered.
    pub service: Option<RenderedService>,
    /// Its pods by the proxy version they run.
    pub proxies: Vec<ProxyVersionCount>,
    pub stale_pods: usize,
    /// The `Programmed` condition as the Gateway reports it.
    pub programmed: Option<ProgrammedStatus>,
    /// `up-to-date`, `stale`, `not-programmed`, `not-rendered`, `no-revision`, `unmanaged`.
    pub state: GatewayApiState,
    pub problems: Vec<String>,
}

/// The `Programmed` condition.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct ProgrammedStatus {
    pub status: String,
    pub reason: String,
    pub message: String,
    /// Written for the Gateway's current generation.
    pub current: bool,
}

impl ProgrammedStatus {
    fn of(c: &ConditionInfo, generation: i64) -> Self {
        ProgrammedStatus {
            status: c.status.clone(),
            reason: c.reason.clone(),
            message: c.message.clone(),
            current: c.observed_generation.is_none_or(|g| g >= generation),
        }
    }
}

impl GatewayApiStatus {
    pub fn of(g: &GatewayApiGateway) -> Self {
        GatewayApiStatus {
            namespace: g.info.namespace.clone(),
            name: g.info.name.clone(),
            class: g.info.class.clone(),
            kind: g.kind,
            revision: g.choice.revision.clone(),
            revision_from: g.choice.source,
            revision_label: g.choice.label.clone(),
            revision_ready: g.revision_ready,
            expected_version: g.expected_version.clone(),
            expected_image: g.expected_image.clone(),
            deployment: g.deployment.clone(),
            service: g.service.clone(),
            proxies: g.proxies.clone(),
            stale_pods: g.stale_pods,
            programmed: g
                .info
                .programmed()
                .map(|c| ProgrammedStatus::of(c, g.info.generation)),
            state: g.state,
            problems: g.problems.clone(),
        }
    }
}

/// What `status` prints for one waypoint: the gateway's columns and who uses it.
#[derive(Clone, Debug, PartialEq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct WaypointStatus {
    #[serde(flatten)]
    pub gateway: GatewayApiStatus,
    /// `istio.io/waypoint-for` (`service` when unset).
    pub waypoint_for: String,
    pub used_by: WaypointUse,
}

/// The `gatewayApi` and `waypoints` lists of the status document, for the
/// Gateways in `in_scope` namespaces.
pub fn status_lists(
    snapshot: &ClusterSnapshot,
    gateways: &[GatewayApiGateway],
    in_scope: impl Fn(&str) -> bool,
) -> (Vec<GatewayApiStatus>, Vec<WaypointStatus>) {
    let uses = waypoint_uses(snapshot);
    let shown: Vec<&GatewayApiGateway> = gateways
        .iter()
        .filter(|g| in_scope(&g.info.namespace))
        .collect();
    let all = shown.iter().map(|g| GatewayApiStatus::of(g)).collect();
    let waypoints = shown
        .iter()
        .filter(|g| g.kind == GatewayKind::Waypoint)
        .map(|g| {
            let traffic = waypoint_for(&g.info);
            let mut used_by = uses
                .get(&(g.info.namespace.clone(), g.info.name.clone()))
                .cloned()
                .unwrap_or_default();
            if !matches!(traffic.as_str(), "service" | "all") {
                // Services bind only to waypoints for service traffic.
                used_by.services.clear();
            }
            WaypointStatus {
                gateway: GatewayApiStatus::of(g),
                waypoint_for: traffic,
                used_by,
            }
        })
        .collect();
    (all, waypoints)
}

/// Adds what the Gateway API gateways need to the summary: one attention
/// line and one next step per gateway that is not up to date, and the
/// canary's next move for up-to-date ones on an older revision than the
/// newest Ready one.
pub fn summarise(
    summary: &mut crate::mesh::status::Summary,
    gateways: &[GatewayApiStatus],
    waypoints: &[WaypointStatus],
    control_plane: &ControlPlane,
) {
    use crate::mesh::status::{NextStep, newest_revision, older};
    let waypoint_names: BTreeSet<(&str, &str)> = waypoints
        .iter()
        .map(|w| (w.gateway.namespace.as_str(), w.gateway.name.as_str()))
        .collect();
    for g in gateways {
        let what = if waypoint_names.contains(&(g.namespace.as_str(), g.name.as_str())) {
            "waypoint"
        } else {
            "Gateway"
        };
        let reference = format!("{what} {}/{}", g.namespace, g.name);
        if g.state.needs_attention() {
            let why = g
                .problems
                .first()
                .cloned()
                .unwrap_or_else(|| g.state.as_str().to_string());
            let message = format!("{reference} is {}: {why}", g.state.as_str());
            summary.attention.push(message.clone());
            let revision = g
                .revision
                .as_deref()
                .and_then(|r| control_plane.revision(r));
            let command = match (g.state, revision) {
                (GatewayApiState::NoRevision, _) => Some(format!(
                    "kubectl mesh-upgrade gateway-switch -n {} --gateway {} --to <revision>",
                    g.namespace, g.name
                )),
                (GatewayApiState::Stale | GatewayApiState::NotRendered, Some(r))
                    if !r.is_ready() =>
                {
                    Some(format!(
                        "kubectl -n {} rollout status deployment/{}",
                        control_plane.namespace, r.deployment
                    ))
                }
                (GatewayApiState::Stale, _) => g.deployment.as_ref().map(|d| {
                    format!(
                        "kubectl -n {} rollout status deployment/{}",
                        g.namespace, d.name
                    )
                }),
                _ => Some(format!(
                    "kubectl -n {} describe gateway {}",
                    g.namespace, g.name
                )),
            };
            summary.next_steps.push(NextStep { message, command });
            continue;
        }
        if g.state != GatewayApiState::UpToDate {
            continue;
        }
        let (Some(current), Some(newest)) = (g.revision.as_deref(), newest_revision(control_plane))
        else {
            continue;
        };
        let newest_ready = control_plane.revision(newest).is_some_and(|r| r.is_ready());
        if current != newest && newest_ready && older(control_plane, current, newest) {
            summary.next_steps.push(NextStep {
                message: format!(
                    "{reference} runs revision {current}; {newest} is newer and Ready: move it when the canary looks good"
                ),
                command: Some(format!(
                    "kubectl mesh-upgrade gateway-switch -n {} --gateway {} --to {newest}",
                    g.namespace, g.name
                )),
            });
        }
    }
    summary.needs_attention = !summary.attention.is_empty();
}

#[cfg(test)]
#[path = "gateway_api/tests.rs"]
mod tests;
