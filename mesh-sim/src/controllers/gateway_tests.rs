//! istiod's gateway controller on a bare [`World`] with a paused clock: two
//! revisions (1-21-2 behind the `default` tag, 1-22-3 with the tag
//! `prod-canary`), Gateways created as the API server would take them, the
//! controllers settled, the rendered objects read back.

use std::time::Duration;

use serde_json::{Value, json};

use super::*;
use crate::controllers::{reconcile, settle};
use crate::inject::{RevisionOptions, istio_revision_objects, revision_tag_objects};
use crate::resources::kinds;
use crate::world::{SimConfig, WriteOptions};

fn world() -> World {
    let mut world = World::new(SimConfig {
        pod_ready_delay: Duration::from_secs(2),
        clock_speed: 0.0,
        ..SimConfig::default()
    });
    let opts = RevisionOptions::default();
    let mut objects = vec![
        json!({"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": "istio-system"}}),
        json!({"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": "edge"}}),
    ];
    objects.extend(istio_revision_objects(Some("1-21-2"), "1.21.2", &opts));
    objects.extend(istio_revision_objects(Some("1-22-3"), "1.22.3", &opts));
    objects.extend(revision_tag_objects("default", Some("1-21-2")));
    objects.extend(revision_tag_objects("prod-canary", Some("1-22-3")));
    for object in objects {
        put(&mut world, object);
    }
    assert!(settle(&mut world), "the control plane settles");
    world
}

/// Creates or replaces an object, as `kubectl apply` would.
fn put(world: &mut World, object: Value) {
    let api_version = object["apiVersion"].as_str().unwrap_or("").to_string();
    let kind = object["kind"].as_str().unwrap_or("").to_string();
    let resource = crate::resources::lookup_kind(&api_version, &kind).expect("a served kind");
    let key = ObjKey::of(&object);
    let result = if world
        .store
        .get(resource, &key.namespace, &key.name)
        .is_some()
    {
        world.update(resource, object, &WriteOptions::default())
    } else {
        world.create(resource, object, &WriteOptions::default())
    };
    result.unwrap_or_else(|e| panic!("writing a {kind}: {e}"));
}

fn gateway(namespace: &str, name: &str, class: &str, labels: Value) -> Value {
    json!({
        "apiVersion": "gateway.networking.k8s.io/v1",
        "kind": "Gateway",
        "metadata": {"name": name, "namespace": namespace, "labels": labels},
        "spec": {
            "gatewayClassName": class,
            "listeners": [{"name": "http", "port": 80, "protocol": "HTTP"}],
        },
    })
}

fn get(world: &World, resource: &Resource, namespace: &str, name: &str) -> Value {
    world
        .store
        .get(resource, namespace, name)
        .map(|o| (*o).clone())
        .unwrap_or_else(|| panic!("{} {namespace}/{name} exists", resource.kind))
}

fn relabel(world: &mut World, namespace: &str, name: &str, key: &str, value: &str) {
    let mut gw = get(world, kinds::gateways(), namespace, name);
    gw["metadata"]["labels"][key] = json!(value);
    world
        .update(kinds::gateways(), gw, &WriteOptions::default())
        .expect("relabel the Gateway");
}

fn image_of(deployment: &Value) -> String {
    deployment["spec"]["template"]["spec"]["containers"][0]["image"]
        .as_str()
        .unwrap_or("")
        .to_string()
}

fn pod_image(pod: &Value) -> String {
    pod["spec"]["containers"][0]["image"]
        .as_str()
        .unwrap_or("")
        .to_string()
}

fn condition<'a>(obj: &'a Value, kind: &str) -> &'a Value {
    obj["status"]["conditions"]
        .as_array()
        .and_then(|cs| cs.iter().find(|c| c["type"] == kind))
        .unwrap_or(&Value::Null)
}

fn pod_images(world: &World, namespace: &str) -> Vec<String> {
    let mut images: Vec<String> = world
        .store
        .list(kinds::pods(), Some(namespace))
        .filter(|p| p.pointer("/metadata/deletionTimestamp").is_none())
        .map(|p| pod_image(&p))
        .collect();
    images.sort();
    images
}

#[test]
fn an_istio_gateway_gets_a_deployment_service_and_service_account_rendered_by_its_revision() {
    let mut w = world();
    put(&mut w, gateway("edge", "public", "istio", json!({})));
    assert!(settle(&mut w));

    let d = get(&w, kinds::deployments(), "edge", "public-istio");
    assert_eq!(image_of(&d), "docker.io/istio/proxyv2:1.21.2");
    assert_eq!(d["metadata"]["labels"][GATEWAY_NAME_LABEL], "public");
    assert_eq!(d["metadata"]["labels"][GATEWAY_CLASS_LABEL], "istio");
    assert_eq!(
        d["metadata"]["labels"][MANAGED_LABEL],
        "istio.io-gateway-controller"
    );
    let owner = &d["metadata"]["ownerReferences"][0];
    assert_eq!(owner["kind"], "Gateway");
    assert_eq!(owner["name"], "public");
    let gw = get(&w, kinds::gateways(), "edge", "public");
    assert_eq!(owner["uid"], gw["metadata"]["uid"]);
    let template = &d["spec"]["template"]["metadata"];
    assert_eq!(template["labels"]["sidecar.istio.io/inject"], "false");
    assert_eq!(template["labels"][GATEWAY_NAME_LABEL], "public");
    assert_eq!(template["annotations"]["istio.io/rev"], "1-21-2");
    assert_eq!(
        d["spec"]["selector"]["matchLabels"],
        json!({GATEWAY_NAME_LABEL: "public"})
    );
    let managers: Vec<&str> = d["metadata"]["managedFields"]
        .as_array()
        .into_iter()
        .flatten()
        .filter_map(|m| m["manager"].as_str())
        .collect();
    assert!(managers.contains(&FIELD_MANAGER), "{managers:?}");

    let svc = get(&w, kinds::services(), "edge", "public-istio");
    assert_eq!(svc["spec"]["type"], "LoadBalancer");
    assert_eq!(
        svc["spec"]["selector"],
        json!({GATEWAY_NAME_LABEL: "public"})
    );
    assert_eq!(
        svc["metadata"]["labels"][MANAGED_LABEL],
        "istio.io-gateway-controller"
    );
    assert_eq!(svc["metadata"]["ownerReferences"][0]["name"], "public");
    let ports: Vec<i64> = svc["spec"]["ports"]
        .as_array()
        .unwrap()
        .iter()
        .filter_map(|p| p["port"].as_i64())
        .collect();
    assert_eq!(ports, vec![15021, 80]);
    get(&w, kinds::serviceaccounts(), "edge", "public-istio");

    // The pods are not injected: the template carries the proxy itself.
    let pods: Vec<_> = w.store.list(kinds::pods(), Some("edge")).collect();
    assert_eq!(pods.len(), 1);
    assert!(
        pods[0]
            .pointer("/metadata/annotations/sidecar.istio.io~1status")
            .is_none()
    );
}

#[test]
fn the_revision_is_the_gateways_label_else_its_namespaces_else_the_default_tag() {
    let mut w = world();
    put(&mut w, gateway("edge", "plain", "istio", json!({})));
    put(
        &mut w,
        gateway(
            "edge",
            "labelled",
            "istio",
            json!({"istio.io/rev": "1-22-3"}),
        ),
    );
    put(
        &mut w,
        gateway(
            "edge",
            "tagged",
            "istio",
            json!({"istio.io/rev": "prod-canary"}),
        ),
    );
    put(
        &mut w,
        json!({"apiVersion": "v1", "kind": "Namespace",
               "metadata": {"name": "canary", "labels": {"istio.io/rev": "1-22-3"}}}),
    );
    put(&mut w, gateway("canary", "inherits", "istio", json!({})));
    put(
        &mut w,
        gateway(
            "canary",
            "own-label",
            "istio",
            json!({"istio.io/rev": "1-21-2"}),
        ),
    );
    assert!(settle(&mut w));
    let revision = |ns: &str, name: &str| {
        let d = get(&w, kinds::deployments(), ns, &format!("{name}-istio"));
        d["spec"]["template"]["metadata"]["annotations"]["istio.io/rev"]
            .as_str()
            .unwrap()
            .to_string()
    };
    assert_eq!(revision("edge", "plain"), "1-21-2", "the default tag");
    assert_eq!(revision("edge", "labelled"), "1-22-3");
    assert_eq!(
        revision("edge", "tagged"),
        "1-22-3",
        "a tag names its revision"
    );
    assert_eq!(
        revision("canary", "inherits"),
        "1-22-3",
        "the namespace's label"
    );
    assert_eq!(
        revision("canary", "own-label"),
        "1-21-2",
        "its own label wins"
    );
}

#[test]
fn without_a_default_tag_the_default_validator_names_the_default_revision() {
    let mut w = world();
    w.delete(
        kinds::mutating_webhooks(),
        "",
        "istio-revision-tag-default",
        &WriteOptions::default(),
    )
    .expect("delete the default tag");
    put(&mut w, gateway("edge", "public", "istio", json!({})));
    assert!(settle(&mut w));
    assert!(
        w.store
            .get(kinds::deployments(), "edge", "public-istio")
            .is_none(),
        "no istiod claims an unlabelled Gateway without a default"
    );
    put(
        &mut w,
        json!({"apiVersion": "admissionregistration.k8s.io/v1", "kind": "ValidatingWebhookConfiguration",
               "metadata": {"name": "istiod-default-validator", "labels": {"istio.io/rev": "1-22-3"}},
               "webhooks": []}),
    );
    assert!(settle(&mut w));
    let d = get(&w, kinds::deployments(), "edge", "public-istio");
    assert_eq!(image_of(&d), "docker.io/istio/proxyv2:1.22.3");
}

#[test]
fn moving_the_gateway_to_another_revision_re_renders_and_rolls_its_deployment() {
    let mut w = world();
    put(&mut w, gateway("edge", "public", "istio", json!({})));
    assert!(settle(&mut w));
    let before = get(&w, kinds::deployments(), "edge", "public-istio");

    relabel(&mut w, "edge", "public", "istio.io/rev", "1-22-3");
    assert!(settle(&mut w));
    let after = get(&w, kinds::deployments(), "edge", "public-istio");
    assert_eq!(image_of(&after), "docker.io/istio/proxyv2:1.22.3");
    assert_eq!(
        after["spec"]["template"]["metadata"]["annotations"]["istio.io/rev"],
        "1-22-3"
    );
    assert_eq!(
        after["spec"]["template"]["metadata"]["labels"]["istio.io/rev"], "1-22-3",
        "the Gateway's labels are copied into the template"
    );
    assert!(after["metadata"]["generation"].as_i64() > before["metadata"]["generation"].as_i64());
    assert_eq!(
        pod_images(&w, "edge"),
        vec!["docker.io/istio/proxyv2:1.22.3"]
    );
    assert_eq!(
        after["status"]["observedGeneration"],
        after["metadata"]["generation"]
    );
}

#[test]
fn a_revision_whose_istiod_is_not_ready_renders_nothing_until_it_is() {
    let mut w = world();
    put(&mut w, gateway("edge", "public", "istio", json!({})));
    assert!(settle(&mut w));
    // istiod-1-22-3 scaled to zero: nobody answers for 1-22-3.
    let mut istiod = get(&w, kinds::deployments(), "istio-system", "istiod-1-22-3");
    istiod["spec"]["replicas"] = json!(0);
    w.update(kinds::deployments(), istiod, &WriteOptions::default())
        .unwrap();
    assert!(settle(&mut w));
    relabel(&mut w, "edge", "public", "istio.io/rev", "1-22-3");
    assert!(settle(&mut w));
    let d = get(&w, kinds::deployments(), "edge", "public-istio");
    assert_eq!(
        image_of(&d),
        "docker.io/istio/proxyv2:1.21.2",
        "not re-rendered"
    );

    let mut istiod = get(&w, kinds::deployments(), "istio-system", "istiod-1-22-3");
    istiod["spec"]["replicas"] = json!(1);
    w.update(kinds::deployments(), istiod, &WriteOptions::default())
        .unwrap();
    assert!(settle(&mut w));
    let d = get(&w, kinds::deployments(), "edge", "public-istio");
    assert_eq!(image_of(&d), "docker.io/istio/proxyv2:1.22.3");
}

#[test]
fn programmed_waits_for_a_ready_endpoint_and_accepted_comes_at_once() {
    let mut w = world();
    put(&mut w, gateway("edge", "public", "istio", json!({})));
    // One pass, no clock: the pod exists but is not Ready yet.
    reconcile(&mut w);
    let gw = get(&w, kinds::gateways(), "edge", "public");
    assert_eq!(condition(&gw, "Accepted")["status"], "True");
    let programmed = condition(&gw, "Programmed");
    assert_eq!(programmed["status"], "False");
    assert_eq!(programmed["reason"], "AddressNotAssigned");
    assert!(
        programmed["message"]
            .as_str()
            .unwrap()
            .contains("no instances found"),
        "{programmed}"
    );

    assert!(settle(&mut w));
    let gw = get(&w, kinds::gateways(), "edge", "public");
    let programmed = condition(&gw, "Programmed");
    assert_eq!(programmed["status"], "True");
    assert_eq!(programmed["reason"], "Programmed");
    assert_eq!(programmed["observedGeneration"], 1);
    assert_eq!(gw["status"]["addresses"][0]["type"], "IPAddress");
    assert_eq!(
        gw["metadata"]["annotations"]["gateway.istio.io/controller-version"],
        "5"
    );
}

#[test]
fn an_edited_service_selector_is_applied_back() {
    let mut w = world();
    put(&mut w, gateway("edge", "public", "istio", json!({})));
    assert!(settle(&mut w));
    let mut svc = get(&w, kinds::services(), "edge", "public-istio");
    svc["spec"]["selector"][GATEWAY_NAME_LABEL] = json!("someone-else");
    w.update(kinds::services(), svc, &WriteOptions::default())
        .unwrap();
    assert!(settle(&mut w));
    let svc = get(&w, kinds::services(), "edge", "public-istio");
    assert_eq!(
        svc["spec"]["selector"],
        json!({GATEWAY_NAME_LABEL: "public"})
    );
}

#[test]
fn an_existing_object_without_the_managed_label_is_never_taken_over() {
    let mut w = world();
    put(
        &mut w,
        json!({"apiVersion": "v1", "kind": "Service",
               "metadata": {"name": "public-istio", "namespace": "edge"},
               "spec": {"selector": {"app": "mine"}, "ports": [{"port": 80}]}}),
    );
    put(&mut w, gateway("edge", "public", "istio", json!({})));
    assert!(settle(&mut w));
    let svc = get(&w, kinds::services(), "edge", "public-istio");
    assert_eq!(svc["spec"]["selector"], json!({"app": "mine"}));
    assert!(svc["metadata"]["labels"].get(MANAGED_LABEL).is_none());
    get(&w, kinds::deployments(), "edge", "public-istio");
}

#[test]
fn a_waypoint_keeps_its_name_and_gets_a_cluster_ip_service_out_of_ambient_capture() {
    let mut w = world();
    put(
        &mut w,
        json!({
            "apiVersion": "gateway.networking.k8s.io/v1",
            "kind": "Gateway",
            "metadata": {"name": "waypoint", "namespace": "edge",
                         "labels": {"istio.io/waypoint-for": "service"}},
            "spec": {"gatewayClassName": "istio-waypoint",
                     "listeners": [{"name": "mesh", "port": 15008, "protocol": "HBONE"}]},
        }),
    );
    assert!(settle(&mut w));
    let d = get(&w, kinds::deployments(), "edge", "waypoint");
    assert_eq!(
        d["metadata"]["labels"][MANAGED_LABEL],
        "istio.io-mesh-controller"
    );
    assert_eq!(
        d["spec"]["template"]["metadata"]["labels"]["istio.io/dataplane-mode"],
        "none"
    );
    assert_eq!(
        d["spec"]["template"]["spec"]["containers"][0]["args"][1],
        "waypoint"
    );
    let svc = get(&w, kinds::services(), "edge", "waypoint");
    assert_eq!(svc["spec"]["type"], "ClusterIP");
    let gw = get(&w, kinds::gateways(), "edge", "waypoint");
    assert_eq!(condition(&gw, "Programmed")["status"], "True");
}

#[test]
fn a_custom_class_of_istios_controller_is_served_and_another_controllers_is_not() {
    let mut w = world();
    for (name, controller) in [
        ("internal", "istio.io/gateway-controller"),
        ("other", "example.com/gateway-controller"),
    ] {
        put(
            &mut w,
            json!({"apiVersion": "gateway.networking.k8s.io/v1", "kind": "GatewayClass",
                   "metadata": {"name": name}, "spec": {"controllerName": controller}}),
        );
    }
    put(&mut w, gateway("edge", "a", "internal", json!({})));
    put(&mut w, gateway("edge", "b", "other", json!({})));
    assert!(settle(&mut w));
    get(&w, kinds::deployments(), "edge", "a-internal");
    assert!(
        w.store
            .get(kinds::deployments(), "edge", "b-other")
            .is_none()
    );
    let other = get(&w, kinds::gateway_classes(), "", "other");
    assert!(other.get("status").is_none(), "not Istio's to accept");
    let builtin = get(&w, kinds::gateway_classes(), "", "istio-waypoint");
    assert_eq!(condition(&builtin, "Accepted")["status"], "True");
}

#[test]
fn an_image_from_an_invalid_registry_never_pulls_and_stalls_the_rollout() {
    let mut w = world();
    put(&mut w, gateway("edge", "public", "istio", json!({})));
    assert!(settle(&mut w));
    // The canary's injector now names a registry that does not exist.
    let mut cm = get(
        &w,
        kinds::configmaps(),
        "istio-system",
        "istio-sidecar-injector-1-22-3",
    );
    let values = cm["data"]["values"]
        .as_str()
        .unwrap()
        .replace("docker.io/istio", "registry.invalid/istio");
    cm["data"]["values"] = json!(values);
    w.update(kinds::configmaps(), cm, &WriteOptions::default())
        .unwrap();
    relabel(&mut w, "edge", "public", "istio.io/rev", "1-22-3");
    settle(&mut w);
    let d = get(&w, kinds::deployments(), "edge", "public-istio");
    assert_eq!(image_of(&d), "registry.invalid/istio/proxyv2:1.22.3");
    let pods: Vec<_> = w.store.list(kinds::pods(), Some("edge")).collect();
    let stuck = pods
        .iter()
        .find(|p| pod_image(p).starts_with("registry.invalid"))
        .expect("the new pod");
    assert_eq!(
        stuck["status"]["containerStatuses"][0]["state"]["waiting"]["reason"],
        "ImagePullBackOff"
    );
    assert!(!super::super::pods::is_ready(stuck));
    assert!(
        pods.iter().any(|p| super::super::pods::is_ready(p)),
        "the old pod keeps serving"
    );
}

#[test]
fn without_the_gateway_api_crds_a_gateway_cannot_be_created() {
    let mut w = World::new(SimConfig {
        gateway_api: false,
        ..SimConfig::default()
    });
    let err = w
        .create(
            kinds::gateways(),
            gateway("default", "public", "istio", json!({})),
            &WriteOptions::default(),
        )
        .expect_err("not served");
    assert_eq!(err.code, 404);
    assert_eq!(w.custom_kinds().count(), 0);
}
