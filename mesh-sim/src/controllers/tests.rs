//! Controller tests on a bare [`World`] with a paused clock: objects go in
//! through `World::create`/`update`, the tests call [`reconcile`], move the
//! clock and read the store, as the API server and `kubectl` would.

use std::collections::{BTreeMap, BTreeSet};
use std::time::Duration;

use serde_json::{Value, json};

use super::*;
use crate::resources::{Resource, kinds};
use crate::store::{EventType, Obj};
use crate::world::{SimConfig, WriteOptions};

fn world() -> World {
    World::new(SimConfig {
        pod_ready_delay: Duration::from_secs(2),
        node_count: 3,
        clock_speed: 0.0,
    })
}

fn create(world: &mut World, resource: &'static Resource, obj: Value) -> Obj {
    world
        .create(resource, obj, &WriteOptions::default())
        .unwrap_or_else(|e| panic!("creating a {}: {e}", resource.kind))
}

fn namespace(world: &mut World, name: &str) {
    create(
        world,
        kinds::namespaces(),
        json!({"metadata": {"name": name}}),
    );
}

fn get(world: &World, resource: &Resource, ns: &str, name: &str) -> Obj {
    world
        .store
        .get(resource, ns, name)
        .unwrap_or_else(|| panic!("{} {ns}/{name} exists", resource.kind))
}

/// Reads an object, changes it and writes it back, as `kubectl patch` would.
fn modify(
    world: &mut World,
    resource: &'static Resource,
    ns: &str,
    name: &str,
    change: impl FnOnce(&mut Value),
) {
    let mut obj = (*get(world, resource, ns, name)).clone();
    change(&mut obj);
    world
        .update(resource, obj, &WriteOptions::default())
        .expect("update");
}

fn deployment(name: &str, replicas: i64, strategy: Value) -> Value {
    json!({
        "apiVersion": "apps/v1",
        "kind": "Deployment",
        "metadata": {"name": name, "namespace": "shop"},
        "spec": {
            "replicas": replicas,
            "selector": {"matchLabels": {"app": name}},
            "strategy": strategy,
            "template": {
                "metadata": {"labels": {"app": name}},
                "spec": {"containers": [{"name": "app", "image": "example.com/app:1", "ports": [{"name": "http", "containerPort": 8080}]}]},
            },
        },
    })
}

fn rolling(max_surge: Value, max_unavailable: Value) -> Value {
    json!({"type": "RollingUpdate", "rollingUpdate": {"maxSurge": max_surge, "maxUnavailable": max_unavailable}})
}

fn pods_in(world: &World, ns: &str) -> Vec<Obj> {
    world.store.list(kinds::pods(), Some(ns)).cloned().collect()
}

fn replicasets_of(world: &World, ns: &str, deployment: &str) -> Vec<Obj> {
    world
        .store
        .list(kinds::replicasets(), Some(ns))
        .filter(|rs| util::controller_of(rs).is_some_and(|(_, n, _)| n == deployment))
        .cloned()
        .collect()
}

fn restart(world: &mut World, ns: &str, name: &str, at: &str) {
    modify(world, kinds::deployments(), ns, name, |d| {
        d["spec"]["template"]["metadata"]["annotations"] =
            json!({"kubectl.kubernetes.io/restartedAt": at});
    });
}

fn condition(obj: &Value, kind: &str) -> Value {
    util::condition(&util::conditions_of(obj), kind)
        .cloned()
        .unwrap_or(Value::Null)
}

/// What `kubectl rollout status deployment` decides from the object.
fn rollout_complete(d: &Value) -> bool {
    let n = |p: &str| d.pointer(p).and_then(Value::as_i64).unwrap_or(0);
    let replicas = n("/spec/replicas");
    n("/status/observedGeneration") >= n("/metadata/generation")
        && n("/status/updatedReplicas") == replicas
        && n("/status/replicas") == n("/status/updatedReplicas")
        && n("/status/availableReplicas") == n("/status/updatedReplicas")
}

/// Replays every pod event since `since` and checks `invariant(total pods,
/// ready pods)` after each one: the bounds hold at every write, not just
/// between passes.
fn check_pod_counts(world: &World, ns: &str, since: u64, mut invariant: impl FnMut(usize, usize)) {
    // The whole history is replayed (tests keep it all) to know the pods
    // that existed at `since`; checking starts after it.
    let mut pods: BTreeMap<String, bool> = BTreeMap::new();
    let events = world
        .store
        .events_since(kinds::pods(), 0)
        .expect("history kept");
    let mut checking = false;
    for e in events {
        if util::namespace_of(&e.object) != ns {
            continue;
        }
        let name = util::name_of(&e.object).to_string();
        match e.event_type {
            EventType::Deleted => {
                pods.remove(&name);
            }
            _ => {
                pods.insert(name, pods::is_ready(&e.object));
            }
        }
        if e.resource_version > since {
            checking = true;
        }
        if checking {
            invariant(pods.len(), pods.values().filter(|r| **r).count());
        }
    }
}

#[test]
fn a_deployment_gets_a_hashed_replicaset_and_ready_pods() {
    let mut w = world();
    namespace(&mut w, "shop");
    create(
        &mut w,
        kinds::deployments(),
        deployment("web", 3, json!(null)),
    );
    assert!(settle(&mut w));

    let rss = replicasets_of(&w, "shop", "web");
    assert_eq!(rss.len(), 1);
    let rs = &rss[0];
    let hash = util::label(rs, "pod-template-hash")
        .expect("hash label")
        .to_string();
    assert_eq!(util::name_of(rs), format!("web-{hash}"));
    assert_eq!(hash.len(), 10);
    assert_eq!(
        util::annotation(rs, "deployment.kubernetes.io/revision"),
        Some("1")
    );
    assert_eq!(
        rs["spec"]["selector"]["matchLabels"]["pod-template-hash"],
        json!(hash)
    );
    assert_eq!(
        rs["metadata"]["ownerReferences"][0]["controller"],
        json!(true)
    );

    let pods = pods_in(&w, "shop");
    assert_eq!(pods.len(), 3);
    let ips: BTreeSet<&str> = pods
        .iter()
        .filter_map(|p| util::str_at(p, "/status/podIP"))
        .collect();
    assert_eq!(ips.len(), 3, "pod IPs are unique");
    let nodes: BTreeSet<&str> = pods
        .iter()
        .filter_map(|p| util::str_at(p, "/spec/nodeName"))
        .collect();
    assert_eq!(nodes.len(), 3, "round-robin over three nodes");
    for pod in &pods {
        assert!(util::name_of(pod).starts_with(&format!("web-{hash}-")));
        assert_eq!(util::name_of(pod).len(), format!("web-{hash}-").len() + 5);
        assert_eq!(util::label(pod, "pod-template-hash"), Some(hash.as_str()));
        assert_eq!(pod["status"]["phase"], "Running");
        assert!(pods::is_ready(pod));
        assert_eq!(pod["status"]["containerStatuses"][0]["ready"], json!(true));
        assert_eq!(
            pod["status"]["containerStatuses"][0]["image"],
            "example.com/app:1"
        );
    }

    let d = get(&w, kinds::deployments(), "shop", "web");
    assert!(rollout_complete(&d), "{:#}", d["status"]);
    assert_eq!(d["status"]["readyReplicas"], 3);
    assert_eq!(d["status"]["observedGeneration"], 1);
    assert_eq!(condition(&d, "Available")["status"], "True");
    assert_eq!(
        condition(&d, "Progressing")["reason"],
        "NewReplicaSetAvailable"
    );
    assert_eq!(
        util::annotation(&d, "deployment.kubernetes.io/revision"),
        Some("1")
    );
    // Defaults the API server fills in.
    assert_eq!(d["spec"]["strategy"]["rollingUpdate"]["maxSurge"], "25%");
    assert_eq!(d["spec"]["progressDeadlineSeconds"], 600);
}

#[test]
fn pods_become_ready_only_after_the_ready_delay() {
    let mut w = world();
    namespace(&mut w, "shop");
    create(
        &mut w,
        kinds::deployments(),
        deployment("web", 2, json!(null)),
    );
    reconcile(&mut w);
    let pods = pods_in(&w, "shop");
    assert_eq!(pods.len(), 2);
    assert!(
        pods.iter()
            .all(|p| p["status"]["phase"] == "Running" && !pods::is_ready(p))
    );
    assert!(!is_settled(&w));
    w.clock.advance(Duration::from_millis(1900));
    reconcile(&mut w);
    assert!(pods_in(&w, "shop").iter().all(|p| !pods::is_ready(p)));
    w.clock.advance(Duration::from_millis(100));
    reconcile(&mut w);
    assert!(pods_in(&w, "shop").iter().all(|p| pods::is_ready(p)));
    assert!(rollout_complete(&get(
        &w,
        kinds::deployments(),
        "shop",
        "web"
    )));
    assert!(is_settled(&w));
}

/// Steps the clock in small increments until settled, so every readiness
/// transition happens in its own pass.
fn step_until_settled(w: &mut World) {
    for _ in 0..2000 {
        reconcile(w);
        if is_settled(w) {
            return;
        }
        w.clock.advance(Duration::from_millis(250));
    }
    panic!("did not settle");
}

#[test]
fn rolling_update_with_surge_one_and_no_unavailability_keeps_four_available_and_at_most_five_pods()
{
    let mut w = world();
    namespace(&mut w, "shop");
    create(
        &mut w,
        kinds::deployments(),
        deployment("web", 4, rolling(json!(1), json!(0))),
    );
    assert!(settle(&mut w));
    let old_hash = util::label(&replicasets_of(&w, "shop", "web")[0], "pod-template-hash")
        .unwrap()
        .to_string();
    let before = w.store.resource_version();

    restart(&mut w, "shop", "web", "2025-01-01T00:00:00Z");
    step_until_settled(&mut w);

    let mut max_pods = 0;
    let mut min_ready = usize::MAX;
    check_pod_counts(&w, "shop", before, |total, ready| {
        max_pods = max_pods.max(total);
        min_ready = min_ready.min(ready);
    });
    assert_eq!(max_pods, 5, "one surge pod at a time");
    assert_eq!(min_ready, 4, "never below four ready");

    let rss = replicasets_of(&w, "shop", "web");
    assert_eq!(rss.len(), 2);
    let new = rss
        .iter()
        .find(|rs| util::label(rs, "pod-template-hash") != Some(old_hash.as_str()))
        .unwrap();
    let old = rss
        .iter()
        .find(|rs| util::label(rs, "pod-template-hash") == Some(old_hash.as_str()))
        .unwrap();
    assert_eq!(new["spec"]["replicas"], 4);
    assert_eq!(old["spec"]["replicas"], 0);
    assert_eq!(
        util::annotation(new, "deployment.kubernetes.io/revision"),
        Some("2")
    );
    let pods = pods_in(&w, "shop");
    assert_eq!(pods.len(), 4);
    assert!(
        pods.iter()
            .all(|p| util::label(p, "pod-template-hash") == util::label(new, "pod-template-hash"))
    );
    assert!(pods.iter().all(
        |p| p["metadata"]["annotations"]["kubectl.kubernetes.io/restartedAt"]
            == "2025-01-01T00:00:00Z"
    ));
    let d = get(&w, kinds::deployments(), "shop", "web");
    assert!(rollout_complete(&d));
    assert_eq!(d["metadata"]["generation"], 2);
    assert_eq!(d["status"]["observedGeneration"], 2);
    assert_eq!(
        util::annotation(&d, "deployment.kubernetes.io/revision"),
        Some("2")
    );
}

#[test]
fn rolling_update_with_no_surge_and_two_unavailable_never_exceeds_four_pods_nor_drops_below_two_ready()
 {
    let mut w = world();
    namespace(&mut w, "shop");
    create(
        &mut w,
        kinds::deployments(),
        deployment("web", 4, rolling(json!(0), json!(2))),
    );
    assert!(settle(&mut w));
    let before = w.store.resource_version();
    restart(&mut w, "shop", "web", "now");
    step_until_settled(&mut w);
    let (mut max_pods, mut min_ready) = (0, usize::MAX);
    check_pod_counts(&w, "shop", before, |total, ready| {
        max_pods = max_pods.max(total);
        min_ready = min_ready.min(ready);
    });
    assert_eq!(max_pods, 4);
    assert_eq!(min_ready, 2);
    assert!(rollout_complete(&get(
        &w,
        kinds::deployments(),
        "shop",
        "web"
    )));
}

#[test]
fn default_strategy_rounds_surge_up_and_unavailability_down() {
    // replicas 3 at 25%/25%: one surge pod, none unavailable.
    let mut w = world();
    namespace(&mut w, "shop");
    create(
        &mut w,
        kinds::deployments(),
        deployment("web", 3, json!(null)),
    );
    assert!(settle(&mut w));
    let before = w.store.resource_version();
    restart(&mut w, "shop", "web", "now");
    step_until_settled(&mut w);
    let (mut max_pods, mut min_ready) = (0, usize::MAX);
    check_pod_counts(&w, "shop", before, |total, ready| {
        max_pods = max_pods.max(total);
        min_ready = min_ready.min(ready);
    });
    assert_eq!((max_pods, min_ready), (4, 3));
}

#[test]
fn recreate_removes_every_old_pod_before_creating_new_ones() {
    let mut w = world();
    namespace(&mut w, "shop");
    create(
        &mut w,
        kinds::deployments(),
        deployment("web", 3, json!({"type": "Recreate"})),
    );
    assert!(settle(&mut w));
    let before = w.store.resource_version();
    restart(&mut w, "shop", "web", "now");
    step_until_settled(&mut w);
    let (mut max_pods, mut min_pods) = (0, usize::MAX);
    check_pod_counts(&w, "shop", before, |total, _| {
        max_pods = max_pods.max(total);
        min_pods = min_pods.min(total);
    });
    assert_eq!((max_pods, min_pods), (3, 0));
    assert!(rollout_complete(&get(
        &w,
        kinds::deployments(),
        "shop",
        "web"
    )));
}

#[test]
fn a_paused_deployment_rolls_nothing_until_resumed() {
    let mut w = world();
    namespace(&mut w, "shop");
    create(
        &mut w,
        kinds::deployments(),
        deployment("web", 2, json!(null)),
    );
    assert!(settle(&mut w));
    let old_pods: BTreeSet<String> = pods_in(&w, "shop")
        .iter()
        .map(|p| util::name_of(p).to_string())
        .collect();
    modify(&mut w, kinds::deployments(), "shop", "web", |d| {
        d["spec"]["paused"] = json!(true)
    });
    restart(&mut w, "shop", "web", "now");
    assert!(settle(&mut w));
    let pods: BTreeSet<String> = pods_in(&w, "shop")
        .iter()
        .map(|p| util::name_of(p).to_string())
        .collect();
    assert_eq!(pods, old_pods);
    assert_eq!(replicasets_of(&w, "shop", "web").len(), 1);
    let d = get(&w, kinds::deployments(), "shop", "web");
    assert_eq!(condition(&d, "Progressing")["reason"], "DeploymentPaused");
    assert_eq!(condition(&d, "Progressing")["status"], "Unknown");
    assert!(
        !rollout_complete(&d),
        "a paused rollout with a new template is not complete"
    );

    modify(&mut w, kinds::deployments(), "shop", "web", |d| {
        d["spec"]["paused"] = json!(false)
    });
    assert!(settle(&mut w));
    let d = get(&w, kinds::deployments(), "shop", "web");
    assert!(rollout_complete(&d));
    assert_eq!(
        condition(&d, "Progressing")["reason"],
        "NewReplicaSetAvailable"
    );
    let pods: BTreeSet<String> = pods_in(&w, "shop")
        .iter()
        .map(|p| util::name_of(p).to_string())
        .collect();
    assert!(pods.is_disjoint(&old_pods));
}

#[test]
fn zero_replicas_means_no_pods_and_a_complete_rollout_then_scaling_up_works() {
    let mut w = world();
    namespace(&mut w, "shop");
    create(
        &mut w,
        kinds::deployments(),
        deployment("web", 0, json!(null)),
    );
    assert!(settle(&mut w));
    assert!(pods_in(&w, "shop").is_empty());
    let d = get(&w, kinds::deployments(), "shop", "web");
    assert!(rollout_complete(&d));
    assert_eq!(replicasets_of(&w, "shop", "web")[0]["spec"]["replicas"], 0);

    modify(&mut w, kinds::deployments(), "shop", "web", |d| {
        d["spec"]["replicas"] = json!(2)
    });
    assert!(settle(&mut w));
    assert_eq!(pods_in(&w, "shop").len(), 2);
    assert!(rollout_complete(&get(
        &w,
        kinds::deployments(),
        "shop",
        "web"
    )));
    modify(&mut w, kinds::deployments(), "shop", "web", |d| {
        d["spec"]["replicas"] = json!(0)
    });
    assert!(settle(&mut w));
    assert!(pods_in(&w, "shop").is_empty());
    assert_eq!(
        replicasets_of(&w, "shop", "web").len(),
        1,
        "scaling makes no new ReplicaSet"
    );
}

#[test]
fn pods_that_never_become_ready_end_in_progress_deadline_exceeded() {
    let mut w = world();
    namespace(&mut w, "shop");
    let mut d = deployment("web", 2, json!(null));
    d["spec"]["progressDeadlineSeconds"] = json!(60);
    d["spec"]["template"]["metadata"]["annotations"] = json!({"mesh-sim.io/never-ready": "true"});
    create(&mut w, kinds::deployments(), d);
    let start = w.clock.now();
    reconcile(&mut w);
    let d = get(&w, kinds::deployments(), "shop", "web");
    assert_eq!(condition(&d, "Progressing")["status"], "True");

    assert!(
        settle(&mut w),
        "a stuck rollout settles once its deadline passed"
    );
    let d = get(&w, kinds::deployments(), "shop", "web");
    let progressing = condition(&d, "Progressing");
    assert_eq!(progressing["status"], "False");
    assert_eq!(progressing["reason"], "ProgressDeadlineExceeded");
    assert!(
        progressing["message"]
            .as_str()
            .unwrap()
            .ends_with("has timed out progressing.")
    );
    assert_eq!(condition(&d, "Available")["status"], "False");
    assert!(w.clock.now() - start >= chrono::Duration::seconds(60));
    assert!(w.clock.now() - start < chrono::Duration::seconds(70));
    assert!(pods_in(&w, "shop").iter().all(|p| !pods::is_ready(p)));
}

#[test]
fn a_never_ready_annotation_on_the_workload_sticks_only_its_new_pods() {
    let mut w = world();
    namespace(&mut w, "shop");
    create(
        &mut w,
        kinds::deployments(),
        deployment("web", 3, json!(null)),
    );
    assert!(settle(&mut w));
    modify(&mut w, kinds::deployments(), "shop", "web", |d| {
        d["metadata"]["annotations"] = json!({"mesh-sim.io/never-ready": "true"});
    });
    restart(&mut w, "shop", "web", "now");
    assert!(settle(&mut w));
    let d = get(&w, kinds::deployments(), "shop", "web");
    assert_eq!(
        condition(&d, "Progressing")["reason"],
        "ProgressDeadlineExceeded"
    );
    assert_eq!(d["status"]["availableReplicas"], 3, "old pods keep serving");
    assert_eq!(d["status"]["updatedReplicas"], 1, "one surge pod, stuck");
    assert_eq!(pods_in(&w, "shop").len(), 4);
}

#[test]
fn a_per_pod_ready_delay_overrides_the_default() {
    let mut w = world();
    namespace(&mut w, "shop");
    let mut d = deployment("web", 1, json!(null));
    d["spec"]["template"]["metadata"]["annotations"] = json!({"mesh-sim.io/ready-delay": "30s"});
    create(&mut w, kinds::deployments(), d);
    reconcile(&mut w);
    w.clock.advance(Duration::from_secs(29));
    reconcile(&mut w);
    assert!(!pods::is_ready(&pods_in(&w, "shop")[0]));
    w.clock.advance(Duration::from_secs(1));
    reconcile(&mut w);
    assert!(pods::is_ready(&pods_in(&w, "shop")[0]));
}

#[test]
fn undo_writes_the_old_template_back_and_the_old_replicaset_becomes_the_newest_revision() {
    let mut w = world();
    namespace(&mut w, "shop");
    create(
        &mut w,
        kinds::deployments(),
        deployment("web", 2, json!(null)),
    );
    assert!(settle(&mut w));
    let first = replicasets_of(&w, "shop", "web")[0].clone();
    modify(&mut w, kinds::deployments(), "shop", "web", |d| {
        d["spec"]["template"]["spec"]["containers"][0]["image"] = json!("example.com/app:2");
    });
    assert!(settle(&mut w));
    assert_eq!(replicasets_of(&w, "shop", "web").len(), 2);

    // What `kubectl rollout undo` does: the old ReplicaSet's template,
    // without its hash label, written to the Deployment.
    let mut template = first["spec"]["template"].clone();
    template["metadata"]["labels"]
        .as_object_mut()
        .unwrap()
        .remove("pod-template-hash");
    modify(&mut w, kinds::deployments(), "shop", "web", |d| {
        d["spec"]["template"] = template
    });
    assert!(settle(&mut w));

    let rss = replicasets_of(&w, "shop", "web");
    assert_eq!(rss.len(), 2, "no third ReplicaSet");
    let back = get(&w, kinds::replicasets(), "shop", util::name_of(&first));
    assert_eq!(back["spec"]["replicas"], 2);
    assert_eq!(
        util::annotation(&back, "deployment.kubernetes.io/revision"),
        Some("3")
    );
    assert!(
        pods_in(&w, "shop")
            .iter()
            .all(|p| p["spec"]["containers"][0]["image"] == "example.com/app:1")
    );
    let d = get(&w, kinds::deployments(), "shop", "web");
    assert!(rollout_complete(&d));
    assert_eq!(
        util::annotation(&d, "deployment.kubernetes.io/revision"),
        Some("3")
    );
}

#[test]
fn old_replicasets_beyond_the_revision_history_limit_are_deleted() {
    let mut w = world();
    namespace(&mut w, "shop");
    let mut d = deployment("web", 1, json!(null));
    d["spec"]["revisionHistoryLimit"] = json!(1);
    create(&mut w, kinds::deployments(), d);
    assert!(settle(&mut w));
    for i in 0..3 {
        restart(&mut w, "shop", "web", &format!("t{i}"));
        assert!(settle(&mut w));
    }
    let mut revisions: Vec<i64> = replicasets_of(&w, "shop", "web")
        .iter()
        .map(|rs| deployment::revision_of(rs))
        .collect();
    revisions.sort();
    assert_eq!(revisions, [3, 4]);
}

#[test]
fn a_deleted_pod_is_replaced() {
    let mut w = world();
    namespace(&mut w, "shop");
    create(
        &mut w,
        kinds::deployments(),
        deployment("web", 2, json!(null)),
    );
    assert!(settle(&mut w));
    let victim = util::name_of(&pods_in(&w, "shop")[0]).to_string();
    w.delete(kinds::pods(), "shop", &victim, &WriteOptions::default())
        .unwrap();
    assert!(settle(&mut w));
    let pods = pods_in(&w, "shop");
    assert_eq!(pods.len(), 2);
    assert!(
        pods.iter()
            .all(|p| util::name_of(p) != victim && pods::is_ready(p))
    );
}

#[test]
fn deleting_a_deployment_takes_its_replicasets_and_pods() {
    let mut w = world();
    namespace(&mut w, "shop");
    create(
        &mut w,
        kinds::deployments(),
        deployment("web", 2, json!(null)),
    );
    assert!(settle(&mut w));
    w.delete(
        kinds::deployments(),
        "shop",
        "web",
        &WriteOptions::default(),
    )
    .unwrap();
    assert!(settle(&mut w));
    assert!(pods_in(&w, "shop").is_empty());
    assert!(replicasets_of(&w, "shop", "web").is_empty());
}

#[test]
fn refused_pod_creation_is_reported_and_retried_without_a_hot_loop() {
    let mut w = world();
    namespace(&mut w, "shop");
    // A Fail-policy webhook whose service does not exist refuses every pod.
    create(
        &mut w,
        kinds::mutating_webhooks(),
        json!({
            "metadata": {"name": "broken-injector"},
            "webhooks": [{
                "name": "rev.namespace.sidecar-injector.istio.io",
                "failurePolicy": "Fail",
                "clientConfig": {"service": {"name": "istiod-missing", "namespace": "istio-system", "path": "/inject"}},
                "rules": [{"operations": ["CREATE"], "apiGroups": [""], "apiVersions": ["v1"], "resources": ["pods"]}],
                "sideEffects": "None",
                "admissionReviewVersions": ["v1"],
            }],
        }),
    );
    create(
        &mut w,
        kinds::deployments(),
        deployment("web", 2, json!(null)),
    );
    reconcile(&mut w);
    assert!(pods_in(&w, "shop").is_empty());
    let rs = replicasets_of(&w, "shop", "web")[0].clone();
    let failure = condition(&rs, "ReplicaFailure");
    assert_eq!(failure["reason"], "FailedCreate");
    assert_eq!(
        condition(
            &get(&w, kinds::deployments(), "shop", "web"),
            "ReplicaFailure"
        )["reason"],
        "FailedCreate"
    );
    let events: Vec<Obj> = w
        .store
        .list(kinds::events(), Some("shop"))
        .filter(|e| e["reason"] == "FailedCreate")
        .cloned()
        .collect();
    assert_eq!(events.len(), 1);
    assert_eq!(events[0]["type"], "Warning");
    assert_eq!(events[0]["involvedObject"]["name"], rs["metadata"]["name"]);
    assert!(
        events[0]["message"]
            .as_str()
            .unwrap()
            .starts_with("Error creating: ")
    );

    // No retry before the backoff, however often the controllers run.
    let rv = w.store.resource_version();
    for _ in 0..10 {
        assert!(!reconcile(&mut w));
    }
    assert_eq!(w.store.resource_version(), rv);
    w.clock.advance(Duration::from_secs(1));
    assert!(reconcile(&mut w), "retried after the backoff");
    assert_eq!(
        w.store
            .get(kinds::events(), "shop", util::name_of(&events[0]))
            .unwrap()["count"],
        2
    );

    // The webhook goes away: pods are created at once.
    w.delete(
        kinds::mutating_webhooks(),
        "",
        "broken-injector",
        &WriteOptions::default(),
    )
    .unwrap();
    assert!(settle(&mut w));
    assert_eq!(pods_in(&w, "shop").len(), 2);
    let rs = get(&w, kinds::replicasets(), "shop", util::name_of(&rs));
    assert_eq!(condition(&rs, "ReplicaFailure"), Value::Null);
    assert!(rollout_complete(&get(
        &w,
        kinds::deployments(),
        "shop",
        "web"
    )));
}

#[test]
fn a_quiet_cluster_costs_nothing_to_reconcile() {
    let mut w = world();
    namespace(&mut w, "shop");
    create(
        &mut w,
        kinds::deployments(),
        deployment("web", 3, json!(null)),
    );
    assert!(settle(&mut w));
    let rv = w.store.resource_version();
    assert!(!reconcile(&mut w));
    w.clock.advance(Duration::from_secs(3600));
    assert!(!reconcile(&mut w));
    assert_eq!(w.store.resource_version(), rv);
    assert!(is_settled(&w));
}

#[test]
fn a_rolling_restart_of_three_replicas_settles_well_under_a_second_at_default_speed() {
    let mut w = World::new(SimConfig::default());
    namespace(&mut w, "shop");
    create(
        &mut w,
        kinds::deployments(),
        deployment("web", 3, json!(null)),
    );
    let wait = |w: &mut World| {
        let started = std::time::Instant::now();
        loop {
            reconcile(w);
            if is_settled(w) {
                return started.elapsed();
            }
            assert!(started.elapsed() < Duration::from_secs(5), "settles");
            std::thread::sleep(Duration::from_millis(2));
        }
    };
    wait(&mut w);
    restart(&mut w, "shop", "web", "now");
    let took = wait(&mut w);
    assert!(took < Duration::from_millis(600), "took {took:?}");
    assert!(rollout_complete(&get(
        &w,
        kinds::deployments(),
        "shop",
        "web"
    )));
}
