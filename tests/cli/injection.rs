//! Injection facts end to end: the plugin, run by the real kubectl as a
//! plugin, reading what mesh-sim's injector and charts produced. The model's
//! rules are unit-tested in both crates against shared tables; these tests
//! check that the facts survive the real path (LIST pages, conversion,
//! kubectl's plugin discovery) on the scenarios built for them.

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

fn named<'a>(list: &'a Value, name: &str) -> &'a Value {
    list.as_array()
        .expect("a list")
        .iter()
        .find(|item| item["name"] == name)
        .unwrap_or_else(|| panic!("{name} is not in {list:#}"))
}

#[test]
fn tags_are_read_from_their_webhook_configurations_and_from_their_services() {
    let sim = Sim::start(SimOptions::default().scenario("revision-tags"))
        .expect("the revision-tags scenario starts");
    let run = kubectl_plugin(&sim, &["status", "-A", "-o", "json", "--exit-code"]);
    assert_eq!(
        run.code, 3,
        "a tag without a webhook needs attention: {run:#?}"
    );
    let report = parse_json(&run);

    let revision = |rev: &str| {
        report["revisions"]
            .as_array()
            .unwrap()
            .iter()
            .find(|r| r["revision"] == rev)
            .unwrap_or_else(|| panic!("no revision {rev}: {report:#}"))
            .clone()
    };
    assert_eq!(
        revision("1-26-2")["tags"],
        serde_json::json!(["prod-legacy", "prod-stable"])
    );
    assert_eq!(
        revision("1-27-1")["tags"],
        serde_json::json!(["prod-canary"])
    );

    let namespaces = &report["namespaces"];
    for name in ["legacy", "stable"] {
        let ns = named(namespaces, name);
        assert_eq!(ns["revision"], "1-26-2", "{ns:#}");
        assert_eq!(ns["problems"], serde_json::json!([]), "{ns:#}");
    }
    let canary = named(namespaces, "canary");
    assert_eq!(canary["revision"], Value::Null);
    assert_eq!(
        canary["problems"][0]["code"], "tag-without-webhook",
        "{canary:#}"
    );

    let web = |namespace: &str| {
        report["workloads"]
            .as_array()
            .unwrap()
            .iter()
            .find(|w| w["namespace"] == namespace && w["name"] == "web")
            .unwrap()
            .clone()
    };
    assert_eq!(web("stable")["state"], "up-to-date");
    assert_eq!(
        web("stable")["expectedImage"],
        "docker.io/istio/proxyv2:1.26.2"
    );
    assert_eq!(web("legacy")["state"], "up-to-date");
    assert_eq!(web("canary")["state"], "not-injected");
}

const PROBE_POD: &str = "apiVersion: v1
kind: Pod
metadata:
  name: probe
  namespace: pay
  labels: {app: probe}
spec:
  containers:
  - name: probe
    image: docker.io/library/busybox:1.36
";

/// `kubectl create --dry-run=server -f <probe pod> -o yaml` against `sim`.
fn dry_run_create(sim: &Sim) -> Run {
    let dir = tempfile::tempdir().expect("a directory for the manifest");
    let manifest = dir.path().join("pod.yaml");
    std::fs::write(&manifest, PROBE_POD).expect("writing the manifest");
    Env::new().kubeconfig(sim.kubeconfig_path()).run(
        KUBECTL,
        &[
            "create",
            "--dry-run=server",
            "-f",
            &manifest.display().to_string(),
            "-o",
            "yaml",
        ],
    )
}

fn container_images(pod: &serde_yaml::Value, list: &str) -> Vec<(String, String)> {
    pod["spec"][list]
        .as_sequence()
        .map(|containers| {
            containers
                .iter()
                .map(|c| {
                    (
                        c["name"].as_str().unwrap_or_default().to_string(),
                        c["image"].as_str().unwrap_or_default().to_string(),
                    )
                })
                .collect()
        })
        .unwrap_or_default()
}

/// The pod creations the sim answered, as (dry run, status).
fn pod_creates(sim: &Sim) -> Vec<(bool, u16)> {
    sim.requests()
        .iter()
        .filter(|r| r.method == "POST" && r.path == "/api/v1/namespaces/pay/pods")
        .map(|r| (r.is_dry_run(), r.status))
        .collect()
}

#[test]
fn a_server_side_dry_run_create_returns_the_injected_pod_and_stores_nothing() {
    let sim = canary();
    sim.clear_requests();
    let run = dry_run_create(&sim);
    assert_eq!(run.code, 0, "{run:#?}");
    let pod: serde_yaml::Value = serde_yaml::from_str(&run.stdout).expect("the pod as YAML");
    assert_eq!(
        container_images(&pod, "containers"),
        [
            (
                "probe".to_string(),
                "docker.io/library/busybox:1.36".to_string()
            ),
            (
                "istio-proxy".to_string(),
                "docker.io/istio/proxyv2:1.22.3".to_string()
            ),
        ]
    );
    assert_eq!(
        container_images(&pod, "initContainers"),
        [(
            "istio-init".to_string(),
            "docker.io/istio/proxyv2:1.22.3".to_string()
        )]
    );
    let status: Value = serde_json::from_str(
        pod["metadata"]["annotations"]["sidecar.istio.io/status"]
            .as_str()
            .expect("the injector's status annotation"),
    )
    .unwrap();
    assert_eq!(status["revision"], "1-22-3");
    assert_eq!(pod_creates(&sim), [(true, 201)]);
    let get = Env::new()
        .kubeconfig(sim.kubeconfig_path())
        .run(KUBECTL, &["get", "pod", "probe", "-n", "pay"]);
    assert_eq!(get.code, 1, "nothing was stored: {get:#?}");
    assert!(
        get.stderr.contains("NotFound") || get.stderr.contains("not found"),
        "{get:#?}"
    );
}

#[test]
fn a_server_side_dry_run_fails_like_a_create_when_the_injectors_istiod_is_not_ready() {
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
    let run = dry_run_create(&sim);
    assert_eq!(run.code, 1, "{run:#?}");
    assert!(
        run.stderr.contains(
            "Internal error occurred: failed calling webhook \"rev.namespace.sidecar-injector.istio.io\""
        ) && run
            .stderr
            .contains("no endpoints available for service \"istiod-1-22-3\""),
        "{run:#?}"
    );
    assert_eq!(pod_creates(&sim), [(true, 500)]);
    assert!(
        sim.with_world(|w| w
            .store
            .get(mesh_sim::resources::kinds::pods(), "pay", "probe"))
            .is_none()
    );
}

#[test]
fn a_registry_mirror_webhook_rewrites_the_proxy_image_the_injector_chose() {
    let sim = Sim::start(
        SimOptions::default()
            .scenario("canary")
            .registry_mirror("docker.io/istio/", "mirror.example.com/istio/"),
    )
    .expect("the canary scenario with a registry mirror starts");
    let run = dry_run_create(&sim);
    assert_eq!(run.code, 0, "{run:#?}");
    let pod: serde_yaml::Value = serde_yaml::from_str(&run.stdout).expect("the pod as YAML");
    assert_eq!(
        container_images(&pod, "containers"),
        [
            (
                "probe".to_string(),
                "docker.io/library/busybox:1.36".to_string()
            ),
            (
                "istio-proxy".to_string(),
                "mirror.example.com/istio/proxyv2:1.22.3".to_string()
            ),
        ]
    );
    // The model computes what the injector renders; only asking the
    // cluster shows what the mirror made of it.
    let report = parse_json(&plugin_on(&sim, &["status", "-n", "pay", "-o", "json"]));
    let revision = report["revisions"]
        .as_array()
        .unwrap()
        .iter()
        .find(|r| r["revision"] == "1-22-3")
        .unwrap();
    assert_eq!(revision["proxyImage"], "docker.io/istio/proxyv2:1.22.3");
}
