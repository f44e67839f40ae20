//! `tag list`, and the plan and report of `tag set`/`--undo`/`remove`, as
//! text for a person. Pure; names, labels, revisions and commands never
//! wrap, sentences do at a terminal.
//!
//! A plan reads top to bottom as the change does: the headline (which tag,
//! from where to where, as which istioctl writes it), the writes, then what
//! they change: the namespaces whose new pods get another revision, the
//! workloads (and gateways) that become stale, the pods no restart reaches,
//! and the command that undoes it.

use std::fmt::Write as _;

use super::Layout;
use super::table::{Cell, Color, Fit, Table};
use crate::mesh::tags::{AffectedWorkload, TagList, TagPlan, TagReport, WriteOutcome, change_name};
use crate::mesh::workloads::ProxyGroup;

fn or_none(revision: Option<&str>) -> &str {
    revision.unwrap_or("none")
}

fn running(groups: &[ProxyGroup]) -> String {
    if groups.is_empty() {
        return "none".to_string();
    }
    groups
        .iter()
        .map(|g| match (&g.version, &g.revision) {
            (Some(v), Some(r)) => format!("{v} ({r}) ×{}", g.pods),
            (Some(v), None) => format!("{v} ×{}", g.pods),
            (None, Some(r)) => format!("{r} ×{}", g.pods),
            (None, None) => format!("? ×{}", g.pods),
        })
        .collect::<Vec<_>>()
        .join(", ")
}

fn after(w: &AffectedWorkload) -> String {
    match (&w.after_version, &w.after) {
        (Some(v), Some(r)) => format!("{v} ({r})"),
        (_, Some(r)) => r.clone(),
        (_, None) => "no proxy".to_string(),
    }
}

/// The headline of a plan.
fn headline(plan: &TagPlan) -> String {
    let tag = &plan.tag;
    match (plan.operation, &plan.from_revision, &plan.to_revision) {
        ("remove", from, _) => {
            format!("Remove tag {tag} (points at {}):", or_none(from.as_deref()))
        }
        ("undo", Some(from), Some(to)) => format!("Undo: move tag {tag} back from {from} to {to}:"),
        ("undo", _, None) => format!("Undo: remove tag {tag}, which `tag set` created:"),
        (_, _, _) if plan.writes.is_empty() => format!(
            "Tag {tag} already points at {}: nothing to write.",
            or_none(plan.to_revision.as_deref())
        ),
        (_, None, Some(to)) => format!("Create tag {tag} pointing at {to}:"),
        (_, Some(from), Some(to)) if from == to => {
            format!("Complete tag {tag} (points at {to}):")
        }
        (_, Some(from), Some(to)) => format!("Move tag {tag} from {from} to {to}:"),
        (_, _, None) => format!("Change tag {tag}:"),
    }
}

/// The plan: what is written, then what it changes.
pub fn plan_text(plan: &TagPlan, layout: &Layout) -> String {
    let wrap = layout.wrap();
    let mut out = String::new();
    wrap.push(&mut out, &headline(plan), "");
    if !plan.writes.is_empty() {
        out.push('\n');
        let mut table = Table::new(
            *layout,
            &[
                ("WRITE", Fit::Whole),
                ("OBJECT", Fit::Whole),
                ("WHY", Fit::Words),
            ],
        );
        for write in &plan.writes {
            table.row([
                change_name(write).to_string(),
                write.target.to_string(),
                write.reason.clone(),
            ]);
        }
        out.push_str(&table.render());
    }
    if !plan.notes.is_empty() {
        out.push('\n');
        for note in &plan.notes {
            wrap.push(&mut out, &format!("Note: {note}"), "  ");
        }
    }
    if plan.writes.is_empty() {
        return out;
    }

    out.push('\n');
    if plan.namespaces.is_empty() {
        wrap.push(
            &mut out,
            "No namespace's new pods change revision (no namespace uses the tag).",
            "",
        );
    } else {
        out.push_str("New pods change revision in:\n");
        let mut table = Table::new(
            *layout,
            &[
                ("NAMESPACE", Fit::Whole),
                ("VIA", Fit::Whole),
                ("NOW", Fit::Whole),
                ("AFTER", Fit::Whole),
            ],
        );
        for n in &plan.namespaces {
            table.row([
                n.namespace.clone(),
                n.via.clone(),
                or_none(n.before.as_deref()).to_string(),
                or_none(n.after.as_deref()).to_string(),
            ]);
        }
        out.push_str(&table.render());
    }

    let stale = plan.becoming_stale();
    out.push('\n');
    if stale.is_empty() {
        wrap.push(&mut out, "No running workload becomes stale.", "");
    } else {
        wrap.push(
            &mut out,
            &format!(
                "Workloads that become stale (running pods keep their proxy until restarted; --restart restarts them): {}",
                stale.len()
            ),
            "",
        );
        let mut table = Table::new(
            *layout,
            &[
                ("NAMESPACE", Fit::Whole),
                ("WORKLOAD", Fit::Whole),
                ("RUNS NOW", Fit::Whole),
                ("NEW PODS GET", Fit::Whole),
            ],
        );
        for w in &stale {
            let name = if w.gateway {
                format!("{}/{} (gateway)", w.kind.resource(), w.name)
            } else {
                format!("{}/{}", w.kind.resource(), w.name)
            };
            table.row([w.namespace.clone(), name, running(&w.running), after(w)]);
        }
        out.push_str(&table.render());
    }
    let gateways: Vec<&AffectedWorkload> = plan.workloads.iter().filter(|w| w.gateway).collect();
    out.push('\n');
    if gateways.is_empty() {
        wrap.push(&mut out, "No gateway is affected.", "");
    } else {
        let names: Vec<String> = gateways
            .iter()
            .map(|g| {
                format!(
                    "{}/{} ({} → {})",
                    g.namespace,
                    g.name,
                    or_none(g.before.as_deref()),
                    or_none(g.after.as_deref())
                )
            })
            .collect();
        wrap.push(
            &mut out,
            &format!("Gateways affected: {}.", names.join(", ")),
            "",
        );
    }
    if !plan.gateway_api.is_empty() {
        let names: Vec<String> = plan
            .gateway_api
            .iter()
            .map(|g| {
                format!(
                    "{}/{} (class {}, {} → {})",
                    g.namespace,
                    g.name,
                    g.class,
                    or_none(g.before.as_deref()),
                    or_none(g.after.as_deref())
                )
            })
            .collect();
        wrap.push(
            &mut out,
            &format!(
                "Gateway API gateways istiod re-renders on the new revision (they roll by themselves; `kubectl mesh-upgrade status` follows them): {}.",
                names.join(", ")
            ),
            "",
        );
    }
    if !plan.unreachable.is_empty() {
        out.push('\n');
        out.push_str("Pods no restart reaches, whose proxy becomes stale:\n");
        let mut table = Table::headless(*layout, &[Fit::Whole, Fit::Words]).indented(2);
        for p in &plan.unreachable {
            table.row([
                format!("{}/{}", p.namespace, p.name),
                format!("{}; {}", p.reason, p.command),
            ]);
        }
        out.push_str(&table.render());
    }
    if let Some(undo) = &plan.undo {
        out.push('\n');
        let _ = writeln!(out, "Undo with: {undo}");
    }
    out
}

/// What the writes did.
pub fn report_text(report: &TagReport, restart_follows: bool, layout: &Layout) -> String {
    let wrap = layout.wrap();
    let mut out = String::new();
    if report.results.is_empty() {
        return out;
    }
    let mut table = Table::new(
        *layout,
        &[
            ("WRITE", Fit::Whole),
            ("OBJECT", Fit::Whole),
            ("RESULT", Fit::Whole),
            ("DETAIL", Fit::Words),
        ],
    );
    for r in &report.results {
        let outcome = match r.outcome {
            WriteOutcome::Failed => Cell::colored(r.outcome.as_str(), Color::Red),
            WriteOutcome::Written | WriteOutcome::Rehearsed => {
                Cell::colored(r.outcome.as_str(), Color::Green)
            }
            _ => Cell::new(r.outcome.as_str()),
        };
        table.row([
            Cell::new(r.change),
            Cell::new(r.target.to_string()),
            outcome,
            Cell::new(r.detail.clone().unwrap_or_else(|| "-".into())),
        ]);
    }
    out.push_str(&table.render());
    // Stopped part-way (a failure or Ctrl-C): the error line says what was
    // written and how to undo it; no "now points at" sentence.
    let stopped = report
        .results
        .iter()
        .any(|r| r.outcome == WriteOutcome::NotSent);
    if !report.failures().is_empty() || stopped {
        return out;
    }
    let tag = &report.tag;
    let sentence = match (report.server_dry_run, report.operation, &report.to_revision) {
        (true, _, _) => {
            "--dry-run=server: the server accepted every write and stored none.".to_string()
        }
        (false, "remove", _) => format!("Removed tag {tag}."),
        (false, _, Some(to)) => format!("Tag {tag} now points at {to}."),
        (false, _, None) => format!("Tag {tag} is gone."),
    };
    out.push('\n');
    wrap.push(&mut out, &sentence, "");
    if report.server_dry_run {
        return out;
    }
    if let Some(undo) = &report.undo {
        let _ = writeln!(out, "Undo with: {undo}");
    }
    if !report.stale.is_empty() && !restart_follows {
        let namespaces: std::collections::BTreeSet<&str> =
            report.stale.iter().map(|w| w.namespace.as_str()).collect();
        let names: Vec<&str> = namespaces.into_iter().collect();
        wrap.push(
            &mut out,
            &format!(
                "{} workload{} now run{} another proxy than new pods get. Next:",
                report.stale.len(),
                if report.stale.len() == 1 { "" } else { "s" },
                if report.stale.len() == 1 { "s" } else { "" },
            ),
            "",
        );
        let _ = writeln!(
            out,
            "  kubectl mesh-upgrade restart-sidecars -n {}",
            names.join(",")
        );
    }
    out
}

/// `tag list`: one row per tag; wide adds the objects and the way back.
pub fn list_table(list: &TagList, wide: bool, layout: &Layout) -> String {
    if list.tags.is_empty() {
        return format!(
            "No revision tags (webhook configurations labelled istio.io/tag, or Services of {} labelled istio.io/tag).\n",
            list.control_plane_namespace
        );
    }
    let mut columns = vec![
        ("TAG", Fit::Whole),
        ("REVISION", Fit::Whole),
        ("AS", Fit::Whole),
        ("NAMESPACES", Fit::Whole),
        ("PODS", Fit::Whole),
    ];
    if wide {
        columns.push(("WEBHOOK CONFIGURATION", Fit::Whole));
        columns.push(("SERVICE", Fit::Whole));
        columns.push(("UNDO TO", Fit::Whole));
    }
    let problems = list.tags.iter().any(|t| !t.problems.is_empty());
    if problems {
        columns.push(("PROBLEMS", Fit::Words));
    }
    let mut table = Table::new(*layout, &columns);
    for t in &list.tags {
        let mut row = vec![
            Cell::new(&t.name),
            Cell::new(or_none(t.revision.as_deref())),
            Cell::new(t.representation),
            Cell::new(if t.namespaces.is_empty() {
                "-".to_string()
            } else {
                t.namespaces.join(",")
            }),
            Cell::new(t.pods.to_string()),
        ];
        if wide {
            row.push(Cell::new(t.webhook_configuration.as_deref().unwrap_or("-")));
            row.push(Cell::new(t.service.as_deref().unwrap_or("-")));
            row.push(Cell::new(match &t.undo {
                None => "-".to_string(),
                Some(u) => u.revision.clone().unwrap_or_else(|| "(removed)".into()),
            }));
        }
        if problems {
            row.push(if t.problems.is_empty() {
                Cell::new("")
            } else {
                Cell::colored(t.problems.join("; "), Color::Red)
            });
        }
        table.row(row);
    }
    table.render()
}

/// What was written and how to undo it, as the tail of a sentence (empty
/// when nothing was written).
pub fn written_sentence(report: &TagReport) -> String {
    let written: Vec<String> = report
        .written()
        .iter()
        .map(|r| format!("{} {}", r.change, r.target))
        .collect();
    if written.is_empty() || report.server_dry_run {
        return String::new();
    }
    let undo = match &report.undo {
        Some(undo) => format!("; undo with: {undo}"),
        None => String::new(),
    };
    format!("; already written: {}{undo}", written.join(", "))
}

/// What a Ctrl-C during the writes left: what was not sent, what failed,
/// what was written and its undo.
pub fn interrupted_sentence(report: &TagReport, restart: bool, written: &str) -> String {
    let count = |outcome| {
        report
            .results
            .iter()
            .filter(|r| r.outcome == outcome)
            .count()
    };
    let total = report.results.len();
    let stopped = match count(WriteOutcome::NotSent) {
        0 if total == 1 => format!(
            " once the write of tag {} {} had been sent",
            report.operation, report.tag
        ),
        0 => format!(
            " once all {total} writes of tag {} {} had been sent",
            report.operation, report.tag
        ),
        n => format!(
            ": tag {} {} stopped with {n} of its {total} writes not sent",
            report.operation, report.tag
        ),
    };
    let failed: Vec<String> = report
        .failures()
        .iter()
        .map(|r| r.target.to_string())
        .collect();
    super::interrupted_tail(&stopped, &failed, restart, written, "nothing was changed")
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::mesh::fixtures::ClusterFixture;
    use crate::mesh::tags::{TagOperation, TagRequest, TagWriteResult, plan};

    #[test]
    fn an_interrupted_tag_names_what_was_not_sent_what_was_written_and_the_undo() {
        let snapshot = ClusterFixture::new()
            .default_revision_install("default", "1.21.2")
            .revision("1-22-3", "1.22.3")
            .build();
        let request = TagRequest {
            tag: "default".into(),
            operation: TagOperation::Set {
                revision: "1-22-3".into(),
            },
            force: false,
        };
        let moved = plan(&snapshot, &request).unwrap();
        let report = |outcomes: [WriteOutcome; 2]| {
            let results = moved
                .writes
                .iter()
                .zip(outcomes)
                .map(|(write, outcome)| TagWriteResult {
                    target: write.target.clone(),
                    change: change_name(write),
                    outcome,
                    detail: None,
                })
                .collect();
            TagReport::new(&moved, results, false)
        };
        let stopped = report([WriteOutcome::Written, WriteOutcome::NotSent]);
        assert_eq!(
            interrupted_sentence(&stopped, false, &written_sentence(&stopped)),
            "interrupted: tag set default stopped with 1 of its 2 writes not sent; already \
             written: create mutatingwebhookconfiguration/istio-revision-tag-default; undo with: \
             kubectl mesh-upgrade tag set --undo default"
        );
        let text = report_text(&stopped, false, &Layout::at(100));
        assert!(text.contains("not-sent"), "{text}");
        assert!(
            !text.contains("now points at"),
            "no success sentence: {text}"
        );
        let all_sent = report([WriteOutcome::Written, WriteOutcome::Written]);
        assert!(
            interrupted_sentence(&all_sent, true, &written_sentence(&all_sent)).starts_with(
                "interrupted once all 2 writes of tag set default had been sent; --restart did not run; already written: "
            )
        );
        let none = report([WriteOutcome::NotSent, WriteOutcome::NotSent]);
        assert_eq!(
            interrupted_sentence(&none, false, &written_sentence(&none)),
            "interrupted: tag set default stopped with 2 of its 2 writes not sent; nothing was changed"
        );
    }
}
