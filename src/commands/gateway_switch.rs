//! `kubectl mesh-upgrade gateway-switch`: point a LoadBalancer Service at
//! another revision's gateway, verify it, and switch back if it does not work.
//!
//! ```text
//! flags ─► collect (the namespace + istio-system) ─► which Service (--service, or the only one)
//!       ─► GET the Service (selector, record, resourceVersion)
//!       ─► plan (mesh::gateway_switch, pure) ─► show it ─► refuse on failed prechecks (5)
//!       ─► confirm::decide_interactively
//!       ─► one merge patch of spec.selector + record annotations, resourceVersion included
//!       ─► watch the Service's EndpointSlices until only Ready target pods are listed
//!            (bounded by --timeout)
//!            └─ not in time ─► undo patch ─► watch again for the old pods ─► exit 4
//! ```
//!
//! Exit codes: 0 switched and verified (or nothing to do, or a dry run);
//! 2 no `--service` and not exactly one candidate Service (the message lists
//! them), or a Service that does not exist; 5 a precheck failed, or no
//! confirmation; 4 the endpoints did not converge and the switch was undone
//! (or the undo itself failed: the message says what state the Service is
//! in); 1 the Service changed while planning (409: run again); 130 Ctrl-C
//! while verifying (the Service is left as it is and the message says how
//! to roll back).

use std::collections::BTreeMap;
use std::time::Duration;

use chrono::Utc;
use k8s_openapi::api::core::v1::{Pod, Service};
use k8s_openapi::api::discovery::v1::EndpointSlice;

use crate::api::{ApiClient, ListScope, ListSelector, PatchBody, WriteMode};
use crate::cli::{DryRun, GatewaySwitchArgs, GlobalArgs};
use crate::collect::{CollectOptions, collect};
use crate::confirm::{self, Decision};
use crate::error::{Error, ExitCode};
use crate::mesh::control_plane::ControlPlane;
use crate::mesh::gateway_switch::{
    EndpointTarget, EndpointView, SERVICE_NAME_LABEL, ServiceState, SwitchDocument, SwitchMode,
    SwitchOptions, SwitchOutcome, SwitchPlan, SwitchRequest, Verdict, discover_service,
    endpoint_view, plan, validate_label_value, with_resource_version,
};
use crate::mesh::gateways::{gateways, selector_matches, selector_text};
use crate::mesh::workloads::classify;
use crate::output::Output;
use crate::render::gateway_switch::plan_text;
use crate::render::human_duration;
use crate::selector::LabelSelector;
use crate::snapshot::{DEFAULT_CONTROL_PLANE_NAMESPACE, EndpointSliceInfo, PodInfo, Scope};

/// Switch (or roll back) one Service.
pub async fn run(
    global: &GlobalArgs,
    args: &GatewaySwitchArgs,
    output: &Output,
) -> anyhow::Result<ExitCode> {
    let request = request_from_flags(args)?;
    if global.all_namespaces || global.namespaces.len() > 1 {
        return Err(Error::Usage(
            "gateway-switch works on one Service in one namespace: pass -n NAMESPACE (not -A or a list)"
                .to_string(),
        )
        .into());
    }
    if global.selector.is_some() {
        output.warn("-l is ignored by gateway-switch: it acts on one Service, named by --service");
    }
    let api = super::connect(global).await?;
    let namespace = global
        .namespaces
        .first()
        .cloned()
        .unwrap_or_else(|| api.default_namespace().to_string());
    let collected = collect(
        &api,
        &CollectOptions {
            scope: Scope::Namespaces(vec![namespace.clone()]),
            control_plane_namespace: DEFAULT_CONTROL_PLANE_NAMESPACE.to_string(),
            selector: None,
        },
    )
    .await?;
    for warning in &collected.warnings {
        output.warn(warning);
    }
    let snapshot = &collected.snapshot;
    let control_plane = ControlPlane::from_snapshot(snapshot);
    let gateways = gateways(&classify(snapshot, &control_plane));
    let service_name = match &args.service {
        Some(name) => name.clone(),
        None => discover_service(snapshot, &gateways, &control_plane, &namespace)?,
    };
    let service = api
        .get::<Service>(Some(&namespace), &service_name)
        .await?
        .ok_or_else(|| {
            Error::Usage(format!(
                "Service {service_name:?} does not exist in namespace {namespace}"
            ))
        })?;
    let state = ServiceState::from(&service);
    let options = SwitchOptions {
        request,
        force: args.force,
        endpoint_slices_readable: collected.was_read("endpointslices"),
    };
    let plan = plan(
        snapshot,
        &gateways,
        &control_plane,
        &state,
        &options,
        Utc::now(),
    );

    let machine = global.output.is_machine_readable();
    let rehearsal = args.write.dry_run != DryRun::None;
    let text = plan_text(&plan, args.timeout, rehearsal, &output.text_layout());
    if machine {
        output.note(text.trim_end());
    } else {
        output.print_text(&text)?;
    }
    let finish = |outcome: SwitchOutcome| -> anyhow::Result<()> {
        super::log_request_summary(&api);
        if machine {
            output.print_document(&SwitchDocument::new(plan.clone(), outcome))
        } else {
            Ok(())
        }
    };

    if let Some(refusal) = plan.refusal() {
        finish(outcome("refused", &refusal))?;
        return Err(Error::Refused(refusal).into());
    }
    let decision = match confirm::decide_interactively(
        &args.write,
        plan.changes(),
        &plan.question(),
        output,
    ) {
        Ok(decision) => decision,
        Err(err) => {
            finish(outcome("refused", &format!("{err:#}")))?;
            return Err(err);
        }
    };
    let Some(action) = plan
        .action
        .as_ref()
        .filter(|_| decision != Decision::NothingToDo)
    else {
        let message = format!(
            "Service {} already selects {}: nothing to do.",
            plan.service_ref(),
            selector_text(&plan.to_selector)
        );
        // The plan's last line already says so at a terminal.
        if machine {
            output.note(&message);
        }
        finish(outcome("nothing-to-do", &message))?;
        return Ok(ExitCode::Success);
    };
    match decision {
        Decision::NothingToDo | Decision::Apply => {}
        Decision::PlanOnly => {
            let message = "Dry run: nothing was changed.".to_string();
            result_line(output, machine, &message)?;
            finish(outcome("dry-run", &message))?;
            return Ok(ExitCode::Success);
        }
        Decision::RehearseOnServer => {
            api.clone()
                .with_write_mode(WriteMode::ServerDryRun)
                .patch::<Service>(
                    Some(&plan.namespace),
                    &plan.service,
                    &PatchBody::Merge(action.patch.clone()),
                )
                .await
                .map_err(|err| conflict_context(err, &plan))?;
            let message = "Server dry run: the API server accepted the patch; nothing was changed and nothing was verified.".to_string();
            result_line(output, machine, &message)?;
            finish(outcome("server-dry-run", &message))?;
            return Ok(ExitCode::Success);
        }
    }

    let switched = api
        .patch::<Service>(
            Some(&plan.namespace),
            &plan.service,
            &PatchBody::Merge(action.patch.clone()),
        )
        .await
        .map_err(|err| conflict_context(err, &plan))?;
    output.note(&format!(
        "Patched Service {}: selector now {}; waiting up to {} for its EndpointSlices to list only Ready pods matching it",
        plan.service_ref(),
        selector_text(&plan.to_selector),
        human_duration(args.timeout)
    ));
    let verified = verify_or_interrupt(&api, &plan, &plan.verify, args.timeout, output).await;
    let mut first_error = None;
    let (view, failure) = match verified {
        Verification::Converged(view) => {
            let message = success_message(&plan, &view);
            result_line(output, machine, &message)?;
            finish(SwitchOutcome {
                result: "switched".into(),
                endpoints: Some(view),
                rollback_endpoints: None,
                message,
            })?;
            return Ok(ExitCode::Success);
        }
        Verification::Interrupted(view) => {
            let message = format!(
                "interrupted while verifying: Service {} selects {} now (endpoints: {}); to go back run: {}",
                plan.service_ref(),
                selector_text(&plan.to_selector),
                view.describe(),
                rollback_command(&plan)
            );
            finish(SwitchOutcome {
                result: "interrupted".into(),
                endpoints: Some(view),
                rollback_endpoints: None,
                message: message.clone(),
            })?;
            output.warn(&message);
            return Err(Error::Interrupted.into());
        }
        Verification::TimedOut(view) => {
            let failure = format!(
                "the EndpointSlices of Service {} did not list only Ready pods matching {} within {} (last seen: {})",
                plan.service_ref(),
                selector_text(&plan.to_selector),
                human_duration(args.timeout),
                view.describe()
            );
            (view, failure)
        }
        Verification::Failed(view, err) => {
            let seen = if view == EndpointView::default() {
                String::new()
            } else {
                format!("; last seen: {}", view.describe())
            };
            let failure = format!(
                "the switch of Service {} to {} could not be verified ({err}{seen})",
                plan.service_ref(),
                selector_text(&plan.to_selector),
            );
            first_error = Some(err);
            (view, failure)
        }
    };

    // The switch did not take (or cannot be shown to): put the Service back
    // as it was.
    output.warn(&format!(
        "{failure}; switching back to {}",
        selector_text(&plan.from_selector)
    ));
    let undo = with_resource_version(
        &action.undo_patch,
        switched
            .metadata
            .resource_version
            .as_deref()
            .unwrap_or_default(),
    );
    if let Err(err) = api
        .patch::<Service>(
            Some(&plan.namespace),
            &plan.service,
            &PatchBody::Merge(undo),
        )
        .await
    {
        let message = format!(
            "{failure}, and switching back failed ({err:#}): the Service may still select {}; restore {} by hand",
            selector_text(&plan.to_selector),
            selector_text(&plan.from_selector)
        );
        finish(SwitchOutcome {
            result: "rollback-failed".into(),
            endpoints: Some(view),
            rollback_endpoints: None,
            message: message.clone(),
        })?;
        return Err(Error::RolloutFailed(message).into());
    }
    let back = verify_or_interrupt(&api, &plan, &plan.verify_rollback, args.timeout, output).await;
    let (result, message, rollback_view) = match back {
        Verification::Converged(back) => (
            "rolled-back",
            format!(
                "{failure}; switched back to {}, and its endpoints are verified ({})",
                selector_text(&plan.from_selector),
                back.describe()
            ),
            back,
        ),
        Verification::TimedOut(back) => (
            "rollback-failed",
            format!(
                "{failure}; switched back to {}, but its endpoints did not converge either (last seen: {}): check the gateway pods",
                selector_text(&plan.from_selector),
                back.describe()
            ),
            back,
        ),
        Verification::Failed(back, err) => {
            let why = if first_error.as_ref() == Some(&err) {
                String::new()
            } else {
                format!(" ({err})")
            };
            (
                "rollback-failed",
                format!(
                    "{failure}; switched back to {}, but its endpoints could not be verified either{why}: check them",
                    selector_text(&plan.from_selector)
                ),
                back,
            )
        }
        Verification::Interrupted(back) => (
            "interrupted",
            format!(
                "{failure}; switched back to {}, interrupted before its endpoints were verified (last seen: {})",
                selector_text(&plan.from_selector),
                back.describe()
            ),
            back,
        ),
    };
    finish(SwitchOutcome {
        result: result.into(),
        endpoints: Some(view),
        rollback_endpoints: Some(rollback_view),
        message: message.clone(),
    })?;
    if result == "interrupted" {
        output.warn(&message);
        return Err(Error::Interrupted.into());
    }
    Err(Error::RolloutFailed(message).into())
}

/// `--to` or `--rollback`, validated before anything is read.
fn request_from_flags(args: &GatewaySwitchArgs) -> anyhow::Result<SwitchRequest> {
    if args.rollback {
        return Ok(SwitchRequest::Rollback);
    }
    let Some(value) = &args.to else {
        return Err(Error::Usage("pass --to REVISION or --rollback".to_string()).into());
    };
    validate_label_value(value).map_err(|reason| Error::Usage(format!("--to: {reason}")))?;
    if args.selector_key.trim().is_empty() {
        return Err(Error::Usage("--selector-key must not be empty".to_string()).into());
    }
    Ok(SwitchRequest::To {
        selector_key: args.selector_key.clone(),
        value: value.clone(),
    })
}

fn outcome(result: &str, message: &str) -> SwitchOutcome {
    SwitchOutcome {
        result: result.to_string(),
        endpoints: None,
        rollback_endpoints: None,
        message: message.to_string(),
    }
}

/// The last line of a run: stdout for a table, stderr beside a document.
fn result_line(output: &Output, machine: bool, message: &str) -> anyhow::Result<()> {
    if machine {
        output.note(message);
        Ok(())
    } else {
        output.print_text(&format!("\n{message}"))
    }
}

fn rollback_command(plan: &SwitchPlan) -> String {
    format!(
        "kubectl mesh-upgrade gateway-switch -n {} --service {} --rollback",
        plan.namespace, plan.service
    )
}

fn success_message(plan: &SwitchPlan, view: &EndpointView) -> String {
    let gateways = if plan.target_gateways.is_empty() {
        String::new()
    } else {
        format!(" of {}", plan.target_gateways.join(", "))
    };
    let forced = if plan.verdict == Verdict::Forced {
        " (forced past failed prechecks)"
    } else {
        ""
    };
    let (did, back) = match plan.mode {
        SwitchMode::Switch => ("Switched", "Roll back with"),
        SwitchMode::Rollback => ("Rolled back", "Switch forward again with"),
    };
    let ready = match view.ready.len() {
        1 => "the 1 Ready pod".to_string(),
        n => format!("the {n} Ready pods"),
    };
    let tolerated = match view.tolerated.len() {
        0 => String::new(),
        n => format!(" (and {n} not Ready, as before the switch)"),
    };
    format!(
        "{did} Service {} to {}{forced}: its EndpointSlices list {ready}{gateways}{tolerated} and no other pod.\n{back}: {}",
        plan.service_ref(),
        selector_text(&plan.to_selector),
        rollback_command(plan)
    )
}

/// A 409 on the switch means the Service changed after it was read.
fn conflict_context(err: anyhow::Error, plan: &SwitchPlan) -> anyhow::Error {
    let conflict = err
        .chain()
        .any(|cause| matches!(cause.downcast_ref::<Error>(), Some(Error::Conflict { .. })));
    if conflict {
        err.context(format!(
            "Service {} changed after it was read, so nothing was switched: run the command again to plan on its current state",
            plan.service_ref()
        ))
    } else {
        err
    }
}

/// How a wait on the endpoints ended, with what was last seen.
enum Verification {
    Converged(EndpointView),
    TimedOut(EndpointView),
    /// Reading the endpoints failed (the error sentence): unverified.
    Failed(EndpointView, String),
    Interrupted(EndpointView),
}

/// [`verify`], ended early by Ctrl-C. An error reading the endpoints is an
/// outcome, not an exit: the caller has a Service to put back.
async fn verify_or_interrupt(
    api: &ApiClient,
    plan: &SwitchPlan,
    target: &EndpointTarget,
    timeout: Duration,
    output: &Output,
) -> Verification {
    let mut last = EndpointView::default();
    let outcome = tokio::select! {
        result = verify(api, plan, target, timeout, output, &mut last) => Some(result),
        _ = tokio::signal::ctrl_c() => None,
    };
    match outcome {
        Some(Ok(true)) => Verification::Converged(last),
        Some(Ok(false)) => Verification::TimedOut(last),
        Some(Err(err)) => Verification::Failed(last, format!("{err:#}")),
        None => Verification::Interrupted(last),
    }
}

/// Watch the Service's EndpointSlices until they list only Ready pods of
/// `target` (true) or `timeout` passes (false). Pods the plan did not know
/// (new replicas, or pods of someone else's) are looked up once each.
/// `last` holds the latest view, for the caller's message.
async fn verify(
    api: &ApiClient,
    plan: &SwitchPlan,
    target: &EndpointTarget,
    timeout: Duration,
    output: &Output,
    last: &mut EndpointView,
) -> anyhow::Result<bool> {
    let deadline = tokio::time::Instant::now() + timeout;
    let selector = LabelSelector::parse(&format!("{SERVICE_NAME_LABEL}={}", plan.service))
        .map_err(|reason| anyhow::anyhow!("selecting the Service's EndpointSlices: {reason}"))?;
    let mut slices = api.watch_set::<EndpointSlice>(
        ListScope::Namespace(plan.namespace.clone()),
        ListSelector::labels(selector),
    );
    let mut looked_up: BTreeMap<String, bool> = BTreeMap::new();
    let mut said = String::new();
    while let Some(current) = slices.next(deadline).await? {
        let infos: Vec<EndpointSliceInfo> = current.iter().map(EndpointSliceInfo::from).collect();
        let mut view = endpoint_view(&infos, target, &looked_up);
        for name in view.unknown.clone() {
            let matches = api
                .get::<Pod>(Some(&plan.namespace), &name)
                .await?
                .map(|pod| PodInfo::from(&pod))
                .is_some_and(|pod| {
                    !pod.terminating && selector_matches(&target.selector, &pod.labels)
                });
            looked_up.insert(name, matches);
        }
        if !view.unknown.is_empty() {
            view = endpoint_view(&infos, target, &looked_up);
        }
        let description = view.describe();
        if description != said {
            output.note(&format!("  endpoints: {description}"));
            said = description;
        }
        let converged = view.converged();
        *last = view;
        if converged {
            return Ok(true);
        }
    }
    Ok(false)
}
