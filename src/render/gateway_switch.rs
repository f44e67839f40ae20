//! The switch plan as text for a person: what changes on which Service, the
//! prechecks with their verdicts, the exact patch, and what happens after.
//! Pure and colourless; sentences and the DETAIL column wrap at a terminal,
//! selectors, names and the patch (a line to copy) never do.

use std::fmt::Write as _;
use std::time::Duration;

use super::table::{Fit, Table};
use super::{Layout, human_duration};
use crate::mesh::gateway_switch::{SwitchMode, SwitchPlan, Verdict};
use crate::mesh::gateways::{TakeoverCheck, selector_text};
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

    out.push('\n');
    out.push_str(&checks_table(plan, layout));

    if let Some(action) = &plan.action {
        if plan.verdict != Verdict::Refused {
            let _ = writeln!(out, "\nPATCH {} ({})", action.target, action.patch_type);
            let _ = writeln!(out, "  {}", action.patch);
        }
    }

    out.push('\n');
    let closing = match plan.verdict {
        Verdict::AlreadySelected => format!(
            "The Service already selects {}: nothing to do.",
            selector_text(&plan.to_selector)
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
                "{forced}{when} up to {} for the EndpointSlices of {} to list only Ready pods matching {}; if they do not, switches back and verifies that.",
                human_duration(timeout),
                plan.service,
                selector_text(&plan.to_selector)
            )
        }
    };
    wrap.push(&mut out, &closing, "");
    out
}

/// `PRECHECK  RESULT  DETAIL`, the detail wrapped under itself.
fn checks_table(plan: &SwitchPlan, layout: &Layout) -> String {
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
