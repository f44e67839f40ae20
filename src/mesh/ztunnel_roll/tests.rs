use super::*;
use crate::mesh::ambient::tests::ambient_world;
use chrono::TimeZone;
use mesh_sim::resources::kinds;
use mesh_sim::world::{World, WriteOptions};

fn now() -> DateTime<Utc> {
    Utc.with_ymd_and_hms(2026, 12, 4, 21, 10, 7).unwrap()
}

fn options() -> RollOptions {
    RollOptions {
        drain: true,
        nodes_at_once: 1,
        ..RollOptions::default()
    }
}

fn ztunnel_on(world: &World, node: &str) -> String {
    world
        .store
        .list(kinds::pods(), Some("istio-system"))
        .find(|p| p["metadata"]["labels"]["app"] == "ztunnel" && p["spec"]["nodeName"] == node)
        .map(|p| p["metadata"]["name"].as_str().unwrap().to_string())
        .unwrap()
}

/// What a run leaves behind on `node`: its ztunnel replaced from the
/// template, and (when `cordoned_by`) the node still cordoned.
fn replaced(world: &mut World, node: &str, cordoned_by: Option<&str>) {
    let name = ztunnel_on(world, node);
    world
        .delete(
            kinds::pods(),
            "istio-system",
            &name,
            &WriteOptions::default(),
        )
        .unwrap();
    let mut obj = (*world.store.get(kinds::nodes(), "", node).unwrap()).clone();
    obj["spec"]["unschedulable"] =
        json!(cordoned_by.is_some() || obj["spec"]["unschedulable"] == true);
    if let Some(by) = cordoned_by {
        obj["metadata"]["annotations"] = json!({CORDONED_BY_ANNOTATION: by});
    }
    world
        .update(kinds::nodes(), obj, &WriteOptions::default())
        .unwrap();
    mesh_sim::controllers::settle(world);
}

fn cordoned_by_someone(world: &mut World, node: &str) {
    let mut obj = (*world.store.get(kinds::nodes(), "", node).unwrap()).clone();
    obj["spec"]["unschedulable"] = json!(true);
    world
        .update(kinds::nodes(), obj, &WriteOptions::default())
        .unwrap();
    mesh_sim::controllers::settle(world);
}

#[test]
fn every_stale_node_is_cordoned_drained_replaced_and_uncordoned_fewest_evictions_first() {
    let snapshot = ambient_world(|_| {});
    let roll = plan(&snapshot, &options(), now()).unwrap();
    assert!(roll.refusals.is_empty(), "{:?}", roll.refusals);
    assert_eq!(roll.daemon_set.as_deref(), Some("istio-system/ztunnel"));
    assert_eq!(roll.target_version.as_deref(), Some("1.23.1"));
    assert_eq!(roll.control_plane.as_ref().unwrap().istiod, "istiod-1-23-1");
    assert_eq!(roll.nodes.len(), 3);
    let evictions: Vec<usize> = roll.nodes.iter().map(|n| n.evictions.len()).collect();
    let mut sorted = evictions.clone();
    sorted.sort();
    assert_eq!(evictions, sorted, "fewest evictions first");
    assert_eq!(
        evictions.iter().sum::<usize>(),
        8,
        "every captured pod but the opted-out one"
    );
    assert_eq!(roll.question(), "Roll ztunnel on 3 nodes?");

    let step = &roll.nodes[0];
    let node = snapshot.nodes.iter().find(|n| n.name == step.node).unwrap();
    assert_eq!(step.kind, StepKind::Roll);
    assert_eq!(
        step.cordon.as_ref().unwrap().body_to_send(),
        json!({
            "metadata": {
                "annotations": {
                    "mesh-upgrade.io/cordoned-by": "ztunnel-roll",
                    "mesh-upgrade.io/cordoned-at": "2026-12-04T21:10:07Z",
                },
                "resourceVersion": node.resource_version,
            },
            "spec": {"unschedulable": true},
        })
    );
    assert_eq!(
        step.cordon.as_ref().unwrap().target,
        ObjectRef::cluster(ObjectKind::Node, &step.node)
    );
    let replace = step.replace.as_ref().unwrap();
    assert_eq!(replace.change, crate::write::Change::Delete);
    assert_eq!(replace.target.namespace.as_deref(), Some("istio-system"));
    assert!(replace.target.name.starts_with("ztunnel-"));
    assert_eq!(
        replace.precondition,
        crate::write::Precondition::Uid(step.ztunnel_uid.clone())
    );
    assert_eq!(
        step.uncordon.as_ref().unwrap().body_to_send(),
        json!({
            "metadata": {"annotations": {
                "mesh-upgrade.io/cordoned-by": null,
                "mesh-upgrade.io/cordoned-at": null,
            }},
            "spec": {"unschedulable": null},
        })
    );
    for eviction in roll.nodes.iter().flat_map(|n| &n.evictions) {
        assert_eq!(eviction.write.change, crate::write::Change::Evict);
        let pod = snapshot
            .pods
            .iter()
            .find(|p| p.name == eviction.pod)
            .unwrap();
        assert_eq!(
            eviction.write.precondition,
            crate::write::Precondition::Uid(pod.uid.to_string())
        );
        assert_ne!(
            eviction.workload.as_deref(),
            Some("Deployment/ratings-batch")
        );
    }
    let details = roll
        .nodes
        .iter()
        .flat_map(|n| &n.evictions)
        .find(|e| e.workload.as_deref() == Some("Deployment/details"))
        .unwrap();
    assert_eq!(
        details.risk.as_deref(),
        Some("1 replica, no PDB: down until its replacement is Ready")
    );
    let ledger = roll
        .nodes
        .iter()
        .flat_map(|n| &n.evictions)
        .find(|e| e.workload.as_deref() == Some("StatefulSet/ledger"))
        .unwrap();
    assert_eq!(ledger.budget.as_deref(), Some("ledger"));
    assert_eq!(ledger.risk, None);
}

#[test]
fn a_rerun_uncordons_what_it_finished_first_and_never_touches_someone_elses_cordon() {
    let snapshot = ambient_world(|world| {
        // sim-node-2: replaced by an interrupted run, still cordoned by it.
        replaced(world, "sim-node-2", Some(ROLL_VERB));
        // sim-node-3: cordoned by an operator.
        cordoned_by_someone(world, "sim-node-3");
    });
    let roll = plan(&snapshot, &options(), now()).unwrap();
    assert!(roll.refusals.is_empty(), "{:?}", roll.refusals);
    let order: Vec<(&str, StepKind)> = roll
        .nodes
        .iter()
        .map(|n| (n.node.as_str(), n.kind))
        .collect();
    assert_eq!(order[0], ("sim-node-2", StepKind::Uncordon));
    let finish = &roll.nodes[0];
    assert!(finish.cordon.is_none() && finish.replace.is_none() && finish.evictions.is_empty());
    assert!(finish.uncordon.is_some());
    let theirs = roll.nodes.iter().find(|n| n.node == "sim-node-3").unwrap();
    assert_eq!(theirs.cordoned, Cordon::Other);
    assert!(theirs.cordon.is_none() && theirs.uncordon.is_none());
    assert!(theirs.replace.is_some());
    assert!(
        roll.notes.contains(
            &"sim-node-3 was already cordoned by someone else: it is rolled and left cordoned"
                .to_string()
        ),
        "{:?}",
        roll.notes
    );
    assert_eq!(
        roll.question(),
        "Roll ztunnel on 2 nodes and uncordon 1 more node?"
    );
}

#[test]
fn a_node_our_earlier_run_cordoned_but_did_not_replace_keeps_its_cordon_and_gets_the_rest() {
    let snapshot = ambient_world(|world| {
        let mut obj = (*world.store.get(kinds::nodes(), "", "sim-node-1").unwrap()).clone();
        obj["spec"]["unschedulable"] = json!(true);
        obj["metadata"]["annotations"] = json!({CORDONED_BY_ANNOTATION: ROLL_VERB});
        world
            .update(kinds::nodes(), obj, &WriteOptions::default())
            .unwrap();
        mesh_sim::controllers::settle(world);
    });
    let roll = plan(&snapshot, &options(), now()).unwrap();
    let first = &roll.nodes[0];
    assert_eq!(first.node, "sim-node-1", "resumed first");
    assert_eq!(first.kind, StepKind::Roll);
    assert!(first.cordon.is_none());
    assert!(first.replace.is_some() && first.uncordon.is_some());
}

#[test]
fn no_drain_only_replaces_ztunnel_and_up_to_date_nodes_are_skipped() {
    let snapshot = ambient_world(|world| replaced(world, "sim-node-1", None));
    let roll = plan(
        &snapshot,
        &RollOptions {
            drain: false,
            ..options()
        },
        now(),
    )
    .unwrap();
    assert_eq!(roll.node_names(), ["sim-node-2", "sim-node-3"]);
    assert_eq!(
        roll.skipped,
        [SkippedNode {
            node: "sim-node-1".into(),
            reason: "up to date on 1.23.1".into()
        }]
    );
    for step in &roll.nodes {
        assert!(step.cordon.is_none() && step.uncordon.is_none() && step.evictions.is_empty());
        assert_eq!(step.writes(), 1);
    }
    assert!(roll.notes[0].starts_with("--no-drain:"));
}

#[test]
fn named_and_labelled_nodes_narrow_the_roll_and_an_unknown_node_is_a_usage_error() {
    let snapshot = ambient_world(|_| {});
    let named = plan(
        &snapshot,
        &RollOptions {
            nodes: vec!["sim-node-3".into()],
            ..options()
        },
        now(),
    )
    .unwrap();
    assert_eq!(named.node_names(), ["sim-node-3"]);
    let labelled = plan(
        &snapshot,
        &RollOptions {
            node_selector: Some(
                LabelSelector::parse("topology.kubernetes.io/zone=sim-zone-b").unwrap(),
            ),
            ..options()
        },
        now(),
    )
    .unwrap();
    assert_eq!(labelled.node_names(), ["sim-node-2"]);
    let err = plan(
        &snapshot,
        &RollOptions {
            nodes: vec!["sim-node-9".into()],
            ..options()
        },
        now(),
    )
    .unwrap_err();
    assert_eq!(
        err.to_string(),
        "node sim-node-9 does not exist or runs no ztunnel; nodes: sim-node-1, sim-node-2, sim-node-3"
    );
}

#[test]
fn a_rolling_update_daemonset_an_unready_istiod_or_cni_and_a_newer_template_are_refused() {
    let mut snapshot = ambient_world(|_| {});
    for ds in &mut snapshot.daemon_sets {
        if ds.name == "ztunnel" {
            ds.update_strategy = "RollingUpdate".into();
        }
    }
    let cni_on_2 = snapshot
        .pods
        .iter_mut()
        .find(|p| {
            p.name.starts_with("istio-cni-node-") && p.ambient.node.as_deref() == Some("sim-node-2")
        })
        .unwrap();
    cni_on_2.ready = false;
    for istiod in &mut snapshot.istiods {
        if istiod.revision == "1-23-1" {
            istiod.ready = 0;
        }
    }
    let roll = plan(&snapshot, &options(), now()).unwrap();
    assert_eq!(roll.refusals.len(), 3, "{:#?}", roll.refusals);
    assert!(roll.refusals[0].starts_with(
        "DaemonSet istio-system/ztunnel uses updateStrategy RollingUpdate, so its controller replaces every node's ztunnel by itself"
    ));
    assert!(roll.refusals[0].contains("--set updateStrategy.type=OnDelete"));
    assert!(roll.refusals[1].starts_with(
        "istiod-1-23-1 (revision 1-23-1), which the new ztunnels talk to, has no Ready pod"
    ));
    assert!(
        roll.refusals[2].starts_with("istio-cni is not Ready on sim-node-2:"),
        "{}",
        roll.refusals[2]
    );
    assert!(
        roll.refusals[2].ends_with(
            "or roll the other nodes: kubectl mesh-upgrade ztunnel-roll sim-node-1 sim-node-3"
        ),
        "{}",
        roll.refusals[2]
    );

    // A template newer than the istiod it talks to.
    let mut snapshot = ambient_world(|_| {});
    for ds in &mut snapshot.daemon_sets {
        if let Some(facts) = ds.data_plane.as_mut().filter(|_| ds.name == "ztunnel") {
            facts.image = "docker.io/istio/ztunnel:1.24.0".into();
        }
    }
    let roll = plan(&snapshot, &options(), now()).unwrap();
    assert_eq!(roll.refusals.len(), 1, "{:?}", roll.refusals);
    assert!(roll.refusals[0].contains("upgrade istiod first"));
}

#[test]
fn without_ambient_installed_the_roll_is_refused_with_a_sentence() {
    let snapshot = crate::mesh::fixtures::sim_canary_snapshot(crate::snapshot::Scope::All);
    let roll = plan(&snapshot, &options(), now()).unwrap();
    assert_eq!(
        roll.refusals,
        [
            "no ztunnel DaemonSet (pods app=ztunnel) in istio-system: ambient mode is not installed there"
        ]
    );
    assert!(roll.nodes.is_empty());
}

#[test]
fn the_waits_end_when_evicted_pods_are_gone_the_new_ztunnel_is_ready_and_the_budget_allows() {
    let snapshot = ambient_world(|_| {});
    let on_node = |node: &str| -> Vec<PodInfo> {
        snapshot
            .pods
            .iter()
            .filter(|p| p.ambient.node.as_deref() == Some(node))
            .cloned()
            .collect()
    };
    let pods = on_node("sim-node-1");
    let productpage = pods
        .iter()
        .find(|p| p.name.starts_with("productpage-"))
        .unwrap();
    let uids: BTreeSet<String> = [productpage.uid.to_string()].into();
    assert_eq!(
        evicted_gone(&pods, &uids),
        Wait::Pending(format!("waiting for {} to terminate", productpage.name))
    );
    let without: Vec<PodInfo> = pods
        .iter()
        .filter(|p| p.uid != productpage.uid)
        .cloned()
        .collect();
    assert_eq!(evicted_gone(&without, &uids), Wait::Done(()));

    let old = pods
        .iter()
        .find(|p| p.name.starts_with("ztunnel-"))
        .unwrap()
        .clone();
    let target = "docker.io/istio/ztunnel:1.23.1";
    assert_eq!(
        replacement_ready(&pods, "sim-node-1", &old.uid, target),
        Wait::Pending("waiting for a new ztunnel on sim-node-1".into())
    );
    let mut new = old.clone();
    new.uid = "new".into();
    new.name = "ztunnel-new".into();
    new.ready = false;
    new.ambient.data_plane.as_mut().unwrap().image = target.into();
    let mut after = without.clone();
    after.push(new.clone());
    assert_eq!(
        replacement_ready(&after, "sim-node-1", &old.uid, target),
        Wait::Pending("waiting for ztunnel-new to be Ready".into())
    );
    after.last_mut().unwrap().ready = true;
    assert_eq!(
        replacement_ready(&after, "sim-node-1", &old.uid, target),
        Wait::Done("ztunnel-new".into())
    );

    let mut budgets: Vec<PdbInfo> = snapshot
        .pod_disruption_budgets
        .iter()
        .filter(|b| b.name == "productpage")
        .cloned()
        .collect();
    assert_eq!(budget_allows(&budgets, &productpage.labels), Wait::Done(()));
    budgets[0].disruptions_allowed = 0;
    assert_eq!(
        budget_allows(&budgets, &productpage.labels),
        Wait::Pending("PDB productpage allows no disruption (2 of 2 healthy, 1 needed)".into())
    );
}

#[test]
fn node_answers_are_read_as_ours_theirs_or_open() {
    let ours = json!({"metadata": {"resourceVersion": "9", "annotations": {CORDONED_BY_ANNOTATION: ROLL_VERB}},
                      "spec": {"unschedulable": true}});
    assert_eq!(
        NodeNow::of(Some(&ours)),
        NodeNow::OursCordoned {
            resource_version: "9".into()
        }
    );
    let theirs = json!({"metadata": {"resourceVersion": "9"}, "spec": {"unschedulable": true}});
    assert_eq!(NodeNow::of(Some(&theirs)), NodeNow::TheirsCordoned);
    let open = json!({"metadata": {"resourceVersion": "10"}, "spec": {}});
    assert_eq!(
        NodeNow::of(Some(&open)),
        NodeNow::Open {
            resource_version: "10".into()
        }
    );
    assert_eq!(NodeNow::of(None), NodeNow::Gone);
}

#[test]
fn pods_that_came_to_a_node_after_the_plan_are_evicted_too_but_not_daemonset_pods() {
    let snapshot = ambient_world(|_| {});
    let roll = plan(&snapshot, &options(), now()).unwrap();
    let step = &roll.nodes[0];
    let on_node: Vec<PodInfo> = snapshot
        .pods
        .iter()
        .filter(|p| p.ambient.node.as_deref() == Some(step.node.as_str()))
        .cloned()
        .collect();
    assert!(
        newcomers(&on_node, step).is_empty(),
        "the plan knows them all"
    );
    let mut moved = snapshot
        .pods
        .iter()
        .find(|p| p.name == "ledger-1" || p.name == "ledger-0")
        .filter(|p| p.ambient.node.as_deref() != Some(step.node.as_str()))
        .cloned()
        .unwrap_or_else(|| {
            snapshot
                .pods
                .iter()
                .find(|p| p.name.starts_with("reviews-"))
                .unwrap()
                .clone()
        });
    moved.name = "newcomer".into();
    moved.uid = "u-newcomer".into();
    moved.ambient.node = Some(step.node.clone());
    let mut daemon = moved.clone();
    daemon.name = "agent".into();
    daemon.owners[0].kind = "DaemonSet".into();
    let mut with = on_node.clone();
    with.push(moved);
    with.push(daemon);
    let found = newcomers(&with, step);
    assert_eq!(found.len(), 1);
    assert_eq!(found[0].pod, "newcomer");
    assert_eq!(
        found[0].write.precondition,
        crate::write::Precondition::Uid("u-newcomer".into())
    );
}

#[test]
fn a_node_we_cordoned_whose_new_ztunnel_is_not_ready_yet_is_skipped_with_how_to_uncordon_it() {
    let mut snapshot = ambient_world(|world| {
        // An interrupted run: replaced and still cordoned by ztunnel-roll.
        replaced(world, "sim-node-1", Some(ROLL_VERB));
    });
    let new = snapshot
        .pods
        .iter_mut()
        .find(|p| p.name.starts_with("ztunnel-") && p.ambient.node.as_deref() == Some("sim-node-1"))
        .unwrap();
    new.ready = false;
    let roll = plan(&snapshot, &options(), now()).unwrap();
    let skipped = roll
        .skipped
        .iter()
        .find(|s| s.node == "sim-node-1")
        .unwrap();
    assert_eq!(
        skipped.reason,
        "its ztunnel runs the template but is not Ready yet: nothing to replace; still cordoned by an earlier ztunnel-roll: run it again once the ztunnel is Ready (it uncordons the node), or kubectl uncordon sim-node-1"
    );
}

#[test]
fn rolling_as_many_nodes_at_once_as_can_take_pods_is_noted() {
    let snapshot = ambient_world(|_| {});
    let roll = plan(
        &snapshot,
        &RollOptions {
            nodes_at_once: 3,
            ..options()
        },
        now(),
    )
    .unwrap();
    assert!(
        roll.notes
            .iter()
            .any(|n| n.starts_with("3 nodes at once can cordon every schedulable node together")),
        "{:?}",
        roll.notes
    );
    let one = plan(&snapshot, &options(), now()).unwrap();
    assert!(one.notes.is_empty(), "{:?}", one.notes);
}
