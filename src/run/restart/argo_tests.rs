//! The restart engine on Argo Rollouts and PodDisruptionBudgets, against the
//! in-memory API server: a Rollout is patched once and waited for until
//! Argo has recorded the restart and calls it Healthy; restarts sharing a
//! budget never overlap.

use std::time::Duration;

use chrono::{TimeZone, Utc};
use serde_json::{Value, json};

use super::*;
use crate::api::fake::{fake_client, status_body};
use crate::mesh::fixtures::{
    ClusterFixture, ProxySpec, ROLLOUT_HASH, RolloutFixture, WorkloadFixture,
};
use crate::mesh::restart::{RestartOptions, plan};
use crate::run::Silent;

fn now() -> chrono::DateTime<Utc> {
    Utc.with_ymd_and_hms(2026, 11, 23, 14, 5, 9).unwrap()
}

fn rollout(generation: i64, observed: &str, phase: &str, restarted_at: Option<&str>) -> Value {
    let mut status = json!({"observedGeneration": observed, "phase": phase,
                            "replicas": 2, "updatedReplicas": 2, "availableReplicas": 2});
    if let Some(at) = restarted_at {
        status["restartedAt"] = json!(at);
    }
    json!({
        "apiVersion": "argoproj.io/v1alpha1", "kind": "Rollout",
        "metadata": {"name": "checkout", "namespace": "pay", "generation": generation, "resourceVersion": "20"},
        "spec": {"replicas": 2, "restartAt": "2026-11-23T14:05:09Z"},
        "status": status,
    })
}

/// A pod of the Rollout on the proxy the plan expects.
fn new_pod(i: usize) -> Value {
    json!({
        "apiVersion": "v1", "kind": "Pod",
        "metadata": {
            "name": format!("checkout-{ROLLOUT_HASH}-n{i}"), "namespace": "pay",
            "labels": {"app": "checkout", "rollouts-pod-template-hash": ROLLOUT_HASH},
            "annotations": {"sidecar.istio.io/status": "{\"revision\":\"1-22-3\"}"},
            "ownerReferences": [{"apiVersion": "apps/v1", "kind": "ReplicaSet", "controller": true,
                                 "name": format!("checkout-{ROLLOUT_HASH}"), "uid": "rs"}],
        },
        "spec": {"containers": [{"name": "istio-proxy", "image": "docker.io/istio/proxyv2:1.22.3"}]},
        "status": {"phase": "Running", "conditions": [{"type": "Ready", "status": "True"}]},
    })
}

#[tokio::test]
async fn a_rollout_is_done_once_restarted_at_has_reached_the_plan_and_it_is_healthy() {
    let plan = plan(
        &ClusterFixture::new()
            .revision("1-21-2", "1.21.2")
            .revision("1-22-3", "1.22.3")
            .namespace("pay", &[("istio.io/rev", "1-22-3")])
            .rollout(
                RolloutFixture::new("pay", "checkout")
                    .pods(2, ProxySpec::istio("1-21-2", "1.21.2")),
            )
            .build(),
        &RestartOptions::default(),
        now(),
    )
    .expect("a plan");
    let (api, seen) = fake_client(|method, path, query, _| match method {
        "PATCH" if path == "/apis/argoproj.io/v1alpha1/namespaces/pay/rollouts/checkout" => (
            200,
            rollout(3, "2", "Healthy", Some("2026-11-20T10:00:00Z")).to_string(),
        ),
        // Argo's states after the patch: not yet seen, restarting, the
        // restart recorded but pods still settling, then done.
        "GET" if query.contains("watch") => {
            let events = [
                rollout(3, "2", "Healthy", Some("2026-11-20T10:00:00Z")),
                rollout(3, "3", "Progressing", Some("2026-11-20T10:00:00Z")),
                rollout(3, "3", "Progressing", Some("2026-11-23T14:05:09Z")),
                rollout(3, "3", "Healthy", Some("2026-11-23T14:05:09Z")),
            ];
            let body: String = events
                .iter()
                .map(|o| json!({"type": "MODIFIED", "object": o}).to_string() + "\n")
                .collect();
            (200, body)
        }
        "GET" if path == "/api/v1/namespaces/pay/pods" => (
            200,
            json!({"metadata": {"resourceVersion": "30"}, "items": [new_pod(0), new_pod(1)]})
                .to_string(),
        ),
        _ => (404, status_body(404, "NotFound", "no").to_string()),
    });
    let run = run_restarts(
        &api,
        &plan,
        RestartSettings {
            timeout: Duration::from_secs(30),
            wait: true,
            rehearsal: false,
            concurrency: 1,
        },
        &Interrupts::none(),
        &Silent,
    )
    .await;
    assert_eq!(
        run.results[0].outcome,
        Outcome::Restarted,
        "{:?}",
        run.results
    );
    let seen = seen.lock().unwrap().clone();
    let patches: Vec<&String> = seen.iter().filter(|r| r.starts_with("PATCH")).collect();
    assert_eq!(
        patches,
        [
            "PATCH /apis/argoproj.io/v1alpha1/namespaces/pay/rollouts/checkout?&fieldManager=kubectl-mesh-upgrade"
        ],
        "{seen:?}"
    );
    assert!(
        seen.iter().any(|r| r
            .starts_with("GET /apis/argoproj.io/v1alpha1/namespaces/pay/rollouts?")
            && r.contains("watch")),
        "{seen:?}"
    );
}

#[tokio::test]
async fn a_degraded_rollout_fails_the_run() {
    let plan = plan(
        &ClusterFixture::new()
            .revision("1-21-2", "1.21.2")
            .revision("1-22-3", "1.22.3")
            .namespace("pay", &[("istio.io/rev", "1-22-3")])
            .rollout(
                RolloutFixture::new("pay", "checkout")
                    .pods(2, ProxySpec::istio("1-21-2", "1.21.2")),
            )
            .build(),
        &RestartOptions::default(),
        now(),
    )
    .expect("a plan");
    let (api, _) = fake_client(|method, _, query, _| match method {
        "PATCH" => (200, rollout(3, "2", "Healthy", None).to_string()),
        "GET" if query.contains("watch") => {
            let mut degraded = rollout(3, "3", "Degraded", None);
            degraded["status"]["message"] = json!("RolloutAborted: aborted by a person");
            (
                200,
                json!({"type": "MODIFIED", "object": degraded}).to_string() + "\n",
            )
        }
        _ => (404, status_body(404, "NotFound", "no").to_string()),
    });
    let run = run_restarts(
        &api,
        &plan,
        RestartSettings {
            timeout: Duration::from_secs(30),
            wait: true,
            rehearsal: false,
            concurrency: 1,
        },
        &Interrupts::none(),
        &Silent,
    )
    .await;
    assert_eq!(run.results[0].outcome, Outcome::Failed);
    assert_eq!(
        run.results[0].detail.as_deref(),
        Some("Degraded: RolloutAborted: aborted by a person")
    );
}

#[tokio::test]
async fn restarts_sharing_a_budget_never_run_together_whatever_the_concurrency() {
    // Deployments a and b under one PDB allowing 1 (tier=web), c under
    // none; --concurrency 3, --no-wait.
    let stale = |name: &str| {
        WorkloadFixture::deployment("pay", name).pods(2, ProxySpec::istio("1-21-2", "1.21.2"))
    };
    let snapshot = ClusterFixture::new()
        .revision("1-21-2", "1.21.2")
        .revision("1-22-3", "1.22.3")
        .namespace("pay", &[("istio.io/rev", "1-22-3")])
        .workload(stale("a").template_label("tier", "web"))
        .workload(stale("b").template_label("tier", "web"))
        .workload(stale("c"))
        .edit(|s| {
            s.pod_disruption_budgets.push(crate::snapshot::PdbInfo {
                namespace: "pay".into(),
                name: "web".into(),
                selector: crate::snapshot::LabelMatcher::from_map(&crate::mesh::fixtures::labels(
                    &[("tier", "web")],
                )),
                min_available: None,
                max_unavailable: Some("1".into()),
                disruptions_allowed: 1,
                current_healthy: 4,
                desired_healthy: 3,
                expected_pods: 4,
            })
        })
        .build();
    let plan = plan(&snapshot, &RestartOptions::default(), now()).expect("a plan");
    let names: Vec<&str> = plan.actions.iter().map(|a| a.name.as_str()).collect();
    assert_eq!(names, ["a", "b", "c"]);
    let (api, _) = fake_client(|method, path, _, _| match method {
        "PATCH" => {
            let name = path.rsplit('/').next().unwrap_or_default();
            (
                200,
                json!({"metadata": {"name": name, "namespace": "pay", "generation": 2}})
                    .to_string(),
            )
        }
        _ => (404, status_body(404, "NotFound", "no").to_string()),
    });
    let recorded = crate::run::Recorded::default();
    let run = run_restarts(
        &api,
        &plan,
        RestartSettings {
            timeout: Duration::from_secs(30),
            wait: false,
            rehearsal: false,
            concurrency: 3,
        },
        &Interrupts::none(),
        &recorded,
    )
    .await;
    assert!(
        run.results.iter().all(|r| r.outcome == Outcome::Patched),
        "{:?}",
        run.results
    );
    let lines = recorded.lines();
    let at = |line: &str| {
        lines
            .iter()
            .position(|l| l.starts_with(line))
            .unwrap_or_else(|| panic!("{line} in {lines:#?}"))
    };
    // c, under no budget, starts beside a; b waits until a is done.
    assert!(
        at("pay/deployment/c: patching") < at("pay/deployment/a done"),
        "{lines:#?}"
    );
    assert!(
        at("pay/deployment/a done") < at("pay/deployment/b: patching"),
        "{lines:#?}"
    );
}
