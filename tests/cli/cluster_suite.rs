//! The suite that also runs against a real cluster.
//!
//! Everything else in `tests/cli.rs` reads mesh-sim's request log or moves
//! its clock; these tests do neither. They talk to the cluster only through
//! a kubeconfig, the real `kubectl` and `kubectl mesh-upgrade` found by
//! kubectl's plugin discovery, create what they need in namespaces of their
//! own (`mesh-e2e-*`, deleted afterwards) and assert only what a real
//! cluster with Istio shows too. So the same tests run
//!
//! - against mesh-sim (the `canary` scenario's two revisions) when nothing
//!   is set: this is how `cargo test` runs them;
//! - against any cluster with two Istio revisions installed when
//!   `MESH_UPGRADE_E2E_KUBECONFIG` names its kubeconfig:
//!
//! ```sh
//! MESH_UPGRADE_E2E_KUBECONFIG=~/.kube/config cargo test --test cli cluster_suite
//! ```
//!
//! Optional: `MESH_UPGRADE_E2E_CONTEXT` (else the kubeconfig's current
//! context), `MESH_UPGRADE_E2E_FROM` / `MESH_UPGRADE_E2E_TO` (else the
//! oldest and newest revision `status` finds), `MESH_UPGRADE_E2E_IMAGE` (the
//! application container, default `registry.k8s.io/pause:3.10`), `KUBECTL`
//! (else the `kubectl` on PATH).
//! `the_suite_runs_against_the_cluster_the_environment_names` proves the
//! variable is honoured: it points a child run of this suite at a mesh-sim
//! started as if it were a remote cluster.

use std::path::PathBuf;
use std::process::Command;
use std::time::{SystemTime, UNIX_EPOCH};

use mesh_sim::{Sim, SimOptions};
use serde_json::Value;

use super::{Env, KUBECTL, Run, plugin_dir};

const KUBECONFIG_VAR: &str = "MESH_UPGRADE_E2E_KUBECONFIG";
const CONTEXT_VAR: &str = "MESH_UPGRADE_E2E_CONTEXT";
const FROM_VAR: &str = "MESH_UPGRADE_E2E_FROM";
const TO_VAR: &str = "MESH_UPGRADE_E2E_TO";
const IMAGE_VAR: &str = "MESH_UPGRADE_E2E_IMAGE";
const DEFAULT_IMAGE: &str = "registry.k8s.io/pause:3.10";
/// Bound for every rollout the suite waits for: generous for image pulls
/// on a real cluster, never reached on mesh-sim.
const ROLLOUT_TIMEOUT: &str = "300s";

/// The cluster under test, reached only through its kubeconfig.
struct Cluster {
    /// The simulated cluster when no real one was named; kept alive here.
    _sim: Option<Sim>,
    context: Option<String>,
    /// `/usr/bin/kubectl` on mesh-sim; the user's own (found on PATH, or
    /// `KUBECTL`) against a real cluster.
    kubectl: String,
    /// The directory on PATH that holds `kubectl-mesh_upgrade`.
    _plugin_dir: tempfile::TempDir,
    env: Env,
    manifests: tempfile::TempDir,
    from: String,
    to: String,
    image: String,
}

impl Cluster {
    fn connect() -> Cluster {
        let (sim, kubeconfig, real) = match std::env::var_os(KUBECONFIG_VAR) {
            Some(path) if !path.is_empty() => {
                let path = PathBuf::from(path);
                assert!(
                    path.is_file(),
                    "{KUBECONFIG_VAR} names {}, which is not a file",
                    path.display()
                );
                (None, path, true)
            }
            _ => {
                let sim = Sim::start(SimOptions::default().scenario("canary"))
                    .expect("the canary scenario starts");
                let path = sim.kubeconfig_path().to_path_buf();
                (Some(sim), path, false)
            }
        };
        let dir = plugin_dir();
        let mut env = Env::new().kubeconfig(&kubeconfig);
        let mut kubectl = KUBECTL.to_string();
        if real {
            kubectl = std::env::var("KUBECTL").unwrap_or_else(|_| "kubectl".to_string());
            // Credential plugins (exec auth) need the user's PATH and HOME.
            let path = std::env::var("PATH").unwrap_or_default();
            env = env.var("PATH", &format!("{}:{path}", dir.path().display()));
            if let Ok(home) = std::env::var("HOME") {
                env = env.var("HOME", &home);
            }
        } else {
            env = env.var("PATH", &super::path_with(dir.path()));
        }
        let mut cluster = Cluster {
            _sim: sim,
            kubectl,
            context: std::env::var(CONTEXT_VAR).ok().filter(|c| !c.is_empty()),
            _plugin_dir: dir,
            env,
            manifests: tempfile::tempdir().expect("a directory for manifests"),
            from: String::new(),
            to: String::new(),
            image: std::env::var(IMAGE_VAR)
                .ok()
                .filter(|i| !i.is_empty())
                .unwrap_or_else(|| DEFAULT_IMAGE.to_string()),
        };
        let (from, to) = cluster.revisions();
        cluster.from = from;
        cluster.to = to;
        cluster
    }

    /// The revisions to move between: from the environment, else the oldest
    /// and the newest istiod `status` reports.
    fn revisions(&self) -> (String, String) {
        let report = self.status("default");
        let mut found: Vec<(Vec<u64>, String)> = report["revisions"]
            .as_array()
            .expect("revisions is a list")
            .iter()
            .filter_map(|r| {
                let revision = r["revision"].as_str()?.to_string();
                let version = r["version"].as_str().unwrap_or_default();
                Some((version_key(version), revision))
            })
            .collect();
        found.sort();
        let from = std::env::var(FROM_VAR)
            .ok()
            .filter(|v| !v.is_empty())
            .or_else(|| found.first().map(|(_, r)| r.clone()));
        let to = std::env::var(TO_VAR)
            .ok()
            .filter(|v| !v.is_empty())
            .or_else(|| found.last().map(|(_, r)| r.clone()));
        match (from, to) {
            (Some(from), Some(to)) if from != to => (from, to),
            _ => panic!(
                "the cluster needs two Istio revisions (found {:?}); install a second one or \
                 set {FROM_VAR} and {TO_VAR}",
                found.iter().map(|(_, r)| r).collect::<Vec<_>>()
            ),
        }
    }

    fn context_args(&self) -> Vec<&str> {
        match &self.context {
            Some(context) => vec!["--context", context],
            None => Vec::new(),
        }
    }

    fn kubectl(&self, args: &[&str]) -> Run {
        let mut all = self.context_args();
        all.extend_from_slice(args);
        self.env.run(&self.kubectl, &all)
    }

    /// `kubectl mesh-upgrade <args>`, through kubectl's plugin discovery.
    fn mesh(&self, args: &[&str]) -> Run {
        let mut all = vec!["mesh-upgrade"];
        all.extend_from_slice(args);
        all.extend(self.context_args());
        self.env.run(&self.kubectl, &all)
    }

    fn must(&self, run: Run, what: &str) -> Run {
        assert_eq!(run.code, 0, "{what} failed: {run:#?}");
        run
    }

    fn status(&self, namespace: &str) -> Value {
        let run = self.must(
            self.mesh(&["status", "-n", namespace, "-o", "json"]),
            "status",
        );
        serde_json::from_str(&run.stdout)
            .unwrap_or_else(|e| panic!("status -o json is not JSON ({e}): {run:#?}"))
    }

    fn apply(&self, name: &str, yaml: &str) {
        let file = self.manifests.path().join(format!("{name}.yaml"));
        std::fs::write(&file, yaml).expect("writing a manifest");
        let file = file.display().to_string();
        self.must(self.kubectl(&["apply", "-f", &file]), "kubectl apply");
    }

    fn wait_for_rollout(&self, namespace: &str, deployment: &str) {
        let target = format!("deployment/{deployment}");
        let timeout = format!("--timeout={ROLLOUT_TIMEOUT}");
        self.must(
            self.kubectl(&["rollout", "status", &target, "-n", namespace, &timeout]),
            "kubectl rollout status",
        );
    }

    /// A namespace of this run's own, deleted when the guard drops.
    fn namespace(&self, purpose: &str, labels: &[(&str, &str)]) -> OwnNamespace<'_> {
        let name = format!("mesh-e2e-{purpose}-{}", unique_suffix());
        let mut yaml =
            format!("apiVersion: v1\nkind: Namespace\nmetadata:\n  name: {name}\n  labels:\n");
        yaml.push_str("    mesh-upgrade.io/e2e: \"true\"\n");
        for (key, value) in labels {
            yaml.push_str(&format!("    {key}: \"{value}\"\n"));
        }
        self.apply(&name, &yaml);
        OwnNamespace {
            cluster: self,
            name,
        }
    }

    fn namespace_labels(&self, namespace: &str) -> Value {
        let run = self.must(
            self.kubectl(&["get", "namespace", namespace, "-o", "json"]),
            "kubectl get namespace",
        );
        let object: Value = serde_json::from_str(&run.stdout).expect("kubectl prints JSON");
        object["metadata"]["labels"].clone()
    }

    fn service_selector(&self, namespace: &str, service: &str) -> Value {
        let run = self.must(
            self.kubectl(&["get", "service", service, "-n", namespace, "-o", "json"]),
            "kubectl get service",
        );
        let object: Value = serde_json::from_str(&run.stdout).expect("kubectl prints JSON");
        object["spec"]["selector"].clone()
    }
}

/// Deletes the namespace (and so everything the test made in it) on drop,
/// without waiting for the finalizers of a real cluster.
struct OwnNamespace<'a> {
    cluster: &'a Cluster,
    name: String,
}

impl Drop for OwnNamespace<'_> {
    fn drop(&mut self) {
        let _ = self.cluster.kubectl(&[
            "delete",
            "namespace",
            &self.name,
            "--wait=false",
            "--ignore-not-found",
        ]);
    }
}

/// Six hex digits that differ between runs and between tests of one run.
fn unique_suffix() -> String {
    use std::sync::atomic::{AtomicU32, Ordering};
    static COUNTER: AtomicU32 = AtomicU32::new(0);
    let nanos = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.subsec_nanos())
        .unwrap_or_default();
    let mixed =
        nanos ^ std::process::id().rotate_left(12) ^ COUNTER.fetch_add(1, Ordering::Relaxed);
    format!("{:06x}", mixed & 0xff_ffff)
}

/// "1.22.3" -> [1, 22, 3]; anything not a number sorts as 0.
fn version_key(version: &str) -> Vec<u64> {
    version
        .split(['.', '-'])
        .map(|part| part.parse().unwrap_or(0))
        .collect()
}

fn workload<'a>(report: &'a Value, name: &str) -> &'a Value {
    report["workloads"]
        .as_array()
        .expect("workloads is a list")
        .iter()
        .find(|w| w["name"] == name)
        .unwrap_or_else(|| panic!("status lists no workload {name}: {report:#}"))
}

/// The revisions of a workload's proxies, one entry per group.
fn proxy_revisions(workload: &Value) -> Vec<String> {
    workload["proxies"]
        .as_array()
        .expect("proxies is a list")
        .iter()
        .filter_map(|group| group["revision"].as_str().map(str::to_string))
        .collect()
}

fn app_deployment(namespace: &str, image: &str) -> String {
    format!(
        "\
apiVersion: apps/v1
kind: Deployment
metadata:
  name: web
  namespace: {namespace}
  labels: {{app: web}}
spec:
  replicas: 2
  selector:
    matchLabels: {{app: web}}
  template:
    metadata:
      labels: {{app: web}}
    spec:
      containers:
      - name: web
        image: {image}
"
    )
}

/// A gateway Deployment injected by `revision`'s `gateway` template, the
/// way the blue/green seed runs one per revision.
fn gateway_deployment(namespace: &str, revision: &str) -> String {
    format!(
        "\
apiVersion: apps/v1
kind: Deployment
metadata:
  name: ingress-{revision}
  namespace: {namespace}
  labels: {{istio: ingressgateway, version: \"{revision}\", istio.io/rev: \"{revision}\"}}
spec:
  replicas: 1
  selector:
    matchLabels: {{istio: ingressgateway, version: \"{revision}\"}}
  template:
    metadata:
      annotations:
        inject.istio.io/templates: gateway
      labels:
        istio: ingressgateway
        version: \"{revision}\"
        istio.io/rev: \"{revision}\"
        sidecar.istio.io/inject: \"true\"
    spec:
      containers:
      - name: istio-proxy
        image: auto
        ports:
        - {{containerPort: 8080, name: http2, protocol: TCP}}
        - {{containerPort: 15021, name: status-port, protocol: TCP}}
"
    )
}

fn load_balancer(namespace: &str, revision: &str) -> String {
    format!(
        "\
apiVersion: v1
kind: Service
metadata:
  name: ingress
  namespace: {namespace}
spec:
  type: LoadBalancer
  selector: {{istio: ingressgateway, version: \"{revision}\"}}
  ports:
  - {{name: status-port, port: 15021, targetPort: 15021}}
  - {{name: http2, port: 80, targetPort: 8080}}
"
    )
}

#[test]
fn a_namespace_moves_to_the_new_revision_and_back() {
    let cluster = Cluster::connect();
    let (from, to) = (cluster.from.as_str(), cluster.to.as_str());
    let ns = cluster.namespace("apps", &[("istio.io/rev", from)]);
    let ns = ns.name.as_str();
    cluster.apply("web", &app_deployment(ns, &cluster.image));
    cluster.wait_for_rollout(ns, "web");

    let report = cluster.status(ns);
    let revisions: Vec<&str> = report["revisions"]
        .as_array()
        .unwrap()
        .iter()
        .filter_map(|r| r["revision"].as_str())
        .collect();
    assert!(
        revisions.contains(&from) && revisions.contains(&to),
        "status shows both control planes: {revisions:?}"
    );
    let web = workload(&report, "web");
    assert_eq!(web["state"], "up-to-date", "{web:#}");
    assert_eq!(proxy_revisions(web), [from], "{web:#}");

    // A rehearsal changes nothing.
    let run = cluster.mesh(&["relabel", "-n", ns, "--to", to, "--dry-run"]);
    cluster.must(run, "relabel --dry-run");
    assert_eq!(cluster.namespace_labels(ns)["istio.io/rev"], from);

    // Relabel: new pods would get the new revision; the running ones are stale.
    let run = cluster.mesh(&["relabel", "-n", ns, "--to", to, "--yes"]);
    cluster.must(run, "relabel");
    assert_eq!(cluster.namespace_labels(ns)["istio.io/rev"], to);
    let run = cluster.mesh(&["status", "-n", ns, "--exit-code"]);
    assert_eq!(run.code, 3, "stale sidecars after the relabel: {run:#?}");
    let report = cluster.status(ns);
    let web = workload(&report, "web");
    assert_eq!(web["state"], "stale", "{web:#}");
    assert_eq!(web["expectedRevision"], to, "{web:#}");

    // Restart exactly the stale workload; it comes back on the new proxies.
    let run = cluster.mesh(&["restart-sidecars", "-n", ns, "--yes"]);
    cluster.must(run, "restart-sidecars");
    let run = cluster.mesh(&["status", "-n", ns, "--exit-code"]);
    assert_eq!(run.code, 0, "nothing stale after the restart: {run:#?}");
    let report = cluster.status(ns);
    assert_eq!(proxy_revisions(workload(&report, "web")), [to]);

    // And the way back: the old label, and the old proxies after a restart.
    let run = cluster.mesh(&["relabel", "-n", ns, "--undo", "--restart", "--yes"]);
    cluster.must(run, "relabel --undo --restart");
    assert_eq!(cluster.namespace_labels(ns)["istio.io/rev"], from);
    let run = cluster.mesh(&["status", "-n", ns, "--exit-code"]);
    assert_eq!(run.code, 0, "nothing stale after the undo: {run:#?}");
    let report = cluster.status(ns);
    assert_eq!(proxy_revisions(workload(&report, "web")), [from]);
}

#[test]
fn ingress_moves_to_the_green_gateway_and_back() {
    let cluster = Cluster::connect();
    let (from, to) = (cluster.from.as_str(), cluster.to.as_str());
    let ns = cluster.namespace("gateways", &[]);
    let ns = ns.name.as_str();
    cluster.apply("blue", &gateway_deployment(ns, from));
    cluster.apply("green", &gateway_deployment(ns, to));
    cluster.apply("ingress", &load_balancer(ns, from));
    cluster.wait_for_rollout(ns, &format!("ingress-{from}"));
    cluster.wait_for_rollout(ns, &format!("ingress-{to}"));

    let report = cluster.status(ns);
    let gateways: Vec<(&str, &str)> = report["gateways"]
        .as_array()
        .expect("gateways is a list")
        .iter()
        .filter_map(|g| Some((g["name"].as_str()?, g["revision"].as_str()?)))
        .collect();
    let blue = format!("ingress-{from}");
    let green = format!("ingress-{to}");
    assert!(
        gateways.contains(&(blue.as_str(), from)) && gateways.contains(&(green.as_str(), to)),
        "status shows each gateway on its revision: {gateways:?}"
    );

    let run = cluster.mesh(&["gateway-switch", "-n", ns, "--to", to, "--dry-run"]);
    cluster.must(run, "gateway-switch --dry-run");
    assert_eq!(cluster.service_selector(ns, "ingress")["version"], from);

    let run = cluster.mesh(&["gateway-switch", "-n", ns, "--to", to, "--yes"]);
    cluster.must(run, "gateway-switch");
    let selector = cluster.service_selector(ns, "ingress");
    assert_eq!(selector["version"], to, "{selector:#}");
    assert_eq!(selector["istio"], "ingressgateway", "{selector:#}");

    let run = cluster.mesh(&["gateway-switch", "-n", ns, "--rollback", "--yes"]);
    cluster.must(run, "gateway-switch --rollback");
    assert_eq!(cluster.service_selector(ns, "ingress")["version"], from);
}

/// The suite's own test: with `MESH_UPGRADE_E2E_KUBECONFIG` set, a run of it
/// uses that cluster instead of starting one. A mesh-sim started here stands
/// in for the remote cluster; its request log shows the child's namespace
/// being made and deleted there.
#[test]
fn the_suite_runs_against_the_cluster_the_environment_names() {
    let remote = Sim::start(SimOptions::default().scenario("canary")).expect("a stand-in cluster");
    remote.clear_requests();
    let test = "cluster_suite::ingress_moves_to_the_green_gateway_and_back";
    let output = Command::new(std::env::current_exe().expect("this test binary"))
        .args([test, "--exact", "--test-threads=1"])
        .env(KUBECONFIG_VAR, remote.kubeconfig_path())
        .env_remove(CONTEXT_VAR)
        .env_remove(FROM_VAR)
        .env_remove(TO_VAR)
        .output()
        .expect("running the suite again");
    let stdout = String::from_utf8_lossy(&output.stdout);
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(
        output.status.success() && stdout.contains("1 passed"),
        "the child run failed:\n{stdout}\n{stderr}"
    );
    let writes: Vec<(String, String)> = remote
        .requests()
        .into_iter()
        .filter(|r| r.method != "GET")
        .map(|r| (r.method, r.path))
        .collect();
    let switched = writes
        .iter()
        .find(|(method, path)| method == "PATCH" && path.ends_with("/services/ingress"))
        .unwrap_or_else(|| panic!("the switch went to the named cluster: {writes:#?}"));
    // /api/v1/namespaces/<name>/services/ingress -> /api/v1/namespaces/<name>
    let namespace = switched.1.trim_end_matches("/services/ingress");
    assert!(
        writes
            .iter()
            .any(|(method, path)| method == "DELETE" && path == namespace),
        "the child deleted its namespace {namespace}: {writes:#?}"
    );
}

#[test]
fn versions_sort_numerically() {
    let mut versions = vec![
        version_key("1.22.3"),
        version_key("1.9.0"),
        version_key("1.21.2"),
    ];
    versions.sort();
    assert_eq!(versions, [vec![1, 9, 0], vec![1, 21, 2], vec![1, 22, 3]]);
}
