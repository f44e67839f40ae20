//! The Gateway move as text for a person: which revision the Gateway is on
//! and goes to, the prechecks, the exact patch, what happens after; and the
//! sentence a run ends with. Pure and colourless; sentences and the DETAIL
//! column wrap at a terminal, labels, names and the patch never do.

use std::fmt::Write as _;
use std::time::Duration;

use super::Layout;
use super::gateway_switch::plan_body;
use crate::duration::human_duration;
use crate::mesh::gateway_api::RevisionSource;
use crate::mesh::gateway_move::{MoveEnd, MovePlan, MoveView, pods};
use crate::mesh::gateway_switch::{SwitchMode, Verdict};
use crate::run::gateway_move::{MoveRun, Progress};
use crate::wrap::unbreakable;

/// `1-22-3 (istio.io/rev=1-22-3, proxy 1.22.3)`.
fn end_text(end: &MoveEnd) -> String {
    let from = match end.revision_from {
        RevisionSource::Gateway => MovePlan::label_text(end.label.as_deref()),
        RevisionSource::Namespace => "its namespace's istio.io/rev".to_string(),
        RevisionSource::Default => "the default".to_string(),
    };
    format!(
        "{} ({from}, proxy {})",
        end.revision.as_deref().unwrap_or("no revision"),
        end.version.as_deref().unwrap_or("?")
    )
}

/// The plan: headline, revisions, prechecks, patch, and what follows.
pub fn plan_text(plan: &MovePlan, timeout: Duration, rehearsal: bool, layout: &Layout) -> String {
    let wrap = layout.wrap();
    let mut out = String::new();
    let _ = writeln!(
        out,
        "Gateway {} (class {}; Deployment and Service {})",
        plan.gateway_ref(),
        plan.class,
        plan.deployment
    );
    let indent = " ".repeat(14);
    wrap.push(
        &mut out,
        &format!("  served by  {}", unbreakable(&end_text(&plan.from))),
        &indent,
    );
    let label = match plan.mode {
        SwitchMode::Switch => "move to  ",
        SwitchMode::Rollback => "back to  ",
    };
    wrap.push(
        &mut out,
        &format!("  {label}  {}", unbreakable(&end_text(&plan.to))),
        &indent,
    );

    let waits = format!(
        "for istiod {} to re-render {} with {}, the rollout to finish with every pod on it, the Gateway to be Programmed and the EndpointSlices of {} to list only those pods; if not, puts the label back and verifies that.",
        plan.to.revision.as_deref().unwrap_or("?"),
        plan.deployment,
        plan.to.image.as_deref().unwrap_or("its proxy"),
        plan.service,
    );
    let nothing_to_do = format!(
        "The Gateway already has {}: nothing to do.",
        MovePlan::label_text(plan.to.label.as_deref())
    );
    plan_body(
        &mut out,
        plan,
        timeout,
        rehearsal,
        layout,
        nothing_to_do,
        waits,
    );
    out
}

/// The command that moves it back.
pub fn rollback_command(plan: &MovePlan) -> String {
    format!(
        "kubectl mesh-upgrade gateway-switch -n {} --gateway {} --rollback",
        plan.namespace, plan.gateway
    )
}

fn last_seen(view: &MoveView, target: &MoveEnd) -> String {
    view.describe(target)
}

/// The sentence a move the engine ran ends with: what state the Gateway is
/// in (the result and the views seen are the run's own).
pub fn run_message(plan: &MovePlan, run: &MoveRun, timeout: Duration) -> String {
    let to = MovePlan::label_text(plan.to.label.as_deref());
    let from = MovePlan::label_text(plan.from.label.as_deref());
    let failure = |first: &Progress| match first {
        Progress::Failed(view, why) => format!(
            "the move of Gateway {} to {to} failed ({why}; last seen: {})",
            plan.gateway_ref(),
            last_seen(view, &plan.to)
        ),
        other => format!(
            "Gateway {} did not converge on {} within {} (last seen: {})",
            plan.gateway_ref(),
            plan.to.revision.as_deref().unwrap_or("?"),
            human_duration(timeout),
            last_seen(other.view(), &plan.to)
        ),
    };
    match run {
        MoveRun::InterruptedBeforeWrite => format!(
            "interrupted before the move: Gateway {} was not changed",
            plan.gateway_ref()
        ),
        MoveRun::NotApplied(err) => format!("{err:#}"),
        MoveRun::Switched(view) => {
            let (did, back) = match plan.mode {
                SwitchMode::Switch => ("Moved", "Roll back with"),
                SwitchMode::Rollback => ("Rolled back", "Move forward again with"),
            };
            let forced = if plan.verdict == Verdict::Forced {
                " (forced past failed prechecks)"
            } else {
                ""
            };
            format!(
                "{did} Gateway {} to {} ({to}){forced}: istiod re-rendered {}; {} on {}, all Ready; the Gateway is Programmed, and the EndpointSlices of {} list only them.\n{back}: {}",
                plan.gateway_ref(),
                plan.to.revision.as_deref().unwrap_or("?"),
                plan.deployment,
                pods(view.pods_on_target),
                plan.to.version.as_deref().unwrap_or("the target proxy"),
                plan.service,
                rollback_command(plan)
            )
        }
        MoveRun::Interrupted(view) => format!(
            "interrupted while waiting: Gateway {} has {to} now and istiod may be rolling it (last seen: {}); to go back run: {}",
            plan.gateway_ref(),
            last_seen(view, &plan.to),
            rollback_command(plan)
        ),
        MoveRun::UndoFailed { first, error } => format!(
            "{}, and putting it back failed ({error:#}): the Gateway may still have {to}; set {from} back by hand (kubectl label gateway {} -n {} istio.io/rev{})",
            failure(first),
            plan.gateway,
            plan.namespace,
            match &plan.from.label {
                Some(value) => format!("={value} --overwrite"),
                None => "-".to_string(),
            }
        ),
        MoveRun::RolledBack { first, back } => {
            let failure = failure(first);
            match back {
                Progress::Converged(view) => format!(
                    "{failure}; put it back to {from}: istiod {} re-rendered it and it is verified ({} on {}, Programmed, endpoints: {})",
                    plan.from.revision.as_deref().unwrap_or("?"),
                    pods(view.pods_on_target),
                    plan.from.version.as_deref().unwrap_or("?"),
                    view.endpoints.describe()
                ),
                Progress::TimedOut(view) => format!(
                    "{failure}; put it back to {from}, but it did not converge either (last seen: {}): check its Deployment {}",
                    last_seen(view, &plan.from),
                    plan.deployment
                ),
                Progress::Failed(view, why) => format!(
                    "{failure}; put it back to {from}, but that could not be verified ({why}; last seen: {}): check it",
                    last_seen(view, &plan.from)
                ),
                Progress::Interrupted(view) => format!(
                    "{failure}; put it back to {from}, interrupted before that was verified (last seen: {})",
                    last_seen(view, &plan.from)
                ),
            }
        }
    }
}
