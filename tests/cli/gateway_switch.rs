//! `gateway-switch` end to end: the built binary against the canary scenario.
//!
//! The canary scenario's `istio-gateways` namespace (seed 001): gateway
//! Deployments `istio-ingressgateway-1-21-2` and `istio-ingressgateway-1-22-3`
//! (two Ready replicas each, labels `istio=ingressgateway`, `version=<rev>`,
//! each injected by its own revision, ports 8080, 8443, 15021, 15443, 31400),
//! and the LoadBalancer Service `istio-ingressgateway` selecting
//! `istio=ingressgateway, version=1-21-2`. Every precheck failure is made by
//! editing the cluster the way a person or a controller would, through the
//! sim's store; the controllers then roll the gateways as a cluster would.

use std::collections::BTreeMap;
use std::io::Read;
use std::process::Stdio;
use std::time::{Duration, Instant};

use mesh_sim::resources::kinds;
use mesh_sim::world::WriteOptions;
use mesh_sim::{FaultRule, Faults, RequestRecord, Sim};
use serde_json::{Value, json};

use super::{Env, PLUGIN, Run, canary, parse_json, plugin_on};

const NS: &str = "istio-gateways";
const SVC: &str = "istio-ingressgateway";
const BLUE: &str = "istio-ingressgateway-1-21-2";
const GREEN: &str = "istio-ingressgateway-1-22-3";
const RECORD: &str = "mesh-upgrade.io/previous-selector";
const SWITCHED_AT: &str = "mesh-upgrade.io/switched-at";

fn switch(sim: &Sim, extra: &[&str]) -> Run {
    let mut args = vec!["gateway-switch", "-n", NS];
    args.extend_from_slice(extra);
    plugin_on(sim, &args)
}

fn service(sim: &Sim) -> Value {
    sim.get(kinds::services(), NS, SVC)
        .expect("the LoadBalancer Service exists")
}

fn selector(sim: &Sim) -> BTreeMap<String, String> {
    serde_json::from_value(service(sim)["spec"]["selector"].clone()).unwrap_or_default()
}

fn annotations(sim: &Sim) -> BTreeMap<String, String> {
    serde_json::from_value(service(sim)["metadata"]["annotations"].clone()).unwrap_or_default()
}

fn map(pairs: &[(&str, &str)]) -> BTreeMap<String, String> {
    pairs
        .iter()
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .collect()
}

fn blue_selector() -> BTreeMap<String, String> {
    map(&[("istio", "ingressgateway"), ("version", "1-21-2")])
}

/// The pods the Service's EndpointSlices list, with their readiness.
fn endpoint_pods(sim: &Sim) -> BTreeMap<String, bool> {
    sim.with_world(|world| {
        world
            .store
            .list(kinds::endpointslices(), Some(NS))
            .filter(|s| s["metadata"]["labels"]["kubernetes.io/service-name"] == SVC)
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

/// Only Ready pods of `deployment` back the Service (at least one).
fn assert_served_only_by(sim: &Sim, deployment: &str) {
    let pods = endpoint_pods(sim);
    assert!(!pods.is_empty(), "no endpoints at all");
    for (pod, ready) in &pods {
        assert!(
            pod.starts_with(deployment) && *ready,
            "{pod} (ready: {ready}) backs the Service, expected only Ready pods of {deployment}: {pods:?}"
        );
    }
}

fn writes(sim: &Sim) -> Vec<RequestRecord> {
    sim.requests()
        .into_iter()
        .filter(|r| r.is_write())
        .collect()
}

/// Change an object directly in the store, as another client would, and
/// let the controllers react.
fn edit(
    sim: &Sim,
    resource: &'static mesh_sim::resources::Resource,
    name: &str,
    change: impl FnOnce(&mut Value),
) {
    sim.with_world(|world| {
        let mut object = (*world
            .store
            .get(resource, NS, name)
            .unwrap_or_else(|| panic!("{name} exists")))
        .clone();
        change(&mut object);
        world
            .update(resource, object, &WriteOptions::default())
            .expect("the edit is accepted");
    });
}

fn green_pods(sim: &Sim) -> Vec<String> {
    sim.with_world(|world| {
        world
            .store
            .list(kinds::pods(), Some(NS))
            .filter_map(|p| p["metadata"]["name"].as_str().map(str::to_string))
            .filter(|name| name.starts_with(GREEN))
            .collect()
    })
}

/// Make pods fail their readiness probe from now on (the sim's kubelet
/// honours `mesh-sim.io/never-ready` on a running pod).
fn hold_readiness(sim: &Sim, pods: &[String]) {
    for pod in pods {
        edit(sim, kinds::pods(), pod, |p| {
            p["metadata"]["annotations"]["mesh-sim.io/never-ready"] = json!("true");
        });
    }
}

#[test]
fn a_clean_switch_leaves_only_the_new_pods_behind_the_load_balancer() {
    let sim = canary();
    assert_served_only_by(&sim, BLUE);
    sim.clear_requests();
    let run = switch(&sim, &["--service", SVC, "--to", "1-22-3", "--yes"]);
    assert_eq!(run.code, 0, "{run:#?}");
    assert_eq!(
        selector(&sim),
        map(&[("istio", "ingressgateway"), ("version", "1-22-3")])
    );
    let recorded = annotations(&sim);
    assert_eq!(
        recorded[RECORD],
        r#"{"istio":"ingressgateway","version":"1-21-2"}"#
    );
    assert!(recorded.contains_key(SWITCHED_AT), "{recorded:?}");
    assert_served_only_by(&sim, GREEN);

    let writes = writes(&sim);
    assert_eq!(writes.len(), 1, "one patch, nothing else: {writes:#?}");
    let patch = &writes[0];
    assert_eq!(patch.method, "PATCH");
    assert_eq!(
        patch.path,
        "/api/v1/namespaces/istio-gateways/services/istio-ingressgateway"
    );
    assert_eq!(patch.content_type, "application/merge-patch+json");
    let body: Value = serde_json::from_str(&patch.body).unwrap();
    assert_eq!(body["spec"], json!({"selector": {"version": "1-22-3"}}));
    assert!(body["metadata"]["resourceVersion"].is_string(), "{body}");
    assert!(
        run.stdout.contains(
            "Switched Service istio-gateways/istio-ingressgateway to istio=ingressgateway,version=1-22-3: its EndpointSlices list the 2 Ready pods of istio-ingressgateway-1-22-3 and no other pod."
        ),
        "{run:#?}"
    );
}

#[test]
fn a_target_without_pods_is_refused_and_nothing_is_written() {
    let sim = canary();
    sim.clear_requests();
    let run = switch(
        &sim,
        &["--service", SVC, "--to", "1-23-0", "--yes", "--force"],
    );
    assert_eq!(run.code, 5, "{run:#?}");
    assert!(
        run.stderr.contains(
            "refusing to switch Service istio-gateways/istio-ingressgateway to istio=ingressgateway,version=1-23-0: pods-exist: no running pod matches"
        ),
        "{run:#?}"
    );
    assert!(
        run.stderr
            .contains("gateway Deployments here have version=1-21-2, 1-22-3"),
        "{run:#?}"
    );
    assert!(writes(&sim).is_empty());
    assert_eq!(selector(&sim), blue_selector());
}

#[test]
fn unready_target_pods_are_refused_and_none_ready_even_with_force() {
    let sim = canary();
    let green = green_pods(&sim);
    hold_readiness(&sim, &green[..1]);
    sim.settle();
    let run = switch(&sim, &["--to", "1-22-3", "--yes"]);
    assert_eq!(run.code, 5, "{run:#?}");
    assert!(
        run.stderr
            .contains("pods-ready: 1 of 2 pods Ready (not Ready: "),
        "{run:#?}"
    );

    hold_readiness(&sim, &green[1..]);
    sim.settle();
    sim.clear_requests();
    let run = switch(&sim, &["--to", "1-22-3", "--yes", "--force"]);
    assert_eq!(run.code, 5, "{run:#?}");
    assert!(run.stderr.contains("pods-ready: no Ready pods"), "{run:#?}");
    assert!(writes(&sim).is_empty());
    assert_eq!(selector(&sim), blue_selector());
}

#[test]
fn a_gateway_in_the_middle_of_a_rollout_is_refused() {
    let sim = canary();
    // A paused rollout: the template changed, no pod was replaced yet.
    edit(&sim, kinds::deployments(), GREEN, |d| {
        d["spec"]["paused"] = json!(true);
        d["spec"]["template"]["metadata"]["annotations"]["example.com/config"] = json!("v2");
    });
    sim.settle();
    let run = switch(&sim, &["--to", "1-22-3", "--yes"]);
    assert_eq!(run.code, 5, "{run:#?}");
    assert!(
        run.stderr.contains(
            "rolled-out: istio-ingressgateway-1-22-3: rollout in progress (0 of 2 replicas updated)"
        ),
        "{run:#?}"
    );
    assert!(
        run.stderr.contains("(--force overrides rolled-out)"),
        "only the rollout is in the way: {run:#?}"
    );
    assert_eq!(selector(&sim), blue_selector());
}

#[test]
fn a_gateway_on_another_revisions_proxy_is_refused() {
    let sim = canary();
    // The green gateway keeps its version label but is injected by 1-21-2.
    edit(&sim, kinds::deployments(), GREEN, |d| {
        d["spec"]["template"]["metadata"]["labels"]["istio.io/rev"] = json!("1-21-2");
    });
    assert!(sim.settle(), "the green gateway rolls to the 1-21-2 proxy");
    let run = switch(&sim, &["--to", "1-22-3", "--yes"]);
    assert_eq!(run.code, 5, "{run:#?}");
    assert!(
        run.stderr
            .contains("proxy-revision: not on revision 1-22-3: istio-ingressgateway-1-22-3-"),
        "{run:#?}"
    );
    assert!(
        run.stderr.contains("runs revision 1-21-2's proxy"),
        "{run:#?}"
    );
    assert_eq!(selector(&sim), blue_selector());
}

#[test]
fn a_gateway_missing_a_target_port_is_refused() {
    let sim = canary();
    // The green gateway drops its `tls` port (15443).
    edit(&sim, kinds::deployments(), GREEN, |d| {
        let ports = d["spec"]["template"]["spec"]["containers"][0]["ports"]
            .as_array_mut()
            .expect("ports");
        ports.retain(|p| p["containerPort"] != 15443);
    });
    assert!(sim.settle());
    let run = switch(&sim, &["--to", "1-22-3", "--yes"]);
    assert_eq!(run.code, 5, "{run:#?}");
    assert!(
        run.stderr.contains(
            "target-ports: istio-ingressgateway-1-22-3 does not expose target port(s) 15443"
        ),
        "{run:#?}"
    );
    assert_eq!(selector(&sim), blue_selector());
}

/// `gateway-switch --to 1-22-3 --yes --timeout <timeout>`, running.
fn spawn_switch(sim: &Sim, timeout: &str) -> std::process::Child {
    Env::new()
        .kubeconfig(sim.kubeconfig_path())
        .command(
            PLUGIN,
            &[
                "gateway-switch",
                "-n",
                NS,
                "--service",
                SVC,
                "--to",
                "1-22-3",
                "--yes",
                "--timeout",
                timeout,
            ],
        )
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("the plugin starts")
}

/// The sim answers the next PATCH of the Service two seconds late.
fn hold_the_switch_for_two_seconds(sim: &Sim) {
    sim.set_faults(
        Faults::new().rule(
            FaultRule::on("patch", "services")
                .name(SVC)
                .latency(Duration::from_secs(2))
                .next(1),
        ),
    );
}

/// Returns once the plugin has read the Service it is about to patch (its
/// last read before the PATCH: every precheck has been made).
fn wait_until_the_service_is_read(sim: &Sim) {
    let service_path = format!("/api/v1/namespaces/{NS}/services/{SVC}");
    let started = Instant::now();
    while !sim
        .requests()
        .iter()
        .any(|r| r.method == "GET" && r.path == service_path)
    {
        assert!(
            started.elapsed() < Duration::from_secs(30),
            "the plugin never read the Service"
        );
        std::thread::sleep(Duration::from_millis(2));
    }
}

/// Run `gateway-switch --to 1-22-3 --yes` with its first PATCH of the
/// Service held for two seconds by the sim (a latency fault), and call
/// `meanwhile` as soon as the plugin has read the Service it is about to
/// patch (that GET is its last read before the PATCH). Whatever `meanwhile`
/// changes is therefore in place before the switch lands and after every
/// precheck was made: deterministic, with two seconds to spare.
fn switch_with_a_change_before_it_lands(sim: &Sim, timeout: &str, meanwhile: impl FnOnce()) -> Run {
    hold_the_switch_for_two_seconds(sim);
    sim.clear_requests();
    let mut child = spawn_switch(sim, timeout);
    wait_until_the_service_is_read(sim);
    meanwhile();
    let status = child.wait().expect("the plugin ends");
    let mut stdout = String::new();
    let mut stderr = String::new();
    child
        .stdout
        .take()
        .unwrap()
        .read_to_string(&mut stdout)
        .unwrap();
    child
        .stderr
        .take()
        .unwrap()
        .read_to_string(&mut stderr)
        .unwrap();
    Run {
        code: status.code().unwrap_or(-1),
        stdout,
        stderr,
    }
}

/// Endpoints that never converge: every precheck passes on the state the
/// plugin reads, then the green pods start failing readiness before the
/// switch lands (as a gateway that cannot take production traffic would).
/// The EndpointSlices never list them Ready, and the plugin must switch
/// back and verify the blue pods serve again.
#[test]
fn endpoints_that_never_converge_are_switched_back_automatically() {
    let sim = canary();
    let green = green_pods(&sim);
    let run = switch_with_a_change_before_it_lands(&sim, "4s", || hold_readiness(&sim, &green));
    assert_eq!(run.code, 4, "{run:#?}");
    assert!(
        run.stdout.contains("pods-ready          ok"),
        "the prechecks passed on what was read: {run:#?}"
    );
    assert!(
        run.stderr.contains(
            "error: the EndpointSlices of Service istio-gateways/istio-ingressgateway did not list only Ready pods matching istio=ingressgateway,version=1-22-3 within 4s (last seen: 0 Ready; 2 not Ready ("
        ),
        "{run:#?}"
    );
    assert!(
        run.stderr.contains(
            "switched back to istio=ingressgateway,version=1-21-2, and its endpoints are verified (2 Ready)"
        ),
        "{run:#?}"
    );
    assert_eq!(selector(&sim), blue_selector());
    assert!(
        !annotations(&sim).contains_key(RECORD) && !annotations(&sim).contains_key(SWITCHED_AT),
        "the switch-back leaves the Service as it was: {:?}",
        annotations(&sim)
    );
    assert_served_only_by(&sim, BLUE);
    let patches: Vec<RequestRecord> = writes(&sim);
    assert_eq!(
        patches.len(),
        2,
        "the switch and the switch-back: {patches:#?}"
    );
    let undo: Value = serde_json::from_str(&patches[1].body).unwrap();
    assert_eq!(undo["spec"], json!({"selector": {"version": "1-21-2"}}));
}

/// A switch that cannot be verified is not left in place: here the
/// EndpointSlices become unreadable between the plan and the switch.
#[test]
fn a_switch_that_cannot_be_verified_is_switched_back() {
    let sim = canary();
    let run = switch_with_a_change_before_it_lands(&sim, "10s", || {
        sim.set_faults(
            Faults::new()
                .rule(FaultRule::on("list", "endpointslices").error(403))
                .rule(FaultRule::on("watch", "endpointslices").error(403)),
        );
    });
    assert_eq!(run.code, 4, "{run:#?}");
    assert!(
        run.stderr.contains(
            "error: the switch of Service istio-gateways/istio-ingressgateway to istio=ingressgateway,version=1-22-3 could not be verified (forbidden: cannot list endpointslices in namespace istio-gateways"
        ),
        "{run:#?}"
    );
    assert!(
        run.stderr.contains(
            "; switched back to istio=ingressgateway,version=1-21-2, but its endpoints could not be verified either: check them"
        ),
        "{run:#?}"
    );
    assert_eq!(selector(&sim), blue_selector());
    assert!(!annotations(&sim).contains_key(RECORD));
}

#[test]
fn rollback_after_a_switch_restores_the_exact_previous_selector() {
    let sim = canary();
    // Extra selector keys must survive both ways.
    edit(&sim, kinds::services(), SVC, |s| {
        s["spec"]["selector"]["app"] = json!("istio-ingressgateway");
    });
    let before = selector(&sim);
    let run = switch(&sim, &["--service", SVC, "--to", "1-22-3", "--yes"]);
    assert_eq!(run.code, 0, "{run:#?}");
    assert_eq!(
        selector(&sim),
        map(&[
            ("app", "istio-ingressgateway"),
            ("istio", "ingressgateway"),
            ("version", "1-22-3")
        ]),
        "extra selector keys are kept"
    );
    assert_served_only_by(&sim, GREEN);

    let run = switch(&sim, &["--service", SVC, "--rollback", "--yes"]);
    assert_eq!(run.code, 0, "{run:#?}");
    assert_eq!(selector(&sim), before);
    assert_served_only_by(&sim, BLUE);
    assert_eq!(
        annotations(&sim)[RECORD],
        r#"{"app":"istio-ingressgateway","istio":"ingressgateway","version":"1-22-3"}"#,
        "the rollback records what it replaced"
    );
    assert!(
        run.stdout
            .contains("Rolled back Service istio-gateways/istio-ingressgateway"),
        "{run:#?}"
    );
}

#[test]
fn rollback_without_a_recorded_switch_is_refused() {
    let sim = canary();
    let run = switch(&sim, &["--rollback", "--yes"]);
    assert_eq!(run.code, 5, "{run:#?}");
    assert!(
        run.stderr
            .contains("the Service has no mesh-upgrade.io/previous-selector annotation"),
        "{run:#?}"
    );
}

#[test]
fn the_only_gateway_service_is_found_without_service() {
    let sim = canary();
    let run = switch(&sim, &["--to", "1-22-3", "--dry-run"]);
    assert_eq!(run.code, 0, "{run:#?}");
    assert!(
        run.stdout
            .starts_with("Service istio-gateways/istio-ingressgateway (LoadBalancer)\n"),
        "{run:#?}"
    );
}

#[test]
fn two_gateway_services_are_listed_and_service_is_asked_for() {
    let sim = canary();
    sim.apply_yaml(
        r#"
apiVersion: v1
kind: Service
metadata:
  name: istio-ingressgateway-internal
  namespace: istio-gateways
spec:
  type: NodePort
  selector:
    istio: ingressgateway
    version: 1-21-2
  ports:
  - name: http2
    port: 80
    targetPort: 8080
"#,
    )
    .expect("a second gateway Service");
    sim.clear_requests();
    let run = switch(&sim, &["--to", "1-22-3", "--yes"]);
    assert_eq!(run.code, 2, "{run:#?}");
    assert!(
        run.stderr.contains(
            "2 Services in namespace istio-gateways select gateway pods; pass --service NAME with one of: istio-ingressgateway (LoadBalancer, selector istio=ingressgateway,version=1-21-2); istio-ingressgateway-internal (NodePort, selector istio=ingressgateway,version=1-21-2)"
        ),
        "{run:#?}"
    );
    assert!(writes(&sim).is_empty());
    let run = switch(
        &sim,
        &[
            "--service",
            "istio-ingressgateway-internal",
            "--to",
            "1-22-3",
            "--yes",
        ],
    );
    assert_eq!(run.code, 0, "{run:#?}");
    assert_eq!(
        selector(&sim),
        blue_selector(),
        "the other Service is untouched"
    );
}

#[test]
fn dry_runs_write_nothing() {
    let sim = canary();
    sim.clear_requests();
    let run = switch(&sim, &["--to", "1-22-3", "--dry-run", "-o", "json"]);
    assert_eq!(run.code, 0, "{run:#?}");
    assert!(writes(&sim).is_empty(), "client dry run sends no write");
    let document = parse_json(&run);
    assert_eq!(document["kind"], "GatewaySwitch");
    assert_eq!(document["outcome"]["result"], "dry-run");
    assert_eq!(document["plan"]["verdict"], "proceed");
    assert_eq!(
        document["plan"]["action"]["patch"]["spec"],
        json!({"selector": {"version": "1-22-3"}})
    );
    assert!(
        run.stderr.contains("PRECHECK"),
        "the plan text goes to stderr beside a document: {run:#?}"
    );

    sim.clear_requests();
    let run = switch(&sim, &["--to", "1-22-3", "--dry-run=server"]);
    assert_eq!(run.code, 0, "{run:#?}");
    let writes = writes(&sim);
    assert_eq!(writes.len(), 1, "{writes:#?}");
    assert!(writes[0].is_dry_run(), "{:#?}", writes[0]);
    assert_eq!(selector(&sim), blue_selector());
    assert!(!annotations(&sim).contains_key(RECORD));
    assert!(run.stdout.contains("Server dry run"), "{run:#?}");
}

#[test]
fn without_a_terminal_or_yes_it_refuses_before_writing() {
    let sim = canary();
    sim.clear_requests();
    let run = switch(&sim, &["--to", "1-22-3"]);
    assert_eq!(run.code, 5, "{run:#?}");
    assert!(run.stderr.contains("pass --yes"), "{run:#?}");
    assert!(writes(&sim).is_empty());
}

#[test]
fn a_service_changed_after_it_was_read_is_not_overwritten() {
    let sim = canary();
    sim.set_faults(Faults::new().rule(FaultRule::on("patch", "services").conflict().next(1)));
    let run = switch(&sim, &["--to", "1-22-3", "--yes"]);
    assert_eq!(run.code, 1, "{run:#?}");
    assert!(
        run.stderr.contains(
            "Service istio-gateways/istio-ingressgateway changed after it was read, so nothing was switched"
        ),
        "{run:#?}"
    );
    assert_eq!(selector(&sim), blue_selector());
}

/// Ctrl-C while the switch is being verified: the Service keeps the new
/// selector (the switch itself was one write, and it landed), the exit is
/// 130, and the message gives the command that goes back, which works.
#[test]
fn an_interrupt_while_verifying_leaves_the_switch_and_says_how_to_go_back() {
    use std::io::BufRead;

    let sim = canary();
    let green = green_pods(&sim);
    // Prechecks pass on the Ready green pods; then, while the sim holds the
    // PATCH for two seconds, they stop being Ready, so the verification has
    // to wait (up to the two minutes asked for).
    hold_the_switch_for_two_seconds(&sim);
    sim.clear_requests();
    let mut child = spawn_switch(&sim, "2m");
    wait_until_the_service_is_read(&sim);
    hold_readiness(&sim, &green);

    let (lines, seen) = std::sync::mpsc::channel();
    let stderr = child.stderr.take().unwrap();
    let reader = std::thread::spawn(move || {
        let mut all = String::new();
        for line in std::io::BufReader::new(stderr)
            .lines()
            .map_while(Result::ok)
        {
            all.push_str(&line);
            all.push('\n');
            let _ = lines.send(line);
        }
        all
    });
    loop {
        let line = seen
            .recv_timeout(Duration::from_secs(30))
            .expect("the plugin says it is verifying the switch");
        if line.starts_with("Patched Service") {
            break;
        }
    }
    // The verification is under way (it cannot end for two minutes).
    std::thread::sleep(Duration::from_millis(300));
    let pid = child.id().to_string();
    let kill = std::process::Command::new("kill")
        .args(["-INT", &pid])
        .status()
        .expect("kill runs");
    assert!(kill.success());
    let status = child.wait().expect("the plugin ends");
    let stderr = reader.join().expect("stderr is read");
    let mut stdout = String::new();
    child
        .stdout
        .take()
        .unwrap()
        .read_to_string(&mut stdout)
        .unwrap();
    assert_eq!(status.code(), Some(130), "{stdout}\n{stderr}");
    assert!(
        stderr.contains(
            "interrupted while verifying: Service istio-gateways/istio-ingressgateway selects istio=ingressgateway,version=1-22-3 now"
        ),
        "{stderr}"
    );
    let go_back = "kubectl mesh-upgrade gateway-switch -n istio-gateways --service istio-ingressgateway --rollback";
    assert!(stderr.contains(go_back), "{stderr}");
    assert_eq!(selector(&sim)["version"], "1-22-3");
    assert!(
        annotations(&sim).contains_key(RECORD),
        "the rollback record is written"
    );
    assert_eq!(
        writes(&sim).len(),
        1,
        "only the switch: {:#?}",
        writes(&sim)
    );

    // The advertised way back, once the blue gateway is what serves again.
    let run = switch(&sim, &["--service", SVC, "--rollback", "--yes"]);
    assert_eq!(run.code, 0, "{run:#?}");
    assert_eq!(selector(&sim), blue_selector());
    assert_served_only_by(&sim, BLUE);
}

#[test]
fn an_interrupt_while_the_switch_is_being_written_still_says_how_to_go_back() {
    use std::io::Read as _;

    let sim = canary();
    // The PATCH is held two seconds; the Ctrl-C lands while it is in flight,
    // before any verification has begun.
    hold_the_switch_for_two_seconds(&sim);
    sim.clear_requests();
    let mut child = spawn_switch(&sim, "2m");
    wait_until_the_service_is_read(&sim);
    std::thread::sleep(Duration::from_millis(500));
    let pid = child.id().to_string();
    let kill = std::process::Command::new("kill")
        .args(["-INT", &pid])
        .status()
        .expect("kill runs");
    assert!(kill.success());
    let status = child.wait().expect("the plugin ends");
    let mut stderr = String::new();
    child
        .stderr
        .take()
        .unwrap()
        .read_to_string(&mut stderr)
        .unwrap();
    // Not the default death by SIGINT: the handler was there before the write.
    assert_eq!(status.code(), Some(130), "{stderr}");
    assert_eq!(selector(&sim)["version"], "1-22-3", "the switch landed");
    let go_back = "kubectl mesh-upgrade gateway-switch -n istio-gateways --service istio-ingressgateway --rollback";
    assert!(stderr.contains(go_back), "{stderr}");
    assert_eq!(
        writes(&sim).len(),
        1,
        "only the switch: {:#?}",
        writes(&sim)
    );
}
