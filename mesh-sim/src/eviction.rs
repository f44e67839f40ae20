//! `POST pods/<name>/eviction`: the API server's eviction subresource,
//! written from Kubernetes' `pkg/registry/core/pod/storage/eviction.go`.
//! The API serves it (`server/objects.rs`), and the controllers that evict
//! (Argo Rollouts' restarts) go through the same rule.
//!
//! ```text
//! pod Pending / Succeeded / Failed / being deleted ─► delete (no budget asked)
//! budgets selecting the pod:   none ─► delete
//!                              two or more ─► 500 "more than one PodDisruptionBudget"
//!                              one: pod not Ready and the budget healthy ─► delete
//!                                   status not observed yet ─► 429, Retry-After 10
//!                                   disruptionsAllowed 0 ─► 429 with a DisruptionBudget cause
//!                                   else ─► disruptionsAllowed - 1, pod in disruptedPods ─► delete
//! ```
//!
//! The decrement is what makes two evictions racing for the last allowed
//! disruption fail one of them: it is written to the budget's status in the
//! same step as the deletion, before the disruption controller runs again
//! (which then drops the pod from `disruptedPods` once it is gone).

use serde_json::{Value, json};

use crate::controllers::pods;
use crate::controllers::util::{self, At, fmt_time, i64_at, set_condition};
use crate::error::{ApiError, ApiResult};
use crate::resources::kinds;
use crate::selectors::{label_selector_matches, labels_of};
use crate::world::{World, WriteOptions};

/// The cause type the API server attaches to a refusal by a budget.
pub const DISRUPTION_BUDGET_CAUSE: &str = "DisruptionBudget";

/// The sentence of every eviction a budget refuses.
const REFUSED: &str = "Cannot evict pod as it would violate the pod's disruption budget.";

/// Evicts `name` as the API server would; `body` is the Eviction object
/// (its `deleteOptions` may carry `dryRun` and `preconditions`).
pub fn evict(
    world: &mut World,
    namespace: &str,
    name: &str,
    body: &Value,
    opts: &WriteOptions,
) -> ApiResult<()> {
    let mut opts = opts.clone();
    let delete_options = body.get("deleteOptions").cloned().unwrap_or(Value::Null);
    if delete_options
        .get("dryRun")
        .and_then(Value::as_array)
        .is_some_and(|d| d.iter().any(|v| v == "All"))
    {
        opts.dry_run = true;
    }
    if let Some(body_name) = body.at("/metadata/name").and_then(Value::as_str) {
        if !body_name.is_empty() && body_name != name {
            return Err(ApiError::bad_request(
                "name in URL does not match name in Eviction object",
            ));
        }
    }
    let pod_kind = kinds::pods();
    let pod = world
        .store
        .get(pod_kind, namespace, name)
        .ok_or_else(|| ApiError::not_found(pod_kind.plural, name))?;
    check_preconditions(&pod, delete_options.get("preconditions"))?;

    let phase = pods::phase(&pod);
    let ignores_budgets =
        matches!(phase, "Pending" | "Succeeded" | "Failed") || util::is_being_deleted(&pod);
    if !ignores_budgets {
        check_budget(world, namespace, &pod, opts.dry_run)?;
    }
    world.delete(pod_kind, namespace, name, &opts)?;
    Ok(())
}

/// A `deleteOptions.preconditions` that no longer holds is a conflict.
fn check_preconditions(pod: &Value, preconditions: Option<&Value>) -> ApiResult<()> {
    let Some(pre) = preconditions else {
        return Ok(());
    };
    for (field, label) in [("uid", "UID"), ("resourceVersion", "ResourceVersion")] {
        let Some(wanted) = pre.get(field).and_then(Value::as_str) else {
            continue;
        };
        let actual = pod
            .at(&format!("/metadata/{field}"))
            .and_then(Value::as_str)
            .unwrap_or("");
        if wanted != actual {
            return Err(ApiError::conflict(
                "pods",
                util::name_of(pod),
                &format!(
                    "Precondition failed: {label} in precondition: {wanted}, {label} in object meta: {actual}"
                ),
            ));
        }
    }
    Ok(())
}

/// The budget's verdict on evicting `pod`; on yes (not a dry run), the
/// budget's status records the disruption.
fn check_budget(world: &mut World, namespace: &str, pod: &Value, dry_run: bool) -> ApiResult<()> {
    let labels = labels_of(pod);
    let budgets: Vec<_> = world
        .store
        .list(kinds::pdbs(), Some(namespace))
        .filter(|pdb| {
            // A budget with a null or empty selector matches nothing here.
            let selector = pdb.at("/spec/selector").cloned().unwrap_or(Value::Null);
            let empty = selector.as_object().is_none_or(|s| {
                s.get("matchLabels")
                    .and_then(Value::as_object)
                    .is_none_or(|m| m.is_empty())
                    && s.get("matchExpressions")
                        .and_then(Value::as_array)
                        .is_none_or(|e| e.is_empty())
            });
            !empty && label_selector_matches(&selector, &labels).unwrap_or(false)
        })
        .collect();
    let budget = match budgets.as_slice() {
        [] => return Ok(()),
        [one] => one.clone(),
        _ => {
            return Err(ApiError::internal(
                "This pod has more than one PodDisruptionBudget, which the eviction subresource does not support.",
            ));
        }
    };
    let budget_name = util::name_of(&budget).to_string();
    let current_healthy = i64_at(&budget, "/status/currentHealthy").unwrap_or(0);
    let desired_healthy = i64_at(&budget, "/status/desiredHealthy").unwrap_or(0);
    if !pods::is_ready(pod) && current_healthy >= desired_healthy && desired_healthy > 0 {
        // An unready pod is not one of the healthy ones the budget counts.
        return Ok(());
    }
    if i64_at(&budget, "/status/observedGeneration").unwrap_or(0) < util::generation_of(&budget) {
        let mut e = refused(None).with_cause(
            DISRUPTION_BUDGET_CAUSE,
            format!("The disruption budget {budget_name} is still being processed by the server."),
        );
        e.retry_after = Some(10);
        return Err(e);
    }
    let allowed = i64_at(&budget, "/status/disruptionsAllowed").unwrap_or(0);
    if allowed < 0 {
        return Err(ApiError::forbidden_because(
            "poddisruptionbudget",
            &budget_name,
            "pdb disruptions allowed is negative",
        ));
    }
    if allowed == 0 {
        return Err(refused(Some(format!(
            "The disruption budget {budget_name} needs {desired_healthy} healthy pods and has {current_healthy} currently"
        ))));
    }
    if dry_run {
        return Ok(());
    }
    let now = fmt_time(world.clock.now());
    let mut status = budget.get("status").cloned().unwrap_or_else(|| json!({}));
    status["disruptionsAllowed"] = json!(allowed - 1);
    if allowed - 1 == 0 {
        let mut conditions = util::conditions_of(&budget);
        set_condition(
            &mut conditions,
            "DisruptionAllowed",
            "False",
            "InsufficientPods",
            "",
            &now,
            false,
        );
        status["conditions"] = json!(conditions);
    }
    if !status.get("disruptedPods").is_some_and(Value::is_object) {
        status["disruptedPods"] = json!({});
    }
    status["disruptedPods"][util::name_of(pod)] = json!(now);
    util::write_status(world, kinds::pdbs(), &budget, status);
    Ok(())
}

/// The 429 a budget answers, with the cause when there is one; no
/// `Retry-After` (the API server sends none for "no disruption allowed").
fn refused(cause: Option<String>) -> ApiError {
    let mut e = ApiError::too_many_requests(0);
    e.retry_after = None;
    e.message = REFUSED.to_string();
    match cause {
        Some(cause) => e.with_cause(DISRUPTION_BUDGET_CAUSE, cause),
        None => e,
    }
}
