//! Every kind of owner, end to end through the real kubectl on the `owners`
//! scenario: Argo Rollouts restarted through `spec.restartAt` and verified,
//! CronJob, Job and bare pods reported with their remedies, restarts held
//! by a PodDisruptionBudget allowing no disruption (and refused, with
//! nothing written, under `--fail-on-blocked`), and a cluster without Argo
//! Rollouts.

use std::collections::BTreeMap;

use mesh_sim::resources::kinds;
use mesh_sim::{Sim, SimOptions};
use serde_json::{Value, json};

use super::{Env, KUBECTL, Run, parse_json, path_with, plugin_dir};

fn owners() -> Sim {
    Sim::start(SimOptions::default().scenario("owners")).expect("the owners scenario starts")
}

/// `kubectl mesh-upgrade <args>` as a person runs it: kubectl finds the
/// plugin on PATH.
fn kubectl_mesh_upgrade(sim: &Sim, args: &[&str]) -> Run {
    let dir = plugin_dir();
    let mut argv = vec!["mesh-upgrade"];
    argv.extend_from_slice(args);
    Env::new()
        .kubeconfig(sim.kubeconfig_path())
        .var("PATH", &path_with(dir.path()))
        .run(KUBECTL, &argv)
}

/// Each pod of `namespace` with a proxy → its image.
fn proxies(sim: &Sim, namespace: &str, app: &str) -> BTreeMap<String, String> {
    sim.with_world(|world| {
        world
            .store
            .list(kinds::pods(), Some(namespace))
            .filter(|p| p["metadata"]["labels"]["app"] == app)
            .filter_map(|pod| {
                let image = pod["spec"]["containers"]
                    .as_array()?
                    .iter()
                    .find(|c| c["name"] == "istio-proxy")?["image"]
                    .as_str()?
                    .to_string();
                Some((pod["metadata"]["name"].as_str()?.to_string(), image))
            })
            .collect()
    })
}

/// A run of the CronJob, as its controller (or `kubectl create job
/// --from=cronjob/...`) makes it: a Job the CronJob owns. It started
/// before `jobs` moved to the canary, so its pod runs the old proxy.
fn run_cron_job(sim: &Sim) {
    let namespace = |labels: &str| {
        format!(
            "apiVersion: v1\nkind: Namespace\nmetadata:\n  name: jobs\n  labels: {{{labels}}}\n"
        )
    };
    sim.apply_yaml(&namespace("istio-injection: enabled"))
        .expect("back on the default revision");
    let cron = sim
        .get(kinds::cronjobs(), "jobs", "nightly-report")
        .expect("the CronJob");
    let job = json!({
        "apiVersion": "batch/v1",
        "kind": "Job",
        "metadata": {
            "name": "nightly-report-29474520",
            "namespace": "jobs",
            "annotations": {"mesh-sim.io/run-duration": "forever"},
            "ownerReferences": [{
                "apiVersion": "batch/v1", "kind": "CronJob", "name": "nightly-report",
                "uid": cron["metadata"]["uid"], "controller": true, "blockOwnerDeletion": true,
            }],
        },
        "spec": cron["spec"]["jobTemplate"]["spec"],
    });
    sim.apply_yaml(&serde_yaml::to_string(&job).unwrap())
        .expect("the run is created");
    sim.apply_yaml(&namespace("istio.io/rev: 1-22-3"))
        .expect("moved to the canary again");
    sim.settle();
}

#[test]
fn a_rollout_is_restarted_through_restart_at_and_its_pods_run_the_new_proxy() {
    let sim = owners();
    let before = proxies(&sim, "orders", "checkout");
    assert!(
        before.values().all(|i| i.ends_with(":1.21.2")),
        "{before:?}"
    );
    sim.clear_requests();

    let run = kubectl_mesh_upgrade(
        &sim,
        &[
            "restart-sidecars",
            "-n",
            "orders",
            "--kind",
            "rollout",
            "--yes",
        ],
    );
    assert_eq!(run.code, 0, "{run:#?}");
    // The plan, then the results: the three Rollouts, the Deployment they
    // take a template from left alone.
    assert!(
        run.stdout
            .contains("3 workloads to restart (Argo Rollouts' spec.restartAt="),
        "{run:#?}"
    );
    for rollout in ["catalog", "checkout", "storefront"] {
        assert!(
            run.stdout
                .lines()
                .any(|l| l.contains(&format!("rollout/{rollout}")) && l.contains("restarted")),
            "rollout/{rollout} restarted: {run:#?}"
        );
    }
    assert!(
        run.stdout.contains("Summary: 3 restarted and verified."),
        "{run:#?}"
    );

    // Exactly one write per Rollout: Argo's merge patch of spec.restartAt.
    let writes: Vec<_> = sim
        .requests()
        .into_iter()
        .filter(|r| r.method != "GET" && !r.query.contains("dryRun=All"))
        .collect();
    let targets: Vec<String> = writes.iter().map(|r| r.path.clone()).collect();
    assert_eq!(
        targets,
        [
            "/apis/argoproj.io/v1alpha1/namespaces/orders/rollouts/catalog",
            "/apis/argoproj.io/v1alpha1/namespaces/orders/rollouts/checkout",
            "/apis/argoproj.io/v1alpha1/namespaces/orders/rollouts/storefront",
        ],
        "{writes:#?}"
    );
    let first: Value = serde_json::from_str(&writes[0].body).unwrap();
    let stamp = first["spec"]["restartAt"]
        .as_str()
        .expect("restartAt")
        .to_string();
    for write in &writes {
        assert_eq!(write.method, "PATCH");
        assert_eq!(write.content_type, "application/merge-patch+json");
        let body: Value = serde_json::from_str(&write.body).unwrap();
        assert_eq!(body, json!({"spec": {"restartAt": stamp}}));
    }
    // Argo replaced every pod, recorded the restart and is Healthy.
    let after = proxies(&sim, "orders", "checkout");
    assert_eq!(after.len(), 2);
    assert!(
        after.keys().all(|pod| !before.contains_key(pod)),
        "{before:?} {after:?}"
    );
    assert!(after.values().all(|i| i.ends_with(":1.22.3")), "{after:?}");
    let checkout = sim.get(kinds::rollouts(), "orders", "checkout").unwrap();
    assert_eq!(checkout["status"]["restartedAt"], json!(stamp));
    assert_eq!(checkout["status"]["phase"], "Healthy");
    // Evictions, not deletions: the budget had its say.
    let events: Vec<String> = sim.with_world(|w| {
        w.store
            .list(kinds::events(), Some("orders"))
            .filter_map(|e| e["reason"].as_str().map(str::to_string))
            .collect()
    });
    assert!(events.iter().any(|r| r == "RolloutRestarted"), "{events:?}");
    // The Deployment behind catalog's workloadRef was never written.
    let catalog = sim.get(kinds::deployments(), "orders", "catalog").unwrap();
    assert_eq!(
        catalog["metadata"]["generation"], 2,
        "only Argo's scale-down"
    );

    // status agrees: the Rollouts are up to date.
    let run = kubectl_mesh_upgrade(&sim, &["status", "-n", "orders", "-o", "json"]);
    assert_eq!(run.code, 0, "{run:#?}");
    let report = parse_json(&run);
    let rollouts: Vec<(&str, &str)> = report["workloads"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|w| w["kind"] == "Rollout")
        .map(|w| (w["name"].as_str().unwrap(), w["state"].as_str().unwrap()))
        .collect();
    assert_eq!(
        rollouts,
        [
            ("catalog", "up-to-date"),
            ("checkout", "up-to-date"),
            ("storefront", "up-to-date")
        ]
    );
}

#[test]
fn status_shows_rollouts_and_the_remedies_of_cron_job_job_and_bare_pods() {
    let sim = owners();
    run_cron_job(&sim);

    let run = kubectl_mesh_upgrade(&sim, &["status", "-n", "orders,jobs", "-o", "json"]);
    assert_eq!(run.code, 0, "{run:#?}");
    let report = parse_json(&run);
    let workload = |kind: &str, name: &str| -> Value {
        report["workloads"]
            .as_array()
            .unwrap()
            .iter()
            .find(|w| w["kind"] == kind && w["name"] == name)
            .cloned()
            .unwrap_or_else(|| panic!("{kind} {name} in {report:#}"))
    };
    let checkout = workload("Rollout", "checkout");
    assert_eq!(checkout["state"], "stale");
    assert_eq!(checkout["expectedRevision"], "1-22-3");
    assert_eq!(
        checkout["proxies"],
        json!([{"revision": "1-21-2", "version": "1.21.2", "pods": 2}])
    );
    let catalog = workload("Deployment", "catalog");
    assert!(
        catalog["notes"].as_array().unwrap().iter().any(|n| n
            .as_str()
            .unwrap()
            .starts_with("the template of Rollout catalog")),
        "{catalog:#}"
    );
    let billing = workload("Deployment", "billing");
    assert!(
        billing["risks"]
            .as_array()
            .unwrap()
            .contains(&json!("pdb-allows-zero")),
        "{billing:#}"
    );

    let pods: BTreeMap<String, Value> = report["unreachablePods"]
        .as_array()
        .unwrap()
        .iter()
        .map(|p| (p["name"].as_str().unwrap().to_string(), p.clone()))
        .collect();
    let by_code = |code: &str| -> &Value {
        pods.values()
            .find(|p| p["reasonCode"] == code)
            .unwrap_or_else(|| panic!("a {code} pod in {pods:#?}"))
    };
    let cron = by_code("cronjob");
    assert_eq!(cron["owner"], "CronJob/nightly-report");
    assert_eq!(
        cron["remedy"],
        "the next run gets the new proxy (schedule 0 2 * * *)"
    );
    assert_eq!(cron["state"], "stale");
    let job = by_code("job");
    assert_eq!(job["owner"], "Job/migrate-db");
    assert_eq!(
        job["remedy"],
        "finishes on the old proxy: wait, or delete and rerun the Job"
    );
    let bare = by_code("standalone");
    assert_eq!(bare["name"], "debug-shell");
    assert_eq!(bare["remedy"], "nothing recreates it");
    // The CronJob's run needs nobody; the Job and the bare pod do.
    let attention = report["summary"]["attention"].to_string();
    assert!(
        attention.contains("jobs/debug-shell") && attention.contains("migrate-db"),
        "{attention}"
    );
    assert!(!attention.contains("nightly-report"), "{attention}");

    // The same as text, as a person reads it (through a pipe: one line a row).
    let run = kubectl_mesh_upgrade(&sim, &["status", "-n", "orders,jobs"]);
    assert_eq!(run.code, 0, "{run:#?}");
    let text = &run.stdout;
    assert!(
        text.lines()
            .any(|l| l.contains("rollout/checkout") && l.contains("stale")),
        "{text}"
    );
    for expected in [
        "CronJob/nightly-report",
        "the next run gets the new proxy (schedule 0 2 * * *)",
        "Job/migrate-db",
        "finishes on the old proxy: wait, or delete and rerun the Job",
        "kubectl delete job migrate-db -n jobs, then create it again from its manifest",
        "nothing recreates it",
    ] {
        assert!(text.contains(expected), "{expected:?} in:\n{text}");
    }
}

#[test]
fn a_budget_allowing_no_disruption_holds_its_workload_and_fail_on_blocked_writes_nothing() {
    let sim = owners();
    sim.clear_requests();

    // --fail-on-blocked: the plan, then a refusal before any write.
    let run = kubectl_mesh_upgrade(
        &sim,
        &[
            "restart-sidecars",
            "-n",
            "orders",
            "--kind",
            "deployment",
            "--fail-on-blocked",
            "--yes",
        ],
    );
    assert_eq!(run.code, 5, "{run:#?}");
    assert!(
        run.stdout
            .contains("Held (a PodDisruptionBudget allows no disruption now):"),
        "{run:#?}"
    );
    assert!(
        run.stderr.contains(
            "--fail-on-blocked: a PodDisruptionBudget allows 0 disruptions to orders/deployment/billing (PodDisruptionBudget billing); nothing was written"
        ),
        "{run:#?}"
    );
    let writes: Vec<String> = sim
        .requests()
        .into_iter()
        .filter(|r| r.method != "GET")
        .map(|r| format!("{} {}?{}", r.method, r.path, r.query))
        .collect();
    assert!(writes.is_empty(), "nothing written: {writes:#?}");

    // Without it: billing is held, payments and shipping (one budget
    // allowing 1) take turns, and the run succeeds.
    let run = kubectl_mesh_upgrade(
        &sim,
        &[
            "restart-sidecars",
            "-n",
            "orders",
            "--kind",
            "deployment",
            "--concurrency",
            "5",
            "--yes",
        ],
    );
    assert_eq!(run.code, 0, "{run:#?}");
    let text = &run.stdout;
    assert!(
        text.contains(
            "Paced: PodDisruptionBudget orders/backend allows 1 disruption, so its 2 workloads restart one at a time."
        ),
        "{text}"
    );
    assert!(
        text.lines().any(|l| l.contains("deployment/billing")
            && l.contains("held")
            && l.contains("PodDisruptionBudget billing allows 0 disruptions now")),
        "{text}"
    );
    assert!(
        text.contains("Summary: 2 restarted and verified, 1 held by a PodDisruptionBudget"),
        "{text}"
    );
    let patched: Vec<String> = sim
        .requests()
        .into_iter()
        .filter(|r| r.method == "PATCH" && !r.query.contains("dryRun=All"))
        .map(|r| r.path)
        .collect();
    assert_eq!(
        patched,
        [
            "/apis/apps/v1/namespaces/orders/deployments/payments",
            "/apis/apps/v1/namespaces/orders/deployments/shipping",
        ]
    );
    // Taking turns: shipping's restart began only after payments had
    // rolled out (its events, in the order the store wrote them).
    let (payments_done, shipping_started) = sim.with_world(|w| {
        let events = w
            .store
            .events_since(kinds::deployments(), 0)
            .expect("history kept");
        let n = |d: &Value, p: &str| d.pointer(p).and_then(Value::as_i64).unwrap_or(0);
        let mut payments_done = None;
        let mut shipping_started = None;
        for e in events {
            let d = e.value();
            let restarted = n(&d, "/metadata/generation") >= 2;
            if e.key.name == "payments"
                && payments_done.is_none()
                && restarted
                && n(&d, "/status/observedGeneration") >= 2
                && n(&d, "/status/updatedReplicas") == 2
                && n(&d, "/status/availableReplicas") == 2
                && n(&d, "/status/replicas") == 2
            {
                payments_done = Some(e.resource_version);
            }
            if e.key.name == "shipping" && shipping_started.is_none() && restarted {
                shipping_started = Some(e.resource_version);
            }
        }
        (payments_done, shipping_started)
    });
    assert!(
        payments_done.is_some() && payments_done < shipping_started,
        "payments done at {payments_done:?}, shipping started at {shipping_started:?}"
    );
    let billing = proxies(&sim, "orders", "billing");
    assert!(
        billing.values().all(|i| i.ends_with(":1.21.2")),
        "held: {billing:?}"
    );

    // -o json: the held workload in the document.
    sim.clear_requests();
    let run = kubectl_mesh_upgrade(
        &sim,
        &[
            "restart-sidecars",
            "-n",
            "orders",
            "--kind",
            "deployment",
            "--dry-run",
            "-o",
            "json",
        ],
    );
    assert_eq!(run.code, 0, "{run:#?}");
    let plan = parse_json(&run);
    assert_eq!(plan["held"][0]["name"], "billing");
    assert_eq!(plan["held"][0]["reason"], "pdb-allows-zero");
    assert_eq!(plan["held"][0]["disruptionBudget"], "billing");
}

#[test]
fn a_cluster_without_argo_rollouts_answers_404_and_status_carries_on() {
    let sim = Sim::start(
        SimOptions::default()
            .scenario("canary")
            .argo_rollouts(false),
    )
    .expect("the canary scenario starts");
    sim.clear_requests();
    let run = kubectl_mesh_upgrade(&sim, &["status", "-A", "-o", "json"]);
    assert_eq!(run.code, 0, "{run:#?}");
    assert!(
        run.stderr.is_empty(),
        "no warning about a kind not installed: {run:#?}"
    );
    let rollout_lists: Vec<u16> = sim
        .requests()
        .into_iter()
        .filter(|r| r.path.starts_with("/apis/argoproj.io/"))
        .map(|r| r.status)
        .collect();
    assert_eq!(rollout_lists, [404], "one LIST, answered 404");
    let report = parse_json(&run);
    assert!(!report["workloads"].as_array().unwrap().is_empty());
    // And restart-sidecars --kind rollout finds nothing to do.
    let run = kubectl_mesh_upgrade(
        &sim,
        &["restart-sidecars", "-A", "--kind", "rollout", "--yes"],
    );
    assert_eq!(run.code, 0, "{run:#?}");
    assert!(run.stdout.contains("Nothing to restart"), "{run:#?}");
}
