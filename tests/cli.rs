//! End to end: the built `kubectl-mesh_upgrade` binary, and the real
//! `kubectl` discovering it as a plugin, against the simulated cluster.
//!
//! Every run gets a scrubbed environment: no inherited variables, `HOME` in a
//! temporary directory and `KUBECONFIG` set explicitly (or deliberately
//! absent), so a developer's own kubeconfig can never leak into a test.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::Duration;

use mesh_sim::generate::{GenerateOptions, generate};
use mesh_sim::{Role, Sim, SimOptions};
use serde_json::Value;

#[path = "cli/ambient.rs"]
mod ambient;
#[path = "cli/analyzer_parity.rs"]
mod analyzer_parity;
#[path = "cli/cluster_suite.rs"]
mod cluster_suite;
#[path = "cli/completion.rs"]
mod completion;
#[path = "cli/gateway_api.rs"]
mod gateway_api;
#[path = "cli/gateway_switch.rs"]
mod gateway_switch;
#[path = "cli/injection.rs"]
mod injection;
#[path = "cli/owners.rs"]
mod owners;
#[path = "cli/packaging.rs"]
mod packaging;
#[path = "cli/relabel.rs"]
mod relabel;
#[path = "cli/release.rs"]
mod release;
#[path = "cli/restart_sidecars.rs"]
mod restart_sidecars;
#[path = "cli/snapshots.rs"]
mod snapshots;
#[path = "cli/status_watch.rs"]
mod status_watch;
#[path = "cli/tag.rs"]
mod tag;
#[path = "cli/terminal.rs"]
mod terminal;
#[path = "cli/verify_injection.rs"]
mod verify_injection;

const PLUGIN: &str = env!("CARGO_BIN_EXE_kubectl-mesh_upgrade");
const KUBECTL: &str = "/usr/bin/kubectl";

/// What one run of a command produced.
#[derive(Debug)]
struct Run {
    code: i32,
    stdout: String,
    stderr: String,
}

impl Run {
    fn combined(&self) -> String {
        format!("{}{}", self.stdout, self.stderr)
    }
}

/// A scrubbed environment: a temporary HOME and only the variables given.
struct Env {
    home: tempfile::TempDir,
    vars: Vec<(String, String)>,
}

impl Env {
    fn new() -> Self {
        Env {
            home: tempfile::tempdir().expect("a temporary HOME"),
            vars: Vec::new(),
        }
    }

    fn kubeconfig(mut self, path: &Path) -> Self {
        self.vars
            .push(("KUBECONFIG".into(), path.display().to_string()));
        self
    }

    fn var(mut self, key: &str, value: &str) -> Self {
        self.vars.push((key.into(), value.into()));
        self
    }

    fn command(&self, program: &str, args: &[&str]) -> Command {
        let mut command = Command::new(program);
        command
            .args(args)
            .env_clear()
            .env("HOME", self.home.path())
            .env("PATH", "/usr/bin:/bin");
        for (key, value) in &self.vars {
            command.env(key, value);
        }
        command
    }

    fn run(&self, program: &str, args: &[&str]) -> Run {
        let output = self
            .command(program, args)
            .output()
            .unwrap_or_else(|e| panic!("running {program}: {e}"));
        Run {
            code: output.status.code().unwrap_or(-1),
            stdout: String::from_utf8_lossy(&output.stdout).into_owned(),
            stderr: String::from_utf8_lossy(&output.stderr).into_owned(),
        }
    }

    fn plugin(&self, args: &[&str]) -> Run {
        self.run(PLUGIN, args)
    }

    /// Run `program args`, and once a line of its stdout contains `needle`
    /// wait `pause` and send SIGINT (a Ctrl-C) to it: the run as it ended.
    /// kubectl execs its plugins, so the signal reaches the plugin itself.
    fn interrupt_once_stdout_shows(
        &self,
        program: &str,
        args: &[&str],
        needle: &str,
        pause: Duration,
    ) -> Run {
        use std::io::{BufRead, BufReader, Read};
        use std::process::Stdio;

        let mut child = self
            .command(program, args)
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap_or_else(|e| panic!("starting {program}: {e}"));
        let mut stderr = child.stderr.take().expect("stderr");
        let stderr = std::thread::spawn(move || {
            let mut text = String::new();
            let _ = stderr.read_to_string(&mut text);
            text
        });
        let mut stdout = String::new();
        let mut lines = BufReader::new(child.stdout.take().expect("stdout"));
        let mut signalled = false;
        loop {
            let mut line = String::new();
            if lines.read_line(&mut line).unwrap_or(0) == 0 {
                break;
            }
            stdout.push_str(&line);
            if !signalled && line.contains(needle) {
                std::thread::sleep(pause);
                let kill = Command::new("kill")
                    .args(["-INT", &child.id().to_string()])
                    .status()
                    .expect("kill runs");
                assert!(kill.success());
                signalled = true;
            }
        }
        let status = child.wait().expect("the program ends");
        let stderr = stderr.join().expect("stderr is read");
        assert!(
            signalled,
            "stdout never showed {needle:?}:\n{stdout}\n{stderr}"
        );
        Run {
            code: status.code().unwrap_or(-1),
            stdout,
            stderr,
        }
    }
}

fn canary() -> Sim {
    Sim::start(SimOptions::default().scenario("canary")).expect("the canary scenario starts")
}

fn plugin_on(sim: &Sim, args: &[&str]) -> Run {
    Env::new().kubeconfig(sim.kubeconfig_path()).plugin(args)
}

fn parse_json(run: &Run) -> Value {
    serde_json::from_str(&run.stdout)
        .unwrap_or_else(|e| panic!("stdout is not JSON ({e}): {run:#?}"))
}

// ---------------------------------------------------------------- status

#[test]
fn status_on_the_canary_scenario_shows_the_revisions_and_the_stale_workloads() {
    let sim = canary();
    let run = plugin_on(&sim, &["status", "-A"]);
    assert_eq!(run.code, 0, "{run:#?}");
    let text = &run.stdout;
    for expected in ["1-21-2", "1-22-3", "pay", "stale"] {
        assert!(
            text.contains(expected),
            "the table lacks {expected:?}:\n{text}"
        );
    }
    // Through a pipe nothing wraps: each name is whole on one line, as a
    // person (or grep) copies it.
    for name in [
        "deploy/istio-ingressgateway-1-21-2",
        "deploy/istio-ingressgateway-1-22-3",
        "istio-gateways/istio-ingressgateway",
    ] {
        assert!(
            text.lines().any(|l| l.contains(name)),
            "{name} is not whole on one line:\n{text}"
        );
    }
    assert!(
        text.lines().all(|l| !l.starts_with("      ")),
        "a table row was continued on another line:\n{text}"
    );
}

#[test]
fn status_json_is_the_documented_document() {
    let sim = canary();
    let run = plugin_on(&sim, &["status", "-A", "-o", "json"]);
    assert_eq!(run.code, 0, "{run:#?}");
    let report = parse_json(&run);
    assert_eq!(report["apiVersion"], "mesh-upgrade/v1");
    assert_eq!(report["kind"], "Status");
    for key in [
        "revisions",
        "namespaces",
        "workloads",
        "gateways",
        "summary",
    ] {
        assert!(
            report.get(key).is_some(),
            "the document lacks {key}: {report:#}"
        );
    }
    let workloads = report["workloads"].as_array().expect("workloads is a list");
    assert!(!workloads.is_empty());
    for workload in workloads {
        for field in [
            "namespace",
            "kind",
            "name",
            "state",
            "expectedRevision",
            "proxies",
            "risks",
        ] {
            assert!(
                workload.get(field).is_some(),
                "a workload entry lacks {field}: {workload:#}"
            );
        }
        for group in workload["proxies"].as_array().expect("proxies is a list") {
            for field in ["revision", "version", "pods"] {
                assert!(
                    group.get(field).is_some(),
                    "a proxies group lacks {field}: {group:#}"
                );
            }
        }
    }
    let stale_in_pay = workloads
        .iter()
        .any(|w| w["namespace"] == "pay" && w["state"] == "stale");
    assert!(
        stale_in_pay,
        "pay should have a stale workload: {workloads:#?}"
    );
}

#[test]
fn status_yaml_carries_the_same_document() {
    let sim = canary();
    let run = plugin_on(&sim, &["status", "-A", "-o", "yaml"]);
    assert_eq!(run.code, 0, "{run:#?}");
    let report: Value = serde_yaml::from_str(&run.stdout).expect("stdout is YAML");
    assert_eq!(report["kind"], "Status");
}

#[test]
fn status_exit_code_is_three_when_something_is_stale_and_zero_otherwise() {
    let sim = canary();
    let run = plugin_on(&sim, &["status", "-A", "--exit-code"]);
    assert_eq!(
        run.code, 3,
        "the canary scenario has stale workloads: {run:#?}"
    );
    assert!(!run.stdout.is_empty(), "the report is still printed");

    let empty = Sim::start(SimOptions::default()).expect("an empty cluster starts");
    let run = plugin_on(&empty, &["status", "-A", "--exit-code"]);
    assert_eq!(run.code, 0, "{run:#?}");
    let run = plugin_on(&sim, &["status", "-A"]);
    assert_eq!(
        run.code, 0,
        "without --exit-code stale workloads are not an error: {run:#?}"
    );
}

#[test]
fn status_of_one_namespace_reads_only_that_namespace_and_the_control_plane() {
    let sim = canary();
    sim.clear_requests();
    let run = plugin_on(&sim, &["status", "-n", "pay", "-o", "json"]);
    assert_eq!(run.code, 0, "{run:#?}");
    let report = parse_json(&run);
    let namespaces: Vec<&str> = report["workloads"]
        .as_array()
        .unwrap()
        .iter()
        .filter_map(|w| w["namespace"].as_str())
        .collect();
    assert!(
        namespaces
            .iter()
            .all(|ns| *ns == "pay" || *ns == "istio-system"),
        "{namespaces:?}"
    );
    for request in sim.requests() {
        let namespaced = request.path.contains("/namespaces/");
        let cluster_wide_kind = request.path.ends_with("/namespaces")
            || request.path.ends_with("/mutatingwebhookconfigurations")
            || request.path.ends_with("/gatewayclasses")
            || request.path == "/api/v1/nodes";
        assert!(
            namespaced || cluster_wide_kind,
            "-n pay should not list {} across the cluster",
            request.path
        );
    }
}

#[test]
fn a_label_selector_narrows_the_workloads_and_keeps_their_pods() {
    let sim = canary();
    let run = plugin_on(&sim, &["status", "-A", "-l", "app=payments", "-o", "json"]);
    assert_eq!(run.code, 0, "{run:#?}");
    let report = parse_json(&run);
    let names: Vec<&str> = report["workloads"]
        .as_array()
        .unwrap()
        .iter()
        .filter_map(|w| w["name"].as_str())
        .collect();
    assert_eq!(names, ["payments"], "{report:#}");
    let pods: u64 = report["workloads"][0]["proxies"]
        .as_array()
        .unwrap()
        .iter()
        .filter_map(|g| g["pods"].as_u64())
        .sum();
    assert!(
        pods > 0,
        "the selected Deployment keeps its pods: {report:#}"
    );
    assert!(
        !report["revisions"].as_array().unwrap().is_empty(),
        "istiod is still read under -l"
    );
}

#[test]
fn a_user_who_may_not_list_namespaces_can_still_see_the_ones_named() {
    let sim = canary();
    let role = reader_without(&["namespaces"]).allow(&["get"], &["namespaces"]);
    let kubeconfig = sim.add_user("team-pay", role);
    let run = Env::new()
        .kubeconfig(&kubeconfig)
        .plugin(&["status", "-n", "pay", "-o", "json"]);
    assert_eq!(run.code, 0, "{run:#?}");
    assert!(run.stderr.contains("cannot list namespaces"), "{run:#?}");
    let report = parse_json(&run);
    assert!(
        report["workloads"]
            .as_array()
            .unwrap()
            .iter()
            .any(|w| w["name"] == "payments" && w["state"] == "stale"),
        "{report:#}"
    );
    let run = Env::new().kubeconfig(&kubeconfig).plugin(&["status", "-A"]);
    assert_eq!(run.code, 1, "-A needs the namespace list: {run:#?}");
    assert!(
        run.stderr
            .starts_with("error: forbidden: cannot list namespaces cluster-wide as team-pay;"),
        "{run:#?}"
    );
}

// ---------------------------------------------------------------- fast on large clusters

/// LIST requests by path: (first pages, follow-up pages).
fn list_requests(sim: &Sim) -> BTreeMap<String, (usize, usize)> {
    let mut lists: BTreeMap<String, (usize, usize)> = BTreeMap::new();
    for request in sim.requests().into_iter().filter(|r| r.method == "GET") {
        let entry = lists.entry(request.path.clone()).or_default();
        if request.query.contains("continue=") {
            entry.1 += 1;
        } else {
            entry.0 += 1;
        }
    }
    lists
}

fn generated(workloads_per_namespace: usize) -> Sim {
    let sim = Sim::start(SimOptions::default()).expect("an empty cluster starts");
    let options = GenerateOptions {
        namespaces: 3,
        workloads_per_namespace,
        replicas: 2,
        ..GenerateOptions::default()
    };
    sim.with_world(|world| generate(world, &options))
        .expect("the generator fills the cluster");
    sim.settle();
    sim.clear_requests();
    sim
}

#[test]
fn the_number_of_requests_does_not_grow_with_the_number_of_workloads() {
    let small = generated(2);
    let large = generated(150);
    let small_run = plugin_on(&small, &["status", "-A", "-o", "json"]);
    let large_run = plugin_on(&large, &["status", "-A", "-o", "json"]);
    assert_eq!(small_run.code, 0, "{small_run:#?}");
    assert_eq!(large_run.code, 0, "{large_run:#?}");
    let small_lists = list_requests(&small);
    let large_lists = list_requests(&large);
    let first_pages = |lists: &BTreeMap<String, (usize, usize)>| -> BTreeMap<String, usize> {
        lists
            .iter()
            .map(|(path, (first, _))| (path.clone(), *first))
            .collect()
    };
    assert_eq!(
        first_pages(&small_lists),
        first_pages(&large_lists),
        "one LIST per kind on both clusters"
    );
    assert!(
        first_pages(&large_lists).values().all(|n| *n == 1),
        "{large_lists:#?}"
    );
    // Hundreds of pods at 500 a page: the large cluster needed follow-up pages.
    assert!(
        large_lists.get("/api/v1/pods").is_some_and(|l| l.1 >= 1),
        "{large_lists:#?}"
    );
    assert!(
        small_lists.values().all(|(_, more)| *more == 0),
        "{small_lists:#?}"
    );
}

/// `status -A -o json` on `sim`, without the time it was made.
fn status_document(sim: &Sim) -> Value {
    let run = plugin_on(sim, &["status", "-A", "-o", "json"]);
    assert!(run.code == 0 || run.code == 3, "{run:#?}");
    let mut document = parse_json(&run);
    document
        .as_object_mut()
        .expect("an object")
        .remove("generatedAt");
    document
}

/// The content types the LISTs of the kinds read in protobuf (pods,
/// ReplicaSets, Deployments, PodDisruptionBudgets) were answered with.
fn protobuf_kind_answers(sim: &Sim) -> Vec<String> {
    sim.requests()
        .into_iter()
        .filter(|r| {
            r.method == "GET"
                && [
                    "/pods",
                    "/replicasets",
                    "/deployments",
                    "/poddisruptionbudgets",
                ]
                .iter()
                .any(|kind| r.path.ends_with(kind))
        })
        .map(|r| r.response_type)
        .collect()
}

#[test]
fn the_largest_kinds_are_read_in_protobuf_when_served_and_tell_what_json_tells() {
    const PROTOBUF: &str = "application/vnd.kubernetes.protobuf";
    // A cluster of several pod pages, and the ambient scenario (ztunnel's
    // and istio-cni's pods carry the data plane's facts), each served once
    // with protobuf and once as an API server behind a JSON-only proxy.
    let with = |protobuf: bool| {
        let options = GenerateOptions {
            namespaces: 3,
            workloads_per_namespace: 150,
            replicas: 2,
            ..GenerateOptions::default()
        };
        let generated = Sim::start(SimOptions::default().protobuf(protobuf)).expect("starts");
        generated
            .with_world(|world| generate(world, &options))
            .expect("the generator fills the cluster");
        generated.settle();
        let ambient = Sim::start(SimOptions::default().scenario("ambient").protobuf(protobuf))
            .expect("the ambient scenario starts");
        [generated, ambient]
    };
    for (protobuf, json) in with(true).iter().zip(with(false).iter()) {
        protobuf.clear_requests();
        json.clear_requests();
        assert_eq!(status_document(protobuf), status_document(json));
        let answers = protobuf_kind_answers(protobuf);
        assert!(
            answers.len() >= 4 && answers.iter().all(|t| t.starts_with(PROTOBUF)),
            "the pages were not all protobuf: {answers:?}"
        );
        let answers = protobuf_kind_answers(json);
        assert!(
            answers.iter().all(|t| t.starts_with("application/json")),
            "{answers:?}"
        );
        // The same requests either way: protobuf changes no page boundary.
        assert_eq!(list_requests(protobuf), list_requests(json));
    }
    // -v=6 says which LISTs came back in protobuf.
    let sim = Sim::start(SimOptions::default().scenario("canary")).expect("starts");
    let run = plugin_on(&sim, &["status", "-A", "-o", "json", "-v=6"]);
    let pods_line = run
        .stderr
        .lines()
        .find(|l| l.contains("GET /api/v1/pods?"))
        .unwrap_or_else(|| panic!("no pod LIST in the log: {run:#?}"));
    assert!(pods_line.ends_with("(protobuf)"), "{pods_line}");
    let namespaces_line = run
        .stderr
        .lines()
        .find(|l| l.contains("GET /api/v1/namespaces?"))
        .expect("a namespace LIST in the log");
    assert!(!namespaces_line.contains("protobuf"), "{namespaces_line}");

    // A failed protobuf LIST is answered with a protobuf Status, whose
    // reason and message the error names as it names a JSON one's.
    use mesh_sim::{FaultRule, Faults};
    sim.set_faults(Faults::default().rule(FaultRule::on("list", "pods").error(422)));
    sim.clear_requests();
    let run = plugin_on(&sim, &["status", "-A"]);
    assert_eq!(run.code, 1, "{run:#?}");
    assert!(
        run.stderr
            .contains("the API server answered 422 InternalError: ")
            && run.stderr.contains("(injected fault)"),
        "{run:#?}"
    );
    assert_eq!(
        protobuf_kind_answers(&sim)
            .into_iter()
            .filter(|t| t.starts_with(PROTOBUF))
            .count(),
        protobuf_kind_answers(&sim).len(),
        "the refused pod LIST and the others came back in protobuf"
    );
}

// ---------------------------------------------------------------- errors a user will hit

#[test]
fn no_kubeconfig_says_how_to_provide_one() {
    let run = Env::new().plugin(&["status"]);
    assert_eq!(run.code, 1, "{run:#?}");
    assert_eq!(
        run.stderr.trim(),
        "error: no kubeconfig found: set KUBECONFIG or pass --kubeconfig"
    );
}

#[test]
fn an_unknown_context_lists_the_known_ones() {
    let sim = canary();
    let run = plugin_on(&sim, &["status", "--context", "prod"]);
    assert_eq!(run.code, 1, "{run:#?}");
    assert_eq!(
        run.stderr.trim(),
        "error: context \"prod\" is not in the kubeconfig; known contexts: mesh-sim"
    );
}

#[test]
fn a_server_that_does_not_answer_is_named_with_its_context() {
    let port = {
        let listener = std::net::TcpListener::bind("127.0.0.1:0").expect("a free port");
        listener.local_addr().expect("its address").port()
    };
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("closed.kubeconfig");
    let sim = canary();
    let text = mesh_sim::kubeconfig::render(
        &format!("https://127.0.0.1:{port}"),
        sim.ca_pem(),
        "admin",
        "t",
    );
    std::fs::write(&path, text).unwrap();
    let run = Env::new().kubeconfig(&path).plugin(&["status", "-A"]);
    assert_eq!(run.code, 1, "{run:#?}");
    let expected = format!(
        "error: the API server https://127.0.0.1:{port} (context mesh-sim) does not answer"
    );
    assert!(run.stderr.starts_with(&expected), "{run:#?}");
    assert_eq!(
        run.stderr.lines().count(),
        1,
        "one sentence, no backtrace: {run:#?}"
    );
}

#[test]
fn a_certificate_signed_by_another_ca_is_a_tls_error_with_advice() {
    let sim = canary();
    let other = Sim::start(SimOptions::default()).expect("a second cluster with its own CA");
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("wrong-ca.kubeconfig");
    std::fs::write(
        &path,
        mesh_sim::kubeconfig::render(sim.url(), other.ca_pem(), "admin", sim.token()),
    )
    .unwrap();
    let run = Env::new().kubeconfig(&path).plugin(&["status", "-A"]);
    assert_eq!(run.code, 1, "{run:#?}");
    let expected = format!(
        "error: the certificate of {} (context mesh-sim) could not be verified",
        sim.url()
    );
    assert!(run.stderr.starts_with(&expected), "{run:#?}");
    assert!(
        run.stderr.contains("--insecure-skip-tls-verify"),
        "{run:#?}"
    );

    let run = Env::new().kubeconfig(&path).plugin(&[
        "version",
        "--insecure-skip-tls-verify",
        "-o",
        "json",
    ]);
    assert_eq!(run.code, 0, "{run:#?}");
    assert!(
        parse_json(&run)["serverVersion"].is_object(),
        "insecure mode reaches the server: {run:#?}"
    );
}

#[test]
fn a_rejected_token_names_the_server_and_context() {
    let sim = canary();
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("bad-token.kubeconfig");
    std::fs::write(
        &path,
        mesh_sim::kubeconfig::render(sim.url(), sim.ca_pem(), "admin", "not-the-token"),
    )
    .unwrap();
    let run = Env::new().kubeconfig(&path).plugin(&["status", "-A"]);
    assert_eq!(run.code, 1, "{run:#?}");
    let expected = format!(
        "error: credentials rejected by {} for context mesh-sim (401 Unauthorized)",
        sim.url()
    );
    assert!(run.stderr.starts_with(&expected), "{run:#?}");
}

/// Everything `status` lists, except the given resources.
fn reader_without(excluded: &[&str]) -> Role {
    let all = [
        "namespaces",
        "mutatingwebhookconfigurations",
        "deployments",
        "statefulsets",
        "daemonsets",
        "replicasets",
        "pods",
        "services",
        "poddisruptionbudgets",
        "endpointslices",
        "configmaps",
        "rollouts",
        "jobs",
        "cronjobs",
        "nodes",
    ];
    let allowed: Vec<&str> = all.into_iter().filter(|r| !excluded.contains(r)).collect();
    Role::new().allow(&["get", "list", "watch"], &allowed)
}

#[test]
fn a_forbidden_kind_is_named_with_the_user_and_the_scope() {
    let sim = canary();
    let kubeconfig = sim.add_user("viewer", reader_without(&["pods"]));
    let run = Env::new().kubeconfig(&kubeconfig).plugin(&["status", "-A"]);
    assert_eq!(run.code, 1, "{run:#?}");
    assert!(
        run.stderr
            .starts_with("error: forbidden: cannot list pods in all namespaces as viewer;"),
        "{run:#?}"
    );
    // The pod LIST asked for protobuf, so the refusal came as a protobuf
    // Status, as an API server sends it; the sentence is the same.
    let refusal = sim
        .requests()
        .into_iter()
        .find(|r| r.path == "/api/v1/pods" && r.status == 403)
        .expect("the pod LIST was refused");
    assert_eq!(refusal.response_type, "application/vnd.kubernetes.protobuf");
    let run = Env::new()
        .kubeconfig(&kubeconfig)
        .plugin(&["status", "-n", "pay"]);
    assert!(
        run.stderr
            .starts_with("error: forbidden: cannot list pods in namespace "),
        "{run:#?}"
    );
}

#[test]
fn as_impersonates_another_user_with_that_users_rights() {
    let sim = canary();
    sim.add_user("auditor", Role::read_only());
    // The admin kubeconfig, acting as the read-only auditor: reading works...
    let run = plugin_on(&sim, &["status", "-A", "--as", "auditor"]);
    assert_eq!(run.code, 0, "{run:#?}");
    // ...a write is refused with the auditor named, and nothing changes.
    sim.clear_requests();
    let run = plugin_on(
        &sim,
        &[
            "relabel", "-n", "shop", "--to", "1-22-3", "--yes", "--as", "auditor",
        ],
    );
    assert_eq!(run.code, 1, "{run:#?}");
    assert!(
        run.combined()
            .contains("forbidden: cannot patch namespaces/shop")
            && run.combined().contains("as auditor"),
        "{run:#?}"
    );
    let requests = sim.requests();
    assert!(
        requests.iter().all(|r| r.user == "auditor"),
        "{requests:#?}"
    );
    assert!(
        requests
            .iter()
            .filter(|r| r.is_write())
            .all(|r| r.status == 403),
        "{requests:#?}"
    );
    // The real kubectl's --as goes through the same door.
    let run = Env::new()
        .kubeconfig(sim.kubeconfig_path())
        .run(KUBECTL, &["--as", "auditor", "label", "ns", "shop", "x=y"]);
    assert_ne!(run.code, 0, "{run:#?}");
    assert!(
        run.stderr.contains("User \"auditor\" cannot patch"),
        "{run:#?}"
    );
}

#[test]
fn forbidden_disruption_budgets_still_show_the_rest_with_a_warning() {
    let sim = canary();
    let kubeconfig = sim.add_user("no-pdbs", reader_without(&["poddisruptionbudgets"]));
    let run = Env::new()
        .kubeconfig(&kubeconfig)
        .plugin(&["status", "-A", "-o", "json"]);
    assert_eq!(run.code, 0, "{run:#?}");
    assert!(
        run.stderr
            .contains("PodDisruptionBudgets could not be read"),
        "{run:#?}"
    );
    let report = parse_json(&run);
    let risks: Vec<&str> = report["workloads"]
        .as_array()
        .unwrap()
        .iter()
        .flat_map(|w| {
            w["risks"]
                .as_array()
                .unwrap()
                .iter()
                .filter_map(Value::as_str)
        })
        .collect();
    assert!(risks.contains(&"pdb-unknown"), "{risks:?}");
    assert!(
        !risks.contains(&"no-pdb") && !risks.contains(&"pdb-allows-zero"),
        "{risks:?}"
    );
}

#[test]
fn a_namespace_that_does_not_exist_is_an_error_not_an_empty_report() {
    let sim = canary();
    let run = plugin_on(&sim, &["status", "-n", "shopp"]);
    assert_eq!(run.code, 1, "{run:#?}");
    assert_eq!(
        run.stderr.trim(),
        "error: namespace \"shopp\" does not exist in context mesh-sim"
    );
}

#[test]
fn an_invalid_selector_is_a_usage_error_before_any_request() {
    let sim = canary();
    sim.clear_requests();
    let run = plugin_on(&sim, &["status", "-A", "-l", "app in (cart"]);
    assert_eq!(run.code, 2, "{run:#?}");
    assert!(
        run.stderr
            .starts_with("error: invalid label selector \"app in (cart\""),
        "{run:#?}"
    );
    assert!(sim.requests().is_empty(), "nothing was sent");
}

#[test]
fn tokens_never_appear_even_at_the_highest_verbosity() {
    let sim = canary();
    let run = plugin_on(&sim, &["status", "-A", "-v", "9"]);
    assert_eq!(run.code, 0, "{run:#?}");
    assert!(
        run.stderr.contains("GET /api/v1/pods"),
        "-v 9 logs the requests: {}",
        run.stderr
    );
    assert!(
        !run.combined().contains(sim.token()),
        "the token leaked into the output"
    );
    assert!(
        !run.combined()
            .to_ascii_lowercase()
            .contains("authorization"),
        "a header leaked: {}",
        run.stderr
    );
}

#[test]
fn verbose_level_one_summarises_the_requests() {
    let sim = canary();
    let run = plugin_on(&sim, &["status", "-A", "-o", "json", "-v"]);
    assert_eq!(run.code, 0, "{run:#?}");
    assert!(run.stderr.contains("API requests:"), "{}", run.stderr);
    assert!(
        !run.stderr.contains("GET /api"),
        "level 1 does not list each request: {}",
        run.stderr
    );
    parse_json(&run);
}

// ---------------------------------------------------------------- the API layer against the sim

/// The API layer as restart-sidecars will use it: patches with server and
/// client dry run, a watch that sees the change, 429 and 409 handling.
#[test]
fn the_api_layer_patches_watches_and_rehearses_writes_against_the_sim() {
    use k8s_openapi::api::apps::v1::Deployment;
    use kube::core::WatchEvent;
    use kubectl_mesh_upgrade::api::{
        ApiClient, ConnectOptions, ListScope, ListSelector, PatchBody, WriteMode,
    };
    use kubectl_mesh_upgrade::error::Error;
    use mesh_sim::{FaultRule, Faults};

    const RESTARTED_AT: &str = "kubectl.kubernetes.io/restartedAt";
    let restart = |at: &str| {
        PatchBody::Strategic(serde_json::json!({
            "spec": {"template": {"metadata": {"annotations": {RESTARTED_AT: at}}}}
        }))
    };
    let annotation = |d: &Deployment| -> Option<String> {
        d.spec
            .as_ref()?
            .template
            .metadata
            .as_ref()?
            .annotations
            .as_ref()?
            .get(RESTARTED_AT)
            .cloned()
    };

    let sim = canary();
    let runtime = tokio::runtime::Runtime::new().expect("a runtime");
    runtime.block_on(async {
        let options = ConnectOptions {
            kubeconfig: Some(sim.kubeconfig_path().to_path_buf()),
            ..Default::default()
        };
        let api = ApiClient::connect(&options).await.expect("connects");

        // Server dry run: the answer shows the change, the store does not.
        sim.clear_requests();
        let rehearsed: Deployment = api
            .clone()
            .with_write_mode(WriteMode::ServerDryRun)
            .patch(Some("shop"), "frontend", &restart("2026-01-01T00:00:00Z"))
            .await
            .expect("a dry-run patch");
        assert_eq!(
            annotation(&rehearsed).as_deref(),
            Some("2026-01-01T00:00:00Z")
        );
        let stored: Deployment = api
            .get(Some("shop"), "frontend")
            .await
            .unwrap()
            .expect("frontend exists");
        assert_eq!(annotation(&stored), None, "a server dry run stored nothing");
        let writes: Vec<_> = sim
            .requests()
            .into_iter()
            .filter(|r| r.method == "PATCH")
            .collect();
        assert_eq!(writes.len(), 1);
        assert!(writes[0].query.contains("dryRun=All"), "{writes:?}");

        // Client dry run: refused before anything is sent.
        sim.clear_requests();
        let err = api
            .clone()
            .with_write_mode(WriteMode::ClientDryRun)
            .patch::<Deployment>(Some("shop"), "frontend", &restart("x"))
            .await
            .unwrap_err();
        assert!(
            matches!(err.downcast_ref::<Error>(), Some(Error::DryRunWrite { .. })),
            "{err:#}"
        );
        assert!(sim.requests().is_empty());

        // A watch from the stored version sees the real patch.
        let version = stored
            .metadata
            .resource_version
            .clone()
            .expect("a resourceVersion");
        let mut events = api
            .watch::<Deployment>(
                &ListScope::Namespace("shop".into()),
                &ListSelector::everything(),
                &version,
                Duration::from_secs(20),
            )
            .await
            .expect("a watch");
        let patched: Deployment = api
            .patch(Some("shop"), "frontend", &restart("2026-01-02T00:00:00Z"))
            .await
            .unwrap();
        assert_eq!(
            annotation(&patched).as_deref(),
            Some("2026-01-02T00:00:00Z")
        );
        let mut seen = false;
        while let Some(event) = futures::StreamExt::next(&mut events).await {
            if let WatchEvent::Modified(d) = event.expect("a watch event")
                && d.metadata.name.as_deref() == Some("frontend")
                && annotation(&d).as_deref() == Some("2026-01-02T00:00:00Z")
            {
                seen = true;
                break;
            }
        }
        assert!(seen, "the watch saw the patch");

        // 429 with Retry-After: waited for, then retried.
        sim.set_faults(Faults::new().rule(FaultRule::on("list", "pods").throttle(1).next(1)));
        let started = std::time::Instant::now();
        let pods = api
            .list_all::<k8s_openapi::api::core::v1::Pod, String>(
                &ListScope::Namespace("shop".into()),
                &ListSelector::everything(),
                |p| p.metadata.name,
            )
            .await
            .expect("the list succeeds after the retry");
        assert!(!pods.is_empty());
        assert!(
            started.elapsed() >= Duration::from_secs(1),
            "Retry-After was honoured"
        );
        assert_eq!(api.stats().retries(), 1);

        // 409: a typed error for the caller to re-read on, not retried blindly.
        sim.set_faults(Faults::new().conflict_first_writes("deployments", 1));
        let err = api
            .patch::<Deployment>(Some("shop"), "frontend", &restart("y"))
            .await
            .unwrap_err();
        assert!(
            matches!(err.downcast_ref::<Error>(), Some(Error::Conflict { .. })),
            "{err:#}"
        );
        sim.clear_faults();
    });
}

// ---------------------------------------------------------------- version and completion

#[test]
fn version_prints_the_plugin_and_the_server() {
    let sim = canary();
    let run = plugin_on(&sim, &["version"]);
    assert_eq!(run.code, 0, "{run:#?}");
    assert!(
        run.stdout.starts_with(&format!(
            "kubectl mesh-upgrade v{}\n",
            env!("CARGO_PKG_VERSION")
        )),
        "{run:#?}"
    );
    assert!(run.stdout.contains("Server: Kubernetes v"), "{run:#?}");
    let run = plugin_on(&sim, &["version", "-o", "json"]);
    let json = parse_json(&run);
    assert_eq!(json["clientVersion"]["version"], env!("CARGO_PKG_VERSION"));
    assert_eq!(json["serverVersion"]["context"], "mesh-sim");
}

#[test]
fn version_without_a_cluster_still_prints_the_plugin_version() {
    let run = Env::new().plugin(&["version"]);
    assert_eq!(run.code, 0, "{run:#?}");
    // The commit line is there when the build had a git checkout
    // (tests/cli/release.rs checks which commit).
    let commit = option_env!("MESH_UPGRADE_GIT_COMMIT")
        .map(|c| format!("Commit: {c}\n"))
        .unwrap_or_default();
    assert_eq!(
        run.stdout,
        format!(
            "kubectl mesh-upgrade v{}\n{commit}",
            env!("CARGO_PKG_VERSION")
        )
    );
    assert!(run.stderr.contains("no kubeconfig found"), "{run:#?}");
}

#[test]
fn completion_scripts_are_printed_for_every_shell() {
    for shell in ["bash", "zsh", "fish", "powershell"] {
        let run = Env::new().plugin(&["completion", shell]);
        assert_eq!(run.code, 0, "{shell}: {run:#?}");
        assert!(
            run.stdout.contains("kubectl-mesh_upgrade"),
            "{shell}: {}",
            run.stdout
        );
    }
}

// ---------------------------------------------------------------- through the real kubectl

/// A PATH directory holding the plugin under the name kubectl discovers.
fn plugin_dir() -> tempfile::TempDir {
    assert!(
        Path::new(KUBECTL).exists(),
        "these tests need the real kubectl at {KUBECTL}"
    );
    let dir = tempfile::tempdir().expect("a PATH directory");
    let target = dir.path().join("kubectl-mesh_upgrade");
    std::fs::copy(PLUGIN, &target).expect("copying the plugin binary");
    make_executable(&target);
    dir
}

fn make_executable(path: &PathBuf) {
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        std::fs::set_permissions(path, std::fs::Permissions::from_mode(0o755)).expect("chmod +x");
    }
}

fn path_with(dir: &Path) -> String {
    format!("{}:/usr/bin:/bin", dir.display())
}

#[test]
fn kubectl_finds_the_plugin_on_path_and_runs_status_and_version() {
    let sim = canary();
    let dir = plugin_dir();
    let env = Env::new()
        .kubeconfig(sim.kubeconfig_path())
        .var("PATH", &path_with(dir.path()));

    let plugins = env.run(KUBECTL, &["plugin", "list"]);
    assert!(
        plugins.combined().contains("kubectl-mesh_upgrade"),
        "{plugins:#?}"
    );

    let run = env.run(KUBECTL, &["mesh-upgrade", "version"]);
    assert_eq!(run.code, 0, "{run:#?}");
    assert!(run.stdout.starts_with("kubectl mesh-upgrade v"), "{run:#?}");

    let run = env.run(KUBECTL, &["mesh-upgrade", "status", "-A"]);
    assert_eq!(run.code, 0, "{run:#?}");
    assert!(run.stdout.contains("1-22-3"), "{run:#?}");

    let run = env.run(KUBECTL, &["mesh-upgrade", "--help"]);
    assert_eq!(run.code, 0, "{run:#?}");
    assert!(
        run.stdout.contains("Usage: kubectl mesh-upgrade"),
        "{run:#?}"
    );
    assert!(
        !run.stdout.contains("kubectl-mesh_upgrade"),
        "help calls it by its file name: {run:#?}"
    );

    let run = env.run(KUBECTL, &["mesh-upgrade", "stauts"]);
    assert_eq!(run.code, 2, "{run:#?}");
    assert!(run.stderr.contains("kubectl mesh-upgrade"), "{run:#?}");
}

#[test]
fn kubectl_completes_the_plugin_through_the_helper() {
    let dir = plugin_dir();
    let env = Env::new().var("PATH", &path_with(dir.path()));
    let helper = env.plugin(&["completion", "kubectl"]);
    assert_eq!(helper.code, 0, "{helper:#?}");
    let helper_path = dir.path().join("kubectl_complete-mesh_upgrade");
    std::fs::write(&helper_path, &helper.stdout).expect("writing the helper");
    make_executable(&helper_path);

    let run = env.run(KUBECTL, &["__complete", "mesh-upgrade", "st"]);
    assert_eq!(run.code, 0, "{run:#?}");
    assert!(
        run.stdout.lines().any(|l| l.starts_with("status")),
        "{run:#?}"
    );
    let run = env.run(KUBECTL, &["__complete", "mesh-upgrade", "status", "-o", ""]);
    assert!(
        run.stdout.lines().any(|l| l.starts_with("json")),
        "{run:#?}"
    );
}
