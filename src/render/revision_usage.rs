//! The status screen's REVISION USAGE section: per revision, what still
//! uses it, or that it can go and the command that removes it. Pure.
//!
//! The default view summarises the users by kind (names of namespaces and
//! tags, counts of workloads, gateways and pods); `-o wide` lists every one
//! with its reason.

use super::Layout;
use super::table::{Cell, Color, Fit, Table};
use crate::mesh::revision_usage::summary_parts;
use crate::mesh::status::StatusReport;
use crate::wrap::together;

/// The section's body (empty when there is no revision).
pub fn usage_table(report: &StatusReport, wide: bool, layout: &Layout) -> String {
    if report.revisions.is_empty() {
        return String::new();
    }
    let mut table = Table::new(
        *layout,
        &[
            ("REVISION", Fit::Whole),
            ("IN USE", Fit::Whole),
            ("USED BY", Fit::Words),
        ],
    );
    for r in &report.revisions {
        let (in_use, text) = if r.in_use {
            // Each kind's part kept on one line where it fits.
            let parts: Vec<String> = summary_parts(&r.used_by)
                .iter()
                .map(|p| together(p))
                .collect();
            (Cell::new("yes"), parts.join(", "))
        } else if r.removable {
            (
                Cell::colored("no", Color::Green),
                format!("nothing: it can be removed with {}", r.remove_command),
            )
        } else if report.scope.all_namespaces {
            (
                Cell::new("no"),
                "nothing yet (no newer revision runs beside it)".to_string(),
            )
        } else {
            (
                Cell::new("no"),
                "nothing in the namespaces read; status -A (or --require-unused) checks the whole cluster"
                    .to_string(),
            )
        };
        table.row([Cell::new(&r.revision), in_use, Cell::new(text)]);
    }
    let mut out = table.render();
    if wide {
        let mut users = Table::new(
            *layout,
            &[
                ("REVISION", Fit::Whole),
                ("USED BY", Fit::Whole),
                ("WHY", Fit::Words),
            ],
        );
        for r in &report.revisions {
            for u in &r.used_by {
                let name = match &u.namespace {
                    Some(ns) => format!("{}/{ns}/{}", u.kind.to_lowercase(), u.name),
                    None => format!("{}/{}", u.kind.to_lowercase(), u.name),
                };
                users.row([r.revision.clone(), name, u.reason.to_string()]);
            }
        }
        if !users.is_empty() {
            out.push('\n');
            out.push_str(&users.render());
        }
    }
    out
}
