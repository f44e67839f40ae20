//! The Gateway API model on snapshots: the `canary` scenario as mesh-sim
//! builds it (its istiods, tags, the Gateway `edge/public` and the waypoint
//! `ambient-apps/waypoint`), changed the way a person or istiod would change
//! it and read back through the one assembly, and on plain labels.

use serde_json::json;

use super::*;
use crate::mesh::fixtures::{
    canary_world, edit_object, edit_status, namespace, snapshot_from_world,
};
use crate::snapshot::Scope;
use mesh_sim::resources::kinds;
use mesh_sim::world::{SimConfig, World, WriteOptions};

fn assessed(world: &World) -> Vec<GatewayApiGateway> {
    let snapshot = snapshot_from_world(world, Scope::All);
    let control_plane = ControlPlane::from_snapshot(&snapshot);
    gateway_api_gateways(&snapshot, &control_plane)
}

fn find<'a>(gateways: &'a [GatewayApiGateway], ns: &str, name: &str) -> &'a GatewayApiGateway {
    gateways
        .iter()
        .find(|g| g.info.namespace == ns && g.info.name == name)
        .unwrap_or_else(|| panic!("{ns}/{name} is assessed: {gateways:#?}"))
}

fn control_plane() -> ControlPlane {
    let world = canary_world();
    ControlPlane::from_snapshot(&snapshot_from_world(&world, Scope::All))
}

fn labels(pairs: &[(&str, &str)]) -> Labels {
    pairs
        .iter()
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .collect()
}

#[test]
fn the_gateways_own_label_wins_then_its_namespaces_then_the_default_tag() {
    let cp = control_plane();
    let labelled = namespace("edge", &[("istio.io/rev", "prod-stable")]);
    let own = serving_revision(&labels(&[("istio.io/rev", "1-22-3")]), Some(&labelled), &cp);
    assert_eq!(own.source, RevisionSource::Gateway);
    assert_eq!(own.revision.as_deref(), Some("1-22-3"));

    let inherited = serving_revision(&Labels::new(), Some(&labelled), &cp);
    assert_eq!(inherited.source, RevisionSource::Namespace);
    assert_eq!(inherited.label.as_deref(), Some("prod-stable"));
    assert_eq!(
        inherited.revision.as_deref(),
        Some("1-21-2"),
        "a tag names its revision"
    );

    let plain = namespace("plain", &[]);
    let default = serving_revision(&Labels::new(), Some(&plain), &cp);
    assert_eq!(default.source, RevisionSource::Default);
    assert_eq!(
        default.revision.as_deref(),
        Some("1-21-2"),
        "the default tag"
    );
}

#[test]
fn istio_injection_on_the_namespace_plays_no_part_and_an_unknown_label_resolves_to_nothing() {
    let cp = control_plane();
    // istio-injection=enabled is for sidecars; istiod's gateway controller
    // reads only istio.io/rev.
    let legacy = namespace("legacy", &[("istio-injection", "disabled")]);
    let choice = serving_revision(&Labels::new(), Some(&legacy), &cp);
    assert_eq!(choice.source, RevisionSource::Default);
    assert_eq!(choice.revision.as_deref(), Some("1-21-2"));

    let typo = serving_revision(&labels(&[("istio.io/rev", "1-22-4")]), None, &cp);
    assert_eq!(typo.label.as_deref(), Some("1-22-4"));
    assert_eq!(typo.revision, None);
}

#[test]
fn the_canary_scenarios_gateway_and_waypoint_are_up_to_date_on_1_21_2() {
    let world = canary_world();
    let gateways = assessed(&world);
    let public = find(&gateways, "edge", "public");
    assert_eq!(public.kind, GatewayKind::Ingress);
    assert_eq!(public.state, GatewayApiState::UpToDate, "{public:#?}");
    assert_eq!(public.choice.source, RevisionSource::Gateway);
    assert_eq!(public.choice.label.as_deref(), Some("prod-stable"));
    assert_eq!(public.rendered_name, "public-istio");
    assert_eq!(public.expected_version.as_deref(), Some("1.21.2"));
    let deployment = public.deployment.as_ref().expect("rendered");
    assert_eq!(deployment.rendered_by.as_deref(), Some("1-21-2"));
    assert!(public.programmed());
    assert_eq!(
        public.service.as_ref().map(|s| s.type_.as_str()),
        Some("LoadBalancer")
    );

    let waypoint = find(&gateways, "ambient-apps", "waypoint");
    assert_eq!(waypoint.kind, GatewayKind::Waypoint);
    assert_eq!(waypoint.rendered_name, "waypoint");
    assert_eq!(waypoint.state, GatewayApiState::UpToDate, "{waypoint:#?}");
}

#[test]
fn a_gateway_moved_but_not_yet_re_rendered_is_stale_and_says_who_rendered_it() {
    let mut world = canary_world();
    // The label is written; istiod has not reconciled yet.
    edit_object(&mut world, kinds::gateways(), "edge", "public", |g| {
        g["metadata"]["labels"] = json!({"istio.io/rev": "1-22-3"});
    });
    let gateways = assessed(&world);
    let public = find(&gateways, "edge", "public");
    assert_eq!(public.state, GatewayApiState::Stale);
    assert_eq!(public.choice.revision.as_deref(), Some("1-22-3"));
    assert_eq!(public.expected_version.as_deref(), Some("1.22.3"));
    assert_eq!(public.stale_pods, 1);
    assert!(
        public.problems[0].contains("rendered by 1-21-2"),
        "{:?}",
        public.problems
    );
    assert!(
        public.problems[1].contains("1 of 1 pods run 1.21.2, 1-22-3 renders 1.22.3"),
        "{:?}",
        public.problems
    );
}

#[test]
fn a_re_rendered_gateway_whose_new_pods_are_not_ready_yet_is_stale_with_its_rollout() {
    let mut world = canary_world();
    world.clock.set_speed(0.0);
    edit_object(&mut world, kinds::gateways(), "edge", "public", |g| {
        g["metadata"]["labels"] = json!({"istio.io/rev": "1-22-3"});
    });
    // One pass: istiod re-renders, the new pod starts but is not Ready.
    mesh_sim::controllers::reconcile(&mut world);
    let gateways = assessed(&world);
    let public = find(&gateways, "edge", "public");
    let deployment = public.deployment.as_ref().expect("rendered");
    assert_eq!(deployment.rendered_by.as_deref(), Some("1-22-3"));
    assert!(!deployment.rolled_out);
    assert_eq!(public.state, GatewayApiState::Stale);
    assert_eq!(
        public.proxies,
        vec![
            ProxyVersionCount {
                version: Some("1.21.2".into()),
                pods: 1,
                ready: 1
            },
            ProxyVersionCount {
                version: Some("1.22.3".into()),
                pods: 1,
                ready: 0
            },
        ]
    );
    assert!(
        public.problems.iter().any(|p| p.contains("(rollout: ")),
        "{:?}",
        public.problems
    );
}

#[test]
fn a_revision_whose_istiod_is_not_ready_leaves_its_gateways_stale_and_says_so() {
    let mut world = canary_world();
    // istiod-1-22-3 lost its Ready replica (its status, as the controllers
    // would write it).
    edit_status(
        &mut world,
        kinds::deployments(),
        "istio-system",
        "istiod-1-22-3",
        |istiod| istiod["status"]["readyReplicas"] = json!(0),
    );
    edit_object(&mut world, kinds::gateways(), "edge", "public", |g| {
        g["metadata"]["labels"] = json!({"istio.io/rev": "1-22-3"});
    });
    let gateways = assessed(&world);
    let public = find(&gateways, "edge", "public");
    assert!(!public.revision_ready);
    assert_eq!(public.state, GatewayApiState::Stale);
    assert!(
        public.problems[0].contains("istiod istiod-1-22-3 is not Ready to re-render it"),
        "{:?}",
        public.problems
    );
}

#[test]
fn a_gateway_naming_no_revision_is_reported_with_the_label_it_names() {
    let mut world = canary_world();
    edit_object(&mut world, kinds::gateways(), "edge", "public", |g| {
        g["metadata"]["labels"] = json!({"istio.io/rev": "1-22-4"});
    });
    let gateways = assessed(&world);
    let public = find(&gateways, "edge", "public");
    assert_eq!(public.state, GatewayApiState::NoRevision);
    assert_eq!(
        public.problems,
        vec![
            "istio.io/rev=1-22-4 (the Gateway's label) names no revision or tag: no istiod renders it"
                .to_string()
        ]
    );
}

#[test]
fn programmed_false_or_written_for_an_older_generation_is_not_programmed() {
    let mut world = canary_world();
    edit_status(&mut world, kinds::gateways(), "edge", "public", |gw| {
        for c in gw["status"]["conditions"].as_array_mut().unwrap() {
            if c["type"] == "Programmed" {
                c["status"] = json!("False");
                c["reason"] = json!("AddressNotAssigned");
                c["message"] = json!("address pending");
            }
        }
    });
    let gateways = assessed(&world);
    let public = find(&gateways, "edge", "public");
    assert_eq!(public.state, GatewayApiState::NotProgrammed);
    assert_eq!(
        public.problems,
        vec!["Programmed is False (AddressNotAssigned): address pending".to_string()]
    );

    let mut info = public.info.clone();
    info.conditions.get_mut("Programmed").unwrap().status = "True".into();
    info.generation = 2;
    assert!(!programmed_now(&info), "written for generation 1");
}

#[test]
fn only_classes_of_istios_controllers_are_assessed() {
    let mut world = canary_world();
    for (name, controller) in [
        ("internal", "istio.io/gateway-controller"),
        ("envoy", "gateway.envoyproxy.io/gatewayclass-controller"),
    ] {
        world
            .create(
                kinds::gateway_classes(),
                json!({"apiVersion": "gateway.networking.k8s.io/v1", "kind": "GatewayClass",
                       "metadata": {"name": name}, "spec": {"controllerName": controller}}),
                &WriteOptions::default(),
            )
            .unwrap();
    }
    for (name, class) in [("a", "internal"), ("b", "envoy")] {
        world
            .create(
                kinds::gateways(),
                json!({"apiVersion": "gateway.networking.k8s.io/v1", "kind": "Gateway",
                       "metadata": {"name": name, "namespace": "edge"},
                       "spec": {"gatewayClassName": class, "listeners": []}}),
                &WriteOptions::default(),
            )
            .unwrap();
    }
    let gateways = assessed(&world);
    let names: Vec<String> = gateways.iter().map(|g| g.reference()).collect();
    assert!(names.contains(&"edge/a".to_string()), "{names:?}");
    assert!(!names.contains(&"edge/b".to_string()), "{names:?}");
    assert_eq!(find(&gateways, "edge", "a").rendered_name, "a-internal");
}

#[test]
fn waypoint_use_follows_the_object_then_its_namespace_and_none_opts_out() {
    let mut snapshot = ClusterSnapshot::new("istio-system", Scope::All);
    snapshot.namespaces = vec![
        namespace("apps", &[(USE_WAYPOINT_LABEL, "waypoint")]),
        namespace(
            "remote",
            &[
                (USE_WAYPOINT_LABEL, "shared"),
                (USE_WAYPOINT_NAMESPACE_LABEL, "infra"),
            ],
        ),
        namespace("plain", &[]),
    ];
    let service = |ns: &str, name: &str, pairs: &[(&str, &str)]| ServiceInfo {
        namespace: ns.into(),
        name: name.into(),
        uid: String::new(),
        labels: labels(pairs),
        type_: "ClusterIP".into(),
        selector: Labels::new(),
        ports: Vec::new(),
        owners: Vec::new(),
        resource_version: String::new(),
        records: Labels::new(),
    };
    snapshot.services = vec![
        service("apps", "inherits", &[]),
        service("apps", "opted-out", &[(USE_WAYPOINT_LABEL, "none")]),
        service("apps", "own", &[(USE_WAYPOINT_LABEL, "special")]),
        service("remote", "far", &[]),
        service(
            "plain",
            "elsewhere",
            &[
                (USE_WAYPOINT_LABEL, "waypoint"),
                (USE_WAYPOINT_NAMESPACE_LABEL, "apps"),
            ],
        ),
        service(
            "apps",
            "waypoint",
            &[(MANAGED_LABEL, "istio.io-mesh-controller")],
        ),
    ];
    let uses = waypoint_uses(&snapshot);
    let of = |ns: &str, name: &str| uses.get(&(ns.to_string(), name.to_string())).cloned();
    assert_eq!(
        of("apps", "waypoint"),
        Some(WaypointUse {
            namespaces: vec!["apps".into()],
            services: vec!["apps/inherits".into(), "plain/elsewhere".into()],
        })
    );
    assert_eq!(
        of("apps", "special").map(|u| u.services),
        Some(vec!["apps/own".to_string()])
    );
    assert_eq!(
        of("infra", "shared"),
        Some(WaypointUse {
            namespaces: vec!["remote".into()],
            services: vec!["remote/far".into()],
        })
    );
}

#[test]
fn a_waypoint_for_workloads_lists_its_namespaces_but_no_services() {
    let mut world = canary_world();
    edit_object(
        &mut world,
        kinds::gateways(),
        "ambient-apps",
        "waypoint",
        |g| {
            g["metadata"]["labels"] = json!({"istio.io/waypoint-for": "workload"});
        },
    );
    let snapshot = snapshot_from_world(&world, Scope::All);
    let cp = ControlPlane::from_snapshot(&snapshot);
    let gateways = gateway_api_gateways(&snapshot, &cp);
    let (all, waypoints) = status_lists(&snapshot, &gateways, |_| true);
    assert_eq!(all.len(), 2, "the Gateway and the waypoint");
    assert_eq!(waypoints.len(), 1);
    assert_eq!(waypoints[0].waypoint_for, "workload");
    assert_eq!(waypoints[0].used_by.namespaces, vec!["ambient-apps"]);
    assert!(waypoints[0].used_by.services.is_empty());
}

#[test]
fn without_the_gateway_api_nothing_is_assessed_and_the_report_says_not_installed() {
    let mut world = World::new(SimConfig {
        gateway_api: false,
        ..SimConfig::default()
    });
    mesh_sim::scenario::load_builtin(&mut world, "in-place").expect("in-place loads");
    let snapshot = snapshot_from_world(&world, Scope::All);
    assert!(!snapshot.gateway_api.installed);
    let report = crate::mesh::status::build_status(&snapshot, chrono::Utc::now());
    assert!(!report.gateway_api_installed);
    assert!(report.gateway_api.is_empty() && report.waypoints.is_empty());
}

#[test]
fn a_stale_gateway_needs_attention_and_an_up_to_date_one_on_the_older_revision_gets_a_next_step() {
    let mut world = canary_world();
    edit_object(&mut world, kinds::gateways(), "edge", "public", |g| {
        g["metadata"]["labels"] = json!({"istio.io/rev": "1-22-3"});
    });
    let snapshot = snapshot_from_world(&world, Scope::All);
    let report = crate::mesh::status::build_status(&snapshot, chrono::Utc::now());
    assert!(report.needs_attention());
    assert!(
        report.summary.attention.iter().any(|a| a
            .starts_with("Gateway edge/public is stale: its Deployment was rendered by 1-21-2")),
        "{:?}",
        report.summary.attention
    );
    let commands: Vec<&str> = report
        .summary
        .next_steps
        .iter()
        .filter_map(|s| s.command.as_deref())
        .collect();
    assert!(
        commands.contains(&"kubectl -n edge rollout status deployment/public-istio"),
        "{commands:?}"
    );
    assert!(
        commands.contains(
            &"kubectl mesh-upgrade gateway-switch -n ambient-apps --gateway waypoint --to 1-22-3"
        ),
        "{commands:?}"
    );
    // Neither the Gateway's Deployment nor its Service is listed as a
    // workload or a classic gateway.
    assert!(report.workloads.iter().all(|w| w.name != "public-istio"));
    assert!(report.gateways.iter().all(|g| g.name != "public-istio"));
    assert!(
        report
            .gateway_services
            .iter()
            .all(|s| s.name != "public-istio")
    );
}
