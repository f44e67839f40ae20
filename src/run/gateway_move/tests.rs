//! The move's engine against the in-memory API server: a move that never
//! converges is put back and that is followed; a conflict caused by istiod's
//! status write sends the same patch again; Ctrl-C before the write writes
//! nothing.

use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};

use serde_json::json;

use super::*;
use crate::api::fake::{fake_client, status_body};
use crate::mesh::control_plane::ControlPlane;
use crate::mesh::fixtures::{canary_world, snapshot_from_world};
use crate::mesh::gateway_api::{assess, gateway_kind};
use crate::mesh::gateway_move::{MoveOptions, MoveRequest, plan_move};
use crate::run::Recorded;
use crate::snapshot::Scope;
use mesh_sim::resources::kinds;

/// The canary's move of `edge/public` to 1-22-3, planned on mesh-sim's
/// world, and the Gateway as planned (JSON).
fn planned() -> (MovePlan, Value) {
    let world = canary_world();
    let snapshot = snapshot_from_world(&world, Scope::Namespaces(vec!["edge".into()]));
    let cp = ControlPlane::from_snapshot(&snapshot);
    let object = (*world
        .store
        .get(kinds::gateways(), "edge", "public")
        .unwrap())
    .clone();
    let gateway: Gateway = serde_json::from_value(object.clone()).unwrap();
    let info = GatewayInfo::from(&gateway);
    let kind = gateway_kind(&snapshot, &info.class).unwrap();
    let plan = plan_move(
        &snapshot,
        &cp,
        &assess(&snapshot, &cp, &info, kind),
        &MoveOptions {
            request: MoveRequest::To("1-22-3".into()),
            force: false,
            endpoint_slices_readable: true,
        },
        chrono::Utc::now(),
    );
    (plan, object)
}

fn empty_list(kind: &str) -> String {
    json!({"apiVersion": "v1", "kind": kind, "metadata": {"resourceVersion": "7"}, "items": []})
        .to_string()
}

#[tokio::test]
async fn a_move_that_never_converges_is_put_back_and_the_way_back_is_followed() {
    let (plan, gateway) = planned();
    let action = plan.action.clone().expect("a write");
    // The Gateway as the server keeps it: the move sets the label, the undo
    // puts it back; nothing else ever happens, so every wait runs out.
    let stored = Arc::new(std::sync::Mutex::new(gateway));
    let patches = Arc::new(AtomicUsize::new(0));
    let (api, seen) = fake_client(move |method, path, query, _| match method {
        "PATCH" => {
            let mut gateway = stored.lock().unwrap();
            let label = if patches.fetch_add(1, Ordering::SeqCst) == 0 {
                "1-22-3"
            } else {
                "prod-stable"
            };
            gateway["metadata"]["labels"]["istio.io/rev"] = json!(label);
            (200, gateway.to_string())
        }
        "GET" if query.contains("watch") => (200, String::new()),
        "GET" if path.ends_with("/gateways") => (
            200,
            json!({"apiVersion": "v1", "kind": "GatewayList",
                   "metadata": {"resourceVersion": "7"}, "items": [*stored.lock().unwrap()]})
            .to_string(),
        ),
        "GET" => (200, empty_list("List")),
        _ => (500, "{}".into()),
    });
    let recorded = Recorded::default();
    let run = run_move(
        &api,
        &plan,
        &action,
        Duration::from_millis(300),
        &Interrupts::none(),
        &recorded,
    )
    .await;
    let MoveRun::RolledBack { first, back } = run else {
        panic!("put back: {run:?}");
    };
    assert!(matches!(first, Progress::TimedOut(_)), "{first:?}");
    assert!(matches!(back, Progress::TimedOut(_)), "{back:?}");
    let patches: Vec<String> = seen
        .lock()
        .unwrap()
        .iter()
        .filter(|r| r.starts_with("PATCH"))
        .cloned()
        .collect();
    assert_eq!(patches.len(), 2, "the move and its undo: {patches:?}");
    assert!(
        recorded
            .lines()
            .iter()
            .any(|l| l.contains("putting the Gateway back to istio.io/rev=prod-stable")),
        "{:?}",
        recorded.lines()
    );
}

#[tokio::test]
async fn a_conflict_from_istiods_status_write_sends_the_same_patch_on_the_fresh_version() {
    let (plan, gateway) = planned();
    let action = plan.action.clone().expect("a write");
    let patches = Arc::new(AtomicUsize::new(0));
    let counted = patches.clone();
    let mut fresher = gateway.clone();
    fresher["metadata"]["resourceVersion"] = json!("9999");
    let (api, seen) = fake_client(move |method, path, query, _| match method {
        "PATCH" if counted.fetch_add(1, Ordering::SeqCst) == 0 => (
            409,
            status_body(409, "Conflict", "the object has been modified").to_string(),
        ),
        "PATCH" => (200, fresher.to_string()),
        "GET" if path.ends_with("/gateways/public") => (200, fresher.to_string()),
        "GET" if query.contains("watch") => (200, String::new()),
        "GET" => (200, empty_list("List")),
        _ => (500, "{}".into()),
    });
    let (interrupts, handle) = Interrupts::manual();
    // Stop the wait as soon as it starts: only the write matters here.
    handle.press();
    let run = run_move(
        &api,
        &plan,
        &action,
        Duration::from_secs(5),
        &interrupts,
        &crate::run::Silent,
    )
    .await;
    // One press stops starting new work: nothing was written.
    assert!(matches!(run, MoveRun::InterruptedBeforeWrite), "{run:?}");
    assert!(seen.lock().unwrap().is_empty());

    // Without an interrupt: 409, the Gateway read again, the same patch.
    let run = run_move(
        &api,
        &plan,
        &action,
        Duration::from_millis(200),
        &Interrupts::none(),
        &crate::run::Silent,
    )
    .await;
    assert!(
        !matches!(run, MoveRun::NotApplied(_)),
        "the patch went out again: {run:?}"
    );
    let requests = seen.lock().unwrap().clone();
    let first_three: Vec<&str> = requests
        .iter()
        .take(3)
        .map(|r| r.split('?').next().unwrap_or(""))
        .collect();
    assert_eq!(
        first_three,
        vec![
            "PATCH /apis/gateway.networking.k8s.io/v1/namespaces/edge/gateways/public",
            "GET /apis/gateway.networking.k8s.io/v1/namespaces/edge/gateways/public",
            "PATCH /apis/gateway.networking.k8s.io/v1/namespaces/edge/gateways/public",
        ]
    );
}

#[tokio::test]
async fn a_gateway_relabelled_by_someone_else_before_the_move_is_not_overwritten() {
    let (plan, gateway) = planned();
    let action = plan.action.clone().expect("a write");
    let mut theirs = gateway.clone();
    theirs["metadata"]["labels"] = json!({"istio.io/rev": "1-21-2"});
    let (api, seen) = fake_client(move |method, path, _, _| match method {
        "PATCH" => (
            409,
            status_body(409, "Conflict", "the object has been modified").to_string(),
        ),
        "GET" if path.ends_with("/gateways/public") => (200, theirs.to_string()),
        _ => (500, "{}".into()),
    });
    let run = run_move(
        &api,
        &plan,
        &action,
        Duration::from_secs(5),
        &Interrupts::none(),
        &crate::run::Silent,
    )
    .await;
    let MoveRun::NotApplied(error) = run else {
        panic!("not applied: {run:?}");
    };
    assert!(
        format!("{error:#}").contains("changed after it was read"),
        "{error:#}"
    );
    let patches = seen
        .lock()
        .unwrap()
        .iter()
        .filter(|r| r.starts_with("PATCH"))
        .count();
    assert_eq!(patches, 1);
}
