//! Ambient mode end to end, through the real kubectl's plugin discovery:
//! `status` shows ztunnel and istio-cni node by node, and `ztunnel-roll`
//! upgrades ztunnel one node at a time on the `ambient` scenario (three
//! nodes whose 1.22.3 ztunnels run under a 1.23.1 OnDelete template).
//! Judged by what the cluster ends up running and by the request log.

use std::process::Stdio;
use std::time::{Duration, Instant};

use mesh_sim::resources::kinds;
use mesh_sim::{RequestRecord, Sim, SimOptions};
use serde_json::Value;

use super::{Env, KUBECTL, Run, plugin_dir};

fn ambient() -> Sim {
    Sim::start(SimOptions::default().scenario("ambient")).expect("the ambient scenario starts")
}

/// `kubectl <args>` with the plugin on PATH, so `kubectl mesh-upgrade`
/// finds it as kubectl finds plugins.
struct Kubectl {
    env: Env,
    _dir: tempfile::TempDir,
}

impl Kubectl {
    fn on(sim: &Sim) -> Self {
        let dir = plugin_dir();
        let env = Env::new()
            .kubeconfig(sim.kubeconfig_path())
            .var("PATH", &super::path_with(dir.path()));
        Kubectl { env, _dir: dir }
    }

    fn run(&self, args: &[&str]) -> Run {
        self.env.run(KUBECTL, args)
    }

    fn plugin(&self, args: &[&str]) -> Run {
        let args = [&["mesh-upgrade"][..], args].concat();
        self.run(&args)
    }
}

/// The ztunnel pods: (node, image, Ready).
fn ztunnels(sim: &Sim) -> Vec<(String, String, bool)> {
    let mut out: Vec<(String, String, bool)> = sim.with_world(|w| {
        w.store
            .list(kinds::pods(), Some("istio-system"))
            .filter(|p| p["metadata"]["labels"]["app"] == "ztunnel")
            .map(|p| {
                let ready = p["status"]["conditions"]
                    .as_array()
                    .into_iter()
                    .flatten()
                    .any(|c| c["type"] == "Ready" && c["status"] == "True");
                (
                    p["spec"]["nodeName"].as_str().unwrap_or("").to_string(),
                    p["spec"]["containers"][0]["image"]
                        .as_str()
                        .unwrap_or("")
                        .to_string(),
                    ready,
                )
            })
            .collect()
    });
    out.sort();
    out
}

/// (unschedulable, our cordoned-by annotation) of a node.
fn cordon_of(sim: &Sim, node: &str) -> (bool, Option<String>) {
    let n = sim.get(kinds::nodes(), "", node).expect("the node exists");
    (
        n["spec"]["unschedulable"].as_bool().unwrap_or(false),
        n["metadata"]["annotations"]["mesh-upgrade.io/cordoned-by"]
            .as_str()
            .map(str::to_string),
    )
}

/// Requests that change something (dry runs included), in order.
fn writes(sim: &Sim) -> Vec<RequestRecord> {
    sim.requests()
        .into_iter()
        .filter(|r| r.method != "GET")
        .collect()
}

const NEW: &str = "docker.io/istio/ztunnel:1.23.1";

#[test]
fn status_shows_each_nodes_stale_ztunnel_and_a_skew_outside_istios_window() {
    let sim = ambient();
    // istiod 1-22-3, which the running ztunnels and istio-cni talk to,
    // upgraded in place two minors ahead of them.
    sim.apply_yaml(&mesh_sim::inject::istio_revision_manifests(
        Some("1-22-3"),
        "1.24.0",
        &mesh_sim::inject::RevisionOptions::default(),
    ))
    .expect("the upgrade applies");
    sim.settle();
    let kubectl = Kubectl::on(&sim);
    sim.clear_requests();
    let run = kubectl.plugin(&["status", "-A", "--exit-code"]);
    assert_eq!(run.code, 3, "{run:#?}");
    let text = &run.stdout;
    assert!(
        text.contains(
            "ZTUNNEL istio-system/ztunnel  OnDelete, template 1.23.1 -> istiod-1-23-1 (1.23.1, Ready)"
        ),
        "{text}"
    );
    for node in ["sim-node-1", "sim-node-2", "sim-node-3"] {
        assert!(
            text.lines().any(|l| l.starts_with(node)
                && l.contains("ztunnel-")
                && l.contains("1.22.3   1-22-3 (1.24.0)  yes    stale, skew")),
            "{node}:\n{text}"
        );
    }
    assert!(
        text.contains("problem: on sim-node-1, sim-node-2 and sim-node-3: ztunnel 1.22.3 is 2 minors behind istiod 1.24.0; Istio supports at most one"),
        "{text}"
    );
    assert!(
        text.contains("ztunnel on 3 nodes runs 1.22.3 but its DaemonSet now runs 1.23.1"),
        "{text}"
    );
    assert!(text.contains("kubectl mesh-upgrade ztunnel-roll"), "{text}");
    // One LIST per kind, Nodes included, whatever the number of nodes.
    let mut lists: std::collections::BTreeMap<String, usize> = Default::default();
    for r in sim.requests() {
        if r.method == "GET" && !r.query.contains("watch") && !r.query.contains("continue") {
            *lists.entry(r.path.clone()).or_default() += 1;
        }
    }
    assert_eq!(lists.get("/api/v1/nodes"), Some(&1), "{lists:#?}");
    assert!(lists.values().all(|n| *n == 1), "{lists:#?}");

    let run = kubectl.plugin(&["status", "-A", "-o", "json"]);
    assert_eq!(run.code, 0, "{run:#?}");
    let report: Value = serde_json::from_str(&run.stdout).expect("JSON");
    let z = &report["ztunnel"][0];
    assert_eq!(z["updateStrategy"], "OnDelete");
    assert_eq!(z["version"], "1.23.1");
    assert_eq!(z["controlPlane"]["istiod"], "istiod-1-23-1");
    assert_eq!(z["staleNodes"], 3);
    let pod = &z["nodes"][0]["pods"][0];
    assert_eq!(pod["version"], "1.22.3");
    assert_eq!(pod["upToDate"], false);
    assert_eq!(pod["controlPlane"]["version"], "1.24.0");
    assert_eq!(
        pod["skew"],
        serde_json::json!({"kind": "too-far-behind", "minorsBehind": 2})
    );
    assert_eq!(report["istioCni"][0]["name"], "istio-cni-node");
    let bookinfo = &report["ambient"]["namespaces"][0];
    assert_eq!(
        (
            &bookinfo["name"],
            &bookinfo["pods"],
            &bookinfo["enabled"],
            &bookinfo["optedOut"]
        ),
        (
            &Value::from("bookinfo"),
            &Value::from(7),
            &Value::from(6),
            &Value::from(1)
        )
    );
    assert!(
        report["ambient"]["pods"]
            .as_array()
            .unwrap()
            .iter()
            .all(|p| p["node"].is_string() && p["redirection"].is_string())
    );
}

#[test]
fn the_roll_goes_node_by_node_keeps_someone_elses_cordon_and_a_rerun_has_nothing_left() {
    let sim = ambient();
    let kubectl = Kubectl::on(&sim);
    // An operator's cordon, which the roll must keep.
    let run = kubectl.run(&["cordon", "sim-node-3"]);
    assert_eq!(run.code, 0, "{run:#?}");
    sim.settle();
    sim.clear_requests();
    let run = kubectl.plugin(&["ztunnel-roll", "--yes"]);
    assert_eq!(run.code, 0, "{run:#?}");
    assert!(run.stdout.contains("Summary: 3 rolled;"), "{}", run.stdout);

    // Node by node: each node's cordon, evictions, ztunnel delete and
    // uncordon come before the next node's first write.
    let mut sequence: Vec<(String, String)> = Vec::new();
    for r in writes(&sim) {
        assert!(r.status < 300 || r.status == 429, "{r:?}");
        if r.status >= 300 {
            continue;
        }
        let what = if r.path.starts_with("/api/v1/nodes/") {
            ("node", r.path.rsplit('/').next().unwrap().to_string())
        } else if r.path.ends_with("/eviction") {
            ("evict", r.namespace.clone())
        } else if r.method == "DELETE" {
            ("delete", r.name.clone())
        } else {
            ("other", r.path.clone())
        };
        sequence.push((what.0.to_string(), what.1));
    }
    let nodes: Vec<&str> = sequence
        .iter()
        .filter(|(kind, _)| kind == "node")
        .map(|(_, n)| n.as_str())
        .collect();
    // Cordon and uncordon, back to back per node; sim-node-3 never patched.
    assert_eq!(nodes.len(), 4, "{sequence:?}");
    assert_eq!(nodes[0], nodes[1], "{sequence:?}");
    assert_eq!(nodes[2], nodes[3], "{sequence:?}");
    assert!(!nodes.contains(&"sim-node-3"), "{sequence:?}");
    let deletes: Vec<usize> = sequence
        .iter()
        .enumerate()
        .filter(|(_, (kind, _))| kind == "delete")
        .map(|(i, _)| i)
        .collect();
    assert_eq!(deletes.len(), 3, "{sequence:?}");
    let node_writes: Vec<usize> = sequence
        .iter()
        .enumerate()
        .filter(|(_, (kind, _))| kind == "node")
        .map(|(i, _)| i)
        .collect();
    // The first node's ztunnel is deleted between its cordon and uncordon.
    assert!(node_writes[0] < deletes[0] && deletes[0] < node_writes[1]);
    assert!(node_writes[1] < node_writes[2]);
    assert!(
        sequence.iter().all(|(kind, _)| kind != "other"),
        "{sequence:?}"
    );

    sim.settle();
    for (node, image, ready) in ztunnels(&sim) {
        assert_eq!((image.as_str(), ready), (NEW, true), "{node}");
    }
    assert_eq!(cordon_of(&sim, "sim-node-1"), (false, None));
    assert_eq!(cordon_of(&sim, "sim-node-2"), (false, None));
    assert_eq!(
        cordon_of(&sim, "sim-node-3"),
        (true, None),
        "someone else's"
    );
    let status = kubectl.plugin(&["status", "-A", "-o", "json"]);
    let report: Value = serde_json::from_str(&status.stdout).expect("JSON");
    assert_eq!(report["ztunnel"][0]["staleNodes"], 0);
    for pod in report["ambient"]["pods"].as_array().unwrap() {
        assert!(
            pod["redirection"] == "enabled" || pod["redirection"] == "opted-out",
            "{pod}"
        );
    }

    sim.clear_requests();
    let again = kubectl.plugin(&["ztunnel-roll", "--yes", "-o", "json"]);
    assert_eq!(again.code, 0, "{again:#?}");
    assert!(writes(&sim).is_empty(), "{:?}", writes(&sim));
    assert!(again.stderr.contains("Nothing to roll"), "{again:#?}");
    let report: Value = serde_json::from_str(&again.stdout).expect("JSON");
    assert_eq!(report["kind"], "ZtunnelRollReport");
}

#[test]
fn an_interrupted_roll_names_the_node_it_left_cordoned_and_a_rerun_finishes_and_uncordons_it() {
    let sim = ambient();
    let kubectl = Kubectl::on(&sim);
    // No new pod becomes Ready while the clock stands: the first node's new
    // ztunnel keeps the roll waiting until Ctrl-C.
    sim.pause_clock();
    sim.clear_requests();
    let child = kubectl
        .env
        .command(KUBECTL, &["mesh-upgrade", "ztunnel-roll", "--yes"])
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("kubectl starts");
    let deleted_ztunnel = |sim: &Sim| {
        sim.requests()
            .iter()
            .any(|r| r.method == "DELETE" && r.status < 300 && r.path.contains("/pods/ztunnel-"))
    };
    let started = Instant::now();
    while !deleted_ztunnel(&sim) {
        assert!(
            started.elapsed() < Duration::from_secs(60),
            "no ztunnel was deleted"
        );
        std::thread::sleep(Duration::from_millis(10));
    }
    let pid = child.id().to_string();
    for _ in 0..2 {
        std::thread::sleep(Duration::from_millis(300));
        let status = std::process::Command::new("kill")
            .args(["-INT", &pid])
            .status()
            .expect("kill runs");
        assert!(status.success());
    }
    let output = child.wait_with_output().expect("the plugin ends");
    let stdout = String::from_utf8_lossy(&output.stdout);
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert_eq!(output.status.code(), Some(130), "{stdout}\n{stderr}");
    let left: Vec<String> = ["sim-node-1", "sim-node-2", "sim-node-3"]
        .iter()
        .filter(|n| cordon_of(&sim, n).0)
        .map(|n| n.to_string())
        .collect();
    assert_eq!(
        left.len(),
        1,
        "one node in flight: {left:?}\n{stdout}\n{stderr}"
    );
    let node = &left[0];
    assert_eq!(cordon_of(&sim, node), (true, Some("ztunnel-roll".into())));
    // Never silently: the node, and how to uncordon it.
    let words = stderr.split_whitespace().collect::<Vec<_>>().join(" ");
    assert!(
        words.contains(&format!(
            "LEFT CORDONED by ztunnel-roll: {node}: uncordon with kubectl uncordon {node}, or run kubectl mesh-upgrade ztunnel-roll again"
        )),
        "{stderr}"
    );
    assert!(stdout.contains("LEFT CORDONED"), "{stdout}");
    assert!(stdout.contains("2 not started"), "{stdout}");

    sim.set_clock_speed(50.0);
    sim.settle();
    let status = kubectl.plugin(&["status", "-A"]);
    assert!(
        status.stdout.contains(&format!(
            "{node} left cordoned by an unfinished ztunnel-roll"
        )),
        "{status:#?}"
    );
    sim.clear_requests();
    let rerun = kubectl.plugin(&["ztunnel-roll", "--yes"]);
    assert_eq!(rerun.code, 0, "{rerun:#?}");
    assert!(
        rerun
            .stdout
            .lines()
            .any(|l| l.starts_with(node.as_str()) && l.contains("uncordoned")),
        "{}",
        rerun.stdout
    );
    assert!(
        rerun.stdout.contains("Summary: 2 rolled, 1 uncordoned;"),
        "{}",
        rerun.stdout
    );
    sim.settle();
    for n in ["sim-node-1", "sim-node-2", "sim-node-3"] {
        assert_eq!(cordon_of(&sim, n), (false, None), "{n}");
    }
    for (node, image, ready) in ztunnels(&sim) {
        assert_eq!((image.as_str(), ready), (NEW, true), "{node}");
    }
}

#[test]
fn the_roll_is_refused_while_istio_cni_is_not_ready_on_a_node_and_dry_runs_write_nothing() {
    let sim = ambient();
    let kubectl = Kubectl::on(&sim);
    let cni_on_2 = sim.with_world(|w| {
        w.store
            .list(kinds::pods(), Some("istio-system"))
            .find(|p| {
                p["metadata"]["labels"]["k8s-app"] == "istio-cni-node"
                    && p["spec"]["nodeName"] == "sim-node-2"
            })
            .map(|p| p["metadata"]["name"].as_str().unwrap().to_string())
            .expect("istio-cni runs on sim-node-2")
    });
    let run = kubectl.run(&[
        "annotate",
        "pod",
        &cni_on_2,
        "-n",
        "istio-system",
        "mesh-sim.io/never-ready=true",
    ]);
    assert_eq!(run.code, 0, "{run:#?}");
    sim.settle();
    sim.clear_requests();
    let run = kubectl.plugin(&["ztunnel-roll", "--yes"]);
    assert_eq!(run.code, 5, "{run:#?}");
    let words = run.stderr.split_whitespace().collect::<Vec<_>>().join(" ");
    assert!(
        words.contains("istio-cni is not Ready on sim-node-2")
            && words.contains("kubectl mesh-upgrade ztunnel-roll sim-node-1 sim-node-3")
            && words.ends_with("nothing was changed"),
        "{run:#?}"
    );
    assert!(writes(&sim).is_empty(), "{:?}", writes(&sim));

    // The other nodes, rehearsed: the client dry run sends nothing, the
    // server dry run sends every write with dryRun=All and changes nothing.
    let run = kubectl.plugin(&["ztunnel-roll", "sim-node-1", "--dry-run", "-o", "json"]);
    assert_eq!(run.code, 0, "{run:#?}");
    let plan: Value = serde_json::from_str(&run.stdout).expect("JSON");
    assert_eq!(plan["kind"], "ZtunnelRollPlan");
    assert_eq!(plan["nodes"][0]["node"], "sim-node-1");
    assert_eq!(
        plan["nodes"][0]["cordon"]["change"]["patch"]["body"]["spec"],
        serde_json::json!({"unschedulable": true})
    );
    assert!(writes(&sim).is_empty(), "{:?}", writes(&sim));
    let before = ztunnels(&sim);
    let run = kubectl.plugin(&["ztunnel-roll", "sim-node-1", "--dry-run=server"]);
    assert_eq!(run.code, 0, "{run:#?}");
    assert!(run.stdout.contains("rehearsed"), "{run:#?}");
    let sent = writes(&sim);
    assert!(
        sent.len() >= 4,
        "cordon, evictions, delete, uncordon: {sent:?}"
    );
    assert!(
        sent.iter().all(|r| r.is_dry_run()),
        "every write with dryRun=All: {sent:?}"
    );
    sim.settle();
    assert_eq!(ztunnels(&sim), before);
    assert_eq!(cordon_of(&sim, "sim-node-1"), (false, None));
}
