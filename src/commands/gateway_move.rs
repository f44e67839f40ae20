//! `kubectl mesh-upgrade gateway-switch --gateway NAME`: move a Gateway API
//! `Gateway` to another revision, wait for istiod to re-render and roll it,
//! and put it back if it does not converge.
//!
//! ```text
//! flags ─► collect (the namespace + istio-system; Gateways and GatewayClasses too)
//!       ─► GET the Gateway (labels, record, resourceVersion) ─► assess it (mesh::gateway_api)
//!       ─► plan (mesh::gateway_move, pure) ─► show it ─► refuse on failed prechecks (5)
//!       ─► confirm::decide_interactively ─► Ctrl-C handler (before the write)
//!       ─► run::gateway_move: the plan's Write (label + record, on its resourceVersion)
//!            ─► await_condition: re-rendered, rolled out, on the target proxy, Programmed,
//!               endpoints only on the new pods (--timeout, default 5m)
//!            └─ not in time ─► the undo Write ─► await_condition for the previous state ─► exit 4
//!       ─► render::gateway_move::run_outcome: the sentence and the document
//! ```
//!
//! Exit codes as the Service mode's: 0 moved and verified (or nothing to do,
//! or a dry run); 2 no such Gateway, not an Istio class, or no Gateway API on
//! the cluster; 5 a precheck failed or no confirmation; 4 it did not converge
//! and was put back (or putting it back failed: the message says so); 1 the
//! Gateway changed while planning; 130 Ctrl-C while waiting.

use std::time::Duration;

use chrono::Utc;

use crate::api::WriteMode;
use crate::cli::{DryRun, GatewaySwitchArgs, GlobalArgs};
use crate::collect::{CollectOptions, collect};
use crate::confirm::{self, Decision};
use crate::error::{Error, ExitCode};
use crate::mesh::control_plane::ControlPlane;
use crate::mesh::gateway_api::{assess, gateway_kind};
use crate::mesh::gateway_move::{MoveDocument, MoveOptions, MoveOutcome, MoveRequest, plan_move};
use crate::mesh::gateway_switch::{SwitchResult, validate_label_value};
use crate::output::Output;
use crate::render::gateway_move::{plan_text, run_outcome};
use crate::run::apply::send;
use crate::run::gateway_move::{MoveRun, run_move};
use crate::run::{Interrupts, Reporter, Silent, StepReporter};
use crate::snapshot::gateway_api::{Gateway, GatewayInfo};
use crate::snapshot::{DEFAULT_CONTROL_PLANE_NAMESPACE, Scope};

/// How long a move waits by default: a re-render and a rollout.
pub const GATEWAY_TIMEOUT: Duration = Duration::from_secs(300);

/// What the flags ask for, validated before anything is read.
#[derive(Clone, Debug, PartialEq, Eq)]
struct MoveConfig {
    gateway: String,
    request: MoveRequest,
    force: bool,
    timeout: Duration,
}

impl MoveConfig {
    fn from_flags(args: &GatewaySwitchArgs) -> anyhow::Result<Self> {
        let gateway = args.gateway.clone().unwrap_or_default();
        if gateway.trim().is_empty() {
            return Err(Error::Usage("--gateway must name a Gateway".to_string()).into());
        }
        let request = if args.rollback {
            MoveRequest::Rollback
        } else {
            let Some(value) = &args.to else {
                return Err(Error::Usage("pass --to REVISION or --rollback".to_string()).into());
            };
            validate_label_value(value)
                .map_err(|reason| Error::Usage(format!("--to: {reason}")))?;
            MoveRequest::To(value.clone())
        };
        Ok(MoveConfig {
            gateway,
            request,
            force: args.force,
            timeout: args.timeout.unwrap_or(GATEWAY_TIMEOUT),
        })
    }
}

/// Move (or roll back) one Gateway.
pub async fn run(
    global: &GlobalArgs,
    args: &GatewaySwitchArgs,
    output: &Output,
) -> anyhow::Result<ExitCode> {
    let config = MoveConfig::from_flags(args)?;
    if global.all_namespaces || global.namespaces.len() > 1 {
        return Err(Error::Usage(
            "gateway-switch --gateway works on one Gateway in one namespace: pass -n NAMESPACE (not -A or a list)"
                .to_string(),
        )
        .into());
    }
    if global.selector.is_some() {
        output.warn("-l is ignored by gateway-switch: it acts on one Gateway, named by --gateway");
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
    if !snapshot.gateway_api.installed {
        return Err(Error::Usage(format!(
            "the cluster of context {} does not serve the Gateway API (no gateway.networking.k8s.io CRDs), so there is no Gateway {:?} to move; to switch a Service between gateways, pass --service",
            api.target().context,
            config.gateway
        ))
        .into());
    }
    let control_plane = ControlPlane::from_snapshot(snapshot);
    let fresh = api
        .get::<Gateway>(Some(&namespace), &config.gateway)
        .await?
        .ok_or_else(|| {
            let known: Vec<String> = snapshot
                .gateway_api
                .gateways
                .iter()
                .filter(|g| g.namespace == namespace)
                .filter(|g| gateway_kind(snapshot, &g.class).is_some())
                .map(|g| format!("{} (class {})", g.name, g.class))
                .collect();
            Error::Usage(format!(
                "Gateway {:?} does not exist in namespace {namespace}; Istio-class Gateways there: {}",
                config.gateway,
                if known.is_empty() {
                    "none".to_string()
                } else {
                    known.join(", ")
                }
            ))
        })?;
    let info = GatewayInfo::from(&fresh);
    let Some(kind) = gateway_kind(snapshot, &info.class) else {
        let controller = snapshot
            .gateway_api
            .classes
            .iter()
            .find(|c| c.name == info.class)
            .map_or("unknown".to_string(), |c| c.controller.clone());
        return Err(Error::Usage(format!(
            "Gateway {namespace}/{} has class {} (controller {controller}), which is not Istio's: istiod does not render it, so its istio.io/rev moves nothing",
            info.name, info.class
        ))
        .into());
    };
    let gateway = assess(snapshot, &control_plane, &info, kind);
    let plan = plan_move(
        snapshot,
        &control_plane,
        &gateway,
        &MoveOptions {
            request: config.request.clone(),
            force: config.force,
            endpoint_slices_readable: collected.was_read("endpointslices"),
        },
        Utc::now(),
    );

    let machine = global.output.is_machine_readable();
    let rehearsal = args.write.dry_run != DryRun::None;
    let text = plan_text(&plan, config.timeout, rehearsal, &output.text_layout());
    if machine {
        output.note(text.trim_end());
    } else {
        output.print_text(&text)?;
    }
    let finish = |outcome: MoveOutcome| -> anyhow::Result<()> {
        super::log_request_summary(&api);
        if machine {
            output.print_document(&MoveDocument::new(plan.clone(), outcome))
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
            "Gateway {} already has {}: nothing to do.",
            plan.gateway_ref(),
            crate::mesh::gateway_move::MovePlan::label_text(plan.to.label.as_deref())
        );
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
            send(&rehearsal, &action.write).await?;
            let message = "Server dry run: the API server accepted the patch; nothing was changed and nothing was verified.".to_string();
            result_line(output, machine, &message)?;
            finish(outcome(SwitchResult::ServerDryRun, &message))?;
            return Ok(ExitCode::Success);
        }
    }

    // Installed before the write, so a Ctrl-C from here on is an outcome
    // with the way back, never the process's default death.
    let interrupts = Interrupts::from_ctrl_c();
    let run = run_move(
        &api,
        &plan,
        action,
        config.timeout,
        &interrupts,
        &Notes(output),
    )
    .await;
    let outcome = match run {
        MoveRun::NotApplied(err) => return Err(err),
        MoveRun::InterruptedBeforeWrite => {
            let message = format!(
                "interrupted before the move: Gateway {} was not changed",
                plan.gateway_ref()
            );
            finish(outcome(SwitchResult::Interrupted, &message))?;
            output.warn(&message);
            return Err(Error::Interrupted.into());
        }
        run => run_outcome(&plan, &run, config.timeout),
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

fn outcome(result: SwitchResult, message: &str) -> MoveOutcome {
    MoveOutcome {
        result,
        progress: None,
        rollback_progress: None,
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
