//! Gateway API gateways and waypoints end to end, through the real kubectl's
//! plugin discovery, against the canary scenario's Gateway `edge/public`
//! (class `istio`, on 1-21-2 through its label `istio.io/rev=prod-stable`,
//! Deployment and LoadBalancer Service `public-istio`) and its waypoint
//! `ambient-apps/waypoint` (on the default tag, 1-21-2), both rendered by
//! mesh-sim's istiod gateway controller.

use std::collections::BTreeMap;

use mesh_sim::resources::kinds;
use mesh_sim::world::WriteOptions;
use mesh_sim::{RequestRecord, Sim, SimOptions};
use serde_json::{Value, json};

use super::{Env, KUBECTL, Run, canary, parse_json, path_with, plugin_dir};

/// `kubectl mesh-upgrade <args>`, the plugin found on PATH by kubectl.
fn kubectl_plugin(sim: &Sim, args: &[&str]) -> Run {
    let dir = plugin_dir();
    let env = Env::new()
        .kubeconfig(sim.kubeconfig_path())
        .var("PATH", &path_with(dir.path()));
    let mut full = vec!["mesh-upgrade"];
    full.extend_from_slice(args);
    env.run(KUBECTL, &full)
}

/// Plain `kubectl <args>` against the sim.
fn kubectl(sim: &Sim, args: &[&str]) -> Run {
    Env::new()
        .kubeconfig(sim.kubeconfig_path())
        .run(KUBECTL, args)
}

fn entry<'a>(list: &'a Value, namespace: &str, name: &str) -> &'a Value {
    list.as_array()
        .expect("a list")
        .iter()
        .find(|e| e["namespace"] == namespace && e["name"] == name)
        .unwrap_or_else(|| panic!("{namespace}/{name} is listed: {list:#}"))
}

fn gateway(sim: &Sim) -> Value {
    sim.get(kinds::gateways(), "edge", "public")
        .expect("the Gateway")
}

fn image(sim: &Sim, namespace: &str, deployment: &str) -> String {
    sim.get(kinds::deployments(), namespace, deployment)
        .expect("the Deployment")["spec"]["template"]["spec"]["containers"][0]["image"]
        .as_str()
        .unwrap_or("")
        .to_string()
}

/// The images of the live pods labelled with the Gateway's name.
fn pod_images(sim: &Sim, namespace: &str, gateway: &str) -> Vec<(String, bool)> {
    sim.with_world(|w| {
        let mut pods: Vec<(String, bool)> = w
            .store
            .list(kinds::pods(), Some(namespace))
            .filter(|p| {
                p["metadata"]["labels"]["gateway.networking.k8s.io/gateway-name"] == gateway
            })
            .filter(|p| p["metadata"]["deletionTimestamp"].is_null())
            .map(|p| {
                let ready = p["status"]["conditions"]
                    .as_array()
                    .into_iter()
                    .flatten()
                    .any(|c| c["type"] == "Ready" && c["status"] == "True");
                (
                    p["spec"]["containers"][0]["image"]
                        .as_str()
                        .unwrap_or("")
                        .to_string(),
                    ready,
                )
            })
            .collect();
        pods.sort();
        pods
    })
}

/// The pods a Service's EndpointSlices list, with their readiness.
fn endpoints(sim: &Sim, namespace: &str, service: &str) -> BTreeMap<String, bool> {
    sim.with_world(|w| {
        w.store
            .list(kinds::endpointslices(), Some(namespace))
            .filter(|s| s["metadata"]["labels"]["kubernetes.io/service-name"] == service)
            .flat_map(|s| s["endpoints"].as_array().cloned().unwrap_or_default())
            .map(|e| {
                (
                    e["targetRef"]["name"].as_str().unwrap_or("?").to_string(),
                    e["conditions"]["ready"].as_bool().unwrap_or(true),
                )
            })
            .collect()
    })
}

fn writes(sim: &Sim) -> Vec<RequestRecord> {
    sim.requests()
        .into_iter()
        .filter(|r| r.is_write() && !r.is_dry_run())
        .collect()
}

#[test]
fn status_shows_a_stale_gateway_api_gateway_and_a_stale_waypoint() {
    let sim = canary();
    // Time stands still: istiod re-renders at once, the new pods never get
    // Ready, so the old proxies keep running.
    sim.pause_clock();
    for (namespace, name) in [("edge", "public"), ("ambient-apps", "waypoint")] {
        let run = kubectl(
            &sim,
            &[
                "label",
                "gateway",
                name,
                "-n",
                namespace,
                "istio.io/rev=1-22-3",
                "--overwrite",
            ],
        );
        assert_eq!(run.code, 0, "{run:#?}");
    }
    sim.with_world(mesh_sim::controllers::reconcile);
    sim.clear_requests();

    let run = kubectl_plugin(&sim, &["status", "-A", "-o", "json"]);
    assert_eq!(run.code, 0, "{run:#?}");
    let report = parse_json(&run);
    assert_eq!(report["gatewayApiInstalled"], true);
    let public = entry(&report["gatewayApi"], "edge", "public");
    assert_eq!(public["state"], "stale", "{public:#}");
    assert_eq!(public["revision"], "1-22-3");
    assert_eq!(public["revisionFrom"], "gateway");
    assert_eq!(public["expectedVersion"], "1.22.3");
    assert_eq!(public["deployment"]["renderedBy"], "1-22-3");
    assert_eq!(public["deployment"]["name"], "public-istio");
    assert_eq!(public["service"]["type"], "LoadBalancer");
    assert_eq!(
        public["proxies"],
        json!([{"version": "1.21.2", "pods": 1, "ready": 1},
               {"version": "1.22.3", "pods": 1, "ready": 0}])
    );
    assert_eq!(public["programmed"]["status"], "True");
    let waypoint = entry(&report["waypoints"], "ambient-apps", "waypoint");
    assert_eq!(waypoint["state"], "stale", "{waypoint:#}");
    assert_eq!(waypoint["kind"], "waypoint");
    assert_eq!(waypoint["usedBy"]["namespaces"], json!(["ambient-apps"]));
    assert_eq!(
        waypoint["usedBy"]["services"],
        json!(["ambient-apps/reviews"])
    );
    assert_eq!(waypoint["waypointFor"], "service");
    // What istiod renders for them is not a workload of its own.
    assert!(
        report["workloads"]
            .as_array()
            .unwrap()
            .iter()
            .all(|w| w["name"] != "public-istio" && w["name"] != "waypoint")
    );
    // One LIST per kind: Gateways and GatewayClasses once each.
    let lists = |segment: &str| {
        sim.requests()
            .iter()
            .filter(|r| {
                r.method == "GET" && r.path.ends_with(segment) && !r.query.contains("watch")
            })
            .count()
    };
    assert_eq!(lists("/gateways"), 1);
    assert_eq!(lists("/gatewayclasses"), 1);

    let table = kubectl_plugin(&sim, &["status", "-A"]);
    assert_eq!(table.code, 0, "{table:#?}");
    let rows = |section: &str| -> Vec<String> {
        table
            .stdout
            .split("\n\n")
            .find(|s| s.starts_with(section))
            .unwrap_or_else(|| panic!("no {section} section:\n{}", table.stdout))
            .lines()
            .skip(2)
            .map(str::to_string)
            .collect()
    };
    let gateway_rows = rows("GATEWAY API GATEWAYS");
    assert!(
        gateway_rows[0].starts_with("edge ")
            && gateway_rows[0].contains("1.21.2 ×1, 1.22.3 ×1")
            && gateway_rows[0].contains("stale"),
        "{gateway_rows:?}"
    );
    let waypoint_rows = rows("WAYPOINTS");
    assert!(
        waypoint_rows[0].starts_with("ambient-apps ") && waypoint_rows[0].contains("stale"),
        "{waypoint_rows:?}"
    );
    assert!(
        table
            .stdout
            .contains("kubectl -n edge rollout status deployment/public-istio"),
        "{}",
        table.stdout
    );
    let gate = kubectl_plugin(&sim, &["status", "-A", "--exit-code"]);
    assert_eq!(gate.code, 3, "{gate:#?}");
}

#[test]
fn a_cluster_without_the_gateway_api_says_so_and_fails_nothing() {
    let sim = Sim::start(
        SimOptions::default()
            .scenario("in-place")
            .without_gateway_api(),
    )
    .expect("the in-place scenario starts");
    let run = kubectl_plugin(&sim, &["status", "-A", "-o", "json"]);
    assert_eq!(run.code, 0, "{run:#?}");
    let report = parse_json(&run);
    assert_eq!(report["gatewayApiInstalled"], false);
    assert_eq!(report["gatewayApi"], json!([]));
    assert_eq!(report["waypoints"], json!([]));
    assert!(!run.stderr.contains("gateways"), "{run:#?}");
    let answered: Vec<u16> = sim
        .requests()
        .iter()
        .filter(|r| r.path.ends_with("/gateways"))
        .map(|r| r.status)
        .collect();
    assert_eq!(answered, vec![404], "one LIST, answered 404");

    let moved = kubectl_plugin(
        &sim,
        &[
            "gateway-switch",
            "-n",
            "default",
            "--gateway",
            "public",
            "--to",
            "1-22-3",
            "--yes",
        ],
    );
    assert_eq!(moved.code, 2, "{moved:#?}");
    assert!(
        moved.stderr.contains("does not serve the Gateway API"),
        "{moved:#?}"
    );
}

#[test]
fn moving_a_gateway_re_renders_it_on_the_new_revision_and_rollback_puts_it_back() {
    let sim = canary();
    let before = gateway(&sim);
    let args = [
        "gateway-switch",
        "-n",
        "edge",
        "--gateway",
        "public",
        "--to",
        "1-22-3",
    ];

    // Rehearsals first: a client dry run sends nothing, a server one sends
    // the patch with dryRun=All.
    let mut dry = args.to_vec();
    dry.push("--dry-run");
    let run = kubectl_plugin(&sim, &dry);
    assert_eq!(run.code, 0, "{run:#?}");
    assert!(
        run.stdout
            .contains("PATCH gateway/public (application/merge-patch+json)")
    );
    let mut server = args.to_vec();
    server.extend(["--dry-run=server", "-o", "json"]);
    let run = kubectl_plugin(&sim, &server);
    assert_eq!(run.code, 0, "{run:#?}");
    let document = parse_json(&run);
    assert_eq!(document["kind"], "GatewayMove");
    assert_eq!(document["outcome"]["result"], "server-dry-run");
    assert_eq!(document["plan"]["to"]["revision"], "1-22-3");
    assert!(writes(&sim).is_empty(), "{:#?}", writes(&sim));
    assert!(
        sim.requests()
            .iter()
            .any(|r| r.method == "PATCH" && r.path.ends_with("/gateways/public") && r.is_dry_run())
    );
    // No terminal and no --yes: refused before writing.
    let run = kubectl_plugin(&sim, &args);
    assert_eq!(run.code, 5, "{run:#?}");
    assert_eq!(gateway(&sim), before);

    let mut real = args.to_vec();
    real.push("--yes");
    let run = kubectl_plugin(&sim, &real);
    assert_eq!(run.code, 0, "{run:#?}");
    assert!(
        run.stdout
            .contains("Moved Gateway edge/public to 1-22-3 (istio.io/rev=1-22-3)"),
        "{run:#?}"
    );
    let moved = gateway(&sim);
    assert_eq!(moved["metadata"]["labels"]["istio.io/rev"], "1-22-3");
    assert_eq!(
        moved["metadata"]["annotations"]["mesh-upgrade.io/previous-revision"],
        r#"{"istio.io/rev":"prod-stable"}"#
    );
    assert_eq!(
        image(&sim, "edge", "public-istio"),
        "docker.io/istio/proxyv2:1.22.3"
    );
    assert_eq!(
        pod_images(&sim, "edge", "public"),
        vec![("docker.io/istio/proxyv2:1.22.3".to_string(), true)]
    );
    let patches: Vec<String> = writes(&sim)
        .iter()
        .map(|r| format!("{} {}", r.method, r.path))
        .collect();
    assert_eq!(
        patches,
        vec!["PATCH /apis/gateway.networking.k8s.io/v1/namespaces/edge/gateways/public"]
    );
    let status = parse_json(&kubectl_plugin(
        &sim,
        &["status", "-n", "edge", "-o", "json"],
    ));
    assert_eq!(
        entry(&status["gatewayApi"], "edge", "public")["state"],
        "up-to-date"
    );

    let run = kubectl_plugin(
        &sim,
        &[
            "gateway-switch",
            "-n",
            "edge",
            "--gateway",
            "public",
            "--rollback",
            "--yes",
        ],
    );
    assert_eq!(run.code, 0, "{run:#?}");
    let back = gateway(&sim);
    assert_eq!(
        back["metadata"]["labels"]["istio.io/rev"], "prod-stable",
        "{back:#}"
    );
    assert_eq!(
        back["metadata"]["annotations"]["mesh-upgrade.io/previous-revision"],
        r#"{"istio.io/rev":"1-22-3"}"#
    );
    assert_eq!(
        image(&sim, "edge", "public-istio"),
        "docker.io/istio/proxyv2:1.21.2"
    );
    assert_eq!(
        pod_images(&sim, "edge", "public"),
        vec![("docker.io/istio/proxyv2:1.21.2".to_string(), true)]
    );
}

#[test]
fn a_move_whose_new_pods_never_pull_is_put_back_exactly_and_exits_4() {
    let sim = canary();
    // The canary's injector names a registry that does not exist: its
    // gateway pods can never pull their image.
    sim.with_world(|w| {
        let mut cm = (*w
            .store
            .get(
                kinds::configmaps(),
                "istio-system",
                "istio-sidecar-injector-1-22-3",
            )
            .unwrap())
        .clone();
        let values = cm["data"]["values"]
            .as_str()
            .unwrap()
            .replace("docker.io/istio", "registry.invalid/istio");
        cm["data"]["values"] = json!(values);
        w.update(kinds::configmaps(), cm, &WriteOptions::default())
            .unwrap();
    });
    sim.settle();
    let before = gateway(&sim);
    let old_pods = pod_images(&sim, "edge", "public");

    let run = kubectl_plugin(
        &sim,
        &[
            "gateway-switch",
            "-n",
            "edge",
            "--gateway",
            "public",
            "--to",
            "1-22-3",
            "--yes",
            "--timeout",
            "8s",
        ],
    );
    assert_eq!(run.code, 4, "{run:#?}");
    assert!(
        run.stderr.contains("did not converge on 1-22-3 within 8s")
            && run.stderr.contains(
                "put it back to istio.io/rev=prod-stable: istiod 1-21-2 re-rendered it and it is verified"
            ),
        "{run:#?}"
    );
    let after = gateway(&sim);
    assert_eq!(after["metadata"]["labels"], before["metadata"]["labels"]);
    assert_eq!(
        after["metadata"]["annotations"],
        before["metadata"]["annotations"]
    );
    assert_eq!(
        image(&sim, "edge", "public-istio"),
        "docker.io/istio/proxyv2:1.21.2"
    );
    assert_eq!(pod_images(&sim, "edge", "public"), old_pods);
    let served = endpoints(&sim, "edge", "public-istio");
    assert!(
        !served.is_empty() && served.values().all(|ready| *ready),
        "{served:?}"
    );
    // Two writes: the move and the undo.
    assert_eq!(writes(&sim).len(), 2, "{:#?}", writes(&sim));
}

#[test]
fn the_selector_of_a_service_istiod_renders_is_not_flipped() {
    let sim = canary();
    let run = kubectl_plugin(
        &sim,
        &[
            "gateway-switch",
            "-n",
            "edge",
            "--service",
            "public-istio",
            "--selector-key",
            "gateway.networking.k8s.io/gateway-name",
            "--to",
            "other",
            "--yes",
            "--force",
        ],
    );
    assert_eq!(run.code, 5, "{run:#?}");
    assert!(
        run.stderr.contains(
            "istiod renders Service edge/public-istio for Gateway public (label gateway.istio.io/managed=istio.io-gateway-controller, owner Gateway public, field manager istio.io/gateway-controller) and would put its selector back; move the Gateway instead: kubectl mesh-upgrade gateway-switch -n edge --gateway public --to other"
        ),
        "{run:#?}"
    );
    assert!(writes(&sim).is_empty());
}

/// Two Gateways on two revisions, each with a ClusterIP Service of its own,
/// behind one LoadBalancer Service the platform team manages: blue/green
/// with Gateway API gateways, switched through the selector.
const BLUE_GREEN: &str = r#"
apiVersion: v1
kind: Namespace
metadata:
  name: bg
---
apiVersion: gateway.networking.k8s.io/v1
kind: Gateway
metadata:
  name: blue
  namespace: bg
  labels: {istio.io/rev: 1-21-2, app: edge-gateway, version: 1-21-2}
  annotations: {networking.istio.io/service-type: ClusterIP}
spec:
  gatewayClassName: istio
  listeners: [{name: http, port: 80, protocol: HTTP}]
---
apiVersion: gateway.networking.k8s.io/v1
kind: Gateway
metadata:
  name: green
  namespace: bg
  labels: {istio.io/rev: 1-22-3, app: edge-gateway, version: 1-22-3}
  annotations: {networking.istio.io/service-type: ClusterIP}
spec:
  gatewayClassName: istio
  listeners: [{name: http, port: 80, protocol: HTTP}]
---
apiVersion: v1
kind: Service
metadata:
  name: edge
  namespace: bg
spec:
  type: LoadBalancer
  selector: {app: edge-gateway, version: 1-21-2}
  ports: [{name: http, port: 80, targetPort: 80}]
"#;

#[test]
fn blue_green_across_two_gateways_works_through_the_selector_mode() {
    let sim = canary();
    sim.apply_yaml(BLUE_GREEN)
        .expect("the blue/green gateways load");
    assert_eq!(
        image(&sim, "bg", "green-istio"),
        "docker.io/istio/proxyv2:1.22.3"
    );

    let status = parse_json(&kubectl_plugin(&sim, &["status", "-n", "bg", "-o", "json"]));
    let service = entry(&status["gatewayServices"], "bg", "edge");
    assert_eq!(
        service["candidates"][0]["selectorValue"], "1-22-3",
        "{service:#}"
    );
    assert_eq!(service["candidates"][0]["ready"], true, "{service:#}");

    let run = kubectl_plugin(
        &sim,
        &["gateway-switch", "-n", "bg", "--to", "1-22-3", "--yes"],
    );
    assert_eq!(run.code, 0, "{run:#?}");
    let served = endpoints(&sim, "bg", "edge");
    assert!(
        !served.is_empty()
            && served
                .iter()
                .all(|(pod, ready)| pod.starts_with("green-istio-") && *ready),
        "{served:?}"
    );
    let run = kubectl_plugin(
        &sim,
        &[
            "gateway-switch",
            "-n",
            "bg",
            "--service",
            "edge",
            "--rollback",
            "--yes",
        ],
    );
    assert_eq!(run.code, 0, "{run:#?}");
    let served = endpoints(&sim, "bg", "edge");
    assert!(
        !served.is_empty()
            && served
                .iter()
                .all(|(pod, ready)| pod.starts_with("blue-istio-") && *ready),
        "{served:?}"
    );
}
