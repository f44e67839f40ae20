//! `status --watch` end to end: a Deployment restarted while the view is
//! open is followed from stale through rolling to up-to-date, as a stream of
//! JSON documents through the real kubectl, as changed rows in a pipe, and
//! as a screen redrawn at a terminal; Ctrl-C ends each with exit 130.
//!
//! Kinds beyond the apps ones are followed too (a Rollout made while the
//! view is open appears), and a cluster without Argo Rollouts or the Gateway
//! API is watched for the rest, its 404s ending nothing.
//!
//! The simulated clock is stopped before the restart, so the rollout stays
//! half done (its new pod not Ready) until the test lets time run: the
//! `rolling` state is there to be seen however the test is scheduled, and
//! nothing here asserts on how long anything took.

use std::io::{BufRead, BufReader, Read};
use std::process::{Child, Stdio};
use std::sync::mpsc;
use std::time::{Duration, Instant};

use mesh_sim::{Sim, SimOptions};
use serde_json::Value;

use super::terminal::{Terminal, assert_no_escape, terminal_env};
use super::{Env, KUBECTL, PLUGIN, Run, canary, path_with, plugin_dir};

/// How long a test waits for the next thing it expects before it fails,
/// so that a broken run ends instead of hanging.
const PATIENCE: Duration = Duration::from_secs(60);

/// `kubectl rollout restart deployment/payments -n pay`, as a person would
/// restart it: its pods run 1.21.2 and their namespace selects 1-22-3.
fn restart_payments(sim: &Sim) {
    let run = Env::new().kubeconfig(sim.kubeconfig_path()).run(
        KUBECTL,
        &["rollout", "restart", "deployment/payments", "-n", "pay"],
    );
    assert_eq!(run.code, 0, "{run:#?}");
}

/// Send SIGINT (Ctrl-C) to `child`.
fn interrupt(child: &Child) {
    let status = std::process::Command::new("kill")
        .args(["-INT", &child.id().to_string()])
        .status()
        .expect("kill runs");
    assert!(status.success());
}

/// The state of payments in a status document.
fn payments_state(document: &Value) -> String {
    document["workloads"]
        .as_array()
        .expect("workloads")
        .iter()
        .find(|w| w["name"] == "payments")
        .map(|w| w["state"].as_str().unwrap_or_default().to_string())
        .expect("payments is in the document")
}

/// Whether `wanted` occur in `seen` in this order (not necessarily next to
/// each other).
fn in_order(seen: &[String], wanted: &[&str]) -> bool {
    let mut wanted = wanted.iter().peekable();
    for state in seen {
        if wanted.peek().is_some_and(|w| *w == state) {
            wanted.next();
        }
    }
    wanted.peek().is_none()
}

/// The plugin's paginated LISTs (`limit=`) all came before its first
/// WATCH: after the first screen, only watches.
fn assert_no_list_after_the_first_watch(sim: &Sim) {
    let requests = sim.requests();
    let first_watch = requests
        .iter()
        .position(|r| r.query.contains("watch=true"))
        .expect("the view watches");
    let late_lists: Vec<String> = requests[first_watch..]
        .iter()
        .filter(|r| r.method == "GET" && r.query.contains("limit=") && !r.query.contains("watch"))
        .map(|r| format!("{}?{}", r.path, r.query))
        .collect();
    assert!(
        late_lists.is_empty(),
        "LISTs after the watches started: {late_lists:#?}"
    );
}

#[test]
fn through_kubectl_the_json_stream_shows_a_restarted_workload_go_stale_rolling_up_to_date() {
    let sim = canary();
    sim.pause_clock();
    let dir = plugin_dir();
    let env = Env::new()
        .kubeconfig(sim.kubeconfig_path())
        .var("PATH", &path_with(dir.path()));
    let mut child = env
        .command(
            KUBECTL,
            &[
                "mesh-upgrade",
                "status",
                "-n",
                "pay",
                "--watch",
                "-o",
                "json",
            ],
        )
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("kubectl starts");
    // One JSON document per change, one after the other.
    let (sender, documents) = mpsc::channel::<Value>();
    let stdout = child.stdout.take().expect("stdout");
    let reader = std::thread::spawn(move || {
        for document in serde_json::Deserializer::from_reader(stdout).into_iter::<Value>() {
            let document = document.expect("stdout is a stream of JSON documents");
            if sender.send(document).is_err() {
                break;
            }
        }
    });
    let next = || documents.recv_timeout(PATIENCE).expect("another document");

    let first = next();
    assert_eq!(first["kind"], "Status");
    let mut states = vec![payments_state(&first)];
    assert_eq!(states[0], "stale", "{first:#}");

    restart_payments(&sim);
    while states.last().map(String::as_str) != Some("rolling") {
        states.push(payments_state(&next()));
    }
    // Time runs again: the new pods become Ready, the old ones go.
    sim.set_clock_speed(50.0);
    let last = loop {
        let document = next();
        states.push(payments_state(&document));
        if states.last().map(String::as_str) == Some("up-to-date") {
            break document;
        }
    };
    assert!(
        in_order(&states, &["stale", "rolling", "up-to-date"]),
        "{states:?}"
    );
    assert_eq!(last["summary"]["workloads"]["upToDate"], 1, "{last:#}");
    assert_no_list_after_the_first_watch(&sim);

    interrupt(&child);
    let status = child.wait().expect("the view ends");
    reader.join().expect("the reader ends");
    let mut stderr = String::new();
    child
        .stderr
        .take()
        .expect("stderr")
        .read_to_string(&mut stderr)
        .expect("stderr");
    assert_eq!(status.code(), Some(130), "{stderr}");
    assert_eq!(stderr, "", "nothing but documents, and no error");
}

#[test]
fn in_a_pipe_each_change_prints_the_changed_rows_without_an_escape_byte_until_ctrl_c() {
    let sim = canary();
    sim.pause_clock();
    // A terminal type that allows colour: a pipe must still get none.
    let env = terminal_env(&sim, "xterm-256color");
    let mut child = env
        .command(PLUGIN, &["status", "-n", "pay", "-w"])
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("the plugin starts");
    let (sender, lines) = mpsc::channel::<String>();
    let stdout = child.stdout.take().expect("stdout");
    let reader = std::thread::spawn(move || {
        for line in BufReader::new(stdout).lines() {
            if sender.send(line.expect("a line")).is_err() {
                break;
            }
        }
    });
    let mut shown: Vec<String> = Vec::new();
    let mut wait_for = |what: &str, done: &dyn Fn(&str) -> bool| {
        let deadline = Instant::now() + PATIENCE;
        loop {
            let line = lines
                .recv_timeout(deadline.saturating_duration_since(Instant::now()))
                .unwrap_or_else(|_| panic!("never printed {what}:\n{}", shown.join("\n")));
            let found = done(&line);
            shown.push(line);
            if found {
                return shown.len();
            }
        }
    };
    let first_screen_ends = wait_for("the first screen's last next step", &|l| {
        l.ends_with("kubectl mesh-upgrade restart-sidecars -n pay --delete-pods")
    });
    restart_payments(&sim);
    wait_for("payments rolling", &|l| {
        l.contains("deploy/payments") && l.contains("rolling")
    });
    sim.set_clock_speed(50.0);
    wait_for("payments up to date", &|l| {
        l.contains("deploy/payments") && l.contains("up-to-date")
    });

    interrupt(&child);
    let status = child.wait().expect("the view ends");
    reader.join().expect("the reader ends");
    // The rest of the last update (its summary), printed with its rows.
    shown.extend(lines.try_iter());
    let mut stderr = String::new();
    child
        .stderr
        .take()
        .expect("stderr")
        .read_to_string(&mut stderr)
        .expect("stderr");
    let stdout = shown.join("\n");
    let run = Run {
        code: status.code().unwrap_or(-1),
        stdout: stdout.clone(),
        stderr,
    };
    assert_eq!(run.code, 130, "{run:#?}");
    assert_no_escape("status --watch in a pipe", &run);

    // After the first screen: the changed rows only, under their header,
    // each one line; the unchanged ledger row is not printed again.
    let updates = &shown[first_screen_ends..];
    assert!(
        updates.iter().any(|l| l.starts_with("NAMESPACE  WORKLOAD")),
        "{stdout}"
    );
    assert!(
        updates.iter().all(|l| !l.contains("sts/ledger")),
        "an unchanged row was printed again:\n{stdout}"
    );
    assert!(
        updates
            .iter()
            .any(|l| l.starts_with("2 workloads: 1 up-to-date, 1 stale")),
        "the summary is printed again when it changes:\n{stdout}"
    );
}

#[test]
fn at_a_terminal_the_screen_is_redrawn_as_a_rollout_progresses_and_ctrl_c_ends_it() {
    const CLEAR: &str = kubectl_mesh_upgrade::output::CLEAR_SCREEN;
    let sim = canary();
    sim.pause_clock();
    let env = terminal_env(&sim, "xterm-256color");
    let mut terminal = Terminal::start(&env, &["status", "-n", "pay", "--watch"], 120);
    let last_screen = |shown: &str| shown.rsplit(CLEAR).next().unwrap_or_default().to_string();
    terminal.wait_for("the first screen", |shown| {
        shown.contains(CLEAR) && shown.contains("watching for changes. Ctrl-C to stop.")
    });
    restart_payments(&sim);
    terminal.wait_for("payments rolling on a redrawn screen", |shown| {
        let screen = last_screen(shown);
        screen.contains("deploy/payments") && screen.contains("rolling") && screen.contains("since")
    });
    sim.set_clock_speed(50.0);
    terminal.wait_for("payments up to date on a redrawn screen", |shown| {
        let screen = last_screen(shown);
        screen
            .lines()
            .any(|l| l.contains("deploy/payments") && l.contains("up-to-date"))
            && screen.contains("Ctrl-C to stop.")
    });
    terminal.type_keys(b"\x03");
    let transcript = terminal.finish();
    assert_eq!(transcript.code, 130, "{}", transcript.text);
    let screens = transcript.text.matches(CLEAR).count();
    assert!(
        screens >= 3,
        "the first screen and one per update, each drawn over the last ({screens}):\n{:?}",
        transcript.text
    );
    let screen = last_screen(&transcript.text);
    assert!(
        screen.contains("\x1b[1mWORKLOADS\x1b[0m"),
        "a terminal gets colour: {screen:?}"
    );
    assert!(!screen.contains("error"), "{screen}");
}

/// `status <args> --watch -o json`, run as the plugin, read document by
/// document.
struct JsonView {
    child: Child,
    documents: mpsc::Receiver<Value>,
    reader: std::thread::JoinHandle<()>,
}

impl JsonView {
    fn start(sim: &Sim, args: &[&str]) -> Self {
        let args: Vec<&str> = std::iter::once("status")
            .chain(args.iter().copied())
            .chain(["--watch", "-o", "json"])
            .collect();
        let mut child = Env::new()
            .kubeconfig(sim.kubeconfig_path())
            .command(PLUGIN, &args)
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .expect("the plugin starts");
        let (sender, documents) = mpsc::channel::<Value>();
        let stdout = child.stdout.take().expect("stdout");
        let reader = std::thread::spawn(move || {
            for document in serde_json::Deserializer::from_reader(stdout).into_iter::<Value>() {
                let document = document.expect("stdout is a stream of JSON documents");
                if sender.send(document).is_err() {
                    break;
                }
            }
        });
        JsonView {
            child,
            documents,
            reader,
        }
    }

    /// The next document that `wanted` holds of, after those that do not.
    fn until(&self, what: &str, wanted: impl Fn(&Value) -> bool) -> Value {
        let deadline = Instant::now() + PATIENCE;
        loop {
            let document = self
                .documents
                .recv_timeout(deadline.saturating_duration_since(Instant::now()))
                .unwrap_or_else(|_| panic!("no document with {what}"));
            if wanted(&document) {
                return document;
            }
        }
    }

    /// Ctrl-C; the exit code and stderr.
    fn stop(mut self) -> (Option<i32>, String) {
        interrupt(&self.child);
        let status = self.child.wait().expect("the view ends");
        drop(self.documents);
        self.reader.join().expect("the reader ends");
        let mut stderr = String::new();
        self.child
            .stderr
            .take()
            .expect("stderr")
            .read_to_string(&mut stderr)
            .expect("stderr");
        (status.code(), stderr)
    }
}

/// The (path, status) of every WATCH the plugin made.
fn watches(sim: &Sim) -> Vec<(String, u16)> {
    sim.requests()
        .into_iter()
        .filter(|r| r.query.contains("watch=true"))
        .map(|r| (r.path, r.status))
        .collect()
}

#[test]
fn a_rollout_made_while_the_view_is_open_appears_in_the_next_document() {
    let sim = canary();
    sim.clear_requests();
    let view = JsonView::start(&sim, &["-n", "pay"]);
    let is_reviews = |w: &Value| w["kind"] == "Rollout" && w["name"] == "reviews";
    let first = view.until("the first screen", |_| true);
    assert!(
        !first["workloads"]
            .as_array()
            .unwrap()
            .iter()
            .any(is_reviews),
        "{first:#}"
    );
    // The view watches from its LISTs before the Rollout is made.
    let deadline = Instant::now() + PATIENCE;
    while !watches(&sim)
        .iter()
        .any(|(path, _)| path == "/apis/argoproj.io/v1alpha1/namespaces/pay/rollouts")
    {
        assert!(
            Instant::now() < deadline,
            "never watched Rollouts: {:?}",
            watches(&sim)
        );
        std::thread::sleep(Duration::from_millis(10));
    }
    sim.apply_yaml(
        "apiVersion: argoproj.io/v1alpha1\nkind: Rollout\nmetadata: {name: reviews, namespace: pay}\n\
         spec:\n  replicas: 2\n  selector: {matchLabels: {app: reviews}}\n  strategy: {canary: {}}\n\
         \x20 template:\n    metadata: {labels: {app: reviews}}\n\
         \x20   spec: {containers: [{name: reviews, image: ghcr.io/example/reviews:2.0}]}\n",
    )
    .expect("the Rollout applies");
    let document = view.until("the reviews Rollout", |d| {
        d["workloads"].as_array().unwrap().iter().any(is_reviews)
    });
    assert_eq!(document["kind"], "Status");
    assert_no_list_after_the_first_watch(&sim);
    let (code, stderr) = view.stop();
    assert_eq!(code, Some(130), "{stderr}");
    assert_eq!(stderr, "");
}

#[test]
fn without_argo_rollouts_or_the_gateway_api_the_view_watches_every_other_kind() {
    // in-place: canary carries Gateway API objects, which a cluster
    // without the CRDs cannot hold.
    let sim = Sim::start(
        SimOptions::default()
            .scenario("in-place")
            .argo_rollouts(false)
            .without_gateway_api(),
    )
    .expect("the in-place scenario starts");
    sim.pause_clock();
    sim.clear_requests();
    let view = JsonView::start(&sim, &["-n", "pay"]);
    let first = view.until("the first screen", |_| true);
    assert_eq!(first["gatewayApiInstalled"], false, "{first:#}");
    assert_eq!(payments_state(&first), "stale");
    // The 404s ended nothing: a restart is still followed.
    restart_payments(&sim);
    view.until("payments rolling", |d| payments_state(d) == "rolling");

    let watched = watches(&sim);
    assert!(
        watched.iter().all(|(path, status)| *status == 200
            && !path.starts_with("/apis/argoproj.io/")
            && !path.starts_with("/apis/gateway.networking.k8s.io/")),
        "only what was listed is watched: {watched:#?}"
    );
    for path in [
        "/api/v1/nodes",
        "/apis/batch/v1/namespaces/pay/jobs",
        "/apis/batch/v1/namespaces/pay/cronjobs",
        "/api/v1/namespaces/pay/pods",
    ] {
        assert!(
            watched.iter().any(|(p, _)| p == path),
            "{path} is watched: {watched:#?}"
        );
    }
    let not_found: Vec<String> = sim
        .requests()
        .into_iter()
        .filter(|r| r.status == 404)
        .map(|r| r.path)
        .collect();
    assert!(
        not_found
            .iter()
            .all(|path| path.starts_with("/apis/argoproj.io/")
                || path.starts_with("/apis/gateway.networking.k8s.io/")),
        "{not_found:#?}"
    );
    let (code, stderr) = view.stop();
    assert_eq!(code, Some(130), "{stderr}");
    assert_eq!(stderr, "", "no warning for a kind not installed");
}
