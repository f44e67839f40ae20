//! The lean decoders against the `From<&K>` conversions: the same objects,
//! decoded both ways, must give equal snapshot structs.

use k8s_openapi::api::apps::v1::{DaemonSet, Deployment, ReplicaSet, StatefulSet};
use k8s_openapi::api::core::v1::Pod;
use k8s_openapi::api::policy::v1::PodDisruptionBudget;
use serde::de::{DeserializeOwned, IgnoredAny};
use serde_json::{Value, json};

use super::*;

/// A list page holding `items`, written as an API server writes it.
fn page(items: &[Value]) -> Vec<u8> {
    json!({
        "kind": "List", "apiVersion": "v1",
        "metadata": {"resourceVersion": "42", "continue": "next"},
        "items": items,
    })
    .to_string()
    .into_bytes()
}

/// What a page decoder pushes for `page`.
fn decoded<T>(
    decode: impl FnOnce(&[u8], &mut Vec<T>) -> Decoded,
    page: &[u8],
) -> Result<Vec<T>, serde_json::Error> {
    let mut out = Vec::new();
    decode(page, &mut out).map(|()| out)
}

/// A decoder that shares within one page only (a fresh interner).
fn fresh<T>(
    decode: fn(&[u8], &Interner, &mut Vec<T>) -> Decoded,
) -> impl FnOnce(&[u8], &mut Vec<T>) -> Decoded {
    move |page, out| decode(page, &Interner::default(), out)
}

/// Each item as its k8s-openapi type `K`, converted with `from`.
fn old_way<K: DeserializeOwned, T>(items: &[Value], from: impl Fn(&K) -> T) -> Vec<T> {
    items
        .iter()
        .map(|item| from(&serde_json::from_value::<K>(item.clone()).expect("a valid object")))
        .collect()
}

fn pod_fixtures() -> Vec<Value> {
    let proxy_resources = json!({
        "requests": {"cpu": "100m", "memory": "128Mi"},
        "limits": {"cpu": "2", "memory": "1Gi"},
    });
    vec![
        // A sidecar in containers, with resources, the injector's annotations
        // (the status one full of escapes), owners, conditions, timestamps.
        json!({
            "metadata": {
                "name": "cart-7d9c-abcde", "namespace": "shop", "uid": "u-1",
                "creationTimestamp": "2024-05-01T10:00:00Z",
                "labels": {"app": "cart", "istio.io/rev": "1-22-3", "pod-template-hash": "7d9c",
                           "note": "caf\u{e9} \"quoted\""},
                "annotations": {
                    "sidecar.istio.io/status": "{\"initContainers\":[\"istio-init\"],\"containers\":[\"istio-proxy\"],\"revision\":\"1-22-3\"}",
                    "sidecar.istio.io/proxyImageType": "distroless",
                    "kubectl.kubernetes.io/last-applied-configuration": "{\"big\": \"\\u00e9\\n\"}",
                    "prometheus.io/scrape": "true",
                },
                "ownerReferences": [
                    {"apiVersion": "apps/v1", "kind": "ReplicaSet", "name": "cart-7d9c",
                     "uid": "rs-1", "controller": true, "blockOwnerDeletion": true},
                    {"apiVersion": "v1", "kind": "ConfigMap", "name": "extra", "uid": "cm-1"},
                ],
                "managedFields": [{"manager": "kubelet", "fieldsV1": {"f:status": {}}}],
            },
            "spec": {
                "initContainers": [
                    {"name": "istio-init", "image": "docker.io/istio/proxyv2:1.22.3"},
                ],
                "containers": [
                    {"name": "app", "image": "shop/cart:1", "ports": [{"containerPort": 8080}],
                     "resources": {"requests": {"cpu": "1"}}},
                    {"name": "istio-proxy", "image": "docker.io/istio/proxyv2:1.22.3-distroless",
                     "resources": proxy_resources,
                     "env": [{"name": "A", "value": "b"}]},
                ],
                "volumes": [{"name": "v", "emptyDir": {}}],
            },
            "status": {
                "phase": "Running",
                "conditions": [
                    {"type": "Initialized", "status": "True"},
                    {"type": "Ready", "status": "True", "lastTransitionTime": "2024-05-01T10:00:05Z"},
                ],
                "containerStatuses": [{"name": "app", "ready": true, "restartCount": 0}],
            },
        }),
        // A native sidecar (init container, restartPolicy Always), the CNI's
        // validation step, a custom image, the inject annotation, a pod
        // being deleted, not Ready.
        json!({
            "metadata": {
                "name": "ledger-0", "namespace": "pay", "uid": "u-2",
                "creationTimestamp": "2024-05-02T11:12:13Z",
                "deletionTimestamp": "2024-05-02T12:00:00Z",
                "labels": {"app": "ledger", "controller-revision-hash": "ledger-5f"},
                "annotations": {
                    "sidecar.istio.io/status": "{\"revision\":\"\"}",
                    "sidecar.istio.io/proxyImage": "reg:5000/custom/proxy:1",
                    "sidecar.istio.io/inject": "true",
                },
                "ownerReferences": [
                    {"apiVersion": "apps/v1", "kind": "StatefulSet", "name": "ledger",
                     "uid": "sts-1", "controller": true},
                ],
            },
            "spec": {
                "initContainers": [
                    {"name": "istio-validation", "image": "docker.io/istio/proxyv2:1.22.3"},
                    {"name": "istio-proxy", "image": "docker.io/istio/proxyv2:1.22.3",
                     "restartPolicy": "Always", "resources": {"limits": {}, "requests": {}}},
                ],
                "containers": [{"name": "ledger", "image": "pay/ledger:2"}],
            },
            "status": {
                "phase": "Running",
                "conditions": [{"type": "Ready", "status": "False", "reason": "ContainersNotReady"}],
            },
        }),
        // hostNetwork, the proxy as an init container whose restartPolicy an
        // older API server dropped, resources with only claims.
        json!({
            "metadata": {"name": "node-agent-x", "namespace": "kube-system", "uid": "u-3",
                         "labels": {"sidecar.istio.io/inject": "false"},
                         "annotations": {"sidecar.istio.io/inject": "false"}},
            "spec": {
                "hostNetwork": true,
                "initContainers": [
                    {"name": "istio-proxy", "image": "docker.io/istio/proxyv2:1.21.2",
                     "resources": {"claims": [{"name": "gpu"}], "requests": {"cpu": "10m"}}},
                ],
                "containers": [{"name": "agent", "image": "agent:1"}],
            },
            "status": {"phase": "Pending"},
        }),
        // A container named istio-proxy without an image is no proxy; no
        // status at all, null labels and annotations.
        json!({
            "metadata": {"name": "bare", "namespace": "shop", "labels": null, "annotations": null},
            "spec": {"containers": [{"name": "app", "image": "a:1"}, {"name": "istio-proxy"}]},
        }),
        // Next to nothing.
        json!({"metadata": {"name": "empty"}}),
    ]
}

#[test]
fn pods_decode_leanly_to_what_the_full_conversion_gives() {
    let items = pod_fixtures();
    let lean = decoded(fresh(pods), &page(&items)).expect("the page decodes");
    assert_eq!(lean, old_way(&items, |p: &Pod| PodInfo::from(p)));
    // The fixtures do exercise what they claim to.
    assert_eq!(
        lean[0].proxy.sidecar_resources.as_deref(),
        Some(r#"{"limits":{"cpu":"2","memory":"1Gi"},"requests":{"cpu":"100m","memory":"128Mi"}}"#)
    );
    assert_eq!(lean[0].labels.get("note"), Some("café \"quoted\""));
    assert_eq!(lean[0].proxy.status_revision.as_deref(), Some("1-22-3"));
    assert!(lean[0].ready && !lean[1].ready && lean[1].terminating);
    assert_eq!(
        lean[1].proxy.sidecar.as_ref().map(|s| s.placement),
        Some(SidecarPlacement::NativeSidecar)
    );
    assert_eq!(lean[1].proxy.init_steps, ["istio-validation"]);
    assert_eq!(
        lean[2].proxy.sidecar.as_ref().map(|s| s.placement),
        Some(SidecarPlacement::InitContainer)
    );
    assert!(lean[2].proxy.host_network);
    assert!(lean[2].proxy.sidecar_resources.is_some());
    assert_eq!(lean[3].proxy.sidecar, None);
    assert_eq!(lean[4].phase, "Unknown");
    assert_eq!(lean[0].owners.len(), 2);
}

use super::super::{Shared, SidecarPlacement};

#[test]
fn pods_of_one_workload_share_their_labels_owners_and_proxy_facts_across_pages() {
    // Two pages, as a LIST hands them out, decoded with the one interner of
    // a read: the second page's pod holds the first's copies, not its own.
    let item = |name: &str| {
        let mut pod = pod_fixtures()[0].clone();
        pod["metadata"]["name"] = json!(name);
        pod["metadata"]["uid"] = json!(format!("uid-{name}"));
        pod
    };
    let interner = Interner::default();
    let mut out = Vec::new();
    pods(&page(&[item("cart-1")]), &interner, &mut out).expect("page 1");
    pods(&page(&[item("cart-2")]), &interner, &mut out).expect("page 2");
    let (a, b) = (&out[0], &out[1]);
    assert_ne!(a.name, b.name);
    assert_eq!(a.labels, b.labels);
    assert!(a.labels.shares_entries_with(&b.labels));
    assert!(Shared::ptr_eq(&a.owners, &b.owners));
    assert!(Shared::ptr_eq(&a.proxy, &b.proxy));
    assert!(Shared::ptr_eq(&a.ambient, &b.ambient));
    // A fresh interner per page shares nothing between pages.
    let mut apart = Vec::new();
    pods(&page(&[item("cart-1")]), &Interner::default(), &mut apart).expect("page 1");
    pods(&page(&[item("cart-2")]), &Interner::default(), &mut apart).expect("page 2");
    assert!(!apart[0].labels.shares_entries_with(&apart[1].labels));
    assert!(!Shared::ptr_eq(&apart[0].proxy, &apart[1].proxy));
}

#[test]
fn a_pod_next_to_one_it_differs_from_in_one_field_is_read_as_itself() {
    // A pod is compared with the one before it in its page and takes that
    // one's shared values when its inputs are the same. Each variant below
    // differs from the first fixture in one thing the comparison looks at,
    // and sits between two copies of it: read alone, by the full
    // conversion, it must come out the same.
    let base = pod_fixtures()[0].clone();
    let variant = |edit: &dyn Fn(&mut Value)| {
        let mut pod = base.clone();
        pod["metadata"]["name"] = json!("cart-7d9c-other");
        edit(&mut pod);
        pod
    };
    let edits: Vec<fn(&mut Value)> = vec![
        |p| p["metadata"]["namespace"] = json!("shop-2"),
        |p| p["metadata"]["labels"]["app"] = json!("cart-2"),
        |p| p["metadata"]["labels"]["zz-extra"] = json!("1"),
        |p| p["metadata"]["labels"] = json!(null),
        |p| p["metadata"]["ownerReferences"][0]["uid"] = json!("rs-2"),
        |p| p["metadata"]["ownerReferences"][0]["controller"] = json!(false),
        |p| p["status"]["phase"] = json!("Pending"),
        |p| {
            p["metadata"]["annotations"]["sidecar.istio.io/status"] =
                json!("{\"revision\":\"canary\"}")
        },
        |p| p["metadata"]["annotations"]["ambient.istio.io/redirection"] = json!("enabled"),
        |p| p["spec"]["containers"][1]["image"] = json!("docker.io/istio/proxyv2:1.23.0"),
        |p| p["spec"]["containers"][1]["resources"]["limits"]["cpu"] = json!("3"),
        |p| p["spec"]["containers"][1]["restartPolicy"] = json!("Always"),
        |p| p["spec"]["initContainers"] = json!([]),
        |p| p["spec"]["hostNetwork"] = json!(true),
        |p| p["spec"]["nodeName"] = json!("node-7"),
        // ztunnel's labels alone make its data-plane facts.
        |p| p["metadata"]["labels"]["app"] = json!("ztunnel"),
        |p| {
            p["spec"]["containers"][1]["env"] =
                json!([{"name": "XDS_ADDRESS", "value": "istiod.istio-system.svc:15012"}]);
        },
    ];
    let mut items = vec![base.clone()];
    for edit in &edits {
        items.push(variant(edit));
        items.push(base.clone());
    }
    let alone = old_way(&items, |p: &Pod| PodInfo::from(p));
    assert!(alone.iter().any(|p| p.ambient.data_plane.is_some()));
    assert_eq!(decoded(fresh(pods), &page(&items)).unwrap(), alone);
    assert_eq!(decoded(fresh(pods), &protobuf_page(&items)).unwrap(), alone);
    // And the copies of the first fixture still share one of everything.
    let lean = decoded(fresh(pods), &protobuf_page(&items)).unwrap();
    assert!(Shared::ptr_eq(&lean[0].proxy, &lean[2].proxy));
    assert!(lean[0].labels.shares_entries_with(&lean[2].labels));
}

fn template(labels: Value, annotations: Value, spec: Value) -> Value {
    json!({"metadata": {"labels": labels, "annotations": annotations}, "spec": spec})
}

fn injected_template() -> Value {
    template(
        json!({"app": "cart", "sidecar.istio.io/inject": "true"}),
        json!({
            "sidecar.istio.io/proxyCPU": "100m",
            "proxy.istio.io/config": "{\"holdApplicationUntilProxyStarts\": true}",
            "inject.istio.io/templates": "sidecar",
            "kubectl.kubernetes.io/restartedAt": "2024-05-01T10:00:00Z",
            "unrelated.example.com/x": "dropped",
        }),
        json!({
            "containers": [
                {"name": "app", "image": "shop/cart:1",
                 "ports": [{"containerPort": 8080, "name": "http"}, {"containerPort": 9090}]},
                {"name": "istio-proxy", "image": "auto"},
            ],
            "initContainers": [{"name": "migrate", "image": "shop/migrate:1"}],
        }),
    )
}

#[test]
fn replica_sets_decode_leanly_to_what_the_full_conversion_gives() {
    let items = vec![
        json!({
            "metadata": {"name": "cart-7d9c", "namespace": "shop", "uid": "rs-1",
                         "annotations": {"deployment.kubernetes.io/revision": "3",
                                         "deployment.kubernetes.io/desired-replicas": "2"},
                         "ownerReferences": [{"apiVersion": "apps/v1", "kind": "Deployment",
                                              "name": "cart", "uid": "d-1", "controller": true}]},
            "spec": {"replicas": 2, "selector": {"matchLabels": {"app": "cart"}},
                     "template": injected_template()},
            "status": {"replicas": 2, "readyReplicas": 1, "availableReplicas": 1},
        }),
        // A bare ReplicaSet keeps its template; a native sidecar written in it.
        json!({
            "metadata": {"name": "bare", "namespace": "shop", "uid": "rs-2"},
            "spec": {"selector": {"matchExpressions": [{"key": "app", "operator": "In", "values": ["bare"]}]},
                     "template": template(json!({"app": "bare"}), json!(null), json!({
                         "hostNetwork": true,
                         "containers": [{"name": "app", "image": "bare:1"}],
                         "initContainers": [{"name": "istio-proxy", "image": "docker.io/istio/proxyv2:1.22.3",
                                             "restartPolicy": "Always"}],
                     }))},
            "status": {"replicas": 0},
        }),
        json!({"metadata": {"name": "no-spec", "namespace": "shop"}}),
    ];
    let lean = decoded(fresh(replica_sets), &page(&items)).expect("the page decodes");
    assert_eq!(
        lean,
        old_way(&items, |r: &ReplicaSet| ReplicaSetInfo::from(r))
    );
    assert_eq!(lean[0].deployment_revision.as_deref(), Some("3"));
    assert!(lean[0].template.is_none());
    let bare = lean[1]
        .template
        .as_ref()
        .expect("a bare ReplicaSet keeps its template");
    assert!(bare.host_network);
    assert!(bare.sidecar.is_some());
}

fn deployment_fixtures() -> Vec<Value> {
    vec![
        json!({
            "metadata": {"name": "cart", "namespace": "shop", "uid": "d-1", "generation": 4,
                         "labels": {"app": "cart"},
                         "annotations": {"deployment.kubernetes.io/revision": "3"}},
            "spec": {
                "replicas": 2, "paused": true,
                "strategy": {"type": "RollingUpdate",
                             "rollingUpdate": {"maxUnavailable": "25%", "maxSurge": 1}},
                "selector": {"matchLabels": {"app": "cart"}},
                "template": injected_template(),
            },
            "status": {
                "observedGeneration": 3, "replicas": 3, "updatedReplicas": 1, "readyReplicas": 2,
                "availableReplicas": 2, "unavailableReplicas": 1,
                "conditions": [
                    {"type": "Available", "status": "True"},
                    {"type": "Progressing", "status": "False", "reason": "ProgressDeadlineExceeded"},
                ],
            },
        }),
        // istiod: its facts come from the same object.
        json!({
            "metadata": {"name": "istiod-1-22-3", "namespace": "istio-system", "uid": "d-2",
                         "generation": 1,
                         "labels": {"app": "istiod", "istio.io/rev": "1-22-3"}},
            "spec": {
                "strategy": {"type": "Recreate"},
                "selector": {"matchLabels": {"app": "istiod", "istio.io/rev": "1-22-3"}},
                "template": {
                    "metadata": {"labels": {"app": "istiod", "istio.io/rev": "1-22-3"}},
                    "spec": {"containers": [
                        {"name": "sidecar-helper", "image": "helper:1"},
                        {"name": "discovery", "image": "docker.io/istio/pilot:1.22.3",
                         "env": [
                            {"name": "REVISION", "value": "1-22-3"},
                            {"name": "EMPTY", "value": ""},
                            {"name": "POD_NAME", "valueFrom": {"fieldRef": {"fieldPath": "metadata.name"}}},
                         ]},
                    ]},
                },
            },
            "status": {"observedGeneration": 1, "replicas": 1, "readyReplicas": 1,
                       "availableReplicas": 1, "updatedReplicas": 1},
        }),
        // app=istiod outside the control-plane namespace is no istiod.
        json!({
            "metadata": {"name": "istiod", "namespace": "shop", "labels": {"app": "istiod"}},
            "spec": {"selector": {}, "template": {"spec": {"containers": []}}},
        }),
        // An istiod without the revision label is the default revision.
        json!({
            "metadata": {"name": "istiod", "namespace": "istio-system", "labels": {"app": "istiod"}},
            "spec": {"selector": {"matchLabels": {"app": "istiod"}},
                     "template": {"spec": {"containers": [{"name": "pilot", "image": "pilot:1"}]}}},
        }),
    ]
}

#[test]
fn deployments_decode_leanly_to_what_the_full_conversion_gives() {
    let items = deployment_fixtures();
    let lean = decoded(
        |p, o| deployments(p, "istio-system", &Interner::default(), o),
        &page(&items),
    )
    .expect("the page decodes");
    let old = old_way(&items, |d: &Deployment| {
        crate::collect::deployment_facts(d, "istio-system")
    });
    assert_eq!(lean, old);
    let istiods: Vec<&str> = lean
        .iter()
        .filter_map(|(_, i)| i.as_ref().map(|i| i.revision.as_str()))
        .collect();
    assert_eq!(istiods, ["1-22-3", "default"]);
    let istiod = lean[1].1.as_ref().unwrap();
    assert_eq!(istiod.image, "docker.io/istio/pilot:1.22.3");
    assert_eq!(istiod.env.len(), 2);
    assert!(lean[0].0.progress_deadline_exceeded && lean[0].0.paused);
    assert_eq!(lean[0].0.max_surge.as_deref(), Some("1"));
    assert_eq!(
        lean[0].0.template.annotations.keys().collect::<Vec<_>>(),
        [
            "inject.istio.io/templates",
            "kubectl.kubernetes.io/restartedAt",
            "proxy.istio.io/config",
            "sidecar.istio.io/proxyCPU",
        ]
    );
    assert_eq!(lean[0].0.template.containers[0].ports.len(), 2);

    let only_istiods = istiods_of(&items);
    assert_eq!(only_istiods.len(), 2);
}

fn istiods_of(items: &[Value]) -> Vec<IstiodInfo> {
    decoded(|p, o| istiods(p, "istio-system", o), &page(items)).expect("the page decodes")
}

#[test]
fn stateful_sets_daemon_sets_and_pdbs_decode_leanly_to_what_the_full_conversion_gives() {
    let sets = vec![
        json!({
            "metadata": {"name": "ledger", "namespace": "pay", "uid": "s-1", "generation": 2,
                         "labels": {"app": "ledger"}},
            "spec": {"replicas": 3, "serviceName": "ledger",
                     "updateStrategy": {"type": "RollingUpdate", "rollingUpdate": {"partition": 1}},
                     "selector": {"matchLabels": {"app": "ledger"}},
                     "template": injected_template()},
            "status": {"observedGeneration": 2, "replicas": 3, "readyReplicas": 3,
                       "availableReplicas": 3, "currentReplicas": 2, "updatedReplicas": 1,
                       "currentRevision": "ledger-1", "updateRevision": "ledger-2"},
        }),
        json!({"metadata": {"name": "bare", "namespace": "pay"},
               "spec": {"selector": {"matchLabels": {"a": "b"}}, "template": {},
                        "updateStrategy": {"type": "OnDelete"}}}),
    ];
    let lean = decoded(fresh(stateful_sets), &page(&sets)).expect("the page decodes");
    assert_eq!(
        lean,
        old_way(&sets, |s: &StatefulSet| StatefulSetInfo::from(s))
    );
    assert_eq!(lean[0].partition, 1);

    let daemons = vec![
        json!({
            "metadata": {"name": "log-agent", "namespace": "shop", "uid": "ds-1", "generation": 5,
                         "labels": {"app": "log-agent"}},
            "spec": {"updateStrategy": {"type": "OnDelete"},
                     "selector": {"matchLabels": {"app": "log-agent"}},
                     "template": injected_template()},
            "status": {"observedGeneration": 5, "desiredNumberScheduled": 3,
                       "currentNumberScheduled": 3, "updatedNumberScheduled": 2,
                       "numberReady": 3, "numberAvailable": 3, "numberUnavailable": 0,
                       "numberMisscheduled": 0},
        }),
        json!({"metadata": {"name": "new", "namespace": "shop"},
               "spec": {"selector": {"matchLabels": {"a": "b"}}, "template": {}}}),
    ];
    let lean = decoded(fresh(daemon_sets), &page(&daemons)).expect("the page decodes");
    assert_eq!(
        lean,
        old_way(&daemons, |d: &DaemonSet| DaemonSetInfo::from(d))
    );
    assert_eq!(lean[0].update_strategy, "OnDelete");

    let pdbs = vec![
        json!({
            "metadata": {"name": "cart", "namespace": "shop"},
            "spec": {"minAvailable": 1, "selector": {"matchLabels": {"app": "cart"}}},
            "status": {"disruptionsAllowed": 1, "currentHealthy": 2, "desiredHealthy": 1,
                       "expectedPods": 2, "observedGeneration": 1,
                       "conditions": [{"type": "DisruptionAllowed", "status": "True",
                                       "reason": "SufficientPods", "message": "",
                                       "lastTransitionTime": "2024-05-01T10:00:00Z"}]},
        }),
        json!({"metadata": {"name": "all", "namespace": "shop"},
               "spec": {"maxUnavailable": "50%", "selector": {}}}),
        json!({"metadata": {"name": "none", "namespace": "shop"}, "spec": {"maxUnavailable": 0}}),
    ];
    let lean = decoded(pod_disruption_budgets, &page(&pdbs)).expect("the page decodes");
    assert_eq!(
        lean,
        old_way(&pdbs, |p: &PodDisruptionBudget| PdbInfo::from(p))
    );
    assert!(lean[1].selector.selects_everything());
    assert_eq!(lean[2].selector, LabelMatcher::nothing());
}

/// Every object of mesh-sim's scenarios and of a small generated cluster,
/// decoded both ways.
#[test]
fn every_object_of_the_simulated_clusters_decodes_leanly_as_it_converts() {
    use mesh_sim::resources::{Resource, kinds};
    let worlds = simulated_worlds();
    // The ambient scenario's ztunnel and istio-cni pods and DaemonSets carry
    // data-plane facts: the comparison must have covered some.
    let (mut pods_with_facts, mut daemon_sets_with_facts) = (0, 0);
    for world in &worlds {
        let items = |resource: &Resource| -> Vec<Value> {
            world
                .store
                .list(resource, None)
                .map(|obj| (*obj).clone())
                .collect()
        };
        let all_pods = items(kinds::pods());
        if all_pods.is_empty() {
            continue; // the `empty` scenario
        }
        let lean_pods = decoded(fresh(pods), &page(&all_pods)).unwrap();
        assert_eq!(lean_pods, old_way(&all_pods, |p: &Pod| PodInfo::from(p)));
        pods_with_facts += lean_pods
            .iter()
            .filter(|p| p.ambient.data_plane.is_some())
            .count();
        let sets = items(kinds::replicasets());
        assert_eq!(
            decoded(fresh(replica_sets), &page(&sets)).unwrap(),
            old_way(&sets, |r: &ReplicaSet| ReplicaSetInfo::from(r))
        );
        let ds = items(kinds::deployments());
        assert_eq!(
            decoded(
                |p, o| deployments(p, "istio-system", &Interner::default(), o),
                &page(&ds)
            )
            .unwrap(),
            old_way(&ds, |d: &Deployment| crate::collect::deployment_facts(
                d,
                "istio-system"
            ))
        );
        let sts = items(kinds::statefulsets());
        assert_eq!(
            decoded(fresh(stateful_sets), &page(&sts)).unwrap(),
            old_way(&sts, |s: &StatefulSet| StatefulSetInfo::from(s))
        );
        let dms = items(kinds::daemonsets());
        let lean_dms = decoded(fresh(daemon_sets), &page(&dms)).unwrap();
        assert_eq!(
            lean_dms,
            old_way(&dms, |d: &DaemonSet| DaemonSetInfo::from(d))
        );
        daemon_sets_with_facts += lean_dms.iter().filter(|d| d.data_plane.is_some()).count();
        let pdbs = items(kinds::pdbs());
        assert_eq!(
            decoded(pod_disruption_budgets, &page(&pdbs)).unwrap(),
            old_way(&pdbs, |p: &PodDisruptionBudget| PdbInfo::from(p))
        );
    }
    assert!(pods_with_facts > 0 && daemon_sets_with_facts > 0);
}

/// `items` of `kind` as a protobuf list page, written by mesh-sim's
/// encoder: the oracle, whose field numbers come from Kubernetes' generated
/// schema, not from the reader under test.
fn protobuf_page_of(api_version: &str, kind: &str, items: &[Value]) -> Vec<u8> {
    use mesh_sim::server::proto;
    let schema = proto::schema_of(api_version, kind).expect("mesh-sim encodes the kind");
    let messages: Vec<Vec<u8>> = items
        .iter()
        .map(|item| {
            let object = item.as_object().expect("an object");
            proto::encode(schema, object).expect("the object encodes")
        })
        .collect();
    proto::list_body(
        api_version,
        &format!("{kind}List"),
        "42",
        Some("next"),
        messages.iter().map(Vec::as_slice),
    )
}

fn protobuf_page(items: &[Value]) -> Vec<u8> {
    protobuf_page_of("v1", "Pod", items)
}

/// mesh-sim's built-in scenarios, and a small generated cluster.
fn simulated_worlds() -> Vec<mesh_sim::world::World> {
    let mut worlds = Vec::new();
    for scenario in mesh_sim::scenario::builtin_names() {
        let mut world = mesh_sim::world::World::new(mesh_sim::world::SimConfig::default());
        mesh_sim::scenario::load_builtin(&mut world, scenario).expect("the scenario loads");
        worlds.push(world);
    }
    let mut generated = mesh_sim::world::World::new(mesh_sim::world::SimConfig::default());
    mesh_sim::generate::generate(
        &mut generated,
        &mesh_sim::generate::GenerateOptions::for_pods(300),
    )
    .expect("generates");
    worlds.push(generated);
    worlds
}

/// Every simulated world's objects of `resource`.
fn simulated_sets(resource: &mesh_sim::resources::Resource) -> Vec<Vec<Value>> {
    simulated_worlds()
        .iter()
        .map(|world| {
            world
                .store
                .list(resource, None)
                .map(|obj| (*obj).clone())
                .collect()
        })
        .collect()
}

#[test]
fn pods_read_from_protobuf_are_the_pods_read_from_json() {
    let mut sets = vec![pod_fixtures()];
    sets.extend(simulated_sets(mesh_sim::resources::kinds::pods()));
    let (mut compared, mut with_facts, mut terminating) = (0, 0, 0);
    for items in &sets {
        let from_json = decoded(fresh(pods), &page(items)).unwrap();
        let body = protobuf_page(items);
        assert!(crate::protobuf::is_protobuf(&body));
        let from_protobuf = decoded(fresh(pods), &body).unwrap();
        assert_eq!(from_protobuf, from_json);
        compared += from_json.len();
        with_facts += from_json
            .iter()
            .filter(|p| p.ambient.data_plane.is_some())
            .count();
        terminating += from_json.iter().filter(|p| p.terminating).count();
    }
    // The sets covered pods with sidecars, ztunnel's and istio-cni's facts,
    // and a deletion timestamp.
    assert!(compared > 300 && with_facts > 0 && terminating > 0);
}

#[test]
fn replica_sets_deployments_and_budgets_read_from_protobuf_are_those_read_from_json() {
    use mesh_sim::resources::kinds;
    let mut replica_sets_compared = 0;
    let mut sets = vec![
        [injected_template()]
            .iter()
            .map(|t| json!({"metadata": {"name": "rs", "namespace": "shop", "uid": "rs-1"},
                            "spec": {"replicas": 0, "template": t,
                                     "selector": {"matchExpressions": [{"key": "app", "operator": "In", "values": ["a", "b"]}]}},
                            "status": {"replicas": 2, "readyReplicas": 1}}))
            .collect::<Vec<_>>(),
    ];
    sets.extend(simulated_sets(kinds::replicasets()));
    for items in &sets {
        let from_json = decoded(fresh(replica_sets), &page(items)).unwrap();
        let body = protobuf_page_of("apps/v1", "ReplicaSet", items);
        assert_eq!(decoded(fresh(replica_sets), &body).unwrap(), from_json);
        replica_sets_compared += from_json.len();
    }
    let mut deployments_compared = 0;
    let mut istiods_found = 0;
    // An env var's empty `value` as an API server sends it: left out of
    // the JSON (`omitempty`), while protobuf always carries the field; both
    // read as no value. The fixtures spell one out.
    let as_served = |mut items: Vec<Value>| {
        fn drop_empty_values(value: &mut Value) {
            match value {
                Value::Object(map) => {
                    if map.get("value") == Some(&json!("")) && map.contains_key("name") {
                        map.remove("value");
                    }
                    map.values_mut().for_each(drop_empty_values);
                }
                Value::Array(list) => list.iter_mut().for_each(drop_empty_values),
                _ => {}
            }
        }
        items.iter_mut().for_each(drop_empty_values);
        items
    };
    let mut sets = vec![as_served(deployment_fixtures())];
    sets.extend(simulated_sets(kinds::deployments()));
    for items in &sets {
        let read = |body: &[u8]| {
            decoded(
                |p, o| deployments(p, "istio-system", &Interner::default(), o),
                body,
            )
            .unwrap()
        };
        let from_json = read(&page(items));
        let body = protobuf_page_of("apps/v1", "Deployment", items);
        assert_eq!(read(&body), from_json);
        assert_eq!(
            decoded(|p, o| istiods(p, "istio-system", o), &body).unwrap(),
            istiods_of(items)
        );
        deployments_compared += from_json.len();
        istiods_found += from_json.iter().filter(|(_, i)| i.is_some()).count();
    }
    let mut budgets_compared = 0;
    for items in simulated_sets(kinds::pdbs()) {
        let from_json = decoded(pod_disruption_budgets, &page(&items)).unwrap();
        let body = protobuf_page_of("policy/v1", "PodDisruptionBudget", &items);
        assert_eq!(decoded(pod_disruption_budgets, &body).unwrap(), from_json);
        budgets_compared += from_json.len();
    }
    assert!(replica_sets_compared > 100 && deployments_compared > 100 && budgets_compared > 10);
    assert!(istiods_found > 0);
}

#[test]
fn a_truncated_protobuf_page_is_an_error_never_a_panic() {
    let body = protobuf_page(&pod_fixtures());
    assert!(decoded(fresh(pods), &body).is_ok());
    for end in 4..body.len() {
        let _ = decoded(fresh(pods), &body[..end]);
    }
    assert!(decoded(fresh(pods), &body[..body.len() - 1]).is_err());
}

#[test]
fn a_page_without_items_decodes_to_nothing_and_a_broken_one_is_an_error() {
    let decode = |page: &[u8]| decoded(fresh(pods), page);
    assert!(
        decode(br#"{"kind":"PodList","metadata":{},"items":null}"#)
            .unwrap()
            .is_empty()
    );
    assert!(
        decode(br#"{"kind":"PodList","metadata":{}}"#)
            .unwrap()
            .is_empty()
    );
    assert!(decode(br#"{"kind":"PodList","items":[{"metadata":"#).is_err());
    assert!(decode(br#"{"items":[{"metadata":{"name":7}}]}"#).is_err());
    assert!(decode(br#"{"items":[]} trailing"#).is_err());
}

/// Where the read phase spends its time on a generated 50,000-pod cluster,
/// in process (no server, no TLS): scanning the pod pages without keeping
/// anything, the lean decoders, the k8s-openapi decoding they replace, and
/// the model. Not a timed assertion (machines differ): run it by hand with
/// `cargo test --release --lib decoding_fifty_thousand_pods -- --ignored --nocapture`.
#[test]
#[ignore = "slow: generates 50,000 pods"]
fn decoding_fifty_thousand_pods() {
    use std::time::Instant;

    use mesh_sim::resources::{Resource, kinds};
    let mut world = mesh_sim::world::World::new(mesh_sim::world::SimConfig::default());
    mesh_sim::generate::generate(
        &mut world,
        &mesh_sim::generate::GenerateOptions::for_pods(50_000),
    )
    .expect("generates");
    let pages = |resource: &Resource| -> Vec<Vec<u8>> {
        let items: Vec<Value> = world
            .store
            .list(resource, None)
            .map(|obj| (*obj).clone())
            .collect();
        items.chunks(500).map(page).collect()
    };
    let (pod_pages, rs_pages, deployment_pages, pdb_pages) = (
        pages(kinds::pods()),
        pages(kinds::replicasets()),
        pages(kinds::deployments()),
        pages(kinds::pdbs()),
    );
    drop(world);
    let bytes: usize = pod_pages.iter().map(Vec::len).sum();

    let started = Instant::now();
    for p in &pod_pages {
        serde_json::from_slice::<IgnoredAny>(p).expect("valid JSON");
    }
    let scan = started.elapsed();

    let mut raw = crate::collect::RawLists::default();
    let interner = Interner::default();
    let started = Instant::now();
    for p in &pod_pages {
        pods(p, &interner, &mut raw.pods).expect("decodes");
    }
    let lean = started.elapsed();

    let started = Instant::now();
    let mut full = Vec::new();
    for p in &pod_pages {
        typed(|p: Pod| Some(PodInfo::from(&p)))(p, &mut full).expect("decodes");
    }
    let openapi = started.elapsed();
    drop(full);

    let started = Instant::now();
    for p in &rs_pages {
        replica_sets(p, &interner, &mut raw.replica_sets).expect("decodes");
    }
    for p in &deployment_pages {
        deployments(p, "istio-system", &interner, &mut raw.deployments).expect("decodes");
    }
    for p in &pdb_pages {
        pod_disruption_budgets(p, &mut raw.pod_disruption_budgets).expect("decodes");
    }
    let others = started.elapsed();

    let options = crate::collect::CollectOptions {
        scope: crate::snapshot::Scope::All,
        control_plane_namespace: "istio-system".into(),
        selector: None,
    };
    let snapshot = crate::collect::assemble(raw, &options);
    let started = Instant::now();
    let report = crate::mesh::status::build_status(&snapshot, crate::mesh::fixtures::fixed_now());
    let model = started.elapsed();
    let started = Instant::now();
    drop(report);
    drop(snapshot);
    let freed = started.elapsed();
    eprintln!(
        "{} pod pages, {bytes} bytes: scan only {scan:?}, lean decoders {lean:?}, \
         k8s-openapi + From {openapi:?}; ReplicaSets, Deployments and PDBs (lean) {others:?}; \
         build_status {model:?}; freeing the snapshot and report {freed:?}",
        pod_pages.len()
    );
}

/// What the later kinds of facts read, decoded both ways: Helm's release on
/// istiod, a ztunnel pod's node, revision and `XDS_ADDRESS` (after an entry
/// with `valueFrom`, and a second `XDS_ADDRESS` that is not taken), an
/// ambient pod's redirection, and a Rollout-owned ReplicaSet's template.
#[test]
fn helm_releases_data_plane_pods_and_rollout_replica_sets_decode_as_they_convert() {
    let istiods = vec![json!({
        "metadata": {"name": "istiod-1-22-3", "namespace": "istio-system",
                     "labels": {"app": "istiod", "istio.io/rev": "1-22-3"},
                     "annotations": {"meta.helm.sh/release-name": "istiod-canary",
                                     "meta.helm.sh/release-namespace": "istio-system",
                                     "other": "x"}},
        "spec": {"selector": {"matchLabels": {"app": "istiod"}},
                 "template": {"spec": {"containers": [
            {"name": "discovery", "image": "docker.io/istio/pilot:1.22.3"}]}}},
    })];
    let lean = decoded(
        |p, o| deployments(p, "istio-system", &Interner::default(), o),
        &page(&istiods),
    )
    .unwrap();
    assert_eq!(
        lean,
        old_way(&istiods, |d: &Deployment| crate::collect::deployment_facts(
            d,
            "istio-system"
        ))
    );
    assert_eq!(
        lean[0]
            .1
            .as_ref()
            .and_then(|i| i.helm_release.as_ref())
            .map(|r| r.name.as_str()),
        Some("istiod-canary")
    );

    let pods_json = vec![
        json!({
            "metadata": {"name": "ztunnel-abc", "namespace": "istio-system",
                         "labels": {"app": "ztunnel"},
                         "annotations": {"istio.io/rev": "1-23-1"}},
            "spec": {"nodeName": "n1", "containers": [{
                "name": "istio-proxy", "image": "docker.io/istio/ztunnel:1.23.1",
                "env": [{"name": "POD_NAME", "valueFrom": {"fieldRef": {"fieldPath": "metadata.name"}}},
                        {"name": "XDS_ADDRESS", "value": "istiod-1-23-1.istio-system.svc:15012"},
                        {"name": "XDS_ADDRESS", "value": "ignored"}]}]},
        }),
        json!({
            "metadata": {"name": "web", "namespace": "apps", "labels": {"app": "web"},
                         "annotations": {"ambient.istio.io/redirection": "enabled"}},
            "spec": {"nodeName": "", "containers": [{"name": "web", "image": "web:1"}]},
        }),
    ];
    let lean = decoded(fresh(pods), &page(&pods_json)).unwrap();
    assert_eq!(lean, old_way(&pods_json, |p: &Pod| PodInfo::from(p)));
    let facts = lean[0].ambient.data_plane.as_ref().expect("a ztunnel pod");
    assert_eq!(
        facts.xds_address.as_deref(),
        Some("istiod-1-23-1.istio-system.svc:15012")
    );
    assert_eq!(lean[1].ambient.redirection.as_deref(), Some("enabled"));
    assert_eq!(lean[1].ambient.node, None);

    let sets = vec![json!({
        "metadata": {"name": "web-5d9", "namespace": "apps", "uid": "rs1",
                     "ownerReferences": [{"kind": "Rollout", "apiVersion": "argoproj.io/v1alpha1",
                                          "name": "web", "uid": "ro1", "controller": true}]},
        "spec": {"replicas": 2, "selector": {"matchLabels": {"app": "web"}},
                 "template": {"metadata": {"labels": {"app": "web"}},
                              "spec": {"containers": [{"name": "web", "image": "web:1"}]}}},
    })];
    let lean = decoded(fresh(replica_sets), &page(&sets)).unwrap();
    assert_eq!(
        lean,
        old_way(&sets, |r: &ReplicaSet| ReplicaSetInfo::from(r))
    );
    assert!(
        lean[0].template.is_some(),
        "a Rollout's ReplicaSet keeps its template"
    );
}
