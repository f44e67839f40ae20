//! Completion from the cluster, through the real kubectl: kubectl 1.26+ runs
//! `kubectl_complete-mesh_upgrade` from PATH with `__complete <words>`, and
//! the helper asks the plugin, which looks the candidates up in the current
//! context (namespaces, revisions and tags, workloads, Services) or in the
//! kubeconfig (contexts).
//!
//! ```text
//!  kubectl __complete mesh-upgrade … ─► helper ─► kubectl-mesh_upgrade __complete …
//!                                                  └─► mesh-sim (one short lookup)
//! ```
//!
//! A server that never answers must still end the completion, with no error
//! text among the candidates: the test holds a listener that accepts no
//! connection, so a completion without its bound would never return.

use super::*;

/// kubectl's `__complete` with the helper and the plugin on PATH.
struct Completer {
    dir: tempfile::TempDir,
    env: Env,
}

impl Completer {
    fn new(kubeconfig: &str) -> Self {
        let dir = plugin_dir();
        let env = Env::new()
            .var("KUBECONFIG", kubeconfig)
            .var("PATH", &path_with(dir.path()));
        let helper = env.plugin(&["completion", "kubectl"]);
        assert_eq!(helper.code, 0, "{helper:#?}");
        let helper_path = dir.path().join("kubectl_complete-mesh_upgrade");
        std::fs::write(&helper_path, &helper.stdout).expect("writing the helper");
        make_executable(&helper_path);
        Completer { dir, env }
    }

    /// The candidates kubectl prints for `kubectl mesh-upgrade <words>`
    /// (descriptions dropped), after checking the directive line ends it
    /// and nothing went to stderr.
    fn complete(&self, words: &[&str]) -> Vec<String> {
        let mut args = vec!["__complete", "mesh-upgrade"];
        args.extend_from_slice(words);
        let run = self.env.run(KUBECTL, &args);
        assert_eq!(run.code, 0, "{words:?}: {run:#?}");
        let lines: Vec<&str> = run.stdout.lines().collect();
        let (last, candidates) = lines.split_last().expect("a directive line");
        assert!(last.starts_with(':'), "{words:?}: {run:#?}");
        assert!(
            !run.stdout.to_lowercase().contains("error"),
            "{words:?}: an error among the candidates: {run:#?}"
        );
        // kubectl notes what it does on stderr; the plugin adds nothing.
        assert!(
            run.stderr.lines().all(|l| l.is_empty()
                || l.starts_with("[Debug]")
                || l.starts_with("Completion ended with directive")),
            "{words:?}: {run:#?}"
        );
        let _ = &self.dir;
        candidates
            .iter()
            .map(|c| c.split('\t').next().unwrap_or_default().to_string())
            .collect()
    }
}

/// A second kubeconfig with a context `staging` on `server`.
fn second_kubeconfig(dir: &Path, server: &str) -> PathBuf {
    let path = dir.join("staging.yaml");
    let yaml = format!(
        "apiVersion: v1\nkind: Config\ncurrent-context: staging\nclusters:\n- name: staging\n  cluster: {{server: \"{server}\", insecure-skip-tls-verify: true}}\ncontexts:\n- name: staging\n  context: {{cluster: staging, user: staging, namespace: shop}}\nusers:\n- name: staging\n  user: {{token: staging-token}}\n"
    );
    std::fs::write(&path, yaml).expect("writing the second kubeconfig");
    path
}

#[test]
fn kubectl_completes_namespaces_revisions_workloads_services_and_contexts_from_the_cluster() {
    let sim = canary();
    let other = tempfile::tempdir().expect("a directory");
    let staging = second_kubeconfig(other.path(), "https://127.0.0.1:1");
    let kubeconfig = std::env::join_paths([sim.kubeconfig_path(), staging.as_path()])
        .expect("a KUBECONFIG list");
    let completer = Completer::new(&kubeconfig.to_string_lossy());

    let namespaces = completer.complete(&["restart-sidecars", "-n", ""]);
    for expected in [
        "istio-system",
        "istio-gateways",
        "shop",
        "pay",
        "kube-system",
    ] {
        assert!(
            namespaces.iter().any(|n| n == expected),
            "{expected}: {namespaces:?}"
        );
    }
    assert_eq!(
        completer.complete(&["status", "-n", "shop,pa"]),
        ["shop,pay"]
    );

    let targets = completer.complete(&["relabel", "-n", "shop", "--to", ""]);
    for expected in ["1-21-2", "1-22-3", "default-injection"] {
        assert!(
            targets.iter().any(|t| t == expected),
            "{expected}: {targets:?}"
        );
    }
    let tags: Vec<&String> = targets
        .iter()
        .filter(|t| !t.starts_with("1-") && *t != "default-injection")
        .collect();
    assert!(
        !tags.is_empty(),
        "the canary scenario has tags: {targets:?}"
    );
    assert_eq!(
        completer.complete(&["relabel", "-A", "--from", "1-22"]),
        ["1-22-3"]
    );
    let gateway_targets = completer.complete(&["gateway-switch", "--to", ""]);
    assert_eq!(gateway_targets, ["1-21-2", "1-22-3"]);
    assert_eq!(
        completer.complete(&["tag", "set", "prod-"]),
        ["prod-canary", "prod-stable"]
    );
    assert_eq!(
        completer.complete(&["tag", "set", "prod-stable", "--revision", ""]),
        ["1-21-2", "1-22-3"]
    );
    assert_eq!(
        completer.complete(&["tag", "remove", ""]),
        ["default", "prod-canary", "prod-stable"]
    );
    assert_eq!(
        completer.complete(&["status", "--require-unused", "1-21"]),
        ["1-21-2"]
    );

    let workloads = completer.complete(&["restart-sidecars", "-n", "shop", ""]);
    for expected in [
        "deployment/frontend",
        "deployment/catalog",
        "deployment/recommendations",
        "daemonset/log-agent",
    ] {
        assert!(
            workloads.iter().any(|w| w == expected),
            "{expected}: {workloads:?}"
        );
    }
    assert!(
        workloads.iter().all(|w| !w.contains("payments")),
        "only shop's workloads: {workloads:?}"
    );
    let rest = completer.complete(&["restart-sidecars", "-n", "pay", "--kind", "statefulset", ""]);
    assert_eq!(rest, ["statefulset/ledger"]);

    let services = completer.complete(&["gateway-switch", "-n", "istio-gateways", "--service", ""]);
    assert_eq!(services, ["istio-ingressgateway"]);
    let gateways = completer.complete(&["gateway-switch", "-n", "edge", "--gateway", ""]);
    assert_eq!(gateways, ["public"]);
    let waypoints = completer.complete(&["gateway-switch", "-n", "ambient-apps", "--gateway", "w"]);
    assert_eq!(waypoints, ["waypoint"]);
    // A Gateway's istio.io/rev may name a tag.
    let targets = completer.complete(&["gateway-switch", "--gateway", "public", "--to", "prod-"]);
    assert_eq!(targets, ["prod-canary", "prod-stable"]);

    // ztunnel-roll's nodes, minus those already named.
    assert_eq!(
        completer.complete(&["ztunnel-roll", "sim-node-2", ""]),
        ["sim-node-1", "sim-node-3"]
    );
    assert_eq!(
        completer.complete(&["ztunnel-roll", "--nodes"]),
        ["--nodes-at-once"]
    );

    assert_eq!(
        completer.complete(&["status", "--context", ""]),
        ["mesh-sim", "staging"]
    );
    assert_eq!(
        completer.complete(&["restart-sidecars", "--dry-run="]),
        ["--dry-run=none", "--dry-run=client", "--dry-run=server"]
    );
    assert_eq!(
        completer.complete(&["restart-sidecars", "--kind", "d"]),
        ["deployment", "daemonset"]
    );
    assert_eq!(completer.complete(&["status", "--wa"]), ["--watch"]);
}

#[test]
fn completion_against_a_server_that_never_answers_ends_with_no_candidates_and_no_error() {
    // Accepts connections into its backlog and never answers them.
    let silent = std::net::TcpListener::bind("127.0.0.1:0").expect("a local listener");
    let server = format!("https://{}", silent.local_addr().expect("its address"));
    let dir = tempfile::tempdir().expect("a directory");
    let kubeconfig = second_kubeconfig(dir.path(), &server);
    let completer = Completer::new(&kubeconfig.to_string_lossy());
    for words in [
        &["restart-sidecars", "-n", ""][..],
        &["relabel", "--to", ""],
        &["restart-sidecars", ""],
        &["gateway-switch", "--service", ""],
    ] {
        assert!(completer.complete(words).is_empty(), "{words:?}");
    }
    // The kubeconfig alone still answers.
    assert_eq!(completer.complete(&["--context", ""]), ["staging"]);
    drop(silent);
}

#[test]
fn the_bash_completion_script_completes_from_the_cluster_through_the_same_entry() {
    let sim = canary();
    let completer = Completer::new(&sim.kubeconfig_path().display().to_string());
    let script = completer.env.plugin(&["completion", "bash"]);
    assert_eq!(script.code, 0, "{script:#?}");
    let script_path = completer.dir.path().join("kubectl-mesh_upgrade.bash");
    std::fs::write(&script_path, &script.stdout).expect("writing the script");
    // What bash hands the function: the line up to the cursor, and the
    // words split at bash's break characters (`=` is one).
    let complete = |line: &str, words: &[&str]| -> Vec<String> {
        let program = r#"source "$1"; COMP_LINE="$2"; COMP_POINT=${#COMP_LINE}
            COMP_WORDS=("${@:3}"); COMP_CWORD=$(( ${#COMP_WORDS[@]} - 1 ))
            _kubectl_mesh_upgrade; printf '%s\n' "${COMPREPLY[@]}""#;
        let mut args = vec!["-c", program, "bash", script_path.to_str().unwrap(), line];
        args.extend_from_slice(words);
        let run = completer.env.run("/usr/bin/bash", &args);
        assert_eq!(run.code, 0, "{line:?}: {run:#?}");
        assert!(run.stderr.is_empty(), "{line:?}: {run:#?}");
        run.stdout
            .lines()
            .filter(|l| !l.is_empty())
            .map(str::to_string)
            .collect()
    };
    let namespaces = complete(
        "kubectl-mesh_upgrade restart-sidecars -n ",
        &["kubectl-mesh_upgrade", "restart-sidecars", "-n", ""],
    );
    assert!(namespaces.iter().any(|n| n == "shop"), "{namespaces:?}");
    assert_eq!(
        complete(
            "kubectl-mesh_upgrade relabel --to 1-22",
            &["kubectl-mesh_upgrade", "relabel", "--to", "1-22"],
        ),
        ["1-22-3"]
    );
    assert_eq!(
        complete(
            "kubectl-mesh_upgrade restart-sidecars --dry-run=s",
            &[
                "kubectl-mesh_upgrade",
                "restart-sidecars",
                "--dry-run",
                "=",
                "s"
            ],
        ),
        ["server"]
    );
}

#[test]
fn the_zsh_and_fish_completion_scripts_ask_the_same_entry() {
    for shell in ["zsh", "fish"] {
        let run = Env::new().plugin(&["completion", shell]);
        assert_eq!(run.code, 0, "{shell}: {run:#?}");
        assert!(
            run.stdout.contains("kubectl-mesh_upgrade __complete"),
            "{shell}: {}",
            run.stdout
        );
    }
}
