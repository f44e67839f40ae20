//! The switch plan as text for a person: what changes on which Service, the
//! prechecks with their verdicts, the exact patch, and what happens after.
//! Pure and colourless; sentences and the DETAIL column wrap at a terminal,
//! selectors, names and the patch (a line to copy) never do. What follows a
//! plan's headline ([`plan_body`]) is the Gateway move's too.

use std::fmt::Write as _;
use std::time::Duration;

use super::Layout;
use super::table::{Fit, Table};
use crate::duration::human_duration;
use crate::mesh::gateway_switch::{CutoverPlan, EndpointView, SwitchMode, SwitchPlan, Verdict};
use crate::mesh::gateways::{TakeoverCheck, selector_text};
use crate::run::switch::{SwitchRun, Verification};
use crate::wrap::unbreakable;

/// The plan: headline, selectors, prechecks, patch, and what follows.
/// `timeout` is how long verification waits; `rehearsal` is a dry run (the
/// closing line then says what a real run would do).
pub fn plan_text(plan: &SwitchPlan, timeout: Duration, rehearsal: bool, layout: &Layout) -> String {
    let wrap = layout.wrap();
    let mut out = String::new();
    let _ = writeln!(
        out,
        "Service {} ({})",
        plan.service_ref(),
        plan.service_type
    );
    let now_revisions = if plan.from_revisions.is_empty() {
        "no gateway".to_string()
    } else {
        format!("revision {}", plan.from_revisions.join(", "))
    };
    let indent = " ".repeat(16);
    wrap.push(
        &mut out,
        &format!(
            "  selector now  {}  ({now_revisions})",
            unbreakable(&selector_text(&plan.from_selector))
        ),
        &indent,
    );
    if !plan.to_selector.is_empty() {
        let label = match plan.mode {
            SwitchMode::Switch => "switch to   ",
            SwitchMode::Rollback => "roll back to",
        };
        let ready = plan.target_pods.iter().filter(|p| p.ready).count();
        let gateways = if plan.target_gateways.is_empty() {
            "no gateway Deployment".to_string()
        } else {
            plan.target_gateways.join(", ")
        };
        let revision = plan
            .target_revision
            .as_deref()
            .map(|r| format!("revision {r}: "))
            .unwrap_or_default();
        let pods = if plan.target_pods.is_empty() {
            "no pods match".to_string()
        } else {
            format!(
                "{revision}{gateways}, {ready} of {} pods Ready",
                plan.target_pods.len()
            )
        };
        wrap.push(
            &mut out,
            &format!(
                "  {label}  {}  ({pods})",
                unbreakable(&selector_text(&plan.to_selector))
            ),
            &indent,
        );
    }

    let waits = format!(
        "for the EndpointSlices of {} to list only Ready pods matching {}; if they do not, switches back and verifies that.",
        plan.service,
        selector_text(&plan.to_selector)
    );
    let nothing_to_do = format!(
        "The Service already selects {}: nothing to do.",
        selector_text(&plan.to_selector)
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

/// What follows a plan's headline, the Service switch's and the Gateway
/// move's alike: the prechecks, the patch (unless refused), and the closing
/// sentence: `nothing_to_do` when the target is in place already, else
/// what a run does after the patch, whose `waits` says what for.
pub(super) fn plan_body(
    out: &mut String,
    plan: &impl CutoverPlan,
    timeout: Duration,
    rehearsal: bool,
    layout: &Layout,
    nothing_to_do: String,
    waits: String,
) {
    out.push('\n');
    out.push_str(&checks_table(plan, layout));

    if let Some(action) = plan.action() {
        if plan.verdict() != Verdict::Refused {
            let _ = writeln!(out, "\nPATCH {} ({})", action.target, action.patch_type);
            let _ = writeln!(out, "  {}", action.write.body_to_send());
        }
    }

    out.push('\n');
    let closing = match plan.verdict() {
        Verdict::AlreadySelected => nothing_to_do,
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
            format!("{forced}{when} up to {} {waits}", human_duration(timeout))
        }
    };
    layout.wrap().push(out, &closing, "");
}

/// `PRECHECK  RESULT  DETAIL`, the detail wrapped under itself.
fn checks_table(plan: &impl CutoverPlan, layout: &Layout) -> String {
    let mut table = Table::new(
        *layout,
        &[
            ("PRECHECK", Fit::Whole),
            ("RESULT", Fit::Whole),
            ("DETAIL", Fit::Words),
        ],
    );
    for c in plan.prechecks() {
        table.row([c.check.as_str(), result(c, plan.force()), c.reason.as_str()]);
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

/// The command that switches back.
pub fn rollback_command(plan: &SwitchPlan) -> String {
    format!(
        "kubectl mesh-upgrade gateway-switch -n {} --service {} --rollback",
        plan.namespace, plan.service
    )
}

/// The last line of a verified switch.
fn success_message(plan: &SwitchPlan, view: &EndpointView) -> String {
    let gateways = if plan.target_gateways.is_empty() {
        String::new()
    } else {
        format!(" of {}", plan.target_gateways.join(", "))
    };
    let forced = if plan.verdict == Verdict::Forced {
        " (forced past failed prechecks)"
    } else {
        ""
    };
    let (did, back) = match plan.mode {
        SwitchMode::Switch => ("Switched", "Roll back with"),
        SwitchMode::Rollback => ("Rolled back", "Switch forward again with"),
    };
    let ready = match view.ready.len() {
        1 => "the 1 Ready pod".to_string(),
        n => format!("the {n} Ready pods"),
    };
    let tolerated = match view.tolerated.len() {
        0 => String::new(),
        n => format!(" (and {n} not Ready, as before the switch)"),
    };
    format!(
        "{did} Service {} to {}{forced}: its EndpointSlices list {ready}{gateways}{tolerated} and no other pod.\n{back}: {}",
        plan.service_ref(),
        selector_text(&plan.to_selector),
        rollback_command(plan)
    )
}

/// The sentence a switch the engine ran ends with: what state the Service
/// is in (the result and the endpoints seen are the run's own).
pub fn run_message(plan: &SwitchPlan, run: &SwitchRun<EndpointView>, timeout: Duration) -> String {
    let to = selector_text(&plan.to_selector);
    let from = selector_text(&plan.from_selector);
    let failure = |first: &Verification<EndpointView>| match first {
        Verification::Failed(view, err) => {
            let seen = if *view == EndpointView::default() {
                String::new()
            } else {
                format!("; last seen: {}", view.describe())
            };
            format!(
                "the switch of Service {} to {to} could not be verified ({err}{seen})",
                plan.service_ref(),
            )
        }
        other => format!(
            "the EndpointSlices of Service {} did not list only Ready pods matching {to} within {} (last seen: {})",
            plan.service_ref(),
            human_duration(timeout),
            other.view().describe()
        ),
    };
    match run {
        SwitchRun::InterruptedBeforeWrite => format!(
            "interrupted before the switch: Service {} was not changed",
            plan.service_ref()
        ),
        SwitchRun::NotApplied(err) => format!("{err:#}"),
        SwitchRun::Switched(view) => success_message(plan, view),
        SwitchRun::Interrupted(view) => format!(
            "interrupted while verifying: Service {} selects {to} now (endpoints: {}); to go back run: {}",
            plan.service_ref(),
            view.describe(),
            rollback_command(plan)
        ),
        SwitchRun::UndoFailed { first, error } => format!(
            "{}, and switching back failed ({error:#}): the Service may still select {to}; restore {from} by hand",
            failure(first)
        ),
        SwitchRun::RolledBack { first, back } => {
            let failure = failure(first);
            match back {
                Verification::Converged(view) => format!(
                    "{failure}; switched back to {from}, and its endpoints are verified ({})",
                    view.describe()
                ),
                Verification::TimedOut(view) => format!(
                    "{failure}; switched back to {from}, but its endpoints did not converge either (last seen: {}): check the gateway pods",
                    view.describe()
                ),
                Verification::Failed(_, err) => {
                    let why = match first {
                        Verification::Failed(_, first_err) if first_err == err => String::new(),
                        _ => format!(" ({err})"),
                    };
                    format!(
                        "{failure}; switched back to {from}, but its endpoints could not be verified either{why}: check them"
                    )
                }
                Verification::Interrupted(view) => format!(
                    "{failure}; switched back to {from}, interrupted before its endpoints were verified (last seen: {})",
                    view.describe()
                ),
            }
        }
    }
}
