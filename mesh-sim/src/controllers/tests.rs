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
        ..SimConfig::default()
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
    world.store.list(kinds::pods(), Some(ns)).collect()
}

fn replicasets_of(world: &World, ns: &str, deployment: &str) -> Vec<Obj> {
    world
        .store
        .list(kinds::replicasets(), Some(ns))
        .filter(|rs| util::controller_of(rs).is_some_and(|(_, n, _)| n == deployment))
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
        if e.key.namespace != ns {
            continue;
        }
        let name = e.key.name.clone();
        match e.event_type {
            EventType::Deleted => {
                pods.remove(&name);
            }
            _ => {
                pods.insert(name, pods::is_ready(&e.value()));
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

fn statefulset(name: &str, replicas: i64, update_strategy: Value) -> Value {
    json!({
        "apiVersion": "apps/v1",
        "kind": "StatefulSet",
        "metadata": {"name": name, "namespace": "shop"},
        "spec": {
            "replicas": replicas,
            "serviceName": name,
            "selector": {"matchLabels": {"app": name}},
            "updateStrategy": update_strategy,
            "template": {
                "metadata": {"labels": {"app": name}},
                "spec": {"containers": [{"name": "db", "image": "example.com/db:1"}]},
            },
        },
    })
}

fn set_image(world: &mut World, resource: &'static Resource, name: &str, image: &str) {
    modify(world, resource, "shop", name, |o| {
        o["spec"]["template"]["spec"]["containers"][0]["image"] = json!(image);
    });
}

fn pod_names(world: &World, ns: &str) -> Vec<String> {
    pods_in(world, ns)
        .iter()
        .map(|p| util::name_of(p).to_string())
        .collect()
}

/// Names of pods deleted (or created) since `since`, in order.
fn pod_events(world: &World, since: u64, kind: EventType) -> Vec<String> {
    world
        .store
        .events_since(kinds::pods(), since)
        .expect("history kept")
        .iter()
        .filter(|e| e.event_type == kind)
        .map(|e| e.key.name.clone())
        .collect()
}

/// What `kubectl rollout status statefulset` decides (RollingUpdate only).
fn statefulset_rollout_complete(s: &Value) -> bool {
    let n = |p: &str| s.pointer(p).and_then(Value::as_i64).unwrap_or(0);
    let replicas = n("/spec/replicas");
    if n("/status/observedGeneration") == 0
        || n("/metadata/generation") > n("/status/observedGeneration")
    {
        return false;
    }
    if n("/status/readyReplicas") < replicas {
        return false;
    }
    if let Some(partition) = s
        .pointer("/spec/updateStrategy/rollingUpdate/partition")
        .and_then(Value::as_i64)
    {
        return n("/status/updatedReplicas") >= replicas - partition;
    }
    s["status"]["updateRevision"] == s["status"]["currentRevision"]
}

#[test]
fn ordered_ready_statefulset_pods_start_in_order_each_after_the_previous_is_ready() {
    let mut w = world();
    namespace(&mut w, "shop");
    create(
        &mut w,
        kinds::statefulsets(),
        statefulset("db", 3, json!(null)),
    );
    reconcile(&mut w);
    assert_eq!(pod_names(&w, "shop"), ["db-0"]);
    w.clock.advance(Duration::from_secs(2));
    reconcile(&mut w);
    assert_eq!(pod_names(&w, "shop"), ["db-0", "db-1"]);
    assert!(settle(&mut w));
    assert_eq!(pod_names(&w, "shop"), ["db-0", "db-1", "db-2"]);

    let s = get(&w, kinds::statefulsets(), "shop", "db");
    assert!(statefulset_rollout_complete(&s), "{:#}", s["status"]);
    assert_eq!(
        s["spec"]["updateStrategy"]["type"], "RollingUpdate",
        "defaulted"
    );
    let revision = s["status"]["updateRevision"].as_str().unwrap().to_string();
    assert!(revision.starts_with("db-"));
    assert_eq!(s["status"]["currentRevision"], json!(revision));
    assert_eq!(s["status"]["replicas"], 3);
    assert_eq!(s["status"]["updatedReplicas"], 3);
    assert_eq!(s["status"]["currentReplicas"], 3);
    let cr = get(&w, kinds::controllerrevisions(), "shop", &revision);
    assert_eq!(cr["revision"], 1);
    assert_eq!(cr["data"]["spec"]["template"]["$patch"], "replace");
    for pod in pods_in(&w, "shop") {
        assert_eq!(
            util::label(&pod, "controller-revision-hash"),
            Some(revision.as_str())
        );
        assert_eq!(pod["spec"]["hostname"], pod["metadata"]["name"]);
        assert_eq!(pod["spec"]["subdomain"], "db");
        assert_eq!(
            util::label(&pod, "statefulset.kubernetes.io/pod-name"),
            util::str_at(&pod, "/metadata/name")
        );
    }
}

#[test]
fn statefulset_rolling_update_replaces_the_highest_ordinal_first_one_at_a_time() {
    let mut w = world();
    namespace(&mut w, "shop");
    create(
        &mut w,
        kinds::statefulsets(),
        statefulset("db", 3, json!(null)),
    );
    assert!(settle(&mut w));
    let before = w.store.resource_version();
    set_image(&mut w, kinds::statefulsets(), "db", "example.com/db:2");
    reconcile(&mut w);
    let s = get(&w, kinds::statefulsets(), "shop", "db");
    assert_ne!(
        s["status"]["updateRevision"],
        s["status"]["currentRevision"]
    );
    assert!(!statefulset_rollout_complete(&s));
    assert!(settle(&mut w));
    assert_eq!(
        pod_events(&w, before, EventType::Deleted),
        ["db-2", "db-1", "db-0"]
    );
    let s = get(&w, kinds::statefulsets(), "shop", "db");
    assert!(statefulset_rollout_complete(&s));
    assert_eq!(s["status"]["updatedReplicas"], 3);
    assert!(
        pods_in(&w, "shop")
            .iter()
            .all(|p| p["spec"]["containers"][0]["image"] == "example.com/db:2")
    );
    let mut revisions: Vec<i64> = w
        .store
        .list(kinds::controllerrevisions(), Some("shop"))
        .map(|r| r["revision"].as_i64().unwrap())
        .collect();
    revisions.sort();
    assert_eq!(revisions, [1, 2]);
}

#[test]
fn statefulset_partition_updates_only_ordinals_at_or_above_it() {
    let mut w = world();
    namespace(&mut w, "shop");
    create(
        &mut w,
        kinds::statefulsets(),
        statefulset(
            "db",
            3,
            json!({"type": "RollingUpdate", "rollingUpdate": {"partition": 2}}),
        ),
    );
    assert!(settle(&mut w));
    set_image(&mut w, kinds::statefulsets(), "db", "example.com/db:2");
    assert!(settle(&mut w));
    let images: Vec<Value> = pods_in(&w, "shop")
        .iter()
        .map(|p| p["spec"]["containers"][0]["image"].clone())
        .collect();
    assert_eq!(
        images,
        [
            json!("example.com/db:1"),
            json!("example.com/db:1"),
            json!("example.com/db:2")
        ]
    );
    let s = get(&w, kinds::statefulsets(), "shop", "db");
    assert_eq!(s["status"]["updatedReplicas"], 1);
    assert_ne!(
        s["status"]["currentRevision"],
        s["status"]["updateRevision"]
    );
    assert!(
        statefulset_rollout_complete(&s),
        "partitioned roll out complete"
    );

    // A deleted pod below the partition comes back at the old revision.
    w.delete(kinds::pods(), "shop", "db-0", &WriteOptions::default())
        .unwrap();
    assert!(settle(&mut w));
    assert_eq!(
        get(&w, kinds::pods(), "shop", "db-0")["spec"]["containers"][0]["image"],
        "example.com/db:1"
    );
}

#[test]
fn on_delete_statefulset_changes_nothing_until_a_pod_is_deleted() {
    let mut w = world();
    namespace(&mut w, "shop");
    create(
        &mut w,
        kinds::statefulsets(),
        statefulset("db", 2, json!({"type": "OnDelete"})),
    );
    assert!(settle(&mut w));
    let before = w.store.resource_version();
    set_image(&mut w, kinds::statefulsets(), "db", "example.com/db:2");
    assert!(settle(&mut w));
    assert!(pod_events(&w, before, EventType::Deleted).is_empty());
    let s = get(&w, kinds::statefulsets(), "shop", "db");
    assert_eq!(
        s["status"].get("updatedReplicas"),
        None,
        "no pod is at the update revision"
    );
    assert_ne!(
        s["status"]["currentRevision"],
        s["status"]["updateRevision"]
    );

    w.delete(kinds::pods(), "shop", "db-1", &WriteOptions::default())
        .unwrap();
    assert!(settle(&mut w));
    let db1 = get(&w, kinds::pods(), "shop", "db-1");
    assert_eq!(db1["spec"]["containers"][0]["image"], "example.com/db:2");
    assert!(pods::is_ready(&db1));
    assert_eq!(
        util::label(&db1, "controller-revision-hash"),
        s["status"]["updateRevision"].as_str()
    );
    assert_eq!(
        get(&w, kinds::pods(), "shop", "db-0")["spec"]["containers"][0]["image"],
        "example.com/db:1"
    );
    assert_eq!(
        get(&w, kinds::statefulsets(), "shop", "db")["status"]["updatedReplicas"],
        1
    );
}

#[test]
fn parallel_statefulset_starts_every_pod_at_once_and_scales_down_from_the_top() {
    let mut w = world();
    namespace(&mut w, "shop");
    let mut s = statefulset("db", 3, json!(null));
    s["spec"]["podManagementPolicy"] = json!("Parallel");
    create(&mut w, kinds::statefulsets(), s);
    reconcile(&mut w);
    assert_eq!(pod_names(&w, "shop"), ["db-0", "db-1", "db-2"]);
    assert!(settle(&mut w));
    modify(&mut w, kinds::statefulsets(), "shop", "db", |s| {
        s["spec"]["replicas"] = json!(1)
    });
    assert!(settle(&mut w));
    assert_eq!(pod_names(&w, "shop"), ["db-0"]);
}

fn daemonset(name: &str, update_strategy: Value) -> Value {
    json!({
        "apiVersion": "apps/v1",
        "kind": "DaemonSet",
        "metadata": {"name": name, "namespace": "shop"},
        "spec": {
            "selector": {"matchLabels": {"app": name}},
            "updateStrategy": update_strategy,
            "template": {
                "metadata": {"labels": {"app": name}},
                "spec": {"containers": [{"name": "agent", "image": "example.com/agent:1"}]},
            },
        },
    })
}

/// What `kubectl rollout status daemonset` decides.
fn daemonset_rollout_complete(d: &Value) -> bool {
    let n = |p: &str| d.pointer(p).and_then(Value::as_i64).unwrap_or(0);
    n("/metadata/generation") <= n("/status/observedGeneration")
        && n("/status/updatedNumberScheduled") >= n("/status/desiredNumberScheduled")
        && n("/status/numberAvailable") >= n("/status/desiredNumberScheduled")
}

#[test]
fn a_daemonset_runs_one_pod_on_each_node() {
    let mut w = world();
    namespace(&mut w, "shop");
    create(&mut w, kinds::daemonsets(), daemonset("agent", json!(null)));
    assert!(settle(&mut w));
    let nodes: BTreeSet<String> = pods_in(&w, "shop")
        .iter()
        .map(|p| util::str_at(p, "/spec/nodeName").unwrap().to_string())
        .collect();
    assert_eq!(
        nodes,
        BTreeSet::from([
            "sim-node-1".to_string(),
            "sim-node-2".into(),
            "sim-node-3".into()
        ])
    );
    assert_eq!(pods_in(&w, "shop").len(), 3);
    let d = get(&w, kinds::daemonsets(), "shop", "agent");
    assert!(daemonset_rollout_complete(&d), "{:#}", d["status"]);
    assert_eq!(d["status"]["desiredNumberScheduled"], 3);
    assert_eq!(d["status"]["currentNumberScheduled"], 3);
    assert_eq!(d["status"]["numberReady"], 3);
    assert_eq!(
        d["spec"]["updateStrategy"]["rollingUpdate"]["maxUnavailable"], 1,
        "defaulted"
    );
    let hash = util::label(&pods_in(&w, "shop")[0], "controller-revision-hash")
        .unwrap()
        .to_string();
    assert!(
        w.store
            .get(
                kinds::controllerrevisions(),
                "shop",
                &format!("agent-{hash}")
            )
            .is_some()
    );

    // A node selector narrows the nodes.
    modify(&mut w, kinds::daemonsets(), "shop", "agent", |d| {
        d["spec"]["template"]["spec"]["nodeSelector"] =
            json!({"kubernetes.io/hostname": "sim-node-2"});
    });
    assert!(settle(&mut w));
    let pods = pods_in(&w, "shop");
    assert_eq!(pods.len(), 1);
    assert_eq!(pods[0]["spec"]["nodeName"], "sim-node-2");
    assert_eq!(
        get(&w, kinds::daemonsets(), "shop", "agent")["status"]["desiredNumberScheduled"],
        1
    );
}

#[test]
fn daemonset_rolling_update_keeps_all_but_max_unavailable_nodes_ready() {
    let mut w = world();
    namespace(&mut w, "shop");
    create(&mut w, kinds::daemonsets(), daemonset("agent", json!(null)));
    assert!(settle(&mut w));
    let before = w.store.resource_version();
    set_image(&mut w, kinds::daemonsets(), "agent", "example.com/agent:2");
    reconcile(&mut w);
    assert!(!daemonset_rollout_complete(&get(
        &w,
        kinds::daemonsets(),
        "shop",
        "agent"
    )));
    step_until_settled(&mut w);
    let (mut max_pods, mut min_ready) = (0, usize::MAX);
    check_pod_counts(&w, "shop", before, |total, ready| {
        max_pods = max_pods.max(total);
        min_ready = min_ready.min(ready);
    });
    assert_eq!((max_pods, min_ready), (3, 2));
    assert!(daemonset_rollout_complete(&get(
        &w,
        kinds::daemonsets(),
        "shop",
        "agent"
    )));
    assert!(
        pods_in(&w, "shop")
            .iter()
            .all(|p| p["spec"]["containers"][0]["image"] == "example.com/agent:2")
    );
}

#[test]
fn daemonset_surge_starts_the_new_pod_before_removing_the_old() {
    let mut w = world();
    namespace(&mut w, "shop");
    create(
        &mut w,
        kinds::daemonsets(),
        daemonset(
            "agent",
            json!({"type": "RollingUpdate", "rollingUpdate": {"maxSurge": 1, "maxUnavailable": 0}}),
        ),
    );
    assert!(settle(&mut w));
    let before = w.store.resource_version();
    set_image(&mut w, kinds::daemonsets(), "agent", "example.com/agent:2");
    step_until_settled(&mut w);
    let (mut max_pods, mut min_ready) = (0, usize::MAX);
    check_pod_counts(&w, "shop", before, |total, ready| {
        max_pods = max_pods.max(total);
        min_ready = min_ready.min(ready);
    });
    assert_eq!((max_pods, min_ready), (4, 3));
    assert!(daemonset_rollout_complete(&get(
        &w,
        kinds::daemonsets(),
        "shop",
        "agent"
    )));
}

#[test]
fn on_delete_daemonset_updates_only_deleted_pods() {
    let mut w = world();
    namespace(&mut w, "shop");
    create(
        &mut w,
        kinds::daemonsets(),
        daemonset("agent", json!({"type": "OnDelete"})),
    );
    assert!(settle(&mut w));
    set_image(&mut w, kinds::daemonsets(), "agent", "example.com/agent:2");
    assert!(settle(&mut w));
    assert!(
        pods_in(&w, "shop")
            .iter()
            .all(|p| p["spec"]["containers"][0]["image"] == "example.com/agent:1")
    );
    let victim = pod_names(&w, "shop")[0].clone();
    let node = get(&w, kinds::pods(), "shop", &victim)["spec"]["nodeName"].clone();
    w.delete(kinds::pods(), "shop", &victim, &WriteOptions::default())
        .unwrap();
    assert!(settle(&mut w));
    let replacement: Vec<Obj> = pods_in(&w, "shop")
        .into_iter()
        .filter(|p| p["spec"]["nodeName"] == node)
        .collect();
    assert_eq!(replacement.len(), 1);
    assert_eq!(
        replacement[0]["spec"]["containers"][0]["image"],
        "example.com/agent:2"
    );
    assert_eq!(
        get(&w, kinds::daemonsets(), "shop", "agent")["status"]["updatedNumberScheduled"],
        1
    );
}

#[test]
fn a_job_runs_pods_until_its_completions_succeed() {
    let mut w = world();
    namespace(&mut w, "shop");
    create(
        &mut w,
        kinds::jobs(),
        json!({
            "apiVersion": "batch/v1",
            "kind": "Job",
            "metadata": {"name": "migrate", "namespace": "shop"},
            "spec": {
                "completions": 3,
                "parallelism": 2,
                "template": {"spec": {"restartPolicy": "Never", "containers": [{"name": "m", "image": "example.com/migrate:1"}]}},
            },
        }),
    );
    reconcile(&mut w);
    assert_eq!(pods_in(&w, "shop").len(), 2);
    let job = get(&w, kinds::jobs(), "shop", "migrate");
    assert_eq!(job["status"]["active"], 2);
    assert!(job["status"]["startTime"].is_string());
    assert!(settle(&mut w));
    let job = get(&w, kinds::jobs(), "shop", "migrate");
    assert_eq!(job["status"]["succeeded"], 3);
    assert_eq!(job["status"].get("active"), None);
    assert!(job["status"]["completionTime"].is_string());
    assert_eq!(condition(&job, "Complete")["status"], "True");
    let pods = pods_in(&w, "shop");
    assert_eq!(pods.len(), 3);
    assert!(pods.iter().all(|p| p["status"]["phase"] == "Succeeded"));
    assert!(
        pods.iter()
            .all(|p| util::label(p, "job-name") == Some("migrate"))
    );
}

fn service(name: &str, selector: Value, target_port: Value) -> Value {
    json!({
        "apiVersion": "v1",
        "kind": "Service",
        "metadata": {"name": name, "namespace": "shop", "labels": {"team": "web"}},
        "spec": {"selector": selector, "ports": [{"name": "http", "port": 80, "targetPort": target_port}]},
    })
}

fn slices_of(world: &World, svc: &str) -> Vec<Obj> {
    world
        .store
        .list(kinds::endpointslices(), Some("shop"))
        .filter(|s| util::label(s, "kubernetes.io/service-name") == Some(svc))
        .collect()
}

#[test]
fn endpoint_slices_follow_pod_readiness_with_named_target_ports() {
    let mut w = world();
    namespace(&mut w, "shop");
    create(
        &mut w,
        kinds::services(),
        service("web", json!({"app": "web"}), json!("http")),
    );
    create(
        &mut w,
        kinds::deployments(),
        deployment("web", 2, json!(null)),
    );
    reconcile(&mut w);

    let svc = get(&w, kinds::services(), "shop", "web");
    assert!(
        util::str_at(&svc, "/spec/clusterIP")
            .unwrap()
            .starts_with("10.96.")
    );
    let slices = slices_of(&w, "web");
    assert_eq!(slices.len(), 1);
    let slice = &slices[0];
    assert_eq!(
        util::label(slice, "endpointslice.kubernetes.io/managed-by"),
        Some("endpointslice-controller.k8s.io")
    );
    assert_eq!(util::label(slice, "team"), Some("web"));
    assert_eq!(slice["addressType"], "IPv4");
    assert_eq!(
        slice["ports"],
        json!([{"name": "http", "port": 8080, "protocol": "TCP"}])
    );
    let endpoints = slice["endpoints"].as_array().unwrap();
    assert_eq!(endpoints.len(), 2);
    assert!(
        endpoints
            .iter()
            .all(|e| e["conditions"]["ready"] == false && e["targetRef"]["kind"] == "Pod")
    );
    let ep = get(&w, kinds::endpoints(), "shop", "web");
    assert_eq!(
        ep["subsets"][0]["notReadyAddresses"]
            .as_array()
            .unwrap()
            .len(),
        2
    );
    assert_eq!(ep["subsets"][0].get("addresses"), None);
    assert_eq!(
        ep["subsets"][0]["ports"],
        json!([{"name": "http", "port": 8080, "protocol": "TCP"}])
    );

    assert!(settle(&mut w));
    let slice = &slices_of(&w, "web")[0];
    assert!(
        slice["endpoints"]
            .as_array()
            .unwrap()
            .iter()
            .all(|e| e["conditions"]["ready"] == true)
    );
    let ep = get(&w, kinds::endpoints(), "shop", "web");
    assert_eq!(ep["subsets"][0]["addresses"].as_array().unwrap().len(), 2);
    assert_eq!(ep["subsets"][0].get("notReadyAddresses"), None);

    // Quiet: a pass writes no endpoints.
    let rv = w.store.resource_version();
    reconcile(&mut w);
    assert_eq!(w.store.resource_version(), rv);

    // A relabelled service selects nothing: an empty slice, no subsets.
    modify(&mut w, kinds::services(), "shop", "web", |s| {
        s["spec"]["selector"] = json!({"app": "nothing"})
    });
    assert!(settle(&mut w));
    let slices = slices_of(&w, "web");
    assert_eq!(slices.len(), 1);
    assert_eq!(slices[0]["endpoints"], json!([]));
    assert_eq!(
        get(&w, kinds::endpoints(), "shop", "web").get("subsets"),
        None
    );

    // Deleting the service takes its endpoints.
    w.delete(kinds::services(), "shop", "web", &WriteOptions::default())
        .unwrap();
    assert!(settle(&mut w));
    assert!(slices_of(&w, "web").is_empty());
    assert!(w.store.get(kinds::endpoints(), "shop", "web").is_none());
}

#[test]
fn a_load_balancer_service_gets_an_ingress_ip_and_node_ports() {
    let mut w = world();
    namespace(&mut w, "shop");
    let mut svc = service("gw", json!({"istio": "ingressgateway"}), json!(8080));
    svc["spec"]["type"] = json!("LoadBalancer");
    create(&mut w, kinds::services(), svc);
    assert!(settle(&mut w));
    let svc = get(&w, kinds::services(), "shop", "gw");
    assert!(
        util::str_at(&svc, "/status/loadBalancer/ingress/0/ip")
            .unwrap()
            .starts_with("172.18.")
    );
    assert!(svc["spec"]["ports"][0]["nodePort"].as_i64().unwrap() >= 30000);
    assert!(svc["spec"]["clusterIP"].is_string());
}

fn pdb(name: &str, spec: Value) -> Value {
    json!({
        "apiVersion": "policy/v1",
        "kind": "PodDisruptionBudget",
        "metadata": {"name": name, "namespace": "shop"},
        "spec": spec,
    })
}

#[test]
fn pdb_status_counts_healthy_pods_against_min_available_or_max_unavailable() {
    let mut w = world();
    namespace(&mut w, "shop");
    create(
        &mut w,
        kinds::deployments(),
        deployment("web", 4, json!(null)),
    );
    create(
        &mut w,
        kinds::pdbs(),
        pdb(
            "min",
            json!({"minAvailable": 1, "selector": {"matchLabels": {"app": "web"}}}),
        ),
    );
    create(
        &mut w,
        kinds::pdbs(),
        pdb(
            "pct",
            json!({"maxUnavailable": "25%", "selector": {"matchLabels": {"app": "web"}}}),
        ),
    );
    create(
        &mut w,
        kinds::pdbs(),
        pdb("none", json!({"minAvailable": 1})),
    );
    reconcile(&mut w);
    let min = get(&w, kinds::pdbs(), "shop", "min");
    assert_eq!(min["status"]["currentHealthy"], 0);
    assert_eq!(min["status"]["disruptionsAllowed"], 0);
    assert_eq!(condition(&min, "DisruptionAllowed")["status"], "False");

    assert!(settle(&mut w));
    let min = get(&w, kinds::pdbs(), "shop", "min");
    assert_eq!(min["status"]["currentHealthy"], 4);
    assert_eq!(min["status"]["desiredHealthy"], 1);
    assert_eq!(min["status"]["expectedPods"], 4);
    assert_eq!(min["status"]["disruptionsAllowed"], 3);
    assert_eq!(min["status"]["observedGeneration"], 1);
    assert_eq!(condition(&min, "DisruptionAllowed")["status"], "True");
    let pct = get(&w, kinds::pdbs(), "shop", "pct");
    assert_eq!(pct["status"]["expectedPods"], 4);
    assert_eq!(pct["status"]["desiredHealthy"], 3);
    assert_eq!(pct["status"]["disruptionsAllowed"], 1);
    let none = get(&w, kinds::pdbs(), "shop", "none");
    assert_eq!(
        none["status"]["expectedPods"], 0,
        "a null selector selects nothing"
    );
    assert_eq!(none["status"]["disruptionsAllowed"], 0);

    // One pod gone: fewer healthy, the same expectation for the percentage.
    let victim = pod_names(&w, "shop")[0].clone();
    w.delete(kinds::pods(), "shop", &victim, &WriteOptions::default())
        .unwrap();
    reconcile(&mut w);
    let pct = get(&w, kinds::pdbs(), "shop", "pct");
    assert_eq!(pct["status"]["currentHealthy"], 3);
    assert_eq!(pct["status"]["expectedPods"], 4);
    assert_eq!(pct["status"]["disruptionsAllowed"], 0);
}

#[test]
fn namespaces_become_active_and_nodes_exist_from_the_first_pass() {
    let mut w = world();
    namespace(&mut w, "shop");
    reconcile(&mut w);
    assert_eq!(
        get(&w, kinds::namespaces(), "", "shop")["status"]["phase"],
        "Active"
    );
    let nodes: Vec<String> = w
        .store
        .list(kinds::nodes(), None)
        .map(|n| util::name_of(&n).to_string())
        .collect();
    assert_eq!(nodes, ["sim-node-1", "sim-node-2", "sim-node-3"]);
    assert!(is_settled(&w));
}

#[test]
fn standalone_pods_are_scheduled_and_become_ready() {
    let mut w = world();
    namespace(&mut w, "shop");
    create(
        &mut w,
        kinds::pods(),
        json!({"metadata": {"name": "debug", "namespace": "shop"}, "spec": {
            "initContainers": [
                {"name": "init", "image": "busybox"},
                {"name": "istio-proxy", "image": "docker.io/istio/proxyv2:1.22.3", "restartPolicy": "Always"},
            ],
            "containers": [{"name": "sh", "image": "busybox"}],
        }}),
    );
    assert!(settle(&mut w));
    let pod = get(&w, kinds::pods(), "shop", "debug");
    assert!(pod["spec"]["nodeName"].is_string());
    assert!(pods::is_ready(&pod));
    let init = pod["status"]["initContainerStatuses"].as_array().unwrap();
    assert!(init[0]["state"]["terminated"].is_object());
    assert!(
        init[1]["state"]["running"].is_object(),
        "a native sidecar keeps running"
    );
    assert_eq!(init[1]["ready"], true);
    assert_eq!(
        init[1]["imageID"].as_str().unwrap().split('@').next(),
        Some("docker.io/istio/proxyv2")
    );
}

/// Timings on a generated 50,000-pod cluster (run with `--release
/// --ignored --nocapture`): the controllers' first pass, a quiet pass, and
/// rolling restarts of Deployments in it.
#[test]
#[ignore = "benchmark: slow in debug builds"]
fn benchmark_controllers_on_a_50k_pod_cluster() {
    use crate::generate::{GenerateOptions, generate};
    use std::time::Instant;
    let mut w = World::new(SimConfig {
        clock_speed: 0.0,
        ..SimConfig::default()
    });
    let t = Instant::now();
    let pods = std::env::var("MESH_SIM_BENCH_PODS")
        .ok()
        .and_then(|n| n.parse().ok())
        .unwrap_or(50_000);
    generate(&mut w, &GenerateOptions::for_pods(pods)).unwrap();
    eprintln!(
        "generate: {:?}, {} pods",
        t.elapsed(),
        w.store.count(kinds::pods())
    );
    let t = Instant::now();
    assert!(settle(&mut w));
    eprintln!("first settle: {:?}", t.elapsed());
    let t = Instant::now();
    for _ in 0..100 {
        reconcile(&mut w);
    }
    eprintln!("quiet reconcile: {:?} each", t.elapsed() / 100);
    let deployments: Vec<(String, String)> = w
        .store
        .list(kinds::deployments(), None)
        .filter(|d| util::namespace_of(d).starts_with("bench"))
        .take(100)
        .map(|d| {
            (
                util::namespace_of(&d).to_string(),
                util::name_of(&d).to_string(),
            )
        })
        .collect();
    let t = Instant::now();
    let (ns, name) = &deployments[0];
    restart(&mut w, ns, name, "one");
    assert!(settle(&mut w));
    eprintln!("restart one deployment: {:?}", t.elapsed());
    let t = Instant::now();
    for (ns, name) in &deployments {
        restart(&mut w, ns, name, "many");
        reconcile(&mut w);
    }
    eprintln!(
        "100 restarts written (reconcile after each): {:?}",
        t.elapsed()
    );
    assert!(settle(&mut w));
    eprintln!("100 restarts settled: {:?}", t.elapsed());
    for (ns, name) in &deployments {
        assert!(rollout_complete(&get(&w, kinds::deployments(), ns, name)));
    }
}

#[test]
fn min_ready_seconds_delays_availability_not_readiness() {
    let mut w = world();
    namespace(&mut w, "shop");
    let mut d = deployment("web", 2, json!(null));
    d["spec"]["minReadySeconds"] = json!(10);
    create(&mut w, kinds::deployments(), d);
    reconcile(&mut w);
    w.clock.advance(Duration::from_secs(2));
    reconcile(&mut w);
    let d = get(&w, kinds::deployments(), "shop", "web");
    assert_eq!(d["status"]["readyReplicas"], 2);
    assert_eq!(d["status"].get("availableReplicas"), None);
    assert!(
        !is_settled(&w),
        "waiting for the pods to count as available"
    );
    assert!(settle(&mut w));
    let d = get(&w, kinds::deployments(), "shop", "web");
    assert_eq!(d["status"]["availableReplicas"], 2);
    assert!(rollout_complete(&d));
}

#[test]
fn compiled_selectors_agree_with_the_selectors_module() {
    let selectors = [
        json!({}),
        json!({"matchLabels": {"app": "web"}}),
        json!({"matchLabels": {"app": "web", "tier": "front"}}),
        json!({"matchExpressions": [{"key": "tier", "operator": "In", "values": ["front", "back"]}]}),
        json!({"matchExpressions": [{"key": "tier", "operator": "NotIn", "values": ["front"]}]}),
        json!({"matchExpressions": [{"key": "canary", "operator": "Exists"}]}),
        json!({"matchLabels": {"app": "web"}, "matchExpressions": [{"key": "canary", "operator": "DoesNotExist"}]}),
    ];
    let label_sets = [
        json!({}),
        json!({"app": "web"}),
        json!({"app": "web", "tier": "front"}),
        json!({"app": "web", "tier": "back", "canary": "yes"}),
        json!({"app": "db", "tier": "db"}),
    ];
    for selector in &selectors {
        let compiled = util::Selector::from_label_selector(Some(selector));
        for labels in &label_sets {
            let map: BTreeMap<String, String> = labels
                .as_object()
                .unwrap()
                .iter()
                .map(|(k, v)| (k.clone(), v.as_str().unwrap().to_string()))
                .collect();
            let expected = crate::selectors::label_selector_matches(selector, &map).unwrap();
            assert_eq!(
                compiled.matches(labels.as_object().unwrap()),
                expected,
                "{selector} on {labels}"
            );
        }
    }
}

#[test]
fn a_change_in_istio_system_retries_refused_pod_creations_without_waiting_for_the_backoff() {
    let mut w = world();
    namespace(&mut w, "shop");
    namespace(&mut w, "istio-system");
    create(
        &mut w,
        kinds::mutating_webhooks(),
        json!({
            "metadata": {"name": "injector"},
            "webhooks": [{
                "name": "namespace.sidecar-injector.istio.io",
                "failurePolicy": "Fail",
                "clientConfig": {"service": {"name": "other", "namespace": "istio-system", "path": "/inject"}},
                "rules": [{"operations": ["CREATE"], "apiGroups": [""], "apiVersions": ["v1"], "resources": ["pods"]}],
            }],
        }),
    );
    create(
        &mut w,
        kinds::deployments(),
        deployment("web", 1, json!(null)),
    );
    reconcile(&mut w);
    assert!(pods_in(&w, "shop").is_empty());
    // Something changes in istio-system: the workload retries before its
    // backoff ends (here the webhook still fails, so it stays refused).
    let rv = w.store.resource_version();
    create(
        &mut w,
        kinds::services(),
        json!({"metadata": {"name": "unrelated", "namespace": "istio-system"}, "spec": {}}),
    );
    reconcile(&mut w);
    let events: Vec<Obj> = w
        .store
        .list(kinds::events(), Some("shop"))
        .filter(|e| e["reason"] == "FailedCreate")
        .collect();
    // Creating the Service and allocating its ClusterIP: two changes, two retries.
    assert!(events[0]["count"].as_i64().unwrap() >= 2, "retried at once");
    assert!(w.store.resource_version() > rv);
}

#[test]
fn undoing_a_daemonset_applies_its_old_revision_and_renumbers_it() {
    let mut w = world();
    namespace(&mut w, "shop");
    create(&mut w, kinds::daemonsets(), daemonset("agent", json!(null)));
    assert!(settle(&mut w));
    let first_hash = util::label(&pods_in(&w, "shop")[0], "controller-revision-hash")
        .unwrap()
        .to_string();
    set_image(&mut w, kinds::daemonsets(), "agent", "example.com/agent:2");
    assert!(settle(&mut w));

    // What `kubectl rollout undo daemonset/agent` does: the previous
    // revision's data applied as a strategic merge patch.
    let old = get(
        &w,
        kinds::controllerrevisions(),
        "shop",
        &format!("agent-{first_hash}"),
    );
    let current = get(&w, kinds::daemonsets(), "shop", "agent");
    let patched =
        crate::patch::strategic_merge(&current, &old["data"], "DaemonSet").expect("patch applies");
    w.update(kinds::daemonsets(), patched, &WriteOptions::default())
        .unwrap();
    assert!(settle(&mut w));

    assert!(
        pods_in(&w, "shop")
            .iter()
            .all(|p| p["spec"]["containers"][0]["image"] == "example.com/agent:1")
    );
    assert!(
        pods_in(&w, "shop")
            .iter()
            .all(|p| util::label(p, "controller-revision-hash") == Some(first_hash.as_str()))
    );
    let old = get(
        &w,
        kinds::controllerrevisions(),
        "shop",
        &format!("agent-{first_hash}"),
    );
    assert_eq!(old["revision"], 3);
    assert!(daemonset_rollout_complete(&get(
        &w,
        kinds::daemonsets(),
        "shop",
        "agent"
    )));
}
