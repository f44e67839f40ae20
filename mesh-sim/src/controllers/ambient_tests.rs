//! Nodes, cordons, evictions and the ambient data plane, on a bare
//! [`World`] with a paused clock (as `tests.rs` does for the workload
//! controllers), and on the built-in `ambient` scenario.

use std::time::Duration;

use serde_json::{Value, json};

use super::ambient::REDIRECTION_ANNOTATION;
use super::*;
use crate::eviction::{DISRUPTION_BUDGET_CAUSE, evict};
use crate::inject::{AmbientChartOptions, istio_cni_daemonset, ztunnel_daemonset};
use crate::resources::{Resource, kinds};
use crate::store::Obj;
use crate::world::{SimConfig, WriteOptions};

fn world() -> World {
    World::new(SimConfig {
        pod_ready_delay: Duration::from_secs(2),
        node_count: 3,
        clock_speed: 0.0,
        ..SimConfig::default()
    })
}

fn apply(world: &mut World, resource: &'static Resource, obj: Value) -> Obj {
    world
        .create(resource, obj, &WriteOptions::default())
        .unwrap_or_else(|e| panic!("creating a {}: {e}", resource.kind))
}

fn modify(
    world: &mut World,
    resource: &'static Resource,
    ns: &str,
    name: &str,
    change: impl FnOnce(&mut Value),
) {
    let mut obj = (*world.store.get(resource, ns, name).expect("exists")).clone();
    change(&mut obj);
    world
        .update(resource, obj, &WriteOptions::default())
        .expect("update");
}

fn cordon(world: &mut World, node: &str, on: bool) {
    modify(world, kinds::nodes(), "", node, |n| {
        n["spec"]["unschedulable"] = json!(on);
    });
}

fn deployment(ns: &str, name: &str, replicas: i64) -> Value {
    json!({
        "apiVersion": "apps/v1", "kind": "Deployment",
        "metadata": {"name": name, "namespace": ns},
        "spec": {
            "replicas": replicas,
            "selector": {"matchLabels": {"app": name}},
            "template": {
                "metadata": {"labels": {"app": name}},
                "spec": {"containers": [{"name": "app", "image": "example.com/app:1"}]},
            },
        },
    })
}

fn pdb(ns: &str, name: &str, min_available: i64) -> Value {
    json!({
        "apiVersion": "policy/v1", "kind": "PodDisruptionBudget",
        "metadata": {"name": name, "namespace": ns},
        "spec": {"minAvailable": min_available, "selector": {"matchLabels": {"app": name}}},
    })
}

fn pods_of(world: &World, ns: &str, prefix: &str) -> Vec<Obj> {
    world
        .store
        .list(kinds::pods(), Some(ns))
        .filter(|p| util::name_of(p).starts_with(prefix))
        .collect()
}

fn node_of(pod: &Value) -> &str {
    util::str_at(pod, "/spec/nodeName").unwrap_or("")
}

fn namespace(world: &mut World, name: &str, labels: Value) {
    apply(
        world,
        kinds::namespaces(),
        json!({"metadata": {"name": name, "labels": labels}}),
    );
}

#[test]
fn new_pods_are_never_bound_to_a_cordoned_node_and_wait_when_every_node_is() {
    let mut w = world();
    settle(&mut w);
    namespace(&mut w, "shop", json!({}));
    cordon(&mut w, "sim-node-2", true);
    apply(&mut w, kinds::deployments(), deployment("shop", "web", 6));
    settle(&mut w);
    let nodes: Vec<String> = pods_of(&w, "shop", "web-")
        .iter()
        .map(|p| node_of(p).to_string())
        .collect();
    assert_eq!(nodes.len(), 6);
    assert!(!nodes.iter().any(|n| n == "sim-node-2"), "{nodes:?}");
    // The node lifecycle controller's taint follows the cordon.
    let node = w.store.get(kinds::nodes(), "", "sim-node-2").unwrap();
    assert_eq!(
        node["spec"]["taints"][0]["key"],
        "node.kubernetes.io/unschedulable"
    );

    for n in ["sim-node-1", "sim-node-3"] {
        cordon(&mut w, n, true);
    }
    apply(&mut w, kinds::deployments(), deployment("shop", "late", 1));
    settle(&mut w);
    let late = pods_of(&w, "shop", "late-");
    assert_eq!(late.len(), 1);
    assert_eq!(node_of(&late[0]), "", "no node takes it");
    assert_eq!(pods::phase(&late[0]), "Pending");

    cordon(&mut w, "sim-node-3", false);
    settle(&mut w);
    let late = pods_of(&w, "shop", "late-");
    assert_eq!(node_of(&late[0]), "sim-node-3");
    assert!(pods::is_ready(&late[0]));
    let node = w.store.get(kinds::nodes(), "", "sim-node-3").unwrap();
    assert!(node["spec"].get("taints").is_none(), "{node}");
}

#[test]
fn an_eviction_spends_the_budget_at_once_so_a_second_one_is_refused_with_its_cause() {
    let mut w = world();
    settle(&mut w);
    namespace(&mut w, "shop", json!({}));
    apply(&mut w, kinds::deployments(), deployment("shop", "web", 3));
    apply(&mut w, kinds::pdbs(), pdb("shop", "web", 2));
    settle(&mut w);
    let budget = w.store.get(kinds::pdbs(), "shop", "web").unwrap();
    assert_eq!(budget["status"]["disruptionsAllowed"], 1);
    let names: Vec<String> = pods_of(&w, "shop", "web-")
        .iter()
        .map(|p| util::name_of(p).to_string())
        .collect();

    // Two evictions before the disruption controller runs again.
    evict(
        &mut w,
        "shop",
        &names[0],
        &json!({}),
        &WriteOptions::default(),
    )
    .expect("allowed");
    let budget = w.store.get(kinds::pdbs(), "shop", "web").unwrap();
    assert_eq!(budget["status"]["disruptionsAllowed"], 0);
    assert!(budget["status"]["disruptedPods"].get(&names[0]).is_some());
    let refused = evict(
        &mut w,
        "shop",
        &names[1],
        &json!({}),
        &WriteOptions::default(),
    )
    .unwrap_err();
    assert_eq!(refused.code, 429);
    assert_eq!(refused.retry_after, None);
    assert_eq!(
        refused.message,
        "Cannot evict pod as it would violate the pod's disruption budget."
    );
    let causes = refused.causes.clone().unwrap();
    assert_eq!(causes[0].0, DISRUPTION_BUDGET_CAUSE);
    assert_eq!(
        causes[0].1,
        "The disruption budget web needs 2 healthy pods and has 3 currently"
    );
    assert!(w.store.get(kinds::pods(), "shop", &names[1]).is_some());

    // Once the replacement is Ready the budget allows one again, and the
    // evicted pod has left disruptedPods.
    settle(&mut w);
    let budget = w.store.get(kinds::pdbs(), "shop", "web").unwrap();
    assert_eq!(budget["status"]["disruptionsAllowed"], 1);
    assert!(budget["status"].get("disruptedPods").is_none(), "{budget}");
    evict(
        &mut w,
        "shop",
        &names[1],
        &json!({}),
        &WriteOptions::default(),
    )
    .expect("allowed");
}

#[test]
fn evictions_check_preconditions_ignore_budgets_for_pending_pods_and_refuse_two_budgets() {
    let mut w = world();
    settle(&mut w);
    namespace(&mut w, "shop", json!({}));
    apply(&mut w, kinds::deployments(), deployment("shop", "web", 2));
    apply(&mut w, kinds::pdbs(), pdb("shop", "web", 2));
    settle(&mut w);
    let pods = pods_of(&w, "shop", "web-");
    let name = util::name_of(&pods[0]).to_string();
    let stale_uid = json!({"deleteOptions": {"preconditions": {"uid": "not-this-one"}}});
    let conflict = evict(&mut w, "shop", &name, &stale_uid, &WriteOptions::default()).unwrap_err();
    assert_eq!(conflict.code, 409);
    // A dry run is answered as a real one and changes nothing.
    let dry = json!({"deleteOptions": {"dryRun": ["All"]}});
    let refused = evict(&mut w, "shop", &name, &dry, &WriteOptions::default()).unwrap_err();
    assert_eq!(refused.code, 429);

    apply(&mut w, kinds::pdbs(), pdb("shop", "web-too", 0));
    modify(&mut w, kinds::pdbs(), "shop", "web-too", |p| {
        p["spec"]["selector"] = json!({"matchLabels": {"app": "web"}});
    });
    settle(&mut w);
    let two = evict(&mut w, "shop", &name, &json!({}), &WriteOptions::default()).unwrap_err();
    assert_eq!(two.code, 500);
    assert!(two.message.contains("more than one PodDisruptionBudget"));

    // A pod that never started is evicted whatever the budgets say.
    for n in ["sim-node-1", "sim-node-2", "sim-node-3"] {
        cordon(&mut w, n, true);
    }
    apply(&mut w, kinds::deployments(), deployment("shop", "stuck", 1));
    settle(&mut w);
    let stuck = util::name_of(&pods_of(&w, "shop", "stuck-")[0]).to_string();
    evict(&mut w, "shop", &stuck, &json!({}), &WriteOptions::default()).expect("pending pod");
}

/// istio-cni and ztunnel on every node, then an ambient namespace.
fn ambient_world(ztunnel: AmbientChartOptions) -> World {
    ambient_world_with(ztunnel_daemonset(&ztunnel))
}

fn ambient_world_with(ztunnel: Value) -> World {
    let mut w = world();
    settle(&mut w);
    namespace(&mut w, "istio-system", json!({}));
    apply(
        &mut w,
        kinds::daemonsets(),
        istio_cni_daemonset(&AmbientChartOptions::new("1.22.3")),
    );
    apply(&mut w, kinds::daemonsets(), ztunnel);
    settle(&mut w);
    namespace(
        &mut w,
        "apps",
        json!({"istio.io/dataplane-mode": "ambient"}),
    );
    w
}

fn redirection(pod: &Value) -> Option<&str> {
    util::annotation(pod, REDIRECTION_ANNOTATION)
}

fn ztunnel_pods(world: &World) -> Vec<Obj> {
    pods_of(world, "istio-system", "ztunnel-")
}

#[test]
fn pods_of_an_ambient_namespace_are_marked_enabled_and_opted_out_ones_are_not() {
    let mut w = ambient_world(AmbientChartOptions::new("1.22.3"));
    apply(&mut w, kinds::deployments(), deployment("apps", "web", 3));
    let mut opted_out = deployment("apps", "batch", 1);
    opted_out["spec"]["template"]["metadata"]["labels"]["istio.io/dataplane-mode"] = json!("none");
    apply(&mut w, kinds::deployments(), opted_out);
    settle(&mut w);
    for pod in pods_of(&w, "apps", "web-") {
        assert_eq!(redirection(&pod), Some("enabled"), "{pod}");
    }
    assert_eq!(redirection(&pods_of(&w, "apps", "batch-")[0]), None);
    for pod in ztunnel_pods(&w) {
        assert_eq!(redirection(&pod), None, "ztunnel is never enrolled");
    }

    // Leaving ambient removes the annotation.
    modify(&mut w, kinds::namespaces(), "", "apps", |n| {
        n["metadata"]["labels"] = json!({});
    });
    settle(&mut w);
    for pod in pods_of(&w, "apps", "web-") {
        assert_eq!(redirection(&pod), None, "{pod}");
    }
}

#[test]
fn without_a_ready_ztunnel_new_pods_are_pending_and_without_istio_cni_they_do_not_start() {
    // No ztunnel pod ever becomes Ready.
    let mut ztunnel = ztunnel_daemonset(&AmbientChartOptions::new("1.22.3"));
    ztunnel["spec"]["template"]["metadata"]["annotations"]["mesh-sim.io/never-ready"] =
        json!("true");
    let mut w = ambient_world_with(ztunnel);
    assert!(ztunnel_pods(&w).iter().all(|p| !pods::is_ready(p)));
    apply(&mut w, kinds::deployments(), deployment("apps", "web", 2));
    settle(&mut w);
    for pod in pods_of(&w, "apps", "web-") {
        assert_eq!(redirection(&pod), Some("pending"), "{pod}");
    }

    // istio-cni not Ready on sim-node-1: a captured pod bound there waits.
    let cni_on_1 = pods_of(&w, "istio-system", "istio-cni-node-")
        .into_iter()
        .find(|p| node_of(p) == "sim-node-1")
        .unwrap();
    modify(
        &mut w,
        kinds::pods(),
        "istio-system",
        util::name_of(&cni_on_1),
        |p| {
            p["metadata"]["annotations"] = json!({"mesh-sim.io/never-ready": "true"});
        },
    );
    settle(&mut w);
    let mut pod = json!({
        "apiVersion": "v1", "kind": "Pod",
        "metadata": {"name": "probe", "namespace": "apps"},
        "spec": {"nodeName": "sim-node-1", "containers": [{"name": "app", "image": "example.com/app:1"}]},
    });
    apply(&mut w, kinds::pods(), pod.clone());
    settle(&mut w);
    let probe = w.store.get(kinds::pods(), "apps", "probe").unwrap();
    assert_eq!(pods::phase(&probe), "Pending");
    assert_eq!(redirection(&probe), None);
    // Outside ambient, the same node starts pods as usual.
    namespace(&mut w, "plain", json!({}));
    pod["metadata"]["namespace"] = json!("plain");
    apply(&mut w, kinds::pods(), pod);
    settle(&mut w);
    assert!(pods::is_ready(
        &w.store.get(kinds::pods(), "plain", "probe").unwrap()
    ));
    // The agent back: the waiting pod starts and is captured.
    modify(
        &mut w,
        kinds::pods(),
        "istio-system",
        util::name_of(&cni_on_1),
        |p| {
            p["metadata"]["annotations"] = json!({});
        },
    );
    settle(&mut w);
    let probe = w.store.get(kinds::pods(), "apps", "probe").unwrap();
    assert!(pods::is_ready(&probe));
    assert_eq!(redirection(&probe), Some("pending"));
}

#[test]
fn an_on_delete_ztunnel_is_replaced_only_where_its_pod_is_deleted_and_pods_stay_enabled() {
    let mut w = ambient_world(AmbientChartOptions::new("1.22.3").on_delete());
    apply(&mut w, kinds::deployments(), deployment("apps", "web", 3));
    settle(&mut w);
    let upgraded = ztunnel_daemonset(&AmbientChartOptions::new("1.23.1").on_delete());
    modify(
        &mut w,
        kinds::daemonsets(),
        "istio-system",
        "ztunnel",
        |d| {
            d["spec"] = upgraded["spec"].clone();
        },
    );
    settle(&mut w);
    let image = |p: &Value| {
        p["spec"]["containers"][0]["image"]
            .as_str()
            .unwrap()
            .to_string()
    };
    assert!(
        ztunnel_pods(&w)
            .iter()
            .all(|p| image(p) == "docker.io/istio/ztunnel:1.22.3")
    );
    let on_2 = ztunnel_pods(&w)
        .into_iter()
        .find(|p| node_of(p) == "sim-node-2")
        .unwrap();
    w.delete(
        kinds::pods(),
        "istio-system",
        util::name_of(&on_2),
        &WriteOptions::default(),
    )
    .unwrap();
    settle(&mut w);
    let by_node: Vec<(String, String, bool)> = ztunnel_pods(&w)
        .iter()
        .map(|p| (node_of(p).to_string(), image(p), pods::is_ready(p)))
        .collect();
    assert_eq!(by_node.len(), 3, "{by_node:?}");
    for (node, image, ready) in &by_node {
        let want = if node == "sim-node-2" {
            "1.23.1"
        } else {
            "1.22.3"
        };
        assert_eq!(image, &format!("docker.io/istio/ztunnel:{want}"), "{node}");
        assert!(ready);
    }
    for pod in pods_of(&w, "apps", "web-") {
        assert_eq!(redirection(&pod), Some("enabled"));
    }
}

#[test]
fn the_ambient_scenario_runs_old_ztunnels_under_a_new_template_with_every_pod_captured() {
    let mut w = World::new(SimConfig::default());
    crate::scenario::load_builtin(&mut w, "ambient").unwrap();
    let ds = w
        .store
        .get(kinds::daemonsets(), "istio-system", "ztunnel")
        .unwrap();
    assert_eq!(ds["spec"]["updateStrategy"]["type"], "OnDelete");
    assert_eq!(
        ds["spec"]["template"]["spec"]["containers"][0]["image"],
        "docker.io/istio/ztunnel:1.23.1"
    );
    let nodes: std::collections::BTreeSet<String> = ztunnel_pods(&w)
        .iter()
        .map(|p| {
            assert_eq!(
                p["spec"]["containers"][0]["image"],
                "docker.io/istio/ztunnel:1.22.3"
            );
            assert!(pods::is_ready(p));
            node_of(p).to_string()
        })
        .collect();
    assert_eq!(nodes.len(), w.config.node_count);
    let mut workload_nodes = std::collections::BTreeSet::new();
    for ns in ["bookinfo", "payments"] {
        for pod in w.store.list(kinds::pods(), Some(ns)) {
            let opted_out = util::label(&pod, "istio.io/dataplane-mode") == Some("none");
            let want = if opted_out { None } else { Some("enabled") };
            assert_eq!(redirection(&pod), want, "{}", util::name_of(&pod));
            assert!(
                pod["metadata"]["annotations"]
                    .get("sidecar.istio.io/status")
                    .is_none()
            );
            workload_nodes.insert(node_of(&pod).to_string());
        }
    }
    assert_eq!(
        workload_nodes.len(),
        w.config.node_count,
        "spread over every node"
    );
    for pod in w.store.list(kinds::pods(), Some("web")) {
        assert_eq!(redirection(&pod), None);
    }
    let budget = w.store.get(kinds::pdbs(), "payments", "ledger").unwrap();
    assert_eq!(budget["status"]["disruptionsAllowed"], 1);
}

#[test]
fn a_statefulset_pod_recreated_under_its_name_after_an_eviction_counts_as_healthy_again() {
    let mut w = world();
    settle(&mut w);
    namespace(&mut w, "db", json!({}));
    apply(
        &mut w,
        kinds::statefulsets(),
        json!({
            "apiVersion": "apps/v1", "kind": "StatefulSet",
            "metadata": {"name": "ledger", "namespace": "db"},
            "spec": {
                "replicas": 2, "serviceName": "ledger",
                "selector": {"matchLabels": {"app": "ledger"}},
                "template": {"metadata": {"labels": {"app": "ledger"}},
                             "spec": {"containers": [{"name": "db", "image": "postgres:16"}]}},
            },
        }),
    );
    apply(
        &mut w,
        kinds::pdbs(),
        json!({
            "apiVersion": "policy/v1", "kind": "PodDisruptionBudget",
            "metadata": {"name": "ledger", "namespace": "db"},
            "spec": {"maxUnavailable": 1, "selector": {"matchLabels": {"app": "ledger"}}},
        }),
    );
    settle(&mut w);
    evict(
        &mut w,
        "db",
        "ledger-0",
        &json!({}),
        &WriteOptions::default(),
    )
    .expect("allowed");
    settle(&mut w);
    let ledger_0 = w.store.get(kinds::pods(), "db", "ledger-0").unwrap();
    assert!(pods::is_ready(&ledger_0), "recreated under its name");
    let budget = w.store.get(kinds::pdbs(), "db", "ledger").unwrap();
    assert_eq!(budget["status"]["disruptionsAllowed"], 1, "{budget}");
    assert!(budget["status"].get("disruptedPods").is_none(), "{budget}");
    evict(
        &mut w,
        "db",
        "ledger-1",
        &json!({}),
        &WriteOptions::default(),
    )
    .expect("allowed");
}
