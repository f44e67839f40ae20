//! `kubectl mesh-upgrade status`: collect → build the report → print it.
//!
//! The report goes to stdout (a table, or the `mesh-upgrade/v1` document with
//! `-o json|yaml`); warnings about what could not be read go to stderr. With
//! `--exit-code`, a report that needs attention ends with exit code 3 after
//! it has been printed, so a CI job both shows and gates on it.
//!
//! `--require-unused <rev>` reads every namespace and ends with exit code 3
//! while anything still uses that revision (`revisions[].usedBy`), so a
//! pipeline can gate the revision's removal on it.
//!
//! `--verify-injection` adds one step between the report and the print: the
//! dry-run pods of `mesh::injection_check::plan_probes` go out through
//! `collect::probe_injection`, and `apply_verdicts` writes the answers in.
//!
//! `--watch` reads the same lists with their positions (`collect::read_lists`)
//! and hands them to the engine (`run::follow`), which keeps them current
//! through watches and gives back a snapshot after each burst of changes;
//! `StatusView` builds the report from it and prints what changed: the
//! screen redrawn at a terminal, the changed rows in a pipe, one document per
//! change with `-o json|yaml`.

use std::collections::HashMap;

use chrono::{DateTime, Utc};

use crate::api::ApiClient;
use crate::collect::probe_injection;
use crate::mesh::control_plane::ControlPlane;
use crate::mesh::injection_check::{apply_verdicts, plan_probes};
use crate::mesh::workloads::classify;
use crate::snapshot::ProxyFacts;

use crate::cli::{GlobalArgs, StatusArgs};
use crate::collect::live::LiveLists;
use crate::collect::{CollectOptions, Collected, ListKind, Unreadable, collect, read_lists};
use crate::error::Error;
use crate::error::ExitCode;
use crate::mesh::revision_usage::summary;
use crate::mesh::status::{RevisionStatus, StatusReport, build_status, build_status_from};
use crate::mesh::status_changes::{StatusChanges, same_apart_from_time};
use crate::mesh::workloads::Risk;
use crate::output::Output;
use crate::render::status::status_table;
use crate::render::status_watch::{WatchProgress, changed_rows, watch_screen};
use crate::run::follow::{PACE, follow};
use crate::run::{Interrupts, unless_interrupted};
use crate::snapshot::{ClusterSnapshot, DEFAULT_CONTROL_PLANE_NAMESPACE, Scope};

/// Show where the upgrade stands.
pub async fn run(
    global: &GlobalArgs,
    args: &StatusArgs,
    output: &Output,
) -> anyhow::Result<ExitCode> {
    let selector = super::label_selector(global)?;
    if args.require_unused.is_some() && !global.namespaces.is_empty() {
        return Err(Error::Usage(
            "--require-unused looks at every namespace (a revision in use anywhere is in use): leave out -n".to_string(),
        )
        .into());
    }
    let api = super::connect(global).await?;
    let scope = if args.require_unused.is_some() {
        Scope::All
    } else {
        super::selected_scope(global, api.default_namespace())
    };
    let options = CollectOptions {
        scope,
        control_plane_namespace: DEFAULT_CONTROL_PLANE_NAMESPACE.to_string(),
        selector,
    };
    if args.watch {
        return watch(&api, &options, output).await;
    }
    let collected = collect(&api, &options).await?;
    for warning in &collected.warnings {
        output.warn(warning);
    }

    let mut report = if args.verify_injection {
        verified_status(&api, &collected).await
    } else {
        let snapshot = &collected.snapshot;
        let control_plane = ControlPlane::from_snapshot(snapshot);
        let classification = classify(snapshot, &control_plane);
        let report = build_status_from(snapshot, &control_plane, &classification, Utc::now());
        // Left to the process's end, as the snapshot is below: freeing
        // 50,000 workloads and their pods' lists one by one took a tenth of
        // the model's time at 150,000 pods.
        std::mem::forget(classification);
        report
    };
    super::log_request_summary(&api);
    mark_unknown_risks(&mut report, &collected.unreadable);
    let required_unused = match &args.require_unused {
        Some(revision) => Some(required_revision(&report, revision)?),
        None => None,
    };

    let needs_attention = report.needs_attention();
    if output.is_machine_readable() {
        output.print_document(&report)?;
    } else {
        output.print_text(&status_table(
            &report,
            output.is_wide(),
            &output.stdout_layout(),
        ))?;
    }

    // The process ends right after this: freeing the snapshot and the
    // report object by object (millions of allocations at 150,000 pods)
    // would only delay the exit, so they are left to the process's end.
    std::mem::forget(collected);
    std::mem::forget(report);

    let mut code = ExitCode::Success;
    if let Some(revision) = required_unused {
        if revision.in_use {
            output.note(&format!(
                "status --require-unused {}: still used by {} (exit code 3)",
                revision.revision,
                summary(&revision.used_by)
            ));
            code = ExitCode::NeedsAttention;
        } else if revision.removable {
            output.note(&format!(
                "status --require-unused {}: nothing uses it; remove it with: {}",
                revision.revision, revision.remove_command
            ));
        } else {
            output.note(&format!(
                "status --require-unused {}: nothing uses it (though no revision of a newer version runs beside it)",
                revision.revision
            ));
        }
    }
    if args.exit_code && needs_attention {
        output.note("status --exit-code: something is stale or broken (exit code 3)");
        code = ExitCode::NeedsAttention;
    }
    Ok(code)
}

/// The revision `--require-unused` names; an unknown one is a usage error
/// listing those that exist.
fn required_revision(report: &StatusReport, revision: &str) -> anyhow::Result<RevisionStatus> {
    if let Some(found) = report.revisions.iter().find(|r| r.revision == revision) {
        return Ok(found.clone());
    }
    let known: Vec<&str> = report
        .revisions
        .iter()
        .map(|r| r.revision.as_str())
        .collect();
    let tag = report
        .revisions
        .iter()
        .find(|r| r.tags.iter().any(|t| t == revision))
        .map(|r| {
            format!(
                " ({revision} is a tag of {}; name the revision)",
                r.revision
            )
        })
        .unwrap_or_default();
    Err(Error::Usage(format!(
        "--require-unused {revision}: no such revision{tag}; revisions: {}",
        if known.is_empty() {
            "none (no istiod runs)".to_string()
        } else {
            known.join(", ")
        }
    ))
    .into())
}

/// The report with the API server's dry-run answers judged into it.
async fn verified_status(api: &ApiClient, collected: &Collected) -> StatusReport {
    let snapshot = &collected.snapshot;
    let control_plane = ControlPlane::from_snapshot(snapshot);
    let classification = classify(snapshot, &control_plane);
    let mut report = build_status_from(snapshot, &control_plane, &classification, Utc::now());
    let workloads: Vec<_> = classification
        .workloads
        .into_iter()
        .filter(|w| snapshot.scope.contains(&w.namespace))
        .collect();
    let (probes, probe_of) = plan_probes(&workloads);
    let answers = probe_injection(api, probes).await;
    let facts: HashMap<&str, &ProxyFacts> = snapshot
        .pods
        .iter()
        .map(|p| (p.uid.as_str(), &*p.proxy))
        .collect();
    apply_verdicts(&mut report, &workloads, &probe_of, &answers, |uid| {
        facts.get(uid).copied()
    });
    report
}

/// `--watch`: the first screen, then what changes, until Ctrl-C (exit 130,
/// as restart-sidecars' Ctrl-C: the view was stopped, nothing failed).
async fn watch(
    api: &ApiClient,
    options: &CollectOptions,
    output: &Output,
) -> anyhow::Result<ExitCode> {
    let interrupts = Interrupts::from_ctrl_c();
    let Some(read) = unless_interrupted(&interrupts, read_lists(api, options)).await else {
        return Ok(ExitCode::Interrupted);
    };
    let read = read?;
    for warning in &read.warnings {
        output.warn(warning);
    }
    if !read
        .positions
        .iter()
        .any(|p| p.kind == ListKind::Namespaces)
    {
        output.warn(NAMESPACES_NOT_WATCHED);
    }
    super::log_request_summary(api);
    let lists = LiveLists::new(read.raw, options);
    let mut view = StatusView::new(output, read.unreadable);
    follow(
        api,
        lists,
        &read.positions,
        &options.control_plane_namespace,
        &interrupts,
        PACE,
        |snapshot| view.show(snapshot, Utc::now()),
    )
    .await?;
    super::log_request_summary(api);
    Ok(ExitCode::Interrupted)
}

/// The warning of a `--watch` whose namespaces were read one by one.
const NAMESPACES_NOT_WATCHED: &str = "namespaces cannot be watched without permission to list them: \
     their labels are shown as first read, and a relabel shows once the view is started again";

/// What `status --watch` has shown, and how it shows the next report.
struct StatusView<'a> {
    output: &'a Output,
    /// Kinds that could not be read (their risks are unknown).
    unreadable: Vec<Unreadable>,
    /// The last report shown.
    last: Option<StatusReport>,
    progress: Option<WatchProgress>,
}

impl<'a> StatusView<'a> {
    fn new(output: &'a Output, unreadable: Vec<Unreadable>) -> Self {
        StatusView {
            output,
            unreadable,
            last: None,
            progress: None,
        }
    }

    /// Build the report of `snapshot` and print it, or what it changed.
    fn show(&mut self, snapshot: &ClusterSnapshot, now: DateTime<Utc>) -> anyhow::Result<()> {
        let mut report = build_status(snapshot, now);
        mark_unknown_risks(&mut report, &self.unreadable);
        let output = self.output;
        let wide = output.is_wide();
        let layout = output.stdout_layout();
        let progress = match (&self.last, self.progress) {
            (Some(last), _) if same_apart_from_time(last, &report) => return Ok(()),
            (Some(_), Some(progress)) => WatchProgress {
                updates: progress.updates + 1,
                ..progress
            },
            _ => WatchProgress {
                since: report.generated_at,
                updates: 0,
            },
        };
        if output.is_machine_readable() {
            output.print_stream_document(&report)?;
        } else if output.settings().redraw {
            output.redraw(&watch_screen(&report, progress, wide, &layout))?;
        } else {
            match &self.last {
                None => output.print_text(&status_table(&report, wide, &layout))?,
                Some(last) => {
                    let text = changed_rows(&StatusChanges::between(last, &report), wide, &layout);
                    if !text.is_empty() {
                        output.print_text(&text)?;
                    }
                }
            }
        }
        self.progress = Some(progress);
        self.last = Some(report);
        Ok(())
    }
}

/// Without the PodDisruptionBudgets, "no PDB covers it" would be a guess:
/// the PDB risks become `pdb-unknown`, with a note saying why.
fn mark_unknown_risks(report: &mut StatusReport, unreadable: &[Unreadable]) {
    if !unreadable
        .iter()
        .any(|u| u.resource == "poddisruptionbudgets")
    {
        return;
    }
    for workload in &mut report.workloads {
        let had_pdb_risk = workload
            .risks
            .iter()
            .any(|r| matches!(r, Risk::NoPdb | Risk::PdbAllowsZero));
        if had_pdb_risk {
            workload
                .risks
                .retain(|r| !matches!(r, Risk::NoPdb | Risk::PdbAllowsZero));
            workload.risks.push(Risk::PdbUnknown);
            workload.risks.sort();
            workload.notes.push(PDB_UNKNOWN_NOTE.to_string());
        }
    }
}

/// The note a workload gets when PodDisruptionBudgets could not be read.
pub const PDB_UNKNOWN_NOTE: &str =
    "disruption risk unknown: PodDisruptionBudgets could not be read with these credentials";
