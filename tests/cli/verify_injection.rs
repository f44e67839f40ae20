//! Asking the cluster end to end: `status --verify-injection` and
//! restart-sidecars' injector check, run by the real kubectl as a plugin
//! against mesh-sim, whose injector answers dry-run pod creates as a real
//! API server does. The model's answer and the server's are compared; the
//! request log proves what was sent (dry-run creates, never a stored write).

use super::*;

/// `kubectl mesh-upgrade <args>` through kubectl's plugin discovery.
fn kubectl_plugin(sim: &Sim, args: &[&str]) -> Run {
    let dir = plugin_dir();
    let env = Env::new()
        .kubeconfig(sim.kubeconfig_path())
        .var("PATH", &path_with(dir.path()));
    let mut full = vec!["mesh-upgrade"];
    full.extend_from_slice(args);
    env.run(KUBECTL, &full)
}

fn workload<'a>(report: &'a Value, namespace: &str, name: &str) -> &'a Value {
    report["workloads"]
        .as_array()
        .expect("workloads")
        .iter()
        .find(|w| w["namespace"] == namespace && w["name"] == name)
        .unwrap_or_else(|| panic!("{namespace}/{name} is not in {report:#}"))
}

/// The pod creates the sim answered: (namespace path, dry run).
fn pod_creates(sim: &Sim) -> Vec<(String, bool)> {
    sim.requests()
        .iter()
        .filter(|r| r.method == "POST" && r.path.ends_with("/pods"))
        .map(|r| (r.path.clone(), r.is_dry_run()))
        .collect()
}

#[test]
fn verify_injection_confirms_the_computed_proxy_on_the_canary_scenario() {
    let sim = canary();
    sim.clear_requests();
    let run = kubectl_plugin(
        &sim,
        &["status", "-n", "pay", "--verify-injection", "-o", "json"],
    );
    assert_eq!(run.code, 0, "{run:#?}");
    let report = parse_json(&run);
    let workloads = report["workloads"].as_array().unwrap();
    assert!(!workloads.is_empty());
    for w in workloads {
        assert_eq!(w["verification"]["verdict"], "confirmed", "{w:#}");
        assert_eq!(
            w["verification"]["dryRunImage"], w["expectedImage"],
            "{w:#}"
        );
    }
    let payments = workload(&report, "pay", "payments");
    assert_eq!(payments["state"], "stale");
    let reasons: Vec<&str> = payments["reasons"]
        .as_array()
        .expect("a reasons list")
        .iter()
        .map(|r| r.as_str().unwrap())
        .collect();
    assert!(
        reasons.contains(
            &"proxy image docker.io/istio/proxyv2:1.21.2 → docker.io/istio/proxyv2:1.22.3"
        ),
        "{reasons:?}"
    );
    let creates = pod_creates(&sim);
    assert!(
        !creates.is_empty() && creates.len() <= workloads.len(),
        "{creates:?}"
    );
    assert!(
        creates.iter().all(|(_, dry)| *dry),
        "only dry runs: {creates:?}"
    );
    assert!(
        sim.requests()
            .iter()
            .all(|r| !r.is_write() || (r.method == "POST" && r.is_dry_run())),
        "no stored write"
    );
}

#[test]
fn verify_injection_reports_a_registry_mirror_as_a_contradiction_naming_both_images() {
    let sim = Sim::start(
        SimOptions::default()
            .scenario("canary")
            .registry_mirror("docker.io/istio/", "mirror.example.com/istio/"),
    )
    .expect("the canary scenario with a registry mirror starts");
    let run = kubectl_plugin(
        &sim,
        &["status", "-n", "pay", "--verify-injection", "-o", "json"],
    );
    assert_eq!(run.code, 0, "{run:#?}");
    let report = parse_json(&run);
    let payments = workload(&report, "pay", "payments");
    assert_eq!(payments["expectedImage"], "docker.io/istio/proxyv2:1.22.3");
    let verification = &payments["verification"];
    assert_eq!(verification["verdict"], "contradicted", "{payments:#}");
    assert_eq!(
        verification["dryRunImage"],
        "mirror.example.com/istio/proxyv2:1.22.3"
    );
    let problem = verification["problem"].as_str().unwrap();
    assert!(
        problem.contains("docker.io/istio/proxyv2:1.22.3")
            && problem.contains("mirror.example.com/istio/proxyv2:1.22.3"),
        "{problem}"
    );
    assert!(report["summary"]["needsAttention"].as_bool().unwrap());
    let text = kubectl_plugin(&sim, &["status", "-n", "pay", "--verify-injection"]);
    assert_eq!(text.code, 0, "{text:#?}");
    assert!(
        text.stdout.contains("INJECTION CHECK") && text.stdout.contains("contradicted"),
        "{}",
        text.stdout
    );
}

#[test]
fn restart_is_refused_before_any_write_when_the_target_injector_does_not_answer() {
    let sim = canary();
    let scale = Env::new().kubeconfig(sim.kubeconfig_path()).run(
        KUBECTL,
        &[
            "scale",
            "deployment/istiod-1-22-3",
            "-n",
            "istio-system",
            "--replicas=0",
        ],
    );
    assert_eq!(scale.code, 0, "{scale:#?}");
    sim.settle();
    sim.clear_requests();
    let run = kubectl_plugin(&sim, &["restart-sidecars", "-n", "pay", "--yes"]);
    assert_eq!(run.code, 5, "{run:#?}");
    assert!(
        run.stderr.contains("revision 1-22-3")
            && run.stderr.contains("no endpoints available for service"),
        "{}",
        run.stderr
    );
    let writes: Vec<_> = sim
        .requests()
        .into_iter()
        .filter(|r| r.is_write())
        .collect();
    assert!(!writes.is_empty(), "the injector was asked");
    assert!(
        writes.iter().all(|r| r.method == "POST"
            && r.is_dry_run()
            && r.path == "/api/v1/namespaces/pay/pods"),
        "only dry-run pod creates: {:?}",
        writes
            .iter()
            .map(|r| format!("{} {}", r.method, r.path))
            .collect::<Vec<_>>()
    );
}
