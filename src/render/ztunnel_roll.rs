//! `ztunnel-roll`'s plan and report as text: the nodes in the order they
//! go, what each step writes, the pods a drain moves and the budgets that
//! pace them, and afterwards what happened to each node, above all which
//! nodes are left cordoned and how to uncordon them. Pure; node and pod
//! names never wrap, RISK, DETAIL and sentences do at a terminal.

use super::table::{Fit, Table};
use super::{Layout, commands_whole};
use crate::mesh::ambient::Cordon;
use crate::mesh::ztunnel_roll::{CordonEnd, NodeOutcome, RollPlan, RollReport, StepKind};

fn plural(n: usize, word: &str) -> String {
    if n == 1 {
        format!("{n} {word}")
    } else {
        format!("{n} {word}s")
    }
}

/// The plan as a person reads it.
pub fn plan_text(plan: &RollPlan, layout: &Layout) -> String {
    let wrap = layout.wrap();
    let mut out = String::new();
    let Some(daemon_set) = &plan.daemon_set else {
        for refusal in &plan.refusals {
            wrap.push(&mut out, &format!("refused: {refusal}"), "  ");
        }
        return out;
    };
    let target = plan
        .target_version
        .clone()
        .or_else(|| plan.target_image.clone())
        .unwrap_or_default();
    let control_plane = match &plan.control_plane {
        Some(cp) => format!(
            ", talking to {} ({}, {})",
            cp.istiod,
            cp.version.as_deref().unwrap_or("?"),
            if cp.ready { "Ready" } else { "not Ready" }
        ),
        None => String::new(),
    };
    if plan.nodes.is_empty() {
        wrap.push(
            &mut out,
            &format!(
                "Nothing to roll: every selected node's ztunnel from {daemon_set} runs {target}{control_plane}."
            ),
            "",
        );
    } else {
        wrap.push(
            &mut out,
            &format!(
                "Roll ztunnel {daemon_set} ({}) to {target}{control_plane}, {} at a time{}:",
                plan.update_strategy.as_deref().unwrap_or("?"),
                plural(plan.nodes_at_once, "node"),
                if plan.drain { "" } else { ", without draining" }
            ),
            "",
        );
        let mut table = Table::new(
            *layout,
            &[
                ("NODE", Fit::Whole),
                ("ZTUNNEL", Fit::Whole),
                ("STEPS", Fit::Words),
            ],
        );
        for step in &plan.nodes {
            let ztunnel = match step.kind {
                StepKind::Uncordon => format!("{target} (replaced)"),
                StepKind::Roll => format!(
                    "{} -> {target}",
                    step.from_version.as_deref().unwrap_or("?")
                ),
            };
            let mut steps = Vec::new();
            match (&step.cordon, &step.cordoned) {
                (Some(_), _) => steps.push("cordon".to_string()),
                (None, Cordon::Plugin { .. }) if step.kind == StepKind::Roll => {
                    steps.push("(cordoned by an earlier run)".to_string())
                }
                (None, Cordon::Other) => steps.push("(cordoned by someone else: kept)".to_string()),
                _ => {}
            }
            if !step.evictions.is_empty() {
                steps.push(format!("evict {}", plural(step.evictions.len(), "pod")));
            }
            if let Some(pod) = step
                .ztunnel_pod
                .as_deref()
                .filter(|_| step.replace.is_some())
            {
                steps.push(format!("replace {pod}, wait until the new one is Ready"));
            }
            if step.uncordon.is_some() {
                steps.push("uncordon".to_string());
            }
            table.row([step.node.clone(), ztunnel, steps.join(", ")]);
        }
        out.push('\n');
        out.push_str(&table.render());
        let evictions: Vec<_> = plan
            .nodes
            .iter()
            .flat_map(|s| s.evictions.iter().map(move |e| (&s.node, e)))
            .collect();
        if !evictions.is_empty() {
            out.push('\n');
            wrap.push(
                &mut out,
                "Evictions (the API server evicts a pod only when its PodDisruptionBudget allows; the roll waits for that):",
                "",
            );
            let mut table = Table::new(
                *layout,
                &[
                    ("NODE", Fit::Whole),
                    ("POD", Fit::Whole),
                    ("WORKLOAD", Fit::Whole),
                    ("PDB", Fit::Whole),
                    ("RISK", Fit::Words),
                ],
            );
            for (node, e) in evictions {
                table.row([
                    node.clone(),
                    format!("{}/{}", e.namespace, e.pod),
                    e.workload.clone().unwrap_or_else(|| "-".into()),
                    e.budget.clone().unwrap_or_else(|| "-".into()),
                    e.risk.clone().unwrap_or_else(|| "-".into()),
                ]);
            }
            out.push_str(&table.render());
        }
        let staying: Vec<_> = plan
            .nodes
            .iter()
            .flat_map(|s| s.staying.iter().map(move |p| (&s.node, p)))
            .collect();
        if !staying.is_empty() {
            out.push('\n');
            out.push_str("Staying on their nodes:\n");
            for (node, p) in staying {
                wrap.push(
                    &mut out,
                    &format!("  {node}: {}/{}: {}", p.namespace, p.pod, p.why),
                    "    ",
                );
            }
        }
    }
    if !plan.skipped.is_empty() {
        out.push('\n');
        let skipped: Vec<String> = plan
            .skipped
            .iter()
            .map(|s| format!("{} ({})", s.node, s.reason))
            .collect();
        wrap.push(&mut out, &format!("Skipped: {}", skipped.join("; ")), "  ");
    }
    for note in &plan.notes {
        wrap.push(&mut out, &format!("Note: {note}"), "  ");
    }
    for refusal in &plan.refusals {
        wrap.push(
            &mut out,
            &commands_whole(&format!("Refused: {refusal}")),
            "  ",
        );
    }
    out
}

/// What happened, node by node, then a summary line.
pub fn report_text(report: &RollReport, layout: &Layout) -> String {
    let mut out = String::new();
    if report.nodes.is_empty() {
        return out;
    }
    let mut table = Table::new(
        *layout,
        &[
            ("NODE", Fit::Whole),
            ("RESULT", Fit::Whole),
            ("EVICTED", Fit::Whole),
            ("ZTUNNEL", Fit::Whole),
            ("CORDON", Fit::Whole),
            ("DETAIL", Fit::Words),
        ],
    );
    for n in &report.nodes {
        let ztunnel = match (&n.replaced, &n.new_ztunnel) {
            (Some(old), Some(new)) => format!("{old} -> {new}"),
            (Some(old), None) => format!("{old} deleted"),
            (None, _) => "-".to_string(),
        };
        let cordon = match n.cordon {
            CordonEnd::None => "-",
            CordonEnd::Uncordoned => "uncordoned",
            CordonEnd::LeftCordoned => "LEFT CORDONED",
            CordonEnd::SomeoneElses => "someone else's",
        };
        let mut detail = n.detail.clone().unwrap_or_default();
        if let Some(seconds) = n.seconds {
            if detail.is_empty() {
                detail = format!("{seconds:.1}s");
            } else {
                detail = format!("{detail} ({seconds:.1}s)");
            }
        }
        table.row([
            n.node.clone(),
            n.outcome.as_str().to_string(),
            n.evicted.len().to_string(),
            ztunnel,
            cordon.to_string(),
            commands_whole(if detail.is_empty() { "-" } else { &detail }),
        ]);
    }
    out.push_str(&table.render());
    let s = &report.summary;
    let mut parts = Vec::new();
    for (count, word) in [
        (s.rolled, "rolled"),
        (s.uncordoned, "uncordoned"),
        (s.rehearsed, "rehearsed on the server"),
        (s.failed, "failed"),
        (s.timed_out, "timed out"),
        (s.interrupted, "interrupted"),
        (s.not_started, "not started"),
    ] {
        if count > 0 {
            parts.push(format!("{count} {word}"));
        }
    }
    let mut line = format!("Summary: {}", parts.join(", "));
    if s.evicted_pods > 0 {
        line.push_str(&format!("; {} evicted", plural(s.evicted_pods, "pod")));
    }
    line.push('.');
    layout.wrap().push(&mut out, &line, "  ");
    out
}

/// After a run that did not finish cleanly: what was written, which nodes
/// are left cordoned, and how each change is undone. `None` when every node
/// ended as planned and none is left cordoned.
pub fn written_and_undo(report: &RollReport) -> Option<String> {
    let clean = report.nodes.iter().all(|n| {
        matches!(
            n.outcome,
            NodeOutcome::Rolled | NodeOutcome::Uncordoned | NodeOutcome::Rehearsed
        )
    }) && report.left_cordoned.is_empty();
    if clean {
        return None;
    }
    let mut parts = Vec::new();
    let replaced: Vec<&str> = report
        .nodes
        .iter()
        .filter(|n| n.replaced.is_some())
        .map(|n| n.node.as_str())
        .collect();
    let evicted: usize = report.nodes.iter().map(|n| n.evicted.len()).sum();
    if evicted > 0 {
        parts.push(format!(
            "evicted {} (their controllers recreate them on other nodes; nothing to undo)",
            plural(evicted, "pod")
        ));
    }
    if !replaced.is_empty() {
        parts.push(format!(
            "replaced ztunnel on {} (undone by setting the DaemonSet's template back, e.g. helm rollback ztunnel, and running kubectl mesh-upgrade ztunnel-roll again)",
            replaced.join(", ")
        ));
    }
    let mut text = if parts.is_empty() {
        "nothing was replaced".to_string()
    } else {
        format!("already written: {}", parts.join("; "))
    };
    if report.left_cordoned.is_empty() {
        text.push_str("; no node is left cordoned by this run");
    } else {
        text.push_str(&format!(
            "; LEFT CORDONED by ztunnel-roll: {}: uncordon with {}, or run kubectl mesh-upgrade ztunnel-roll again, which finishes these nodes and uncordons them",
            report.left_cordoned.join(", "),
            report
                .left_cordoned
                .iter()
                .map(|n| format!("kubectl uncordon {n}"))
                .collect::<Vec<_>>()
                .join(", ")
        ));
    }
    Some(text)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::mesh::ambient::tests::ambient_world;
    use crate::mesh::ztunnel_roll::{NodeResult, RollOptions, plan};
    use chrono::{TimeZone, Utc};

    fn scenario_plan() -> RollPlan {
        let snapshot = ambient_world(|_| {});
        plan(
            &snapshot,
            &RollOptions {
                drain: true,
                nodes_at_once: 1,
                ..RollOptions::default()
            },
            Utc.with_ymd_and_hms(2026, 12, 4, 21, 10, 7).unwrap(),
        )
        .unwrap()
    }

    #[test]
    fn the_plan_lists_each_nodes_steps_and_the_evictions_with_their_budgets() {
        let plan = scenario_plan();
        let text = plan_text(&plan, &Layout::unlimited());
        assert!(
            text.starts_with("Roll ztunnel istio-system/ztunnel (OnDelete) to 1.23.1, talking to istiod-1-23-1 (1.23.1, Ready), 1 node at a time:\n"),
            "{text}"
        );
        let first = &plan.nodes[0];
        assert!(
            text.lines().any(|l| l.starts_with(&first.node)
                && l.contains("1.22.3 -> 1.23.1")
                && l.contains("cordon, evict")
                && l.ends_with(", wait until the new one is Ready, uncordon")),
            "{text}"
        );
        assert!(text.contains("Deployment/details"), "{text}");
        assert!(text.contains("1 replica, no PDB"), "{text}");
        assert!(text.contains("StatefulSet/ledger"), "{text}");
    }

    #[test]
    fn a_node_left_cordoned_is_named_with_the_command_that_uncordons_it() {
        let plan = scenario_plan();
        let results = vec![
            NodeResult {
                node: plan.nodes[0].node.clone(),
                outcome: NodeOutcome::Rolled,
                detail: None,
                evicted: vec!["bookinfo/a".into()],
                replaced: Some("ztunnel-a".into()),
                new_ztunnel: Some("ztunnel-b".into()),
                cordon: CordonEnd::Uncordoned,
                seconds: Some(1.0),
            },
            NodeResult {
                node: plan.nodes[1].node.clone(),
                outcome: NodeOutcome::Interrupted,
                detail: Some("stopped (second Ctrl-C)".into()),
                evicted: vec!["bookinfo/b".into(), "bookinfo/c".into()],
                replaced: Some("ztunnel-c".into()),
                new_ztunnel: None,
                cordon: CordonEnd::LeftCordoned,
                seconds: Some(2.0),
            },
            NodeResult {
                node: plan.nodes[2].node.clone(),
                outcome: NodeOutcome::NotStarted,
                detail: None,
                evicted: Vec::new(),
                replaced: None,
                new_ztunnel: None,
                cordon: CordonEnd::None,
                seconds: None,
            },
        ];
        let report = RollReport::new(&plan, results);
        let second = plan.nodes[1].node.clone();
        assert_eq!(report.left_cordoned, std::slice::from_ref(&second));
        let text = written_and_undo(&report).unwrap();
        assert!(
            text.contains(&format!(
                "LEFT CORDONED by ztunnel-roll: {second}: uncordon with kubectl uncordon {second}, or run kubectl mesh-upgrade ztunnel-roll again"
            )),
            "{text}"
        );
        assert!(text.contains("evicted 3 pods"), "{text}");
        let table = report_text(&report, &Layout::unlimited());
        assert!(table.contains("LEFT CORDONED"), "{table}");
        assert!(
            table.ends_with("Summary: 1 rolled, 1 interrupted, 1 not started; 3 pods evicted.\n"),
            "{table}"
        );

        let clean = RollReport::new(&plan, Vec::new());
        assert_eq!(written_and_undo(&clean), None);
    }
}
