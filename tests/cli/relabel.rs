//! `relabel` end to end: the built binary against the canary scenario.
//!
//! The canary scenario's namespaces: `shop` (`istio-injection=enabled`, the
//! default revision 1-21-2 through the `default` tag), `pay` and `search`
//! (`istio.io/rev=1-22-3`), `cart` (`istio.io/rev=prod-stable` -> 1-21-2),
//! `legacy` (both labels: `istio-injection` wins -> 1-21-2), `batch`
//! (`prod-canary` -> 1-22-3), `ambient-apps`, `no-mesh` and `typo`.

use std::collections::BTreeMap;
use std::process::Stdio;
use std::time::{Duration, Instant};

use mesh_sim::resources::kinds;
use mesh_sim::world::WriteOptions;
use mesh_sim::{FaultRule, Faults, RequestRecord, Sim};
use serde_json::{Value, json};

use super::{Env, PLUGIN, Run, canary, parse_json, plugin_on};

const RECORD: &str = "mesh-upgrade.io/previous-injection-labels";

fn namespace(sim: &Sim, name: &str) -> Value {
    sim.get(kinds::namespaces(), "", name)
        .unwrap_or_else(|| panic!("namespace {name} exists"))
}

fn labels(sim: &Sim, name: &str) -> BTreeMap<String, String> {
    serde_json::from_value(namespace(sim, name)["metadata"]["labels"].clone()).unwrap_or_default()
}

fn annotations(sim: &Sim, name: &str) -> BTreeMap<String, String> {
    serde_json::from_value(namespace(sim, name)["metadata"]["annotations"].clone())
        .unwrap_or_default()
}

/// The namespace's labels without the one the API server adds.
fn own_labels(sim: &Sim, name: &str) -> BTreeMap<String, String> {
    let mut labels = labels(sim, name);
    labels.remove("kubernetes.io/metadata.name");
    labels
}

fn map(pairs: &[(&str, &str)]) -> BTreeMap<String, String> {
    pairs
        .iter()
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .collect()
}

/// Change a namespace directly in the store, as another client would.
fn edit_namespace(sim: &Sim, name: &str, edit: impl FnOnce(&mut Value)) {
    sim.with_world(|world| {
        let resource = kinds::namespaces();
        let mut object = (*world
            .store
            .get(resource, "", name)
            .expect("namespace exists"))
        .clone();
        edit(&mut object);
        world
            .update(resource, object, &WriteOptions::default())
            .expect("the namespace is updated");
    });
}

fn writes(sim: &Sim) -> Vec<RequestRecord> {
    sim.requests()
        .into_iter()
        .filter(|r| r.is_write())
        .collect()
}

fn namespace_patches(sim: &Sim, name: &str) -> Vec<RequestRecord> {
    let path = format!("/api/v1/namespaces/{name}");
    sim.requests()
        .into_iter()
        .filter(|r| r.method == "PATCH" && r.path == path)
        .collect()
}

fn relabel(sim: &Sim, args: &[&str]) -> Run {
    let mut all = vec!["relabel"];
    all.extend_from_slice(args);
    plugin_on(sim, &all)
}

// ---------------------------------------------------------------- selection

#[test]
fn relabelling_one_namespace_moves_it_records_its_labels_and_touches_nothing_else() {
    let sim = canary();
    edit_namespace(&sim, "shop", |ns| {
        ns["metadata"]["labels"]["team"] = json!("web");
        ns["metadata"]["annotations"] = json!({"owner": "payments"});
    });
    sim.clear_requests();

    let run = relabel(&sim, &["-n", "shop", "--to", "1-22-3", "--yes"]);
    assert_eq!(run.code, 0, "{run:#?}");

    assert_eq!(
        own_labels(&sim, "shop"),
        map(&[("istio.io/rev", "1-22-3"), ("team", "web")])
    );
    assert_eq!(
        annotations(&sim, "shop"),
        map(&[
            ("owner", "payments"),
            (
                RECORD,
                r#"{"istio-injection":"enabled","istio.io/rev":null}"#
            )
        ])
    );
    // One write: a merge patch naming only the two labels and the record,
    // with the resourceVersion it was computed from.
    let writes = writes(&sim);
    assert_eq!(writes.len(), 1, "{writes:#?}");
    assert_eq!(writes[0].method, "PATCH");
    assert_eq!(writes[0].path, "/api/v1/namespaces/shop");
    assert_eq!(writes[0].content_type, "application/merge-patch+json");
    let body: Value = serde_json::from_str(&writes[0].body).unwrap();
    let metadata = body["metadata"].as_object().unwrap();
    assert_eq!(body.as_object().unwrap().len(), 1, "{body}");
    assert!(metadata["resourceVersion"].is_string(), "{body}");
    assert_eq!(
        metadata["labels"],
        json!({"istio-injection": null, "istio.io/rev": "1-22-3"})
    );
    assert_eq!(
        metadata["annotations"],
        json!({RECORD: r#"{"istio-injection":"enabled","istio.io/rev":null}"#})
    );
    assert_eq!(metadata.len(), 3, "{body}");

    for expected in [
        "Relabelled 1 namespace to 1-22-3:",
        "Running pods keep their current proxy until they are restarted",
        "kubectl mesh-upgrade restart-sidecars -n shop",
    ] {
        assert!(
            run.stdout.contains(expected),
            "{expected:?}:\n{}",
            run.stdout
        );
    }
}

#[test]
fn status_shows_the_pods_of_a_relabelled_namespace_as_stale() {
    let sim = canary();
    let run = relabel(&sim, &["-n", "shop", "--to", "1-22-3", "--yes"]);
    assert_eq!(run.code, 0, "{run:#?}");
    let status = parse_json(&plugin_on(&sim, &["status", "-n", "shop", "-o", "json"]));
    let frontend = status["workloads"]
        .as_array()
        .unwrap()
        .iter()
        .find(|w| w["name"] == "frontend")
        .expect("frontend is reported");
    assert_eq!(frontend["state"], "stale", "{frontend:#}");
    assert_eq!(frontend["expectedRevision"], "1-22-3");
}

#[test]
fn a_namespace_list_moves_each_namespace_to_a_tag() {
    let sim = canary();
    let run = relabel(&sim, &["-n", "shop,cart", "--to", "prod-canary", "--yes"]);
    assert_eq!(run.code, 0, "{run:#?}");
    assert_eq!(
        own_labels(&sim, "shop"),
        map(&[("istio.io/rev", "prod-canary")])
    );
    assert_eq!(
        own_labels(&sim, "cart"),
        map(&[("istio.io/rev", "prod-canary")])
    );
    assert_eq!(
        annotations(&sim, "cart")[RECORD],
        r#"{"istio-injection":null,"istio.io/rev":"prod-stable"}"#
    );
}

#[test]
fn a_label_selector_selects_namespaces_by_their_labels() {
    let sim = canary();
    for name in ["shop", "search"] {
        edit_namespace(&sim, name, |ns| {
            ns["metadata"]["labels"]["tier"] = json!("frontend")
        });
    }
    sim.clear_requests();
    let run = relabel(&sim, &["-l", "tier=frontend", "--to", "1-22-3", "--yes"]);
    assert_eq!(run.code, 0, "{run:#?}");
    assert_eq!(
        own_labels(&sim, "shop"),
        map(&[("istio.io/rev", "1-22-3"), ("tier", "frontend")])
    );
    // search was already there: listed, not patched.
    assert!(
        run.stdout.contains("already labelled istio.io/rev=1-22-3"),
        "{}",
        run.stdout
    );
    let patched: Vec<String> = writes(&sim).iter().map(|w| w.path.clone()).collect();
    assert_eq!(patched, ["/api/v1/namespaces/shop"]);
    assert_eq!(
        own_labels(&sim, "cart"),
        map(&[("istio.io/rev", "prod-stable")])
    );
}

#[test]
fn from_moves_every_namespace_on_the_default_revision_including_injection_enabled_ones() {
    let sim = canary();
    let run = relabel(&sim, &["-A", "--from", "1-21-2", "--to", "1-22-3", "--yes"]);
    assert_eq!(run.code, 0, "{run:#?}");
    for name in ["shop", "cart", "legacy"] {
        assert_eq!(
            own_labels(&sim, name),
            map(&[("istio.io/rev", "1-22-3")]),
            "{name} ends with only istio.io/rev"
        );
    }
    // Not on 1-21-2: untouched, and not even mentioned.
    assert_eq!(
        own_labels(&sim, "batch"),
        map(&[("istio.io/rev", "prod-canary")])
    );
    assert_eq!(own_labels(&sim, "typo"), map(&[("istio.io/rev", "1-22-4")]));
    assert!(own_labels(&sim, "no-mesh").is_empty());
    assert!(!run.stdout.contains("batch"), "{}", run.stdout);
}

#[test]
fn from_a_tag_selects_the_namespaces_of_its_revision_as_json() {
    let sim = canary();
    let run = relabel(
        &sim,
        &[
            "-A",
            "--from",
            "prod-stable",
            "--to",
            "1-22-3",
            "--dry-run",
            "-o",
            "json",
        ],
    );
    assert_eq!(run.code, 0, "{run:#?}");
    let plan = parse_json(&run);
    assert_eq!(plan["kind"], "RelabelPlan");
    assert_eq!(
        plan["from"],
        json!({"name": "prod-stable", "revision": "1-21-2"})
    );
    let changed: Vec<&str> = plan["changes"]
        .as_array()
        .unwrap()
        .iter()
        .map(|c| c["namespace"].as_str().unwrap())
        .collect();
    assert_eq!(changed, ["cart", "legacy", "shop"]);
}

#[test]
fn a_namespace_that_does_not_exist_is_an_error_and_nothing_is_written() {
    let sim = canary();
    sim.clear_requests();
    let run = relabel(&sim, &["-n", "shop,shpo", "--to", "1-22-3", "--yes"]);
    assert_eq!(run.code, 1, "{run:#?}");
    assert!(
        run.stderr.contains("namespace \"shpo\" does not exist"),
        "{}",
        run.stderr
    );
    assert!(writes(&sim).is_empty());
}

#[test]
fn all_namespaces_without_from_is_a_usage_error() {
    let sim = canary();
    sim.clear_requests();
    let run = relabel(&sim, &["-A", "--to", "1-22-3", "--yes"]);
    assert_eq!(run.code, 2, "{run:#?}");
    assert!(run.stderr.contains("needs --from"), "{}", run.stderr);
    assert!(sim.requests().is_empty());
}

// ---------------------------------------------------------------- the target

#[test]
fn a_missing_target_is_refused_with_the_revisions_and_tags_that_exist() {
    let sim = canary();
    sim.clear_requests();
    let run = relabel(&sim, &["-n", "shop", "--to", "1-23-0", "--yes"]);
    assert_eq!(run.code, 5, "{run:#?}");
    for expected in [
        "1-23-0",
        "1-21-2 (1.21.2)",
        "1-22-3 (1.22.3)",
        "prod-canary -> 1-22-3",
    ] {
        assert!(
            run.stderr.contains(expected),
            "{expected:?}: {}",
            run.stderr
        );
    }
    assert!(writes(&sim).is_empty());
}

#[test]
fn an_unready_target_is_refused_unless_forced() {
    let sim = canary();
    sim.with_world(|world| {
        let resource = kinds::deployments();
        let mut istiod = (*world
            .store
            .get(resource, "istio-system", "istiod-1-22-3")
            .expect("istiod"))
        .clone();
        istiod["spec"]["replicas"] = json!(0);
        world
            .update(resource, istiod, &WriteOptions::default())
            .expect("istiod scaled to zero");
    });
    sim.settle();
    sim.clear_requests();

    let run = relabel(&sim, &["-n", "shop", "--to", "1-22-3", "--yes"]);
    assert_eq!(run.code, 5, "{run:#?}");
    assert!(run.stderr.contains("no Ready pod"), "{}", run.stderr);
    assert!(run.stderr.contains("--force"), "{}", run.stderr);
    assert!(writes(&sim).is_empty());

    let run = relabel(&sim, &["-n", "shop", "--to", "prod-canary", "--yes"]);
    assert_eq!(run.code, 5, "a tag of that revision too: {run:#?}");

    let run = relabel(&sim, &["-n", "shop", "--to", "1-22-3", "--force", "--yes"]);
    assert_eq!(run.code, 0, "{run:#?}");
    assert!(run.stdout.contains("istiod NOT Ready"), "{}", run.stdout);
    assert_eq!(own_labels(&sim, "shop"), map(&[("istio.io/rev", "1-22-3")]));
}

#[test]
fn default_injection_goes_back_to_istio_injection_enabled() {
    let sim = canary();
    let run = relabel(
        &sim,
        &["-n", "search", "--to", "default-injection", "--yes"],
    );
    assert_eq!(run.code, 0, "{run:#?}");
    assert_eq!(
        own_labels(&sim, "search"),
        map(&[("istio-injection", "enabled")])
    );
    assert!(
        run.stdout.contains("the default revision, 1-21-2"),
        "{}",
        run.stdout
    );
}

// ---------------------------------------------------------------- exclusions

#[test]
fn excluded_namespaces_are_left_alone_and_each_says_why() {
    let sim = canary();
    sim.apply_yaml(
        "apiVersion: v1\nkind: Namespace\nmetadata:\n  name: off\n  labels:\n    istio-injection: disabled\n",
    )
    .expect("namespace off");
    let run = relabel(
        &sim,
        &[
            "-l",
            "!istio.io/rev",
            "--to",
            "1-22-3",
            "--dry-run",
            "-o",
            "json",
        ],
    );
    assert_eq!(run.code, 0, "{run:#?}");
    let plan = parse_json(&run);
    let skipped: BTreeMap<String, String> = plan["skipped"]
        .as_array()
        .unwrap()
        .iter()
        .map(|s| {
            (
                s["namespace"].as_str().unwrap().to_string(),
                s["reason"].as_str().unwrap().to_string(),
            )
        })
        .collect();
    assert_eq!(
        skipped,
        BTreeMap::from(
            [
                ("ambient-apps", "ambient"),
                ("istio-system", "control-plane-namespace"),
                ("kube-node-lease", "system-namespace"),
                ("kube-public", "system-namespace"),
                ("kube-system", "system-namespace"),
                ("off", "injection-disabled"),
            ]
            .map(|(k, v)| (k.to_string(), v.to_string()))
        )
    );
    for skip in plan["skipped"].as_array().unwrap() {
        assert!(
            skip["message"]
                .as_str()
                .unwrap()
                .ends_with("name it with -n and --force to relabel it"),
            "{skip}"
        );
    }
}

#[test]
fn an_excluded_namespace_named_without_force_is_refused_and_with_force_relabelled() {
    let sim = canary();
    sim.clear_requests();
    let run = relabel(&sim, &["-n", "kube-system,shop", "--to", "1-22-3", "--yes"]);
    assert_eq!(run.code, 5, "{run:#?}");
    assert!(
        run.stdout.contains("a Kubernetes system namespace"),
        "{}",
        run.stdout
    );
    assert!(run.stderr.contains("pass --force"), "{}", run.stderr);
    assert!(writes(&sim).is_empty(), "nothing is written, not even shop");

    let run = relabel(
        &sim,
        &[
            "-n",
            "kube-system,ambient-apps",
            "--to",
            "1-22-3",
            "--force",
            "--yes",
        ],
    );
    assert_eq!(run.code, 0, "{run:#?}");
    assert_eq!(
        own_labels(&sim, "kube-system"),
        map(&[("istio.io/rev", "1-22-3")])
    );
    assert_eq!(
        own_labels(&sim, "ambient-apps"),
        map(&[
            ("istio.io/dataplane-mode", "ambient"),
            ("istio.io/rev", "1-22-3"),
            ("istio.io/use-waypoint", "waypoint")
        ])
    );
}

// ---------------------------------------------------------------- undo

#[test]
fn undo_restores_exactly_the_labels_that_were_there_including_none() {
    let sim = canary();
    let run = relabel(
        &sim,
        &["-n", "shop,no-mesh,legacy", "--to", "1-22-3", "--yes"],
    );
    assert_eq!(run.code, 0, "{run:#?}");
    assert_eq!(
        own_labels(&sim, "no-mesh"),
        map(&[("istio.io/rev", "1-22-3")])
    );

    let run = relabel(&sim, &["-n", "shop,no-mesh,legacy", "--undo", "--yes"]);
    assert_eq!(run.code, 0, "{run:#?}");
    assert_eq!(
        own_labels(&sim, "shop"),
        map(&[("istio-injection", "enabled")])
    );
    assert!(own_labels(&sim, "no-mesh").is_empty());
    assert_eq!(
        own_labels(&sim, "legacy"),
        map(&[("istio-injection", "enabled"), ("istio.io/rev", "1-22-3")])
    );
    for name in ["shop", "no-mesh", "legacy"] {
        assert!(
            !annotations(&sim, name).contains_key(RECORD),
            "{name}'s record is removed"
        );
    }
}

#[test]
fn undo_after_two_relabels_returns_to_the_labels_before_the_first() {
    let sim = canary();
    for to in ["1-22-3", "prod-canary"] {
        let run = relabel(&sim, &["-n", "shop", "--to", to, "--yes"]);
        assert_eq!(run.code, 0, "{run:#?}");
    }
    assert_eq!(
        annotations(&sim, "shop")[RECORD],
        r#"{"istio-injection":"enabled","istio.io/rev":null}"#,
        "the first record is kept"
    );
    let run = relabel(&sim, &["-n", "shop", "--undo", "--yes"]);
    assert_eq!(run.code, 0, "{run:#?}");
    assert_eq!(
        own_labels(&sim, "shop"),
        map(&[("istio-injection", "enabled")])
    );
}

#[test]
fn undo_of_every_namespace_restores_only_the_relabelled_ones() {
    let sim = canary();
    let run = relabel(&sim, &["-n", "cart,search", "--to", "prod-canary", "--yes"]);
    assert_eq!(run.code, 0, "{run:#?}");
    sim.clear_requests();
    let run = relabel(&sim, &["-A", "--undo", "--yes"]);
    assert_eq!(run.code, 0, "{run:#?}");
    // Namespaces are patched concurrently: the order of the writes is not
    // part of the contract, the set is.
    let mut patched: Vec<String> = writes(&sim).iter().map(|w| w.path.clone()).collect();
    patched.sort();
    assert_eq!(
        patched,
        ["/api/v1/namespaces/cart", "/api/v1/namespaces/search"]
    );
    assert_eq!(
        own_labels(&sim, "cart"),
        map(&[("istio.io/rev", "prod-stable")])
    );
    assert_eq!(
        own_labels(&sim, "search"),
        map(&[("istio.io/rev", "1-22-3")])
    );
}

#[test]
fn undo_of_a_namespace_never_relabelled_is_a_clear_no_op() {
    let sim = canary();
    sim.clear_requests();
    let run = relabel(&sim, &["-n", "cart", "--undo", "--yes"]);
    assert_eq!(run.code, 0, "{run:#?}");
    assert!(
        run.stdout
            .contains("never relabelled by mesh-upgrade: nothing to undo"),
        "{}",
        run.stdout
    );
    assert!(writes(&sim).is_empty());
}

// ---------------------------------------------------------------- dry runs

#[test]
fn a_client_dry_run_writes_nothing() {
    let sim = canary();
    sim.clear_requests();
    let run = relabel(&sim, &["-n", "shop", "--to", "1-22-3", "--dry-run"]);
    assert_eq!(run.code, 0, "{run:#?}");
    assert!(
        run.stdout
            .contains("Relabel 1 namespace to revision 1-22-3"),
        "{}",
        run.stdout
    );
    assert!(writes(&sim).is_empty());
    assert_eq!(
        own_labels(&sim, "shop"),
        map(&[("istio-injection", "enabled")])
    );
}

#[test]
fn a_server_dry_run_sends_the_patch_with_dry_run_and_stores_nothing() {
    let sim = canary();
    sim.clear_requests();
    let run = relabel(
        &sim,
        &[
            "-n",
            "shop",
            "--to",
            "1-22-3",
            "--dry-run=server",
            "-o",
            "json",
        ],
    );
    assert_eq!(run.code, 0, "{run:#?}");
    let report = parse_json(&run);
    assert_eq!(report["kind"], "RelabelReport");
    assert_eq!(report["serverDryRun"], true);
    assert_eq!(report["results"][0]["state"], "rehearsed");
    let writes = writes(&sim);
    assert_eq!(writes.len(), 1);
    assert!(writes[0].is_dry_run(), "{:?}", writes[0]);
    assert_eq!(
        own_labels(&sim, "shop"),
        map(&[("istio-injection", "enabled")])
    );
    assert!(!annotations(&sim, "shop").contains_key(RECORD));
}

#[test]
fn without_a_terminal_and_without_yes_it_refuses_and_writes_nothing() {
    let sim = canary();
    sim.clear_requests();
    let run = relabel(&sim, &["-n", "shop", "--to", "1-22-3"]);
    assert_eq!(run.code, 5, "{run:#?}");
    assert!(run.stderr.contains("pass --yes"), "{}", run.stderr);
    assert!(writes(&sim).is_empty());
}

// ---------------------------------------------------------------- conflicts

#[test]
fn conflicting_writes_are_re_read_and_retried() {
    let sim = canary();
    sim.set_faults(Faults::new().conflict_first_writes("namespaces", 2));
    sim.clear_requests();
    let run = relabel(&sim, &["-n", "shop", "--to", "1-22-3", "--yes"]);
    assert_eq!(run.code, 0, "{run:#?}");
    let statuses: Vec<u16> = namespace_patches(&sim, "shop")
        .iter()
        .map(|p| p.status)
        .collect();
    assert_eq!(statuses, [409, 409, 200]);
    let rereads = sim
        .requests()
        .iter()
        .filter(|r| r.method == "GET" && r.path == "/api/v1/namespaces/shop")
        .count();
    assert_eq!(rereads, 2);
    assert_eq!(own_labels(&sim, "shop"), map(&[("istio.io/rev", "1-22-3")]));
    assert!(run.stdout.contains("after 2 conflicts"), "{}", run.stdout);
}

#[test]
fn a_concurrent_change_of_another_label_is_kept() {
    let sim = canary();
    // The first patch waits in the server long enough for another client
    // to change the namespace after the plugin read it.
    sim.set_faults(
        Faults::new().rule(
            FaultRule::on("patch", "namespaces")
                .latency(Duration::from_millis(1500))
                .next(1),
        ),
    );
    sim.clear_requests();
    let child = Env::new()
        .kubeconfig(sim.kubeconfig_path())
        .command(
            PLUGIN,
            &["relabel", "-n", "shop", "--to", "1-22-3", "--yes"],
        )
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("the plugin starts");

    let started = Instant::now();
    let listed = || {
        sim.requests()
            .iter()
            .any(|r| r.method == "GET" && r.path == "/api/v1/namespaces")
    };
    while !listed() {
        assert!(
            started.elapsed() < Duration::from_secs(30),
            "the plugin never listed namespaces"
        );
        std::thread::sleep(Duration::from_millis(5));
    }
    edit_namespace(&sim, "shop", |ns| {
        ns["metadata"]["labels"]["team"] = json!("blue")
    });

    let output = child.wait_with_output().expect("the plugin ends");
    assert!(
        output.status.success(),
        "{}\n{}",
        String::from_utf8_lossy(&output.stdout),
        String::from_utf8_lossy(&output.stderr)
    );
    assert_eq!(
        own_labels(&sim, "shop"),
        map(&[("istio.io/rev", "1-22-3"), ("team", "blue")])
    );
    let statuses: Vec<u16> = namespace_patches(&sim, "shop")
        .iter()
        .map(|p| p.status)
        .collect();
    assert_eq!(statuses, [409, 200]);
}

// ---------------------------------------------------------------- --restart

#[test]
fn restart_leaves_every_injected_pod_of_the_moved_namespace_on_the_new_revision() {
    let sim = canary();
    let run = relabel(
        &sim,
        &["-n", "shop", "--to", "1-22-3", "--restart", "--yes"],
    );
    assert_eq!(run.code, 0, "{run:#?}");
    assert!(
        !run.stdout
            .contains("until then `kubectl mesh-upgrade status"),
        "no restart left to suggest: {}",
        run.stdout
    );
    assert!(
        run.stderr.contains("--restart: running pods keep"),
        "{}",
        run.stderr
    );
    sim.settle();
    let pods: Vec<Value> = sim.with_world(|world| {
        world
            .store
            .list(kinds::pods(), Some("shop"))
            .map(|p| (*p).clone())
            .collect()
    });
    let mut injected = 0;
    for pod in &pods {
        if pod["metadata"]["deletionTimestamp"].is_string() {
            continue;
        }
        let Some(status) = pod["metadata"]["annotations"]["sidecar.istio.io/status"].as_str()
        else {
            // Opted out (metrics-exporter): no proxy to move.
            continue;
        };
        injected += 1;
        let status: Value = serde_json::from_str(status).expect("the status annotation is JSON");
        assert_eq!(
            status["revision"], "1-22-3",
            "{} still runs another revision",
            pod["metadata"]["name"]
        );
    }
    assert!(injected >= 4, "shop has injected pods: {pods:#?}");
}

#[test]
fn restart_with_machine_output_prints_one_list_of_both_reports() {
    let sim = canary();
    let run = relabel(
        &sim,
        &[
            "-n",
            "shop",
            "--to",
            "1-22-3",
            "--restart",
            "--yes",
            "-o",
            "json",
        ],
    );
    assert_eq!(run.code, 0, "{run:#?}");
    let list = parse_json(&run);
    assert_eq!(list["kind"], "List", "{list:#}");
    let kinds: Vec<&str> = list["items"]
        .as_array()
        .expect("items is a list")
        .iter()
        .filter_map(|item| item["kind"].as_str())
        .collect();
    assert_eq!(kinds, ["RelabelReport", "RestartResult"], "{list:#}");

    // YAML: one document too, not two separated by `---`.
    let sim = canary();
    let run = relabel(
        &sim,
        &[
            "-n",
            "shop",
            "--to",
            "1-22-3",
            "--restart",
            "--yes",
            "-o",
            "yaml",
        ],
    );
    assert_eq!(run.code, 0, "{run:#?}");
    let list: Value = serde_yaml::from_str(&run.stdout).expect("stdout is one YAML document");
    assert_eq!(list["items"].as_array().map(Vec::len), Some(2), "{list:#}");

    // A dry run shows the one plan: the relabel and the restarts it brings,
    // as one List (the restarts planned on the namespace as it will be).
    let run = relabel(
        &sim,
        &[
            "-n",
            "cart",
            "--to",
            "1-22-3",
            "--restart",
            "--dry-run",
            "-o",
            "json",
        ],
    );
    assert_eq!(run.code, 0, "{run:#?}");
    let list = parse_json(&run);
    let kinds: Vec<&str> = list["items"]
        .as_array()
        .expect("items is a list")
        .iter()
        .filter_map(|item| item["kind"].as_str())
        .collect();
    assert_eq!(kinds, ["RelabelPlan", "RestartPlan"], "{list:#}");
    let restarts = list["items"][1]["actions"].as_array().expect("actions");
    assert!(
        !restarts.is_empty(),
        "cart's workloads become stale: {list:#}"
    );
    assert!(
        restarts.iter().all(|a| a["expectedRevision"] == "1-22-3"),
        "{list:#}"
    );
}

#[test]
fn relabel_with_restart_at_a_terminal_asks_once_and_y_enter_goes_to_the_end() {
    let sim = canary();
    let question = "Relabel 1 namespace to 1-22-3 and restart";
    let env = Env::new()
        .kubeconfig(sim.kubeconfig_path())
        .var("TERM", "xterm");
    // Typed as people do: `y`, then Enter (the Enter once answered a second
    // question with "no").
    let super::terminal::Transcript { code, text: shown } = super::terminal::in_terminal(
        &env,
        &[
            "relabel",
            "-n",
            "shop",
            "--to",
            "1-22-3",
            "--restart",
            "--timeout",
            "2m",
        ],
        100,
        b"y\r",
    );
    assert_eq!(code, 0, "{shown}");
    // dialoguer redraws the answered question as "...? yes": one [y/N] is one question.
    assert_eq!(shown.matches("[y/N]").count(), 1, "one question: {shown}");
    assert!(
        shown.contains(&format!("{question} 4 workloads? yes")),
        "{shown}"
    );
    assert!(!shown.contains("not confirmed"), "{shown}");
    assert_eq!(
        labels(&sim, "shop").get("istio.io/rev").map(String::as_str),
        Some("1-22-3")
    );
    assert!(shown.contains("restarted and verified"), "{shown}");
}

#[test]
fn ctrl_c_lets_the_patches_in_flight_finish_sends_no_more_and_names_the_undo() {
    let sim = canary();
    let names: Vec<String> = (0..10).map(|i| format!("team-{i:02}")).collect();
    let manifests: Vec<String> = names
        .iter()
        .map(|name| {
            format!(
                "apiVersion: v1\nkind: Namespace\nmetadata:\n  name: {name}\n  labels:\n    crew: teams\n    istio.io/rev: 1-21-2\n"
            )
        })
        .collect();
    sim.apply_yaml(&manifests.join("---\n"))
        .expect("the namespaces apply");
    // The first eight patches (as many as relabel sends at once) are held
    // three seconds: the Ctrl-C lands while they are in flight, before the
    // last two may start.
    sim.set_faults(
        Faults::new().rule(
            FaultRule::on("patch", "namespaces")
                .latency(Duration::from_secs(3))
                .next(8),
        ),
    );
    sim.clear_requests();
    let dir = super::plugin_dir();
    let env = Env::new()
        .kubeconfig(sim.kubeconfig_path())
        .var("PATH", &super::path_with(dir.path()));
    let run = env.interrupt_once_stdout_shows(
        super::KUBECTL,
        &[
            "mesh-upgrade",
            "relabel",
            "-l",
            "crew=teams",
            "--to",
            "1-22-3",
            "--yes",
        ],
        "team-09",
        Duration::from_millis(500),
    );
    assert_eq!(run.code, 130, "{run:#?}");
    let patched: Vec<&String> = names
        .iter()
        .filter(|name| !namespace_patches(&sim, name).is_empty())
        .collect();
    assert_eq!(patched.len(), 8, "the patches in flight only: {patched:?}");
    for name in &names {
        let rev = own_labels(&sim, name)["istio.io/rev"].clone();
        let sent = patched.contains(&name);
        assert_eq!(rev, if sent { "1-22-3" } else { "1-21-2" }, "{name}");
    }
    let done: Vec<&str> = patched.iter().map(|n| n.as_str()).collect();
    assert!(
        run.stderr
            .contains("interrupted: 2 of 10 namespace patches were not sent")
            && run.stderr.contains(&format!(
                "undo with: kubectl mesh-upgrade relabel -n {} --undo",
                done.join(",")
            )),
        "{run:#?}"
    );
    assert!(
        run.stdout
            .contains("not changed: Ctrl-C came before its patch was sent"),
        "{run:#?}"
    );

    sim.clear_faults();
    let run = env.run(
        super::KUBECTL,
        &[
            "mesh-upgrade",
            "relabel",
            "-n",
            &done.join(","),
            "--undo",
            "--yes",
        ],
    );
    assert_eq!(run.code, 0, "{run:#?}");
    for name in &names {
        assert_eq!(own_labels(&sim, name)["istio.io/rev"], "1-21-2", "{name}");
    }
}
