//! Gateways: the gateway Deployments of each revision, and the external
//! Services (LoadBalancer/NodePort) in front of them.
//!
//! Blue/green gateways (seed 001) run one gateway Deployment per revision,
//! each with its own value of a selector key (usually `version`), behind one
//! LoadBalancer Service whose selector picks one of them. Cutting over means
//! changing that one value. [`gateway_services`] says which revision each
//! Service selects now (from its selector against the gateway templates, and
//! from the pods its EndpointSlices list); [`switch_candidates`] says which
//! other gateway could take over and what stops it.
//!
//! What "could take over" means is decided once, by [`takeover_checks`]: the
//! pods a selector would send traffic to exist, are Ready, belong to rolled
//! out gateway Deployments, run the target revision's proxy (whose istiod is
//! Ready) and expose every `targetPort` of the Service. `status` shows the
//! failed checks as a candidate's problems; `gateway-switch` shows every
//! check as its prechecks and refuses on a failed one, so the two never
//! disagree about whether a gateway is ready.

use std::collections::{BTreeMap, BTreeSet, HashMap};

use serde::Serialize;

use crate::mesh::control_plane::ControlPlane;
use crate::mesh::proxy::{pod_proxy, same_version};
use crate::mesh::workloads::{
    Classification, ProxyGroup, Risk, Workload, WorkloadKind, WorkloadPod, WorkloadState,
};
use crate::snapshot::{
    ClusterSnapshot, ContainerPortInfo, Labels, PodInfo, ServiceInfo, SharedStr,
};

/// Selector keys that tell gateway revisions apart, in order of preference.
pub const REVISION_SELECTOR_KEYS: &[&str] = &["version", "istio.io/rev"];

/// A gateway Deployment.
#[derive(Clone, Debug, PartialEq)]
pub struct Gateway {
    pub namespace: String,
    pub name: String,
    /// The `istio` label (`ingressgateway`, `egressgateway`), if any.
    pub istio_label: Option<String>,
    pub template_labels: Labels,
    /// The revision a new gateway pod gets.
    pub revision: Option<String>,
    /// The version most of its pods run (`None` without pods or for digests).
    pub version: Option<String>,
    pub proxies: Vec<ProxyGroup>,
    pub desired: i32,
    pub ready: i32,
    pub state: WorkloadState,
    /// No rollout in progress.
    pub rolled_out: bool,
    /// Why a rollout counts as in progress, when it does.
    pub rollout: Option<String>,
    /// Its rollout reported `ProgressDeadlineExceeded`.
    pub stuck: bool,
    /// Every container port its template declares.
    pub ports: Vec<ContainerPortInfo>,
    /// Its running pods, with the proxy each runs (tags resolved).
    pub pods: Vec<WorkloadPod>,
}

impl Gateway {
    fn from_workload(w: &Workload) -> Self {
        let version = w
            .proxies
            .iter()
            .max_by_key(|g| g.pods)
            .and_then(|g| g.version.as_ref().map(SharedStr::to_string));
        Gateway {
            namespace: w.namespace.to_string(),
            name: w.name.to_string(),
            istio_label: w.template.labels.get("istio").map(str::to_string),
            template_labels: w.template.labels.to_labels(),
            revision: w.expected_revision().map(str::to_string).or_else(|| {
                w.proxies
                    .iter()
                    .max_by_key(|g| g.pods)
                    .and_then(|g| g.revision.as_ref().map(SharedStr::to_string))
            }),
            version,
            proxies: w.proxies.clone(),
            desired: w.desired,
            ready: w.ready,
            state: w.state,
            rolled_out: w.rollout_in_progress.is_none(),
            rollout: w.rollout_in_progress.clone(),
            stuck: w.risks.contains(&Risk::RolloutStuck),
            pods: w.pods.clone(),
            ports: w
                .template
                .containers
                .iter()
                .flat_map(|c| c.ports.clone())
                .collect(),
        }
    }

    /// Whether it declares a container port for `target_port` (a number or a
    /// name). A gateway istiod renders for a Gateway API `Gateway` listens on
    /// its listeners' ports without declaring them (`kube-gateway.yaml`
    /// declares 15020, 15021 and 15090 only), so any number counts for it.
    pub fn exposes(&self, target_port: &str) -> bool {
        let gateway_api = self
            .template_labels
            .contains_key(crate::mesh::gateway_api::MANAGED_LABEL);
        match target_port.parse::<i32>() {
            Ok(_) if gateway_api => true,
            Ok(number) => self.ports.iter().any(|p| p.container_port == number),
            Err(_) => self
                .ports
                .iter()
                .any(|p| p.name.as_deref() == Some(target_port)),
        }
    }
}

/// The gateway Deployments among the classified workloads.
pub fn gateways(classification: &Classification) -> Vec<Gateway> {
    classification
        .workloads
        .iter()
        .filter(|w| w.is_gateway && w.kind == WorkloadKind::Deployment)
        .map(Gateway::from_workload)
        .collect()
}

/// Pods an EndpointSlice lists for a Service, by proxy revision.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct EndpointSummary {
    pub ready: usize,
    pub not_ready: usize,
    /// Ready endpoints grouped by the revision of the proxy their pod runs.
    pub ready_by_revision: Vec<(Option<String>, usize)>,
}

/// Another gateway that could take over a Service.
#[derive(Clone, Debug, PartialEq)]
pub struct SwitchCandidate {
    pub namespace: String,
    /// The gateway Deployment.
    pub deployment: String,
    pub revision: Option<String>,
    pub version: Option<String>,
    /// The selector key and the value to set there.
    pub selector_key: String,
    pub selector_value: String,
    pub ready: i32,
    pub desired: i32,
    /// Why it cannot take over now; empty when it can.
    pub problems: Vec<String>,
}

impl SwitchCandidate {
    /// Fully ready, rolled out, on its revision's proxy, exposing every port.
    pub fn is_ready(&self) -> bool {
        self.problems.is_empty()
    }
}

/// An external Service in front of gateway pods.
#[derive(Clone, Debug, PartialEq)]
pub struct GatewayService {
    pub namespace: String,
    pub name: String,
    pub type_: String,
    pub selector: Labels,
    /// The key whose value picks a revision (`version`, else `istio.io/rev`).
    pub selector_key: Option<String>,
    /// Gateway Deployments whose pods the selector matches now.
    pub selected: Vec<String>,
    /// Their revisions.
    pub selected_revisions: Vec<String>,
    pub endpoints: EndpointSummary,
    pub candidates: Vec<SwitchCandidate>,
}

/// External Services whose selector matches gateway pods (or names a
/// gateway `istio` label while matching none: a broken cut-over).
pub fn gateway_services(
    snapshot: &ClusterSnapshot,
    gateways: &[Gateway],
    control_plane: &ControlPlane,
) -> Vec<GatewayService> {
    let mut services: Vec<GatewayService> = snapshot
        .services
        .iter()
        .filter(|s| s.is_external())
        .filter_map(|service| {
            let selected: Vec<&Gateway> = gateways
                .iter()
                .filter(|g| g.namespace == service.namespace && service.selects(&g.template_labels))
                .collect();
            let names_gateway = service
                .selector
                .get("istio")
                .is_some_and(|v| v.ends_with("gateway"));
            if selected.is_empty() && !names_gateway {
                return None;
            }
            let selector_key = REVISION_SELECTOR_KEYS
                .iter()
                .find(|k| service.selector.contains_key(**k))
                .map(|k| k.to_string());
            let mut selected_revisions: Vec<String> =
                selected.iter().filter_map(|g| g.revision.clone()).collect();
            selected_revisions.sort();
            selected_revisions.dedup();
            let candidates = match &selector_key {
                Some(key) => switch_candidates(snapshot, gateways, service, key, control_plane),
                None => Vec::new(),
            };
            Some(GatewayService {
                namespace: service.namespace.clone(),
                name: service.name.clone(),
                type_: service.type_.clone(),
                selector: service.selector.clone(),
                selector_key,
                selected: selected.iter().map(|g| g.name.clone()).collect(),
                selected_revisions,
                endpoints: endpoint_summary(snapshot, service, control_plane),
                candidates,
            })
        })
        .collect();
    services.sort_by(|a, b| (&a.namespace, &a.name).cmp(&(&b.namespace, &b.name)));
    services
}

/// Gateways the Service could be switched to by changing the value of
/// `selector_key`: same namespace, matching every other selector entry, a
/// different value for the key. Each says what stops it, if anything: the
/// failed [`takeover_checks`] of the selector it would get.
pub fn switch_candidates(
    snapshot: &ClusterSnapshot,
    gateways: &[Gateway],
    service: &ServiceInfo,
    selector_key: &str,
    control_plane: &ControlPlane,
) -> Vec<SwitchCandidate> {
    let current = service.selector.get(selector_key);
    gateways
        .iter()
        .filter(|g| g.namespace == service.namespace)
        .filter_map(|g| {
            let value = g.template_labels.get(selector_key)?;
            if Some(value) == current {
                return None;
            }
            let mut wanted = service.selector.clone();
            wanted.insert(selector_key.to_string(), value.clone());
            if !wanted
                .iter()
                .all(|(k, v)| g.template_labels.get(k) == Some(v))
            {
                return None;
            }
            let takeover = Takeover::of(snapshot, gateways, &service.namespace, &wanted);
            let problems = takeover_checks(&takeover, service, Some(value), control_plane)
                .into_iter()
                .filter(|c| !c.passed)
                .map(|c| c.reason)
                .collect();
            Some(SwitchCandidate {
                namespace: g.namespace.clone(),
                deployment: g.name.clone(),
                revision: g.revision.clone(),
                version: g.version.clone(),
                selector_key: selector_key.to_string(),
                selector_value: value.clone(),
                ready: g.ready,
                desired: g.desired,
                problems,
            })
        })
        .collect()
}

/// `key=value,key=value`, as kubectl prints a selector.
pub fn selector_text(selector: &Labels) -> String {
    if selector.is_empty() {
        return "<none>".to_string();
    }
    selector
        .iter()
        .map(|(k, v)| format!("{k}={v}"))
        .collect::<Vec<_>>()
        .join(",")
}

/// Whether `labels` carry every entry of `selector` (an empty selector
/// selects nothing, as for a Service).
pub fn selector_matches(
    selector: &Labels,
    labels: &(impl crate::snapshot::LabelLookup + ?Sized),
) -> bool {
    !selector.is_empty()
        && selector
            .iter()
            .all(|(k, v)| labels.label(k) == Some(v.as_str()))
}

/// What a check before a cut-over looks at.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum CheckKind {
    /// The Service's selector has the key that names the revision.
    SelectorKey,
    /// The selector being replaced can be written down for a rollback.
    PreviousSelector,
    /// EndpointSlices can be read, so the switch can be verified.
    EndpointsReadable,
    /// Pods match the new selector.
    PodsExist,
    /// They are Ready (none Ready is never overridable).
    PodsReady,
    /// Their gateway Deployments are fully rolled out.
    RolledOut,
    /// They run the target revision's proxy.
    ProxyRevision,
    /// The target revision's istiod is Ready.
    IstiodReady,
    /// They expose every `targetPort` of the Service.
    TargetPorts,
    /// The Service is not one istiod renders for a Gateway API `Gateway`
    /// (istiod would put its selector back).
    IstiodManaged,
    /// `--gateway`: the target names a revision or a tag of one.
    TargetRevision,
    /// `--gateway`: the Gateway's current `istio.io/rev` can be recorded
    /// (or, for `--rollback`, was).
    PreviousRevision,
    /// `--gateway`: istiod renders the Gateway (no address of its own).
    GatewayManaged,
    /// `--gateway`: the Gateway is `Programmed` now.
    Programmed,
}

impl CheckKind {
    /// The kebab-case name used in tables and JSON.
    pub fn as_str(self) -> &'static str {
        match self {
            CheckKind::SelectorKey => "selector-key",
            CheckKind::PreviousSelector => "previous-selector",
            CheckKind::EndpointsReadable => "endpoints-readable",
            CheckKind::PodsExist => "pods-exist",
            CheckKind::PodsReady => "pods-ready",
            CheckKind::RolledOut => "rolled-out",
            CheckKind::ProxyRevision => "proxy-revision",
            CheckKind::IstiodReady => "istiod-ready",
            CheckKind::TargetPorts => "target-ports",
            CheckKind::IstiodManaged => "istiod-managed",
            CheckKind::TargetRevision => "target-revision",
            CheckKind::PreviousRevision => "previous-revision",
            CheckKind::GatewayManaged => "gateway-managed",
            CheckKind::Programmed => "programmed",
        }
    }
}

impl std::fmt::Display for CheckKind {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

/// One check and its verdict.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct TakeoverCheck {
    pub check: CheckKind,
    pub passed: bool,
    /// A failure `--force` cannot override.
    pub hard: bool,
    /// What was found, pass or fail.
    pub reason: String,
}

impl TakeoverCheck {
    pub fn pass(check: CheckKind, reason: impl Into<String>) -> Self {
        TakeoverCheck {
            check,
            passed: true,
            hard: false,
            reason: reason.into(),
        }
    }

    /// A failure `--force` may override.
    pub fn soft_fail(check: CheckKind, reason: impl Into<String>) -> Self {
        TakeoverCheck {
            check,
            passed: false,
            hard: false,
            reason: reason.into(),
        }
    }

    /// A failure nothing overrides.
    pub fn hard_fail(check: CheckKind, reason: impl Into<String>) -> Self {
        TakeoverCheck {
            check,
            passed: false,
            hard: true,
            reason: reason.into(),
        }
    }
}

/// A pod a selector would send traffic to.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct SelectedPod {
    pub name: String,
    pub ready: bool,
    /// The gateway Deployment it belongs to; `None` for a stray pod.
    pub gateway: Option<String>,
    /// The revision of the proxy it runs (tags resolved); `None` without one.
    pub revision: Option<String>,
    /// The proxy version from its image tag.
    pub version: Option<String>,
    /// It runs a proxy at all.
    pub has_proxy: bool,
}

/// The pods a selector picks in one namespace, and the gateway Deployments
/// behind them: what a Service would send traffic to with that selector.
#[derive(Clone, Debug, PartialEq)]
pub struct Takeover<'a> {
    pub selector: Labels,
    /// Running pods whose labels match, sorted by name.
    pub pods: Vec<SelectedPod>,
    /// Gateway Deployments owning a matched pod or whose template matches.
    pub gateways: Vec<&'a Gateway>,
}

impl<'a> Takeover<'a> {
    /// What `selector` picks in `namespace`.
    pub fn of(
        snapshot: &ClusterSnapshot,
        gateways: &'a [Gateway],
        namespace: &str,
        selector: &Labels,
    ) -> Self {
        let in_namespace: Vec<&Gateway> = gateways
            .iter()
            .filter(|g| g.namespace == namespace)
            .collect();
        let mut pods: Vec<SelectedPod> = snapshot
            .pods
            .iter()
            .filter(|p| p.namespace == namespace && is_running(p))
            .filter(|p| selector_matches(selector, &p.labels))
            .map(|p| selected_pod(p, &in_namespace))
            .collect();
        pods.sort_by(|a, b| a.name.cmp(&b.name));
        let owning: BTreeSet<&str> = pods.iter().filter_map(|p| p.gateway.as_deref()).collect();
        let chosen: Vec<&Gateway> = in_namespace
            .into_iter()
            .filter(|g| {
                owning.contains(g.name.as_str()) || selector_matches(selector, &g.template_labels)
            })
            .collect();
        Takeover {
            selector: selector.clone(),
            pods,
            gateways: chosen,
        }
    }

    /// Names of the gateway Deployments.
    pub fn gateway_names(&self) -> Vec<String> {
        self.gateways.iter().map(|g| g.name.clone()).collect()
    }

    /// The revision the pods should run: the selector value when it names a
    /// revision or a tag (`version: 1-22-3`), else the one the gateway
    /// templates expect when they agree.
    pub fn target_revision(
        &self,
        selector_value: Option<&str>,
        control_plane: &ControlPlane,
    ) -> Option<String> {
        if let Some(revision) = selector_value.and_then(|v| control_plane.resolve(v)) {
            return Some(revision.to_string());
        }
        let expected: BTreeSet<&str> = self
            .gateways
            .iter()
            .filter_map(|g| g.revision.as_deref())
            .collect();
        match expected.into_iter().collect::<Vec<_>>().as_slice() {
            [one] => Some(control_plane.resolve(one).unwrap_or(one).to_string()),
            _ => None,
        }
    }
}

fn is_running(pod: &PodInfo) -> bool {
    !pod.terminating && pod.phase != "Succeeded" && pod.phase != "Failed"
}

fn selected_pod(pod: &PodInfo, gateways: &[&Gateway]) -> SelectedPod {
    let owner = gateways
        .iter()
        .find_map(|g| g.pods.iter().find(|p| p.name == pod.name).map(|p| (*g, p)));
    match owner {
        Some((g, p)) => SelectedPod {
            name: pod.name.to_string(),
            ready: pod.ready,
            gateway: Some(g.name.clone()),
            revision: p.revision.as_deref().map(str::to_string),
            version: p
                .proxy
                .as_ref()
                .and_then(|x| x.version.as_ref().map(SharedStr::to_string)),
            has_proxy: p.proxy.is_some(),
        },
        None => {
            let proxy = pod_proxy(pod);
            SelectedPod {
                name: pod.name.to_string(),
                ready: pod.ready,
                gateway: None,
                revision: proxy.as_ref().and_then(|x| x.revision.clone()),
                version: proxy
                    .as_ref()
                    .and_then(|x| x.version.as_ref().map(SharedStr::to_string)),
                has_proxy: proxy.is_some(),
            }
        }
    }
}

/// Up to three names, then a count: messages stay one line.
fn name_list(names: &[&str]) -> String {
    const SHOWN: usize = 3;
    let mut text = names
        .iter()
        .take(SHOWN)
        .copied()
        .collect::<Vec<_>>()
        .join(", ");
    if names.len() > SHOWN {
        text.push_str(&format!(" and {} more", names.len() - SHOWN));
    }
    text
}

/// The checks a cut-over of `service` to `takeover` must pass, in order:
/// pods exist, pods Ready, rolled out, proxy revision, istiod Ready, target
/// ports. `selector_value` is the revision key's new value (it names the
/// target revision when it is a revision or tag).
pub fn takeover_checks(
    takeover: &Takeover<'_>,
    service: &ServiceInfo,
    selector_value: Option<&str>,
    control_plane: &ControlPlane,
) -> Vec<TakeoverCheck> {
    let selector = selector_text(&takeover.selector);
    let pods = &takeover.pods;
    let mut checks = Vec::new();

    if pods.is_empty() {
        checks.push(TakeoverCheck::hard_fail(
            CheckKind::PodsExist,
            format!("no running pod matches {selector}"),
        ));
    } else {
        let owners = takeover.gateway_names();
        let owned_by = if owners.is_empty() {
            String::new()
        } else {
            let names: Vec<&str> = owners.iter().map(String::as_str).collect();
            format!(" ({})", name_list(&names))
        };
        checks.push(TakeoverCheck::pass(
            CheckKind::PodsExist,
            format!("{} pods match {selector}{owned_by}", pods.len()),
        ));
    }

    let ready = pods.iter().filter(|p| p.ready).count();
    let not_ready: Vec<&str> = pods
        .iter()
        .filter(|p| !p.ready)
        .map(|p| p.name.as_str())
        .collect();
    checks.push(if ready == 0 {
        TakeoverCheck::hard_fail(CheckKind::PodsReady, "no Ready pods")
    } else if !not_ready.is_empty() {
        TakeoverCheck::soft_fail(
            CheckKind::PodsReady,
            format!(
                "{ready} of {} pods Ready (not Ready: {})",
                pods.len(),
                name_list(&not_ready)
            ),
        )
    } else {
        TakeoverCheck::pass(CheckKind::PodsReady, format!("all {ready} pods Ready"))
    });

    checks.push(rollout_check(takeover));
    let revision = takeover.target_revision(selector_value, control_plane);
    checks.push(proxy_check(takeover, revision.as_deref(), control_plane));
    checks.push(istiod_check(revision.as_deref(), control_plane));
    checks.push(ports_check(takeover, service));
    checks
}

fn rollout_check(takeover: &Takeover<'_>) -> TakeoverCheck {
    if takeover.gateways.is_empty() {
        return TakeoverCheck::soft_fail(
            CheckKind::RolledOut,
            "no gateway Deployment behind these pods",
        );
    }
    let mut problems = Vec::new();
    for g in &takeover.gateways {
        if g.stuck {
            problems.push(format!(
                "{}: rollout stuck (ProgressDeadlineExceeded)",
                g.name
            ));
        } else if let Some(why) = &g.rollout {
            problems.push(format!("{}: rollout in progress ({why})", g.name));
        }
    }
    let strays: Vec<&str> = takeover
        .pods
        .iter()
        .filter(|p| p.gateway.is_none())
        .map(|p| p.name.as_str())
        .collect();
    if !strays.is_empty() {
        problems.push(format!(
            "pods outside any gateway Deployment also match: {}",
            name_list(&strays)
        ));
    }
    if problems.is_empty() {
        let names: Vec<String> = takeover
            .gateways
            .iter()
            .map(|g| format!("{} ({}/{} Ready)", g.name, g.ready, g.desired))
            .collect();
        TakeoverCheck::pass(
            CheckKind::RolledOut,
            format!("rolled out: {}", names.join(", ")),
        )
    } else {
        TakeoverCheck::soft_fail(CheckKind::RolledOut, problems.join("; "))
    }
}

fn proxy_check(
    takeover: &Takeover<'_>,
    revision: Option<&str>,
    control_plane: &ControlPlane,
) -> TakeoverCheck {
    let Some(revision) = revision else {
        return TakeoverCheck::soft_fail(
            CheckKind::ProxyRevision,
            "cannot tell which revision these pods should run: the selector value is no revision or tag and the gateway templates do not agree on one",
        );
    };
    let expected_version = control_plane
        .revision(revision)
        .and_then(|r| r.proxy_version.clone());
    let mut wrong = Vec::new();
    for pod in &takeover.pods {
        if !pod.has_proxy {
            wrong.push(format!("{} runs no proxy", pod.name));
            continue;
        }
        let resolved = pod
            .revision
            .as_deref()
            .map(|r| control_plane.resolve(r).unwrap_or(r));
        if resolved != Some(revision) {
            wrong.push(format!(
                "{} runs revision {}'s proxy",
                pod.name,
                resolved.unwrap_or("?")
            ));
            continue;
        }
        if let (Some(running), Some(expected)) = (&pod.version, &expected_version) {
            if !same_version(running, expected) {
                wrong.push(format!(
                    "{} runs proxy {running}, revision {revision} injects {expected}",
                    pod.name
                ));
            }
        }
    }
    if takeover.pods.is_empty() {
        return TakeoverCheck::soft_fail(
            CheckKind::ProxyRevision,
            format!("no pods to run revision {revision}'s proxy"),
        );
    }
    if wrong.is_empty() {
        let version = expected_version
            .map(|v| format!(" ({v})"))
            .unwrap_or_default();
        TakeoverCheck::pass(
            CheckKind::ProxyRevision,
            format!(
                "all {} pods run revision {revision}'s proxy{version}",
                takeover.pods.len()
            ),
        )
    } else {
        let shown: Vec<&str> = wrong.iter().map(String::as_str).collect();
        TakeoverCheck::soft_fail(
            CheckKind::ProxyRevision,
            format!("not on revision {revision}: {}", name_list(&shown)),
        )
    }
}

fn istiod_check(revision: Option<&str>, control_plane: &ControlPlane) -> TakeoverCheck {
    let Some(revision) = revision else {
        return TakeoverCheck::soft_fail(CheckKind::IstiodReady, "no target revision to check");
    };
    match control_plane.revision(revision) {
        None => TakeoverCheck::soft_fail(
            CheckKind::IstiodReady,
            format!(
                "no istiod of revision {revision} in {}",
                control_plane.namespace
            ),
        ),
        Some(r) if !r.is_ready() => TakeoverCheck::soft_fail(
            CheckKind::IstiodReady,
            format!(
                "istiod {revision} has no Ready pod ({}/{})",
                r.ready, r.desired
            ),
        ),
        Some(r) => TakeoverCheck::pass(
            CheckKind::IstiodReady,
            format!("{} Ready ({}/{})", r.deployment, r.ready, r.desired),
        ),
    }
}

fn ports_check(takeover: &Takeover<'_>, service: &ServiceInfo) -> TakeoverCheck {
    if takeover.gateways.is_empty() {
        return TakeoverCheck::soft_fail(
            CheckKind::TargetPorts,
            "no gateway Deployment to check the target ports against",
        );
    }
    let targets: Vec<&str> = service
        .ports
        .iter()
        .map(|p| p.target_port.as_str())
        .collect();
    let mut problems = Vec::new();
    for g in &takeover.gateways {
        let missing: Vec<&str> = targets.iter().copied().filter(|t| !g.exposes(t)).collect();
        if !missing.is_empty() {
            problems.push(format!(
                "{} does not expose target port(s) {}",
                g.name,
                missing.join(", ")
            ));
        }
    }
    if problems.is_empty() {
        TakeoverCheck::pass(
            CheckKind::TargetPorts,
            format!("every target port exposed ({})", targets.join(", ")),
        )
    } else {
        TakeoverCheck::soft_fail(CheckKind::TargetPorts, problems.join("; "))
    }
}

fn endpoint_summary(
    snapshot: &ClusterSnapshot,
    service: &ServiceInfo,
    control_plane: &ControlPlane,
) -> EndpointSummary {
    let pods: HashMap<&str, &crate::snapshot::PodInfo> = snapshot
        .pods
        .iter()
        .filter(|p| p.namespace == service.namespace)
        .map(|p| (p.name.as_str(), p))
        .collect();
    let mut summary = EndpointSummary::default();
    let mut by_revision: BTreeMap<Option<String>, usize> = BTreeMap::new();
    for slice in snapshot.endpoint_slices.iter().filter(|s| {
        s.namespace == service.namespace && s.service_name.as_deref() == Some(&service.name)
    }) {
        for endpoint in &slice.endpoints {
            if !endpoint.ready {
                summary.not_ready += 1;
                continue;
            }
            summary.ready += 1;
            let revision = endpoint
                .pod
                .as_deref()
                .and_then(|name| pods.get(name))
                .and_then(|pod| pod_proxy(pod))
                .and_then(|proxy| proxy.revision)
                .map(|r| control_plane.resolve(&r).map(str::to_string).unwrap_or(r));
            *by_revision.entry(revision).or_default() += 1;
        }
    }
    summary.ready_by_revision = by_revision.into_iter().collect();
    summary
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::mesh::fixtures::{ClusterFixture, ProxySpec, WorkloadFixture};
    use crate::mesh::workloads::classify;

    const PORTS: &[(i32, &str)] = &[(80, "8080"), (443, "8443"), (15021, "status-port")];

    fn blue_green() -> ClusterFixture {
        ClusterFixture::new()
            .revision("1-21-2", "1.21.2")
            .revision("1-22-3", "1.22.3")
            .namespace("istio-gateways", &[])
            .workload(
                WorkloadFixture::deployment("istio-gateways", "gw-1-21-2")
                    .gateway("1-21-2")
                    .pods(2, ProxySpec::istio("1-21-2", "1.21.2")),
            )
            .service(
                "istio-gateways",
                "istio-ingressgateway",
                "LoadBalancer",
                &[("istio", "ingressgateway"), ("version", "1-21-2")],
                PORTS,
            )
            .endpoints(
                "istio-gateways",
                "istio-ingressgateway",
                &[
                    ("gw-1-21-2-5d8f7c9b4-p0", true),
                    ("gw-1-21-2-5d8f7c9b4-p1", true),
                ],
            )
    }

    fn services_of(fixture: ClusterFixture) -> Vec<GatewayService> {
        let snapshot = fixture.build();
        let cp = ControlPlane::from_snapshot(&snapshot);
        let c = classify(&snapshot, &cp);
        gateway_services(&snapshot, &gateways(&c), &cp)
    }

    #[test]
    fn the_load_balancer_reports_the_revision_it_selects_and_its_endpoints() {
        let services = services_of(blue_green());
        assert_eq!(services.len(), 1);
        let s = &services[0];
        assert_eq!(s.selector_key.as_deref(), Some("version"));
        assert_eq!(s.selected, vec!["gw-1-21-2"]);
        assert_eq!(s.selected_revisions, vec!["1-21-2"]);
        assert_eq!(s.endpoints.ready, 2);
        assert_eq!(
            s.endpoints.ready_by_revision,
            vec![(Some("1-21-2".to_string()), 2)]
        );
        assert!(s.candidates.is_empty());
    }

    #[test]
    fn a_ready_gateway_of_another_revision_is_a_switch_candidate() {
        let services = services_of(
            blue_green().workload(
                WorkloadFixture::deployment("istio-gateways", "gw-1-22-3")
                    .gateway("1-22-3")
                    .pods(2, ProxySpec::istio("1-22-3", "1.22.3")),
            ),
        );
        let candidate = &services[0].candidates[0];
        assert_eq!(candidate.deployment, "gw-1-22-3");
        assert_eq!(candidate.selector_value, "1-22-3");
        assert!(candidate.is_ready(), "{:?}", candidate.problems);
    }

    #[test]
    fn an_unready_or_portless_gateway_cannot_take_over() {
        let services = services_of(
            blue_green()
                .workload(
                    WorkloadFixture::deployment("istio-gateways", "gw-1-22-3")
                        .gateway("1-22-3")
                        .pods(2, ProxySpec::istio("1-22-3", "1.22.3"))
                        .unready_pods(1),
                )
                .edit(|s| {
                    let svc = s
                        .services
                        .iter_mut()
                        .find(|s| s.name == "istio-ingressgateway")
                        .unwrap();
                    svc.ports.push(crate::snapshot::ServicePortInfo {
                        name: Some("tls".into()),
                        port: 15443,
                        target_port: "15443".into(),
                        protocol: "TCP".into(),
                        node_port: None,
                    });
                }),
        );
        let problems = &services[0].candidates[0].problems;
        assert!(
            problems.iter().any(|p| p.starts_with("1 of 2 pods Ready")),
            "{problems:?}"
        );
        assert!(problems.iter().any(|p| p.contains("15443")), "{problems:?}");
    }

    #[test]
    fn a_load_balancer_selecting_no_gateway_is_still_reported() {
        let services = services_of(blue_green().edit(|s| {
            let svc = s
                .services
                .iter_mut()
                .find(|s| s.name == "istio-ingressgateway")
                .unwrap();
            svc.selector.insert("version".into(), "1-20-0".into());
            s.endpoint_slices.clear();
        }));
        assert_eq!(services.len(), 1);
        assert!(services[0].selected.is_empty());
        assert_eq!(
            services[0].candidates.len(),
            1,
            "the 1-21-2 gateway can take over"
        );
    }

    #[test]
    fn cluster_ip_services_are_not_gateway_services() {
        let services = services_of(blue_green().service(
            "istio-gateways",
            "gw-1-21-2",
            "ClusterIP",
            &[("istio", "ingressgateway"), ("version", "1-21-2")],
            PORTS,
        ));
        assert_eq!(services.len(), 1);
    }
}
