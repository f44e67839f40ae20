use serde_json::json;

use super::*;
use crate::mesh::fixtures::{ClusterFixture, ProxySpec, WorkloadFixture, canary_fixture, labels};
use crate::write::Change;

fn set(tag: &str, revision: &str) -> TagRequest {
    TagRequest {
        tag: tag.into(),
        operation: TagOperation::Set {
            revision: revision.into(),
        },
        force: false,
    }
}

fn undo(tag: &str) -> TagRequest {
    TagRequest {
        tag: tag.into(),
        operation: TagOperation::Undo,
        force: false,
    }
}

fn remove(tag: &str, force: bool) -> TagRequest {
    TagRequest {
        tag: tag.into(),
        operation: TagOperation::Remove,
        force,
    }
}

/// The webhooks of a 1.22 `istioctl tag set <tag> --revision 1-22-3`.
fn webhooks_1_22(tag: &str, service: &str) -> Value {
    let core = |prefix: &str| {
        json!({
            "name": format!("{prefix}sidecar-injector.istio.io"),
            "clientConfig": {"service": {"name": service, "namespace": "istio-system", "path": "/inject", "port": 443}},
            "sideEffects": "None",
            "rules": [{"operations": ["CREATE"], "apiGroups": [""], "apiVersions": ["v1"], "resources": ["pods"]}],
            "failurePolicy": "Fail",
            "admissionReviewVersions": ["v1beta1", "v1"],
        })
    };
    let mut ns = core("rev.namespace.");
    ns["namespaceSelector"] = json!({"matchExpressions": [
        {"key": "istio.io/rev", "operator": "In", "values": [tag]},
        {"key": "istio-injection", "operator": "DoesNotExist"},
    ]});
    ns["objectSelector"] = json!({"matchExpressions": [
        {"key": "sidecar.istio.io/inject", "operator": "NotIn", "values": ["false"]},
    ]});
    let mut obj = core("rev.object.");
    obj["namespaceSelector"] = json!({"matchExpressions": [
        {"key": "istio.io/rev", "operator": "DoesNotExist"},
        {"key": "istio-injection", "operator": "DoesNotExist"},
    ]});
    obj["objectSelector"] = json!({"matchExpressions": [
        {"key": "sidecar.istio.io/inject", "operator": "NotIn", "values": ["false"]},
        {"key": "istio.io/rev", "operator": "In", "values": [tag]},
    ]});
    json!([ns, obj])
}

#[test]
fn a_new_tag_on_a_1_22_revision_is_the_webhook_configuration_istioctl_1_22_writes() {
    let snapshot = ClusterFixture::new()
        .revision("1-21-2", "1.21.2")
        .revision("1-22-3", "1.22.3")
        .build();
    let plan = plan(&snapshot, &set("prod-canary", "1-22-3")).unwrap();
    assert_eq!(plan.from_revision, None);
    assert_eq!(plan.to_revision.as_deref(), Some("1-22-3"));
    assert_eq!(plan.istio_version.as_deref(), Some("1.22.3"));
    assert_eq!(plan.writes.len(), 1, "no Service before 1.28: {plan:#?}");
    let write = &plan.writes[0];
    assert_eq!(
        write.target,
        ObjectRef::cluster(
            ObjectKind::MutatingWebhookConfiguration,
            "istio-revision-tag-prod-canary"
        )
    );
    assert_eq!(write.precondition, Precondition::None);
    assert_eq!(
        write.change,
        Change::Create(json!({
            "apiVersion": "admissionregistration.k8s.io/v1",
            "kind": "MutatingWebhookConfiguration",
            "metadata": {
                "name": "istio-revision-tag-prod-canary",
                // The chart's labels without the operator's, and the
                // revision's own configuration's labels but `app`.
                "labels": {
                    "app": "sidecar-injector",
                    "istio.io/rev": "1-22-3",
                    "istio.io/tag": "prod-canary",
                    "release": "istio",
                },
                "annotations": {"mesh-upgrade.io/previous-revision": "{\"revision\":null}"},
            },
            "webhooks": webhooks_1_22("prod-canary", "istiod-1-22-3"),
        }))
    );
    assert!(
        plan.notes[0].contains(
            "those `istioctl tag set prod-canary --revision 1-22-3` of Istio 1.22.3 writes"
        ),
        "{:?}",
        plan.notes
    );
    assert!(
        plan.notes
            .iter()
            .any(|n| n.contains("no Service istiod-revision-tag-prod-canary")),
        "{:?}",
        plan.notes
    );
    assert_eq!(
        plan.undo.as_deref(),
        Some("kubectl mesh-upgrade tag set --undo prod-canary")
    );
}

#[test]
fn a_1_28_revision_gets_the_newer_chart_layout_and_the_tag_service() {
    let snapshot = ClusterFixture::new()
        .revision("1-28-1", "1.28.1")
        .edit(|s| {
            let own = &mut s.webhook_configurations[0];
            own.labels
                .insert("operator.istio.io/component".into(), "Pilot".into());
            own.labels
                .insert("app.kubernetes.io/instance".into(), "istiod".into());
            own.annotations.insert("team".into(), "mesh".into());
            own.annotations
                .insert("mesh-upgrade.io/other".into(), "x".into());
            own.webhooks[0].ca_bundle = Some("Q0E=".into());
            own.webhooks[0].reinvocation_policy = Some("IfNeeded".into());
        })
        .build();
    let plan = plan(&snapshot, &set("prod-stable", "1-28-1")).unwrap();
    let [webhooks, service] = plan.writes.as_slice() else {
        panic!("two creates: {plan:#?}");
    };
    let Change::Create(object) = &webhooks.change else {
        panic!("a create");
    };
    assert_eq!(
        object["metadata"]["labels"],
        json!({
            "app": "sidecar-injector",
            "app.kubernetes.io/instance": "istiod",
            "app.kubernetes.io/managed-by": "Helm",
            "app.kubernetes.io/name": "istiod",
            "app.kubernetes.io/part-of": "istio",
            "app.kubernetes.io/version": "1.28.1",
            "helm.sh/chart": "istiod-1.28.1",
            "istio.io/rev": "1-28-1",
            "istio.io/tag": "prod-stable",
            "release": "istio",
        })
    );
    assert_eq!(
        object["metadata"]["annotations"],
        json!({"team": "mesh", "mesh-upgrade.io/previous-revision": "{\"revision\":null}"})
    );
    for hook in object["webhooks"].as_array().unwrap() {
        assert_eq!(hook["reinvocationPolicy"], "IfNeeded");
        assert_eq!(hook["admissionReviewVersions"], json!(["v1"]));
        assert_eq!(hook["clientConfig"]["caBundle"], "Q0E=");
    }
    assert_eq!(
        service.change,
        Change::Create(json!({
            "apiVersion": "v1",
            "kind": "Service",
            "metadata": {
                "name": "istiod-revision-tag-prod-stable",
                "namespace": "istio-system",
                "annotations": {"mesh-upgrade.io/previous-revision": "{\"revision\":null}"},
                "labels": {
                    "app": "istiod",
                    "app.kubernetes.io/instance": "istio",
                    "app.kubernetes.io/managed-by": "Helm",
                    "app.kubernetes.io/name": "istiod",
                    "app.kubernetes.io/part-of": "istio",
                    "app.kubernetes.io/version": "1.28.1",
                    "helm.sh/chart": "istiod-1.28.1",
                    "istio": "pilot",
                    "istio.io/rev": "1-28-1",
                    "istio.io/tag": "prod-stable",
                    "release": "istio",
                },
            },
            "spec": {
                "ports": [
                    {"port": 15010, "name": "grpc-xds", "protocol": "TCP"},
                    {"port": 15012, "name": "https-dns", "protocol": "TCP"},
                    {"port": 443, "name": "https-webhook", "targetPort": 15017, "protocol": "TCP"},
                    {"port": 15014, "name": "http-monitoring", "protocol": "TCP"},
                ],
                "selector": {"app": "istiod", "istio.io/rev": "1-28-1"},
            },
        }))
    );
}

#[test]
fn the_chart_layout_follows_the_istio_version() {
    let layout = |v: &str| ChartLayout::of(Some(v));
    assert_eq!(
        layout("1.22.3").admission_review_versions(),
        ["v1beta1", "v1"]
    );
    assert_eq!(layout("1.23.0").admission_review_versions(), ["v1"]);
    assert!(!layout("1.23.4").renders_helm_labels());
    assert!(layout("1.24.0").renders_helm_labels());
    assert!(!layout("1.25.2").renders_reinvocation_policy());
    assert!(layout("1.26.0").renders_reinvocation_policy());
    assert!(!layout("1.27.3").renders_tag_service());
    assert!(layout("1.28.0").renders_tag_service());
    assert!(layout("1.28.0-distroless").renders_tag_service());
    let unknown = ChartLayout::of(None);
    assert!(unknown.renders_reinvocation_policy() && !unknown.renders_tag_service());
}

#[test]
fn moving_a_tag_patches_its_configuration_on_its_version_and_shows_what_becomes_stale() {
    let snapshot = canary_fixture()
        .edit(|s| {
            for c in &mut s.webhook_configurations {
                c.resource_version = format!("rv-{}", c.name);
            }
        })
        .build();
    let plan = plan(&snapshot, &set("prod-stable", "1-22-3")).unwrap();
    assert_eq!(plan.from_revision.as_deref(), Some("1-21-2"));
    let [write] = plan.writes.as_slice() else {
        panic!("one patch: {plan:#?}");
    };
    assert_eq!(
        write.precondition,
        Precondition::ResourceVersion("rv-istio-revision-tag-prod-stable".into())
    );
    assert_eq!(
        write.body_to_send(),
        json!({
            "metadata": {
                "labels": {
                    "app": "sidecar-injector",
                    "istio.io/rev": "1-22-3",
                    "istio.io/tag": "prod-stable",
                    "release": "istio",
                },
                "annotations": {"mesh-upgrade.io/previous-revision": "{\"revision\":\"1-21-2\"}"},
                "resourceVersion": "rv-istio-revision-tag-prod-stable",
            },
            "webhooks": webhooks_1_22("prod-stable", "istiod-1-22-3"),
        })
    );
    assert_eq!(
        plan.namespaces,
        [NamespaceMove {
            namespace: "cart".into(),
            via: "istio.io/rev=prod-stable".into(),
            before: Some("1-21-2".into()),
            after: Some("1-22-3".into()),
        }]
    );
    let stale: Vec<String> = plan
        .becoming_stale()
        .iter()
        .map(|w| format!("{}/{}", w.namespace, w.name))
        .collect();
    assert_eq!(stale, ["cart/cart"]);
    assert_eq!(plan.workloads[0].after_version.as_deref(), Some("1.22.3"));
}

#[test]
fn a_gateway_whose_template_names_the_tag_is_affected() {
    let snapshot = canary_fixture()
        .workload(
            WorkloadFixture::deployment("istio-gateways", "edge")
                .gateway("1-21-2")
                .template_label("istio.io/rev", "prod-stable")
                .pods(2, ProxySpec::istio("1-21-2", "1.21.2")),
        )
        .build();
    let plan = plan(&snapshot, &set("prod-stable", "1-22-3")).unwrap();
    let gateways: Vec<&AffectedWorkload> = plan.workloads.iter().filter(|w| w.gateway).collect();
    assert_eq!(gateways.len(), 1, "{:#?}", plan.workloads);
    assert_eq!(gateways[0].name, "edge");
    assert!(gateways[0].becomes_stale);
}

#[test]
fn gateway_api_gateways_following_the_tag_are_re_rendered_and_shown_others_are_not() {
    let mut snapshot = canary_fixture().namespace("edge", &[]).build();
    let gateway =
        |name: &str, class: &str, rev: Option<&str>| crate::snapshot::gateway_api::GatewayInfo {
            namespace: "edge".into(),
            name: name.into(),
            class: class.into(),
            labels: rev
                .map(|r| labels(&[("istio.io/rev", r)]))
                .unwrap_or_default(),
            ..Default::default()
        };
    snapshot.gateway_api.installed = true;
    snapshot.gateway_api.gateways = vec![
        gateway("public", "istio", Some("prod-stable")),
        gateway("pinned", "istio", Some("1-21-2")),
        gateway("other-controller", "nginx", Some("prod-stable")),
    ];
    let plan = plan(&snapshot, &set("prod-stable", "1-22-3")).unwrap();
    assert_eq!(
        plan.gateway_api,
        [AffectedGatewayApi {
            namespace: "edge".into(),
            name: "public".into(),
            class: "istio".into(),
            before: Some("1-21-2".into()),
            after: Some("1-22-3".into()),
        }]
    );
}

#[test]
fn a_tag_already_pointing_at_the_revision_needs_no_write() {
    let snapshot = canary_fixture().build();
    let plan = plan(&snapshot, &set("prod-canary", "1-22-3")).unwrap();
    assert!(plan.is_empty(), "{plan:#?}");
    assert!(plan.namespaces.is_empty() && plan.workloads.is_empty());
}

#[test]
fn a_tag_named_like_a_revision_an_unknown_target_and_a_bad_name_are_refused() {
    let snapshot = canary_fixture().build();
    let refused = |request: TagRequest| plan(&snapshot, &request).unwrap_err().to_string();
    let collision = refused(set("1-21-2", "1-22-3"));
    assert!(
        collision.contains("a revision named 1-21-2 exists"),
        "{collision}"
    );
    let unknown = refused(set("prod-next", "1-23-0"));
    assert!(
        unknown
            .contains("no istiod of revision 1-23-0 (revisions: 1-21-2 (1.21.2), 1-22-3 (1.22.3))"),
        "{unknown}"
    );
    let a_tag = refused(set("prod-next", "prod-canary"));
    assert!(
        a_tag.contains("prod-canary is a tag (-> 1-22-3)"),
        "{a_tag}"
    );
    assert!(matches!(
        plan(&snapshot, &set("Prod", "1-22-3")),
        Err(Error::Usage(_))
    ));
    assert!(matches!(
        plan(&snapshot, &set("prod-", "1-22-3")),
        Err(Error::Usage(_))
    ));
}

#[test]
fn an_unready_target_is_refused_unless_forced() {
    let snapshot = canary_fixture().unready("1-22-3").build();
    let err = plan(&snapshot, &set("prod-stable", "1-22-3")).unwrap_err();
    assert!(
        err.to_string()
            .contains("istiod-1-22-3 (revision 1-22-3) has no Ready pod (0/1 ready)"),
        "{err}"
    );
    let forced = plan(
        &snapshot,
        &TagRequest {
            force: true,
            ..set("prod-stable", "1-22-3")
        },
    )
    .unwrap();
    assert!(forced.notes.iter().any(|n| n.starts_with("--force:")));
}

/// The snapshot as it is once `plan`'s writes are stored.
fn after(snapshot: &ClusterSnapshot, plan: &TagPlan) -> ClusterSnapshot {
    let mut after = snapshot.clone();
    plan.apply_to(&mut after);
    for c in &mut after.webhook_configurations {
        if c.uid.is_empty() {
            c.uid = format!("uid-{}", c.name);
        }
        c.resource_version = "after".into();
    }
    for s in &mut after.services {
        if s.uid.is_empty() {
            s.uid = format!("uid-{}", s.name);
        }
        s.resource_version = "after".into();
    }
    after
}

#[test]
fn undo_moves_the_tag_back_and_removes_the_record() {
    let snapshot = canary_fixture().build();
    let moved = plan(&snapshot, &set("prod-stable", "1-22-3")).unwrap();
    let now = after(&snapshot, &moved);
    let back = plan(&now, &undo("prod-stable")).unwrap();
    assert_eq!(
        (back.from_revision.as_deref(), back.to_revision.as_deref()),
        (Some("1-22-3"), Some("1-21-2"))
    );
    let [write] = back.writes.as_slice() else {
        panic!("one patch: {back:#?}");
    };
    let body = write.body_to_send();
    assert_eq!(body["metadata"]["labels"]["istio.io/rev"], "1-21-2");
    assert_eq!(
        body["metadata"]["annotations"],
        json!({"mesh-upgrade.io/previous-revision": null})
    );
    assert_eq!(
        body["webhooks"],
        webhooks_1_22("prod-stable", "istiod-1-21-2")
    );
    assert_eq!(back.namespaces[0].after.as_deref(), Some("1-21-2"));
    // Once undone, nothing is recorded: a second undo is refused.
    let twice = plan(&after(&now, &back), &undo("prod-stable")).unwrap_err();
    assert!(twice.to_string().contains("nothing recorded"), "{twice}");
}

#[test]
fn undo_of_a_tag_the_move_created_deletes_what_it_created() {
    let snapshot = ClusterFixture::new()
        .revision("1-27-3", "1.27.3")
        .revision("1-28-1", "1.28.1")
        .build();
    let created = plan(&snapshot, &set("prod-canary", "1-28-1")).unwrap();
    assert_eq!(created.writes.len(), 2);
    let now = after(&snapshot, &created);
    assert_eq!(
        ControlPlane::from_snapshot(&now)
            .tag("prod-canary")
            .map(|t| (t.revision.clone(), t.service.is_some())),
        Some((Some("1-28-1".into()), true))
    );
    let back = plan(&now, &undo("prod-canary")).unwrap();
    let deletes: Vec<(String, Precondition)> = back
        .writes
        .iter()
        .map(|w| {
            assert_eq!(w.change, Change::Delete);
            (w.target.to_string(), w.precondition.clone())
        })
        .collect();
    assert_eq!(
        deletes,
        [
            (
                "mutatingwebhookconfiguration/istio-revision-tag-prod-canary".to_string(),
                Precondition::Uid("uid-istio-revision-tag-prod-canary".into())
            ),
            (
                "istio-system/service/istiod-revision-tag-prod-canary".to_string(),
                Precondition::Uid("uid-istiod-revision-tag-prod-canary".into())
            ),
        ]
    );
    assert_eq!(back.to_revision, None);
}

#[test]
fn moving_the_default_tag_deactivates_the_default_revisions_own_webhooks_and_undo_restores_them() {
    let snapshot = ClusterFixture::new()
        .default_revision_install("default", "1.21.2")
        .revision("1-22-3", "1.22.3")
        .namespace("shop", &[("istio-injection", "enabled")])
        .workload(
            WorkloadFixture::deployment("shop", "web")
                .pods(2, ProxySpec::istio("default", "1.21.2")),
        )
        .edit(|s| {
            for c in &mut s.webhook_configurations {
                c.resource_version = "7".into();
            }
        })
        .build();
    let moved = plan(&snapshot, &set("default", "1-22-3")).unwrap();
    let [create, deactivate] = moved.writes.as_slice() else {
        panic!("a create and a deactivation: {moved:#?}");
    };
    let Change::Create(object) = &create.change else {
        panic!("a create");
    };
    let names: Vec<&str> = object["webhooks"]
        .as_array()
        .unwrap()
        .iter()
        .map(|h| h["name"].as_str().unwrap())
        .collect();
    assert_eq!(
        names,
        [
            "rev.namespace.sidecar-injector.istio.io",
            "rev.object.sidecar-injector.istio.io",
            "namespace.sidecar-injector.istio.io",
            "object.sidecar-injector.istio.io",
        ]
    );
    assert_eq!(deactivate.target.name, "istio-sidecar-injector");
    let Change::Patch(Patch::Json(ops)) = &deactivate.change else {
        panic!("a JSON patch");
    };
    let ops = ops.as_array().unwrap();
    assert_eq!(
        ops[0],
        json!({"op": "test", "path": "/metadata/resourceVersion", "value": "7"})
    );
    assert_eq!(
        ops[1..4],
        [
            json!({"op": "test", "path": "/webhooks/0/name", "value": "rev.namespace.sidecar-injector.istio.io"}),
            json!({"op": "add", "path": "/webhooks/0/namespaceSelector", "value": never_match()}),
            json!({"op": "add", "path": "/webhooks/0/objectSelector", "value": never_match()}),
        ]
    );
    let record = ops.last().unwrap();
    assert_eq!(record["path"], "/metadata/annotations");
    let saved: Value = serde_json::from_str(
        record["value"][DEACTIVATED_WEBHOOKS_ANNOTATION]
            .as_str()
            .unwrap(),
    )
    .unwrap();
    assert_eq!(
        saved["namespace.sidecar-injector.istio.io"]["namespaceSelector"],
        json!({"matchExpressions": [{"key": "istio-injection", "operator": "In", "values": ["enabled"]}]})
    );
    // istio-injection=enabled namespaces now get 1-22-3, through the tag.
    assert_eq!(
        moved.namespaces,
        [NamespaceMove {
            namespace: "shop".into(),
            via: "istio-injection=enabled".into(),
            before: Some("default".into()),
            after: Some("1-22-3".into()),
        }]
    );
    assert_eq!(moved.becoming_stale().len(), 1);

    let now = after(&snapshot, &moved);
    let back = plan(&now, &undo("default")).unwrap();
    let [reactivate, delete] = back.writes.as_slice() else {
        panic!("a reactivation and a delete: {back:#?}");
    };
    assert_eq!(delete.change, Change::Delete);
    let Change::Patch(Patch::Json(ops)) = &reactivate.change else {
        panic!("a JSON patch");
    };
    let ops = ops.as_array().unwrap();
    assert!(ops.contains(&json!({
        "op": "add",
        "path": "/webhooks/2/namespaceSelector",
        "value": {"matchExpressions": [{"key": "istio-injection", "operator": "In", "values": ["enabled"]}]},
    })));
    // The record was its only annotation: the map goes, as it was before.
    assert_eq!(
        ops.last().unwrap(),
        &json!({"op": "remove", "path": "/metadata/annotations"})
    );
    assert_eq!(back.namespaces[0].after.as_deref(), Some("default"));
}

#[test]
fn a_default_revision_already_deactivated_is_not_written_again() {
    let snapshot = ClusterFixture::new()
        .default_revision_install("default", "1.21.2")
        .revision("1-22-3", "1.22.3")
        .tag("default", "default")
        .build();
    let moved = plan(&snapshot, &set("default", "1-22-3")).unwrap();
    assert_eq!(moved.writes.len(), 1, "{moved:#?}");
    assert_eq!(moved.writes[0].target.name, "istio-revision-tag-default");
}

#[test]
fn removing_a_tag_namespaces_use_is_refused_unless_forced() {
    let snapshot = canary_fixture().build();
    let err = plan(&snapshot, &remove("prod-stable", false)).unwrap_err();
    assert!(
        err.to_string()
            .contains("tag prod-stable is still used by 1 namespace (cart)"),
        "{err}"
    );
    let forced = plan(&snapshot, &remove("prod-stable", true)).unwrap();
    assert_eq!(forced.writes.len(), 1);
    assert_eq!(forced.writes[0].change, Change::Delete);
    assert_eq!(forced.namespaces[0].after, None);
    assert_eq!(
        forced.undo.as_deref(),
        Some("kubectl mesh-upgrade tag set prod-stable --revision 1-21-2")
    );
    let unknown = plan(&snapshot, &remove("prod-nope", false)).unwrap_err();
    assert!(
        unknown
            .to_string()
            .contains("no webhook configuration or Service labelled istio.io/tag=prod-nope"),
        "{unknown}"
    );
}

#[test]
fn a_write_that_the_fresh_object_already_shows_has_landed() {
    let snapshot = canary_fixture().build();
    let moved = plan(&snapshot, &set("prod-stable", "1-22-3")).unwrap();
    let write = &moved.writes[0];
    let fresh = json!({
        "metadata": {
            "name": "istio-revision-tag-prod-stable",
            "labels": {"istio.io/rev": "1-22-3", "istio.io/tag": "prod-stable", "app": "sidecar-injector"},
            "annotations": {"mesh-upgrade.io/previous-revision": "{\"revision\":\"1-21-2\"}"},
        },
        "webhooks": webhooks_1_22("prod-stable", "istiod-1-22-3"),
    });
    assert!(landed(write, &fresh));
    let mut other = fresh.clone();
    other["metadata"]["labels"]["istio.io/rev"] = json!("1-21-2");
    assert!(!landed(write, &other));
    let mut old_hooks = fresh;
    old_hooks["webhooks"] = webhooks_1_22("prod-stable", "istiod-1-21-2");
    assert!(!landed(write, &old_hooks));
}

#[test]
fn tag_list_shows_each_tag_its_representation_and_its_users() {
    let snapshot = canary_fixture()
        .tag_service("prod-stable", "1-21-2")
        .tag_service("prod-next", "1-22-3")
        .build();
    let list = tag_list(&snapshot);
    let row = |name: &str| list.tags.iter().find(|t| t.name == name).unwrap().clone();
    let stable = row("prod-stable");
    assert_eq!(stable.representation, "both");
    assert_eq!(stable.namespaces, ["cart"]);
    assert_eq!(stable.pods, 2);
    assert_eq!(
        stable.pods_by_namespace,
        BTreeMap::from([("cart".to_string(), 2)])
    );
    let default = row("default");
    assert_eq!(default.representation, "webhook");
    assert_eq!(default.namespaces, ["legacy", "shop"]);
    assert_eq!(default.pods, 5);
    let next = row("prod-next");
    assert_eq!(next.representation, "service");
    assert!(
        next.problems[0].contains("no injector webhook serves it"),
        "{:?}",
        next.problems
    );
    assert_eq!(labels(&[]), Labels::new());
}

#[test]
fn records_round_trip() {
    assert_eq!(
        parse_record(&record_value(Some("1-21-2"))),
        Some(Some("1-21-2".into()))
    );
    assert_eq!(parse_record(&record_value(None)), Some(None));
    assert_eq!(parse_record("1-21-2"), None);
}
