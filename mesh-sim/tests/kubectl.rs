//! The real `kubectl` against `mesh-sim`: every command a mesh upgrade and
//! its tests rely on, checked in the simulated cluster's store and request
//! log rather than only in kubectl's output.
//!
//! kubectl must be installed at `/usr/bin/kubectl`; a missing kubectl fails
//! these tests with a message saying so (it never skips them). Each test
//! starts its own cluster, so they run in parallel, and gives kubectl its own
//! discovery cache directory.

use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use mesh_sim::faults::FaultRule;
use mesh_sim::resources::kinds;
use mesh_sim::{Faults, Role, Sim, SimOptions};
use serde_json::Value;

const KUBECTL: &str = "/usr/bin/kubectl";
/// No kubectl call here should take longer; a hung one fails the test.
const KUBECTL_DEADLINE: Duration = Duration::from_secs(120);

fn kubectl_binary() -> &'static Path {
    let path = Path::new(KUBECTL);
    assert!(
        path.exists(),
        "{KUBECTL} is missing: the mesh-sim integration tests drive the real kubectl; install kubectl at {KUBECTL}"
    );
    path
}

/// What one kubectl run printed.
struct Run {
    args: String,
    success: bool,
    stdout: String,
    stderr: String,
}

impl Run {
    /// Stdout of a run that must succeed.
    fn ok(self) -> String {
        assert!(
            self.success,
            "kubectl {} failed\nstdout:\n{}\nstderr:\n{}",
            self.args, self.stdout, self.stderr
        );
        self.stdout
    }

    /// Stderr of a run that must fail.
    fn fails(self) -> String {
        assert!(
            !self.success,
            "kubectl {} succeeded but should have failed\nstdout:\n{}\nstderr:\n{}",
            self.args, self.stdout, self.stderr
        );
        self.stderr
    }
}

/// A simulated cluster and a kubectl pointed at it.
struct Cluster {
    sim: Sim,
    cache: tempfile::TempDir,
}

impl Cluster {
    fn start(options: SimOptions) -> Self {
        kubectl_binary();
        let sim = Sim::start(options).expect("mesh-sim starts");
        let cache = tempfile::tempdir().expect("a temporary directory");
        Cluster { sim, cache }
    }

    fn with_manifests(yaml: &str) -> Self {
        Cluster::start(SimOptions::default().manifests(yaml))
    }

    fn kubectl(&self, args: &[&str]) -> Run {
        self.kubectl_as(self.sim.kubeconfig_path(), args)
    }

    fn kubectl_as(&self, kubeconfig: &Path, args: &[&str]) -> Run {
        self.kubectl_with_input(kubeconfig, args, None)
    }

    fn kubectl_stdin(&self, args: &[&str], input: &str) -> Run {
        self.kubectl_with_input(self.sim.kubeconfig_path(), args, Some(input))
    }

    fn kubectl_with_input(&self, kubeconfig: &Path, args: &[&str], input: Option<&str>) -> Run {
        let mut child = Command::new(kubectl_binary())
            .args(args)
            .env("KUBECONFIG", kubeconfig)
            .env("KUBECACHEDIR", self.cache.path())
            .env("HOME", self.cache.path())
            .env_remove("KUBECTL_EXTERNAL_DIFF")
            .stdin(if input.is_some() {
                Stdio::piped()
            } else {
                Stdio::null()
            })
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .expect("kubectl starts");
        if let Some(text) = input {
            use std::io::Write;
            let mut stdin = child.stdin.take().expect("piped stdin");
            stdin
                .write_all(text.as_bytes())
                .expect("writing kubectl's stdin");
        }
        let started = Instant::now();
        loop {
            match child.try_wait().expect("waiting for kubectl") {
                Some(_) => break,
                None if started.elapsed() > KUBECTL_DEADLINE => {
                    let _ = child.kill();
                    panic!(
                        "kubectl {} did not finish within {KUBECTL_DEADLINE:?}",
                        args.join(" ")
                    );
                }
                None => std::thread::sleep(Duration::from_millis(20)),
            }
        }
        let output = child.wait_with_output().expect("kubectl output");
        Run {
            args: args.join(" "),
            success: output.status.success(),
            stdout: String::from_utf8_lossy(&output.stdout).into_owned(),
            stderr: String::from_utf8_lossy(&output.stderr).into_owned(),
        }
    }

    fn object(
        &self,
        resource: &mesh_sim::resources::Resource,
        namespace: &str,
        name: &str,
    ) -> Value {
        self.sim
            .get(resource, namespace, name)
            .unwrap_or_else(|| panic!("{} {namespace}/{name} is not in the store", resource.plural))
    }

    /// The store's resource version: unchanged means nothing was written.
    fn store_version(&self) -> u64 {
        self.sim.with_world(|w| w.store.resource_version())
    }

    /// Writes a manifest to the cache directory and returns its path.
    fn manifest_file(&self, name: &str, yaml: &str) -> PathBuf {
        let path = self.cache.path().join(name);
        std::fs::write(&path, yaml).expect("writing a manifest");
        path
    }
}

fn label<'a>(obj: &'a Value, key: &str) -> Option<&'a str> {
    obj.pointer("/metadata/labels")
        .and_then(|l| l.get(key))
        .and_then(Value::as_str)
}

const SHOP: &str = r#"
apiVersion: v1
kind: Namespace
metadata:
  name: shop
  labels:
    istio-injection: enabled
---
apiVersion: v1
kind: Namespace
metadata:
  name: pay
---
apiVersion: apps/v1
kind: Deployment
metadata:
  name: web
  namespace: shop
  labels: {app: web}
spec:
  replicas: 2
  selector:
    matchLabels: {app: web}
  template:
    metadata:
      labels: {app: web}
    spec:
      containers:
      - name: app
        image: nginx:1.27
        env:
        - {name: MODE, value: prod}
      - name: logger
        image: busybox:1.36
---
apiVersion: v1
kind: Pod
metadata:
  name: web-debug
  namespace: shop
  labels: {app: web, tier: debug}
spec:
  containers:
  - {name: app, image: nginx:1.27}
---
apiVersion: v1
kind: Pod
metadata:
  name: db-0
  namespace: pay
  labels: {app: db}
spec:
  containers:
  - {name: db, image: postgres:16}
---
apiVersion: v1
kind: Pod
metadata:
  name: cache-0
  namespace: pay
  labels: {app: cache, tier: infra}
spec:
  containers:
  - {name: cache, image: redis:7}
"#;

#[test]
fn kubectl_version_reports_the_simulated_server() {
    let cluster = Cluster::start(SimOptions::default());
    let out = cluster.kubectl(&["version", "-o", "json"]).ok();
    let version: Value = serde_json::from_str(&out).expect("kubectl version -o json prints JSON");
    assert_eq!(version["serverVersion"]["gitVersion"], "v1.33.0");
}

#[test]
fn get_namespaces_shows_the_standard_and_loaded_namespaces_with_status() {
    let cluster = Cluster::with_manifests(SHOP);
    let out = cluster.kubectl(&["get", "ns"]).ok();
    let header: Vec<&str> = out
        .lines()
        .next()
        .unwrap_or("")
        .split_whitespace()
        .collect();
    assert_eq!(header, ["NAME", "STATUS", "AGE"]);
    for ns in ["default", "kube-system", "shop", "pay"] {
        assert!(
            out.lines().any(|l| l.starts_with(&format!("{ns} "))),
            "{ns} missing from:\n{out}"
        );
    }
}

#[test]
fn get_pods_across_namespaces_filters_by_label_selectors() {
    let cluster = Cluster::with_manifests(SHOP);
    let names = |selector: &str| -> Vec<String> {
        let out = cluster
            .kubectl(&["get", "pods", "-A", "-l", selector, "-o", "name"])
            .ok();
        let mut names: Vec<String> = out.lines().map(str::to_string).collect();
        names.sort();
        names
    };
    assert_eq!(names("app in (db,cache)"), ["pod/cache-0", "pod/db-0"]);
    assert_eq!(names("app=web,tier=debug"), ["pod/web-debug"]);
    assert_eq!(names("app!=web,!tier"), ["pod/db-0"]);
    assert_eq!(names("tier"), ["pod/cache-0", "pod/web-debug"]);
    assert!(names("app notin (web,db,cache)").is_empty());

    let table = cluster
        .kubectl(&["get", "pods", "-A", "-l", "app in (db,cache)", "-L", "tier"])
        .ok();
    let header: Vec<&str> = table
        .lines()
        .next()
        .unwrap_or("")
        .split_whitespace()
        .collect();
    assert_eq!(
        header,
        [
            "NAMESPACE",
            "NAME",
            "READY",
            "STATUS",
            "RESTARTS",
            "AGE",
            "TIER"
        ]
    );
    let cache_row = table
        .lines()
        .find(|l| l.contains("cache-0"))
        .expect("a cache-0 row");
    assert!(cache_row.starts_with("pay "), "{cache_row}");
    assert!(cache_row.trim_end().ends_with("infra"), "{cache_row}");
}

#[test]
fn get_pods_in_small_chunks_pages_through_every_pod() {
    let cluster = Cluster::with_manifests(SHOP);
    cluster.sim.clear_requests();
    let out = cluster
        .kubectl(&["get", "pods", "-A", "--chunk-size=1", "-o", "name"])
        .ok();
    let all = cluster.kubectl(&["get", "pods", "-A", "-o", "name"]).ok();
    assert_eq!(out, all);
    assert!(out.lines().count() >= 3, "{out}");
    let pages = cluster
        .sim
        .requests()
        .iter()
        .filter(|r| r.path == "/api/v1/pods" && r.query_param("limit").as_deref() == Some("1"))
        .count();
    assert!(
        pages >= out.lines().count(),
        "{pages} pages for {} pods",
        out.lines().count()
    );
}

#[test]
fn get_deployments_wide_shows_containers_images_and_selector() {
    let cluster = Cluster::with_manifests(SHOP);
    let out = cluster
        .kubectl(&["get", "deploy", "-n", "shop", "-o", "wide"])
        .ok();
    let header: Vec<&str> = out
        .lines()
        .next()
        .unwrap_or("")
        .split_whitespace()
        .collect();
    assert_eq!(
        header,
        [
            "NAME",
            "READY",
            "UP-TO-DATE",
            "AVAILABLE",
            "AGE",
            "CONTAINERS",
            "IMAGES",
            "SELECTOR"
        ]
    );
    let row = out.lines().nth(1).unwrap_or("");
    assert!(
        row.contains("app,logger")
            && row.contains("nginx:1.27,busybox:1.36")
            && row.contains("app=web"),
        "{row}"
    );
}

#[test]
fn create_from_a_file_stores_the_object_and_apply_updates_it() {
    let cluster = Cluster::with_manifests(SHOP);
    let cm = "apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: settings\n  namespace: pay\ndata:\n  mode: blue\n";
    let file = cluster.manifest_file("settings.yaml", cm);
    let out = cluster
        .kubectl(&["create", "-f", file.to_str().unwrap()])
        .ok();
    assert_eq!(out.trim(), "configmap/settings created");
    assert_eq!(
        cluster.object(kinds::configmaps(), "pay", "settings")["data"]["mode"],
        "blue"
    );

    let again = cluster
        .kubectl(&["create", "-f", file.to_str().unwrap()])
        .fails();
    assert!(
        again.contains("AlreadyExists") || again.contains("already exists"),
        "{again}"
    );

    cluster
        .kubectl_stdin(&["apply", "-f", "-"], &cm.replace("blue", "green"))
        .ok();
    let stored = cluster.object(kinds::configmaps(), "pay", "settings");
    assert_eq!(stored["data"]["mode"], "green");
    assert!(
        stored["metadata"]["annotations"]["kubectl.kubernetes.io/last-applied-configuration"]
            .as_str()
            .is_some_and(|a| a.contains("green")),
        "{stored}"
    );
}

/// A line's words with durations (`5s`, `3m12s`, `2d`) replaced: what two
/// runs of `describe` seconds apart print alike. The settled scenario's
/// clock may run ahead of the wall clock, which kubectl prints as the age
/// `<invalid>` until the wall clock catches up.
fn without_ages(text: &str) -> Vec<String> {
    let is_age = |word: &str| {
        word == "<invalid>"
            || (word.chars().any(|c| c.is_ascii_digit())
                && word
                    .chars()
                    .all(|c| c.is_ascii_digit() || "smhd".contains(c)))
    };
    text.lines()
        .map(|line| {
            line.split_whitespace()
                .map(|word| if is_age(word) { "AGE" } else { word })
                .collect::<Vec<_>>()
                .join(" ")
        })
        .collect()
}

/// kubectl's typed clients (`describe`, `rollout history`, `drain`) ask for
/// lists in protobuf and get them, and print what they print from JSON.
#[test]
fn typed_clients_read_protobuf_lists_as_they_read_json_ones() {
    let cluster = Cluster::start(SimOptions::default().scenario("owners").clock_speed(0.0));
    let commands: [&[&str]; 3] = [
        &["describe", "deployments", "-n", "orders"],
        &["describe", "nodes"],
        &["rollout", "history", "deployment/catalog", "-n", "orders"],
    ];
    let protobuf_answers = |cluster: &Cluster| {
        cluster
            .sim
            .requests()
            .iter()
            .filter(|r| r.response_type == "application/vnd.kubernetes.protobuf")
            .map(|r| r.path.clone())
            .collect::<Vec<_>>()
    };
    let in_protobuf: Vec<String> = commands.iter().map(|c| cluster.kubectl(c).ok()).collect();
    let answered = protobuf_answers(&cluster);
    assert!(
        answered.iter().any(|p| p.ends_with("/replicasets"))
            && answered.iter().any(|p| p.ends_with("/pods")),
        "ReplicaSets and pods were listed in protobuf: {answered:?}"
    );
    cluster.sim.clear_requests();
    cluster.sim.with_world(|w| w.config.protobuf = false);
    for (command, printed) in commands.iter().zip(&in_protobuf) {
        let from_json = cluster.kubectl(command).ok();
        assert_eq!(
            without_ages(printed),
            without_ages(&from_json),
            "kubectl {}",
            command.join(" ")
        );
    }
    assert!(protobuf_answers(&cluster).is_empty());
}

/// The objects kubectl's typed `create` commands and `run` make, which
/// kubectl sends as protobuf, stored as the JSON kubectl would get back.
#[test]
fn typed_create_commands_send_protobuf_that_is_stored_as_json() {
    let cluster = Cluster::with_manifests(SHOP);
    let stored = |kind: &str, namespace: &str, name: &str| {
        let resource = mesh_sim::resources::lookup_kind(
            match kind {
                "Deployment" => "apps/v1",
                "Job" => "batch/v1",
                "PodDisruptionBudget" => "policy/v1",
                "Role" | "RoleBinding" => "rbac.authorization.k8s.io/v1",
                _ => "v1",
            },
            kind,
        )
        .unwrap_or_else(|| panic!("{kind} is a known kind"));
        cluster.object(resource, namespace, name)
    };
    for args in [
        vec!["create", "namespace", "typed"],
        vec![
            "create",
            "deployment",
            "web",
            "-n",
            "typed",
            "--image=nginx:1.27",
            "--replicas=0",
            "--port=8080",
        ],
        vec![
            "create",
            "configmap",
            "settings",
            "-n",
            "typed",
            "--from-literal=mode=blue",
            "--from-literal=empty=",
        ],
        vec![
            "create",
            "secret",
            "generic",
            "token",
            "-n",
            "typed",
            "--from-literal=key=s3cr3t",
        ],
        vec![
            "run",
            "shell",
            "-n",
            "typed",
            "--image=busybox",
            "--labels=app=shell",
            "--env=A=1",
            "--",
            "sleep",
            "3600",
        ],
        vec![
            "create",
            "service",
            "clusterip",
            "web",
            "-n",
            "typed",
            "--tcp=80:8080",
        ],
        vec![
            "create",
            "job",
            "once",
            "-n",
            "typed",
            "--image=busybox",
            "--",
            "echo",
            "hi",
        ],
        vec![
            "create",
            "poddisruptionbudget",
            "web",
            "-n",
            "typed",
            "--selector=app=web",
            "--max-unavailable=0",
        ],
        vec![
            "create",
            "role",
            "reader",
            "-n",
            "typed",
            "--verb=get,list",
            "--resource=pods",
        ],
        vec![
            "create",
            "rolebinding",
            "readers",
            "-n",
            "typed",
            "--role=reader",
            "--user=jane",
        ],
        vec!["create", "serviceaccount", "robot", "-n", "typed"],
    ] {
        let out = cluster.kubectl(&args).ok();
        assert!(out.contains("created"), "{args:?}: {out}");
    }
    assert!(
        cluster
            .sim
            .requests()
            .iter()
            .any(|r| r.method == "POST" && r.content_type.contains("protobuf")),
        "kubectl sent protobuf"
    );

    let deployment = stored("Deployment", "typed", "web");
    assert_eq!(
        deployment["spec"]["replicas"], 0,
        "a pointer's zero is kept"
    );
    assert_eq!(deployment["spec"]["selector"]["matchLabels"]["app"], "web");
    let container = &deployment["spec"]["template"]["spec"]["containers"][0];
    assert_eq!(container["image"], "nginx:1.27");
    assert_eq!(container["ports"][0]["containerPort"], 8080);
    assert_eq!(container["resources"], serde_json::json!({}));
    assert!(
        container.get("workingDir").is_none() && container.get("stdin").is_none(),
        "unset fields stay out: {container}"
    );

    let settings = stored("ConfigMap", "typed", "settings");
    assert_eq!(
        settings["data"],
        serde_json::json!({"mode": "blue", "empty": ""})
    );
    assert_eq!(
        stored("Secret", "typed", "token")["data"]["key"],
        "czNjcjN0"
    );

    let pod = stored("Pod", "typed", "shell");
    assert_eq!(pod["metadata"]["labels"]["app"], "shell");
    let shell = &pod["spec"]["containers"][0];
    assert_eq!(shell["args"], serde_json::json!(["sleep", "3600"]));
    assert_eq!(
        shell["env"],
        serde_json::json!([{"name": "A", "value": "1"}])
    );

    let service = stored("Service", "typed", "web");
    assert_eq!(service["spec"]["ports"][0]["port"], 80);
    assert_eq!(service["spec"]["ports"][0]["targetPort"], 8080);
    let job = stored("Job", "typed", "once");
    assert_eq!(
        job["spec"]["template"]["spec"]["containers"][0]["command"],
        serde_json::json!(["echo", "hi"])
    );
    let budget = stored("PodDisruptionBudget", "typed", "web");
    assert_eq!(budget["spec"]["maxUnavailable"], 0, "an int-or-string zero");
    let role = stored("Role", "typed", "reader");
    assert_eq!(
        role["rules"],
        serde_json::json!([{"apiGroups": [""], "resources": ["pods"], "verbs": ["get", "list"]}])
    );
    let binding = stored("RoleBinding", "typed", "readers");
    assert_eq!(binding["roleRef"]["name"], "reader");
    assert_eq!(binding["subjects"][0]["name"], "jane");

    // Read back through kubectl, as a user would.
    let out = cluster
        .kubectl(&[
            "get",
            "deployment",
            "web",
            "-n",
            "typed",
            "-o",
            "jsonpath={.spec.template.spec.containers[0].image}",
        ])
        .ok();
    assert_eq!(out, "nginx:1.27");
}

#[test]
fn label_moves_a_namespace_from_istio_injection_to_a_revision() {
    let cluster = Cluster::with_manifests(SHOP);
    cluster
        .kubectl(&[
            "label",
            "ns",
            "shop",
            "istio-injection-",
            "istio.io/rev=1-22-3",
        ])
        .ok();
    let ns = cluster.object(kinds::namespaces(), "", "shop");
    assert_eq!(label(&ns, "istio-injection"), None);
    assert_eq!(label(&ns, "istio.io/rev"), Some("1-22-3"));

    let overwrite = cluster
        .kubectl(&["label", "ns", "shop", "istio.io/rev=1-23-0"])
        .fails();
    assert!(overwrite.contains("--overwrite"), "{overwrite}");
    cluster
        .kubectl(&["label", "ns", "shop", "istio.io/rev=1-23-0", "--overwrite"])
        .ok();
    assert_eq!(
        label(
            &cluster.object(kinds::namespaces(), "", "shop"),
            "istio.io/rev"
        ),
        Some("1-23-0")
    );
}

#[test]
fn annotate_sets_and_removes_annotations() {
    let cluster = Cluster::with_manifests(SHOP);
    cluster
        .kubectl(&[
            "annotate",
            "deploy",
            "web",
            "-n",
            "shop",
            "mesh.example/owner=team-a",
        ])
        .ok();
    let d = cluster.object(kinds::deployments(), "shop", "web");
    assert_eq!(d["metadata"]["annotations"]["mesh.example/owner"], "team-a");
    cluster
        .kubectl(&[
            "annotate",
            "deploy",
            "web",
            "-n",
            "shop",
            "mesh.example/owner-",
        ])
        .ok();
    let d = cluster.object(kinds::deployments(), "shop", "web");
    assert!(
        d.pointer("/metadata/annotations/mesh.example~1owner")
            .is_none(),
        "{d}"
    );
}

#[test]
fn patch_works_in_strategic_merge_and_json_types() {
    let cluster = Cluster::with_manifests(SHOP);
    // Strategic: containers merge by name, so the logger stays.
    cluster
        .kubectl(&[
            "patch", "deploy", "web", "-n", "shop", "--type", "strategic", "-p",
            r#"{"spec":{"template":{"spec":{"containers":[{"name":"app","image":"nginx:1.28"}]}}}}"#,
        ])
        .ok();
    let d = cluster.object(kinds::deployments(), "shop", "web");
    let containers = d["spec"]["template"]["spec"]["containers"]
        .as_array()
        .expect("containers");
    assert_eq!(containers.len(), 2, "{containers:?}");
    assert_eq!(containers[0]["image"], "nginx:1.28");
    assert_eq!(containers[0]["env"][0]["value"], "prod");
    assert_eq!(containers[1]["name"], "logger");

    // Merge: a JSON merge patch on labels.
    cluster
        .kubectl(&[
            "patch",
            "deploy",
            "web",
            "-n",
            "shop",
            "--type",
            "merge",
            "-p",
            r#"{"metadata":{"labels":{"tier":"front"}}}"#,
        ])
        .ok();
    assert_eq!(
        label(&cluster.object(kinds::deployments(), "shop", "web"), "tier"),
        Some("front")
    );

    // JSON patch (RFC 6902).
    cluster
        .kubectl(&[
            "patch",
            "deploy",
            "web",
            "-n",
            "shop",
            "--type",
            "json",
            "-p",
            r#"[{"op":"replace","path":"/spec/replicas","value":3}]"#,
        ])
        .ok();
    assert_eq!(
        cluster.object(kinds::deployments(), "shop", "web")["spec"]["replicas"],
        3
    );

    let types: Vec<String> = cluster
        .sim
        .requests()
        .into_iter()
        .filter(|r| r.method == "PATCH")
        .map(|r| r.content_type)
        .collect();
    assert_eq!(
        types,
        [
            "application/strategic-merge-patch+json",
            "application/merge-patch+json",
            "application/json-patch+json"
        ]
    );

    let bad = cluster
        .kubectl(&[
            "patch",
            "deploy",
            "web",
            "-n",
            "shop",
            "--type",
            "json",
            "-p",
            r#"[{"op":"remove","path":"/spec/nope"}]"#,
        ])
        .fails();
    assert!(bad.contains("/spec/nope"), "{bad}");
    assert_eq!(
        cluster.object(kinds::deployments(), "shop", "web")["spec"]["replicas"],
        3
    );
}

#[test]
fn scale_goes_through_the_scale_subresource() {
    let cluster = Cluster::with_manifests(SHOP);
    let out = cluster
        .kubectl(&["scale", "deploy/web", "-n", "shop", "--replicas=5"])
        .ok();
    assert_eq!(out.trim(), "deployment.apps/web scaled");
    assert_eq!(
        cluster.object(kinds::deployments(), "shop", "web")["spec"]["replicas"],
        5
    );
    assert!(
        cluster.sim.requests().iter().any(|r| r.path
            == "/apis/apps/v1/namespaces/shop/deployments/web/scale"
            && r.is_write()),
        "no write to the scale subresource"
    );
}

#[test]
fn subresources_answer_get_and_patch_through_kubectl() {
    let cluster = Cluster::with_manifests(SHOP);
    let scale: Value = serde_json::from_str(
        &cluster
            .kubectl(&[
                "get",
                "deploy",
                "web",
                "-n",
                "shop",
                "--subresource=scale",
                "-o",
                "json",
            ])
            .ok(),
    )
    .expect("JSON");
    assert_eq!(scale["kind"], "Scale");
    assert_eq!(scale["spec"]["replicas"], 2);
    assert_eq!(scale["status"]["selector"], "app=web");
    cluster
        .kubectl(&[
            "patch",
            "deploy",
            "web",
            "-n",
            "shop",
            "--subresource=scale",
            "--type=merge",
            "-p",
            r#"{"spec":{"replicas":3}}"#,
        ])
        .ok();
    assert_eq!(
        cluster.object(kinds::deployments(), "shop", "web")["spec"]["replicas"],
        3
    );
}

#[test]
fn replacing_with_a_stale_resource_version_is_a_conflict() {
    let cluster = Cluster::with_manifests(SHOP);
    cluster.sim.apply_yaml("apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: c\n  namespace: pay\ndata:\n  v: \"1\"\n").expect("applies");
    let old = cluster
        .kubectl(&["get", "cm", "c", "-n", "pay", "-o", "json"])
        .ok();
    cluster
        .kubectl(&["label", "cm", "c", "-n", "pay", "touched=yes"])
        .ok();
    let file = cluster.manifest_file("old-c.json", &old.replace("\"v\": \"1\"", "\"v\": \"2\""));
    let err = cluster
        .kubectl(&["replace", "-f", file.to_str().unwrap()])
        .fails();
    assert!(
        err.contains("Conflict") && err.contains("the object has been modified"),
        "{err}"
    );
    assert_eq!(
        cluster.object(kinds::configmaps(), "pay", "c")["data"]["v"],
        "1"
    );
}

#[test]
fn delete_removes_the_object_and_missing_objects_are_not_found() {
    let cluster = Cluster::with_manifests(SHOP);
    let out = cluster
        .kubectl(&["delete", "pod", "db-0", "-n", "pay"])
        .ok();
    assert_eq!(out.trim(), "pod \"db-0\" deleted");
    assert!(cluster.sim.get(kinds::pods(), "pay", "db-0").is_none());
    let missing = cluster
        .kubectl(&["delete", "pod", "db-0", "-n", "pay"])
        .fails();
    assert!(
        missing.contains("NotFound") && missing.contains("pods \"db-0\" not found"),
        "{missing}"
    );
}

#[test]
fn a_bad_token_is_unauthorized() {
    let cluster = Cluster::start(SimOptions::default());
    let text = std::fs::read_to_string(cluster.sim.kubeconfig_path()).expect("kubeconfig");
    let bad = cluster.manifest_file(
        "bad.kubeconfig",
        &text.replace(cluster.sim.token(), "not-the-token"),
    );
    let err = cluster.kubectl_as(&bad, &["get", "pods"]).fails();
    assert!(err.contains("You must be logged in to the server"), "{err}");
    assert!(
        cluster
            .sim
            .requests()
            .iter()
            .any(|r| r.status == 401 && r.user.is_empty())
    );
}

#[test]
fn a_restricted_user_is_forbidden_outside_its_role() {
    let cluster = Cluster::with_manifests(SHOP);
    let viewer = cluster.sim.add_user("viewer", Role::read_only());
    let pods = cluster
        .kubectl_as(&viewer, &["get", "pods", "-n", "pay", "-o", "name"])
        .ok();
    assert!(pods.contains("pod/db-0"), "{pods}");
    let err = cluster
        .kubectl_as(&viewer, &["label", "ns", "pay", "istio.io/rev=1-22-3"])
        .fails();
    assert!(
        err.contains(r#"namespaces "pay" is forbidden: User "viewer" cannot patch resource "namespaces" in API group "" at the cluster scope"#),
        "{err}"
    );
    let err = cluster
        .kubectl_as(
            &viewer,
            &["scale", "deploy/web", "-n", "shop", "--replicas=1"],
        )
        .fails();
    assert!(
        err.contains("forbidden") && err.contains("deployments/scale"),
        "{err}"
    );
    assert_eq!(
        label(
            &cluster.object(kinds::namespaces(), "", "pay"),
            "istio.io/rev"
        ),
        None
    );
    assert!(
        cluster
            .sim
            .requests()
            .iter()
            .any(|r| r.status == 403 && r.user == "viewer")
    );

    // `kubectl auth` asks the server, which answers from the same role.
    let can = |args: &[&str]| cluster.kubectl_as(&viewer, &[&["auth", "can-i"][..], args].concat());
    assert_eq!(can(&["list", "pods", "-A"]).ok().trim(), "yes");
    assert_eq!(
        can(&["patch", "deployments", "-n", "shop"]).stdout.trim(),
        "no"
    );
    let whoami = cluster.kubectl_as(&viewer, &["auth", "whoami"]).ok();
    assert!(whoami.contains("viewer"), "{whoami}");
}

#[test]
fn server_side_dry_runs_write_nothing() {
    let cluster = Cluster::with_manifests(SHOP);
    let before = cluster.store_version();
    cluster.sim.clear_requests();
    let dry = "--dry-run=server";
    cluster
        .kubectl(&[
            "label",
            "ns",
            "shop",
            "istio-injection-",
            "istio.io/rev=1-22-3",
            dry,
        ])
        .ok();
    cluster
        .kubectl(&["annotate", "deploy", "web", "-n", "shop", "a=b", dry])
        .ok();
    cluster
        .kubectl(&[
            "patch",
            "deploy",
            "web",
            "-n",
            "shop",
            "-p",
            r#"{"spec":{"replicas":4}}"#,
            dry,
        ])
        .ok();
    cluster
        .kubectl(&["scale", "deploy/web", "-n", "shop", "--replicas=4", dry])
        .ok();
    cluster
        .kubectl(&["delete", "pod", "db-0", "-n", "pay", dry])
        .ok();
    let cm = "apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: dry\n  namespace: pay\n";
    let out = cluster.kubectl_stdin(&["create", "-f", "-", dry], cm).ok();
    assert!(out.contains("created (server dry run)"), "{out}");

    assert_eq!(
        cluster.store_version(),
        before,
        "a dry run changed the store"
    );
    assert!(cluster.sim.get(kinds::configmaps(), "pay", "dry").is_none());
    assert_eq!(
        label(
            &cluster.object(kinds::namespaces(), "", "shop"),
            "istio-injection"
        ),
        Some("enabled")
    );
    let writes: Vec<_> = cluster
        .sim
        .requests()
        .into_iter()
        .filter(|r| r.is_write())
        .collect();
    assert_eq!(writes.len(), 6, "{writes:#?}");
    assert!(
        writes.iter().all(|r| r.is_dry_run() && r.status < 300),
        "{writes:#?}"
    );
}

#[test]
fn kubectl_retries_a_throttled_request_after_retry_after() {
    let cluster = Cluster::with_manifests(SHOP);
    cluster
        .sim
        .set_faults(Faults::new().rule(FaultRule::on("list", "pods").throttle(1).next(1)));
    cluster.sim.clear_requests();
    let out = cluster
        .kubectl(&["get", "pods", "-n", "pay", "-o", "name"])
        .ok();
    assert!(out.contains("pod/db-0"), "{out}");
    let statuses: Vec<u16> = cluster
        .sim
        .requests()
        .iter()
        .filter(|r| r.path == "/api/v1/namespaces/pay/pods")
        .map(|r| r.status)
        .collect();
    assert_eq!(statuses, [429, 200]);
}

#[test]
fn a_write_failed_after_store_is_stored_although_kubectl_reports_the_500() {
    let cluster = Cluster::with_manifests(SHOP);
    let file = mesh_sim::faults::file::FaultFile::parse(
        "rules:\n  - {verb: patch, resource: namespaces, name: shop, status: 500, afterStore: true, next: 1}\n",
    )
    .expect("the rule parses");
    cluster.sim.set_faults(file.faults);
    cluster.sim.clear_requests();
    let before = cluster.store_version();
    let err = cluster
        .kubectl(&["label", "ns", "shop", "chaos=stored"])
        .fails();
    assert!(err.contains("InternalError"), "{err}");
    let ns = cluster.object(kinds::namespaces(), "", "shop");
    assert_eq!(label(&ns, "chaos"), Some("stored"));
    assert!(cluster.store_version() > before, "nothing was stored");
    let patches: Vec<(u16, String)> = cluster
        .sim
        .requests()
        .iter()
        .filter(|r| r.method == "PATCH")
        .map(|r| (r.status, r.name.clone()))
        .collect();
    assert_eq!(patches, [(500, "shop".to_string())]);
    // The rule fired once: the next write is answered normally.
    cluster
        .kubectl(&["label", "ns", "shop", "chaos=again", "--overwrite"])
        .ok();
}

#[test]
fn raw_watch_from_a_compacted_version_gets_a_410_error_event() {
    let cluster = Cluster::with_manifests(SHOP);
    cluster.sim.with_world(|w| w.store.compact());
    let out = cluster
        .kubectl(&[
            "get",
            "--raw",
            "/api/v1/namespaces/pay/pods?watch=true&resourceVersion=1&timeoutSeconds=5",
        ])
        .ok();
    let event: Value =
        serde_json::from_str(out.lines().next().unwrap_or("")).expect("one JSON event");
    assert_eq!(event["type"], "ERROR");
    assert_eq!(event["object"]["code"], 410);
    assert_eq!(event["object"]["reason"], "Expired");
}

#[test]
fn raw_watch_without_a_version_starts_with_the_current_objects_and_ends_at_its_timeout() {
    let cluster = Cluster::with_manifests(SHOP);
    let started = Instant::now();
    let out = cluster
        .kubectl(&[
            "get",
            "--raw",
            "/api/v1/namespaces/pay/pods?watch=1&labelSelector=app%3Ddb&timeoutSeconds=1",
        ])
        .ok();
    assert!(started.elapsed() < Duration::from_secs(30));
    let events: Vec<Value> = out
        .lines()
        .map(|l| serde_json::from_str(l).expect("JSON event"))
        .collect();
    assert_eq!(events.len(), 1, "{out}");
    assert_eq!(events[0]["type"], "ADDED");
    assert_eq!(events[0]["object"]["metadata"]["name"], "db-0");
}

#[test]
fn a_watch_cut_by_a_fault_ends_after_that_many_events() {
    let cluster = Cluster::with_manifests(SHOP);
    cluster
        .sim
        .set_faults(Faults::new().rule(FaultRule::on("watch", "pods").cut_watch_after(1)));
    let started = Instant::now();
    let out = cluster
        .kubectl(&["get", "--raw", "/api/v1/pods?watch=true&timeoutSeconds=60"])
        .ok();
    assert!(
        started.elapsed() < Duration::from_secs(30),
        "the watch was not cut"
    );
    assert_eq!(out.lines().count(), 1, "{out}");
}

#[test]
fn a_streaming_list_ends_its_initial_events_with_an_annotated_bookmark() {
    let cluster = Cluster::with_manifests(SHOP);
    let out = cluster
        .kubectl(&[
            "get",
            "--raw",
            "/api/v1/namespaces/pay/pods?watch=1&sendInitialEvents=true&resourceVersionMatch=NotOlderThan&allowWatchBookmarks=true&timeoutSeconds=1",
        ])
        .ok();
    let events: Vec<Value> = out
        .lines()
        .map(|l| serde_json::from_str(l).expect("JSON event"))
        .collect();
    let types: Vec<&str> = events
        .iter()
        .take(3)
        .filter_map(|e| e["type"].as_str())
        .collect();
    assert_eq!(types, ["ADDED", "ADDED", "BOOKMARK"], "{out}");
    assert_eq!(
        events[2]["object"]["metadata"]["annotations"]["k8s.io/initial-events-end"],
        "true"
    );
}

#[test]
fn a_selector_watch_sees_objects_leave_and_enter_the_selection() {
    let cluster = Cluster::with_manifests(SHOP);
    let watch = std::thread::scope(|scope| {
        let watcher = scope.spawn(|| {
            cluster
                .kubectl(&[
                    "get",
                    "--raw",
                    "/api/v1/namespaces/pay/pods?watch=1&labelSelector=app%3Ddb&timeoutSeconds=3",
                ])
                .ok()
        });
        // Change labels only once the watch is being served.
        let started = Instant::now();
        while !cluster
            .sim
            .requests()
            .iter()
            .any(|r| r.query.contains("watch=1"))
        {
            assert!(
                started.elapsed() < Duration::from_secs(30),
                "the watch never started"
            );
            std::thread::sleep(Duration::from_millis(20));
        }
        cluster
            .kubectl(&[
                "label",
                "pod",
                "db-0",
                "-n",
                "pay",
                "app=old-db",
                "--overwrite",
            ])
            .ok();
        cluster
            .kubectl(&[
                "label",
                "pod",
                "cache-0",
                "-n",
                "pay",
                "app=db",
                "--overwrite",
            ])
            .ok();
        watcher.join().expect("the watcher thread")
    });
    let events: Vec<(String, String)> = watch
        .lines()
        .map(|l| serde_json::from_str::<Value>(l).expect("JSON event"))
        .map(|e| {
            (
                e["type"].as_str().unwrap_or("").to_string(),
                e["object"]["metadata"]["name"]
                    .as_str()
                    .unwrap_or("")
                    .to_string(),
            )
        })
        .collect();
    let expected = [("ADDED", "db-0"), ("DELETED", "db-0"), ("ADDED", "cache-0")];
    let expected: Vec<(String, String)> = expected
        .iter()
        .map(|(t, n)| (t.to_string(), n.to_string()))
        .collect();
    assert_eq!(events, expected, "{watch}");
}

// Rollouts: these need the controllers (Deployment → ReplicaSet → Pod,
// StatefulSet, DaemonSet) and Istio's injector.

const ROLLOUTS: &str = r#"
apiVersion: v1
kind: Namespace
metadata:
  name: apps
---
apiVersion: apps/v1
kind: StatefulSet
metadata:
  name: store
  namespace: apps
spec:
  replicas: 3
  serviceName: store
  selector:
    matchLabels: {app: store}
  template:
    metadata:
      labels: {app: store}
    spec:
      containers:
      - {name: store, image: redis:7}
---
apiVersion: apps/v1
kind: DaemonSet
metadata:
  name: agent
  namespace: apps
spec:
  selector:
    matchLabels: {app: agent}
  template:
    metadata:
      labels: {app: agent}
    spec:
      containers:
      - {name: agent, image: fluent-bit:3}
---
apiVersion: apps/v1
kind: Deployment
metadata:
  name: stuck
  namespace: apps
spec:
  replicas: 2
  progressDeadlineSeconds: 30
  selector:
    matchLabels: {app: stuck}
  template:
    metadata:
      labels: {app: stuck}
    spec:
      containers:
      - {name: app, image: nginx:1.27}
"#;

/// The `istio-proxy` images of the pods matching `selector` in `namespace`.
fn proxy_images(cluster: &Cluster, namespace: &str, selector: &str) -> Vec<String> {
    let out = cluster
        .kubectl(&[
            "get", "pods", "-n", namespace, "-l", selector, "-o",
            r#"jsonpath={range .items[*]}{range .spec.containers[?(@.name=="istio-proxy")]}{.image}{"\n"}{end}{range .spec.initContainers[?(@.name=="istio-proxy")]}{.image}{"\n"}{end}{end}"#,
        ])
        .ok();
    out.lines().map(str::to_string).collect()
}

#[test]
fn rollout_restart_then_status_succeeds_and_new_pods_carry_the_new_revisions_proxy() {
    let cluster = Cluster::start(SimOptions::default().scenario("canary"));
    // `pay` was relabelled to 1-22-3 without a restart: its pods still run 1.21.2.
    let before = proxy_images(&cluster, "pay", "app=payments");
    assert!(
        !before.is_empty() && before.iter().all(|i| i.ends_with(":1.21.2")),
        "{before:?}"
    );

    let out = cluster
        .kubectl(&["rollout", "restart", "deployment/payments", "-n", "pay"])
        .ok();
    assert_eq!(out.trim(), "deployment.apps/payments restarted");
    let status = cluster
        .kubectl(&[
            "rollout",
            "status",
            "deployment/payments",
            "-n",
            "pay",
            "--timeout=90s",
        ])
        .ok();
    assert!(status.contains("successfully rolled out"), "{status}");

    let after = proxy_images(&cluster, "pay", "app=payments");
    assert_eq!(after.len(), 2, "{after:?}");
    assert!(after.iter().all(|i| i.ends_with(":1.22.3")), "{after:?}");
    let d = cluster.object(kinds::deployments(), "pay", "payments");
    assert!(
        d.pointer("/spec/template/metadata/annotations/kubectl.kubernetes.io~1restartedAt")
            .is_some(),
        "{d}"
    );

    let history = cluster
        .kubectl(&["rollout", "history", "deployment/payments", "-n", "pay"])
        .ok();
    assert!(
        history
            .lines()
            .filter(|l| l.trim_start().starts_with(char::is_numeric))
            .count()
            >= 2,
        "{history}"
    );
    cluster
        .kubectl(&["rollout", "undo", "deployment/payments", "-n", "pay"])
        .ok();
    cluster
        .kubectl(&[
            "rollout",
            "status",
            "deployment/payments",
            "-n",
            "pay",
            "--timeout=90s",
        ])
        .ok();
}

#[test]
fn rollout_status_follows_statefulsets_and_daemonsets() {
    let cluster = Cluster::with_manifests(ROLLOUTS);
    for workload in ["statefulset/store", "daemonset/agent"] {
        cluster
            .kubectl(&["rollout", "status", workload, "-n", "apps", "--timeout=90s"])
            .ok();
        cluster
            .kubectl(&["rollout", "restart", workload, "-n", "apps"])
            .ok();
        let status = cluster
            .kubectl(&["rollout", "status", workload, "-n", "apps", "--timeout=90s"])
            .ok();
        // A StatefulSet's RollingUpdate is defaulted with `partition: 0`, so
        // kubectl reports it as a partitioned roll out, as on a real cluster.
        assert!(
            status.contains("partitioned roll out complete: 3 new pods have been updated")
                || status.contains("successfully rolled out"),
            "{workload}: {status}"
        );
    }
    let sts = cluster.object(kinds::statefulsets(), "apps", "store");
    assert_eq!(
        sts["status"]["currentRevision"], sts["status"]["updateRevision"],
        "{sts}"
    );
}

#[test]
fn a_stuck_rollout_fails_rollout_status_with_a_timeout() {
    let cluster = Cluster::with_manifests(ROLLOUTS);
    cluster
        .kubectl(&[
            "rollout",
            "status",
            "deployment/stuck",
            "-n",
            "apps",
            "--timeout=90s",
        ])
        .ok();
    // New pods of this template never become Ready.
    cluster
        .kubectl(&[
            "patch", "deployment", "stuck", "-n", "apps", "-p",
            r#"{"spec":{"template":{"metadata":{"annotations":{"mesh-sim.io/never-ready":"true"}}}}}"#,
        ])
        .ok();
    let err = cluster
        .kubectl(&[
            "rollout",
            "status",
            "deployment/stuck",
            "-n",
            "apps",
            "--timeout=3s",
        ])
        .fails();
    assert!(
        err.contains("timed out waiting for the condition")
            || err.contains("exceeded its progress deadline"),
        "{err}"
    );
    // Past its progress deadline, the Deployment says so as a real one does.
    cluster.sim.advance(Duration::from_secs(120));
    let d = cluster.object(kinds::deployments(), "apps", "stuck");
    let progressing = d["status"]["conditions"]
        .as_array()
        .and_then(|cs| cs.iter().find(|c| c["type"] == "Progressing"))
        .cloned()
        .unwrap_or(Value::Null);
    assert_eq!(progressing["reason"], "ProgressDeadlineExceeded", "{d}");
    let err = cluster
        .kubectl(&[
            "rollout",
            "status",
            "deployment/stuck",
            "-n",
            "apps",
            "--timeout=30s",
        ])
        .fails();
    assert!(err.contains("exceeded its progress deadline"), "{err}");
}

const ARGO: &str = r#"
apiVersion: v1
kind: Namespace
metadata:
  name: shop
---
apiVersion: argoproj.io/v1alpha1
kind: Rollout
metadata:
  name: web
  namespace: shop
spec:
  replicas: 2
  selector:
    matchLabels: {app: web}
  template:
    metadata:
      labels: {app: web}
    spec:
      containers:
      - {name: app, image: nginx:1.27}
  strategy:
    canary: {}
---
apiVersion: batch/v1
kind: CronJob
metadata:
  name: nightly
  namespace: shop
spec:
  schedule: "0 2 * * *"
  jobTemplate:
    spec:
      template:
        spec:
          restartPolicy: Never
          containers:
          - {name: report, image: busybox:1.36}
"#;

#[test]
fn rollouts_are_served_as_argo_installs_them_and_restart_through_a_merge_patch() {
    let cluster = Cluster::with_manifests(ARGO);
    let out = cluster.kubectl(&["get", "rollouts", "-n", "shop"]).ok();
    let header: Vec<&str> = out
        .lines()
        .next()
        .unwrap_or("")
        .split_whitespace()
        .collect();
    assert_eq!(
        header,
        [
            "NAME",
            "DESIRED",
            "CURRENT",
            "UP-TO-DATE",
            "AVAILABLE",
            "AGE"
        ]
    );
    let row: Vec<&str> = out
        .lines()
        .nth(1)
        .unwrap_or("")
        .split_whitespace()
        .collect();
    assert_eq!(&row[..5], ["web", "2", "2", "2", "2"], "{out}");
    // The short name, and the API group a plugin asks for.
    assert!(
        cluster
            .kubectl(&["get", "ro", "-n", "shop"])
            .ok()
            .contains("web")
    );
    let resources = cluster
        .kubectl(&["api-resources", "--api-group=argoproj.io"])
        .ok();
    assert!(
        resources.contains("rollouts") && resources.contains("argoproj.io/v1alpha1"),
        "{resources}"
    );

    // What `kubectl argo rollouts restart web` sends, with the time on the
    // cluster's clock (the simulated one runs ahead of the wall's): Argo
    // restarts only pods created before it.
    let at = cluster.sim.with_world(|w| {
        (w.clock.now() + chrono::Duration::seconds(1))
            .to_rfc3339_opts(chrono::SecondsFormat::Secs, true)
    });
    let before: Value = serde_json::from_str(
        &cluster
            .kubectl(&["get", "pods", "-n", "shop", "-l", "app=web", "-o", "json"])
            .ok(),
    )
    .expect("a pod list");
    cluster
        .kubectl(&[
            "patch",
            "rollout",
            "web",
            "-n",
            "shop",
            "--type",
            "merge",
            "-p",
            &format!(r#"{{"spec":{{"restartAt":"{at}"}}}}"#),
        ])
        .ok();
    cluster
        .kubectl(&[
            "wait",
            "rollout/web",
            "-n",
            "shop",
            &format!("--for=jsonpath={{.status.restartedAt}}={at}"),
            "--timeout=60s",
        ])
        .ok();
    cluster
        .kubectl(&[
            "wait",
            "rollout/web",
            "-n",
            "shop",
            "--for=jsonpath={.status.phase}=Healthy",
            "--timeout=60s",
        ])
        .ok();
    let after: Value = serde_json::from_str(
        &cluster
            .kubectl(&["get", "pods", "-n", "shop", "-l", "app=web", "-o", "json"])
            .ok(),
    )
    .expect("a pod list");
    let names = |list: &Value| -> Vec<String> {
        list["items"]
            .as_array()
            .into_iter()
            .flatten()
            .map(|p| p["metadata"]["name"].as_str().unwrap_or("").to_string())
            .collect()
    };
    assert!(
        names(&after).iter().all(|n| !names(&before).contains(n)),
        "every pod was replaced: {:?} then {:?}",
        names(&before),
        names(&after)
    );
    assert!(
        cluster
            .sim
            .requests()
            .iter()
            .all(|r| !(r.path.ends_with("/eviction") && r.is_write())),
        "the controller evicts inside the cluster, not through this client"
    );

    let out = cluster.kubectl(&["get", "cronjobs", "-n", "shop"]).ok();
    let header: Vec<&str> = out
        .lines()
        .next()
        .unwrap_or("")
        .split_whitespace()
        .collect();
    assert_eq!(
        header,
        [
            "NAME", "SCHEDULE", "TIMEZONE", "SUSPEND", "ACTIVE", "LAST", "SCHEDULE", "AGE"
        ]
    );
    assert!(
        out.lines().nth(1).unwrap_or("").contains("0 2 * * *"),
        "{out}"
    );
}

#[test]
fn without_argo_rollouts_its_kind_is_not_served() {
    let cluster = Cluster::start(SimOptions::default().argo_rollouts(false));
    let err = cluster.kubectl(&["get", "rollouts", "-A"]).fails();
    assert!(
        err.contains("the server doesn't have a resource type \"rollouts\""),
        "{err}"
    );
    let out = cluster
        .kubectl(&["get", "--raw", "/apis/argoproj.io/v1alpha1/rollouts"])
        .fails();
    assert!(
        out.contains("NotFound") || out.contains("not found"),
        "{out}"
    );
}

#[test]
fn gateway_api_kinds_are_served_and_a_relabelled_gateway_is_re_rendered() {
    let cluster = Cluster::start(SimOptions::default().scenario("canary"));
    let classes = cluster.kubectl(&["get", "gatewayclasses"]).ok();
    for class in ["istio", "istio-waypoint", "istio.io/gateway-controller"] {
        assert!(classes.contains(class), "{classes}");
    }
    let gateways = cluster.kubectl(&["get", "gtw", "-A"]).ok();
    let header = gateways.lines().next().unwrap_or("");
    for column in ["CLASS", "ADDRESS", "PROGRAMMED"] {
        assert!(header.contains(column), "{gateways}");
    }
    assert!(
        gateways
            .lines()
            .any(|l| l.contains("public") && l.contains("istio") && l.contains("True")),
        "{gateways}"
    );
    let routes = cluster.kubectl(&["get", "httproutes", "-n", "shop"]).ok();
    assert!(routes.contains("shop.example.com"), "{routes}");

    cluster
        .kubectl(&[
            "label",
            "gateway",
            "-n",
            "edge",
            "public",
            "istio.io/rev=1-22-3",
            "--overwrite",
        ])
        .ok();
    cluster
        .kubectl(&[
            "rollout",
            "status",
            "deployment/public-istio",
            "-n",
            "edge",
            "--timeout=60s",
        ])
        .ok();
    let image = cluster
        .kubectl(&[
            "get",
            "deployment",
            "public-istio",
            "-n",
            "edge",
            "-o",
            "jsonpath={.spec.template.spec.containers[0].image}",
        ])
        .ok();
    assert_eq!(image, "docker.io/istio/proxyv2:1.22.3");
    // A strategic merge patch of a custom resource is refused, as the API
    // server refuses it; kubectl's own label command used a merge patch.
    let refused = cluster
        .kubectl(&[
            "patch",
            "gateway",
            "-n",
            "edge",
            "public",
            "--type=strategic",
            "-p",
            r#"{"metadata":{"labels":{"a":"b"}}}"#,
        ])
        .fails();
    assert!(
        refused.contains("415") || refused.contains("unknown format"),
        "{refused}"
    );
}

#[test]
fn without_the_gateway_api_crds_kubectl_knows_no_gateways() {
    let cluster = Cluster::start(SimOptions::default().without_gateway_api());
    let stderr = cluster.kubectl(&["get", "gateways", "-A"]).fails();
    assert!(
        stderr.contains("the server doesn't have a resource type \"gateways\""),
        "{stderr}"
    );
    let resources = cluster.kubectl(&["api-resources"]).ok();
    assert!(
        !resources.contains("gateway.networking.k8s.io"),
        "{resources}"
    );
}

/// `kubectl cordon`, `drain` and `uncordon` on the `ambient` scenario: the
/// drain evicts through the eviction subresource (PodDisruptionBudgets
/// honoured), leaves the DaemonSets' pods, and the evicted pods come back
/// on the other nodes, captured by ambient again.
#[test]
fn kubectl_cordon_drain_and_uncordon_move_pods_off_a_node_through_evictions() {
    let cluster = Cluster::start(SimOptions::default().scenario("ambient"));
    let pods_on = |node: &str| -> Vec<Value> {
        let out = cluster
            .kubectl(&[
                "get",
                "pods",
                "-A",
                "--field-selector",
                &format!("spec.nodeName={node}"),
                "-o",
                "json",
            ])
            .ok();
        let list: Value = serde_json::from_str(&out).expect("a pod list");
        list["items"].as_array().cloned().unwrap_or_default()
    };
    let before = pods_on("sim-node-1");
    assert!(
        before
            .iter()
            .any(|p| p["metadata"]["namespace"] == "bookinfo"),
        "the scenario puts ambient pods on sim-node-1"
    );

    let out = cluster.kubectl(&["cordon", "sim-node-1"]).ok();
    assert!(out.contains("node/sim-node-1 cordoned"), "{out}");
    let nodes = cluster.kubectl(&["get", "nodes"]).ok();
    assert!(
        nodes
            .lines()
            .any(|l| l.starts_with("sim-node-1") && l.contains("Ready,SchedulingDisabled")),
        "{nodes}"
    );

    let drained = cluster.kubectl(&[
        "drain",
        "sim-node-1",
        "--ignore-daemonsets",
        "--timeout=60s",
    ]);
    let out = drained.ok();
    assert!(out.contains("evicted"), "{out}");
    let evictions = cluster
        .sim
        .requests()
        .iter()
        .filter(|r| r.method == "POST" && r.path.ends_with("/eviction"))
        .count();
    assert!(evictions > 0, "drain uses the eviction subresource");
    assert!(
        cluster
            .sim
            .requests()
            .iter()
            .any(|r| r.path == "/api/v1/pods"
                && r.response_type == "application/vnd.kubernetes.protobuf"),
        "drain lists the node's pods in protobuf"
    );
    let left = pods_on("sim-node-1");
    assert!(
        left.iter()
            .all(|p| p["metadata"]["ownerReferences"][0]["kind"] == "DaemonSet"),
        "only DaemonSet pods stay: {:?}",
        left.iter()
            .map(|p| p["metadata"]["name"].clone())
            .collect::<Vec<_>>()
    );
    // Their replacements run elsewhere, captured again.
    cluster.sim.settle();
    let bookinfo: Value = serde_json::from_str(
        &cluster
            .kubectl(&["get", "pods", "-n", "bookinfo", "-o", "json"])
            .ok(),
    )
    .unwrap();
    for pod in bookinfo["items"].as_array().unwrap() {
        assert_ne!(pod["spec"]["nodeName"], "sim-node-1");
        if pod["metadata"]["labels"]["istio.io/dataplane-mode"] != "none" {
            assert_eq!(
                pod["metadata"]["annotations"]["ambient.istio.io/redirection"],
                "enabled"
            );
        }
    }

    let out = cluster.kubectl(&["uncordon", "sim-node-1"]).ok();
    assert!(out.contains("node/sim-node-1 uncordoned"), "{out}");
    let node = cluster.object(mesh_sim::resources::kinds::nodes(), "", "sim-node-1");
    assert!(node["spec"].get("unschedulable").is_none_or(|u| u == false));
}
