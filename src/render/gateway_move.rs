//! The Gateway move as text for a person: which revision the Gateway is on
//! and goes to, the prechecks, the exact patch, what happens after; and the
//! sentence a run ends with. Pure and colourless; sentences and the DETAIL
//! column wrap at a terminal, labels, names and the patch never do.

use std::fmt::Write as _;
use std::time::Duration;

use super::Layout;
use super::table::{Fit, Table};
use crate::duration::human_duration;
use crate::mesh::gateway_api::RevisionSource;
use crate::mesh::gateway_move::{MoveEnd, MoveOutcome, MovePlan, MoveView, pods};
use crate::mesh::gateway_switch::{SwitchMode, SwitchResult, Verdict};
use crate::mesh::gateways::TakeoverCheck;
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

    out.push('\n');
    out.push_str(&checks_table(plan, layout));

    if let Some(action) = &plan.action {
        if plan.verdict != Verdict::Refused {
            let _ = writeln!(out, "\nPATCH {} ({})", action.target, action.patch_type);
            let _ = writeln!(out, "  {}", action.write.body_to_send());
        }
    }

    out.push('\n');
    let closing = match plan.verdict {
        Verdict::AlreadySelected => format!(
            "The Gateway already has {}: nothing to do.",
            MovePlan::label_text(plan.to.label.as_deref())
        ),
        Verdict::Refused => {
            let blocking = plan.blocking().len();
            format!(
                "Refused: {blocking} precheck{} failed; nothing will be changed.",
                if blocking == 1 { "" } else { "s" }
            )
        }
        Verdict::Proceed | Verdict::Forced => {
            let forced: Vec<&str> = plan.overridden().iter().map(|c| c.check.as_str()).collect();
            let forced = if forced.is_empty() {
                String::new()
            } else {
                format!("--force overrides {}. ", forced.join(", "))
            };
            let when = if rehearsal {
                "A real run applies the patch, then waits"
            } else {
                "After the patch, waits"
            };
            format!(
                "{forced}{when} up to {} for istiod {} to re-render {} with {}, the rollout to finish with every pod on it, the Gateway to be Programmed and the EndpointSlices of {} to list only those pods; if not, puts the label back and verifies that.",
                human_duration(timeout),
                plan.to.revision.as_deref().unwrap_or("?"),
                plan.deployment,
                plan.to.image.as_deref().unwrap_or("its proxy"),
                plan.service,
            )
        }
    };
    wrap.push(&mut out, &closing, "");
    out
}

/// `PRECHECK  RESULT  DETAIL`, the detail wrapped under itself.
fn checks_table(plan: &MovePlan, layout: &Layout) -> String {
    let mut table = Table::new(
        *layout,
        &[
            ("PRECHECK", Fit::Whole),
            ("RESULT", Fit::Whole),
            ("DETAIL", Fit::Words),
        ],
    );
    for c in &plan.prechecks {
        table.row([c.check.as_str(), result(c, plan.force), c.reason.as_str()]);
    }
    table.render()
}

fn result(check: &TakeoverCheck, force: bool) -> &'static str {
    match (check.passed, check.hard, force) {
        (true, _, _) => "ok",
        (false, true, _) => "FAIL",
        (false, false, true) => "forced",
        (false, false, false) => "FAIL (soft)",
    }
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

/// The outcome of a move the engine ran.
pub fn run_outcome(plan: &MovePlan, run: &MoveRun, timeout: Duration) -> MoveOutcome {
    let outcome = |result, progress, rollback_progress, message| MoveOutcome {
        result,
        progress,
        rollback_progress,
        message,
    };
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
        MoveRun::InterruptedBeforeWrite => outcome(
            SwitchResult::Interrupted,
            None,
            None,
            format!(
                "interrupted before the move: Gateway {} was not changed",
                plan.gateway_ref()
            ),
        ),
        MoveRun::NotApplied(err) => outcome(SwitchResult::Refused, None, None, format!("{err:#}")),
        MoveRun::Moved(view) => {
            let (did, back) = match plan.mode {
                SwitchMode::Switch => ("Moved", "Roll back with"),
                SwitchMode::Rollback => ("Rolled back", "Move forward again with"),
            };
            let forced = if plan.verdict == Verdict::Forced {
                " (forced past failed prechecks)"
            } else {
                ""
            };
            outcome(
                SwitchResult::Switched,
                Some(view.clone()),
                None,
                format!(
                    "{did} Gateway {} to {} ({to}){forced}: istiod re-rendered {}; {} on {}, all Ready; the Gateway is Programmed, and the EndpointSlices of {} list only them.\n{back}: {}",
                    plan.gateway_ref(),
                    plan.to.revision.as_deref().unwrap_or("?"),
                    plan.deployment,
                    pods(view.pods_on_target),
                    plan.to.version.as_deref().unwrap_or("the target proxy"),
                    plan.service,
                    rollback_command(plan)
                ),
            )
        }
        MoveRun::Interrupted(view) => outcome(
            SwitchResult::Interrupted,
            Some(view.clone()),
            None,
            format!(
                "interrupted while waiting: Gateway {} has {to} now and istiod may be rolling it (last seen: {}); to go back run: {}",
                plan.gateway_ref(),
                last_seen(view, &plan.to),
                rollback_command(plan)
            ),
        ),
        MoveRun::UndoFailed { first, error } => outcome(
            SwitchResult::RollbackFailed,
            Some(first.view().clone()),
            None,
            format!(
                "{}, and putting it back failed ({error:#}): the Gateway may still have {to}; set {from} back by hand (kubectl label gateway {} -n {} istio.io/rev{})",
                failure(first),
                plan.gateway,
                plan.namespace,
                match &plan.from.label {
                    Some(value) => format!("={value} --overwrite"),
                    None => "-".to_string(),
                }
            ),
        ),
        MoveRun::RolledBack { first, back } => {
            let failure = failure(first);
            let (result, message) = match &**back {
                Progress::Converged(view) => (
                    SwitchResult::RolledBack,
                    format!(
                        "{failure}; put it back to {from}: istiod {} re-rendered it and it is verified ({} on {}, Programmed, endpoints: {})",
                        plan.from.revision.as_deref().unwrap_or("?"),
                        pods(view.pods_on_target),
                        plan.from.version.as_deref().unwrap_or("?"),
                        view.endpoints.describe()
                    ),
                ),
                Progress::TimedOut(view) => (
                    SwitchResult::RollbackFailed,
                    format!(
                        "{failure}; put it back to {from}, but it did not converge either (last seen: {}): check its Deployment {}",
                        last_seen(view, &plan.from),
                        plan.deployment
                    ),
                ),
                Progress::Failed(view, why) => (
                    SwitchResult::RollbackFailed,
                    format!(
                        "{failure}; put it back to {from}, but that could not be verified ({why}; last seen: {}): check it",
                        last_seen(view, &plan.from)
                    ),
                ),
                Progress::Interrupted(view) => (
                    SwitchResult::Interrupted,
                    format!(
                        "{failure}; put it back to {from}, interrupted before that was verified (last seen: {})",
                        last_seen(view, &plan.from)
                    ),
                ),
            };
            outcome(
                result,
                Some(first.view().clone()),
                Some(back.view().clone()),
                message,
            )
        }
    }
}
