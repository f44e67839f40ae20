//! `restart-sidecars` end to end: the built binary against the simulated
//! cluster, judged by what the cluster ends up running and by the request
//! log (which writes went out, in which order, with which bodies).
//!
//! The canary scenario has two stale workloads (pay); tests make more by
//! relabelling a namespace the way a person would, without restarting.

use std::collections::BTreeMap;
use std::process::Stdio;
use std::time::{Duration, Instant};

use mesh_sim::resources::kinds;
use mesh_sim::world::WriteOptions;
use mesh_sim::{FaultRule, Faults, RequestRecord, Sim};
use serde_json::Value;

use super::{Env, KUBECTL, Run, canary, parse_json, plugin_on};

/// `shop` moved from `istio-injection=enabled` (1-21-2) to the canary:
/// frontend, catalog, recommendations and the log-agent DaemonSet go stale.
const SHOP_TO_CANARY: &str = "
apiVersion: v1
kind: Namespace
metadata:
  name: shop
  labels:
    istio.io/rev: 1-22-3
";

/// `search` (on 1-22-3) moved to the `prod-stable` tag (→ 1-21-2): a
/// downgrade through a tag, with a native-sidecar Deployment (indexer).
const SEARCH_TO_STABLE_TAG: &str = "
apiVersion: v1
kind: Namespace
metadata:
  name: search
  labels:
    istio.io/rev: prod-stable
";

fn sim_with(yaml: &[&str]) -> Sim {
    let sim = canary();
    for doc in yaml {
        sim.apply_yaml(doc).expect("the manifest applies");
    }
    sim.clear_requests();
    sim
}

fn kubectl(sim: &Sim, args: &[&str]) -> Run {
    let run = Env::new()
        .kubeconfig(sim.kubeconfig_path())
        .run(KUBECTL, args);
    assert_eq!(run.code, 0, "kubectl {args:?}: {run:#?}");
    run
}

/// Requests other than reads.
fn writes(sim: &Sim) -> Vec<RequestRecord> {
    sim.requests()
        .into_iter()
        .filter(|r| r.method != "GET")
        .collect()
}

/// `namespace/plural/name` of each successful PATCH, in order.
fn patched(sim: &Sim) -> Vec<String> {
    sim.requests()
        .into_iter()
        .filter(|r| r.method == "PATCH" && r.status < 300)
        .map(|r| object_of(&r.path))
        .collect()
}

/// `namespace/pods/name` of each successful DELETE, in order.
fn deleted(sim: &Sim) -> Vec<String> {
    sim.requests()
        .into_iter()
        .filter(|r| r.method == "DELETE" && r.status < 300)
        .map(|r| object_of(&r.path))
        .collect()
}

/// `/apis/apps/v1/namespaces/shop/deployments/cart` → `shop/deployments/cart`.
fn object_of(path: &str) -> String {
    let parts: Vec<&str> = path.trim_matches('/').split('/').collect();
    let at = parts
        .iter()
        .position(|p| *p == "namespaces")
        .expect("a namespaced path");
    parts[at + 1..].join("/")
}

/// Each pod of `namespace` with a proxy → the proxy's image.
fn proxies(sim: &Sim, namespace: &str) -> BTreeMap<String, String> {
    sim.with_world(|world| {
        world
            .store
            .list(kinds::pods(), Some(namespace))
            .filter_map(|pod| {
                let name = pod["metadata"]["name"].as_str()?.to_string();
                let image = ["containers", "initContainers"].iter().find_map(|field| {
                    pod["spec"][field].as_array()?.iter().find_map(|c| {
                        (c["name"] == "istio-proxy")
                            .then(|| c["image"].as_str().map(String::from))?
                    })
                })?;
                Some((name, image))
            })
            .collect()
    })
}

fn assert_all_run(sim: &Sim, namespace: &str, version: &str) {
    let proxies = proxies(sim, namespace);
    assert!(!proxies.is_empty(), "no injected pods in {namespace}");
    for (pod, image) in &proxies {
        assert!(
            image.ends_with(&format!(":{version}")),
            "{namespace}/{pod} runs {image}, not {version}: {proxies:#?}"
        );
    }
}

const SHOP_STALE: [&str; 4] = [
    "shop/deployments/catalog",
    "shop/deployments/frontend",
    "shop/deployments/recommendations",
    "shop/daemonsets/log-agent",
];

// ---------------------------------------------------------------- what it restarts

#[test]
fn a_namespace_run_patches_exactly_its_stale_workloads_and_waits_until_they_run_the_new_proxy() {
    let sim = sim_with(&[SHOP_TO_CANARY]);
    let run = plugin_on(&sim, &["restart-sidecars", "-n", "shop", "--yes"]);
    assert_eq!(run.code, 0, "{run:#?}");
    assert_eq!(patched(&sim), SHOP_STALE, "{run:#?}");
    assert!(deleted(&sim).is_empty());
    // Right after the command returns, every pod already runs the new proxy.
    assert_all_run(&sim, "shop", "1.22.3");
    // The opted-out workload was left alone (and has no proxy anyway).
    assert!(!run.stdout.contains("metrics-exporter"), "{}", run.stdout);
    let patch = sim
        .requests()
        .into_iter()
        .find(|r| r.method == "PATCH")
        .expect("a patch");
    assert_eq!(patch.content_type, "application/strategic-merge-patch+json");
    let body: Value = serde_json::from_str(&patch.body).expect("a JSON body");
    let restarted_at =
        body["spec"]["template"]["metadata"]["annotations"]["kubectl.kubernetes.io/restartedAt"]
            .as_str()
            .expect("the restartedAt annotation");
    assert!(
        chrono::DateTime::parse_from_rfc3339(restarted_at).is_ok(),
        "{restarted_at}"
    );
    assert!(
        run.stdout.contains("Summary: 4 restarted and verified."),
        "{}",
        run.stdout
    );
    // The same command again finds nothing stale.
    sim.clear_requests();
    let again = plugin_on(&sim, &["restart-sidecars", "-n", "shop", "--yes"]);
    assert_eq!(again.code, 0, "{again:#?}");
    assert!(again.stdout.contains("Nothing to restart"), "{again:#?}");
    assert!(writes(&sim).is_empty());
}

#[test]
fn stale_only_by_default_and_all_restarts_up_to_date_workloads_too() {
    let sim = sim_with(&[]);
    let run = plugin_on(&sim, &["restart-sidecars", "-n", "search", "--yes"]);
    assert_eq!(run.code, 0, "{run:#?}");
    assert!(writes(&sim).is_empty(), "search is up to date: {run:#?}");
    let run = plugin_on(
        &sim,
        &["restart-sidecars", "-n", "search", "--yes", "--all"],
    );
    assert_eq!(run.code, 0, "{run:#?}");
    assert_eq!(
        patched(&sim),
        [
            "search/deployments/indexer",
            "search/deployments/search-api"
        ]
    );
}

#[test]
fn selection_flags_pick_namespaces_labels_kinds_and_explicit_targets() {
    let sim = sim_with(&[SHOP_TO_CANARY, SEARCH_TO_STABLE_TAG]);
    let planned = |args: &[&str]| -> Vec<String> {
        let mut argv = vec!["restart-sidecars", "--dry-run", "-o", "json"];
        argv.extend_from_slice(args);
        let run = plugin_on(&sim, &argv);
        assert_eq!(run.code, 0, "{run:#?}");
        parse_json(&run)["actions"]
            .as_array()
            .expect("actions")
            .iter()
            .map(|a| {
                format!(
                    "{}/{}",
                    a["namespace"].as_str().unwrap_or_default(),
                    a["name"].as_str().unwrap_or_default()
                )
            })
            .collect()
    };
    assert_eq!(
        planned(&["-A"]),
        [
            "pay/payments",
            "search/indexer",
            "search/search-api",
            "shop/catalog",
            "shop/frontend",
            "shop/recommendations",
            "shop/log-agent"
        ]
    );
    assert_eq!(
        planned(&["-n", "search,pay"]),
        ["pay/payments", "search/indexer", "search/search-api"]
    );
    assert_eq!(planned(&["-A", "-l", "app=frontend"]), ["shop/frontend"]);
    assert_eq!(planned(&["-A", "--kind", "daemonset"]), ["shop/log-agent"]);
    assert_eq!(
        planned(&["-n", "shop", "deployment/frontend", "ds/log-agent"]),
        ["shop/frontend", "shop/log-agent"]
    );
    assert!(writes(&sim).is_empty());
}

#[test]
fn native_sidecars_move_to_the_revision_behind_a_tag() {
    let sim = sim_with(&[SEARCH_TO_STABLE_TAG]);
    let run = plugin_on(&sim, &["restart-sidecars", "-n", "search", "--yes"]);
    assert_eq!(run.code, 0, "{run:#?}");
    assert_eq!(
        patched(&sim),
        [
            "search/deployments/indexer",
            "search/deployments/search-api"
        ]
    );
    assert_all_run(&sim, "search", "1.21.2");
    // The indexer's proxy is still a native sidecar after the restart.
    let natives = sim.with_world(|world| {
        world
            .store
            .list(kinds::pods(), Some("search"))
            .filter(|p| {
                p["spec"]["initContainers"]
                    .as_array()
                    .is_some_and(|cs| cs.iter().any(|c| c["name"] == "istio-proxy"))
            })
            .count()
    });
    assert_eq!(natives, 2);
}

#[test]
fn a_namespace_with_both_labels_follows_the_legacy_label_and_needs_nothing() {
    let sim = sim_with(&[]);
    let run = plugin_on(&sim, &["restart-sidecars", "-n", "legacy", "--yes"]);
    assert_eq!(run.code, 0, "{run:#?}");
    assert!(run.stdout.contains("Nothing to restart"), "{run:#?}");
    assert!(writes(&sim).is_empty());
}

#[test]
fn on_delete_stateful_sets_need_delete_pods_and_then_go_highest_ordinal_first() {
    let sim = sim_with(&[]);
    let run = plugin_on(&sim, &["restart-sidecars", "-n", "pay", "--yes"]);
    assert_eq!(run.code, 0, "{run:#?}");
    assert_eq!(patched(&sim), ["pay/deployments/payments"]);
    assert!(deleted(&sim).is_empty());
    assert!(
        run.stdout.contains("pay/statefulset/ledger") && run.stdout.contains("--delete-pods"),
        "{}",
        run.stdout
    );
    sim.clear_requests();
    let run = plugin_on(
        &sim,
        &["restart-sidecars", "-n", "pay", "--yes", "--delete-pods"],
    );
    assert_eq!(run.code, 0, "{run:#?}");
    assert!(patched(&sim).is_empty(), "payments is up to date now");
    assert_eq!(deleted(&sim), ["pay/pods/ledger-1", "pay/pods/ledger-0"]);
    assert_all_run(&sim, "pay", "1.22.3");
    // ledger-0 was deleted only once ledger-1 was back on the new proxy: a
    // watch of pods saw it between the two deletions.
    let requests = sim.requests();
    let position = |path_end: &str, method: &str| {
        requests
            .iter()
            .position(|r| r.method == method && r.path.ends_with(path_end))
            .expect("the request")
    };
    assert!(position("/pods/ledger-1", "DELETE") < position("/pods/ledger-0", "DELETE"));
}

#[test]
fn pods_no_template_patch_reaches_are_reported_with_a_command_and_never_deleted() {
    // A long-running Job and the standalone debug pod, both injected by
    // 1-22-3, in a namespace then moved back to 1-21-2.
    let job = "
apiVersion: batch/v1
kind: Job
metadata:
  name: reindex
  namespace: batch
spec:
  template:
    metadata:
      labels: {app: reindex}
      annotations: {mesh-sim.io/run-duration: 24h}
    spec:
      restartPolicy: Never
      containers:
      - {name: reindex, image: ghcr.io/example/reindex:1.0.0}
";
    let batch_back = "
apiVersion: v1
kind: Namespace
metadata:
  name: batch
  labels:
    istio.io/rev: 1-21-2
";
    let sim = sim_with(&[job, batch_back]);
    let run = plugin_on(&sim, &["restart-sidecars", "-n", "batch", "--yes"]);
    assert_eq!(run.code, 0, "{run:#?}");
    assert!(writes(&sim).is_empty(), "{run:#?}");
    assert!(
        run.stdout
            .contains("kubectl delete pod debug-shell -n batch, then create it again"),
        "{}",
        run.stdout
    );
    assert!(
        run.stdout.contains("owned by Job reindex"),
        "{}",
        run.stdout
    );
    let run = plugin_on(
        &sim,
        &["restart-sidecars", "-n", "batch", "--dry-run", "-o", "json"],
    );
    let plan = parse_json(&run);
    let pods: Vec<&str> = plan["unreachable"]
        .as_array()
        .expect("unreachable")
        .iter()
        .filter_map(|u| u["pod"].as_str())
        .collect();
    assert_eq!(pods.len(), 2, "{plan:#}");
    assert!(pods.contains(&"debug-shell"));
}

#[test]
fn paused_and_scaled_to_zero_workloads_are_skipped_with_a_note() {
    let sim = sim_with(&[SHOP_TO_CANARY]);
    kubectl(
        &sim,
        &["rollout", "pause", "deployment/frontend", "-n", "shop"],
    );
    kubectl(
        &sim,
        &["scale", "deployment/catalog", "--replicas=0", "-n", "shop"],
    );
    sim.settle();
    sim.clear_requests();
    let run = plugin_on(
        &sim,
        &[
            "restart-sidecars",
            "-n",
            "shop",
            "--yes",
            "deployment/frontend",
            "deployment/catalog",
        ],
    );
    assert_eq!(run.code, 0, "{run:#?}");
    assert!(writes(&sim).is_empty(), "{run:#?}");
    assert!(
        run.stdout
            .contains("kubectl rollout resume deployment/frontend -n shop"),
        "{}",
        run.stdout
    );
    assert!(run.stdout.contains("scaled to zero"), "{}", run.stdout);
}

#[test]
fn an_explicit_target_that_does_not_exist_is_a_usage_error() {
    let sim = sim_with(&[]);
    let run = plugin_on(&sim, &["restart-sidecars", "-n", "shop", "deployment/nope"]);
    assert_eq!(run.code, 2, "{run:#?}");
    assert_eq!(
        run.stderr.trim(),
        "error: deployment/nope not found in namespace shop"
    );
    let run = plugin_on(&sim, &["restart-sidecars", "-n", "shop", "pod/x"]);
    assert_eq!(run.code, 2, "{run:#?}");
}

#[test]
fn a_target_revision_without_a_ready_istiod_is_refused_before_any_write() {
    let sim = sim_with(&[]);
    kubectl(
        &sim,
        &[
            "scale",
            "deployment/istiod-1-22-3",
            "--replicas=0",
            "-n",
            "istio-system",
        ],
    );
    sim.settle();
    sim.clear_requests();
    let run = plugin_on(&sim, &["restart-sidecars", "-n", "pay", "--yes"]);
    assert_eq!(run.code, 5, "{run:#?}");
    assert!(
        run.stderr.contains("revision 1-22-3 is not Ready"),
        "{}",
        run.stderr
    );
    // The injector was asked with a dry-run pod (refused), nothing else.
    assert!(
        writes(&sim)
            .iter()
            .all(|r| r.method == "POST" && r.is_dry_run() && r.path.ends_with("/pods")),
        "{:?}",
        writes(&sim)
    );
}

// ---------------------------------------------------------------- safety

#[test]
fn without_a_terminal_or_yes_it_refuses_and_writes_nothing() {
    let sim = sim_with(&[SHOP_TO_CANARY]);
    let run = plugin_on(&sim, &["restart-sidecars", "-n", "shop"]);
    assert_eq!(run.code, 5, "{run:#?}");
    assert!(
        run.stdout.contains("shop"),
        "the plan is shown first: {run:#?}"
    );
    assert!(run.stderr.contains("pass --yes"), "{}", run.stderr);
    assert!(writes(&sim).is_empty());
}

#[test]
fn a_client_dry_run_only_reads_and_a_server_dry_run_changes_nothing() {
    let sim = sim_with(&[SHOP_TO_CANARY]);
    let run = plugin_on(
        &sim,
        &["restart-sidecars", "-n", "shop", "--dry-run", "-o", "json"],
    );
    assert_eq!(run.code, 0, "{run:#?}");
    for request in sim.requests() {
        assert_eq!(request.method, "GET", "client dry run sent {request:?}");
    }
    let plan = parse_json(&run);
    assert_eq!(plan["kind"], "RestartPlan");
    assert_eq!(plan["actions"].as_array().map(Vec::len), Some(4));
    assert_eq!(plan["actions"][0]["method"]["type"], "templatePatch");
    assert!(
        plan["actions"][0]["method"]["patch"]["spec"]["template"]["metadata"]["annotations"]
            ["kubectl.kubernetes.io/restartedAt"]
            .is_string()
    );

    sim.clear_requests();
    let before = proxies(&sim, "shop");
    let run = plugin_on(
        &sim,
        &["restart-sidecars", "-n", "shop", "--dry-run=server"],
    );
    assert_eq!(run.code, 0, "{run:#?}");
    // The injector check first (one dry-run pod for the one target
    // revision), then the four patches, all with dryRun=All.
    let (gate, patches): (Vec<RequestRecord>, Vec<RequestRecord>) =
        writes(&sim).into_iter().partition(|r| r.method == "POST");
    assert_eq!(gate.len(), 1, "{gate:#?}");
    assert!(gate[0].is_dry_run() && gate[0].path == "/api/v1/namespaces/shop/pods");
    assert_eq!(patches.len(), 4, "{patches:#?}");
    for patch in &patches {
        assert_eq!(patch.method, "PATCH");
        assert!(patch.query.contains("dryRun=All"), "{patch:?}");
    }
    sim.settle();
    assert_eq!(
        proxies(&sim, "shop"),
        before,
        "a server dry run changed pods"
    );
    let frontend = sim
        .get(kinds::deployments(), "shop", "frontend")
        .expect("frontend");
    assert!(
        frontend["spec"]["template"]["metadata"]["annotations"]
            ["kubectl.kubernetes.io/restartedAt"]
            .is_null()
    );
    assert!(
        run.stdout.contains("dry run, nothing changed"),
        "{}",
        run.stdout
    );
}

#[test]
fn json_output_carries_the_per_workload_results() {
    let sim = sim_with(&[]);
    let run = plugin_on(
        &sim,
        &["restart-sidecars", "-n", "pay", "--yes", "-o", "json"],
    );
    assert_eq!(run.code, 0, "{run:#?}");
    let report = parse_json(&run);
    assert_eq!(report["kind"], "RestartResult");
    assert_eq!(report["results"][0]["name"], "payments");
    assert_eq!(report["results"][0]["outcome"], "restarted");
    assert_eq!(report["summary"]["restarted"], 1);
    assert_eq!(report["skipped"][0]["reason"], "needs-delete-pods");
    // The human text went to stderr.
    assert!(run.stderr.contains("NAMESPACE"), "{}", run.stderr);
}

#[test]
fn a_stuck_rollout_stops_the_run_and_the_rest_never_start() {
    let sim = sim_with(&[SHOP_TO_CANARY]);
    // New catalog pods will never become Ready; the deadline is short.
    kubectl(
        &sim,
        &[
            "patch",
            "deployment/catalog",
            "-n",
            "shop",
            "--type=merge",
            "-p",
            r#"{"metadata":{"annotations":{"mesh-sim.io/never-ready":"true"}},"spec":{"progressDeadlineSeconds":20}}"#,
        ],
    );
    sim.settle();
    sim.clear_requests();
    let run = plugin_on(
        &sim,
        &[
            "restart-sidecars",
            "-n",
            "shop",
            "--yes",
            "--concurrency",
            "1",
        ],
    );
    assert_eq!(run.code, 4, "{run:#?}");
    assert_eq!(patched(&sim), ["shop/deployments/catalog"], "{run:#?}");
    assert!(
        run.stdout.contains("ProgressDeadlineExceeded"),
        "{}",
        run.stdout
    );
    assert!(
        run.stdout.contains("1 failed, 3 never started"),
        "{}",
        run.stdout
    );
    assert!(
        run.stderr.contains("shop/deployment/catalog (failed)"),
        "{}",
        run.stderr
    );
}

#[test]
fn a_rollout_past_its_timeout_stops_the_run() {
    let sim = sim_with(&[SHOP_TO_CANARY]);
    kubectl(
        &sim,
        &[
            "patch",
            "deployment/catalog",
            "-n",
            "shop",
            "--type=merge",
            "-p",
            r#"{"metadata":{"annotations":{"mesh-sim.io/never-ready":"true"}}}"#,
        ],
    );
    sim.settle();
    sim.clear_requests();
    let run = plugin_on(
        &sim,
        &["restart-sidecars", "-n", "shop", "--yes", "--timeout", "1s"],
    );
    assert_eq!(run.code, 4, "{run:#?}");
    assert!(run.stdout.contains("timed-out"), "{}", run.stdout);
    assert_eq!(patched(&sim), ["shop/deployments/catalog"]);
}

/// `restart-sidecars -n shop --yes <extra>`, running, its output piped.
fn spawn_restart_of_shop(sim: &Sim, extra: &[&str]) -> std::process::Child {
    let args = [&["restart-sidecars", "-n", "shop", "--yes"][..], extra].concat();
    Env::new()
        .kubeconfig(sim.kubeconfig_path())
        .command(super::PLUGIN, &args)
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("the plugin starts")
}

/// Returns once the plugin has patched its first workload.
fn wait_for_the_first_restart(sim: &Sim) {
    let started = Instant::now();
    while patched(sim).is_empty() {
        assert!(
            started.elapsed() < Duration::from_secs(30),
            "no restart started"
        );
        std::thread::sleep(Duration::from_millis(5));
    }
}

#[test]
fn interrupting_finishes_the_restart_in_flight_and_a_rerun_does_only_the_rest() {
    let sim = sim_with(&[SHOP_TO_CANARY]);
    // Slow rollouts: a pod takes 2 simulated seconds, here 1 s of wall time.
    sim.set_clock_speed(2.0);
    let child = spawn_restart_of_shop(&sim, &["--concurrency", "1"]);
    wait_for_the_first_restart(&sim);
    let pid = child.id().to_string();
    let status = std::process::Command::new("kill")
        .args(["-INT", &pid])
        .status()
        .expect("kill runs");
    assert!(status.success());
    let output = child.wait_with_output().expect("the plugin ends");
    let stdout = String::from_utf8_lossy(&output.stdout);
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert_eq!(output.status.code(), Some(130), "{stdout}\n{stderr}");
    let first = patched(&sim);
    assert_eq!(first, ["shop/deployments/catalog"], "{stderr}");
    assert!(
        stdout.contains("1 restarted and verified, 3 never started"),
        "{stdout}"
    );
    assert!(stderr.contains("Interrupted"), "{stderr}");

    sim.set_clock_speed(50.0);
    sim.clear_requests();
    let rerun = plugin_on(&sim, &["restart-sidecars", "-n", "shop", "--yes"]);
    assert_eq!(rerun.code, 0, "{rerun:#?}");
    assert_eq!(
        patched(&sim),
        [
            "shop/deployments/frontend",
            "shop/deployments/recommendations",
            "shop/daemonsets/log-agent"
        ]
    );
    assert_all_run(&sim, "shop", "1.22.3");
}

#[test]
fn faults_on_writes_and_watches_still_restart_every_workload_exactly_once() {
    let sim = sim_with(&[SHOP_TO_CANARY]);
    sim.set_faults(
        Faults::new()
            .rule(
                FaultRule::on("patch", "deployments")
                    .name("catalog")
                    .conflict()
                    .next(1),
            )
            .rule(
                FaultRule::on("patch", "deployments")
                    .name("frontend")
                    .throttle(1)
                    .next(1),
            )
            .rule(FaultRule::on("patch", "daemonsets").error(500).next(1))
            .rule(
                FaultRule::on("watch", "deployments")
                    .cut_watch_after(3)
                    .next(2),
            )
            .rule(FaultRule::on("watch", "daemonsets").error(503).next(1))
            .rule(FaultRule::on("list", "pods").error(500).next(1)),
    );
    let run = plugin_on(
        &sim,
        &[
            "restart-sidecars",
            "-n",
            "shop",
            "--yes",
            "--concurrency",
            "2",
        ],
    );
    assert_eq!(run.code, 0, "{run:#?}");
    let mut once = patched(&sim);
    once.sort();
    let mut expected = SHOP_STALE.to_vec();
    expected.sort();
    assert_eq!(once, expected, "each workload patched exactly once");
    let refused: Vec<u16> = sim
        .requests()
        .iter()
        .filter(|r| r.method == "PATCH" && r.status >= 400)
        .map(|r| r.status)
        .collect();
    assert!(
        refused.contains(&409) && refused.contains(&429) && refused.contains(&500),
        "{refused:?}"
    );
    assert_all_run(&sim, "shop", "1.22.3");
}

#[test]
fn the_final_check_reports_pods_that_come_back_with_another_proxy() {
    let sim = sim_with(&[SHOP_TO_CANARY]);
    sim.set_clock_speed(5.0);
    let child = spawn_restart_of_shop(&sim, &["--concurrency", "1"]);
    wait_for_the_first_restart(&sim);
    // Mid-run, the canary's injector is reconfigured to another proxy tag:
    // the workloads restarted from now on come back with 1.22.4.
    sim.with_world(|world| {
        let name = "istio-sidecar-injector-1-22-3";
        let mut cm = (*world
            .store
            .get(kinds::configmaps(), "istio-system", name)
            .expect("the injector ConfigMap"))
        .clone();
        let values = cm["data"]["values"]
            .as_str()
            .expect("values")
            .replace("\"tag\": \"1.22.3\"", "\"tag\": \"1.22.4\"");
        cm["data"]["values"] = Value::String(values);
        world
            .update(kinds::configmaps(), cm, &WriteOptions::default())
            .expect("the ConfigMap is updated");
    });
    sim.set_clock_speed(50.0);
    let output = child.wait_with_output().expect("the plugin ends");
    let stdout = String::from_utf8_lossy(&output.stdout);
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert_eq!(output.status.code(), Some(4), "{stdout}\n{stderr}");
    assert!(stdout.contains("unverified"), "{stdout}");
    assert!(stdout.contains("1.22.4"), "{stdout}");
    assert!(
        stderr.contains("shop/deployment/recommendations (unverified)"),
        "{stderr}"
    );
}

#[test]
fn an_api_error_on_one_workload_does_not_stop_the_others() {
    let sim = sim_with(&[SHOP_TO_CANARY]);
    sim.set_faults(
        Faults::new().rule(
            FaultRule::on("patch", "deployments")
                .name("frontend")
                .error(422),
        ),
    );
    let run = plugin_on(
        &sim,
        &[
            "restart-sidecars",
            "-n",
            "shop",
            "--yes",
            "--concurrency",
            "1",
        ],
    );
    assert_eq!(run.code, 1, "{run:#?}");
    assert_eq!(
        patched(&sim),
        [
            "shop/deployments/catalog",
            "shop/deployments/recommendations",
            "shop/daemonsets/log-agent"
        ]
    );
    assert!(
        run.stdout
            .contains("3 restarted and verified, 1 not restarted (API error)"),
        "{}",
        run.stdout
    );
    assert!(
        run.stderr
            .contains("1 workload could not be restarted because of API errors"),
        "{}",
        run.stderr
    );
}

#[test]
fn no_wait_patches_and_returns_without_watching() {
    let sim = sim_with(&[SHOP_TO_CANARY]);
    let run = plugin_on(
        &sim,
        &[
            "restart-sidecars",
            "-n",
            "shop",
            "--yes",
            "--no-wait",
            "-o",
            "json",
        ],
    );
    assert_eq!(run.code, 0, "{run:#?}");
    assert_eq!(patched(&sim).len(), 4);
    assert!(
        !sim.requests().iter().any(|r| r.query.contains("watch=")),
        "--no-wait watched"
    );
    let report = parse_json(&run);
    assert_eq!(report["summary"]["patched"], 4, "{report:#}");
    sim.settle();
    assert_all_run(&sim, "shop", "1.22.3");
}

#[test]
fn a_second_interrupt_stops_waiting_and_says_so() {
    let sim = sim_with(&[SHOP_TO_CANARY]);
    // catalog's new pods never become Ready and its deadline is far away:
    // only Ctrl-C ends the wait.
    kubectl(
        &sim,
        &[
            "patch",
            "deployment/catalog",
            "-n",
            "shop",
            "--type=merge",
            "-p",
            r#"{"metadata":{"annotations":{"mesh-sim.io/never-ready":"true"}}}"#,
        ],
    );
    sim.settle();
    sim.clear_requests();
    let child = spawn_restart_of_shop(&sim, &["--timeout", "10m"]);
    wait_for_the_first_restart(&sim);
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
    assert!(stdout.contains("interrupted"), "{stdout}");
    assert!(stdout.contains("3 never started"), "{stdout}");
    assert!(stderr.contains("no longer waiting"), "{stderr}");
    assert_eq!(patched(&sim), ["shop/deployments/catalog"]);
}
