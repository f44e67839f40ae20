//! `kubectl mesh-upgrade status`: collect → build the report → print it.
//!
//! The report goes to stdout (a table, or the `mesh-upgrade/v1` document with
//! `-o json|yaml`); warnings about what could not be read go to stderr. With
//! `--exit-code`, a report that needs attention ends with exit code 3 after
//! it has been printed, so a CI job both shows and gates on it.

use chrono::Utc;

use crate::cli::{GlobalArgs, StatusArgs};
use crate::collect::{CollectOptions, Collected, collect};
use crate::error::ExitCode;
use crate::mesh::status::{StatusReport, build_status};
use crate::mesh::workloads::Risk;
use crate::output::Output;
use crate::render::status::status_table;
use crate::snapshot::DEFAULT_CONTROL_PLANE_NAMESPACE;

/// Show where the upgrade stands.
pub async fn run(
    global: &GlobalArgs,
    args: &StatusArgs,
    output: &Output,
) -> anyhow::Result<ExitCode> {
    let selector = super::label_selector(global)?;
    let api = super::connect(global).await?;
    let options = CollectOptions {
        scope: super::selected_scope(global, api.default_namespace()),
        control_plane_namespace: DEFAULT_CONTROL_PLANE_NAMESPACE.to_string(),
        selector,
    };
    let collected = collect(&api, &options).await?;
    super::log_request_summary(&api);
    for warning in &collected.warnings {
        output.warn(warning);
    }

    let mut report = build_status(&collected.snapshot, Utc::now());
    mark_unknown_risks(&mut report, &collected);

    if output.is_machine_readable() {
        output.print_document(&report)?;
    } else {
        output.print_text(&status_table(
            &report,
            output.is_wide(),
            &output.stdout_layout(),
        ))?;
    }

    if args.exit_code && report.needs_attention() {
        output.note("status --exit-code: something is stale or broken (exit code 3)");
        return Ok(ExitCode::NeedsAttention);
    }
    Ok(ExitCode::Success)
}

/// Without the PodDisruptionBudgets, "no PDB covers it" would be a guess:
/// the PDB risks become `pdb-unknown`, with a note saying why.
fn mark_unknown_risks(report: &mut StatusReport, collected: &Collected) {
    if collected.was_read("poddisruptionbudgets") {
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
