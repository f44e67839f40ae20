//! `kubectl mesh-upgrade ztunnel-roll`: the wiring from flags to the plan,
//! the question and the engine.
//!
//! ```text
//! flags ─► ZtunnelRollConfig ─► collect (every namespace: a node's pods are anyone's)
//!       ─► mesh::ztunnel_roll::plan (pure) ─► show the plan ─► refusals? (exit 5, nothing written)
//!       ─► confirm ─► Ctrl-C handler ─► run::ztunnel_roll (cordon, evict, replace, wait, uncordon)
//!       ─► report; what was written and which nodes are left cordoned; exit code
//! ```

use chrono::Utc;

use crate::api::WriteMode;
use crate::cli::{DryRun, GlobalArgs, ZtunnelRollArgs};
use crate::collect::{CollectOptions, NODES_UNREADABLE, collect};
use crate::config::ZtunnelRollConfig;
use crate::confirm::{self, Decision};
use crate::error::{Error, ExitCode};
use crate::mesh::ztunnel_roll::{NodeOutcome, RollOptions, RollReport, plan};
use crate::output::Output;
use crate::render::ztunnel_roll::{plan_text, report_text, written_and_undo};
use crate::run::Interrupts;
use crate::run::ztunnel_roll::{RollSettings, run_roll};
use crate::snapshot::{DEFAULT_CONTROL_PLANE_NAMESPACE, Scope};

/// Roll ztunnel node by node.
pub async fn run(
    global: &GlobalArgs,
    args: &ZtunnelRollArgs,
    output: &Output,
) -> anyhow::Result<ExitCode> {
    if !global.namespaces.is_empty() {
        return Err(Error::Usage(
            "ztunnel-roll works on nodes, whatever namespace their pods are in: -n does not apply (name nodes, or select them with -l)"
                .to_string(),
        )
        .into());
    }
    let config = ZtunnelRollConfig {
        options: RollOptions {
            nodes: args.nodes.clone(),
            node_selector: super::label_selector(global)?,
            drain: !args.no_drain,
            nodes_at_once: usize::from(args.nodes_at_once),
        },
        timeout: args.timeout,
    };
    let api = super::connect(global).await?;
    let collected = collect(
        &api,
        &CollectOptions {
            scope: Scope::All,
            control_plane_namespace: DEFAULT_CONTROL_PLANE_NAMESPACE.to_string(),
            selector: None,
        },
    )
    .await?;
    if let Some(unreadable) = collected.unreadable.iter().find(|u| u.resource == "nodes") {
        anyhow::bail!(
            "{NODES_UNREADABLE}, and ztunnel-roll cordons nodes: {}",
            unreadable.reason
        );
    }
    for warning in &collected.warnings {
        output.warn(warning);
    }
    // The clock is read once: every cordon of this run carries this time.
    let now = Utc::now();
    let plan = plan(&collected.snapshot, &config.options, now)
        .map_err(|e| anyhow::Error::from(Error::Usage(e.to_string())))?;
    let client_dry_run = args.write.dry_run == DryRun::Client;
    output.show_plan(
        &plan,
        || plan_text(&plan, &output.text_layout()),
        client_dry_run,
    )?;
    if !plan.refusals.is_empty() {
        super::log_request_summary(&api);
        return Err(
            Error::Refused(format!("{}; nothing was changed", plan.refusals.join("; "))).into(),
        );
    }
    let writes: usize = plan.nodes.iter().map(|n| n.writes()).sum();
    let decision = confirm::decide_interactively(&args.write, writes, &plan.question(), output)?;
    match decision {
        Decision::PlanOnly => {
            output.note("Dry run: nothing was changed. Run again without --dry-run to roll.");
            super::log_request_summary(&api);
            return Ok(ExitCode::Success);
        }
        Decision::NothingToDo => {
            if output.is_machine_readable() && !client_dry_run {
                output.print_document(&RollReport::new(&plan, Vec::new()))?;
            }
            super::log_request_summary(&api);
            return Ok(ExitCode::Success);
        }
        Decision::Apply | Decision::RehearseOnServer => {}
    }
    // Before the first write: from here a Ctrl-C is counted, never fatal.
    let interrupts = Interrupts::from_ctrl_c();
    let writer = api
        .clone()
        .with_write_mode(WriteMode::from(args.write.dry_run));
    let settings = RollSettings {
        timeout: config.timeout,
        nodes_at_once: config.options.nodes_at_once.max(1),
        rehearsal: decision == Decision::RehearseOnServer,
    };
    let progress = output.progress_of(plan.nodes.len(), "nodes");
    let run = run_roll(&writer, &plan, settings, &interrupts, &progress).await;
    progress.finish();
    let report = RollReport::new(&plan, run.results);
    if output.is_machine_readable() {
        output.print_document(&report)?;
        output.note(report_text(&report, &output.text_layout()).trim_end());
    } else {
        output.print_text(&report_text(&report, &output.text_layout()))?;
    }
    if let Some(written) = written_and_undo(&report) {
        output.warn(&written);
    }
    super::log_request_summary(&api);
    conclude(&report, run.interrupted)
}

/// The exit: 130 after Ctrl-C, 4 when a node failed or timed out.
fn conclude(report: &RollReport, interrupted: bool) -> anyhow::Result<ExitCode> {
    if interrupted {
        return Err(Error::Interrupted.into());
    }
    let failed: Vec<String> = report
        .nodes
        .iter()
        .filter(|n| matches!(n.outcome, NodeOutcome::Failed | NodeOutcome::TimedOut))
        .map(|n| format!("{} ({})", n.node, n.outcome.as_str()))
        .collect();
    if failed.is_empty() {
        return Ok(ExitCode::Success);
    }
    let mut sentence = format!("ztunnel-roll did not finish on {}", failed.join(", "));
    if report.summary.not_started > 0 {
        sentence.push_str(&format!(
            "; {} node{} never started (run the same command again once fixed)",
            report.summary.not_started,
            if report.summary.not_started == 1 {
                ""
            } else {
                "s"
            }
        ));
    }
    Err(Error::RolloutFailed(sentence).into())
}
