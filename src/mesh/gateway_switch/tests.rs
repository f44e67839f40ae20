//! The switch plan on fixture clusters: the exact patches, every precheck
//! failing alone, rollback, discovery, and endpoint convergence.

use chrono::TimeZone;
use serde_json::json;

use super::*;
use crate::mesh::fixtures::{ClusterFixture, PodFixture, ProxySpec, WorkloadFixture};
use crate::mesh::gateways::gateways;
use crate::mesh::workloads::classify;
use crate::render::gateway_switch::plan_text;
use crate::snapshot::{EndpointRef, ServicePortInfo};

const NS: &str = "istio-gateways";
const SVC: &str = "istio-ingressgateway";
const PORTS: &[(i32, &str)] = &[(80, "8080"), (443, "https"), (15021, "status-port")];

fn now() -> DateTime<Utc> {
    Utc.with_ymd_and_hms(2024, 6, 1, 12, 0, 0)
        .single()
        .expect("a valid time")
}

fn blue() -> WorkloadFixture {
    WorkloadFixture::deployment(NS, "istio-ingressgateway-1-21-2")
        .gateway("1-21-2")
        .pods(2, ProxySpec::istio("1-21-2", "1.21.2"))
}

fn green() -> WorkloadFixture {
    WorkloadFixture::deployment(NS, "istio-ingressgateway-1-22-3")
        .gateway("1-22-3")
        .pods(2, ProxySpec::istio("1-22-3", "1.22.3"))
}

/// Blue/green as in seed 001, without the green gateway.
fn cluster_with(green: WorkloadFixture) -> ClusterFixture {
    ClusterFixture::new()
        .revision("1-21-2", "1.21.2")
        .revision("1-22-3", "1.22.3")
        .namespace(NS, &[])
        .workload(blue())
        .workload(green)
        .service(
            NS,
            SVC,
            "LoadBalancer",
            &[("istio", "ingressgateway"), ("version", "1-21-2")],
            PORTS,
        )
}

fn blue_green() -> ClusterFixture {
    cluster_with(green())
}

fn to(value: &str) -> SwitchRequest {
    SwitchRequest::To {
        selector_key: "version".into(),
        value: value.into(),
    }
}

struct Case {
    fixture: ClusterFixture,
    previous: Option<String>,
    readable: bool,
}

impl Case {
    fn new(fixture: ClusterFixture) -> Self {
        Case {
            fixture,
            previous: None,
            readable: true,
        }
    }

    fn previous(mut self, record: &str) -> Self {
        self.previous = Some(record.into());
        self
    }

    fn plan(self, request: SwitchRequest, force: bool) -> SwitchPlan {
        let snapshot = self.fixture.build();
        let cp = ControlPlane::from_snapshot(&snapshot);
        let gws = gateways(&classify(&snapshot, &cp));
        let info = snapshot
            .services
            .iter()
            .find(|s| s.name == SVC)
            .expect("the Service")
            .clone();
        let state = ServiceState {
            info,
            resource_version: "4711".into(),
            previous_selector: self.previous,
            switched_at: None,
            field_managers: Vec::new(),
        };
        let options = SwitchOptions {
            request,
            force,
            endpoint_slices_readable: self.readable,
        };
        plan(&snapshot, &gws, &cp, &state, &options, now())
    }
}

/// The blue → green switch of seed 001, planned on the Service at
/// resourceVersion 4711 (for the engine's tests).
pub(crate) fn blue_to_green_plan() -> SwitchPlan {
    Case::new(blue_green()).plan(to("1-22-3"), false)
}

fn check(plan: &SwitchPlan, kind: CheckKind) -> &TakeoverCheck {
    plan.prechecks
        .iter()
        .find(|c| c.check == kind)
        .unwrap_or_else(|| panic!("no {kind} check in {:#?}", plan.prechecks))
}

#[test]
fn a_clean_switch_changes_only_the_revision_value_and_records_the_previous_selector() {
    let plan = Case::new(blue_green()).plan(to("1-22-3"), false);
    assert_eq!(plan.verdict, Verdict::Proceed, "{:#?}", plan.prechecks);
    assert!(plan.prechecks.iter().all(|c| c.passed));
    let action = plan.action.as_ref().expect("a patch");
    assert_eq!(action.target, "service/istio-ingressgateway");
    assert_eq!(action.patch_type, "application/merge-patch+json");
    assert_eq!(
        action.write.body_to_send(),
        json!({
            "metadata": {
                "resourceVersion": "4711",
                "annotations": {
                    "mesh-upgrade.io/previous-selector": r#"{"istio":"ingressgateway","version":"1-21-2"}"#,
                    "mesh-upgrade.io/switched-at": "2024-06-01T12:00:00Z",
                },
            },
            "spec": {"selector": {"version": "1-22-3"}},
        })
    );
    assert_eq!(
        action.undo.body_to_send(),
        json!({
            "metadata": {"annotations": {
                "mesh-upgrade.io/previous-selector": null,
                "mesh-upgrade.io/switched-at": null,
            }},
            "spec": {"selector": {"version": "1-21-2"}},
        }),
        "the switch-back leaves the Service exactly as it was"
    );
    assert_eq!(plan.target_revision.as_deref(), Some("1-22-3"));
    assert_eq!(plan.target_gateways, ["istio-ingressgateway-1-22-3"]);
    assert_eq!(plan.from_revisions, ["1-21-2"]);
    assert_eq!(plan.verify.pods.len(), 2);
    assert!(plan.verify.pods.keys().all(|p| p.contains("1-22-3")));
    assert!(
        plan.verify_rollback
            .pods
            .keys()
            .all(|p| p.contains("1-21-2"))
    );
    assert_eq!(plan.changes(), 1);
}

#[test]
fn extra_selector_keys_are_kept_out_of_the_patch_and_in_the_target() {
    let fixture = blue_green().edit(|s| {
        let svc = s.services.iter_mut().find(|s| s.name == SVC).unwrap();
        svc.selector
            .insert("app".into(), "istio-ingressgateway".into());
    });
    let plan = Case::new(fixture).plan(to("1-22-3"), false);
    assert_eq!(plan.verdict, Verdict::Proceed, "{:#?}", plan.prechecks);
    let patch = &plan.action.as_ref().unwrap().write.body_to_send();
    assert_eq!(patch["spec"], json!({"selector": {"version": "1-22-3"}}));
    assert_eq!(
        plan.to_selector.get("app").map(String::as_str),
        Some("istio-ingressgateway")
    );
    assert_eq!(
        patch["metadata"]["annotations"]["mesh-upgrade.io/previous-selector"],
        r#"{"app":"istio-ingressgateway","istio":"ingressgateway","version":"1-21-2"}"#
    );
}

#[test]
fn a_target_without_pods_is_refused_even_with_force_and_the_gateways_are_named() {
    for force in [false, true] {
        let plan = Case::new(blue_green()).plan(to("1-9-9"), force);
        assert_eq!(plan.verdict, Verdict::Refused);
        let pods = check(&plan, CheckKind::PodsExist);
        assert!(!pods.passed && pods.hard);
        assert!(
            pods.reason.contains("version=1-21-2, 1-22-3"),
            "{}",
            pods.reason
        );
        assert!(check(&plan, CheckKind::PodsReady).hard);
        assert_eq!(plan.changes(), 0);
        let refusal = plan.refusal().unwrap();
        assert!(
            refusal.starts_with(
                "refusing to switch Service istio-gateways/istio-ingressgateway to istio=ingressgateway,version=1-9-9: pods-exist: no running pod matches"
            ),
            "{refusal}"
        );
    }
}

#[test]
fn some_unready_pods_refuse_unless_forced_but_none_ready_refuses_always() {
    let plan = Case::new(cluster_with(green().unready_pods(1))).plan(to("1-22-3"), false);
    assert_eq!(plan.verdict, Verdict::Refused);
    let ready = check(&plan, CheckKind::PodsReady);
    assert!(!ready.passed && !ready.hard);
    assert!(
        ready
            .reason
            .starts_with("1 of 2 pods Ready (not Ready: istio-ingressgateway-1-22-3-")
    );
    assert!(
        plan.refusal()
            .unwrap()
            .contains("(--force overrides pods-ready")
    );

    let forced = Case::new(cluster_with(green().unready_pods(1))).plan(to("1-22-3"), true);
    assert_eq!(forced.verdict, Verdict::Forced);
    assert_eq!(forced.changes(), 1);
    assert_eq!(forced.overridden().len(), 2, "pods-ready and rolled-out");
    let unready = forced.verify.pods.values().filter(|r| !**r).count();
    assert_eq!(unready, 1, "the unready pod is remembered as such");

    let none = Case::new(cluster_with(green().unready_pods(2))).plan(to("1-22-3"), true);
    assert_eq!(none.verdict, Verdict::Refused);
    let ready = check(&none, CheckKind::PodsReady);
    assert!(ready.hard, "{ready:?}");
    assert_eq!(
        none.refusal().unwrap(),
        "refusing to switch Service istio-gateways/istio-ingressgateway to istio=ingressgateway,version=1-22-3: pods-ready: no Ready pods"
    );
    let none = Case::new(cluster_with(green().unready_pods(2))).plan(to("1-22-3"), false);
    assert!(
        none.refusal()
            .unwrap()
            .ends_with("pods-ready: no Ready pods; also failed: rolled-out"),
        "{}",
        none.refusal().unwrap()
    );
}

#[test]
fn a_rollout_in_progress_is_refused() {
    let plan = Case::new(cluster_with(green().updated(1))).plan(to("1-22-3"), false);
    assert_eq!(plan.verdict, Verdict::Refused);
    let rollout = check(&plan, CheckKind::RolledOut);
    assert!(!rollout.passed);
    assert!(
        rollout
            .reason
            .contains("istio-ingressgateway-1-22-3: rollout in progress (1 of 2 replicas updated)"),
        "{}",
        rollout.reason
    );
}

#[test]
fn pods_on_another_revisions_proxy_are_refused() {
    let green_on_old_proxy = WorkloadFixture::deployment(NS, "istio-ingressgateway-1-22-3")
        .gateway("1-22-3")
        .pods(2, ProxySpec::istio("1-21-2", "1.21.2"));
    let plan = Case::new(cluster_with(green_on_old_proxy)).plan(to("1-22-3"), false);
    assert_eq!(plan.verdict, Verdict::Refused);
    let proxy = check(&plan, CheckKind::ProxyRevision);
    assert!(!proxy.passed && !proxy.hard);
    assert!(
        proxy
            .reason
            .starts_with("not on revision 1-22-3: istio-ingressgateway-1-22-3-")
            && proxy.reason.contains("runs revision 1-21-2's proxy"),
        "{}",
        proxy.reason
    );
}

#[test]
fn a_target_revision_whose_istiod_is_not_ready_is_refused() {
    let plan = Case::new(blue_green().unready("1-22-3")).plan(to("1-22-3"), false);
    let istiod = check(&plan, CheckKind::IstiodReady);
    assert!(!istiod.passed);
    assert_eq!(istiod.reason, "istiod 1-22-3 has no Ready pod (0/1)");
    assert_eq!(plan.verdict, Verdict::Refused);
}

#[test]
fn a_target_port_the_gateway_does_not_expose_is_refused() {
    let fixture = blue_green().edit(|s| {
        let svc = s.services.iter_mut().find(|s| s.name == SVC).unwrap();
        svc.ports.push(ServicePortInfo {
            name: Some("tls".into()),
            port: 15443,
            target_port: "15443".into(),
            protocol: "TCP".into(),
            node_port: None,
        });
    });
    let plan = Case::new(fixture).plan(to("1-22-3"), false);
    let ports = check(&plan, CheckKind::TargetPorts);
    assert_eq!(
        ports.reason,
        "istio-ingressgateway-1-22-3 does not expose target port(s) 15443"
    );
    assert_eq!(plan.verdict, Verdict::Refused);
}

#[test]
fn named_and_numbered_target_ports_are_both_checked() {
    let plan = Case::new(blue_green()).plan(to("1-22-3"), false);
    assert_eq!(
        check(&plan, CheckKind::TargetPorts).reason,
        "every target port exposed (8080, https, status-port)"
    );
}

#[test]
fn stray_pods_matching_the_new_selector_are_flagged() {
    let fixture = blue_green().pod(
        PodFixture::new(NS, "hand-made")
            .label("istio", "ingressgateway")
            .label("version", "1-22-3")
            .spec(&ProxySpec::istio("1-22-3", "1.22.3")),
    );
    let plan = Case::new(fixture).plan(to("1-22-3"), false);
    assert!(
        check(&plan, CheckKind::RolledOut)
            .reason
            .contains("pods outside any gateway Deployment also match: hand-made")
    );
    assert_eq!(plan.target_pods.len(), 3);
}

#[test]
fn a_selector_without_the_revision_key_is_refused_with_the_keys_it_has() {
    let plan = Case::new(blue_green()).plan(
        SwitchRequest::To {
            selector_key: "istio.io/rev".into(),
            value: "1-22-3".into(),
        },
        true,
    );
    let key = check(&plan, CheckKind::SelectorKey);
    assert!(key.hard && !key.passed);
    assert!(
        key.reason.ends_with(
            "pass --selector-key with the key that names the revision (it has istio, version)"
        ),
        "{}",
        key.reason
    );
    assert_eq!(plan.verdict, Verdict::Refused);
}

#[test]
fn unreadable_endpoint_slices_refuse_because_nothing_could_be_verified() {
    let mut case = Case::new(blue_green());
    case.readable = false;
    let plan = case.plan(to("1-22-3"), true);
    assert!(check(&plan, CheckKind::EndpointsReadable).hard);
    assert_eq!(plan.verdict, Verdict::Refused);
}

#[test]
fn switching_to_the_selected_value_is_nothing_to_do() {
    let plan = Case::new(blue_green()).plan(to("1-21-2"), false);
    assert_eq!(plan.verdict, Verdict::AlreadySelected);
    assert_eq!(plan.changes(), 0);
    assert!(plan.action.is_none());
}

/// The Service after a switch to 1-22-3.
fn switched() -> ClusterFixture {
    blue_green().edit(|s| {
        let svc = s.services.iter_mut().find(|s| s.name == SVC).unwrap();
        svc.selector.insert("version".into(), "1-22-3".into());
    })
}

#[test]
fn rollback_restores_the_recorded_selector_and_records_the_replaced_one() {
    let plan = Case::new(switched())
        .previous(r#"{"istio":"ingressgateway","version":"1-21-2"}"#)
        .plan(SwitchRequest::Rollback, false);
    assert_eq!(plan.mode, SwitchMode::Rollback);
    assert_eq!(plan.verdict, Verdict::Proceed, "{:#?}", plan.prechecks);
    assert_eq!(plan.selector_key.as_deref(), Some("version"));
    assert_eq!(plan.target_revision.as_deref(), Some("1-21-2"));
    assert_eq!(
        plan.action.as_ref().unwrap().write.body_to_send(),
        json!({
            "metadata": {
                "resourceVersion": "4711",
                "annotations": {
                    "mesh-upgrade.io/previous-selector": r#"{"istio":"ingressgateway","version":"1-22-3"}"#,
                    "mesh-upgrade.io/switched-at": "2024-06-01T12:00:00Z",
                },
            },
            "spec": {"selector": {"version": "1-21-2"}},
        })
    );
    assert_eq!(
        plan.question(),
        "Roll Service istio-gateways/istio-ingressgateway back to istio=ingressgateway,version=1-21-2?"
    );
}

#[test]
fn rollback_removes_keys_the_recorded_selector_did_not_have() {
    let fixture = switched().edit(|s| {
        let svc = s.services.iter_mut().find(|s| s.name == SVC).unwrap();
        svc.selector.insert("tier".into(), "edge".into());
    });
    let plan = Case::new(fixture)
        .previous(r#"{"istio":"ingressgateway","version":"1-21-2"}"#)
        .plan(SwitchRequest::Rollback, false);
    assert_eq!(
        plan.action.as_ref().unwrap().write.body_to_send()["spec"],
        json!({"selector": {"tier": null, "version": "1-21-2"}})
    );
    assert_eq!(plan.selector_key, None);
}

#[test]
fn rollback_without_a_record_is_refused_and_says_why() {
    let plan = Case::new(switched()).plan(SwitchRequest::Rollback, true);
    assert_eq!(plan.verdict, Verdict::Refused);
    assert!(plan.action.is_none());
    assert_eq!(
        plan.refusal().unwrap(),
        "refusing to roll back Service istio-gateways/istio-ingressgateway: previous-selector: the Service has no mesh-upgrade.io/previous-selector annotation: no switch by kubectl mesh-upgrade was recorded, so there is nothing to roll back to"
    );
    let garbled = Case::new(switched())
        .previous("version=1-21-2")
        .plan(SwitchRequest::Rollback, false);
    assert!(
        garbled.refusal().unwrap().contains("is not a JSON object"),
        "{}",
        garbled.refusal().unwrap()
    );
}

#[test]
fn the_status_candidate_and_the_switch_prechecks_agree() {
    for fixture in [
        blue_green(),
        cluster_with(green().unready_pods(1)),
        cluster_with(green().updated(1)),
        blue_green().unready("1-22-3"),
    ] {
        let snapshot = fixture.build();
        let cp = ControlPlane::from_snapshot(&snapshot);
        let gws = gateways(&classify(&snapshot, &cp));
        let service = &gateway_services(&snapshot, &gws, &cp)[0];
        let candidate = &service.candidates[0];
        let info = snapshot.services.iter().find(|s| s.name == SVC).unwrap();
        let state = ServiceState {
            info: info.clone(),
            resource_version: "1".into(),
            previous_selector: None,
            switched_at: None,
            field_managers: Vec::new(),
        };
        let options = SwitchOptions {
            request: to(&candidate.selector_value),
            force: false,
            endpoint_slices_readable: true,
        };
        let plan = plan(&snapshot, &gws, &cp, &state, &options, now());
        let failed: Vec<String> = plan
            .prechecks
            .iter()
            .filter(|c| !c.passed)
            .map(|c| c.reason.clone())
            .collect();
        assert_eq!(failed, candidate.problems);
        assert_eq!(candidate.is_ready(), plan.verdict == Verdict::Proceed);
    }
}

#[test]
fn one_gateway_service_is_found_and_two_are_listed() {
    let snapshot = blue_green().build();
    let cp = ControlPlane::from_snapshot(&snapshot);
    let gws = gateways(&classify(&snapshot, &cp));
    assert_eq!(discover_service(&snapshot, &gws, &cp, NS).unwrap(), SVC);

    let two = blue_green()
        .service(
            NS,
            "istio-ingressgateway-internal",
            "NodePort",
            &[("istio", "ingressgateway"), ("version", "1-21-2")],
            PORTS,
        )
        .build();
    let gws = gateways(&classify(&two, &cp));
    let err = discover_service(&two, &gws, &cp, NS).unwrap_err();
    assert_eq!(err.exit_code(), crate::error::ExitCode::Usage);
    assert_eq!(
        err.to_string(),
        "2 Services in namespace istio-gateways select gateway pods; pass --service NAME with one of: istio-ingressgateway (LoadBalancer, selector istio=ingressgateway,version=1-21-2); istio-ingressgateway-internal (NodePort, selector istio=ingressgateway,version=1-21-2)"
    );

    let err = discover_service(&snapshot, &gws, &cp, "shop").unwrap_err();
    assert!(
        err.to_string().starts_with(
            "no LoadBalancer or NodePort Service in namespace shop selects gateway pods"
        )
    );
}

fn slice(endpoints: &[(Option<&str>, bool)]) -> EndpointSliceInfo {
    EndpointSliceInfo {
        namespace: NS.into(),
        name: format!("{SVC}-abcde"),
        service_name: Some(SVC.into()),
        endpoints: endpoints
            .iter()
            .map(|(pod, ready)| EndpointRef {
                pod: pod.map(str::to_string),
                ready: *ready,
            })
            .collect(),
    }
}

fn target() -> EndpointTarget {
    EndpointTarget {
        selector: Labels::from([("version".to_string(), "1-22-3".to_string())]),
        pods: BTreeMap::from([
            ("green-a".to_string(), true),
            ("green-b".to_string(), false),
        ]),
    }
}

#[test]
fn endpoints_converge_when_only_ready_target_pods_are_listed() {
    let none = BTreeMap::new();
    let view = endpoint_view(&[slice(&[(Some("green-a"), true)])], &target(), &none);
    assert!(view.converged(), "{view:?}");

    let old_still_there = endpoint_view(
        &[slice(&[(Some("green-a"), true), (Some("blue-a"), true)])],
        &target(),
        &BTreeMap::from([("blue-a".to_string(), false)]),
    );
    assert!(!old_still_there.converged());
    assert_eq!(old_still_there.foreign, ["blue-a"]);

    let unready = endpoint_view(&[slice(&[(Some("green-a"), false)])], &target(), &none);
    assert!(!unready.converged());
    assert_eq!(unready.describe(), "0 Ready; 1 not Ready (green-a)");

    let tolerated = endpoint_view(
        &[slice(&[(Some("green-a"), true), (Some("green-b"), false)])],
        &target(),
        &none,
    );
    assert!(tolerated.converged(), "green-b was not Ready when planned");

    let new_pod = endpoint_view(&[slice(&[(Some("green-c"), true)])], &target(), &none);
    assert_eq!(new_pod.unknown, ["green-c"]);
    assert!(!new_pod.converged());
    let looked_up = BTreeMap::from([("green-c".to_string(), true)]);
    assert!(endpoint_view(&[slice(&[(Some("green-c"), true)])], &target(), &looked_up).converged());

    assert!(
        !endpoint_view(&[], &target(), &none).converged(),
        "no endpoints at all"
    );
    let podless = endpoint_view(
        &[slice(&[(Some("green-a"), true), (None, true)])],
        &target(),
        &none,
    );
    assert_eq!(podless.foreign, ["1 endpoint without a pod"]);
}

#[test]
fn a_pod_in_two_slices_counts_once_and_ready_only_if_ready_in_both() {
    let view = endpoint_view(
        &[
            slice(&[(Some("green-a"), true)]),
            slice(&[(Some("green-a"), false)]),
        ],
        &target(),
        &BTreeMap::new(),
    );
    assert_eq!(view.not_ready, ["green-a"]);
    assert!(view.ready.is_empty());
}

#[test]
fn the_plan_text_shows_selectors_checks_patch_and_what_follows_within_100_columns() {
    let plan = Case::new(cluster_with(green().unready_pods(1))).plan(to("1-22-3"), true);
    let at_100 = crate::render::Layout::at(100);
    let text = plan_text(&plan, std::time::Duration::from_secs(120), false, &at_100);
    for line in text.lines() {
        assert!(
            line.chars().count() <= 100 || line.starts_with("  {"),
            "too wide: {line:?}"
        );
    }
    assert!(text.starts_with(
        "Service istio-gateways/istio-ingressgateway (LoadBalancer)\n  selector now  istio=ingressgateway,version=1-21-2  (revision 1-21-2)\n  switch to     istio=ingressgateway,version=1-22-3  (revision 1-22-3: istio-ingressgateway-1-22-3,\n                1 of 2 pods Ready)\n"
    ), "{text}");
    assert!(text.contains("\nPRECHECK            RESULT  DETAIL\nselector-key        ok      version picks the revision (now 1-21-2)\n"), "{text}");
    assert!(
        text.contains("\npods-ready          forced  1 of 2 pods Ready"),
        "{text}"
    );
    assert!(
        text.contains(
            "\nPATCH service/istio-ingressgateway (application/merge-patch+json)\n  {\"metadata\":"
        ),
        "{text}"
    );
    assert!(
        text.contains("--force overrides pods-ready, rolled-out. After the patch, waits up to 2m"),
        "{text}"
    );

    let refused = Case::new(blue_green()).plan(to("1-9-9"), false);
    let text = plan_text(
        &refused,
        std::time::Duration::from_secs(120),
        false,
        &at_100,
    );
    assert!(!text.contains("PATCH"), "{text}");
    assert!(text.contains("FAIL"), "{text}");
    assert!(
        text.trim_end()
            .ends_with("Refused: 6 prechecks failed; nothing will be changed."),
        "{text}"
    );
}
