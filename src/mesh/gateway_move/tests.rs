//! The move plan and its condition on the `canary` scenario as mesh-sim
//! builds it (Gateway `edge/public` on 1-21-2 through its label
//! `istio.io/rev=prod-stable`, a tag), changed as a person or istiod would
//! change it, read back through the one assembly.

use chrono::TimeZone;
use k8s_openapi::api::apps::v1::Deployment;
use k8s_openapi::api::core::v1::Pod;
use k8s_openapi::api::discovery::v1::EndpointSlice;
use serde_json::json;

use super::*;
use crate::mesh::fixtures::{canary_world, edit_object, edit_status, snapshot_from_world};
use crate::mesh::gateway_api::{assess, gateway_kind};
use crate::mesh::gateway_switch::{SwitchOptions, SwitchRequest, plan as plan_switch};
use crate::snapshot::Scope;
use crate::snapshot::gateway_api::Gateway;
use mesh_sim::resources::kinds;
use mesh_sim::world::World;

fn now() -> DateTime<Utc> {
    Utc.with_ymd_and_hms(2026, 12, 4, 21, 10, 7).unwrap()
}

fn edit_gateway(world: &mut World, change: impl FnOnce(&mut Value)) {
    edit_object(world, kinds::gateways(), "edge", "public", change);
}

fn plan_on(world: &World, request: MoveRequest, force: bool) -> MovePlan {
    let snapshot = snapshot_from_world(world, Scope::Namespaces(vec!["edge".into()]));
    let cp = ControlPlane::from_snapshot(&snapshot);
    let object = world
        .store
        .get(kinds::gateways(), "edge", "public")
        .unwrap();
    let gateway: Gateway = serde_json::from_value((*object).clone()).unwrap();
    let info = GatewayInfo::from(&gateway);
    let kind = gateway_kind(&snapshot, &info.class).expect("an Istio class");
    let assessed = assess(&snapshot, &cp, &info, kind);
    plan_move(
        &snapshot,
        &cp,
        &assessed,
        &MoveOptions {
            request,
            force,
            endpoint_slices_readable: true,
        },
        now(),
    )
}

fn to(value: &str) -> MoveRequest {
    MoveRequest::To(value.to_string())
}

fn failed(plan: &MovePlan) -> Vec<(CheckKind, bool)> {
    plan.prechecks
        .iter()
        .filter(|c| !c.passed)
        .map(|c| (c.check, c.hard))
        .collect()
}

#[test]
fn a_move_is_one_merge_patch_of_the_label_and_the_record_on_the_gateways_resource_version() {
    let world = canary_world();
    let plan = plan_on(&world, to("1-22-3"), false);
    assert_eq!(plan.verdict, Verdict::Proceed, "{:#?}", plan.prechecks);
    assert_eq!(plan.deployment, "public-istio");
    assert_eq!(
        plan.from,
        MoveEnd {
            label: Some("prod-stable".into()),
            revision_from: RevisionSource::Gateway,
            revision: Some("1-21-2".into()),
            image: Some("docker.io/istio/proxyv2:1.21.2".into()),
            version: Some("1.21.2".into()),
        }
    );
    assert_eq!(plan.to.revision.as_deref(), Some("1-22-3"));
    assert_eq!(
        plan.to.image.as_deref(),
        Some("docker.io/istio/proxyv2:1.22.3")
    );
    let action = plan.action.as_ref().expect("a write");
    let rv = world
        .store
        .get(kinds::gateways(), "edge", "public")
        .unwrap()["metadata"]["resourceVersion"]
        .clone();
    assert_eq!(action.write.target.to_string(), "edge/gateway/public");
    assert_eq!(
        action.write.patch_to_send(),
        Some(Patch::Merge(json!({"metadata": {
            "labels": {"istio.io/rev": "1-22-3"},
            "annotations": {
                "mesh-upgrade.io/previous-revision": r#"{"istio.io/rev":"prod-stable"}"#,
                "mesh-upgrade.io/switched-at": "2026-12-04T21:10:07Z",
            },
            "resourceVersion": rv,
        }})))
    );
    // The undo puts the label back and removes what the Gateway did not have.
    assert_eq!(
        action.undo.body_to_send(),
        json!({"metadata": {
            "labels": {"istio.io/rev": "prod-stable"},
            "annotations": {
                "mesh-upgrade.io/previous-revision": null,
                "mesh-upgrade.io/switched-at": null,
            },
        }})
    );
    assert_eq!(plan.changes(), 1);
    assert_eq!(
        plan.question(),
        "Move Gateway edge/public to 1-22-3 (istio.io/rev=1-22-3)?"
    );
}

#[test]
fn a_tag_is_written_as_the_label_and_resolved_to_its_revision() {
    let plan = plan_on(&canary_world(), to("prod-canary"), false);
    assert_eq!(plan.to.label.as_deref(), Some("prod-canary"));
    assert_eq!(plan.to.revision.as_deref(), Some("1-22-3"));
    assert!(
        plan.prechecks
            .iter()
            .any(|c| c.check == CheckKind::TargetRevision
                && c.reason == "prod-canary is a tag of revision 1-22-3 (proxy 1.22.3)"),
        "{:#?}",
        plan.prechecks
    );
}

#[test]
fn a_target_naming_no_revision_is_refused_with_the_revisions_and_tags_that_exist() {
    let plan = plan_on(&canary_world(), to("1-22-4"), true);
    assert_eq!(plan.verdict, Verdict::Refused);
    assert!(plan.action.is_none());
    let refusal = plan.refusal().expect("refused");
    assert!(
        refusal.starts_with("refusing to move Gateway edge/public to istio.io/rev=1-22-4: target-revision: 1-22-4 names no revision or tag here (revisions: 1-21-2, 1-22-3; tags: default, prod-canary, prod-stable)"),
        "{refusal}"
    );
}

#[test]
fn a_target_whose_istiod_is_not_ready_is_refused_even_with_force() {
    let mut world = canary_world();
    edit_status(
        &mut world,
        kinds::deployments(),
        "istio-system",
        "istiod-1-22-3",
        |istiod| istiod["status"]["readyReplicas"] = json!(0),
    );
    let plan = plan_on(&world, to("1-22-3"), true);
    assert_eq!(failed(&plan), vec![(CheckKind::IstiodReady, true)]);
    assert_eq!(plan.verdict, Verdict::Refused);
}

#[test]
fn a_gateway_that_is_not_programmed_is_refused_unless_forced() {
    let mut world = canary_world();
    edit_status(&mut world, kinds::gateways(), "edge", "public", |gw| {
        for c in gw["status"]["conditions"].as_array_mut().unwrap() {
            if c["type"] == "Programmed" {
                c["status"] = json!("False");
                c["reason"] = json!("AddressNotAssigned");
            }
        }
    });
    let plan = plan_on(&world, to("1-22-3"), false);
    assert_eq!(failed(&plan), vec![(CheckKind::Programmed, false)]);
    assert_eq!(plan.verdict, Verdict::Refused);
    assert!(
        plan.refusal()
            .unwrap()
            .contains("(--force overrides programmed)")
    );

    let forced = plan_on(&world, to("1-22-3"), true);
    assert_eq!(forced.verdict, Verdict::Forced);
    assert!(forced.action.is_some());
}

#[test]
fn the_label_it_already_has_is_nothing_to_do() {
    let mut world = canary_world();
    edit_gateway(&mut world, |g| {
        g["metadata"]["labels"] = json!({"istio.io/rev": "1-21-2"});
    });
    let plan = plan_on(&world, to("1-21-2"), false);
    assert_eq!(plan.verdict, Verdict::AlreadySelected);
    assert!(plan.action.is_none());
    assert_eq!(plan.changes(), 0);
}

#[test]
fn rollback_sets_the_recorded_label_and_records_the_one_it_replaces() {
    let mut world = canary_world();
    edit_gateway(&mut world, |g| {
        g["metadata"]["labels"] = json!({"istio.io/rev": "1-22-3"});
        g["metadata"]["annotations"]["mesh-upgrade.io/previous-revision"] = json!("{}");
        g["metadata"]["annotations"]["mesh-upgrade.io/switched-at"] = json!("2026-12-04T20:00:00Z");
    });
    let plan = plan_on(&world, MoveRequest::Rollback, false);
    assert_eq!(plan.mode, SwitchMode::Rollback);
    assert_eq!(plan.to.label, None, "no label was recorded");
    assert_eq!(
        plan.to.revision.as_deref(),
        Some("1-21-2"),
        "the default tag"
    );
    assert_eq!(plan.to.revision_from, RevisionSource::Default);
    let body = plan.action.as_ref().unwrap().write.body_to_send();
    assert_eq!(body["metadata"]["labels"]["istio.io/rev"], Value::Null);
    assert_eq!(
        body["metadata"]["annotations"]["mesh-upgrade.io/previous-revision"],
        r#"{"istio.io/rev":"1-22-3"}"#
    );
    assert!(
        plan.prechecks
            .iter()
            .any(|c| c.check == CheckKind::PreviousRevision
                && c.reason.contains("(moved away at 2026-12-04T20:00:00Z)")),
        "{:#?}",
        plan.prechecks
    );
}

#[test]
fn rollback_without_a_record_is_refused() {
    let plan = plan_on(&canary_world(), MoveRequest::Rollback, false);
    assert_eq!(plan.verdict, Verdict::Refused);
    assert!(
        plan.refusal()
            .unwrap()
            .contains("it was never moved with gateway-switch"),
        "{:?}",
        plan.refusal()
    );
}

/// What the wait would see in `world` now.
fn state_of(world: &World) -> MoveState {
    let typed = |value: &Value| value.clone();
    let gateway: Gateway = serde_json::from_value(typed(
        &world
            .store
            .get(kinds::gateways(), "edge", "public")
            .unwrap(),
    ))
    .unwrap();
    let deployment: Deployment = serde_json::from_value(typed(
        &world
            .store
            .get(kinds::deployments(), "edge", "public-istio")
            .unwrap(),
    ))
    .unwrap();
    let pods = world
        .store
        .list(kinds::pods(), Some("edge"))
        .map(|p| PodInfo::from(&serde_json::from_value::<Pod>(typed(&p)).unwrap()))
        .collect();
    let slices = world
        .store
        .list(kinds::endpointslices(), Some("edge"))
        .filter(|s| s["metadata"]["labels"]["kubernetes.io/service-name"] == "public-istio")
        .map(|s| {
            EndpointSliceInfo::from(&serde_json::from_value::<EndpointSlice>(typed(&s)).unwrap())
        })
        .collect();
    MoveState {
        gateway: Some(GatewayInfo::from(&gateway)),
        deployment: Some(deployment),
        pods,
        slices,
    }
}

#[test]
fn the_move_converges_only_once_re_rendered_rolled_out_programmed_and_serving_from_new_pods() {
    let mut world = canary_world();
    world.clock.set_speed(0.0);
    let plan = plan_on(&world, to("1-22-3"), false);
    // Before the write: the Gateway has no label, nothing moved.
    let view = move_view(&state_of(&world), &plan.to);
    assert!(!view.converged);
    assert_eq!(view.rendered_by.as_deref(), Some("1-21-2"));

    edit_gateway(&mut world, |g| {
        g["metadata"]["labels"] = json!({"istio.io/rev": "1-22-3"});
    });
    mesh_sim::controllers::reconcile(&mut world);
    let view = move_view(&state_of(&world), &plan.to);
    assert_eq!(view.rendered_by.as_deref(), Some("1-22-3"));
    assert_eq!((view.pods, view.pods_on_target), (2, 1));
    assert!(!view.converged, "the new pod is not Ready: {view:#?}");
    assert!(
        view.describe(&plan.to).contains("1 of 2 pods on 1.22.3"),
        "{}",
        view.describe(&plan.to)
    );

    assert!(mesh_sim::controllers::settle(&mut world));
    let view = move_view(&state_of(&world), &plan.to);
    assert!(view.converged, "{view:#?}");
    assert_eq!(view.rollout, "complete");
    assert!(view.programmed);
    // The way back is judged against where it came from.
    assert!(!move_view(&state_of(&world), &plan.from).converged);
}

#[test]
fn someone_else_relabelling_the_gateway_fails_the_wait() {
    let mut world = canary_world();
    let plan = plan_on(&world, to("1-22-3"), false);
    edit_gateway(&mut world, |g| {
        g["metadata"]["labels"] = json!({"istio.io/rev": "1-21-2"});
    });
    let view = move_view(&state_of(&world), &plan.to);
    assert_eq!(
        view.failed.as_deref(),
        Some("the Gateway's label was changed to istio.io/rev=1-21-2 by someone else")
    );
}

#[test]
fn after_a_conflict_the_gateway_shows_the_move_or_the_state_it_was_planned_on() {
    let world = canary_world();
    let plan = plan_on(&world, to("1-22-3"), false);
    let action = plan.action.unwrap();
    let mut fresh = (*world
        .store
        .get(kinds::gateways(), "edge", "public")
        .unwrap())
    .clone();
    // Only its status moved on: still as planned.
    assert!(gateway_shows(&fresh, &action.undo));
    assert!(!gateway_shows(&fresh, &action.write));
    fresh["metadata"]["labels"] = json!({"istio.io/rev": "1-22-3"});
    fresh["metadata"]["annotations"]["mesh-upgrade.io/previous-revision"] =
        json!(r#"{"istio.io/rev":"prod-stable"}"#);
    fresh["metadata"]["annotations"]["mesh-upgrade.io/switched-at"] = json!("2026-12-04T21:10:07Z");
    assert!(gateway_shows(&fresh, &action.write), "a stored retry");
    fresh["metadata"]["labels"] = json!({"istio.io/rev": "prod-stable"});
    assert!(!gateway_shows(&fresh, &action.write));
    assert!(
        !gateway_shows(&fresh, &action.undo),
        "someone else's change"
    );
}

#[test]
fn the_service_mode_refuses_a_service_istiod_renders_and_says_to_move_the_gateway() {
    let world = canary_world();
    let snapshot = snapshot_from_world(&world, Scope::Namespaces(vec!["edge".into()]));
    let cp = ControlPlane::from_snapshot(&snapshot);
    let gws = crate::mesh::gateways::gateways(&crate::mesh::workloads::classify(&snapshot, &cp));
    let service: k8s_openapi::api::core::v1::Service = serde_json::from_value(
        (*world
            .store
            .get(kinds::services(), "edge", "public-istio")
            .unwrap())
        .clone(),
    )
    .unwrap();
    let state = crate::mesh::gateway_switch::ServiceState::from(&service);
    let (gateway, evidence) = state.istiod_gateway().expect("istiod's");
    assert_eq!(gateway, "public");
    assert_eq!(
        evidence,
        "label gateway.istio.io/managed=istio.io-gateway-controller, owner Gateway public, field manager istio.io/gateway-controller"
    );
    let plan = plan_switch(
        &snapshot,
        &gws,
        &cp,
        &state,
        &SwitchOptions {
            request: SwitchRequest::To {
                selector_key: "gateway.networking.k8s.io/gateway-name".into(),
                value: "other".into(),
            },
            force: true,
            endpoint_slices_readable: true,
        },
        now(),
    );
    assert_eq!(plan.verdict, Verdict::Refused);
    assert!(plan.action.is_none());
    assert_eq!(
        plan.refusal().unwrap(),
        "refusing to switch Service edge/public-istio: istiod-managed: istiod renders Service edge/public-istio for Gateway public (label gateway.istio.io/managed=istio.io-gateway-controller, owner Gateway public, field manager istio.io/gateway-controller) and would put its selector back; move the Gateway instead: kubectl mesh-upgrade gateway-switch -n edge --gateway public --to other"
    );
}
