use super::*;
use crate::mesh::fixtures::snapshot_from_world;
use crate::snapshot::Scope;

/// The `ambient` scenario as mesh-sim settles it, then `change` applied.
pub(crate) fn ambient_world(change: impl FnOnce(&mut mesh_sim::world::World)) -> ClusterSnapshot {
    let mut world = mesh_sim::world::World::new(mesh_sim::world::SimConfig::default());
    mesh_sim::scenario::load_builtin(&mut world, "ambient").expect("the ambient scenario loads");
    change(&mut world);
    snapshot_from_world(&world, Scope::All)
}

#[test]
fn the_window_is_the_same_minor_or_one_behind_and_nothing_ahead() {
    assert_eq!(
        Skew::of("1.22.3", "1.23.1"),
        Some(Skew::Supported { minors_behind: 1 })
    );
    assert_eq!(
        Skew::of("1.23.0", "1.23.4-distroless"),
        Some(Skew::Supported { minors_behind: 0 })
    );
    // A newer patch of the same minor is still the same minor.
    assert!(Skew::of("1.23.5", "1.23.1").unwrap().is_supported());
    assert_eq!(
        Skew::of("1.22.3", "1.24.0"),
        Some(Skew::TooFarBehind { minors_behind: 2 })
    );
    assert_eq!(
        Skew::of("1.24.0", "1.23.1"),
        Some(Skew::Ahead { minors_ahead: 1 })
    );
    assert_eq!(Skew::of("2.0.0", "1.23.1"), Some(Skew::OtherMajor));
    assert_eq!(Skew::of("latest", "1.23.1"), None);
    assert_eq!(
        Skew::of("1.22.3", "1.24.0")
            .unwrap()
            .problem("1.24.0")
            .unwrap(),
        "2 minors behind istiod 1.24.0; Istio supports at most one"
    );
    assert!(
        Skew::of("1.24.0", "1.23.1")
            .unwrap()
            .problem("1.23.1")
            .unwrap()
            .contains("upgrade istiod first")
    );
}

#[test]
fn the_scenarios_ztunnels_are_stale_on_every_node_against_a_template_on_the_new_revision() {
    let snapshot = ambient_world(|_| {});
    let cp = ControlPlane::from_snapshot(&snapshot);
    let dp = data_plane(&snapshot, &cp);
    assert_eq!(dp.ztunnel.len(), 1);
    let z = &dp.ztunnel[0];
    assert_eq!(
        (z.namespace.as_str(), z.name.as_str()),
        ("istio-system", "ztunnel")
    );
    assert_eq!(z.update_strategy, "OnDelete");
    assert_eq!(z.version.as_deref(), Some("1.23.1"));
    let template_cp = z.control_plane.as_ref().unwrap();
    assert_eq!(template_cp.revision, "1-23-1");
    assert_eq!(template_cp.istiod, "istiod-1-23-1");
    assert!(template_cp.ready);
    assert_eq!(z.nodes.len(), 3);
    assert_eq!(z.stale_nodes, 3);
    for node in &z.nodes {
        assert_eq!(node.state(), "stale", "{node:?}");
        let pod = node.serving().unwrap();
        assert_eq!(pod.version.as_deref(), Some("1.22.3"));
        // The running pods still talk to the revision they were made for.
        assert_eq!(pod.control_plane.as_ref().unwrap().revision, "1-22-3");
        assert_eq!(pod.skew, Some(Skew::Supported { minors_behind: 0 }));
        assert_eq!(node.cordon, Cordon::None);
    }
    assert!(z.problems.is_empty(), "{:?}", z.problems);

    let cni = &dp.istio_cni[0];
    assert_eq!(cni.name, "istio-cni-node");
    assert_eq!(cni.control_plane.as_ref().unwrap().revision, "1-22-3");
    assert_eq!(cni.stale_nodes, 0);
    assert!(cni.nodes.iter().all(|n| n.state() == "up-to-date"));

    let attention = attention(&dp, &ambient(&snapshot));
    assert_eq!(attention.len(), 1, "{attention:?}");
    assert_eq!(
        attention[0].0,
        "ztunnel on 3 nodes runs 1.22.3 but its DaemonSet now runs 1.23.1 (OnDelete: replaced node by node)"
    );
    assert_eq!(
        attention[0].1.as_deref(),
        Some("kubectl mesh-upgrade ztunnel-roll")
    );
}

#[test]
fn an_istiod_two_minors_ahead_of_running_ztunnels_is_outside_the_window() {
    // istiod-1-22-3 upgraded in place to 1.24.0 while the ztunnels still run 1.22.3.
    let snapshot = ambient_world(|world| {
        let upgrade = mesh_sim::inject::istio_revision_manifests(
            Some("1-22-3"),
            "1.24.0",
            &mesh_sim::inject::RevisionOptions::default(),
        );
        mesh_sim::scenario::load_yaml(world, &upgrade).unwrap();
    });
    let cp = ControlPlane::from_snapshot(&snapshot);
    let dp = data_plane(&snapshot, &cp);
    let z = &dp.ztunnel[0];
    for node in &z.nodes {
        assert_eq!(
            node.serving().unwrap().skew,
            Some(Skew::TooFarBehind { minors_behind: 2 })
        );
    }
    assert!(
        z.problems.contains(
            &"on sim-node-1, sim-node-2 and sim-node-3: ztunnel 1.22.3 is 2 minors behind istiod 1.24.0; Istio supports at most one"
                .to_string()
        ),
        "{:?}",
        z.problems
    );
    // istio-cni's control plane is the same revision: out of the window too.
    assert!(
        dp.istio_cni[0].problems[0].contains("istio-cni 1.22.3, 2 minors behind istiod 1.24.0"),
        "{:?}",
        dp.istio_cni[0].problems
    );
}

#[test]
fn captured_pods_are_enabled_and_the_opted_out_one_is_counted_apart() {
    let snapshot = ambient_world(|_| {});
    let status = ambient(&snapshot);
    let names: Vec<&str> = status.namespaces.iter().map(|n| n.name.as_str()).collect();
    assert_eq!(names, ["bookinfo", "payments"]);
    let bookinfo = &status.namespaces[0];
    assert!(bookinfo.labelled);
    assert_eq!(
        (
            bookinfo.pods,
            bookinfo.enabled,
            bookinfo.pending,
            bookinfo.missing,
            bookinfo.opted_out
        ),
        (7, 6, 0, 0, 1)
    );
    assert!(
        status
            .pods
            .iter()
            .all(|p| p.node.is_some() && p.namespace != "web"),
        "{:?}",
        status.pods
    );
    let ledger = status.pods.iter().find(|p| p.name == "ledger-0").unwrap();
    assert_eq!(ledger.owner.as_deref(), Some("StatefulSet/ledger"));
    assert_eq!(ledger.redirection, Capture::Enabled);
}

#[test]
fn a_pod_without_the_annotation_or_pending_is_reported_and_cordons_say_whose() {
    let mut snapshot = ambient_world(|_| {});
    let pod = snapshot
        .pods
        .iter_mut()
        .find(|p| p.name.starts_with("reviews-"))
        .unwrap();
    pod.ambient.redirection = None;
    let pod = snapshot
        .pods
        .iter_mut()
        .find(|p| p.name.starts_with("productpage-"))
        .unwrap();
    pod.ambient.redirection = Some("pending".into());
    snapshot.nodes[0].unschedulable = true;
    snapshot.nodes[0].cordoned_by = Some(ROLL_VERB.into());
    snapshot.nodes[1].unschedulable = true;
    let cp = ControlPlane::from_snapshot(&snapshot);
    let dp = data_plane(&snapshot, &cp);
    assert!(dp.ztunnel[0].nodes[0].cordon.is_ours());
    assert_eq!(dp.ztunnel[0].nodes[1].cordon, Cordon::Other);
    let messages: Vec<String> = attention(&dp, &ambient(&snapshot))
        .into_iter()
        .map(|(m, _)| m)
        .collect();
    assert!(
        messages.contains(&"sim-node-1 left cordoned by an unfinished ztunnel-roll: running it again finishes and uncordons it".to_string()),
        "{messages:?}"
    );
    assert!(
        messages
            .iter()
            .any(|m| m.starts_with("1 pod redirected to ztunnel but not taken"))
    );
    assert!(
        messages
            .iter()
            .any(|m| m.starts_with("1 pod should be captured"))
    );
}

#[test]
fn host_network_sidecar_and_system_pods_are_never_captured() {
    use crate::mesh::fixtures::{PodFixture, namespace};
    let ambient_ns = namespace("apps", &[("istio.io/dataplane-mode", "ambient")]);
    let plain = PodFixture::new("apps", "a").build();
    assert!(should_be_captured(&plain, Some(&ambient_ns)));
    let opted_out = PodFixture::new("apps", "b")
        .label("istio.io/dataplane-mode", "none")
        .build();
    assert!(!should_be_captured(&opted_out, Some(&ambient_ns)));
    let mut host = PodFixture::new("apps", "c").build();
    host.proxy.host_network = true;
    assert!(!should_be_captured(&host, Some(&ambient_ns)));
    let mut sidecar = PodFixture::new("apps", "d").build();
    sidecar.proxy.has_status_annotation = true;
    assert!(!should_be_captured(&sidecar, Some(&ambient_ns)));
    let own_label = PodFixture::new("plain", "e")
        .label("istio.io/dataplane-mode", "ambient")
        .build();
    assert!(should_be_captured(&own_label, None));
    let system = PodFixture::new("kube-system", "f")
        .label("istio.io/dataplane-mode", "ambient")
        .build();
    assert!(!should_be_captured(&system, None));
}

#[test]
fn without_istio_cni_nothing_is_captured_and_nothing_is_reported_missing() {
    let snapshot = crate::mesh::fixtures::sim_canary_snapshot(Scope::All);
    assert!(
        snapshot.namespaces.iter().any(|n| n
            .labels
            .get("istio.io/dataplane-mode")
            .map(String::as_str)
            == Some("ambient")),
        "canary has an ambient namespace"
    );
    let status = ambient(&snapshot);
    assert_eq!(status, AmbientStatus::default());
    assert!(!status.installed);
    let cp = ControlPlane::from_snapshot(&snapshot);
    assert!(attention(&data_plane(&snapshot, &cp), &status).is_empty());
}
