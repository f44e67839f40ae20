//! `kubectl mesh-upgrade restart-sidecars`: the wiring from flags to the
//! plan, the question and the engine.
//!
//! ```text
//! flags ─► RestartConfig ─► collect ─► mesh::restart::plan (pure) ─► istiod Ready? (else refuse, 5)
//!       ─► show the plan ─► confirm
//!       ─► one dry-run pod per target revision: does its injector answer? (else refuse, 5)
//!       ─► Ctrl-C handler ─► run::restart (apply, wait, verify)
//!       ─► summary, exit code
//! ```
//!
//! The engine (`crate::run::restart`) restarts up to `--concurrency` at
//! once, stops starting new ones on a failure (exit 4) or Ctrl-C (exit 130),
//! and verifies the proxies afterwards. `relabel --restart` and
//! `tag set --restart` use [`plan_restarts`] (relabel), [`execute`] and
//! [`restart_after_writes`] to make their plan and their run one.

use std::collections::HashMap;

use chrono::{DateTime, Utc};

use crate::api::{ApiClient, WriteMode};
use crate::cli::{DryRun, GlobalArgs, RestartFlags, RestartSidecarsArgs, WriteArgs};
use crate::collect::{CollectOptions, collect, probe_injection};
use crate::config::RestartConfig;
use crate::confirm::{self, Decision};
use crate::error::{Error, ExitCode};
use crate::mesh::injection_check::{
    ProbeAnswer, WorkloadTemplates, gate, gate_probes, workload_templates,
};
use crate::mesh::restart::{Outcome, RestartOptions, RestartPlan, RestartReport, TargetRef, plan};
use crate::mesh::workloads::{RestartSelection, WorkloadKind};
use crate::output::Output;
use crate::render::restart::{plan_text, report_text, written_and_undo};
use crate::run::Interrupts;
use crate::run::restart::{RestartSettings, run_restarts};
use crate::selector::LabelSelector;
use crate::snapshot::{ClusterSnapshot, DEFAULT_CONTROL_PLANE_NAMESPACE, Scope};

/// Restart the stale workloads of the selection (`-n`, `-A`, `-l`, targets).
pub async fn run(
    global: &GlobalArgs,
    args: &RestartSidecarsArgs,
    output: &Output,
) -> anyhow::Result<ExitCode> {
    let config = restart_config(&args.restart, &args.targets)?;
    let selector = super::label_selector(global)?;
    let api = super::connect(global).await?;
    let scope = super::selected_scope(global, api.default_namespace());
    // The clock is read once: every patch of this run carries this time.
    let now = Utc::now();
    let mut templates = HashMap::new();
    let plan = plan_restarts(&api, output, scope, selector, &config.options, now, |s| {
        templates = workload_templates(s)
    })
    .await?;
    let client_dry_run = args.write.dry_run == DryRun::Client;
    // An unready target is refused at once; unless this is a client dry run
    // (which only reads), the injectors are asked first so the refusal
    // carries the API server's own answer.
    if !plan.not_ready_revisions.is_empty() && !client_dry_run {
        refuse_not_ready(&plan, &silent_injectors(&api, &plan, &templates).await?)?;
    }
    refuse_not_ready(&plan, &[])?;

    output.show_plan(
        &plan,
        || plan_text(&plan, &output.text_layout()),
        client_dry_run,
    )?;
    // Held by a budget: shown in the plan, or the whole run refused.
    if config.fail_on_blocked {
        refuse_blocked(&plan)?;
    }
    let decision =
        confirm::decide_interactively(&args.write, plan.actions.len(), &plan.question(), output)?;
    match decision {
        Decision::PlanOnly => {
            output
                .note("Dry run: nothing was changed. Run again without --dry-run to restart them.");
            super::log_request_summary(&api);
            return Ok(ExitCode::Success);
        }
        Decision::NothingToDo => {
            if global.output.is_machine_readable() && !client_dry_run {
                output.print_document(&RestartReport::new(&plan, Vec::new()))?;
            }
            super::log_request_summary(&api);
            return Ok(ExitCode::Success);
        }
        Decision::Apply | Decision::RehearseOnServer => {}
    }
    // The health gate, right before the first write.
    refuse_not_ready(&plan, &silent_injectors(&api, &plan, &templates).await?)?;
    // Before the first write: from here a Ctrl-C is counted, never fatal.
    let interrupts = Interrupts::from_ctrl_c();
    let (report, interrupted) = execute(
        &api,
        &plan,
        &config,
        decision,
        &args.write,
        &interrupts,
        output,
    )
    .await?;
    super::log_request_summary(&api);
    conclude(&report, interrupted)
}

/// The flags as plain values; a malformed target is a usage error.
pub fn restart_config(flags: &RestartFlags, targets: &[String]) -> anyhow::Result<RestartConfig> {
    let targets = targets
        .iter()
        .map(|t| TargetRef::parse(t).map_err(Error::Usage))
        .collect::<Result<Vec<_>, _>>()?;
    let mut kinds: Vec<WorkloadKind> = flags
        .kinds
        .iter()
        .map(|k| match k {
            crate::cli::WorkloadKind::Deployment => WorkloadKind::Deployment,
            crate::cli::WorkloadKind::Statefulset => WorkloadKind::StatefulSet,
            crate::cli::WorkloadKind::Daemonset => WorkloadKind::DaemonSet,
            crate::cli::WorkloadKind::Rollout => WorkloadKind::Rollout,
        })
        .collect();
    kinds.sort();
    kinds.dedup();
    Ok(RestartConfig {
        options: RestartOptions {
            selection: RestartSelection {
                all: flags.all,
                include_uninjected: flags.include_uninjected,
            },
            kinds,
            targets,
            delete_pods: flags.delete_pods,
        },
        timeout: flags.timeout,
        concurrency: usize::from(flags.concurrency),
        wait: !flags.no_wait,
        fail_on_blocked: flags.fail_on_blocked,
    })
}

/// Read `scope` and plan its restarts. `adjust` may change the snapshot
/// first (relabel --restart applies its planned labels, so the plan shows
/// what becomes stale once they are written).
pub async fn plan_restarts(
    api: &ApiClient,
    output: &Output,
    scope: Scope,
    selector: Option<LabelSelector>,
    options: &RestartOptions,
    now: DateTime<Utc>,
    adjust: impl FnOnce(&mut ClusterSnapshot),
) -> anyhow::Result<RestartPlan> {
    let mut collected = collect(
        api,
        &CollectOptions {
            scope,
            control_plane_namespace: DEFAULT_CONTROL_PLANE_NAMESPACE.to_string(),
            selector,
        },
    )
    .await?;
    for warning in &collected.warnings {
        output.warn(warning);
    }
    adjust(&mut collected.snapshot);
    plan(&collected.snapshot, options, now).map_err(|e| Error::Usage(e.to_string()).into())
}

/// Refuse (exit 5) before any write when a target revision's istiod is not
/// Ready, or its injector did not answer the dry-run pod (`silent`:
/// revision and sentence, from [`silent_injectors`]).
pub fn refuse_not_ready(plan: &RestartPlan, silent: &[(String, String)]) -> anyhow::Result<()> {
    let mut sentence = if plan.not_ready_revisions.is_empty() {
        String::new()
    } else {
        not_ready_sentence(plan)
    };
    for (_, refusal) in silent {
        if !sentence.is_empty() {
            sentence.push_str("; ");
        }
        sentence.push_str(refusal);
    }
    if sentence.is_empty() {
        Ok(())
    } else {
        Err(Error::Refused(sentence).into())
    }
}

/// The health gate: each target revision's injector must answer a dry-run
/// pod with a proxy before anything is written. Returns the refusal
/// sentence of each revision whose injector did not; credentials that may
/// not create pods are an error of their own (the 403 sentence, exit 1).
pub async fn silent_injectors(
    api: &ApiClient,
    plan: &RestartPlan,
    templates: &WorkloadTemplates,
) -> anyhow::Result<Vec<(String, String)>> {
    let (targets, pods): (Vec<(String, String)>, Vec<_>) = gate_probes(plan, templates)
        .into_iter()
        .map(|(revision, namespace, pod)| ((revision, namespace), pod))
        .unzip();
    let answers = probe_injection(api, pods).await;
    if let Some(ProbeAnswer::Forbidden(sentence)) = answers
        .iter()
        .find(|a| matches!(a, ProbeAnswer::Forbidden(_)))
    {
        anyhow::bail!("{sentence}");
    }
    Ok(targets
        .into_iter()
        .zip(&answers)
        .filter_map(|((revision, namespace), answer)| {
            gate(&revision, &namespace, answer)
                .err()
                .map(|sentence| (revision, sentence))
        })
        .collect())
}

/// Run `plan` (already confirmed as `decision`) and print its report.
pub async fn execute(
    api: &ApiClient,
    plan: &RestartPlan,
    config: &RestartConfig,
    decision: Decision,
    write: &WriteArgs,
    interrupts: &Interrupts,
    output: &Output,
) -> anyhow::Result<(RestartReport, bool)> {
    let writer = api.clone().with_write_mode(WriteMode::from(write.dry_run));
    let settings = RestartSettings {
        timeout: config.timeout,
        wait: config.wait && decision == Decision::Apply,
        rehearsal: decision == Decision::RehearseOnServer,
        concurrency: config.concurrency,
    };
    let progress = output.progress(plan.actions.len());
    let run = run_restarts(&writer, plan, settings, interrupts, &progress).await;
    progress.finish();
    let report = RestartReport::new(plan, run.results);
    if output.is_machine_readable() {
        output.print_document(&report)?;
        output.note(report_text(&report, &output.text_layout()).trim_end());
    } else {
        output.print_text(&report_text(&report, &output.text_layout()))?;
    }
    if let Some(written) = written_and_undo(&report) {
        output.warn(&written);
    }
    Ok((report, run.interrupted))
}

/// A writing verb's `--restart` (relabel, tag set) handing over to
/// restart-sidecars after its own writes: the restarts planned with the
/// verb's plan, and what to say.
pub struct Handover<'a> {
    pub plan: &'a RestartPlan,
    pub config: &'a RestartConfig,
    /// What came before: `relabelling`, `the tag's writes`.
    pub after: &'a str,
    /// What was written and how to undo it, as the tail of a sentence
    /// (empty when nothing was).
    pub written: &'a str,
    /// The note when nothing is to be restarted.
    pub nothing_stale: &'a str,
    /// Which workloads restart now: `the stale workloads of shop, pay`.
    pub restarting: String,
}

/// `--restart` after the verb's writes: the planned restarts run by this
/// verb's engine unless Ctrl-C came first (the warning then says what was
/// written); the exit is [`conclude`]'s, saying what was written before
/// when it fails.
pub async fn restart_after_writes(
    api: &ApiClient,
    handover: Handover<'_>,
    decision: Decision,
    write: &WriteArgs,
    interrupts: &Interrupts,
    output: &Output,
) -> anyhow::Result<ExitCode> {
    let Handover {
        plan,
        config,
        after,
        written,
        nothing_stale,
        restarting,
    } = handover;
    if interrupts.stop_starting() {
        output.warn(&format!(
            "interrupted after {after}: no restart was started{written}"
        ));
        return Err(Error::Interrupted.into());
    }
    if plan.actions.is_empty() {
        output.note(nothing_stale);
        return Ok(ExitCode::Success);
    }
    output.note(&format!(
        "\n--restart: running pods keep their current proxy until restarted; restart-sidecars now restarts {restarting}"
    ));
    let (report, interrupted) =
        execute(api, plan, config, decision, write, interrupts, output).await?;
    conclude(&report, interrupted).map_err(|err| {
        if written.is_empty() {
            err
        } else {
            err.context(format!("after {after}{written}"))
        }
    })
}

/// The exit: 130 after Ctrl-C, 4 when a rollout failed, timed out or left
/// pods on another proxy, 1 when API errors kept workloads from restarting.
pub fn conclude(report: &RestartReport, interrupted: bool) -> anyhow::Result<ExitCode> {
    if interrupted {
        return Err(Error::Interrupted.into());
    }
    let failed: Vec<String> = report
        .results
        .iter()
        .filter(|r| r.outcome.is_rollout_failure())
        .map(|r| {
            format!(
                "{}/{}/{} ({})",
                r.namespace,
                r.kind.resource(),
                r.name,
                r.outcome.as_str()
            )
        })
        .collect();
    if !failed.is_empty() {
        let not_started = report.summary.not_started;
        let mut sentence = format!(
            "{} restart{} did not end with every pod on the expected proxy: {}",
            failed.len(),
            if failed.len() == 1 { "" } else { "s" },
            failed.join(", ")
        );
        if report
            .results
            .iter()
            .any(|r| matches!(r.outcome, Outcome::Failed | Outcome::TimedOut))
        {
            sentence.push_str(
                "; a stuck rollout keeps its old pods serving until fixed or undone (kubectl rollout undo)",
            );
        }
        if not_started > 0 {
            sentence.push_str(&format!(
                "; {not_started} workload{} never started (run the same command again once fixed)",
                if not_started == 1 { "" } else { "s" }
            ));
        }
        return Err(Error::RolloutFailed(sentence).into());
    }
    let errors = report.summary.errors;
    if errors > 0 {
        anyhow::bail!(
            "{errors} workload{} could not be restarted because of API errors (see the summary); run the same command again to retry them",
            if errors == 1 { "" } else { "s" }
        );
    }
    Ok(ExitCode::Success)
}

/// `--fail-on-blocked`: refuse (exit 5) before any write when a
/// PodDisruptionBudget holds a workload of the plan (the caller has shown
/// the plan, which lists them with their budgets).
pub fn refuse_blocked(plan: &RestartPlan) -> anyhow::Result<()> {
    if plan.held.is_empty() {
        return Ok(());
    }
    let held: Vec<String> = plan
        .held
        .iter()
        .map(|h| {
            format!(
                "{}/{}/{} (PodDisruptionBudget {})",
                h.namespace,
                h.kind.resource(),
                h.name,
                h.disruption_budget
            )
        })
        .collect();
    Err(Error::Refused(format!(
        "--fail-on-blocked: a PodDisruptionBudget allows 0 disruptions to {}; nothing was written. Wait until each allows one (kubectl get pdb -n <namespace>), or run without --fail-on-blocked to restart the others and hold these",
        held.join(", ")
    ))
    .into())
}

fn not_ready_sentence(plan: &RestartPlan) -> String {
    let parts: Vec<String> = plan
        .not_ready_revisions
        .iter()
        .map(|n| {
            let istiod = n.istiod.as_deref().map_or_else(
                || "no istiod Deployment serves it".to_string(),
                |d| format!("istiod Deployment {d} has no Ready pod"),
            );
            format!(
                "revision {} is not Ready ({istiod}; needed by {})",
                n.revision,
                n.workloads.join(", ")
            )
        })
        .collect();
    format!(
        "{}: restarting now would fail to create pods or re-inject the old proxy; wait until istiod is Ready (kubectl -n {DEFAULT_CONTROL_PLANE_NAMESPACE} rollout status deployment/<istiod>), then run this again",
        parts.join("; ")
    )
}
