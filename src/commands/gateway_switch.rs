//! `kubectl mesh-upgrade gateway-switch`: point a LoadBalancer Service at
//! another revision's gateway, verify it, and switch back if it does not work.
//!
//! ```text
//! flags ─► collect (the namespace + istio-system) ─► which Service (--service, or the only one)
//!       ─► GET the Service (selector, record, resourceVersion)
//!       ─► plan (mesh::gateway_switch, pure) ─► show it ─► refuse on failed prechecks (5)
//!       ─► confirm::decide_interactively ─► Ctrl-C handler (before the write)
//!       ─► run::switch: the plan's Write (selector + record, on its resourceVersion)
//!            ─► await_condition: the EndpointSlices list only Ready target pods (--timeout)
//!            └─ not in time ─► the undo Write ─► await_condition for the old pods ─► exit 4
//!       ─► render::gateway_switch::run_outcome: the sentence and the document
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

use chrono::Utc;
use k8s_openapi::api::core::v1::Service;

use crate::api::WriteMode;
use crate::cli::{DryRun, GatewaySwitchArgs, GlobalArgs};
use crate::collect::{CollectOptions, collect};
use crate::confirm::{self, Decision};
use crate::error::{Error, ExitCode};
use crate::mesh::control_plane::ControlPlane;
use crate::mesh::gateway_switch::{
    ServiceState, SwitchDocument, SwitchOptions, SwitchOutcome, SwitchPlan, SwitchRequest,
    SwitchResult, discover_service, plan, validate_label_value,
};
use crate::mesh::gateways::{gateways, selector_text};
use crate::mesh::workloads::classify;
use crate::output::Output;
use crate::render::gateway_switch::{plan_text, run_outcome};
use crate::run::apply::send;
use crate::run::switch::{SwitchRun, run_switch};
use crate::run::{Interrupts, Reporter, Silent, StepReporter};
use crate::snapshot::{DEFAULT_CONTROL_PLANE_NAMESPACE, Scope};

/// How long a Service switch waits for its endpoints by default.
pub const SERVICE_TIMEOUT: std::time::Duration = std::time::Duration::from_secs(120);

/// Switch (or roll back) one Service; with `--gateway`, move a Gateway.
pub async fn run(
    global: &GlobalArgs,
    args: &GatewaySwitchArgs,
    output: &Output,
) -> anyhow::Result<ExitCode> {
    if args.gateway.is_some() {
        return super::gateway_move::run(global, args, output).await;
    }
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
    let timeout = args.timeout.unwrap_or(SERVICE_TIMEOUT);
    let text = plan_text(&plan, timeout, rehearsal, &output.text_layout());
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
        finish(outcome(SwitchResult::Refused, &refusal))?;
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
            finish(outcome(SwitchResult::Refused, &format!("{err:#}")))?;
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
        finish(outcome(SwitchResult::NothingToDo, &message))?;
        return Ok(ExitCode::Success);
    };
    match decision {
        Decision::NothingToDo | Decision::Apply => {}
        Decision::PlanOnly => {
            let message = "Dry run: nothing was changed.".to_string();
            result_line(output, machine, &message)?;
            finish(outcome(SwitchResult::DryRun, &message))?;
            return Ok(ExitCode::Success);
        }
        Decision::RehearseOnServer => {
            let rehearsal = api.clone().with_write_mode(WriteMode::ServerDryRun);
            send(&rehearsal, &action.write)
                .await
                .map_err(|err| conflict_context(err, &plan))?;
            let message = "Server dry run: the API server accepted the patch; nothing was changed and nothing was verified.".to_string();
            result_line(output, machine, &message)?;
            finish(outcome(SwitchResult::ServerDryRun, &message))?;
            return Ok(ExitCode::Success);
        }
    }

    // Installed before the write, so a Ctrl-C from here on is an outcome
    // with the way back, never the process's default death.
    let interrupts = Interrupts::from_ctrl_c();
    let run = run_switch(&api, &plan, action, timeout, &interrupts, &Notes(output)).await;
    let outcome = match run {
        SwitchRun::NotApplied(err) => return Err(conflict_context(err, &plan)),
        SwitchRun::InterruptedBeforeWrite => {
            let message = format!(
                "interrupted before the switch: Service {} was not changed",
                plan.service_ref()
            );
            finish(outcome(SwitchResult::Interrupted, &message))?;
            output.warn(&message);
            return Err(Error::Interrupted.into());
        }
        run => run_outcome(&plan, &run, timeout),
    };
    match outcome.result {
        SwitchResult::Switched => {
            result_line(output, machine, &outcome.message)?;
            finish(outcome)?;
            Ok(ExitCode::Success)
        }
        SwitchResult::Interrupted => {
            let message = outcome.message.clone();
            finish(outcome)?;
            output.warn(&message);
            Err(Error::Interrupted.into())
        }
        _ => {
            let message = outcome.message.clone();
            finish(outcome)?;
            Err(Error::RolloutFailed(message).into())
        }
    }
}

/// The engine's notes, on stderr beside the plan.
struct Notes<'a>(&'a Output);

impl Reporter for Notes<'_> {
    fn note(&self, message: &str) {
        self.0.note(message);
    }

    fn step(&self, _label: &str) -> Box<dyn StepReporter + '_> {
        Box::new(Silent)
    }
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

fn outcome(result: SwitchResult, message: &str) -> SwitchOutcome {
    SwitchOutcome {
        result,
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
