//! The relabel plan and report as text for a person: a table of the
//! namespaces that change, the ones left alone with the reason, and what
//! relabelling does and does not do. Pure, no colour; labels and names never
//! wrap, sentences do at a terminal (a command to copy stays whole).

use std::fmt::Write as _;

use super::Layout;
use super::table::{Fit, Table};
use crate::mesh::relabel::{
    InjectionLabels, NamespaceChange, PREVIOUS_LABELS_ANNOTATION, RelabelPlan, RelabelReport,
    ResultState, Target, TargetKind, describe_labels,
};

/// The plan: headline, table, the namespaces left alone, notes, and what
/// relabelling does.
pub fn plan_text(plan: &RelabelPlan, layout: &Layout) -> String {
    let wrap = layout.wrap();
    let mut out = String::new();
    let count = plan.changes.len();
    let headline = match (&plan.target, count) {
        (None, 0) => "Nothing to undo.".to_string(),
        (None, n) => format!(
            "Restore the recorded injection labels of {}:",
            namespaces(n)
        ),
        (Some(target), 0) => format!(
            "Nothing to relabel to {}{}.",
            describe_target(target),
            from_text(plan)
        ),
        (Some(target), n) => format!(
            "Relabel {} to {}{}:",
            namespaces(n),
            describe_target(target),
            from_text(plan)
        ),
    };
    wrap.push(&mut out, &headline, "");

    if !plan.changes.is_empty() {
        out.push('\n');
        out.push_str(&changes_table(&plan.changes, layout));
        for change in &plan.changes {
            for note in &change.notes {
                wrap.push(&mut out, &format!("  {}: {note}", change.namespace), "    ");
            }
        }
    }

    if !plan.skipped.is_empty() {
        out.push_str("\nLeft alone:\n");
        let mut list = Table::headless(*layout, &[Fit::Whole, Fit::Words]).indented(2);
        for skip in &plan.skipped {
            list.row([skip.namespace.as_str(), skip.message.as_str()]);
        }
        out.push_str(&list.render());
    }
    if plan.unrecorded > 0 {
        out.push('\n');
        wrap.push(
            &mut out,
            &match (plan.changes.is_empty(), plan.unrecorded) {
                (true, 1) => {
                    "The 1 selected namespace was never relabelled by mesh-upgrade.".to_string()
                }
                (true, n) => {
                    format!(
                        "None of the {n} selected namespaces was ever relabelled by mesh-upgrade."
                    )
                }
                (false, 1) => {
                    "1 other namespace was never relabelled by mesh-upgrade: nothing to undo there."
                        .to_string()
                }
                (false, n) => format!(
                    "{n} other namespaces were never relabelled by mesh-upgrade: nothing to undo there."
                ),
            },
            "",
        );
    }
    if !plan.notes.is_empty() {
        out.push('\n');
        for note in &plan.notes {
            wrap.push(&mut out, &format!("Note: {note}"), "  ");
        }
    }

    if !plan.changes.is_empty() {
        out.push('\n');
        let names = name_list(plan.changes.iter().map(|c| c.namespace.as_str()));
        if plan.is_undo() {
            wrap.push(
                &mut out,
                &format!(
                    "Each namespace gets back the labels recorded in its annotation {PREVIOUS_LABELS_ANNOTATION}, and the annotation is removed."
                ),
                "",
            );
        } else {
            wrap.push(
                &mut out,
                &format!(
                    "Before a namespace's first relabel, its injection labels are recorded in its annotation {PREVIOUS_LABELS_ANNOTATION}; this undoes it:"
                ),
                "",
            );
            let _ = writeln!(out, "  kubectl mesh-upgrade relabel -n {names} --undo");
        }
        wrap.push(
            &mut out,
            "Labels change only what new pods get: running pods keep their current proxy until they are restarted, and `kubectl mesh-upgrade status` shows them as stale until then.",
            "",
        );
    }
    out
}

/// What the writes did, and what to run next; `restart_follows` when
/// `--restart` continues into restart-sidecars (no command to suggest then).
pub fn report_text(report: &RelabelReport, restart_follows: bool, layout: &Layout) -> String {
    let wrap = layout.wrap();
    let mut out = String::new();
    if report.results.is_empty() {
        return out;
    }
    let done = report
        .results
        .iter()
        .filter(|r| matches!(r.state, ResultState::Relabelled | ResultState::Rehearsed))
        .count();
    let total = report.results.len();
    let count = if done == total {
        namespaces(total)
    } else {
        format!("{done} of {}", namespaces(total))
    };
    let headline = match (report.server_dry_run, &report.target) {
        (true, _) => format!(
            "The server accepted the patches of {count} (--dry-run=server: nothing was stored):"
        ),
        (false, Some(target)) => format!("Relabelled {count} to {}:", target.name),
        (false, None) => format!("Restored the injection labels of {count}:"),
    };
    wrap.push(&mut out, &headline, "");
    let mut list = Table::headless(*layout, &[Fit::Whole, Fit::Words]).indented(2);
    for result in &report.results {
        let mut detail = match result.state {
            ResultState::Relabelled | ResultState::Rehearsed => result
                .labels
                .as_ref()
                .map(describe_labels)
                .unwrap_or_default(),
            ResultState::Unchanged => format!(
                "unchanged: {}",
                result.message.as_deref().unwrap_or("changed meanwhile")
            ),
            ResultState::Failed => format!(
                "FAILED: {}",
                result.message.as_deref().unwrap_or("unknown error")
            ),
            ResultState::NotSent => format!(
                "not changed: {}",
                result.message.as_deref().unwrap_or("not sent")
            ),
        };
        if result.conflicts > 0 && result.state != ResultState::Failed {
            let _ = write!(
                detail,
                " (re-read and patched again after {} with another writer)",
                conflicts(result.conflicts)
            );
        }
        list.row([result.namespace.clone(), detail]);
    }
    out.push_str(&list.render());
    if report.server_dry_run || report.restart_namespaces.is_empty() || restart_follows {
        return out;
    }
    let names = name_list(report.restart_namespaces.iter().map(String::as_str));
    wrap.push(
        &mut out,
        &format!(
            "Running pods keep their current proxy until they are restarted; until then `kubectl mesh-upgrade status -n {names}` shows them as stale. Next:"
        ),
        "",
    );
    let _ = writeln!(out, "  kubectl mesh-upgrade restart-sidecars -n {names}");
    out
}

/// `revision 1-22-3 (proxy 1.22.3)`, `tag prod-canary (revision 1-22-3, proxy 1.22.3)`.
fn describe_target(target: &Target) -> String {
    let mut facts = Vec::new();
    match target.kind {
        TargetKind::Revision => {}
        TargetKind::Tag => facts.push(format!(
            "revision {}",
            target.revision.as_deref().unwrap_or("none")
        )),
        TargetKind::DefaultInjection => facts.push(format!(
            "the default revision, {}",
            target.revision.as_deref().unwrap_or("none")
        )),
    }
    if let Some(version) = &target.version {
        facts.push(format!("proxy {version}"));
    }
    if !target.ready {
        facts.push("istiod NOT Ready".to_string());
    }
    let name = match target.kind {
        TargetKind::Revision => format!("revision {}", target.name),
        TargetKind::Tag => format!("tag {}", target.name),
        TargetKind::DefaultInjection => "istio-injection=enabled".to_string(),
    };
    if facts.is_empty() {
        name
    } else {
        format!("{name} ({})", facts.join(", "))
    }
}

fn from_text(plan: &RelabelPlan) -> String {
    match &plan.from {
        None => String::new(),
        Some(from) => match &from.revision {
            Some(revision) if *revision != from.name => {
                format!(" from {} (revision {revision})", from.name)
            }
            _ => format!(" from {}", from.name),
        },
    }
}

fn namespaces(n: usize) -> String {
    if n == 1 {
        "1 namespace".to_string()
    } else {
        format!("{n} namespaces")
    }
}

fn conflicts(n: u32) -> String {
    if n == 1 {
        "a conflict".to_string()
    } else {
        format!("{n} conflicts")
    }
}

fn name_list<'a>(names: impl Iterator<Item = &'a str>) -> String {
    names.collect::<Vec<_>>().join(",")
}

/// One cell per label set, `(none)` when neither is.
fn label_lines(labels: &InjectionLabels) -> Vec<String> {
    let lines: Vec<String> = labels
        .iter()
        .filter_map(|(k, v)| v.as_ref().map(|v| format!("{k}={v}")))
        .collect();
    if lines.is_empty() {
        vec!["(none)".to_string()]
    } else {
        lines
    }
}

fn changes_table(changes: &[NamespaceChange], layout: &Layout) -> String {
    let mut table = Table::new(
        *layout,
        &[
            ("NAMESPACE", Fit::Whole),
            ("LABELS NOW", Fit::Whole),
            ("NEW PODS GET", Fit::Whole),
            ("LABELS AFTER", Fit::Whole),
            ("NEW PODS GET", Fit::Whole),
        ],
    );
    let no_proxy =
        |revision: &Option<String>| revision.clone().unwrap_or_else(|| "no proxy".into());
    for c in changes {
        table.row([
            c.namespace.clone(),
            label_lines(&c.before).join("\n"),
            no_proxy(&c.revision_before),
            label_lines(&c.after).join("\n"),
            no_proxy(&c.revision_after),
        ]);
    }
    table.render()
}

/// What the relabel wrote and how to undo it, as the tail of a sentence
/// (empty when nothing was written).
pub fn written_sentence(report: &RelabelReport) -> String {
    let done: Vec<&str> = report
        .results
        .iter()
        .filter(|r| r.state == ResultState::Relabelled)
        .map(|r| r.namespace.as_str())
        .collect();
    if done.is_empty() {
        return String::new();
    }
    let undo = if report.operation == "undo" {
        String::new()
    } else {
        format!(
            "; undo with: kubectl mesh-upgrade relabel -n {} --undo",
            done.join(",")
        )
    };
    format!("; already relabelled: {}{undo}", done.join(", "))
}

/// What a Ctrl-C during the patches left: what was not sent, what failed,
/// what was relabelled and its undo.
pub fn interrupted_sentence(report: &RelabelReport, restart: bool, written: &str) -> String {
    let total = report.results.len();
    let stopped = match report
        .results
        .iter()
        .filter(|r| r.state == ResultState::NotSent)
        .count()
    {
        0 if total == 1 => " once the namespace patch had been sent".to_string(),
        0 => format!(" once all {total} namespace patches had been sent"),
        n => format!(": {n} of {total} namespace patches were not sent"),
    };
    let failed: Vec<String> = report
        .failures()
        .iter()
        .map(|r| r.namespace.clone())
        .collect();
    super::interrupted_tail(
        &stopped,
        &failed,
        restart,
        written,
        "nothing was relabelled",
    )
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::mesh::control_plane::ControlPlane;
    use crate::mesh::fixtures::{ClusterFixture, namespace};
    use crate::mesh::relabel::*;

    const WIDTH: usize = 100;

    fn canary() -> ControlPlane {
        ControlPlane::from_snapshot(
            &ClusterFixture::new()
                .revision("1-21-2", "1.21.2")
                .revision("1-22-3", "1.22.3")
                .tag("default", "1-21-2")
                .build(),
        )
    }

    fn ns(name: &str, labels: &[(&str, &str)]) -> NamespaceState {
        NamespaceState {
            info: namespace(name, labels),
            resource_version: "1".into(),
            previous_labels: None,
        }
    }

    fn planned(names: &[&str]) -> RelabelPlan {
        let cluster = vec![
            ns("shop", &[("istio-injection", "enabled")]),
            ns(
                "legacy",
                &[("istio-injection", "enabled"), ("istio.io/rev", "1-22-3")],
            ),
            ns("search", &[("istio.io/rev", "1-22-3")]),
            ns("kube-system", &[]),
        ];
        plan(
            &cluster,
            &canary(),
            &RelabelRequest {
                operation: Operation::Move {
                    to: "1-22-3".into(),
                },
                namespaces: NamespaceSelection::Named(
                    names.iter().map(|n| n.to_string()).collect(),
                ),
                selector: None,
                from: None,
                force: false,
            },
        )
        .unwrap()
    }

    #[test]
    fn the_plan_shows_labels_and_revisions_before_and_after_and_why_others_are_left_alone() {
        let text = plan_text(
            &planned(&["shop", "legacy", "search", "kube-system"]),
            &Layout::at(WIDTH),
        );
        let expected = "\
Relabel 2 namespaces to revision 1-22-3 (proxy 1.22.3):

NAMESPACE  LABELS NOW               NEW PODS GET  LABELS AFTER         NEW PODS GET
shop       istio-injection=enabled  1-21-2        istio.io/rev=1-22-3  1-22-3
legacy     istio-injection=enabled  1-21-2        istio.io/rev=1-22-3  1-22-3
           istio.io/rev=1-22-3
  legacy: both labels were set and istio-injection won (IST0123); only istio.io/rev is left

Left alone:
  search       already labelled istio.io/rev=1-22-3
  kube-system  a Kubernetes system namespace; pass --force to relabel it anyway

Before a namespace's first relabel, its injection labels are recorded in its annotation
mesh-upgrade.io/previous-injection-labels; this undoes it:
  kubectl mesh-upgrade relabel -n shop,legacy --undo
Labels change only what new pods get: running pods keep their current proxy until they are
restarted, and `kubectl mesh-upgrade status` shows them as stale until then.
";
        assert_eq!(text, expected);
        for line in text.lines() {
            assert!(line.chars().count() <= WIDTH, "{line:?}");
        }
    }

    #[test]
    fn an_interrupted_relabel_names_what_was_not_sent_what_was_relabelled_and_the_undo() {
        let plan = planned(&["shop", "legacy"]);
        let result = |namespace: &str, state| NamespaceResult {
            namespace: namespace.into(),
            state,
            labels: None,
            conflicts: 0,
            message: None,
        };
        let stopped = RelabelReport::new(
            &plan,
            vec![
                result("shop", ResultState::Relabelled),
                result("legacy", ResultState::NotSent),
            ],
            false,
        );
        assert_eq!(
            interrupted_sentence(&stopped, true, &written_sentence(&stopped)),
            "interrupted: 1 of 2 namespace patches were not sent; --restart did not run; \
             already relabelled: shop; undo with: kubectl mesh-upgrade relabel -n shop --undo"
        );
        assert_eq!(
            stopped.restart_namespaces,
            ["shop"],
            "legacy was never relabelled"
        );
        let all_sent = RelabelReport::new(
            &plan,
            vec![
                result("shop", ResultState::Relabelled),
                result("legacy", ResultState::Relabelled),
            ],
            false,
        );
        assert_eq!(
            interrupted_sentence(&all_sent, false, &written_sentence(&all_sent)),
            "interrupted once all 2 namespace patches had been sent; already relabelled: shop, \
             legacy; undo with: kubectl mesh-upgrade relabel -n shop,legacy --undo"
        );
        let none = RelabelReport::new(&plan, vec![result("shop", ResultState::NotSent)], false);
        assert_eq!(
            interrupted_sentence(&none, false, &written_sentence(&none)),
            "interrupted: 1 of 1 namespace patches were not sent; nothing was relabelled"
        );
    }

    #[test]
    fn the_report_names_each_namespace_and_the_next_command() {
        let plan = planned(&["shop", "legacy"]);
        let results = vec![
            NamespaceResult {
                namespace: "shop".into(),
                state: ResultState::Relabelled,
                labels: Some(plan.changes[0].after.clone()),
                conflicts: 2,
                message: None,
            },
            NamespaceResult {
                namespace: "legacy".into(),
                state: ResultState::Failed,
                labels: None,
                conflicts: 0,
                message: Some("forbidden: cannot patch namespaces/legacy".into()),
            },
        ];
        let report = RelabelReport::new(&plan, results, false);
        assert_eq!(report.restart_namespaces, ["shop"]);
        assert_eq!(
            report_text(&report, false, &Layout::at(WIDTH)),
            "\
Relabelled 1 of 2 namespaces to 1-22-3:
  shop    istio.io/rev=1-22-3 (re-read and patched again after 2 conflicts with another writer)
  legacy  FAILED: forbidden: cannot patch namespaces/legacy
Running pods keep their current proxy until they are restarted; until then
`kubectl mesh-upgrade status -n shop` shows them as stale. Next:
  kubectl mesh-upgrade restart-sidecars -n shop
"
        );
    }

    #[test]
    fn a_server_rehearsal_says_nothing_was_stored_and_suggests_nothing() {
        let plan = planned(&["shop"]);
        let results = vec![NamespaceResult {
            namespace: "shop".into(),
            state: ResultState::Rehearsed,
            labels: Some(plan.changes[0].after.clone()),
            conflicts: 0,
            message: None,
        }];
        let text = report_text(
            &RelabelReport::new(&plan, results, true),
            false,
            &Layout::at(WIDTH),
        );
        assert_eq!(
            text,
            "The server accepted the patches of 1 namespace (--dry-run=server: nothing was stored):\n  shop  istio.io/rev=1-22-3\n"
        );
    }

    #[test]
    fn undo_of_every_namespace_when_none_was_relabelled_says_so() {
        let cluster = vec![ns("shop", &[]), ns("cart", &[])];
        let plan = plan(
            &cluster,
            &canary(),
            &RelabelRequest {
                operation: Operation::Undo,
                namespaces: NamespaceSelection::All,
                selector: None,
                from: None,
                force: false,
            },
        )
        .unwrap();
        assert_eq!(
            plan_text(&plan, &Layout::at(WIDTH)),
            "Nothing to undo.\n\nNone of the 2 selected namespaces was ever relabelled by mesh-upgrade.\n"
        );
    }
}
