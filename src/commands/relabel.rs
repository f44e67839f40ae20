//! `kubectl mesh-upgrade relabel`: move namespaces to another revision or
//! tag (or back to `istio-injection=enabled`), with a record to undo it.
//!
//! ```text
//! flags ─► collect::read(ControlPlane): namespaces + the control plane (5 LISTs)
//!       ─► plan (mesh::relabel, pure)
//!       ─► --restart: read those namespaces' workloads, plan their restarts on the
//!          namespaces as they will be (mesh::relabel::RelabelPlan::apply_to)
//!       ─► show both ─► refuse excluded namespaces without --force, or a target
//!          istiod not Ready (5), before any write
//!       ─► one question for both ─► Ctrl-C handler
//!       ─► run::relabel (a merge patch per namespace on its resourceVersion;
//!          409 → re-read → the plan's rule again)
//!       ─► report ─► --restart: run::restart with the plan already shown
//! ```
//!
//! A failure or an interrupt after the first write says which namespaces
//! were relabelled and the command that undoes it.
//!
//! The reads are the few the plan needs, collect's control-plane read set:
//! every Namespace (labels, the record annotation, resourceVersion), the
//! MutatingWebhookConfigurations, and in the control-plane namespace the
//! istiod Deployments, Services and injector ConfigMaps — the inputs `status`
//! resolves a namespace's revision from.
//! Pods and workloads are not read: labels change what new pods get, and
//! `--restart` hands over to restart-sidecars, which reads what it needs.

use chrono::Utc;

use super::restart_sidecars;
use crate::api::{ApiClient, WriteMode};
use crate::cli::{DryRun, GlobalArgs, RelabelArgs};
use crate::collect::{self, CollectOptions, ReadSet};
use crate::confirm::{self, Decision};
use crate::error::{Error, ExitCode};
use crate::mesh::control_plane::ControlPlane;
use crate::mesh::relabel::{
    NamespaceSelection, NamespaceState, Operation, Planner, RelabelPlan, RelabelReport,
    RelabelRequest,
};
use crate::mesh::restart::RestartPlan;
use crate::output::Output;
use crate::render::relabel::{interrupted_sentence, plan_text, report_text, written_sentence};
use crate::run::relabel::apply_relabel;
use crate::selector::LabelSelector;
use crate::snapshot::{ClusterSnapshot, DEFAULT_CONTROL_PLANE_NAMESPACE, Scope};

/// Relabel (or restore) the selected namespaces.
pub async fn run(
    global: &GlobalArgs,
    args: &RelabelArgs,
    output: &Output,
) -> anyhow::Result<ExitCode> {
    if !(args.restart && global.output.is_machine_readable()) {
        return relabel(global, args, output).await;
    }
    // With --restart, -o json|yaml still prints one document: a List of the
    // relabel report and restart-sidecars' report (or the one that exists).
    super::as_one_document(output, async |output| relabel(global, args, output).await).await
}

async fn relabel(
    global: &GlobalArgs,
    args: &RelabelArgs,
    output: &Output,
) -> anyhow::Result<ExitCode> {
    let selector = super::label_selector(global)?;
    check_flags(global, args)?;
    let restart_config = args
        .restart
        .then(|| restart_sidecars::restart_config(&args.restart_flags, &[]))
        .transpose()?;
    let api = super::connect(global).await?;
    let request = request_from_flags(global, args, selector, api.default_namespace());
    let control_plane_namespace = DEFAULT_CONTROL_PLANE_NAMESPACE;
    let state = read_state(&api, &request, control_plane_namespace, output).await?;
    let control_plane = ControlPlane::from_snapshot(&state.snapshot);
    let planner = Planner::new(&control_plane, &request)?;
    let plan = planner.plan(&state.namespaces);

    // --restart: one plan. The restarts are planned on the namespaces as
    // they will be once relabelled, so the plan shows what becomes stale,
    // and the one question covers both.
    let server_dry_run = args.write.dry_run == DryRun::Server;
    let now = Utc::now();
    let restart_plan = match &restart_config {
        Some(config) if !plan.restart_namespaces.is_empty() && !server_dry_run => Some(
            restart_sidecars::plan_restarts(
                &api,
                output,
                Scope::Namespaces(plan.restart_namespaces.clone()),
                None,
                &config.options,
                now,
                |snapshot| plan.apply_to(snapshot),
            )
            .await?,
        ),
        _ => None,
    };

    let machine = global.output.is_machine_readable();
    let client_dry_run = args.write.dry_run == DryRun::Client;
    output.show_plan(
        &plan,
        || plan_text(&plan, &output.text_layout()),
        client_dry_run,
    )?;
    if let Some(restart_plan) = &restart_plan {
        let text = || format!("\n--restart: {}", restart_text(restart_plan, output));
        output.show_plan(restart_plan, text, client_dry_run)?;
    }

    let needing_force = plan.needing_force();
    if !needing_force.is_empty() {
        let names: Vec<&str> = needing_force.iter().map(|s| s.namespace.as_str()).collect();
        let (is, them) = if names.len() == 1 {
            ("is", "it")
        } else {
            ("are", "them")
        };
        return Err(Error::Refused(format!(
            "{} {is} excluded from relabelling (see above): pass --force to relabel {them} anyway, or leave {them} out of -n; nothing was changed",
            names.join(", "),
        ))
        .into());
    }
    if let Some(restart_plan) = &restart_plan {
        restart_sidecars::refuse_not_ready(restart_plan, &[]).map_err(|err| {
            err.context("relabel --restart refused before any change (nothing was relabelled)")
        })?;
        if restart_config.as_ref().is_some_and(|c| c.fail_on_blocked) {
            restart_sidecars::refuse_blocked(restart_plan).map_err(|err| {
                err.context("relabel --restart refused before any change (nothing was relabelled)")
            })?;
        }
    }

    let restarts = restart_plan.as_ref().map_or(0, |p| p.actions.len());
    let decision = confirm::decide_interactively(
        &args.write,
        plan.changes.len() + restarts,
        &question(&plan, restarts),
        output,
    )?;
    let interrupts = super::interrupts_for(decision);
    let (report, interrupted) = match decision {
        Decision::PlanOnly => {
            output.note("--dry-run: nothing was changed");
            super::log_request_summary(&api);
            return Ok(ExitCode::Success);
        }
        Decision::NothingToDo => (RelabelReport::new(&plan, Vec::new(), false), false),
        Decision::Apply | Decision::RehearseOnServer => {
            let writer = api
                .clone()
                .with_write_mode(WriteMode::from(args.write.dry_run));
            let run = apply_relabel(&writer, &planner, &plan, &request, &interrupts).await;
            let report =
                RelabelReport::new(&plan, run.results, decision == Decision::RehearseOnServer);
            (report, run.interrupted)
        }
    };
    super::log_request_summary(&api);

    let restart_follows = restart_plan.is_some()
        && report.failures().is_empty()
        && !interrupted
        && decision != Decision::RehearseOnServer;
    if machine {
        output.print_document(&report)?;
        let text = report_text(&report, restart_follows, &output.text_layout());
        if !text.is_empty() {
            output.note(text.trim_end());
        }
    } else if !report.results.is_empty() {
        output.print_text(&format!(
            "\n{}",
            report_text(&report, restart_follows, &output.text_layout())
        ))?;
    }

    let written = written_sentence(&report);
    if interrupted {
        output.warn(&interrupted_sentence(&report, args.restart, &written));
        return Err(Error::Interrupted.into());
    }
    let failures = report.failures();
    if !failures.is_empty() {
        let names: Vec<&str> = failures.iter().map(|r| r.namespace.as_str()).collect();
        let restart_note = if args.restart {
            "; --restart did not run"
        } else {
            ""
        };
        return Err(anyhow::anyhow!(
            "{} of {} namespaces could not be changed ({}){restart_note}{written}",
            failures.len(),
            report.results.len(),
            names.join(", ")
        ));
    }

    if args.restart && decision == Decision::RehearseOnServer {
        output.note("--restart: restart-sidecars runs only after a real relabel, not after --dry-run=server");
        return Ok(ExitCode::Success);
    }
    let (Some(restart_plan), Some(config)) = (restart_plan, restart_config) else {
        if args.restart {
            output.note("--restart: no namespace to restart");
        }
        return Ok(ExitCode::Success);
    };
    let handover = restart_sidecars::Handover {
        plan: &restart_plan,
        config: &config,
        after: "relabelling",
        written: &written,
        nothing_stale: "--restart: nothing is stale in the relabelled namespaces",
        restarting: format!(
            "the stale workloads of {}",
            report.restart_namespaces.join(", ")
        ),
    };
    restart_sidecars::restart_after_writes(
        &api,
        handover,
        decision,
        &args.write,
        &interrupts,
        output,
    )
    .await
}

/// The restart plan under relabel's, without repeating its headline's verb.
fn restart_text(plan: &RestartPlan, output: &Output) -> String {
    crate::render::restart::plan_text(plan, &output.text_layout())
}

/// Flag combinations the parser cannot express.
fn check_flags(global: &GlobalArgs, args: &RelabelArgs) -> anyhow::Result<()> {
    if global.all_namespaces && !args.undo && args.from.is_none() {
        return Err(Error::Usage(
            "relabel -A needs --from <revision-or-tag> (every namespace on that revision) or --undo; to pick namespaces by label use -l"
                .to_string(),
        )
        .into());
    }
    Ok(())
}

/// The plan's request from the flags; the context's namespace when no
/// namespace flag was given.
fn request_from_flags(
    global: &GlobalArgs,
    args: &RelabelArgs,
    selector: Option<LabelSelector>,
    context_namespace: &str,
) -> RelabelRequest {
    let namespaces = if !global.namespaces.is_empty() {
        match super::selected_scope(global, context_namespace) {
            Scope::Namespaces(names) => NamespaceSelection::Named(names),
            Scope::All => NamespaceSelection::All,
        }
    } else if global.all_namespaces || selector.is_some() {
        NamespaceSelection::All
    } else {
        NamespaceSelection::Context(context_namespace.to_string())
    };
    let operation = match (&args.to, args.undo) {
        (Some(to), false) => Operation::Move { to: to.clone() },
        // clap requires --to unless --undo.
        _ => Operation::Undo,
    };
    RelabelRequest {
        operation,
        namespaces,
        selector,
        from: args.from.clone(),
        force: args.force,
    }
}

/// What the plan is computed from.
struct ClusterState {
    namespaces: Vec<NamespaceState>,
    /// The control plane's inputs only (istiods, Services and injector
    /// ConfigMaps of its namespace, webhook configurations).
    snapshot: ClusterSnapshot,
}

/// Read the namespaces and the control plane: collect's control-plane read
/// set (5 LISTs). `-l` selects namespaces here, so it is not sent.
async fn read_state(
    api: &ApiClient,
    request: &RelabelRequest,
    control_plane_namespace: &str,
    output: &Output,
) -> anyhow::Result<ClusterState> {
    let scope = match &request.namespaces {
        NamespaceSelection::Named(names) => Scope::Namespaces(names.clone()),
        NamespaceSelection::Context(name) => Scope::Namespaces(vec![name.clone()]),
        NamespaceSelection::All => Scope::All,
    };
    let options = CollectOptions {
        scope,
        control_plane_namespace: control_plane_namespace.to_string(),
        selector: None,
    };
    let collected = collect::read(api, &options, ReadSet::ControlPlane).await?;
    for warning in &collected.warnings {
        output.warn(warning);
    }
    let namespaces = collected
        .snapshot
        .namespaces
        .iter()
        .map(NamespaceState::from)
        .collect();
    Ok(ClusterState {
        namespaces,
        snapshot: collected.snapshot,
    })
}

/// The prompt: one question for the relabel and the restarts it brings.
fn question(plan: &RelabelPlan, restarts: usize) -> String {
    let count = |n: usize, what: &str| {
        if n == 1 {
            format!("1 {what}")
        } else {
            format!("{n} {what}s")
        }
    };
    let namespaces = count(plan.changes.len(), "namespace");
    let workloads = count(restarts, "workload");
    match (&plan.target, plan.changes.len(), restarts) {
        (_, 0, _) => format!("Restart {workloads}?"),
        (Some(target), _, 0) => format!("Relabel {namespaces} to {}?", target.name),
        (Some(target), _, _) => {
            format!(
                "Relabel {namespaces} to {} and restart {workloads}?",
                target.name
            )
        }
        (None, _, 0) => format!("Restore the recorded injection labels of {namespaces}?"),
        (None, _, _) => format!(
            "Restore the recorded injection labels of {namespaces} and restart {workloads}?"
        ),
    }
}
