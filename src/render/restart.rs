//! The restart-sidecars plan and report as text for a person: the
//! workloads to restart with their proxies before and after, what is
//! skipped and why, the pods that need a hand, and the results. Pure; the
//! names and proxies never wrap, RISK and DETAIL do at a terminal.

use std::fmt::Write as _;

use super::table::{Fit, Table};
use super::{Layout, commands_whole, plural};
use crate::mesh::restart::{RestartMethod, RestartPlan, RestartReport};
use crate::mesh::workloads::Risk;
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
    if plan.actions.is_empty() && plan.skipped.is_empty() {
        out.push_str("Nothing to restart: no workload in the selection runs a stale proxy.\n");
    } else if plan.actions.is_empty() {
        out.push_str("Nothing to restart.\n");
    } else {
        let n = plan.actions.len();
        wrap.push(
            &mut out,
            &format!(
                "{n} workload{} to restart (annotation kubectl.kubernetes.io/restartedAt={}):",
                plural(n),
                plan.restarted_at
            ),
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
                a.namespace.clone(),
                workload,
                a.replicas.to_string(),
                a.current_proxy(),
                a.expected_proxy(),
                risk_text(&a.risks),
            ]);
        }
        out.push_str(&table.render());
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
                    "  {}/{} ({}), runs {}, should run {}",
                    u.namespace, u.pod, u.reason, u.current, u.expected
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

/// The end-of-run summary as a person reads it.
pub fn report_text(report: &RestartReport, layout: &Layout) -> String {
    let mut out = String::new();
    if !report.results.is_empty() {
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
}
