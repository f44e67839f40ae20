//! Applying a [`RelabelPlan`]: one merge patch per namespace, a few at once.
//!
//! ```text
//! plan.changes ─► apply(write on resourceVersion) ─► labels as planned? ─► relabelled
//!                   409 ─► GET ─► Planner::evaluate(fresh) ─► Change: patch again (bounded)
//!                                                          └► Skip / not selected: unchanged, why
//! ```
//!
//! The re-plan is the plan's own rule on the namespace as it is now, so
//! another writer's change is kept (or makes this one unnecessary) instead
//! of being overwritten. A 5xx after the server stored the patch is retried
//! by the API layer with the old resourceVersion, gets a 409, and the
//! re-read shows the labels already in place: nothing is written twice.

use futures::StreamExt;
use k8s_openapi::api::core::v1::Namespace;
use serde_json::Value;

use super::apply::{Applied, Replan, Sent, apply};
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

/// Patch every planned namespace, a few at a time; results in plan order.
pub async fn apply_relabel(
    writer: &ApiClient,
    planner: &Planner<'_>,
    plan: &RelabelPlan,
    request: &RelabelRequest,
) -> Vec<NamespaceResult> {
    let explicit = |name: &str| match &request.namespaces {
        NamespaceSelection::Named(names) => names.iter().any(|n| n == name),
        _ => false,
    };
    futures::stream::iter(plan.changes.iter())
        .map(|change| apply_one(writer, planner, change, explicit(&change.namespace)))
        .buffered(CONCURRENT_PATCHES)
        .collect()
        .await
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
