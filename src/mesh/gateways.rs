//! Gateways: the gateway Deployments of each revision, and the external
//! Services (LoadBalancer/NodePort) in front of them.
//!
//! Blue/green gateways (seed 001) run one gateway Deployment per revision,
//! each with its own value of a selector key (usually `version`), behind one
//! LoadBalancer Service whose selector picks one of them. Cutting over means
//! changing that one value. [`gateway_services`] says which revision each
//! Service selects now (from its selector against the gateway templates, and
//! from the pods its EndpointSlices list); [`switch_candidates`] says which
//! other gateway could take over and what stops it. `status` shows both and
//! `gateway-switch` runs its prechecks on the same values.

use std::collections::{BTreeMap, HashMap};

use crate::mesh::control_plane::ControlPlane;
use crate::mesh::proxy::pod_proxy;
use crate::mesh::workloads::{Classification, ProxyGroup, Workload, WorkloadKind, WorkloadState};
use crate::snapshot::{ClusterSnapshot, ContainerPortInfo, Labels, ServiceInfo};

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
    /// Every container port its template declares.
    pub ports: Vec<ContainerPortInfo>,
}

impl Gateway {
    fn from_workload(w: &Workload) -> Self {
        let version = w
            .proxies
            .iter()
            .max_by_key(|g| g.pods)
            .and_then(|g| g.version.clone());
        Gateway {
            namespace: w.namespace.clone(),
            name: w.name.clone(),
            istio_label: w.template.labels.get("istio").cloned(),
            template_labels: w.template.labels.clone(),
            revision: w.expected_revision().map(str::to_string).or_else(|| {
                w.proxies
                    .iter()
                    .max_by_key(|g| g.pods)
                    .and_then(|g| g.revision.clone())
            }),
            version,
            proxies: w.proxies.clone(),
            desired: w.desired,
            ready: w.ready,
            state: w.state,
            rolled_out: w.rollout_in_progress.is_none(),
            ports: w
                .template
                .containers
                .iter()
                .flat_map(|c| c.ports.clone())
                .collect(),
        }
    }

    /// Whether it declares a container port for `target_port` (a number or a name).
    pub fn exposes(&self, target_port: &str) -> bool {
        match target_port.parse::<i32>() {
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
                Some(key) => switch_candidates(gateways, service, key, control_plane),
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
/// different value for the key. Each says what stops it, if anything.
pub fn switch_candidates(
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
            Some(SwitchCandidate {
                namespace: g.namespace.clone(),
                deployment: g.name.clone(),
                revision: g.revision.clone(),
                version: g.version.clone(),
                selector_key: selector_key.to_string(),
                selector_value: value.clone(),
                ready: g.ready,
                desired: g.desired,
                problems: candidate_problems(g, service, control_plane),
            })
        })
        .collect()
}

fn candidate_problems(
    g: &Gateway,
    service: &ServiceInfo,
    control_plane: &ControlPlane,
) -> Vec<String> {
    let mut problems = Vec::new();
    if g.desired == 0 || g.ready == 0 {
        problems.push("no Ready pods".to_string());
    } else if g.ready < g.desired {
        problems.push(format!("{} of {} pods Ready", g.ready, g.desired));
    }
    if !g.rolled_out {
        problems.push("rollout in progress".to_string());
    }
    match g.state {
        WorkloadState::UpToDate | WorkloadState::Rolling => {}
        other => problems.push(format!(
            "its pods do not run revision {}'s proxy ({other})",
            g.revision.as_deref().unwrap_or("?")
        )),
    }
    if let Some(revision) = &g.revision {
        if control_plane
            .revision(revision)
            .is_some_and(|r| !r.is_ready())
        {
            problems.push(format!("istiod {revision} has no Ready pod"));
        }
    }
    let missing: Vec<&str> = service
        .ports
        .iter()
        .map(|p| p.target_port.as_str())
        .filter(|t| !g.exposes(t))
        .collect();
    if !missing.is_empty() {
        problems.push(format!(
            "does not expose target port(s) {}",
            missing.join(", ")
        ));
    }
    problems
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
            problems.iter().any(|p| p == "1 of 2 pods Ready"),
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
