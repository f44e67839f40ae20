//! Applying a [`RelabelPlan`]: one merge patch per namespace, a few at once.
//!
//! ```text
//! plan.changes ─► apply(write on resourceVersion) ─► labels as planned? ─► relabelled
//!                   409 ─► GET ─► Planner::evaluate(fresh) ─► Change: patch again (bounded)
//!                                                          └► Skip / not selected: unchanged, why
//! ```
//!
//! Ctrl-C starts no more patches; those already sent finish, and the rest
//! are reported as not sent (each namespace's patch is whole on its own).
//!
//! The re-plan is the plan's own rule on the namespace as it is now, so
//! another writer's change is kept (or makes this one unnecessary) instead
//! of being overwritten. A 5xx after the server stored the patch is retried
//! by the API layer with the old resourceVersion, gets a 409, and the
//! re-read shows the labels already in place: nothing is written twice.

use k8s_openapi::api::core::v1::Namespace;
use serde_json::Value;

use super::apply::{Applied, Replan, Sent, apply};
use super::batch::run_bounded;
use super::interrupt::Interrupts;
use crate::api::{ApiClient, WriteMode};
use crate::mesh::relabel::{
    Evaluation, InjectionLabels, NamespaceChange, NamespaceResult, NamespaceSelection,
    NamespaceState, Planner, RelabelPlan, RelabelRequest, ResultState, describe_labels,
    injection_labels,
};
use crate::snapshot::NamespaceInfo;

/// How many 409s one namespace may answer before the run gives up on it:
/// each is a fresh read and a recomputed patch, so more means a writer that
/// never stops, not bad luck.
const MAX_CONFLICTS: u32 = 8;

/// How many namespaces are patched at once.
const CONCURRENT_PATCHES: usize = 8;

/// What [`apply_relabel`] did: one result per planned namespace, in plan
/// order.
#[derive(Debug)]
pub struct RelabelRun {
    pub results: Vec<NamespaceResult>,
    /// Ctrl-C was pressed while the patches ran (those not yet sent are
    /// `NotSent`).
    pub interrupted: bool,
}

/// Patch every planned namespace, a few at a time, until Ctrl-C; results
/// in plan order.
pub async fn apply_relabel(
    writer: &ApiClient,
    planner: &Planner<'_>,
    plan: &RelabelPlan,
    request: &RelabelRequest,
    interrupts: &Interrupts,
) -> RelabelRun {
    let explicit = |name: &str| match &request.namespaces {
        NamespaceSelection::Named(names) => names.iter().any(|n| n == name),
        _ => false,
    };
    let batch = run_bounded(
        plan.changes.len(),
        CONCURRENT_PATCHES,
        interrupts,
        |index| {
            let change = &plan.changes[index];
            apply_one(writer, planner, change, explicit(&change.namespace))
        },
        // One namespace's failure does not stop the others: each patch is
        // a whole change on its own.
        |_| false,
        |_, _, _| {},
    )
    .await;
    let results: Vec<NamespaceResult> = plan
        .changes
        .iter()
        .zip(batch.results)
        .map(|(change, result)| {
            result.unwrap_or_else(|| NamespaceResult {
                namespace: change.namespace.clone(),
                state: ResultState::NotSent,
                labels: None,
                conflicts: 0,
                message: Some("Ctrl-C came before its patch was sent".to_string()),
            })
        })
        .collect();
    RelabelRun {
        results,
        // Seen while patches were in flight too, when none was left to stop.
        interrupted: batch.interrupted,
    }
}

/// What a re-plan ended in that is not a new patch.
enum Settled {
    /// Someone else's change made this one moot: the labels now, and why.
    Unchanged(InjectionLabels, String),
}

async fn apply_one(
    writer: &ApiClient,
    planner: &Planner<'_>,
    change: &NamespaceChange,
    explicit: bool,
) -> NamespaceResult {
    let name = change.namespace.clone();
    let rehearsal = writer.write_mode() == WriteMode::ServerDryRun;
    let mut settled: Option<Settled> = None;
    let applied = apply(
        writer,
        change.write.clone(),
        change.after.clone(),
        MAX_CONFLICTS,
        |fresh: Option<&Value>| {
            let Some(fresh) = fresh else {
                return Replan::Fail("the namespace was deleted meanwhile".to_string());
            };
            let fresh: Namespace = match serde_json::from_value(fresh.clone()) {
                Ok(ns) => ns,
                Err(err) => return Replan::Fail(format!("reading the namespace: {err}")),
            };
            let fresh = NamespaceState::from(&fresh);
            let now = injection_labels(&fresh.info.labels);
            match planner.evaluate(&fresh, explicit) {
                Evaluation::Change(again) => {
                    let again = *again;
                    Replan::Send(again.write, again.after)
                }
                Evaluation::Skip(skip) => {
                    settled = Some(Settled::Unchanged(
                        now,
                        format!("changed by someone else meanwhile: {}", skip.message),
                    ));
                    Replan::Unneeded(skip.message)
                }
                Evaluation::NotSelected => {
                    settled = Some(Settled::Unchanged(
                        now,
                        "changed by someone else meanwhile: no longer selected by -l".to_string(),
                    ));
                    Replan::Unneeded("no longer selected".to_string())
                }
            }
        },
    )
    .await;
    let conflicts = applied.conflicts();
    let result = |state, labels, message: Option<String>| NamespaceResult {
        namespace: name.clone(),
        state,
        labels,
        conflicts,
        message,
    };
    match applied {
        Applied::Written {
            sent: Sent::Patched(updated),
            context: expected,
            ..
        } => {
            let labels = serde_json::from_value::<Namespace>(updated)
                .map(|ns| injection_labels(&NamespaceInfo::from(&ns).labels))
                .unwrap_or_default();
            if labels != expected {
                return result(
                    ResultState::Failed,
                    Some(labels.clone()),
                    Some(format!(
                        "the server answered with {}, not the planned {} (a mutating webhook or policy may rewrite namespace labels)",
                        describe_labels(&labels),
                        describe_labels(&expected)
                    )),
                );
            }
            let state = if rehearsal {
                ResultState::Rehearsed
            } else {
                ResultState::Relabelled
            };
            tracing::info!(namespace = %name, conflicts, "namespace patched");
            result(state, Some(labels), None)
        }
        Applied::Written { .. } => result(
            ResultState::Failed,
            None,
            Some("the server's answer was not a namespace".to_string()),
        ),
        Applied::Unneeded { .. } => match settled {
            Some(Settled::Unchanged(labels, why)) => {
                result(ResultState::Unchanged, Some(labels), Some(why))
            }
            None => result(ResultState::Unchanged, None, None),
        },
        Applied::Failed { error, .. } => {
            result(ResultState::Failed, None, Some(format!("{error:#}")))
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::api::fake::{reply, replying};
    use crate::mesh::control_plane::ControlPlane;
    use crate::mesh::fixtures::{ClusterFixture, namespace};
    use crate::mesh::relabel::Operation;
    use serde_json::json;

    fn control_plane() -> ControlPlane {
        ControlPlane::from_snapshot(
            &ClusterFixture::new()
                .revision("1-21-2", "1.21.2")
                .revision("1-22-3", "1.22.3")
                .build(),
        )
    }

    fn move_to_1_22_3(names: &[String]) -> (RelabelRequest, Vec<NamespaceState>) {
        let request = RelabelRequest {
            operation: Operation::Move {
                to: "1-22-3".into(),
            },
            namespaces: NamespaceSelection::Named(names.to_vec()),
            selector: None,
            from: None,
            force: false,
        };
        let states = names
            .iter()
            .map(|name| NamespaceState {
                info: namespace(name, &[("istio.io/rev", "1-21-2")]),
                resource_version: "1".into(),
                previous_labels: None,
            })
            .collect();
        (request, states)
    }

    /// A server that answers every patch with the namespace on 1-22-3, and
    /// presses Ctrl-C as the first one arrives.
    fn pressing_on_the_first_patch() -> (ApiClient, crate::api::fake::Requests, Interrupts) {
        let (interrupts, ctrl_c) = Interrupts::manual();
        let (api, seen) = replying(move |_, path, _, _| {
            ctrl_c.press();
            let name = path.rsplit('/').next().unwrap_or_default().to_string();
            reply(
                200,
                json!({"metadata": {"name": name, "labels": {"istio.io/rev": "1-22-3"}}}),
            )
        });
        (api, seen, interrupts)
    }

    #[tokio::test]
    async fn ctrl_c_while_every_patch_is_in_flight_still_ends_the_run_as_interrupted() {
        let control_plane = control_plane();
        let names = vec!["shop".to_string(), "cart".to_string()];
        let (request, states) = move_to_1_22_3(&names);
        let planner = Planner::new(&control_plane, &request).unwrap();
        let plan = planner.plan(&states);
        let (api, seen, interrupts) = pressing_on_the_first_patch();
        let run = apply_relabel(&api, &planner, &plan, &request, &interrupts).await;
        let states: Vec<ResultState> = run.results.iter().map(|r| r.state).collect();
        assert_eq!(states, [ResultState::Relabelled; 2]);
        assert!(run.interrupted, "what follows the patches must not start");
        assert_eq!(seen.lock().unwrap().len(), 2);
    }

    #[tokio::test]
    async fn ctrl_c_lets_the_patches_in_flight_finish_and_sends_no_more() {
        let control_plane = control_plane();
        let names: Vec<String> = (0..CONCURRENT_PATCHES + 3)
            .map(|i| format!("team-{i:02}"))
            .collect();
        let (request, states) = move_to_1_22_3(&names);
        let planner = Planner::new(&control_plane, &request).unwrap();
        let plan = planner.plan(&states);
        assert_eq!(plan.changes.len(), names.len());
        let (api, seen, interrupts) = pressing_on_the_first_patch();
        let run = apply_relabel(&api, &planner, &plan, &request, &interrupts).await;
        let states: Vec<ResultState> = run.results.iter().map(|r| r.state).collect();
        let sent = CONCURRENT_PATCHES;
        assert_eq!(states[..sent], vec![ResultState::Relabelled; sent][..]);
        assert_eq!(states[sent..], [ResultState::NotSent; 3]);
        assert!(run.interrupted);
        assert_eq!(seen.lock().unwrap().len(), sent, "no patch after the press");
    }
}
