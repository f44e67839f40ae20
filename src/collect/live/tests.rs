//! Watch events applied to the lists, on plain objects built inline.

use serde_json::json;

use super::*;
use crate::snapshot::Scope;

fn options(scope: Scope) -> CollectOptions {
    CollectOptions {
        scope,
        control_plane_namespace: "istio-system".into(),
        selector: None,
    }
}

fn pod(namespace: &str, name: &str, ready: bool, proxy: &str) -> Pod {
    serde_json::from_value(json!({
        "metadata": {"name": name, "namespace": namespace, "uid": format!("uid-{name}"),
                     "resourceVersion": "1"},
        "spec": {"containers": [
            {"name": "app", "image": "app:1"},
            {"name": "istio-proxy", "image": format!("docker.io/istio/proxyv2:{proxy}")},
        ]},
        "status": {"phase": "Running",
                   "conditions": [{"type": "Ready", "status": if ready { "True" } else { "False" }}]},
    }))
    .unwrap()
}

fn deployment(namespace: &str, name: &str, app: &str) -> Deployment {
    serde_json::from_value(json!({
        "metadata": {"name": name, "namespace": namespace, "uid": format!("uid-{name}"),
                     "labels": {"app": app}},
    }))
    .unwrap()
}

/// An Argo Rollout `app=web` of `replicas`, `ready` of them ready.
fn rollout(namespace: &str, name: &str, replicas: i32, ready: i32) -> Rollout {
    serde_json::from_value(json!({
        "metadata": {"name": name, "namespace": namespace, "uid": format!("uid-{name}"),
                     "generation": 1},
        "spec": {
            "replicas": replicas,
            "selector": {"matchLabels": {"app": "web"}},
            "template": {"metadata": {"labels": {"app": "web"}},
                         "spec": {"containers": [{"name": "app", "image": "app:1"}]}},
            "strategy": {"canary": {}},
        },
        "status": {"observedGeneration": "1", "replicas": replicas, "updatedReplicas": replicas,
                   "readyReplicas": ready, "availableReplicas": ready},
    }))
    .unwrap()
}

fn node(name: &str, resource_version: &str, cordoned: bool) -> Node {
    serde_json::from_value(json!({
        "metadata": {"name": name, "uid": format!("uid-{name}"),
                     "resourceVersion": resource_version},
        "spec": {"unschedulable": cordoned},
        "status": {"conditions": [{"type": "Ready", "status": "True"}]},
    }))
    .unwrap()
}

fn namespace(name: &str) -> NamespaceInfo {
    NamespaceInfo::from(
        &serde_json::from_value::<Namespace>(json!({"metadata": {"name": name}})).unwrap(),
    )
}

fn position(kind: ListKind, scope: ListScope) -> ListPosition {
    ListPosition {
        kind,
        scope,
        selector: ListSelector::everything(),
        resource_version: "10".into(),
    }
}

/// `namespace/name` of the pods, in list order.
fn pods(lists: &LiveLists) -> Vec<String> {
    lists
        .raw()
        .pods
        .iter()
        .map(|p| format!("{}/{}", p.namespace, p.name))
        .collect()
}

fn put_pod(lists: &mut LiveLists, pod: &Pod) -> bool {
    let all = position(ListKind::Pods, ListScope::All);
    lists.apply(change_of(
        WatchChange::Modified(pod.clone()),
        &all,
        "istio-system",
    ))
}

fn shop_lists() -> LiveLists {
    let raw = RawLists {
        pods: vec![
            PodInfo::from(&pod("shop", "web-b", true, "1.21.2")),
            PodInfo::from(&pod("shop", "web-a", true, "1.21.2")),
        ],
        ..RawLists::default()
    };
    LiveLists::new(raw, &options(Scope::Namespaces(vec!["shop".into()])))
}

#[test]
fn the_lists_keep_the_api_servers_order_by_namespace_and_name() {
    let mut lists = shop_lists();
    assert_eq!(pods(&lists), ["shop/web-a", "shop/web-b"]);
    assert!(put_pod(
        &mut lists,
        &pod("istio-system", "gw", true, "1.22.3")
    ));
    assert_eq!(
        pods(&lists),
        ["istio-system/gw", "shop/web-a", "shop/web-b"]
    );
}

#[test]
fn a_modified_pod_replaces_what_its_list_keeps_and_an_update_that_keeps_it_the_same_changes_nothing()
 {
    let mut lists = shop_lists();
    assert!(put_pod(&mut lists, &pod("shop", "web-a", false, "1.21.2")));
    assert!(!lists.raw().pods[0].ready);
    // Another resourceVersion, the same kept facts: nothing to redraw.
    let mut same = pod("shop", "web-a", false, "1.21.2");
    same.metadata.resource_version = Some("2".into());
    assert!(!put_pod(&mut lists, &same));
    assert!(put_pod(&mut lists, &pod("shop", "web-a", true, "1.22.3")));
    assert_eq!(
        lists.raw().pods[0]
            .proxy
            .sidecar
            .as_ref()
            .map(|s| s.image.as_str()),
        Some("docker.io/istio/proxyv2:1.22.3")
    );
}

#[test]
fn a_deleted_object_leaves_its_list_and_deleting_it_again_changes_nothing() {
    let mut lists = shop_lists();
    let all = position(ListKind::Pods, ListScope::All);
    let delete = || {
        change_of(
            WatchChange::Deleted(pod("shop", "web-a", true, "1.21.2")),
            &all,
            "istio-system",
        )
    };
    assert_eq!(
        delete(),
        ListChange::Removed {
            kind: ListKind::Pods,
            key: ("shop".into(), "web-a".into())
        }
    );
    assert!(lists.apply(delete()));
    assert_eq!(pods(&lists), ["shop/web-b"]);
    assert!(!lists.apply(delete()));
}

#[test]
fn objects_of_namespaces_that_are_not_read_are_ignored() {
    // -n shop,pay,cart is listed cluster-wide and filtered: so are its events.
    let mut lists = LiveLists::new(
        RawLists::default(),
        &options(Scope::Namespaces(vec!["shop".into(), "pay".into()])),
    );
    assert!(!put_pod(&mut lists, &pod("other", "x", true, "1.21.2")));
    assert!(put_pod(&mut lists, &pod("pay", "x", true, "1.21.2")));
    assert!(put_pod(
        &mut lists,
        &pod("istio-system", "x", true, "1.21.2")
    ));
    assert_eq!(pods(&lists), ["istio-system/x", "pay/x"]);
}

#[test]
fn a_relist_of_one_namespace_replaces_that_namespaces_objects_only() {
    let mut lists = LiveLists::new(
        RawLists {
            pods: vec![
                PodInfo::from(&pod("shop", "old", true, "1.21.2")),
                PodInfo::from(&pod("istio-system", "gw", true, "1.21.2")),
            ],
            ..RawLists::default()
        },
        &options(Scope::Namespaces(vec!["shop".into()])),
    );
    let shop = position(ListKind::Pods, ListScope::Namespace("shop".into()));
    let relisted = WatchChange::<Pod, Item>::Restarted(vec![
        Item::Pod(PodInfo::from(&pod("shop", "new-1", true, "1.22.3"))),
        Item::Pod(PodInfo::from(&pod("shop", "new-2", true, "1.22.3"))),
    ]);
    assert!(lists.apply(change_of(relisted, &shop, "istio-system")));
    assert_eq!(
        pods(&lists),
        ["istio-system/gw", "shop/new-1", "shop/new-2"]
    );
}

#[test]
fn a_deployment_is_kept_with_istiods_facts_and_the_istiod_list_keeps_only_istiods() {
    let all = position(ListKind::Deployments, ListScope::All);
    let istiods = position(
        ListKind::Istiods,
        ListScope::Namespace("istio-system".into()),
    );
    let istiod = deployment("istio-system", "istiod-1-22-3", "istiod");
    let Item::Deployment(d, Some(i)) = istiod.keep(all.kind, "istio-system").unwrap() else {
        panic!("istiod is a Deployment with istiod's facts");
    };
    assert_eq!(
        (d.name.as_str(), i.name.as_str()),
        ("istiod-1-22-3", "istiod-1-22-3")
    );
    assert!(matches!(
        deployment("shop", "web", "web").keep(all.kind, "istio-system"),
        Some(Item::Deployment(_, None))
    ));

    // With -l, istiod is its own list: an istiod that stops being one is
    // put as nothing, which removes it.
    let mut lists = LiveLists::new(
        RawLists {
            istiods: Some(vec![IstiodInfo::from(&istiod)]),
            ..RawLists::default()
        },
        &options(Scope::All),
    );
    let relabelled = deployment("istio-system", "istiod-1-22-3", "something-else");
    let change = change_of(WatchChange::Modified(relabelled), &istiods, "istio-system");
    assert!(matches!(change, ListChange::Put { item: None, .. }));
    assert!(lists.apply(change));
    assert_eq!(lists.count(ListKind::Istiods), 0);
}

#[test]
fn a_configmap_that_is_no_injector_config_is_not_kept() {
    let cp = position(
        ListKind::InjectorConfigs,
        ListScope::Namespace("istio-system".into()),
    );
    let config_map = |name: &str| -> ConfigMap {
        serde_json::from_value(json!({"metadata": {"name": name, "namespace": "istio-system"}}))
            .unwrap()
    };
    let mut lists = LiveLists::new(RawLists::default(), &options(Scope::All));
    let unrelated = change_of(
        WatchChange::Added(config_map("kube-root-ca.crt")),
        &cp,
        "istio-system",
    );
    assert!(!lists.apply(unrelated));
    let injector = change_of(
        WatchChange::Added(config_map("istio-sidecar-injector-1-22-3")),
        &cp,
        "istio-system",
    );
    assert!(lists.apply(injector));
    assert_eq!(lists.raw().injector_configs[0].revision, "1-22-3");
}

#[test]
fn unchanged_lists_assemble_the_snapshot_a_fresh_read_would() {
    let raw = RawLists {
        deployments: vec![
            deployment_facts(
                &deployment("istio-system", "istiod", "istiod"),
                "istio-system",
            ),
            deployment_facts(&deployment("shop", "web", "web"), "istio-system"),
        ],
        pods: vec![
            PodInfo::from(&pod("shop", "web-a", true, "1.21.2")),
            PodInfo::from(&pod("shop", "web-b", true, "1.21.2")),
        ],
        ..RawLists::default()
    };
    let options = options(Scope::Namespaces(vec!["shop".into()]));
    let fresh = assemble(raw.clone(), &options);
    let live = LiveLists::new(raw, &options).snapshot();
    assert_eq!(format!("{live:?}"), format!("{fresh:?}"));
    assert_eq!(live.istiods.len(), 1);
}

fn every_kind() -> RawLists {
    fn object<K: serde::de::DeserializeOwned>(namespace: &str, name: &str) -> K {
        serde_json::from_value(json!({"metadata": {"name": name, "namespace": namespace}})).unwrap()
    }
    let config_map: ConfigMap = object("istio-system", "istio-sidecar-injector");
    let gateway: Gateway = object("shop", "edge");
    let class: GatewayClass = object("", "istio");
    RawLists {
        namespaces: vec![NamespaceInfo::from(&object::<Namespace>("", "shop"))],
        webhook_configurations: vec![WebhookConfigurationInfo::from(&object::<
            MutatingWebhookConfiguration,
        >(
            "",
            "istio-sidecar-injector",
        ))],
        deployments: vec![
            deployment_facts(
                &deployment("istio-system", "istiod", "istiod"),
                "istio-system",
            ),
            deployment_facts(&deployment("shop", "web", "web"), "istio-system"),
        ],
        istiods: None,
        stateful_sets: vec![StatefulSetInfo::from(&object::<StatefulSet>("shop", "db"))],
        daemon_sets: vec![DaemonSetInfo::from(&object::<DaemonSet>("shop", "agent"))],
        replica_sets: vec![ReplicaSetInfo::from(&object::<ReplicaSet>("shop", "web-1"))],
        pods: vec![PodInfo::from(&pod("shop", "web-1-a", true, "1.21.2"))],
        services: vec![ServiceInfo::from(&object::<Service>("shop", "web"))],
        pod_disruption_budgets: vec![PdbInfo::from(&object::<PodDisruptionBudget>("shop", "web"))],
        endpoint_slices: vec![EndpointSliceInfo::from(&object::<EndpointSlice>(
            "shop", "web-x",
        ))],
        injector_configs: vec![InjectorConfigInfo::from(&config_map)],
        rollouts: vec![RolloutInfo::from(&rollout("shop", "canary", 2, 1))],
        rollouts_served: Some(true),
        jobs: vec![JobInfo::from(&object::<Job>("shop", "migrate"))],
        cron_jobs: vec![CronJobInfo::from(&object::<CronJob>("shop", "nightly"))],
        gateway_api: GatewayApiSnapshot {
            installed: true,
            gateways: vec![GatewayInfo::from(&gateway)],
            classes: vec![GatewayClassInfo::from(&class)],
        },
        nodes: vec![NodeInfo::from(&node("node-1", "1", false))],
    }
}

#[test]
fn a_screen_moves_the_lists_into_the_snapshot_and_takes_every_object_back() {
    let options = options(Scope::All);
    let mut lists = LiveLists::new(every_kind(), &options);
    let before = format!("{:?}", lists.raw());
    let fresh = format!("{:?}", assemble(every_kind(), &options));
    let seen = lists.with_snapshot(|snapshot| {
        assert_eq!(snapshot.istiods.len(), 1);
        format!("{snapshot:?}")
    });
    assert_eq!(seen, fresh, "the snapshot a fresh read assembles");
    // If assembly without -l ever drops or changes an object, the lists
    // would lose it here: this is what keeps moving them out and back safe.
    assert_eq!(format!("{:?}", lists.raw()), before);
    assert!(put_pod(&mut lists, &pod("shop", "web-1-b", true, "1.21.2")));
    assert_eq!(pods(&lists), ["shop/web-1-a", "shop/web-1-b"]);
}

#[test]
fn with_a_selector_a_screen_assembles_a_copy_so_the_filtered_pods_stay_in_the_lists() {
    let options = CollectOptions {
        selector: Some(crate::selector::LabelSelector::parse("app=web").unwrap()),
        ..options(Scope::All)
    };
    let mut lists = LiveLists::new(every_kind(), &options);
    let before = format!("{:?}", lists.raw());
    let pods_seen = lists.with_snapshot(|snapshot| snapshot.pods.len());
    assert_eq!(pods_seen, 0, "web-1-a belongs to no selected workload here");
    assert_eq!(format!("{:?}", lists.raw()), before);
}

#[test]
fn a_rollout_event_changes_the_assembled_report() {
    let options = options(Scope::Namespaces(vec!["shop".into()]));
    let mut lists = LiveLists::new(
        RawLists {
            namespaces: vec![namespace("shop"), namespace("istio-system")],
            rollouts_served: Some(true),
            ..RawLists::default()
        },
        &options,
    );
    let rollouts = position(ListKind::Rollouts, ListScope::Namespace("shop".into()));
    let apply = |lists: &mut LiveLists, change: WatchChange<Rollout, Item>| {
        lists.apply(change_of(change, &rollouts, "istio-system"))
    };
    // The Rollout's row of the report a screen would show.
    let rollout_row = |lists: &mut LiveLists| {
        lists.with_snapshot(|snapshot| {
            let report = crate::mesh::status::build_status(snapshot, chrono::Utc::now());
            report
                .workloads
                .iter()
                .find(|w| w.kind == "Rollout")
                .map(|w| (w.name.clone(), w.replicas, w.ready_replicas))
        })
    };

    let added = WatchChange::Added(rollout("shop", "web", 3, 1));
    assert!(apply(&mut lists, added));
    assert_eq!(rollout_row(&mut lists), Some(("web".into(), 3, 1)));
    let ready = || WatchChange::Modified(rollout("shop", "web", 3, 3));
    assert!(apply(&mut lists, ready()));
    assert!(!apply(&mut lists, ready()), "the same facts again");
    assert_eq!(rollout_row(&mut lists), Some(("web".into(), 3, 3)));
    let deleted = WatchChange::Deleted(rollout("shop", "web", 3, 3));
    assert!(apply(&mut lists, deleted));
    assert_eq!(rollout_row(&mut lists), None);
}

#[test]
fn a_gateway_class_event_makes_the_gateways_of_that_class_istios_in_the_report() {
    let options = options(Scope::Namespaces(vec!["shop".into()]));
    let edge: Gateway = serde_json::from_value(json!({
        "metadata": {"name": "edge", "namespace": "shop", "uid": "uid-edge"},
        "spec": {"gatewayClassName": "corp", "listeners": []},
    }))
    .unwrap();
    let mut lists = LiveLists::new(
        RawLists {
            namespaces: vec![namespace("shop"), namespace("istio-system")],
            gateway_api: GatewayApiSnapshot {
                installed: true,
                gateways: vec![GatewayInfo::from(&edge)],
                classes: Vec::new(),
            },
            ..RawLists::default()
        },
        &options,
    );
    let istio_gateways = |lists: &mut LiveLists| -> Vec<String> {
        lists.with_snapshot(|snapshot| {
            let report = crate::mesh::status::build_status(snapshot, chrono::Utc::now());
            report
                .gateway_api
                .iter()
                .map(|g| format!("{}/{}", g.namespace, g.name))
                .collect()
        })
    };
    assert!(
        istio_gateways(&mut lists).is_empty(),
        "class corp is no one's yet"
    );

    let corp: GatewayClass = serde_json::from_value(json!({
        "metadata": {"name": "corp"},
        "spec": {"controllerName": "istio.io/gateway-controller"},
    }))
    .unwrap();
    let classes = position(ListKind::GatewayClasses, ListScope::All);
    assert!(lists.apply(change_of(
        WatchChange::Added(corp),
        &classes,
        "istio-system"
    )));
    assert_eq!(istio_gateways(&mut lists), ["shop/edge"]);

    // The Gateway itself deleted: gone from the report.
    let gateways = position(ListKind::Gateways, ListScope::Namespace("shop".into()));
    assert!(lists.apply(change_of(
        WatchChange::Deleted(edge),
        &gateways,
        "istio-system"
    )));
    assert!(istio_gateways(&mut lists).is_empty());
}

#[test]
fn a_nodes_status_report_that_moves_only_its_resource_version_changes_nothing_but_a_cordon_does() {
    let mut lists = LiveLists::new(
        RawLists {
            nodes: vec![NodeInfo::from(&node("node-1", "1", false))],
            ..RawLists::default()
        },
        &options(Scope::All),
    );
    let nodes = position(ListKind::Nodes, ListScope::All);
    let mut apply = |node: Node| {
        lists.apply(change_of(
            WatchChange::Modified(node),
            &nodes,
            "istio-system",
        ))
    };
    assert!(!apply(node("node-1", "2", false)));
    assert!(apply(node("node-1", "3", true)));
    let held = &lists.raw().nodes[0];
    assert!(held.unschedulable);
    assert_eq!(
        held.resource_version, "3",
        "a cordon's precondition is the latest"
    );
}
