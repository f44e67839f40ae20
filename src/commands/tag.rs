//! `kubectl mesh-upgrade tag list|set|remove`: revision tags, read and moved
//! with a plan first.
//!
//! ```text
//! flags ─► collect (every namespace: a tag's users can be anywhere)
//!   list ─► mesh::tags::tag_list ─► table | document
//!   set / set --undo / remove ─► mesh::tags::plan (pure: writes, namespaces, stale workloads)
//!       ─► --restart: restarts planned on the cluster as the writes leave it,
//!          kept to the workloads that become stale (mesh::restart::plan)
//!       ─► show both ─► refuse (5) before any write ─► one question
//!       ─► Ctrl-C handler ─► run::tag (the writes in order, stop at a failure)
//!       ─► report ─► --restart: restart-sidecars' engine with the plan shown
//! ```
//!
//! A failure or an interrupt after the first write says what was written
//! and the command that undoes it.

use std::collections::BTreeSet;

use chrono::Utc;

use super::restart_sidecars;
use crate::api::{ApiClient, WriteMode};
use crate::cli::{DryRun, GlobalArgs, TagArgs, TagCommand, TagRemoveArgs, TagSetArgs, WriteArgs};
use crate::collect::{CollectOptions, collect};
use crate::config::RestartConfig;
use crate::confirm::{self, Decision};
use crate::error::{Error, ExitCode};
use crate::mesh::restart::{RestartPlan, plan as plan_restart};
use crate::mesh::tags::{TagOperation, TagPlan, TagReport, TagRequest, plan as plan_tag, tag_list};
use crate::output::Output;
use crate::render::tag::{
    interrupted_sentence, list_table, plan_text, report_text, written_sentence,
};
use crate::run::tag::apply_tag;
use crate::snapshot::{ClusterSnapshot, DEFAULT_CONTROL_PLANE_NAMESPACE, Scope};

/// Run `tag list|set|remove`.
pub async fn run(global: &GlobalArgs, args: &TagArgs, output: &Output) -> anyhow::Result<ExitCode> {
    check_flags(global)?;
    match &args.command {
        TagCommand::List => list(global, output).await,
        TagCommand::Set(set) if set.restart && global.output.is_machine_readable() => {
            // One document: a List of the tag report and restart-sidecars'.
            super::as_one_document(output, async |output| {
                change(global, Change::Set(set), output).await
            })
            .await
        }
        TagCommand::Set(set) => change(global, Change::Set(set), output).await,
        TagCommand::Remove(remove) => change(global, Change::Remove(remove), output).await,
    }
}

/// Tags belong to the cluster: a namespace or label selection means nothing here.
fn check_flags(global: &GlobalArgs) -> anyhow::Result<()> {
    if !global.namespaces.is_empty() || global.all_namespaces || global.selector.is_some() {
        return Err(Error::Usage(
            "tag reads and writes cluster-wide objects and looks at every namespace: leave out -n, -A and -l".to_string(),
        )
        .into());
    }
    Ok(())
}

/// Every namespace and the control plane: where a tag's users may be.
async fn read_cluster(api: &ApiClient, output: &Output) -> anyhow::Result<ClusterSnapshot> {
    let options = CollectOptions {
        scope: Scope::All,
        control_plane_namespace: DEFAULT_CONTROL_PLANE_NAMESPACE.to_string(),
        selector: None,
    };
    let collected = collect(api, &options).await?;
    for warning in &collected.warnings {
        output.warn(warning);
    }
    Ok(collected.snapshot)
}

async fn list(global: &GlobalArgs, output: &Output) -> anyhow::Result<ExitCode> {
    let api = super::connect(global).await?;
    let snapshot = read_cluster(&api, output).await?;
    super::log_request_summary(&api);
    let list = tag_list(&snapshot);
    if output.is_machine_readable() {
        output.print_document(&list)?;
    } else {
        output.print_text(&list_table(
            &list,
            output.is_wide(),
            &output.stdout_layout(),
        ))?;
    }
    Ok(ExitCode::Success)
}

/// The writing subcommands.
enum Change<'a> {
    Set(&'a TagSetArgs),
    Remove(&'a TagRemoveArgs),
}

impl Change<'_> {
    fn request(&self) -> TagRequest {
        match self {
            Change::Set(args) => TagRequest {
                tag: args.tag.clone(),
                operation: match (&args.revision, args.undo) {
                    (Some(revision), false) => TagOperation::Set {
                        revision: revision.clone(),
                    },
                    // clap requires --revision unless --undo.
                    _ => TagOperation::Undo,
                },
                force: args.force,
            },
            Change::Remove(args) => TagRequest {
                tag: args.tag.clone(),
                operation: TagOperation::Remove,
                force: args.force,
            },
        }
    }

    fn write(&self) -> &WriteArgs {
        match self {
            Change::Set(args) => &args.write,
            Change::Remove(args) => &args.write,
        }
    }

    fn restart(&self) -> anyhow::Result<Option<RestartConfig>> {
        match self {
            Change::Set(args) if args.restart => {
                restart_sidecars::restart_config(&args.restart_flags, &[]).map(Some)
            }
            _ => Ok(None),
        }
    }
}

async fn change(
    global: &GlobalArgs,
    change: Change<'_>,
    output: &Output,
) -> anyhow::Result<ExitCode> {
    let request = change.request();
    let write = change.write();
    let restart_config = change.restart()?;
    let api = super::connect(global).await?;
    let snapshot = read_cluster(&api, output).await?;
    let plan = plan_tag(&snapshot, &request)?;

    let server_dry_run = write.dry_run == DryRun::Server;
    let client_dry_run = write.dry_run == DryRun::Client;
    let restart_plan = match &restart_config {
        Some(config) if !plan.workloads.is_empty() && !server_dry_run => {
            Some(restarts_after(&snapshot, &plan, config)?)
        }
        _ => None,
    };
    output.show_plan(
        &plan,
        || plan_text(&plan, &output.text_layout()),
        client_dry_run,
    )?;
    if let Some(restart_plan) = &restart_plan {
        let text = || {
            format!(
                "\n--restart: {}",
                crate::render::restart::plan_text(restart_plan, &output.text_layout())
            )
        };
        output.show_plan(restart_plan, text, client_dry_run)?;
        restart_sidecars::refuse_not_ready(restart_plan, &[]).map_err(|err| {
            err.context(format!(
                "tag {} --restart refused before any change (nothing was written)",
                plan.operation
            ))
        })?;
    }

    let restarts = restart_plan.as_ref().map_or(0, |p| p.actions.len());
    let decision = confirm::decide_interactively(
        write,
        plan.writes.len(),
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
        Decision::NothingToDo => {
            // A client dry run printed the plan as its one document already.
            if output.is_machine_readable() && !client_dry_run {
                output.print_document(&TagReport::new(&plan, Vec::new(), false))?;
            }
            super::log_request_summary(&api);
            return Ok(ExitCode::Success);
        }
        Decision::Apply | Decision::RehearseOnServer => {
            let writer = api.clone().with_write_mode(WriteMode::from(write.dry_run));
            let run = apply_tag(&writer, &plan, &interrupts).await;
            let report = TagReport::new(&plan, run.results, decision == Decision::RehearseOnServer);
            (report, run.interrupted)
        }
    };
    super::log_request_summary(&api);

    let restart_follows = restart_plan.as_ref().is_some_and(|p| !p.actions.is_empty())
        && report.failures().is_empty()
        && !interrupted
        && decision == Decision::Apply;
    let text = report_text(&report, restart_follows, &output.text_layout());
    if output.is_machine_readable() {
        output.print_document(&report)?;
        if !text.is_empty() {
            output.note(text.trim_end());
        }
    } else {
        output.print_text(&format!("\n{text}"))?;
    }

    let written = written_sentence(&report);
    if interrupted {
        output.warn(&interrupted_sentence(
            &report,
            restart_config.is_some(),
            &written,
        ));
        return Err(Error::Interrupted.into());
    }
    if !report.failures().is_empty() {
        let failed: Vec<String> = report
            .failures()
            .iter()
            .map(|r| r.target.to_string())
            .collect();
        let restart_note = if restart_config.is_some() {
            "; --restart did not run"
        } else {
            ""
        };
        return Err(anyhow::anyhow!(
            "tag {} {}: {} failed (see above){restart_note}{written}",
            plan.operation,
            plan.tag,
            failed.join(", "),
        ));
    }
    if restart_config.is_some() && decision == Decision::RehearseOnServer {
        output.note(
            "--restart: restart-sidecars runs only after a real change, not after --dry-run=server",
        );
        return Ok(ExitCode::Success);
    }
    let (Some(restart_plan), Some(config)) = (restart_plan, restart_config) else {
        if change.restart()?.is_some() {
            output.note("--restart: no workload became stale");
        }
        return Ok(ExitCode::Success);
    };
    let handover = restart_sidecars::Handover {
        plan: &restart_plan,
        config: &config,
        after: "the tag's writes",
        written: &written,
        nothing_stale: "--restart: nothing a template patch restarts became stale",
        restarting: format!(
            "the {} workload{} that became stale",
            restart_plan.actions.len(),
            if restart_plan.actions.len() == 1 {
                ""
            } else {
                "s"
            }
        ),
    };
    restart_sidecars::restart_after_writes(&api, handover, decision, write, &interrupts, output)
        .await
}

/// The restarts `--restart` makes: restart-sidecars' plan on the cluster as
/// the tag's writes leave it, kept to the workloads whose new pods change
/// revision (by default those that become stale; `--all` and
/// `--include-uninjected` widen it among them). A workload stale for
/// another reason is left to restart-sidecars.
fn restarts_after(
    snapshot: &ClusterSnapshot,
    plan: &TagPlan,
    config: &RestartConfig,
) -> anyhow::Result<RestartPlan> {
    let mut after = snapshot.clone();
    plan.apply_to(&mut after);
    let mut restarts = plan_restart(&after, &config.options, Utc::now())
        .map_err(|e| Error::Usage(e.to_string()))?;
    let stale: BTreeSet<(String, String, String)> = plan
        .workloads
        .iter()
        .map(|w| {
            (
                w.namespace.clone(),
                w.kind.resource().to_string(),
                w.name.clone(),
            )
        })
        .collect();
    let picked = |namespace: &str, kind: &str, name: &str| {
        stale.contains(&(namespace.to_string(), kind.to_string(), name.to_string()))
    };
    restarts
        .actions
        .retain(|a| picked(&a.namespace, a.kind.resource(), &a.name));
    restarts
        .skipped
        .retain(|s| picked(&s.namespace, s.kind.resource(), &s.name));
    let pods: BTreeSet<(&str, &str)> = plan
        .unreachable
        .iter()
        .map(|p| (p.namespace.as_str(), p.name.as_str()))
        .collect();
    restarts
        .unreachable
        .retain(|u| pods.contains(&(u.namespace.as_str(), u.pod.as_str())));
    for not_ready in &mut restarts.not_ready_revisions {
        not_ready.workloads.retain(|w| {
            let mut parts = w.splitn(3, '/');
            match (parts.next(), parts.next(), parts.next()) {
                (Some(ns), Some(kind), Some(name)) => picked(ns, kind, name),
                _ => false,
            }
        });
    }
    restarts
        .not_ready_revisions
        .retain(|n| !n.workloads.is_empty());
    Ok(restarts)
}

/// The one question for the writes and the restarts they bring.
fn question(plan: &TagPlan, restarts: usize) -> String {
    let tag = &plan.tag;
    let what = match (plan.operation, &plan.from_revision, &plan.to_revision) {
        ("remove", _, _) => format!("Remove tag {tag}"),
        ("undo", _, Some(to)) => format!("Move tag {tag} back to {to}"),
        ("undo", _, None) => format!("Undo tag {tag} (delete what `tag set` created)"),
        (_, None, Some(to)) => format!("Create tag {tag} pointing at {to}"),
        (_, Some(from), Some(to)) if from != to => format!("Move tag {tag} from {from} to {to}"),
        _ => format!("Write tag {tag}'s {} objects", plan.writes.len()),
    };
    match restarts {
        0 => format!("{what}?"),
        1 => format!("{what} and restart 1 workload?"),
        n => format!("{what} and restart {n} workloads?"),
    }
}
