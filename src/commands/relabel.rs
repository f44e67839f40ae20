//! `kubectl mesh-upgrade relabel`: move namespaces to another revision or
//! tag (or back to `istio-injection=enabled`), with a record to undo it.
//!
//! ```text
//! flags ─► collect::read(ControlPlane): namespaces + the control plane (5 LISTs)
//!       ─► plan (mesh::relabel, pure)
//!       ─► show it ─► refuse excluded namespaces named without --force (5)
//!       ─► confirm::decide_interactively
//!       ─► one merge patch per namespace, resourceVersion included
//!            409 ─► GET the namespace ─► Planner::evaluate again ─► patch again (bounded)
//!       ─► report ─► --restart: restart-sidecars for the moved namespaces
//! ```
//!
//! The reads are the few the plan needs, collect's control-plane read set:
//! every Namespace (labels, the record annotation, resourceVersion), the
//! MutatingWebhookConfigurations, and in the control-plane namespace the
//! istiod Deployments, Services and injector ConfigMaps — the inputs `status`
//! resolves a namespace's revision from.
//! Pods and workloads are not read: labels change what new pods get, and
//! `--restart` hands over to restart-sidecars, which reads what it needs.

use futures::StreamExt;
use k8s_openapi::api::core::v1::Namespace;

use crate::api::{ApiClient, PatchBody, WriteMode};
use crate::cli::{DryRun, GlobalArgs, RelabelArgs, RestartSidecarsArgs, WriteArgs};
use crate::collect::{self, CollectOptions, ReadSet};
use crate::confirm::{self, Decision};
use crate::error::{Error, ExitCode, is_conflict};
use crate::mesh::control_plane::ControlPlane;
use crate::mesh::relabel::{
    Evaluation, NamespaceChange, NamespaceResult, NamespaceSelection, NamespaceState, Operation,
    Planner, RelabelPlan, RelabelReport, RelabelRequest, ResultState, injection_labels, plan_text,
    report_text,
};
use crate::output::Output;
use crate::selector::LabelSelector;
use crate::snapshot::{ClusterSnapshot, DEFAULT_CONTROL_PLANE_NAMESPACE, NamespaceInfo, Scope};

/// How many 409s one namespace may answer before the run gives up on it:
/// each is a fresh read and a recomputed patch, so more means a writer that
/// never stops, not bad luck.
const MAX_CONFLICTS: u32 = 8;

/// How many namespaces are patched at once.
const CONCURRENT_PATCHES: usize = 8;

/// Relabel (or restore) the selected namespaces.
pub async fn run(
    global: &GlobalArgs,
    args: &RelabelArgs,
    output: &Output,
) -> anyhow::Result<ExitCode> {
    if !(args.restart && global.output.is_machine_readable()) {
        return relabel(global, args, output).await;
    }
    // With --restart, -o json|yaml still prints one document: a List of the
    // relabel report and restart-sidecars' report (or the one that exists).
    let collecting = output.collecting();
    let result = relabel(global, args, &collecting).await;
    let printed = collecting.print_held();
    let code = result?;
    printed?;
    Ok(code)
}

async fn relabel(
    global: &GlobalArgs,
    args: &RelabelArgs,
    output: &Output,
) -> anyhow::Result<ExitCode> {
    let selector = super::label_selector(global)?;
    check_flags(global, args)?;
    let api = super::connect(global).await?;
    let request = request_from_flags(global, args, selector, api.default_namespace());
    let control_plane_namespace = DEFAULT_CONTROL_PLANE_NAMESPACE;
    let state = read_state(&api, &request, control_plane_namespace, output).await?;
    let control_plane = ControlPlane::from_snapshot(&state.snapshot);
    let planner = Planner::new(&control_plane, &request)?;
    let plan = planner.plan(&state.namespaces);

    let machine = global.output.is_machine_readable();
    let client_dry_run = args.write.dry_run == DryRun::Client;
    output.show_plan(&plan, &plan_text(&plan), client_dry_run)?;

    let needing_force = plan.needing_force();
    if !needing_force.is_empty() {
        let names: Vec<&str> = needing_force.iter().map(|s| s.namespace.as_str()).collect();
        let (is, them) = if names.len() == 1 {
            ("is", "it")
        } else {
            ("are", "them")
        };
        return Err(Error::Refused(format!(
            "{} {is} excluded from relabelling (see above): pass --force to relabel {them} anyway, or leave {them} out of -n; nothing was changed",
            names.join(", "),
        ))
        .into());
    }

    let decision =
        confirm::decide_interactively(&args.write, plan.changes.len(), &question(&plan))?;
    let report = match decision {
        Decision::PlanOnly => {
            output.note("--dry-run: nothing was changed");
            if args.restart && !plan.restart_namespaces.is_empty() {
                output.note(
                    "--restart: restart-sidecars runs only after a real relabel; nothing was relabelled, so it was not planned",
                );
            }
            super::log_request_summary(&api);
            return Ok(ExitCode::Success);
        }
        Decision::NothingToDo => RelabelReport::new(&plan, Vec::new(), false),
        Decision::Apply | Decision::RehearseOnServer => {
            let writer = api
                .clone()
                .with_write_mode(WriteMode::from(args.write.dry_run));
            let results = apply_all(&writer, &planner, &plan, &request).await;
            RelabelReport::new(&plan, results, decision == Decision::RehearseOnServer)
        }
    };
    super::log_request_summary(&api);

    let restart_follows = args.restart
        && report.failures().is_empty()
        && decision != Decision::RehearseOnServer
        && !report.restart_namespaces.is_empty();
    if machine {
        output.print_document(&report)?;
        let text = report_text(&report, restart_follows);
        if !text.is_empty() {
            output.note(text.trim_end());
        }
    } else if !report.results.is_empty() {
        output.print_text(&format!("\n{}", report_text(&report, restart_follows)))?;
    }

    let failures = report.failures();
    if !failures.is_empty() {
        let names: Vec<&str> = failures.iter().map(|r| r.namespace.as_str()).collect();
        let restart_note = if args.restart {
            "; --restart did not run"
        } else {
            ""
        };
        return Err(anyhow::anyhow!(
            "{} of {} namespaces could not be changed ({}){restart_note}",
            failures.len(),
            report.results.len(),
            names.join(", ")
        ));
    }

    if args.restart && decision != Decision::RehearseOnServer {
        if report.restart_namespaces.is_empty() {
            output.note("--restart: no namespace to restart");
            return Ok(ExitCode::Success);
        }
        return restart(&api, global, args, output, &report.restart_namespaces).await;
    }
    if args.restart {
        output.note("--restart: restart-sidecars runs only after a real relabel, not after --dry-run=server");
    }
    Ok(ExitCode::Success)
}

/// Flag combinations the parser cannot express.
fn check_flags(global: &GlobalArgs, args: &RelabelArgs) -> anyhow::Result<()> {
    if global.all_namespaces && !args.undo && args.from.is_none() {
        return Err(Error::Usage(
            "relabel -A needs --from <revision-or-tag> (every namespace on that revision) or --undo; to pick namespaces by label use -l"
                .to_string(),
        )
        .into());
    }
    Ok(())
}

/// The plan's request from the flags; the context's namespace when no
/// namespace flag was given.
fn request_from_flags(
    global: &GlobalArgs,
    args: &RelabelArgs,
    selector: Option<LabelSelector>,
    context_namespace: &str,
) -> RelabelRequest {
    let namespaces = if !global.namespaces.is_empty() {
        match super::selected_scope(global, context_namespace) {
            Scope::Namespaces(names) => NamespaceSelection::Named(names),
            Scope::All => NamespaceSelection::All,
        }
    } else if global.all_namespaces || selector.is_some() {
        NamespaceSelection::All
    } else {
        NamespaceSelection::Context(context_namespace.to_string())
    };
    let operation = match (&args.to, args.undo) {
        (Some(to), false) => Operation::Move { to: to.clone() },
        // clap requires --to unless --undo.
        _ => Operation::Undo,
    };
    RelabelRequest {
        operation,
        namespaces,
        selector,
        from: args.from.clone(),
        force: args.force,
    }
}

/// What the plan is computed from.
struct ClusterState {
    namespaces: Vec<NamespaceState>,
    /// The control plane's inputs only (istiods, Services and injector
    /// ConfigMaps of its namespace, webhook configurations).
    snapshot: ClusterSnapshot,
}

/// Read the namespaces and the control plane: collect's control-plane read
/// set (5 LISTs). `-l` selects namespaces here, so it is not sent.
async fn read_state(
    api: &ApiClient,
    request: &RelabelRequest,
    control_plane_namespace: &str,
    output: &Output,
) -> anyhow::Result<ClusterState> {
    let scope = match &request.namespaces {
        NamespaceSelection::Named(names) => Scope::Namespaces(names.clone()),
        NamespaceSelection::Context(name) => Scope::Namespaces(vec![name.clone()]),
        NamespaceSelection::All => Scope::All,
    };
    let options = CollectOptions {
        scope,
        control_plane_namespace: control_plane_namespace.to_string(),
        selector: None,
    };
    let collected = collect::read(api, &options, ReadSet::ControlPlane).await?;
    for warning in &collected.warnings {
        output.warn(warning);
    }
    let namespaces = collected
        .snapshot
        .namespaces
        .iter()
        .map(NamespaceState::from)
        .collect();
    Ok(ClusterState {
        namespaces,
        snapshot: collected.snapshot,
    })
}

/// The prompt.
fn question(plan: &RelabelPlan) -> String {
    let n = plan.changes.len();
    let namespaces = if n == 1 {
        "1 namespace".to_string()
    } else {
        format!("{n} namespaces")
    };
    match &plan.target {
        Some(target) => format!("Relabel {namespaces} to {}?", target.name),
        None => format!("Restore the recorded injection labels of {namespaces}?"),
    }
}

/// Patch every planned namespace, a few at a time, in plan order.
async fn apply_all(
    writer: &ApiClient,
    planner: &Planner<'_>,
    plan: &RelabelPlan,
    request: &RelabelRequest,
) -> Vec<NamespaceResult> {
    let explicit = |name: &str| match &request.namespaces {
        NamespaceSelection::Named(names) => names.iter().any(|n| n == name),
        _ => false,
    };
    futures::stream::iter(plan.changes.iter())
        .map(|change| apply_one(writer, planner, change, explicit(&change.namespace)))
        .buffered(CONCURRENT_PATCHES)
        .collect()
        .await
}

/// Patch one namespace. On 409 the namespace is read again and the plan's
/// rules applied to what is there now, so another writer's change is kept
/// (or makes this one unnecessary) instead of being overwritten.
async fn apply_one(
    writer: &ApiClient,
    planner: &Planner<'_>,
    change: &NamespaceChange,
    explicit: bool,
) -> NamespaceResult {
    let name = change.namespace.clone();
    let rehearsal = writer.write_mode() == WriteMode::ServerDryRun;
    let mut patch = change.patch.clone();
    let mut expected = change.after.clone();
    let mut conflicts = 0;
    let result = |state, labels, conflicts, message: Option<String>| NamespaceResult {
        namespace: name.clone(),
        state,
        labels,
        conflicts,
        message,
    };
    loop {
        let outcome = writer
            .patch::<Namespace>(None, &name, &PatchBody::Merge(patch.clone()))
            .await;
        match outcome {
            Ok(updated) => {
                let labels = injection_labels(&NamespaceInfo::from(&updated).labels);
                if labels != expected {
                    return result(
                        ResultState::Failed,
                        Some(labels.clone()),
                        conflicts,
                        Some(format!(
                            "the server answered with {}, not the planned {} (a mutating webhook or policy may rewrite namespace labels)",
                            crate::mesh::relabel::describe_labels(&labels),
                            crate::mesh::relabel::describe_labels(&expected)
                        )),
                    );
                }
                let state = if rehearsal {
                    ResultState::Rehearsed
                } else {
                    ResultState::Relabelled
                };
                tracing::info!(namespace = %name, conflicts, "namespace patched");
                return result(state, Some(labels), conflicts, None);
            }
            Err(err) if is_conflict(&err) && conflicts < MAX_CONFLICTS => {
                conflicts += 1;
                tracing::info!(namespace = %name, conflicts, "409: reading the namespace again");
                let fresh = match writer.get::<Namespace>(None, &name).await {
                    Ok(Some(fresh)) => NamespaceState::from(&fresh),
                    Ok(None) => {
                        return result(
                            ResultState::Failed,
                            None,
                            conflicts,
                            Some("the namespace was deleted meanwhile".to_string()),
                        );
                    }
                    Err(err) => {
                        return result(
                            ResultState::Failed,
                            None,
                            conflicts,
                            Some(format!("{err:#}")),
                        );
                    }
                };
                match planner.evaluate(&fresh, explicit) {
                    Evaluation::Change(again) => {
                        patch = again.patch;
                        expected = again.after;
                    }
                    Evaluation::Skip(skip) => {
                        return result(
                            ResultState::Unchanged,
                            Some(injection_labels(&fresh.info.labels)),
                            conflicts,
                            Some(format!(
                                "changed by someone else meanwhile: {}",
                                skip.message
                            )),
                        );
                    }
                    Evaluation::NotSelected => {
                        return result(
                            ResultState::Unchanged,
                            Some(injection_labels(&fresh.info.labels)),
                            conflicts,
                            Some(
                                "changed by someone else meanwhile: no longer selected by -l"
                                    .to_string(),
                            ),
                        );
                    }
                }
            }
            Err(err) if is_conflict(&err) => {
                return result(
                    ResultState::Failed,
                    None,
                    conflicts,
                    Some(format!(
                        "still conflicting after {conflicts} fresh reads: someone keeps changing it; try again later ({err:#})"
                    )),
                );
            }
            Err(err) => {
                return result(
                    ResultState::Failed,
                    None,
                    conflicts,
                    Some(format!("{err:#}")),
                );
            }
        }
    }
}

/// Continue into restart-sidecars for `namespaces`, with its own plan,
/// prompt and safety checks. `-l` selected namespaces here, so it is not
/// passed on as a workload selector.
async fn restart(
    api: &ApiClient,
    global: &GlobalArgs,
    args: &RelabelArgs,
    output: &Output,
    namespaces: &[String],
) -> anyhow::Result<ExitCode> {
    let mut restart_global = global.clone();
    restart_global.selector = None;
    let restart_args = RestartSidecarsArgs {
        targets: Vec::new(),
        kinds: Vec::new(),
        all: false,
        include_uninjected: false,
        delete_pods: false,
        timeout: crate::cli::parse_duration("5m").map_err(anyhow::Error::msg)?,
        concurrency: 1,
        no_wait: false,
        write: WriteArgs {
            dry_run: DryRun::None,
            yes: args.write.yes,
        },
    };
    output.note(&format!(
        "\n--restart: running pods keep their current proxy until restarted; restart-sidecars now restarts the stale workloads of {}",
        namespaces.join(", ")
    ));
    super::restart_sidecars::restart_in_namespaces(
        api,
        &restart_global,
        &restart_args,
        output,
        namespaces,
    )
    .await
}
