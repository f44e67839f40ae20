//! `mesh-sim serve` as a process, the way a chaos script drives it: faults
//! from a file, turned on and off with SIGHUP, and the request log file,
//! checked through the real `kubectl`.
//!
//! The server is the built binary run as a child (killed when the test ends,
//! whatever happens); the test waits for the lines it prints (serving, and
//! `faults: N rules` after each reload) instead of sleeping, and counts
//! requests in the log file instead of timing anything.

use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::mpsc::{Receiver, RecvTimeoutError};
use std::time::Duration;

use serde_json::Value;

const KUBECTL: &str = "/usr/bin/kubectl";
/// A hang guard for waiting on the server's lines, not a timed assertion.
const DEADLINE: Duration = Duration::from_secs(120);

/// A `mesh-sim serve` child process, killed on drop.
struct Served {
    child: Child,
    lines: Receiver<String>,
    dir: tempfile::TempDir,
}

impl Served {
    fn start(faults: &str) -> Served {
        assert!(
            Path::new(KUBECTL).exists(),
            "{KUBECTL} is missing: these tests drive the real kubectl"
        );
        let dir = tempfile::tempdir().expect("a temporary directory");
        std::fs::write(dir.path().join("faults.yaml"), faults).expect("writing the fault file");
        let mut child = Command::new(env!("CARGO_BIN_EXE_mesh-sim"))
            .args(["serve", "--scenario", "canary", "--faults"])
            .arg(dir.path().join("faults.yaml"))
            .arg("--request-log")
            .arg(dir.path().join("requests.jsonl"))
            .arg("--kubeconfig")
            .arg(dir.path().join("kubeconfig"))
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::null())
            .spawn()
            .expect("mesh-sim starts");
        let stdout = child.stdout.take().expect("piped stdout");
        let (tx, lines) = std::sync::mpsc::channel();
        std::thread::spawn(move || {
            for line in BufReader::new(stdout).lines().map_while(Result::ok) {
                if tx.send(line).is_err() {
                    return;
                }
            }
        });
        let served = Served { child, lines, dir };
        served.wait_for_line("export KUBECONFIG=");
        served
    }

    fn path(&self, file: &str) -> PathBuf {
        self.dir.path().join(file)
    }

    /// Waits for the next line starting with `prefix`; returns it.
    fn wait_for_line(&self, prefix: &str) -> String {
        loop {
            match self.lines.recv_timeout(DEADLINE) {
                Ok(line) if line.starts_with(prefix) => return line,
                Ok(_) => {}
                Err(RecvTimeoutError::Timeout) => {
                    panic!("mesh-sim printed no line starting with {prefix:?}")
                }
                Err(RecvTimeoutError::Disconnected) => {
                    panic!("mesh-sim exited before printing {prefix:?}")
                }
            }
        }
    }

    /// Writes new rules, sends SIGHUP and waits for the reload line.
    fn reload(&self, faults: &str) -> String {
        std::fs::write(self.path("faults.yaml"), faults).expect("writing the fault file");
        let status = Command::new("kill")
            .args(["-HUP", &self.child.id().to_string()])
            .status()
            .expect("kill runs");
        assert!(status.success());
        self.wait_for_line("faults: ")
    }

    fn kubectl(&self, args: &[&str]) -> (bool, String) {
        let output = Command::new(KUBECTL)
            .args(args)
            .env("KUBECONFIG", self.path("kubeconfig"))
            .env("KUBECACHEDIR", self.path("cache"))
            .env("HOME", self.dir.path())
            .stdin(Stdio::null())
            .output()
            .expect("kubectl runs");
        let text = format!(
            "{}{}",
            String::from_utf8_lossy(&output.stdout),
            String::from_utf8_lossy(&output.stderr)
        );
        (output.status.success(), text)
    }

    /// Every line of the request log so far.
    fn log(&self) -> Vec<Value> {
        std::fs::read_to_string(self.path("requests.jsonl"))
            .expect("the request log exists")
            .lines()
            .map(|l| serde_json::from_str(l).expect("each line is JSON"))
            .collect()
    }

    /// The statuses of the logged requests for `path`, from line `from` on.
    fn statuses(&self, from: usize, path: &str) -> Vec<u64> {
        self.log()[from..]
            .iter()
            .filter(|r| r["path"] == path)
            .map(|r| r["status"].as_u64().unwrap_or(0))
            .collect()
    }
}

impl Drop for Served {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

const PODS: &str = "/api/v1/namespaces/shop/pods";

#[test]
fn sighup_turns_a_503_storm_on_and_off_and_kubectl_retries_then_gives_up() {
    let served = Served::start("rules: []\n");
    let (ok, out) = served.kubectl(&["get", "pods", "-n", "shop", "-o", "name"]);
    assert!(ok && out.contains("pod/"), "{out}");

    // A storm: every pod list answered 503 with Retry-After: 0. kubectl's
    // client retries a 5xx that carries Retry-After ten times, then fails.
    let line = served.reload(
        "rules:\n  - {verb: list, resource: pods, namespace: shop, status: 503, retryAfter: 0}\n",
    );
    assert!(line.starts_with("faults: 1 rules"), "{line}");
    let from = served.log().len();
    let (ok, out) = served.kubectl(&["get", "pods", "-n", "shop", "-o", "name"]);
    assert!(!ok && out.contains("ServiceUnavailable"), "{out}");
    assert_eq!(served.statuses(from, PODS), [503; 11]);

    // A short burst: three 503s, then kubectl's fourth try succeeds.
    served
        .reload("rules:\n  - {verb: list, resource: pods, status: 503, retryAfter: 0, next: 3}\n");
    let from = served.log().len();
    let (ok, out) = served.kubectl(&["get", "pods", "-n", "shop", "-o", "name"]);
    assert!(ok && out.contains("pod/"), "{out}");
    assert_eq!(served.statuses(from, PODS), [503, 503, 503, 200]);

    // A 500 without Retry-After is not retried.
    served.reload("rules:\n  - {verb: list, resource: pods, status: 500}\n");
    let from = served.log().len();
    let (ok, out) = served.kubectl(&["get", "pods", "-n", "shop", "-o", "name"]);
    assert!(!ok && out.contains("InternalError"), "{out}");
    assert_eq!(served.statuses(from, PODS), [500]);

    // Off again.
    let line = served.reload("# no faults\n");
    assert!(line.starts_with("faults: 0 rules"), "{line}");
    let from = served.log().len();
    let (ok, out) = served.kubectl(&["get", "pods", "-n", "shop", "-o", "name"]);
    assert!(ok && out.contains("pod/"), "{out}");
    assert_eq!(served.statuses(from, PODS), [200]);
}

#[test]
fn a_fault_file_that_does_not_parse_on_sighup_keeps_the_rules_in_force() {
    let served = Served::start("rules:\n  - {verb: list, resource: pods, status: 500}\n");
    std::fs::write(
        served.path("faults.yaml"),
        "rules:\n  - {verb: list, resourse: pods}\n",
    )
    .expect("writing the fault file");
    let status = Command::new("kill")
        .args(["-HUP", &served.child.id().to_string()])
        .status()
        .expect("kill runs");
    assert!(status.success());
    // The next good reload is the next `faults:` line: none came between.
    let (ok, out) = served.kubectl(&["get", "pods", "-n", "shop"]);
    assert!(!ok && out.contains("InternalError"), "{out}");
    let line = served.reload("rules: []\n");
    assert!(line.starts_with("faults: 0 rules"), "{line}");
}

#[test]
fn a_fault_file_with_an_unknown_field_stops_the_start_naming_the_field() {
    let dir = tempfile::tempdir().expect("a temporary directory");
    let file = dir.path().join("faults.yaml");
    std::fs::write(
        &file,
        "rules:\n  - {verb: get, resource: pods, status: 500, rat: 0.1}\n",
    )
    .expect("writing the fault file");
    let output = Command::new(env!("CARGO_BIN_EXE_mesh-sim"))
        .args(["serve", "--faults"])
        .arg(&file)
        .arg("--kubeconfig")
        .arg(dir.path().join("kubeconfig"))
        .stdin(Stdio::null())
        .output()
        .expect("mesh-sim runs");
    assert!(!output.status.success());
    let err = String::from_utf8_lossy(&output.stderr);
    assert!(err.contains("rules[0]: unknown field `rat`"), "{err}");
    assert!(output.stdout.is_empty(), "it served anyway");
}

#[test]
fn the_request_log_names_the_object_of_every_write_including_a_create() {
    let served = Served::start("rules: []\n");
    let (ok, out) = served.kubectl(&["create", "configmap", "chaos", "-n", "shop"]);
    assert!(ok, "{out}");
    let (ok, out) = served.kubectl(&["label", "ns", "shop", "chaos=yes"]);
    assert!(ok, "{out}");
    let writes: Vec<(String, String, String, u64)> = served
        .log()
        .iter()
        .filter(|r| r["method"] != "GET")
        .map(|r| {
            let s = |k: &str| r[k].as_str().unwrap_or("").to_string();
            (
                s("method"),
                s("namespace"),
                s("name"),
                r["status"].as_u64().unwrap_or(0),
            )
        })
        .collect();
    assert_eq!(
        writes,
        [
            ("POST".into(), "shop".into(), "chaos".into(), 201),
            ("PATCH".into(), String::new(), "shop".into(), 200),
        ]
    );
}
