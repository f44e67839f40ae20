//! Tests of the restart engine against the in-memory API server: a conflict
//! on a patch the server had already stored, a rollout that never ends,
//! and Ctrl-C before anything starts.

use std::time::Duration;

use serde_json::{Value, json};

use super::*;
use crate::api::fake::{fake_client, status_body};
use crate::mesh::fixtures::{ClusterFixture, ProxySpec, WorkloadFixture};
use crate::mesh::restart::{RestartOptions, plan};
use crate::run::{Recorded, Silent};
use chrono::{TimeZone, Utc};

/// Two stale Deployments in `pay` (on 1-22-3, pods on 1-21-2).
fn two_stale() -> RestartPlan {
    let snapshot = ClusterFixture::new()
        .revision("1-21-2", "1.21.2")
        .revision("1-22-3", "1.22.3")
        .namespace("pay", &[("istio.io/rev", "1-22-3")])
        .workload(
            WorkloadFixture::deployment("pay", "payments")
                .pods(2, ProxySpec::istio("1-21-2", "1.21.2")),
        )
        .workload(
            WorkloadFixture::deployment("pay", "ledger")
                .pods(2, ProxySpec::istio("1-21-2", "1.21.2")),
        )
        .build();
    let now = Utc.with_ymd_and_hms(2026, 11, 23, 14, 5, 9).unwrap();
    plan(&snapshot, &RestartOptions::default(), now).expect("a plan")
}

fn deployment(name: &str, generation: i64, observed: i64, restarted_at: &str) -> Value {
    json!({
        "apiVersion": "apps/v1", "kind": "Deployment",
        "metadata": {"name": name, "namespace": "pay", "generation": generation, "resourceVersion": "10"},
        "spec": {"replicas": 2, "selector": {"matchLabels": {"app": name}},
                 "template": {"metadata": {"annotations": {RESTARTED_AT_ANNOTATION: restarted_at}}}},
        "status": {"observedGeneration": observed, "replicas": 2, "updatedReplicas": 1,
                   "readyReplicas": 2, "availableReplicas": 2}
    })
}

fn settings(wait: bool, timeout: Duration) -> RestartSettings {
    RestartSettings {
        timeout,
        wait,
        rehearsal: false,
        concurrency: 1,
    }
}

#[tokio::test]
async fn a_patch_the_server_stored_before_answering_409_is_not_sent_again() {
    let plan = two_stale();
    let stamp = plan.restarted_at.clone();
    let (api, seen) = fake_client(move |method, path, _, _| match method {
        // The server stored the first attempt and then lost the answer: the
        // retry finds a newer resourceVersion.
        "PATCH" => (
            409,
            status_body(409, "Conflict", "the object has been modified").to_string(),
        ),
        "GET" => {
            let name = path.rsplit('/').next().unwrap_or_default();
            (200, deployment(name, 2, 1, &stamp).to_string())
        }
        _ => (500, "{}".into()),
    });
    let run = run_restarts(
        &api,
        &plan,
        RestartSettings {
            concurrency: 2,
            ..settings(false, Duration::from_secs(60))
        },
        &Interrupts::none(),
        &Silent,
    )
    .await;
    let outcomes: Vec<Outcome> = run.results.iter().map(|r| r.outcome).collect();
    assert_eq!(outcomes, [Outcome::Patched, Outcome::Patched]);
    let seen = seen.lock().unwrap().clone();
    let patches = seen.iter().filter(|r| r.starts_with("PATCH")).count();
    assert_eq!(patches, 2, "one PATCH per workload, no second: {seen:?}");
}

#[tokio::test]
async fn a_rollout_that_never_completes_times_out_and_starts_nothing_more() {
    let plan = two_stale();
    let stamp = plan.restarted_at.clone();
    let first = plan.actions[0].name.clone();
    let (api, seen) = fake_client(move |method, path, query, _| {
        match method {
            "PATCH" => {
                let name = path.rsplit('/').next().unwrap_or_default();
                (200, deployment(name, 2, 1, &stamp).to_string())
            }
            // The watch shows the rollout stuck half-way, again and again.
            "GET" if query.contains("watch") => {
                let stuck = deployment(&first, 2, 2, &stamp);
                let event = json!({"type": "ADDED", "object": stuck}).to_string() + "\n";
                (200, event)
            }
            _ => (404, status_body(404, "NotFound", "no").to_string()),
        }
    });
    let recorded = Recorded::default();
    let run = run_restarts(
        &api,
        &plan,
        settings(true, Duration::from_millis(300)),
        &Interrupts::none(),
        &recorded,
    )
    .await;
    let outcomes: Vec<Outcome> = run.results.iter().map(|r| r.outcome).collect();
    assert_eq!(outcomes, [Outcome::TimedOut, Outcome::NotStarted]);
    assert!(
        run.results[0]
            .detail
            .as_deref()
            .is_some_and(|d| d.contains("not complete after 300ms (--timeout)")),
        "{:?}",
        run.results[0]
    );
    assert!(
        recorded
            .lines()
            .iter()
            .any(|l| l.contains("timed-out: starting no more restarts")),
        "{:?}",
        recorded.lines()
    );
    let seen = seen.lock().unwrap().clone();
    assert_eq!(
        seen.iter().filter(|r| r.starts_with("PATCH")).count(),
        1,
        "{seen:?}"
    );
}

#[tokio::test]
async fn ctrl_c_twice_before_the_first_start_writes_nothing() {
    let plan = two_stale();
    let (api, seen) = fake_client(|_, _, _, _| (500, "{}".into()));
    let (interrupts, handle) = Interrupts::manual();
    handle.press();
    handle.press();
    let run = run_restarts(
        &api,
        &plan,
        settings(true, Duration::from_secs(60)),
        &interrupts,
        &Silent,
    )
    .await;
    assert!(run.interrupted);
    assert!(run.results.iter().all(|r| r.outcome == Outcome::NotStarted));
    assert!(seen.lock().unwrap().is_empty(), "no request at all");
}
