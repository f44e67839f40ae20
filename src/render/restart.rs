//! The restart-sidecars plan and report as text for a person: the
//! workloads to restart with their proxies before and after, what is
//! skipped and why, the pods that need a hand, and the results. Pure; the
//! names and proxies never wrap, RISK and DETAIL do at a terminal.

use std::fmt::Write as _;

use super::table::{Fit, Table};
use super::{Layout, commands_whole, plural};
use crate::mesh::restart::{Outcome, RestartMethod, RestartPlan, RestartReport, WorkloadResult};
use crate::mesh::workloads::{Risk, WorkloadKind};
use crate::wrap::together;

fn risk_text(risks: &[Risk]) -> String {
    if risks.is_empty() {
        "-".to_string()
    } else {
        risks
            .iter()
            .map(|r| match r {
                Risk::SingleReplica => "single replica",
                Risk::NoPdb => "no PDB",
                Risk::PdbAllowsZero => "PDB allows 0",
                Risk::VersionSkew => "version skew",
                Risk::RolloutStuck => "was stuck",
                other => other.code(),
            })
            .map(together)
            .collect::<Vec<_>>()
            .join(", ")
    }
}

/// The plan as a person reads it: the restarts, then what is skipped and
/// what needs a hand.
pub fn plan_text(plan: &RestartPlan, layout: &Layout) -> String {
    let wrap = layout.wrap();
    let mut out = String::new();
    if plan.actions.is_empty() && plan.skipped.is_empty() && plan.held.is_empty() {
        out.push_str("Nothing to restart: no workload in the selection runs a stale proxy.\n");
    } else if plan.actions.is_empty() {
        out.push_str("Nothing to restart.\n");
    } else {
        let n = plan.actions.len();
        let rollouts = plan
            .actions
            .iter()
            .filter(|a| matches!(a.method, RestartMethod::RestartAt { .. }))
            .count();
        let stamp = match (rollouts, n - rollouts) {
            (0, _) => format!(
                "annotation kubectl.kubernetes.io/restartedAt={}",
                plan.restarted_at
            ),
            (_, 0) => format!("Argo Rollouts' spec.restartAt={}", plan.restarted_at),
            _ => format!(
                "annotation kubectl.kubernetes.io/restartedAt, Argo Rollouts' spec.restartAt={}",
                plan.restarted_at
            ),
        };
        wrap.push(
            &mut out,
            &format!("{n} workload{} to restart ({stamp}):", plural(n)),
            "",
        );
        let mut table = Table::new(
            *layout,
            &[
                ("NAMESPACE", Fit::Whole),
                ("WORKLOAD", Fit::Whole),
                ("REPLICAS", Fit::Whole),
                ("PROXY NOW", Fit::Whole),
                ("AFTER", Fit::Whole),
                ("RISK", Fit::Words),
            ],
        );
        for a in &plan.actions {
            let mut workload = a.reference();
            if let RestartMethod::DeletePods { pods } = &a.method {
                let _ = write!(
                    workload,
                    " (delete {} pod{})",
                    pods.len(),
                    plural(pods.len())
                );
            }
            table.row([
                a.namespace.to_string(),
                workload,
                a.replicas.to_string(),
                a.current_proxy(),
                a.expected_proxy(),
                risk_text(&a.risks),
            ]);
        }
        out.push_str(&table.render());
        for line in pacing_lines(plan) {
            wrap.push(&mut out, &line, "  ");
        }
    }
    if !plan.held.is_empty() {
        out.push_str("\nHeld (a PodDisruptionBudget allows no disruption now):\n");
        for h in &plan.held {
            wrap.push(
                &mut out,
                &format!(
                    "  {}/{}/{}: {}",
                    h.namespace,
                    h.kind.resource(),
                    h.name,
                    h.note
                ),
                "    ",
            );
        }
    }
    if !plan.skipped.is_empty() {
        out.push_str("\nSkipped:\n");
        for s in &plan.skipped {
            wrap.push(
                &mut out,
                &format!(
                    "  {}/{}/{}: {}",
                    s.namespace,
                    s.kind.resource(),
                    s.name,
                    s.note
                ),
                "    ",
            );
        }
    }
    if !plan.unreachable.is_empty() {
        out.push_str("\nPods no template patch can restart (never deleted by this command):\n");
        for u in &plan.unreachable {
            wrap.push(
                &mut out,
                &format!(
                    "  {}/{} ({}), runs {}, should run {}: {}",
                    u.namespace, u.pod, u.reason, u.current, u.expected, u.remedy
                ),
                "    ",
            );
            wrap.push(
                &mut out,
                &format!("    {}", commands_whole(&u.command)),
                "      ",
            );
        }
    }
    out
}

/// The budgets that make restarts wait for each other: one sentence for
/// each PodDisruptionBudget spent by more restarts than it allows at once.
fn pacing_lines(plan: &RestartPlan) -> Vec<String> {
    let mut spenders: std::collections::BTreeMap<(&str, &str), (i32, usize)> = Default::default();
    for action in &plan.actions {
        for budget in &action.disruption_budgets {
            let entry = spenders
                .entry((action.namespace.as_str(), budget.name.as_str()))
                .or_insert((budget.disruptions_allowed, 0));
            entry.1 += 1;
        }
    }
    spenders
        .into_iter()
        .filter(|(_, (allowed, count))| (*allowed as usize) < *count)
        .map(|((namespace, name), (allowed, count))| {
            format!(
                "Paced: PodDisruptionBudget {namespace}/{name} allows {allowed} disruption{}, so its {count} workloads restart {} at a time.",
                plural(allowed as usize),
                if allowed == 1 {
                    "one".to_string()
                } else {
                    allowed.to_string()
                }
            )
        })
        .collect()
}

/// The end-of-run summary as a person reads it.
pub fn report_text(report: &RestartReport, layout: &Layout) -> String {
    let mut out = String::new();
    if !report.results.is_empty() || !report.held.is_empty() {
        let mut table = Table::new(
            *layout,
            &[
                ("NAMESPACE", Fit::Whole),
                ("WORKLOAD", Fit::Whole),
                ("RESULT", Fit::Whole),
                ("DETAIL", Fit::Words),
            ],
        );
        for r in &report.results {
            let mut detail = r.detail.clone().unwrap_or_default();
            if let Some(seconds) = r.seconds {
                if detail.is_empty() {
                    detail = format!("{seconds:.1}s");
                } else {
                    detail = format!("{detail} ({seconds:.1}s)");
                }
            }
            table.row([
                r.namespace.clone(),
                format!("{}/{}", r.kind.resource(), r.name),
                r.outcome.as_str().to_string(),
                detail,
            ]);
        }
        for h in &report.held {
            table.row([
                h.namespace.to_string(),
                format!("{}/{}", h.kind.resource(), h.name),
                "held".to_string(),
                format!(
                    "PodDisruptionBudget {} allows 0 disruptions now; not restarted",
                    h.disruption_budget
                ),
            ]);
        }
        out.push_str(&table.render());
    }
    let s = &report.summary;
    let mut parts = Vec::new();
    for (n, what) in [
        (s.restarted, "restarted and verified"),
        (s.patched, "patched without waiting"),
        (
            s.rehearsed,
            "accepted by the server (dry run, nothing changed)",
        ),
        (s.unverified, "still running another proxy"),
        (s.failed, "failed"),
        (s.timed_out, "timed out"),
        (s.errors, "not restarted (API error)"),
        (s.interrupted, "interrupted while rolling"),
        (s.not_started, "never started"),
        (s.held, "held by a PodDisruptionBudget"),
        (s.skipped, "skipped"),
        (s.unreachable, "pods to restart by hand"),
    ] {
        if n > 0 {
            parts.push(format!("{n} {what}"));
        }
    }
    if parts.is_empty() {
        parts.push("nothing done".to_string());
    }
    layout
        .wrap()
        .push(&mut out, &format!("Summary: {}.", parts.join(", ")), "");
    out
}

/// After a run that did not end cleanly: which workloads were written to
/// (their template patched or pods deleted) and how each is undone, as one
/// sentence; `None` when nothing was written or everything finished.
pub fn written_and_undo(report: &RestartReport) -> Option<String> {
    let clean = report
        .results
        .iter()
        .all(|r| matches!(r.outcome, Outcome::Restarted | Outcome::Rehearsed));
    let written: Vec<&WorkloadResult> = report
        .results
        .iter()
        .filter(|r| {
            matches!(
                r.outcome,
                Outcome::Restarted
                    | Outcome::Patched
                    | Outcome::Unverified
                    | Outcome::Failed
                    | Outcome::TimedOut
                    | Outcome::Interrupted
            )
        })
        .collect();
    if clean || written.is_empty() {
        return None;
    }
    let names: Vec<String> = written
        .iter()
        .map(|r| format!("{}/{}/{}", r.namespace, r.kind.resource(), r.name))
        .collect();
    // A Rollout's restart changes no template: there is nothing to undo.
    let Some(first) = written.iter().find(|r| r.kind != WorkloadKind::Rollout) else {
        return Some(format!(
            "already restarted (spec.restartAt set to this run's time): {}; Argo replaces their pods without changing a template, so there is nothing to undo",
            names.join(", ")
        ));
    };
    let rollouts = if written.iter().any(|r| r.kind == WorkloadKind::Rollout) {
        " (a Rollout's restart changes no template: nothing to undo)"
    } else {
        ""
    };
    Some(format!(
        "already restarted (patched with this run's restartedAt): {}; a restart is undone per workload with kubectl rollout undo, e.g. kubectl rollout undo {}/{} -n {}{rollouts}",
        names.join(", "),
        first.kind.resource(),
        first.name,
        first.namespace
    ))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::mesh::fixtures::{ClusterFixture, ProxySpec, WorkloadFixture};
    use crate::mesh::restart::{Outcome, RestartOptions, WorkloadResult, plan};
    use crate::mesh::workloads::WorkloadKind;
    use chrono::{DateTime, TimeZone, Utc};

    fn now() -> DateTime<Utc> {
        Utc.with_ymd_and_hms(2026, 11, 23, 14, 5, 9).unwrap()
    }

    fn cluster() -> ClusterFixture {
        ClusterFixture::new()
            .revision("1-21-2", "1.21.2")
            .revision("1-22-3", "1.22.3")
            .tag("default", "1-21-2")
            .namespace("shop", &[("istio-injection", "enabled")])
            .namespace("pay", &[("istio.io/rev", "1-22-3")])
    }

    fn long_plan() -> RestartPlan {
        plan(
            &cluster()
                .workload(
                    WorkloadFixture::deployment("pay", "payments-long")
                        .replicas(1)
                        .pods(1, ProxySpec::istio("1-21-2", "1.21.2")),
                )
                .workload(
                    WorkloadFixture::stateful_set("pay", "ledger")
                        .on_delete()
                        .pods(2, ProxySpec::istio("1-21-2", "1.21.2")),
                )
                .build(),
            &RestartOptions::default(),
            now(),
        )
        .expect("a plan")
    }

    #[test]
    fn the_plan_text_at_a_hundred_columns_wraps_only_risks_and_notes() {
        let text = plan_text(&long_plan(), &Layout::at(100));
        assert_eq!(
            text,
            "\
1 workload to restart (annotation kubectl.kubernetes.io/restartedAt=2026-11-23T14:05:09Z):
NAMESPACE  WORKLOAD                  REPLICAS  PROXY NOW        AFTER            RISK
pay        deployment/payments-long  1         1.21.2 (1-21-2)  1.22.3 (1-22-3)  single replica,
                                                                                 no PDB

Skipped:
  pay/statefulset/ledger: updateStrategy OnDelete: a template patch restarts nothing; run again with
    --delete-pods to delete its pods one at a time, highest ordinal first
"
        );
        assert!(text.lines().all(|l| l.chars().count() <= 100), "{text}");
    }

    #[test]
    fn the_plan_text_in_a_pipe_is_not_wrapped() {
        let text = plan_text(&long_plan(), &Layout::unlimited());
        assert!(
            text.contains("deployment/payments-long  1         1.21.2 (1-21-2)  1.22.3 (1-22-3)  single replica, no PDB\n"),
            "{text}"
        );
        assert!(
            text.contains("updateStrategy OnDelete: a template patch restarts nothing; run again with --delete-pods"),
            "{text}"
        );
    }

    #[test]
    fn the_report_lists_each_result_and_sums_them_up() {
        let plan = long_plan();
        let report = RestartReport::new(
            &plan,
            vec![WorkloadResult {
                namespace: "pay".into(),
                kind: WorkloadKind::Deployment,
                name: "payments-long".into(),
                outcome: Outcome::TimedOut,
                detail: Some(
                    "1 of 1 replicas updated, 0 available after 5m; the rollout goes on in the cluster"
                        .into(),
                ),
                seconds: Some(300.0),
            }],
        );
        assert_eq!(
            report_text(&report, &Layout::at(100)),
            "\
NAMESPACE  WORKLOAD                  RESULT     DETAIL
pay        deployment/payments-long  timed-out  1 of 1 replicas updated, 0 available after 5m; the
                                                rollout goes on in the cluster (300.0s)
Summary: 1 timed out, 1 skipped.
"
        );
    }

    fn result(name: &str, outcome: Outcome) -> WorkloadResult {
        WorkloadResult {
            namespace: "pay".into(),
            kind: WorkloadKind::Deployment,
            name: name.into(),
            outcome,
            detail: None,
            seconds: None,
        }
    }

    #[test]
    fn a_run_that_stopped_says_what_it_restarted_and_how_to_undo_it() {
        let plan = long_plan();
        let report = RestartReport::new(
            &plan,
            vec![
                result("payments-long", Outcome::TimedOut),
                result("ledger", Outcome::NotStarted),
            ],
        );
        assert_eq!(
            written_and_undo(&report).as_deref(),
            Some(
                "already restarted (patched with this run's restartedAt): pay/deployment/payments-long; a restart is undone per workload with kubectl rollout undo, e.g. kubectl rollout undo deployment/payments-long -n pay"
            )
        );
        let clean = RestartReport::new(&plan, vec![result("payments-long", Outcome::Restarted)]);
        assert_eq!(written_and_undo(&clean), None);
        let nothing = RestartReport::new(&plan, vec![result("payments-long", Outcome::NotStarted)]);
        assert_eq!(written_and_undo(&nothing), None);
    }
}
